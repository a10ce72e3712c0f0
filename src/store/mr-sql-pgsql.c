/* mr-sql-pgsql.c - the PostgreSQL driver of the SQL interface (mr-sql.h).
 *
 * Store stage.  The only file that includes <libpq-fe.h>.  One libpq
 * connection per MrStore, used by one thread.  Statements are prepared on
 * the server (PQprepare) at their first use and run with PQexecPrepared: text parameters, a
 * blob as a binary parameter (no escaping), text results.  The store's
 * portable SQL is adapted here, in one place: ?N parameters become $N and
 * group_concat() becomes string_agg().  A lost connection is a temporary
 * error; the next transaction reconnects and prepares again. */
#define G_LOG_DOMAIN "mailroom-store"

#include <string.h>

#include <libpq-fe.h>

#include "mr-sql.h"

/* The type OIDs that the store reads (pg_type.h; stable for ever). */
#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23
#define PG_OID_TEXT 25
#define PG_OID_OID 26
#define PG_OID_FLOAT4 700
#define PG_OID_FLOAT8 701
#define PG_OID_NUMERIC 1700

/* Serialises schema migrations of several daemons (an advisory lock). */
#define PG_SCHEMA_LOCK 0x6d61696c726f6f6dLL /* "mailroom" */
/* Every write transaction holds this advisory lock shared until its end;
 * pg_settled_int64() takes it exclusively for one query: then no writer
 * is between drawing an id and its COMMIT. */
#define PG_WRITERS_LOCK (PG_SCHEMA_LOCK + 1)

typedef struct {
	MrSqlConn base;
	PGconn *pg;
	guint generation; /* bumped by every reconnect: statements prepare again */
	guint next_id;    /* statement names */
} PgConn;

typedef struct {
	MrSqlStmt base;
	char name[24];
	char *sql;          /* with $N parameters */
	int nparams;
	Oid *types;         /* per parameter: 0 (the server infers it), or text
	                       for one the statement does not use */
	guint generation;   /* prepared on this connection generation; 0: not */
	char **values;      /* bound parameters; text owned, blobs borrowed */
	int *lengths, *formats;
	gboolean *owned;
	PGresult *res;      /* the result of the current use */
	int row;            /* the current row; -1 before the first step */
	guint8 *blob;       /* the last bytea column decoded */
} PgStmt;

#define CONN(c) ((PgConn *)(c))
#define STMT(s) ((PgStmt *)(s))

/* Classifies a failed result (or the connection's state) into @error. */
static void
pg_error(PgConn *conn, const PGresult *res, const char *what, GError **error)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	g_autofree char *msg = g_strdup(res != NULL && *PQresultErrorMessage(res) != '\0'
						? PQresultErrorMessage(res)
						: PQerrorMessage(conn->pg));
	int code = MR_STORE_ERROR_FAILED;

	g_strstrip(msg);
	if (PQstatus(conn->pg) != CONNECTION_OK || state == NULL)
		code = MR_STORE_ERROR_BUSY; /* the connection: try again later */
	else if (g_str_has_prefix(state, "23"))
		code = MR_STORE_ERROR_CONSTRAINT;
	else if (g_str_has_prefix(state, "40") || g_str_has_prefix(state, "08") ||
		 g_str_has_prefix(state, "57P") || strcmp(state, "55P03") == 0 ||
		 strcmp(state, "53300") == 0)
		code = MR_STORE_ERROR_BUSY; /* serialization, deadlock, lock time-out,
					       shutdown, too many connections */
	g_set_error(error, MR_STORE_ERROR, code, "%s: %s%s%s%s", what, msg,
		    state != NULL ? " (SQLSTATE " : "", state != NULL ? state : "",
		    state != NULL ? ")" : "");
}

/* Reconnects a broken connection.  Returns FALSE with @error. */
static gboolean
pg_ensure(PgConn *conn, GError **error)
{
	if (PQstatus(conn->pg) == CONNECTION_OK)
		return TRUE;
	PQreset(conn->pg);
	if (PQstatus(conn->pg) != CONNECTION_OK) {
		pg_error(conn, NULL, "reconnect", error);
		return FALSE;
	}
	conn->generation++;
	g_message("reconnected to the database");
	return TRUE;
}

static gboolean
pg_exec(MrSqlConn *c, const char *script, GError **error)
{
	PgConn *conn = CONN(c);
	PGresult *res = PQexec(conn->pg, script);
	ExecStatusType st = PQresultStatus(res);
	gboolean ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		pg_error(conn, res, script, error);
	PQclear(res);
	return ok;
}

static gboolean
pg_begin(MrSqlConn *c, GError **error)
{
	PgConn *conn = CONN(c);

	g_autofree char *sql = g_strdup_printf("BEGIN; SELECT pg_advisory_xact_lock_shared(%lld)",
					       (long long)PG_WRITERS_LOCK);

	if (PQtransactionStatus(conn->pg) == PQTRANS_UNKNOWN && !pg_ensure(conn, error))
		return FALSE;
	/* One round trip; a lock that times out fails the transaction. */
	if (pg_exec(c, sql, error))
		return TRUE;
	pg_exec(c, "ROLLBACK", NULL);
	return FALSE;
}

static gboolean
pg_commit(MrSqlConn *c, GError **error)
{
	PgConn *conn = CONN(c);
	PGresult *res = PQexec(conn->pg, "COMMIT");
	gboolean ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	/* COMMIT of a transaction that failed answers "ROLLBACK". */
	if (ok && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_FAILED,
			    "COMMIT: the transaction had failed and was rolled back");
		ok = FALSE;
	} else if (!ok) {
		pg_error(conn, res, "COMMIT", error);
	}
	PQclear(res);
	return ok;
}

static gboolean
pg_in_transaction(MrSqlConn *c)
{
	PGTransactionStatusType st = PQtransactionStatus(CONN(c)->pg);

	return st == PQTRANS_INTRANS || st == PQTRANS_INERROR || st == PQTRANS_ACTIVE;
}

static void
pg_rollback(MrSqlConn *c)
{
	g_autoptr(GError) error = NULL;

	if (pg_in_transaction(c) && !pg_exec(c, "ROLLBACK", &error))
		g_warning("rollback failed: %s", error->message);
}

static gboolean
pg_savepoint_op(MrSqlConn *c, const char *op, const char *name, GError **error)
{
	char sql[96];

	g_return_val_if_fail(strlen(name) < 64, FALSE);
	g_snprintf(sql, sizeof sql, "%s %s", op, name);
	return pg_exec(c, sql, error);
}

static gboolean
pg_savepoint(MrSqlConn *c, const char *name, GError **error)
{
	return pg_savepoint_op(c, "SAVEPOINT", name, error);
}

static gboolean
pg_release(MrSqlConn *c, const char *name, GError **error)
{
	return pg_savepoint_op(c, "RELEASE SAVEPOINT", name, error);
}

static gboolean
pg_rollback_to(MrSqlConn *c, const char *name, GError **error)
{
	return pg_savepoint_op(c, "ROLLBACK TO SAVEPOINT", name, error);
}

static gboolean
pg_lock_schema(MrSqlConn *c, GError **error)
{
	g_autofree char *sql =
		g_strdup_printf("SELECT pg_advisory_xact_lock(%lld)", (long long)PG_SCHEMA_LOCK);

	return pg_exec(c, sql, error);
}

/* Runs a one-value query; returns its text (transfer full), "" for no row
 * or NULL, or NULL with @error. */
static char *
pg_value(PgConn *conn, const char *sql, GError **error)
{
	PGresult *res = PQexec(conn->pg, sql);
	char *v = NULL;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		pg_error(conn, res, sql, error);
	else
		v = g_strdup(PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return v;
}

/* A session-level lock, so that this works inside a transaction too (a
 * unit of work on the writer) and ends its hold at once. */
static gboolean
pg_settled_int64(MrSqlConn *c, const char *sql, gint64 *out, GError **error)
{
	PgConn *conn = CONN(c);
	g_autofree char *lock =
		g_strdup_printf("SELECT pg_advisory_lock(%lld)", (long long)PG_WRITERS_LOCK);
	g_autofree char *unlock =
		g_strdup_printf("SELECT pg_advisory_unlock(%lld)", (long long)PG_WRITERS_LOCK);
	g_autofree char *v = NULL;

	if (PQtransactionStatus(conn->pg) == PQTRANS_UNKNOWN && !pg_ensure(conn, error))
		return FALSE;
	if (!pg_exec(c, lock, error))
		return FALSE;
	v = pg_value(conn, sql, error);
	pg_exec(c, unlock, NULL);
	if (v == NULL)
		return FALSE;
	*out = g_ascii_strtoll(v, NULL, 10);
	return TRUE;
}

static int
pg_schema_version(MrSqlConn *c, GError **error)
{
	g_autofree char *exists = pg_value(CONN(c), "SELECT to_regclass('mailroom_schema')", error);
	g_autofree char *v = NULL;

	if (exists == NULL)
		return -1;
	if (*exists == '\0')
		return 0;
	v = pg_value(CONN(c), "SELECT max(version) FROM mailroom_schema", error);
	return v == NULL ? -1 : (int)g_ascii_strtoll(v, NULL, 10);
}

static gboolean
pg_set_schema_version(MrSqlConn *c, int version, GError **error)
{
	g_autofree char *sql = g_strdup_printf(
		"CREATE TABLE IF NOT EXISTS mailroom_schema (version INTEGER NOT NULL);"
		"DELETE FROM mailroom_schema; INSERT INTO mailroom_schema VALUES (%d)",
		version);

	return pg_exec(c, sql, error);
}

/* The store's SQL in PostgreSQL's words: ?N -> $N, group_concat ->
 * string_agg, outside quoted strings and names.  Sets @nparams to the
 * highest parameter number and @types to 0 for each parameter used (the
 * server infers its type) and text for the others, which the server
 * could not type. */
static char *
pg_rewrite(const char *sql, int *nparams, Oid **types)
{
	GString *out = g_string_sized_new(strlen(sql) + 16);
	g_autoptr(GArray) used = g_array_new(FALSE, TRUE, sizeof(gboolean));
	char quote = 0;

	*nparams = 0;
	for (const char *p = sql; *p != '\0'; p++) {
		if (quote != 0) {
			g_string_append_c(out, *p);
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
			g_string_append_c(out, *p);
		} else if (*p == '?' && g_ascii_isdigit(p[1])) {
			int n = (int)g_ascii_strtoll(p + 1, NULL, 10);

			*nparams = MAX(*nparams, n);
			if ((guint)n > used->len)
				g_array_set_size(used, (guint)n);
			g_array_index(used, gboolean, n - 1) = TRUE;
			g_string_append_c(out, '$');
		} else if (g_ascii_strncasecmp(p, "group_concat(", 13) == 0) {
			g_string_append(out, "string_agg(");
			p += 12;
		} else {
			g_string_append_c(out, *p);
		}
	}
	*types = g_new0(Oid, MAX(*nparams, 1));
	for (int i = 0; i < *nparams; i++)
		(*types)[i] = g_array_index(used, gboolean, i) ? 0 : PG_OID_TEXT;
	return g_string_free(out, FALSE);
}

/* Prepares @s on the current connection unless it already is. */
static gboolean
pg_stmt_ensure(PgStmt *s, GError **error)
{
	PgConn *conn = CONN(s->base.conn);
	PGresult *res;
	gboolean ok;

	if (s->generation == conn->generation)
		return TRUE;
	res = PQprepare(conn->pg, s->name, s->sql, s->nparams, s->types);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		pg_error(conn, res, s->sql, error);
	else
		s->generation = conn->generation;
	PQclear(res);
	return ok;
}

static MrSqlStmt *
pg_prepare(MrSqlConn *c, const char *sql, GError **error)
{
	PgStmt *s = g_new0(PgStmt, 1);

	s->base.conn = c;
	g_snprintf(s->name, sizeof s->name, "mr_%u", ++CONN(c)->next_id);
	s->sql = pg_rewrite(sql, &s->nparams, &s->types);
	s->values = g_new0(char *, MAX(s->nparams, 1));
	s->lengths = g_new0(int, MAX(s->nparams, 1));
	s->formats = g_new0(int, MAX(s->nparams, 1));
	s->owned = g_new0(gboolean, MAX(s->nparams, 1));
	s->row = -1;
	/* Prepared on the server at its first use: a short-lived process
	 * (mailroomctl deliver from an MTA) pays only for what it runs. */
	return &s->base;
}

static void
pg_clear_param(PgStmt *s, int i)
{
	if (s->owned[i])
		g_free(s->values[i]);
	s->values[i] = NULL;
	s->lengths[i] = 0;
	s->formats[i] = 0;
	s->owned[i] = FALSE;
}

static void
pg_reset(MrSqlStmt *st)
{
	PgStmt *s = STMT(st);

	g_clear_pointer(&s->res, PQclear);
	g_clear_pointer(&s->blob, PQfreemem);
	s->row = -1;
	for (int i = 0; i < s->nparams; i++)
		pg_clear_param(s, i);
}

static void
pg_finalize(MrSqlStmt *st)
{
	PgStmt *s = STMT(st);

	if (s == NULL)
		return;
	pg_reset(st);
	/* The server forgets prepared statements with the session; a
	 * statement finalized before the connection closes is kept there
	 * until then, which is harmless. */
	g_free(s->sql);
	g_free(s->types);
	g_free(s->values);
	g_free(s->lengths);
	g_free(s->formats);
	g_free(s->owned);
	g_free(s);
}

static int
pg_param_count(MrSqlStmt *st)
{
	return STMT(st)->nparams;
}

/* Returns the slot of parameter @i (1-based), or -1 when out of range. */
static int
pg_slot(PgStmt *s, int i)
{
	if (i < 1 || i > s->nparams)
		return -1;
	pg_clear_param(s, i - 1);
	return i - 1;
}

static void
pg_bind_null(MrSqlStmt *st, int i)
{
	pg_slot(STMT(st), i);
}

static void
pg_bind_int64(MrSqlStmt *st, int i, gint64 v)
{
	PgStmt *s = STMT(st);
	int k = pg_slot(s, i);

	if (k < 0)
		return;
	s->values[k] = g_strdup_printf("%" G_GINT64_FORMAT, v);
	s->owned[k] = TRUE;
}

static void
pg_bind_text(MrSqlStmt *st, int i, const char *v)
{
	PgStmt *s = STMT(st);
	int k = pg_slot(s, i);

	if (k < 0)
		return;
	s->values[k] = g_strdup(v);
	s->owned[k] = TRUE;
}

static void
pg_bind_blob(MrSqlStmt *st, int i, const void *data, gsize len)
{
	PgStmt *s = STMT(st);
	int k = pg_slot(s, i);

	if (k < 0)
		return;
	g_return_if_fail(len <= G_MAXINT);
	s->values[k] = len > 0 ? (char *)data : (char *)"";
	s->lengths[k] = (int)len;
	s->formats[k] = 1; /* binary: the bytes as they are */
}

static MrSqlStep
pg_step(MrSqlStmt *st, GError **error)
{
	PgStmt *s = STMT(st);
	PgConn *conn = CONN(st->conn);
	ExecStatusType status;

	if (s->res == NULL) {
		if (!pg_stmt_ensure(s, error))
			return MR_SQL_FAIL;
		s->res = PQexecPrepared(conn->pg, s->name, s->nparams, (const char *const *)s->values,
					s->lengths, s->formats, 0);
		status = PQresultStatus(s->res);
		if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
			pg_error(conn, s->res, s->sql, error);
			g_clear_pointer(&s->res, PQclear);
			return MR_SQL_FAIL;
		}
	}
	s->row++;
	return s->row < PQntuples(s->res) ? MR_SQL_ROW : MR_SQL_DONE;
}

static int
pg_column_count(MrSqlStmt *st)
{
	return STMT(st)->res != NULL ? PQnfields(STMT(st)->res) : 0;
}

static const char *
pg_column_name(MrSqlStmt *st, int i)
{
	return PQfname(STMT(st)->res, i);
}

static MrSqlType
pg_column_type(MrSqlStmt *st, int i)
{
	PgStmt *s = STMT(st);

	if (PQgetisnull(s->res, s->row, i))
		return MR_SQL_TYPE_NULL;
	switch (PQftype(s->res, i)) {
	case PG_OID_INT2:
	case PG_OID_INT4:
	case PG_OID_INT8:
	case PG_OID_OID:
	case PG_OID_BOOL:
		return MR_SQL_TYPE_INT;
	case PG_OID_FLOAT4:
	case PG_OID_FLOAT8:
	case PG_OID_NUMERIC:
		return MR_SQL_TYPE_FLOAT;
	case PG_OID_BYTEA:
		return MR_SQL_TYPE_BLOB;
	default:
		return MR_SQL_TYPE_TEXT;
	}
}

static gint64
pg_column_int64(MrSqlStmt *st, int i)
{
	PgStmt *s = STMT(st);
	const char *v;

	if (PQgetisnull(s->res, s->row, i))
		return 0;
	v = PQgetvalue(s->res, s->row, i);
	if (PQftype(s->res, i) == PG_OID_BOOL)
		return *v == 't';
	return g_ascii_strtoll(v, NULL, 10);
}

static double
pg_column_double(MrSqlStmt *st, int i)
{
	PgStmt *s = STMT(st);

	return PQgetisnull(s->res, s->row, i) ? 0.0
					      : g_ascii_strtod(PQgetvalue(s->res, s->row, i), NULL);
}

static const char *
pg_column_text(MrSqlStmt *st, int i)
{
	PgStmt *s = STMT(st);

	return PQgetisnull(s->res, s->row, i) ? NULL : PQgetvalue(s->res, s->row, i);
}

static const void *
pg_column_blob(MrSqlStmt *st, int i, gsize *len)
{
	PgStmt *s = STMT(st);
	size_t n = 0;

	*len = 0;
	if (PQgetisnull(s->res, s->row, i))
		return NULL;
	if (PQftype(s->res, i) != PG_OID_BYTEA) {
		*len = (gsize)PQgetlength(s->res, s->row, i);
		return PQgetvalue(s->res, s->row, i);
	}
	g_clear_pointer(&s->blob, PQfreemem);
	s->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, i), &n);
	*len = n;
	return s->blob;
}

static void
pg_close(MrSqlConn *c)
{
	PgConn *conn = CONN(c);

	if (conn == NULL)
		return;
	if (conn->pg != NULL && PQstatus(conn->pg) == CONNECTION_OK)
		pg_rollback(c);
	PQfinish(conn->pg);
	g_free(conn);
}

/* Returns: (transfer full) (nullable): the first line of @path, or NULL
 * with @error. */
static char *
pg_read_password(const char *path, GError **error)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) local = NULL;

	if (!g_file_get_contents(path, &text, NULL, &local)) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN,
			    "database_password_file: %s", local->message);
		return NULL;
	}
	text[strcspn(text, "\r\n")] = '\0';
	return g_steal_pointer(&text);
}

static MrSqlConn *
pg_open(const MrConfig *cfg, gboolean create, GError **error)
{
	PgConn *conn = g_new0(PgConn, 1);
	g_autofree char *password = NULL;
	/* Session settings go with the connection, so that a reconnect
	 * (PQreset) has them too: store.busy_timeout is how long to wait for
	 * a row lock; store.synchronous = "normal" lets commits not wait for
	 * the disk. */
	g_autofree char *options = g_strdup_printf(
		"-c lock_timeout=%d -c synchronous_commit=%s", cfg->busy_timeout_ms,
		g_ascii_strcasecmp(cfg->synchronous, "normal") == 0 ? "off" : "on");
	const char *keys[6] = { "dbname", "application_name", "client_encoding", "options", NULL, NULL };
	const char *values[6] = { cfg->database, "mailroom", "UTF8", options, NULL, NULL };

	conn->base.driver = &mr_sql_pgsql_driver;
	conn->generation = 1;
	if (cfg->database_password_file != NULL) {
		password = pg_read_password(cfg->database_password_file, error);
		if (password == NULL) {
			g_free(conn);
			return NULL;
		}
		keys[4] = "password";
		values[4] = password;
	}
	/* dbname holds the URI; expand_dbname reads it as one, and the keys
	 * after it win over what it says. */
	conn->pg = PQconnectdbParams(keys, values, 1);
	if (PQstatus(conn->pg) != CONNECTION_OK) {
		g_autofree char *msg = g_strdup(PQerrorMessage(conn->pg));

		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY, "%s", g_strstrip(msg));
		pg_close(&conn->base);
		return NULL;
	}
	return &conn->base;
}

const MrSqlDriver mr_sql_pgsql_driver = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.exec = pg_exec,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.in_transaction = pg_in_transaction,
	.savepoint = pg_savepoint,
	.release = pg_release,
	.rollback_to = pg_rollback_to,
	.lock_schema = pg_lock_schema,
	.settled_int64 = pg_settled_int64,
	.schema_version = pg_schema_version,
	.set_schema_version = pg_set_schema_version,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.param_count = pg_param_count,
	.bind_null = pg_bind_null,
	.bind_int64 = pg_bind_int64,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.step = pg_step,
	.reset = pg_reset,
	.column_count = pg_column_count,
	.column_name = pg_column_name,
	.column_type = pg_column_type,
	.column_int64 = pg_column_int64,
	.column_double = pg_column_double,
	.column_text = pg_column_text,
	.column_blob = pg_column_blob,
};
