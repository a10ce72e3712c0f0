/* mr-store-mailbox.c - what mailroomd knows of each IMAP mailbox, and the
 * quarantine (mr-store-mailbox.h).
 *
 * Store stage: row-level primitives that decide nothing. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-error.h"

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
	mr_store_bind_id(st, 2, m->uidvalidity);
	mr_sql_bind_int64(st, 3, m->last_uid);
	mr_sql_bind_text(st, 4, m->state);
	mr_sql_bind_int64(st, 5, m->backlog);
	mr_sql_bind_text(st, 6, m->last_error);
	mr_sql_bind_text(st, 7, now);
	mr_sql_bind_int64(st, 8, m->inflight_to);
	mr_sql_bind_int64(st, 9, m->inflight_tries);
	return mr_store_step_done(store, st, error);
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
	return mr_store_step_done(store, st, error);
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
	if (!mr_store_step_done(store, st, error))
		return FALSE;
	return TRUE;
}
