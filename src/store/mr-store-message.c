/* mr-store-message.c - storing a message (its row, raw bytes, addresses,
 * attachments) and its deliveries, and the look-ups about messages
 * (mr-store.h, mr-store-message.h).
 *
 * Store stage: row-level primitives that decide nothing. */
#define G_LOG_DOMAIN "mailroom-store"

#include <string.h>

#include "mr-store-private.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-error.h"

static char *
unix_to_iso(gint64 t)
{
	g_autoptr(GDateTime) dt = t != 0 ? g_date_time_new_from_unix_utc(t) : NULL;

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : NULL;
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

/* The message that a row belongs to: its id, or (0) its content key. */
typedef struct {
	gint64 id;
	const char *key;
} MessageRef;

/* Binds @m as the statement's ?@id and ?@key (MESSAGE_OF). */
static void
bind_message_ref(MrSqlStmt *st, int id, int key, MessageRef m)
{
	mr_store_bind_id(st, id, m.id);
	mr_sql_bind_text(st, key, m.id != 0 ? NULL : m.key);
}

/* The addresses of a message on their way to message_address: two rows
 * a statement, in order. */
typedef struct {
	MrStore *store;
	MessageRef msg;
	const char *kind;     /* (nullable): a row held back for a pair */
	const MrAddress *held;
} AddressRows;

/* Binds the row held back as ?1..?4, and lets it go. */
static void
bind_address_held(MrSqlStmt *st, AddressRows *rows)
{
	mr_sql_bind_text(st, 2, rows->kind);
	mr_sql_bind_text(st, 3, rows->held->email);
	mr_sql_bind_text(st, 4, rows->held->name);
	rows->kind = NULL;
}

static gboolean
insert_address(AddressRows *rows, const char *kind, const MrAddress *a, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (a == NULL || a->email == NULL || *a->email == '\0')
		return TRUE;
	if (rows->kind == NULL) {
		rows->kind = kind;
		rows->held = a;
		return TRUE;
	}
	st = store_stmt(rows->store, MR_STMT_ADDRESS_INSERT2);
	bind_message_ref(st, 1, 8, rows->msg);
	bind_address_held(st, rows);
	mr_sql_bind_text(st, 5, kind);
	mr_sql_bind_text(st, 6, a->email);
	mr_sql_bind_text(st, 7, a->name);
	return mr_store_step_later(rows->store, st, error);
}

/* The row held back, if any. */
static gboolean
insert_address_last(AddressRows *rows, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (rows->kind == NULL)
		return TRUE;
	st = store_stmt(rows->store, MR_STMT_ADDRESS_INSERT);
	bind_message_ref(st, 1, 5, rows->msg);
	bind_address_held(st, rows);
	return mr_store_step_later(rows->store, st, error);
}

static gboolean
insert_attachment(MrStore *store, MessageRef msg, const MrAttachment *att, GError **error)
{
	gsize len = 0;
	const void *data = att->data != NULL ? g_bytes_get_data(att->data, &len) : NULL;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_BLOB_INSERT);

		mr_sql_bind_text(st, 1, att->sha256);
		mr_sql_bind_int64(st, 2, (gint64)len);
		mr_sql_bind_blob(st, 3, data, len);
		if (!mr_store_step_later(store, st, error))
			return FALSE;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_ATTACHMENT_INSERT);

		bind_message_ref(st, 1, 6, msg);
		mr_sql_bind_text(st, 2, att->sha256);
		mr_sql_bind_text(st, 3, att->filename);
		mr_sql_bind_text(st, 4, att->content_type != NULL ? att->content_type
							   : "application/octet-stream");
		mr_sql_bind_int64(st, 5, (gint64)att->size);
		return mr_store_step_later(store, st, error);
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

/* Binds the insert of the message row (MR_STMT_MESSAGE_INSERT), a
 * message that came in unless @out. */
static void
bind_message(MrSqlStmt *st, GBytes *raw, const char *key, const MrMessage *msg, const char *now,
	     gboolean out)
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
	mr_sql_bind_text(st, 18, out ? "out" : "in");
}

/* Stores the rows of message @m: its raw bytes, addresses and
 * attachments, held back (step_later).  Returns FALSE with @error. */
static gboolean
insert_message_rows(MrStore *store, MessageRef m, GBytes *raw, const MrMessage *msg,
		    GError **error)
{
	gsize raw_len = 0;
	const void *raw_data = g_bytes_get_data(raw, &raw_len);
	AddressRows addresses = { .store = store, .msg = m };

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_RAW_INSERT);

		bind_message_ref(st, 1, 3, m);
		mr_sql_bind_blob(st, 2, raw_data, raw_len);
		if (!mr_store_step_later(store, st, error))
			return FALSE;
	}
	if (!insert_address(&addresses, "from", msg->from, error) ||
	    !insert_address(&addresses, "sender", msg->sender, error) ||
	    !insert_address(&addresses, "reply-to", msg->reply_to, error) ||
	    !insert_address(&addresses, "original-from", msg->original_from, error))
		return FALSE;
	for (guint i = 0; msg->to != NULL && i < msg->to->len; i++)
		if (!insert_address(&addresses, "to", g_ptr_array_index(msg->to, i), error))
			return FALSE;
	for (guint i = 0; msg->cc != NULL && i < msg->cc->len; i++)
		if (!insert_address(&addresses, "cc", g_ptr_array_index(msg->cc, i), error))
			return FALSE;
	if (!insert_address_last(&addresses, error))
		return FALSE;
	for (guint i = 0; msg->attachments != NULL && i < msg->attachments->len; i++)
		if (!insert_attachment(store, m, g_ptr_array_index(msg->attachments, i), error))
			return FALSE;
	return TRUE;
}

/* Stores the message row (bound already when @started: see
 * mr_store_message_start()), its raw bytes, addresses and attachments.
 * Returns the new row, or 0: with @error on failure, without when a
 * message with @key is stored already (nothing is written then). */
static gint64
insert_message(MrStore *store, GBytes *raw, const char *key, const MrMessage *msg,
	       const char *now, gboolean started, GError **error)
{
	MessageRef m = { 0 };

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_INSERT);

		if (!started)
			bind_message(st, raw, key, msg, now, FALSE);
		m.id = mr_store_step_new_id(store, st, error);
		if (m.id == 0)
			return 0;
	}
	return insert_message_rows(store, m, raw, msg, error) ? m.id : 0;
}

gboolean
mr_store_message_insert_out(MrStore *store, GBytes *raw, const char *key, const MrMessage *msg,
			    const char *now, GError **error)
{
	MessageRef m = { .key = key };

	g_return_val_if_fail(store != NULL && raw != NULL && key != NULL && msg != NULL, FALSE);
	mr_store_drop_started(store);
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_INSERT_OUT);

		bind_message(st, raw, key, msg, now, TRUE);
		if (!mr_store_step_later(store, st, error))
			return FALSE;
	}
	return insert_message_rows(store, m, raw, msg, error);
}

gboolean
mr_store_insert_link(MrStore *store, gint64 msg, const char *kind, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (id == 0)
		return TRUE;
	st = store_stmt(store, MR_STMT_LINK_INSERT);
	mr_sql_bind_int64(st, 1, msg);
	mr_sql_bind_text(st, 2, kind);
	mr_sql_bind_int64(st, 3, id);
	return mr_store_step_later(store, st, error);
}

gboolean
mr_store_message_start(MrStore *store, GBytes *raw, const char *key, const MrMessage *msg,
		       GError **error)
{
	MrSqlStmt *st;

	g_return_val_if_fail(store != NULL && raw != NULL && key != NULL && msg != NULL, FALSE);
	g_return_val_if_fail(!!store->conn->driver->in_transaction(store->conn), FALSE);

	mr_store_drop_started(store);
	st = store_stmt(store, MR_STMT_MESSAGE_INSERT);
	store->started_now = mr_clock_now_iso();
	bind_message(st, raw, key, msg, store->started_now, FALSE);
	if (!mr_sql_send_ahead(st, error)) {
		mr_store_drop_started(store);
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
		mr_store_drop_started(store);
		out->now = mr_clock_now_iso();
	}
	out->message_row = message_row;
	if (message_row == 0) {
		g_autoptr(GError) local = NULL;

		/* One statement for a new message, the look-up by key included
		 * (a round trip less on PostgreSQL); a duplicate delivery is
		 * found here, after routing, which only reads. */
		out->message_row = insert_message(store, raw, key, msg, out->now, started,
						  &local);
		if (local != NULL) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		out->new_message = out->message_row != 0;
	}
	if (message_row == 0 && !out->new_message) {
		/* stored by an earlier delivery (or another daemon, meanwhile) */
		out->message_row = mr_store_lookup_again(store, error, "message", key,
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
		mr_sql_bind_text(st, 6, delivery->rules);
		return mr_store_step_later(store, st, error);
	}
}

void
mr_stored_clear(MrStored *stored)
{
	g_clear_pointer(&stored->now, g_free);
}
