/* mr-store-team.c - the teams' rows, their members, the users' away flag
 * and the round-robin turn (mr-store-team.h).
 *
 * Store stage: row-level primitives that decide nothing; the CRM layer
 * (src/crm/mr-crm-teams.c) runs them in its transactions, and routing's
 * apply step takes turns in the transaction of the record it assigns. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"

gint64
mr_store_team_id(MrStore *store, const char *name)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_ID);

	mr_sql_bind_text(st, 1, name);
	return mr_store_step_int64(store, st);
}

gint64
mr_store_team_member_position(MrStore *store, gint64 team, gint64 user)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_MEMBER_POSITION);

	mr_sql_bind_int64(st, 1, team);
	mr_sql_bind_int64(st, 2, user);
	return mr_store_step_int64(store, st);
}

gint64
mr_store_team_member_count(MrStore *store, gint64 team)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_MEMBER_COUNT);

	mr_sql_bind_int64(st, 1, team);
	return mr_store_step_int64(store, st);
}

gint64
mr_store_team_insert(MrStore *store, const char *name, gint64 lead, const char *now,
		     GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_INSERT);

	mr_sql_bind_text(st, 1, name);
	mr_store_bind_id(st, 2, lead);
	mr_sql_bind_text(st, 3, now);
	return mr_store_step_new_id(store, st, error);
}

gboolean
mr_store_team_delete(MrStore *store, gint64 team, GError **error)
{
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_MEMBERS_DELETE);

		mr_sql_bind_int64(st, 1, team);
		if (!mr_store_step_done(store, st, error))
			return FALSE;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_DELETE);

		mr_sql_bind_int64(st, 1, team);
		return mr_store_step_done(store, st, error);
	}
}

gint64
mr_store_team_member_insert(MrStore *store, gint64 team, gint64 user, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_MEMBER_INSERT);

	mr_sql_bind_int64(st, 1, team);
	mr_sql_bind_int64(st, 2, user);
	return mr_store_step_new_id(store, st, error);
}

gboolean
mr_store_team_member_delete(MrStore *store, gint64 team, gint64 user, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_MEMBER_DELETE);

	mr_sql_bind_int64(st, 1, team);
	mr_sql_bind_int64(st, 2, user);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_user_set_away(MrStore *store, gint64 user, gboolean away, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_SET_AWAY);

	mr_sql_bind_int64(st, 1, user);
	mr_sql_bind_int64(st, 2, away ? 1 : 0);
	return mr_store_step_done(store, st, error);
}

gint64
mr_store_team_take_turn(MrStore *store, const char *name, GError **error)
{
	gint64 team, turn, user, position;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_LOCK);

		mr_sql_bind_text(st, 1, name);
		switch (mr_sql_step(st, error)) {
		case MR_SQL_ROW:
			team = mr_sql_column_int64(st, 0);
			turn = mr_sql_column_int64(st, 1);
			break;
		case MR_SQL_DONE:
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no team %s",
				    name);
			return 0;
		default:
			return 0;
		}
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_NEXT);

		mr_sql_bind_int64(st, 1, team);
		mr_sql_bind_int64(st, 2, turn);
		switch (mr_sql_step(st, error)) {
		case MR_SQL_ROW:
			user = mr_sql_column_int64(st, 0);
			position = mr_sql_column_int64(st, 1);
			break;
		case MR_SQL_DONE:
			return 0; /* every member away: the turn stays */
		default:
			return 0;
		}
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_SET_TURN);

		mr_sql_bind_int64(st, 1, team);
		mr_sql_bind_int64(st, 2, position);
		if (!mr_store_step_done(store, st, error))
			return 0;
	}
	return user;
}

/* Fills the members of @teams (element-type MrTeamRow, read with their
 * members NULL), those of team @name or of every team (@name NULL), in
 * position order. */
static gboolean
teams_fill_members(MrStore *store, GPtrArray *teams, const char *name, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_MEMBERS);
	g_autoptr(GHashTable) by_id = g_hash_table_new(g_int64_hash, g_int64_equal);
	g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func(
		(GDestroyNotify)g_strv_builder_unref);
	g_autoptr(GPtrArray) away = g_ptr_array_new_with_free_func(
		(GDestroyNotify)g_strv_builder_unref);
	MrSqlStep rc;

	for (guint i = 0; i < teams->len; i++) {
		MrTeamRow *t = g_ptr_array_index(teams, i);

		g_hash_table_insert(by_id, &t->id, GUINT_TO_POINTER(i + 1));
		g_ptr_array_add(members, g_strv_builder_new());
		g_ptr_array_add(away, g_strv_builder_new());
	}
	mr_sql_bind_text(st, 1, name);
	while ((rc = mr_sql_step(st, error)) == MR_SQL_ROW) {
		gint64 team = mr_sql_column_int64(st, 0);
		guint i = GPOINTER_TO_UINT(g_hash_table_lookup(by_id, &team));
		const char *email = mr_sql_column_text(st, 1);

		if (i == 0) /* a team added since the teams were read */
			continue;
		g_strv_builder_add(g_ptr_array_index(members, i - 1), email);
		if (mr_sql_column_int64(st, 2) != 0)
			g_strv_builder_add(g_ptr_array_index(away, i - 1), email);
	}
	if (rc != MR_SQL_DONE)
		return FALSE;
	for (guint i = 0; i < teams->len; i++) {
		MrTeamRow *t = g_ptr_array_index(teams, i);

		g_strfreev(t->members);
		t->members = g_strv_builder_end(g_ptr_array_index(members, i));
		g_strfreev(t->away);
		t->away = g_strv_builder_end(g_ptr_array_index(away, i));
	}
	return TRUE;
}

GPtrArray *
mr_store_teams(MrStore *store, GError **error)
{
	g_autoptr(GPtrArray) teams = NULL;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LIST_TEAMS);

		teams = mr_store_read_rows(st, &mr_team_row_desc, error);
	}
	if (teams == NULL || !teams_fill_members(store, teams, NULL, error))
		return NULL;
	return g_steal_pointer(&teams);
}

MrTeamRow *
mr_store_team_get(MrStore *store, const char *name, GError **error)
{
	g_autoptr(GPtrArray) teams = NULL;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_SHOW_TEAM);

		mr_sql_bind_text(st, 1, name);
		teams = mr_store_read_rows(st, &mr_team_row_desc, error);
	}
	if (teams == NULL)
		return NULL;
	if (teams->len == 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no team %s", name);
		return NULL;
	}
	if (!teams_fill_members(store, teams, name, error))
		return NULL;
	return g_ptr_array_steal_index(teams, 0);
}
