/* fuzz-imap.c - libFuzzer target: hostile bytes from an IMAP server.
 *
 * Each input is what a server says -- greeting, login, capabilities, the
 * folder's listing, bodies (whole or in parts), flag and expunge answers,
 * IDLE -- fed to one session of the IMAP door as its thread runs it
 * (mr_imap_run_stream()), with a real writer on an SQLite file, and no
 * waits: the session goes on until the input ends.  Mailbox after =
 * "delete" and max_message_size 64 KB, so that quarantine and fetches in
 * parts are reached.  GLib criticals abort (a double unref is one).  Built
 * and run by `make fuzz-imap` (clang, -fsanitize=fuzzer,address,undefined),
 * seeded from tests/data/imap. */
#include <gio/gio.h>
#include <stdint.h>

#include "mailroom/mr-imap.h"
#include "mailroom/mr-writer.h"
#include "../unit/mr-test-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzer's process state: the configuration and the writer, made once. */
static MrConfig *fuzz_cfg;
static MrWriter *fuzz_writer;

/* Only what must stop the run is shown: the rest (a mailbox's states, its
 * warnings about what the server said) is the expected noise of every
 * input. */
static GLogWriterOutput
fuzz_log(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return g_log_writer_standard_streams(level, fields, n, data);
	return G_LOG_WRITER_HANDLED;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("mr-fuzz-imap-XXXXXX", &error);
	g_autofree char *db = NULL;

	if (dir == NULL)
		g_error("fuzz: %s", error->message);
	db = g_build_filename(dir, "mailroom.db", NULL);
	g_setenv("MR_FUZZ_IMAP_PASSWORD", "pw", TRUE);
	fuzz_cfg = mr_test_config_extra(
		db, "imap = ( { name = \"fz\"; host = \"127.0.0.1\"; tls = \"none\"; user = \"u\";"
		    " password_env = \"MR_FUZZ_IMAP_PASSWORD\"; role = \"support\";"
		    " after = \"delete\"; } );\n"
		    "limits = { max_message_size = 65536; };\n");
	fuzz_writer = mr_writer_new(fuzz_cfg, g_main_context_default(), 1, &error);
	if (fuzz_writer == NULL)
		g_error("fuzz: writer: %s", error->message);
	g_log_set_writer_func(fuzz_log, NULL, NULL);
	g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GBytes) server = g_bytes_new_static(data, size);
	g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes(server);
	g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
	g_autoptr(GIOStream) io = g_simple_io_stream_new(in, out);

	mr_imap_run_stream(fuzz_writer, fuzz_cfg, g_ptr_array_index(mr_imap_config(fuzz_cfg), 0), io, NULL);
	return 0;
}
