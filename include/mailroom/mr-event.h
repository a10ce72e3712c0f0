/* mr-event.h - the types of event: what happened to a record or message.
 *
 * Model layer.  Events are written by the store in the transaction that
 * made them happen and read by consumers (the event feed, later the
 * workflows); each type has its stored name in one table (mr-event.c). */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-record.h"

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
	MR_EVENT_TEAM_UNASSIGNED,
	MR_EVENT_MAIL_BOUNCED,
	MR_EVENT_MAIL_HELD,
	MR_EVENT_MAIL_FAILED,
	MR_EVENT_RESPONSE_SENT,
	MR_EVENT_TICKET_ESCALATED,
	MR_EVENT_TASK_CREATED,
	MR_EVENT_TASK_DONE,
	MR_EVENT_N
} MrEventType;

/* Returns the stored name of @type ("ticket.created"); "other" for
 * MR_EVENT_OTHER or a value out of range. */
const char *mr_event_type_name(MrEventType type);

/* Returns the type named @name (nullable), or MR_EVENT_OTHER. */
MrEventType mr_event_type_from_name(const char *name);

/* What an event says beyond its type, its record and its message: a few
 * typed fields, stored in columns of their own (never a sentence).  Which
 * fields a type uses:
 *
 *   ticket.created, lead.created,   detail: the title the record was made
 *   opportunity.created                     with
 *   ticket.reopened                 old_status (the status it left),
 *                                   new_status ("open")
 *   ticket.status                   old_status, new_status
 *   lead.converted, lead.archived   old_status, new_status
 *   opportunity.won                 old_status, new_status ("won")
 *   opportunity.lost                old_status, new_status ("lost"),
 *                                   detail: the reason
 *   message.linked, reply.received  -
 *   link.refused                    detail: the record id as the subject
 *                                   named it
 *   sender.untrusted                address: the From address not taken as
 *                                   a user's; detail: the authserv-id whose
 *                                   Authentication-Results did not pass
 *   team.unassigned                 detail: the team whose members were all
 *                                   away: the record stays unassigned
 *   mail.bounced                    address: the recipient; new_status:
 *                                   the report's status code ("5.1.1");
 *                                   detail: its text
 *   mail.held                       address: the recipient; detail: why
 *                                   no automatic mail was sent (the daily
 *                                   limit, an undeliverable address, loop
 *                                   protection)
 *   mail.failed                     address: the recipient; detail: the
 *                                   relay's reply
 *   response.sent                   -
 *   ticket.escalated                address: the new owner; old_status,
 *                                   new_status: the priority before and
 *                                   after
 *   task.created, task.done         detail: the task's title
 *
 * and every type: actor, the user who acted (0: none known, as for mail
 * from outside and for mailroomctl).  A status is its stored name
 * (mr_status_name()).  Fields a type does not use are NULL; an event
 * migrated from schema 5 lacks what its old sentence did not say. */
typedef struct {
	gint64 actor;        /* app_user id, 0: none */
	int depth;           /* not stored: how many workflows acted before this
				event (0: a person or a mail made it happen);
				a workflow's action writes its own depth + 1 */
	char *old_status;
	char *new_status;
	char *address;
	char *detail;
} MrEventFacts;

/* Returns: (transfer full): the sentence that shows an event of @type on
 * @record (MR_RECORD_NONE for a message's own events) with @facts
 * (nullable: none), its record ids formatted with the prefixes of @cfg
 * now ("TKT-3 status new -> open").  An event of a type this mailroom does
 * not know (MR_EVENT_OTHER) shows as the empty string. */
char *mr_event_describe(const MrConfig *cfg, MrEventType type, MrRecordRef record,
			const MrEventFacts *facts);

G_END_DECLS
