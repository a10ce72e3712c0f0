/* mr-status.c - the words of record statuses, priorities and types, and
 * the status changes allowed.  Model layer: tables and look-ups only. */
#include <string.h>

#include "mailroom/mr-status.h"

static const char *const ticket_statuses[] = {
	[MR_TICKET_NEW] = "new",         [MR_TICKET_OPEN] = "open",
	[MR_TICKET_PENDING] = "pending", [MR_TICKET_SOLVED] = "solved",
	[MR_TICKET_CLOSED] = "closed",   NULL,
};

static const char *const lead_statuses[] = {
	[MR_LEAD_NEW] = "new",
	[MR_LEAD_IN_PROGRESS] = "in_progress",
	[MR_LEAD_CONVERTED] = "converted",
	[MR_LEAD_ARCHIVED] = "archived",
	NULL,
};

static const char *const opp_statuses[] = {
	[MR_OPP_OPEN] = "open",
	[MR_OPP_WON] = "won",
	[MR_OPP_LOST] = "lost",
	NULL,
};

static const char *const priorities[] = {
	[MR_PRIORITY_LOW] = "low",   [MR_PRIORITY_NORMAL] = "normal",
	[MR_PRIORITY_HIGH] = "high", [MR_PRIORITY_URGENT] = "urgent",
	NULL,
};

static const char *const ticket_types[] = {
	[MR_TICKET_QUESTION] = "question", [MR_TICKET_INCIDENT] = "incident",
	[MR_TICKET_PROBLEM] = "problem",   [MR_TICKET_COMPLAINT] = "complaint",
	NULL,
};

/* A change allowed: a record of @kind from @from to @to by @cause; -1 in
 * @from or @to is any status. */
typedef struct {
	MrRecordKind kind;
	int from;
	int to;
	MrStatusCause cause;
} Change;

static const Change changes[] = {
	{ MR_RECORD_TICKET, -1, -1, MR_CHANGE_BY_USER },
	{ MR_RECORD_TICKET, MR_TICKET_SOLVED, MR_TICKET_OPEN, MR_CHANGE_BY_MAIL },
	{ MR_RECORD_TICKET, MR_TICKET_CLOSED, MR_TICKET_OPEN, MR_CHANGE_BY_MAIL },
	{ MR_RECORD_LEAD, MR_LEAD_NEW, MR_LEAD_CONVERTED, MR_CHANGE_BY_USER },
	{ MR_RECORD_LEAD, MR_LEAD_NEW, MR_LEAD_ARCHIVED, MR_CHANGE_BY_USER },
	{ MR_RECORD_LEAD, MR_LEAD_IN_PROGRESS, MR_LEAD_CONVERTED, MR_CHANGE_BY_USER },
	{ MR_RECORD_LEAD, MR_LEAD_IN_PROGRESS, MR_LEAD_ARCHIVED, MR_CHANGE_BY_USER },
	{ MR_RECORD_OPPORTUNITY, MR_OPP_OPEN, MR_OPP_WON, MR_CHANGE_BY_USER },
	{ MR_RECORD_OPPORTUNITY, MR_OPP_OPEN, MR_OPP_LOST, MR_CHANGE_BY_USER },
};

static const char *const *
statuses(MrRecordKind kind)
{
	switch (kind) {
	case MR_RECORD_TICKET:
		return ticket_statuses;
	case MR_RECORD_LEAD:
		return lead_statuses;
	case MR_RECORD_OPPORTUNITY:
		return opp_statuses;
	case MR_RECORD_NONE:
	default:
		return NULL;
	}
}

/* Returns the entry @value of the NULL-terminated @table, or NULL. */
static const char *
word(const char *const *table, int value)
{
	if (table == NULL || value < 0)
		return NULL;
	for (int i = 0; table[i] != NULL; i++)
		if (i == value)
			return table[i];
	return NULL;
}

/* Returns the index of @text in the NULL-terminated @table, or -1. */
static int
index_of(const char *const *table, const char *text)
{
	for (int i = 0; table != NULL && text != NULL && table[i] != NULL; i++)
		if (strcmp(table[i], text) == 0)
			return i;
	return -1;
}

const char *
mr_status_name(MrRecordKind kind, int status)
{
	return word(statuses(kind), status);
}

int
mr_status_from_name(MrRecordKind kind, const char *text)
{
	return index_of(statuses(kind), text);
}

char *
mr_status_list(MrRecordKind kind)
{
	const char *const *table = statuses(kind);

	return table != NULL ? g_strjoinv(", ", (char **)table) : g_strdup("");
}

gboolean
mr_status_can_change(MrRecordKind kind, int from, int to, MrStatusCause cause)
{
	if (mr_status_name(kind, from) == NULL || mr_status_name(kind, to) == NULL)
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(changes); i++) {
		const Change *c = &changes[i];

		if (c->kind == kind && c->cause == cause && (c->from < 0 || c->from == from) &&
		    (c->to < 0 || c->to == to))
			return TRUE;
	}
	return FALSE;
}

gboolean
mr_status_takes_mail(MrRecordKind kind, int status)
{
	if (kind != MR_RECORD_LEAD)
		return TRUE;
	return status == MR_LEAD_NEW || status == MR_LEAD_IN_PROGRESS;
}

const char *
mr_opp_closed_stage(gboolean won)
{
	return won ? "closed_won" : "closed_lost";
}

int
mr_opp_closed_probability(gboolean won)
{
	return won ? 100 : 0;
}

const char *
mr_priority_name(MrPriority priority)
{
	return word(priorities, (int)priority);
}

int
mr_priority_from_name(const char *text)
{
	return index_of(priorities, text);
}

const char *
mr_ticket_type_name(MrTicketType type)
{
	return word(ticket_types, (int)type);
}

int
mr_ticket_type_from_name(const char *text)
{
	return index_of(ticket_types, text);
}
