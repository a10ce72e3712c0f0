/* test-route.c - record ids in subjects and plus addresses, and the routing
 * decisions (parties, record, action) against a real in-memory store. */
#include <string.h>

#include <glib/gstdio.h>

#include "mailroom/mr-crm.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "mr-test-util.h"

static const struct {
	const char *subject;
	MrRecordKind kind;
	gint64 id;
} subject_cases[] = {
	{ "[TKT-12] printer", MR_RECORD_TICKET, 12 },
	{ "Re: [tkt-12] printer", MR_RECORD_TICKET, 12 },
	{ "AW: [Acme TKT-12] printer", MR_RECORD_TICKET, 12 },
	{ "[Ticket TKT-7/urgent]", MR_RECORD_TICKET, 7 },
	{ "[OPP-42] pricing", MR_RECORD_OPPORTUNITY, 42 },
	{ "[list] Re: [Opp-5]", MR_RECORD_OPPORTUNITY, 5 },
	{ "TKT-12 without brackets", MR_RECORD_NONE, 0 },
	{ "[TKT-12a]", MR_RECORD_NONE, 0 },
	{ "[XTKT-12]", MR_RECORD_NONE, 0 },
	{ "[TKT-0]", MR_RECORD_NONE, 0 },
	{ "[TKT-]", MR_RECORD_NONE, 0 },
	{ "[TKT-99999999999999999999999]", MR_RECORD_NONE, 0 },
	{ "[LEAD-3] leads are not named in subjects", MR_RECORD_NONE, 0 },
	{ "[TKT-12", MR_RECORD_NONE, 0 },
	{ "", MR_RECORD_NONE, 0 },
};

static void
test_subject_ids(void)
{
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");

	for (guint i = 0; i < G_N_ELEMENTS(subject_cases); i++) {
		MrRecordRef ref = { MR_RECORD_NONE, 0 };
		gboolean found = mr_route_subject_id(cfg, subject_cases[i].subject, &ref);

		if (found != (subject_cases[i].kind != MR_RECORD_NONE) ||
		    (found && (ref.kind != subject_cases[i].kind || ref.id != subject_cases[i].id)))
			g_error("subject '%s': found=%d kind=%d id=%" G_GINT64_FORMAT,
				subject_cases[i].subject, found, ref.kind, ref.id);
	}
	g_assert_false(mr_route_subject_id(cfg, NULL, &(MrRecordRef){ 0 }));
}

typedef struct {
	MrConfig *cfg;
	MrStore *store;
	guint n;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->cfg = mr_test_config(":memory:");
	f->store = mr_store_open(f->cfg, &error);
	g_assert_no_error(error);
	g_assert_cmpint(mr_crm_user_add(f->store, "alice@acme.test", "Alice", &error), >, 0);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	mr_store_close(f->store);
	mr_config_unref(f->cfg);
}

/* Plans @msg for @rcpt and, when @apply, stores it.  Returns the plan. */
static MrPlan *
route(Fixture *f, MrMessage *msg, const char *rcpt, gboolean apply, MrApplied *applied)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrPlan) plan = NULL;
	g_autoptr(GBytes) raw = NULL;
	g_autofree char *key = g_strdup_printf("key-%u", f->n++);

	g_assert_true(mr_store_begin(f->store, &error));
	plan = mr_route_plan(f->cfg, f->store, msg, rcpt, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(plan);
	if (apply) {
		raw = g_bytes_new_static("x", 1);
		g_assert_true(mr_crm_apply(f->cfg, f->store, plan, raw, key, msg, 0, applied, &error));
		g_assert_no_error(error);
		g_assert_true(mr_store_commit(f->store, &error));
	} else {
		mr_store_rollback(f->store);
	}
	return g_steal_pointer(&plan);
}

static MrParty *
party(MrPlan *plan, int i)
{
	g_assert_cmpint(i, >=, 0);
	return g_ptr_array_index(plan->parties, i);
}

static void
test_bcc_parties(Fixture *f, gconstpointer data)
{
	g_autoptr(MrMessage) msg =
		mr_test_message("alice@acme.test", "bob@customer.test, crm@acme.test, eve@acme.test",
				"Offer");
	g_autoptr(MrPlan) plan = route(f, msg, "CRM@acme.test", FALSE, NULL);

	g_assert_cmpint(plan->role, ==, MR_ROLE_BCC);
	g_assert_cmpuint(plan->parties->len, ==, 3); /* alice, bob, eve; not crm@ */
	g_assert_cmpstr(party(plan, plan->owner)->email, ==, "alice@acme.test");
	g_assert_true(party(plan, plan->owner)->internal);
	g_assert_cmpint(party(plan, plan->owner)->user_id, >, 0);
	g_assert_cmpstr(party(plan, plan->customer)->email, ==, "bob@customer.test");
	g_assert_false(party(plan, plan->customer)->internal);
	g_assert_true(party(plan, 2)->internal); /* eve: own domain, not yet a user */
	g_assert_cmpint(plan->action, ==, MR_ACTION_LOG);
	g_assert_cmpint(plan->record.kind, ==, MR_RECORD_NONE);
}

static void
test_not_mailroom(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrMessage) msg = mr_test_message("bob@customer.test", "x@acme.test", "hi");
	g_autoptr(MrPlan) plan = mr_route_plan(f->cfg, f->store, msg, "x@acme.test", NULL, &error);

	g_assert_null(plan);
	g_assert_error(error, MR_ROUTE_ERROR, MR_ROUTE_ERROR_NO_ADDRESS);
}

static void
test_support(Fixture *f, gconstpointer data)
{
	g_autoptr(MrMessage) first = mr_test_message("eve@client.test", "support@acme.test", "Broken");
	g_autoptr(MrMessage) reply =
		mr_test_message("eve@client.test", "support@acme.test", "Re: [TKT-1] Broken");
	g_autoptr(MrMessage) stranger =
		mr_test_message("mallory@evil.test", "support@acme.test", "[TKT-1] data please");
	g_autoptr(MrMessage) plus = mr_test_message("eve@client.test", "support@acme.test", "more");
	g_autoptr(MrMessage) user =
		mr_test_message("alice@acme.test", "support@acme.test", "note [TKT-1]");
	g_autoptr(MrPlan) p1 = NULL, p2 = NULL, p3 = NULL, p4 = NULL, p5 = NULL;
	MrApplied applied = { 0 };

	p1 = route(f, first, "support@acme.test", TRUE, &applied);
	g_assert_cmpint(p1->action, ==, MR_ACTION_TICKET_CREATE);
	g_assert_cmpstr(p1->title, ==, "Broken");
	g_assert_cmpint(applied.record.kind, ==, MR_RECORD_TICKET);
	g_assert_cmpint(applied.record.id, ==, 1);

	p2 = route(f, reply, "support@acme.test", FALSE, NULL);
	g_assert_cmpint(p2->action, ==, MR_ACTION_TICKET_UPDATE);
	g_assert_cmpint(p2->found_by, ==, MR_FOUND_SUBJECT);
	g_assert_true(p2->is_reply);
	g_assert_false(p2->reopen);

	p3 = route(f, stranger, "support@acme.test", FALSE, NULL);
	g_assert_cmpstr(p3->refused, ==, "TKT-1");
	g_assert_cmpint(p3->record.kind, ==, MR_RECORD_NONE);
	g_assert_cmpint(p3->action, ==, MR_ACTION_TICKET_CREATE);

	p4 = route(f, plus, "support+TKT-1@acme.test", FALSE, NULL);
	g_assert_cmpint(p4->found_by, ==, MR_FOUND_PLUS);
	g_assert_cmpint(p4->record.id, ==, 1);

	p5 = route(f, user, "support@acme.test", FALSE, NULL);
	g_assert_cmpint(p5->found_by, ==, MR_FOUND_SUBJECT); /* users may name any ticket */
	g_assert_false(p5->is_reply);
}

static void
test_reopen_and_thread(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrMessage) first = mr_test_message("eve@client.test", "support@acme.test", "Broken");
	g_autoptr(MrMessage) reply = mr_test_message("eve@client.test", "support@acme.test", "Re: x");
	g_autoptr(MrPlan) p1 = NULL, p2 = NULL;

	first->message_id = g_strdup("first@client.test");
	reply->in_reply_to = g_strdup("first@client.test");
	p1 = route(f, first, "support@acme.test", TRUE, NULL);
	g_assert_true(mr_crm_ticket_set_status(f->cfg, f->store, 1, "solved", &error));
	p2 = route(f, reply, "support@acme.test", FALSE, NULL);
	g_assert_cmpint(p2->found_by, ==, MR_FOUND_THREAD);
	g_assert_cmpint(p2->action, ==, MR_ACTION_TICKET_UPDATE);
	g_assert_true(p2->reopen);
}

static void
test_forward(Fixture *f, gconstpointer data)
{
	g_autoptr(MrMessage) msg =
		mr_test_message("alice@acme.test", "support@acme.test", "Fwd: moth in the relay");
	g_autoptr(MrPlan) plan = NULL;

	msg->original_from = mr_test_address("grace@navy.test", "Grace");
	msg->original_subject = g_strdup("moth in the relay");
	g_assert_true(msg->is_forward);
	plan = route(f, msg, "support@acme.test", FALSE, NULL);
	g_assert_cmpint(plan->action, ==, MR_ACTION_TICKET_CREATE);
	g_assert_cmpstr(party(plan, plan->customer)->email, ==, "grace@navy.test");
	g_assert_cmpstr(party(plan, plan->owner)->email, ==, "alice@acme.test");
	g_assert_cmpstr(plan->title, ==, "moth in the relay");
}

static void
test_sales(Fixture *f, gconstpointer data)
{
	g_autoptr(MrMessage) m1 = mr_test_message("heidi@prospect.test", "sales@acme.test", "Quote");
	g_autoptr(MrMessage) m2 = mr_test_message("heidi@prospect.test", "sales@acme.test", "more");
	g_autoptr(MrMessage) bulk = mr_test_message("news@shop.test", "sales@acme.test", "News");
	g_autoptr(MrMessage) user = mr_test_message("alice@acme.test", "sales@acme.test", "hi");
	g_autoptr(MrPlan) p1 = NULL, p2 = NULL, p3 = NULL, p4 = NULL;

	p1 = route(f, m1, "sales@acme.test", TRUE, NULL);
	g_assert_cmpint(p1->action, ==, MR_ACTION_LEAD_CREATE);
	p2 = route(f, m2, "sales@acme.test", FALSE, NULL);
	g_assert_cmpint(p2->action, ==, MR_ACTION_LEAD_UPDATE);
	g_assert_cmpint(p2->found_by, ==, MR_FOUND_OPEN_LEAD);
	bulk->auto_kind = MR_AUTO_BULK;
	p3 = route(f, bulk, "sales@acme.test", FALSE, NULL);
	g_assert_cmpint(p3->action, ==, MR_ACTION_LOG);
	g_assert_false(p3->create_contacts);
	p4 = route(f, user, "sales@acme.test", FALSE, NULL);
	g_assert_cmpint(p4->action, ==, MR_ACTION_LOG);
}

static void
test_auto_support(Fixture *f, gconstpointer data)
{
	g_autoptr(MrMessage) msg = mr_test_message("robot@client.test", "support@acme.test", "OOO");
	g_autoptr(MrPlan) plan = NULL;

	msg->auto_kind = MR_AUTO_REPLY;
	plan = route(f, msg, "support@acme.test", FALSE, NULL);
	g_assert_cmpint(plan->action, ==, MR_ACTION_LOG);
	g_assert_false(plan->create_contacts);
}

static void
test_untrusted_sender(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config_extra(":memory:", "authserv_id = \"mx.acme.test\";");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	static const struct {
		const char *results; /* NULL: no header */
		gboolean trusted;
	} cases[] = {
		{ NULL, FALSE },
		{ "mx.acme.test; dmarc=pass header.from=acme.test", TRUE },
		{ "mx.acme.test 1; dkim=pass header.d=acme.test header.s=s1", TRUE },
		{ "mx.acme.test; spf=pass smtp.mailfrom=alice@acme.test", TRUE },
		{ "mx.acme.test; dkim=pass header.d=evil.test", FALSE },
		{ "mx.acme.test; dkim=pass header.d=notacme.test", FALSE },
		{ "mx.acme.test; dmarc=fail; spf=softfail smtp.mailfrom=acme.test", FALSE },
		{ "evil.test; dmarc=pass", FALSE }, /* another authserv-id: forged */
	};

	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(MrMessage) msg =
			mr_test_message("alice@acme.test", "bob@customer.test, support@acme.test", "hi");
		g_autoptr(MrPlan) plan = NULL;

		if (cases[i].results != NULL)
			g_ptr_array_add(msg->auth_results, g_strdup(cases[i].results));
		plan = mr_route_plan(cfg, store, msg, "support@acme.test", NULL, &error);
		g_assert_no_error(error);
		if ((plan->untrusted == NULL) != cases[i].trusted)
			g_error("case %u (%s): untrusted=%s", i, cases[i].results, plan->untrusted);
		if (!cases[i].trusted) {
			g_assert_cmpint(plan->owner, ==, -1);
			g_assert_cmpint(plan->action, ==, MR_ACTION_LOG);
		} else {
			g_assert_cmpint(plan->owner, >=, 0);
		}
	}
}

/* --- one message must never stop the others (issue 12) ------------------ */

/* Subjects made of brackets, scanned in one pass: every '[' used to read
 * on to the next ']' (1 MB: eight minutes under the write lock). */
typedef struct {
	const char *name;
	const char *head;  /* before the run of '[' */
	gsize n;           /* how many '[' */
	const char *tail;  /* after it */
	gint64 scan;       /* route.max_subject_scan; 0: the default */
	gint64 id;         /* the ticket found, 0 for none */
} BracketCase;

static const BracketCase bracket_cases[] = {
	{ "open-1m-close", "", 1000000, "]", 2000000, 0 },
	{ "open-1m-id", "", 1000000, "TKT-5]", 2000000, 5 },
	{ "open-1m-then-id", "", 1000000, "] [TKT-6]", 2000000, 6 },
	{ "open-1m-no-close", "", 1000000, "TKT-7", 2000000, 0 },
	{ "id-then-open-1m", "[TKT-8] ", 1000000, "", 2000000, 8 },
	/* Past route.max_subject_scan, an id is not looked for. */
	{ "id-past-scan", "x", 5000, "] [TKT-9]", 0, 0 },
	{ "id-within-scan", "", 4000, "] [TKT-10]", 0, 10 },
	{ "id-cut-by-scan", "", 20, "] [TKT-11]", 24, 0 },
};

static void
test_subject_brackets(gconstpointer data)
{
	const BracketCase *c = data;
	g_autofree char *extra = c->scan > 0 ? g_strdup_printf("route = { max_subject_scan = %" G_GINT64_FORMAT "; };",
							       c->scan)
					     : NULL;
	g_autoptr(MrConfig) cfg = mr_test_config_extra(":memory:", extra);
	GString *s = g_string_new(c->head);
	g_autofree char *subject = NULL;
	MrRecordRef ref = { MR_RECORD_NONE, 0 };
	gboolean found;

	for (gsize i = 0; i < c->n; i++)
		g_string_append_c(s, '[');
	g_string_append(s, c->tail);
	subject = g_string_free(s, FALSE);
	found = mr_route_subject_id(cfg, subject, &ref);
	g_assert_cmpint(found, ==, c->id != 0);
	if (found) {
		g_assert_cmpint(ref.kind, ==, MR_RECORD_TICKET);
		g_assert_cmpint(ref.id, ==, c->id);
	}
}

/* @n distinct external To: addresses, each twice, the second time in
 * upper case (the same party). */
static MrMessage *
message_many_recipients(guint n)
{
	MrMessage *msg = mr_test_message("bob@customer.test", "support@acme.test", "many");

	for (guint pass = 0; pass < 2; pass++)
		for (guint i = 0; i < n; i++) {
			g_autofree char *email = g_strdup_printf(pass == 0 ? "u%u@r%u.test" : "U%u@R%u.TEST",
								 i, i % 97);

			g_ptr_array_add(msg->to, mr_test_address(email, NULL));
		}
	g_ptr_array_add(msg->cc, mr_test_address("bob@customer.test", "Bob again"));
	return msg;
}

/* 100,000 recipients (50,000 twice): duplicates found by a hash, not by
 * comparing each with all before it (137 s under the write lock). */
static void
test_parties_many(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config_extra(":memory:", "route = { max_parties = 100000; };");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) msg = message_many_recipients(50000);
	g_autoptr(MrPlan) plan = NULL;

	g_assert_no_error(error);
	plan = mr_route_plan(cfg, store, msg, "support@acme.test", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(plan->parties->len, ==, 1 + 50000);
	g_assert_cmpstr(party(plan, 0)->email, ==, "bob@customer.test");
	g_assert_true(party(plan, 0)->is_sender);
	g_assert_cmpint(plan->customer, ==, 0);
	g_assert_cmpstr(party(plan, 1)->email, ==, "u0@r0.test");
	g_assert_cmpstr(party(plan, 50000)->email, ==, "u49999@r44.test");
	for (guint i = 1; i < plan->parties->len; i++)
		g_assert_false(party(plan, (int)i)->is_sender);
}

/* route.max_parties: the sender first, then recipients up to the limit;
 * the rest become no party (and so no contact). */
static void
test_parties_limit(Fixture *f, gconstpointer data)
{
	g_autoptr(MrMessage) msg = message_many_recipients(500);
	MrApplied applied = { 0 };
	g_autoptr(MrPlan) plan = route(f, msg, "support@acme.test", TRUE, &applied);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) contacts = NULL;

	g_assert_cmpuint(plan->parties->len, ==, 100);
	g_assert_cmpstr(party(plan, 0)->email, ==, "bob@customer.test");
	g_assert_cmpstr(party(plan, 99)->email, ==, "u98@r1.test");
	contacts = mr_store_contacts(f->store, 10000, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(contacts->len, ==, 100);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/route/ids/subject", test_subject_ids);
	g_test_add_func("/mailroom/route/plan/untrusted-sender", test_untrusted_sender);
	for (guint i = 0; i < G_N_ELEMENTS(bracket_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/route/ids/brackets/%s", bracket_cases[i].name);

		g_test_add_data_func(path, &bracket_cases[i], test_subject_brackets);
	}
	g_test_add_func("/mailroom/route/plan/parties-many", test_parties_many);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD("/mailroom/route/plan/bcc-parties", test_bcc_parties);
	ADD("/mailroom/route/plan/not-mailroom", test_not_mailroom);
	ADD("/mailroom/route/plan/support", test_support);
	ADD("/mailroom/route/plan/reopen-thread", test_reopen_and_thread);
	ADD("/mailroom/route/plan/forward", test_forward);
	ADD("/mailroom/route/plan/sales", test_sales);
	ADD("/mailroom/route/plan/auto", test_auto_support);
	ADD("/mailroom/route/plan/parties-limit", test_parties_limit);
#undef ADD
	return g_test_run();
}
