/* test-model.c - the model layer: record kinds and display ids, statuses
 * and the changes allowed, event type names and sentences. */
#include <string.h>

#include "mailroom/mr-event.h"
#include "mailroom/mr-record.h"
#include "mailroom/mr-status.h"
#include "mr-test-util.h"

static void
test_parse_id(void)
{
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	MrRecordRef ref;
	g_autofree char *display = NULL;

	g_assert_true(mr_record_parse_id(cfg, "tkt-3", MR_RECORD_NONE, &ref));
	g_assert_cmpint(ref.kind, ==, MR_RECORD_TICKET);
	g_assert_cmpint(ref.id, ==, 3);
	g_assert_true(mr_record_parse_id(cfg, "OPP-42", MR_RECORD_NONE, &ref));
	g_assert_cmpint(ref.kind, ==, MR_RECORD_OPPORTUNITY);
	g_assert_true(mr_record_parse_id(cfg, "7", MR_RECORD_LEAD, &ref));
	g_assert_cmpint(ref.kind, ==, MR_RECORD_LEAD);
	g_assert_true(mr_record_parse_id(cfg, "LEAD-7", MR_RECORD_NONE, &ref));
	g_assert_false(mr_record_parse_id(cfg, "7", MR_RECORD_NONE, &ref));
	g_assert_false(mr_record_parse_id(cfg, "TKT-3x", MR_RECORD_NONE, &ref));
	g_assert_false(mr_record_parse_id(cfg, "0", MR_RECORD_LEAD, &ref));
	g_assert_false(mr_record_parse_id(cfg, "", MR_RECORD_LEAD, &ref));
	ref.kind = MR_RECORD_TICKET;
	ref.id = 1337;
	display = mr_record_display_id(cfg, ref);
	g_assert_cmpstr(display, ==, "TKT-1337");
}

/* A changed prefix changes every display id, and parsing follows it. */
static void
test_prefix(void)
{
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	MrRecordRef ref = { MR_RECORD_TICKET, 5 };
	g_autofree char *display = NULL;

	g_free(cfg->ids.ticket_prefix);
	cfg->ids.ticket_prefix = g_strdup("CASE");
	display = mr_record_display_id(cfg, ref);

	g_assert_cmpstr(display, ==, "CASE-5");
	g_assert_true(mr_record_parse_id(cfg, "case-5", MR_RECORD_NONE, &ref));
	g_assert_false(mr_record_parse_id(cfg, "TKT-5", MR_RECORD_NONE, &ref));
}

static void
test_kind_names(void)
{
	const MrRecordKind kinds[] = { MR_RECORD_LEAD, MR_RECORD_OPPORTUNITY, MR_RECORD_TICKET };

	for (guint i = 0; i < G_N_ELEMENTS(kinds); i++)
		g_assert_cmpint(mr_record_kind_from_name(mr_record_kind_name(kinds[i])), ==, kinds[i]);
	g_assert_null(mr_record_kind_name(MR_RECORD_NONE));
	g_assert_cmpint(mr_record_kind_from_name("contact"), ==, MR_RECORD_NONE);
	g_assert_cmpint(mr_record_kind_from_name(NULL), ==, MR_RECORD_NONE);
}

/* Every status reads back as itself; the texts are the stored ones. */
static void
test_status_names(void)
{
	const MrRecordKind kinds[] = { MR_RECORD_LEAD, MR_RECORD_OPPORTUNITY, MR_RECORD_TICKET };
	g_autofree char *tickets = mr_status_list(MR_RECORD_TICKET);

	for (guint k = 0; k < G_N_ELEMENTS(kinds); k++)
		for (int s = 0; mr_status_name(kinds[k], s) != NULL; s++)
			g_assert_cmpint(mr_status_from_name(kinds[k], mr_status_name(kinds[k], s)), ==, s);
	g_assert_cmpstr(tickets, ==, "new, open, pending, solved, closed");
	g_assert_cmpstr(mr_status_name(MR_RECORD_LEAD, MR_LEAD_IN_PROGRESS), ==, "in_progress");
	g_assert_cmpint(mr_status_from_name(MR_RECORD_TICKET, "Open"), ==, -1);
	g_assert_cmpint(mr_status_from_name(MR_RECORD_OPPORTUNITY, "new"), ==, -1);
	g_assert_null(mr_status_name(MR_RECORD_TICKET, 99));
	g_assert_null(mr_status_name(MR_RECORD_TICKET, -1));
	g_assert_null(mr_status_name(MR_RECORD_NONE, 0));
	g_assert_cmpstr(mr_priority_name(MR_PRIORITY_URGENT), ==, "urgent");
	g_assert_cmpint(mr_priority_from_name("normal"), ==, MR_PRIORITY_NORMAL);
	g_assert_cmpint(mr_priority_from_name("urgentissimo"), ==, -1);
	g_assert_cmpstr(mr_ticket_type_name(MR_TICKET_COMPLAINT), ==, "complaint");
	g_assert_cmpint(mr_ticket_type_from_name("incident"), ==, MR_TICKET_INCIDENT);
}

static void
test_status_changes(void)
{
	/* mail reopens a solved or closed ticket, and nothing else */
	for (int s = MR_TICKET_NEW; s <= MR_TICKET_CLOSED; s++)
		g_assert_cmpint(mr_status_can_change(MR_RECORD_TICKET, s, MR_TICKET_OPEN, MR_CHANGE_BY_MAIL),
				==, s == MR_TICKET_SOLVED || s == MR_TICKET_CLOSED);
	g_assert_false(mr_status_can_change(MR_RECORD_TICKET, MR_TICKET_SOLVED, MR_TICKET_NEW,
					    MR_CHANGE_BY_MAIL));
	/* a person sets a ticket to any status */
	g_assert_true(mr_status_can_change(MR_RECORD_TICKET, MR_TICKET_CLOSED, MR_TICKET_NEW,
					   MR_CHANGE_BY_USER));
	g_assert_false(mr_status_can_change(MR_RECORD_TICKET, MR_TICKET_OPEN, 42, MR_CHANGE_BY_USER));
	/* leads and opportunities close once */
	g_assert_true(mr_status_can_change(MR_RECORD_LEAD, MR_LEAD_IN_PROGRESS, MR_LEAD_CONVERTED,
					   MR_CHANGE_BY_USER));
	g_assert_false(mr_status_can_change(MR_RECORD_LEAD, MR_LEAD_ARCHIVED, MR_LEAD_CONVERTED,
					    MR_CHANGE_BY_USER));
	g_assert_false(mr_status_can_change(MR_RECORD_LEAD, MR_LEAD_NEW, MR_LEAD_ARCHIVED,
					    MR_CHANGE_BY_MAIL));
	g_assert_true(mr_status_can_change(MR_RECORD_OPPORTUNITY, MR_OPP_OPEN, MR_OPP_LOST,
					   MR_CHANGE_BY_USER));
	g_assert_false(mr_status_can_change(MR_RECORD_OPPORTUNITY, MR_OPP_WON, MR_OPP_LOST,
					    MR_CHANGE_BY_USER));
	/* which records take mail */
	g_assert_true(mr_status_takes_mail(MR_RECORD_LEAD, MR_LEAD_IN_PROGRESS));
	g_assert_false(mr_status_takes_mail(MR_RECORD_LEAD, MR_LEAD_CONVERTED));
	g_assert_false(mr_status_takes_mail(MR_RECORD_LEAD, -1));
	g_assert_true(mr_status_takes_mail(MR_RECORD_TICKET, MR_TICKET_CLOSED));
}

static void
test_event_names(void)
{
	for (int t = 1; t < MR_EVENT_N; t++)
		g_assert_cmpint(mr_event_type_from_name(mr_event_type_name((MrEventType)t)), ==, t);
	g_assert_cmpstr(mr_event_type_name(MR_EVENT_N), ==, "other");
	g_assert_cmpint(mr_event_type_from_name("other"), ==, MR_EVENT_OTHER);
	g_assert_cmpint(mr_event_type_from_name("ticket.exploded"), ==, MR_EVENT_OTHER);
	g_assert_cmpint(mr_event_type_from_name(NULL), ==, MR_EVENT_OTHER);
}

/* Each type's sentence, from the facts it uses; "?" for a fact it lacks
 * (an event migrated from schema 5), the record ids with the prefixes
 * configured now, and nothing for a type mailroom does not know. */
static void
test_event_describe(void)
{
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	const MrRecordRef tkt = { MR_RECORD_TICKET, 1 }, lead = { MR_RECORD_LEAD, 3 },
			  opp = { MR_RECORD_OPPORTUNITY, 2 }, none = { MR_RECORD_NONE, 0 };
	const MrEventFacts title = { .detail = "Printer on fire" };
	const MrEventFacts status = { .actor = 7, .old_status = "new", .new_status = "pending" };
	const MrEventFacts reopen = { .old_status = "solved", .new_status = "open" };
	const MrEventFacts converted = { .old_status = "new", .new_status = "converted" };
	const MrEventFacts won = { .old_status = "open", .new_status = "won" };
	const MrEventFacts lost = { .old_status = "open", .new_status = "lost",
				    .detail = "too expensive" };
	const MrEventFacts refused = { .actor = 7, .detail = "TKT-9" };
	const MrEventFacts untrusted = { .address = "a@b.test", .detail = "mx.acme.test" };
	static const MrEventFacts empty = { 0 };
	const struct {
		MrEventType type;
		MrRecordRef record;
		const MrEventFacts *facts;
		const char *text;         /* with @facts */
		const char *without;      /* with no facts (NULL) */
	} cases[] = {
		{ MR_EVENT_TICKET_CREATED, tkt, &title, "TKT-1 created: Printer on fire",
		  "TKT-1 created: ?" },
		{ MR_EVENT_LEAD_CREATED, lead, &title, "LEAD-3 created: Printer on fire",
		  "LEAD-3 created: ?" },
		{ MR_EVENT_OPPORTUNITY_CREATED, opp, &title, "OPP-2 created: Printer on fire",
		  "OPP-2 created: ?" },
		{ MR_EVENT_TICKET_REOPENED, tkt, &reopen, "TKT-1 reopened by a new message",
		  "TKT-1 reopened by a new message" },
		{ MR_EVENT_TICKET_STATUS, tkt, &status, "TKT-1 status new -> pending",
		  "TKT-1 status ? -> ?" },
		{ MR_EVENT_LEAD_CONVERTED, lead, &converted, "LEAD-3 converted", "LEAD-3 ?" },
		{ MR_EVENT_LEAD_ARCHIVED, lead, &(MrEventFacts){ .new_status = "archived" },
		  "LEAD-3 archived", "LEAD-3 ?" },
		{ MR_EVENT_OPPORTUNITY_WON, opp, &won, "OPP-2 won", "OPP-2 won" },
		{ MR_EVENT_OPPORTUNITY_LOST, opp, &lost, "OPP-2 lost: too expensive", "OPP-2 lost: ?" },
		{ MR_EVENT_MESSAGE_LINKED, tkt, &empty, "message linked to TKT-1",
		  "message linked to TKT-1" },
		{ MR_EVENT_REPLY_RECEIVED, tkt, &empty, "TKT-1: reply received",
		  "TKT-1: reply received" },
		{ MR_EVENT_LINK_REFUSED, none, &refused,
		  "TKT-9 named in the subject, not attached: sender not related",
		  "? named in the subject, not attached: sender not related" },
		{ MR_EVENT_SENDER_UNTRUSTED, none, &untrusted,
		  "From a@b.test not authenticated (Authentication-Results of mx.acme.test):"
		  " not taken as the user's",
		  "From ? not authenticated (Authentication-Results of ?): not taken as the user's" },
		{ MR_EVENT_TEAM_UNASSIGNED, tkt, &(MrEventFacts){ .detail = "2nd-level" },
		  "TKT-1 left unassigned: every member of team 2nd-level is away",
		  "TKT-1 left unassigned: every member of team ? is away" },
		{ MR_EVENT_MAIL_BOUNCED, tkt,
		  &(MrEventFacts){ .address = "eve@x.test", .new_status = "5.1.1",
				   .detail = "5.1.1 user unknown" },
		  "mail to eve@x.test bounced: 5.1.1 user unknown", "mail to ? bounced: ?" },
		{ MR_EVENT_MAIL_HELD, tkt,
		  &(MrEventFacts){ .address = "eve@x.test", .detail = "the daily limit" },
		  "no automatic mail to eve@x.test: the daily limit",
		  "no automatic mail to ?: ?" },
		{ MR_EVENT_MAIL_FAILED, tkt,
		  &(MrEventFacts){ .address = "eve@x.test", .detail = "550 no" },
		  "mail to eve@x.test failed: 550 no", "mail to ? failed: ?" },
		{ MR_EVENT_RESPONSE_SENT, tkt, &empty, "TKT-1 response sent", "TKT-1 response sent" },
		{ MR_EVENT_TICKET_ESCALATED, tkt,
		  &(MrEventFacts){ .address = "ann@example.com", .old_status = "normal",
				   .new_status = "high" },
		  "TKT-1 escalated to ann@example.com", "TKT-1 escalated" },
		{ MR_EVENT_TASK_CREATED, tkt, &(MrEventFacts){ .detail = "Call back" },
		  "task created: Call back", "task created: ?" },
		{ MR_EVENT_TASK_DONE, tkt, &(MrEventFacts){ .detail = "Call back" },
		  "task done: Call back", "task done: ?" },
		{ MR_EVENT_OTHER, tkt, &title, "", "" },
		{ MR_EVENT_N, tkt, &title, "", "" },
	};
	gboolean seen[MR_EVENT_N] = { FALSE };

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = mr_event_describe(cfg, cases[i].type, cases[i].record,
							  cases[i].facts);
		g_autofree char *without = mr_event_describe(cfg, cases[i].type, cases[i].record,
							     NULL);
		g_autofree char *empty_facts = mr_event_describe(cfg, cases[i].type,
								 cases[i].record, &empty);

		g_assert_cmpstr(text, ==, cases[i].text);
		g_assert_cmpstr(without, ==, cases[i].without);
		g_assert_cmpstr(empty_facts, ==, cases[i].without);
		if (cases[i].type < MR_EVENT_N)
			seen[cases[i].type] = TRUE;
	}
	for (int t = 0; t < MR_EVENT_N; t++)
		g_assert_true(seen[t]); /* a new type needs its case here */

	/* The record ids are formatted when the sentence is made. */
	{
		g_autofree char *text = NULL;
		g_autofree char *unknown = NULL;

		g_free(cfg->ids.ticket_prefix);
		cfg->ids.ticket_prefix = g_strdup("CASE");
		text = mr_event_describe(cfg, MR_EVENT_TICKET_STATUS, tkt, &status);
		g_assert_cmpstr(text, ==, "CASE-1 status new -> pending");
		/* a record-less event of a type that names one */
		unknown = mr_event_describe(cfg, MR_EVENT_TICKET_STATUS, none, &status);
		g_assert_cmpstr(unknown, ==, "? status new -> pending");
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/model/ids/parse", test_parse_id);
	g_test_add_func("/mailroom/model/ids/prefix", test_prefix);
	g_test_add_func("/mailroom/model/kinds", test_kind_names);
	g_test_add_func("/mailroom/model/status/names", test_status_names);
	g_test_add_func("/mailroom/model/status/changes", test_status_changes);
	g_test_add_func("/mailroom/model/events", test_event_names);
	g_test_add_func("/mailroom/model/events/describe", test_event_describe);
	return g_test_run();
}
