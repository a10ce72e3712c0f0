/* mr-relay.h - the SMTP client that sends mailroom's outgoing mail through
 * the organisation's relay: libetpan's SMTP over a connection of the
 * network layer (mr-net.h), one mail at a time, the connection kept open
 * between mails; pipelines where the relay offers PIPELINING: 2 round
 * trips per mail instead of 4.
 *
 * Net stage.  Blocking: one thread (the sender of src/act/) uses a relay
 * client; the cancellable given to mr_relay_new() ends its I/O from any
 * thread.  libetpan 1.9.4 notes PIPELINING in the EHLO reply but has no
 * pipelined send: when the server announces it, MAIL, RCPT and DATA go
 * out in one write (RFC 2920) and libetpan's reader reads their replies;
 * every other command is sent alone and its reply read before the next
 * one.  One recipient per mail.  Only what links libetpan calls this
 * (mailroomd). */
#pragma once

#include <gio/gio.h>

#include "mailroom/mr-remote.h"

G_BEGIN_DECLS

/* What became of one mail. */
typedef enum {
	MR_RELAY_SENT,     /* the relay took it (2xx after DATA) */
	MR_RELAY_TEMPFAIL, /* try again later: nothing is lost */
	MR_RELAY_PERMFAIL, /* the relay refused it for good (5xx to MAIL,
	                      RCPT or DATA), or an invalid address */
} MrRelayVerdict;

/* The verdict on one mail and why, for people and the database. */
typedef struct {
	MrRelayVerdict verdict;
	int code;    /* the server's reply code (250, 451, 550); 0 when there
	                was no reply (no connection, a time-out, a refused
	                address, a reply that makes no sense) */
	char *reply; /* (transfer full): one line: the server's reply ("550
	                5.1.1 <x@y>: user unknown", the lines of a multi-line
	                reply joined by spaces) or what went wrong ("connect to
	                smtp.acme.test:587: Connection refused"); control
	                characters shown as text, at most MR_RELAY_REPLY_MAX
	                bytes */
} MrRelayResult;

/* The longest reply kept in an MrRelayResult (longer ones are cut at a
 * character and end in "..."). */
#define MR_RELAY_REPLY_MAX 500
/* The longest envelope address sent (RFC 5321's limit on a path). */
#define MR_RELAY_ADDRESS_MAX 256

/* Frees the members of @r (not @r itself) and zeroes it.  NULL-safe. */
void mr_relay_result_clear(MrRelayResult *r);

typedef struct _MrRelay MrRelay;

/* A relay client for @remote (not copied: the caller keeps it alive until
 * mr_relay_free()), introducing itself as @helo_name (a host name or an
 * address literal; copied); not connected yet.  @cancel (nullable; a
 * reference is taken) ends blocking I/O from any thread: a send in
 * progress and every later one then fail (TEMPFAIL).  Returns: (transfer
 * full). */
MrRelay *mr_relay_new(const MrRemote *remote, const char *helo_name, GCancellable *cancel);

/* Sends one mail: @data (a whole RFC 5322 message, CRLF or LF line ends;
 * lines that start with "." are dot-stuffed, bare CR and LF become CRLF)
 * from @envelope_from ("" is the null sender <>) to @rcpt.
 *
 * When not connected: connects, reads the greeting, says EHLO (HELO when
 * the server refuses EHLO with a 5xx), does STARTTLS when @remote->tls is
 * MR_REMOTE_TLS_STARTTLS (refusing to go on in clear when the server does
 * not offer it) and then EHLO again, and logs in when @remote->user is
 * set: AUTH PLAIN (else LOGIN) with mr_remote_password(), read afresh, or
 * AUTH XOAUTH2 with a token from mr_token_run(@remote->token_command),
 * once more with a fresh token when the server refuses it.  When
 * connected, reuses the connection: RSET first when the previous mail
 * failed half way; a connection the server has closed or spoken on
 * unasked since is closed and opened again, and so is one that fails
 * before the server answered anything of this mail.  Then MAIL
 * FROM:<@envelope_from> (with SIZE when the server announces it, and
 * RET=HDRS when it announces DSN), RCPT TO:<@rcpt>, DATA and @data.
 * When the server announces PIPELINING, MAIL, RCPT and DATA are one
 * write and all three replies are read whatever they say, so that the
 * connection stays in step: the verdict is the first failure (a 550 to
 * RCPT, not the 554 to DATA after it) unless a later reply shows the
 * server out of step (see TEMPFAIL); a server that says 354 to DATA after
 * refusing MAIL or RCPT gets the end of the data at once, nothing of
 * @data.
 *
 * Every reply (the three of a pipelined group: together) is read within
 * @remote->timeout_s (the reply after the data gets one second more per
 * 64 KiB of it) and within MR_NET_READ_LIMIT bytes.  Always fills @out
 * (zeroed, or filled by an earlier send: its reply is freed first):
 *   - SENT: a 2xx reply after the data;
 *   - PERMFAIL: a 5xx reply to MAIL, RCPT or DATA (not 530, "authentication
 *     required", which is the login's); an address that is longer than
 *     MR_RELAY_ADDRESS_MAX or holds a control character, a space, '<' or
 *     '>' (@rcpt: or is empty) is refused before anything is written,
 *     reply "invalid address: ...";
 *   - TEMPFAIL: a 4xx reply; no connection, a time-out, a cancel, the
 *     server closing the connection; a TLS or login failure (a refused
 *     password is the administrator's to fix, the mail must wait); a reply
 *     that makes no sense (no three-digit code, a code that does not fit
 *     the command, more replies than commands), also after the first
 *     failure of a pipelined group (its replies may not be what they
 *     seemed).
 * After a failure of the connection (no reply, a reply that makes no
 * sense, 421) the connection is closed and the next send connects again. */
void mr_relay_send(MrRelay *r, const char *envelope_from, const char *rcpt, GBytes *data,
		   MrRelayResult *out);

/* Returns TRUE while a connection to the relay is open. */
gboolean mr_relay_connected(MrRelay *r);

/* Says QUIT and reads its reply (best effort, within @remote->timeout_s),
 * then closes the connection.  Idempotent; the next send connects again. */
void mr_relay_close(MrRelay *r);

/* Closes @r (mr_relay_close()) and frees it.  NULL-safe. */
void mr_relay_free(MrRelay *r);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRelay, mr_relay_free)

G_END_DECLS
