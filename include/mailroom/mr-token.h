/* mr-token.h - the OAuth2 token command: a helper program that prints an
 * access token (token_command of a remote: an imap entry; the SMTP relay
 * next).
 *
 * mailroom keeps no refresh token and no client secret: the helper does,
 * and mailroom runs it for every login, without a shell. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* At most this long (30 s) for one run. */
#define MR_TOKEN_TIMEOUT_MS 30000
/* At most this much output: a token is a few KB, a reason a line. */
#define MR_TOKEN_MAX_STDOUT (64 * 1024)
#define MR_TOKEN_MAX_STDERR (4 * 1024)

/* What one run may take; a 0 member means its default above. */
typedef struct {
	int timeout_ms;
	gsize max_stdout;
	gsize max_stderr;
} MrTokenLimits;

/* Runs @argv (no shell, @argv[0] looked up in PATH, standard input from
 * /dev/null, in an environment of PATH, HOME and LANG alone: none of the
 * daemon's other variables, such as the password_env of the mailboxes) as
 * the leader of a process group of its own, and returns the
 * first line of its standard output, without its line end: the access
 * token.  The whole group is killed when the command exits (what it left
 * behind goes with it), on the time-out and past a bound on its output.
 * @name is how error messages call the command ("token_command").
 * Returns: (transfer full) (nullable): the token, or NULL with @error in
 * MR_TOKEN_ERROR: _SPAWN (it cannot be started), _TIMEOUT (no answer
 * within MR_TOKEN_TIMEOUT_MS), _LIMIT (more than MR_TOKEN_MAX_STDOUT bytes
 * on its standard output or MR_TOKEN_MAX_STDERR on its standard error),
 * _FAILED (a non-zero exit or no token; the message carries its first
 * line of standard error, control characters shown as text). */
char *mr_token_run(const char *const *argv, const char *name, GError **error);

/* As mr_token_run(), within @limits (nullable: the defaults). */
char *mr_token_run_limited(const char *const *argv, const char *name,
			   const MrTokenLimits *limits, GError **error);

G_END_DECLS
