/* test-writer.c - units of work through the group-commit writer: each is
 * answered on the context its submitter named (or waited for from a thread
 * without a loop), a failing unit is undone alone, and messages and units
 * share batches. */
#include <string.h>

#include <glib/gstdio.h>

#include "mailroom/mr-crm.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-writer.h"
#include "mr-test-util.h"

typedef struct {
	char *dir, *db;
	MrConfig *cfg;
	GMainContext *context;
	MrWriter *writer;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->dir = g_dir_make_tmp("mr-writer-XXXXXX", &error);
	g_assert_no_error(error);
	f->db = g_build_filename(f->dir, "mailroom.db", NULL);
	/* a window, so that what is submitted together commits together */
	f->cfg = mr_test_config_extra(f->db, "store = { synchronous = \"normal\"; batch_window = 50; };");
	f->context = g_main_context_new();
	f->writer = mr_writer_new(f->cfg, f->context, 1, &error);
	g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	const char *suffixes[] = { "", "-wal", "-shm" };

	/* not a blocking iteration: a unit without a context is reported on
	 * the writer thread, after its answer, and wakes no context */
	while (mr_writer_pending(f->writer) > 0)
		if (!g_main_context_iteration(f->context, FALSE))
			g_usleep(1000);
	mr_writer_free(f->writer);
	g_main_context_unref(f->context);
	mr_config_unref(f->cfg);
	for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *path = g_strconcat(f->db, suffixes[i], NULL);

		g_unlink(path);
	}
	g_rmdir(f->dir);
	g_free(f->db);
	g_free(f->dir);
}

/* A unit: adds the user named by @data; "fail@..." fails after adding. */
static gboolean
add_user(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	const char *email = data;

	if (mr_crm_user_add(store, email, NULL, error) == 0)
		return FALSE;
	if (g_str_has_prefix(email, "fail@")) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_INVALID, "refused %s", email);
		return FALSE;
	}
	return TRUE;
}

typedef struct {
	GThread *thread; /* where the answer came */
	GError *error;
	gboolean done;
} Answer;

static void
answered(gpointer data, const GError *error, gpointer user_data)
{
	Answer *a = user_data;

	a->thread = g_thread_self();
	a->error = error != NULL ? g_error_copy(error) : NULL;
	a->done = TRUE;
}

static gint64
count_users(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrStore) store = mr_store_open_existing(f->cfg, &error);
	g_autoptr(GPtrArray) users = NULL;

	g_assert_no_error(error);
	users = mr_store_users(store, 0, &error);
	g_assert_no_error(error);
	return users->len;
}

/* Three units in one batch, the middle one failing: it alone is undone,
 * every answer comes on the named context, after COMMIT. */
static void
test_units(Fixture *f, gconstpointer data)
{
	const char *emails[] = { "ann@acme.test", "fail@acme.test", "bea@acme.test" };
	Answer answers[3] = { 0 };

	for (guint i = 0; i < 3; i++)
		mr_writer_run(f->writer, f->cfg, add_user, (gpointer)emails[i], NULL, f->context,
			      answered, &answers[i]);
	while (!answers[0].done || !answers[1].done || !answers[2].done)
		g_main_context_iteration(f->context, TRUE);
	for (guint i = 0; i < 3; i++)
		g_assert_true(answers[i].thread == g_thread_self());
	g_assert_no_error(answers[0].error);
	g_assert_error(answers[1].error, MR_STORE_ERROR, MR_STORE_ERROR_INVALID);
	g_assert_no_error(answers[2].error);
	g_clear_error(&answers[1].error);
	g_assert_cmpint(count_users(f), ==, 2);
	g_assert_cmpint(mr_writer_pending(f->writer), ==, 0);
}

/* A thread without a loop waits for its unit's COMMIT. */
typedef struct {
	Fixture *f;
	const char *email;
	gboolean ok;
	GError *error;
} SyncCall;

static gpointer
sync_thread(gpointer data)
{
	SyncCall *c = data;

	c->ok = mr_writer_run_sync(c->f->writer, c->f->cfg, add_user, (gpointer)c->email,
				   &c->error);
	return NULL;
}

static void
test_sync(Fixture *f, gconstpointer data)
{
	SyncCall good = { f, "cid@acme.test", FALSE, NULL };
	SyncCall bad = { f, "fail@acme.test", TRUE, NULL };
	GThread *t1 = g_thread_new("sync-1", sync_thread, &good);
	GThread *t2 = g_thread_new("sync-2", sync_thread, &bad);

	g_thread_join(t1);
	g_thread_join(t2);
	g_assert_true(good.ok);
	g_assert_no_error(good.error);
	g_assert_false(bad.ok);
	g_assert_error(bad.error, MR_STORE_ERROR, MR_STORE_ERROR_INVALID);
	g_clear_error(&bad.error);
	/* durable: another connection sees it at once */
	g_assert_cmpint(count_users(f), ==, 1);
}

/* A unit answered on the writer thread (no context), and its data freed
 * after the answer. */
static void
free_flag(gpointer data)
{
	*(gboolean *)data = TRUE;
}

static gboolean
noop(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	return TRUE;
}

static void
test_no_context(Fixture *f, gconstpointer data)
{
	gboolean freed = FALSE;
	Answer a = { 0 };

	mr_writer_run(f->writer, f->cfg, noop, &freed, free_flag, NULL, answered, &a);
	while (mr_writer_pending(f->writer) > 0)
		g_usleep(1000);
	g_assert_true(a.done);
	g_assert_no_error(a.error);
	g_assert_true(a.thread != g_thread_self());
	g_assert_true(freed);
}

/* Messages and units in the same batches. */
typedef struct {
	guint n;
	guint ok;
} MessageCount;

static void
message_done(const MrWriterResult *results, guint n, gpointer user_data)
{
	MessageCount *c = user_data;

	c->n++;
	c->ok += results[0].error == NULL;
}

static void
test_mixed(Fixture *f, gconstpointer data)
{
	MessageCount mc = { 0 };
	Answer answers[10] = { 0 };
	char emails[10][32];
	g_autoptr(GPtrArray) rcpts = g_ptr_array_new();

	g_ptr_array_add(rcpts, (gpointer) "crm@acme.test");
	for (guint i = 0; i < 10; i++) {
		g_autofree char *text = g_strdup_printf(
			"From: c%u@customer.test\r\nTo: x@customer.test\r\nSubject: m%u\r\n\r\nHi.\r\n", i, i);
		g_autoptr(GBytes) raw = g_bytes_new(text, strlen(text));

		g_snprintf(emails[i], sizeof emails[i], "u%u@acme.test", i);
		mr_writer_submit(f->writer, f->cfg, raw, NULL, rcpts, message_done, &mc);
		mr_writer_run(f->writer, f->cfg, add_user, emails[i], NULL, f->context, answered,
			      &answers[i]);
	}
	while (mr_writer_pending(f->writer) > 0)
		g_main_context_iteration(f->context, TRUE);
	g_assert_cmpuint(mc.n, ==, 10);
	g_assert_cmpuint(mc.ok, ==, 10);
	for (guint i = 0; i < 10; i++) {
		g_assert_true(answers[i].done);
		g_assert_no_error(answers[i].error);
	}
	g_assert_cmpint(count_users(f), ==, 10);
	g_assert_cmpuint(mr_writer_committed(f->writer), ==, 10);
}

/* A unit that holds the writer in its batch until released. */
typedef struct {
	GMutex lock;
	GCond cond;
	gboolean started, released;
} Gate;

static gboolean
gate_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	Gate *g = data;

	g_mutex_lock(&g->lock);
	g->started = TRUE;
	g_cond_broadcast(&g->cond);
	while (!g->released)
		g_cond_wait(&g->cond, &g->lock);
	g_mutex_unlock(&g->lock);
	return mr_crm_user_add(store, "gate@acme.test", NULL, error) != 0;
}

/* mr_writer_close(): the batch in hand commits; what is queued behind it,
 * small and large (past the spool threshold), messages and units, and
 * what comes after, is answered MR_STORE_ERROR_BUSY and not stored. */
static void
test_close(Fixture *f, gconstpointer data)
{
	Gate gate = { 0 };
	Answer first = { 0 }, queued = { 0 }, later = { 0 };
	MessageCount mc = { 0 };
	g_autoptr(GPtrArray) rcpts = g_ptr_array_new();
	g_autoptr(GString) big = g_string_new("From: big@customer.test\r\nSubject: big\r\n\r\n");

	g_mutex_init(&gate.lock);
	g_cond_init(&gate.cond);
	g_ptr_array_add(rcpts, (gpointer) "crm@acme.test");
	while (big->len <= (gsize)f->cfg->limits.spool_threshold)
		g_string_append(big, "0123456789012345678901234567890123456789012345678901234567890123456789\r\n");
	mr_writer_run(f->writer, f->cfg, gate_work, &gate, NULL, f->context, answered, &first);
	g_mutex_lock(&gate.lock);
	while (!gate.started)
		g_cond_wait(&gate.cond, &gate.lock);
	g_mutex_unlock(&gate.lock);
	for (guint i = 0; i < 5; i++) {
		g_autofree char *text = g_strdup_printf(
			"From: c%u@customer.test\r\nSubject: q%u\r\n\r\nHi.\r\n", i, i);
		g_autoptr(GBytes) raw = g_bytes_new(text, strlen(text));

		mr_writer_submit(f->writer, f->cfg, raw, NULL, rcpts, message_done, &mc);
	}
	{
		g_autoptr(GBytes) raw = g_bytes_new(big->str, big->len);

		mr_writer_submit(f->writer, f->cfg, raw, NULL, rcpts, message_done, &mc);
	}
	mr_writer_run(f->writer, f->cfg, add_user, (gpointer) "queued@acme.test", NULL, f->context,
		      answered, &queued);
	mr_writer_close(f->writer);
	mr_writer_close(f->writer); /* idempotent */
	mr_writer_run(f->writer, f->cfg, add_user, (gpointer) "later@acme.test", NULL, f->context,
		      answered, &later);
	g_mutex_lock(&gate.lock);
	gate.released = TRUE;
	g_cond_broadcast(&gate.cond);
	g_mutex_unlock(&gate.lock);
	while (mr_writer_pending(f->writer) > 0)
		g_main_context_iteration(f->context, TRUE);
	g_assert_no_error(first.error);
	g_assert_cmpuint(mc.n, ==, 6);
	g_assert_cmpuint(mc.ok, ==, 0);
	g_assert_error(queued.error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY);
	g_assert_error(later.error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY);
	g_clear_error(&queued.error);
	g_clear_error(&later.error);
	g_assert_cmpint(count_users(f), ==, 1); /* the gate's */
	g_assert_cmpuint(mr_writer_committed(f->writer), ==, 0);
	g_mutex_clear(&gate.lock);
	g_cond_clear(&gate.cond);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD("/mailroom/ingest/writer/units", test_units);
	ADD("/mailroom/ingest/writer/sync", test_sync);
	ADD("/mailroom/ingest/writer/no-context", test_no_context);
	ADD("/mailroom/ingest/writer/mixed", test_mixed);
	ADD("/mailroom/ingest/writer/close", test_close);
	return g_test_run();
}
