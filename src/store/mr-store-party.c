/* mr-store-party.c - the store's parties: look-ups and row-level writes of
 * users, contacts and accounts, and a message's links to them
 * (mr-store-party.h).
 *
 * Store stage: row-level primitives that decide nothing. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"

gint64
mr_store_user_by_address(MrStore *store, const char *email)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_BY_ADDRESS);

	mr_sql_bind_text(st, 1, email);
	return mr_store_step_int64(store, st);
}

gint64
mr_store_contact_by_email(MrStore *store, const char *email)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_BY_EMAIL);

	mr_sql_bind_text(st, 1, email);
	return mr_store_step_int64(store, st);
}

void
mr_store_party_by_email(MrStore *store, const char *email, gint64 *user_out,
			gint64 *contact_out, gint64 *account_out)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_PARTY_BY_EMAIL);
	gboolean found;

	mr_sql_bind_text(st, 1, email);
	found = mr_store_step_row(store, st);
	*user_out = found ? mr_sql_column_int64(st, 0) : 0;
	*contact_out = found ? mr_sql_column_int64(st, 1) : 0;
	*account_out = found ? mr_sql_column_int64(st, 2) : 0;
}

gint64
mr_store_user_ensure(MrStore *store, const char *email, const char *name, const char *now,
		     GError **error)
{
	gint64 id = mr_store_user_by_address(store, email);

	if (id != 0)
		return id;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_INSERT);

		mr_sql_bind_text(st, 1, email);
		mr_sql_bind_text(st, 2, name);
		mr_sql_bind_text(st, 3, now);
		id = mr_store_step_new_id(store, st, error);
	}
	if (id == 0) { /* failed, or another writer made the user meanwhile */
		if (error != NULL && *error != NULL)
			return 0;
		return mr_store_lookup_again(store, error, "user", email,
				    mr_store_user_by_address(store, email));
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_ADDRESS_INSERT);

		mr_sql_bind_text(st, 1, email);
		mr_sql_bind_int64(st, 2, id);
		if (!mr_store_step_later(store, st, error))
			return 0;
	}
	return id;
}

gboolean
mr_store_user_set_name(MrStore *store, gint64 id, const char *name, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_SET_NAME);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, name);
	return mr_store_step_done(store, st, error);
}

gint64
mr_store_account_ensure(MrStore *store, const char *domain, const char *now, GError **error)
{
	gint64 id;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_ACCOUNT_BY_DOMAIN);

		mr_sql_bind_text(st, 1, domain);
		id = mr_store_step_int64(store, st);
	}
	if (id != 0)
		return id;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_ACCOUNT_INSERT);

		mr_sql_bind_text(st, 1, domain);
		mr_sql_bind_text(st, 2, domain);
		mr_sql_bind_text(st, 3, now);
		id = mr_store_step_new_id(store, st, error);
	}
	if (id == 0 && (error == NULL || *error == NULL)) {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_ACCOUNT_BY_DOMAIN);

		mr_sql_bind_text(st, 1, domain);
		id = mr_store_lookup_again(store, error, "account", domain, mr_store_step_int64(store, st));
	}
	return id;
}

gint64
mr_store_contact_add(MrStore *store, const char *email, const char *name, gint64 account,
		     gint64 owner, const char *now, gboolean *created_out, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_INSERT);
	gint64 id;

	mr_sql_bind_text(st, 1, email);
	mr_sql_bind_text(st, 2, name);
	mr_store_bind_id(st, 3, account);
	mr_store_bind_id(st, 4, owner);
	mr_sql_bind_text(st, 5, now);
	id = mr_store_step_new_id(store, st, error);
	*created_out = id != 0;
	if (id != 0 || (error != NULL && *error != NULL))
		return id;
	g_clear_pointer(&st, stmt_release);
	/* another writer made the contact meanwhile */
	return mr_store_lookup_again(store, error, "contact", email, mr_store_contact_by_email(store, email));
}

gboolean
mr_store_contact_touch(MrStore *store, gint64 id, const char *name, gint64 owner,
		       const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_TOUCH);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, name);
	mr_store_bind_id(st, 3, owner);
	mr_sql_bind_text(st, 4, now);
	return mr_store_step_later(store, st, error);
}

gboolean
mr_store_contact_account_owner(MrStore *store, gint64 id, gint64 *account_out, gint64 *owner_out)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_GET);
	gboolean found;

	mr_sql_bind_int64(st, 1, id);
	found = mr_store_step_row(store, st);
	if (account_out != NULL)
		*account_out = found ? mr_sql_column_int64(st, 0) : 0;
	if (owner_out != NULL)
		*owner_out = found ? mr_sql_column_int64(st, 1) : 0;
	return found;
}

static const char *const mr_party_kind_names[] = {
	[MR_PARTY_USER] = "user",
	[MR_PARTY_CONTACT] = "contact",
	[MR_PARTY_ACCOUNT] = "account",
};

gboolean
mr_store_link_party(MrStore *store, gint64 msg, MrPartyKind kind, gint64 id, GError **error)
{
	g_return_val_if_fail((guint)kind < G_N_ELEMENTS(mr_party_kind_names), FALSE);
	return mr_store_insert_link(store, msg, mr_party_kind_names[kind], id, error);
}

