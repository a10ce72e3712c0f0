/* mr-token.c - runs the OAuth2 token command and reads its token (see
 * mr-token.h).
 *
 * Net stage (the IMAP door today, the relay next).  The command runs on
 * the calling thread, which waits for it with poll(2).  It is the leader
 * of a process group of its own, so that what it starts goes with it: the
 * whole group is killed on the time-out, past a bound on its output, and
 * once it exits (a helper's leftover would hold its pipes, or pile up one
 * per retry).  What it writes is bounded: a token is a few KB. */
#define G_LOG_DOMAIN "mailroom-token"

#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mailroom/mr-error.h"
#include "mailroom/mr-text.h"
#include "mailroom/mr-token.h"

/* Without a pidfd, how often the exit of the command is looked for. */
#define MR_TOKEN_POLL_MS 20

/* One output of the command: a pipe and what came through it. */
typedef struct {
	int fd;            /* -1 once at its end */
	GByteArray *data;
	gsize max;
	const char *what;  /* "standard output" */
} MrTokenPipe;

/* In the child, between fork and exec: a process group of its own. */
static void
token_child_setup(gpointer data)
{
	setpgid(0, 0);
}

/* The environment of the command: PATH, HOME and LANG of the daemon's,
 * nothing else (the daemon's holds the password_env of every mailbox). */
static char **
token_environment(void)
{
	static const char *const keep[] = { "HOME", "LANG" };
	GPtrArray *env = g_ptr_array_new();
	const char *path = g_getenv("PATH");

	g_ptr_array_add(env, g_strconcat("PATH=", path != NULL ? path : "/usr/bin:/bin", NULL));
	for (guint i = 0; i < G_N_ELEMENTS(keep); i++) {
		const char *v = g_getenv(keep[i]);

		if (v != NULL)
			g_ptr_array_add(env, g_strconcat(keep[i], "=", v, NULL));
	}
	g_ptr_array_add(env, NULL);
	return (char **)g_ptr_array_free(env, FALSE);
}

/* Returns TRUE once the command (@pid) has exited; it stays a zombie, so
 * that its process group id cannot be taken by another group before the
 * group is killed. */
static gboolean
token_exited(pid_t pid)
{
	siginfo_t info = { 0 };

	return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	       info.si_pid == pid;
}

/* Reads what @p has now (the pipe is non-blocking).  Returns FALSE with
 * @error (MR_TOKEN_ERROR_LIMIT) past its bound. */
static gboolean
token_read(MrTokenPipe *p, const char *name, GError **error)
{
	guint8 buf[8192];

	while (p->fd >= 0) {
		ssize_t n = read(p->fd, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return TRUE;
		if (n <= 0) {
			close(p->fd);
			p->fd = -1;
			return TRUE;
		}
		if (p->data->len + (gsize)n > p->max) {
			g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_LIMIT,
				    "%s: more than %zu bytes on its %s (a token is a few KB)", name,
				    p->max, p->what);
			return FALSE;
		}
		g_byte_array_append(p->data, buf, (guint)n);
	}
	return TRUE;
}

/* Waits until @pipes have something or are at their end, the command
 * exits (@pidfd, when there is one) or @deadline (monotonic µs) comes. */
static void
token_wait(MrTokenPipe *pipes, int pidfd, gint64 deadline)
{
	struct pollfd fds[3];
	nfds_t n = 0;
	gint64 left_ms = (deadline - g_get_monotonic_time() + 999) / 1000;

	for (int i = 0; i < 2; i++)
		if (pipes[i].fd >= 0)
			fds[n++] = (struct pollfd){ .fd = pipes[i].fd, .events = POLLIN };
	if (pidfd >= 0)
		fds[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	else
		left_ms = MIN(left_ms, MR_TOKEN_POLL_MS);
	if (left_ms > 0)
		(void)poll(fds, n, (int)MIN(left_ms, G_MAXINT));
}

/* Runs @argv to its end, within @limits; fills @pipes.  Returns the
 * wait status of the command, or -1 with @error (time-out, bound). */
static int
token_communicate(GPid pid, MrTokenPipe *pipes, int timeout_ms, const char *name, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	int pidfd = -1, status = -1;
	gboolean ok = TRUE, exited = FALSE;

#ifdef SYS_pidfd_open
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
	while (ok) {
		ok = token_read(&pipes[0], name, error) && token_read(&pipes[1], name, error);
		if (!ok)
			break;
		if (exited)
			break; /* its last words are read */
		if (token_exited(pid)) {
			/* what it left behind goes now; then read what the
			 * pipes hold, without waiting for a leftover's end */
			kill(-pid, SIGKILL);
			exited = TRUE;
			continue;
		}
		if (g_get_monotonic_time() >= deadline) {
			g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_TIMEOUT,
				    "%s: no answer within %d s", name, (timeout_ms + 999) / 1000);
			ok = FALSE;
			break;
		}
		token_wait(pipes, pidfd, deadline);
	}
	/* The whole group, whatever happened; the leader, a zombie until
	 * now, still holds the group's id. */
	kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pidfd >= 0)
		close(pidfd);
	return ok ? status : -1;
}

char *
mr_token_run(const char *const *argv, const char *name, GError **error)
{
	return mr_token_run_limited(argv, name, NULL, error);
}

char *
mr_token_run_limited(const char *const *argv, const char *name, const MrTokenLimits *limits,
		     GError **error)
{
	g_auto(GStrv) envp = token_environment();
	g_autoptr(GError) local = NULL;
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autoptr(GByteArray) err = g_byte_array_new();
	MrTokenPipe pipes[2] = {
		{ -1, out, MR_TOKEN_MAX_STDOUT, "standard output" },
		{ -1, err, MR_TOKEN_MAX_STDERR, "standard error" },
	};
	int timeout_ms = MR_TOKEN_TIMEOUT_MS;
	g_autofree char *token = NULL;
	GPid pid;
	int status;

	g_return_val_if_fail(argv != NULL && argv[0] != NULL && name != NULL, NULL);

	if (limits != NULL && limits->timeout_ms > 0)
		timeout_ms = limits->timeout_ms;
	if (limits != NULL && limits->max_stdout > 0)
		pipes[0].max = limits->max_stdout;
	if (limits != NULL && limits->max_stderr > 0)
		pipes[1].max = limits->max_stderr;
	/* No shell; standard input from /dev/null (the daemon has none to
	 * give); every other descriptor closed. */
	if (!g_spawn_async_with_pipes(NULL, (char **)argv, envp,
				      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH_FROM_ENVP |
					      G_SPAWN_STDIN_FROM_DEV_NULL | G_SPAWN_CLOEXEC_PIPES,
				      token_child_setup, NULL, &pid, NULL, &pipes[0].fd, &pipes[1].fd,
				      &local)) {
		g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_SPAWN, "%s: %s", name,
			    local->message);
		return NULL;
	}
	/* Also here, so that the group exists before any kill(-pid) (an
	 * EACCES after its exec: the child did it itself). */
	setpgid(pid, pid);
	for (int i = 0; i < 2; i++)
		g_unix_set_fd_nonblocking(pipes[i].fd, TRUE, NULL);
	status = token_communicate(pid, pipes, timeout_ms, name, error);
	for (int i = 0; i < 2; i++)
		if (pipes[i].fd >= 0)
			close(pipes[i].fd);
	if (status == -1)
		return NULL;
	if (!g_spawn_check_wait_status(status, NULL) || out->len == 0) {
		/* its first line of standard error, shown, not sent, to a
		 * terminal (mailroomctl mailbox status prints it) */
		gsize end = 0;
		g_autofree char *why = NULL;

		while (end < err->len && err->data[end] != '\n' && err->data[end] != '\r')
			end++;
		why = mr_text_printable((const char *)err->data, (gssize)end, FALSE);
		if (*why != '\0')
			g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_FAILED, "%s failed: %s",
				    name, why);
		else if (!g_spawn_check_wait_status(status, &local))
			g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_FAILED, "%s failed: %s",
				    name, local->message);
		else
			g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_FAILED,
				    "%s failed (no token on its output)", name);
		return NULL;
	}
	token = g_strndup((const char *)out->data, out->len);
	token[strcspn(token, "\r\n")] = '\0';
	if (*token == '\0') {
		g_set_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_FAILED, "%s printed no token", name);
		return NULL;
	}
	return g_steal_pointer(&token);
}
