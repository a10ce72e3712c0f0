/* mr-workflow.h - workflows (issue 24): what the CRM does when something
 * happened on a record, or when something did not happen in time.  The
 * grammar of a workflow's trigger and actions, their canonical text, and
 * the conditions checked when it fires.
 *
 * Model layer, pure: no I/O, no database.  Whether a template, a user or
 * a team exists is the CRM layer's question; when a timer falls due is
 * the calendar's (mr-calendar.h).
 *
 * A workflow, as mailroomctl takes it:
 *
 *   --on EVENT [--if COND ...] --then ACTION [--then ACTION ...]
 *   --after DURATION --since EVENT [--unless EVENT ...] [--business]
 *           [--repeat N] [--if COND ...] --then ACTION [--then ACTION ...]
 *
 * EVENT    := an event type that happens on a record (mr-event.h):
 *             ticket.created ticket.reopened ticket.status ticket.escalated
 *             lead.created lead.converted lead.archived opportunity.created
 *             opportunity.won opportunity.lost message.linked reply.received
 *             response.sent mail.bounced mail.held mail.failed
 *             team.unassigned task.created task.done
 * DURATION := mr_duration_parse(): 90m 4h 3d
 * N        := 1 to MR_WORKFLOW_REPEAT_MAX: the firings in all (default 1)
 * COND     := the rules' syntax (mr-rule.h) with the record's fields:
 *             record (ticket, lead, opportunity), status, priority, type,
 *             stage, value, owner, tag; and weekday, hour (of the firing,
 *             in the record's calendar); mr_rule_cond_parse_record()
 * ACTION   := send TEMPLATE
 *           | remind [EMAIL | team:NAME]
 *           | assign EMAIL | assign team:NAME
 *           | set FIELD = VALUE        FIELD: status priority type stage
 *                                      value tag
 *           | escalate [EMAIL | team:NAME]
 *           | task TEXT [due DURATION] TEXT: a word or a double-quoted
 *                                      string (as a rule's value)
 *
 * Canonical text: single spaces, values quoted only when they must be
 * (as mr_rule_cond_text()), an address in lower case; the parser reads
 * its own output back as an equal workflow. */
#pragma once

#include <glib.h>

#include "mailroom/mr-calendar.h"
#include "mailroom/mr-event.h"
#include "mailroom/mr-rule.h"

G_BEGIN_DECLS

#define MR_WORKFLOW_ERROR (mr_workflow_error_quark())

typedef enum {
	MR_WORKFLOW_ERROR_TRIGGER,   /* --on/--after/--since/--unless/--repeat/
					--business missing, twice or together
					where they may not be; an unknown event */
	MR_WORKFLOW_ERROR_DURATION,  /* not a duration */
	MR_WORKFLOW_ERROR_CONDITION, /* a --if that does not parse (the rule
					grammar's message) */
	MR_WORKFLOW_ERROR_ACTION,    /* an action that does not parse */
	MR_WORKFLOW_ERROR_NAME,      /* a bad workflow or template name */
	MR_WORKFLOW_ERROR_EMPTY,     /* no --then */
} MrWorkflowError;

GQuark mr_workflow_error_quark(void);

/* The most firings --repeat allows, and the most --if, --then and
 * --unless one workflow has. */
#define MR_WORKFLOW_REPEAT_MAX 100
#define MR_WORKFLOW_PARTS_MAX 32

typedef enum {
	MR_WORKFLOW_ON,    /* --on EVENT: once, when EVENT happens */
	MR_WORKFLOW_TIMER, /* --after D --since EVENT: when EVENT happened D ago
			      and no --unless event came since */
} MrWorkflowKind;

typedef enum {
	MR_WORKFLOW_ACT_SEND,     /* @text: the template */
	MR_WORKFLOW_ACT_REMIND,   /* @text: an address, a team (@team), or NULL:
				     the owner */
	MR_WORKFLOW_ACT_ASSIGN,   /* @text: an address or a team (@team) */
	MR_WORKFLOW_ACT_SET,      /* @text: the field, @value: its value */
	MR_WORKFLOW_ACT_ESCALATE, /* @text: an address, a team (@team), or NULL:
				     the lead of the owner's team */
	MR_WORKFLOW_ACT_TASK,     /* @text: the title; @has_due: @due */
} MrWorkflowActionKind;

/* The fields `set` takes. */
typedef enum {
	MR_WORKFLOW_SET_STATUS,   /* a status name of any kind of record: the
				     record's kind is checked when it fires */
	MR_WORKFLOW_SET_PRIORITY, /* mr_priority_from_name() */
	MR_WORKFLOW_SET_TYPE,     /* mr_ticket_type_from_name(): tickets only */
	MR_WORKFLOW_SET_STAGE,    /* opportunities only: any word */
	MR_WORKFLOW_SET_VALUE,    /* opportunities only: a whole number >= 0 */
	MR_WORKFLOW_SET_TAG,      /* adds the tag (a word as a rule's tag) */
} MrWorkflowSetField;

typedef struct {
	MrWorkflowActionKind kind;
	char *text;         /* see MrWorkflowActionKind; addresses in lower
			       case */
	gboolean team;      /* @text is a team's name */
	MrWorkflowSetField field; /* SET */
	char *value;        /* SET: the value as written (a priority or type
			       by its stored name) */
	gboolean has_due;   /* TASK: "due DURATION" was given */
	MrDuration due;
} MrWorkflowAction;

typedef struct {
	char *name;
	gboolean enabled;       /* TRUE when made */
	MrWorkflowKind kind;
	MrEventType event;      /* --on EVENT, or --since EVENT */
	MrDuration after;       /* TIMER */
	gboolean business;      /* TIMER: --business */
	int repeat;             /* TIMER: --repeat, 1 when not given */
	GArray *unless;         /* TIMER: MrEventType, in the order given, no
				   repeats (a repeat is refused) */
	GPtrArray *conds;       /* MrRuleCond* (mr_rule_cond_parse_record()),
				   maybe none */
	GPtrArray *actions;     /* MrWorkflowAction*, at least one */
} MrWorkflow;

/* What mailroomctl read for one workflow: every option as given. */
typedef struct {
	const char *on;                 /* (nullable) --on */
	const char *after;              /* (nullable) --after */
	const char *since;              /* (nullable) --since */
	const char *const *unless;      /* (nullable) NULL-terminated --unless */
	gboolean business;              /* --business */
	int repeat;                     /* --repeat, 0 when not given */
	gboolean has_repeat;            /* --repeat was given: so that
					   "--repeat 0" is refused (a @repeat
					   other than 0 counts as given too) */
	const char *const *conds;       /* (nullable) NULL-terminated --if */
	const char *const *actions;     /* (nullable) NULL-terminated --then */
} MrWorkflowSpec;

/* Makes workflow @name (mr_rule_check_name("workflow", ...)) from @spec.
 * Exactly one of --on and --after; --since with --after and only with
 * it; --unless, --business and --repeat only with --after; an --unless
 * event other than the --since one; at least one --then; at most
 * MR_WORKFLOW_PARTS_MAX of --if, --then and --unless each.  Returns:
 * (transfer full) (nullable): the workflow, enabled, or NULL with @error
 * (MR_WORKFLOW_ERROR) in one line that names the option and quotes the
 * text at fault: "--then 'sned follow-up': unknown action sned (actions:
 * send, remind, assign, set, escalate, task)". */
MrWorkflow *mr_workflow_new(const char *name, const MrWorkflowSpec *spec, GError **error);

void mr_workflow_free(MrWorkflow *wf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrWorkflow, mr_workflow_free)

/* Returns: (transfer full): the trigger of @wf in canonical text, the
 * options in this order: "--on ticket.created", "--after 3d --business
 * --since response.sent --unless reply.received --unless mail.bounced
 * --repeat 2" (--business and --repeat only when set, --repeat when above
 * 1). */
char *mr_workflow_trigger_text(const MrWorkflow *wf);

/* Parses @text, an ACTION.  Returns: (transfer full) (nullable): the
 * action, or NULL with @error (MR_WORKFLOW_ERROR_ACTION) quoting @text. */
MrWorkflowAction *mr_workflow_action_parse(const char *text, GError **error);

void mr_workflow_action_free(MrWorkflowAction *action);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrWorkflowAction, mr_workflow_action_free)

/* Returns: (transfer full): @action in canonical text ("send follow-up",
 * "remind team:sales", "set priority = high", "task \"Call back\" due
 * 1d"), which mr_workflow_action_parse() reads back as an equal action. */
char *mr_workflow_action_text(const MrWorkflowAction *action);

/* Whether @type is an event a workflow can wait for (the EVENT list
 * above). */
gboolean mr_workflow_event_ok(MrEventType type);

/* Makes workflow @name again from what the store keeps: @trigger
 * (mr_workflow_trigger_text()), @conds and @actions (NULL-terminated
 * canonical texts), @enabled.  Returns: (transfer full) (nullable): the
 * workflow, or NULL with @error (a row that no longer reads: the caller
 * leaves it out with a warning). */
MrWorkflow *mr_workflow_from_text(const char *name, const char *trigger,
				  const char *const *conds, const char *const *actions,
				  gboolean enabled, GError **error);

/* Returns TRUE when @wf's conditions all hold for @values (record fields
 * and weekday, hour; TRUE when it has none). */
gboolean mr_workflow_conds_hold(const MrWorkflow *wf, const MrRuleValues *values);

G_END_DECLS
