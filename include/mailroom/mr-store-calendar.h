/* mr-store-calendar.h - the store's calendars (issue 24): business hours
 * by name, their holidays, and the calendar of a team.
 *
 * Row-level primitives that decide nothing: whether a zone, working hours
 * or a date make sense is mr_calendar_new()'s question (mr-calendar.h),
 * asked before a calendar is written.  A team without a calendar of its
 * own counts its time in the calendar "default" (MR_CALENDAR_DEFAULT). */
#pragma once

#include <glib.h>

#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* The calendar of the records whose owner's team has none; mailroomctl
 * init makes it when missing (mon-fri 09:00-17:00 in the configuration's
 * timezone). */
#define MR_CALENDAR_DEFAULT "default"
#define MR_CALENDAR_DEFAULT_HOURS "mon-fri 09:00-17:00"

/* Returns the id of calendar @name, or 0 when there is none. */
gint64 mr_store_calendar_id(MrStore *store, const char *name);

/* --- row-level writes ----------------------------------------------------
 * Inside the open transaction (mr_store_run()).  @now is UTC ISO-8601. */

/* Makes calendar @name with @zone and @hours, or sets them on the one
 * there (@replace; else a calendar there is left as it is).  Returns its
 * id, 0 with @error. */
gint64 mr_store_calendar_put(MrStore *store, const char *name, const char *zone,
			     const char *hours, gboolean replace, const char *now,
			     GError **error);

/* Takes every holiday of calendar @id away. */
gboolean mr_store_calendar_holidays_clear(MrStore *store, gint64 id, GError **error);

/* Makes @day (YYYY-MM-DD) a holiday of calendar @id (one there already
 * is no error). */
gboolean mr_store_calendar_holiday_add(MrStore *store, gint64 id, const char *day,
				       GError **error);

/* Deletes calendar @id and its holidays.  A calendar a team counts in is
 * refused by the database (MR_STORE_ERROR_CONSTRAINT). */
gboolean mr_store_calendar_delete(MrStore *store, gint64 id, GError **error);

/* Makes team @team count in calendar @calendar (0: in "default").
 * Returns FALSE without @error when there is no such team. */
gboolean mr_store_team_set_calendar(MrStore *store, gint64 team, gint64 calendar,
				    GError **error);

/* --- queries for the CLI --------------------------------------------------- */

/* `calendar list --json`: {name zone hours holidays teams created
 * updated}; the holidays in date order, the teams that count in it by
 * name ("default" also holds the teams without one). */
typedef struct {
	gint64 id;
	char *name;
	char *zone;
	char *hours;
	GStrv holidays;
	GStrv teams;
	char *created;
	char *updated;
} MrCalendarRow;

MR_ROW_DECLARE(MrCalendarRow, mr_calendar_row_desc, mr_calendar_row_free)

/* Returns: (transfer full) (element-type MrCalendarRow): every calendar,
 * by name, or NULL with @error. */
GPtrArray *mr_store_calendars(MrStore *store, GError **error);

/* Returns: (transfer full): calendar @name, or NULL with @error
 * (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrCalendarRow *mr_store_calendar_get(MrStore *store, const char *name, GError **error);

G_END_DECLS
