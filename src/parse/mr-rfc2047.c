/* mr-rfc2047.c - repair runs of RFC 2047 encoded-words before GMime decodes.
 *
 * Parse stage.  GMime 3.2 decodes adjacent base64 words of one charset as
 * one stream, which ends at a word's '=' padding, losing the rest (split
 * ISO-2022-JP subjects are the usual victims).  Such a run is rewritten
 * into one encoded-word here; all decoding stays with GMime. */
#define G_LOG_DOMAIN "mailroom-parse"

#include <string.h>

#include "mr-parse-private.h"

/* RFC 2047 section 2, with the RFC 2231 language suffix:
 *   encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="
 * Only B words take part: GMime handles everything else correctly. */
typedef struct {
	const char *start;   /* the "=?" */
	const char *end;     /* one past the "?=" */
	const char *charset; /* not NUL-terminated */
	gsize charset_len;   /* without the language */
	const char *text;    /* the encoded-text */
	gsize text_len;
} Rfc2047Word;

static gboolean
rfc2047_word_parse(const char *p, Rfc2047Word *w)
{
	const char *q;

	if (p[0] != '=' || p[1] != '?')
		return FALSE;
	w->start = p;
	w->charset = p + 2;
	for (q = w->charset; *q != '\0' && *q != '?' && !g_ascii_isspace(*q); q++)
		;
	if (*q != '?' || q == w->charset)
		return FALSE;
	w->charset_len = (gsize)(q - w->charset);
	for (gsize i = 0; i < w->charset_len; i++)
		if (w->charset[i] == '*')
			w->charset_len = i;
	if (w->charset_len == 0 || (q[1] != 'B' && q[1] != 'b') || q[2] != '?')
		return FALSE;
	w->text = q + 3;
	for (q = w->text; *q != '\0' && *q != '?' && !g_ascii_isspace(*q); q++)
		;
	if (q[0] != '?' || q[1] != '=')
		return FALSE;
	w->text_len = (gsize)(q - w->text);
	w->end = q + 2;
	return TRUE;
}

/* Parses the word that follows @w after white space only (RFC 2047 section
 * 6.2: that white space is not displayed), if it is in @w's charset. */
static gboolean
rfc2047_word_next(const Rfc2047Word *w, Rfc2047Word *next)
{
	const char *p = w->end;

	while (g_ascii_isspace(*p))
		p++;
	return rfc2047_word_parse(p, next) && next->charset_len == w->charset_len &&
	       g_ascii_strncasecmp(next->charset, w->charset, w->charset_len) == 0;
}

/* Appends the run from @first to @last as one encoded-word to @out. */
static void
rfc2047_append_merged(GString *out, const Rfc2047Word *first, const Rfc2047Word *last)
{
	g_autoptr(GByteArray) raw = g_byte_array_new();
	g_autofree char *b64 = NULL;
	Rfc2047Word w = *first;
	Rfc2047Word next;

	for (;;) {
		/* A fresh state per word: each word is a base64 text of its
		 * own (RFC 2047 section 5), padding included. */
		gint state = 0;
		guint save = 0;
		guint at = raw->len;

		g_byte_array_set_size(raw, at + (guint)(w.text_len / 4 * 3 + 3));
		g_byte_array_set_size(raw, at + (guint)g_base64_decode_step(w.text, w.text_len,
									    raw->data + at, &state, &save));
		if (w.start == last->start || !rfc2047_word_next(&w, &next))
			break;
		w = next;
	}
	b64 = g_base64_encode(raw->data, raw->len);
	g_string_append(out, "=?");
	g_string_append_len(out, first->charset, (gssize)first->charset_len);
	g_string_append(out, "?B?");
	g_string_append(out, b64);
	g_string_append(out, "?=");
}

char *
mr_parse_rfc2047_merge(const char *value)
{
	GString *out = NULL;
	const char *copied = value;
	const char *p;

	g_return_val_if_fail(value != NULL, NULL);

	for (p = strstr(value, "=?"); p != NULL; p = strstr(p, "=?")) {
		Rfc2047Word first, last, next;
		gboolean broken = FALSE;

		if (!rfc2047_word_parse(p, &first)) {
			p += 2;
			continue;
		}
		last = first;
		while (rfc2047_word_next(&last, &next)) {
			if (memchr(last.text, '=', last.text_len) != NULL)
				broken = TRUE;
			last = next;
		}
		if (broken) {
			if (out == NULL)
				out = g_string_sized_new(strlen(value));
			g_string_append_len(out, copied, first.start - copied);
			rfc2047_append_merged(out, &first, &last);
			copied = last.end;
		}
		p = last.end;
	}
	if (out == NULL)
		return NULL;
	g_string_append(out, copied);
	return g_string_free(out, FALSE);
}
