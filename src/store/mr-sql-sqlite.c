/* mr-sql-sqlite.c - the SQLite driver of the SQL interface (mr-sql.h).
 *
 * Store stage.  The only file that includes <sqlite3.h>.  One file, WAL,
 * synchronous and busy timeout from the configuration; SQLite's result
 * codes become MR_STORE_ERROR here, once. */
#define G_LOG_DOMAIN "mailroom-store"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "mr-sql.h"

typedef struct {
	MrSqlConn base;
	sqlite3 *db;
	char *path;
	GHashTable *control; /* SQL text -> sqlite3_stmt*: BEGIN, SAVEPOINT x, ... */
	gint64 data_version; /* a watcher's last reading (watch_changed) */
	int inotify;         /* a watcher's inotify descriptor on the database
				and its WAL, or -1 (then the watcher's owner
				asks once a second) */
} SqliteConn;

typedef struct {
	MrSqlStmt base;
	sqlite3_stmt *st;
	/* "INSERT ... RETURNING id", run without its RETURNING: SQLite builds
	 * a temporary table for every RETURNING, which cost about 8 % more CPU
	 * per message in group commit (its memory churn made glibc trim the
	 * writer's heap over and over).  The new row's id comes from
	 * sqlite3_last_insert_rowid() instead, as one row, when a row was
	 * inserted (an ON CONFLICT DO NOTHING that did nothing gives none). */
	gboolean returning_id;
	int returned;       /* 0: not stepped; 1: the id row is current; 2: done */
	gint64 id;
} SqliteStmt;

#define RETURNING_ID " RETURNING id"

#define CONN(c) ((SqliteConn *)(c))
#define STMT(s) (((SqliteStmt *)(s))->st)

static void
control_free(gpointer st)
{
	sqlite3_finalize(st);
}

/* Returns: the MR_STORE_ERROR code of SQLite result code @rc. */
static int
sqlite_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return MR_STORE_ERROR_BUSY;
	case SQLITE_CONSTRAINT:
		return MR_STORE_ERROR_CONSTRAINT;
	default:
		return MR_STORE_ERROR_FAILED;
	}
}

/* Sets @error from the connection's last result code. */
static void
sqlite_error(sqlite3 *db, int rc, const char *what, GError **error)
{
	g_set_error(error, MR_STORE_ERROR, sqlite_code(rc), "%s: %s", what,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static gboolean
sqlite_exec(MrSqlConn *c, const char *script, GError **error)
{
	char *msg = NULL;
	int rc = sqlite3_exec(CONN(c)->db, script, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		g_set_error(error, MR_STORE_ERROR, sqlite_code(sqlite3_extended_errcode(CONN(c)->db)),
			    "%s", msg != NULL ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return FALSE;
	}
	return TRUE;
}

/* Runs a transaction-control statement, prepared once per text. */
static gboolean
sqlite_control(MrSqlConn *c, const char *sql, GError **error)
{
	SqliteConn *conn = CONN(c);
	sqlite3_stmt *st = g_hash_table_lookup(conn->control, sql);
	int rc;

	if (st == NULL) {
		rc = sqlite3_prepare_v3(conn->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK) {
			sqlite_error(conn->db, rc, sql, error);
			return FALSE;
		}
		g_hash_table_insert(conn->control, g_strdup(sql), st);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		sqlite_error(conn->db, rc, sql, error);
		return FALSE;
	}
	return TRUE;
}

static gboolean
sqlite_begin(MrSqlConn *c, GError **error)
{
	return sqlite_control(c, "BEGIN IMMEDIATE", error);
}

static gboolean
sqlite_commit(MrSqlConn *c, GError **error)
{
	return sqlite_control(c, "COMMIT", error);
}

static gboolean
sqlite_in_transaction(MrSqlConn *c)
{
	return !sqlite3_get_autocommit(CONN(c)->db);
}

static void
sqlite_rollback(MrSqlConn *c)
{
	g_autoptr(GError) error = NULL;

	if (sqlite_in_transaction(c) && !sqlite_control(c, "ROLLBACK", &error))
		g_warning("rollback failed: %s", error->message);
}

static gboolean
sqlite_savepoint_op(MrSqlConn *c, const char *op, const char *name, GError **error)
{
	char sql[96];

	g_return_val_if_fail(strlen(name) < 64, FALSE);
	g_snprintf(sql, sizeof sql, "%s %s", op, name);
	return sqlite_control(c, sql, error);
}

static gboolean
sqlite_savepoint(MrSqlConn *c, const char *name, GError **error)
{
	return sqlite_savepoint_op(c, "SAVEPOINT", name, error);
}

static gboolean
sqlite_release(MrSqlConn *c, const char *name, GError **error)
{
	return sqlite_savepoint_op(c, "RELEASE", name, error);
}

static gboolean
sqlite_rollback_to(MrSqlConn *c, const char *name, GError **error)
{
	return sqlite_savepoint_op(c, "ROLLBACK TO", name, error);
}

static int
sqlite_schema_version(MrSqlConn *c, GError **error)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(CONN(c)->db, "PRAGMA user_version", -1, &st, NULL);
	int v = -1;

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	else
		sqlite_error(CONN(c)->db, rc, "PRAGMA user_version", error);
	sqlite3_finalize(st);
	return v;
}

/* Reads PRAGMA data_version, which moves when another connection commits
 * a change to the database.  Returns -1 with @error. */
static gint64
sqlite_data_version(MrSqlConn *c, GError **error)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(CONN(c)->db, "PRAGMA data_version", -1, &st, NULL);
	gint64 v = -1;

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		sqlite_error(CONN(c)->db, rc, "PRAGMA data_version", error);
	sqlite3_finalize(st);
	return v;
}

/* A watcher learns of another connection's commit from the kernel, not by
 * asking: inotify on the database file and its WAL reports each write to
 * them, and only then is data_version read.  (The files, not their
 * folder: a file that something else writes there all the time -- a log
 * -- would wake the watcher for nothing.)  The WAL is there while any
 * connection is open, the watcher's own included.  Without inotify
 * (another kernel, no descriptor left) the watcher's owner asks once a
 * second. */
static gboolean
sqlite_watch_start(MrSqlConn *c, GError **error)
{
	SqliteConn *conn = CONN(c);

	conn->data_version = sqlite_data_version(c, error);
	if (conn->data_version < 0)
		return FALSE;
#ifdef __linux__
	if (conn->inotify < 0) {
		g_autofree char *wal = g_strconcat(conn->path, "-wal", NULL);

		conn->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (conn->inotify >= 0 &&
		    (inotify_add_watch(conn->inotify, conn->path, IN_MODIFY) < 0 ||
		     inotify_add_watch(conn->inotify, wal, IN_MODIFY) < 0)) {
			g_info("%s: no inotify watch (%s): asking once a second", conn->path,
			       g_strerror(errno));
			close(conn->inotify);
			conn->inotify = -1;
		}
	}
#endif
	return TRUE;
}

static int
sqlite_watch_fd(MrSqlConn *c)
{
	return CONN(c)->inotify;
}

#ifdef __linux__
/* The most reads of the inotify descriptor per look: events that keep
 * coming wait for the next turn of the main loop. */
#define WATCH_READS_MAX 16

/* Reads the events the inotify descriptor holds (every one is a write to
 * the database or its WAL). */
static void
watch_drain(SqliteConn *conn)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (int i = 0; i < WATCH_READS_MAX; i++) {
		ssize_t n = read(conn->inotify, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
	}
}
#endif

static gboolean
sqlite_watch_changed(MrSqlConn *c, GError **error)
{
	gint64 v;

#ifdef __linux__
	/* what the kernel reported is read; whether a commit came is
	 * data_version's to say (a write to the WAL comes before the commit
	 * is visible: the watcher's owner looks again shortly after) */
	if (CONN(c)->inotify >= 0)
		watch_drain(CONN(c));
#endif
	v = sqlite_data_version(c, error);

	if (v < 0 || v == CONN(c)->data_version)
		return FALSE;
	CONN(c)->data_version = v;
	return TRUE;
}

/* pg_notify(channel, payload): PostgreSQL's notification, which the
 * store's SQL sends when it adds work; SQLite's watchers see every
 * commit instead, so here it does nothing. */
static void
sqlite_pg_notify(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	sqlite3_result_null(ctx);
}

static gboolean
sqlite_set_schema_version(MrSqlConn *c, int version, GError **error)
{
	g_autofree char *sql = g_strdup_printf("PRAGMA user_version = %d", version);

	return sqlite_exec(c, sql, error);
}

static MrSqlStmt *
sqlite_prepare(MrSqlConn *c, const char *sql, GError **error)
{
	SqliteStmt *s = g_new0(SqliteStmt, 1);
	gsize len = strlen(sql);
	int rc;

	if (g_str_has_suffix(sql, RETURNING_ID) && g_ascii_strncasecmp(sql, "INSERT", 6) == 0) {
		s->returning_id = TRUE;
		len -= strlen(RETURNING_ID);
	}
	rc = sqlite3_prepare_v3(CONN(c)->db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &s->st,
				NULL);

	if (rc != SQLITE_OK) {
		sqlite_error(CONN(c)->db, rc, "prepare", error);
		g_free(s);
		return NULL;
	}
	s->base.conn = c;
	return &s->base;
}

static void
sqlite_finalize(MrSqlStmt *st)
{
	if (st == NULL)
		return;
	sqlite3_finalize(STMT(st));
	g_free(st);
}

static int
sqlite_param_count(MrSqlStmt *st)
{
	return sqlite3_bind_parameter_count(STMT(st));
}

static void
sqlite_bind_null(MrSqlStmt *st, int i)
{
	sqlite3_bind_null(STMT(st), i);
}

static void
sqlite_bind_int64(MrSqlStmt *st, int i, gint64 v)
{
	sqlite3_bind_int64(STMT(st), i, (sqlite3_int64)v);
}

static void
sqlite_bind_text(MrSqlStmt *st, int i, const char *v)
{
	sqlite3_bind_text(STMT(st), i, v, -1, SQLITE_TRANSIENT);
}

static void
sqlite_bind_blob(MrSqlStmt *st, int i, const void *data, gsize len)
{
	/* A zero-length blob is a blob, not NULL: give SQLite a pointer. */
	sqlite3_bind_blob64(STMT(st), i, len > 0 ? data : "", len, SQLITE_STATIC);
}

static MrSqlStep
sqlite_step(MrSqlStmt *st, GError **error)
{
	SqliteStmt *s = (SqliteStmt *)st;
	int rc;

	if (s->returning_id && s->returned > 0) {
		s->returned = 2;
		return MR_SQL_DONE;
	}
	rc = sqlite3_step(STMT(st));
	if (s->returning_id && rc == SQLITE_DONE) {
		sqlite3 *db = CONN(st->conn)->db;

		if (sqlite3_changes(db) == 0) {
			s->returned = 2;
			return MR_SQL_DONE;
		}
		s->id = sqlite3_last_insert_rowid(db);
		s->returned = 1;
		return MR_SQL_ROW;
	}

	if (rc == SQLITE_ROW)
		return MR_SQL_ROW;
	if (rc == SQLITE_DONE)
		return MR_SQL_DONE;
	sqlite_error(CONN(st->conn)->db, rc, sqlite3_sql(STMT(st)), error);
	return MR_SQL_FAIL;
}

static void
sqlite_reset(MrSqlStmt *st)
{
	((SqliteStmt *)st)->returned = 0;
	sqlite3_reset(STMT(st));
	sqlite3_clear_bindings(STMT(st));
}

static int
sqlite_column_count(MrSqlStmt *st)
{
	return ((SqliteStmt *)st)->returning_id ? 1 : sqlite3_column_count(STMT(st));
}

static const char *
sqlite_column_name(MrSqlStmt *st, int i)
{
	return ((SqliteStmt *)st)->returning_id ? "id" : sqlite3_column_name(STMT(st), i);
}

static MrSqlType
sqlite_column_type(MrSqlStmt *st, int i)
{
	if (((SqliteStmt *)st)->returning_id)
		return MR_SQL_TYPE_INT;
	switch (sqlite3_column_type(STMT(st), i)) {
	case SQLITE_INTEGER:
		return MR_SQL_TYPE_INT;
	case SQLITE_FLOAT:
		return MR_SQL_TYPE_FLOAT;
	case SQLITE_TEXT:
		return MR_SQL_TYPE_TEXT;
	case SQLITE_BLOB:
		return MR_SQL_TYPE_BLOB;
	default:
		return MR_SQL_TYPE_NULL;
	}
}

static gint64
sqlite_column_int64(MrSqlStmt *st, int i)
{
	if (((SqliteStmt *)st)->returning_id)
		return ((SqliteStmt *)st)->id;
	return sqlite3_column_int64(STMT(st), i);
}

static double
sqlite_column_double(MrSqlStmt *st, int i)
{
	return sqlite3_column_double(STMT(st), i);
}

static const char *
sqlite_column_text(MrSqlStmt *st, int i)
{
	return (const char *)sqlite3_column_text(STMT(st), i);
}

static const void *
sqlite_column_blob(MrSqlStmt *st, int i, gsize *len)
{
	const void *data = sqlite3_column_blob(STMT(st), i);

	*len = (gsize)sqlite3_column_bytes(STMT(st), i);
	return data;
}

static void
sqlite_close(MrSqlConn *c)
{
	SqliteConn *conn = CONN(c);

	if (conn == NULL)
		return;
	if (conn->db != NULL)
		sqlite_rollback(c);
	g_clear_pointer(&conn->control, g_hash_table_unref);
	sqlite3_close(conn->db);
	if (conn->inotify >= 0)
		close(conn->inotify);
	g_free(conn->path);
	g_free(conn);
}

static MrSqlConn *
sqlite_open(const MrConfig *cfg, gboolean create, GError **error)
{
	SqliteConn *conn = g_new0(SqliteConn, 1);
	g_autofree char *dir = g_path_get_dirname(cfg->database);
	g_autofree char *pragmas = NULL;
	int rc;

	conn->base.driver = &mr_sql_sqlite_driver;
	conn->inotify = -1;
	conn->path = g_strdup(cfg->database);
	conn->control = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					      control_free);
	if (!create && !g_file_test(cfg->database, G_FILE_TEST_EXISTS)) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND,
			    "%s: no such database (mailroomctl init creates it)", cfg->database);
		sqlite_close(&conn->base);
		return NULL;
	}
	if (create && g_mkdir_with_parents(dir, 0750) != 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN,
			    "%s: cannot create directory: %s", dir, g_strerror(errno));
		sqlite_close(&conn->base);
		return NULL;
	}
	rc = sqlite3_open_v2(cfg->database, &conn->db,
			     SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN, "%s: %s", cfg->database,
			    conn->db != NULL ? sqlite3_errmsg(conn->db) : sqlite3_errstr(rc));
		sqlite_close(&conn->base);
		return NULL;
	}
	sqlite3_extended_result_codes(conn->db, 1);
	sqlite3_create_function(conn->db, "pg_notify", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				sqlite_pg_notify, NULL, NULL);
	sqlite3_busy_timeout(conn->db, cfg->store.busy_timeout_ms);
	pragmas = g_strdup_printf("PRAGMA journal_mode = WAL;"
				  "PRAGMA synchronous = %s;"
				  "PRAGMA foreign_keys = ON;"
				  /* savepoints' journals in memory, not in temporary
				   * files: every message and unit of the writer has
				   * one (a quarter of an outgoing mail's CPU) */
				  "PRAGMA temp_store = MEMORY;"
				  /* reads without a copy; bounded, as mapped pages count in
				   * the daemon's RSS */
				  "PRAGMA mmap_size = 33554432;",
				  g_ascii_strcasecmp(cfg->store.synchronous, "normal") == 0 ? "NORMAL"
										      : "FULL");
	if (!sqlite_exec(&conn->base, pragmas, error)) {
		g_prefix_error(error, "%s: ", cfg->database);
		sqlite_close(&conn->base);
		return NULL;
	}
	return &conn->base;
}

const MrSqlDriver mr_sql_sqlite_driver = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.exec = sqlite_exec,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.in_transaction = sqlite_in_transaction,
	.savepoint = sqlite_savepoint,
	.release = sqlite_release,
	.rollback_to = sqlite_rollback_to,
	.schema_version = sqlite_schema_version,
	.set_schema_version = sqlite_set_schema_version,
	.prepare = sqlite_prepare,
	.finalize = sqlite_finalize,
	.param_count = sqlite_param_count,
	.bind_null = sqlite_bind_null,
	.bind_int64 = sqlite_bind_int64,
	.bind_text = sqlite_bind_text,
	.bind_blob = sqlite_bind_blob,
	.step = sqlite_step,
	.reset = sqlite_reset,
	.column_count = sqlite_column_count,
	.column_name = sqlite_column_name,
	.column_type = sqlite_column_type,
	.column_int64 = sqlite_column_int64,
	.column_double = sqlite_column_double,
	.column_text = sqlite_column_text,
	.column_blob = sqlite_column_blob,
	.watch_start = sqlite_watch_start,
	.watch_fd = sqlite_watch_fd,
	.watch_changed = sqlite_watch_changed,
};
