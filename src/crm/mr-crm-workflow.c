/* mr-crm-workflow.c - workflows at work: the set of one change counter,
 * the record's calendar, and what an event does to the timers (see
 * mr-crm-workflow.h).
 *
 * CRM stage.  Decides which timers start and stop; the store writes them. */
#define G_LOG_DOMAIN "mailroom-crm"

#include "mailroom/mr-clock.h"
#include "mailroom/mr-crm.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-crm-workflow.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-team.h"
#include "mailroom/mr-store-calendar.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-record.h"
#include "mailroom/mr-store-rule.h"
#include "mailroom/mr-store-workflow.h"

G_STATIC_ASSERT(MR_EVENT_N <= 64);

#define EVENT_BIT(type) (G_GUINT64_CONSTANT(1) << (guint)(type))

typedef struct {
	gint64 id;
	MrWorkflow *wf;
} Entry;

struct _MrWorkflowSet {
	gatomicrefcount rc;
	gint64 version;
	GArray *entries;        /* Entry, by id */
	guint64 starts;         /* the events an enabled workflow waits for */
	guint64 cancels;        /* the events an enabled workflow's --unless names */
	GHashTable *calendars;  /* calendar id (gint64 *) -> MrCalendar * */
	MrCalendar *fallback;   /* "default", or the built-in one when missing */
	gboolean team_calendars; /* some team has a calendar of its own */
};

static void
entry_clear(gpointer p)
{
	mr_workflow_free(((Entry *)p)->wf);
}

MrWorkflowSet *
mr_workflow_set_ref(MrWorkflowSet *set)
{
	g_atomic_ref_count_inc(&set->rc);
	return set;
}

void
mr_workflow_set_unref(MrWorkflowSet *set)
{
	if (set == NULL || !g_atomic_ref_count_dec(&set->rc))
		return;
	g_array_unref(set->entries);
	g_hash_table_unref(set->calendars);
	g_free(set);
}

gint64
mr_workflow_set_version(const MrWorkflowSet *set)
{
	return set != NULL ? set->version : -1;
}

const MrWorkflow *
mr_workflow_set_find(const MrWorkflowSet *set, gint64 id)
{
	guint lo = 0, hi;

	if (set == NULL)
		return NULL;
	hi = set->entries->len;
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		const Entry *e = &g_array_index(set->entries, Entry, mid);

		if (e->id == id)
			return e->wf;
		if (e->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const MrWorkflow *
mr_workflow_set_named(const MrWorkflowSet *set, const char *name, gint64 *id)
{
	for (guint i = 0; set != NULL && i < set->entries->len; i++) {
		const Entry *e = &g_array_index(set->entries, Entry, i);

		if (g_strcmp0(e->wf->name, name) == 0) {
			if (id != NULL)
				*id = e->id;
			return e->wf;
		}
	}
	return NULL;
}

/* Reads the calendars into @set. */
static gboolean
load_calendars(MrWorkflowSet *set, MrStore *store, const MrConfig *cfg, GError **error)
{
	g_autoptr(GPtrArray) rows = mr_store_calendars(store, error);

	if (rows == NULL)
		return FALSE;
	for (guint i = 0; i < rows->len; i++) {
		const MrCalendarRow *row = g_ptr_array_index(rows, i);
		g_autoptr(GError) local = NULL;
		MrCalendar *cal = mr_calendar_new(row->zone, row->hours,
						  (const char *const *)row->holidays, &local);
		gint64 *key;

		if (cal == NULL) {
			/* a zone this machine no longer knows: its records count
			 * in "default" */
			g_warning("calendar %s: %s; left out", row->name, local->message);
			continue;
		}
		key = g_new(gint64, 1);
		*key = row->id;
		g_hash_table_insert(set->calendars, key, cal);
		if (g_strcmp0(row->name, MR_CALENDAR_DEFAULT) == 0)
			set->fallback = cal;
		else if (row->teams != NULL && row->teams[0] != NULL)
			set->team_calendars = TRUE;
	}
	if (set->fallback == NULL) {
		g_autoptr(GError) local = NULL;
		const char *zone = cfg != NULL && cfg->timezone != NULL ? cfg->timezone : "UTC";
		gint64 *key = g_new(gint64, 1);

		set->fallback = mr_calendar_new(zone, MR_CALENDAR_DEFAULT_HOURS, NULL, &local);
		if (set->fallback == NULL)
			set->fallback = mr_calendar_new("UTC", MR_CALENDAR_DEFAULT_HOURS, NULL, NULL);
		*key = 0;
		g_hash_table_insert(set->calendars, key, set->fallback);
	}
	return TRUE;
}

MrWorkflowSet *
mr_crm_workflows_load(MrStore *store, const MrConfig *cfg, GError **error)
{
	g_autoptr(MrWorkflowSet) set = g_new0(MrWorkflowSet, 1);
	g_autoptr(GPtrArray) defs = NULL;

	g_atomic_ref_count_init(&set->rc);
	set->entries = g_array_new(FALSE, FALSE, sizeof(Entry));
	g_array_set_clear_func(set->entries, entry_clear);
	set->calendars = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
					       (GDestroyNotify)mr_calendar_free);
	set->version = mr_store_rules_version(store, error);
	if (set->version < 0)
		return NULL;
	defs = mr_store_workflow_defs(store, error);
	if (defs == NULL || !load_calendars(set, store, cfg, error))
		return NULL;
	for (guint i = 0; i < defs->len; i++) {
		const MrWorkflowDef *d = g_ptr_array_index(defs, i);
		g_autoptr(GError) local = NULL;
		Entry e = { d->id, NULL };

		e.wf = mr_workflow_from_text(d->name, d->trigger, (const char *const *)d->conditions,
					     (const char *const *)d->actions, d->enabled, &local);
		if (e.wf == NULL) {
			g_warning("workflow %s no longer reads: %s; left out", d->name,
				  local->message);
			continue;
		}
		g_array_append_val(set->entries, e);
		if (!e.wf->enabled)
			continue;
		if (g_strcmp0(e.wf->name, MR_WORKFLOW_TICKET_ACK) != 0)
			set->starts |= EVENT_BIT(e.wf->event);
		for (guint k = 0; e.wf->unless != NULL && k < e.wf->unless->len; k++)
			set->cancels |= EVENT_BIT(g_array_index(e.wf->unless, MrEventType, k));
	}
	return g_steal_pointer(&set);
}

const MrCalendar *
mr_crm_record_calendar(const MrWorkflowSet *set, MrStore *store, MrRecordRef ref)
{
	gint64 owner, cal;
	const MrCalendar *c;

	if (!set->team_calendars)
		return set->fallback;
	owner = mr_store_record_owner(store, ref);
	cal = owner != 0 ? mr_store_user_calendar(store, owner) : 0;
	c = cal != 0 ? g_hash_table_lookup(set->calendars, &cal) : NULL;
	return c != NULL ? c : set->fallback;
}

gint64
mr_crm_timer_due(const MrWorkflow *wf, const MrCalendar *cal, gint64 started)
{
	if (wf->kind != MR_WORKFLOW_TIMER)
		return started;
	return mr_calendar_add(cal, started, &wf->after, wf->business);
}

/* The earliest a timer of @wf started at @started can fall due in any
 * calendar of @set: the record's owner may still change before the
 * transaction ends, and with it the calendar.  -1: in none. */
static gint64
timer_earliest(const MrWorkflowSet *set, const MrWorkflow *wf, gint64 started)
{
	GHashTableIter it;
	gpointer cal;
	gint64 min = -1;

	g_hash_table_iter_init(&it, set->calendars);
	while (g_hash_table_iter_next(&it, NULL, &cal)) {
		gint64 due = mr_crm_timer_due(wf, cal, started);

		if (due >= 0 && (min < 0 || due < min))
			min = due;
	}
	return min;
}

/* Starts the timer or queues the firing of workflow @e for event @type on
 * @ref. */
static gboolean
start(const MrWorkflowSet *set, MrStore *store, const Entry *e, const char *now,
      MrEventType type, MrRecordRef ref, gint64 msg, int depth, GError **error)
{
	const MrWorkflow *wf = e->wf;
	g_autofree char *due = NULL;
	MrTimerNew t = { 0 };
	gint64 started = mr_clock_iso_to_unix(now), at;

	t.workflow = e->id;
	t.record = ref;
	t.message = msg;
	t.started = now;
	t.depth = depth + 1;
	/* a record's first event has no timer of its own before it */
	t.restart = wf->kind == MR_WORKFLOW_TIMER && type != MR_EVENT_TICKET_CREATED &&
		    type != MR_EVENT_LEAD_CREATED && type != MR_EVENT_OPPORTUNITY_CREATED;
	if (wf->kind == MR_WORKFLOW_ON) {
		t.due = now;
		return mr_store_timer_start(store, &t, now, error);
	}
	/* where every record counts in one calendar, the due time is known
	 * now; else the owner may change before this transaction ends */
	if (!set->team_calendars)
		at = mr_crm_timer_due(wf, set->fallback, started);
	else
		at = timer_earliest(set, wf, started);
	if (at < 0) {
		g_warning("workflow %s: a calendar without working time: no timer on %s %"
			  G_GINT64_FORMAT, wf->name, mr_record_kind_name(ref.kind), ref.id);
		return TRUE;
	}
	due = mr_clock_unix_to_iso(at);
	if (due == NULL)
		return TRUE;
	t.due = due;
	return mr_store_timer_start(store, &t, now, error);
}

/* Whether @wf's conditions on the kind of record can hold for a record of
 * @kind: a record keeps its kind, so what they say when the timer fires
 * they say now, and a timer that could only end in nothing is not
 * started (a follow-up of opportunities on every answered ticket). */
static gboolean
kind_may_hold(const MrWorkflow *wf, MrRecordKind kind)
{
	MrRuleValues v = { 0 };

	v.record = mr_record_kind_name(kind);
	for (guint i = 0; i < wf->conds->len; i++) {
		const MrRuleCond *c = g_ptr_array_index(wf->conds, i);

		if (c->field == MR_RULE_FIELD_RECORD && !mr_rule_cond_eval(c, &v, NULL))
			return FALSE;
	}
	return TRUE;
}

gboolean
mr_crm_workflows_react(const MrWorkflowSet *set, MrStore *store, const char *now,
		       MrEventType type, MrRecordRef ref, gint64 msg, const MrEventFacts *facts,
		       GError **error)
{
	int depth = facts != NULL ? facts->depth : 0;

	if (set == NULL || ref.kind == MR_RECORD_NONE || type <= MR_EVENT_OTHER ||
	    type >= MR_EVENT_N)
		return TRUE;
	if ((set->cancels & EVENT_BIT(type)) &&
	    !mr_store_timers_cancel(store, mr_event_type_name(type), ref, now, error))
		return FALSE;
	if (!(set->starts & EVENT_BIT(type)))
		return TRUE;
	if (depth >= MR_WORKFLOW_MAX_DEPTH) {
		g_info("%s on %s %" G_GINT64_FORMAT ": %d workflows acted before it; it starts no"
		       " more", mr_event_type_name(type), mr_record_kind_name(ref.kind), ref.id,
		       depth);
		return TRUE;
	}
	for (guint i = 0; i < set->entries->len; i++) {
		const Entry *e = &g_array_index(set->entries, Entry, i);

		if (!e->wf->enabled || e->wf->event != type ||
		    g_strcmp0(e->wf->name, MR_WORKFLOW_TICKET_ACK) == 0 ||
		    !kind_may_hold(e->wf, ref.kind))
			continue;
		if (!start(set, store, e, now, type, ref, msg, depth, error))
			return FALSE;
	}
	return TRUE;
}

/* --- the store's event hook ---------------------------------------------------------- */

struct _MrWorkflowHook {
	MrStore *store;
	MrConfig *cfg;
	MrWorkflowSet *set; /* (nullable): read when first needed */
};

static gboolean
hook_react(MrStore *store, const char *now, MrEventType type, MrRecordRef ref, gint64 msg,
	   const MrEventFacts *facts, gpointer data, GError **error)
{
	MrWorkflowHook *hook = data;
	g_autoptr(MrWorkflowSet) set = mr_workflow_hook_set(hook, error);

	return set != NULL && mr_crm_workflows_react(set, store, now, type, ref, msg, facts, error);
}

MrWorkflowHook *
mr_workflow_hook_attach(MrStore *store, const MrConfig *cfg)
{
	MrWorkflowHook *hook = g_new0(MrWorkflowHook, 1);

	hook->store = store;
	hook->cfg = mr_config_ref((MrConfig *)cfg);
	mr_store_set_event_hook(store, hook_react, hook);
	return hook;
}

void
mr_workflow_hook_free(MrWorkflowHook *hook)
{
	if (hook == NULL)
		return;
	mr_store_set_event_hook(hook->store, NULL, NULL);
	mr_workflow_set_unref(hook->set);
	mr_config_unref(hook->cfg);
	g_free(hook);
}

gboolean
mr_workflow_hook_refresh(MrWorkflowHook *hook, gint64 version, GError **error)
{
	MrWorkflowSet *set;

	if (hook->set != NULL && hook->set->version == version)
		return TRUE;
	set = mr_crm_workflows_load(hook->store, hook->cfg, error);
	if (set == NULL)
		return FALSE;
	mr_workflow_set_unref(hook->set);
	hook->set = set;
	return TRUE;
}

MrWorkflowSet *
mr_workflow_hook_set(MrWorkflowHook *hook, GError **error)
{
	if (hook->set == NULL) {
		hook->set = mr_crm_workflows_load(hook->store, hook->cfg, error);
		if (hook->set == NULL)
			return NULL;
	}
	return mr_workflow_set_ref(hook->set);
}

/* --- use cases ---------------------------------------------------------------------- */

/* Writes @wf (made and checked); with @replace over one of its name.
 * Returns its id; 0 without @error when the name is taken. */
static gint64
workflow_write(MrStore *store, const MrWorkflow *wf, gboolean replace, GError **error)
{
	g_autofree char *now = mr_clock_now_iso();
	g_autofree char *trigger = mr_workflow_trigger_text(wf);
	g_autoptr(GString) conds = g_string_new(NULL);
	g_autoptr(GString) actions = g_string_new(NULL);
	g_autoptr(GPtrArray) unless = g_ptr_array_new();
	MrWorkflowNew n = { 0 };

	for (guint i = 0; i < wf->conds->len; i++) {
		g_autofree char *t = mr_rule_cond_text(g_ptr_array_index(wf->conds, i));

		g_string_append_printf(conds, "%s%s", i > 0 ? "\n" : "", t);
	}
	for (guint i = 0; i < wf->actions->len; i++) {
		g_autofree char *t = mr_workflow_action_text(g_ptr_array_index(wf->actions, i));

		g_string_append_printf(actions, "%s%s", i > 0 ? "\n" : "", t);
	}
	for (guint i = 0; wf->unless != NULL && i < wf->unless->len; i++)
		g_ptr_array_add(unless,
				(gpointer)mr_event_type_name(g_array_index(wf->unless, MrEventType, i)));
	g_ptr_array_add(unless, NULL);
	n.name = wf->name;
	n.enabled = wf->enabled;
	n.trigger = trigger;
	n.event = mr_event_type_name(wf->event);
	n.timer = wf->kind == MR_WORKFLOW_TIMER;
	n.conditions = conds->str;
	n.actions = actions->str;
	n.unless = (const char *const *)unless->pdata;
	return mr_store_workflow_put(store, &n, replace, now, error);
}

typedef struct {
	const MrWorkflow *wf;
	gboolean replace;
	const char *name;
	gboolean enabled;
	guint cancelled;
} WorkflowChange;

/* Checks that what the actions of @wf name is there: a template, a user,
 * a team.  Returns FALSE with @error (MR_CRM_ERROR_NOT_FOUND, naming the
 * action) or the database's. */
static gboolean
workflow_names_exist(MrStore *store, const MrWorkflow *wf, GError **error)
{
	for (guint i = 0; i < wf->actions->len; i++) {
		const MrWorkflowAction *a = g_ptr_array_index(wf->actions, i);
		g_autofree char *text = NULL;
		const char *what = a->team ? "team" : "user";
		gboolean found = TRUE;

		if (a->kind == MR_WORKFLOW_ACT_SEND) {
			g_autoptr(GError) local = NULL;
			g_autoptr(MrTemplateRow) t = mr_store_template_get(store, a->text, &local);

			if (t == NULL && !g_error_matches(local, MR_STORE_ERROR,
							  MR_STORE_ERROR_NOT_FOUND)) {
				g_propagate_error(error, g_steal_pointer(&local));
				return FALSE;
			}
			found = t != NULL;
			what = "template";
		} else if ((a->kind == MR_WORKFLOW_ACT_REMIND || a->kind == MR_WORKFLOW_ACT_ASSIGN ||
			    a->kind == MR_WORKFLOW_ACT_ESCALATE) && a->text != NULL) {
			found = a->team ? mr_store_team_id(store, a->text) != 0
					: mr_store_user_by_address(store, a->text) != 0;
		}
		if (!mr_store_check(store, error))
			return FALSE;
		if (found)
			continue;
		text = mr_workflow_action_text(a);
		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND, "--then '%s': no %s %s", text,
			    what, a->text);
		return FALSE;
	}
	return TRUE;
}

static gboolean
workflow_add_tx(MrStore *store, gpointer data, GError **error)
{
	WorkflowChange *c = data;
	g_autoptr(GError) local = NULL;

	if (!workflow_names_exist(store, c->wf, error))
		return FALSE;
	if (workflow_write(store, c->wf, c->replace, &local) != 0)
		return mr_store_rules_bump(store, error) != 0;
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS,
		    "workflow %s exists (--replace puts the new one in its place)", c->wf->name);
	return FALSE;
}

gboolean
mr_crm_workflow_add(MrStore *store, const char *name, const MrWorkflowSpec *spec,
		    gboolean replace, GError **error)
{
	g_autoptr(MrWorkflow) wf = mr_workflow_new(name, spec, error);
	WorkflowChange c = { 0 };

	if (wf == NULL)
		return FALSE;
	c.wf = wf;
	c.replace = replace;
	return mr_store_run(store, workflow_add_tx, &c, error);
}

/* The id of workflow @name, or 0 with @error. */
static gint64
workflow_must_exist(MrStore *store, const char *name, GError **error)
{
	gint64 id = mr_store_workflow_id(store, name);

	if (id == 0 && mr_store_check(store, error))
		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND, "no workflow %s", name);
	return id;
}

static gboolean
workflow_enable_tx(MrStore *store, gpointer data, GError **error)
{
	WorkflowChange *c = data;
	g_autofree char *now = mr_clock_now_iso();
	gint64 id = workflow_must_exist(store, c->name, error);

	c->cancelled = 0;
	return id != 0 && mr_store_rules_bump(store, error) != 0 &&
	       mr_store_workflow_set_enabled(store, id, c->enabled, now, error) &&
	       (c->enabled || mr_store_workflow_cancel_timers(store, id, now, &c->cancelled, error));
}

gboolean
mr_crm_workflow_enable(MrStore *store, const char *name, gboolean enabled, guint *cancelled,
		       GError **error)
{
	WorkflowChange c = { .name = name, .enabled = enabled };

	if (!mr_store_run(store, workflow_enable_tx, &c, error))
		return FALSE;
	if (cancelled != NULL)
		*cancelled = c.cancelled;
	return TRUE;
}

static gboolean
workflow_delete_tx(MrStore *store, gpointer data, GError **error)
{
	WorkflowChange *c = data;
	g_autofree char *now = mr_clock_now_iso();
	gint64 id = workflow_must_exist(store, c->name, error);

	c->cancelled = 0;
	return id != 0 && mr_store_rules_bump(store, error) != 0 &&
	       mr_store_workflow_cancel_timers(store, id, now, &c->cancelled, error) &&
	       mr_store_workflow_delete(store, id, error);
}

gboolean
mr_crm_workflow_delete(MrStore *store, const char *name, guint *cancelled, GError **error)
{
	WorkflowChange c = { .name = name };

	if (!mr_store_run(store, workflow_delete_tx, &c, error))
		return FALSE;
	if (cancelled != NULL)
		*cancelled = c.cancelled;
	return TRUE;
}

typedef struct {
	const MrConfig *cfg;
	const char *title;
	const char *owner;
	MrRecordRef record;
	const char *due;
	gint64 id;
} TaskAdd;

static gboolean
task_add_tx(MrStore *store, gpointer data, GError **error)
{
	TaskAdd *t = data;
	g_autofree char *now = mr_clock_now_iso();
	gint64 owner = mr_store_user_by_address(store, t->owner);
	MrEventFacts facts = { .detail = (char *)t->title };

	if (owner == 0) {
		if (mr_store_check(store, error))
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND, "no user %s",
				    t->owner);
		return FALSE;
	}
	if (t->record.kind != MR_RECORD_NONE && !mr_store_record_exists(store, t->record, NULL)) {
		g_autofree char *id = mr_record_display_id(t->cfg, t->record);

		if (mr_store_check(store, error))
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND, "no record %s", id);
		return FALSE;
	}
	t->id = mr_store_task_insert(store, t->title, owner, t->record, t->due, 0, now, error);
	return t->id != 0 && (t->record.kind == MR_RECORD_NONE ||
			      mr_store_event_add(store, now, MR_EVENT_TASK_CREATED, t->record, 0,
						 &facts, error));
}

gint64
mr_crm_task_add(const MrConfig *cfg, MrStore *store, const char *title, const char *owner,
		MrRecordRef record, const char *due, GError **error)
{
	TaskAdd t = { cfg, title, owner, record, due, 0 };

	return mr_store_run(store, task_add_tx, &t, error) ? t.id : 0;
}

static gboolean
task_done_tx(MrStore *store, gpointer data, GError **error)
{
	gint64 *id = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autoptr(GError) local = NULL;
	g_autoptr(MrTaskRow) task = mr_store_task_get(store, *id, &local);
	MrEventFacts facts = { 0 };

	if (task == NULL) {
		if (g_error_matches(local, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND))
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND,
				    "no task %" G_GINT64_FORMAT, *id);
		else
			g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (!mr_store_task_done(store, *id, now, &local)) {
		if (local != NULL)
			g_propagate_error(error, g_steal_pointer(&local));
		else
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID,
				    "task %" G_GINT64_FORMAT " is done already", *id);
		return FALSE;
	}
	facts.detail = task->title;
	return task->record.kind == MR_RECORD_NONE ||
	       mr_store_event_add(store, now, MR_EVENT_TASK_DONE, task->record, 0, &facts, error);
}

gboolean
mr_crm_task_done(MrStore *store, gint64 id, GError **error)
{
	return mr_store_run(store, task_done_tx, &id, error);
}
