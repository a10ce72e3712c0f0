/* mr-imap-watch.c - the IMAP door's watch: a thread per mailbox runs
 * sessions (mr-imap-session.c) one after another, fetches its mail in
 * batches and hands it to the writer, applies the after action once the
 * batch is committed, and keeps the mailbox's state; and the service
 * (start, reload, drain, stop) that runs a watch per imap entry.  See
 * mr-imap.h for the contract.
 *
 * Ingest stage.  The thread never touches the database itself: messages
 * go to the writer like SMTP mail, and the mailbox's state is saved
 * through writer units. */
#define G_LOG_DOMAIN "mailroom-imap"

#include <gio/gio.h>
#include <libetpan/libetpan.h>
#include <string.h>

#include "mailroom/mr-error.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-mailbox.h"
#include "mr-imap-private.h"

/* IDLE is re-issued before the 30 minutes servers allow (RFC 2177). */
#define MR_IMAP_IDLE_SECONDS (29 * 60)
/* A fetch batch: at most this many messages and about this many bytes. */
#define MR_IMAP_BATCH_MESSAGES 200
#define MR_IMAP_BATCH_BYTES (16 * 1024 * 1024)
/* A message that failed this many tries alone -- its fetch failed, the
 * server sent no body, its store failed (not for a busy database), or
 * mailroomd died while storing it -- goes to the quarantine.  The tries
 * are counted durably (see watch_mark()). */
#define MR_IMAP_MAX_TRIES 2
/* Batches in the writer's hands at once: the next is fetched and parsed
 * while one is stored. */
#define MR_IMAP_IN_FLIGHT 2
/* Lists in a row that find nothing new although the server announced a
 * change (another client's expunge, say) before the drain waits in IDLE. */
#define MR_IMAP_RELISTS 3
/* Batches one mark in flight covers, and UIDs past the batch by this
 * many times MR_IMAP_BATCH_MESSAGES (see watch_mark()). */
#define MR_IMAP_MARK_AHEAD 8

/* --- a watched mailbox: its thread ---------------------------------------------- */

typedef struct _MrImapService MrImapService;

typedef struct {
	MrWriter *writer;
	MrConfig *cfg;              /* the configuration it runs with (ref) */
	const MrImapMailbox *mb;    /* in @cfg */
	MrConfig *next_cfg;         /* (nullable) a reload's, under @lock: taken
	                               between batches */
	MrConfig *main_cfg;         /* the main thread's view (reload, describe): */
	const MrImapMailbox *main_mb; /* the same mailbox, in @main_cfg */
	GThread *thread;
	GCancellable *wake;         /* ends waits (IDLE, poll, backoff): drain */
	MrImapPoke poke;            /* ends a wait once: a reload's configuration */
	GCancellable *io;           /* ends blocking I/O: hard stop */
	gint stopping;              /* atomic: finish what is in hand, then exit */
	gint finished;              /* atomic: the thread is done */
	gint connecting;            /* atomic: connecting, logging in, opening
	                               the folder: nothing in hand (a stop
	                               cancels the I/O at once) */
	MrMailboxState st;          /* the thread's own copy */
	gint64 suspect_to;          /* UIDs up to it go alone, their tries
	                               counted: see watch_mark() */
	guint32 fail_uid;           /* the last message that failed alone, */
	char *fail_why;             /* and why (for the quarantine's reason) */
	gboolean progress;          /* a batch committed or the wait reached
	                               since the last backoff */
	char *logged;               /* the last state (and why) logged */
	GMutex lock;                /* guards @state and @next_cfg */
	char *state;
} MrImapWatch;

/* One message handed to the writer, and its answer. */
typedef struct {
	GAsyncQueue *answered;      /* its batch's: the slot is pushed there */
	GError *error;
	MrDelivery delivery;
} MrImapSlot;

static void
imap_done(const MrWriterResult *results, guint n, gpointer user_data)
{
	MrImapSlot *slot = user_data;

	if (n > 0 && results[0].error != NULL)
		slot->error = g_error_copy(results[0].error);
	else if (n > 0)
		slot->delivery = results[0].delivery;
	g_async_queue_push(slot->answered, slot);
}

static gboolean
save_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	return mr_store_mailbox_save(store, data, error);
}

static gboolean
load_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	MrMailboxState *st = data;
	g_autoptr(GError) local = NULL;
	g_autoptr(MrMailboxState) found = mr_store_mailbox_get(store, st->name, &local);

	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (found != NULL) {
		st->uidvalidity = found->uidvalidity;
		st->last_uid = found->last_uid;
		st->backlog = found->backlog;
		st->inflight_to = found->inflight_to;
		st->inflight_tries = found->inflight_tries;
	}
	return TRUE;
}

typedef struct {
	const char *mailbox;
	gint64 uidvalidity, uid;
	const char *reason;
	gint64 size;
	GBytes *raw;
} MrImapQuarantine;

static gboolean
quarantine_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	const MrImapQuarantine *q = data;

	return mr_store_quarantine_add(store, q->mailbox, q->uidvalidity, q->uid, q->reason,
				       q->size, q->raw, error);
}

/* Keeps @raw of @uid (a message of @size bytes) in the quarantine
 * (durable when TRUE). */
static gboolean
watch_quarantine(MrImapWatch *w, guint32 uid, gint64 size, GBytes *raw, const char *reason,
		 GError **error)
{
	MrImapQuarantine q = { w->mb->name, w->st.uidvalidity, uid, reason, size, raw };

	if (!mr_writer_run_sync(w->writer, w->cfg, quarantine_work, &q, error))
		return FALSE;
	g_warning("mailbox %s: UID %u quarantined (%s): mailroomctl message list --quarantined",
		  w->mb->name, uid, reason);
	return TRUE;
}

/* Saves the thread's state; a failure is logged (the next save repeats
 * it; the position is never ahead of what is durable). */
static gboolean
watch_save(MrImapWatch *w)
{
	g_autoptr(GError) error = NULL;

	if (mr_writer_run_sync(w->writer, w->cfg, save_work, &w->st, &error))
		return TRUE;
	g_warning("mailbox %s: cannot save its state: %s", w->mb->name, error->message);
	return FALSE;
}

/* Moves to @state (with @why, nullable): one save per change, none when
 * nothing changed, and one log line per change of what the mailbox is
 * doing: the tries of a backoff ("connecting", then "backoff" with the
 * same reason) are not logged again. */
static void
watch_state(MrImapWatch *w, const char *state, const char *why)
{
	gboolean same = g_strcmp0(w->st.state, state) == 0 && g_strcmp0(w->st.last_error, why) == 0;
	gboolean retrying = strcmp(state, "connecting") == 0 &&
			    (g_strcmp0(w->st.state, "backoff") == 0 ||
			     g_strcmp0(w->st.state, "auth_failed") == 0);
	g_autofree char *line = g_strdup_printf("%s: %s", state, why != NULL ? why : "");

	if (same)
		return;
	if (!retrying && g_strcmp0(w->logged, line) != 0) {
		if (why != NULL && (strcmp(state, "backoff") == 0 || strcmp(state, "auth_failed") == 0))
			g_warning("mailbox %s: %s: %s", w->mb->name, state, why);
		else
			g_message("mailbox %s: %s", w->mb->name, state);
		g_free(w->logged);
		w->logged = g_steal_pointer(&line);
	}
	g_free(w->st.state);
	w->st.state = g_strdup(state);
	if (why != NULL || strcmp(state, "idle") == 0 || strcmp(state, "polling") == 0) {
		g_free(w->st.last_error);
		w->st.last_error = g_strdup(why);
	}
	g_mutex_lock(&w->lock);
	g_free(w->state);
	w->state = g_strdup(state);
	g_mutex_unlock(&w->lock);
	watch_save(w);
}

static gboolean
watch_stopping(MrImapWatch *w)
{
	return g_atomic_int_get(&w->stopping) != 0;
}

/* Takes the configuration of a reload that kept this mailbox as it was
 * (limits, addresses and routing may have changed). */
static void
watch_take_config(MrImapWatch *w)
{
	MrConfig *old = NULL;

	g_mutex_lock(&w->lock);
	if (w->next_cfg != NULL) {
		old = w->cfg;
		w->cfg = g_steal_pointer(&w->next_cfg);
		w->mb = mr_imap_config_find(w->cfg, w->mb->name);
	}
	g_mutex_unlock(&w->lock);
	if (old != NULL)
		mr_config_unref(old);
}

/* Makes durable, before a batch is fetched, that it is in flight: its
 * last UID @to, and @tries, the tries that started on it when it is one
 * message alone (0 for a batch).  A run that dies -- a message that
 * crashes the parser, say -- leaves the mark above last_uid; the next run
 * reads it (suspect_to) and stores those UIDs one by one, each marked.
 * So does a batch whose fetch failed, or whose message failed (no body,
 * a failed store): its UIDs go alone from the failing one on.  A message
 * that MR_IMAP_MAX_TRIES tries alone did not get past is quarantined
 * (see watch_set_aside()).  Without the mark such a message would stop
 * every run, or every session, and none would get past it; with it the
 * tries survive a restart. */
static gboolean
watch_mark(MrImapWatch *w, guint32 to, gint64 tries, GError **error)
{
	if (w->st.inflight_to == (gint64)to && w->st.inflight_tries == tries)
		return TRUE;
	w->st.inflight_to = to;
	w->st.inflight_tries = tries;
	return mr_writer_run_sync(w->writer, w->cfg, save_work, &w->st, error);
}

/* Quarantines @uid with @why, unparsed.  Its bytes, when a fetch got
 * them (@raw, nullable), or else fetched in parts into the spool, at most
 * @limit.  A whole copy gets the after action; one the server cut short,
 * or sent no bytes of, or that was over @limit stays on the server as it
 * is (its size says so: more than the bytes kept, and retry refuses it).
 * Returns FALSE with @error when it is not durable (and acted on). */
static gboolean
watch_set_aside(MrImapWatch *w, MrImapSession *s, const MrImapUid *uid, const char *why,
		GBytes *raw, gboolean complete, guint64 limit, GError **error)
{
	g_autoptr(GBytes) got = raw != NULL ? g_bytes_ref(raw) : NULL;
	g_autofree char *reason = NULL;
	gboolean whole;
	gsize len;

	if (got == NULL)
		got = mr_imap_session_fetch_spooled(s, uid->uid, w->cfg->spool_directory, limit,
						    &complete, error);
	if (got == NULL)
		return FALSE;
	len = g_bytes_get_size(got);
	whole = complete && len > 0;
	if (whole)
		reason = g_strdup(why);
	else if (len == 0)
		reason = g_strdup_printf("%s; no bytes of it kept: left on the server", why);
	else
		reason = g_strdup_printf("%s; only the first %" G_GSIZE_FORMAT " bytes kept: left on"
					 " the server", why, len);
	if (!watch_quarantine(w, uid->uid, whole ? (gint64)len : MAX((gint64)uid->size, (gint64)len + 1),
			      got, reason, error))
		return FALSE;
	return !whole || mr_imap_session_after(s, w->mb, uid, 1, error);
}

/* Records that message @uid failed a try alone, and why. */
static void
watch_failed(MrImapWatch *w, guint32 uid, const char *why)
{
	w->suspect_to = MAX(w->suspect_to, (gint64)uid);
	w->fail_uid = uid;
	g_free(w->fail_why);
	w->fail_why = g_strdup(why);
}

/* Why @uid, tried @tries times alone, goes to the quarantine. */
static char *
watch_tries_reason(MrImapWatch *w, guint32 uid, gint64 tries)
{
	if (w->fail_uid == uid && w->fail_why != NULL)
		return g_strdup_printf("failed %" G_GINT64_FORMAT " times: %s", tries, w->fail_why);
	return g_strdup_printf("mailroomd stopped %" G_GINT64_FORMAT " times while storing it"
			       " (a crash? see the logs); kept unparsed", tries);
}

/* A batch handed to the writer: the messages uids[first .. first + n - 1]
 * of the drain's list, and their answers. */
typedef struct {
	guint first, n;
	GPtrArray *raws;            /* GBytes* (NULL: the server sent none) */
	MrImapSlot *slots;
	guint submitted;
	GAsyncQueue *answered;
} MrImapBatch;

static void
batch_free(MrImapBatch *b)
{
	for (guint i = 0; i < b->n; i++)
		g_clear_error(&b->slots[i].error);
	g_free(b->slots);
	g_ptr_array_unref(b->raws);
	g_async_queue_unref(b->answered);
	g_free(b);
}

/* Hands the messages @raws (the batch @uids[@first ..]) to the writer;
 * returns at once.  One whose body the server did not send fails (it is
 * not passed by, see watch_land()). */
static MrImapBatch *
batch_submit(MrImapWatch *w, GArray *uids, guint first, GPtrArray *raws)
{
	g_autoptr(GPtrArray) recipients = g_ptr_array_new();
	MrImapBatch *b = g_new0(MrImapBatch, 1);

	b->first = first;
	b->n = raws->len;
	b->raws = g_ptr_array_ref(raws);
	b->slots = g_new0(MrImapSlot, raws->len);
	b->answered = g_async_queue_new();
	g_ptr_array_add(recipients, w->mb->address.address);
	for (guint i = 0; i < raws->len; i++) {
		GBytes *raw = g_ptr_array_index(raws, i);

		b->slots[i].answered = b->answered;
		if (raw == NULL) {
			g_set_error(&b->slots[i].error, MR_IMAP_ERROR, MR_IMAP_ERROR_NO_BODY,
				    "the server sent no body for UID %u",
				    g_array_index(uids, MrImapUid, first + i).uid);
			continue;
		}
		mr_writer_submit_full(w->writer, w->cfg, raw, NULL, recipients, NULL, imap_done,
				      &b->slots[i]);
		b->submitted++;
	}
	return b;
}

/* Waits for every answer of @b.  Returns how many of its messages, from
 * the first on, are durable (stored, or stored before); @error says why
 * the next one is not. */
static guint
batch_wait(MrImapBatch *b, GError **error)
{
	guint ok;

	for (; b->submitted > 0; b->submitted--)
		g_async_queue_pop(b->answered);
	for (ok = 0; ok < b->n && b->slots[ok].error == NULL; ok++)
		;
	if (ok < b->n)
		g_propagate_error(error, g_error_copy(b->slots[ok].error));
	return ok;
}

static void
save_async_done(gpointer data, const GError *error, gpointer user_data)
{
	const MrMailboxState *st = data;

	if (error != NULL)
		g_warning("mailbox %s: cannot save its state: %s", st->name, error->message);
}

/* Saves the thread's state without waiting: the writer runs units in the
 * order they come, so a later save never lands before an earlier one. */
static void
watch_save_async(MrImapWatch *w)
{
	MrMailboxState *copy = g_new0(MrMailboxState, 1);

	*copy = w->st;
	copy->name = g_strdup(w->st.name);
	copy->state = g_strdup(w->st.state);
	copy->last_error = g_strdup(w->st.last_error);
	copy->updated = NULL;
	mr_writer_run(w->writer, w->cfg, save_work, copy, (GDestroyNotify)mr_mailbox_state_free,
		      NULL, save_async_done, NULL);
}

/* How many messages from uids[@i] on go in one batch; 0 when uids[@i] is
 * over limits.max_message_size. */
static guint
batch_length(MrImapWatch *w, GArray *uids, guint i)
{
	const MrImapUid *u = &g_array_index(uids, MrImapUid, i);
	guint64 bytes = 0;
	guint n = 0;

	while (i + n < uids->len && n < MR_IMAP_BATCH_MESSAGES &&
	       (gint64)u[n].size <= w->cfg->limits.max_message_size &&
	       (n == 0 || bytes + u[n].size <= MR_IMAP_BATCH_BYTES))
		bytes += u[n++].size;
	return n;
}

/* Finishes the oldest batch in @flight: waits for its answers, gives the
 * durable ones the after action and records the new last UID.  A message
 * that failed (no body, or its store; not for a busy database, which
 * fails them all) and those after it go alone from then on (see
 * watch_mark()).  When not all of the batch is handled, the batches after
 * it are waited for and dropped (what they stored is found stored at the
 * next fetch), and *@restart is where to go on; FALSE with @error when
 * the drain cannot go on. */
static gboolean
watch_land(MrImapWatch *w, MrImapSession *s, GQueue *flight, GArray *uids, guint *restart,
	   GError **error)
{
	MrImapBatch *b = g_queue_pop_head(flight);
	const MrImapUid *batch = &g_array_index(uids, MrImapUid, b->first);
	g_autoptr(GError) failed = NULL;
	guint handled = batch_wait(b, &failed);
	gboolean ok = TRUE;

	if (failed != NULL && !g_error_matches(failed, MR_STORE_ERROR, MR_STORE_ERROR_BUSY)) {
		g_message("mailbox %s: UID %u failed (%s): it goes alone", w->mb->name,
			  batch[handled].uid, failed->message);
		watch_failed(w, batch[handled].uid, failed->message);
		g_clear_error(&failed);
	}
	if (handled > 0) {
		ok = mr_imap_session_after(s, w->mb, batch, handled, error);
		if (ok) {
			w->st.last_uid = batch[handled - 1].uid;
			w->st.backlog = uids->len - (b->first + handled);
			w->progress = TRUE;
			watch_save_async(w);
		}
	}
	if (ok && failed != NULL) {
		g_propagate_prefixed_error(error, g_steal_pointer(&failed), "storing UID %u: ",
					   batch[handled].uid);
		ok = FALSE;
	}
	if (!ok || handled < b->n) {
		MrImapBatch *rest;

		*restart = b->first + handled;
		while ((rest = g_queue_pop_head(flight)) != NULL) {
			batch_wait(rest, NULL);
			batch_free(rest);
		}
	}
	batch_free(b);
	return ok;
}

/* Finishes every batch in @flight (see watch_land()). */
static gboolean
watch_land_all(MrImapWatch *w, MrImapSession *s, GQueue *flight, GArray *uids, guint *restart,
	       GError **error)
{
	while (!g_queue_is_empty(flight)) {
		if (!watch_land(w, s, flight, uids, restart, error))
			return FALSE;
	}
	return TRUE;
}

/* Passes message uids[@i]: it is handled (stored, quarantined, or gone). */
static void
watch_pass(MrImapWatch *w, GArray *uids, guint i)
{
	w->st.last_uid = g_array_index(uids, MrImapUid, i).uid;
	w->st.backlog = uids->len - (i + 1);
	w->progress = TRUE;
	watch_save(w);
}

/* A try alone of message @uid (it failed before, see watch_mark()): in
 * parts, whatever size the server announced, up to one byte over
 * limits.max_message_size (*@complete FALSE: it is over).  Returns:
 * (transfer full) (nullable): its bytes, NULL when it is gone
 * (*@gone) or with @error when the try failed. */
static GBytes *
watch_fetch_alone(MrImapWatch *w, MrImapSession *s, guint32 uid, gboolean *complete,
		  gboolean *gone, GError **error)
{
	g_autoptr(GBytes) raw = mr_imap_session_fetch_spooled(
		s, uid, w->cfg->spool_directory, (guint64)w->cfg->limits.max_message_size + 1, complete,
		error);
	gboolean exists = TRUE;

	*gone = FALSE;
	if (raw == NULL || g_bytes_get_size(raw) > 0)
		return g_steal_pointer(&raw);
	if (!mr_imap_session_uid_exists(s, uid, &exists, error))
		return NULL;
	if (!exists) {
		*gone = TRUE; /* expunged meanwhile: nothing to store */
		return NULL;
	}
	g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_NO_BODY,
		    "the server sent no body for UID %u", uid);
	return NULL;
}

/* Stores every message of the selected folder above the last UID handled,
 * batch by batch: fetch, store (COMMIT), after action, new last UID.  Up
 * to MR_IMAP_IN_FLIGHT batches are in the writer's hands at once, so that
 * the next batch is fetched and parsed while one is stored.  Each batch
 * is marked in flight (durably) before it is fetched, MR_IMAP_MARK_AHEAD
 * batches per mark.  The UIDs of a batch that failed, and those a run
 * that died had in flight, go one at a time, alone, each try marked (see
 * watch_mark()); one that fails MR_IMAP_MAX_TRIES tries, or is over
 * limits.max_message_size, goes to the quarantine (watch_set_aside()). */
static gboolean
watch_drain_list(MrImapWatch *w, MrImapSession *s, gboolean *more, guint *listed,
		 GError **error)
{
	guint32 validity = s->imap->imap_selection_info->sel_uidvalidity;
	guint64 max = (guint64)w->cfg->limits.max_message_size;
	g_autoptr(GArray) uids = NULL;
	GQueue flight = G_QUEUE_INIT;
	gboolean ok = TRUE;
	guint i = 0;

	if ((guint32)w->st.uidvalidity != validity) {
		if (w->st.uidvalidity != 0)
			g_message("mailbox %s: UIDVALIDITY changed from %" G_GINT64_FORMAT
				  " to %u: reading the folder again (what was stored is not"
				  " stored twice)", w->mb->name, w->st.uidvalidity, validity);
		w->st.uidvalidity = validity;
		w->st.last_uid = 0;
		w->st.inflight_to = w->st.inflight_tries = 0;
		w->suspect_to = 0;
		w->fail_uid = 0;
	}
	uids = mr_imap_session_list_after(s, (guint32)w->st.last_uid, error);
	if (uids == NULL)
		return FALSE;
	*listed = uids->len;
	if (w->st.backlog != (gint64)uids->len) {
		w->st.backlog = uids->len;
		if (uids->len == 0)
			watch_save(w); /* else the batch's mark saves it */
	}
	while (ok && i < uids->len && !watch_stopping(w)) {
		const MrImapUid *batch = &g_array_index(uids, MrImapUid, i);
		gboolean suspect = (gint64)batch[0].uid <= w->suspect_to;
		gint64 tries = w->st.inflight_to == (gint64)batch[0].uid ? w->st.inflight_tries : 0;
		g_autofree char *why = NULL;
		g_autoptr(GPtrArray) raws = NULL;
		g_autoptr(GBytes) alone = NULL;
		gboolean complete = TRUE, gone = FALSE;
		guint64 limit = max + 1;
		guint n = 1, restart = G_MAXUINT;

		if ((gint64)batch[0].size > w->cfg->limits.max_message_size) {
			/* Too big to store: its first bytes, fetched in parts, go to
			 * the quarantine. */
			why = g_strdup_printf("%u bytes, over limits.max_message_size"
					      " (%" G_GINT64_FORMAT ")", batch[0].size,
					      w->cfg->limits.max_message_size);
			limit = MIN((guint64)batch[0].size, max);
		} else if (tries >= MR_IMAP_MAX_TRIES) {
			why = watch_tries_reason(w, batch[0].uid, tries);
		}
		if (why != NULL || suspect) {
			/* these go alone: what is in flight lands first */
			ok = watch_land_all(w, s, &flight, uids, &restart, error);
			if (ok && restart != G_MAXUINT) {
				i = restart;
				continue;
			}
			if (!ok)
				break;
		}
		if (why == NULL && suspect) {
			/* a try alone, counted before it starts */
			ok = watch_mark(w, batch[0].uid, tries + 1, error);
			if (!ok) {
				g_prefix_error(error, "marking UID %u in flight: ", batch[0].uid);
				break;
			}
			alone = watch_fetch_alone(w, s, batch[0].uid, &complete, &gone, error);
			if (gone) {
				watch_pass(w, uids, i++);
				continue;
			}
			if (alone == NULL) {
				watch_failed(w, batch[0].uid, (*error)->message);
				if (tries + 1 < MR_IMAP_MAX_TRIES ||
				    !g_error_matches(*error, MR_IMAP_ERROR, MR_IMAP_ERROR_NO_BODY)) {
					ok = FALSE;
					break;
				}
				/* the last try, and the session still works: at once */
				g_clear_error(error);
				why = watch_tries_reason(w, batch[0].uid, tries + 1);
				alone = g_bytes_new(NULL, 0);
			}
			if (!complete)
				why = g_strdup_printf("more than limits.max_message_size (%" G_GINT64_FORMAT
						      "), although the server announced %u bytes",
						      w->cfg->limits.max_message_size, batch[0].size);
		}
		if (why != NULL && alone == NULL) {
			/* Fetching its bytes for the quarantine is a try too, so that
			 * a server that cannot hand them over does not stop the
			 * mailbox: past the bound it is kept without them. */
			if (tries > MR_IMAP_MAX_TRIES) {
				g_autofree char *first = g_steal_pointer(&why);

				why = g_strdup_printf("%s; fetching it failed (%s)", first,
						      w->fail_uid == batch[0].uid && w->fail_why != NULL
							      ? w->fail_why : "in an earlier run");
				alone = g_bytes_new(NULL, 0);
			} else if (!watch_mark(w, batch[0].uid, tries + 1, error)) {
				g_prefix_error(error, "marking UID %u in flight: ", batch[0].uid);
				ok = FALSE;
				break;
			}
		}
		if (why != NULL) {
			ok = watch_set_aside(w, s, batch, why, alone, complete, limit, error);
			if (ok)
				watch_pass(w, uids, i++);
			else
				watch_failed(w, batch[0].uid, (*error)->message);
			continue;
		}
		if (alone != NULL) {
			raws = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
			g_ptr_array_add(raws, g_steal_pointer(&alone));
		} else {
			n = batch_length(w, uids, i);
			if ((gint64)batch[n - 1].uid > w->st.inflight_to) {
				/* A mark for this batch and the next ones: those
				 * listed, and the UIDs new mail will get (so that a
				 * message arriving in IDLE needs no mark of its own). */
				guint j = i + n, m;
				gint64 to = (gint64)batch[n - 1].uid +
					    MR_IMAP_MARK_AHEAD * MR_IMAP_BATCH_MESSAGES;

				for (guint k = 1; k < MR_IMAP_MARK_AHEAD && j < uids->len &&
						  (m = batch_length(w, uids, j)) > 0; k++)
					j += m;
				to = MAX(to, (gint64)g_array_index(uids, MrImapUid, j - 1).uid);
				ok = watch_mark(w, (guint32)MIN(to, (gint64)G_MAXUINT32), 0, error);
				if (!ok) {
					g_prefix_error(error, "marking the batch in flight: ");
					break;
				}
			}
			raws = mr_imap_session_fetch(s, batch, n, error);
			if (raws == NULL) {
				/* which one failed is not known: they go alone */
				w->suspect_to = MAX(w->suspect_to, (gint64)batch[n - 1].uid);
				ok = FALSE;
				break;
			}
		}
		g_queue_push_tail(&flight, batch_submit(w, uids, i, raws));
		i += n;
		if (suspect || g_queue_get_length(&flight) >= MR_IMAP_IN_FLIGHT) {
			ok = watch_land(w, s, &flight, uids, &restart, error);
			if (ok && restart != G_MAXUINT)
				i = restart; /* from the one that failed, alone */
		}
	}
	if (ok) {
		guint restart = G_MAXUINT;

		if (!watch_land_all(w, s, &flight, uids, &restart, error))
			return FALSE;
		*more = restart != G_MAXUINT; /* past one that failed */
		return TRUE;
	}
	{
		/* answers still owed are waited for: their slots are ours */
		MrImapBatch *rest;

		while ((rest = g_queue_pop_head(&flight)) != NULL) {
			batch_wait(rest, NULL);
			batch_free(rest);
		}
	}
	return FALSE;
}

/* The number of messages the server last announced for the folder. */
static guint32
selected_exists(MrImapSession *s)
{
	return s->imap->imap_selection_info != NULL ? s->imap->imap_selection_info->sel_exists : 0;
}

/* watch_drain_list() again until a list finds nothing and the server
 * announced no change while it ran.  New mail is announced (EXISTS) with
 * the answer to whatever command runs when it arrives; one announced with
 * the answer to a FETCH or STORE of the drain is not announced again in
 * IDLE, so without the last list it would wait for the next wake-up. */
static gboolean
watch_drain(MrImapWatch *w, MrImapSession *s, GError **error)
{
	gboolean more = TRUE;
	guint idle_changes = 0; /* lists in a row that found nothing, yet a change */

	while (more && !watch_stopping(w)) {
		guint32 exists = selected_exists(s);
		guint listed = 0;

		more = FALSE;
		if (!watch_drain_list(w, s, &more, &listed, error))
			return FALSE;
		if (listed > 0)
			idle_changes = 0;
		else if (selected_exists(s) != exists)
			idle_changes++;
		/* A server that announces a change at every command and then
		 * lists nothing new is not listed forever: IDLE tells the rest. */
		more = more || listed > 0 ||
		       (selected_exists(s) != exists && idle_changes <= MR_IMAP_RELISTS);
	}
	return TRUE;
}

/* One connection's life: select, drain, wait for more, until it fails or
 * the watch stops. */
static gboolean
watch_session(MrImapWatch *w, MrImapSession *s, GError **error)
{
	if (w->mb->after == MR_IMAP_AFTER_MOVE &&
	    !mr_imap_session_ensure_folder(s, w->mb->after_folder, error))
		return FALSE;
	if (!mr_imap_session_ensure_folder(s, w->mb->folder, error) ||
	    !mr_imap_session_select(s, w->mb->folder, error))
		return FALSE;
	/* From here on a stop waits for what is in hand (a drain) */
	g_atomic_int_set(&w->connecting, 0);
	if (watch_stopping(w))
		return TRUE;
	watch_state(w, "connected", NULL);
	while (!watch_stopping(w)) {
		watch_take_config(w);
		if (!watch_drain(w, s, error))
			return FALSE;
		if (watch_stopping(w))
			break;
		w->progress = TRUE; /* the folder is drained */
		if (s->has_idle) {
			watch_state(w, "idle", NULL);
			if (!mr_imap_session_idle(s, w->wake, &w->poke, MR_IMAP_IDLE_SECONDS, error))
				return FALSE;
		} else {
			int r;

			watch_state(w, "polling", NULL);
			mr_imap_wait_wake(w->wake, &w->poke, w->mb->poll_interval_s);
			if (watch_stopping(w))
				break;
			r = mailimap_noop(s->imap);
			if (r != MAILIMAP_NO_ERROR)
				return mr_imap_session_fail(s, r, "NOOP", error);
		}
	}
	return TRUE;
}

static gpointer
watch_thread(gpointer data)
{
	MrImapWatch *w = data;
	int backoff = 1;

	{
		g_autoptr(GError) error = NULL;

		if (!mr_writer_run_sync(w->writer, w->cfg, load_work, &w->st, &error))
			g_warning("mailbox %s: cannot read its state: %s", w->mb->name,
				  error->message);
		if (w->st.inflight_to > w->st.last_uid) {
			w->suspect_to = w->st.inflight_to;
			g_warning("mailbox %s: the last run stopped while storing UIDs %" G_GINT64_FORMAT
				  " to %" G_GINT64_FORMAT ": storing them one by one",
				  w->mb->name, w->st.last_uid + 1, w->st.inflight_to);
		}
	}
	while (!watch_stopping(w)) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrImapSession) s = NULL;

		watch_state(w, "connecting", NULL);
		/* nothing in hand until the folder is open (a server that
		 * never answers SELECT too): a stop cancels it at once */
		g_atomic_int_set(&w->connecting, 1);
		if (!watch_stopping(w))
			s = mr_imap_session_open(w->mb, w->io, &error);
		if (s != NULL && watch_session(w, s, &error)) {
			g_atomic_int_set(&w->connecting, 0);
			mailimap_logout(s->imap);
			break; /* stopping */
		}
		g_atomic_int_set(&w->connecting, 0);
		if (watch_stopping(w))
			break;
		/* The backoff grows until the mailbox makes progress, not
		 * merely logs in: a server that fails every session after
		 * the login is not logged into every second. */
		if (w->progress)
			backoff = 1;
		w->progress = FALSE;
		watch_state(w, g_error_matches(error, MR_IMAP_ERROR, MR_IMAP_ERROR_AUTH)
				       ? "auth_failed" : "backoff",
			    error->message);
		mr_imap_wait_wake(w->wake, &w->poke, backoff);
		backoff = MIN(backoff * 2, w->mb->reconnect_max_s);
	}
	if (w->suspect_to <= w->st.last_uid) {
		/* nothing in flight and nothing failed: a clean mark, so the
		 * next run does not take this one for a death */
		w->st.inflight_to = w->st.last_uid;
		w->st.inflight_tries = 0;
	}
	watch_state(w, "stopped", NULL);
	g_atomic_int_set(&w->finished, 1);
	return NULL;
}

/* A watch of @mb, without its thread. */
static MrImapWatch *
watch_new(MrWriter *writer, MrConfig *cfg, const MrImapMailbox *mb)
{
	MrImapWatch *w = g_new0(MrImapWatch, 1);

	w->writer = writer;
	w->cfg = mr_config_ref(cfg);
	w->mb = mb;
	w->main_cfg = mr_config_ref(cfg);
	w->main_mb = mb;
	w->wake = g_cancellable_new();
	g_mutex_init(&w->poke.lock);
	w->io = g_cancellable_new();
	w->st.name = g_strdup(mb->name);
	g_mutex_init(&w->lock);
	return w;
}

static MrImapWatch *
watch_start(MrWriter *writer, MrConfig *cfg, const MrImapMailbox *mb)
{
	MrImapWatch *w = watch_new(writer, cfg, mb);
	g_autofree char *name = g_strdup_printf("imap-%s", mb->name);

	w->thread = g_thread_new(name, watch_thread, w);
	return w;
}

/* Asks @w to finish what it has in hand and stop; one that is still
 * connecting (or logging in) has nothing in hand and stops at once. */
static void
watch_drain_request(MrImapWatch *w)
{
	g_atomic_int_set(&w->stopping, 1);
	g_cancellable_cancel(w->wake);
	mr_imap_poke_send(&w->poke);
	if (g_atomic_int_get(&w->connecting))
		g_cancellable_cancel(w->io);
}

/* Stops @w now (its I/O is cancelled) and frees it. */
static void
watch_free(MrImapWatch *w)
{
	watch_drain_request(w);
	if (!g_atomic_int_get(&w->finished))
		g_cancellable_cancel(w->io);
	if (w->thread != NULL)
		g_thread_join(w->thread);
	g_free(w->fail_why);
	g_free(w->logged);
	g_object_unref(w->wake);
	g_mutex_clear(&w->poke.lock);
	g_object_unref(w->io);
	mr_config_unref(w->cfg);
	if (w->next_cfg != NULL)
		mr_config_unref(w->next_cfg);
	mr_config_unref(w->main_cfg);
	g_free(w->st.name);
	g_free(w->st.state);
	g_free(w->st.last_error);
	g_free(w->state);
	g_mutex_clear(&w->lock);
	g_free(w);
}

/* --- the service ------------------------------------------------------------------ */

struct _MrImapService {
	MrWriter *writer;
	MrConfig *cfg;      /* the latest configuration (ref) */
	GPtrArray *watches; /* MrImapWatch*: the running ones */
	GPtrArray *retired; /* MrImapWatch*: asked to stop, not yet joined */
	guint reaper;       /* a timer that joins retired watches, while there
			       are any */
	gboolean draining;  /* no more starts */
};

static gboolean
watch_named(GPtrArray *watches, const char *name)
{
	for (guint k = 0; k < watches->len; k++) {
		if (strcmp(((MrImapWatch *)g_ptr_array_index(watches, k))->main_mb->name, name) == 0)
			return TRUE;
	}
	return FALSE;
}

/* Starts a watch for each mailbox of the configuration that has none.
 * One thread owns a mailbox's row at a time: a changed mailbox starts
 * again only once its old thread, retired, has ended (and saved its
 * state last). */
static void
start_missing(MrImapService *svc)
{
	GPtrArray *mailboxes = mr_imap_config(svc->cfg);

	for (guint i = 0; mailboxes != NULL && i < mailboxes->len && !svc->draining; i++) {
		const MrImapMailbox *mb = g_ptr_array_index(mailboxes, i);

		if (!watch_named(svc->watches, mb->name) && !watch_named(svc->retired, mb->name))
			g_ptr_array_add(svc->watches, watch_start(svc->writer, svc->cfg, mb));
	}
}

static gboolean
reap_retired(gpointer data)
{
	MrImapService *svc = data;
	gboolean reaped = FALSE;

	for (guint i = 0; i < svc->retired->len;) {
		MrImapWatch *w = g_ptr_array_index(svc->retired, i);

		if (g_atomic_int_get(&w->finished)) {
			g_ptr_array_remove_index_fast(svc->retired, i); /* frees (joins) it */
			reaped = TRUE;
		} else {
			i++;
		}
	}
	if (reaped)
		start_missing(svc);
	if (svc->retired->len > 0)
		return G_SOURCE_CONTINUE;
	svc->reaper = 0; /* nothing to wait for: no timer while idle */
	return G_SOURCE_REMOVE;
}

static gpointer
imap_start(MrConfig *cfg, MrWriter *writer, GError **error)
{
	MrImapService *svc = g_new0(MrImapService, 1);

	svc->writer = writer;
	svc->cfg = mr_config_ref(cfg);
	svc->watches = g_ptr_array_new_with_free_func((GDestroyNotify)watch_free);
	svc->retired = g_ptr_array_new_with_free_func((GDestroyNotify)watch_free);
	start_missing(svc);
	return svc;
}

static void
imap_reload(gpointer self, const MrConfig *old, MrConfig *cfg)
{
	MrImapService *svc = self;
	g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func((GDestroyNotify)watch_free);

	/* Mailboxes gone or changed stop (finishing what they have in hand);
	 * unchanged ones keep their connection; new and changed ones start. */
	for (guint i = 0; i < svc->watches->len; i++) {
		MrImapWatch *w = g_ptr_array_index(svc->watches, i);
		const MrImapMailbox *now = mr_imap_config_find(cfg, w->main_mb->name);

		if (now != NULL && mr_imap_mailbox_equal(now, w->main_mb)) {
			mr_config_unref(w->main_cfg);
			w->main_cfg = mr_config_ref(cfg);
			w->main_mb = now;
			g_mutex_lock(&w->lock);
			if (w->next_cfg != NULL)
				mr_config_unref(w->next_cfg);
			w->next_cfg = mr_config_ref(cfg);
			g_mutex_unlock(&w->lock);
			mr_imap_poke_send(&w->poke); /* out of IDLE: the next batch uses it */
			g_ptr_array_add(keep, w);
			continue;
		}
		g_message("mailbox %s: %s", w->main_mb->name,
			  now == NULL ? "removed from the configuration: stopping"
				      : "changed: reconnecting");
		watch_drain_request(w);
		g_ptr_array_add(svc->retired, w);
	}
	if (svc->retired->len > 0 && svc->reaper == 0)
		svc->reaper = g_timeout_add(200, reap_retired, svc);
	g_free(g_ptr_array_steal(svc->watches, NULL)); /* moved to keep or retired */
	g_ptr_array_unref(svc->watches);
	svc->watches = g_steal_pointer(&keep);
	mr_config_unref(svc->cfg);
	svc->cfg = mr_config_ref(cfg);
	start_missing(svc); /* a changed one: once its old thread ended */
}

static void
imap_drain(gpointer self)
{
	MrImapService *svc = self;

	svc->draining = TRUE;
	for (guint i = 0; i < svc->watches->len; i++)
		watch_drain_request(g_ptr_array_index(svc->watches, i));
}

static guint
imap_busy(gpointer self)
{
	MrImapService *svc = self;
	guint n = 0;

	for (guint i = 0; i < svc->watches->len; i++)
		n += !g_atomic_int_get(&((MrImapWatch *)g_ptr_array_index(svc->watches, i))->finished);
	for (guint i = 0; i < svc->retired->len; i++)
		n += !g_atomic_int_get(&((MrImapWatch *)g_ptr_array_index(svc->retired, i))->finished);
	return n;
}

static char *
imap_describe(gpointer self)
{
	MrImapService *svc = self;
	g_autoptr(GString) out = g_string_new(svc->watches->len > 0 ? "imap" : "");

	for (guint i = 0; i < svc->watches->len; i++) {
		const MrImapMailbox *mb = ((MrImapWatch *)g_ptr_array_index(svc->watches, i))->main_mb;

		g_string_append_printf(out, "%s%s (%s:%d %s)", i == 0 ? " " : ", ", mb->name,
				       mb->remote.host, mb->remote.port, mb->folder);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static char *
imap_status(gpointer self)
{
	MrImapService *svc = self;
	guint up = 0;

	for (guint i = 0; i < svc->watches->len; i++) {
		MrImapWatch *w = g_ptr_array_index(svc->watches, i);

		g_mutex_lock(&w->lock);
		up += g_strcmp0(w->state, "idle") == 0 || g_strcmp0(w->state, "polling") == 0 ||
		      g_strcmp0(w->state, "connected") == 0;
		g_mutex_unlock(&w->lock);
	}
	return g_strdup_printf("%u/%u mailboxes connected", up, svc->watches->len);
}

static void
imap_stop(gpointer self)
{
	MrImapService *svc = self;

	if (svc == NULL)
		return;
	if (svc->reaper != 0)
		g_source_remove(svc->reaper);
	g_ptr_array_unref(svc->watches);
	g_ptr_array_unref(svc->retired);
	mr_config_unref(svc->cfg);
	g_free(svc);
}

const MrServiceClass mr_imap_service = {
	.name = "imap",
	.start_failure_exit = 75,
	.start = imap_start,
	.reload = imap_reload,
	.drain = imap_drain,
	.busy = imap_busy,
	.describe = imap_describe,
	.status = imap_status,
	.stop = imap_stop,
};

/* --- one session over a given stream (tests, fuzzing) ---------------------------- */

gboolean
mr_imap_run_stream(MrWriter *writer, MrConfig *cfg, const MrImapMailbox *mb, GIOStream *stream,
		   GError **error)
{
	MrImapWatch *w = watch_new(writer, cfg, mb);
	MrNetConn *c = mr_net_conn_new_for_stream(G_LOG_DOMAIN, mb->remote.timeout_s, stream);
	g_autoptr(MrImapSession) s = NULL;
	g_autoptr(GError) local = NULL; /* the session reads its errors: never NULL */
	gboolean ok = FALSE;

	/* no waits: IDLE, polling and backoff end at once, and the session
	 * goes on until the stream ends (every turn reads from it) */
	g_cancellable_cancel(w->wake);
	s = mr_imap_session_start(mr_imap_session_new(c), mb, &local);
	if (s != NULL && watch_session(w, s, &local)) {
		mailimap_logout(s->imap);
		ok = TRUE;
	}
	g_clear_pointer(&s, mr_imap_session_free);
	watch_free(w);
	if (!ok && local != NULL)
		g_propagate_error(error, g_steal_pointer(&local));
	return ok;
}
