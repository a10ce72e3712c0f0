/* mr-service.h - what mailroomd runs, as a list of services.
 *
 * Each door or worker of the daemon (the SMTP/LMTP listeners today; the
 * IMAP poller, the scheduler and the outbox next) is a service with the
 * same life: start with a configuration and the writer, take a new
 * configuration on SIGHUP, drain on SIGTERM (no new work; what is in hand
 * is finished), and stop.  mailroomd.c knows the list, not the details. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-writer.h"

G_BEGIN_DECLS

typedef struct {
	const char *name; /* "smtp", for the logs */
	/* The exit code when start fails (EX_UNAVAILABLE for a port). */
	int start_failure_exit;
	/* Starts the service on the default main context.  Returns:
	 * (transfer full) (nullable): its state, or NULL with @error. */
	gpointer (*start)(MrConfig *cfg, MrWriter *writer, GError **error);
	/* Takes @cfg (referenced by the service as it needs) after a reload;
	 * logs what only a restart changes (@old is the running one). */
	void (*reload)(gpointer self, const MrConfig *old, MrConfig *cfg);
	/* Stops taking new work; what is in hand goes on. */
	void (*drain)(gpointer self);
	/* Returns the work in hand (sessions, fetches): 0 when drained. */
	guint (*busy)(gpointer self);
	/* Returns: (transfer full): where it listens or what it watches, for
	 * the start-up log line. */
	char *(*describe)(gpointer self);
	/* Returns: (transfer full): a few words for systemd's STATUS=. */
	char *(*status)(gpointer self);
	/* Frees @self; closes what is still open.  NULL-safe. */
	void (*stop)(gpointer self);
} MrServiceClass;

/* The SMTP and LMTP listeners (mr-smtp-service.c). */
extern const MrServiceClass mr_smtp_service;

G_END_DECLS
