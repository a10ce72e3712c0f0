/* mr-store.c - the store: its statements' helpers, open and migrate,
 * transactions.  The aggregates have a file each (mr-store-party.c,
 * -record.c, -message.c, -event.c, -mailbox.c), the CLI's queries
 * mr-store-query.c.
 *
 * Store stage.  Owns the connection and its prepared statements (texts in
 * mr-store-sql.c) and speaks to the database only through the SQL driver
 * interface (mr-sql.h), which classifies the engine's errors. */
#define G_LOG_DOMAIN "mailroom-store"

#include <stdarg.h>
#include <string.h>

#include "mr-store-private.h"
#include "mailroom/mr-error.h"

/* Binds @v, or NULL when @v is 0 (an absent row id). */
void
mr_store_bind_id(MrSqlStmt *st, int i, gint64 v)
{
	if (v == 0)
		mr_sql_bind_null(st, i);
	else
		mr_sql_bind_int64(st, i, v);
}

/* Steps a statement that returns no rows. */
gboolean
mr_store_step_done(MrStore *store, MrSqlStmt *st, GError **error)
{
	return mr_sql_step(st, error) != MR_SQL_FAIL;
}

/* Steps a statement that returns no rows and whose outcome can wait: the
 * driver may send it with the next statement that answers, which then
 * reports its error (mr-sql.h, step_later).  For the inserts and updates
 * of applying a plan, whose errors all end in the same undo. */
gboolean
mr_store_step_later(MrStore *store, MrSqlStmt *st, GError **error)
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
gint64
mr_store_step_new_id(MrStore *store, MrSqlStmt *st, GError **error)
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
gint64
mr_store_step_id(MrStore *store, MrSqlStmt *st, GError **error)
{
	g_autoptr(GError) local = NULL;
	gint64 id = mr_store_step_new_id(store, st, &local);

	if (id == 0 && local == NULL)
		local = g_error_new(MR_STORE_ERROR, MR_STORE_ERROR_FAILED, "insert returned no id");
	if (local != NULL)
		g_propagate_error(error, g_steal_pointer(&local));
	return id;
}

/* Forgets the message insert that mr_store_message_start() left bound:
 * its rows, if sent ahead, are dropped (not its error). */
void
mr_store_drop_started(MrStore *store)
{
	if (store->started_key == NULL && store->started_now == NULL)
		return;
	mr_sql_reset(store->stmt[MR_STMT_MESSAGE_INSERT]);
	g_clear_pointer(&store->started_key, g_free);
	g_clear_pointer(&store->started_now, g_free);
}

static gboolean store_settle(MrStore *store, gboolean wait);

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
		mr_store_drop_started(store);
	for (int i = 0; i < MR_STMT_N_STATEMENTS; i++)
		if (store->stmt[i] != NULL)
			store->driver->finalize(store->stmt[i]);
	if (store->conn != NULL)
		store->driver->close(store->conn);
	g_clear_error(&store->lookup_error);
	g_free(store);
}

gboolean
mr_store_work_added(MrStore *store)
{
	return store->work_added;
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
	store->work_notified = FALSE;
	store->work_added = FALSE;
	return store->driver->begin(store->conn, error);
}

gboolean
mr_store_commit(MrStore *store, GError **error)
{
	g_autoptr(GError) local = NULL;

	mr_store_drop_started(store);
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
	store->work_notified = FALSE;
	mr_store_drop_started(store);
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
	mr_store_drop_started(store);
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

	mr_store_drop_started(store);
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
	store->work_notified = FALSE; /* a notification there is undone */
	mr_store_drop_started(store);
	/* The database ended the transaction on its own: nothing to undo. */
	if (!mr_store_in_transaction(store))
		return;
	if (!store->driver->rollback_to(store->conn, MR_STORE_SAVEPOINT, &error) ||
	    !store->driver->release(store->conn, MR_STORE_SAVEPOINT, &error))
		g_warning("undoing a message's savepoint failed: %s", error->message);
}

/* After an insert that found its row there already: @id is what the look-up
 * found now.  Returns it, or 0 with @error when the row is gone again. */
gint64
mr_store_lookup_again(MrStore *store, GError **error, const char *what, const char *key, gint64 id)
{
	if (id == 0 && !take_lookup_error(store, error))
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY,
			    "%s %s was inserted by another writer and is not there", what, key);
	return id;
}

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

void
mr_store_bind_record(MrSqlStmt *st, int i, MrRecordRef ref)
{
	if (ref.kind == MR_RECORD_NONE) {
		mr_sql_bind_null(st, i);
		mr_sql_bind_null(st, i + 1);
		return;
	}
	mr_sql_bind_text(st, i, mr_record_kind_name(ref.kind));
	mr_sql_bind_int64(st, i + 1, ref.id);
}

MrRecordRef
mr_store_column_record(MrSqlStmt *st, int i)
{
	MrRecordRef ref = { MR_RECORD_NONE, 0 };
	const char *kind = mr_sql_column_text(st, i);

	if (kind != NULL) {
		ref.kind = mr_record_kind_from_name(kind);
		ref.id = mr_sql_column_int64(st, i + 1);
	}
	return ref;
}

gboolean
mr_store_step_changed(MrSqlStmt *st, gboolean *changed, GError **error)
{
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		*changed = TRUE;
		return TRUE;
	case MR_SQL_DONE:
		*changed = FALSE;
		return TRUE;
	default:
		return FALSE;
	}
}

gpointer
mr_store_read_one(MrSqlStmt *st, const MrRowDesc *desc, const char *what, const char *key,
		  GError **error)
{
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		return mr_row_new(desc, st);
	case MR_SQL_DONE:
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no %s %s", what, key);
		return NULL;
	default:
		return NULL;
	}
}

gpointer
mr_store_read_by_id(MrStore *store, MrStmtId stmt, const MrRowDesc *desc, const char *what,
		    gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, stmt);
	g_autofree char *key = g_strdup_printf("%" G_GINT64_FORMAT, id);

	mr_sql_bind_int64(st, 1, id);
	return mr_store_read_one(st, desc, what, key, error);
}
