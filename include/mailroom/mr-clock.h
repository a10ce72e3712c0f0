/* mr-clock.h - the one wall clock: what date and time it is, for every layer.
 *
 * Core.  Every read of the date (the times the store writes on rows and
 * events, whoever asks: daemon, CLI, writer thread, IMAP threads) goes
 * through here, so that a test can move the whole process in time with
 * testing.clock_offset (docs/configuration.md).  Durations and deadlines
 * are not dates: they keep the monotonic clock (g_get_monotonic_time()). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The largest offset either way, in seconds: 100 years of 365 days, which
 * keeps every date of the clock within GDateTime's range. */
#define MR_CLOCK_OFFSET_MAX G_GINT64_CONSTANT(3153600000)

/* Returns the time in microseconds since the Unix epoch: the real time
 * (g_get_real_time()) plus the offset.  Any thread may call it. */
gint64 mr_clock_now_us(void);

/* Returns: (transfer full): mr_clock_now_us() as a UTC GDateTime. */
GDateTime *mr_clock_now_utc(void);

/* Returns: (transfer full): the current time as the store writes it,
 * UTC ISO 8601 to the second: "2026-11-23T10:00:00Z". */
char *mr_clock_now_iso(void);

/* Returns the Unix time of @iso, a time as the store writes it (any ISO
 * 8601 time with a zone that GLib reads), or -1 when it does not read. */
gint64 mr_clock_iso_to_unix(const char *iso);

/* Returns: (transfer full) (nullable): Unix time @t as the store writes
 * it, or NULL outside GDateTime's years 1 to 9999. */
char *mr_clock_unix_to_iso(gint64 t);

/* Moves the clock of the whole process, every thread, by @seconds (ahead
 * when positive; 0 is the real time), from the next read on.  @seconds is
 * within +-MR_CLOCK_OFFSET_MAX.  Set from the configuration's
 * testing.clock_offset by whoever adopts a configuration: mailroomd at
 * start and at each reload, mailroomctl when it loads it. */
void mr_clock_set_offset(gint64 seconds);

/* Returns the offset in seconds (0 unless mr_clock_set_offset() moved it). */
gint64 mr_clock_get_offset(void);

G_END_DECLS
