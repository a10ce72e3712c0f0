/* mr-act-private.h - what the services of src/act/ share: waking up when
 * work may be due. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-crm-workflow.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-workflow.h"

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

/* --- a workflow's firing (mr-act-workflow.c) ------------------------------------ */

/* What a workflow's timer (MR_JOB_WORKFLOW) or the acknowledgement of a
 * ticket (MR_JOB_TICKET_ACK) does, decided in the claim's transaction
 * and written in the write's. */
typedef struct _MrFiring MrFiring;

void mr_firing_free(MrFiring *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrFiring, mr_firing_free)

typedef enum {
	MR_FIRE_GO,     /* it fires: compose its drafts, then mr_act_fire_write() */
	MR_FIRE_ENDED,  /* its job is ended here: postponed (not due yet),
			   cancelled (workflow disabled, record gone) or done
			   (its conditions do not hold) */
	MR_FIRE_FAILED, /* its job fails (@error): a template missing, a
			   record without a contact */
	MR_FIRE_ERROR,  /* the database failed (@error): undo the step */
} MrFireStep;

/* Step 1, inside the claim's transaction of @store: decides what job @job
 * (claimed under @claim) does at @now with the workflows @set, its
 * record's fields read already when @fetched (@fields, transfer full:
 * NULL when the record is gone; mr_store_records_fields()), else read
 * here.  With MR_FIRE_GO sets @out (transfer full). */
MrFireStep mr_act_fire_prepare(MrStore *store, const MrConfig *cfg, const MrWorkflowSet *set,
			       const MrJobClaimed *job, const char *claim, const char *now,
			       gboolean fetched, MrRecordFields *fields, MrFiring **out,
			       GError **error);

/* Returns the workflow @f is a firing of (its count of firings is the
 * caller's: mr_store_workflow_fired()). */
gint64 mr_firing_workflow(const MrFiring *f);

/* Returns: (element-type MrOutgoingDraft) (transfer none): the mails of
 * @f, to compose (mr_outgoing_compose()) and write before
 * mr_act_fire_write(). */
GPtrArray *mr_firing_drafts(MrFiring *f);

/* Step 3, inside the write's transaction: the changes @f makes to its
 * record (owner, fields, tasks) with their events and its next timer
 * (--repeat).  Returns FALSE with @error. */
gboolean mr_act_fire_write(MrStore *store, MrFiring *f, const char *now, GError **error);

G_END_DECLS
