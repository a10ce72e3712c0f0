/* mr-act-wake.c - waking the services of src/act/ when work may be due
 * (mr-act-private.h): one timer, and a watcher of the database.
 *
 * Act stage, on the default main context. */
#define G_LOG_DOMAIN "mailroom-act"

#include <unistd.h>

#include <glib-unix.h>

#include "mailroom/mr-clock.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store.h"
#include "mr-act-private.h"

/* The longest the timer waits before looking again, ms. */
#define WAKE_MAX_MS (3600 * 1000)
/* How often a broken watcher is opened again, s. */
#define WAKE_RETRY_S 5
/* After a notice of the descriptor that showed no commit (on SQLite the
 * write to the WAL comes before the commit is visible), the watcher looks
 * again after these many ms, each after the one before. */
static const guint wake_rechecks_ms[] = { 10, 40, 150, 500, 1000 };

/* Work other connections commit wakes the service at most this often, ms:
 * on SQLite every write to the WAL is seen (inotify), and a burst of
 * commits makes one look, not one per commit. */
#define WAKE_COALESCE_MS 50

struct _MrWake {
	MrConfig *cfg;
	MrWakeFunc func;
	gpointer data;
	MrStore *watch;    /* (nullable) the watcher's connection */
	guint watch_source; /* its descriptor, or its once-a-second poll */
	guint retry_source; /* opening it again */
	guint timer;
	guint defer_source; /* a coalesced call of func to come */
	guint recheck_source; /* another look after a notice that showed nothing */
	guint rechecks;     /* looks so far after that notice */
	gint64 last_call;   /* the watcher's last call of func (monotonic) */
};

static void wake_watch_open(MrWake *w);

static gboolean
wake_timer_fired(gpointer p)
{
	MrWake *w = p;

	w->timer = 0;
	w->func(w->data);
	return G_SOURCE_REMOVE;
}

void
mr_wake_arm(MrWake *w, const char *due)
{
	g_autoptr(GDateTime) t = due != NULL ? g_date_time_new_from_iso8601(due, NULL) : NULL;
	gint64 ms;

	g_clear_handle_id(&w->timer, g_source_remove);
	if (due == NULL)
		return;
	if (t == NULL) {
		g_warning("a due time that does not read: %s", due);
		ms = 0;
	} else {
		ms = (g_date_time_to_unix(t) * G_USEC_PER_SEC - mr_clock_now_us()) / 1000;
	}
	/* due times are to the second: a little after it, it is due */
	ms = CLAMP(ms + 20, 0, WAKE_MAX_MS);
	w->timer = g_timeout_add((guint)ms, wake_timer_fired, w);
}

void
mr_wake_arm_in(MrWake *w, guint seconds)
{
	g_clear_handle_id(&w->timer, g_source_remove);
	w->timer = g_timeout_add_seconds(seconds, wake_timer_fired, w);
}

static void
wake_watch_close(MrWake *w)
{
	g_clear_handle_id(&w->recheck_source, g_source_remove);
	g_clear_handle_id(&w->watch_source, g_source_remove);
	g_clear_pointer(&w->watch, mr_store_close);
}

static gboolean
wake_retry(gpointer p)
{
	MrWake *w = p;

	w->retry_source = 0;
	wake_watch_open(w);
	/* what was added while the watcher was away */
	w->func(w->data);
	return G_SOURCE_REMOVE;
}

static gboolean
wake_deferred(gpointer p)
{
	MrWake *w = p;

	w->defer_source = 0;
	w->last_call = g_get_monotonic_time();
	w->func(w->data);
	return G_SOURCE_REMOVE;
}

/* Work came: calls func now, or once WAKE_COALESCE_MS after its last
 * call. */
static void
wake_notify(MrWake *w)
{
	gint64 since = (g_get_monotonic_time() - w->last_call) / 1000;

	if (w->defer_source != 0)
		return;
	if (w->last_call != 0 && since < WAKE_COALESCE_MS) {
		w->defer_source = g_timeout_add((guint)(WAKE_COALESCE_MS - since), wake_deferred, w);
		return;
	}
	w->last_call = g_get_monotonic_time();
	w->func(w->data);
}

/* Asks the watcher; calls func when work came (then sets @seen,
 * nullable). */
static gboolean
wake_check(MrWake *w, gboolean *seen)
{
	g_autoptr(GError) error = NULL;

	if (mr_store_watch_changed(w->watch, &error)) {
		if (seen != NULL)
			*seen = TRUE;
		wake_notify(w);
		return G_SOURCE_CONTINUE;
	}
	if (error == NULL)
		return G_SOURCE_CONTINUE;
	g_warning("watching the database for work: %s; again in %d s", error->message,
		  WAKE_RETRY_S);
	w->watch_source = 0;
	g_clear_pointer(&w->watch, mr_store_close);
	w->retry_source = g_timeout_add_seconds(WAKE_RETRY_S, wake_retry, w);
	return G_SOURCE_REMOVE;
}

static gboolean
wake_recheck(gpointer p)
{
	MrWake *w = p;
	g_autoptr(GError) error = NULL;

	w->recheck_source = 0;
	if (w->watch == NULL)
		return G_SOURCE_REMOVE;
	if (mr_store_watch_changed(w->watch, &error)) {
		wake_notify(w);
		return G_SOURCE_REMOVE;
	}
	if (error == NULL && ++w->rechecks < G_N_ELEMENTS(wake_rechecks_ms))
		w->recheck_source = g_timeout_add(wake_rechecks_ms[w->rechecks], wake_recheck, w);
	return G_SOURCE_REMOVE;
}

static gboolean
wake_fd_ready(gint fd, GIOCondition condition, gpointer p)
{
	MrWake *w = p;
	gboolean more, seen = FALSE;

	w->rechecks = 0;
	g_clear_handle_id(&w->recheck_source, g_source_remove);
	more = wake_check(w, &seen);
	/* nothing yet: the commit may come right after what woke us */
	if (more && !seen)
		w->recheck_source = g_timeout_add(wake_rechecks_ms[0], wake_recheck, w);
	return more;
}

static gboolean
wake_poll(gpointer p)
{
	return wake_check(p, NULL);
}

/* Opens the watcher and sets its source: a notification's fd (PostgreSQL's
 * LISTEN, SQLite's inotify), or the once-a-second look.  Returns FALSE with @error (nothing left open). */
static gboolean
wake_watch_try(MrWake *w, GError **error)
{
	int fd;

	w->watch = mr_store_open_existing(w->cfg, error);
	if (w->watch == NULL || !mr_store_watch_start(w->watch, error)) {
		g_clear_pointer(&w->watch, mr_store_close);
		return FALSE;
	}
	fd = mr_store_watch_fd(w->watch);
	if (fd >= 0)
		w->watch_source = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, wake_fd_ready, w);
	else
		w->watch_source = g_timeout_add_seconds(1, wake_poll, w);
	return TRUE;
}

static void
wake_watch_open(MrWake *w)
{
	g_autoptr(GError) error = NULL;

	if (wake_watch_try(w, &error))
		return;
	g_warning("watching the database for work: %s; again in %d s", error->message,
		  WAKE_RETRY_S);
	w->retry_source = g_timeout_add_seconds(WAKE_RETRY_S, wake_retry, w);
}

MrWake *
mr_wake_new(const MrConfig *cfg, MrWakeFunc func, gpointer data, GError **error)
{
	MrWake *w = g_new0(MrWake, 1);

	w->cfg = mr_config_ref((MrConfig *)cfg);
	w->func = func;
	w->data = data;
	if (!wake_watch_try(w, error)) {
		mr_wake_free(w);
		return NULL;
	}
	return w;
}

void
mr_wake_free(MrWake *w)
{
	if (w == NULL)
		return;
	g_clear_handle_id(&w->timer, g_source_remove);
	g_clear_handle_id(&w->retry_source, g_source_remove);
	g_clear_handle_id(&w->defer_source, g_source_remove);
	wake_watch_close(w);
	mr_config_unref(w->cfg);
	g_free(w);
}

char *
mr_act_iso_add(const char *now, gint64 seconds)
{
	g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(now, NULL);
	g_autoptr(GDateTime) later = t != NULL ? g_date_time_add_seconds(t, (gdouble)seconds) : NULL;

	return later != NULL ? g_date_time_format(later, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

char *
mr_act_claim_id(const MrConfig *cfg)
{
	/* the monotonic time and a random number: no counter to share */
	return g_strdup_printf("%s:%d:%" G_GINT64_FORMAT ":%08x", cfg->hostname, (int)getpid(),
			       g_get_monotonic_time(), g_random_int());
}
