/* test-model.c - the model layer: record kinds and display ids, statuses
 * and the changes allowed, event type names. */
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
	return g_test_run();
}
