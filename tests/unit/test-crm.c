/* test-crm.c - the CRM layer: what a plan makes of the data (freemail
 * domains, owners, reopening, typed events) and the use cases of the CLI
 * (users, opportunities, ticket statuses, inbox leads, rules). */
#include <string.h>

#include "mailroom/mr-crm.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-status.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "mailroom/mr-store-rule.h"
#include "mr-test-util.h"
#include "mailroom/mr-store-team.h"
#include <glib/gstdio.h>

/* Routes @msg to @rcpt and applies the plan in a transaction of its own.
 * Returns what was applied. */
static MrApplied
deliver(MrConfig *cfg, MrStore *store, MrMessage *msg, const char *key, const char *rcpt)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrPlan) plan = NULL;
	g_autoptr(GBytes) raw = g_bytes_new_static("Subject: x\r\n\r\nx\r\n", 17);
	MrApplied applied = { 0 };

	g_assert_true(mr_store_begin(store, &error));
	plan = mr_route_plan(cfg, store, msg, rcpt, "return@client.test", &error);
	g_assert_no_error(error);
	g_assert_true(mr_crm_apply(cfg, store, plan, raw, key, msg, 0, &applied, &error));
	g_assert_no_error(error);
	g_assert_true(mr_store_commit(store, &error));
	return applied;
}

/* Returns the events written so far, oldest first. */
static GPtrArray *
events(MrStore *store)
{
	g_autoptr(GError) error = NULL;
	GPtrArray *all = mr_store_events_after(store, 0, 0, &error);

	g_assert_no_error(error);
	return all;
}

static void
test_admin(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) msg = mr_test_message("alice@acme.test", "bob@customer.test", "hi");
	g_autoptr(MrOpportunityRow) opp = NULL;
	gint64 id;

	g_assert_cmpint(mr_crm_user_add(store, "alice@acme.test", "Alice", &error), ==, 1);
	g_assert_cmpint(mr_crm_user_add(store, "alice@acme.test", "Alice S.", &error), ==, 1);
	deliver(cfg, store, msg, "k", "crm@acme.test");
	g_assert_cmpint(mr_crm_opp_add(cfg, store, "Deal", "nobody@x.test", NULL, -1, &error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	id = mr_crm_opp_add(cfg, store, "Deal", "bob@customer.test", NULL, 100, &error);
	g_assert_no_error(error);
	g_assert_false(mr_crm_opp_close(cfg, store, id, FALSE, "", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_true(mr_crm_opp_close(cfg, store, id, FALSE, "price", &error));
	g_assert_false(mr_crm_opp_close(cfg, store, id, TRUE, NULL, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID);
	g_clear_error(&error);
	opp = mr_store_opportunity_get(store, id, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(opp->owner, ==, "alice@acme.test");
	g_assert_cmpstr(opp->status, ==, "lost");
	g_assert_cmpint(opp->value, ==, 100);
	g_assert_false(mr_crm_ticket_set_status(cfg, store, 1, "open", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
}

/* A freemail sender gets a contact but no account; a company's gets its
 * domain's.  A new lead nobody of ours wrote about belongs to its
 * contact's owner. */
static void
test_policy_parties(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) free = mr_test_message("someone@gmail.com", "sales@acme.test", "Hi");
	g_autoptr(MrMessage) bcc = mr_test_message("alice@acme.test", "bob@customer.test", "Offer");
	g_autoptr(MrMessage) lead = mr_test_message("bob@customer.test", "sales@acme.test", "Q");
	g_autoptr(MrContactRow) c = NULL;
	g_autoptr(MrLeadRow) l = NULL;
	MrApplied applied;

	g_assert_no_error(error);
	deliver(cfg, store, free, "k1", "sales@acme.test");
	c = mr_store_contact_get(store, "someone@gmail.com", &error);
	g_assert_no_error(error);
	g_assert_null(c->account);
	g_clear_pointer(&c, mr_contact_row_free);
	/* alice writes to bob first: bob's owner is alice */
	deliver(cfg, store, bcc, "k2", "crm@acme.test");
	c = mr_store_contact_get(store, "bob@customer.test", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(c->account, ==, "customer.test");
	g_assert_cmpstr(c->owner, ==, "alice@acme.test");
	applied = deliver(cfg, store, lead, "k3", "sales@acme.test");
	g_assert_cmpint(applied.record.kind, ==, MR_RECORD_LEAD);
	l = mr_store_lead_get(store, applied.record.id, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(l->owner, ==, "alice@acme.test");
}

/* A solved ticket answered by its customer is open again, and its events
 * say so with typed fields: the status it left, the one it took. */
static void
test_policy_reopen(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) first = mr_test_message("bob@customer.test", "support@acme.test",
						     "Printer on fire");
	g_autoptr(MrMessage) again = mr_test_message("bob@customer.test", "support@acme.test",
						     "Re: [TKT-1] Printer on fire");
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(MrTicketRow) t = NULL;
	MrApplied applied = deliver(cfg, store, first, "k1", "support@acme.test");
	const MrEvent *e;
	guint n;

	g_assert_cmpint(applied.record.kind, ==, MR_RECORD_TICKET);
	g_assert_true(mr_crm_ticket_set_status(cfg, store, applied.record.id, "solved", &error));
	g_assert_no_error(error);
	applied = deliver(cfg, store, again, "k2", "support@acme.test");
	g_assert_cmpint(applied.record.id, ==, 1);
	t = mr_store_ticket_get(store, 1, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(t->status, ==, mr_status_name(MR_RECORD_TICKET, MR_TICKET_OPEN));
	all = events(store);
	/* created, status, reopened, linked, reply */
	n = all->len;
	g_assert_cmpuint(n, ==, 5);
	e = g_ptr_array_index(all, 0);
	g_assert_cmpint(e->type, ==, MR_EVENT_TICKET_CREATED);
	e = g_ptr_array_index(all, 1);
	g_assert_cmpint(e->type, ==, MR_EVENT_TICKET_STATUS);
	e = g_ptr_array_index(all, 2);
	g_assert_cmpint(e->type, ==, MR_EVENT_TICKET_REOPENED);
	g_assert_cmpint(e->record.id, ==, 1);
	e = g_ptr_array_index(all, 3);
	g_assert_cmpint(e->type, ==, MR_EVENT_MESSAGE_LINKED);
	e = g_ptr_array_index(all, 4);
	g_assert_cmpint(e->type, ==, MR_EVENT_REPLY_RECEIVED);
}

/* An inbox lead converts once into an opportunity with its messages;
 * archiving it afterwards is refused by the lifecycle. */
static void
test_lead_convert(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) msg = mr_test_message("carol@prospect.test", "sales@acme.test",
						   "Interested");
	g_autoptr(MrOpportunityRow) opp = NULL;
	g_autoptr(MrLeadRow) lead = NULL;
	MrApplied applied = deliver(cfg, store, msg, "k1", "sales@acme.test");
	gint64 id;

	g_assert_cmpint(applied.record.kind, ==, MR_RECORD_LEAD);
	id = mr_crm_lead_convert(cfg, store, applied.record.id, &error);
	g_assert_no_error(error);
	g_assert_cmpint(id, >, 0);
	opp = mr_store_opportunity_get(store, id, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(opp->title, ==, "Interested");
	g_assert_cmpstr(opp->contact, ==, "carol@prospect.test");
	g_assert_cmpint(opp->message_count, ==, 1);
	lead = mr_store_lead_get(store, applied.record.id, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(lead->status, ==, mr_status_name(MR_RECORD_LEAD, MR_LEAD_CONVERTED));
	g_assert_nonnull(lead->qualified);
	g_assert_cmpint(lead->opportunity, ==, id);
	g_assert_false(mr_crm_lead_archive(cfg, store, applied.record.id, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_cmpint(mr_crm_lead_convert(cfg, store, 99, &error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
}

/* Returns the names of the rules in position order, joined by spaces,
 * after checking that their positions are 1 to n. */
static char *
rule_names(MrStore *store)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = mr_store_rules(store, &error);
	g_autoptr(GString) out = g_string_new(NULL);

	g_assert_no_error(error);
	for (guint i = 0; i < rows->len; i++) {
		const MrRuleRow *r = g_ptr_array_index(rows, i);

		g_assert_cmpint(r->position, ==, i + 1);
		g_string_append_printf(out, "%s%s", i > 0 ? " " : "", r->name);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static MrRule *
rule_make(const char *name, const char *cond, const char *action)
{
	g_autoptr(GError) error = NULL;
	const char *conds[] = { cond, NULL }, *actions[] = { action, NULL };
	MrRule *rule = mr_rule_new(name, conds, actions, FALSE, FALSE, &error);

	g_assert_no_error(error);
	return rule;
}

static gint64
rules_version(MrStore *store)
{
	g_autoptr(GError) error = NULL;
	gint64 v = mr_store_rules_version(store, &error);

	g_assert_no_error(error);
	return v;
}

#define ASSERT_RULES(store, names)                                                \
	do {                                                                       \
		g_autofree char *got_ = rule_names(store);                          \
		g_assert_cmpstr(got_, ==, (names));                                 \
	} while (0)

/* The rule use cases: added at a position or last, refused whole (a name
 * taken, an owner that is no user, a team), moved and deleted with the
 * positions kept 1 to n, and every change -- only a change -- bumping
 * the counter. */
static void
test_rules(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrRule) a = rule_make("a", "role = support", "ticket");
	g_autoptr(MrRule) b = rule_make("b", "subject contains x", "tag = x");
	g_autoptr(MrRule) c = rule_make("c", "hour < 7", "priority = high");
	g_autoptr(MrRule) d = rule_make("d", "from exists", "log");
	g_autoptr(MrRule) dup = rule_make("a", "hour > 1", "lead");
	g_autoptr(MrRule) nobody = rule_make("n", "hour > 1", "owner = bob@acme.test");
	g_autoptr(MrRule) team = rule_make("t", "hour > 1", "owner = team:2nd-level");
	g_autoptr(MrRule) owned = rule_make("o", "hour > 1", "owner = Alice@Acme.test");
	g_autoptr(MrRuleRow) row = NULL;

	g_assert_no_error(error);
	g_assert_cmpint(rules_version(store), ==, 0);
	g_assert_cmpint(mr_crm_rule_add(store, a, 0, &error), ==, 1);
	g_assert_cmpint(mr_crm_rule_add(store, b, 0, &error), ==, 2);
	g_assert_cmpint(mr_crm_rule_add(store, c, 1, &error), ==, 1);
	g_assert_cmpint(mr_crm_rule_add(store, d, 99, &error), ==, 4);
	g_assert_no_error(error);
	ASSERT_RULES(store, "c a b d");
	g_assert_cmpint(rules_version(store), ==, 4);

	/* refused whole: nothing written, the counter as it was */
	g_assert_cmpint(mr_crm_rule_add(store, dup, 0, &error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS);
	g_clear_error(&error);
	g_assert_cmpint(mr_crm_rule_add(store, nobody, 0, &error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "'owner = bob@acme.test': no user bob@acme.test");
	g_clear_error(&error);
	g_assert_cmpint(mr_crm_rule_add(store, team, 2, &error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "'owner = team:2nd-level': no team 2nd-level");
	g_clear_error(&error);
	ASSERT_RULES(store, "c a b d");
	g_assert_cmpint(rules_version(store), ==, 4);

	/* an owner who is a user */
	g_assert_cmpint(mr_crm_user_add(store, "alice@acme.test", NULL, &error), >, 0);
	g_assert_cmpint(mr_crm_rule_add(store, owned, 2, &error), ==, 2);
	ASSERT_RULES(store, "c o a b d");
	row = mr_store_rule_get(store, "o", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(row->actions[0], ==, "owner = alice@acme.test");
	g_assert_null(row->actions[1]);
	g_assert_true(row->enabled);
	g_assert_cmpint(rules_version(store), ==, 5);

	/* move: up, down, past the end, in place */
	g_assert_cmpint(mr_crm_rule_move(store, "d", 1, &error), ==, 1);
	ASSERT_RULES(store, "d c o a b");
	g_assert_cmpint(mr_crm_rule_move(store, "c", 4, &error), ==, 4);
	ASSERT_RULES(store, "d o a c b");
	g_assert_cmpint(mr_crm_rule_move(store, "d", 50, &error), ==, 5);
	ASSERT_RULES(store, "o a c b d");
	g_assert_cmpint(mr_crm_rule_move(store, "a", 2, &error), ==, 2);
	ASSERT_RULES(store, "o a c b d");
	g_assert_no_error(error);
	g_assert_cmpint(rules_version(store), ==, 9);
	g_assert_cmpint(mr_crm_rule_move(store, "zz", 1, &error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* enable, disable */
	g_assert_true(mr_crm_rule_enable(store, "c", FALSE, &error));
	g_clear_pointer(&row, mr_rule_row_free);
	row = mr_store_rule_get(store, "c", &error);
	g_assert_false(row->enabled);
	g_assert_true(mr_crm_rule_enable(store, "c", TRUE, &error));
	g_assert_false(mr_crm_rule_enable(store, "zz", TRUE, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(rules_version(store), ==, 11);

	/* delete: the middle, the first, the last */
	g_assert_true(mr_crm_rule_delete(store, "c", &error));
	ASSERT_RULES(store, "o a b d");
	g_assert_true(mr_crm_rule_delete(store, "o", &error));
	g_assert_true(mr_crm_rule_delete(store, "d", &error));
	ASSERT_RULES(store, "a b");
	g_assert_false(mr_crm_rule_delete(store, "d", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(rules_version(store), ==, 14);
	g_clear_pointer(&row, mr_rule_row_free);
	row = mr_store_rule_get(store, "d", &error);
	g_assert_null(row);
	g_assert_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND);
}

/* Asserts that mr_crm_rules_replace() refuses @rules with @code and
 * @message, naming the rule at @index. */
static void
assert_replace_refused(MrStore *store, const GPtrArray *rules, int code,
		       const char *message, guint index)
{
	g_autoptr(GError) error = NULL;
	guint refused = G_MAXUINT;

	g_assert_false(mr_crm_rules_replace(store, rules, &refused, &error));
	g_assert_error(error, MR_CRM_ERROR, code);
	g_assert_cmpstr(error->message, ==, message);
	g_assert_cmpuint(refused, ==, index);
}

/* Replacing every rule: in the order given, positions 1 to n, enabled as
 * made; refused whole (a name twice, an owner that is no user, a team)
 * with the index of the rule refused, the rules and the counter as they
 * were; an empty list deletes them all. */
static void
test_rules_replace(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(GPtrArray) rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
	g_autoptr(GPtrArray) none = g_ptr_array_new();
	g_autoptr(MrRule) old = rule_make("old", "hour > 1", "log");
	g_autoptr(MrRuleRow) row = NULL;

	g_assert_no_error(error);
	g_assert_cmpint(mr_crm_rule_add(store, old, 0, &error), ==, 1);
	g_ptr_array_add(rules, rule_make("b", "subject contains x", "tag = x"));
	g_ptr_array_add(rules, rule_make("a", "role = support", "ticket"));
	g_ptr_array_add(rules, rule_make("c", "hour < 7", "owner = alice@acme.test"));
	((MrRule *)rules->pdata[1])->enabled = FALSE;
	g_assert_cmpint(rules_version(store), ==, 1);

	/* an owner who is no user yet: the third rule, nothing written */
	assert_replace_refused(store, rules, MR_CRM_ERROR_NOT_FOUND,
			       "rule c: 'owner = alice@acme.test': no user alice@acme.test", 2);
	ASSERT_RULES(store, "old");
	g_assert_cmpint(rules_version(store), ==, 1);

	/* a name twice: refused before the transaction */
	g_ptr_array_add(rules, rule_make("a", "hour > 2", "lead"));
	assert_replace_refused(store, rules, MR_CRM_ERROR_EXISTS,
			       "rule a: an earlier rule has that name", 3);
	g_ptr_array_remove_index(rules, 3);
	ASSERT_RULES(store, "old");
	g_assert_cmpint(rules_version(store), ==, 1);

	/* replaced: in order, as made, one bump */
	g_assert_cmpint(mr_crm_user_add(store, "alice@acme.test", NULL, &error), >, 0);
	g_assert_true(mr_crm_rules_replace(store, rules, NULL, &error));
	g_assert_no_error(error);
	ASSERT_RULES(store, "b a c");
	g_assert_cmpint(rules_version(store), ==, 2);
	row = mr_store_rule_get(store, "a", &error);
	g_assert_no_error(error);
	g_assert_false(row->enabled);
	g_assert_cmpstr(row->actions[0], ==, "ticket");

	/* a team owner: refused as rule add refuses it */
	g_ptr_array_add(rules, rule_make("t", "hour > 1", "owner = team:2nd-level"));
	assert_replace_refused(store, rules, MR_CRM_ERROR_NOT_FOUND,
			       "rule t: 'owner = team:2nd-level': no team 2nd-level", 3);
	ASSERT_RULES(store, "b a c");
	g_assert_cmpint(rules_version(store), ==, 2);

	/* none: every rule deleted */
	g_assert_true(mr_crm_rules_replace(store, none, NULL, &error));
	g_assert_no_error(error);
	ASSERT_RULES(store, "");
	g_assert_cmpint(rules_version(store), ==, 3);
}

/* --- teams ---------------------------------------------------------------------- */

/* Adds the users @emails (NULL-terminated). */
static void
users_add(MrStore *store, const char *const *emails)
{
	g_autoptr(GError) error = NULL;

	for (const char *const *e = emails; *e != NULL; e++)
		g_assert_cmpint(mr_crm_user_add(store, *e, NULL, &error), >, 0);
	g_assert_no_error(error);
}

/* Returns the email of user @id, or "-" for 0. */
static char *
user_email(MrStore *store, gint64 id)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) users = mr_store_users(store, 0, &error);

	g_assert_no_error(error);
	for (guint i = 0; i < users->len; i++) {
		const MrUserRow *u = g_ptr_array_index(users, i);

		if (u->id == id)
			return g_strdup(u->email);
	}
	g_assert_cmpint(id, ==, 0);
	return g_strdup("-");
}

/* Takes @n turns of team @team, each in a transaction of its own, as
 * routing would with the record it assigns.  Returns the users given
 * them ("-": nobody), joined by spaces. */
static char *
turns(MrStore *store, const char *team, guint n)
{
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; i < n; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *email = NULL;
		gint64 user;

		g_assert_true(mr_store_begin(store, &error));
		user = mr_crm_team_assign(store, team, &error);
		g_assert_no_error(error);
		g_assert_true(mr_store_commit(store, &error));
		email = user_email(store, user);
		g_string_append_printf(out, "%s%s", i > 0 ? " " : "", email);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

#define ASSERT_TURNS(store, team, n, want)                                        \
	do {                                                                       \
		g_autofree char *got_ = turns((store), (team), (n));                \
		g_assert_cmpstr(got_, ==, (want));                                  \
	} while (0)

static const char *const abc[] = { "a@acme.test", "b@acme.test", "c@acme.test", NULL };

/* The database of the turn's tests: $MR_TEST_CRM_DATABASE when set (a
 * postgresql:// URI: 87-teams.t runs them on either engine), else
 * @fallback.  Each test names its own team, so that they can share one. */
static const char *
turn_database(const char *fallback)
{
	const char *db = g_getenv("MR_TEST_CRM_DATABASE");

	return db != NULL && *db != '\0' ? db : fallback;
}

/* A temporary folder for an SQLite file, and its removal. */
static const char *const db_files[] = { "", "-wal", "-shm" };

static void
db_remove(const char *dir, const char *db)
{
	for (guint i = 0; i < G_N_ELEMENTS(db_files); i++) {
		g_autofree char *f = g_strconcat(db, db_files[i], NULL);

		g_unlink(f);
	}
	g_rmdir(dir);
}

/* The team use cases: added with members in order and a lead who need
 * not be a member, refused whole (a bad name, no member, a user named
 * twice or unknown, a name taken), members in and out (not the last),
 * away and back, removal refused while a rule names the team, a rule's
 * team owner accepted once the team exists; every change bumping the
 * rules' counter. */
static void
test_teams(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrRule) owned = rule_make("urgent", "role = support", "owner = team:2nd-level");
	g_autoptr(MrRule) unknown = rule_make("other", "role = support", "owner = team:nosuch");
	g_autoptr(MrTeamRow) row = NULL;
	g_autoptr(GPtrArray) all = NULL;
	const char *const none[] = { NULL };
	const char *const ab_twice[] = { "a@acme.test", "b@acme.test", "a@acme.test", NULL };
	const char *const stranger[] = { "a@acme.test", "x@acme.test", NULL };
	const char *const just_b[] = { "b@acme.test", NULL };

	users_add(store, abc);
	users_add(store, (const char *const[]){ "lead@acme.test", NULL });
	g_assert_true(mr_crm_team_add(store, "2nd-level", abc, "lead@acme.test", &error));
	g_assert_no_error(error);
	g_assert_cmpint(rules_version(store), ==, 1);
	row = mr_store_team_get(store, "2nd-level", &error);
	g_assert_no_error(error);
	g_assert_cmpstrv(row->members, abc);
	g_assert_cmpstr(row->lead, ==, "lead@acme.test");
	g_assert_cmpuint(g_strv_length(row->away), ==, 0);
	g_assert_cmpstr(row->next, ==, "a@acme.test");

	/* refused whole: nothing written, the counter as it was */
	g_assert_false(mr_crm_team_add(store, "bad name", abc, NULL, &error));
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_NAME);
	g_clear_error(&error);
	g_assert_false(mr_crm_team_add(store, "empty", none, NULL, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(mr_crm_team_add(store, "twice", ab_twice, NULL, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(mr_crm_team_add(store, "stranger", stranger, NULL, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "no user x@acme.test");
	g_clear_error(&error);
	g_assert_false(mr_crm_team_add(store, "led", abc, "x@acme.test", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(mr_crm_team_add(store, "2nd-level", just_b, NULL, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS);
	g_clear_error(&error);
	all = mr_store_teams(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, ==, 1);
	g_assert_cmpint(rules_version(store), ==, 1);

	/* members in and out; positions keep the order */
	g_assert_true(mr_crm_team_add(store, "solo", just_b, NULL, &error));
	g_assert_true(mr_crm_team_member_add(store, "solo", "a@acme.test", &error));
	g_assert_false(mr_crm_team_member_add(store, "solo", "a@acme.test", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS);
	g_clear_error(&error);
	g_assert_false(mr_crm_team_member_add(store, "solo", "x@acme.test", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(mr_crm_team_member_add(store, "nosuch", "a@acme.test", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(mr_crm_team_member_remove(store, "solo", "c@acme.test", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_true(mr_crm_team_member_remove(store, "solo", "b@acme.test", &error));
	g_assert_false(mr_crm_team_member_remove(store, "solo", "a@acme.test", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID);
	g_clear_error(&error);
	g_clear_pointer(&row, mr_team_row_free);
	row = mr_store_team_get(store, "solo", &error);
	g_assert_no_error(error);
	g_assert_cmpstrv(row->members, ((const char *const[]){ "a@acme.test", NULL }));
	g_assert_cmpint(rules_version(store), ==, 4);

	/* away and back */
	g_assert_true(mr_crm_user_away(store, "b@acme.test", TRUE, &error));
	g_assert_false(mr_crm_user_away(store, "x@acme.test", TRUE, &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_clear_pointer(&row, mr_team_row_free);
	row = mr_store_team_get(store, "2nd-level", &error);
	g_assert_cmpstrv(row->away, ((const char *const[]){ "b@acme.test", NULL }));
	g_assert_true(mr_crm_user_away(store, "b@acme.test", FALSE, &error));
	g_assert_cmpint(rules_version(store), ==, 6);

	/* a rule's team owner: an unknown team is refused, a team is taken,
	 * and the team cannot go while the rule names it */
	g_assert_cmpint(mr_crm_rule_add(store, unknown, 0, &error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "'owner = team:nosuch': no team nosuch");
	g_clear_error(&error);
	g_assert_cmpint(mr_crm_rule_add(store, owned, 0, &error), ==, 1);
	g_assert_no_error(error);
	g_assert_false(mr_crm_team_remove(store, "2nd-level", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==,
			"team 2nd-level is the owner of rule urgent; change or delete the rule first");
	g_clear_error(&error);
	g_assert_true(mr_crm_rule_delete(store, "urgent", &error));
	g_assert_true(mr_crm_team_remove(store, "2nd-level", &error));
	g_assert_no_error(error);
	g_assert_false(mr_crm_team_remove(store, "2nd-level", &error));
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_clear_pointer(&row, mr_team_row_free);
	row = mr_store_team_get(store, "2nd-level", &error);
	g_assert_null(row);
	g_assert_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND);
}

/* The turn: a, b, c, a; a member away is skipped, one back takes turns
 * again; every member away gives nobody, without error, and keeps the
 * turn; a turn undone with its transaction was not taken; a member who
 * leaves does not move the others' turns; an unknown team is not found. */
static void
test_team_turn(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(turn_database(":memory:"));
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);

	g_assert_no_error(error);
	users_add(store, abc);
	users_add(store, (const char *const[]){ "d@acme.test", NULL });
	g_assert_true(mr_crm_team_add(store, "t", abc, NULL, &error));
	g_assert_no_error(error);
	ASSERT_TURNS(store, "t", 4, "a@acme.test b@acme.test c@acme.test a@acme.test");

	g_assert_true(mr_crm_user_away(store, "b@acme.test", TRUE, &error));
	ASSERT_TURNS(store, "t", 3, "c@acme.test a@acme.test c@acme.test");
	g_assert_true(mr_crm_user_away(store, "b@acme.test", FALSE, &error));
	ASSERT_TURNS(store, "t", 2, "a@acme.test b@acme.test");

	for (const char *const *u = abc; *u != NULL; u++)
		g_assert_true(mr_crm_user_away(store, *u, TRUE, &error));
	ASSERT_TURNS(store, "t", 2, "- -");
	g_assert_true(mr_crm_user_away(store, "a@acme.test", FALSE, &error));
	g_assert_true(mr_crm_user_away(store, "c@acme.test", FALSE, &error));
	ASSERT_TURNS(store, "t", 1, "c@acme.test");
	g_assert_true(mr_crm_user_away(store, "b@acme.test", FALSE, &error));

	/* undone with the record it was taken for */
	g_assert_true(mr_store_begin(store, &error));
	g_assert_cmpint(mr_crm_team_assign(store, "t", &error), >, 0);
	mr_store_rollback(store);
	ASSERT_TURNS(store, "t", 1, "a@acme.test");

	/* b leaves and comes back last: a's turn was taken, c is next */
	g_assert_true(mr_crm_team_member_remove(store, "t", "b@acme.test", &error));
	g_assert_true(mr_crm_team_member_add(store, "t", "d@acme.test", &error));
	g_assert_true(mr_crm_team_member_add(store, "t", "b@acme.test", &error));
	g_assert_no_error(error);
	ASSERT_TURNS(store, "t", 4, "c@acme.test d@acme.test b@acme.test a@acme.test");

	g_assert_true(mr_store_begin(store, &error));
	g_assert_cmpint(mr_crm_team_assign(store, "nosuch", &error), ==, 0);
	g_assert_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND);
	mr_store_rollback(store);
}

/* The turn is in the database: a store opened again (a restart, another
 * process) goes on where the last one stopped. */
static void
test_team_turn_persists(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("mr-crm-XXXXXX", &error);
	g_autofree char *db = g_build_filename(dir, "t.db", NULL);
	g_autoptr(MrConfig) cfg = mr_test_config(turn_database(db));

	{
		g_autoptr(MrStore) store = mr_store_open(cfg, &error);

		g_assert_no_error(error);
		users_add(store, abc);
		g_assert_true(mr_crm_team_add(store, "p", abc, NULL, &error));
		ASSERT_TURNS(store, "p", 2, "a@acme.test b@acme.test");
	}
	for (int i = 0; i < 2; i++) {
		g_autoptr(MrStore) store = mr_store_open(cfg, &error);

		g_assert_no_error(error);
		ASSERT_TURNS(store, "p", 1, i == 0 ? "c@acme.test" : "a@acme.test");
	}
	db_remove(dir, db);
}

typedef struct {
	MrStore *store;
	gint64 user;
	gint done;
} TurnThread;

/* Takes a turn of team "c" in a transaction of its own. */
static gpointer
turn_thread(gpointer data)
{
	TurnThread *t = data;
	g_autoptr(GError) error = NULL;

	g_assert_true(mr_store_begin(t->store, &error));
	t->user = mr_crm_team_assign(t->store, "c", &error);
	g_assert_no_error(error);
	g_assert_true(mr_store_commit(t->store, &error));
	g_atomic_int_set(&t->done, 1);
	return NULL;
}

/* Two connections (two daemons) take turns at once: the second waits for
 * the first to commit -- on PostgreSQL at the team's row lock, on SQLite
 * at BEGIN IMMEDIATE -- and gets the member after the first's, never the
 * same. */
static void
test_team_turn_concurrent(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("mr-crm-XXXXXX", &error);
	g_autofree char *db = g_build_filename(dir, "t.db", NULL);
	g_autoptr(MrConfig) cfg = mr_test_config(turn_database(db));
	g_autoptr(MrStore) one = mr_store_open(cfg, &error);
	g_autoptr(MrStore) two = mr_store_open(cfg, &error);
	g_autofree char *first = NULL, *second = NULL;
	TurnThread t = { two, 0, 0 };
	GThread *thread;

	g_assert_no_error(error);
	users_add(one, abc);
	g_assert_true(mr_crm_team_add(one, "c", abc, NULL, &error));
	for (int round = 0; round < 3; round++) {
		gint64 user;

		g_assert_true(mr_store_begin(one, &error));
		user = mr_crm_team_assign(one, "c", &error);
		g_assert_no_error(error);
		t.done = 0;
		thread = g_thread_new("turn", turn_thread, &t);
		g_usleep(200 * 1000);
		g_assert_cmpint(g_atomic_int_get(&t.done), ==, 0);
		g_assert_true(mr_store_commit(one, &error));
		g_thread_join(thread);
		g_clear_pointer(&first, g_free);
		g_clear_pointer(&second, g_free);
		first = user_email(one, user);
		second = user_email(one, t.user);
		g_assert_cmpstr(first, ==, abc[(2 * round) % 3]);
		g_assert_cmpstr(second, ==, abc[(2 * round + 1) % 3]);
	}
	db_remove(dir, db);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/crm/admin", test_admin);
	g_test_add_func("/mailroom/crm/policy-parties", test_policy_parties);
	g_test_add_func("/mailroom/crm/policy-reopen", test_policy_reopen);
	g_test_add_func("/mailroom/crm/lead-convert", test_lead_convert);
	g_test_add_func("/mailroom/crm/rules", test_rules);
	g_test_add_func("/mailroom/crm/rules-replace", test_rules_replace);
	g_test_add_func("/mailroom/crm/teams", test_teams);
	g_test_add_func("/mailroom/crm/team-turn", test_team_turn);
	g_test_add_func("/mailroom/crm/team-turn-persists", test_team_turn_persists);
	g_test_add_func("/mailroom/crm/team-turn-concurrent", test_team_turn_concurrent);
	return g_test_run();
}
