/* mr-compose.c - one outgoing mail made into bytes with GMime (see
 * mr-compose.h).
 *
 * Act layer, pure.  What comes from outside (names, subject, body, ids,
 * extra headers) is checked or made one line here, before GMime sees it:
 * GMime encodes a CR LF in a name as an encoded word, but nothing it is
 * given should need that.  GMime then encodes and folds, and writes CRLF. */
#include <gmime/gmime.h>
#include <string.h>
#include <sys/random.h>

#include "mailroom/mr-autocleanups.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-compose.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-template.h"
#include "mailroom/mr-text.h"

G_DEFINE_QUARK(mr-compose-error-quark, mr_compose_error)

/* The extra headers refused: mr_compose() writes them, or they are
 * recipients or MIME structure, which are not extras. */
static const char *const reserved_headers[] = {
	"From", "To", "Cc", "Bcc", "Sender", "Return-Path", "Subject", "Date", "Message-Id",
	"In-Reply-To", "References", "MIME-Version", "Auto-Submitted", "X-Auto-Response-Suppress",
	NULL,
};

/* The characters an address may not hold, beside white space, controls
 * and non-ASCII: they would make it a display name, a group, a comment, a
 * quoted string or a domain literal. */
#define ADDRESS_SPECIALS "<>()[],;:\\\""

/* Checks that @email is one plain mailbox, local@domain, that GMime reads
 * back as itself. */
static gboolean
address_check(const char *what, const char *email, GError **error)
{
	g_autoptr(InternetAddressList) list = NULL;
	g_autofree char *text = NULL;
	const char *at;
	InternetAddress *addr;

	if (email == NULL || *email == '\0') {
		g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_ADDRESS, "no %s address", what);
		return FALSE;
	}
	text = mr_text_shown(email, 80);
	for (const char *p = email; *p != '\0'; p++) {
		if ((guchar)*p <= ' ' || (guchar)*p >= 0x7f || strchr(ADDRESS_SPECIALS, *p) != NULL) {
			g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_ADDRESS,
				    "%s address %s: only printable ASCII without spaces and %s", what,
				    text, ADDRESS_SPECIALS);
			return FALSE;
		}
	}
	at = strchr(email, '@');
	if (at == NULL || at == email || at[1] == '\0' || strchr(at + 1, '@') != NULL) {
		g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_ADDRESS,
			    "%s address %s: not local@domain", what, text);
		return FALSE;
	}
	list = internet_address_list_parse(NULL, email);
	addr = list != NULL && internet_address_list_length(list) == 1
		       ? internet_address_list_get_address(list, 0)
		       : NULL;
	if (addr == NULL || !INTERNET_ADDRESS_IS_MAILBOX(addr) ||
	    g_strcmp0(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(addr)), email) != 0) {
		g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_ADDRESS,
			    "%s address %s: not one mailbox", what, text);
		return FALSE;
	}
	return TRUE;
}

/* A message id without <>: printable ASCII but '<' and '>', bounded. */
static gboolean
id_usable(const char *id)
{
	gsize len = 0;

	if (id == NULL || *id == '\0')
		return FALSE;
	for (const char *p = id; *p != '\0'; p++, len++) {
		if ((guchar)*p <= ' ' || (guchar)*p >= 0x7f || *p == '<' || *p == '>' ||
		    len >= MR_COMPOSE_MAX_ID_LEN)
			return FALSE;
	}
	return TRUE;
}

/* A host name: labels of letters, digits and '-', joined by '.'. */
static gboolean
domain_usable(const char *domain)
{
	gsize label = 0;
	gsize len = 0;

	if (domain == NULL)
		return FALSE;
	for (const char *p = domain; *p != '\0'; p++, len++) {
		if (*p == '.') {
			if (label == 0)
				return FALSE;
			label = 0;
		} else if (g_ascii_isalnum(*p) || *p == '-') {
			label++;
		} else {
			return FALSE;
		}
	}
	return label > 0 && len <= 253;
}

/* Appends @n in base 32 (digits, then a to v). */
static void
append_base32(GString *s, guint64 n)
{
	char buf[16];
	int i = (int)sizeof(buf);

	do {
		buf[--i] = "0123456789abcdefghijklmnopqrstuv"[n & 31];
		n >>= 5;
	} while (n != 0);
	g_string_append_len(s, buf + i, (gssize)sizeof(buf) - i);
}

char *
mr_compose_message_id(const char *domain)
{
	guint8 rnd[16];
	GString *id;

	if (!domain_usable(domain))
		return NULL;
	/* getrandom() of 16 bytes does not return short once the pool is
	 * ready; GLib's generator (seeded from /dev/urandom) covers the rest,
	 * should it ever fail. */
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		for (gsize i = 0; i < sizeof(rnd); i++)
			rnd[i] = (guint8)g_random_int_range(0, 256);
	}
	id = g_string_sized_new(64);
	append_base32(id, (guint64)mr_clock_now_us());
	g_string_append_c(id, '.');
	for (gsize i = 0; i < sizeof(rnd); i++)
		g_string_append_printf(id, "%02x", rnd[i]);
	g_string_append_printf(id, "@%s", domain);
	return g_string_free(id, FALSE);
}

/* Whether @strv holds @s, ASCII case aside (header names). */
static gboolean
strv_has_ascii_case(const char *const *strv, const char *s)
{
	for (guint i = 0; strv[i] != NULL; i++) {
		if (g_ascii_strcasecmp(strv[i], s) == 0)
			return TRUE;
	}
	return FALSE;
}

/* Checks an extra header, "Name: value", and adds it to @obj. */
static gboolean
extra_header_add(GMimeObject *obj, const char *header, GError **error)
{
	g_autofree char *text = mr_text_shown(header, 80);
	g_autofree char *name = NULL;
	const char *colon = strchr(header, ':');
	const char *value;

	if (colon == NULL || colon == header) {
		g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_HEADER,
			    "extra header %s: not \"Name: value\"", text);
		return FALSE;
	}
	name = g_strndup(header, (gsize)(colon - header));
	/* RFC 7230 tchar */
	for (const char *p = name; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL) {
			g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_HEADER,
				    "extra header %s: a name of letters, digits and !#$%%&'*+-.^_`|~",
				    text);
			return FALSE;
		}
	}
	if (strv_has_ascii_case(reserved_headers, name) ||
	    g_ascii_strncasecmp(name, "Content-", 8) == 0) {
		g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_HEADER,
			    "extra header %s: mailroom writes %s itself", text, name);
		return FALSE;
	}
	value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	if (!g_utf8_validate(value, -1, NULL)) {
		g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_HEADER,
			    "extra header %s: not UTF-8", text);
		return FALSE;
	}
	for (const char *p = value; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if ((c < 0x20 && c != '\t') || c == 0x7f || (c >= 0x80 && c <= 0x9f)) {
			g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_HEADER,
				    "extra header %s: a value of one line without control characters",
				    text);
			return FALSE;
		}
	}
	g_mime_object_append_header(obj, name, value, "utf-8");
	return TRUE;
}

/* Adds a mailbox, its name made one line ("" is none). */
static void
mailbox_add(GMimeMessage *msg, GMimeAddressType type, const char *name, const char *email)
{
	g_autofree char *clean = mr_template_clean(name, TRUE, G_MAXSIZE, NULL);

	g_mime_message_add_mailbox(msg, type, *clean != '\0' ? clean : NULL, email);
}

/* Sets In-Reply-To and References. */
static void
threading_set(GMimeObject *obj, const MrComposeSpec *spec)
{
	g_autoptr(GPtrArray) ids = g_ptr_array_new();
	g_autoptr(GString) refs = g_string_new(NULL);
	const char *irt = id_usable(spec->in_reply_to) ? spec->in_reply_to : NULL;

	for (guint i = 0; spec->references != NULL && spec->references[i] != NULL; i++) {
		if (id_usable(spec->references[i]))
			g_ptr_array_add(ids, (gpointer)spec->references[i]);
	}
	if (irt != NULL) {
		g_autofree char *bracketed = g_strdup_printf("<%s>", irt);

		g_mime_object_set_header(obj, "In-Reply-To", bracketed, NULL);
		if (ids->len == 0 || strcmp(g_ptr_array_index(ids, ids->len - 1), irt) != 0)
			g_ptr_array_add(ids, (gpointer)irt);
	}
	/* the first id, then the last MR_COMPOSE_REFERENCES_TAIL */
	if (ids->len > 1 + MR_COMPOSE_REFERENCES_TAIL)
		g_ptr_array_remove_range(ids, 1, ids->len - 1 - MR_COMPOSE_REFERENCES_TAIL);
	for (guint i = 0; i < ids->len; i++)
		g_string_append_printf(refs, "%s<%s>", i > 0 ? " " : "",
				       (const char *)g_ptr_array_index(ids, i));
	if (refs->len > 0)
		g_mime_object_set_header(obj, "References", refs->str, NULL);
}

/* Returns: (transfer full): the text/plain part of @body, UTF-8, encoded
 * as GMime finds best for a 7-bit path. */
static GMimeTextPart *
body_part(const char *body)
{
	GMimeTextPart *part = g_mime_text_part_new_with_subtype("plain");
	g_autofree char *text = mr_template_clean(body, FALSE, G_MAXSIZE, NULL);
	gsize len = strlen(text);
	g_autoptr(GMimeStream) stream = g_mime_stream_mem_new_with_buffer(text, len);
	g_autoptr(GMimeDataWrapper) content =
		g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
	GMimeContentEncoding encoding;

	/* not g_mime_text_part_set_text(): it labels text that Latin-1 can
	 * hold iso-8859-1 and converts it */
	g_mime_part_set_content(GMIME_PART(part), content);
	g_mime_text_part_set_charset(part, "utf-8");
	encoding = g_mime_part_get_best_content_encoding(GMIME_PART(part),
							GMIME_ENCODING_CONSTRAINT_7BIT);
	/* GMime answers DEFAULT for text that 7bit carries; say so */
	g_mime_part_set_content_encoding(GMIME_PART(part), encoding == GMIME_CONTENT_ENCODING_DEFAULT
								   ? GMIME_CONTENT_ENCODING_7BIT
								   : encoding);
	return part;
}

gboolean
mr_compose(const MrComposeSpec *spec, MrComposed *out, GError **error)
{
	g_autoptr(GMimeMessage) msg = NULL;
	g_autoptr(GMimeTextPart) part = NULL;
	g_autoptr(GMimeFormatOptions) format = NULL;
	g_autoptr(GMimeStream) stream = NULL;
	g_autoptr(GDateTime) date = NULL;
	g_autofree char *id = NULL;
	g_autofree char *subject = NULL;
	GByteArray *bytes;

	g_return_val_if_fail(spec != NULL && out != NULL, FALSE);
	*out = (MrComposed){ 0 };
	mr_parse_init();
	if (!address_check("From", spec->from_email, error) ||
	    !address_check("To", spec->to_email, error))
		return FALSE;
	if (spec->message_id != NULL) {
		if (!id_usable(spec->message_id)) {
			g_autofree char *text = mr_text_shown(spec->message_id, 80);

			g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_FIELD,
				    "message id %s: not printable ASCII without <>", text);
			return FALSE;
		}
		id = g_strdup(spec->message_id);
	} else if ((id = mr_compose_message_id(spec->message_id_domain)) == NULL) {
		g_autofree char *text = mr_text_shown(spec->message_id_domain, 80);

		g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_FIELD,
			    "message id domain '%s': not a host name", text);
		return FALSE;
	}
	date = g_date_time_new_from_unix_utc(spec->date_us / G_USEC_PER_SEC);
	if (date == NULL) {
		g_set_error(error, MR_COMPOSE_ERROR, MR_COMPOSE_ERROR_FIELD,
			    "date %" G_GINT64_FORMAT " us: out of range", spec->date_us);
		return FALSE;
	}

	msg = g_mime_message_new(TRUE);
	g_mime_message_set_date(msg, date);
	mailbox_add(msg, GMIME_ADDRESS_TYPE_FROM, spec->from_name, spec->from_email);
	mailbox_add(msg, GMIME_ADDRESS_TYPE_TO, spec->to_name, spec->to_email);
	subject = mr_template_clean(spec->subject, TRUE, G_MAXSIZE, NULL);
	g_mime_message_set_subject(msg, subject, "utf-8");
	g_mime_message_set_message_id(msg, id);
	threading_set(GMIME_OBJECT(msg), spec);
	if (spec->kind != MR_COMPOSE_PERSON) {
		g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted",
					 spec->kind == MR_COMPOSE_AUTO_REPLIED ? "auto-replied"
									       : "auto-generated",
					 NULL);
		/* Exchange and Outlook send no out-of-office or other
		 * automatic answer to it */
		g_mime_object_set_header(GMIME_OBJECT(msg), "X-Auto-Response-Suppress", "All", NULL);
	}
	for (guint i = 0; spec->extra_headers != NULL && spec->extra_headers[i] != NULL; i++) {
		if (!extra_header_add(GMIME_OBJECT(msg), spec->extra_headers[i], error))
			return FALSE;
	}
	part = body_part(spec->body);
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(part));

	format = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(format, GMIME_NEWLINE_FORMAT_DOS);
	bytes = g_byte_array_new();
	stream = g_mime_stream_mem_new_with_byte_array(bytes);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
	g_mime_object_write_to_stream(GMIME_OBJECT(msg), format, stream);
	out->raw = g_byte_array_free_to_bytes(bytes);
	out->message_id = g_steal_pointer(&id);
	return TRUE;
}

void
mr_composed_clear(MrComposed *c)
{
	if (c == NULL)
		return;
	g_clear_pointer(&c->raw, g_bytes_unref);
	g_clear_pointer(&c->message_id, g_free);
}
