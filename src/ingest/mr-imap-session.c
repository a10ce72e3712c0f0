/* mr-imap-session.c - the IMAP door's session: libetpan's IMAP over a
 * connection of the network layer (mr-net.h) -- login, SELECT, the
 * listing and the fetches, the after action (STORE, MOVE, EXPUNGE), IDLE
 * -- and mailroomctl mailbox test (mr_imap_probe()).
 *
 * Ingest stage.  A session is one thread's; it knows nothing of the
 * database, the writer or the mailbox's state: the watch
 * (mr-imap-watch.c) drives it.  IMAP's literal framing is checked here,
 * at every read of the connection (framing_scan()). */
#define G_LOG_DOMAIN "mailroom-imap"

#include <gio/gio.h>
#include <libetpan/libetpan.h>
#include <string.h>

#include "mailroom/mr-error.h"
#include "mailroom/mr-spool.h"
#include "mailroom/mr-token.h"
#include "mr-imap-private.h"

/* A message over limits.max_message_size, or one that failed in a batch,
 * is fetched in parts this big. */
#define MR_IMAP_CHUNK (4 * 1024 * 1024)
/* At most this many UIDs are kept of one listing (the lowest): the rest
 * is listed again after them. */
#define MR_IMAP_LIST_MAX 10000
/* What a command may read from the server besides what it was granted
 * (MR_NET_READ_LIMIT, see mr-net.h): the bodies a FETCH asked for (their
 * announced sizes), and what each useful FETCH response of a listing
 * earns (MR_IMAP_LIST_CREDIT).  A server that sends more loses the
 * connection.  FETCH responses are handled as they are parsed (see
 * on_msg_att()) and what is not wanted is freed at once; the rest of an
 * answer is kept by libetpan until the command ends, at some twenty times
 * its size: so memory stays bounded whatever a server sends. */
#define MR_IMAP_LIST_CREDIT 256
/* Slack per message over its announced size (the FETCH response's own
 * words around the literal). */
#define MR_IMAP_READ_SLACK 1024

/* The longest greeting line read (see session_greeting()). */
#define MR_IMAP_GREETING_MAX 8192

/* --- the literal framing of what the server sends ------------------------------ */

/* Follows the literal framing of @n bytes the server sent ("{N}" outside
 * a literal announces N bytes) and fails when a literal is announced
 * longer than the command may still read: libetpan allocates a literal's
 * whole size when it parses the announcement, so "{4000000000}" would cost
 * 4 GB of address space for twelve bytes.  The check is made at the "}",
 * whatever follows: libetpan takes the literal even without the CRLF (a
 * workaround for one server), so the framing does too.  Linear in @n.
 * The connection calls it at every read (an MrNetScanFunc), with @left
 * what the command may still read. */
static gboolean
framing_scan(const guint8 *buf, gsize n, guint64 left, gpointer data, GError **error)
{
	MrImapFraming *c = data;

	for (gsize i = 0; i < n; i++) {
		guint8 ch = buf[i];

		if (c->lit_state == 2 && ch == '\r') {
			c->lit_state = 3;
			continue;
		}
		if (c->lit_state == 3 && ch == '\n') {
			c->lit_left = c->lit_n;
			c->lit_state = 0;
			continue;
		}
		if (c->lit_state >= 2) {
			/* no CRLF: the literal has begun with this byte (and
			 * with the CR before it, if one was seen) */
			c->lit_left = c->lit_n - MIN(c->lit_n, (guint64)(c->lit_state - 2));
			c->lit_state = 0;
		}
		if (c->lit_left > 0) {
			gsize skip = (gsize)MIN(c->lit_left, (guint64)(n - i));

			c->lit_left -= skip;
			i += skip - 1;
			continue;
		}
		if (c->lit_state == 1 && g_ascii_isdigit(ch)) {
			c->lit_n = c->lit_n > G_MAXUINT64 / 10 - 10 ? G_MAXUINT64 / 10
								   : c->lit_n * 10 + (ch - '0');
		} else if (c->lit_state == 1 && ch == '}') {
			/* what may still be read once this byte is */
			if (c->lit_n > left - (i + 1)) {
				g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
					    "the server announced %" G_GUINT64_FORMAT " bytes, more than"
					    " it may send for this command", c->lit_n);
				return FALSE;
			}
			c->lit_state = 2;
		} else if (c->lit_state == 1 && (ch == ' ' || ch == '-') && c->lit_n == 0) {
			/* libetpan reads "{ 12}" and "{-12}" too */
		} else {
			c->lit_state = ch == '{' ? 1 : 0;
			c->lit_n = 0;
		}
	}
	return TRUE;
}

/* libetpan's msg_att handler: every FETCH response, as soon as it is
 * parsed, whether the command asked for it or not. */
static void
on_msg_att(struct mailimap_msg_att *att, void *data)
{
	MrImapSession *s = data;

	if (s->collect != NULL)
		s->collect(s, att, s->collect_data);
}

/* libetpan hands FETCH responses to the handler only when a progress
 * callback is set too: this one. */
static void
on_items(size_t current, size_t maximum, void *data)
{
}

void
mr_imap_session_free(MrImapSession *s)
{
	if (s == NULL)
		return;
	if (s->imap != NULL && s->imap->imap_stream != NULL) {
		/* without a LOGOUT (mailimap_free() would send one and wait
		 * for its answer): a session that failed is not talked to */
		mailstream_close(s->imap->imap_stream); /* frees our low */
		s->imap->imap_stream = NULL;
	}
	if (s->imap != NULL)
		mailimap_free(s->imap);
	mr_net_conn_free(s->conn);
	g_free(s);
}

/* The last line the server answered, for errors ("[AUTHENTICATIONFAILED]
 * Authentication failed."). */
static const char *
server_said(const MrImapSession *s)
{
	const char *r = s->imap != NULL ? s->imap->imap_response : NULL;

	return r != NULL && *r != '\0' ? r : "no answer";
}

/* Makes what the session holds of the server's capabilities a list,
 * empty when the server announced none: libetpan 1.9.4 keeps "*
 * CAPABILITY" without a name as a NULL list, and its mailimap_has_*()
 * and mailimap_capability() read it without a check. */
static void
session_caps_sane(MrImapSession *s)
{
	struct mailimap_connection_info *info = s->imap->imap_connection_info;

	if (info == NULL)
		return; /* mailimap_has_*() check this one */
	if (info->imap_capability == NULL)
		info->imap_capability = mailimap_capability_data_new(clist_new());
	else if (info->imap_capability->cap_list == NULL)
		info->imap_capability->cap_list = clist_new();
}

/* CAPABILITY, for what the server announces (read with has_cap() and
 * libetpan's mailimap_has_*()); built of the session calls mailimap.h
 * offers, as mailimap_capability() is, which copies the capabilities
 * without a check (see session_caps_sane()).  Returns a MAILIMAP_ code. */
static int
session_capability(MrImapSession *s)
{
	struct mailimap_response *response = NULL;
	mailstream *stream = s->imap->imap_stream;
	int r = mailimap_send_current_tag(s->imap);
	int state;

	if (r == MAILIMAP_NO_ERROR && (mailstream_write(stream, "CAPABILITY\r\n", 12) != 12 ||
				       mailstream_flush(stream) == -1))
		r = MAILIMAP_ERROR_STREAM;
	if (r == MAILIMAP_NO_ERROR && mailimap_read_line(s->imap) == NULL)
		r = MAILIMAP_ERROR_STREAM;
	if (r == MAILIMAP_NO_ERROR)
		r = mailimap_parse_response(s->imap, &response);
	session_caps_sane(s);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	state = response->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
	mailimap_response_free(response);
	return state == MAILIMAP_RESP_COND_STATE_OK ? MAILIMAP_NO_ERROR : MAILIMAP_ERROR_CAPABILITY;
}

/* Sets @error from libetpan's result @r of @what: a stream error carries
 * the connection's own error. */
gboolean
mr_imap_session_fail(MrImapSession *s, int r, const char *what, GError **error)
{
	if (r == MAILIMAP_ERROR_STREAM && mr_net_conn_get_error(s->conn) != NULL) {
		g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_CONNECT, "%s: %s", what,
			    mr_net_conn_get_error(s->conn)->message);
	} else if (r == MAILIMAP_ERROR_STREAM) {
		g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_CONNECT,
			    "%s: the server closed the connection", what);
	} else if (r == MAILIMAP_ERROR_LOGIN || r == MAILIMAP_ERROR_SASL) {
		g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_AUTH, "%s refused: %s", what,
			    server_said(s));
	} else {
		g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_PROTOCOL, "%s failed (%d): %s",
			    what, r, server_said(s));
	}
	return FALSE;
}

/* Sets @error from a failure of the network layer (@local, taken): its
 * message, in MR_IMAP_ERROR (_CONNECT or _TLS). */
static gboolean
net_fail(GError *local, GError **error)
{
	int code = g_error_matches(local, MR_NET_ERROR, MR_NET_ERROR_TLS) ? MR_IMAP_ERROR_TLS
									 : MR_IMAP_ERROR_CONNECT;

	g_set_error_literal(error, MR_IMAP_ERROR, code, local->message);
	g_error_free(local);
	return FALSE;
}

/* --- the greeting ---------------------------------------------------------------- */

/* Reads the server's greeting line and hands libetpan a checked copy of
 * it to parse (mr_net_conn_unread()): "* OK", "* PREAUTH" or "* BYE", the
 * CAPABILITY code kept when it is only atoms, other codes left out, and
 * the text in printable ASCII with no brackets, braces or quotes.
 * libetpan 1.9.4 parses the greeting with a NULL parser context, which
 * its string parser reads as soon as a string may stand where it is (a
 * BADCHARSET code, say): a crash for one line (found by fuzz-imap).  The
 * line is read a byte at a time, to its LF, at most
 * MR_IMAP_GREETING_MAX bytes. */
static gboolean
session_greeting(MrImapSession *s, GError **error)
{
	static const char *const conds[] = { "* OK", "* PREAUTH", "* BYE" };
	g_autoptr(GString) line = g_string_new(NULL);
	g_autoptr(GString) safe = g_string_new(NULL);
	g_autoptr(GString) text = g_string_new(NULL);
	const char *p = NULL, *end;
	char ch = 0;

	while (ch != '\n') {
		if (line->len >= MR_IMAP_GREETING_MAX) {
			g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_PROTOCOL,
				    "greeting: longer than %d bytes", MR_IMAP_GREETING_MAX);
			return FALSE;
		}
		if (mr_net_conn_read(s->conn, &ch, 1) != 1)
			return mr_imap_session_fail(s, MAILIMAP_ERROR_STREAM, "greeting", error);
		g_string_append_c(line, ch);
	}
	for (guint i = 0; i < G_N_ELEMENTS(conds) && p == NULL; i++)
		if (g_ascii_strncasecmp(line->str, conds[i], strlen(conds[i])) == 0 &&
		    (line->str[strlen(conds[i])] == ' ' || line->str[strlen(conds[i])] == '\r')) {
			g_string_append(safe, conds[i]);
			p = line->str + strlen(conds[i]);
		}
	if (p == NULL) {
		g_set_error_literal(error, MR_IMAP_ERROR, MR_IMAP_ERROR_PROTOCOL,
				    "greeting: not \"* OK\", \"* PREAUTH\" or \"* BYE\"");
		return FALSE;
	}
	while (*p == ' ')
		p++;
	if (*p == '[' && (end = strchr(p, ']')) != NULL) {
		gboolean atoms = g_ascii_strncasecmp(p, "[CAPABILITY ", 12) == 0;

		for (const char *q = p + 1; q < end && atoms; q++)
			atoms = g_ascii_isalnum(*q) || strchr(" -=+._/", *q) != NULL;
		if (atoms)
			g_string_append_printf(safe, " %.*s", (int)(end - p + 1), p);
		p = end + 1;
	}
	for (; *p != '\0' && *p != '\r' && *p != '\n'; p++)
		if (*p >= 0x20 && *p < 0x7f && strchr("[]{}\"\\", *p) == NULL)
			g_string_append_c(text, *p);
	g_strstrip(text->str);
	g_string_append_printf(safe, " %s\r\n", *text->str != '\0' ? text->str : "ready");
	mr_net_conn_unread(s->conn, safe->str, safe->len);
	return TRUE;
}

/* --- login ------------------------------------------------------------------- */

/* Runs token_command (see mr-token.h) and returns its token; a failure
 * is a refused login (MR_IMAP_ERROR_AUTH). */
static char *
fetch_token(const MrImapMailbox *mb, GError **error)
{
	g_autoptr(GError) local = NULL;
	char *token = mr_token_run((const char *const *)mb->remote.token_command, "token_command",
				   &local);

	if (token == NULL)
		g_set_error_literal(error, MR_IMAP_ERROR, MR_IMAP_ERROR_AUTH, local->message);
	return token;
}

/* Appends @name to @out as an RFC 5801 saslname: ',' and '=' escaped. */
static void
append_saslname(GString *out, const char *name)
{
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == ',')
			g_string_append(out, "=2C");
		else if (*p == '=')
			g_string_append(out, "=3D");
		else
			g_string_append_c(out, *p);
	}
}

/* AUTHENTICATE @mech with the initial response @ir (SASL-IR, base64),
 * for the OAuth2 mechanisms, which libetpan lacks (OAUTHBEARER) or runs in
 * a way a hostile server can crash (its XOAUTH2 parses the continuation
 * without a parser context; found by fuzz-imap); built of the session
 * calls its mailimap.h offers.  On a refusal the server sends a
 * continuation with an error document, which is read as a line and not
 * parsed; the client answers with @abort (the empty response for XOAUTH2,
 * a single %x01 for OAUTHBEARER) and then gets the tagged NO.  Clears @ir.
 * Returns a MAILIMAP_ code as mailimap_oauth2_authenticate does. */
static int
sasl_ir_authenticate(MrImapSession *s, const char *mech, char *ir, const char *abort)
{
	struct mailimap_response *response = NULL;
	mailstream *stream = s->imap->imap_stream;
	g_autofree char *command = g_strdup_printf("AUTHENTICATE %s ", mech);
	const char *line;
	gsize len = strlen(ir);
	int r, state;

	if (s->imap->imap_state != MAILIMAP_STATE_NON_AUTHENTICATED) {
		memset(ir, 0, len);
		return MAILIMAP_ERROR_BAD_STATE;
	}
	r = mailimap_send_current_tag(s->imap);
	if (r != MAILIMAP_NO_ERROR) {
		memset(ir, 0, len);
		return r;
	}
	mailstream_set_privacy(stream, 0);
	r = mailstream_write(stream, command, strlen(command)) != (ssize_t)strlen(command) ||
	    mailstream_write(stream, ir, len) != (ssize_t)len ||
	    mailstream_write(stream, "\r\n", 2) != 2 || mailstream_flush(stream) == -1;
	mailstream_set_privacy(stream, 1);
	memset(ir, 0, len);
	if (r)
		return MAILIMAP_ERROR_STREAM;
	line = mailimap_read_line(s->imap);
	if (line == NULL)
		return MAILIMAP_ERROR_STREAM;
	if (line[0] == '+') {
		/* the error document: its content does not change what follows */
		if (mailstream_write(stream, abort, strlen(abort)) != (ssize_t)strlen(abort) ||
		    mailstream_flush(stream) == -1 || mailimap_read_line(s->imap) == NULL)
			return MAILIMAP_ERROR_STREAM;
	}
	r = mailimap_parse_response(s->imap, &response);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	state = response->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
	mailimap_response_free(response);
	if (state != MAILIMAP_RESP_COND_STATE_OK)
		return MAILIMAP_ERROR_LOGIN;
	s->imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
	return MAILIMAP_NO_ERROR;
}

/* SASL OAUTHBEARER (RFC 7628): the GS2 header and the bearer token. */
static int
oauthbearer_authenticate(MrImapSession *s, const MrImapMailbox *mb, const char *token)
{
	g_autoptr(GString) gs2 = g_string_new("n,a=");
	g_autofree char *b64 = NULL;

	append_saslname(gs2, mb->remote.user);
	g_string_append_printf(gs2, ",\001host=%s\001port=%d\001auth=Bearer %s\001\001",
			       mb->remote.host, mb->remote.port, token);
	b64 = g_base64_encode((const guchar *)gs2->str, gs2->len);
	memset(gs2->str, 0, gs2->len);
	return sasl_ir_authenticate(s, "OAUTHBEARER", b64, "AQ==\r\n");
}

/* SASL XOAUTH2 as Google and Microsoft document it: the user and the
 * bearer token. */
static int
xoauth2_authenticate(MrImapSession *s, const MrImapMailbox *mb, const char *token)
{
	g_autofree char *raw = g_strdup_printf("user=%s\001auth=Bearer %s\001\001",
					       mb->remote.user, token);
	g_autofree char *b64 = g_base64_encode((const guchar *)raw, strlen(raw));

	memset(raw, 0, strlen(raw));
	return sasl_ir_authenticate(s, "XOAUTH2", b64, "\r\n");
}

/* OAuth2: SASL XOAUTH2 as Google and Microsoft document it, or
 * OAUTHBEARER when the server announces only that.  A fresh token for
 * every login, and once more at once when the server refuses it (it may
 * have expired in between). */
static gboolean
session_login_oauth(MrImapSession *s, const MrImapMailbox *mb, GError **error)
{
	gboolean bearer;
	const char *what;
	int r;

	/* what the greeting said may be stale after STARTTLS: ask */
	r = session_capability(s);
	if (r != MAILIMAP_NO_ERROR)
		return mr_imap_session_fail(s, r, "CAPABILITY", error);
	bearer = !mailimap_has_authentication(s->imap, "XOAUTH2") &&
		 mailimap_has_authentication(s->imap, "OAUTHBEARER");
	what = bearer ? "OAUTHBEARER login" : "XOAUTH2 login";
	for (int attempt = 0; attempt < 2; attempt++) {
		g_autofree char *token = fetch_token(mb, error);

		if (token == NULL)
			return FALSE;
		r = bearer ? oauthbearer_authenticate(s, mb, token)
			   : xoauth2_authenticate(s, mb, token);
		memset(token, 0, strlen(token));
		if (r == MAILIMAP_NO_ERROR)
			return TRUE;
		if (r != MAILIMAP_ERROR_LOGIN)
			break;
	}
	return mr_imap_session_fail(s, r, what, error);
}

static gboolean
session_login(MrImapSession *s, const MrImapMailbox *mb, GError **error)
{
	int r;

	if (mb->remote.auth == MR_REMOTE_AUTH_XOAUTH2)
		return session_login_oauth(s, mb, error);
	{
		g_autoptr(GError) local = NULL;
		g_autofree char *password = mr_remote_password(&mb->remote, &local);

		if (password == NULL) {
			g_set_error_literal(error, MR_IMAP_ERROR, MR_IMAP_ERROR_AUTH, local->message);
			return FALSE;
		}
		r = mailimap_login(s->imap, mb->remote.user, password);
		memset(password, 0, strlen(password));
	}
	if (r != MAILIMAP_NO_ERROR)
		return mr_imap_session_fail(s, r, "login", error);
	return TRUE;
}

static gboolean
has_cap(mailimap *imap, const char *name)
{
	return mailimap_has_extension(imap, (char *)name) != 0;
}

/* A session over @conn, not started yet: libetpan's state over it. */
MrImapSession *
mr_imap_session_new(MrNetConn *conn)
{
	MrImapSession *s = g_new0(MrImapSession, 1);

	s->conn = conn;
	mr_net_conn_set_scan(conn, framing_scan, &s->framing);
	s->imap = mailimap_new(0, NULL);
	mailimap_set_msg_att_handler(s->imap, on_msg_att, s);
	mailimap_set_progress_callback(s->imap, NULL, on_items, s);
	return s;
}

/* Speaks IMAP over the connection of @s (taken): the greeting, STARTTLS
 * as configured, the login and the capabilities after it.  Returns:
 * (transfer full): the session, or NULL with @error. */
MrImapSession *
mr_imap_session_start(MrImapSession *started, const MrImapMailbox *mb, GError **error)
{
	g_autoptr(MrImapSession) s = started;
	mailstream *stream;
	int r;

	mr_net_conn_expect(s->conn, 0); /* the greeting's deadline starts now */
	if (!session_greeting(s, error))
		return NULL;
	/* libetpan owns the stream from here, even when it fails */
	stream = mailstream_new(mr_net_mailstream_low_new(s->conn), 8192);
	r = mailimap_connect(s->imap, stream);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		mr_imap_session_fail(s, r, "greeting", error);
		return NULL;
	}
	if (mb->remote.tls == MR_REMOTE_TLS_STARTTLS) {
		GError *local = NULL;

		r = mailimap_starttls(s->imap);
		if (r != MAILIMAP_NO_ERROR) {
			g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_TLS,
				    "STARTTLS refused by %s: %s", mb->remote.host, server_said(s));
			return NULL;
		}
		if (!mr_net_conn_start_tls(s->conn, &mb->remote, &local))
			return net_fail(local, error), NULL;
	}
	if (!session_login(s, mb, error))
		return NULL;
	/* after the login: servers announce more then */
	r = session_capability(s);
	if (r != MAILIMAP_NO_ERROR) {
		mr_imap_session_fail(s, r, "CAPABILITY", error);
		return NULL;
	}
	s->has_idle = mailimap_has_idle(s->imap) != 0;
	s->has_move = has_cap(s->imap, "MOVE");
	s->has_uidplus = has_cap(s->imap, "UIDPLUS");
	return g_steal_pointer(&s);
}

/* Connects to @mb, secures the connection as configured and logs in. */
MrImapSession *
mr_imap_session_open(const MrImapMailbox *mb, GCancellable *cancel, GError **error)
{
	g_autoptr(MrImapSession) s =
		mr_imap_session_new(mr_net_conn_new(G_LOG_DOMAIN, mb->remote.timeout_s, cancel));
	GError *local = NULL;

	if (!mr_net_conn_connect(s->conn, &mb->remote, &local))
		return net_fail(local, error), NULL;
	return mr_imap_session_start(g_steal_pointer(&s), mb, error);
}

/* --- commands ------------------------------------------------------------------ */

/* Selects @folder (created before by mr_imap_session_ensure_folder()). */
gboolean
mr_imap_session_select(MrImapSession *s, const char *folder, GError **error)
{
	int r = mailimap_select(s->imap, folder);

	if (r != MAILIMAP_NO_ERROR) {
		g_autofree char *what = g_strdup_printf("SELECT %s", folder);

		return mr_imap_session_fail(s, r, what, error);
	}
	return TRUE;
}

/* Creates @folder unless it exists (an error that says so is fine). */
gboolean
mr_imap_session_ensure_folder(MrImapSession *s, const char *folder, GError **error)
{
	clist *list = NULL;
	int r = mailimap_list(s->imap, "", folder, &list);
	gboolean exists = r == MAILIMAP_NO_ERROR && list != NULL && clist_count(list) > 0;

	if (list != NULL)
		mailimap_list_result_free(list);
	if (r != MAILIMAP_NO_ERROR)
		return mr_imap_session_fail(s, r, "LIST", error);
	if (exists)
		return TRUE;
	r = mailimap_create(s->imap, folder);
	if (r != MAILIMAP_NO_ERROR) {
		g_autofree char *what = g_strdup_printf("CREATE %s", folder);

		return mr_imap_session_fail(s, r, what, error);
	}
	g_message("created folder %s", folder);
	return TRUE;
}

/* By UID; of two entries for one UID the larger size first. */
static int
compare_uid(gconstpointer a, gconstpointer b)
{
	const MrImapUid *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->size > y->size ? -1 : x->size < y->size;
}

/* Reads what a FETCH answered for one message: its UID, RFC822.SIZE
 * (*@has_size) and first body section (each left alone when absent). */
static void
att_fields(struct mailimap_msg_att *att, guint32 *uid, guint32 *size, gboolean *has_size,
	   const struct mailimap_msg_att_body_section **body)
{
	for (clistiter *j = clist_begin(att->att_list); j != NULL; j = clist_next(j)) {
		struct mailimap_msg_att_item *item = clist_content(j);
		struct mailimap_msg_att_static *st;

		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		st = item->att_data.att_static;
		if (st->att_type == MAILIMAP_MSG_ATT_UID) {
			*uid = st->att_data.att_uid;
		} else if (st->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE && size != NULL) {
			*size = st->att_data.att_rfc822_size;
			*has_size = TRUE;
		} else if (st->att_type == MAILIMAP_MSG_ATT_BODY_SECTION && body != NULL &&
			   *body == NULL && st->att_data.att_body_section != NULL) {
			*body = st->att_data.att_body_section;
		}
	}
}

/* Runs a UID FETCH of @type over @set, each FETCH response going to
 * @collect as it is parsed; @bytes: what it may read besides the default
 * (see mr_net_conn_expect()).  Takes @set and @type. */
static int
session_uid_fetch(MrImapSession *s, struct mailimap_set *set, struct mailimap_fetch_type *type,
		  guint64 bytes, MrImapCollect collect, gpointer data)
{
	clist *result = NULL;
	int r;

	mr_net_conn_expect(s->conn, bytes);
	s->collect = collect;
	s->collect_data = data;
	r = mailimap_uid_fetch(s->imap, set, type, &result);
	s->collect = NULL;
	s->collect_data = NULL;
	mr_net_conn_expect(s->conn, 0);
	/* empty: the handler had them.  Not after a failure: libetpan 1.9.4
	 * frees the list then and leaves the pointer as it was. */
	if (r == MAILIMAP_NO_ERROR && result != NULL)
		mailimap_fetch_list_free(result);
	mailimap_fetch_type_free(type);
	mailimap_set_free(set);
	return r;
}

/* The UIDs of a listing: those above @after, at most about twice
 * MR_IMAP_LIST_MAX at any time. */
typedef struct {
	guint32 after;
	guint32 top; /* the highest UID that earned its response a credit */
	GArray *uids;
} MrImapListing;

/* Sorts @uids, keeps one entry per UID (the larger size: the safer
 * guess) and at most MR_IMAP_LIST_MAX of them, the lowest. */
static void
listing_trim(GArray *uids)
{
	guint n = 0;

	g_array_sort(uids, compare_uid);
	for (guint i = 0; i < uids->len && n < MR_IMAP_LIST_MAX; i++) {
		const MrImapUid *u = &g_array_index(uids, MrImapUid, i);

		if (n == 0 || g_array_index(uids, MrImapUid, n - 1).uid != u->uid)
			g_array_index(uids, MrImapUid, n++) = *u;
	}
	g_array_set_size(uids, n);
}

static void
collect_listing(MrImapSession *s, struct mailimap_msg_att *att, gpointer data)
{
	MrImapListing *l = data;
	MrImapUid u = { 0, 0 };
	gboolean has_size = FALSE;

	att_fields(att, &u.uid, &u.size, &has_size, NULL);
	/* "n:*" names the last message even when its UID is below n; a
	 * response without a size was not asked for (a flag change) */
	if (u.uid <= l->after || !has_size)
		return;
	g_array_append_val(l->uids, u);
	if (u.uid > l->top) {
		/* a new message: the answer may be that much longer */
		l->top = u.uid;
		mr_net_conn_credit(s->conn, MR_IMAP_LIST_CREDIT);
	}
	if (l->uids->len >= 2 * MR_IMAP_LIST_MAX)
		listing_trim(l->uids);
}

/* Lists the messages of the selected folder with a UID above @after, in
 * UID order, each once, at most MR_IMAP_LIST_MAX (the lowest). */
GArray *
mr_imap_session_list_after(MrImapSession *s, guint32 after, GError **error)
{
	MrImapListing l = { after, after, g_array_new(FALSE, FALSE, sizeof(MrImapUid)) };
	g_autoptr(GArray) uids = l.uids;
	struct mailimap_fetch_type *type;
	int r;

	if (s->imap->imap_selection_info != NULL && s->imap->imap_selection_info->sel_exists == 0)
		return g_steal_pointer(&uids);
	type = mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_rfc822_size());
	r = session_uid_fetch(s, mailimap_set_new_interval(after + 1, 0) /* after+1:* */, type, 0,
			      collect_listing, &l);
	if (r != MAILIMAP_NO_ERROR)
		return mr_imap_session_fail(s, r, "UID FETCH (UID RFC822.SIZE)", error), NULL;
	listing_trim(uids);
	return g_steal_pointer(&uids);
}

/* Whether message @uid is still in the selected folder (*@exists). */
typedef struct {
	guint32 uid;
	gboolean seen;
} MrImapProbeUid;

static void
collect_exists(MrImapSession *s, struct mailimap_msg_att *att, gpointer data)
{
	MrImapProbeUid *p = data;
	guint32 uid = 0;

	att_fields(att, &uid, NULL, NULL, NULL);
	p->seen = p->seen || uid == p->uid;
}

gboolean
mr_imap_session_uid_exists(MrImapSession *s, guint32 uid, gboolean *exists, GError **error)
{
	MrImapProbeUid p = { uid, FALSE };
	struct mailimap_fetch_type *type = mailimap_fetch_type_new_fetch_att_list_empty();
	int r;

	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid());
	r = session_uid_fetch(s, mailimap_set_new_single(uid), type, 0, collect_exists, &p);
	if (r != MAILIMAP_NO_ERROR)
		return mr_imap_session_fail(s, r, "UID FETCH (UID)", error);
	*exists = p.seen;
	return TRUE;
}

static struct mailimap_set *
set_of(const MrImapUid *uids, guint n)
{
	struct mailimap_set *set = mailimap_set_new_empty();

	for (guint i = 0; i < n; i++)
		mailimap_set_add_single(set, uids[i].uid);
	return set;
}

/* The bodies a FETCH asked for, by position in its list. */
typedef struct {
	GHashTable *index; /* UID -> position + 1 */
	GPtrArray *raws;   /* GBytes*, NULL until its body came */
} MrImapBodies;

static void
collect_body(MrImapSession *s, struct mailimap_msg_att *att, gpointer data)
{
	MrImapBodies *b = data;
	const struct mailimap_msg_att_body_section *body = NULL;
	guint32 uid = 0;
	guint pos;

	att_fields(att, &uid, NULL, NULL, &body);
	pos = GPOINTER_TO_UINT(g_hash_table_lookup(b->index, GUINT_TO_POINTER(uid)));
	/* not asked for, no body (NIL), or a repeat (the first one counts):
	 * freed when this returns */
	if (pos == 0 || body == NULL || body->sec_body_part == NULL || body->sec_length == 0 ||
	    g_ptr_array_index(b->raws, pos - 1) != NULL)
		return;
	g_ptr_array_index(b->raws, pos - 1) = g_bytes_new(body->sec_body_part, body->sec_length);
}

/* Fetches the bytes of the @n messages @uids (each listed once): returns
 * an array of GBytes in the order of @uids (NULL for a message whose body
 * the server did not send). */
GPtrArray *
mr_imap_session_fetch(MrImapSession *s, const MrImapUid *uids, guint n, GError **error)
{
	g_autoptr(GPtrArray) raws = g_ptr_array_new_full(n, (GDestroyNotify)g_bytes_unref);
	g_autoptr(GHashTable) index = g_hash_table_new(NULL, NULL);
	MrImapBodies bodies = { index, raws };
	struct mailimap_fetch_type *type = mailimap_fetch_type_new_fetch_att_list_empty();
	guint64 announced = 0;
	int r;

	g_ptr_array_set_size(raws, n);
	for (guint i = 0; i < n; i++) {
		g_hash_table_insert(index, GUINT_TO_POINTER(uids[i].uid), GUINT_TO_POINTER(i + 1));
		announced += (guint64)uids[i].size + MR_IMAP_READ_SLACK;
	}
	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(
		type, mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
	r = session_uid_fetch(s, set_of(uids, n), type, announced, collect_body, &bodies);
	if (r != MAILIMAP_NO_ERROR)
		return mr_imap_session_fail(s, r, "UID FETCH BODY.PEEK[]", error), NULL;
	return g_steal_pointer(&raws);
}

/* One part of a message asked for: BODY[]<offset>, at most @want bytes. */
typedef struct {
	guint32 uid, offset, want;
	MrSpool *spool;
	gsize got;
	gboolean answered, misplaced;
	GError *error;
} MrImapPart;

static void
collect_part(MrImapSession *s, struct mailimap_msg_att *att, gpointer data)
{
	MrImapPart *p = data;
	const struct mailimap_msg_att_body_section *body = NULL;
	guint32 uid = 0;

	att_fields(att, &uid, NULL, NULL, &body);
	if (uid != p->uid || body == NULL || p->answered)
		return;
	p->answered = TRUE;
	if (body->sec_body_part == NULL || body->sec_length == 0)
		return;
	if (body->sec_origin_octet != p->offset) {
		p->misplaced = TRUE; /* a server that ignores the offset */
		return;
	}
	/* more than asked for is cut: the file never outgrows the limit */
	p->got = MIN(body->sec_length, (gsize)p->want);
	if (!mr_spool_append(p->spool, (const guint8 *)body->sec_body_part, p->got, &p->error))
		p->got = 0;
}

/* Fetches message @uid in parts (BODY.PEEK[]<offset.count>) into a file
 * of @spool_dir, at most @limit bytes, whatever the server answers:
 * memory and the file stay bounded however big it is or claims to be.
 * *@complete is TRUE when the message ended before @limit (a part shorter
 * than asked for).  Returns: (transfer full): the bytes (mapped; empty
 * when the server sent none), or NULL with @error. */
GBytes *
mr_imap_session_fetch_spooled(MrImapSession *s, guint32 uid, const char *spool_dir,
			      guint64 limit, gboolean *complete, GError **error)
{
	g_autoptr(MrSpool) spool = mr_spool_new(spool_dir, 0);
	guint64 offset = 0;

	*complete = FALSE;
	limit = MIN(limit, (guint64)G_MAXUINT32);
	while (offset < limit) {
		MrImapPart p = { uid, (guint32)offset, (guint32)MIN((guint64)MR_IMAP_CHUNK, limit - offset),
				 spool, 0, FALSE, FALSE, NULL };
		struct mailimap_fetch_type *type = mailimap_fetch_type_new_fetch_att_list_empty();
		int r;

		mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid());
		mailimap_fetch_type_new_fetch_att_list_add(
			type, mailimap_fetch_att_new_body_peek_section_partial(
				      mailimap_section_new(NULL), p.offset, p.want));
		r = session_uid_fetch(s, mailimap_set_new_single(uid), type,
				      (guint64)p.want + MR_IMAP_READ_SLACK, collect_part, &p);
		if (p.error != NULL) {
			g_propagate_error(error, p.error);
			return NULL;
		}
		if (r != MAILIMAP_NO_ERROR)
			return mr_imap_session_fail(s, r, "UID FETCH BODY.PEEK[]<partial>", error),
			       NULL;
		if (p.misplaced) {
			g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_PROTOCOL,
				    "UID FETCH BODY.PEEK[]<%u.%u>: the server answered another part",
				    p.offset, p.want);
			return NULL;
		}
		offset += p.got;
		if (p.got < p.want) {
			*complete = TRUE;
			break;
		}
	}
	return mr_spool_finish(spool, error);
}

static gboolean
store_flag(MrImapSession *s, struct mailimap_set *set, struct mailimap_flag *flag,
	   GError **error)
{
	struct mailimap_flag_list *flags = mailimap_flag_list_new_empty();
	struct mailimap_store_att_flags *att;
	int r;

	mailimap_flag_list_add(flags, flag);
	att = mailimap_store_att_flags_new_add_flags_silent(flags);
	r = mailimap_uid_store(s->imap, set, att);
	mailimap_store_att_flags_free(att);
	if (r != MAILIMAP_NO_ERROR)
		return mr_imap_session_fail(s, r, "UID STORE", error);
	return TRUE;
}

/* Applies the after action of @mb to the @n messages @uids. */
gboolean
mr_imap_session_after(MrImapSession *s, const MrImapMailbox *mb, const MrImapUid *uids,
		      guint n, GError **error)
{
	struct mailimap_set *set;
	gboolean ok = TRUE;
	int r;

	if (n == 0)
		return TRUE;
	set = set_of(uids, n);
	switch (mb->after) {
	case MR_IMAP_AFTER_SEEN:
		ok = store_flag(s, set, mailimap_flag_new_seen(), error);
		break;
	case MR_IMAP_AFTER_MOVE:
		if (s->has_move) {
			r = mailimap_uid_move(s->imap, set, mb->after_folder);
			ok = r == MAILIMAP_NO_ERROR ||
			     mr_imap_session_fail(s, r, "UID MOVE", error);
			break;
		}
		r = mailimap_uid_copy(s->imap, set, mb->after_folder);
		if (r != MAILIMAP_NO_ERROR) {
			ok = mr_imap_session_fail(s, r, "UID COPY", error);
			break;
		}
		/* delete the originals */
		G_GNUC_FALLTHROUGH;
	case MR_IMAP_AFTER_DELETE:
		ok = store_flag(s, set, mailimap_flag_new_deleted(), error);
		if (!ok)
			break;
		/* UID EXPUNGE removes only these; a plain EXPUNGE would also
		 * remove what someone else flagged \Deleted. */
		r = s->has_uidplus ? mailimap_uid_expunge(s->imap, set) : mailimap_expunge(s->imap);
		ok = r == MAILIMAP_NO_ERROR || mr_imap_session_fail(s, r, "EXPUNGE", error);
		break;
	}
	mailimap_set_free(set);
	return ok;
}

/* Makes the wait in progress (or the next one) of @poke's thread return. */
void
mr_imap_poke_send(MrImapPoke *poke)
{
	g_mutex_lock(&poke->lock);
	poke->poked = TRUE;
	if (poke->waiting != NULL)
		g_main_context_wakeup(poke->waiting);
	g_mutex_unlock(&poke->lock);
}

/* Starts a wait on @ctx: FALSE when a poke came already (and takes it). */
static gboolean
poke_wait_begin(MrImapPoke *poke, GMainContext *ctx)
{
	gboolean poked;

	g_mutex_lock(&poke->lock);
	poked = poke->poked;
	poke->poked = FALSE;
	poke->waiting = poked ? NULL : ctx;
	g_mutex_unlock(&poke->lock);
	return !poked;
}

/* Returns TRUE when a poke came during the wait (and takes it). */
static gboolean
poke_taken(MrImapPoke *poke)
{
	gboolean poked;

	g_mutex_lock(&poke->lock);
	poked = poke->poked;
	poke->poked = FALSE;
	g_mutex_unlock(&poke->lock);
	return poked;
}

static void
poke_wait_end(MrImapPoke *poke)
{
	g_mutex_lock(&poke->lock);
	poke->waiting = NULL;
	g_mutex_unlock(&poke->lock);
}

static gboolean
readable_cb(GObject *stream, gpointer data)
{
	*(gboolean *)data = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
flag_cb(gpointer data)
{
	*(gboolean *)data = TRUE;
	return G_SOURCE_REMOVE;
}

/* Waits until the server has something for us, @seconds pass, or @wake
 * is cancelled: libetpan's buffer first, then the TLS layer's, then the
 * socket. */
static void
wait_readable(MrImapSession *s, GCancellable *wake, MrImapPoke *poke, int seconds)
{
	GPollableInputStream *in =
		G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(mr_net_conn_get_stream(s->conn)));
	g_autoptr(GMainContext) ctx = NULL;
	g_autoptr(GSource) ready = NULL;
	g_autoptr(GSource) timer = NULL;
	gboolean fired = FALSE;

	if (s->imap->imap_stream->read_buffer_len > 0 || g_pollable_input_stream_is_readable(in))
		return;
	ctx = g_main_context_new();
	if (!poke_wait_begin(poke, ctx))
		return;
	/* No cancellable here: glib-networking's TLS source leaks the one it
	 * makes for it.  A stop pokes too. */
	ready = g_pollable_input_stream_create_source(in, NULL);
	timer = g_timeout_source_new_seconds((guint)seconds);
	g_source_set_callback(ready, G_SOURCE_FUNC(readable_cb), &fired, NULL);
	g_source_set_callback(timer, flag_cb, &fired, NULL);
	g_source_attach(ready, ctx);
	g_source_attach(timer, ctx);
	while (!fired && !poke_taken(poke) && !g_cancellable_is_cancelled(wake))
		g_main_context_iteration(ctx, TRUE);
	poke_wait_end(poke);
	g_source_destroy(ready);
	g_source_destroy(timer);
}

/* Waits @seconds, or until @wake is cancelled or @poke pokes.  (No
 * GCancellableSource: a cancel from another thread while one is attached
 * leaks it in GLib 2.74.) */
void
mr_imap_wait_wake(GCancellable *wake, MrImapPoke *poke, int seconds)
{
	g_autoptr(GMainContext) ctx = g_main_context_new();
	g_autoptr(GSource) timer = g_timeout_source_new_seconds((guint)seconds);
	gboolean fired = FALSE;

	if (g_cancellable_is_cancelled(wake) || !poke_wait_begin(poke, ctx))
		return;
	g_source_set_callback(timer, flag_cb, &fired, NULL);
	g_source_attach(timer, ctx);
	while (!fired && !poke_taken(poke) && !g_cancellable_is_cancelled(wake))
		g_main_context_iteration(ctx, TRUE);
	poke_wait_end(poke);
	g_source_destroy(timer);
}

/* IDLE until the server says something, @seconds pass, or @wake or @poke
 * is cancelled; then DONE. */
gboolean
mr_imap_session_idle(MrImapSession *s, GCancellable *wake, MrImapPoke *poke, int seconds,
		     GError **error)
{
	int r = mailimap_idle(s->imap);

	if (r != MAILIMAP_NO_ERROR)
		return mr_imap_session_fail(s, r, "IDLE", error);
	wait_readable(s, wake, poke, seconds);
	r = mailimap_idle_done(s->imap);
	if (r != MAILIMAP_NO_ERROR)
		return mr_imap_session_fail(s, r, "DONE", error);
	return TRUE;
}

/* --- mailroomctl mailbox test ---------------------------------------------------- */

void
mr_imap_probe_clear(MrImapProbe *probe)
{
	g_clear_pointer(&probe->capabilities, g_strfreev);
}

gboolean
mr_imap_probe(const MrImapMailbox *mb, MrImapProbe *out, GError **error)
{
	g_autoptr(MrImapSession) s = mr_imap_session_open(mb, NULL, error);
	g_autoptr(GStrvBuilder) caps = g_strv_builder_new();
	struct mailimap_capability_data *data;
	int r;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return FALSE;
	data = s->imap->imap_connection_info != NULL ? s->imap->imap_connection_info->imap_capability
						     : NULL;
	for (clistiter *i = data != NULL ? clist_begin(data->cap_list) : NULL; i != NULL;
	     i = clist_next(i)) {
		struct mailimap_capability *c = clist_content(i);

		if (c->cap_type == MAILIMAP_CAPABILITY_NAME)
			g_strv_builder_add(caps, c->cap_data.cap_name);
		else if (c->cap_type == MAILIMAP_CAPABILITY_AUTH_TYPE)
		{
			g_autofree char *auth = g_strconcat("AUTH=", c->cap_data.cap_auth_type, NULL);

			g_strv_builder_add(caps, auth);
		}
	}
	r = mailimap_examine(s->imap, mb->folder);
	if (r != MAILIMAP_NO_ERROR) {
		g_autofree char *what = g_strdup_printf("EXAMINE %s", mb->folder);

		return mr_imap_session_fail(s, r, what, error);
	}
	out->capabilities = g_strv_builder_end(caps);
	out->exists = s->imap->imap_selection_info->sel_exists;
	out->uidvalidity = s->imap->imap_selection_info->sel_uidvalidity;
	out->uidnext = s->imap->imap_selection_info->sel_uidnext;
	mailimap_logout(s->imap);
	return TRUE;
}
