/* mr-net-mailstream.c - libetpan's mailstream_low driver over a
 * connection (see mr_net_mailstream_low_new() in mr-net.h).
 *
 * Net stage.  libetpan speaks IMAP (and SMTP) over this; the bytes travel
 * through mr_net_conn_read() and _write(), with their budgets, deadlines
 * and cancellation.  Only mailroomd links libetpan. */
#define G_LOG_DOMAIN "mailroom-net"

#include <libetpan/libetpan.h>

#include "mailroom/mr-net.h"

static ssize_t
low_read(mailstream_low *s, void *buf, size_t count)
{
	return mr_net_conn_read(s->data, buf, count);
}

static ssize_t
low_write(mailstream_low *s, const void *buf, size_t count)
{
	return mr_net_conn_write(s->data, buf, count);
}

static int
low_close(mailstream_low *s)
{
	return 0; /* the connection closes with the MrNetConn */
}

static int
low_get_fd(mailstream_low *s)
{
	return mr_net_conn_get_fd(s->data);
}

static void
low_free(mailstream_low *s)
{
	free(s); /* allocated by mailstream_low_new(); the data is not ours */
}

static void
low_cancel(mailstream_low *s)
{
	mr_net_conn_cancel(s->data);
}

static mailstream_low_driver mr_net_low_driver = {
	.mailstream_read = low_read,
	.mailstream_write = low_write,
	.mailstream_close = low_close,
	.mailstream_get_fd = low_get_fd,
	.mailstream_free = low_free,
	.mailstream_cancel = low_cancel,
};

mailstream_low *
mr_net_mailstream_low_new(MrNetConn *c)
{
	return mailstream_low_new(c, &mr_net_low_driver);
}
