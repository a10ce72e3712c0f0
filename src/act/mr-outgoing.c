/* mr-outgoing.c - queueing one outgoing mail about a record (see
 * mr-outgoing.h).
 *
 * Act stage.  Decides what the mail says and whether it may go; the
 * store writes the rows, GMime (mr-compose.c) makes the bytes. */
#define G_LOG_DOMAIN "mailroom-outgoing"

#include <string.h>

#include <gmime/gmime.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-autocleanups.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-crm.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-event.h"
#include "mailroom/mr-ingest.h"
#include "mailroom/mr-loop.h"
#include "mailroom/mr-outgoing.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "mailroom/mr-template.h"
#include "mailroom/mr-verp.h"

G_DEFINE_QUARK(mr-outgoing-error-quark, mr_outgoing_error)

/* What a rendered subject and body may grow to. */
#define MR_OUTGOING_MAX_SUBJECT 2000
#define MR_OUTGOING_MAX_BODY (1024 * 1024)

void
mr_outgoing_result_clear(MrOutgoingResult *r)
{
	g_clear_pointer(&r->message_id, g_free);
	g_clear_pointer(&r->held, g_free);
}

char *
mr_outgoing_envelope_from(const MrConfig *cfg, gint64 id, const char *token)
{
	return mr_verp_format(cfg->outgoing.bounce_address, id, token);
}

/* What a mail needs from the database, read by mr_outgoing_prepare(),
 * and then its bytes, made by mr_outgoing_compose(). */
struct _MrOutgoingDraft {
	MrConfig *cfg;
	MrRecordRef record;
	MrComposeKind kind;
	gint64 actor;
	gboolean need_outbox_id;
	MrRecordMail *rec;
	char *display;   /* the record's id, "TKT-n" */
	char *answered_mid, *answered_irt, *answered_subject;
	char *template_name; /* (nullable) */
	char *subject, *body; /* the template's, or the request's */
	char *from;      /* (nullable) */
	char *to_email;  /* the recipient: the record's contact or a user */
	char *to_name;   /* (nullable) */
	gint64 contact;  /* the recipient's contact, 0: ... */
	gint64 user;     /* ... the user it goes to */
	int depth;       /* of mail.held */
	/* composed */
	MrComposed mail;
	MrMessage *parsed;
	char *key;
};

void
mr_outgoing_draft_free(MrOutgoingDraft *d)
{
	if (d == NULL)
		return;
	mr_config_unref(d->cfg);
	mr_record_mail_free(d->rec);
	g_free(d->display);
	g_free(d->answered_mid);
	g_free(d->answered_irt);
	g_free(d->answered_subject);
	g_free(d->template_name);
	g_free(d->subject);
	g_free(d->body);
	g_free(d->from);
	g_free(d->to_email);
	g_free(d->to_name);
	mr_composed_clear(&d->mail);
	g_clear_pointer(&d->parsed, mr_message_free);
	g_free(d->key);
	g_free(d);
}

/* Holds the mail back: event mail.held on the record, with @why. */
static gboolean
hold(MrStore *store, const MrOutgoingDraft *d, const char *now, char *why, MrOutgoingResult *out,
     GError **error)
{
	MrEventFacts facts = { .actor = d->actor, .depth = d->depth, .address = d->to_email,
			       .detail = why };

	out->held = why;
	g_info("no automatic mail to %s: %s", d->to_email, why);
	return mr_store_event_add(store, now, MR_EVENT_MAIL_HELD, d->record, 0, &facts, error);
}

/* The look-ups of the automatic mails of a write: a day's mails per
 * recipient, as the database says now plus those queued in this write,
 * and the contacts' undeliverable marks. */
typedef struct {
	char *since;           /* a day before now (NULL: @now is no time) */
	gint64 *counts;        /* per draft */
	char **undeliverable;  /* per draft */
	GHashTable *queued;    /* recipient -> automatic mails queued here */
} AutoFacts;

static void
auto_facts_clear(AutoFacts *f, guint n)
{
	g_free(f->since);
	g_free(f->counts);
	for (guint i = 0; f->undeliverable != NULL && i < n; i++)
		g_free(f->undeliverable[i]);
	g_free(f->undeliverable);
	g_clear_pointer(&f->queued, g_hash_table_unref);
}

/* Reads the facts of @drafts in one look-up, when one of them is
 * automatic. */
static gboolean
auto_facts_read(MrStore *store, MrOutgoingDraft *const *drafts, guint n, const char *now,
		AutoFacts *f, GError **error)
{
	g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(now, NULL);
	g_autoptr(GDateTime) day_ago = t != NULL ? g_date_time_add_days(t, -1) : NULL;
	g_autofree const char **recipients = g_new0(const char *, MAX(n, 1));
	g_autofree gint64 *contacts = g_new0(gint64, MAX(n, 1));
	gboolean automatic = FALSE;

	f->since = day_ago != NULL ? g_date_time_format_iso8601(day_ago) : NULL;
	f->counts = g_new0(gint64, MAX(n, 1));
	f->undeliverable = g_new0(char *, MAX(n, 1));
	f->queued = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; i < n; i++) {
		recipients[i] = drafts[i]->to_email;
		contacts[i] = drafts[i]->contact;
		automatic |= drafts[i]->kind != MR_COMPOSE_PERSON;
	}
	return !automatic ||
	       mr_store_outbox_auto_counts(store, f->since != NULL ? f->since : now, recipients,
					   contacts, n, f->counts, f->undeliverable, error);
}

/* Draft @i, an automatic mail, may go: its address not marked
 * undeliverable, under the daily limit.  Returns: (transfer full)
 * (nullable): why not. */
static char *
auto_refusal(const MrConfig *cfg, const MrOutgoingDraft *d, const AutoFacts *f, guint i)
{
	int limit = cfg->outgoing.max_auto_per_recipient_per_day;
	gint64 count = f->counts[i] + GPOINTER_TO_UINT(g_hash_table_lookup(
					      f->queued, d->to_email));

	if (f->undeliverable[i] != NULL)
		return g_strdup_printf("the address is marked undeliverable (%s)",
				       f->undeliverable[i]);
	if (f->since != NULL && count >= limit)
		return g_strdup_printf("the limit of %d automatic mails a day to one recipient"
				       " is reached", limit);
	return NULL;
}

/* Splits @from ("Name <address>" or an address) into @name and @email
 * (transfer full).  Returns FALSE when it holds no mailbox. */
static gboolean
parse_from(const char *from, char **name, char **email)
{
	g_autoptr(InternetAddressList) list = internet_address_list_parse(NULL, from);
	InternetAddress *ia;

	if (list == NULL || internet_address_list_length(list) != 1)
		return FALSE;
	ia = internet_address_list_get_address(list, 0);
	if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
		return FALSE;
	*email = g_strdup(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
	*name = g_strdup(internet_address_get_name(ia));
	return **email != '\0';
}

gboolean
mr_outgoing_check_config(const MrConfig *cfg, GError **error)
{
	g_autofree char *name = NULL, *email = NULL;

	mr_parse_init(); /* GMime reads it */
	if (parse_from(cfg->relay.from, &name, &email) && strchr(email, '@') != NULL)
		return TRUE;
	g_set_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_INVALID,
		    "%s: relay.from: not one address (\"Name <address>\" or address): %s",
		    cfg->path, cfg->relay.from);
	return FALSE;
}

/* The subject of a mail about record @id: it carries "[ID]", so that the
 * answer comes back to the record. */
static char *
tagged_subject(const char *subject, const char *id)
{
	g_autofree char *tag = g_strdup_printf("[%s]", id);

	if (strstr(subject, tag) != NULL)
		return g_strdup(subject);
	return g_strdup_printf("%s %s", tag, subject);
}

static MrOutgoingDraft *
outgoing_prepare(MrStore *store, const MrConfig *cfg, const MrOutgoingRequest *req,
		 GError **error)
{
	g_autoptr(MrOutgoingDraft) d = g_new0(MrOutgoingDraft, 1);

	d->cfg = mr_config_ref((MrConfig *)cfg);
	d->record = req->record;
	d->kind = req->kind;
	d->actor = req->actor;
	d->need_outbox_id = req->need_outbox_id;
	d->from = g_strdup(req->from);
	/* the look-ups that need nothing else, in one round trip */
	if (!mr_store_outgoing_ahead(store, req->record, req->answers, req->template_name, error))
		return NULL;
	d->rec = mr_store_record_mail(store, req->record, error);
	if (d->rec == NULL)
		return NULL;
	d->display = mr_record_display_id(cfg, req->record);
	d->depth = req->depth;
	if (req->to_user != 0) {
		d->user = req->to_user;
		d->to_email = g_strdup(req->to_email);
		d->to_name = g_strdup(req->to_name);
	} else if (d->rec->contact_email == NULL || *d->rec->contact_email == '\0') {
		g_set_error(error, MR_OUTGOING_ERROR, MR_OUTGOING_ERROR_NO_CONTACT,
			    "%s has no contact to write to", d->display);
		return NULL;
	} else {
		d->to_email = g_strdup(d->rec->contact_email);
		d->to_name = g_strdup(d->rec->contact_name);
		d->contact = d->rec->contact;
	}
	if (req->from_owner && d->rec->owner_email != NULL && *d->rec->owner_email != '\0') {
		g_autofree char *name = g_strdup(d->rec->owner_name);

		/* the name as a quoted string: GMime reads it back */
		g_free(d->from);
		d->from = name != NULL && *name != '\0'
				  ? g_strdup_printf("\"%s\" <%s>",
						    g_strdelimit(name, "\"\\\r\n", ' '),
						    d->rec->owner_email)
				  : g_strdup(d->rec->owner_email);
	}
	if (req->answers != 0 &&
	    !mr_store_message_thread(store, req->answers, &d->answered_mid, &d->answered_irt,
				     &d->answered_subject, error))
		return NULL;
	if (req->template_name != NULL) {
		g_autoptr(MrTemplateRow) tpl = mr_store_template_get(store, req->template_name, error);

		if (tpl == NULL)
			return NULL;
		d->template_name = g_strdup(req->template_name);
		d->subject = g_strdup(tpl->subject);
		d->body = g_strdup(tpl->body);
	} else {
		d->subject = g_strdup(req->subject);
		d->body = g_strdup(req->body);
	}
	return g_steal_pointer(&d);
}

MrOutgoingDraft *
mr_outgoing_prepare(MrStore *store, const MrConfig *cfg, const MrOutgoingRequest *req,
		    GError **error)
{
	MrOutgoingDraft *d = outgoing_prepare(store, cfg, req, error);

	mr_store_outgoing_ahead_drop(store);
	return d;
}

gboolean
mr_outgoing_compose(MrOutgoingDraft *d, GError **error)
{
	const MrConfig *cfg = d->cfg;
	const MrRecordMail *rec = d->rec;
	g_autofree char *subject = NULL, *body = NULL, *tagged = NULL;
	g_autofree char *from_name = NULL, *from_email = NULL, *loop = NULL;
	const char *refs[3] = { NULL, NULL, NULL };
	const char *extra[2] = { NULL, NULL };
	const char *from = d->from != NULL ? d->from : cfg->relay.from;
	MrTemplateValues v = { 0 };
	MrComposeSpec spec = { 0 };
	gboolean truncated = FALSE;

	g_return_val_if_fail(d->mail.raw == NULL, FALSE);
	v.contact_name = rec->contact_name;
	v.contact_email = rec->contact_email;
	v.owner_name = rec->owner_name;
	v.owner_email = rec->owner_email;
	v.record_id = d->display;
	v.record_subject = rec->subject;
	v.record_status = rec->status;
	v.message_subject = d->answered_subject != NULL ? d->answered_subject : rec->subject;
	subject = mr_template_render(d->subject != NULL ? d->subject : "", &v, TRUE,
				     MR_OUTGOING_MAX_SUBJECT, &truncated);
	/* a person's text is sent as written: no placeholders in it */
	body = d->template_name != NULL
		       ? mr_template_render(d->body != NULL ? d->body : "", &v, FALSE,
					    MR_OUTGOING_MAX_BODY, &truncated)
		       : mr_template_clean(d->body != NULL ? d->body : "", FALSE,
					   MR_OUTGOING_MAX_BODY, &truncated);
	if (truncated)
		g_warning("%s: a value made the mail longer than it may be: cut",
			  d->template_name != NULL ? d->template_name : "mail");
	tagged = tagged_subject(subject, d->display);
	if (!parse_from(from, &from_name, &from_email)) {
		g_set_error(error, MR_OUTGOING_ERROR, MR_OUTGOING_ERROR_COMPOSE,
			    "not an address to send from: %s", from);
		return FALSE;
	}
	/* References: what the answered mail answered, then the mail itself
	 * (the answered mail's own References are not stored). */
	refs[0] = d->answered_irt;
	refs[d->answered_irt != NULL ? 1 : 0] = d->answered_mid;
	loop = g_strdup_printf("%s: %s", MR_LOOP_HEADER, cfg->hostname);
	extra[0] = loop;
	spec.from_name = from_name;
	spec.from_email = from_email;
	spec.to_name = d->to_name;
	spec.to_email = d->to_email;
	spec.subject = tagged;
	spec.body = body;
	spec.in_reply_to = d->answered_mid;
	spec.references = refs;
	spec.message_id_domain = strrchr(from_email, '@') + 1;
	spec.date_us = mr_clock_now_us();
	spec.kind = d->kind;
	spec.extra_headers = extra;
	if (!mr_compose(&spec, &d->mail, error)) {
		g_prefix_error(error, "%s: ", d->display);
		return FALSE;
	}
	d->parsed = mr_parse_message(d->mail.raw, NULL);
	d->key = mr_ingest_content_key(d->mail.raw);
	return TRUE;
}

/* Stores and queues draft @d. */
static gboolean
write_one(MrStore *store, MrOutgoingDraft *d, const char *now, MrOutgoingResult *out,
	  GError **error)
{
	g_autofree char *token = mr_verp_token_new();
	MrOutgoingNew mail = { 0 };

	mail.raw = d->mail.raw;
	mail.key = d->key;
	mail.msg = d->parsed;
	mail.token = token;
	mail.recipient = d->to_email;
	mail.contact = d->contact;
	mail.user = d->user;
	mail.record = d->record;
	mail.automatic = d->kind != MR_COMPOSE_PERSON;
	out->message_id = g_strdup(d->mail.message_id);
	out->outbox = mr_store_outgoing_queue(store, &mail, now, d->need_outbox_id, error);
	if (out->outbox == 0)
		return FALSE;
	if (!d->need_outbox_id)
		out->outbox = 0;
	out->queued = TRUE;
	return TRUE;
}

gboolean
mr_outgoing_write_all(MrStore *store, MrOutgoingDraft *const *drafts, guint n, const char *now,
		      MrOutgoingResult *outs, GError **error)
{
	AutoFacts facts = { 0 };
	gboolean ok;

	for (guint i = 0; i < n; i++) {
		g_return_val_if_fail(drafts[i]->mail.raw != NULL, FALSE);
		memset(&outs[i], 0, sizeof(outs[i]));
	}
	ok = auto_facts_read(store, drafts, n, now, &facts, error);
	for (guint i = 0; ok && i < n; i++) {
		MrOutgoingDraft *d = drafts[i];
		char *why = NULL;

		if (d->kind != MR_COMPOSE_PERSON) {
			why = auto_refusal(d->cfg, d, &facts, i);
			if (why != NULL) {
				ok = hold(store, d, now, why, &outs[i], error);
				continue;
			}
		}
		ok = write_one(store, d, now, &outs[i], error);
		if (ok && d->kind != MR_COMPOSE_PERSON) {
			const char *to = d->to_email;

			g_hash_table_insert(facts.queued, (gpointer)to,
					    GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(
								     facts.queued, to)) + 1));
		}
	}
	auto_facts_clear(&facts, n);
	return ok;
}

gboolean
mr_outgoing_write(MrStore *store, MrOutgoingDraft *d, const char *now, MrOutgoingResult *out,
		  GError **error)
{
	return mr_outgoing_write_all(store, &d, 1, now, out, error);
}

gboolean
mr_outgoing_queue(MrStore *store, const MrConfig *cfg, const MrOutgoingRequest *req,
		  const char *now, MrOutgoingResult *out, GError **error)
{
	g_autoptr(MrOutgoingDraft) d = NULL;

	memset(out, 0, sizeof(*out));
	d = mr_outgoing_prepare(store, cfg, req, error);
	return d != NULL && mr_outgoing_compose(d, error) &&
	       mr_outgoing_write(store, d, now, out, error);
}

typedef struct {
	const MrConfig *cfg;
	gint64 ticket;
	const char *body;
	const char *status;
	const char *from;
	MrOutgoingResult *out;
} TicketReply;

static gboolean
ticket_reply_tx(MrStore *store, gpointer data, GError **error)
{
	TicketReply *t = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autofree char *email = NULL, *name = NULL, *from = NULL;
	MrOutgoingRequest req = { 0 };

	req.record.kind = MR_RECORD_TICKET;
	req.record.id = t->ticket;
	if (t->from != NULL) {
		g_autofree char *address = mr_address_normalise(t->from);

		req.actor = mr_store_user_mailbox(store, address, &email, &name);
		if (req.actor == 0) {
			if (!mr_store_check(store, error))
				return FALSE;
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND, "no user %s", address);
			return FALSE;
		}
		/* the name as a quoted string: GMime reads it back */
		from = name != NULL && *name != '\0'
			       ? g_strdup_printf("\"%s\" <%s>", g_strdelimit(name, "\"\\\r\n", ' '), email)
			       : g_strdup(email);
		req.from = from;
	}
	req.answers = mr_store_record_last_in(store, req.record);
	req.subject = "Re: {{record.subject}}";
	req.body = t->body;
	req.kind = MR_COMPOSE_PERSON;
	req.need_outbox_id = TRUE;
	if (!mr_outgoing_queue(store, t->cfg, &req, now, t->out, error))
		return FALSE;
	/* a person of ours answered: written when it is queued */
	{
		MrEventFacts facts = { .actor = req.actor };

		if (!mr_store_event_add(store, now, MR_EVENT_RESPONSE_SENT, req.record, 0, &facts,
					error))
			return FALSE;
	}
	return t->status == NULL ||
	       mr_crm_ticket_set_status(t->cfg, store, t->ticket, t->status, error);
}

gboolean
mr_outgoing_ticket_reply(MrStore *store, const MrConfig *cfg, gint64 ticket, const char *body,
			 const char *status, const char *from, MrOutgoingResult *out,
			 GError **error)
{
	TicketReply t = { cfg, ticket, body, status, from, out };

	return mr_store_run(store, ticket_reply_tx, &t, error);
}
