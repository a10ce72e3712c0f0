/* mr-ctl-rules-file.h - the rules file of `rule export` and `rule import`
 * (issue 22): every rule as libconfig text, written and read by libconfig,
 * so that the quoting is libconfig's.  Private to src/ctl/.
 *
 *   # mailroom rules, exported 2026-12-07T12:00:00Z (schema 8)
 *   rules = (
 *     { name = "urgent"; enabled = true; any = false; stop = false;
 *       conditions = [ "role = support", "subject ~ \"urgent|dringend\"" ];
 *       actions = [ "priority = high", "type = incident" ]; }
 *   );
 *
 * The order of the list is the order the rules run in.  A rule's keys are
 * these alone: name, conditions and actions (lists of the texts rule add
 * takes), and the optional enabled (default true), any and stop (default
 * false).  A rule whose only action is stop has `actions = [ ];` and
 * `stop = true;`, as rule list --json shows it. */
#pragma once

#include <stdio.h>

#include <glib.h>

#include "mailroom/mr-rule.h"

/* Writes @rows (element-type MrRuleRow, in position order) to @out as a
 * rules file whose comment line names @now (ISO 8601) and the schema
 * version @schema. */
void mr_ctl_rules_file_write(FILE *out, const char *now, int schema, const GPtrArray *rows);

/* A rules file read: its rules, and where each stands in the file. */
typedef struct _MrCtlRulesFile MrCtlRulesFile;

/* Reads the rules file @path and makes each rule with mr_rule_new(), as
 * rule add does; whether owners exist is mr_crm_rules_replace()'s
 * question.  Returns: (transfer full) (nullable): the file, or NULL with
 * @error: G_FILE_ERROR when it cannot be read; MR_CONFIG_ERROR_SYNTAX,
 * "PATH:LINE: libconfig's reason", when it is not libconfig text;
 * MR_CONFIG_ERROR_INVALID for the first thing refused, "PATH:LINE: rule
 * NAME: what is wrong" (rule #N when it has no valid name; the line of
 * the condition or action refused, quoted as rule add quotes it), or
 * "PATH:LINE: KEY: ..." for the keys around the rules (a key other than
 * rules, rules missing or not a list). */
MrCtlRulesFile *mr_ctl_rules_file_read(const char *path, GError **error);

/* Returns: (transfer none) (element-type MrRule): the rules of @file, in
 * its order, each enabled or not as the file says. */
const GPtrArray *mr_ctl_rules_file_rules(const MrCtlRulesFile *file);

/* Prefixes @error, mr_crm_rules_replace()'s refusal of the rule at
 * @index of mr_ctl_rules_file_rules(), with "PATH:LINE: ": the line of
 * the rule's owner action for an owner refused, else of its name. */
void mr_ctl_rules_file_locate(const MrCtlRulesFile *file, guint index, GError **error);

/* Frees @file; NULL-safe. */
void mr_ctl_rules_file_free(MrCtlRulesFile *file);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrCtlRulesFile, mr_ctl_rules_file_free)
