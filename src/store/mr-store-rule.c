/* mr-store-rule.c - the rules' rows and their change counter
 * (mr-store-rule.h).
 *
 * Store stage: row-level primitives that decide nothing; the CRM layer
 * (src/crm/mr-crm-rules.c) runs them in its transactions. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"

gint64
mr_store_rules_bump(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULES_BUMP);

	return mr_store_step_id(store, st, error);
}

gint64
mr_store_rules_version(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULES_VERSION);

	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		return mr_sql_column_int64(st, 0);
	case MR_SQL_DONE:
		/* the migration writes the row; nobody deletes it */
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_FAILED,
			    "rule_version has no row");
		return -1;
	default:
		return -1;
	}
}

gint64
mr_store_rules_count(MrStore *store)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULES_COUNT);

	return mr_store_step_int64(store, st);
}

gint64
mr_store_rule_position(MrStore *store, const char *name)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULE_POSITION);

	mr_sql_bind_text(st, 1, name);
	return mr_store_step_int64(store, st);
}

gint64
mr_store_rule_insert(MrStore *store, const MrRuleNew *rule, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULE_INSERT);

	mr_sql_bind_text(st, 1, rule->name);
	mr_sql_bind_int64(st, 2, rule->position);
	mr_sql_bind_int64(st, 3, rule->enabled ? 1 : 0);
	mr_sql_bind_int64(st, 4, rule->any ? 1 : 0);
	mr_sql_bind_int64(st, 5, rule->stop ? 1 : 0);
	mr_sql_bind_text(st, 6, rule->conditions);
	mr_sql_bind_text(st, 7, rule->actions);
	mr_sql_bind_text(st, 8, now);
	return mr_store_step_id(store, st, error);
}

gboolean
mr_store_rules_rotate(MrStore *store, gint64 from, gint64 to, GError **error)
{
	g_return_val_if_fail(from >= 1 && to >= 1, FALSE);

	if (from == to)
		return TRUE;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULES_ROTATE);

		mr_sql_bind_int64(st, 1, from);
		mr_sql_bind_int64(st, 2, to);
		mr_sql_bind_int64(st, 3, from < to ? -1 : 1);
		mr_sql_bind_int64(st, 4, MIN(from, to));
		mr_sql_bind_int64(st, 5, MAX(from, to));
		if (!mr_store_step_done(store, st, error))
			return FALSE;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULES_UNPARK);

		return mr_store_step_done(store, st, error);
	}
}

gboolean
mr_store_rule_set_enabled(MrStore *store, const char *name, gboolean enabled, const char *now,
			  GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULE_SET_ENABLED);

	mr_sql_bind_text(st, 1, name);
	mr_sql_bind_int64(st, 2, enabled ? 1 : 0);
	mr_sql_bind_text(st, 3, now);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_rule_delete(MrStore *store, const char *name, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULE_DELETE);

	mr_sql_bind_text(st, 1, name);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_rules_delete_all(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RULES_DELETE_ALL);

	return mr_store_step_done(store, st, error);
}

GPtrArray *
mr_store_rules(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LIST_RULES);

	return mr_store_read_rows(st, &mr_rule_row_desc, error);
}

MrRuleRow *
mr_store_rule_get(MrStore *store, const char *name, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_SHOW_RULE);

	mr_sql_bind_text(st, 1, name);
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		return mr_row_new(&mr_rule_row_desc, st);
	case MR_SQL_DONE:
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no rule %s", name);
		return NULL;
	default:
		return NULL;
	}
}
