/* mr-limits.c - decide, in one pass over the raw bytes, how much of a
 * message GMime may see.
 *
 * Parse stage.  GMime allocates an object per MIME part, per header field
 * and per address, a couple of hundred times the bytes they take, so a few
 * megabytes of empty parts or short header lines would take gigabytes.
 * A header field of megabytes is copied many times on its way to the
 * store.  This scan counts them first, with a rough model of MIME that
 * counts rather too much than too little, and says which bytes to leave
 * out.
 * Owns nothing but the MrParseBudget it fills. */
#define G_LOG_DOMAIN "mailroom-parse"

#include <string.h>

#include "mr-parse-private.h"

typedef enum {
	LIMITS_FIELD_NONE,
	LIMITS_FIELD_ADDRESS,   /* one that GMime parses into addresses at once */
	LIMITS_FIELD_TYPE,      /* Content-Type */
	LIMITS_FIELD_ENCODING,  /* Content-Transfer-Encoding */
} LimitsField;

/* The header block being read. */
typedef struct {
	gboolean is_part;       /* a MIME part's header, after a "--" line */
	gboolean has_type;      /* it has a Content-Type */
	gboolean message;       /* Content-Type: message/rfc822, global or news */
	gboolean encoded;       /* base64, quoted-printable or uuencode */
} LimitsBlock;

typedef struct {
	const guint8 *data;
	const MrParseOptions *max;
	MrParseBudget *out;
	gboolean in_header;     /* in a header block, else in a body */
	gboolean digest;        /* a multipart/digest was declared */
	LimitsBlock block;
	guint parts, header_lines;
	guint addresses[2];     /* mailboxes of originator, recipient fields */
	guint group;            /* of the address field being read */
	gboolean in_field;      /* a header field is being read */
	LimitsField field;      /* which */
	gsize field_start;      /* its first byte */
	gboolean type_pending;  /* Content-Type value not seen yet (folded) */
	gboolean in_quote, escape; /* in a quoted-string of an address field */
	gboolean cutting;       /* leaving out the rest of the field */
	gsize cut_start;
	gsize field_end;        /* end of the field's last line, before CR LF */
	GString *problems;      /* (nullable) */
	gboolean cut_addresses, cut_size; /* said so in @problems */
} LimitsScan;

/* The fields GMime parses into addresses at once; the originators (0) and
 * the recipients (1) each have max_addresses, so that a To: of thousands
 * never takes the From: away. */
static const struct {
	const char *name;
	guint group;
} limits_address_fields[] = {
	{ "from", 0 }, { "sender", 0 }, { "reply-to", 0 },
	{ "to", 1 },   { "cc", 1 },     { "bcc", 1 },
};

static gboolean
limits_is_blank(guint8 c)
{
	return c == ' ' || c == '\t';
}

static gboolean
limits_token_is(const guint8 *p, gsize len, const char *word)
{
	return strlen(word) == len && g_ascii_strncasecmp((const char *)p, word, len) == 0;
}

/* Reads a token (no blanks, no @stop bytes) at @p; returns its end. */
static const guint8 *
limits_token(const guint8 *p, const guint8 *end, const char *stop)
{
	while (p < end && !limits_is_blank(*p) && strchr(stop, *p) == NULL)
		p++;
	return p;
}

static const guint8 *
limits_skip_blanks(const guint8 *p, const guint8 *end)
{
	while (p < end && limits_is_blank(*p))
		p++;
	return p;
}

/* The value of Content-Type from @p: is the block an attached message? */
static void
limits_content_type(LimitsScan *s, const guint8 *p, const guint8 *end)
{
	const guint8 *type, *type_end, *sub, *sub_end;

	p = limits_skip_blanks(p, end);
	if (p == end)
		return; /* folded before the type: look at the next line */
	s->type_pending = FALSE;
	s->block.has_type = TRUE;
	type = p;
	type_end = limits_token(p, end, "/;(");
	p = limits_skip_blanks(type_end, end);
	if (p == end || *p != '/')
		return;
	sub = limits_skip_blanks(p + 1, end);
	sub_end = limits_token(sub, end, "/;(");
	if (limits_token_is(type, (gsize)(type_end - type), "message") &&
	    (limits_token_is(sub, (gsize)(sub_end - sub), "rfc822") ||
	     limits_token_is(sub, (gsize)(sub_end - sub), "global") ||
	     limits_token_is(sub, (gsize)(sub_end - sub), "news")))
		s->block.message = TRUE;
	if (limits_token_is(type, (gsize)(type_end - type), "multipart") &&
	    limits_token_is(sub, (gsize)(sub_end - sub), "digest"))
		s->digest = TRUE;
}

/* GMime does not parse an attached message that is encoded. */
static void
limits_encoding(LimitsScan *s, const guint8 *p, const guint8 *end)
{
	const guint8 *e;

	p = limits_skip_blanks(p, end);
	e = limits_token(p, end, ";(");
	if (limits_token_is(p, (gsize)(e - p), "base64") ||
	    limits_token_is(p, (gsize)(e - p), "quoted-printable") ||
	    limits_token_is(p, (gsize)(e - p), "uuencode") ||
	    limits_token_is(p, (gsize)(e - p), "x-uuencode") ||
	    limits_token_is(p, (gsize)(e - p), "x-uue"))
		s->block.encoded = TRUE;
}

/* Leaves out the rest of the address field being read, from @pos: one
 * mailbox too many begins there. */
static void
limits_cut_addresses(LimitsScan *s, gsize pos)
{
	s->cutting = TRUE;
	s->cut_start = pos;
	if (!s->cut_addresses)
		mr_parse_note(&s->problems, "more than %u addresses: the rest were not parsed",
			      s->max->max_addresses);
	s->cut_addresses = TRUE;
}

/* Counts the mailboxes of an address field, one more per comma outside a
 * quoted-string (a comma in a comment counts too: rather too many).  The
 * comma that would start one too many begins the bytes left out. */
static void
limits_addresses(LimitsScan *s, const guint8 *p, const guint8 *end)
{
	for (; p < end && !s->cutting; p++) {
		if (s->in_quote) {
			if (s->escape)
				s->escape = FALSE;
			else if (*p == '\\')
				s->escape = TRUE;
			else if (*p == '"')
				s->in_quote = FALSE;
		} else if (*p == '"') {
			s->in_quote = TRUE;
		} else if (*p == ',') {
			if (s->addresses[s->group] >= s->max->max_addresses)
				limits_cut_addresses(s, (gsize)(p - s->data));
			else
				s->addresses[s->group]++;
		}
	}
}

/* The field being read ends: record the bytes it leaves out. */
static void
limits_field_end(LimitsScan *s)
{
	if (s->cutting) {
		MrParseCut cut = { s->cut_start, s->field_end };

		if (s->out->cuts == NULL)
			s->out->cuts = g_array_new(FALSE, FALSE, sizeof(MrParseCut));
		if (cut.end > cut.start)
			g_array_append_val(s->out->cuts, cut);
		s->cutting = FALSE;
	}
	s->in_field = FALSE;
	s->field = LIMITS_FIELD_NONE;
	s->type_pending = FALSE;
}

/* Leaves out what the field being read has past max_header_size bytes,
 * once its line [@p, @end) is read.  The cut never begins at the start of
 * a line: that would leave an empty line, the end of the header block. */
static void
limits_field_size(LimitsScan *s, const guint8 *p, const guint8 *end)
{
	gsize line = (gsize)(p - s->data), eol = (gsize)(end - s->data);
	gsize cut = s->field_start + s->max->max_header_size;

	if (s->cutting || eol - s->field_start <= s->max->max_header_size)
		return;
	if (cut < line)
		cut = s->field_end; /* the end of the field's line before */
	s->cutting = TRUE;
	s->cut_start = cut;
	if (!s->cut_size)
		mr_parse_note(&s->problems, "a header field longer than %u bytes was cut", s->max->max_header_size);
	s->cut_size = TRUE;
}

/* Reads the name and the start of the value of the field at @p. */
static void
limits_field_read(LimitsScan *s, const guint8 *p, const guint8 *end)
{
	const guint8 *name_end = limits_token(p, end, ":");
	const guint8 *colon = limits_skip_blanks(name_end, end);
	gsize name_len = (gsize)(name_end - p);

	if (colon == end || *colon != ':')
		return; /* no field GMime makes anything of */
	for (guint i = 0; i < G_N_ELEMENTS(limits_address_fields); i++) {
		if (!limits_token_is(p, name_len, limits_address_fields[i].name))
			continue;
		s->field = LIMITS_FIELD_ADDRESS;
		s->group = limits_address_fields[i].group;
		s->in_quote = s->escape = FALSE;
		if (s->addresses[s->group] >= s->max->max_addresses) {
			limits_cut_addresses(s, (gsize)(colon + 1 - s->data));
		} else {
			s->addresses[s->group]++;
			limits_addresses(s, colon + 1, end);
		}
		return;
	}
	if (limits_token_is(p, name_len, "content-type")) {
		s->field = LIMITS_FIELD_TYPE;
		s->type_pending = TRUE;
		limits_content_type(s, colon + 1, end);
	} else if (limits_token_is(p, name_len, "content-transfer-encoding")) {
		s->field = LIMITS_FIELD_ENCODING;
		limits_encoding(s, colon + 1, end);
	}
}

/* A header field begins on the line [@p, @end). */
static void
limits_field_start(LimitsScan *s, const guint8 *p, const guint8 *end)
{
	s->in_field = TRUE;
	s->field_start = (gsize)(p - s->data);
	limits_field_read(s, p, end);
	limits_field_size(s, p, end);
	s->field_end = (gsize)(end - s->data);
}

/* A folded line [@p, @end) of the field being read, if any (a blank
 * line right after a boundary belongs to none). */
static void
limits_field_more(LimitsScan *s, const guint8 *p, const guint8 *end)
{
	if (!s->in_field)
		return;
	if (s->field == LIMITS_FIELD_ADDRESS && !s->cutting)
		limits_addresses(s, p, end);
	else if (s->field == LIMITS_FIELD_TYPE && s->type_pending)
		limits_content_type(s, p, end);
	limits_field_size(s, p, end);
	s->field_end = (gsize)(end - s->data);
}

/* Stops the parse before the line at @pos. */
static void
limits_stop(LimitsScan *s, gsize pos, gsize len, guint limit, const char *what)
{
	s->out->len = pos;
	mr_parse_note(&s->problems, "parsed only the first %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
		    " bytes: more than %u %s", pos, len, limit, what);
}

void
mr_parse_limits_scan(const guint8 *data, gsize len, const MrParseOptions *max, MrParseBudget *out)
{
	LimitsScan s = { .data = data, .max = max, .out = out, .in_header = TRUE };
	gsize pos = 0;

	g_return_if_fail(max != NULL && out != NULL);

	memset(out, 0, sizeof(*out));
	out->len = len;
	while (pos < len) {
		const guint8 *nl = memchr(data + pos, '\n', len - pos);
		gsize next = nl != NULL ? (gsize)(nl - data) + 1 : len;
		gsize eol = nl != NULL ? next - 1 : len;
		const guint8 *line = data + pos;

		if (eol > pos && data[eol - 1] == '\r')
			eol--;
		if (s.in_header && eol == pos) {
			/* The end of a header block.  An attached message's
			 * header block follows that of its part. */
			limits_field_end(&s);
			s.in_header = (s.block.message || (s.digest && s.block.is_part && !s.block.has_type)) &&
				      !s.block.encoded;
			memset(&s.block, 0, sizeof(s.block));
		} else if (s.in_header && limits_is_blank(*line)) {
			limits_field_more(&s, line, data + eol);
		} else if (eol - pos >= 2 && line[0] == '-' && line[1] == '-') {
			/* Maybe a boundary: a part and its header block. */
			limits_field_end(&s);
			if (++s.parts > max->max_mime_parts) {
				limits_stop(&s, pos, len, max->max_mime_parts, "MIME parts");
				break;
			}
			s.in_header = TRUE;
			memset(&s.block, 0, sizeof(s.block));
			s.block.is_part = TRUE;
		} else if (s.in_header) {
			limits_field_end(&s);
			if (++s.header_lines > max->max_header_lines) {
				limits_stop(&s, pos, len, max->max_header_lines, "header lines");
				break;
			}
			limits_field_start(&s, line, data + eol);
		}
		pos = next;
	}
	limits_field_end(&s);
	if (s.problems != NULL)
		out->problem = g_string_free(g_steal_pointer(&s.problems), FALSE);
}

void
mr_parse_budget_clear(MrParseBudget *budget)
{
	if (budget == NULL)
		return;
	g_clear_pointer(&budget->cuts, g_array_unref);
	g_clear_pointer(&budget->problem, g_free);
}

GByteArray *
mr_parse_budget_apply(const guint8 *data, const MrParseBudget *budget)
{
	GByteArray *out;
	gsize from = 0;

	g_return_val_if_fail(budget != NULL && budget->cuts != NULL, NULL);

	out = g_byte_array_sized_new((guint)MIN(budget->len, G_MAXUINT));
	for (guint i = 0; i < budget->cuts->len; i++) {
		const MrParseCut *cut = &g_array_index(budget->cuts, MrParseCut, i);

		g_byte_array_append(out, data + from, (guint)(cut->start - from));
		from = cut->end;
	}
	g_byte_array_append(out, data + from, (guint)(budget->len - from));
	return out;
}

void
mr_parse_limited(const guint8 *data, gsize len, const MrParseOptions *max, GString **problems,
		 void (*func)(GMimeStream *stream, gpointer user_data), gpointer user_data)
{
	g_autoptr(GByteArray) copy = NULL;
	MrParseBudget budget = { 0 };
	GByteArray *view;
	GMimeStream *stream;

	g_return_if_fail(len <= G_MAXUINT && max != NULL && func != NULL);

	mr_parse_limits_scan(data, len, max, &budget);
	if (budget.problem != NULL && problems != NULL)
		mr_parse_note(problems, "%s", budget.problem);
	len = budget.len;
	if (budget.cuts != NULL) {
		copy = mr_parse_budget_apply(data, &budget);
		data = copy->data;
		len = copy->len;
	}
	mr_parse_budget_clear(&budget);
	/* A GMimeStreamMem reads its GByteArray's public data and len and
	 * nothing else; pointed at @data, the parse and every part's content
	 * substream read the caller's bytes in place.  The stream does not own
	 * the array, which goes without its data once @func is done. */
	view = g_byte_array_new();
	view->data = (guint8 *)data;
	view->len = (guint)len;
	stream = g_mime_stream_mem_new_with_byte_array(view);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
	func(stream, user_data);
	g_object_unref(stream);
	g_byte_array_free(view, FALSE);
}
