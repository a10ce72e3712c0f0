/* test-parse.c - unit tests of the parse stage (mr-parse.h).
 *
 * Fixture messages live in tests/data (or $MR_TEST_DATA); hostile inputs
 * are built here.  Every parsed message also passes the invariants of
 * message_check(): all text valid UTF-8, no NULL where the contract says
 * "", attachment digests that match their data. */
#include <gmime/gmime.h>
#include <string.h>

#include "mailroom/mr-parse.h"

/* A GBytes over a string literal or char array, inner NUL bytes included. */
#define BYTES_LITERAL(s) g_bytes_new_static((s), sizeof(s) - 1)

/* An expected address; a NULL @email means "no address". */
typedef struct {
	const char *name;
	const char *email;
} ExpectAddress;

typedef struct {
	const char *file;
	MrParseStatus status;
	const char *problem;            /* substring of @problem */
	const char *subject;
	const char *subject_normalised;
	ExpectAddress from;
	ExpectAddress sender;
	ExpectAddress reply_to;
	const char *to[4];              /* emails, in order */
	const char *cc[4];
	const char *message_id;
	const char *in_reply_to;
	const char *references[4];
	gint64 date;
	const char *body;               /* substring of body_text */
	const char *body_not;           /* must not be in body_text */
	guint n_attachments;
	gboolean is_forward;
	ExpectAddress original_from;
	const char *original_subject;
	MrAutoKind auto_kind;
	const char *auto_reason;
} FixtureCase;

static const FixtureCase fixture_cases[] = {
	{
		.file = "subject-split-utf8.eml",
		.subject = "Rückfrage zur Lieferung – Größe XL",
		.from = { "Jürgen Groß", "juergen@customer.test" },
		.to = { "support@acme.test" },
		.message_id = "20240312091357.1234@customer.test",
		.date = 1710231237,
		.body = "wann die Größe XL wieder lieferbar ist?\n\nGrüße\nJürgen\n",
	},
	{
		.file = "subject-iso2022jp.eml",
		.subject = "見積書の送付について（至急）ご確認ください",
		.from = { "山田太郎", "yamada@customer.test" },
		.to = { "sales@acme.test" },
		.date = 1710291600,
		.body = "見積書を添付いたします。\n",
	},
	{
		.file = "header-8bit-utf8.eml",
		.subject = "Angebot für Büromöbel – Rückruf erbeten",
		.from = { "Zoë Ångström", "zoe@customer.test" },
		.to = { "sales@acme.test" },
		.body = "Büromöbel für 25 Arbeitsplätze.",
	},
	{
		.file = "header-8bit-latin1.eml",
		.subject = "Anfrage: Müller & Söhne, Größe 42",
		.from = { "Jürgen Müller", "jm@customer.test" },
		.body = "Grüße aus Köln, wir hätten gern ein Angebot.",
	},
	/* Raw 8-bit headers: the charset the text declares comes first. */
	{
		.file = "header-8bit-gb2312.eml",
		.subject = "关于报价的问题",
		.from = { "张伟", "zhang.wei@customer.test" },
		.to = { "sales@acme.test" },
		.message_id = "gb2312-1@customer.test",
		.date = 1710725400,
		.body = "请发送最新的报价单。",
	},
	{
		.file = "header-8bit-cp1251-multipart.eml",
		.subject = "Счёт на оплату",
		.from = { "Иван Петров", "ivan@customer.test" },
		.to = { "support@acme.test" },
		.message_id = "cp1251-1@customer.test",
		.body = "Добрый день, счёт во вложении.",
		.n_attachments = 1,
	},
	/* A blank before the first header: read past it, and say so. */
	{
		.file = "header-leading-space.eml",
		.status = MR_PARSE_DEGRADED,
		.problem = "header block begins with white space",
		.subject = "Printer on fire",
		.from = { "Jane Doe", "jane@customer.test" },
		.to = { "support@acme.test" },
		.message_id = "lead-space-1@customer.test",
		.date = 1710838800,
		.body = "The printer on floor 2 is on fire.",
	},
	{
		.file = "broken-boundary.eml",
		.status = MR_PARSE_DEGRADED,
		.problem = "multipart without parts",
		.subject = "Printer still broken",
		.from = { "Alice Example", "alice@customer.test" },
		.body = "The printer on floor 3 is still jammed.",
	},
	{
		.file = "nested-10.eml",
		.subject = "Deeply nested",
		.body = "Innermost text at level 10.",
	},
	{
		.file = "nul-byte.eml",
		.status = MR_PARSE_DEGRADED,
		.problem = "NUL byte",
		.from = { "Bob", "bob@customer.test" },
		.message_id = "nul-1@customer.test",
		.body = "Please check invoice 1234.\xef\xbf\xbd Thanks, Bob",
	},
	{
		.file = "long-header.eml",
		.subject = "After the long header",
		.from = { "Carol", "carol@customer.test" },
		.message_id = "long-1@customer.test",
		.body = "Body after a 14 KB header line.",
	},
	{
		.file = "not-a-message.eml",
		.status = MR_PARSE_FAILED,
		.problem = "not a message",
		.subject = "",
		.body = "",
	},
	{
		.file = "html-only.eml",
		.subject = "Quote request",
		.from = { "Café Müller", "info@customer.test" },
		.body = "Hello team,\nwe’d like 20 chairs & 5 desks for €\xe2\x80\xaf" "3.000 — is that <OK>?",
		.body_not = "not text",
	},
	{
		.file = "attachments.eml",
		.subject = "Order documents",
		.body = "Please find the order attached. \nRegards, Dave",
		.body_not = "<p>",
		.n_attachments = 3,
	},
	{
		.file = "fwd-gmail.eml",
		.subject = "Fwd: Order 4711 delayed",
		.subject_normalised = "Order 4711 delayed",
		.from = { "Sam Seller", "sam@acme.test" },
		.body = "FYI, see below.",
		.is_forward = TRUE,
		.original_from = { "Jane Doe", "jane.doe@customer.test" },
		.original_subject = "Order 4711 delayed",
	},
	{
		.file = "fwd-outlook-en.eml",
		.subject_normalised = "Damaged delivery",
		.is_forward = TRUE,
		.original_from = { "Jane Doe", "jane@customer.test" },
		.original_subject = "Damaged delivery",
	},
	{
		.file = "fwd-thunderbird-de.eml",
		.subject_normalised = "Reklamation Lieferung 0815",
		.body = "die Lieferung 0815 war unvollständig.",
		.is_forward = TRUE,
		.original_from = { "Jane Doe", "jane@customer.test" },
		.original_subject = "Reklamation Lieferung 0815",
	},
	{
		.file = "fwd-outlook-de.eml",
		.subject_normalised = "Rechnung 2024-117",
		.body = "-----Ursprüngliche Nachricht-----\nVon: Doe, Jane",
		.is_forward = TRUE,
		.original_from = { "Doe, Jane", "jane@customer.test" },
		.original_subject = "Rechnung 2024-117",
	},
	{
		.file = "fwd-rfc822.eml",
		.subject = "complaint, see attached",
		.body = "Forwarding the customer's mail as an attachment.\n",
		.body_not = "incomplete",
		.n_attachments = 1,
		.is_forward = TRUE,
		.original_from = { "Renée Martin", "renee@customer.test" },
		.original_subject = "Réclamation order 99",
	},
	{
		.file = "fwd-apple-mbox.eml",
		.subject = "Lead from the fair",
		.from = { "Sam Seller", "sam@acme.test" },
		.message_id = "apple-1@acme.test",
		.is_forward = TRUE,
		.original_from = { "Paula Prospect", "paula@prospect.example.com" },
		.original_subject = "Interested in your product",
	},
	{
		.file = "auto-submitted.eml",
		.in_reply_to = "tkt-12-ack@acme.test",
		.auto_kind = MR_AUTO_REPLY,
		.auto_reason = "Auto-Submitted: auto-replied (vacation)",
	},
	{
		.file = "vacation-x-autoreply.eml",
		.auto_kind = MR_AUTO_REPLY,
		.auto_reason = "X-Autoreply: yes",
	},
	{
		.file = "bulk-precedence.eml",
		.auto_kind = MR_AUTO_BULK,
		.auto_reason = "Precedence: bulk",
	},
	{
		.file = "list-id.eml",
		.subject_normalised = "[users] How do I reset the counter?",
		.auto_kind = MR_AUTO_BULK,
		.auto_reason = "List-Id: Users of the example project <users.lists.example.com>",
	},
	{
		/* Also Auto-Submitted and Return-Path <>: the report decides,
		 * and the returned message inside is no forward. */
		.file = "bounce-report.eml",
		.from = { "Mail Delivery System", "mailer-daemon@mail.acme.test" },
		.body = "550 5.1.1 User unknown",
		.n_attachments = 2,
		.auto_kind = MR_AUTO_BOUNCE,
		.auto_reason = "Content-Type: multipart/report",
	},
	{
		/* "-----Original Message-----" under "RE:" quotes a reply. */
		.file = "reply-plain.eml",
		.subject = "RE: [TKT-12] Printer jam",
		.subject_normalised = "[TKT-12] Printer jam",
		.from = { "Doe, Jane", "jane@customer.test" },
		.sender = { "Jane's Assistant", "assistant@customer.test" },
		.reply_to = { "Jane Doe", "jane.doe@customer.test" },
		.to = { "support@acme.test", "sales@acme.test" },
		.cc = { "tom@customer.test", "ann@customer.test", "bob@example.com" },
		.message_id = "reply-1@customer.test",
		.in_reply_to = "tkt-12-ack@acme.test",
		.references = { "tkt-12-orig@customer.test", "tkt-12-ack@acme.test" },
		.date = 1710940530,
		.body = "It is working again, thanks!\n",
	},
};

static char *
data_path(const char *file)
{
	const char *dir = g_getenv("MR_TEST_DATA");

	return g_build_filename(dir != NULL ? dir : "tests/data", file, NULL);
}

static GBytes *
load_fixture(const char *file)
{
	g_autofree char *path = data_path(file);
	g_autoptr(GError) error = NULL;
	char *data = NULL;
	gsize len = 0;

	g_file_get_contents(path, &data, &len, &error);
	g_assert_no_error(error);
	return g_bytes_new_take(data, len);
}

static MrMessage *
parse_string(const char *text)
{
	g_autoptr(GBytes) raw = g_bytes_new_static(text, strlen(text));

	return mr_parse_message(raw, NULL);
}

static void
assert_utf8(const char *s)
{
	if (s != NULL)
		g_assert_true(g_utf8_validate(s, -1, NULL));
}

static void
address_check(const MrAddress *a)
{
	g_assert_nonnull(a->email);
	assert_utf8(a->email);
	assert_utf8(a->name);
	g_assert_true(a->name == NULL || *a->name != '\0');
}

/* The invariants of every parse, whatever the input. */
static void
message_check(const MrMessage *msg)
{
	g_assert_nonnull(msg);

	const MrAddress *single[] = { msg->from, msg->sender, msg->reply_to, msg->original_from };

	g_assert_true(msg->status == MR_PARSE_OK || msg->status == MR_PARSE_DEGRADED ||
		      msg->status == MR_PARSE_FAILED);
	g_assert_true((msg->status == MR_PARSE_OK) == (msg->problem == NULL));
	assert_utf8(msg->problem);
	g_assert_nonnull(msg->subject);
	g_assert_nonnull(msg->subject_normalised);
	g_assert_nonnull(msg->body_text);
	assert_utf8(msg->subject);
	assert_utf8(msg->subject_normalised);
	assert_utf8(msg->body_text);
	assert_utf8(msg->message_id);
	assert_utf8(msg->in_reply_to);
	assert_utf8(msg->original_subject);
	assert_utf8(msg->auto_reason);
	g_assert_true((msg->auto_kind == MR_AUTO_NONE) == (msg->auto_reason == NULL));
	for (guint i = 0; i < G_N_ELEMENTS(single); i++)
		if (single[i] != NULL)
			address_check(single[i]);
	g_assert_nonnull(msg->to);
	g_assert_nonnull(msg->cc);
	g_assert_nonnull(msg->references);
	g_assert_nonnull(msg->attachments);
	for (guint i = 0; i < msg->to->len; i++)
		address_check(g_ptr_array_index(msg->to, i));
	for (guint i = 0; i < msg->cc->len; i++)
		address_check(g_ptr_array_index(msg->cc, i));
	for (guint i = 0; i < msg->references->len; i++)
		assert_utf8(g_ptr_array_index(msg->references, i));
	for (guint i = 0; i < msg->attachments->len; i++) {
		const MrAttachment *a = g_ptr_array_index(msg->attachments, i);
		g_autofree char *digest = NULL;
		gsize size = 0;
		const guint8 *data = g_bytes_get_data(a->data, &size);

		assert_utf8(a->filename);
		g_assert_nonnull(a->content_type);
		g_assert_nonnull(strchr(a->content_type, '/'));
		g_assert_cmpuint(size, ==, a->size);
		digest = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, size);
		g_assert_cmpstr(digest, ==, a->sha256);
	}
	if (msg->status == MR_PARSE_FAILED) {
		g_assert_cmpstr(msg->subject, ==, "");
		g_assert_cmpstr(msg->body_text, ==, "");
		g_assert_null(msg->from);
		g_assert_cmpuint(msg->to->len, ==, 0);
		g_assert_cmpuint(msg->attachments->len, ==, 0);
	}
}

static void
assert_address(const MrAddress *got, const ExpectAddress *want)
{
	if (want->email == NULL) {
		g_assert_null(got);
		return;
	}
	g_assert_nonnull(got);
	g_assert_cmpstr(got->email, ==, want->email);
	g_assert_cmpstr(got->name, ==, want->name);
}

static void
assert_emails(const GPtrArray *got, const char *const *want, guint n_want)
{
	guint n = 0;

	while (n < n_want && want[n] != NULL)
		n++;
	g_assert_cmpuint(got->len, ==, n);
	for (guint i = 0; i < n; i++)
		g_assert_cmpstr(((const MrAddress *)g_ptr_array_index(got, i))->email, ==, want[i]);
}

static void
test_fixture(gconstpointer data)
{
	const FixtureCase *c = data;
	g_autoptr(GBytes) raw = load_fixture(c->file);
	g_autoptr(MrMessage) msg = mr_parse_message(raw, NULL);

	message_check(msg);
	g_assert_cmpint(msg->status, ==, c->status);
	if (c->problem != NULL)
		g_assert_nonnull(strstr(msg->problem, c->problem));
	if (c->subject != NULL)
		g_assert_cmpstr(msg->subject, ==, c->subject);
	if (c->subject_normalised != NULL)
		g_assert_cmpstr(msg->subject_normalised, ==, c->subject_normalised);
	if (c->from.email != NULL)
		assert_address(msg->from, &c->from);
	if (c->sender.email != NULL || c->reply_to.email != NULL) {
		assert_address(msg->sender, &c->sender);
		assert_address(msg->reply_to, &c->reply_to);
	}
	if (c->to[0] != NULL)
		assert_emails(msg->to, c->to, G_N_ELEMENTS(c->to));
	if (c->cc[0] != NULL)
		assert_emails(msg->cc, c->cc, G_N_ELEMENTS(c->cc));
	if (c->message_id != NULL)
		g_assert_cmpstr(msg->message_id, ==, c->message_id);
	if (c->in_reply_to != NULL)
		g_assert_cmpstr(msg->in_reply_to, ==, c->in_reply_to);
	for (guint i = 0; i < G_N_ELEMENTS(c->references) && c->references[0] != NULL; i++) {
		if (c->references[i] == NULL) {
			g_assert_cmpuint(msg->references->len, ==, i);
			break;
		}
		g_assert_cmpuint(msg->references->len, >, i);
		g_assert_cmpstr(g_ptr_array_index(msg->references, i), ==, c->references[i]);
	}
	if (c->date != 0)
		g_assert_cmpint(msg->date, ==, c->date);
	if (c->body != NULL && *c->body == '\0')
		g_assert_cmpstr(msg->body_text, ==, "");
	else if (c->body != NULL && strstr(msg->body_text, c->body) == NULL)
		g_error("body of %s lacks \"%s\":\n%s", c->file, c->body, msg->body_text);
	if (c->body_not != NULL)
		g_assert_null(strstr(msg->body_text, c->body_not));
	g_assert_cmpuint(msg->attachments->len, ==, c->n_attachments);
	g_assert_cmpint(msg->is_forward, ==, c->is_forward);
	assert_address(msg->original_from, &c->original_from);
	g_assert_cmpstr(msg->original_subject, ==, c->original_subject);
	g_assert_cmpint(msg->auto_kind, ==, c->auto_kind);
	g_assert_cmpstr(msg->auto_reason, ==, c->auto_reason);
}

/* The attachments of attachments.eml, byte for byte. */
static void
test_attachment_details(void)
{
	static const char pdf[] = "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"
				  "trailer << /Root 1 0 R >>\n%%EOF\n";
	static const char csv[] = "Artikel;Menge\nStuhl;20\nTisch;5\n";
	static const struct {
		const char *filename;
		const char *content_type;
		const char *data; /* NULL: check only the size and the PNG magic */
		gsize size;
	} want[] = {
		{ .filename = "order.pdf", .content_type = "application/pdf", .data = pdf, .size = sizeof pdf - 1 },
		{ .filename = "Bestellung März.csv", .content_type = "text/csv", .data = csv, .size = sizeof csv - 1 },
		{ .filename = "logo.png", .content_type = "image/png", .size = 137 },
	};
	g_autoptr(GBytes) raw = load_fixture("attachments.eml");
	g_autoptr(MrMessage) msg = mr_parse_message(raw, NULL);

	message_check(msg);
	g_assert_cmpuint(msg->attachments->len, ==, G_N_ELEMENTS(want));
	for (guint i = 0; i < G_N_ELEMENTS(want); i++) {
		const MrAttachment *a = g_ptr_array_index(msg->attachments, i);
		const guint8 *data = g_bytes_get_data(a->data, NULL);

		g_assert_cmpstr(a->filename, ==, want[i].filename);
		g_assert_cmpstr(a->content_type, ==, want[i].content_type);
		g_assert_cmpuint(a->size, ==, want[i].size);
		if (want[i].data != NULL) {
			g_autofree char *digest =
				g_compute_checksum_for_string(G_CHECKSUM_SHA256, want[i].data, -1);

			g_assert_cmpmem(data, a->size, want[i].data, want[i].size);
			g_assert_cmpstr(a->sha256, ==, digest);
		} else {
			g_assert_cmpmem(data, 8, "\x89PNG\r\n\x1a\n", 8);
		}
	}
}

/* The forwarded message of fwd-rfc822.eml is kept whole as an attachment. */
static void
test_attachment_rfc822(void)
{
	g_autoptr(GBytes) raw = load_fixture("fwd-rfc822.eml");
	g_autoptr(MrMessage) msg = mr_parse_message(raw, NULL);
	const MrAttachment *a;
	g_autofree char *text = NULL;

	g_assert_cmpuint(msg->attachments->len, ==, 1);
	a = g_ptr_array_index(msg->attachments, 0);
	g_assert_cmpstr(a->filename, ==, "complaint.eml");
	g_assert_cmpstr(a->content_type, ==, "message/rfc822");
	text = g_strndup(g_bytes_get_data(a->data, NULL), a->size);
	g_assert_nonnull(strstr(text, "Message-ID: <orig-99@customer.test>"));
	g_assert_nonnull(strstr(text, "The order 99 is incomplete."));
}

/* GMime 3.2 decodes a run of base64 encoded-words of one charset as one
 * base64 stream, which ends at the first '=' padding: the rest of the
 * header is lost.  This shows whether the GMime in use still does that
 * (the repair stays harmless when it does not) and that the parse, which
 * repairs the run first, gets the whole text. */
typedef struct {
	const char *raw;
	const char *want;
} PaddingCase;

static const PaddingCase padding_cases[] = {
	{ .raw = "Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsJE4kKhsoQg==?=\n"
		 " =?ISO-2022-JP?B?GyRCTGQkJDlnJG8kOxsoQg==?=\n"
		 " =?iso-2022-jp?B?GyRCJEskRCQkJEYhIhsoQg==?=\n",
	  .want = "日本語のお問い合わせについて、" },
	{ .raw = "Subject: =?UTF-8?B?R3I=?= =?UTF-8?B?w7w=?= =?UTF-8?B?w59l?=\n", .want = "Grüße" },
	/* One character (ü, C3 BC) split across two words. */
	{ .raw = "Subject: =?UTF-8?B?R3LD?= =?UTF-8?B?vA==?=\n", .want = "Grü" },
	/* Different charsets are not joined; text between stays. */
	{ .raw = "Subject: =?UTF-8?B?w6Q=?= und =?ISO-8859-1?B?5A==?= =?UTF-8?B?w7Y=?=\n",
	  .want = "ä und äö" },
	/* Not encoded-words at all. */
	{ .raw = "Subject: =?x?= a=?b ?=c =?UTF-8?X?abc?=\n", .want = "=?x?= a=?b ?=c =?UTF-8?X?abc?=" },
};

static void
test_subject_rfc2047_padding(gconstpointer data)
{
	const PaddingCase *c = data;
	g_autofree char *unfolded = g_mime_utils_header_unfold(c->raw + strlen("Subject:"));
	g_autofree char *gmime = g_mime_utils_header_decode_text(NULL, unfolded);
	g_autofree char *text = g_strconcat("From: a@customer.test\n", c->raw, "\nbody\n", NULL);
	g_autoptr(MrMessage) msg = parse_string(text);

	g_test_message("GMime alone decodes %ld of %ld characters%s", g_utf8_strlen(gmime, -1),
		       g_utf8_strlen(c->want, -1), strcmp(gmime, c->want) != 0 ? ", wrongly" : "");
	message_check(msg);
	g_assert_cmpstr(msg->subject, ==, c->want);
}

/* Raw 8-bit headers and bodies follow MrParseOptions.fallback_charsets. */
static void
test_fallback_charsets(void)
{
	static const char *const greek[] = { "utf-8", "iso-8859-7", NULL };
	static const char raw[] = "From: \xc4\xe7\xec\xde\xf4\xf1\xe7\xf2 <d@customer.test>\n"
				  "Subject: \xc1\xf0\xe1\xed\xf4\xe7\xf3\xe7\n"
				  "\n\xc5\xf5\xf7\xe1\xf1\xe9\xf3\xf4\xfe\n";
	g_autoptr(GBytes) bytes = BYTES_LITERAL(raw);
	MrParseOptions opts = { .fallback_charsets = greek };
	g_autoptr(MrMessage) as_greek = mr_parse_message(bytes, &opts);
	g_autoptr(MrMessage) as_default = mr_parse_message(bytes, NULL);

	message_check(as_greek);
	g_assert_cmpstr(as_greek->subject, ==, "Απαντηση");
	g_assert_cmpstr(as_greek->from->name, ==, "Δημήτρης");
	g_assert_cmpstr(as_greek->body_text, ==, "Ευχαριστώ\n");
	/* The default list reads the same bytes as windows-1252. */
	message_check(as_default);
	g_assert_cmpstr(as_default->subject, ==, "Áðáíôçóç");
}

/* A raw 8-bit header is read in the charset the message declares for its
 * text first, then with the fallback list; UTF-8 stays UTF-8. */
typedef struct {
	const char *raw;
	const char *subject;
	const char *from_name;
} HeaderCharsetCase;

static const HeaderCharsetCase header_charset_cases[] = {
	/* the declared charset wins over the configured fallbacks */
	{ .raw = "From: \xd5\xc5\xce\xb0 <z@customer.test>\nSubject: \xb1\xa8\xbc\xdb\n"
		 "Content-Type: text/plain; charset=GB2312\n\n\xc4\xfa\xba\xc3\n",
	  .subject = "报价", .from_name = "张伟" },
	/* valid UTF-8 in the header stays UTF-8 whatever the body declares */
	{ .raw = "From: Zo\xc3\xab <z@customer.test>\nSubject: B\xc3\xbcro\n"
		 "Content-Type: text/plain; charset=gb2312\n\nx\n",
	  .subject = "Büro", .from_name = "Zoë" },
	/* no text part declares a charset: the fallbacks alone */
	{ .raw = "From: \xc4\xe7\xec\xde\xf4\xf1\xe7\xf2 <d@customer.test>\nSubject: \xc1\xf0\xe1\n"
		 "Content-Type: application/octet-stream\n\nx\n",
	  .subject = "Απα", .from_name = "Δημήτρης" },
	/* a charset iconv does not know is skipped */
	{ .raw = "From: \xc4\xe7\xec\xde\xf4\xf1\xe7\xf2 <d@customer.test>\nSubject: \xc1\xf0\xe1\n"
		 "Content-Type: text/plain; charset=x-no-such-charset\n\nx\n",
	  .subject = "Απα", .from_name = "Δημήτρης" },
};

static void
test_header_body_charset(gconstpointer data)
{
	static const char *const greek[] = { "utf-8", "iso-8859-7", NULL };
	const HeaderCharsetCase *c = data;
	g_autoptr(GBytes) bytes = g_bytes_new_static(c->raw, strlen(c->raw));
	MrParseOptions opts = { .fallback_charsets = greek };
	g_autoptr(MrMessage) msg = mr_parse_message(bytes, &opts);

	message_check(msg);
	g_assert_cmpint(msg->status, ==, MR_PARSE_OK);
	g_assert_cmpstr(msg->subject, ==, c->subject);
	g_assert_nonnull(msg->from);
	g_assert_cmpstr(msg->from->name, ==, c->from_name);
}

/* Declared charsets win over the fallback list; bad bytes never leak. */
typedef struct {
	const char *body; /* after the header block */
	gsize len;        /* of @body, when it holds NUL bytes */
	const char *want;
} BodyCharsetCase;

static const BodyCharsetCase body_charset_cases[] = {
	{ .body = "Content-Type: text/plain; charset=iso-8859-15\n\n\xa4 5\n", .want = "€ 5\n" },
	{ .body = "Content-Type: text/plain; charset=\"KOI8-R\"\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n",
	  .want = "Привет\n" },
	/* Declared UTF-8 with a stray byte stays UTF-8. */
	{ .body = "Content-Type: text/plain; charset=utf-8\n\nGr\xc3\xbc\xff\xc3\x9f\n",
	  .want = "Grü\xef\xbf\xbdß\n" },
	/* An unknown charset is read like an undeclared one. */
	{ .body = "Content-Type: text/plain; charset=x-no-such-charset\n\nK\xf6ln\n", .want = "Köln\n" },
	/* us-ascii with 8-bit bytes is mislabelled latin text. */
	{ .body = "Content-Type: text/plain; charset=us-ascii\n\nK\xf6ln\n", .want = "Köln\n" },
	{ .body = "Content-Type: text/plain; charset=utf-16le\n\nA\0\xfc\0\n\0", .len = 50,
	  .want = "Aü\n" },
	/* CRLF inside the encoded text becomes LF. */
	{ .body = "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nR3LDvMOfZQ0KWmVpbGU=\n",
	  .want = "Grüße\nZeile" },
};

static void
test_body_charsets(gconstpointer data)
{
	const BodyCharsetCase *c = data;
	g_autoptr(GByteArray) buf = g_byte_array_new();
	g_autoptr(GBytes) raw = NULL;
	g_autoptr(MrMessage) msg = NULL;
	const char *head = "From: a@customer.test\nSubject: s\n";

	g_byte_array_append(buf, (const guint8 *)head, (guint)strlen(head));
	g_byte_array_append(buf, (const guint8 *)c->body,
			    (guint)(c->len != 0 ? c->len : strlen(c->body)));
	raw = g_byte_array_free_to_bytes(g_steal_pointer(&buf));
	msg = mr_parse_message(raw, NULL);
	message_check(msg);
	g_assert_cmpstr(msg->body_text, ==, c->want);
}

/* One header decides auto_kind and auto_reason. */
typedef struct {
	const char *headers;
	MrAutoKind kind;
	const char *reason;
} AutoCase;

static const AutoCase auto_cases[] = {
	{ .headers = "Auto-Submitted: auto-replied\n", .kind = MR_AUTO_REPLY,
	  .reason = "Auto-Submitted: auto-replied" },
	{ .headers = "Auto-Submitted: auto-generated\n", .kind = MR_AUTO_BULK,
	  .reason = "Auto-Submitted: auto-generated" },
	{ .headers = "Auto-Submitted: no\n", .kind = MR_AUTO_NONE },
	{ .headers = "Auto-Submitted: No ; a comment\n", .kind = MR_AUTO_NONE },
	{ .headers = "X-Autoreply: yes\n", .kind = MR_AUTO_REPLY, .reason = "X-Autoreply: yes" },
	{ .headers = "X-Autorespond: vacation\n", .kind = MR_AUTO_REPLY,
	  .reason = "X-Autorespond: vacation" },
	{ .headers = "X-Auto-Response-Suppress: All\n", .kind = MR_AUTO_REPLY,
	  .reason = "X-Auto-Response-Suppress: All" },
	{ .headers = "X-Auto-Response-Suppress: DR, OOF, AutoReply\n", .kind = MR_AUTO_REPLY,
	  .reason = "X-Auto-Response-Suppress: DR, OOF, AutoReply" },
	{ .headers = "X-Auto-Response-Suppress: DR, RN, NRN\n", .kind = MR_AUTO_NONE },
	{ .headers = "Precedence: bulk\n", .kind = MR_AUTO_BULK, .reason = "Precedence: bulk" },
	{ .headers = "Precedence: List\n", .kind = MR_AUTO_BULK, .reason = "Precedence: List" },
	{ .headers = "Precedence: junk\n", .kind = MR_AUTO_BULK, .reason = "Precedence: junk" },
	{ .headers = "Precedence: first-class\n", .kind = MR_AUTO_NONE },
	{ .headers = "List-Unsubscribe: <mailto:leave@lists.example.com>\n", .kind = MR_AUTO_BULK,
	  .reason = "List-Unsubscribe: <mailto:leave@lists.example.com>" },
	{ .headers = "Return-Path: <>\n", .kind = MR_AUTO_BOUNCE, .reason = "Return-Path: <>" },
	{ .headers = "Return-Path: < >\n", .kind = MR_AUTO_BOUNCE, .reason = "Return-Path: < >" },
	{ .headers = "Return-Path: <jane@customer.test>\n", .kind = MR_AUTO_NONE },
	/* RFC 3834 auto-replies use a null reverse-path too. */
	{ .headers = "Return-Path: <>\nAuto-Submitted: auto-replied\n", .kind = MR_AUTO_REPLY,
	  .reason = "Auto-Submitted: auto-replied" },
	{ .headers = "Content-Type: multipart/report; report-type=delivery-status; boundary=r\n"
		     "\n--r\nContent-Type: text/plain\n\nfailed\n--r--\n",
	  .kind = MR_AUTO_BOUNCE, .reason = "Content-Type: multipart/report" },
	{ .headers = "Content-Type: multipart/mixed; boundary=r\n"
		     "\n--r\nContent-Type: message/delivery-status\n\nAction: failed\n--r--\n",
	  .kind = MR_AUTO_BOUNCE, .reason = "Content-Type: message/delivery-status" },
};

static void
test_auto_markers(gconstpointer data)
{
	const AutoCase *c = data;
	g_autofree char *text = g_strconcat("From: a@customer.test\nSubject: s\n", c->headers,
					    strstr(c->headers, "\n\n") != NULL ? "" : "\nbody\n", NULL);
	g_autoptr(MrMessage) msg = parse_string(text);

	message_check(msg);
	g_assert_cmpint(msg->auto_kind, ==, c->kind);
	g_assert_cmpstr(msg->auto_reason, ==, c->reason);
}

/* auto_reason quotes a long value only in part, cut between characters. */
static void
test_auto_reason_length(void)
{
	g_autoptr(GString) text = g_string_new("From: a@customer.test\nList-Id: ");
	g_autoptr(MrMessage) msg = NULL;

	for (guint i = 0; i < 2000; i++)
		g_string_append(text, "ä");
	g_string_append(text, "\n\nbody\n");
	msg = parse_string(text->str);
	message_check(msg);
	g_assert_cmpint(msg->auto_kind, ==, MR_AUTO_BULK);
	g_assert_cmpuint(strlen(msg->auto_reason), <=, 200);
	g_assert_true(g_str_has_prefix(msg->auto_reason, "List-Id: ää"));
}

typedef struct {
	const char *in;
	const char *out;
	gboolean forward;
} NormaliseCase;

static const NormaliseCase normalise_cases[] = {
	{ .in = "hello", .out = "hello" },
	{ .in = "  hello  ", .out = "hello" },
	{ .in = "", .out = "" },
	{ .in = "Re: hello", .out = "hello" },
	{ .in = "RE: hello", .out = "hello" },
	{ .in = "re:hello", .out = "hello" },
	{ .in = "Re : hello", .out = "hello" },
	{ .in = "Re: AW: Fwd: WG: hello", .out = "hello", .forward = TRUE },
	{ .in = "AW: hello", .out = "hello" },
	{ .in = "Aw: Aw: hello", .out = "hello" },
	{ .in = "SV: hello", .out = "hello" },
	{ .in = "Antw: hello", .out = "hello" },
	{ .in = "Re[2]: hello", .out = "hello" },
	{ .in = "Re(3): hello", .out = "hello" },
	{ .in = "RE [12] : hello", .out = "hello" },
	{ .in = "Re\xef\xbc\x9a hello", .out = "hello" },
	{ .in = "Fwd\xef\xbc\x9aRe: hello", .out = "hello", .forward = TRUE },
	{ .in = "Fwd: hello", .out = "hello", .forward = TRUE },
	{ .in = "FW: hello", .out = "hello", .forward = TRUE },
	{ .in = "Fw: hello", .out = "hello", .forward = TRUE },
	{ .in = "WG: hello", .out = "hello", .forward = TRUE },
	{ .in = "TR: hello", .out = "hello", .forward = TRUE },
	{ .in = "RV: hello", .out = "hello", .forward = TRUE },
	{ .in = "VS: hello", .out = "hello", .forward = TRUE },
	{ .in = "Re: Fw: Re: hello", .out = "hello", .forward = TRUE },
	{ .in = "Re: Re: [TKT-12] hello", .out = "[TKT-12] hello" },
	{ .in = "Review: the plan", .out = "Review: the plan" },
	{ .in = "Trade: fair", .out = "Trade: fair" },
	{ .in = "Sviluppo: nuovo", .out = "Sviluppo: nuovo" },
	{ .in = "Fwdx: hello", .out = "Fwdx: hello" },
	{ .in = "Re hello", .out = "Re hello" },
	{ .in = "Re[x]: hello", .out = "Re[x]: hello" },
	{ .in = "Re[2: hello", .out = "Re[2: hello" },
	{ .in = "hello Re: there", .out = "hello Re: there" },
	{ .in = "Re:", .out = "" },
	{ .in = "Re: Re:   ", .out = "" },
};

static void
test_subject_normalise(gconstpointer data)
{
	const NormaliseCase *c = data;
	gboolean forward = !c->forward;
	g_autofree char *out = mr_subject_normalise(c->in, &forward);
	g_autofree char *again = mr_subject_normalise(c->in, NULL);

	g_assert_cmpstr(out, ==, c->out);
	g_assert_cmpstr(again, ==, c->out);
	g_assert_cmpint(forward, ==, c->forward);
}

typedef struct {
	const char *body;
	const char *email; /* NULL: no block found */
	const char *name;
	const char *subject;
} InlineForwardCase;

static const InlineForwardCase inline_forward_cases[] = {
	{ .body = "---------- Forwarded message ---------\nFrom: Jane Doe <jane@customer.test>\n"
		  "Date: Fri, 15 Mar 2024\nSubject: Hi\nTo: x@acme.test\n\nbody\n",
	  .email = "jane@customer.test", .name = "Jane Doe", .subject = "Hi" },
	{ .body = "-----Original Message-----\r\nFrom: Jane Doe [mailto:Jane@Customer.test]\r\n"
		  "Sent: Monday\r\nSubject: RE: order\r\n\r\n",
	  .email = "jane@customer.test", .name = "Jane Doe", .subject = "RE: order" },
	{ .body = "-------- Weitergeleitete Nachricht --------\nBetreff: \tAngebot\n"
		  "Datum: \tMon\nVon: \t\"Doe, Jane\" <jane@customer.test>\n",
	  .email = "jane@customer.test", .name = "Doe, Jane", .subject = "Angebot" },
	{ .body = "-------- Original-Nachricht --------\nVon: Jane Doe <jane@customer.test>\n",
	  .email = "jane@customer.test", .name = "Jane Doe" },
	{ .body = "-----Ursprüngliche Nachricht-----\nVon: Doe, Jane <jane@customer.test>\n"
		  "Betreff: AW: Termin\n",
	  .email = "jane@customer.test", .name = "Doe, Jane", .subject = "AW: Termin" },
	{ .body = "Begin forwarded message:\n\n> From: jane@customer.test\n> Subject: Quote\n",
	  .email = "jane@customer.test", .subject = "Quote" },
	{ .body = "> > ---------- Forwarded message ---------\n> > From: Jane <jane@customer.test>\n",
	  .email = "jane@customer.test", .name = "Jane" },
	{ .body = "________________________________\nFrom: Jane Doe <jane@customer.test>\nSent: x\n",
	  .email = "jane@customer.test", .name = "Jane Doe" },
	{ .body = "-----Original Message-----\n*From:* Jane Doe <jane@customer.test>\n*Subject:* Hi\n",
	  .email = "jane@customer.test", .name = "Jane Doe", .subject = "Hi" },
	/* A separator whose block has no address: the next one counts. */
	{ .body = "-----Original Message-----\nFrom: Jane Doe\n\n"
		  "---------- Forwarded message ---------\nFrom: bob@example.com\n",
	  .email = "bob@example.com" },
	{ .body = "Hello,\nFrom: Jane Doe <jane@customer.test>\n" },
	{ .body = "Forwarded message\nFrom: Jane Doe <jane@customer.test>\n" },
	{ .body = "---------- Forwarded message ---------\n\nsome text\n\nFrom: jane@customer.test\n" },
	{ .body = "---------- Forwarded message ---------" },
	{ .body = "" },
};

static void
test_inline_forward(gconstpointer data)
{
	const InlineForwardCase *c = data;
	g_autoptr(MrAddress) from = NULL;
	g_autofree char *subject = NULL;
	gboolean found = mr_parse_find_inline_forward(c->body, &from, &subject);

	g_assert_cmpint(found, ==, c->email != NULL);
	if (!found)
		return;
	g_assert_cmpstr(from->email, ==, c->email);
	g_assert_cmpstr(from->name, ==, c->name);
	g_assert_cmpstr(subject, ==, c->subject);
}

typedef struct {
	const char *html;
	const char *text;
} HtmlCase;

static const HtmlCase html_cases[] = {
	{ .html = "", .text = "" },
	{ .html = "plain", .text = "plain" },
	{ .html = "<p>a</p><p>b</p>", .text = "a\n\nb" },
	{ .html = "a<br>b<br/>c", .text = "a\nb\nc" },
	{ .html = "  a \n\t b  ", .text = "a b" },
	{ .html = "<b>bold</b> and <i>it</i>", .text = "bold and it" },
	{ .html = "<script>x<y</script>t<style>p{}</style>", .text = "t" },
	{ .html = "<SCRIPT type=\"a>b\">x</Script >t", .text = "t" },
	{ .html = "t<script>never closed", .text = "t" },
	{ .html = "<title>T</title>body", .text = "body" },
	{ .html = "<title>unclosed", .text = "unclosed" },
	{ .html = "a<!-- <p>c</p> -->b", .text = "ab" },
	{ .html = "a<!-- unclosed", .text = "a" },
	{ .html = "&amp;&lt;&gt;&quot;&apos;&nbsp;x", .text = "&<>\"' x" },
	{ .html = "&#228;&#xE4;&#X00e4;&auml;", .text = "ääää" },
	{ .html = "&#0;&#xD800;&#99999999999;", .text = "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ .html = "AT&T &unknown; & &#; &#x;", .text = "AT&T &unknown; & &#; &#x;" },
	{ .html = "a < b > c", .text = "a < b > c" },
	{ .html = "<a href=\"x\">link</a>", .text = "link" },
	{ .html = "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>",
	  .text = "a b\nc" },
	{ .html = "<pre>  a\n   b</pre>c", .text = "  a\n   b\n\nc" },
	{ .html = "<div><div><p>x</p></div></div>", .text = "x" },
	{ .html = "<p", .text = "" },
	{ .html = "<img src=\"a.png\" alt=\"x\">", .text = "" },
	{ .html = "x\xff y", .text = "x\xef\xbf\xbd y" },
};

static void
test_html_to_text(gconstpointer data)
{
	const HtmlCase *c = data;
	g_autofree char *text = mr_parse_html_to_text(c->html);

	g_assert_true(g_utf8_validate(text, -1, NULL));
	g_assert_cmpstr(text, ==, c->text);
}

static void
test_skip_mbox_from(void)
{
	static const struct {
		const char *data;
		gsize skip;
	} cases[] = {
		{ .data = "", .skip = 0 },
		{ .data = "From", .skip = 0 },
		{ .data = "From: a@b\n", .skip = 0 },
		{ .data = "From a@b Mon Mar 18 14:00:00 2024\nFrom: a@b\n", .skip = 34 },
		{ .data = "From a@b Mon Mar 18 14:00:00 2024\r\nFrom: a@b\n", .skip = 35 },
		{ .data = "From a@b", .skip = 8 },
		{ .data = ">From a@b\n", .skip = 0 },
	};
	g_autoptr(GBytes) with = load_fixture("fwd-apple-mbox.eml");
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(with, &len);
	gsize skip = mr_parse_skip_mbox_from(data, len);
	g_autoptr(GBytes) without = g_bytes_new(data + skip, len - skip);
	g_autoptr(MrMessage) a = mr_parse_message(with, NULL);
	g_autoptr(MrMessage) b = mr_parse_message(without, NULL);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
		g_assert_cmpuint(mr_parse_skip_mbox_from((const guint8 *)cases[i].data, strlen(cases[i].data)),
				 ==, cases[i].skip);
	g_assert_cmpuint(mr_parse_skip_mbox_from(NULL, 0), ==, 0);
	/* One message, with or without the line. */
	g_assert_cmpuint(skip, >, 0);
	g_assert_cmpint(a->status, ==, MR_PARSE_OK);
	g_assert_cmpstr(a->subject, ==, b->subject);
	g_assert_cmpstr(a->from->email, ==, b->from->email);
	g_assert_cmpstr(a->body_text, ==, b->body_text);
	g_assert_cmpstr(a->message_id, ==, b->message_id);
}

/* Hostile and broken input, built here.  The parse must return, quickly,
 * with a sane message. */
typedef struct {
	const char *name;
	GBytes *(*make)(void);
	MrParseStatus status;
	const char *problem; /* substring of @problem */
} HostileCase;

static GBytes *
make_empty(void)
{
	return g_bytes_new(NULL, 0);
}

static GBytes *
make_mbox_line_only(void)
{
	return BYTES_LITERAL("From a@b Mon Mar 18 14:00:00 2024\n");
}

static GBytes *
make_plain_text(void)
{
	static const char t[] = "Hello,\nthis is just text without any header.\n";

	return BYTES_LITERAL(t);
}

static GBytes *
make_random(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(20240318);
	gsize len = 64 * 1024;
	guint8 *data = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		data[i] = (guint8)g_rand_int_range(rand, 0, 256);
	data[0] = 0x7f; /* no accidental header line at the start */
	return g_bytes_new_take(data, len);
}

static GBytes *
make_nul_first(void)
{
	static const char t[] = "\0From: a@customer.test\nSubject: s\n\nbody\n";

	return BYTES_LITERAL(t);
}

static GBytes *
make_deep_nesting(void)
{
	GString *s = g_string_new("From: a@customer.test\nSubject: deep\nMIME-Version: 1.0\n");

	for (guint i = 0; i < 3000; i++)
		g_string_append_printf(s, "Content-Type: multipart/mixed; boundary=\"d%u\"\n\n--d%u\n", i, i);
	g_string_append(s, "Content-Type: text/plain\n\ndeepest\n");
	for (guint i = 3000; i-- > 0;)
		g_string_append_printf(s, "--d%u--\n", i);
	return g_string_free_to_bytes(s);
}

/* Deeper than the walk goes (32), far less than GMime allows (1024). */
static GBytes *
make_nesting_40(void)
{
	GString *s = g_string_new("From: a@customer.test\nSubject: forty\n");

	for (guint i = 0; i < 40; i++)
		g_string_append_printf(s, "Content-Type: multipart/mixed; boundary=\"n%u\"\n\n--n%u\n", i, i);
	g_string_append(s, "Content-Type: text/plain\n\ntoo deep to be read\n");
	for (guint i = 40; i-- > 0;)
		g_string_append_printf(s, "--n%u--\n", i);
	return g_string_free_to_bytes(s);
}

static GBytes *
make_deep_rfc822(void)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < 2000; i++)
		g_string_append_printf(s, "From: level%u@customer.test\nSubject: level %u\n"
				       "Content-Type: message/rfc822\n\n", i, i);
	g_string_append(s, "From: last@customer.test\n\nthe end\n");
	return g_string_free_to_bytes(s);
}

static GBytes *
make_huge_subject(void)
{
	GString *s = g_string_new("From: a@customer.test\nSubject: ");

	for (guint i = 0; i < 1024 * 1024; i++)
		g_string_append_c(s, 'a' + (char)(i % 26));
	g_string_append(s, "\n\nbody\n");
	return g_string_free_to_bytes(s);
}

/* A multipart/mixed of @n small parts, with Subject: @subject. */
static GBytes *
parts_message(const char *subject, guint n)
{
	GString *s = g_string_new(NULL);

	g_string_printf(s, "From: a@customer.test\nSubject: %s\n"
			   "Content-Type: multipart/mixed; boundary=m\n\n", subject);
	for (guint i = 0; i < n; i++)
		g_string_append_printf(s, "--m\nContent-Type: application/octet-stream\n\n%u\n", i);
	g_string_append(s, "--m--\n");
	return g_string_free_to_bytes(s);
}

static GBytes *
make_many_parts(void)
{
	return parts_message("many", 5000);
}

/* As many as fit in parse.max_header_size (102400 bytes). */
static GBytes *
make_many_encoded_words(void)
{
	GString *s = g_string_new("From: a@customer.test\nSubject:");

	for (guint i = 0; i < 6000; i++)
		g_string_append(s, " =?UTF-8?B?w6Q=?=");
	g_string_append(s, "\n\nbody\n");
	return g_string_free_to_bytes(s);
}

static GBytes *
make_headers_only(void)
{
	return BYTES_LITERAL("From: a@customer.test\nSubject: s\n\n");
}

static GBytes *
make_no_blank_line(void)
{
	return BYTES_LITERAL("From: a@customer.test\nSubject: s\n");
}

static GBytes *
make_cut_in_header(void)
{
	return BYTES_LITERAL("From: a@customer.test\nSubj");
}

static GBytes *
make_blank_first_line(void)
{
	return BYTES_LITERAL("\nFrom: a@customer.test\n\nbody\n");
}

static GBytes *
make_garbage_headers(void)
{
	static const char t[] = "From: \xff\xfe\x80 <\xff@customer.test>\nTo: ,,,<>,@,\"\n"
				"Subject: =?UTF-8?B?w7w\nSubject: =?no-such-charset?Q?=FF?=\n"
				"Date: not a date\nMessage-ID: <<<>\nReferences: <a> junk <b\n"
				"Content-Type: text/plain; charset=\"\n"
				"Content-Transfer-Encoding: base64\n\n!!!!====@@@@\n";

	return BYTES_LITERAL(t);
}

static GBytes *
make_unclosed_multipart(void)
{
	static const char t[] = "From: a@customer.test\nContent-Type: multipart/alternative; boundary=x\n\n"
				"--x\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nSGVsbG8g";

	return BYTES_LITERAL(t);
}

static GBytes *
make_multipart_no_boundary(void)
{
	static const char t[] = "From: a@customer.test\nContent-Type: multipart/mixed\n\nhello\n";

	return BYTES_LITERAL(t);
}

static const HostileCase hostile_cases[] = {
	{ .name = "empty", .make = make_empty, .status = MR_PARSE_FAILED, .problem = "empty" },
	{ .name = "mbox-line-only", .make = make_mbox_line_only, .status = MR_PARSE_FAILED, .problem = "empty" },
	{ .name = "plain-text", .make = make_plain_text, .status = MR_PARSE_FAILED, .problem = "not a message" },
	{ .name = "random", .make = make_random, .status = MR_PARSE_FAILED, .problem = "not a message" },
	{ .name = "nul-first", .make = make_nul_first, .status = MR_PARSE_FAILED, .problem = "NUL byte at byte 0" },
	{ .name = "deep-nesting", .make = make_deep_nesting, .status = MR_PARSE_DEGRADED, .problem = "nesting" },
	{ .name = "nesting-40", .make = make_nesting_40, .status = MR_PARSE_DEGRADED,
	  .problem = "MIME nesting deeper than 32 levels" },
	{ .name = "deep-rfc822", .make = make_deep_rfc822, .status = MR_PARSE_DEGRADED, .problem = "nesting" },
	/* parse.max_header_size: the rest of the field is not parsed. */
	{ .name = "huge-subject", .make = make_huge_subject, .status = MR_PARSE_DEGRADED,
	  .problem = "a header field longer than 102400 bytes was cut" },
	{ .name = "many-parts", .make = make_many_parts, .status = MR_PARSE_OK },
	{ .name = "many-encoded-words", .make = make_many_encoded_words, .status = MR_PARSE_OK },
	{ .name = "headers-only", .make = make_headers_only, .status = MR_PARSE_OK },
	/* RFC 5322 allows it, GMime calls it truncated: degraded, not lost. */
	{ .name = "no-blank-line", .make = make_no_blank_line, .status = MR_PARSE_DEGRADED,
	  .problem = "truncated" },
	/* GMime gives up on a header block cut inside a field name. */
	{ .name = "cut-in-header", .make = make_cut_in_header, .status = MR_PARSE_FAILED,
	  .problem = "truncated" },
	{ .name = "blank-first-line", .make = make_blank_first_line, .status = MR_PARSE_FAILED },
	{ .name = "garbage-headers", .make = make_garbage_headers, .status = MR_PARSE_DEGRADED,
	  .problem = "conflicting headers" },
	{ .name = "unclosed-multipart", .make = make_unclosed_multipart, .status = MR_PARSE_DEGRADED,
	  .problem = "truncated" },
	{ .name = "multipart-no-boundary", .make = make_multipart_no_boundary, .status = MR_PARSE_DEGRADED,
	  .problem = "boundary" },
};

static void
test_hostile(gconstpointer data)
{
	const HostileCase *c = data;
	g_autoptr(GBytes) raw = c->make();
	g_autoptr(MrMessage) msg = mr_parse_message(raw, NULL);

	message_check(msg);
	if (msg->problem != NULL)
		g_test_message("problem: %s", msg->problem);
	g_assert_cmpint(msg->status, ==, c->status);
	if (c->problem != NULL)
		g_assert_nonnull(strstr(msg->problem, c->problem));
}

/* Specific outcomes of some hostile inputs. */
static void
test_hostile_details(void)
{
	g_autoptr(GBytes) huge = make_huge_subject();
	g_autoptr(MrMessage) h = mr_parse_message(huge, NULL);
	g_autoptr(GBytes) many = make_many_parts();
	g_autoptr(MrMessage) m = mr_parse_message(many, NULL);
	g_autoptr(GBytes) words = make_many_encoded_words();
	g_autoptr(MrMessage) w = mr_parse_message(words, NULL);
	g_autoptr(GBytes) unclosed = make_unclosed_multipart();
	g_autoptr(MrMessage) u = mr_parse_message(unclosed, NULL);
	g_autoptr(GBytes) rfc822 = make_deep_rfc822();
	g_autoptr(MrMessage) r = mr_parse_message(rfc822, NULL);

	g_assert_cmpuint(strlen(h->subject), ==, MR_PARSE_DEFAULT_MAX_HEADER_SIZE - strlen("Subject: "));
	g_assert_true(g_str_has_prefix(h->subject, "abcdefghijklmnopqrstuvwxyzabc"));
	g_assert_cmpstr(h->body_text, ==, "body\n");
	g_assert_cmpuint(m->attachments->len, ==, 5000);
	g_assert_cmpuint(g_utf8_strlen(w->subject, -1), ==, 6000);
	g_assert_cmpstr(u->body_text, ==, "Hello ");
	g_assert_true(r->is_forward);
	g_assert_cmpstr(r->original_from->email, ==, "level1@customer.test");
}

/* Parses one fixture many times: run with -m perf. */
static void
test_perf(void)
{
	g_autoptr(GBytes) raw = load_fixture("attachments.eml");
	g_autoptr(GTimer) timer = g_timer_new();
	guint n = 20000;

	for (guint i = 0; i < n; i++)
		mr_message_free(mr_parse_message(raw, NULL));
	g_test_minimized_result(g_timer_elapsed(timer, NULL), "parsed %u messages in %.2f s (%.0f/s)", n,
				g_timer_elapsed(timer, NULL), n / g_timer_elapsed(timer, NULL));
}

/* --- one message must never stop the others (issue 12) ------------------ */

/* An empty message, however the GBytes holds it: g_bytes_get_data() may
 * give NULL, and no pointer arithmetic may be done on that (UBSan). */
static void
test_empty_bytes(void)
{
	g_autoptr(GBytes) null_data = g_bytes_new(NULL, 0);
	g_autoptr(GBytes) static_empty = g_bytes_new_static("", 0);
	g_autoptr(GBytes) whole = BYTES_LITERAL("From: a@customer.test\n\nbody\n");
	g_autoptr(GBytes) slice = g_bytes_new_from_bytes(whole, 5, 0);
	GBytes *const cases[] = { null_data, static_empty, slice };

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(MrMessage) msg = mr_parse_message(cases[i], NULL);

		message_check(msg);
		g_assert_cmpint(msg->status, ==, MR_PARSE_FAILED);
		g_assert_cmpstr(msg->problem, ==, "empty message");
		g_assert_cmpstr(msg->subject, ==, "");
		g_assert_cmpstr(msg->body_text, ==, "");
		g_assert_null(msg->from);
	}
}

static GBytes *
make_limit_parts(void)
{
	return parts_message("parts", 20);
}

static GBytes *
make_limit_header_lines(void)
{
	GString *s = g_string_new("From: a@customer.test\nSubject: lines\nMessage-ID: <l@customer.test>\n");

	for (guint i = 0; i < 20; i++)
		g_string_append_printf(s, "X-Line-%u: v\n", i);
	g_string_append(s, "\nbody\n");
	return g_string_free_to_bytes(s);
}

/* @n header lines in a part, or in an attached message when @attached,
 * or none and @n lines of base64 when @encoded. */
static GBytes *
make_nested_lines(guint n, gboolean attached, gboolean encoded)
{
	GString *s = g_string_new("From: a@customer.test\nSubject: nested\n"
				  "Content-Type: multipart/mixed; boundary=m\n\n--m\n");

	if (attached || encoded)
		g_string_append(s, "Content-Type: message/rfc822\n");
	if (encoded)
		g_string_append(s, "Content-Transfer-Encoding: base64\n\n");
	if (attached)
		g_string_append(s, "\nFrom: inner@customer.test\n");
	for (guint i = 0; i < n; i++)
		g_string_append(s, encoded ? "RnJvbTogaW5uZXJAY3VzdG9tZXIudGVzdA==\n" : "X-Inner: v\n");
	g_string_append(s, "\ninner body\n--m--\n");
	return g_string_free_to_bytes(s);
}

static GBytes *
make_limit_part_lines(void)
{
	return make_nested_lines(30, FALSE, FALSE);
}

static GBytes *
make_limit_attached_lines(void)
{
	return make_nested_lines(30, TRUE, FALSE);
}

static GBytes *
make_limit_encoded_lines(void)
{
	return make_nested_lines(50, FALSE, TRUE);
}

/* @n To: addresses, some with a comma in a quoted name, then a From:
 * and a Cc:. */
static GBytes *
make_addresses(guint n)
{
	GString *s = g_string_new("To: ");

	for (guint i = 0; i < n; i++)
		g_string_append_printf(s, i % 2 == 0 ? "%s\"Doe, %u\" <u%u@customer.test>"
						     : "%su%u@customer.test", i == 0 ? "" : ",\n ", i, i);
	g_string_append(s, "\nFrom: a@customer.test\nCc: c1@customer.test, c2@customer.test\n"
			   "Subject: addresses\n\nbody\n");
	return g_string_free_to_bytes(s);
}

static GBytes *
make_limit_addresses(void)
{
	return make_addresses(30);
}

static GBytes *
make_limit_addresses_10(void)
{
	return make_addresses(10);
}

/* A Subject: of ten folded lines of 200 bytes, then more headers. */
static GBytes *
make_limit_header_size(void)
{
	GString *s = g_string_new("From: a@customer.test\nSubject:");

	for (guint i = 0; i < 10; i++) {
		g_string_append_c(s, i == 0 ? ' ' : '\t');
		for (guint k = 0; k < 200; k++)
			g_string_append_c(s, 'a' + (char)(i % 26));
		g_string_append(s, "\r\n");
	}
	g_string_append(s, "Message-ID: <size@customer.test>\n\nbody\n");
	return g_string_free_to_bytes(s);
}

static GBytes *
make_limit_references(void)
{
	GString *s = g_string_new("From: a@customer.test\nSubject: refs\nReferences:");

	for (guint i = 0; i < 500; i++)
		g_string_append_printf(s, "%s<r%u@customer.test>", i % 5 == 0 ? "\n " : " ", i);
	g_string_append(s, "\n\nbody\n");
	return g_string_free_to_bytes(s);
}

typedef struct {
	const char *name;
	GBytes *(*make)(void);
	MrParseOptions opts;
	MrParseStatus status;
	const char *problem;       /* substring of @problem */
	const char *subject;       /* NULL: not checked */
	gsize subject_len;         /* 0: not checked */
	const char *message_id;
	const char *body;          /* substring of body_text */
	const char *from;
	gint n_to, n_cc;           /* -1: not checked */
	gint n_attachments;
	const char *references[3]; /* count, first, last; NULL: not checked */
} LimitCase;

static const LimitCase limit_cases[] = {
	{ .name = "mime-parts", .make = make_limit_parts, .opts.max_mime_parts = 5,
	  .status = MR_PARSE_DEGRADED, .problem = "bytes: more than 5 MIME parts", .subject = "parts",
	  .n_to = -1, .n_cc = -1, .n_attachments = 5 },
	/* 20 parts and the closing boundary. */
	{ .name = "mime-parts-at-limit", .make = make_limit_parts, .opts.max_mime_parts = 21,
	  .status = MR_PARSE_OK, .subject = "parts", .n_to = -1, .n_cc = -1, .n_attachments = 20 },
	{ .name = "header-lines", .make = make_limit_header_lines, .opts.max_header_lines = 10,
	  .status = MR_PARSE_DEGRADED, .problem = "bytes: more than 10 header lines", .subject = "lines",
	  .message_id = "l@customer.test", .from = "a@customer.test", .n_to = -1, .n_cc = -1,
	  .n_attachments = -1 },
	{ .name = "header-lines-at-limit", .make = make_limit_header_lines, .opts.max_header_lines = 23,
	  .status = MR_PARSE_OK, .body = "body", .n_to = -1, .n_cc = -1, .n_attachments = -1 },
	{ .name = "header-lines-in-part", .make = make_limit_part_lines, .opts.max_header_lines = 20,
	  .status = MR_PARSE_DEGRADED, .problem = "more than 20 header lines", .subject = "nested",
	  .n_to = -1, .n_cc = -1, .n_attachments = -1 },
	{ .name = "header-lines-in-attached-message", .make = make_limit_attached_lines,
	  .opts.max_header_lines = 20, .status = MR_PARSE_DEGRADED, .problem = "more than 20 header lines",
	  .n_to = -1, .n_cc = -1, .n_attachments = -1 },
	/* GMime does not parse an encoded message/rfc822: its lines are body. */
	{ .name = "encoded-attached-message", .make = make_limit_encoded_lines, .opts.max_header_lines = 20,
	  .status = MR_PARSE_OK, .n_to = -1, .n_cc = -1, .n_attachments = 1 },
	/* A comma in a quoted name separates nothing; From: is counted apart. */
	{ .name = "addresses", .make = make_limit_addresses, .opts.max_addresses = 10,
	  .status = MR_PARSE_DEGRADED, .problem = "more than 10 addresses", .subject = "addresses",
	  .from = "a@customer.test", .body = "body", .n_to = 10, .n_cc = 0, .n_attachments = 0 },
	{ .name = "addresses-at-limit", .make = make_limit_addresses_10, .opts.max_addresses = 12,
	  .status = MR_PARSE_OK, .from = "a@customer.test", .n_to = 10, .n_cc = 2, .n_attachments = 0 },
	/* The cut ends the field, not the header block. */
	{ .name = "header-size", .make = make_limit_header_size, .opts.max_header_size = 1024,
	  .status = MR_PARSE_DEGRADED, .problem = "a header field longer than 1024 bytes was cut",
	  .subject_len = 5 * 200 + 4 /* five lines and the tabs that fold them */,
	  .message_id = "size@customer.test",
	  .body = "body", .n_to = -1, .n_cc = -1, .n_attachments = 0 },
	/* Trimmed like mail clients trim it: no problem. */
	{ .name = "references", .make = make_limit_references, .opts.max_references = 10,
	  .status = MR_PARSE_OK, .n_to = -1, .n_cc = -1, .n_attachments = 0,
	  .references = { "10", "r0@customer.test", "r499@customer.test" } },
};

static void
test_limits(gconstpointer data)
{
	const LimitCase *c = data;
	g_autoptr(GBytes) raw = c->make();
	g_autoptr(MrMessage) msg = mr_parse_message(raw, &c->opts);

	message_check(msg);
	if (msg->problem != NULL)
		g_test_message("problem: %s", msg->problem);
	g_assert_cmpint(msg->status, ==, c->status);
	if (c->problem != NULL)
		g_assert_nonnull(strstr(msg->problem, c->problem));
	if (c->subject != NULL)
		g_assert_cmpstr(msg->subject, ==, c->subject);
	if (c->subject_len > 0)
		g_assert_cmpuint(strlen(msg->subject), ==, c->subject_len);
	if (c->message_id != NULL)
		g_assert_cmpstr(msg->message_id, ==, c->message_id);
	if (c->body != NULL)
		g_assert_nonnull(strstr(msg->body_text, c->body));
	if (c->from != NULL)
		g_assert_cmpstr(msg->from->email, ==, c->from);
	if (c->n_to >= 0)
		g_assert_cmpuint(msg->to->len, ==, (guint)c->n_to);
	if (c->n_cc >= 0)
		g_assert_cmpuint(msg->cc->len, ==, (guint)c->n_cc);
	if (c->n_attachments >= 0)
		g_assert_cmpuint(msg->attachments->len, ==, (guint)c->n_attachments);
	if (c->references[0] != NULL) {
		g_assert_cmpuint(msg->references->len, ==, g_ascii_strtoull(c->references[0], NULL, 10));
		g_assert_cmpstr(g_ptr_array_index(msg->references, 0), ==, c->references[1]);
		g_assert_cmpstr(g_ptr_array_index(msg->references, msg->references->len - 1), ==,
				c->references[2]);
	}
}

/* The memory cases of issue 12 at the default limits: 200,000 empty MIME
 * parts (1 MB) and 300,000 header lines (0.9 MB) took 260 and 190 MB (a
 * million parts 1.3 GB); now GMime sees the first 10000 parts or 50000
 * lines. */
static void
test_limits_defaults(void)
{
	GString *parts = g_string_new("From: a@customer.test\nContent-Type: multipart/mixed; boundary=b\n\n");
	GString *lines = g_string_new("From: a@customer.test\n");
	g_autoptr(GBytes) parts_raw = NULL;
	g_autoptr(GBytes) lines_raw = NULL;
	g_autoptr(MrMessage) p = NULL;
	g_autoptr(MrMessage) l = NULL;

	for (guint i = 0; i < 200000; i++)
		g_string_append(parts, "--b\n\n");
	for (guint i = 0; i < 300000; i++)
		g_string_append(lines, "a:\n");
	parts_raw = g_string_free_to_bytes(parts);
	lines_raw = g_string_free_to_bytes(lines);
	p = mr_parse_message(parts_raw, NULL);
	l = mr_parse_message(lines_raw, NULL);
	message_check(p);
	message_check(l);
	g_assert_cmpint(p->status, ==, MR_PARSE_DEGRADED);
	g_assert_nonnull(strstr(p->problem, "more than 10000 MIME parts"));
	g_assert_cmpstr(p->from->email, ==, "a@customer.test");
	g_assert_cmpint(l->status, ==, MR_PARSE_DEGRADED);
	g_assert_nonnull(strstr(l->problem, "more than 50000 header lines"));
	g_assert_cmpstr(l->from->email, ==, "a@customer.test");
}

/* Random messages from pieces that the limits scan cares about (fields,
 * folds, addresses, boundaries, attached messages, blank lines), parsed
 * with tiny limits: each parse returns a sane message (and, under ASan,
 * touches no byte it should not). */
static void
test_limits_random(void)
{
	static const char *const pieces[] = {
		"From: a@customer.test\n", "To: b@x.test, \"c, d\" <c@x.test>,\n e@x.test\n",
		"Cc: \"q\\\"uote, x\" <q@x.test>, r@x.test\n", "Subject: s\n", " folded\n", "\tfolded\n",
		"Content-Type: multipart/mixed; boundary=b\n", "Content-Type:\n message/rfc822\n",
		"Content-Type: multipart/digest; boundary=b\n", "Content-Transfer-Encoding: base64\n",
		"References: <a@x> <b@x> <c@x>\n", "\n", "\r\n", "--b\n", "--b--\n", "text\n",
		"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", " \n",
		"no colon\n", "\0\n", "=?utf-8?B?w6Q=?=\n",
	};
	static const MrParseOptions tiny = {
		.max_mime_parts = 3, .max_header_lines = 6, .max_addresses = 2, .max_references = 1,
		.max_header_size = 40,
	};
	g_autoptr(GRand) rand = g_rand_new_with_seed(12);

	for (guint n = 0; n < 1000; n++) {
		GString *s = g_string_new(NULL);
		guint k = (guint)g_rand_int_range(rand, 1, 40);
		g_autoptr(GBytes) raw = NULL;
		g_autoptr(MrMessage) limited = NULL;
		g_autoptr(MrMessage) whole = NULL;

		for (guint i = 0; i < k; i++) {
			const char *p = pieces[g_rand_int_range(rand, 0, G_N_ELEMENTS(pieces))];

			/* "\0\n" is two bytes */
			g_string_append_len(s, p, *p == '\0' ? 2 : (gssize)strlen(p));
		}
		raw = g_string_free_to_bytes(s);
		limited = mr_parse_message(raw, &tiny);
		whole = mr_parse_message(raw, NULL);
		message_check(limited);
		message_check(whole);
		g_assert_cmpuint(limited->to->len, <=, whole->to->len);
		g_assert_cmpuint(limited->references->len, <=, 1);
	}
}

/* A megabyte of <title> without </title>: one search for the end tag,
 * not one per tag (issue 12: 86 s).  Unclosed, a title is text; closed,
 * everything up to the end tag is hidden. */
static void
test_html_unclosed_linear(void)
{
	const guint n = 200000;
	GString *open = g_string_new(NULL);
	GString *want = g_string_new(NULL);
	GString *closed = g_string_new(NULL);
	g_autofree char *open_text = NULL;
	g_autofree char *closed_text = NULL;
	g_autofree char *want_text = NULL;
	g_autofree char *html = NULL;
	g_autofree char *style_text = NULL;

	for (guint i = 0; i < n; i++) {
		g_string_append(open, "<title>x\n");
		g_string_append(want, i == 0 ? "x" : " x");
		g_string_append(closed, "<TITLE>y<style>s");
	}
	g_string_append(closed, "</title>end");
	want_text = g_string_free(want, FALSE);
	open_text = mr_parse_html_to_text(open->str);
	closed_text = mr_parse_html_to_text(closed->str);
	g_assert_cmpstr(open_text, ==, want_text);
	g_assert_cmpstr(closed_text, ==, "end");
	/* An unclosed <style> hides the rest. */
	html = g_strconcat(open->str, "<style>", open->str, NULL);
	style_text = mr_parse_html_to_text(html);
	g_assert_cmpstr(style_text, ==, want_text);
	g_string_free(open, TRUE);
	g_string_free(closed, TRUE);
}

/* Text without a charset that is not UTF-8: each NUL becomes U+FFFD, in
 * one conversion, not one per NUL; a SUB byte among NULs too. */
static void
test_nul_bytes_undeclared(void)
{
	GString *s = g_string_new("From: a@customer.test\nContent-Type: text/plain\n\n");
	GString *want = g_string_new(NULL);
	g_autoptr(GBytes) raw = NULL;
	g_autoptr(MrMessage) msg = NULL;
	g_autofree char *want_text = NULL;

	for (guint i = 0; i < 100000; i++) {
		g_string_append_len(s, "\xe4\0", 2);
		g_string_append(want, "\xc3\xa4\xef\xbf\xbd");
	}
	g_string_append_len(s, "\x1a" "b", 2);
	g_string_append(want, "\xef\xbf\xbd" "b");
	raw = g_string_free_to_bytes(s);
	msg = mr_parse_message(raw, NULL);
	want_text = g_string_free(want, FALSE);
	message_check(msg);
	g_assert_cmpint(msg->status, ==, MR_PARSE_DEGRADED);
	g_assert_nonnull(strstr(msg->problem, "NUL byte"));
	g_assert_cmpstr(msg->body_text, ==, want_text);
}

/* Adds one test per row of @table, named @prefix/<row>. */
static void
add_table(const char *prefix, gconstpointer table, gsize row_size, guint n_rows, GTestDataFunc func)
{
	for (guint i = 0; i < n_rows; i++) {
		g_autofree char *path = g_strdup_printf("%s/%u", prefix, i);

		g_test_add_data_func(path, (const char *)table + i * row_size, func);
	}
}

#define ADD_TABLE(prefix, table, func) add_table(prefix, table, sizeof(table)[0], G_N_ELEMENTS(table), func)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	mr_parse_init();

	for (guint i = 0; i < G_N_ELEMENTS(fixture_cases); i++) {
		g_autofree char *stem = g_strndup(fixture_cases[i].file, strcspn(fixture_cases[i].file, "."));
		g_autofree char *path = g_strdup_printf("/mailroom/parse/fixture/%s", stem);

		g_test_add_data_func(path, &fixture_cases[i], test_fixture);
	}
	for (guint i = 0; i < G_N_ELEMENTS(hostile_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/parse/hostile/%s", hostile_cases[i].name);

		g_test_add_data_func(path, &hostile_cases[i], test_hostile);
	}
	g_test_add_func("/mailroom/parse/hostile/details", test_hostile_details);
	g_test_add_func("/mailroom/parse/attachment/details", test_attachment_details);
	g_test_add_func("/mailroom/parse/attachment/rfc822", test_attachment_rfc822);
	ADD_TABLE("/mailroom/parse/subject/rfc2047-padding", padding_cases, test_subject_rfc2047_padding);
	ADD_TABLE("/mailroom/parse/subject/normalise", normalise_cases, test_subject_normalise);
	g_test_add_func("/mailroom/parse/charset/fallback", test_fallback_charsets);
	for (guint i = 0; i < G_N_ELEMENTS(header_charset_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/parse/charset/header-from-body/%u", i);

		g_test_add_data_func(path, &header_charset_cases[i], test_header_body_charset);
	}
	ADD_TABLE("/mailroom/parse/charset/body", body_charset_cases, test_body_charsets);
	ADD_TABLE("/mailroom/parse/auto/markers", auto_cases, test_auto_markers);
	g_test_add_func("/mailroom/parse/auto/reason-length", test_auto_reason_length);
	ADD_TABLE("/mailroom/parse/forward/inline", inline_forward_cases, test_inline_forward);
	ADD_TABLE("/mailroom/parse/html/to-text", html_cases, test_html_to_text);
	g_test_add_func("/mailroom/parse/mbox/skip-from", test_skip_mbox_from);
	g_test_add_func("/mailroom/parse/empty/bytes", test_empty_bytes);
	for (guint i = 0; i < G_N_ELEMENTS(limit_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/parse/limits/%s", limit_cases[i].name);

		g_test_add_data_func(path, &limit_cases[i], test_limits);
	}
	g_test_add_func("/mailroom/parse/limits/defaults", test_limits_defaults);
	g_test_add_func("/mailroom/parse/limits/random", test_limits_random);
	g_test_add_func("/mailroom/parse/html/unclosed-linear", test_html_unclosed_linear);
	g_test_add_func("/mailroom/parse/charset/nul-bytes", test_nul_bytes_undeclared);
	if (g_test_perf())
		g_test_add_func("/mailroom/parse/perf/attachments", test_perf);
	return g_test_run();
}
