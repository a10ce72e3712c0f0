/* mr-crm-rules.c - the use cases that change the rules (issue 22): add,
 * enable and disable, delete, move, replace them all (see mr-crm.h).
 *
 * CRM stage.  The grammar of a rule is the model's (mr-rule.h, checked
 * before it comes here); what the data must say of it -- an owner who is
 * a user, a name nobody else has -- is checked here, and each change
 * keeps the positions dense and bumps the change counter in one
 * transaction (mr_store_run()), so nothing is half-done. */
#define G_LOG_DOMAIN "mailroom-crm"

#include "mr-crm-private.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-rule.h"
#include "mailroom/mr-store-team.h"

/* Checks the owners among @rule's actions against the data. */
static gboolean
owners_exist(MrStore *store, const MrRule *rule, GError **error)
{
	for (guint i = 0; i < rule->actions->len; i++) {
		const MrRuleAction *a = g_ptr_array_index(rule->actions, i);
		g_autofree char *text = NULL;

		if (a->kind != MR_RULE_ACT_OWNER)
			continue;
		text = mr_rule_action_text(a);
		if (a->team) {
			if (mr_store_team_id(store, a->text) != 0)
				continue;
			mr_crm_not_found(store, error, "'%s': no team %s", text, a->text);
			return FALSE;
		}
		if (mr_store_user_by_address(store, a->text) == 0) {
			mr_crm_not_found(store, error, "'%s': no user %s", text, a->text);
			return FALSE;
		}
	}
	return TRUE;
}

/* Joins the canonical texts of @items (MrRuleCond or MrRuleAction, by
 * @text) with newlines. */
static char *
texts_joined(const GPtrArray *items, char *(*text)(gconstpointer))
{
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; i < items->len; i++) {
		g_autofree char *t = text(g_ptr_array_index(items, i));

		if (i > 0)
			g_string_append_c(out, '\n');
		g_string_append(out, t);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static char *
cond_text(gconstpointer cond)
{
	return mr_rule_cond_text(cond);
}

static char *
action_text(gconstpointer action)
{
	return mr_rule_action_text(action);
}

/* Inserts @rule's row at @position (free) at @now. */
static gboolean
rule_insert(MrStore *store, const MrRule *rule, gint64 position, const char *now,
	    GError **error)
{
	g_autofree char *conds = texts_joined(rule->conds, cond_text);
	g_autofree char *actions = texts_joined(rule->actions, action_text);
	MrRuleNew row = {
		.name = rule->name, .position = position, .enabled = rule->enabled,
		.any = rule->any, .stop = rule->stop, .conditions = conds, .actions = actions,
	};

	return mr_store_rule_insert(store, &row, now, error) != 0;
}

/* --- add --------------------------------------------------------------------- */

typedef struct {
	const MrRule *rule;
	gint64 position; /* asked (0: last), then given */
} RuleAdd;

static gboolean
rule_add_tx(MrStore *store, gpointer data, GError **error)
{
	RuleAdd *r = data;
	g_autofree char *now = mr_clock_now_iso();
	gint64 n;

	/* first: its row lock orders this change after any other one */
	if (mr_store_rules_bump(store, error) == 0)
		return FALSE;
	if (mr_store_rule_position(store, r->rule->name) != 0) {
		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS, "rule %s exists already",
			    r->rule->name);
		return FALSE;
	}
	if (!owners_exist(store, r->rule, error))
		return FALSE;
	n = mr_store_rules_count(store);
	if (!mr_store_check(store, error))
		return FALSE;
	/* added last, then moved up where asked */
	if (!rule_insert(store, r->rule, n + 1, now, error))
		return FALSE;
	r->position = r->position == 0 || r->position > n + 1 ? n + 1 : r->position;
	return mr_store_rules_rotate(store, n + 1, r->position, error);
}

gint64
mr_crm_rule_add(MrStore *store, const MrRule *rule, gint64 position, GError **error)
{
	RuleAdd r = { rule, position };

	g_return_val_if_fail(rule != NULL && position >= 0, 0);

	return mr_store_run(store, rule_add_tx, &r, error) ? r.position : 0;
}

/* --- enable, delete, move ------------------------------------------------------ */

typedef enum { RULE_ENABLE, RULE_DISABLE, RULE_DELETE, RULE_MOVE } RuleChange;

typedef struct {
	const char *name;
	RuleChange change;
	gint64 position; /* RULE_MOVE: asked, then given */
} RuleEdit;

static gboolean
rule_edit_tx(MrStore *store, gpointer data, GError **error)
{
	RuleEdit *r = data;
	g_autofree char *now = mr_clock_now_iso();
	gint64 at, n;

	if (mr_store_rules_bump(store, error) == 0)
		return FALSE;
	at = mr_store_rule_position(store, r->name);
	n = mr_store_rules_count(store);
	if (at == 0) {
		mr_crm_not_found(store, error, "no rule %s", r->name);
		return FALSE;
	}
	if (!mr_store_check(store, error))
		return FALSE;
	switch (r->change) {
	case RULE_ENABLE:
	case RULE_DISABLE:
		return mr_store_rule_set_enabled(store, r->name, r->change == RULE_ENABLE, now,
						 error);
	case RULE_DELETE:
		/* last first, so that those after it move up */
		return mr_store_rules_rotate(store, at, n, error) &&
		       mr_store_rule_delete(store, r->name, error);
	case RULE_MOVE:
		r->position = MIN(r->position, n);
		return mr_store_rules_rotate(store, at, r->position, error);
	}
	g_assert_not_reached();
}

gboolean
mr_crm_rule_enable(MrStore *store, const char *name, gboolean enabled, GError **error)
{
	RuleEdit r = { name, enabled ? RULE_ENABLE : RULE_DISABLE, 0 };

	return mr_store_run(store, rule_edit_tx, &r, error);
}

gboolean
mr_crm_rule_delete(MrStore *store, const char *name, GError **error)
{
	RuleEdit r = { name, RULE_DELETE, 0 };

	return mr_store_run(store, rule_edit_tx, &r, error);
}

gint64
mr_crm_rule_move(MrStore *store, const char *name, gint64 position, GError **error)
{
	RuleEdit r = { name, RULE_MOVE, position };

	g_return_val_if_fail(position >= 1, 0);

	return mr_store_run(store, rule_edit_tx, &r, error) ? r.position : 0;
}

/* --- replace ------------------------------------------------------------------- */

typedef struct {
	const GPtrArray *rules; /* MrRule*, in order */
	guint refused;          /* the index of the rule refused */
} RulesReplace;

static gboolean
rules_replace_tx(MrStore *store, gpointer data, GError **error)
{
	RulesReplace *r = data;
	g_autofree char *now = mr_clock_now_iso();

	if (mr_store_rules_bump(store, error) == 0)
		return FALSE;
	for (r->refused = 0; r->refused < r->rules->len; r->refused++)
		if (!owners_exist(store, g_ptr_array_index(r->rules, r->refused), error))
			return FALSE;
	if (!mr_store_rules_delete_all(store, error))
		return FALSE;
	for (guint i = 0; i < r->rules->len; i++)
		if (!rule_insert(store, g_ptr_array_index(r->rules, i), i + 1, now, error))
			return FALSE;
	return TRUE;
}

gboolean
mr_crm_rules_replace(MrStore *store, const GPtrArray *rules, guint *refused_out,
		     GError **error)
{
	g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
	RulesReplace r = { rules, 0 };

	g_return_val_if_fail(rules != NULL, FALSE);

	for (guint i = 0; i < rules->len; i++) {
		const MrRule *rule = g_ptr_array_index(rules, i);

		if (!g_hash_table_add(names, rule->name)) {
			if (refused_out != NULL)
				*refused_out = i;
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS,
				    "rule %s: an earlier rule has that name", rule->name);
			return FALSE;
		}
	}
	if (mr_store_run(store, rules_replace_tx, &r, error))
		return TRUE;
	/* an owner refused: say which rule (the others are the store's) */
	if (error != NULL && *error != NULL && (*error)->domain == MR_CRM_ERROR) {
		g_prefix_error(error, "rule %s: ",
			       ((const MrRule *)g_ptr_array_index(rules, r.refused))->name);
		if (refused_out != NULL)
			*refused_out = r.refused;
	}
	return FALSE;
}
