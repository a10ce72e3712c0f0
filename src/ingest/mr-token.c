/* mr-token.c - runs the OAuth2 token command and reads its token (see
 * mr-token.h).
 *
 * Ingest stage (the IMAP door today, the relay next).  The command runs on
 * the calling thread, which waits for it on a main context of its own. */
#define G_LOG_DOMAIN "mailroom-token"

#include <gio/gio.h>
#include <string.h>

#include "mailroom/mr-error.h"
#include "mailroom/mr-token.h"

typedef struct {
	GBytes *out, *err;
	GError *error;
	gboolean done, timed_out;
} MrTokenRun;

static void
token_done(GObject *source, GAsyncResult *res, gpointer data)
{
	MrTokenRun *run = data;

	g_subprocess_communicate_finish(G_SUBPROCESS(source), res, &run->out, &run->err,
					&run->error);
	run->done = TRUE;
}

static gboolean
token_timeout(gpointer data)
{
	((MrTokenRun *)data)->timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

char *
mr_token_run(const char *const *argv, const char *name, GError **error)
{
	g_autoptr(GSubprocess) p = NULL;
	g_autoptr(GMainContext) ctx = g_main_context_new();
	g_autoptr(GCancellable) cancel = g_cancellable_new();
	g_autoptr(GSource) timer = g_timeout_source_new(MR_TOKEN_TIMEOUT_MS);
	g_autoptr(GError) local = NULL;
	g_autofree char *token = NULL;
	MrTokenRun run = { 0 };

	g_return_val_if_fail(argv != NULL && argv[0] != NULL && name != NULL, NULL);

	p = g_subprocess_newv(argv,
			      G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE |
				      G_SUBPROCESS_FLAGS_STDIN_INHERIT,
			      &local);
	if (p == NULL) {
		g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_SPAWN, "%s: %s", name,
			    local->message);
		return NULL;
	}
	/* A loop of this thread's own: the command's pipes and the clock. */
	g_main_context_push_thread_default(ctx);
	g_source_set_callback(timer, token_timeout, &run, NULL);
	g_source_attach(timer, ctx);
	g_subprocess_communicate_async(p, NULL, cancel, token_done, &run);
	while (!run.done) {
		g_main_context_iteration(ctx, TRUE);
		if (run.timed_out && !g_cancellable_is_cancelled(cancel)) {
			g_subprocess_force_exit(p);
			g_cancellable_cancel(cancel);
		}
	}
	g_source_destroy(timer);
	g_main_context_pop_thread_default(ctx);
	if (run.timed_out) {
		g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_TIMEOUT,
			    "%s: no answer within %d s", name, MR_TOKEN_TIMEOUT_MS / 1000);
	} else if (run.error != NULL) {
		g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_FAILED, "%s: %s", name,
			    run.error->message);
	} else if (!g_subprocess_get_successful(p) || run.out == NULL ||
		   g_bytes_get_size(run.out) == 0) {
		g_autofree char *why = g_strndup(run.err != NULL ? g_bytes_get_data(run.err, NULL) : "",
						 run.err != NULL ? g_bytes_get_size(run.err) : 0);

		why[strcspn(why, "\r\n")] = '\0';
		g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_FAILED, "%s failed%s%s", name,
			    *why != '\0' ? ": " : " (no token on its output)", why);
	} else {
		token = g_strndup(g_bytes_get_data(run.out, NULL), g_bytes_get_size(run.out));
		token[strcspn(token, "\r\n")] = '\0';
		if (*token == '\0') {
			g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_FAILED,
				    "%s printed no token", name);
			g_clear_pointer(&token, g_free);
		}
	}
	g_clear_pointer(&run.out, g_bytes_unref);
	g_clear_pointer(&run.err, g_bytes_unref);
	g_clear_error(&run.error);
	return g_steal_pointer(&token);
}
