/* test-workflow.c - the workflow grammar (model layer, mr-workflow.h):
 * the product's built-in workflows, every trigger form and action kind
 * with its canonical text read back by mr_workflow_from_text(), every
 * refusal with its exact message, conditions evaluated against a ticket,
 * a lead and an opportunity, and hostile texts in every option. */
#include <string.h>

#include "mailroom/mr-status.h"
#include "mailroom/mr-workflow.h"

#define EVENTS                                                                                     \
	"ticket.created, ticket.reopened, ticket.status, ticket.escalated, lead.created, "          \
	"lead.converted, lead.archived, opportunity.created, opportunity.won, opportunity.lost, "  \
	"message.linked, reply.received, response.sent, mail.bounced, mail.held, mail.failed, "    \
	"team.unassigned, task.created, task.done"
#define RECORD_FIELDS "record, status, priority, type, stage, value, owner, tag, weekday, hour"

/* Checks @message against @want: exact, or a prefix when @want ends in
 * "*". */
static void
assert_message(const char *message, const char *want)
{
	gsize n = strlen(want);

	if (n > 0 && want[n - 1] == '*') {
		if (strncmp(message, want, n - 1) != 0)
			g_error("message \"%s\" does not start with \"%.*s\"", message, (int)n - 1, want);
	} else {
		g_assert_cmpstr(message, ==, want);
	}
}

/* Returns: (transfer full): the texts of @wf's conditions, or of its
 * actions (@actions), NULL-terminated. */
static GStrv
part_texts(const MrWorkflow *wf, gboolean actions)
{
	GPtrArray *parts = actions ? wf->actions : wf->conds;
	GStrv out = g_new0(char *, parts->len + 1);

	for (guint i = 0; i < parts->len; i++)
		out[i] = actions ? mr_workflow_action_text(parts->pdata[i])
				 : mr_rule_cond_text(parts->pdata[i]);
	return out;
}

/* TRUE when @a and @b are the same action, member by member. */
static gboolean
action_equal(const MrWorkflowAction *a, const MrWorkflowAction *b)
{
	return a->kind == b->kind && g_strcmp0(a->text, b->text) == 0 && a->team == b->team &&
	       (a->kind != MR_WORKFLOW_ACT_SET ||
		(a->field == b->field && g_strcmp0(a->value, b->value) == 0)) &&
	       a->has_due == b->has_due &&
	       (!a->has_due || (a->due.amount == b->due.amount && a->due.unit == b->due.unit));
}

/* TRUE when @a and @b are the same workflow, member by member. */
static gboolean
workflow_equal(const MrWorkflow *a, const MrWorkflow *b)
{
	if (strcmp(a->name, b->name) != 0 || a->enabled != b->enabled || a->kind != b->kind ||
	    a->event != b->event || a->business != b->business || a->repeat != b->repeat ||
	    a->unless->len != b->unless->len || a->conds->len != b->conds->len ||
	    a->actions->len != b->actions->len)
		return FALSE;
	if (a->kind == MR_WORKFLOW_TIMER &&
	    (a->after.amount != b->after.amount || a->after.unit != b->after.unit))
		return FALSE;
	for (guint i = 0; i < a->unless->len; i++)
		if (g_array_index(a->unless, MrEventType, i) != g_array_index(b->unless, MrEventType, i))
			return FALSE;
	for (guint i = 0; i < a->conds->len; i++)
		if (!mr_rule_cond_equal(a->conds->pdata[i], b->conds->pdata[i]))
			return FALSE;
	for (guint i = 0; i < a->actions->len; i++)
		if (!action_equal(a->actions->pdata[i], b->actions->pdata[i]))
			return FALSE;
	return TRUE;
}

/* Makes @wf again from its canonical texts, as the store keeps them, and
 * checks that it is equal and prints the same; returns the trigger text. */
static char *
assert_round_trip(const MrWorkflow *wf)
{
	g_autofree char *trigger = mr_workflow_trigger_text(wf);
	g_auto(GStrv) conds = part_texts(wf, FALSE);
	g_auto(GStrv) actions = part_texts(wf, TRUE);
	g_autoptr(GError) error = NULL;
	g_autoptr(MrWorkflow) again = NULL;
	g_autofree char *trigger2 = NULL;
	g_auto(GStrv) conds2 = NULL;
	g_auto(GStrv) actions2 = NULL;

	again = mr_workflow_from_text(wf->name, trigger, (const char *const *)conds,
				      (const char *const *)actions, wf->enabled, &error);
	g_assert_no_error(error);
	g_assert_true(workflow_equal(wf, again));
	trigger2 = mr_workflow_trigger_text(again);
	conds2 = part_texts(again, FALSE);
	actions2 = part_texts(again, TRUE);
	g_assert_cmpstr(trigger, ==, trigger2);
	g_assert_true(g_strv_equal((const char *const *)conds, (const char *const *)conds2));
	g_assert_true(g_strv_equal((const char *const *)actions, (const char *const *)actions2));
	return g_steal_pointer(&trigger);
}

/* --- the product's workflows ----------------------------------------------------- */

/* The four built-in workflows parse and print back exactly. */
static void
test_builtin(void)
{
	static const char *const ack_then[] = { "send ticket-ack", NULL };
	static const char *const follow_unless[] = { "reply.received", "mail.bounced", NULL };
	static const char *const follow_if[] = { "record = opportunity", "status = open", NULL };
	static const char *const follow_then[] = { "send follow-up", NULL };
	static const char *const lead_if[] = { "status = new", NULL };
	static const char *const lead_then[] = { "remind", NULL };
	static const char *const sla_unless[] = { "response.sent", NULL };
	static const char *const sla_then[] = { "escalate", NULL };
	static const struct {
		const char *name;
		MrWorkflowSpec spec;
		const char *trigger;
	} cases[] = {
		{ "ticket-ack", { .on = "ticket.created", .actions = ack_then }, "--on ticket.created" },
		{ "follow-up",
		  { .after = "3d", .business = TRUE, .since = "response.sent", .unless = follow_unless,
		    .repeat = 2, .conds = follow_if, .actions = follow_then },
		  "--after 3d --business --since response.sent --unless reply.received --unless "
		  "mail.bounced --repeat 2" },
		{ "lead-reminder",
		  { .after = "1d", .business = TRUE, .since = "lead.created", .conds = lead_if,
		    .actions = lead_then },
		  "--after 1d --business --since lead.created" },
		{ "first-response-sla",
		  { .after = "4h", .business = TRUE, .since = "ticket.created", .unless = sla_unless,
		    .actions = sla_then },
		  "--after 4h --business --since ticket.created --unless response.sent" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflow) wf = mr_workflow_new(cases[i].name, &cases[i].spec, &error);
		g_autofree char *trigger = NULL;
		g_auto(GStrv) conds = NULL;
		g_auto(GStrv) actions = NULL;
		const char *const *want_conds = cases[i].spec.conds;

		g_assert_no_error(error);
		g_assert_cmpstr(wf->name, ==, cases[i].name);
		g_assert_true(wf->enabled);
		trigger = assert_round_trip(wf);
		g_assert_cmpstr(trigger, ==, cases[i].trigger);
		conds = part_texts(wf, FALSE);
		actions = part_texts(wf, TRUE);
		if (want_conds == NULL)
			g_assert_cmpuint(g_strv_length(conds), ==, 0);
		else
			g_assert_true(g_strv_equal(want_conds, (const char *const *)conds));
		g_assert_true(g_strv_equal(cases[i].spec.actions, (const char *const *)actions));
	}
}

/* The members of the built-ins, and their conditions at work. */
static void
test_builtin_members(void)
{
	static const char *const unless[] = { "reply.received", "mail.bounced", NULL };
	static const char *const conds[] = { "record = opportunity", "status = open", NULL };
	static const char *const then[] = { "send follow-up", NULL };
	const MrWorkflowSpec spec = { .after = "3d", .business = TRUE, .since = "response.sent",
				      .unless = unless, .repeat = 2, .conds = conds,
				      .actions = then };
	g_autoptr(GError) error = NULL;
	g_autoptr(MrWorkflow) wf = mr_workflow_new("follow-up", &spec, &error);
	const MrWorkflowAction *send;
	MrRuleValues v = { .record = "opportunity", .status = "open" };

	g_assert_no_error(error);
	g_assert_cmpint(wf->kind, ==, MR_WORKFLOW_TIMER);
	g_assert_cmpint(wf->event, ==, MR_EVENT_RESPONSE_SENT);
	g_assert_cmpint(wf->after.amount, ==, 3);
	g_assert_cmpint(wf->after.unit, ==, MR_DURATION_DAYS);
	g_assert_true(wf->business);
	g_assert_cmpint(wf->repeat, ==, 2);
	g_assert_cmpuint(wf->unless->len, ==, 2);
	g_assert_cmpint(g_array_index(wf->unless, MrEventType, 0), ==, MR_EVENT_REPLY_RECEIVED);
	g_assert_cmpint(g_array_index(wf->unless, MrEventType, 1), ==, MR_EVENT_MAIL_BOUNCED);
	g_assert_cmpuint(wf->conds->len, ==, 2);
	g_assert_cmpuint(wf->actions->len, ==, 1);
	send = wf->actions->pdata[0];
	g_assert_cmpint(send->kind, ==, MR_WORKFLOW_ACT_SEND);
	g_assert_cmpstr(send->text, ==, "follow-up");
	g_assert_true(mr_workflow_conds_hold(wf, &v));
	v.status = "won";
	g_assert_false(mr_workflow_conds_hold(wf, &v));
	v.status = "open";
	v.record = "ticket";
	g_assert_false(mr_workflow_conds_hold(wf, &v));
}

/* --- triggers ------------------------------------------------------------------------ */

/* Every trigger form, its members and its canonical text. */
static void
test_triggers(void)
{
	static const char *const then[] = { "remind", NULL };
	static const char *const u1[] = { "reply.received", NULL };
	static const char *const u3[] = { "task.done", "ticket.escalated", "mail.failed", NULL };
	static const struct {
		MrWorkflowSpec spec;
		MrWorkflowKind kind;
		MrEventType event;
		int repeat;
		guint n_unless;
		const char *text;
	} cases[] = {
		{ { .on = "ticket.created" }, MR_WORKFLOW_ON, MR_EVENT_TICKET_CREATED, 1, 0,
		  "--on ticket.created" },
		{ { .on = "task.done" }, MR_WORKFLOW_ON, MR_EVENT_TASK_DONE, 1, 0, "--on task.done" },
		{ { .on = "team.unassigned" }, MR_WORKFLOW_ON, MR_EVENT_TEAM_UNASSIGNED, 1, 0,
		  "--on team.unassigned" },
		{ { .after = "90m", .since = "lead.created" }, MR_WORKFLOW_TIMER, MR_EVENT_LEAD_CREATED,
		  1, 0, "--after 90m --since lead.created" },
		{ { .after = "4h", .since = "ticket.created", .business = TRUE }, MR_WORKFLOW_TIMER,
		  MR_EVENT_TICKET_CREATED, 1, 0, "--after 4h --business --since ticket.created" },
		{ { .after = "1d", .since = "opportunity.created", .repeat = 1 }, MR_WORKFLOW_TIMER,
		  MR_EVENT_OPPORTUNITY_CREATED, 1, 0, "--after 1d --since opportunity.created" },
		{ { .after = "1d", .since = "opportunity.created", .repeat = 1, .has_repeat = TRUE },
		  MR_WORKFLOW_TIMER, MR_EVENT_OPPORTUNITY_CREATED, 1, 0,
		  "--after 1d --since opportunity.created" },
		{ { .after = "2d", .since = "response.sent", .repeat = 100, .has_repeat = TRUE },
		  MR_WORKFLOW_TIMER, MR_EVENT_RESPONSE_SENT, 100, 0,
		  "--after 2d --since response.sent --repeat 100" },
		{ { .after = "3650d", .since = "message.linked", .unless = u1 }, MR_WORKFLOW_TIMER,
		  MR_EVENT_MESSAGE_LINKED, 1, 1,
		  "--after 3650d --since message.linked --unless reply.received" },
		{ { .after = "5m", .since = "task.created", .unless = u3, .business = TRUE, .repeat = 7 },
		  MR_WORKFLOW_TIMER, MR_EVENT_TASK_CREATED, 7, 3,
		  "--after 5m --business --since task.created --unless task.done --unless "
		  "ticket.escalated --unless mail.failed --repeat 7" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		MrWorkflowSpec spec = cases[i].spec;
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflow) wf = NULL;
		g_autofree char *text = NULL;

		spec.actions = then;
		wf = mr_workflow_new("w", &spec, &error);
		g_test_message("%s", cases[i].text);
		g_assert_no_error(error);
		g_assert_cmpint(wf->kind, ==, cases[i].kind);
		g_assert_cmpint(wf->event, ==, cases[i].event);
		g_assert_cmpint(wf->repeat, ==, cases[i].repeat);
		g_assert_cmpint(wf->business, ==, spec.business);
		g_assert_cmpuint(wf->unless->len, ==, cases[i].n_unless);
		g_assert_cmpuint(wf->conds->len, ==, 0);
		g_assert_true(mr_workflow_conds_hold(wf, &(MrRuleValues){ 0 }));
		text = assert_round_trip(wf);
		g_assert_cmpstr(text, ==, cases[i].text);
	}
}

/* The events a workflow waits for: the header's list, and no other. */
static void
test_events(void)
{
	static const char *const ok[] = {
		"ticket.created", "ticket.reopened", "ticket.status", "ticket.escalated",
		"lead.created", "lead.converted", "lead.archived", "opportunity.created",
		"opportunity.won", "opportunity.lost", "message.linked", "reply.received",
		"response.sent", "mail.bounced", "mail.held", "mail.failed", "team.unassigned",
		"task.created", "task.done",
	};
	guint n = 0;

	for (guint i = 0; i < G_N_ELEMENTS(ok); i++) {
		MrEventType t = mr_event_type_from_name(ok[i]);

		g_assert_cmpint(t, !=, MR_EVENT_OTHER);
		g_assert_true(mr_workflow_event_ok(t));
	}
	for (int t = 0; t <= MR_EVENT_N; t++)
		n += mr_workflow_event_ok((MrEventType)t);
	g_assert_cmpuint(n, ==, G_N_ELEMENTS(ok));
	g_assert_false(mr_workflow_event_ok(MR_EVENT_OTHER));
	g_assert_false(mr_workflow_event_ok(MR_EVENT_LINK_REFUSED));
	g_assert_false(mr_workflow_event_ok(MR_EVENT_SENDER_UNTRUSTED));
	g_assert_false(mr_workflow_event_ok(MR_EVENT_N));
	g_assert_false(mr_workflow_event_ok((MrEventType)-1));
}

/* --- actions -------------------------------------------------------------------------- */

/* Every action kind: its members, its canonical text, read back equal. */
static void
test_actions(void)
{
	static const struct {
		const char *text;
		MrWorkflowActionKind kind;
		const char *str;
		gboolean team;
		MrWorkflowSetField field;
		const char *value;
		const char *due; /* NULL: none */
		const char *canonical;
	} cases[] = {
		{ "send follow-up", MR_WORKFLOW_ACT_SEND, "follow-up", FALSE, 0, NULL, NULL, NULL },
		{ "  send   ticket-ack  ", MR_WORKFLOW_ACT_SEND, "ticket-ack", FALSE, 0, NULL, NULL,
		  "send ticket-ack" },
		{ "send \"v2.offer_de\"", MR_WORKFLOW_ACT_SEND, "v2.offer_de", FALSE, 0, NULL, NULL,
		  "send v2.offer_de" },
		{ "remind", MR_WORKFLOW_ACT_REMIND, NULL, FALSE, 0, NULL, NULL, NULL },
		{ "remind Ann@Example.COM", MR_WORKFLOW_ACT_REMIND, "ann@example.com", FALSE, 0, NULL,
		  NULL, "remind ann@example.com" },
		{ "remind team:sales", MR_WORKFLOW_ACT_REMIND, "sales", TRUE, 0, NULL, NULL, NULL },
		{ "assign bob@example.com", MR_WORKFLOW_ACT_ASSIGN, "bob@example.com", FALSE, 0, NULL,
		  NULL, NULL },
		{ "assign \"team:2nd-level\"", MR_WORKFLOW_ACT_ASSIGN, "2nd-level", TRUE, 0, NULL, NULL,
		  "assign team:2nd-level" },
		{ "assign JÖRG@Example.com", MR_WORKFLOW_ACT_ASSIGN, "jörg@example.com", FALSE, 0, NULL,
		  NULL, "assign jörg@example.com" },
		{ "escalate", MR_WORKFLOW_ACT_ESCALATE, NULL, FALSE, 0, NULL, NULL, NULL },
		{ "escalate team:leads", MR_WORKFLOW_ACT_ESCALATE, "leads", TRUE, 0, NULL, NULL, NULL },
		{ "escalate Lead@Example.com", MR_WORKFLOW_ACT_ESCALATE, "lead@example.com", FALSE, 0,
		  NULL, NULL, "escalate lead@example.com" },
		{ "set status = pending", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_STATUS,
		  "pending", NULL, NULL },
		{ "set status=in_progress", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_STATUS,
		  "in_progress", NULL, "set status = in_progress" },
		{ "set priority = URGENT", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_PRIORITY,
		  "urgent", NULL, "set priority = urgent" },
		{ "set type = Complaint", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_TYPE,
		  "complaint", NULL, "set type = complaint" },
		{ "set stage = \"Closed Won\"", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_STAGE,
		  "Closed Won", NULL, NULL },
		{ "set stage = negotiation", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_STAGE,
		  "negotiation", NULL, NULL },
		{ "set stage = \"say \\\"yes\\\"\"", MR_WORKFLOW_ACT_SET, NULL, FALSE,
		  MR_WORKFLOW_SET_STAGE, "say \"yes\"", NULL, NULL },
		{ "set value = 0", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_VALUE, "0", NULL,
		  NULL },
		{ "set value = 999999999999999", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_VALUE,
		  "999999999999999", NULL, NULL },
		{ "set tag = vip", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_TAG, "vip", NULL,
		  NULL },
		{ "set  tag =  after-hours ", MR_WORKFLOW_ACT_SET, NULL, FALSE, MR_WORKFLOW_SET_TAG,
		  "after-hours", NULL, "set tag = after-hours" },
		{ "task \"Call back\" due 1d", MR_WORKFLOW_ACT_TASK, "Call back", FALSE, 0, NULL, "1d",
		  NULL },
		{ "task Call", MR_WORKFLOW_ACT_TASK, "Call", FALSE, 0, NULL, NULL, NULL },
		{ "task \"Call\"  due  90m", MR_WORKFLOW_ACT_TASK, "Call", FALSE, 0, NULL, "90m",
		  "task Call due 90m" },
		{ "task due", MR_WORKFLOW_ACT_TASK, "due", FALSE, 0, NULL, NULL, NULL },
		{ "task due due 2h", MR_WORKFLOW_ACT_TASK, "due", FALSE, 0, NULL, "2h", NULL },
		{ "task \"Say \\\"hi\\\" \\\\ bye\"", MR_WORKFLOW_ACT_TASK, "Say \"hi\" \\ bye", FALSE,
		  0, NULL, NULL, NULL },
		{ "task \\back\\slash", MR_WORKFLOW_ACT_TASK, "\\back\\slash", FALSE, 0, NULL, NULL,
		  NULL },
		{ "task \"Überprüfen\" due 2h", MR_WORKFLOW_ACT_TASK, "Überprüfen", FALSE, 0, NULL,
		  "2h", "task Überprüfen due 2h" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflowAction) a = mr_workflow_action_parse(cases[i].text, &error);
		g_autoptr(MrWorkflowAction) b = NULL;
		g_autofree char *text = NULL;
		g_autofree char *text2 = NULL;

		g_test_message("%s", cases[i].text);
		g_assert_no_error(error);
		g_assert_cmpint(a->kind, ==, cases[i].kind);
		g_assert_cmpstr(a->text, ==, cases[i].str);
		g_assert_cmpint(a->team, ==, cases[i].team);
		if (a->kind == MR_WORKFLOW_ACT_SET) {
			g_assert_cmpint(a->field, ==, cases[i].field);
			g_assert_cmpstr(a->value, ==, cases[i].value);
		} else {
			g_assert_null(a->value);
		}
		g_assert_cmpint(a->has_due, ==, cases[i].due != NULL);
		if (a->has_due) {
			g_autofree char *due = mr_duration_format(&a->due);

			g_assert_cmpstr(due, ==, cases[i].due);
		}
		text = mr_workflow_action_text(a);
		g_assert_cmpstr(text, ==, cases[i].canonical != NULL ? cases[i].canonical : cases[i].text);
		b = mr_workflow_action_parse(text, &error);
		g_assert_no_error(error);
		g_assert_true(action_equal(a, b));
		text2 = mr_workflow_action_text(b);
		g_assert_cmpstr(text, ==, text2);
	}
}

/* Every refusal of an action, with its code and exact message. */
static void
test_action_errors(void)
{
	static const struct {
		const char *text;
		MrWorkflowError code;
		const char *message; /* exact, or a prefix when it ends in "*" */
	} cases[] = {
		{ "sned follow-up", MR_WORKFLOW_ERROR_ACTION,
		  "'sned follow-up': unknown action sned (actions: send, remind, assign, set, escalate, task)" },
		{ "Send x", MR_WORKFLOW_ERROR_ACTION, "'Send x': unknown action Send (actions: *" },
		{ "send:x", MR_WORKFLOW_ERROR_ACTION, "'send:x': unknown action send:x (actions: *" },
		{ "send", MR_WORKFLOW_ERROR_ACTION, "'send': send needs a template: send TEMPLATE" },
		{ "send a/b", MR_WORKFLOW_ERROR_NAME,
		  "'send a/b': a template's name has only letters, digits, '.', '_' and '-'" },
		{ "send -x", MR_WORKFLOW_ERROR_NAME, "'send -x': a template's name does not start with '-'" },
		{ "send \"\"", MR_WORKFLOW_ERROR_NAME, "'send \"\"': a template's name has 1 to 64 characters" },
		{ "send a b", MR_WORKFLOW_ERROR_ACTION, "'send a b': unexpected text: b (send TEMPLATE)" },
		{ "send \"abc", MR_WORKFLOW_ERROR_ACTION, "'send \"abc': unterminated quoted value" },
		{ "remind a@b c", MR_WORKFLOW_ERROR_ACTION,
		  "'remind a@b c': unexpected text: c (remind [EMAIL|team:NAME])" },
		{ "remind alice", MR_WORKFLOW_ERROR_ACTION,
		  "'remind alice': remind takes an address (user@domain) or team:NAME, not alice" },
		{ "remind team:", MR_WORKFLOW_ERROR_ACTION, "'remind team:': a team's name has 1 to 64 characters" },
		{ "remind team:a/b", MR_WORKFLOW_ERROR_ACTION,
		  "'remind team:a/b': a team's name has only letters, digits, '.', '_' and '-'" },
		{ "assign", MR_WORKFLOW_ERROR_ACTION,
		  "'assign': assign needs an address or a team: assign EMAIL|team:NAME" },
		{ "assign a@b@c", MR_WORKFLOW_ERROR_ACTION,
		  "'assign a@b@c': assign takes an address (user@domain) or team:NAME, not a@b@c" },
		{ "assign @b", MR_WORKFLOW_ERROR_ACTION,
		  "'assign @b': assign takes an address (user@domain) or team:NAME, not @b" },
		{ "assign a@", MR_WORKFLOW_ERROR_ACTION,
		  "'assign a@': assign takes an address (user@domain) or team:NAME, not a@" },
		{ "assign \"a b@c\"", MR_WORKFLOW_ERROR_ACTION,
		  "'assign \"a b@c\"': assign takes an address (user@domain) or team:NAME, not a b@c" },
		{ "escalate a@b c@d", MR_WORKFLOW_ERROR_ACTION,
		  "'escalate a@b c@d': unexpected text: c@d (escalate [EMAIL|team:NAME])" },
		{ "escalate Team:x", MR_WORKFLOW_ERROR_ACTION,
		  "'escalate Team:x': escalate takes an address (user@domain) or team:NAME, not Team:x" },
		{ "set", MR_WORKFLOW_ERROR_ACTION,
		  "'set': set needs FIELD = VALUE (fields: status, priority, type, stage, value, tag)" },
		{ "set = x", MR_WORKFLOW_ERROR_ACTION, "'set = x': set needs FIELD = VALUE (fields: *" },
		{ "set owner = a@b.test", MR_WORKFLOW_ERROR_ACTION,
		  "'set owner = a@b.test': set takes no field owner (fields: status, priority, type, stage, "
		  "value, tag)" },
		{ "set Status = open", MR_WORKFLOW_ERROR_ACTION, "'set Status = open': set takes no field Status *" },
		{ "set status", MR_WORKFLOW_ERROR_ACTION, "'set status': set needs FIELD = VALUE: set status = ..." },
		{ "set status open", MR_WORKFLOW_ERROR_ACTION,
		  "'set status open': set needs FIELD = VALUE: set status = ..." },
		{ "set status =", MR_WORKFLOW_ERROR_ACTION, "'set status =': set status = needs a value" },
		{ "set status = \"in progress\"", MR_WORKFLOW_ERROR_ACTION,
		  "'set status = \"in progress\"': status is a word of 1 to 64 letters, digits, '.', '_' or "
		  "'-', not in progress" },
		{ "set priority = critical", MR_WORKFLOW_ERROR_ACTION,
		  "'set priority = critical': priority is one of low, normal, high, urgent, not critical" },
		{ "set type = bug", MR_WORKFLOW_ERROR_ACTION,
		  "'set type = bug': type is one of question, incident, problem, complaint, not bug" },
		{ "set stage = \"\"", MR_WORKFLOW_ERROR_ACTION, "'set stage = \"\"': stage is not empty" },
		{ "set stage = \"open", MR_WORKFLOW_ERROR_ACTION, "'set stage = \"open': unterminated quoted value" },
		{ "set value = -1", MR_WORKFLOW_ERROR_ACTION,
		  "'set value = -1': value is a whole number of 1 to 15 digits, no sign or leading zero, "
		  "not -1" },
		{ "set value = +3", MR_WORKFLOW_ERROR_ACTION, "'set value = +3': value is a whole number *" },
		{ "set value = 007", MR_WORKFLOW_ERROR_ACTION, "'set value = 007': value is a whole number *" },
		{ "set value = 1.5", MR_WORKFLOW_ERROR_ACTION, "'set value = 1.5': value is a whole number *" },
		{ "set value = 1000000000000000", MR_WORKFLOW_ERROR_ACTION,
		  "'set value = 1000000000000000': value is a whole number *" },
		{ "set value = \"\"", MR_WORKFLOW_ERROR_ACTION, "'set value = \"\"': value is a whole number *" },
		{ "set tag = a/b", MR_WORKFLOW_ERROR_ACTION,
		  "'set tag = a/b': tag is a word of 1 to 64 letters, digits, '.', '_' or '-', not a/b" },
		{ "set tag = a b", MR_WORKFLOW_ERROR_ACTION, "'set tag = a b': unexpected text: b (set FIELD = VALUE)" },
		{ "task", MR_WORKFLOW_ERROR_ACTION, "'task': task needs a title: task TEXT [due DURATION]" },
		{ "task \"\"", MR_WORKFLOW_ERROR_ACTION, "'task \"\"': task needs a title: task TEXT [due DURATION]" },
		{ "task Call back", MR_WORKFLOW_ERROR_ACTION,
		  "'task Call back': unexpected text: back (task TEXT [due DURATION])" },
		{ "task x due", MR_WORKFLOW_ERROR_ACTION,
		  "'task x due': due needs a duration (90m, 4h, 3d): task TEXT [due DURATION]" },
		{ "task x due 3x", MR_WORKFLOW_ERROR_ACTION,
		  "'task x due 3x': due 3x: not a whole number and a unit m, h or d (\"90m\", \"4h\", \"3d\")" },
		{ "task x due 0d", MR_WORKFLOW_ERROR_ACTION, "'task x due 0d': due 0d: not at least 1" },
		{ "task x due 4H", MR_WORKFLOW_ERROR_ACTION, "'task x due 4H': due 4H: not a whole number *" },
		{ "task x due 1d later", MR_WORKFLOW_ERROR_ACTION,
		  "'task x due 1d later': unexpected text: later (task TEXT [due DURATION])" },
		{ "task x dues 1d", MR_WORKFLOW_ERROR_ACTION,
		  "'task x dues 1d': unexpected text: dues 1d (task TEXT [due DURATION])" },
		{ "", MR_WORKFLOW_ERROR_ACTION, "'': empty" },
		{ "   ", MR_WORKFLOW_ERROR_ACTION, "'   ': empty" },
		{ "send\tx", MR_WORKFLOW_ERROR_ACTION, "'send\\x09x': a control character (0x09) at byte 4" },
		{ "task \"a\x1b[2Jb\"", MR_WORKFLOW_ERROR_ACTION,
		  "'task \"a\\x1b[2Jb\"': a control character (0x1b) at byte 7" },
		{ "task \xff\xfe", MR_WORKFLOW_ERROR_ACTION, "'task \xef\xbf\xbd\xef\xbf\xbd': not UTF-8" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflowAction) a = mr_workflow_action_parse(cases[i].text, &error);
		g_autofree char *shown = g_strescape(cases[i].text, NULL);

		g_test_message("%s", shown);
		g_assert_null(a);
		g_assert_error(error, MR_WORKFLOW_ERROR, (int)cases[i].code);
		assert_message(error->message, cases[i].message);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflowAction) a = mr_workflow_action_parse(NULL, &error);

		g_assert_null(a);
		g_assert_error(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_ACTION);
		g_assert_cmpstr(error->message, ==, "'': empty");
	}
}

/* --- workflows --------------------------------------------------------------------- */

/* Every refusal of a workflow, naming its option and quoting its text. */
static void
test_errors(void)
{
	static const char *const then[] = { "remind", NULL };
	static const char *const none[] = { NULL };
	static const char *const u_twice[] = { "reply.received", "mail.bounced", "reply.received", NULL };
	static const char *const u_since[] = { "response.sent", NULL };
	static const char *const u_typo[] = { "mail.bounced", "reply.recieved", NULL };
	static const char *const u_empty[] = { "", NULL };
	static const char *const bad_if[] = { "status = open", "subject ~ x", NULL };
	static const char *const bad_prio[] = { "priority = critical", NULL };
	static const char *const bad_then[] = { "remind", "sned follow-up", NULL };
	static const char *const bad_tmpl[] = { "send a/b", NULL };
	static const struct {
		const char *name;
		MrWorkflowSpec spec; /* .actions: @then when NULL, none when "none" */
		gboolean no_then;
		MrWorkflowError code;
		const char *message;
	} cases[] = {
		{ "bad name", { .on = "ticket.created" }, FALSE, MR_WORKFLOW_ERROR_NAME,
		  "'bad name': a workflow's name has only letters, digits, '.', '_' and '-'" },
		{ NULL, { .on = "ticket.created" }, FALSE, MR_WORKFLOW_ERROR_NAME,
		  "'': a workflow's name has 1 to 64 characters" },
		{ "-w", { .on = "ticket.created" }, FALSE, MR_WORKFLOW_ERROR_NAME,
		  "'-w': a workflow's name does not start with '-'" },
		{ "w", { .on = "ticket.created", .after = "1d", .since = "lead.created" }, FALSE,
		  MR_WORKFLOW_ERROR_TRIGGER, "--on and --after exclude each other" },
		{ "w", { 0 }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "a workflow needs --on EVENT or --after DURATION --since EVENT" },
		{ "w", { .since = "lead.created" }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "a workflow needs --on EVENT or --after DURATION --since EVENT" },
		{ "w", { .on = "ticket.created", .since = "lead.created" }, FALSE,
		  MR_WORKFLOW_ERROR_TRIGGER, "--since needs --after" },
		{ "w", { .on = "ticket.created", .unless = u_since }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "--unless needs --after" },
		{ "w", { .on = "ticket.created", .business = TRUE }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "--business needs --after" },
		{ "w", { .on = "ticket.created", .repeat = 2 }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "--repeat needs --after" },
		{ "w", { .on = "ticket.created", .has_repeat = TRUE }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "--repeat needs --after" },
		{ "w", { .on = "reply.recieved" }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "--on 'reply.recieved': unknown event (events: " EVENTS ")" },
		{ "w", { .on = "other" }, FALSE, MR_WORKFLOW_ERROR_TRIGGER, "--on 'other': unknown event *" },
		{ "w", { .on = "" }, FALSE, MR_WORKFLOW_ERROR_TRIGGER, "--on '': unknown event *" },
		{ "w", { .on = "Ticket.Created" }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "--on 'Ticket.Created': unknown event *" },
		{ "w", { .on = "link.refused" }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "--on 'link.refused': not an event of a record: no workflow waits for it (events: " EVENTS ")" },
		{ "w", { .after = "1d" }, FALSE, MR_WORKFLOW_ERROR_TRIGGER, "--after needs --since EVENT" },
		{ "w", { .after = "3x", .since = "lead.created" }, FALSE, MR_WORKFLOW_ERROR_DURATION,
		  "--after '3x': not a whole number and a unit m, h or d (\"90m\", \"4h\", \"3d\")" },
		{ "w", { .after = "0h", .since = "lead.created" }, FALSE, MR_WORKFLOW_ERROR_DURATION,
		  "--after '0h': not at least 1" },
		{ "w", { .after = "03h", .since = "lead.created" }, FALSE, MR_WORKFLOW_ERROR_DURATION,
		  "--after '03h': a number with a leading zero" },
		{ "w", { .after = "3651d", .since = "lead.created" }, FALSE, MR_WORKFLOW_ERROR_DURATION,
		  "--after '3651d': more than ten years (at most 3650d)" },
		{ "w", { .after = "a\": b", .since = "lead.created" }, FALSE, MR_WORKFLOW_ERROR_DURATION,
		  "--after 'a\": b': not a whole number *" },
		{ "w", { .after = "3d", .since = "reply.recieved" }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "--since 'reply.recieved': unknown event (events: " EVENTS ")" },
		{ "w", { .after = "3d", .since = "sender.untrusted" }, FALSE, MR_WORKFLOW_ERROR_TRIGGER,
		  "--since 'sender.untrusted': not an event of a record: *" },
		{ "w", { .after = "3d", .since = "response.sent", .unless = u_typo }, FALSE,
		  MR_WORKFLOW_ERROR_TRIGGER, "--unless 'reply.recieved': unknown event (events: *" },
		{ "w", { .after = "3d", .since = "response.sent", .unless = u_empty }, FALSE,
		  MR_WORKFLOW_ERROR_TRIGGER, "--unless '': unknown event (events: *" },
		{ "w", { .after = "3d", .since = "response.sent", .unless = u_twice }, FALSE,
		  MR_WORKFLOW_ERROR_TRIGGER, "--unless reply.received: given twice" },
		{ "w", { .after = "3d", .since = "response.sent", .unless = u_since }, FALSE,
		  MR_WORKFLOW_ERROR_TRIGGER, "--unless response.sent: the --since event" },
		{ "w", { .after = "3d", .since = "response.sent", .has_repeat = TRUE }, FALSE,
		  MR_WORKFLOW_ERROR_TRIGGER, "--repeat 0: from 1 to 100" },
		{ "w", { .after = "3d", .since = "response.sent", .repeat = 101 }, FALSE,
		  MR_WORKFLOW_ERROR_TRIGGER, "--repeat 101: from 1 to 100" },
		{ "w", { .after = "3d", .since = "response.sent", .repeat = -1, .has_repeat = TRUE },
		  FALSE, MR_WORKFLOW_ERROR_TRIGGER, "--repeat -1: from 1 to 100" },
		{ "w", { .on = "ticket.created" }, TRUE, MR_WORKFLOW_ERROR_EMPTY,
		  "a workflow needs at least one --then" },
		{ "w", { .on = "ticket.created", .actions = none }, FALSE, MR_WORKFLOW_ERROR_EMPTY,
		  "a workflow needs at least one --then" },
		{ "w", { .on = "ticket.created", .conds = bad_if }, FALSE, MR_WORKFLOW_ERROR_CONDITION,
		  "--if 'subject ~ x': subject is a field of a message; a workflow's conditions take: "
		  RECORD_FIELDS },
		{ "w", { .on = "ticket.created", .conds = bad_prio }, FALSE, MR_WORKFLOW_ERROR_CONDITION,
		  "--if 'priority = critical': priority is one of low, normal, high, urgent, not critical" },
		{ "w", { .on = "ticket.created", .actions = bad_then }, FALSE, MR_WORKFLOW_ERROR_ACTION,
		  "--then 'sned follow-up': unknown action sned (actions: send, remind, assign, set, "
		  "escalate, task)" },
		{ "w", { .on = "ticket.created", .actions = bad_tmpl }, FALSE, MR_WORKFLOW_ERROR_NAME,
		  "--then 'send a/b': a template's name has only letters, digits, '.', '_' and '-'" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		MrWorkflowSpec spec = cases[i].spec;
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflow) wf = NULL;

		if (spec.actions == NULL && !cases[i].no_then)
			spec.actions = then;
		wf = mr_workflow_new(cases[i].name, &spec, &error);
		g_test_message("%u: %s", i, cases[i].message);
		g_assert_null(wf);
		g_assert_error(error, MR_WORKFLOW_ERROR, (int)cases[i].code);
		assert_message(error->message, cases[i].message);
	}
}

/* At most MR_WORKFLOW_PARTS_MAX of --if, --then and --unless. */
static void
test_parts_max(void)
{
	const char *many[MR_WORKFLOW_PARTS_MAX + 2] = { NULL };
	const char *many_unless[MR_WORKFLOW_PARTS_MAX + 2] = { NULL };
	static const char *const then[] = { "remind", NULL };
	static const char *const conds[] = { "status exists", NULL };
	static const struct {
		const char *which;
		MrWorkflowError code;
		const char *message;
	} cases[] = {
		{ "if", MR_WORKFLOW_ERROR_CONDITION, "--if: at most 32 (33 given)" },
		{ "then", MR_WORKFLOW_ERROR_ACTION, "--then: at most 32 (33 given)" },
		{ "unless", MR_WORKFLOW_ERROR_TRIGGER, "--unless: at most 32 (33 given)" },
	};

	for (guint i = 0; i <= MR_WORKFLOW_PARTS_MAX; i++)
		many_unless[i] = "reply.received";
	for (guint c = 0; c < G_N_ELEMENTS(cases); c++) {
		gboolean is_if = strcmp(cases[c].which, "if") == 0;
		MrWorkflowSpec spec = { .after = "1d", .since = "lead.created", .actions = then,
					.conds = conds };
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflow) wf = NULL;

		for (guint i = 0; i < MR_WORKFLOW_PARTS_MAX; i++)
			many[i] = is_if ? "status exists" : "remind";
		many[MR_WORKFLOW_PARTS_MAX] = NULL;
		/* 32 is fine */
		if (strcmp(cases[c].which, "unless") != 0) {
			if (is_if)
				spec.conds = many;
			else
				spec.actions = many;
			wf = mr_workflow_new("w", &spec, &error);
			g_assert_no_error(error);
			g_clear_pointer(&wf, mr_workflow_free);
			many[MR_WORKFLOW_PARTS_MAX] = many[0];
		} else {
			spec.unless = many_unless;
		}
		wf = mr_workflow_new("w", &spec, &error);
		g_assert_null(wf);
		g_assert_error(error, MR_WORKFLOW_ERROR, (int)cases[c].code);
		g_assert_cmpstr(error->message, ==, cases[c].message);
	}
}

/* Workflows of every kind, with many conditions, made again from their
 * canonical texts as equal workflows; enabled is kept. */
static void
test_round_trip(void)
{
	static const char *const c1[] = {
		"record in ticket,lead",      "not status in solved,closed", "priority > normal",
		"priority < \"URGENT\"",      "type != complaint",           "not type exists",
		"stage = \"Closed Won\"",     "stage !~ \"^lost|dead$\"",    "value > 010000",
		"value exists",               "owner ends @Example.com",     "not owner exists",
		"tag in vip,\"key account\"", "tag !~ ^x-",                  "weekday in sat,sun",
		"hour < 9",                   "status starts in_",           "stage contains \"a\\\"b\"",
		"tag = \\back",               "owner = \"\"",
		NULL,
	};
	static const char *const a1[] = {
		"send follow-up", "remind", "remind team:sales", "assign Ann@Example.com",
		"assign team:2nd-level", "set status = pending", "set priority = HIGH",
		"set type = incident", "set stage = \"Closed Won\"", "set value = 1500",
		"set tag = vip", "escalate", "escalate boss@example.com", "escalate team:leads",
		"task \"Call back\" due 1d", "task Call", "task \"\\\"quoted\\\"\"", NULL,
	};
	static const char *const u[] = { "reply.received", "mail.bounced", "mail.held", NULL };
	static const char *const a2[] = { "escalate", NULL };
	static const struct {
		MrWorkflowSpec spec;
		gboolean enabled;
	} cases[] = {
		{ { .on = "ticket.created", .conds = c1, .actions = a1 }, TRUE },
		{ { .on = "opportunity.lost", .actions = a2 }, FALSE },
		{ { .after = "90m", .since = "ticket.created", .conds = c1, .actions = a1 }, FALSE },
		{ { .after = "2d", .business = TRUE, .since = "response.sent", .unless = u, .repeat = 3,
		    .conds = c1, .actions = a2 },
		  TRUE },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflow) wf = mr_workflow_new("round-trip", &cases[i].spec, &error);
		g_autofree char *trigger = NULL;

		g_assert_no_error(error);
		wf->enabled = cases[i].enabled;
		trigger = assert_round_trip(wf);
		g_test_message("%s", trigger);
	}
}

/* What mr_workflow_from_text() makes of a stored trigger: spaces are
 * forgiven, and a row that no longer reads is refused in one line. */
static void
test_from_text(void)
{
	static const char *const then[] = { "remind", NULL };
	static const char *const bad_then[] = { "remind", "sned x", NULL };
	static const char *const bad_if[] = { "subject = x", NULL };
	static const struct {
		const char *trigger;
		const char *const *conds;
		const char *const *actions;
		MrWorkflowError code;
		const char *message; /* NULL: made, and its trigger prints as @canonical */
		const char *canonical;
	} cases[] = {
		{ " --on  ticket.created ", NULL, then, 0, NULL, "--on ticket.created" },
		{ "--since lead.created --repeat 2 --after 1d --business --unless task.done", NULL, then,
		  0, NULL, "--after 1d --business --since lead.created --unless task.done --repeat 2" },
		{ "--after 1d --since lead.created --repeat 1", NULL, then, 0, NULL,
		  "--after 1d --since lead.created" },
		{ NULL, NULL, then, MR_WORKFLOW_ERROR_TRIGGER, "trigger '': not a trigger", NULL },
		{ "", NULL, then, MR_WORKFLOW_ERROR_TRIGGER,
		  "a workflow needs --on EVENT or --after DURATION --since EVENT", NULL },
		{ "--on", NULL, then, MR_WORKFLOW_ERROR_TRIGGER, "trigger '--on': --on needs a value", NULL },
		{ "--on ticket.created --on lead.created", NULL, then, MR_WORKFLOW_ERROR_TRIGGER,
		  "trigger '--on ticket.created --on lead.created': --on given twice", NULL },
		{ "--after 1d --since lead.created --frobnicate", NULL, then, MR_WORKFLOW_ERROR_TRIGGER,
		  "trigger '--after 1d --since lead.created --frobnicate': unexpected --frobnicate", NULL },
		{ "ticket.created", NULL, then, MR_WORKFLOW_ERROR_TRIGGER,
		  "trigger 'ticket.created': unexpected ticket.created", NULL },
		{ "--after 1d --since lead.created --repeat x", NULL, then, MR_WORKFLOW_ERROR_TRIGGER,
		  "trigger '--after 1d --since lead.created --repeat x': --repeat takes a number, not x", NULL },
		{ "--after 1d --since lead.created --repeat 0", NULL, then, MR_WORKFLOW_ERROR_TRIGGER,
		  "--repeat 0: from 1 to 100", NULL },
		{ "--after 1d --since lead.created --repeat 2 --repeat 3", NULL, then,
		  MR_WORKFLOW_ERROR_TRIGGER, "trigger '--after 1d --since lead.created --repeat 2 --repeat "
		  "3': unexpected --repeat", NULL },
		{ "--on ticket.created\x01", NULL, then, MR_WORKFLOW_ERROR_TRIGGER,
		  "--on 'ticket.created\\x01': unknown event *", NULL },
		{ "--on \xff", NULL, then, MR_WORKFLOW_ERROR_TRIGGER, "trigger '--on \xef\xbf\xbd': not a trigger", NULL },
		{ "--on ticket.created", bad_if, then, MR_WORKFLOW_ERROR_CONDITION,
		  "--if 'subject = x': subject is a field of a message; *", NULL },
		{ "--on ticket.created", NULL, bad_then, MR_WORKFLOW_ERROR_ACTION,
		  "--then 'sned x': unknown action sned *", NULL },
		{ "--on ticket.created", NULL, NULL, MR_WORKFLOW_ERROR_EMPTY,
		  "a workflow needs at least one --then", NULL },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflow) wf = mr_workflow_from_text("stored", cases[i].trigger, cases[i].conds,
								 cases[i].actions, FALSE, &error);

		g_test_message("%u", i);
		if (cases[i].message == NULL) {
			g_autofree char *trigger = NULL;

			g_assert_no_error(error);
			g_assert_false(wf->enabled);
			trigger = mr_workflow_trigger_text(wf);
			g_assert_cmpstr(trigger, ==, cases[i].canonical);
			continue;
		}
		g_assert_null(wf);
		g_assert_error(error, MR_WORKFLOW_ERROR, (int)cases[i].code);
		assert_message(error->message, cases[i].message);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflow) wf = mr_workflow_from_text("bad name", "--on ticket.created", NULL,
								 then, TRUE, &error);

		g_assert_null(wf);
		g_assert_error(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_NAME);
	}
}

/* --- conditions at work -------------------------------------------------------------- */

static const char *const vip_tags[] = { "vip", "billing", NULL };

/* A workflow's conditions against a ticket, a lead and an opportunity:
 * all must hold; priority in its order, tags, exists, no owner. */
static void
test_conds_hold(void)
{
	const MrRuleValues ticket = { .record = "ticket", .status = "open", .priority = "high",
				      .type = "incident", .owner = "ann@example.com",
				      .tags = vip_tags, .weekday = 2, .hour = 10 };
	const MrRuleValues lead = { .record = "lead", .status = "new", .priority = "low",
				    .weekday = 5, .hour = 23 };
	const MrRuleValues opp = { .record = "opportunity", .status = "open", .stage = "Proposal",
				   .has_value = TRUE, .value = 15000, .owner = "Bob@Example.com",
				   .weekday = 0, .hour = 9 };
	static const struct {
		const char *conds[4];
		gboolean ticket, lead, opp;
	} cases[] = {
		{ { NULL }, TRUE, TRUE, TRUE },
		{ { "record = ticket" }, TRUE, FALSE, FALSE },
		{ { "record in lead,opportunity" }, FALSE, TRUE, TRUE },
		{ { "status = open" }, TRUE, FALSE, TRUE },
		{ { "record = opportunity", "status = open" }, FALSE, FALSE, TRUE },
		{ { "priority > normal" }, TRUE, FALSE, FALSE },
		{ { "priority < normal" }, FALSE, TRUE, FALSE },
		{ { "priority != high" }, FALSE, TRUE, TRUE },
		{ { "priority in low,high" }, TRUE, TRUE, FALSE },
		{ { "priority exists" }, TRUE, TRUE, FALSE },
		{ { "not priority exists" }, FALSE, FALSE, TRUE },
		{ { "type = incident" }, TRUE, FALSE, FALSE },
		{ { "type exists" }, TRUE, FALSE, FALSE },
		{ { "tag = vip" }, TRUE, FALSE, FALSE },
		{ { "tag != vip" }, FALSE, TRUE, TRUE },
		{ { "tag exists" }, TRUE, FALSE, FALSE },
		{ { "tag in gold,billing", "priority = high" }, TRUE, FALSE, FALSE },
		{ { "owner exists" }, TRUE, FALSE, TRUE },
		{ { "not owner exists" }, FALSE, TRUE, FALSE },
		{ { "owner = bob@example.com" }, FALSE, FALSE, TRUE },
		{ { "owner != ann@example.com" }, FALSE, TRUE, TRUE },
		{ { "value > 10000" }, FALSE, FALSE, TRUE },
		{ { "value < 10000" }, FALSE, FALSE, FALSE },
		{ { "value exists" }, FALSE, FALSE, TRUE },
		{ { "stage ~ ^prop" }, FALSE, FALSE, TRUE },
		{ { "stage exists" }, FALSE, FALSE, TRUE },
		{ { "weekday in sat,sun" }, FALSE, TRUE, FALSE },
		{ { "hour > 8", "hour < 18" }, TRUE, FALSE, TRUE },
		{ { "status = open", "priority > low", "tag = vip" }, TRUE, FALSE, FALSE },
	};
	static const char *const then[] = { "remind", NULL };

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		const MrWorkflowSpec spec = { .on = "ticket.created", .conds = cases[i].conds,
					      .actions = then };
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflow) wf = mr_workflow_new("w", &spec, &error);

		g_test_message("%s", cases[i].conds[0] != NULL ? cases[i].conds[0] : "(none)");
		g_assert_no_error(error);
		g_assert_cmpint(mr_workflow_conds_hold(wf, &ticket), ==, cases[i].ticket);
		g_assert_cmpint(mr_workflow_conds_hold(wf, &lead), ==, cases[i].lead);
		g_assert_cmpint(mr_workflow_conds_hold(wf, &opp), ==, cases[i].opp);
	}
}

/* --- hostile input ------------------------------------------------------------------- */

/* Checks that @error is one line of printable, valid UTF-8, not long,
 * starting with @start. */
static void
assert_one_line(const GError *error, const char *start)
{
	const char *m;

	g_assert_nonnull(error);
	m = error->message;
	g_assert_true(g_utf8_validate(m, -1, NULL));
	for (const char *p = m; *p != '\0'; p++)
		g_assert_true((guchar)*p >= 0x20 && *p != 0x7f);
	g_assert_cmpuint(strlen(m), <, 600);
	if (!g_str_has_prefix(m, start))
		g_error("message \"%s\" does not start with \"%s\"", m, start);
}

/* Very long texts, control characters and bytes that are not UTF-8 in
 * every option: each refused in one line that names the option. */
static void
test_hostile(void)
{
	g_autofree char *fill = g_strnfill(MR_RULE_TEXT_MAX + 1, 'x');
	g_autofree char *long_task = g_strdup_printf("task \"%.*s\"", MR_RULE_TEXT_MAX - 7, fill);
	g_autofree char *too_long_task = g_strdup_printf("task %s", fill);
	g_autofree char *long_if = g_strdup_printf("status = %s", fill);
	const char *const bad[] = { fill, "ticket.created\x1b[2J", "\xff\xfe", "a\nb", "ticket.created\x7f",
				    "caf\xc3", "\xc2\x9b" "31m" };
	static const char *const then[] = { "remind", NULL };

	/* the longest text an action takes, and one byte more */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(MrWorkflowAction) a = mr_workflow_action_parse(long_task, &error);
		g_autoptr(MrWorkflowAction) b = mr_workflow_action_parse(too_long_task, NULL);

		g_assert_no_error(error);
		g_assert_cmpuint(strlen(a->text), ==, MR_RULE_TEXT_MAX - 7);
		g_assert_null(b);
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		const char *s = bad[i];
		const char *list[] = { s, NULL };
		g_autofree char *then_text = g_strdup_printf("task %s", s);
		g_autofree char *if_text = g_strdup_printf("status = %s", s);
		const char *then_list[] = { then_text, NULL };
		const char *if_list[] = { if_text, NULL };
		const struct {
			const char *name;
			MrWorkflowSpec spec;
			const char *start;
		} cases[] = {
			{ s, { .on = "ticket.created", .actions = then }, "'" },
			{ "w", { .on = s, .actions = then }, "--on '" },
			{ "w", { .after = s, .since = "lead.created", .actions = then }, "--after '" },
			{ "w", { .after = "1d", .since = s, .actions = then }, "--since '" },
			{ "w", { .after = "1d", .since = "lead.created", .unless = list, .actions = then },
			  "--unless '" },
			{ "w", { .on = "ticket.created", .conds = list, .actions = then }, "--if '" },
			{ "w", { .on = "ticket.created", .conds = if_list, .actions = then }, "--if '" },
			{ "w", { .on = "ticket.created", .actions = list }, "--then '" },
			{ "w", { .on = "ticket.created", .actions = then_list }, "--then '" },
		};

		for (guint c = 0; c < G_N_ELEMENTS(cases); c++) {
			g_autoptr(GError) error = NULL;
			g_autoptr(MrWorkflow) wf = mr_workflow_new(cases[c].name, &cases[c].spec, &error);

			g_test_message("%u/%u", i, c);
			/* a C1 character is text, as in a rule's value (shown
			 * escaped wherever it is printed): a fine --if value or
			 * --then title */
			if (wf != NULL) {
				g_assert_true(s == bad[G_N_ELEMENTS(bad) - 1] && (c == 6 || c == 8));
				continue;
			}
			assert_one_line(error, cases[c].start);
		}
		{
			g_autoptr(GError) error = NULL;
			g_autofree char *trigger = g_strdup_printf("--on %s", s);
			g_autoptr(MrWorkflow) wf = mr_workflow_from_text("w", trigger, NULL, then, TRUE,
									 &error);

			g_assert_null(wf);
			assert_one_line(error, strchr(s, '\n') != NULL ? "--on '" : "");
		}
	}
	/* too long --if and --then, by a byte */
	{
		const char *ifs[] = { long_if, NULL };
		const char *thens[] = { too_long_task, NULL };
		const MrWorkflowSpec a = { .on = "ticket.created", .conds = ifs, .actions = then };
		const MrWorkflowSpec b = { .on = "ticket.created", .actions = thens };
		g_autoptr(GError) ea = NULL;
		g_autoptr(GError) eb = NULL;
		g_autoptr(MrWorkflow) wa = mr_workflow_new("w", &a, &ea);
		g_autoptr(MrWorkflow) wb = mr_workflow_new("w", &b, &eb);

		g_assert_error(ea, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_CONDITION);
		g_assert_true(g_str_has_suffix(ea->message, "...': too long (4106 bytes, at most 4096)"));
		g_assert_error(eb, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_ACTION);
		g_assert_true(g_str_has_suffix(eb->message, "...': too long (4102 bytes, at most 4096)"));
	}
	/* a quote left open at every length of an action */
	{
		const char *base = "task \"abc\\\\\\\"def\" due 1d";
		gsize len = strlen(base);

		for (gsize cut = 0; cut <= len; cut++) {
			g_autofree char *text = g_strndup(base, cut);
			g_autoptr(GError) error = NULL;
			g_autoptr(MrWorkflowAction) a = mr_workflow_action_parse(text, &error);

			g_assert_true((a == NULL) != (error == NULL));
			if (error != NULL)
				assert_one_line(error, "'");
		}
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/model/workflow/builtin", test_builtin);
	g_test_add_func("/mailroom/model/workflow/builtin-members", test_builtin_members);
	g_test_add_func("/mailroom/model/workflow/triggers", test_triggers);
	g_test_add_func("/mailroom/model/workflow/events", test_events);
	g_test_add_func("/mailroom/model/workflow/actions", test_actions);
	g_test_add_func("/mailroom/model/workflow/actions/errors", test_action_errors);
	g_test_add_func("/mailroom/model/workflow/errors", test_errors);
	g_test_add_func("/mailroom/model/workflow/parts-max", test_parts_max);
	g_test_add_func("/mailroom/model/workflow/round-trip", test_round_trip);
	g_test_add_func("/mailroom/model/workflow/from-text", test_from_text);
	g_test_add_func("/mailroom/model/workflow/conds-hold", test_conds_hold);
	g_test_add_func("/mailroom/model/workflow/hostile", test_hostile);
	return g_test_run();
}
