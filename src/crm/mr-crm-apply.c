/* mr-crm-apply.c - what a routing plan makes of the CRM's data: parties,
 * owners, records and their events (see mr-crm.h).
 *
 * CRM stage.  Decides which rows to write; the store writes them. */
#define G_LOG_DOMAIN "mailroom-crm"

#include <string.h>

#include "mailroom/mr-crm.h"
#include "mailroom/mr-dsn.h"
#include "mailroom/mr-event.h"
#include "mailroom/mr-loop.h"
#include "mailroom/mr-status.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "mailroom/mr-verp.h"

G_DEFINE_QUARK(mr-crm-error-quark, mr_crm_error)

/* One plan being applied. */
typedef struct {
	const MrConfig *cfg;
	MrStore *store;
	const MrPlan *plan;
	gint64 msg;      /* the message row */
	const char *now; /* its arrival: the time of all it makes happen */
	gint64 owner;    /* the internal sender's user id, 0: none */
	gint64 customer; /* the customer's contact id, 0: none */
	const MrMessage *message; /* the parsed message */
} Apply;

/* @s, or NULL when empty. */
static const char *
nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

/* The account a new contact of @domain belongs to: none for a freemail
 * domain (a gmail.com address is a person, not a company).  Returns its
 * id, 0 for none, or 0 with @error. */
static gint64
account_for(const Apply *a, const char *domain, GError **error)
{
	if (domain == NULL || *domain == '\0' || mr_config_is_freemail(a->cfg, domain))
		return 0;
	return mr_store_account_ensure(a->store, domain, a->now, error);
}

/* Returns the contact of @p, making it (and its account) when missing; a
 * contact's owner is the user who wrote to it first (@owner).  Sets
 * @account_out to the contact's account. */
static gint64
contact_for(const Apply *a, const MrParty *p, gint64 owner, gint64 *account_out, GError **error)
{
	gint64 id = p->contact_id != 0 ? p->contact_id
				       : mr_store_contact_by_email(a->store, p->email);
	/* Routing looked the contact up with its account, which a contact
	 * keeps for ever (set at insert only). */
	gboolean account_known = p->contact_id != 0;

	if (id == 0) {
		const char *at = strrchr(p->email, '@');
		gint64 account = account_for(a, at != NULL ? at + 1 : NULL, error);
		gboolean created = FALSE;

		if (account == 0 && error != NULL && *error != NULL)
			return 0;
		id = mr_store_contact_add(a->store, p->email, nonempty(p->name), account, owner,
					  a->now, &created, error);
		if (id == 0)
			return 0;
		if (created) {
			*account_out = account;
			return id;
		}
		/* another writer made the contact meanwhile: touch theirs */
	}
	if (!mr_store_contact_touch(a->store, id, nonempty(p->name), owner, a->now, error))
		return 0;
	if (account_known)
		*account_out = p->account_id;
	else
		mr_store_contact_account_owner(a->store, id, account_out, NULL);
	return id;
}

/* Links every party; sets the owner's user id and the customer's contact
 * id in @a. */
static gboolean
apply_parties(Apply *a, GError **error)
{
	const MrPlan *plan = a->plan;

	/* The owner first: a new contact's owner is the user who wrote to it. */
	if (plan->owner >= 0) {
		const MrParty *p = g_ptr_array_index(plan->parties, plan->owner);

		a->owner = p->user_id != 0 ? p->user_id
					   : mr_store_user_ensure(a->store, p->email, p->name,
								  a->now, error);
		if (a->owner == 0)
			return FALSE;
	}
	for (guint i = 0; i < plan->parties->len; i++) {
		const MrParty *p = g_ptr_array_index(plan->parties, i);
		gint64 id, account = 0;

		if (p->internal) {
			id = (int)i == plan->owner ? a->owner : p->user_id;
			if (!mr_store_link_party(a->store, a->msg, MR_PARTY_USER, id, error))
				return FALSE;
			continue;
		}
		if (p->contact_id == 0 && !plan->create_contacts)
			continue;
		id = contact_for(a, p, p->is_sender ? 0 : a->owner, &account, error);
		if (id == 0)
			return FALSE;
		if ((int)i == plan->customer)
			a->customer = id;
		if (!mr_store_link_party(a->store, a->msg, MR_PARTY_CONTACT, id, error) ||
		    !mr_store_link_party(a->store, a->msg, MR_PARTY_ACCOUNT, account, error))
			return FALSE;
	}
	return TRUE;
}

/* Writes event @type on @ref about the message, by the internal sender. */
static gboolean
event(const Apply *a, MrEventType type, MrRecordRef ref, const MrEventFacts *facts,
      GError **error)
{
	MrEventFacts f = facts != NULL ? *facts : (MrEventFacts){ 0 };

	f.actor = a->owner;
	return mr_store_event_add(a->store, a->now, type, ref, a->msg, &f, error);
}

/* Makes the ticket or lead the plan asks for.  Returns its reference
 * (kind NONE on failure, with @error). */
static MrRecordRef
create_record(const Apply *a, GError **error)
{
	const MrPlan *plan = a->plan;
	MrRecordRef ref = { MR_RECORD_NONE, 0 };
	MrEventFacts facts = { .detail = plan->title };
	MrEventType type;

	if (plan->action == MR_ACTION_TICKET_CREATE) {
		ref.id = mr_store_ticket_insert(a->store, plan->title, a->customer, a->owner,
						a->now, error);
		ref.kind = MR_RECORD_TICKET;
		type = MR_EVENT_TICKET_CREATED;
	} else {
		/* A lead no user wrote about belongs to its contact's owner. */
		gint64 owner = a->owner;

		if (owner == 0 && a->customer != 0)
			mr_store_contact_account_owner(a->store, a->customer, NULL, &owner);
		ref.id = mr_store_lead_insert(a->store, plan->title, a->customer, owner, a->now,
					      error);
		ref.kind = MR_RECORD_LEAD;
		type = MR_EVENT_LEAD_CREATED;
	}
	if (ref.id == 0 || !event(a, type, ref, &facts, error))
		ref.kind = MR_RECORD_NONE;
	return ref;
}

/* The message joins the existing record of the plan: touched, a solved or
 * closed ticket reopened (its owner, if it has none, the internal sender
 * of an update), events written. */
static gboolean
update_record(const Apply *a, MrRecordRef ref, GError **error)
{
	const MrPlan *plan = a->plan;
	const char *open = mr_status_name(MR_RECORD_TICKET, MR_TICKET_OPEN);

	if (ref.kind == MR_RECORD_TICKET) {
		gint64 owner = plan->action == MR_ACTION_TICKET_UPDATE ? a->owner : 0;

		if (!mr_store_ticket_touch(a->store, ref.id, a->now, plan->reopen ? open : NULL,
					   owner, error))
			return FALSE;
	} else if (!mr_store_record_touch(a->store, ref, a->now, error)) {
		return FALSE;
	}
	if (!mr_store_link_record(a->store, a->msg, ref, error))
		return FALSE;
	if (plan->reopen) {
		MrEventFacts facts = { .old_status = plan->record_status,
				       .new_status = (char *)open };

		if (!event(a, MR_EVENT_TICKET_REOPENED, ref, &facts, error))
			return FALSE;
	}
	if (!event(a, MR_EVENT_MESSAGE_LINKED, ref, NULL, error))
		return FALSE;
	return !plan->is_reply || event(a, MR_EVENT_REPLY_RECEIVED, ref, NULL, error);
}

static gboolean apply_rules(const Apply *a, MrRecordRef ref, gboolean created, GError **error);

/* The ticket acknowledgement (issue 23) for new ticket @ref: a job the
 * scheduler runs, made in this transaction, when the customer wrote to
 * support -- not for a ticket a user opened by forwarding, nor when loop
 * protection says no (event mail.held says why). */
static gboolean
queue_ack(const Apply *a, MrRecordRef ref, GError **error)
{
	const MrPlan *plan = a->plan;
	const MrParty *customer = plan->customer >= 0 ? g_ptr_array_index(plan->parties,
									  plan->customer)
						      : NULL;
	g_autofree char *refusal = NULL;

	if (!a->cfg->ack.enabled || ref.kind != MR_RECORD_TICKET || plan->owner >= 0 ||
	    customer == NULL || !customer->is_sender || a->message == NULL)
		return TRUE;
	refusal = mr_loop_refusal(a->cfg, a->message, plan->envelope_from);
	if (refusal != NULL) {
		g_autofree char *why = g_strdup_printf("no acknowledgement: %s", refusal);
		MrEventFacts facts = { .address = customer->email, .detail = why };

		return mr_store_event_add(a->store, a->now, MR_EVENT_MAIL_HELD, ref, a->msg, &facts,
					  error);
	}
	return mr_store_job_insert(a->store, MR_JOB_TICKET_ACK, a->now, NULL, ref, a->msg, a->now,
				   error) != 0;
}

/* The record part of the plan; sets @out to the record acted on. */
static gboolean
apply_record(const Apply *a, MrRecordRef *out, GError **error)
{
	const MrPlan *plan = a->plan;
	MrRecordRef ref = plan->record;
	gboolean created = FALSE;

	if (plan->action == MR_ACTION_TICKET_CREATE || plan->action == MR_ACTION_LEAD_CREATE) {
		ref = create_record(a, error);
		if (ref.kind == MR_RECORD_NONE)
			return FALSE;
		created = TRUE;
	}
	*out = ref;
	/* A record the mail names besides (an opportunity in mail to
	 * support): logged on, nothing more. */
	if (plan->also.kind != MR_RECORD_NONE &&
	    (!mr_store_link_record(a->store, a->msg, plan->also, error) ||
	     !event(a, MR_EVENT_MESSAGE_LINKED, plan->also, NULL, error)))
		return FALSE;
	if (ref.kind == MR_RECORD_NONE)
		return TRUE;
	/* the created event says it all */
	if (created ? !mr_store_link_record(a->store, a->msg, ref, error)
		    : !update_record(a, ref, error))
		return FALSE;
	/* a user of ours wrote to the customer on the record (after
	 * ticket.created: a ticket a user opens by writing to the customer
	 * is answered) */
	if (plan->is_response && !event(a, MR_EVENT_RESPONSE_SENT, ref, NULL, error))
		return FALSE;
	return apply_rules(a, ref, created, error) && (!created || queue_ack(a, ref, error));
}

/* The owner a rule names for @ref, as a user id: 0 when it names none or
 * the record keeps the one it has (only a new or unowned record takes a
 * rule's owner: an answer does not hand a ticket to someone else). */
static gint64
rule_owner(const Apply *a, MrRecordRef ref, gboolean created, GError **error)
{
	const MrRuleOutcome *r = a->plan->rules;

	if (r->owner == NULL || (!created && mr_store_record_owner(a->store, ref) != 0))
		return 0;
	if (r->owner_team) {
		gint64 user = mr_crm_team_assign(a->store, r->owner, error);
		MrEventFacts facts = { .detail = r->owner };

		if (user == 0 && (error == NULL || *error == NULL))
			/* every member away: unassigned, and the event says why */
			event(a, MR_EVENT_TEAM_UNASSIGNED, ref, &facts, error);
		return user;
	}
	/* a user deleted since the rule was made: the record keeps its owner */
	return mr_store_user_by_address(a->store, r->owner);
}

/* What the rules that fired ask of record @ref (@created by this
 * message, or updated): its owner, tags, a ticket's priority, type and
 * status, a new lead's source. */
static gboolean
apply_rules(const Apply *a, MrRecordRef ref, gboolean created, GError **error)
{
	const MrRuleOutcome *r = a->plan->rules;
	gint64 owner;

	if (r == NULL || ref.kind == MR_RECORD_NONE)
		return TRUE;
	owner = rule_owner(a, ref, created, error);
	if ((error != NULL && *error != NULL) ||
	    (owner != 0 && !mr_store_record_set_owner(a->store, ref, owner, error)))
		return FALSE;
	for (guint i = 0; i < r->tags->len; i++)
		if (!mr_store_record_tag(a->store, ref, g_ptr_array_index(r->tags, i), error))
			return FALSE;
	if (ref.kind == MR_RECORD_LEAD && created && r->source != NULL &&
	    !mr_store_lead_set_source(a->store, ref.id, r->source, error))
		return FALSE;
	if (ref.kind != MR_RECORD_TICKET)
		return TRUE;
	if ((r->priority >= 0 || r->type >= 0) &&
	    !mr_store_ticket_set_fields(a->store, ref.id,
					r->priority >= 0 ? mr_priority_name(r->priority) : NULL,
					r->type >= 0 ? mr_ticket_type_name(r->type) : NULL, error))
		return FALSE;
	if (r->status >= 0) {
		g_autofree char *old = NULL;
		const char *status = mr_status_name(MR_RECORD_TICKET, r->status);
		MrEventFacts facts = { 0 };

		if (!mr_store_record_exists(a->store, ref, &old) || g_strcmp0(old, status) == 0)
			return TRUE;
		facts.old_status = old;
		facts.new_status = (char *)status;
		if (!mr_store_ticket_set_status(a->store, ref.id, status, a->now, error) ||
		    !event(a, MR_EVENT_TICKET_STATUS, ref, &facts, error))
			return FALSE;
	}
	return TRUE;
}

/* The recipient of @dsn that is @to, or NULL. */
static const MrDsnRecipient *
dsn_recipient(const MrDsn *dsn, const char *to)
{
	for (guint i = 0; i < dsn->recipients->len; i++) {
		const MrDsnRecipient *r = g_ptr_array_index(dsn->recipients, i);

		if (g_strcmp0(r->final_recipient, to) == 0 ||
		    g_strcmp0(r->original_recipient, to) == 0)
			return r;
	}
	return NULL;
}

/* Mail to the bounce address (issue 23): a delivery report about the
 * outgoing mail its VERP address names.  Only a report that names that
 * very mail -- the secret of its envelope sender, and its recipient or
 * its Message-ID -- counts: the mail becomes bounced, event mail.bounced
 * is written on its record (the report linked to it), and a hard failure
 * marks the contact undeliverable.  Anything else (a forged or stray
 * report, an auto-reply sent to the envelope sender) changes nothing. */
static gboolean
apply_bounce(const Apply *a, GBytes *raw, GError **error)
{
	const char *to = a->plan->recipient;
	g_autofree char *token = NULL;
	g_autoptr(MrOutboxSent) sent = NULL;
	g_autoptr(MrDsn) dsn = NULL;
	const MrDsnRecipient *r;
	gint64 id = 0;
	gboolean failed;
	MrEventFacts facts = { 0 };
	g_autofree char *text = NULL, *mark = NULL;

	if (!mr_verp_parse(to, a->cfg->outgoing.bounce_address, &id, &token) ||
	    (sent = mr_store_outbox_for_bounce(a->store, id)) == NULL ||
	    !mr_verp_token_equal(token, sent->token)) {
		g_info("mail to %s names no mail mailroom sent: nothing to do", to);
		return TRUE;
	}
	/* From here the mail carries the secret of mail @id: it came from
	 * where that mail went.  What is not its failure report -- an
	 * auto-reply or a person's answer sent to the envelope sender, a
	 * report that it was delayed or delivered -- is shown on its record. */
	dsn = mr_dsn_parse(raw);
	r = dsn != NULL ? dsn_recipient(dsn, sent->recipient) : NULL;
	if (dsn == NULL || (r == NULL && g_strcmp0(dsn->original_message_id, sent->message_id) != 0)) {
		g_info("mail to %s is no delivery report about mail %" G_GINT64_FORMAT
		       " to %s: linked to its record", to, id, sent->recipient);
		return mr_store_link_record(a->store, a->msg, sent->record, error);
	}
	if (r == NULL && dsn->recipients->len == 1)
		r = g_ptr_array_index(dsn->recipients, 0);
	failed = r == NULL || r->action == NULL || strcmp(r->action, "failed") == 0;
	if (!failed) {
		g_info("mail %" G_GINT64_FORMAT " to %s: report says %s", id, sent->recipient,
		       r->action);
		return mr_store_link_record(a->store, a->msg, sent->record, error);
	}
	text = g_strdup(r != NULL && r->diagnostic != NULL ? r->diagnostic : "delivery failed");
	facts.address = sent->recipient;
	facts.new_status = r != NULL ? r->status : NULL;
	facts.detail = text;
	if (!mr_store_outbox_bounced(a->store, id, facts.new_status, text, a->now, error) ||
	    !mr_store_link_record(a->store, a->msg, sent->record, error) ||
	    !mr_store_event_add(a->store, a->now, MR_EVENT_MAIL_BOUNCED, sent->record, a->msg,
				&facts, error))
		return FALSE;
	if (sent->contact == 0 || !mr_dsn_is_hard(dsn, r))
		return TRUE;
	mark = g_strdup_printf("%s %s (%s)", facts.new_status != NULL ? facts.new_status : "5.0.0",
			       text, a->now);
	return mr_store_contact_mark(a->store, sent->contact, mark, error);
}

/* The message's own events: what was refused, and why. */
static gboolean
apply_refusals(const Apply *a, GError **error)
{
	const MrPlan *plan = a->plan;
	MrRecordRef none = { MR_RECORD_NONE, 0 };

	if (plan->untrusted != NULL) {
		MrEventFacts facts = { .address = plan->untrusted,
				       .detail = a->cfg->authserv_id };

		/* not the user's: nobody acted */
		if (!mr_store_event_add(a->store, a->now, MR_EVENT_SENDER_UNTRUSTED, none, a->msg,
					&facts, error))
			return FALSE;
	}
	if (plan->refused != NULL) {
		MrEventFacts facts = { .detail = plan->refused };

		if (!event(a, MR_EVENT_LINK_REFUSED, none, &facts, error))
			return FALSE;
	}
	return TRUE;
}

gboolean
mr_crm_apply(const MrConfig *cfg, MrStore *store, const MrPlan *plan, GBytes *raw,
	     const char *key, const MrMessage *msg, gint64 message_row, MrApplied *out,
	     GError **error)
{
	g_autofree char *rules = plan->rules != NULL && plan->rules->fired->len > 0
					 ? g_strjoinv("\n", (char **)plan->rules->fired->pdata)
					 : NULL;
	MrDeliveryNew delivery = { plan->recipient, mr_role_name(plan->role),
				   plan->envelope_from, rules };
	MrStored stored = { 0 };
	MrApplied applied = { 0 };
	Apply a = { cfg, store, plan, 0, NULL, 0, 0, msg };
	gboolean ok;

	g_return_val_if_fail(cfg != NULL && store != NULL && plan != NULL, FALSE);

	ok = mr_store_message_deliver(store, raw, key, msg, message_row, &delivery, &stored,
				      error);
	applied.message_row = stored.message_row;
	applied.new_message = stored.new_message;
	applied.duplicate = stored.duplicate;
	if (ok && !stored.duplicate) {
		a.msg = stored.message_row;
		a.now = stored.now;
		/* A look-up made while applying (a user, an account) that
		 * failed answered "not found": what was written from it must
		 * not stay. */
		/* ignored by a rule: stored, linked to nothing */
		if (plan->role == MR_ROLE_BOUNCE)
			ok = apply_bounce(&a, raw, error);
		else if (plan->action != MR_ACTION_IGNORE)
			ok = apply_parties(&a, error) && apply_record(&a, &applied.record, error);
		ok = ok && apply_refusals(&a, error) && mr_store_check(store, error);
	}
	mr_stored_clear(&stored);
	if (ok && out != NULL)
		*out = applied;
	return ok;
}
