/* mr-writer.h - group commit: one writer thread, one store connection,
 * many messages and units of work per transaction.
 *
 * Doors submit a message with its recipients; parsing runs on a thread
 * pool, then the writer applies every pending message in one transaction
 * and reports each result back on the door's main context after COMMIT.
 * Any thread can also submit a unit of work (a function and its data) that
 * runs inside the same group commit, under a savepoint of its own, and is
 * answered on the GMainContext it names -- or, for a thread without a
 * loop (a blocking IMAP client), waited for with mr_writer_run_sync(). */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-ingest.h"
#include "mailroom/mr-store.h"

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

/* Like mr_writer_submit(), with @done called on @context -- or, @context
 * NULL, on the writer thread itself, where it must be quick and
 * thread-safe (a thread without a loop: push to its queue). */
void mr_writer_submit_full(MrWriter *writer, MrConfig *cfg, GBytes *raw,
			   const char *envelope_from, GPtrArray *recipients,
			   GMainContext *context, MrWriterDone done, gpointer user_data);

/* A unit of work.  Runs on the writer thread inside the open group-commit
 * transaction, under a savepoint of its own, with @store set to @cfg:
 * returning FALSE (with @error) undoes what it did and leaves the rest of
 * the batch alone.  A look-up that failed (mr_store_check()) fails it too.
 * It must not begin, commit or roll back.  It may run more than once: when
 * the database rolls the batch's transaction back on its own (a full
 * disk), the other units are applied again; so it starts from its inputs
 * and drops what a run before left in @data. */
typedef gboolean (*MrWriterWork)(MrStore *store, const MrConfig *cfg, gpointer data,
				 GError **error);

/* Called exactly once for a unit: @error is NULL when its work is durable
 * (the batch committed), else why nothing of it is stored. */
typedef void (*MrWriterWorkDone)(gpointer data, const GError *error, gpointer user_data);

/* Queues @work with @data (freed with @free_data, nullable, after @done)
 * under @cfg (referenced).  @done runs on @context, or -- @context NULL --
 * on the writer thread itself, where it must be quick and thread-safe. */
void mr_writer_run(MrWriter *writer, MrConfig *cfg, MrWriterWork work, gpointer data,
		   GDestroyNotify free_data, GMainContext *context, MrWriterWorkDone done,
		   gpointer user_data);

/* Runs @work like mr_writer_run() and blocks until its batch committed or
 * failed: for a thread without a main loop.  Not on the writer thread.
 * Returns TRUE once the work is durable, else FALSE with @error. */
gboolean mr_writer_run_sync(MrWriter *writer, MrConfig *cfg, MrWriterWork work, gpointer data,
			    GError **error);

/* Called on the writer's context after a batch committed that added work
 * for the acting half -- a job, an outgoing mail (mr_store_work_added()):
 * the scheduler and the outbox of the same process look at once, without
 * waiting for their watcher of the database. */
typedef void (*MrWriterWorkAdded)(gpointer data);

/* Calls @func with @data after each batch that added work, until
 * mr_writer_unwatch_work().  On the writer's context.  Returns the
 * watch's id. */
guint mr_writer_watch_work(MrWriter *writer, MrWriterWorkAdded func, gpointer data);

/* Ends watch @id: its function is not called again (on the writer's
 * context). */
void mr_writer_unwatch_work(MrWriter *writer, guint id);

/* Returns the number of messages and units submitted and not yet
 * reported. */
guint mr_writer_pending(MrWriter *writer);

/* Returns the number of messages committed so far. */
guint64 mr_writer_committed(MrWriter *writer);

/* Closes @writer for a stop whose time is up: the batch in hand (being
 * applied or committed) ends as usual; everything else submitted, queued
 * or later, is answered -- on its context, exactly once as always -- with
 * MR_STORE_ERROR_BUSY, without being parsed: nothing of it is stored.
 * Returns at once; idempotent. */
void mr_writer_close(MrWriter *writer);

/* Closes @writer (mr_writer_close()), waits for the batch in hand, stops
 * the threads and closes the store; so it takes at most one batch (its
 * apply, and the store's busy timeout for a lock), however deep the queue.
 * The results are dispatched to the context and run here: to have every
 * submitted message stored, iterate the context until
 * mr_writer_pending() is 0 before calling this.  NULL-safe. */
void mr_writer_free(MrWriter *writer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrWriter, mr_writer_free)

G_END_DECLS
