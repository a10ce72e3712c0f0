/* mr-config.h - the configuration (libconfig), loaded once, immutable after.
 *
 * A reload builds a new MrConfig and swaps it in; nothing edits one in place.
 * Every key is documented in docs/configuration.md. */
#pragma once

#include <glib.h>

#include "mailroom/mr-remote.h"

G_BEGIN_DECLS

typedef enum {
	MR_ROLE_NONE,
	MR_ROLE_BCC,     /* smart BCC: log on contacts, owner, record */
	MR_ROLE_SUPPORT, /* tickets */
	MR_ROLE_SALES,   /* inbox leads */
	MR_ROLE_BOUNCE,  /* outgoing.bounce_address: delivery reports of the
	                    mail mailroom sent (never listed in addresses) */
} MrRole;

typedef struct {
	char *address; /* lower-cased local@domain */
	MrRole role;
} MrMailroomAddress;

/* A section of the file that a folder above core parses (the imap list,
 * by src/ingest/; the relay next): see mr-config-section.h. */
typedef struct _MrConfigSection MrConfigSection;

/* The configuration, a member per group of the file (ids, parse, route,
 * store, smtp, lmtp, tls, limits, testing) and the top-level keys beside
 * them. */
typedef struct {
	char *path;               /* the file it was read from */
	char *database;           /* an SQLite file, or a postgresql:// URI */
	char *database_password_file; /* (nullable): PostgreSQL's password */
	char *spool_directory;    /* spool_directory: big messages on their way
	                             in; default: "spool" beside the database */
	char **domains;           /* lower-cased own domains, NULL-terminated */
	GPtrArray *addresses;     /* MrMailroomAddress* */
	char **freemail_domains;  /* extra freemail domains (lower-case) */
	struct {
		char *opportunity_prefix; /* upper-case, e.g. "OPP" */
		char *ticket_prefix;      /* upper-case, e.g. "TKT" */
	} ids;
	struct {
		char **fallback_charsets; /* for raw 8-bit text; NULL-terminated */
		int max_mime_parts;       /* parse.max_mime_parts */
		int max_header_lines;     /* parse.max_header_lines */
		int max_addresses;        /* parse.max_addresses */
		int max_references;       /* parse.max_references */
		int max_header_size;      /* parse.max_header_size: bytes */
	} parse;
	struct {
		int max_parties;          /* route.max_parties */
		int max_subject_scan;     /* route.max_subject_scan: bytes */
	} route;
	struct {
		char *synchronous;        /* "full" or "normal" (store.synchronous) */
		int busy_timeout_ms;      /* store.busy_timeout */
		int batch_max;            /* store.batch_max: messages per group commit */
		int batch_window_ms;      /* store.batch_window: wait for more, ms */
		int query_timeout_s;      /* store.query_timeout: the longest wait for
		                             PostgreSQL, seconds */
	} store;
	struct {
		gint64 clock_offset_s;    /* testing.clock_offset: seconds the clock is
		                             moved (tests only); whoever adopts the
		                             config passes it to mr_clock_set_offset() */
	} testing;

	/* mailroomd */
	char *hostname;           /* in greetings; default: the host name */
	struct {
		char **listen;            /* smtp.listen: "host:port" */
		gboolean bare_lf_reject;  /* smtp.bare_lf = "reject" (else "normalize") */
	} smtp;
	struct {
		char **listen;            /* lmtp.listen: "host:port" */
	} lmtp;
	struct {
		char *cert, *key;         /* (nullable): PEM files; STARTTLS when set */
	} tls;
	char **trusted_networks;  /* CIDR; default loopback */
	char *authserv_id;        /* (nullable): trust internal From: only when
	                             Authentication-Results of this id pass */
	char *timezone;           /* timezone: an IANA name, default "UTC" */
	GTimeZone *tz;            /* @timezone, for the rules' weekday and hour */
	/* Outgoing mail (docs/outgoing.md). */
	struct {
		gboolean configured;      /* a relay group is in the file: without
		                             one, mail is queued and not sent */
		MrRemote remote;          /* relay.host, port (465 implicit TLS,
		                             else 587), tls (default starttls), user
		                             (optional: no login), auth, ...; label
		                             "relay" */
		char *from;               /* relay.from: "Name <address>"; default
		                             the first support address */
		int retry_min_s;          /* relay.retry_min: first backoff */
		int retry_max_s;          /* relay.retry_max: longest backoff */
		int max_attempts;         /* relay.max_attempts: then failed */
	} relay;
	struct {
		int max_auto_per_recipient_per_day; /* outgoing.max_auto_per_recipient_per_day */
		char *bounce_address;     /* outgoing.bounce_address, lower-case;
		                             default bounces@ the first domain */
	} outgoing;
	struct {
		gboolean enabled;         /* ack.enabled: the ticket acknowledgement */
		char *template_name;      /* ack.template: default "ticket-ack" */
	} ack;
	struct {
		char *unowned;            /* workflows.unowned: the user (an address,
		                             lower-case) who gets the reminders and
		                             tasks of a record without an owner;
		                             NULL: they are left out */
	} workflows;
	struct {
		gint64 max_message_size;  /* limits.max_message_size, bytes */
		int max_recipients;       /* limits.max_recipients */
		int max_connections;      /* limits.max_connections */
		int timeout_s;            /* limits.timeout: idle seconds */
		int max_errors;           /* limits.max_errors: per session */
		int max_connections_per_ip; /* limits.max_connections_per_ip */
		int tls_handshake_timeout_s; /* limits.tls_handshake_timeout: seconds */
		int max_tls_handshakes;   /* limits.max_tls_handshakes: at once */
		gint64 spool_threshold;   /* limits.spool_threshold: bytes kept in memory */
		gint64 max_bytes_in_flight; /* limits.max_bytes_in_flight: of spooled
		                             messages being parsed and stored at once */
		int drain_timeout_s;      /* limits.drain_timeout: SIGTERM's drain, seconds */
	} limits;

	/* The sections parsed above core, as mr_config_load() was given them:
	 * read with mr_config_section() (the imap list: mr_imap_config()). */
	const MrConfigSection **sections; /* NULL-terminated */
	gpointer *section_values;         /* each section's value, in order */
} MrConfig;

/* Loads and validates @path.  Relative paths in the file stay relative to
 * the working directory.  @sections (nullable, NULL-terminated; static)
 * are the sections parsed above core that the caller knows (mailroomd
 * and mailroomctl: mr_imap_config_section); their top-level keys are
 * refused as unknown without them.  Each is parsed after the addresses,
 * in the order given.  Returns: (transfer full) (nullable): the config,
 * or NULL with @error set in MR_CONFIG_ERROR and a message of the form
 * "FILE:LINE: what is wrong". */
MrConfig *mr_config_load(const char *path, const MrConfigSection *const *sections,
			 GError **error);

/* Returns: (transfer none) (nullable): the value @section's parser gave
 * for @cfg, or NULL when @cfg was loaded without @section. */
gconstpointer mr_config_section(const MrConfig *cfg, const MrConfigSection *section);

/* Takes a reference on @cfg (a reload swaps configurations while sessions
 * and the writer still use the old one).  Returns: @cfg. */
MrConfig *mr_config_ref(MrConfig *cfg);

/* Drops a reference; the last one frees @cfg.  NULL-safe. */
void mr_config_unref(MrConfig *cfg);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrConfig, mr_config_unref)

/* Returns: (transfer full): the database of @cfg with a URI's password
 * (user:PASSWORD@, a literal password=PASSWORD) replaced by "***": a
 * guess without the engine's parser, which misses a percent-encoded key.
 * What logs and output show is mr_store_database_name() (mr-store.h). */
char *mr_config_database_name(const MrConfig *cfg);

/* Returns the default configuration path: $MAILROOM_CONFIG when set, else
 * SYSCONFDIR/mailroom.conf.  Returns: the path (borrowed, static). */
const char *mr_config_default_path(void);

/* Looks @address (any case, with or without a +detail) up among the
 * mailroom addresses; an address that starts with a section's
 * address_scheme ("imap:NAME") is answered by that section alone.  Sets
 * @detail_out (nullable; transfer full) to the +detail part, if any.
 * Returns: the matching entry (borrowed) or NULL. */
const MrMailroomAddress *mr_config_find_address(const MrConfig *cfg,
						const char *address,
						char **detail_out);

/* Returns TRUE when @domain (lower-case) is one of the own domains. */
gboolean mr_config_is_own_domain(const MrConfig *cfg, const char *domain);

/* Returns TRUE when @domain (lower-case) is a freemail domain: the built-in
 * list (gmail.com, outlook.com, gmx.de, ...) or freemail_domains. */
gboolean mr_config_is_freemail(const MrConfig *cfg, const char *domain);

/* Returns the name of @role ("bcc", "support", "sales", "bounce",
 * "none"). */
const char *mr_role_name(MrRole role);

/* Returns the role named @name (any case): bcc, support or sales, else
 * MR_ROLE_NONE (for "none" too). */
MrRole mr_role_from_name(const char *name);

/* Returns: (transfer full): the warnings of @cfg: for a
 * database_password_file its group or others may read, then those of
 * each section (every imap entry's server, see
 * mr_remote_security_warnings()).  mailroomd logs them at start and at
 * each reload. */
GStrv mr_config_security_warnings(const MrConfig *cfg);

G_END_DECLS
