/* mr-net.h - a connection to a remote server (mr-remote.h): TCP with a
 * timeout, TLS (implicit or after STARTTLS) verified by GIO, and reads and
 * writes under per-command budgets and deadlines; libetpan speaks its
 * protocol over it through a mailstream_low driver.
 *
 * Net stage: the IMAP door and the SMTP relay (mr-relay.h).  One thread uses a
 * connection; mr_net_conn_cancel() may be called from any thread. */
#pragma once

#include <gio/gio.h>

#include "mailroom/mr-remote.h"

G_BEGIN_DECLS

/* What a command may read from the server besides what it was granted
 * (mr_net_conn_expect()): a server that sends more loses the connection. */
#define MR_NET_READ_LIMIT (1024 * 1024)
/* Besides the connection's timeout, a command may take one second per
 * this many bytes it was granted (a body of 16 MB: 256 s more). */
#define MR_NET_MIN_RATE (64 * 1024)

typedef struct _MrNetConn MrNetConn;

/* Looks at @n bytes just read, before they are counted: @left is what the
 * command in progress may still read, these bytes included.  Returns FALSE
 * with @error set to fail the read (the protocol's own framing: the IMAP
 * door refuses a literal announced longer than @left). */
typedef gboolean (*MrNetScanFunc)(const guint8 *buf, gsize n, guint64 left, gpointer data,
				  GError **error);

/* A connection, not connected yet, whose commands take at most
 * @timeout_s (plus time for the bytes they were granted); its blocking
 * I/O ends when @cancel (nullable: its own) is cancelled.  Its warnings
 * are logged in @log_domain (static: the protocol's).  Returns: (transfer
 * full). */
MrNetConn *mr_net_conn_new(const char *log_domain, int timeout_s, GCancellable *cancel);

/* For tests and fuzzing: a connection over @stream (a reference is
 * taken), which is connected already and has no socket. */
MrNetConn *mr_net_conn_new_for_stream(const char *log_domain, int timeout_s, GIOStream *stream);

/* Frees @c and closes its streams.  NULL-safe. */
void mr_net_conn_free(MrNetConn *c);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrNetConn, mr_net_conn_free)

/* Connects @c to @r's host and port within its timeout, then, for
 * MR_REMOTE_TLS_IMPLICIT, does the TLS handshake (mr_net_conn_start_tls()).
 * Returns FALSE with @error: MR_NET_ERROR_CONNECT ("connect to
 * HOST:PORT: ...") or MR_NET_ERROR_TLS. */
gboolean mr_net_conn_connect(MrNetConn *c, const MrRemote *r, GError **error);

/* Wraps the connection of @c in TLS (after STARTTLS, or at once for
 * implicit TLS) and does the handshake within the timeout, whatever the
 * server's pace; a cancel ends it too.  The certificate is verified
 * against the system's CAs and @r's tls_ca_file, and for the name of @r's
 * host; tls_verify off accepts any (warned, "LABEL: tls_verify is
 * off ...").  Returns FALSE with @error in MR_NET_ERROR_TLS. */
gboolean mr_net_conn_start_tls(MrNetConn *c, const MrRemote *r, GError **error);

/* Makes @scan look at every read of @c (nullable: none). */
void mr_net_conn_set_scan(MrNetConn *c, MrNetScanFunc scan, gpointer data);

/* Makes the next reads of @c return the @len bytes at @buf first, before
 * what comes from the server (neither counted nor scanned): for a
 * protocol that reads a line itself and hands its parser a checked one
 * (IMAP's greeting). */
void mr_net_conn_unread(MrNetConn *c, const void *buf, gsize len);

/* Sets what the next commands may read and how long they may take:
 * @bytes more than the default MR_NET_READ_LIMIT (0: the default).  The
 * deadline starts now and again at each write. */
void mr_net_conn_expect(MrNetConn *c, guint64 bytes);

/* Lets the command in progress read @bytes more (a useful response). */
void mr_net_conn_credit(MrNetConn *c, guint64 bytes);

/* Reads at most @count bytes, within the command's budget and deadline.
 * Returns the bytes read (never 0), or -1 with the reason kept
 * (mr_net_conn_get_error()): the end of the stream is an error too
 * (G_IO_ERROR_CONNECTION_CLOSED), as are a budget spent or a literal too
 * long (G_IO_ERROR_MESSAGE_TOO_LARGE) and the deadline
 * (G_IO_ERROR_TIMED_OUT). */
gssize mr_net_conn_read(MrNetConn *c, void *buf, gsize count);

/* Writes @count bytes: a command (or its continuation) starts, with the
 * budget and deadline of the last mr_net_conn_expect().  Returns @count,
 * or -1 with the reason kept. */
gssize mr_net_conn_write(MrNetConn *c, const void *buf, gsize count);

/* Why the last read or write failed.  Returns: (nullable) (transfer
 * none). */
const GError *mr_net_conn_get_error(MrNetConn *c);

/* Returns: (transfer none): the stream in use (TCP or TLS over it), for a
 * wait until it is readable. */
GIOStream *mr_net_conn_get_stream(MrNetConn *c);

/* Returns the socket's descriptor, or -1 without one. */
int mr_net_conn_get_fd(MrNetConn *c);

/* Cancels the blocking I/O of @c (any thread). */
void mr_net_conn_cancel(MrNetConn *c);

/* libetpan's view of @c: a mailstream_low whose reads and writes are
 * mr_net_conn_read() and _write(), for mailstream_new().  Closing and
 * freeing it leaves @c alone (free @c after it).  Only what links
 * libetpan calls this (src/net/mr-net-mailstream.c). */
struct _mailstream_low *mr_net_mailstream_low_new(MrNetConn *c);

G_END_DECLS
