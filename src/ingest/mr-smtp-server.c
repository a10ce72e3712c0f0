/* mr-smtp-server.c - the SMTP and LMTP listeners: accepting with
 * admission control (trusted networks, connections in all and per
 * address, TLS handshakes at once), the idle sweep, reloads and the drain
 * (see mr-smtp.h).
 *
 * Ingest stage.  Owns the listeners and the sessions' slots; a session's
 * protocol is mr-smtp-session.c. */
#define G_LOG_DOMAIN "mailroom-smtp"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "mailroom/mr-error.h"
#include "mr-smtp-private.h"

/* Refused connections: at most this many log lines per window, then one
 * line that counts the rest (a flood must not flood the journal). */
#define REFUSE_LOG_BURST 10
#define REFUSE_LOG_WINDOW_S 10

static const char *const mr_smtp_refusal_names[MR_SMTP_REFUSE_N] = {
	[MR_SMTP_REFUSE_UNTRUSTED] = "untrusted",
	[MR_SMTP_REFUSE_CONNECTIONS] = "too-many-connections",
	[MR_SMTP_REFUSE_CONNECTIONS_PER_IP] = "too-many-connections-per-ip",
};

typedef struct {
	MrSmtpServer *server;
	GSocket *socket;  /* listening, non-blocking */
	GSource *source;  /* readable: connections to accept (NULL: paused) */
	guint resume_id;  /* after an accept error, a pause */
	gboolean failing; /* accept fails (logged once until it works again) */
	gboolean lmtp;
	char *name;       /* "127.0.0.1:2525" as bound */
} MrSmtpListener;

/* Counts a session of @peer in; returns the sessions of @peer now open. */
static guint
server_ip_add(MrSmtpServer *server, const char *peer)
{
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(server->per_ip, peer)) + 1;

	g_hash_table_replace(server->per_ip, g_strdup(peer), GUINT_TO_POINTER(n));
	return n;
}

void
mr_smtp_server_ip_remove(MrSmtpServer *server, const char *peer)
{
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(server->per_ip, peer));

	if (n <= 1)
		g_hash_table_remove(server->per_ip, peer);
	else
		g_hash_table_replace(server->per_ip, g_strdup(peer), GUINT_TO_POINTER(n - 1));
}

/* --- the server -------------------------------------------------------------------- */

static gboolean
server_trusts(MrSmtpServer *server, GInetAddress *addr)
{
	for (guint i = 0; i < server->masks->len; i++)
		if (g_inet_address_mask_matches(g_ptr_array_index(server->masks, i), addr))
			return TRUE;
	return FALSE;
}

/* Logs a refused connection, REFUSE_LOG_BURST lines per window at most;
 * the rest are counted, and server_refusals_flush() logs the count. */
static void
server_log_refusal(MrSmtpServer *server, MrSmtpSession *s, MrSmtpRefusal why)
{
	if (server->refuse_logged < REFUSE_LOG_BURST) {
		server->refuse_logged++;
		mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "refused reason=%s peer=%s",
				    mr_smtp_refusal_names[why], s->peer);
	} else {
		server->refuse_quiet[why]++;
	}
}

/* Ends the refusal log window once it is over: one line counts the
 * refusals that were not logged. */
static void
server_refusals_flush(MrSmtpServer *server, gint64 now)
{
	guint total = 0;

	if (now - server->refuse_window < REFUSE_LOG_WINDOW_S * G_TIME_SPAN_SECOND)
		return;
	for (guint i = 0; i < MR_SMTP_REFUSE_N; i++)
		total += server->refuse_quiet[i];
	if (total > 0)
		g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_INFO, "MR_STAGE", "ingest", "MESSAGE",
				 "refused %u more connections in %d s without a line each (%s=%u %s=%u %s=%u)",
				 total, REFUSE_LOG_WINDOW_S,
				 mr_smtp_refusal_names[MR_SMTP_REFUSE_UNTRUSTED],
				 server->refuse_quiet[MR_SMTP_REFUSE_UNTRUSTED],
				 mr_smtp_refusal_names[MR_SMTP_REFUSE_CONNECTIONS],
				 server->refuse_quiet[MR_SMTP_REFUSE_CONNECTIONS],
				 mr_smtp_refusal_names[MR_SMTP_REFUSE_CONNECTIONS_PER_IP],
				 server->refuse_quiet[MR_SMTP_REFUSE_CONNECTIONS_PER_IP]);
	server->refuse_window = now;
	server->refuse_logged = 0;
	memset(server->refuse_quiet, 0, sizeof server->refuse_quiet);
}

static gboolean server_sweep(gpointer data);

/* The sweep runs while there are sessions (or refusals not yet logged):
 * an idle server has no timer. */
static void
server_sweep_arm(MrSmtpServer *server)
{
	if (server->sweep_id == 0)
		server->sweep_id = g_timeout_add_seconds(1, server_sweep, server);
}

static void
server_start_session(MrSmtpServer *server, GSocketConnection *conn, gboolean lmtp)
{
	MrSmtpSession *s = g_new0(MrSmtpSession, 1);
	g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address(conn, NULL);
	GInetAddress *addr = G_IS_INET_SOCKET_ADDRESS(remote)
				     ? g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote))
				     : NULL;
	guint per_ip;

	s->ref = 1;
	s->server = server;
	s->cfg = mr_config_ref(server->cfg);
	s->lmtp = lmtp;
	s->conn = g_object_ref(conn);
	s->io = G_IO_STREAM(g_object_ref(conn));
	g_snprintf(s->id, sizeof s->id, "%016" G_GINT64_MODIFIER "x", ++server->next_id);
	s->peer = addr != NULL ? g_inet_address_to_string(addr) : g_strdup("unknown");
	s->in = g_byte_array_new();
	s->out = g_string_sized_new(256);
	s->rcpts = g_ptr_array_new_with_free_func(g_free);
	s->state = MR_SMTP_STATE_HELO;
	s->last_active = g_get_monotonic_time();
	g_hash_table_add(server->sessions, s);
	server_sweep_arm(server);
	per_ip = server_ip_add(server, s->peer);
	g_socket_set_option(g_socket_connection_get_socket(conn), IPPROTO_TCP, TCP_NODELAY, 1, NULL);

	server_refusals_flush(server, s->last_active);
	if (addr == NULL || !server_trusts(server, addr)) {
		server_log_refusal(server, s, MR_SMTP_REFUSE_UNTRUSTED);
		mr_smtp_session_reply(s, "554 5.7.1 %s: not a trusted network", s->peer);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
	} else if (g_hash_table_size(server->sessions) > (guint)s->cfg->limits.max_connections) {
		server_log_refusal(server, s, MR_SMTP_REFUSE_CONNECTIONS);
		mr_smtp_session_reply(s, "421 4.7.0 %s Too many connections, try again later",
				      s->cfg->hostname);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
	} else if (per_ip > (guint)s->cfg->limits.max_connections_per_ip) {
		/* Trusted networks and loopback too: one client must not take
		 * every slot. */
		server_log_refusal(server, s, MR_SMTP_REFUSE_CONNECTIONS_PER_IP);
		mr_smtp_session_reply(s, "421 4.7.0 %s Too many connections from %s, try again later",
				      s->cfg->hostname, s->peer);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
	} else if (server->draining) {
		mr_smtp_session_reply(s, "421 4.3.2 %s Shutting down", s->cfg->hostname);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
	} else {
		mr_smtp_session_reply(s, "220 %s %s mailroom", s->cfg->hostname, lmtp ? "LMTP" : "ESMTP");
	}
	/* A refusal closes (and frees) the session inside the flush. */
	mr_smtp_session_ref(s);
	mr_smtp_session_flush(s);
	mr_smtp_session_read(s);
	mr_smtp_session_unref(s);
}

/* Seconds a session in @state may take: limits.timeout for each line
 * (RFC 5321 4.5.3.2), limits.tls_handshake_timeout (at most that) from
 * "220 Ready to start TLS" to the end of the handshake; QUIT: for the
 * client to read its last replies.  A session waiting for our COMMIT is
 * never late. */
static gint64
session_deadline_s(const MrSmtpSession *s)
{
	if (s->state == MR_SMTP_STATE_TLS)
		return MIN(s->cfg->limits.tls_handshake_timeout_s, s->cfg->limits.timeout_s);
	return s->cfg->limits.timeout_s;
}

/* Once a second while there are sessions (server_sweep_arm()): sessions
 * past their deadline get 421 4.4.2 and are closed; a session that does
 * not read even that is closed after one more period, and a TLS
 * handshake is cancelled. */
static gboolean
server_sweep(gpointer data)
{
	MrSmtpServer *server = data;
	gint64 now = g_get_monotonic_time();
	g_autoptr(GPtrArray) late = g_ptr_array_new_with_free_func((GDestroyNotify)mr_smtp_session_unref);
	GHashTableIter it;
	gpointer key;

	server_refusals_flush(server, now);
	g_hash_table_iter_init(&it, server->sessions);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		MrSmtpSession *s = key;

		if (s->state != MR_SMTP_STATE_COMMIT &&
		    now - s->last_active > session_deadline_s(s) * G_TIME_SPAN_SECOND)
			g_ptr_array_add(late, mr_smtp_session_ref(s));
	}
	for (guint i = 0; i < late->len; i++) {
		MrSmtpSession *s = g_ptr_array_index(late, i);

		if (s->state == MR_SMTP_STATE_QUIT) {
			/* Its replies (a 221 or 421) are stuck: it does not read. */
			mr_smtp_session_close(s);
			continue;
		}
		mr_smtp_session_log(s, G_LOG_LEVEL_INFO, "disconnected reason=timeout state=%s peer=%s",
				    mr_smtp_state_names[s->state], s->peer);
		if (s->state == MR_SMTP_STATE_TLS) {
			mr_smtp_session_close(s);
			continue;
		}
		mr_smtp_session_reset_tx(s);
		mr_smtp_session_reply(s, "421 4.4.2 %s Timeout, closing connection", s->cfg->hostname);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
		s->last_active = now; /* the time it gets to read the 421 */
		mr_smtp_session_read(s);
		mr_smtp_session_flush(s);
	}
	if (g_hash_table_size(server->sessions) > 0)
		return G_SOURCE_CONTINUE;
	for (guint i = 0; i < MR_SMTP_REFUSE_N; i++)
		if (server->refuse_quiet[i] > 0)
			return G_SOURCE_CONTINUE;
	server->sweep_id = 0;
	return G_SOURCE_REMOVE;
}

#define ACCEPT_BURST 64    /* connections taken per wake-up */
#define ACCEPT_PAUSE_MS 100 /* after an accept error such as EMFILE */

static void listener_watch(MrSmtpListener *l);

static gboolean
listener_resume(gpointer data)
{
	MrSmtpListener *l = data;

	l->resume_id = 0;
	listener_watch(l);
	return G_SOURCE_REMOVE;
}

static void
listener_unwatch(MrSmtpListener *l)
{
	if (l->source != NULL) {
		g_source_destroy(l->source);
		g_clear_pointer(&l->source, g_source_unref);
	}
	g_clear_handle_id(&l->resume_id, g_source_remove);
}

/* Accepts what is waiting, up to a burst.  One persistent source per
 * listening socket: an accept costs no source set-up, and a burst of
 * connections costs one wake-up. */
static gboolean
on_acceptable(GSocket *socket, GIOCondition condition, gpointer data)
{
	MrSmtpListener *l = data;

	for (int i = 0; i < ACCEPT_BURST; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GSocket) client = g_socket_accept(socket, NULL, &error);
		g_autoptr(GSocketConnection) conn = NULL;

		if (client == NULL) {
			if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
				break;
			/* Out of descriptors, say: the queue stays in the
			 * kernel's backlog; try again after a pause rather
			 * than spin, and say so once, not ten times a second. */
			if (!l->failing)
				g_warning("accept on %s: %s; retrying every %d ms", l->name,
					  error->message, ACCEPT_PAUSE_MS);
			l->failing = TRUE;
			listener_unwatch(l);
			l->resume_id = g_timeout_add(ACCEPT_PAUSE_MS, listener_resume, l);
			return G_SOURCE_REMOVE;
		}
		if (l->failing)
			g_message("accept on %s: works again", l->name);
		l->failing = FALSE;
		conn = g_socket_connection_factory_create_connection(client);
		server_start_session(l->server, conn, l->lmtp);
	}
	return G_SOURCE_CONTINUE;
}

static void
listener_watch(MrSmtpListener *l)
{
	l->source = g_socket_create_source(l->socket, G_IO_IN, NULL);
	g_source_set_callback(l->source, G_SOURCE_FUNC(on_acceptable), l, NULL);
	mr_smtp_loop_source_attach(l->source);
}

/* Stops accepting and closes the listening socket (drain, free). */
static void
listener_close(MrSmtpListener *l)
{
	listener_unwatch(l);
	g_socket_close(l->socket, NULL);
}

static void
listener_free(MrSmtpListener *l)
{
	if (l == NULL)
		return;
	if (l->socket != NULL) {
		listener_close(l);
		g_object_unref(l->socket);
	}
	g_free(l->name);
	g_free(l);
}

/* Binds "host:port" for @lmtp. */
static gboolean
server_bind(MrSmtpServer *server, const char *spec, gboolean lmtp, GError **error)
{
	const char *colon = strrchr(spec, ':');
	g_autofree char *host = g_strndup(spec, (gsize)(colon - spec));
	guint16 port = (guint16)g_ascii_strtoull(colon + 1, NULL, 10);
	g_autoptr(GInetAddress) addr = NULL;
	g_autoptr(GSocketAddress) sa = NULL;
	g_autoptr(GSocketAddress) bound = NULL;
	MrSmtpListener *l;

	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	addr = g_inet_address_new_from_string(host);
	if (addr == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "%s: listen needs a numeric address", spec);
		return FALSE;
	}
	sa = g_inet_socket_address_new(addr, port);
	l = g_new0(MrSmtpListener, 1);
	l->server = server;
	l->lmtp = lmtp;
	l->socket = g_socket_new(g_inet_address_get_family(addr), G_SOCKET_TYPE_STREAM,
				 G_SOCKET_PROTOCOL_TCP, error);
	if (l->socket != NULL) {
		g_socket_set_blocking(l->socket, FALSE);
		g_socket_set_listen_backlog(l->socket, 1024);
	}
	if (l->socket == NULL || !g_socket_bind(l->socket, sa, TRUE, error) ||
	    !g_socket_listen(l->socket, error) ||
	    (bound = g_socket_get_local_address(l->socket, error)) == NULL) {
		g_prefix_error(error, "%s %s: ", lmtp ? "lmtp" : "smtp", spec);
		listener_free(l);
		return FALSE;
	}
	{
		g_autofree char *a = g_inet_address_to_string(addr);

		l->name = g_strdup_printf(
			strchr(a, ':') != NULL ? "[%s]:%u" : "%s:%u", a,
			g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
	}
	g_ptr_array_add(server->listeners, l);
	return TRUE;
}

static GPtrArray *
masks_new(const MrConfig *cfg)
{
	GPtrArray *masks = g_ptr_array_new_with_free_func(g_object_unref);

	for (char **n = cfg->trusted_networks; n != NULL && *n != NULL; n++) {
		GInetAddressMask *m = g_inet_address_mask_new_from_string(*n, NULL);

		if (m != NULL)
			g_ptr_array_add(masks, m);
	}
	return masks;
}

MrSmtpServer *
mr_smtp_server_new(MrConfig *cfg, MrWriter *writer, GError **error)
{
	g_autoptr(MrSmtpServer) server = g_new0(MrSmtpServer, 1);

	g_return_val_if_fail(cfg != NULL && writer != NULL, NULL);

	server->cfg = mr_config_ref(cfg);
	server->writer = writer;
	server->masks = masks_new(cfg);
	server->sessions = g_hash_table_new(NULL, NULL);
	server->per_ip = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_queue_init(&server->tls_waiting);
	server->refuse_window = g_get_monotonic_time();
	server->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)listener_free);
	server->chunk = g_malloc(SMTP_READ_CHUNK);
	server->trace = g_strcmp0(g_getenv("G_MESSAGES_DEBUG"), "all") == 0 ||
			(g_getenv("G_MESSAGES_DEBUG") != NULL &&
			 strstr(g_getenv("G_MESSAGES_DEBUG"), G_LOG_DOMAIN) != NULL);
	if (cfg->tls.cert != NULL) {
		server->cert = g_tls_certificate_new_from_files(cfg->tls.cert, cfg->tls.key, error);
		if (server->cert == NULL) {
			g_prefix_error(error, "tls: ");
			return NULL;
		}
	}
	for (char **l = cfg->smtp.listen; *l != NULL; l++)
		if (!server_bind(server, *l, FALSE, error))
			return NULL;
	for (char **l = cfg->lmtp.listen; *l != NULL; l++)
		if (!server_bind(server, *l, TRUE, error))
			return NULL;
	for (guint i = 0; i < server->listeners->len; i++)
		listener_watch(g_ptr_array_index(server->listeners, i));
	return g_steal_pointer(&server);
}

void
mr_smtp_server_set_config(MrSmtpServer *server, MrConfig *cfg)
{
	g_autoptr(GError) error = NULL;

	mr_config_unref(server->cfg);
	server->cfg = mr_config_ref(cfg);
	g_ptr_array_unref(server->masks);
	server->masks = masks_new(cfg);
	if (cfg->tls.cert != NULL) {
		GTlsCertificate *cert = g_tls_certificate_new_from_files(cfg->tls.cert, cfg->tls.key,
									  &error);

		if (cert == NULL) {
			g_warning("tls: keeping the old certificate: %s", error->message);
		} else {
			g_clear_object(&server->cert);
			server->cert = cert;
		}
	} else {
		g_clear_object(&server->cert);
	}
}

void
mr_smtp_server_drain(MrSmtpServer *server)
{
	GHashTableIter it;
	gpointer key;
	g_autoptr(GPtrArray) idle = g_ptr_array_new();

	server->draining = TRUE;
	for (guint i = 0; i < server->listeners->len; i++)
		listener_close(g_ptr_array_index(server->listeners, i));
	g_hash_table_iter_init(&it, server->sessions);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		MrSmtpSession *s = key;

		if (s->state == MR_SMTP_STATE_HELO || s->state == MR_SMTP_STATE_MAIL)
			g_ptr_array_add(idle, s);
	}
	for (guint i = 0; i < idle->len; i++) {
		g_autoptr(MrSmtpSession) s = mr_smtp_session_ref(g_ptr_array_index(idle, i));

		mr_smtp_session_reply(s, "421 4.3.2 %s Shutting down", s->cfg->hostname);
		mr_smtp_session_enter_state(s, MR_SMTP_STATE_QUIT);
		mr_smtp_session_flush(s);
	}
}

guint
mr_smtp_server_sessions(MrSmtpServer *server)
{
	return g_hash_table_size(server->sessions);
}

guint64
mr_smtp_server_accepted(MrSmtpServer *server)
{
	return server->accepted;
}

char *
mr_smtp_server_describe(MrSmtpServer *server)
{
	GString *out = g_string_new(NULL);

	for (guint i = 0; i < server->listeners->len; i++) {
		MrSmtpListener *l = g_ptr_array_index(server->listeners, i);

		g_string_append_printf(out, "%s%s %s", i > 0 ? " " : "", l->lmtp ? "lmtp" : "smtp",
				       l->name);
	}
	return g_string_free(out, FALSE);
}

void
mr_smtp_server_free(MrSmtpServer *server)
{
	GHashTableIter it;
	gpointer key;

	if (server == NULL)
		return;
	if (server->sweep_id != 0)
		g_source_remove(server->sweep_id);
	g_hash_table_iter_init(&it, server->sessions);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		MrSmtpSession *s = key;

		s->server = NULL;
		g_hash_table_iter_remove(&it);
		mr_smtp_session_close(s);
		mr_smtp_session_unref(s);
	}
	g_hash_table_unref(server->sessions);
	g_hash_table_unref(server->per_ip);
	g_queue_clear(&server->tls_waiting);
	g_ptr_array_unref(server->listeners);
	g_ptr_array_unref(server->masks);
	g_clear_object(&server->cert);
	g_free(server->chunk);
	mr_config_unref(server->cfg);
	g_free(server);
}
