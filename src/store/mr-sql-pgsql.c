/* mr-sql-pgsql.c - the PostgreSQL driver of the SQL interface (mr-sql.h).
 *
 * Store stage.  The only file that includes <libpq-fe.h>.  One libpq
 * connection per MrStore, used by one thread.  Statements are prepared on
 * the server (PQsendPrepare) at their first use and run with
 * PQsendQueryPrepared: text parameters, a blob as a binary parameter (no
 * escaping), text results.  The store's
 * portable SQL is adapted here, in one place: ?N parameters become $N and
 * group_concat() becomes string_agg().  A lost connection is a temporary
 * error; the next transaction reconnects and prepares again.
 *
 * Round trips: inside a transaction, SAVEPOINT and the statements run
 * with step_later are not waited for.  They wait in libpq's pipeline
 * (PQenterPipelineMode) and go to the server with the next statement
 * whose answer is needed (a look-up, an INSERT ... RETURNING id, RELEASE,
 * COMMIT), in one write and one read; a message of the ingest path costs
 * a few round trips instead of one per statement.  A statement with rows
 * may be sent ahead too (send_ahead): its rows wait in the statement
 * until it is stepped, and a savepoint may be released without waiting
 * (release_later): the release, and what waits before it, go with the
 * next statement whose answer is needed -- in the writer, the next
 * message's first look-up -- so that a message costs one round trip.
 * The first error of the pipeline is the one reported, and the statements
 * after it are skipped by the server, as if the caller had stopped there;
 * an error at or before a release that waits is that release's failure
 * (released), and then the savepoint it would have released is still
 * there, the innermost.
 *
 * A server that stops answering (a stopped backend, a network black
 * hole) is seen by a deadline of the client's own: the connection is
 * non-blocking, and every wait for the server -- a result, the rest of a
 * send, a reconnect -- polls its socket for at most store.query_timeout
 * (pg_wait).  Past it the connection is dropped (the backend rolls back
 * what has no COMMIT when it finds it closed), the statement fails as
 * busy, and the next transaction reconnects.  A COMMIT without an answer
 * may have gone through: that is logged, and after the reconnect, what
 * became of the transaction (txid_status).  Keepalives and
 * tcp_user_timeout find a dead peer sooner where TCP can (they cannot see
 * a stopped backend, whose kernel acknowledges everything), and
 * statement_timeout ends on the server what the client gave up on. */
#define G_LOG_DOMAIN "mailroom-store"

#include <errno.h>
#include <poll.h>
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

typedef struct _PgStmt PgStmt;

/* A statement sent in the pipeline and not yet answered. */
typedef struct {
	char *what;     /* its SQL text (owned), for its error message */
	PgStmt *reader; /* (nullable) sent ahead: its rows go there */
	gboolean txid;  /* BEGIN's lock: its second column is the txid */
} PgQueued;

/* The release sent by release_later. */
typedef enum {
	PG_LATER_NONE,   /* none, or it went through */
	PG_LATER_SENT,   /* in the pipeline, at queued[later_at] */
	PG_LATER_FAILED, /* the work before it failed: later_error */
} PgLater;

typedef struct {
	MrSqlConn base;
	PGconn *pg;
	guint generation; /* bumped by every reconnect: statements prepare again */
	guint next_id;    /* statement names */
	GArray *queued;   /* PgQueued, in the order sent */
	PgLater later;
	guint later_at;
	GError *later_error;
	gboolean begin_queued; /* BEGIN and its lock wait at queued[begin_at] */
	guint begin_at;
	/* The error that aborted the transaction, reported again by the
	 * statements that fail after it (SQLSTATE 25P02, "current transaction
	 * is aborted"), so that the caller sees and classifies the cause --
	 * a constraint, a deadlock -- wherever it surfaces. */
	GError *cause;
	char **keys, **values; /* the connection's parameters, for reconnects */
	gint64 timeout_us;     /* store.query_timeout: the longest wait */
	gboolean unbounded;    /* a migration: its transaction waits as long as it takes */
	gboolean committing;   /* COMMIT sent, its answer not had */
	char *txid;            /* (nullable) the open transaction's, from BEGIN's lock */
	char *unknown_txid;    /* (nullable) one whose COMMIT had no answer */
} PgConn;

struct _PgStmt {
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
	gboolean ahead;     /* sent ahead (send_ahead), not stepped yet */
};

#define CONN(c) ((PgConn *)(c))
#define STMT(s) ((PgStmt *)(s))

/* Classifies a failed result (or the connection's state) into @error.  A
 * statement refused because an earlier one aborted the transaction
 * reports that earlier one, the cause. */
static void
pg_error(PgConn *conn, const PGresult *res, const char *what, GError **error)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	g_autofree char *msg = NULL;
	GError *local;
	int code = MR_STORE_ERROR_FAILED;

	if (state != NULL && strcmp(state, "25P02") == 0 && conn->cause != NULL) {
		g_propagate_error(error, g_error_copy(conn->cause));
		return;
	}
	if (conn->pg == NULL) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY,
			    "%s: not connected (the connection was dropped)", what);
		return;
	}
	msg = g_strdup(res != NULL && *PQresultErrorMessage(res) != '\0' ? PQresultErrorMessage(res)
									 : PQerrorMessage(conn->pg));
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
	local = g_error_new(MR_STORE_ERROR, code, "%s: %s%s%s%s", what, msg,
			    state != NULL ? " (SQLSTATE " : "", state != NULL ? state : "",
			    state != NULL ? ")" : "");
	/* Inside a transaction (idle in it, or in a pipeline), an error of
	 * the server aborts it. */
	if (state != NULL && conn->cause == NULL &&
	    PQtransactionStatus(conn->pg) != PQTRANS_IDLE &&
	    PQtransactionStatus(conn->pg) != PQTRANS_UNKNOWN)
		conn->cause = g_error_copy(local);
	g_propagate_error(error, local);
}

/* Forgets the cause of an aborted transaction: the transaction, or the
 * work that failed, is gone. */
static void
pg_clear_cause(PgConn *conn)
{
	g_clear_error(&conn->cause);
}

/* Forgets the release sent by release_later: the transaction is gone. */
static void
pg_clear_later(PgConn *conn)
{
	conn->later = PG_LATER_NONE;
	g_clear_error(&conn->later_error);
	conn->begin_queued = FALSE;
	conn->unbounded = FALSE;
	conn->committing = FALSE;
	g_clear_pointer(&conn->txid, g_free);
}

/* Returns: (transfer full): @sql cut to its start on one line, to name a
 * statement in a log line. */
static char *
pg_brief(const char *sql)
{
	g_autofree char *one = g_strndup(sql, 72);

	g_strdelimit(one, "\t\r\n", ' ');
	return strlen(sql) > 72 ? g_strconcat(one, "...", NULL) : g_steal_pointer(&one);
}

/* The deadline passed while waiting for @what: drops the connection, so
 * that the server rolls back what it has not committed when it finds it
 * closed, and sets @error (busy), which the statements after it report
 * too until the next transaction reconnects.  A COMMIT sent may have
 * gone through: its transaction is asked about after the reconnect. */
static void
pg_drop(PgConn *conn, const char *what, GError **error)
{
	int s = (int)(conn->timeout_us / G_USEC_PER_SEC);
	g_autofree char *brief = pg_brief(what);
	GError *local;

	if (conn->committing) {
		local = g_error_new(MR_STORE_ERROR, MR_STORE_ERROR_BUSY,
				    "COMMIT: no answer from the database in %d s (first unanswered: %s);"
				    " whether transaction %s committed is not known",
				    s, brief, conn->txid != NULL ? conn->txid : "(unknown)");
		g_free(conn->unknown_txid);
		conn->unknown_txid = g_strdup(conn->txid);
	} else {
		local = g_error_new(MR_STORE_ERROR, MR_STORE_ERROR_BUSY,
				    "%s: no answer from the database in %d s", brief, s);
	}
	g_warning("%s; dropping the connection", local->message);
	g_clear_pointer(&conn->pg, PQfinish);
	g_array_set_size(conn->queued, 0);
	pg_clear_later(conn);
	g_clear_error(&conn->cause);
	conn->cause = g_error_copy(local);
	g_propagate_error(error, local);
}

/* Waits until libpq has sent what it holds and the next result of @what
 * (or the end of its results) can be had without blocking -- for at most
 * store.query_timeout (without end in a migration).  Returns FALSE with
 * @error when the deadline passed: the connection is dropped then.  A
 * broken connection returns TRUE: libpq reports it without waiting. */
static gboolean
pg_wait(PgConn *conn, const char *what, GError **error)
{
	gint64 deadline = conn->unbounded ? -1 : g_get_monotonic_time() + conn->timeout_us;

	if (conn->pg == NULL) {
		pg_error(conn, NULL, what, error);
		return FALSE;
	}
	for (;;) {
		struct pollfd pfd = { .fd = PQsocket(conn->pg), .events = POLLIN };
		int flushed = PQflush(conn->pg);
		gint64 now;
		int n;

		if (flushed == 0 && !PQisBusy(conn->pg))
			return TRUE;
		/* Reads what is there, TLS records included, which the socket
		 * may no longer show; a failure makes the connection bad. */
		if (flushed >= 0)
			PQconsumeInput(conn->pg);
		if (flushed < 0 || pfd.fd < 0 || PQstatus(conn->pg) != CONNECTION_OK)
			return TRUE;
		if (flushed == 0 && !PQisBusy(conn->pg))
			return TRUE;
		if (flushed > 0)
			pfd.events |= POLLOUT;
		now = g_get_monotonic_time();
		if (deadline >= 0 && now >= deadline) {
			pg_drop(conn, what, error);
			return FALSE;
		}
		n = poll(&pfd, 1, deadline < 0 ? -1 : (int)((deadline - now + 999) / 1000));
		if (n < 0 && errno != EINTR) {
			pg_drop(conn, what, error);
			return FALSE;
		}
	}
}

/* Collects the results of the statement (or script) sent last, outside
 * the pipeline, as PQexec would: the last one, or the error.  Returns
 * FALSE with @error when the server did not answer in time. */
static gboolean
pg_collect(PgConn *conn, const char *what, PGresult **out, GError **error)
{
	PGresult *res;

	*out = NULL;
	for (;;) {
		if (!pg_wait(conn, what, error)) {
			g_clear_pointer(out, PQclear);
			return FALSE;
		}
		res = PQgetResult(conn->pg);
		if (res == NULL)
			return TRUE;
		if (*out != NULL && PQresultStatus(*out) == PGRES_FATAL_ERROR) {
			PQclear(res);
		} else {
			PQclear(*out);
			*out = res;
		}
	}
}

/* The answer to @what, which the caller has just sent outside the
 * pipeline (@sent: what the PQsend function returned).  Returns: (transfer
 * full) (nullable): the result, or NULL with @error. */
static PGresult *
pg_result(PgConn *conn, const char *what, int sent, GError **error)
{
	PGresult *res = NULL;
	ExecStatusType st;

	if (!sent) {
		pg_error(conn, NULL, what, error);
		return NULL;
	}
	if (!pg_collect(conn, what, &res, error))
		return NULL;
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_error(conn, res, what, error);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Runs @sql (one or more statements without parameters) outside the
 * pipeline.  Returns: (transfer full) (nullable): the last result, or
 * NULL with @error. */
static PGresult *
pg_run(PgConn *conn, const char *sql, GError **error)
{
	return pg_result(conn, sql, conn->pg != NULL && PQsendQuery(conn->pg, sql), error);
}

/* Connects with the parameters of @conn, in at most store.query_timeout
 * (PQconnectPoll leaves connect_timeout to its caller), replacing the
 * connection it had.  Returns FALSE with @error (busy). */
static gboolean
pg_connect(PgConn *conn, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + conn->timeout_us;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *pg = PQconnectStartParams((const char *const *)conn->keys,
					  (const char *const *)conn->values, 1);

	while (PQstatus(pg) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = { .fd = PQsocket(pg),
				      .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		gint64 now = g_get_monotonic_time();
		int n;

		if (now >= deadline) {
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY,
				    "connecting: no answer from the database in %d s",
				    (int)(conn->timeout_us / G_USEC_PER_SEC));
			PQfinish(pg);
			return FALSE;
		}
		n = poll(&pfd, 1, (int)((deadline - now + 999) / 1000));
		if (n > 0 || (n < 0 && errno != EINTR))
			st = PQconnectPoll(pg);
	}
	if (PQstatus(pg) != CONNECTION_OK || PQsetnonblocking(pg, 1) != 0) {
		g_autofree char *msg = g_strdup(PQerrorMessage(pg));

		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY, "%s", g_strstrip(msg));
		PQfinish(pg);
		return FALSE;
	}
	PQfinish(conn->pg);
	conn->pg = pg;
	return TRUE;
}

/* Session settings that a server may not know (before PostgreSQL 14, or
 * built without lz4), hence not in the connection's options, which would
 * fail: values past the TOAST threshold -- raw messages, attachments --
 * compressed with lz4 rather than pglz, for a similar size at a fraction
 * of the CPU (a 4 KB message: about 7 us instead of 29 on the server, a
 * cost of every message).  Best effort: without it, pglz. */
static void
pg_session_init(PgConn *conn)
{
	PQclear(pg_run(conn, "SELECT set_config('default_toast_compression', 'lz4', false)"
			     " FROM pg_settings WHERE name = 'default_toast_compression'"
			     " AND 'lz4' = ANY (enumvals)",
		       NULL));
}

static char *pg_value(PgConn *conn, const char *sql, GError **error);

/* After a reconnect: logs what became of the transaction whose COMMIT
 * had no answer (on PostgreSQL 10 and later; best effort).  "in
 * progress" means that its old backend has not finished it yet. */
static void
pg_log_unknown(PgConn *conn)
{
	g_autofree char *txid = g_steal_pointer(&conn->unknown_txid);
	g_autofree char *sql = NULL;
	g_autofree char *status = NULL;
	g_autoptr(GError) error = NULL;

	if (txid == NULL || txid[strspn(txid, "0123456789")] != '\0')
		return;
	sql = g_strdup_printf("SELECT txid_status(%s)", txid);
	status = pg_value(conn, sql, &error);
	g_message("transaction %s, whose COMMIT had no answer: %s", txid,
		  status == NULL ? error->message : *status == '\0' ? "not known" : status);
}

/* Reconnects a broken (or dropped) connection.  Returns FALSE with
 * @error. */
static gboolean
pg_ensure(PgConn *conn, GError **error)
{
	if (conn->pg != NULL && PQstatus(conn->pg) == CONNECTION_OK)
		return TRUE;
	g_array_set_size(conn->queued, 0); /* a new connection is out of pipeline mode */
	pg_clear_cause(conn);
	pg_clear_later(conn);
	if (!pg_connect(conn, error)) {
		g_prefix_error(error, "reconnect: ");
		return FALSE;
	}
	conn->generation++;
	pg_session_init(conn);
	if (conn->pg == NULL) {
		pg_error(conn, NULL, "reconnect", error);
		return FALSE;
	}
	g_message("reconnected to the database");
	pg_log_unknown(conn);
	return TRUE;
}

/* Reads the results of one statement of the pipeline: keeps the first
 * error in @first, and the result in @keep (nullable) when it succeeded.
 * Returns FALSE when the server did not answer in time (the connection
 * is dropped; @first has the error unless it had one). */
static gboolean
pg_pipeline_result(PgConn *conn, const char *what, PGresult **keep, GError **first)
{
	for (;;) {
		g_autoptr(GError) late = NULL;
		PGresult *res;
		ExecStatusType status;

		if (!pg_wait(conn, what, &late)) {
			if (*first == NULL)
				*first = g_steal_pointer(&late);
			return FALSE;
		}
		res = PQgetResult(conn->pg);
		if (res == NULL)
			return TRUE;
		status = PQresultStatus(res);

		if (status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR ||
		    status == PGRES_BAD_RESPONSE) {
			if (*first == NULL)
				pg_error(conn, res, what, first);
		} else if (status == PGRES_PIPELINE_ABORTED) {
			/* skipped after an earlier error, which *first holds */
			if (*first == NULL)
				g_set_error(first, MR_STORE_ERROR, MR_STORE_ERROR_FAILED,
					    "%s: skipped after an error", what);
		} else if (keep != NULL && *keep == NULL) {
			*keep = res;
			continue;
		}
		PQclear(res);
	}
}

/* The result of BEGIN's lock, in the pipeline: keeps the transaction's
 * id. */
static gboolean
pg_pipeline_txid(PgConn *conn, const char *what, GError **first)
{
	PGresult *res = NULL;
	gboolean alive = pg_pipeline_result(conn, what, &res, first);

	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
	    PQnfields(res) > 1) {
		g_free(conn->txid);
		conn->txid = g_strdup(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return alive;
}

/* Ends the pipeline: a sync, then the results of every statement sent
 * since the last one, in order, and last of @what (nullable: a statement
 * sent after them by the caller, who wants its result in @keep).
 * Returns FALSE with the first error. */
static gboolean
pg_pipeline_sync(PgConn *conn, const char *what, PGresult **keep, GError **error)
{
	g_autoptr(GError) first = NULL;
	guint first_at = 0; /* the index in queued of the first error */
	gboolean alive = TRUE; /* FALSE: no answer in time, the connection is gone */
	PGresult *res;

	if (PQpipelineStatus(conn->pg) == PQ_PIPELINE_OFF)
		return TRUE;
	if (!PQpipelineSync(conn->pg)) {
		pg_error(conn, NULL, "pipeline sync", &first);
	} else {
		for (guint i = 0; alive && i < conn->queued->len; i++) {
			PgQueued *q = &g_array_index(conn->queued, PgQueued, i);

			if (first == NULL)
				first_at = i;
			if (q->txid)
				alive = pg_pipeline_txid(conn, q->what, &first);
			else
				alive = pg_pipeline_result(
					conn, q->what, q->reader != NULL ? &q->reader->res : NULL,
					&first);
		}
		if (first == NULL)
			first_at = conn->queued->len;
		if (alive && what != NULL)
			alive = pg_pipeline_result(conn, what, keep, &first);
		/* The sync's own result; none when the connection broke. */
		if (alive && pg_wait(conn, "pipeline sync", first == NULL ? &first : NULL)) {
			res = PQgetResult(conn->pg);
			if (res != NULL && PQresultStatus(res) != PGRES_PIPELINE_SYNC &&
			    first == NULL)
				pg_error(conn, res, "pipeline sync", &first);
			PQclear(res);
		}
	}
	g_array_set_size(conn->queued, 0);
	if (conn->pg != NULL && !PQexitPipelineMode(conn->pg) && first == NULL)
		pg_error(conn, NULL, "pipeline", &first);
	if (first == NULL && (PQstatus(conn->pg) != CONNECTION_OK ||
			      (keep != NULL && *keep == NULL)))
		pg_error(conn, NULL, what != NULL ? what : "pipeline", &first);
	/* The release that waited: it failed when the first error came at
	 * or before it (the server skipped it then). */
	if (conn->later == PG_LATER_SENT) {
		conn->later = PG_LATER_NONE;
		if (first != NULL && first_at <= conn->later_at) {
			conn->later = PG_LATER_FAILED;
			conn->later_error = g_error_copy(first);
		}
	}
	/* BEGIN, or its lock, failed: no transaction, as when a BEGIN run
	 * at once fails (the statements after it were skipped). */
	if (conn->begin_queued) {
		conn->begin_queued = FALSE;
		if (first != NULL && first_at <= conn->begin_at &&
		    PQstatus(conn->pg) == CONNECTION_OK)
			PQclear(pg_run(conn, "ROLLBACK", NULL));
	}
	if (first != NULL) {
		if (keep != NULL)
			g_clear_pointer(keep, PQclear);
		g_propagate_error(error, g_steal_pointer(&first));
		return FALSE;
	}
	return TRUE;
}

/* Before a statement that is waited for outside the pipeline: settles
 * what the pipeline holds.  Returns FALSE with its first error. */
static gboolean
pg_settle(PgConn *conn, GError **error)
{
	return pg_pipeline_sync(conn, NULL, NULL, error);
}

static gboolean
pg_pipeline_enter(PgConn *conn, GError **error)
{
	if (PQpipelineStatus(conn->pg) != PQ_PIPELINE_OFF)
		return TRUE;
	if (!PQenterPipelineMode(conn->pg)) {
		pg_error(conn, NULL, "pipeline", error);
		return FALSE;
	}
	return TRUE;
}

static void
pg_queued_clear(gpointer data)
{
	g_free(((PgQueued *)data)->what);
}

/* TRUE while @s, sent ahead, waits in the pipeline for its answer. */
static gboolean
pg_queue_holds(PgConn *conn, PgStmt *s)
{
	for (guint i = 0; i < conn->queued->len; i++)
		if (g_array_index(conn->queued, PgQueued, i).reader == s)
			return TRUE;
	return FALSE;
}

/* Notes @what, sent in the pipeline, whose rows go to @reader (nullable). */
static void
pg_queue_add(PgConn *conn, const char *what, PgStmt *reader)
{
	PgQueued q = { g_strdup(what), reader, FALSE };

	g_array_append_val(conn->queued, q);
}

/* Sends @sql, a statement without parameters or rows, in the pipeline. */
static gboolean
pg_queue_text(PgConn *conn, const char *sql, GError **error)
{
	if (!pg_pipeline_enter(conn, error))
		return FALSE;
	if (!PQsendQueryParams(conn->pg, sql, 0, NULL, NULL, NULL, NULL, 0)) {
		pg_error(conn, NULL, sql, error);
		return FALSE;
	}
	pg_queue_add(conn, sql, NULL);
	return TRUE;
}

static gboolean
pg_exec(MrSqlConn *c, const char *script, GError **error)
{
	PgConn *conn = CONN(c);
	PGresult *res;

	if (!pg_settle(conn, error))
		return FALSE;
	res = pg_run(conn, script, error);
	PQclear(res);
	return res != NULL;
}

static gboolean
pg_begin(MrSqlConn *c, GError **error)
{
	PgConn *conn = CONN(c);
	/* With the transaction's id, to ask after a COMMIT without answer. */
	g_autofree char *lock = g_strdup_printf(
		"SELECT pg_advisory_xact_lock_shared(%lld), txid_current()", (long long)PG_WRITERS_LOCK);

	if (PQtransactionStatus(conn->pg) == PQTRANS_UNKNOWN && !pg_ensure(conn, error))
		return FALSE;
	pg_clear_cause(conn);
	pg_clear_later(conn);
	/* No round trip of its own: BEGIN and the lock go with the first
	 * statement waited for.  A lock that times out fails that statement
	 * and ends the transaction (pg_pipeline_sync). */
	if (!pg_queue_text(conn, "BEGIN", error) || !pg_queue_text(conn, lock, error)) {
		pg_settle(conn, NULL);
		return FALSE;
	}
	conn->begin_queued = TRUE;
	conn->begin_at = conn->queued->len - 1;
	g_array_index(conn->queued, PgQueued, conn->begin_at).txid = TRUE;
	return TRUE;
}

static gboolean
pg_commit(MrSqlConn *c, GError **error)
{
	PgConn *conn = CONN(c);
	PGresult *res = NULL;
	gboolean sent, ok;

	/* From the send until its answer, a deadline leaves the outcome
	 * unknown (pg_drop). */
	conn->committing = TRUE;
	if (conn->queued->len > 0) {
		/* One round trip for COMMIT and what waits before it.  When one
		 * of those fails, the server skips the COMMIT: the transaction
		 * stays open, aborted, for the caller to undo (to a savepoint,
		 * see released(), or all of it). */
		sent = pg_pipeline_enter(conn, error);
		if (sent && !PQsendQueryParams(conn->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) {
			pg_error(conn, NULL, "COMMIT", error);
			sent = FALSE;
		}
		if (!sent || !pg_pipeline_sync(conn, "COMMIT", &res, error)) {
			conn->committing = FALSE;
			return FALSE;
		}
	} else {
		sent = conn->pg != NULL && PQsendQuery(conn->pg, "COMMIT");
		if (!sent)
			pg_error(conn, NULL, "COMMIT", error);
		else if (pg_collect(conn, "COMMIT", &res, error) && res == NULL)
			pg_error(conn, NULL, "COMMIT", error);
		if (res == NULL) {
			pg_clear_cause(conn);
			pg_clear_later(conn);
			return FALSE;
		}
	}
	conn->committing = FALSE;
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	/* COMMIT of a transaction that failed answers "ROLLBACK". */
	if (ok && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_FAILED,
			    "COMMIT: the transaction had failed and was rolled back");
		ok = FALSE;
	} else if (!ok) {
		pg_error(conn, res, "COMMIT", error);
	}
	PQclear(res);
	pg_clear_cause(conn);
	pg_clear_later(conn);
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
	PgConn *conn = CONN(c);
	g_autoptr(GError) error = NULL;

	/* What the pipeline holds is undone with the rest: its errors too. */
	pg_settle(conn, NULL);
	pg_clear_cause(conn);
	pg_clear_later(conn);
	if (pg_in_transaction(c) && !pg_exec(c, "ROLLBACK", &error))
		g_warning("rollback failed: %s", error->message);
}

static gboolean
pg_savepoint(MrSqlConn *c, const char *name, GError **error)
{
	PgConn *conn = CONN(c);
	char sql[96];

	g_return_val_if_fail(strlen(name) < 64, FALSE);
	g_snprintf(sql, sizeof sql, "SAVEPOINT %s", name);
	/* Its answer can wait for the message's first look-up. */
	if (pg_in_transaction(c))
		return pg_queue_text(conn, sql, error);
	return pg_exec(c, sql, error);
}

static gboolean
pg_release(MrSqlConn *c, const char *name, GError **error)
{
	PgConn *conn = CONN(c);
	char sql[96];

	g_return_val_if_fail(strlen(name) < 64, FALSE);
	g_snprintf(sql, sizeof sql, "RELEASE SAVEPOINT %s", name);
	/* One round trip for the release and what waits before it: the
	 * server skips the release when one of them fails. */
	return pg_queue_text(conn, sql, error) && pg_settle(conn, error);
}

static gboolean
pg_release_later(MrSqlConn *c, const char *name, GError **error)
{
	PgConn *conn = CONN(c);
	char sql[96];

	/* One waits at a time: after another, this one waits for both. */
	if (conn->later != PG_LATER_NONE)
		return pg_release(c, name, error);
	g_return_val_if_fail(strlen(name) < 64, FALSE);
	g_snprintf(sql, sizeof sql, "RELEASE SAVEPOINT %s", name);
	if (!pg_queue_text(conn, sql, error))
		return FALSE;
	conn->later = PG_LATER_SENT;
	conn->later_at = conn->queued->len - 1;
	return TRUE;
}

static MrSqlRelease
pg_released(MrSqlConn *c, gboolean wait, GError **error)
{
	PgConn *conn = CONN(c);

	if (conn->later == PG_LATER_SENT && !wait)
		return MR_SQL_RELEASE_WAITING;
	/* Not known yet: what waits in the pipeline goes now.  An error of
	 * what was sent after the release concerns its sender, who has it
	 * or will undo it. */
	if (conn->later == PG_LATER_SENT)
		pg_settle(conn, NULL);
	if (conn->later == PG_LATER_FAILED) {
		conn->later = PG_LATER_NONE;
		g_propagate_error(error, g_steal_pointer(&conn->later_error));
		return MR_SQL_RELEASE_FAILED;
	}
	conn->later = PG_LATER_NONE;
	return MR_SQL_RELEASE_DONE;
}

static gboolean
pg_rollback_to(MrSqlConn *c, const char *name, GError **error)
{
	PgConn *conn = CONN(c);
	char sql[96];

	g_return_val_if_fail(strlen(name) < 64, FALSE);
	g_snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT %s", name);
	/* The work undone takes its errors along. */
	pg_settle(conn, NULL);
	if (!pg_exec(c, sql, error))
		return FALSE;
	pg_clear_cause(conn);
	return TRUE;
}

static gboolean
pg_lock_schema(MrSqlConn *c, GError **error)
{
	/* A migration takes as long as it takes: no statement_timeout, no
	 * deadline, until its transaction ends. */
	g_autofree char *sql = g_strdup_printf(
		"SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(%lld)",
		(long long)PG_SCHEMA_LOCK);

	CONN(c)->unbounded = TRUE;
	return pg_exec(c, sql, error);
}

/* Runs a one-value query; returns its text (transfer full), "" for no row
 * or NULL, or NULL with @error. */
static char *
pg_value(PgConn *conn, const char *sql, GError **error)
{
	PGresult *res;
	char *v = NULL;

	if (!pg_settle(conn, error))
		return NULL;
	res = pg_run(conn, sql, error);
	if (res == NULL)
		return NULL;
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
		} else if (strncmp(p, "/*SKIP LOCKED*/", 15) == 0) {
			/* a claim's sub-select: rows another transaction
			 * holds are left to it (SQLite has one writer) */
			g_string_append(out, "FOR UPDATE SKIP LOCKED");
			p += 14;
		} else {
			g_string_append_c(out, *p);
		}
	}
	*types = g_new0(Oid, MAX(*nparams, 1));
	for (int i = 0; i < *nparams; i++)
		(*types)[i] = g_array_index(used, gboolean, i) ? 0 : PG_OID_TEXT;
	return g_string_free(out, FALSE);
}

/* Prepares @s on the current connection unless it already is (settling
 * the pipeline first: once per statement and connection). */
static gboolean
pg_stmt_ensure(PgStmt *s, GError **error)
{
	PgConn *conn = CONN(s->base.conn);
	PGresult *res;

	if (s->generation == conn->generation)
		return TRUE;
	if (!pg_settle(conn, error))
		return FALSE;
	res = pg_result(conn, s->sql,
			conn->pg != NULL &&
				PQsendPrepare(conn->pg, s->name, s->sql, s->nparams, s->types),
			error);
	if (res == NULL)
		return FALSE;
	s->generation = conn->generation;
	PQclear(res);
	return TRUE;
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
	PgConn *conn = CONN(st->conn);

	/* Sent ahead and not stepped: its rows are not wanted now, its error
	 * is still reported by the pipeline. */
	for (guint i = 0; s->ahead && i < conn->queued->len; i++)
		if (g_array_index(conn->queued, PgQueued, i).reader == s)
			g_array_index(conn->queued, PgQueued, i).reader = NULL;
	s->ahead = FALSE;
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

/* Sends @s (prepared, bound) in the pipeline; libpq copies the
 * parameters, so that @s can be reset at once. */
static gboolean
pg_send(PgStmt *s, GError **error)
{
	PgConn *conn = CONN(s->base.conn);

	if (!pg_pipeline_enter(conn, error))
		return FALSE;
	if (!PQsendQueryPrepared(conn->pg, s->name, s->nparams, (const char *const *)s->values,
				 s->lengths, s->formats, 0)) {
		pg_error(conn, NULL, s->sql, error);
		return FALSE;
	}
	return TRUE;
}

static MrSqlStep
pg_step(MrSqlStmt *st, GError **error)
{
	PgStmt *s = STMT(st);
	PgConn *conn = CONN(st->conn);
	ExecStatusType status;

	if (s->ahead) {
		/* Sent ahead: its rows came with the pipeline, or come now. */
		s->ahead = FALSE;
		if (pg_queue_holds(conn, s) && !pg_settle(conn, error)) {
			g_clear_pointer(&s->res, PQclear);
			return MR_SQL_FAIL;
		}
		if (s->res == NULL) {
			/* it failed, or was skipped after an earlier error, and
			 * the step that waited reported it: report it again */
			if (conn->cause != NULL)
				g_propagate_error(error, g_error_copy(conn->cause));
			else
				g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_FAILED,
					    "%s: skipped after an error", s->sql);
			return MR_SQL_FAIL;
		}
	} else if (s->res == NULL) {
		if (!pg_stmt_ensure(s, error))
			return MR_SQL_FAIL;
		if (conn->queued->len > 0) {
			/* The statements held back go with this one. */
			if (!pg_send(s, error) || !pg_pipeline_sync(conn, s->sql, &s->res, error))
				return MR_SQL_FAIL;
		} else {
			s->res = pg_result(conn, s->sql,
					   conn->pg != NULL &&
						   PQsendQueryPrepared(conn->pg, s->name, s->nparams,
								       (const char *const *)s->values,
								       s->lengths, s->formats, 0),
					   error);
			if (s->res == NULL)
				return MR_SQL_FAIL;
		}
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

static gboolean
pg_step_later(MrSqlStmt *st, GError **error)
{
	PgStmt *s = STMT(st);

	/* Outside a transaction it commits on its own: its outcome is due now. */
	if (!pg_in_transaction(st->conn))
		return pg_step(st, error) != MR_SQL_FAIL;
	if (!pg_stmt_ensure(s, error))
		return FALSE;
	if (!pg_send(s, error))
		return FALSE;
	pg_queue_add(CONN(st->conn), s->sql, NULL);
	return TRUE;
}

static gboolean
pg_send_ahead(MrSqlStmt *st, GError **error)
{
	PgStmt *s = STMT(st);

	/* Outside a transaction its step runs it, as it would commit on its
	 * own. */
	if (!pg_in_transaction(st->conn))
		return TRUE;
	g_return_val_if_fail(s->res == NULL && !s->ahead, FALSE);
	if (!pg_stmt_ensure(s, error) || !pg_send(s, error))
		return FALSE;
	pg_queue_add(CONN(st->conn), s->sql, s);
	s->ahead = TRUE;
	return TRUE;
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
	g_array_unref(conn->queued);
	pg_clear_later(conn);
	g_clear_error(&conn->cause);
	g_free(conn->unknown_txid);
	g_strfreev(conn->keys);
	g_strfreev(conn->values);
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

/* Adds the parameter @key = @value to @keys and @values. */
static void
pg_param(GPtrArray *keys, GPtrArray *values, const char *key, const char *value)
{
	g_ptr_array_add(keys, g_strdup(key));
	g_ptr_array_add(values, g_strdup(value));
}

static MrSqlConn *
pg_open(const MrConfig *cfg, gboolean create, GError **error)
{
	PgConn *conn = g_new0(PgConn, 1);
	g_autofree char *password = NULL;
	int t = cfg->store.query_timeout_s > 0 ? cfg->store.query_timeout_s : 30; /* 0: not loaded from a file */
	/* Session settings go with the connection, so that a reconnect has
	 * them too: store.busy_timeout is how long to wait for a row lock;
	 * store.synchronous = "normal" lets commits not wait for the disk;
	 * statement_timeout, twice store.query_timeout, ends on the server a
	 * statement that the client has given up on (the client's deadline
	 * comes first, so that it alone decides). */
	g_autofree char *options = g_strdup_printf(
		"-c lock_timeout=%d -c synchronous_commit=%s -c statement_timeout=%lld",
		cfg->store.busy_timeout_ms,
		g_ascii_strcasecmp(cfg->store.synchronous, "normal") == 0 ? "off" : "on",
		2000LL * t);
	g_autofree char *connect = g_strdup_printf("%d", MAX(t, 2));
	g_autofree char *idle = g_strdup_printf("%d", MAX(t / 2, 1));
	g_autofree char *interval = g_strdup_printf("%d", MAX(t / 6, 1));
	g_autofree char *user_timeout = g_strdup_printf("%d", 1000 * t);
	GPtrArray *keys = g_ptr_array_new();
	GPtrArray *values = g_ptr_array_new();

	conn->base.driver = &mr_sql_pgsql_driver;
	conn->generation = 1;
	conn->timeout_us = (gint64)t * G_USEC_PER_SEC;
	conn->queued = g_array_new(FALSE, FALSE, sizeof(PgQueued));
	g_array_set_clear_func(conn->queued, pg_queued_clear);
	/* A dead peer, found by TCP where it can (a network black hole; not
	 * a stopped backend, whose kernel still acknowledges): these come
	 * before dbname, so that what the URI says wins over them. */
	pg_param(keys, values, "connect_timeout", connect);
	pg_param(keys, values, "keepalives", "1");
	pg_param(keys, values, "keepalives_idle", idle);
	pg_param(keys, values, "keepalives_interval", interval);
	pg_param(keys, values, "keepalives_count", "3");
	pg_param(keys, values, "tcp_user_timeout", user_timeout);
	/* dbname holds the URI; expand_dbname reads it as one, and the keys
	 * after it win over what it says. */
	pg_param(keys, values, "dbname", cfg->database);
	pg_param(keys, values, "application_name", "mailroom");
	pg_param(keys, values, "client_encoding", "UTF8");
	pg_param(keys, values, "options", options);
	if (cfg->database_password_file != NULL) {
		password = pg_read_password(cfg->database_password_file, error);
		if (password == NULL) {
			g_ptr_array_add(keys, NULL);
			g_ptr_array_add(values, NULL);
			conn->keys = (char **)g_ptr_array_free(keys, FALSE);
			conn->values = (char **)g_ptr_array_free(values, FALSE);
			pg_close(&conn->base);
			return NULL;
		}
		pg_param(keys, values, "password", password);
	}
	g_ptr_array_add(keys, NULL);
	g_ptr_array_add(values, NULL);
	conn->keys = (char **)g_ptr_array_free(keys, FALSE);
	conn->values = (char **)g_ptr_array_free(values, FALSE);
	if (!pg_connect(conn, error)) {
		pg_close(&conn->base);
		return NULL;
	}
	pg_session_init(conn);
	if (conn->pg == NULL) {
		pg_error(conn, NULL, "connecting", error);
		pg_close(&conn->base);
		return NULL;
	}
	return &conn->base;
}

/* --- the URI as output may show it ------------------------------------------- */

/* Returns: (transfer full) (nullable): the keywords of libpq's options
 * that hold a secret (its "*" display character: password, sslpassword),
 * as a set, from the parsed @opts. */
static GHashTable *
pg_secret_keywords(const PQconninfoOption *opts)
{
	GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (o->dispchar != NULL && o->dispchar[0] == '*')
			g_hash_table_add(set, g_strdup(o->keyword));
	return set;
}

/* Returns TRUE when @uri as libpq parses it holds a secret other than
 * "***" (or cannot be parsed). */
static gboolean
pg_uri_has_secret(const char *uri)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(uri, &errmsg);
	gboolean found = FALSE;

	if (opts == NULL) {
		PQfreemem(errmsg);
		return TRUE;
	}
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (o->dispchar != NULL && o->dispchar[0] == '*' && o->val != NULL &&
		    strcmp(o->val, "***") != 0)
			found = TRUE;
	PQconninfoFree(opts);
	return found;
}

/* The URI as libpq reads it (conninfo_uri_parse_options() in
 * fe-connect.c): scheme://[user[:password]@]hosts[/dbname][?key=value&...],
 * the userinfo ending at the first '@' before any '/', and each query
 * key percent-decoded before it is looked up.  So a password hides
 * behind "pass%77ord=" as well as "password=", and sslpassword is one
 * too: the keys to mask are those libpq itself marks secret.  The masked
 * text is parsed again, and any secret left in it makes the whole answer
 * NULL (the caller then hides all of the query). */
static char *
pg_mask_uri(const char *uri)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(uri, &errmsg);
	g_autoptr(GHashTable) secret = NULL;
	g_autoptr(GString) out = NULL;
	const char *rest, *p;

	if (opts == NULL) {
		PQfreemem(errmsg);
		return NULL;
	}
	secret = pg_secret_keywords(opts);
	PQconninfoFree(opts);
	rest = strstr(uri, "://");
	if (rest == NULL)
		return NULL; /* a key=value string: not what selects this driver */
	rest += 3;
	out = g_string_new_len(uri, rest - uri);
	for (p = rest; *p != '\0' && *p != '@' && *p != '/'; p++)
		;
	if (*p == '@') {
		const char *colon = memchr(rest, ':', p - rest);

		if (colon != NULL) {
			g_string_append_len(out, rest, colon + 1 - rest);
			g_string_append(out, "***");
			rest = p;
		}
	}
	p = strchr(rest, '?');
	if (p == NULL) {
		g_string_append(out, rest);
	} else {
		g_auto(GStrv) params = g_strsplit(p + 1, "&", -1);

		g_string_append_len(out, rest, p + 1 - rest);
		for (guint i = 0; params[i] != NULL; i++) {
			const char *eq = strchr(params[i], '=');
			g_autofree char *raw_key =
				eq != NULL ? g_strndup(params[i], eq - params[i]) : g_strdup(params[i]);
			g_autofree char *key = g_uri_unescape_string(raw_key, NULL);

			if (i > 0)
				g_string_append_c(out, '&');
			if (eq != NULL && (key == NULL || g_hash_table_contains(secret, key)))
				g_string_append_printf(out, "%s=***", raw_key);
			else
				g_string_append(out, params[i]);
		}
	}
	if (pg_uri_has_secret(out->str))
		return NULL;
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* The channel of mr_store_notify_work() (MR_STMT_NOTIFY_WORK). */
#define PG_WORK_CHANNEL "mailroom_work"

static gboolean
pg_watch_start(MrSqlConn *c, GError **error)
{
	return pg_exec(c, "LISTEN " PG_WORK_CHANNEL, error);
}

static int
pg_watch_fd(MrSqlConn *c)
{
	return CONN(c)->pg != NULL ? PQsocket(CONN(c)->pg) : -1;
}

static gboolean
pg_watch_changed(MrSqlConn *c, GError **error)
{
	PgConn *conn = CONN(c);
	PGnotify *n;
	gboolean changed = FALSE;

	if (conn->pg == NULL || PQstatus(conn->pg) != CONNECTION_OK ||
	    !PQconsumeInput(conn->pg)) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY, "watching: %s",
			    conn->pg != NULL ? PQerrorMessage(conn->pg) : "no connection");
		return FALSE;
	}
	while ((n = PQnotifies(conn->pg)) != NULL) {
		changed = TRUE;
		PQfreemem(n);
	}
	return changed;
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
	.release_later = pg_release_later,
	.released = pg_released,
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
	.step_later = pg_step_later,
	.send_ahead = pg_send_ahead,
	.reset = pg_reset,
	.column_count = pg_column_count,
	.column_name = pg_column_name,
	.column_type = pg_column_type,
	.column_int64 = pg_column_int64,
	.column_double = pg_column_double,
	.column_text = pg_column_text,
	.column_blob = pg_column_blob,
	.mask_uri = pg_mask_uri,
	.watch_start = pg_watch_start,
	.watch_fd = pg_watch_fd,
	.watch_changed = pg_watch_changed,
};
