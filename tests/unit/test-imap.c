/* test-imap.c - the IMAP door over a stream of memory: a server's words
 * (tests/data/imap/) through mr_imap_run_stream(), with a real writer and
 * store, and what mailroomd said back.  The same seam carries
 * tests/fuzz/fuzz-imap.c; the hostile servers on a socket are in
 * tests/integration/83-imap-misbehaving.t. */
#include <string.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include "mailroom/mr-imap.h"
#include "mailroom/mr-writer.h"
#include "mr-test-util.h"

typedef struct {
	char *dir, *db;
	MrConfig *cfg;
	MrWriter *writer;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->dir = g_dir_make_tmp("mr-imap-XXXXXX", &error);
	g_assert_no_error(error);
	f->db = g_build_filename(f->dir, "mailroom.db", NULL);
	f->cfg = mr_test_config_extra(
		f->db, "imap = ( { name = \"fz\"; host = \"127.0.0.1\"; tls = \"none\";"
		       " user = \"u\"; password_env = \"MR_TEST_IMAP_PASSWORD\"; role = \"support\";"
		       " after = \"delete\"; } );\n");
	f->writer = mr_writer_new(f->cfg, g_main_context_default(), 1, &error);
	g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	const char *suffixes[] = { "", "-wal", "-shm" };

	mr_writer_free(f->writer);
	mr_config_unref(f->cfg);
	for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *path = g_strconcat(f->db, suffixes[i], NULL);

		g_unlink(path);
	}
	g_rmdir(f->dir);
	g_free(f->db);
	g_free(f->dir);
}

/* Runs a session over @server (the server's bytes); returns what
 * mailroomd sent, as a string, and why the session ended in @why (when
 * not NULL). */
static char *
run_why(Fixture *f, GBytes *server, char **why)
{
	g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes(server);
	g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
	g_autoptr(GIOStream) io = g_simple_io_stream_new(in, out);
	g_autoptr(GBytes) said = NULL;
	g_autoptr(GError) error = NULL;

	/* without @why, no error either: a caller may not want one (the
	 * fuzz target does not; found by fuzz-imap) */
	if (!mr_imap_run_stream(f->writer, f->cfg, g_ptr_array_index(mr_imap_config(f->cfg), 0), io,
				why != NULL ? &error : NULL) &&
	    why != NULL)
		*why = g_strdup(error->message);
	g_output_stream_close(out, NULL, NULL);
	said = g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(out));
	return g_strndup(g_bytes_get_size(said) > 0 ? g_bytes_get_data(said, NULL) : "",
			 g_bytes_get_size(said));
}

static char *
run(Fixture *f, GBytes *server)
{
	return run_why(f, server, NULL);
}

static GBytes *
transcript(const char *name)
{
	g_autofree char *path = g_build_filename(g_getenv("MR_TEST_DATA"), "imap", name, NULL);
	g_autoptr(GError) error = NULL;
	char *text = NULL;
	gsize len = 0;

	g_file_get_contents(path, &text, &len, &error);
	g_assert_no_error(error);
	return g_bytes_new_take(text, len);
}

/* Replaces the first @from in @b by @to. */
static GBytes *
edited(GBytes *b, const char *from, const char *to)
{
	g_autofree char *text = g_strndup(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
	char *at = strstr(text, from);
	GString *out = g_string_new_len(text, at - text);

	g_assert_nonnull(at);
	g_string_append(out, to);
	g_string_append(out, at + strlen(from));
	return g_string_free_to_bytes(out);
}

/* A well-behaved server: both messages stored, then flagged and expunged
 * (after = "delete"), then a list for more and IDLE. */
static void
test_transcript(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) server = transcript("session-delete.txt");
	g_autofree char *said = run(f, server);

	g_assert_cmpuint(mr_writer_committed(f->writer), ==, 2);
	g_assert_nonnull(strstr(said, "UID FETCH 1,2 (UID BODY.PEEK[])"));
	g_assert_nonnull(strstr(said, "UID STORE 1,2 +FLAGS.SILENT (\\Deleted)"));
	g_assert_nonnull(strstr(said, "UID EXPUNGE 1,2"));
	g_assert_nonnull(strstr(said, "IDLE\r\nDONE\r\n"));
	/* the stream ended: a failed session gets no LOGOUT (nor a wait for
	 * its answer) */
	g_assert_null(strstr(said, "LOGOUT"));
}

/* UID 2 answered BODY[] NIL: UID 1 is stored and deleted; UID 2 is not
 * deleted, and the next list starts at it (last_uid did not pass it). */
static void
test_nil_body(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) good = transcript("session-delete.txt");
	g_autoptr(GBytes) server = NULL;
	g_autofree char *said = NULL;
	const char *body = strstr(g_bytes_get_data(good, NULL), "* 2 FETCH (UID 2 BODY[]");
	const char *end = strstr(body, ")\r\n6 OK");

	g_assert_nonnull(body);
	g_assert_nonnull(end);
	{
		g_autofree char *lie = g_strndup(body, end + 3 - body);

		server = edited(good, lie, "* 2 FETCH (UID 2 BODY[] NIL)\r\n");
	}
	said = run(f, server);
	g_assert_cmpuint(mr_writer_committed(f->writer), ==, 1);
	g_assert_nonnull(strstr(said, "UID STORE 1 +FLAGS.SILENT (\\Deleted)"));
	g_assert_nonnull(strstr(said, "UID EXPUNGE 1\r\n"));
	g_assert_null(strstr(said, "UID STORE 1,2"));
	g_assert_nonnull(strstr(said, "UID FETCH 2:* (UID RFC822.SIZE)"));
}

/* Every cut of the transcript ends the session without harm, and never
 * stores more than there is. */
static void
test_prefixes(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) server = transcript("session-delete.txt");
	gsize len = g_bytes_get_size(server);

	for (gsize cut = 0; cut < len; cut += 13) {
		g_autoptr(GBytes) part = g_bytes_new_from_bytes(server, 0, cut);
		guint64 before = mr_writer_committed(f->writer);
		g_autofree char *said = run(f, part);

		g_assert_cmpuint(mr_writer_committed(f->writer) - before, <=, 2);
		/* nothing is acted on that is not stored */
		if (mr_writer_committed(f->writer) == before)
			g_assert_null(strstr(said, "UID STORE"));
	}
}

/* A server that answers CAPABILITY with OK and never announced one, or
 * announces an empty list: the session goes on (libetpan alone reads
 * NULL in both; found by fuzz-imap). */
static void
test_no_capability(Fixture *f, gconstpointer data)
{
	const char *const files[] = { "no-capability.txt", "empty-capability.txt" };

	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autoptr(GBytes) server = transcript(files[i]);
		g_autofree char *said = run(f, server);

		g_assert_nonnull(strstr(said, "2 CAPABILITY\r\n3 LIST"));
	}
	g_assert_cmpuint(mr_writer_committed(f->writer), ==, 0);
}

/* A body announced as a literal of 4 GB (RFC822.SIZE said 126): refused
 * when it is announced, before libetpan allocates it (it would allocate
 * the whole size at once; found by fuzz-imap) -- also when no CRLF
 * follows the "}", which libetpan accepts (found by fuzz-imap too), and
 * when "{ N}" has a space.  Nothing is stored. */
static void
test_huge_literal(Fixture *f, gconstpointer data)
{
	const char *const lies[] = { "BODY[] {4000000000}", "BODY[] {4000000000}\xff\xff",
				     "BODY[] {122222222222222226}X", "BODY[] { 4000000000}" };

	for (guint i = 0; i < G_N_ELEMENTS(lies); i++) {
		g_autoptr(GBytes) good = transcript("session-delete.txt");
		g_autoptr(GBytes) server = edited(good, "BODY[] {126}", lies[i]);
		g_autofree char *why = NULL;
		g_autofree char *said = run_why(f, server, &why);

		g_assert_cmpuint(mr_writer_committed(f->writer), ==, 0);
		g_assert_null(strstr(said, "UID STORE"));
		g_assert_nonnull(why);
		g_assert_nonnull(strstr(why, "the server announced"));
	}
}

/* Greetings libetpan parses with a NULL parser context, which its string
 * parser reads (a crash; found by fuzz-imap): a BADCHARSET code whose
 * list has room for a string, a literal.  The session reads the line and
 * hands libetpan a checked copy (only "* OK", a CAPABILITY of atoms, and
 * plain text), and goes on as with any greeting. */
static void
test_greeting_checked(Fixture *f, gconstpointer data)
{
	const char *const lies[] = { "[BADCHARSET (a )] hi", "[BADCHARSET ({3}\r\nabc)]",
				     "[CAPABILITY IMAP4rev1 {5}] \"x\"", "[UNSEEN 3" };

	for (guint i = 0; i < G_N_ELEMENTS(lies); i++) {
		g_autoptr(GBytes) good = transcript("session-delete.txt");
		g_autoptr(GBytes) server =
			edited(good, "[CAPABILITY IMAP4rev1 UIDPLUS IDLE] fake ready", lies[i]);
		g_autofree char *said = run(f, server);

		g_assert_nonnull(strstr(said, "1 LOGIN"));
	}
	{
		g_autoptr(GBytes) good = transcript("session-delete.txt");
		g_autoptr(GBytes) server = edited(good, "* OK [CAPABILITY", "* NO [CAPABILITY");
		g_autofree char *why = NULL;
		g_autofree char *said = run_why(f, server, &why);

		g_assert_cmpstr(said, ==, "");
		g_assert_nonnull(strstr(why, "greeting: not"));
	}
}

/* A listing answered NO: the session fails, nothing is stored
 * (libetpan frees its list of answers then; freeing it again was a double
 * free, found by fuzz-imap). */
static void
test_fetch_no(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) good = transcript("session-delete.txt");
	g_autoptr(GBytes) server = edited(good, "5 OK done", "5 NO not now");
	g_autofree char *said = run(f, server);

	g_assert_nonnull(strstr(said, "5 UID FETCH 1:* (UID RFC822.SIZE)"));
	g_assert_null(strstr(said, "6 UID FETCH"));
	g_assert_cmpuint(mr_writer_committed(f->writer), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_setenv("MR_TEST_IMAP_PASSWORD", "pw", TRUE); /* before any thread */
	g_test_add("/mailroom/imap/stream/transcript", Fixture, NULL, fixture_set_up,
		   test_transcript, fixture_tear_down);
	g_test_add("/mailroom/imap/stream/nil-body", Fixture, NULL, fixture_set_up, test_nil_body,
		   fixture_tear_down);
	g_test_add("/mailroom/imap/stream/prefixes", Fixture, NULL, fixture_set_up, test_prefixes,
		   fixture_tear_down);
	g_test_add("/mailroom/imap/stream/no-capability", Fixture, NULL, fixture_set_up,
		   test_no_capability, fixture_tear_down);
	g_test_add("/mailroom/imap/stream/huge-literal", Fixture, NULL, fixture_set_up,
		   test_huge_literal, fixture_tear_down);
	g_test_add("/mailroom/imap/stream/greeting", Fixture, NULL, fixture_set_up,
		   test_greeting_checked, fixture_tear_down);
	g_test_add("/mailroom/imap/stream/fetch-no", Fixture, NULL, fixture_set_up, test_fetch_no,
		   fixture_tear_down);
	return g_test_run();
}
