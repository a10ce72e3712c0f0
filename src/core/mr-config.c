/* mr-config.c - load and validate mailroom.conf (libconfig).
 *
 * Core module: owns MrConfig, a member per group of the file; the sections
 * above core (the imap list) are parsed by their folders through
 * MrConfigSection and kept opaque.  Every refusal names FILE:LINE and the
 * key, so an administrator can fix the file without reading code. */
#define G_LOG_DOMAIN "mailroom-config"

#include <gio/gio.h>
#include <libconfig.h>
#include <string.h>

#include "mailroom/mr-autocleanups.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-config.h"
#include "mailroom/mr-config-section.h"
#include "mailroom/mr-address.h"
#include "mailroom/mr-error.h"

/* Domains whose users are private people, not one organisation: a contact
 * there gets no account.  Extended by the freemail_domains key. */
static const char *const mr_builtin_freemail[] = {
	"aol.com", "gmail.com", "googlemail.com", "gmx.at", "gmx.ch", "gmx.de",
	"gmx.net", "gmx.com", "hotmail.com", "hotmail.de", "hotmail.co.uk",
	"icloud.com", "live.com", "mac.com", "me.com", "mail.com", "mail.ru",
	"msn.com", "outlook.com", "outlook.de", "posteo.de", "proton.me",
	"protonmail.com", "qq.com", "t-online.de", "web.de", "yahoo.com",
	"yahoo.de", "yahoo.co.uk", "yahoo.fr", "yandex.ru", "zoho.com",
	"freenet.de", "arcor.de", "orange.fr", "free.fr", "libero.it",
	"163.com", "126.com", "fastmail.com", "hey.com", "tutanota.com",
};

/* Every key core reads, by group ("" is the top level); with the keys of
 * the sections parsed above core (MrConfigSection), anything else is
 * refused as a typo. */
static const struct {
	const char *group;
	const char *const keys[4];
} mr_known_keys[] = {
	{ "", { "database", "domains", "addresses", "freemail_domains" } },
	{ "", { "database_password_file", NULL } },
	{ "", { "ids", "parse", "store", "hostname" } },
	{ "", { "smtp", "lmtp", "limits", "trusted_networks" } },
	{ "", { "tls", "authserv_id", "route", "spool_directory" } },
	{ "", { "testing", "timezone", "relay", "outgoing" } },
	{ "", { "ack", "workflows", NULL } },
	{ "relay", { "host", "port", "tls", "user" } },
	{ "relay", { "auth", "password_file", "password_env", "token_command" } },
	{ "relay", { "timeout", "tls_verify", "tls_ca_file", "from" } },
	{ "relay", { "retry_min", "retry_max", "max_attempts", NULL } },
	{ "outgoing", { "max_auto_per_recipient_per_day", "bounce_address", NULL } },
	{ "ack", { "enabled", "template", NULL } },
	{ "workflows", { "unowned", NULL } },
	{ "smtp", { "listen", "bare_lf", NULL } },
	{ "lmtp", { "listen", NULL } },
	{ "limits", { "max_message_size", "max_recipients", "max_connections", "timeout" } },
	{ "limits", { "max_errors", "max_connections_per_ip", "tls_handshake_timeout", NULL } },
	{ "limits", { "max_tls_handshakes", "spool_threshold", "max_bytes_in_flight", NULL } },
	{ "limits", { "drain_timeout", NULL } },
	{ "tls", { "cert", "key", NULL } },
	{ "ids", { "opportunity_prefix", "ticket_prefix", NULL } },
	{ "parse", { "fallback_charsets", "max_mime_parts", "max_header_lines", "max_addresses" } },
	{ "parse", { "max_references", "max_header_size", NULL } },
	{ "route", { "max_parties", "max_subject_scan", NULL } },
	{ "store", { "synchronous", "busy_timeout", "batch_max", "batch_window" } },
	{ "store", { "query_timeout", NULL } },
	{ "addresses", { "address", "role", NULL } },
	{ "testing", { "clock_offset", NULL } },
};

/* Top-level keys that hold a list of groups, each checked against the
 * keys of its own name (and the sections whose is_list is set). */
static const char *const mr_list_keys[] = { "addresses", NULL };

static const char *const mr_role_names[] = {
	[MR_ROLE_NONE] = "none",
	[MR_ROLE_BCC] = "bcc",
	[MR_ROLE_SUPPORT] = "support",
	[MR_ROLE_SALES] = "sales",
	[MR_ROLE_BOUNCE] = "bounce",
};

const char *
mr_role_name(MrRole role)
{
	if ((guint)role >= G_N_ELEMENTS(mr_role_names))
		return "none";
	return mr_role_names[role];
}

MrRole
mr_role_from_name(const char *name)
{
	for (guint k = MR_ROLE_BCC; k < G_N_ELEMENTS(mr_role_names); k++)
		if (g_ascii_strcasecmp(name, mr_role_names[k]) == 0)
			return (MrRole)k;
	return MR_ROLE_NONE;
}

static void
mailroom_address_free(MrMailroomAddress *a)
{
	if (a == NULL)
		return;
	g_free(a->address);
	g_free(a);
}

static void
config_clear(MrConfig *cfg)
{
	g_free(cfg->path);
	g_free(cfg->database);
	g_free(cfg->database_password_file);
	g_free(cfg->spool_directory);
	g_strfreev(cfg->domains);
	g_clear_pointer(&cfg->addresses, g_ptr_array_unref);
	g_free(cfg->ids.opportunity_prefix);
	g_free(cfg->ids.ticket_prefix);
	g_strfreev(cfg->freemail_domains);
	g_strfreev(cfg->parse.fallback_charsets);
	g_free(cfg->store.synchronous);
	g_free(cfg->hostname);
	g_strfreev(cfg->smtp.listen);
	g_strfreev(cfg->lmtp.listen);
	g_free(cfg->tls.cert);
	g_free(cfg->tls.key);
	g_strfreev(cfg->trusted_networks);
	g_free(cfg->authserv_id);
	g_free(cfg->timezone);
	g_clear_pointer(&cfg->tz, g_time_zone_unref);
	mr_remote_clear(&cfg->relay.remote);
	g_free(cfg->relay.from);
	g_free(cfg->outgoing.bounce_address);
	g_free(cfg->ack.template_name);
	g_free(cfg->workflows.unowned);
	for (guint i = 0; cfg->sections != NULL && cfg->sections[i] != NULL; i++)
		if (cfg->section_values[i] != NULL)
			cfg->sections[i]->free(cfg->section_values[i]);
	g_free(cfg->sections);
	g_free(cfg->section_values);
}

MrConfig *
mr_config_ref(MrConfig *cfg)
{
	return g_atomic_rc_box_acquire(cfg);
}

void
mr_config_unref(MrConfig *cfg)
{
	if (cfg != NULL)
		g_atomic_rc_box_release_full(cfg, (GDestroyNotify)config_clear);
}

const char *
mr_config_default_path(void)
{
	const char *env = g_getenv("MAILROOM_CONFIG");

	if (env != NULL && *env != '\0')
		return env;
	return MR_SYSCONFDIR "/mailroom.conf";
}

/* Reads an optional list/array of strings at @key into a lower-cased,
 * NULL-terminated vector.  A missing key gives an empty vector. */
static gboolean
config_string_list(const config_t *c, const char *path, const char *key,
		   gboolean lower, char ***out, GError **error)
{
	config_setting_t *s = config_lookup(c, key);
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();

	if (s != NULL) {
		if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
			return mr_config_invalid(error, path, s, key,
					      "must be a list of strings");
		for (int i = 0; i < config_setting_length(s); i++) {
			const char *v = config_setting_get_string_elem(s, i);

			if (v == NULL || *v == '\0')
				return mr_config_invalid(error, path, s, key,
						      "every element must be a non-empty string");
			if (lower)
				{ g_autofree char *l = mr_address_normalise(v); g_strv_builder_add(b, l); }
			else
				g_strv_builder_add(b, v);
		}
	}
	*out = g_strv_builder_end(b);
	return TRUE;
}

/* Reads an optional string at @key; @def when missing. */
static gboolean
config_string(const config_t *c, const char *path, const char *key,
	      const char *def, char **out, GError **error)
{
	config_setting_t *s = config_lookup(c, key);

	if (s == NULL) {
		*out = g_strdup(def);
		return TRUE;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return mr_config_invalid(error, path, s, key, "must be a string");
	*out = g_strdup(config_setting_get_string(s));
	return TRUE;
}

/* Reads an optional boolean at @key into @out (default @def). */
static gboolean
config_bool(const config_t *c, const char *path, const char *key, gboolean def, int *out,
	    GError **error)
{
	config_setting_t *s = config_lookup(c, key);

	*out = def;
	if (s == NULL)
		return TRUE;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return mr_config_invalid(error, path, s, key, "must be true or false");
	*out = config_setting_get_bool(s);
	return TRUE;
}

/* Reads an optional integer at @key into @out (default @def), within
 * [@min, @max]. */
static gboolean
config_int(const config_t *c, const char *path, const char *key, gint64 def, gint64 min,
	   gint64 max, gint64 *out, GError **error)
{
	config_setting_t *s = config_lookup(c, key);
	g_autofree char *range = NULL;

	*out = def;
	if (s == NULL)
		return TRUE;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return mr_config_invalid(error, path, s, key, "must be an integer");
	*out = config_setting_get_int64(s);
	if (*out < min || *out > max) {
		range = g_strdup_printf("must be between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT,
					min, max);
		return mr_config_invalid(error, path, s, key, range);
	}
	return TRUE;
}

/* Checks "host:port" / "[v6]:port" listen addresses. */
static gboolean
config_listen(const config_t *c, const char *path, const char *key, const char *def,
	      char ***out, GError **error)
{
	if (!config_string_list(c, path, key, FALSE, out, error))
		return FALSE;
	if (config_lookup(c, key) == NULL && def != NULL) {
		g_strfreev(*out);
		*out = g_strsplit(def, " ", -1);
	}
	for (char **l = *out; *l != NULL; l++) {
		const char *colon = strrchr(*l, ':');
		char *end = NULL;
		guint64 port = colon != NULL ? g_ascii_strtoull(colon + 1, &end, 10) : 0;

		g_autofree char *host = NULL;
		g_autoptr(GInetAddress) addr = NULL;

		if (colon == NULL || colon == *l || end == NULL || *end != '\0' || port > 65535 ||
		    colon[1] == '\0')
			return mr_config_invalid(error, path, config_lookup(c, key), key,
					      "each entry must be \"address:port\"");
		host = **l == '[' && colon[-1] == ']' ? g_strndup(*l + 1, (gsize)(colon - *l - 2))
						     : g_strndup(*l, (gsize)(colon - *l));
		addr = g_inet_address_new_from_string(host);
		if (addr == NULL)
			return mr_config_invalid(error, path, config_lookup(c, key), key,
					      "the address must be numeric (127.0.0.1, [::1])");
	}
	return TRUE;
}

static gboolean
config_networks(const config_t *c, const char *path, MrConfig *cfg, GError **error)
{
	if (!config_string_list(c, path, "trusted_networks", FALSE, &cfg->trusted_networks, error))
		return FALSE;
	if (config_lookup(c, "trusted_networks") == NULL) {
		g_strfreev(cfg->trusted_networks);
		cfg->trusted_networks = g_strsplit("127.0.0.0/8 ::1/128", " ", -1);
	}
	for (char **n = cfg->trusted_networks; *n != NULL; n++) {
		g_autoptr(GInetAddressMask) mask = g_inet_address_mask_new_from_string(*n, NULL);

		if (mask == NULL)
			return mr_config_invalid(error, path, config_lookup(c, "trusted_networks"),
					      "trusted_networks", "each entry must be an address or CIDR");
	}
	return TRUE;
}

/* The daemon's keys: listeners, limits, trust, TLS. */
static gboolean
config_daemon_keys(const config_t *c, MrConfig *cfg, GError **error)
{
	const char *path = cfg->path;
	gint64 v;

	if (!config_string(c, path, "hostname", g_get_host_name(), &cfg->hostname, error))
		return FALSE;
	if (*cfg->hostname == '\0' || strpbrk(cfg->hostname, " \t\r\n") != NULL)
		return mr_config_invalid(error, path, config_lookup(c, "hostname"), "hostname",
				      "must be a host name without spaces");
	if (
	    !config_listen(c, path, "smtp.listen", "127.0.0.1:2525", &cfg->smtp.listen, error) ||
	    !config_listen(c, path, "lmtp.listen", "127.0.0.1:2424", &cfg->lmtp.listen, error) ||
	    !config_networks(c, path, cfg, error) ||
	    !config_string(c, path, "tls.cert", NULL, &cfg->tls.cert, error) ||
	    !config_string(c, path, "tls.key", NULL, &cfg->tls.key, error) ||
	    !config_string(c, path, "authserv_id", NULL, &cfg->authserv_id, error))
		return FALSE;
	{
		g_autofree char *bare_lf = NULL;

		if (!config_string(c, path, "smtp.bare_lf", "normalize", &bare_lf, error))
			return FALSE;
		if (g_ascii_strcasecmp(bare_lf, "normalize") != 0 &&
		    g_ascii_strcasecmp(bare_lf, "reject") != 0)
			return mr_config_invalid(error, path, config_lookup(c, "smtp.bare_lf"), "smtp.bare_lf",
					      "must be \"normalize\" or \"reject\"");
		cfg->smtp.bare_lf_reject = g_ascii_strcasecmp(bare_lf, "reject") == 0;
	}
	if ((cfg->tls.cert == NULL) != (cfg->tls.key == NULL))
		return mr_config_invalid(error, path, config_lookup(c, "tls"), "tls",
				      "cert and key go together");
	if (!config_int(c, path, "limits.max_message_size", 26214400, 1024, G_MAXINT32,
			&cfg->limits.max_message_size, error))
		return FALSE;
	if (!config_int(c, path, "limits.max_recipients", 100, 1, 100000, &v, error))
		return FALSE;
	cfg->limits.max_recipients = (int)v;
	if (!config_int(c, path, "limits.max_connections", 256, 1, 100000, &v, error))
		return FALSE;
	cfg->limits.max_connections = (int)v;
	if (!config_int(c, path, "limits.timeout", 300, 1, 86400, &v, error))
		return FALSE;
	cfg->limits.timeout_s = (int)v;
	if (!config_int(c, path, "limits.max_errors", 10, 1, 1000, &v, error))
		return FALSE;
	cfg->limits.max_errors = (int)v;
	if (!config_int(c, path, "limits.max_connections_per_ip", 32, 1, 100000, &v, error))
		return FALSE;
	cfg->limits.max_connections_per_ip = (int)v;
	if (!config_int(c, path, "limits.tls_handshake_timeout", 10, 1, 3600, &v, error))
		return FALSE;
	cfg->limits.tls_handshake_timeout_s = (int)v;
	if (!config_int(c, path, "limits.max_tls_handshakes", 8, 1, 1000, &v, error))
		return FALSE;
	cfg->limits.max_tls_handshakes = (int)v;
	if (!config_int(c, path, "limits.spool_threshold", 1048576, 0, G_MAXINT32,
			&cfg->limits.spool_threshold, error))
		return FALSE;
	if (!config_int(c, path, "limits.max_bytes_in_flight", 67108864, 1048576, G_MAXINT64,
			&cfg->limits.max_bytes_in_flight, error))
		return FALSE;
	if (!config_int(c, path, "limits.drain_timeout", 30, 1, 3600, &v, error))
		return FALSE;
	cfg->limits.drain_timeout_s = (int)v;
	if (!config_int(c, path, "store.batch_max", 256, 1, 10000, &v, error))
		return FALSE;
	cfg->store.batch_max = (int)v;
	if (!config_int(c, path, "store.batch_window", 0, 0, 1000, &v, error))
		return FALSE;
	cfg->store.batch_window_ms = (int)v;
	if (!config_int(c, path, "store.query_timeout", 30, 1, 3600, &v, error))
		return FALSE;
	cfg->store.query_timeout_s = (int)v;
	return TRUE;
}

static gboolean
is_valid_address(const char *a)
{
	const char *at = strchr(a, '@');

	return at != NULL && at != a && at[1] != '\0' && strchr(at + 1, '@') == NULL &&
	       strchr(a, '+') == NULL && strpbrk(a, " \t<>\"") == NULL;
}

static gboolean
is_valid_prefix(const char *p)
{
	if (*p == '\0' || strlen(p) > 16)
		return FALSE;
	for (; *p != '\0'; p++)
		if (!g_ascii_isalpha(*p))
			return FALSE;
	return TRUE;
}

static gboolean
config_addresses(const config_t *c, MrConfig *cfg, GError **error)
{
	config_setting_t *list = config_lookup(c, "addresses");

	if (list == NULL)
		return mr_config_invalid(error, cfg->path, NULL, "addresses",
				      "missing: at least one mailroom address is needed");
	if (!config_setting_is_list(list) && !config_setting_is_array(list))
		return mr_config_invalid(error, cfg->path, list, "addresses",
				      "must be a list of { address = ...; role = ...; }");
	for (int i = 0; i < config_setting_length(list); i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		const char *addr = NULL, *role = NULL;
		MrMailroomAddress *a;
		MrRole r;

		if (!config_setting_is_group(e))
			return mr_config_invalid(error, cfg->path, e, "addresses",
					      "each entry must be { address = ...; role = ...; }");
		if (!config_setting_lookup_string(e, "address", &addr) ||
		    !is_valid_address(addr))
			return mr_config_invalid(error, cfg->path, e, "addresses.address",
					      "missing or not a plain local@domain address");
		if (!config_setting_lookup_string(e, "role", &role))
			return mr_config_invalid(error, cfg->path, e, "addresses.role",
					      "missing (bcc, support or sales)");
		r = mr_role_from_name(role);
		if (r == MR_ROLE_NONE || r == MR_ROLE_BOUNCE)
			return mr_config_invalid(error, cfg->path, e, "addresses.role",
					      "must be one of bcc, support, sales");
		if (mr_config_find_address(cfg, addr, NULL) != NULL)
			return mr_config_invalid(error, cfg->path, e, "addresses.address",
					      "listed twice");
		a = g_new0(MrMailroomAddress, 1);
		a->address = mr_address_normalise(addr);
		a->role = r;
		g_ptr_array_add(cfg->addresses, a);
	}
	if (cfg->addresses->len == 0)
		return mr_config_invalid(error, cfg->path, list, "addresses",
				      "at least one mailroom address is needed");
	return TRUE;
}

/* Returns the section of @sections (nullable) named @name, or NULL. */
static const MrConfigSection *
find_section(const MrConfigSection *const *sections, const char *name)
{
	for (guint i = 0; sections != NULL && sections[i] != NULL; i++)
		if (strcmp(sections[i]->name, name) == 0)
			return sections[i];
	return NULL;
}

static gboolean
is_known_key(const MrConfigSection *const *sections, const char *group, const char *name)
{
	const MrConfigSection *section;

	for (guint i = 0; i < G_N_ELEMENTS(mr_known_keys); i++)
		if (strcmp(mr_known_keys[i].group, group) == 0)
			for (guint k = 0; k < G_N_ELEMENTS(mr_known_keys[i].keys); k++)
				if (g_strcmp0(mr_known_keys[i].keys[k], name) == 0)
					return TRUE;
	if (*group == '\0')
		return find_section(sections, name) != NULL;
	section = find_section(sections, group);
	return section != NULL && g_strv_contains((const char *const *)section->keys, name);
}

/* Is top-level @name a group { ... } of keys (ids, store, smtp, ...)? */
static gboolean
is_group_key(const MrConfigSection *const *sections, const char *name)
{
	const MrConfigSection *section = find_section(sections, name);

	if (section != NULL)
		return !section->is_list;
	for (guint i = 0; i < G_N_ELEMENTS(mr_known_keys); i++)
		if (strcmp(mr_known_keys[i].group, name) == 0 &&
		    !g_strv_contains(mr_list_keys, name))
			return TRUE;
	return FALSE;
}

/* Refuses unknown keys in group @s (named @group for the table). */
static gboolean
config_check_group(config_setting_t *s, const char *path, const MrConfigSection *const *sections,
		   const char *group, GError **error)
{
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		const char *name = config_setting_name(e);
		g_autofree char *key = *group != '\0' ? g_strdup_printf("%s.%s", group, name)
						      : g_strdup(name);

		if (!is_known_key(sections, group, name))
			return mr_config_invalid(error, path, e, key, "unknown key");
		if (*group == '\0' && is_group_key(sections, name) && !config_setting_is_group(e))
			return mr_config_invalid(error, path, e, key, "must be a group { ... }");
		if (config_setting_is_group(e) &&
		    !config_check_group(e, path, sections, key, error))
			return FALSE;
	}
	return TRUE;
}

/* Refuses unknown keys in the entries of the list @name, if any. */
static gboolean
config_check_list(const config_t *c, const char *path, const MrConfigSection *const *sections,
		  const char *name, GError **error)
{
	config_setting_t *list = config_lookup(c, name);

	for (int i = 0; list != NULL && config_setting_is_aggregate(list) &&
			i < config_setting_length(list);
	     i++) {
		config_setting_t *e = config_setting_get_elem(list, i);

		if (config_setting_is_group(e) && !config_check_group(e, path, sections, name, error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
config_check_keys(const config_t *c, const char *path, const MrConfigSection *const *sections,
		  GError **error)
{
	if (!config_check_group(config_root_setting(c), path, sections, "", error))
		return FALSE;
	for (guint k = 0; mr_list_keys[k] != NULL; k++)
		if (!config_check_list(c, path, sections, mr_list_keys[k], error))
			return FALSE;
	for (guint k = 0; sections != NULL && sections[k] != NULL; k++)
		if (sections[k]->is_list &&
		    !config_check_list(c, path, sections, sections[k]->name, error))
			return FALSE;
	return TRUE;
}

/* Parses the sections above core, in their order, into @cfg. */
static gboolean
config_sections(const config_t *c, MrConfig *cfg, GError **error)
{
	for (guint i = 0; cfg->sections[i] != NULL; i++) {
		const MrConfigSection *section = cfg->sections[i];

		cfg->section_values[i] =
			section->parse(config_lookup(c, section->name), cfg->path, error);
		if (cfg->section_values[i] == NULL)
			return FALSE;
	}
	return TRUE;
}

gconstpointer
mr_config_section(const MrConfig *cfg, const MrConfigSection *section)
{
	g_return_val_if_fail(cfg != NULL && section != NULL, NULL);
	for (guint i = 0; cfg->sections != NULL && cfg->sections[i] != NULL; i++)
		if (cfg->sections[i] == section)
			return cfg->section_values[i];
	return NULL;
}

/* What one message may cost: the parse.max_* and route.max_* keys (the
 * defaults are those of MR_PARSE_DEFAULT_* in mr-parse.h). */
static gboolean
config_parse_limits(const config_t *c, MrConfig *cfg, GError **error)
{
	static const struct {
		const char *key;
		gint64 def, min, max;
		gsize offset;
	} limits[] = {
		{ "parse.max_mime_parts", 10000, 1, 1000000, G_STRUCT_OFFSET(MrConfig, parse.max_mime_parts) },
		{ "parse.max_header_lines", 50000, 1, 1000000, G_STRUCT_OFFSET(MrConfig, parse.max_header_lines) },
		{ "parse.max_addresses", 1000, 1, 1000000, G_STRUCT_OFFSET(MrConfig, parse.max_addresses) },
		{ "parse.max_references", 100, 1, 10000, G_STRUCT_OFFSET(MrConfig, parse.max_references) },
		{ "parse.max_header_size", 102400, 1024, 16777216, G_STRUCT_OFFSET(MrConfig, parse.max_header_size) },
		{ "route.max_parties", 100, 1, 100000, G_STRUCT_OFFSET(MrConfig, route.max_parties) },
		{ "route.max_subject_scan", 4096, 16, 16777216, G_STRUCT_OFFSET(MrConfig, route.max_subject_scan) },
	};
	gint64 v;

	for (guint i = 0; i < G_N_ELEMENTS(limits); i++) {
		if (!config_int(c, cfg->path, limits[i].key, limits[i].def, limits[i].min, limits[i].max,
				&v, error))
			return FALSE;
		G_STRUCT_MEMBER(int, cfg, limits[i].offset) = (int)v;
	}
	return TRUE;
}

/* timezone: the IANA name of the zone in which rules read the weekday
 * and hour a message was received (default UTC). */
static gboolean
config_timezone(const config_t *c, MrConfig *cfg, GError **error)
{
	if (!config_string(c, cfg->path, "timezone", "UTC", &cfg->timezone, error))
		return FALSE;
	/* g_time_zone_new_identifier() also takes offsets ("+02:00") and
	 * the TZ syntax ("CET-1CEST"); an IANA name is a file of the zone
	 * database, and that is what the key documents. */
	if (*cfg->timezone == '\0' || cfg->timezone[0] == '+' || cfg->timezone[0] == '-' ||
	    strstr(cfg->timezone, "..") != NULL ||
	    (cfg->tz = g_time_zone_new_identifier(cfg->timezone)) == NULL)
		return mr_config_invalid(error, cfg->path, config_lookup(c, "timezone"), "timezone",
				      "must be an IANA time zone name (\"UTC\", \"Europe/Berlin\")");
	return TRUE;
}

/* The defaults of the relay: submission (587) with STARTTLS, or 465 for
 * implicit TLS; a login only when relay.user is set. */
static const MrRemoteDefaults relay_remote_defaults = {
	.port_implicit = 465,
	.port_plain = 587,
	.timeout_s = 60,
	.user_optional = TRUE,
	.tls = MR_REMOTE_TLS_STARTTLS,
};

/* A bare address @text (local@domain, lower-cased into @out), as the
 * bounce address must be: no name, no spaces, no "+" in the local part
 * (the VERP tag goes there). */
static gboolean
config_bare_address(const char *text, char **out)
{
	const char *at = strrchr(text, '@');

	if (at == NULL || at == text || at[1] == '\0' || strpbrk(text, " \t\r\n<>\"(),;:+") != NULL ||
	    strchr(text, '@') != at)
		return FALSE;
	*out = g_ascii_strdown(text, -1);
	return TRUE;
}

/* relay { ... }, outgoing { ... } and ack { ... }: how mailroom sends
 * mail (docs/configuration.md).  The bounce address is added to the
 * mailroom addresses with the role bounce, unless an address of the file
 * has it already (refused). */
static gboolean
config_outgoing(const config_t *c, MrConfig *cfg, GError **error)
{
	config_setting_t *relay = config_lookup(c, "relay");
	g_autofree char *bounce = NULL, *from = NULL;
	gint64 v;
	int b;

	cfg->relay.remote.label = g_strdup("relay");
	if (relay != NULL) {
		if (!mr_remote_parse(relay, cfg->path, "relay", &relay_remote_defaults,
				     &cfg->relay.remote, error))
			return FALSE;
		cfg->relay.configured = TRUE;
	}
	if (!config_string(c, cfg->path, "relay.from", NULL, &from, error) ||
	    !config_int(c, cfg->path, "relay.retry_min", 60, 1, 86400, &v, error))
		return FALSE;
	cfg->relay.retry_min_s = (int)v;
	if (!config_int(c, cfg->path, "relay.retry_max", 3600, cfg->relay.retry_min_s, 7 * 86400, &v,
			error))
		return FALSE;
	cfg->relay.retry_max_s = (int)v;
	if (!config_int(c, cfg->path, "relay.max_attempts", 20, 1, 1000, &v, error))
		return FALSE;
	cfg->relay.max_attempts = (int)v;
	if (from == NULL) {
		for (guint i = 0; i < cfg->addresses->len && from == NULL; i++) {
			const MrMailroomAddress *a = g_ptr_array_index(cfg->addresses, i);

			if (a->role == MR_ROLE_SUPPORT)
				from = g_strdup(a->address);
		}
		if (from == NULL)
			from = g_strdup_printf("mailroom@%s", cfg->domains[0] != NULL ? cfg->domains[0]
										: "localhost");
	} else if (strpbrk(from, "\r\n") != NULL || strchr(from, '@') == NULL) {
		return mr_config_invalid(error, cfg->path, config_lookup(c, "relay.from"), "relay.from",
				      "must be an address, \"Name <address>\" or address");
	}
	cfg->relay.from = g_steal_pointer(&from);
	if (!config_int(c, cfg->path, "outgoing.max_auto_per_recipient_per_day", 10, 0, 100000, &v,
			error))
		return FALSE;
	cfg->outgoing.max_auto_per_recipient_per_day = (int)v;
	if (!config_string(c, cfg->path, "outgoing.bounce_address", NULL, &bounce, error))
		return FALSE;
	if (bounce == NULL)
		bounce = g_strdup_printf("bounces@%s", cfg->domains[0] != NULL ? cfg->domains[0]
									 : "localhost");
	if (!config_bare_address(bounce, &cfg->outgoing.bounce_address))
		return mr_config_invalid(error, cfg->path, config_lookup(c, "outgoing.bounce_address"),
				      "outgoing.bounce_address",
				      "must be a bare address local@domain, without \"+\"");
	if (mr_config_find_address(cfg, cfg->outgoing.bounce_address, NULL) != NULL)
		return mr_config_invalid(error, cfg->path, config_lookup(c, "outgoing.bounce_address"),
				      "outgoing.bounce_address",
				      "is one of the addresses: the bounce address has a role of its own");
	{
		MrMailroomAddress *a = g_new0(MrMailroomAddress, 1);

		a->address = g_strdup(cfg->outgoing.bounce_address);
		a->role = MR_ROLE_BOUNCE;
		g_ptr_array_add(cfg->addresses, a);
	}
	b = TRUE;
	if (!config_bool(c, cfg->path, "ack.enabled", TRUE, &b, error) ||
	    !config_string(c, cfg->path, "ack.template", "ticket-ack", &cfg->ack.template_name,
			   error))
		return FALSE;
	cfg->ack.enabled = b;
	if (!config_string(c, cfg->path, "workflows.unowned", NULL, &cfg->workflows.unowned, error))
		return FALSE;
	if (cfg->workflows.unowned != NULL) {
		char *a = mr_address_normalise(cfg->workflows.unowned);

		g_free(cfg->workflows.unowned);
		cfg->workflows.unowned = a;
		if (strchr(a, '@') == NULL)
			return mr_config_invalid(error, cfg->path, config_lookup(c, "workflows.unowned"),
					      "workflows.unowned", "must be an address");
	}
	return TRUE;
}

static gboolean
config_load_keys(const config_t *c, MrConfig *cfg, GError **error)
{
	int busy = 5000;
	g_autofree char *opp = NULL, *tkt = NULL;
	config_setting_t *s;

	if (!config_check_keys(c, cfg->path, (const MrConfigSection *const *)cfg->sections, error))
		return FALSE;
	if (!config_string(c, cfg->path, "database", "var/mailroom.db", &cfg->database, error))
		return FALSE;
	if (*cfg->database == '\0')
		return mr_config_invalid(error, cfg->path, config_lookup(c, "database"),
				      "database", "must not be empty");
	if (!config_string(c, cfg->path, "database_password_file", NULL,
			   &cfg->database_password_file, error))
		return FALSE;
	if (!config_string(c, cfg->path, "spool_directory", NULL, &cfg->spool_directory, error))
		return FALSE;
	if (cfg->spool_directory == NULL || *cfg->spool_directory == '\0') {
		g_autofree char *dir = g_path_get_dirname(cfg->database);

		g_free(cfg->spool_directory);
		/* beside an SQLite file; a database server has no "beside" */
		cfg->spool_directory = strstr(cfg->database, "://") != NULL
					       ? g_strdup("/var/spool/mailroom")
					       : g_build_filename(dir, "spool", NULL);
	}
	if (!config_string_list(c, cfg->path, "domains", TRUE, &cfg->domains, error))
		return FALSE;
	if (!config_addresses(c, cfg, error) || !config_sections(c, cfg, error))
		return FALSE;
	if (!config_string(c, cfg->path, "ids.opportunity_prefix", "OPP", &opp, error) ||
	    !config_string(c, cfg->path, "ids.ticket_prefix", "TKT", &tkt, error))
		return FALSE;
	if (!is_valid_prefix(opp))
		return mr_config_invalid(error, cfg->path, config_lookup(c, "ids.opportunity_prefix"),
				      "ids.opportunity_prefix", "must be 1-16 letters");
	if (!is_valid_prefix(tkt))
		return mr_config_invalid(error, cfg->path, config_lookup(c, "ids.ticket_prefix"),
				      "ids.ticket_prefix", "must be 1-16 letters");
	if (g_ascii_strcasecmp(opp, "LEAD") == 0 || g_ascii_strcasecmp(tkt, "LEAD") == 0)
		return mr_config_invalid(error, cfg->path, config_lookup(c, "ids"), "ids",
				      "LEAD is the inbox lead prefix and cannot be used");
	if (g_ascii_strcasecmp(opp, tkt) == 0)
		return mr_config_invalid(error, cfg->path, config_lookup(c, "ids"), "ids",
				      "opportunity_prefix and ticket_prefix must differ");
	cfg->ids.opportunity_prefix = g_ascii_strup(opp, -1);
	cfg->ids.ticket_prefix = g_ascii_strup(tkt, -1);
	if (!config_string_list(c, cfg->path, "freemail_domains", TRUE, &cfg->freemail_domains, error))
		return FALSE;
	if (!config_timezone(c, cfg, error) || !config_outgoing(c, cfg, error))
		return FALSE;
	if (!config_string_list(c, cfg->path, "parse.fallback_charsets", FALSE,
				&cfg->parse.fallback_charsets, error))
		return FALSE;
	if (cfg->parse.fallback_charsets[0] == NULL) {
		g_strfreev(cfg->parse.fallback_charsets);
		cfg->parse.fallback_charsets = g_strsplit("utf-8 windows-1252", " ", -1);
	}
	if (!config_parse_limits(c, cfg, error))
		return FALSE;
	if (!config_string(c, cfg->path, "store.synchronous", "full", &cfg->store.synchronous, error))
		return FALSE;
	if (g_ascii_strcasecmp(cfg->store.synchronous, "full") != 0 &&
	    g_ascii_strcasecmp(cfg->store.synchronous, "normal") != 0)
		return mr_config_invalid(error, cfg->path, config_lookup(c, "store.synchronous"),
				      "store.synchronous", "must be \"full\" or \"normal\"");
	s = config_lookup(c, "store.busy_timeout");
	if (s != NULL) {
		if (config_setting_type(s) != CONFIG_TYPE_INT)
			return mr_config_invalid(error, cfg->path, s, "store.busy_timeout",
					      "must be an integer (milliseconds)");
		busy = config_setting_get_int(s);
		if (busy < 0 || busy > 600000)
			return mr_config_invalid(error, cfg->path, s, "store.busy_timeout",
					      "must be between 0 and 600000");
	}
	cfg->store.busy_timeout_ms = busy;
	/* For tests only: the checked range keeps every date in GDateTime's. */
	s = config_lookup(c, "testing.clock_offset");
	if (s != NULL && config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return mr_config_invalid(error, cfg->path, s, "testing.clock_offset",
				      "must be an integer (seconds, e.g. 86400 or -3600)");
	if (!config_int(c, cfg->path, "testing.clock_offset", 0, -MR_CLOCK_OFFSET_MAX,
			MR_CLOCK_OFFSET_MAX, &cfg->testing.clock_offset_s, error))
		return FALSE;
	return config_daemon_keys(c, cfg, error);
}

MrConfig *
mr_config_load(const char *path, const MrConfigSection *const *sections, GError **error)
{
	g_autoptr(config_t) c = g_new0(config_t, 1);
	g_autoptr(MrConfig) cfg = g_atomic_rc_box_new0(MrConfig);

	g_return_val_if_fail(path != NULL, NULL);

	config_init(c);
	cfg->path = g_strdup(path);
	cfg->addresses = g_ptr_array_new_with_free_func((GDestroyNotify)mailroom_address_free);
	{
		guint n = 0;

		while (sections != NULL && sections[n] != NULL)
			n++;
		cfg->sections = g_new0(const MrConfigSection *, n + 1);
		for (guint i = 0; i < n; i++)
			cfg->sections[i] = sections[i];
		cfg->section_values = g_new0(gpointer, n + 1);
	}
	if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_IO,
			    "%s: cannot read the configuration file (missing or not a file)", path);
		return NULL;
	}
	if (config_read_file(c, path) != CONFIG_TRUE) {
		if (config_error_type(c) == CONFIG_ERR_FILE_IO)
			g_set_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_IO,
				    "%s: cannot read the configuration file", path);
		else
			g_set_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_SYNTAX,
				    "%s:%d: %s",
				    config_error_file(c) != NULL ? config_error_file(c) : path,
				    config_error_line(c), config_error_text(c));
		return NULL;
	}
	if (!config_load_keys(c, cfg, error))
		return NULL;
	return g_steal_pointer(&cfg);
}

const MrMailroomAddress *
mr_config_find_address(const MrConfig *cfg, const char *address, char **detail_out)
{
	g_autofree char *lower = NULL;
	char *at, *plus;

	g_return_val_if_fail(cfg != NULL && address != NULL, NULL);

	for (guint i = 0; cfg->sections != NULL && cfg->sections[i] != NULL; i++) {
		const MrConfigSection *section = cfg->sections[i];
		gsize len = section->address_scheme != NULL ? strlen(section->address_scheme) : 0;

		if (len == 0 || g_ascii_strncasecmp(address, section->address_scheme, len) != 0)
			continue;
		if (detail_out != NULL)
			*detail_out = NULL;
		/* no value yet while the addresses are read */
		return cfg->section_values[i] != NULL
			       ? section->find_address(cfg->section_values[i], address + len)
			       : NULL;
	}
	lower = mr_address_normalise(address);
	at = strrchr(lower, '@');
	if (at == NULL)
		return NULL;
	plus = memchr(lower, '+', (gsize)(at - lower));
	for (guint i = 0; i < cfg->addresses->len; i++) {
		const MrMailroomAddress *a = g_ptr_array_index(cfg->addresses, i);
		gsize local = plus != NULL ? (gsize)(plus - lower) : (gsize)(at - lower);

		if (strncmp(a->address, lower, local) != 0 || a->address[local] != '@' ||
		    strcmp(a->address + local, at) != 0)
			continue;
		if (detail_out != NULL)
			*detail_out = plus != NULL ? g_strndup(plus + 1, (gsize)(at - plus - 1)) : NULL;
		return a;
	}
	return NULL;
}

gboolean
mr_config_is_own_domain(const MrConfig *cfg, const char *domain)
{
	g_return_val_if_fail(cfg != NULL, FALSE);
	return domain != NULL && g_strv_contains((const char *const *)cfg->domains, domain);
}

gboolean
mr_config_is_freemail(const MrConfig *cfg, const char *domain)
{
	g_return_val_if_fail(cfg != NULL, FALSE);
	if (domain == NULL)
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(mr_builtin_freemail); i++)
		if (strcmp(domain, mr_builtin_freemail[i]) == 0)
			return TRUE;
	return g_strv_contains((const char *const *)cfg->freemail_domains, domain);
}

char *
mr_config_database_name(const MrConfig *cfg)
{
	const char *db = cfg->database;
	const char *rest = strstr(db, "://");
	GString *out;

	if (rest == NULL)
		return g_strdup(db);
	rest += 3;
	out = g_string_new_len(db, rest - db);
	{
		const char *at = strchr(rest, '@');
		const char *slash = strchr(rest, '/');
		const char *colon = strchr(rest, ':');

		/* user:password@host: the userinfo ends at the '@' before the path */
		if (at != NULL && (slash == NULL || at < slash) && colon != NULL && colon < at) {
			g_string_append_len(out, rest, colon + 1 - rest);
			g_string_append(out, "***");
			rest = at;
		}
	}
	/* password=PASSWORD among the query parameters */
	for (const char *hit; (hit = strstr(rest, "password=")) != NULL;) {
		gboolean param = hit[-1] == '?' || hit[-1] == '&';

		g_string_append_len(out, rest, hit + 9 - rest);
		rest = hit + 9;
		if (param) {
			g_string_append(out, "***");
			rest += strcspn(rest, "&");
		}
	}
	g_string_append(out, rest);
	return g_string_free(out, FALSE);
}

/* --- security warnings ------------------------------------------------------ */

/* Adds a warning to @out when the file @path (a secret) is open to its
 * group or others. */
static void
warn_secret_file(GPtrArray *out, const char *what, const char *path)
{
	char *warning = mr_secret_file_warning(what, path);

	if (warning != NULL)
		g_ptr_array_add(out, warning);
}

GStrv
mr_config_security_warnings(const MrConfig *cfg)
{
	GPtrArray *out = g_ptr_array_new();

	g_return_val_if_fail(cfg != NULL, NULL);
	warn_secret_file(out, "database_password_file", cfg->database_password_file);
	if (cfg->relay.configured)
		mr_remote_security_warnings(&cfg->relay.remote, out);
	for (guint i = 0; cfg->sections != NULL && cfg->sections[i] != NULL; i++)
		if (cfg->sections[i]->security_warnings != NULL && cfg->section_values[i] != NULL)
			cfg->sections[i]->security_warnings(cfg->section_values[i], out);
	g_ptr_array_add(out, NULL);
	return (GStrv)g_ptr_array_free(out, FALSE);
}
