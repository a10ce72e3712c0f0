/* mr-test-util.h - helpers shared by the unit tests (header-only). */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-imap-config.h"
#include "mailroom/mr-parse.h"

/* The sections mailroomd and mailroomctl load: the imap list. */
static inline const MrConfigSection *const *
mr_test_config_sections(void)
{
	static const MrConfigSection *const sections[] = { &mr_imap_config_section, NULL };

	return sections;
}

/* A configuration like etc/mailroom.conf with its database at @db and
 * @extra (nullable) appended; a "store" group in @extra replaces the
 * default one (synchronous = "normal"). */
static inline MrConfig *
mr_test_config_extra(const char *db, const char *extra)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	gboolean own_store = extra != NULL && strstr(extra, "store") != NULL;
	g_autofree char *text = g_strdup_printf(
		"database = \"%s\";\n"
		"domains = [ \"acme.test\" ];\n"
		"addresses = (\n"
		"  { address = \"crm@acme.test\"; role = \"bcc\"; },\n"
		"  { address = \"support@acme.test\"; role = \"support\"; },\n"
		"  { address = \"sales@acme.test\"; role = \"sales\"; }\n"
		");\n"
		"ids = { opportunity_prefix = \"OPP\"; ticket_prefix = \"TKT\"; };\n"
		"%s\n%s\n",
		db, own_store ? "" : "store = { synchronous = \"normal\"; };",
		extra != NULL ? extra : "");
	int fd = g_file_open_tmp("mr-test-XXXXXX.conf", &path, &error);
	MrConfig *cfg;

	g_assert_no_error(error);
	close(fd);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	cfg = mr_config_load(path, mr_test_config_sections(), &error);
	g_assert_no_error(error);
	g_unlink(path);
	return cfg;
}

static inline MrConfig *
mr_test_config(const char *db)
{
	return mr_test_config_extra(db, NULL);
}

/* Returns: (transfer full): the bytes of @path, relative to $MR_TEST_DATA
 * (default tests/data); fails the test when it cannot be read. */
static inline GBytes *
mr_test_data(const char *path)
{
	const char *dir = g_getenv("MR_TEST_DATA");
	g_autofree char *full = g_build_filename(dir != NULL ? dir : "tests/data", path, NULL);
	g_autoptr(GError) error = NULL;
	char *text = NULL;
	gsize len = 0;

	g_file_get_contents(full, &text, &len, &error);
	g_assert_no_error(error);
	return g_bytes_new_take(text, len);
}

static inline MrAddress *
mr_test_address(const char *email, const char *name)
{
	MrAddress *a = g_new0(MrAddress, 1);

	a->email = g_strdup(email);
	a->name = g_strdup(name);
	return a;
}

/* A parsed message built by hand: From @from, To @to (comma-separated),
 * Subject @subject. */
static inline MrMessage *
mr_test_message(const char *from, const char *to, const char *subject)
{
	MrMessage *m = g_new0(MrMessage, 1);
	g_auto(GStrv) tos = g_strsplit(to, ",", -1);

	m->status = MR_PARSE_OK;
	m->subject = g_strdup(subject);
	m->subject_normalised = mr_subject_normalise(subject, &m->is_forward);
	m->from = from != NULL ? mr_test_address(from, NULL) : NULL;
	m->to = g_ptr_array_new_with_free_func((GDestroyNotify)mr_address_free);
	m->cc = g_ptr_array_new_with_free_func((GDestroyNotify)mr_address_free);
	m->references = g_ptr_array_new_with_free_func(g_free);
	m->auth_results = g_ptr_array_new_with_free_func(g_free);
	m->attachments = g_ptr_array_new_with_free_func((GDestroyNotify)mr_attachment_free);
	for (char **t = tos; *t != NULL; t++)
		g_ptr_array_add(m->to, mr_test_address(g_strstrip(*t), NULL));
	m->body_text = g_strdup("");
	return m;
}

/* Adds a case of @func for each row 0 to @n - 1 of a table, as
 * "@prefix/ROW", the row given as GUINT_TO_POINTER(ROW). */
static inline void
mr_test_add_table(const char *prefix, guint n, GTestDataFunc func)
{
	for (guint i = 0; i < n; i++) {
		g_autofree char *path = g_strdup_printf("%s/%u", prefix, i);

		g_test_add_data_func(path, GUINT_TO_POINTER(i), func);
	}
}
