/* mr-store-outgoing.h - stage 4: the store's side of outgoing mail
 * (issue 23): jobs with their leases, the outbox, templates, the
 * undeliverable mark of a contact, and the notification that tells
 * other processes new work is there.
 *
 * Row-level primitives that decide nothing: when a job runs, what a mail
 * says and whether it may go are the act layer's questions (src/act/).
 * Claims are made in the database, so that several daemons on one
 * database never take the same job or mail: a claim marks the rows with a
 * lease (claimed_until) and a claim id, in one statement that skips rows
 * another transaction holds (PostgreSQL's FOR UPDATE SKIP LOCKED; SQLite
 * has one writer); a row whose lease ran out (its daemon died) can be
 * claimed again.  A result is recorded only while the claim still holds.
 * Times are UTC ISO-8601 text (mr_clock_now_iso()), compared as text. */
#pragma once

#include <glib.h>

#include "mailroom/mr-record.h"
#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* --- work for other processes --------------------------------------------- */

/* Tells whoever watches the database (mr_store_watch_start()) that new
 * work is there, when the transaction commits: NOTIFY on PostgreSQL,
 * nothing on SQLite (whose watchers see any commit).  Once per
 * transaction; a savepoint rolled back forgets it. */
gboolean mr_store_notify_work(MrStore *store, GError **error);

/* Makes @store (a connection of its own, outside any transaction) a
 * watcher of other connections' work: LISTEN on PostgreSQL; on SQLite the
 * first reading of PRAGMA data_version and an inotify watch on the
 * database file and its WAL.  Returns FALSE with @error. */
gboolean mr_store_watch_start(MrStore *store, GError **error);

/* Returns the descriptor that turns readable when a notification may have
 * come (PostgreSQL), or the database was written (SQLite: inotify), or -1
 * when the watcher must be asked once a second instead (SQLite without
 * inotify). */
int mr_store_watch_fd(MrStore *store);

/* Returns TRUE when another connection committed work since the last
 * call (PostgreSQL: a notification came; SQLite: data_version moved),
 * FALSE when not, or FALSE with @error when the connection failed. */
gboolean mr_store_watch_changed(MrStore *store, GError **error);

/* --- jobs -------------------------------------------------------------------- */

/* A job's states (job.status). */
#define MR_JOB_DUE "due"
#define MR_JOB_RUNNING "running"
#define MR_JOB_DONE "done"
#define MR_JOB_FAILED "failed"
#define MR_JOB_CANCELLED "cancelled"

/* The kinds of job. */
#define MR_JOB_TICKET_ACK "ticket-ack" /* acknowledge a new ticket: its
					  record and message */

/* Inserts a job of @kind due at @due with @payload (nullable), about
 * @record (MR_RECORD_NONE: none) and message @message (0: none), at @now.
 * Returns its id, or 0 with @error. */
gint64 mr_store_job_insert(MrStore *store, const char *kind, const char *due,
			   const char *payload, MrRecordRef record, gint64 message,
			   const char *now, GError **error);

/* A job claimed for running. */
typedef struct {
	gint64 id;
	char *kind;
	char *payload;      /* (nullable) */
	MrRecordRef record; /* MR_RECORD_NONE: none */
	gint64 message;     /* 0: none */
	gint64 attempts;    /* this run included */
	/* a workflow's timer (MR_JOB_WORKFLOW, mr-store-workflow.h) */
	gint64 workflow;    /* 0: none (or the workflow was deleted) */
	char *started;      /* (nullable) when its event happened */
	int round;          /* the firings before it */
	int depth;          /* the workflows that acted before its event */
} MrJobClaimed;

void mr_job_claimed_free(MrJobClaimed *job);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrJobClaimed, mr_job_claimed_free)

/* Claims at most @limit jobs due at @now, oldest due first, and at most
 * @limit whose lease ran out: each is "running" until @lease_until under the claim @claim,
 * its attempts counted.  Returns: (transfer full) (element-type
 * MrJobClaimed): the jobs (maybe none), or NULL with @error. */
GPtrArray *mr_store_jobs_claim(MrStore *store, const char *now, const char *lease_until,
			       const char *claim, gint64 limit, GError **error);

/* Ends the run of job @id under claim @claim: @status (MR_JOB_DONE,
 * MR_JOB_FAILED, or MR_JOB_DUE again at @due for another attempt) with
 * @last_error (nullable).  Sets @ours (nullable) FALSE when the claim no
 * longer held (nothing written).  Returns FALSE with @error. */
gboolean mr_store_job_finish(MrStore *store, gint64 id, const char *claim, const char *status,
			     const char *last_error, const char *due, const char *now,
			     gboolean *ours, GError **error);

/* Ends the run of every job still under claim @claim: MR_JOB_DONE.  Sets
 * @count to how many it ended (fewer than claimed when a lease ran out
 * and another took a job over).  Returns FALSE with @error. */
gboolean mr_store_jobs_finish_claim(MrStore *store, const char *claim, const char *now,
				    guint *count, GError **error);

/* Returns: (transfer full) (nullable): when the next job falls due (a due
 * time, or the end of a running job's lease), or NULL when none waits or
 * the look-up failed (see mr_store_check()). */
char *mr_store_jobs_next_due(MrStore *store);

/* `job list --json`: {id kind due status attempts record}, with the last
 * error and a timer's workflow. */
typedef struct {
	gint64 id;
	char *kind;
	char *due;
	char *status;
	gint64 attempts;
	MrRecordRef record;
	char *last_error;
	char *workflow;     /* (nullable) a timer's workflow */
} MrJobRow;

MR_ROW_DECLARE(MrJobRow, mr_job_row_desc, mr_job_row_free)

/* Returns: (transfer full) (element-type MrJobRow): the jobs, by due time,
 * at most @limit (<= 0: all); with @pending only those due or running.
 * NULL with @error. */
GPtrArray *mr_store_jobs(MrStore *store, gboolean pending, gint64 limit, GError **error);

/* Returns: (transfer full): job @id, or NULL with @error
 * (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrJobRow *mr_store_job_get(MrStore *store, gint64 id, GError **error);

/* Cancels job @id at @now when it is due or failed (a running one is its
 * daemon's to end).  Returns TRUE when it changed; FALSE without @error
 * when it is in another state (or there is no such job); FALSE with
 * @error. */
gboolean mr_store_job_cancel(MrStore *store, gint64 id, const char *now, GError **error);

/* --- the outbox ------------------------------------------------------------ */

/* An outgoing mail's states (outbox.status). */
#define MR_OUTBOX_QUEUED "queued"
#define MR_OUTBOX_SENDING "sending"
#define MR_OUTBOX_SENT "sent"
#define MR_OUTBOX_FAILED "failed"
#define MR_OUTBOX_CANCELLED "cancelled"
#define MR_OUTBOX_BOUNCED "bounced"

/* An outgoing mail as it is stored and queued. */
typedef struct {
	GBytes *raw;         /* its bytes */
	const char *key;     /* their content key (mr_ingest_content_key()) */
	const MrMessage *msg; /* the bytes parsed, as the message is stored */
	const char *token;   /* the secret of its VERP envelope sender */
	const char *recipient;
	gint64 contact;      /* the contact it goes to, or 0 and ... */
	gint64 user;         /* ... the user of ours it goes to */
	MrRecordRef record;  /* the record it is about */
	gboolean automatic;  /* an automatic mail (the daily limit counts it) */
} MrOutgoingNew;

/* Stores @mail as a message with direction "out", linked to its record
 * and contact (or user), and queues it, due at once, at @now.  Nothing waits for
 * the database: the rows find the message by its content key, and a
 * failure (a message with these bytes stored already: every outgoing
 * mail has a Message-ID of its own) is reported by the next statement
 * waited for -- with @need_id, the insert of the outbox entry.  Returns
 * the entry's id with @need_id, else 1; 0 with @error. */
gint64 mr_store_outgoing_queue(MrStore *store, const MrOutgoingNew *mail, const char *now,
			       gboolean need_id, GError **error);

/* A mail claimed for sending. */
typedef struct {
	gint64 id;
	gint64 message;
	char *token;
	char *recipient;
	gint64 attempts; /* this one included */
	GBytes *raw;     /* the message's bytes */
	MrRecordRef record; /* MR_RECORD_NONE: none */
} MrOutboxClaimed;

void mr_outbox_claimed_free(MrOutboxClaimed *mail);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrOutboxClaimed, mr_outbox_claimed_free)

/* Claims at most @limit mails due at @now, in the order of their next
 * attempt, and at most @limit whose lease ran out: each is "sending" until @lease_until under
 * @claim, its attempts counted, read with its bytes.  Returns: (transfer
 * full) (element-type MrOutboxClaimed): the mails (maybe none), or NULL
 * with @error. */
GPtrArray *mr_store_outbox_claim(MrStore *store, const char *now, const char *lease_until,
				 const char *claim, gint64 limit, GError **error);

/* Records what became of mail @id under claim @claim: @status
 * (MR_OUTBOX_SENT with @sent, the time; MR_OUTBOX_QUEUED again at
 * @next_attempt; MR_OUTBOX_FAILED) and @last_error (nullable);
 * @unsent: it was not tried after all (a stop), so the attempt its claim
 * counted is taken back.  Sets @ours (nullable) FALSE when the claim no
 * longer held: nothing is written.  Returns FALSE with @error. */
gboolean mr_store_outbox_result(MrStore *store, gint64 id, const char *claim, const char *status,
				const char *last_error, const char *next_attempt,
				const char *sent, gboolean unsent, const char *now, gboolean *ours,
				GError **error);

/* Records every mail still "sending" under claim @claim as sent at @now
 * (the others' results recorded first, with mr_store_outbox_result()).
 * Sets @count to how many it recorded.  Returns FALSE with @error. */
gboolean mr_store_outbox_sent_claim(MrStore *store, const char *claim, const char *now,
				    guint *count, GError **error);

/* Returns: (transfer full) (nullable): when the next mail falls due (its
 * next attempt, or the end of a lease), or NULL when none waits. */
char *mr_store_outbox_next_due(MrStore *store);

/* For each of the @n automatic mails to @recipients[i] (contact
 * @contacts[i], 0: none), sets @counts[i] to the number of automatic mails
 * queued for that recipient since @since (cancelled ones left out), and
 * @undeliverable[i] (transfer full, nullable) to the contact's mark as it
 * is now: one look-up for a batch of automatic mails, before they are
 * queued (MR_STORE_SLOTS recipients a round trip).  Returns FALSE with
 * @error. */
gboolean mr_store_outbox_auto_counts(MrStore *store, const char *since,
				     const char *const *recipients, const gint64 *contacts,
				     guint n, gint64 *counts, char **undeliverable,
				     GError **error);
/* `outbox list --json`: {id to subject status attempts next_attempt
 * last_error record message_id}. */
typedef struct {
	gint64 id;
	char *to;
	char *subject;
	char *status;
	gint64 attempts;
	char *next_attempt;  /* NULL unless queued */
	char *last_error;
	MrRecordRef record;
	char *message_id;
	char *created;
	char *sent;
	gboolean automatic;
	char *bounce_status;
} MrOutboxRow;

MR_ROW_DECLARE(MrOutboxRow, mr_outbox_row_desc, mr_outbox_row_free)

/* Returns: (transfer full) (element-type MrOutboxRow): the outbox, oldest
 * first, at most @limit (<= 0: all), only @status (nullable: any), or
 * NULL with @error. */
GPtrArray *mr_store_outbox(MrStore *store, const char *status, gint64 limit, GError **error);

/* Returns: (transfer full): outgoing mail @id, or NULL with @error
 * (MR_STORE_ERROR_NOT_FOUND). */
MrOutboxRow *mr_store_outbox_get(MrStore *store, gint64 id, GError **error);

/* Sets mail @id to @status at @now when it is in one of @from
 * (NULL-terminated, one to four states), due at once; attempts start
 * again when @status is queued.  Returns TRUE when it changed; FALSE
 * without @error when it is not in one of @from (or there is no such
 * mail); FALSE with @error. */
gboolean mr_store_outbox_set_status(MrStore *store, gint64 id, const char *status,
				    const char *const *from, const char *now, GError **error);

/* An outgoing mail as a delivery report about it is checked against. */
typedef struct {
	char *token;
	char *recipient;
	char *status;
	gint64 contact;      /* 0: none */
	MrRecordRef record;  /* MR_RECORD_NONE: none */
	gint64 message;      /* the stored message */
	char *message_id;    /* its Message-ID, without <> */
} MrOutboxSent;

void mr_outbox_sent_free(MrOutboxSent *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrOutboxSent, mr_outbox_sent_free)

/* Returns: (transfer full) (nullable): outgoing mail @id, or NULL when
 * there is none (or the look-up failed: mr_store_check()). */
MrOutboxSent *mr_store_outbox_for_bounce(MrStore *store, gint64 id);

/* Mail @id bounced with @status ("5.1.1", nullable) and @text (nullable),
 * at @now. */
gboolean mr_store_outbox_bounced(MrStore *store, gint64 id, const char *status,
				 const char *text, const char *now, GError **error);

/* Marks contact @contact undeliverable with @why (NULL: clears it). */
gboolean mr_store_contact_mark(MrStore *store, gint64 contact, const char *why,
			       GError **error);

/* --- templates -------------------------------------------------------------- */

/* `template list --json`: {name subject}; show adds the body. */
typedef struct {
	gint64 id;
	char *name;
	char *subject;
	char *body;
	char *created;
	char *updated;
} MrTemplateRow;

MR_ROW_DECLARE(MrTemplateRow, mr_template_row_desc, mr_template_row_free)

/* Inserts template @name, or -- @replace -- changes the one of that name.
 * Returns its id; 0 without @error when the name is taken and not
 * @replace; 0 with @error. */
gint64 mr_store_template_put(MrStore *store, const char *name, const char *subject,
			     const char *body, gboolean replace, const char *now,
			     GError **error);

/* Returns: (transfer full): template @name, or NULL with @error
 * (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrTemplateRow *mr_store_template_get(MrStore *store, const char *name, GError **error);

/* Returns: (transfer full) (element-type MrTemplateRow): every template by
 * name, or NULL with @error. */
GPtrArray *mr_store_templates(MrStore *store, GError **error);

/* Deletes template @name.  Returns TRUE when it was there; FALSE without
 * @error when not; FALSE with @error. */
gboolean mr_store_template_delete(MrStore *store, const char *name, GError **error);

/* --- what a mail about a record needs ------------------------------------- */

/* Sends the look-ups of one outgoing mail ahead, together: record @ref
 * (mr_store_record_mail()), message @message (mr_store_message_thread();
 * 0: none) and template @template_name (mr_store_template_get();
 * nullable: none), so that on PostgreSQL they cost one round trip.  Each
 * of those calls with the same arguments then reads what was sent;
 * mr_store_outgoing_ahead_drop() forgets what was not read.  Returns
 * FALSE with @error. */
gboolean mr_store_outgoing_ahead(MrStore *store, MrRecordRef ref, gint64 message,
				 const char *template_name, GError **error);

/* Drops the look-ups mr_store_outgoing_ahead() sent that were not read. */
void mr_store_outgoing_ahead_drop(MrStore *store);

/* A record with its contact and owner, as outgoing mail names them. */
typedef struct {
	char *subject;            /* its title or subject */
	char *status;
	gint64 contact;           /* 0: none */
	char *contact_email;
	char *contact_name;
	char *undeliverable;      /* (nullable): why the contact gets no
	                             automatic mail */
	char *owner_email;
	char *owner_name;
} MrRecordMail;

void mr_record_mail_free(MrRecordMail *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRecordMail, mr_record_mail_free)

/* Returns: (transfer full): record @ref with its contact and owner, or
 * NULL with @error (MR_STORE_ERROR_NOT_FOUND). */
MrRecordMail *mr_store_record_mail(MrStore *store, MrRecordRef ref, GError **error);

/* The Message-ID (without <>, nullable), In-Reply-To (nullable) and
 * normalised subject (without Re:, Fwd: ...) of stored message @id;
 * FALSE with @error when there is none. */
gboolean mr_store_message_thread(MrStore *store, gint64 id, char **message_id,
				 char **in_reply_to, char **subject, GError **error);

/* Looks up the user known by @address: sets @email and @name (transfer
 * full, @name nullable).  Returns the user's id, or 0 when there is
 * none. */
gint64 mr_store_user_mailbox(MrStore *store, const char *address, char **email, char **name);

/* Returns the last incoming message linked to record @ref, or 0. */
gint64 mr_store_record_last_in(MrStore *store, MrRecordRef ref);

/* Marks contact @email undeliverable with @why (NULL: clears the mark).
 * Returns TRUE when there is such a contact; FALSE without @error when
 * not; FALSE with @error. */
gboolean mr_store_contact_set_undeliverable(MrStore *store, const char *email, const char *why,
					    GError **error);

G_END_DECLS
