/* test-token.c - the token command: its token is the first line of its
 * output; what it writes is bounded; on a time-out, past a bound and after
 * it exits its whole process group goes; it sees a clean environment. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "mailroom/mr-error.h"
#include "mailroom/mr-token.h"

/* Runs "sh -c @script" within @limits (nullable); @elapsed_ms (nullable)
 * gets how long it took. */
static char *
run_sh(const char *script, const MrTokenLimits *limits, gint64 *elapsed_ms, GError **error)
{
	const char *argv[] = { "sh", "-c", script, NULL };
	gint64 start = g_get_monotonic_time();
	char *token = mr_token_run_limited(argv, "token_command", limits, error);

	if (elapsed_ms != NULL)
		*elapsed_ms = (g_get_monotonic_time() - start) / 1000;
	return token;
}

/* TRUE when the process whose pid is in @pidfile is gone (or a zombie
 * waiting for init), within 2 s. */
static gboolean
pidfile_process_gone(const char *pidfile)
{
	g_autofree char *text = NULL;
	pid_t pid;

	g_assert_true(g_file_get_contents(pidfile, &text, NULL, NULL));
	pid = (pid_t)atoi(text);
	g_assert_cmpint(pid, >, 1);
	for (int i = 0; i < 200; i++) {
		g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", (int)pid);
		g_autofree char *stat = NULL;
		const char *close_paren;

		if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
			return TRUE;
		close_paren = strrchr(stat, ')');
		if (close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'Z')
			return TRUE;
		g_usleep(10000);
	}
	kill(pid, SIGKILL); /* the test's own leftover */
	return FALSE;
}

static char *
tmp_pidfile(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("mr-token-XXXXXX", &error);

	g_assert_no_error(error);
	return g_build_filename(dir, "pid", NULL);
}

static void
remove_pidfile(const char *pidfile)
{
	g_autofree char *dir = g_path_get_dirname(pidfile);

	g_unlink(pidfile);
	g_rmdir(dir);
}

static void
test_first_line(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *token = run_sh("printf 'tok-123\\r\\nsecond line\\n'", NULL, NULL, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(token, ==, "tok-123");
}

static void
test_failure_reason(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *token = run_sh(
		"printf 'refused \\033]0;owned\\007 \\033[2J now\\nmore\\n' >&2; exit 3", NULL,
		NULL, &error);

	g_assert_null(token);
	g_assert_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_FAILED);
	/* its first line, with the control characters shown, not sent */
	g_assert_nonnull(strstr(error->message, "refused \\x1b]0;owned\\x07 \\x1b[2J now"));
	g_assert_null(strchr(error->message, '\033'));
	g_assert_null(strstr(error->message, "more"));
}

static void
test_no_token(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *token = run_sh("echo", NULL, NULL, &error);

	g_assert_null(token);
	g_assert_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_FAILED);
}

static void
test_spawn_error(void)
{
	const char *argv[] = { "/nonexistent/mailroom-token-helper", NULL };
	g_autoptr(GError) error = NULL;
	g_autofree char *token = mr_token_run(argv, "token_command", &error);

	g_assert_null(token);
	g_assert_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_SPAWN);
}

/* Issue 20 item 11: `yes` as the command grew the daemon to 7 GB. */
static void
test_stdout_bounded(void)
{
	MrTokenLimits limits = { .timeout_ms = 5000 };
	g_autoptr(GError) error = NULL;
	gint64 ms;
	g_autofree char *token = NULL;

	/* a megabyte, then it would wait: refused at 64 KB, not at the time-out */
	token = run_sh("head -c 1048576 /dev/zero | tr '\\000' y; sleep 30", &limits, &ms, &error);
	g_assert_null(token);
	g_assert_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_LIMIT);
	g_assert_nonnull(strstr(error->message, "standard output"));
	g_assert_cmpint(ms, <, 2000);
	g_clear_error(&error);

	/* the command of the issue */
	{
		const char *argv[] = { "yes", NULL };
		g_autofree char *t2 = mr_token_run_limited(argv, "token_command", &limits, &error);

		g_assert_null(t2);
		g_assert_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_LIMIT);
	}
}

static void
test_stderr_bounded(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *token =
		run_sh("head -c 100000 /dev/zero | tr '\\000' e >&2; echo tok", NULL, NULL, &error);

	g_assert_null(token);
	g_assert_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_LIMIT);
	g_assert_nonnull(strstr(error->message, "standard error"));
}

/* Issue 20 item 12: on the time-out the whole group goes, not only sh. */
static void
test_timeout_kills_group(void)
{
	MrTokenLimits limits = { .timeout_ms = 500 };
	g_autofree char *pidfile = tmp_pidfile();
	g_autofree char *script = g_strdup_printf("sleep 600 & echo $! >%s; sleep 600", pidfile);
	g_autoptr(GError) error = NULL;
	gint64 ms;
	g_autofree char *token = run_sh(script, &limits, &ms, &error);

	g_assert_null(token);
	g_assert_error(error, MR_TOKEN_ERROR, MR_TOKEN_ERROR_TIMEOUT);
	g_assert_cmpint(ms, <, 3000);
	g_assert_true(pidfile_process_gone(pidfile));
	remove_pidfile(pidfile);
}

/* A helper that leaves a process behind (holding its output open) is
 * answered when it exits, and what it left goes too. */
static void
test_exit_kills_stragglers(void)
{
	MrTokenLimits limits = { .timeout_ms = 5000 };
	g_autofree char *pidfile = tmp_pidfile();
	g_autofree char *script = g_strdup_printf("sleep 600 & echo $! >%s; echo tok", pidfile);
	g_autoptr(GError) error = NULL;
	gint64 ms;
	g_autofree char *token = run_sh(script, &limits, &ms, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(token, ==, "tok");
	g_assert_cmpint(ms, <, 2000);
	g_assert_true(pidfile_process_gone(pidfile));
	remove_pidfile(pidfile);
}

/* Issue 20 item 13: the password_env variables of other mailboxes (and
 * anything else of the daemon's) stay out; PATH, HOME and LANG pass. */
static void
test_clean_environment(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *token = NULL;
	g_autofree char *want = NULL;

	g_setenv("MR_TEST_OTHER_MAILBOX_PASSWORD", "hunter2", TRUE);
	g_setenv("LANG", "C.UTF-8", TRUE);
	g_setenv("HOME", "/home/mailroom-test", TRUE);
	token = run_sh("echo \"${MR_TEST_OTHER_MAILBOX_PASSWORD:-unset} $HOME $LANG\" "
		       "\"$(env | cut -d= -f1 | grep -v -x -e PATH -e HOME -e LANG -e PWD -e SHLVL "
		       "-e _ | tr '\\n' ' ')\"",
		       NULL, NULL, &error);
	g_assert_no_error(error);
	want = g_strdup("unset /home/mailroom-test C.UTF-8 ");
	g_assert_cmpstr(token, ==, want);
	g_unsetenv("MR_TEST_OTHER_MAILBOX_PASSWORD");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/ingest/token/first-line", test_first_line);
	g_test_add_func("/mailroom/ingest/token/failure-reason", test_failure_reason);
	g_test_add_func("/mailroom/ingest/token/no-token", test_no_token);
	g_test_add_func("/mailroom/ingest/token/spawn-error", test_spawn_error);
	g_test_add_func("/mailroom/ingest/token/stdout-bounded", test_stdout_bounded);
	g_test_add_func("/mailroom/ingest/token/stderr-bounded", test_stderr_bounded);
	g_test_add_func("/mailroom/ingest/token/timeout-kills-group", test_timeout_kills_group);
	g_test_add_func("/mailroom/ingest/token/exit-kills-stragglers", test_exit_kills_stragglers);
	g_test_add_func("/mailroom/ingest/token/clean-environment", test_clean_environment);
	return g_test_run();
}
