/* mr-crm-amend.c - the rules at work: the rule set read from the database,
 * and the step that amends a routing plan with what the rules that fired
 * ask for (see mr-crm.h).
 *
 * CRM stage.  The conditions on the message alone were evaluated before
 * (mr_rule_scan_new(), on the parse pool); here, under the write lock,
 * come those on the delivery -- the recipient, the role, followup (the
 * record routing found) and account (a look-up) -- and the decision
 * again when a rule says what the mail becomes. */
#define G_LOG_DOMAIN "mailroom-crm"

#include <string.h>

#include "mr-crm-private.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-store-record.h"
#include "mailroom/mr-store-rule.h"

MrRuleSet *
mr_crm_rules_load(MrStore *store, GError **error)
{
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GPtrArray) rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
	gint64 version;

	g_return_val_if_fail(store != NULL, NULL);

	/* The counter first: a change committed between the two reads is
	 * read with the older counter, and read again at the next check. */
	version = mr_store_rules_version(store, error);
	if (version < 0 || (rows = mr_store_rules(store, error)) == NULL)
		return NULL;
	for (guint i = 0; i < rows->len; i++) {
		const MrRuleRow *row = g_ptr_array_index(rows, i);
		g_autoptr(GError) local = NULL;
		MrRule *rule = mr_rule_new(row->name, (const char *const *)row->conditions,
					   (const char *const *)row->actions, row->any, row->stop,
					   &local);

		/* A stored rule was checked when it was added; one that no
		 * longer reads (a newer PCRE2 refusing its pattern) must not
		 * stop the mail: it is left out, loudly. */
		if (rule == NULL) {
			g_warning("rule %s left out: %s", row->name, local->message);
			continue;
		}
		rule->enabled = row->enabled;
		g_ptr_array_add(rules, rule);
	}
	return mr_rule_set_new(version, g_steal_pointer(&rules));
}

/* The values a delivery adds to the scan's: the recipient without its
 * +detail, the role, whether routing found a record, the sender's
 * account.  @account_out keeps the account's name alive. */
static void
delivery_values(const MrConfig *cfg, MrStore *store, const MrRuleScan *scan, const MrPlan *plan,
		MrRuleValues *v, char **account_out)
{
	const MrMailroomAddress *addr = mr_config_find_address(cfg, plan->recipient, NULL);

	memset(v, 0, sizeof *v);
	v->recipient = addr != NULL ? addr->address : plan->recipient;
	v->role = plan->role;
	v->followup = plan->found.kind != MR_RECORD_NONE;
	if (mr_rule_set_needs_account(mr_rule_scan_set(scan)) && plan->customer >= 0) {
		const MrParty *c = g_ptr_array_index(plan->parties, plan->customer);

		if (c->account_id != 0)
			*account_out = mr_store_account_name(store, c->account_id);
	}
	v->account = *account_out;
}

gboolean
mr_crm_rules_amend(const MrConfig *cfg, MrStore *store, const MrRuleScan *scan,
		   const MrMessage *msg, const MrRouteFacts *facts, MrPlan *plan, GError **error)
{
	g_autofree char *account = NULL;
	MrRuleValues v;
	MrRuleOutcome *out;

	g_return_val_if_fail(cfg != NULL && store != NULL && scan != NULL && plan != NULL, FALSE);

	delivery_values(cfg, store, scan, plan, &v, &account);
	if (!mr_store_check(store, error)) {
		g_prefix_error(error, "rules: ");
		return FALSE;
	}
	out = mr_rule_scan_run(scan, &v);
	mr_rule_outcome_free(plan->rules);
	plan->rules = out;
	switch (out->becomes) {
	case MR_RULE_ACT_TICKET:
		mr_route_decide(store, msg, facts, MR_ROLE_SUPPORT, plan);
		break;
	case MR_RULE_ACT_LEAD:
		mr_route_decide(store, msg, facts, MR_ROLE_SALES, plan);
		break;
	case MR_RULE_ACT_LOG:
		mr_route_decide(store, msg, facts, MR_ROLE_BCC, plan);
		break;
	case MR_RULE_ACT_IGNORE:
		mr_route_decide(store, msg, facts, MR_ROLE_BCC, plan);
		plan->action = MR_ACTION_IGNORE;
		plan->record.kind = MR_RECORD_NONE;
		plan->record.id = 0;
		plan->is_reply = FALSE;
		plan->is_response = FALSE;
		break;
	default:
		return TRUE;
	}
	if (!mr_store_check(store, error)) {
		g_prefix_error(error, "rules: ");
		return FALSE;
	}
	return TRUE;
}
