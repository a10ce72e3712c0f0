/* mr-crm-records.c - the use cases that change the CRM's data: users,
 * opportunities, ticket statuses, inbox leads (see mr-crm.h).
 *
 * CRM stage.  Each checks the request against the data and the lifecycle
 * (mr-status.h) and writes the rows and the typed event in one
 * transaction (mr_store_run()). */
#define G_LOG_DOMAIN "mailroom-crm"

#include "mr-crm-private.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-event.h"
#include "mailroom/mr-status.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"

void
mr_crm_not_found(MrStore *store, GError **error, const char *fmt, ...)
{
	va_list ap;

	if (!mr_store_check(store, error))
		return;
	va_start(ap, fmt);
	if (error != NULL)
		*error = g_error_new_valist(MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND, fmt, ap);
	va_end(ap);
}

/* Looks record @ref up: its status in @status_out.  Fails as mr_crm_not_found()
 * when there is none. */
static gboolean
record_status(const MrConfig *cfg, MrStore *store, MrRecordRef ref, char **status_out,
	      GError **error)
{
	g_autofree char *display = NULL;

	if (mr_store_record_exists(store, ref, status_out))
		return TRUE;
	display = mr_record_display_id(cfg, ref);
	mr_crm_not_found(store, error, "no such record %s", display);
	return FALSE;
}

/* Looks record @ref up (its status in @status_out) and checks that a user
 * may move it to status @to (mr_status_can_change()).  Fails as
 * record_status(), or with MR_CRM_ERROR_INVALID. */
static gboolean
change_allowed(const MrConfig *cfg, MrStore *store, MrRecordRef ref, int to, char **status_out,
	       GError **error)
{
	g_autofree char *display = NULL;

	if (!record_status(cfg, store, ref, status_out, error))
		return FALSE;
	if (mr_status_can_change(ref.kind, mr_status_from_name(ref.kind, *status_out), to,
				 MR_CHANGE_BY_USER))
		return TRUE;
	display = mr_record_display_id(cfg, ref);
	if (ref.kind == MR_RECORD_TICKET)
		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID, "%s cannot go from %s to %s",
			    display, *status_out, mr_status_name(ref.kind, to));
	else
		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID, "%s is already %s", display,
			    *status_out);
	return FALSE;
}

/* --- users ------------------------------------------------------------------- */

typedef struct {
	const char *email, *name;
	gint64 id;
} UserAdd;

static gboolean
user_add_tx(MrStore *store, gpointer data, GError **error)
{
	UserAdd *u = data;
	g_autofree char *now = mr_clock_now_iso();

	u->id = mr_store_user_ensure(store, u->email, u->name, now, error);
	if (u->id == 0)
		return FALSE;
	return u->name == NULL || mr_store_user_set_name(store, u->id, u->name, error);
}

gint64
mr_crm_user_add(MrStore *store, const char *email, const char *name, GError **error)
{
	UserAdd u = { email, name, 0 };

	return mr_store_run(store, user_add_tx, &u, error) ? u.id : 0;
}

/* --- opportunities ------------------------------------------------------------ */

typedef struct {
	const MrConfig *cfg;
	const char *title, *contact, *owner;
	gint64 value, id;
} OppAdd;

static gboolean
opp_add_tx(MrStore *store, gpointer data, GError **error)
{
	OppAdd *o = data;
	g_autofree char *now = mr_clock_now_iso();
	gint64 contact = mr_store_contact_by_email(store, o->contact);
	gint64 account = 0, owner = 0;
	MrEventFacts facts = { .detail = (char *)o->title };
	MrRecordRef ref = { MR_RECORD_OPPORTUNITY, 0 };

	if (contact == 0) {
		mr_crm_not_found(store, error, "no contact %s", o->contact);
		return FALSE;
	}
	/* its account is the contact's; its owner the contact's, or the one
	 * asked for */
	mr_store_contact_account_owner(store, contact, &account, &owner);
	if (o->owner != NULL) {
		owner = mr_store_user_by_address(store, o->owner);
		if (owner == 0) {
			mr_crm_not_found(store, error, "no user %s", o->owner);
			return FALSE;
		}
	}
	ref.id = o->id = mr_store_opp_insert(store, o->title, o->value, contact, account, owner,
					     now, error);
	return o->id != 0 &&
	       mr_store_event_add(store, now, MR_EVENT_OPPORTUNITY_CREATED, ref, 0, &facts, error);
}

gint64
mr_crm_opp_add(const MrConfig *cfg, MrStore *store, const char *title, const char *contact,
	       const char *owner, gint64 value, GError **error)
{
	OppAdd o = { cfg, title, contact, owner, value, 0 };

	return mr_store_run(store, opp_add_tx, &o, error) ? o.id : 0;
}

typedef struct {
	const MrConfig *cfg;
	gint64 id;
	gboolean won;
	const char *reason;
} OppClose;

static gboolean
opp_close_tx(MrStore *store, gpointer data, GError **error)
{
	OppClose *o = data;
	MrRecordRef ref = { MR_RECORD_OPPORTUNITY, o->id };
	MrOppStatus to = o->won ? MR_OPP_WON : MR_OPP_LOST;
	g_autofree char *status = NULL, *now = mr_clock_now_iso();
	MrOppClosing closing = {
		.status = mr_status_name(MR_RECORD_OPPORTUNITY, to),
		.stage = mr_opp_closed_stage(o->won),
		.probability = mr_opp_closed_probability(o->won),
		.lost_reason = o->won ? NULL : o->reason,
		.from_status = mr_status_name(MR_RECORD_OPPORTUNITY, MR_OPP_OPEN),
	};
	MrEventFacts facts = { .new_status = (char *)closing.status,
			       .detail = (char *)closing.lost_reason };

	if (!change_allowed(o->cfg, store, ref, to, &status, error))
		return FALSE;
	facts.old_status = status;
	return mr_store_opp_set_closed(store, o->id, &closing, now, error) &&
	       mr_store_event_add(store, now,
				  o->won ? MR_EVENT_OPPORTUNITY_WON : MR_EVENT_OPPORTUNITY_LOST, ref,
				  0, &facts, error);
}

gboolean
mr_crm_opp_close(const MrConfig *cfg, MrStore *store, gint64 id, gboolean won,
		 const char *reason, GError **error)
{
	OppClose o = { cfg, id, won, reason };

	if (!won && (reason == NULL || *reason == '\0')) {
		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID,
			    "a lost opportunity needs a reason");
		return FALSE;
	}
	return mr_store_run(store, opp_close_tx, &o, error);
}

/* --- tickets ------------------------------------------------------------------- */

typedef struct {
	const MrConfig *cfg;
	gint64 id;
	const char *status;
} TicketStatus;

static gboolean
ticket_status_tx(MrStore *store, gpointer data, GError **error)
{
	TicketStatus *t = data;
	MrRecordRef ref = { MR_RECORD_TICKET, t->id };
	g_autofree char *old = NULL, *now = mr_clock_now_iso();
	MrEventFacts facts = { .new_status = (char *)t->status };

	if (!change_allowed(t->cfg, store, ref, mr_status_from_name(MR_RECORD_TICKET, t->status),
			    &old, error))
		return FALSE;
	facts.old_status = old;
	return mr_store_ticket_set_status(store, t->id, t->status, now, error) &&
	       mr_store_event_add(store, now, MR_EVENT_TICKET_STATUS, ref, 0, &facts, error);
}

gboolean
mr_crm_ticket_set_status(const MrConfig *cfg, MrStore *store, gint64 id, const char *status,
			 GError **error)
{
	TicketStatus t = { cfg, id, status };

	if (mr_status_from_name(MR_RECORD_TICKET, status) < 0) {
		g_autofree char *known = mr_status_list(MR_RECORD_TICKET);

		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID,
			    "unknown ticket status '%s' (%s)", status, known);
		return FALSE;
	}
	return mr_store_run(store, ticket_status_tx, &t, error);
}

/* --- inbox leads --------------------------------------------------------------- */

typedef struct {
	const MrConfig *cfg;
	gint64 id;
	gboolean convert;
	gint64 opp;
} LeadClose;

/* Lead @l becomes an opportunity of the same title, contact and owner,
 * with its messages. */
static gboolean
lead_to_opp(MrStore *store, LeadClose *l, GError **error)
{
	MrRecordRef lead = { MR_RECORD_LEAD, l->id }, opp = { MR_RECORD_OPPORTUNITY, 0 };
	g_autoptr(GError) local = NULL;
	g_autoptr(MrLeadRow) row = mr_store_lead_get(store, l->id, &local);
	OppAdd o = { l->cfg, NULL, NULL, NULL, -1, 0 };

	if (row == NULL && !g_error_matches(local, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND)) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (row == NULL || row->contact == NULL) {
		g_autofree char *display = mr_record_display_id(l->cfg, lead);

		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID,
			    "%s has no contact to convert", display);
		return FALSE;
	}
	o.title = row->title;
	o.contact = row->contact;
	o.owner = row->owner;
	if (!opp_add_tx(store, &o, error))
		return FALSE;
	l->opp = opp.id = o.id;
	return mr_store_links_copy(store, lead, opp, error);
}

static gboolean
lead_close_tx(MrStore *store, gpointer data, GError **error)
{
	LeadClose *l = data;
	MrRecordRef ref = { MR_RECORD_LEAD, l->id };
	MrLeadStatus to = l->convert ? MR_LEAD_CONVERTED : MR_LEAD_ARCHIVED;
	g_autofree char *status = NULL, *now = mr_clock_now_iso();
	MrEventFacts facts = { .new_status = (char *)mr_status_name(MR_RECORD_LEAD, to) };

	if (!change_allowed(l->cfg, store, ref, to, &status, error))
		return FALSE;
	if (l->convert && !lead_to_opp(store, l, error))
		return FALSE;
	facts.old_status = status;
	/* a converted lead was qualified now (unless it was before) */
	return mr_store_lead_set_status(store, l->id, facts.new_status, now, l->opp, l->convert,
					error) &&
	       mr_store_event_add(store, now,
				  l->convert ? MR_EVENT_LEAD_CONVERTED : MR_EVENT_LEAD_ARCHIVED, ref,
				  0, &facts, error);
}

gint64
mr_crm_lead_convert(const MrConfig *cfg, MrStore *store, gint64 id, GError **error)
{
	LeadClose l = { cfg, id, TRUE, 0 };

	return mr_store_run(store, lead_close_tx, &l, error) ? l.opp : 0;
}

gboolean
mr_crm_lead_archive(const MrConfig *cfg, MrStore *store, gint64 id, GError **error)
{
	LeadClose l = { cfg, id, FALSE, 0 };

	return mr_store_run(store, lead_close_tx, &l, error);
}
