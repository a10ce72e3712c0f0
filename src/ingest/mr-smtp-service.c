/* mr-smtp-service.c - the SMTP and LMTP listeners as a service of
 * mailroomd (mr_smtp_service, see mr-service.h).
 *
 * Ingest stage: start, reload, drain, busy, stop over mr-smtp.h. */
#define G_LOG_DOMAIN "mailroom-smtp"

#include "mailroom/mr-service.h"
#include "mailroom/mr-smtp.h"

/* --- as a service of mailroomd -------------------------------------------------- */

static gpointer
smtp_service_start(MrConfig *cfg, MrWriter *writer, GError **error)
{
	MrSmtpServer *server = mr_smtp_server_new(cfg, writer, error);

	if (server == NULL)
		g_prefix_error(error, "cannot listen: ");
	return server;
}

static void
smtp_service_reload(gpointer self, const MrConfig *old, MrConfig *cfg)
{
	if (!g_strv_equal((const char *const *)cfg->smtp.listen,
			  (const char *const *)old->smtp.listen) ||
	    !g_strv_equal((const char *const *)cfg->lmtp.listen,
			  (const char *const *)old->lmtp.listen))
		g_warning("reload: listen addresses change only on restart");
	mr_smtp_server_set_config(self, cfg);
}

static void
smtp_service_drain(gpointer self)
{
	mr_smtp_server_drain(self);
}

static guint
smtp_service_busy(gpointer self)
{
	return mr_smtp_server_sessions(self);
}

static char *
smtp_service_describe(gpointer self)
{
	return mr_smtp_server_describe(self);
}

static char *
smtp_service_status(gpointer self)
{
	return g_strdup_printf("%u sessions, %" G_GUINT64_FORMAT " accepted",
			       mr_smtp_server_sessions(self), mr_smtp_server_accepted(self));
}

static void
smtp_service_stop(gpointer self)
{
	mr_smtp_server_free(self);
}

const MrServiceClass mr_smtp_service = {
	.name = "smtp",
	.start_failure_exit = 69, /* EX_UNAVAILABLE: a port is taken */
	.start = smtp_service_start,
	.reload = smtp_service_reload,
	.drain = smtp_service_drain,
	.busy = smtp_service_busy,
	.describe = smtp_service_describe,
	.status = smtp_service_status,
	.stop = smtp_service_stop,
};
