/* mr-sql.h - the SQL driver interface under the store (src/store only).
 *
 * The store speaks SQL through this and nothing else; a driver (SQLite
 * today, PostgreSQL next) implements it for one database engine.  The
 * model is Dovecot's lib-sql, made synchronous: a connection, transactions
 * and named savepoints, prepared statements with ?N parameters (1-based)
 * and a row cursor, columns 0-based.  One exception, for engines behind a
 * network round trip: a statement without rows may be held back
 * (step_later) and its error reported by the next statement waited for,
 * and one with rows sent ahead of its step (send_ahead).
 *
 * Errors are set in MR_STORE_ERROR and classified once, by the driver:
 * MR_STORE_ERROR_BUSY for what may succeed when tried again (a lock held
 * too long, a serialization failure or deadlock, a lost connection),
 * MR_STORE_ERROR_CONSTRAINT for a row a constraint refused, and
 * MR_STORE_ERROR_FAILED for everything else (a full disk, a broken
 * database, a bug).  For the doors all three are temporary: nothing was
 * stored. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-error.h"

G_BEGIN_DECLS

typedef struct _MrSqlDriver MrSqlDriver;

/* The first member of every driver's connection and statement. */
typedef struct {
	const MrSqlDriver *driver;
} MrSqlConn;

typedef struct {
	MrSqlConn *conn;
} MrSqlStmt;

typedef enum {
	MR_SQL_ROW,  /* a row is ready: read its columns */
	MR_SQL_DONE, /* no (more) rows: the statement ran to its end */
	MR_SQL_FAIL, /* the error is set */
} MrSqlStep;

/* How a release that waits ended (release_later, released). */
typedef enum {
	MR_SQL_RELEASE_DONE,
	MR_SQL_RELEASE_WAITING,
	MR_SQL_RELEASE_FAILED, /* the error is set */
} MrSqlRelease;

typedef enum {
	MR_SQL_TYPE_NULL,
	MR_SQL_TYPE_INT,
	MR_SQL_TYPE_FLOAT,
	MR_SQL_TYPE_TEXT,
	MR_SQL_TYPE_BLOB,
} MrSqlType;

struct _MrSqlDriver {
	const char *name; /* "sqlite", "postgresql" */

	/* Opens (for SQLite: creating when missing) the database of @cfg with
	 * its durability settings.  @create FALSE: fail with
	 * MR_STORE_ERROR_NOT_FOUND when it does not exist. */
	MrSqlConn *(*open)(const MrConfig *cfg, gboolean create, GError **error);
	/* Closes @conn, rolling back an open transaction; finalizes nothing:
	 * the caller finalizes its statements first. */
	void (*close)(MrSqlConn *conn);
	/* Runs @script, one or more statements without parameters or rows. */
	gboolean (*exec)(MrSqlConn *conn, const char *script, GError **error);

	/* Transactions.  begin takes the write lock where the engine has one
	 * (SQLite: BEGIN IMMEDIATE), so that what is read before the apply
	 * cannot change under it. */
	gboolean (*begin)(MrSqlConn *conn, GError **error);
	gboolean (*commit)(MrSqlConn *conn, GError **error);
	void (*rollback)(MrSqlConn *conn);
	/* TRUE while a transaction is open; FALSE after an error means the
	 * engine ended it on its own and everything since begin is gone. */
	gboolean (*in_transaction)(MrSqlConn *conn);
	gboolean (*savepoint)(MrSqlConn *conn, const char *name, GError **error);
	gboolean (*release)(MrSqlConn *conn, const char *name, GError **error);
	gboolean (*rollback_to)(MrSqlConn *conn, const char *name, GError **error);
	/* (nullable) Releases savepoint @name as release does, without
	 * waiting: the engine may send the release, and the statements held
	 * back before it, with the next statement whose answer is needed.
	 * Until then the work under the savepoint may still fail; released()
	 * tells.  When another release waits already, this one waits for both
	 * (as release).  NULL: release. */
	gboolean (*release_later)(MrSqlConn *conn, const char *name, GError **error);
	/* (nullable) The end of the release that release_later left waiting,
	 * waiting for it when it is not known yet and @wait.  DONE when it
	 * went through (or none waits); FAILED with @error, the failure of
	 * the work under it: then that savepoint is still there, the
	 * innermost, in an aborted transaction, and whatever was sent after
	 * the release was skipped; WAITING when not known and not @wait.
	 * Forgets the release once known.  NULL: always DONE. */
	MrSqlRelease (*released)(MrSqlConn *conn, gboolean wait, GError **error);
	/* (nullable) Inside a transaction: waits until no other process
	 * migrates the schema (SQLite's BEGIN IMMEDIATE does that already). */
	gboolean (*lock_schema)(MrSqlConn *conn, GError **error);
	/* (nullable) For engines whose concurrent writers can commit in
	 * another order than they drew ids (PostgreSQL): runs @sql, a query
	 * of one integer, at a moment when no write transaction is open
	 * (begin makes every write transaction hold a lock that this waits
	 * for), so that every row with an id up to its answer is committed
	 * or gone for good.  NULL where writers take turns (SQLite). */
	gboolean (*settled_int64)(MrSqlConn *conn, const char *sql, gint64 *out, GError **error);

	/* The schema version stored in the database (0: empty), and setting
	 * it inside the migration's transaction. */
	int (*schema_version)(MrSqlConn *conn, GError **error);
	gboolean (*set_schema_version)(MrSqlConn *conn, int version, GError **error);

	/* Statements: prepared once, used many times (reset between uses). */
	MrSqlStmt *(*prepare)(MrSqlConn *conn, const char *sql, GError **error);
	void (*finalize)(MrSqlStmt *st);
	int (*param_count)(MrSqlStmt *st);
	void (*bind_null)(MrSqlStmt *st, int i);
	void (*bind_int64)(MrSqlStmt *st, int i, gint64 v);
	/* @v is copied. */
	void (*bind_text)(MrSqlStmt *st, int i, const char *v);
	/* @data must stay valid until the statement is reset. */
	void (*bind_blob)(MrSqlStmt *st, int i, const void *data, gsize len);
	MrSqlStep (*step)(MrSqlStmt *st, GError **error);
	/* (nullable) Steps @st, a statement without rows whose outcome can
	 * wait, inside a transaction: the engine may hold it back and send it
	 * with the next statement whose answer is needed.  Its error is then
	 * reported by the next step, release, commit or exec -- whichever
	 * comes first; never lost, and always before the savepoint it ran
	 * under is released.  The statement may be reset and used again at
	 * once.  NULL: step runs it now. */
	gboolean (*step_later)(MrSqlStmt *st, GError **error);
	/* (nullable) Sends @st, a bound statement with rows, ahead of its
	 * first step, inside a transaction: the engine may hold it back and
	 * send it with the next statement whose answer is needed, and keep
	 * its rows in @st until it is stepped.  Its error is reported by that
	 * step, and as for step_later by the next statement waited for.
	 * Resetting @st before its step drops its rows, not its error.  NULL:
	 * the first step runs it. */
	gboolean (*send_ahead)(MrSqlStmt *st, GError **error);
	/* Ends the current use: rows, snapshot and bindings go. */
	void (*reset)(MrSqlStmt *st);
	int (*column_count)(MrSqlStmt *st);
	const char *(*column_name)(MrSqlStmt *st, int i);
	MrSqlType (*column_type)(MrSqlStmt *st, int i);
	gint64 (*column_int64)(MrSqlStmt *st, int i);
	double (*column_double)(MrSqlStmt *st, int i);
	/* NULL for SQL NULL; valid until the next step or reset. */
	const char *(*column_text)(MrSqlStmt *st, int i);
	const void *(*column_blob)(MrSqlStmt *st, int i, gsize *len);

	/* (nullable) Returns: (transfer full) (nullable): @database, a name
	 * this driver opens, as logs and output may show it: every secret
	 * the engine would read from it (a password, in whatever spelling
	 * the engine accepts: percent-encoded keys too) replaced by "***";
	 * NULL when the engine cannot parse it (the caller then hides all
	 * that could hold one).  NULL member: its names hold no secrets (a
	 * file name). */
	char *(*mask_uri)(const char *database);
	/* Watching other connections' work (mr_store_watch_start()): makes
	 * @conn a watcher; the descriptor to wait on (-1: ask once a
	 * second); TRUE when work was committed since the last call. */
	gboolean (*watch_start)(MrSqlConn *conn, GError **error);
	int (*watch_fd)(MrSqlConn *conn);
	gboolean (*watch_changed)(MrSqlConn *conn, GError **error);
};

/* The drivers: SQLite (mr-sql-sqlite.c, built in) and PostgreSQL
 * (mr-sql-pgsql.c, the module mailroom-pgsql.so, which exports it under
 * this name). */
extern const MrSqlDriver mr_sql_sqlite_driver;
extern const MrSqlDriver mr_sql_pgsql_driver;

/* Returns: the driver for @database: a postgresql:// or postgres:// URI
 * selects PostgreSQL (loading its module on first use: from
 * $MAILROOM_MODULE_DIR, the program's own directory, or MR_MODULEDIR),
 * anything else is an SQLite file.  NULL with @error
 * (MR_STORE_ERROR_OPEN) for another scheme or a module not found. */
const MrSqlDriver *mr_sql_driver_for(const char *database, GError **error);

/* Thin dispatchers, so that callers read like the SQL they run. */
static inline gboolean
mr_sql_exec(MrSqlConn *c, const char *script, GError **error)
{
	return c->driver->exec(c, script, error);
}

static inline MrSqlStep
mr_sql_step(MrSqlStmt *st, GError **error)
{
	return st->conn->driver->step(st, error);
}

/* Steps a statement without rows whose error may come later (see
 * step_later); TRUE when it ran or was held back. */
static inline gboolean
mr_sql_step_later(MrSqlStmt *st, GError **error)
{
	const MrSqlDriver *d = st->conn->driver;

	if (d->step_later != NULL)
		return d->step_later(st, error);
	return d->step(st, error) != MR_SQL_FAIL;
}

/* Sends a statement with rows ahead of its first step (see send_ahead);
 * TRUE when it was sent or will run at its step. */
static inline gboolean
mr_sql_send_ahead(MrSqlStmt *st, GError **error)
{
	const MrSqlDriver *d = st->conn->driver;

	return d->send_ahead == NULL || d->send_ahead(st, error);
}

static inline void
mr_sql_reset(MrSqlStmt *st)
{
	st->conn->driver->reset(st);
}

static inline void
mr_sql_bind_int64(MrSqlStmt *st, int i, gint64 v)
{
	st->conn->driver->bind_int64(st, i, v);
}

static inline void
mr_sql_bind_null(MrSqlStmt *st, int i)
{
	st->conn->driver->bind_null(st, i);
}

/* Binds @v, or NULL when @v is NULL. */
static inline void
mr_sql_bind_text(MrSqlStmt *st, int i, const char *v)
{
	if (v == NULL)
		st->conn->driver->bind_null(st, i);
	else
		st->conn->driver->bind_text(st, i, v);
}

static inline void
mr_sql_bind_blob(MrSqlStmt *st, int i, const void *data, gsize len)
{
	st->conn->driver->bind_blob(st, i, data, len);
}

static inline gint64
mr_sql_column_int64(MrSqlStmt *st, int i)
{
	return st->conn->driver->column_int64(st, i);
}

static inline const char *
mr_sql_column_text(MrSqlStmt *st, int i)
{
	return st->conn->driver->column_text(st, i);
}

G_END_DECLS
