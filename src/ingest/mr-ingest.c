/* mr-ingest.c - the one path of a delivered message: parse, then route and
 * store inside the write transaction, then report.
 *
 * Ingest stage.  Parsing happens before the write lock is taken (on any
 * thread); routing happens under it, so that what it looked up is what the
 * apply sees.  Each message gets a savepoint, so that a group commit can
 * drop one failing message and keep the others. */
#define G_LOG_DOMAIN "mailroom-ingest"

#include <string.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-crm.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-hash.h"
#include "mailroom/mr-imap-config.h"
#include "mailroom/mr-ingest.h"
#include "mailroom/mr-store-mailbox.h"
#include "mailroom/mr-route.h"

/* Attempts of one message when a constraint refuses a row that another
 * daemon inserted meanwhile (each attempt sees more of their work). */
#define MR_INGEST_CONSTRAINT_RETRIES 3

char *
mr_ingest_content_key(GBytes *raw)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(raw, &len);
	gsize pos = mr_parse_skip_mbox_from(data, len);
	MrSha256 *sum = mr_sha256_new();

	/* Hash runs between CRs that precede an LF, leaving those CRs out. */
	while (pos < len) {
		const guint8 *cr = memchr(data + pos, '\r', len - pos);
		gsize end = cr != NULL ? (gsize)(cr - data) : len;

		mr_sha256_update(sum, data + pos, end - pos);
		if (cr == NULL)
			break;
		if (end + 1 >= len || data[end + 1] != '\n')
			mr_sha256_update(sum, cr, 1);
		pos = end + 1;
	}
	return mr_sha256_finish_hex(sum);
}

MrIngestItem *
mr_ingest_item_new(const MrConfig *cfg, GBytes *raw)
{
	MrIngestItem *item = g_new0(MrIngestItem, 1);
	MrParseOptions opts = { 0 };

	g_return_val_if_fail(cfg != NULL && raw != NULL, NULL);

	opts.fallback_charsets = (const char *const *)cfg->parse.fallback_charsets;
	opts.max_mime_parts = (guint)cfg->parse.max_mime_parts;
	opts.max_header_lines = (guint)cfg->parse.max_header_lines;
	opts.max_addresses = (guint)cfg->parse.max_addresses;
	opts.max_references = (guint)cfg->parse.max_references;
	opts.max_header_size = (guint)cfg->parse.max_header_size;
	item->raw = g_bytes_ref(raw);
	item->key = mr_ingest_content_key(raw);
	item->msg = mr_parse_message(raw, &opts);
	item->facts = mr_route_facts_new(cfg, item->msg);
	item->received_us = mr_clock_now_us();
	return item;
}

/* The addresses of @list (MrAddress*) that are not empty, NULL-terminated,
 * borrowed. */
static const char **
scan_addresses(const GPtrArray *list, const MrAddress *one)
{
	GPtrArray *out = g_ptr_array_new();

	if (one != NULL && one->email != NULL && *one->email != '\0')
		g_ptr_array_add(out, one->email);
	for (guint i = 0; list != NULL && i < list->len; i++) {
		const MrAddress *a = g_ptr_array_index(list, i);

		if (a->email != NULL && *a->email != '\0')
			g_ptr_array_add(out, a->email);
	}
	g_ptr_array_add(out, NULL);
	return (const char **)g_ptr_array_free(out, FALSE);
}

void
mr_ingest_item_scan(const MrConfig *cfg, MrIngestItem *item, MrRuleSet *set, gboolean explain)
{
	const MrMessage *msg = item->msg;
	g_autofree const char **from = NULL, **to = NULL, **cc = NULL;
	g_autofree MrRuleHeader *headers = NULL;
	g_autoptr(GTimeZone) utc = NULL;
	g_autoptr(GDateTime) when = NULL;
	MrRuleValues v = { 0 };

	g_return_if_fail(cfg != NULL && item != NULL && set != NULL);

	g_clear_pointer(&item->scan, mr_rule_scan_free);
	if (mr_rule_set_enabled(set) == 0 && !explain) {
		item->scan = mr_rule_scan_new(set, &v, FALSE); /* nothing to scan */
		return;
	}
	v.from = from = scan_addresses(NULL, msg->from);
	v.to = to = scan_addresses(msg->to, NULL);
	v.cc = cc = scan_addresses(msg->cc, NULL);
	v.subject = msg->subject;
	v.body = msg->body_text;
	/* the scan folds them, once, when a rule compares them folded */
	v.n_headers = msg->headers != NULL ? msg->headers->len : 0;
	headers = g_new0(MrRuleHeader, v.n_headers + 1);
	for (gsize i = 0; i < v.n_headers; i++) {
		const MrHeader *h = g_ptr_array_index(msg->headers, i);

		headers[i].name = h->name;
		headers[i].value = h->value;
	}
	v.headers = headers;
	v.attachments = msg->attachments != NULL ? (int)msg->attachments->len : 0;
	v.is_auto = msg->auto_kind != MR_AUTO_NONE;
	if (cfg->tz == NULL)
		utc = g_time_zone_new_utc();
	when = g_date_time_new_from_unix_utc(item->received_us / G_USEC_PER_SEC);
	if (when != NULL) {
		g_autoptr(GDateTime) local = g_date_time_to_timezone(when, cfg->tz != NULL ? cfg->tz
											  : utc);

		v.weekday = g_date_time_get_day_of_week(local) - 1; /* 1 is Monday */
		v.hour = g_date_time_get_hour(local);
	}
	item->scan = mr_rule_scan_new(set, &v, explain);
}

void
mr_ingest_item_free(MrIngestItem *item)
{
	if (item == NULL)
		return;
	g_bytes_unref(item->raw);
	g_free(item->key);
	mr_route_facts_free(item->facts);
	mr_rule_scan_free(item->scan);
	mr_message_free(item->msg);
	g_free(item);
}

/* Route and apply; the caller holds the savepoint. */
static gboolean
ingest_route_apply(const MrConfig *cfg, MrStore *store, const MrIngestItem *item,
		   const char *rcpt, const char *envelope_from, MrDelivery *out, MrPlan **plan_out,
		   GError **error)
{
	g_autoptr(MrPlan) plan = NULL;
	MrApplied applied = { 0 };

	out->degraded = item->msg->status != MR_PARSE_OK;
	/* A message fetched from a mailbox that is stored already -- the same
	 * mail in a second folder (Gmail's labels), or delivered by SMTP too --
	 * was routed when it came first: a duplicate, not a second ticket. */
	if (g_str_has_prefix(rcpt, "imap:")) {
		gint64 row = mr_store_message_by_key(store, item->key);

		if (!mr_store_check(store, error))
			return FALSE;
		if (row != 0) {
			out->message_row = row;
			out->duplicate = TRUE;
			return TRUE;
		}
	}
	/* Routing only reads; the apply finds a duplicate delivery as it
	 * inserts the message (by its content key) and then writes nothing.
	 * The insert starts first, so that on PostgreSQL it goes with
	 * routing's first look-up (one round trip less per message). */
	if (!mr_store_message_start(store, item->raw, item->key, item->msg, error))
		return FALSE;
	plan = mr_route_plan_facts(cfg, store, item->msg, item->facts, rcpt, envelope_from, error);
	if (plan == NULL)
		return FALSE;
	if (item->scan != NULL &&
	    !mr_crm_rules_amend(cfg, store, item->scan, item->msg, item->facts, plan, error))
		return FALSE;
	if (!mr_crm_apply(cfg, store, plan, item->raw, item->key, item->msg, 0, &applied, error))
		return FALSE;
	out->message_row = applied.message_row;
	if (applied.duplicate) {
		out->duplicate = TRUE;
	} else {
		out->new_message = applied.new_message;
		out->record = applied.record;
		out->action = plan->action;
		out->refused = plan->refused != NULL;
	}
	if (plan_out != NULL)
		*plan_out = g_steal_pointer(&plan);
	return TRUE;
}

/* mr_ingest_apply(), releasing with mr_store_release_later() when @later
 * is not NULL. */
static gboolean
ingest_apply(const MrConfig *cfg, MrStore *store, const MrIngestItem *item,
	     const char *recipient, const char *envelope_from, MrDelivery *out, MrPlan **plan_out,
	     GError **later, GError **error)
{
	g_autofree char *rcpt = NULL;
	MrDelivery result = { 0 };

	g_return_val_if_fail(cfg != NULL && store != NULL && item != NULL, FALSE);

	if (recipient == NULL || mr_config_find_address(cfg, recipient, NULL) == NULL) {
		g_set_error(error, MR_ROUTE_ERROR, MR_ROUTE_ERROR_NO_ADDRESS,
			    "%s is not a mailroom address", recipient != NULL ? recipient : "(none)");
		return FALSE;
	}
	rcpt = mr_address_normalise(recipient);
	/* With several daemons on one database, another may insert the same
	 * contact, account or lead between our look-up and our
	 * insert: a constraint refuses ours.  Undone to the savepoint, the
	 * work is done again, and this time the look-ups see the other's
	 * committed row.  (One writer on SQLite never races.) */
	for (int attempt = 1;; attempt++) {
		g_autoptr(GError) local = NULL;

		memset(&result, 0, sizeof result);
		if (!mr_store_savepoint(store, error))
			return FALSE;
		if (plan_out != NULL)
			g_clear_pointer(plan_out, mr_plan_free);
		if (ingest_route_apply(cfg, store, item, rcpt, envelope_from, &result, plan_out,
				       &local) &&
		    (later != NULL ? mr_store_release_later(store, later, &local)
				   : mr_store_release(store, &local)))
			break;
		/* The message before, released without waiting, may have
		 * failed: then the server skipped this one's work, savepoint
		 * and all, and this one goes again once that one is undone. */
		if (!mr_store_settle(store)) {
			g_debug("%s: an earlier message failed; again", rcpt);
			attempt--;
			continue;
		}
		mr_store_rollback_to(store);
		if (attempt < MR_INGEST_CONSTRAINT_RETRIES &&
		    g_error_matches(local, MR_STORE_ERROR, MR_STORE_ERROR_CONSTRAINT) &&
		    mr_store_in_transaction(store)) {
			g_debug("%s: %s; routing again", rcpt, local->message);
			continue;
		}
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (out != NULL)
		*out = result;
	return TRUE;
}

gboolean
mr_ingest_apply(const MrConfig *cfg, MrStore *store, const MrIngestItem *item,
		const char *recipient, const char *envelope_from, MrDelivery *out, GError **error)
{
	return ingest_apply(cfg, store, item, recipient, envelope_from, out, NULL, NULL, error);
}

gboolean
mr_ingest_apply_plan(const MrConfig *cfg, MrStore *store, const MrIngestItem *item,
		     const char *recipient, const char *envelope_from, MrDelivery *out,
		     MrPlan **plan_out, GError **error)
{
	g_return_val_if_fail(plan_out != NULL && *plan_out == NULL, FALSE);

	if (!ingest_apply(cfg, store, item, recipient, envelope_from, out, plan_out, NULL,
			  error)) {
		g_clear_pointer(plan_out, mr_plan_free);
		return FALSE;
	}
	return TRUE;
}

gboolean
mr_ingest_apply_later(const MrConfig *cfg, MrStore *store, const MrIngestItem *item,
		      const char *recipient, const char *envelope_from, MrDelivery *out,
		      GError **later, GError **error)
{
	g_return_val_if_fail(later != NULL, FALSE);

	return ingest_apply(cfg, store, item, recipient, envelope_from, out, NULL, later, error);
}

/* Scans @item with the rules as the open transaction reads them. */
static gboolean
ingest_scan_current(const MrConfig *cfg, MrStore *store, MrIngestItem *item, GError **error)
{
	g_autoptr(MrRuleSet) set = mr_crm_rules_load(store, error);

	if (set == NULL)
		return FALSE;
	mr_ingest_item_scan(cfg, item, set, FALSE);
	return TRUE;
}

gboolean
mr_ingest_deliver(const MrConfig *cfg, MrStore *store, GBytes *raw, const char *recipient,
		  const char *envelope_from, MrDelivery *out, GError **error)
{
	g_autoptr(MrIngestItem) item = NULL;
	MrDelivery result = { 0 };

	g_return_val_if_fail(cfg != NULL && store != NULL && raw != NULL, FALSE);

	if (g_bytes_get_size(raw) == 0) {
		g_set_error(error, MR_PARSE_ERROR, MR_PARSE_ERROR_EMPTY, "empty message");
		return FALSE;
	}
	if (recipient == NULL || mr_config_find_address(cfg, recipient, NULL) == NULL) {
		g_set_error(error, MR_ROUTE_ERROR, MR_ROUTE_ERROR_NO_ADDRESS,
			    "%s is not a mailroom address", recipient != NULL ? recipient : "(none)");
		return FALSE;
	}
	item = mr_ingest_item_new(cfg, raw);
	if (!mr_store_begin(store, error))
		return FALSE;
	if (!ingest_scan_current(cfg, store, item, error) ||
	    !mr_ingest_apply(cfg, store, item, recipient, envelope_from, &result, error)) {
		mr_store_rollback(store);
		return FALSE;
	}
	if (result.duplicate) {
		mr_store_rollback(store);
	} else if (!mr_store_commit(store, error)) {
		mr_store_rollback(store);
		return FALSE;
	}
	if (out != NULL)
		*out = result;
	return TRUE;
}

G_DEFINE_QUARK(mr-ingest-error-quark, mr_ingest_error)

gboolean
mr_ingest_quarantine_retry(const MrConfig *cfg, MrStore *store, gint64 id, MrDelivery *out,
			   GError **error)
{
	g_autoptr(MrQuarantineRow) q = mr_store_quarantine_get(store, id, error);
	g_autoptr(MrIngestItem) item = NULL;
	const MrImapMailbox *mb;
	MrDelivery result = { 0 };
	gsize size;

	if (q == NULL)
		return FALSE;
	mb = mr_imap_config_find(cfg, q->mailbox);
	if (mb == NULL) {
		g_set_error(error, MR_INGEST_ERROR, MR_INGEST_ERROR_NO_MAILBOX,
			    "mailbox %s is not in the configuration's imap list", q->mailbox);
		return FALSE;
	}
	size = g_bytes_get_size(q->raw);
	if (q->size > (gint64)size) {
		g_set_error(error, MR_INGEST_ERROR, MR_INGEST_ERROR_UNUSABLE,
			    "message %" G_GINT64_FORMAT " was kept incomplete (%" G_GSIZE_FORMAT
			    " of its %" G_GINT64_FORMAT " bytes); it is still in the mailbox: move it"
			    " out of the folder and back and mailroomd fetches it again",
			    id, size, q->size);
		return FALSE;
	}
	if ((gint64)size > cfg->limits.max_message_size) {
		g_set_error(error, MR_INGEST_ERROR, MR_INGEST_ERROR_UNUSABLE,
			    "message %" G_GINT64_FORMAT " (%" G_GSIZE_FORMAT " bytes) is still larger"
			    " than limits.max_message_size (%" G_GINT64_FORMAT ")",
			    id, size, cfg->limits.max_message_size);
		return FALSE;
	}
	item = mr_ingest_item_new(cfg, q->raw);
	if (!mr_store_begin(store, error) || !ingest_scan_current(cfg, store, item, error) ||
	    !mr_ingest_apply(cfg, store, item, mb->address.address, NULL, &result, error) ||
	    !mr_store_quarantine_delete(store, id, error) || !mr_store_commit(store, error)) {
		mr_store_rollback(store);
		return FALSE;
	}
	if (out != NULL)
		*out = result;
	return TRUE;
}
