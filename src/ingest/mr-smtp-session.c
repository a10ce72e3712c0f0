/* mr-smtp-session.c - an SMTP or LMTP session: the protocol state
 * machine, bounded line reading, pipelined replies, DATA with
 * dot-unstuffing, STARTTLS (its handshakes admitted by the server).
 *
 * Ingest stage.  Every byte from the peer is bounded (line length,
 * message size, recipients, errors, idle time); protocol errors are
 * replies, not log lines.  The listeners that start sessions are
 * mr-smtp-server.c. */
#define G_LOG_DOMAIN "mailroom-smtp"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-spool.h"
#include "mr-smtp-private.h"

/* RFC 5321 4.5.3.1.4 says 512 octets; SIZE= and long addresses make real
 * clients send more, and nothing breaks at 2048. */
#define SMTP_MAX_LINE 2048
/* Pipelined input held while a transaction commits. */
#define SMTP_MAX_BUFFER (1024 * 1024)
/* Replies queued for a client that does not read them: past this, its
 * input is left unread until it catches up. */
#define SMTP_MAX_OUTPUT (64 * 1024)
/* A TLS record (RFC 8446 5.1: at most 2^14 bytes of plaintext; more for
 * older versions' compression and padding) with its 5-byte header. */
#define TLS_MAX_RECORD (5 + 16384 + 2048)

const char *const mr_smtp_state_names[MR_SMTP_STATE_N] = {
	[MR_SMTP_STATE_HELO] = "HELO",	 [MR_SMTP_STATE_MAIL] = "MAIL",
	[MR_SMTP_STATE_RCPT] = "RCPT",	 [MR_SMTP_STATE_DATA] = "DATA",
	[MR_SMTP_STATE_COMMIT] = "COMMIT", [MR_SMTP_STATE_TLS] = "TLS",
	[MR_SMTP_STATE_QUIT] = "QUIT",
};

static void session_process(MrSmtpSession *s);

/* --- session basics -------------------------------------------------------- */

MrSmtpSession *
mr_smtp_session_ref(MrSmtpSession *s)
{
	g_atomic_int_inc(&s->ref);
	return s;
}

void
mr_smtp_session_unref(MrSmtpSession *s)
{
	if (s == NULL || !g_atomic_int_dec_and_test(&s->ref))
		return;
	g_clear_object(&s->io);
	g_clear_object(&s->conn);
	g_clear_object(&s->tls_cancel);
	g_free(s->peer);
	g_byte_array_unref(s->in);
	g_string_free(s->out, TRUE);
	g_free(s->helo);
	g_free(s->mail_from);
	g_ptr_array_unref(s->rcpts);
	g_clear_pointer(&s->data, mr_spool_free);
	mr_config_unref(s->cfg);
	g_free(s);
}

void
mr_smtp_session_log(MrSmtpSession *s, GLogLevelFlags level, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *text = NULL;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_log_structured(G_LOG_DOMAIN, level, "MR_SESSION", s->id, "MR_STAGE", "ingest",
			 "MESSAGE", "%s %s %s", s->id, s->lmtp ? "lmtp" : "smtp", text);
}

void
mr_smtp_session_enter_state(MrSmtpSession *s, MrSmtpState state)
{
	/* Formatting costs even when the line is dropped: trace only when
	 * asked for (G_MESSAGES_DEBUG=mailroom-smtp). */
	if (s->state != state && s->server != NULL && s->server->trace)
		g_debug("%s %s -> %s", s->id, mr_smtp_state_names[s->state], mr_smtp_state_names[state]);
	s->state = state;
}

static void G_GNUC_PRINTF(2, 0)
session_vreply(MrSmtpSession *s, const char *fmt, va_list ap)
{
	g_string_append_vprintf(s->out, fmt, ap);
	g_string_append(s->out, "\r\n");
}

void
mr_smtp_session_reply(MrSmtpSession *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s, fmt, ap);
	va_end(ap);
}

/* A permanent error reply; too many of them end the session. */
static void
session_error(MrSmtpSession *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
session_error(MrSmtpSession *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s, fmt, ap);
	va_end(ap);
	if (++s->errors >= s->cfg->limits.max_errors) {
		mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "disconnected reason=too-many-errors peer=%s",
				    s->peer);
		g_string_append(s->out, "421 4.7.0 Too many errors, closing connection\r\n");
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
	}
}

void
mr_smtp_session_reset_tx(MrSmtpSession *s)
{
	g_clear_pointer(&s->mail_from, g_free);
	g_ptr_array_set_size(s->rcpts, 0);
	g_clear_pointer(&s->data, mr_spool_free);
	s->data_size = 0;
	s->declared_size = 0;
}

static void
session_stop_reading(MrSmtpSession *s)
{
	if (s->in_source != NULL) {
		g_source_destroy(s->in_source);
		g_clear_pointer(&s->in_source, g_source_unref);
	}
}

/* Gives the session's connection slot back to the server, once. */
static void
session_release_slot(MrSmtpSession *s)
{
	if (s->server != NULL && g_hash_table_remove(s->server->sessions, s)) {
		mr_smtp_server_ip_remove(s->server, s->peer);
		mr_smtp_session_unref(s);
	}
}

/* Closes the connection.  The session stays counted while its message
 * waits for COMMIT; on_committed() releases it then. */
void
mr_smtp_session_close(MrSmtpSession *s)
{
	if (s->closed)
		return;
	s->closed = TRUE;
	session_stop_reading(s);
	if (s->out_source != NULL) {
		g_source_destroy(s->out_source);
		g_clear_pointer(&s->out_source, g_source_unref);
	}
	if (s->hello_source != NULL) {
		g_source_destroy(s->hello_source);
		g_clear_pointer(&s->hello_source, g_source_unref);
	}
	if (s->tls_queued && s->server != NULL)
		g_queue_remove(&s->server->tls_waiting, s);
	s->tls_queued = FALSE;
	/* A TLS handshake runs in a worker thread blocked on the socket:
	 * cancel it, and shut the socket down (closing the streams alone does
	 * not end it).  Its slot is given back when on_handshake() runs. */
	if (s->tls_cancel != NULL)
		g_cancellable_cancel(s->tls_cancel);
	g_io_stream_close(s->io, NULL, NULL);
	g_socket_shutdown(g_socket_connection_get_socket(s->conn), TRUE, TRUE, NULL);
	g_socket_close(g_socket_connection_get_socket(s->conn), NULL);
	/* A message handed to the writer still holds its spool file and its
	 * place in the queue: the session keeps its slot (global and per
	 * address) until on_committed(), else a client that resets after its
	 * final dot could queue messages without end (issue 20, item 17). */
	if (s->state != MR_SMTP_STATE_COMMIT)
		session_release_slot(s);
}

/* --- output ------------------------------------------------------------------- */

static void on_handshake(GObject *source, GAsyncResult *res, gpointer data);

/* Attaches a socket source to the default context.  Marked
 * recursive: nothing here runs a nested main loop, and GLib blocks a
 * non-recursive source around every dispatch by taking its descriptor out
 * of the poll set and putting it back, each time waking the loop through
 * its eventfd: two write(2)s per dispatch, many per message. */
void
mr_smtp_loop_source_attach(GSource *source)
{
	g_source_set_can_recurse(source, TRUE);
	g_source_attach(source, NULL);
}

static gboolean
on_writable(GObject *stream, gpointer data)
{
	g_autoptr(MrSmtpSession) s = mr_smtp_session_ref(data);

	g_clear_pointer(&s->out_source, g_source_unref);
	mr_smtp_session_flush(s);
	/* Input left unread while replies piled up can go on now. */
	if (!s->closed && s->out_source == NULL && s->state != MR_SMTP_STATE_COMMIT)
		session_process(s);
	return G_SOURCE_REMOVE;
}

static gboolean on_readable(GObject *stream, gpointer data);

static gboolean
on_socket_in(GSocket *socket, GIOCondition condition, gpointer data)
{
	MrSmtpSession *s = data;

	return on_readable(G_OBJECT(g_io_stream_get_input_stream(s->io)), data);
}

static gboolean
on_socket_out(GSocket *socket, GIOCondition condition, gpointer data)
{
	return on_writable(NULL, data);
}

/* A source for @condition (G_IO_IN or G_IO_OUT) on the session's
 * connection.  Plain TCP gets the socket's own source: one descriptor and
 * no child source to block and unblock per dispatch.  Under TLS the
 * stream's, which also knows about data the TLS layer holds. */
static GSource *
session_source_new(MrSmtpSession *s, GIOCondition condition)
{
	GSource *source;

	if (!G_IS_TLS_CONNECTION(s->io)) {
		source = g_socket_create_source(g_socket_connection_get_socket(s->conn), condition,
						NULL);
		g_source_set_callback(source,
				      condition == G_IO_IN ? G_SOURCE_FUNC(on_socket_in)
							   : G_SOURCE_FUNC(on_socket_out),
				      s, NULL);
	} else if (condition == G_IO_IN) {
		source = g_pollable_input_stream_create_source(
			G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(s->io)), NULL);
		g_source_set_callback(source, G_SOURCE_FUNC(on_readable), s, NULL);
	} else {
		source = g_pollable_output_stream_create_source(
			G_POLLABLE_OUTPUT_STREAM(g_io_stream_get_output_stream(s->io)), NULL);
		g_source_set_callback(source, G_SOURCE_FUNC(on_writable), s, NULL);
	}
	return source;
}

/* Runs the handshake on a GLib worker thread (GIO has no other way),
 * counted in server->tls_running; the sweep cancels it at its deadline. */
static void
session_start_tls(MrSmtpSession *s)
{
	g_autoptr(GError) error = NULL;
	GSocket *socket = g_socket_connection_get_socket(s->conn);
	GIOStream *tls;

	/* The thread's reads must wake for any byte again. */
	g_socket_set_option(socket, SOL_SOCKET, SO_RCVLOWAT, 1, NULL);
	tls = g_tls_server_connection_new(s->io, s->server->cert, &error);
	if (tls == NULL) {
		mr_smtp_session_log(s, G_LOG_LEVEL_WARNING, "starttls failed: %s", error->message);
		mr_smtp_session_close(s);
		return;
	}
	g_object_unref(s->io);
	s->io = tls;
	s->tls_cancel = g_cancellable_new();
	s->tls_counted = TRUE;
	s->server->tls_running++;
	g_tls_connection_handshake_async(G_TLS_CONNECTION(tls), G_PRIORITY_DEFAULT, s->tls_cancel,
					 on_handshake, mr_smtp_session_ref(s));
}

/* Starts handshakes that wait for a thread, while limits.max_tls_handshakes
 * allows. */
static void
server_next_handshake(MrSmtpServer *server)
{
	while (server->tls_running < (guint)server->cfg->limits.max_tls_handshakes &&
	       !g_queue_is_empty(&server->tls_waiting)) {
		g_autoptr(MrSmtpSession) s = mr_smtp_session_ref(g_queue_pop_head(&server->tls_waiting));

		s->tls_queued = FALSE;
		session_start_tls(s);
	}
}

/* After "220 Ready to start TLS", the client's first TLS record (its
 * ClientHello) is awaited here, on the main loop: a client that says
 * STARTTLS and then nothing, or sends half a hello, costs no thread.  The
 * kernel is asked (SO_RCVLOWAT) to wake us only once the whole record is
 * in.  Then the handshake takes a thread, or waits for one. */
static gboolean
on_hello(GSocket *socket, GIOCondition condition, gpointer data)
{
	g_autoptr(MrSmtpSession) s = mr_smtp_session_ref(data);
	guint8 head[5];
	gssize n = recv(g_socket_get_fd(socket), head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
	int avail = 0;
	int need = (int)sizeof head;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "disconnected reason=%s state=TLS peer=%s",
				    n == 0 ? "eof" : "read-error", s->peer);
		mr_smtp_session_close(s);
		return G_SOURCE_REMOVE;
	}
	if (ioctl(g_socket_get_fd(socket), FIONREAD, &avail) < 0)
		avail = (int)n;
	/* A handshake record: type 22, version, then a 16-bit length.
	 * Anything else goes to the TLS library, which refuses it. */
	if (n == (gssize)sizeof head && head[0] == 22)
		need = MIN((int)sizeof head + (head[3] << 8 | head[4]), TLS_MAX_RECORD);
	else if (n == (gssize)sizeof head)
		need = 0;
	/* Not all in yet: wait for the rest -- unless we waited for exactly
	 * this already, when the kernel ignores SO_RCVLOWAT, the peer closed
	 * its side, or the buffer is too small for the record: do not spin. */
	if (avail < need && need != s->hello_need) {
		s->hello_need = need;
		g_socket_set_option(socket, SOL_SOCKET, SO_RCVLOWAT, need, NULL);
		return G_SOURCE_CONTINUE;
	}
	g_clear_pointer(&s->hello_source, g_source_unref);
	if (s->server->tls_running < (guint)s->server->cfg->limits.max_tls_handshakes) {
		session_start_tls(s);
	} else {
		s->tls_queued = TRUE;
		g_queue_push_tail(&s->server->tls_waiting, s);
	}
	return G_SOURCE_REMOVE;
}

static void
session_wait_hello(MrSmtpSession *s)
{
	s->handshaking = TRUE;
	s->last_active = g_get_monotonic_time(); /* the handshake's deadline */
	s->hello_source = g_socket_create_source(g_socket_connection_get_socket(s->conn), G_IO_IN,
						 NULL);
	g_source_set_callback(s->hello_source, G_SOURCE_FUNC(on_hello), s, NULL);
	mr_smtp_loop_source_attach(s->hello_source);
}

/* Writes what is queued without blocking; waits for the socket when its
 * buffer is full.  Closes after the last reply of QUIT/421 and starts the
 * TLS handshake once "220 Ready" is out. */
void
mr_smtp_session_flush(MrSmtpSession *s)
{
	GPollableOutputStream *out;

	if (s->closed || s->out_source != NULL)
		return;
	out = G_POLLABLE_OUTPUT_STREAM(g_io_stream_get_output_stream(s->io));
	while (s->out->len > 0) {
		g_autoptr(GError) error = NULL;
		gssize n = g_pollable_output_stream_write_nonblocking(out, s->out->str, s->out->len,
								      NULL, &error);

		if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
			s->out_source = session_source_new(s, G_IO_OUT);
			mr_smtp_loop_source_attach(s->out_source);
			return;
		}
		if (n < 0) {
			mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "disconnected reason=write-error peer=%s",
					    s->peer);
			mr_smtp_session_close(s);
			return;
		}
		g_string_erase(s->out, 0, n);
	}
	if (s->state == MR_SMTP_STATE_QUIT)
		mr_smtp_session_close(s);
	else if (s->state == MR_SMTP_STATE_TLS && !s->handshaking)
		session_wait_hello(s);
}

/* --- commands ------------------------------------------------------------------ */

/* Parses "FROM:<path> params" / "TO:<path> params" after the verb.
 * Returns the path without angle brackets (transfer full) and sets
 * @params_out to the rest (borrowed), or NULL when malformed. */
static char *
parse_path(const char *arg, const char *keyword, const char **params_out)
{
	gsize klen = strlen(keyword);
	const char *p = arg, *end;
	gboolean quoted = FALSE;

	while (*p == ' ')
		p++;
	if (g_ascii_strncasecmp(p, keyword, klen) != 0)
		return NULL;
	p += klen;
	while (*p == ' ') /* "MAIL FROM: <x>" is common enough to accept */
		p++;
	if (*p != '<')
		return NULL;
	p++;
	/* RFC 5321 4.1.2: a source route before the mailbox is obsolete and
	 * ignored:
	 *   Path = "<" [ A-d-l ":" ] Mailbox ">"
	 *   A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain
	 * where a domain may be an address literal, "[IPv6:::1]", whose
	 * colons do not end the route. */
	while (*p == '@') {
		const char *d = ++p;

		if (*p == '[')
			p += strcspn(p, "]>") + 1;
		else
			while (g_ascii_isalnum(*p) || *p == '-' || *p == '.')
				p++;
		if (p[-1] == '>' || p[-1] == '\0' || p == d)
			return NULL;
		if (*p == ':') {
			p++;
			break;
		}
		if (*p++ != ',' || *p != '@')
			return NULL;
	}
	for (end = p; *end != '\0' && (quoted || *end != '>'); end++) {
		if (*end == '"')
			quoted = !quoted;
		else if (*end == '\\' && end[1] != '\0')
			end++;
		if ((guchar)*end < 0x20 || *end == 0x7f)
			return NULL;
	}
	if (*end != '>' || end - p > 256)
		return NULL;
	if (params_out != NULL) {
		const char *q = end + 1;

		while (*q == ' ')
			q++;
		*params_out = q;
	}
	return g_strndup(p, (gsize)(end - p));
}

/* Returns TRUE when @text is 7-bit. */
static gboolean
is_ascii(const char *text)
{
	for (const char *c = text; *c != '\0'; c++)
		if ((guchar)*c >= 0x80)
			return FALSE;
	return TRUE;
}

/* Client text for a reply: at most @max bytes, anything but printable
 * ASCII shown as '?'; replies never carry the client's raw bytes.
 * Returns: (transfer full). */
static char *
reply_text(const char *text, gsize max)
{
	char *out = g_strndup(text, max);

	for (char *c = out; *c != '\0'; c++)
		if ((guchar)*c < 0x20 || (guchar)*c >= 0x7f)
			*c = '?';
	return out;
}

static void
cmd_helo(MrSmtpSession *s, const char *verb, const char *arg)
{
	gboolean lhlo = g_ascii_strcasecmp(verb, "LHLO") == 0;
	gboolean ehlo = lhlo || g_ascii_strcasecmp(verb, "EHLO") == 0;

	if (s->lmtp != lhlo) {
		session_error(s, "500 5.5.1 %s", s->lmtp ? "Use LHLO for LMTP" : "LHLO is for LMTP");
		return;
	}
	if (*arg == '\0') {
		session_error(s, "501 5.5.4 %s needs a domain or address literal", verb);
		return;
	}
	mr_smtp_session_reset_tx(s);
	g_free(s->helo);
	s->helo = g_strndup(arg, 255);
	if (!ehlo) {
		mr_smtp_session_reply(s, "250 %s", s->cfg->hostname);
	} else {
		mr_smtp_session_reply(s, "250-%s", s->cfg->hostname);
		mr_smtp_session_reply(s, "250-PIPELINING");
		mr_smtp_session_reply(s, "250-SIZE %" G_GINT64_FORMAT, s->cfg->limits.max_message_size);
		mr_smtp_session_reply(s, "250-8BITMIME");
		if (s->server != NULL && s->server->cert != NULL && !s->tls)
			mr_smtp_session_reply(s, "250-STARTTLS");
		mr_smtp_session_reply(s, "250 ENHANCEDSTATUSCODES");
	}
	mr_smtp_session_enter_state(s, MR_SMTP_STATE_MAIL);
}

static void
cmd_mail(MrSmtpSession *s, const char *verb, const char *arg)
{
	const char *params = NULL;
	g_autofree char *path = NULL;
	g_auto(GStrv) words = NULL;

	if (s->state == MR_SMTP_STATE_HELO) {
		session_error(s, "503 5.5.1 Send %s first", s->lmtp ? "LHLO" : "EHLO or HELO");
		return;
	}
	if (s->mail_from != NULL) {
		session_error(s, "503 5.5.1 Nested MAIL command");
		return;
	}
	path = parse_path(arg, "FROM:", &params);
	if (path == NULL) {
		session_error(s, "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
		return;
	}
	/* RFC 6531 3.5: without SMTPUTF8 (not offered) addresses are ASCII;
	 * X.6.7 is "non-ASCII addresses not permitted". */
	if (!is_ascii(path)) {
		session_error(s, "553 5.6.7 Non-ASCII sender address not permitted");
		return;
	}
	if (*path != '\0' && strchr(path, '@') == NULL) {
		session_error(s, "553 5.1.7 Sender address must be fully qualified");
		return;
	}
	words = g_strsplit(params, " ", -1);
	s->declared_size = 0;
	for (char **w = words; *w != NULL; w++) {
		if (**w == '\0')
			continue;
		if (g_ascii_strncasecmp(*w, "SIZE=", 5) == 0) {
			/* RFC 1870: size-value ::= 1*20DIGIT (no sign, no space) */
			gsize digits = strspn(*w + 5, "0123456789");
			guint64 size;

			if (digits == 0 || digits > 20 || (*w)[5 + digits] != '\0') {
				session_error(s, "501 5.5.4 Bad SIZE parameter");
				return;
			}
			size = g_ascii_strtoull(*w + 5, NULL, 10); /* G_MAXUINT64 if too big */
			if (size > (guint64)s->cfg->limits.max_message_size) {
				session_error(s, "552 5.3.4 Message size exceeds fixed limit of %" G_GINT64_FORMAT
						 " bytes", s->cfg->limits.max_message_size);
				return;
			}
			s->declared_size = (gint64)size;
		} else if (g_ascii_strcasecmp(*w, "BODY=8BITMIME") == 0 ||
			   g_ascii_strcasecmp(*w, "BODY=7BIT") == 0) {
			continue;
		} else {
			g_autofree char *shown = reply_text(*w, 40);

			session_error(s, "555 5.5.4 Unsupported parameter %s", shown);
			return;
		}
	}
	s->mail_from = mr_address_normalise(path);
	mr_smtp_session_reply(s, "250 2.1.0 Ok");
	mr_smtp_session_enter_state(s, MR_SMTP_STATE_RCPT);
}

static void
cmd_rcpt(MrSmtpSession *s, const char *verb, const char *arg)
{
	g_autofree char *path = NULL;
	const char *params = NULL;

	if (s->mail_from == NULL) {
		session_error(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	path = parse_path(arg, "TO:", &params);
	if (path == NULL || *path == '\0') {
		session_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (!is_ascii(path)) {
		session_error(s, "553 5.6.7 Non-ASCII recipient address not permitted");
		return;
	}
	if (*params != '\0') {
		g_autofree char *shown = reply_text(params, 40);

		session_error(s, "555 5.5.4 Unsupported parameter %s", shown);
		return;
	}
	if (s->rcpts->len >= (guint)s->cfg->limits.max_recipients) {
		mr_smtp_session_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (mr_config_find_address(s->cfg, path, NULL) == NULL) {
		g_autofree char *shown = reply_text(path, 256);

		session_error(s, "550 5.1.1 <%s>: Recipient address rejected: not a mailroom address",
			      shown);
		return;
	}
	g_ptr_array_add(s->rcpts, mr_address_normalise(path));
	mr_smtp_session_reply(s, "250 2.1.5 Ok");
}

static void
cmd_data(MrSmtpSession *s, const char *verb, const char *arg)
{
	if (*arg != '\0') {
		session_error(s, "501 5.5.4 DATA takes no arguments");
		return;
	}
	if (s->mail_from == NULL) {
		session_error(s, "503 5.5.1 Need MAIL command");
		return;
	}
	if (s->rcpts->len == 0) {
		session_error(s, "503 5.5.1 Need RCPT before DATA");
		return;
	}
	s->data = mr_spool_new(s->cfg->spool_directory, (gsize)s->cfg->limits.spool_threshold);
	s->data_size = 0;
	s->data_crlf = TRUE;
	s->data_bare_lf = FALSE;
	mr_smtp_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	mr_smtp_session_enter_state(s, MR_SMTP_STATE_DATA);
}

static void
cmd_rset(MrSmtpSession *s, const char *verb, const char *arg)
{
	mr_smtp_session_reset_tx(s);
	if (s->state != MR_SMTP_STATE_HELO)
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_MAIL);
	mr_smtp_session_reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(MrSmtpSession *s, const char *verb, const char *arg)
{
	mr_smtp_session_reply(s, "250 2.0.0 Ok");
}

static void
cmd_vrfy(MrSmtpSession *s, const char *verb, const char *arg)
{
	mr_smtp_session_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_help(MrSmtpSession *s, const char *verb, const char *arg)
{
	mr_smtp_session_reply(s, "214 2.0.0 See RFC 5321 (SMTP) and RFC 2033 (LMTP)");
}

static void
cmd_quit(MrSmtpSession *s, const char *verb, const char *arg)
{
	mr_smtp_session_reply(s, "221 2.0.0 %s Bye", s->cfg->hostname);
	mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
}

static void
cmd_starttls(MrSmtpSession *s, const char *verb, const char *arg)
{
	if (s->server == NULL || s->server->cert == NULL) {
		session_error(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (s->tls) {
		session_error(s, "503 5.5.1 TLS already active");
		return;
	}
	if (s->mail_from != NULL) {
		session_error(s, "503 5.5.1 STARTTLS inside a transaction");
		return;
	}
	/* Each handshake holds a thread: limits.max_tls_handshakes at once.
	 * RFC 3207 4: 454 when TLS is not available for a temporary reason. */
	if (s->server->tls_running >= (guint)s->server->cfg->limits.max_tls_handshakes) {
		mr_smtp_session_reply(s, "454 4.7.0 TLS not available due to temporary reason");
		return;
	}
	mr_smtp_session_reply(s, "220 2.0.0 Ready to start TLS");
	mr_smtp_session_enter_state(s, MR_SMTP_STATE_TLS);
}

typedef void (*MrSmtpCmdFunc)(MrSmtpSession *s, const char *verb, const char *arg);

static const struct {
	const char *verb;
	MrSmtpCmdFunc run;
} mr_smtp_commands[] = {
	{ "EHLO", cmd_helo }, { "HELO", cmd_helo },	{ "LHLO", cmd_helo },
	{ "MAIL", cmd_mail }, { "RCPT", cmd_rcpt },	{ "DATA", cmd_data },
	{ "RSET", cmd_rset }, { "NOOP", cmd_noop },	{ "VRFY", cmd_vrfy },
	{ "HELP", cmd_help }, { "QUIT", cmd_quit },	{ "STARTTLS", cmd_starttls },
};

/* Dispatches one command line (without its line end). */
static void
session_command(MrSmtpSession *s, char *line)
{
	char *sp = strchr(line, ' ');
	const char *arg = "";

	if (sp != NULL) {
		*sp = '\0';
		arg = sp + 1;
	}
	for (guint i = 0; i < G_N_ELEMENTS(mr_smtp_commands); i++)
		if (g_ascii_strcasecmp(line, mr_smtp_commands[i].verb) == 0) {
			mr_smtp_commands[i].run(s, mr_smtp_commands[i].verb, arg);
			return;
		}
	if (*line == '\0')
		session_error(s, "500 5.5.2 Error: bad syntax");
	else
		session_error(s, "500 5.5.2 Error: command not recognized");
}

/* --- the message --------------------------------------------------------------- */

static void
on_committed(const MrWriterResult *results, guint n, gpointer data)
{
	g_autoptr(MrSmtpSession) s = data;
	guint ok = 0, temp = 0;
	gint64 row = 0; /* the message, as stored for the first recipient that took it */

	if (s->closed) {
		/* The client went during COMMIT: nobody to answer; if it retries,
		 * the retry is a duplicate and stored once.  Its slot was held
		 * for the message until now. */
		for (guint i = 0; i < n; i++)
			ok += results[i].error == NULL;
		if (ok > 0 && s->server != NULL)
			s->server->accepted++;
		mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "%s from=<%s> rcpts=%u size=%zu stored=%u client gone",
				    ok > 0 ? "accepted" : "refused", s->mail_from, n, s->data_size, ok);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
		session_release_slot(s);
		return;
	}
	for (guint i = 0; i < n; i++) {
		const GError *e = results[i].error;

		if (e == NULL) {
			ok++;
			if (row == 0)
				row = results[i].delivery.message_row;
			if (s->lmtp)
				mr_smtp_session_reply(s, "250 2.0.0 <%s> Ok: stored as message %" G_GINT64_FORMAT,
						      results[i].recipient, results[i].delivery.message_row);
		} else if (g_error_matches(e, MR_ROUTE_ERROR, MR_ROUTE_ERROR_NO_ADDRESS)) {
			if (s->lmtp)
				mr_smtp_session_reply(s, "550 5.1.1 <%s> not a mailroom address",
						      results[i].recipient);
		} else {
			temp++;
			mr_smtp_session_log(s, G_LOG_LEVEL_WARNING, "not stored rcpt=%s: %s",
					    results[i].recipient, e->message);
			if (s->lmtp)
				mr_smtp_session_reply(s, "451 4.3.0 <%s> Not stored, try again later",
						      results[i].recipient);
		}
	}
	if (!s->lmtp) {
		/* One answer for all recipients: any failure means retry all;
		 * the ones stored are duplicates next time and stored once. */
		if (temp > 0 || ok == 0)
			mr_smtp_session_reply(s, temp > 0 ? "451 4.3.0 Not stored, try again later"
							  : "550 5.1.1 No mailroom recipient");
		else
			mr_smtp_session_reply(s, "250 2.0.0 Ok: stored as message %" G_GINT64_FORMAT, row);
	}
	if (ok > 0 && s->server != NULL)
		s->server->accepted++;
	mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "%s from=<%s> rcpts=%u size=%zu stored=%u",
			    ok > 0 ? "accepted" : "refused", s->mail_from, n, s->data_size, ok);
	mr_smtp_session_reset_tx(s);
	s->last_active = g_get_monotonic_time(); /* the client's idle time starts now */
	if (s->server == NULL || s->server->draining) {
		mr_smtp_session_reply(s, "421 4.3.2 %s Shutting down", s->cfg->hostname);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
	} else {
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_MAIL);
	}
	session_process(s);
}

static void
session_end_data(MrSmtpSession *s)
{
	g_autoptr(GBytes) raw = NULL;
	g_autoptr(GError) error = NULL;

	if (s->data_bare_lf && s->cfg->smtp.bare_lf_reject) {
		for (guint i = 0; i < (s->lmtp ? s->rcpts->len : 1); i++)
			mr_smtp_session_reply(s, "554 5.6.11 Error: bare <LF> received");
		mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "refused reason=bare-lf size=%zu", s->data_size);
		mr_smtp_session_reset_tx(s);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_MAIL);
		return;
	}
	if (s->data_size > (gsize)s->cfg->limits.max_message_size) {
		for (guint i = 0; i < (s->lmtp ? s->rcpts->len : 1); i++)
			mr_smtp_session_reply(s,
					      "552 5.3.4 Message size exceeds fixed limit of %" G_GINT64_FORMAT
					      " bytes", s->cfg->limits.max_message_size);
		mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "refused reason=size size=%zu", s->data_size);
		mr_smtp_session_reset_tx(s);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_MAIL);
		return;
	}
	if (s->data_size == 0) {
		for (guint i = 0; i < (s->lmtp ? s->rcpts->len : 1); i++)
			mr_smtp_session_reply(s, "554 5.6.0 Empty message refused");
		mr_smtp_session_reset_tx(s);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_MAIL);
		return;
	}
	raw = mr_spool_finish(s->data, &error);
	if (raw == NULL) {
		for (guint i = 0; i < (s->lmtp ? s->rcpts->len : 1); i++)
			mr_smtp_session_reply(s, "451 4.3.0 Temporary failure, please try again later");
		mr_smtp_session_log(s, G_LOG_LEVEL_WARNING, "deferred reason=spool size=%zu: %s", s->data_size,
				    error->message);
		mr_smtp_session_reset_tx(s);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_MAIL);
		return;
	}
	g_clear_pointer(&s->data, mr_spool_free);
	mr_smtp_session_enter_state(s, MR_SMTP_STATE_COMMIT);
	mr_writer_submit(s->server->writer, s->cfg, raw,
			 *s->mail_from != '\0' ? s->mail_from : NULL, s->rcpts, on_committed,
			 mr_smtp_session_ref(s));
}

/* Consumes DATA lines from the input.  Returns the bytes used. */
static gsize
session_data(MrSmtpSession *s, const guint8 *p, gsize len)
{
	gsize pos = 0;

	while (pos < len && s->state == MR_SMTP_STATE_DATA) {
		const guint8 *lf = memchr(p + pos, '\n', len - pos);
		gsize end = lf != NULL ? (gsize)(lf - p) + 1 : len;
		const guint8 *line = p + pos;
		gsize n = end - pos;

		gboolean crlf;

		if (lf == NULL && n < SMTP_MAX_LINE)
			break; /* wait for the rest of the line */
		/* A long piece without a line end: keep a final CR back, so
		 * that it meets its LF and a CR LF is never split in two. */
		if (lf == NULL && line[n - 1] == '\r') {
			n--;
			end--;
		}
		crlf = lf != NULL && n >= 2 && line[n - 2] == '\r';
		/* RFC 5321 4.1.1.4: the data ends with CR LF "." CR LF, where the
		 * CR LF before the dot is a real one (or the data's start).
		 * Nothing else ends it: not "\n.\r\n", "\r.\r\n", ".\n" -- the
		 * SMTP smuggling of 2023 (CVE-2023-51764), where a server that
		 * ends the data where an upstream MTA does not takes the rest
		 * for a second message from a sender the client chose. */
		if (s->data_crlf && n == 3 && memcmp(line, ".\r\n", 3) == 0) {
			pos = end;
			session_end_data(s);
			break;
		}
		if (lf != NULL && !crlf)
			s->data_bare_lf = TRUE; /* smtp.bare_lf = "reject" refuses it at the end */
		/* RFC 5321 4.5.2: the sender doubled a dot that starts a line,
		 * and a line starts only after a real CR LF. */
		if (s->data_crlf && line[0] == '.') {
			line++;
			n--;
		}
		s->data_size += n;
		if (s->data_size <= (gsize)s->cfg->limits.max_message_size)
			mr_spool_append(s->data, line, n, NULL); /* a failure: 451 at the end */
		s->data_crlf = crlf;
		pos = end;
	}
	return pos;
}

/* --- input ------------------------------------------------------------------------- */

/* Handles what is buffered, as far as the state and the reply buffer
 * allow.  Returns TRUE when it stopped only because SMTP_MAX_OUTPUT of
 * replies piled up, with input left to handle. */
static gboolean
session_consume(MrSmtpSession *s)
{
	gsize pos = 0;
	gboolean line_done = FALSE, full;

	while (!s->closed && pos < s->in->len && s->out->len < SMTP_MAX_OUTPUT) {
		const guint8 *p = s->in->data + pos;
		gsize len = s->in->len - pos;
		const guint8 *lf;
		gsize n;

		if (s->state == MR_SMTP_STATE_DATA) {
			gsize used = session_data(s, p, len);

			if (used == 0)
				break;
			pos += used;
			line_done = TRUE;
			continue;
		}
		if (s->state != MR_SMTP_STATE_HELO && s->state != MR_SMTP_STATE_MAIL &&
		    s->state != MR_SMTP_STATE_RCPT)
			break; /* COMMIT, TLS, QUIT: the rest waits or is dropped */
		lf = memchr(p, '\n', len);
		if (lf == NULL && len <= SMTP_MAX_LINE)
			break; /* the rest of the line is still coming */
		if (lf == NULL || (gsize)(lf - p) >= SMTP_MAX_LINE) {
			/* Overlong: answer once, drop through its line end. */
			if (!s->discard_line)
				session_error(s, "500 5.5.2 Error: line too long");
			s->discard_line = lf == NULL;
			pos += lf != NULL ? (gsize)(lf - p) + 1 : len;
			continue;
		}
		n = (gsize)(lf - p) + 1;
		pos += n;
		line_done = TRUE;
		if (s->discard_line) {
			s->discard_line = FALSE;
			continue;
		}
		{
			g_autofree char *line = g_strndup((const char *)p, n - 1);
			gsize l = strlen(line);

			if (l != n - 1) {
				session_error(s, "500 5.5.2 Error: NUL in command");
				continue;
			}
			if (l > 0 && line[l - 1] == '\r') {
				line[l - 1] = '\0';
			} else if (s->cfg->smtp.bare_lf_reject) {
				/* Like Postfix's smtpd_forbid_bare_newline: what follows
				 * a broken line end cannot be trusted to be in step. */
				mr_smtp_session_reply(s, "554 5.6.11 Error: bare <LF> received");
				mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "disconnected reason=bare-lf peer=%s",
						    s->peer);
				mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
				continue;
			}
			session_command(s, line);
		}
		if (s->server != NULL && s->server->draining && s->state == MR_SMTP_STATE_MAIL) {
			mr_smtp_session_reply(s, "421 4.3.2 %s Shutting down", s->cfg->hostname);
			mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
		}
	}
	full = !s->closed && pos < s->in->len && s->out->len >= SMTP_MAX_OUTPUT;
	if (pos > 0)
		g_byte_array_remove_range(s->in, 0, (guint)pos);
	if (s->state == MR_SMTP_STATE_TLS)
		g_byte_array_set_size(s->in, 0); /* RFC 3207 4.2: no plaintext injection */
	/* limits.timeout is a deadline per line, command or DATA: a byte now
	 * and then does not keep a session (and its slot) alive. */
	if (line_done)
		s->last_active = g_get_monotonic_time();
	return full;
}

/* Handles what is buffered, flushes the replies and reads on. */
static void
session_process(MrSmtpSession *s)
{
	gboolean full;

	/* Pipelined commands can outrun the reply buffer: the loop stops at
	 * SMTP_MAX_OUTPUT.  When the flush then writes everything at once, no
	 * event will come for the commands still buffered: go on here. */
	do {
		full = session_consume(s);
		mr_smtp_session_flush(s);
	} while (full && !s->closed && s->out_source == NULL);
	/* The client closed its side (it may still read): what it sent before
	 * is answered; once nothing buffered can go on, close. */
	if (s->peer_eof && !s->closed && s->out_source == NULL &&
	    (s->state == MR_SMTP_STATE_HELO || s->state == MR_SMTP_STATE_MAIL ||
	     s->state == MR_SMTP_STATE_RCPT || s->state == MR_SMTP_STATE_DATA)) {
		if (!s->eof_logged)
			mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "disconnected reason=eof state=%s peer=%s",
					    mr_smtp_state_names[s->state], s->peer);
		mr_smtp_session_close(s);
		return;
	}
	mr_smtp_session_read(s);
}

/* Reads what the socket has; called by the session's input source. */
static gboolean
on_readable(GObject *stream, gpointer data)
{
	g_autoptr(MrSmtpSession) s = mr_smtp_session_ref(data);
	g_autoptr(GError) error = NULL;
	gssize n;

	if (s->closed)
		return G_SOURCE_REMOVE;
	n = g_pollable_input_stream_read_nonblocking(G_POLLABLE_INPUT_STREAM(stream),
						     s->server->chunk, SMTP_READ_CHUNK, NULL, &error);
	if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
		return G_SOURCE_CONTINUE;
	if (n == 0) {
		/* End of input, but maybe not of the session: a client may
		 * pipeline a whole transaction and QUIT, shut down its sending
		 * side and wait for the replies. */
		s->peer_eof = TRUE;
		session_stop_reading(s);
		if (s->state == MR_SMTP_STATE_COMMIT) {
			/* The message is being stored either way; if the client is
			 * gone, it retries and the retry is a duplicate. */
			mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "disconnected during commit peer=%s", s->peer);
			s->eof_logged = TRUE;
		}
		session_process(s);
		return G_SOURCE_REMOVE;
	}
	if (n < 0) {
		if (s->state != MR_SMTP_STATE_QUIT)
			mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "disconnected reason=read-error state=%s peer=%s",
					    mr_smtp_state_names[s->state], s->peer);
		mr_smtp_session_close(s);
		return G_SOURCE_REMOVE;
	}
	g_byte_array_append(s->in, s->server->chunk, (guint)n);
	session_process(s);
	return s->closed || s->in_source == NULL ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/* Keeps an input source attached exactly while the state wants input. */
void
mr_smtp_session_read(MrSmtpSession *s)
{
	gboolean want = !s->closed && !s->peer_eof && s->state != MR_SMTP_STATE_QUIT &&
			s->state != MR_SMTP_STATE_TLS && s->out->len < SMTP_MAX_OUTPUT &&
			s->in->len < SMTP_MAX_BUFFER;

	if (!want) {
		session_stop_reading(s);
	} else if (s->in_source == NULL) {
		s->in_source = session_source_new(s, G_IO_IN);
		mr_smtp_loop_source_attach(s->in_source);
	}
}

static void
on_handshake(GObject *source, GAsyncResult *res, gpointer data)
{
	g_autoptr(MrSmtpSession) s = data;
	g_autoptr(GError) error = NULL;
	gboolean ok = g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), res, &error);

	/* The thread is done: its slot goes to the next handshake waiting. */
	if (s->tls_counted && s->server != NULL) {
		s->server->tls_running--;
		server_next_handshake(s->server);
	}
	s->tls_counted = FALSE;
	g_clear_object(&s->tls_cancel);
	if (s->closed)
		return;
	if (!ok) {
		mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "disconnected reason=tls-handshake peer=%s: %s",
				    s->peer, error->message);
		mr_smtp_session_close(s);
		return;
	}
	s->tls = TRUE;
	s->handshaking = FALSE;
	g_clear_pointer(&s->helo, g_free);
	mr_smtp_session_reset_tx(s);
	mr_smtp_session_enter_state(s, MR_SMTP_STATE_HELO);
	s->last_active = g_get_monotonic_time();
	mr_smtp_session_read(s);
}
