/* mr-workflow.c - the workflow grammar: a trigger (--on EVENT, or --after
 * DURATION --since EVENT with --unless, --business and --repeat), the
 * conditions on the record (the rules' grammar, mr-rule.c) and the
 * actions; read from mailroomctl's options or from their canonical texts,
 * and printed back canonically.  Model layer, pure (mr-workflow.h).
 * Words and quoted strings are read and written as a rule's values are. */
#include <string.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-status.h"
#include "mailroom/mr-workflow.h"

#include "mr-rule-private.h"

G_DEFINE_QUARK(mr-workflow-error-quark, mr_workflow_error)

/* The events a workflow waits for, in the order they are listed. */
static const MrEventType workflow_events[] = {
	MR_EVENT_TICKET_CREATED,   MR_EVENT_TICKET_REOPENED,     MR_EVENT_TICKET_STATUS,
	MR_EVENT_TICKET_ESCALATED, MR_EVENT_LEAD_CREATED,        MR_EVENT_LEAD_CONVERTED,
	MR_EVENT_LEAD_ARCHIVED,    MR_EVENT_OPPORTUNITY_CREATED, MR_EVENT_OPPORTUNITY_WON,
	MR_EVENT_OPPORTUNITY_LOST, MR_EVENT_MESSAGE_LINKED,      MR_EVENT_REPLY_RECEIVED,
	MR_EVENT_RESPONSE_SENT,    MR_EVENT_MAIL_BOUNCED,        MR_EVENT_MAIL_HELD,
	MR_EVENT_MAIL_FAILED,      MR_EVENT_TEAM_UNASSIGNED,     MR_EVENT_TASK_CREATED,
	MR_EVENT_TASK_DONE,
};

#define ACT_N (MR_WORKFLOW_ACT_TASK + 1)

static const struct {
	const char *name;
	const char *usage; /* for a message */
} actions[ACT_N] = {
	[MR_WORKFLOW_ACT_SEND] = { "send", "send TEMPLATE" },
	[MR_WORKFLOW_ACT_REMIND] = { "remind", "remind [EMAIL|team:NAME]" },
	[MR_WORKFLOW_ACT_ASSIGN] = { "assign", "assign EMAIL|team:NAME" },
	[MR_WORKFLOW_ACT_SET] = { "set", "set FIELD = VALUE" },
	[MR_WORKFLOW_ACT_ESCALATE] = { "escalate", "escalate [EMAIL|team:NAME]" },
	[MR_WORKFLOW_ACT_TASK] = { "task", "task TEXT [due DURATION]" },
};

#define SET_N (MR_WORKFLOW_SET_TAG + 1)

static const char *const set_fields[SET_N] = {
	[MR_WORKFLOW_SET_STATUS] = "status", [MR_WORKFLOW_SET_PRIORITY] = "priority",
	[MR_WORKFLOW_SET_TYPE] = "type",     [MR_WORKFLOW_SET_STAGE] = "stage",
	[MR_WORKFLOW_SET_VALUE] = "value",   [MR_WORKFLOW_SET_TAG] = "tag",
};

#define TEAM_PREFIX "team:"
/* The most digits `set value` takes: below 2^53, exact as a double too. */
#define VALUE_DIGITS_MAX 15

/* --- errors ----------------------------------------------------------------- */

/* Sets @error (MR_WORKFLOW_ERROR, @code) to "PREFIX'TEXT': MESSAGE" and
 * returns FALSE. */
#define FAIL(error, code, prefix, text, ...) \
	mr_rule_error_quoting((error), MR_WORKFLOW_ERROR, (code), (prefix), (text), __VA_ARGS__)

/* Moves @local, an error of the rules' grammar ("'TEXT': ..."), into
 * @error as @code of MR_WORKFLOW_ERROR, @prefix before its message.
 * Returns FALSE. */
static gboolean
rewrap(GError **error, MrWorkflowError code, const char *prefix, GError *local)
{
	g_set_error(error, MR_WORKFLOW_ERROR, code, "%s%s", prefix, local->message);
	g_error_free(local);
	return FALSE;
}

/* Returns what mr_duration_parse() says is wrong, without its quoting of
 * the text (duration "TEXT": WHAT): the caller quotes it its own way. */
static const char *
duration_reason(const GError *local)
{
	const char *end = g_strrstr(local->message, "\": ");

	return end != NULL ? end + 3 : local->message;
}

/* Returns: (transfer full): the events a workflow waits for. */
static char *
event_list(void)
{
	GString *s = g_string_new(NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(workflow_events); i++)
		g_string_append_printf(s, "%s%s", i > 0 ? ", " : "",
				       mr_event_type_name(workflow_events[i]));
	return g_string_free(s, FALSE);
}

/* Returns the number of texts in @v (nullable). */
static guint
count(const char *const *v)
{
	return v != NULL ? g_strv_length((char **)v) : 0;
}

/* --- actions -------------------------------------------------------------------- */

void
mr_workflow_action_free(MrWorkflowAction *action)
{
	if (action == NULL)
		return;
	g_free(action->text);
	g_free(action->value);
	g_free(action);
}

static const char *
skip_spaces(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* Reads a word or a quoted string at *@p into *@out (NULL at none).
 * Returns FALSE with @error at an unterminated quote. */
static gboolean
read_value(const char **p, char **out, const char *text, GError **error)
{
	GError *local = NULL;

	*out = mr_rule_read_value(p, text, &local);
	if (local != NULL)
		return rewrap(error, MR_WORKFLOW_ERROR_ACTION, "", local);
	return TRUE;
}

/* Reads the action's keyword at *@p into @a. */
static gboolean
action_keyword(const char **p, MrWorkflowAction *a, const char *text, GError **error)
{
	const char *q = *p;
	g_autofree char *word = NULL;
	g_autoptr(GString) list = NULL;

	while (g_ascii_islower(*q))
		q++;
	if (q == *p || (*q != ' ' && *q != '\0'))
		q += strcspn(q, " ");
	word = g_strndup(*p, q - *p);
	for (int k = 0; k < ACT_N; k++)
		if (strcmp(word, actions[k].name) == 0) {
			a->kind = (MrWorkflowActionKind)k;
			*p = q;
			return TRUE;
		}
	list = g_string_new(NULL);
	for (int k = 0; k < ACT_N; k++)
		g_string_append_printf(list, "%s%s", k > 0 ? ", " : "", actions[k].name);
	return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text, "unknown action %s (actions: %s)", word,
		    list->str);
}

/* send TEMPLATE */
static gboolean
action_send(const char **p, MrWorkflowAction *a, const char *text, GError **error)
{
	GError *local = NULL;

	if (!read_value(p, &a->text, text, error))
		return FALSE;
	if (a->text == NULL)
		return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text, "send needs a template: %s",
			    actions[a->kind].usage);
	if (!mr_rule_check_name_in("template", a->text, text, &local))
		return rewrap(error, MR_WORKFLOW_ERROR_NAME, "", local);
	return TRUE;
}

/* [EMAIL | team:NAME] of remind, assign (@needed) and escalate. */
static gboolean
action_target(const char **p, MrWorkflowAction *a, gboolean needed, const char *text,
	      GError **error)
{
	const char *name = actions[a->kind].name;
	g_autofree char *v = NULL;
	GError *local = NULL;

	if (!read_value(p, &v, text, error))
		return FALSE;
	if (v == NULL) {
		if (needed)
			return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text,
				    "%s needs an address or a team: %s", name, actions[a->kind].usage);
		return TRUE;
	}
	if (g_str_has_prefix(v, TEAM_PREFIX)) {
		if (!mr_rule_check_name_in("team", v + strlen(TEAM_PREFIX), text, &local))
			return rewrap(error, MR_WORKFLOW_ERROR_ACTION, "", local);
		a->team = TRUE;
		a->text = g_strdup(v + strlen(TEAM_PREFIX));
		return TRUE;
	}
	if (!mr_rule_is_address(v))
		return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text,
			    "%s takes an address (user@domain) or team:NAME, not %s", name, v);
	a->text = mr_address_normalise(v);
	return TRUE;
}

/* Checks @v as the value of `set value`: a whole number >= 0, written
 * without sign or leading zeros, of at most VALUE_DIGITS_MAX digits. */
static gboolean
whole_number(const char *v)
{
	gsize n = strspn(v, "0123456789");

	return n > 0 && v[n] == '\0' && n <= VALUE_DIGITS_MAX && !(v[0] == '0' && n > 1);
}

/* Checks the value @v of `set FIELD = VALUE` and keeps it in @a. */
static gboolean
set_value(MrWorkflowAction *a, const char *v, const char *text, GError **error)
{
	const char *field = set_fields[a->field];
	g_autofree char *lower = g_ascii_strdown(v, -1);
	g_autofree char *list = NULL;
	GError *local = NULL;
	int n;

	switch (a->field) {
	case MR_WORKFLOW_SET_STATUS:
	case MR_WORKFLOW_SET_TAG:
		if (!mr_rule_check_word(field, v, text, &local))
			return rewrap(error, MR_WORKFLOW_ERROR_ACTION, "", local);
		break;
	case MR_WORKFLOW_SET_PRIORITY:
	case MR_WORKFLOW_SET_TYPE:
		if (a->field == MR_WORKFLOW_SET_PRIORITY)
			n = mr_priority_from_name(lower);
		else
			n = mr_ticket_type_from_name(lower);
		if (n < 0) {
			list = mr_rule_enum_list(a->field == MR_WORKFLOW_SET_TYPE);
			return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text, "%s is one of %s, not %s",
				    field, list, v);
		}
		a->value = g_strdup(a->field == MR_WORKFLOW_SET_PRIORITY
					    ? mr_priority_name((MrPriority)n)
					    : mr_ticket_type_name((MrTicketType)n));
		return TRUE;
	case MR_WORKFLOW_SET_STAGE:
		if (*v == '\0')
			return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text, "stage is not empty");
		break;
	case MR_WORKFLOW_SET_VALUE:
		if (!whole_number(v))
			return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text,
				    "value is a whole number of 1 to %d digits, no sign or leading zero, not %s",
				    VALUE_DIGITS_MAX, v);
		break;
	}
	a->value = g_strdup(v);
	return TRUE;
}

/* set FIELD = VALUE */
static gboolean
action_set(const char **p, MrWorkflowAction *a, const char *text, GError **error)
{
	const char *q = *p;
	g_autofree char *field = NULL;
	g_autofree char *v = NULL;
	int f = -1;

	while (g_ascii_islower(*q))
		q++;
	if (*q != ' ' && *q != '=' && *q != '\0')
		q += strcspn(q, " =");
	field = g_strndup(*p, q - *p);
	for (int i = 0; i < SET_N && *field != '\0'; i++)
		if (strcmp(field, set_fields[i]) == 0)
			f = i;
	if (f < 0) {
		g_autofree char *list = g_strjoinv(", ", (char **)set_fields);

		if (*field == '\0')
			return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text,
				    "set needs FIELD = VALUE (fields: %s)", list);
		return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text,
			    "set takes no field %s (fields: %s)", field, list);
	}
	a->field = (MrWorkflowSetField)f;
	q = skip_spaces(q);
	if (*q != '=')
		return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text, "set needs FIELD = VALUE: set %s = ...",
			    field);
	q = skip_spaces(q + 1);
	if (!read_value(&q, &v, text, error))
		return FALSE;
	if (v == NULL)
		return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text, "set %s = needs a value", field);
	*p = q;
	return set_value(a, v, text, error);
}

/* task TEXT [due DURATION] */
static gboolean
action_task(const char **p, MrWorkflowAction *a, const char *text, GError **error)
{
	g_autofree char *due = NULL;
	g_autoptr(GError) local = NULL;
	const char *q;

	if (!read_value(p, &a->text, text, error))
		return FALSE;
	if (a->text == NULL || *a->text == '\0')
		return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text, "task needs a title: %s",
			    actions[a->kind].usage);
	q = skip_spaces(*p);
	if (!g_str_has_prefix(q, "due") || (q[3] != ' ' && q[3] != '\0'))
		return TRUE; /* the caller refuses what follows, if anything */
	q = skip_spaces(q + 3);
	if (!read_value(&q, &due, text, error))
		return FALSE;
	if (due == NULL)
		return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text,
			    "due needs a duration (90m, 4h, 3d): %s", actions[a->kind].usage);
	if (!mr_duration_parse(due, &a->due, &local))
		return FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text, "due %s: %s", due,
			    duration_reason(local));
	a->has_due = TRUE;
	*p = q;
	return TRUE;
}

MrWorkflowAction *
mr_workflow_action_parse(const char *text, GError **error)
{
	g_autoptr(MrWorkflowAction) a = g_new0(MrWorkflowAction, 1);
	GError *local = NULL;
	const char *p;
	gboolean ok = FALSE;

	if (!mr_rule_check_text(text, &local)) {
		rewrap(error, MR_WORKFLOW_ERROR_ACTION, "", local);
		return NULL;
	}
	p = skip_spaces(text);
	if (!action_keyword(&p, a, text, error))
		return NULL;
	p = skip_spaces(p);
	switch (a->kind) {
	case MR_WORKFLOW_ACT_SEND: ok = action_send(&p, a, text, error); break;
	case MR_WORKFLOW_ACT_REMIND:
	case MR_WORKFLOW_ACT_ESCALATE: ok = action_target(&p, a, FALSE, text, error); break;
	case MR_WORKFLOW_ACT_ASSIGN: ok = action_target(&p, a, TRUE, text, error); break;
	case MR_WORKFLOW_ACT_SET: ok = action_set(&p, a, text, error); break;
	case MR_WORKFLOW_ACT_TASK: ok = action_task(&p, a, text, error); break;
	}
	if (!ok)
		return NULL;
	p = skip_spaces(p);
	if (*p != '\0') {
		FAIL(error, MR_WORKFLOW_ERROR_ACTION, "", text, "unexpected text: %s (%s)", p,
		     actions[a->kind].usage);
		return NULL;
	}
	return g_steal_pointer(&a);
}

char *
mr_workflow_action_text(const MrWorkflowAction *action)
{
	GString *s;

	g_return_val_if_fail(action != NULL && (guint)action->kind < ACT_N, NULL);
	s = g_string_new(actions[action->kind].name);
	switch (action->kind) {
	case MR_WORKFLOW_ACT_SET:
		g_string_append_printf(s, " %s = ", set_fields[action->field]);
		mr_rule_append_value(s, action->value);
		break;
	case MR_WORKFLOW_ACT_TASK:
		g_string_append_c(s, ' ');
		mr_rule_append_value(s, action->text);
		if (action->has_due) {
			g_autofree char *due = mr_duration_format(&action->due);

			g_string_append_printf(s, " due %s", due);
		}
		break;
	default:
		if (action->text == NULL)
			break;
		g_string_append_printf(s, " %s", action->team ? TEAM_PREFIX : "");
		mr_rule_append_value(s, action->text);
		break;
	}
	return g_string_free(s, FALSE);
}

/* --- the trigger -------------------------------------------------------------- */

gboolean
mr_workflow_event_ok(MrEventType type)
{
	for (gsize i = 0; i < G_N_ELEMENTS(workflow_events); i++)
		if (workflow_events[i] == type)
			return TRUE;
	return FALSE;
}

/* Reads @text, the event of @option ("--on "), into *@out. */
static gboolean
event_parse(const char *option, const char *text, MrEventType *out, GError **error)
{
	MrEventType type = mr_event_type_from_name(text);
	g_autofree char *list = NULL;

	if (type != MR_EVENT_OTHER && mr_workflow_event_ok(type)) {
		*out = type;
		return TRUE;
	}
	list = event_list();
	if (type == MR_EVENT_OTHER)
		return FAIL(error, MR_WORKFLOW_ERROR_TRIGGER, option, text, "unknown event (events: %s)",
			    list);
	return FAIL(error, MR_WORKFLOW_ERROR_TRIGGER, option, text,
		    "not an event of a record: no workflow waits for it (events: %s)", list);
}

/* Reads the --unless events of @spec into @wf (a timer). */
static gboolean
parse_unless(MrWorkflow *wf, const MrWorkflowSpec *spec, GError **error)
{
	guint n = count(spec->unless);

	if (n > MR_WORKFLOW_PARTS_MAX) {
		g_set_error(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_TRIGGER,
			    "--unless: at most %d (%u given)", MR_WORKFLOW_PARTS_MAX, n);
		return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		MrEventType type;

		if (!event_parse("--unless ", spec->unless[i], &type, error))
			return FALSE;
		if (type == wf->event) {
			g_set_error(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_TRIGGER,
				    "--unless %s: the --since event", mr_event_type_name(type));
			return FALSE;
		}
		for (guint j = 0; j < wf->unless->len; j++)
			if (g_array_index(wf->unless, MrEventType, j) == type) {
				g_set_error(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_TRIGGER,
					    "--unless %s: given twice", mr_event_type_name(type));
				return FALSE;
			}
		g_array_append_val(wf->unless, type);
	}
	return TRUE;
}

/* Reads the trigger of @spec into @wf. */
static gboolean
parse_trigger(MrWorkflow *wf, const MrWorkflowSpec *spec, GError **error)
{
	gboolean repeat_given = spec->has_repeat || spec->repeat != 0;
	const char *extra = NULL;
	g_autoptr(GError) local = NULL;

	if (spec->on != NULL && spec->after != NULL) {
		g_set_error_literal(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_TRIGGER,
				    "--on and --after exclude each other");
		return FALSE;
	}
	if (spec->on == NULL && spec->after == NULL) {
		g_set_error_literal(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_TRIGGER,
				    "a workflow needs --on EVENT or --after DURATION --since EVENT");
		return FALSE;
	}
	if (spec->on != NULL) {
		if (spec->since != NULL)
			extra = "--since";
		else if (count(spec->unless) > 0)
			extra = "--unless";
		else if (spec->business)
			extra = "--business";
		else if (repeat_given)
			extra = "--repeat";
		if (extra != NULL) {
			g_set_error(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_TRIGGER,
				    "%s needs --after", extra);
			return FALSE;
		}
		wf->kind = MR_WORKFLOW_ON;
		return event_parse("--on ", spec->on, &wf->event, error);
	}
	wf->kind = MR_WORKFLOW_TIMER;
	if (!mr_duration_parse(spec->after, &wf->after, &local))
		return FAIL(error, MR_WORKFLOW_ERROR_DURATION, "--after ", spec->after, "%s",
			    duration_reason(local));
	if (spec->since == NULL) {
		g_set_error_literal(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_TRIGGER,
				    "--after needs --since EVENT");
		return FALSE;
	}
	if (!event_parse("--since ", spec->since, &wf->event, error) || !parse_unless(wf, spec, error))
		return FALSE;
	if (repeat_given && (spec->repeat < 1 || spec->repeat > MR_WORKFLOW_REPEAT_MAX)) {
		g_set_error(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_TRIGGER,
			    "--repeat %d: from 1 to %d", spec->repeat, MR_WORKFLOW_REPEAT_MAX);
		return FALSE;
	}
	wf->repeat = repeat_given ? spec->repeat : 1;
	wf->business = spec->business;
	return TRUE;
}

char *
mr_workflow_trigger_text(const MrWorkflow *wf)
{
	GString *s = g_string_new(NULL);
	g_autofree char *after = NULL;

	g_return_val_if_fail(wf != NULL, NULL);
	if (wf->kind == MR_WORKFLOW_ON) {
		g_string_append_printf(s, "--on %s", mr_event_type_name(wf->event));
		return g_string_free(s, FALSE);
	}
	after = mr_duration_format(&wf->after);
	g_string_append_printf(s, "--after %s%s --since %s", after, wf->business ? " --business" : "",
			       mr_event_type_name(wf->event));
	for (guint i = 0; i < wf->unless->len; i++)
		g_string_append_printf(s, " --unless %s",
				       mr_event_type_name(g_array_index(wf->unless, MrEventType, i)));
	if (wf->repeat > 1)
		g_string_append_printf(s, " --repeat %d", wf->repeat);
	return g_string_free(s, FALSE);
}

/* --- workflows ---------------------------------------------------------------- */

void
mr_workflow_free(MrWorkflow *wf)
{
	if (wf == NULL)
		return;
	g_free(wf->name);
	g_clear_pointer(&wf->unless, g_array_unref);
	g_clear_pointer(&wf->conds, g_ptr_array_unref);
	g_clear_pointer(&wf->actions, g_ptr_array_unref);
	g_free(wf);
}

/* Reads the --if texts @texts into @wf. */
static gboolean
parse_conds(MrWorkflow *wf, const char *const *texts, GError **error)
{
	guint n = count(texts);

	if (n > MR_WORKFLOW_PARTS_MAX) {
		g_set_error(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_CONDITION,
			    "--if: at most %d (%u given)", MR_WORKFLOW_PARTS_MAX, n);
		return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		GError *local = NULL;
		MrRuleCond *c = mr_rule_cond_parse_record(texts[i], &local);

		if (c == NULL)
			return rewrap(error, MR_WORKFLOW_ERROR_CONDITION, "--if ", local);
		g_ptr_array_add(wf->conds, c);
	}
	return TRUE;
}

/* Reads the --then texts @texts into @wf. */
static gboolean
parse_actions(MrWorkflow *wf, const char *const *texts, GError **error)
{
	guint n = count(texts);

	if (n == 0) {
		g_set_error_literal(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_EMPTY,
				    "a workflow needs at least one --then");
		return FALSE;
	}
	if (n > MR_WORKFLOW_PARTS_MAX) {
		g_set_error(error, MR_WORKFLOW_ERROR, MR_WORKFLOW_ERROR_ACTION,
			    "--then: at most %d (%u given)", MR_WORKFLOW_PARTS_MAX, n);
		return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		MrWorkflowAction *a = mr_workflow_action_parse(texts[i], error);

		if (a == NULL) {
			g_prefix_error(error, "--then ");
			return FALSE;
		}
		g_ptr_array_add(wf->actions, a);
	}
	return TRUE;
}

MrWorkflow *
mr_workflow_new(const char *name, const MrWorkflowSpec *spec, GError **error)
{
	g_autoptr(MrWorkflow) wf = NULL;
	GError *local = NULL;

	g_return_val_if_fail(spec != NULL, NULL);
	if (!mr_rule_check_name("workflow", name, &local)) {
		rewrap(error, MR_WORKFLOW_ERROR_NAME, "", local);
		return NULL;
	}
	wf = g_new0(MrWorkflow, 1);
	wf->name = g_strdup(name);
	wf->enabled = TRUE;
	wf->repeat = 1;
	wf->unless = g_array_new(FALSE, FALSE, sizeof(MrEventType));
	wf->conds = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_cond_free);
	wf->actions = g_ptr_array_new_with_free_func((GDestroyNotify)mr_workflow_action_free);
	if (!parse_trigger(wf, spec, error) || !parse_conds(wf, spec->conds, error) ||
	    !parse_actions(wf, spec->actions, error))
		return NULL;
	return g_steal_pointer(&wf);
}

/* Reads the value of option @opt of the stored trigger @text, the next
 * word after @words[*i], into *@out: once. */
static gboolean
trigger_word(const char *text, char **words, guint *i, const char *opt, const char **out,
	     GError **error)
{
	if (*out != NULL)
		return FAIL(error, MR_WORKFLOW_ERROR_TRIGGER, "trigger ", text, "%s given twice", opt);
	while (words[*i + 1] != NULL && *words[*i + 1] == '\0')
		++*i;
	if (words[*i + 1] == NULL)
		return FAIL(error, MR_WORKFLOW_ERROR_TRIGGER, "trigger ", text, "%s needs a value", opt);
	*out = words[++*i];
	return TRUE;
}

/* Reads the stored trigger @text into @spec, whose texts are borrowed
 * from @words (@text split at spaces) and @unless. */
static gboolean
trigger_spec(const char *text, char **words, GPtrArray *unless, MrWorkflowSpec *spec,
	     GError **error)
{
	for (guint i = 0; words[i] != NULL; i++) {
		const char *w = words[i];
		const char *repeat = NULL;
		gint64 n;

		if (*w == '\0')
			continue;
		if (strcmp(w, "--on") == 0) {
			if (!trigger_word(text, words, &i, w, &spec->on, error))
				return FALSE;
		} else if (strcmp(w, "--after") == 0) {
			if (!trigger_word(text, words, &i, w, &spec->after, error))
				return FALSE;
		} else if (strcmp(w, "--since") == 0) {
			if (!trigger_word(text, words, &i, w, &spec->since, error))
				return FALSE;
		} else if (strcmp(w, "--unless") == 0) {
			const char *event = NULL;

			if (!trigger_word(text, words, &i, w, &event, error))
				return FALSE;
			g_ptr_array_add(unless, (gpointer)event);
		} else if (strcmp(w, "--business") == 0 && !spec->business) {
			spec->business = TRUE;
		} else if (strcmp(w, "--repeat") == 0 && !spec->has_repeat) {
			if (!trigger_word(text, words, &i, w, &repeat, error))
				return FALSE;
			if (!g_ascii_string_to_signed(repeat, 10, G_MININT, G_MAXINT, &n, NULL))
				return FAIL(error, MR_WORKFLOW_ERROR_TRIGGER, "trigger ", text,
					    "--repeat takes a number, not %s", repeat);
			spec->repeat = (int)n;
			spec->has_repeat = TRUE;
		} else {
			return FAIL(error, MR_WORKFLOW_ERROR_TRIGGER, "trigger ", text,
				    "unexpected %s", w);
		}
	}
	g_ptr_array_add(unless, NULL);
	spec->unless = (const char *const *)unless->pdata;
	return TRUE;
}

MrWorkflow *
mr_workflow_from_text(const char *name, const char *trigger, const char *const *conds,
		      const char *const *actions_in, gboolean enabled, GError **error)
{
	g_auto(GStrv) words = NULL;
	g_autoptr(GPtrArray) unless = g_ptr_array_new();
	MrWorkflowSpec spec = { .conds = conds, .actions = actions_in };
	MrWorkflow *wf;

	if (trigger == NULL || !g_utf8_validate(trigger, -1, NULL) ||
	    strlen(trigger) > MR_RULE_TEXT_MAX) {
		FAIL(error, MR_WORKFLOW_ERROR_TRIGGER, "trigger ", trigger, "not a trigger");
		return NULL;
	}
	words = g_strsplit(trigger, " ", -1);
	if (!trigger_spec(trigger, words, unless, &spec, error))
		return NULL;
	wf = mr_workflow_new(name, &spec, error);
	if (wf != NULL)
		wf->enabled = enabled;
	return wf;
}

gboolean
mr_workflow_conds_hold(const MrWorkflow *wf, const MrRuleValues *values)
{
	g_return_val_if_fail(wf != NULL && values != NULL, FALSE);
	for (guint i = 0; i < wf->conds->len; i++)
		if (!mr_rule_cond_eval(g_ptr_array_index(wf->conds, i), values, NULL))
			return FALSE;
	return TRUE;
}
