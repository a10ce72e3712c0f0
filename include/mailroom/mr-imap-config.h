/* mr-imap-config.h - the imap section of mailroom.conf: the mailboxes
 * mailroomd watches, parsed by the IMAP door (src/ingest/) through the
 * loader's hook for sections above core (MrConfigSection).
 *
 * mailroomd and mailroomctl pass mr_imap_config_section to
 * mr_config_load(); the mailboxes are then read with mr_imap_config(). */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-remote.h"

G_BEGIN_DECLS

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

/* The section "imap": a list of entries, each its name, the keys of its
 * server (mr_remote_parse(), refused as "imap.KEY") and folder, role,
 * after, poll_interval, reconnect_max.  It answers
 * mr_config_find_address() for "imap:NAME" and adds the warnings of each
 * entry to mr_config_security_warnings(). */
extern const MrConfigSection mr_imap_config_section;

/* Returns: (transfer none) (element-type MrImapMailbox) (nullable): the
 * imap list of @cfg, in the file's order (empty when the file has none),
 * or NULL when @cfg was loaded without mr_imap_config_section. */
GPtrArray *mr_imap_config(const MrConfig *cfg);

/* Returns: (transfer none) (nullable): the imap entry of @cfg named @name
 * (any case), or NULL. */
const MrImapMailbox *mr_imap_config_find(const MrConfig *cfg, const char *name);

/* Returns TRUE when @a and @b configure the same connection and handling
 * (a reload keeps the connection of an unchanged mailbox). */
gboolean mr_imap_mailbox_equal(const MrImapMailbox *a, const MrImapMailbox *b);

/* Returns: (transfer full): what in @mb puts its secrets at risk, one
 * sentence each, NULL-terminated (empty when nothing): those of its
 * remote, see mr_remote_security_warnings(). */
GStrv mr_imap_mailbox_security_warnings(const MrImapMailbox *mb);

G_END_DECLS
