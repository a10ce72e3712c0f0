/* mr-store-record.h - stage 4: the store's records: inbox leads,
 * opportunities and tickets. */
#pragma once

#include <glib.h>

#include "mailroom/mr-record.h"
#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* --- look-ups for routing (read only; see mr_store_check()) ----------- */

/* Returns TRUE when @ref exists; sets @status_out (transfer full,
 * nullable) to its status. */
gboolean mr_store_record_exists(MrStore *store, MrRecordRef ref, char **status_out);

/* Returns TRUE when @email is the contact of @ref, has the domain of the
 * account of @ref's contact, or belongs to the record's owner. */
gboolean mr_store_record_related(MrStore *store, MrRecordRef ref, const char *email);

/* Looks the Message-IDs @ids (newest first) up among stored messages and
 * returns in @out the newest record of kind @kind linked to the first one
 * found.  Returns TRUE when found. */
gboolean mr_store_record_by_thread(MrStore *store, const char *const *ids,
				   MrRecordKind kind, MrRecordRef *out);

/* Returns the opportunity inbox lead @id was converted into, or 0. */
gint64 mr_store_lead_opportunity(MrStore *store, gint64 id);

/* Returns the id of the open (new or in progress) inbox lead of the contact
 * @email, or 0. */
gint64 mr_store_open_lead_by_email(MrStore *store, const char *email);

/* --- row-level writes ----------------------------------------------------
 * As those of mr-store-party.h: inside the open transaction, deciding
 * nothing (the CRM layer, src/crm/, does).  A status is its stored name
 * (mr_status_name()). */

/* Each adds a record with @title for @contact, owned by @owner (0: none),
 * in its kind's first status.  Returns its id, or 0 with @error. */
gint64 mr_store_ticket_insert(MrStore *store, const char *title, gint64 contact, gint64 owner,
			      const char *now, GError **error);
gint64 mr_store_lead_insert(MrStore *store, const char *title, gint64 contact, gint64 owner,
			    const char *now, GError **error);
/* ... with @value in whole currency units (-1: none) and @account (0:
 * none). */
gint64 mr_store_opp_insert(MrStore *store, const char *title, gint64 value, gint64 contact,
			   gint64 account, gint64 owner, const char *now, GError **error);

/* Ticket @id had news at @now: sets its status to @status (nullable: keeps
 * it) and its owner to @owner where it has none (0: keeps it).  Sent
 * ahead. */
gboolean mr_store_ticket_touch(MrStore *store, gint64 id, const char *now, const char *status,
			       gint64 owner, GError **error);

/* Record @ref had news at @now (a ticket as mr_store_ticket_touch() with
 * neither status nor owner).  Sent ahead. */
gboolean mr_store_record_touch(MrStore *store, MrRecordRef ref, const char *now, GError **error);

/* Links message @msg to record @ref (MR_RECORD_NONE: nothing).  Sent
 * ahead. */
gboolean mr_store_link_record(MrStore *store, gint64 msg, MrRecordRef ref, GError **error);

/* Links every message of record @from to record @to as well. */
gboolean mr_store_links_copy(MrStore *store, MrRecordRef from, MrRecordRef to, GError **error);

/* Returns the owner of record @ref (a look-up): its user id, 0 for none
 * (or no such record). */
gint64 mr_store_record_owner(MrStore *store, MrRecordRef ref);

/* Gives record @ref to user @owner.  Sent ahead. */
gboolean mr_store_record_set_owner(MrStore *store, MrRecordRef ref, gint64 owner,
				   GError **error);

/* Sets ticket @id's @priority and @type (stored names; NULL keeps one).
 * Sent ahead. */
gboolean mr_store_ticket_set_fields(MrStore *store, gint64 id, const char *priority,
				    const char *type, GError **error);

/* Sets the source of inbox lead @id.  Sent ahead. */
gboolean mr_store_lead_set_source(MrStore *store, gint64 id, const char *source, GError **error);

/* Tags record @ref with @tag (a tag it has already: nothing).  Sent
 * ahead. */
gboolean mr_store_record_tag(MrStore *store, MrRecordRef ref, const char *tag, GError **error);

/* Returns: (transfer full): the tags of record @ref, sorted (a look-up:
 * none on failure, see mr_store_check()). */
GStrv mr_store_record_tags(MrStore *store, MrRecordRef ref);

/* Returns: (transfer full) (nullable): the name of account @id (a
 * look-up). */
char *mr_store_account_name(MrStore *store, gint64 id);

/* Sets ticket @id to @status at @now. */
gboolean mr_store_ticket_set_status(MrStore *store, gint64 id, const char *status,
				    const char *now, GError **error);

/* Sets inbox lead @id to @status at @now, with the @opportunity it became
 * (0: keeps the one it has); @qualified: @now is its qualification time,
 * unless it has one. */
gboolean mr_store_lead_set_status(MrStore *store, gint64 id, const char *status,
				  const char *now, gint64 opportunity, gboolean qualified,
				  GError **error);

/* How an opportunity closes. */
typedef struct {
	const char *status;      /* won or lost */
	const char *stage;       /* its closing stage */
	gint64 probability;      /* percent */
	const char *lost_reason; /* (nullable) */
	const char *from_status; /* it closes only from this status */
} MrOppClosing;

/* Closes opportunity @id at @now as @closing says, when its status is
 * still @closing->from_status (else nothing changes: the caller has
 * checked, in the same transaction). */
gboolean mr_store_opp_set_closed(MrStore *store, gint64 id, const MrOppClosing *closing,
				 const char *now, GError **error);

/* --- queries for the CLI ------------------------------------------------
 * Rows come back as structs, each with its declaration (mr-row.h: the
 * fields in the order of the columns and of the CLI's JSON, see
 * mr-store-rows.c); text members are NULL where the column is NULL.
 * Record ids are numbers: mr_record_display_id() formats them. */

typedef struct {
	gint64 id;
	char *title;
	char *source;
	char *status;
	char *priority;
	char *contact;
	char *owner;
	char *created;
	char *qualified;
	char *updated;
	gint64 opportunity;   /* the opportunity it was converted into, or 0 */
	gint64 message_count;
} MrLeadRow;

MR_ROW_DECLARE(MrLeadRow, mr_lead_row_desc, mr_lead_row_free)

typedef struct {
	gint64 id;
	char *title;
	char *status;
	char *stage;
	gint64 probability;
	gint64 value;         /* -1: none */
	char *contact;
	char *account;
	char *owner;
	char *lost_reason;
	char *created;
	char *updated;
	char *closed;
	gint64 message_count;
} MrOpportunityRow;

MR_ROW_DECLARE(MrOpportunityRow, mr_opportunity_row_desc, mr_opportunity_row_free)

typedef struct {
	gint64 id;
	char *subject;
	char *status;
	char *type;
	char *priority;
	char *contact;
	char *owner;
	char *created;
	char *updated;
	gint64 message_count;
} MrTicketRow;

MR_ROW_DECLARE(MrTicketRow, mr_ticket_row_desc, mr_ticket_row_free)

/* Each lists its rows oldest first, at most @limit (<= 0: all).
 * Returns: (transfer full) (element-type the row struct): the rows, or
 * NULL with @error. */
GPtrArray *mr_store_leads(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_opportunities(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_tickets(MrStore *store, gint64 limit, GError **error);

/* Each returns one row by its key.  Returns: (transfer full): the row, or
 * NULL with @error (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrLeadRow *mr_store_lead_get(MrStore *store, gint64 id, GError **error);
MrOpportunityRow *mr_store_opportunity_get(MrStore *store, gint64 id, GError **error);
MrTicketRow *mr_store_ticket_get(MrStore *store, gint64 id, GError **error);

G_END_DECLS
