/* mr-template.c - the placeholders of outgoing mail's texts, checked and
 * rendered (see mr-template.h).
 *
 * Act layer, pure.  One scan finds each "{{" and the "}}" that closes it
 * on the same line; rendering writes through a sink that makes text safe
 * character by character and stops at the caller's bound, so the work
 * never exceeds the input plus the bound. */
#include <string.h>

#include "mailroom/mr-template.h"
#include "mailroom/mr-text.h"

G_DEFINE_QUARK(mr-template-error-quark, mr_template_error)

static const char *const placeholder_names[] = {
	"contact.name", "contact.email", "owner.name", "owner.email", "record.id",
	"record.subject", "record.status", "message.subject", NULL,
};

/* Where each placeholder's value is, in the order of placeholder_names. */
static const gsize placeholder_offsets[] = {
	G_STRUCT_OFFSET(MrTemplateValues, contact_name),
	G_STRUCT_OFFSET(MrTemplateValues, contact_email),
	G_STRUCT_OFFSET(MrTemplateValues, owner_name),
	G_STRUCT_OFFSET(MrTemplateValues, owner_email),
	G_STRUCT_OFFSET(MrTemplateValues, record_id),
	G_STRUCT_OFFSET(MrTemplateValues, record_subject),
	G_STRUCT_OFFSET(MrTemplateValues, record_status),
	G_STRUCT_OFFSET(MrTemplateValues, message_subject),
};

G_STATIC_ASSERT(G_N_ELEMENTS(placeholder_names) == G_N_ELEMENTS(placeholder_offsets) + 1);

const char *const *
mr_template_placeholders(void)
{
	return placeholder_names;
}

/* Returns the first "{{" of @p, or NULL.  strchr() rather than strstr():
 * the sanitizers' strstr() reads the whole rest of the text each call,
 * which made a scan of many placeholders quadratic under ASan. */
static const char *
find_open(const char *p)
{
	while ((p = strchr(p, '{')) != NULL && p[1] != '{')
		p++;
	return p;
}

/* One "{{" of a text, as template_scan() found it. */
typedef struct {
	const char *open;  /* the "{{" */
	const char *end;   /* the byte after "}}", or after "{{" when unclosed */
	const char *name;  /* the name, spaces and tabs around it trimmed */
	gsize name_len;
	gboolean closed;   /* "}}" closes it on the same line */
	int index;         /* into placeholder_names, -1 for none */
} Placeholder;

/* Reads the placeholder that starts at @open ("{{").  It ends at the
 * first "}}"; a line end, another "{{" or the end of the text before that
 * leaves it unclosed.  Looks at each byte once. */
static void
placeholder_read(const char *open, Placeholder *ph)
{
	const char *p = open + 2;
	const char *name_end;

	*ph = (Placeholder){ .open = open, .end = open + 2, .index = -1 };
	while (*p != '\0' && *p != '\n' && *p != '\r' && !(p[0] == '{' && p[1] == '{') &&
	       !(p[0] == '}' && p[1] == '}'))
		p++;
	if (p[0] != '}')
		return;
	ph->closed = TRUE;
	ph->end = p + 2;
	ph->name = open + 2;
	name_end = p;
	while (ph->name < name_end && (*ph->name == ' ' || *ph->name == '\t'))
		ph->name++;
	while (name_end > ph->name && (name_end[-1] == ' ' || name_end[-1] == '\t'))
		name_end--;
	ph->name_len = (gsize)(name_end - ph->name);
	for (int i = 0; placeholder_names[i] != NULL; i++) {
		if (strlen(placeholder_names[i]) == ph->name_len &&
		    memcmp(placeholder_names[i], ph->name, ph->name_len) == 0) {
			ph->index = i;
			break;
		}
	}
}

gboolean
mr_template_check(const char *text, GError **error)
{
	const char *p = text;
	guint line = 1;

	g_return_val_if_fail(text != NULL, FALSE);
	for (;;) {
		const char *open = find_open(p);
		Placeholder ph;

		if (open == NULL)
			return TRUE;
		for (const char *q = p; q < open; q++)
			line += *q == '\n';
		placeholder_read(open, &ph);
		if (!ph.closed) {
			g_set_error(error, MR_TEMPLATE_ERROR, MR_TEMPLATE_ERROR_UNCLOSED,
				    "unclosed {{ at line %u", line);
			return FALSE;
		}
		if (ph.name_len == 0) {
			g_autofree char *written = g_strndup(open + 2, (gsize)(ph.end - 2 - (open + 2)));
			g_autofree char *shown = mr_text_shown(written, 60);

			g_set_error(error, MR_TEMPLATE_ERROR, MR_TEMPLATE_ERROR_EMPTY,
				    "empty placeholder {{%s}} at line %u", shown, line);
			return FALSE;
		}
		if (ph.index < 0) {
			g_autofree char *name = g_strndup(ph.name, ph.name_len);
			g_autofree char *shown = mr_text_shown(name, 60);

			g_set_error(error, MR_TEMPLATE_ERROR, MR_TEMPLATE_ERROR_UNKNOWN,
				    "unknown placeholder {{%s}} at line %u", shown, line);
			return FALSE;
		}
		p = ph.end;
	}
}

/* Where rendered text goes: made safe a character at a time, and bounded. */
typedef struct {
	GString *out;
	gsize max_len;
	gboolean for_header;
	gboolean space; /* header: white space since the last character written */
	gboolean full;  /* a character did not fit: nothing more is written */
} Sink;

static gboolean
is_control(gunichar c)
{
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f);
}

/* Writes one character of @len bytes, after the space a header still owes
 * (none at the start: the result is trimmed), unless it does not fit. */
static void
sink_put(Sink *s, const char *p, gsize len)
{
	gboolean space = s->space && s->out->len > 0;

	if (s->out->len + len + space > s->max_len) {
		s->full = TRUE;
		return;
	}
	if (space)
		g_string_append_c(s->out, ' ');
	s->space = FALSE;
	g_string_append_len(s->out, p, (gssize)len);
}

/* Writes @len bytes of @text, made safe.  Line ends are normalised within
 * one piece (the text between placeholders, or one value). */
static void
sink_add(Sink *s, const char *text, gsize len)
{
	const char *p = text;
	const char *end = text + len;
	gboolean after_cr = FALSE;

	while (p < end && !s->full) {
		gunichar c = (guchar)*p;
		gsize n = 1;

		if (c >= 0x80) {
			c = g_utf8_get_char_validated(p, end - p);
			if (c == (gunichar)-1 || c == (gunichar)-2)
				c = 0xfffd;
			else
				n = (gsize)(g_utf8_next_char(p) - p);
		}
		if (s->for_header) {
			if (c == ' ' || is_control(c))
				s->space = TRUE;
			else if (c == 0xfffd && n == 1)
				sink_put(s, "\xef\xbf\xbd", 3);
			else
				sink_put(s, p, n);
		} else if (c == '\r') {
			sink_put(s, "\n", 1);
		} else if (c == '\n') {
			if (!after_cr)
				sink_put(s, "\n", 1);
		} else if (c == 0xfffd && n == 1) {
			sink_put(s, "\xef\xbf\xbd", 3);
		} else if (c == '\t' || !is_control(c)) {
			sink_put(s, p, n);
		}
		after_cr = c == '\r';
		p += n;
	}
}

static Sink
sink_init(const char *text, gboolean for_header, gsize max_len)
{
	return (Sink){
		.out = g_string_sized_new(MIN(strlen(text), max_len) + 1),
		.max_len = max_len,
		.for_header = for_header,
	};
}

static char *
sink_finish(Sink *s, gboolean *truncated)
{
	if (truncated != NULL)
		*truncated = s->full;
	return g_string_free(s->out, FALSE);
}

char *
mr_template_clean(const char *text, gboolean for_header, gsize max_len, gboolean *truncated)
{
	Sink s;

	if (text == NULL)
		text = "";
	s = sink_init(text, for_header, max_len);
	sink_add(&s, text, strlen(text));
	return sink_finish(&s, truncated);
}

char *
mr_template_render(const char *text, const MrTemplateValues *v, gboolean for_header,
		   gsize max_len, gboolean *truncated)
{
	static const MrTemplateValues none = { 0 };
	const char *p = text;
	Sink s;

	g_return_val_if_fail(text != NULL, NULL);
	if (v == NULL)
		v = &none;
	s = sink_init(text, for_header, max_len);
	while (!s.full) {
		const char *open = find_open(p);
		Placeholder ph;
		const char *value;

		if (open == NULL) {
			sink_add(&s, p, strlen(p));
			break;
		}
		sink_add(&s, p, (gsize)(open - p));
		placeholder_read(open, &ph);
		if (ph.index < 0) {
			/* copied as written; an unclosed "{{" alone, so that a
			 * "{{" after it is read again */
			sink_add(&s, open, (gsize)(ph.end - open));
		} else {
			value = G_STRUCT_MEMBER(const char *, v, placeholder_offsets[ph.index]);
			if (value != NULL)
				sink_add(&s, value, strlen(value));
		}
		p = ph.end;
	}
	return sink_finish(&s, truncated);
}
