/* mr-parse.c - stage 2: raw bytes to a plain MrMessage with GMime.
 *
 * Parse stage.  Owns the MrMessage it returns; keeps no reference to the
 * raw bytes.  One walk over the MIME tree: the first inline text/plain is
 * the body, the first inline text/html its stand-in, every other leaf an
 * attachment.  Nothing here fails: trouble becomes @status and @problem. */
#define G_LOG_DOMAIN "mailroom-parse"

#include <string.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-hash.h"
#include "mr-parse-private.h"

/* Deeper MIME trees are hostile; GMime itself stops at 1024 levels. */
#define PARSE_MAX_DEPTH 32
/* Bytes of a header value quoted in auto_reason. */
#define PARSE_REASON_MAX 100
/* Group members are addresses again; RFC 5322 allows no nesting. */
#define PARSE_MAX_GROUP_DEPTH 4
/* Authentication-Results kept: an MTA adds its own above the others (RFC
 * 8601 section 4), and routing reads each, under the write lock. */
#define PARSE_MAX_AUTH_RESULTS 32

static const char *const parse_default_charsets[] = { "utf-8", "windows-1252", NULL };

/* The GMime parser warnings that mean the message is broken; the others
 * (duplicated headers, raw 8-bit, bad encoded-words) are everyday mail. */
static const char *const parse_warning_text[] = {
	[GMIME_WARN_INVALID_CONTENT_TYPE] = "invalid Content-Type",
	[GMIME_WARN_MALFORMED_MULTIPART] = "multipart without parts",
	[GMIME_WARN_TRUNCATED_MESSAGE] = "message is truncated",
	[GMIME_WARN_MALFORMED_MESSAGE] = "message is malformed",
	[GMIME_CRIT_INVALID_HEADER_NAME] = "invalid header line",
	[GMIME_CRIT_CONFLICTING_HEADER] = "conflicting headers",
	[GMIME_CRIT_CONFLICTING_PARAMETER] = "conflicting header parameters",
	[GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY] = "multipart without boundary",
	[GMIME_CRIT_NESTING_OVERFLOW] = "MIME nesting too deep",
	[GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT] = "MIME part without headers or content",
};

/* The address headers, indexed by GMimeAddressType. */
static const char *const parse_address_headers[] = {
	[GMIME_ADDRESS_TYPE_SENDER] = "Sender",
	[GMIME_ADDRESS_TYPE_FROM] = "From",
	[GMIME_ADDRESS_TYPE_REPLY_TO] = "Reply-To",
	[GMIME_ADDRESS_TYPE_TO] = "To",
	[GMIME_ADDRESS_TYPE_CC] = "Cc",
};

/* One parse.  GMime objects are borrowed from the message being parsed. */
typedef struct {
	MrMessage *msg;
	GMimeParserOptions *gopts;
	const MrParseOptions *limits;  /* resolved: no limit is 0 */
	GString *problems;             /* NULL until something is broken */
	guint32 warned;                /* bit per warning already in @problems */
	gboolean failed;               /* not a message at all */
	gboolean subject_forward;      /* the subject has a forward prefix */
	gboolean subject_reply;        /* the subject has a reply prefix */
	GMimePart *text_part;          /* first inline text/plain */
	GMimePart *html_part;          /* first inline text/html */
	GMimeMultipart *empty;         /* first multipart without parts */
	GMimeMessage *forwarded;       /* first message/rfc822 outside a report */
	const char *bounce;            /* the part that makes it a bounce */
} ParseCtx;

void
mr_parse_note(GString **problems, const char *format, ...)
{
	va_list args;

	if (*problems == NULL)
		*problems = g_string_new(NULL);
	else
		g_string_append(*problems, "; ");
	va_start(args, format);
	g_string_append_vprintf(*problems, format, args);
	va_end(args);
}

/* GMimeParserWarningFunc.  Quotes no @item: problems are logged, and
 * message content is not. */
static void
parse_warning(gint64 offset, GMimeParserWarning code, const char *item, gpointer user_data)
{
	ParseCtx *ctx = user_data;

	if ((guint)code >= G_N_ELEMENTS(parse_warning_text) || parse_warning_text[code] == NULL ||
	    (ctx->warned & (1u << code)) != 0)
		return;
	ctx->warned |= 1u << code;
	if (offset >= 0)
		mr_parse_note(&ctx->problems, "%s at byte %" G_GINT64_FORMAT, parse_warning_text[code], offset);
	else
		mr_parse_note(&ctx->problems, "%s", parse_warning_text[code]);
}

/* Returns: (transfer full) (nullable): @s as valid UTF-8, NULL for NULL
 * or "". */
static char *
parse_strdup_utf8(const char *s)
{
	if (s == NULL || *s == '\0')
		return NULL;
	if (g_utf8_validate(s, -1, NULL))
		return g_strdup(s);
	return g_utf8_make_valid(s, -1);
}

static void
header_free(MrHeader *h)
{
	g_free(h->name);
	g_free(h->value);
	g_free(h);
}

void
mr_address_free(MrAddress *addr)
{
	if (addr == NULL)
		return;
	g_free(addr->name);
	g_free(addr->email);
	g_free(addr);
}

void
mr_attachment_free(MrAttachment *a)
{
	if (a == NULL)
		return;
	g_free(a->filename);
	g_free(a->content_type);
	g_free(a->sha256);
	g_clear_pointer(&a->data, g_bytes_unref);
	g_free(a);
}

void
mr_message_free(MrMessage *msg)
{
	if (msg == NULL)
		return;
	g_free(msg->problem);
	g_free(msg->subject);
	g_free(msg->subject_normalised);
	mr_address_free(msg->from);
	mr_address_free(msg->sender);
	mr_address_free(msg->reply_to);
	g_clear_pointer(&msg->to, g_ptr_array_unref);
	g_clear_pointer(&msg->cc, g_ptr_array_unref);
	g_free(msg->message_id);
	g_free(msg->in_reply_to);
	g_clear_pointer(&msg->references, g_ptr_array_unref);
	g_clear_pointer(&msg->auth_results, g_ptr_array_unref);
	g_clear_pointer(&msg->headers, g_ptr_array_unref);
	g_free(msg->body_text);
	g_clear_pointer(&msg->attachments, g_ptr_array_unref);
	mr_address_free(msg->original_from);
	g_free(msg->original_subject);
	g_free(msg->auto_reason);
	g_free(msg);
}

MrAddress *
mr_parse_address_new(const char *name, const char *addr)
{
	MrAddress *a = g_new0(MrAddress, 1);
	g_autofree char *email = parse_strdup_utf8(addr);

	a->name = parse_strdup_utf8(name);
	if (a->name != NULL)
		g_strstrip(a->name);
	if (a->name != NULL && *a->name == '\0')
		g_clear_pointer(&a->name, g_free);
	a->email = mr_address_normalise(email);
	return a;
}

static void
address_list_flatten(InternetAddressList *list, GPtrArray *out, guint depth)
{
	int n = internet_address_list_length(list);

	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			g_ptr_array_add(out, mr_parse_address_new(internet_address_get_name(ia),
					  internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia))));
		else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth < PARSE_MAX_GROUP_DEPTH)
			address_list_flatten(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
					     out, depth + 1);
	}
}

void
mr_parse_address_list_flatten(InternetAddressList *list, GPtrArray *out)
{
	g_return_if_fail(list != NULL && out != NULL);

	address_list_flatten(list, out, 0);
}

void
mr_parse_init(void)
{
	static gsize initialised = 0;

	if (g_once_init_enter(&initialised)) {
		g_mime_init();
		g_once_init_leave(&initialised, 1);
	}
}

gsize
mr_parse_skip_mbox_from(const guint8 *data, gsize len)
{
	const guint8 *nl;

	if (data == NULL || len < 5 || memcmp(data, "From ", 5) != 0)
		return 0;
	nl = memchr(data, '\n', len);
	return nl != NULL ? (gsize)(nl - data) + 1 : len;
}

/* Returns: (transfer full) (nullable): the unfolded value of @h with its
 * encoded-words repaired (see mr_parse_rfc2047_merge()), or NULL when it
 * needs no repair and GMime's own decoding is right. */
static char *
header_repaired(GMimeHeader *h)
{
	const char *raw = g_mime_header_get_raw_value(h);
	g_autofree char *merged = NULL;

	if (raw == NULL || strstr(raw, "=?") == NULL)
		return NULL;
	merged = mr_parse_rfc2047_merge(raw);
	return merged != NULL ? g_mime_utils_header_unfold(merged) : NULL;
}

/* Returns: (transfer full): @h's name and its value decoded, unfolded and
 * made valid UTF-8 (header:NAME of the rules). */
static MrHeader *
header_decoded(ParseCtx *ctx, GMimeHeader *h)
{
	MrHeader *out = g_new0(MrHeader, 1);
	g_autofree char *repaired = header_repaired(h);
	g_autofree char *decoded = repaired != NULL
					   ? g_mime_utils_header_decode_text(ctx->gopts, repaired)
					   : g_strdup(g_mime_header_get_value(h));
	char *value = parse_strdup_utf8(decoded);

	out->name = parse_strdup_utf8(g_mime_header_get_name(h));
	if (out->name == NULL)
		out->name = g_strdup("");
	out->value = value != NULL ? g_strstrip(value) : g_strdup("");
	return out;
}

/* Returns: (transfer full): the decoded Subject: of @message, "" when it
 * has none. */
static char *
message_subject(ParseCtx *ctx, GMimeMessage *message)
{
	GMimeHeaderList *headers = g_mime_object_get_header_list(GMIME_OBJECT(message));
	GMimeHeader *h = g_mime_header_list_get_header(headers, "Subject");
	g_autofree char *repaired = NULL;
	g_autofree char *decoded = NULL;
	char *subject;

	if (h == NULL)
		return g_strdup("");
	repaired = header_repaired(h);
	if (repaired != NULL)
		decoded = g_mime_utils_header_decode_text(ctx->gopts, repaired);
	else
		decoded = g_strdup(g_mime_header_get_value(h));
	subject = parse_strdup_utf8(decoded);
	return subject != NULL ? g_strstrip(subject) : g_strdup("");
}

/* Returns: (transfer full): the mailboxes of every @type header of
 * @message.  GMime parsed them already; headers whose display names need
 * the encoded-word repair are parsed again from the repaired text. */
static GPtrArray *
message_addresses(ParseCtx *ctx, GMimeMessage *message, GMimeAddressType type)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)mr_address_free);
	GMimeHeaderList *headers = g_mime_object_get_header_list(GMIME_OBJECT(message));
	const char *name = parse_address_headers[type];
	int n = g_mime_header_list_get_count(headers);
	g_autoptr(GPtrArray) repaired = g_ptr_array_new_with_free_func(g_free);
	gboolean any = FALSE;

	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(headers, i);
		const char *raw = g_mime_header_get_raw_value(h);
		char *r;

		if (raw == NULL || g_ascii_strcasecmp(g_mime_header_get_name(h), name) != 0)
			continue;
		r = header_repaired(h);
		any = any || r != NULL;
		g_ptr_array_add(repaired, r != NULL ? r : g_mime_utils_header_unfold(raw));
	}
	if (!any) {
		mr_parse_address_list_flatten(g_mime_message_get_addresses(message, type), out);
		return out;
	}
	for (guint i = 0; i < repaired->len; i++) {
		g_autoptr(InternetAddressList) list =
			internet_address_list_parse(ctx->gopts, g_ptr_array_index(repaired, i));

		if (list != NULL)
			mr_parse_address_list_flatten(list, out);
	}
	return out;
}

/* Returns: (transfer full) (nullable): the first mailbox of @type. */
static MrAddress *
message_first_address(ParseCtx *ctx, GMimeMessage *message, GMimeAddressType type)
{
	g_autoptr(GPtrArray) all = message_addresses(ctx, message, type);

	return all->len > 0 ? g_ptr_array_steal_index(all, 0) : NULL;
}

/* Returns: (transfer full) (nullable): the References: value @value
 * with its first message id and its last @max - 1 only, or NULL when it
 * has no more than @max.  Threads are found by the newest ids and by the
 * first, and each id kept is a look-up when the message is routed. */
static char *
references_trimmed(const char *value, guint max)
{
	const char *p, *first_end, *tail;
	GString *out;
	gsize n = 0;

	for (p = strchr(value, '<'); p != NULL && n <= max; p = strchr(p + 1, '<'))
		n++;
	if (n <= max)
		return NULL;
	tail = value + strlen(value);
	for (guint k = 0; k + 1 < max; tail--)
		if (tail[-1] == '<')
			k++;
	first_end = strchr(strchr(value, '<'), '>');
	out = g_string_new(NULL);
	if (first_end != NULL && first_end < tail) {
		g_string_append_len(out, value, first_end + 1 - value);
		g_string_append_c(out, ' ');
	}
	g_string_append(out, tail);
	return g_string_free(out, FALSE);
}

static void
parse_envelope(ParseCtx *ctx, GMimeMessage *message)
{
	MrMessage *msg = ctx->msg;
	GMimeObject *obj = GMIME_OBJECT(message);
	GDateTime *date = g_mime_message_get_date(message);
	const char *value;

	msg->subject = message_subject(ctx, message);
	msg->subject_normalised = mr_parse_subject_strip(msg->subject, &ctx->subject_forward,
							 &ctx->subject_reply);
	msg->from = message_first_address(ctx, message, GMIME_ADDRESS_TYPE_FROM);
	msg->sender = message_first_address(ctx, message, GMIME_ADDRESS_TYPE_SENDER);
	msg->reply_to = message_first_address(ctx, message, GMIME_ADDRESS_TYPE_REPLY_TO);
	g_ptr_array_unref(msg->to);
	msg->to = message_addresses(ctx, message, GMIME_ADDRESS_TYPE_TO);
	g_ptr_array_unref(msg->cc);
	msg->cc = message_addresses(ctx, message, GMIME_ADDRESS_TYPE_CC);
	msg->message_id = parse_strdup_utf8(g_mime_message_get_message_id(message));
	if ((value = g_mime_object_get_header(obj, "In-Reply-To")) != NULL) {
		g_autofree char *id = g_mime_utils_decode_message_id(value);

		msg->in_reply_to = parse_strdup_utf8(id);
	}
	if ((value = g_mime_object_get_header(obj, "References")) != NULL) {
		g_autofree char *trimmed = references_trimmed(value, ctx->limits->max_references);
		GMimeReferences *refs = g_mime_references_parse(ctx->gopts, trimmed != NULL ? trimmed : value);
		int n = refs != NULL ? g_mime_references_length(refs) : 0;

		for (int i = 0; i < n; i++) {
			char *id = parse_strdup_utf8(g_mime_references_get_message_id(refs, i));

			if (id != NULL)
				g_ptr_array_add(msg->references, id);
		}
		g_clear_pointer(&refs, g_mime_references_free);
	}
	{
		GMimeHeaderList *headers = g_mime_object_get_header_list(obj);
		int n = g_mime_header_list_get_count(headers);

		for (int i = 0; i < n; i++) {
			GMimeHeader *h = g_mime_header_list_get_header_at(headers, i);
			const char *raw = g_mime_header_get_raw_value(h);

			g_ptr_array_add(msg->headers, header_decoded(ctx, h));
			if (msg->auth_results->len >= PARSE_MAX_AUTH_RESULTS)
				continue;

			if (raw != NULL &&
			    g_ascii_strcasecmp(g_mime_header_get_name(h), "Authentication-Results") == 0) {
				g_autofree char *unfolded = g_mime_utils_header_unfold(raw);
				char *v = parse_strdup_utf8(unfolded);

				if (v != NULL)
					g_ptr_array_add(msg->auth_results, v);
			}
		}
	}
	if (date != NULL)
		msg->date = g_date_time_to_unix(date);
}

/* Returns: (transfer full): the content of @part with its transfer
 * encoding undone.  As @text, also converted by @charset (nullable) and
 * with CRLF line ends made LF; else byte for byte. */
static GByteArray *
part_decoded(GMimePart *part, GMimeFilter *charset, gboolean text)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	g_autoptr(GMimeStream) mem = g_mime_stream_mem_new();
	g_autoptr(GMimeStream) out = NULL;

	if (content != NULL && text) {
		g_autoptr(GMimeFilter) dos2unix = g_mime_filter_dos2unix_new(FALSE);

		out = g_mime_stream_filter_new(mem);
		if (charset != NULL)
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(out), charset);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(out), dos2unix);
	} else if (content != NULL) {
		out = g_object_ref(mem);
	}
	if (out != NULL) {
		g_mime_data_wrapper_write_to_stream(content, out);
		g_mime_stream_flush(out);
	}
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	return g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
}

static gboolean
charset_is_utf8(const char *charset)
{
	return g_ascii_strcasecmp(charset, "utf-8") == 0 || g_ascii_strcasecmp(charset, "utf8") == 0;
}

static gboolean
charset_is_ascii(const char *charset)
{
	return g_ascii_strcasecmp(charset, "us-ascii") == 0 || g_ascii_strcasecmp(charset, "ascii") == 0;
}

/* The ASCII control character SUB, which stands in for a NUL byte while
 * GMime decodes text (GMime reads C strings). */
#define PARSE_NUL_STAND_IN 0x1a

/* Returns: (transfer full): the bytes of @bytes (transfer full), which
 * hold no NUL, as a string, without a copy. */
static char *
bytes_to_string(GByteArray *bytes)
{
	g_byte_array_append(bytes, (const guint8 *)"", 1);
	return (char *)g_byte_array_free(bytes, FALSE);
}

/* Returns: (transfer full): @bytes (transfer full; text with no declared
 * charset) as UTF-8: as it is when it is UTF-8, else decoded with the
 * first fallback charset that fits (GMime picks the one with the fewest
 * bad bytes when none does).  A NUL byte becomes U+FFFD, and so does a
 * SUB byte in text that has NULs too: the text is decoded in one call,
 * not in one call per NUL (a message of NULs would cost a charset
 * conversion per byte).  No more than one copy of the text at a time
 * besides GMime's: a body can be most of a 25 MB message. */
static char *
text_from_undeclared(ParseCtx *ctx, GByteArray *bytes)
{
	char *data = (char *)bytes->data;
	gsize len = bytes->len, n, subs = 0;
	char *decoded, *src, *dst;
	const char *p;

	if (g_utf8_validate_len(data, len, NULL))
		return bytes_to_string(bytes);
	for (char *nul = data; (nul = memchr(nul, '\0', len - (gsize)(nul - data))) != NULL; nul++) {
		*nul = PARSE_NUL_STAND_IN;
		subs++;
	}
	decoded = g_mime_utils_decode_8bit(ctx->gopts, data, len);
	g_byte_array_unref(bytes);
	if (subs == 0)
		return decoded;
	n = strlen(decoded);
	subs = 0;
	for (p = decoded; (p = memchr(p, PARSE_NUL_STAND_IN, n - (gsize)(p - decoded))) != NULL; p++)
		subs++;
	/* Each stand-in becomes the three bytes of U+FFFD, from the end. */
	decoded = g_realloc(decoded, n + 2 * subs + 1);
	src = decoded + n;
	dst = decoded + n + 2 * subs;
	*dst = '\0';
	while (src > decoded) {
		char c = *--src;

		if (c == PARSE_NUL_STAND_IN) {
			*--dst = '\xbd';
			*--dst = '\xbf';
			*--dst = '\xef';
		} else {
			*--dst = c;
		}
	}
	return decoded;
}

/* Returns: (transfer full): the text of @part as valid UTF-8. */
static char *
part_text(ParseCtx *ctx, GMimePart *part)
{
	const char *charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
	g_autoptr(GMimeFilter) filter = NULL;
	g_autoptr(GByteArray) bytes = NULL;

	if (charset != NULL && !charset_is_utf8(charset) && !charset_is_ascii(charset))
		filter = g_mime_filter_charset_new(charset, "utf-8");
	bytes = part_decoded(part, filter, TRUE);
	if (bytes->len == 0)
		return g_strdup("");
	if (charset != NULL && charset_is_utf8(charset) && filter == NULL) {
		/* Declared UTF-8 with a few bad bytes is still UTF-8. */
		if (g_utf8_validate_len((const char *)bytes->data, bytes->len, NULL))
			return bytes_to_string(g_steal_pointer(&bytes));
		return g_utf8_make_valid((const char *)bytes->data, (gssize)bytes->len);
	}
	if (filter != NULL) /* iconv wrote UTF-8, unless it gave up */
		return g_utf8_make_valid((const char *)bytes->data, (gssize)bytes->len);
	return text_from_undeclared(ctx, g_steal_pointer(&bytes));
}

/* Adds an attachment of @bytes (transfer full). */
static void
attachment_add(ParseCtx *ctx, GMimeObject *part, GByteArray *bytes, const char *filename)
{
	MrAttachment *a = g_new0(MrAttachment, 1);
	GMimeContentType *ct = g_mime_object_get_content_type(part);
	g_autofree char *type = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;

	a->filename = parse_strdup_utf8(filename);
	a->content_type = g_ascii_strdown(type != NULL ? type : "application/octet-stream", -1);
	a->size = bytes->len;
	a->sha256 = mr_sha256_hex(bytes->data, bytes->len);
	a->data = g_byte_array_free_to_bytes(bytes);
	g_ptr_array_add(ctx->msg->attachments, a);
}

/* A message/rfc822 part: the attachment is the embedded message. */
static void
parse_message_part(ParseCtx *ctx, GMimeMessagePart *part, gboolean in_report)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	GMimeMessage *inner = g_mime_message_part_get_message(part);
	g_autoptr(GMimeStream) mem = g_mime_stream_mem_new();
	const char *filename = g_mime_object_get_content_disposition_parameter(obj, "filename");

	if (filename == NULL)
		filename = g_mime_object_get_content_type_parameter(obj, "name");
	/* The message returned inside a delivery report is no forward. */
	if (inner != NULL && !in_report && ctx->forwarded == NULL)
		ctx->forwarded = inner;
	if (inner != NULL)
		g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, mem);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	attachment_add(ctx, obj, g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem)), filename);
}

static void
parse_leaf(ParseCtx *ctx, GMimePart *part)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *filename = g_mime_part_get_filename(part);
	gboolean inline_text = filename == NULL && !g_mime_part_is_attachment(part) &&
			       ct != NULL && g_mime_content_type_is_type(ct, "text", "*");

	if (ct != NULL && ctx->bounce == NULL &&
	    (g_mime_content_type_is_type(ct, "message", "delivery-status") ||
	     g_mime_content_type_is_type(ct, "message", "global-delivery-status")))
		ctx->bounce = "Content-Type: message/delivery-status";
	if (inline_text && g_mime_content_type_is_type(ct, "text", "plain")) {
		if (ctx->text_part == NULL)
			ctx->text_part = part;
		return;
	}
	if (inline_text && g_mime_content_type_is_type(ct, "text", "html")) {
		if (ctx->html_part == NULL)
			ctx->html_part = part;
		return;
	}
	attachment_add(ctx, obj, part_decoded(part, NULL, FALSE), filename);
}

static void
parse_walk(ParseCtx *ctx, GMimeObject *obj, guint depth, gboolean in_report)
{
	if (depth > PARSE_MAX_DEPTH) {
		if ((ctx->warned & (1u << GMIME_CRIT_NESTING_OVERFLOW)) == 0) {
			ctx->warned |= 1u << GMIME_CRIT_NESTING_OVERFLOW;
			mr_parse_note(&ctx->problems, "MIME nesting deeper than %d levels", PARSE_MAX_DEPTH);
		}
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		GMimeContentType *ct = g_mime_object_get_content_type(obj);
		int n = g_mime_multipart_get_count(mp);

		if (ct != NULL && g_mime_content_type_is_type(ct, "multipart", "report")) {
			in_report = TRUE;
			if (ctx->bounce == NULL)
				ctx->bounce = "Content-Type: multipart/report";
		}
		if (n == 0 && ctx->empty == NULL) {
			ctx->empty = mp;
			parse_warning(-1, GMIME_WARN_MALFORMED_MULTIPART, NULL, ctx);
		}
		for (int i = 0; i < n; i++)
			parse_walk(ctx, g_mime_multipart_get_part(mp, i), depth + 1, in_report);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		parse_message_part(ctx, GMIME_MESSAGE_PART(obj), in_report);
	} else if (GMIME_IS_PART(obj)) {
		parse_leaf(ctx, GMIME_PART(obj));
	}
}

static void
parse_body(ParseCtx *ctx)
{
	MrMessage *msg = ctx->msg;

	if (ctx->text_part != NULL) {
		msg->body_text = part_text(ctx, ctx->text_part);
	} else if (ctx->html_part != NULL) {
		g_autofree char *html = part_text(ctx, ctx->html_part);

		msg->body_text = mr_parse_html_to_text(html);
	} else if (ctx->empty != NULL && g_mime_multipart_get_prologue(ctx->empty) != NULL) {
		/* The boundary never came: what there is, is all preamble. */
		const char *text = g_mime_multipart_get_prologue(ctx->empty);
		GByteArray *bytes = g_byte_array_sized_new((guint)strlen(text) + 1);

		g_byte_array_append(bytes, (const guint8 *)text, (guint)strlen(text));
		msg->body_text = text_from_undeclared(ctx, bytes);
	}
}

static void
parse_forward(ParseCtx *ctx)
{
	MrMessage *msg = ctx->msg;
	g_autoptr(MrAddress) from = NULL;
	g_autofree char *subject = NULL;
	gboolean ambiguous = FALSE;

	if (ctx->forwarded != NULL) {
		msg->is_forward = TRUE;
		msg->original_from = message_first_address(ctx, ctx->forwarded, GMIME_ADDRESS_TYPE_FROM);
		subject = message_subject(ctx, ctx->forwarded);
		msg->original_subject = *subject != '\0' ? g_steal_pointer(&subject) : NULL;
	} else if (msg->body_text != NULL &&
		   mr_parse_forward_scan(msg->body_text, &from, &subject, &ambiguous) &&
		   /* "-----Original Message-----" under "RE:" quotes a reply */
		   !(ambiguous && ctx->subject_reply && !ctx->subject_forward)) {
		msg->is_forward = TRUE;
		msg->original_from = g_steal_pointer(&from);
		msg->original_subject = g_steal_pointer(&subject);
	}
	if (ctx->subject_forward)
		msg->is_forward = TRUE;
}

static MrAutoKind
auto_submitted(const char *v)
{
	if (g_ascii_strncasecmp(v, "no", 2) == 0 && (v[2] == '\0' || v[2] == ';' || g_ascii_isspace(v[2])))
		return MR_AUTO_NONE;
	/* RFC 3834 section 5: auto-replied answers a message; auto-generated
	 * (and anything newer) is a notice nobody asked for. */
	return g_ascii_strncasecmp(v, "auto-replied", 12) == 0 ? MR_AUTO_REPLY : MR_AUTO_BULK;
}

static MrAutoKind
auto_flag(const char *v)
{
	return g_ascii_strcasecmp(v, "no") == 0 || g_ascii_strcasecmp(v, "false") == 0 ? MR_AUTO_NONE
										       : MR_AUTO_REPLY;
}

/* Exchange's X-Auto-Response-Suppress: a list of DR, NDR, RN, NRN, OOF,
 * AutoReply, All.  Out-of-office replies carry All; only the values that
 * suppress auto-replies mark an automatic sender. */
static MrAutoKind
auto_suppress(const char *v)
{
	g_auto(GStrv) tokens = g_strsplit_set(v, ", \t;", -1);

	for (guint i = 0; tokens[i] != NULL; i++)
		if (g_ascii_strcasecmp(tokens[i], "All") == 0 || g_ascii_strcasecmp(tokens[i], "OOF") == 0 ||
		    g_ascii_strcasecmp(tokens[i], "AutoReply") == 0)
			return MR_AUTO_REPLY;
	return MR_AUTO_NONE;
}

static MrAutoKind
auto_precedence(const char *v)
{
	if (g_ascii_strcasecmp(v, "bulk") == 0 || g_ascii_strcasecmp(v, "list") == 0 ||
	    g_ascii_strcasecmp(v, "junk") == 0)
		return MR_AUTO_BULK;
	return g_ascii_strcasecmp(v, "auto_reply") == 0 ? MR_AUTO_REPLY : MR_AUTO_NONE;
}

static MrAutoKind
auto_list(const char *v)
{
	return MR_AUTO_BULK;
}

/* RFC 5321 section 4.5.5: notifications go out with a null reverse-path,
 * which the delivering MTA records as "Return-Path: <>". */
static MrAutoKind
auto_return_path(const char *v)
{
	if (*v++ != '<')
		return MR_AUTO_NONE;
	while (g_ascii_isspace(*v))
		v++;
	return *v == '>' ? MR_AUTO_BOUNCE : MR_AUTO_NONE;
}

/* In order: the first header that classifies the message decides.
 * Auto-replies come before Return-Path because RFC 3834 sends them with a
 * null reverse-path too. */
static const struct {
	const char *header;
	MrAutoKind (*classify)(const char *value);
} auto_rules[] = {
	{ "Auto-Submitted", auto_submitted },
	{ "X-Autoreply", auto_flag },
	{ "X-Autorespond", auto_flag },
	{ "X-Auto-Response-Suppress", auto_suppress },
	{ "Precedence", auto_precedence },
	{ "List-Id", auto_list },
	{ "List-Unsubscribe", auto_list },
	{ "Return-Path", auto_return_path },
};

static void
parse_auto(ParseCtx *ctx, GMimeMessage *message)
{
	MrMessage *msg = ctx->msg;

	/* A delivery report says what it is in its structure. */
	if (ctx->bounce != NULL) {
		msg->auto_kind = MR_AUTO_BOUNCE;
		msg->auto_reason = g_strdup(ctx->bounce);
		return;
	}
	for (guint i = 0; i < G_N_ELEMENTS(auto_rules); i++) {
		const char *value = g_mime_object_get_header(GMIME_OBJECT(message), auto_rules[i].header);
		g_autofree char *v = NULL;
		MrAutoKind kind;
		gsize len;

		if (value == NULL)
			continue;
		v = g_strstrip(g_strdup(value));
		if ((kind = auto_rules[i].classify(v)) == MR_AUTO_NONE)
			continue;
		/* Quote at most PARSE_REASON_MAX bytes, cut between characters. */
		len = strlen(v);
		if (len > PARSE_REASON_MAX) {
			len = PARSE_REASON_MAX;
			while (len > 0 && ((guchar)v[len] & 0xc0) == 0x80)
				len--;
		}
		msg->auto_kind = kind;
		msg->auto_reason = g_strdup_printf("%s: %.*s", auto_rules[i].header, (int)len, v);
		return;
	}
}

/* Returns: (nullable): the charset= of the first text leaf (text/anything) under @obj
 * (not inside an attached message), or NULL when that leaf declares none
 * or there is no text leaf.  Stops at the first text leaf. */
static const char *
first_text_charset(GMimeObject *obj, guint depth, gboolean *found)
{
	if (depth > PARSE_MAX_DEPTH)
		return NULL;
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);

		for (int i = 0; i < n && !*found; i++) {
			const char *cs = first_text_charset(g_mime_multipart_get_part(mp, i), depth + 1, found);

			if (*found)
				return cs;
		}
		return NULL;
	}
	if (GMIME_IS_PART(obj)) {
		GMimeContentType *ct = g_mime_object_get_content_type(obj);

		if (ct != NULL && g_mime_content_type_is_type(ct, "text", "*")) {
			*found = TRUE;
			return g_mime_content_type_get_parameter(ct, "charset");
		}
	}
	return NULL;
}

/* Returns: TRUE when a top-level header of @message holds 8-bit bytes
 * that are not UTF-8 (and so were read with the fallback charsets). */
static gboolean
headers_have_raw_8bit(GMimeMessage *message)
{
	GMimeHeaderList *headers = g_mime_object_get_header_list(GMIME_OBJECT(message));
	int n = g_mime_header_list_get_count(headers);

	for (int i = 0; i < n; i++) {
		const char *raw = g_mime_header_get_raw_value(g_mime_header_list_get_header_at(headers, i));

		if (raw != NULL && !g_utf8_validate(raw, -1, NULL))
			return TRUE;
	}
	return FALSE;
}

/* Returns: (transfer full) (nullable): parser options whose fallback
 * charsets put @charset, the one @message declares for its text, right
 * after UTF-8 and before the configured fallbacks, or NULL when they would
 * change nothing: no raw 8-bit header, no usable declared charset.  This
 * is what mail clients do with raw 8-bit headers (a GB2312 mail with a raw
 * GB2312 Subject:, say). */
static GMimeParserOptions *
header_options_for_body_charset(ParseCtx *ctx, GMimeMessage *message)
{
	GMimeObject *body = g_mime_message_get_mime_part(message);
	const char *const *fallbacks = g_mime_parser_options_get_fallback_charsets(ctx->gopts);
	g_autoptr(GPtrArray) list = NULL;
	GMimeParserOptions *gopts;
	gboolean found = FALSE;
	const char *charset;
	iconv_t cd;

	charset = body != NULL ? first_text_charset(body, 0, &found) : NULL;
	if (charset == NULL || charset_is_utf8(charset) || charset_is_ascii(charset) ||
	    !headers_have_raw_8bit(message))
		return NULL;
	if ((cd = g_mime_iconv_open("UTF-8", charset)) == (iconv_t)-1)
		return NULL;
	g_mime_iconv_close(cd);
	list = g_ptr_array_new();
	g_ptr_array_add(list, (gpointer) "utf-8");
	g_ptr_array_add(list, (gpointer)charset);
	for (guint i = 0; fallbacks[i] != NULL; i++)
		if (!charset_is_utf8(fallbacks[i]) && g_ascii_strcasecmp(fallbacks[i], charset) != 0)
			g_ptr_array_add(list, (gpointer)fallbacks[i]);
	g_ptr_array_add(list, NULL);
	gopts = g_mime_parser_options_new();
	/* GMime copies the list. */
	g_mime_parser_options_set_fallback_charsets(gopts, (const char **)list->pdata);
	return gopts;
}

/* Returns: (transfer full) (nullable): the header block of the message
 * just parsed from @stream by @parser, parsed again with @gopts. */
static GMimeMessage *
headers_reparse(GMimeStream *stream, GMimeParser *parser, GMimeParserOptions *gopts)
{
	gint64 end = g_mime_parser_get_headers_end(parser);
	g_autoptr(GMimeStream) sub = NULL;
	g_autoptr(GMimeParser) again = NULL;

	if (end <= 0)
		return NULL;
	sub = g_mime_stream_substream(stream, 0, end);
	again = g_mime_parser_new_with_stream(sub);
	return g_mime_parser_construct_message(again, gopts);
}

static void
parse_stream(ParseCtx *ctx, GMimeStream *stream)
{
	g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(stream);
	g_autoptr(GMimeMessage) message = g_mime_parser_construct_message(parser, ctx->gopts);
	g_autoptr(GMimeParserOptions) header_gopts = NULL;
	g_autoptr(GMimeMessage) headers = NULL;
	GMimeObject *body;

	if (message == NULL ||
	    g_mime_header_list_get_count(g_mime_object_get_header_list(GMIME_OBJECT(message))) == 0) {
		ctx->failed = TRUE;
		mr_parse_note(&ctx->problems, "not a message: no header block");
		return;
	}
	/* Raw 8-bit headers: read them again, in the charset the message
	 * declares for its text first.  Only the header block is parsed
	 * again; GMime's headers keep a pointer to the options they were
	 * parsed with, so @header_gopts lives as long as @headers. */
	if ((header_gopts = header_options_for_body_charset(ctx, message)) != NULL)
		headers = headers_reparse(stream, parser, header_gopts);
	if (headers != NULL) {
		GMimeParserOptions *saved = ctx->gopts;

		ctx->gopts = header_gopts;
		parse_envelope(ctx, headers);
		ctx->gopts = saved;
	} else {
		parse_envelope(ctx, message);
	}
	if ((body = g_mime_message_get_mime_part(message)) != NULL)
		parse_walk(ctx, body, 0, FALSE);
	parse_body(ctx);
	parse_forward(ctx);
	parse_auto(ctx, message);
}

static void
parse_stream_cb(GMimeStream *stream, gpointer user_data)
{
	parse_stream(user_data, stream);
}

/* Parses @len bytes at @data without copying them; or, when a header
 * field is cut short, a copy without the cut bytes.  Only as much as the
 * limits allow is parsed (see mr_parse_limits_scan()). */
static void
parse_bytes(ParseCtx *ctx, const guint8 *data, gsize len)
{
	if (len > G_MAXUINT) {
		ctx->failed = TRUE;
		mr_parse_note(&ctx->problems, "message of %" G_GSIZE_FORMAT " bytes is too large", len);
		return;
	}
	mr_parse_limited(data, len, ctx->limits, &ctx->problems, parse_stream_cb, ctx);
}

/* Returns: the number of spaces and tabs that begin @data, when a
 * header-like character follows them on the same line; else 0 (a line of
 * white space alone is an empty header block, not a stray indent). */
static gsize
parse_leading_blanks(const guint8 *data, gsize len)
{
	gsize n = 0;

	while (n < len && (data[n] == ' ' || data[n] == '\t'))
		n++;
	if (n == len || data[n] == '\r' || data[n] == '\n')
		return 0;
	return n;
}

static MrMessage *
message_new(void)
{
	MrMessage *msg = g_new0(MrMessage, 1);

	msg->to = g_ptr_array_new_with_free_func((GDestroyNotify)mr_address_free);
	msg->cc = g_ptr_array_new_with_free_func((GDestroyNotify)mr_address_free);
	msg->references = g_ptr_array_new_with_free_func(g_free);
	msg->auth_results = g_ptr_array_new_with_free_func(g_free);
	msg->headers = g_ptr_array_new_with_free_func((GDestroyNotify)header_free);
	msg->attachments = g_ptr_array_new_with_free_func((GDestroyNotify)mr_attachment_free);
	return msg;
}

/* Returns: @opts (nullable) with every limit that is 0 set to its
 * default. */
static MrParseOptions
parse_limits(const MrParseOptions *opts)
{
	MrParseOptions limits = { 0 };

	if (opts != NULL)
		limits = *opts;
	if (limits.max_mime_parts == 0)
		limits.max_mime_parts = MR_PARSE_DEFAULT_MAX_MIME_PARTS;
	if (limits.max_header_lines == 0)
		limits.max_header_lines = MR_PARSE_DEFAULT_MAX_HEADER_LINES;
	if (limits.max_addresses == 0)
		limits.max_addresses = MR_PARSE_DEFAULT_MAX_ADDRESSES;
	if (limits.max_references == 0)
		limits.max_references = MR_PARSE_DEFAULT_MAX_REFERENCES;
	if (limits.max_header_size == 0)
		limits.max_header_size = MR_PARSE_DEFAULT_MAX_HEADER_SIZE;
	return limits;
}

MrMessage *
mr_parse_message(GBytes *raw, const MrParseOptions *opts)
{
	g_autoptr(GMimeParserOptions) gopts = NULL;
	MrParseOptions limits = parse_limits(opts);
	ParseCtx ctx = { .limits = &limits };
	const guint8 *data;
	const guint8 *nul;
	gsize len = 0;
	gsize skip;

	g_return_val_if_fail(raw != NULL, NULL);

	mr_parse_init();
	ctx.msg = message_new();
	/* An empty GBytes may hold a NULL pointer: no arithmetic on it. */
	data = g_bytes_get_data(raw, &len);
	if (data == NULL)
		len = 0;
	if (len > 0) {
		skip = mr_parse_skip_mbox_from(data, len);
		data += skip;
		len -= skip;
	}
	/* A stray blank before the first header would make GMime read the
	 * whole header block as body: read it as if the blank were not there
	 * (as other MIME libraries do), and say so. */
	if (len > 0 && (skip = parse_leading_blanks(data, len)) > 0) {
		mr_parse_note(&ctx.problems, "header block begins with white space (%" G_GSIZE_FORMAT " bytes skipped)",
			      skip);
		data += skip;
		len -= skip;
	}

	if (len == 0) {
		ctx.failed = TRUE;
		mr_parse_note(&ctx.problems, "empty message");
	} else {
		gopts = g_mime_parser_options_new();
		g_mime_parser_options_set_fallback_charsets(
			gopts, (const char **)(opts != NULL && opts->fallback_charsets != NULL
						       ? opts->fallback_charsets
						       : parse_default_charsets));
		g_mime_parser_options_set_warning_callback(gopts, parse_warning, &ctx);
		ctx.gopts = gopts;
		/* GMime reads header values as C strings: a NUL cuts them. */
		if ((nul = memchr(data, '\0', len)) != NULL)
			mr_parse_note(&ctx.problems, "NUL byte at byte %" G_GSIZE_FORMAT, (gsize)(nul - data));
		parse_bytes(&ctx, data, len);
	}

	if (ctx.msg->subject == NULL)
		ctx.msg->subject = g_strdup("");
	if (ctx.msg->subject_normalised == NULL)
		ctx.msg->subject_normalised = g_strdup("");
	if (ctx.msg->body_text == NULL)
		ctx.msg->body_text = g_strdup("");
	ctx.msg->status = ctx.failed ? MR_PARSE_FAILED : ctx.problems != NULL ? MR_PARSE_DEGRADED : MR_PARSE_OK;
	if (ctx.problems != NULL)
		ctx.msg->problem = g_string_free(g_steal_pointer(&ctx.problems), FALSE);
	return ctx.msg;
}
