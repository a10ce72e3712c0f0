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
	char *user;
	MrRemoteAuth auth;
	char *password_file;  /* (nullable): its first line is the password */
	char *password_env;   /* (nullable): the variable holding it */
	char **token_command; /* (nullable): argv of the XOAUTH2 token helper */
	int timeout_s;        /* a command's deadline (plus time for its bytes) */
} MrRemote;

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
