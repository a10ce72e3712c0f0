/* mr-remote.c - the settings of a remote server mailroom logs in to (see
 * mr-remote.h): its keys in the configuration, comparison, the password,
 * the warnings about secrets.
 *
 * Core module: a section of the configuration fills an MrRemote per entry
 * (each imap entry today), naming its keys by the section's name; src/net/
 * connects with one. */
#define G_LOG_DOMAIN "mailroom-config"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <string.h>

#include "mailroom/mr-config-section.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-remote.h"

/* Refuses @section.@key at @setting with @what. */
static gboolean
remote_invalid(GError **error, const char *path, const config_setting_t *setting,
	       const char *section, const char *key, const char *what)
{
	g_autofree char *full = g_strconcat(section, ".", key, NULL);

	return mr_config_invalid(error, path, setting, full, what);
}

/* Reads the tls, auth and credential keys of @e into @r. */
static gboolean
remote_parse_modes(config_setting_t *e, const char *path, const char *section,
		   const MrRemoteDefaults *defaults, MrRemote *r, GError **error)
{
	static const char *const tls_names[] = { "implicit", "starttls", "none" };
	static const char *const auth_names[] = { "password", "xoauth2" };
	g_autofree char *tls = NULL, *auth = NULL, *command = NULL;
	int v;

	if (!mr_config_member_string(e, path, section, "tls", tls_names[defaults->tls], &tls, error))
		return FALSE;
	if ((v = mr_config_pick(tls, tls_names, G_N_ELEMENTS(tls_names))) < 0)
		return remote_invalid(error, path, config_setting_get_member(e, "tls"), section, "tls",
				      "must be \"implicit\", \"starttls\" or \"none\"");
	r->tls = (MrRemoteTls)v;
	if (!mr_config_member_string(e, path, section, "auth", "password", &auth, error))
		return FALSE;
	if ((v = mr_config_pick(auth, auth_names, G_N_ELEMENTS(auth_names))) < 0)
		return remote_invalid(error, path, config_setting_get_member(e, "auth"), section,
				      "auth", "must be \"password\" or \"xoauth2\"");
	r->auth = (MrRemoteAuth)v;
	if (!mr_config_member_string(e, path, section, "password_file", NULL, &r->password_file,
				     error) ||
	    !mr_config_member_string(e, path, section, "password_env", NULL, &r->password_env,
				     error) ||
	    !mr_config_member_string(e, path, section, "token_command", NULL, &command, error))
		return FALSE;
	if (r->user != NULL && r->auth == MR_REMOTE_AUTH_PASSWORD &&
	    (r->password_file == NULL) == (r->password_env == NULL))
		return remote_invalid(error, path, e, section, "password_file",
				      "auth = \"password\" needs password_file or password_env"
				      " (one of them)");
	if (r->user != NULL && r->auth == MR_REMOTE_AUTH_XOAUTH2) {
		g_autoptr(GError) local = NULL;

		if (command == NULL)
			return remote_invalid(error, path, e, section, "token_command",
					      "auth = \"xoauth2\" needs token_command");
		if (!g_shell_parse_argv(command, NULL, &r->token_command, &local))
			return remote_invalid(error, path,
					      config_setting_get_member(e, "token_command"), section,
					      "token_command", local->message);
	}
	return TRUE;
}

gboolean
mr_remote_parse(config_setting_t *group, const char *path, const char *section,
		const MrRemoteDefaults *defaults, MrRemote *r, GError **error)
{
	config_setting_t *s;

	if (!mr_config_member_string(group, path, section, "host", NULL, &r->host, error) ||
	    !mr_config_member_string(group, path, section, "user", NULL, &r->user, error))
		return FALSE;
	if (r->host == NULL)
		return remote_invalid(error, path, group, section, "host", "missing");
	if (r->user == NULL && !defaults->user_optional)
		return remote_invalid(error, path, group, section, "user", "missing");
	if (!remote_parse_modes(group, path, section, defaults, r, error))
		return FALSE;
	if (!mr_config_member_int(group, path, section, "port",
				  r->tls == MR_REMOTE_TLS_IMPLICIT ? defaults->port_implicit
								    : defaults->port_plain,
				  1, 65535, &r->port, error) ||
	    !mr_config_member_int(group, path, section, "timeout", defaults->timeout_s, 1, 3600,
				  &r->timeout_s, error) ||
	    !mr_config_member_string(group, path, section, "tls_ca_file", NULL, &r->tls_ca_file,
				     error))
		return FALSE;
	r->tls_verify = TRUE;
	s = config_setting_get_member(group, "tls_verify");
	if (s != NULL && config_setting_type(s) != CONFIG_TYPE_BOOL)
		return remote_invalid(error, path, s, section, "tls_verify", "must be true or false");
	if (s != NULL)
		r->tls_verify = config_setting_get_bool(s);
	if (r->tls_ca_file != NULL && !g_file_test(r->tls_ca_file, G_FILE_TEST_IS_REGULAR))
		return remote_invalid(error, path, config_setting_get_member(group, "tls_ca_file"),
				      section, "tls_ca_file", "not a readable file");
	return TRUE;
}

void
mr_remote_clear(MrRemote *r)
{
	if (r == NULL)
		return;
	g_free(r->label);
	g_free(r->host);
	g_free(r->tls_ca_file);
	g_free(r->user);
	g_free(r->password_file);
	g_free(r->password_env);
	g_strfreev(r->token_command);
	memset(r, 0, sizeof(*r));
}

static gboolean
strv_equal0(char **a, char **b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return g_strv_equal((const char *const *)a, (const char *const *)b);
}

gboolean
mr_remote_equal(const MrRemote *a, const MrRemote *b)
{
	return g_strcmp0(a->label, b->label) == 0 && g_strcmp0(a->host, b->host) == 0 &&
	       a->port == b->port && a->tls == b->tls && g_strcmp0(a->user, b->user) == 0 &&
	       a->auth == b->auth && g_strcmp0(a->password_file, b->password_file) == 0 &&
	       g_strcmp0(a->password_env, b->password_env) == 0 &&
	       strv_equal0(a->token_command, b->token_command) && a->timeout_s == b->timeout_s &&
	       a->tls_verify == b->tls_verify && g_strcmp0(a->tls_ca_file, b->tls_ca_file) == 0;
}

char *
mr_remote_password(const MrRemote *r, GError **error)
{
	g_autofree char *text = NULL;
	const char *what = r->password_env != NULL ? r->password_env : r->password_file;

	if (r->password_env != NULL) {
		text = g_strdup(g_getenv(r->password_env));
	} else if (r->password_file != NULL) {
		g_autoptr(GError) local = NULL;

		if (!g_file_get_contents(r->password_file, &text, NULL, &local)) {
			g_set_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_IO,
				    "%s: cannot read password_file: %s", r->label, local->message);
			return NULL;
		}
	}
	if (text != NULL)
		text[strcspn(text, "\r\n")] = '\0';
	if (text == NULL || *text == '\0') {
		g_set_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_IO,
			    "%s: no password in %s", r->label, what != NULL ? what : "(none)");
		return NULL;
	}
	return g_steal_pointer(&text);
}

char *
mr_secret_file_warning(const char *what, const char *path)
{
	GStatBuf st;

	if (path == NULL || g_stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & (S_IRWXG | S_IRWXO)) == 0)
		return NULL;
	return g_strdup_printf("%s %s is open to its group or others (mode %04o):"
			       " chmod 600 it, owned by the user mailroomd runs as",
			       what, path, (unsigned)(st.st_mode & 07777));
}

/* Returns TRUE when @host is this machine over loopback: localhost, an
 * address in 127.0.0.0/8, or ::1. */
static gboolean
host_is_loopback(const char *host)
{
	g_autoptr(GInetAddress) addr = NULL;

	if (g_ascii_strcasecmp(host, "localhost") == 0 ||
	    g_ascii_strcasecmp(host, "localhost.") == 0)
		return TRUE;
	addr = g_inet_address_new_from_string(host);
	return addr != NULL && g_inet_address_get_is_loopback(addr);
}

void
mr_remote_security_warnings(const MrRemote *r, GPtrArray *out)
{
	g_autofree char *what = g_strdup_printf("%s: password_file", r->label);
	char *file = mr_secret_file_warning(what, r->password_file);

	if (file != NULL)
		g_ptr_array_add(out, file);
	if (r->tls == MR_REMOTE_TLS_NONE && !host_is_loopback(r->host))
		g_ptr_array_add(out, g_strdup_printf(
			"%s: tls = \"none\" to %s, which is not loopback: the %s and the"
			" mail cross the network in clear text (use tls = \"implicit\" or"
			" \"starttls\")",
			r->label, r->host, r->auth == MR_REMOTE_AUTH_XOAUTH2 ? "token" : "password"));
}
