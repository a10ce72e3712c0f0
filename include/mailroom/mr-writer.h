/* mr-writer.h - group commit: one writer thread, one SQLite connection,
 * many messages per transaction.
 *
 * Doors submit a message with its recipients; parsing runs on a thread
 * pool, then the writer applies every pending message in one transaction
 * and reports each result back on the door's main context after COMMIT. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-ingest.h"

G_BEGIN_DECLS

typedef struct _MrWriter MrWriter;

/* The outcome for one recipient: @error is NULL when @delivery is durable. */
typedef struct {
	const char *recipient;
	MrDelivery delivery;
	GError *error;
} MrWriterResult;

/* Called on the writer's main context once the batch holding the message
 * committed (or failed).  @results has one entry per recipient, in the
 * order submitted; it is valid during the call only. */
typedef void (*MrWriterDone)(const MrWriterResult *results, guint n, gpointer user_data);

/* Opens the store named in @cfg on a writer thread and a parse pool of
 * @parse_threads.  Results are dispatched on @context.
 * Returns: (transfer full) (nullable): the writer, or NULL with @error. */
MrWriter *mr_writer_new(MrConfig *cfg, GMainContext *context, guint parse_threads,
			GError **error);

/* Queues @raw for @recipients (char*, copied) from @envelope_from
 * (nullable) under @cfg (referenced: a reload does not change what a
 * queued message is routed with).  @done is called exactly once, on the
 * writer's context; @user_data is the caller's to keep alive until then. */
void mr_writer_submit(MrWriter *writer, MrConfig *cfg, GBytes *raw, const char *envelope_from,
		      GPtrArray *recipients, MrWriterDone done, gpointer user_data);

/* Returns the number of messages submitted and not yet reported. */
guint mr_writer_pending(MrWriter *writer);

/* Returns the number of messages committed so far. */
guint64 mr_writer_committed(MrWriter *writer);

/* Finishes every submitted message, stops the threads and closes the
 * store.  Results still pending are dispatched to the context, so keep
 * iterating it until mr_writer_pending() is 0 before calling this.
 * NULL-safe. */
void mr_writer_free(MrWriter *writer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrWriter, mr_writer_free)

G_END_DECLS
