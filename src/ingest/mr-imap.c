/* mr-imap.c - the IMAP door: a thread per mailbox fetches its mail through
 * libetpan and hands it to the writer; see mr-imap.h for the contract.
 *
 * Ingest stage.  libetpan speaks IMAP; the bytes travel over a GIO
 * connection (a mailstream_low driver below), so that TLS is GIO's, with
 * certificate verification, and every blocking read or write of a thread
 * can be cancelled at stop.  The thread never touches the database itself:
 * messages go to the writer like SMTP mail, and the mailbox's state is
 * saved through writer units. */
#define G_LOG_DOMAIN "mailroom-imap"

#include <gio/gio.h>
#include <libetpan/libetpan.h>
#include <string.h>

#include "mailroom/mr-error.h"
#include "mailroom/mr-imap.h"
#include "mailroom/mr-spool.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-token.h"

/* Seconds a read or write may block before the connection counts as lost. */
#define MR_IMAP_IO_TIMEOUT 120
/* IDLE is re-issued before the 30 minutes servers allow (RFC 2177). */
#define MR_IMAP_IDLE_SECONDS (29 * 60)
/* A fetch batch: at most this many messages and about this many bytes. */
#define MR_IMAP_BATCH_MESSAGES 200
#define MR_IMAP_BATCH_BYTES (16 * 1024 * 1024)
/* A message over limits.max_message_size is fetched in parts this big. */
#define MR_IMAP_CHUNK (4 * 1024 * 1024)
/* A message whose store fails this often (not for a busy database) goes
 * to the quarantine. */
#define MR_IMAP_MAX_ATTEMPTS 2
/* A message that was being stored alone when this many runs of mailroomd
 * died goes to the quarantine unparsed (a message that crashes it). */
#define MR_IMAP_MAX_DEATHS 2
/* Batches in the writer's hands at once: the next is fetched and parsed
 * while one is stored. */
#define MR_IMAP_IN_FLIGHT 2
/* Lists in a row that find nothing new although the server announced a
 * change (another client's expunge, say) before the drain waits in IDLE. */
#define MR_IMAP_RELISTS 3
/* Batches one mark in flight covers, and UIDs past the batch by this
 * many times MR_IMAP_BATCH_MESSAGES (see watch_mark()). */
#define MR_IMAP_MARK_AHEAD 8
/* What one command may read from the server, unless it announced more
 * (a FETCH of bodies: the sizes it announced): a server that sends more
 * loses the connection, so memory stays bounded whatever it sends. */
#define MR_IMAP_READ_LIMIT (64 * 1024 * 1024)
/* Slack per message over its announced size (the FETCH response's own
 * words around the literal). */
#define MR_IMAP_READ_SLACK (64 * 1024)

/* --- the connection: GIO under libetpan ------------------------------------ */

typedef struct {
	GSocketConnection *tcp; /* the TCP connection */
	GIOStream *stream;      /* tcp, or the TLS connection over it */
	GCancellable *cancel;   /* cancels blocking I/O (hard stop) */
	GError *error;          /* why the last read or write failed */
	guint64 allowed;        /* what the command in progress may read */
	guint64 left;           /* of it, not read yet (reset by each write) */
} MrImapConn;

/* Sets what the next commands may read (conn_expect(c, 0): the default). */
static void
conn_expect(MrImapConn *c, guint64 bytes)
{
	c->allowed = bytes != 0 ? bytes : MR_IMAP_READ_LIMIT;
	c->left = c->allowed;
}

static void
conn_free(MrImapConn *c)
{
	if (c == NULL)
		return;
	if (c->stream != NULL && c->stream != G_IO_STREAM(c->tcp))
		g_io_stream_close(c->stream, NULL, NULL);
	g_clear_object(&c->stream);
	if (c->tcp != NULL)
		g_io_stream_close(G_IO_STREAM(c->tcp), NULL, NULL);
	g_clear_object(&c->tcp);
	g_clear_object(&c->cancel);
	g_clear_error(&c->error);
	g_free(c);
}

static ssize_t
low_read(mailstream_low *s, void *buf, size_t count)
{
	MrImapConn *c = s->data;
	gssize n;

	g_clear_error(&c->error);
	if (c->left == 0) {
		g_set_error(&c->error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
			    "the server sent more than %" G_GUINT64_FORMAT " bytes for one command",
			    c->allowed);
		return -1;
	}
	n = g_input_stream_read(g_io_stream_get_input_stream(c->stream), buf,
				MIN((guint64)count, c->left), c->cancel, &c->error);
	if (n > 0)
		c->left -= (guint64)n;
	return n < 0 ? -1 : n;
}

static ssize_t
low_write(mailstream_low *s, const void *buf, size_t count)
{
	MrImapConn *c = s->data;
	gsize written = 0;

	c->left = c->allowed; /* a command (or its continuation) starts */
	g_clear_error(&c->error);
	if (!g_output_stream_write_all(g_io_stream_get_output_stream(c->stream), buf, count,
				       &written, c->cancel, &c->error))
		return -1;
	return (ssize_t)written;
}

static int
low_close(mailstream_low *s)
{
	return 0; /* the connection closes with the MrImapConn */
}

static int
low_get_fd(mailstream_low *s)
{
	MrImapConn *c = s->data;

	return g_socket_get_fd(g_socket_connection_get_socket(c->tcp));
}

static void
low_free(mailstream_low *s)
{
	free(s); /* allocated by mailstream_low_new(); the data is not ours */
}

static void
low_cancel(mailstream_low *s)
{
	MrImapConn *c = s->data;

	g_cancellable_cancel(c->cancel);
}

static mailstream_low_driver mr_imap_low_driver = {
	.mailstream_read = low_read,
	.mailstream_write = low_write,
	.mailstream_close = low_close,
	.mailstream_get_fd = low_get_fd,
	.mailstream_free = low_free,
	.mailstream_cancel = low_cancel,
};

/* An open IMAP session: libetpan's state over our connection. */
typedef struct {
	mailimap *imap;
	MrImapConn *conn;
	gboolean has_idle, has_move, has_uidplus;
} MrImapSession;

static void
session_free(MrImapSession *s)
{
	if (s == NULL)
		return;
	if (s->imap != NULL)
		mailimap_free(s->imap); /* frees the mailstream and our low */
	conn_free(s->conn);
	g_free(s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrImapSession, session_free)

/* The last line the server answered, for errors ("[AUTHENTICATIONFAILED]
 * Authentication failed."). */
static const char *
server_said(const MrImapSession *s)
{
	const char *r = s->imap != NULL ? s->imap->imap_response : NULL;

	return r != NULL && *r != '\0' ? r : "no answer";
}

/* Sets @error from libetpan's result @r of @what: a stream error carries
 * the connection's own error. */
static gboolean
session_fail(MrImapSession *s, int r, const char *what, GError **error)
{
	if (r == MAILIMAP_ERROR_STREAM && s->conn->error != NULL) {
		g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_CONNECT, "%s: %s", what,
			    s->conn->error->message);
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

/* --- TLS -------------------------------------------------------------------- */

typedef struct {
	const MrImapMailbox *mb;
	GTlsDatabase *extra; /* (nullable): tls_ca_file */
	GSocketConnectable *identity;
} MrTlsCheck;

/* GIO verified the certificate against the system's store and found
 * @errors: accept it when tls_verify is off, or when tls_ca_file vouches
 * for the chain (the same checks, against that CA). */
static gboolean
accept_certificate(GTlsConnection *tls, GTlsCertificate *cert, GTlsCertificateFlags errors,
		   gpointer data)
{
	MrTlsCheck *check = data;

	if (!check->mb->tls_verify)
		return TRUE;
	if (check->extra != NULL) {
		g_autoptr(GError) local = NULL;
		GTlsCertificateFlags flags = g_tls_database_verify_chain(
			check->extra, cert, G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER,
			check->identity, NULL, G_TLS_DATABASE_VERIFY_NONE, NULL, &local);

		return local == NULL && flags == 0;
	}
	return FALSE;
}

static const char *
tls_flags_text(GTlsCertificateFlags f)
{
	if (f & G_TLS_CERTIFICATE_UNKNOWN_CA)
		return "signed by an unknown CA";
	if (f & G_TLS_CERTIFICATE_BAD_IDENTITY)
		return "issued to another name";
	if (f & G_TLS_CERTIFICATE_EXPIRED)
		return "expired";
	if (f & G_TLS_CERTIFICATE_NOT_ACTIVATED)
		return "not valid yet";
	if (f & G_TLS_CERTIFICATE_REVOKED)
		return "revoked";
	return "not acceptable";
}

/* Wraps the connection of @c in TLS and does the handshake. */
static gboolean
conn_start_tls(MrImapConn *c, const MrImapMailbox *mb, GError **error)
{
	g_autoptr(GSocketConnectable) identity = g_network_address_new(mb->host, (guint16)mb->port);
	g_autoptr(GTlsDatabase) extra = NULL;
	g_autoptr(GIOStream) tls = NULL;
	g_autoptr(GError) local = NULL;
	MrTlsCheck check = { mb, NULL, identity };
	gulong handler;

	if (mb->tls_ca_file != NULL) {
		extra = g_tls_file_database_new(mb->tls_ca_file, &local);
		if (extra == NULL) {
			g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_TLS, "tls_ca_file %s: %s",
				    mb->tls_ca_file, local->message);
			return FALSE;
		}
		check.extra = extra;
	}
	if (!mb->tls_verify)
		g_warning("mailbox %s: tls_verify is off: the server's certificate is not checked"
			  " (for tests only)", mb->name);
	tls = g_tls_client_connection_new(G_IO_STREAM(c->tcp), identity, &local);
	if (tls == NULL) {
		g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_TLS, "TLS: %s", local->message);
		return FALSE;
	}
	handler = g_signal_connect(tls, "accept-certificate", G_CALLBACK(accept_certificate),
				   &check);
	if (!g_tls_connection_handshake(G_TLS_CONNECTION(tls), c->cancel, &local)) {
		GTlsCertificateFlags f = g_tls_connection_get_peer_certificate_errors(G_TLS_CONNECTION(tls));

		if (g_error_matches(local, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE) && f != 0)
			g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_TLS,
				    "the certificate of %s is %s", mb->host, tls_flags_text(f));
		else
			g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_TLS, "TLS handshake with %s: %s",
				    mb->host, local->message);
		return FALSE;
	}
	g_signal_handler_disconnect(tls, handler);
	g_clear_object(&c->stream);
	c->stream = g_steal_pointer(&tls);
	return TRUE;
}

/* --- login ------------------------------------------------------------------- */

/* Runs token_command (see mr-token.h) and returns its token; a failure
 * is a refused login (MR_IMAP_ERROR_AUTH). */
static char *
fetch_token(const MrImapMailbox *mb, GError **error)
{
	g_autoptr(GError) local = NULL;
	char *token = mr_token_run((const char *const *)mb->token_command, "token_command",
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

/* SASL OAUTHBEARER (RFC 7628) with an initial response (SASL-IR), which
 * libetpan lacks; built as its XOAUTH2 is, of the session calls its
 * mailimap.h offers.  On a refusal the server sends a continuation with
 * an error document; the client answers with a single %x01 and then gets
 * the tagged NO.  Returns a MAILIMAP_ code as mailimap_oauth2_authenticate
 * does. */
static int
oauthbearer_authenticate(MrImapSession *s, const MrImapMailbox *mb, const char *token)
{
	g_autoptr(GString) gs2 = g_string_new("n,a=");
	g_autofree char *b64 = NULL;
	struct mailimap_response *response = NULL;
	mailstream *stream = s->imap->imap_stream;
	const char *line;
	int r, state;

	if (s->imap->imap_state != MAILIMAP_STATE_NON_AUTHENTICATED)
		return MAILIMAP_ERROR_BAD_STATE;
	append_saslname(gs2, mb->user);
	g_string_append_printf(gs2, ",\001host=%s\001port=%d\001auth=Bearer %s\001\001",
			       mb->host, mb->port, token);
	b64 = g_base64_encode((const guchar *)gs2->str, gs2->len);
	memset(gs2->str, 0, gs2->len);
	r = mailimap_send_current_tag(s->imap);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	mailstream_set_privacy(stream, 0);
	if (mailstream_write(stream, "AUTHENTICATE OAUTHBEARER ", 25) != 25 ||
	    mailstream_write(stream, b64, strlen(b64)) != (ssize_t)strlen(b64) ||
	    mailstream_write(stream, "\r\n", 2) != 2 || mailstream_flush(stream) == -1) {
		mailstream_set_privacy(stream, 1);
		memset(b64, 0, strlen(b64));
		return MAILIMAP_ERROR_STREAM;
	}
	mailstream_set_privacy(stream, 1);
	memset(b64, 0, strlen(b64));
	line = mailimap_read_line(s->imap);
	if (line == NULL)
		return MAILIMAP_ERROR_STREAM;
	if (line[0] == '+') {
		/* the error document: its content does not change what follows */
		if (mailstream_write(stream, "AQ==\r\n", 6) != 6 || mailstream_flush(stream) == -1 ||
		    mailimap_read_line(s->imap) == NULL)
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

/* OAuth2: SASL XOAUTH2 as Google and Microsoft document it, or
 * OAUTHBEARER when the server announces only that.  A fresh token for
 * every login, and once more at once when the server refuses it (it may
 * have expired in between). */
static gboolean
session_login_oauth(MrImapSession *s, const MrImapMailbox *mb, GError **error)
{
	struct mailimap_capability_data *caps = NULL;
	gboolean bearer;
	const char *what;
	int r;

	/* what the greeting said may be stale after STARTTLS: ask */
	r = mailimap_capability(s->imap, &caps);
	if (r != MAILIMAP_NO_ERROR)
		return session_fail(s, r, "CAPABILITY", error);
	mailimap_capability_data_free(caps);
	bearer = !mailimap_has_authentication(s->imap, "XOAUTH2") &&
		 mailimap_has_authentication(s->imap, "OAUTHBEARER");
	what = bearer ? "OAUTHBEARER login" : "XOAUTH2 login";
	for (int attempt = 0; attempt < 2; attempt++) {
		g_autofree char *token = fetch_token(mb, error);

		if (token == NULL)
			return FALSE;
		r = bearer ? oauthbearer_authenticate(s, mb, token)
			   : mailimap_oauth2_authenticate(s->imap, mb->user, token);
		memset(token, 0, strlen(token));
		if (r == MAILIMAP_NO_ERROR)
			return TRUE;
		if (r != MAILIMAP_ERROR_LOGIN)
			break;
	}
	return session_fail(s, r, what, error);
}

static gboolean
session_login(MrImapSession *s, const MrImapMailbox *mb, GError **error)
{
	int r;

	if (mb->auth == MR_IMAP_AUTH_XOAUTH2)
		return session_login_oauth(s, mb, error);
	{
		g_autoptr(GError) local = NULL;
		g_autofree char *password = mr_imap_mailbox_password(mb, &local);

		if (password == NULL) {
			g_set_error_literal(error, MR_IMAP_ERROR, MR_IMAP_ERROR_AUTH, local->message);
			return FALSE;
		}
		r = mailimap_login(s->imap, mb->user, password);
		memset(password, 0, strlen(password));
	}
	if (r != MAILIMAP_NO_ERROR)
		return session_fail(s, r, "login", error);
	return TRUE;
}

static gboolean
has_cap(mailimap *imap, const char *name)
{
	return mailimap_has_extension(imap, (char *)name) != 0;
}

/* Connects to @mb, secures the connection as configured and logs in. */
static MrImapSession *
session_open(const MrImapMailbox *mb, GCancellable *cancel, GError **error)
{
	g_autoptr(MrImapSession) s = g_new0(MrImapSession, 1);
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GError) local = NULL;
	mailstream *stream;
	int r;

	s->conn = g_new0(MrImapConn, 1);
	s->conn->cancel = cancel != NULL ? g_object_ref(cancel) : g_cancellable_new();
	conn_expect(s->conn, 0);
	g_socket_client_set_timeout(client, 30);
	s->conn->tcp = g_socket_client_connect_to_host(client, mb->host, (guint16)mb->port,
						       s->conn->cancel, &local);
	if (s->conn->tcp == NULL) {
		g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_CONNECT, "connect to %s:%d: %s",
			    mb->host, mb->port, local->message);
		return NULL;
	}
	g_socket_set_timeout(g_socket_connection_get_socket(s->conn->tcp), MR_IMAP_IO_TIMEOUT);
	s->conn->stream = G_IO_STREAM(g_object_ref(s->conn->tcp));
	if (mb->tls == MR_IMAP_TLS_IMPLICIT && !conn_start_tls(s->conn, mb, error))
		return NULL;
	s->imap = mailimap_new(0, NULL);
	stream = mailstream_new(mailstream_low_new(s->conn, &mr_imap_low_driver), 8192);
	r = mailimap_connect(s->imap, stream);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		session_fail(s, r, "greeting", error);
		return NULL;
	}
	if (mb->tls == MR_IMAP_TLS_STARTTLS) {
		r = mailimap_starttls(s->imap);
		if (r != MAILIMAP_NO_ERROR) {
			g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_TLS,
				    "STARTTLS refused by %s: %s", mb->host, server_said(s));
			return NULL;
		}
		if (!conn_start_tls(s->conn, mb, error))
			return NULL;
	}
	if (!session_login(s, mb, error))
		return NULL;
	{
		struct mailimap_capability_data *caps = NULL;

		/* after the login: servers announce more then */
		r = mailimap_capability(s->imap, &caps);
		if (r != MAILIMAP_NO_ERROR) {
			session_fail(s, r, "CAPABILITY", error);
			return NULL;
		}
		mailimap_capability_data_free(caps);
	}
	s->has_idle = mailimap_has_idle(s->imap) != 0;
	s->has_move = has_cap(s->imap, "MOVE");
	s->has_uidplus = has_cap(s->imap, "UIDPLUS");
	return g_steal_pointer(&s);
}

/* --- commands ------------------------------------------------------------------ */

/* Selects @folder (created before by session_ensure_folder()). */
static gboolean
session_select(MrImapSession *s, const char *folder, GError **error)
{
	int r = mailimap_select(s->imap, folder);

	if (r != MAILIMAP_NO_ERROR) {
		g_autofree char *what = g_strdup_printf("SELECT %s", folder);

		return session_fail(s, r, what, error);
	}
	return TRUE;
}

/* Creates @folder unless it exists (an error that says so is fine). */
static gboolean
session_ensure_folder(MrImapSession *s, const char *folder, GError **error)
{
	clist *list = NULL;
	int r = mailimap_list(s->imap, "", folder, &list);
	gboolean exists = r == MAILIMAP_NO_ERROR && list != NULL && clist_count(list) > 0;

	if (list != NULL)
		mailimap_list_result_free(list);
	if (r != MAILIMAP_NO_ERROR)
		return session_fail(s, r, "LIST", error);
	if (exists)
		return TRUE;
	r = mailimap_create(s->imap, folder);
	if (r != MAILIMAP_NO_ERROR) {
		g_autofree char *what = g_strdup_printf("CREATE %s", folder);

		return session_fail(s, r, what, error);
	}
	g_message("created folder %s", folder);
	return TRUE;
}

/* A message on the server: its UID and size. */
typedef struct {
	guint32 uid;
	guint32 size;
} MrImapUid;

static int
compare_uid(gconstpointer a, gconstpointer b)
{
	guint32 x = ((const MrImapUid *)a)->uid, y = ((const MrImapUid *)b)->uid;

	return x < y ? -1 : x > y;
}

/* Reads what a FETCH answered for one message: its UID, RFC822.SIZE and
 * first body section (each left alone when absent). */
static void
att_fields(struct mailimap_msg_att *att, guint32 *uid, guint32 *size,
	   const struct mailimap_msg_att_body_section **body)
{
	for (clistiter *j = clist_begin(att->att_list); j != NULL; j = clist_next(j)) {
		struct mailimap_msg_att_item *item = clist_content(j);
		struct mailimap_msg_att_static *st;

		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		st = item->att_data.att_static;
		if (st->att_type == MAILIMAP_MSG_ATT_UID)
			*uid = st->att_data.att_uid;
		else if (st->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE && size != NULL)
			*size = st->att_data.att_rfc822_size;
		else if (st->att_type == MAILIMAP_MSG_ATT_BODY_SECTION && body != NULL &&
			 *body == NULL && st->att_data.att_body_section != NULL &&
			 st->att_data.att_body_section->sec_body_part != NULL)
			*body = st->att_data.att_body_section;
	}
}

/* Lists the messages of the selected folder with a UID above @after, in
 * UID order. */
static GArray *
session_list_after(MrImapSession *s, guint32 after, GError **error)
{
	g_autoptr(GArray) uids = g_array_new(FALSE, FALSE, sizeof(MrImapUid));
	struct mailimap_set *set;
	struct mailimap_fetch_type *type;
	clist *result = NULL;
	int r;

	if (s->imap->imap_selection_info != NULL && s->imap->imap_selection_info->sel_exists == 0)
		return g_steal_pointer(&uids);
	set = mailimap_set_new_interval(after + 1, 0); /* after+1:* */
	type = mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_rfc822_size());
	r = mailimap_uid_fetch(s->imap, set, type, &result);
	mailimap_fetch_type_free(type);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		return session_fail(s, r, "UID FETCH (UID RFC822.SIZE)", error), NULL;
	for (clistiter *i = clist_begin(result); i != NULL; i = clist_next(i)) {
		MrImapUid u = { 0, 0 };

		att_fields(clist_content(i), &u.uid, &u.size, NULL);
		/* "n:*" names the last message even when its UID is below n */
		if (u.uid > after)
			g_array_append_val(uids, u);
	}
	mailimap_fetch_list_free(result);
	g_array_sort(uids, compare_uid);
	return g_steal_pointer(&uids);
}

static struct mailimap_set *
set_of(const MrImapUid *uids, guint n)
{
	struct mailimap_set *set = mailimap_set_new_empty();

	for (guint i = 0; i < n; i++)
		mailimap_set_add_single(set, uids[i].uid);
	return set;
}

/* Fetches the bytes of the @n messages @uids: returns an array of GBytes
 * in the order of @uids (NULL for a message the server did not send). */
static GPtrArray *
session_fetch(MrImapSession *s, const MrImapUid *uids, guint n, GError **error)
{
	g_autoptr(GPtrArray) raws = g_ptr_array_new_full(n, (GDestroyNotify)g_bytes_unref);
	g_autoptr(GHashTable) by_uid = g_hash_table_new(NULL, NULL);
	struct mailimap_set *set = set_of(uids, n);
	struct mailimap_fetch_type *type = mailimap_fetch_type_new_fetch_att_list_empty();
	clist *result = NULL;
	int r;

	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(
		type, mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
	{
		guint64 announced = 0;

		for (guint i = 0; i < n; i++)
			announced += uids[i].size + MR_IMAP_READ_SLACK;
		conn_expect(s->conn, announced);
	}
	r = mailimap_uid_fetch(s->imap, set, type, &result);
	conn_expect(s->conn, 0);
	mailimap_fetch_type_free(type);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		return session_fail(s, r, "UID FETCH BODY.PEEK[]", error), NULL;
	for (clistiter *i = clist_begin(result); i != NULL; i = clist_next(i)) {
		const struct mailimap_msg_att_body_section *body = NULL;
		guint32 uid = 0;
		GBytes *raw;

		att_fields(clist_content(i), &uid, NULL, &body);
		raw = body != NULL ? g_bytes_new(body->sec_body_part, body->sec_length) : NULL;
		if (uid != 0 && raw != NULL && !g_hash_table_contains(by_uid, GUINT_TO_POINTER(uid)))
			g_hash_table_insert(by_uid, GUINT_TO_POINTER(uid), raw);
		else if (raw != NULL)
			g_bytes_unref(raw);
	}
	mailimap_fetch_list_free(result);
	for (guint i = 0; i < n; i++)
		g_ptr_array_add(raws, g_hash_table_lookup(by_uid, GUINT_TO_POINTER(uids[i].uid)));
	return g_steal_pointer(&raws);
}

/* Fetches the bytes of message @uid in parts of @chunk bytes into a file
 * of @spool_dir (BODY.PEEK[]<offset.chunk>): memory stays bounded however
 * big it is.  Returns: (transfer full): the bytes (mapped), or NULL with
 * @error. */
static GBytes *
session_fetch_spooled(MrImapSession *s, guint32 uid, const char *spool_dir, guint32 chunk,
		      GError **error)
{
	g_autoptr(MrSpool) spool = mr_spool_new(spool_dir, 0);

	for (guint32 offset = 0;;) {
		struct mailimap_set *set = mailimap_set_new_single(uid);
		struct mailimap_fetch_type *type = mailimap_fetch_type_new_fetch_att_list_empty();
		clist *result = NULL;
		gsize got = 0;
		int r;

		mailimap_fetch_type_new_fetch_att_list_add(
			type, mailimap_fetch_att_new_body_peek_section_partial(
				      mailimap_section_new(NULL), offset, chunk));
		conn_expect(s->conn, (guint64)chunk + MR_IMAP_READ_SLACK);
		r = mailimap_uid_fetch(s->imap, set, type, &result);
		conn_expect(s->conn, 0);
		mailimap_fetch_type_free(type);
		mailimap_set_free(set);
		if (r != MAILIMAP_NO_ERROR)
			return session_fail(s, r, "UID FETCH BODY.PEEK[]<partial>", error), NULL;
		for (clistiter *i = clist_begin(result); i != NULL && got == 0; i = clist_next(i)) {
			const struct mailimap_msg_att_body_section *body = NULL;
			guint32 answered = 0;

			att_fields(clist_content(i), &answered, NULL, &body);
			if (body == NULL || body->sec_length == 0 || answered != uid)
				continue;
			got = body->sec_length;
			if (!mr_spool_append(spool, (const guint8 *)body->sec_body_part, got, error)) {
				mailimap_fetch_list_free(result);
				return NULL;
			}
		}
		mailimap_fetch_list_free(result);
		offset += (guint32)got;
		if (got < chunk)
			break;
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
		return session_fail(s, r, "UID STORE", error);
	return TRUE;
}

/* Applies the after action of @mb to the @n messages @uids. */
static gboolean
session_after(MrImapSession *s, const MrImapMailbox *mb, const MrImapUid *uids, guint n,
	      GError **error)
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
			ok = r == MAILIMAP_NO_ERROR || session_fail(s, r, "UID MOVE", error);
			break;
		}
		r = mailimap_uid_copy(s->imap, set, mb->after_folder);
		if (r != MAILIMAP_NO_ERROR) {
			ok = session_fail(s, r, "UID COPY", error);
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
		ok = r == MAILIMAP_NO_ERROR || session_fail(s, r, "EXPUNGE", error);
		break;
	}
	mailimap_set_free(set);
	return ok;
}

/* A nudge from the main thread to a watch thread in a wait: it wakes the
 * wait's own main context. */
typedef struct {
	GMutex lock;
	GMainContext *waiting; /* (nullable) the context of the wait in progress */
	gboolean poked;
} MrImapPoke;

/* Makes the wait in progress (or the next one) of @poke's thread return. */
static void
poke_send(MrImapPoke *poke)
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
		G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(s->conn->stream));
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
static void
wait_wake(GCancellable *wake, MrImapPoke *poke, int seconds)
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
static gboolean
session_idle(MrImapSession *s, GCancellable *wake, MrImapPoke *poke, int seconds,
	     GError **error)
{
	int r = mailimap_idle(s->imap);

	if (r != MAILIMAP_NO_ERROR)
		return session_fail(s, r, "IDLE", error);
	wait_readable(s, wake, poke, seconds);
	r = mailimap_idle_done(s->imap);
	if (r != MAILIMAP_NO_ERROR)
		return session_fail(s, r, "DONE", error);
	return TRUE;
}

/* --- a watched mailbox: its thread ---------------------------------------------- */

typedef struct _MrImapService MrImapService;

typedef struct {
	MrWriter *writer;
	MrConfig *cfg;              /* the configuration it runs with (ref) */
	const MrImapMailbox *mb;    /* in @cfg */
	MrConfig *next_cfg;         /* (nullable) a reload's, under @lock: taken
	                               between batches */
	MrConfig *main_cfg;         /* the main thread's view (reload, describe): */
	const MrImapMailbox *main_mb; /* the same mailbox, in @main_cfg */
	GThread *thread;
	GCancellable *wake;         /* ends waits (IDLE, poll, backoff): drain */
	MrImapPoke poke;            /* ends a wait once: a reload's configuration */
	GCancellable *io;           /* ends blocking I/O: hard stop */
	gint stopping;              /* atomic: finish what is in hand, then exit */
	gint finished;              /* atomic: the thread is done */
	GHashTable *attempts;       /* UID -> failed stores (GUINT) */
	MrMailboxState st;          /* the thread's own copy */
	gint64 suspect_to;          /* a run before this one died storing the */
	gint64 suspect_tries;       /* UIDs up to it: see watch_mark() */
	GMutex lock;                /* guards @state and @next_cfg */
	char *state;
} MrImapWatch;

/* One message handed to the writer, and its answer. */
typedef struct {
	GAsyncQueue *answered;      /* its batch's: the slot is pushed there */
	GError *error;
	MrDelivery delivery;
} MrImapSlot;

static void
imap_done(const MrWriterResult *results, guint n, gpointer user_data)
{
	MrImapSlot *slot = user_data;

	if (n > 0 && results[0].error != NULL)
		slot->error = g_error_copy(results[0].error);
	else if (n > 0)
		slot->delivery = results[0].delivery;
	g_async_queue_push(slot->answered, slot);
}

static gboolean
save_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	return mr_store_mailbox_save(store, data, error);
}

static gboolean
load_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	MrMailboxState *st = data;
	g_autoptr(GError) local = NULL;
	g_autoptr(MrMailboxState) found = mr_store_mailbox_get(store, st->name, &local);

	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (found != NULL) {
		st->uidvalidity = found->uidvalidity;
		st->last_uid = found->last_uid;
		st->backlog = found->backlog;
		st->inflight_to = found->inflight_to;
		st->inflight_tries = found->inflight_tries;
	}
	return TRUE;
}

typedef struct {
	const char *mailbox;
	gint64 uidvalidity, uid;
	const char *reason;
	GBytes *raw;
} MrImapQuarantine;

static gboolean
quarantine_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	const MrImapQuarantine *q = data;

	return mr_store_quarantine_add(store, q->mailbox, q->uidvalidity, q->uid, q->reason,
				       q->raw, error);
}

/* Keeps @raw of @uid in the quarantine (durable when TRUE). */
static gboolean
watch_quarantine(MrImapWatch *w, guint32 uid, GBytes *raw, const char *reason, GError **error)
{
	MrImapQuarantine q = { w->mb->name, w->st.uidvalidity, uid, reason, raw };

	if (!mr_writer_run_sync(w->writer, w->cfg, quarantine_work, &q, error))
		return FALSE;
	g_warning("mailbox %s: UID %u quarantined (%s): mailroomctl message list --quarantined",
		  w->mb->name, uid, reason);
	return TRUE;
}

/* Saves the thread's state; a failure is logged (the next save repeats
 * it; the position is never ahead of what is durable). */
static gboolean
watch_save(MrImapWatch *w)
{
	g_autoptr(GError) error = NULL;

	if (mr_writer_run_sync(w->writer, w->cfg, save_work, &w->st, &error))
		return TRUE;
	g_warning("mailbox %s: cannot save its state: %s", w->mb->name, error->message);
	return FALSE;
}

/* Moves to @state (with @why, nullable): one log line and one save per
 * change, none when nothing changed. */
static void
watch_state(MrImapWatch *w, const char *state, const char *why)
{
	gboolean same = g_strcmp0(w->st.state, state) == 0 && g_strcmp0(w->st.last_error, why) == 0;

	if (same)
		return;
	if (why != NULL && (strcmp(state, "backoff") == 0 || strcmp(state, "auth_failed") == 0))
		g_warning("mailbox %s: %s: %s", w->mb->name, state, why);
	else
		g_message("mailbox %s: %s", w->mb->name, state);
	g_free(w->st.state);
	w->st.state = g_strdup(state);
	if (why != NULL || strcmp(state, "idle") == 0 || strcmp(state, "polling") == 0) {
		g_free(w->st.last_error);
		w->st.last_error = g_strdup(why);
	}
	g_mutex_lock(&w->lock);
	g_free(w->state);
	w->state = g_strdup(state);
	g_mutex_unlock(&w->lock);
	watch_save(w);
}

static gboolean
watch_stopping(MrImapWatch *w)
{
	return g_atomic_int_get(&w->stopping) != 0;
}

/* Takes the configuration of a reload that kept this mailbox as it was
 * (limits, addresses and routing may have changed). */
static void
watch_take_config(MrImapWatch *w)
{
	MrConfig *old = NULL;

	g_mutex_lock(&w->lock);
	if (w->next_cfg != NULL) {
		old = w->cfg;
		w->cfg = g_steal_pointer(&w->next_cfg);
		w->mb = mr_config_find_imap(w->cfg, w->mb->name);
	}
	g_mutex_unlock(&w->lock);
	if (old != NULL)
		mr_config_unref(old);
}

/* Makes durable, before a batch is fetched, that it is in flight: its
 * last UID @to, and @tries, the runs that started storing it when it is
 * one message alone (0 for a batch).  A run that dies -- a message that
 * crashes the parser, say -- leaves the mark above last_uid; the next run
 * reads it (suspect_to, suspect_tries) and stores those UIDs one by one,
 * each marked, and a message that was alone in flight when
 * MR_IMAP_MAX_DEATHS runs died is quarantined unparsed.  Without the mark
 * such a message would kill every run, and no run would get past it. */
static gboolean
watch_mark(MrImapWatch *w, guint32 to, gint64 tries, GError **error)
{
	if (w->st.inflight_to == (gint64)to && w->st.inflight_tries == tries)
		return TRUE;
	w->st.inflight_to = to;
	w->st.inflight_tries = tries;
	return mr_writer_run_sync(w->writer, w->cfg, save_work, &w->st, error);
}

/* Quarantines @uid, unparsed (its bytes fetched in parts into the spool),
 * and gives it the after action.  Returns FALSE with @error when it is
 * not both durable and acted on. */
static gboolean
watch_set_aside(MrImapWatch *w, MrImapSession *s, const MrImapUid *uid, const char *why,
		GError **error)
{
	g_autoptr(GBytes) raw = session_fetch_spooled(s, uid->uid, w->cfg->spool_directory,
						      MR_IMAP_CHUNK, error);

	if (raw == NULL)
		return FALSE;
	return watch_quarantine(w, uid->uid, raw, why, error) &&
	       session_after(s, w->mb, uid, 1, error);
}

/* A batch handed to the writer: the messages uids[first .. first + n - 1]
 * of the drain's list, and their answers. */
typedef struct {
	guint first, n;
	GPtrArray *raws;            /* GBytes* (NULL: the server sent none) */
	MrImapSlot *slots;
	guint submitted;
	GAsyncQueue *answered;
} MrImapBatch;

static void
batch_free(MrImapBatch *b)
{
	for (guint i = 0; i < b->n; i++)
		g_clear_error(&b->slots[i].error);
	g_free(b->slots);
	g_ptr_array_unref(b->raws);
	g_async_queue_unref(b->answered);
	g_free(b);
}

/* Hands the messages @raws (the batch uids[@first ..]) to the writer;
 * returns at once. */
static MrImapBatch *
batch_submit(MrImapWatch *w, guint first, GPtrArray *raws)
{
	g_autoptr(GPtrArray) recipients = g_ptr_array_new();
	MrImapBatch *b = g_new0(MrImapBatch, 1);

	b->first = first;
	b->n = raws->len;
	b->raws = g_ptr_array_ref(raws);
	b->slots = g_new0(MrImapSlot, raws->len);
	b->answered = g_async_queue_new();
	g_ptr_array_add(recipients, w->mb->address.address);
	for (guint i = 0; i < raws->len; i++) {
		GBytes *raw = g_ptr_array_index(raws, i);

		b->slots[i].answered = b->answered;
		if (raw == NULL || g_bytes_get_size(raw) == 0)
			continue; /* expunged meanwhile, or empty: nothing to store */
		mr_writer_submit_full(w->writer, w->cfg, raw, NULL, recipients, NULL, imap_done,
				      &b->slots[i]);
		b->submitted++;
	}
	return b;
}

/* Waits for every answer of @b.  Returns how many of its messages, from
 * the first on, are durable (stored, or stored before); @error says why
 * the next one is not. */
static guint
batch_wait(MrImapBatch *b, GError **error)
{
	guint ok;

	for (; b->submitted > 0; b->submitted--)
		g_async_queue_pop(b->answered);
	for (ok = 0; ok < b->n && b->slots[ok].error == NULL; ok++)
		;
	if (ok < b->n)
		g_propagate_error(error, g_error_copy(b->slots[ok].error));
	return ok;
}

static void
save_async_done(gpointer data, const GError *error, gpointer user_data)
{
	const MrMailboxState *st = data;

	if (error != NULL)
		g_warning("mailbox %s: cannot save its state: %s", st->name, error->message);
}

/* Saves the thread's state without waiting: the writer runs units in the
 * order they come, so a later save never lands before an earlier one. */
static void
watch_save_async(MrImapWatch *w)
{
	MrMailboxState *copy = g_new0(MrMailboxState, 1);

	*copy = w->st;
	copy->name = g_strdup(w->st.name);
	copy->state = g_strdup(w->st.state);
	copy->last_error = g_strdup(w->st.last_error);
	copy->updated = NULL;
	mr_writer_run(w->writer, w->cfg, save_work, copy, (GDestroyNotify)mr_mailbox_state_free,
		      NULL, save_async_done, NULL);
}

/* How many messages from uids[@i] on go in one batch (1 when @alone);
 * 0 when uids[@i] is over limits.max_message_size. */
static guint
batch_length(MrImapWatch *w, GArray *uids, guint i, gboolean alone)
{
	const MrImapUid *u = &g_array_index(uids, MrImapUid, i);
	guint64 bytes = 0;
	guint n = 0;

	while (i + n < uids->len && n < (alone ? 1 : MR_IMAP_BATCH_MESSAGES) &&
	       (gint64)u[n].size <= w->cfg->max_message_size &&
	       (n == 0 || bytes + u[n].size <= MR_IMAP_BATCH_BYTES))
		bytes += u[n++].size;
	return n;
}

/* Finishes the oldest batch in @flight: waits for its answers, gives the
 * durable ones the after action and records the new last UID.  A message
 * that fails again (not for a busy database, which fails them all) is
 * kept in the quarantine and passed.  When not all of the batch is
 * handled, the batches after it are waited for and dropped (what they
 * stored is found stored at the next fetch), and *@restart is where to
 * go on; FALSE with @error when the drain cannot go on. */
static gboolean
watch_land(MrImapWatch *w, MrImapSession *s, GQueue *flight, GArray *uids, guint *restart,
	   GError **error)
{
	MrImapBatch *b = g_queue_pop_head(flight);
	const MrImapUid *batch = &g_array_index(uids, MrImapUid, b->first);
	g_autoptr(GError) failed = NULL;
	guint handled = batch_wait(b, &failed);
	gboolean ok = TRUE;

	if (failed != NULL && !g_error_matches(failed, MR_STORE_ERROR, MR_STORE_ERROR_BUSY)) {
		gpointer key = GUINT_TO_POINTER(batch[handled].uid);
		guint tries = GPOINTER_TO_UINT(g_hash_table_lookup(w->attempts, key)) + 1;
		GBytes *raw = g_ptr_array_index(b->raws, handled);

		g_hash_table_insert(w->attempts, key, GUINT_TO_POINTER(tries));
		if (tries >= MR_IMAP_MAX_ATTEMPTS && raw != NULL) {
			ok = watch_quarantine(w, batch[handled].uid, raw, failed->message, error);
			if (ok) {
				g_hash_table_remove(w->attempts, key);
				g_clear_error(&failed);
				handled++;
			}
		}
	}
	if (ok && handled > 0) {
		ok = session_after(s, w->mb, batch, handled, error);
		if (ok) {
			w->st.last_uid = batch[handled - 1].uid;
			w->st.backlog = uids->len - (b->first + handled);
			watch_save_async(w);
		}
	}
	if (ok && failed != NULL) {
		g_propagate_prefixed_error(error, g_steal_pointer(&failed), "storing UID %u: ",
					   batch[handled].uid);
		ok = FALSE;
	}
	if (!ok || handled < b->n) {
		MrImapBatch *rest;

		*restart = b->first + handled;
		while ((rest = g_queue_pop_head(flight)) != NULL) {
			batch_wait(rest, NULL);
			batch_free(rest);
		}
	}
	batch_free(b);
	return ok;
}

/* Finishes every batch in @flight (see watch_land()). */
static gboolean
watch_land_all(MrImapWatch *w, MrImapSession *s, GQueue *flight, GArray *uids, guint *restart,
	       GError **error)
{
	while (!g_queue_is_empty(flight)) {
		if (!watch_land(w, s, flight, uids, restart, error))
			return FALSE;
	}
	return TRUE;
}

/* Stores every message of the selected folder above the last UID handled,
 * batch by batch: fetch, store (COMMIT), after action, new last UID.  Up
 * to MR_IMAP_IN_FLIGHT batches are in the writer's hands at once, so that
 * the next batch is fetched and parsed while one is stored.  Each batch
 * is marked in flight (durably) before it is fetched, MR_IMAP_MARK_AHEAD
 * batches per mark; after a run that died, the UIDs it had in flight go
 * one at a time, alone (see watch_mark()). */
static gboolean
watch_drain_list(MrImapWatch *w, MrImapSession *s, gboolean *more, guint *listed,
		 GError **error)
{
	guint32 validity = s->imap->imap_selection_info->sel_uidvalidity;
	g_autoptr(GArray) uids = NULL;
	GQueue flight = G_QUEUE_INIT;
	gboolean ok = TRUE;
	guint i = 0;

	if ((guint32)w->st.uidvalidity != validity) {
		if (w->st.uidvalidity != 0)
			g_message("mailbox %s: UIDVALIDITY changed from %" G_GINT64_FORMAT
				  " to %u: reading the folder again (what was stored is not"
				  " stored twice)", w->mb->name, w->st.uidvalidity, validity);
		w->st.uidvalidity = validity;
		w->st.last_uid = 0;
		w->st.inflight_to = w->st.inflight_tries = 0;
		w->suspect_to = w->suspect_tries = 0;
		g_hash_table_remove_all(w->attempts);
	}
	uids = session_list_after(s, (guint32)w->st.last_uid, error);
	if (uids == NULL)
		return FALSE;
	*listed = uids->len;
	if (w->st.backlog != (gint64)uids->len) {
		w->st.backlog = uids->len;
		if (uids->len == 0)
			watch_save(w); /* else the batch's mark saves it */
	}
	while (ok && i < uids->len && !watch_stopping(w)) {
		const MrImapUid *batch = &g_array_index(uids, MrImapUid, i);
		gboolean suspect = (gint64)batch[0].uid <= w->suspect_to;
		gint64 deaths = suspect && (gint64)batch[0].uid == w->suspect_to ? w->suspect_tries : 0;
		g_autofree char *why = NULL;
		g_autoptr(GPtrArray) raws = NULL;
		guint n, restart = G_MAXUINT;

		if ((gint64)batch[0].size > w->cfg->max_message_size) {
			/* Too big to store: its bytes, fetched in parts, go to the
			 * quarantine, and it gets the after action like the others. */
			why = g_strdup_printf("%u bytes, over limits.max_message_size"
					      " (%" G_GINT64_FORMAT ")", batch[0].size,
					      w->cfg->max_message_size);
		} else if (deaths >= MR_IMAP_MAX_DEATHS) {
			why = g_strdup_printf("mailroomd stopped %" G_GINT64_FORMAT " times while"
					      " storing it (a crash? see the logs); kept unparsed",
					      deaths);
		}
		if (why != NULL || suspect) {
			/* these go alone: what is in flight lands first */
			ok = watch_land_all(w, s, &flight, uids, &restart, error);
			if (ok && restart != G_MAXUINT) {
				i = restart;
				continue;
			}
		}
		if (ok && why != NULL) {
			ok = watch_set_aside(w, s, batch, why, error);
			if (ok) {
				w->st.last_uid = batch[0].uid;
				w->st.backlog = uids->len - (i + 1);
				watch_save(w);
				i++;
			}
			continue;
		}
		if (!ok)
			break;
		n = batch_length(w, uids, i, suspect);
		if (suspect) {
			ok = watch_mark(w, batch[n - 1].uid, deaths + 1, error);
		} else if ((gint64)batch[n - 1].uid > w->st.inflight_to) {
			/* A mark for this batch and the next ones: those listed,
			 * and the UIDs new mail will get (so that a message
			 * arriving in IDLE needs no mark of its own). */
			guint j = i + n, m;
			gint64 to = (gint64)batch[n - 1].uid + MR_IMAP_MARK_AHEAD * MR_IMAP_BATCH_MESSAGES;

			for (guint k = 1; k < MR_IMAP_MARK_AHEAD && j < uids->len &&
					  (m = batch_length(w, uids, j, FALSE)) > 0; k++)
				j += m;
			to = MAX(to, (gint64)g_array_index(uids, MrImapUid, j - 1).uid);
			ok = watch_mark(w, (guint32)MIN(to, (gint64)G_MAXUINT32), 0, error);
		}
		if (!ok) {
			g_prefix_error(error, "marking the batch in flight: ");
			break;
		}
		raws = session_fetch(s, batch, n, error);
		if (raws == NULL) {
			ok = FALSE;
			break;
		}
		g_queue_push_tail(&flight, batch_submit(w, i, raws));
		i += n;
		if (suspect || g_queue_get_length(&flight) >= MR_IMAP_IN_FLIGHT) {
			ok = watch_land(w, s, &flight, uids, &restart, error);
			if (ok && restart != G_MAXUINT)
				i = restart; /* what follows a quarantined one is fetched again */
		}
	}
	if (ok) {
		guint restart = G_MAXUINT;

		if (!watch_land_all(w, s, &flight, uids, &restart, error))
			return FALSE;
		*more = restart != G_MAXUINT; /* past a quarantined one */
		return TRUE;
	}
	{
		/* answers still owed are waited for: their slots are ours */
		MrImapBatch *rest;

		while ((rest = g_queue_pop_head(&flight)) != NULL) {
			batch_wait(rest, NULL);
			batch_free(rest);
		}
	}
	return FALSE;
}

/* The number of messages the server last announced for the folder. */
static guint32
selected_exists(MrImapSession *s)
{
	return s->imap->imap_selection_info != NULL ? s->imap->imap_selection_info->sel_exists : 0;
}

/* watch_drain_list() again until a list finds nothing and the server
 * announced no change while it ran.  New mail is announced (EXISTS) with
 * the answer to whatever command runs when it arrives; one announced with
 * the answer to a FETCH or STORE of the drain is not announced again in
 * IDLE, so without the last list it would wait for the next wake-up. */
static gboolean
watch_drain(MrImapWatch *w, MrImapSession *s, GError **error)
{
	gboolean more = TRUE;
	guint idle_changes = 0; /* lists in a row that found nothing, yet a change */

	while (more && !watch_stopping(w)) {
		guint32 exists = selected_exists(s);
		guint listed = 0;

		more = FALSE;
		if (!watch_drain_list(w, s, &more, &listed, error))
			return FALSE;
		if (listed > 0)
			idle_changes = 0;
		else if (selected_exists(s) != exists)
			idle_changes++;
		/* A server that announces a change at every command and then
		 * lists nothing new is not listed forever: IDLE tells the rest. */
		more = more || listed > 0 ||
		       (selected_exists(s) != exists && idle_changes <= MR_IMAP_RELISTS);
	}
	return TRUE;
}

/* One connection's life: select, drain, wait for more, until it fails or
 * the watch stops. */
static gboolean
watch_session(MrImapWatch *w, MrImapSession *s, GError **error)
{
	if (w->mb->after == MR_IMAP_AFTER_MOVE &&
	    !session_ensure_folder(s, w->mb->after_folder, error))
		return FALSE;
	if (!session_ensure_folder(s, w->mb->folder, error) ||
	    !session_select(s, w->mb->folder, error))
		return FALSE;
	watch_state(w, "connected", NULL);
	while (!watch_stopping(w)) {
		watch_take_config(w);
		if (!watch_drain(w, s, error))
			return FALSE;
		if (watch_stopping(w))
			break;
		if (s->has_idle) {
			watch_state(w, "idle", NULL);
			if (!session_idle(s, w->wake, &w->poke, MR_IMAP_IDLE_SECONDS, error))
				return FALSE;
		} else {
			int r;

			watch_state(w, "polling", NULL);
			wait_wake(w->wake, &w->poke, w->mb->poll_interval_s);
			if (watch_stopping(w))
				break;
			r = mailimap_noop(s->imap);
			if (r != MAILIMAP_NO_ERROR)
				return session_fail(s, r, "NOOP", error);
		}
	}
	return TRUE;
}

static gpointer
watch_thread(gpointer data)
{
	MrImapWatch *w = data;
	int backoff = 1;

	{
		g_autoptr(GError) error = NULL;

		if (!mr_writer_run_sync(w->writer, w->cfg, load_work, &w->st, &error))
			g_warning("mailbox %s: cannot read its state: %s", w->mb->name,
				  error->message);
		if (w->st.inflight_to > w->st.last_uid) {
			w->suspect_to = w->st.inflight_to;
			w->suspect_tries = w->st.inflight_tries;
			g_warning("mailbox %s: the last run stopped while storing UIDs %" G_GINT64_FORMAT
				  " to %" G_GINT64_FORMAT ": storing them one by one",
				  w->mb->name, w->st.last_uid + 1, w->st.inflight_to);
		}
	}
	while (!watch_stopping(w)) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrImapSession) s = NULL;

		watch_state(w, "connecting", NULL);
		s = session_open(w->mb, w->io, &error);
		if (s != NULL) {
			backoff = 1;
			if (watch_session(w, s, &error)) {
				mailimap_logout(s->imap);
				break; /* stopping */
			}
		}
		if (watch_stopping(w))
			break;
		watch_state(w, g_error_matches(error, MR_IMAP_ERROR, MR_IMAP_ERROR_AUTH)
				       ? "auth_failed" : "backoff",
			    error->message);
		wait_wake(w->wake, &w->poke, backoff);
		backoff = MIN(backoff * 2, w->mb->reconnect_max_s);
	}
	watch_state(w, "stopped", NULL);
	g_atomic_int_set(&w->finished, 1);
	return NULL;
}

static MrImapWatch *
watch_start(MrWriter *writer, MrConfig *cfg, const MrImapMailbox *mb)
{
	MrImapWatch *w = g_new0(MrImapWatch, 1);
	g_autofree char *name = g_strdup_printf("imap-%s", mb->name);

	w->writer = writer;
	w->cfg = mr_config_ref(cfg);
	w->mb = mb;
	w->main_cfg = mr_config_ref(cfg);
	w->main_mb = mb;
	w->wake = g_cancellable_new();
	g_mutex_init(&w->poke.lock);
	w->io = g_cancellable_new();
	w->attempts = g_hash_table_new(NULL, NULL);
	w->st.name = g_strdup(mb->name);
	g_mutex_init(&w->lock);
	w->thread = g_thread_new(name, watch_thread, w);
	return w;
}

/* Asks @w to finish what it has in hand and stop. */
static void
watch_drain_request(MrImapWatch *w)
{
	g_atomic_int_set(&w->stopping, 1);
	g_cancellable_cancel(w->wake);
	poke_send(&w->poke);
}

/* Stops @w now (its I/O is cancelled) and frees it. */
static void
watch_free(MrImapWatch *w)
{
	watch_drain_request(w);
	if (!g_atomic_int_get(&w->finished))
		g_cancellable_cancel(w->io);
	g_thread_join(w->thread);
	g_hash_table_unref(w->attempts);
	g_object_unref(w->wake);
	g_mutex_clear(&w->poke.lock);
	g_object_unref(w->io);
	mr_config_unref(w->cfg);
	if (w->next_cfg != NULL)
		mr_config_unref(w->next_cfg);
	mr_config_unref(w->main_cfg);
	g_free(w->st.name);
	g_free(w->st.state);
	g_free(w->st.last_error);
	g_free(w->state);
	g_mutex_clear(&w->lock);
	g_free(w);
}

/* --- the service ------------------------------------------------------------------ */

struct _MrImapService {
	MrWriter *writer;
	GPtrArray *watches; /* MrImapWatch*: the running ones */
	GPtrArray *retired; /* MrImapWatch*: asked to stop, not yet joined */
	guint reaper;       /* a timer that joins retired watches */
};

static gboolean
reap_retired(gpointer data)
{
	MrImapService *svc = data;

	for (guint i = 0; i < svc->retired->len;) {
		MrImapWatch *w = g_ptr_array_index(svc->retired, i);

		if (g_atomic_int_get(&w->finished))
			g_ptr_array_remove_index_fast(svc->retired, i); /* frees (joins) it */
		else
			i++;
	}
	return G_SOURCE_CONTINUE;
}

static gpointer
imap_start(MrConfig *cfg, MrWriter *writer, GError **error)
{
	MrImapService *svc = g_new0(MrImapService, 1);

	svc->writer = writer;
	svc->watches = g_ptr_array_new_with_free_func((GDestroyNotify)watch_free);
	svc->retired = g_ptr_array_new_with_free_func((GDestroyNotify)watch_free);
	for (guint i = 0; i < cfg->imap->len; i++)
		g_ptr_array_add(svc->watches,
				watch_start(writer, cfg, g_ptr_array_index(cfg->imap, i)));
	svc->reaper = g_timeout_add(200, reap_retired, svc);
	return svc;
}

static void
imap_reload(gpointer self, const MrConfig *old, MrConfig *cfg)
{
	MrImapService *svc = self;
	g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func((GDestroyNotify)watch_free);

	/* Mailboxes gone or changed stop (finishing what they have in hand);
	 * unchanged ones keep their connection; new and changed ones start. */
	for (guint i = 0; i < svc->watches->len; i++) {
		MrImapWatch *w = g_ptr_array_index(svc->watches, i);
		const MrImapMailbox *now = mr_config_find_imap(cfg, w->main_mb->name);

		if (now != NULL && mr_imap_mailbox_equal(now, w->main_mb)) {
			mr_config_unref(w->main_cfg);
			w->main_cfg = mr_config_ref(cfg);
			w->main_mb = now;
			g_mutex_lock(&w->lock);
			if (w->next_cfg != NULL)
				mr_config_unref(w->next_cfg);
			w->next_cfg = mr_config_ref(cfg);
			g_mutex_unlock(&w->lock);
			poke_send(&w->poke); /* out of IDLE: the next batch uses it */
			g_ptr_array_add(keep, w);
			continue;
		}
		g_message("mailbox %s: %s", w->main_mb->name,
			  now == NULL ? "removed from the configuration: stopping"
				      : "changed: reconnecting");
		watch_drain_request(w);
		g_ptr_array_add(svc->retired, w);
	}
	g_free(g_ptr_array_steal(svc->watches, NULL)); /* moved to keep or retired */
	g_ptr_array_unref(svc->watches);
	svc->watches = g_steal_pointer(&keep);
	for (guint i = 0; i < cfg->imap->len; i++) {
		const MrImapMailbox *mb = g_ptr_array_index(cfg->imap, i);
		gboolean running = FALSE;

		for (guint k = 0; k < svc->watches->len && !running; k++)
			running = strcmp(((MrImapWatch *)g_ptr_array_index(svc->watches, k))->main_mb->name,
					 mb->name) == 0;
		if (!running)
			g_ptr_array_add(svc->watches, watch_start(svc->writer, cfg, mb));
	}
}

static void
imap_drain(gpointer self)
{
	MrImapService *svc = self;

	for (guint i = 0; i < svc->watches->len; i++)
		watch_drain_request(g_ptr_array_index(svc->watches, i));
}

static guint
imap_busy(gpointer self)
{
	MrImapService *svc = self;
	guint n = 0;

	for (guint i = 0; i < svc->watches->len; i++)
		n += !g_atomic_int_get(&((MrImapWatch *)g_ptr_array_index(svc->watches, i))->finished);
	for (guint i = 0; i < svc->retired->len; i++)
		n += !g_atomic_int_get(&((MrImapWatch *)g_ptr_array_index(svc->retired, i))->finished);
	return n;
}

static char *
imap_describe(gpointer self)
{
	MrImapService *svc = self;
	g_autoptr(GString) out = g_string_new(svc->watches->len > 0 ? "imap" : "");

	for (guint i = 0; i < svc->watches->len; i++) {
		const MrImapMailbox *mb = ((MrImapWatch *)g_ptr_array_index(svc->watches, i))->main_mb;

		g_string_append_printf(out, "%s%s (%s:%d %s)", i == 0 ? " " : ", ", mb->name,
				       mb->host, mb->port, mb->folder);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static char *
imap_status(gpointer self)
{
	MrImapService *svc = self;
	guint up = 0;

	for (guint i = 0; i < svc->watches->len; i++) {
		MrImapWatch *w = g_ptr_array_index(svc->watches, i);

		g_mutex_lock(&w->lock);
		up += g_strcmp0(w->state, "idle") == 0 || g_strcmp0(w->state, "polling") == 0 ||
		      g_strcmp0(w->state, "connected") == 0;
		g_mutex_unlock(&w->lock);
	}
	return g_strdup_printf("%u/%u mailboxes connected", up, svc->watches->len);
}

static void
imap_stop(gpointer self)
{
	MrImapService *svc = self;

	if (svc == NULL)
		return;
	if (svc->reaper != 0)
		g_source_remove(svc->reaper);
	g_ptr_array_unref(svc->watches);
	g_ptr_array_unref(svc->retired);
	g_free(svc);
}

const MrServiceClass mr_imap_service = {
	.name = "imap",
	.start_failure_exit = 75,
	.start = imap_start,
	.reload = imap_reload,
	.drain = imap_drain,
	.busy = imap_busy,
	.describe = imap_describe,
	.status = imap_status,
	.stop = imap_stop,
};

/* --- mailroomctl mailbox test ---------------------------------------------------- */

void
mr_imap_probe_clear(MrImapProbe *probe)
{
	g_clear_pointer(&probe->capabilities, g_strfreev);
}

gboolean
mr_imap_probe(const MrImapMailbox *mb, MrImapProbe *out, GError **error)
{
	g_autoptr(MrImapSession) s = session_open(mb, NULL, error);
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

		return session_fail(s, r, what, error);
	}
	out->capabilities = g_strv_builder_end(caps);
	out->exists = s->imap->imap_selection_info->sel_exists;
	out->uidvalidity = s->imap->imap_selection_info->sel_uidvalidity;
	out->uidnext = s->imap->imap_selection_info->sel_uidnext;
	mailimap_logout(s->imap);
	return TRUE;
}
