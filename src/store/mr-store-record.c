/* mr-store-record.c - the store's records (inbox leads, opportunities,
 * tickets): look-ups for routing and row-level writes (mr-store-record.h).
 *
 * Store stage: row-level primitives that decide nothing. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"
#include "mailroom/mr-status.h"

static const MrStmtId mr_status_sql[] = {
	[MR_RECORD_LEAD] = MR_STMT_LEAD_STATUS,
	[MR_RECORD_OPPORTUNITY] = MR_STMT_OPP_STATUS,
	[MR_RECORD_TICKET] = MR_STMT_TICKET_STATUS,
};

static const MrStmtId mr_related_sql[] = {
	[MR_RECORD_LEAD] = MR_STMT_LEAD_RELATED,
	[MR_RECORD_OPPORTUNITY] = MR_STMT_OPP_RELATED,
	[MR_RECORD_TICKET] = MR_STMT_TICKET_RELATED,
};

gboolean
mr_store_record_exists(MrStore *store, MrRecordRef ref, char **status_out)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_NONE)
		return FALSE;
	st = store_stmt(store, mr_status_sql[ref.kind]);
	mr_sql_bind_int64(st, 1, ref.id);
	if (!mr_store_step_row(store, st))
		return FALSE;
	if (status_out != NULL)
		*status_out = g_strdup(mr_sql_column_text(st, 0));
	return TRUE;
}

gboolean
mr_store_record_related(MrStore *store, MrRecordRef ref, const char *email)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_NONE || email == NULL)
		return FALSE;
	st = store_stmt(store, mr_related_sql[ref.kind]);
	mr_sql_bind_int64(st, 1, ref.id);
	mr_sql_bind_text(st, 2, email);
	mr_sql_bind_text(st, 3, strrchr(email, '@') != NULL ? strrchr(email, '@') + 1 : NULL);
	return mr_store_step_row(store, st);
}

gboolean
mr_store_record_by_thread(MrStore *store, const char *const *ids, MrRecordKind kind,
			  MrRecordRef *out)
{
	for (; ids != NULL && *ids != NULL; ids++) {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_THREAD_RECORD);
		gint64 id;

		mr_sql_bind_text(st, 1, *ids);
		mr_sql_bind_text(st, 2, mr_record_kind_name(kind));
		id = mr_store_step_int64(store, st);
		if (id != 0) {
			out->kind = kind;
			out->id = id;
			return TRUE;
		}
	}
	return FALSE;
}

gint64
mr_store_open_lead_by_email(MrStore *store, const char *email)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OPEN_LEAD);

	/* the statuses in which a lead takes mail (mr_status_takes_mail()) */
	mr_sql_bind_text(st, 1, email);
	mr_sql_bind_text(st, 2, mr_status_name(MR_RECORD_LEAD, MR_LEAD_NEW));
	mr_sql_bind_text(st, 3, mr_status_name(MR_RECORD_LEAD, MR_LEAD_IN_PROGRESS));
	return mr_store_step_int64(store, st);
}

gint64
mr_store_lead_opportunity(MrStore *store, gint64 id)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LEAD_OPPORTUNITY);

	mr_sql_bind_int64(st, 1, id);
	return mr_store_step_int64(store, st);
}

gboolean
mr_store_link_record(MrStore *store, gint64 msg, MrRecordRef ref, GError **error)
{
	if (ref.kind == MR_RECORD_NONE)
		return TRUE;
	return mr_store_insert_link(store, msg, mr_record_kind_name(ref.kind), ref.id, error);
}

gboolean
mr_store_links_copy(MrStore *store, MrRecordRef from, MrRecordRef to, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LINKS_COPY);

	mr_sql_bind_text(st, 1, mr_record_kind_name(from.kind));
	mr_sql_bind_int64(st, 2, from.id);
	mr_sql_bind_text(st, 3, mr_record_kind_name(to.kind));
	mr_sql_bind_int64(st, 4, to.id);
	return mr_store_step_done(store, st, error);
}

/* Inserts a ticket or a lead (@id: its statement; ?1..?4 the same). */
static gint64
record_insert(MrStore *store, MrStmtId id, const char *title, gint64 contact, gint64 owner,
	      const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, id);

	mr_sql_bind_text(st, 1, title);
	mr_store_bind_id(st, 2, contact);
	mr_store_bind_id(st, 3, owner);
	mr_sql_bind_text(st, 4, now);
	return mr_store_step_id(store, st, error);
}

gint64
mr_store_ticket_insert(MrStore *store, const char *title, gint64 contact, gint64 owner,
		       const char *now, GError **error)
{
	return record_insert(store, MR_STMT_TICKET_INSERT, title, contact, owner, now, error);
}

gint64
mr_store_lead_insert(MrStore *store, const char *title, gint64 contact, gint64 owner,
		     const char *now, GError **error)
{
	return record_insert(store, MR_STMT_LEAD_INSERT, title, contact, owner, now, error);
}

gint64
mr_store_opp_insert(MrStore *store, const char *title, gint64 value, gint64 contact,
		    gint64 account, gint64 owner, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OPP_INSERT);

	mr_sql_bind_text(st, 1, title);
	if (value >= 0)
		mr_sql_bind_int64(st, 2, value);
	mr_store_bind_id(st, 3, contact);
	mr_store_bind_id(st, 4, account);
	mr_store_bind_id(st, 5, owner);
	mr_sql_bind_text(st, 6, now);
	return mr_store_step_id(store, st, error);
}

gboolean
mr_store_ticket_touch(MrStore *store, gint64 id, const char *now, const char *status,
		      gint64 owner, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TICKET_TOUCH);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, now);
	mr_sql_bind_text(st, 3, status);
	mr_store_bind_id(st, 4, owner);
	return mr_store_step_later(store, st, error);
}

gboolean
mr_store_record_touch(MrStore *store, MrRecordRef ref, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	switch (ref.kind) {
	case MR_RECORD_TICKET:
		return mr_store_ticket_touch(store, ref.id, now, NULL, 0, error);
	case MR_RECORD_LEAD:
		st = store_stmt(store, MR_STMT_LEAD_TOUCH);
		break;
	case MR_RECORD_OPPORTUNITY:
		st = store_stmt(store, MR_STMT_OPP_TOUCH);
		break;
	default:
		return TRUE;
	}
	mr_sql_bind_int64(st, 1, ref.id);
	mr_sql_bind_text(st, 2, now);
	return mr_store_step_later(store, st, error);
}

gboolean
mr_store_ticket_set_status(MrStore *store, gint64 id, const char *status, const char *now,
			   GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TICKET_SET_STATUS);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, status);
	mr_sql_bind_text(st, 3, now);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_lead_set_status(MrStore *store, gint64 id, const char *status, const char *now,
			 gint64 opportunity, gboolean qualified, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LEAD_SET_STATUS);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, status);
	mr_sql_bind_text(st, 3, now);
	mr_store_bind_id(st, 4, opportunity);
	mr_sql_bind_text(st, 5, qualified ? now : NULL);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_opp_set_closed(MrStore *store, gint64 id, const MrOppClosing *c, const char *now,
			GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OPP_CLOSE);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, c->status);
	mr_sql_bind_text(st, 3, c->stage);
	mr_sql_bind_int64(st, 4, c->probability);
	mr_sql_bind_text(st, 5, c->lost_reason);
	mr_sql_bind_text(st, 6, now);
	mr_sql_bind_text(st, 7, c->from_status);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_record_must_exist(MrStore *store, MrRecordRef ref, char **status_out, GError **error)
{
	if (mr_store_record_exists(store, ref, status_out))
		return TRUE;
	{
		g_autofree char *display = mr_record_display_id(store->cfg, ref);

		mr_store_not_found(store, error, "no such record %s", display);
	}
	return FALSE;
}

gint64
mr_store_record_owner(MrStore *store, MrRecordRef ref)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_NONE)
		return 0;
	st = store_stmt(store, mr_status_sql[ref.kind]);
	mr_sql_bind_int64(st, 1, ref.id);
	if (!mr_store_step_row(store, st))
		return 0;
	return mr_sql_column_int64(st, 1);
}

gboolean
mr_store_record_set_owner(MrStore *store, MrRecordRef ref, gint64 owner, GError **error)
{
	static const MrStmtId sql[] = {
		[MR_RECORD_LEAD] = MR_STMT_LEAD_SET_OWNER,
		[MR_RECORD_OPPORTUNITY] = MR_STMT_OPP_SET_OWNER,
		[MR_RECORD_TICKET] = MR_STMT_TICKET_SET_OWNER,
	};
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_NONE)
		return TRUE;
	st = store_stmt(store, sql[ref.kind]);
	mr_sql_bind_int64(st, 1, ref.id);
	mr_store_bind_id(st, 2, owner);
	return mr_store_step_later(store, st, error);
}

gboolean
mr_store_ticket_set_fields(MrStore *store, gint64 id, const char *priority, const char *type,
			   GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TICKET_SET_FIELDS);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, priority);
	mr_sql_bind_text(st, 3, type);
	return mr_store_step_later(store, st, error);
}

gboolean
mr_store_lead_set_source(MrStore *store, gint64 id, const char *source, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LEAD_SET_SOURCE);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, source);
	return mr_store_step_later(store, st, error);
}

gboolean
mr_store_record_tag(MrStore *store, MrRecordRef ref, const char *tag, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TAG_INSERT);

	mr_sql_bind_text(st, 1, mr_record_kind_name(ref.kind));
	mr_sql_bind_int64(st, 2, ref.id);
	mr_sql_bind_text(st, 3, tag);
	return mr_store_step_later(store, st, error);
}

GStrv
mr_store_record_tags(MrStore *store, MrRecordRef ref)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RECORD_TAGS);
	g_autoptr(GPtrArray) tags = g_ptr_array_new();

	mr_sql_bind_text(st, 1, mr_record_kind_name(ref.kind));
	mr_sql_bind_int64(st, 2, ref.id);
	while (mr_store_step_row(store, st))
		g_ptr_array_add(tags, g_strdup(mr_sql_column_text(st, 0)));
	g_ptr_array_add(tags, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&tags), FALSE);
}

char *
mr_store_account_name(MrStore *store, gint64 id)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_ACCOUNT_NAME);

	mr_sql_bind_int64(st, 1, id);
	if (!mr_store_step_row(store, st))
		return NULL;
	return g_strdup(mr_sql_column_text(st, 0));
}
