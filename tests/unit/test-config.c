/* test-config.c - loading and validating mailroom.conf. */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "mailroom/mr-clock.h"
#include "mailroom/mr-config.h"
#include "mailroom/mr-config-section.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-imap-config.h"

/* The sections mailroomd and mailroomctl load. */
static const MrConfigSection *const sections[] = { &mr_imap_config_section, NULL };

static const char *const good_config =
	"database = \"/tmp/x.db\";\n"
	"domains = [ \"Acme.Test\", \"acme.example\" ];\n"
	"addresses = (\n"
	"  { address = \"crm@acme.test\";     role = \"bcc\";     },\n"
	"  { address = \"Support@acme.test\"; role = \"support\"; },\n"
	"  { address = \"sales@acme.test\";   role = \"SALES\";   }\n"
	");\n"
	"ids = { opportunity_prefix = \"deal\"; ticket_prefix = \"TKT\"; };\n"
	"freemail_domains = [ \"mail.example\" ];\n";

static char *
write_config(const char *text)
{
	g_autoptr(GError) error = NULL;
	char *path = NULL;
	int fd = g_file_open_tmp("mr-config-XXXXXX.conf", &path, &error);

	g_assert_no_error(error);
	g_assert_true(g_file_set_contents(path, text, -1, &error));
	g_assert_no_error(error);
	close(fd);
	return path;
}

static void
test_good(void)
{
	g_autofree char *path = write_config(good_config);
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_config_load(path, sections, &error);
	g_autofree char *detail = NULL;
	const MrMailroomAddress *a;

	g_assert_no_error(error);
	g_assert_cmpstr(cfg->database, ==, "/tmp/x.db");
	g_assert_cmpstr(cfg->domains[0], ==, "acme.test");
	/* the three of the file and the bounce address, with a role of its own */
	g_assert_cmpuint(cfg->addresses->len, ==, 4);
	a = g_ptr_array_index(cfg->addresses, 3);
	g_assert_cmpstr(a->address, ==, "bounces@acme.test");
	g_assert_cmpint(a->role, ==, MR_ROLE_BOUNCE);
	a = mr_config_find_address(cfg, "Bounces+12-00ff@acme.test", &detail);
	g_assert_nonnull(a);
	g_assert_cmpint(a->role, ==, MR_ROLE_BOUNCE);
	g_assert_cmpstr(detail, ==, "12-00ff");
	g_clear_pointer(&detail, g_free);
	/* outgoing mail's defaults */
	g_assert_false(cfg->relay.configured);
	g_assert_cmpint(cfg->relay.retry_min_s, ==, 60);
	g_assert_cmpint(cfg->relay.retry_max_s, ==, 3600);
	g_assert_cmpint(cfg->relay.max_attempts, ==, 20);
	g_assert_cmpint(cfg->outgoing.max_auto_per_recipient_per_day, ==, 10);
	g_assert_true(cfg->ack.enabled);
	g_assert_cmpstr(cfg->ack.template_name, ==, "ticket-ack");
	g_assert_cmpstr(cfg->ids.opportunity_prefix, ==, "DEAL");
	g_assert_cmpstr(cfg->store.synchronous, ==, "full");
	g_assert_cmpint(cfg->store.query_timeout_s, ==, 30);
	g_assert_false(cfg->smtp.bare_lf_reject);
	/* What one message may cost (docs/configuration.md, parse limits). */
	g_assert_cmpint(cfg->parse.max_mime_parts, ==, 10000);
	g_assert_cmpint(cfg->parse.max_header_lines, ==, 50000);
	g_assert_cmpint(cfg->parse.max_header_size, ==, 102400);
	g_assert_cmpint(cfg->parse.max_addresses, ==, 1000);
	g_assert_cmpint(cfg->parse.max_references, ==, 100);
	g_assert_cmpint(cfg->route.max_parties, ==, 100);
	g_assert_cmpint(cfg->route.max_subject_scan, ==, 4096);
	/* What a session may hold in memory (docs/configuration.md, limits). */
	g_assert_cmpstr(cfg->spool_directory, ==, "/tmp/spool");
	g_assert_cmpint(cfg->limits.spool_threshold, ==, 1048576);
	g_assert_cmpint(cfg->limits.max_bytes_in_flight, ==, 67108864);
	g_assert_cmpint(cfg->limits.drain_timeout_s, ==, 30);
	g_assert_cmpint(cfg->testing.clock_offset_s, ==, 0);

	a = mr_config_find_address(cfg, "SUPPORT+Tkt-12@Acme.test", &detail);
	g_assert_nonnull(a);
	g_assert_cmpint(a->role, ==, MR_ROLE_SUPPORT);
	g_assert_cmpstr(detail, ==, "tkt-12");
	g_assert_cmpint(mr_config_find_address(cfg, "sales@acme.test", NULL)->role, ==, MR_ROLE_SALES);
	g_assert_null(mr_config_find_address(cfg, "support@acme.testx", NULL));
	g_assert_null(mr_config_find_address(cfg, "xsupport@acme.test", NULL));
	g_assert_null(mr_config_find_address(cfg, "support", NULL));
	g_assert_true(mr_config_is_own_domain(cfg, "acme.example"));
	g_assert_false(mr_config_is_own_domain(cfg, "customer.test"));
	g_assert_true(mr_config_is_freemail(cfg, "gmail.com"));
	g_assert_true(mr_config_is_freemail(cfg, "mail.example"));
	g_assert_false(mr_config_is_freemail(cfg, "customer.test"));
	g_unlink(path);
}

/* spool_directory: set, or "" for the default beside the database. */
static void
test_spool_directory(void)
{
	g_autofree char *set = write_config("addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
					    "database = \"var/x.db\"; spool_directory = \"/srv/spool\";\n"
					    "limits = { spool_threshold = 0; max_bytes_in_flight = 8589934592L; };\n");
	g_autofree char *empty = write_config("addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
					      "database = \"x.db\"; spool_directory = \"\";\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) a = mr_config_load(set, sections, &error);
	g_autoptr(MrConfig) b = NULL;

	g_assert_no_error(error);
	g_assert_cmpstr(a->spool_directory, ==, "/srv/spool");
	g_assert_cmpint(a->limits.spool_threshold, ==, 0);
	g_assert_cmpint(a->limits.max_bytes_in_flight, ==, G_GINT64_CONSTANT(8589934592));
	b = mr_config_load(empty, sections, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(b->spool_directory, ==, "./spool");
	g_unlink(set);
	g_unlink(empty);
}

/* testing.clock_offset is read, either way; loading a config does not
 * move the clock: whoever adopts it does (mailroomd, mailroomctl). */
static void
test_clock_offset(void)
{
	static const struct {
		const char *value;
		gint64 want;
	} cases[] = {
		{ "86400", 86400 }, { "-3600", -3600 }, { "0", 0 }, { "3153600000L", 3153600000 },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = g_strdup_printf(
			"addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
			"testing = { clock_offset = %s; };\n", cases[i].value);
		g_autofree char *path = write_config(text);
		g_autoptr(GError) error = NULL;
		g_autoptr(MrConfig) cfg = mr_config_load(path, sections, &error);

		g_assert_no_error(error);
		g_assert_cmpint(cfg->testing.clock_offset_s, ==, cases[i].want);
		g_assert_cmpint(mr_clock_get_offset(), ==, 0);
		g_unlink(path);
	}
}

/* The database as logs may show it: never a password. */
static void
test_database_name(void)
{
	static const struct {
		const char *db, *want;
	} cases[] = {
		{ "/var/lib/mailroom/mailroom.db", "/var/lib/mailroom/mailroom.db" },
		{ "postgresql://mailroom@db.test/mailroom", "postgresql://mailroom@db.test/mailroom" },
		{ "postgresql://mailroom:s3cret@db.test:5432/mailroom",
		  "postgresql://mailroom:***@db.test:5432/mailroom" },
		{ "postgresql://db.test/mailroom?user=m&password=s3cret&sslmode=require",
		  "postgresql://db.test/mailroom?user=m&password=***&sslmode=require" },
		{ "postgres://db.test/m?password=s3cret", "postgres://db.test/m?password=***" },
		{ "postgresql://db.test/mypassword=x", "postgresql://db.test/mypassword=x" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = g_strdup_printf(
			"database = \"%s\";\naddresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n",
			cases[i].db);
		g_autofree char *path = write_config(text);
		g_autoptr(GError) error = NULL;
		g_autoptr(MrConfig) cfg = mr_config_load(path, sections, &error);
		g_autofree char *name = NULL;

		g_assert_no_error(error);
		name = mr_config_database_name(cfg);
		g_assert_cmpstr(name, ==, cases[i].want);
		g_unlink(path);
	}
}

static const struct {
	const char *text;
	int code;
	const char *want; /* a part of the message */
} bad_cases[] = {
	{ .text = "addresses = (", .code = MR_CONFIG_ERROR_SYNTAX, .want = ":1:" },
	{ .text = "addresses = ( { address = \"crm@acme.test\"; role = \"bcc\"; } );\n"
		  "smtp = { bare_lf = \"sometimes\"; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: smtp.bare_lf: must be \"normalize\" or \"reject\"" },
	{ .text = "database = \"x\";\n", .code = MR_CONFIG_ERROR_INVALID, .want = "addresses" },
	{ .text = "addresses = ( { address = \"crm@acme.test\"; role = \"x\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":1: addresses.role" },
	{ .text = "addresses = ( { address = \"crm\"; role = \"bcc\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "addresses.address" },
	{ .text = "addresses = ( { address = \"a+b@acme.test\"; role = \"bcc\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "addresses.address" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; },\n"
		  "{ address = \"A@acme.test\"; role = \"sales\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "listed twice" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "ids = { ticket_prefix = \"OPP\"; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "must differ" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "domains = \"acme.test\";",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: domains" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "store = { synchronous = \"off\"; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "store.synchronous" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "typo = 1;",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: typo: unknown key" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "store = {\n synchronus = \"full\"; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":3: store.synchronus: unknown key" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; rol = 1; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "addresses.rol: unknown key" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "limits = 5;",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: limits: must be a group" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "hostname = \"\";",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: hostname" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "limits = { timeout = 0; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "limits.timeout: must be between 1 and 86400" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "smtp = { listen = [ \"127.0.0.1\" ]; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "smtp.listen" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "trusted_networks = [ \"10.0.0.1/8\" ];",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "trusted_networks" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "tls = { cert = \"/x.pem\"; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "cert and key go together" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "ids = 5;",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: ids: must be a group" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "ids = { ticket_prefix = \"lead\"; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "LEAD" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "parse = { max_header_size = 100; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: parse.max_header_size: must be between 1024 and" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "route = { max_parties = 0; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: route.max_parties: must be between 1 and 100000" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "route = { max_subjects = 5; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: route.max_subjects: unknown key" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "limits = { max_bytes_in_flight = 1000; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: limits.max_bytes_in_flight: must be between 1048576" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "limits = { spool_threshold = -1; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: limits.spool_threshold: must be between 0" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "store = { query_timeout = 0; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: store.query_timeout: must be between 1 and 3600" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "spool_directory = 5;",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: spool_directory: must be a string" },	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.name: missing" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"a b\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.name" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; },\n { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"sales\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":3: imap.name: used twice" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; user = \"u\"; password_env = \"P\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.host: missing" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; password_env = \"P\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.user: missing" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "needs password_file or password_env" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; password_file = \"/f\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "one of them" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; auth = \"xoauth2\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "needs token_command" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; auth = \"xoauth2\"; token_command = \"a 'b\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.token_command" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; auth = \"kerberos\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.auth" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; tls = \"maybe\"; role = \"support\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.tls" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"boss\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.role" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.role: missing" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; after = \"move:\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.after" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; after = \"move:INBOX\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "cannot move to the folder it watches" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; poll_interval = 0; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.poll_interval: must be between 1" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; port = 70000; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.port" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; tls_verify = \"no\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.tls_verify" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; tls_ca_file = \"/nonexistent/ca.pem\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.tls_ca_file" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = ( { name = \"s\"; host = \"h\"; user = \"u\"; password_env = \"P\"; role = \"support\"; pasword = \"x\"; } );",
	  .code = MR_CONFIG_ERROR_INVALID, .want = "imap.pasword: unknown key" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "imap = { name = \"s\"; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: imap: must be a list" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "testing = { clock_offset = \"abc\"; };",
	  .code = MR_CONFIG_ERROR_INVALID,
	  .want = ":2: testing.clock_offset: must be an integer (seconds, e.g. 86400 or -3600)" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "testing = { clock_offset = 1.5; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: testing.clock_offset: must be an integer" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "testing = { clock_offset = 3153600001L; };",
	  .code = MR_CONFIG_ERROR_INVALID,
	  .want = ":2: testing.clock_offset: must be between -3153600000 and 3153600000" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "testing = {\n clock = 5; };",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":3: testing.clock: unknown key" },
	{ .text = "addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		  "testing = 5;",
	  .code = MR_CONFIG_ERROR_INVALID, .want = ":2: testing: must be a group" },
};

/* The imap list: defaults, modes, the password, what a reload compares. */
static void
test_imap(void)
{
	g_autofree char *pw = write_config("s3cret\nsecond line\n");
	g_autofree char *text = g_strdup_printf(
		"addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n"
		"imap = (\n"
		"  { name = \"support\"; host = \"imap.acme.test\"; user = \"support@acme.test\";\n"
		"    password_file = \"%s\"; role = \"support\"; after = \"move:Processed\"; },\n"
		"  { name = \"bcc.gmail\"; host = \"imap.gmail.com\"; tls = \"STARTTLS\";\n"
		"    user = \"crm@acme.test\"; auth = \"xoauth2\"; role = \"bcc\";\n"
		"    token_command = \"/usr/local/bin/get-token 'crm box'\"; after = \"delete\";\n"
		"    poll_interval = 30; reconnect_max = 120; tls_verify = false; }\n"
		");\n", pw);
	g_autofree char *path = write_config(text);
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_config_load(path, sections, &error);
	g_autoptr(MrConfig) again = mr_config_load(path, sections, NULL);
	const MrImapMailbox *a, *b;
	g_autofree char *password = NULL;

	g_assert_no_error(error);
	g_assert_cmpuint(mr_imap_config(cfg)->len, ==, 2);
	a = mr_imap_config_find(cfg, "support");
	b = mr_imap_config_find(cfg, "bcc.gmail");
	g_assert_nonnull(a);
	g_assert_nonnull(b);
	g_assert_null(mr_imap_config_find(cfg, "other"));
	g_assert_cmpint(a->remote.port, ==, 993);
	g_assert_cmpint(a->remote.tls, ==, MR_REMOTE_TLS_IMPLICIT);
	g_assert_cmpstr(a->folder, ==, "INBOX");
	g_assert_cmpint(a->after, ==, MR_IMAP_AFTER_MOVE);
	g_assert_cmpstr(a->after_folder, ==, "Processed");
	g_assert_cmpint(a->poll_interval_s, ==, 60);
	g_assert_cmpint(a->reconnect_max_s, ==, 60);
	g_assert_true(a->remote.tls_verify);
	g_assert_cmpint(a->role, ==, MR_ROLE_SUPPORT);
	password = mr_remote_password(&a->remote, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(password, ==, "s3cret"); /* the first line, without its end */
	g_assert_cmpint(b->remote.port, ==, 143);
	g_assert_cmpint(b->remote.tls, ==, MR_REMOTE_TLS_STARTTLS);
	g_assert_cmpint(b->remote.auth, ==, MR_REMOTE_AUTH_XOAUTH2);
	g_assert_cmpstr(b->remote.token_command[0], ==, "/usr/local/bin/get-token");
	g_assert_cmpstr(b->remote.token_command[1], ==, "crm box");
	g_assert_null(b->remote.token_command[2]);
	g_assert_cmpint(b->after, ==, MR_IMAP_AFTER_DELETE);
	g_assert_false(b->remote.tls_verify);
	g_assert_true(mr_imap_mailbox_equal(a, mr_imap_config_find(again, "support")));
	g_assert_false(mr_imap_mailbox_equal(a, b));
	/* An empty password file is an error that names the mailbox. */
	g_assert_true(g_file_set_contents(pw, "\n", -1, NULL));
	g_assert_null(mr_remote_password(&a->remote, &error));
	g_assert_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_IO);
	g_assert_nonnull(strstr(error->message, "support"));
	g_unlink(pw);
	g_unlink(path);
}

static void
test_bad(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
		g_autofree char *path = write_config(bad_cases[i].text);
		g_autoptr(GError) error = NULL;
		g_autoptr(MrConfig) cfg = mr_config_load(path, sections, &error);

		g_assert_null(cfg);
		g_assert_error(error, MR_CONFIG_ERROR, bad_cases[i].code);
		g_assert_nonnull(strstr(error->message, path));
		if (strstr(error->message, bad_cases[i].want) == NULL)
			g_error("case %u: '%s' lacks '%s'", i, error->message, bad_cases[i].want);
		g_unlink(path);
	}
}

static void
test_missing(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrConfig) cfg = mr_config_load("/nonexistent/mailroom.conf", sections, &error);

	g_assert_null(cfg);
	g_assert_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_IO);
}

/* Issue 20, item 15: what puts secrets at risk is said, at start, at each
 * reload and by mailbox test. */
static const struct {
	const char *imap;   /* the imap entry's keys after name, user, role */
	int pw_mode;        /* of its password_file; 0: password_env */
	int db_pw_mode;     /* of database_password_file; 0: none */
	const char *want;   /* a part of the one warning; NULL: none */
} warning_cases[] = {
	{ "host = \"imap.acme.test\";", 0600, 0, NULL },
	{ "host = \"imap.acme.test\";", 0400, 0, NULL },
	{ "host = \"imap.acme.test\";", 0644, 0, "password_file PW is open to its group or others (mode 0644)" },
	{ "host = \"imap.acme.test\";", 0640, 0, "(mode 0640)" },
	{ "host = \"imap.acme.test\";", 0604, 0, "(mode 0604)" },
	{ "host = \"imap.acme.test\";", 0, 0640, "database_password_file DBPW is open" },
	{ "host = \"imap.acme.test\";", 0, 0600, NULL },
	{ "host = \"127.0.0.1\"; tls = \"none\";", 0600, 0, NULL },
	{ "host = \"127.3.4.5\"; tls = \"none\";", 0600, 0, NULL },
	{ "host = \"::1\"; tls = \"none\";", 0600, 0, NULL },
	{ "host = \"LocalHost\"; tls = \"none\";", 0600, 0, NULL },
	{ "host = \"imap.acme.test\"; tls = \"none\";", 0600, 0,
	  "mailbox m: tls = \"none\" to imap.acme.test, which is not loopback: the password" },
	{ "host = \"192.168.1.10\"; tls = \"none\";", 0, 0, "to 192.168.1.10, which is not loopback" },
	{ "host = \"128.0.0.1\"; tls = \"none\";", 0, 0, "not loopback" },
	{ "host = \"localhost.acme.test\"; tls = \"none\";", 0, 0, "not loopback" },
	{ "host = \"imap.acme.test\"; tls = \"starttls\";", 0, 0, NULL },
};

static void
test_security_warnings(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(warning_cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *dir = g_dir_make_tmp("mr-config-XXXXXX", &error);
		g_autofree char *pw = g_build_filename(dir, "pw", NULL);
		g_autofree char *dbpw = g_build_filename(dir, "dbpw", NULL);
		g_autofree char *secret = NULL, *text = NULL, *path = NULL, *want = NULL;
		g_autoptr(MrConfig) cfg = NULL;
		g_auto(GStrv) all = NULL;
		g_auto(GStrv) one = NULL;

		g_assert_no_error(error);
		g_assert_true(g_file_set_contents(pw, "pw\n", -1, NULL));
		g_assert_true(g_file_set_contents(dbpw, "pw\n", -1, NULL));
		g_assert_cmpint(g_chmod(pw, warning_cases[i].pw_mode), ==, 0);
		g_assert_cmpint(g_chmod(dbpw, warning_cases[i].db_pw_mode), ==, 0);
		secret = warning_cases[i].pw_mode != 0 ? g_strdup_printf("password_file = \"%s\";", pw)
						       : g_strdup("password_env = \"P\";");
		text = g_strdup_printf(
			"database = \"/tmp/x.db\";\n%s%s%s"
			"addresses = ( { address = \"crm@acme.test\"; role = \"bcc\"; } );\n"
			"imap = ( { name = \"m\"; user = \"u\"; role = \"support\"; %s %s } );\n",
			warning_cases[i].db_pw_mode != 0 ? "database_password_file = \"" : "",
			warning_cases[i].db_pw_mode != 0 ? dbpw : "",
			warning_cases[i].db_pw_mode != 0 ? "\";\n" : "", warning_cases[i].imap, secret);
		path = write_config(text);
		cfg = mr_config_load(path, sections, &error);
		g_assert_no_error(error);
		all = mr_config_security_warnings(cfg);
		one = mr_imap_mailbox_security_warnings(mr_imap_config_find(cfg, "m"));
		if (warning_cases[i].want == NULL) {
			if (all[0] != NULL)
				g_error("case %u: unexpected warning '%s'", i, all[0]);
			g_assert_null(one[0]);
		} else {
			gboolean db = strstr(warning_cases[i].want, "DBPW") != NULL;
			g_auto(GStrv) parts = g_strsplit(warning_cases[i].want, db ? "DBPW" : "PW", 2);
			/* PW and DBPW stand for the files' paths */
			g_autofree char *w1 = g_strjoinv(db ? dbpw : pw, parts);

			want = g_strdup(warning_cases[i].want);
			g_assert_cmpuint(g_strv_length(all), ==, 1);
			if (strstr(all[0], w1) == NULL)
				g_error("case %u: '%s' lacks '%s'", i, all[0], w1);
			/* the mailbox's own: all but the database's */
			g_assert_cmpuint(g_strv_length(one), ==,
					 strstr(want, "database_password_file") != NULL ? 0 : 1);
		}
		g_unlink(pw);
		g_unlink(dbpw);
		g_rmdir(dir);
		g_unlink(path);
	}
}

/* A section that is one group (a made-up smarthost): its server keys are
 * read, and refused, under its own name. */
static const char *const smarthost_keys[] = { MR_REMOTE_KEYS, NULL };

static void
smarthost_free(gpointer r)
{
	mr_remote_clear(r);
	g_free(r);
}

static gpointer
smarthost_parse(config_setting_t *setting, const char *path, GError **error)
{
	static const MrRemoteDefaults defaults = { .port_implicit = 465, .port_plain = 587,
						   .timeout_s = 60 };
	MrRemote *r = g_new0(MrRemote, 1);

	if (setting == NULL)
		return r;
	r->label = g_strdup("smarthost");
	if (!mr_remote_parse(setting, path, "smarthost", &defaults, r, error)) {
		smarthost_free(r);
		return NULL;
	}
	return r;
}

static const MrConfigSection smarthost_section = {
	.name = "smarthost", .keys = smarthost_keys, .parse = smarthost_parse, .free = smarthost_free,
};

static void
test_section(void)
{
	static const MrConfigSection *const with_smarthost[] = { &mr_imap_config_section,
							      &smarthost_section, NULL };
	static const struct {
		const char *smarthost;
		const char *want; /* a part of the error; NULL: loads */
	} cases[] = {
		{ "smarthost = { host = \"smtp.acme.test\"; user = \"u\"; password_env = \"P\"; };", NULL },
		{ "smarthost = { host = \"smtp.acme.test\"; user = \"u\"; password_env = \"P\"; tls = \"x\"; };",
		  ":2: smarthost.tls: must be \"implicit\", \"starttls\" or \"none\"" },
		{ "smarthost = { user = \"u\"; password_env = \"P\"; };", ":2: smarthost.host: missing" },
		{ "smarthost = { host = \"h\"; user = \"u\"; auth = \"xoauth2\"; };",
		  ":2: smarthost.token_command: auth = \"xoauth2\" needs token_command" },
		{ "smarthost = { host = \"h\"; user = \"u\"; password_env = \"P\"; port = 0; };",
		  ":2: smarthost.port: must be between 1 and 65535" },
		{ "smarthost = { host = \"h\"; user = \"u\"; password_env = \"P\"; folder = \"x\"; };",
		  ":2: smarthost.folder: unknown key" },
		{ "smarthost = ( { host = \"h\"; } );", ":2: smarthost: must be a group { ... }" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = g_strdup_printf(
			"addresses = ( { address = \"a@acme.test\"; role = \"bcc\"; } );\n%s\n",
			cases[i].smarthost);
		g_autofree char *path = write_config(text);
		g_autoptr(GError) error = NULL;
		g_autoptr(MrConfig) cfg = mr_config_load(path, with_smarthost, &error);
		g_autoptr(MrConfig) without = NULL;

		if (cases[i].want == NULL) {
			const MrRemote *r = mr_config_section(cfg, &smarthost_section);

			g_assert_no_error(error);
			g_assert_cmpint(r->port, ==, 465);
			g_assert_cmpint(r->timeout_s, ==, 60);
			g_assert_cmpuint(mr_imap_config(cfg)->len, ==, 0);
			g_assert_nonnull(mr_config_section(cfg, &mr_imap_config_section));
		} else {
			g_assert_null(cfg);
			g_assert_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_INVALID);
			if (strstr(error->message, cases[i].want) == NULL)
				g_error("case %u: '%s' lacks '%s'", i, error->message, cases[i].want);
		}
		/* A program that does not know the section refuses its key. */
		g_clear_error(&error);
		without = mr_config_load(path, sections, &error);
		g_assert_null(without);
		g_assert_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_INVALID);
		g_assert_nonnull(strstr(error->message, ":2: smarthost: unknown key"));
		g_unlink(path);
	}
}

/* The relay of outgoing mail (core): STARTTLS on 587 by default, a login
 * only with a user, its retry keys; the bounce address is a bare address. */
static void
test_relay(void)
{
	static const struct {
		const char *text;
		const char *want; /* a part of the error; NULL: loads */
	} cases[] = {
		{ "relay = { host = \"smtp.acme.test\"; };", NULL },
		{ "relay = { host = \"h\"; user = \"u\"; };",
		  ":2: relay.password_file: auth = \"password\" needs" },
		{ "relay = { host = \"h\"; retry_min = 600; retry_max = 60; };",
		  ":2: relay.retry_max: must be between 600" },
		{ "relay = { host = \"h\"; helo = \"x\"; };", ":2: relay.helo: unknown key" },
		{ "relay = { host = \"h\"; from = \"nobody\"; };", ":2: relay.from: must be" },
		{ "outgoing = { bounce_address = \"b+x@acme.test\"; };",
		  ":2: outgoing.bounce_address: must be a bare address" },
		{ "outgoing = { bounce_address = \"a@acme.test\"; };",
		  ":2: outgoing.bounce_address: is one of the addresses" },
		{ "ack = { enabled = 1; };", ":2: ack.enabled: must be true or false" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = g_strdup_printf(
			"addresses = ( { address = \"a@acme.test\"; role = \"support\"; } );\n%s\n",
			cases[i].text);
		g_autofree char *path = write_config(text);
		g_autoptr(GError) error = NULL;
		g_autoptr(MrConfig) cfg = mr_config_load(path, sections, &error);

		if (cases[i].want == NULL) {
			g_assert_no_error(error);
			g_assert_true(cfg->relay.configured);
			g_assert_cmpint(cfg->relay.remote.port, ==, 587);
			g_assert_cmpint(cfg->relay.remote.tls, ==, MR_REMOTE_TLS_STARTTLS);
			g_assert_null(cfg->relay.remote.user);
			g_assert_cmpstr(cfg->relay.from, ==, "a@acme.test");
		} else {
			g_assert_null(cfg);
			g_assert_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_INVALID);
			if (strstr(error->message, cases[i].want) == NULL)
				g_error("case %u: '%s' lacks '%s'", i, error->message, cases[i].want);
		}
		g_unlink(path);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/core/config/good", test_good);
	g_test_add_func("/mailroom/core/config/imap", test_imap);
	g_test_add_func("/mailroom/core/config/bad", test_bad);
	g_test_add_func("/mailroom/core/config/missing", test_missing);
	g_test_add_func("/mailroom/core/config/spool-directory", test_spool_directory);
	g_test_add_func("/mailroom/core/config/database-name", test_database_name);
	g_test_add_func("/mailroom/core/config/clock-offset", test_clock_offset);
	g_test_add_func("/mailroom/core/config/security-warnings", test_security_warnings);
	g_test_add_func("/mailroom/core/config/section", test_section);
	g_test_add_func("/mailroom/core/config/relay", test_relay);
	return g_test_run();
}
