/* test-compose.c - outgoing mail made into bytes (mr-compose.h).
 *
 * Every mail made here passes mail_check(): CRLF line ends only, no line
 * over 998 octets, 7-bit, one header each of Date, From, To, Subject,
 * Message-Id and MIME-Version and no Bcc, by a naive line scan and by
 * GMime's parser, and one text/plain part.  Content is checked by parsing
 * the mail back with mr_parse_message(), as mailroom reads incoming mail. */
#include <gmime/gmime.h>
#include <string.h>

#include "mailroom/mr-autocleanups.h"
#include "mailroom/mr-compose.h"
#include "mailroom/mr-parse.h"

/* 2023-11-14 22:13:20 UTC */
#define DATE_S G_GINT64_CONSTANT(1700000000)

static MrComposeSpec
spec_base(void)
{
	return (MrComposeSpec){
		.from_name = "ACME Support",
		.from_email = "support@acme.test",
		.to_name = "Carl Customer",
		.to_email = "carl@customer.test",
		.subject = "[TKT-3] Re: Printer on fire",
		.body = "Hello,\n\nan agent will answer.\n",
		.message_id_domain = "acme.test",
		.date_us = DATE_S * G_USEC_PER_SEC + 123456,
		.kind = MR_COMPOSE_AUTO_REPLIED,
	};
}

/* Returns the number of header lines of @raw's top-level header that
 * start with @name ("To:"), case-insensitively: the scan of a naive
 * reader, which sees a folded line's continuation as no header. */
static guint
header_count(const char *raw, const char *name)
{
	guint n = 0;
	gsize len = strlen(name);

	for (const char *line = raw; *line != '\0' && !g_str_has_prefix(line, "\r\n");) {
		const char *end = strstr(line, "\r\n");

		if (g_ascii_strncasecmp(line, name, len) == 0)
			n++;
		if (end == NULL)
			break;
		line = end + 2;
	}
	return n;
}

/* Returns: (transfer full): the unfolded value of header @name. */
static char *
header_value(const char *raw, const char *name)
{
	g_autofree char *prefix = g_strdup_printf("\r\n%s: ", name);
	const char *start = g_strstr_len(raw, -1, prefix);
	GString *value = g_string_new(NULL);

	g_assert_nonnull(start);
	for (const char *p = start + strlen(prefix); *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t'))
			p++;
		else if (p[0] == '\r')
			break;
		else
			g_string_append_c(value, *p);
	}
	return g_string_free(value, FALSE);
}

/* The invariants of every mail made; returns the text of @c->raw. */
static char *
mail_check(const MrComposed *c)
{
	gsize len;
	const char *bytes = g_bytes_get_data(c->raw, &len);
	g_autofree char *data = g_strndup(bytes, len);
	g_autoptr(GMimeStream) stream = g_mime_stream_mem_new_with_buffer(data, len);
	g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(stream);
	g_autoptr(GMimeMessage) msg = g_mime_parser_construct_message(parser, NULL);
	GMimeHeaderList *headers;
	gsize line = 0;
	g_autofree char *want_id = g_strdup_printf("<%s>", c->message_id);

	g_assert_null(memchr(bytes, '\0', len));
	for (gsize i = 0; i < len; i++) {
		g_assert_cmpuint((guchar)data[i], <, 0x80);
		if (data[i] == '\n') {
			g_assert_true(i > 0 && data[i - 1] == '\r');
			line = 0;
		} else if (data[i] == '\r') {
			g_assert_true(i + 1 < len && data[i + 1] == '\n');
		} else {
			line++;
			g_assert_cmpuint(line, <=, 998);
		}
	}
	g_assert_true(len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n');
	g_assert_cmpuint(header_count(data, "Date:"), ==, 1);
	g_assert_cmpuint(header_count(data, "From:"), ==, 1);
	g_assert_cmpuint(header_count(data, "To:"), ==, 1);
	g_assert_cmpuint(header_count(data, "Subject:"), ==, 1);
	g_assert_cmpuint(header_count(data, "Message-Id:"), ==, 1);
	g_assert_cmpuint(header_count(data, "MIME-Version: 1.0\r\n"), ==, 1);
	g_assert_cmpuint(header_count(data, "Content-Type: text/plain; charset=utf-8\r\n"), ==, 1);
	g_assert_cmpuint(header_count(data, "Content-Transfer-Encoding:"), ==, 1);
	g_assert_cmpuint(header_count(data, "Bcc:"), ==, 0);
	g_assert_cmpuint(header_count(data, "Cc:"), ==, 0);
	g_assert_cmpuint(header_count(data, "Precedence:"), ==, 0);

	g_assert_nonnull(msg);
	headers = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	g_assert_false(g_mime_header_list_contains(headers, "Bcc"));
	g_assert_false(g_mime_header_list_contains(headers, "Cc"));
	g_assert_cmpint(internet_address_list_length(g_mime_message_get_to(msg)), ==, 1);
	g_assert_cmpint(internet_address_list_length(g_mime_message_get_from(msg)), ==, 1);
	g_assert_cmpint(internet_address_list_length(g_mime_message_get_bcc(msg)), ==, 0);
	g_assert_cmpint(internet_address_list_length(g_mime_message_get_cc(msg)), ==, 0);
	g_assert_true(GMIME_IS_TEXT_PART(g_mime_message_get_mime_part(msg)));
	g_assert_cmpstr(g_mime_object_get_header(GMIME_OBJECT(msg), "Message-Id"), ==, want_id);
	return g_steal_pointer(&data);
}

/* One mail at a time: the spec, what mr_compose() made of it, its text and
 * its parse. */
typedef struct {
	MrComposeSpec spec;
	MrComposed c;
	char *raw;
	MrMessage *m;
} Mail;

#define TO(f) ((MrAddress *)(f)->m->to->pdata[0])

static void
mail_setup(Mail *f, gconstpointer data)
{
	*f = (Mail){ .spec = spec_base() };
}

static void
mail_teardown(Mail *f, gconstpointer data)
{
	mr_composed_clear(&f->c);
	g_clear_pointer(&f->raw, g_free);
	g_clear_pointer(&f->m, mr_message_free);
}

/* Makes f->spec into a mail, checks it (mail_check()) and parses it back
 * with mr_parse_message(), as mailroom reads incoming mail. */
static void
mail_make(Mail *f)
{
	g_autoptr(GError) error = NULL;

	mail_teardown(f, NULL);
	g_assert_true(mr_compose(&f->spec, &f->c, &error));
	g_assert_no_error(error);
	g_assert_nonnull(f->c.message_id);
	f->raw = mail_check(&f->c);
	f->m = mr_parse_message(f->c.raw, NULL);
	g_assert_cmpint(f->m->status, ==, MR_PARSE_OK);
}

/* Asserts that f->spec is refused with @code; returns the error. */
static GError *
mail_refused(Mail *f, gint code)
{
	GError *error = NULL;

	mail_teardown(f, NULL);
	g_assert_false(mr_compose(&f->spec, &f->c, &error));
	g_assert_error(error, MR_COMPOSE_ERROR, code);
	g_assert_null(f->c.raw);
	g_assert_null(f->c.message_id);
	return error;
}

static void
test_ascii(Mail *f, gconstpointer data)
{
	f->spec.kind = MR_COMPOSE_PERSON;
	mail_make(f);
	g_assert_nonnull(strstr(f->raw, "\r\nFrom: ACME Support <support@acme.test>\r\n"));
	g_assert_nonnull(strstr(f->raw, "\r\nTo: Carl Customer <carl@customer.test>\r\n"));
	g_assert_nonnull(strstr(f->raw, "\r\nSubject: [TKT-3] Re: Printer on fire\r\n"));
	g_assert_true(g_str_has_prefix(f->raw, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	g_assert_nonnull(strstr(f->raw, "\r\nContent-Transfer-Encoding: 7bit\r\n"));
	g_assert_true(g_str_has_suffix(f->raw, "\r\n\r\nHello,\r\n\r\nan agent will answer.\r\n"));
	g_assert_cmpuint(header_count(f->raw, "Auto-Submitted:"), ==, 0);
	g_assert_cmpuint(header_count(f->raw, "X-Auto-Response-Suppress:"), ==, 0);
	g_assert_cmpuint(header_count(f->raw, "In-Reply-To:"), ==, 0);
	g_assert_cmpuint(header_count(f->raw, "References:"), ==, 0);

	g_assert_cmpstr(f->m->subject, ==, f->spec.subject);
	g_assert_cmpstr(f->m->from->name, ==, "ACME Support");
	g_assert_cmpstr(f->m->from->email, ==, "support@acme.test");
	g_assert_cmpuint(f->m->to->len, ==, 1);
	g_assert_cmpstr(TO(f)->name, ==, "Carl Customer");
	g_assert_cmpstr(TO(f)->email, ==, "carl@customer.test");
	g_assert_cmpstr(f->m->body_text, ==, f->spec.body);
	g_assert_cmpstr(f->m->message_id, ==, f->c.message_id);
	g_assert_cmpint(f->m->date, ==, DATE_S);
	g_assert_cmpint(f->m->auto_kind, ==, MR_AUTO_NONE);
	mr_composed_clear(&f->c);
	mr_composed_clear(&f->c);
	g_assert_null(f->c.raw);
	g_assert_null(f->c.message_id);
}

/* No names, no subject, no body: still a mail. */
static void
test_minimal(Mail *f, gconstpointer data)
{
	f->spec.from_name = NULL;
	f->spec.to_name = "  ";
	f->spec.subject = NULL;
	f->spec.body = NULL;
	mail_make(f);
	g_assert_nonnull(strstr(f->raw, "\r\nFrom: support@acme.test\r\n"));
	g_assert_nonnull(strstr(f->raw, "\r\nTo: carl@customer.test\r\n"));
	g_assert_cmpstr(f->m->subject, ==, "");
	g_assert_cmpstr(f->m->body_text, ==, "");
}

static void
test_utf8(Mail *f, gconstpointer data)
{
	f->spec.from_name = "Support — ACME Größe";
	f->spec.to_name = "Zoë \"Z\" Ωmega, 山田太郎 🙂";
	f->spec.subject = "[TKT-3] Re: Grüße aus Köln — 見積書の送付について 🎫";
	f->spec.body = "Hallo Zoë,\n\nwir melden uns. Ωμέγα — 見積書\n";
	mail_make(f);
	/* encoded: the raw mail is 7-bit (mail_check) */
	g_assert_null(strstr(f->raw, "\r\nContent-Transfer-Encoding: 7bit\r\n"));
	g_assert_cmpstr(f->m->subject, ==, f->spec.subject);
	g_assert_cmpstr(f->m->from->name, ==, f->spec.from_name);
	g_assert_cmpuint(f->m->to->len, ==, 1);
	g_assert_cmpstr(TO(f)->name, ==, f->spec.to_name);
	g_assert_cmpstr(TO(f)->email, ==, "carl@customer.test");
	g_assert_cmpstr(f->m->body_text, ==, f->spec.body);
}

static void
assert_references(Mail *f, const char *want)
{
	g_autofree char *value = header_value(f->raw, "References");

	g_assert_cmpstr(value, ==, want);
}

static void
test_threading(Mail *f, gconstpointer data)
{
	static const char *const refs[] = { "first@x.test", "second@x.test", NULL };
	static const char *const refs_last[] = { "first@x.test", "answered@x.test", NULL };
	static const char *const refs_bad[] = { "", "a b@x", "<c@x>", "ok@x.test", "\xc3\xa4@x",
						 NULL };

	f->spec.in_reply_to = "answered@x.test";
	f->spec.references = refs;
	mail_make(f);
	g_assert_nonnull(strstr(f->raw, "\r\nIn-Reply-To: <answered@x.test>\r\n"));
	g_assert_cmpstr(f->m->in_reply_to, ==, "answered@x.test");
	g_assert_cmpuint(f->m->references->len, ==, 3);
	g_assert_cmpstr(f->m->references->pdata[0], ==, "first@x.test");
	g_assert_cmpstr(f->m->references->pdata[1], ==, "second@x.test");
	g_assert_cmpstr(f->m->references->pdata[2], ==, "answered@x.test");

	/* the answered id already last: not twice */
	f->spec.references = refs_last;
	mail_make(f);
	assert_references(f, "<first@x.test> <answered@x.test>");

	/* no answered id: References alone */
	f->spec.in_reply_to = NULL;
	f->spec.references = refs;
	mail_make(f);
	g_assert_cmpuint(header_count(f->raw, "In-Reply-To:"), ==, 0);
	assert_references(f, "<first@x.test> <second@x.test>");

	/* unusable ids are left out, the mail still goes */
	f->spec.in_reply_to = "bad id\r\nBcc: v@x.test";
	f->spec.references = refs_bad;
	mail_make(f);
	g_assert_cmpuint(header_count(f->raw, "In-Reply-To:"), ==, 0);
	assert_references(f, "<ok@x.test>");
}

/* 40 references and the answered id: the first and the last 20 stay. */
static void
test_references_bound(Mail *f, gconstpointer data)
{
	g_autoptr(GPtrArray) refs = g_ptr_array_new_with_free_func(g_free);

	for (int i = 0; i < 40; i++)
		g_ptr_array_add(refs, g_strdup_printf("id%02d.a-rather-long-message-id@mail.x.test", i));
	g_ptr_array_add(refs, NULL);
	f->spec.references = (const char *const *)refs->pdata;
	f->spec.in_reply_to = "answered@x.test";
	mail_make(f);
	g_assert_cmpuint(f->m->references->len, ==, 1 + MR_COMPOSE_REFERENCES_TAIL);
	g_assert_cmpstr(f->m->references->pdata[0], ==, "id00.a-rather-long-message-id@mail.x.test");
	g_assert_cmpstr(f->m->references->pdata[1], ==, "id21.a-rather-long-message-id@mail.x.test");
	g_assert_cmpstr(f->m->references->pdata[19], ==, "id39.a-rather-long-message-id@mail.x.test");
	g_assert_cmpstr(f->m->references->pdata[20], ==, "answered@x.test");
}

static void
test_auto(Mail *f, gconstpointer data)
{
	static const struct {
		MrComposeKind kind;
		const char *auto_submitted;
		MrAutoKind parsed;
	} kinds[] = {
		{ MR_COMPOSE_PERSON, NULL, MR_AUTO_NONE },
		{ MR_COMPOSE_AUTO_REPLIED, "auto-replied", MR_AUTO_REPLY },
		{ MR_COMPOSE_AUTO_GENERATED, "auto-generated", MR_AUTO_BULK },
	};

	for (guint i = 0; i < G_N_ELEMENTS(kinds); i++) {
		f->spec.kind = kinds[i].kind;
		mail_make(f);
		if (kinds[i].auto_submitted == NULL) {
			g_assert_cmpuint(header_count(f->raw, "Auto-Submitted:"), ==, 0);
			g_assert_cmpuint(header_count(f->raw, "X-Auto-Response-Suppress:"), ==, 0);
		} else {
			g_autofree char *value = header_value(f->raw, "Auto-Submitted");

			g_assert_cmpstr(value, ==, kinds[i].auto_submitted);
			g_assert_cmpuint(header_count(f->raw, "X-Auto-Response-Suppress: All\r\n"), ==, 1);
		}
		g_assert_cmpint(f->m->auto_kind, ==, kinds[i].parsed);
	}
}

/* Names and a subject that try to add a Bcc header give one header with
 * the text in it (mail_check() counts the headers). */
static void
test_injection(Mail *f, gconstpointer data)
{
	f->spec.to_name = "Eve\r\nBcc: victim@x.test";
	f->spec.from_name = "Support\nBcc: victim2@x.test\n\nbody";
	f->spec.subject = "Hello\r\nBcc: victim3@x.test\r\n\r\n--boundary";
	mail_make(f);
	g_assert_null(strstr(f->raw, "\nBcc"));
	g_assert_cmpstr(f->m->subject, ==, "Hello Bcc: victim3@x.test --boundary");
	g_assert_cmpstr(f->m->from->email, ==, "support@acme.test");
	g_assert_cmpstr(f->m->from->name, ==, "Support Bcc: victim2@x.test body");
	g_assert_cmpuint(f->m->to->len, ==, 1);
	g_assert_cmpstr(TO(f)->name, ==, "Eve Bcc: victim@x.test");
	g_assert_cmpstr(TO(f)->email, ==, "carl@customer.test");
	g_assert_cmpstr(f->m->body_text, ==, f->spec.body);
}

/* A body that looks like MIME boundaries, headers or the SMTP end of data
 * stays one text part (mail_check()), and is not dot-stuffed. */
static void
test_body_injection(Mail *f, gconstpointer data)
{
	f->spec.body = "Hi\n--boundary\nContent-Type: text/html\n\n<b>x</b>\n--boundary--\n"
		       "\r\n.\r\nMAIL FROM:<x@y>\r\n..\n";
	mail_make(f);
	g_assert_nonnull(strstr(f->raw, "\r\n.\r\nMAIL FROM:<x@y>\r\n..\r\n"));
	g_assert_cmpuint(f->m->attachments->len, ==, 0);
	g_assert_cmpstr(f->m->body_text, ==,
			"Hi\n--boundary\nContent-Type: text/html\n\n<b>x</b>\n--boundary--\n"
			"\n.\nMAIL FROM:<x@y>\n..\n");
}

/* Returns: (transfer full): @s with each run of white space made one
 * space.  A display name is a phrase of words: the parse keeps the folds
 * GMime writes between them (CRLF TAB for a space). */
static char *
words_of(const char *s)
{
	g_auto(GStrv) words = g_strsplit_set(s, " \t\r\n", -1);
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; words[i] != NULL; i++) {
		if (*words[i] != '\0')
			g_string_append_printf(out, "%s%s", out->len > 0 ? " " : "", words[i]);
	}
	return g_strdup(out->str);
}

/* Long subjects, names, header values and body lines are folded or
 * encoded: no line over 998 (mail_check()). */
static void
test_long_lines(Mail *f, gconstpointer data)
{
	g_autoptr(GString) words = g_string_new("[TKT-3] ");
	g_autoptr(GString) word = g_string_new(NULL);
	g_autoptr(GString) body = g_string_new("short\n");
	g_autofree char *extra = NULL;
	const char *extras[2];

	for (int i = 0; i < 1000; i++)
		g_string_append(words, "word ");
	g_string_append(words, "end");
	for (int i = 0; i < 5000; i++)
		g_string_append_c(word, "abcdefghij"[i % 10]);
	for (int i = 0; i < 10000; i++)
		g_string_append_c(body, "klmnopqrst"[i % 10]);
	g_string_append(body, "\nend\n");
	extra = g_strdup_printf("X-Long: %s", word->str);
	extras[0] = extra;
	extras[1] = NULL;

	/* words, and one word of 5,000 */
	for (int round = 0; round < 2; round++) {
		g_autofree char *name = NULL;

		f->spec.subject = round == 0 ? words->str : word->str;
		f->spec.to_name = round == 0 ? words->str : word->str;
		f->spec.body = body->str;
		f->spec.extra_headers = extras;
		mail_make(f);
		g_assert_cmpstr(f->m->subject, ==, f->spec.subject);
		name = words_of(TO(f)->name);
		g_assert_cmpstr(name, ==, f->spec.to_name);
		g_assert_cmpstr(f->m->body_text, ==, body->str);
	}
}

static const char *const bad_addresses[] = {
	"",
	"nobody",
	"@acme.test",
	"carl@",
	"a@b@acme.test",
	"carl @acme.test",
	"carl@acme.test ",
	"Eve <eve@x.test>",
	"<eve@x.test>",
	"a@x.test, b@x.test",
	"a@x.test;b@x.test",
	"eve@x.test\r\nBcc: victim@x.test",
	"eve@x.test\nBcc: victim@x.test",
	"(comment)eve@x.test",
	"\"quoted\"@x.test",
	"eve@[192.0.2.1]",
	"group:eve@x.test;",
	"j\xc3\xb6rg@x.test",
	"eve@x.test\x7f",
	"eve@\x01x.test",
};

static void
test_bad_address(Mail *f, gconstpointer data)
{
	const char *bad = bad_addresses[GPOINTER_TO_UINT(data)];
	g_autoptr(GError) to_error = NULL;
	g_autoptr(GError) from_error = NULL;

	f->spec.to_email = bad;
	to_error = mail_refused(f, MR_COMPOSE_ERROR_ADDRESS);
	g_assert_true(g_str_has_prefix(to_error->message, *bad != '\0' ? "To address " : "no To"));
	f->spec = spec_base();
	f->spec.from_email = bad;
	from_error = mail_refused(f, MR_COMPOSE_ERROR_ADDRESS);
	g_assert_nonnull(strstr(from_error->message, "From"));
}

static void
test_missing(Mail *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->spec.to_email = NULL;
	error = mail_refused(f, MR_COMPOSE_ERROR_ADDRESS);
	g_assert_cmpstr(error->message, ==, "no To address");
	g_clear_error(&error);

	f->spec = spec_base();
	f->spec.from_email = NULL;
	error = mail_refused(f, MR_COMPOSE_ERROR_ADDRESS);
	g_assert_cmpstr(error->message, ==, "no From address");
	g_clear_error(&error);

	f->spec = spec_base();
	f->spec.message_id_domain = NULL;
	error = mail_refused(f, MR_COMPOSE_ERROR_FIELD);
	g_clear_error(&error);

	/* a Message-ID made earlier needs no domain */
	f->spec.message_id = "given@acme.test";
	mail_make(f);
	g_assert_cmpstr(f->c.message_id, ==, "given@acme.test");
	g_assert_cmpstr(f->m->message_id, ==, "given@acme.test");

	f->spec.message_id = "<given@acme.test>";
	error = mail_refused(f, MR_COMPOSE_ERROR_FIELD);
	g_clear_error(&error);

	f->spec = spec_base();
	f->spec.date_us = G_MAXINT64;
	error = mail_refused(f, MR_COMPOSE_ERROR_FIELD);
}

static void
test_extra_headers(Mail *f, gconstpointer data)
{
	static const char *const good[] = { "X-Mailroom-Ticket: TKT-3", "X-Note:Grüße\taus Köln",
					    "Reply-To: help@acme.test", NULL };
	static const char *const bad[] = {
		"NoColon", ": value", "Bad Name: v", "X-\xc3\xa4: v", "Bcc: victim@x.test",
		"bcc: victim@x.test", "To: x@x.test", "content-type: text/html",
		"Content-Transfer-Encoding: 8bit", "MIME-Version: 2.0", "Message-ID: <x@y>",
		"X-A: b\r\nBcc: victim@x.test", "X-A: b\nBcc: victim@x.test", "X-A: \x1b[2J",
		"X-A: \xff", "X-A: \xc2\x85",
	};
	gboolean seen = FALSE;

	f->spec.extra_headers = good;
	mail_make(f);
	g_assert_cmpuint(header_count(f->raw, "X-Mailroom-Ticket: TKT-3\r\n"), ==, 1);
	for (guint i = 0; i < f->m->headers->len; i++) {
		MrHeader *h = f->m->headers->pdata[i];

		if (g_ascii_strcasecmp(h->name, "X-Note") == 0) {
			g_assert_cmpstr(h->value, ==, "Grüße\taus Köln");
			seen = TRUE;
		}
	}
	g_assert_true(seen);
	g_assert_cmpstr(f->m->reply_to->email, ==, "help@acme.test");

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		const char *one[] = { "X-Fine: yes", bad[i], NULL };
		g_autoptr(GError) error = NULL;

		f->spec.extra_headers = one;
		error = mail_refused(f, MR_COMPOSE_ERROR_HEADER);
	}
}

static void
test_message_id(Mail *f, gconstpointer data)
{
	static const char *const bad_domains[] = {
		"", ".acme.test", "acme.test.", "acme..test", "acme test", "x@acme.test",
		"acme.test\r\nBcc: v@x", "ac<me", "gr\xc3\xbc\xc3\x9f" "e.test",
	};
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GRegex) form = g_regex_new("^[0-9a-v]{1,13}\\.[0-9a-f]{32}@acme\\.test$", 0, 0, NULL);
	g_autofree char *long_domain = g_strnfill(254, 'a');

	for (int i = 0; i < 10000; i++) {
		char *id = mr_compose_message_id("acme.test");

		g_assert_true(g_regex_match(form, id, 0, NULL));
		g_assert_true(g_hash_table_add(seen, id));
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad_domains); i++)
		g_assert_null(mr_compose_message_id(bad_domains[i]));
	g_assert_null(mr_compose_message_id(NULL));
	g_assert_null(mr_compose_message_id(long_domain));
	long_domain[253] = '\0';
	g_free(mr_compose_message_id(long_domain));

	/* mr_compose() makes a new one each time it is not given one */
	for (int i = 0; i < 2; i++) {
		mail_make(f);
		g_assert_true(g_regex_match(form, f->c.message_id, 0, NULL));
		g_assert_true(g_hash_table_add(seen, g_strdup(f->c.message_id)));
	}
}

#define ADD(path, func) \
	g_test_add("/mailroom/act/compose/" path, Mail, NULL, mail_setup, func, mail_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	mr_parse_init();
	ADD("ascii", test_ascii);
	ADD("minimal", test_minimal);
	ADD("utf8", test_utf8);
	ADD("threading", test_threading);
	ADD("references-bound", test_references_bound);
	ADD("auto", test_auto);
	ADD("injection", test_injection);
	ADD("body-injection", test_body_injection);
	ADD("long-lines", test_long_lines);
	for (guint i = 0; i < G_N_ELEMENTS(bad_addresses); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/act/compose/bad-address/%u", i);

		g_test_add(path, Mail, GUINT_TO_POINTER(i), mail_setup, test_bad_address, mail_teardown);
	}
	ADD("missing", test_missing);
	ADD("extra-headers", test_extra_headers);
	ADD("message-id", test_message_id);
	return g_test_run();
}
