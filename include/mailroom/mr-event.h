/* mr-event.h - the types of event: what happened to a record or message.
 *
 * Model layer.  Events are written by the store in the transaction that
 * made them happen and read by consumers (the event feed, later the
 * workflows); each type has its stored name in one table (mr-event.c). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What happened.  Stored by name (mr_event_type_name()); a name this
 * mailroom does not know reads as MR_EVENT_OTHER.  A new type needs a
 * schema step that adds its name to the event_type table. */
typedef enum {
	MR_EVENT_OTHER,
	MR_EVENT_TICKET_CREATED,
	MR_EVENT_TICKET_REOPENED,
	MR_EVENT_TICKET_STATUS,
	MR_EVENT_LEAD_CREATED,
	MR_EVENT_LEAD_CONVERTED,
	MR_EVENT_LEAD_ARCHIVED,
	MR_EVENT_OPPORTUNITY_CREATED,
	MR_EVENT_OPPORTUNITY_WON,
	MR_EVENT_OPPORTUNITY_LOST,
	MR_EVENT_MESSAGE_LINKED,
	MR_EVENT_REPLY_RECEIVED,
	MR_EVENT_LINK_REFUSED,
	MR_EVENT_SENDER_UNTRUSTED,
	MR_EVENT_N
} MrEventType;

/* Returns the stored name of @type ("ticket.created"); "other" for
 * MR_EVENT_OTHER or a value out of range. */
const char *mr_event_type_name(MrEventType type);

/* Returns the type named @name (nullable), or MR_EVENT_OTHER. */
MrEventType mr_event_type_from_name(const char *name);

G_END_DECLS
