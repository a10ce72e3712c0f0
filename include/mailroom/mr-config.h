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
} MrRole;

typedef struct {
	char *address; /* lower-cased local@domain */
	MrRole role;
} MrMailroomAddress;

/* What becomes of a message on the server once it is stored. */
typedef enum {
	MR_IMAP_AFTER_SEEN,   /* flag \Seen */
	MR_IMAP_AFTER_MOVE,   /* move to after_folder */
	MR_IMAP_AFTER_DELETE, /* \Deleted and expunge */
} MrImapAfter;

/* One entry of the imap list: a mailbox mailroomd watches. */
typedef struct {
	char *name;           /* unique; how logs and the CLI name it */
	MrRemote remote;      /* the server and the login: host, port (default
	                         993 for implicit TLS, else 143), tls, user,
	                         auth, credentials, timeout, tls_verify,
	                         tls_ca_file; its label is "mailbox NAME" */
	char *folder;         /* default "INBOX" */
	MrRole role;          /* how its mail is routed */
	MrImapAfter after;
	char *after_folder;   /* the move: target */
	int poll_interval_s;  /* without IDLE */
	int reconnect_max_s;  /* cap of the reconnect backoff */
	MrMailroomAddress address; /* "imap:NAME" (lower case) and role: the
	                        recipient its deliveries are routed and
	                        recorded with */
} MrImapMailbox;

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
	GPtrArray *imap;          /* MrImapMailbox*: the imap list */
} MrConfig;

/* Loads and validates @path.  Relative paths in the file stay relative to
 * the working directory.  Returns: (transfer full) (nullable): the config,
 * or NULL with @error set in MR_CONFIG_ERROR and a message of the form
 * "FILE:LINE: what is wrong". */
MrConfig *mr_config_load(const char *path, GError **error);

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
 * mailroom addresses, and "imap:NAME" among the imap entries.  Sets @detail_out (nullable; transfer full) to the
 * +detail part, if any.  Returns: the matching entry (borrowed) or NULL. */
const MrMailroomAddress *mr_config_find_address(const MrConfig *cfg,
						const char *address,
						char **detail_out);

/* Returns TRUE when @domain (lower-case) is one of the own domains. */
gboolean mr_config_is_own_domain(const MrConfig *cfg, const char *domain);

/* Returns TRUE when @domain (lower-case) is a freemail domain: the built-in
 * list (gmail.com, outlook.com, gmx.de, ...) or freemail_domains. */
gboolean mr_config_is_freemail(const MrConfig *cfg, const char *domain);

/* Returns the name of @role ("bcc", "support", "sales", "none"). */
const char *mr_role_name(MrRole role);

/* Returns the imap entry named @name, or NULL. */
const MrImapMailbox *mr_config_find_imap(const MrConfig *cfg, const char *name);

/* Returns TRUE when @a and @b configure the same connection and handling
 * (a reload keeps the connection of an unchanged mailbox). */
gboolean mr_imap_mailbox_equal(const MrImapMailbox *a, const MrImapMailbox *b);

/* Returns: (transfer full): what in @mb puts its secrets at risk, one
 * sentence each, NULL-terminated (empty when nothing): those of its
 * remote, see mr_remote_security_warnings(). */
GStrv mr_imap_mailbox_security_warnings(const MrImapMailbox *mb);

/* Returns: (transfer full): the warnings of @cfg, as
 * mr_imap_mailbox_security_warnings() for every imap entry, and for a
 * database_password_file its group or others may read.  mailroomd logs
 * them at start and at each reload. */
GStrv mr_config_security_warnings(const MrConfig *cfg);

G_END_DECLS
