/* test-address.c - mr_address_normalise(): one form for every place, the
 * same under every locale (run again under LC_ALL=tr_TR.UTF-8). */
#include <locale.h>
#include <string.h>

#include "mailroom/mr-address.h"

typedef struct {
	const char *in;
	const char *want;
} NormaliseCase;

static const NormaliseCase normalise_cases[] = {
	{ "INFO@Acme.Test", "info@acme.test" },
	{ "  Bob@Customer.TEST \t", "bob@customer.test" },
	{ "JÖRG@Müller.example", "jörg@müller.example" },
	/* decomposed o + combining diaeresis: NFC first */
	{ "Jo\xcc\x88rg@x.test", "j\xc3\xb6rg@x.test" },
	/* dotted capital I: Unicode's simple mapping, the same everywhere */
	{ "\xc4\xb0nfo@x.test", "info@x.test" },
	{ "ΣΟΦΙΑ@x.test", "σοφια@x.test" },
	/* bytes that are not UTF-8 become U+FFFD, never raw */
	{ "bad\xff@x.test", "bad\xef\xbf\xbd@x.test" },
	{ "", "" },
};

static void
test_normalise(gconstpointer data)
{
	const NormaliseCase *c = data;
	g_autofree char *got = mr_address_normalise(c->in);

	g_assert_cmpstr(got, ==, c->want);
	g_assert_true(g_utf8_validate(got, -1, NULL));
}

/* The locale must not matter: under tr_TR a locale-aware lower case maps
 * "I" to a dotless "ı".  Skipped when the machine lacks the locale
 * (make deps generates it). */
static void
test_turkish_locale(void)
{
	const char *old = setlocale(LC_ALL, NULL);
	g_autofree char *saved = g_strdup(old);
	g_autofree char *got = NULL;

	if (setlocale(LC_ALL, "tr_TR.UTF-8") == NULL) {
		g_test_skip("locale tr_TR.UTF-8 is not installed");
		return;
	}
	got = mr_address_normalise("INFO@ACME.TEST");
	setlocale(LC_ALL, saved);
	g_assert_cmpstr(got, ==, "info@acme.test");
}

int
main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(normalise_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/core/address/normalise/%u", i);

		g_test_add_data_func(path, &normalise_cases[i], test_normalise);
	}
	g_test_add_func("/mailroom/core/address/turkish-locale", test_turkish_locale);
	return g_test_run();
}
