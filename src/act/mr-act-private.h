/* mr-act-private.h - what the services of src/act/ share: waking up when
 * work may be due. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"

G_BEGIN_DECLS

typedef struct _MrWake MrWake;

/* Called on the main context when work may be due: the timer set with
 * mr_wake_arm() ran out, or another connection committed work. */
typedef void (*MrWakeFunc)(gpointer data);

/* Watches the database of @cfg for work committed by other connections
 * (a connection of its own: LISTEN on PostgreSQL; PRAGMA data_version
 * once a second on SQLite) and calls @func with @data on the default main
 * context when it sees some.  A watcher that fails is opened again every
 * five seconds; meanwhile @func is called as often.  Returns: (transfer
 * full): the wake, or NULL with @error (the database cannot be opened). */
MrWake *mr_wake_new(const MrConfig *cfg, MrWakeFunc func, gpointer data, GError **error);

/* Sets the one timer to @due (UTC ISO-8601 of the clock, mr-clock.h;
 * NULL: none), replacing the last; one in the past fires at once.  At
 * most an hour ahead: then it fires to look again. */
void mr_wake_arm(MrWake *w, const char *due);

/* Arms the timer @seconds from now (a retry after a failure). */
void mr_wake_arm_in(MrWake *w, guint seconds);

/* Frees @w: its timer, its watcher and their sources.  NULL-safe. */
void mr_wake_free(MrWake *w);

/* Returns: (transfer full): @now plus @seconds, UTC ISO-8601 ("...Z"); NULL when
 * @now does not read. */
char *mr_act_iso_add(const char *now, gint64 seconds);

/* Returns: (transfer full): a claim id unique to this process and call:
 * "HOST:PID:N". */
char *mr_act_claim_id(const MrConfig *cfg);

G_END_DECLS
