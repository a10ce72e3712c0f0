/* mr-act-jobs.c - the scheduler: runs the jobs that fall due
 * (mr_scheduler_service, see mr-act.h).
 *
 * Act stage, on the main loop.  A tick claims what is due in a unit of
 * the writer (the lease commits first: a daemon that dies leaves its
 * jobs to another after MR_ACT_LEASE_S), then runs each job in a unit of
 * its own, whose work and the job's end commit together; a job that
 * fails is undone and ended in another unit, due again after a backoff
 * or failed.  Then it ticks again until nothing is due, and sets the
 * timer to the next due job. */
#define G_LOG_DOMAIN "mailroom-scheduler"

#include <gio/gio.h>

#include "mailroom/mr-act.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-outgoing.h"
#include "mailroom/mr-store-outgoing.h"
#include "mr-act-private.h"

/* Jobs claimed per tick: a tick's units wait in the writer's queue
 * together, and the outbox's claims wait behind them, so a tick stays
 * short. */
#define JOBS_PER_CLAIM 50
/* The first retry of a failed job, seconds; doubles with each attempt. */
#define JOB_RETRY_S 60

typedef struct {
	MrConfig *cfg;
	MrWriter *writer;
	MrWake *wake;
	gboolean ticking; /* a claim, or the runs of its jobs, in flight */
	gboolean again;   /* woken meanwhile: tick once more after */
	gboolean draining;
	gboolean stopped; /* stop came: units still in flight do nothing more */
	guint watch;      /* mr_writer_watch_work(): jobs added in this process */
	guint running;    /* job units in flight */
	guint64 done, failed;
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
	mr_config_unref(s->cfg);
}

static void
scheduler_unref(MrScheduler *s)
{
	g_atomic_rc_box_release_full(s, (GDestroyNotify)scheduler_clear);
}

/* --- the claim ---------------------------------------------------------------- */

typedef struct {
	MrScheduler *s;
	char *claim;
	GPtrArray *jobs;   /* MrJobClaimed* */
	char *next_due;
} ClaimWork;

static void
claim_work_free(gpointer p)
{
	ClaimWork *w = p;

	scheduler_unref(w->s);
	g_free(w->claim);
	g_clear_pointer(&w->jobs, g_ptr_array_unref);
	g_free(w->next_due);
	g_free(w);
}

static gboolean
claim_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	ClaimWork *w = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autofree char *lease = mr_act_iso_add(now, MR_ACT_LEASE_S);

	w->jobs = mr_store_jobs_claim(store, now, lease, w->claim, JOBS_PER_CLAIM, error);
	if (w->jobs == NULL)
		return FALSE;
	if (w->jobs->len == 0)
		w->next_due = mr_store_jobs_next_due(store);
	return mr_store_check(store, error);
}

static void scheduler_tick(MrScheduler *s);
static void run_job(MrScheduler *s, MrJobClaimed *job, const char *claim);

/* The tick's runs are over: look again. */
static void
scheduler_tick_over(MrScheduler *s)
{
	s->ticking = FALSE;
	s->again = FALSE;
	scheduler_tick(s);
}

static void
claim_done(gpointer data, const GError *error, gpointer user_data)
{
	ClaimWork *w = data;
	MrScheduler *s = w->s;

	if (s->stopped)
		return;
	if (error != NULL) {
		g_warning("claiming due jobs: %s; again in 5 s", error->message);
		s->ticking = FALSE;
		mr_wake_arm_in(s->wake, 5);
		return;
	}
	if (w->jobs->len == 0) {
		s->ticking = FALSE;
		mr_wake_arm(s->wake, w->next_due);
		if (s->again) {
			s->again = FALSE;
			scheduler_tick(s);
		}
		return;
	}
	for (guint i = 0; i < w->jobs->len; i++)
		run_job(s, g_ptr_array_steal_index_fast(w->jobs, i--), w->claim);
}

static void
scheduler_tick(MrScheduler *s)
{
	ClaimWork *w;

	if (s->draining || s->stopped)
		return;
	if (s->ticking) {
		s->again = TRUE;
		return;
	}
	s->ticking = TRUE;
	w = g_new0(ClaimWork, 1);
	w->s = scheduler_ref(s);
	w->claim = mr_act_claim_id(s->cfg);
	mr_writer_run(s->writer, s->cfg, claim_work, w, claim_work_free, NULL, claim_done, NULL);
}

/* --- one job -------------------------------------------------------------------- */

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

/* The acknowledgement of a new ticket: to its contact, threaded to the
 * message that made it. */
static gboolean
job_ticket_ack(MrStore *store, const MrConfig *cfg, const MrJobClaimed *job, const char *now,
	       GError **error)
{
	MrOutgoingRequest req = { 0 };
	MrOutgoingResult out = { 0 };
	gboolean ok;

	req.record = job->record;
	req.answers = job->message;
	req.template_name = cfg->ack.template_name;
	req.kind = MR_COMPOSE_AUTO_REPLIED;
	ok = mr_outgoing_queue(store, cfg, &req, now, &out, error);
	if (ok && out.queued)
		g_debug("job %" G_GINT64_FORMAT ": acknowledgement queued as %s", job->id,
			out.message_id);
	mr_outgoing_result_clear(&out);
	return ok;
}

static gboolean
run_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	RunWork *w = data;
	g_autofree char *now = mr_clock_now_iso();
	gboolean ours = FALSE;

	if (g_strcmp0(w->job->kind, MR_JOB_TICKET_ACK) == 0) {
		if (!job_ticket_ack(store, cfg, w->job, now, error))
			return FALSE;
	} else {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "no such kind of job: %s",
			    w->job->kind);
		return FALSE;
	}
	if (!mr_store_job_finish(store, w->job->id, w->claim, MR_JOB_DONE, NULL, NULL, now, &ours,
				 error))
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
	gboolean last = w->job->attempts >= MR_JOB_MAX_ATTEMPTS;
	g_autofree char *due =
		last ? NULL
		     : mr_act_iso_add(now, (gint64)JOB_RETRY_S << MIN(w->job->attempts - 1, 16));

	return mr_store_job_finish(store, w->job->id, w->claim, last ? MR_JOB_FAILED : MR_JOB_DUE,
				   w->error, due, now, NULL, error);
}

static void
job_over(MrScheduler *s)
{
	if (--s->running == 0)
		scheduler_tick_over(s);
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
	if (s->stopped)
		return;
	f = g_new0(RunWork, 1);
	f->s = scheduler_ref(s);
	f->job = g_steal_pointer(&w->job);
	f->claim = g_strdup(w->claim);
	f->error = g_strdup(error->message);
	mr_writer_run(s->writer, s->cfg, fail_work, f, run_work_free, NULL, fail_done, NULL);
}

static void
run_job(MrScheduler *s, MrJobClaimed *job, const char *claim)
{
	RunWork *w = g_new0(RunWork, 1);

	w->s = scheduler_ref(s);
	w->job = job;
	w->claim = g_strdup(claim);
	s->running++;
	mr_writer_run(s->writer, s->cfg, run_work, w, run_work_free, NULL, run_done, NULL);
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

	return s->running + (s->ticking ? 1 : 0);
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
