/* mailroomd.c - the daemon: its services (the SMTP/LMTP listeners today),
 * the group-commit writer, signals, systemd readiness, logging.
 *
 * Owns the one MrDaemon context.  SIGTERM drains every service (no new
 * work, what is in hand is answered, then exit 0); SIGHUP reloads the
 * configuration into every service without dropping connections. */
#define G_LOG_DOMAIN "mailroom-daemon"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "mailroom/mr-clock.h"
#include "mailroom/mr-config.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-imap.h"
#include "mailroom/mr-act.h"
#include "mailroom/mr-outgoing.h"
#include "mailroom/mr-service.h"
#include "mailroom/mr-spool.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-text.h"
#include "mailroom/mr-writer.h"

#define MR_EX_UNAVAILABLE 69
/* The services mailroomd runs, started in this order, stopped in the
 * reverse one. */
static const MrServiceClass *const mr_daemon_services[] = {
	&mr_smtp_service,
	&mr_imap_service,
	&mr_scheduler_service,
	&mr_outbox_service,
};

/* The sections of the configuration parsed above core. */
static const MrConfigSection *const mr_daemon_config_sections[] = {
	&mr_imap_config_section,
	NULL,
};

typedef struct {
	const MrServiceClass *klass;
	gpointer self;
} MrRunning;

typedef struct {
	char *config_path;
	MrConfig *cfg;
	GMainLoop *loop;
	MrWriter *writer;
	MrRunning running[G_N_ELEMENTS(mr_daemon_services)];
	guint n_running;
	gboolean systemd;         /* NOTIFY_SOCKET is set */
	gboolean stopping;
	gint64 drain_deadline;    /* monotonic, µs */
	GLogLevelFlags log_level; /* most verbose level written */
	gboolean syslog;          /* detached: stderr is gone */
	gboolean journald;        /* stderr is journald's stream (asked once) */
	int ready_fd;             /* daemonized: tells the parent, then -1 */
} MrDaemon;

/* --- logging ------------------------------------------------------------------ */

static GLogWriterOutput
daemon_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data)
{
	MrDaemon *d = data;
	GLogLevelFlags lvl = level & G_LOG_LEVEL_MASK;

	/* Levels are bits: ERROR=4 ... DEBUG=128; higher is more verbose. */
	if (lvl > d->log_level && !(lvl == G_LOG_LEVEL_DEBUG && g_getenv("G_MESSAGES_DEBUG") != NULL))
		return G_LOG_WRITER_HANDLED;
	if (d->journald)
		return g_log_writer_journald(level, fields, n, NULL);
	if (d->syslog) {
		int prio = lvl <= G_LOG_LEVEL_CRITICAL ? LOG_ERR
			   : lvl == G_LOG_LEVEL_WARNING ? LOG_WARNING
			   : lvl == G_LOG_LEVEL_DEBUG	? LOG_DEBUG
							: LOG_INFO;

		for (gsize i = 0; i < n; i++)
			if (strcmp(fields[i].key, "MESSAGE") == 0)
				syslog(prio, "%.*s", fields[i].length < 0 ? (int)strlen(fields[i].value)
									 : (int)fields[i].length,
				       (const char *)fields[i].value);
		return G_LOG_WRITER_HANDLED;
	}
	{
		/* Every level to stderr (GLib's default puts INFO on stdout). */
		g_autofree char *line = g_log_writer_format_fields(level, fields, n, FALSE);

		fprintf(stderr, "%s\n", line);
		return G_LOG_WRITER_HANDLED;
	}
}

/* --- systemd ---------------------------------------------------------------- */

/* Returns the work in hand of every service. */
static guint
daemon_busy(MrDaemon *d)
{
	guint n = 0;

	for (guint i = 0; i < d->n_running; i++)
		n += d->running[i].klass->busy(d->running[i].self);
	return n;
}

static void
daemon_status(MrDaemon *d)
{
	g_autoptr(GString) text = NULL;

	if (!d->systemd || d->n_running == 0)
		return;
	text = g_string_new(d->stopping ? "draining: " : "running: ");
	for (guint i = 0; i < d->n_running; i++) {
		g_autofree char *one = d->running[i].klass->status(d->running[i].self);

		g_string_append_printf(text, "%s %s, ", d->running[i].klass->name, one);
	}
	sd_notifyf(0, "STATUS=%s%" G_GUINT64_FORMAT " committed, %u pending", text->str,
		   mr_writer_committed(d->writer), mr_writer_pending(d->writer));
}

static gboolean
on_status_timer(gpointer data)
{
	daemon_status(data);
	return G_SOURCE_CONTINUE;
}

/* --- signals -------------------------------------------------------------------- */

static gboolean
on_drain_check(gpointer data)
{
	MrDaemon *d = data;
	guint busy = daemon_busy(d);
	guint pending = mr_writer_pending(d->writer);

	if ((busy == 0 && pending == 0) || g_get_monotonic_time() >= d->drain_deadline) {
		if (busy > 0)
			g_warning("drain timed out: closing %u sessions", busy);
		/* The stop is bounded (docs/daemon.md): the writer ends the batch
		 * in hand and refuses the rest, so that stopping the services
		 * (an IMAP thread waits for its answers) does not wait for it. */
		if (pending > 0) {
			g_warning("drain timed out: %u messages and units not yet stored get a "
				  "temporary error", pending);
			mr_writer_close(d->writer);
		}
		g_main_loop_quit(d->loop);
		return G_SOURCE_REMOVE;
	}
	daemon_status(d);
	return G_SOURCE_CONTINUE;
}

static gboolean
on_terminate(gpointer data)
{
	MrDaemon *d = data;

	if (d->stopping)
		return G_SOURCE_CONTINUE;
	d->stopping = TRUE;
	g_message("stopping: draining %u sessions", daemon_busy(d));
	if (d->systemd)
		sd_notify(0, "STOPPING=1");
	for (guint i = 0; i < d->n_running; i++)
		d->running[i].klass->drain(d->running[i].self);
	d->drain_deadline = g_get_monotonic_time() + d->cfg->limits.drain_timeout_s * G_TIME_SPAN_SECOND;
	g_timeout_add(50, on_drain_check, d);
	return G_SOURCE_CONTINUE;
}

/* Logs what in @cfg puts secrets at risk (readable password files, a
 * password in clear text): at start and at each reload. */
static void
daemon_warn_config(const MrConfig *cfg)
{
	g_auto(GStrv) warnings = mr_config_security_warnings(cfg);

	for (char **w = warnings; *w != NULL; w++)
		g_warning("%s", *w);
}

/* Sets the one clock (mr-clock.h) from @cfg, which the daemon adopts:
 * at start and at each reload, for every thread at once.  Warns while
 * the clock is moved, and once when a reload puts it back. */
static void
daemon_set_clock(const MrConfig *cfg)
{
	if (cfg->testing.clock_offset_s != mr_clock_get_offset() || cfg->testing.clock_offset_s != 0)
		g_warning("testing.clock_offset: the clock runs %" G_GINT64_FORMAT
			  " s off the real time (tests only)", cfg->testing.clock_offset_s);
	mr_clock_set_offset(cfg->testing.clock_offset_s);
}

static gboolean
on_reload(gpointer data)
{
	MrDaemon *d = data;
	g_autoptr(GError) error = NULL;
	MrConfig *cfg;

	if (d->systemd)
		sd_notify(0, "RELOADING=1");
	cfg = mr_config_load(d->config_path, mr_daemon_config_sections, &error);
	if (cfg != NULL && g_strcmp0(cfg->spool_directory, d->cfg->spool_directory) != 0 &&
	    !mr_spool_check_directory(cfg->spool_directory, &error))
		g_clear_pointer(&cfg, mr_config_unref);
	if (cfg != NULL && !mr_outgoing_check_config(cfg, &error))
		g_clear_pointer(&cfg, mr_config_unref);
	if (cfg == NULL) {
		g_warning("reload refused, keeping the running configuration: %s", error->message);
	} else {
		if (g_strcmp0(cfg->database, d->cfg->database) != 0)
			g_warning("reload: the database changes only on restart");
		for (guint i = 0; i < d->n_running; i++)
			d->running[i].klass->reload(d->running[i].self, d->cfg, cfg);
		mr_config_unref(d->cfg);
		d->cfg = cfg;
		daemon_set_clock(d->cfg);
		g_message("reloaded %s", d->config_path);
		daemon_warn_config(d->cfg);
	}
	if (d->systemd)
		sd_notify(0, "READY=1");
	daemon_status(d);
	return G_SOURCE_CONTINUE;
}

/* --- start-up ----------------------------------------------------------------- */

/* Forks; the parent waits until the child says it is ready (exit 0) or
 * what went wrong (exit 1), so that start-up errors reach the terminal.
 * Returns in the child only. */
static void
daemonize(MrDaemon *d)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds) != 0 || (pid = fork()) < 0) {
		fprintf(stderr, "mailroomd: fork: %s\n", g_strerror(errno));
		exit(MR_EX_UNAVAILABLE);
	}
	if (pid > 0) {
		char buf[512];
		ssize_t n;

		close(fds[1]);
		n = read(fds[0], buf, sizeof buf - 1);
		if (n > 0 && buf[0] == '0')
			exit(0);
		if (n > 1)
			fprintf(stderr, "%.*s\n", (int)n - 1, buf + 1);
		exit(n > 0 ? buf[0] : MR_EX_UNAVAILABLE);
	}
	close(fds[0]);
	d->ready_fd = fds[1];
	setsid();
	{
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			if (null > STDERR_FILENO)
				close(null);
		}
	}
}

/* Reports the outcome of start-up to a waiting parent (daemonized). */
static int
started(MrDaemon *d, int code, const char *message)
{
	if (code != 0 && d->ready_fd < 0) /* else the waiting parent prints it */
		fprintf(stderr, "mailroomd: %s\n", message);
	if (d->ready_fd >= 0) {
		char status = (char)(code == 0 ? '0' : code);
		g_autofree char *text = g_strdup_printf("%cmailroomd: %s", status,
							message != NULL ? message : "");
		ssize_t ignored = write(d->ready_fd, text, strlen(text));

		(void)ignored;
		close(d->ready_fd);
		d->ready_fd = -1;
		if (code == 0) { /* the terminal is the parent's: log to syslog */
			int null = open("/dev/null", O_RDWR);

			if (null >= 0) {
				dup2(null, STDERR_FILENO);
				close(null);
			}
			openlog("mailroomd", LOG_PID, LOG_MAIL);
			d->syslog = TRUE;
			d->journald = FALSE;
		}
	}
	return code;
}

static void
daemon_clear(MrDaemon *d)
{
	while (d->n_running > 0) {
		MrRunning *r = &d->running[--d->n_running];

		r->klass->stop(g_steal_pointer(&r->self));
	}
	g_clear_pointer(&d->writer, mr_writer_free);
	g_clear_pointer(&d->loop, g_main_loop_unref);
	g_clear_pointer(&d->cfg, mr_config_unref);
	g_free(d->config_path);
}

/* --test-mailbox: a login without a fetch, for mailroomctl mailbox test.
 * Exits 0, 67 (no such mailbox), 77 (login refused), 69 (TLS or
 * protocol) or 75 (no connection). */
static int
test_imap_mailbox(const MrConfig *cfg, const char *name, gboolean json)
{
	const MrImapMailbox *mb = mr_imap_config_find(cfg, name);
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) warnings = NULL;
	MrImapProbe probe;
	int rc;

	if (mb == NULL) {
		fprintf(stderr, "mailroomd: no mailbox %s in the imap list of %s\n", name, cfg->path);
		return MR_EX_NOUSER;
	}
	/* what mailroomd would log for it, before the login that shows it */
	warnings = mr_imap_mailbox_security_warnings(mb);
	for (char **w = warnings; *w != NULL; w++)
		mr_text_fprintf(stderr, "mailroomd: warning: %s\n", *w);
	if (!mr_imap_probe(mb, &probe, &error)) {
		rc = g_error_matches(error, MR_IMAP_ERROR, MR_IMAP_ERROR_AUTH)	    ? MR_EX_NOPERM
		     : g_error_matches(error, MR_IMAP_ERROR, MR_IMAP_ERROR_CONNECT) ? MR_EX_TEMPFAIL
										    : MR_EX_UNAVAILABLE;
		mr_text_fprintf(stderr, "mailroomd: mailbox %s: %s\n", mb->name, error->message);
		return rc;
	}
	if (json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		g_autoptr(JsonGenerator) gen = json_generator_new();
		g_autoptr(JsonNode) root = NULL;
		g_autofree char *text = NULL;

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, mb->name);
		json_builder_set_member_name(b, "folder");
		json_builder_add_string_value(b, mb->folder);
		json_builder_set_member_name(b, "capabilities");
		json_builder_begin_array(b);
		for (char **c = probe.capabilities; *c != NULL; c++)
			json_builder_add_string_value(b, *c);
		json_builder_end_array(b);
		json_builder_set_member_name(b, "exists");
		json_builder_add_int_value(b, probe.exists);
		json_builder_set_member_name(b, "uidvalidity");
		json_builder_add_int_value(b, probe.uidvalidity);
		json_builder_set_member_name(b, "uidnext");
		json_builder_add_int_value(b, probe.uidnext);
		json_builder_set_member_name(b, "warnings");
		json_builder_begin_array(b);
		for (char **w = warnings; *w != NULL; w++)
			json_builder_add_string_value(b, *w);
		json_builder_end_array(b);
		json_builder_end_object(b);
		root = json_builder_get_root(b);
		json_generator_set_root(gen, root);
		json_generator_set_pretty(gen, TRUE);
		text = json_generator_to_data(gen, NULL);
		printf("%s\n", text);
	} else {
		g_autofree char *caps = g_strjoinv(" ", probe.capabilities);

		/* the server's words (its capabilities, a NO reason) are shown,
		 * not sent, to the terminal */
		mr_text_fprintf(stdout, "mailbox %s: logged in to %s:%d as %s\n", mb->name,
				mb->remote.host, mb->remote.port, mb->remote.user);
		mr_text_fprintf(stdout, "capabilities: %s\n", caps);
		mr_text_fprintf(stdout,
				"folder %s: %" G_GINT64_FORMAT " messages, UIDVALIDITY %" G_GINT64_FORMAT
				", UIDNEXT %" G_GINT64_FORMAT "\n",
				mb->folder, probe.exists, probe.uidvalidity, probe.uidnext);
	}
	mr_imap_probe_clear(&probe);
	return 0;
}

int
main(int argc, char **argv)
{
	MrDaemon d = { .ready_fd = -1, .log_level = G_LOG_LEVEL_INFO };
	gboolean foreground = FALSE, check = FALSE, debug = FALSE, json = FALSE;
	g_autofree char *test_mailbox = NULL;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &d.config_path,
		  "Configuration file (default $MAILROOM_CONFIG or " MR_SYSCONFDIR "/mailroom.conf)",
		  "FILE" },
		{ "foreground", 'f', 0, G_OPTION_ARG_NONE, &foreground,
		  "Stay in the foreground, log to stderr (or journald under systemd)", NULL },
		{ "check", 0, 0, G_OPTION_ARG_NONE, &check, "Check the configuration and exit", NULL },
		{ "test-mailbox", 0, 0, G_OPTION_ARG_STRING, &test_mailbox,
		  "Connect to the IMAP mailbox NAME of the configuration, log in, show its"
		  " capabilities and folder, fetch nothing, and exit (mailroomctl mailbox test)",
		  "NAME" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "With --test-mailbox: print JSON", NULL },
		{ "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "Log debug messages too", NULL },
		{ NULL },
	};
	g_autoptr(GOptionContext) octx = g_option_context_new("- the mailroom daemon");
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) where = g_string_new(NULL);
	g_autofree char *dbname = NULL;
	int rc;

	setlocale(LC_ALL, "");
	g_option_context_add_main_entries(octx, entries, NULL);
	g_option_context_set_summary(octx, "Accepts mail over SMTP and LMTP and files it into the "
					   "mailroom CRM.  See mailroomd(8).");
	if (!g_option_context_parse(octx, &argc, &argv, &error) || argc > 1) {
		fprintf(stderr, "mailroomd: %s (try --help)\n",
			error != NULL ? error->message : "unexpected argument");
		return MR_EX_USAGE;
	}
	if (debug)
		d.log_level = G_LOG_LEVEL_DEBUG;
	/* Asked once: GLib's check is a getpeername(2) per call. */
	d.journald = g_log_writer_is_journald(fileno(stderr));
	g_log_set_writer_func(daemon_log_writer, &d, NULL);
	if (d.config_path == NULL)
		d.config_path = g_strdup(mr_config_default_path());
	d.cfg = mr_config_load(d.config_path, mr_daemon_config_sections, &error);
	if (d.cfg == NULL) {
		fprintf(stderr, "mailroomd: %s\n", error->message);
		daemon_clear(&d);
		return MR_EX_CONFIG;
	}
	daemon_set_clock(d.cfg);
	if (!mr_outgoing_check_config(d.cfg, &error)) {
		fprintf(stderr, "mailroomd: %s\n", error->message);
		daemon_clear(&d);
		return MR_EX_CONFIG;
	}
	if (d.cfg->tls.cert != NULL) {
		g_autoptr(GTlsCertificate) cert =
			g_tls_certificate_new_from_files(d.cfg->tls.cert, d.cfg->tls.key, &error);

		if (cert == NULL) {
			fprintf(stderr, "mailroomd: %s: tls: %s\n", d.config_path, error->message);
			daemon_clear(&d);
			return MR_EX_CONFIG;
		}
	}
	if (check) {
		printf("%s: ok\n", d.config_path);
		daemon_clear(&d);
		return 0;
	}
	if (test_mailbox != NULL) {
		rc = test_imap_mailbox(d.cfg, test_mailbox, json);
		daemon_clear(&d);
		return rc;
	}
	d.systemd = g_getenv("NOTIFY_SOCKET") != NULL;
	if (!foreground && !d.systemd)
		daemonize(&d);

	mr_parse_init();
	d.loop = g_main_loop_new(NULL, FALSE);
	d.writer = mr_writer_new(d.cfg, g_main_context_default(),
				 MAX(g_get_num_processors() - 1, 1), &error);
	if (d.writer == NULL) {
		g_autofree char *msg = g_strdup_printf("cannot open the database: %s", error->message);

		rc = started(&d, MR_EX_TEMPFAIL, msg);
		daemon_clear(&d);
		return rc;
	}
	if (!mr_spool_check_directory(d.cfg->spool_directory, &error)) {
		g_autofree char *msg = g_strdup_printf("cannot use the spool: %s", error->message);

		rc = started(&d, MR_EX_TEMPFAIL, msg);
		daemon_clear(&d);
		return rc;
	}
	for (guint i = 0; i < G_N_ELEMENTS(mr_daemon_services); i++) {
		const MrServiceClass *klass = mr_daemon_services[i];
		gpointer self = klass->start(d.cfg, d.writer, &error);
		g_autofree char *what = NULL;

		if (self == NULL) {
			rc = started(&d, klass->start_failure_exit, error->message);
			daemon_clear(&d);
			return rc;
		}
		d.running[d.n_running].klass = klass;
		d.running[d.n_running++].self = self;
		what = klass->describe(self);
		if (*what != '\0')
			g_string_append_printf(where, "%s%s", where->len > 0 ? " " : "", what);
	}
	g_unix_signal_add(SIGTERM, on_terminate, &d);
	g_unix_signal_add(SIGINT, on_terminate, &d);
	g_unix_signal_add(SIGHUP, on_reload, &d);
	dbname = mr_store_database_name(d.cfg);
	g_message("listening %s database %s synchronous=%s", where->str, dbname,
		  d.cfg->store.synchronous);
	if (d.systemd) {
		sd_notify(0, "READY=1");
		daemon_status(&d);
		g_timeout_add_seconds(5, on_status_timer, &d);
	}
	started(&d, 0, NULL);
	daemon_warn_config(d.cfg);

	g_main_loop_run(d.loop);

	g_message("stopped: %" G_GUINT64_FORMAT " messages committed",
		  mr_writer_committed(d.writer));
	daemon_clear(&d);
	return 0;
}
