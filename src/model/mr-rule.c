/* mr-rule.c - the rule grammar: conditions and actions parsed into typed
 * structs, printed back as canonical text, and evaluated against the
 * values of a message.  Model layer: no I/O.  The bounds on regular
 * expressions, and why, are in mr-rule.h. */
#include <stdarg.h>
#include <string.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-rule.h"
#include "mailroom/mr-status.h"
#include "mailroom/mr-text.h"

#include "mr-rule-private.h"

G_DEFINE_QUARK(mr-rule-error-quark, mr_rule_error)

/* What a field's values are, which decides the operators it takes. */
typedef enum {
	KIND_TEXT,    /* one text: subject, body, recipient, account */
	KIND_LIST,    /* several texts: addresses, header values */
	KIND_NUMBER,  /* attachments, hour */
	KIND_BOOL,    /* auto, followup: yes or no */
	KIND_WEEKDAY, /* mon .. sun */
	KIND_ROLE,    /* bcc, support, sales */
	KIND_RECORD,  /* ticket, lead, opportunity */
	KIND_PRIORITY, /* a priority's name, ordered as MrPriority */
	KIND_TYPE,    /* a ticket type's name */
} Kind;

#define OP(o) (1u << (o))
#define TEXT_OPS                                                                            \
	(OP(MR_RULE_OP_EQ) | OP(MR_RULE_OP_NE) | OP(MR_RULE_OP_MATCH) | OP(MR_RULE_OP_NOMATCH) | \
	 OP(MR_RULE_OP_CONTAINS) | OP(MR_RULE_OP_STARTS) | OP(MR_RULE_OP_ENDS) |                 \
	 OP(MR_RULE_OP_IN) | OP(MR_RULE_OP_EXISTS))
#define NUMBER_OPS \
	(OP(MR_RULE_OP_EQ) | OP(MR_RULE_OP_NE) | OP(MR_RULE_OP_LT) | OP(MR_RULE_OP_GT) | OP(MR_RULE_OP_IN))
#define CHOICE_OPS (OP(MR_RULE_OP_EQ) | OP(MR_RULE_OP_NE) | OP(MR_RULE_OP_IN))
#define BOOL_OPS (OP(MR_RULE_OP_EQ) | OP(MR_RULE_OP_NE))
#define PRIORITY_OPS (CHOICE_OPS | OP(MR_RULE_OP_LT) | OP(MR_RULE_OP_GT) | OP(MR_RULE_OP_EXISTS))
#define VALUE_OPS                                                                           \
	(OP(MR_RULE_OP_EQ) | OP(MR_RULE_OP_NE) | OP(MR_RULE_OP_LT) | OP(MR_RULE_OP_GT) | \
	 OP(MR_RULE_OP_EXISTS))

static const struct {
	const char *name;
	Kind kind;
	guint ops;
	gint64 max; /* KIND_NUMBER: the largest value (the least is 0) */
} fields[MR_RULE_FIELD_N] = {
	[MR_RULE_FIELD_RECIPIENT] = { "recipient", KIND_TEXT, TEXT_OPS, 0 },
	[MR_RULE_FIELD_ROLE] = { "role", KIND_ROLE, CHOICE_OPS, 0 },
	[MR_RULE_FIELD_FROM] = { "from", KIND_LIST, TEXT_OPS, 0 },
	[MR_RULE_FIELD_FROM_DOMAIN] = { "from_domain", KIND_LIST, TEXT_OPS, 0 },
	[MR_RULE_FIELD_TO] = { "to", KIND_LIST, TEXT_OPS, 0 },
	[MR_RULE_FIELD_CC] = { "cc", KIND_LIST, TEXT_OPS, 0 },
	[MR_RULE_FIELD_ADDRESS] = { "address", KIND_LIST, TEXT_OPS, 0 },
	[MR_RULE_FIELD_SUBJECT] = { "subject", KIND_TEXT, TEXT_OPS, 0 },
	[MR_RULE_FIELD_BODY] = { "body", KIND_TEXT, TEXT_OPS, 0 },
	[MR_RULE_FIELD_HEADER] = { "header", KIND_LIST, TEXT_OPS, 0 },
	[MR_RULE_FIELD_ATTACHMENTS] = { "attachments", KIND_NUMBER, NUMBER_OPS, 1000000 },
	[MR_RULE_FIELD_AUTO] = { "auto", KIND_BOOL, BOOL_OPS, 0 },
	[MR_RULE_FIELD_FOLLOWUP] = { "followup", KIND_BOOL, BOOL_OPS, 0 },
	[MR_RULE_FIELD_ACCOUNT] = { "account", KIND_TEXT, TEXT_OPS, 0 },
	[MR_RULE_FIELD_WEEKDAY] = { "weekday", KIND_WEEKDAY, CHOICE_OPS, 0 },
	[MR_RULE_FIELD_HOUR] = { "hour", KIND_NUMBER, NUMBER_OPS, 23 },
	[MR_RULE_FIELD_RECORD] = { "record", KIND_RECORD, CHOICE_OPS, 0 },
	[MR_RULE_FIELD_STATUS] = { "status", KIND_TEXT, TEXT_OPS, 0 },
	[MR_RULE_FIELD_PRIORITY] = { "priority", KIND_PRIORITY, PRIORITY_OPS, 0 },
	[MR_RULE_FIELD_TYPE] = { "type", KIND_TYPE, CHOICE_OPS | OP(MR_RULE_OP_EXISTS), 0 },
	[MR_RULE_FIELD_STAGE] = { "stage", KIND_TEXT, TEXT_OPS, 0 },
	[MR_RULE_FIELD_VALUE] = { "value", KIND_NUMBER, VALUE_OPS, G_GINT64_CONSTANT(999999999999999) },
	[MR_RULE_FIELD_OWNER] = { "owner", KIND_TEXT, TEXT_OPS, 0 },
	[MR_RULE_FIELD_TAG] = { "tag", KIND_LIST, TEXT_OPS, 0 },
};

/* The fields a workflow's condition takes, in the order they are listed:
 * the record's, then the time of the firing. */
static const MrRuleField record_fields[] = {
	MR_RULE_FIELD_RECORD, MR_RULE_FIELD_STATUS, MR_RULE_FIELD_PRIORITY, MR_RULE_FIELD_TYPE,
	MR_RULE_FIELD_STAGE,  MR_RULE_FIELD_VALUE,  MR_RULE_FIELD_OWNER,    MR_RULE_FIELD_TAG,
	MR_RULE_FIELD_WEEKDAY, MR_RULE_FIELD_HOUR,
};

static const char *const ops[MR_RULE_OP_N] = {
	[MR_RULE_OP_EQ] = "=",           [MR_RULE_OP_NE] = "!=",
	[MR_RULE_OP_MATCH] = "~",        [MR_RULE_OP_NOMATCH] = "!~",
	[MR_RULE_OP_CONTAINS] = "contains", [MR_RULE_OP_STARTS] = "starts",
	[MR_RULE_OP_ENDS] = "ends",      [MR_RULE_OP_LT] = "<",
	[MR_RULE_OP_GT] = ">",           [MR_RULE_OP_IN] = "in",
	[MR_RULE_OP_EXISTS] = "exists",
};

static const char *const weekdays[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL };
static const char *const yes_no[] = { "no", "yes", NULL };
static const char *const record_kinds[] = { "ticket", "lead", "opportunity", NULL };

static const struct {
	const char *name;
	gboolean takes_value;
	const char *usage; /* for the list of actions */
} actions[MR_RULE_ACT_N] = {
	[MR_RULE_ACT_TICKET] = { "ticket", FALSE, "ticket" },
	[MR_RULE_ACT_LEAD] = { "lead", FALSE, "lead" },
	[MR_RULE_ACT_LOG] = { "log", FALSE, "log" },
	[MR_RULE_ACT_IGNORE] = { "ignore", FALSE, "ignore" },
	[MR_RULE_ACT_PRIORITY] = { "priority", TRUE, "priority = PRIORITY" },
	[MR_RULE_ACT_TYPE] = { "type", TRUE, "type = TYPE" },
	[MR_RULE_ACT_STATUS] = { "status", TRUE, "status = STATUS" },
	[MR_RULE_ACT_OWNER] = { "owner", TRUE, "owner = EMAIL|team:NAME" },
	[MR_RULE_ACT_TAG] = { "tag", TRUE, "tag = WORD" },
	[MR_RULE_ACT_SOURCE] = { "source", TRUE, "source = WORD" },
	[MR_RULE_ACT_STOP] = { "stop", FALSE, "stop" },
};

#define TEAM_PREFIX "team:"
#define WORD_MAX 64

/* --- errors ----------------------------------------------------------------- */

/* Sets @error to "PREFIX'TEXT': MESSAGE" (TEXT shown safely, cut when
 * long). */
static void set_quoting(GError **error, GQuark domain, int code, const char *prefix,
			const char *text, const char *fmt, va_list ap) G_GNUC_PRINTF(6, 0);

static void
set_quoting(GError **error, GQuark domain, int code, const char *prefix, const char *text,
	    const char *fmt, va_list ap)
{
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	g_autofree char *shown = NULL;
	gsize len = text != NULL ? strlen(text) : 0;
	gsize cut = MIN(len, 60);

	while (cut > 0 && cut < len && ((guchar)text[cut] & 0xc0) == 0x80)
		cut--;
	shown = mr_text_printable(text != NULL ? text : "", cut, FALSE);
	g_set_error(error, domain, code, "%s'%s%s': %s", prefix, shown, cut < len ? "..." : "", msg);
}

gboolean
mr_rule_error_quoting(GError **error, GQuark domain, int code, const char *prefix, const char *text,
		      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_quoting(error, domain, code, prefix, text, fmt, ap);
	va_end(ap);
	return FALSE;
}

/* Sets @error to "'TEXT': MESSAGE" and returns FALSE. */
static gboolean G_GNUC_PRINTF(4, 5)
fail(GError **error, MrRuleError code, const char *text, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_quoting(error, MR_RULE_ERROR, code, "", text, fmt, ap);
	va_end(ap);
	return FALSE;
}

/* Whether a condition of a workflow (@record), or of a rule on a
 * message, takes field @f. */
static gboolean
field_taken(int f, gboolean record)
{
	if (!record)
		return f < MR_RULE_FIELD_MESSAGE_N;
	return f >= MR_RULE_FIELD_MESSAGE_N || f == MR_RULE_FIELD_WEEKDAY || f == MR_RULE_FIELD_HOUR;
}

/* Returns: (transfer full): the field names a workflow's condition
 * (@record) or a rule's takes, comma-separated. */
static char *
field_list(gboolean record)
{
	GString *s = g_string_new(NULL);

	if (record) {
		for (gsize i = 0; i < G_N_ELEMENTS(record_fields); i++)
			g_string_append_printf(s, "%s%s", i > 0 ? ", " : "", fields[record_fields[i]].name);
		return g_string_free(s, FALSE);
	}
	for (int f = 0; f < MR_RULE_FIELD_MESSAGE_N; f++)
		g_string_append_printf(s, "%s%s%s", f > 0 ? ", " : "", fields[f].name,
				       f == MR_RULE_FIELD_HEADER ? ":NAME" : "");
	return g_string_free(s, FALSE);
}

/* Returns: (transfer full): the operators in @mask, comma-separated. */
static char *
op_list(guint mask)
{
	GString *s = g_string_new(NULL);

	for (int o = 0; o < MR_RULE_OP_N; o++)
		if (mask & OP(o))
			g_string_append_printf(s, "%s%s", s->len > 0 ? ", " : "", ops[o]);
	return g_string_free(s, FALSE);
}

/* Returns: (transfer full): the words of a NULL-terminated table. */
static char *
table_list(const char *const *table)
{
	return g_strjoinv(", ", (char **)table);
}

/* Returns: (transfer full): the names @name_of gives for 0, 1, ... until
 * NULL (the priorities and ticket types of mr-status.h). */
static char *
enum_list(const char *(*name_of)(int))
{
	GString *s = g_string_new(NULL);

	for (int i = 0; name_of(i) != NULL; i++)
		g_string_append_printf(s, "%s%s", i > 0 ? ", " : "", name_of(i));
	return g_string_free(s, FALSE);
}

static const char *
priority_name(int i)
{
	return mr_priority_name((MrPriority)i);
}

static const char *
ticket_type_name(int i)
{
	return mr_ticket_type_name((MrTicketType)i);
}

char *
mr_rule_enum_list(gboolean types)
{
	return enum_list(types ? ticket_type_name : priority_name);
}

/* Returns: (transfer full): the roles a mailroom address has. */
static char *
role_list(void)
{
	return g_strdup_printf("%s, %s, %s", mr_role_name(MR_ROLE_BCC), mr_role_name(MR_ROLE_SUPPORT),
			       mr_role_name(MR_ROLE_SALES));
}

/* Checks what a condition and an action share: present, not too long,
 * UTF-8, no control characters, not blank. */
static gboolean
check_text(const char *text, GError **error)
{
	gsize len;

	if (text == NULL)
		return fail(error, MR_RULE_ERROR_SYNTAX, "", "empty");
	len = strlen(text);
	if (len > MR_RULE_TEXT_MAX)
		return fail(error, MR_RULE_ERROR_SYNTAX, text, "too long (%zu bytes, at most %d)", len,
			    MR_RULE_TEXT_MAX);
	if (!g_utf8_validate(text, len, NULL))
		return fail(error, MR_RULE_ERROR_SYNTAX, text, "not UTF-8");
	for (gsize i = 0; i < len; i++)
		if ((guchar)text[i] < 0x20 || text[i] == 0x7f)
			return fail(error, MR_RULE_ERROR_SYNTAX, text,
				    "a control character (0x%02x) at byte %zu", (guchar)text[i], i);
	if (text[strspn(text, " ")] == '\0')
		return fail(error, MR_RULE_ERROR_SYNTAX, text, "empty");
	return TRUE;
}

gboolean
mr_rule_check_text(const char *text, GError **error)
{
	return check_text(text, error);
}

/* --- tokens ------------------------------------------------------------------ */

static const char *
skip_spaces(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* A byte that may stand in a word: printable (UTF-8 included), no quote,
 * and no comma in an `in` list. */
static gboolean
word_byte(char c, gboolean in_list)
{
	return (guchar)c > 0x20 && c != 0x7f && c != '"' && !(in_list && c == ',');
}

/* Reads a word or a quoted string at *@p, moving *@p past it.  Returns:
 * (transfer full) (nullable): the value, NULL at no value (@error unset)
 * or at an unterminated quote (@error set, quoting @text). */
static char *
read_value(const char **p, gboolean in_list, const char *text, GError **error)
{
	const char *q = *p;
	GString *s;

	if (*q != '"') {
		while (word_byte(*q, in_list))
			q++;
		if (q == *p)
			return NULL;
		s = g_string_new_len(*p, q - *p);
		*p = q;
		return g_string_free(s, FALSE);
	}
	s = g_string_new(NULL);
	for (q++; *q != '\0' && *q != '"'; q++) {
		if (*q == '\\' && (q[1] == '"' || q[1] == '\\'))
			q++;
		g_string_append_c(s, *q);
	}
	if (*q != '"') {
		g_string_free(s, TRUE);
		fail(error, MR_RULE_ERROR_SYNTAX, text, "unterminated quoted value");
		return NULL;
	}
	*p = q + 1;
	return g_string_free(s, FALSE);
}

/* Appends @v to @s as a word when it reads back as one, else quoted. */
static void
append_value(GString *s, const char *v, gboolean in_list)
{
	gboolean word = *v != '\0';

	for (const char *q = v; *q != '\0' && word; q++)
		word = word_byte(*q, in_list);
	if (word) {
		g_string_append(s, v);
		return;
	}
	g_string_append_c(s, '"');
	for (const char *q = v; *q != '\0'; q++) {
		if (*q == '"' || *q == '\\')
			g_string_append_c(s, '\\');
		g_string_append_c(s, *q);
	}
	g_string_append_c(s, '"');
}

char *
mr_rule_read_value(const char **p, const char *text, GError **error)
{
	return read_value(p, FALSE, text, error);
}

void
mr_rule_append_value(GString *s, const char *v)
{
	append_value(s, v, FALSE);
}

/* Returns the index of @word in the NULL-terminated @table (ASCII case
 * ignored), or -1. */
static int
table_index(const char *const *table, const char *word)
{
	for (int i = 0; table[i] != NULL; i++)
		if (g_ascii_strcasecmp(table[i], word) == 0)
			return i;
	return -1;
}

/* --- conditions: parsing ------------------------------------------------------ */

void
mr_rule_cond_free(MrRuleCond *cond)
{
	if (cond == NULL)
		return;
	g_free(cond->header);
	g_strfreev(cond->values);
	g_strfreev(cond->folded);
	g_free(cond->numbers);
	g_clear_pointer(&cond->regex, g_regex_unref);
	g_free(cond);
}

const char *
mr_rule_field_name(MrRuleField field)
{
	return (int)field >= 0 && field < MR_RULE_FIELD_N ? fields[field].name : NULL;
}

const char *
mr_rule_op_name(MrRuleOp op)
{
	return (int)op >= 0 && op < MR_RULE_OP_N ? ops[op] : NULL;
}

/* A header's name: letters, digits, '-', '_', '.'. */
static gboolean
header_byte(char c)
{
	return g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
}

/* Refuses field @name (@f), which a workflow's condition (@record) or a
 * rule's does not take, saying what it does take. */
static gboolean
field_refused(int f, const char *name, gboolean record, const char *text, GError **error)
{
	g_autofree char *list = field_list(record);

	if (record)
		return fail(error, MR_RULE_ERROR_FIELD, text,
			    "%s is a field of a message; a workflow's conditions take: %s", name, list);
	return fail(error, MR_RULE_ERROR_FIELD, text,
		    "%s is a field of a workflow's record, not of a message (fields: %s)",
		    fields[f].name, list);
}

/* Reads FIELD (or header:NAME) at *@p into @cond: one that a workflow's
 * condition (@record) or a rule's takes. */
static gboolean
parse_field(const char **p, MrRuleCond *cond, gboolean record, const char *text, GError **error)
{
	const char *q = *p;
	g_autofree char *name = NULL;

	while (g_ascii_islower(*q) || *q == '_')
		q++;
	if (q - *p == 6 && strncmp(*p, "header", 6) == 0 && *q == ':') {
		const char *h = ++q;

		while (header_byte(*q))
			q++;
		if (q == h || q - h > WORD_MAX)
			return fail(error, MR_RULE_ERROR_FIELD, text,
				    "header: needs a header name (letters, digits, '-', '_', '.')");
		if (record) {
			g_autofree char *written = g_strndup(*p, q - *p);

			return field_refused(MR_RULE_FIELD_HEADER, written, record, text, error);
		}
		cond->field = MR_RULE_FIELD_HEADER;
		cond->header = g_strndup(h, q - h);
		*p = q;
		return TRUE;
	}
	/* an unknown field is quoted whole ("Subject", "subj.ect") */
	if (*q != ' ' && *q != '\0' && strchr("=!~<>", *q) == NULL)
		q += strcspn(q, " ");
	name = g_strndup(*p, q - *p);
	for (int f = 0; f < MR_RULE_FIELD_N; f++)
		if (f != MR_RULE_FIELD_HEADER && strcmp(name, fields[f].name) == 0) {
			if (!field_taken(f, record))
				return field_refused(f, name, record, text, error);
			cond->field = (MrRuleField)f;
			*p = q;
			return TRUE;
		}
	{
		g_autofree char *list = field_list(record);

		if (*name == '\0')
			return fail(error, MR_RULE_ERROR_FIELD, text, "a condition starts with a field (fields: %s)",
				    list);
		return fail(error, MR_RULE_ERROR_FIELD, text, "unknown field %s (fields: %s)", name, list);
	}
}

/* Reads OP at *@p into @cond and checks that the field takes it. */
static gboolean
parse_op(const char **p, MrRuleCond *cond, const char *text, GError **error)
{
	const char *q = *p;
	const char *name = mr_rule_field_name(cond->field);
	g_autofree char *op = NULL;
	g_autofree char *all = op_list(OP(MR_RULE_OP_N) - 1);
	g_autofree char *taken = op_list(fields[cond->field].ops);

	if (*q == '\0')
		return fail(error, MR_RULE_ERROR_OPERATOR, text, "%s needs an operator (%s)", name, taken);
	if (strchr("=!~<>", *q) != NULL)
		q += strspn(q, "=!~<>");
	else
		q += strcspn(q, " ");
	op = g_strndup(*p, q - *p);
	for (int o = 0; o < MR_RULE_OP_N; o++)
		if (strcmp(op, ops[o]) == 0) {
			if (!(fields[cond->field].ops & OP(o)))
				return fail(error, MR_RULE_ERROR_OPERATOR, text, "%s takes %s; not %s", name,
					    taken, op);
			cond->op = (MrRuleOp)o;
			*p = q;
			return TRUE;
		}
	return fail(error, MR_RULE_ERROR_OPERATOR, text, "unknown operator %s (operators: %s)", op, all);
}

/* Reads the value, or the `in` list, at *@p into @cond->values, up to the
 * end of @text. */
static gboolean
parse_values(const char *p, MrRuleCond *cond, const char *text, GError **error)
{
	g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(g_free);
	gboolean in = cond->op == MR_RULE_OP_IN;
	const char *name = mr_rule_field_name(cond->field);

	p = skip_spaces(p);
	if (cond->op == MR_RULE_OP_EXISTS) {
		if (*p != '\0')
			return fail(error, MR_RULE_ERROR_SYNTAX, text, "exists takes no value");
	} else {
		for (;;) {
			GError *local = NULL;
			char *v = read_value(&p, in, text, &local);

			if (local != NULL) {
				g_propagate_error(error, local);
				return FALSE;
			}
			if (v == NULL)
				return fail(error, MR_RULE_ERROR_SYNTAX, text, "%s %s needs a value%s", name,
					    ops[cond->op], in && values->len > 0 ? " after a comma" : "");
			g_ptr_array_add(values, v);
			p = skip_spaces(p);
			if (!in || *p != ',')
				break;
			p = skip_spaces(p + 1);
		}
		if (*p != '\0')
			return fail(error, MR_RULE_ERROR_SYNTAX, text, "unexpected text after the value: %s", p);
	}
	cond->n_values = values->len;
	g_ptr_array_add(values, NULL);
	cond->values = (char **)g_ptr_array_free(g_steal_pointer(&values), FALSE);
	return TRUE;
}

/* Compiles @cond's pattern: once as written, for GLib's reason in the
 * user's terms, then bounded (mr-rule.h) with the JIT, and tried once on
 * "" so that a pattern that cannot run at all is refused now. */
static gboolean
compile_regex(MrRuleCond *cond, const char *text, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(GRegex) plain = NULL;
	g_autofree char *bounded = NULL;

	plain = g_regex_new(cond->values[0], G_REGEX_CASELESS, 0, &local);
	if (plain == NULL)
		return fail(error, MR_RULE_ERROR_REGEX, text, "the regular expression does not compile: %s",
			    local->message);
	bounded = g_strdup_printf("(*LIMIT_MATCH=%d)%s", MR_RULE_REGEX_MATCH_LIMIT, cond->values[0]);
	cond->regex = g_regex_new(bounded, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, &local);
	if (cond->regex == NULL)
		return fail(error, MR_RULE_ERROR_REGEX, text, "the regular expression does not compile: %s",
			    local->message);
	g_regex_match_full(cond->regex, "", 0, 0, 0, NULL, &local);
	if (local != NULL)
		return fail(error, MR_RULE_ERROR_REGEX, text, "the regular expression cannot run: %s",
			    local->message);
	return TRUE;
}

/* Reads each value of a number field into @cond->numbers, canonical. */
static gboolean
type_numbers(MrRuleCond *cond, const char *text, GError **error)
{
	const char *name = mr_rule_field_name(cond->field);
	gint64 max = fields[cond->field].max;

	for (guint i = 0; i < cond->n_values; i++) {
		guint64 n;

		if (!g_ascii_string_to_unsigned(cond->values[i], 10, 0, (guint64)max, &n, NULL))
			return fail(error, MR_RULE_ERROR_VALUE, text, "%s is a number from 0 to %" G_GINT64_FORMAT ", not %s",
				    name, max, cond->values[i]);
		cond->numbers[i] = (gint64)n;
		g_free(cond->values[i]);
		cond->values[i] = g_strdup_printf("%" G_GINT64_FORMAT, cond->numbers[i]);
	}
	return TRUE;
}

/* Returns the number of the word @v of a field of words of @kind (its
 * order: a weekday from 0 for mon, an MrRole, an MrPriority, ...), or -1.
 * ASCII case is ignored. */
static int
choice_index(Kind kind, const char *v)
{
	g_autofree char *lower = g_ascii_strdown(v, -1);

	switch (kind) {
	case KIND_ROLE: return mr_role_from_name(v) != MR_ROLE_NONE ? (int)mr_role_from_name(v) : -1;
	case KIND_BOOL: return table_index(yes_no, v);
	case KIND_WEEKDAY: return table_index(weekdays, v);
	case KIND_RECORD: return table_index(record_kinds, v);
	case KIND_PRIORITY: return mr_priority_from_name(lower);
	case KIND_TYPE: return mr_ticket_type_from_name(lower);
	default: g_assert_not_reached();
	}
}

/* Returns the word numbered @n of a field of words of @kind (canonical),
 * or NULL. */
static const char *
choice_name(Kind kind, gint64 n)
{
	if (n < 0 || n > 6)
		return NULL;
	switch (kind) {
	case KIND_ROLE: return mr_role_name((MrRole)n);
	case KIND_BOOL: return n <= 1 ? yes_no[n] : NULL;
	case KIND_WEEKDAY: return weekdays[n];
	case KIND_RECORD: return n <= 2 ? record_kinds[n] : NULL;
	case KIND_PRIORITY: return mr_priority_name((MrPriority)n);
	case KIND_TYPE: return mr_ticket_type_name((MrTicketType)n);
	default: g_assert_not_reached();
	}
}

/* Returns: (transfer full): the words of a field of @kind, for a
 * message. */
static char *
choice_list(Kind kind)
{
	switch (kind) {
	case KIND_ROLE: return role_list();
	case KIND_BOOL: return table_list(yes_no);
	case KIND_WEEKDAY: return table_list(weekdays);
	case KIND_RECORD: return table_list(record_kinds);
	case KIND_PRIORITY: return enum_list(priority_name);
	case KIND_TYPE: return enum_list(ticket_type_name);
	default: g_assert_not_reached();
	}
}

/* Reads each value of a field of words (yes/no, weekdays, roles, record
 * kinds, priorities, ticket types) into @cond->numbers, in canonical
 * (lower) case. */
static gboolean
type_choices(MrRuleCond *cond, const char *text, GError **error)
{
	Kind kind = fields[cond->field].kind;

	for (guint i = 0; i < cond->n_values; i++) {
		const char *v = cond->values[i];
		int n = choice_index(kind, v);

		if (n < 0) {
			g_autofree char *list = choice_list(kind);

			return fail(error, MR_RULE_ERROR_VALUE, text, "%s is one of %s, not %s",
				    mr_rule_field_name(cond->field), list, v);
		}
		cond->numbers[i] = n;
		g_free(cond->values[i]);
		cond->values[i] = g_strdup(choice_name(kind, n));
	}
	return TRUE;
}

/* Makes @cond's values what its field compares: folded texts and a
 * compiled pattern, or numbers. */
static gboolean
type_values(MrRuleCond *cond, const char *text, GError **error)
{
	Kind kind = fields[cond->field].kind;

	if (kind == KIND_TEXT || kind == KIND_LIST) {
		cond->folded = g_new0(char *, cond->n_values + 1);
		for (guint i = 0; i < cond->n_values; i++)
			cond->folded[i] = g_utf8_casefold(cond->values[i], -1);
		if (cond->op == MR_RULE_OP_MATCH || cond->op == MR_RULE_OP_NOMATCH)
			return compile_regex(cond, text, error);
		return TRUE;
	}
	cond->numbers = g_new0(gint64, MAX(cond->n_values, 1));
	if (kind == KIND_NUMBER)
		return type_numbers(cond, text, error);
	return type_choices(cond, text, error);
}

/* Parses @text, a condition of a workflow (@record) or of a rule. */
static MrRuleCond *
cond_parse(const char *text, gboolean record, GError **error)
{
	g_autoptr(MrRuleCond) cond = g_new0(MrRuleCond, 1);
	const char *p = text;

	if (!check_text(text, error))
		return NULL;
	for (p = skip_spaces(p); g_str_has_prefix(p, "not ") || strcmp(p, "not") == 0; p = skip_spaces(p + 3))
		cond->negate = !cond->negate;
	if (*p == '\0') {
		fail(error, MR_RULE_ERROR_SYNTAX, text, "not needs a condition");
		return NULL;
	}
	if (!parse_field(&p, cond, record, text, error))
		return NULL;
	p = skip_spaces(p);
	if (!parse_op(&p, cond, text, error) || !parse_values(p, cond, text, error) ||
	    !type_values(cond, text, error))
		return NULL;
	return g_steal_pointer(&cond);
}

MrRuleCond *
mr_rule_cond_parse(const char *text, GError **error)
{
	return cond_parse(text, FALSE, error);
}

MrRuleCond *
mr_rule_cond_parse_record(const char *text, GError **error)
{
	return cond_parse(text, TRUE, error);
}

char *
mr_rule_cond_text(const MrRuleCond *cond)
{
	GString *s = g_string_new(cond->negate ? "not " : "");

	g_string_append(s, mr_rule_field_name(cond->field));
	if (cond->field == MR_RULE_FIELD_HEADER)
		g_string_append_printf(s, ":%s", cond->header);
	g_string_append_printf(s, " %s", ops[cond->op]);
	for (guint i = 0; i < cond->n_values; i++) {
		g_string_append_c(s, i == 0 ? ' ' : ',');
		append_value(s, cond->values[i], cond->op == MR_RULE_OP_IN);
	}
	return g_string_free(s, FALSE);
}

gboolean
mr_rule_cond_equal(const MrRuleCond *a, const MrRuleCond *b)
{
	if (a->field != b->field || a->op != b->op || a->negate != b->negate ||
	    a->n_values != b->n_values)
		return FALSE;
	if (a->field == MR_RULE_FIELD_HEADER && g_ascii_strcasecmp(a->header, b->header) != 0)
		return FALSE;
	for (guint i = 0; i < a->n_values; i++)
		if (strcmp(a->values[i], b->values[i]) != 0)
			return FALSE;
	return TRUE;
}

gboolean
mr_rule_cond_needs_store(const MrRuleCond *cond)
{
	return cond->field == MR_RULE_FIELD_FOLLOWUP || cond->field == MR_RULE_FIELD_ACCOUNT;
}

/* --- conditions: evaluation --------------------------------------------------- */

/* The outcome of one value against a regular expression. */
typedef enum { RX_NO, RX_YES, RX_GAVE_UP } RxResult;

/* Adds the values of @list (NULL-terminated, nullable) to @out; with
 * @domains, the part after the last '@' of each. */
static void
add_list(GPtrArray *out, const char *const *list, gboolean domains)
{
	for (gsize i = 0; list != NULL && list[i] != NULL; i++) {
		const char *at = domains ? strrchr(list[i], '@') : NULL;

		if (!domains)
			g_ptr_array_add(out, (gpointer)list[i]);
		else if (at != NULL)
			g_ptr_array_add(out, (gpointer)(at + 1));
	}
}

GPtrArray *
mr_rule_field_texts(const MrRuleCond *cond, const MrRuleValues *v)
{
	GPtrArray *out = g_ptr_array_new();
	const char *one = NULL;

	switch (cond->field) {
	case MR_RULE_FIELD_RECIPIENT: one = v->recipient; break;
	case MR_RULE_FIELD_SUBJECT: one = v->subject; break;
	case MR_RULE_FIELD_BODY: one = v->body; break;
	case MR_RULE_FIELD_ACCOUNT: one = v->account; break;
	case MR_RULE_FIELD_STATUS: one = v->status; break;
	case MR_RULE_FIELD_STAGE: one = v->stage; break;
	case MR_RULE_FIELD_OWNER: one = v->owner; break;
	case MR_RULE_FIELD_TAG: add_list(out, v->tags, FALSE); break;
	case MR_RULE_FIELD_FROM: add_list(out, v->from, FALSE); break;
	case MR_RULE_FIELD_FROM_DOMAIN: add_list(out, v->from, TRUE); break;
	case MR_RULE_FIELD_TO: add_list(out, v->to, FALSE); break;
	case MR_RULE_FIELD_CC: add_list(out, v->cc, FALSE); break;
	case MR_RULE_FIELD_ADDRESS:
		add_list(out, v->from, FALSE);
		add_list(out, v->to, FALSE);
		add_list(out, v->cc, FALSE);
		break;
	case MR_RULE_FIELD_HEADER:
		for (gsize i = 0; i < v->n_headers; i++)
			if (v->headers[i].name != NULL && v->headers[i].value != NULL &&
			    g_ascii_strcasecmp(v->headers[i].name, cond->header) == 0)
				g_ptr_array_add(out, (gpointer)v->headers[i].value);
		break;
	default:
		break;
	}
	if (one != NULL)
		g_ptr_array_add(out, (gpointer)one);
	return out;
}

/* Returns how many bytes of @s (@len long) a pattern sees: at most @max,
 * not cutting a UTF-8 character in two. */
static gsize
subject_length(const char *s, gsize len, gsize max)
{
	gsize cut = MIN(len, max);

	while (cut > 0 && cut < len && ((guchar)s[cut] & 0xc0) == 0x80)
		cut--;
	return cut;
}

gsize
mr_rule_regex_view(const char *s, const char **view_out, char **owned_out, gboolean *cut_out)
{
	gsize full = strlen(s);
	gsize len = subject_length(s, full, MR_RULE_REGEX_SUBJECT_MAX);

	*owned_out = NULL;
	if (!g_utf8_validate(s, len, NULL)) {
		*owned_out = g_utf8_make_valid(s, len);
		len = subject_length(*owned_out, strlen(*owned_out), MR_RULE_REGEX_SUBJECT_MAX);
		s = *owned_out;
	}
	*view_out = s;
	*cut_out = len < full;
	return len;
}

/* Matches @s against @cond's pattern, bounded; on giving up, sets
 * *@reason (once) to PCRE2's reason. */
static RxResult
regex_one(const MrRuleCond *cond, const char *s, char **reason)
{
	g_autofree char *valid = NULL;
	g_autoptr(GError) local = NULL;
	GRegexMatchFlags flags = 0;
	gboolean cut;
	gsize len = mr_rule_regex_view(s, &s, &valid, &cut);
	const char *why;

	/* a cut value does not end where it is cut: $ does not match there */
	if (cut)
		flags |= G_REGEX_MATCH_NOTEOL;
	if (g_regex_match_full(cond->regex, s, len, 0, flags, NULL, &local))
		return RX_YES;
	if (local == NULL)
		return RX_NO;
	if (reason != NULL && *reason == NULL) {
		why = g_strrstr(local->message, ": ");
		*reason = g_strdup(why != NULL ? why + 2 : local->message);
	}
	return RX_GAVE_UP;
}

/* Returns TRUE when the folded text @f holds for the positive text
 * operator @op of @cond (=, in, contains, starts, ends). */
static gboolean
text_one(const MrRuleCond *cond, MrRuleOp op, const char *f)
{
	switch (op) {
	case MR_RULE_OP_EQ:
	case MR_RULE_OP_IN:
		for (guint i = 0; i < cond->n_values; i++)
			if (strcmp(f, cond->folded[i]) == 0)
				return TRUE;
		return FALSE;
	case MR_RULE_OP_CONTAINS:
		return strstr(f, cond->folded[0]) != NULL;
	case MR_RULE_OP_STARTS:
		return g_str_has_prefix(f, cond->folded[0]);
	case MR_RULE_OP_ENDS:
		return g_str_has_suffix(f, cond->folded[0]);
	default:
		g_assert_not_reached();
	}
}

/* Returns: (transfer full): @s (valid UTF-8) case-folded, as
 * g_utf8_casefold() folds it.  That folds character by character into a
 * GString (12 ns a character here); case folding has no context, so the
 * runs of ASCII, which fold to ASCII, are folded here by a comparison,
 * and only the runs of other characters by GLib. */
static char *
fold_valid(const char *s)
{
	gsize len = strlen(s);
	const char *end = s + len;
	char *out = g_malloc(len + 1);
	gsize n = 0, size = len + 1;

	while (*s != '\0') {
		const char *run = s;
		g_autofree char *folded = NULL;
		gsize k;

		for (; *s != '\0' && (guchar)*s < 0x80; s++)
			out[n++] = *s >= 'A' && *s <= 'Z' ? *s + ('a' - 'A') : *s;
		if ((guchar)*s < 0x80)
			continue;
		for (run = s; *s != '\0' && (guchar)*s >= 0x80; s++)
			;
		folded = g_utf8_casefold(run, s - run);
		k = strlen(folded);
		/* a folded character may be longer (ß is ss) */
		if (n + k + (gsize)(end - s) + 1 > size) {
			size = MAX(size * 2, n + k + (gsize)(end - s) + 1);
			out = g_realloc(out, size);
		}
		memcpy(out + n, folded, k);
		n += k;
	}
	out[n] = '\0';
	return out;
}

char *
mr_rule_fold(const char *s)
{
	g_autofree char *valid = NULL;

	if (g_utf8_validate(s, -1, NULL))
		return fold_valid(s);
	valid = g_utf8_make_valid(s, -1);
	return fold_valid(valid);
}

const char *
mr_rule_fold_text(const MrRuleCond *cond, const MrRuleValues *v, const char *s, char **owned)
{
	if (cond->field == MR_RULE_FIELD_SUBJECT && v->subject_folded != NULL)
		return v->subject_folded;
	if (cond->field == MR_RULE_FIELD_BODY && v->body_folded != NULL)
		return v->body_folded;
	return *owned = mr_rule_fold(s);
}

/* Appends @s to the explained value @out, separated by ", ", while it is
 * short enough to be shown. */
static void
explain_add(GString *out, const char *s)
{
	if (out == NULL || out->len > MR_RULE_EXPLAIN_MAX * 4)
		return;
	if (out->len > 0)
		g_string_append(out, ", ");
	g_string_append_len(out, s, MIN(strlen(s), MR_RULE_EXPLAIN_MAX * 4));
}

/* Evaluates a text condition, not negated.  The value that held, or all,
 * go to @explain (nullable); a pattern that gave up to @reason. */
static gboolean
eval_text(const MrRuleCond *cond, const MrRuleValues *v, GString *explain, char **reason)
{
	g_autoptr(GPtrArray) texts = mr_rule_field_texts(cond, v);
	gboolean negative = cond->op == MR_RULE_OP_NE || cond->op == MR_RULE_OP_NOMATCH;
	MrRuleOp op = cond->op == MR_RULE_OP_NE ? MR_RULE_OP_EQ : cond->op;
	gboolean gave_up = FALSE;

	for (guint i = 0; i < texts->len; i++) {
		const char *s = texts->pdata[i];
		gboolean held;

		if (op == MR_RULE_OP_EXISTS) {
			held = *s != '\0';
		} else if (op == MR_RULE_OP_MATCH || op == MR_RULE_OP_NOMATCH) {
			RxResult r = regex_one(cond, s, reason);

			gave_up |= r == RX_GAVE_UP;
			held = r == RX_YES;
		} else {
			g_autofree char *owned = NULL;

			held = text_one(cond, op, mr_rule_fold_text(cond, v, s, &owned));
		}
		if (held) {
			if (explain != NULL) {
				g_string_truncate(explain, 0);
				explain_add(explain, s);
			}
			return !negative;
		}
		explain_add(explain, s);
	}
	return negative && !gave_up;
}

/* Returns the stored word a record's field of words has in @v (the
 * record's kind, priority or ticket type; NULL: none), else NULL. */
static const char *
field_word(const MrRuleCond *cond, const MrRuleValues *v)
{
	switch (cond->field) {
	case MR_RULE_FIELD_RECORD: return v->record;
	case MR_RULE_FIELD_PRIORITY: return v->priority;
	case MR_RULE_FIELD_TYPE: return v->type;
	default: return NULL;
	}
}

/* Sets *@n to the number, choice or yes/no @cond's field has in @v.
 * Returns FALSE when the field has none (a record without a priority, a
 * type or a value, or with a word this mailroom does not know). */
static gboolean
field_number(const MrRuleCond *cond, const MrRuleValues *v, gint64 *n)
{
	const char *word = field_word(cond, v);

	switch (cond->field) {
	case MR_RULE_FIELD_ATTACHMENTS: *n = v->attachments; return TRUE;
	case MR_RULE_FIELD_HOUR: *n = v->hour; return TRUE;
	case MR_RULE_FIELD_WEEKDAY: *n = v->weekday; return TRUE;
	case MR_RULE_FIELD_ROLE: *n = v->role; return TRUE;
	case MR_RULE_FIELD_AUTO: *n = v->is_auto ? 1 : 0; return TRUE;
	case MR_RULE_FIELD_FOLLOWUP: *n = v->followup ? 1 : 0; return TRUE;
	case MR_RULE_FIELD_VALUE: *n = v->value; return v->has_value;
	case MR_RULE_FIELD_RECORD:
	case MR_RULE_FIELD_PRIORITY:
	case MR_RULE_FIELD_TYPE:
		*n = word != NULL ? choice_index(fields[cond->field].kind, word) : -1;
		return *n >= 0;
	default: g_assert_not_reached();
	}
}

/* Evaluates a condition on a number, a choice or yes/no, not negated.  A
 * field that has none holds for != alone (as an empty text); `exists`
 * holds when the record has the field at all. */
static gboolean
eval_number(const MrRuleCond *cond, const MrRuleValues *v, GString *explain)
{
	gint64 n = 0;
	gboolean has = field_number(cond, v, &n);
	Kind kind = fields[cond->field].kind;
	const char *word = field_word(cond, v);
	gboolean any = FALSE;

	if (explain != NULL) {
		if (kind == KIND_NUMBER && has)
			g_string_append_printf(explain, "%" G_GINT64_FORMAT, n);
		else if (kind == KIND_WEEKDAY || kind == KIND_BOOL)
			g_string_append(explain, choice_name(kind, CLAMP(n, 0, kind == KIND_BOOL ? 1 : 6)));
		else if (kind == KIND_ROLE)
			g_string_append(explain, mr_role_name((MrRole)n));
		else if (has)
			g_string_append(explain, choice_name(kind, n));
		else if (word != NULL)
			g_string_append(explain, word);
	}
	if (cond->op == MR_RULE_OP_EXISTS)
		return cond->field == MR_RULE_FIELD_VALUE ? v->has_value : word != NULL;
	if (!has)
		return cond->op == MR_RULE_OP_NE;
	switch (cond->op) {
	case MR_RULE_OP_EQ: return n == cond->numbers[0];
	case MR_RULE_OP_NE: return n != cond->numbers[0];
	case MR_RULE_OP_LT: return n < cond->numbers[0];
	case MR_RULE_OP_GT: return n > cond->numbers[0];
	case MR_RULE_OP_IN:
		for (guint i = 0; i < cond->n_values; i++)
			any |= n == cond->numbers[i];
		return any;
	default: g_assert_not_reached();
	}
}

/* Returns: (transfer full): @explain as one short printable line. */
static char *
explain_line(GString *explain, const char *reason)
{
	g_autofree char *line = g_strndup(explain->str, strcspn(explain->str, "\r\n"));
	g_autofree char *valid = g_utf8_make_valid(line, -1);
	gboolean cut = strlen(line) < explain->len;
	g_autofree char *shown = NULL;

	if (g_utf8_strlen(valid, -1) > MR_RULE_EXPLAIN_MAX) {
		*g_utf8_offset_to_pointer(valid, MR_RULE_EXPLAIN_MAX) = '\0';
		cut = TRUE;
	}
	shown = mr_text_printable(valid, -1, FALSE);
	return g_strdup_printf("%s%s%s%s%s", explain->len == 0 ? "(none)" : shown, cut ? "..." : "",
			       reason != NULL ? " (regex gave up: " : "", reason != NULL ? reason : "",
			       reason != NULL ? ")" : "");
}

gboolean
mr_rule_cond_eval(const MrRuleCond *cond, const MrRuleValues *values, char **value_out)
{
	g_autoptr(GString) explain = value_out != NULL ? g_string_new(NULL) : NULL;
	g_autofree char *reason = NULL;
	Kind kind;
	gboolean held;

	g_return_val_if_fail(cond != NULL && values != NULL, FALSE);
	kind = fields[cond->field].kind;
	if (kind == KIND_TEXT || kind == KIND_LIST)
		held = eval_text(cond, values, explain, &reason);
	else
		held = eval_number(cond, values, explain);
	if (value_out != NULL)
		*value_out = explain_line(explain, reason);
	return cond->negate ? !held : held;
}

static gboolean check_name(const char *what, const char *name, const char *text, MrRuleError code,
			   GError **error);

/* --- actions -------------------------------------------------------------------- */

void
mr_rule_action_free(MrRuleAction *action)
{
	if (action == NULL)
		return;
	g_free(action->text);
	g_free(action);
}

/* Checks a tag's or a source's word: 1 to WORD_MAX letters, digits, '.',
 * '_', '-' (ASCII). */
static gboolean
check_word(const char *what, const char *word, const char *text, GError **error)
{
	gsize len = strlen(word);

	for (gsize i = 0; i < len; i++)
		if (!header_byte(word[i]))
			len = 0;
	if (len == 0 || len > WORD_MAX)
		return fail(error, MR_RULE_ERROR_ACTION, text,
			    "%s is a word of 1 to %d letters, digits, '.', '_' or '-', not %s", what,
			    WORD_MAX, word);
	return TRUE;
}

gboolean
mr_rule_check_word(const char *what, const char *word, const char *text, GError **error)
{
	return check_word(what, word, text, error);
}

gboolean
mr_rule_is_address(const char *v)
{
	const char *at = strchr(v, '@');

	return at != NULL && at != v && at[1] != '\0' && strchr(at + 1, '@') == NULL &&
	       strpbrk(v, " \"") == NULL;
}

/* Checks and normalises the owner @v: team:NAME or an address. */
static gboolean
action_owner(MrRuleAction *a, const char *v, const char *text, GError **error)
{
	if (g_str_has_prefix(v, TEAM_PREFIX)) {
		if (!check_name("team", v + strlen(TEAM_PREFIX), text, MR_RULE_ERROR_ACTION, error))
			return FALSE;
		a->team = TRUE;
		a->text = g_strdup(v + strlen(TEAM_PREFIX));
		return TRUE;
	}
	if (!mr_rule_is_address(v))
		return fail(error, MR_RULE_ERROR_ACTION, text,
			    "owner is an address (user@domain) or team:NAME, not %s", v);
	a->text = mr_address_normalise(v);
	return TRUE;
}

/* Reads the value of @a (priority, type, status, owner, tag, source). */
static gboolean
action_value(MrRuleAction *a, const char *v, const char *text, GError **error)
{
	g_autofree char *lower = g_ascii_strdown(v, -1);
	g_autofree char *list = NULL;

	switch (a->kind) {
	case MR_RULE_ACT_PRIORITY:
		a->value = mr_priority_from_name(lower);
		list = a->value < 0 ? enum_list(priority_name) : NULL;
		break;
	case MR_RULE_ACT_TYPE:
		a->value = mr_ticket_type_from_name(lower);
		list = a->value < 0 ? enum_list(ticket_type_name) : NULL;
		break;
	case MR_RULE_ACT_STATUS:
		a->value = mr_status_from_name(MR_RECORD_TICKET, lower);
		list = a->value < 0 ? mr_status_list(MR_RECORD_TICKET) : NULL;
		break;
	case MR_RULE_ACT_OWNER:
		return action_owner(a, v, text, error);
	default:
		if (!check_word(actions[a->kind].name, v, text, error))
			return FALSE;
		a->text = g_strdup(v);
		return TRUE;
	}
	if (list != NULL)
		return fail(error, MR_RULE_ERROR_ACTION, text, "%s is one of %s, not %s",
			    actions[a->kind].name, list, v);
	return TRUE;
}

/* Returns: (transfer full): the actions, for a message. */
static char *
action_list(void)
{
	GString *s = g_string_new(NULL);

	for (int k = 0; k < MR_RULE_ACT_N; k++)
		g_string_append_printf(s, "%s%s", k > 0 ? ", " : "", actions[k].usage);
	return g_string_free(s, FALSE);
}

/* Reads the action's keyword at *@p into @a. */
static gboolean
action_keyword(const char **p, MrRuleAction *a, const char *text, GError **error)
{
	const char *q = *p;
	g_autofree char *word = NULL;
	g_autofree char *list = NULL;

	while (g_ascii_islower(*q))
		q++;
	if (q == *p || (*q != ' ' && *q != '=' && *q != '\0'))
		q += strcspn(q, " =");
	word = g_strndup(*p, q - *p);
	for (int k = 0; k < MR_RULE_ACT_N; k++)
		if (strcmp(word, actions[k].name) == 0) {
			a->kind = (MrRuleActionKind)k;
			*p = q;
			return TRUE;
		}
	list = action_list();
	return fail(error, MR_RULE_ERROR_ACTION, text, "unknown action %s (actions: %s)", word, list);
}

MrRuleAction *
mr_rule_action_parse(const char *text, GError **error)
{
	g_autoptr(MrRuleAction) a = g_new0(MrRuleAction, 1);
	g_autofree char *v = NULL;
	GError *local = NULL;
	const char *p = text;
	const char *name;

	if (!check_text(text, error))
		return NULL;
	p = skip_spaces(p);
	if (!action_keyword(&p, a, text, error))
		return NULL;
	name = actions[a->kind].name;
	p = skip_spaces(p);
	if (!actions[a->kind].takes_value) {
		if (*p != '\0') {
			fail(error, MR_RULE_ERROR_ACTION, text, "%s takes no value", name);
			return NULL;
		}
		return g_steal_pointer(&a);
	}
	if (*p != '=') {
		fail(error, MR_RULE_ERROR_ACTION, text, "%s needs a value: %s", name, actions[a->kind].usage);
		return NULL;
	}
	p = skip_spaces(p + 1);
	v = read_value(&p, FALSE, text, &local);
	if (local != NULL) {
		g_propagate_error(error, local);
		return NULL;
	}
	if (v == NULL || *skip_spaces(p) != '\0') {
		fail(error, MR_RULE_ERROR_ACTION, text, v == NULL ? "%s needs a value: %s"
								 : "%s takes one value: %s",
		     name, actions[a->kind].usage);
		return NULL;
	}
	if (!action_value(a, v, text, error))
		return NULL;
	return g_steal_pointer(&a);
}

char *
mr_rule_action_text(const MrRuleAction *action)
{
	GString *s = g_string_new(actions[action->kind].name);

	if (!actions[action->kind].takes_value)
		return g_string_free(s, FALSE);
	g_string_append(s, " = ");
	switch (action->kind) {
	case MR_RULE_ACT_PRIORITY:
		g_string_append(s, mr_priority_name((MrPriority)action->value));
		break;
	case MR_RULE_ACT_TYPE:
		g_string_append(s, mr_ticket_type_name((MrTicketType)action->value));
		break;
	case MR_RULE_ACT_STATUS:
		g_string_append(s, mr_status_name(MR_RECORD_TICKET, action->value));
		break;
	default:
		if (action->team)
			g_string_append(s, TEAM_PREFIX);
		append_value(s, action->text, FALSE);
		break;
	}
	return g_string_free(s, FALSE);
}

gboolean
mr_rule_action_equal(const MrRuleAction *a, const MrRuleAction *b)
{
	return a->kind == b->kind && a->value == b->value && a->team == b->team &&
	       g_strcmp0(a->text, b->text) == 0;
}

/* --- rules -------------------------------------------------------------------- */

/* Checks @name as mr_rule_check_name() does, failing with @code and
 * quoting @text. */
static gboolean
check_name(const char *what, const char *name, const char *text, MrRuleError code, GError **error)
{
	gsize len = name != NULL ? strlen(name) : 0;

	for (gsize i = 0; i < len; i++)
		if (!header_byte(name[i]))
			return fail(error, code, text,
				    "a %s's name has only letters, digits, '.', '_' and '-'", what);
	if (len == 0 || len > MR_RULE_NAME_MAX)
		return fail(error, code, text, "a %s's name has 1 to %d characters", what,
			    MR_RULE_NAME_MAX);
	if (name[0] == '-')
		return fail(error, code, text, "a %s's name does not start with '-'", what);
	return TRUE;
}

gboolean
mr_rule_check_name(const char *what, const char *name, GError **error)
{
	return check_name(what, name, name, MR_RULE_ERROR_NAME, error);
}

gboolean
mr_rule_check_name_in(const char *what, const char *name, const char *text, GError **error)
{
	return check_name(what, name, text, MR_RULE_ERROR_NAME, error);
}

void
mr_rule_free(MrRule *rule)
{
	if (rule == NULL)
		return;
	g_free(rule->name);
	g_clear_pointer(&rule->conds, g_ptr_array_unref);
	g_clear_pointer(&rule->actions, g_ptr_array_unref);
	g_free(rule);
}

/* The group of actions of which a rule has one at most, or -1 (tags: any
 * number, each once). */
static int
action_group(MrRuleActionKind kind)
{
	switch (kind) {
	case MR_RULE_ACT_TICKET:
	case MR_RULE_ACT_LEAD:
	case MR_RULE_ACT_LOG:
	case MR_RULE_ACT_IGNORE:
		return MR_RULE_ACT_TICKET;
	case MR_RULE_ACT_TAG:
	case MR_RULE_ACT_STOP:
		return -1;
	default:
		return kind;
	}
}

/* Refuses @a when @rule has an action that excludes it. */
static gboolean
check_conflict(const MrRule *rule, const MrRuleAction *a, const char *text, GError **error)
{
	for (guint i = 0; i < rule->actions->len; i++) {
		const MrRuleAction *b = rule->actions->pdata[i];
		g_autofree char *other = mr_rule_action_text(b);

		if (a->kind == MR_RULE_ACT_TAG && mr_rule_action_equal(a, b))
			return fail(error, MR_RULE_ERROR_CONFLICT, text, "the same tag twice");
		if (action_group(a->kind) >= 0 && action_group(a->kind) == action_group(b->kind))
			return fail(error, MR_RULE_ERROR_CONFLICT, text,
				    "a rule has one of these actions, and already has '%s'", other);
	}
	return TRUE;
}

/* Parses the --then texts @texts into @rule. */
static gboolean
rule_actions(MrRule *rule, const char *const *texts, GError **error)
{
	for (gsize i = 0; texts[i] != NULL; i++) {
		g_autoptr(MrRuleAction) a = mr_rule_action_parse(texts[i], error);

		if (a == NULL || !check_conflict(rule, a, texts[i], error))
			return FALSE;
		if (a->kind == MR_RULE_ACT_STOP)
			rule->stop = TRUE;
		else
			g_ptr_array_add(rule->actions, g_steal_pointer(&a));
	}
	return TRUE;
}

MrRule *
mr_rule_new(const char *name, const char *const *conds, const char *const *actions_in, gboolean any,
	    gboolean stop, GError **error)
{
	g_autoptr(MrRule) rule = g_new0(MrRule, 1);

	if (!mr_rule_check_name("rule", name, error))
		return NULL;
	if (conds == NULL || conds[0] == NULL || actions_in == NULL || actions_in[0] == NULL) {
		g_set_error(error, MR_RULE_ERROR, MR_RULE_ERROR_EMPTY,
			    "rule %s: a rule needs at least one --if condition and one --then action", name);
		return NULL;
	}
	rule->name = g_strdup(name);
	rule->enabled = TRUE;
	rule->any = any;
	rule->stop = stop;
	rule->conds = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_cond_free);
	rule->actions = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_action_free);
	for (gsize i = 0; conds[i] != NULL; i++) {
		MrRuleCond *c = mr_rule_cond_parse(conds[i], error);

		if (c == NULL)
			return NULL;
		g_ptr_array_add(rule->conds, c);
	}
	if (!rule_actions(rule, actions_in, error))
		return NULL;
	return g_steal_pointer(&rule);
}

gboolean
mr_rule_matches(const MrRule *rule, const MrRuleValues *values)
{
	g_return_val_if_fail(rule != NULL && values != NULL, FALSE);
	for (guint i = 0; i < rule->conds->len; i++) {
		gboolean held = mr_rule_cond_eval(rule->conds->pdata[i], values, NULL);

		if (held == rule->any)
			return held;
	}
	return !rule->any;
}
