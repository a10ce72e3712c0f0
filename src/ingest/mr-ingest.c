/* mr-ingest.c - the one path of a delivered message: parse, then route and
 * store inside a single write transaction, then report.
 *
 * Ingest stage.  Parsing happens before the write lock is taken; routing
 * happens under it, so that what it looked up is what the apply sees. */
#define G_LOG_DOMAIN "mailroom-ingest"

#include "mailroom/mr-error.h"
#include "mailroom/mr-ingest.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-route.h"

char *
mr_ingest_content_key(GBytes *raw)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(raw, &len);
	gsize skip = mr_parse_skip_mbox_from(data, len);

	return g_compute_checksum_for_data(G_CHECKSUM_SHA256, data + skip, len - skip);
}

/* Route and apply under the open transaction.  FALSE with @error. */
static gboolean
ingest_apply(const MrConfig *cfg, MrStore *store, GBytes *raw, const char *key,
	     const MrMessage *msg, const char *recipient, const char *envelope_from,
	     MrDelivery *out, GError **error)
{
	gint64 row = mr_store_message_by_key(store, key);
	g_autoptr(MrPlan) plan = NULL;
	MrApplied applied = { 0 };

	if (row != 0 && mr_store_delivery_exists(store, row, recipient)) {
		out->message_row = row;
		out->duplicate = TRUE;
		return TRUE;
	}
	plan = mr_route_plan(cfg, store, msg, recipient, envelope_from, error);
	if (plan == NULL)
		return FALSE;
	if (!mr_store_apply(store, plan, raw, key, msg, row, &applied, error))
		return FALSE;
	out->message_row = applied.message_row;
	out->new_message = applied.new_message;
	out->record = applied.record;
	out->action = plan->action;
	out->refused = plan->refused != NULL;
	return TRUE;
}

gboolean
mr_ingest_deliver(const MrConfig *cfg, MrStore *store, GBytes *raw, const char *recipient,
		  const char *envelope_from, MrDelivery *out, GError **error)
{
	g_autofree char *key = NULL;
	g_autofree char *rcpt = NULL;
	g_autoptr(MrMessage) msg = NULL;
	MrParseOptions opts = { 0 };
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
	rcpt = g_ascii_strdown(recipient, -1);
	key = mr_ingest_content_key(raw);
	opts.fallback_charsets = (const char *const *)cfg->fallback_charsets;
	msg = mr_parse_message(raw, &opts);
	result.degraded = msg->status != MR_PARSE_OK;

	if (!mr_store_begin(store, error))
		return FALSE;
	if (!ingest_apply(cfg, store, raw, key, msg, rcpt, envelope_from, &result, error)) {
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
