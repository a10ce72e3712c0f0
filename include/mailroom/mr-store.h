/* mr-store.h - stage 4: the store (the only module that speaks SQL, through
 * the driver of its database engine: SQLite or PostgreSQL).
 *
 * One MrStore is one connection.  Writers bracket their work with
 * mr_store_begin()/mr_store_commit(); readers (mailroomctl) read through the
 * same handle while the daemon writes (WAL).  Queries answer with structs;
 * the CLI makes tables and JSON of them.
 *
 * This header holds the handle, its transactions and the ingest path; the
 * aggregates have a header each: mr-store-party.h (users, contacts,
 * accounts), mr-store-record.h (leads, opportunities, tickets),
 * mr-store-message.h, mr-store-event.h (the feed and timelines) and
 * mr-store-mailbox.h (IMAP mailboxes and the quarantine). */
#pragma once

#include <glib.h>

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

/* Returns TRUE when the transaction begun last added work for the
 * acting half (mr_store_notify_work(): a job, an outgoing mail), maybe
 * undone since (then a wake finds nothing): for the writer, to wake the scheduler and the outbox of its
 * own process after COMMIT. */
gboolean mr_store_work_added(MrStore *store);

/* Returns FALSE with @error when a look-up failed since the last check
 * (and forgets it).  A look-up that fails (an I/O error, a lock) answers
 * as if nothing were found, so that routing code stays simple; whoever
 * decides from look-ups checks here before the decision is applied or
 * committed: mr_route_plan(), mr_crm_apply() and the use cases do. */
gboolean mr_store_check(MrStore *store, GError **error);

/* --- ingest ------------------------------------------------------------ */

/* Returns the row id of the message with content key @key, or 0. */
gint64 mr_store_message_by_key(MrStore *store, const char *key);

/* Returns TRUE when message @message_row was already delivered to
 * @recipient (a duplicate delivery: nothing more to do). */
gboolean mr_store_delivery_exists(MrStore *store, gint64 message_row, const char *recipient);

/* A delivery as it is stored: to whom, in which role, from whom. */
typedef struct {
	const char *recipient;     /* the envelope recipient, lower case */
	const char *role;          /* its role's name (mr_role_name()) */
	const char *envelope_from; /* (nullable) */
	const char *rules;         /* (nullable): the rules that fired, one name
				      per line, in order */
} MrDeliveryNew;

/* What mr_store_message_deliver() stored. */
typedef struct {
	gint64 message_row;   /* the stored message */
	gboolean new_message; /* FALSE when the bytes were already stored */
	gboolean duplicate;   /* already delivered to the recipient: nothing
	                         was written */
	char *now;            /* (transfer full): the time it was received, UTC
	                         ISO-8601: the time of everything the message
	                         makes happen (mr_stored_clear()) */
} MrStored;

/* Starts storing @raw (content key @key) and @msg inside the open
 * transaction, under the message's savepoint, before routing: on
 * PostgreSQL the insert then travels with routing's first look-up instead
 * of costing a round trip of its own (routing does not read what it
 * writes).  mr_store_message_deliver() with @message_row 0 and the same
 * @key finishes it; a release, rollback or rollback to the savepoint
 * without it drops it.  Returns FALSE with @error; the caller rolls back. */
gboolean mr_store_message_start(MrStore *store, GBytes *raw, const char *key,
				const MrMessage *msg, GError **error);

/* Inside the open transaction: stores @raw (content key @key) and @msg
 * unless @message_row is already non-zero (or finishes what
 * mr_store_message_start() started), and records @delivery.  With
 * @message_row 0, the message is looked up by @key as it is inserted:
 * when it is stored already and was delivered to the same recipient,
 * nothing is written and @out says duplicate.  Fills @out (clear it with
 * mr_stored_clear()).  Returns FALSE with @error; the caller rolls back. */
gboolean mr_store_message_deliver(MrStore *store, GBytes *raw, const char *key,
				  const MrMessage *msg, gint64 message_row,
				  const MrDeliveryNew *delivery, MrStored *out, GError **error);

/* Frees what @stored owns. */
void mr_stored_clear(MrStored *stored);

/* --- use cases' transactions ------------------------------------------ */

typedef gboolean (*MrStoreTxFunc)(MrStore *store, gpointer data, GError **error);

/* Runs @fn with @data in a transaction of its own, committed when @fn and
 * mr_store_check() succeed and rolled back otherwise; or, when a
 * transaction is open (a unit of work of the writer), inside it, whose
 * owner commits or undoes.  Returns FALSE with @error. */
gboolean mr_store_run(MrStore *store, MrStoreTxFunc fn, gpointer data, GError **error);

G_END_DECLS
