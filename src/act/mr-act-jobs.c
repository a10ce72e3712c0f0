/* mr-act-jobs.c - the scheduler: runs the jobs that fall due
 * (mr_scheduler_service, see mr-act.h).
 *
 * Act stage, on the main loop.  A batch goes through three steps:
 *   1. a unit of the writer claims what is due (the lease commits with
 *      it: a daemon that dies leaves its jobs to another after
 *      MR_ACT_LEASE_S) and reads what each job's mail needs;
 *   2. a thread of GLib's pool composes the mails, beside the writer;
 *   3. another unit writes them and ends every job of the claim in one
 *      statement; the work and the jobs' end commit together.
 * While one batch is composed or written the next is claimed: at most
 * MAX_BATCHES in flight.  A job whose mail cannot be made is due again
 * after a backoff (failed after MR_JOB_MAX_ATTEMPTS), ended in step 3;
 * when step 3 itself fails, it is undone and each job of the batch runs
 * in a unit of its own, where a failure is its own.  It goes on until
 * nothing is due, and sets the timer to the next due job. */
#define G_LOG_DOMAIN "mailroom-scheduler"

#include <gio/gio.h>

#include "mailroom/mr-act.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-outgoing.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-rule.h"
#include "mailroom/mr-store-workflow.h"
#include "mr-act-private.h"

/* Jobs claimed per batch: a batch's write waits in the writer's queue
 * with the doors' units, and the outbox's claims wait behind it, so a
 * batch stays short. */
#define JOBS_PER_CLAIM 50
/* Batches claimed and not yet written: one composed while another is
 * written. */
#define MAX_BATCHES 2
/* The first retry of a failed job, seconds; doubles with each attempt. */
#define JOB_RETRY_S 60

typedef struct {
	MrConfig *cfg;
	MrWriter *writer;
	GMainContext *main; /* where the writer's units end */
	MrWake *wake;
	gboolean claiming; /* a claim in flight */
	gboolean again;    /* woken meanwhile: claim once more after */
	gboolean draining;
	gboolean stopped;  /* stop came: what is still in flight does nothing more */
	guint watch;       /* mr_writer_watch_work(): jobs added in this process */
	guint batches;     /* claimed, not yet written */
	guint running;     /* jobs run on their own, in flight */
	guint64 done, failed;
	MrWorkflowSet *workflows; /* (nullable) as the last claim read them;
				     touched by the writer's thread alone */
} MrScheduler;

/* Each unit in flight holds a reference: a stop whose drain ran out of
 * time leaves them to end on their own. */
static MrScheduler *
scheduler_ref(MrScheduler *s)
{
	return g_atomic_rc_box_acquire(s);
}

static void
scheduler_clear(MrScheduler *s)
{
	mr_wake_free(s->wake);
	mr_workflow_set_unref(s->workflows);
	mr_config_unref(s->cfg);
	g_main_context_unref(s->main);
}

static void
scheduler_unref(MrScheduler *s)
{
	g_atomic_rc_box_release_full(s, (GDestroyNotify)scheduler_clear);
}

static void scheduler_tick(MrScheduler *s);

/* The backoff before attempt @attempts + 1 of a job, from @now; NULL
 * when it has had its last. */
static char *
job_retry_due(const MrJobClaimed *job, const char *now)
{
	if (job->attempts >= MR_JOB_MAX_ATTEMPTS)
		return NULL;
	return mr_act_iso_add(now, (gint64)JOB_RETRY_S << MIN(job->attempts - 1, 16));
}

/* --- a batch: claimed, composed, written ---------------------------------------- */

typedef struct {
	MrJobClaimed *job;
	MrFiring *firing;       /* (nullable): a workflow's firing; none when
				   it failed */
	gboolean ended;         /* its job ended in the claim (postponed,
				   cancelled, its conditions false) */
	char *error;            /* (nullable): why it failed */
} Item;

typedef struct {
	MrScheduler *s;
	char *claim;
	GArray *items;  /* Item, in the jobs' order */
	char *next_due; /* nothing claimed: when the next job falls due */
} Batch;

static void
item_clear(gpointer p)
{
	Item *it = p;

	mr_job_claimed_free(it->job);
	mr_firing_free(it->firing);
	g_free(it->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Item, item_clear)

static void
batch_free(gpointer p)
{
	Batch *b = p;

	scheduler_unref(b->s);
	g_free(b->claim);
	g_clear_pointer(&b->items, g_array_unref);
	g_free(b->next_due);
	g_free(b);
}

static void
item_fail(Item *it, const GError *error)
{
	g_clear_pointer(&it->firing, mr_firing_free);
	g_free(it->error);
	it->error = g_strdup(error->message);
}

/* The workflows of the change counter of now, read again when it moved
 * (in a unit of the writer: only the writer's thread touches them). */
static const MrWorkflowSet *
scheduler_workflows(MrScheduler *s, MrStore *store, const MrConfig *cfg, GError **error)
{
	gint64 version = mr_store_rules_version(store, error);
	MrWorkflowSet *set;

	if (version < 0)
		return NULL;
	if (s->workflows != NULL && mr_workflow_set_version(s->workflows) == version)
		return s->workflows;
	set = mr_crm_workflows_load(store, cfg, error);
	if (set == NULL)
		return NULL;
	mr_workflow_set_unref(s->workflows);
	s->workflows = set;
	return set;
}

/* Step 1 of job @it: what it does, or its end here.  FALSE with @error
 * when the database failed. */
/* Whether @job is a workflow's firing (its timer, or the acknowledgement
 * through the workflow ticket-ack). */
static gboolean
job_fires(const MrJobClaimed *job)
{
	return g_strcmp0(job->kind, MR_JOB_WORKFLOW) == 0 ||
	       g_strcmp0(job->kind, MR_JOB_TICKET_ACK) == 0;
}

/* Step 1 of job @it (a firing's record read already when @fetched:
 * @fields, transfer full). */
static gboolean
item_prepare(MrStore *store, const MrConfig *cfg, const MrWorkflowSet *set, const char *claim,
	     const char *now, Item *it, gboolean fetched, MrRecordFields *fields, GError **error)
{
	g_autoptr(GError) local = NULL;

	if (!job_fires(it->job)) {
		/* a kind this mailroomd does not know (a newer one's): tried
		 * again, then failed */
		g_set_error(&local, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
			    "no such kind of job: %s", it->job->kind);
		item_fail(it, local);
		return TRUE;
	}
	switch (mr_act_fire_prepare(store, cfg, set, it->job, claim, now, fetched, fields,
				    &it->firing, &local)) {
	case MR_FIRE_GO:
		return TRUE;
	case MR_FIRE_ENDED:
		it->ended = TRUE;
		return TRUE;
	case MR_FIRE_FAILED:
		item_fail(it, local);
		return TRUE;
	case MR_FIRE_ERROR:
		break;
	}
	g_propagate_error(error, g_steal_pointer(&local));
	return FALSE;
}

/* Step 1: the claim, and what each job's mail needs. */
static gboolean
claim_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	Batch *b = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autofree char *lease = mr_act_iso_add(now, MR_ACT_LEASE_S);
	g_autoptr(GPtrArray) jobs =
		mr_store_jobs_claim(store, now, lease, b->claim, JOBS_PER_CLAIM, error);
	g_autofree MrRecordRef *refs = NULL;
	g_autofree MrRecordFields **fields = NULL;
	const MrWorkflowSet *set;
	guint n = 0;

	/* a unit may run again (mr-writer.h): nothing of a run before */
	g_array_set_size(b->items, 0);
	g_clear_pointer(&b->next_due, g_free);
	if (jobs == NULL)
		return FALSE;
	if (jobs->len == 0) {
		b->next_due = mr_store_jobs_next_due(store);
		return mr_store_check(store, error);
	}
	set = scheduler_workflows(b->s, store, cfg, error);
	if (set == NULL)
		return FALSE;
	/* the records of the firings, read together (a look-up per 50) */
	refs = g_new0(MrRecordRef, jobs->len);
	fields = g_new0(MrRecordFields *, jobs->len);
	for (guint i = 0; i < jobs->len; i++) {
		const MrJobClaimed *job = g_ptr_array_index(jobs, i);

		if (job_fires(job) && job->record.kind != MR_RECORD_NONE)
			refs[n++] = job->record;
	}
	if (n > 0 && !mr_store_records_fields(store, refs, n, now, fields, error))
		return FALSE;
	n = 0;
	g_array_set_size(b->items, jobs->len);
	for (guint i = 0; i < jobs->len; i++) {
		Item *it = &g_array_index(b->items, Item, i);
		gboolean fetched;

		it->job = g_steal_pointer(&g_ptr_array_index(jobs, i));
		fetched = job_fires(it->job) && it->job->record.kind != MR_RECORD_NONE;
		if (!item_prepare(store, cfg, set, b->claim, now, it, fetched,
				  fetched ? g_steal_pointer(&fields[n++]) : NULL, error)) {
			while (n < jobs->len)
				g_clear_pointer(&fields[n++], mr_record_fields_free);
			return FALSE;
		}
	}
	return mr_store_check(store, error);
}

/* Step 2, on a thread of the pool. */
static void
compose_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
	Batch *b = data;

	for (guint i = 0; i < b->items->len; i++) {
		Item *it = &g_array_index(b->items, Item, i);
		g_autoptr(GError) error = NULL;

		for (guint k = 0; it->firing != NULL && k < mr_firing_drafts(it->firing)->len; k++)
			if (!mr_outgoing_compose(g_ptr_array_index(mr_firing_drafts(it->firing), k),
						 &error)) {
				item_fail(it, error);
				break;
			}
	}
	g_task_return_boolean(task, TRUE);
}

/* Step 3: the mails, and the end of every job. */
static gboolean
write_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	Batch *b = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autoptr(GPtrArray) drafts = g_ptr_array_sized_new(b->items->len);
	g_autofree MrOutgoingResult *outs = NULL;
	guint ended = 0, running = 0;
	gboolean ok = TRUE;

	for (guint i = 0; i < b->items->len; i++) {
		Item *it = &g_array_index(b->items, Item, i);
		g_autofree char *due = NULL;

		if (it->ended)
			continue;
		if (it->firing != NULL) {
			running++;
			for (guint k = 0; k < mr_firing_drafts(it->firing)->len; k++)
				g_ptr_array_add(drafts,
						g_ptr_array_index(mr_firing_drafts(it->firing), k));
			continue;
		}
		due = job_retry_due(it->job, now);
		if (!mr_store_job_finish(store, it->job->id, b->claim,
					 due != NULL ? MR_JOB_DUE : MR_JOB_FAILED, it->error, due,
					 now, NULL, error))
			return FALSE;
	}
	if (running == 0)
		return mr_store_check(store, error);
	if (drafts->len > 0) {
		outs = g_new0(MrOutgoingResult, drafts->len);
		ok = mr_outgoing_write_all(store, (MrOutgoingDraft *const *)drafts->pdata,
					   drafts->len, now, outs, error);
		for (guint i = 0; i < drafts->len; i++) {
			if (ok && outs[i].queued)
				g_debug("mail queued as %s", outs[i].message_id);
			mr_outgoing_result_clear(&outs[i]);
		}
	}
	for (guint i = 0; ok && i < b->items->len; i++) {
		Item *it = &g_array_index(b->items, Item, i);

		if (!it->ended && it->firing != NULL)
			ok = mr_act_fire_write(store, it->firing, now, error);
	}
	/* each workflow's count of firings, once per batch */
	for (guint i = 0; ok && i < b->items->len; i++) {
		Item *it = &g_array_index(b->items, Item, i);
		gint64 wf, count = 0;

		if (it->ended || it->firing == NULL)
			continue;
		wf = mr_firing_workflow(it->firing);
		for (guint k = 0; k < b->items->len; k++) {
			Item *other = &g_array_index(b->items, Item, k);

			if (!other->ended && other->firing != NULL &&
			    mr_firing_workflow(other->firing) == wf) {
				if (k < i)
					break; /* counted at its first firing */
				count++;
			}
		}
		if (count > 0)
			ok = mr_store_workflow_fired(store, wf, count, error);
	}
	if (!ok || !mr_store_jobs_finish_claim(store, b->claim, now, &ended, error))
		return FALSE;
	if (ended != running) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "%u of %u jobs were taken over"
			    " (their lease ran out)", running - ended, running);
		return FALSE;
	}
	return mr_store_check(store, error);
}

static void run_job(MrScheduler *s, MrJobClaimed *job, const char *claim);

/* A batch is over: look again (the claim that finds nothing sets the
 * timer). */
static void
batch_over(MrScheduler *s)
{
	s->batches--;
	scheduler_tick(s);
}

static void
write_done(gpointer data, const GError *error, gpointer user_data)
{
	Batch *b = data;
	MrScheduler *s = b->s;

	if (s->stopped)
		return;
	if (error == NULL) {
		for (guint i = 0; i < b->items->len; i++) {
			Item *it = &g_array_index(b->items, Item, i);

			if (it->ended)
				continue;
			if (it->error == NULL) {
				s->done++;
				continue;
			}
			s->failed++;
			g_warning("job %" G_GINT64_FORMAT " (%s, attempt %" G_GINT64_FORMAT "): %s",
				  it->job->id, it->job->kind, it->job->attempts, it->error);
		}
		batch_over(s);
		return;
	}
	g_debug("%u jobs together: %s; each on its own", b->items->len, error->message);
	/* s->running keeps the scheduler busy until the last of them is over */
	for (guint i = 0; i < b->items->len; i++)
		run_job(s, g_steal_pointer(&g_array_index(b->items, Item, i).job), b->claim);
	batch_over(s);
}

static void
compose_done(GObject *source, GAsyncResult *res, gpointer data)
{
	Batch *b = data;
	MrScheduler *s = b->s;

	if (s->stopped) {
		batch_free(b);
		return;
	}
	mr_writer_run(s->writer, s->cfg, write_work, b, batch_free, s->main, write_done, NULL);
}

/* The claim's unit is over; the batch (its data, not freed by the unit)
 * goes on to the composing, or ends here. */
static void
claim_done(gpointer data, const GError *error, gpointer user_data)
{
	Batch *b = data;
	MrScheduler *s = b->s;
	gboolean full;
	GTask *task;

	if (s->stopped) {
		batch_free(b);
		return;
	}
	s->claiming = FALSE;
	if (error != NULL) {
		g_warning("claiming due jobs: %s; again in 5 s", error->message);
		s->again = FALSE;
		mr_wake_arm_in(s->wake, 5);
		batch_free(b);
		return;
	}
	if (b->items->len == 0) {
		if (s->batches == 0 && s->running == 0)
			mr_wake_arm(s->wake, b->next_due);
		batch_free(b);
		if (s->again) {
			s->again = FALSE;
			scheduler_tick(s);
		}
		return;
	}
	s->batches++;
	full = b->items->len >= JOBS_PER_CLAIM;
	/* the batch goes on: compose_done() hands it to the writer */
	task = g_task_new(NULL, NULL, compose_done, b);
	g_task_set_task_data(task, b, NULL);
	g_task_run_in_thread(task, compose_thread);
	g_object_unref(task);
	/* a full claim: more may wait, claimed while this one is composed */
	if (full || s->again) {
		s->again = FALSE;
		scheduler_tick(s);
	}
}

static void
scheduler_tick(MrScheduler *s)
{
	Batch *b;

	if (s->draining || s->stopped)
		return;
	if (s->claiming || s->batches >= MAX_BATCHES) {
		s->again = TRUE;
		return;
	}
	s->claiming = TRUE;
	b = g_new0(Batch, 1);
	b->s = scheduler_ref(s);
	b->claim = mr_act_claim_id(s->cfg);
	b->items = g_array_new(FALSE, TRUE, sizeof(Item));
	g_array_set_clear_func(b->items, item_clear);
	mr_writer_run(s->writer, s->cfg, claim_work, b, NULL, s->main, claim_done, NULL);
}

/* --- one job on its own ------------------------------------------------------------ */

typedef struct {
	MrScheduler *s;
	MrJobClaimed *job;
	char *claim;
	char *error;  /* the run's failure, for the job's end */
} RunWork;

static void
run_work_free(gpointer p)
{
	RunWork *w = p;

	scheduler_unref(w->s);
	mr_job_claimed_free(w->job);
	g_free(w->claim);
	g_free(w->error);
	g_free(w);
}

static gboolean
run_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	RunWork *w = data;
	g_autofree char *now = mr_clock_now_iso();
	g_auto(Item) it = { 0 };
	g_autofree MrOutgoingResult *outs = NULL;
	GPtrArray *drafts;
	const MrWorkflowSet *set = scheduler_workflows(w->s, store, cfg, error);
	gboolean ours = FALSE, ok = TRUE;

	if (set == NULL)
		return FALSE;
	it.job = w->job;
	/* a unit may run again: its job's end, undone, is not the Item's */
	ok = item_prepare(store, cfg, set, w->claim, now, &it, FALSE, NULL, error);
	it.job = NULL;
	if (!ok)
		return FALSE;
	if (it.ended)
		return mr_store_check(store, error);
	if (it.error != NULL) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED, it.error);
		return FALSE;
	}
	drafts = it.firing != NULL ? mr_firing_drafts(it.firing) : NULL;
	for (guint k = 0; drafts != NULL && k < drafts->len; k++)
		if (!mr_outgoing_compose(g_ptr_array_index(drafts, k), error))
			return FALSE;
	if (drafts != NULL && drafts->len > 0) {
		outs = g_new0(MrOutgoingResult, drafts->len);
		ok = mr_outgoing_write_all(store, (MrOutgoingDraft *const *)drafts->pdata,
					   drafts->len, now, outs, error);
		for (guint k = 0; k < drafts->len; k++)
			mr_outgoing_result_clear(&outs[k]);
	}
	if (ok && it.firing != NULL)
		ok = mr_act_fire_write(store, it.firing, now, error) &&
		     mr_store_workflow_fired(store, mr_firing_workflow(it.firing), 1, error);
	if (!ok || !mr_store_job_finish(store, w->job->id, w->claim, MR_JOB_DONE, NULL, NULL, now,
					&ours, error))
		return FALSE;
	if (!ours) {
		/* its lease ran out and another took it: its work is its own */
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "job %" G_GINT64_FORMAT
			    " was taken over (its lease ran out)", w->job->id);
		return FALSE;
	}
	return mr_store_check(store, error);
}

/* A failed run: the job is due again after a backoff, or failed. */
static gboolean
fail_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	RunWork *w = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autofree char *due = job_retry_due(w->job, now);

	return mr_store_job_finish(store, w->job->id, w->claim,
				   due != NULL ? MR_JOB_DUE : MR_JOB_FAILED, w->error, due, now,
				   NULL, error);
}

static void
job_over(MrScheduler *s)
{
	if (--s->running == 0)
		scheduler_tick(s);
}

static void
fail_done(gpointer data, const GError *error, gpointer user_data)
{
	RunWork *w = data;

	if (w->s->stopped)
		return;
	if (error != NULL)
		g_warning("job %" G_GINT64_FORMAT ": recording its failure: %s (it runs again when"
			  " its lease ends)", w->job->id, error->message);
	job_over(w->s);
}

static void
run_done(gpointer data, const GError *error, gpointer user_data)
{
	RunWork *w = data;
	MrScheduler *s = w->s;
	RunWork *f;

	if (s->stopped)
		return;
	if (error == NULL) {
		s->done++;
		job_over(s);
		return;
	}
	s->failed++;
	g_warning("job %" G_GINT64_FORMAT " (%s, attempt %" G_GINT64_FORMAT "): %s", w->job->id,
		  w->job->kind, w->job->attempts, error->message);
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_EXISTS)) {
		job_over(s);
		return;
	}
	f = g_new0(RunWork, 1);
	f->s = scheduler_ref(s);
	f->job = g_steal_pointer(&w->job);
	f->claim = g_strdup(w->claim);
	f->error = g_strdup(error->message);
	mr_writer_run(s->writer, s->cfg, fail_work, f, run_work_free, s->main, fail_done, NULL);
}

static void
run_job(MrScheduler *s, MrJobClaimed *job, const char *claim)
{
	RunWork *w = g_new0(RunWork, 1);

	w->s = scheduler_ref(s);
	w->job = job;
	w->claim = g_strdup(claim);
	s->running++;
	mr_writer_run(s->writer, s->cfg, run_work, w, run_work_free, s->main, run_done, NULL);
}

/* --- as a service of mailroomd -------------------------------------------------- */

static void
scheduler_wake(gpointer data)
{
	scheduler_tick(data);
}

static gpointer
scheduler_start(MrConfig *cfg, MrWriter *writer, GError **error)
{
	MrScheduler *s = g_atomic_rc_box_new0(MrScheduler);

	s->cfg = mr_config_ref(cfg);
	s->writer = writer;
	s->main = g_main_context_ref_thread_default();
	s->wake = mr_wake_new(cfg, scheduler_wake, s, error);
	if (s->wake == NULL) {
		scheduler_unref(s);
		return NULL;
	}
	s->watch = mr_writer_watch_work(writer, scheduler_wake, s);
	/* what fell due while mailroomd was down */
	scheduler_tick(s);
	return s;
}

static void
scheduler_reload(gpointer self, const MrConfig *old, MrConfig *cfg)
{
	MrScheduler *s = self;

	mr_config_unref(s->cfg);
	s->cfg = mr_config_ref(cfg);
	/* the clock may have moved: look again */
	scheduler_tick(s);
}

static void
scheduler_drain(gpointer self)
{
	MrScheduler *s = self;

	s->draining = TRUE;
	mr_wake_arm(s->wake, NULL);
}

static guint
scheduler_busy(gpointer self)
{
	MrScheduler *s = self;

	return s->running + s->batches + (s->claiming ? 1 : 0);
}

static char *
scheduler_describe(gpointer self)
{
	return g_strdup("due jobs");
}

static char *
scheduler_status(gpointer self)
{
	MrScheduler *s = self;

	return g_strdup_printf("%" G_GUINT64_FORMAT " jobs done, %" G_GUINT64_FORMAT " failed",
			       s->done, s->failed);
}

static void
scheduler_stop(gpointer self)
{
	MrScheduler *s = self;

	if (s == NULL)
		return;
	s->stopped = TRUE;
	mr_writer_unwatch_work(s->writer, s->watch);
	g_clear_pointer(&s->wake, mr_wake_free);
	scheduler_unref(s);
}

const MrServiceClass mr_scheduler_service = {
	.name = "scheduler",
	.start_failure_exit = 75, /* EX_TEMPFAIL: the database */
	.start = scheduler_start,
	.reload = scheduler_reload,
	.drain = scheduler_drain,
	.busy = scheduler_busy,
	.describe = scheduler_describe,
	.status = scheduler_status,
	.stop = scheduler_stop,
};
