/* mr-net-private.h - the connection's insides, shared by the files of
 * src/net/ (mr-net-conn.c, mr-net-tls.c); see mr-net.h. */
#pragma once

#include "mailroom/mr-net.h"

struct _MrNetConn {
	const char *log_domain; /* static: its warnings' domain */
	GSocketConnection *tcp; /* the TCP connection */
	GIOStream *stream;      /* tcp, or the TLS connection over it */
	GCancellable *cancel;   /* cancels blocking I/O (hard stop) */
	GError *error;          /* why the last read or write failed */
	int timeout_s;          /* the remote's timeout */
	guint64 allowed;        /* what the command in progress may read */
	guint64 left;           /* of it, not read yet (reset by each write) */
	gint64 allowed_us;      /* how long it may take */
	gint64 deadline;        /* monotonic: when it must be over (each write
	                           sets it anew) */
	MrNetScanFunc scan;     /* (nullable): looks at every read */
	GByteArray *unread;     /* (nullable): what the next reads return first */
	gsize unread_at;        /* of it, what was returned */
	gpointer scan_data;
};
