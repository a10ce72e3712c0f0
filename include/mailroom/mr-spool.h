/* mr-spool.h - the bytes of one message on their way in: in memory while
 * small, in an unnamed file of the spool directory once past a threshold.
 *
 * A door appends what it receives and, at the end, gets one GBytes that
 * the parse reads in place: the memory buffer, or a read-only mapping of
 * the file.  The file has no name (O_TMPFILE, or unlinked at once), so a
 * crash leaves nothing behind; nothing in it was acknowledged yet.  Memory
 * per message being received is thus bounded by the threshold, whatever
 * the message's size. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _MrSpool MrSpool;

/* Returns: (transfer full): an empty spool that keeps up to @threshold
 * bytes in memory and spools to @directory (copied) past it. */
MrSpool *mr_spool_new(const char *directory, gsize threshold);

/* Appends @len bytes of @data.  After the first failure (the directory is
 * missing, the disk is full) it keeps counting and writes nothing more.
 * Returns FALSE with @error (G_IO_ERROR) on the call that failed. */
gboolean mr_spool_append(MrSpool *spool, const guint8 *data, gsize len, GError **error);

/* Returns the number of bytes appended (also those not kept after a
 * failure). */
gsize mr_spool_size(const MrSpool *spool);

/* Returns TRUE once the bytes went to a file. */
gboolean mr_spool_spooled(const MrSpool *spool);

/* Ends @spool: writes what is buffered and maps the file.
 * Returns: (transfer full) (nullable): every byte appended, or NULL with
 * @error (G_IO_ERROR) when a write or the mapping failed; a temporary
 * failure for the sender.  The spool is empty afterwards. */
GBytes *mr_spool_finish(MrSpool *spool, GError **error);

/* Frees @spool and its file; NULL-safe. */
void mr_spool_free(MrSpool *spool);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrSpool, mr_spool_free)

/* Creates @directory (mode 0700) when missing and checks that an unnamed
 * file can be made in it.  Returns FALSE with @error (G_IO_ERROR). */
gboolean mr_spool_check_directory(const char *directory, GError **error);

G_END_DECLS
