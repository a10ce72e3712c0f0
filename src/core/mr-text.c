/* mr-text.c - control characters shown as text (see mr-text.h).
 *
 * Core.  What a terminal would run (ESC and CSI sequences that move the
 * cursor, retitle the window, or, with OSC 52, write the clipboard) is
 * shown instead, in the escapes a C programmer reads. */
#include <stdarg.h>
#include <string.h>

#include "mailroom/mr-text.h"

char *
mr_text_printable(const char *s, gssize len, gboolean keep_lines)
{
	g_autofree char *valid = NULL;
	GString *out;

	g_return_val_if_fail(s != NULL, NULL);
	valid = g_utf8_make_valid(s, len);
	out = g_string_sized_new(strlen(valid) + 8);
	for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (keep_lines && (c == '\n' || c == '\t'))
			g_string_append_c(out, (char)c);
		else if (c < 0x20 || c == 0x7f)
			g_string_append_printf(out, "\\x%02x", c);
		else if (c >= 0x80 && c <= 0x9f)
			g_string_append_printf(out, "\\u%04x", c);
		else
			g_string_append_len(out, p, g_utf8_next_char(p) - p);
	}
	return g_string_free(out, FALSE);
}

char *
mr_text_shown(const char *s, gsize max)
{
	gsize len = s != NULL ? strlen(s) : 0;
	gsize cut = MIN(len, max);
	g_autofree char *text = NULL;

	while (cut > 0 && cut < len && ((guchar)s[cut] & 0xc0) == 0x80)
		cut--;
	text = mr_text_printable(s != NULL ? s : "", (gssize)cut, FALSE);
	return g_strconcat(text, cut < len ? "..." : "", NULL);
}

void
mr_text_fprintf(FILE *out, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *text = NULL;
	g_autofree char *shown = NULL;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	shown = mr_text_printable(text, -1, TRUE);
	fputs(shown, out);
}
