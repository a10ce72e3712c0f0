/* mr-store-query.c - the store's read side: the rows the CLI lists and
 * shows, timelines, and the event feed.
 *
 * Store stage.  Every query answers with the structs of mr-store.h; what
 * the rows look like on a terminal or in JSON is the CLI's business
 * (src/ctl/), and so is the formatting of record ids. */
#define G_LOG_DOMAIN "mailroom-store"

#include <string.h>

#include "mr-store-private.h"
#include "mailroom/mr-error.h"

/* Returns a copy of text column @i, NULL for NULL. */
static char *
col_text(MrSqlStmt *st, int i)
{
	return g_strdup(mr_sql_column_text(st, i));
}

/* Returns the words of text column @i (NULL for NULL: no words). */
static GStrv
col_words(MrSqlStmt *st, int i)
{
	const char *text = mr_sql_column_text(st, i);
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();

	if (text != NULL) {
		g_auto(GStrv) words = g_strsplit(text, " ", -1);

		for (char **w = words; *w != NULL; w++)
			if (**w != '\0')
				g_strv_builder_add(b, *w);
	}
	return g_strv_builder_end(b);
}

static int
compare_refs(gconstpointer a, gconstpointer b)
{
	const MrRecordRef *x = a, *y = b;
	int c = strcmp(mr_record_kind_name(x->kind), mr_record_kind_name(y->kind));

	if (c != 0)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Parses the words "kind:id" of text column @i into record references,
 * sorted (the engines concatenate in any order). */
static GArray *
col_links(MrSqlStmt *st, int i)
{
	g_auto(GStrv) words = col_words(st, i);
	GArray *links = g_array_new(FALSE, FALSE, sizeof(MrRecordRef));

	for (char **w = words; *w != NULL; w++) {
		char *colon = strchr(*w, ':');
		MrRecordRef ref;

		if (colon == NULL)
			continue;
		*colon = '\0';
		ref.kind = mr_record_kind_from_name(*w);
		ref.id = g_ascii_strtoll(colon + 1, NULL, 10);
		if (ref.kind != MR_RECORD_NONE && ref.id > 0)
			g_array_append_val(links, ref);
	}
	g_array_sort(links, compare_refs);
	return links;
}

/* --- rows ----------------------------------------------------------------
 * Each reader takes the current row of a statement whose columns are in the
 * order of the matching *_COLUMNS list in mr-store-sql.c. */

static gpointer
read_user(MrSqlStmt *st)
{
	MrUserRow *r = g_new0(MrUserRow, 1);

	r->id = mr_sql_column_int64(st, 0);
	r->email = col_text(st, 1);
	r->name = col_text(st, 2);
	r->addresses = col_words(st, 3);
	r->created = col_text(st, 4);
	r->message_count = mr_sql_column_int64(st, 5);
	return r;
}

void
mr_user_row_free(MrUserRow *r)
{
	if (r == NULL)
		return;
	g_free(r->email);
	g_free(r->name);
	g_strfreev(r->addresses);
	g_free(r->created);
	g_free(r);
}

static gpointer
read_contact(MrSqlStmt *st)
{
	MrContactRow *r = g_new0(MrContactRow, 1);

	r->id = mr_sql_column_int64(st, 0);
	r->email = col_text(st, 1);
	r->name = col_text(st, 2);
	r->account = col_text(st, 3);
	r->owner = col_text(st, 4);
	r->created = col_text(st, 5);
	r->last_seen = col_text(st, 6);
	r->message_count = mr_sql_column_int64(st, 7);
	return r;
}

void
mr_contact_row_free(MrContactRow *r)
{
	if (r == NULL)
		return;
	g_free(r->email);
	g_free(r->name);
	g_free(r->account);
	g_free(r->owner);
	g_free(r->created);
	g_free(r->last_seen);
	g_free(r);
}

static gpointer
read_account(MrSqlStmt *st)
{
	MrAccountRow *r = g_new0(MrAccountRow, 1);

	r->id = mr_sql_column_int64(st, 0);
	r->name = col_text(st, 1);
	r->domain = col_text(st, 2);
	r->created = col_text(st, 3);
	r->contacts = mr_sql_column_int64(st, 4);
	r->message_count = mr_sql_column_int64(st, 5);
	return r;
}

void
mr_account_row_free(MrAccountRow *r)
{
	if (r == NULL)
		return;
	g_free(r->name);
	g_free(r->domain);
	g_free(r->created);
	g_free(r);
}

static gpointer
read_lead(MrSqlStmt *st)
{
	MrLeadRow *r = g_new0(MrLeadRow, 1);

	r->id = mr_sql_column_int64(st, 0);
	r->title = col_text(st, 1);
	r->source = col_text(st, 2);
	r->status = col_text(st, 3);
	r->priority = col_text(st, 4);
	r->contact = col_text(st, 5);
	r->owner = col_text(st, 6);
	r->created = col_text(st, 7);
	r->qualified = col_text(st, 8);
	r->updated = col_text(st, 9);
	r->opportunity = mr_sql_column_int64(st, 10);
	r->message_count = mr_sql_column_int64(st, 11);
	return r;
}

void
mr_lead_row_free(MrLeadRow *r)
{
	if (r == NULL)
		return;
	g_free(r->title);
	g_free(r->source);
	g_free(r->status);
	g_free(r->priority);
	g_free(r->contact);
	g_free(r->owner);
	g_free(r->created);
	g_free(r->qualified);
	g_free(r->updated);
	g_free(r);
}

static gpointer
read_opportunity(MrSqlStmt *st)
{
	MrOpportunityRow *r = g_new0(MrOpportunityRow, 1);

	r->id = mr_sql_column_int64(st, 0);
	r->title = col_text(st, 1);
	r->status = col_text(st, 2);
	r->stage = col_text(st, 3);
	r->probability = mr_sql_column_int64(st, 4);
	r->value = st->conn->driver->column_type(st, 5) == MR_SQL_TYPE_NULL
			   ? -1
			   : mr_sql_column_int64(st, 5);
	r->contact = col_text(st, 6);
	r->account = col_text(st, 7);
	r->owner = col_text(st, 8);
	r->lost_reason = col_text(st, 9);
	r->created = col_text(st, 10);
	r->updated = col_text(st, 11);
	r->closed = col_text(st, 12);
	r->message_count = mr_sql_column_int64(st, 13);
	return r;
}

void
mr_opportunity_row_free(MrOpportunityRow *r)
{
	if (r == NULL)
		return;
	g_free(r->title);
	g_free(r->status);
	g_free(r->stage);
	g_free(r->contact);
	g_free(r->account);
	g_free(r->owner);
	g_free(r->lost_reason);
	g_free(r->created);
	g_free(r->updated);
	g_free(r->closed);
	g_free(r);
}

static gpointer
read_ticket(MrSqlStmt *st)
{
	MrTicketRow *r = g_new0(MrTicketRow, 1);

	r->id = mr_sql_column_int64(st, 0);
	r->subject = col_text(st, 1);
	r->status = col_text(st, 2);
	r->type = col_text(st, 3);
	r->priority = col_text(st, 4);
	r->contact = col_text(st, 5);
	r->owner = col_text(st, 6);
	r->created = col_text(st, 7);
	r->updated = col_text(st, 8);
	r->message_count = mr_sql_column_int64(st, 9);
	return r;
}

void
mr_ticket_row_free(MrTicketRow *r)
{
	if (r == NULL)
		return;
	g_free(r->subject);
	g_free(r->status);
	g_free(r->type);
	g_free(r->priority);
	g_free(r->contact);
	g_free(r->owner);
	g_free(r->created);
	g_free(r->updated);
	g_free(r);
}

/* Fills @r from the MESSAGE_COLUMNS of the current row. */
static void
fill_message(MrMessageRow *r, MrSqlStmt *st)
{
	r->id = mr_sql_column_int64(st, 0);
	r->message_id = col_text(st, 1);
	r->subject = col_text(st, 2);
	r->from = col_text(st, 3);
	r->date = col_text(st, 4);
	r->received = col_text(st, 5);
	r->size = mr_sql_column_int64(st, 6);
	r->parse_status = col_text(st, 7);
	r->parse_problem = col_text(st, 8);
	r->auto_kind = col_text(st, 9);
	r->delivered_to = col_words(st, 10);
	r->links = col_links(st, 11);
}

/* The number of MESSAGE_COLUMNS. */
#define MESSAGE_NCOL 12

static void
clear_message(MrMessageRow *r)
{
	g_free(r->message_id);
	g_free(r->subject);
	g_free(r->from);
	g_free(r->date);
	g_free(r->received);
	g_free(r->parse_status);
	g_free(r->parse_problem);
	g_free(r->auto_kind);
	g_strfreev(r->delivered_to);
	if (r->links != NULL)
		g_array_unref(r->links);
}

static gpointer
read_message(MrSqlStmt *st)
{
	MrMessageRow *r = g_new0(MrMessageRow, 1);

	fill_message(r, st);
	return r;
}

void
mr_message_row_free(MrMessageRow *r)
{
	if (r == NULL)
		return;
	clear_message(r);
	g_free(r);
}

static gpointer
read_brief(MrSqlStmt *st)
{
	MrMessageBrief *r = g_new0(MrMessageBrief, 1);

	r->id = mr_sql_column_int64(st, 0);
	r->message_id = col_text(st, 1);
	r->subject = col_text(st, 2);
	r->from = col_text(st, 3);
	r->received = col_text(st, 4);
	r->sent = col_text(st, 5);
	return r;
}

void
mr_message_brief_free(MrMessageBrief *r)
{
	if (r == NULL)
		return;
	g_free(r->message_id);
	g_free(r->subject);
	g_free(r->from);
	g_free(r->received);
	g_free(r->sent);
	g_free(r);
}

static gpointer
read_timeline(MrSqlStmt *st)
{
	MrTimelineEntry *r = g_new0(MrTimelineEntry, 1);

	r->date = col_text(st, 0);
	r->kind = col_text(st, 1);
	r->subject = col_text(st, 2);
	r->message_id = col_text(st, 3);
	r->sent = col_text(st, 4);
	return r;
}

void
mr_timeline_entry_free(MrTimelineEntry *r)
{
	if (r == NULL)
		return;
	g_free(r->date);
	g_free(r->kind);
	g_free(r->subject);
	g_free(r->message_id);
	g_free(r->sent);
	g_free(r);
}

static gpointer
read_address(MrSqlStmt *st)
{
	MrAddressRow *r = g_new0(MrAddressRow, 1);

	r->kind = col_text(st, 0);
	r->email = col_text(st, 1);
	r->name = col_text(st, 2);
	return r;
}

static void
address_free(gpointer p)
{
	MrAddressRow *r = p;

	g_free(r->kind);
	g_free(r->email);
	g_free(r->name);
	g_free(r);
}

static gpointer
read_attachment(MrSqlStmt *st)
{
	MrAttachmentRow *r = g_new0(MrAttachmentRow, 1);

	r->filename = col_text(st, 0);
	r->content_type = col_text(st, 1);
	r->size = mr_sql_column_int64(st, 2);
	r->sha256 = col_text(st, 3);
	return r;
}

static void
attachment_free(gpointer p)
{
	MrAttachmentRow *r = p;

	g_free(r->filename);
	g_free(r->content_type);
	g_free(r->sha256);
	g_free(r);
}

static gpointer
read_delivery(MrSqlStmt *st)
{
	MrDeliveryRow *r = g_new0(MrDeliveryRow, 1);

	r->recipient = col_text(st, 0);
	r->role = col_text(st, 1);
	r->envelope_from = col_text(st, 2);
	r->received = col_text(st, 3);
	return r;
}

static void
delivery_free(gpointer p)
{
	MrDeliveryRow *r = p;

	g_free(r->recipient);
	g_free(r->role);
	g_free(r->envelope_from);
	g_free(r->received);
	g_free(r);
}

void
mr_message_detail_free(MrMessageDetail *d)
{
	if (d == NULL)
		return;
	clear_message(&d->row);
	g_free(d->in_reply_to);
	g_free(d->auto_reason);
	g_free(d->original_from);
	g_free(d->from_name);
	g_free(d->content_key);
	g_free(d->snippet);
	g_strfreev(d->contacts);
	g_strfreev(d->accounts);
	g_strfreev(d->users);
	g_clear_pointer(&d->addresses, g_ptr_array_unref);
	g_clear_pointer(&d->attachments, g_ptr_array_unref);
	g_clear_pointer(&d->deliveries, g_ptr_array_unref);
	g_strfreev(d->refused);
	g_free(d);
}

GPtrArray *
mr_store_read_rows(MrSqlStmt *st, MrRowReader read, GDestroyNotify free_row, GError **error)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(free_row);
	MrSqlStep rc;

	while ((rc = mr_sql_step(st, error)) == MR_SQL_ROW)
		g_ptr_array_add(rows, read(st));
	if (rc != MR_SQL_DONE)
		return NULL;
	return g_steal_pointer(&rows);
}

/* --- lists --------------------------------------------------------------- */

static GPtrArray *
list_rows(MrStore *store, MrStmtId id, gint64 limit, MrRowReader read, GDestroyNotify free_row,
	  GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, id);

	mr_sql_bind_int64(st, 1, limit > 0 ? limit : G_MAXINT64);
	return mr_store_read_rows(st, read, free_row, error);
}

GPtrArray *
mr_store_users(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_USERS, limit, read_user,
			 (GDestroyNotify)mr_user_row_free, error);
}

GPtrArray *
mr_store_contacts(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_CONTACTS, limit, read_contact,
			 (GDestroyNotify)mr_contact_row_free, error);
}

GPtrArray *
mr_store_accounts(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_ACCOUNTS, limit, read_account,
			 (GDestroyNotify)mr_account_row_free, error);
}

GPtrArray *
mr_store_leads(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_LEADS, limit, read_lead,
			 (GDestroyNotify)mr_lead_row_free, error);
}

GPtrArray *
mr_store_opportunities(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_OPPS, limit, read_opportunity,
			 (GDestroyNotify)mr_opportunity_row_free, error);
}

GPtrArray *
mr_store_tickets(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_TICKETS, limit, read_ticket,
			 (GDestroyNotify)mr_ticket_row_free, error);
}

GPtrArray *
mr_store_messages(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_MESSAGES, limit, read_message,
			 (GDestroyNotify)mr_message_row_free, error);
}

/* --- single rows ----------------------------------------------------------- */

/* Steps @st (parameters bound) to its one row and reads it; NOT_FOUND with
 * "no such @what" when there is none. */
static gpointer
get_row(MrStore *store, MrSqlStmt *st, MrRowReader read, const char *what, GError **error)
{
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		return read(st);
	case MR_SQL_DONE:
		mr_store_not_found(store, error, "no %s", what);
		return NULL;
	default:
		return NULL;
	}
}

MrContactRow *
mr_store_contact_get(MrStore *store, const char *email, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_SHOW_CONTACT);
	g_autofree char *what = g_strdup_printf("contact %s", email);

	mr_sql_bind_text(st, 1, email);
	return get_row(store, st, read_contact, what, error);
}

static gpointer
record_get(MrStore *store, MrRecordRef ref, MrStmtId id, MrRowReader read, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, id);
	g_autofree char *display = mr_record_display_id(store->cfg, ref);
	g_autofree char *what = g_strdup_printf("such record %s", display);

	mr_sql_bind_int64(st, 1, ref.id);
	return get_row(store, st, read, what, error);
}

MrLeadRow *
mr_store_lead_get(MrStore *store, gint64 id, GError **error)
{
	MrRecordRef ref = { MR_RECORD_LEAD, id };

	return record_get(store, ref, MR_STMT_SHOW_LEAD, read_lead, error);
}

MrOpportunityRow *
mr_store_opportunity_get(MrStore *store, gint64 id, GError **error)
{
	MrRecordRef ref = { MR_RECORD_OPPORTUNITY, id };

	return record_get(store, ref, MR_STMT_SHOW_OPP, read_opportunity, error);
}

MrTicketRow *
mr_store_ticket_get(MrStore *store, gint64 id, GError **error)
{
	MrRecordRef ref = { MR_RECORD_TICKET, id };

	return record_get(store, ref, MR_STMT_SHOW_TICKET, read_ticket, error);
}

GPtrArray *
mr_store_linked_messages(MrStore *store, MrRecordKind kind, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RECORD_MESSAGES);

	mr_sql_bind_text(st, 1, kind == MR_RECORD_NONE ? "contact" : mr_record_kind_name(kind));
	mr_sql_bind_int64(st, 2, id);
	return mr_store_read_rows(st, read_brief, (GDestroyNotify)mr_message_brief_free, error);
}

/* Runs per-message statement @id for message @row. */
static GPtrArray *
message_rows(MrStore *store, MrStmtId id, gint64 row, MrRowReader read,
	     GDestroyNotify free_row, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, id);

	mr_sql_bind_int64(st, 1, row);
	return mr_store_read_rows(st, read, free_row, error);
}

/* Fills the contacts, accounts and users linked to message @d. */
static gboolean
message_parties(MrStore *store, MrMessageDetail *d, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_LINKS);
	g_autoptr(GStrvBuilder) contacts = g_strv_builder_new();
	g_autoptr(GStrvBuilder) accounts = g_strv_builder_new();
	g_autoptr(GStrvBuilder) users = g_strv_builder_new();
	MrSqlStep rc;

	mr_sql_bind_int64(st, 1, d->row.id);
	while ((rc = mr_sql_step(st, error)) == MR_SQL_ROW) {
		const char *kind = mr_sql_column_text(st, 0);
		const char *name = mr_sql_column_text(st, 1);

		if (name == NULL)
			continue;
		if (g_strcmp0(kind, "contact") == 0)
			g_strv_builder_add(contacts, name);
		else if (g_strcmp0(kind, "account") == 0)
			g_strv_builder_add(accounts, name);
		else if (g_strcmp0(kind, "user") == 0)
			g_strv_builder_add(users, name);
	}
	d->contacts = g_strv_builder_end(contacts);
	d->accounts = g_strv_builder_end(accounts);
	d->users = g_strv_builder_end(users);
	return rc == MR_SQL_DONE;
}

/* Fills the reasons why links of message @d were refused. */
static gboolean
message_refused(MrStore *store, MrMessageDetail *d, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_REFUSED);
	g_autoptr(GStrvBuilder) refused = g_strv_builder_new();
	MrSqlStep rc;

	mr_sql_bind_int64(st, 1, d->row.id);
	while ((rc = mr_sql_step(st, error)) == MR_SQL_ROW)
		if (mr_sql_column_text(st, 0) != NULL)
			g_strv_builder_add(refused, mr_sql_column_text(st, 0));
	d->refused = g_strv_builder_end(refused);
	return rc == MR_SQL_DONE;
}

MrMessageDetail *
mr_store_message_get(MrStore *store, gint64 id, GError **error)
{
	g_autoptr(MrMessageDetail) d = g_new0(MrMessageDetail, 1);

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_SHOW_MESSAGE);
		int i = MESSAGE_NCOL;

		mr_sql_bind_int64(st, 1, id);
		switch (mr_sql_step(st, error)) {
		case MR_SQL_ROW:
			break;
		case MR_SQL_DONE:
			mr_store_not_found(store, error, "no message %" G_GINT64_FORMAT, id);
			return NULL;
		default:
			return NULL;
		}
		fill_message(&d->row, st);
		d->in_reply_to = col_text(st, i++);
		d->auto_reason = col_text(st, i++);
		d->is_forward = mr_sql_column_int64(st, i++) != 0;
		d->original_from = col_text(st, i++);
		d->from_name = col_text(st, i++);
		d->content_key = col_text(st, i++);
		d->snippet = col_text(st, i++);
	}
	if (!message_parties(store, d, error))
		return NULL;
	d->addresses = message_rows(store, MR_STMT_MESSAGE_ADDRESSES, id, read_address,
				    address_free, error);
	if (d->addresses == NULL)
		return NULL;
	d->attachments = message_rows(store, MR_STMT_MESSAGE_ATTACHMENTS, id, read_attachment,
				      attachment_free, error);
	if (d->attachments == NULL)
		return NULL;
	d->deliveries = message_rows(store, MR_STMT_MESSAGE_DELIVERIES, id, read_delivery,
				     delivery_free, error);
	if (d->deliveries == NULL || !message_refused(store, d, error))
		return NULL;
	return g_steal_pointer(&d);
}

GBytes *
mr_store_message_raw(MrStore *store, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_RAW);

	mr_sql_bind_int64(st, 1, id);
	if (!mr_store_step_row(store, st)) {
		mr_store_not_found(store, error, "no message %" G_GINT64_FORMAT, id);
		return NULL;
	}
	{
		gsize len = 0;
		const void *data = store->driver->column_blob(st, 0, &len);

		return g_bytes_new(data, len);
	}
}

GPtrArray *
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
			mr_store_not_found(store, error, "no contact or user %s", email);
			return NULL;
		}
	} else if (domain != NULL) {
		g_autoptr(MrStmtUse) a = store_stmt(store, MR_STMT_ACCOUNT_ID);

		kind = "account";
		mr_sql_bind_text(a, 1, domain);
		id = mr_store_step_int64(store, a);
		if (id == 0) {
			mr_store_not_found(store, error, "no account %s", domain);
			return NULL;
		}
	} else {
		if (!mr_store_record_must_exist(store, ref, NULL, error))
			return NULL;
		kind = mr_record_kind_name(ref.kind);
		id = ref.id;
	}
	st = store_stmt(store, MR_STMT_TIMELINE);
	mr_sql_bind_text(st, 1, kind);
	mr_sql_bind_int64(st, 2, id);
	return mr_store_read_rows(st, read_timeline, (GDestroyNotify)mr_timeline_entry_free, error);
}

/* --- events -------------------------------------------------------------- */

void
mr_event_free(MrEvent *event)
{
	if (event == NULL)
		return;
	g_free(event->created);
	g_free(event->type_name);
	g_free(event->summary);
	g_free(event);
}

GPtrArray *
mr_store_events_after(MrStore *store, gint64 after, guint limit, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;
	g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify)mr_event_free);
	gint64 settled = G_MAXINT64;
	MrSqlStep rc;

	/* Where writers may commit out of id order, read only up to the
	 * newest id no open transaction can still fill in below. */
	if (store->driver->settled_int64 != NULL &&
	    !store->driver->settled_int64(store->conn, "SELECT coalesce(max(id), 0) FROM event",
					  &settled, error))
		return NULL;
	st = store_stmt(store, MR_STMT_EVENTS_AFTER);
	mr_sql_bind_int64(st, 1, after);
	mr_sql_bind_int64(st, 2, limit > 0 ? (gint64)limit : G_MAXINT64);
	mr_sql_bind_int64(st, 3, settled);
	while ((rc = mr_sql_step(st, error)) == MR_SQL_ROW) {
		MrEvent *e = g_new0(MrEvent, 1);

		e->id = mr_sql_column_int64(st, 0);
		e->created = g_strdup(mr_sql_column_text(st, 1));
		e->type_name = g_strdup(mr_sql_column_text(st, 2));
		e->type = mr_event_type_from_name(e->type_name);
		e->record.kind = mr_record_kind_from_name(mr_sql_column_text(st, 3));
		e->record.id = e->record.kind != MR_RECORD_NONE ? mr_sql_column_int64(st, 4) : 0;
		e->message_row = mr_sql_column_int64(st, 5);
		e->summary = g_strdup(mr_sql_column_text(st, 6));
		g_ptr_array_add(events, e);
	}
	if (rc != MR_SQL_DONE)
		return NULL;
	return g_steal_pointer(&events);
}
