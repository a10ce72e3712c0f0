/* mr-clock.c - the one wall clock, and its offset for tests.
 *
 * Core.  Owns the clock offset: the one piece of process-wide mutable
 * state outside the daemon context (STYLE.md, "State"), and why: every
 * layer must read the same clock, the writer and IMAP threads and the
 * store of mailroomctl included, and threading an offset through every
 * caller of the store would change every signature to carry one integer
 * that is 0 outside tests.  It is a single atomic integer: a reload on
 * the main thread sets it while other threads read it. */
#define G_LOG_DOMAIN "mailroom-clock"

#include <stdatomic.h>

#include "mailroom/mr-clock.h"

/* C11 atomics rather than g_atomic_*: GLib has no 64-bit atomic integer,
 * and g_atomic_pointer_*() on a gintptr is 32 bits on a 32-bit host. */
static _Atomic gint64 mr_clock_offset_s;

gint64
mr_clock_now_us(void)
{
	return g_get_real_time() +
	       atomic_load_explicit(&mr_clock_offset_s, memory_order_relaxed) * G_USEC_PER_SEC;
}

GDateTime *
mr_clock_now_utc(void)
{
	gint64 us = mr_clock_now_us();
	/* g_date_time_new_from_unix_utc_usec() is GLib 2.80 */
	g_autoptr(GDateTime) s = g_date_time_new_from_unix_utc(us / G_USEC_PER_SEC);

	return g_date_time_add(s, us % G_USEC_PER_SEC);
}

char *
mr_clock_now_iso(void)
{
	g_autoptr(GDateTime) now = mr_clock_now_utc();

	return g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
}

gint64
mr_clock_iso_to_unix(const char *iso)
{
	g_autoptr(GDateTime) t = iso != NULL ? g_date_time_new_from_iso8601(iso, NULL) : NULL;

	return t != NULL ? g_date_time_to_unix(t) : -1;
}

char *
mr_clock_unix_to_iso(gint64 t)
{
	g_autoptr(GDateTime) d = g_date_time_new_from_unix_utc(t);

	return d != NULL ? g_date_time_format(d, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

void
mr_clock_set_offset(gint64 seconds)
{
	g_return_if_fail(seconds >= -MR_CLOCK_OFFSET_MAX && seconds <= MR_CLOCK_OFFSET_MAX);
	atomic_store_explicit(&mr_clock_offset_s, seconds, memory_order_relaxed);
}

gint64
mr_clock_get_offset(void)
{
	return atomic_load_explicit(&mr_clock_offset_s, memory_order_relaxed);
}
