/* mr-store.h - stage 4: the store (the only module that speaks SQL, through
 * the driver of its database engine: SQLite or PostgreSQL).
 *
 * One MrStore is one connection.  Writers bracket their work with
 * mr_store_begin()/mr_store_commit(); readers (mailroomctl) read through the
 * same handle while the daemon writes (WAL).  Queries answer with structs;
 * the CLI makes tables and JSON of them. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-event.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-plan.h"
#include "mailroom/mr-row.h"

G_BEGIN_DECLS

typedef struct _MrStore MrStore;

/* Opens (creating when missing) the database named in @cfg, sets WAL,
 * synchronous and busy timeout from @cfg, and migrates the schema forward.
 * @cfg must outlive the store.  Returns: (transfer full) (nullable): the
 * store, or NULL with @error set (MR_STORE_ERROR_OPEN or _BUSY). */
MrStore *mr_store_open(const MrConfig *cfg, GError **error);

/* Opens the database named in @cfg like mr_store_open(), but never creates
 * one: for the CLI's verbs that only read (a mistyped path is an error,
 * not a new empty database).  Returns: (transfer full) (nullable): the
 * store, or NULL with @error (MR_STORE_ERROR_NOT_FOUND when it does not
 * exist). */
MrStore *mr_store_open_existing(const MrConfig *cfg, GError **error);

/* Closes @store; rolls back an open transaction.  NULL-safe. */
void mr_store_close(MrStore *store);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrStore, mr_store_close)

/* Makes @cfg (borrowed; must outlive its use) the configuration the store
 * formats ids and decides freemail with, after a reload. */
void mr_store_set_config(MrStore *store, const MrConfig *cfg);

/* Returns: (transfer full): the database of @cfg as logs and output may
 * show it, its secrets "***": masked by its driver (for PostgreSQL, the
 * URI as libpq parses it, PQconninfoParse), or, when the driver cannot be
 * loaded or cannot parse it, with the password of user:password@ and the
 * whole query string hidden. */
char *mr_store_database_name(const MrConfig *cfg);

/* Returns the schema version the database is at. */
int mr_store_schema_version(MrStore *store);

/* Begins a transaction and takes the write lock now where the engine has
 * one (SQLite: BEGIN IMMEDIATE), so that what routing reads cannot change
 * before the plan is applied.  Returns FALSE with @error
 * (MR_STORE_ERROR_BUSY when locked past the busy timeout). */
gboolean mr_store_begin(MrStore *store, GError **error);

/* COMMIT.  Only after TRUE is the work durable. */
gboolean mr_store_commit(MrStore *store, GError **error);

/* ROLLBACK, if a transaction is open; forgets a failed look-up (see
 * mr_store_check()), whose answer concerned the work undone. */
void mr_store_rollback(MrStore *store);

/* Returns: TRUE while a transaction is open.  After an error, FALSE means
 * the database ended it on its own (SQLite rolls back on SQLITE_FULL, I/O
 * errors and out of memory): everything since mr_store_begin() is gone,
 * and a statement run now would commit on its own. */
gboolean mr_store_in_transaction(MrStore *store);

/* SAVEPOINT inside the open transaction: one message of a group commit,
 * so that a failing message can be undone without the others. */
gboolean mr_store_savepoint(MrStore *store, GError **error);

/* RELEASE the savepoint: the message's work joins the transaction. */
gboolean mr_store_release(MrStore *store, GError **error);

/* RELEASE the savepoint as mr_store_release() does, but on PostgreSQL
 * without waiting for the answer: the release, and the inserts held back
 * before it, go to the server with the next message's first look-up, so
 * that a message of a group commit costs one round trip.  Until the next
 * mr_store_settle() the message's work may still turn out to have failed:
 * then the store undoes it (to its savepoint) and sets *@failure, which
 * must be NULL and stay valid until then.  Returns FALSE with @error when
 * it failed at once. */
gboolean mr_store_release_later(MrStore *store, GError **failure, GError **error);

/* Learns how the message released with mr_store_release_later() ended,
 * waiting for it if needed.  Returns TRUE when it joined the transaction
 * (or none waited); FALSE when its work failed: it is undone, its
 * *failure set, and the transaction stays open -- and everything sent
 * after its release was skipped by the server (the next message, whose
 * failure is then no failure of its own: mr_ingest_apply() does it
 * again).  mr_store_commit() settles first; so must the caller before any
 * other work in the transaction. */
gboolean mr_store_settle(MrStore *store);

/* ROLLBACK TO and RELEASE the savepoint: the message's work is undone (a
 * failed look-up forgotten with it), the transaction stays open. */
void mr_store_rollback_to(MrStore *store);

/* Returns FALSE with @error when a look-up failed since the last check
 * (and forgets it).  A look-up that fails (an I/O error, a lock) answers
 * as if nothing were found, so that routing code stays simple; whoever
 * decides from look-ups checks here before the decision is applied or
 * committed: mr_route_plan(), mr_store_apply() and the CLI's verbs do. */
gboolean mr_store_check(MrStore *store, GError **error);

/* --- look-ups for routing (read only; see mr_store_check()) ----------- */

/* Returns the user id owning @email, or 0. */
gint64 mr_store_user_by_address(MrStore *store, const char *email);

/* Returns the contact id of @email, or 0. */
gint64 mr_store_contact_by_email(MrStore *store, const char *email);

/* Looks @email up as a user's address and as a contact at once (one
 * statement): sets @user_out to the user's id, @contact_out to the
 * contact's and @account_out to that contact's account, each 0 when
 * there is none. */
void mr_store_party_by_email(MrStore *store, const char *email, gint64 *user_out,
			     gint64 *contact_out, gint64 *account_out);

/* Returns TRUE when @ref exists; sets @status_out (transfer full,
 * nullable) to its status. */
gboolean mr_store_record_exists(MrStore *store, MrRecordRef ref, char **status_out);

/* Returns TRUE when @email is the contact of @ref, has the domain of the
 * account of @ref's contact, or belongs to the record's owner. */
gboolean mr_store_record_related(MrStore *store, MrRecordRef ref, const char *email);

/* Returns TRUE when a stored message with one of the Message-IDs @ids
 * (NULL-terminated) has @email among its addresses (From, Sender,
 * Reply-To, To, Cc, the forwarded From): the sender of a reply took part
 * in the thread it answers. */
gboolean mr_store_thread_has_address(MrStore *store, const char *const *ids, const char *email);

/* Looks the Message-IDs @ids (newest first) up among stored messages and
 * returns in @out the newest record of kind @kind linked to the first one
 * found.  Returns TRUE when found. */
gboolean mr_store_record_by_thread(MrStore *store, const char *const *ids,
				   MrRecordKind kind, MrRecordRef *out);

/* Returns the opportunity inbox lead @id was converted into, or 0. */
gint64 mr_store_lead_opportunity(MrStore *store, gint64 id);

/* Returns the id of the open (new or in progress) inbox lead of the contact
 * @email, or 0. */
gint64 mr_store_open_lead_by_email(MrStore *store, const char *email);

/* --- ingest ------------------------------------------------------------ */

/* Returns the row id of the message with content key @key, or 0. */
gint64 mr_store_message_by_key(MrStore *store, const char *key);

/* Returns TRUE when message @message_row was already delivered to
 * @recipient (a duplicate delivery: nothing more to do). */
gboolean mr_store_delivery_exists(MrStore *store, gint64 message_row, const char *recipient);

typedef struct {
	gint64 message_row; /* the stored message */
	gboolean new_message; /* FALSE when the bytes were already stored */
	gboolean duplicate;   /* already delivered to the plan's recipient:
				 nothing was written */
	MrRecordRef record;   /* the record created or updated, if any */
} MrApplied;

/* Starts storing @raw (content key @key) and @msg inside the open
 * transaction, under the message's savepoint, before routing: on
 * PostgreSQL the insert then travels with routing's first look-up instead
 * of costing a round trip of its own (routing does not read what it
 * writes).  mr_store_apply() with @message_row 0 and the same @key
 * finishes it; a release, rollback or rollback to the savepoint without
 * it drops it.  Returns FALSE with @error; the caller rolls back. */
gboolean mr_store_message_start(MrStore *store, GBytes *raw, const char *key,
				const MrMessage *msg, GError **error);

/* Applies @plan inside the open transaction: stores @raw (content key @key)
 * and @msg unless @message_row is already non-zero (or finishes what
 * mr_store_message_start() started), records the delivery,
 * creates users, contacts, accounts, tickets and leads as planned, links
 * and writes the events.  With @message_row 0, the message is looked up
 * by @key as it is inserted: when it is stored already and was delivered
 * to the plan's recipient, nothing is written and @out says duplicate.
 * Returns FALSE with @error; the caller rolls back. */
gboolean mr_store_apply(MrStore *store, const MrPlan *plan, GBytes *raw, const char *key,
			const MrMessage *msg, gint64 message_row, MrApplied *out,
			GError **error);

/* --- administration ----------------------------------------------------
 * Each runs in a transaction of its own, or, when one is open (a unit of
 * work on the writer), inside it: its owner commits or undoes. */

/* Adds user @email (or adds @name to an existing one).  Returns its id, or
 * 0 with @error. */
gint64 mr_store_user_add(MrStore *store, const char *email, const char *name, GError **error);

/* Creates an opportunity for contact @contact (must exist), owned by user
 * @owner (nullable; must exist; default the contact's owner), @value in
 * whole currency units (-1 for none).  Returns the new id, or 0 with @error. */
gint64 mr_store_opp_add(MrStore *store, const char *title, const char *contact,
			const char *owner, gint64 value, GError **error);

/* Closes open opportunity @id as won, or lost with @reason (required). */
gboolean mr_store_opp_close(MrStore *store, gint64 id, gboolean won, const char *reason,
			    GError **error);

/* Sets ticket @id to @status (new, open, pending, solved, closed). */
gboolean mr_store_ticket_set_status(MrStore *store, gint64 id, const char *status,
				    GError **error);

/* Converts open inbox lead @id into an opportunity (title, contact, owner
 * and messages carried over).  Returns the opportunity id, or 0. */
gint64 mr_store_lead_convert(MrStore *store, gint64 id, GError **error);

/* Archives inbox lead @id. */
gboolean mr_store_lead_archive(MrStore *store, gint64 id, GError **error);

/* --- queries for the CLI ------------------------------------------------
 * Rows come back as structs, each with its declaration (mr-row.h: the
 * fields in the order of the columns and of the CLI's JSON, see
 * mr-store-rows.c); text members are NULL where the column is NULL.
 * Record ids are numbers: mr_record_display_id() formats them. */

typedef struct {
	gint64 id;
	char *email;
	char *name;
	GStrv addresses;      /* every address of the user (NULL-terminated) */
	char *created;
	gint64 message_count;
} MrUserRow;

MR_ROW_DECLARE(MrUserRow, mr_user_row_desc, mr_user_row_free)

typedef struct {
	gint64 id;
	char *email;
	char *name;
	char *account;        /* the account's name */
	char *owner;          /* the owner's email */
	char *created;
	char *last_seen;
	gint64 message_count;
} MrContactRow;

MR_ROW_DECLARE(MrContactRow, mr_contact_row_desc, mr_contact_row_free)

typedef struct {
	gint64 id;
	char *name;
	char *domain;
	char *created;
	gint64 contacts;
	gint64 message_count;
} MrAccountRow;

MR_ROW_DECLARE(MrAccountRow, mr_account_row_desc, mr_account_row_free)

typedef struct {
	gint64 id;
	char *title;
	char *source;
	char *status;
	char *priority;
	char *contact;
	char *owner;
	char *created;
	char *qualified;
	char *updated;
	gint64 opportunity;   /* the opportunity it was converted into, or 0 */
	gint64 message_count;
} MrLeadRow;

MR_ROW_DECLARE(MrLeadRow, mr_lead_row_desc, mr_lead_row_free)

typedef struct {
	gint64 id;
	char *title;
	char *status;
	char *stage;
	gint64 probability;
	gint64 value;         /* -1: none */
	char *contact;
	char *account;
	char *owner;
	char *lost_reason;
	char *created;
	char *updated;
	char *closed;
	gint64 message_count;
} MrOpportunityRow;

MR_ROW_DECLARE(MrOpportunityRow, mr_opportunity_row_desc, mr_opportunity_row_free)

typedef struct {
	gint64 id;
	char *subject;
	char *status;
	char *type;
	char *priority;
	char *contact;
	char *owner;
	char *created;
	char *updated;
	gint64 message_count;
} MrTicketRow;

MR_ROW_DECLARE(MrTicketRow, mr_ticket_row_desc, mr_ticket_row_free)

typedef struct {
	gint64 id;
	char *message_id;
	char *subject;
	char *from;
	char *date;           /* the sender's Date: */
	char *received;       /* when mailroom received it */
	gint64 size;
	char *parse_status;
	char *parse_problem;
	char *auto_kind;
	GStrv delivered_to;   /* the recipients it was delivered to */
	GArray *links;        /* (element-type MrRecordRef): its records,
	                         ordered by kind name, then id */
} MrMessageRow;

MR_ROW_DECLARE(MrMessageRow, mr_message_row_desc, mr_message_row_free)

typedef struct {
	char *kind;           /* from, to, cc, ... */
	char *email;
	char *name;
} MrAddressRow;

MR_ROW_DECLARE(MrAddressRow, mr_address_row_desc, mr_address_row_free)

typedef struct {
	char *filename;
	char *content_type;
	gint64 size;
	char *sha256;
} MrAttachmentRow;

MR_ROW_DECLARE(MrAttachmentRow, mr_attachment_row_desc, mr_attachment_row_free)

typedef struct {
	char *recipient;
	char *role;
	char *envelope_from;
	char *received;
} MrDeliveryRow;

MR_ROW_DECLARE(MrDeliveryRow, mr_delivery_row_desc, mr_delivery_row_free)

/* A message with everything linked to it (mailroomctl message show). */
typedef struct {
	MrMessageRow row;
	char *in_reply_to;
	char *auto_reason;
	gboolean is_forward;
	char *original_from;
	char *from_name;
	char *content_key;
	char *snippet;
	GStrv contacts;        /* emails of the linked contacts */
	GStrv accounts;        /* domains of the linked accounts */
	GStrv users;           /* emails of the linked users */
	GPtrArray *addresses;  /* (element-type MrAddressRow) in header order */
	GPtrArray *attachments; /* (element-type MrAttachmentRow) */
	GPtrArray *deliveries; /* (element-type MrDeliveryRow) */
	GStrv refused;         /* why links were refused */
} MrMessageDetail;

MR_ROW_DECLARE(MrMessageDetail, mr_message_detail_desc, mr_message_detail_free)

/* A message linked to a contact or record, as a show lists them. */
typedef struct {
	gint64 id;
	char *message_id;
	char *subject;
	char *from;
	char *received;
	char *sent;           /* the sender's Date: */
} MrMessageBrief;

MR_ROW_DECLARE(MrMessageBrief, mr_message_brief_desc, mr_message_brief_free)

/* One entry of a timeline: a message, or an event ("ticket.created"). */
typedef struct {
	char *received;       /* a message's arrival, NULL for an event */
	char *created;        /* an event's time, NULL for a message */
	char *kind;           /* "message" or the event type's name */
	char *subject;        /* the subject, or the event's summary */
	char *message_id;
	char *sent;           /* the sender's Date: of a message */
	char *date;           /* received or created (the deprecated alias) */
} MrTimelineEntry;

MR_ROW_DECLARE(MrTimelineEntry, mr_timeline_entry_desc, mr_timeline_entry_free)

/* Each lists its rows oldest first, at most @limit (<= 0: all).
 * Returns: (transfer full) (element-type the row struct): the rows, or
 * NULL with @error. */
GPtrArray *mr_store_users(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_contacts(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_accounts(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_leads(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_opportunities(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_tickets(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_messages(MrStore *store, gint64 limit, GError **error);

/* Each returns one row by its key.  Returns: (transfer full): the row, or
 * NULL with @error (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrContactRow *mr_store_contact_get(MrStore *store, const char *email, GError **error);
MrLeadRow *mr_store_lead_get(MrStore *store, gint64 id, GError **error);
MrOpportunityRow *mr_store_opportunity_get(MrStore *store, gint64 id, GError **error);
MrTicketRow *mr_store_ticket_get(MrStore *store, gint64 id, GError **error);
MrMessageDetail *mr_store_message_get(MrStore *store, gint64 id, GError **error);

/* Returns: (transfer full) (element-type MrMessageBrief): the messages
 * linked to contact @contact_id (@kind MR_RECORD_NONE) or to record
 * (@kind, @id), oldest received first, or NULL with @error. */
GPtrArray *mr_store_linked_messages(MrStore *store, MrRecordKind kind, gint64 id,
				    GError **error);

/* Returns: (transfer full): the raw bytes of message @id, or NULL with
 * MR_STORE_ERROR_NOT_FOUND. */
GBytes *mr_store_message_raw(MrStore *store, gint64 id, GError **error);

/* The timeline of a contact or user (@email), an account (@domain) or a
 * record (@ref), oldest first.  Exactly one of @email, @domain and
 * @ref.kind is set.  Returns: (transfer full) (element-type
 * MrTimelineEntry), or NULL with MR_STORE_ERROR_NOT_FOUND. */
GPtrArray *mr_store_timeline(MrStore *store, const char *email, const char *domain,
			     MrRecordRef ref, GError **error);

/* Counts stored messages. */
gint64 mr_store_count_messages(MrStore *store);

/* --- events: the feed that workflows read ------------------------------ */

typedef struct {
	gint64 id;           /* increasing: a consumer remembers the last it read */
	char *created;       /* UTC ISO-8601 */
	MrEventType type;
	char *type_name;     /* as stored (for MR_EVENT_OTHER) */
	MrRecordRef record;  /* MR_RECORD_NONE for a message's own events */
	gint64 message_row;  /* 0: none */
	char *summary;
} MrEvent;

MR_ROW_DECLARE(MrEvent, mr_event_desc, mr_event_free)


/* Returns: (transfer full) (element-type MrEvent): the events with an id
 * above @after, oldest first, at most @limit (0: all), or NULL with
 * @error.  Only committed events show up, in id order, and never an
 * event with a smaller id later: a consumer that remembers the last id
 * it handled misses none.  (SQLite's writers take turns; on PostgreSQL,
 * where several daemons commit in any order, every write transaction
 * holds a shared lock from BEGIN to its end, and this reads up to the
 * newest id seen while holding it exclusively: it waits for the writers
 * in flight, a batch at most.) */
GPtrArray *mr_store_events_after(MrStore *store, gint64 after, guint limit, GError **error);

/* --- IMAP mailboxes ----------------------------------------------------- */

/* What mailroomd knows of a mailbox it watches (an imap entry, by name):
 * where it stands and how its connection is.  One writer per mailbox: the
 * thread that watches it. */
typedef struct {
	char *name;
	gint64 uidvalidity;   /* 0: never selected */
	gint64 last_uid;      /* every message up to it is handled */
	char *state;          /* connecting connected idle polling backoff
	                         auth_failed stopped */
	gint64 backlog;       /* messages above last_uid on the server, as of
	                         the last check */
	char *last_error;     /* (nullable) */
	char *updated;        /* UTC ISO-8601, set by mr_store_mailbox_save() */
	gint64 inflight_to;   /* the last UID of the batch being stored: when
	                         above last_uid at start, a run died storing it */
	gint64 inflight_tries; /* when that batch is one message alone: how many
	                          runs started storing it (0 for a batch) */
} MrMailboxState;

MR_ROW_DECLARE(MrMailboxState, mr_mailbox_state_desc, mr_mailbox_state_free)


/* Returns: (transfer full) (nullable): the state of mailbox @name, or NULL
 * -- with @error on failure, without when the mailbox has none yet. */
MrMailboxState *mr_store_mailbox_get(MrStore *store, const char *name, GError **error);

/* Writes @st (all of it; "updated" is now) for its name.  Runs in the open
 * transaction (a unit of work), or in one of its own. */
gboolean mr_store_mailbox_save(MrStore *store, const MrMailboxState *st, GError **error);

/* Returns: (transfer full) (element-type MrMailboxState): every mailbox
 * with a state, by name, or NULL with @error. */
GPtrArray *mr_store_mailboxes(MrStore *store, GError **error);

/* A message of a mailbox that could not be stored (too big, or failing
 * again and again): its bytes wait here for mailroomctl message retry. */
typedef struct {
	gint64 id;
	char *mailbox;
	gint64 uidvalidity;
	gint64 uid;
	char *reason;
	gint64 size;
	char *created;
	GBytes *raw;          /* (nullable): only from mr_store_quarantine_get() */
} MrQuarantineRow;

MR_ROW_DECLARE(MrQuarantineRow, mr_quarantine_row_desc, mr_quarantine_row_free)


/* Keeps @raw of UID @uid (UIDVALIDITY @uidvalidity) of @mailbox with
 * @reason; once per message (a second time changes nothing).  @size is
 * the message's size: more than @raw holds when only its first bytes
 * (or none) were kept; the size column is the larger of the two.  Runs
 * in the open transaction or one of its own. */
gboolean mr_store_quarantine_add(MrStore *store, const char *mailbox, gint64 uidvalidity,
				 gint64 uid, const char *reason, gint64 size, GBytes *raw,
				 GError **error);

/* Returns: (transfer full) (element-type MrQuarantineRow): the quarantined
 * messages (without their bytes), oldest first, at most @limit (<= 0:
 * all), or NULL with @error. */
GPtrArray *mr_store_quarantined(MrStore *store, gint64 limit, GError **error);

/* Returns: (transfer full): quarantined message @id with its bytes, or
 * NULL with @error (MR_STORE_ERROR_NOT_FOUND). */
MrQuarantineRow *mr_store_quarantine_get(MrStore *store, gint64 id, GError **error);

/* Removes quarantined message @id (in the open transaction: after it was
 * stored); none left is no error.  FALSE with @error when the delete
 * failed. */
gboolean mr_store_quarantine_delete(MrStore *store, gint64 id, GError **error);

G_END_DECLS
