/* mr-dsn.c - delivery reports: RFC 3464 and the plain-text bounces.
 *
 * Parse stage.  The bytes pass the parse stage's limits scan (tighter
 * limits: a report has three parts), GMime builds the tree, one walk finds
 * the delivery-status part, the returned message or its headers, and the
 * text.  The delivery-status fields are read line by line from at most
 * DSN_MAX_STATUS_BYTES decoded bytes; a plain-text bounce from at most
 * DSN_MAX_TEXT_BYTES of its text.  Owns the MrDsn it returns. */
#define G_LOG_DOMAIN "mailroom-parse"

#include <string.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-dsn.h"
#include "mr-parse-private.h"

/* The limits scan: a report has a few parts and the returned message's
 * header; more is not read (the mail is a bounce, not a message to keep). */
#define DSN_MAX_MIME_PARTS 256
#define DSN_MAX_HEADER_LINES 10000
/* The limits scan's, resolved. */
static const MrParseOptions dsn_limits = {
	.max_mime_parts = DSN_MAX_MIME_PARTS,
	.max_header_lines = DSN_MAX_HEADER_LINES,
	.max_addresses = MR_PARSE_DEFAULT_MAX_ADDRESSES,
	.max_references = MR_PARSE_DEFAULT_MAX_REFERENCES,
	.max_header_size = MR_PARSE_DEFAULT_MAX_HEADER_SIZE,
};
/* MIME nodes walked, and how deep. */
#define DSN_MAX_PARTS 64
#define DSN_MAX_DEPTH 8
/* Decoded bytes read of the delivery-status part, of a text part and of
 * the returned headers. */
#define DSN_MAX_STATUS_BYTES (256 * 1024)
#define DSN_MAX_TEXT_BYTES (64 * 1024)
/* Bytes kept of one unfolded field, and of what is kept of it. */
#define DSN_FIELD_MAX 4096
#define DSN_ADDRESS_MAX 320
#define DSN_MTA_MAX 255
#define DSN_ID_MAX 998

/* --- text ---------------------------------------------------------------- */

/* Returns: (transfer full): @len bytes at @s as one line of valid UTF-8:
 * runs of white space (line ends included) one space, other control
 * characters \xNN, bytes that are not UTF-8 U+FFFD, no white space around,
 * at most @max bytes (cut between characters). */
static char *
dsn_line(const char *s, gsize len, gsize max)
{
	GString *out = g_string_sized_new(MIN(len, max) + 1);
	const char *p = s, *end = s + len;
	gboolean space = FALSE;

	while (p < end) {
		guchar c = (guchar)*p;
		char buf[8];
		gsize n;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = out->len > 0;
			p++;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			g_snprintf(buf, sizeof(buf), "\\x%02X", c);
			n = 4;
			p++;
		} else if (c < 0x80) {
			buf[0] = (char)c;
			n = 1;
			p++;
		} else {
			gunichar u = g_utf8_get_char_validated(p, end - p);

			if (u == (gunichar)-1 || u == (gunichar)-2) {
				u = 0xfffd;
				p++;
			} else {
				p = g_utf8_next_char(p);
			}
			n = (gsize)g_unichar_to_utf8(u, buf);
		}
		if (out->len + (space ? 1 : 0) + n > max)
			break;
		if (space)
			g_string_append_c(out, ' ');
		space = FALSE;
		g_string_append_len(out, buf, (gssize)n);
	}
	return g_string_free(out, FALSE);
}

/* Returns: (transfer full) (nullable): dsn_line() of @s, or NULL when
 * that is empty. */
static char *
dsn_line_or_null(const char *s, gsize len, gsize max)
{
	char *line = dsn_line(s, len, max);

	if (*line == '\0')
		g_clear_pointer(&line, g_free);
	return line;
}

/* Returns the value after the type of a typed field ("rfc822; a@b",
 * "smtp; 550 ...", "dns; mx.example"), setting @type_len to the type's
 * length; or @value itself, @type_len 0, when it has no type: no ';'
 * after an atom. */
static const char *
dsn_typed(const char *value, gsize *type_len)
{
	const char *p = value;

	while (g_ascii_isalnum(*p) || *p == '-' || *p == '_' || *p == '.')
		p++;
	*type_len = 0;
	if (p == value)
		return value;
	if (*p == ' ' || *p == '\t') {
		const char *q = p;

		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != ';')
			return value;
		*type_len = (gsize)(p - value);
		p = q;
	} else if (*p != ';') {
		return value;
	} else {
		*type_len = (gsize)(p - value);
	}
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Returns: (transfer full) (nullable): @s (@len bytes) as an addr-spec in
 * mailroom's normal form: angle brackets stripped; NULL unless it is
 * LOCAL@DOMAIN without white space, control characters or the specials
 * that end an address, and short enough. */
static char *
dsn_addr_spec(const char *s, gsize len)
{
	g_autofree char *copy = NULL;
	const char *at;

	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>')
		s++, len -= 2;
	if (len == 0 || len > DSN_ADDRESS_MAX)
		return NULL;
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)s[i];

		if (c <= ' ' || c == 0x7f || strchr("<>,;:\"()[]\\", c) != NULL)
			return NULL;
	}
	at = memchr(s, '@', len);
	if (at == NULL || at == s || at == s + len - 1 || memchr(at + 1, '@', len - (gsize)(at + 1 - s)) != NULL)
		return NULL;
	copy = g_strndup(s, len);
	return mr_address_normalise(copy);
}

/* A recipient field's address: rfc822 and utf-8 (RFC 6533) types, or
 * none; another type (x400) names no mailbox. */
static char *
dsn_recipient_address(const char *value)
{
	gsize type_len;
	const char *addr = dsn_typed(value, &type_len);

	if (type_len > 0 && !(type_len == 6 && g_ascii_strncasecmp(value, "rfc822", 6) == 0) &&
	    !(type_len == 5 && g_ascii_strncasecmp(value, "utf-8", 5) == 0))
		return NULL;
	return dsn_addr_spec(addr, strlen(addr));
}

static const char *const dsn_actions[] = { "failed", "delayed", "delivered", "relayed", "expanded" };

static char *
dsn_action(const char *value)
{
	gsize n = 0;

	while (g_ascii_isalpha(value[n]))
		n++;
	for (guint i = 0; i < G_N_ELEMENTS(dsn_actions); i++)
		if (strlen(dsn_actions[i]) == n && g_ascii_strncasecmp(value, dsn_actions[i], n) == 0)
			return g_strdup(dsn_actions[i]);
	return NULL;
}

/* Returns the length of the enhanced status code (RFC 3463: class "."
 * subject "." detail) at @p, or 0 when there is none. */
static gsize
dsn_status_at(const char *p)
{
	const char *q = p;
	guint digits;

	if (*q != '2' && *q != '4' && *q != '5')
		return 0;
	q++;
	for (guint part = 0; part < 2; part++) {
		if (*q++ != '.')
			return 0;
		for (digits = 0; g_ascii_isdigit(*q); q++)
			digits++;
		if (digits < 1 || digits > 3)
			return 0;
	}
	if (*q == '.')
		return 0;
	return (gsize)(q - p);
}

static char *
dsn_status(const char *value)
{
	gsize n = dsn_status_at(value);

	if (n == 0 || (value[n] != '\0' && value[n] != ' ' && value[n] != '\t' && value[n] != '('))
		return NULL;
	return g_strndup(value, n);
}

/* Returns TRUE when a reply code at @p of @line stands where a reply
 * begins: at the start of the line, or after ':', '(', '#', '[', ';', '='
 * or '>' and white space ("said: 550", "(#5.1.1)"), not after a word
 * ("size 500 bytes"). */
static gboolean
dsn_reply_starts(const char *line, const char *p)
{
	while (p > line && (p[-1] == ' ' || p[-1] == '\t'))
		p--;
	return p == line || strchr(":(#[;=>", p[-1]) != NULL;
}

/* Finds the SMTP reply in @line: a basic code (2yz, 4yz, 5yz followed by
 * ' ', '-' or the end) where a reply begins, or followed by an enhanced
 * status code; or an enhanced status code where a reply begins.  Returns
 * where it begins, or NULL; sets @status_out (nullable; transfer full) to
 * its enhanced code, if any. */
static const char *
dsn_smtp_reply(const char *line, char **status_out)
{
	for (const char *p = line; *p != '\0'; p++) {
		gsize n;

		if (p > line && (g_ascii_isalnum(p[-1]) || p[-1] == '.' || p[-1] == '-'))
			continue;
		if ((n = dsn_status_at(p)) > 0 && !g_ascii_isdigit(p[n]) && dsn_reply_starts(line, p)) {
			if (status_out != NULL)
				*status_out = g_strndup(p, n);
			return p;
		}
		if ((*p == '2' || *p == '4' || *p == '5') && g_ascii_isdigit(p[1]) && g_ascii_isdigit(p[2]) &&
		    (p[3] == ' ' || p[3] == '-' || p[3] == '\0')) {
			n = p[3] != '\0' ? dsn_status_at(p + 4) : 0;
			if (n > 0 && g_ascii_isdigit(p[4 + n]))
				n = 0;
			if (n == 0 && !dsn_reply_starts(line, p))
				continue;
			if (status_out != NULL && n > 0)
				*status_out = g_strndup(p + 4, n);
			return p;
		}
	}
	return NULL;
}

/* Returns TRUE when @value (a diagnostic) begins its SMTP reply with a
 * permanent failure: 5yz or 5.y.z. */
static gboolean
dsn_reply_is_permanent(const char *value)
{
	const char *reply = value != NULL ? dsn_smtp_reply(value, NULL) : NULL;

	return reply != NULL && *reply == '5';
}

/* --- the MrDsn ----------------------------------------------------------- */

static void
dsn_recipient_free(MrDsnRecipient *r)
{
	if (r == NULL)
		return;
	g_free(r->final_recipient);
	g_free(r->original_recipient);
	g_free(r->action);
	g_free(r->status);
	g_free(r->diagnostic);
	g_free(r);
}

void
mr_dsn_free(MrDsn *d)
{
	if (d == NULL)
		return;
	g_clear_pointer(&d->recipients, g_ptr_array_unref);
	g_free(d->original_message_id);
	g_free(d->reporting_mta);
	g_free(d);
}

static gboolean
dsn_recipient_is_hard(const MrDsnRecipient *r)
{
	if (g_strcmp0(r->action, "failed") != 0)
		return FALSE;
	if (r->status != NULL)
		return r->status[0] == '5';
	return dsn_reply_is_permanent(r->diagnostic);
}

gboolean
mr_dsn_is_hard(const MrDsn *d, const MrDsnRecipient *r)
{
	g_return_val_if_fail(d != NULL || r != NULL, FALSE);

	if (r != NULL)
		return dsn_recipient_is_hard(r);
	for (guint i = 0; i < d->recipients->len; i++)
		if (dsn_recipient_is_hard(g_ptr_array_index(d->recipients, i)))
			return TRUE;
	return FALSE;
}

/* Returns: (borrowed) (nullable): a new recipient at the end of @d, or
 * NULL when @d holds MR_DSN_MAX_RECIPIENTS. */
static MrDsnRecipient *
dsn_recipient_add(MrDsn *d)
{
	MrDsnRecipient *r;

	if (d->recipients->len >= MR_DSN_MAX_RECIPIENTS)
		return NULL;
	r = g_new0(MrDsnRecipient, 1);
	g_ptr_array_add(d->recipients, r);
	return r;
}

/* Returns: (borrowed) (nullable): the recipient of @d whose final
 * recipient is @addr. */
static MrDsnRecipient *
dsn_recipient_find(MrDsn *d, const char *addr)
{
	for (guint i = 0; i < d->recipients->len; i++) {
		MrDsnRecipient *r = g_ptr_array_index(d->recipients, i);

		if (g_strcmp0(r->final_recipient, addr) == 0)
			return r;
	}
	return NULL;
}

/* Returns: (transfer full) (nullable): a Message-ID value (with or
 * without angle brackets) as an id without them. */
static char *
dsn_message_id(const char *value, gsize len)
{
	g_autofree char *line = dsn_line(value, len, DSN_ID_MAX);
	g_autofree char *id = g_mime_utils_decode_message_id(line);

	if (id == NULL || *id == '\0' || !g_utf8_validate(id, -1, NULL))
		return NULL;
	for (const char *p = id; *p != '\0'; p++)
		if ((guchar)*p <= ' ' || *p == '\\')
			return NULL;
	return g_steal_pointer(&id);
}

/* --- lines and fields ---------------------------------------------------- */

/* Calls @line for each line of @len bytes at @data (without its CR LF or
 * LF) until it returns FALSE. */
static void
dsn_lines(const char *data, gsize len, gboolean (*line)(gpointer user, const char *s, gsize n),
	  gpointer user)
{
	gsize pos = 0;

	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		gsize next = nl != NULL ? (gsize)(nl - data) + 1 : len;
		gsize eol = nl != NULL ? next - 1 : len;

		if (eol > pos && data[eol - 1] == '\r')
			eol--;
		if (!line(user, data + pos, eol - pos))
			return;
		pos = next;
	}
}

/* The recipient fields, a bit each. */
enum {
	DSN_FIELD_FINAL = 1 << 0,
	DSN_FIELD_ORIGINAL = 1 << 1,
	DSN_FIELD_ACTION = 1 << 2,
	DSN_FIELD_STATUS = 1 << 3,
	DSN_FIELD_DIAGNOSTIC = 1 << 4,
};

/* Reading the fields of a delivery-status part (RFC 3464 section 2.1: the
 * per-message fields, then a group of per-recipient fields for each
 * recipient, blank lines between).  A group is also begun by a recipient
 * field the group has already: some reports leave the blank lines out. */
typedef struct {
	MrDsn *dsn;
	GString *field;             /* the field being read, unfolded */
	MrDsnRecipient *current;    /* (nullable): the group being read */
	guint seen;                 /* its fields, DSN_FIELD_* */
	gboolean full;              /* MR_DSN_MAX_RECIPIENTS read: stop */
	char *original_message_id;  /* (nullable): Original-Message-ID */
} DsnStatus;

static const struct {
	const char *name;
	guint bit;
} dsn_recipient_fields[] = {
	{ "Final-Recipient", DSN_FIELD_FINAL },   { "Original-Recipient", DSN_FIELD_ORIGINAL },
	{ "Action", DSN_FIELD_ACTION },           { "Status", DSN_FIELD_STATUS },
	{ "Diagnostic-Code", DSN_FIELD_DIAGNOSTIC },
};

static gboolean
dsn_name_is(const char *name, gsize len, const char *want)
{
	return strlen(want) == len && g_ascii_strncasecmp(name, want, len) == 0;
}

static void
dsn_status_recipient_field(DsnStatus *st, guint bit, const char *value, gsize len)
{
	MrDsnRecipient *r;

	if (st->current == NULL || (st->seen & bit) != 0) {
		if ((st->current = dsn_recipient_add(st->dsn)) == NULL) {
			st->full = TRUE;
			return;
		}
		st->seen = 0;
	}
	st->seen |= bit;
	r = st->current;
	switch (bit) {
	case DSN_FIELD_FINAL:
		r->final_recipient = dsn_recipient_address(value);
		break;
	case DSN_FIELD_ORIGINAL:
		r->original_recipient = dsn_recipient_address(value);
		break;
	case DSN_FIELD_ACTION:
		r->action = dsn_action(value);
		break;
	case DSN_FIELD_STATUS:
		r->status = dsn_status(value);
		break;
	case DSN_FIELD_DIAGNOSTIC: {
		gsize type_len;
		const char *text = dsn_typed(value, &type_len);

		r->diagnostic = dsn_line_or_null(text, len - (gsize)(text - value), MR_DSN_DIAGNOSTIC_MAX);
		break;
	}
	default:
		g_assert_not_reached();
	}
}

/* The field in @st->field is complete. */
static void
dsn_status_field(DsnStatus *st)
{
	char *s = st->field->str;
	char *colon = memchr(s, ':', st->field->len);
	gsize name_len;
	char *value;
	gsize len;

	if (st->field->len == 0 || colon == NULL)
		return;
	for (name_len = (gsize)(colon - s); name_len > 0 && (s[name_len - 1] == ' ' || s[name_len - 1] == '\t');)
		name_len--;
	value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	len = st->field->len - (gsize)(value - s);
	for (guint i = 0; i < G_N_ELEMENTS(dsn_recipient_fields); i++)
		if (dsn_name_is(s, name_len, dsn_recipient_fields[i].name)) {
			dsn_status_recipient_field(st, dsn_recipient_fields[i].bit, value, len);
			return;
		}
	if (dsn_name_is(s, name_len, "Reporting-MTA") && st->dsn->reporting_mta == NULL) {
		gsize type_len;
		const char *mta = dsn_typed(value, &type_len);

		st->dsn->reporting_mta = dsn_line_or_null(mta, len - (gsize)(mta - value), DSN_MTA_MAX);
	} else if ((dsn_name_is(s, name_len, "Original-Message-ID") ||
		    dsn_name_is(s, name_len, "X-Original-Message-ID")) &&
		   st->original_message_id == NULL) {
		st->original_message_id = dsn_message_id(value, len);
	}
}

static gboolean
dsn_status_line(gpointer user, const char *s, gsize n)
{
	DsnStatus *st = user;

	if (n > 0 && (*s == ' ' || *s == '\t')) {
		/* folded: the field goes on, up to DSN_FIELD_MAX bytes */
		if (st->field->len > 0 && st->field->len < DSN_FIELD_MAX) {
			g_string_append_c(st->field, ' ');
			g_string_append_len(st->field, s, (gssize)MIN(n, DSN_FIELD_MAX - st->field->len));
		}
		return TRUE;
	}
	dsn_status_field(st);
	g_string_truncate(st->field, 0);
	if (st->full)
		return FALSE;
	if (n == 0) {
		st->current = NULL;
		st->seen = 0;
	} else {
		g_string_append_len(st->field, s, (gssize)MIN(n, DSN_FIELD_MAX));
	}
	return TRUE;
}

/* Reads the fields of a delivery-status part's @len bytes at @data into
 * @d.  Returns: (transfer full) (nullable): its Original-Message-ID. */
static char *
dsn_status_read(MrDsn *d, const char *data, gsize len)
{
	DsnStatus st = { .dsn = d, .field = g_string_new(NULL) };

	dsn_lines(data, len, dsn_status_line, &st);
	if (!st.full)
		dsn_status_field(&st);
	g_string_free(st.field, TRUE);
	return st.original_message_id;
}

/* Looking for the Message-ID: of quoted headers. */
typedef struct {
	gboolean header_block; /* a header block: stop at its end, fields fold */
	GString *field;        /* (nullable): the Message-ID field being read */
	char *id;
} DsnIdScan;

static gboolean
dsn_id_line(gpointer user, const char *s, gsize n)
{
	DsnIdScan *sc = user;
	const char *p = s, *end = s + n;

	if (sc->field != NULL) {
		if (sc->header_block && n > 0 && (*s == ' ' || *s == '\t') && sc->field->len < DSN_FIELD_MAX) {
			g_string_append_len(sc->field, s, (gssize)MIN(n, DSN_FIELD_MAX - sc->field->len));
			return TRUE;
		}
		sc->id = dsn_message_id(sc->field->str, sc->field->len);
		g_string_free(g_steal_pointer(&sc->field), TRUE);
		if (sc->id != NULL)
			return FALSE;
	}
	if (n == 0)
		return !sc->header_block;
	if (!sc->header_block)
		while (p < end && (*p == ' ' || *p == '\t' || *p == '>'))
			p++;
	if ((gsize)(end - p) >= 11 && g_ascii_strncasecmp(p, "Message-ID:", 11) == 0) {
		p += 11;
		sc->field = g_string_new_len(p, (gssize)MIN((gsize)(end - p), DSN_FIELD_MAX));
	}
	return TRUE;
}

/* Returns: (transfer full) (nullable): the id of the first Message-ID:
 * line of the @len bytes at @data: a header block (@header_block, up to
 * its end), or the text of a bounce (lines may be indented or quoted). */
static char *
dsn_find_message_id(const char *data, gsize len, gboolean header_block)
{
	DsnIdScan sc = { .header_block = header_block };

	dsn_lines(data, len, dsn_id_line, &sc);
	if (sc.field != NULL) {
		sc.id = dsn_message_id(sc.field->str, sc.field->len);
		g_string_free(sc.field, TRUE);
	}
	return sc.id;
}

/* --- the MIME tree ------------------------------------------------------- */

typedef struct {
	guint visited;
	GMimePart *status;       /* first message/delivery-status */
	GMimeObject *returned;   /* first returned message or its headers */
	GMimePart *text;         /* first inline text/plain */
	GMimePart *html;         /* first inline text/html */
} DsnWalk;

static gboolean
dsn_is(GMimeContentType *ct, const char *type, const char *subtype)
{
	return ct != NULL && g_mime_content_type_is_type(ct, type, subtype);
}

/* Never into an attached message: a report inside the returned message is
 * not this one's. */
static void
dsn_walk(DsnWalk *w, GMimeObject *obj, guint depth)
{
	GMimeContentType *ct;

	if (depth > DSN_MAX_DEPTH || w->visited >= DSN_MAX_PARTS)
		return;
	w->visited++;
	ct = g_mime_object_get_content_type(obj);
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);

		for (int i = 0; i < n && w->visited < DSN_MAX_PARTS; i++)
			dsn_walk(w, g_mime_multipart_get_part(mp, i), depth + 1);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		if (w->returned == NULL)
			w->returned = obj;
	} else if (GMIME_IS_PART(obj)) {
		GMimePart *part = GMIME_PART(obj);
		gboolean inline_part = !g_mime_part_is_attachment(part);

		if (dsn_is(ct, "message", "delivery-status") || dsn_is(ct, "message", "global-delivery-status")) {
			if (w->status == NULL)
				w->status = part;
		} else if (dsn_is(ct, "text", "rfc822-headers") || dsn_is(ct, "message", "global-headers") ||
			   dsn_is(ct, "message", "global") || dsn_is(ct, "message", "rfc822")) {
			if (w->returned == NULL)
				w->returned = obj;
		} else if (inline_part && dsn_is(ct, "text", "plain")) {
			if (w->text == NULL)
				w->text = part;
		} else if (inline_part && dsn_is(ct, "text", "html")) {
			if (w->html == NULL)
				w->html = part;
		}
	}
}

/* Returns: (transfer full): the first @max bytes of @part's content,
 * its transfer encoding undone, NUL-terminated (->len without the NUL). */
static GByteArray *
dsn_part_bytes(GMimePart *part, gsize max)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *src = content != NULL ? g_mime_data_wrapper_get_stream(content) : NULL;
	GByteArray *out = g_byte_array_new();

	if (src != NULL) {
		GMimeContentEncoding encoding = g_mime_data_wrapper_get_encoding(content);
		g_autoptr(GMimeStream) filtered = g_mime_stream_filter_new(src);
		char buf[4096];

		g_mime_stream_reset(src);
		if (encoding == GMIME_CONTENT_ENCODING_BASE64 ||
		    encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
		    encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
			g_autoptr(GMimeFilter) decode = g_mime_filter_basic_new(encoding, FALSE);

			g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), decode);
		}
		while (out->len < max) {
			ssize_t n = g_mime_stream_read(filtered, buf, MIN(sizeof(buf), max - out->len));

			if (n <= 0)
				break;
			g_byte_array_append(out, (const guint8 *)buf, (guint)n);
		}
	}
	g_byte_array_append(out, (const guint8 *)"", 1);
	g_byte_array_set_size(out, out->len - 1);
	return out;
}

/* Returns: (transfer full) (nullable): the Message-ID of the returned
 * message or headers @obj. */
static char *
dsn_returned_id(GMimeObject *obj)
{
	g_autoptr(GByteArray) bytes = NULL;

	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		const char *id = inner != NULL ? g_mime_message_get_message_id(inner) : NULL;

		return id != NULL ? dsn_message_id(id, strlen(id)) : NULL;
	}
	bytes = dsn_part_bytes(GMIME_PART(obj), DSN_MAX_TEXT_BYTES);
	return dsn_find_message_id((const char *)bytes->data, bytes->len, TRUE);
}

/* Returns: (transfer full) (nullable): the text of the bounce: its first
 * inline text/plain, else its text/html reduced to text; at most
 * DSN_MAX_TEXT_BYTES of either. */
static char *
dsn_text(const DsnWalk *w)
{
	g_autoptr(GByteArray) bytes = NULL;

	if (w->text != NULL) {
		bytes = dsn_part_bytes(w->text, DSN_MAX_TEXT_BYTES);
		return g_utf8_make_valid((const char *)bytes->data, bytes->len);
	}
	if (w->html != NULL) {
		g_autofree char *html = NULL;

		bytes = dsn_part_bytes(w->html, DSN_MAX_TEXT_BYTES);
		html = g_utf8_make_valid((const char *)bytes->data, bytes->len);
		return mr_parse_html_to_text(html);
	}
	return NULL;
}

/* --- plain-text bounces -------------------------------------------------- */

/* What bounce texts say (lower case, white space runs one space, ’ as '). */
static const char *const dsn_bounce_phrases[] = {
	"this is the qmail-send program",                                   /* qmail */
	"this message was created automatically by mail delivery software", /* Exim */
	"i'm sorry to have to inform you that your message could not",      /* Postfix */
	"could not be delivered to one or more",
	"could not be delivered to the following",
	"following addresses had permanent fatal errors",                   /* sendmail */
	"the following address(es) failed",
	"delivery to the following recipient",                              /* Exchange, Domino */
	"delivery has failed to these recipients",                          /* Exchange */
	"your message wasn't delivered",                                    /* Microsoft 365, Gmail */
	"your message couldn't be delivered",
	"your message could not be delivered",
	"message not delivered",
	"has not yet been delivered",                                       /* Exim delay */
	"delivery to the following recipients has been delayed",
	"unable to deliver your message",
};

/* Bounce subjects (lower case). */
static const char *const dsn_bounce_subjects[] = {
	"undeliver", "returned mail", "delivery status notification", "mail delivery failed",
	"failure notice", "delivery failure", "not delivered", "delivery delayed", "warning: message",
	"delivery notification", "mail delivery system",
};

/* Returns: (transfer full): @text lower-cased (ASCII), each run of white
 * space one space, U+2019 an apostrophe: the form the phrases are in. */
static char *
dsn_folded(const char *text)
{
	GString *out = g_string_sized_new(strlen(text));

	for (const char *p = text; *p != '\0'; p++) {
		if (g_ascii_isspace(*p)) {
			if (out->len == 0 || out->str[out->len - 1] != ' ')
				g_string_append_c(out, ' ');
		} else if (strncmp(p, "\xe2\x80\x99", 3) == 0) {
			g_string_append_c(out, '\'');
			p += 2;
		} else {
			g_string_append_c(out, g_ascii_tolower(*p));
		}
	}
	return g_string_free(out, FALSE);
}

static gboolean
dsn_contains_any(const char *haystack, const char *const *needles, gsize n)
{
	for (gsize i = 0; i < n; i++)
		if (strstr(haystack, needles[i]) != NULL)
			return TRUE;
	return FALSE;
}

/* Returns TRUE when the header of @message says a mail system sent it. */
static gboolean
dsn_from_mail_system(GMimeMessage *message)
{
	GMimeObject *obj = GMIME_OBJECT(message);
	InternetAddressList *from = g_mime_message_get_from(message);
	const char *v;

	if ((v = g_mime_object_get_header(obj, "Return-Path")) != NULL) {
		g_autofree char *rp = g_strstrip(g_strdup(v));

		if (strcmp(rp, "<>") == 0)
			return TRUE;
	}
	if ((v = g_mime_object_get_header(obj, "Auto-Submitted")) != NULL) {
		g_autofree char *as = g_strstrip(g_strdup(v));

		if (g_ascii_strncasecmp(as, "no", 2) != 0)
			return TRUE;
	}
	if (from != NULL && internet_address_list_length(from) > 0) {
		InternetAddress *ia = internet_address_list_get_address(from, 0);
		const char *addr =
			INTERNET_ADDRESS_IS_MAILBOX(ia) ? internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)) : NULL;

		if (addr != NULL && (g_ascii_strncasecmp(addr, "mailer-daemon", 13) == 0 ||
				     g_ascii_strncasecmp(addr, "postmaster", 10) == 0))
			return TRUE;
	}
	if ((v = g_mime_message_get_subject(message)) != NULL) {
		g_autofree char *subject = dsn_folded(v);

		if (dsn_contains_any(subject, dsn_bounce_subjects, G_N_ELEMENTS(dsn_bounce_subjects)))
			return TRUE;
	}
	return FALSE;
}

/* Reading a bounce's text for its recipients and their SMTP replies. */
typedef struct {
	MrDsn *dsn;
	const char *action;         /* "failed" or "delayed", for each new one */
	gboolean add;               /* new recipients may be added */
	MrDsnRecipient *current;    /* (nullable): the one being read */
	char code[4];               /* its reply's basic code, for more lines */
	GString *diagnostic;        /* (nullable): its reply, being read */
} DsnText;

/* The lines that begin the copy of the returned message: a header field
 * at the start of a line, or a "---" rule that says so ("--- Below this
 * line is a copy of the message.", "------ This is a copy of the
 * message, including all the headers. ------", "   ----- Original
 * message follows -----"). */
static gboolean
dsn_text_is_copy(const char *s, gsize n)
{
	static const char *const starts[] = { "Return-Path:", "Received:", "Original message headers:" };
	g_autofree char *line = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(starts); i++)
		if (n >= strlen(starts[i]) && g_ascii_strncasecmp(s, starts[i], strlen(starts[i])) == 0)
			return TRUE;
	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	if (n < 3 || strncmp(s, "---", 3) != 0)
		return FALSE;
	line = g_ascii_strdown(s, (gssize)MIN(n, 200));
	return strstr(line, "copy") != NULL || strstr(line, "original") != NULL ||
	       strstr(line, "returned message") != NULL;
}

/* Returns: (transfer full) (nullable): the address that begins the line
 * @s (after white space; in angle brackets, or not and followed by the
 * end, white space or ':'). */
static char *
dsn_text_address(const char *s, gsize n)
{
	const char *p = s, *end = s + n, *a;
	gboolean angle;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	angle = p < end && *p == '<';
	if (angle)
		p++;
	a = p;
	while (p < end && *p != '>' && *p != ':' && *p != ' ' && *p != '\t' && *p != ',')
		p++;
	if (angle && (p == end || *p != '>'))
		return NULL;
	if (!angle && p < end && *p != ':' && *p != ' ' && *p != '\t')
		return NULL;
	if (!angle && p > a && p[-1] == '.')
		return NULL; /* "mail to postmaster@x." ends a sentence */
	return dsn_addr_spec(a, (gsize)(p - a));
}

static void
dsn_text_end_reply(DsnText *t)
{
	if (t->diagnostic != NULL && t->current != NULL && t->current->diagnostic == NULL)
		t->current->diagnostic = dsn_line_or_null(t->diagnostic->str, t->diagnostic->len, MR_DSN_DIAGNOSTIC_MAX);
	if (t->diagnostic != NULL)
		g_string_free(g_steal_pointer(&t->diagnostic), TRUE);
	t->code[0] = '\0';
}

/* Reads @line for the SMTP reply of the current recipient: its start, or
 * the lines that continue it (the same code again, or indented). */
static void
dsn_text_reply(DsnText *t, const char *line)
{
	g_autofree char *status = NULL;
	const char *reply;

	if (t->current == NULL || t->current->diagnostic != NULL)
		return;
	if (t->diagnostic != NULL) {
		/* "550-5.1.1 The email account ...", then "550-5.1.1 double-checking ..." */
		const char *p = line;

		while (*p == ' ' || *p == '\t')
			p++;
		if (t->code[0] != '\0' && strncmp(p, t->code, 3) == 0 && (p[3] == ' ' || p[3] == '-')) {
			p += 4;
			if (dsn_status_at(p) > 0)
				p += dsn_status_at(p);
		} else if (p == line || *p == '\0') {
			/* Postfix folds the reply onto indented lines:
			 * "<a@b>: host x said: 550 5.1.1\n    <a@b>: Recipient ..." */
			dsn_text_end_reply(t);
			return;
		}
		if (t->diagnostic->len < MR_DSN_DIAGNOSTIC_MAX) {
			g_string_append_c(t->diagnostic, ' ');
			g_string_append(t->diagnostic, p);
		}
		return;
	}
	if ((reply = dsn_smtp_reply(line, &status)) == NULL)
		return;
	/* A reply without a basic code is quoted with the words before it:
	 * "Sorry, no mailbox here by that name. (#5.1.1)". */
	if (!(g_ascii_isdigit(reply[0]) && g_ascii_isdigit(reply[1]) && g_ascii_isdigit(reply[2]))) {
		reply = line;
	} else {
		memcpy(t->code, reply, 3);
		t->code[3] = '\0';
	}
	if (t->current->status == NULL)
		t->current->status = g_steal_pointer(&status);
	t->diagnostic = g_string_new(reply);
}

static gboolean
dsn_text_line(gpointer user, const char *s, gsize n)
{
	DsnText *t = user;
	g_autofree char *line = NULL;
	g_autofree char *addr = NULL;

	if (dsn_text_is_copy(s, n))
		return FALSE;
	line = g_strndup(s, n);
	if ((addr = dsn_text_address(s, n)) != NULL &&
	    (t->current == NULL || g_strcmp0(t->current->final_recipient, addr) != 0)) {
		MrDsnRecipient *r = dsn_recipient_find(t->dsn, addr);

		dsn_text_end_reply(t);
		if (r == NULL && t->add && (r = dsn_recipient_add(t->dsn)) != NULL) {
			r->final_recipient = g_steal_pointer(&addr);
			r->action = g_strdup(t->action);
		}
		t->current = r;
	}
	dsn_text_reply(t, line);
	return TRUE;
}

/* Reads the recipients and their replies from @text into @d: those
 * already in @d (X-Failed-Recipients) and, when @add, new ones. */
static void
dsn_text_read(MrDsn *d, const char *text, const char *action, gboolean add)
{
	DsnText t = { .dsn = d, .action = action, .add = add };

	dsn_lines(text, strlen(text), dsn_text_line, &t);
	dsn_text_end_reply(&t);
}

/* Adds the recipients of X-Failed-Recipients (Exim, Gmail, others) to @d.
 * Returns TRUE when @message has the field. */
static gboolean
dsn_failed_recipients(MrDsn *d, GMimeMessage *message, const char *action)
{
	GMimeHeaderList *headers = g_mime_object_get_header_list(GMIME_OBJECT(message));
	int n = g_mime_header_list_get_count(headers);
	gboolean found = FALSE;

	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(headers, i);
		g_auto(GStrv) addrs = NULL;

		if (g_ascii_strcasecmp(g_mime_header_get_name(h), "X-Failed-Recipients") != 0)
			continue;
		found = TRUE;
		addrs = g_strsplit(g_mime_header_get_value(h) != NULL ? g_mime_header_get_value(h) : "", ",", 0);
		for (guint k = 0; addrs[k] != NULL; k++) {
			g_autofree char *addr = dsn_addr_spec(addrs[k], strlen(addrs[k]));
			MrDsnRecipient *r;

			if (addr == NULL || dsn_recipient_find(d, addr) != NULL)
				continue;
			if ((r = dsn_recipient_add(d)) == NULL)
				return TRUE;
			r->final_recipient = g_steal_pointer(&addr);
			r->action = g_strdup(action);
		}
	}
	return found;
}

/* The words of a bounce that is a warning, not a failure. */
static gboolean
dsn_text_is_delay(const char *folded, const char *subject)
{
	static const char *const delay[] = { "has not yet been delivered", "delayed", "will continue",
					     "will be retried", "will retry", "still trying" };

	if (strstr(folded, "permanent") != NULL || strstr(folded, "given up") != NULL ||
	    strstr(folded, "giving up") != NULL)
		return FALSE;
	return dsn_contains_any(folded, delay, G_N_ELEMENTS(delay)) ||
	       (subject != NULL && strstr(subject, "delayed") != NULL);
}

/* Returns: (transfer full) (nullable): @message read as a plain-text
 * bounce, or NULL when it is none. */
static MrDsn *
dsn_plain(GMimeMessage *message, const DsnWalk *w)
{
	g_autoptr(MrDsn) d = g_new0(MrDsn, 1);
	g_autofree char *text = dsn_text(w);
	g_autofree char *folded = text != NULL ? dsn_folded(text) : g_strdup("");
	const char *subject_raw = g_mime_message_get_subject(message);
	g_autofree char *subject = subject_raw != NULL ? dsn_folded(subject_raw) : NULL;
	gboolean phrase = dsn_contains_any(folded, dsn_bounce_phrases, G_N_ELEMENTS(dsn_bounce_phrases));
	const char *action = dsn_text_is_delay(folded, subject) ? "delayed" : "failed";
	gboolean listed;

	d->recipients = g_ptr_array_new_with_free_func((GDestroyNotify)dsn_recipient_free);
	listed = dsn_failed_recipients(d, message, action);
	if (!listed && !(phrase && dsn_from_mail_system(message)))
		return NULL;
	if (text != NULL) {
		dsn_text_read(d, text, action, !listed);
		d->original_message_id = dsn_find_message_id(text, strlen(text), FALSE);
	}
	if (w->returned != NULL) {
		g_autofree char *id = dsn_returned_id(w->returned);

		if (id != NULL) {
			g_free(d->original_message_id);
			d->original_message_id = g_steal_pointer(&id);
		}
	}
	return g_steal_pointer(&d);
}

/* --- a report ------------------------------------------------------------ */

static MrDsn *
dsn_report(const DsnWalk *w)
{
	MrDsn *d = g_new0(MrDsn, 1);
	g_autoptr(GByteArray) bytes = dsn_part_bytes(w->status, DSN_MAX_STATUS_BYTES);
	g_autofree char *field_id = NULL;

	d->is_report = TRUE;
	d->recipients = g_ptr_array_new_with_free_func((GDestroyNotify)dsn_recipient_free);
	field_id = dsn_status_read(d, (const char *)bytes->data, bytes->len);
	if (w->returned != NULL)
		d->original_message_id = dsn_returned_id(w->returned);
	if (d->original_message_id == NULL)
		d->original_message_id = g_steal_pointer(&field_id);
	if (d->recipients->len == 0) {
		/* A report without recipient groups: what its text says. */
		g_autofree char *text = dsn_text(w);

		if (text != NULL)
			dsn_text_read(d, text, "failed", TRUE);
	}
	return d;
}

/* mr_parse_limited()'s callback: sets *@user_data to the report in the
 * message GMime reads from @stream, or NULL. */
static void
dsn_parse_stream(GMimeStream *stream, gpointer user_data)
{
	MrDsn **out = user_data;
	g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(stream);
	g_autoptr(GMimeMessage) message = g_mime_parser_construct_message(parser, NULL);
	GMimeObject *body;
	DsnWalk w = { 0 };

	if (message == NULL ||
	    g_mime_header_list_get_count(g_mime_object_get_header_list(GMIME_OBJECT(message))) == 0)
		return;
	if ((body = g_mime_message_get_mime_part(message)) != NULL)
		dsn_walk(&w, body, 0);
	*out = w.status != NULL ? dsn_report(&w) : dsn_plain(message, &w);
}

MrDsn *
mr_dsn_parse(GBytes *raw)
{
	const guint8 *data;
	gsize len = 0, skip;
	MrDsn *d = NULL;

	g_return_val_if_fail(raw != NULL, NULL);

	mr_parse_init();
	data = g_bytes_get_data(raw, &len);
	if (data == NULL || len > G_MAXUINT)
		return NULL;
	skip = mr_parse_skip_mbox_from(data, len);
	if (len - skip == 0)
		return NULL;
	mr_parse_limited(data + skip, len - skip, &dsn_limits, NULL, dsn_parse_stream, &d);
	return d;
}
