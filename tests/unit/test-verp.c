/* test-verp.c - VERP envelope senders (mr-verp.h): the format, the strict
 * parse (any case, nothing more and nothing less), the tokens. */
#include <string.h>

#include "mailroom/mr-verp.h"

#define BOUNCE "bounces@acme.test"

static void
test_format(void)
{
	g_autofree char *a = mr_verp_format(BOUNCE, 5, "0123abcd");
	g_autofree char *b = mr_verp_format("Bounces@Acme.test", G_MAXINT64, "0123456789abcdef");
	g_autofree char *c = mr_verp_format("bounces+out@acme.test", 42, "deadbeef");

	g_assert_cmpstr(a, ==, "bounces+5-0123abcd@acme.test");
	g_assert_cmpstr(b, ==, "Bounces+9223372036854775807-0123456789abcdef@Acme.test");
	g_assert_cmpstr(c, ==, "bounces+out+42-deadbeef@acme.test");
	/* bounce addresses that are not LOCAL@DOMAIN */
	g_assert_null(mr_verp_format("bounces", 5, "0123abcd"));
	g_assert_null(mr_verp_format("@acme.test", 5, "0123abcd"));
	g_assert_null(mr_verp_format("bounces@", 5, "0123abcd"));
	g_assert_null(mr_verp_format("a@b@acme.test", 5, "0123abcd"));
	g_assert_null(mr_verp_format("boun ces@acme.test", 5, "0123abcd"));
}

/* Programmer errors: a bad id or token is refused with a critical. */
static void
test_format_bad_arguments(void)
{
	g_test_expect_message("mailroom-core", G_LOG_LEVEL_CRITICAL, "*id > 0*");
	g_assert_null(mr_verp_format(BOUNCE, 0, "0123abcd"));
	g_test_assert_expected_messages();
	g_test_expect_message("mailroom-core", G_LOG_LEVEL_CRITICAL, "*mr_verp_token_valid*");
	g_assert_null(mr_verp_format(BOUNCE, 5, "0123ABCD"));
	g_test_assert_expected_messages();
	g_test_expect_message("mailroom-core", G_LOG_LEVEL_CRITICAL, "*mr_verp_token_valid*");
	g_assert_null(mr_verp_format(BOUNCE, 5, NULL));
	g_test_assert_expected_messages();
}

typedef struct {
	const char *address;
	const char *bounce;
	gint64 id;           /* 0: refused */
	const char *token;
} ParseCase;

static const ParseCase parse_cases[] = {
	{ "bounces+5-0123abcd@acme.test", BOUNCE, 5, "0123abcd" },
	{ "BOUNCES+5-0123ABCD@ACME.TEST", BOUNCE, 5, "0123abcd" },
	{ "bounces+5-0123abcd@acme.test", "Bounces@ACME.test", 5, "0123abcd" },
	{ "bounces+9223372036854775807-0123456789abcdef@acme.test", BOUNCE, G_MAXINT64, "0123456789abcdef" },
	{ "bounces+007-0123abcd@acme.test", BOUNCE, 7, "0123abcd" },
	{ "bounces+out+42-deadbeef@acme.test", "bounces+out@acme.test", 42, "deadbeef" },
	/* refused: overflow, zero, signs, no digits */
	{ "bounces+9223372036854775808-0123abcd@acme.test", BOUNCE, 0, NULL },
	{ "bounces+99999999999999999999999-0123abcd@acme.test", BOUNCE, 0, NULL },
	{ "bounces+0-0123abcd@acme.test", BOUNCE, 0, NULL },
	{ "bounces+-5-0123abcd@acme.test", BOUNCE, 0, NULL },
	{ "bounces++5-0123abcd@acme.test", BOUNCE, 0, NULL },
	{ "bounces+-0123abcd@acme.test", BOUNCE, 0, NULL },
	{ "bounces+5x-0123abcd@acme.test", BOUNCE, 0, NULL },
	/* refused: tokens too short, too long, not hex, missing */
	{ "bounces+5-0123abc@acme.test", BOUNCE, 0, NULL },
	{ "bounces+5-0123456789abcdef0@acme.test", BOUNCE, 0, NULL },
	{ "bounces+5-0123abcg@acme.test", BOUNCE, 0, NULL },
	{ "bounces+5-@acme.test", BOUNCE, 0, NULL },
	{ "bounces+5@acme.test", BOUNCE, 0, NULL },
	{ "bounces+5-0123abcd-x@acme.test", BOUNCE, 0, NULL },
	/* refused: other local part, other domain, junk around */
	{ "bounces@acme.test", BOUNCE, 0, NULL },
	{ "xbounces+5-0123abcd@acme.test", BOUNCE, 0, NULL },
	{ "bouncesx+5-0123abcd@acme.test", BOUNCE, 0, NULL },
	{ "bounces+5-0123abcd@acme.test.evil", BOUNCE, 0, NULL },
	{ "bounces+5-0123abcd@sub.acme.test", BOUNCE, 0, NULL },
	{ "bounces+5-0123abcd@evil.test", BOUNCE, 0, NULL },
	{ "<bounces+5-0123abcd@acme.test>", BOUNCE, 0, NULL },
	{ " bounces+5-0123abcd@acme.test", BOUNCE, 0, NULL },
	{ "bounces+5-0123abcd@acme.test ", BOUNCE, 0, NULL },
	{ "bounces+5-0123abcd@acme.test@acme.test", BOUNCE, 0, NULL },
	{ "bounces+5-0123abcd", BOUNCE, 0, NULL },
	{ "", BOUNCE, 0, NULL },
	{ "bounces+5-0123abcd@acme.test", "bounces", 0, NULL },
};

static void
test_parse(gconstpointer data)
{
	const ParseCase *c = data;
	g_autofree char *token = NULL;
	gint64 id = -1;
	gboolean ok = mr_verp_parse(c->address, c->bounce, &id, &token);

	if (c->id == 0) {
		g_assert_false(ok);
		g_assert_cmpint(id, ==, -1);
		g_assert_null(token);
		return;
	}
	g_assert_true(ok);
	g_assert_cmpint(id, ==, c->id);
	g_assert_cmpstr(token, ==, c->token);
}

static void
test_round_trip(void)
{
	for (guint i = 0; i < 100; i++) {
		g_autofree char *token = mr_verp_token_new();
		gint64 id = g_test_rand_int_range(1, G_MAXINT32) * (gint64)(i + 1);
		g_autofree char *addr = mr_verp_format(BOUNCE, id, token);
		g_autofree char *back = NULL;
		gint64 got = 0;

		g_assert_true(mr_verp_parse(addr, BOUNCE, &got, &back));
		g_assert_cmpint(got, ==, id);
		g_assert_cmpstr(back, ==, token);
	}
	g_assert_true(mr_verp_parse("bounces+1-0123abcd@acme.test", BOUNCE, NULL, NULL));
}

static void
test_token(void)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	guint counts[16] = { 0 };

	for (guint i = 0; i < 1000; i++) {
		char *token = mr_verp_token_new();

		g_assert_cmpuint(strlen(token), ==, MR_VERP_TOKEN_LEN);
		g_assert_true(mr_verp_token_valid(token));
		for (const char *p = token; *p != '\0'; p++)
			counts[g_ascii_xdigit_value(*p)]++;
		g_assert_true(g_hash_table_add(seen, token));
	}
	/* 16,000 digits: each of the 16 about 1,000 times */
	for (guint i = 0; i < 16; i++)
		g_assert_cmpuint(counts[i], >, 700);
}

static void
test_token_valid_equal(void)
{
	g_assert_true(mr_verp_token_valid("0123abcd"));
	g_assert_true(mr_verp_token_valid("0123456789abcdef"));
	g_assert_false(mr_verp_token_valid("0123abc"));
	g_assert_false(mr_verp_token_valid("0123456789abcdef0"));
	g_assert_false(mr_verp_token_valid("0123ABCD"));
	g_assert_false(mr_verp_token_valid(""));
	g_assert_false(mr_verp_token_valid(NULL));

	g_assert_true(mr_verp_token_equal("0123abcd", "0123abcd"));
	g_assert_false(mr_verp_token_equal("0123abcd", "0123abce"));
	g_assert_false(mr_verp_token_equal("0123abcd", "0123abcd0"));
	g_assert_false(mr_verp_token_equal("0123abcd0", "0123abcd"));
	g_assert_false(mr_verp_token_equal("", "0123abcd"));
	g_assert_true(mr_verp_token_equal("", ""));
	g_assert_false(mr_verp_token_equal(NULL, "0123abcd"));
	g_assert_false(mr_verp_token_equal(NULL, NULL));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/core/verp/format", test_format);
	g_test_add_func("/mailroom/core/verp/format-bad-arguments", test_format_bad_arguments);
	for (guint i = 0; i < G_N_ELEMENTS(parse_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/core/verp/parse/%u", i);

		g_test_add_data_func(path, &parse_cases[i], test_parse);
	}
	g_test_add_func("/mailroom/core/verp/round-trip", test_round_trip);
	g_test_add_func("/mailroom/core/verp/token", test_token);
	g_test_add_func("/mailroom/core/verp/token-valid-equal", test_token_valid_equal);
	return g_test_run();
}
