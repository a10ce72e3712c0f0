/* mr-rule-set.h - the rules of one version of the database, compiled once,
 * and their run over a message.
 *
 * Model layer: no I/O.  A rule set holds the rules in position order
 * (mr-rule.h), compiled when it is made; a daemon keeps one until the
 * change counter of the rules moves (mr_store_rules_version()).  A
 * message is run in two steps:
 *
 *   1. the scan (mr_rule_scan_new()), on any thread (the parse pool), with
 *      what the message alone says: every condition on its addresses,
 *      subject, body, headers, attachments, auto and time of receipt;
 *   2. the run (mr_rule_scan_run()), under the write lock, per delivery:
 *      the conditions on the recipient, the role, followup and account
 *      (which routing's look-ups answer), then the rules in order, their
 *      stops, and what the rules that fired ask for.
 *
 * A set is shared (reference counted) between threads; it is never
 * changed once made. */
#pragma once

#include <glib.h>

#include "mailroom/mr-rule.h"

G_BEGIN_DECLS

typedef struct _MrRuleSet MrRuleSet;

/* Makes the set of @rules (MrRule*, in position order; the array is
 * taken, and must free its elements), read at change counter @version.
 * Disabled rules are kept (rule test lists them) and never run.
 * Returns: (transfer full): the set. */
MrRuleSet *mr_rule_set_new(gint64 version, GPtrArray *rules);

/* Returns: (transfer full): @set with one more reference. */
MrRuleSet *mr_rule_set_ref(MrRuleSet *set);

/* Drops a reference of @set; NULL-safe. */
void mr_rule_set_unref(MrRuleSet *set);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRuleSet, mr_rule_set_unref)

/* Returns the change counter @set was read at. */
gint64 mr_rule_set_version(const MrRuleSet *set);

/* Returns the number of enabled rules of @set. */
guint mr_rule_set_enabled(const MrRuleSet *set);

/* Returns TRUE when an enabled rule of @set has a condition on the
 * account (the run then needs the sender's account's name). */
gboolean mr_rule_set_needs_account(const MrRuleSet *set);

/* What the scan of one message found. */
typedef struct _MrRuleScan MrRuleScan;

/* Evaluates every condition of @set's enabled rules that the message
 * alone answers, with @values (whose recipient, role, followup and
 * account are not read).  With @explain, keeps the value each was checked
 * against, for mr_rule_scan_run()'s explanation.  Linear in the size of
 * @values per condition (regular expressions bounded, see mr-rule.h).
 * Returns: (transfer full): the scan, which holds a reference of @set. */
MrRuleScan *mr_rule_scan_new(MrRuleSet *set, const MrRuleValues *values, gboolean explain);

/* Frees @scan; NULL-safe. */
void mr_rule_scan_free(MrRuleScan *scan);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRuleScan, mr_rule_scan_free)

/* Returns: (transfer none): the set @scan was made with. */
MrRuleSet *mr_rule_scan_set(const MrRuleScan *scan);

/* One condition of an explained rule. */
typedef struct {
	char *condition; /* its canonical text */
	gboolean result;
	char *value;     /* what it was checked against, one short line */
} MrRuleExplainCond;

/* One enabled rule in an explained run, in position order. */
typedef struct {
	char *rule;          /* its name */
	gboolean ran;        /* FALSE: an earlier rule's stop ended the run */
	gboolean fired;      /* its conditions held: its actions apply */
	gboolean stopped;    /* it fired and its stop ended the run */
	GPtrArray *conditions; /* MrRuleExplainCond*; empty when it did not run */
} MrRuleExplain;

/* What the rules that fired ask for.  When two rules set the same thing,
 * the later one wins; tags add up. */
typedef struct {
	GPtrArray *fired;    /* char*: the names of the rules that fired, in
				order; NULL-terminated when not empty */
	int becomes;         /* MR_RULE_ACT_TICKET, _LEAD, _LOG or _IGNORE; -1: the
				role's default */
	int priority;        /* an MrPriority, -1: unchanged */
	int type;            /* an MrTicketType, -1: unchanged */
	int status;          /* an MrTicketStatus, -1: unchanged */
	char *owner;         /* (nullable): a user's address, or a team's name
				when @owner_team */
	gboolean owner_team;
	GPtrArray *tags;     /* char*, each once, in the order first asked */
	char *source;        /* (nullable): the source of a lead it makes */
	GPtrArray *explain;  /* (nullable) MrRuleExplain*: every enabled rule,
				when the scan was made with explain */
} MrRuleOutcome;

/* Runs @scan's rules with @values for the recipient, the role, followup
 * and account (the rest of @values is not read): each enabled rule in
 * order, its remaining conditions evaluated, until a rule that fired
 * stops the run.  Returns: (transfer full): the outcome (nothing fired:
 * empty). */
MrRuleOutcome *mr_rule_scan_run(const MrRuleScan *scan, const MrRuleValues *values);

/* Frees @outcome; NULL-safe. */
void mr_rule_outcome_free(MrRuleOutcome *outcome);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRuleOutcome, mr_rule_outcome_free)

/* Returns TRUE when the value of @field depends on the delivery, not on
 * the message alone: recipient, role, followup, account. */
gboolean mr_rule_field_per_delivery(MrRuleField field);

G_END_DECLS
