/* mr-address.c - the one normal form of an email address.
 *
 * Core.  No state.  Lower-casing is done character by character with
 * g_unichar_tolower(), which does not consult the locale (g_utf8_strdown()
 * does: under tr_TR it maps "I" to a dotless "ı"). */
#define G_LOG_DOMAIN "mailroom-core"

#include <string.h>

#include "mailroom/mr-address.h"

char *
mr_address_normalise(const char *address)
{
	g_autofree char *valid = NULL;
	g_autofree char *nfc = NULL;
	const char *start, *end;
	GString *out;

	if (address == NULL)
		return g_strdup("");
	start = address;
	end = address + strlen(address);
	while (start < end && g_ascii_isspace(*start))
		start++;
	while (end > start && g_ascii_isspace(end[-1]))
		end--;
	valid = g_utf8_make_valid(start, end - start);
	nfc = g_utf8_normalize(valid, -1, G_NORMALIZE_NFC);
	if (nfc == NULL) /* cannot happen for valid UTF-8; stay safe */
		nfc = g_strdup(valid);
	out = g_string_sized_new(strlen(nfc));
	for (const char *p = nfc; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c < 0x80)
			g_string_append_c(out, g_ascii_tolower((char)c));
		else
			g_string_append_unichar(out, g_unichar_tolower(c));
	}
	return g_string_free(out, FALSE);
}
