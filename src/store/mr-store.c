/* mr-store.c - the SQLite store: open and migrate, transactions, applying
 * a routing plan, administration and the CLI's queries.
 *
 * Store stage.  Owns the connection and its prepared statements (texts in
 * mr-store-sql.c).  SQLite result codes become MR_STORE_ERROR here, once. */
#define G_LOG_DOMAIN "mailroom-store"

#include <errno.h>
#include <string.h>

#include "mr-store-private.h"
#include "mailroom/mr-error.h"

struct _MrStore {
	sqlite3 *db;
	const MrConfig *cfg;
	sqlite3_stmt *stmt[MR_SQL_N_STATEMENTS];
};

/* A statement in use: released (reset, bindings cleared) at scope exit, so
 * that no finished SELECT keeps a WAL read snapshot open. */
typedef sqlite3_stmt MrStmtUse;

static void
stmt_release(MrStmtUse *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrStmtUse, stmt_release)

static MrStmtUse *
store_stmt(MrStore *store, MrSql id)
{
	return store->stmt[id];
}

static gboolean
store_fail(MrStore *store, GError **error, const char *what)
{
	int rc = sqlite3_extended_errcode(store->db) & 0xff;
	int code = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? MR_STORE_ERROR_BUSY
			  : MR_STORE_ERROR_FAILED;

	g_set_error(error, MR_STORE_ERROR, code, "%s: %s", what, sqlite3_errmsg(store->db));
	return FALSE;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

/* Binds @v, or NULL when @v is 0 (an absent row id). */
static void
bind_id(sqlite3_stmt *st, int i, gint64 v)
{
	if (v == 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

/* Steps a statement that returns no rows. */
static gboolean
step_done(MrStore *store, sqlite3_stmt *st, GError **error)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_fail(store, error, sqlite3_sql(st));
	return TRUE;
}

/* Steps and returns the first column of the first row as an integer, or
 * 0 when there is no row. */
static gint64
step_int64(sqlite3_stmt *st)
{
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
}

static char *
now_iso(void)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();

	return g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
}

static char *
unix_to_iso(gint64 t)
{
	g_autoptr(GDateTime) dt = t != 0 ? g_date_time_new_from_unix_utc(t) : NULL;

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

/* --- open, migrate, close --------------------------------------------- */

static gboolean
store_exec(MrStore *store, const char *sql, GError **error)
{
	char *msg = NULL;

	if (sqlite3_exec(store->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = sqlite3_extended_errcode(store->db) & 0xff;

		g_set_error(error, MR_STORE_ERROR,
			    rc == SQLITE_BUSY ? MR_STORE_ERROR_BUSY : MR_STORE_ERROR_OPEN,
			    "%s", msg != NULL ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return FALSE;
	}
	return TRUE;
}

void
mr_store_set_config(MrStore *store, const MrConfig *cfg)
{
	g_return_if_fail(store != NULL && cfg != NULL);
	store->cfg = cfg;
}

int
mr_store_schema_version(MrStore *store)
{
	g_autoptr(sqlite3_stmt) st = NULL;

	if (sqlite3_prepare_v2(store->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	return (int)step_int64(st);
}

/* Moves the schema forward one version at a time, each step in its own
 * transaction with its user_version bump. */
static gboolean
store_migrate(MrStore *store, GError **error)
{
	int v = mr_store_schema_version(store);

	if (v > mr_sql_schema_version) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN,
			    "database schema version %d is newer than this mailroom (%d)", v,
			    mr_sql_schema_version);
		return FALSE;
	}
	for (; v < mr_sql_schema_version; v++) {
		g_autofree char *bump = g_strdup_printf("PRAGMA user_version = %d", v + 1);
		g_autoptr(GError) local = NULL;

		if (!store_exec(store, "BEGIN IMMEDIATE", error))
			return FALSE;
		/* Another process may have migrated while we waited for the lock. */
		if (mr_store_schema_version(store) > v) {
			store_exec(store, "ROLLBACK", NULL);
			continue;
		}
		if (!store_exec(store, mr_sql_migrations[v], &local) ||
		    !store_exec(store, bump, &local) || !store_exec(store, "COMMIT", &local)) {
			store_exec(store, "ROLLBACK", NULL);
			g_propagate_prefixed_error(error, g_steal_pointer(&local),
						   "migrating to schema %d: ", v + 1);
			return FALSE;
		}
	}
	return TRUE;
}

MrStore *
mr_store_open(const MrConfig *cfg, GError **error)
{
	g_autoptr(MrStore) store = g_new0(MrStore, 1);
	g_autofree char *dir = NULL;
	g_autofree char *pragmas = NULL;
	int rc;

	g_return_val_if_fail(cfg != NULL && cfg->database != NULL, NULL);

	store->cfg = cfg;
	dir = g_path_get_dirname(cfg->database);
	if (g_mkdir_with_parents(dir, 0750) != 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN,
			    "%s: cannot create directory: %s", dir, g_strerror(errno));
		return NULL;
	}
	rc = sqlite3_open_v2(cfg->database, &store->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN, "%s: %s", cfg->database,
			    store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
		return NULL;
	}
	sqlite3_extended_result_codes(store->db, 1);
	sqlite3_busy_timeout(store->db, cfg->busy_timeout_ms);
	pragmas = g_strdup_printf("PRAGMA journal_mode = WAL;"
				  "PRAGMA synchronous = %s;"
				  "PRAGMA foreign_keys = ON;"
				  /* reads without a copy; bounded, as mapped pages count in
				   * the daemon's RSS */
				  "PRAGMA mmap_size = 33554432;",
				  g_ascii_strcasecmp(cfg->synchronous, "normal") == 0 ? "NORMAL"
										      : "FULL");
	if (!store_exec(store, pragmas, error) || !store_migrate(store, error)) {
		g_prefix_error(error, "%s: ", cfg->database);
		return NULL;
	}
	for (int i = 0; i < MR_SQL_N_STATEMENTS; i++) {
		g_assert(mr_sql_text[i] != NULL);
		if (sqlite3_prepare_v3(store->db, mr_sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &store->stmt[i], NULL) != SQLITE_OK) {
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN,
				    "preparing statement %d: %s", i, sqlite3_errmsg(store->db));
			return NULL;
		}
	}
	return g_steal_pointer(&store);
}

void
mr_store_close(MrStore *store)
{
	if (store == NULL)
		return;
	if (store->db != NULL && !sqlite3_get_autocommit(store->db))
		store_exec(store, "ROLLBACK", NULL);
	for (int i = 0; i < MR_SQL_N_STATEMENTS; i++)
		sqlite3_finalize(store->stmt[i]);
	sqlite3_close(store->db);
	g_free(store);
}

gboolean
mr_store_begin(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_BEGIN);

	return step_done(store, st, error);
}

gboolean
mr_store_commit(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_COMMIT);

	return step_done(store, st, error);
}

void
mr_store_rollback(MrStore *store)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (sqlite3_get_autocommit(store->db))
		return;
	st = store_stmt(store, MR_SQL_ROLLBACK);
	if (sqlite3_step(st) != SQLITE_DONE)
		g_warning("rollback failed: %s", sqlite3_errmsg(store->db));
}

gboolean
mr_store_in_transaction(MrStore *store)
{
	g_return_val_if_fail(store != NULL, FALSE);

	return !sqlite3_get_autocommit(store->db);
}

gboolean
mr_store_savepoint(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_SAVEPOINT);

	return step_done(store, st, error);
}

gboolean
mr_store_release(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_RELEASE);

	return step_done(store, st, error);
}

void
mr_store_rollback_to(MrStore *store)
{
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_ROLLBACK_TO);

		if (sqlite3_step(st) != SQLITE_DONE)
			g_warning("rollback to savepoint failed: %s", sqlite3_errmsg(store->db));
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_RELEASE);

		if (sqlite3_step(st) != SQLITE_DONE)
			g_warning("release of savepoint failed: %s", sqlite3_errmsg(store->db));
	}
}

/* Runs @fn in its own transaction when none is open (the CLI's verbs). */
typedef gboolean (*MrStoreTxFunc)(MrStore *store, gpointer data, GError **error);

static gboolean
store_in_tx(MrStore *store, MrStoreTxFunc fn, gpointer data, GError **error)
{
	if (!mr_store_begin(store, error))
		return FALSE;
	if (!fn(store, data, error)) {
		mr_store_rollback(store);
		return FALSE;
	}
	if (!mr_store_commit(store, error)) {
		mr_store_rollback(store);
		return FALSE;
	}
	return TRUE;
}

/* --- look-ups for routing --------------------------------------------- */

gint64
mr_store_user_by_address(MrStore *store, const char *email)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_USER_BY_ADDRESS);

	bind_text(st, 1, email);
	return step_int64(st);
}

gint64
mr_store_contact_by_email(MrStore *store, const char *email)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_CONTACT_BY_EMAIL);

	bind_text(st, 1, email);
	return step_int64(st);
}

static const MrSql mr_status_sql[] = {
	[MR_RECORD_LEAD] = MR_SQL_LEAD_STATUS,
	[MR_RECORD_OPPORTUNITY] = MR_SQL_OPP_STATUS,
	[MR_RECORD_TICKET] = MR_SQL_TICKET_STATUS,
};

static const MrSql mr_related_sql[] = {
	[MR_RECORD_LEAD] = MR_SQL_LEAD_RELATED,
	[MR_RECORD_OPPORTUNITY] = MR_SQL_OPP_RELATED,
	[MR_RECORD_TICKET] = MR_SQL_TICKET_RELATED,
};

gboolean
mr_store_record_exists(MrStore *store, MrRecordRef ref, char **status_out)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_NONE)
		return FALSE;
	st = store_stmt(store, mr_status_sql[ref.kind]);
	sqlite3_bind_int64(st, 1, ref.id);
	if (sqlite3_step(st) != SQLITE_ROW)
		return FALSE;
	if (status_out != NULL)
		*status_out = g_strdup((const char *)sqlite3_column_text(st, 0));
	return TRUE;
}

gboolean
mr_store_record_related(MrStore *store, MrRecordRef ref, const char *email)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_NONE || email == NULL)
		return FALSE;
	st = store_stmt(store, mr_related_sql[ref.kind]);
	sqlite3_bind_int64(st, 1, ref.id);
	bind_text(st, 2, email);
	bind_text(st, 3, strrchr(email, '@') != NULL ? strrchr(email, '@') + 1 : NULL);
	return sqlite3_step(st) == SQLITE_ROW;
}

gboolean
mr_store_record_by_thread(MrStore *store, const char *const *ids, MrRecordKind kind,
			  MrRecordRef *out)
{
	for (; ids != NULL && *ids != NULL; ids++) {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_THREAD_RECORD);
		gint64 id;

		bind_text(st, 1, *ids);
		bind_text(st, 2, mr_record_kind_name(kind));
		id = step_int64(st);
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
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_THREAD_ADDRESS);

		bind_text(st, 1, *ids);
		bind_text(st, 2, email);
		if (step_int64(st) != 0)
			return TRUE;
	}
	return FALSE;
}

gint64
mr_store_open_lead_by_email(MrStore *store, const char *email)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_OPEN_LEAD);

	bind_text(st, 1, email);
	return step_int64(st);
}

gint64
mr_store_lead_opportunity(MrStore *store, gint64 id)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_LEAD_OPPORTUNITY);

	sqlite3_bind_int64(st, 1, id);
	return step_int64(st);
}

gint64
mr_store_message_by_key(MrStore *store, const char *key)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_MESSAGE_BY_KEY);

	bind_text(st, 1, key);
	return step_int64(st);
}

gboolean
mr_store_delivery_exists(MrStore *store, gint64 message_row, const char *recipient)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_DELIVERY_EXISTS);

	sqlite3_bind_int64(st, 1, message_row);
	bind_text(st, 2, recipient);
	return sqlite3_step(st) == SQLITE_ROW;
}

gint64
mr_store_count_messages(MrStore *store)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_COUNT_MESSAGES);

	return step_int64(st);
}

/* --- applying a plan --------------------------------------------------- */

static gboolean
insert_address(MrStore *store, gint64 msg, const char *kind, const MrAddress *a, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (a == NULL || a->email == NULL || *a->email == '\0')
		return TRUE;
	st = store_stmt(store, MR_SQL_ADDRESS_INSERT);
	sqlite3_bind_int64(st, 1, msg);
	bind_text(st, 2, kind);
	bind_text(st, 3, a->email);
	bind_text(st, 4, a->name);
	return step_done(store, st, error);
}

static gboolean
insert_attachment(MrStore *store, gint64 msg, const MrAttachment *att, GError **error)
{
	gsize len = 0;
	const void *data = att->data != NULL ? g_bytes_get_data(att->data, &len) : NULL;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_BLOB_INSERT);

		bind_text(st, 1, att->sha256);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
		sqlite3_bind_blob64(st, 3, data != NULL ? data : "", len, SQLITE_STATIC);
		if (!step_done(store, st, error))
			return FALSE;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_ATTACHMENT_INSERT);

		sqlite3_bind_int64(st, 1, msg);
		bind_text(st, 2, att->sha256);
		bind_text(st, 3, att->filename);
		bind_text(st, 4, att->content_type != NULL ? att->content_type
							   : "application/octet-stream");
		sqlite3_bind_int64(st, 5, (sqlite3_int64)att->size);
		return step_done(store, st, error);
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

/* Stores the message row, its raw bytes, addresses and attachments. */
static gint64
insert_message(MrStore *store, GBytes *raw, const char *key, const MrMessage *msg,
	       const char *now, GError **error)
{
	g_autofree char *date = unix_to_iso(msg->date);
	g_autofree char *snippet = make_snippet(msg->body_text);
	gsize raw_len = 0;
	const void *raw_data = g_bytes_get_data(raw, &raw_len);
	gint64 row;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_MESSAGE_INSERT);

		bind_text(st, 1, key);
		bind_text(st, 2, msg->message_id);
		bind_text(st, 3, msg->in_reply_to);
		bind_text(st, 4, msg->subject != NULL ? msg->subject : "");
		bind_text(st, 5, msg->subject_normalised != NULL ? msg->subject_normalised : "");
		bind_text(st, 6, msg->from != NULL ? msg->from->email : NULL);
		bind_text(st, 7, msg->from != NULL ? msg->from->name : NULL);
		bind_text(st, 8, date);
		bind_text(st, 9, now);
		sqlite3_bind_int64(st, 10, (sqlite3_int64)raw_len);
		bind_text(st, 11, mr_parse_status_names[msg->status]);
		bind_text(st, 12, msg->problem);
		bind_text(st, 13, mr_auto_names[msg->auto_kind]);
		bind_text(st, 14, msg->auto_reason);
		sqlite3_bind_int(st, 15, msg->is_forward ? 1 : 0);
		bind_text(st, 16, msg->original_from != NULL ? msg->original_from->email : NULL);
		bind_text(st, 17, snippet);
		if (!step_done(store, st, error))
			return 0;
		row = sqlite3_last_insert_rowid(store->db);
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_MESSAGE_RAW_INSERT);

		sqlite3_bind_int64(st, 1, row);
		sqlite3_bind_blob64(st, 2, raw_len > 0 ? raw_data : "", raw_len, SQLITE_STATIC);
		if (!step_done(store, st, error))
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
	st = store_stmt(store, MR_SQL_LINK_INSERT);
	sqlite3_bind_int64(st, 1, msg);
	bind_text(st, 2, kind);
	sqlite3_bind_int64(st, 3, id);
	return step_done(store, st, error);
}

static gboolean
insert_event(MrStore *store, const char *now, const char *type, MrRecordRef ref, gint64 msg,
	     const char *summary, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_EVENT_INSERT);

	bind_text(st, 1, now);
	bind_text(st, 2, type);
	bind_text(st, 3, mr_record_kind_name(ref.kind));
	bind_id(st, 4, ref.id);
	bind_id(st, 5, msg);
	bind_text(st, 6, summary);
	return step_done(store, st, error);
}

/* Returns the id of user @email, creating the user (and its address) when
 * missing; 0 with @error on failure. */
static gint64
ensure_user(MrStore *store, const char *email, const char *name, const char *now, GError **error)
{
	gint64 id = mr_store_user_by_address(store, email);

	if (id != 0)
		return id;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_USER_INSERT);

		bind_text(st, 1, email);
		bind_text(st, 2, name);
		bind_text(st, 3, now);
		if (!step_done(store, st, error))
			return 0;
		id = sqlite3_last_insert_rowid(store->db);
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_USER_ADDRESS_INSERT);

		bind_text(st, 1, email);
		sqlite3_bind_int64(st, 2, id);
		if (!step_done(store, st, error))
			return 0;
	}
	return id;
}

/* Returns the account of @domain, creating it; 0 for freemail domains. */
static gint64
ensure_account(MrStore *store, const char *domain, const char *now, GError **error)
{
	gint64 id;

	if (domain == NULL || *domain == '\0' || mr_config_is_freemail(store->cfg, domain))
		return 0;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_ACCOUNT_BY_DOMAIN);

		bind_text(st, 1, domain);
		id = step_int64(st);
	}
	if (id != 0)
		return id;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_ACCOUNT_INSERT);

		bind_text(st, 1, domain);
		bind_text(st, 2, domain);
		bind_text(st, 3, now);
		if (!step_done(store, st, error))
			return 0;
	}
	return sqlite3_last_insert_rowid(store->db);
}

/* Returns the contact of @p, creating it (and its account) when missing;
 * sets its owner to @owner when it has none.  Sets @account_out. */
static gint64
ensure_contact(MrStore *store, const MrParty *p, gint64 owner, const char *now,
	       gint64 *account_out, GError **error)
{
	gint64 id = p->contact_id != 0 ? p->contact_id : mr_store_contact_by_email(store, p->email);
	const char *at = strrchr(p->email, '@');

	if (id == 0) {
		gint64 account = ensure_account(store, at != NULL ? at + 1 : NULL, now, error);
		g_autoptr(MrStmtUse) st = NULL;

		if (account == 0 && error != NULL && *error != NULL)
			return 0;
		st = store_stmt(store, MR_SQL_CONTACT_INSERT);
		bind_text(st, 1, p->email);
		bind_text(st, 2, p->name != NULL && *p->name != '\0' ? p->name : NULL);
		bind_id(st, 3, account);
		bind_id(st, 4, owner);
		bind_text(st, 5, now);
		if (!step_done(store, st, error))
			return 0;
		*account_out = account;
		return sqlite3_last_insert_rowid(store->db);
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_CONTACT_TOUCH);

		sqlite3_bind_int64(st, 1, id);
		bind_text(st, 2, p->name != NULL && *p->name != '\0' ? p->name : NULL);
		bind_id(st, 3, owner);
		bind_text(st, 4, now);
		if (!step_done(store, st, error))
			return 0;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_CONTACT_GET);

		sqlite3_bind_int64(st, 1, id);
		*account_out = step_int64(st);
	}
	return id;
}

/* Links every party; returns the owner's user id in @owner_out and the
 * customer's contact id in @customer_out. */
static gboolean
apply_parties(MrStore *store, const MrPlan *plan, gint64 msg, const char *now,
	      gint64 *owner_out, gint64 *customer_out, GError **error)
{
	gint64 owner = 0;

	/* The owner first: a new contact's owner is the user who wrote to it. */
	if (plan->owner >= 0) {
		const MrParty *p = g_ptr_array_index(plan->parties, plan->owner);

		owner = p->user_id != 0 ? p->user_id : ensure_user(store, p->email, p->name, now, error);
		if (owner == 0)
			return FALSE;
	}
	*owner_out = owner;
	*customer_out = 0;
	for (guint i = 0; i < plan->parties->len; i++) {
		const MrParty *p = g_ptr_array_index(plan->parties, i);
		gint64 id, account = 0;

		if (p->internal) {
			id = (int)i == plan->owner ? owner : p->user_id;
			if (!insert_link(store, msg, "user", id, error))
				return FALSE;
			continue;
		}
		if (p->contact_id == 0 && !plan->create_contacts)
			continue;
		id = ensure_contact(store, p, p->is_sender ? 0 : owner, now, &account, error);
		if (id == 0)
			return FALSE;
		if ((int)i == plan->customer)
			*customer_out = id;
		if (!insert_link(store, msg, "contact", id, error) ||
		    !insert_link(store, msg, "account", account, error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
apply_record(MrStore *store, const MrPlan *plan, gint64 msg, gint64 owner, gint64 customer,
	     const char *now, MrRecordRef *out, GError **error)
{
	MrRecordRef ref = plan->record;
	g_autofree char *display = NULL;
	g_autofree char *summary = NULL;

	switch (plan->action) {
	case MR_ACTION_TICKET_CREATE: {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_TICKET_INSERT);

		bind_text(st, 1, plan->title);
		bind_id(st, 2, customer);
		bind_id(st, 3, owner);
		bind_text(st, 4, now);
		if (!step_done(store, st, error))
			return FALSE;
		ref.kind = MR_RECORD_TICKET;
		ref.id = sqlite3_last_insert_rowid(store->db);
		display = mr_record_display_id(store->cfg, ref);
		summary = g_strdup_printf("%s created: %s", display, plan->title);
		if (!insert_event(store, now, "ticket.created", ref, msg, summary, error))
			return FALSE;
		break;
	}
	case MR_ACTION_LEAD_CREATE: {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_LEAD_INSERT);
		gint64 lead_owner = owner;

		if (lead_owner == 0 && customer != 0) {
			g_autoptr(MrStmtUse) c = store_stmt(store, MR_SQL_CONTACT_GET);

			sqlite3_bind_int64(c, 1, customer);
			if (sqlite3_step(c) == SQLITE_ROW)
				lead_owner = sqlite3_column_int64(c, 1);
		}
		bind_text(st, 1, plan->title);
		bind_id(st, 2, customer);
		bind_id(st, 3, lead_owner);
		bind_text(st, 4, now);
		if (!step_done(store, st, error))
			return FALSE;
		ref.kind = MR_RECORD_LEAD;
		ref.id = sqlite3_last_insert_rowid(store->db);
		display = mr_record_display_id(store->cfg, ref);
		summary = g_strdup_printf("%s created: %s", display, plan->title);
		if (!insert_event(store, now, "lead.created", ref, msg, summary, error))
			return FALSE;
		break;
	}
	case MR_ACTION_TICKET_UPDATE: {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_TICKET_TOUCH);

		sqlite3_bind_int64(st, 1, ref.id);
		bind_text(st, 2, now);
		bind_text(st, 3, plan->reopen ? "open" : NULL);
		bind_id(st, 4, owner);
		if (!step_done(store, st, error))
			return FALSE;
		break;
	}
	case MR_ACTION_LEAD_UPDATE:
	case MR_ACTION_LOG:
		if (ref.kind == MR_RECORD_LEAD || ref.kind == MR_RECORD_OPPORTUNITY) {
			g_autoptr(MrStmtUse) st = store_stmt(
				store, ref.kind == MR_RECORD_LEAD ? MR_SQL_LEAD_TOUCH : MR_SQL_OPP_TOUCH);

			sqlite3_bind_int64(st, 1, ref.id);
			bind_text(st, 2, now);
			if (!step_done(store, st, error))
				return FALSE;
		} else if (ref.kind == MR_RECORD_TICKET) {
			g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_TICKET_TOUCH);

			sqlite3_bind_int64(st, 1, ref.id);
			bind_text(st, 2, now);
			bind_text(st, 3, plan->reopen ? "open" : NULL);
			bind_id(st, 4, 0);
			if (!step_done(store, st, error))
				return FALSE;
		}
		break;
	}
	*out = ref;
	if (plan->also.kind != MR_RECORD_NONE) {
		g_autofree char *also = mr_record_display_id(store->cfg, plan->also);
		g_autofree char *text = g_strdup_printf("message linked to %s", also);

		if (!insert_link(store, msg, mr_record_kind_name(plan->also.kind), plan->also.id,
				 error) ||
		    !insert_event(store, now, "message.linked", plan->also, msg, text, error))
			return FALSE;
	}
	if (ref.kind == MR_RECORD_NONE)
		return TRUE;
	if (!insert_link(store, msg, mr_record_kind_name(ref.kind), ref.id, error))
		return FALSE;
	if (display != NULL) /* created just now: the created event says it all */
		return TRUE;
	display = mr_record_display_id(store->cfg, ref);
	if (plan->reopen) {
		summary = g_strdup_printf("%s reopened by a new message", display);
		if (!insert_event(store, now, "ticket.reopened", ref, msg, summary, error))
			return FALSE;
		g_clear_pointer(&summary, g_free);
	}
	summary = g_strdup_printf("message linked to %s", display);
	if (!insert_event(store, now, "message.linked", ref, msg, summary, error))
		return FALSE;
	if (plan->is_reply) {
		g_clear_pointer(&summary, g_free);
		summary = g_strdup_printf("%s: reply received", display);
		if (!insert_event(store, now, "reply.received", ref, msg, summary, error))
			return FALSE;
	}
	return TRUE;
}

gboolean
mr_store_apply(MrStore *store, const MrPlan *plan, GBytes *raw, const char *key,
	       const MrMessage *msg, gint64 message_row, MrApplied *out, GError **error)
{
	g_autofree char *now = now_iso();
	gint64 owner = 0, customer = 0;
	MrApplied applied = { 0 };

	g_return_val_if_fail(store != NULL && plan != NULL && raw != NULL && key != NULL, FALSE);
	g_return_val_if_fail(!sqlite3_get_autocommit(store->db), FALSE);

	applied.message_row = message_row;
	if (message_row == 0) {
		applied.message_row = insert_message(store, raw, key, msg, now, error);
		if (applied.message_row == 0)
			return FALSE;
		applied.new_message = TRUE;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_DELIVERY_INSERT);

		sqlite3_bind_int64(st, 1, applied.message_row);
		bind_text(st, 2, plan->recipient);
		bind_text(st, 3, mr_role_name(plan->role));
		bind_text(st, 4, plan->envelope_from);
		bind_text(st, 5, now);
		if (!step_done(store, st, error))
			return FALSE;
	}
	if (!apply_parties(store, plan, applied.message_row, now, &owner, &customer, error) ||
	    !apply_record(store, plan, applied.message_row, owner, customer, now,
			  &applied.record, error))
		return FALSE;
	if (plan->untrusted != NULL) {
		g_autofree char *summary = g_strdup_printf(
			"From %s not authenticated (Authentication-Results of %s): not taken as the user's",
			plan->untrusted, store->cfg->authserv_id);
		MrRecordRef none = { MR_RECORD_NONE, 0 };

		if (!insert_event(store, now, "sender.untrusted", none, applied.message_row, summary,
				  error))
			return FALSE;
	}
	if (plan->refused != NULL) {
		g_autofree char *summary = g_strdup_printf(
			"%s named in the subject, not attached: sender not related", plan->refused);
		MrRecordRef none = { MR_RECORD_NONE, 0 };

		if (!insert_event(store, now, "link.refused", none, applied.message_row, summary,
				  error))
			return FALSE;
	}
	if (out != NULL)
		*out = applied;
	return TRUE;
}

/* --- administration ---------------------------------------------------- */

typedef struct {
	const char *email, *name;
	gint64 id;
} UserAdd;

static gboolean
user_add_tx(MrStore *store, gpointer data, GError **error)
{
	UserAdd *u = data;
	g_autofree char *now = now_iso();

	u->id = ensure_user(store, u->email, u->name, now, error);
	if (u->id == 0)
		return FALSE;
	if (u->name != NULL) {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_USER_SET_NAME);

		sqlite3_bind_int64(st, 1, u->id);
		bind_text(st, 2, u->name);
		return step_done(store, st, error);
	}
	return TRUE;
}

gint64
mr_store_user_add(MrStore *store, const char *email, const char *name, GError **error)
{
	UserAdd u = { email, name, 0 };

	return store_in_tx(store, user_add_tx, &u, error) ? u.id : 0;
}

typedef struct {
	const char *title, *contact, *owner;
	gint64 value, id;
} OppAdd;

static gboolean
opp_add_tx(MrStore *store, gpointer data, GError **error)
{
	OppAdd *o = data;
	g_autofree char *now = now_iso();
	gint64 contact = mr_store_contact_by_email(store, o->contact);
	gint64 account = 0, owner = 0;
	g_autoptr(MrStmtUse) st = NULL;

	if (contact == 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no contact %s",
			    o->contact);
		return FALSE;
	}
	{
		g_autoptr(MrStmtUse) c = store_stmt(store, MR_SQL_CONTACT_GET);

		sqlite3_bind_int64(c, 1, contact);
		if (sqlite3_step(c) == SQLITE_ROW) {
			account = sqlite3_column_int64(c, 0);
			owner = sqlite3_column_int64(c, 1);
		}
	}
	if (o->owner != NULL) {
		owner = mr_store_user_by_address(store, o->owner);
		if (owner == 0) {
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no user %s",
				    o->owner);
			return FALSE;
		}
	}
	st = store_stmt(store, MR_SQL_OPP_INSERT);
	bind_text(st, 1, o->title);
	if (o->value >= 0)
		sqlite3_bind_int64(st, 2, o->value);
	bind_id(st, 3, contact);
	bind_id(st, 4, account);
	bind_id(st, 5, owner);
	bind_text(st, 6, now);
	if (!step_done(store, st, error))
		return FALSE;
	o->id = sqlite3_last_insert_rowid(store->db);
	{
		MrRecordRef ref = { MR_RECORD_OPPORTUNITY, o->id };
		g_autofree char *display = mr_record_display_id(store->cfg, ref);
		g_autofree char *summary = g_strdup_printf("%s created: %s", display, o->title);

		return insert_event(store, now, "opportunity.created", ref, 0, summary, error);
	}
}

gint64
mr_store_opp_add(MrStore *store, const char *title, const char *contact, const char *owner,
		 gint64 value, GError **error)
{
	OppAdd o = { title, contact, owner, value, 0 };

	return store_in_tx(store, opp_add_tx, &o, error) ? o.id : 0;
}

/* Fails with NOT_FOUND when @ref does not exist. */
static gboolean
record_must_exist(MrStore *store, MrRecordRef ref, char **status_out, GError **error)
{
	if (mr_store_record_exists(store, ref, status_out))
		return TRUE;
	{
		g_autofree char *display = mr_record_display_id(store->cfg, ref);

		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no such record %s",
			    display);
	}
	return FALSE;
}

typedef struct {
	gint64 id;
	gboolean won;
	const char *reason;
} OppClose;

static gboolean
opp_close_tx(MrStore *store, gpointer data, GError **error)
{
	OppClose *o = data;
	MrRecordRef ref = { MR_RECORD_OPPORTUNITY, o->id };
	g_autofree char *status = NULL, *now = now_iso(), *display = NULL, *summary = NULL;
	g_autoptr(MrStmtUse) st = NULL;

	if (!record_must_exist(store, ref, &status, error))
		return FALSE;
	display = mr_record_display_id(store->cfg, ref);
	if (g_strcmp0(status, "open") != 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_INVALID, "%s is already %s",
			    display, status);
		return FALSE;
	}
	st = store_stmt(store, MR_SQL_OPP_CLOSE);
	sqlite3_bind_int64(st, 1, o->id);
	bind_text(st, 2, o->won ? "won" : "lost");
	bind_text(st, 3, o->won ? "closed_won" : "closed_lost");
	sqlite3_bind_int(st, 4, o->won ? 100 : 0);
	bind_text(st, 5, o->won ? NULL : o->reason);
	bind_text(st, 6, now);
	if (!step_done(store, st, error))
		return FALSE;
	summary = o->won ? g_strdup_printf("%s won", display)
			 : g_strdup_printf("%s lost: %s", display, o->reason);
	return insert_event(store, now, o->won ? "opportunity.won" : "opportunity.lost", ref, 0,
			    summary, error);
}

gboolean
mr_store_opp_close(MrStore *store, gint64 id, gboolean won, const char *reason, GError **error)
{
	OppClose o = { id, won, reason };

	if (!won && (reason == NULL || *reason == '\0')) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_INVALID,
			    "a lost opportunity needs a reason");
		return FALSE;
	}
	return store_in_tx(store, opp_close_tx, &o, error);
}

static const char *const mr_ticket_statuses[] = {
	"new", "open", "pending", "solved", "closed", NULL,
};

typedef struct {
	gint64 id;
	const char *status;
} TicketStatus;

static gboolean
ticket_status_tx(MrStore *store, gpointer data, GError **error)
{
	TicketStatus *t = data;
	MrRecordRef ref = { MR_RECORD_TICKET, t->id };
	g_autofree char *old = NULL, *now = now_iso(), *display = NULL, *summary = NULL;
	g_autoptr(MrStmtUse) st = NULL;

	if (!record_must_exist(store, ref, &old, error))
		return FALSE;
	st = store_stmt(store, MR_SQL_TICKET_SET_STATUS);
	sqlite3_bind_int64(st, 1, t->id);
	bind_text(st, 2, t->status);
	bind_text(st, 3, now);
	if (!step_done(store, st, error))
		return FALSE;
	display = mr_record_display_id(store->cfg, ref);
	summary = g_strdup_printf("%s status %s -> %s", display, old, t->status);
	return insert_event(store, now, "ticket.status", ref, 0, summary, error);
}

gboolean
mr_store_ticket_set_status(MrStore *store, gint64 id, const char *status, GError **error)
{
	TicketStatus t = { id, status };

	if (!g_strv_contains(mr_ticket_statuses, status)) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_INVALID,
			    "unknown ticket status '%s' (new, open, pending, solved, closed)", status);
		return FALSE;
	}
	return store_in_tx(store, ticket_status_tx, &t, error);
}

typedef struct {
	gint64 id;
	gboolean convert;
	gint64 opp;
} LeadClose;

static gboolean
lead_close_tx(MrStore *store, gpointer data, GError **error)
{
	LeadClose *l = data;
	MrRecordRef ref = { MR_RECORD_LEAD, l->id };
	g_autofree char *status = NULL, *now = now_iso(), *display = NULL, *summary = NULL;
	g_autofree char *title = NULL, *contact = NULL, *owner = NULL;

	if (!record_must_exist(store, ref, &status, error))
		return FALSE;
	display = mr_record_display_id(store->cfg, ref);
	if (g_strcmp0(status, "converted") == 0 || g_strcmp0(status, "archived") == 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_INVALID, "%s is already %s",
			    display, status);
		return FALSE;
	}
	if (l->convert) {
		OppAdd o = { 0 };
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_LEAD_GET);

		sqlite3_bind_int64(st, 1, l->id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			title = g_strdup((const char *)sqlite3_column_text(st, 0));
			contact = g_strdup((const char *)sqlite3_column_text(st, 2));
			owner = g_strdup((const char *)sqlite3_column_text(st, 3));
		}
		g_clear_pointer(&st, stmt_release);
		if (contact == NULL) {
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_INVALID,
				    "%s has no contact to convert", display);
			return FALSE;
		}
		o.title = title;
		o.contact = contact;
		o.owner = owner;
		o.value = -1;
		if (!opp_add_tx(store, &o, error))
			return FALSE;
		l->opp = o.id;
		st = store_stmt(store, MR_SQL_LINKS_COPY);
		bind_text(st, 1, "lead");
		sqlite3_bind_int64(st, 2, l->id);
		bind_text(st, 3, "opportunity");
		sqlite3_bind_int64(st, 4, l->opp);
		if (!step_done(store, st, error))
			return FALSE;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_LEAD_SET_STATUS);

		sqlite3_bind_int64(st, 1, l->id);
		bind_text(st, 2, l->convert ? "converted" : "archived");
		bind_text(st, 3, now);
		bind_id(st, 4, l->opp);
		if (!step_done(store, st, error))
			return FALSE;
	}
	summary = g_strdup_printf("%s %s", display, l->convert ? "converted" : "archived");
	return insert_event(store, now, l->convert ? "lead.converted" : "lead.archived", ref, 0,
			    summary, error);
}

gint64
mr_store_lead_convert(MrStore *store, gint64 id, GError **error)
{
	LeadClose l = { id, TRUE, 0 };

	return store_in_tx(store, lead_close_tx, &l, error) ? l.opp : 0;
}

gboolean
mr_store_lead_archive(MrStore *store, gint64 id, GError **error)
{
	LeadClose l = { id, FALSE, 0 };

	return store_in_tx(store, lead_close_tx, &l, error);
}

/* --- queries ------------------------------------------------------------ */

/* Binds the parameters every CLI query may use: ?2 and ?3 are the
 * opportunity and ticket prefixes, when the statement has them. */
static void
bind_prefixes(MrStore *store, sqlite3_stmt *st)
{
	int n = sqlite3_bind_parameter_count(st);

	if (n >= 2)
		bind_text(st, 2, store->cfg->opportunity_prefix);
	if (n >= 3)
		bind_text(st, 3, store->cfg->ticket_prefix);
}

/* Turns the current row into an object keyed by column name; columns whose
 * names start with '_' are internal and left out, and a column "@name"
 * holding space-separated words becomes the array "name". */
static JsonObject *
row_to_object(sqlite3_stmt *st)
{
	JsonObject *o = json_object_new();

	for (int i = 0; i < sqlite3_column_count(st); i++) {
		const char *name = sqlite3_column_name(st, i);

		if (name[0] == '_')
			continue;
		if (name[0] == '@') {
			const char *text = (const char *)sqlite3_column_text(st, i);
			g_auto(GStrv) words = g_strsplit(text != NULL ? text : "", " ", -1);
			JsonArray *a = json_array_new();

			for (char **w = words; *w != NULL; w++)
				if (**w != '\0')
					json_array_add_string_element(a, *w);
			json_object_set_array_member(o, name + 1, a);
			continue;
		}
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			json_object_set_int_member(o, name, sqlite3_column_int64(st, i));
			break;
		case SQLITE_FLOAT:
			json_object_set_double_member(o, name, sqlite3_column_double(st, i));
			break;
		case SQLITE_TEXT:
			json_object_set_string_member(o, name,
						      (const char *)sqlite3_column_text(st, i));
			break;
		default:
			json_object_set_null_member(o, name);
			break;
		}
	}
	return o;
}

/* Steps @st to the end, collecting rows.  NULL with @error on failure. */
static JsonArray *
rows_to_array(MrStore *store, sqlite3_stmt *st, GError **error)
{
	g_autoptr(JsonArray) rows = json_array_new();
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_add_object_element(rows, row_to_object(st));
	if (rc != SQLITE_DONE) {
		store_fail(store, error, "query");
		return NULL;
	}
	return g_steal_pointer(&rows);
}

static const MrSql mr_list_sql[MR_LIST_N] = {
	[MR_LIST_USERS] = MR_SQL_LIST_USERS,
	[MR_LIST_CONTACTS] = MR_SQL_LIST_CONTACTS,
	[MR_LIST_ACCOUNTS] = MR_SQL_LIST_ACCOUNTS,
	[MR_LIST_LEADS] = MR_SQL_LIST_LEADS,
	[MR_LIST_OPPORTUNITIES] = MR_SQL_LIST_OPPS,
	[MR_LIST_TICKETS] = MR_SQL_LIST_TICKETS,
	[MR_LIST_MESSAGES] = MR_SQL_LIST_MESSAGES,
};

JsonArray *
mr_store_list(MrStore *store, MrListKind kind, gint64 limit, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	g_return_val_if_fail(kind < MR_LIST_N, NULL);
	st = store_stmt(store, mr_list_sql[kind]);
	sqlite3_bind_int64(st, 1, limit > 0 ? limit : -1);
	bind_prefixes(store, st);
	return rows_to_array(store, st, error);
}

static gboolean
not_found(GError **error, const char *what)
{
	g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no such %s", what);
	return FALSE;
}

/* Adds "messages": the messages linked to (@kind, @id). */
static gboolean
add_messages(MrStore *store, JsonObject *o, const char *kind, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_RECORD_MESSAGES);
	JsonArray *rows;

	bind_text(st, 1, kind);
	sqlite3_bind_int64(st, 2, id);
	rows = rows_to_array(store, st, error);
	if (rows == NULL)
		return FALSE;
	json_object_set_array_member(o, "messages", rows);
	return TRUE;
}

JsonObject *
mr_store_show_contact(MrStore *store, const char *email, GError **error)
{
	gint64 id = mr_store_contact_by_email(store, email);
	g_autoptr(JsonObject) o = NULL;
	g_autoptr(MrStmtUse) st = NULL;

	if (id == 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no contact %s", email);
		return NULL;
	}
	st = store_stmt(store, MR_SQL_SHOW_CONTACT);
	bind_text(st, 1, email);
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_fail(store, error, "contact");
		return NULL;
	}
	o = row_to_object(st);
	if (!add_messages(store, o, "contact", id, error))
		return NULL;
	return g_steal_pointer(&o);
}

static const MrSql mr_show_sql[] = {
	[MR_RECORD_LEAD] = MR_SQL_SHOW_LEAD,
	[MR_RECORD_OPPORTUNITY] = MR_SQL_SHOW_OPP,
	[MR_RECORD_TICKET] = MR_SQL_SHOW_TICKET,
};

JsonObject *
mr_store_show_record(MrStore *store, MrRecordRef ref, GError **error)
{
	g_autoptr(JsonObject) o = NULL;
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_NONE) {
		not_found(error, "record");
		return NULL;
	}
	st = store_stmt(store, mr_show_sql[ref.kind]);
	sqlite3_bind_int64(st, 1, ref.id);
	bind_prefixes(store, st);
	if (sqlite3_step(st) != SQLITE_ROW) {
		g_autofree char *display = mr_record_display_id(store->cfg, ref);

		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no such record %s",
			    display);
		return NULL;
	}
	o = row_to_object(st);
	if (!add_messages(store, o, mr_record_kind_name(ref.kind), ref.id, error))
		return NULL;
	return g_steal_pointer(&o);
}

/* Adds the result of a per-message statement as array @member. */
static gboolean
add_message_rows(MrStore *store, JsonObject *o, MrSql sql, gint64 id, const char *member,
		 GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, sql);
	JsonArray *rows;

	sqlite3_bind_int64(st, 1, id);
	rows = rows_to_array(store, st, error);
	if (rows == NULL)
		return FALSE;
	json_object_set_array_member(o, member, rows);
	return TRUE;
}

/* Adds "contacts", "accounts", "users" ("links", the records, come with
 * the message row). */
static gboolean
add_message_links(MrStore *store, JsonObject *o, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_MESSAGE_LINKS);
	JsonArray *contacts = json_array_new();
	JsonArray *accounts = json_array_new(), *users = json_array_new();
	int rc;

	json_object_set_array_member(o, "contacts", contacts);
	json_object_set_array_member(o, "accounts", accounts);
	json_object_set_array_member(o, "users", users);
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);

		if (g_strcmp0(kind, "contact") == 0)
			json_array_add_string_element(contacts, name);
		else if (g_strcmp0(kind, "account") == 0)
			json_array_add_string_element(accounts, name);
		else if (g_strcmp0(kind, "user") == 0)
			json_array_add_string_element(users, name);
	}
	if (rc != SQLITE_DONE)
		return store_fail(store, error, "links");
	return TRUE;
}

JsonObject *
mr_store_show_message(MrStore *store, gint64 id, GError **error)
{
	g_autoptr(JsonObject) o = NULL;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_SHOW_MESSAGE);

		sqlite3_bind_int64(st, 1, id);
		bind_prefixes(store, st);
		if (sqlite3_step(st) != SQLITE_ROW) {
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND,
				    "no message %" G_GINT64_FORMAT, id);
			return NULL;
		}
		o = row_to_object(st);
	}
	if (!add_message_links(store, o, id, error) ||
	    !add_message_rows(store, o, MR_SQL_MESSAGE_ADDRESSES, id, "addresses", error) ||
	    !add_message_rows(store, o, MR_SQL_MESSAGE_ATTACHMENTS, id, "attachments", error) ||
	    !add_message_rows(store, o, MR_SQL_MESSAGE_DELIVERIES, id, "deliveries", error))
		return NULL;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_MESSAGE_REFUSED);
		JsonArray *refused = json_array_new();

		json_object_set_array_member(o, "refused", refused);
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_add_string_element(refused,
						      (const char *)sqlite3_column_text(st, 0));
	}
	return g_steal_pointer(&o);
}

GBytes *
mr_store_message_raw(MrStore *store, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_SQL_MESSAGE_RAW);

	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND,
			    "no message %" G_GINT64_FORMAT, id);
		return NULL;
	}
	return g_bytes_new(sqlite3_column_blob(st, 0), (gsize)sqlite3_column_bytes(st, 0));
}

JsonArray *
mr_store_timeline(MrStore *store, const char *email, const char *domain, MrRecordRef ref,
		  GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;
	const char *kind;
	gint64 id;

	if (email != NULL) {
		kind = "contact";
		id = mr_store_contact_by_email(store, email);
		if (id == 0) {
			kind = "user";
			id = mr_store_user_by_address(store, email);
		}
		if (id == 0) {
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND,
				    "no contact or user %s", email);
			return NULL;
		}
	} else if (domain != NULL) {
		g_autoptr(MrStmtUse) a = store_stmt(store, MR_SQL_ACCOUNT_ID);

		kind = "account";
		bind_text(a, 1, domain);
		id = step_int64(a);
		if (id == 0) {
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND,
				    "no account %s", domain);
			return NULL;
		}
	} else {
		if (!record_must_exist(store, ref, NULL, error))
			return NULL;
		kind = mr_record_kind_name(ref.kind);
		id = ref.id;
	}
	st = store_stmt(store, MR_SQL_TIMELINE);
	bind_text(st, 1, kind);
	sqlite3_bind_int64(st, 2, id);
	return rows_to_array(store, st, error);
}
