/* test-spool.c - MrSpool: small messages stay in memory, big ones go to an
 * unnamed file that leaves nothing in the directory; every byte comes back
 * in order; a failing directory is a reported failure, never a short
 * message. */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "mailroom/mr-spool.h"

/* Returns: (transfer full): a fresh temporary directory. */
static char *
spool_tmpdir(void)
{
	g_autoptr(GError) error = NULL;
	char *dir = g_dir_make_tmp("mr-spool-XXXXXX", &error);

	g_assert_no_error(error);
	return dir;
}

static guint
dir_entries(const char *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	guint n = 0;

	g_assert_nonnull(dir);
	while (g_dir_read_name(dir) != NULL)
		n++;
	return n;
}

/* Appends @total bytes of a known pattern in pieces of @piece bytes. */
static void
append_pattern(MrSpool *spool, gsize total, gsize piece)
{
	g_autofree guint8 *buf = g_malloc(piece);

	for (gsize done = 0; done < total;) {
		gsize n = MIN(piece, total - done);

		for (gsize i = 0; i < n; i++)
			buf[i] = (guint8)((done + i) * 7 + (done + i) / 251);
		g_assert_true(mr_spool_append(spool, buf, n, NULL));
		done += n;
	}
}

static void
check_pattern(GBytes *bytes, gsize total)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);

	g_assert_cmpuint(len, ==, total);
	for (gsize i = 0; i < total; i++)
		if (data[i] != (guint8)(i * 7 + i / 251))
			g_error("byte %zu differs", i);
}

typedef struct {
	gsize threshold, total, piece;
	gboolean spooled;
} SpoolCase;

static const SpoolCase spool_cases[] = {
	{ 1024, 1000, 100, FALSE },         /* below the threshold: memory */
	{ 1024, 1024, 1024, FALSE },        /* exactly at it: memory */
	{ 1024, 1025, 1, TRUE },            /* one byte past: a file */
	{ 0, 1, 1, TRUE },                  /* threshold 0: every message */
	{ 4096, 300000, 998, TRUE },        /* many write chunks */
	{ 65536, 1 << 20, 70000, TRUE },    /* pieces larger than a chunk */
};

static void
test_roundtrip(gconstpointer data)
{
	const SpoolCase *c = data;
	g_autofree char *dir = spool_tmpdir();
	g_autoptr(MrSpool) spool = mr_spool_new(dir, c->threshold);
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;

	append_pattern(spool, c->total, c->piece);
	g_assert_cmpuint(mr_spool_size(spool), ==, c->total);
	g_assert_cmpint(mr_spool_spooled(spool), ==, c->spooled);
	/* The file has no name: nothing to clean up after a crash. */
	g_assert_cmpuint(dir_entries(dir), ==, 0);
	bytes = mr_spool_finish(spool, &error);
	g_assert_no_error(error);
	check_pattern(bytes, c->total);
	g_assert_cmpuint(mr_spool_size(spool), ==, 0);
	g_assert_cmpuint(dir_entries(dir), ==, 0);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* Whether the file system of @dir makes unnamed files. */
static gboolean
has_tmpfile(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		return FALSE;
	close(fd);
	return TRUE;
}

/* Where the file system makes unnamed files, the spool file never had a
 * name: its descriptor points at "#inode (deleted)", not at a deleted
 * "mr-spool-..." (a build without O_TMPFILE named every file for an
 * instant, and a watcher of the directory could catch one). */
static void
test_unnamed(void)
{
	g_autofree char *dir = spool_tmpdir();
	g_autoptr(MrSpool) spool = mr_spool_new(dir, 10);
	g_autoptr(GDir) fds = NULL;
	g_autofree char *prefix = g_strconcat(dir, "/", NULL);
	const char *name;
	guint found = 0;

	if (!has_tmpfile(dir)) {
		g_rmdir(dir);
		g_test_skip("no O_TMPFILE on this file system");
		return;
	}
	append_pattern(spool, 5000, 100);
	g_assert_true(mr_spool_spooled(spool));
	fds = g_dir_open("/proc/self/fd", 0, NULL);
	g_assert_nonnull(fds);
	while ((name = g_dir_read_name(fds)) != NULL) {
		g_autofree char *link = g_build_filename("/proc/self/fd", name, NULL);
		g_autofree char *target = g_file_read_link(link, NULL);

		if (target == NULL || !g_str_has_prefix(target, prefix))
			continue;
		found++;
		g_assert_false(g_str_has_prefix(target + strlen(prefix), "mr-spool-"));
	}
	g_assert_cmpuint(found, ==, 1);
	g_clear_pointer(&spool, mr_spool_free);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* The spool can be used again after finish. */
static void
test_reuse(void)
{
	g_autofree char *dir = spool_tmpdir();
	g_autoptr(MrSpool) spool = mr_spool_new(dir, 10);

	for (int round = 0; round < 3; round++) {
		g_autoptr(GBytes) bytes = NULL;

		append_pattern(spool, round == 1 ? 5 : 5000, 3);
		bytes = mr_spool_finish(spool, NULL);
		check_pattern(bytes, round == 1 ? 5 : 5000);
	}
	g_rmdir(dir);
}

/* A directory that is gone: the append that needs the file fails, later
 * ones only count, and finish fails -- never a truncated message. */
static void
test_missing_directory(void)
{
	g_autofree char *dir = spool_tmpdir();
	g_autoptr(MrSpool) spool = mr_spool_new(dir, 100);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	guint8 buf[64] = { 0 };

	g_assert_cmpint(g_rmdir(dir), ==, 0);
	g_assert_true(mr_spool_append(spool, buf, sizeof buf, NULL));
	g_assert_false(mr_spool_append(spool, buf, sizeof buf, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(error->message, dir));
	g_clear_error(&error);
	g_assert_true(mr_spool_append(spool, buf, sizeof buf, NULL));
	g_assert_cmpuint(mr_spool_size(spool), ==, 3 * sizeof buf);
	bytes = mr_spool_finish(spool, &error);
	g_assert_null(bytes);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	g_clear_error(&error);
	/* and the next message is not poisoned by the last */
	g_assert_true(mr_spool_append(spool, buf, 10, NULL));
	bytes = mr_spool_finish(spool, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(bytes), ==, 10);
}

/* A directory where no file can be made (a full disk is tested for
 * real in 68-full-disk.t, on a small tmpfs). */
static void
test_unwritable_directory(void)
{
	g_autofree char *dir = spool_tmpdir();
	g_autoptr(MrSpool) spool = mr_spool_new(dir, 0);
	g_autoptr(GError) error = NULL;
	guint8 byte = 'x';

	if (geteuid() == 0) {
		g_test_skip("root writes into a read-only directory");
		g_rmdir(dir);
		return;
	}
	g_assert_cmpint(g_chmod(dir, 0500), ==, 0);
	g_assert_false(mr_spool_append(spool, &byte, 1, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
	g_assert_false(mr_spool_check_directory(dir, NULL));
	g_chmod(dir, 0700);
	g_rmdir(dir);
}

static void
test_check_directory(void)
{
	g_autofree char *dir = spool_tmpdir();
	g_autofree char *sub = g_build_filename(dir, "a", "spool", NULL);
	g_autofree char *file = g_build_filename(dir, "file", NULL);
	g_autofree char *below = g_build_filename(file, "spool", NULL);
	g_autoptr(GError) error = NULL;
	GStatBuf st;

	/* created when missing, private */
	g_assert_true(mr_spool_check_directory(sub, &error));
	g_assert_no_error(error);
	g_assert_cmpint(g_stat(sub, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0700);
	g_assert_cmpuint(dir_entries(sub), ==, 0);
	/* a path below a file: a clear error naming it */
	g_assert_true(g_file_set_contents(file, "x", 1, NULL));
	g_assert_false(mr_spool_check_directory(below, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, below));
	g_unlink(file);
	g_rmdir(sub);
	g_autofree char *a = g_build_filename(dir, "a", NULL);
	g_rmdir(a);
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(spool_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/ingest/spool/roundtrip/%u", i);

		g_test_add_data_func(path, &spool_cases[i], test_roundtrip);
	}
	g_test_add_func("/mailroom/ingest/spool/reuse", test_reuse);
	g_test_add_func("/mailroom/ingest/spool/unnamed", test_unnamed);
	g_test_add_func("/mailroom/ingest/spool/missing-directory", test_missing_directory);
	g_test_add_func("/mailroom/ingest/spool/unwritable-directory", test_unwritable_directory);
	g_test_add_func("/mailroom/ingest/spool/check-directory", test_check_directory);
	return g_test_run();
}
