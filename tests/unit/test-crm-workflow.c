/* test-crm-workflow.c - workflows at work in the CRM layer (issue 24):
 * what an event does to the timers (start, restart, cancel, --on, the
 * kind of record, the depth bound), the use cases (built-ins, enable,
 * delete, tasks), and the record's calendar. */
#include <string.h>

#include "mailroom/mr-clock.h"
#include "mailroom/mr-crm.h"
#include "mailroom/mr-crm-workflow.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-calendar.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-rule.h"
#include "mailroom/mr-store-team.h"
#include "mailroom/mr-store-workflow.h"
#include "mr-test-util.h"

/* Friday 2027-01-08 15:00 UTC: 4 business hours (mon-fri 09:00-17:00)
 * end on Monday 11:00. */
#define FRIDAY_15 "2027-01-08T15:00:00Z"

/* A database with the built-in workflows, its event hook, the clock at
 * @now (to the second: the clock runs on). */
typedef struct {
	MrConfig *cfg;
	MrStore *store;
	MrWorkflowHook *hook;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	mr_clock_set_offset(mr_clock_iso_to_unix(FRIDAY_15) - g_get_real_time() / G_USEC_PER_SEC);
	f->cfg = mr_test_config(":memory:");
	f->store = mr_store_open(f->cfg, &error);
	g_assert_no_error(error);
	f->hook = mr_workflow_hook_attach(f->store, f->cfg);
	g_assert_cmpint(mr_crm_user_add(f->store, "agent@acme.test", "Agent", &error), >, 0);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	mr_workflow_hook_free(f->hook);
	mr_store_close(f->store);
	mr_config_unref(f->cfg);
	mr_clock_set_offset(0);
}

/* Routes @msg to @rcpt and applies it in a transaction of its own. */
static MrApplied
deliver(Fixture *f, MrMessage *msg, const char *key, const char *rcpt)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrPlan) plan = NULL;
	g_autoptr(GBytes) raw = g_bytes_new_static("Subject: x\r\n\r\nx\r\n", 17);
	MrApplied applied = { 0 };

	g_assert_true(mr_store_begin(f->store, &error));
	plan = mr_route_plan(f->cfg, f->store, msg, rcpt, "return@client.test", &error);
	g_assert_no_error(error);
	g_assert_true(mr_crm_apply(f->cfg, f->store, plan, raw, key, msg, 0, &applied, &error));
	g_assert_no_error(error);
	g_assert_true(mr_store_commit(f->store, &error));
	return applied;
}

/* The timers of workflow @name (NULL: any) in status @status (NULL:
 * any), as "RECORD STATUS DUE-TO-THE-MINUTE" lines. */
static char *
timers(Fixture *f, const char *name, const char *status)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) jobs = mr_store_jobs(f->store, FALSE, 0, &error);
	GString *s = g_string_new(NULL);

	g_assert_no_error(error);
	for (guint i = 0; i < jobs->len; i++) {
		const MrJobRow *j = g_ptr_array_index(jobs, i);
		g_autofree char *rec = mr_record_display_id(f->cfg, j->record);

		if (g_strcmp0(j->kind, MR_JOB_WORKFLOW) != 0 ||
		    (name != NULL && g_strcmp0(j->workflow, name) != 0) ||
		    (status != NULL && g_strcmp0(j->status, status) != 0))
			continue;
		g_string_append_printf(s, "%s%s %s %.16s", s->len > 0 ? "\n" : "", rec, j->status,
				       j->due);
	}
	return g_string_free(s, FALSE);
}

/* The built-in workflows the schema makes are in canonical form: each
 * reads back and prints the texts it is stored in. */
static void
test_builtins(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) defs = mr_store_workflow_defs(f->store, &error);
	static const char *const names[] = { "ticket-ack", "follow-up", "lead-reminder",
					     "first-response-sla" };

	g_assert_no_error(error);
	g_assert_cmpuint(defs->len, ==, G_N_ELEMENTS(names));
	for (guint i = 0; i < defs->len; i++) {
		const MrWorkflowDef *d = g_ptr_array_index(defs, i);
		g_autoptr(MrWorkflow) wf =
			mr_workflow_from_text(d->name, d->trigger, (const char *const *)d->conditions,
					      (const char *const *)d->actions, d->enabled, &error);
		g_autofree char *trigger = NULL;

		g_assert_no_error(error);
		g_assert_cmpstr(d->name, ==, names[i]);
		g_assert_true(d->enabled);
		trigger = mr_workflow_trigger_text(wf);
		g_assert_cmpstr(trigger, ==, d->trigger);
		g_assert_cmpuint(wf->conds->len, ==, g_strv_length(d->conditions));
		for (guint k = 0; k < wf->conds->len; k++) {
			g_autofree char *t = mr_rule_cond_text(g_ptr_array_index(wf->conds, k));

			g_assert_cmpstr(t, ==, d->conditions[k]);
		}
		g_assert_cmpuint(wf->actions->len, ==, g_strv_length(d->actions));
		for (guint k = 0; k < wf->actions->len; k++) {
			g_autofree char *t = mr_workflow_action_text(g_ptr_array_index(wf->actions, k));

			g_assert_cmpstr(t, ==, d->actions[k]);
		}
	}
	/* and its --unless events in workflow_unless: the set cancels on them */
	{
		g_autoptr(MrWorkflowSet) set = mr_crm_workflows_load(f->store, f->cfg, &error);
		const MrWorkflow *fu = mr_workflow_set_named(set, "follow-up", NULL);

		g_assert_no_error(error);
		g_assert_cmpuint(fu->unless->len, ==, 2);
	}
}

static void
test_sla_start_cancel(Fixture *f, gconstpointer data)
{
	g_autoptr(MrMessage) in = mr_test_message("ann@client.test", "support@acme.test", "Help");
	g_autoptr(MrMessage) out = mr_test_message("agent@acme.test", "ann@client.test",
						   "Re: [TKT-1] Help");
	g_autofree char *sla = NULL, *after = NULL, *fu = NULL;

	deliver(f, in, "k1", "support@acme.test");
	sla = timers(f, "first-response-sla", NULL);
	g_assert_cmpstr(sla, ==, "TKT-1 due 2027-01-11T11:00");
	/* the agent answers through BCC: response.sent cancels it, and starts
	 * no follow-up (that one is for opportunities) */
	deliver(f, out, "k2", "crm@acme.test");
	after = timers(f, "first-response-sla", NULL);
	g_assert_cmpstr(after, ==, "TKT-1 cancelled 2027-01-11T11:00");
	fu = timers(f, "follow-up", NULL);
	g_assert_cmpstr(fu, ==, "");
}

static void
test_follow_up_restart(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrMessage) hello = mr_test_message("agent@acme.test", "bob@client.test", "Hi");
	g_autoptr(MrMessage) o1 = mr_test_message("agent@acme.test", "bob@client.test", "[OPP-1] A");
	g_autoptr(MrMessage) o2 = mr_test_message("agent@acme.test", "bob@client.test", "[OPP-1] B");
	g_autoptr(MrMessage) reply = mr_test_message("bob@client.test", "agent@acme.test",
						     "Re: [OPP-1] B");
	g_autofree char *one = NULL, *two = NULL, *three = NULL;

	deliver(f, hello, "h", "crm@acme.test");
	g_assert_cmpint(mr_crm_opp_add(f->cfg, f->store, "Deal", "bob@client.test", NULL, -1,
				       &error), ==, 1);
	deliver(f, o1, "o1", "crm@acme.test");
	one = timers(f, "follow-up", "due");
	/* Friday 15:00 + 3 business days: Wednesday 15:00 */
	g_assert_cmpstr(one, ==, "OPP-1 due 2027-01-13T15:00");
	/* a second mail of ours starts the clock again: one timer waits */
	deliver(f, o2, "o2", "crm@acme.test");
	two = timers(f, "follow-up", "due");
	g_assert_cmpstr(two, ==, "OPP-1 due 2027-01-13T15:00");
	{
		g_autofree char *gone = timers(f, "follow-up", "cancelled");

		g_assert_cmpstr(gone, ==, "OPP-1 cancelled 2027-01-13T15:00");
	}
	/* the contact's answer cancels it */
	deliver(f, reply, "r", "sales@acme.test");
	three = timers(f, "follow-up", "due");
	g_assert_cmpstr(three, ==, "");
}

static void
test_depth_and_on(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrWorkflowSet) set = NULL;
	g_autofree char *now = mr_clock_now_iso();
	const char *const then[] = { "set priority = high", NULL };
	MrWorkflowSpec spec = { .on = "ticket.status", .actions = then };
	MrRecordRef ref = { MR_RECORD_TICKET, 7 };
	MrEventFacts deep = { .depth = MR_WORKFLOW_MAX_DEPTH };
	MrEventFacts shallow = { .depth = 1 };
	g_autofree char *none = NULL, *one = NULL;

	g_assert_true(mr_crm_workflow_add(f->store, "prio", &spec, FALSE, &error));
	g_assert_no_error(error);
	/* a name taken */
	g_assert_false(mr_crm_workflow_add(f->store, "prio", &spec, FALSE, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS);
	g_clear_error(&error);
	set = mr_crm_workflows_load(f->store, f->cfg, &error);
	g_assert_no_error(error);
	g_assert_nonnull(mr_workflow_set_named(set, "prio", NULL));
	g_assert_true(mr_store_begin(f->store, &error));
	/* too deep: nothing starts */
	g_assert_true(mr_crm_workflows_react(set, f->store, now, MR_EVENT_TICKET_STATUS, ref, 0,
					     &deep, &error));
	g_assert_true(mr_store_commit(f->store, &error));
	none = timers(f, "prio", NULL);
	g_assert_cmpstr(none, ==, "");
	g_assert_true(mr_store_begin(f->store, &error));
	g_assert_true(mr_crm_workflows_react(set, f->store, now, MR_EVENT_TICKET_STATUS, ref, 0,
					     &shallow, &error));
	g_assert_true(mr_store_commit(f->store, &error));
	/* --on: due at once */
	one = timers(f, "prio", NULL);
	g_assert_cmpstr(one, ==, "TKT-7 due 2027-01-08T15:00");
}

static void
test_disable_delete(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrMessage) in = mr_test_message("ann@client.test", "support@acme.test", "Help");
	g_autoptr(MrMessage) in2 = mr_test_message("cid@client.test", "support@acme.test", "Help");
	guint n = 99;

	deliver(f, in, "k1", "support@acme.test");
	g_assert_true(mr_crm_workflow_enable(f->store, "first-response-sla", FALSE, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 1);
	/* disabled (the writer reads the set again at its next batch): a new
	 * ticket starts no timer */
	g_assert_true(mr_workflow_hook_refresh(f->hook, mr_store_rules_version(f->store, NULL),
					       &error));
	deliver(f, in2, "k2", "support@acme.test");
	{
		g_autofree char *due = timers(f, "first-response-sla", "due");

		g_assert_cmpstr(due, ==, "");
	}
	g_assert_true(mr_crm_workflow_enable(f->store, "first-response-sla", TRUE, &n, &error));
	g_assert_cmpuint(n, ==, 0);
	g_assert_true(mr_crm_workflow_delete(f->store, "first-response-sla", &n, &error));
	g_assert_no_error(error);
	g_assert_false(mr_crm_workflow_delete(f->store, "first-response-sla", &n, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
}

static gboolean
team_calendar_tx(MrStore *store, gpointer data, GError **error)
{
	g_autofree char *now = mr_clock_now_iso();
	gint64 user = mr_store_user_by_address(store, "agent@acme.test");
	gint64 team = mr_store_team_insert(store, "night", 0, now, error);
	gint64 cal = mr_store_calendar_put(store, "night", "UTC", "mon-sun 20:00-24:00", FALSE,
					   now, error);

	return team != 0 && cal != 0 && mr_store_team_member_insert(store, team, user, error) &&
	       mr_store_team_set_calendar(store, team, cal, error) &&
	       mr_store_rules_bump(store, error) != 0;
}

static void
test_team_calendar(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrWorkflowSet) set = NULL;
	g_autoptr(MrMessage) fwd = mr_test_message("agent@acme.test", "support@acme.test",
						   "Fwd: broken");
	const MrWorkflow *sla;
	MrRecordRef ticket = { MR_RECORD_TICKET, 1 };
	g_autofree char *due = NULL, *early = NULL;

	g_assert_true(mr_store_run(f->store, team_calendar_tx, NULL, &error));
	g_assert_no_error(error);
	/* the agent's forward opens a ticket the agent owns */
	fwd->is_forward = TRUE;
	deliver(f, fwd, "f", "support@acme.test");
	/* teams with calendars of their own: the earliest due of any
	 * calendar (the night's Saturday 00:00, before default's Monday) */
	early = timers(f, "first-response-sla", "due");
	g_assert_cmpstr(early, ==, "TKT-1 due 2027-01-09T00:00");
	set = mr_crm_workflows_load(f->store, f->cfg, &error);
	g_assert_no_error(error);
	sla = mr_workflow_set_named(set, "first-response-sla", NULL);
	g_assert_nonnull(sla);
	/* the owner's team's calendar: Friday 20:00-24:00 */
	due = mr_clock_unix_to_iso(mr_crm_timer_due(
		sla, mr_crm_record_calendar(set, f->store, ticket), mr_clock_iso_to_unix(FRIDAY_15)));
	g_assert_cmpstr(due, ==, "2027-01-09T00:00:00Z");
}

static void
test_tasks(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) open = NULL;
	MrRecordRef none = { MR_RECORD_NONE, 0 };
	MrRecordRef gone = { MR_RECORD_TICKET, 42 };
	gint64 id;

	id = mr_crm_task_add(f->cfg, f->store, "Call", "agent@acme.test", none, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(mr_crm_task_add(f->cfg, f->store, "X", "nobody@acme.test", none, NULL,
					&error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(mr_crm_task_add(f->cfg, f->store, "X", "agent@acme.test", gone, NULL,
					&error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_true(mr_crm_task_done(f->store, id, &error));
	g_assert_false(mr_crm_task_done(f->store, id, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID);
	g_clear_error(&error);
	open = mr_store_tasks(f->store, NULL, TRUE, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(open->len, ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/mailroom/crm-workflow/builtins", Fixture, NULL, fixture_set_up, test_builtins,
		   fixture_tear_down);
	g_test_add("/mailroom/crm-workflow/sla-start-cancel", Fixture, NULL, fixture_set_up,
		   test_sla_start_cancel, fixture_tear_down);
	g_test_add("/mailroom/crm-workflow/follow-up-restart", Fixture, NULL, fixture_set_up,
		   test_follow_up_restart, fixture_tear_down);
	g_test_add("/mailroom/crm-workflow/depth-and-on", Fixture, NULL, fixture_set_up,
		   test_depth_and_on, fixture_tear_down);
	g_test_add("/mailroom/crm-workflow/disable-delete", Fixture, NULL, fixture_set_up,
		   test_disable_delete, fixture_tear_down);
	g_test_add("/mailroom/crm-workflow/team-calendar", Fixture, NULL, fixture_set_up,
		   test_team_calendar, fixture_tear_down);
	g_test_add("/mailroom/crm-workflow/tasks", Fixture, NULL, fixture_set_up, test_tasks,
		   fixture_tear_down);
	return g_test_run();
}
