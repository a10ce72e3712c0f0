/* mr-store.c - the store: open and migrate, transactions, applying a
 * routing plan, administration (the CLI's queries: mr-store-query.c).
 *
 * Store stage.  Owns the connection and its prepared statements (texts in
 * mr-store-sql.c) and speaks to the database only through the SQL driver
 * interface (mr-sql.h), which classifies the engine's errors. */
#define G_LOG_DOMAIN "mailroom-store"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "mr-store-private.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-status.h"

/* Binds @v, or NULL when @v is 0 (an absent row id). */
static void
bind_id(MrSqlStmt *st, int i, gint64 v)
{
	if (v == 0)
		mr_sql_bind_null(st, i);
	else
		mr_sql_bind_int64(st, i, v);
}

/* Steps a statement that returns no rows. */
static gboolean
step_done(MrStore *store, MrSqlStmt *st, GError **error)
{
	return mr_sql_step(st, error) != MR_SQL_FAIL;
}

/* Steps a statement that returns no rows and whose outcome can wait: the
 * driver may send it with the next statement that answers, which then
 * reports its error (mr-sql.h, step_later).  For the inserts and updates
 * of applying a plan, whose errors all end in the same undo. */
static gboolean
step_later(MrStore *store, MrSqlStmt *st, GError **error)
{
	return mr_sql_step_later(st, error);
}

gboolean
mr_store_step_row(MrStore *store, MrSqlStmt *st)
{
	g_autoptr(GError) error = NULL;

	switch (mr_sql_step(st, &error)) {
	case MR_SQL_ROW:
		return TRUE;
	case MR_SQL_DONE:
		return FALSE;
	default:
		if (store->lookup_error == NULL)
			store->lookup_error = g_steal_pointer(&error);
		return FALSE;
	}
}

gint64
mr_store_step_int64(MrStore *store, MrSqlStmt *st)
{
	return mr_store_step_row(store, st) ? mr_sql_column_int64(st, 0) : 0;
}

/* Moves a failed look-up's error to @error.  Returns TRUE when there was
 * one. */
static gboolean
take_lookup_error(MrStore *store, GError **error)
{
	if (store->lookup_error == NULL)
		return FALSE;
	g_propagate_error(error, g_steal_pointer(&store->lookup_error));
	return TRUE;
}

void
mr_store_not_found(MrStore *store, GError **error, const char *fmt, ...)
{
	va_list ap;

	if (take_lookup_error(store, error))
		return;
	va_start(ap, fmt);
	if (error != NULL)
		*error = g_error_new_valist(MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, fmt, ap);
	va_end(ap);
}

/* Steps an INSERT ... ON CONFLICT DO NOTHING RETURNING id: returns the
 * new row's id, or 0 -- with @error on failure, without when the row was
 * there already (another writer inserted it and committed meanwhile: look
 * it up again). */
static gint64
step_new_id(MrStore *store, MrSqlStmt *st, GError **error)
{
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		return mr_sql_column_int64(st, 0);
	default:
		return 0;
	}
}

/* Steps an INSERT ... RETURNING id that must insert: returns the new row's
 * id, or 0 with @error. */
static gint64
step_id(MrStore *store, MrSqlStmt *st, GError **error)
{
	g_autoptr(GError) local = NULL;
	gint64 id = step_new_id(store, st, &local);

	if (id == 0 && local == NULL)
		local = g_error_new(MR_STORE_ERROR, MR_STORE_ERROR_FAILED, "insert returned no id");
	if (local != NULL)
		g_propagate_error(error, g_steal_pointer(&local));
	return id;
}

static char *
unix_to_iso(gint64 t)
{
	g_autoptr(GDateTime) dt = t != 0 ? g_date_time_new_from_unix_utc(t) : NULL;

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

/* Forgets the message insert that mr_store_message_start() left bound:
 * its rows, if sent ahead, are dropped (not its error). */
static void
store_drop_started(MrStore *store)
{
	if (store->started_key == NULL && store->started_now == NULL)
		return;
	mr_sql_reset(store->stmt[MR_STMT_MESSAGE_INSERT]);
	g_clear_pointer(&store->started_key, g_free);
	g_clear_pointer(&store->started_now, g_free);
}

static gboolean store_settle(MrStore *store, gboolean wait);

/* --- open, migrate, close --------------------------------------------- */

void
mr_store_set_config(MrStore *store, const MrConfig *cfg)
{
	g_return_if_fail(store != NULL && cfg != NULL);
	store->cfg = cfg;
}

char *
mr_store_database_name(const MrConfig *cfg)
{
	const MrSqlDriver *driver;
	g_autofree char *masked = NULL;
	char *query;

	g_return_val_if_fail(cfg != NULL && cfg->database != NULL, NULL);

	driver = mr_sql_driver_for(cfg->database, NULL);
	if (driver != NULL && driver->mask_uri == NULL)
		return g_strdup(cfg->database);
	if (driver != NULL && (masked = driver->mask_uri(cfg->database)) != NULL)
		return g_steal_pointer(&masked);
	/* Not parsed: user:***@, and no query string at all. */
	masked = mr_config_database_name(cfg);
	query = strchr(masked, '?');
	if (query == NULL)
		return g_steal_pointer(&masked);
	*query = '\0';
	return g_strconcat(masked, "?***", NULL);
}

int
mr_store_schema_version(MrStore *store)
{
	return store->driver->schema_version(store->conn, NULL);
}

/* Returns: the schema history of @driver's engine. */
static const MrSqlMigration *
store_migrations(const MrSqlDriver *driver)
{
	return strcmp(driver->name, "postgresql") == 0 ? mr_sql_migrations_pgsql
						       : mr_sql_migrations_sqlite;
}

/* Moves the schema forward one step at a time, each step in its own
 * transaction with its version bump. */
static gboolean
store_migrate(MrStore *store, GError **error)
{
	const MrSqlMigration *steps = store_migrations(store->driver);
	int v = store->driver->schema_version(store->conn, error);

	if (v < 0)
		return FALSE;
	if (v > mr_sql_schema_version) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN,
			    "database schema version %d is newer than this mailroom (%d)", v,
			    mr_sql_schema_version);
		return FALSE;
	}
	for (const MrSqlMigration *m = steps; m->sql != NULL && v < mr_sql_schema_version; m++) {
		g_autoptr(GError) local = NULL;

		if (m->from != v)
			continue;
		if (!store->driver->begin(store->conn, error))
			return FALSE;
		if (store->driver->lock_schema != NULL &&
		    !store->driver->lock_schema(store->conn, error)) {
			store->driver->rollback(store->conn);
			return FALSE;
		}
		/* Another process may have migrated while we waited for the lock. */
		if (store->driver->schema_version(store->conn, NULL) != v) {
			store->driver->rollback(store->conn);
			v = store->driver->schema_version(store->conn, error);
			if (v < 0)
				return FALSE;
			continue;
		}
		if (!mr_sql_exec(store->conn, m->sql, &local) ||
		    !store->driver->set_schema_version(store->conn, m->to, &local) ||
		    !store->driver->commit(store->conn, &local)) {
			store->driver->rollback(store->conn);
			g_propagate_prefixed_error(error, g_steal_pointer(&local),
						   "migrating from schema %d to %d: ", m->from, m->to);
			return FALSE;
		}
		v = m->to;
	}
	if (v != mr_sql_schema_version) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN,
			    "no way from schema version %d to %d", v, mr_sql_schema_version);
		return FALSE;
	}
	return TRUE;
}

static MrStore *
store_open(const MrConfig *cfg, gboolean create, GError **error)
{
	g_autoptr(MrStore) store = g_new0(MrStore, 1);

	g_return_val_if_fail(cfg != NULL && cfg->database != NULL, NULL);

	store->cfg = cfg;
	store->driver = mr_sql_driver_for(cfg->database, error);
	if (store->driver == NULL)
		return NULL;
	store->conn = store->driver->open(cfg, create, error);
	if (store->conn == NULL)
		return NULL;
	if (!create && store->driver->schema_version(store->conn, NULL) == 0) {
		g_autofree char *name = mr_store_database_name(cfg);

		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND,
			    "%s: no mailroom database here (mailroomctl init creates it)", name);
		return NULL;
	}
	if (!store_migrate(store, error)) {
		g_autofree char *name = mr_store_database_name(cfg);

		g_prefix_error(error, "%s: ", name);
		if (error != NULL && *error != NULL && (*error)->code != MR_STORE_ERROR_BUSY)
			(*error)->code = MR_STORE_ERROR_OPEN;
		return NULL;
	}
	for (int i = 0; i < MR_STMT_N_STATEMENTS; i++) {
		g_assert(mr_sql_text[i] != NULL);
		store->stmt[i] = store->driver->prepare(store->conn, mr_sql_text[i], error);
		if (store->stmt[i] == NULL) {
			g_prefix_error(error, "preparing statement %d: ", i);
			if (error != NULL)
				(*error)->code = MR_STORE_ERROR_OPEN;
			return NULL;
		}
	}
	return g_steal_pointer(&store);
}

MrStore *
mr_store_open(const MrConfig *cfg, GError **error)
{
	return store_open(cfg, TRUE, error);
}

MrStore *
mr_store_open_existing(const MrConfig *cfg, GError **error)
{
	return store_open(cfg, FALSE, error);
}

void
mr_store_close(MrStore *store)
{
	if (store == NULL)
		return;
	if (store->conn != NULL)
		store_drop_started(store);
	for (int i = 0; i < MR_STMT_N_STATEMENTS; i++)
		if (store->stmt[i] != NULL)
			store->driver->finalize(store->stmt[i]);
	if (store->conn != NULL)
		store->driver->close(store->conn);
	g_clear_error(&store->lookup_error);
	g_free(store);
}

gboolean
mr_store_check(MrStore *store, GError **error)
{
	g_return_val_if_fail(store != NULL, FALSE);

	return !take_lookup_error(store, error);
}

gboolean
mr_store_begin(MrStore *store, GError **error)
{
	store->later_failure = NULL; /* a new transaction: nothing waits */
	return store->driver->begin(store->conn, error);
}

gboolean
mr_store_commit(MrStore *store, GError **error)
{
	g_autoptr(GError) local = NULL;

	store_drop_started(store);
	/* On PostgreSQL the COMMIT goes with the release that waits (one
	 * round trip): when that message's work failed, the server skipped
	 * the COMMIT.  Then that message alone is undone, and the others
	 * commit. */
	if (store->driver->commit(store->conn, &local)) {
		store->later_failure = NULL;
		return TRUE;
	}
	if (store->later_failure == NULL || store_settle(store, TRUE)) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return store->driver->commit(store->conn, error);
}

void
mr_store_rollback(MrStore *store)
{
	store->later_failure = NULL; /* its caller fails the whole transaction */
	store_drop_started(store);
	store->driver->rollback(store->conn);
	/* A look-up that failed in the work undone concerns nothing now. */
	g_clear_error(&store->lookup_error);
}

gboolean
mr_store_in_transaction(MrStore *store)
{
	g_return_val_if_fail(store != NULL, FALSE);

	return store->driver->in_transaction(store->conn);
}

gboolean
mr_store_savepoint(MrStore *store, GError **error)
{
	return store->driver->savepoint(store->conn, MR_STORE_SAVEPOINT, error);
}

gboolean
mr_store_release(MrStore *store, GError **error)
{
	store_drop_started(store);
	return store->driver->release(store->conn, MR_STORE_SAVEPOINT, error);
}

/* mr_store_settle(), or without @wait only what is known already:
 * TRUE while the end of the release that waits is not known. */
static gboolean
store_settle(MrStore *store, gboolean wait)
{
	GError **failure = store->later_failure;
	g_autoptr(GError) local = NULL;

	if (failure == NULL || store->driver->released == NULL) {
		store->later_failure = NULL;
		return TRUE;
	}
	switch (store->driver->released(store->conn, wait, &local)) {
	case MR_SQL_RELEASE_WAITING:
		return TRUE;
	case MR_SQL_RELEASE_DONE:
		store->later_failure = NULL;
		return TRUE;
	default:
		break;
	}
	store->later_failure = NULL;
	/* Its savepoint is the innermost now: undone with its work. */
	mr_store_rollback_to(store);
	g_propagate_error(failure, g_steal_pointer(&local));
	return FALSE;
}

gboolean
mr_store_release_later(MrStore *store, GError **failure, GError **error)
{
	g_return_val_if_fail(store != NULL && failure != NULL && *failure == NULL, FALSE);

	store_drop_started(store);
	/* The message released before this one: its end came with this
	 * one's look-ups.  A failure there would have failed this one too. */
	if (!store_settle(store, FALSE)) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_FAILED,
			    "skipped after the failure of an earlier message");
		return FALSE;
	}
	/* Still not known (this message made no look-up), or no way to wait:
	 * this one is released at once, which tells of both. */
	if (store->later_failure != NULL || store->driver->release_later == NULL)
		return store->driver->release(store->conn, MR_STORE_SAVEPOINT, error);
	if (!store->driver->release_later(store->conn, MR_STORE_SAVEPOINT, error))
		return FALSE;
	store->later_failure = failure;
	return TRUE;
}

gboolean
mr_store_settle(MrStore *store)
{
	g_return_val_if_fail(store != NULL, FALSE);

	return store_settle(store, TRUE);
}

void
mr_store_rollback_to(MrStore *store)
{
	g_autoptr(GError) error = NULL;

	g_clear_error(&store->lookup_error); /* as in mr_store_rollback() */
	store_drop_started(store);
	/* The database ended the transaction on its own: nothing to undo. */
	if (!mr_store_in_transaction(store))
		return;
	if (!store->driver->rollback_to(store->conn, MR_STORE_SAVEPOINT, &error) ||
	    !store->driver->release(store->conn, MR_STORE_SAVEPOINT, &error))
		g_warning("undoing a message's savepoint failed: %s", error->message);
}

/* --- look-ups for routing --------------------------------------------- */

gint64
mr_store_user_by_address(MrStore *store, const char *email)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_BY_ADDRESS);

	mr_sql_bind_text(st, 1, email);
	return mr_store_step_int64(store, st);
}

gint64
mr_store_contact_by_email(MrStore *store, const char *email)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_BY_EMAIL);

	mr_sql_bind_text(st, 1, email);
	return mr_store_step_int64(store, st);
}

void
mr_store_party_by_email(MrStore *store, const char *email, gint64 *user_out,
			gint64 *contact_out, gint64 *account_out)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_PARTY_BY_EMAIL);
	gboolean found;

	mr_sql_bind_text(st, 1, email);
	found = mr_store_step_row(store, st);
	*user_out = found ? mr_sql_column_int64(st, 0) : 0;
	*contact_out = found ? mr_sql_column_int64(st, 1) : 0;
	*account_out = found ? mr_sql_column_int64(st, 2) : 0;
}

static const MrStmtId mr_status_sql[] = {
	[MR_RECORD_LEAD] = MR_STMT_LEAD_STATUS,
	[MR_RECORD_OPPORTUNITY] = MR_STMT_OPP_STATUS,
	[MR_RECORD_TICKET] = MR_STMT_TICKET_STATUS,
};

static const MrStmtId mr_related_sql[] = {
	[MR_RECORD_LEAD] = MR_STMT_LEAD_RELATED,
	[MR_RECORD_OPPORTUNITY] = MR_STMT_OPP_RELATED,
	[MR_RECORD_TICKET] = MR_STMT_TICKET_RELATED,
};

gboolean
mr_store_record_exists(MrStore *store, MrRecordRef ref, char **status_out)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_NONE)
		return FALSE;
	st = store_stmt(store, mr_status_sql[ref.kind]);
	mr_sql_bind_int64(st, 1, ref.id);
	if (!mr_store_step_row(store, st))
		return FALSE;
	if (status_out != NULL)
		*status_out = g_strdup(mr_sql_column_text(st, 0));
	return TRUE;
}

gboolean
mr_store_record_related(MrStore *store, MrRecordRef ref, const char *email)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_NONE || email == NULL)
		return FALSE;
	st = store_stmt(store, mr_related_sql[ref.kind]);
	mr_sql_bind_int64(st, 1, ref.id);
	mr_sql_bind_text(st, 2, email);
	mr_sql_bind_text(st, 3, strrchr(email, '@') != NULL ? strrchr(email, '@') + 1 : NULL);
	return mr_store_step_row(store, st);
}

gboolean
mr_store_record_by_thread(MrStore *store, const char *const *ids, MrRecordKind kind,
			  MrRecordRef *out)
{
	for (; ids != NULL && *ids != NULL; ids++) {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_THREAD_RECORD);
		gint64 id;

		mr_sql_bind_text(st, 1, *ids);
		mr_sql_bind_text(st, 2, mr_record_kind_name(kind));
		id = mr_store_step_int64(store, st);
		if (id != 0) {
			out->kind = kind;
			out->id = id;
			return TRUE;
		}
	}
	return FALSE;
}

gboolean
mr_store_thread_has_address(MrStore *store, const char *const *ids, const char *email)
{
	for (; ids != NULL && *ids != NULL; ids++) {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_THREAD_ADDRESS);

		mr_sql_bind_text(st, 1, *ids);
		mr_sql_bind_text(st, 2, email);
		if (mr_store_step_int64(store, st) != 0)
			return TRUE;
	}
	return FALSE;
}

gint64
mr_store_open_lead_by_email(MrStore *store, const char *email)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OPEN_LEAD);

	/* the statuses in which a lead takes mail (mr_status_takes_mail()) */
	mr_sql_bind_text(st, 1, email);
	mr_sql_bind_text(st, 2, mr_status_name(MR_RECORD_LEAD, MR_LEAD_NEW));
	mr_sql_bind_text(st, 3, mr_status_name(MR_RECORD_LEAD, MR_LEAD_IN_PROGRESS));
	return mr_store_step_int64(store, st);
}

gint64
mr_store_lead_opportunity(MrStore *store, gint64 id)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LEAD_OPPORTUNITY);

	mr_sql_bind_int64(st, 1, id);
	return mr_store_step_int64(store, st);
}

gint64
mr_store_message_by_key(MrStore *store, const char *key)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_BY_KEY);

	mr_sql_bind_text(st, 1, key);
	return mr_store_step_int64(store, st);
}

gboolean
mr_store_delivery_exists(MrStore *store, gint64 message_row, const char *recipient)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_DELIVERY_EXISTS);

	mr_sql_bind_int64(st, 1, message_row);
	mr_sql_bind_text(st, 2, recipient);
	return mr_store_step_row(store, st);
}

gint64
mr_store_count_messages(MrStore *store)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_COUNT_MESSAGES);

	return mr_store_step_int64(store, st);
}

/* --- applying a plan --------------------------------------------------- */

static gboolean
insert_address(MrStore *store, gint64 msg, const char *kind, const MrAddress *a, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (a == NULL || a->email == NULL || *a->email == '\0')
		return TRUE;
	st = store_stmt(store, MR_STMT_ADDRESS_INSERT);
	mr_sql_bind_int64(st, 1, msg);
	mr_sql_bind_text(st, 2, kind);
	mr_sql_bind_text(st, 3, a->email);
	mr_sql_bind_text(st, 4, a->name);
	return step_later(store, st, error);
}

static gboolean
insert_attachment(MrStore *store, gint64 msg, const MrAttachment *att, GError **error)
{
	gsize len = 0;
	const void *data = att->data != NULL ? g_bytes_get_data(att->data, &len) : NULL;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_BLOB_INSERT);

		mr_sql_bind_text(st, 1, att->sha256);
		mr_sql_bind_int64(st, 2, (gint64)len);
		mr_sql_bind_blob(st, 3, data, len);
		if (!step_later(store, st, error))
			return FALSE;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_ATTACHMENT_INSERT);

		mr_sql_bind_int64(st, 1, msg);
		mr_sql_bind_text(st, 2, att->sha256);
		mr_sql_bind_text(st, 3, att->filename);
		mr_sql_bind_text(st, 4, att->content_type != NULL ? att->content_type
							   : "application/octet-stream");
		mr_sql_bind_int64(st, 5, (gint64)att->size);
		return step_later(store, st, error);
	}
}

static const char *const mr_parse_status_names[] = {
	[MR_PARSE_OK] = "ok",
	[MR_PARSE_DEGRADED] = "degraded",
	[MR_PARSE_FAILED] = "failed",
};

static const char *const mr_auto_names[] = {
	[MR_AUTO_NONE] = NULL,
	[MR_AUTO_REPLY] = "auto-reply",
	[MR_AUTO_BULK] = "bulk",
	[MR_AUTO_BOUNCE] = "bounce",
};

/* The start of @body on one line, for lists and timelines: the body itself
 * is not stored twice (the raw bytes are), and a re-parse gives it back. */
#define MR_SNIPPET_CHARS 200

static char *
make_snippet(const char *body)
{
	GString *out = g_string_sized_new(MR_SNIPPET_CHARS + 8);
	gboolean space = FALSE;
	guint n = 0;

	for (const char *p = body != NULL ? body : ""; *p != '\0' && n < MR_SNIPPET_CHARS;
	     p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (g_unichar_isspace(c)) {
			space = out->len > 0;
			continue;
		}
		if (space)
			g_string_append_c(out, ' ');
		space = FALSE;
		g_string_append_unichar(out, c);
		n++;
	}
	return g_string_free(out, FALSE);
}

/* Binds the insert of the message row (MR_STMT_MESSAGE_INSERT). */
static void
bind_message(MrSqlStmt *st, GBytes *raw, const char *key, const MrMessage *msg, const char *now)
{
	g_autofree char *date = unix_to_iso(msg->date);
	g_autofree char *snippet = make_snippet(msg->body_text);

	mr_sql_bind_text(st, 1, key);
	mr_sql_bind_text(st, 2, msg->message_id);
	mr_sql_bind_text(st, 3, msg->in_reply_to);
	mr_sql_bind_text(st, 4, msg->subject != NULL ? msg->subject : "");
	mr_sql_bind_text(st, 5, msg->subject_normalised != NULL ? msg->subject_normalised : "");
	mr_sql_bind_text(st, 6, msg->from != NULL ? msg->from->email : NULL);
	mr_sql_bind_text(st, 7, msg->from != NULL ? msg->from->name : NULL);
	mr_sql_bind_text(st, 8, date);
	mr_sql_bind_text(st, 9, now);
	mr_sql_bind_int64(st, 10, (gint64)g_bytes_get_size(raw));
	mr_sql_bind_text(st, 11, mr_parse_status_names[msg->status]);
	mr_sql_bind_text(st, 12, msg->problem);
	mr_sql_bind_text(st, 13, mr_auto_names[msg->auto_kind]);
	mr_sql_bind_text(st, 14, msg->auto_reason);
	mr_sql_bind_int64(st, 15, msg->is_forward ? 1 : 0);
	mr_sql_bind_text(st, 16, msg->original_from != NULL ? msg->original_from->email : NULL);
	mr_sql_bind_text(st, 17, snippet);
}

/* Stores the message row (bound already when @started: see
 * mr_store_message_start()), its raw bytes, addresses and attachments.
 * Returns the new row, or 0: with @error on failure, without when a
 * message with @key is stored already (nothing is written then). */
static gint64
insert_message(MrStore *store, GBytes *raw, const char *key, const MrMessage *msg,
	       const char *now, gboolean started, GError **error)
{
	gsize raw_len = 0;
	const void *raw_data = g_bytes_get_data(raw, &raw_len);
	gint64 row;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_INSERT);

		if (!started)
			bind_message(st, raw, key, msg, now);
		row = step_new_id(store, st, error);
		if (row == 0)
			return 0;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_RAW_INSERT);

		mr_sql_bind_int64(st, 1, row);
		mr_sql_bind_blob(st, 2, raw_data, raw_len);
		if (!step_later(store, st, error))
			return 0;
	}
	if (!insert_address(store, row, "from", msg->from, error) ||
	    !insert_address(store, row, "sender", msg->sender, error) ||
	    !insert_address(store, row, "reply-to", msg->reply_to, error) ||
	    !insert_address(store, row, "original-from", msg->original_from, error))
		return 0;
	for (guint i = 0; msg->to != NULL && i < msg->to->len; i++)
		if (!insert_address(store, row, "to", g_ptr_array_index(msg->to, i), error))
			return 0;
	for (guint i = 0; msg->cc != NULL && i < msg->cc->len; i++)
		if (!insert_address(store, row, "cc", g_ptr_array_index(msg->cc, i), error))
			return 0;
	for (guint i = 0; msg->attachments != NULL && i < msg->attachments->len; i++)
		if (!insert_attachment(store, row, g_ptr_array_index(msg->attachments, i), error))
			return 0;
	return row;
}

static gboolean
insert_link(MrStore *store, gint64 msg, const char *kind, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (id == 0)
		return TRUE;
	st = store_stmt(store, MR_STMT_LINK_INSERT);
	mr_sql_bind_int64(st, 1, msg);
	mr_sql_bind_text(st, 2, kind);
	mr_sql_bind_int64(st, 3, id);
	return step_later(store, st, error);
}

gboolean
mr_store_event_add(MrStore *store, const char *now, MrEventType type, MrRecordRef ref,
		   gint64 msg, const MrEventFacts *facts, GError **error)
{
	static const MrEventFacts none = { 0 };
	const MrEventFacts *f = facts != NULL ? facts : &none;
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_EVENT_INSERT);

	mr_sql_bind_text(st, 1, now);
	mr_sql_bind_text(st, 2, mr_event_type_name(type));
	mr_sql_bind_text(st, 3, mr_record_kind_name(ref.kind));
	bind_id(st, 4, ref.id);
	bind_id(st, 5, msg);
	bind_id(st, 6, f->actor);
	mr_sql_bind_text(st, 7, f->old_status);
	mr_sql_bind_text(st, 8, f->new_status);
	mr_sql_bind_text(st, 9, f->address);
	mr_sql_bind_text(st, 10, f->detail);
	return step_later(store, st, error);
}

/* After an insert that found its row there already: @id is what the look-up
 * found now.  Returns it, or 0 with @error when the row is gone again. */
static gint64
lookup_again(MrStore *store, GError **error, const char *what, const char *key, gint64 id)
{
	if (id == 0 && !take_lookup_error(store, error))
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY,
			    "%s %s was inserted by another writer and is not there", what, key);
	return id;
}

/* --- users, accounts, contacts -------------------------------------------- */

gint64
mr_store_user_ensure(MrStore *store, const char *email, const char *name, const char *now,
		     GError **error)
{
	gint64 id = mr_store_user_by_address(store, email);

	if (id != 0)
		return id;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_INSERT);

		mr_sql_bind_text(st, 1, email);
		mr_sql_bind_text(st, 2, name);
		mr_sql_bind_text(st, 3, now);
		id = step_new_id(store, st, error);
	}
	if (id == 0) { /* failed, or another writer made the user meanwhile */
		if (error != NULL && *error != NULL)
			return 0;
		return lookup_again(store, error, "user", email,
				    mr_store_user_by_address(store, email));
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_ADDRESS_INSERT);

		mr_sql_bind_text(st, 1, email);
		mr_sql_bind_int64(st, 2, id);
		if (!step_later(store, st, error))
			return 0;
	}
	return id;
}

gboolean
mr_store_user_set_name(MrStore *store, gint64 id, const char *name, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_SET_NAME);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, name);
	return step_done(store, st, error);
}

gint64
mr_store_account_ensure(MrStore *store, const char *domain, const char *now, GError **error)
{
	gint64 id;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_ACCOUNT_BY_DOMAIN);

		mr_sql_bind_text(st, 1, domain);
		id = mr_store_step_int64(store, st);
	}
	if (id != 0)
		return id;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_ACCOUNT_INSERT);

		mr_sql_bind_text(st, 1, domain);
		mr_sql_bind_text(st, 2, domain);
		mr_sql_bind_text(st, 3, now);
		id = step_new_id(store, st, error);
	}
	if (id == 0 && (error == NULL || *error == NULL)) {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_ACCOUNT_BY_DOMAIN);

		mr_sql_bind_text(st, 1, domain);
		id = lookup_again(store, error, "account", domain, mr_store_step_int64(store, st));
	}
	return id;
}

gint64
mr_store_contact_add(MrStore *store, const char *email, const char *name, gint64 account,
		     gint64 owner, const char *now, gboolean *created_out, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_INSERT);
	gint64 id;

	mr_sql_bind_text(st, 1, email);
	mr_sql_bind_text(st, 2, name);
	bind_id(st, 3, account);
	bind_id(st, 4, owner);
	mr_sql_bind_text(st, 5, now);
	id = step_new_id(store, st, error);
	*created_out = id != 0;
	if (id != 0 || (error != NULL && *error != NULL))
		return id;
	g_clear_pointer(&st, stmt_release);
	/* another writer made the contact meanwhile */
	return lookup_again(store, error, "contact", email, mr_store_contact_by_email(store, email));
}

gboolean
mr_store_contact_touch(MrStore *store, gint64 id, const char *name, gint64 owner,
		       const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_TOUCH);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, name);
	bind_id(st, 3, owner);
	mr_sql_bind_text(st, 4, now);
	return step_later(store, st, error);
}

gboolean
mr_store_contact_account_owner(MrStore *store, gint64 id, gint64 *account_out, gint64 *owner_out)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_GET);
	gboolean found;

	mr_sql_bind_int64(st, 1, id);
	found = mr_store_step_row(store, st);
	if (account_out != NULL)
		*account_out = found ? mr_sql_column_int64(st, 0) : 0;
	if (owner_out != NULL)
		*owner_out = found ? mr_sql_column_int64(st, 1) : 0;
	return found;
}

/* --- links ------------------------------------------------------------------ */

static const char *const mr_party_kind_names[] = {
	[MR_PARTY_USER] = "user",
	[MR_PARTY_CONTACT] = "contact",
	[MR_PARTY_ACCOUNT] = "account",
};

gboolean
mr_store_link_party(MrStore *store, gint64 msg, MrPartyKind kind, gint64 id, GError **error)
{
	g_return_val_if_fail((guint)kind < G_N_ELEMENTS(mr_party_kind_names), FALSE);
	return insert_link(store, msg, mr_party_kind_names[kind], id, error);
}

gboolean
mr_store_link_record(MrStore *store, gint64 msg, MrRecordRef ref, GError **error)
{
	if (ref.kind == MR_RECORD_NONE)
		return TRUE;
	return insert_link(store, msg, mr_record_kind_name(ref.kind), ref.id, error);
}

gboolean
mr_store_links_copy(MrStore *store, MrRecordRef from, MrRecordRef to, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LINKS_COPY);

	mr_sql_bind_text(st, 1, mr_record_kind_name(from.kind));
	mr_sql_bind_int64(st, 2, from.id);
	mr_sql_bind_text(st, 3, mr_record_kind_name(to.kind));
	mr_sql_bind_int64(st, 4, to.id);
	return step_done(store, st, error);
}

/* --- records ------------------------------------------------------------------ */

/* Inserts a ticket or a lead (@id: its statement; ?1..?4 the same). */
static gint64
record_insert(MrStore *store, MrStmtId id, const char *title, gint64 contact, gint64 owner,
	      const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, id);

	mr_sql_bind_text(st, 1, title);
	bind_id(st, 2, contact);
	bind_id(st, 3, owner);
	mr_sql_bind_text(st, 4, now);
	return step_id(store, st, error);
}

gint64
mr_store_ticket_insert(MrStore *store, const char *title, gint64 contact, gint64 owner,
		       const char *now, GError **error)
{
	return record_insert(store, MR_STMT_TICKET_INSERT, title, contact, owner, now, error);
}

gint64
mr_store_lead_insert(MrStore *store, const char *title, gint64 contact, gint64 owner,
		     const char *now, GError **error)
{
	return record_insert(store, MR_STMT_LEAD_INSERT, title, contact, owner, now, error);
}

gint64
mr_store_opp_insert(MrStore *store, const char *title, gint64 value, gint64 contact,
		    gint64 account, gint64 owner, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OPP_INSERT);

	mr_sql_bind_text(st, 1, title);
	if (value >= 0)
		mr_sql_bind_int64(st, 2, value);
	bind_id(st, 3, contact);
	bind_id(st, 4, account);
	bind_id(st, 5, owner);
	mr_sql_bind_text(st, 6, now);
	return step_id(store, st, error);
}

gboolean
mr_store_ticket_touch(MrStore *store, gint64 id, const char *now, const char *status,
		      gint64 owner, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TICKET_TOUCH);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, now);
	mr_sql_bind_text(st, 3, status);
	bind_id(st, 4, owner);
	return step_later(store, st, error);
}

gboolean
mr_store_record_touch(MrStore *store, MrRecordRef ref, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	switch (ref.kind) {
	case MR_RECORD_TICKET:
		return mr_store_ticket_touch(store, ref.id, now, NULL, 0, error);
	case MR_RECORD_LEAD:
		st = store_stmt(store, MR_STMT_LEAD_TOUCH);
		break;
	case MR_RECORD_OPPORTUNITY:
		st = store_stmt(store, MR_STMT_OPP_TOUCH);
		break;
	default:
		return TRUE;
	}
	mr_sql_bind_int64(st, 1, ref.id);
	mr_sql_bind_text(st, 2, now);
	return step_later(store, st, error);
}

gboolean
mr_store_ticket_set_status(MrStore *store, gint64 id, const char *status, const char *now,
			   GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TICKET_SET_STATUS);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, status);
	mr_sql_bind_text(st, 3, now);
	return step_done(store, st, error);
}

gboolean
mr_store_lead_set_status(MrStore *store, gint64 id, const char *status, const char *now,
			 gint64 opportunity, gboolean qualified, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LEAD_SET_STATUS);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, status);
	mr_sql_bind_text(st, 3, now);
	bind_id(st, 4, opportunity);
	mr_sql_bind_text(st, 5, qualified ? now : NULL);
	return step_done(store, st, error);
}

gboolean
mr_store_opp_set_closed(MrStore *store, gint64 id, const MrOppClosing *c, const char *now,
			GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OPP_CLOSE);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, c->status);
	mr_sql_bind_text(st, 3, c->stage);
	mr_sql_bind_int64(st, 4, c->probability);
	mr_sql_bind_text(st, 5, c->lost_reason);
	mr_sql_bind_text(st, 6, now);
	mr_sql_bind_text(st, 7, c->from_status);
	return step_done(store, st, error);
}

/* --- messages and deliveries ------------------------------------------------ */

gboolean
mr_store_message_start(MrStore *store, GBytes *raw, const char *key, const MrMessage *msg,
		       GError **error)
{
	MrSqlStmt *st;

	g_return_val_if_fail(store != NULL && raw != NULL && key != NULL && msg != NULL, FALSE);
	g_return_val_if_fail(!!store->conn->driver->in_transaction(store->conn), FALSE);

	store_drop_started(store);
	st = store_stmt(store, MR_STMT_MESSAGE_INSERT);
	store->started_now = mr_clock_now_iso();
	bind_message(st, raw, key, msg, store->started_now);
	if (!mr_sql_send_ahead(st, error)) {
		store_drop_started(store);
		return FALSE;
	}
	store->started_key = g_strdup(key);
	return TRUE;
}

gboolean
mr_store_message_deliver(MrStore *store, GBytes *raw, const char *key, const MrMessage *msg,
			 gint64 message_row, const MrDeliveryNew *delivery, MrStored *out,
			 GError **error)
{
	gboolean started;

	g_return_val_if_fail(store != NULL && raw != NULL && key != NULL && out != NULL, FALSE);
	g_return_val_if_fail(!!store->conn->driver->in_transaction(store->conn), FALSE);

	memset(out, 0, sizeof(*out));
	/* The insert that mr_store_message_start() sent, with its time. */
	started = message_row == 0 && g_strcmp0(store->started_key, key) == 0;
	if (started) {
		out->now = g_steal_pointer(&store->started_now);
		g_clear_pointer(&store->started_key, g_free);
	} else {
		store_drop_started(store);
		out->now = mr_clock_now_iso();
	}
	out->message_row = message_row;
	if (message_row == 0) {
		g_autoptr(GError) local = NULL;

		/* One statement for a new message, the look-up by key included
		 * (a round trip less on PostgreSQL); a duplicate delivery is
		 * found here, after routing, which only reads. */
		out->message_row = insert_message(store, raw, key, msg, out->now, started, &local);
		if (local != NULL) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		out->new_message = out->message_row != 0;
	}
	if (message_row == 0 && !out->new_message) {
		/* stored by an earlier delivery (or another daemon, meanwhile) */
		out->message_row = lookup_again(store, error, "message", key,
						mr_store_message_by_key(store, key));
		if (out->message_row == 0)
			return FALSE;
		if (mr_store_delivery_exists(store, out->message_row, delivery->recipient)) {
			out->duplicate = TRUE;
			return mr_store_check(store, error);
		}
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_DELIVERY_INSERT);

		mr_sql_bind_int64(st, 1, out->message_row);
		mr_sql_bind_text(st, 2, delivery->recipient);
		mr_sql_bind_text(st, 3, delivery->role);
		mr_sql_bind_text(st, 4, delivery->envelope_from);
		mr_sql_bind_text(st, 5, out->now);
		return step_later(store, st, error);
	}
}

void
mr_stored_clear(MrStored *stored)
{
	g_clear_pointer(&stored->now, g_free);
}

/* --- transactions for use cases ------------------------------------------ */

gboolean
mr_store_run(MrStore *store, MrStoreTxFunc fn, gpointer data, GError **error)
{
	/* Inside a transaction already (a unit of work of the writer): its
	 * owner commits or undoes. */
	if (mr_store_in_transaction(store))
		return fn(store, data, error) && mr_store_check(store, error);
	if (!mr_store_begin(store, error))
		return FALSE;
	if (!fn(store, data, error) || !mr_store_check(store, error)) {
		mr_store_rollback(store);
		return FALSE;
	}
	if (!mr_store_commit(store, error)) {
		mr_store_rollback(store);
		return FALSE;
	}
	return TRUE;
}

gboolean
mr_store_record_must_exist(MrStore *store, MrRecordRef ref, char **status_out, GError **error)
{
	if (mr_store_record_exists(store, ref, status_out))
		return TRUE;
	{
		g_autofree char *display = mr_record_display_id(store->cfg, ref);

		mr_store_not_found(store, error, "no such record %s", display);
	}
	return FALSE;
}


/* --- IMAP mailboxes -------------------------------------------------------- */

MrMailboxState *
mr_store_mailbox_get(MrStore *store, const char *name, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MAILBOX_GET);

	mr_sql_bind_text(st, 1, name);
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		return mr_row_new(&mr_mailbox_state_desc, st);
	default:
		return NULL;
	}
}

static gboolean
mailbox_save_tx(MrStore *store, gpointer data, GError **error)
{
	const MrMailboxState *m = data;
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MAILBOX_SAVE);
	g_autofree char *now = mr_clock_now_iso();

	mr_sql_bind_text(st, 1, m->name);
	bind_id(st, 2, m->uidvalidity);
	mr_sql_bind_int64(st, 3, m->last_uid);
	mr_sql_bind_text(st, 4, m->state);
	mr_sql_bind_int64(st, 5, m->backlog);
	mr_sql_bind_text(st, 6, m->last_error);
	mr_sql_bind_text(st, 7, now);
	mr_sql_bind_int64(st, 8, m->inflight_to);
	mr_sql_bind_int64(st, 9, m->inflight_tries);
	return step_done(store, st, error);
}

gboolean
mr_store_mailbox_save(MrStore *store, const MrMailboxState *st, GError **error)
{
	return mr_store_run(store, mailbox_save_tx, (gpointer)st, error);
}

GPtrArray *
mr_store_mailboxes(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MAILBOX_LIST);

	return mr_store_read_rows(st, &mr_mailbox_state_desc, error);
}

/* --- the quarantine ---------------------------------------------------------- */

typedef struct {
	const char *mailbox, *reason;
	gint64 uidvalidity, uid, size;
	GBytes *raw;
} QuarantineAdd;

static gboolean
quarantine_add_tx(MrStore *store, gpointer data, GError **error)
{
	const QuarantineAdd *q = data;
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_QUARANTINE_INSERT);
	g_autofree char *now = mr_clock_now_iso();
	gsize len = 0;
	const void *bytes = g_bytes_get_data(q->raw, &len);

	mr_sql_bind_text(st, 1, q->mailbox);
	mr_sql_bind_int64(st, 2, q->uidvalidity);
	mr_sql_bind_int64(st, 3, q->uid);
	mr_sql_bind_text(st, 4, q->reason);
	mr_sql_bind_int64(st, 5, MAX(q->size, (gint64)len));
	mr_sql_bind_blob(st, 6, bytes != NULL ? bytes : "", len);
	mr_sql_bind_text(st, 7, now);
	return step_done(store, st, error);
}

gboolean
mr_store_quarantine_add(MrStore *store, const char *mailbox, gint64 uidvalidity, gint64 uid,
			const char *reason, gint64 size, GBytes *raw, GError **error)
{
	QuarantineAdd q = { mailbox, reason, uidvalidity, uid, size, raw };

	return mr_store_run(store, quarantine_add_tx, &q, error);
}

GPtrArray *
mr_store_quarantined(MrStore *store, gint64 limit, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_QUARANTINE_LIST);

	mr_sql_bind_int64(st, 1, limit > 0 ? limit : G_MAXINT64);
	return mr_store_read_rows(st, &mr_quarantine_row_desc, error);
}

MrQuarantineRow *
mr_store_quarantine_get(MrStore *store, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_QUARANTINE_GET);
	MrQuarantineRow *q;
	gsize len = 0;
	const void *data;
	int col;

	mr_sql_bind_int64(st, 1, id);
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		break;
	case MR_SQL_DONE:
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND,
			    "no quarantined message %" G_GINT64_FORMAT, id);
		return NULL;
	default:
		return NULL;
	}
	q = g_new0(MrQuarantineRow, 1);
	col = mr_row_read(&mr_quarantine_row_desc, q, st, 0);
	data = store->driver->column_blob(st, col, &len);
	q->raw = g_bytes_new(data, len);
	return q;
}

gboolean
mr_store_quarantine_delete(MrStore *store, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_QUARANTINE_DELETE);

	mr_sql_bind_int64(st, 1, id);
	if (!step_done(store, st, error))
		return FALSE;
	return TRUE;
}
