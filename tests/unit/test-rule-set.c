/* test-rule-set.c - a rule set's scan (model layer): the one pass per
 * field (mr-rule-prefilter.c) answers exactly what mr_rule_cond_eval()
 * answers, condition by condition, over random rules and messages built
 * to find where Hyperscan and PCRE2 read a text differently; what falls
 * back to the evaluation one by one; hostile bodies stay bounded. */
#include <string.h>

#include "mailroom/mr-rule-set.h"
#include "mailroom/mr-rule.h"

#include "../../src/model/mr-rule-private.h"

/* Under valgrind, the sweep over the characters takes a sample: it is for
 * the libraries' tables, which a native run checks; valgrind checks the
 * memory. */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND (RUNNING_ON_VALGRIND != 0)
#else
#define UNDER_VALGRIND FALSE
#endif

/* Whether this build has the pass (Hyperscan). */
#ifdef MR_NO_HYPERSCAN
#define HAVE_PASS FALSE
#else
#define HAVE_PASS TRUE
#endif

/* Returns: (transfer full): @v quoted as a rule's value. */
static char *
quote(const char *v)
{
	GString *s = g_string_new("\"");

	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_c(s, '\\');
		g_string_append_c(s, *p);
	}
	g_string_append_c(s, '"');
	return g_string_free(s, FALSE);
}

/* Returns: (transfer full) (nullable): a rule named @name of the
 * conditions @conds (NULL-terminated), or NULL when one does not parse. */
static MrRule *
rule_of(const char *name, const char *const *conds, gboolean any)
{
	const char *const then[] = { "tag = t", NULL };

	return mr_rule_new(name, conds, then, any, FALSE, NULL);
}

/* The same, with a stop. */
static MrRule *
rule_of_stop(const char *name, const char *const *conds, gboolean any)
{
	const char *const then[] = { "tag = t", NULL };

	return mr_rule_new(name, conds, then, any, TRUE, NULL);
}

/* Returns: (transfer full): the set of @rules (taken). */
static MrRuleSet *
set_of(GPtrArray *rules)
{
	return mr_rule_set_new(1, rules);
}

/* Returns: (transfer full): the names of the rules of @set that fire for
 * @v, by the scan; with @explain, the scan that evaluates each condition. */
static GPtrArray *
fired_by_scan(MrRuleSet *set, const MrRuleValues *v, gboolean explain)
{
	g_autoptr(MrRuleScan) scan = mr_rule_scan_new(set, v, explain);
	g_autoptr(MrRuleOutcome) out = mr_rule_scan_run(scan, v);

	return g_ptr_array_ref(out->fired);
}

/* Checks that @fast, the rules a scan fired for @v, are exactly the rules
 * of @rules that mr_rule_matches() says hold, in order, up to the first
 * that holds and stops.  @what names the message in a failure.  Returns
 * TRUE when a stop ended the run. */
static gboolean
check_fired(GPtrArray *fast, GPtrArray *rules, const MrRuleValues *v, const char *what)
{
	gboolean stopped = FALSE;
	guint k = 0;

	for (guint i = 0; i < rules->len; i++) {
		const MrRule *r = g_ptr_array_index(rules, i);
		gboolean want = mr_rule_matches(r, v);
		gboolean got = k < fast->len && strcmp(fast->pdata[k], r->name) == 0;

		if (got != want) {
			g_autofree char *text = mr_rule_cond_text(r->conds->pdata[0]);
			g_autofree char *shown = g_strescape(what, NULL);

			g_test_message("rule %s (%s%s) on %s: scan %d, one by one %d", r->name, text,
				       r->conds->len > 1 ? " ..." : "", shown, got, want);
			g_test_fail();
		}
		k += got;
		if (want && r->stop) {
			stopped = TRUE;
			break;
		}
	}
	g_assert_cmpuint(k, ==, fast->len);
	return stopped;
}

/* check_fired() for the scan of @set over @v, and the explained scan
 * (each condition evaluated) fires the same.  Returns TRUE when a stop
 * ended the run. */
static gboolean
check_same(MrRuleSet *set, GPtrArray *rules, const MrRuleValues *v, const char *what)
{
	g_autoptr(GPtrArray) fast = fired_by_scan(set, v, FALSE);
	g_autoptr(GPtrArray) slow = fired_by_scan(set, v, TRUE);
	gboolean stopped = check_fired(fast, rules, v, what);

	g_assert_cmpuint(fast->len, ==, slow->len);
	for (guint i = 0; i < fast->len; i++)
		g_assert_cmpstr(fast->pdata[i], ==, slow->pdata[i]);
	return stopped;
}

/* --- what the pass takes ------------------------------------------------------ */

/* Which conditions the pass answers, and which stay with PCRE2 (or are
 * cheap enough one by one), and why. */
static void
test_takes(void)
{
	static const struct {
		const char *cond;
		gboolean taken;
	} cases[] = {
		{ "subject ~ invoice", TRUE },
		{ "subject ~ \"^re:\\\\s*(?:fwd|aw)\\\\b\"", TRUE },
		{ "body ~ \"[a-z0-9._-]+@example\\\\.test$\"", TRUE },
		{ "body ~ \"\\\\d{3,5}|x{2}?\"", TRUE },
		{ "subject ~ \"(?:urgent|asap).{0,40}server-6\"", TRUE },
		{ "subject ~ \"a{2000}\"", TRUE },
		{ "not subject ~ \"[^\\\\w]x\"", TRUE },
		{ "body contains straße", TRUE },
		{ "body starts hello", TRUE },
		{ "from ends @big.test", TRUE },
		{ "from_domain = big.test", TRUE },
		{ "to in a@x.test,b@x.test", TRUE },
		{ "cc != a@x.test", TRUE },
		{ "header:X-Tag contains blue", TRUE },
		/* look-around, back-references, options, verbs, \x and \p,
		 * possessive, POSIX classes, \Q: PCRE2's own */
		{ "subject ~ \"a(?=b)\"", FALSE },
		{ "subject ~ \"(a)\\\\1\"", FALSE },
		{ "subject ~ \"(?i)a\"", FALSE },
		{ "subject ~ \"(*UTF)a\"", FALSE },
		{ "subject ~ \"\\\\x41\"", FALSE },
		{ "subject ~ \"\\\\p{L}\"", FALSE },
		{ "subject ~ a++", FALSE },
		{ "subject ~ \"[[:alpha:]]\"", FALSE },
		{ "subject ~ \"\\\\Qa.b\\\\E\"", FALSE },
		{ "subject ~ \"a{,3}\"", FALSE },
		{ "subject ~ \"[a-c-e]\"", FALSE },
		{ "subject ~ \"[]a]\"", FALSE },
		/* not ASCII: the libraries' case folding differs */
		{ "subject ~ straße", FALSE },
		/* !~ must tell a miss from PCRE2 giving up */
		{ "subject !~ invoice", FALSE },
		{ "body contains \"\"", FALSE },
		{ "subject exists", FALSE },
		{ "recipient = a@x.test", FALSE },
		{ "hour < 7", FALSE },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		const char *const conds[] = { cases[i].cond, NULL };
		GPtrArray *rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
		g_autoptr(MrRuleSet) set = NULL;
		MrRule *r = rule_of("r", conds, FALSE);

		g_assert_nonnull(r);
		g_ptr_array_add(rules, r);
		set = set_of(rules);
		g_test_message("%s", cases[i].cond);
		g_assert_cmpuint(mr_rule_set_prefiltered(set), ==, HAVE_PASS && cases[i].taken ? 1 : 0);
	}
}

/* --- the differential test ---------------------------------------------------- */

/* Characters where the two libraries' readings part: U+0560 and U+0860
 * are letters to PCRE2 10.42, not to Hyperscan 5.4; U+1885 the other way;
 * U+10D30 a digit to PCRE2 alone; the Kelvin sign and the long s fold to
 * k and s; the newlines GRegex's $ and . know and Hyperscan's do not;
 * and the usual non-ASCII text. */
static const char *const odd_chars[] = {
	"\xd5\xa0", "\xe0\xa1\xa0", "\xe1\xa2\x85", "\xf0\x90\xb4\xb0", "\xe2\x84\xaa", "\xc5\xbf",
	"\r", "\v", "\f", "\xc2\x85", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xc2\xa0", "\xe3\x80\x80",
	"\xc3\x9f", "\xe1\xba\x9e", "\xc4\xb0", "\xc4\xb1", "\xef\xac\x80", "\xc3\xa9", "\xd9\xa3",
	"\xe2\x82\xac", "\t", "\n", "\r\n",
};

static const char *const words[] = {
	"invoice", "urgent", "order", "paid", "re", "fwd", "aw", "k", "s", "ks", "straße", "STRASSE",
	"strasse", "café", "naïve", "Ϲ", "x", "ab", "a", "b", "42", "2024", "hello", "world", "ticket",
	"@big.test", "big", "test", "kelvin", "ſtrange", "KELVIN", "the", "end", "-", ".", "_",
};

static const char *
pick(GRand *rand, const char *const *list, guint n)
{
	return list[g_rand_int_range(rand, 0, (gint32)n)];
}

#define PICK(rand, list) pick((rand), (list), G_N_ELEMENTS(list))

/* Returns: (transfer full): a random regular expression: words, classes,
 * escapes, quantifiers, groups, alternations and anchors that the pass
 * takes, and now and then one of what it leaves to PCRE2. */
static char *
random_regex(GRand *rand)
{
	static const char *const atoms[] = {
		"invoice", "urgent", "k", "s", "x", "ab", "re", "order", "e", "st", "[a-z]", "[^a-z]",
		"[0-9]", "[\\w-]", "[^\\s]", "[\\d.]", "[A-Fa-f0-9]", "[-a]", "[a-]", "[^\\w]", "[K-S]",
		"\\d", "\\w", "\\s", "\\W", "\\S", "\\D", ".", "\\.", "\\-", "\\t", "\\r", "\\n", " ",
		"(?:re|fwd)", "(k|s)", "(?:)", "(x)", "@",
	};
	static const char *const quants[] = { "", "", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "*?", "+?" };
	static const char *const fallbacks[] = {
		"(?=k)", "(?!x)", "(\\w)\\1", "(?i)", "\\x41", "\\p{L}", "é", "straße", "a++", "(*UTF)",
		"[[:alpha:]]", "(?<=a)b", "\\Qa.b\\E", "(?>ab)",
	};
	GString *s = g_string_new(NULL);
	guint n = (guint)g_rand_int_range(rand, 1, 5);

	if (g_rand_int_range(rand, 0, 5) == 0)
		g_string_append(s, g_rand_boolean(rand) ? "^" : "\\A");
	for (guint i = 0; i < n; i++) {
		int what = g_rand_int_range(rand, 0, 20);

		if (what == 0)
			g_string_append(s, PICK(rand, fallbacks));
		else if (what == 1)
			g_string_append(s, g_rand_boolean(rand) ? "\\b" : "\\B");
		else if (what == 2)
			g_string_append_c(s, '|');
		else
			g_string_append_printf(s, "%s%s", PICK(rand, atoms), PICK(rand, quants));
	}
	if (g_rand_int_range(rand, 0, 4) == 0)
		g_string_append(s, PICK(rand, ((const char *const[]){ "$", "\\Z", "\\z", "\\b", "$|x" })));
	return g_string_free(s, FALSE);
}

/* Returns: (transfer full) (nullable): a random condition's text. */
static char *
random_cond(GRand *rand)
{
	static const char *const fields[] = {
		"subject", "subject", "subject", "body", "body", "body", "from", "from_domain", "to",
		"cc", "address", "header:X-Tag", "recipient",
	};
	static const char *const ops[] = {
		"~", "~", "~", "~", "~", "!~", "contains", "contains", "contains", "starts", "ends", "=",
		"!=", "in", "exists",
	};
	const char *field = PICK(rand, fields);
	const char *op = PICK(rand, ops);
	const char *neg = g_rand_int_range(rand, 0, 6) == 0 ? "not " : "";
	g_autofree char *value = NULL;
	g_autofree char *quoted = NULL;

	if (g_rand_int_range(rand, 0, 40) == 0) /* a field of the delivery */
		return g_strdup_printf("%srole = %s", neg, g_rand_boolean(rand) ? "support" : "sales");
	if (strcmp(op, "exists") == 0)
		return g_strdup_printf("%s%s exists", neg, field);
	if (op[strlen(op) - 1] == '~') {
		value = random_regex(rand);
	} else if (strcmp(op, "in") == 0) {
		return g_strdup_printf("%s%s in %s,%s", neg, field, PICK(rand, words), PICK(rand, words));
	} else {
		int how = g_rand_int_range(rand, 0, 4);

		value = how == 0 ? g_strconcat(PICK(rand, words), " ", PICK(rand, words), NULL)
			: how == 1 ? g_strconcat(PICK(rand, words), PICK(rand, odd_chars), NULL)
				   : g_strdup(PICK(rand, words));
		if (strpbrk(value, "\r\n\t\v\f") != NULL) /* a rule takes no control characters */
			value[strcspn(value, "\r\n\t\v\f")] = '\0';
	}
	quoted = quote(value);
	return g_strdup_printf("%s%s %s %s", neg, field, op, quoted);
}

/* Returns: (transfer full): a random text of about @len bytes: words,
 * spaces, odd characters and now and then invalid bytes. */
static char *
random_text(GRand *rand, gsize len)
{
	GString *s = g_string_new(NULL);

	while (s->len < len) {
		int what = g_rand_int_range(rand, 0, 10);

		if (what < 5)
			g_string_append(s, PICK(rand, words));
		else if (what < 8)
			g_string_append(s, PICK(rand, odd_chars));
		else if (what == 8)
			g_string_append_c(s, ' ');
		else
			g_string_append(s, g_rand_int_range(rand, 0, 8) == 0 ? "\xff" : "\n");
	}
	return g_string_free(s, FALSE);
}

/* The messages of the differential test. */
typedef struct {
	char *subject; /* (nullable) */
	char *body;    /* (nullable) */
	char *from[3];
	char *to[2];
	char *cc[2];
	MrRuleHeader headers[2];
	char *header_values[2];
} Message;

static void
message_clear(Message *m)
{
	g_free(m->subject);
	g_free(m->body);
	for (guint i = 0; i < G_N_ELEMENTS(m->from); i++)
		g_free(m->from[i]);
	for (guint i = 0; i < G_N_ELEMENTS(m->to); i++)
		g_free(m->to[i]);
	for (guint i = 0; i < G_N_ELEMENTS(m->cc); i++)
		g_free(m->cc[i]);
	for (guint i = 0; i < G_N_ELEMENTS(m->header_values); i++)
		g_free(m->header_values[i]);
}

/* Fills @m with message @i: first the hand-made ones (empty and missing
 * texts, odd endings, the characters where the libraries part, bodies
 * past the bytes a pattern sees with the word after the cut, a cut in a
 * character), then random ones. */
static void
message_make(Message *m, guint i, GRand *rand)
{
	static const char *const subjects[] = {
		"Invoice 123 paid", "RE: Straße", "STRASSE", "", "urgent\r", "urgent\r\n", "k\xe2\x80\xa8",
		"x\v", "end\f", "kelvin \xe2\x84\xaa", "\xc5\xbftrange", "\xd5\xa0word", "\xe1\xa2\x85x",
		"\xf0\x90\xb4\xb0", "re: fwd: aw: x", "naïve café", "ab\xc2\x85", "bad \xff bytes",
		"tab\there", "\xc3\xa9x", "a\nb\n", "ks", "-",
	};
	memset(m, 0, sizeof(*m));
	if (i < G_N_ELEMENTS(subjects)) {
		m->subject = g_strdup(subjects[i]);
		m->body = g_strdup(subjects[(i + 5) % G_N_ELEMENTS(subjects)]);
	} else if (i < G_N_ELEMENTS(subjects) + 6) {
		guint k = i - G_N_ELEMENTS(subjects);
		gsize cut = MR_RULE_REGEX_SUBJECT_MAX;
		char *body = g_strnfill(cut + 4096, 'z');

		/* the word beyond the cut: contains finds it, ~ does not */
		memcpy(body + cut + 100, "invoice straße", strlen("invoice straße"));
		if (k == 1) /* a character cut in two */
			memcpy(body + cut - 1, "\xc3\xa9", 2);
		if (k == 2) /* a newline at the cut */
			body[cut - 1] = '\r';
		if (k == 3) /* not ASCII before the cut */
			memcpy(body + 10, "\xd5\xa0 k", 4);
		if (k == 4) /* the word just before the cut */
			memcpy(body + cut - 7, "invoice", 7);
		if (k == 5) /* invalid bytes */
			body[cut - 2] = '\xff';
		m->body = body;
		m->subject = k == 0 ? NULL : g_strdup("long body");
	} else {
		m->subject = random_text(rand, (gsize)g_rand_int_range(rand, 0, 40));
		m->body = random_text(rand, (gsize)g_rand_int_range(rand, 0, 600));
	}
	/* addresses and a header of the words the needles are made of */
	m->from[0] = i % 3 == 0 ? g_strdup("Ann@Big.Test")
				: g_strdup_printf("%s@%s.test", PICK(rand, words), PICK(rand, words));
	m->from[1] = i % 4 == 0 ? g_strdup("straße@k.test") : NULL;
	m->to[0] = i % 5 == 0 ? NULL : g_strdup_printf("%s@big.test", PICK(rand, words));
	m->cc[0] = i % 3 == 1 ? g_strdup_printf("%s@%s", PICK(rand, words), PICK(rand, words)) : NULL;
	m->headers[0].name = "x-tag";
	m->headers[0].value = m->header_values[0] =
		i % 2 == 0 ? g_strdup("blue STRASSE") : g_strdup_printf("%s %s", PICK(rand, words), PICK(rand, words));
	m->headers[1].name = i % 4 == 0 ? "X-Stop" : "Subject";
	m->headers[1].value = m->header_values[1] = g_strdup("hidden");
}

/* ~300 random rules (most of one condition, some of several, all or
 * any, a few with a stop or a condition on the delivery) over the
 * hand-made and random messages: the scan fires exactly the rules
 * mr_rule_matches() says hold, up to a stop, and the pass takes most of
 * the conditions (else this would test nothing). */
static void
test_differential(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(22);
	GPtrArray *rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
	g_autoptr(GPtrArray) kept = g_ptr_array_new();
	g_autoptr(MrRuleSet) set = NULL;
	/* Under valgrind (memory, not meaning: the plain and sanitizer runs
	 * check the answers on all of them) a quarter of the messages. */
	guint n_conds = 0, stops = 0;
	guint n_messages = g_test_thorough() ? 2000 : UNDER_VALGRIND ? 30 : 120;

	while (rules->len < 300) {
		g_autofree char *name = g_strdup_printf("r%03u", rules->len);
		g_autofree char *c1 = random_cond(rand);
		g_autofree char *c2 = random_cond(rand);
		g_autofree char *c3 = random_cond(rand);
		const char *conds[] = { c1, c2, c3, NULL };
		guint n = g_rand_int_range(rand, 0, 5) == 0 ? 2 + (guint)g_rand_boolean(rand) : 1;
		MrRule *r;

		conds[n] = NULL;
		/* a stop only on the messages with an X-Stop header (a quarter),
		 * so that the rules after it are tested on the others */
		if (g_rand_int_range(rand, 0, 30) == 0) {
			conds[1] = "header:X-Stop exists";
			conds[2] = NULL;
			r = rule_of_stop(name, conds, FALSE);
		} else {
			r = rule_of(name, conds, g_rand_boolean(rand));
		}
		if (r == NULL) /* a pattern GRegex refuses */
			continue;
		n_conds += r->conds->len;
		g_ptr_array_add(rules, r);
		g_ptr_array_add(kept, r);
	}
	set = set_of(rules);
	g_test_message("%u conditions, %u in the pass", n_conds, mr_rule_set_prefiltered(set));
	if (HAVE_PASS)
		g_assert_cmpuint(mr_rule_set_prefiltered(set), >, n_conds / 2);
	for (guint i = 0; i < n_messages; i++) {
		Message m;
		MrRuleValues v = { 0 };
		const char *from[4] = { NULL }, *to[3] = { NULL }, *cc[3] = { NULL };
		guint nf = 0, nt = 0, nc = 0;

		message_make(&m, i, rand);
		for (guint j = 0; j < G_N_ELEMENTS(m.from); j++)
			if (m.from[j] != NULL)
				from[nf++] = m.from[j];
		for (guint j = 0; j < G_N_ELEMENTS(m.to); j++)
			if (m.to[j] != NULL)
				to[nt++] = m.to[j];
		for (guint j = 0; j < G_N_ELEMENTS(m.cc); j++)
			if (m.cc[j] != NULL)
				cc[nc++] = m.cc[j];
		v.recipient = i % 3 == 0 ? "support@acme.test" : "sales@acme.test";
		v.role = i % 3 == 0 ? MR_ROLE_SUPPORT : MR_ROLE_SALES;
		v.subject = m.subject;
		v.body = m.body;
		v.from = from;
		v.to = to;
		v.cc = i % 7 == 0 ? NULL : cc;
		v.headers = m.headers;
		v.n_headers = G_N_ELEMENTS(m.headers);
		stops += check_same(set, kept, &v, m.subject != NULL ? m.subject : "(no subject)");
		/* the same with the texts folded by the caller */
		{
			g_autofree char *sf = m.subject != NULL ? mr_rule_fold(m.subject) : NULL;
			g_autofree char *bf = m.body != NULL ? mr_rule_fold(m.body) : NULL;

			v.subject_folded = sf;
			v.body_folded = bf;
			check_same(set, kept, &v, "folded");
		}
		message_clear(&m);
	}
	g_test_message("%u of %u messages ended by a stop", stops, n_messages);
	g_assert_cmpuint(stops, >, 0);
}

/* Each pattern the pass takes on one character alone and next to a
 * letter, for every character up to U+0800 and a sample of the rest (all
 * of them with -m thorough, fewer under valgrind): the libraries' tables part on
 * some, and the pass must still answer as PCRE2 does. */
static void
test_characters(void)
{
	static const char *const patterns[] = {
		"k", "s", "[a-z]", "[^a-z]", "[k-s]", "\\w", "\\W", "\\d", "\\D", "\\s", "\\S", "\\bx",
		"x\\b", "\\Bx", "x\\B", "^.$", "x$", "x\\Z", "^x.", "[\\w.]", "[^\\d]", "i", "ss",
		"[^\\w]", "[\\s]", "[^\\s]x", "[^\\W]", "^.{2}$", "x{2,}", "x.{0,1}$", "[^k]",
	};
	GPtrArray *rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
	g_autoptr(GPtrArray) kept = g_ptr_array_new();
	g_autoptr(MrRuleSet) set = NULL;
	guint stride = g_test_thorough() ? 1 : UNDER_VALGRIND ? 4999 : 127;
	gunichar dense = UNDER_VALGRIND ? 0x80 : 0x800; /* every character below */

	for (guint i = 0; i < G_N_ELEMENTS(patterns); i++) {
		g_autofree char *q = quote(patterns[i]);
		g_autofree char *c1 = g_strdup_printf("subject ~ %s", q);
		g_autofree char *name = g_strdup_printf("p%02u", i);
		const char *conds[] = { c1, NULL };
		MrRule *r = rule_of(name, conds, FALSE);

		g_assert_nonnull(r);
		g_ptr_array_add(rules, r);
		g_ptr_array_add(kept, r);
	}
	set = set_of(rules);
	g_assert_cmpuint(mr_rule_set_prefiltered(set), ==, HAVE_PASS ? G_N_ELEMENTS(patterns) : 0);
	for (gunichar c = 1; c < 0x110000; c += c < dense ? 1 : c < 0x3000 ? MIN(stride, 5) : stride) {
		char u[8] = { 0 };

		if (c >= 0xd800 && c < 0xe000)
			continue;
		g_unichar_to_utf8(c, u);
		for (guint w = 0; w < 3; w++) {
			g_autofree char *text = g_strdup_printf(w == 0 ? "%s" : w == 1 ? "x%s" : "%sx", u);
			MrRuleValues v = { 0 };
			g_autoptr(GPtrArray) fired = NULL;

			v.subject = text;
			fired = fired_by_scan(set, &v, FALSE);
			check_fired(fired, kept, &v, text);
		}
	}
	/* and the characters where the libraries part, in any case */
	for (guint i = 0; i < G_N_ELEMENTS(odd_chars); i++)
		for (guint w = 0; w < 3; w++) {
			g_autofree char *text = g_strdup_printf(w == 0 ? "%s" : w == 1 ? "x%s" : "%sx", odd_chars[i]);
			MrRuleValues v = { 0 };

			v.subject = text;
			check_same(set, kept, &v, text);
		}
}

/* mr_rule_fold() (ASCII runs by a table, the rest by GLib) is
 * g_utf8_casefold() of the text made valid: random texts, every
 * character up to U+3000 and a sample beyond, around ASCII. */
static void
test_fold(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(7);

	for (guint i = 0; i < 2000; i++) {
		g_autofree char *text = random_text(rand, (gsize)g_rand_int_range(rand, 0, 200));
		g_autofree char *valid = g_utf8_make_valid(text, -1);
		g_autofree char *want = g_utf8_casefold(valid, -1);
		g_autofree char *got = mr_rule_fold(text);

		g_assert_cmpstr(got, ==, want);
	}
	for (gunichar c = 1; c < 0x110000; c += c < 0x3000 ? 1 : 251) {
		char u[8] = { 0 };
		g_autofree char *text = NULL, *want = NULL, *got = NULL;

		if (c >= 0xd800 && c < 0xe000)
			continue;
		g_unichar_to_utf8(c, u);
		text = g_strdup_printf("Ab%sK%s", u, u);
		want = g_utf8_casefold(text, -1);
		got = mr_rule_fold(text);
		g_assert_cmpstr(got, ==, want);
	}
}

/* --- hostile ------------------------------------------------------------------- */

/* 500 rules of patterns and needles over a 25 MB body: one pass per
 * field, so it finishes (one by one, 500 searches of the whole folded
 * body and 500 patterns over its first 64 KiB).  Bounded generously: a
 * check that it ends, not a benchmark (make bench measures). */
static void
test_hostile_big_body(void)
{
	GPtrArray *rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
	g_autoptr(MrRuleSet) set = NULL;
	g_autoptr(GPtrArray) fired = NULL;
	gsize size = 25 * 1024 * 1024;
	g_autofree char *body = g_malloc(size + 1);
	g_autofree char *folded = NULL;
	MrRuleValues v = { 0 };
	gint64 start;
	double took;

	for (guint i = 0; i < 500; i++) {
		g_autofree char *name = g_strdup_printf("h%03u", i);
		g_autofree char *c1 = i % 2 == 0 ? g_strdup_printf("body ~ \"order-%u\\\\b|ref-%u-\\\\d+\"", i, i)
						 : g_strdup_printf("body contains needle-%03u", i);
		g_autofree char *c2 = g_strdup_printf("subject ~ \"^(re|fwd): ticket %u\"", i);
		const char *conds[] = { c1, i % 5 == 0 ? c2 : NULL, NULL };
		MrRule *r = rule_of(name, conds, TRUE);

		g_assert_nonnull(r);
		g_ptr_array_add(rules, r);
	}
	set = set_of(rules);
	for (gsize i = 0; i < size; i++)
		body[i] = "abcdefghij klmnopqrstuvwxyz\n"[i % 28];
	memcpy(body + size - 100, "needle-499", 10); /* at the very end */
	body[size] = '\0';
	v.subject = "hello";
	v.body = body;
	v.body_folded = folded = mr_rule_fold(body);
	g_assert_cmpuint(mr_rule_set_prefiltered(set), ==, HAVE_PASS ? 600 : 0);
	start = g_get_monotonic_time();
	fired = fired_by_scan(set, &v, FALSE);
	took = (g_get_monotonic_time() - start) / 1e6;
	g_test_message("500 rules over 25 MB: %.3f s", took);
	g_assert_cmpuint(fired->len, ==, 1);
	g_assert_cmpstr(fired->pdata[0], ==, "h499");
	g_assert_cmpfloat(took, <, 60.0);
}

/* The catastrophic pattern of mr-rule.h in a rule set, on 64 KiB of 'a'
 * then 'b': Hyperscan, which does not backtrack, finds no match and
 * PCRE2 is not asked; on a body ending in 'a' it finds one, and PCRE2
 * confirms it, bounded. */
static void
test_hostile_catastrophic(void)
{
	const char *const conds[] = { "body ~ \"(a+)+$\"", NULL };
	GPtrArray *rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
	g_autoptr(GPtrArray) kept = g_ptr_array_new();
	g_autoptr(MrRuleSet) set = NULL;
	g_autofree char *as = g_strnfill(MR_RULE_REGEX_SUBJECT_MAX, 'a');
	MrRuleValues v = { 0 };
	MrRule *r = rule_of("cat", conds, FALSE);

	g_ptr_array_add(rules, r);
	g_ptr_array_add(kept, r);
	set = set_of(rules);
	g_assert_cmpuint(mr_rule_set_prefiltered(set), ==, HAVE_PASS ? 1 : 0);
	as[MR_RULE_REGEX_SUBJECT_MAX - 1] = 'b';
	v.body = as;
	for (guint round = 0; round < 2; round++) {
		gint64 start = g_get_monotonic_time();
		g_autoptr(GPtrArray) fired = fired_by_scan(set, &v, FALSE);
		double took = (g_get_monotonic_time() - start) / 1e6;

		g_test_message("(a+)+$ on 64 KiB ending in %c: %u fired, %.3f s", as[MR_RULE_REGEX_SUBJECT_MAX - 1],
			       fired->len, took);
		g_assert_cmpfloat(took, <, 10.0);
		g_assert_cmpuint(fired->len, ==, round);
		as[MR_RULE_REGEX_SUBJECT_MAX - 1] = 'a';
	}
}

/* Several threads scan with one set at once: one condition at a time at
 * first, then with the pass compiled meanwhile (scratch space per
 * scan). */
static gpointer
scan_thread(gpointer data)
{
	MrRuleSet *set = data;

	for (guint i = 0; i < 200; i++) {
		g_autofree char *subject = g_strdup_printf("re: ticket %u order", i);
		MrRuleValues v = { 0 };
		g_autoptr(GPtrArray) fired = NULL;

		v.subject = subject;
		v.body = "invoice";
		fired = fired_by_scan(set, &v, FALSE);
		g_assert_cmpuint(fired->len, ==, 2);
	}
	return NULL;
}

static void
test_threads(void)
{
	const char *const a[] = { "subject ~ \"ticket \\\\d+\"", NULL };
	const char *const b[] = { "body contains voice", NULL };
	GPtrArray *rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
	g_autoptr(MrRuleSet) set = NULL;
	GThread *threads[4];

	g_ptr_array_add(rules, rule_of("a", a, FALSE));
	g_ptr_array_add(rules, rule_of("b", b, FALSE));
	set = set_of(rules);
	for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
		threads[i] = g_thread_new("scan", scan_thread, set);
	for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
		g_thread_join(threads[i]);
	/* the pass was compiled on a thread of its own meanwhile */
	g_assert_cmpuint(mr_rule_set_prefiltered(set), ==, HAVE_PASS ? 2 : 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/model/rule-set/pass/takes", test_takes);
	g_test_add_func("/mailroom/model/rule-set/pass/differential", test_differential);
	g_test_add_func("/mailroom/model/rule-set/pass/characters", test_characters);
	g_test_add_func("/mailroom/model/rule-set/pass/threads", test_threads);
	g_test_add_func("/mailroom/model/rule-set/fold", test_fold);
	g_test_add_func("/mailroom/model/rule-set/hostile/big-body", test_hostile_big_body);
	g_test_add_func("/mailroom/model/rule-set/hostile/catastrophic", test_hostile_catastrophic);
	return g_test_run();
}
