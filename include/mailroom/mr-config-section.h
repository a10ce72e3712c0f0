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

/* A section of the file that a folder above core parses: core cannot
 * include its headers (check-layering), so the loader knows it by this
 * table, which the section's folder defines (mr_imap_config_section) and
 * the programs pass to mr_config_load().  The value parsed is kept in the
 * MrConfig, opaque to core; the section's folder reads it with
 * mr_config_section() behind an accessor of its own (mr_imap_config()). */
struct _MrConfigSection {
	const char *name;        /* the top-level key, e.g. "imap" */
	gboolean is_list;        /* a list of groups ( { ... }, ... ), each
	                            with @keys; else one group { ... } */
	const char *const *keys; /* NULL-terminated: the keys of a group; the
	                            loader refuses any other as "NAME.KEY:
	                            unknown key" before anything is parsed */
	/* Parses @setting (NULL when the file has no such key: the parser
	 * gives its default) of the file @path.  Returns: (transfer full): the
	 * value, not NULL; or NULL with @error (mr_config_invalid()). */
	gpointer (*parse)(config_setting_t *setting, const char *path, GError **error);
	GDestroyNotify free;     /* frees a value parse gave */
	/* (nullable) An address that starts with @address_scheme (any case,
	 * "imap:") is looked up by @find_address alone, given the rest:
	 * Returns: (transfer none) (nullable): its entry. */
	const char *address_scheme;
	const MrMailroomAddress *(*find_address)(gconstpointer value, const char *rest);
	/* (nullable) Appends (transfer full) what in @value puts secrets at
	 * risk, one sentence each (mr_config_security_warnings()). */
	void (*security_warnings)(gconstpointer value, GPtrArray *out);
};

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
