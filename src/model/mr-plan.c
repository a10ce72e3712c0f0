/* mr-plan.c - making and freeing plans (see mr-plan.h).  Model layer. */
#include "mailroom/mr-plan.h"

static void
party_free(MrParty *p)
{
	if (p == NULL)
		return;
	g_free(p->email);
	g_free(p->name);
	g_free(p);
}

MrPlan *
mr_plan_new(void)
{
	MrPlan *plan = g_new0(MrPlan, 1);

	plan->parties = g_ptr_array_new_with_free_func((GDestroyNotify)party_free);
	plan->owner = -1;
	plan->customer = -1;
	plan->action = MR_ACTION_LOG;
	plan->create_contacts = TRUE;
	return plan;
}

void
mr_plan_free(MrPlan *plan)
{
	if (plan == NULL)
		return;
	g_free(plan->recipient);
	g_free(plan->envelope_from);
	g_ptr_array_unref(plan->parties);
	g_free(plan->refused);
	g_free(plan->untrusted);
	g_free(plan->title);
	g_free(plan->record_status);
	mr_rule_outcome_free(plan->rules);
	g_free(plan);
}
