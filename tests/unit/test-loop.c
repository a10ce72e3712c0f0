/* test-loop.c - mr_loop_refusal(): which messages mailroom never answers
 * automatically, and the reason it gives.  Each case is a message parsed
 * by mr_parse_message(), so the header fields arrive as routing sees them. */
#include <string.h>

#include "mailroom/mr-loop.h"
#include "mr-test-util.h"

typedef struct {
	const char *name;
	const char *headers;   /* header block, without the From: when @from is NULL */
	const char *envelope;  /* (nullable) */
	const char *want;      /* (nullable): the reason, NULL when allowed */
} LoopCase;

#define CUSTOMER "From: Jane Doe <jane@customer.test>\nTo: support@acme.test\n"

static const LoopCase loop_cases[] = {
	/* allowed */
	{ "customer", CUSTOMER "Subject: printer jam\n", "jane@customer.test", NULL },
	{ "customer-no-envelope", CUSTOMER "Subject: printer jam\n", NULL, NULL },
	{ "customer-bracketed-envelope", CUSTOMER, "<jane@customer.test>", NULL },
	{ "auto-submitted-no", CUSTOMER "Auto-Submitted: no\n", "jane@customer.test", NULL },
	{ "auto-submitted-no-comment", CUSTOMER "Auto-Submitted: No (typed by a person)\n", "jane@customer.test",
	  NULL },
	{ "x-autoreply-no", CUSTOMER "X-Autoreply: no\n", "jane@customer.test", NULL },
	{ "precedence-normal", CUSTOMER "Precedence: normal\n", "jane@customer.test", NULL },
	{ "suppress-other", CUSTOMER "X-Auto-Response-Suppress: None\n", "jane@customer.test", NULL },
	/* a word glued to other letters is a name */
	{ "noreplyfan", "From: <noreplyfan@x.test>\n", "noreplyfan@x.test", NULL },
	{ "bouncer", "From: <bouncer@x.test>\n", "bouncer@x.test", NULL },
	{ "postmasters-guild", "From: <postmastersguild@x.test>\n", NULL, NULL },
	{ "reply", "From: <reply@x.test>\n", NULL, NULL },
	/* SRS through an own alias: the envelope alone does not make it own */
	{ "srs-own-envelope", CUSTOMER, "srs0=ab12=xy=customer.test=jane@acme.test", NULL },

	/* mailroom's own mail, whatever host it names */
	{ "loop-header", CUSTOMER "X-Mailroom-Loop: mx1.acme.test\n", "jane@customer.test",
	  "sent by mailroom (X-Mailroom-Loop: mx1.acme.test)" },
	{ "loop-header-case", CUSTOMER "x-mailroom-LOOP: other.example\nAuto-Submitted: auto-replied\n", "",
	  "sent by mailroom (X-Mailroom-Loop: other.example)" },

	/* envelope */
	{ "null-envelope", CUSTOMER, "", "null envelope sender" },
	{ "null-envelope-brackets", CUSTOMER, "<>", "null envelope sender" },
	{ "null-envelope-blanks", CUSTOMER, " < > ", "null envelope sender" },

	/* header fields of automatic mail, names in any case */
	{ "auto-replied", CUSTOMER "Auto-Submitted: auto-replied\n", "jane@customer.test",
	  "auto-reply (Auto-Submitted: auto-replied)" },
	{ "auto-replied-case", CUSTOMER "AUTO-SUBMITTED: Auto-Replied (vacation)\n", "jane@customer.test",
	  "auto-reply (Auto-Submitted: Auto-Replied (vacation))" },
	{ "auto-generated", CUSTOMER "auto-submitted: auto-generated\n", "jane@customer.test",
	  "automatic mail (Auto-Submitted: auto-generated)" },
	{ "auto-submitted-empty", CUSTOMER "Auto-Submitted:\n", "jane@customer.test",
	  "automatic mail (Auto-Submitted: )" },
	{ "x-autoreply", CUSTOMER "X-Autoreply: yes\n", "jane@customer.test", "auto-reply (X-Autoreply: yes)" },
	{ "x-autorespond", CUSTOMER "x-autorespond: vacation\n", "jane@customer.test",
	  "auto-reply (X-Autorespond: vacation)" },
	{ "suppress-all", CUSTOMER "X-Auto-Response-Suppress: All\n", "jane@customer.test",
	  "auto-answers suppressed (X-Auto-Response-Suppress: All)" },
	{ "suppress-list", CUSTOMER "X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply\n", "jane@customer.test",
	  "auto-answers suppressed (X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply)" },
	{ "suppress-ndr", CUSTOMER "X-Auto-Response-Suppress: ndr\n", "jane@customer.test",
	  "auto-answers suppressed (X-Auto-Response-Suppress: ndr)" },
	{ "precedence-bulk", CUSTOMER "Precedence: bulk\n", "jane@customer.test", "bulk mail (Precedence: bulk)" },
	{ "precedence-junk", CUSTOMER "PRECEDENCE: Junk\n", "jane@customer.test", "bulk mail (Precedence: Junk)" },
	{ "precedence-list", CUSTOMER "Precedence: list\n", "jane@customer.test", "list mail (Precedence: list)" },
	{ "precedence-auto-reply", CUSTOMER "Precedence: auto_reply\n", "jane@customer.test",
	  "auto-reply (Precedence: auto_reply)" },
	{ "list-id", CUSTOMER "List-Id: Users <users.lists.example.com>\n", "jane@customer.test",
	  "list mail (List-Id)" },
	{ "list-unsubscribe", CUSTOMER "list-unsubscribe: <mailto:leave@lists.example.com>\n", "jane@customer.test",
	  "list mail (List-Unsubscribe)" },
	{ "exchange-generated", CUSTOMER "X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent\n",
	  "jane@customer.test", "automatic mail (X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent)" },
	/* the first rule decides, not the first field */
	{ "rule-order", CUSTOMER "List-Id: <l.example.com>\nAuto-Submitted: auto-replied\n", "jane@customer.test",
	  "auto-reply (Auto-Submitted: auto-replied)" },
	/* a long value is quoted short, on one line */
	{ "long-value", CUSTOMER "Auto-Submitted: auto-generated "
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
	  "jane@customer.test",
	  "automatic mail (Auto-Submitted: auto-generated xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx)" },

	/* what only the parser classifies */
	{ "return-path-null", CUSTOMER "Return-Path: <>\n", NULL, "delivery report (Return-Path: <>)" },
	{ "report-structure", "From: <mailer@mx.customer.test>\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
	  "--b\nContent-Type: text/plain\n\nfailed\n--b\nContent-Type: message/delivery-status\n\n"
	  "Reporting-MTA: dns; mx.customer.test\n\nFinal-Recipient: rfc822; x@customer.test\n"
	  "Action: failed\nStatus: 5.1.1\n--b--\n", "mx@customer.test",
	  "delivery report (Content-Type: multipart/report)" },

	/* addresses nobody reads */
	{ "noreply", "From: Shop <noreply@x.test>\n", "shop@x.test", "sender noreply@x.test" },
	{ "no-reply", "From: <No-Reply@X.test>\n", NULL, "sender no-reply@x.test" },
	{ "no_reply", "From: <no_reply@x.test>\n", NULL, "sender no_reply@x.test" },
	{ "no.reply", "From: <no.reply@x.test>\n", NULL, "sender no.reply@x.test" },
	{ "noreply-suffix", "From: <noreply-abc@x.test>\n", NULL, "sender noreply-abc@x.test" },
	{ "noreply-plus", "From: <noreply+orders@x.test>\n", NULL, "sender noreply+orders@x.test" },
	{ "noreply-prefix", "From: <shop.noreply@x.test>\n", NULL, "sender shop.noreply@x.test" },
	{ "do-not-reply", "From: <do-not-reply@x.test>\n", NULL, "sender do-not-reply@x.test" },
	{ "donotreply", "From: <DoNotReply@x.test>\n", NULL, "sender donotreply@x.test" },
	{ "do_not_reply", "From: <do_not_reply@x.test>\n", NULL, "sender do_not_reply@x.test" },
	{ "mailer-daemon", "From: Mail Delivery System <MAILER-DAEMON@mx.x.test>\n", NULL,
	  "sender mailer-daemon@mx.x.test" },
	{ "postmaster", "From: <postmaster@x.test>\n", NULL, "sender postmaster@x.test" },
	{ "bounce", "From: <bounce@x.test>\n", NULL, "sender bounce@x.test" },
	{ "bounces-suffix", "From: <bounces-42@x.test>\n", NULL, "sender bounces-42@x.test" },
	{ "envelope-batv", CUSTOMER, "msprvs1=17abc=bounces-4711@ses.example", 
	  "envelope sender msprvs1=17abc=bounces-4711@ses.example" },
	{ "envelope-mailer-daemon", CUSTOMER, "MAILER-DAEMON@mx.customer.test",
	  "envelope sender mailer-daemon@mx.customer.test" },
	{ "reply-to-noreply", CUSTOMER "Reply-To: <noreply@customer.test>\n", NULL,
	  "reply-to noreply@customer.test" },

	/* mailroom and the organisation */
	{ "mailroom-from", "From: <Support@acme.test>\n", NULL, "mailroom address support@acme.test" },
	{ "mailroom-detail", "From: <crm+tkt-7@acme.test>\n", NULL, "mailroom address crm+tkt-7@acme.test" },
	{ "mailroom-envelope", CUSTOMER, "sales@acme.test", "mailroom address sales@acme.test" },
	{ "own-domain", "From: Tom <tom@acme.test>\n", "tom@acme.test", "own domain acme.test" },
	{ "own-domain-no-from", "To: support@acme.test\n", "tom@acme.test", "own domain acme.test" },
	{ "other-domain", "From: Tom <tom@acme.test.example>\n", NULL, NULL },
};

static MrMessage *
loop_parse(const char *headers)
{
	g_autofree char *text = g_strconcat(headers, strstr(headers, "\n\n") != NULL ? "" : "\nbody\n", NULL);
	g_autoptr(GBytes) raw = g_bytes_new(text, strlen(text));

	return mr_parse_message(raw, NULL);
}

static void
test_case(gconstpointer data)
{
	const LoopCase *c = data;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrMessage) msg = loop_parse(c->headers);
	g_autofree char *reason = mr_loop_refusal(cfg, msg, c->envelope);

	g_assert_cmpstr(reason, ==, c->want);
}

/* A message built by hand has no header list; the addresses still count. */
static void
test_no_headers(void)
{
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrMessage) plain = mr_test_message("jane@customer.test", "support@acme.test", "hi");
	g_autoptr(MrMessage) noreply = mr_test_message("noreply@x.test", "support@acme.test", "hi");
	g_autoptr(MrMessage) nobody = mr_test_message(NULL, "support@acme.test", "hi");
	g_autofree char *r1 = mr_loop_refusal(cfg, plain, NULL);
	g_autofree char *r2 = mr_loop_refusal(cfg, noreply, NULL);
	g_autofree char *r3 = mr_loop_refusal(cfg, nobody, NULL);

	g_assert_null(r1);
	g_assert_cmpstr(r2, ==, "sender noreply@x.test");
	g_assert_null(r3);
}

/* Control characters and broken UTF-8 in what is quoted stay out of the
 * log line. */
static void
test_printable(void)
{
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrMessage) msg = mr_test_message("jane@customer.test", "support@acme.test", "hi");
	g_autofree char *reason = NULL;
	g_autofree char *env = NULL;
	MrHeader *h = g_new0(MrHeader, 1);

	h->name = g_strdup("x-mailroom-loop");
	h->value = g_strdup("evil\r\nhost\x1b[31m");
	msg->headers = g_ptr_array_new();
	g_ptr_array_add(msg->headers, h);
	reason = mr_loop_refusal(cfg, msg, NULL);
	g_assert_cmpstr(reason, ==, "sent by mailroom (X-Mailroom-Loop: evil??host?[31m)");
	g_free(h->name);
	g_free(h->value);
	g_free(h);
	g_ptr_array_set_size(msg->headers, 0);
	env = mr_loop_refusal(cfg, msg, "noreply-\xff@x.test");
	g_assert_cmpstr(env, ==, "envelope sender noreply-\xef\xbf\xbd@x.test");
}

/* The parsed fixtures of the parse tests. */
static void
test_fixtures(void)
{
	static const struct {
		const char *file;
		const char *want;
	} fixtures[] = {
		{ "reply-plain.eml", NULL },
		{ "auto-submitted.eml", "auto-reply (Auto-Submitted: auto-replied (vacation))" },
		{ "vacation-x-autoreply.eml", "auto-reply (X-Autoreply: yes)" },
		{ "list-id.eml", "list mail (List-Id)" },
		{ "bulk-precedence.eml", "bulk mail (Precedence: bulk)" },
		{ "bounce-report.eml", "auto-reply (Auto-Submitted: auto-replied)" },
	};
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");

	for (guint i = 0; i < G_N_ELEMENTS(fixtures); i++) {
		g_autoptr(GBytes) raw = mr_test_data(fixtures[i].file);
		g_autoptr(MrMessage) msg = mr_parse_message(raw, NULL);
		g_autofree char *reason = mr_loop_refusal(cfg, msg, "someone@customer.test");

		g_assert_cmpstr(reason, ==, fixtures[i].want);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(loop_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/route/loop/%s", loop_cases[i].name);

		g_test_add_data_func(path, &loop_cases[i], test_case);
	}
	g_test_add_func("/mailroom/route/loop/no-headers", test_no_headers);
	g_test_add_func("/mailroom/route/loop/printable", test_printable);
	g_test_add_func("/mailroom/route/loop/fixtures", test_fixtures);
	return g_test_run();
}
