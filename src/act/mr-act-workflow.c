/* mr-act-workflow.c - a workflow's firing: when its timer falls due, what
 * it does (see mr-act-private.h).
 *
 * Act stage.  Step 1 reads and decides, in the transaction that claimed
 * the job: whether the workflow still exists and is enabled, whether the
 * timer's due time, counted again in the record's calendar of now, has
 * come (else the job waits on), whether the conditions hold for the
 * record as it is now, and what each action does (the mails are prepared
 * here and composed on the pool).  Step 3 writes the rest in the
 * transaction of the mails: owner, fields, tasks and their events (at the
 * job's depth, mr-crm-workflow.h), the next timer of --repeat, the count. */
#define G_LOG_DOMAIN "mailroom-scheduler"

#include "mailroom/mr-clock.h"
#include "mailroom/mr-crm.h"
#include "mailroom/mr-outgoing.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-status.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "mailroom/mr-store-workflow.h"
#include "mailroom/mr-template.h"
#include "mr-act-private.h"

/* The templates of remind and escalate. */
#define TEMPLATE_REMINDER MR_TEMPLATE_REMINDER_NAME
#define TEMPLATE_ESCALATION MR_TEMPLATE_ESCALATION_NAME

typedef enum {
	FX_OWNER,      /* @user */
	FX_OWNER_TEAM, /* @text: the team, its next member's turn */
	FX_STATUS,     /* @text, from @old */
	FX_PRIORITY,   /* @text */
	FX_TYPE,       /* @text */
	FX_STAGE,      /* @text */
	FX_VALUE,      /* @text */
	FX_TAG,        /* @text */
	FX_ESCALATE,   /* @user (0: keeps the owner), @address, priority @old -> @text */
	FX_TASK,       /* @user, @text the title, @due */
	FX_HELD,       /* a mail not sent: @text why, @address the template */
} FxKind;

typedef struct {
	FxKind kind;
	gint64 user;
	char *text;
	char *old;
	char *address;
	char *due;
} Effect;

struct _MrFiring {
	gint64 workflow;
	char *name;
	MrRecordRef record;
	int depth;           /* of the events it writes */
	gboolean timer;      /* a timer of the workflow (else the ack) */
	gboolean answers_auto; /* an --on workflow's event came with an
				  automatic mail: it sends nothing */
	GArray *effects;     /* Effect */
	GPtrArray *drafts;   /* MrOutgoingDraft* */
	char *next_due;      /* (nullable) --repeat: the next timer */
	char *next_started;
	int next_round;
};

static void
effect_clear(gpointer p)
{
	Effect *e = p;

	g_free(e->text);
	g_free(e->old);
	g_free(e->address);
	g_free(e->due);
}

void
mr_firing_free(MrFiring *f)
{
	if (f == NULL)
		return;
	g_free(f->name);
	g_array_unref(f->effects);
	g_ptr_array_unref(f->drafts);
	g_free(f->next_due);
	g_free(f->next_started);
	g_free(f);
}

GPtrArray *
mr_firing_drafts(MrFiring *f)
{
	return f->drafts;
}

/* A user to write to and give work to. */
typedef struct {
	gint64 id;
	char *email;
	char *name;
} Person;

static void
person_clear(Person *p)
{
	g_free(p->email);
	g_free(p->name);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Person, person_clear)

/* Fills @p with user @id; FALSE when there is none. */
static gboolean
person_by_id(MrStore *store, gint64 id, Person *p)
{
	p->id = id;
	return id != 0 && mr_store_user_mailbox_by_id(store, id, &p->email, &p->name);
}

/* The user an action names: an address, a team (its lead), or (NULL) the
 * default @dflt; then workflows.unowned.  FALSE when nobody is there. */
static gboolean
person_for(MrStore *store, const MrConfig *cfg, const char *text, gboolean team, gint64 dflt,
	   Person *p)
{
	gint64 id = dflt;

	if (text != NULL)
		id = team ? mr_store_team_lead(store, text) : mr_store_user_by_address(store, text);
	if (id == 0 && cfg->workflows.unowned != NULL)
		id = mr_store_user_by_address(store, cfg->workflows.unowned);
	return person_by_id(store, id, p);
}

/* Ends @job here with @status and @note. */
static MrFireStep
end_job(MrStore *store, const MrJobClaimed *job, const char *claim, const char *status,
	const char *note, const char *now, GError **error)
{
	g_debug("job %" G_GINT64_FORMAT ": %s (%s)", job->id, status, note);
	if (!mr_store_job_finish(store, job->id, claim, status, note, NULL, now, NULL, error))
		return MR_FIRE_ERROR;
	return MR_FIRE_ENDED;
}

/* Prepares a mail of @f from @template to @to (NULL: the record's
 * contact), answering @answers. */
static MrFireStep
add_mail(MrStore *store, const MrConfig *cfg, MrFiring *f, const char *template,
	 const Person *to, gint64 answers, MrComposeKind kind, GError **error)
{
	MrOutgoingRequest req = { 0 };
	g_autoptr(GError) local = NULL;
	MrOutgoingDraft *d;

	req.record = f->record;
	req.answers = answers;
	req.template_name = template;
	req.kind = kind;
	req.from_owner = to == NULL && f->timer;
	req.depth = f->depth;
	if (to != NULL) {
		req.to_user = to->id;
		req.to_email = to->email;
		req.to_name = to->name;
	}
	d = mr_outgoing_prepare(store, cfg, &req, &local);
	if (d != NULL) {
		g_ptr_array_add(f->drafts, d);
		return MR_FIRE_GO;
	}
	g_propagate_error(error, g_steal_pointer(&local));
	return (*error)->domain == MR_STORE_ERROR && (*error)->code != MR_STORE_ERROR_NOT_FOUND
		       ? MR_FIRE_ERROR
		       : MR_FIRE_FAILED;
}

static Effect *
add_effect(MrFiring *f, FxKind kind, gint64 user, const char *text)
{
	Effect e = { kind, user, g_strdup(text), NULL, NULL, NULL };

	g_array_append_val(f->effects, e);
	return &g_array_index(f->effects, Effect, f->effects->len - 1);
}

/* The next priority up from @p (NULL: normal). */
static const char *
priority_up(const char *p)
{
	int v = p != NULL ? mr_priority_from_name(p) : MR_PRIORITY_NORMAL;

	if (v < 0)
		v = MR_PRIORITY_NORMAL;
	return mr_priority_name(MIN(v + 1, MR_PRIORITY_URGENT));
}

/* Decides action @a of @f on the record with @fields. */
static MrFireStep
decide(MrStore *store, const MrConfig *cfg, const MrJobClaimed *job, MrFiring *f,
       const MrWorkflowAction *a, const MrRecordFields *fields, const MrCalendar *cal,
       gint64 now, GError **error)
{
	g_auto(Person) p = { 0 };
	gboolean ack = !f->timer;

	switch (a->kind) {
	case MR_WORKFLOW_ACT_SEND: {
		/* the acknowledgement answers the mail that opened the ticket;
		 * a timer's mail the last a person wrote on the record */
		gint64 answers = ack ? job->message : fields->last_person;

		if (f->answers_auto) {
			/* loop protection: an --on workflow does not answer an
			 * auto-reply, a bounce or list mail */
			Effect *e = add_effect(f, FX_HELD, 0,
					       "no answer to an automatic mail (loop protection)");

			e->address = g_strdup(a->text);
			return MR_FIRE_GO;
		}

		return add_mail(store, cfg, f, a->text, NULL, answers,
				ack ? MR_COMPOSE_AUTO_REPLIED : MR_COMPOSE_AUTO_GENERATED, error);
	}
	case MR_WORKFLOW_ACT_REMIND: {
		g_autofree char *display = mr_record_display_id(cfg, f->record);
		g_autofree char *title = NULL;

		if (!person_for(store, cfg, a->text, a->team, fields->owner, &p)) {
			g_warning("workflow %s: nobody to remind of %s (no owner, no"
				  " workflows.unowned)", f->name, display);
			return MR_FIRE_GO;
		}
		title = g_strdup_printf("Reminder: %s %s", display,
					fields->title != NULL ? fields->title : "");
		add_effect(f, FX_TASK, p.id, title);
		return add_mail(store, cfg, f, TEMPLATE_REMINDER, &p, 0, MR_COMPOSE_AUTO_GENERATED,
				error);
	}
	case MR_WORKFLOW_ACT_ASSIGN:
		if (a->team) {
			add_effect(f, FX_OWNER_TEAM, 0, a->text);
			return MR_FIRE_GO;
		}
		if (!person_for(store, cfg, a->text, FALSE, 0, &p)) {
			g_warning("workflow %s: no user %s to assign to", f->name, a->text);
			return MR_FIRE_GO;
		}
		add_effect(f, FX_OWNER, p.id, NULL);
		return MR_FIRE_GO;
	case MR_WORKFLOW_ACT_SET: {
		static const FxKind kinds[] = {
			[MR_WORKFLOW_SET_STATUS] = FX_STATUS, [MR_WORKFLOW_SET_PRIORITY] = FX_PRIORITY,
			[MR_WORKFLOW_SET_TYPE] = FX_TYPE,     [MR_WORKFLOW_SET_STAGE] = FX_STAGE,
			[MR_WORKFLOW_SET_VALUE] = FX_VALUE,   [MR_WORKFLOW_SET_TAG] = FX_TAG,
		};
		Effect *e = add_effect(f, kinds[a->field], 0, a->value);

		e->old = g_strdup(fields->status);
		return MR_FIRE_GO;
	}
	case MR_WORKFLOW_ACT_ESCALATE: {
		gint64 to = a->text == NULL && fields->owner != 0
				    ? mr_store_user_team_lead(store, fields->owner)
				    : 0;
		Effect *e;

		/* the one named; else the lead of the owner's team; else the
		 * owner; else workflows.unowned */
		if (a->text != NULL)
			person_for(store, cfg, a->text, a->team, 0, &p);
		else if (to != 0)
			person_by_id(store, to, &p);
		else
			person_for(store, cfg, NULL, FALSE, fields->owner, &p);
		e = add_effect(f, FX_ESCALATE, p.id != fields->owner ? p.id : 0,
			       f->record.kind == MR_RECORD_OPPORTUNITY ? NULL
								       : priority_up(fields->priority));
		e->old = g_strdup(fields->priority);
		e->address = g_strdup(p.email);
		if (p.email == NULL)
			return MR_FIRE_GO;
		return add_mail(store, cfg, f, TEMPLATE_ESCALATION, &p, 0, MR_COMPOSE_AUTO_GENERATED,
				error);
	}
	case MR_WORKFLOW_ACT_TASK: {
		Effect *e;

		if (!person_for(store, cfg, NULL, FALSE, fields->owner, &p)) {
			g_warning("workflow %s: nobody to give the task \"%s\" (no owner, no"
				  " workflows.unowned)", f->name, a->text);
			return MR_FIRE_GO;
		}
		e = add_effect(f, FX_TASK, p.id, a->text);
		if (a->has_due) {
			gint64 due = mr_calendar_add(cal, now, &a->due, FALSE);

			e->due = due >= 0 ? mr_clock_unix_to_iso(due) : NULL;
		}
		return MR_FIRE_GO;
	}
	}
	return MR_FIRE_GO;
}

/* Whether a condition of @wf names @field. */
static gboolean
conds_name(const MrWorkflow *wf, MrRuleField field)
{
	for (guint i = 0; i < wf->conds->len; i++)
		if (((const MrRuleCond *)g_ptr_array_index(wf->conds, i))->field == field)
			return TRUE;
	return FALSE;
}

gint64
mr_firing_workflow(const MrFiring *f)
{
	return f->workflow;
}

MrFireStep
mr_act_fire_prepare(MrStore *store, const MrConfig *cfg, const MrWorkflowSet *set,
		    const MrJobClaimed *job, const char *claim, const char *now, gboolean fetched,
		    MrRecordFields *prefetched, MrFiring **out, GError **error)
{
	gboolean ack = g_strcmp0(job->kind, MR_JOB_TICKET_ACK) == 0;
	gint64 id = job->workflow, t = mr_clock_iso_to_unix(now);
	const MrWorkflow *wf = ack ? mr_workflow_set_named(set, MR_WORKFLOW_TICKET_ACK, &id)
				   : mr_workflow_set_find(set, id);
	g_autoptr(MrRecordFields) fields = prefetched;
	g_autoptr(GError) local = NULL;
	g_autoptr(MrFiring) f = NULL;
	const MrCalendar *cal;
	MrRuleValues v = { 0 };

	if (wf == NULL)
		return end_job(store, job, claim, MR_JOB_CANCELLED, "its workflow was deleted", now,
			       error);
	if (!wf->enabled)
		return end_job(store, job, claim, MR_JOB_CANCELLED, "its workflow is disabled", now,
			       error);
	if (job->record.kind == MR_RECORD_NONE)
		return end_job(store, job, claim, MR_JOB_CANCELLED, "no record", now, error);
	if (!fetched)
		fields = mr_store_record_fields(store, job->record,
						conds_name(wf, MR_RULE_FIELD_TAG), &local);
	else if (fields != NULL && conds_name(wf, MR_RULE_FIELD_TAG)) {
		g_strfreev(fields->tags);
		fields->tags = mr_store_record_tags(store, job->record);
	}
	if (fields == NULL && local == NULL)
		return end_job(store, job, claim, MR_JOB_CANCELLED, "its record is gone", now, error);
	if (fields == NULL) {
		if (!g_error_matches(local, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return MR_FIRE_ERROR;
		}
		return end_job(store, job, claim, MR_JOB_CANCELLED, "its record is gone", now, error);
	}
	cal = mr_crm_record_calendar(set, store, job->record);
	if (!ack && wf->kind == MR_WORKFLOW_TIMER) {
		/* counted again: the calendar, its holidays and the owner of now */
		gint64 due = mr_crm_timer_due(wf, cal, mr_clock_iso_to_unix(job->started));

		if (due < 0)
			return end_job(store, job, claim, MR_JOB_CANCELLED,
				       "the record's calendar has no working time", now, error);
		if (due > t) {
			g_autofree char *at = mr_clock_unix_to_iso(due);

			if (!mr_store_job_postpone(store, job->id, claim, at, now, NULL, error))
				return MR_FIRE_ERROR;
			g_debug("job %" G_GINT64_FORMAT ": due at %s", job->id, at);
			return MR_FIRE_ENDED;
		}
	}
	/* the conditions, on the record as it is now */
	v.record = mr_record_kind_name(job->record.kind);
	v.status = fields->status;
	v.priority = fields->priority;
	v.type = fields->type;
	v.stage = fields->stage;
	v.has_value = fields->has_value;
	v.value = fields->value;
	v.owner = fields->owner_email;
	v.tags = (const char *const *)fields->tags;
	mr_calendar_local(cal, t, &v.weekday, &v.hour);
	if (!mr_workflow_conds_hold(wf, &v))
		return end_job(store, job, claim, MR_JOB_DONE, "its conditions did not hold", now,
			       error);
	if (!mr_store_check(store, error))
		return MR_FIRE_ERROR;
	f = g_new0(MrFiring, 1);
	f->workflow = id;
	f->name = g_strdup(wf->name);
	f->record = job->record;
	/* what the acknowledgement does was made by no person either */
	f->depth = MAX(job->depth, 1);
	f->timer = !ack;
	f->answers_auto = !ack && wf->kind == MR_WORKFLOW_ON && job->message != 0 &&
			  mr_store_message_is_auto(store, job->message);
	f->effects = g_array_new(FALSE, TRUE, sizeof(Effect));
	g_array_set_clear_func(f->effects, effect_clear);
	f->drafts = g_ptr_array_new_with_free_func((GDestroyNotify)mr_outgoing_draft_free);
	for (guint i = 0; i < wf->actions->len; i++) {
		MrFireStep step = decide(store, cfg, job, f, g_ptr_array_index(wf->actions, i),
					 fields, cal, t, error);

		if (step != MR_FIRE_GO)
			return step;
	}
	if (!mr_store_check(store, error))
		return MR_FIRE_ERROR;
	if (!ack && wf->kind == MR_WORKFLOW_TIMER && job->round + 1 < wf->repeat) {
		gint64 next = mr_crm_timer_due(wf, cal, t);

		if (next >= 0) {
			f->next_due = mr_clock_unix_to_iso(next);
			f->next_started = g_strdup(now);
			f->next_round = job->round + 1;
		}
	}
	*out = g_steal_pointer(&f);
	return MR_FIRE_GO;
}

/* Writes event @type of @f with @facts (its depth set here). */
static gboolean
fire_event(MrStore *store, const MrFiring *f, const char *now, MrEventType type,
	   MrEventFacts *facts, GError **error)
{
	facts->depth = f->depth;
	return mr_store_event_add(store, now, type, f->record, 0, facts, error);
}

static gboolean
write_effect(MrStore *store, MrFiring *f, const Effect *e, const char *now, GError **error)
{
	MrEventFacts facts = { 0 };

	switch (e->kind) {
	case FX_OWNER:
		return mr_store_record_set_owner(store, f->record, e->user, error);
	case FX_OWNER_TEAM: {
		g_autoptr(GError) local = NULL;
		gint64 user = mr_crm_team_assign(store, e->text, &local);

		if (user != 0)
			return mr_store_record_set_owner(store, f->record, user, error);
		if (local != NULL && local->domain != MR_CRM_ERROR) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		if (local != NULL) {
			g_warning("workflow %s: %s", f->name, local->message);
			return TRUE;
		}
		facts.detail = e->text;
		return fire_event(store, f, now, MR_EVENT_TEAM_UNASSIGNED, &facts, error);
	}
	case FX_STATUS:
		if (g_strcmp0(e->old, e->text) == 0)
			return TRUE;
		if (f->record.kind == MR_RECORD_TICKET &&
		    mr_status_from_name(MR_RECORD_TICKET, e->text) >= 0) {
			facts.old_status = e->old;
			facts.new_status = e->text;
			return mr_store_ticket_set_status(store, f->record.id, e->text, now, error) &&
			       fire_event(store, f, now, MR_EVENT_TICKET_STATUS, &facts, error);
		}
		if (f->record.kind == MR_RECORD_LEAD &&
		    mr_status_from_name(MR_RECORD_LEAD, e->text) >= 0)
			return mr_store_lead_set_status(store, f->record.id, e->text, now, 0, FALSE,
							error);
		g_warning("workflow %s: set status = %s: not a status of a %s", f->name, e->text,
			  mr_record_kind_name(f->record.kind));
		return TRUE;
	case FX_PRIORITY:
		if (f->record.kind == MR_RECORD_TICKET)
			return mr_store_ticket_set_fields(store, f->record.id, e->text, NULL, error);
		if (f->record.kind == MR_RECORD_LEAD)
			return mr_store_record_set_field(store, f->record, "priority", e->text, error);
		break;
	case FX_TYPE:
		if (f->record.kind == MR_RECORD_TICKET)
			return mr_store_ticket_set_fields(store, f->record.id, NULL, e->text, error);
		break;
	case FX_STAGE:
	case FX_VALUE:
		if (f->record.kind == MR_RECORD_OPPORTUNITY)
			return mr_store_record_set_field(store, f->record,
							 e->kind == FX_STAGE ? "stage" : "value",
							 e->text, error);
		break;
	case FX_TAG:
		return mr_store_record_tag(store, f->record, e->text, error);
	case FX_ESCALATE:
		if (e->text != NULL && g_strcmp0(e->text, e->old) != 0 &&
		    !(f->record.kind == MR_RECORD_TICKET
			      ? mr_store_ticket_set_fields(store, f->record.id, e->text, NULL, error)
			      : mr_store_record_set_field(store, f->record, "priority", e->text,
							  error)))
			return FALSE;
		if (e->user != 0 && !mr_store_record_set_owner(store, f->record, e->user, error))
			return FALSE;
		facts.address = e->address;
		facts.old_status = e->old;
		facts.new_status = e->text;
		return fire_event(store, f, now, MR_EVENT_TICKET_ESCALATED, &facts, error);
	case FX_HELD:
		facts.detail = e->text;
		g_info("workflow %s: send %s: %s", f->name, e->address, e->text);
		return fire_event(store, f, now, MR_EVENT_MAIL_HELD, &facts, error);
	case FX_TASK:
		facts.detail = e->text;
		return mr_store_task_insert(store, e->text, e->user, f->record, e->due, f->workflow,
					    now, error) != 0 &&
		       fire_event(store, f, now, MR_EVENT_TASK_CREATED, &facts, error);
	}
	g_warning("workflow %s: an action that does not fit a %s: left out", f->name,
		  mr_record_kind_name(f->record.kind));
	return TRUE;
}

gboolean
mr_act_fire_write(MrStore *store, MrFiring *f, const char *now, GError **error)
{
	for (guint i = 0; i < f->effects->len; i++)
		if (!write_effect(store, f, &g_array_index(f->effects, Effect, i), now, error))
			return FALSE;
	if (f->next_due != NULL) {
		MrTimerNew t = { 0 };

		t.workflow = f->workflow;
		t.record = f->record;
		t.started = f->next_started;
		t.due = f->next_due;
		t.round = f->next_round;
		t.depth = f->depth;
		if (!mr_store_timer_start(store, &t, now, error))
			return FALSE;
	}
	return TRUE;
}
