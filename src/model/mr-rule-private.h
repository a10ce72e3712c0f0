/* mr-rule-private.h - what the files of the rules share: the texts a
 * condition is evaluated against, the multi-pattern pass that answers
 * many conditions of a field at once (mr-rule-prefilter.c), and the
 * pieces of the grammar a workflow's actions are read with
 * (mr-workflow.c).
 *
 * Model layer only; nothing outside src/model/ includes this (and the
 * rules' unit test). */
#pragma once

#include "mailroom/mr-rule-set.h"
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

/* --- the grammar's pieces, for mr-workflow.c ------------------------------ */

/* Sets @error (@domain, @code) to "PREFIX'TEXT': MESSAGE", @text shown
 * safely (control characters as text, valid UTF-8) and cut at 60 bytes,
 * as every message of the rules quotes what it refuses.  @prefix: "" or
 * an option and a space ("--then ").  Returns FALSE. */
gboolean mr_rule_error_quoting(GError **error, GQuark domain, int code, const char *prefix,
			       const char *text, const char *fmt, ...) G_GNUC_PRINTF(6, 7);

/* Checks what a condition and an action share: @text present, at most
 * MR_RULE_TEXT_MAX bytes, UTF-8, no control characters, not blank.
 * Returns FALSE with @error (MR_RULE_ERROR_SYNTAX, quoting @text). */
gboolean mr_rule_check_text(const char *text, GError **error);

/* Reads a word (printable, no space, no '"') or a double-quoted string
 * with \" and \\ escapes at *@p, moving *@p past it.  Returns: (transfer
 * full) (nullable): the value, NULL at no value (@error unset) or at an
 * unterminated quote (@error set in MR_RULE_ERROR, quoting @text). */
char *mr_rule_read_value(const char **p, const char *text, GError **error);

/* Appends @v to @s as mr_rule_read_value() reads it back: a word when it
 * is one, else quoted. */
void mr_rule_append_value(GString *s, const char *v);

/* Checks @word as a rule's tag or source (@what): 1 to 64 ASCII letters,
 * digits, '.', '_', '-'.  Returns FALSE with @error (MR_RULE_ERROR_ACTION,
 * quoting @text). */
gboolean mr_rule_check_word(const char *what, const char *word, const char *text, GError **error);

/* Checks @name as mr_rule_check_name() does, quoting @text (the whole
 * action the name stands in) in @error (MR_RULE_ERROR_NAME). */
gboolean mr_rule_check_name_in(const char *what, const char *name, const char *text,
			       GError **error);

/* Returns TRUE when @v may be an address, as an owner's is checked:
 * exactly one '@' with text on both sides, no space, no '"'. */
gboolean mr_rule_is_address(const char *v);

/* Returns: (transfer full): the names of the priorities (@types FALSE) or
 * of the ticket types (TRUE) of mr-status.h, comma-separated, for a
 * message. */
char *mr_rule_enum_list(gboolean types);

/* The multi-pattern pass over the conditions of a rule set. */
typedef struct _MrRulePrefilter MrRulePrefilter;

/* Takes the conditions of @conds (const MrRuleCond*, borrowed: they must
 * outlive the pass) that one pass per field can answer, and compiles the
 * pass.  Returns: (transfer full) (nullable): the pass, or NULL when it
 * takes none (or the build has no multi-pattern engine, or the CPU cannot
 * run it). */
MrRulePrefilter *mr_rule_prefilter_new(GPtrArray *conds);

/* Frees @pf; NULL-safe. */
void mr_rule_prefilter_free(MrRulePrefilter *pf);

/* Returns how many conditions @pf answers (0 for NULL). */
guint mr_rule_prefilter_taken(const MrRulePrefilter *pf);

/* Answers every condition @pf takes for @values: sets @held[i] to TRUE or
 * FALSE (negation applied), exactly as mr_rule_cond_eval() would, and
 * leaves the others alone.  @values' subject_folded and body_folded must
 * be set.  Safe to call from several threads at once. */
void mr_rule_prefilter_scan(MrRulePrefilter *pf, const MrRuleValues *values, guint8 *held);

/* Compiles @set's pass now, when it is not yet (a set otherwise does
 * from its second scan on, on a thread of its own), and returns how many
 * conditions of its enabled rules the pass answers (the rest are
 * evaluated one by one). */
guint mr_rule_set_prefiltered(MrRuleSet *set);

G_END_DECLS
