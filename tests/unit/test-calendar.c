/* test-calendar.c - business hours (mr-calendar.h): the header's
 * examples, daylight-saving changes in Berlin and New York, holidays,
 * split days, ranges of days that wrap, zones off the hour, the limits
 * of a walk, strict parsing with messages that name the bad part, and
 * random starts checked against properties of working time. */
#include <string.h>

#include "mailroom/mr-calendar.h"

/* Under valgrind (memory, not meaning: the plain and sanitizer runs check
 * every case in full) the sweeps take a sample. */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND (RUNNING_ON_VALGRIND != 0)
#else
#define UNDER_VALGRIND FALSE
#endif
/* The random starts of a property test. */
#define RANDOM_STARTS(n) (UNDER_VALGRIND ? (n) / 10 : (n))

#include "mr-test-util.h"

#define BERLIN "Europe/Berlin"
#define OFFICE "mon-fri 09:00-17:00"
#define SPLIT "mon-fri 08:00-12:00 13:00-17:00"
#define ALL_WEEK "mon-sun 00:00-24:00"

/* The most the calendar's limits allow (mr-calendar.c): a wall-clock
 * time GDateTime holds. */
#define UNIX_MAX G_GINT64_CONSTANT(253402300799)
#define UNIX_MIN G_GINT64_CONSTANT(-62135596800)

static const char *const xmas[] = { "2026-12-24", "2026-12-25", "2026-12-26", "2026-12-25", NULL };

/* @iso, ISO 8601, in @zone unless it has an offset. */
static gint64
at(const char *zone, const char *iso)
{
	g_autoptr(GTimeZone) tz = g_time_zone_new_identifier(zone);
	g_autoptr(GDateTime) dt = NULL;

	g_assert_nonnull(tz);
	dt = g_date_time_new_from_iso8601(iso, tz);
	g_assert_nonnull(dt);
	return g_date_time_to_unix(dt);
}

/* @t in @zone: "2026-03-05T10:00:00+01:00", or "-1". */
static char *
shown(const char *zone, gint64 t)
{
	g_autoptr(GTimeZone) tz = g_time_zone_new_identifier(zone);
	g_autoptr(GDateTime) utc = NULL;
	g_autoptr(GDateTime) local = NULL;

	if (t == -1)
		return g_strdup("-1");
	utc = g_date_time_new_from_unix_utc(t);
	g_assert_nonnull(utc);
	local = g_date_time_to_timezone(utc, tz);
	return g_date_time_format(local, "%FT%T%:z");
}

static MrCalendar *
calendar(const char *zone, const char *hours, const char *const *holidays)
{
	g_autoptr(GError) error = NULL;
	MrCalendar *cal = mr_calendar_new(zone, hours, holidays, &error);

	g_assert_no_error(error);
	g_assert_nonnull(cal);
	return cal;
}

static MrDuration
duration(const char *text)
{
	g_autoptr(GError) error = NULL;
	MrDuration d = { 0 };

	g_assert_true(mr_duration_parse(text, &d, &error));
	g_assert_no_error(error);
	return d;
}

/* Asserts that @message holds @part, showing @message when it does not. */
static void
assert_holds(const char *message, const char *part)
{
	g_assert_cmpstr(strstr(message, part) != NULL ? part : message, ==, part);
}

/* ---- mr_calendar_add ---- */

static const struct {
	const char *zone;
	const char *hours;
	const char *const *holidays;
	const char *start;    /* ISO 8601 in the zone, or with an offset */
	const char *duration;
	gboolean business;
	const char *want;     /* in the zone with its offset, or "-1" */
} add_cases[] = {
	/* the header's examples: 2026-03-02 is a Monday */
	{ BERLIN, OFFICE, NULL, "2026-03-02T10:00:00", "3d", TRUE, "2026-03-05T10:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-06T15:00:00", "4h", TRUE, "2026-03-09T11:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-07T11:00:00", "1d", TRUE, "2026-03-10T09:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T13:00:00", "4h", TRUE, "2026-03-02T17:00:00+01:00" },
	/* a range's start and end */
	{ BERLIN, OFFICE, NULL, "2026-03-02T09:00:00", "1h", TRUE, "2026-03-02T10:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T09:00:00", "8h", TRUE, "2026-03-02T17:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T09:00:00", "9h", TRUE, "2026-03-03T10:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T17:00:00", "1h", TRUE, "2026-03-03T10:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T16:59:00", "1m", TRUE, "2026-03-02T17:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T16:59:30", "1m", TRUE, "2026-03-03T09:00:30+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T07:00:00", "90m", TRUE, "2026-03-02T10:30:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T09:00:00", "1d", TRUE, "2026-03-03T09:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T17:00:00", "1d", TRUE, "2026-03-04T09:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T16:59:59", "1d", TRUE, "2026-03-03T16:59:59+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-06T16:30:00", "1d", TRUE, "2026-03-09T16:30:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-06T17:30:00", "1d", TRUE, "2026-03-10T09:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T10:00:00", "5d", TRUE, "2026-03-09T10:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T10:00:00", "40h", TRUE, "2026-03-09T10:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-02T10:00:00", "2400m", TRUE, "2026-03-09T10:00:00+01:00" },
	/* on the clock */
	{ BERLIN, OFFICE, NULL, "2026-03-06T15:00:00", "4h", FALSE, "2026-03-06T19:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-06T15:00:00", "90m", FALSE, "2026-03-06T16:30:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-06T15:00:00", "3d", FALSE, "2026-03-09T15:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2026-03-07T11:00:00", "1d", FALSE, "2026-03-08T11:00:00+01:00" },
	/* Berlin's March change, Sunday 2027-03-28 02:00 CET -> 03:00 CEST */
	{ BERLIN, OFFICE, NULL, "2027-03-26T16:00:00+01:00", "2h", TRUE, "2027-03-29T10:00:00+02:00" },
	{ BERLIN, OFFICE, NULL, "2027-03-26T10:00:00+01:00", "1d", TRUE, "2027-03-29T10:00:00+02:00" },
	{ BERLIN, OFFICE, NULL, "2027-03-27T12:00:00+01:00", "1d", FALSE, "2027-03-28T12:00:00+02:00" },
	{ BERLIN, OFFICE, NULL, "2027-03-27T12:00:00+01:00", "24h", FALSE, "2027-03-28T13:00:00+02:00" },
	{ BERLIN, ALL_WEEK, NULL, "2027-03-27T12:00:00+01:00", "24h", TRUE, "2027-03-28T13:00:00+02:00" },
	{ BERLIN, ALL_WEEK, NULL, "2027-03-27T12:00:00+01:00", "1d", TRUE, "2027-03-28T12:00:00+02:00" },
	/* 01:00 CET to 04:00 CEST is two hours */
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-03-27T12:00:00+01:00", "2h", TRUE,
	  "2027-03-28T04:00:00+02:00" },
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-03-27T12:00:00+01:00", "3h", TRUE,
	  "2027-04-04T02:00:00+02:00" },
	/* a range inside the skipped hour is empty that day; one starting in
	 * it starts at 03:00 CEST */
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-03-27T12:00:00+01:00", "1h", TRUE,
	  "2027-04-04T03:00:00+02:00" },
	{ BERLIN, "sun 02:30-05:00", NULL, "2027-03-27T12:00:00+01:00", "1h", TRUE,
	  "2027-03-28T04:00:00+02:00" },
	{ BERLIN, "sun 02:30-05:00", NULL, "2027-03-27T12:00:00+01:00", "2h", TRUE,
	  "2027-03-28T05:00:00+02:00" },
	/* a day that lands in the skipped hour: 02:30 is 03:00 CEST */
	{ BERLIN, OFFICE, NULL, "2027-03-27T02:30:00+01:00", "1d", FALSE, "2027-03-28T03:00:00+02:00" },
	{ BERLIN, ALL_WEEK, NULL, "2027-03-27T02:30:00+01:00", "1d", TRUE,
	  "2027-03-28T03:00:00+02:00" },
	/* Berlin's October change, Sunday 2027-10-31 03:00 CEST -> 02:00 CET */
	{ BERLIN, OFFICE, NULL, "2027-10-30T12:00:00+02:00", "1d", FALSE, "2027-10-31T12:00:00+01:00" },
	{ BERLIN, ALL_WEEK, NULL, "2027-10-30T12:00:00+02:00", "24h", TRUE,
	  "2027-10-31T11:00:00+01:00" },
	{ BERLIN, ALL_WEEK, NULL, "2027-10-30T12:00:00+02:00", "1d", TRUE,
	  "2027-10-31T12:00:00+01:00" },
	{ BERLIN, OFFICE, NULL, "2027-10-29T16:00:00+02:00", "2h", TRUE, "2027-11-01T10:00:00+01:00" },
	/* 01:00 CEST to 04:00 CET is four hours */
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-10-30T12:00:00+02:00", "4h", TRUE,
	  "2027-10-31T04:00:00+01:00" },
	/* the repeated hour counts once, the second time */
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-10-30T12:00:00+02:00", "1h", TRUE,
	  "2027-10-31T03:00:00+01:00" },
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-10-31T02:30:00+02:00", "30m", TRUE,
	  "2027-10-31T02:30:00+01:00" },
	/* a day landing in the repeated hour: the clock keeps summer time,
	 * a working day takes the second 02:30 (as a range would) */
	{ BERLIN, OFFICE, NULL, "2027-10-30T02:30:00+02:00", "1d", FALSE, "2027-10-31T02:30:00+02:00" },
	{ BERLIN, ALL_WEEK, NULL, "2027-10-30T02:30:00+02:00", "1d", TRUE,
	  "2027-10-31T02:30:00+01:00" },
	/* holidays: 2026-12-24 is a Thursday */
	{ BERLIN, OFFICE, xmas, "2026-12-23T15:00:00", "4h", TRUE, "2026-12-28T11:00:00+01:00" },
	{ BERLIN, OFFICE, xmas, "2026-12-23T10:00:00", "1d", TRUE, "2026-12-28T10:00:00+01:00" },
	{ BERLIN, OFFICE, xmas, "2026-12-24T10:00:00", "1h", TRUE, "2026-12-28T10:00:00+01:00" },
	{ BERLIN, OFFICE, xmas, "2026-12-24T10:00:00", "1d", TRUE, "2026-12-29T09:00:00+01:00" },
	{ BERLIN, OFFICE, xmas, "2026-12-23T10:00:00", "1d", FALSE, "2026-12-24T10:00:00+01:00" },
	/* split days */
	{ BERLIN, SPLIT, NULL, "2026-03-02T11:00:00", "2h", TRUE, "2026-03-02T14:00:00+01:00" },
	{ BERLIN, SPLIT, NULL, "2026-03-02T11:00:00", "1h", TRUE, "2026-03-02T12:00:00+01:00" },
	{ BERLIN, SPLIT, NULL, "2026-03-02T12:00:00", "1m", TRUE, "2026-03-02T13:01:00+01:00" },
	{ BERLIN, SPLIT, NULL, "2026-03-02T12:30:00", "1d", TRUE, "2026-03-03T13:00:00+01:00" },
	{ BERLIN, SPLIT, NULL, "2026-03-02T11:30:00", "1d", TRUE, "2026-03-03T11:30:00+01:00" },
	{ BERLIN, SPLIT, NULL, "2026-03-02T08:00:00", "8h", TRUE, "2026-03-02T17:00:00+01:00" },
	/* a time of day the next working day does not hold */
	{ BERLIN, "mon 09:00-17:00, tue 08:00-12:00 13:00-17:00", NULL, "2026-03-02T12:30:00", "1d",
	  TRUE, "2026-03-03T13:00:00+01:00" },
	{ BERLIN, "mon-thu 08:00-17:00, fri 08:00-12:00", NULL, "2026-03-05T15:00:00", "1d", TRUE,
	  "2026-03-06T12:00:00+01:00" },
	{ BERLIN, "mon-thu 08:00-17:00, fri 08:00-12:00", NULL, "2026-03-05T15:00:00", "2d", TRUE,
	  "2026-03-09T15:00:00+01:00" },
	{ BERLIN, "mon-thu 08:00-17:00, fri 10:00-12:00", NULL, "2026-03-05T08:30:00", "1d", TRUE,
	  "2026-03-06T10:00:00+01:00" },
	/* a range of days that wraps */
	{ BERLIN, "fri-mon 10:00-14:00", NULL, "2026-03-02T11:00:00", "1d", TRUE,
	  "2026-03-06T11:00:00+01:00" },
	{ BERLIN, "fri-mon 10:00-14:00", NULL, "2026-03-02T13:00:00", "5h", TRUE,
	  "2026-03-06T14:00:00+01:00" },
	{ BERLIN, "fri-mon 10:00-14:00", NULL, "2026-03-03T09:00:00", "1h", TRUE,
	  "2026-03-06T11:00:00+01:00" },
	{ BERLIN, "fri-mon 10:00-14:00", NULL, "2026-03-06T10:00:00", "3d", TRUE,
	  "2026-03-09T10:00:00+01:00" },
	/* New York: Sunday 2026-03-08 02:00 EST -> 03:00 EDT */
	{ "America/New_York", OFFICE, NULL, "2026-03-06T16:30:00-05:00", "1h", TRUE,
	  "2026-03-09T09:30:00-04:00" },
	{ "America/New_York", OFFICE, NULL, "2026-03-07T12:00:00-05:00", "1d", FALSE,
	  "2026-03-08T12:00:00-04:00" },
	/* Kolkata, +05:30 */
	{ "Asia/Kolkata", OFFICE, NULL, "2026-03-02T03:00:00Z", "1h", TRUE,
	  "2026-03-02T10:00:00+05:30" },
	{ "Asia/Kolkata", OFFICE, NULL, "2026-03-02T09:00:00", "8h", TRUE,
	  "2026-03-02T17:00:00+05:30" },
	{ "Asia/Kolkata", OFFICE, NULL, "2026-03-06T20:00:00Z", "1d", TRUE,
	  "2026-03-10T09:00:00+05:30" },
	{ "UTC", OFFICE, NULL, "2026-03-06T16:00:00Z", "2h", TRUE, "2026-03-09T10:00:00+00:00" },
	/* a range to 24:00 goes on at the next day's 00:00 */
	{ BERLIN, "mon 22:00-24:00, tue 00:00-02:00", NULL, "2026-03-02T23:00:00", "2h", TRUE,
	  "2026-03-03T01:00:00+01:00" },
	{ BERLIN, "mon 22:00-24:00", NULL, "2026-03-02T23:30:00", "1h", TRUE,
	  "2026-03-09T22:30:00+01:00" },
	{ BERLIN, "mon 22:00-24:00", NULL, "2026-03-02T23:00:00", "1h", TRUE,
	  "2026-03-03T00:00:00+01:00" },
	/* ten years, as far as a walk goes */
	{ BERLIN, ALL_WEEK, NULL, "2026-03-02T10:00:00", "3650d", TRUE, "2036-02-28T10:00:00+01:00" },
	{ BERLIN, ALL_WEEK, NULL, "2026-03-02T10:00:00", "3650d", FALSE, "2036-02-28T10:00:00+01:00" },
	{ BERLIN, ALL_WEEK, NULL, "2026-03-02T10:00:00", "87600h", TRUE, "2036-02-28T10:00:00+01:00" },
	{ BERLIN, ALL_WEEK, NULL, "2026-03-02T10:00:00", "87600h", FALSE,
	  "2036-02-28T10:00:00+01:00" },
	{ BERLIN, ALL_WEEK, NULL, "2026-03-02T10:00:00", "5256000m", TRUE,
	  "2036-02-28T10:00:00+01:00" },
	/* and past it: no end */
	{ BERLIN, OFFICE, NULL, "2026-03-02T10:00:00", "3650d", TRUE, "-1" },
	{ BERLIN, "sun 09:00-10:00", NULL, "2026-03-02T10:00:00", "87600h", TRUE, "-1" },
	{ BERLIN, "sun 09:00-10:00", NULL, "2026-03-02T10:00:00", "3650d", TRUE, "-1" },
};

static void
test_add(gconstpointer data)
{
	guint i = GPOINTER_TO_UINT(data);
	g_autoptr(MrCalendar) cal = calendar(add_cases[i].zone, add_cases[i].hours,
					     add_cases[i].holidays);
	MrDuration d = duration(add_cases[i].duration);
	gint64 start = at(add_cases[i].zone, add_cases[i].start);
	gint64 end = mr_calendar_add(cal, start, &d, add_cases[i].business);
	g_autofree char *got = shown(add_cases[i].zone, end);

	g_assert_cmpstr(got, ==, add_cases[i].want);
}

/* Clock days are wall-clock days: 23 and 25 hours across the changes. */
static void
test_clock_days(void)
{
	g_autoptr(MrCalendar) cal = calendar(BERLIN, OFFICE, NULL);
	MrDuration day = duration("1d");
	gint64 march = at(BERLIN, "2027-03-27T12:00:00");
	gint64 october = at(BERLIN, "2027-10-30T12:00:00");

	g_assert_cmpint(mr_calendar_add(cal, march, &day, FALSE) - march, ==, 23 * 3600);
	g_assert_cmpint(mr_calendar_add(cal, october, &day, FALSE) - october, ==, 25 * 3600);
	/* elsewhere a day is 24 hours */
	g_assert_cmpint(mr_calendar_add(cal, march - 7 * 86400, &day, FALSE) - (march - 7 * 86400),
			==, 24 * 3600);
}

/* ---- mr_calendar_is_working ---- */

static const struct {
	const char *zone;
	const char *hours;
	const char *const *holidays;
	const char *t;
	gboolean want;
} working_cases[] = {
	{ BERLIN, OFFICE, xmas, "2026-03-02T08:59:59", FALSE },
	{ BERLIN, OFFICE, xmas, "2026-03-02T09:00:00", TRUE },
	{ BERLIN, OFFICE, xmas, "2026-03-02T16:59:59", TRUE },
	{ BERLIN, OFFICE, xmas, "2026-03-02T17:00:00", FALSE },
	{ BERLIN, OFFICE, xmas, "2026-03-07T10:00:00", FALSE },
	{ BERLIN, OFFICE, xmas, "2026-12-23T10:00:00", TRUE },
	{ BERLIN, OFFICE, xmas, "2026-12-24T10:00:00", FALSE },
	{ BERLIN, OFFICE, xmas, "2026-12-25T10:00:00", FALSE },
	{ BERLIN, OFFICE, xmas, "2026-12-28T10:00:00", TRUE },
	/* the zone's wall clock, not UTC's */
	{ BERLIN, OFFICE, NULL, "2026-03-02T08:30:00Z", TRUE },
	{ BERLIN, OFFICE, NULL, "2026-03-02T16:30:00Z", FALSE },
	{ "Asia/Kolkata", OFFICE, NULL, "2026-03-02T03:29:59Z", FALSE },
	{ "Asia/Kolkata", OFFICE, NULL, "2026-03-02T03:30:00Z", TRUE },
	{ "Asia/Kolkata", OFFICE, NULL, "2026-03-02T11:29:59Z", TRUE },
	{ "Asia/Kolkata", OFFICE, NULL, "2026-03-02T11:30:00Z", FALSE },
	/* split days */
	{ BERLIN, SPLIT, NULL, "2026-03-02T11:59:59", TRUE },
	{ BERLIN, SPLIT, NULL, "2026-03-02T12:00:00", FALSE },
	{ BERLIN, SPLIT, NULL, "2026-03-02T12:59:59", FALSE },
	{ BERLIN, SPLIT, NULL, "2026-03-02T13:00:00", TRUE },
	/* 24:00 */
	{ BERLIN, "mon 22:00-24:00", NULL, "2026-03-02T21:59:59", FALSE },
	{ BERLIN, "mon 22:00-24:00", NULL, "2026-03-02T23:59:59", TRUE },
	{ BERLIN, "mon 22:00-24:00", NULL, "2026-03-03T00:00:00", FALSE },
	{ BERLIN, "mon 22:00-24:00, tue 00:00-01:00", NULL, "2026-03-03T00:00:00", TRUE },
	{ BERLIN, "mon 22:00-24:00, tue 00:00-01:00", NULL, "2026-03-03T00:59:59", TRUE },
	{ BERLIN, "mon 22:00-24:00, tue 00:00-01:00", NULL, "2026-03-03T01:00:00", FALSE },
	/* the March change: 02:00-03:00 does not exist that day */
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-03-28T01:59:59+01:00", FALSE },
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-03-28T03:00:00+02:00", FALSE },
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-04-04T02:30:00+02:00", TRUE },
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-03-28T00:59:59+01:00", FALSE },
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-03-28T01:59:59+01:00", TRUE },
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-03-28T03:00:00+02:00", TRUE },
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-03-28T03:59:59+02:00", TRUE },
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-03-28T04:00:00+02:00", FALSE },
	/* the October change: 02:00-03:00 is the second, CET */
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-10-31T02:30:00+02:00", FALSE },
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-10-31T02:00:00+01:00", TRUE },
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-10-31T02:59:59+01:00", TRUE },
	{ BERLIN, "sun 02:00-03:00", NULL, "2027-10-31T03:00:00+01:00", FALSE },
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-10-31T02:30:00+02:00", TRUE },
	{ BERLIN, "sun 01:00-04:00", NULL, "2027-10-31T02:30:00+01:00", TRUE },
};

static void
test_is_working(gconstpointer data)
{
	guint i = GPOINTER_TO_UINT(data);
	g_autoptr(MrCalendar) cal = calendar(working_cases[i].zone, working_cases[i].hours,
					     working_cases[i].holidays);

	g_assert_cmpint(mr_calendar_is_working(cal, at(working_cases[i].zone, working_cases[i].t)),
			==, working_cases[i].want);
}

/* ---- working hours: parsed, written canonically, read back ---- */

static const struct {
	const char *hours;
	const char *want;
} hours_cases[] = {
	{ "mon-fri 09:00-17:00", "mon-fri 09:00-17:00" },
	{ "  mon-fri   09:00-17:00 ,sat 10:00-12:00  ", "mon-fri 09:00-17:00, sat 10:00-12:00" },
	{ "mon-fri 09:00-17:00,sat 10:00-12:00", "mon-fri 09:00-17:00, sat 10:00-12:00" },
	{ "mon-thu 08:00-12:00 13:00-17:00, fri 08:00-12:00",
	  "mon-thu 08:00-12:00 13:00-17:00, fri 08:00-12:00" },
	{ "fri-mon 10:00-14:00", "mon 10:00-14:00, fri-sun 10:00-14:00" },
	{ "tue-mon 09:00-17:00", "mon-sun 09:00-17:00" },
	{ "sun-sat 09:00-17:00", "mon-sun 09:00-17:00" },
	{ "sat-sun 09:00-17:00, mon-fri 09:00-17:00", "mon-sun 09:00-17:00" },
	{ "mon 13:00-17:00 09:00-12:00", "mon 09:00-12:00 13:00-17:00" },
	{ "mon 09:00-12:00 12:00-17:00", "mon 09:00-17:00" },
	{ "mon 09:00-12:00, mon 13:00-17:00, tue 13:00-17:00 09:00-12:00",
	  "mon-tue 09:00-12:00 13:00-17:00" },
	{ "mon 09:00-17:00, wed 09:00-17:00", "mon 09:00-17:00, wed 09:00-17:00" },
	{ "mon-sun 09:00-17:00, sat-sun 18:00-19:00",
	  "mon-fri 09:00-17:00, sat-sun 09:00-17:00 18:00-19:00" },
	{ "sun 00:00-24:00", "sun 00:00-24:00" },
	{ "mon 22:00-24:00, tue 00:00-01:00", "mon 22:00-24:00, tue 00:00-01:00" },
	{ "sat 23:59-24:00", "sat 23:59-24:00" },
	{ "mon 00:00-01:00 01:00-02:00 02:00-03:00 03:00-04:00 04:00-05:00 05:00-06:00 "
	  "06:00-07:00 07:00-08:00", "mon 00:00-08:00" },
	{ "wed 08:00-08:01 09:00-09:01 10:00-10:01 11:00-11:01 12:00-12:01 13:00-13:01 "
	  "14:00-14:01 15:00-15:01",
	  "wed 08:00-08:01 09:00-09:01 10:00-10:01 11:00-11:01 12:00-12:01 13:00-13:01 "
	  "14:00-14:01 15:00-15:01" },
};

static void
test_hours(gconstpointer data)
{
	guint i = GPOINTER_TO_UINT(data);
	g_autoptr(MrCalendar) cal = calendar(BERLIN, hours_cases[i].hours, NULL);
	g_autofree char *text = mr_calendar_hours_text(cal);
	g_autoptr(MrCalendar) again = calendar(BERLIN, text, NULL);
	g_autofree char *text_again = mr_calendar_hours_text(again);
	gint64 monday = at(BERLIN, "2026-03-02T00:00:00");

	g_assert_cmpstr(text, ==, hours_cases[i].want);
	g_assert_cmpstr(text_again, ==, text);
	/* the same working time, a week in minutes */
	for (gint64 t = monday; t < monday + 7 * 86400; t += UNDER_VALGRIND ? 3600 : 60)
		g_assert_cmpint(mr_calendar_is_working(cal, t), ==, mr_calendar_is_working(again, t));
}

/* ---- what mr_calendar_new() refuses ---- */

static const char *const bad_date[] = { "2026-12-24", "2026-02-30", NULL };
static const char *const bad_short[] = { "2026-2-3", NULL };
static const char *const bad_year[] = { "26-12-24", NULL };
static const char *const bad_space[] = { "2026-12-24 ", NULL };
static const char *const bad_slash[] = { "2026/12/24", NULL };
static const char *const bad_empty[] = { "", NULL };
static const char *const bad_zero[] = { "0000-01-01", NULL };
static const char *const bad_tail[] = { "2026-12-24x", NULL };
static const char *const bad_month[] = { "2026-13-01", NULL };
static const char *const bad_month0[] = { "2026-00-10", NULL };
static const char *const bad_sign[] = { "+026-12-24", NULL };
static const char *const bad_leap[] = { "2027-02-29", NULL };
static const char *const bad_control[] = { "2026-12-2\x1b", NULL };

static const struct {
	const char *zone;
	const char *hours;
	const char *const *holidays;
	MrCalendarError code;
	const char *message; /* a part of the message */
} error_cases[] = {
	{ "Mars/Olympus", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE,
	  "time zone \"Mars/Olympus\": not in this machine's time zone database" },
	{ "Europe/Berln", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not in this machine's" },
	{ "europe/berlin", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE,
	  "time zone \"europe/berlin\": not an IANA time zone name" },
	{ "", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "time zone \"\": not an IANA" },
	{ "/etc/localtime", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "../../etc/passwd", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "Europe/../Berlin", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "Europe//Berlin", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "Europe/Berlin/", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "Europe/Berlin ", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "CET-1CEST,M3.5.0,M10.5.0/3", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "leapseconds", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "localtime", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "zone.tab", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not an IANA" },
	{ "Europe", OFFICE, NULL, MR_CALENDAR_ERROR_ZONE, "not in this machine's" },
	{ "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", OFFICE, NULL,
	  MR_CALENDAR_ERROR_ZONE, "\"Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\": not an IANA" },
	{ BERLIN, "", NULL, MR_CALENDAR_ERROR_HOURS, "working hours: none given" },
	{ BERLIN, "   ", NULL, MR_CALENDAR_ERROR_HOURS, "working hours: none given" },
	{ BERLIN, "mon-fry 09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "working hours: \"mon-fry\": not a day (mon tue wed thu fri sat sun)" },
	{ BERLIN, "Mon-Fri 09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS, "\"Mon-Fri\": not a day" },
	{ BERLIN, "monday 09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS, "\"monday\": not a day" },
	{ BERLIN, "mon - fri 09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"-\": not a time range HH:MM-HH:MM" },
	{ BERLIN, "09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS, "\"09:00-17:00\": not a day" },
	{ BERLIN, "mon-fri", NULL, MR_CALENDAR_ERROR_HOURS,
	  "working hours: \"mon-fri\": no time range HH:MM-HH:MM" },
	{ BERLIN, "mon-fri, sat 10:00-12:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"mon-fri\": no time range" },
	{ BERLIN, "mon-fri 9:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"9:00-17:00\": not a time range HH:MM-HH:MM" },
	{ BERLIN, "mon-fri 09:00-17:60", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"09:00-17:60\": not a time range (00:00 to 23:59, 24:00 as its end)" },
	{ BERLIN, "mon-fri 24:00-24:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"24:00-24:00\": not a time range (00:00" },
	{ BERLIN, "mon-fri 09:00-24:01", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"09:00-24:01\": not a time range (00:00" },
	{ BERLIN, "mon-fri 0a:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS, "not a time range (00:00" },
	{ BERLIN, "mon-fri 17:00-09:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"17:00-09:00\": the start is not before the end" },
	{ BERLIN, "mon-fri 09:00-09:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"09:00-09:00\": the start is not before the end" },
	{ BERLIN, "mon-fri 09:00-12:00 11:00-13:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"11:00-13:00\": overlaps 09:00-12:00 on mon" },
	{ BERLIN, "mon-fri 09:00-17:00, fri 16:00-18:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"16:00-18:00\": overlaps 09:00-17:00 on fri" },
	{ BERLIN, "mon 09:00-10:00 09:00-10:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"09:00-10:00\": overlaps 09:00-10:00 on mon" },
	{ BERLIN, "mon-fri 09:00-17:00,", NULL, MR_CALENDAR_ERROR_HOURS,
	  "working hours: a comma without days and times after it" },
	{ BERLIN, ", mon 09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS, "a comma without days" },
	{ BERLIN, "mon 09:00-12:00,, tue 09:00-12:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "a comma without days" },
	{ BERLIN, "mon 09:00-17:00 tue 09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"tue\": a day where a time range belongs (a comma missing?)" },
	{ BERLIN, "mon 09:00-17:00 tue-fri 09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"tue-fri\": a day where a time range belongs" },
	{ BERLIN, "mon\t09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"mon\\x0909:00-17:00\": not a day" },
	{ BERLIN, "mon 09:00-17:00\n", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"09:00-17:00\\x0a\": not a time range HH:MM-HH:MM" },
	{ BERLIN, "mon-mon 09:00-17:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"mon-mon\": a range of one day; write the day alone" },
	{ BERLIN, "mon 09:00-17:00;", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"09:00-17:00;\": not a time range HH:MM-HH:MM" },
	{ BERLIN, "mon 09:00 -17:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"09:00\": not a time range HH:MM-HH:MM" },
	{ BERLIN, "mon 09:00–17:00", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"09:00–17:00\": not a time range HH:MM-HH:MM" },
	{ BERLIN, "mon 00:00-00:01 01:00-01:01 02:00-02:01 03:00-03:01 04:00-04:01 05:00-05:01 "
		  "06:00-06:01 07:00-07:01 08:00-08:01", NULL, MR_CALENDAR_ERROR_HOURS,
	  "\"08:00-08:01\": more than 8 time ranges on mon" },
	{ BERLIN, "sun 00:00-01:00, mon-sun 01:00-02:00, sun 02:00-03:00 03:00-04:00 04:00-05:00, "
		  "sun 05:00-06:00 06:00-07:00 07:00-08:00 08:00-09:00", NULL,
	  MR_CALENDAR_ERROR_HOURS, "\"08:00-09:00\": more than 8 time ranges on sun" },
	{ BERLIN, OFFICE, bad_date, MR_CALENDAR_ERROR_HOLIDAY,
	  "holiday \"2026-02-30\": not a date YYYY-MM-DD" },
	{ BERLIN, OFFICE, bad_short, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"2026-2-3\": not a date" },
	{ BERLIN, OFFICE, bad_year, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"26-12-24\": not a date" },
	{ BERLIN, OFFICE, bad_space, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"2026-12-24 \"" },
	{ BERLIN, OFFICE, bad_slash, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"2026/12/24\"" },
	{ BERLIN, OFFICE, bad_empty, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"\": not a date" },
	{ BERLIN, OFFICE, bad_zero, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"0000-01-01\"" },
	{ BERLIN, OFFICE, bad_tail, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"2026-12-24x\"" },
	{ BERLIN, OFFICE, bad_month, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"2026-13-01\"" },
	{ BERLIN, OFFICE, bad_month0, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"2026-00-10\"" },
	{ BERLIN, OFFICE, bad_sign, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"+026-12-24\"" },
	{ BERLIN, OFFICE, bad_leap, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"2027-02-29\"" },
	{ BERLIN, OFFICE, bad_control, MR_CALENDAR_ERROR_HOLIDAY, "holiday \"2026-12-2\\x1b\"" },
};

static void
test_errors(gconstpointer data)
{
	guint i = GPOINTER_TO_UINT(data);
	g_autoptr(GError) error = NULL;
	g_autoptr(MrCalendar) cal = mr_calendar_new(error_cases[i].zone, error_cases[i].hours,
						    error_cases[i].holidays, &error);

	g_assert_null(cal);
	g_assert_error(error, MR_CALENDAR_ERROR, (gint)error_cases[i].code);
	assert_holds(error->message, error_cases[i].message);
}

/* What is accepted around the refusals: zones GLib reads, leap days,
 * holidays twice, no holidays, a very long text of spaces refused. */
static void
test_accepted(void)
{
	static const char *const zones[] = { "UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires",
					     "America/Port-au-Prince", "EST5EDT", NULL };
	static const char *const leap[] = { "2028-02-29", "2028-02-29", NULL };
	static const char *const none[] = { NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(MrCalendar) long_cal = NULL;
	g_autofree char *spaces = g_strnfill(5000, ' ');
	g_autofree char *long_hours = g_strconcat(OFFICE, spaces, NULL);
	g_autofree char *fits = g_strconcat(OFFICE, spaces + 5000 - (4096 - strlen(OFFICE)), NULL);

	for (guint i = 0; zones[i] != NULL; i++)
		mr_calendar_free(calendar(zones[i], OFFICE, NULL));
	mr_calendar_free(calendar(BERLIN, OFFICE, leap));
	mr_calendar_free(calendar(BERLIN, OFFICE, none));
	g_assert_cmpuint(strlen(fits), ==, 4096);
	mr_calendar_free(calendar(BERLIN, fits, NULL));
	long_cal = mr_calendar_new(BERLIN, long_hours, NULL, &error);
	g_assert_null(long_cal);
	g_assert_error(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_HOURS);
	g_assert_cmpstr(error->message, ==, "working hours: longer than 4096 bytes");
}

/* ---- durations ---- */

static const char *const duration_good[] = {
	"1m", "90m", "4h", "3d", "10h", "100d", "5256000m", "87600h", "3650d",
};

static void
test_duration_good(gconstpointer data)
{
	const char *text = duration_good[GPOINTER_TO_UINT(data)];
	MrDuration d = duration(text);
	g_autofree char *back = mr_duration_format(&d);

	g_assert_cmpint(d.amount, >=, 1);
	g_assert_cmpstr(back, ==, text);
}

static const struct {
	const char *text;
	const char *message;
} duration_bad[] = {
	{ "", "duration \"\": not a whole number and a unit m, h or d (\"90m\", \"4h\", \"3d\")" },
	{ "0h", "duration \"0h\": not at least 1" },
	{ "0m", "duration \"0m\": not at least 1" },
	{ "-1h", "duration \"-1h\": not a whole number and a unit" },
	{ "+1h", "duration \"+1h\": not a whole number" },
	{ "1.5h", "duration \"1.5h\": not a whole number" },
	{ "4 h", "duration \"4 h\": not a whole number" },
	{ " 4h", "duration \" 4h\": not a whole number" },
	{ "4h ", "duration \"4h \": not a whole number" },
	{ "4h\n", "duration \"4h\\x0a\": not a whole number" },
	{ "4H", "duration \"4H\": not a whole number and a unit m, h or d" },
	{ "h", "duration \"h\": not a whole number" },
	{ "4", "duration \"4\": not a whole number" },
	{ "4hh", "duration \"4hh\": not a whole number" },
	{ "4w", "duration \"4w\": not a whole number" },
	{ "1e3m", "duration \"1e3m\": not a whole number" },
	{ "\xd9\xa3h", "not a whole number" },
	{ "090m", "duration \"090m\": a number with a leading zero" },
	{ "00h", "duration \"00h\": a number with a leading zero" },
	{ "99999999999999999999d",
	  "duration \"99999999999999999999d\": more than ten years (at most 3650d)" },
	{ "3651d", "duration \"3651d\": more than ten years (at most 3650d)" },
	{ "87601h", "duration \"87601h\": more than ten years (at most 87600h)" },
	{ "5256001m", "duration \"5256001m\": more than ten years (at most 5256000m)" },
	{ "9999999999m", "more than ten years (at most 5256000m)" },
};

static void
test_duration_bad(gconstpointer data)
{
	guint i = GPOINTER_TO_UINT(data);
	g_autoptr(GError) error = NULL;
	MrDuration d = { .amount = 7, .unit = MR_DURATION_HOURS };

	g_assert_false(mr_duration_parse(duration_bad[i].text, &d, &error));
	g_assert_error(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_DURATION);
	assert_holds(error->message, duration_bad[i].message);
	g_assert_cmpint(d.amount, ==, 7);
}

static void
test_duration_format(void)
{
	static const struct {
		MrDuration d;
		const char *want;
	} cases[] = {
		{ { 1, MR_DURATION_MINUTES }, "1m" },
		{ { 4, MR_DURATION_HOURS }, "4h" },
		{ { 3650, MR_DURATION_DAYS }, "3650d" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *got = mr_duration_format(&cases[i].d);

		g_assert_cmpstr(got, ==, cases[i].want);
	}
}

/* ---- limits ---- */

/* @n dates from @first on, YYYY-MM-DD, NULL-terminated. */
static char **
dates(const char *first, guint n)
{
	GDate date;
	char **out = g_new0(char *, n + 1);
	int y, m, d;

	g_assert_cmpint(sscanf(first, "%d-%d-%d", &y, &m, &d), ==, 3);
	g_date_clear(&date, 1);
	g_date_set_dmy(&date, (GDateDay)d, (GDateMonth)m, (GDateYear)y);
	for (guint i = 0; i < n; i++) {
		out[i] = g_strdup_printf("%04u-%02u-%02u", g_date_get_year(&date),
					 g_date_get_month(&date), g_date_get_day(&date));
		g_date_add_days(&date, 1);
	}
	return out;
}

/* Every day a holiday for twenty years: no end, and found quickly. */
static void
test_all_holidays(void)
{
	g_auto(GStrv) holidays = dates("2026-01-01", 20 * 366);
	g_autoptr(MrCalendar) cal = calendar(BERLIN, OFFICE, (const char *const *)holidays);
	gint64 start = at(BERLIN, "2026-03-02T10:00:00");
	gint64 began = g_get_monotonic_time();
	MrDuration minute = duration("1m"), day = duration("1d"), most = duration("87600h");

	g_assert_cmpint(mr_calendar_add(cal, start, &minute, TRUE), ==, -1);
	g_assert_cmpint(mr_calendar_add(cal, start, &day, TRUE), ==, -1);
	g_assert_cmpint(mr_calendar_add(cal, start, &most, TRUE), ==, -1);
	g_assert_false(mr_calendar_is_working(cal, start));
	g_assert_cmpint(g_get_monotonic_time() - began, <, 2 * G_USEC_PER_SEC);
	/* the clock does not care */
	g_assert_cmpint(mr_calendar_add(cal, start, &day, FALSE), ==, start + 86400);
}

/* A walk reaches MR_CALENDAR_MAX_DAYS after the start's date, no further:
 * holidays from 2026-03-02 on, the first working day after them 3660 or
 * 3661 days after the start's date. */
static void
test_max_days(void)
{
	g_auto(GStrv) reach_days = dates("2026-03-02", MR_CALENDAR_MAX_DAYS - 1);
	g_auto(GStrv) short_of = dates("2026-03-02", MR_CALENDAR_MAX_DAYS);
	g_auto(GStrv) past = dates("2026-03-02", MR_CALENDAR_MAX_DAYS + 1);
	g_autoptr(MrCalendar) reach_cal = calendar("UTC", "mon-sun 09:00-17:00",
						   (const char *const *)reach_days);
	g_autoptr(MrCalendar) reach = calendar("UTC", "mon-sun 09:00-17:00",
					       (const char *const *)short_of);
	g_autoptr(MrCalendar) beyond = calendar("UTC", "mon-sun 09:00-17:00",
						(const char *const *)past);
	g_autofree char *hour_end = NULL;
	g_autofree char *day_end = NULL;
	MrDuration hour = duration("1h"), day = duration("1d");
	gint64 start = at("UTC", "2026-03-02T10:00:00Z");
	gint64 before = at("UTC", "2026-03-01T10:00:00Z");

	/* from 09:00 on the 3660th day after the start's */
	hour_end = shown("UTC", mr_calendar_add(reach, start, &hour, TRUE));
	g_assert_cmpstr(hour_end, ==, "2036-03-09T10:00:00+00:00");
	g_assert_cmpint(mr_calendar_add(beyond, start, &hour, TRUE), ==, -1);
	/* a working day from 2026-03-01, a working day itself */
	day_end = shown("UTC", mr_calendar_add(reach_cal, before, &day, TRUE));
	g_assert_cmpstr(day_end, ==, "2036-03-08T10:00:00+00:00");
	g_assert_cmpint(mr_calendar_add(reach, before, &day, TRUE), ==, -1);
	g_assert_cmpint(mr_calendar_add(beyond, before, &day, TRUE), ==, -1);
}

/* Whatever MrDuration or start the caller hands over. */
static void
test_out_of_bounds(void)
{
	g_autoptr(MrCalendar) cal = calendar(BERLIN, ALL_WEEK, NULL);
	static const MrDuration bad[] = {
		{ 0, MR_DURATION_HOURS },
		{ -1, MR_DURATION_MINUTES },
		{ G_MININT64, MR_DURATION_DAYS },
		{ G_MAXINT64, MR_DURATION_MINUTES },
		{ G_MAXINT64, MR_DURATION_DAYS },
		{ 3651, MR_DURATION_DAYS },
		{ 87601, MR_DURATION_HOURS },
		{ 5256001, MR_DURATION_MINUTES },
		{ 1, (MrDurationUnit)7 },
		{ 1, (MrDurationUnit)-1 },
	};
	static const gint64 bad_starts[] = { G_MININT64, G_MAXINT64, UNIX_MIN - 1, UNIX_MAX + 1 };
	MrDuration hour = duration("1h"), day = duration("1d"), minute = duration("1m");
	gint64 start = at(BERLIN, "2026-03-02T10:00:00");

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_cmpint(mr_calendar_add(cal, start, &bad[i], TRUE), ==, -1);
		g_assert_cmpint(mr_calendar_add(cal, start, &bad[i], FALSE), ==, -1);
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad_starts); i++) {
		g_assert_false(mr_calendar_is_working(cal, bad_starts[i]));
		g_assert_cmpint(mr_calendar_add(cal, bad_starts[i], &hour, TRUE), ==, -1);
		g_assert_cmpint(mr_calendar_add(cal, bad_starts[i], &hour, FALSE), ==, -1);
		g_assert_cmpint(mr_calendar_add(cal, bad_starts[i], &day, TRUE), ==, -1);
		g_assert_cmpint(mr_calendar_add(cal, bad_starts[i], &day, FALSE), ==, -1);
	}
	/* at the end of what GDateTime holds */
	g_assert_cmpint(mr_calendar_add(cal, UNIX_MAX, &minute, FALSE), ==, -1);
	g_assert_cmpint(mr_calendar_add(cal, UNIX_MAX - 60, &minute, FALSE), ==, UNIX_MAX);
	g_assert_cmpint(mr_calendar_add(cal, UNIX_MAX - 86400, &day, FALSE), ==, -1);
	g_assert_cmpint(mr_calendar_add(cal, UNIX_MAX - 86400, &hour, TRUE), ==, -1);
	g_assert_false(mr_calendar_is_working(cal, UNIX_MAX));
	g_assert_cmpint(mr_calendar_add(cal, UNIX_MIN, &hour, FALSE), ==, UNIX_MIN + 3600);
}

/* ---- properties, from random starts ---- */

/* Calendars with daylight-saving changes, a wrap past midnight, a zone
 * off the hour, holidays and ranges in the changing hours. */
static const struct {
	const char *zone;
	const char *hours;
} random_calendars[] = {
	{ BERLIN, "mon-thu 08:00-12:00 13:00-17:00, fri 08:00-13:30, sat 22:00-24:00, "
		  "sun 00:00-02:00 02:30-03:15" },
	{ "America/New_York", "mon-fri 07:45-16:15, sun 01:30-02:30 03:00-04:00" },
	{ "Asia/Kolkata", "mon 09:00-17:00, wed-sat 10:00-18:00" },
	{ "Australia/Lord_Howe", "mon-sun 01:00-03:00 09:00-17:00" },
};

static const char *const random_holidays[] = { "2026-12-24", "2026-12-25", "2027-01-01",
					       "2027-03-29", "2027-11-01", "2028-03-27", NULL };

/* A random second of 2026 to 2028, or of a minute when @on_minute. */
static gint64
random_start(gboolean on_minute)
{
	gint64 first = at("UTC", "2026-01-01T00:00:00Z");
	gint64 t = first + (gint64)(g_test_rand_double() * 3 * 365 * 86400);

	return on_minute ? t - (t - first) % 60 : t;
}

/* Hours of working time add up: (s + h1) + h2 is s + (h1 + h2). */
static void
test_property_hours(gconstpointer data)
{
	guint c = GPOINTER_TO_UINT(data);
	g_autoptr(MrCalendar) cal = calendar(random_calendars[c].zone, random_calendars[c].hours,
					     random_holidays);

	for (int i = 0; i < RANDOM_STARTS(300); i++) {
		gint64 s = random_start(FALSE);
		MrDuration h1 = { g_test_rand_int_range(1, 80), MR_DURATION_HOURS };
		MrDuration h2 = { g_test_rand_int_range(1, 80), MR_DURATION_HOURS };
		MrDuration sum = { h1.amount + h2.amount, MR_DURATION_HOURS };
		gint64 first = mr_calendar_add(cal, s, &h1, TRUE);
		gint64 both = mr_calendar_add(cal, s, &sum, TRUE);

		g_assert_cmpint(first, >, s);
		g_assert_cmpint(mr_calendar_add(cal, first, &h2, TRUE), ==, both);
	}
}

/* Minutes of working time end in working time or at a range's end, and
 * there are exactly that many working minutes between start and end. */
static void
test_property_minutes(gconstpointer data)
{
	guint c = GPOINTER_TO_UINT(data);
	g_autoptr(MrCalendar) cal = calendar(random_calendars[c].zone, random_calendars[c].hours,
					     random_holidays);

	for (int i = 0; i < RANDOM_STARTS(200); i++) {
		gint64 s = random_start(TRUE);
		MrDuration m = { g_test_rand_int_range(1, 600), MR_DURATION_MINUTES };
		gint64 end = mr_calendar_add(cal, s, &m, TRUE);

		/* the second before the end is working time: the end is
		 * working time too, or a range's end */
		g_assert_cmpint(end, >, s);
		g_assert_true(mr_calendar_is_working(cal, end - 1));
		/* count them on a fifth of the starts: a minute at a time */
		if (i % 5 == 0) {
			gint64 n = 0;

			for (gint64 t = s; t < end; t += 60)
				n += mr_calendar_is_working(cal, t);
			g_assert_cmpint(n, ==, m.amount);
		}
	}
}

/* A working day ends in working time or at a range's end, and on a later
 * date than it started. */
static void
test_property_days(gconstpointer data)
{
	guint c = GPOINTER_TO_UINT(data);
	g_autoptr(MrCalendar) cal = calendar(random_calendars[c].zone, random_calendars[c].hours,
					     random_holidays);

	for (int i = 0; i < RANDOM_STARTS(300); i++) {
		gint64 s = random_start(FALSE);
		MrDuration d = { g_test_rand_int_range(1, 10), MR_DURATION_DAYS };
		MrDuration one = { 1, MR_DURATION_DAYS };
		gint64 end = mr_calendar_add(cal, s, &d, TRUE);

		g_assert_cmpint(end, >, s);
		g_assert_true(mr_calendar_is_working(cal, end) ||
			      mr_calendar_is_working(cal, end - 1));
		g_assert_cmpint(end, >=, mr_calendar_add(cal, s, &one, TRUE));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	mr_test_add_table("/mailroom/act/calendar/add", G_N_ELEMENTS(add_cases), test_add);
	g_test_add_func("/mailroom/act/calendar/clock-days", test_clock_days);
	mr_test_add_table("/mailroom/act/calendar/is-working", G_N_ELEMENTS(working_cases),
			  test_is_working);
	mr_test_add_table("/mailroom/act/calendar/hours", G_N_ELEMENTS(hours_cases), test_hours);
	mr_test_add_table("/mailroom/act/calendar/errors", G_N_ELEMENTS(error_cases), test_errors);
	g_test_add_func("/mailroom/act/calendar/accepted", test_accepted);
	mr_test_add_table("/mailroom/act/calendar/duration/good", G_N_ELEMENTS(duration_good),
			  test_duration_good);
	mr_test_add_table("/mailroom/act/calendar/duration/bad", G_N_ELEMENTS(duration_bad),
			  test_duration_bad);
	g_test_add_func("/mailroom/act/calendar/duration/format", test_duration_format);
	g_test_add_func("/mailroom/act/calendar/limits/all-holidays", test_all_holidays);
	g_test_add_func("/mailroom/act/calendar/limits/max-days", test_max_days);
	g_test_add_func("/mailroom/act/calendar/limits/out-of-bounds", test_out_of_bounds);
	mr_test_add_table("/mailroom/act/calendar/property/hours", G_N_ELEMENTS(random_calendars),
			  test_property_hours);
	mr_test_add_table("/mailroom/act/calendar/property/minutes",
			  G_N_ELEMENTS(random_calendars), test_property_minutes);
	mr_test_add_table("/mailroom/act/calendar/property/days", G_N_ELEMENTS(random_calendars),
			  test_property_days);
	return g_test_run();
}
