/* test-clock.c - the one wall clock and its offset (testing.clock_offset). */
#include "mailroom/mr-clock.h"

/* Parses the store's ISO text back: seconds since the epoch. */
static gint64
iso_to_unix(const char *iso)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(iso, NULL);

	g_assert_nonnull(dt);
	return g_date_time_to_unix(dt);
}

/* Without an offset the clock is the real time. */
static void
test_real_time(void)
{
	gint64 before, now, after;
	g_autoptr(GDateTime) utc = NULL;

	mr_clock_set_offset(0);
	g_assert_cmpint(mr_clock_get_offset(), ==, 0);
	before = g_get_real_time();
	now = mr_clock_now_us();
	after = g_get_real_time();
	g_assert_cmpint(now, >=, before);
	g_assert_cmpint(now, <=, after);

	utc = mr_clock_now_utc();
	g_assert_cmpint(g_date_time_get_utc_offset(utc), ==, 0);
	g_assert_cmpint(g_date_time_to_unix(utc), >=, before / G_USEC_PER_SEC);
	g_assert_cmpint(g_date_time_to_unix(utc), <=, g_get_real_time() / G_USEC_PER_SEC);
}

/* The text the store writes: "YYYY-MM-DDTHH:MM:SSZ", nothing more. */
static void
test_iso_format(void)
{
	g_autofree char *iso = NULL;
	gint64 before;

	mr_clock_set_offset(0);
	before = g_get_real_time() / G_USEC_PER_SEC;
	iso = mr_clock_now_iso();
	g_assert_true(g_regex_match_simple("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
					   iso, 0, 0));
	g_assert_cmpint(iso_to_unix(iso), >=, before);
	g_assert_cmpint(iso_to_unix(iso), <=, g_get_real_time() / G_USEC_PER_SEC);
}

/* An offset moves every reading, either way, and 0 takes it back. */
static void
test_offset(void)
{
	static const gint64 offsets[] = { 86400, -3600, 1, MR_CLOCK_OFFSET_MAX, -MR_CLOCK_OFFSET_MAX };

	for (guint i = 0; i < G_N_ELEMENTS(offsets); i++) {
		gint64 before, now, after, real;
		g_autoptr(GDateTime) utc = NULL;
		g_autofree char *iso = NULL;

		mr_clock_set_offset(offsets[i]);
		g_assert_cmpint(mr_clock_get_offset(), ==, offsets[i]);
		before = g_get_real_time();
		now = mr_clock_now_us();
		utc = mr_clock_now_utc();
		iso = mr_clock_now_iso();
		after = g_get_real_time();
		g_assert_cmpint(now - offsets[i] * G_USEC_PER_SEC, >=, before);
		g_assert_cmpint(now - offsets[i] * G_USEC_PER_SEC, <=, after);
		real = g_date_time_to_unix(utc) - offsets[i];
		g_assert_cmpint(real, >=, before / G_USEC_PER_SEC);
		g_assert_cmpint(real, <=, after / G_USEC_PER_SEC);
		real = iso_to_unix(iso) - offsets[i];
		g_assert_cmpint(real, >=, before / G_USEC_PER_SEC);
		g_assert_cmpint(real, <=, after / G_USEC_PER_SEC);
	}
	mr_clock_set_offset(0);
	g_assert_cmpint(mr_clock_now_us() / G_USEC_PER_SEC, <=, g_get_real_time() / G_USEC_PER_SEC);
}

/* The offset is the process's: a thread reads what another one set. */
static gpointer
read_clock(gpointer data)
{
	return GINT_TO_POINTER(mr_clock_get_offset() == 86400 &&
			       mr_clock_now_us() > g_get_real_time() + G_GINT64_CONSTANT(86000) * G_USEC_PER_SEC);
}

static void
test_threads(void)
{
	GThread *t;

	mr_clock_set_offset(86400);
	t = g_thread_new("clock", read_clock, NULL);
	g_assert_true(GPOINTER_TO_INT(g_thread_join(t)));
	mr_clock_set_offset(0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/core/clock/real-time", test_real_time);
	g_test_add_func("/mailroom/core/clock/iso-format", test_iso_format);
	g_test_add_func("/mailroom/core/clock/offset", test_offset);
	g_test_add_func("/mailroom/core/clock/threads", test_threads);
	return g_test_run();
}
