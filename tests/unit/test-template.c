/* test-template.c - the placeholders of outgoing mail (mr-template.h):
 * checked with the line of a mistake, rendered once, made safe for a
 * header or a body, bounded however many placeholders and however long
 * the values. */
#include <string.h>

#include "mailroom/mr-template.h"

#include "mr-test-util.h"

static const struct {
	const char *text;
	int code; /* -1: valid */
	const char *message;
} check_cases[] = {
	{ "", -1, NULL },
	{ "no placeholder at all", -1, NULL },
	{ "{{contact.name}}", -1, NULL },
	{ "Hello {{ contact.name }} <{{\tcontact.email\t}}>", -1, NULL },
	{ "{{owner.name}}{{owner.email}}{{record.id}}{{record.subject}}"
	  "{{record.status}}{{message.subject}}", -1, NULL },
	{ "a lone }} and { and } are text", -1, NULL },
	{ MR_TEMPLATE_TICKET_ACK_SUBJECT, -1, NULL },
	{ MR_TEMPLATE_TICKET_ACK_BODY, -1, NULL },
	{ "Hello,\n\n{{contact.phone}}", MR_TEMPLATE_ERROR_UNKNOWN,
	  "unknown placeholder {{contact.phone}} at line 3" },
	{ "{{ Contact.Name }}", MR_TEMPLATE_ERROR_UNKNOWN,
	  "unknown placeholder {{Contact.Name}} at line 1" },
	{ "{{{contact.name}}}", MR_TEMPLATE_ERROR_UNKNOWN,
	  "unknown placeholder {{{contact.name}} at line 1" },
	{ "{{a\x1b]0;x\x07}}", MR_TEMPLATE_ERROR_UNKNOWN,
	  "unknown placeholder {{a\\x1b]0;x\\x07}} at line 1" },
	{ "{{xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}}",
	  MR_TEMPLATE_ERROR_UNKNOWN,
	  "unknown placeholder {{xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...}}"
	  " at line 1" },
	{ "ok {{record.id}}\n{{contact.name", MR_TEMPLATE_ERROR_UNCLOSED, "unclosed {{ at line 2" },
	{ "{{contact.name\n}}", MR_TEMPLATE_ERROR_UNCLOSED, "unclosed {{ at line 1" },
	{ "\n\n{{ {{contact.name}}", MR_TEMPLATE_ERROR_UNCLOSED, "unclosed {{ at line 3" },
	{ "x {{", MR_TEMPLATE_ERROR_UNCLOSED, "unclosed {{ at line 1" },
	{ "{{}}", MR_TEMPLATE_ERROR_EMPTY, "empty placeholder {{}} at line 1" },
	{ "a\n{{ }}", MR_TEMPLATE_ERROR_EMPTY, "empty placeholder {{ }} at line 2" },
};

static void
test_check(gconstpointer data)
{
	guint i = GPOINTER_TO_UINT(data);
	g_autoptr(GError) error = NULL;
	gboolean ok = mr_template_check(check_cases[i].text, &error);

	if (check_cases[i].code < 0) {
		g_assert_no_error(error);
		g_assert_true(ok);
	} else {
		g_assert_false(ok);
		g_assert_error(error, MR_TEMPLATE_ERROR, check_cases[i].code);
		g_assert_cmpstr(error->message, ==, check_cases[i].message);
	}
}

static const MrTemplateValues values = {
	.contact_name = "Jörg Müller",
	.contact_email = "joerg@customer.test",
	.owner_name = "Ann Agent",
	.owner_email = "ann@acme.test",
	.record_id = "TKT-3",
	.record_subject = "Printer on fire",
	.record_status = "open",
	.message_subject = "Printer on fire",
};

static const struct {
	const char *text;
	const MrTemplateValues *v;
	gboolean for_header;
	gsize max_len;
	const char *want;
	gboolean truncated;
} render_cases[] = {
	{ MR_TEMPLATE_TICKET_ACK_SUBJECT, &values, TRUE, 998, "[TKT-3] Re: Printer on fire", FALSE },
	{ "{{ contact.name }} <{{contact.email}}>, {{owner.name}} <{{owner.email}}>: "
	  "{{record.id}} {{record.subject}} is {{record.status}} ({{message.subject}})",
	  &values, FALSE, 1000,
	  "Jörg Müller <joerg@customer.test>, Ann Agent <ann@acme.test>: "
	  "TKT-3 Printer on fire is open (Printer on fire)", FALSE },
	/* empty values: NULL members, or no values at all */
	{ "Hello {{contact.name}},", &(MrTemplateValues){ 0 }, FALSE, 100, "Hello ,", FALSE },
	{ "Hello {{contact.name}},", NULL, FALSE, 100, "Hello ,", FALSE },
	/* a header folds the white space that an empty value leaves */
	{ "  [{{record.id}}]  Re:  {{message.subject}} ", &(MrTemplateValues){ .record_id = "TKT-1" },
	  TRUE, 100, "[TKT-1] Re:", FALSE },
	/* a value is inserted once, never expanded again */
	{ "{{contact.name}}", &(MrTemplateValues){ .contact_name = "{{contact.email}}",
						     .contact_email = "x@y" },
	  FALSE, 100, "{{contact.email}}", FALSE },
	/* what the check refuses is copied as written */
	{ "{{contact.phone}} {{ }} {{contact.name", &values, FALSE, 100,
	  "{{contact.phone}} {{ }} {{contact.name", FALSE },
	{ "{{ {{record.id}}", &values, FALSE, 100, "{{ TKT-3", FALSE },
	/* header injection: a value cannot start a header line */
	{ "Re: {{message.subject}}",
	  &(MrTemplateValues){ .message_subject = "Hi\r\nBcc: victim@x.test\r\n\r\nbody" }, TRUE,
	  998, "Re: Hi Bcc: victim@x.test body", FALSE },
	{ "a\r\n\tb\x7f" "c\xc2\x85" "d\x01", NULL, TRUE, 100, "a b c d", FALSE },
	/* a body: CR LF and CR become LF, controls but tab and LF dropped */
	{ "a\r\nb\rc\x01\x7f" "d\te\xc2\x9b" "f\n", NULL, FALSE, 100, "a\nb\ncd\tef\n", FALSE },
	{ "{{contact.name}}\n", &(MrTemplateValues){ .contact_name = "x\r" }, FALSE, 100, "x\n\n",
	  FALSE },
	/* bytes that are not UTF-8 */
	{ "a\xff" "b\xe2\x82", NULL, FALSE, 100, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd", FALSE },
	{ "a\xff", NULL, TRUE, 100, "a\xef\xbf\xbd", FALSE },
	/* the bound, at a character boundary */
	{ "{{contact.name}}", &values, FALSE, 3, "Jö", TRUE },
	{ "{{contact.name}}", &values, FALSE, 13, "Jörg Müller", FALSE },
	{ "{{contact.name}}", &values, FALSE, 8, "Jörg M", TRUE },
	{ "{{contact.name}}", &values, FALSE, 10, "Jörg Mül", TRUE },
	{ "abc  def", NULL, TRUE, 4, "abc", TRUE },
	{ "abc", NULL, TRUE, 0, "", TRUE },
};

static void
test_render(gconstpointer data)
{
	guint i = GPOINTER_TO_UINT(data);
	gboolean truncated = !render_cases[i].truncated;
	g_autofree char *got = mr_template_render(render_cases[i].text, render_cases[i].v,
						  render_cases[i].for_header, render_cases[i].max_len,
						  &truncated);

	g_assert_cmpstr(got, ==, render_cases[i].want);
	g_assert_cmpint(truncated, ==, render_cases[i].truncated);
	g_assert_true(g_utf8_validate(got, -1, NULL));
}

static void
test_clean(void)
{
	g_autofree char *header = mr_template_clean("  Eve\r\nBcc: victim@x.test ", TRUE,
						    G_MAXSIZE, NULL);
	g_autofree char *body = mr_template_clean("a\r\n.\r\n", FALSE, G_MAXSIZE, NULL);
	g_autofree char *none = mr_template_clean(NULL, TRUE, 10, NULL);

	g_assert_cmpstr(header, ==, "Eve Bcc: victim@x.test");
	g_assert_cmpstr(body, ==, "a\n.\n");
	g_assert_cmpstr(none, ==, "");
}

/* 10,000 placeholders of a 100 KB value: the result stops at the bound,
 * and so does the memory (the GString grows to about the bound). */
static void
test_render_bound(void)
{
	g_autoptr(GString) text = g_string_new(NULL);
	g_autofree char *big = g_malloc(100 * 1024 + 1);
	MrTemplateValues v = { .contact_name = big };
	g_autofree char *got = NULL;
	g_autofree char *subject = NULL;
	gboolean truncated = FALSE;

	memset(big, 'x', 100 * 1024);
	big[100 * 1024] = '\0';
	for (int i = 0; i < 10000; i++)
		g_string_append(text, "{{contact.name}} ");
	got = mr_template_render(text->str, &v, FALSE, 1024 * 1024, &truncated);
	g_assert_true(truncated);
	g_assert_cmpuint(strlen(got), <=, 1024 * 1024);
	g_assert_cmpuint(strlen(got), >, 1024 * 1024 - 100 * 1024);
	subject = mr_template_render(text->str, &v, TRUE, 998, &truncated);
	g_assert_true(truncated);
	g_assert_cmpuint(strlen(subject), ==, 998);
}

/* 100,000 placeholders render and check in time linear in the text: a
 * quadratic scan would take minutes here. */
static void
test_render_many(void)
{
	g_autoptr(GString) text = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	g_autofree char *got = NULL;
	gboolean truncated = TRUE;
	gint64 start = g_get_monotonic_time();

	for (int i = 0; i < 100000; i++)
		g_string_append(text, i % 2 ? "{{record.id}}" : "{{ contact.name }}\n");
	g_assert_true(mr_template_check(text->str, &error));
	g_assert_no_error(error);
	got = mr_template_render(text->str, &values, FALSE, G_MAXSIZE, &truncated);
	g_assert_false(truncated);
	g_assert_cmpuint(strlen(got), ==, 50000 * (strlen("Jörg Müller\n") + strlen("TKT-3")));
	/* an unclosed "{{" on each of 100,000 lines, and a run of braces */
	g_string_truncate(text, 0);
	for (int i = 0; i < 100000; i++)
		g_string_append(text, "{{ a line without its end\n");
	g_string_append(text, "\n");
	for (int i = 0; i < 100000; i++)
		g_string_append(text, "{{{");
	g_clear_pointer(&got, g_free);
	got = mr_template_render(text->str, &values, FALSE, G_MAXSIZE, &truncated);
	g_assert_cmpuint(strlen(got), ==, text->len);
	g_assert_false(mr_template_check(text->str, &error));
	g_assert_error(error, MR_TEMPLATE_ERROR, MR_TEMPLATE_ERROR_UNCLOSED);
	/* generous: linear takes milliseconds, even under valgrind well
	 * below this */
	g_assert_cmpint(g_get_monotonic_time() - start, <, 60 * G_USEC_PER_SEC);
}

static void
test_placeholders(void)
{
	const char *const *names = mr_template_placeholders();
	guint n = 0;

	for (; names[n] != NULL; n++) {
		g_autofree char *text = g_strdup_printf("{{%s}}", names[n]);
		g_autofree char *got = NULL;

		g_assert_true(mr_template_check(text, NULL));
		got = mr_template_render(text, &(MrTemplateValues){ 0 }, TRUE, 10, NULL);
		g_assert_cmpstr(got, ==, "");
	}
	g_assert_cmpuint(n, ==, 8);
	g_assert_cmpstr(names[0], ==, "contact.name");
	g_assert_cmpstr(names[7], ==, "message.subject");
}

static void
test_ticket_ack(void)
{
	g_autofree char *body = mr_template_render(MR_TEMPLATE_TICKET_ACK_BODY, &values, FALSE,
						   1024 * 1024, NULL);

	g_assert_nonnull(strstr(body, "ticket TKT-3"));
	g_assert_nonnull(strstr(body, "[TKT-3]"));
	g_assert_nonnull(strstr(body, "agent will answer"));
	g_assert_true(g_str_has_suffix(body, "The support team\n"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	mr_test_add_table("/mailroom/act/template/check", G_N_ELEMENTS(check_cases), test_check);
	mr_test_add_table("/mailroom/act/template/render", G_N_ELEMENTS(render_cases), test_render);
	g_test_add_func("/mailroom/act/template/clean", test_clean);
	g_test_add_func("/mailroom/act/template/bound", test_render_bound);
	g_test_add_func("/mailroom/act/template/many", test_render_many);
	g_test_add_func("/mailroom/act/template/placeholders", test_placeholders);
	g_test_add_func("/mailroom/act/template/ticket-ack", test_ticket_ack);
	return g_test_run();
}
