/* mr-store-calendar.c - the store's calendars: business hours by name,
 * their holidays, a team's calendar (see mr-store-calendar.h).
 *
 * Store stage: row-level primitives that decide nothing. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"

gint64
mr_store_calendar_id(MrStore *store, const char *name)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CALENDAR_ID);

	mr_sql_bind_text(st, 1, name);
	return mr_store_step_int64(store, st);
}

/* Steps @stmt (CALENDAR_UPDATE or _INSERT: ?1 name, ?2 zone, ?3 hours, ?4
 * now, RETURNING id).  Returns the id, or 0: with @error on failure,
 * without when no row changed. */
static gint64
calendar_write(MrStore *store, MrStmtId stmt, const char *name, const char *zone,
	       const char *hours, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, stmt);

	mr_sql_bind_text(st, 1, name);
	mr_sql_bind_text(st, 2, zone);
	mr_sql_bind_text(st, 3, hours);
	mr_sql_bind_text(st, 4, now);
	return mr_store_step_new_id(store, st, error);
}

gint64
mr_store_calendar_put(MrStore *store, const char *name, const char *zone, const char *hours,
		      gboolean replace, const char *now, GError **error)
{
	g_autoptr(GError) local = NULL;
	gint64 id = 0;

	if (replace)
		id = calendar_write(store, MR_STMT_CALENDAR_UPDATE, name, zone, hours, now, &local);
	if (id == 0 && local == NULL)
		id = calendar_write(store, MR_STMT_CALENDAR_INSERT, name, zone, hours, now, &local);
	if (id == 0 && local == NULL)
		id = mr_store_lookup_again(store, &local, "calendar", name,
					   mr_store_calendar_id(store, name));
	if (local != NULL)
		g_propagate_error(error, g_steal_pointer(&local));
	return id;
}

/* Runs @stmt, a statement of one row id ?1 without rows. */
static gboolean
step_by_id(MrStore *store, MrStmtId stmt, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, stmt);

	mr_sql_bind_int64(st, 1, id);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_calendar_holidays_clear(MrStore *store, gint64 id, GError **error)
{
	return step_by_id(store, MR_STMT_CALENDAR_HOLIDAYS_CLEAR, id, error);
}

gboolean
mr_store_calendar_holiday_add(MrStore *store, gint64 id, const char *day, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CALENDAR_HOLIDAY_INSERT);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, day);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_calendar_delete(MrStore *store, gint64 id, GError **error)
{
	return step_by_id(store, MR_STMT_CALENDAR_DELETE, id, error);
}

gboolean
mr_store_team_set_calendar(MrStore *store, gint64 team, gint64 calendar, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_SET_CALENDAR);
	g_autoptr(GError) local = NULL;
	gint64 id;

	mr_sql_bind_int64(st, 1, team);
	mr_store_bind_id(st, 2, calendar);
	id = mr_store_step_new_id(store, st, &local);
	if (local != NULL)
		g_propagate_error(error, g_steal_pointer(&local));
	return id != 0;
}

/* Fills the holidays and teams of @cals (read with them NULL), in order;
 * @name: only calendar @name's holidays are read (NULL: every one's). */
static gboolean
calendars_fill(MrStore *store, GPtrArray *cals, const char *name, GError **error)
{
	g_autoptr(GHashTable) by_id = g_hash_table_new(g_int64_hash, g_int64_equal);
	g_autoptr(GPtrArray) days = g_ptr_array_new_with_free_func(
		(GDestroyNotify)g_strv_builder_unref);
	g_autoptr(GPtrArray) teams = g_ptr_array_new_with_free_func(
		(GDestroyNotify)g_strv_builder_unref);
	const MrStmtId stmts[] = { MR_STMT_CALENDAR_DAYS, MR_STMT_CALENDAR_TEAMS };
	GPtrArray *into[] = { days, teams };

	for (guint i = 0; i < cals->len; i++) {
		MrCalendarRow *c = g_ptr_array_index(cals, i);

		g_hash_table_insert(by_id, &c->id, GUINT_TO_POINTER(i + 1));
		g_ptr_array_add(days, g_strv_builder_new());
		g_ptr_array_add(teams, g_strv_builder_new());
	}
	for (guint k = 0; k < G_N_ELEMENTS(stmts); k++) {
		g_autoptr(MrStmtUse) st = store_stmt(store, stmts[k]);
		MrSqlStep rc;

		if (stmts[k] == MR_STMT_CALENDAR_DAYS)
			mr_sql_bind_text(st, 1, name);
		while ((rc = mr_sql_step(st, error)) == MR_SQL_ROW) {
			gint64 cal = mr_sql_column_int64(st, 0);
			guint i = GPOINTER_TO_UINT(g_hash_table_lookup(by_id, &cal));

			if (i != 0) /* else: a calendar added since they were read */
				g_strv_builder_add(g_ptr_array_index(into[k], i - 1),
						   mr_sql_column_text(st, 1));
		}
		if (rc != MR_SQL_DONE)
			return FALSE;
	}
	for (guint i = 0; i < cals->len; i++) {
		MrCalendarRow *c = g_ptr_array_index(cals, i);

		g_strfreev(c->holidays);
		c->holidays = g_strv_builder_end(g_ptr_array_index(days, i));
		g_strfreev(c->teams);
		c->teams = g_strv_builder_end(g_ptr_array_index(teams, i));
	}
	return TRUE;
}

GPtrArray *
mr_store_calendars(MrStore *store, GError **error)
{
	g_autoptr(GPtrArray) cals = NULL;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LIST_CALENDARS);

		cals = mr_store_read_rows(st, &mr_calendar_row_desc, error);
	}
	if (cals == NULL || !calendars_fill(store, cals, NULL, error))
		return NULL;
	return g_steal_pointer(&cals);
}

MrCalendarRow *
mr_store_calendar_get(MrStore *store, const char *name, GError **error)
{
	g_autoptr(GPtrArray) cals = NULL;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_SHOW_CALENDAR);

		mr_sql_bind_text(st, 1, name);
		cals = mr_store_read_rows(st, &mr_calendar_row_desc, error);
	}
	if (cals == NULL)
		return NULL;
	if (cals->len == 0) {
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no calendar %s", name);
		return NULL;
	}
	if (!calendars_fill(store, cals, name, error))
		return NULL;
	return g_ptr_array_steal_index(cals, 0);
}
