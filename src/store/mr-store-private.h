/* mr-store-private.h - the store's statement table and schema, shared by
 * the files of src/store/ only. */
#pragma once

#include "mr-sql.h"

#include "mailroom/mr-autocleanups.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-calendar.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-mailbox.h"
#include "mailroom/mr-store-message.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "mailroom/mr-store-rule.h"
#include "mailroom/mr-store-team.h"
#include "mailroom/mr-store-workflow.h"

typedef enum {
	MR_STMT_USER_BY_ADDRESS,
	MR_STMT_USER_INSERT,
	MR_STMT_USER_ADDRESS_INSERT,
	MR_STMT_USER_SET_NAME,
	MR_STMT_CONTACT_BY_EMAIL,
	MR_STMT_PARTY_BY_EMAIL,
	MR_STMT_CONTACT_INSERT,
	MR_STMT_CONTACT_TOUCH,
	MR_STMT_CONTACT_GET,
	MR_STMT_ACCOUNT_BY_DOMAIN,
	MR_STMT_ACCOUNT_INSERT,
	MR_STMT_LEAD_STATUS,
	MR_STMT_OPP_STATUS,
	MR_STMT_TICKET_STATUS,
	MR_STMT_LEAD_RELATED,
	MR_STMT_OPP_RELATED,
	MR_STMT_TICKET_RELATED,
	MR_STMT_THREAD_RECORD,
	MR_STMT_THREAD_ADDRESS,
	MR_STMT_OPEN_LEAD,
	MR_STMT_MESSAGE_BY_KEY,
	MR_STMT_DELIVERY_EXISTS,
	MR_STMT_MESSAGE_INSERT,
	MR_STMT_MESSAGE_INSERT_OUT,
	MR_STMT_MESSAGE_RAW_INSERT,
	MR_STMT_ADDRESS_INSERT,
	MR_STMT_ADDRESS_INSERT2,
	MR_STMT_BLOB_INSERT,
	MR_STMT_ATTACHMENT_INSERT,
	MR_STMT_DELIVERY_INSERT,
	MR_STMT_LINK_INSERT,
	MR_STMT_LINK_INSERT2,
	MR_STMT_EVENT_INSERT,
	MR_STMT_TICKET_INSERT,
	MR_STMT_TICKET_TOUCH,
	MR_STMT_LEAD_INSERT,
	MR_STMT_LEAD_TOUCH,
	MR_STMT_OPP_TOUCH,
	MR_STMT_OPP_INSERT,
	MR_STMT_OPP_CLOSE,
	MR_STMT_TICKET_SET_STATUS,
	MR_STMT_LEAD_SET_STATUS,
	MR_STMT_LEAD_OPPORTUNITY,
	MR_STMT_LINKS_COPY,
	MR_STMT_LIST_USERS,
	MR_STMT_LIST_CONTACTS,
	MR_STMT_LIST_ACCOUNTS,
	MR_STMT_LIST_LEADS,
	MR_STMT_LIST_OPPS,
	MR_STMT_LIST_TICKETS,
	MR_STMT_LIST_MESSAGES,
	MR_STMT_SHOW_CONTACT,
	MR_STMT_SHOW_LEAD,
	MR_STMT_SHOW_OPP,
	MR_STMT_SHOW_TICKET,
	MR_STMT_SHOW_MESSAGE,
	MR_STMT_RECORD_MESSAGES,
	MR_STMT_MESSAGE_LINKS,
	MR_STMT_MESSAGE_ADDRESSES,
	MR_STMT_MESSAGE_ATTACHMENTS,
	MR_STMT_MESSAGE_DELIVERIES,
	MR_STMT_MESSAGE_REFUSED,
	MR_STMT_MESSAGE_RAW,
	MR_STMT_ACCOUNT_ID,
	MR_STMT_ACCOUNT_NAME,
	MR_STMT_TICKET_SET_FIELDS,
	MR_STMT_LEAD_SET_SOURCE,
	MR_STMT_LEAD_SET_OWNER,
	MR_STMT_OPP_SET_OWNER,
	MR_STMT_TICKET_SET_OWNER,
	MR_STMT_TAG_INSERT,
	MR_STMT_RECORD_TAGS,
	MR_STMT_TIMELINE,
	MR_STMT_COUNT_MESSAGES,
	MR_STMT_EVENTS_AFTER,
	MR_STMT_MAILBOX_GET,
	MR_STMT_MAILBOX_SAVE,
	MR_STMT_MAILBOX_LIST,
	MR_STMT_QUARANTINE_INSERT,
	MR_STMT_QUARANTINE_LIST,
	MR_STMT_QUARANTINE_GET,
	MR_STMT_QUARANTINE_DELETE,
	MR_STMT_TEAM_ID,
	MR_STMT_TEAM_MEMBER_POSITION,
	MR_STMT_TEAM_MEMBER_COUNT,
	MR_STMT_TEAM_INSERT,
	MR_STMT_TEAM_MEMBERS_DELETE,
	MR_STMT_TEAM_DELETE,
	MR_STMT_TEAM_MEMBER_INSERT,
	MR_STMT_TEAM_MEMBER_DELETE,
	MR_STMT_USER_SET_AWAY,
	MR_STMT_TEAM_LOCK,
	MR_STMT_TEAM_NEXT,
	MR_STMT_TEAM_SET_TURN,
	MR_STMT_LIST_TEAMS,
	MR_STMT_SHOW_TEAM,
	MR_STMT_TEAM_MEMBERS,
	MR_STMT_CALENDAR_ID,
	MR_STMT_CALENDAR_INSERT,
	MR_STMT_CALENDAR_UPDATE,
	MR_STMT_CALENDAR_HOLIDAYS_CLEAR,
	MR_STMT_CALENDAR_HOLIDAY_INSERT,
	MR_STMT_CALENDAR_DELETE,
	MR_STMT_TEAM_SET_CALENDAR,
	MR_STMT_CALENDAR_DAYS,
	MR_STMT_CALENDAR_TEAMS,
	MR_STMT_LIST_CALENDARS,
	MR_STMT_SHOW_CALENDAR,
	MR_STMT_RULES_BUMP,
	MR_STMT_RULES_VERSION,
	MR_STMT_RULES_COUNT,
	MR_STMT_RULE_POSITION,
	MR_STMT_RULE_INSERT,
	MR_STMT_RULES_ROTATE,
	MR_STMT_RULES_UNPARK,
	MR_STMT_RULE_SET_ENABLED,
	MR_STMT_RULE_DELETE,
	MR_STMT_RULES_DELETE_ALL,
	MR_STMT_LIST_RULES,
	MR_STMT_SHOW_RULE,
	MR_STMT_NOTIFY_WORK,
	MR_STMT_JOB_INSERT,
	MR_STMT_JOBS_CLAIM,
	MR_STMT_JOB_FINISH,
	MR_STMT_JOBS_FINISH_CLAIM,
	MR_STMT_JOBS_NEXT_DUE,
	MR_STMT_LIST_JOBS,
	MR_STMT_SHOW_JOB,
	MR_STMT_JOB_CANCEL,
	MR_STMT_WORKFLOW_ID,
	MR_STMT_WORKFLOW_INSERT,
	MR_STMT_WORKFLOW_UPDATE,
	MR_STMT_WORKFLOW_UNLESS_CLEAR,
	MR_STMT_WORKFLOW_UNLESS_INSERT,
	MR_STMT_WORKFLOW_SET_ENABLED,
	MR_STMT_WORKFLOW_CANCEL_TIMERS,
	MR_STMT_WORKFLOW_DELETE,
	MR_STMT_WORKFLOW_FIRED,
	MR_STMT_LIST_WORKFLOWS,
	MR_STMT_SHOW_WORKFLOW,
	MR_STMT_WORKFLOW_DEFS,
	MR_STMT_TIMERS_RESTART,
	MR_STMT_TIMER_INSERT,
	MR_STMT_TIMERS_CANCEL,
	MR_STMT_JOB_POSTPONE,
	MR_STMT_RECORD_TIMER,
	MR_STMT_LEAD_SET_PRIORITY,
	MR_STMT_OPP_SET_STAGE,
	MR_STMT_OPP_SET_VALUE,
	MR_STMT_USER_MAILBOX_BY_ID,
	MR_STMT_TEAM_LEAD,
	MR_STMT_USER_TEAM_LEAD,
	MR_STMT_USER_CALENDAR,
	MR_STMT_TICKET_FIELDS,
	MR_STMT_LEAD_FIELDS,
	MR_STMT_OPP_FIELDS,
	MR_STMT_RECORDS_FIELDS,
	MR_STMT_MESSAGE_IS_AUTO,
	MR_STMT_RECORD_FIRST_EVENT,
	MR_STMT_TASK_INSERT,
	MR_STMT_TASK_DONE,
	MR_STMT_LIST_TASKS,
	MR_STMT_SHOW_TASK,
	MR_STMT_OUTBOX_INSERT,
	MR_STMT_OUTBOX_INSERT_LATER,
	MR_STMT_OUTBOX_CLAIM,
	MR_STMT_OUTBOX_CLAIMED_RAW,
	MR_STMT_OUTBOX_RESULT,
	MR_STMT_OUTBOX_SENT_CLAIM,
	MR_STMT_OUTBOX_NEXT_DUE,
	MR_STMT_OUTBOX_AUTO_COUNTS,
	MR_STMT_LIST_OUTBOX,
	MR_STMT_SHOW_OUTBOX,
	MR_STMT_OUTBOX_SET_STATUS,
	MR_STMT_TEMPLATE_INSERT,
	MR_STMT_TEMPLATE_UPDATE,
	MR_STMT_SHOW_TEMPLATE,
	MR_STMT_LIST_TEMPLATES,
	MR_STMT_TEMPLATE_DELETE,
	MR_STMT_RECORD_MAIL_LEAD,
	MR_STMT_RECORD_MAIL_OPP,
	MR_STMT_RECORD_MAIL_TICKET,
	MR_STMT_MESSAGE_THREAD,
	MR_STMT_CONTACT_UNDELIVERABLE,
	MR_STMT_USER_MAILBOX,
	MR_STMT_RECORD_LAST_IN,
	MR_STMT_OUTBOX_FOR_BOUNCE,
	MR_STMT_OUTBOX_BOUNCED,
	MR_STMT_CONTACT_MARK_ID,
	MR_STMT_N_STATEMENTS
} MrStmtId;

/* The slots of a look-up of several rows at once (OUTBOX_AUTO_COUNTS):
 * a batch's rows go in chunks of this many. */
#define MR_STORE_SLOTS 50

/* The text of every statement, indexed by MrStmtId. */
extern const char *const mr_sql_text[MR_STMT_N_STATEMENTS];

/* Where mr_store_rules_rotate() parks the positions it renumbers: past
 * any number of rules, within PostgreSQL's INTEGER. */
#define MR_SQL_RULE_PARK "1000000000"

/* One step of the schema history: @sql moves version @from to @to. */
typedef struct {
	int from, to;
	const char *sql;
} MrSqlMigration;

/* The schema history of each engine, ending in { 0, 0, NULL }, and the
 * version this mailroom writes. */
extern const MrSqlMigration mr_sql_migrations_sqlite[];
extern const MrSqlMigration mr_sql_migrations_pgsql[];
extern const int mr_sql_schema_version;

struct _MrStore {
	MrSqlConn *conn;
	const MrSqlDriver *driver;
	const MrConfig *cfg;
	MrSqlStmt *stmt[MR_STMT_N_STATEMENTS];
	GError *lookup_error;   /* the first look-up that failed since the last
	                           mr_store_check(): it answered "not found" */
	/* The message insert that mr_store_message_start() bound (and sent
	 * ahead), until mr_store_message_deliver() steps it: its content key and the
	 * time it binds as received. */
	char *started_key;
	char *started_now;
	/* Where to report the failure of the message released with
	 * mr_store_release_later(), until mr_store_settle() knows its end. */
	GError **later_failure;
	/* mr_store_notify_work() was sent in this transaction (and not
	 * undone by a rollback to the savepoint). */
	gboolean work_notified;
	/* ... and at any point of it, even if undone since (a wake for
	 * nothing costs a look) */
	gboolean work_added;
	/* The look-ups of an outgoing mail sent ahead together
	 * (mr_store_outgoing_ahead()): STORE_AHEAD_* bits, cleared as each is
	 * stepped. */
	guint ahead;
	/* mr_store_set_event_hook() */
	MrStoreEventHook event_hook;
	gpointer event_hook_data;
};

#define STORE_AHEAD_RECORD 1u
#define STORE_AHEAD_THREAD 2u
#define STORE_AHEAD_TEMPLATE 4u
/* The savepoint of one message in a group commit. */
#define MR_STORE_SAVEPOINT "mr_message"

/* A statement in use: released (reset, bindings cleared) at scope exit, so
 * that no finished SELECT keeps a read snapshot open. */
typedef MrSqlStmt MrStmtUse;

static inline void
stmt_release(MrStmtUse *st)
{
	mr_sql_reset(st);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrStmtUse, stmt_release)

static inline MrStmtUse *
store_stmt(MrStore *store, MrStmtId id)
{
	return store->stmt[id];
}


/* --- helpers of the store's files ----------------------------------------- */

/* Stores @raw (content key @key) and @msg, an outgoing mail, at @now with
 * direction "out": its row, raw bytes, addresses and attachments, all
 * held back (step_later), the rows naming the message by @key.  Returns
 * FALSE with @error. */
gboolean mr_store_message_insert_out(MrStore *store, GBytes *raw, const char *key,
				     const MrMessage *msg, const char *now, GError **error);

/* Binds @v, or NULL when @v is 0 (an absent row id). */
void mr_store_bind_id(MrSqlStmt *st, int i, gint64 v);

/* Steps a statement that returns no rows.  Returns FALSE with @error. */
gboolean mr_store_step_done(MrStore *store, MrSqlStmt *st, GError **error);

/* Steps a statement that returns no rows and whose outcome can wait: the
 * driver may send it with the next statement that answers, which then
 * reports its error (mr-sql.h, step_later). */
gboolean mr_store_step_later(MrStore *store, MrSqlStmt *st, GError **error);

/* Steps an INSERT ... ON CONFLICT DO NOTHING RETURNING id: returns the
 * new row's id, or 0 -- with @error on failure, without when the row was
 * there already (look it up again: mr_store_lookup_again()). */
gint64 mr_store_step_new_id(MrStore *store, MrSqlStmt *st, GError **error);

/* Steps an INSERT ... RETURNING id that must insert: returns the new row's
 * id, or 0 with @error. */
gint64 mr_store_step_id(MrStore *store, MrSqlStmt *st, GError **error);

/* After an insert that found its row there already: @id is what the
 * look-up of @what @key found now.  Returns it, or 0 with @error when the
 * row is gone again. */
gint64 mr_store_lookup_again(MrStore *store, GError **error, const char *what, const char *key,
			     gint64 id);

/* Links message @msg to row @id (0: nothing) of @kind ("user", "ticket",
 * ...).  Sent ahead. */
gboolean mr_store_insert_link(MrStore *store, gint64 msg, const char *kind, gint64 id,
			      GError **error);

/* Forgets the message insert that mr_store_message_start() left bound:
 * its rows, if sent ahead, are dropped (not its error). */
void mr_store_drop_started(MrStore *store);

/* Steps a look-up: TRUE when it found a row.  A failure answers FALSE, as
 * "not found" would, and is kept for mr_store_check(): whatever was
 * decided from the answer is dropped there, never committed. */
gboolean mr_store_step_row(MrStore *store, MrSqlStmt *st);

/* Steps a look-up and returns the first column of the first row as an
 * integer, or 0 when there is no row (or the look-up failed: see
 * mr_store_step_row()). */
gint64 mr_store_step_int64(MrStore *store, MrSqlStmt *st);

/* Sets MR_STORE_ERROR_NOT_FOUND with the message @fmt -- unless a look-up
 * failed, in which case "not found" may be false: that error instead. */
void mr_store_not_found(MrStore *store, GError **error, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

/* Fails with MR_STORE_ERROR_NOT_FOUND when @ref does not exist; sets
 * @status_out (nullable) to its status. */
gboolean mr_store_record_must_exist(MrStore *store, MrRecordRef ref, char **status_out,
				    GError **error);

/* Reads the current row of @st into @row by @desc (mr-row.h), from column
 * @col on: a field a column, in order (two for MR_ROW_RECORD_REF).
 * Returns the column after the last it read. */
int mr_row_read(const MrRowDesc *desc, gpointer row, MrSqlStmt *st, int col);

/* Returns: (transfer full): a new struct of @desc read from the current
 * row of @st, from its first column on. */
gpointer mr_row_new(const MrRowDesc *desc, MrSqlStmt *st);

/* Steps @st (parameters bound) to the end, reading each row by @desc.
 * Returns: (transfer full): the rows, freed with @desc's free function, or
 * NULL with @error. */
GPtrArray *mr_store_read_rows(MrSqlStmt *st, const MrRowDesc *desc, GError **error);

/* Binds @ref as a record kind's name and id at @i and @i + 1 (NULL and
 * NULL for none). */
void mr_store_bind_record(MrSqlStmt *st, int i, MrRecordRef ref);

/* Reads a record's kind name and id from columns @i and @i + 1. */
MrRecordRef mr_store_column_record(MrSqlStmt *st, int i);

/* Steps an UPDATE ... RETURNING id: TRUE with *@changed when it touched a
 * row, FALSE with @error. */
gboolean mr_store_step_changed(MrSqlStmt *st, gboolean *changed, GError **error);

/* Reads the one row of @st by @desc, or sets "no @what @key".  Returns:
 * (transfer full): the row, or NULL with @error. */
gpointer mr_store_read_one(MrSqlStmt *st, const MrRowDesc *desc, const char *what,
			   const char *key, GError **error);

/* Reads row @id of @stmt (?1 the id) by @desc, or sets "no @what @id". */
gpointer mr_store_read_by_id(MrStore *store, MrStmtId stmt, const MrRowDesc *desc,
			     const char *what, gint64 id, GError **error);

