/* mr-spool.c - a message's bytes in memory while small, in an unnamed
 * spool file past a threshold (see mr-spool.h).
 *
 * Ingest stage.  Used on the door's thread only. */
#define G_LOG_DOMAIN "mailroom-spool"
/* O_TMPFILE is a GNU extension: <fcntl.h> hides it without this (and
 * then every spool file had a name for an instant). */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "mailroom/mr-spool.h"

/* Bytes gathered before a write(2) once spooling. */
#define SPOOL_WRITE_CHUNK (64 * 1024)

struct _MrSpool {
	char *directory;
	gsize threshold;
	GByteArray *buf;  /* the message while in memory; else unwritten bytes */
	int fd;           /* -1 while in memory */
	gsize size;       /* bytes appended */
	gboolean failed;  /* a write failed: the rest is only counted */
	GError *error;    /* why, for mr_spool_finish() */
};

static gboolean
spool_fail(MrSpool *spool, int saved_errno, const char *what, GError **error)
{
	spool->failed = TRUE;
	g_set_error(&spool->error, G_IO_ERROR, g_io_error_from_errno(saved_errno),
		    "spool %s in %s: %s", what, spool->directory, g_strerror(saved_errno));
	if (error != NULL)
		*error = g_error_copy(spool->error);
	g_clear_pointer(&spool->buf, g_byte_array_unref);
	return FALSE;
}

/* Opens an unnamed file in @directory.  Returns: the descriptor, or -1
 * with errno set. */
static int
spool_open(const char *directory)
{
	g_autofree char *tmpl = NULL;
	int fd;
	int saved;

#ifdef O_TMPFILE
	fd = open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
#endif
	/* A file system without O_TMPFILE: a name for an instant. */
	tmpl = g_build_filename(directory, "mr-spool-XXXXXX", NULL);
	fd = g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (g_unlink(tmpl) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Writes @len bytes of @data to the file.  Returns 0 or an errno. */
static int
spool_write(int fd, const guint8 *data, gsize len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO;
		data += n;
		len -= (gsize)n;
	}
	return 0;
}

MrSpool *
mr_spool_new(const char *directory, gsize threshold)
{
	MrSpool *spool = g_new0(MrSpool, 1);

	g_return_val_if_fail(directory != NULL, NULL);

	spool->directory = g_strdup(directory);
	spool->threshold = threshold;
	spool->buf = g_byte_array_sized_new((guint)MIN(threshold, 4096));
	spool->fd = -1;
	return spool;
}

gboolean
mr_spool_append(MrSpool *spool, const guint8 *data, gsize len, GError **error)
{
	int err;

	g_return_val_if_fail(spool != NULL, FALSE);

	spool->size += len;
	if (spool->failed)
		return TRUE; /* reported once, by the call that failed */
	if (spool->fd < 0 && spool->buf->len + len > spool->threshold) {
		spool->fd = spool_open(spool->directory);
		if (spool->fd < 0)
			return spool_fail(spool, errno, "file", error);
		if ((err = spool_write(spool->fd, spool->buf->data, spool->buf->len)) != 0)
			return spool_fail(spool, err, "write", error);
		g_byte_array_set_size(spool->buf, 0);
	}
	if (spool->fd >= 0 && spool->buf->len + len >= SPOOL_WRITE_CHUNK) {
		if ((err = spool_write(spool->fd, spool->buf->data, spool->buf->len)) != 0 ||
		    (err = spool_write(spool->fd, data, len)) != 0)
			return spool_fail(spool, err, "write", error);
		g_byte_array_set_size(spool->buf, 0);
		return TRUE;
	}
	g_byte_array_append(spool->buf, data, (guint)len);
	return TRUE;
}

gsize
mr_spool_size(const MrSpool *spool)
{
	return spool->size;
}

gboolean
mr_spool_spooled(const MrSpool *spool)
{
	return spool->fd >= 0;
}

GBytes *
mr_spool_finish(MrSpool *spool, GError **error)
{
	g_autoptr(GMappedFile) map = NULL;
	GBytes *bytes;
	GError *e = NULL;
	int err;

	g_return_val_if_fail(spool != NULL, NULL);

	if (spool->failed) {
		g_propagate_error(error, g_steal_pointer(&spool->error));
		spool->failed = FALSE;
		spool->size = 0;
		spool->buf = g_byte_array_new();
		return NULL;
	}
	if (spool->fd < 0) {
		bytes = g_byte_array_free_to_bytes(g_steal_pointer(&spool->buf));
		spool->buf = g_byte_array_new();
		spool->size = 0;
		return bytes;
	}
	err = spool_write(spool->fd, spool->buf->data, spool->buf->len);
	g_byte_array_set_size(spool->buf, 0);
	if (err == 0) {
		/* Read-only and private: the parse and the store read the
		 * file's pages in place; the kernel may drop them again. */
		map = g_mapped_file_new_from_fd(spool->fd, FALSE, &e);
	}
	close(spool->fd);
	spool->fd = -1;
	spool->size = 0;
	if (err != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "spool write in %s: %s",
			    spool->directory, g_strerror(err));
		return NULL;
	}
	if (map == NULL) {
		g_propagate_prefixed_error(error, e, "spool map in %s: ", spool->directory);
		return NULL;
	}
	return g_mapped_file_get_bytes(map);
}

void
mr_spool_free(MrSpool *spool)
{
	if (spool == NULL)
		return;
	if (spool->fd >= 0)
		close(spool->fd);
	g_clear_pointer(&spool->buf, g_byte_array_unref);
	g_clear_error(&spool->error);
	g_free(spool->directory);
	g_free(spool);
}

gboolean
mr_spool_check_directory(const char *directory, GError **error)
{
	int fd;

	g_return_val_if_fail(directory != NULL, FALSE);

	if (g_mkdir_with_parents(directory, 0700) != 0) {
		int saved = errno;

		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
			    "spool directory %s: %s", directory, g_strerror(saved));
		return FALSE;
	}
	fd = spool_open(directory);
	if (fd < 0) {
		int saved = errno;

		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
			    "spool directory %s: cannot create a file: %s", directory, g_strerror(saved));
		return FALSE;
	}
	close(fd);
	return TRUE;
}
