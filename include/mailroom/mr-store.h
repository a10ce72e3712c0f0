/* mr-store.h - stage 4: the store (the only module that speaks SQL, through
 * the driver of its database engine: SQLite today).
 *
 * One MrStore is one connection.  Writers bracket their work with
 * mr_store_begin()/mr_store_commit(); readers (mailroomctl) read through the
 * same handle while the daemon writes (WAL).  Rows come back to the CLI as
 * JSON objects whose keys are the documented field names. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-plan.h"

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

/* Applies @plan inside the open transaction: stores @raw (content key @key)
 * and @msg unless @message_row is already non-zero, records the delivery,
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

/* --- queries for the CLI ----------------------------------------------- */

typedef enum {
	MR_LIST_USERS,
	MR_LIST_CONTACTS,
	MR_LIST_ACCOUNTS,
	MR_LIST_LEADS,
	MR_LIST_OPPORTUNITIES,
	MR_LIST_TICKETS,
	MR_LIST_MESSAGES,
	MR_LIST_N
} MrListKind;

/* Lists rows of @kind, newest last, at most @limit (<= 0: all).
 * Returns: (transfer full): a JSON array of objects, or NULL with @error. */
JsonArray *mr_store_list(MrStore *store, MrListKind kind, gint64 limit, GError **error);

/* Shows contact @email, with its messages.  Returns: (transfer full) or
 * NULL with MR_STORE_ERROR_NOT_FOUND. */
JsonObject *mr_store_show_contact(MrStore *store, const char *email, GError **error);

/* Shows lead, opportunity or ticket @ref with its "messages".
 * Returns: (transfer full) or NULL with MR_STORE_ERROR_NOT_FOUND. */
JsonObject *mr_store_show_record(MrStore *store, MrRecordRef ref, GError **error);

/* Shows message @id with "links", addresses and attachments.
 * Returns: (transfer full) or NULL with MR_STORE_ERROR_NOT_FOUND. */
JsonObject *mr_store_show_message(MrStore *store, gint64 id, GError **error);

/* Returns: (transfer full): the raw bytes of message @id, or NULL with
 * MR_STORE_ERROR_NOT_FOUND. */
GBytes *mr_store_message_raw(MrStore *store, gint64 id, GError **error);

/* The timeline of a contact (@email), an account (@domain) or a record
 * (@ref), oldest first: entries { date kind subject message_id }.  Exactly
 * one of @email, @domain and @ref.kind is set.  Returns: (transfer full)
 * or NULL with MR_STORE_ERROR_NOT_FOUND. */
JsonArray *mr_store_timeline(MrStore *store, const char *email, const char *domain,
			     MrRecordRef ref, GError **error);

/* Counts stored messages. */
gint64 mr_store_count_messages(MrStore *store);

/* --- events: the feed that workflows read ------------------------------ */

/* What happened.  Stored by name (mr_event_type_name()); a name this
 * mailroom does not know reads as MR_EVENT_OTHER. */
typedef enum {
	MR_EVENT_OTHER,
	MR_EVENT_TICKET_CREATED,
	MR_EVENT_TICKET_REOPENED,
	MR_EVENT_TICKET_STATUS,
	MR_EVENT_LEAD_CREATED,
	MR_EVENT_LEAD_CONVERTED,
	MR_EVENT_LEAD_ARCHIVED,
	MR_EVENT_OPPORTUNITY_CREATED,
	MR_EVENT_OPPORTUNITY_WON,
	MR_EVENT_OPPORTUNITY_LOST,
	MR_EVENT_MESSAGE_LINKED,
	MR_EVENT_REPLY_RECEIVED,
	MR_EVENT_LINK_REFUSED,
	MR_EVENT_SENDER_UNTRUSTED,
	MR_EVENT_N
} MrEventType;

/* Returns the stored name of @type ("ticket.created"); "other" for
 * MR_EVENT_OTHER. */
const char *mr_event_type_name(MrEventType type);

/* Returns the type named @name, or MR_EVENT_OTHER. */
MrEventType mr_event_type_from_name(const char *name);

typedef struct {
	gint64 id;           /* increasing: a consumer remembers the last it read */
	char *created;       /* UTC ISO-8601 */
	MrEventType type;
	char *type_name;     /* as stored (for MR_EVENT_OTHER) */
	MrRecordRef record;  /* MR_RECORD_NONE for a message's own events */
	gint64 message_row;  /* 0: none */
	char *summary;
} MrEvent;

void mr_event_free(MrEvent *event);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrEvent, mr_event_free)

/* Returns: (transfer full) (element-type MrEvent): the events with an id
 * above @after, oldest first, at most @limit (0: all), or NULL with
 * @error.  Committed events only show up here, in id order, so a consumer
 * that remembers the last id it handled misses none (ids are given in
 * commit order on SQLite; on PostgreSQL a consumer should stay a few
 * seconds behind the newest, as concurrent transactions commit in any
 * order). */
GPtrArray *mr_store_events_after(MrStore *store, gint64 after, guint limit, GError **error);

G_END_DECLS
