/* mr-event.c - the stored names of event types.  Model layer. */
#include <string.h>

#include "mailroom/mr-event.h"

static const char *const mr_event_names[MR_EVENT_N] = {
	[MR_EVENT_OTHER] = "other",
	[MR_EVENT_TICKET_CREATED] = "ticket.created",
	[MR_EVENT_TICKET_REOPENED] = "ticket.reopened",
	[MR_EVENT_TICKET_STATUS] = "ticket.status",
	[MR_EVENT_LEAD_CREATED] = "lead.created",
	[MR_EVENT_LEAD_CONVERTED] = "lead.converted",
	[MR_EVENT_LEAD_ARCHIVED] = "lead.archived",
	[MR_EVENT_OPPORTUNITY_CREATED] = "opportunity.created",
	[MR_EVENT_OPPORTUNITY_WON] = "opportunity.won",
	[MR_EVENT_OPPORTUNITY_LOST] = "opportunity.lost",
	[MR_EVENT_MESSAGE_LINKED] = "message.linked",
	[MR_EVENT_REPLY_RECEIVED] = "reply.received",
	[MR_EVENT_LINK_REFUSED] = "link.refused",
	[MR_EVENT_SENDER_UNTRUSTED] = "sender.untrusted",
};

const char *
mr_event_type_name(MrEventType type)
{
	return (guint)type < MR_EVENT_N ? mr_event_names[type] : mr_event_names[MR_EVENT_OTHER];
}

MrEventType
mr_event_type_from_name(const char *name)
{
	for (int t = 1; t < MR_EVENT_N && name != NULL; t++)
		if (strcmp(mr_event_names[t], name) == 0)
			return (MrEventType)t;
	return MR_EVENT_OTHER;
}
