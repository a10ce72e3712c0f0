/* mr-store-message.h - stage 4: the store's messages as the CLI
 * lists and shows them, with their addresses, attachments and deliveries. */
#pragma once

#include <glib.h>

#include "mailroom/mr-record.h"
#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* --- look-ups for routing (read only; see mr_store_check()) ----------- */

/* Returns TRUE when a stored message with one of the Message-IDs @ids
 * (NULL-terminated) has @email among its addresses (From, Sender,
 * Reply-To, To, Cc, the forwarded From): the sender of a reply took part
 * in the thread it answers. */
gboolean mr_store_thread_has_address(MrStore *store, const char *const *ids, const char *email);

/* --- queries for the CLI ------------------------------------------------
 * Rows come back as structs, each with its declaration (mr-row.h: the
 * fields in the order of the columns and of the CLI's JSON, see
 * mr-store-rows.c); text members are NULL where the column is NULL.
 * Record ids are numbers: mr_record_display_id() formats them. */

typedef struct {
	gint64 id;
	char *message_id;
	char *subject;
	char *from;
	char *date;           /* the sender's Date: */
	char *received;       /* when mailroom received it */
	gint64 size;
	char *parse_status;
	char *parse_problem;
	char *auto_kind;
	GStrv delivered_to;   /* the recipients it was delivered to */
	GArray *links;        /* (element-type MrRecordRef): its records,
	                         ordered by kind name, then id */
	char *direction;      /* "in", or "out": mailroom sent it */
} MrMessageRow;

MR_ROW_DECLARE(MrMessageRow, mr_message_row_desc, mr_message_row_free)

typedef struct {
	char *kind;           /* from, to, cc, ... */
	char *email;
	char *name;
} MrAddressRow;

MR_ROW_DECLARE(MrAddressRow, mr_address_row_desc, mr_address_row_free)

typedef struct {
	char *filename;
	char *content_type;
	gint64 size;
	char *sha256;
} MrAttachmentRow;

MR_ROW_DECLARE(MrAttachmentRow, mr_attachment_row_desc, mr_attachment_row_free)

typedef struct {
	char *recipient;
	char *role;
	char *envelope_from;
	char *received;
	GStrv rules;         /* the rules that fired for it, in order */
} MrDeliveryRow;

MR_ROW_DECLARE(MrDeliveryRow, mr_delivery_row_desc, mr_delivery_row_free)

/* A message with everything linked to it (mailroomctl message show). */
typedef struct {
	MrMessageRow row;
	char *in_reply_to;
	char *auto_reason;
	gboolean is_forward;
	char *original_from;
	char *from_name;
	char *content_key;
	char *snippet;
	GStrv contacts;        /* emails of the linked contacts */
	GStrv accounts;        /* domains of the linked accounts */
	GStrv users;           /* emails of the linked users */
	GPtrArray *addresses;  /* (element-type MrAddressRow) in header order */
	GPtrArray *attachments; /* (element-type MrAttachmentRow) */
	GPtrArray *deliveries; /* (element-type MrDeliveryRow) */
	GPtrArray *refused;    /* (element-type MrEvent): why links were refused:
	                          its link.refused and sender.untrusted events */
} MrMessageDetail;

MR_ROW_DECLARE(MrMessageDetail, mr_message_detail_desc, mr_message_detail_free)

/* A message linked to a contact or record, as a show lists them. */
typedef struct {
	gint64 id;
	char *message_id;
	char *subject;
	char *from;
	char *received;
	char *sent;           /* the sender's Date: */
} MrMessageBrief;

MR_ROW_DECLARE(MrMessageBrief, mr_message_brief_desc, mr_message_brief_free)

/* Each lists its rows oldest first, at most @limit (<= 0: all).
 * Returns: (transfer full) (element-type the row struct): the rows, or
 * NULL with @error. */
GPtrArray *mr_store_messages(MrStore *store, gint64 limit, GError **error);

/* Returns: (transfer full): message @id with all its parts, or NULL with
 * @error (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrMessageDetail *mr_store_message_get(MrStore *store, gint64 id, GError **error);

/* Returns: (transfer full) (element-type MrMessageBrief): the messages
 * linked to contact @contact_id (@kind MR_RECORD_NONE) or to record
 * (@kind, @id), oldest received first, or NULL with @error. */
GPtrArray *mr_store_linked_messages(MrStore *store, MrRecordKind kind, gint64 id,
				    GError **error);

/* Returns: (transfer full): the raw bytes of message @id, or NULL with
 * MR_STORE_ERROR_NOT_FOUND. */
GBytes *mr_store_message_raw(MrStore *store, gint64 id, GError **error);

/* Counts stored messages. */
gint64 mr_store_count_messages(MrStore *store);

G_END_DECLS
