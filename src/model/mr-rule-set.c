/* mr-rule-set.c - a version of the rules, compiled, and their two-step run
 * over a message (see mr-rule-set.h).
 *
 * Model layer.  The conditions of the enabled rules sit in one array, in
 * rule order; a scan holds one result per condition (or "later" for a
 * condition on the delivery), so that the run under the write lock only
 * evaluates what the delivery adds and reads the rest.
 *
 * The conditions on the message's text go through one pass per field
 * (mr-rule-prefilter.c) instead of one evaluation each.  Compiling it
 * costs about a millisecond per pattern (seconds for thousands of rules),
 * more than evaluating them over one message: the pipe door loads a set
 * per message and scans once, the writer loads a new set in its open
 * transaction, and `rule test` explains (evaluating each condition, to
 * keep what it was checked against).  So a set compiles its pass only
 * from its second scan on, on a thread of its own, and scans one
 * condition at a time until the pass is there. */
#define G_LOG_DOMAIN "mailroom-rule"

#include <string.h>

#include "mailroom/mr-rule-set.h"

#include "mr-rule-private.h"

struct _MrRuleSet {
	gint refs; /* atomic */
	gint64 version;
	GPtrArray *rules;   /* MrRule*, every rule in position order */
	GPtrArray *enabled; /* MrRule*, borrowed: the enabled ones, in order */
	guint *first;       /* per enabled rule: the index of its first
			       condition in @conds; first[n] = conds->len */
	GPtrArray *conds;   /* const MrRuleCond*, borrowed, rule after rule */
	/* Dense copies of what every scan and run reads, so that thousands of
	 * rules are not thousands of structs to fetch per message. */
	guint8 *later;      /* per condition: on a field of the delivery */
	guint8 *any;        /* per enabled rule: its any */
	guint8 *any_later;  /* per enabled rule: a condition of @later */
	gboolean fold_subject, fold_body; /* a condition compares it folded */
	gboolean needs_account;
	MrRulePrefilter *prefilter; /* (nullable) (atomic): the pass over
				       @conds, once compiled */
	GMutex pass_lock;           /* guards the three below */
	GCond pass_cond;            /* signalled when a compile ends */
	guint scans;                /* scans made before the pass */
	gboolean compiling, compiled;
};

/* The scans of a set before it compiles its pass (see above). */
#define PASS_AFTER_SCANS 2

gboolean
mr_rule_field_per_delivery(MrRuleField field)
{
	return field == MR_RULE_FIELD_RECIPIENT || field == MR_RULE_FIELD_ROLE ||
	       field == MR_RULE_FIELD_FOLLOWUP || field == MR_RULE_FIELD_ACCOUNT;
}

MrRuleSet *
mr_rule_set_new(gint64 version, GPtrArray *rules)
{
	MrRuleSet *set = g_new0(MrRuleSet, 1);

	g_return_val_if_fail(rules != NULL, NULL);

	set->refs = 1;
	set->version = version;
	set->rules = rules;
	set->enabled = g_ptr_array_new();
	set->conds = g_ptr_array_new();
	for (guint i = 0; i < rules->len; i++) {
		MrRule *rule = g_ptr_array_index(rules, i);

		if (rule->enabled)
			g_ptr_array_add(set->enabled, rule);
	}
	set->first = g_new0(guint, set->enabled->len + 1);
	for (guint i = 0; i < set->enabled->len; i++) {
		const MrRule *rule = g_ptr_array_index(set->enabled, i);

		set->first[i] = set->conds->len;
		for (guint j = 0; j < rule->conds->len; j++) {
			const MrRuleCond *c = g_ptr_array_index(rule->conds, j);

			g_ptr_array_add(set->conds, (gpointer)c);
			set->needs_account |= c->field == MR_RULE_FIELD_ACCOUNT;
		}
	}
	set->first[set->enabled->len] = set->conds->len;
	set->later = g_new0(guint8, MAX(set->conds->len, 1));
	set->any = g_new0(guint8, MAX(set->enabled->len, 1));
	set->any_later = g_new0(guint8, MAX(set->enabled->len, 1));
	for (guint r = 0; r < set->enabled->len; r++) {
		const MrRule *rule = g_ptr_array_index(set->enabled, r);

		set->any[r] = rule->any;
		for (guint i = set->first[r]; i < set->first[r + 1]; i++) {
			const MrRuleCond *c = g_ptr_array_index(set->conds, i);

			gboolean folded = c->op != MR_RULE_OP_MATCH && c->op != MR_RULE_OP_NOMATCH &&
					  c->op != MR_RULE_OP_EXISTS;

			set->later[i] = mr_rule_field_per_delivery(c->field);
			set->any_later[r] |= set->later[i];
			set->fold_subject |= folded && c->field == MR_RULE_FIELD_SUBJECT;
			set->fold_body |= folded && c->field == MR_RULE_FIELD_BODY;
		}
	}
	g_mutex_init(&set->pass_lock);
	g_cond_init(&set->pass_cond);
	return set;
}

MrRuleSet *
mr_rule_set_ref(MrRuleSet *set)
{
	g_return_val_if_fail(set != NULL, NULL);
	g_atomic_int_inc(&set->refs);
	return set;
}

void
mr_rule_set_unref(MrRuleSet *set)
{
	if (set == NULL || !g_atomic_int_dec_and_test(&set->refs))
		return;
	/* a compile holds a reference: none runs now */
	mr_rule_prefilter_free(g_atomic_pointer_get(&set->prefilter));
	g_mutex_clear(&set->pass_lock);
	g_cond_clear(&set->pass_cond);
	g_ptr_array_unref(set->conds);
	g_ptr_array_unref(set->enabled);
	g_free(set->first);
	g_free(set->later);
	g_free(set->any);
	g_free(set->any_later);
	g_ptr_array_unref(set->rules);
	g_free(set);
}

gint64
mr_rule_set_version(const MrRuleSet *set)
{
	return set->version;
}

guint
mr_rule_set_enabled(const MrRuleSet *set)
{
	return set->enabled->len;
}

gboolean
mr_rule_set_needs_account(const MrRuleSet *set)
{
	return set->needs_account;
}

/* Compiles @set's pass, unless another thread does or did; then waits
 * for it. */
static void
pass_compile(MrRuleSet *set)
{
	MrRulePrefilter *pf;

	g_mutex_lock(&set->pass_lock);
	if (set->compiling || set->compiled) {
		while (set->compiling)
			g_cond_wait(&set->pass_cond, &set->pass_lock);
		g_mutex_unlock(&set->pass_lock);
		return;
	}
	set->compiling = TRUE;
	g_mutex_unlock(&set->pass_lock);
	pf = mr_rule_prefilter_new(set->conds);
	g_atomic_pointer_set(&set->prefilter, pf);
	g_mutex_lock(&set->pass_lock);
	set->compiling = FALSE;
	set->compiled = TRUE;
	g_cond_broadcast(&set->pass_cond);
	g_mutex_unlock(&set->pass_lock);
}

static gpointer
pass_thread(gpointer data)
{
	MrRuleSet *set = data;

	pass_compile(set);
	mr_rule_set_unref(set);
	return NULL;
}

/* Counts a scan of @set made without its pass, and starts compiling the
 * pass on a thread of its own at the PASS_AFTER_SCANS-th. */
static void
pass_want(MrRuleSet *set)
{
	gboolean start;

	g_mutex_lock(&set->pass_lock);
	start = ++set->scans == PASS_AFTER_SCANS && !set->compiling && !set->compiled;
	g_mutex_unlock(&set->pass_lock);
	if (start)
		g_thread_unref(g_thread_new("mr-rules", pass_thread, mr_rule_set_ref(set)));
}

guint
mr_rule_set_prefiltered(MrRuleSet *set)
{
	pass_compile(set);
	return mr_rule_prefilter_taken(g_atomic_pointer_get(&set->prefilter));
}

/* --- scan -------------------------------------------------------------------- */

enum { SCAN_NO = FALSE, SCAN_YES = TRUE, SCAN_LATER = 2, SCAN_UNSET = 3 };

struct _MrRuleScan {
	MrRuleSet *set;
	guint8 *results; /* per condition of set->conds */
	char **values;   /* (nullable): per condition, explained */
	GArray *maybe;   /* (nullable) guint: the enabled rules that hold, or
			    may with the delivery, in order; NULL when
			    explained (every rule is listed) */
};

/* Returns TRUE when enabled rule @r, none of whose conditions waits for
 * the delivery, holds by the scan's results: rule_holds() without values
 * or explanation, in a loop over bytes (the scan runs it for every rule). */
static gboolean
rule_scanned_holds(const MrRuleScan *scan, guint r)
{
	const MrRuleSet *set = scan->set;
	guint8 any = set->any[r];

	for (guint i = set->first[r]; i < set->first[r + 1]; i++)
		if (scan->results[i] == any) /* decides */
			return any;
	return !any;
}

MrRuleScan *
mr_rule_scan_new(MrRuleSet *set, const MrRuleValues *values, gboolean explain)
{
	MrRuleScan *scan = g_new0(MrRuleScan, 1);
	g_autofree char *subject_folded = NULL, *body_folded = NULL;
	MrRulePrefilter *pf;
	MrRuleValues v;
	guint n;

	g_return_val_if_fail(set != NULL && values != NULL, NULL);

	n = set->conds->len;
	scan->set = mr_rule_set_ref(set);
	scan->results = g_new0(guint8, MAX(n, 1));
	scan->values = explain ? g_new0(char *, n + 1) : NULL;
	/* the subject and the body folded once for every condition that
	 * compares them folded (what mr_rule_cond_eval() would fold for each) */
	v = *values;
	if (set->fold_subject && v.subject != NULL && v.subject_folded == NULL)
		v.subject_folded = subject_folded = mr_rule_fold(v.subject);
	if (set->fold_body && v.body != NULL && v.body_folded == NULL)
		v.body_folded = body_folded = mr_rule_fold(v.body);
	memset(scan->results, SCAN_UNSET, n);
	pf = explain || n == 0 ? NULL : g_atomic_pointer_get(&set->prefilter);
	if (pf != NULL) /* answers what it takes: SCAN_NO and SCAN_YES are FALSE and TRUE */
		mr_rule_prefilter_scan(pf, &v, scan->results);
	else if (!explain && n > 0)
		pass_want(set);
	for (guint i = 0; i < n; i++) {
		const MrRuleCond *c = g_ptr_array_index(set->conds, i);

		if (set->later[i])
			scan->results[i] = SCAN_LATER;
		else if (scan->results[i] == SCAN_UNSET)
			scan->results[i] = mr_rule_cond_eval(c, &v, explain ? &scan->values[i] : NULL)
						   ? SCAN_YES
						   : SCAN_NO;
	}
	/* the rules the run under the write lock has to look at */
	if (!explain) {
		scan->maybe = g_array_new(FALSE, FALSE, sizeof(guint));
		for (guint r = 0; r < set->enabled->len; r++)
			if (set->any_later[r] || rule_scanned_holds(scan, r))
				g_array_append_val(scan->maybe, r);
	}
	return scan;
}

void
mr_rule_scan_free(MrRuleScan *scan)
{
	if (scan == NULL)
		return;
	if (scan->values != NULL)
		for (guint i = 0; i < scan->set->conds->len; i++)
			g_free(scan->values[i]);
	g_free(scan->values);
	g_free(scan->results);
	g_clear_pointer(&scan->maybe, g_array_unref);
	mr_rule_set_unref(scan->set);
	g_free(scan);
}

MrRuleSet *
mr_rule_scan_set(const MrRuleScan *scan)
{
	return scan->set;
}

/* --- run ---------------------------------------------------------------------- */

static void
explain_cond_free(MrRuleExplainCond *c)
{
	g_free(c->condition);
	g_free(c->value);
	g_free(c);
}

static void
explain_free(MrRuleExplain *e)
{
	g_free(e->rule);
	g_ptr_array_unref(e->conditions);
	g_free(e);
}

void
mr_rule_outcome_free(MrRuleOutcome *outcome)
{
	if (outcome == NULL)
		return;
	g_ptr_array_unref(outcome->fired);
	g_free(outcome->owner);
	g_ptr_array_unref(outcome->tags);
	g_free(outcome->source);
	g_clear_pointer(&outcome->explain, g_ptr_array_unref);
	g_free(outcome);
}

/* Returns the result of condition @i of the set, evaluating it with
 * @values when the scan left it for the delivery; with @explain, adds
 * what it was checked against. */
static gboolean
cond_result(const MrRuleScan *scan, guint i, const MrRuleValues *values, MrRuleExplain *explain)
{
	const MrRuleCond *c = g_ptr_array_index(scan->set->conds, i);
	g_autofree char *value = NULL;
	gboolean held;

	if (scan->results[i] == SCAN_LATER)
		held = mr_rule_cond_eval(c, values, explain != NULL ? &value : NULL);
	else
		held = scan->results[i] == SCAN_YES;
	if (explain != NULL) {
		MrRuleExplainCond *e = g_new0(MrRuleExplainCond, 1);

		e->condition = mr_rule_cond_text(c);
		e->result = held;
		if (value == NULL && scan->values != NULL)
			value = g_strdup(scan->values[i]);
		e->value = g_steal_pointer(&value);
		g_ptr_array_add(explain->conditions, e);
	}
	return held;
}

/* Returns TRUE when enabled rule @r's conditions hold: all, or any.
 * Explaining, every condition is evaluated and listed; otherwise the
 * first that decides ends it. */
static gboolean
rule_holds(const MrRuleScan *scan, guint r, const MrRuleValues *values, MrRuleExplain *explain)
{
	gboolean any = scan->set->any[r];
	gboolean decided = FALSE, outcome = !any;

	for (guint i = scan->set->first[r]; i < scan->set->first[r + 1]; i++) {
		gboolean held;

		if (decided && explain == NULL)
			break;
		held = cond_result(scan, i, values, explain);
		if (!decided && held == any) {
			decided = TRUE;
			outcome = held;
		}
	}
	return outcome;
}

/* Adds the actions of @rule to @out: later rules win, tags add up. */
static void
outcome_add(MrRuleOutcome *out, const MrRule *rule)
{
	for (guint i = 0; i < rule->actions->len; i++) {
		const MrRuleAction *a = g_ptr_array_index(rule->actions, i);

		switch (a->kind) {
		case MR_RULE_ACT_TICKET:
		case MR_RULE_ACT_LEAD:
		case MR_RULE_ACT_LOG:
		case MR_RULE_ACT_IGNORE:
			out->becomes = a->kind;
			break;
		case MR_RULE_ACT_PRIORITY:
			out->priority = a->value;
			break;
		case MR_RULE_ACT_TYPE:
			out->type = a->value;
			break;
		case MR_RULE_ACT_STATUS:
			out->status = a->value;
			break;
		case MR_RULE_ACT_OWNER:
			g_free(out->owner);
			out->owner = g_strdup(a->text);
			out->owner_team = a->team;
			break;
		case MR_RULE_ACT_TAG:
			if (!g_ptr_array_find_with_equal_func(out->tags, a->text, g_str_equal, NULL))
				g_ptr_array_add(out->tags, g_strdup(a->text));
			break;
		case MR_RULE_ACT_SOURCE:
			g_free(out->source);
			out->source = g_strdup(a->text);
			break;
		case MR_RULE_ACT_STOP:
		case MR_RULE_ACT_N:
			break;
		}
	}
}

MrRuleOutcome *
mr_rule_scan_run(const MrRuleScan *scan, const MrRuleValues *values)
{
	MrRuleOutcome *out = g_new0(MrRuleOutcome, 1);
	const MrRuleSet *set;
	gboolean stopped = FALSE;
	guint n;

	g_return_val_if_fail(scan != NULL && values != NULL, NULL);

	set = scan->set;
	out->fired = g_ptr_array_new_null_terminated(0, g_free, TRUE);
	out->tags = g_ptr_array_new_with_free_func(g_free);
	out->becomes = out->priority = out->type = out->status = -1;
	if (scan->values != NULL)
		out->explain = g_ptr_array_new_with_free_func((GDestroyNotify)explain_free);
	/* a rule the scan found false cannot fire nor stop the run: the
	 * scan's short list of the others will do, unless explaining */
	n = scan->maybe != NULL ? scan->maybe->len : set->enabled->len;
	for (guint k = 0; k < n; k++) {
		guint r = scan->maybe != NULL ? g_array_index(scan->maybe, guint, k) : k;
		const MrRule *rule = g_ptr_array_index(set->enabled, r);
		MrRuleExplain *e = NULL;

		if (out->explain != NULL) {
			e = g_new0(MrRuleExplain, 1);
			e->rule = g_strdup(rule->name);
			e->conditions = g_ptr_array_new_with_free_func(
				(GDestroyNotify)explain_cond_free);
			g_ptr_array_add(out->explain, e);
		}
		if (stopped) {
			if (e == NULL)
				break;
			continue; /* listed, not run */
		}
		if (e != NULL)
			e->ran = TRUE;
		if (!rule_holds(scan, r, values, e))
			continue;
		g_ptr_array_add(out->fired, g_strdup(rule->name));
		outcome_add(out, rule);
		if (e != NULL)
			e->fired = TRUE;
		if (rule->stop) {
			stopped = TRUE;
			if (e != NULL)
				e->stopped = TRUE;
		}
	}
	return out;
}
