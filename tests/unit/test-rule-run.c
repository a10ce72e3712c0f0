/* test-rule-run.c - a rule set's two steps (mr-rule-set.h): the scan of
 * what the message alone says, the run with what the delivery adds; the
 * order, stops, disabled rules, what fired and what it asks for, and the
 * explanation. */
#include <string.h>

#include "mailroom/mr-rule-set.h"
#include "mailroom/mr-status.h"

/* Makes rule @name from --if texts @conds and --then texts @actions
 * (given as "a;b;c" for brevity). */
static MrRule *
rule(const char *name, const char *conds, const char *actions, gboolean any, gboolean stop)
{
	g_auto(GStrv) c = g_strsplit(conds, ";", -1);
	g_auto(GStrv) a = g_strsplit(actions, ";", -1);
	g_autoptr(GError) error = NULL;
	MrRule *r = mr_rule_new(name, (const char *const *)c, (const char *const *)a, any, stop,
				&error);

	g_assert_no_error(error);
	return r;
}

static MrRuleSet *
set_of(MrRule *first, ...)
{
	GPtrArray *rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
	va_list ap;

	va_start(ap, first);
	for (MrRule *r = first; r != NULL; r = va_arg(ap, MrRule *))
		g_ptr_array_add(rules, r);
	va_end(ap);
	return mr_rule_set_new(7, rules);
}

static const char *const from[] = { "carl@customer.test", NULL };
static const char *const to[] = { "support@acme.test", NULL };
static const char *const cc[] = { "eve@bigcustomer.test", NULL };
static const MrRuleHeader headers[] = { { "X-Spam-Flag", "YES" } };

/* A message to support from a customer, urgent, at 06:00 on a Saturday. */
static MrRuleValues
message_values(void)
{
	MrRuleValues v = { 0 };

	v.from = from;
	v.to = to;
	v.cc = cc;
	v.subject = "Dringend: printer";
	v.body = "It burns.";
	v.headers = headers;
	v.n_headers = G_N_ELEMENTS(headers);
	v.weekday = 5;
	v.hour = 6;
	return v;
}

/* What the delivery adds. */
static MrRuleValues
delivery_values(const char *recipient, MrRole role, gboolean followup, const char *account)
{
	MrRuleValues v = { 0 };

	v.recipient = recipient;
	v.role = role;
	v.followup = followup;
	v.account = account;
	return v;
}

static char *
fired(const MrRuleOutcome *out)
{
	return out->fired->len > 0 ? g_strjoinv(" ", (char **)out->fired->pdata) : g_strdup("");
}

/* Order, several rules firing, the later one winning, tags adding up,
 * a stop, a disabled rule, per-delivery fields evaluated at the run. */
static void
test_run(void)
{
	g_autoptr(MrRuleSet) set = set_of(
		rule("urgent", "role = support;subject ~ \"urgent|dringend\"",
		     "priority = high;type = incident;tag = hot", FALSE, FALSE),
		rule("vip", "address ends @bigcustomer.test", "owner = alice@acme.test;tag = vip",
		     FALSE, FALSE),
		rule("weekend", "weekday in sat,sun;hour < 7", "tag = after-hours;tag = hot",
		     TRUE, FALSE),
		rule("later", "followup = no", "priority = urgent;owner = team:2nd-level", FALSE,
		     FALSE),
		rule("acct", "account = Customer", "status = pending", FALSE, TRUE),
		rule("after-stop", "recipient exists", "tag = never", FALSE, FALSE), NULL);
	MrRuleValues m = message_values();
	g_autoptr(MrRuleScan) scan = mr_rule_scan_new(set, &m, FALSE);
	MrRuleValues d = delivery_values("support@acme.test", MR_ROLE_SUPPORT, FALSE, "customer");
	g_autoptr(MrRuleOutcome) out = mr_rule_scan_run(scan, &d);
	g_autofree char *names = fired(out);
	g_autofree char *tags = NULL;

	g_assert_cmpint(mr_rule_set_version(set), ==, 7);
	g_assert_cmpuint(mr_rule_set_enabled(set), ==, 6);
	g_assert_true(mr_rule_set_needs_account(set));
	g_assert_true(mr_rule_scan_set(scan) == set);
	g_assert_cmpstr(names, ==, "urgent vip weekend later acct");
	g_assert_cmpint(out->becomes, ==, -1);
	g_assert_cmpint(out->priority, ==, MR_PRIORITY_URGENT); /* the later wins */
	g_assert_cmpint(out->type, ==, MR_TICKET_INCIDENT);
	g_assert_cmpint(out->status, ==, MR_TICKET_PENDING);
	g_assert_cmpstr(out->owner, ==, "2nd-level");
	g_assert_true(out->owner_team);
	g_ptr_array_add(out->tags, NULL);
	tags = g_strjoinv(" ", (char **)out->tags->pdata);
	g_assert_cmpstr(tags, ==, "hot vip after-hours"); /* each once, first order */
	g_assert_null(out->explain);

	/* The same scan, another delivery: sales, a follow-up, no account. */
	{
		MrRuleValues d2 = delivery_values("sales@acme.test", MR_ROLE_SALES, TRUE, NULL);
		g_autoptr(MrRuleOutcome) o2 = mr_rule_scan_run(scan, &d2);
		g_autofree char *n2 = fired(o2);

		g_assert_cmpstr(n2, ==, "vip weekend after-stop");
		g_assert_cmpint(o2->priority, ==, -1);
		g_assert_cmpstr(o2->owner, ==, "alice@acme.test");
		g_assert_false(o2->owner_team);
	}
}

/* A disabled rule never runs; ticket/lead/log/ignore: the later wins. */
static void
test_disabled_and_becomes(void)
{
	MrRule *off = rule("off", "subject exists", "ignore", FALSE, FALSE);
	g_autoptr(MrRuleSet) set = NULL;
	MrRuleValues m = message_values();
	MrRuleValues d = delivery_values("crm@acme.test", MR_ROLE_BCC, FALSE, NULL);
	g_autoptr(MrRuleScan) scan = NULL;
	g_autoptr(MrRuleOutcome) out = NULL;
	g_autofree char *names = NULL;

	off->enabled = FALSE;
	set = set_of(off, rule("t", "role = bcc", "ticket;source = web", FALSE, FALSE),
		     rule("l", "from_domain = customer.test", "lead", FALSE, FALSE), NULL);
	g_assert_cmpuint(mr_rule_set_enabled(set), ==, 2);
	g_assert_false(mr_rule_set_needs_account(set));
	scan = mr_rule_scan_new(set, &m, FALSE);
	out = mr_rule_scan_run(scan, &d);
	names = fired(out);
	g_assert_cmpstr(names, ==, "t l");
	g_assert_cmpint(out->becomes, ==, MR_RULE_ACT_LEAD);
	g_assert_cmpstr(out->source, ==, "web");
}

/* Nothing fires: an empty outcome; an empty set. */
static void
test_nothing(void)
{
	g_autoptr(MrRuleSet) set = set_of(rule("x", "subject contains nothing-like-this",
						"tag = x", FALSE, FALSE), NULL);
	g_autoptr(MrRuleSet) empty = mr_rule_set_new(0, g_ptr_array_new());
	MrRuleValues m = message_values();
	MrRuleValues d = delivery_values("support@acme.test", MR_ROLE_SUPPORT, FALSE, NULL);
	g_autoptr(MrRuleScan) scan = mr_rule_scan_new(set, &m, FALSE);
	g_autoptr(MrRuleScan) none = mr_rule_scan_new(empty, &m, TRUE);
	g_autoptr(MrRuleOutcome) out = mr_rule_scan_run(scan, &d);
	g_autoptr(MrRuleOutcome) out2 = mr_rule_scan_run(none, &d);

	g_assert_cmpuint(out->fired->len, ==, 0);
	g_assert_cmpuint(out->tags->len, ==, 0);
	g_assert_null(out->owner);
	g_assert_cmpint(out->becomes, ==, -1);
	g_assert_cmpuint(out2->fired->len, ==, 0);
	g_assert_nonnull(out2->explain);
	g_assert_cmpuint(out2->explain->len, ==, 0);
}

/* The explanation: every enabled rule, each condition with its result and
 * value (all evaluated, even past the one that decides), the stop, the
 * rules after it listed and not run. */
static void
test_explain(void)
{
	MrRule *off = rule("off", "subject exists", "tag = off", FALSE, FALSE);
	g_autoptr(MrRuleSet) set = NULL;
	MrRuleValues m = message_values();
	MrRuleValues d = delivery_values("support@acme.test", MR_ROLE_SUPPORT, TRUE, "customer");
	g_autoptr(MrRuleScan) scan = NULL;
	g_autoptr(MrRuleOutcome) out = NULL;
	const MrRuleExplain *e;
	const MrRuleExplainCond *c;

	off->enabled = FALSE;
	set = set_of(rule("no", "from_domain = other.test;role = support", "tag = a", FALSE,
			  FALSE),
		     off,
		     rule("any", "hour > 20;header:x-spam-flag = yes;followup = yes", "tag = b",
			  TRUE, TRUE),
		     rule("late", "role = support", "tag = c", FALSE, FALSE), NULL);
	scan = mr_rule_scan_new(set, &m, TRUE);
	out = mr_rule_scan_run(scan, &d);
	g_assert_nonnull(out->explain);
	g_assert_cmpuint(out->explain->len, ==, 3); /* the disabled one is not listed */

	e = g_ptr_array_index(out->explain, 0);
	g_assert_cmpstr(e->rule, ==, "no");
	g_assert_true(e->ran && !e->fired && !e->stopped);
	g_assert_cmpuint(e->conditions->len, ==, 2); /* the second evaluated too */
	c = g_ptr_array_index(e->conditions, 0);
	g_assert_cmpstr(c->condition, ==, "from_domain = other.test");
	g_assert_false(c->result);
	g_assert_cmpstr(c->value, ==, "customer.test");
	c = g_ptr_array_index(e->conditions, 1);
	g_assert_true(c->result);
	g_assert_cmpstr(c->value, ==, "support");

	e = g_ptr_array_index(out->explain, 1);
	g_assert_cmpstr(e->rule, ==, "any");
	g_assert_true(e->ran && e->fired && e->stopped);
	g_assert_cmpuint(e->conditions->len, ==, 3);
	c = g_ptr_array_index(e->conditions, 0);
	g_assert_false(c->result);
	g_assert_cmpstr(c->value, ==, "6");
	c = g_ptr_array_index(e->conditions, 1);
	g_assert_true(c->result);
	g_assert_cmpstr(c->value, ==, "YES");
	c = g_ptr_array_index(e->conditions, 2);
	g_assert_true(c->result);
	g_assert_cmpstr(c->value, ==, "yes");

	e = g_ptr_array_index(out->explain, 2);
	g_assert_cmpstr(e->rule, ==, "late");
	g_assert_true(!e->ran && !e->fired && !e->stopped);
	g_assert_cmpuint(e->conditions->len, ==, 0);
	{
		g_autofree char *names = fired(out);

		g_assert_cmpstr(names, ==, "any");
	}
}

/* The scan keeps nothing of the values it read: they may go before the
 * run (the parse pool's message values vs the writer's delivery). */
static void
test_scan_owns_nothing(void)
{
	g_autoptr(MrRuleSet) set = set_of(rule("s", "subject contains printer;body ~ burn",
						"tag = p", FALSE, FALSE), NULL);
	g_autoptr(MrRuleScan) scan = NULL;
	g_autoptr(MrRuleOutcome) out = NULL;
	MrRuleValues d = delivery_values("support@acme.test", MR_ROLE_SUPPORT, FALSE, NULL);

	{
		g_autofree char *subject = g_strdup("Printer");
		g_autofree char *body = g_strdup("it BURNS");
		MrRuleValues m = { 0 };

		m.subject = subject;
		m.body = body;
		scan = mr_rule_scan_new(set, &m, TRUE);
	}
	out = mr_rule_scan_run(scan, &d);
	g_assert_cmpuint(out->fired->len, ==, 1);
	{
		const MrRuleExplain *e = g_ptr_array_index(out->explain, 0);
		const MrRuleExplainCond *c = g_ptr_array_index(e->conditions, 1);

		g_assert_cmpstr(c->value, ==, "it BURNS");
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/model/rule-set/run", test_run);
	g_test_add_func("/mailroom/model/rule-set/disabled-becomes", test_disabled_and_becomes);
	g_test_add_func("/mailroom/model/rule-set/nothing", test_nothing);
	g_test_add_func("/mailroom/model/rule-set/explain", test_explain);
	g_test_add_func("/mailroom/model/rule-set/scan-owns-nothing", test_scan_owns_nothing);
	return g_test_run();
}
