/* mr-net-conn.c - a connection to a remote server: TCP with a timeout,
 * and reads and writes under per-command budgets and deadlines (see
 * mr-net.h).
 *
 * Net stage.  Every blocking read or write can be cancelled, and none
 * outlives the deadline of its command, whatever the server's pace.  TLS
 * is mr-net-tls.c; libetpan's driver over this is mr-net-mailstream.c. */
#define G_LOG_DOMAIN "mailroom-net"

#include <gio/gio.h>
#include <string.h>

#include "mailroom/mr-error.h"
#include "mr-net-private.h"

MrNetConn *
mr_net_conn_new(const char *log_domain, int timeout_s, GCancellable *cancel)
{
	MrNetConn *c = g_new0(MrNetConn, 1);

	c->log_domain = log_domain;
	c->cancel = cancel != NULL ? g_object_ref(cancel) : g_cancellable_new();
	c->timeout_s = timeout_s;
	mr_net_conn_expect(c, 0);
	return c;
}

MrNetConn *
mr_net_conn_new_for_stream(const char *log_domain, int timeout_s, GIOStream *stream)
{
	MrNetConn *c = mr_net_conn_new(log_domain, timeout_s, NULL);

	c->stream = g_object_ref(stream);
	return c;
}

void
mr_net_conn_expect(MrNetConn *c, guint64 bytes)
{
	c->allowed = MR_NET_READ_LIMIT + bytes;
	c->left = c->allowed;
	c->allowed_us = ((gint64)c->timeout_s + (gint64)(bytes / MR_NET_MIN_RATE)) * G_USEC_PER_SEC;
	c->deadline = g_get_monotonic_time() + c->allowed_us;
}

void
mr_net_conn_credit(MrNetConn *c, guint64 bytes)
{
	c->left += bytes;
}

void
mr_net_conn_set_scan(MrNetConn *c, MrNetScanFunc scan, gpointer data)
{
	c->scan = scan;
	c->scan_data = data;
}

void
mr_net_conn_unread(MrNetConn *c, const void *buf, gsize len)
{
	if (c->unread == NULL)
		c->unread = g_byte_array_new();
	g_byte_array_remove_range(c->unread, 0, (guint)c->unread_at);
	c->unread_at = 0;
	g_byte_array_prepend(c->unread, buf, (guint)len);
}

void
mr_net_conn_free(MrNetConn *c)
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
	if (c->unread != NULL)
		g_byte_array_unref(c->unread);
	g_free(c);
}

gboolean
mr_net_conn_connect(MrNetConn *c, const MrRemote *r, GError **error)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GError) local = NULL;

	g_socket_client_set_timeout(client, (guint)r->timeout_s);
	c->tcp = g_socket_client_connect_to_host(client, r->host, (guint16)r->port, c->cancel,
						 &local);
	if (c->tcp == NULL) {
		g_set_error(error, MR_NET_ERROR, MR_NET_ERROR_CONNECT, "connect to %s:%d: %s",
			    r->host, r->port, local->message);
		return FALSE;
	}
	c->stream = G_IO_STREAM(g_object_ref(c->tcp));
	if (r->tls == MR_REMOTE_TLS_IMPLICIT && !mr_net_conn_start_tls(c, r, error))
		return FALSE;
	return TRUE;
}

/* Fails when the command in progress is past its deadline; otherwise
 * makes the socket's own timeout (each wait) end by it. */
static gboolean
conn_before_io(MrNetConn *c)
{
	gint64 left_us = c->deadline - g_get_monotonic_time();

	if (left_us <= 0) {
		g_set_error(&c->error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "no complete answer within %" G_GINT64_FORMAT " s (timeout)",
			    c->allowed_us / G_USEC_PER_SEC);
		return FALSE;
	}
	if (c->tcp != NULL) /* (mr_net_conn_new_for_stream(): a stream of memory) */
		g_socket_set_timeout(g_socket_connection_get_socket(c->tcp),
				     (guint)((left_us + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC));
	return TRUE;
}

gssize
mr_net_conn_read(MrNetConn *c, void *buf, gsize count)
{
	gssize n;

	g_clear_error(&c->error);
	if (c->unread != NULL && c->unread_at < c->unread->len && count > 0) {
		gsize k = MIN(count, c->unread->len - c->unread_at);

		memcpy(buf, c->unread->data + c->unread_at, k);
		c->unread_at += k;
		return (gssize)k;
	}
	if (c->left == 0) {
		g_set_error(&c->error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
			    "the server sent more than %" G_GUINT64_FORMAT " bytes for one command",
			    c->allowed);
		return -1;
	}
	if (!conn_before_io(c))
		return -1;
	n = g_input_stream_read(g_io_stream_get_input_stream(c->stream), buf,
				MIN((guint64)count, c->left), c->cancel, &c->error);
	if (n < 0 && g_error_matches(c->error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
		g_clear_error(&c->error);
		g_set_error(&c->error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "no complete answer within %" G_GINT64_FORMAT " s (timeout)",
			    c->allowed_us / G_USEC_PER_SEC);
	}
	if (n == 0) {
		/* The end: an error, not a read of nothing -- libetpan reads a
		 * literal again and again until it is complete, so a server
		 * that closes in the middle of one would make it spin. */
		g_set_error_literal(&c->error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
				    "the server closed the connection");
		return -1;
	}
	if (n < 0 || (c->scan != NULL && !c->scan(buf, (gsize)n, c->left, c->scan_data, &c->error)))
		return -1;
	c->left -= (guint64)n;
	return n;
}

gssize
mr_net_conn_write(MrNetConn *c, const void *buf, gsize count)
{
	gsize written = 0;

	/* a command (or its continuation) starts */
	c->left = c->allowed;
	c->deadline = g_get_monotonic_time() + c->allowed_us;
	g_clear_error(&c->error);
	if (!conn_before_io(c) ||
	    !g_output_stream_write_all(g_io_stream_get_output_stream(c->stream), buf, count,
				       &written, c->cancel, &c->error))
		return -1;
	return (gssize)written;
}

const GError *
mr_net_conn_get_error(MrNetConn *c)
{
	return c->error;
}

GIOStream *
mr_net_conn_get_stream(MrNetConn *c)
{
	return c->stream;
}

int
mr_net_conn_get_fd(MrNetConn *c)
{
	return c->tcp != NULL ? g_socket_get_fd(g_socket_connection_get_socket(c->tcp)) : -1;
}

void
mr_net_conn_cancel(MrNetConn *c)
{
	g_cancellable_cancel(c->cancel);
}
