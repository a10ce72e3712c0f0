/* mr-store-rule.h - stage 4: the store's rules (issue 22): their rows, in
 * position order, and the change counter the daemon polls.
 *
 * Row-level primitives that decide nothing: whether a name is taken, an
 * owner exists or where a new rule goes is the CRM layer's question
 * (mr_crm_rule_add() and the others, src/crm/mr-crm-rules.c).  A rule's
 * conditions and actions are stored as their canonical texts (mr-rule.h),
 * one per line, for mr_rule_new() to read back. */
#pragma once

#include <glib.h>

#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* --- row-level writes ----------------------------------------------------
 * Inside the open transaction (mr_store_run()). */

/* Adds one to the change counter of the rules and returns the new value,
 * or 0 with @error.  Every change of the rules calls it first, in its
 * transaction: the counter tells the daemons that the rules changed, and
 * its row lock keeps two changes of the rules (several mailroomctl, on
 * PostgreSQL) from interleaving. */
gint64 mr_store_rules_bump(MrStore *store, GError **error);

/* Returns the change counter of the rules (0 for a database whose rules
 * never changed), or -1 with @error. */
gint64 mr_store_rules_version(MrStore *store, GError **error);

/* Returns the number of rules (a look-up: see mr_store_check()). */
gint64 mr_store_rules_count(MrStore *store);

/* Returns the position of rule @name, or 0 when there is none (a look-up). */
gint64 mr_store_rule_position(MrStore *store, const char *name);

/* A rule as it is written: @conditions and @actions are the canonical
 * texts joined by newlines (mr_rule_cond_text(), mr_rule_action_text()). */
typedef struct {
	const char *name;
	gint64 position;
	gboolean enabled, any, stop;
	const char *conditions;
	const char *actions;
} MrRuleNew;

/* Inserts @rule at @now (its position free).  Returns its id, or 0 with
 * @error (MR_STORE_ERROR_CONSTRAINT for a name or position taken). */
gint64 mr_store_rule_insert(MrStore *store, const MrRuleNew *rule, const char *now,
			    GError **error);

/* Moves the rule at position @from to @to; the rules between move one
 * place towards @from (positions stay dense and unique, one statement
 * pair whatever their number). */
gboolean mr_store_rules_rotate(MrStore *store, gint64 from, gint64 to, GError **error);

/* Sets rule @name enabled or disabled at @now. */
gboolean mr_store_rule_set_enabled(MrStore *store, const char *name, gboolean enabled,
				   const char *now, GError **error);

/* Deletes rule @name (none is no error). */
gboolean mr_store_rule_delete(MrStore *store, const char *name, GError **error);

/* Deletes every rule (none is no error), for a replacement of them all
 * (mr_crm_rules_replace()). */
gboolean mr_store_rules_delete_all(MrStore *store, GError **error);

/* --- queries for the CLI --------------------------------------------------- */

typedef struct {
	gint64 id;
	char *name;
	gint64 position;     /* 1 to the number of rules */
	gboolean enabled;
	GStrv conditions;    /* canonical texts */
	GStrv actions;       /* canonical texts, without stop */
	gboolean any;        /* any condition suffices */
	gboolean stop;       /* no later rule runs */
	char *created;
	char *updated;
} MrRuleRow;

MR_ROW_DECLARE(MrRuleRow, mr_rule_row_desc, mr_rule_row_free)

/* Returns: (transfer full) (element-type MrRuleRow): every rule in
 * position order, or NULL with @error. */
GPtrArray *mr_store_rules(MrStore *store, GError **error);

/* Returns: (transfer full): rule @name, or NULL with @error
 * (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrRuleRow *mr_store_rule_get(MrStore *store, const char *name, GError **error);

G_END_DECLS
