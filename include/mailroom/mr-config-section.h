/* mr-config-section.h - reading one group of mailroom.conf (libconfig),
 * for the loader (mr-config.c), a remote server's keys (mr-remote.c) and
 * the sections parsed above core.
 *
 * Every refusal has the form "FILE:LINE: KEY: what" ("FILE: KEY: what"
 * for a key without a line), KEY naming the section and the key
 * ("imap.tls"), so that one parser serves several sections. */
#pragma once

#include <glib.h>
#include <libconfig.h>

#include "mailroom/mr-config.h"

G_BEGIN_DECLS

/* Sets @error (MR_CONFIG_ERROR_INVALID) to "PATH:LINE: KEY: WHAT", the
 * line being that of @setting (nullable: "PATH: KEY: WHAT").  Returns:
 * FALSE, so that a parser can return it. */
gboolean mr_config_invalid(GError **error, const char *path, const config_setting_t *setting,
			   const char *key, const char *what);

/* Reads the optional string @key of the group @group (in section
 * @section of the file @path) into @out (transfer full): @def (nullable)
 * when missing; an empty string or another type is refused with @error
 * naming "SECTION.KEY".  Returns: TRUE, or FALSE with @error. */
gboolean mr_config_member_string(config_setting_t *group, const char *path, const char *section,
				 const char *key, const char *def, char **out, GError **error);

/* Reads the optional integer @key of @group into @out: @def when
 * missing, else within [@min, @max]; errors as mr_config_member_string().
 * Returns: TRUE, or FALSE with @error. */
gboolean mr_config_member_int(config_setting_t *group, const char *path, const char *section,
			      const char *key, int def, int min, int max, int *out,
			      GError **error);

/* Returns: the index of @text among the @n @names (any case), or -1. */
int mr_config_pick(const char *text, const char *const *names, int n);

G_END_DECLS
