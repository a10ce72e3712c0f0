/* mr-route.h - stage 3: decide what a delivered message means.
 *
 * Routing reads (users, contacts, records, stored thread headers) but never
 * writes: its answer is an MrPlan that the store applies.  Run it inside the
 * write transaction so that what it read cannot change before the apply. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-plan.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* What routing needs from a message that no look-up changes: its
 * addresses normalised, the id in its subject, its thread's Message-IDs,
 * the title of a record made from it, whether Authentication-Results vouch
 * for its From:.  Linear in the message; made without the store (on the
 * parse pool), so that only look-ups run under the write lock. */
typedef struct _MrRouteFacts MrRouteFacts;

/* Returns: (transfer full): the facts of @msg under @cfg; @msg must
 * outlive them. */
MrRouteFacts *mr_route_facts_new(const MrConfig *cfg, const MrMessage *msg);

/* Frees @facts; NULL-safe. */
void mr_route_facts_free(MrRouteFacts *facts);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRouteFacts, mr_route_facts_free)

/* Plans the delivery of @msg to @recipient (envelope recipient, any case,
 * plus forms allowed) from @envelope_from (nullable), working out its
 * facts first (see mr_route_plan_facts()).
 * Returns: (transfer full) (nullable): the plan, or NULL with @error:
 * MR_ROUTE_ERROR_NO_ADDRESS when @recipient is no mailroom address, or
 * MR_STORE_ERROR_* (temporary) when a look-up failed. */
MrPlan *mr_route_plan(const MrConfig *cfg, MrStore *store, const MrMessage *msg,
		      const char *recipient, const char *envelope_from, GError **error);

/* Like mr_route_plan(), with the @facts of @msg made before (under the
 * same @cfg): only the look-ups and the decisions happen here. */
MrPlan *mr_route_plan_facts(const MrConfig *cfg, MrStore *store, const MrMessage *msg,
			    const MrRouteFacts *facts, const char *recipient,
			    const char *envelope_from, GError **error);

/* Decides what @plan (made by mr_route_plan_facts() for @msg and its
 * @facts) does as mail to a mailroom address of @role would: a support
 * address makes or updates a ticket, sales an inbox lead, bcc logs on
 * the record found; auto-replies and failed parses create nothing, nor
 * does an untrusted internal sender.  Starts again from the record
 * routing found (@plan->found), whatever was decided before: a rule's
 * "ticket" or "lead" decides again with another role. */
void mr_route_decide(MrStore *store, const MrMessage *msg, const MrRouteFacts *facts, MrRole role,
		     MrPlan *plan);

/* Finds the first record id ("[TKT-12]", "[Acme opp-42 x]") inside square
 * brackets of @subject, with the configured prefixes, any case, within
 * the first route.max_subject_scan bytes; in one pass, however many
 * brackets.  Returns TRUE and sets @out when found. */
gboolean mr_route_subject_id(const MrConfig *cfg, const char *subject, MrRecordRef *out);

G_END_DECLS
