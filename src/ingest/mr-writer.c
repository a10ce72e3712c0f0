/* mr-writer.c - group commit: parse on a pool, store on one thread, many
 * messages per database transaction, answers after COMMIT.
 *
 * Ingest stage.  Owns the writer's store connection and threads.  A batch
 * is whatever is queued when the writer comes back from the previous
 * COMMIT (plus an optional short window), so under load every fsync
 * carries many messages and at rest a single message waits for nobody.
 *
 * A batch holds messages (parsed first on the pool) and units of work (a
 * function and its data, from any door or thread); each runs under a
 * savepoint of its own, and each is answered where its submitter asked:
 * on a GMainContext, or on the writer thread for a thread without one.
 *
 * Large messages (past limits.spool_threshold: the doors spooled them to a
 * file) are parsed on a lane of their own, one at a time, so that small
 * messages never queue behind them; and the bytes of large messages
 * between the start of their parse and the end of their batch are held
 * under limits.max_bytes_in_flight (one message always goes), so that
 * many of them arriving at once do not all sit in memory together.
 *
 * A stop is bounded: once closed (mr_writer_close(), mr_writer_free()),
 * the writer ends the batch in hand, and answers everything else, queued
 * or submitted later, with a temporary error without parsing it. */
#define G_LOG_DOMAIN "mailroom-writer"

#include <string.h>

#include "mailroom/mr-crm.h"
#include "mailroom/mr-crm-workflow.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-rule.h"
#include "mailroom/mr-writer.h"

struct _MrWriter {
	GMainContext *context;
	MrConfig *cfg;          /* the store was opened with it */
	MrStore *store;         /* the writer thread's alone once started */
	GThreadPool *parse_pool;
	GThreadPool *large_pool; /* one thread: messages past the spool threshold */
	GMutex budget_lock;
	GCond budget_cond;
	guint64 in_flight;      /* bytes of large messages parsed or applied now */
	GAsyncQueue *queue;     /* WriterJob*, parsed */
	GThread *thread;
	gint pending;           /* submitted, not yet reported (atomic) */
	gsize committed;        /* messages committed (atomic) */
	gint closing;           /* mr_writer_close() was called (atomic) */
	GMutex rules_lock;
	MrRuleSet *rules;       /* the rules as the last batch read them; the
				   parse pool scans with them (under the lock) */
	MrWorkflowHook *workflows; /* the store's event hook: the workflows as
				   the last batch read them (writer thread) */
	/* Who is told that a batch added work (mr_writer_watch_work()):
	 * touched on the writer's context alone. */
	GArray *work_watchers;  /* WorkWatcher */
	guint next_watch;
	gint work_posted;       /* a notice waits on the context (atomic) */
};

typedef struct {
	guint id;
	MrWriterWorkAdded func;
	gpointer data;
} WorkWatcher;

typedef struct {
	MrWriter *writer;
	MrConfig *cfg;
	/* a unit of work (NULL for a message) */
	MrWriterWork work;
	gpointer work_data;
	GDestroyNotify work_free;
	MrWriterWorkDone work_done;
	GError *work_error;
	GMainContext *context;  /* where to answer; NULL: the writer thread */
	/* a message */
	char *envelope_from;
	GPtrArray *recipients;  /* char* */
	GBytes *raw;
	MrIngestItem *item;
	guint64 large;          /* its bytes, counted in in_flight; 0: small */
	MrWriterResult *results;
	MrWriterDone done;
	gpointer user_data;
	gboolean stop;          /* the sentinel that ends the writer thread */
} WriterJob;

/* On the writer's context: tells the watchers that work was added. */
static gboolean
work_added_dispatch(gpointer data)
{
	MrWriter *writer = data;
	g_autoptr(GArray) now = NULL;

	g_atomic_int_set(&writer->work_posted, 0);
	/* a watcher may stop watching in its call: call those of now */
	now = g_array_copy(writer->work_watchers);
	for (guint i = 0; i < now->len; i++) {
		const WorkWatcher *w = &g_array_index(now, WorkWatcher, i);
		gboolean still = FALSE;

		for (guint k = 0; k < writer->work_watchers->len && !still; k++)
			still = g_array_index(writer->work_watchers, WorkWatcher, k).id == w->id;
		if (still)
			w->func(w->data);
	}
	g_atomic_int_dec_and_test(&writer->pending);
	return G_SOURCE_REMOVE;
}

/* From the writer thread, after a commit that added work: one notice at a
 * time waits on the context (counted as pending, so that
 * mr_writer_free() lets it run first). */
static void
post_work_added(MrWriter *writer)
{
	if (!g_atomic_int_compare_and_exchange(&writer->work_posted, 0, 1))
		return;
	g_atomic_int_inc(&writer->pending);
	g_main_context_invoke(writer->context, work_added_dispatch, writer);
}

guint
mr_writer_watch_work(MrWriter *writer, MrWriterWorkAdded func, gpointer data)
{
	WorkWatcher w = { ++writer->next_watch, func, data };

	g_array_append_val(writer->work_watchers, w);
	return w.id;
}

void
mr_writer_unwatch_work(MrWriter *writer, guint id)
{
	for (guint i = 0; i < writer->work_watchers->len; i++)
		if (g_array_index(writer->work_watchers, WorkWatcher, i).id == id) {
			g_array_remove_index(writer->work_watchers, i);
			return;
		}
}

/* Gives the bytes of a large @job back to the budget, once. */
static void
job_release(WriterJob *job)
{
	MrWriter *writer = job->writer;

	g_clear_pointer(&job->item, mr_ingest_item_free);
	g_clear_pointer(&job->raw, g_bytes_unref);
	if (job->large == 0)
		return;
	g_mutex_lock(&writer->budget_lock);
	writer->in_flight -= job->large;
	g_cond_broadcast(&writer->budget_cond);
	g_mutex_unlock(&writer->budget_lock);
	job->large = 0;
}

static void
job_free(WriterJob *job)
{
	if (job == NULL)
		return;
	if (job->writer != NULL)
		job_release(job);
	for (guint i = 0; job->results != NULL && i < job->recipients->len; i++)
		g_clear_error(&job->results[i].error);
	g_free(job->results);
	if (job->work_free != NULL)
		job->work_free(job->work_data);
	g_clear_error(&job->work_error);
	g_clear_pointer(&job->context, g_main_context_unref);
	g_clear_pointer(&job->recipients, g_ptr_array_unref);
	g_free(job->envelope_from);
	g_clear_pointer(&job->raw, g_bytes_unref);
	g_clear_pointer(&job->item, mr_ingest_item_free);
	g_clear_pointer(&job->cfg, mr_config_unref);
	g_free(job);
}

/* Reports @job to its submitter and forgets it. */
static void
job_report(WriterJob *job)
{
	MrWriter *writer = job->writer;

	if (job->work != NULL)
		job->work_done(job->work_data, job->work_error, job->user_data);
	else
		job->done(job->results, job->recipients->len, job->user_data);
	job_free(job);
	g_atomic_int_dec_and_test(&writer->pending);
}

/* On a submitter's context: report and forget the jobs of a committed
 * batch (one wake-up of that loop per batch, not per message). */
static gboolean
batch_dispatch(gpointer data)
{
	GPtrArray *batch = data;

	for (guint b = 0; b < batch->len; b++)
		job_report(g_ptr_array_index(batch, b));
	g_ptr_array_unref(batch);
	return G_SOURCE_REMOVE;
}

/* On the writer thread, after the batch: each job to where its
 * submitter asked, one invocation per context. */
static void
batch_report(GPtrArray *batch)
{
	g_autoptr(GHashTable) by_context = g_hash_table_new(NULL, NULL);
	GHashTableIter it;
	gpointer key, value;

	for (guint b = 0; b < batch->len; b++) {
		WriterJob *job = g_ptr_array_index(batch, b);
		GPtrArray *group;

		if (job->context == NULL) {
			job_report(job); /* a thread without a loop: answered here */
			continue;
		}
		group = g_hash_table_lookup(by_context, job->context);
		if (group == NULL) {
			group = g_ptr_array_new();
			g_hash_table_insert(by_context, job->context, group);
		}
		g_ptr_array_add(group, job);
	}
	g_hash_table_iter_init(&it, by_context);
	while (g_hash_table_iter_next(&it, &key, &value))
		g_main_context_invoke_full(key, G_PRIORITY_DEFAULT, batch_dispatch, value, NULL);
	g_ptr_array_unref(batch);
}

/* Parse pool: bytes to an item, then on to the writer.  A closed writer
 * refuses the job unparsed (writer_thread()). */
static void
parse_job(gpointer data, gpointer user_data)
{
	WriterJob *job = data;

	MrWriter *writer = job->writer;

	if (!g_atomic_int_get(&writer->closing)) {
		g_autoptr(MrRuleSet) rules = NULL;

		job->item = mr_ingest_item_new(job->cfg, job->raw);
		g_mutex_lock(&writer->rules_lock);
		rules = mr_rule_set_ref(writer->rules);
		g_mutex_unlock(&writer->rules_lock);
		mr_ingest_item_scan(job->cfg, job->item, rules, FALSE);
	}
	g_async_queue_push(writer->queue, job);
}

/* The large lane: waits until the message fits in the budget (or nothing
 * else is in flight, or the writer is closed), then parses it. */
static void
parse_large_job(gpointer data, gpointer user_data)
{
	WriterJob *job = data;
	MrWriter *writer = job->writer;
	guint64 budget = (guint64)job->cfg->limits.max_bytes_in_flight;

	g_mutex_lock(&writer->budget_lock);
	while (!g_atomic_int_get(&writer->closing) && writer->in_flight > 0 &&
	       writer->in_flight + job->large > budget)
		g_cond_wait(&writer->budget_cond, &writer->budget_lock);
	writer->in_flight += job->large;
	g_mutex_unlock(&writer->budget_lock);
	parse_job(job, user_data);
}

/* Fails every result of @batch that has none yet with @error. */
static void
batch_fail(GPtrArray *batch, const GError *error)
{
	for (guint b = 0; b < batch->len; b++) {
		WriterJob *job = g_ptr_array_index(batch, b);

		if (job->work != NULL) {
			if (job->work_error == NULL)
				job->work_error = g_error_copy(error);
			continue;
		}
		for (guint i = 0; i < job->recipients->len; i++)
			if (job->results[i].error == NULL)
				job->results[i].error = g_error_copy(error);
	}
}

/* Answers every job of @batch with a temporary error: the writer is
 * closed, nothing of them is stored (the messages may not even be parsed). */
static void
batch_refuse(GPtrArray *batch)
{
	g_autoptr(GError) error = g_error_new(MR_STORE_ERROR, MR_STORE_ERROR_BUSY,
					      "the writer is stopping: not stored");

	batch_fail(batch, error);
}

/* Forgets the results of @job: it is applied again. */
static void
job_reset(WriterJob *job)
{
	g_clear_error(&job->work_error);
	for (guint i = 0; job->work == NULL && i < job->recipients->len; i++) {
		g_clear_error(&job->results[i].error);
		memset(&job->results[i].delivery, 0, sizeof job->results[i].delivery);
	}
}

/* Runs a unit of work under a savepoint of its own.  Returns TRUE when
 * it succeeded; else its error is kept and its work undone. */
static gboolean
unit_apply(MrWriter *writer, WriterJob *job)
{
	if (!mr_store_savepoint(writer->store, &job->work_error))
		return FALSE;
	if (!job->work(writer->store, job->cfg, job->work_data, &job->work_error)) {
		if (job->work_error == NULL)
			job->work_error = g_error_new(MR_STORE_ERROR, MR_STORE_ERROR_FAILED,
						      "a unit of work failed without saying why");
		mr_store_rollback_to(writer->store);
		return FALSE;
	}
	if (!mr_store_check(writer->store, &job->work_error) ||
	    !mr_store_release(writer->store, &job->work_error)) {
		mr_store_rollback_to(writer->store);
		return FALSE;
	}
	return TRUE;
}

/* Reads the change counter of the rules in the open transaction, and the
 * rules again when it moved: a change made with mailroomctl (by any
 * daemon's host) applies from the next batch on.  Returns FALSE with
 * @error when the database failed. */
static gboolean
rules_check(MrWriter *writer, GError **error)
{
	gint64 version = mr_store_rules_version(writer->store, error);
	MrRuleSet *set, *old;

	if (version < 0)
		return FALSE;
	/* the workflows and calendars of the same counter */
	if (!mr_workflow_hook_refresh(writer->workflows, version, error))
		return FALSE;
	if (version == mr_rule_set_version(writer->rules))
		return TRUE;
	set = mr_crm_rules_load(writer->store, error);
	if (set == NULL)
		return FALSE;
	g_debug("rules changed (counter %" G_GINT64_FORMAT "): %u enabled", version,
		mr_rule_set_enabled(set));
	g_mutex_lock(&writer->rules_lock);
	old = writer->rules;
	writer->rules = set;
	g_mutex_unlock(&writer->rules_lock);
	mr_rule_set_unref(old);
	return TRUE;
}

/* Applies the jobs of @batch not marked in @lost, in the open transaction.
 * A message's savepoint is released without waiting for the server
 * (mr_ingest_apply_later): its result may still turn into a failure, set
 * in its error when the next message, a unit of work or the commit learns
 * of it.  Returns: the index of the job during which the database ended
 * the transaction on its own (everything applied is gone then), or -1. */
static gint
batch_apply_jobs(MrWriter *writer, GPtrArray *batch, const gboolean *lost)
{
	for (guint b = 0; b < batch->len; b++) {
		WriterJob *job = g_ptr_array_index(batch, b);

		if (lost[b])
			continue;
		mr_store_set_config(writer->store, job->cfg);
		if (job->work != NULL) {
			mr_store_settle(writer->store); /* the unit starts from a known state */
			if (!unit_apply(writer, job) && !mr_store_in_transaction(writer->store))
				return (gint)b;
			continue;
		}
		/* scanned with rules older than the batch's: again, here */
		if (job->item != NULL &&
		    (job->item->scan == NULL || mr_rule_scan_set(job->item->scan) != writer->rules))
			mr_ingest_item_scan(job->cfg, job->item, writer->rules, FALSE);
		for (guint i = 0; i < job->recipients->len; i++) {
			MrWriterResult *r = &job->results[i];

			if (!mr_ingest_apply_later(job->cfg, writer->store, job->item, r->recipient,
						   job->envelope_from, &r->delivery, &r->error,
						   &r->error) &&
			    !mr_store_in_transaction(writer->store))
				return (gint)b;
		}
	}
	return -1;
}

/* Returns: how many messages of @batch have a recipient stored. */
static gsize
batch_stored(GPtrArray *batch)
{
	gsize stored = 0;

	for (guint b = 0; b < batch->len; b++) {
		WriterJob *job = g_ptr_array_index(batch, b);

		for (guint i = 0; job->work == NULL && i < job->recipients->len; i++) {
			if (job->results[i].error == NULL) {
				stored++;
				break;
			}
		}
	}
	return stored;
}

/* Returns: (nullable): the error of @job, the first of its recipients'. */
static const GError *
job_error(WriterJob *job)
{
	for (guint i = 0; job->work == NULL && i < job->recipients->len; i++)
		if (job->results[i].error != NULL)
			return job->results[i].error;
	return job->work_error;
}

/* Stores @batch in one transaction and sets every result.  When the
 * database rolls the transaction back on its own in the middle (a full
 * disk: SQLITE_FULL), what was applied is gone: the message that hit the
 * error fails, and the rest of the batch is applied again, as a whole, in
 * a new transaction -- never statement by statement in autocommit mode,
 * which would store messages that are then answered 451.  When it ended
 * busy (a PostgreSQL connection lost, or dropped after
 * store.query_timeout; its lock not had at BEGIN), the cause is not the
 * message's, and would cost each message of the batch its wait again:
 * the whole batch fails at once, and the next one starts afresh. */
static void
batch_apply(MrWriter *writer, GPtrArray *batch)
{
	g_autoptr(GError) error = NULL;
	g_autofree gboolean *lost = g_new0(gboolean, batch->len);
	gint64 t0 = g_get_monotonic_time(), t1;
	gint culprit;
	guint left = batch->len;

	for (;;) {
		if (left == 0)
			return; /* every job failed with the transaction that ended */
		if (left < batch->len && g_atomic_int_get(&writer->closing)) {
			/* A stop is bounded: no new attempt (each may wait for a
			 * lock again); the rest fails, unstored. */
			batch_refuse(batch);
			return;
		}
		if (!mr_store_begin(writer->store, &error)) {
			batch_fail(batch, error);
			return;
		}
		/* The first statement of the transaction: on PostgreSQL it
		 * is where a BEGIN that had no answer shows. */
		if (!rules_check(writer, &error)) {
			g_warning("batch of %u: reading the rules' change counter: %s; failing "
				  "the batch", batch->len, error->message);
			mr_store_rollback(writer->store);
			batch_fail(batch, error);
			return;
		}
		culprit = batch_apply_jobs(writer, batch, lost);
		if (culprit < 0)
			break;
		{
			WriterJob *job = g_ptr_array_index(batch, (guint)culprit);
			g_autoptr(GError) gone = g_error_new(MR_STORE_ERROR, MR_STORE_ERROR_FAILED,
							     "the database rolled the transaction back");
			g_autoptr(GPtrArray) one = g_ptr_array_new();
			const GError *cause = job_error(job);

			if (g_error_matches(cause, MR_STORE_ERROR, MR_STORE_ERROR_BUSY)) {
				g_autoptr(GError) all = g_error_copy(cause);

				g_warning("batch of %u: the database ended the transaction at "
					  "message %d: %s; failing the batch",
					  batch->len, culprit + 1, all->message);
				batch_fail(batch, all);
				return;
			}
			g_warning("batch of %u: the database ended the transaction at message %d; "
				  "applying the others again", batch->len, culprit + 1);
			lost[culprit] = TRUE;
			left--;
			g_ptr_array_add(one, job);
			batch_fail(one, gone); /* keeps the error that ended it */
			for (guint b = 0; b < batch->len; b++)
				if (!lost[b])
					job_reset(g_ptr_array_index(batch, b));
		}
	}
	t1 = g_get_monotonic_time();
	if (!mr_store_commit(writer->store, &error)) {
		mr_store_rollback(writer->store);
		g_prefix_error(&error, "commit: ");
		/* Nothing of the batch is stored: successes are failures now. */
		batch_fail(batch, error);
		return;
	}
	g_atomic_pointer_add(&writer->committed, batch_stored(batch));
	if (mr_store_work_added(writer->store))
		post_work_added(writer);
	g_debug("batch messages=%u apply_us=%" G_GINT64_FORMAT " commit_us=%" G_GINT64_FORMAT,
		batch->len, t1 - t0, g_get_monotonic_time() - t1);
}

static gpointer
writer_thread(gpointer data)
{
	MrWriter *writer = data;
	gboolean stop = FALSE;

	while (!stop) {
		GPtrArray *batch = g_ptr_array_new();
		WriterJob *job = g_async_queue_pop(writer->queue);
		const MrConfig *cfg = job->cfg;
		gint64 window = cfg != NULL ? cfg->store.batch_window_ms * G_TIME_SPAN_MILLISECOND : 0;
		guint max = cfg != NULL ? (guint)cfg->store.batch_max : 1;

		while (job != NULL) {
			if (job->stop) {
				stop = TRUE;
				job_free(job);
				break;
			}
			g_ptr_array_add(batch, job);
			if (batch->len >= max)
				break;
			job = window > 0 ? g_async_queue_timeout_pop(writer->queue, (guint64)window)
					 : g_async_queue_try_pop(writer->queue);
		}
		if (batch->len == 0) {
			g_ptr_array_unref(batch);
			continue;
		}
		/* Every job popped after mr_writer_close() -- among them all that
		 * it left unparsed -- is in a batch that sees it closed here. */
		if (g_atomic_int_get(&writer->closing))
			batch_refuse(batch);
		else
			batch_apply(writer, batch);
		/* The bytes and the parse are not needed for the answers. */
		for (guint b = 0; b < batch->len; b++)
			job_release(g_ptr_array_index(batch, b));
		batch_report(batch);
	}
	return NULL;
}

MrWriter *
mr_writer_new(MrConfig *cfg, GMainContext *context, guint parse_threads, GError **error)
{
	g_autoptr(MrWriter) writer = g_new0(MrWriter, 1);

	g_return_val_if_fail(cfg != NULL && context != NULL, NULL);

	g_mutex_init(&writer->budget_lock);
	g_cond_init(&writer->budget_cond);
	writer->context = g_main_context_ref(context);
	writer->work_watchers = g_array_new(FALSE, FALSE, sizeof(WorkWatcher));
	writer->cfg = mr_config_ref(cfg);
	writer->queue = g_async_queue_new();
	g_mutex_init(&writer->rules_lock);
	writer->store = mr_store_open(cfg, error);
	if (writer->store == NULL)
		return NULL;
	writer->rules = mr_crm_rules_load(writer->store, error);
	if (writer->rules == NULL)
		return NULL;
	writer->workflows = mr_workflow_hook_attach(writer->store, cfg);
	writer->parse_pool = g_thread_pool_new(parse_job, NULL, (gint)MAX(parse_threads, 1), FALSE,
					       error);
	if (writer->parse_pool == NULL)
		return NULL;
	writer->large_pool = g_thread_pool_new(parse_large_job, NULL, 1, FALSE, error);
	if (writer->large_pool == NULL)
		return NULL;
	writer->thread = g_thread_new("mr-writer", writer_thread, writer);
	return g_steal_pointer(&writer);
}

void
mr_writer_submit(MrWriter *writer, MrConfig *cfg, GBytes *raw, const char *envelope_from,
		 GPtrArray *recipients, MrWriterDone done, gpointer user_data)
{
	mr_writer_submit_full(writer, cfg, raw, envelope_from, recipients, writer->context, done,
			      user_data);
}

void
mr_writer_submit_full(MrWriter *writer, MrConfig *cfg, GBytes *raw, const char *envelope_from,
		      GPtrArray *recipients, GMainContext *context, MrWriterDone done,
		      gpointer user_data)
{
	WriterJob *job = g_new0(WriterJob, 1);

	g_return_if_fail(writer != NULL && raw != NULL && recipients != NULL && done != NULL);

	job->writer = writer;
	job->cfg = mr_config_ref(cfg);
	job->raw = g_bytes_ref(raw);
	job->envelope_from = g_strdup(envelope_from);
	job->recipients = g_ptr_array_new_full(recipients->len, g_free);
	job->results = g_new0(MrWriterResult, recipients->len);
	for (guint i = 0; i < recipients->len; i++) {
		g_ptr_array_add(job->recipients, g_strdup(g_ptr_array_index(recipients, i)));
		job->results[i].recipient = g_ptr_array_index(job->recipients, i);
	}
	job->done = done;
	job->user_data = user_data;
	job->context = context != NULL ? g_main_context_ref(context) : NULL;
	g_atomic_int_inc(&writer->pending);
	if (g_bytes_get_size(raw) > (gsize)cfg->limits.spool_threshold) {
		job->large = MAX(g_bytes_get_size(raw), 1);
		g_thread_pool_push(writer->large_pool, job, NULL);
	} else {
		g_thread_pool_push(writer->parse_pool, job, NULL);
	}
}

void
mr_writer_run(MrWriter *writer, MrConfig *cfg, MrWriterWork work, gpointer data,
	      GDestroyNotify free_data, GMainContext *context, MrWriterWorkDone done,
	      gpointer user_data)
{
	WriterJob *job = g_new0(WriterJob, 1);

	g_return_if_fail(writer != NULL && cfg != NULL && work != NULL && done != NULL);

	job->writer = writer;
	job->cfg = mr_config_ref(cfg);
	job->work = work;
	job->work_data = data;
	job->work_free = free_data;
	job->work_done = done;
	job->user_data = user_data;
	job->context = context != NULL ? g_main_context_ref(context) : NULL;
	g_atomic_int_inc(&writer->pending);
	g_async_queue_push(writer->queue, job);
}

typedef struct {
	GMutex lock;
	GCond cond;
	gboolean done;
	GError *error;
} SyncWait;

static void
sync_done(gpointer data, const GError *error, gpointer user_data)
{
	SyncWait *w = user_data;

	g_mutex_lock(&w->lock);
	if (error != NULL)
		w->error = g_error_copy(error);
	w->done = TRUE;
	g_cond_signal(&w->cond);
	g_mutex_unlock(&w->lock);
}

gboolean
mr_writer_run_sync(MrWriter *writer, MrConfig *cfg, MrWriterWork work, gpointer data,
		   GError **error)
{
	SyncWait w = { 0 };

	g_return_val_if_fail(writer != NULL && work != NULL, FALSE);
	g_return_val_if_fail(g_thread_self() != writer->thread, FALSE);

	g_mutex_init(&w.lock);
	g_cond_init(&w.cond);
	mr_writer_run(writer, cfg, work, data, NULL, NULL, sync_done, &w);
	g_mutex_lock(&w.lock);
	while (!w.done)
		g_cond_wait(&w.cond, &w.lock);
	g_mutex_unlock(&w.lock);
	g_mutex_clear(&w.lock);
	g_cond_clear(&w.cond);
	if (w.error != NULL) {
		g_propagate_error(error, w.error);
		return FALSE;
	}
	return TRUE;
}

guint
mr_writer_pending(MrWriter *writer)
{
	return (guint)g_atomic_int_get(&writer->pending);
}

guint64
mr_writer_committed(MrWriter *writer)
{
	return (guint64)(gsize)g_atomic_pointer_get(&writer->committed);
}

void
mr_writer_close(MrWriter *writer)
{
	g_return_if_fail(writer != NULL);

	if (g_atomic_int_get(&writer->closing))
		return;
	g_debug("closing: %u submitted and not yet answered get a temporary error",
		(guint)g_atomic_int_get(&writer->pending));
	/* Under the budget's lock: a large job waiting for the budget wakes
	 * and goes on, unparsed. */
	g_mutex_lock(&writer->budget_lock);
	g_atomic_int_set(&writer->closing, TRUE);
	g_cond_broadcast(&writer->budget_cond);
	g_mutex_unlock(&writer->budget_lock);
}

void
mr_writer_free(MrWriter *writer)
{
	if (writer == NULL)
		return;
	if (writer->thread != NULL) {
		WriterJob *stop = g_new0(WriterJob, 1);

		/* Bounded: the batch in hand, then answers without a store. */
		mr_writer_close(writer);
		/* Every parse lands in the queue before the sentinel; the
		 * large lane's budget is given back by the writer thread. */
		g_thread_pool_free(g_steal_pointer(&writer->parse_pool), FALSE, TRUE);
		g_thread_pool_free(g_steal_pointer(&writer->large_pool), FALSE, TRUE);
		stop->stop = TRUE;
		g_async_queue_push(writer->queue, stop);
		g_thread_join(g_steal_pointer(&writer->thread));
		while (g_atomic_int_get(&writer->pending) > 0)
			g_main_context_iteration(writer->context, TRUE);
	}
	if (writer->parse_pool != NULL)
		g_thread_pool_free(writer->parse_pool, TRUE, TRUE);
	if (writer->large_pool != NULL)
		g_thread_pool_free(writer->large_pool, TRUE, TRUE);
	g_mutex_clear(&writer->budget_lock);
	g_cond_clear(&writer->budget_cond);
	g_mutex_clear(&writer->rules_lock);
	g_clear_pointer(&writer->rules, mr_rule_set_unref);
	g_clear_pointer(&writer->workflows, mr_workflow_hook_free);
	g_clear_pointer(&writer->store, mr_store_close);
	g_clear_pointer(&writer->queue, g_async_queue_unref);
	g_clear_pointer(&writer->cfg, mr_config_unref);
	g_clear_pointer(&writer->context, g_main_context_unref);
	g_clear_pointer(&writer->work_watchers, g_array_unref);
	g_free(writer);
}
