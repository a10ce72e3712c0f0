/* test-text.c - mr_text_printable(): control characters from outside are
 * shown as text, never sent to a terminal; other text is unchanged.  And
 * mr_text_shown(), the same cut short for an error message. */
#include <string.h>

#include "mailroom/mr-text.h"

static const struct {
	const char *in;
	gssize len;
	gboolean keep_lines;
	const char *want;
} text_cases[] = {
	{ "plain text, ünïcode, \\ and €", -1, FALSE, "plain text, ünïcode, \\ and €" },
	{ "NO [AUTH] \033]0;owned\007 \033[2J done", -1, FALSE,
	  "NO [AUTH] \\x1b]0;owned\\x07 \\x1b[2J done" },
	{ "a\r\nb\tc\x7f", -1, FALSE, "a\\x0d\\x0ab\\x09c\\x7f" },
	{ "a\r\nb\tc", -1, TRUE, "a\\x0d\nb\tc" },
	/* C1 as UTF-8 (U+009B CSI, U+009D OSC) */
	{ "x\xc2\x9b" "31mred\xc2\x9d", -1, FALSE, "x\\u009b31mred\\u009d" },
	/* a raw 8-bit CSI is no UTF-8: replaced */
	{ "x\x9b" "31m", -1, FALSE, "x\xef\xbf\xbd" "31m" },
	/* a NUL inside a counted text */
	{ "a\0b", 3, FALSE, "a\xef\xbf\xbd" "b" },
	{ "abcdef", 3, FALSE, "abc" },
};

static void
test_printable(gconstpointer data)
{
	guint i = GPOINTER_TO_UINT(data);
	g_autofree char *got = mr_text_printable(text_cases[i].in, text_cases[i].len,
						 text_cases[i].keep_lines);

	g_assert_cmpstr(got, ==, text_cases[i].want);
}

static void
test_shown(void)
{
	static const struct {
		const char *in;
		gsize max;
		const char *want;
	} cases[] = {
		{ "short", 60, "short" },
		{ NULL, 60, "" },
		{ "abcdef", 3, "abc..." },
		{ "a\r\nb", 60, "a\\x0d\\x0ab" },
		/* cut at a character boundary: \xc3\xa4 is one */
		{ "x\xc3\xa4y", 2, "x..." },
		{ "x\xc3\xa4y", 3, "x\xc3\xa4..." },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *got = mr_text_shown(cases[i].in, cases[i].max);

		g_assert_cmpstr(got, ==, cases[i].want);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(text_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/core/text/printable/%u", i);

		g_test_add_data_func(path, GUINT_TO_POINTER(i), test_printable);
	}
	g_test_add_func("/mailroom/core/text/shown", test_shown);
	return g_test_run();
}
