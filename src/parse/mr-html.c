/* mr-html.c - reduce an HTML mail body to plain text.
 *
 * Parse stage.  Only what a reader of the text needs: tags go, script and
 * style go with their content, blocks become line breaks, white space
 * collapses as a browser collapses it, entities are decoded.  One pass, no
 * tree: mail HTML is too often broken for a tree to help. */
#define G_LOG_DOMAIN "mailroom-parse"

#include <string.h>

#include "mr-parse-private.h"

/* What a tag does to the text around it. */
typedef enum {
	HTML_SPACE,     /* separates words (table cells) */
	HTML_LINE,      /* ends the line */
	HTML_PARAGRAPH, /* ends the paragraph (one blank line) */
	HTML_HIDE,      /* its content is no text, up to the end tag or the end */
	HTML_TITLE,     /* its content is no text, if there is an end tag */
	HTML_PRE,       /* keeps white space until the end tag */
} HtmlTagKind;

static const struct {
	const char *name;
	HtmlTagKind kind;
} html_tags[] = {
	{ "br", HTML_LINE },         { "div", HTML_LINE },
	{ "li", HTML_LINE },         { "tr", HTML_LINE },
	{ "dt", HTML_LINE },         { "dd", HTML_LINE },
	{ "hr", HTML_LINE },         { "p", HTML_PARAGRAPH },
	{ "h1", HTML_PARAGRAPH },    { "h2", HTML_PARAGRAPH },
	{ "h3", HTML_PARAGRAPH },    { "h4", HTML_PARAGRAPH },
	{ "h5", HTML_PARAGRAPH },    { "h6", HTML_PARAGRAPH },
	{ "ul", HTML_PARAGRAPH },    { "ol", HTML_PARAGRAPH },
	{ "table", HTML_PARAGRAPH }, { "blockquote", HTML_PARAGRAPH },
	{ "section", HTML_PARAGRAPH }, { "article", HTML_PARAGRAPH },
	{ "header", HTML_PARAGRAPH }, { "footer", HTML_PARAGRAPH },
	{ "td", HTML_SPACE },        { "th", HTML_SPACE },
	{ "script", HTML_HIDE },     { "style", HTML_HIDE },
	{ "title", HTML_TITLE },     { "head", HTML_LINE },
	{ "pre", HTML_PRE },
};

/* The named entities seen in mail; the rest come as numeric references. */
static const struct {
	const char *name;
	gunichar c;
} html_entities[] = {
	{ "amp", '&' },      { "lt", '<' },        { "gt", '>' },
	{ "quot", '"' },     { "apos", '\'' },     { "nbsp", ' ' },
	{ "copy", 0xa9 },    { "reg", 0xae },      { "trade", 0x2122 },
	{ "hellip", 0x2026 }, { "mdash", 0x2014 }, { "ndash", 0x2013 },
	{ "lsquo", 0x2018 }, { "rsquo", 0x2019 },  { "ldquo", 0x201c },
	{ "rdquo", 0x201d }, { "bdquo", 0x201e },  { "sbquo", 0x201a },
	{ "laquo", 0xab },   { "raquo", 0xbb },    { "bull", 0x2022 },
	{ "middot", 0xb7 },  { "euro", 0x20ac },   { "pound", 0xa3 },
	{ "yen", 0xa5 },     { "cent", 0xa2 },     { "sect", 0xa7 },
	{ "deg", 0xb0 },     { "times", 0xd7 },    { "zwnj", 0x200c },
	{ "auml", 0xe4 },    { "ouml", 0xf6 },     { "uuml", 0xfc },
	{ "Auml", 0xc4 },    { "Ouml", 0xd6 },     { "Uuml", 0xdc },
	{ "szlig", 0xdf },   { "eacute", 0xe9 },   { "egrave", 0xe8 },
	{ "agrave", 0xe0 },  { "aacute", 0xe1 },   { "ccedil", 0xe7 },
	{ "ntilde", 0xf1 },  { "oslash", 0xf8 },   { "aring", 0xe5 },
	{ "Eacute", 0xc9 },
};

/* The last search for the end tag of one element: its first "</name"
 * at or after @from is @found (NULL: none up to the end). */
typedef struct {
	const char *from;
	const char *found;
} HtmlEndTag;

typedef struct {
	GString *out;
	guint newlines; /* line breaks owed before the next text */
	gboolean space; /* a space is owed before the next text */
	guint pre;      /* depth of <pre> */
	HtmlEndTag ends[G_N_ELEMENTS(html_tags)]; /* by html_tags index */
} HtmlText;

static void
html_break(HtmlText *t, guint n)
{
	t->space = FALSE;
	if (t->out->len > 0 && n > t->newlines)
		t->newlines = n;
}

static void
html_emit(HtmlText *t, const char *s, gsize len)
{
	if (t->newlines > 0) {
		for (guint i = 0; i < t->newlines; i++)
			g_string_append_c(t->out, '\n');
		t->newlines = 0;
	} else if (t->space && t->out->len > 0) {
		g_string_append_c(t->out, ' ');
	}
	t->space = FALSE;
	g_string_append_len(t->out, s, (gssize)len);
}

static void
html_emit_char(HtmlText *t, gunichar c)
{
	char buf[6];

	html_emit(t, buf, (gsize)g_unichar_to_utf8(c, buf));
}

/* Decodes the reference at @p ('&') and returns the byte after it, or
 * NULL when it is none (then the '&' is text). */
static const char *
html_entity(HtmlText *t, const char *p)
{
	const char *name = p + 1;
	const char *end = name;
	gunichar c = 0;

	if (*name == '#') {
		gboolean hex = name[1] == 'x' || name[1] == 'X';
		guint64 v = 0;

		end = name + (hex ? 2 : 1);
		for (; hex ? g_ascii_isxdigit(*end) : g_ascii_isdigit(*end); end++)
			if (v <= 0x10ffff)
				v = v * (hex ? 16 : 10) + (guint64)(hex ? g_ascii_xdigit_value(*end)
									 : g_ascii_digit_value(*end));
		if (end == name + (hex ? 2 : 1))
			return NULL;
		c = v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ? 0xfffd : (gunichar)v;
	} else {
		guint i;

		while (g_ascii_isalnum(*end))
			end++;
		for (i = 0; i < G_N_ELEMENTS(html_entities); i++)
			if (strlen(html_entities[i].name) == (gsize)(end - name) &&
			    strncmp(name, html_entities[i].name, (gsize)(end - name)) == 0)
				break;
		if (i == G_N_ELEMENTS(html_entities))
			return NULL;
		c = html_entities[i].c;
	}
	html_emit_char(t, c);
	return *end == ';' ? end + 1 : end;
}

/* Returns the end of the tag that starts at @p ('<'), past its '>',
 * respecting quoted attribute values. */
static const char *
html_tag_end(const char *p)
{
	char quote = 0;

	for (p++; *p != '\0'; p++) {
		if (quote != 0) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (*p == '>') {
			return p + 1;
		}
	}
	return p;
}

/* Returns the position of the first "</name" (any case) of html_tags[@i]
 * at or after @p, or NULL.  The answer of the last search is kept: it
 * holds for any @p between where that search began and what it found, so
 * a thousand <title> without </title> cost one search, not a thousand
 * searches to the end. */
static const char *
html_find_end_tag(HtmlText *t, guint i, const char *p)
{
	HtmlEndTag *e = &t->ends[i];
	const char *name = html_tags[i].name;
	gsize n = strlen(name);
	const char *q;

	if (e->from != NULL && p >= e->from && (e->found == NULL || p <= e->found))
		return e->found;
	e->from = p;
	e->found = NULL;
	for (q = p; (q = strchr(q, '<')) != NULL; q++)
		if (q[1] == '/' && g_ascii_strncasecmp(q + 2, name, n) == 0 && !g_ascii_isalnum(q[2 + n])) {
			e->found = q;
			break;
		}
	return e->found;
}

/* Handles the tag at @p ('<') and returns where the text goes on. */
static const char *
html_tag(HtmlText *t, const char *p)
{
	const char *name = p + 1;
	gboolean closing = FALSE;
	const char *end;
	gsize len;

	if (strncmp(p, "<!--", 4) == 0) {
		end = strstr(p + 4, "-->");
		return end != NULL ? end + 3 : p + strlen(p);
	}
	if (*name == '/') {
		closing = TRUE;
		name++;
	}
	if (!g_ascii_isalpha(*name) && *name != '!' && *name != '?')
		return NULL; /* "a < b" is text */
	end = html_tag_end(p);
	for (len = 0; g_ascii_isalnum(name[len]); len++)
		;
	for (guint i = 0; i < G_N_ELEMENTS(html_tags); i++) {
		if (strlen(html_tags[i].name) != len || g_ascii_strncasecmp(name, html_tags[i].name, len) != 0)
			continue;
		switch (html_tags[i].kind) {
		case HTML_SPACE:
			t->space = TRUE;
			break;
		case HTML_LINE:
			html_break(t, 1);
			break;
		case HTML_PARAGRAPH:
			html_break(t, 2);
			break;
		case HTML_HIDE:
		case HTML_TITLE:
			if (!closing) {
				const char *close = html_find_end_tag(t, i, end);

				if (close != NULL)
					end = html_tag_end(close);
				else if (html_tags[i].kind == HTML_HIDE)
					end += strlen(end);
			}
			break;
		case HTML_PRE:
			html_break(t, 2);
			if (closing && t->pre > 0)
				t->pre--;
			else if (!closing)
				t->pre++;
			break;
		}
		break;
	}
	return end;
}

char *
mr_parse_html_to_text(const char *html)
{
	g_autofree char *valid = NULL;
	HtmlText t = { 0 };
	const char *p;

	g_return_val_if_fail(html != NULL, NULL);

	if (!g_utf8_validate(html, -1, NULL))
		html = valid = g_utf8_make_valid(html, -1);
	t.out = g_string_sized_new(strlen(html) / 2 + 16);
	for (p = html; *p != '\0';) {
		const char *next = NULL;
		const char *run;

		if (*p == '<')
			next = html_tag(&t, p);
		else if (*p == '&')
			next = html_entity(&t, p);
		if (next != NULL) {
			p = next;
			continue;
		}
		if (g_ascii_isspace(*p) && t.pre == 0) {
			t.space = TRUE;
			p++;
			continue;
		}
		if (*p == '\r' && t.pre > 0) {
			p++;
			continue;
		}
		if (*p == '\n' && t.pre > 0) {
			html_emit(&t, "", 0);
			t.newlines = 1;
			p++;
			continue;
		}
		/* A run of plain text, up to the next markup or space. */
		for (run = p + 1; *run != '\0' && *run != '<' && *run != '&' &&
				  (t.pre > 0 ? *run != '\n' && *run != '\r' : !g_ascii_isspace(*run));
		     run++)
			;
		html_emit(&t, p, (gsize)(run - p));
		p = run;
	}
	return g_string_free(t.out, FALSE);
}
