/* mr-calendar.h - business hours: a calendar's working time (hours on
 * days of the week, in an IANA time zone, minus holidays) and durations
 * ("90m", "4h", "3d") counted in it or on the clock.
 *
 * Model layer, pure: no I/O, no database.  Times are Unix seconds (UTC);
 * the working hours are wall-clock times of the calendar's zone, so a
 * daylight-saving change moves them with the clock ("across the March
 * change the wall clock is what counts").  Every function is linear in
 * the days it walks, and none walks more than MR_CALENDAR_MAX_DAYS.
 *
 * A wall-clock time is made an instant as g_date_time_new() makes it: a
 * time that a daylight-saving change skips is the end of the skip (02:30
 * on Berlin's March change is 03:00 CEST, so a range 02:00-03:00 is empty
 * that day and 01:00-04:00 is two hours long), and a time it repeats is
 * its second, standard-time occurrence (02:30 on the October change is
 * 02:30 CET; a range 01:00-04:00 is four hours long that day). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MR_CALENDAR_ERROR (mr_calendar_error_quark())

typedef enum {
	MR_CALENDAR_ERROR_ZONE,     /* not a time zone this machine knows */
	MR_CALENDAR_ERROR_HOURS,    /* working hours that do not parse, or none */
	MR_CALENDAR_ERROR_HOLIDAY,  /* not a date YYYY-MM-DD */
	MR_CALENDAR_ERROR_DURATION, /* not a duration (mr_duration_parse()) */
} MrCalendarError;

GQuark mr_calendar_error_quark(void);

/* How far any walk through a calendar goes: past it, a duration has no
 * end (a calendar whose every day is a holiday). */
#define MR_CALENDAR_MAX_DAYS 3660

typedef enum {
	MR_DURATION_MINUTES,
	MR_DURATION_HOURS,
	MR_DURATION_DAYS,
} MrDurationUnit;

/* A duration as written: "90m", "4h", "3d". */
typedef struct {
	gint64 amount;       /* >= 1 */
	MrDurationUnit unit;
} MrDuration;

/* The most a duration may be, in each unit: ten years. */
#define MR_DURATION_MAX_DAYS 3650

/* Parses @text, a positive whole number and a unit letter (m, h, d), no
 * spaces: "90m", "4h", "3d", at most ten years.  Strict: no sign, no
 * leading zero, a lowercase unit ("4H" is refused), so that
 * mr_duration_format() gives back @text itself.  Returns TRUE and fills
 * @out, or FALSE with @error (MR_CALENDAR_ERROR_DURATION) saying what is
 * wrong. */
gboolean mr_duration_parse(const char *text, MrDuration *out, GError **error);

/* Returns: (transfer full): @d as mr_duration_parse() reads it ("4h"). */
char *mr_duration_format(const MrDuration *d);

typedef struct _MrCalendar MrCalendar;

/* Makes a calendar.  @zone: an IANA time zone name ("Europe/Berlin",
 * "UTC"); a name the machine's zone database does not have is refused,
 * not read as UTC.  Only a name is read: components of ASCII letters,
 * digits, '_', '-' and '+', each starting with a capital letter, joined
 * by '/', at most 64 bytes; a path, "localtime" or a POSIX TZ rule with
 * ',' or '.' is refused (GLib would read them).  One gap remains: a name
 * no file has that GLib can read as a short POSIX rule ("ABC5") is that
 * rule (UTC-5), as GLib reads it.
 * @hours: one or more groups separated by commas, each
 * a day or a range of days (mon tue wed thu fri sat sun; "mon-fri",
 * "sat", a range may wrap: "fri-mon") and one or more time ranges
 * HH:MM-HH:MM (start before end, end at most 24:00):
 * "mon-fri 09:00-17:00", "mon-thu 08:00-12:00 13:00-17:00, fri 08:00-12:00".
 * Day names are lowercase, as written here; hours and minutes two digits.
 * Parts are separated by one or more spaces (the space character only),
 * and spaces may stand around a comma and at either end.  A day may be
 * in several groups; ranges of one day may not overlap, and at most 8
 * are written for one day; ranges that touch (09:00-12:00 12:00-17:00)
 * are one.  At least one range in all, and at most 4096 bytes.
 * @holidays (nullable, NULL-terminated): dates YYYY-MM-DD in the zone,
 * days without working time (valid dates only; a date twice is fine).
 * Returns: (transfer full): the calendar, or NULL with @error
 * (MR_CALENDAR_ERROR) naming the part that is wrong:
 * 'working hours: "mon-fry": not a day (mon tue wed thu fri sat sun)'. */
MrCalendar *mr_calendar_new(const char *zone, const char *hours, const char *const *holidays,
			    GError **error);

void mr_calendar_free(MrCalendar *cal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrCalendar, mr_calendar_free)

/* Returns: (transfer full): the working hours of @cal written as
 * mr_calendar_new() reads them, in one canonical form (days in week
 * order, ranges sorted, days with the same ranges grouped):
 * "mon-fri 09:00-17:00".  Groups are runs of days from mon to sun and do
 * not wrap: "fri-mon 10:00-14:00" is written
 * "mon 10:00-14:00, fri-sun 10:00-14:00".  Holidays are not part of it. */
char *mr_calendar_hours_text(const MrCalendar *cal);

/* Whether @t (Unix seconds) is working time in @cal: inside a range of
 * its weekday, on a day that is no holiday.  A range's start is in it,
 * its end is not; a range ending at 24:00 ends at the next day's midnight.
 * FALSE for a time GDateTime cannot hold (outside the years 1 to 9999). */
gboolean mr_calendar_is_working(const MrCalendar *cal, gint64 t);

/* Sets @weekday (0 Monday to 6) and @hour (0 to 23) of @t (Unix seconds)
 * on the wall clock of @cal's zone; both -1 for a time GDateTime cannot
 * hold. */
void mr_calendar_local(const MrCalendar *cal, gint64 t, int *weekday, int *hour);

/* Returns the end of @d from @start (Unix seconds).
 *
 * @business FALSE: on the clock -- minutes and hours as elapsed time, a
 * day as the same wall-clock time that many days later in the calendar's
 * zone (23 or 25 hours across a daylight-saving change), as
 * g_date_time_add_days() makes it: a time the change skips is the skip's
 * end, one it repeats is the occurrence with @start's daylight-saving
 * state.  Holidays and working hours play no part.
 *
 * @business TRUE: in working time.  Minutes and hours count only working
 * time, from @start when it is working time, else from the next working
 * moment; the end may be the end of a range (4h from 13:00 with
 * 09:00-17:00 ends at 17:00 that day).  A day is one working day: from
 * @start (or the next working moment, when @start is not working time)
 * to the same wall-clock time on the next working day, @d's amount of
 * times; a time of day that the day's ranges do not hold becomes the
 * nearest working time after it on that day, else the end of its last
 * range.  With mon-fri 09:00-17:00: 3d from Monday 10:00 ends on
 * Thursday 10:00, 4h from Friday 15:00 on Monday 11:00, 1d from Saturday
 * 11:00 on Tuesday 09:00.
 *
 * A working day is a date with working time.  The walk goes by local
 * dates, from @start's to at most MR_CALENDAR_MAX_DAYS after it; the
 * ranges' wall-clock times, and a working day's time of day, are made
 * instants as said at the top (so 1d from Saturday 02:30 CEST, all week
 * working, ends on the October change's Sunday at 02:30 CET).
 *
 * Returns -1 when the end lies past MR_CALENDAR_MAX_DAYS of walking (no
 * working time that far), and for what no walk answers: @d's amount
 * below 1 or above ten years (MR_DURATION_MAX_DAYS, in its unit), a
 * @start or an end outside the years 1 to 9999. */
gint64 mr_calendar_add(const MrCalendar *cal, gint64 start, const MrDuration *d,
		       gboolean business);

G_END_DECLS
