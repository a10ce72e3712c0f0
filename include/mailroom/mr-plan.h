/* mr-plan.h - what routing decided for one delivered message.
 *
 * The route stage fills a plan without writing anything; the store stage
 * applies it, with the raw message, in one transaction.  Types only, shared
 * by both stages so that neither includes the other's internals (model
 * layer: mr-plan.c). */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-record.h"
#include "mailroom/mr-rule-set.h"

G_BEGIN_DECLS

typedef enum {
	MR_FOUND_NONE,
	MR_FOUND_SUBJECT,   /* [TKT-12] in the subject */
	MR_FOUND_PLUS,      /* support+tkt-12@ */
	MR_FOUND_THREAD,    /* In-Reply-To/References of a stored message */
	MR_FOUND_OPEN_LEAD, /* the sender's open inbox lead */
} MrFoundBy;

typedef enum {
	MR_ACTION_LOG,           /* link only */
	MR_ACTION_TICKET_CREATE, /* new ticket for @customer */
	MR_ACTION_TICKET_UPDATE, /* add to @record (maybe reopen) */
	MR_ACTION_LEAD_CREATE,   /* new inbox lead for @customer */
	MR_ACTION_LEAD_UPDATE,   /* add to the open lead @record */
	MR_ACTION_IGNORE,        /* a rule's ignore: stored, linked to nothing */
} MrAction;

typedef struct {
	char *email;     /* normalised (lower-case) address */
	char *name;      /* (nullable): display name */
	gboolean internal;
	gint64 user_id;  /* internal: the user's id, 0 when not yet a user */
	gint64 contact_id; /* external: the contact's id, 0 when new */
	gint64 account_id; /* external: the account of @contact_id, 0 when none */
	gboolean is_sender; /* From: (or the original sender of a forward) */
} MrParty;

typedef struct {
	char *recipient;  /* envelope recipient, lower-case */
	MrRole role;
	char *envelope_from; /* (nullable) */
	GPtrArray *parties;  /* MrParty*: no mailroom addresses, no duplicates */
	int owner;           /* index of the internal sender in @parties, or -1 */
	int customer;        /* index of the external customer, or -1 */
	gboolean create_contacts; /* FALSE for auto-replies, bounces, bulk */
	MrRecordRef found;   /* the existing record routing found, if any */
	MrRecordRef record;  /* the existing record it belongs to, if any (the
	                        decision may leave @found for a new one) */
	MrFoundBy found_by;
	MrRecordRef also;    /* a record named by the mail that is not the one
	                        acted on (an opportunity named in mail to
	                        support): logged on, nothing more */
	char *refused;       /* (nullable): "TKT-12" named in the subject but
	                        not attached: the sender is not related to it */
	char *untrusted;     /* (nullable): an internal From: address that the
	                        configured Authentication-Results did not pass:
	                        not taken as the user's, nothing created */
	MrAction action;
	gboolean reopen;     /* the ticket was solved or closed */
	char *record_status; /* (nullable): the status of @record when routing
	                        looked at it (a reopened ticket's old one) */
	gboolean is_reply;   /* an external party answered an existing record */
	gboolean is_response; /* a user of ours wrote to the customer (not a
	                         forward, not automatic): response.sent on the
	                         record acted on */
	char *title;         /* subject for a new ticket or lead */
	MrRuleOutcome *rules; /* (nullable): what the rules that fired ask for
	                         (mr_crm_rules_amend()); NULL: no rule ran */
} MrPlan;

/* Returns: (transfer full): an empty plan (action LOG, no record). */
MrPlan *mr_plan_new(void);

/* Frees @plan; NULL-safe. */
void mr_plan_free(MrPlan *plan);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrPlan, mr_plan_free)

G_END_DECLS
