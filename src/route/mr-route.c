/* mr-route.c - routing: parties, the record a message belongs to, and what
 * to do with it (the plan).
 *
 * Route stage.  Reads through MrStore look-ups, writes nothing.  The order
 * of evidence for the record is: id in the subject, plus address, thread
 * headers of stored messages, the sender's open inbox lead (sales).
 *
 * What depends on the message alone -- normalised addresses, the id in
 * the subject, the thread's Message-IDs, the title, whether the sender's
 * domain was authenticated -- is worked out first (MrRouteFacts), on the
 * parse pool in mailroomd; only the look-ups and the decisions made from
 * them run under the write lock. */
#define G_LOG_DOMAIN "mailroom-route"

#include <string.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-status.h"
#include "mailroom/mr-store-message.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"

/* --- ids in subjects ---------------------------------------------------- */

gboolean
mr_route_subject_id(const MrConfig *cfg, const char *subject, MrRecordRef *out)
{
	const char *end, *open, *close;

	g_return_val_if_fail(cfg != NULL && out != NULL, FALSE);
	if (subject == NULL)
		return FALSE;
	end = subject + strnlen(subject, (gsize)cfg->route.max_subject_scan);
	/* Every '[' reads to the next ']'; a '[' before that ']' would read
	 * the same tokens again ('[' splits tokens), so the search goes on
	 * after the ']': one pass over the subject, however many '['. */
	for (open = memchr(subject, '[', (gsize)(end - subject)); open != NULL;
	     open = memchr(close + 1, '[', (gsize)(end - close - 1))) {
		const char *p = open + 1;

		close = memchr(p, ']', (gsize)(end - p));
		if (close == NULL)
			return FALSE;
		/* Tokens inside the brackets, split on anything that cannot be
		 * part of an id: "[Acme TKT-12]", "[tkt-12/urgent]". */
		while (p < close) {
			const char *token_end = p;

			while (token_end < close && (g_ascii_isalnum(*token_end) || *token_end == '-'))
				token_end++;
			if (token_end > p && mr_record_parse_id_len(cfg, p, (gsize)(token_end - p), out) &&
			    out->kind != MR_RECORD_LEAD)
				return TRUE;
			p = token_end < close ? token_end + 1 : close;
		}
	}
	return FALSE;
}

/* --- facts: what the message alone says ------------------------------ */

struct _MrRouteFacts {
	char *from;            /* normalised addresses, or NULL for one that is */
	char *original_from;   /* not an address (no '@', nothing around it) */
	char **to, **cc;       /* aligned with msg->to, msg->cc; NULL for an
	                          entry that is no address */
	guint n_to, n_cc;
	gboolean subject_found;
	MrRecordRef subject_ref;
	GPtrArray *thread_ids; /* In-Reply-To, then References newest first;
	                          NULL-terminated, borrowed from the message */
	char *title;
	gboolean from_authenticated; /* Authentication-Results vouch for From: */
};

static gboolean sender_authenticated(const MrConfig *cfg, const MrMessage *msg, const char *email);
static char *plan_title(const MrMessage *msg);

/* Returns: (transfer full) (nullable): @a's address normalised, or NULL
 * when it is no address. */
static char *
fact_address(const MrAddress *a)
{
	const char *at;

	if (a == NULL || a->email == NULL || (at = strrchr(a->email, '@')) == NULL ||
	    at == a->email || at[1] == '\0')
		return NULL;
	return mr_address_normalise(a->email);
}

/* Normalises the addresses of @list (MrAddress*, nullable) into @n
 * entries, NULL for one that is no address. */
static char **
fact_addresses(const GPtrArray *list, guint *n)
{
	char **out;

	*n = list != NULL ? list->len : 0;
	out = g_new0(char *, *n + 1);
	for (guint i = 0; i < *n; i++)
		out[i] = fact_address(g_ptr_array_index(list, i));
	return out;
}

static void
addresses_free(char **v, guint n)
{
	for (guint i = 0; v != NULL && i < n; i++)
		g_free(v[i]);
	g_free(v);
}

MrRouteFacts *
mr_route_facts_new(const MrConfig *cfg, const MrMessage *msg)
{
	MrRouteFacts *f = g_new0(MrRouteFacts, 1);

	g_return_val_if_fail(cfg != NULL && msg != NULL, NULL);

	f->from = fact_address(msg->from);
	f->original_from = fact_address(msg->original_from);
	f->to = fact_addresses(msg->to, &f->n_to);
	f->cc = fact_addresses(msg->cc, &f->n_cc);
	f->subject_found = mr_route_subject_id(cfg, msg->subject, &f->subject_ref);
	f->thread_ids = g_ptr_array_new();
	if (msg->in_reply_to != NULL)
		g_ptr_array_add(f->thread_ids, msg->in_reply_to);
	for (guint i = msg->references != NULL ? msg->references->len : 0; i > 0; i--)
		g_ptr_array_add(f->thread_ids, g_ptr_array_index(msg->references, i - 1));
	g_ptr_array_add(f->thread_ids, NULL);
	f->title = plan_title(msg);
	f->from_authenticated = cfg->authserv_id != NULL && msg->from != NULL &&
				msg->from->email != NULL &&
				sender_authenticated(cfg, msg, msg->from->email);
	return f;
}

void
mr_route_facts_free(MrRouteFacts *facts)
{
	if (facts == NULL)
		return;
	g_free(facts->from);
	g_free(facts->original_from);
	addresses_free(facts->to, facts->n_to);
	addresses_free(facts->cc, facts->n_cc);
	g_ptr_array_unref(facts->thread_ids);
	g_free(facts->title);
	g_free(facts);
}

/* --- parties ------------------------------------------------------------ */

static gboolean
is_mailroom_address(const MrConfig *cfg, const char *email)
{
	return mr_config_find_address(cfg, email, NULL) != NULL;
}

/* The parties of one plan being collected. */
typedef struct {
	const MrConfig *cfg;
	MrStore *store;
	MrPlan *plan;
	GHashTable *seen; /* email (borrowed from the party) -> index + 1 */
} PartyList;

/* Adds @a (its address normalised: @email, NULL when it is none) unless
 * it is a mailroom address or already there, or route.max_parties are
 * there already; returns its index or -1. */
static int
add_party(PartyList *l, const MrAddress *a, const char *email, gboolean is_sender)
{
	const MrConfig *cfg = l->cfg;
	MrStore *store = l->store;
	MrPlan *plan = l->plan;
	const char *at;
	gpointer index;
	gint64 contact, account;
	MrParty *p;

	if (a == NULL || email == NULL)
		return -1;
	if ((index = g_hash_table_lookup(l->seen, email)) != NULL) {
		p = g_ptr_array_index(plan->parties, GPOINTER_TO_UINT(index) - 1);
		p->is_sender = p->is_sender || is_sender;
		return (int)GPOINTER_TO_UINT(index) - 1;
	}
	if ((gint64)plan->parties->len >= cfg->route.max_parties || is_mailroom_address(cfg, a->email))
		return -1;
	at = strrchr(email, '@');
	p = g_new0(MrParty, 1);
	p->email = g_strdup(email);
	p->name = g_strdup(a->name);
	p->is_sender = is_sender;
	mr_store_party_by_email(store, p->email, &p->user_id, &contact, &account);
	p->internal = p->user_id != 0 || mr_config_is_own_domain(cfg, at + 1);
	if (!p->internal) {
		p->contact_id = contact;
		p->account_id = account;
	}
	g_ptr_array_add(plan->parties, p);
	g_hash_table_insert(l->seen, p->email, GUINT_TO_POINTER(plan->parties->len));
	return (int)plan->parties->len - 1;
}

/* Adds the recipients of @list (MrAddress*, nullable; @emails their
 * addresses normalised) until route.max_parties. */
static void
add_recipients(PartyList *l, const GPtrArray *list, char **emails)
{
	for (guint i = 0; list != NULL && i < list->len &&
			  (gint64)l->plan->parties->len < l->cfg->route.max_parties;
	     i++)
		add_party(l, g_ptr_array_index(list, i), emails[i], FALSE);
}

static MrParty *
party_at(const MrPlan *plan, int i)
{
	return i >= 0 ? g_ptr_array_index(plan->parties, i) : NULL;
}

/* Returns TRUE when one resinfo of @item ("dkim=pass header.d=acme.test")
 * has @method=pass and, when @prop is set, a property @prop whose value
 * ends in @domain. */
static gboolean
auth_item_passes(const char *item, const char *method, const char *prop, const char *domain)
{
	g_auto(GStrv) words = g_strsplit_set(item, " \t", -1);
	g_autofree char *want = g_strdup_printf("%s=pass", method);
	gboolean pass = FALSE, aligned = prop == NULL;

	for (char **w = words; *w != NULL; w++) {
		if (g_ascii_strcasecmp(*w, want) == 0)
			pass = TRUE;
		else if (prop != NULL && g_ascii_strncasecmp(*w, prop, strlen(prop)) == 0) {
			const char *v = *w + strlen(prop);
			gsize lv = strlen(v), ld = strlen(domain);

			aligned = aligned || (lv >= ld && g_ascii_strcasecmp(v + lv - ld, domain) == 0 &&
					      (lv == ld || v[lv - ld - 1] == '@' || v[lv - ld - 1] == '.'));
		}
	}
	return pass && aligned;
}

/* RFC 8601: does an Authentication-Results header of the configured
 * authserv-id show that mail from @email really came from its domain
 * (DMARC pass, or DKIM pass for the domain, or SPF pass for it)? */
static gboolean
sender_authenticated(const MrConfig *cfg, const MrMessage *msg, const char *email)
{
	const char *domain = strrchr(email, '@') != NULL ? strrchr(email, '@') + 1 : email;

	for (guint i = 0; msg->auth_results != NULL && i < msg->auth_results->len; i++) {
		g_auto(GStrv) items = g_strsplit(g_ptr_array_index(msg->auth_results, i), ";", -1);
		g_auto(GStrv) id = g_strsplit_set(g_strstrip(items[0]), " \t", 2);

		if (id[0] == NULL || g_ascii_strcasecmp(id[0], cfg->authserv_id) != 0)
			continue;
		for (char **it = items + 1; *it != NULL; it++) {
			g_strstrip(*it);
			if (auth_item_passes(*it, "dmarc", NULL, NULL) ||
			    auth_item_passes(*it, "dkim", "header.d=", domain) ||
			    auth_item_passes(*it, "spf", "smtp.mailfrom=", domain))
				return TRUE;
		}
	}
	return FALSE;
}

/* Makes the parties of @plan: the sender, a forward's original sender,
 * then the To: and Cc: recipients, at most route.max_parties in all (a
 * message to a hundred thousand addresses makes no hundred thousand
 * contacts, and its routing stays short under the write lock). */
static void
collect_parties(const MrConfig *cfg, MrStore *store, const MrMessage *msg,
		const MrRouteFacts *facts, MrPlan *plan)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	PartyList l = { cfg, store, plan, seen };
	int from;

	/* Smart BCC trusts From: to say which user wrote.  With an
	 * authserv_id configured, an internal From: must be vouched for by
	 * the MTA's Authentication-Results, or it is nobody's. */
	if (cfg->authserv_id != NULL && msg->from != NULL && msg->from->email != NULL) {
		const char *at = strrchr(msg->from->email, '@');
		gboolean internal = (at != NULL && mr_config_is_own_domain(cfg, at + 1)) ||
				    (facts->from != NULL &&
				     mr_store_user_by_address(store, facts->from) != 0);

		if (internal && !facts->from_authenticated) {
			plan->untrusted = g_strdup(msg->from->email);
			add_recipients(&l, msg->to, facts->to);
			add_recipients(&l, msg->cc, facts->cc);
			return;
		}
	}
	from = add_party(&l, msg->from, facts->from, TRUE);
	MrParty *sender = party_at(plan, from);
	int original = -1;

	if (sender != NULL && sender->internal) {
		plan->owner = from;
		/* A user forwarding a customer's mail: the customer is the
		 * original sender. */
		if (msg->is_forward && msg->original_from != NULL) {
			original = add_party(&l, msg->original_from, facts->original_from, TRUE);
			if (original >= 0 && !party_at(plan, original)->internal)
				plan->customer = original;
		}
	} else if (sender != NULL) {
		plan->customer = from;
	}
	add_recipients(&l, msg->to, facts->to);
	add_recipients(&l, msg->cc, facts->cc);
	/* A user's own mail to a customer (smart BCC): the first external
	 * recipient is the customer. */
	if (plan->customer < 0 && plan->owner >= 0)
		for (guint i = 0; i < plan->parties->len && plan->customer < 0; i++)
			if (!party_at(plan, (int)i)->internal)
				plan->customer = (int)i;
}

/* --- the record ----------------------------------------------------------- */

/* Accepts @ref named by the sender (subject or plus address) when it exists
 * and the sender may name it: a user, or an external sender related to it.
 * A refusal is remembered in the plan so that it is visible. */
static gboolean
accept_named(MrStore *store, const MrConfig *cfg, MrPlan *plan, MrRecordRef ref)
{
	if (!mr_store_record_exists(store, ref, NULL))
		return FALSE;
	if (plan->owner >= 0) /* sent by a user */
		return TRUE;
	for (guint i = 0; i < plan->parties->len; i++) {
		const MrParty *p = party_at(plan, (int)i);

		if (p->is_sender && !p->internal && mr_store_record_related(store, ref, p->email))
			return TRUE;
	}
	if (plan->refused == NULL)
		plan->refused = mr_record_display_id(cfg, ref);
	return FALSE;
}

/* Accepts @ref found through the thread headers @ids when the sender may
 * reach it: a user, an external sender related to the record (as for ids
 * they name), or one who was an address of a referenced message.  Knowing
 * a Message-ID is not enough: it travels in every quote and forward.  A
 * refusal is remembered in the plan so that it is visible. */
static gboolean
accept_thread(MrStore *store, const MrConfig *cfg, MrPlan *plan, const char *const *ids,
	      MrRecordRef ref)
{
	if (plan->owner >= 0) /* sent by a user */
		return TRUE;
	for (guint i = 0; i < plan->parties->len; i++) {
		const MrParty *p = party_at(plan, (int)i);

		if (p->is_sender && !p->internal &&
		    (mr_store_record_related(store, ref, p->email) ||
		     mr_store_thread_has_address(store, ids, p->email)))
			return TRUE;
	}
	if (plan->refused == NULL)
		plan->refused = mr_record_display_id(cfg, ref);
	return FALSE;
}

/* The kinds of record a role looks for in thread headers, best first. */
static const MrRecordKind *
thread_kinds(MrRole role)
{
	static const MrRecordKind support[] = { MR_RECORD_TICKET, MR_RECORD_NONE };
	static const MrRecordKind sales[] = { MR_RECORD_LEAD, MR_RECORD_OPPORTUNITY,
					      MR_RECORD_TICKET, MR_RECORD_NONE };
	static const MrRecordKind bcc[] = { MR_RECORD_OPPORTUNITY, MR_RECORD_TICKET,
					    MR_RECORD_LEAD, MR_RECORD_NONE };

	return role == MR_ROLE_SUPPORT ? support : role == MR_ROLE_SALES ? sales : bcc;
}

/* A lead that was converted lives on as its opportunity; an archived or
 * done lead takes no more mail.  Returns FALSE when @ref is no longer a
 * place for mail. */
static gboolean
follow_lead(MrStore *store, MrRecordRef *ref)
{
	g_autofree char *status = NULL;

	if (ref->kind != MR_RECORD_LEAD)
		return TRUE;
	if (!mr_store_record_exists(store, *ref, &status))
		return FALSE;
	if (mr_status_from_name(MR_RECORD_LEAD, status) == MR_LEAD_CONVERTED) {
		ref->kind = MR_RECORD_OPPORTUNITY;
		ref->id = mr_store_lead_opportunity(store, ref->id);
		return ref->id != 0;
	}
	return mr_status_takes_mail(MR_RECORD_LEAD, mr_status_from_name(MR_RECORD_LEAD, status));
}

static void
find_record(const MrConfig *cfg, MrStore *store, const MrRouteFacts *facts, const char *detail,
	    MrPlan *plan)
{
	MrRecordRef ref = facts->subject_ref;

	if (facts->subject_found && accept_named(store, cfg, plan, ref)) {
		plan->record = ref;
		plan->found_by = MR_FOUND_SUBJECT;
		return;
	}
	if (detail != NULL && mr_record_parse_id(cfg, detail, MR_RECORD_NONE, &ref) &&
	    follow_lead(store, &ref) && accept_named(store, cfg, plan, ref)) {
		plan->record = ref;
		plan->found_by = MR_FOUND_PLUS;
		return;
	}
	{
		const GPtrArray *ids = facts->thread_ids;

		for (const MrRecordKind *k = thread_kinds(plan->role); *k != MR_RECORD_NONE; k++)
			if (ids->len > 1 &&
			    mr_store_record_by_thread(store, (const char *const *)ids->pdata, *k,
						      &ref) &&
			    follow_lead(store, &ref) &&
			    accept_thread(store, cfg, plan, (const char *const *)ids->pdata, ref)) {
				plan->record = ref;
				plan->found_by = MR_FOUND_THREAD;
				return;
			}
	}
	if (plan->role == MR_ROLE_SALES && plan->customer >= 0 &&
	    party_at(plan, plan->customer)->is_sender) {
		gint64 lead = mr_store_open_lead_by_email(store, party_at(plan, plan->customer)->email);

		if (lead != 0) {
			plan->record.kind = MR_RECORD_LEAD;
			plan->record.id = lead;
			plan->found_by = MR_FOUND_OPEN_LEAD;
		}
	}
}

static char *
plan_title(const MrMessage *msg)
{
	const char *s = msg->subject_normalised;

	if (msg->is_forward && msg->original_subject != NULL && *msg->original_subject != '\0')
		return mr_subject_normalise(msg->original_subject, NULL);
	return g_strdup(s != NULL && *s != '\0' ? s : "(no subject)");
}

void
mr_route_decide(MrStore *store, const MrMessage *msg, const MrRouteFacts *facts, MrRole role,
		MrPlan *plan)
{
	gboolean automatic = msg->auto_kind != MR_AUTO_NONE;
	const MrParty *customer = party_at(plan, plan->customer);

	g_return_if_fail(store != NULL && msg != NULL && facts != NULL && plan != NULL);

	/* from what routing found, whatever was decided before */
	plan->action = MR_ACTION_LOG;
	plan->record = plan->found;
	plan->also.kind = MR_RECORD_NONE;
	plan->also.id = 0;
	plan->reopen = FALSE;
	g_clear_pointer(&plan->title, g_free);
	switch (role) {
	case MR_ROLE_SUPPORT:
		if (plan->record.kind == MR_RECORD_TICKET) {
			plan->action = MR_ACTION_TICKET_UPDATE;
			g_clear_pointer(&plan->record_status, g_free);
			mr_store_record_exists(store, plan->record, &plan->record_status);
			plan->reopen = !automatic &&
				       mr_status_can_change(MR_RECORD_TICKET,
							    mr_status_from_name(MR_RECORD_TICKET,
										plan->record_status),
							    MR_TICKET_OPEN, MR_CHANGE_BY_MAIL);
		} else if (!automatic && msg->status != MR_PARSE_FAILED) {
			plan->action = MR_ACTION_TICKET_CREATE;
			plan->title = g_strdup(facts->title);
			plan->also = plan->record; /* e.g. [OPP-3]: log it there too */
			plan->record.kind = MR_RECORD_NONE;
			plan->record.id = 0;
		}
		break;
	case MR_ROLE_SALES:
		if (plan->record.kind == MR_RECORD_LEAD)
			plan->action = MR_ACTION_LEAD_UPDATE;
		else if (plan->record.kind == MR_RECORD_NONE && !automatic && customer != NULL &&
			 customer->is_sender && msg->status != MR_PARSE_FAILED) {
			plan->action = MR_ACTION_LEAD_CREATE;
			plan->title = g_strdup(facts->title);
		}
		break;
	case MR_ROLE_BCC:
	case MR_ROLE_NONE:
	default:
		plan->action = MR_ACTION_LOG;
		break;
	}
	plan->is_reply = plan->record.kind != MR_RECORD_NONE && customer != NULL &&
			 customer->is_sender && plan->owner < 0 && !automatic;
	/* a user wrote to the customer: BCC, or support@ in Cc */
	plan->is_response = plan->owner >= 0 && customer != NULL && !customer->is_sender &&
			    !automatic;
	if (plan->untrusted != NULL) { /* a forged user creates nothing */
		plan->action = MR_ACTION_LOG;
		plan->reopen = FALSE;
		plan->is_reply = FALSE;
		plan->is_response = FALSE;
		plan->also.kind = MR_RECORD_NONE;
		g_clear_pointer(&plan->title, g_free);
	}
}

MrPlan *
mr_route_plan(const MrConfig *cfg, MrStore *store, const MrMessage *msg, const char *recipient,
	      const char *envelope_from, GError **error)
{
	g_autoptr(MrRouteFacts) facts = NULL;

	g_return_val_if_fail(cfg != NULL && store != NULL && msg != NULL, NULL);

	facts = mr_route_facts_new(cfg, msg);
	return mr_route_plan_facts(cfg, store, msg, facts, recipient, envelope_from, error);
}

MrPlan *
mr_route_plan_facts(const MrConfig *cfg, MrStore *store, const MrMessage *msg,
		    const MrRouteFacts *facts, const char *recipient, const char *envelope_from,
		    GError **error)
{
	g_autoptr(MrPlan) plan = mr_plan_new();
	g_autofree char *detail = NULL;
	const MrMailroomAddress *addr;

	g_return_val_if_fail(cfg != NULL && store != NULL && msg != NULL && facts != NULL, NULL);

	addr = recipient != NULL ? mr_config_find_address(cfg, recipient, &detail) : NULL;
	if (addr == NULL) {
		g_set_error(error, MR_ROUTE_ERROR, MR_ROUTE_ERROR_NO_ADDRESS,
			    "%s is not a mailroom address", recipient != NULL ? recipient : "(none)");
		return NULL;
	}
	plan->recipient = mr_address_normalise(recipient);
	plan->role = addr->role;
	plan->envelope_from = g_strdup(envelope_from);
	plan->create_contacts = msg->auto_kind == MR_AUTO_NONE;
	collect_parties(cfg, store, msg, facts, plan);
	find_record(cfg, store, facts, detail, plan);
	plan->found = plan->record;
	mr_route_decide(store, msg, facts, plan->role, plan);
	/* A look-up that failed answered "not found": a plan made from it
	 * (a refused link, a new ticket) must not be applied. */
	if (!mr_store_check(store, error)) {
		g_prefix_error(error, "routing: ");
		return NULL;
	}
	return g_steal_pointer(&plan);
}
