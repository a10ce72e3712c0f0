/* mr-remote.h - the settings of a remote server mailroom logs in to: an
 * IMAP mailbox today, the SMTP relay next.
 *
 * A core type (the configuration fills it, and core is below net); what
 * is done with it -- connect, TLS, the stream under libetpan, the token
 * command -- is src/net/ (mr-net.h, mr-token.h). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* How the connection is secured. */
typedef enum {
	MR_REMOTE_TLS_IMPLICIT, /* TLS from the first byte (port 993) */
	MR_REMOTE_TLS_STARTTLS, /* STARTTLS before the login (port 143) */
	MR_REMOTE_TLS_NONE,     /* plain text: tests and loopback only */
} MrRemoteTls;

/* How the login proves who it is. */
typedef enum {
	MR_REMOTE_AUTH_PASSWORD, /* LOGIN / AUTHENTICATE PLAIN */
	MR_REMOTE_AUTH_XOAUTH2,  /* SASL XOAUTH2 (or OAUTHBEARER) with a token
	                            from token_command */
} MrRemoteAuth;

/* A remote server and the login to it. */
typedef struct {
	char *label;          /* how logs and errors name it: "mailbox NAME" */
	char *host;
	int port;
	MrRemoteTls tls;
	gboolean tls_verify;  /* FALSE: tests only, warned at every connect */
	char *tls_ca_file;    /* (nullable): a CA trusted besides the system's */
	char *user;           /* (nullable only where user_optional): no login */
	MrRemoteAuth auth;
	char *password_file;  /* (nullable): its first line is the password */
	char *password_env;   /* (nullable): the variable holding it */
	char **token_command; /* (nullable): argv of the XOAUTH2 token helper */
	int timeout_s;        /* a command's deadline (plus time for its bytes) */
} MrRemote;

/* The keys mr_remote_parse() reads, for a section's table of known keys. */
#define MR_REMOTE_KEYS                                                                 \
	"host", "port", "tls", "user", "auth", "password_file", "password_env",        \
		"token_command", "timeout", "tls_verify", "tls_ca_file"

/* What a protocol's remote server defaults to. */
typedef struct {
	int port_implicit; /* the port for tls = "implicit" (IMAP: 993) */
	int port_plain;    /* for "starttls" and "none" (IMAP: 143) */
	int timeout_s;     /* timeout (IMAP: 120) */
	gboolean user_optional; /* no user: no login (a relay that trusts the
	                           network: the SMTP relay) */
	MrRemoteTls tls;   /* tls when the key is missing (IMAP: implicit,
	                      the relay: starttls) */
} MrRemoteDefaults;

struct config_setting_t; /* libconfig's; mr-config-section.h reads it */

/* Reads the keys of a remote server (MR_REMOTE_KEYS) from @group, an
 * entry of section @section (the top-level key: "imap", "relay") of the
 * file @path, into @r, whose label the caller sets: host and user
 * (required, unless @defaults says user_optional: then no user means no
 * login, and the credential keys are not required), tls ("implicit", "starttls", "none"; default implicit),
 * auth ("password" with password_file or password_env, or "xoauth2" with
 * token_command, a shell-quoted command line), port and timeout
 * (defaults @defaults), tls_verify (default true) and tls_ca_file (a
 * regular file).  Returns: TRUE, or FALSE with @error
 * (MR_CONFIG_ERROR_INVALID) "PATH:LINE: SECTION.KEY: what"; @r then holds
 * what was read so far (mr_remote_clear() frees it). */
gboolean mr_remote_parse(struct config_setting_t *group, const char *path, const char *section,
			 const MrRemoteDefaults *defaults, MrRemote *r, GError **error);

/* Frees the members of @r (not @r itself) and zeroes it.  NULL-safe. */
void mr_remote_clear(MrRemote *r);

/* Returns TRUE when @a and @b name the same server and login. */
gboolean mr_remote_equal(const MrRemote *a, const MrRemote *b);

/* Returns the password of @r (transfer full, nullable): the first line of
 * password_file without its line end, or $password_env; NULL with @error
 * (MR_CONFIG_ERROR_IO, the message starting with the label) when it
 * cannot be read or is empty.  Read afresh at every login, so that a
 * changed file needs no reload. */
char *mr_remote_password(const MrRemote *r, GError **error);

/* Appends to @out (char*, transfer full) what in @r puts its secrets at
 * risk, one sentence each: a password_file its group or others may read
 * (mode bits 077), and tls = "none" to a host that is not loopback
 * (127.0.0.0/8, ::1, localhost), which sends the password or token in
 * clear text.  Looked at now (the file's mode may change without a
 * reload). */
void mr_remote_security_warnings(const MrRemote *r, GPtrArray *out);

/* Returns: (transfer full) (nullable): a warning when the file @path (a
 * secret, called @what in it; @path nullable) is open to its group or
 * others, else NULL.  A file that cannot be stat()ed gets none: using it
 * fails with its own error. */
char *mr_secret_file_warning(const char *what, const char *path);

G_END_DECLS
