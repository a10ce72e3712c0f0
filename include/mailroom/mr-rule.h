/* mr-rule.h - mailroom rules: the grammar of a condition and an action,
 * a rule made of them, their canonical text, and their evaluation against
 * the values a message offers.
 *
 * Model layer: no I/O, no database.  Whether an owner or a team exists is
 * the CRM layer's question; where the values come from (the parsed
 * message, the routing facts, look-ups) is routing's.
 *
 * COND   := FIELD OP VALUE | FIELD exists | not COND
 * FIELD  := recipient role from from_domain to cc address subject body
 *           header:NAME attachments auto followup account weekday hour
 * OP     := = != ~ !~ contains starts ends < > in
 * VALUE  := a word (printable, no space, no '"') or a double-quoted string
 *           with \" and \\ escapes; `in` takes a comma-separated list
 * ACTION := ticket | lead | log | ignore | stop | priority = P | type = T
 *           | status = S | owner = EMAIL | owner = team:NAME | tag = WORD
 *           | source = WORD
 *
 * Comparisons.  `=`, `!=`, `in`, `contains`, `starts` and `ends` compare
 * text case-insensitively by Unicode case folding (g_utf8_casefold(), so
 * "STRASSE" equals "Straße"): the needle is folded once, when the
 * condition is parsed, the message's text once per evaluation (or never,
 * when MrRuleValues carries it folded).  `~` and `!~` are GLib regular
 * expressions (PCRE2), case-insensitive, compiled once with the JIT.  A
 * field with several values (from, from_domain, to, cc, address,
 * header:NAME) holds for a positive operator when any value holds, and for
 * `!=` and `!~` when no value matches (`to != x` is `not to = x`).
 *
 * Bounding regular expressions.  PCRE2's match limit (10,000,000 by
 * default; GRegex has no call to set it) counts per start position, not
 * per call: `(a+)+$` gives up in 0.1 s on 100,000 'a' then 'b', but on
 * 64 KiB of "aaaaaaaaaaab" blocks it takes minutes, and the polynomial
 * `a*a*a*\d` ran 500 s on 2,000 'a' (GLib 2.74.6, PCRE2 10.42, no JIT).
 * Refusing nested quantifiers would not catch the latter, so instead every
 * pattern runs with PCRE2's in-pattern setting (*LIMIT_MATCH=10000)
 * prepended (a pattern's own setting can only lower it), and sees at most
 * MR_RULE_REGEX_SUBJECT_MAX bytes of a value (cut there, `$` does not
 * match at the cut, G_REGEX_MATCH_NOTEOL): at most 64 Ki start
 * positions times 10,000 steps, measured at 0.15 s with the JIT (0.7 s
 * without) for the worst subjects found.  A match that gives up counts as
 * neither `~` nor `!~`: the condition is false, and its explained value
 * says so. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"

G_BEGIN_DECLS

#define MR_RULE_ERROR (mr_rule_error_quark())

typedef enum {
	MR_RULE_ERROR_SYNTAX,   /* unterminated quote, trailing text, control
				   bytes, not UTF-8, too long, empty */
	MR_RULE_ERROR_FIELD,    /* no such field */
	MR_RULE_ERROR_OPERATOR, /* no such operator, or not one the field takes */
	MR_RULE_ERROR_VALUE,    /* a value of the wrong type or out of range */
	MR_RULE_ERROR_REGEX,    /* the regular expression does not compile */
	MR_RULE_ERROR_ACTION,   /* no such action, or a bad value for one */
	MR_RULE_ERROR_NAME,     /* a bad rule (or team) name */
	MR_RULE_ERROR_CONFLICT, /* two actions that exclude each other */
	MR_RULE_ERROR_EMPTY,    /* a rule without conditions or actions */
} MrRuleError;

GQuark mr_rule_error_quark(void);

/* The longest text of one condition or action, and of a name. */
#define MR_RULE_TEXT_MAX 4096
#define MR_RULE_NAME_MAX 64
/* The bytes of a value a regular expression sees (the start of a long
 * body); the step limit PCRE2 applies at each start position. */
#define MR_RULE_REGEX_SUBJECT_MAX 65536
#define MR_RULE_REGEX_MATCH_LIMIT 10000
/* The longest value mr_rule_cond_eval() explains, in characters. */
#define MR_RULE_EXPLAIN_MAX 80

typedef enum {
	MR_RULE_FIELD_RECIPIENT,
	MR_RULE_FIELD_ROLE,
	MR_RULE_FIELD_FROM,
	MR_RULE_FIELD_FROM_DOMAIN,
	MR_RULE_FIELD_TO,
	MR_RULE_FIELD_CC,
	MR_RULE_FIELD_ADDRESS,
	MR_RULE_FIELD_SUBJECT,
	MR_RULE_FIELD_BODY,
	MR_RULE_FIELD_HEADER,
	MR_RULE_FIELD_ATTACHMENTS,
	MR_RULE_FIELD_AUTO,
	MR_RULE_FIELD_FOLLOWUP,
	MR_RULE_FIELD_ACCOUNT,
	MR_RULE_FIELD_WEEKDAY,
	MR_RULE_FIELD_HOUR,
	/* a record's fields: workflows only (mr_rule_cond_parse_record()) */
	MR_RULE_FIELD_RECORD,   /* = != in: ticket, lead, opportunity */
	MR_RULE_FIELD_STATUS,   /* text: = != in ~ !~ contains starts ends exists */
	MR_RULE_FIELD_PRIORITY, /* = != in < > exists: a priority's name, ordered
				   as MrPriority (low < normal < high < urgent) */
	MR_RULE_FIELD_TYPE,     /* = != in exists: a ticket type's name */
	MR_RULE_FIELD_STAGE,    /* text, as status */
	MR_RULE_FIELD_VALUE,    /* = != < > exists: a whole number */
	MR_RULE_FIELD_OWNER,    /* text, as status: the owner's address */
	MR_RULE_FIELD_TAG,      /* text, as status, several values (the tags) */
	MR_RULE_FIELD_N,
} MrRuleField;

/* The fields a rule on a message takes: those before this one. */
#define MR_RULE_FIELD_MESSAGE_N MR_RULE_FIELD_RECORD

typedef enum {
	MR_RULE_OP_EQ,       /* = */
	MR_RULE_OP_NE,       /* != */
	MR_RULE_OP_MATCH,    /* ~ */
	MR_RULE_OP_NOMATCH,  /* !~ */
	MR_RULE_OP_CONTAINS,
	MR_RULE_OP_STARTS,
	MR_RULE_OP_ENDS,
	MR_RULE_OP_LT,       /* < */
	MR_RULE_OP_GT,       /* > */
	MR_RULE_OP_IN,
	MR_RULE_OP_EXISTS,
	MR_RULE_OP_N,
} MrRuleOp;

/* A parsed condition.  Read its members; make and free it only with the
 * functions below. */
typedef struct {
	MrRuleField field;
	char *header;      /* HEADER: the header's name as written, else NULL */
	MrRuleOp op;
	gboolean negate;   /* an odd number of `not` */
	guint n_values;    /* 0 for exists, 1, or the items of an in list */
	char **values;     /* the values as written, unquoted (NULL-terminated) */
	char **folded;     /* text fields: @values case-folded, else NULL */
	gint64 *numbers;   /* attachments and hour: the numbers; weekday: 0
			      (mon) to 6; role: an MrRole; auto and followup:
			      1 (yes) or 0; else NULL */
	GRegex *regex;     /* ~ and !~: compiled, bounded; else NULL */
} MrRuleCond;

typedef enum {
	MR_RULE_ACT_TICKET,   /* what the mail becomes */
	MR_RULE_ACT_LEAD,
	MR_RULE_ACT_LOG,
	MR_RULE_ACT_IGNORE,
	MR_RULE_ACT_PRIORITY, /* @value: an MrPriority */
	MR_RULE_ACT_TYPE,     /* @value: an MrTicketType */
	MR_RULE_ACT_STATUS,   /* @value: an MrTicketStatus */
	MR_RULE_ACT_OWNER,    /* @text: an address (normalised), or a team's
				 name when @team */
	MR_RULE_ACT_TAG,      /* @text */
	MR_RULE_ACT_SOURCE,   /* @text */
	MR_RULE_ACT_STOP,
	MR_RULE_ACT_N,
} MrRuleActionKind;

typedef struct {
	MrRuleActionKind kind;
	int value;
	char *text;
	gboolean team;
} MrRuleAction;

typedef struct {
	char *name;
	gboolean enabled;  /* TRUE when made */
	gboolean any;      /* any condition suffices, else all must hold */
	gboolean stop;     /* no later rule runs (--stop or a stop action) */
	GPtrArray *conds;  /* MrRuleCond*, at least one */
	GPtrArray *actions; /* MrRuleAction*, without stop (it is @stop) */
} MrRule;

/* A header of the message, for header:NAME. */
typedef struct {
	const char *name;  /* matched ASCII case-insensitively */
	const char *value; /* decoded */
} MrRuleHeader;

/* What a message offers the fields, all borrowed, text in UTF-8 (other
 * bytes are made valid before they are compared).  A NULL list or text is
 * an empty one. */
typedef struct {
	const char *recipient;       /* the mailroom address, no +detail */
	MrRole role;
	const char *const *from;     /* NULL-terminated addresses */
	const char *const *to;
	const char *const *cc;
	const char *subject;         /* decoded */
	const char *body;            /* the text body */
	const char *subject_folded;  /* (nullable): g_utf8_casefold(subject),
					when the caller folds it once for
					every rule */
	const char *body_folded;     /* (nullable): the same for body */
	const MrRuleHeader *headers;
	gsize n_headers;
	int attachments;
	gboolean is_auto;            /* auto-reply, bounce or bulk */
	gboolean followup;           /* belongs to an existing record */
	const char *account;         /* the sender's account's name */
	int weekday;                 /* 0 (Monday) to 6, when received (a
					workflow: when it fires) */
	int hour;                    /* 0 to 23, when received (fires) */
	/* a record's fields, for a workflow's conditions; NULL: none */
	const char *record;          /* "ticket", "lead", "opportunity" */
	const char *status;          /* its stored name */
	const char *priority;        /* a priority's stored name */
	const char *type;            /* a ticket type's stored name */
	const char *stage;
	gboolean has_value;          /* @value is set */
	gint64 value;
	const char *owner;           /* the owner's address */
	const char *const *tags;     /* NULL-terminated */
} MrRuleValues;

/* Returns the name of @field ("from_domain"; "header" for HEADER), or NULL. */
const char *mr_rule_field_name(MrRuleField field);

/* Returns the text of @op ("!~", "contains"), or NULL. */
const char *mr_rule_op_name(MrRuleOp op);

/* Parses @text, a COND.  Returns: (transfer full) (nullable): the
 * condition, or NULL with @error set in MR_RULE_ERROR, its message quoting
 * @text and saying what is wrong ("'subjct ~ x': unknown field subjct
 * (fields: recipient, role, ...)"). */
MrRuleCond *mr_rule_cond_parse(const char *text, GError **error);

/* Parses @text, a COND of a workflow: the record's fields (record,
 * status, priority, type, stage, value, owner, tag) and weekday, hour;
 * mr_rule_cond_parse() refuses the record's fields, and this the other
 * fields of a message, each with the list of what it takes.  Returns:
 * (transfer full) (nullable): the condition, or NULL with @error. */
MrRuleCond *mr_rule_cond_parse_record(const char *text, GError **error);

/* Frees @cond; NULL-safe. */
void mr_rule_cond_free(MrRuleCond *cond);

/* Returns: (transfer full): @cond in canonical text, which
 * mr_rule_cond_parse() reads back as an equal condition: single spaces,
 * one `not` at most, values quoted only when they must be, `in` items
 * joined by commas ("weekday in sat,sun"). */
char *mr_rule_cond_text(const MrRuleCond *cond);

/* Returns TRUE when @a and @b are the same condition (field, header name
 * ignoring ASCII case, operator, negation, values). */
gboolean mr_rule_cond_equal(const MrRuleCond *a, const MrRuleCond *b);

/* Returns TRUE when @cond needs a database look-up to evaluate (followup,
 * account), FALSE when the message alone answers it. */
gboolean mr_rule_cond_needs_store(const MrRuleCond *cond);

/* Evaluates @cond against @values.  With @value_out, sets it (transfer
 * full) to the value the condition was checked against, for --explain:
 * the first value that holds, else all of them joined by ", ", "(none)"
 * for an empty field, cut to one line of at most MR_RULE_EXPLAIN_MAX
 * characters with control characters shown as text; a regular expression
 * that gave up adds " (regex gave up: REASON)".  Linear in the size of
 * the values (a regular expression bounded as the file comment says). */
gboolean mr_rule_cond_eval(const MrRuleCond *cond, const MrRuleValues *values, char **value_out);

/* Parses @text, an ACTION.  Returns: (transfer full) (nullable): the
 * action, or NULL with @error set in MR_RULE_ERROR quoting @text (valid
 * actions, priorities, types or statuses listed). */
MrRuleAction *mr_rule_action_parse(const char *text, GError **error);

/* Frees @action; NULL-safe. */
void mr_rule_action_free(MrRuleAction *action);

/* Returns: (transfer full): @action in canonical text ("priority = high",
 * "owner = team:2nd-level"), which mr_rule_action_parse() reads back as an
 * equal action. */
char *mr_rule_action_text(const MrRuleAction *action);

/* Returns TRUE when @a and @b are the same action. */
gboolean mr_rule_action_equal(const MrRuleAction *a, const MrRuleAction *b);

/* Checks @name as the name of a rule or team (@what: "rule", "team"): 1 to
 * MR_RULE_NAME_MAX characters of ASCII letters, digits, '.', '_' and '-',
 * not starting with '-'.  Returns FALSE with @error (MR_RULE_ERROR_NAME). */
gboolean mr_rule_check_name(const char *what, const char *name, GError **error);

/* Makes a rule from the command line's pieces: @name, the --if texts
 * @conds and the --then texts @actions (NULL-terminated, each at least
 * one), --any and --stop.  A stop action sets @stop and is not kept among
 * the actions.  At most one of ticket, lead, log and ignore, and one each
 * of priority, type, status, owner and source; a tag once.  Returns:
 * (transfer full) (nullable): the rule, enabled, or NULL with @error set
 * by the first text refused (MR_RULE_ERROR). */
MrRule *mr_rule_new(const char *name, const char *const *conds, const char *const *actions,
		    gboolean any, gboolean stop, GError **error);

/* Frees @rule; NULL-safe. */
void mr_rule_free(MrRule *rule);

/* Returns TRUE when @rule's conditions hold for @values: all of them, or
 * with @rule->any one of them (evaluated in order, stopping at the first
 * that decides).  Does not look at @rule->enabled. */
gboolean mr_rule_matches(const MrRule *rule, const MrRuleValues *values);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRuleCond, mr_rule_cond_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRuleAction, mr_rule_action_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrRule, mr_rule_free)

G_END_DECLS
