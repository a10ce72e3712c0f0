/* mr-status.h - the statuses of records, their priorities and types, and
 * which status changes are allowed.
 *
 * Model layer.  Each set of words is an enum with its stored text in one
 * table (mr-status.c); nothing else spells a status.  The changes a
 * record may go through -- by a person (mailroomctl) or by mail (a reply
 * reopens a solved ticket) -- are in one table too. */
#pragma once

#include <glib.h>

#include "mailroom/mr-record.h"

G_BEGIN_DECLS

/* A ticket's status, in the order of its life. */
typedef enum {
	MR_TICKET_NEW,
	MR_TICKET_OPEN,
	MR_TICKET_PENDING,
	MR_TICKET_SOLVED,
	MR_TICKET_CLOSED,
} MrTicketStatus;

/* An inbox lead's status: it takes mail while new or in progress. */
typedef enum {
	MR_LEAD_NEW,
	MR_LEAD_IN_PROGRESS,
	MR_LEAD_CONVERTED, /* lives on as its opportunity */
	MR_LEAD_ARCHIVED,
} MrLeadStatus;

/* An opportunity's status. */
typedef enum {
	MR_OPP_OPEN,
	MR_OPP_WON,
	MR_OPP_LOST,
} MrOppStatus;

/* Who changes a status. */
typedef enum {
	MR_CHANGE_BY_USER, /* a command: ticket status, lead convert, opp won */
	MR_CHANGE_BY_MAIL, /* a message that arrives on the record */
} MrStatusCause;

/* Returns the stored text of status @status of a record of @kind ("open"),
 * or NULL when @kind has no such status. */
const char *mr_status_name(MrRecordKind kind, int status);

/* Returns the status of @kind stored as @text (exact, lower case), or -1
 * for NULL or a text that is none. */
int mr_status_from_name(MrRecordKind kind, const char *text);

/* Returns: (transfer full): the statuses of @kind for a message, in order
 * and comma-separated ("new, open, pending, solved, closed"). */
char *mr_status_list(MrRecordKind kind);

/* Returns TRUE when a record of @kind in status @from may go to @to by
 * @cause.  A person may set a ticket to any status; mail reopens a solved
 * or closed ticket (to open); a lead that is new or in progress is
 * converted or archived by a person; an open opportunity is won or lost by
 * a person.  Nothing else. */
gboolean mr_status_can_change(MrRecordKind kind, int from, int to, MrStatusCause cause);

/* Returns TRUE when a record of @kind in @status takes new mail: a lead
 * that is new or in progress; every ticket and opportunity. */
gboolean mr_status_takes_mail(MrRecordKind kind, int status);

/* An opportunity's stage and probability once it is won (@won) or lost. */
const char *mr_opp_closed_stage(gboolean won);
int mr_opp_closed_probability(gboolean won);

/* The priority of a ticket or lead. */
typedef enum {
	MR_PRIORITY_LOW,
	MR_PRIORITY_NORMAL,
	MR_PRIORITY_HIGH,
	MR_PRIORITY_URGENT,
} MrPriority;

/* Returns the stored text of @priority ("normal"), or NULL for none. */
const char *mr_priority_name(MrPriority priority);

/* Returns the priority stored as @text, or -1. */
int mr_priority_from_name(const char *text);

/* The type of a ticket. */
typedef enum {
	MR_TICKET_QUESTION,
	MR_TICKET_INCIDENT,
	MR_TICKET_PROBLEM,
	MR_TICKET_COMPLAINT,
} MrTicketType;

/* Returns the stored text of @type ("question"), or NULL for none. */
const char *mr_ticket_type_name(MrTicketType type);

/* Returns the ticket type stored as @text, or -1. */
int mr_ticket_type_from_name(const char *text);

G_END_DECLS
