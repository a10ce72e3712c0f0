/* mr-imap-config.c - the imap section of mailroom.conf (see
 * mr-imap-config.h): its entries read into MrImapMailbox, found by name,
 * compared at a reload, and their warnings.
 *
 * Ingest module (the IMAP door's configuration), a section the core
 * loader calls through MrConfigSection; no libetpan here, so that
 * mailroomctl links it without. */
#define G_LOG_DOMAIN "mailroom-config"

#include <string.h>

#include "mailroom/mr-config-section.h"
#include "mailroom/mr-imap-config.h"

/* The keys of an entry; anything else is refused as a typo. */
static const char *const imap_keys[] = {
	"name", MR_REMOTE_KEYS, "folder", "role", "after", "poll_interval", "reconnect_max", NULL,
};

/* The defaults of an imap entry's server. */
static const MrRemoteDefaults imap_remote_defaults = {
	.port_implicit = 993,
	.port_plain = 143,
	.timeout_s = 120,
};

static void
imap_mailbox_free(MrImapMailbox *mb)
{
	if (mb == NULL)
		return;
	g_free(mb->name);
	mr_remote_clear(&mb->remote);
	g_free(mb->folder);
	g_free(mb->after_folder);
	g_free(mb->address.address);
	g_free(mb);
}

typedef MrImapMailbox MrImapMailboxOwned;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrImapMailboxOwned, imap_mailbox_free)

/* Returns the entry of @list named @name (any case), or NULL. */
static const MrImapMailbox *
imap_list_find(const GPtrArray *list, const char *name)
{
	for (guint i = 0; list != NULL && i < list->len; i++) {
		const MrImapMailbox *mb = g_ptr_array_index(list, i);

		if (g_ascii_strcasecmp(mb->name, name) == 0)
			return mb;
	}
	return NULL;
}

/* A mailbox name: what the CLI and logs show, and the key of its state. */
static gboolean
is_valid_mailbox_name(const char *name)
{
	if (*name == '\0' || strlen(name) > 64)
		return FALSE;
	for (const char *p = name; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && strchr("._-", *p) == NULL)
			return FALSE;
	return TRUE;
}

/* Reads the after key of entry @e into @mb. */
static gboolean
imap_entry_after(config_setting_t *e, const char *path, MrImapMailbox *mb, GError **error)
{
	g_autofree char *after = NULL;

	if (!mr_config_member_string(e, path, "imap", "after", "seen", &after, error))
		return FALSE;
	if (g_ascii_strcasecmp(after, "seen") == 0) {
		mb->after = MR_IMAP_AFTER_SEEN;
	} else if (g_ascii_strcasecmp(after, "delete") == 0) {
		mb->after = MR_IMAP_AFTER_DELETE;
	} else if (g_ascii_strncasecmp(after, "move:", 5) == 0 && after[5] != '\0') {
		mb->after = MR_IMAP_AFTER_MOVE;
		mb->after_folder = g_strdup(after + 5);
	} else {
		return mr_config_invalid(error, path, config_setting_get_member(e, "after"),
					 "imap.after",
					 "must be \"seen\", \"delete\" or \"move:FOLDER\"");
	}
	return TRUE;
}

/* Reads entry @e of the imap list into @list: the name, the server
 * (mr_remote_parse() with the section "imap"), then what is IMAP's. */
static gboolean
imap_entry_parse(config_setting_t *e, const char *path, GPtrArray *list, GError **error)
{
	g_autoptr(MrImapMailboxOwned) mb = g_new0(MrImapMailbox, 1);
	g_autofree char *role = NULL;

	if (!config_setting_is_group(e))
		return mr_config_invalid(error, path, e, "imap",
					 "each entry must be a group { name = ...; host = ...; ... }");
	if (!mr_config_member_string(e, path, "imap", "name", NULL, &mb->name, error))
		return FALSE;
	if (mb->name == NULL || !is_valid_mailbox_name(mb->name))
		return mr_config_invalid(error, path, e, "imap.name",
					 "missing, or not 1-64 letters, digits, '.', '_' or '-'");
	if (imap_list_find(list, mb->name) != NULL)
		return mr_config_invalid(error, path, e, "imap.name",
					 "used twice (names are compared in any case)");
	mb->remote.label = g_strdup_printf("mailbox %s", mb->name);
	if (!mr_remote_parse(e, path, "imap", &imap_remote_defaults, &mb->remote, error) ||
	    !imap_entry_after(e, path, mb, error) ||
	    !mr_config_member_string(e, path, "imap", "folder", "INBOX", &mb->folder, error) ||
	    !mr_config_member_string(e, path, "imap", "role", NULL, &role, error) ||
	    !mr_config_member_int(e, path, "imap", "poll_interval", 60, 1, 86400,
				  &mb->poll_interval_s, error) ||
	    !mr_config_member_int(e, path, "imap", "reconnect_max", 60, 1, 3600,
				  &mb->reconnect_max_s, error))
		return FALSE;
	mb->role = role != NULL ? mr_role_from_name(role) : MR_ROLE_NONE;
	if (mb->role == MR_ROLE_NONE)
		return mr_config_invalid(error, path,
					 role != NULL ? config_setting_get_member(e, "role") : e,
					 "imap.role", "missing, or not one of bcc, support, sales");
	mb->address.role = mb->role;
	{
		g_autofree char *lower = g_ascii_strdown(mb->name, -1);

		mb->address.address = g_strconcat("imap:", lower, NULL);
	}
	if (mb->after == MR_IMAP_AFTER_MOVE && strcmp(mb->after_folder, mb->folder) == 0)
		return mr_config_invalid(error, path, config_setting_get_member(e, "after"),
					 "imap.after", "cannot move to the folder it watches");
	g_ptr_array_add(list, g_steal_pointer(&mb));
	return TRUE;
}

/* MrConfigSection.parse: the imap list at @setting (NULL: none). */
static gpointer
imap_section_parse(config_setting_t *setting, const char *path, GError **error)
{
	g_autoptr(GPtrArray) list =
		g_ptr_array_new_with_free_func((GDestroyNotify)imap_mailbox_free);

	if (setting == NULL)
		return g_steal_pointer(&list);
	if (!config_setting_is_list(setting) && !config_setting_is_array(setting)) {
		mr_config_invalid(error, path, setting, "imap",
				  "must be a list ( { name = ...; host = ...; ... }, ... )");
		return NULL;
	}
	for (int i = 0; i < config_setting_length(setting); i++)
		if (!imap_entry_parse(config_setting_get_elem(setting, i), path, list, error))
			return NULL;
	return g_steal_pointer(&list);
}

/* MrConfigSection.find_address: "imap:@name". */
static const MrMailroomAddress *
imap_section_find_address(gconstpointer value, const char *name)
{
	const MrImapMailbox *mb = imap_list_find(value, name);

	return mb != NULL ? &mb->address : NULL;
}

/* MrConfigSection.security_warnings: those of every entry's server. */
static void
imap_section_security_warnings(gconstpointer value, GPtrArray *out)
{
	const GPtrArray *list = value;

	for (guint i = 0; i < list->len; i++) {
		const MrImapMailbox *mb = g_ptr_array_index(list, i);

		mr_remote_security_warnings(&mb->remote, out);
	}
}

const MrConfigSection mr_imap_config_section = {
	.name = "imap",
	.is_list = TRUE,
	.keys = imap_keys,
	.parse = imap_section_parse,
	.free = (GDestroyNotify)g_ptr_array_unref,
	.address_scheme = "imap:",
	.find_address = imap_section_find_address,
	.security_warnings = imap_section_security_warnings,
};

GPtrArray *
mr_imap_config(const MrConfig *cfg)
{
	g_return_val_if_fail(cfg != NULL, NULL);
	return (GPtrArray *)mr_config_section(cfg, &mr_imap_config_section);
}

const MrImapMailbox *
mr_imap_config_find(const MrConfig *cfg, const char *name)
{
	g_return_val_if_fail(cfg != NULL && name != NULL, NULL);
	return imap_list_find(mr_imap_config(cfg), name);
}

gboolean
mr_imap_mailbox_equal(const MrImapMailbox *a, const MrImapMailbox *b)
{
	return g_strcmp0(a->name, b->name) == 0 && mr_remote_equal(&a->remote, &b->remote) &&
	       g_strcmp0(a->folder, b->folder) == 0 && a->role == b->role &&
	       a->after == b->after && g_strcmp0(a->after_folder, b->after_folder) == 0 &&
	       a->poll_interval_s == b->poll_interval_s &&
	       a->reconnect_max_s == b->reconnect_max_s;
}

GStrv
mr_imap_mailbox_security_warnings(const MrImapMailbox *mb)
{
	GPtrArray *out;

	g_return_val_if_fail(mb != NULL, NULL);
	out = g_ptr_array_new();
	mr_remote_security_warnings(&mb->remote, out);
	g_ptr_array_add(out, NULL);
	return (GStrv)g_ptr_array_free(out, FALSE);
}
