/* test-rule.c - the rule grammar (model layer): conditions and actions
 * parsed, refused with their messages, printed back canonically,
 * evaluated against a message's values, and bounded on hostile input. */
#include <string.h>

#include "mailroom/mr-rule.h"
#include "mailroom/mr-status.h"

/* --- parsing ---------------------------------------------------------------- */

/* Every field, with an operator it takes, and its canonical text. */
static void
test_parse_fields(void)
{
	static const struct {
		const char *text;
		MrRuleField field;
		MrRuleOp op;
		const char *canonical;
	} cases[] = {
		{ "recipient = support@acme.test", MR_RULE_FIELD_RECIPIENT, MR_RULE_OP_EQ, NULL },
		{ "role = SUPPORT", MR_RULE_FIELD_ROLE, MR_RULE_OP_EQ, "role = support" },
		{ "from = a@b.test", MR_RULE_FIELD_FROM, MR_RULE_OP_EQ, NULL },
		{ "from_domain = billing.acme-erp.test", MR_RULE_FIELD_FROM_DOMAIN, MR_RULE_OP_EQ, NULL },
		{ "to contains sales", MR_RULE_FIELD_TO, MR_RULE_OP_CONTAINS, NULL },
		{ "cc exists", MR_RULE_FIELD_CC, MR_RULE_OP_EXISTS, NULL },
		{ "address ends @bigcustomer.test", MR_RULE_FIELD_ADDRESS, MR_RULE_OP_ENDS, NULL },
		{ "subject ~ \"urgent|dringend\"", MR_RULE_FIELD_SUBJECT, MR_RULE_OP_MATCH,
		  "subject ~ urgent|dringend" },
		{ "body starts Hello", MR_RULE_FIELD_BODY, MR_RULE_OP_STARTS, NULL },
		{ "header:X-Priority = 1", MR_RULE_FIELD_HEADER, MR_RULE_OP_EQ, NULL },
		{ "attachments > 0", MR_RULE_FIELD_ATTACHMENTS, MR_RULE_OP_GT, NULL },
		{ "auto = Yes", MR_RULE_FIELD_AUTO, MR_RULE_OP_EQ, "auto = yes" },
		{ "followup != no", MR_RULE_FIELD_FOLLOWUP, MR_RULE_OP_NE, NULL },
		{ "account = \"Big Customer\"", MR_RULE_FIELD_ACCOUNT, MR_RULE_OP_EQ, NULL },
		{ "weekday in sat, SUN", MR_RULE_FIELD_WEEKDAY, MR_RULE_OP_IN, "weekday in sat,sun" },
		{ "hour < 07", MR_RULE_FIELD_HOUR, MR_RULE_OP_LT, "hour < 7" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(cases[i].text, &error);
		g_autofree char *text = NULL;

		g_assert_no_error(error);
		g_assert_cmpint(c->field, ==, cases[i].field);
		g_assert_cmpint(c->op, ==, cases[i].op);
		g_assert_false(c->negate);
		text = mr_rule_cond_text(c);
		g_assert_cmpstr(text, ==, cases[i].canonical != NULL ? cases[i].canonical : cases[i].text);
	}
}

/* Every operator, with and without spaces around the symbols. */
static void
test_parse_ops(void)
{
	static const struct {
		const char *text;
		MrRuleOp op;
	} cases[] = {
		{ "subject = x", MR_RULE_OP_EQ },        { "subject != x", MR_RULE_OP_NE },
		{ "subject ~ x", MR_RULE_OP_MATCH },     { "subject !~ x", MR_RULE_OP_NOMATCH },
		{ "subject contains x", MR_RULE_OP_CONTAINS }, { "subject starts x", MR_RULE_OP_STARTS },
		{ "subject ends x", MR_RULE_OP_ENDS },   { "hour < 7", MR_RULE_OP_LT },
		{ "hour > 7", MR_RULE_OP_GT },           { "subject in a,b", MR_RULE_OP_IN },
		{ "subject exists", MR_RULE_OP_EXISTS }, { "hour<7", MR_RULE_OP_LT },
		{ "subject=x", MR_RULE_OP_EQ },          { "  subject  !~  x  ", MR_RULE_OP_NOMATCH },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(cases[i].text, &error);

		g_assert_no_error(error);
		g_assert_cmpint(c->op, ==, cases[i].op);
		g_assert_cmpstr(mr_rule_op_name(c->op), !=, NULL);
		g_assert_true((c->regex != NULL) == (c->op == MR_RULE_OP_MATCH || c->op == MR_RULE_OP_NOMATCH));
	}
}

/* Quoted values and their escapes; words keep backslashes as they are. */
static void
test_parse_quoting(void)
{
	static const struct {
		const char *text;
		const char *value;
		const char *canonical;
	} cases[] = {
		{ "subject = \"a \\\"b\\\" \\\\ c\"", "a \"b\" \\ c", "subject = \"a \\\"b\\\" \\\\ c\"" },
		{ "subject ~ \"\\[TKT-\\d+\\]\"", "\\[TKT-\\d+\\]", "subject ~ \\[TKT-\\d+\\]" },
		{ "subject ~ \\d+", "\\d+", "subject ~ \\d+" },
		{ "subject = \"\"", "", "subject = \"\"" },
		{ "subject contains \"Ärger im Büro\"", "Ärger im Büro", "subject contains \"Ärger im Büro\"" },
		{ "subject = ünïcode", "ünïcode", "subject = ünïcode" },
		{ "subject = a,b", "a,b", "subject = a,b" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(cases[i].text, &error);
		g_autofree char *text = NULL;

		g_assert_no_error(error);
		g_assert_cmpuint(c->n_values, ==, 1);
		g_assert_cmpstr(c->values[0], ==, cases[i].value);
		text = mr_rule_cond_text(c);
		g_assert_cmpstr(text, ==, cases[i].canonical);
	}
}

/* not (any number of them), exists, header names, in lists. */
static void
test_parse_not_exists_in(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrRuleCond) a = mr_rule_cond_parse("not subject contains x", &error);
	g_autoptr(MrRuleCond) b = mr_rule_cond_parse("not not not  header:List-Id exists", &error);
	g_autoptr(MrRuleCond) c = mr_rule_cond_parse("not not hour in 1, 2 ,3", &error);
	g_autoptr(MrRuleCond) d = mr_rule_cond_parse("to in \"a@x.test\",b@y.test, \"c,d@z.test\"", &error);
	g_autofree char *ta = NULL, *tb = NULL, *tc = NULL, *td = NULL;

	g_assert_no_error(error);
	g_assert_true(a->negate);
	g_assert_true(b->negate);
	g_assert_cmpint(b->op, ==, MR_RULE_OP_EXISTS);
	g_assert_cmpstr(b->header, ==, "List-Id");
	g_assert_cmpuint(b->n_values, ==, 0);
	g_assert_false(c->negate);
	g_assert_cmpuint(c->n_values, ==, 3);
	g_assert_cmpint(c->numbers[2], ==, 3);
	g_assert_cmpuint(d->n_values, ==, 3);
	g_assert_cmpstr(d->values[2], ==, "c,d@z.test");
	ta = mr_rule_cond_text(a);
	tb = mr_rule_cond_text(b);
	tc = mr_rule_cond_text(c);
	td = mr_rule_cond_text(d);
	g_assert_cmpstr(ta, ==, "not subject contains x");
	g_assert_cmpstr(tb, ==, "not header:List-Id exists");
	g_assert_cmpstr(tc, ==, "hour in 1,2,3");
	g_assert_cmpstr(td, ==, "to in a@x.test,b@y.test,\"c,d@z.test\"");
}

/* Which conditions need the database. */
static void
test_needs_store(void)
{
	g_autoptr(MrRuleCond) f = mr_rule_cond_parse("followup = yes", NULL);
	g_autoptr(MrRuleCond) a = mr_rule_cond_parse("account exists", NULL);
	g_autoptr(MrRuleCond) s = mr_rule_cond_parse("subject exists", NULL);

	g_assert_true(mr_rule_cond_needs_store(f));
	g_assert_true(mr_rule_cond_needs_store(a));
	g_assert_false(mr_rule_cond_needs_store(s));
}

/* --- validation ---------------------------------------------------------------- */

static void
test_cond_errors(void)
{
	static const struct {
		const char *text;
		MrRuleError code;
		const char *message; /* exact, or a prefix when it ends in "*" */
	} cases[] = {
		{ "subjct ~ x", MR_RULE_ERROR_FIELD,
		  "'subjct ~ x': unknown field subjct (fields: recipient, role, from, from_domain, to, cc, "
		  "address, subject, body, header:NAME, attachments, auto, followup, account, weekday, hour)" },
		{ "Subject = x", MR_RULE_ERROR_FIELD, "'Subject = x': unknown field Subject (fields: *" },
		{ "= x", MR_RULE_ERROR_FIELD, "'= x': a condition starts with a field (fields: *" },
		{ "header: = x", MR_RULE_ERROR_FIELD,
		  "'header: = x': header: needs a header name (letters, digits, '-', '_', '.')" },
		{ "subject", MR_RULE_ERROR_OPERATOR,
		  "'subject': subject needs an operator (=, !=, ~, !~, contains, starts, ends, in, exists)" },
		{ "subject like x", MR_RULE_ERROR_OPERATOR,
		  "'subject like x': unknown operator like (operators: =, !=, ~, !~, contains, starts, ends, "
		  "<, >, in, exists)" },
		{ "hour <= 7", MR_RULE_ERROR_OPERATOR, "'hour <= 7': unknown operator <= (operators: *" },
		{ "subject < 7", MR_RULE_ERROR_OPERATOR,
		  "'subject < 7': subject takes =, !=, ~, !~, contains, starts, ends, in, exists; not <" },
		{ "hour ~ 7", MR_RULE_ERROR_OPERATOR, "'hour ~ 7': hour takes =, !=, <, >, in; not ~" },
		{ "auto in yes", MR_RULE_ERROR_OPERATOR, "'auto in yes': auto takes =, !=; not in" },
		{ "weekday > mon", MR_RULE_ERROR_OPERATOR, "'weekday > mon': weekday takes =, !=, in; not >" },
		{ "hour exists", MR_RULE_ERROR_OPERATOR, "'hour exists': hour takes =, !=, <, >, in; not exists" },
		{ "hour < 24", MR_RULE_ERROR_VALUE, "'hour < 24': hour is a number from 0 to 23, not 24" },
		{ "hour = -1", MR_RULE_ERROR_VALUE, "'hour = -1': hour is a number from 0 to 23, not -1" },
		{ "hour in 1,x", MR_RULE_ERROR_VALUE, "'hour in 1,x': hour is a number from 0 to 23, not x" },
		{ "attachments > many", MR_RULE_ERROR_VALUE,
		  "'attachments > many': attachments is a number from 0 to 1000000, not many" },
		{ "weekday = monday", MR_RULE_ERROR_VALUE,
		  "'weekday = monday': weekday is one of mon, tue, wed, thu, fri, sat, sun, not monday" },
		{ "role = none", MR_RULE_ERROR_VALUE, "'role = none': role is one of bcc, support, sales, not none" },
		{ "auto = true", MR_RULE_ERROR_VALUE, "'auto = true': auto is one of no, yes, not true" },
		{ "subject ~ \"(abc\"", MR_RULE_ERROR_REGEX,
		  "'subject ~ \"(abc\"': the regular expression does not compile: *" },
		{ "subject ~ \"a{2,1}\"", MR_RULE_ERROR_REGEX, "'subject ~ \"a{2,1}\"': the regular expression *" },
		{ "subject ~ \"(*NO_JIT)a\"", MR_RULE_ERROR_REGEX,
		  "'subject ~ \"(*NO_JIT)a\"': the regular expression cannot run: *" },
		{ "subject = \"abc", MR_RULE_ERROR_SYNTAX, "'subject = \"abc': unterminated quoted value" },
		{ "subject = \"abc\\\"", MR_RULE_ERROR_SYNTAX, "'subject = \"abc\\\"': unterminated quoted value" },
		{ "subject =", MR_RULE_ERROR_SYNTAX, "'subject =': subject = needs a value" },
		{ "weekday in sat,", MR_RULE_ERROR_SYNTAX, "'weekday in sat,': weekday in needs a value after a comma" },
		{ "subject = a b", MR_RULE_ERROR_SYNTAX, "'subject = a b': unexpected text after the value: b" },
		{ "subject = abc\"d\"", MR_RULE_ERROR_SYNTAX,
		  "'subject = abc\"d\"': unexpected text after the value: \"d\"" },
		{ "subject exists x", MR_RULE_ERROR_SYNTAX, "'subject exists x': exists takes no value" },
		{ "not", MR_RULE_ERROR_SYNTAX, "'not': not needs a condition" },
		{ "   ", MR_RULE_ERROR_SYNTAX, "'   ': empty" },
		{ "", MR_RULE_ERROR_SYNTAX, "'': empty" },
		{ "subject = a\tb", MR_RULE_ERROR_SYNTAX, "'subject = a\\x09b': a control character (0x09) at byte 11" },
		{ "subject = \"a\x1b[2Jb\"", MR_RULE_ERROR_SYNTAX,
		  "'subject = \"a\\x1b[2Jb\"': a control character (0x1b) at byte 12" },
		{ "subject = \xff\xfe", MR_RULE_ERROR_SYNTAX, "'subject = \xef\xbf\xbd\xef\xbf\xbd': not UTF-8" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(cases[i].text, &error);
		const char *want = cases[i].message;
		gsize n = strlen(want);

		{ g_autofree char *shown = g_strescape(cases[i].text, NULL); g_test_message("%s", shown); }
		g_assert_null(c);
		g_assert_error(error, MR_RULE_ERROR, (int)cases[i].code);
		if (want[n - 1] == '*')
			g_assert_true(strncmp(error->message, want, n - 1) == 0);
		else
			g_assert_cmpstr(error->message, ==, want);
	}
}

/* GLib's own reason is in the message of a pattern that does not compile. */
static void
test_regex_error_reason(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrRuleCond) c = mr_rule_cond_parse("subject ~ \"(abc\"", &error);

	g_assert_null(c);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_REGEX);
	g_assert_nonnull(strstr(error->message, "missing terminating )"));
	g_assert_null(strstr(error->message, "LIMIT_MATCH"));
}

/* --- canonical text ---------------------------------------------------------------- */

/* parse(canonical(x)) == x, and canonical text is a fixed point. */
static void
test_round_trip(void)
{
	static const char *const texts[] = {
		"recipient = support@acme.test", "role in bcc,sales", "not from = a@b.test",
		"from_domain ends .test", "to starts \"sales \"", "cc !~ \"^(a|b)\\\\d\"",
		"address contains \"x\\\"y\"", "subject = \"\"", "body ~ \"(?i)hello\\s+world\"",
		"header:X-Spam-Flag = YES", "header:list-id exists", "attachments in 0,1,2",
		"auto = no", "followup = yes", "account != \"ACME, Inc.\"", "weekday != fri",
		"hour > 18", "subject in \"a b\",c,\"d,e\",\"\\\\\"", "not not not body exists",
		"subject contains ünïcödé", "subject = \\back\\slash",
	};

	for (guint i = 0; i < G_N_ELEMENTS(texts); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) a = mr_rule_cond_parse(texts[i], &error);
		g_autofree char *canon = NULL;
		g_autoptr(MrRuleCond) b = NULL;
		g_autofree char *again = NULL;

		g_assert_no_error(error);
		canon = mr_rule_cond_text(a);
		b = mr_rule_cond_parse(canon, &error);
		g_assert_no_error(error);
		g_assert_true(mr_rule_cond_equal(a, b));
		again = mr_rule_cond_text(b);
		g_assert_cmpstr(canon, ==, again);
	}
}

static void
test_cond_equal(void)
{
	g_autoptr(MrRuleCond) a = mr_rule_cond_parse("header:X-A = 1", NULL);
	g_autoptr(MrRuleCond) b = mr_rule_cond_parse("header:x-a = 1", NULL);
	g_autoptr(MrRuleCond) c = mr_rule_cond_parse("not header:x-a = 1", NULL);
	g_autoptr(MrRuleCond) d = mr_rule_cond_parse("header:x-a = 2", NULL);

	g_assert_true(mr_rule_cond_equal(a, b));
	g_assert_false(mr_rule_cond_equal(a, c));
	g_assert_false(mr_rule_cond_equal(a, d));
}

/* --- evaluation -------------------------------------------------------------------- */

static const char *const from[] = { "alice@bigcustomer.test", NULL };
static const char *const to[] = { "support@acme.test", "bob@Example.TEST", NULL };
static const char *const cc[] = { "carol@partner.test", NULL };
static const MrRuleHeader headers[] = {
	{ "X-Priority", "1 (Highest)" },
	{ "Received", "from a" },
	{ "received", "from b" },
};

static MrRuleValues
sample_values(void)
{
	MrRuleValues v = {
		.recipient = "support@acme.test",
		.role = MR_ROLE_SUPPORT,
		.from = from,
		.to = to,
		.cc = cc,
		.subject = "URGENT: Straße gesperrt",
		.body = "Hello,\nthe printer is on fire.\n",
		.headers = headers,
		.n_headers = G_N_ELEMENTS(headers),
		.attachments = 2,
		.is_auto = FALSE,
		.followup = TRUE,
		.account = "Big Customer",
		.weekday = 5, /* sat */
		.hour = 6,
	};

	return v;
}

static void
test_eval(void)
{
	static const struct {
		const char *text;
		gboolean result;
		const char *value;
	} cases[] = {
		{ "recipient = SUPPORT@acme.test", TRUE, "support@acme.test" },
		{ "role = support", TRUE, "support" },
		{ "role != support", FALSE, "support" },
		{ "role in bcc,sales", FALSE, "support" },
		{ "from = alice@bigcustomer.test", TRUE, "alice@bigcustomer.test" },
		{ "from_domain = BigCustomer.test", TRUE, "bigcustomer.test" },
		{ "from_domain ends .test", TRUE, "bigcustomer.test" },
		{ "to = bob@example.test", TRUE, "bob@Example.TEST" },
		{ "to != bob@example.test", FALSE, "bob@Example.TEST" },
		{ "to != nobody@example.test", TRUE, "support@acme.test, bob@Example.TEST" },
		{ "to starts BOB", TRUE, "bob@Example.TEST" },
		{ "to in x@y.test,bob@example.test", TRUE, "bob@Example.TEST" },
		{ "cc contains partner", TRUE, "carol@partner.test" },
		{ "cc exists", TRUE, "carol@partner.test" },
		{ "address ends @bigcustomer.test", TRUE, "alice@bigcustomer.test" },
		{ "address ends @partner.test", TRUE, "carol@partner.test" },
		{ "address ends @nowhere.test", FALSE,
		  "alice@bigcustomer.test, support@acme.test, bob@Example.TEST, carol@partner.test" },
		{ "subject ~ \"urgent|dringend\"", TRUE, "URGENT: Straße gesperrt" },
		{ "subject !~ \"urgent|dringend\"", FALSE, "URGENT: Straße gesperrt" },
		{ "subject !~ ^re:", TRUE, "URGENT: Straße gesperrt" },
		{ "subject contains STRASSE", TRUE, "URGENT: Straße gesperrt" },
		{ "subject contains straße", TRUE, "URGENT: Straße gesperrt" },
		{ "subject starts urgent:", TRUE, "URGENT: Straße gesperrt" },
		{ "subject ends GESPERRT", TRUE, "URGENT: Straße gesperrt" },
		{ "subject = \"urgent: strasse gesperrt\"", TRUE, "URGENT: Straße gesperrt" },
		{ "subject = urgent", FALSE, "URGENT: Straße gesperrt" },
		{ "subject exists", TRUE, "URGENT: Straße gesperrt" },
		{ "not subject exists", FALSE, "URGENT: Straße gesperrt" },
		{ "body contains \"ON FIRE\"", TRUE, "Hello,..." },
		{ "body ~ \"printer.*fire\"", TRUE, "Hello,..." },
		{ "header:x-priority starts 1", TRUE, "1 (Highest)" },
		{ "header:RECEIVED = \"from b\"", TRUE, "from b" },
		{ "header:Received = \"from c\"", FALSE, "from a, from b" },
		{ "header:List-Id exists", FALSE, "(none)" },
		{ "not header:List-Id exists", TRUE, "(none)" },
		{ "header:List-Id != x", TRUE, "(none)" },
		{ "attachments > 1", TRUE, "2" },
		{ "attachments < 2", FALSE, "2" },
		{ "attachments = 2", TRUE, "2" },
		{ "attachments != 2", FALSE, "2" },
		{ "attachments in 0,2", TRUE, "2" },
		{ "auto = yes", FALSE, "no" },
		{ "auto != yes", TRUE, "no" },
		{ "followup = yes", TRUE, "yes" },
		{ "account = \"big customer\"", TRUE, "Big Customer" },
		{ "weekday in sat,sun", TRUE, "sat" },
		{ "weekday = mon", FALSE, "sat" },
		{ "weekday != mon", TRUE, "sat" },
		{ "hour < 7", TRUE, "6" },
		{ "hour > 6", FALSE, "6" },
		{ "not hour > 6", TRUE, "6" },
		{ "hour in 6,7", TRUE, "6" },
	};
	MrRuleValues v = sample_values();

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(cases[i].text, &error);
		g_autofree char *value = NULL;

		{ g_autofree char *shown = g_strescape(cases[i].text, NULL); g_test_message("%s", shown); }
		g_assert_no_error(error);
		g_assert_cmpint(mr_rule_cond_eval(c, &v, &value), ==, cases[i].result);
		g_assert_cmpint(mr_rule_cond_eval(c, &v, NULL), ==, cases[i].result);
		g_assert_cmpstr(value, ==, cases[i].value);
	}
}

/* Empty and missing values: nothing matches a positive operator, and the
 * negative ones hold. */
static void
test_eval_empty(void)
{
	MrRuleValues v = { 0 };
	static const struct {
		const char *text;
		gboolean result;
	} cases[] = {
		{ "subject exists", FALSE },  { "subject = x", FALSE },   { "subject != x", TRUE },
		{ "to = a@b.test", FALSE },   { "to !~ .", TRUE },        { "from_domain = x", FALSE },
		{ "account exists", FALSE },  { "body contains x", FALSE }, { "cc exists", FALSE },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(cases[i].text, NULL);
		g_autofree char *value = NULL;

		g_assert_cmpint(mr_rule_cond_eval(c, &v, &value), ==, cases[i].result);
		g_assert_cmpstr(value, ==, "(none)");
	}
}

/* A caller that folded the subject and body once is believed. */
static void
test_eval_prefolded(void)
{
	MrRuleValues v = sample_values();
	g_autofree char *subject = g_utf8_casefold(v.subject, -1);
	g_autoptr(MrRuleCond) c = mr_rule_cond_parse("subject contains strasse", NULL);
	g_autoptr(MrRuleCond) b = mr_rule_cond_parse("body contains folded", NULL);

	v.subject_folded = subject;
	v.body_folded = "not really folded";
	g_assert_true(mr_rule_cond_eval(c, &v, NULL));
	g_assert_true(mr_rule_cond_eval(b, &v, NULL));
}

/* The explained value is one line, cut, with control characters shown. */
static void
test_explain_value(void)
{
	MrRuleValues v = sample_values();
	g_autoptr(MrRuleCond) c = mr_rule_cond_parse("subject = x", NULL);
	g_autofree char *long_subject = g_strnfill(500, 'x');
	g_autofree char *value = NULL;
	g_autofree char *want = NULL;

	v.subject = long_subject;
	g_assert_true(mr_rule_cond_eval(c, &v, NULL) == FALSE);
	mr_rule_cond_eval(c, &v, &value);
	want = g_strdup_printf("%.*s...", MR_RULE_EXPLAIN_MAX, long_subject);
	g_assert_cmpstr(value, ==, want);
	g_clear_pointer(&value, g_free);
	v.subject = "a\x1b[31mb\r\nsecond line";
	mr_rule_cond_eval(c, &v, &value);
	g_assert_cmpstr(value, ==, "a\\x1b[31mb...");
	g_clear_pointer(&value, g_free);
	v.subject = "caf\xc3";
	mr_rule_cond_eval(c, &v, &value);
	g_assert_cmpstr(value, ==, "caf\xef\xbf\xbd");
}

/* all and any, in order. */
static void
test_matches(void)
{
	const char *const conds[] = { "role = support", "subject ~ nomatch", NULL };
	const char *const acts[] = { "tag = x", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(MrRule) all = mr_rule_new("all", conds, acts, FALSE, FALSE, &error);
	g_autoptr(MrRule) any = mr_rule_new("any", conds, acts, TRUE, FALSE, &error);
	MrRuleValues v = sample_values();

	g_assert_no_error(error);
	g_assert_false(mr_rule_matches(all, &v));
	g_assert_true(mr_rule_matches(any, &v));
	v.role = MR_ROLE_SALES;
	g_assert_false(mr_rule_matches(any, &v));
}

/* --- actions ------------------------------------------------------------------------ */

static void
test_actions(void)
{
	static const struct {
		const char *text;
		MrRuleActionKind kind;
		int value;
		const char *str;
		gboolean team;
		const char *canonical;
	} cases[] = {
		{ "ticket", MR_RULE_ACT_TICKET, 0, NULL, FALSE, NULL },
		{ " lead ", MR_RULE_ACT_LEAD, 0, NULL, FALSE, "lead" },
		{ "log", MR_RULE_ACT_LOG, 0, NULL, FALSE, NULL },
		{ "ignore", MR_RULE_ACT_IGNORE, 0, NULL, FALSE, NULL },
		{ "stop", MR_RULE_ACT_STOP, 0, NULL, FALSE, NULL },
		{ "priority = high", MR_RULE_ACT_PRIORITY, MR_PRIORITY_HIGH, NULL, FALSE, NULL },
		{ "priority=URGENT", MR_RULE_ACT_PRIORITY, MR_PRIORITY_URGENT, NULL, FALSE, "priority = urgent" },
		{ "type = incident", MR_RULE_ACT_TYPE, MR_TICKET_INCIDENT, NULL, FALSE, NULL },
		{ "status = \"pending\"", MR_RULE_ACT_STATUS, MR_TICKET_PENDING, NULL, FALSE, "status = pending" },
		{ "owner = Alice@ACME.test", MR_RULE_ACT_OWNER, 0, "alice@acme.test", FALSE, "owner = alice@acme.test" },
		{ "owner = team:2nd-level", MR_RULE_ACT_OWNER, 0, "2nd-level", TRUE, NULL },
		{ "tag = after-hours", MR_RULE_ACT_TAG, 0, "after-hours", FALSE, NULL },
		{ "source = web_form", MR_RULE_ACT_SOURCE, 0, "web_form", FALSE, NULL },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleAction) a = mr_rule_action_parse(cases[i].text, &error);
		g_autoptr(MrRuleAction) b = NULL;
		g_autofree char *text = NULL;

		g_assert_no_error(error);
		g_assert_cmpint(a->kind, ==, cases[i].kind);
		g_assert_cmpint(a->value, ==, cases[i].value);
		g_assert_cmpstr(a->text, ==, cases[i].str);
		g_assert_cmpint(a->team, ==, cases[i].team);
		text = mr_rule_action_text(a);
		g_assert_cmpstr(text, ==, cases[i].canonical != NULL ? cases[i].canonical : cases[i].text);
		b = mr_rule_action_parse(text, &error);
		g_assert_no_error(error);
		g_assert_true(mr_rule_action_equal(a, b));
	}
}

static void
test_action_errors(void)
{
	static const struct {
		const char *text;
		MrRuleError code;
		const char *message;
	} cases[] = {
		{ "escalate", MR_RULE_ERROR_ACTION,
		  "'escalate': unknown action escalate (actions: ticket, lead, log, ignore, priority = PRIORITY, "
		  "type = TYPE, status = STATUS, owner = EMAIL|team:NAME, tag = WORD, source = WORD, stop)" },
		{ "Ticket", MR_RULE_ERROR_ACTION, "'Ticket': unknown action Ticket (actions: *" },
		{ "ticket = yes", MR_RULE_ERROR_ACTION, "'ticket = yes': ticket takes no value" },
		{ "priority", MR_RULE_ERROR_ACTION, "'priority': priority needs a value: priority = PRIORITY" },
		{ "priority high", MR_RULE_ERROR_ACTION, "'priority high': priority needs a value: priority = PRIORITY" },
		{ "priority =", MR_RULE_ERROR_ACTION, "'priority =': priority needs a value: priority = PRIORITY" },
		{ "priority = high low", MR_RULE_ERROR_ACTION,
		  "'priority = high low': priority takes one value: priority = PRIORITY" },
		{ "priority = critical", MR_RULE_ERROR_ACTION,
		  "'priority = critical': priority is one of low, normal, high, urgent, not critical" },
		{ "type = bug", MR_RULE_ERROR_ACTION,
		  "'type = bug': type is one of question, incident, problem, complaint, not bug" },
		{ "status = done", MR_RULE_ERROR_ACTION,
		  "'status = done': status is one of new, open, pending, solved, closed, not done" },
		{ "owner = alice", MR_RULE_ERROR_ACTION,
		  "'owner = alice': owner is an address (user@domain) or team:NAME, not alice" },
		{ "owner = a@b@c", MR_RULE_ERROR_ACTION,
		  "'owner = a@b@c': owner is an address (user@domain) or team:NAME, not a@b@c" },
		{ "owner = team:", MR_RULE_ERROR_ACTION, "'owner = team:': a team's name has 1 to 64 characters" },
		{ "owner = \"team:a b\"", MR_RULE_ERROR_ACTION,
		  "'owner = \"team:a b\"': a team's name has only letters, digits, '.', '_' and '-'" },
		{ "tag = \"two words\"", MR_RULE_ERROR_ACTION,
		  "'tag = \"two words\"': tag is a word of 1 to 64 letters, digits, '.', '_' or '-', not two words" },
		{ "source = \"\"", MR_RULE_ERROR_ACTION,
		  "'source = \"\"': source is a word of 1 to 64 letters, digits, '.', '_' or '-', not " },
		{ "tag = \"x", MR_RULE_ERROR_SYNTAX, "'tag = \"x': unterminated quoted value" },
		{ "", MR_RULE_ERROR_SYNTAX, "'': empty" },
		{ "tag = a\nb", MR_RULE_ERROR_SYNTAX, "'tag = a\\x0ab': a control character (0x0a) at byte 7" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleAction) a = mr_rule_action_parse(cases[i].text, &error);
		const char *want = cases[i].message;
		gsize n = strlen(want);

		{ g_autofree char *shown = g_strescape(cases[i].text, NULL); g_test_message("%s", shown); }
		g_assert_null(a);
		g_assert_error(error, MR_RULE_ERROR, (int)cases[i].code);
		if (n > 0 && want[n - 1] == '*')
			g_assert_true(strncmp(error->message, want, n - 1) == 0);
		else
			g_assert_cmpstr(error->message, ==, want);
	}
}

/* --- rules -------------------------------------------------------------------------- */

/* The four examples of the issue, as written on the command line. */
static void
test_issue_examples(void)
{
	const char *const urgent_if[] = { "role = support", "subject ~ \"urgent|dringend\"", NULL };
	const char *const urgent_then[] = { "priority = high", "type = incident", "owner = team:2nd-level", NULL };
	const char *const invoices_if[] = { "from_domain = billing.acme-erp.test", NULL };
	const char *const invoices_then[] = { "log", NULL };
	const char *const big_if[] = { "address ends @bigcustomer.test", NULL };
	const char *const big_then[] = { "owner = alice@acme.test", NULL };
	const char *const weekend_if[] = { "weekday in sat,sun", "hour < 7", NULL };
	const char *const weekend_then[] = { "tag = after-hours", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(MrRule) urgent = mr_rule_new("urgent", urgent_if, urgent_then, FALSE, FALSE, &error);
	g_autoptr(MrRule) invoices = mr_rule_new("invoices", invoices_if, invoices_then, FALSE, TRUE, &error);
	g_autoptr(MrRule) big = mr_rule_new("bigcustomer", big_if, big_then, FALSE, FALSE, &error);
	g_autoptr(MrRule) weekend = mr_rule_new("weekend", weekend_if, weekend_then, TRUE, FALSE, &error);
	MrRuleValues v = sample_values();
	const MrRuleAction *owner;

	g_assert_no_error(error);
	g_assert_cmpstr(urgent->name, ==, "urgent");
	g_assert_true(urgent->enabled);
	g_assert_cmpuint(urgent->conds->len, ==, 2);
	g_assert_cmpuint(urgent->actions->len, ==, 3);
	owner = urgent->actions->pdata[2];
	g_assert_true(owner->team);
	g_assert_cmpstr(owner->text, ==, "2nd-level");
	g_assert_true(invoices->stop);
	g_assert_true(weekend->any);
	g_assert_true(mr_rule_matches(urgent, &v));
	g_assert_false(mr_rule_matches(invoices, &v));
	g_assert_true(mr_rule_matches(big, &v));
	g_assert_true(mr_rule_matches(weekend, &v));
	v.weekday = 1;
	v.hour = 12;
	v.subject = "Question";
	g_assert_false(mr_rule_matches(weekend, &v));
	g_assert_false(mr_rule_matches(urgent, &v));
}

static void
test_rule_errors(void)
{
	const char *const ok_if[] = { "subject exists", NULL };
	const char *const ok_then[] = { "ticket", NULL };
	const char *const bad_if[] = { "subject exists", "subjct ~ x", "hour < 99", NULL };
	const char *const two_whats[] = { "ticket", "tag = a", "lead", NULL };
	const char *const two_prios[] = { "priority = low", "priority = low", NULL };
	const char *const two_tags[] = { "tag = a", "tag = b", "tag = a", NULL };
	const char *const none[] = { NULL };
	static const char *const names[] = { "", "-x", "a b", "ä", "x/y" };
	g_autofree char *long_name = g_strnfill(MR_RULE_NAME_MAX + 1, 'n');
	g_autofree char *max_name = g_strnfill(MR_RULE_NAME_MAX, 'n');
	g_autoptr(GError) error = NULL;
	g_autoptr(MrRule) ok = NULL;
	MrRule *r;

	r = mr_rule_new("r", bad_if, ok_then, FALSE, FALSE, &error);
	g_assert_null(r);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_FIELD);
	g_assert_true(g_str_has_prefix(error->message, "'subjct ~ x': unknown field subjct"));
	g_clear_error(&error);
	r = mr_rule_new("r", ok_if, two_whats, FALSE, FALSE, &error);
	g_assert_null(r);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_CONFLICT);
	g_assert_cmpstr(error->message, ==, "'lead': a rule has one of these actions, and already has 'ticket'");
	g_clear_error(&error);
	r = mr_rule_new("r", ok_if, two_prios, FALSE, FALSE, &error);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_CONFLICT);
	g_clear_error(&error);
	r = mr_rule_new("r", ok_if, two_tags, FALSE, FALSE, &error);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_CONFLICT);
	g_assert_cmpstr(error->message, ==, "'tag = a': the same tag twice");
	g_clear_error(&error);
	r = mr_rule_new("r", none, ok_then, FALSE, FALSE, &error);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_EMPTY);
	g_clear_error(&error);
	r = mr_rule_new("r", ok_if, NULL, FALSE, FALSE, &error);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_EMPTY);
	g_clear_error(&error);
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		r = mr_rule_new(names[i], ok_if, ok_then, FALSE, FALSE, &error);
		g_assert_null(r);
		g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_NAME);
		g_clear_error(&error);
	}
	r = mr_rule_new(long_name, ok_if, ok_then, FALSE, FALSE, &error);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_NAME);
	g_clear_error(&error);
	r = mr_rule_new(NULL, ok_if, ok_then, FALSE, FALSE, &error);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_NAME);
	g_clear_error(&error);
	ok = mr_rule_new(max_name, ok_if, ok_then, FALSE, FALSE, &error);
	g_assert_no_error(error);
	g_assert_nonnull(ok);
}

/* A stop action is the rule's stop, not one of its actions. */
static void
test_rule_stop(void)
{
	const char *const conds[] = { "subject exists", NULL };
	const char *const acts[] = { "log", "stop", NULL };
	g_autoptr(MrRule) r = mr_rule_new("r", conds, acts, FALSE, FALSE, NULL);

	g_assert_true(r->stop);
	g_assert_cmpuint(r->actions->len, ==, 1);
}

/* --- a record's fields (workflows) ------------------------------------------------ */

/* Every field a workflow's condition takes, its operators, and its
 * canonical text; parse(text(c)) == c. */
static void
test_record_parse(void)
{
	static const struct {
		const char *text;
		MrRuleField field;
		MrRuleOp op;
		const char *canonical;
	} cases[] = {
		{ "record = ticket", MR_RULE_FIELD_RECORD, MR_RULE_OP_EQ, NULL },
		{ "record != LEAD", MR_RULE_FIELD_RECORD, MR_RULE_OP_NE, "record != lead" },
		{ "record in lead, Opportunity", MR_RULE_FIELD_RECORD, MR_RULE_OP_IN, "record in lead,opportunity" },
		{ "status = open", MR_RULE_FIELD_STATUS, MR_RULE_OP_EQ, NULL },
		{ "status starts in_", MR_RULE_FIELD_STATUS, MR_RULE_OP_STARTS, NULL },
		{ "status !~ \"^(solved|closed)$\"", MR_RULE_FIELD_STATUS, MR_RULE_OP_NOMATCH,
		  "status !~ ^(solved|closed)$" },
		{ "not status exists", MR_RULE_FIELD_STATUS, MR_RULE_OP_EXISTS, NULL },
		{ "priority = HIGH", MR_RULE_FIELD_PRIORITY, MR_RULE_OP_EQ, "priority = high" },
		{ "priority > normal", MR_RULE_FIELD_PRIORITY, MR_RULE_OP_GT, NULL },
		{ "priority < \"urgent\"", MR_RULE_FIELD_PRIORITY, MR_RULE_OP_LT, "priority < urgent" },
		{ "priority in low,normal", MR_RULE_FIELD_PRIORITY, MR_RULE_OP_IN, NULL },
		{ "priority exists", MR_RULE_FIELD_PRIORITY, MR_RULE_OP_EXISTS, NULL },
		{ "type = Incident", MR_RULE_FIELD_TYPE, MR_RULE_OP_EQ, "type = incident" },
		{ "type != complaint", MR_RULE_FIELD_TYPE, MR_RULE_OP_NE, NULL },
		{ "type in question,problem", MR_RULE_FIELD_TYPE, MR_RULE_OP_IN, NULL },
		{ "not  not type exists", MR_RULE_FIELD_TYPE, MR_RULE_OP_EXISTS, "type exists" },
		{ "stage = \"Closed Won\"", MR_RULE_FIELD_STAGE, MR_RULE_OP_EQ, NULL },
		{ "stage contains prop", MR_RULE_FIELD_STAGE, MR_RULE_OP_CONTAINS, NULL },
		{ "value > 010000", MR_RULE_FIELD_VALUE, MR_RULE_OP_GT, "value > 10000" },
		{ "value < 999999999999999", MR_RULE_FIELD_VALUE, MR_RULE_OP_LT, NULL },
		{ "value = 0", MR_RULE_FIELD_VALUE, MR_RULE_OP_EQ, NULL },
		{ "value != 5", MR_RULE_FIELD_VALUE, MR_RULE_OP_NE, NULL },
		{ "value exists", MR_RULE_FIELD_VALUE, MR_RULE_OP_EXISTS, NULL },
		{ "owner = Ann@Example.com", MR_RULE_FIELD_OWNER, MR_RULE_OP_EQ, NULL },
		{ "owner ends @example.com", MR_RULE_FIELD_OWNER, MR_RULE_OP_ENDS, NULL },
		{ "owner exists", MR_RULE_FIELD_OWNER, MR_RULE_OP_EXISTS, NULL },
		{ "tag = vip", MR_RULE_FIELD_TAG, MR_RULE_OP_EQ, NULL },
		{ "tag in vip , \"key account\"", MR_RULE_FIELD_TAG, MR_RULE_OP_IN, "tag in vip,\"key account\"" },
		{ "tag !~ ^x-", MR_RULE_FIELD_TAG, MR_RULE_OP_NOMATCH, NULL },
		{ "tag exists", MR_RULE_FIELD_TAG, MR_RULE_OP_EXISTS, NULL },
		{ "weekday in sat,sun", MR_RULE_FIELD_WEEKDAY, MR_RULE_OP_IN, NULL },
		{ "hour < 9", MR_RULE_FIELD_HOUR, MR_RULE_OP_LT, NULL },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse_record(cases[i].text, &error);
		g_autoptr(MrRuleCond) again = NULL;
		g_autofree char *text = NULL;
		g_autofree char *text2 = NULL;

		g_test_message("%s", cases[i].text);
		g_assert_no_error(error);
		g_assert_cmpint(c->field, ==, cases[i].field);
		g_assert_cmpint(c->op, ==, cases[i].op);
		g_assert_false(mr_rule_cond_needs_store(c));
		text = mr_rule_cond_text(c);
		g_assert_cmpstr(text, ==, cases[i].canonical != NULL ? cases[i].canonical : cases[i].text);
		again = mr_rule_cond_parse_record(text, &error);
		g_assert_no_error(error);
		g_assert_true(mr_rule_cond_equal(c, again));
		text2 = mr_rule_cond_text(again);
		g_assert_cmpstr(text, ==, text2);
	}
}

/* Each parser refuses the other's fields, with the list of its own; the
 * record's fields refuse values and operators they do not take. */
static void
test_record_errors(void)
{
	static const struct {
		gboolean record; /* mr_rule_cond_parse_record(), else mr_rule_cond_parse() */
		const char *text;
		MrRuleError code;
		const char *message; /* exact, or a prefix when it ends in "*" */
	} cases[] = {
		{ FALSE, "status = open", MR_RULE_ERROR_FIELD,
		  "'status = open': status is a field of a workflow's record, not of a message (fields: "
		  "recipient, role, from, from_domain, to, cc, address, subject, body, header:NAME, "
		  "attachments, auto, followup, account, weekday, hour)" },
		{ FALSE, "not tag exists", MR_RULE_ERROR_FIELD,
		  "'not tag exists': tag is a field of a workflow's record, not of a message (fields: *" },
		{ FALSE, "record = ticket", MR_RULE_ERROR_FIELD, "'record = ticket': record is a field of a workflow's *" },
		{ FALSE, "priority > low", MR_RULE_ERROR_FIELD, "'priority > low': priority is a field of *" },
		{ FALSE, "type = question", MR_RULE_ERROR_FIELD, "'type = question': type is a field of *" },
		{ FALSE, "stage = x", MR_RULE_ERROR_FIELD, "'stage = x': stage is a field of *" },
		{ FALSE, "value > 1", MR_RULE_ERROR_FIELD, "'value > 1': value is a field of *" },
		{ FALSE, "owner = a@b.test", MR_RULE_ERROR_FIELD, "'owner = a@b.test': owner is a field of *" },
		{ TRUE, "subject ~ x", MR_RULE_ERROR_FIELD,
		  "'subject ~ x': subject is a field of a message; a workflow's conditions take: record, "
		  "status, priority, type, stage, value, owner, tag, weekday, hour" },
		{ TRUE, "header:X-A = 1", MR_RULE_ERROR_FIELD,
		  "'header:X-A = 1': header:X-A is a field of a message; a workflow's conditions take: *" },
		{ TRUE, "followup = yes", MR_RULE_ERROR_FIELD, "'followup = yes': followup is a field of a message; *" },
		{ TRUE, "recipient exists", MR_RULE_ERROR_FIELD, "'recipient exists': recipient is a field of a message; *" },
		{ TRUE, "stauts = open", MR_RULE_ERROR_FIELD,
		  "'stauts = open': unknown field stauts (fields: record, status, priority, type, stage, value, "
		  "owner, tag, weekday, hour)" },
		{ TRUE, "= open", MR_RULE_ERROR_FIELD,
		  "'= open': a condition starts with a field (fields: record, status, *" },
		{ TRUE, "record = contact", MR_RULE_ERROR_VALUE,
		  "'record = contact': record is one of ticket, lead, opportunity, not contact" },
		{ TRUE, "record in ticket,leads", MR_RULE_ERROR_VALUE,
		  "'record in ticket,leads': record is one of ticket, lead, opportunity, not leads" },
		{ TRUE, "record exists", MR_RULE_ERROR_OPERATOR, "'record exists': record takes =, !=, in; not exists" },
		{ TRUE, "record ~ t", MR_RULE_ERROR_OPERATOR, "'record ~ t': record takes =, !=, in; not ~" },
		{ TRUE, "priority = critical", MR_RULE_ERROR_VALUE,
		  "'priority = critical': priority is one of low, normal, high, urgent, not critical" },
		{ TRUE, "priority ~ h", MR_RULE_ERROR_OPERATOR,
		  "'priority ~ h': priority takes =, !=, <, >, in, exists; not ~" },
		{ TRUE, "type = bug", MR_RULE_ERROR_VALUE,
		  "'type = bug': type is one of question, incident, problem, complaint, not bug" },
		{ TRUE, "type < problem", MR_RULE_ERROR_OPERATOR, "'type < problem': type takes =, !=, in, exists; not <" },
		{ TRUE, "value = -1", MR_RULE_ERROR_VALUE,
		  "'value = -1': value is a number from 0 to 999999999999999, not -1" },
		{ TRUE, "value > 1000000000000000", MR_RULE_ERROR_VALUE,
		  "'value > 1000000000000000': value is a number from 0 to 999999999999999, not 1000000000000000" },
		{ TRUE, "value < 1.5", MR_RULE_ERROR_VALUE, "'value < 1.5': value is a number from 0 to *" },
		{ TRUE, "value in 1,2", MR_RULE_ERROR_OPERATOR, "'value in 1,2': value takes =, !=, <, >, exists; not in" },
		{ TRUE, "tag < a", MR_RULE_ERROR_OPERATOR,
		  "'tag < a': tag takes =, !=, ~, !~, contains, starts, ends, in, exists; not <" },
		{ TRUE, "status exists open", MR_RULE_ERROR_SYNTAX, "'status exists open': exists takes no value" },
		{ TRUE, "stage =", MR_RULE_ERROR_SYNTAX, "'stage =': stage = needs a value" },
		{ TRUE, "owner ~ \"(\"", MR_RULE_ERROR_REGEX, "'owner ~ \"(\"': the regular expression does not compile: *" },
		{ TRUE, "hour < 24", MR_RULE_ERROR_VALUE, "'hour < 24': hour is a number from 0 to 23, not 24" },
		{ TRUE, "not", MR_RULE_ERROR_SYNTAX, "'not': not needs a condition" },
		{ TRUE, "", MR_RULE_ERROR_SYNTAX, "'': empty" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = cases[i].record ? mr_rule_cond_parse_record(cases[i].text, &error)
							  : mr_rule_cond_parse(cases[i].text, &error);
		const char *want = cases[i].message;
		gsize n = strlen(want);

		g_test_message("%s", cases[i].text);
		g_assert_null(c);
		g_assert_error(error, MR_RULE_ERROR, (int)cases[i].code);
		if (want[n - 1] == '*')
			g_assert_true(strncmp(error->message, want, n - 1) == 0);
		else
			g_assert_cmpstr(error->message, ==, want);
	}
}

static const char *const ticket_tags[] = { "vip", "billing", NULL };

/* The values of a ticket, a lead and an opportunity, as a workflow's
 * firing sees them. */
static MrRuleValues
record_values(const char *kind)
{
	MrRuleValues v = { .weekday = 0, .hour = 10, .record = kind };

	if (strcmp(kind, "ticket") == 0) {
		v.status = "open";
		v.priority = "high";
		v.type = "incident";
		v.owner = "ann@example.com";
		v.tags = ticket_tags;
	} else if (strcmp(kind, "lead") == 0) {
		v.status = "new";
		v.priority = "normal";
	} else {
		v.status = "open";
		v.stage = "Proposal";
		v.has_value = TRUE;
		v.value = 15000;
		v.owner = "Bob@Example.com";
	}
	return v;
}

/* Conditions on the record's fields: priority in its order, tags as a
 * list, exists, and what a record without a field answers (as an empty
 * text: nothing but != and !~ holds). */
static void
test_record_eval(void)
{
	static const struct {
		const char *record;
		const char *text;
		gboolean result;
		const char *value;
	} cases[] = {
		{ "ticket", "record = ticket", TRUE, "ticket" },
		{ "ticket", "record != TICKET", FALSE, "ticket" },
		{ "ticket", "record in lead,opportunity", FALSE, "ticket" },
		{ "ticket", "status = OPEN", TRUE, "open" },
		{ "ticket", "status in solved,closed", FALSE, "open" },
		{ "ticket", "priority = high", TRUE, "high" },
		{ "ticket", "priority > normal", TRUE, "high" },
		{ "ticket", "priority > high", FALSE, "high" },
		{ "ticket", "priority < high", FALSE, "high" },
		{ "ticket", "priority < urgent", TRUE, "high" },
		{ "ticket", "priority in low,normal", FALSE, "high" },
		{ "ticket", "priority exists", TRUE, "high" },
		{ "ticket", "type = incident", TRUE, "incident" },
		{ "ticket", "type != incident", FALSE, "incident" },
		{ "ticket", "type exists", TRUE, "incident" },
		{ "ticket", "owner = ANN@example.com", TRUE, "ann@example.com" },
		{ "ticket", "owner ends @EXAMPLE.com", TRUE, "ann@example.com" },
		{ "ticket", "tag = VIP", TRUE, "vip" },
		{ "ticket", "tag != vip", FALSE, "vip" },
		{ "ticket", "tag != gold", TRUE, "vip, billing" },
		{ "ticket", "tag contains bill", TRUE, "billing" },
		{ "ticket", "tag in gold,billing", TRUE, "billing" },
		{ "ticket", "tag !~ ^v", FALSE, "vip" },
		{ "ticket", "tag exists", TRUE, "vip" },
		{ "ticket", "stage exists", FALSE, "(none)" },
		{ "ticket", "value exists", FALSE, "(none)" },
		{ "ticket", "value > 0", FALSE, "(none)" },
		{ "ticket", "value < 1", FALSE, "(none)" },
		{ "ticket", "value = 0", FALSE, "(none)" },
		{ "ticket", "value != 5", TRUE, "(none)" },
		{ "ticket", "not value exists", TRUE, "(none)" },
		{ "ticket", "weekday = mon", TRUE, "mon" },
		{ "ticket", "hour > 8", TRUE, "10" },
		{ "lead", "record = lead", TRUE, "lead" },
		{ "lead", "status = new", TRUE, "new" },
		{ "lead", "priority > low", TRUE, "normal" },
		{ "lead", "priority < normal", FALSE, "normal" },
		{ "lead", "owner exists", FALSE, "(none)" },
		{ "lead", "not owner exists", TRUE, "(none)" },
		{ "lead", "owner = a@b.test", FALSE, "(none)" },
		{ "lead", "owner != a@b.test", TRUE, "(none)" },
		{ "lead", "type exists", FALSE, "(none)" },
		{ "lead", "type = question", FALSE, "(none)" },
		{ "lead", "type in question,incident", FALSE, "(none)" },
		{ "lead", "type != question", TRUE, "(none)" },
		{ "lead", "tag exists", FALSE, "(none)" },
		{ "lead", "tag = vip", FALSE, "(none)" },
		{ "lead", "tag !~ .", TRUE, "(none)" },
		{ "lead", "stage = x", FALSE, "(none)" },
		{ "opportunity", "record = opportunity", TRUE, "opportunity" },
		{ "opportunity", "priority exists", FALSE, "(none)" },
		{ "opportunity", "priority < urgent", FALSE, "(none)" },
		{ "opportunity", "priority > low", FALSE, "(none)" },
		{ "opportunity", "priority != high", TRUE, "(none)" },
		{ "opportunity", "value > 10000", TRUE, "15000" },
		{ "opportunity", "value < 15000", FALSE, "15000" },
		{ "opportunity", "value = 15000", TRUE, "15000" },
		{ "opportunity", "value != 15000", FALSE, "15000" },
		{ "opportunity", "value exists", TRUE, "15000" },
		{ "opportunity", "stage = proposal", TRUE, "Proposal" },
		{ "opportunity", "stage ~ ^prop", TRUE, "Proposal" },
		{ "opportunity", "stage exists", TRUE, "Proposal" },
		{ "opportunity", "owner = bob@example.com", TRUE, "Bob@Example.com" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		MrRuleValues v = record_values(cases[i].record);
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse_record(cases[i].text, &error);
		g_autofree char *value = NULL;

		g_test_message("%s: %s", cases[i].record, cases[i].text);
		g_assert_no_error(error);
		g_assert_cmpint(mr_rule_cond_eval(c, &v, &value), ==, cases[i].result);
		g_assert_cmpint(mr_rule_cond_eval(c, &v, NULL), ==, cases[i].result);
		g_assert_cmpstr(value, ==, cases[i].value);
	}
}

/* A stored word this mailroom does not know (a priority of a later
 * version, a record kind) exists, but compares as none. */
static void
test_record_eval_unknown(void)
{
	MrRuleValues v = record_values("ticket");
	static const struct {
		const char *text;
		gboolean result;
		const char *value;
	} cases[] = {
		{ "priority exists", TRUE, "critical" }, { "priority = high", FALSE, "critical" },
		{ "priority > low", FALSE, "critical" }, { "priority != high", TRUE, "critical" },
		{ "record = ticket", FALSE, "contact" }, { "record != ticket", TRUE, "contact" },
	};

	v.priority = "critical";
	v.record = "contact";
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse_record(cases[i].text, NULL);
		g_autofree char *value = NULL;

		g_assert_cmpint(mr_rule_cond_eval(c, &v, &value), ==, cases[i].result);
		g_assert_cmpstr(value, ==, cases[i].value);
	}
}

/* --- hostile input ------------------------------------------------------------------ */

static void
test_hostile_lengths(void)
{
	g_autofree char *fill = g_strnfill(MR_RULE_TEXT_MAX, 'v');
	g_autofree char *too_long = g_strdup_printf("subject = %s", fill);
	g_autofree char *fits = g_strdup_printf("subject = %.*s", MR_RULE_TEXT_MAX - 10, fill);
	g_autofree char *long_re = g_strdup_printf("body ~ %.*s", MR_RULE_TEXT_MAX - 7, fill);
	g_autofree char *nots = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(MrRuleCond) c = mr_rule_cond_parse(too_long, &error);
	g_autoptr(MrRuleCond) d = NULL;
	g_autoptr(MrRuleCond) e = NULL;
	g_autoptr(MrRuleCond) n = NULL;
	GString *s = g_string_new(NULL);

	g_assert_null(c);
	g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_SYNTAX);
	g_assert_cmpstr(error->message, ==,
			"'subject = vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv...': too long (4106 bytes, at most 4096)");
	g_clear_error(&error);
	d = mr_rule_cond_parse(fits, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(strlen(d->values[0]), ==, MR_RULE_TEXT_MAX - 10);
	e = mr_rule_cond_parse(long_re, &error);
	g_assert_no_error(error);
	/* many nots: no recursion, an even number cancels out */
	while (s->len + 20 < MR_RULE_TEXT_MAX)
		g_string_append(s, "not ");
	g_string_append(s, "hour < 3");
	nots = g_string_free(s, FALSE);
	n = mr_rule_cond_parse(nots, &error);
	g_assert_no_error(error);
	g_assert_cmpint(n->negate, ==, (strlen(nots) - 8) / 4 % 2 == 1);
}

/* An unterminated quote at every length, and control bytes anywhere. */
static void
test_hostile_bytes(void)
{
	const char *base = "subject = \"abc\\\\\\\"def\"";
	gsize len = strlen(base);

	for (gsize cut = 0; cut <= len; cut++) {
		g_autofree char *text = g_strndup(base, cut);
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(text, &error);

		g_assert_true((c == NULL) != (error == NULL));
	}
	for (int b = 1; b < 0x20; b++) {
		g_autofree char *text = g_strdup_printf("subject = \"a%cb\"", b);
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(text, &error);

		g_assert_null(c);
		g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_SYNTAX);
		g_assert_nonnull(strstr(error->message, "a control character"));
	}
	{
		/* a NUL ends the C string: what is left is unterminated */
		static const char nul[] = "subject = \"a\0b\"";
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(nul, &error);

		g_assert_error(error, MR_RULE_ERROR, MR_RULE_ERROR_SYNTAX);
		g_assert_cmpstr(error->message, ==, "'subject = \"a': unterminated quoted value");
	}
}

/* Values that are not UTF-8 or are huge are compared without harm. */
static void
test_hostile_values(void)
{
	MrRuleValues v = sample_values();
	g_autoptr(MrRuleCond) c = mr_rule_cond_parse("body contains fire", NULL);
	g_autoptr(MrRuleCond) r = mr_rule_cond_parse("body ~ fire$", NULL);
	g_autoptr(MrRuleCond) late = mr_rule_cond_parse("body ~ needle", NULL);
	g_autofree char *huge = g_strnfill(4 * 1024 * 1024, 'h');
	g_autofree char *value = NULL;

	v.body = "bad \xff\xfe bytes, on fire";
	g_assert_true(mr_rule_cond_eval(c, &v, &value));
	g_assert_true(mr_rule_cond_eval(r, &v, NULL));
	g_assert_cmpstr(value, ==, "bad \xef\xbf\xbd\xef\xbf\xbd bytes, on fire");
	/* a needle past the bytes a pattern sees is not found; contains finds it */
	memcpy(huge + MR_RULE_REGEX_SUBJECT_MAX + 10, "needle", 6);
	v.body = huge;
	g_assert_false(mr_rule_cond_eval(late, &v, NULL));
	memcpy(huge + 10, "needle", 6);
	g_assert_true(mr_rule_cond_eval(late, &v, NULL));
	/* $ does not match where a long value is cut, only at its real end */
	{
		g_autoptr(MrRuleCond) end = mr_rule_cond_parse("body ~ h$", NULL);

		g_assert_false(mr_rule_cond_eval(end, &v, NULL));
		v.body = "ah";
		g_assert_true(mr_rule_cond_eval(end, &v, NULL));
		v.body = huge;
	}
	/* a cut in the middle of a character */
	memset(huge, 'h', MR_RULE_REGEX_SUBJECT_MAX + 16);
	memcpy(huge + MR_RULE_REGEX_SUBJECT_MAX - 1, "\xc3\xa4", 2);
	g_assert_false(mr_rule_cond_eval(late, &v, NULL));
}

/* Catastrophic backtracking is bounded: the issue's pattern on 100,000
 * 'a' and a 'b'; the same on blocks that defeat PCRE2's per-start limit;
 * a polynomial pattern without nested quantifiers.  Each within a second
 * or so (minutes without the bound); a match that gave up holds for
 * neither ~ nor !~ and says so. */
static void
test_catastrophic_regex(void)
{
	static const struct {
		const char *cond;
		const char *subject; /* "a" (100,000 of them, then b), "blocks", "plain" */
	} cases[] = {
		{ "body ~ \"(a+)+$\"", "a" },         { "body !~ \"(a+)+$\"", "a" },
		{ "body ~ \"(a+)+$\"", "blocks" },     { "body ~ \"(a|aa)+$\"", "blocks" },
		{ "body ~ \"a*a*a*\\\\d\"", "plain" }, { "body ~ \"(.*a){12}\\\\d\"", "plain" },
		{ "body ~ \"(*LIMIT_MATCH=1000000000)(a+)+$\"", "blocks" },
	};
	g_autofree char *as = g_strnfill(100001, 'a');
	g_autofree char *plain = g_strnfill(1024 * 1024, 'a');
	GString *blocks = g_string_new(NULL);
	g_autofree char *blocks_str = NULL;

	as[100000] = 'b';
	while (blocks->len < 1024 * 1024)
		g_string_append(blocks, "aaaaaaaaaaab");
	blocks_str = g_string_free(blocks, FALSE);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(cases[i].cond, &error);
		MrRuleValues v = { 0 };
		g_autofree char *value = NULL;
		gint64 start;
		double took;
		gboolean held;

		g_assert_no_error(error);
		v.body = strcmp(cases[i].subject, "a") == 0 ? as
			 : strcmp(cases[i].subject, "blocks") == 0 ? blocks_str : plain;
		start = g_get_monotonic_time();
		held = mr_rule_cond_eval(c, &v, &value);
		took = (g_get_monotonic_time() - start) / 1e6;
		g_test_message("%s on %s: %d in %.3f s: %s", cases[i].cond, cases[i].subject, held, took, value);
		g_assert_cmpfloat(took, <, 5.0);
		if (strcmp(cases[i].subject, "a") == 0) {
			g_assert_false(held);
			g_assert_nonnull(strstr(value, "(regex gave up: "));
		}
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/model/rule/parse/fields", test_parse_fields);
	g_test_add_func("/mailroom/model/rule/parse/ops", test_parse_ops);
	g_test_add_func("/mailroom/model/rule/parse/quoting", test_parse_quoting);
	g_test_add_func("/mailroom/model/rule/parse/not-exists-in", test_parse_not_exists_in);
	g_test_add_func("/mailroom/model/rule/parse/needs-store", test_needs_store);
	g_test_add_func("/mailroom/model/rule/errors/cond", test_cond_errors);
	g_test_add_func("/mailroom/model/rule/errors/regex", test_regex_error_reason);
	g_test_add_func("/mailroom/model/rule/canonical/round-trip", test_round_trip);
	g_test_add_func("/mailroom/model/rule/canonical/equal", test_cond_equal);
	g_test_add_func("/mailroom/model/rule/eval/ops", test_eval);
	g_test_add_func("/mailroom/model/rule/eval/empty", test_eval_empty);
	g_test_add_func("/mailroom/model/rule/eval/prefolded", test_eval_prefolded);
	g_test_add_func("/mailroom/model/rule/eval/explain", test_explain_value);
	g_test_add_func("/mailroom/model/rule/eval/matches", test_matches);
	g_test_add_func("/mailroom/model/rule/actions/parse", test_actions);
	g_test_add_func("/mailroom/model/rule/actions/errors", test_action_errors);
	g_test_add_func("/mailroom/model/rule/rules/issue-examples", test_issue_examples);
	g_test_add_func("/mailroom/model/rule/rules/errors", test_rule_errors);
	g_test_add_func("/mailroom/model/rule/rules/stop", test_rule_stop);
	g_test_add_func("/mailroom/model/rule/record/parse", test_record_parse);
	g_test_add_func("/mailroom/model/rule/record/errors", test_record_errors);
	g_test_add_func("/mailroom/model/rule/record/eval", test_record_eval);
	g_test_add_func("/mailroom/model/rule/record/eval-unknown", test_record_eval_unknown);
	g_test_add_func("/mailroom/model/rule/hostile/lengths", test_hostile_lengths);
	g_test_add_func("/mailroom/model/rule/hostile/bytes", test_hostile_bytes);
	g_test_add_func("/mailroom/model/rule/hostile/values", test_hostile_values);
	g_test_add_func("/mailroom/model/rule/hostile/catastrophic-regex", test_catastrophic_regex);
	return g_test_run();
}
