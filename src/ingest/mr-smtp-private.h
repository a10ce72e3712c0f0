/* mr-smtp-private.h - what the files of the SMTP and LMTP door share:
 * the server (mr-smtp-server.c) and the sessions it starts
 * (mr-smtp-session.c).
 *
 * Not for other folders: the door's contract is mr-smtp.h. */
#pragma once

#include <gio/gio.h>

#include "mailroom/mr-smtp.h"
#include "mailroom/mr-spool.h"

G_BEGIN_DECLS

/* What one read of a session takes (the server's read buffer). */
#define SMTP_READ_CHUNK 65536

typedef enum {
	MR_SMTP_REFUSE_UNTRUSTED,
	MR_SMTP_REFUSE_CONNECTIONS,
	MR_SMTP_REFUSE_CONNECTIONS_PER_IP,
	MR_SMTP_REFUSE_N
} MrSmtpRefusal;

typedef enum {
	MR_SMTP_STATE_HELO,   /* greeted; waits for EHLO/HELO/LHLO */
	MR_SMTP_STATE_MAIL,   /* ready for MAIL */
	MR_SMTP_STATE_RCPT,   /* MAIL given: RCPT, DATA */
	MR_SMTP_STATE_DATA,   /* reading the message */
	MR_SMTP_STATE_COMMIT, /* waiting for the writer's COMMIT */
	MR_SMTP_STATE_TLS,    /* STARTTLS handshake */
	MR_SMTP_STATE_QUIT,   /* closing after the last reply */
	MR_SMTP_STATE_N
} MrSmtpState;

/* The states' names, for logs. */
extern const char *const mr_smtp_state_names[MR_SMTP_STATE_N];

struct _MrSmtpServer {
	MrConfig *cfg;
	MrWriter *writer;
	GPtrArray *listeners;     /* MrSmtpListener* */
	GPtrArray *masks;         /* GInetAddressMask*, from cfg */
	GTlsCertificate *cert;    /* (nullable) */
	GHashTable *sessions;     /* MrSmtpSession* set */
	GHashTable *per_ip;       /* peer address (owned) -> sessions, as GUINT */
	guint tls_running;        /* handshakes on a worker thread */
	GQueue tls_waiting;       /* MrSmtpSession*: ClientHello in, no slot yet */
	gint64 refuse_window;     /* monotonic µs: start of the log window */
	guint refuse_logged;      /* refusal lines logged in the window */
	guint refuse_quiet[MR_SMTP_REFUSE_N]; /* refusals not logged, by reason */
	guint sweep_id;           /* idle-timeout sweep */
	gboolean trace;           /* state transitions in the debug log */
	guint8 *chunk;            /* the read buffer: reads happen on one thread */
	gboolean draining;
	guint64 accepted;
	guint64 next_id;
};

typedef struct {
	gint ref;
	MrSmtpServer *server; /* NULL once the server is gone */
	MrConfig *cfg;
	gboolean lmtp;
	GIOStream *io;        /* the socket connection, or TLS over it */
	GSocketConnection *conn;
	GSource *in_source;   /* attached while we want input */
	GSource *out_source;  /* attached while the socket buffer is full */
	gint64 last_active;   /* monotonic µs since the client owes us a line:
	                         the last complete line (not byte) or reply */
	char id[17];
	char *peer;
	MrSmtpState state;
	GByteArray *in;       /* received, not yet processed */
	gboolean closed, tls, handshaking, discard_line;
	gboolean peer_eof;    /* the client closed its side: finish, then close */
	gboolean eof_logged;
	GSource *hello_source; /* TLS: waits for the client's first record */
	int hello_need;       /* bytes of it we wait for (SO_RCVLOWAT) */
	gboolean tls_queued;  /* in server->tls_waiting */
	gboolean tls_counted; /* counted in server->tls_running */
	GCancellable *tls_cancel;
	gboolean data_crlf;   /* DATA: the last line ended in a real CR LF (or
	                         none has come yet): a line may start here */
	gboolean data_bare_lf; /* DATA: a line ended in a bare LF */
	GString *out;         /* replies not yet written */
	int errors;
	char *helo;
	char *mail_from;      /* NULL: no transaction; "": null sender */
	GPtrArray *rcpts;     /* char*, lower-case */
	MrSpool *data;        /* DATA: in memory, or spooled past a threshold */
	gsize data_size;      /* bytes seen, also past the limit */
	gint64 declared_size;
} MrSmtpSession;

/* --- mr-smtp-session.c --- */

MrSmtpSession *mr_smtp_session_ref(MrSmtpSession *s);

/* Drops a reference; the last one frees @s.  NULL-safe. */
void mr_smtp_session_unref(MrSmtpSession *s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrSmtpSession, mr_smtp_session_unref)

/* Logs "ID smtp|lmtp TEXT" with the session's correlation fields. */
void mr_smtp_session_log(MrSmtpSession *s, GLogLevelFlags level, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

/* Moves @s to @state (traced at debug when the server asks). */
void mr_smtp_session_enter_state(MrSmtpSession *s, MrSmtpState state);

/* Queues a reply (written by mr_smtp_session_flush()). */
void mr_smtp_session_reply(MrSmtpSession *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Ends the transaction in progress, if any. */
void mr_smtp_session_reset_tx(MrSmtpSession *s);

/* Closes the connection; the slot is given back unless a message waits
 * for COMMIT. */
void mr_smtp_session_close(MrSmtpSession *s);

/* Writes what is queued without blocking. */
void mr_smtp_session_flush(MrSmtpSession *s);

/* Waits for the client's input on the main loop. */
void mr_smtp_session_read(MrSmtpSession *s);

/* Attaches a socket source to the default context (see there why it is
 * recursive). */
void mr_smtp_loop_source_attach(GSource *source);

/* --- mr-smtp-server.c --- */

/* Counts a session of @peer out. */
void mr_smtp_server_ip_remove(MrSmtpServer *server, const char *peer);

G_END_DECLS
