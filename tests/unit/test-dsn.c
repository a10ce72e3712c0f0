/* test-dsn.c - delivery reports (mr-dsn.h): the reports and bounces of
 * tests/data/dsn/ as the MTAs that write them send them, what is not a
 * report, and hostile reports built here (their cost stays bounded). */
#include <string.h>

#include "mailroom/mr-dsn.h"
#include "mr-test-util.h"

typedef struct {
	const char *final_recipient;
	const char *original_recipient;
	const char *action;
	const char *status;
	const char *diagnostic;
	gboolean hard;
} ExpectRecipient;

typedef struct {
	const char *file;
	gboolean is_dsn;              /* FALSE: mr_dsn_parse() returns NULL */
	gboolean is_report;
	const char *original_message_id;
	const char *reporting_mta;
	guint n_recipients;
	ExpectRecipient r[6];
} DsnCase;

static const DsnCase dsn_cases[] = {
	{
		.file = "postfix-hard.eml",
		.is_dsn = TRUE,
		.is_report = TRUE,
		.original_message_id = "tkt-7-ack.5@acme.test",
		.reporting_mta = "mail.acme.test",
		.n_recipients = 1,
		.r = { { "nobody@customer.test", "nobody@customer.test", "failed", "5.1.1",
			 "550 5.1.1 <nobody@customer.test>: Recipient address rejected: User unknown in virtual "
			 "mailbox table",
			 TRUE } },
	},
	{
		.file = "postfix-delayed.eml",
		.is_dsn = TRUE,
		.is_report = TRUE,
		.original_message_id = "opp-3-quote.12@acme.test",
		.reporting_mta = "mail.acme.test",
		.n_recipients = 1,
		.r = { { "slow@customer.test", "slow@customer.test", "delayed", "4.4.1",
			 "connect to mx.customer.test[192.0.2.25]:25: Connection timed out", FALSE } },
	},
	{
		.file = "exim.eml",
		.is_dsn = TRUE,
		.original_message_id = "tkt-8-ack.6@acme.test",
		.n_recipients = 1,
		.r = { { "gone@customer.test", NULL, "failed", "5.1.1",
			 "550 5.1.1 <gone@customer.test>: Recipient address rejected: User unknown", TRUE } },
	},
	{
		.file = "qmail.eml",
		.is_dsn = TRUE,
		.original_message_id = "tkt-9-ack.7@acme.test",
		.n_recipients = 2,
		.r = {
			{ "nosuch@customer.test", NULL, "failed", "5.1.1",
			  "Sorry, no mailbox here by that name. (#5.1.1)", TRUE },
			{ "full@customer.test", NULL, "failed", "5.2.2",
			  "552 5.2.2 <full@customer.test>: Mailbox full", TRUE },
		},
	},
	{
		.file = "postfix-plain.eml",
		.is_dsn = TRUE,
		.original_message_id = "tkt-13-ack.13@acme.test",
		.n_recipients = 1,
		.r = { { "left@customer.test", NULL, "failed", "5.1.1",
			 "550 5.1.1 <left@customer.test>: Recipient address rejected: User unknown in virtual "
			 "mailbox table (in reply to RCPT TO command)",
			 TRUE } },
	},
	{
		.file = "sendmail.eml",
		.is_dsn = TRUE,
		.original_message_id = "tkt-16-ack.16@acme.test",
		.n_recipients = 1,
		.r = { { "missing@customer.test", NULL, "failed", "5.1.1",
			 "550 5.1.1 <missing@customer.test>... User unknown)", TRUE } },
	},
	{
		.file = "microsoft365.eml",
		.is_dsn = TRUE,
		.is_report = TRUE,
		.original_message_id = "tkt-10-ack.8@acme.test",
		.reporting_mta = "AM0PR01MB1234.eurprd01.prod.exchangelabs.com",
		.n_recipients = 1,
		.r = { { "nobody@contoso.com", NULL, "failed", "5.1.10",
			 "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
			 TRUE } },
	},
	{
		.file = "gmail.eml",
		.is_dsn = TRUE,
		.is_report = TRUE,
		.original_message_id = "tkt-11-ack.9@acme.test",
		.reporting_mta = "googlemail.com",
		.n_recipients = 1,
		.r = { { "nobody.here@gmail.com", NULL, "failed", "5.1.1",
			 "550-5.1.1 The email account that you tried to reach does not exist. Please try "
			 "550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 "
			 "unnecessary spaces. For more information, go to 550 5.1.1 "
			 "https://support.google.com/mail/?p=NoSuchUser "
			 "2adb3069b0e04-5130a0d2a2csi1234567e87.123 - gsmtp",
			 TRUE } },
	},
	{
		.file = "multi-recipient.eml",
		.is_dsn = TRUE,
		.is_report = TRUE,
		.original_message_id = "opp-14-pricelist.14@acme.test",
		.reporting_mta = "mail.acme.test",
		.n_recipients = 6,
		.r = {
			{ "ann@customer.test", "ann@customer.test", "failed", "5.1.1",
			  "550 5.1.1 <ann@customer.test>: User unknown", TRUE },
			/* type in capitals, address in brackets; no blank line after */
			{ "bob@customer.test", NULL, "delayed", "4.2.2", "452 4.2.2 Mailbox full", FALSE },
			{ "carol@customer.test", NULL, "relayed", "2.0.0", NULL, FALSE },
			/* an X.400 recipient names no mailbox */
			{ NULL, NULL, "failed", "5.0.0", NULL, TRUE },
			/* no Status: the reply decides */
			{ "erin@customer.test", NULL, "failed", NULL, "554 Transaction failed: message rejected", TRUE },
			/* an Action RFC 3464 does not know */
			{ "frank@customer.test", NULL, NULL, "5.4.7", "421 4.4.2 Connection dropped", FALSE },
		},
	},
	{
		/* a report of good form about a mail nobody sent: parsed; the
		 * caller checks the VERP token */
		.file = "forged.eml",
		.is_dsn = TRUE,
		.is_report = TRUE,
		.original_message_id = "never-sent-by-mailroom@acme.test",
		.reporting_mta = "mx.evil.example",
		.n_recipients = 1,
		.r = { { "ceo@customer.test", NULL, "failed", "5.1.1", "550 5.1.1 user unknown", TRUE } },
	},
	{ .file = "autoreply.eml" },
	{ .file = "read-receipt.eml" },
	{ .file = "garbage.eml" },
	{ .file = "../reply-plain.eml" },
	{ .file = "../auto-submitted.eml" },
	{ .file = "../vacation-x-autoreply.eml" },
	{ .file = "../fwd-rfc822.eml" },
	{ .file = "../not-a-message.eml" },
	{
		.file = "../bounce-report.eml",
		.is_dsn = TRUE,
		.is_report = TRUE,
		.original_message_id = "tkt-7-ack@acme.test",
		.reporting_mta = "mail.acme.test",
		.n_recipients = 1,
		.r = { { "nobody@customer.test", NULL, "failed", "5.1.1", NULL, TRUE } },
	},
};

static GBytes *
load(const char *file)
{
	g_autofree char *path = g_build_filename("dsn", file, NULL);

	return mr_test_data(path);
}

/* What every report satisfies, whatever its input. */
static void
dsn_check(const MrDsn *d)
{
	g_assert_nonnull(d->recipients);
	g_assert_cmpuint(d->recipients->len, <=, MR_DSN_MAX_RECIPIENTS);
	g_assert_true(d->original_message_id == NULL || g_utf8_validate(d->original_message_id, -1, NULL));
	g_assert_true(d->reporting_mta == NULL || g_utf8_validate(d->reporting_mta, -1, NULL));
	for (guint i = 0; i < d->recipients->len; i++) {
		const MrDsnRecipient *r = g_ptr_array_index(d->recipients, i);

		if (r->diagnostic != NULL) {
			g_assert_true(g_utf8_validate(r->diagnostic, -1, NULL));
			g_assert_cmpuint(strlen(r->diagnostic), <=, MR_DSN_DIAGNOSTIC_MAX);
			for (const char *p = r->diagnostic; *p != '\0'; p++)
				g_assert_true((guchar)*p >= 0x20 && *p != 0x7f);
		}
		g_assert_true(r->final_recipient == NULL || g_utf8_validate(r->final_recipient, -1, NULL));
		g_assert_true(r->status == NULL || strlen(r->status) >= 5);
	}
}

static void
test_fixture(gconstpointer data)
{
	const DsnCase *c = data;
	g_autoptr(GBytes) raw = load(c->file);
	g_autoptr(MrDsn) d = mr_dsn_parse(raw);

	if (!c->is_dsn) {
		g_assert_null(d);
		return;
	}
	g_assert_nonnull(d);
	dsn_check(d);
	g_assert_cmpint(d->is_report, ==, c->is_report);
	g_assert_cmpstr(d->original_message_id, ==, c->original_message_id);
	g_assert_cmpstr(d->reporting_mta, ==, c->reporting_mta);
	g_assert_cmpuint(d->recipients->len, ==, c->n_recipients);
	for (guint i = 0; i < c->n_recipients; i++) {
		const MrDsnRecipient *r = g_ptr_array_index(d->recipients, i);
		const ExpectRecipient *e = &c->r[i];

		g_assert_cmpstr(r->final_recipient, ==, e->final_recipient);
		g_assert_cmpstr(r->original_recipient, ==, e->original_recipient);
		g_assert_cmpstr(r->action, ==, e->action);
		g_assert_cmpstr(r->status, ==, e->status);
		g_assert_cmpstr(r->diagnostic, ==, e->diagnostic);
		g_assert_cmpint(mr_dsn_is_hard(d, r), ==, e->hard);
	}
}

/* Every prefix of every fixture parses (the sanitizers watch). */
static void
test_truncated(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(dsn_cases); i++) {
		g_autoptr(GBytes) raw = load(dsn_cases[i].file);
		gsize len = g_bytes_get_size(raw);

		for (gsize n = 0; n < len; n += 37) {
			g_autoptr(GBytes) part = g_bytes_new_from_bytes(raw, 0, n);
			g_autoptr(MrDsn) d = mr_dsn_parse(part);

			if (d != NULL)
				dsn_check(d);
		}
	}
}

#define REPORT_HEAD                                                                 \
	"From: MAILER-DAEMON@mail.acme.test\n"                                      \
	"To: bounces+1-0123abcd@acme.test\n"                                        \
	"Subject: Undelivered Mail Returned to Sender\n"                            \
	"MIME-Version: 1.0\n"                                                       \
	"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n" \
	"\n"                                                                        \
	"--b\n"                                                                     \
	"Content-Type: text/plain\n"                                                \
	"\n"                                                                        \
	"failed\n"                                                                  \
	"--b\n"                                                                     \
	"Content-Type: message/delivery-status\n"

static MrDsn *
parse_string(GString *s)
{
	g_autoptr(GBytes) raw = g_bytes_new(s->str, s->len);

	return mr_dsn_parse(raw);
}

/* 100,000 recipient groups: the first MR_DSN_MAX_RECIPIENTS are read. */
static void
test_many_groups(void)
{
	g_autoptr(GString) s = g_string_new(REPORT_HEAD "\nReporting-MTA: dns; mail.acme.test\n");
	g_autoptr(MrDsn) d = NULL;
	const MrDsnRecipient *last;
	gint64 start;

	for (guint i = 0; i < 100000; i++)
		g_string_append_printf(s, "\nFinal-Recipient: rfc822; r%u@customer.test\nAction: failed\n"
					  "Status: 5.1.1\n", i);
	g_string_append(s, "--b--\n");
	start = g_get_monotonic_time();
	d = parse_string(s);
	g_test_message("%zu bytes, %u groups: %" G_GINT64_FORMAT " ms", s->len, 100000,
		       (g_get_monotonic_time() - start) / 1000);
	g_assert_nonnull(d);
	dsn_check(d);
	g_assert_cmpuint(d->recipients->len, ==, MR_DSN_MAX_RECIPIENTS);
	last = g_ptr_array_index(d->recipients, MR_DSN_MAX_RECIPIENTS - 1);
	g_assert_cmpstr(last->final_recipient, ==, "r99@customer.test");
	g_assert_true(mr_dsn_is_hard(d, NULL));
}

/* 100,000 MIME parts: the limits scan stops GMime early. */
static void
test_many_parts(void)
{
	g_autoptr(GString) s = g_string_new(REPORT_HEAD "\nFinal-Recipient: rfc822; a@customer.test\n"
							"Action: failed\nStatus: 5.1.1\n");
	g_autoptr(MrDsn) d = NULL;
	gint64 start;

	for (guint i = 0; i < 100000; i++)
		g_string_append(s, "--b\nContent-Type: text/plain\n\nx\n");
	g_string_append(s, "--b--\n");
	start = g_get_monotonic_time();
	d = parse_string(s);
	g_test_message("%zu bytes, 100000 parts: %" G_GINT64_FORMAT " ms", s->len,
		       (g_get_monotonic_time() - start) / 1000);
	g_assert_nonnull(d);
	g_assert_cmpuint(d->recipients->len, ==, 1);
}

/* A 10 MB header field and a 10 MB Diagnostic-Code. */
static void
test_huge_fields(void)
{
	g_autoptr(GString) s = g_string_new("X-Junk: ");
	g_autoptr(MrDsn) d = NULL;
	const MrDsnRecipient *r;

	for (guint i = 0; i < 10 * 1024 * 1024 / 64; i++)
		g_string_append(s, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789\n ");
	g_string_append(s, "end\n" REPORT_HEAD "\nFinal-Recipient: rfc822; a@customer.test\nAction: failed\n"
			   "Diagnostic-Code: smtp; 550 5.1.1");
	for (guint i = 0; i < 10 * 1024 * 1024 / 64; i++)
		g_string_append(s, "\n ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ012345678");
	g_string_append(s, "\nStatus: 5.1.1\n--b--\n");
	d = parse_string(s);
	g_assert_nonnull(d);
	dsn_check(d);
	g_assert_cmpuint(d->recipients->len, ==, 1);
	r = g_ptr_array_index(d->recipients, 0);
	g_assert_true(g_str_has_prefix(r->diagnostic, "550 5.1.1 ABCDEFGHIJ"));
	g_assert_cmpuint(strlen(r->diagnostic), <=, MR_DSN_DIAGNOSTIC_MAX);
	/* past the bytes read of the part: the rest is not seen */
	g_assert_null(r->status);
	g_assert_true(mr_dsn_is_hard(d, r));
}

/* Control characters, broken UTF-8 and encodings in the report. */
static void
test_hostile_text(void)
{
	static const char raw[] = REPORT_HEAD
		"\n"
		"Reporting-MTA: dns; mx\x01.evil\xff.example\n"
		"\n"
		"Final-Recipient: rfc822; \"a b\"@customer.test\n"
		"Action: FAILED\n"
		"Status: 5.1.1.1\n"
		"Diagnostic-Code: smtp; 550 \x1b[31m red\x7f\xc3\x28 \t  tail\r\n"
		"\n"
		"Final-Recipient: rfc822; x@y@customer.test\n"
		"Status: 9.1.1\n"
		"\n"
		"Final-Recipient: rfc822;\n"
		"Status: 5.1\n"
		"--b--\n";
	g_autoptr(GBytes) bytes = g_bytes_new_static(raw, sizeof(raw) - 1);
	g_autoptr(MrDsn) d = mr_dsn_parse(bytes);
	const MrDsnRecipient *r;

	g_assert_nonnull(d);
	dsn_check(d);
	g_assert_cmpstr(d->reporting_mta, ==, "mx\\x01.evil\xef\xbf\xbd.example");
	g_assert_cmpuint(d->recipients->len, ==, 3);
	r = g_ptr_array_index(d->recipients, 0);
	g_assert_null(r->final_recipient);
	g_assert_cmpstr(r->action, ==, "failed");
	g_assert_null(r->status);
	g_assert_cmpstr(r->diagnostic, ==, "550 \\x1B[31m red\\x7F\xef\xbf\xbd( tail");
	g_assert_true(mr_dsn_is_hard(d, r));
	for (guint i = 1; i < 3; i++) {
		r = g_ptr_array_index(d->recipients, i);
		g_assert_null(r->final_recipient);
		g_assert_null(r->status);
		g_assert_false(mr_dsn_is_hard(d, r));
	}
}

static void
test_base64_status(void)
{
	g_autofree char *fields = g_base64_encode(
		(const guchar *)"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; b@customer.test\r\n"
				"Action: failed\r\nStatus: 5.2.1\r\n",
		strlen("Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; b@customer.test\r\n"
		       "Action: failed\r\nStatus: 5.2.1\r\n"));
	g_autoptr(GString) s = g_string_new(REPORT_HEAD "Content-Transfer-Encoding: base64\n\n");
	g_autoptr(MrDsn) d = NULL;
	const MrDsnRecipient *r;

	g_string_append_printf(s, "%s\n--b--\n", fields);
	d = parse_string(s);
	g_assert_nonnull(d);
	g_assert_cmpstr(d->reporting_mta, ==, "mx.example");
	g_assert_cmpuint(d->recipients->len, ==, 1);
	r = g_ptr_array_index(d->recipients, 0);
	g_assert_cmpstr(r->final_recipient, ==, "b@customer.test");
	g_assert_cmpstr(r->status, ==, "5.2.1");
}

/* Exim's warning: not yet delivered, still trying. */
static void
test_plain_delay(void)
{
	static const char raw[] =
		"From: Mail Delivery System <Mailer-Daemon@mx.customer.test>\n"
		"To: bounces+3-0123abcd@acme.test\n"
		"Subject: Warning: message 1rmWxY-0004Zq-1c delayed 24 hours\n"
		"Auto-Submitted: auto-replied\n"
		"\n"
		"This message was created automatically by mail delivery software.\n"
		"A message that you sent has not yet been delivered to one or more of its\n"
		"recipients after more than 24 hours on the queue on mx.customer.test.\n"
		"\n"
		"The message identifier is:     1rmWxY-0004Zq-1c\n"
		"\n"
		"The address to which the message has not yet been delivered is:\n"
		"\n"
		"  later@customer.test\n"
		"    host mail.customer.test [192.0.2.30]\n"
		"    Delay reason: SMTP error from remote mail server after RCPT TO:<later@customer.test>:\n"
		"    451 4.7.1 Greylisted, try again later\n"
		"\n"
		"No action is required on your part. Delivery attempts will continue for\n"
		"some time, and this warning may be repeated at intervals if the message\n"
		"remains undelivered.\n";
	g_autoptr(GBytes) bytes = g_bytes_new_static(raw, sizeof(raw) - 1);
	g_autoptr(MrDsn) d = mr_dsn_parse(bytes);
	const MrDsnRecipient *r;

	g_assert_nonnull(d);
	g_assert_false(d->is_report);
	g_assert_cmpuint(d->recipients->len, ==, 1);
	r = g_ptr_array_index(d->recipients, 0);
	g_assert_cmpstr(r->final_recipient, ==, "later@customer.test");
	g_assert_cmpstr(r->action, ==, "delayed");
	g_assert_cmpstr(r->status, ==, "4.7.1");
	g_assert_cmpstr(r->diagnostic, ==, "451 4.7.1 Greylisted, try again later");
	g_assert_false(mr_dsn_is_hard(d, NULL));
}

static void
test_is_hard(void)
{
	static const struct {
		const char *action, *status, *diagnostic;
		gboolean hard;
	} cases[] = {
		{ "failed", "5.1.1", NULL, TRUE },
		{ "failed", "5.1.1", "452 4.2.2 full", TRUE },  /* the Status decides */
		{ "failed", "4.4.7", "550 5.1.1 unknown", FALSE },
		{ "failed", NULL, "550 5.1.1 unknown", TRUE },
		{ "failed", NULL, "Host said: 550 unknown", TRUE },
		{ "failed", NULL, "no mailbox (#5.1.1)", TRUE },
		{ "failed", NULL, "421 try later", FALSE },
		{ "failed", NULL, "mailbox size 500 bytes", FALSE },
		{ "failed", NULL, "mailbox size 500", FALSE },
		{ "failed", NULL, "host 203.0.113.5 refused", FALSE },
		{ "failed", NULL, "host 5.4.3.2 refused", FALSE },
		{ "failed", NULL, NULL, FALSE },
		{ "delayed", "5.1.1", NULL, FALSE },
		{ "delivered", "2.0.0", NULL, FALSE },
		{ NULL, "5.1.1", NULL, FALSE },
	};
	g_autoptr(MrDsn) d = g_new0(MrDsn, 1);

	d->recipients = g_ptr_array_new();
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		MrDsnRecipient r = {
			.action = (char *)cases[i].action,
			.status = (char *)cases[i].status,
			.diagnostic = (char *)cases[i].diagnostic,
		};

		g_assert_cmpint(mr_dsn_is_hard(d, &r), ==, cases[i].hard);
	}
	g_assert_false(mr_dsn_is_hard(d, NULL));
}

static void
test_empty(void)
{
	g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
	g_autoptr(GBytes) mbox = g_bytes_new_static("From x\n", 7);

	g_assert_null(mr_dsn_parse(empty));
	g_assert_null(mr_dsn_parse(mbox));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(dsn_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/parse/dsn/fixture/%s", dsn_cases[i].file);

		g_strdelimit(path + strlen("/mailroom/parse/dsn/fixture/"), "./", '-');
		g_test_add_data_func(path, &dsn_cases[i], test_fixture);
	}
	g_test_add_func("/mailroom/parse/dsn/truncated", test_truncated);
	g_test_add_func("/mailroom/parse/dsn/many-groups", test_many_groups);
	g_test_add_func("/mailroom/parse/dsn/many-parts", test_many_parts);
	g_test_add_func("/mailroom/parse/dsn/huge-fields", test_huge_fields);
	g_test_add_func("/mailroom/parse/dsn/hostile-text", test_hostile_text);
	g_test_add_func("/mailroom/parse/dsn/base64", test_base64_status);
	g_test_add_func("/mailroom/parse/dsn/plain-delay", test_plain_delay);
	g_test_add_func("/mailroom/parse/dsn/is-hard", test_is_hard);
	g_test_add_func("/mailroom/parse/dsn/empty", test_empty);
	return g_test_run();
}
