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
	plan = mr_route_plan(cfg, store, msg, rcpt, "bounce@client.test", &error);
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
	return g_test_run();
}
