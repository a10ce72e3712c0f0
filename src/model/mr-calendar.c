/* mr-calendar.c - business hours and durations in them (see
 * mr-calendar.h).
 *
 * Act stage, pure.  A calendar is a week of minute ranges, a time zone
 * and a set of holidays; every question is answered by walking local
 * dates one at a time, turning each range of a date into an interval of
 * Unix seconds with g_date_time_new() in the calendar's zone. */
#define G_LOG_DOMAIN "mailroom-calendar"

#include <stdlib.h>
#include <string.h>

#include "mailroom/mr-calendar.h"
#include "mailroom/mr-text.h"

G_DEFINE_QUARK(mr-calendar-error-quark, mr_calendar_error)

#define WEEK_DAYS 7
#define DAY_MINUTES (24 * 60)
#define DAY_SECONDS (24 * 60 * 60)
/* Time ranges of one day, as written (before touching ranges are joined). */
#define MAX_RANGES 8
/* The longest working hours text read; the longest canonical one is about
 * 720 bytes (seven groups of eight ranges). */
#define HOURS_MAX_LEN 4096
/* The longest zone name read; IANA's longest is 32 bytes. */
#define ZONE_MAX_LEN 64
/* How much of a bad part an error message shows. */
#define SHOWN_MAX 40
/* What GDateTime holds: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
#define UNIX_MIN G_GINT64_CONSTANT(-62135596800)
#define UNIX_MAX G_GINT64_CONSTANT(253402300799)

static const char *const day_names[WEEK_DAYS] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

/* A working time range of a day: minutes after midnight, start < end,
 * end at most DAY_MINUTES ("24:00"). */
typedef struct {
	guint16 start;
	guint16 end;
} Range;

/* The ranges of one weekday: sorted, neither overlapping nor touching
 * once the calendar is made. */
typedef struct {
	guint n;
	Range r[MAX_RANGES];
} Day;

struct _MrCalendar {
	GTimeZone *tz;
	Day week[WEEK_DAYS];  /* [0] is Monday */
	GHashTable *holidays; /* Julian day numbers (GDate), GUINT_TO_POINTER */
};

/* One range of one date in Unix seconds: [start, end). */
typedef struct {
	gint64 start;
	gint64 end;
} Interval;

void
mr_calendar_free(MrCalendar *cal)
{
	if (cal == NULL)
		return;
	g_clear_pointer(&cal->tz, g_time_zone_unref);
	g_clear_pointer(&cal->holidays, g_hash_table_unref);
	g_free(cal);
}

/* --- the zone ------------------------------------------------------------- */

/* Whether @zone is written like an IANA name: components of ASCII
 * letters, digits, '_', '-' and '+', each starting with a capital letter,
 * separated by single slashes.  GLib reads more than names -- an absolute
 * path, a POSIX TZ rule, "localtime", the zone database's own files such
 * as "leapseconds" (which it reports with a critical) -- and none of that
 * is a zone an administrator means. */
static gboolean
zone_name_valid(const char *zone)
{
	gboolean component_start = TRUE;
	gsize len = 0;

	for (const char *p = zone; *p != '\0'; p++, len++) {
		if (len >= ZONE_MAX_LEN)
			return FALSE;
		if (component_start) {
			if (!g_ascii_isupper(*p))
				return FALSE;
			component_start = FALSE;
		} else if (*p == '/') {
			component_start = TRUE;
		} else if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '+') {
			return FALSE;
		}
	}
	return len > 0 && !component_start;
}

static GTimeZone *
zone_new(const char *zone, GError **error)
{
	g_autofree char *shown = mr_text_shown(zone, SHOWN_MAX);
	GTimeZone *tz;

	if (!zone_name_valid(zone)) {
		g_set_error(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_ZONE,
			    "time zone \"%s\": not an IANA time zone name (\"Europe/Berlin\", \"UTC\")",
			    shown);
		return NULL;
	}
	/* NULL for a name GLib cannot read (since 2.68); never UTC instead. */
	tz = g_time_zone_new_identifier(zone);
	if (tz == NULL) {
		g_set_error(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_ZONE,
			    "time zone \"%s\": not in this machine's time zone database", shown);
		return NULL;
	}
	return tz;
}

/* --- the working hours ---------------------------------------------------- */

/* What mr_calendar_new() reads as working hours:
 *
 *   hours  = *SP group *(*SP "," *SP group) *SP
 *   group  = days 1*(1*SP range)
 *   days   = day / day "-" day          ; a range of two different days
 *   day    = "mon" / "tue" / "wed" / "thu" / "fri" / "sat" / "sun"
 *   range  = time "-" time              ; start before end
 *   time   = 2DIGIT ":" 2DIGIT          ; 00:00 to 23:59, or 24:00 as an end
 *
 * SP is the space character alone. */

static gboolean
hours_fail(GError **error, const char *part, gsize part_len, const char *what)
{
	g_autofree char *text = g_strndup(part, part_len);
	g_autofree char *shown = mr_text_shown(text, SHOWN_MAX);

	g_set_error(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_HOURS, "working hours: \"%s\": %s",
		    shown, what);
	return FALSE;
}

/* Returns the day of the three letters at @p (0 for "mon"), or -1. */
static int
day_read(const char *p, gsize len)
{
	if (len != 3)
		return -1;
	for (int d = 0; d < WEEK_DAYS; d++) {
		if (memcmp(p, day_names[d], 3) == 0)
			return d;
	}
	return -1;
}

/* Reads "mon" or "mon-fri" into the first and last day. */
static gboolean
days_read(const char *p, gsize len, int *first, int *last, GError **error)
{
	if (len == 3) {
		*first = *last = day_read(p, 3);
	} else if (len == 7 && p[3] == '-') {
		*first = day_read(p, 3);
		*last = day_read(p + 4, 3);
	} else {
		*first = *last = -1;
	}
	if (*first < 0 || *last < 0)
		return hours_fail(error, p, len, "not a day (mon tue wed thu fri sat sun)");
	if (len == 7 && *first == *last)
		return hours_fail(error, p, len, "a range of one day; write the day alone");
	return TRUE;
}

/* Reads "HH:MM" at @p into minutes after midnight, 0 to 24 * 60, or -1. */
static int
time_read(const char *p)
{
	int h, m;

	if (!g_ascii_isdigit(p[0]) || !g_ascii_isdigit(p[1]) || p[2] != ':' ||
	    !g_ascii_isdigit(p[3]) || !g_ascii_isdigit(p[4]))
		return -1;
	h = (p[0] - '0') * 10 + (p[1] - '0');
	m = (p[3] - '0') * 10 + (p[4] - '0');
	if (h == 24 && m == 0)
		return DAY_MINUTES;
	if (h > 23 || m > 59)
		return -1;
	return h * 60 + m;
}

static gboolean
range_read(const char *p, gsize len, Range *r, GError **error)
{
	int start, end;

	if (len != 11 || p[5] != '-') {
		if (day_read(p, len) >= 0 || (len == 7 && p[3] == '-' && day_read(p, 3) >= 0))
			return hours_fail(error, p, len,
					  "a day where a time range belongs (a comma missing?)");
		return hours_fail(error, p, len, "not a time range HH:MM-HH:MM");
	}
	start = time_read(p);
	end = time_read(p + 6);
	if (start < 0 || end < 0 || start == DAY_MINUTES)
		return hours_fail(error, p, len, "not a time range (00:00 to 23:59, 24:00 as its end)");
	if (start >= end)
		return hours_fail(error, p, len, "the start is not before the end");
	*r = (Range){ .start = (guint16)start, .end = (guint16)end };
	return TRUE;
}

static void
time_append(GString *s, guint minutes)
{
	g_string_append_printf(s, "%02u:%02u", minutes / 60, minutes % 60);
}

/* Adds @r, written as @p, to day @d of @week: no overlap, at most
 * MAX_RANGES a day. */
static gboolean
range_add(Day *week, int d, const Range *r, const char *p, gsize len, GError **error)
{
	Day *day = &week[d];

	for (guint i = 0; i < day->n; i++) {
		if (r->start < day->r[i].end && day->r[i].start < r->end) {
			g_autoptr(GString) what = g_string_new("overlaps ");

			time_append(what, day->r[i].start);
			g_string_append_c(what, '-');
			time_append(what, day->r[i].end);
			g_string_append_printf(what, " on %s", day_names[d]);
			return hours_fail(error, p, len, what->str);
		}
	}
	if (day->n == MAX_RANGES) {
		g_autofree char *what = g_strdup_printf("more than %d time ranges on %s",
							MAX_RANGES, day_names[d]);

		return hours_fail(error, p, len, what);
	}
	day->r[day->n++] = *r;
	return TRUE;
}

static int
range_compare(const void *a, const void *b)
{
	const Range *ra = a, *rb = b;

	return (int)ra->start - (int)rb->start;
}

/* Sorts each day's ranges and joins those that touch (09:00-12:00
 * 12:00-17:00 is 09:00-17:00): one week, one canonical form. */
static void
week_normalise(Day *week)
{
	for (int d = 0; d < WEEK_DAYS; d++) {
		Day *day = &week[d];
		guint n = 0;

		qsort(day->r, day->n, sizeof(day->r[0]), range_compare);
		for (guint i = 0; i < day->n; i++) {
			if (n > 0 && day->r[n - 1].end == day->r[i].start)
				day->r[n - 1].end = day->r[i].end;
			else
				day->r[n++] = day->r[i];
		}
		day->n = n;
	}
}

static gsize
token_len(const char *p)
{
	gsize n = 0;

	while (p[n] != '\0' && p[n] != ' ' && p[n] != ',')
		n++;
	return n;
}

static const char *
spaces_skip(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

static gboolean
hours_parse(const char *hours, Day *week, GError **error)
{
	const char *p;

	if (strnlen(hours, HOURS_MAX_LEN + 1) > HOURS_MAX_LEN) {
		g_set_error(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_HOURS,
			    "working hours: longer than %d bytes", HOURS_MAX_LEN);
		return FALSE;
	}
	p = spaces_skip(hours);
	if (*p == '\0') {
		g_set_error_literal(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_HOURS,
				    "working hours: none given (\"mon-fri 09:00-17:00\")");
		return FALSE;
	}
	for (;;) {
		gsize len = token_len(p);
		const char *days = p;
		gsize days_len = len;
		int first, last;
		guint n_ranges = 0;

		if (len == 0) {
			g_set_error_literal(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_HOURS,
					    "working hours: a comma without days and times after it");
			return FALSE;
		}
		if (!days_read(p, len, &first, &last, error))
			return FALSE;
		p = spaces_skip(p + len);
		while (*p != '\0' && *p != ',') {
			Range r;

			len = token_len(p);
			if (!range_read(p, len, &r, error))
				return FALSE;
			for (int d = first;; d = (d + 1) % WEEK_DAYS) {
				if (!range_add(week, d, &r, p, len, error))
					return FALSE;
				if (d == last)
					break;
			}
			n_ranges++;
			p = spaces_skip(p + len);
		}
		if (n_ranges == 0)
			return hours_fail(error, days, days_len, "no time range HH:MM-HH:MM");
		if (*p == '\0')
			break;
		p = spaces_skip(p + 1); /* the comma */
	}
	week_normalise(week);
	return TRUE;
}

static gboolean
day_equal(const Day *a, const Day *b)
{
	return a->n == b->n && memcmp(a->r, b->r, a->n * sizeof(a->r[0])) == 0;
}

char *
mr_calendar_hours_text(const MrCalendar *cal)
{
	g_autoptr(GString) s = g_string_new(NULL);
	int d = 0;

	g_return_val_if_fail(cal != NULL, NULL);
	while (d < WEEK_DAYS) {
		int last = d;

		if (cal->week[d].n == 0) {
			d++;
			continue;
		}
		while (last + 1 < WEEK_DAYS && day_equal(&cal->week[d], &cal->week[last + 1]))
			last++;
		if (s->len > 0)
			g_string_append(s, ", ");
		g_string_append(s, day_names[d]);
		if (last > d)
			g_string_append_printf(s, "-%s", day_names[last]);
		for (guint i = 0; i < cal->week[d].n; i++) {
			g_string_append_c(s, ' ');
			time_append(s, cal->week[d].r[i].start);
			g_string_append_c(s, '-');
			time_append(s, cal->week[d].r[i].end);
		}
		d = last + 1;
	}
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* --- the holidays --------------------------------------------------------- */

static gboolean
holiday_read(const char *text, guint32 *julian, GError **error)
{
	int y = 0, m = 0, d = 0;
	gboolean ok = strlen(text) == 10 && text[4] == '-' && text[7] == '-';
	GDate date;

	for (int i = 0; ok && i < 10; i++) {
		if (i == 4 || i == 7)
			continue;
		if (!g_ascii_isdigit(text[i]))
			ok = FALSE;
	}
	if (ok) {
		y = atoi(text);
		m = atoi(text + 5);
		d = atoi(text + 8);
		ok = g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y);
	}
	if (!ok) {
		g_autofree char *shown = mr_text_shown(text, SHOWN_MAX);

		g_set_error(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_HOLIDAY,
			    "holiday \"%s\": not a date YYYY-MM-DD", shown);
		return FALSE;
	}
	g_date_clear(&date, 1);
	g_date_set_dmy(&date, (GDateDay)d, (GDateMonth)m, (GDateYear)y);
	*julian = g_date_get_julian(&date);
	return TRUE;
}

MrCalendar *
mr_calendar_new(const char *zone, const char *hours, const char *const *holidays, GError **error)
{
	g_autoptr(MrCalendar) cal = NULL;

	g_return_val_if_fail(zone != NULL, NULL);
	g_return_val_if_fail(hours != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	cal = g_new0(MrCalendar, 1);
	cal->holidays = g_hash_table_new(g_direct_hash, g_direct_equal);
	cal->tz = zone_new(zone, error);
	if (cal->tz == NULL)
		return NULL;
	if (!hours_parse(hours, cal->week, error))
		return NULL;
	for (gsize i = 0; holidays != NULL && holidays[i] != NULL; i++) {
		guint32 julian;

		if (!holiday_read(holidays[i], &julian, error))
			return NULL;
		g_hash_table_add(cal->holidays, GUINT_TO_POINTER(julian));
	}
	return g_steal_pointer(&cal);
}

/* --- time ----------------------------------------------------------------- */

/* The local date of @t in @cal's zone as a Julian day number (GDate's:
 * 1 is 0001-01-01), and its wall-clock time in seconds after midnight
 * (both nullable).  FALSE when GDateTime cannot hold @t there. */
static gboolean
local_date(const MrCalendar *cal, gint64 t, guint32 *julian, gint *seconds)
{
	g_autoptr(GDateTime) utc = NULL;
	g_autoptr(GDateTime) local = NULL;
	GDate date;
	int y, m, d;

	if (t < UNIX_MIN || t > UNIX_MAX)
		return FALSE;
	utc = g_date_time_new_from_unix_utc(t);
	if (utc == NULL)
		return FALSE;
	local = g_date_time_to_timezone(utc, cal->tz);
	if (local == NULL)
		return FALSE;
	g_date_time_get_ymd(local, &y, &m, &d);
	g_date_clear(&date, 1);
	g_date_set_dmy(&date, (GDateDay)d, (GDateMonth)m, (GDateYear)y);
	if (julian != NULL)
		*julian = g_date_get_julian(&date);
	if (seconds != NULL)
		*seconds = g_date_time_get_hour(local) * 3600 + g_date_time_get_minute(local) * 60 +
			   g_date_time_get_second(local);
	return TRUE;
}

/* The Unix time of wall-clock time @seconds after midnight of the local
 * date @julian; DAY_SECONDS is the next date's midnight ("24:00").  A
 * wall-clock time that a daylight-saving change skips is moved to the
 * change's end (g_date_time_new(): 02:30 on Berlin's March change is
 * 03:00 CEST), one it repeats is taken the second time (standard time).
 * FALSE when GDateTime cannot hold it. */
static gboolean
wall_to_unix(const MrCalendar *cal, guint32 julian, gint seconds, gint64 *out)
{
	g_autoptr(GDateTime) dt = NULL;
	GDate date;

	julian += (guint32)(seconds / DAY_SECONDS);
	seconds %= DAY_SECONDS;
	if (!g_date_valid_julian(julian))
		return FALSE;
	g_date_clear(&date, 1);
	g_date_set_julian(&date, julian);
	dt = g_date_time_new(cal->tz, g_date_get_year(&date), g_date_get_month(&date),
			     g_date_get_day(&date), seconds / 3600, seconds / 60 % 60, seconds % 60);
	if (dt == NULL)
		return FALSE;
	*out = g_date_time_to_unix(dt);
	return TRUE;
}

/* The working time of the local date @julian: its weekday's ranges in
 * Unix seconds, none on a holiday.  Returns how many intervals it wrote
 * to @iv, sorted and disjoint, none empty; or -1 when GDateTime cannot
 * hold the date.  GLib's conversion never runs backwards in wall-clock
 * time (a skipped time is the change's end), so the clamping to the
 * previous end is a guard, not a case: a range swallowed by a
 * daylight-saving change is an empty one and is left out. */
static int
day_intervals(const MrCalendar *cal, guint32 julian, Interval iv[MAX_RANGES])
{
	const Day *day;
	GDate date;
	int n = 0;

	if (!g_date_valid_julian(julian))
		return -1;
	if (g_hash_table_contains(cal->holidays, GUINT_TO_POINTER(julian)))
		return 0;
	g_date_clear(&date, 1);
	g_date_set_julian(&date, julian);
	day = &cal->week[g_date_get_weekday(&date) - G_DATE_MONDAY];
	for (guint i = 0; i < day->n; i++) {
		gint64 start, end;

		if (!wall_to_unix(cal, julian, day->r[i].start * 60, &start) ||
		    !wall_to_unix(cal, julian, day->r[i].end * 60, &end))
			return -1;
		if (n > 0 && start < iv[n - 1].end)
			start = iv[n - 1].end;
		if (end <= start)
			continue;
		iv[n++] = (Interval){ .start = start, .end = end };
	}
	return n;
}

gboolean
mr_calendar_is_working(const MrCalendar *cal, gint64 t)
{
	guint32 julian;

	g_return_val_if_fail(cal != NULL, FALSE);
	if (!local_date(cal, t, &julian, NULL))
		return FALSE;
	/* A range of the day before can reach into this date only when a
	 * change at midnight repeats it; look at both neighbours anyway. */
	for (guint32 j = julian - 1; j <= julian + 1; j++) {
		Interval iv[MAX_RANGES];
		int n = day_intervals(cal, j, iv);

		for (int i = 0; i < n; i++) {
			if (iv[i].start <= t && t < iv[i].end)
				return TRUE;
		}
	}
	return FALSE;
}

/* Walks @seconds of working time from @start, on no local date past
 * MR_CALENDAR_MAX_DAYS after @start's.  Returns the moment they are
 * used up -- for 0, the first working moment at or after @start -- and
 * the date whose range holds it in *@julian_out (nullable); or -1. */
static gint64
walk(const MrCalendar *cal, gint64 start, gint64 seconds, guint32 *julian_out)
{
	gint64 cursor = start;
	guint32 julian, last;

	if (!local_date(cal, start, &julian, NULL))
		return -1;
	last = julian + MR_CALENDAR_MAX_DAYS;
	/* From the day before, as mr_calendar_is_working() looks. */
	for (julian = MAX(julian, 2) - 1; julian <= last; julian++) {
		Interval iv[MAX_RANGES];
		int n = day_intervals(cal, julian, iv);

		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			gint64 from = MAX(iv[i].start, cursor);

			if (iv[i].end <= from)
				continue;
			if (iv[i].end - from >= seconds) {
				if (julian_out != NULL)
					*julian_out = julian;
				return from + seconds;
			}
			seconds -= iv[i].end - from;
			cursor = iv[i].end;
		}
	}
	return -1;
}

/* @days working days from @start: see mr_calendar_add(). */
static gint64
working_days_add(const MrCalendar *cal, gint64 start, gint64 days)
{
	Interval iv[MAX_RANGES];
	guint32 julian, last;
	gint64 from, target;
	gint seconds;
	int n = 0;

	if (!local_date(cal, start, &last, NULL))
		return -1;
	last += MR_CALENDAR_MAX_DAYS;
	from = walk(cal, start, 0, &julian);
	if (from < 0 || !local_date(cal, from, NULL, &seconds))
		return -1;
	for (gint64 k = 0; k < days; k++) {
		do {
			if (++julian > last)
				return -1;
			n = day_intervals(cal, julian, iv);
			if (n < 0)
				return -1;
		} while (n == 0);
	}
	if (!wall_to_unix(cal, julian, seconds, &target))
		return -1;
	/* @iv is the last working day's (@days >= 1, n > 0): the time of day
	 * if it is working time, else the next range's start, else the day's
	 * last end. */
	for (int i = 0; i < n; i++) {
		if (target < iv[i].end)
			return MAX(target, iv[i].start);
	}
	return iv[n - 1].end;
}

static gint64
unit_seconds(MrDurationUnit unit)
{
	switch (unit) {
	case MR_DURATION_MINUTES:
		return 60;
	case MR_DURATION_HOURS:
		return 60 * 60;
	case MR_DURATION_DAYS:
		return DAY_SECONDS;
	}
	return 0;
}

/* The most of each unit: ten years. */
static gint64
unit_max(MrDurationUnit unit)
{
	return (gint64)MR_DURATION_MAX_DAYS * DAY_SECONDS / unit_seconds(unit);
}

gint64
mr_calendar_add(const MrCalendar *cal, gint64 start, const MrDuration *d, gboolean business)
{
	g_autoptr(GDateTime) utc = NULL;
	g_autoptr(GDateTime) local = NULL;
	g_autoptr(GDateTime) end = NULL;
	gint64 seconds;

	g_return_val_if_fail(cal != NULL, -1);
	g_return_val_if_fail(d != NULL, -1);
	/* Whatever the caller built: nothing past ten years, nothing GDateTime
	 * cannot hold, so nothing below can overflow. */
	if (unit_seconds(d->unit) == 0 || d->amount < 1 || d->amount > unit_max(d->unit) ||
	    start < UNIX_MIN || start > UNIX_MAX)
		return -1;
	seconds = d->amount * unit_seconds(d->unit);
	if (business && d->unit == MR_DURATION_DAYS)
		return working_days_add(cal, start, d->amount);
	if (business)
		return walk(cal, start, seconds, NULL);
	if (d->unit != MR_DURATION_DAYS)
		return start + seconds <= UNIX_MAX ? start + seconds : -1;
	utc = g_date_time_new_from_unix_utc(start);
	local = utc != NULL ? g_date_time_to_timezone(utc, cal->tz) : NULL;
	end = local != NULL ? g_date_time_add_days(local, (gint)d->amount) : NULL;
	return end != NULL ? g_date_time_to_unix(end) : -1;
}

/* --- durations ------------------------------------------------------------ */

/* The unit letters, in MrDurationUnit's order. */
static const char unit_letters[] = "mhd";
G_STATIC_ASSERT(MR_DURATION_MINUTES == 0 && MR_DURATION_HOURS == 1 && MR_DURATION_DAYS == 2);

static gboolean
duration_fail(GError **error, const char *text, const char *what)
{
	g_autofree char *shown = mr_text_shown(text, SHOWN_MAX);

	g_set_error(error, MR_CALENDAR_ERROR, MR_CALENDAR_ERROR_DURATION, "duration \"%s\": %s",
		    shown, what);
	return FALSE;
}

gboolean
mr_duration_parse(const char *text, MrDuration *out, GError **error)
{
	gsize digits = 0;
	gint64 amount = 0, most;
	const char *letter;
	MrDurationUnit unit;

	g_return_val_if_fail(text != NULL, FALSE);
	g_return_val_if_fail(out != NULL, FALSE);
	while (g_ascii_isdigit(text[digits]))
		digits++;
	letter = text[digits] != '\0' ? strchr(unit_letters, text[digits]) : NULL;
	if (digits == 0 || letter == NULL || text[digits + 1] != '\0')
		return duration_fail(error, text,
				     "not a whole number and a unit m, h or d (\"90m\", \"4h\", \"3d\")");
	if (text[0] == '0')
		return duration_fail(error, text,
				     digits == 1 ? "not at least 1" : "a number with a leading zero");
	unit = (MrDurationUnit)(letter - unit_letters);
	most = unit_max(unit);
	/* Ten digits are more than any unit's most (5256000m). */
	for (gsize i = 0; i < digits && i < 10; i++)
		amount = amount * 10 + (text[i] - '0');
	if (digits > 10 || amount > most) {
		g_autofree char *what = g_strdup_printf(
			"more than ten years (at most %" G_GINT64_FORMAT "%c)", most, *letter);

		return duration_fail(error, text, what);
	}
	*out = (MrDuration){ .amount = amount, .unit = unit };
	return TRUE;
}

char *
mr_duration_format(const MrDuration *d)
{
	g_return_val_if_fail(d != NULL, NULL);
	g_return_val_if_fail(unit_seconds(d->unit) != 0, NULL);
	return g_strdup_printf("%" G_GINT64_FORMAT "%c", d->amount, unit_letters[d->unit]);
}

void
mr_calendar_local(const MrCalendar *cal, gint64 t, int *weekday, int *hour)
{
	g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(t);
	g_autoptr(GDateTime) local = utc != NULL ? g_date_time_to_timezone(utc, cal->tz) : NULL;

	*weekday = local != NULL ? g_date_time_get_day_of_week(local) - 1 : -1;
	*hour = local != NULL ? g_date_time_get_hour(local) : -1;
}
