/* mr-autocleanups.h - g_autoptr() cleanups for foreign types.
 *
 * The one place that defines cleanups for types mailroom does not own, so a
 * library that starts shipping its own conflicts here and nowhere else.
 * Include it only where the foreign headers are already included. */
#pragma once

#include <glib.h>

#ifdef __GMIME_H__
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeMessage, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParser, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeDataWrapper, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeFilter, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeTextPart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeFormatOptions, g_mime_format_options_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParserOptions, g_mime_parser_options_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(InternetAddressList, g_object_unref)
#endif

#ifdef SQLITE3_H
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)
#endif

#ifdef __libconfig_h
static inline void
mr_config_t_free(config_t *c)
{
	config_destroy(c);
	g_free(c);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(config_t, mr_config_t_free)
#endif
