/* mr-ctl-rules-file.c - the rules file of rule export and rule import
 * (mr-ctl-rules-file.h).
 *
 * ctl.  libconfig writes and reads the text; each rule is made by the
 * model's mr_rule_new(), as rule add makes it, and a refusal is told by
 * the file's line (config_setting_source_line()), in the "PATH:LINE: KEY:
 * what" form of the configuration's refusals (mr_config_invalid()). */
#define G_LOG_DOMAIN "mailroom-ctl"

#include <string.h>

#include <libconfig.h>

#include "mailroom/mr-autocleanups.h"
#include "mailroom/mr-config-section.h"
#include "mailroom/mr-crm.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-store-rule.h"

#include "mr-ctl-rules-file.h"

struct _MrCtlRulesFile {
	char *path;
	config_t *config;
	config_setting_t *list; /* rules = ( ... ) */
	GPtrArray *rules;       /* MrRule*, in the list's order */
};

/* The keys of a rule's group. */
static const char *const rule_keys[] = { "name", "enabled", "any", "stop", "conditions",
					 "actions", NULL };

/* --- export ------------------------------------------------------------------- */

/* Adds the list of strings @key to @group: @texts (NULL-terminated). */
static void
add_strings(config_setting_t *group, const char *key, const char *const *texts)
{
	config_setting_t *a = config_setting_add(group, key, CONFIG_TYPE_ARRAY);

	for (gsize i = 0; texts != NULL && texts[i] != NULL; i++)
		config_setting_set_string_elem(a, -1, texts[i]);
}

static void
add_bool(config_setting_t *group, const char *key, gboolean value)
{
	config_setting_set_bool(config_setting_add(group, key, CONFIG_TYPE_BOOL), value);
}

void
mr_ctl_rules_file_write(FILE *out, const char *now, int schema, const GPtrArray *rows)
{
	g_autoptr(config_t) c = g_new0(config_t, 1);
	config_setting_t *list;

	config_init(c);
	list = config_setting_add(config_root_setting(c), "rules", CONFIG_TYPE_LIST);
	for (guint i = 0; i < rows->len; i++) {
		const MrRuleRow *r = g_ptr_array_index(rows, i);
		config_setting_t *group = config_setting_add(list, NULL, CONFIG_TYPE_GROUP);

		config_setting_set_string(config_setting_add(group, "name", CONFIG_TYPE_STRING),
					  r->name);
		add_bool(group, "enabled", r->enabled);
		add_bool(group, "any", r->any);
		add_bool(group, "stop", r->stop);
		add_strings(group, "conditions", (const char *const *)r->conditions);
		add_strings(group, "actions", (const char *const *)r->actions);
	}
	fprintf(out,
		"# mailroom rules, exported %s (schema %d)\n"
		"# mailroomctl rule import FILE replaces every rule by these, in this order.\n",
		now, schema);
	config_write(c, out);
}

/* --- import ------------------------------------------------------------------- */

void
mr_ctl_rules_file_free(MrCtlRulesFile *file)
{
	if (file == NULL)
		return;
	g_free(file->path);
	g_clear_pointer(&file->config, mr_config_t_free);
	g_clear_pointer(&file->rules, g_ptr_array_unref);
	g_free(file);
}

const GPtrArray *
mr_ctl_rules_file_rules(const MrCtlRulesFile *file)
{
	return file->rules;
}

/* Refuses @setting (nullable) of rule @label in @file: "PATH:LINE: LABEL:
 * WHAT".  Returns FALSE. */
static gboolean G_GNUC_PRINTF(5, 6)
rule_invalid(const MrCtlRulesFile *file, const config_setting_t *setting, const char *label,
	     GError **error, const char *fmt, ...)
{
	g_autofree char *what = NULL;
	va_list ap;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return mr_config_invalid(error, file->path, setting, label, what);
}

/* Appends the strings of the optional list @key of @group to @out,
 * borrowed, then NULL. */
static gboolean
rule_strings(const MrCtlRulesFile *file, config_setting_t *group, const char *label,
	     const char *key, GPtrArray *out, GError **error)
{
	config_setting_t *s = config_setting_get_member(group, key);

	if (s != NULL && (!config_setting_is_aggregate(s) || config_setting_is_group(s)))
		return rule_invalid(file, s, label, error, "%s: must be a list [ \"...\", ... ]",
				    key);
	for (int i = 0; s != NULL && i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return rule_invalid(file, e, label, error, "%s: must be a list of strings",
					    key);
		g_ptr_array_add(out, (char *)config_setting_get_string(e));
	}
	g_ptr_array_add(out, NULL);
	return TRUE;
}

/* Returns the setting of @group that @e, mr_rule_new()'s refusal, is
 * about: the name, the first condition or action that is refused on its
 * own, else the actions (two that exclude each other). */
static config_setting_t *
rule_error_setting(config_setting_t *group, const GError *e)
{
	config_setting_t *conds = config_setting_get_member(group, "conditions");
	config_setting_t *actions = config_setting_get_member(group, "actions");

	if (g_error_matches(e, MR_RULE_ERROR, MR_RULE_ERROR_NAME))
		return config_setting_get_member(group, "name");
	for (int i = 0; conds != NULL && i < config_setting_length(conds); i++) {
		config_setting_t *s = config_setting_get_elem(conds, i);
		g_autoptr(MrRuleCond) c = mr_rule_cond_parse(config_setting_get_string(s), NULL);

		if (c == NULL)
			return s;
	}
	for (int i = 0; actions != NULL && i < config_setting_length(actions); i++) {
		config_setting_t *s = config_setting_get_elem(actions, i);
		g_autoptr(MrRuleAction) a = mr_rule_action_parse(config_setting_get_string(s), NULL);

		if (a == NULL)
			return s;
	}
	return actions != NULL ? actions : group;
}

/* Reads the optional flag @key of @group into @value. */
static gboolean
rule_flag(const MrCtlRulesFile *file, config_setting_t *group, const char *label,
	  const char *key, gboolean *value, GError **error)
{
	config_setting_t *s = config_setting_get_member(group, key);

	if (s == NULL)
		return TRUE;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return rule_invalid(file, s, label, error, "%s: must be true or false", key);
	*value = config_setting_get_bool(s);
	return TRUE;
}

/* Makes rule @index of the file, @group, as rule add would. */
static MrRule *
rule_read(const MrCtlRulesFile *file, int index, config_setting_t *group, GError **error)
{
	config_setting_t *name = NULL;
	g_autofree char *label = g_strdup_printf("rule #%d", index + 1);
	g_autoptr(GPtrArray) conds = g_ptr_array_new();
	g_autoptr(GPtrArray) actions = g_ptr_array_new();
	g_autoptr(GError) e = NULL;
	gboolean enabled = TRUE, any = FALSE, stop = FALSE;
	MrRule *rule;

	if (!config_setting_is_group(group)) {
		rule_invalid(file, group, label, error, "must be a group { name = \"...\"; ... }");
		return NULL;
	}
	name = config_setting_get_member(group, "name");
	if (name != NULL && config_setting_type(name) == CONFIG_TYPE_STRING &&
	    mr_rule_check_name("rule", config_setting_get_string(name), NULL)) {
		g_free(label);
		label = g_strdup_printf("rule %s", config_setting_get_string(name));
	}
	for (int i = 0; i < config_setting_length(group); i++) {
		config_setting_t *s = config_setting_get_elem(group, i);

		if (!g_strv_contains(rule_keys, config_setting_name(s))) {
			rule_invalid(file, s, label, error,
				     "unknown key %s (keys: name, enabled, any, stop, conditions, "
				     "actions)",
				     config_setting_name(s));
			return NULL;
		}
	}
	if (name == NULL || config_setting_type(name) != CONFIG_TYPE_STRING) {
		rule_invalid(file, name != NULL ? name : group, label, error,
			     "name: %s", name != NULL ? "must be a string" : "missing");
		return NULL;
	}
	if (!rule_flag(file, group, label, "enabled", &enabled, error) ||
	    !rule_flag(file, group, label, "any", &any, error) ||
	    !rule_flag(file, group, label, "stop", &stop, error) ||
	    !rule_strings(file, group, label, "conditions", conds, error) ||
	    !rule_strings(file, group, label, "actions", actions, error))
		return NULL;
	if (conds->len == 1) {
		rule_invalid(file, group, label, error, "conditions: at least one condition");
		return NULL;
	}
	/* stop alone: exported as no action and stop = true */
	if (actions->len == 1 && stop)
		g_ptr_array_insert(actions, 0, (char *)"stop");
	if (actions->len == 1) {
		rule_invalid(file, group, label, error,
			     "actions: at least one action (or stop = true)");
		return NULL;
	}
	rule = mr_rule_new(config_setting_get_string(name), (const char *const *)conds->pdata,
			   (const char *const *)actions->pdata, any, stop, &e);
	if (rule == NULL) {
		mr_config_invalid(error, file->path, rule_error_setting(group, e), label, e->message);
		return NULL;
	}
	rule->enabled = enabled;
	return rule;
}

MrCtlRulesFile *
mr_ctl_rules_file_read(const char *path, GError **error)
{
	g_autoptr(MrCtlRulesFile) file = g_new0(MrCtlRulesFile, 1);
	g_autofree char *text = NULL;
	config_setting_t *root;

	g_return_val_if_fail(path != NULL, NULL);

	if (!g_file_get_contents(path, &text, NULL, error))
		return NULL;
	file->path = g_strdup(path);
	file->config = g_new0(config_t, 1);
	file->rules = g_ptr_array_new_with_free_func((GDestroyNotify)mr_rule_free);
	config_init(file->config);
	if (config_read_string(file->config, text) != CONFIG_TRUE) {
		g_set_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_SYNTAX, "%s:%d: %s",
			    config_error_file(file->config) != NULL
				    ? config_error_file(file->config)
				    : path,
			    config_error_line(file->config), config_error_text(file->config));
		return NULL;
	}
	root = config_root_setting(file->config);
	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *s = config_setting_get_elem(root, i);

		if (strcmp(config_setting_name(s), "rules") != 0) {
			mr_config_invalid(error, path, s, config_setting_name(s),
					  "unknown key (a rules file holds rules = ( ... ); alone)");
			return NULL;
		}
	}
	file->list = config_setting_get_member(root, "rules");
	if (file->list == NULL) {
		mr_config_invalid(error, path, NULL, "rules", "missing (rules = ( { ... }, ... );)");
		return NULL;
	}
	if (!config_setting_is_aggregate(file->list) || config_setting_is_group(file->list)) {
		mr_config_invalid(error, path, file->list, "rules",
				  "must be a list ( { ... }, ... )");
		return NULL;
	}
	for (int i = 0; i < config_setting_length(file->list); i++) {
		MrRule *rule = rule_read(file, i, config_setting_get_elem(file->list, i), error);

		if (rule == NULL)
			return NULL;
		g_ptr_array_add(file->rules, rule);
	}
	return g_steal_pointer(&file);
}

void
mr_ctl_rules_file_locate(const MrCtlRulesFile *file, guint index, GError **error)
{
	config_setting_t *group = config_setting_get_elem(file->list, index);
	config_setting_t *at = config_setting_get_member(group, "name");
	config_setting_t *actions = config_setting_get_member(group, "actions");

	g_return_if_fail(group != NULL && error != NULL && *error != NULL);

	for (int i = 0; g_error_matches(*error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND) &&
			actions != NULL && i < config_setting_length(actions);
	     i++) {
		config_setting_t *s = config_setting_get_elem(actions, i);
		g_autoptr(MrRuleAction) a = mr_rule_action_parse(config_setting_get_string(s), NULL);

		if (a != NULL && a->kind == MR_RULE_ACT_OWNER)
			at = s;
	}
	g_prefix_error(error, "%s:%d: ", file->path, config_setting_source_line(at));
}
