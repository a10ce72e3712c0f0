/* mr-store-workflow.h - the store's workflows (issue 24): the workflows by
 * name, their timers (jobs of kind "workflow"), and tasks.
 *
 * Row-level primitives that decide nothing: whether a workflow makes sense
 * is mr_workflow_new()'s question (mr-workflow.h), asked before it is
 * written; which timers an event starts is the CRM layer's
 * (mr-crm-workflow.c).  Row writes run inside the open transaction
 * (mr_store_run()); @now is UTC ISO-8601. */
#pragma once

#include <glib.h>

#include "mailroom/mr-record.h"
#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* The kind of job a workflow's timer is (job.kind). */
#define MR_JOB_WORKFLOW "workflow"

/* --- workflows ---------------------------------------------------------------- */

/* A workflow as the store keeps it: canonical texts (mr-workflow.h). */
typedef struct {
	const char *name;
	gboolean enabled;
	const char *trigger;       /* mr_workflow_trigger_text() */
	const char *event;         /* the --on or --since event's name */
	gboolean timer;            /* --after ... (else --on) */
	const char *conditions;    /* the --if texts, one per line ("": none) */
	const char *actions;       /* the --then texts, one per line */
	const char *const *unless; /* (nullable) NULL-terminated event names */
} MrWorkflowNew;

/* Returns the id of workflow @name, or 0 when there is none. */
gint64 mr_store_workflow_id(MrStore *store, const char *name);

/* Writes workflow @wf: a new one, or (@replace) over the one of that
 * name, keeping its id, its count of firings and whether it is enabled.  Returns its id; 0
 * without @error when the name is taken and @replace is FALSE; 0 with
 * @error. */
gint64 mr_store_workflow_put(MrStore *store, const MrWorkflowNew *wf, gboolean replace,
			     const char *now, GError **error);

/* Enables or disables workflow @id.  Returns FALSE with @error. */
gboolean mr_store_workflow_set_enabled(MrStore *store, gint64 id, gboolean enabled,
				       const char *now, GError **error);

/* Cancels the timers of workflow @id that wait (due); a running one sees
 * the workflow disabled when it fires.  Sets @count (nullable) to how
 * many.  Returns FALSE with @error. */
gboolean mr_store_workflow_cancel_timers(MrStore *store, gint64 id, const char *now,
					 guint *count, GError **error);

/* Deletes workflow @id (its timers keep their rows, without it). */
gboolean mr_store_workflow_delete(MrStore *store, gint64 id, GError **error);

/* Adds @n to the firings of workflow @id. */
gboolean mr_store_workflow_fired(MrStore *store, gint64 id, gint64 n, GError **error);

/* `workflow list --json`: {name trigger enabled fired pending}, and for
 * `workflow show` the conditions and actions (one text each) and times.
 * pending: its timers that wait now (due or running). */
typedef struct {
	gint64 id;
	char *name;
	char *trigger;
	gboolean enabled;
	gint64 fired;
	gint64 pending;
	GStrv conditions;
	GStrv actions;
	char *created;
	char *updated;
} MrWorkflowRow;

MR_ROW_DECLARE(MrWorkflowRow, mr_workflow_row_desc, mr_workflow_row_free)

/* Returns: (transfer full) (element-type MrWorkflowRow): every workflow,
 * by name, or NULL with @error. */
GPtrArray *mr_store_workflows(MrStore *store, GError **error);

/* Returns: (transfer full): workflow @name, or NULL with @error
 * (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrWorkflowRow *mr_store_workflow_get(MrStore *store, const char *name, GError **error);

/* What the workflows' engine reads of every workflow (the set of one value
 * of the rules' change counter): the canonical texts and the unless
 * events (one per line). */
typedef struct {
	gint64 id;
	char *name;
	gboolean enabled;
	char *trigger;
	GStrv conditions;
	GStrv actions;
} MrWorkflowDef;

MR_ROW_DECLARE(MrWorkflowDef, mr_workflow_def_desc, mr_workflow_def_free)

/* Returns: (transfer full) (element-type MrWorkflowDef): every workflow,
 * by id, or NULL with @error. */
GPtrArray *mr_store_workflow_defs(MrStore *store, GError **error);

/* --- timers -------------------------------------------------------------------- */

/* A timer to start: a job of kind MR_JOB_WORKFLOW. */
typedef struct {
	gint64 workflow;
	MrRecordRef record;
	gint64 message;       /* the event's message, 0: none */
	const char *started;  /* when its event happened */
	const char *due;      /* when it falls due (maybe early: it is counted
				 again then) */
	int round;            /* the firings before it */
	int depth;            /* the workflows that acted before its event */
	gboolean restart;     /* a timer of that workflow waiting on that record
				 ends first: the clock starts again */
} MrTimerNew;

/* Starts timer @t at @now; sent ahead on PostgreSQL (mr_store_check()).
 * Returns FALSE with @error. */
gboolean mr_store_timer_start(MrStore *store, const MrTimerNew *t, const char *now,
			      GError **error);

/* Cancels the timers on @record of every workflow that --unless @event
 * names (due ones; a running one is left to end); sent ahead on
 * PostgreSQL. */
gboolean mr_store_timers_cancel(MrStore *store, const char *event, MrRecordRef record,
				const char *now, GError **error);

/* Puts job @id, claimed under @claim, back to due at @due, this attempt
 * not counted (its time had not come).  Sets @ours (nullable) FALSE when
 * the claim no longer held.  Returns FALSE with @error. */
gboolean mr_store_job_postpone(MrStore *store, gint64 id, const char *claim, const char *due,
			       const char *now, gboolean *ours, GError **error);

/* The last timer of workflow @workflow on @record started (for the
 * first-response SLA of `ticket list/show`): sets @started (transfer
 * full) to when it started and @status (transfer full) to its job
 * status, both NULL when it has none.  Returns FALSE with @error. */
gboolean mr_store_record_timer(MrStore *store, gint64 workflow, MrRecordRef record,
			       char **started, char **status, GError **error);

/* --- what a firing reads ------------------------------------------------------- */

/* Returns the calendar of the first team (by id) of user @user that has
 * one, or 0 (none, or the look-up failed: mr_store_check()). */
gint64 mr_store_user_calendar(MrStore *store, gint64 user);

/* Sets @email and @name (transfer full; @name nullable) of user @id.
 * Returns FALSE when there is no such user (or the look-up failed:
 * mr_store_check()). */
gboolean mr_store_user_mailbox_by_id(MrStore *store, gint64 id, char **email, char **name);

/* Returns the lead of team @name, or 0 (no such team, no lead, or the
 * look-up failed: mr_store_check()). */
gint64 mr_store_team_lead(MrStore *store, const char *name);

/* Returns the lead of the first team (by id) of user @user that has a
 * lead other than @user, or 0. */
gint64 mr_store_user_team_lead(MrStore *store, gint64 user);

/* A record's fields, for a workflow's conditions and actions. */
typedef struct {
	char *status;
	char *priority;    /* (nullable) */
	char *type;        /* (nullable) tickets */
	char *stage;       /* (nullable) opportunities */
	gboolean has_value;
	gint64 value;      /* opportunities */
	gint64 owner;      /* 0: none */
	char *owner_email; /* (nullable) */
	GStrv tags;        /* never NULL; empty unless asked for */
	char *title;       /* a ticket's subject, a lead's or opportunity's title */
	gint64 last_person; /* the last message a person wrote on it (ours or
			       the contact's, never an automatic one), 0: none */
} MrRecordFields;

void mr_record_fields_free(MrRecordFields *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRecordFields, mr_record_fields_free)

/* Returns: (transfer full): the fields of @ref, its tags only with
 * @tags (a look-up more), or NULL with @error (MR_STORE_ERROR_NOT_FOUND
 * when it is gone). */
MrRecordFields *mr_store_record_fields(MrStore *store, MrRecordRef ref, gboolean tags,
				       GError **error);

/* mr_store_record_fields() of the @n records @refs at once, without
 * their tags, one look-up per MR_STORE_SLOTS records, the last mail a
 * person wrote at or before @now: fills @out[i] (transfer full), NULL
 * for a record that is gone.  Returns FALSE with @error. */
gboolean mr_store_records_fields(MrStore *store, const MrRecordRef *refs, guint n,
				 const char *now, MrRecordFields **out, GError **error);

/* Sets a lead's priority, an opportunity's stage or value (@value a
 * whole number >= 0): @field "priority", "stage" or "value".  Returns
 * FALSE with @error. */
gboolean mr_store_record_set_field(MrStore *store, MrRecordRef ref, const char *field,
				   const char *value, GError **error);

/* Returns TRUE when stored message @id is an automatic one (an
 * auto-reply, a bounce, list mail: auto_kind), FALSE when not or when the
 * look-up failed (mr_store_check()). */
gboolean mr_store_message_is_auto(MrStore *store, gint64 id);

/* Returns: (transfer full) (nullable): when the first event @type on
 * @record at or after @since happened, or NULL (none, or the look-up
 * failed: mr_store_check()). */
char *mr_store_record_first_event(MrStore *store, MrRecordRef record, const char *type,
				  const char *since);

/* --- tasks ---------------------------------------------------------------------- */

#define MR_TASK_OPEN "open"
#define MR_TASK_DONE "done"

/* Adds a task @title for user @owner about @record (MR_RECORD_NONE:
 * none), due at @due (nullable), made by workflow @workflow (0: a
 * person).  Returns its id, or 0 with @error. */
gint64 mr_store_task_insert(MrStore *store, const char *title, gint64 owner, MrRecordRef record,
			    const char *due, gint64 workflow, const char *now, GError **error);

/* Marks open task @id done at @now.  Returns TRUE when it changed; FALSE
 * without @error when it is done already or missing. */
gboolean mr_store_task_done(MrStore *store, gint64 id, const char *now, GError **error);

/* `task list --json`: {id title owner record due status}, with when it
 * was made and done. */
typedef struct {
	gint64 id;
	char *title;
	char *owner;       /* the owner's address */
	MrRecordRef record;
	char *due;         /* (nullable) */
	char *status;      /* MR_TASK_OPEN or MR_TASK_DONE */
	char *created;
	char *done;        /* (nullable) */
} MrTaskRow;

MR_ROW_DECLARE(MrTaskRow, mr_task_row_desc, mr_task_row_free)

/* Returns: (transfer full) (element-type MrTaskRow): the tasks, by due
 * time (none last) then id; of @owner (an address, nullable: anyone's),
 * only open ones with @open, only open ones due before @overdue_at
 * (nullable).  NULL with @error. */
GPtrArray *mr_store_tasks(MrStore *store, const char *owner, gboolean open,
			  const char *overdue_at, GError **error);

/* Returns: (transfer full): task @id, or NULL with @error
 * (MR_STORE_ERROR_NOT_FOUND). */
MrTaskRow *mr_store_task_get(MrStore *store, gint64 id, GError **error);

G_END_DECLS
