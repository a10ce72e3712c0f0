/* mr-store-rows.c - the declarations of the store's row structs
 * (mr-row.h): for each, its fields in the order of the columns of the
 * statements that read it (mr-store-sql.c) and of the CLI's JSON.
 *
 * Store stage.  A field's name is its member in the CLI's JSON
 * (docs/cli.md); NULL keeps it out. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mailroom/mr-store-calendar.h"
#include "mailroom/mr-store-workflow.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-mailbox.h"
#include "mailroom/mr-store-message.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "mailroom/mr-store-rule.h"
#include "mailroom/mr-store-team.h"

/* --- parties ----------------------------------------------------------------- */

static const MrRowField user_fields[] = {
	MR_ROW_FIELD(MrUserRow, id, "id", MR_ROW_INT64),
	MR_ROW_FIELD(MrUserRow, email, "email", MR_ROW_TEXT),
	MR_ROW_FIELD(MrUserRow, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrUserRow, addresses, "addresses", MR_ROW_WORDS),
	MR_ROW_FIELD(MrUserRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrUserRow, message_count, "message_count", MR_ROW_INT64),
	MR_ROW_FIELD(MrUserRow, away, "away", MR_ROW_FLAG),
};
MR_ROW_DEFINE(MrUserRow, mr_user_row_desc, "user", user_fields, mr_user_row_free)

static const MrRowField contact_fields[] = {
	MR_ROW_FIELD(MrContactRow, id, NULL, MR_ROW_INT64),
	MR_ROW_FIELD(MrContactRow, email, "email", MR_ROW_TEXT),
	MR_ROW_FIELD(MrContactRow, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrContactRow, account, "account", MR_ROW_TEXT),
	MR_ROW_FIELD(MrContactRow, owner, "owner", MR_ROW_TEXT),
	MR_ROW_FIELD(MrContactRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrContactRow, last_seen, "last_seen", MR_ROW_TEXT),
	MR_ROW_FIELD(MrContactRow, message_count, "message_count", MR_ROW_INT64),
	MR_ROW_FIELD(MrContactRow, undeliverable, "undeliverable", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrContactRow, mr_contact_row_desc, "contact", contact_fields,
	      mr_contact_row_free)

static const MrRowField account_fields[] = {
	MR_ROW_FIELD(MrAccountRow, id, NULL, MR_ROW_INT64),
	MR_ROW_FIELD(MrAccountRow, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrAccountRow, domain, "domain", MR_ROW_TEXT),
	MR_ROW_FIELD(MrAccountRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrAccountRow, contacts, "contacts", MR_ROW_INT64),
	MR_ROW_FIELD(MrAccountRow, message_count, "message_count", MR_ROW_INT64),
};
MR_ROW_DEFINE(MrAccountRow, mr_account_row_desc, "account", account_fields,
	      mr_account_row_free)

/* --- records ----------------------------------------------------------------- */

/* A lead's id is its number (inbox show 12), unlike the others. */
static const MrRowField lead_fields[] = {
	MR_ROW_FIELD(MrLeadRow, id, "id", MR_ROW_INT64),
	MR_ROW_FIELD(MrLeadRow, title, "title", MR_ROW_TEXT),
	MR_ROW_FIELD(MrLeadRow, source, "source", MR_ROW_TEXT),
	MR_ROW_FIELD(MrLeadRow, status, "status", MR_ROW_TEXT),
	MR_ROW_FIELD(MrLeadRow, priority, "priority", MR_ROW_TEXT),
	MR_ROW_FIELD(MrLeadRow, contact, "contact", MR_ROW_TEXT),
	MR_ROW_FIELD(MrLeadRow, owner, "owner", MR_ROW_TEXT),
	MR_ROW_FIELD(MrLeadRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrLeadRow, qualified, "qualified", MR_ROW_TEXT),
	MR_ROW_FIELD(MrLeadRow, updated, "updated", MR_ROW_TEXT),
	MR_ROW_RECORD_FIELD(MrLeadRow, opportunity, "opportunity", MR_RECORD_OPPORTUNITY),
	MR_ROW_FIELD(MrLeadRow, message_count, "message_count", MR_ROW_INT64),
};
MR_ROW_DEFINE(MrLeadRow, mr_lead_row_desc, "lead", lead_fields, mr_lead_row_free)

static const MrRowField opportunity_fields[] = {
	MR_ROW_RECORD_FIELD(MrOpportunityRow, id, "id", MR_RECORD_OPPORTUNITY),
	MR_ROW_FIELD(MrOpportunityRow, title, "title", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, status, "status", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, stage, "stage", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, probability, "probability", MR_ROW_INT64),
	MR_ROW_FIELD(MrOpportunityRow, value, "value", MR_ROW_AMOUNT),
	MR_ROW_FIELD(MrOpportunityRow, contact, "contact", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, account, "account", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, owner, "owner", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, lost_reason, "lost_reason", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, updated, "updated", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, closed, "closed", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOpportunityRow, message_count, "message_count", MR_ROW_INT64),
};
MR_ROW_DEFINE(MrOpportunityRow, mr_opportunity_row_desc, "opportunity", opportunity_fields,
	      mr_opportunity_row_free)

static const MrRowField ticket_fields[] = {
	MR_ROW_RECORD_FIELD(MrTicketRow, id, "id", MR_RECORD_TICKET),
	MR_ROW_FIELD(MrTicketRow, subject, "subject", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTicketRow, status, "status", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTicketRow, type, "type", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTicketRow, priority, "priority", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTicketRow, contact, "contact", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTicketRow, owner, "owner", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTicketRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTicketRow, updated, "updated", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTicketRow, message_count, "message_count", MR_ROW_INT64),
};
MR_ROW_DEFINE(MrTicketRow, mr_ticket_row_desc, "ticket", ticket_fields, mr_ticket_row_free)

/* --- messages ---------------------------------------------------------------- */

static const MrRowField message_fields[] = {
	MR_ROW_FIELD(MrMessageRow, id, "id", MR_ROW_INT64),
	MR_ROW_FIELD(MrMessageRow, message_id, "message_id", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageRow, subject, "subject", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageRow, from, "from", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageRow, received, "received", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageRow, date, "sent", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageRow, size, "size", MR_ROW_INT64),
	MR_ROW_FIELD(MrMessageRow, parse_status, "parse_status", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageRow, parse_problem, "parse_problem", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageRow, auto_kind, "auto", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageRow, delivered_to, "delivered_to", MR_ROW_WORDS),
	MR_ROW_FIELD(MrMessageRow, links, "links", MR_ROW_RECORD_REFS),
	MR_ROW_FIELD(MrMessageRow, direction, "direction", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrMessageRow, mr_message_row_desc, "message", message_fields,
	      mr_message_row_free)

static const MrRowField address_fields[] = {
	MR_ROW_FIELD(MrAddressRow, kind, "kind", MR_ROW_TEXT),
	MR_ROW_FIELD(MrAddressRow, email, "email", MR_ROW_TEXT),
	MR_ROW_FIELD(MrAddressRow, name, "name", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrAddressRow, mr_address_row_desc, "address", address_fields,
	      mr_address_row_free)

static const MrRowField attachment_fields[] = {
	MR_ROW_FIELD(MrAttachmentRow, filename, "filename", MR_ROW_TEXT),
	MR_ROW_FIELD(MrAttachmentRow, content_type, "content_type", MR_ROW_TEXT),
	MR_ROW_FIELD(MrAttachmentRow, size, "size", MR_ROW_INT64),
	MR_ROW_FIELD(MrAttachmentRow, sha256, "sha256", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrAttachmentRow, mr_attachment_row_desc, "attachment", attachment_fields,
	      mr_attachment_row_free)

static const MrRowField delivery_fields[] = {
	MR_ROW_FIELD(MrDeliveryRow, recipient, "recipient", MR_ROW_TEXT),
	MR_ROW_FIELD(MrDeliveryRow, role, "role", MR_ROW_TEXT),
	MR_ROW_FIELD(MrDeliveryRow, envelope_from, "envelope_from", MR_ROW_TEXT),
	MR_ROW_FIELD(MrDeliveryRow, received, "received", MR_ROW_TEXT),
	MR_ROW_FIELD(MrDeliveryRow, rules, "rules", MR_ROW_LINES),
};
MR_ROW_DEFINE(MrDeliveryRow, mr_delivery_row_desc, "delivery", delivery_fields,
	      mr_delivery_row_free)

/* The message's own columns; its parties, addresses, attachments,
 * deliveries and refusals come from statements of their own
 * (mr_store_message_get()). */
static const MrRowField message_detail_fields[] = {
	MR_ROW_PART_FIELD(MrMessageDetail, row, mr_message_row_desc),
	MR_ROW_FIELD(MrMessageDetail, in_reply_to, "in_reply_to", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageDetail, auto_reason, "auto_reason", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageDetail, is_forward, "is_forward", MR_ROW_BOOL),
	MR_ROW_FIELD(MrMessageDetail, original_from, "original_from", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageDetail, from_name, "from_name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageDetail, content_key, "content_key", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageDetail, snippet, "snippet", MR_ROW_TEXT),
};
const MrRowDesc mr_message_detail_desc = MR_ROW_DESC(MrMessageDetail, "message",
						     message_detail_fields,
						     mr_message_detail_free);

void
mr_message_detail_free(MrMessageDetail *d)
{
	if (d == NULL)
		return;
	mr_row_clear(&mr_message_detail_desc, d);
	g_strfreev(d->contacts);
	g_strfreev(d->accounts);
	g_strfreev(d->users);
	g_clear_pointer(&d->addresses, g_ptr_array_unref);
	g_clear_pointer(&d->attachments, g_ptr_array_unref);
	g_clear_pointer(&d->deliveries, g_ptr_array_unref);
	g_clear_pointer(&d->refused, g_ptr_array_unref);
	g_free(d);
}

static const MrRowField message_brief_fields[] = {
	MR_ROW_FIELD(MrMessageBrief, id, "id", MR_ROW_INT64),
	MR_ROW_FIELD(MrMessageBrief, message_id, "message_id", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageBrief, subject, "subject", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageBrief, from, "from", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageBrief, received, "received", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMessageBrief, sent, "sent", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrMessageBrief, mr_message_brief_desc, "message", message_brief_fields,
	      mr_message_brief_free)

/* --- events ------------------------------------------------------------------ */

/* What an event says beyond its type and record (mr-event.h), read and
 * not shown: the CLI shows it as the event's sentence. */
static void event_facts_free(MrEventFacts *facts);

static const MrRowField event_facts_fields[] = {
	MR_ROW_FIELD(MrEventFacts, actor, NULL, MR_ROW_ID),
	MR_ROW_FIELD(MrEventFacts, old_status, NULL, MR_ROW_TEXT),
	MR_ROW_FIELD(MrEventFacts, new_status, NULL, MR_ROW_TEXT),
	MR_ROW_FIELD(MrEventFacts, address, NULL, MR_ROW_TEXT),
	MR_ROW_FIELD(MrEventFacts, detail, NULL, MR_ROW_TEXT),
};
const MrRowDesc mr_event_facts_desc = MR_ROW_DESC(MrEventFacts, "event_facts",
						  event_facts_fields, event_facts_free);

static void
event_facts_free(MrEventFacts *facts)
{
	mr_row_free(&mr_event_facts_desc, facts);
}

/* A message was received, an event created (as in event list); "date" is
 * the deprecated name of either (docs/cli.md, "Field names").  An event's
 * subject is its sentence, which the CLI makes of its record and facts. */
static const MrRowField timeline_entry_fields[] = {
	MR_ROW_FIELD(MrTimelineEntry, received, "received", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTimelineEntry, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTimelineEntry, kind, "kind", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTimelineEntry, subject, "subject", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTimelineEntry, message_id, "message_id", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTimelineEntry, sent, "sent", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTimelineEntry, date, "date", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTimelineEntry, record, NULL, MR_ROW_RECORD_REF),
	MR_ROW_PART_FIELD(MrTimelineEntry, facts, mr_event_facts_desc),
};
MR_ROW_DEFINE(MrTimelineEntry, mr_timeline_entry_desc, "timeline", timeline_entry_fields,
	      mr_timeline_entry_free)

/* The event's type is also read as MrEventType (mr_store_events_after()).
 * Its summary is read as NULL: the CLI makes it of the type, the record
 * and the facts. */
static const MrRowField event_fields[] = {
	MR_ROW_FIELD(MrEvent, id, "id", MR_ROW_INT64),
	MR_ROW_FIELD(MrEvent, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrEvent, type_name, "type", MR_ROW_TEXT),
	MR_ROW_FIELD(MrEvent, record, "record", MR_ROW_RECORD_REF),
	MR_ROW_FIELD(MrEvent, message_row, "message", MR_ROW_ID),
	MR_ROW_FIELD(MrEvent, summary, "summary", MR_ROW_TEXT),
	MR_ROW_PART_FIELD(MrEvent, facts, mr_event_facts_desc),
};
MR_ROW_DEFINE(MrEvent, mr_event_desc, "event", event_fields, mr_event_free)

/* --- IMAP mailboxes ---------------------------------------------------------- */

static const MrRowField mailbox_state_fields[] = {
	MR_ROW_FIELD(MrMailboxState, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMailboxState, state, "state", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMailboxState, uidvalidity, "uidvalidity", MR_ROW_ID),
	MR_ROW_FIELD(MrMailboxState, last_uid, "last_uid", MR_ROW_INT64),
	MR_ROW_FIELD(MrMailboxState, backlog, "backlog", MR_ROW_INT64),
	MR_ROW_FIELD(MrMailboxState, last_error, "last_error", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMailboxState, updated, "updated", MR_ROW_TEXT),
	MR_ROW_FIELD(MrMailboxState, inflight_to, NULL, MR_ROW_INT64),
	MR_ROW_FIELD(MrMailboxState, inflight_tries, NULL, MR_ROW_INT64),
};
MR_ROW_DEFINE(MrMailboxState, mr_mailbox_state_desc, "mailbox", mailbox_state_fields,
	      mr_mailbox_state_free)

/* Its bytes, when read (mr_store_quarantine_get()), follow the columns. */
static const MrRowField quarantine_fields[] = {
	MR_ROW_FIELD(MrQuarantineRow, id, "id", MR_ROW_INT64),
	MR_ROW_FIELD(MrQuarantineRow, mailbox, "mailbox", MR_ROW_TEXT),
	MR_ROW_FIELD(MrQuarantineRow, uid, "uid", MR_ROW_INT64),
	MR_ROW_FIELD(MrQuarantineRow, uidvalidity, "uidvalidity", MR_ROW_INT64),
	MR_ROW_FIELD(MrQuarantineRow, reason, "reason", MR_ROW_TEXT),
	MR_ROW_FIELD(MrQuarantineRow, size, "size", MR_ROW_INT64),
	MR_ROW_FIELD(MrQuarantineRow, created, "created", MR_ROW_TEXT),
};
const MrRowDesc mr_quarantine_row_desc = MR_ROW_DESC(MrQuarantineRow, "quarantine",
						     quarantine_fields, mr_quarantine_row_free);

void
mr_quarantine_row_free(MrQuarantineRow *row)
{
	if (row == NULL)
		return;
	g_clear_pointer(&row->raw, g_bytes_unref);
	mr_row_free(&mr_quarantine_row_desc, row);
}

/* --- teams ------------------------------------------------------------------- */

/* `team list --json`: the issue's {name members lead}, with those away and
 * whose turn is next; the id stays out (a team is known by name).  The
 * members and those away are read as NULL, then filled in position order
 * (mr_store_teams()). */
static const MrRowField team_fields[] = {
	MR_ROW_FIELD(MrTeamRow, id, NULL, MR_ROW_INT64),
	MR_ROW_FIELD(MrTeamRow, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTeamRow, members, "members", MR_ROW_LINES),
	MR_ROW_FIELD(MrTeamRow, lead, "lead", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTeamRow, away, "away", MR_ROW_LINES),
	MR_ROW_FIELD(MrTeamRow, next, "next", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTeamRow, calendar, "calendar", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTeamRow, created, "created", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrTeamRow, mr_team_row_desc, "team", team_fields, mr_team_row_free)

/* --- calendars ---------------------------------------------------------------- */

/* `calendar list --json`: {name zone hours holidays teams created
 * updated}; the id stays out (a calendar is known by name). */
static const MrRowField calendar_fields[] = {
	MR_ROW_FIELD(MrCalendarRow, id, NULL, MR_ROW_INT64),
	MR_ROW_FIELD(MrCalendarRow, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrCalendarRow, zone, "zone", MR_ROW_TEXT),
	MR_ROW_FIELD(MrCalendarRow, hours, "hours", MR_ROW_TEXT),
	MR_ROW_FIELD(MrCalendarRow, holidays, "holidays", MR_ROW_LINES),
	MR_ROW_FIELD(MrCalendarRow, teams, "teams", MR_ROW_LINES),
	MR_ROW_FIELD(MrCalendarRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrCalendarRow, updated, "updated", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrCalendarRow, mr_calendar_row_desc, "calendar", calendar_fields,
	      mr_calendar_row_free)

/* --- workflows --------------------------------------------------------------- */

/* `workflow list --json`: the issue's {name trigger enabled fired
 * pending}, with the conditions, actions and times `workflow show` adds;
 * the id stays out (a workflow is known by name). */
static const MrRowField workflow_fields[] = {
	MR_ROW_FIELD(MrWorkflowRow, id, NULL, MR_ROW_INT64),
	MR_ROW_FIELD(MrWorkflowRow, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrWorkflowRow, trigger, "trigger", MR_ROW_TEXT),
	MR_ROW_FIELD(MrWorkflowRow, enabled, "enabled", MR_ROW_FLAG),
	MR_ROW_FIELD(MrWorkflowRow, fired, "fired", MR_ROW_INT64),
	MR_ROW_FIELD(MrWorkflowRow, pending, "pending", MR_ROW_INT64),
	MR_ROW_FIELD(MrWorkflowRow, conditions, "conditions", MR_ROW_LINES),
	MR_ROW_FIELD(MrWorkflowRow, actions, "actions", MR_ROW_LINES),
	MR_ROW_FIELD(MrWorkflowRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrWorkflowRow, updated, "updated", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrWorkflowRow, mr_workflow_row_desc, "workflow", workflow_fields,
	      mr_workflow_row_free)

/* What the workflows' engine reads (not shown). */
static const MrRowField workflow_def_fields[] = {
	MR_ROW_FIELD(MrWorkflowDef, id, NULL, MR_ROW_INT64),
	MR_ROW_FIELD(MrWorkflowDef, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrWorkflowDef, enabled, "enabled", MR_ROW_FLAG),
	MR_ROW_FIELD(MrWorkflowDef, trigger, "trigger", MR_ROW_TEXT),
	MR_ROW_FIELD(MrWorkflowDef, conditions, "conditions", MR_ROW_LINES),
	MR_ROW_FIELD(MrWorkflowDef, actions, "actions", MR_ROW_LINES),
};
MR_ROW_DEFINE(MrWorkflowDef, mr_workflow_def_desc, "workflow", workflow_def_fields,
	      mr_workflow_def_free)

/* `task list --json`: the issue's {id title owner record due status},
 * with when it was made and done. */
static const MrRowField task_fields[] = {
	MR_ROW_FIELD(MrTaskRow, id, "id", MR_ROW_INT64),
	MR_ROW_FIELD(MrTaskRow, title, "title", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTaskRow, owner, "owner", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTaskRow, record, "record", MR_ROW_RECORD_REF),
	MR_ROW_FIELD(MrTaskRow, due, "due", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTaskRow, status, "status", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTaskRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTaskRow, done, "done", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrTaskRow, mr_task_row_desc, "task", task_fields, mr_task_row_free)

/* --- rules ------------------------------------------------------------------- */

/* `rule list --json`: the issue's {name position enabled conditions
 * actions stop}, with any; the id stays out (a rule is known by name). */
static const MrRowField rule_fields[] = {
	MR_ROW_FIELD(MrRuleRow, id, NULL, MR_ROW_INT64),
	MR_ROW_FIELD(MrRuleRow, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrRuleRow, position, "position", MR_ROW_INT64),
	MR_ROW_FIELD(MrRuleRow, enabled, "enabled", MR_ROW_FLAG),
	MR_ROW_FIELD(MrRuleRow, conditions, "conditions", MR_ROW_LINES),
	MR_ROW_FIELD(MrRuleRow, actions, "actions", MR_ROW_LINES),
	MR_ROW_FIELD(MrRuleRow, any, "any", MR_ROW_FLAG),
	MR_ROW_FIELD(MrRuleRow, stop, "stop", MR_ROW_FLAG),
	MR_ROW_FIELD(MrRuleRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrRuleRow, updated, "updated", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrRuleRow, mr_rule_row_desc, "rule", rule_fields, mr_rule_row_free)

/* --- outgoing mail ------------------------------------------------------------ */

/* `job list --json`: the issue's {id kind due status attempts record},
 * with the last error. */
static const MrRowField job_fields[] = {
	MR_ROW_FIELD(MrJobRow, id, "id", MR_ROW_INT64),
	MR_ROW_FIELD(MrJobRow, kind, "kind", MR_ROW_TEXT),
	MR_ROW_FIELD(MrJobRow, due, "due", MR_ROW_TEXT),
	MR_ROW_FIELD(MrJobRow, status, "status", MR_ROW_TEXT),
	MR_ROW_FIELD(MrJobRow, attempts, "attempts", MR_ROW_INT64),
	MR_ROW_FIELD(MrJobRow, record, "record", MR_ROW_RECORD_REF),
	MR_ROW_FIELD(MrJobRow, last_error, "last_error", MR_ROW_TEXT),
	MR_ROW_FIELD(MrJobRow, workflow, "workflow", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrJobRow, mr_job_row_desc, "job", job_fields, mr_job_row_free)

/* `outbox list --json`: the issue's {id to subject status attempts
 * next_attempt last_error record message_id}, with when it was queued
 * and sent, whether it is automatic and a bounce's status. */
static const MrRowField outbox_fields[] = {
	MR_ROW_FIELD(MrOutboxRow, id, "id", MR_ROW_INT64),
	MR_ROW_FIELD(MrOutboxRow, to, "to", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOutboxRow, subject, "subject", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOutboxRow, status, "status", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOutboxRow, attempts, "attempts", MR_ROW_INT64),
	MR_ROW_FIELD(MrOutboxRow, next_attempt, "next_attempt", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOutboxRow, last_error, "last_error", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOutboxRow, record, "record", MR_ROW_RECORD_REF),
	MR_ROW_FIELD(MrOutboxRow, message_id, "message_id", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOutboxRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOutboxRow, sent, "sent", MR_ROW_TEXT),
	MR_ROW_FIELD(MrOutboxRow, automatic, "automatic", MR_ROW_FLAG),
	MR_ROW_FIELD(MrOutboxRow, bounce_status, "bounce_status", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrOutboxRow, mr_outbox_row_desc, "outbox", outbox_fields, mr_outbox_row_free)

/* `template list --json`: the issue's {name subject}; show adds body and
 * times. */
static const MrRowField template_fields[] = {
	MR_ROW_FIELD(MrTemplateRow, id, NULL, MR_ROW_INT64),
	MR_ROW_FIELD(MrTemplateRow, name, "name", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTemplateRow, subject, "subject", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTemplateRow, body, "body", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTemplateRow, created, "created", MR_ROW_TEXT),
	MR_ROW_FIELD(MrTemplateRow, updated, "updated", MR_ROW_TEXT),
};
MR_ROW_DEFINE(MrTemplateRow, mr_template_row_desc, "template", template_fields,
	      mr_template_row_free)
