/* mr-crm-workflow.h - workflows at work (issue 24): the set of workflows
 * and calendars of one value of the change counter, and what an event
 * does to their timers.
 *
 * CRM stage.  The store calls mr_crm_workflows_react() after it wrote an
 * event about a record (its event hook, mr-store-event.h), in the same
 * transaction: an --unless event cancels the record's waiting timers of
 * the workflows it names; an --on event queues a firing at once; a
 * --since event starts a timer, the one of that workflow on that record
 * starting again.  A timer's due time is counted in the record's calendar
 * (its owner's team's, else "default"); where the owner may still change
 * before the transaction ends and teams have calendars of their own, the
 * due time written is the earliest it can be, and the firing counts it
 * again (mr_crm_timer_due()) and waits on when it was early.  Firing is
 * the scheduler's (src/act/).
 *
 * Loops: an event a workflow's action made (@facts->depth above 0) starts
 * timers and firings only up to MR_WORKFLOW_MAX_DEPTH; it always cancels. */
#pragma once

#include <glib.h>

#include "mailroom/mr-calendar.h"
#include "mailroom/mr-config.h"
#include "mailroom/mr-event.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-workflow.h"

G_BEGIN_DECLS

/* How deep workflows may set each other off: an event made by a
 * workflow's action at this depth starts nothing. */
#define MR_WORKFLOW_MAX_DEPTH 3

/* The built-in acknowledgement (issue 23) as a workflow: its firings are
 * queued where a customer's mail opens a ticket, with loop protection
 * (mr_crm_apply()), not by its --on event; it is enabled, disabled and
 * its conditions and actions are changed as any workflow's. */
#define MR_WORKFLOW_TICKET_ACK "ticket-ack"

typedef struct _MrWorkflowSet MrWorkflowSet;

/* Reads the change counter, every workflow (one that no longer reads is
 * left out with a warning) and every calendar (inside the open
 * transaction, or alone).  Without a calendar "default" the records count
 * in mon-fri 09:00-17:00 in @cfg's timezone.  Returns: (transfer full):
 * the set, or NULL with @error (MR_STORE_ERROR). */
MrWorkflowSet *mr_crm_workflows_load(MrStore *store, const MrConfig *cfg, GError **error);

MrWorkflowSet *mr_workflow_set_ref(MrWorkflowSet *set);
void mr_workflow_set_unref(MrWorkflowSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrWorkflowSet, mr_workflow_set_unref)

/* Returns the change counter @set was read at (-1 for NULL). */
gint64 mr_workflow_set_version(const MrWorkflowSet *set);

/* Returns: (nullable): workflow @id of @set (enabled or not), borrowed. */
const MrWorkflow *mr_workflow_set_find(const MrWorkflowSet *set, gint64 id);

/* Returns: (nullable): workflow @name of @set, borrowed; sets @id
 * (nullable) to its id. */
const MrWorkflow *mr_workflow_set_named(const MrWorkflowSet *set, const char *name, gint64 *id);

/* Returns: the calendar record @ref counts its time in, borrowed from
 * @set: the calendar of its owner's first team that has one, else
 * "default".  A look-up that fails answers "default" and is kept for
 * mr_store_check(). */
const MrCalendar *mr_crm_record_calendar(const MrWorkflowSet *set, MrStore *store,
					 MrRecordRef ref);

/* Returns when a timer of @wf started at @started (Unix seconds) falls due
 * in @cal, or -1 when it never does (a calendar without working time). */
gint64 mr_crm_timer_due(const MrWorkflow *wf, const MrCalendar *cal, gint64 started);

/* What event @type on @ref (message @msg, 0: none) with @facts at @now
 * does to the timers of @set's enabled workflows, in the open
 * transaction.  Returns FALSE with @error. */
gboolean mr_crm_workflows_react(const MrWorkflowSet *set, MrStore *store, const char *now,
				MrEventType type, MrRecordRef ref, gint64 msg,
				const MrEventFacts *facts, GError **error);

/* --- use cases (mailroomctl), each in a transaction of its own ------------------- *
 * Every change bumps the rules' change counter, so that the daemons read
 * the workflows again before the next event they handle. */

/* Adds workflow @name made from @spec (mr_workflow_new()), or with
 * @replace puts it in place of the one of that name (its timers stay,
 * and fire as it says now; enabled or not, it stays so).  Returns FALSE
 * with @error: MR_WORKFLOW_ERROR for a bad workflow,
 * MR_CRM_ERROR_NOT_FOUND for a template, user or team its actions name
 * that is not there, MR_CRM_ERROR_EXISTS when the name is taken,
 * MR_STORE_ERROR. */
gboolean mr_crm_workflow_add(MrStore *store, const char *name, const MrWorkflowSpec *spec,
			     gboolean replace, GError **error);

/* Enables or disables workflow @name; disabling cancels its timers that
 * wait (@cancelled, nullable: how many).  Returns FALSE with @error
 * (MR_CRM_ERROR_NOT_FOUND). */
gboolean mr_crm_workflow_enable(MrStore *store, const char *name, gboolean enabled,
				guint *cancelled, GError **error);

/* Deletes workflow @name, its timers that wait cancelled first
 * (@cancelled, nullable). */
gboolean mr_crm_workflow_delete(MrStore *store, const char *name, guint *cancelled,
				GError **error);

/* Adds a task @title for user @owner (an address) about @record
 * (MR_RECORD_NONE: none), due at @due (nullable, UTC ISO-8601), with the
 * event task.created on the record.  Returns its id, or 0 with @error
 * (MR_CRM_ERROR_NOT_FOUND: no such user or record). */
gint64 mr_crm_task_add(const MrConfig *cfg, MrStore *store, const char *title, const char *owner,
		       MrRecordRef record, const char *due, GError **error);

/* Marks open task @id done, with the event task.done on its record.
 * Returns FALSE with @error (MR_CRM_ERROR_NOT_FOUND: no such task,
 * MR_CRM_ERROR_INVALID: done already). */
gboolean mr_crm_task_done(MrStore *store, gint64 id, GError **error);

/* --- the store's event hook ------------------------------------------------------ */

/* Holds the set that the event hook of one store uses. */
typedef struct _MrWorkflowHook MrWorkflowHook;

/* Makes @store's event hook mr_crm_workflows_react() with the set @hook
 * holds: the set is read when the first event needs it (in that event's
 * transaction) and again by mr_workflow_hook_refresh(); @cfg (a reference
 * is kept) gives the fallback calendar's zone.  Used by one thread, the
 * one that uses @store.  Returns:
 * (transfer full): the hook; free it (mr_workflow_hook_free() takes it
 * off @store) before @store. */
MrWorkflowHook *mr_workflow_hook_attach(MrStore *store, const MrConfig *cfg);

void mr_workflow_hook_free(MrWorkflowHook *hook);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrWorkflowHook, mr_workflow_hook_free)

/* Reads the set again when the change counter @version is not the one it
 * was read at (inside the open transaction).  Returns FALSE with @error;
 * the set read before stays. */
gboolean mr_workflow_hook_refresh(MrWorkflowHook *hook, gint64 version, GError **error);

/* Returns: (transfer full) (nullable): the set the hook uses now, read
 * when none was (then FALSE with @error when that failed). */
MrWorkflowSet *mr_workflow_hook_set(MrWorkflowHook *hook, GError **error);

G_END_DECLS
