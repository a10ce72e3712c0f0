/* mr-relay.c - the SMTP client of the outgoing mail (see mr-relay.h):
 * libetpan's SMTP session over a connection of the network layer, one
 * mail per transaction, the connection kept between mails; pipelines
 * where the relay offers PIPELINING: 2 round trips per mail instead of 4.
 *
 * Net stage.  A relay client owns its connection and libetpan's session;
 * every reply is judged in one place (relay_check()).  Where libetpan
 * 1.9.4 trusts the server too far, the guard is here: line_scan(),
 * relay_hello() and relay_in_step().  libetpan has no pipelined send:
 * relay_envelope_pipelined() writes the group itself and reads the
 * replies with libetpan's reader. */
#define G_LOG_DOMAIN "mailroom-relay"

#include <libetpan/libetpan.h>
#include <string.h>

#include "mailroom/mr-net.h"
#include "mailroom/mr-relay.h"
#include "mailroom/mr-text.h"
#include "mailroom/mr-token.h"

/* libetpan exports these three (Debian's symbols file has them since 1.0
 * and 1.4) but installs no header for them (mailsmtp_private.h, and
 * mailesmtp_parse_ehlo() is in none).  They are the only way to say EHLO
 * and HELO with a name of our choosing (libetpan's own EHLO sends
 * gethostname() or the socket's address), and to send a pipelined group
 * and read its replies one by one. */
int mailsmtp_send_command(mailsmtp *session, char *command);
int mailsmtp_read_response(mailsmtp *session);
int mailesmtp_parse_ehlo(mailsmtp *session);

/* The longest user name and password (2 * user + password + 2 bytes) that
 * libetpan's AUTH PLAIN and LOGIN send whole: it formats "AUTH PLAIN
 * <base64>\r\n" into 513 bytes and cuts what is longer, line end
 * included, which would leave the server waiting. */
#define MR_RELAY_SASL_MAX 372

struct _MrRelay {
	const MrRemote *remote;
	char *helo_name;
	GCancellable *cancel; /* (nullable): the connections' own otherwise */
	MrNetConn *conn;      /* (nullable): not connected */
	mailsmtp *smtp;       /* (nullable): libetpan's session over conn */
	gsize line_len;       /* line_scan(): bytes of the line being read */
	gboolean dirty;       /* a transaction began and did not end: RSET */
	guint replies;        /* replies read for the mail being sent */
};

void
mr_relay_result_clear(MrRelayResult *r)
{
	if (r == NULL)
		return;
	g_free(r->reply);
	memset(r, 0, sizeof(*r));
}

/* Fills @out: @verdict, @code and the text of @fmt made one line for
 * people (control characters shown as text), cut at MR_RELAY_REPLY_MAX
 * bytes. */
static void G_GNUC_PRINTF(4, 5)
result_set(MrRelayResult *out, MrRelayVerdict verdict, int code, const char *fmt, ...)
{
	g_autofree char *text = NULL;
	g_autofree char *line = NULL;
	va_list ap;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	line = mr_text_printable(text, -1, FALSE);
	mr_relay_result_clear(out);
	out->verdict = verdict;
	out->code = code;
	if (strlen(line) > MR_RELAY_REPLY_MAX) {
		const char *cut = line + MR_RELAY_REPLY_MAX - 3;

		while (cut > line && (*cut & 0xc0) == 0x80) /* within a character */
			cut--;
		out->reply = g_strdup_printf("%.*s...", (int)(cut - line), line);
	} else {
		out->reply = g_steal_pointer(&line);
	}
}

/* TRUE when @s may stand between the brackets of MAIL FROM:<> and RCPT
 * TO:<>, or follow EHLO: at most MR_RELAY_ADDRESS_MAX bytes, none of them
 * a control character (CR or LF would start a command of the sender's
 * choosing), a space, '<' or '>'.  Other bytes pass: what the relay does
 * not take, it refuses. */
static gboolean
word_ok(const char *s)
{
	if (strlen(s) > MR_RELAY_ADDRESS_MAX)
		return FALSE;
	for (const guchar *p = (const guchar *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f || *p == ' ' || *p == '<' || *p == '>')
			return FALSE;
	return TRUE;
}

/* Every read of the connection, before libetpan sees it.  libetpan 1.9.4
 * strips a reply line's end by looking at the byte before its LF and the
 * one before that without a check of the length: a line that is a lone LF
 * makes it read before its buffer (and write there, were that byte a CR).
 * Such a line fails the read. */
static gboolean
line_scan(const guint8 *buf, gsize n, guint64 left, gpointer data, GError **error)
{
	MrRelay *r = data;

	for (gsize i = 0; i < n; i++) {
		if (buf[i] == '\n' && r->line_len == 0) {
			g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
					    "the server sent an empty line");
			return FALSE;
		}
		r->line_len = buf[i] == '\n' ? 0 : r->line_len + 1;
	}
	return TRUE;
}

/* Closes the connection without a word to the server. */
static void
relay_drop(MrRelay *r)
{
	if (r->smtp != NULL && r->smtp->stream != NULL) {
		mailstream_close(r->smtp->stream); /* frees our low driver, not conn */
		r->smtp->stream = NULL;            /* so that mailsmtp_free() says nothing */
	}
	g_clear_pointer(&r->smtp, mailsmtp_free);
	g_clear_pointer(&r->conn, mr_net_conn_free);
	r->dirty = FALSE;
}

/* TRUE when the last reply read is one SMTP knows: a code from 200 to 599
 * at the start of its last line, alone or followed by a space.  libetpan
 * takes any number strtol() reads ("+250", "25", "2500"), and 0 for none. */
static gboolean
reply_sane(const MrRelay *r)
{
	const char *line = r->smtp->line_buffer->str;
	int code = r->smtp->response_code;

	return code >= 200 && code <= 599 && g_ascii_isdigit(line[0]) && g_ascii_isdigit(line[1]) &&
	       g_ascii_isdigit(line[2]) && (line[3] == ' ' || line[3] == '\0');
}

/* Returns: (transfer full): the last reply as one line: "CODE TEXT", the
 * text of its lines joined by spaces. */
static char *
server_reply(const MrRelay *r)
{
	const char *text = r->smtp->response != NULL ? r->smtp->response : "";
	char *reply = g_strdup_printf("%d %s", r->smtp->response_code, text);

	g_strdelimit(reply, "\n", ' ');
	return g_strchomp(reply);
}

/* Forgets the last reply, so that a read or a libetpan call that gets
 * nothing is not judged by a stale one. */
static void
relay_forget(MrRelay *r)
{
	r->smtp->response_code = 0;
	mmap_string_truncate(r->smtp->line_buffer, 0);
}

/* Fails (TEMPFAIL, the connection closed) when the server has sent more
 * than it was asked for, @what being the command it would be taken for: a
 * reply to no command puts every later reply out of step. */
static gboolean
relay_unasked(MrRelay *r, const char *what, MrRelayResult *out)
{
	if (r->smtp->stream->read_buffer_len == 0)
		return TRUE;
	result_set(out, MR_RELAY_TEMPFAIL, 0, "%s: the server sent a reply that was not asked for",
		   what);
	relay_drop(r);
	return FALSE;
}

/* Before a command (or a pipelined group): forgets the last reply, checks
 * that the server has sent nothing unasked (relay_unasked()) and starts
 * the command's budget and deadline. */
static gboolean
relay_ready(MrRelay *r, const char *what, MrRelayResult *out)
{
	relay_forget(r);
	if (!relay_unasked(r, what, out))
		return FALSE;
	mr_net_conn_expect(r->conn, 0);
	return TRUE;
}

/* Judges the reply to @what, after the libetpan call that sent it
 * returned @rc.  Returns TRUE when the reply is of the class @want (2:
 * 2xx, 3: 3xx) and libetpan took it too.  Otherwise fills @out and
 * returns FALSE: a 5xx is PERMFAIL when @perm (MAIL, RCPT, DATA; but 530,
 * "authentication required", is the login's) and TEMPFAIL otherwise, a
 * 4xx is TEMPFAIL, both with the reply; no reply, one that makes no sense
 * or one of another class are TEMPFAIL and close the connection, as does
 * 421 ("closing"). */
static gboolean
relay_check(MrRelay *r, int rc, const char *what, int want, gboolean perm, MrRelayResult *out)
{
	const GError *e = mr_net_conn_get_error(r->conn);
	int code = r->smtp->response_code;
	g_autofree char *reply = NULL;

	if (!reply_sane(r)) {
		if (e != NULL)
			result_set(out, MR_RELAY_TEMPFAIL, 0, "%s: %s", what, e->message);
		else if (r->smtp->line_buffer->len > 0)
			result_set(out, MR_RELAY_TEMPFAIL, 0, "%s: a reply that makes no sense: \"%s\"",
				   what, r->smtp->line_buffer->str);
		else
			result_set(out, MR_RELAY_TEMPFAIL, 0, "%s: libetpan: %s", what,
				   mailsmtp_strerror(rc));
		relay_drop(r);
		return FALSE;
	}
	r->replies++;
	if (code / 100 == want && rc == MAILSMTP_NO_ERROR)
		return TRUE;
	reply = server_reply(r);
	if (code / 100 != 4 && code / 100 != 5) {
		result_set(out, MR_RELAY_TEMPFAIL, code, "%s: unexpected reply: %s", what, reply);
		relay_drop(r);
	} else if (code / 100 == 5 && perm && code != 530) {
		result_set(out, MR_RELAY_PERMFAIL, code, "%s", reply);
	} else {
		result_set(out, MR_RELAY_TEMPFAIL, code, "%s", reply);
		if (code == 421)
			relay_drop(r);
	}
	return FALSE;
}

/* Sends @command (a line with its CRLF) and reads the reply.  Returns a
 * MAILSMTP_ code. */
static int
relay_command(MrRelay *r, const char *command)
{
	if (mailsmtp_send_command(r->smtp, (char *)command) == -1)
		return MAILSMTP_ERROR_STREAM;
	mailsmtp_read_response(r->smtp);
	return MAILSMTP_NO_ERROR;
}

/* EHLO, or HELO when the server refuses EHLO with a 5xx; what EHLO
 * announces is read by libetpan (STARTTLS, AUTH, SIZE, DSN). */
static gboolean
relay_hello(MrRelay *r, MrRelayResult *out)
{
	g_autofree char *ehlo = g_strdup_printf("EHLO %s\r\n", r->helo_name);
	int rc;

	if (!relay_ready(r, "EHLO", out))
		return FALSE;
	rc = relay_command(r, ehlo);
	if (rc == MAILSMTP_NO_ERROR && reply_sane(r) && r->smtp->response_code / 100 == 5) {
		g_autofree char *helo = g_strdup_printf("HELO %s\r\n", r->helo_name);

		if (!relay_ready(r, "HELO", out) ||
		    !relay_check(r, relay_command(r, helo), "HELO", 2, FALSE, out))
			return FALSE;
		r->smtp->esmtp = 0; /* what libetpan's own HELO sets */
		r->smtp->auth = MAILSMTP_AUTH_NOT_CHECKED;
		return TRUE;
	}
	if (!relay_check(r, rc, "EHLO", 2, FALSE, out))
		return FALSE;
	/* libetpan 1.9.4 reads the mechanisms after "AUTH" in a loop that
	 * does not move past a tab after an unknown one: "AUTH X<TAB>Y" would
	 * spin it for ever.  Tabs become spaces first. */
	g_strdelimit(r->smtp->response, "\t", ' ');
	mailesmtp_parse_ehlo(r->smtp);
	return TRUE;
}

/* STARTTLS, the handshake (mr_net_conn_start_tls()) and EHLO again. */
static gboolean
relay_starttls(MrRelay *r, MrRelayResult *out)
{
	g_autoptr(GError) local = NULL;
	int rc;

	if ((r->smtp->esmtp & MAILSMTP_ESMTP_STARTTLS) == 0) {
		result_set(out, MR_RELAY_TEMPFAIL, 0,
			   "%s:%d does not offer STARTTLS: nothing is sent in clear", r->remote->host,
			   r->remote->port);
		return FALSE;
	}
	if (!relay_ready(r, "STARTTLS", out))
		return FALSE;
	rc = mailesmtp_starttls(r->smtp);
	/* Bytes that came after the reply would be read as if they had come
	 * over TLS (a reply injected by whoever is in the middle): refused.
	 * libetpan after 1.9.4 (and Debian's 1.9.4) refuses them too, with
	 * an error of its own and the 220 as the reply. */
	if (r->smtp->stream->read_buffer_len != 0) {
		result_set(out, MR_RELAY_TEMPFAIL, 0,
			   "STARTTLS: the server sent more than its reply before the handshake");
		return FALSE;
	}
	if (!relay_check(r, rc, "STARTTLS", 2, FALSE, out))
		return FALSE;
	if (!mr_net_conn_start_tls(r->conn, r->remote, &local)) {
		result_set(out, MR_RELAY_TEMPFAIL, 0, "%s", local->message);
		return FALSE;
	}
	return relay_hello(r, out);
}

/* Judges the reply to a login: only 235 is one (libetpan takes any 2xx
 * and 3xx it does not know as success). */
static gboolean
relay_check_login(MrRelay *r, int rc, const char *what, MrRelayResult *out)
{
	g_autofree char *reply = NULL;

	if (!relay_check(r, rc, what, 2, FALSE, out))
		return FALSE;
	if (r->smtp->response_code == 235)
		return TRUE;
	reply = server_reply(r);
	result_set(out, MR_RELAY_TEMPFAIL, r->smtp->response_code, "%s: unexpected reply: %s", what,
		   reply);
	return FALSE;
}

/* AUTH XOAUTH2 with a token from token_command; once more with a fresh
 * token when the server refuses the first (it may have expired). */
static gboolean
relay_login_oauth(MrRelay *r, MrRelayResult *out)
{
	for (int attempt = 0;; attempt++) {
		g_autoptr(GError) local = NULL;
		g_autofree char *token = mr_token_run((const char *const *)r->remote->token_command,
						      "token_command", &local);
		int rc;

		if (token == NULL) {
			result_set(out, MR_RELAY_TEMPFAIL, 0, "%s", local->message);
			return FALSE;
		}
		if (!relay_ready(r, "AUTH XOAUTH2", out)) {
			memset(token, 0, strlen(token));
			return FALSE;
		}
		rc = mailsmtp_oauth2_authenticate(r->smtp, r->remote->user, token);
		memset(token, 0, strlen(token));
		if (attempt == 0 && reply_sane(r) && r->smtp->response_code / 100 == 5)
			continue;
		return relay_check_login(r, rc, "AUTH XOAUTH2", out);
	}
}

/* Logs in as remote->user: XOAUTH2, or AUTH PLAIN (else LOGIN) with the
 * password, read afresh. */
static gboolean
relay_login(MrRelay *r, MrRelayResult *out)
{
	g_autoptr(GError) local = NULL;
	g_autofree char *password = NULL;
	const char *what;
	int type, rc;

	if (r->remote->auth == MR_REMOTE_AUTH_XOAUTH2)
		return relay_login_oauth(r, out);
	if (r->smtp->auth & MAILSMTP_AUTH_PLAIN) {
		type = MAILSMTP_AUTH_PLAIN;
		what = "AUTH PLAIN";
	} else if (r->smtp->auth & MAILSMTP_AUTH_LOGIN) {
		type = MAILSMTP_AUTH_LOGIN;
		what = "AUTH LOGIN";
	} else {
		result_set(out, MR_RELAY_TEMPFAIL, 0,
			   "%s:%d offers neither AUTH PLAIN nor AUTH LOGIN", r->remote->host,
			   r->remote->port);
		return FALSE;
	}
	password = mr_remote_password(r->remote, &local);
	if (password == NULL) {
		result_set(out, MR_RELAY_TEMPFAIL, 0, "%s", local->message);
		return FALSE;
	}
	if (2 * strlen(r->remote->user) + strlen(password) + 2 > MR_RELAY_SASL_MAX) {
		memset(password, 0, strlen(password));
		result_set(out, MR_RELAY_TEMPFAIL, 0,
			   "%s: the user name and password are too long for libetpan", what);
		return FALSE;
	}
	if (!relay_ready(r, what, out)) {
		memset(password, 0, strlen(password));
		return FALSE;
	}
	rc = mailsmtp_auth_type(r->smtp, r->remote->user, password, type);
	memset(password, 0, strlen(password));
	return relay_check_login(r, rc, what, out);
}

/* Connects, reads the greeting, says EHLO, does STARTTLS and logs in as
 * configured.  Returns FALSE with @out filled, not connected. */
static gboolean
relay_open(MrRelay *r, MrRelayResult *out)
{
	g_autoptr(GError) local = NULL;
	int rc;

	if (!word_ok(r->helo_name) || *r->helo_name == '\0') {
		result_set(out, MR_RELAY_TEMPFAIL, 0, "invalid HELO name \"%s\"", r->helo_name);
		return FALSE;
	}
	r->conn = mr_net_conn_new(G_LOG_DOMAIN, r->remote->timeout_s, r->cancel);
	r->line_len = 0;
	mr_net_conn_set_scan(r->conn, line_scan, r);
	if (!mr_net_conn_connect(r->conn, r->remote, &local)) {
		result_set(out, MR_RELAY_TEMPFAIL, 0, "%s", local->message);
		relay_drop(r);
		return FALSE;
	}
	r->smtp = mailsmtp_new(0, NULL);
	mr_net_conn_expect(r->conn, 0); /* the greeting's deadline starts now */
	/* libetpan owns the stream from here; it closes it when it fails */
	rc = mailsmtp_connect(r->smtp, mailstream_new(mr_net_mailstream_low_new(r->conn), 8192));
	if (!relay_check(r, rc, "greeting", 2, FALSE, out) || !relay_hello(r, out) ||
	    (r->remote->tls == MR_REMOTE_TLS_STARTTLS && !relay_starttls(r, out)) ||
	    (r->remote->user != NULL && !relay_login(r, out))) {
		relay_drop(r);
		return FALSE;
	}
	g_debug("connected to %s:%d", r->remote->host, r->remote->port);
	return TRUE;
}

/* TRUE when the open connection may carry another mail: the server has
 * sent nothing since its last reply, neither bytes nor the end of the
 * stream (a relay closes a connection idle too long, often after a 421). */
static gboolean
relay_in_step(MrRelay *r)
{
	GInputStream *in = g_io_stream_get_input_stream(mr_net_conn_get_stream(r->conn));

	if (r->smtp->stream->read_buffer_len != 0)
		return FALSE;
	return !(G_IS_POLLABLE_INPUT_STREAM(in) &&
		 g_pollable_input_stream_can_poll(G_POLLABLE_INPUT_STREAM(in)) &&
		 g_pollable_input_stream_is_readable(G_POLLABLE_INPUT_STREAM(in)));
}

/* The length of @data that libetpan is given: without its last line end,
 * as libetpan ends what it sends with CRLF "." CRLF whatever came before
 * (a message that ends with a line end would gain an empty line). */
static gsize
data_length(const char *data, gsize size)
{
	if (size >= 2 && data[size - 2] == '\r' && data[size - 1] == '\n')
		return size - 2;
	if (size >= 1 && data[size - 1] == '\n')
		return size - 1;
	return size;
}

/* MAIL, RCPT and DATA one at a time, each reply read before the next
 * command, with libetpan's calls.  Returns TRUE when DATA got 354. */
static gboolean
relay_envelope(MrRelay *r, const char *from, const char *rcpt, gsize size, MrRelayResult *out)
{
	/* SIZE (when announced) is the size given, an estimate: LF line ends
	 * become CRLF on the way */
	return relay_ready(r, "MAIL FROM", out) &&
	       relay_check(r, mailesmtp_mail_size(r->smtp, from, 0, NULL, size), "MAIL FROM", 2, TRUE,
			   out) &&
	       relay_ready(r, "RCPT TO", out) &&
	       relay_check(r, mailesmtp_rcpt(r->smtp, rcpt, 0, NULL), "RCPT TO", 2, TRUE, out) &&
	       relay_ready(r, "DATA", out) &&
	       relay_check(r, mailsmtp_data(r->smtp), "DATA", 3, TRUE, out);
}

/* The commands of a pipelined group in the order sent (RFC 2920: DATA
 * ends a group), the class of reply each wants, and the codes that
 * libetpan's mailesmtp_mail_size(), mailesmtp_rcpt() and mailsmtp_data()
 * take for success: another code of the wanted class is "unexpected", as
 * it is without pipelining. */
static const struct {
	const char *what;
	int want;
	int ok[2]; /* 0: none */
} relay_group[] = {
	{ "MAIL FROM", 2, { 250, 0 } },
	{ "RCPT TO", 2, { 250, 251 } },
	{ "DATA", 3, { 354, 0 } },
};

/* What the libetpan call for command @i of the group would have returned
 * on the reply just read, for relay_check(). */
static int
group_rc(const MrRelay *r, guint i)
{
	int code = r->smtp->response_code;

	if (code == 0)
		return MAILSMTP_ERROR_STREAM;
	if (code == relay_group[i].ok[0] || code == relay_group[i].ok[1])
		return MAILSMTP_NO_ERROR;
	return MAILSMTP_ERROR_UNEXPECTED_CODE;
}

/* Returns: (transfer full): MAIL FROM as mailesmtp_mail_size(session,
 * @from, 0, NULL, @size) writes it: RET=HDRS when the server announced
 * DSN (no ENVID), SIZE when it announced SIZE and @size is not 0. */
static char *
mail_command(const MrRelay *r, const char *from, gsize size)
{
	g_autofree char *size_param = NULL;

	if ((r->smtp->esmtp & MAILSMTP_ESMTP_SIZE) != 0 && size != 0)
		size_param = g_strdup_printf(" SIZE=%lu", (unsigned long)size);
	return g_strdup_printf("MAIL FROM:<%s>%s%s\r\n", from,
			       (r->smtp->esmtp & MAILSMTP_ESMTP_DSN) != 0 ? " RET=HDRS" : "",
			       size_param != NULL ? size_param : "");
}

/* MAIL, RCPT and DATA in one write, then their three replies in order,
 * each judged by relay_check() (the group's budget and deadline start at
 * the write).  All three are read whatever they say, so that the next
 * command finds the server in step; the replies after the first wait in
 * the buffer meanwhile, so the check for unasked replies comes before the
 * group and after its third reply, not between.  Returns TRUE when all
 * three were taken (DATA: 354).  Otherwise @out holds the first failure
 * (a 550 to RCPT, not the 554 to DATA that follows it), unless a later
 * reply shows the server out of step (no reply, one that makes no sense or
 * of another class, more than three): then that, TEMPFAIL, the connection
 * closed, as the replies before it may not be what they seemed.  A server
 * that says 354 to DATA although MAIL or RCPT failed gets the end of the
 * data at once, its reply read and ignored. */
static gboolean
relay_envelope_pipelined(MrRelay *r, const char *from, const char *rcpt, gsize size,
			 MrRelayResult *out)
{
	g_autofree char *mail = mail_command(r, from, size);
	g_autofree char *group = g_strdup_printf("%sRCPT TO:<%s>\r\nDATA\r\n", mail, rcpt);
	gboolean failed = FALSE;

	if (!relay_ready(r, "MAIL FROM", out))
		return FALSE;
	if (mailsmtp_send_command(r->smtp, group) == -1)
		return relay_check(r, MAILSMTP_ERROR_STREAM, "MAIL FROM", 2, TRUE, out);
	for (guint i = 0; i < G_N_ELEMENTS(relay_group); i++) {
		MrRelayResult later = { 0 };
		MrRelayResult *res = failed ? &later : out;

		relay_forget(r);
		mailsmtp_read_response(r->smtp);
		if (relay_check(r, group_rc(r, i), relay_group[i].what, relay_group[i].want, TRUE,
				res))
			continue;
		/* a failure after the first one counts only when it closed the
		 * connection for being out of step (not for a 421) */
		if (res == &later && r->conn == NULL && later.code != 421) {
			mr_relay_result_clear(out);
			*out = later;
		} else {
			mr_relay_result_clear(&later);
		}
		failed = TRUE;
		if (r->conn == NULL)
			return FALSE;
	}
	if (!relay_unasked(r, "DATA", out))
		return FALSE;
	if (!failed)
		return TRUE;
	if (r->smtp->response_code == 354) {
		relay_forget(r);
		mr_net_conn_expect(r->conn, 0);
		if (relay_command(r, ".\r\n") != MAILSMTP_NO_ERROR || !reply_sane(r))
			relay_drop(r);
	}
	return FALSE;
}

/* RSET when the last mail failed half way, then MAIL, RCPT, DATA (as one
 * group when the server announced PIPELINING) and the data, over the open
 * connection. */
static void
relay_transaction(MrRelay *r, const char *from, const char *rcpt, GBytes *data,
		  MrRelayResult *out)
{
	gsize size;
	const char *bytes = g_bytes_get_data(data, &size);
	g_autofree char *reply = NULL;
	gboolean data_ok;

	if (r->dirty && (!relay_ready(r, "RSET", out) ||
			 !relay_check(r, mailsmtp_reset(r->smtp), "RSET", 2, FALSE, out)))
		return;
	r->dirty = TRUE;
	if ((r->smtp->esmtp & MAILSMTP_ESMTP_PIPELINING) != 0)
		data_ok = relay_envelope_pipelined(r, from, rcpt, size, out);
	else
		data_ok = relay_envelope(r, from, rcpt, size, out);
	if (!data_ok || !relay_ready(r, "end of data", out))
		return;
	/* libetpan dot-stuffs and makes every bare CR and LF a CRLF */
	mr_net_conn_expect(r->conn, size); /* more time for a larger mail */
	if (!relay_check(r, mailsmtp_data_message(r->smtp, bytes, data_length(bytes, size)),
			 "end of data", 2, TRUE, out)) {
		r->dirty = FALSE; /* the transaction is over, whatever the reply */
		return;
	}
	r->dirty = FALSE;
	reply = server_reply(r);
	result_set(out, MR_RELAY_SENT, r->smtp->response_code, "%s", reply);
}

MrRelay *
mr_relay_new(const MrRemote *remote, const char *helo_name, GCancellable *cancel)
{
	MrRelay *r;

	g_return_val_if_fail(remote != NULL && helo_name != NULL, NULL);
	r = g_new0(MrRelay, 1);
	r->remote = remote;
	r->helo_name = g_strdup(helo_name);
	r->cancel = cancel != NULL ? g_object_ref(cancel) : NULL;
	return r;
}

void
mr_relay_send(MrRelay *r, const char *envelope_from, const char *rcpt, GBytes *data,
	      MrRelayResult *out)
{
	g_return_if_fail(r != NULL && envelope_from != NULL && rcpt != NULL && data != NULL &&
			 out != NULL);

	if (!word_ok(envelope_from) || !word_ok(rcpt) || *rcpt == '\0') {
		result_set(out, MR_RELAY_PERMFAIL, 0, "invalid address: %s",
			   word_ok(envelope_from) ? rcpt : envelope_from);
		return;
	}
	for (int attempt = 0;; attempt++) {
		gboolean reused = r->conn != NULL;

		if (reused && !relay_in_step(r)) {
			g_debug("%s:%d closed the connection or spoke unasked: connecting again",
				r->remote->host, r->remote->port);
			relay_drop(r);
			reused = FALSE;
		}
		if (!reused && !relay_open(r, out))
			return;
		r->replies = 0;
		relay_transaction(r, envelope_from, rcpt, data, out);
		/* A kept connection that failed before the server answered
		 * anything of this mail was gone before it began: nothing was
		 * taken, so once more on a new one. */
		if (!reused || attempt > 0 || r->conn != NULL || r->replies > 0 ||
		    (r->cancel != NULL && g_cancellable_is_cancelled(r->cancel)))
			return;
	}
}

gboolean
mr_relay_connected(MrRelay *r)
{
	return r->conn != NULL;
}

void
mr_relay_close(MrRelay *r)
{
	if (r->conn == NULL)
		return;
	if (relay_in_step(r)) {
		mr_net_conn_expect(r->conn, 0);
		relay_command(r, "QUIT\r\n"); /* its reply, whatever it is, ends it */
	}
	relay_drop(r);
}

void
mr_relay_free(MrRelay *r)
{
	if (r == NULL)
		return;
	mr_relay_close(r);
	g_clear_object(&r->cancel);
	g_free(r->helo_name);
	g_free(r);
}
