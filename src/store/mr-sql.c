/* mr-sql.c - which SQL driver a database needs, and loading the modules
 * that hold drivers (see mr-sql.h).
 *
 * Store stage.  SQLite is built in; the PostgreSQL driver is the module
 * mailroom-pgsql.so, so that a program that never talks to PostgreSQL does
 * not load libpq and the libraries it brings. */
#define G_LOG_DOMAIN "mailroom-store"

#include <string.h>

#include <gmodule.h>

#include "mr-sql.h"

#define MR_PGSQL_MODULE "mailroom-pgsql.so"

/* Returns: (transfer full): the directories searched for modules, in
 * order, NULL-terminated. */
static char **
module_dirs(void)
{
	GPtrArray *dirs = g_ptr_array_new();
	const char *env = g_getenv("MAILROOM_MODULE_DIR");
	g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);

	if (env != NULL && *env != '\0')
		g_ptr_array_add(dirs, g_strdup(env));
	if (exe != NULL)
		g_ptr_array_add(dirs, g_path_get_dirname(exe)); /* the build tree */
	g_ptr_array_add(dirs, g_strdup(MR_MODULEDIR));
	g_ptr_array_add(dirs, NULL);
	return (char **)g_ptr_array_free(dirs, FALSE);
}

/* Loads the module @file and returns its driver @symbol.  The module stays
 * loaded for the life of the process (GModule counts the opens). */
static const MrSqlDriver *
module_driver(const char *file, const char *symbol, GError **error)
{
	g_auto(GStrv) dirs = module_dirs();
	g_autoptr(GString) tried = g_string_new(NULL);

	for (char **d = dirs; *d != NULL; d++) {
		g_autofree char *path = g_build_filename(*d, file, NULL);
		GModule *module;
		gpointer driver = NULL;

		if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
			g_string_append_printf(tried, "%s%s", tried->len > 0 ? ", " : "", *d);
			continue;
		}
		module = g_module_open(path, G_MODULE_BIND_LOCAL);
		if (module == NULL) {
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN, "%s: %s", path,
				    g_module_error());
			return NULL;
		}
		if (!g_module_symbol(module, symbol, &driver) || driver == NULL) {
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN, "%s: no %s", path,
				    symbol);
			g_module_close(module);
			return NULL;
		}
		g_module_make_resident(module);
		return driver;
	}
	g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN,
		    "PostgreSQL support (%s) is not installed: not in %s (MAILROOM_MODULE_DIR)", file,
		    tried->str);
	return NULL;
}

const MrSqlDriver *
mr_sql_driver_for(const char *database, GError **error)
{
	const char *scheme_end = strstr(database, "://");

	if (g_str_has_prefix(database, "postgresql://") || g_str_has_prefix(database, "postgres://"))
		return module_driver(MR_PGSQL_MODULE, "mr_sql_pgsql_driver", error);
	if (scheme_end != NULL && strchr(database, '/') > scheme_end) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN,
			    "%.*s: unknown database scheme (a file path or postgresql://)",
			    (int)(scheme_end - database), database);
		return NULL;
	}
	return &mr_sql_sqlite_driver;
}
