/* test-database-name.c - mr_store_database_name(): the database as logs
 * and output show it.  A PostgreSQL URI is masked the way libpq parses
 * it (the driver module, PQconninfoParse): a password behind a
 * percent-encoded key is hidden too (issue 20, item 16); what libpq
 * cannot parse has all of its query hidden.  Needs the module beside the
 * unit tests' directory (the build tree), not a server. */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-store.h"

static const struct {
	const char *db;
	const char *want;
} name_cases[] = {
	{ "/var/lib/mailroom/mailroom.db", "/var/lib/mailroom/mailroom.db" },
	{ "var/my password=x.db", "var/my password=x.db" },
	{ "postgresql://mailroom@db.test/mailroom", "postgresql://mailroom@db.test/mailroom" },
	{ "postgresql://mailroom:s3cret@db.test:5432/mailroom",
	  "postgresql://mailroom:***@db.test:5432/mailroom" },
	{ "postgres://u:p%40ss@db.test/m", "postgres://u:***@db.test/m" },
	{ "postgresql://db.test/mailroom?user=m&password=s3cret&sslmode=require",
	  "postgresql://db.test/mailroom?user=m&password=***&sslmode=require" },
	/* the case: libpq decodes the key, so must we */
	{ "postgresql://db.test/m?pass%77ord=s3cret", "postgresql://db.test/m?pass%77ord=***" },
	{ "postgresql://db.test/m?%70%61ssword=s3cret&application_name=x",
	  "postgresql://db.test/m?%70%61ssword=***&application_name=x" },
	/* every key libpq marks secret */
	{ "postgresql://db.test/m?sslpassword=k3y", "postgresql://db.test/m?sslpassword=***" },
	{ "postgresql://u:pw@db.test/m?password=x&password=y",
	  "postgresql://u:***@db.test/m?password=***&password=***" },
	{ "postgresql://db.test/mypassword=x", "postgresql://db.test/mypassword=x" },
	{ "postgresql://h1:5432,h2:5433/m?target_session_attrs=read-write",
	  "postgresql://h1:5432,h2:5433/m?target_session_attrs=read-write" },
	/* what libpq refuses (an unknown key, a bad escape): the whole query */
	{ "postgresql://db.test/m?pass%77ord=s3cret&bogus=1", "postgresql://db.test/m?***" },
	{ "postgresql://u:pw@db.test/m?pass%zzord=s3cret", "postgresql://u:***@db.test/m?***" },
};

static void
test_name(gconstpointer data)
{
	guint i = GPOINTER_TO_UINT(data);
	g_autofree char *text = g_strdup_printf(
		"database = \"%s\";\naddresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n",
		name_cases[i].db);
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autoptr(MrConfig) cfg = NULL;
	g_autofree char *name = NULL;
	int fd = g_file_open_tmp("mr-dbname-XXXXXX.conf", &path, &error);

	g_assert_no_error(error);
	close(fd);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	cfg = mr_config_load(path, NULL, &error);
	g_assert_no_error(error);
	name = mr_store_database_name(cfg);
	g_assert_cmpstr(name, ==, name_cases[i].want);
	g_unlink(path);
}

int
main(int argc, char **argv)
{
	g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
	g_autofree char *unit_dir = g_path_get_dirname(exe);
	g_autofree char *build_dir = g_path_get_dirname(unit_dir);

	/* the module of this build tree (build/mailroom-pgsql.so) */
	g_setenv("MAILROOM_MODULE_DIR", build_dir, TRUE);
	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(name_cases); i++) {
		g_autofree char *p = g_strdup_printf("/mailroom/store/database-name/%u", i);

		g_test_add_data_func(p, GUINT_TO_POINTER(i), test_name);
	}
	return g_test_run();
}
