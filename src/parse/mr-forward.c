/* mr-forward.c - find the original sender of a mail forwarded inline.
 *
 * Parse stage.  Mail clients forward by pasting the original under a
 * separator line and a small header block ("From:", "Subject:", or the
 * German "Von:", "Betreff:"); this file finds that block in a text body. */
#define G_LOG_DOMAIN "mailroom-parse"

#include <string.h>

#include "mr-parse-private.h"

/* How far below its separator a header block may start and end. */
#define FORWARD_MAX_HEADER_LINES 16

/* Separator lines, compared without the dashes around them and without
 * case.  @dashed: the line must start with "--" (a bare "Original Message"
 * in running text is no separator).  @ambiguous: mailers also put this line
 * above a quoted reply, so alone it does not prove a forward. */
typedef struct {
	const char *text;
	gboolean dashed;
	gboolean ambiguous;
} ForwardMarker;

static const ForwardMarker forward_markers[] = {
	{ "forwarded message", TRUE, FALSE },          /* Gmail, Thunderbird, Yahoo */
	{ "original message", TRUE, TRUE },            /* Outlook */
	{ "weitergeleitete nachricht", TRUE, FALSE },  /* Thunderbird DE, Gmail DE */
	{ "original-nachricht", TRUE, TRUE },          /* Thunderbird DE, GMX, web.de */
	{ "ursprüngliche nachricht", TRUE, TRUE },     /* Outlook DE */
	{ "begin forwarded message:", FALSE, FALSE },  /* Apple Mail */
	{ "anfang der weitergeleiteten nachricht:", FALSE, FALSE }, /* Apple Mail DE */
};

/* Outlook on the web and the new Outlook draw a rule of underscores (at
 * least this many) instead of a separator text, for replies as well. */
#define FORWARD_RULE_MIN 8
static const ForwardMarker forward_rule = { "_", FALSE, TRUE };

/* A line of the body without its line end. */
typedef struct {
	const char *p;
	gsize len;
} ForwardLine;

/* Strips quoting ("> > "), emphasis stars and surrounding white space. */
static ForwardLine
forward_line_clean(ForwardLine l)
{
	while (l.len > 0 && (*l.p == '>' || *l.p == '*' || g_ascii_isspace(*l.p))) {
		l.p++;
		l.len--;
	}
	while (l.len > 0 && g_ascii_isspace(l.p[l.len - 1]))
		l.len--;
	return l;
}

/* Sets *@line to the line at *@pos and moves *@pos past it; FALSE at the
 * end of @body. */
static gboolean
forward_next_line(const char **pos, ForwardLine *line)
{
	const char *p = *pos;
	const char *nl;

	if (*p == '\0')
		return FALSE;
	nl = strchr(p, '\n');
	line->p = p;
	line->len = nl != NULL ? (gsize)(nl - p) : strlen(p);
	*pos = nl != NULL ? nl + 1 : p + line->len;
	return TRUE;
}

/* Returns the separator @l is, or NULL. */
static const ForwardMarker *
forward_marker(ForwardLine l)
{
	gboolean dashed = l.len >= 2 && l.p[0] == '-' && l.p[1] == '-';

	if (l.len >= FORWARD_RULE_MIN && strspn(l.p, "_") >= l.len)
		return &forward_rule;
	while (l.len > 0 && (*l.p == '-' || *l.p == ' ')) {
		l.p++;
		l.len--;
	}
	while (l.len > 0 && (l.p[l.len - 1] == '-' || l.p[l.len - 1] == ' '))
		l.len--;
	if (l.len == 0)
		return NULL;
	for (guint i = 0; i < G_N_ELEMENTS(forward_markers); i++)
		if (forward_markers[i].dashed == dashed && strlen(forward_markers[i].text) == l.len &&
		    g_ascii_strncasecmp(l.p, forward_markers[i].text, l.len) == 0)
			return &forward_markers[i];
	return NULL;
}

/* If @l is "Key: value" with one of @keys (NULL-terminated), returns the
 * value (stars and white space stripped) and sets *@value_len. */
static const char *
forward_header_value(ForwardLine l, const char *const *keys, gsize *value_len)
{
	for (guint i = 0; keys[i] != NULL; i++) {
		gsize n = strlen(keys[i]);
		ForwardLine v;

		if (l.len <= n || g_ascii_strncasecmp(l.p, keys[i], n) != 0 || l.p[n] != ':')
			continue;
		v.p = l.p + n + 1;
		v.len = l.len - n - 1;
		v = forward_line_clean(v);
		*value_len = v.len;
		return v.p;
	}
	return NULL;
}

/* Turns the forms mailers print into one InternetAddress can read:
 * Outlook's "Jane Doe [mailto:jane@x]" and an unquoted name with a comma,
 * "Doe, Jane <jane@x>", both become "\"...\" <jane@x>". */
static char *
forward_address_text(const char *value, gsize len)
{
	g_autofree char *v = g_strndup(value, len);
	const char *mailto = strstr(v, "[mailto:");
	const char *angle = strchr(v, '<');
	const char *name_end = mailto != NULL ? mailto : angle;
	g_autofree char *name = NULL;
	GString *out;

	if (name_end == NULL || name_end == v || *v == '"')
		return g_steal_pointer(&v);
	name = g_strstrip(g_strndup(v, (gsize)(name_end - v)));
	out = g_string_new("\"");
	for (const char *c = name; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *c);
	}
	g_string_append(out, "\" ");
	if (mailto != NULL) {
		const char *addr = mailto + strlen("[mailto:");
		const char *close = strchr(addr, ']');

		g_string_append_c(out, '<');
		g_string_append_len(out, addr, close != NULL ? close - addr : (gssize)strlen(addr));
		g_string_append_c(out, '>');
	} else {
		g_string_append(out, angle);
	}
	return g_string_free(out, FALSE);
}

/* Returns: (transfer full) (nullable): the first mailbox with an '@' in
 * the From: value @value. */
static MrAddress *
forward_parse_from(const char *value, gsize len)
{
	g_autofree char *text = forward_address_text(value, len);
	g_autoptr(InternetAddressList) list = internet_address_list_parse(NULL, text);
	g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)mr_address_free);

	if (list == NULL)
		return NULL;
	mr_parse_address_list_flatten(list, all);
	for (guint i = 0; i < all->len; i++) {
		MrAddress *a = g_ptr_array_index(all, i);

		if (strchr(a->email, '@') != NULL)
			return g_ptr_array_steal_index(all, i);
	}
	return NULL;
}

/* Reads the header block that starts below a separator at *@pos. */
static gboolean
forward_read_block(const char *pos, MrAddress **from_out, char **subject_out)
{
	static const char *const from_keys[] = { "From", "Von", NULL };
	static const char *const subject_keys[] = { "Subject", "Betreff", NULL };
	g_autoptr(MrAddress) from = NULL;
	g_autofree char *subject = NULL;
	gboolean in_block = FALSE;
	ForwardLine line;

	for (guint n = 0; n < FORWARD_MAX_HEADER_LINES && forward_next_line(&pos, &line); n++) {
		ForwardLine l = forward_line_clean(line);
		const char *v;
		gsize vlen = 0;

		if (l.len == 0) {
			if (in_block)
				break;
			continue;
		}
		in_block = TRUE;
		if (from == NULL && (v = forward_header_value(l, from_keys, &vlen)) != NULL)
			from = forward_parse_from(v, vlen);
		else if (subject == NULL && (v = forward_header_value(l, subject_keys, &vlen)) != NULL)
			subject = g_strndup(v, vlen);
	}
	if (from == NULL)
		return FALSE;
	*from_out = g_steal_pointer(&from);
	if (subject_out != NULL)
		*subject_out = g_steal_pointer(&subject);
	return TRUE;
}

gboolean
mr_parse_forward_scan(const char *body, MrAddress **from_out, char **subject_out,
		      gboolean *ambiguous_out)
{
	const char *pos = body;
	ForwardLine line;

	g_return_val_if_fail(body != NULL, FALSE);
	g_return_val_if_fail(from_out != NULL, FALSE);

	while (forward_next_line(&pos, &line)) {
		const ForwardMarker *m = forward_marker(forward_line_clean(line));

		if (m == NULL || !forward_read_block(pos, from_out, subject_out))
			continue;
		if (ambiguous_out != NULL)
			*ambiguous_out = m->ambiguous;
		return TRUE;
	}
	return FALSE;
}

gboolean
mr_parse_find_inline_forward(const char *body, MrAddress **from_out, char **subject_out)
{
	return mr_parse_forward_scan(body, from_out, subject_out, NULL);
}
