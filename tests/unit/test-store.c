/* test-store.c - the SQLite store: schema migration, applying plans,
 * content-addressed attachments, duplicates, rollback, queries. */
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "mailroom/mr-crm.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-mailbox.h"
#include "mailroom/mr-store-message.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "../../src/store/mr-store-private.h"
#include "mr-test-util.h"

static void
test_migrate_file(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("mr-store-XXXXXX", &error);
	g_autofree char *db = g_build_filename(dir, "sub", "m.db", NULL);
	g_autoptr(MrConfig) cfg = mr_test_config(db);

	for (int i = 0; i < 2; i++) { /* a second open finds the schema current */
		g_autoptr(MrStore) store = mr_store_open(cfg, &error);

		g_assert_no_error(error);
		g_assert_cmpint(mr_store_schema_version(store), ==, mr_sql_schema_version);
		g_assert_cmpint(mr_store_count_messages(store), ==, 0);
	}
	{
		g_autofree char *wal = g_strconcat(db, "-wal", NULL);
		g_autofree char *shm = g_strconcat(db, "-shm", NULL);

		g_unlink(wal);
		g_unlink(shm);
	}
	g_unlink(db);
	{
		g_autofree char *sub = g_path_get_dirname(db);

		g_rmdir(sub);
	}
	g_rmdir(dir);
}

static void
test_open_fails(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config("/proc/version/x.db");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);

	g_assert_null(store);
	g_assert_error(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN);
}

static MrAttachment *
attachment(const char *name, const char *data)
{
	MrAttachment *a = g_new0(MrAttachment, 1);

	a->filename = g_strdup(name);
	a->content_type = g_strdup("text/plain");
	a->data = g_bytes_new(data, strlen(data));
	a->size = strlen(data);
	a->sha256 = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, strlen(data));
	return a;
}

static gint64
deliver(MrConfig *cfg, MrStore *store, MrMessage *msg, const char *key, const char *rcpt)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrPlan) plan = NULL;
	g_autoptr(GBytes) raw = g_bytes_new_static("Subject: x\r\n\r\nx\r\n", 17);
	MrApplied applied = { 0 };
	gint64 row;

	g_assert_true(mr_store_begin(store, &error));
	row = mr_store_message_by_key(store, key);
	if (row != 0 && mr_store_delivery_exists(store, row, rcpt)) {
		mr_store_rollback(store);
		return -row;
	}
	plan = mr_route_plan(cfg, store, msg, rcpt, "bounce@client.test", &error);
	g_assert_no_error(error);
	g_assert_true(mr_crm_apply(cfg, store, plan, raw, key, msg, row, &applied, &error));
	g_assert_no_error(error);
	g_assert_true(mr_store_commit(store, &error));
	return applied.message_row;
}

static void
test_apply(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) m1 = mr_test_message("eve@client.test", "support@acme.test", "Broken");
	g_autoptr(MrMessage) m2 = mr_test_message("eve@client.test", "support@acme.test", "Again");
	g_autoptr(GPtrArray) tickets = NULL, contacts = NULL, accounts = NULL;
	g_autoptr(MrMessageDetail) shown = NULL;
	gint64 r1, r2;

	g_assert_no_error(error);
	g_ptr_array_add(m1->attachments, attachment("a.txt", "same bytes"));
	g_ptr_array_add(m2->attachments, attachment("b.txt", "same bytes"));
	r1 = deliver(cfg, store, m1, "k1", "support@acme.test");
	g_assert_cmpint(r1, >, 0);
	/* the same bytes again to the same address: a duplicate */
	g_assert_cmpint(deliver(cfg, store, m1, "k1", "support@acme.test"), ==, -r1);
	/* the same bytes to another mailroom address: one message, two deliveries */
	g_assert_cmpint(deliver(cfg, store, m1, "k1", "crm@acme.test"), ==, r1);
	r2 = deliver(cfg, store, m2, "k2", "support@acme.test");
	g_assert_cmpint(r2, >, r1);
	g_assert_cmpint(mr_store_count_messages(store), ==, 2);

	tickets = mr_store_tickets(store, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(tickets->len, ==, 2);
	g_assert_cmpint(((MrTicketRow *)g_ptr_array_index(tickets, 0))->id, ==, 1);
	contacts = mr_store_contacts(store, 0, &error);
	g_assert_cmpuint(contacts->len, ==, 1);
	accounts = mr_store_accounts(store, 1, &error);
	g_assert_cmpuint(accounts->len, ==, 1);
	g_assert_cmpstr(((MrAccountRow *)g_ptr_array_index(accounts, 0))->domain, ==,
			"client.test");

	shown = mr_store_message_get(store, r1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(shown->deliveries->len, ==, 2);
	g_assert_cmpuint(shown->attachments->len, ==, 1);
	g_assert_cmpuint(shown->row.links->len, ==, 1);
	g_assert_cmpint(g_array_index(shown->row.links, MrRecordRef, 0).kind, ==, MR_RECORD_TICKET);
	g_assert_cmpint(g_array_index(shown->row.links, MrRecordRef, 0).id, ==, 1);
	{
		g_autoptr(GBytes) raw = mr_store_message_raw(store, r1, &error);

		g_assert_no_error(error);
		g_assert_cmpuint(g_bytes_get_size(raw), ==, 17);
	}
	g_assert_null(mr_store_message_get(store, 999, &error));
	g_assert_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND);
}

static void
test_rollback(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) msg = mr_test_message("eve@client.test", "support@acme.test", "x");
	g_autoptr(MrPlan) plan = NULL;
	g_autoptr(GBytes) raw = g_bytes_new_static("x", 1);

	g_assert_true(mr_store_begin(store, &error));
	plan = mr_route_plan(cfg, store, msg, "support@acme.test", NULL, &error);
	g_assert_true(mr_crm_apply(cfg, store, plan, raw, "k", msg, 0, NULL, &error));
	mr_store_rollback(store);
	g_assert_cmpint(mr_store_count_messages(store), ==, 0);
	g_assert_cmpint(mr_store_contact_by_email(store, "eve@client.test"), ==, 0);
}

/* mr_crm_apply() without a message row: the insert finds a message
 * stored already, and a delivery made already is a duplicate that writes
 * nothing. */
static gboolean
apply_once(MrConfig *cfg, MrStore *store, MrMessage *msg, const char *rcpt, MrApplied *applied)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrPlan) plan = NULL;
	g_autoptr(GBytes) raw = g_bytes_new_static("x", 1);

	g_assert_true(mr_store_begin(store, &error));
	plan = mr_route_plan(cfg, store, msg, rcpt, NULL, &error);
	g_assert_no_error(error);
	if (!mr_crm_apply(cfg, store, plan, raw, "k", msg, 0, applied, &error)) {
		mr_store_rollback(store);
		return FALSE;
	}
	g_assert_true(mr_store_commit(store, &error));
	return TRUE;
}

/* mr_store_message_start(): the insert starts before routing and
 * mr_crm_apply() finishes it; undone with the savepoint; another key
 * applied instead drops it.  mr_store_release_later() on SQLite releases
 * at once: nothing is left to settle. */
static void
test_message_start(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) msg = mr_test_message("eve@client.test", "crm@acme.test", "x");
	g_autoptr(GBytes) raw = g_bytes_new_static("x", 1);
	g_autoptr(GError) later = NULL;
	MrApplied applied = { 0 };

	g_assert_no_error(error);
	g_assert_true(mr_store_begin(store, &error));
	g_assert_true(mr_store_savepoint(store, &error));
	g_assert_true(mr_store_message_start(store, raw, "k1", msg, &error));
	{
		g_autoptr(MrPlan) plan = mr_route_plan(cfg, store, msg, "crm@acme.test", NULL, &error);

		g_assert_no_error(error);
		g_assert_true(mr_crm_apply(cfg, store, plan, raw, "k1", msg, 0, &applied, &error));
	}
	g_assert_true(applied.new_message);
	g_assert_true(mr_store_release_later(store, &later, &error));
	g_assert_true(mr_store_settle(store));
	g_assert_no_error(later);

	/* started, then undone with its savepoint */
	g_assert_true(mr_store_savepoint(store, &error));
	g_assert_true(mr_store_message_start(store, raw, "k2", msg, &error));
	mr_store_rollback_to(store);

	/* started for one key, applied for another */
	g_assert_true(mr_store_savepoint(store, &error));
	g_assert_true(mr_store_message_start(store, raw, "k3", msg, &error));
	{
		g_autoptr(MrPlan) plan = mr_route_plan(cfg, store, msg, "crm@acme.test", NULL, &error);

		g_assert_no_error(error);
		g_assert_true(mr_crm_apply(cfg, store, plan, raw, "k4", msg, 0, &applied, &error));
	}
	g_assert_true(mr_store_release(store, &error));
	g_assert_true(mr_store_commit(store, &error));

	g_assert_cmpint(mr_store_message_by_key(store, "k1"), >, 0);
	g_assert_cmpint(mr_store_message_by_key(store, "k2"), ==, 0);
	g_assert_cmpint(mr_store_message_by_key(store, "k3"), ==, 0);
	g_assert_cmpint(mr_store_message_by_key(store, "k4"), >, 0);
	g_assert_cmpint(mr_store_count_messages(store), ==, 2);
}

static void
test_apply_duplicate(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) msg = mr_test_message("eve@client.test", "support@acme.test", "x");
	g_autoptr(MrMessageDetail) shown = NULL;
	MrApplied first = { 0 }, again = { 0 }, other = { 0 };
	gint64 user = -1, contact = -1, account = -1;

	g_assert_true(apply_once(cfg, store, msg, "support@acme.test", &first));
	g_assert_true(first.new_message);
	g_assert_false(first.duplicate);
	g_assert_cmpint(first.record.kind, ==, MR_RECORD_TICKET);

	g_assert_true(apply_once(cfg, store, msg, "support@acme.test", &again));
	g_assert_true(again.duplicate);
	g_assert_false(again.new_message);
	g_assert_cmpint(again.message_row, ==, first.message_row);
	g_assert_cmpint(again.record.kind, ==, MR_RECORD_NONE);

	g_assert_true(apply_once(cfg, store, msg, "crm@acme.test", &other));
	g_assert_false(other.duplicate);
	g_assert_false(other.new_message);
	g_assert_cmpint(other.message_row, ==, first.message_row);

	g_assert_cmpint(mr_store_count_messages(store), ==, 1);
	shown = mr_store_message_get(store, first.message_row, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(shown->deliveries->len, ==, 2);
	g_assert_cmpuint(shown->addresses->len, ==, 2);

	/* both look-ups of a party at once */
	mr_store_party_by_email(store, "eve@client.test", &user, &contact, &account);
	g_assert_cmpint(user, ==, 0);
	g_assert_cmpint(contact, ==, mr_store_contact_by_email(store, "eve@client.test"));
	g_assert_cmpint(contact, >, 0);
	g_assert_cmpint(account, >, 0);
	mr_store_party_by_email(store, "nobody@client.test", &user, &contact, &account);
	g_assert_cmpint(user + contact + account, ==, 0);
	g_assert_true(mr_store_check(store, &error));
}

/* Event types: every one has a name that reads back as itself; a name
 * this mailroom does not know is "other". */
static void
test_event_types(void)
{
	for (int t = 1; t < MR_EVENT_N; t++) {
		const char *name = mr_event_type_name((MrEventType)t);

		g_assert_nonnull(strchr(name, '.'));
		g_assert_cmpint(mr_event_type_from_name(name), ==, t);
	}
	g_assert_cmpint(mr_event_type_from_name("rule.fired"), ==, MR_EVENT_OTHER);
	g_assert_cmpint(mr_event_type_from_name(NULL), ==, MR_EVENT_OTHER);
	g_assert_cmpstr(mr_event_type_name(MR_EVENT_N), ==, "other");
}

/* A new database at @db with the whole schema, and a connection of
 * SQLite's own to it. */
static sqlite3 *
open_schema(const char *db)
{
	g_autoptr(GError) error = NULL;
	sqlite3 *con = NULL;

	{
		g_autoptr(MrConfig) cfg = mr_test_config(db);
		g_autoptr(MrStore) store = mr_store_open(cfg, &error);

		g_assert_no_error(error);
		g_assert_cmpint(mr_store_schema_version(store), >=, 3);
	}
	g_assert_cmpint(sqlite3_open(db, &con), ==, SQLITE_OK);
	return con;
}

/* Every event type this mailroom writes is in the schema's event_type
 * table, which event.type refers to: a new type needs a migration that
 * adds it, or its events would fail. */
static void
test_event_types_in_schema(void)
{
	g_autofree char *dir = g_dir_make_tmp("mr-test-XXXXXX", NULL);
	g_autofree char *db = g_build_filename(dir, "m.db", NULL);
	sqlite3 *con = open_schema(db);

	for (int t = 1; t < MR_EVENT_N; t++) {
		sqlite3_stmt *st = NULL;

		g_assert_cmpint(sqlite3_prepare_v2(con, "SELECT 1 FROM event_type WHERE name = ?1",
						   -1, &st, NULL), ==, SQLITE_OK);
		sqlite3_bind_text(st, 1, mr_event_type_name((MrEventType)t), -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW)
			g_error("event type %s is not in the schema's event_type table: "
				"add it in a migration", mr_event_type_name((MrEventType)t));
		sqlite3_finalize(st);
	}
	sqlite3_close(con);
	g_unlink(db);
	g_rmdir(dir);
}

/* A look-up that fails must not pass for "not found": a reply to TKT-1
 * whose ticket look-up fails would become a new ticket.  The look-up is
 * made to fail for real: another connection drops the table under the
 * store's prepared statement. */
static void
test_lookup_failure(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("mr-store-XXXXXX", NULL);
	g_autofree char *db = g_build_filename(dir, "mailroom.db", NULL);
	g_autoptr(MrConfig) cfg = mr_test_config(db);
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	g_autoptr(MrMessage) first = mr_test_message("bob@customer.test", "support@acme.test", "printer");
	g_autoptr(MrMessage) reply =
		mr_test_message("bob@customer.test", "support@acme.test", "Re: [TKT-1] printer");
	g_autoptr(MrPlan) plan = NULL;
	g_autoptr(GBytes) raw = g_bytes_new_static("x", 1);
	MrApplied applied = { 0 };
	sqlite3 *other = NULL;

	g_assert_no_error(error);
	g_assert_true(mr_store_begin(store, &error));
	plan = mr_route_plan(cfg, store, first, "support@acme.test", NULL, &error);
	g_assert_nonnull(plan);
	g_assert_true(mr_crm_apply(cfg, store, plan, raw, "key-1", first, 0, &applied, &error));
	g_assert_true(mr_store_commit(store, &error));
	g_assert_cmpint(applied.record.kind, ==, MR_RECORD_TICKET);
	g_clear_pointer(&plan, mr_plan_free);

	/* It works while the table is there ... */
	g_assert_true(mr_store_begin(store, &error));
	plan = mr_route_plan(cfg, store, reply, "support@acme.test", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(plan->action, ==, MR_ACTION_TICKET_UPDATE);
	mr_store_rollback(store);
	g_clear_pointer(&plan, mr_plan_free);

	/* ... and fails, temporarily, when the look-up fails. */
	g_assert_cmpint(sqlite3_open(db, &other), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(other, "DROP TABLE ticket", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(other);
	g_assert_true(mr_store_begin(store, &error));
	plan = mr_route_plan(cfg, store, reply, "support@acme.test", NULL, &error);
	g_assert_null(plan);
	g_assert_error(error, MR_STORE_ERROR, MR_STORE_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "ticket"));
	g_clear_error(&error);
	/* The failure is reported once: the next check is clean. */
	g_assert_true(mr_store_check(store, &error));
	mr_store_rollback(store);
	/* The CLI says so too, instead of "no such record". */
	{
		g_autoptr(MrTicketRow) o = mr_store_ticket_get(store, 1, &error);

		g_assert_null(o);
		g_assert_false(g_error_matches(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND));
		g_clear_error(&error);
	}
	g_clear_pointer(&store, mr_store_close);
	g_unlink(db);
	{
		g_autofree char *wal = g_strconcat(db, "-wal", NULL);
		g_autofree char *shm = g_strconcat(db, "-shm", NULL);

		g_unlink(wal);
		g_unlink(shm);
	}
	g_rmdir(dir);
}

/* A struct of every field type, read from one row by its declaration. */
typedef struct {
	char *text, *null_text;
	gint64 number, no_id, no_amount, amount, ticket;
	gboolean yes;
	GStrv words;
	MrRecordRef ref, no_ref;
	GArray *refs;
} RowOfAll;

static const MrRowField row_of_all_fields[] = {
	MR_ROW_FIELD(RowOfAll, text, "text", MR_ROW_TEXT),
	MR_ROW_FIELD(RowOfAll, null_text, "null_text", MR_ROW_TEXT),
	MR_ROW_FIELD(RowOfAll, number, "number", MR_ROW_INT64),
	MR_ROW_FIELD(RowOfAll, no_id, "no_id", MR_ROW_ID),
	MR_ROW_FIELD(RowOfAll, no_amount, "no_amount", MR_ROW_AMOUNT),
	MR_ROW_FIELD(RowOfAll, amount, "amount", MR_ROW_AMOUNT),
	MR_ROW_RECORD_FIELD(RowOfAll, ticket, "ticket", MR_RECORD_TICKET),
	MR_ROW_FIELD(RowOfAll, yes, "yes", MR_ROW_BOOL),
	MR_ROW_FIELD(RowOfAll, words, "words", MR_ROW_WORDS),
	MR_ROW_FIELD(RowOfAll, ref, "ref", MR_ROW_RECORD_REF),
	MR_ROW_FIELD(RowOfAll, no_ref, "no_ref", MR_ROW_RECORD_REF),
	MR_ROW_FIELD(RowOfAll, refs, "refs", MR_ROW_RECORD_REFS),
};

static void row_of_all_free(RowOfAll *row);

static const MrRowDesc row_of_all_desc =
	MR_ROW_DESC(RowOfAll, "all", row_of_all_fields, row_of_all_free);

static void
row_of_all_free(RowOfAll *row)
{
	mr_row_free(&row_of_all_desc, row);
}

static void
test_row_read(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	MrSqlStmt *st;
	g_autoptr(GPtrArray) rows = NULL;
	RowOfAll *r;

	g_assert_no_error(error);
	st = store->driver->prepare(store->conn,
				    "SELECT 'a', NULL, 5, NULL, NULL, 0, 3, 1, ' x  y ', 'lead', 7,"
				    " 'bogus', 9, 'ticket:3 lead:2 bogus:1 lead:1', 'after'",
				    &error);
	g_assert_no_error(error);
	rows = mr_store_read_rows(st, &row_of_all_desc, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 1);
	r = g_ptr_array_index(rows, 0);
	g_assert_cmpstr(r->text, ==, "a");
	g_assert_null(r->null_text);
	g_assert_cmpint(r->number, ==, 5);
	g_assert_cmpint(r->no_id, ==, 0);
	g_assert_cmpint(r->no_amount, ==, -1);
	g_assert_cmpint(r->amount, ==, 0);
	g_assert_cmpint(r->ticket, ==, 3);
	g_assert_true(r->yes);
	g_assert_cmpuint(g_strv_length(r->words), ==, 2);
	g_assert_cmpstr(r->words[1], ==, "y");
	g_assert_cmpint(r->ref.kind, ==, MR_RECORD_LEAD);
	g_assert_cmpint(r->ref.id, ==, 7);
	g_assert_cmpint(r->no_ref.kind, ==, MR_RECORD_NONE);
	g_assert_cmpint(r->no_ref.id, ==, 0);
	/* by kind name, then id; unknown kinds dropped */
	g_assert_cmpuint(r->refs->len, ==, 3);
	g_assert_cmpint(g_array_index(r->refs, MrRecordRef, 0).id, ==, 1);
	g_assert_cmpint(g_array_index(r->refs, MrRecordRef, 2).kind, ==, MR_RECORD_TICKET);
	{
		RowOfAll part = { 0 };
		int next;

		mr_sql_reset(st);
		g_assert_cmpint(mr_sql_step(st, &error), ==, MR_SQL_ROW);
		next = mr_row_read(&row_of_all_desc, &part, st, 0);
		g_assert_cmpint(next, ==, 14);
		g_assert_cmpstr(mr_sql_column_text(st, next), ==, "after");
		mr_row_clear(&row_of_all_desc, &part);
		g_assert_null(part.text);
		g_assert_null(part.words);
		g_assert_null(part.refs);
	}
	mr_sql_reset(st);
	store->driver->finalize(st);
}

/* Each declaration stays inside its struct and names each field once. */
static void
test_row_declarations(void)
{
	static const MrRowDesc *const descs[] = {
		&mr_user_row_desc, &mr_contact_row_desc, &mr_account_row_desc,
		&mr_lead_row_desc, &mr_opportunity_row_desc, &mr_ticket_row_desc,
		&mr_message_row_desc, &mr_address_row_desc, &mr_attachment_row_desc,
		&mr_delivery_row_desc, &mr_message_detail_desc, &mr_message_brief_desc,
		&mr_timeline_entry_desc, &mr_event_desc, &mr_mailbox_state_desc,
		&mr_quarantine_row_desc, &mr_rule_row_desc, &mr_team_row_desc,
	};

	for (guint i = 0; i < G_N_ELEMENTS(descs); i++) {
		g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
		const MrRowDesc *d = descs[i];

		g_assert_nonnull(d->free);
		for (guint k = 0; k < d->n_fields; k++) {
			const MrRowField *f = &d->fields[k];

			g_assert_cmpuint(f->offset, <, d->size);
			if (f->name != NULL)
				g_assert_true(g_hash_table_add(names, (gpointer)f->name));
		}
	}
}

/* The queues' look-ups find the few rows that wait through an index,
 * however many rows were ever done: no statement of the scheduler or the
 * outbox scans job or outbox, and a claim does not sort what waits
 * (issue 23: a claim that scanned the tables made 10,000 jobs cost
 * quadratic time).  SQLite's plans, from EXPLAIN QUERY PLAN. */
static void
test_queue_plans(void)
{
	static const struct {
		MrStmtId id;
		gboolean may_sort; /* its rows, a claim's at most, are sorted */
	} queue[] = {
		{ MR_STMT_JOBS_CLAIM, FALSE },         { MR_STMT_JOBS_FINISH_CLAIM, FALSE },
		{ MR_STMT_JOBS_NEXT_DUE, FALSE },      { MR_STMT_OUTBOX_CLAIM, FALSE },
		{ MR_STMT_OUTBOX_CLAIMED_RAW, TRUE },  { MR_STMT_OUTBOX_SENT_CLAIM, FALSE },
		{ MR_STMT_OUTBOX_NEXT_DUE, FALSE },    { MR_STMT_OUTBOX_AUTO_COUNTS, FALSE },
		/* an outgoing mail's rows find the message by its key */
		{ MR_STMT_MESSAGE_RAW_INSERT, FALSE }, { MR_STMT_ADDRESS_INSERT2, FALSE },
		{ MR_STMT_LINK_INSERT2, FALSE },       { MR_STMT_OUTBOX_INSERT_LATER, FALSE },
	};
	g_autofree char *dir = g_dir_make_tmp("mr-test-XXXXXX", NULL);
	g_autofree char *db = g_build_filename(dir, "m.db", NULL);
	sqlite3 *con = open_schema(db);

	for (guint i = 0; i < G_N_ELEMENTS(queue); i++) {
		g_autofree char *sql = g_strconcat("EXPLAIN QUERY PLAN ", mr_sql_text[queue[i].id], NULL);
		g_autoptr(GHashTable) coroutines = g_hash_table_new_full(g_str_hash, g_str_equal,
									 g_free, NULL);
		sqlite3_stmt *st = NULL;
		guint lines = 0;

		g_assert_cmpint(sqlite3_prepare_v2(con, sql, -1, &st, NULL), ==, SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *detail = (const char *)sqlite3_column_text(st, 3);

			lines++;
			if (g_str_has_prefix(detail, "CO-ROUTINE "))
				g_hash_table_add(coroutines, g_strdup(detail + 11));
			if (g_str_has_prefix(detail, "SCAN ") && !g_str_has_suffix(detail, "CONSTANT ROW") &&
			    !g_str_has_suffix(detail, "CONSTANT ROWS") &&
			    !g_hash_table_contains(coroutines, detail + 5))
				g_error("%s: a scan (%s): %s", mr_sql_text[queue[i].id], detail, sql);
			if (strstr(detail, "TEMP B-TREE") != NULL && !queue[i].may_sort)
				g_error("%s: a sort (%s)", mr_sql_text[queue[i].id], detail);
		}
		g_assert_cmpuint(lines, >, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(con);
	g_unlink(db);
	g_rmdir(dir);
}

/* The outbox's round, step by step: queue, claim, a 4xx, claim again, a
 * stop before it was tried (unsent), claim, sent.  The stop takes the
 * attempt back and keeps the error of the one before. */
typedef struct {
	gint64 id;
	const char *claim;
	const char *status, *error, *next;
	gboolean unsent;
	guint claimed;
} OutboxStep;

static gboolean
outbox_queue_tx(MrStore *store, gpointer data, GError **error)
{
	OutboxStep *o = data;
	g_autoptr(MrMessage) m = mr_test_message("support@acme.test", "eve@client.test", "Ack");
	g_autoptr(GBytes) raw = g_bytes_new_static("Subject: Ack\r\n\r\nHi\r\n", 21);
	const char *now = "2026-12-07T10:00:00Z";
	MrOutgoingNew mail = { 0 };
	gboolean created = FALSE;

	mail.contact = mr_store_contact_add(store, "eve@client.test", "Eve", 0, 0, now, &created,
					    error);
	if (mail.contact == 0)
		return FALSE;
	mail.record.kind = MR_RECORD_TICKET;
	mail.record.id = mr_store_ticket_insert(store, "Ack", mail.contact, 0, now, error);
	if (mail.record.id == 0)
		return FALSE;
	mail.raw = raw;
	mail.key = "outbox-key";
	mail.msg = m;
	mail.token = "0123456789abcdef";
	mail.recipient = "eve@client.test";
	mail.automatic = TRUE;
	o->id = mr_store_outgoing_queue(store, &mail, now, TRUE, error);
	return o->id != 0;
}

static gboolean
outbox_claim_tx(MrStore *store, gpointer data, GError **error)
{
	OutboxStep *o = data;
	g_autoptr(GPtrArray) mails = mr_store_outbox_claim(store, "2026-12-07T11:00:00Z",
							   "2026-12-07T11:05:00Z", o->claim, 10,
							   error);

	if (mails == NULL)
		return FALSE;
	o->claimed = mails->len;
	return TRUE;
}

static gboolean
outbox_result_tx(MrStore *store, gpointer data, GError **error)
{
	OutboxStep *o = data;
	gboolean ours = FALSE;

	if (!mr_store_outbox_result(store, o->id, o->claim, o->status, o->error, o->next, NULL,
				    o->unsent, "2026-12-07T11:00:01Z", &ours, error))
		return FALSE;
	g_assert_true(ours);
	return TRUE;
}

static gboolean
outbox_sent_tx(MrStore *store, gpointer data, GError **error)
{
	OutboxStep *o = data;
	guint n = 0;

	if (!mr_store_outbox_sent_claim(store, o->claim, "2026-12-07T11:00:02Z", &n, error))
		return FALSE;
	o->claimed = n;
	return TRUE;
}

/* Queues an outgoing mail to contact @contact (@email) about a new
 * ticket, at @now.  Returns the outbox entry. */
static gint64
queue_to(MrStore *store, gint64 contact, const char *email, gboolean automatic, const char *now,
	 GError **error)
{
	static guint n; /* a key of each mail's own */
	g_autofree char *key = g_strdup_printf("auto-counts-%u", ++n);
	g_autoptr(MrMessage) m = mr_test_message("support@acme.test", email, "Ack");
	g_autoptr(GBytes) raw = g_bytes_new_take(g_strdup_printf("Subject: %s\r\n\r\n", key),
						 strlen(key) + 13);
	MrOutgoingNew mail = { 0 };

	mail.contact = contact;
	mail.record.kind = MR_RECORD_TICKET;
	mail.record.id = mr_store_ticket_insert(store, "Ack", contact, 0, now, error);
	if (mail.record.id == 0)
		return 0;
	mail.raw = raw;
	mail.key = key;
	mail.msg = m;
	mail.token = "0123456789abcdef";
	mail.recipient = email;
	mail.automatic = automatic;
	return mr_store_outgoing_queue(store, &mail, now, TRUE, error);
}

#define AUTO_COUNT_MAILS 61

/* 60 recipients, r<i> with i % 4 automatic mails of the day; what does
 * not count: a person's mail (r1), a cancelled one (r2), one of the day
 * before (r3); r7 marked undeliverable; the last of the 61 asks for r5
 * again (a batch may hold one recipient twice). */
static gboolean
auto_counts_tx(MrStore *store, gpointer data, GError **error)
{
	const char *now = "2026-12-07T10:00:00Z", *since = "2026-12-06T10:00:00Z";
	const char *from[] = { MR_OUTBOX_QUEUED, NULL };
	g_autoptr(GPtrArray) emails = g_ptr_array_new_with_free_func(g_free);
	const char *recipients[AUTO_COUNT_MAILS];
	gint64 contacts[AUTO_COUNT_MAILS], counts[AUTO_COUNT_MAILS];
	char *marks[AUTO_COUNT_MAILS];
	gint64 cancelled;

	for (guint i = 0; i < AUTO_COUNT_MAILS - 1; i++) {
		gboolean created;

		g_ptr_array_add(emails, g_strdup_printf("r%u@client.test", i));
		recipients[i] = g_ptr_array_index(emails, i);
		contacts[i] = mr_store_contact_add(store, recipients[i], NULL, 0, 0, now, &created,
						   error);
		g_assert_cmpint(contacts[i], !=, 0);
		for (guint k = 0; k < i % 4; k++)
			g_assert_cmpint(queue_to(store, contacts[i], recipients[i], TRUE, now, error),
					!=, 0);
	}
	recipients[AUTO_COUNT_MAILS - 1] = recipients[5];
	contacts[AUTO_COUNT_MAILS - 1] = contacts[5];
	g_assert_cmpint(queue_to(store, contacts[1], recipients[1], FALSE, now, error), !=, 0);
	cancelled = queue_to(store, contacts[2], recipients[2], TRUE, now, error);
	g_assert_true(mr_store_outbox_set_status(store, cancelled, MR_OUTBOX_CANCELLED, from, now,
						 error));
	g_assert_cmpint(queue_to(store, contacts[3], recipients[3], TRUE, "2026-12-06T09:00:00Z",
				 error), !=, 0);
	g_assert_true(mr_store_contact_set_undeliverable(store, recipients[7], "550 5.1.1 gone",
							 error));
	g_assert_true(mr_store_outbox_auto_counts(store, since, recipients, contacts,
						  AUTO_COUNT_MAILS, counts, marks, error));
	for (guint i = 0; i < AUTO_COUNT_MAILS; i++) {
		guint r = i < AUTO_COUNT_MAILS - 1 ? i : 5;

		g_assert_cmpint(counts[i], ==, r % 4);
		g_assert_cmpstr(marks[i], ==, r == 7 ? "550 5.1.1 gone" : NULL);
		g_free(marks[i]);
	}
	return TRUE;
}

/* mr_store_outbox_auto_counts(): a batch's look-up, in chunks of
 * MR_STORE_SLOTS, counts what the per-mail look-up counted. */
static void
test_auto_counts(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);

	g_assert_no_error(error);
	g_assert_true(mr_store_run(store, auto_counts_tx, NULL, &error));
	g_assert_no_error(error);
}

static void
test_outbox_round(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_test_config(":memory:");
	g_autoptr(MrStore) store = mr_store_open(cfg, &error);
	OutboxStep o = { 0 };

	g_assert_no_error(error);
	g_assert_true(mr_store_run(store, outbox_queue_tx, &o, &error));
	g_assert_no_error(error);
	/* a 4xx: queued again, its attempt counted, the reply kept */
	o.claim = "c1";
	g_assert_true(mr_store_run(store, outbox_claim_tx, &o, &error));
	g_assert_cmpuint(o.claimed, ==, 1);
	o.status = MR_OUTBOX_QUEUED;
	o.error = "451 4.3.0 busy";
	o.next = "2026-12-07T11:00:00Z";
	g_assert_true(mr_store_run(store, outbox_result_tx, &o, &error));
	/* claimed again, then a stop before it was tried */
	o.claim = "c2";
	g_assert_true(mr_store_run(store, outbox_claim_tx, &o, &error));
	g_assert_cmpuint(o.claimed, ==, 1);
	o.error = NULL;
	o.unsent = TRUE;
	g_assert_true(mr_store_run(store, outbox_result_tx, &o, &error));
	g_assert_no_error(error);
	{
		g_autoptr(MrOutboxRow) row = mr_store_outbox_get(store, o.id, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(row->status, ==, MR_OUTBOX_QUEUED);
		g_assert_cmpint(row->attempts, ==, 1);
		g_assert_cmpstr(row->last_error, ==, "451 4.3.0 busy");
	}
	/* claimed and sent: recorded by the claim's one statement */
	o.claim = "c3";
	g_assert_true(mr_store_run(store, outbox_claim_tx, &o, &error));
	g_assert_cmpuint(o.claimed, ==, 1);
	g_assert_true(mr_store_run(store, outbox_sent_tx, &o, &error));
	g_assert_cmpuint(o.claimed, ==, 1);
	{
		g_autoptr(MrOutboxRow) row = mr_store_outbox_get(store, o.id, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(row->status, ==, MR_OUTBOX_SENT);
		g_assert_cmpint(row->attempts, ==, 2);
		g_assert_null(row->last_error);
		g_assert_cmpstr(row->sent, ==, "2026-12-07T11:00:02Z");
	}
	/* nothing is left under that claim: a second time records nothing */
	g_assert_true(mr_store_run(store, outbox_sent_tx, &o, &error));
	g_assert_cmpuint(o.claimed, ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/store/migrate", test_migrate_file);
	g_test_add_func("/mailroom/store/open-fails", test_open_fails);
	g_test_add_func("/mailroom/store/apply", test_apply);
	g_test_add_func("/mailroom/store/apply-duplicate", test_apply_duplicate);
	g_test_add_func("/mailroom/store/rollback", test_rollback);
	g_test_add_func("/mailroom/store/message-start", test_message_start);
	g_test_add_func("/mailroom/store/event-types", test_event_types);
	g_test_add_func("/mailroom/store/event-types-in-schema", test_event_types_in_schema);
	g_test_add_func("/mailroom/store/lookup-failure", test_lookup_failure);
	g_test_add_func("/mailroom/store/row-read", test_row_read);
	g_test_add_func("/mailroom/store/row-declarations", test_row_declarations);
	g_test_add_func("/mailroom/store/queue-plans", test_queue_plans);
	g_test_add_func("/mailroom/store/outbox-round", test_outbox_round);
	g_test_add_func("/mailroom/store/auto-counts", test_auto_counts);
	return g_test_run();
}
