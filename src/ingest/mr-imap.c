/* mr-imap.c - the IMAP door: a thread per mailbox fetches its mail through
 * libetpan and hands it to the writer; see mr-imap.h for the contract.
 *
 * Ingest stage.  libetpan speaks IMAP; the bytes travel over a GIO
 * connection (src/net/, mr-net.h: a mailstream_low driver), so that TLS
 * is GIO's, with certificate verification, and every blocking read or
 * write of a thread can be cancelled at stop.  The thread never touches the database itself:
 * messages go to the writer like SMTP mail, and the mailbox's state is
 * saved through writer units. */
#define G_LOG_DOMAIN "mailroom-imap"

#include <gio/gio.h>
#include <libetpan/libetpan.h>
#include <string.h>

#include "mailroom/mr-error.h"
#include "mailroom/mr-imap.h"
#include "mailroom/mr-net.h"
#include "mailroom/mr-spool.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-token.h"

/* IDLE is re-issued before the 30 minutes servers allow (RFC 2177). */
#define MR_IMAP_IDLE_SECONDS (29 * 60)
/* A fetch batch: at most this many messages and about this many bytes. */
#define MR_IMAP_BATCH_MESSAGES 200
#define MR_IMAP_BATCH_BYTES (16 * 1024 * 1024)
/* A message over limits.max_message_size, or one that failed in a batch,
 * is fetched in parts this big. */
#define MR_IMAP_CHUNK (4 * 1024 * 1024)
/* A message that failed this many tries alone -- its fetch failed, the
 * server sent no body, its store failed (not for a busy database), or
 * mailroomd died while storing it -- goes to the quarantine.  The tries
 * are counted durably (see watch_mark()). */
#define MR_IMAP_MAX_TRIES 2
/* Batches in the writer's hands at once: the next is fetched and parsed
 * while one is stored. */
#define MR_IMAP_IN_FLIGHT 2
/* Lists in a row that find nothing new although the server announced a
 * change (another client's expunge, say) before the drain waits in IDLE. */
#define MR_IMAP_RELISTS 3
/* Batches one mark in flight covers, and UIDs past the batch by this
 * many times MR_IMAP_BATCH_MESSAGES (see watch_mark()). */
#define MR_IMAP_MARK_AHEAD 8
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
/* --- the literal framing of what the server sends ------------------------------ */

/* Where the server's bytes are in IMAP's literal framing. */
typedef struct {
	guint64 lit_left;       /* bytes of a literal still to come */
	guint64 lit_n;          /* the size being announced */
	int lit_state;          /* 0 text, 1 in "{digits", 2 after "}", 3 after CR */
} MrImapFraming;

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

typedef struct _MrImapSession MrImapSession;

/* Takes what it wants of one FETCH response of the command in progress
 * (the response is freed when it returns). */
typedef void (*MrImapCollect)(MrImapSession *s, struct mailimap_msg_att *att, gpointer data);

/* An open IMAP session: libetpan's state over our connection. */
struct _MrImapSession {
	mailimap *imap;
	MrNetConn *conn;
	MrImapFraming framing; /* of what the server sent on @conn */
	gboolean has_idle, has_move, has_uidplus;
	MrImapCollect collect; /* (nullable) FETCH responses of the command in */
	gpointer collect_data; /* progress go there; without it they are dropped */
};

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

static void
session_free(MrImapSession *s)
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

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrImapSession, session_free)

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
static gboolean
session_fail(MrImapSession *s, int r, const char *what, GError **error)
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
	append_saslname(gs2, mb->remote.user);
	g_string_append_printf(gs2, ",\001host=%s\001port=%d\001auth=Bearer %s\001\001",
			       mb->remote.host, mb->remote.port, token);
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
	gboolean bearer;
	const char *what;
	int r;

	/* what the greeting said may be stale after STARTTLS: ask */
	r = session_capability(s);
	if (r != MAILIMAP_NO_ERROR)
		return session_fail(s, r, "CAPABILITY", error);
	bearer = !mailimap_has_authentication(s->imap, "XOAUTH2") &&
		 mailimap_has_authentication(s->imap, "OAUTHBEARER");
	what = bearer ? "OAUTHBEARER login" : "XOAUTH2 login";
	for (int attempt = 0; attempt < 2; attempt++) {
		g_autofree char *token = fetch_token(mb, error);

		if (token == NULL)
			return FALSE;
		r = bearer ? oauthbearer_authenticate(s, mb, token)
			   : mailimap_oauth2_authenticate(s->imap, mb->remote.user, token);
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
		return session_fail(s, r, "login", error);
	return TRUE;
}

static gboolean
has_cap(mailimap *imap, const char *name)
{
	return mailimap_has_extension(imap, (char *)name) != 0;
}

/* A session over @conn, not started yet: libetpan's state over it. */
static MrImapSession *
session_new(MrNetConn *conn)
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
static MrImapSession *
session_start(MrImapSession *started, const MrImapMailbox *mb, GError **error)
{
	g_autoptr(MrImapSession) s = started;
	mailstream *stream;
	int r;

	stream = mailstream_new(mr_net_mailstream_low_new(s->conn), 8192);
	mr_net_conn_expect(s->conn, 0); /* the greeting's deadline starts now */
	r = mailimap_connect(s->imap, stream);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		session_fail(s, r, "greeting", error);
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
		session_fail(s, r, "CAPABILITY", error);
		return NULL;
	}
	s->has_idle = mailimap_has_idle(s->imap) != 0;
	s->has_move = has_cap(s->imap, "MOVE");
	s->has_uidplus = has_cap(s->imap, "UIDPLUS");
	return g_steal_pointer(&s);
}

/* Connects to @mb, secures the connection as configured and logs in. */
static MrImapSession *
session_open(const MrImapMailbox *mb, GCancellable *cancel, GError **error)
{
	g_autoptr(MrImapSession) s =
		session_new(mr_net_conn_new(G_LOG_DOMAIN, mb->remote.timeout_s, cancel));
	GError *local = NULL;

	if (!mr_net_conn_connect(s->conn, &mb->remote, &local))
		return net_fail(local, error), NULL;
	return session_start(g_steal_pointer(&s), mb, error);
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
static GArray *
session_list_after(MrImapSession *s, guint32 after, GError **error)
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
		return session_fail(s, r, "UID FETCH (UID RFC822.SIZE)", error), NULL;
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

static gboolean
session_uid_exists(MrImapSession *s, guint32 uid, gboolean *exists, GError **error)
{
	MrImapProbeUid p = { uid, FALSE };
	struct mailimap_fetch_type *type = mailimap_fetch_type_new_fetch_att_list_empty();
	int r;

	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid());
	r = session_uid_fetch(s, mailimap_set_new_single(uid), type, 0, collect_exists, &p);
	if (r != MAILIMAP_NO_ERROR)
		return session_fail(s, r, "UID FETCH (UID)", error);
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
static GPtrArray *
session_fetch(MrImapSession *s, const MrImapUid *uids, guint n, GError **error)
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
		return session_fail(s, r, "UID FETCH BODY.PEEK[]", error), NULL;
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
static GBytes *
session_fetch_spooled(MrImapSession *s, guint32 uid, const char *spool_dir, guint64 limit,
		      gboolean *complete, GError **error)
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
			return session_fail(s, r, "UID FETCH BODY.PEEK[]<partial>", error), NULL;
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
	gint connecting;            /* atomic: nothing in hand (a stop cancels
	                               the I/O at once) */
	MrMailboxState st;          /* the thread's own copy */
	gint64 suspect_to;          /* UIDs up to it go alone, their tries
	                               counted: see watch_mark() */
	guint32 fail_uid;           /* the last message that failed alone, */
	char *fail_why;             /* and why (for the quarantine's reason) */
	gboolean progress;          /* a batch committed or the wait reached
	                               since the last backoff */
	char *logged;               /* the last state (and why) logged */
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
	gint64 size;
	GBytes *raw;
} MrImapQuarantine;

static gboolean
quarantine_work(MrStore *store, const MrConfig *cfg, gpointer data, GError **error)
{
	const MrImapQuarantine *q = data;

	return mr_store_quarantine_add(store, q->mailbox, q->uidvalidity, q->uid, q->reason,
				       q->size, q->raw, error);
}

/* Keeps @raw of @uid (a message of @size bytes) in the quarantine
 * (durable when TRUE). */
static gboolean
watch_quarantine(MrImapWatch *w, guint32 uid, gint64 size, GBytes *raw, const char *reason,
		 GError **error)
{
	MrImapQuarantine q = { w->mb->name, w->st.uidvalidity, uid, reason, size, raw };

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

/* Moves to @state (with @why, nullable): one save per change, none when
 * nothing changed, and one log line per change of what the mailbox is
 * doing: the tries of a backoff ("connecting", then "backoff" with the
 * same reason) are not logged again. */
static void
watch_state(MrImapWatch *w, const char *state, const char *why)
{
	gboolean same = g_strcmp0(w->st.state, state) == 0 && g_strcmp0(w->st.last_error, why) == 0;
	gboolean retrying = strcmp(state, "connecting") == 0 &&
			    (g_strcmp0(w->st.state, "backoff") == 0 ||
			     g_strcmp0(w->st.state, "auth_failed") == 0);
	g_autofree char *line = g_strdup_printf("%s: %s", state, why != NULL ? why : "");

	if (same)
		return;
	if (!retrying && g_strcmp0(w->logged, line) != 0) {
		if (why != NULL && (strcmp(state, "backoff") == 0 || strcmp(state, "auth_failed") == 0))
			g_warning("mailbox %s: %s: %s", w->mb->name, state, why);
		else
			g_message("mailbox %s: %s", w->mb->name, state);
		g_free(w->logged);
		w->logged = g_steal_pointer(&line);
	}
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
 * last UID @to, and @tries, the tries that started on it when it is one
 * message alone (0 for a batch).  A run that dies -- a message that
 * crashes the parser, say -- leaves the mark above last_uid; the next run
 * reads it (suspect_to) and stores those UIDs one by one, each marked.
 * So does a batch whose fetch failed, or whose message failed (no body,
 * a failed store): its UIDs go alone from the failing one on.  A message
 * that MR_IMAP_MAX_TRIES tries alone did not get past is quarantined
 * (see watch_set_aside()).  Without the mark such a message would stop
 * every run, or every session, and none would get past it; with it the
 * tries survive a restart. */
static gboolean
watch_mark(MrImapWatch *w, guint32 to, gint64 tries, GError **error)
{
	if (w->st.inflight_to == (gint64)to && w->st.inflight_tries == tries)
		return TRUE;
	w->st.inflight_to = to;
	w->st.inflight_tries = tries;
	return mr_writer_run_sync(w->writer, w->cfg, save_work, &w->st, error);
}

/* Quarantines @uid with @why, unparsed.  Its bytes, when a fetch got
 * them (@raw, nullable), or else fetched in parts into the spool, at most
 * @limit.  A whole copy gets the after action; one the server cut short,
 * or sent no bytes of, or that was over @limit stays on the server as it
 * is (its size says so: more than the bytes kept, and retry refuses it).
 * Returns FALSE with @error when it is not durable (and acted on). */
static gboolean
watch_set_aside(MrImapWatch *w, MrImapSession *s, const MrImapUid *uid, const char *why,
		GBytes *raw, gboolean complete, guint64 limit, GError **error)
{
	g_autoptr(GBytes) got = raw != NULL ? g_bytes_ref(raw) : NULL;
	g_autofree char *reason = NULL;
	gboolean whole;
	gsize len;

	if (got == NULL)
		got = session_fetch_spooled(s, uid->uid, w->cfg->spool_directory, limit, &complete,
					    error);
	if (got == NULL)
		return FALSE;
	len = g_bytes_get_size(got);
	whole = complete && len > 0;
	if (whole)
		reason = g_strdup(why);
	else if (len == 0)
		reason = g_strdup_printf("%s; no bytes of it kept: left on the server", why);
	else
		reason = g_strdup_printf("%s; only the first %" G_GSIZE_FORMAT " bytes kept: left on"
					 " the server", why, len);
	if (!watch_quarantine(w, uid->uid, whole ? (gint64)len : MAX((gint64)uid->size, (gint64)len + 1),
			      got, reason, error))
		return FALSE;
	return !whole || session_after(s, w->mb, uid, 1, error);
}

/* Records that message @uid failed a try alone, and why. */
static void
watch_failed(MrImapWatch *w, guint32 uid, const char *why)
{
	w->suspect_to = MAX(w->suspect_to, (gint64)uid);
	w->fail_uid = uid;
	g_free(w->fail_why);
	w->fail_why = g_strdup(why);
}

/* Why @uid, tried @tries times alone, goes to the quarantine. */
static char *
watch_tries_reason(MrImapWatch *w, guint32 uid, gint64 tries)
{
	if (w->fail_uid == uid && w->fail_why != NULL)
		return g_strdup_printf("failed %" G_GINT64_FORMAT " times: %s", tries, w->fail_why);
	return g_strdup_printf("mailroomd stopped %" G_GINT64_FORMAT " times while storing it"
			       " (a crash? see the logs); kept unparsed", tries);
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

/* Hands the messages @raws (the batch @uids[@first ..]) to the writer;
 * returns at once.  One whose body the server did not send fails (it is
 * not passed by, see watch_land()). */
static MrImapBatch *
batch_submit(MrImapWatch *w, GArray *uids, guint first, GPtrArray *raws)
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
		if (raw == NULL) {
			g_set_error(&b->slots[i].error, MR_IMAP_ERROR, MR_IMAP_ERROR_NO_BODY,
				    "the server sent no body for UID %u",
				    g_array_index(uids, MrImapUid, first + i).uid);
			continue;
		}
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

/* How many messages from uids[@i] on go in one batch; 0 when uids[@i] is
 * over limits.max_message_size. */
static guint
batch_length(MrImapWatch *w, GArray *uids, guint i)
{
	const MrImapUid *u = &g_array_index(uids, MrImapUid, i);
	guint64 bytes = 0;
	guint n = 0;

	while (i + n < uids->len && n < MR_IMAP_BATCH_MESSAGES &&
	       (gint64)u[n].size <= w->cfg->max_message_size &&
	       (n == 0 || bytes + u[n].size <= MR_IMAP_BATCH_BYTES))
		bytes += u[n++].size;
	return n;
}

/* Finishes the oldest batch in @flight: waits for its answers, gives the
 * durable ones the after action and records the new last UID.  A message
 * that failed (no body, or its store; not for a busy database, which
 * fails them all) and those after it go alone from then on (see
 * watch_mark()).  When not all of the batch is handled, the batches after
 * it are waited for and dropped (what they stored is found stored at the
 * next fetch), and *@restart is where to go on; FALSE with @error when
 * the drain cannot go on. */
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
		g_message("mailbox %s: UID %u failed (%s): it goes alone", w->mb->name,
			  batch[handled].uid, failed->message);
		watch_failed(w, batch[handled].uid, failed->message);
		g_clear_error(&failed);
	}
	if (handled > 0) {
		ok = session_after(s, w->mb, batch, handled, error);
		if (ok) {
			w->st.last_uid = batch[handled - 1].uid;
			w->st.backlog = uids->len - (b->first + handled);
			w->progress = TRUE;
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

/* Passes message uids[@i]: it is handled (stored, quarantined, or gone). */
static void
watch_pass(MrImapWatch *w, GArray *uids, guint i)
{
	w->st.last_uid = g_array_index(uids, MrImapUid, i).uid;
	w->st.backlog = uids->len - (i + 1);
	w->progress = TRUE;
	watch_save(w);
}

/* A try alone of message @uid (it failed before, see watch_mark()): in
 * parts, whatever size the server announced, up to one byte over
 * limits.max_message_size (*@complete FALSE: it is over).  Returns:
 * (transfer full) (nullable): its bytes, NULL when it is gone
 * (*@gone) or with @error when the try failed. */
static GBytes *
watch_fetch_alone(MrImapWatch *w, MrImapSession *s, guint32 uid, gboolean *complete,
		  gboolean *gone, GError **error)
{
	g_autoptr(GBytes) raw = session_fetch_spooled(s, uid, w->cfg->spool_directory,
						      (guint64)w->cfg->max_message_size + 1, complete,
						      error);
	gboolean exists = TRUE;

	*gone = FALSE;
	if (raw == NULL || g_bytes_get_size(raw) > 0)
		return g_steal_pointer(&raw);
	if (!session_uid_exists(s, uid, &exists, error))
		return NULL;
	if (!exists) {
		*gone = TRUE; /* expunged meanwhile: nothing to store */
		return NULL;
	}
	g_set_error(error, MR_IMAP_ERROR, MR_IMAP_ERROR_NO_BODY,
		    "the server sent no body for UID %u", uid);
	return NULL;
}

/* Stores every message of the selected folder above the last UID handled,
 * batch by batch: fetch, store (COMMIT), after action, new last UID.  Up
 * to MR_IMAP_IN_FLIGHT batches are in the writer's hands at once, so that
 * the next batch is fetched and parsed while one is stored.  Each batch
 * is marked in flight (durably) before it is fetched, MR_IMAP_MARK_AHEAD
 * batches per mark.  The UIDs of a batch that failed, and those a run
 * that died had in flight, go one at a time, alone, each try marked (see
 * watch_mark()); one that fails MR_IMAP_MAX_TRIES tries, or is over
 * limits.max_message_size, goes to the quarantine (watch_set_aside()). */
static gboolean
watch_drain_list(MrImapWatch *w, MrImapSession *s, gboolean *more, guint *listed,
		 GError **error)
{
	guint32 validity = s->imap->imap_selection_info->sel_uidvalidity;
	guint64 max = (guint64)w->cfg->max_message_size;
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
		w->suspect_to = 0;
		w->fail_uid = 0;
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
		gint64 tries = w->st.inflight_to == (gint64)batch[0].uid ? w->st.inflight_tries : 0;
		g_autofree char *why = NULL;
		g_autoptr(GPtrArray) raws = NULL;
		g_autoptr(GBytes) alone = NULL;
		gboolean complete = TRUE, gone = FALSE;
		guint64 limit = max + 1;
		guint n = 1, restart = G_MAXUINT;

		if ((gint64)batch[0].size > w->cfg->max_message_size) {
			/* Too big to store: its first bytes, fetched in parts, go to
			 * the quarantine. */
			why = g_strdup_printf("%u bytes, over limits.max_message_size"
					      " (%" G_GINT64_FORMAT ")", batch[0].size,
					      w->cfg->max_message_size);
			limit = MIN((guint64)batch[0].size, max);
		} else if (tries >= MR_IMAP_MAX_TRIES) {
			why = watch_tries_reason(w, batch[0].uid, tries);
		}
		if (why != NULL || suspect) {
			/* these go alone: what is in flight lands first */
			ok = watch_land_all(w, s, &flight, uids, &restart, error);
			if (ok && restart != G_MAXUINT) {
				i = restart;
				continue;
			}
			if (!ok)
				break;
		}
		if (why == NULL && suspect) {
			/* a try alone, counted before it starts */
			ok = watch_mark(w, batch[0].uid, tries + 1, error);
			if (!ok) {
				g_prefix_error(error, "marking UID %u in flight: ", batch[0].uid);
				break;
			}
			alone = watch_fetch_alone(w, s, batch[0].uid, &complete, &gone, error);
			if (gone) {
				watch_pass(w, uids, i++);
				continue;
			}
			if (alone == NULL) {
				watch_failed(w, batch[0].uid, (*error)->message);
				if (tries + 1 < MR_IMAP_MAX_TRIES ||
				    !g_error_matches(*error, MR_IMAP_ERROR, MR_IMAP_ERROR_NO_BODY)) {
					ok = FALSE;
					break;
				}
				/* the last try, and the session still works: at once */
				g_clear_error(error);
				why = watch_tries_reason(w, batch[0].uid, tries + 1);
				alone = g_bytes_new(NULL, 0);
			}
			if (!complete)
				why = g_strdup_printf("more than limits.max_message_size (%" G_GINT64_FORMAT
						      "), although the server announced %u bytes",
						      w->cfg->max_message_size, batch[0].size);
		}
		if (why != NULL && alone == NULL) {
			/* Fetching its bytes for the quarantine is a try too, so that
			 * a server that cannot hand them over does not stop the
			 * mailbox: past the bound it is kept without them. */
			if (tries > MR_IMAP_MAX_TRIES) {
				g_autofree char *first = g_steal_pointer(&why);

				why = g_strdup_printf("%s; fetching it failed (%s)", first,
						      w->fail_uid == batch[0].uid && w->fail_why != NULL
							      ? w->fail_why : "in an earlier run");
				alone = g_bytes_new(NULL, 0);
			} else if (!watch_mark(w, batch[0].uid, tries + 1, error)) {
				g_prefix_error(error, "marking UID %u in flight: ", batch[0].uid);
				ok = FALSE;
				break;
			}
		}
		if (why != NULL) {
			ok = watch_set_aside(w, s, batch, why, alone, complete, limit, error);
			if (ok)
				watch_pass(w, uids, i++);
			else
				watch_failed(w, batch[0].uid, (*error)->message);
			continue;
		}
		if (alone != NULL) {
			raws = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
			g_ptr_array_add(raws, g_steal_pointer(&alone));
		} else {
			n = batch_length(w, uids, i);
			if ((gint64)batch[n - 1].uid > w->st.inflight_to) {
				/* A mark for this batch and the next ones: those
				 * listed, and the UIDs new mail will get (so that a
				 * message arriving in IDLE needs no mark of its own). */
				guint j = i + n, m;
				gint64 to = (gint64)batch[n - 1].uid +
					    MR_IMAP_MARK_AHEAD * MR_IMAP_BATCH_MESSAGES;

				for (guint k = 1; k < MR_IMAP_MARK_AHEAD && j < uids->len &&
						  (m = batch_length(w, uids, j)) > 0; k++)
					j += m;
				to = MAX(to, (gint64)g_array_index(uids, MrImapUid, j - 1).uid);
				ok = watch_mark(w, (guint32)MIN(to, (gint64)G_MAXUINT32), 0, error);
				if (!ok) {
					g_prefix_error(error, "marking the batch in flight: ");
					break;
				}
			}
			raws = session_fetch(s, batch, n, error);
			if (raws == NULL) {
				/* which one failed is not known: they go alone */
				w->suspect_to = MAX(w->suspect_to, (gint64)batch[n - 1].uid);
				ok = FALSE;
				break;
			}
		}
		g_queue_push_tail(&flight, batch_submit(w, uids, i, raws));
		i += n;
		if (suspect || g_queue_get_length(&flight) >= MR_IMAP_IN_FLIGHT) {
			ok = watch_land(w, s, &flight, uids, &restart, error);
			if (ok && restart != G_MAXUINT)
				i = restart; /* from the one that failed, alone */
		}
	}
	if (ok) {
		guint restart = G_MAXUINT;

		if (!watch_land_all(w, s, &flight, uids, &restart, error))
			return FALSE;
		*more = restart != G_MAXUINT; /* past one that failed */
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
		w->progress = TRUE; /* the folder is drained */
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
			g_warning("mailbox %s: the last run stopped while storing UIDs %" G_GINT64_FORMAT
				  " to %" G_GINT64_FORMAT ": storing them one by one",
				  w->mb->name, w->st.last_uid + 1, w->st.inflight_to);
		}
	}
	while (!watch_stopping(w)) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MrImapSession) s = NULL;

		watch_state(w, "connecting", NULL);
		/* nothing in hand while connecting: a stop cancels it at once */
		g_atomic_int_set(&w->connecting, 1);
		if (!watch_stopping(w))
			s = session_open(w->mb, w->io, &error);
		g_atomic_int_set(&w->connecting, 0);
		if (s != NULL && watch_session(w, s, &error)) {
			mailimap_logout(s->imap);
			break; /* stopping */
		}
		if (watch_stopping(w))
			break;
		/* The backoff grows until the mailbox makes progress, not
		 * merely logs in: a server that fails every session after
		 * the login is not logged into every second. */
		if (w->progress)
			backoff = 1;
		w->progress = FALSE;
		watch_state(w, g_error_matches(error, MR_IMAP_ERROR, MR_IMAP_ERROR_AUTH)
				       ? "auth_failed" : "backoff",
			    error->message);
		wait_wake(w->wake, &w->poke, backoff);
		backoff = MIN(backoff * 2, w->mb->reconnect_max_s);
	}
	if (w->suspect_to <= w->st.last_uid) {
		/* nothing in flight and nothing failed: a clean mark, so the
		 * next run does not take this one for a death */
		w->st.inflight_to = w->st.last_uid;
		w->st.inflight_tries = 0;
	}
	watch_state(w, "stopped", NULL);
	g_atomic_int_set(&w->finished, 1);
	return NULL;
}

/* A watch of @mb, without its thread. */
static MrImapWatch *
watch_new(MrWriter *writer, MrConfig *cfg, const MrImapMailbox *mb)
{
	MrImapWatch *w = g_new0(MrImapWatch, 1);

	w->writer = writer;
	w->cfg = mr_config_ref(cfg);
	w->mb = mb;
	w->main_cfg = mr_config_ref(cfg);
	w->main_mb = mb;
	w->wake = g_cancellable_new();
	g_mutex_init(&w->poke.lock);
	w->io = g_cancellable_new();
	w->st.name = g_strdup(mb->name);
	g_mutex_init(&w->lock);
	return w;
}

static MrImapWatch *
watch_start(MrWriter *writer, MrConfig *cfg, const MrImapMailbox *mb)
{
	MrImapWatch *w = watch_new(writer, cfg, mb);
	g_autofree char *name = g_strdup_printf("imap-%s", mb->name);

	w->thread = g_thread_new(name, watch_thread, w);
	return w;
}

/* Asks @w to finish what it has in hand and stop; one that is still
 * connecting (or logging in) has nothing in hand and stops at once. */
static void
watch_drain_request(MrImapWatch *w)
{
	g_atomic_int_set(&w->stopping, 1);
	g_cancellable_cancel(w->wake);
	poke_send(&w->poke);
	if (g_atomic_int_get(&w->connecting))
		g_cancellable_cancel(w->io);
}

/* Stops @w now (its I/O is cancelled) and frees it. */
static void
watch_free(MrImapWatch *w)
{
	watch_drain_request(w);
	if (!g_atomic_int_get(&w->finished))
		g_cancellable_cancel(w->io);
	if (w->thread != NULL)
		g_thread_join(w->thread);
	g_free(w->fail_why);
	g_free(w->logged);
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
	MrConfig *cfg;      /* the latest configuration (ref) */
	GPtrArray *watches; /* MrImapWatch*: the running ones */
	GPtrArray *retired; /* MrImapWatch*: asked to stop, not yet joined */
	guint reaper;       /* a timer that joins retired watches */
	gboolean draining;  /* no more starts */
};

static gboolean
watch_named(GPtrArray *watches, const char *name)
{
	for (guint k = 0; k < watches->len; k++) {
		if (strcmp(((MrImapWatch *)g_ptr_array_index(watches, k))->main_mb->name, name) == 0)
			return TRUE;
	}
	return FALSE;
}

/* Starts a watch for each mailbox of the configuration that has none.
 * One thread owns a mailbox's row at a time: a changed mailbox starts
 * again only once its old thread, retired, has ended (and saved its
 * state last). */
static void
start_missing(MrImapService *svc)
{
	for (guint i = 0; i < svc->cfg->imap->len && !svc->draining; i++) {
		const MrImapMailbox *mb = g_ptr_array_index(svc->cfg->imap, i);

		if (!watch_named(svc->watches, mb->name) && !watch_named(svc->retired, mb->name))
			g_ptr_array_add(svc->watches, watch_start(svc->writer, svc->cfg, mb));
	}
}

static gboolean
reap_retired(gpointer data)
{
	MrImapService *svc = data;
	gboolean reaped = FALSE;

	for (guint i = 0; i < svc->retired->len;) {
		MrImapWatch *w = g_ptr_array_index(svc->retired, i);

		if (g_atomic_int_get(&w->finished)) {
			g_ptr_array_remove_index_fast(svc->retired, i); /* frees (joins) it */
			reaped = TRUE;
		} else {
			i++;
		}
	}
	if (reaped)
		start_missing(svc);
	return G_SOURCE_CONTINUE;
}

static gpointer
imap_start(MrConfig *cfg, MrWriter *writer, GError **error)
{
	MrImapService *svc = g_new0(MrImapService, 1);

	svc->writer = writer;
	svc->cfg = mr_config_ref(cfg);
	svc->watches = g_ptr_array_new_with_free_func((GDestroyNotify)watch_free);
	svc->retired = g_ptr_array_new_with_free_func((GDestroyNotify)watch_free);
	start_missing(svc);
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
	mr_config_unref(svc->cfg);
	svc->cfg = mr_config_ref(cfg);
	start_missing(svc); /* a changed one: once its old thread ended */
}

static void
imap_drain(gpointer self)
{
	MrImapService *svc = self;

	svc->draining = TRUE;
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
				       mb->remote.host, mb->remote.port, mb->folder);
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
	mr_config_unref(svc->cfg);
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

/* --- one session over a given stream (tests, fuzzing) ---------------------------- */

gboolean
mr_imap_run_stream(MrWriter *writer, MrConfig *cfg, const MrImapMailbox *mb, GIOStream *stream,
		   GError **error)
{
	MrImapWatch *w = watch_new(writer, cfg, mb);
	MrNetConn *c = mr_net_conn_new_for_stream(G_LOG_DOMAIN, mb->remote.timeout_s, stream);
	g_autoptr(MrImapSession) s = NULL;
	gboolean ok = FALSE;

	/* no waits: IDLE, polling and backoff end at once, and the session
	 * goes on until the stream ends (every turn reads from it) */
	g_cancellable_cancel(w->wake);
	s = session_start(session_new(c), mb, error);
	if (s != NULL && watch_session(w, s, error)) {
		mailimap_logout(s->imap);
		ok = TRUE;
	}
	g_clear_pointer(&s, session_free);
	watch_free(w);
	return ok;
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
