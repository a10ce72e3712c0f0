/* mr-token.h - the OAuth2 token command: a helper program that prints an
 * access token (token_command of an imap entry; the SMTP relay next).
 *
 * mailroom keeps no refresh token and no client secret: the helper does,
 * and mailroom runs it for every login, without a shell. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* At most this long (30 s) for one run. */
#define MR_TOKEN_TIMEOUT_MS 30000

/* Runs @argv (no shell, @argv[0] looked up in PATH) and returns the first
 * line of its standard output, without its line end: the access token.
 * @name is how error messages call the command ("token_command").
 * Returns: (transfer full) (nullable): the token, or NULL with @error in
 * MR_TOKEN_ERROR: _SPAWN (it cannot be started), _TIMEOUT (no answer
 * within MR_TOKEN_TIMEOUT_MS), _FAILED (a non-zero exit or no token; the
 * message carries the first line of its standard error). */
char *mr_token_run(const char *const *argv, const char *name, GError **error);

G_END_DECLS
