/* mr-act-outbox.c - the outbox: sends queued mail through the relay
 * (mr_outbox_service, see mr-act.h).
 *
 * Act stage.  The main loop only wakes the sender (a timer at the next
 * due mail, the watcher of the database); a thread of its own claims a
 * batch in a unit of the writer (a lease per mail: several daemons never
 * send one mail twice), sends each with libetpan over one connection it
 * keeps open (mr-relay.h), and records the results in another unit.  A
 * crash between the relay's 250 and that record can send a mail again
 * once its lease ran out: with the same Message-ID (docs/outgoing.md). */
#define G_LOG_DOMAIN "mailroom-outbox"

#include <gio/gio.h>

#include "mailroom/mr-act.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-event.h"
#include "mailroom/mr-outgoing.h"
#include "mailroom/mr-relay.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-outgoing.h"
#include "mr-act-private.h"

/* Mails claimed per batch. */
#define MAILS_PER_CLAIM 100
/* An idle connection to the relay is closed after this, seconds. */
#define RELAY_IDLE_S 30

typedef struct {
	MrWriter *writer;
	MrWake *wake;
	GMainContext *main;
	GThread *thread;
	GCancellable *cancel;
	GMutex lock;
	GCond cond;
	/* under the lock */
	MrConfig *cfg;
	gboolean kicked, stopping, draining, sending;
	guint watch;   /* mr_writer_watch_work(): mail queued in this process */
	guint64 sent, deferred, failed;
} MrOutbox;

static MrOutbox *
outbox_ref(MrOutbox *o)
{
	return g_atomic_rc_box_acquire(o);
}

static void
outbox_clear(MrOutbox *o)
{
	mr_config_unref(o->cfg);
	g_clear_object(&o->cancel);
	g_mutex_clear(&o->lock);
	g_cond_clear(&o->cond);
	g_main_context_unref(o->main);
}

static void
outbox_unref(MrOutbox *o)
{
	g_atomic_rc_box_release_full(o, (GDestroyNotify)outbox_clear);
}

/* --- the units the sender runs ------------------------------------------------ */

typedef struct {
	char *claim;
	GPtrArray *mails;  /* MrOutboxClaimed* */
	char *next_due;
} ClaimWork;

static gboolean
claim_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	ClaimWork *w = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autofree char *lease = mr_act_iso_add(now, MR_ACT_LEASE_S);

	/* a unit may run again (mr-writer.h): nothing of a run before */
	g_clear_pointer(&w->mails, g_ptr_array_unref);
	g_clear_pointer(&w->next_due, g_free);
	w->mails = mr_store_outbox_claim(store, now, lease, w->claim, MAILS_PER_CLAIM, error);
	if (w->mails == NULL)
		return FALSE;
	if (w->mails->len == 0)
		w->next_due = mr_store_outbox_next_due(store);
	return mr_store_check(store, error);
}

/* What became of one mail. */
typedef struct {
	MrOutboxClaimed *mail;  /* borrowed from the claim */
	MrRelayResult result;
	gboolean unsent;        /* left for later (a stop, the lease) */
} Sent;

typedef struct {
	const char *claim;
	GArray *sent;           /* Sent */
} ResultWork;

/* The backoff before attempt @attempts + 1: retry_min doubling, at most
 * retry_max. */
static gint64
backoff(const MrConfig *cfg, gint64 attempts)
{
	gint64 s = cfg->relay.retry_min_s;

	for (gint64 i = 1; i < attempts && s < cfg->relay.retry_max_s; i++)
		s *= 2;
	return MIN(s, (gint64)cfg->relay.retry_max_s);
}

/* Records a mail that did not go: queued again (not tried, or a 4xx
 * under relay.max_attempts), or failed with event mail.failed. */
static gboolean
record_one(MrStore *store, const MrConfig *cfg, const char *claim, const Sent *x,
	   const char *now, GError **error)
{
	const MrOutboxClaimed *m = x->mail;
	const char *reply = x->result.reply;
	g_autofree char *next = NULL;
	const char *status;
	gboolean failed = FALSE;

	if (x->unsent) {
		status = MR_OUTBOX_QUEUED;
		next = g_strdup(now);
		reply = NULL;
	} else if (x->result.verdict == MR_RELAY_TEMPFAIL && m->attempts < cfg->relay.max_attempts) {
		status = MR_OUTBOX_QUEUED;
		next = mr_act_iso_add(now, backoff(cfg, m->attempts));
	} else {
		status = MR_OUTBOX_FAILED;
		failed = TRUE;
	}
	if (!mr_store_outbox_result(store, m->id, claim, status, reply, next, NULL,
				    x->unsent, now, NULL, error))
		return FALSE;
	if (failed) {
		MrEventFacts facts = { .address = m->recipient, .detail = (char *)reply };

		g_warning("outgoing mail %" G_GINT64_FORMAT " to %s failed: %s", m->id, m->recipient,
			  reply != NULL ? reply : "?");
		return mr_store_event_add(store, now, MR_EVENT_MAIL_FAILED, m->record, m->message,
					  &facts, error);
	}
	return TRUE;
}

/* The results of a batch: each mail that did not go on its own, then
 * those that went in one statement (what is still "sending" under the
 * claim). */
static gboolean
result_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	ResultWork *w = data;
	g_autofree char *now = mr_clock_now_iso();
	guint sent = 0, recorded = 0;

	for (guint i = 0; i < w->sent->len; i++) {
		const Sent *x = &g_array_index(w->sent, Sent, i);

		if (!x->unsent && x->result.verdict == MR_RELAY_SENT)
			sent++;
		else if (!record_one(store, cfg, w->claim, x, now, error))
			return FALSE;
	}
	if (sent == 0)
		return TRUE;
	if (!mr_store_outbox_sent_claim(store, w->claim, now, &recorded, error))
		return FALSE;
	if (recorded != sent)
		/* a lease ran out and another daemon took the mail over */
		g_warning("%u outgoing mails sent, %u of them still under this claim", sent,
			  recorded);
	return TRUE;
}

/* --- the sender's thread ---------------------------------------------------------- */

typedef struct {
	MrOutbox *o;
	char *due;
	gboolean retry;
} Arm;

static gboolean
arm_on_main(gpointer p)
{
	Arm *a = p;

	if (a->o->wake != NULL) {
		if (a->retry)
			mr_wake_arm_in(a->o->wake, 5);
		else
			mr_wake_arm(a->o->wake, a->due);
	}
	return G_SOURCE_REMOVE;
}

static void
arm_free(gpointer p)
{
	Arm *a = p;

	outbox_unref(a->o);
	g_free(a->due);
	g_free(a);
}

/* Sets the main loop's timer from the sender's thread. */
static void
post_arm(MrOutbox *o, const char *due, gboolean retry)
{
	Arm *a = g_new0(Arm, 1);

	a->o = outbox_ref(o);
	a->due = g_strdup(due);
	a->retry = retry;
	g_main_context_invoke_full(o->main, G_PRIORITY_DEFAULT, arm_on_main, a, arm_free);
}

/* Sends one claimed batch; returns FALSE when nothing was claimed. */
static gboolean
send_batch(MrOutbox *o, MrConfig *cfg, MrRelay *relay)
{
	g_autoptr(GError) error = NULL;
	ClaimWork cw = { 0 };
	ResultWork rw = { 0 };
	gint64 deadline;
	gboolean more;

	cw.claim = mr_act_claim_id(cfg);
	if (!mr_writer_run_sync(o->writer, cfg, claim_work, &cw, &error)) {
		g_warning("claiming outgoing mail: %s; again in 5 s", error->message);
		post_arm(o, NULL, TRUE);
		more = FALSE;
		goto out;
	}
	if (cw.mails->len == 0) {
		post_arm(o, cw.next_due, FALSE);
		more = FALSE;
		goto out;
	}
	more = TRUE;
	/* stop sending well before the lease ends: each command may take
	 * the relay's timeout */
	deadline = g_get_monotonic_time() +
		   (MR_ACT_LEASE_S - 3 * (gint64)cfg->relay.remote.timeout_s) * G_USEC_PER_SEC;
	rw.claim = cw.claim;
	rw.sent = g_array_sized_new(FALSE, TRUE, sizeof(Sent), cw.mails->len);
	for (guint i = 0; i < cw.mails->len; i++) {
		MrOutboxClaimed *m = g_ptr_array_index(cw.mails, i);
		Sent x = { .mail = m };
		gboolean stop;

		g_mutex_lock(&o->lock);
		stop = o->stopping;
		g_mutex_unlock(&o->lock);
		if (stop || g_get_monotonic_time() > deadline) {
			x.unsent = TRUE;
		} else {
			g_autofree char *envelope = mr_outgoing_envelope_from(cfg, m->id, m->token);

			mr_relay_send(relay, envelope, m->recipient, m->raw, &x.result);
			g_mutex_lock(&o->lock);
			if (x.result.verdict == MR_RELAY_SENT)
				o->sent++;
			else if (x.result.verdict == MR_RELAY_TEMPFAIL)
				o->deferred++;
			else
				o->failed++;
			g_mutex_unlock(&o->lock);
			if (x.result.verdict != MR_RELAY_SENT)
				g_info("outgoing mail %" G_GINT64_FORMAT " to %s: %s", m->id,
				       m->recipient, x.result.reply != NULL ? x.result.reply : "?");
		}
		g_array_append_val(rw.sent, x);
	}
	if (!mr_writer_run_sync(o->writer, cfg, result_work, &rw, &error))
		/* the mails stay "sending" until their lease ends: then they
		 * are sent again (a sent one, too: the documented window) */
		g_warning("recording what became of %u outgoing mails: %s", rw.sent->len,
			  error->message);
	for (guint i = 0; i < rw.sent->len; i++)
		mr_relay_result_clear(&g_array_index(rw.sent, Sent, i).result);
	g_array_unref(rw.sent);
out:
	g_free(cw.claim);
	g_clear_pointer(&cw.mails, g_ptr_array_unref);
	g_free(cw.next_due);
	return more;
}

static gpointer
outbox_thread(gpointer data)
{
	MrOutbox *o = data;
	MrRelay *relay = NULL;
	MrConfig *relay_cfg = NULL; /* the one @relay was made with: its remote */

	for (;;) {
		g_autoptr(MrConfig) cfg = NULL;
		gint64 idle_until = g_get_monotonic_time() + RELAY_IDLE_S * G_USEC_PER_SEC;

		g_mutex_lock(&o->lock);
		while (!o->kicked && !o->stopping) {
			if (!g_cond_wait_until(&o->cond, &o->lock, idle_until)) {
				g_mutex_unlock(&o->lock);
				if (relay != NULL)
					mr_relay_close(relay); /* idle: QUIT */
				g_mutex_lock(&o->lock);
				idle_until = G_MAXINT64;
			}
		}
		if (o->stopping) {
			g_mutex_unlock(&o->lock);
			break;
		}
		o->kicked = FALSE;
		o->sending = TRUE;
		cfg = mr_config_ref(o->cfg);
		g_mutex_unlock(&o->lock);
		/* a reload that changed the relay: a new connection */
		if (relay != NULL && !mr_remote_equal(&relay_cfg->relay.remote, &cfg->relay.remote)) {
			g_clear_pointer(&relay, mr_relay_free);
			g_clear_pointer(&relay_cfg, mr_config_unref);
		}
		if (relay == NULL) {
			relay_cfg = mr_config_ref(cfg);
			relay = mr_relay_new(&relay_cfg->relay.remote, relay_cfg->hostname, o->cancel);
		}
		while (send_batch(o, cfg, relay)) {
			gboolean stop;

			g_mutex_lock(&o->lock);
			stop = o->stopping || o->draining;
			g_mutex_unlock(&o->lock);
			if (stop)
				break;
		}
		g_mutex_lock(&o->lock);
		o->sending = FALSE;
		g_mutex_unlock(&o->lock);
	}
	mr_relay_free(relay);
	g_clear_pointer(&relay_cfg, mr_config_unref);
	outbox_unref(o);
	return NULL;
}

/* --- as a service of mailroomd -------------------------------------------------- */

static void
outbox_kick(MrOutbox *o)
{
	g_mutex_lock(&o->lock);
	if (!o->draining) {
		o->kicked = TRUE;
		g_cond_signal(&o->cond);
	}
	g_mutex_unlock(&o->lock);
}

static void
outbox_wake(gpointer data)
{
	outbox_kick(data);
}

static gpointer
outbox_start(MrConfig *cfg, MrWriter *writer, GError **error)
{
	MrOutbox *o;

	if (!cfg->relay.configured) {
		g_message("no relay { ... } in %s: outgoing mail waits in the outbox", cfg->path);
		return g_atomic_rc_box_new0(MrOutbox) /* an outbox that sends nothing */;
	}
	o = g_atomic_rc_box_new0(MrOutbox);
	g_mutex_init(&o->lock);
	g_cond_init(&o->cond);
	o->cfg = mr_config_ref(cfg);
	o->writer = writer;
	o->main = g_main_context_ref_thread_default();
	o->cancel = g_cancellable_new();
	o->wake = mr_wake_new(cfg, outbox_wake, o, error);
	if (o->wake == NULL) {
		outbox_unref(o);
		return NULL;
	}
	o->watch = mr_writer_watch_work(writer, outbox_wake, o);
	o->kicked = TRUE; /* what waits since the last run */
	o->thread = g_thread_new("outbox", outbox_thread, outbox_ref(o));
	return o;
}

static void
outbox_reload(gpointer self, const MrConfig *old, MrConfig *cfg)
{
	MrOutbox *o = self;

	if (o->thread == NULL) {
		if (cfg->relay.configured)
			g_warning("reload: a relay added takes effect on restart");
		return;
	}
	if (!cfg->relay.configured) {
		g_warning("reload: a relay removed takes effect on restart; the outbox keeps"
			  " sending through %s", o->cfg->relay.remote.host);
		return;
	}
	g_mutex_lock(&o->lock);
	mr_config_unref(o->cfg);
	o->cfg = mr_config_ref(cfg);
	g_mutex_unlock(&o->lock);
	outbox_kick(o);
}

static void
outbox_drain(gpointer self)
{
	MrOutbox *o = self;

	if (o->thread == NULL)
		return;
	g_mutex_lock(&o->lock);
	o->draining = TRUE;
	g_mutex_unlock(&o->lock);
	mr_wake_arm(o->wake, NULL);
}

static guint
outbox_busy(gpointer self)
{
	MrOutbox *o = self;
	guint busy;

	if (o->thread == NULL)
		return 0;
	g_mutex_lock(&o->lock);
	busy = o->sending ? 1 : 0;
	g_mutex_unlock(&o->lock);
	return busy;
}

static char *
outbox_describe(gpointer self)
{
	MrOutbox *o = self;

	if (o->thread == NULL)
		return g_strdup("no relay: outgoing mail waits");
	return g_strdup_printf("relay %s:%d", o->cfg->relay.remote.host, o->cfg->relay.remote.port);
}

static char *
outbox_status(gpointer self)
{
	MrOutbox *o = self;
	char *s;

	if (o->thread == NULL)
		return g_strdup("no relay");
	g_mutex_lock(&o->lock);
	s = g_strdup_printf("%" G_GUINT64_FORMAT " sent, %" G_GUINT64_FORMAT " deferred, %"
			    G_GUINT64_FORMAT " failed", o->sent, o->deferred, o->failed);
	g_mutex_unlock(&o->lock);
	return s;
}

static void
outbox_stop(gpointer self)
{
	MrOutbox *o = self;

	if (o == NULL)
		return;
	if (o->thread == NULL) {
		g_atomic_rc_box_release(o);
		return;
	}
	mr_writer_unwatch_work(o->writer, o->watch);
	g_mutex_lock(&o->lock);
	o->stopping = TRUE;
	g_cond_signal(&o->cond);
	g_mutex_unlock(&o->lock);
	g_cancellable_cancel(o->cancel);
	g_thread_join(o->thread);
	g_clear_pointer(&o->wake, mr_wake_free);
	outbox_unref(o);
}

const MrServiceClass mr_outbox_service = {
	.name = "outbox",
	.start_failure_exit = 75, /* EX_TEMPFAIL: the database */
	.start = outbox_start,
	.reload = outbox_reload,
	.drain = outbox_drain,
	.busy = outbox_busy,
	.describe = outbox_describe,
	.status = outbox_status,
	.stop = outbox_stop,
};
