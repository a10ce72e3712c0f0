/* mr-rule-private.h - what the files of the rules share: the texts a
 * condition is evaluated against.
 *
 * Model layer only; nothing outside src/model/ includes this (and the
 * rules' unit test). */
#pragma once

#include "mailroom/mr-rule.h"

G_BEGIN_DECLS

/* Returns: (transfer container): the texts @cond's field has in @v,
 * borrowed from @v (none for a NULL text or list). */
GPtrArray *mr_rule_field_texts(const MrRuleCond *cond, const MrRuleValues *v);

/* Returns: (transfer full): @s made valid UTF-8 and case-folded, as the
 * text operators compare it. */
char *mr_rule_fold(const char *s);

/* Returns the folded form of @s, a text of @cond's field: borrowed from
 * @v when the caller folded it (subject, body), else made in *@owned. */
const char *mr_rule_fold_text(const MrRuleCond *cond, const MrRuleValues *v, const char *s,
			      char **owned);

/* Returns the length of what a pattern sees of @s, and sets *@view_out to
 * it: at most MR_RULE_REGEX_SUBJECT_MAX bytes, cut at a character, made
 * valid UTF-8 (then in *@owned_out, else NULL); *@cut_out is TRUE when
 * that is not all of @s ($ does not match at the cut). */
gsize mr_rule_regex_view(const char *s, const char **view_out, char **owned_out, gboolean *cut_out);

G_END_DECLS
