/* mr-store-query.c - the store's read side: the rows the CLI lists and
 * shows, timelines, and the event feed.
 *
 * Store stage.  Every query answers with the structs of mr-store.h, read
 * by their declarations (mr-store-rows.c); what the rows look like on a
 * terminal or in JSON is the CLI's business (src/ctl/), and so is the
 * formatting of record ids. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"
#include "mailroom/mr-error.h"

/* --- lists --------------------------------------------------------------- */

static GPtrArray *
list_rows(MrStore *store, MrStmtId id, gint64 limit, const MrRowDesc *desc, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, id);

	mr_sql_bind_int64(st, 1, limit > 0 ? limit : G_MAXINT64);
	return mr_store_read_rows(st, desc, error);
}

GPtrArray *
mr_store_users(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_USERS, limit, &mr_user_row_desc, error);
}

GPtrArray *
mr_store_contacts(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_CONTACTS, limit, &mr_contact_row_desc, error);
}

GPtrArray *
mr_store_accounts(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_ACCOUNTS, limit, &mr_account_row_desc, error);
}

GPtrArray *
mr_store_leads(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_LEADS, limit, &mr_lead_row_desc, error);
}

GPtrArray *
mr_store_opportunities(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_OPPS, limit, &mr_opportunity_row_desc, error);
}

GPtrArray *
mr_store_tickets(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_TICKETS, limit, &mr_ticket_row_desc, error);
}

GPtrArray *
mr_store_messages(MrStore *store, gint64 limit, GError **error)
{
	return list_rows(store, MR_STMT_LIST_MESSAGES, limit, &mr_message_row_desc, error);
}

/* --- single rows ----------------------------------------------------------- */

/* Steps @st (parameters bound) to its one row and reads it; NOT_FOUND with
 * "no such @what" when there is none. */
static gpointer
get_row(MrStore *store, MrSqlStmt *st, const MrRowDesc *desc, const char *what, GError **error)
{
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		return mr_row_new(desc, st);
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
	return get_row(store, st, &mr_contact_row_desc, what, error);
}

static gpointer
record_get(MrStore *store, MrRecordRef ref, MrStmtId id, const MrRowDesc *desc,
	   GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, id);
	g_autofree char *display = mr_record_display_id(store->cfg, ref);
	g_autofree char *what = g_strdup_printf("such record %s", display);

	mr_sql_bind_int64(st, 1, ref.id);
	return get_row(store, st, desc, what, error);
}

MrLeadRow *
mr_store_lead_get(MrStore *store, gint64 id, GError **error)
{
	MrRecordRef ref = { MR_RECORD_LEAD, id };

	return record_get(store, ref, MR_STMT_SHOW_LEAD, &mr_lead_row_desc, error);
}

MrOpportunityRow *
mr_store_opportunity_get(MrStore *store, gint64 id, GError **error)
{
	MrRecordRef ref = { MR_RECORD_OPPORTUNITY, id };

	return record_get(store, ref, MR_STMT_SHOW_OPP, &mr_opportunity_row_desc, error);
}

MrTicketRow *
mr_store_ticket_get(MrStore *store, gint64 id, GError **error)
{
	MrRecordRef ref = { MR_RECORD_TICKET, id };

	return record_get(store, ref, MR_STMT_SHOW_TICKET, &mr_ticket_row_desc, error);
}

GPtrArray *
mr_store_linked_messages(MrStore *store, MrRecordKind kind, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RECORD_MESSAGES);

	mr_sql_bind_text(st, 1, kind == MR_RECORD_NONE ? "contact" : mr_record_kind_name(kind));
	mr_sql_bind_int64(st, 2, id);
	return mr_store_read_rows(st, &mr_message_brief_desc, error);
}

/* Runs per-message statement @id for message @row. */
static GPtrArray *
message_rows(MrStore *store, MrStmtId id, gint64 row, const MrRowDesc *desc, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, id);

	mr_sql_bind_int64(st, 1, row);
	return mr_store_read_rows(st, desc, error);
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

/* Reads the rows of @st as events, their types from their names; NULL
 * with @error on failure. */
static GPtrArray *
read_events(MrSqlStmt *st, GError **error)
{
	GPtrArray *events = mr_store_read_rows(st, &mr_event_desc, error);

	for (guint i = 0; events != NULL && i < events->len; i++) {
		MrEvent *e = g_ptr_array_index(events, i);

		e->type = mr_event_type_from_name(e->type_name);
	}
	return events;
}

MrMessageDetail *
mr_store_message_get(MrStore *store, gint64 id, GError **error)
{
	g_autoptr(MrMessageDetail) d = g_new0(MrMessageDetail, 1);

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_SHOW_MESSAGE);

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
		mr_row_read(&mr_message_detail_desc, d, st, 0);
	}
	if (!message_parties(store, d, error))
		return NULL;
	d->addresses = message_rows(store, MR_STMT_MESSAGE_ADDRESSES, id, &mr_address_row_desc,
				    error);
	if (d->addresses == NULL)
		return NULL;
	d->attachments = message_rows(store, MR_STMT_MESSAGE_ATTACHMENTS, id,
				      &mr_attachment_row_desc, error);
	if (d->attachments == NULL)
		return NULL;
	d->deliveries = message_rows(store, MR_STMT_MESSAGE_DELIVERIES, id,
				     &mr_delivery_row_desc, error);
	if (d->deliveries == NULL)
		return NULL;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_REFUSED);

		/* the message's own events: what was refused, and why */
		mr_sql_bind_int64(st, 1, id);
		mr_sql_bind_text(st, 2, mr_event_type_name(MR_EVENT_LINK_REFUSED));
		mr_sql_bind_text(st, 3, mr_event_type_name(MR_EVENT_SENDER_UNTRUSTED));
		d->refused = read_events(st, error);
		if (d->refused == NULL)
			return NULL;
	}
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
	return mr_store_read_rows(st, &mr_timeline_entry_desc, error);
}

/* --- events -------------------------------------------------------------- */

GPtrArray *
mr_store_events_after(MrStore *store, gint64 after, guint limit, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;
	gint64 settled = G_MAXINT64;

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
	return read_events(st, error);
}
