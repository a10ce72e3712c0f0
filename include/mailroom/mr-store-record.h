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

/* --- administration ----------------------------------------------------
 * Each runs in a transaction of its own, or, when one is open (a unit of
 * work on the writer), inside it: its owner commits or undoes. */

/* Creates an opportunity for contact @contact (must exist), owned by user
 * @owner (nullable; must exist; default the contact's owner), @value in
 * whole currency units (-1 for none).  Returns the new id, or 0 with @error. */
gint64 mr_store_opp_add(MrStore *store, const char *title, const char *contact,
			const char *owner, gint64 value, GError **error);

/* Closes open opportunity @id as won, or lost with @reason (required). */
gboolean mr_store_opp_close(MrStore *store, gint64 id, gboolean won, const char *reason,
			    GError **error);

/* Sets ticket @id to @status (new, open, pending, solved, closed). */
gboolean mr_store_ticket_set_status(MrStore *store, gint64 id, const char *status,
				    GError **error);

/* Converts open inbox lead @id into an opportunity (title, contact, owner
 * and messages carried over).  Returns the opportunity id, or 0. */
gint64 mr_store_lead_convert(MrStore *store, gint64 id, GError **error);

/* Archives inbox lead @id. */
gboolean mr_store_lead_archive(MrStore *store, gint64 id, GError **error);

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
