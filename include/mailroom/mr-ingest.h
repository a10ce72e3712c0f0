/* mr-ingest.h - stage 1: one delivered message through parse, route and
 * store.  Every door (mailroomctl deliver, SMTP/LMTP, IMAP) goes through
 * here; the door acknowledges only after the COMMIT that follows. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-plan.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-rule-set.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

typedef struct {
	gint64 message_row;   /* the stored message */
	gboolean duplicate;   /* already delivered to this recipient: no change */
	gboolean new_message; /* the bytes were stored by this delivery */
	MrRecordRef record;   /* the record created or updated, if any */
	MrAction action;      /* what routing decided */
	gboolean refused;     /* an id in the subject was not attached */
	gboolean degraded;    /* the parse was degraded or failed */
} MrDelivery;

/* A message ready to be stored: its bytes, content key, parse and routing
 * facts.  Made on any thread (the parse pool); applied on the writer's. */
typedef struct {
	GBytes *raw;
	char *key;
	MrMessage *msg;
	MrRouteFacts *facts;
	gint64 received_us;  /* when it was parsed: the rules' weekday and hour */
	MrRuleScan *scan;    /* (nullable): the rules' scan of @msg; NULL: no
	                        rule runs */
} MrIngestItem;

/* Computes the content key of @raw: the hex SHA-256 of the bytes after a
 * leading mbox "From " line, with CR LF counted as LF (so the same mail
 * over SMTP and through a pipe is one message).  Returns: (transfer full). */
char *mr_ingest_content_key(GBytes *raw);

/* Parses @raw (a reference is taken) with the options of @cfg and works
 * out its routing facts.  Never fails.  Returns: (transfer full): the
 * item. */
MrIngestItem *mr_ingest_item_new(const MrConfig *cfg, GBytes *raw);

/* Frees @item; NULL-safe. */
void mr_ingest_item_free(MrIngestItem *item);

/* Scans @item's message with the rules of @set (mr_rule_scan_new()):
 * its addresses, subject, body, headers, attachments, auto and the
 * weekday and hour it was received in @cfg's timezone, replacing any
 * scan made before; with @explain, keeping what each condition was
 * checked against.  Linear in the message; no look-up. */
void mr_ingest_item_scan(const MrConfig *cfg, MrIngestItem *item, MrRuleSet *set,
			 gboolean explain);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrIngestItem, mr_ingest_item_free)

/* Routes and stores @item for @recipient inside the transaction open on
 * @store, under a savepoint (the rules of @item's scan amending the
 * plan, mr_crm_rules_amend()): on failure the message's work is undone and
 * the transaction stays usable for the others of a group commit.
 * A duplicate delivery writes nothing and succeeds; for a mailbox
 * ("imap:NAME") any message stored before is a duplicate, whichever way
 * it came.  Returns FALSE with
 * @error (MR_ROUTE_ERROR_NO_ADDRESS: permanent; MR_STORE_ERROR_*:
 * temporary). */
gboolean mr_ingest_apply(const MrConfig *cfg, MrStore *store, const MrIngestItem *item,
			 const char *recipient, const char *envelope_from, MrDelivery *out,
			 GError **error);

/* As mr_ingest_apply(), and sets @plan_out (transfer full) to the plan
 * that was applied (or found a duplicate delivery): rule test reads it. */
gboolean mr_ingest_apply_plan(const MrConfig *cfg, MrStore *store, const MrIngestItem *item,
			      const char *recipient, const char *envelope_from, MrDelivery *out,
			      MrPlan **plan_out, GError **error);

/* As mr_ingest_apply(), for a group commit: the savepoint is released
 * with mr_store_release_later(), so that a success may still turn into a
 * failure, set in *@later (NULL until then, valid until the commit), at
 * the next mr_store_settle() -- which the caller makes before other work
 * and which mr_store_commit() makes. */
gboolean mr_ingest_apply_later(const MrConfig *cfg, MrStore *store, const MrIngestItem *item,
			       const char *recipient, const char *envelope_from,
			       MrDelivery *out, GError **later, GError **error);

/* Parses @raw, routes it for @recipient (with the rules read in the
 * transaction) and stores it in one transaction on @store (which must
 * have none open).  @envelope_from is nullable.
 * Returns TRUE after COMMIT (or for a duplicate delivery, which writes
 * nothing) and fills @out (nullable).  Returns FALSE with @error:
 * MR_PARSE_ERROR_EMPTY for no bytes, MR_ROUTE_ERROR_NO_ADDRESS for a
 * recipient that is no mailroom address (both permanent), MR_STORE_ERROR_*
 * otherwise (temporary: nothing was stored). */
gboolean mr_ingest_deliver(const MrConfig *cfg, MrStore *store, GBytes *raw,
			   const char *recipient, const char *envelope_from, MrDelivery *out,
			   GError **error);

#define MR_INGEST_ERROR (mr_ingest_error_quark())

typedef enum {
	MR_INGEST_ERROR_NO_MAILBOX, /* the mailbox a quarantined message came
	                               from is not configured any more */
	MR_INGEST_ERROR_UNUSABLE,   /* the bytes kept cannot be stored (kept
	                               incomplete, or still too large) */
} MrIngestError;

GQuark mr_ingest_error_quark(void);

/* The quarantine retry (a use case of mailroomctl's `message retry`):
 * quarantined message @id (mr-store-mailbox.h) goes through the ingest
 * path again, for the IMAP mailbox it came from, and leaves the
 * quarantine in the same transaction that stores it.  Returns TRUE after
 * COMMIT and fills @out (nullable).  Returns FALSE with @error:
 * MR_STORE_ERROR_NOT_FOUND for no such id, MR_INGEST_ERROR_NO_MAILBOX,
 * MR_INGEST_ERROR_UNUSABLE, or another MR_STORE_ERROR (nothing changed). */
gboolean mr_ingest_quarantine_retry(const MrConfig *cfg, MrStore *store, gint64 id,
				    MrDelivery *out, GError **error);

G_END_DECLS
