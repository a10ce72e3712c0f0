/* mr-smtp.h - the SMTP (RFC 5321) and LMTP (RFC 2033) listener.
 *
 * One state machine serves both protocols (LMTP is a flag, as in Dovecot).
 * Accepted messages go to the group-commit writer; a session answers 250
 * only after the COMMIT that holds its message. */
#pragma once

#include <gio/gio.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-writer.h"

G_BEGIN_DECLS

typedef struct _MrSmtpServer MrSmtpServer;

/* Binds every smtp.listen and lmtp.listen address of @cfg (port 0 picks a
 * free port; see mr_smtp_server_describe()) and starts accepting on the
 * thread-default main context.  Messages go to @writer.
 * Returns: (transfer full) (nullable): the server, or NULL with @error. */
MrSmtpServer *mr_smtp_server_new(MrConfig *cfg, MrWriter *writer, GError **error);

/* Uses @cfg (referenced) for sessions that start from now on: limits,
 * addresses, trust, TLS.  Open sessions keep the configuration they
 * started with; bound addresses do not change. */
void mr_smtp_server_set_config(MrSmtpServer *server, MrConfig *cfg);

/* Stops accepting; idle sessions get 421 and close, busy ones close after
 * answering their transaction. */
void mr_smtp_server_drain(MrSmtpServer *server);

/* Returns the number of open sessions. */
guint mr_smtp_server_sessions(MrSmtpServer *server);

/* Returns the messages accepted (answered 250) so far. */
guint64 mr_smtp_server_accepted(MrSmtpServer *server);

/* Returns: (transfer full): the bound addresses, "smtp 127.0.0.1:2525 lmtp
 * 127.0.0.1:2424", with the ports actually bound. */
char *mr_smtp_server_describe(MrSmtpServer *server);

/* Closes every session and listener.  NULL-safe. */
void mr_smtp_server_free(MrSmtpServer *server);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrSmtpServer, mr_smtp_server_free)

G_END_DECLS
