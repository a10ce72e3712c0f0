/* mr-net-tls.c - TLS for a connection to a remote server: the handshake
 * within the timeout and the checks of the server's certificate (see
 * mr_net_conn_start_tls() in mr-net.h).
 *
 * Net stage.  TLS is GIO's: the certificate is verified against the
 * system's CA store, and against tls_ca_file when that one is set. */
#define G_LOG_DOMAIN "mailroom-net"

#include <gio/gio.h>

#include "mailroom/mr-error.h"
#include "mr-net-private.h"

typedef struct {
	const MrRemote *remote;
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

	if (!check->remote->tls_verify)
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

typedef struct {
	gboolean done, late;
	GError *error;
} MrHandshake;

static void
handshake_done(GObject *source, GAsyncResult *res, gpointer data)
{
	MrHandshake *h = data;

	g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), res, &h->error);
	h->done = TRUE;
}

static gboolean
tick_cb(gpointer data)
{
	return G_SOURCE_CONTINUE; /* wakes the loop to look at the clock */
}

/* The TLS handshake of @tls within the connection's timeout, whatever the
 * server's pace: past it (or at a hard stop) the socket is shut down,
 * which ends the handshake.  (No GCancellable: glib-networking leaks the
 * sources it makes for one.) */
static gboolean
conn_handshake(MrNetConn *c, GTlsConnection *tls, GError **error)
{
	g_autoptr(GMainContext) ctx = g_main_context_new();
	g_autoptr(GSource) tick = g_timeout_source_new(250);
	gint64 deadline = g_get_monotonic_time() + (gint64)c->timeout_s * G_USEC_PER_SEC;
	MrHandshake h = { 0 };

	g_main_context_push_thread_default(ctx);
	g_source_set_callback(tick, tick_cb, NULL, NULL);
	g_source_attach(tick, ctx);
	g_tls_connection_handshake_async(tls, G_PRIORITY_DEFAULT, NULL, handshake_done, &h);
	while (!h.done) {
		g_main_context_iteration(ctx, TRUE);
		if (!h.late && (g_get_monotonic_time() >= deadline ||
				g_cancellable_is_cancelled(c->cancel))) {
			h.late = TRUE;
			g_socket_shutdown(g_socket_connection_get_socket(c->tcp), TRUE, TRUE, NULL);
		}
	}
	g_source_destroy(tick);
	g_main_context_pop_thread_default(ctx);
	if (h.error == NULL)
		return TRUE;
	if (h.late) {
		g_clear_error(&h.error);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "not done within %d s (timeout)", c->timeout_s);
		return FALSE;
	}
	g_propagate_error(error, h.error);
	return FALSE;
}

gboolean
mr_net_conn_start_tls(MrNetConn *c, const MrRemote *r, GError **error)
{
	g_autoptr(GSocketConnectable) identity = g_network_address_new(r->host, (guint16)r->port);
	g_autoptr(GTlsDatabase) extra = NULL;
	g_autoptr(GIOStream) tls = NULL;
	g_autoptr(GError) local = NULL;
	MrTlsCheck check = { r, NULL, identity };
	gulong handler;

	if (r->tls_ca_file != NULL) {
		extra = g_tls_file_database_new(r->tls_ca_file, &local);
		if (extra == NULL) {
			g_set_error(error, MR_NET_ERROR, MR_NET_ERROR_TLS, "tls_ca_file %s: %s",
				    r->tls_ca_file, local->message);
			return FALSE;
		}
		check.extra = extra;
	}
	if (!r->tls_verify)
		g_log_structured_standard(c->log_domain, G_LOG_LEVEL_WARNING, __FILE__,
					  G_STRINGIFY(__LINE__), G_STRFUNC,
					  "%s: tls_verify is off: the server's certificate is not"
					  " checked (for tests only)", r->label);
	tls = g_tls_client_connection_new(G_IO_STREAM(c->tcp), identity, &local);
	if (tls == NULL) {
		g_set_error(error, MR_NET_ERROR, MR_NET_ERROR_TLS, "TLS: %s", local->message);
		return FALSE;
	}
	handler = g_signal_connect(tls, "accept-certificate", G_CALLBACK(accept_certificate),
				   &check);
	if (!conn_handshake(c, G_TLS_CONNECTION(tls), &local)) {
		GTlsCertificateFlags f =
			g_tls_connection_get_peer_certificate_errors(G_TLS_CONNECTION(tls));

		if (g_error_matches(local, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE) && f != 0)
			g_set_error(error, MR_NET_ERROR, MR_NET_ERROR_TLS,
				    "the certificate of %s is %s", r->host, tls_flags_text(f));
		else
			g_set_error(error, MR_NET_ERROR, MR_NET_ERROR_TLS, "TLS handshake with %s: %s",
				    r->host, local->message);
		return FALSE;
	}
	g_signal_handler_disconnect(tls, handler);
	g_clear_object(&c->stream);
	c->stream = g_steal_pointer(&tls);
	return TRUE;
}
