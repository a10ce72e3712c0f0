/* mr-event.c - the stored names of event types, and how an event reads.
 * Model layer. */
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
	[MR_EVENT_TEAM_UNASSIGNED] = "team.unassigned",
	[MR_EVENT_MAIL_BOUNCED] = "mail.bounced",
	[MR_EVENT_MAIL_HELD] = "mail.held",
	[MR_EVENT_MAIL_FAILED] = "mail.failed",
	[MR_EVENT_RESPONSE_SENT] = "response.sent",
	[MR_EVENT_TICKET_ESCALATED] = "ticket.escalated",
	[MR_EVENT_TASK_CREATED] = "task.created",
	[MR_EVENT_TASK_DONE] = "task.done",
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

/* @s, or "?" for a field an event does not have (migrated, say). */
static const char *
or_unknown(const char *s)
{
	return s != NULL ? s : "?";
}

char *
mr_event_describe(const MrConfig *cfg, MrEventType type, MrRecordRef record,
		  const MrEventFacts *facts)
{
	static const MrEventFacts none = { 0 };
	const MrEventFacts *f = facts != NULL ? facts : &none;
	g_autofree char *id = record.kind != MR_RECORD_NONE ? mr_record_display_id(cfg, record)
							    : g_strdup("?");

	switch (type) {
	case MR_EVENT_TICKET_CREATED:
	case MR_EVENT_LEAD_CREATED:
	case MR_EVENT_OPPORTUNITY_CREATED:
		return g_strdup_printf("%s created: %s", id, or_unknown(f->detail));
	case MR_EVENT_TICKET_REOPENED:
		return g_strdup_printf("%s reopened by a new message", id);
	case MR_EVENT_TICKET_STATUS:
		return g_strdup_printf("%s status %s -> %s", id, or_unknown(f->old_status),
				       or_unknown(f->new_status));
	case MR_EVENT_LEAD_CONVERTED:
	case MR_EVENT_LEAD_ARCHIVED:
		return g_strdup_printf("%s %s", id, or_unknown(f->new_status));
	case MR_EVENT_OPPORTUNITY_WON:
		return g_strdup_printf("%s won", id);
	case MR_EVENT_OPPORTUNITY_LOST:
		return g_strdup_printf("%s lost: %s", id, or_unknown(f->detail));
	case MR_EVENT_MESSAGE_LINKED:
		return g_strdup_printf("message linked to %s", id);
	case MR_EVENT_REPLY_RECEIVED:
		return g_strdup_printf("%s: reply received", id);
	case MR_EVENT_LINK_REFUSED:
		return g_strdup_printf("%s named in the subject, not attached: sender not related",
				       or_unknown(f->detail));
	case MR_EVENT_SENDER_UNTRUSTED:
		return g_strdup_printf("From %s not authenticated (Authentication-Results of %s):"
				       " not taken as the user's",
				       or_unknown(f->address), or_unknown(f->detail));
	case MR_EVENT_TEAM_UNASSIGNED:
		return g_strdup_printf("%s left unassigned: every member of team %s is away", id,
				       or_unknown(f->detail));
	case MR_EVENT_MAIL_BOUNCED:
		return g_strdup_printf("mail to %s bounced: %s", or_unknown(f->address),
				       or_unknown(f->detail));
	case MR_EVENT_MAIL_HELD:
		return g_strdup_printf("no automatic mail to %s: %s", or_unknown(f->address),
				       or_unknown(f->detail));
	case MR_EVENT_MAIL_FAILED:
		return g_strdup_printf("mail to %s failed: %s", or_unknown(f->address),
				       or_unknown(f->detail));
	case MR_EVENT_RESPONSE_SENT:
		return g_strdup_printf("%s response sent", id);
	case MR_EVENT_TICKET_ESCALATED:
		if (f->address != NULL)
			return g_strdup_printf("%s escalated to %s", id, f->address);
		return g_strdup_printf("%s escalated", id);
	case MR_EVENT_TASK_CREATED:
		return g_strdup_printf("task created: %s", or_unknown(f->detail));
	case MR_EVENT_TASK_DONE:
		return g_strdup_printf("task done: %s", or_unknown(f->detail));
	case MR_EVENT_OTHER:
	case MR_EVENT_N:
		break;
	}
	return g_strdup("");
}
