/* mr-imap.h - the IMAP door: mailroomd fetches the mail of IMAP mailboxes
 * (the imap entries of the configuration).
 *
 * One thread per mailbox speaks IMAP through libetpan over a GIO
 * connection (TLS from GIO, verified against the system's CA store and
 * tls_ca_file).  It fetches every message above the last UID handled,
 * hands the bytes to the writer (the same parse, route and group commit
 * as SMTP mail, recipient "imap:NAME"), and only after COMMIT applies the
 * after action (\Seen, move, delete) and records the new last UID.  Then
 * it waits in IDLE, or polls.  A crash anywhere repeats at most the last
 * batch, and a message stored before is not stored again. */
#pragma once

#include <gio/gio.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-imap-config.h"
#include "mailroom/mr-service.h"
#include "mailroom/mr-writer.h"

G_BEGIN_DECLS

/* The IMAP mailboxes of the configuration, a thread each. */
extern const MrServiceClass mr_imap_service;

/* What mailroomctl mailbox test shows: a login without a fetch. */
typedef struct {
	char **capabilities; /* after the login */
	gint64 exists;       /* messages in the folder */
	gint64 uidvalidity;
	gint64 uidnext;
} MrImapProbe;

void mr_imap_probe_clear(MrImapProbe *probe);

/* Connects to @mb, logs in, selects its folder (read-only: EXAMINE) and
 * logs out.  Returns TRUE and fills @out, or FALSE with @error
 * (MR_IMAP_ERROR_AUTH for a refused login, MR_IMAP_ERROR_TLS, _CONNECT,
 * _PROTOCOL). */
gboolean mr_imap_probe(const MrImapMailbox *mb, MrImapProbe *out, GError **error);

/* For tests and fuzzing: one session of mailbox @mb as its thread runs
 * it -- greeting, login, select, drain through @writer, IDLE or polling
 * -- over @stream (what the server says in, what mailroomd says out),
 * without waits, until the stream ends or fails.  The state starts
 * empty (not read from the database).  Returns FALSE with @error, why the
 * session ended (a stream that ends is a failure too), or TRUE when it
 * ended by its own choice. */
gboolean mr_imap_run_stream(MrWriter *writer, MrConfig *cfg, const MrImapMailbox *mb,
			    GIOStream *stream, GError **error);

G_END_DECLS
