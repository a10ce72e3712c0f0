/* mr-rule-prefilter.c - one pass per field for the conditions of a rule
 * set: the text operators' needles and the regular expressions of each
 * field compiled into Hyperscan databases when the set is made, so that
 * a message's subject, body, addresses and headers are each read once for
 * all rules instead of once per condition.
 *
 * Model layer.  The answers are exactly mr_rule_cond_eval()'s: a needle
 * found is the answer for contains; for starts, ends and ~ a miss is the
 * answer and a hit is a candidate that mr_rule_cond_eval() confirms, so a
 * pattern's meaning stays PCRE2's and bounded (mr-rule.h).  A database
 * holds a pattern only in a form whose Hyperscan reading is known to
 * match wherever PCRE2's does (regex_read()); everything else stays with
 * the per-condition evaluation, and so does all of it in a build without
 * Hyperscan (MR_NO_HYPERSCAN: it is packaged for amd64 alone). */
#define G_LOG_DOMAIN "mailroom-rule"

#include <string.h>

#include "mr-rule-private.h"

#ifdef MR_NO_HYPERSCAN

MrRulePrefilter *
mr_rule_prefilter_new(GPtrArray *conds)
{
	return NULL;
}

void
mr_rule_prefilter_free(MrRulePrefilter *pf)
{
}

guint
mr_rule_prefilter_taken(const MrRulePrefilter *pf)
{
	return 0;
}

void
mr_rule_prefilter_scan(MrRulePrefilter *pf, const MrRuleValues *values, guint8 *held)
{
}

#else /* Hyperscan */

#include <hs/hs.h>

/* How the pass answers a condition. */
typedef enum {
	HOW_SLOW = 0, /* it does not: mr_rule_cond_eval(), one by one */
	HOW_EQUAL,    /* =, in, !=: the folded text looked up in a table */
	HOW_CONTAINS, /* contains: a needle found in the folded text holds */
	HOW_CONFIRM,  /* starts, ends, ~: nothing found is the answer, and
			 mr_rule_cond_eval() confirms a candidate */
} How;

/* What the databases of patterns are compiled with: prefilter mode, so
 * that Hyperscan may approximate but never misses a match; GRegex's
 * caseless and UTF-8; one report per pattern.  Not Unicode properties:
 * the forms of regex_read() have no class that depends on them, and
 * Hyperscan compiles them much slower. */
#define PATTERN_FLAGS \
	(HS_FLAG_PREFILTER | HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY)

/* One field (a header:NAME is a field of its own) and what the pass
 * knows of its conditions. */
typedef struct {
	const MrRuleCond *first; /* a condition on the field, for its texts */
	GArray *conds;           /* guint: the conditions the pass answers */
	GHashTable *equal;       /* (nullable) folded value -> GArray of guint */
	gsize equal_max;         /* the longest key of @equal, in bytes */
	hs_database_t *needles;  /* (nullable) contains, starts, ends */
	hs_database_t *patterns; /* (nullable) ~, in the form of regex_read() */
	GArray *dollar;          /* guint: patterns with $ or \Z */
} Field;

struct _MrRulePrefilter {
	GPtrArray *conds; /* const MrRuleCond*, the set's */
	guint8 *how;      /* How, per condition of @conds */
	guint8 *on_hit;   /* per condition: its answer when found (not
			     HOW_CONFIRM), negation applied */
	guint8 *on_miss;  /* per condition: its answer when not found */
	guint taken;
	GPtrArray *fields; /* Field* */
	hs_scratch_t *proto; /* big enough for every database, cloned */
	GMutex lock;         /* guards @spare */
	GPtrArray *spare;    /* hs_scratch_t*: scratch space between scans */
};

/* --- reading a pattern ---------------------------------------------------- */

/* Returns TRUE when @e, after a backslash, is a class that depends on
 * Unicode's tables (GRegex reads them with Unicode properties): Hyperscan
 * 5.4's tables are older than PCRE2 10.42's (U+0560 is a letter to PCRE2,
 * not to Hyperscan), so such a class becomes any character. */
static gboolean
unicode_class(char e)
{
	return e != '\0' && strchr("dDwWsS", e) != NULL;
}

/* Returns the character an escape @e (after a backslash) stands for, or
 * -1 for one this reader does not take: \x, \p, \Q, back-references and
 * the rest of PCRE2's letters and digits, each with its own rules. */
static int
escaped_char(char e)
{
	switch (e) {
	case 'n': return '\n';
	case 't': return '\t';
	case 'r': return '\r';
	case 'f': return '\f';
	default: break;
	}
	if (e == '\0' || g_ascii_isalnum(e) || (guchar)e > 0x7e || (guchar)e < 0x20)
		return -1;
	return e; /* \. \\ \[ ... */
}

/* Reads the class that starts at @s ('['): printable ASCII, single
 * characters, ranges of two single characters, a '-' first or last, and
 * the escapes of unicode_class() and escaped_char().  Nested '[' (POSIX
 * classes), a ']' first and any other '-' are left to PCRE2.  Appends to
 * @out the class, or any character when it holds a class of
 * unicode_class() (negated or not, a class matches one character).
 * Returns its length, or 0 to refuse it. */
static gsize
class_read(const char *s, GString *out)
{
	const char *q = s + 1;
	gboolean first = TRUE, has_unicode = FALSE;
	int prev = -1; /* the previous item, when a single character */

	if (*q == '^')
		q++;
	if (*q == ']')
		return 0;
	while (*q != ']') {
		int ch;

		if (*q == '\0' || *q == '[' || (guchar)*q < 0x20 || (guchar)*q > 0x7e)
			return 0;
		if (*q == '\\' && unicode_class(q[1])) {
			has_unicode = TRUE;
			ch = -1;
			q += 2;
		} else if (*q == '\\') {
			if ((ch = escaped_char(q[1])) < 0)
				return 0;
			q += 2;
		} else if (*q == '-' && !first && q[1] != ']') {
			int hi;

			if (prev < 0)
				return 0;
			if (q[1] == '\\') {
				if ((hi = escaped_char(q[2])) < 0)
					return 0;
				q += 3;
			} else {
				hi = (guchar)q[1];
				if (hi < 0x20 || hi > 0x7e || hi == '[')
					return 0;
				q += 2;
			}
			if (hi < prev)
				return 0;
			ch = -1; /* a range does not start another */
		} else {
			ch = (guchar)*q++;
		}
		prev = ch;
		first = FALSE;
	}
	q++;
	if (has_unicode)
		g_string_append(out, "[\\s\\S]");
	else
		g_string_append_len(out, s, q - s);
	return q - s;
}

/* Reads the count of a bounded repeat at @s ('{'): {n}, {n,} or {n,m}.
 * Returns its length, or 0 (PCRE2 reads other braces as text; they are
 * left to it). */
static gsize
repeat_read(const char *s)
{
	const char *q = s + 1;

	if (!g_ascii_isdigit(*q))
		return 0;
	while (g_ascii_isdigit(*q))
		q++;
	if (*q == ',')
		q++;
	while (g_ascii_isdigit(*q))
		q++;
	return *q == '}' ? (gsize)(q + 1 - s) : 0;
}

/* Reads @p, a ~ pattern as written, and returns TRUE when it keeps to
 * the part of PCRE2's syntax that this reader turns into a form whose
 * Hyperscan reading (PATTERN_FLAGS) matches at least wherever GRegex's
 * does (caseless, UTF-8, Unicode properties, any newline):
 *  - printable ASCII only: for a pattern with other characters, case
 *    folding differs between the two libraries' Unicode tables;
 *  - no (? but (?: and no (*: look-around, back-references, atomic
 *    groups, options (?m) (?x) and verbs change what matches, and
 *    Hyperscan approximates or refuses them;
 *  - no possessive quantifier, no brace that is not a bounded repeat;
 *  - escapes: the classes of unicode_class(), \b \B \A \z \Z, and the
 *    characters of escaped_char().
 * Sets *@form_out (transfer full) to that form: \w and the like, and any
 * class holding them, become any character; \b and \B, which look at
 * \w, are dropped (a missing assertion only adds matches); a bounded
 * repeat {n,m} becomes * (Hyperscan compiles a bounded repeat of a UTF-8
 * character slowly: (a|b).{0,40}c took 17 ms, (a|b).*c 1.4 ms).  Sets
 * *@dollar_out when @p has $ or \Z, whose newline (GRegex: any newline,
 * Hyperscan: \n alone) differs before a final \r, \v, \f, NEL, LS or
 * PS. */
static gboolean
regex_read(const char *p, char **form_out, gboolean *dollar_out)
{
	g_autoptr(GString) form = g_string_new(NULL);
	gboolean atom = FALSE; /* the last item can take a quantifier */
	int depth = 0;
	const char *s = p;

	*dollar_out = FALSE;
	*form_out = NULL;
	while (*s != '\0') {
		char c = *s;
		gsize n;

		if ((guchar)c < 0x20 || (guchar)c > 0x7e)
			return FALSE;
		switch (c) {
		case '\\':
			if (unicode_class(s[1])) {
				g_string_append(form, "[\\s\\S]");
				atom = TRUE;
			} else if (s[1] == 'b' || s[1] == 'B') {
				atom = FALSE;
			} else if (s[1] == 'A' || s[1] == 'z' || s[1] == 'Z') {
				g_string_append_len(form, s, 2);
				*dollar_out |= s[1] == 'Z';
				atom = FALSE;
			} else if (escaped_char(s[1]) >= 0) {
				g_string_append_len(form, s, 2);
				atom = TRUE;
			} else {
				return FALSE;
			}
			s += 2;
			continue;
		case '[':
			if ((n = class_read(s, form)) == 0)
				return FALSE;
			s += n;
			atom = TRUE;
			continue;
		case '(':
			if (s[1] == '*' || (s[1] == '?' && s[2] != ':'))
				return FALSE;
			n = s[1] == '?' ? 3 : 1;
			g_string_append_len(form, s, n);
			s += n;
			depth++;
			atom = FALSE;
			continue;
		case '*':
		case '+':
		case '?':
		case '{':
			if (!atom)
				return FALSE;
			if (c == '{' && (n = repeat_read(s)) == 0)
				return FALSE;
			n = c == '{' ? n : 1;
			if (s[n] == '+')
				return FALSE;
			g_string_append_c(form, c == '{' ? '*' : c);
			if (s[n] == '?')
				g_string_append_c(form, s[n++]);
			s += n;
			atom = FALSE;
			continue;
		case ')':
			if (depth-- == 0)
				return FALSE;
			atom = TRUE;
			break;
		case '$':
			*dollar_out = TRUE;
			atom = FALSE;
			break;
		case '^':
		case '|':
			atom = FALSE;
			break;
		case ']':
		case '}':
			return FALSE;
		default: /* a character, or '.' */
			atom = TRUE;
			break;
		}
		g_string_append_c(form, c);
		s++;
	}
	if (depth != 0)
		return FALSE;
	*form_out = g_string_free(g_steal_pointer(&form), FALSE);
	return TRUE;
}

/* --- compiling -------------------------------------------------------------- */

/* The patterns of one database while it is made. */
typedef struct {
	GPtrArray *texts; /* const char*, borrowed */
	GArray *ids;      /* guint: each text's condition */
} Patterns;

static void
patterns_init(Patterns *p)
{
	p->texts = g_ptr_array_new();
	p->ids = g_array_new(FALSE, FALSE, sizeof(guint));
}

static void
patterns_clear(Patterns *p)
{
	g_ptr_array_unref(p->texts);
	g_array_unref(p->ids);
}

static void
patterns_add(Patterns *p, const char *text, guint id)
{
	g_ptr_array_add(p->texts, (gpointer)text);
	g_array_append_val(p->ids, id);
}

/* Compiles @p into a block-mode database, @literal: needles (bytes,
 * matched as they are), else patterns with @flags.  A pattern
 * Hyperscan refuses (a too large repeat, a pattern it cannot
 * approximate) is taken out, its condition added to @refused, and the
 * rest compiled again: the rule was checked by PCRE2 when it was added,
 * and Hyperscan's errors never refuse one.  Returns: (transfer full)
 * (nullable): the database, NULL when none is left or Hyperscan refuses
 * them all at once (all then in @refused). */
static hs_database_t *
patterns_compile(Patterns *p, gboolean literal, unsigned pattern_flags, GArray *refused)
{
	while (p->texts->len > 0) {
		g_autofree unsigned *flags = g_new(unsigned, p->texts->len);
		g_autofree size_t *lens = g_new(size_t, p->texts->len);
		hs_compile_error_t *err = NULL;
		hs_database_t *db = NULL;
		hs_error_t rc;
		int which;

		for (guint i = 0; i < p->texts->len; i++) {
			flags[i] = literal ? HS_FLAG_SINGLEMATCH : pattern_flags;
			lens[i] = strlen(p->texts->pdata[i]);
		}
		if (literal)
			rc = hs_compile_lit_multi((const char *const *)p->texts->pdata, flags,
						  (const unsigned *)(gpointer)p->ids->data, lens,
						  p->texts->len, HS_MODE_BLOCK, NULL, &db, &err);
		else
			rc = hs_compile_multi((const char *const *)p->texts->pdata, flags,
					      (const unsigned *)(gpointer)p->ids->data, p->texts->len,
					      HS_MODE_BLOCK, NULL, &db, &err);
		if (rc == HS_SUCCESS)
			return db;
		which = err != NULL ? err->expression : -1;
		if (which < 0 || (guint)which >= p->texts->len) {
			g_debug("hyperscan refused the rules' patterns: %s",
				err != NULL ? err->message : "no reason");
			hs_free_compile_error(err);
			g_array_append_vals(refused, p->ids->data, p->ids->len);
			return NULL;
		}
		g_debug("hyperscan refused %s: %s (PCRE2 alone matches it)",
			(const char *)p->texts->pdata[which], err->message);
		hs_free_compile_error(err);
		g_array_append_val(refused, g_array_index(p->ids, guint, which));
		g_ptr_array_remove_index(p->texts, which);
		g_array_remove_index(p->ids, which);
	}
	return NULL;
}

static void
field_free(Field *f)
{
	g_array_unref(f->conds);
	g_clear_pointer(&f->equal, g_hash_table_unref);
	hs_free_database(f->needles);
	hs_free_database(f->patterns);
	g_array_unref(f->dollar);
	g_free(f);
}

static void
scratch_free(gpointer s)
{
	hs_free_scratch(s);
}

/* Returns how the pass can answer @c, before any compiling. */
static How
cond_how(const MrRuleCond *c)
{
	switch (c->field) {
	case MR_RULE_FIELD_SUBJECT:
	case MR_RULE_FIELD_BODY:
	case MR_RULE_FIELD_FROM:
	case MR_RULE_FIELD_FROM_DOMAIN:
	case MR_RULE_FIELD_TO:
	case MR_RULE_FIELD_CC:
	case MR_RULE_FIELD_ADDRESS:
	case MR_RULE_FIELD_HEADER:
		break;
	default: /* per delivery, or a number: cheap one by one */
		return HOW_SLOW;
	}
	switch (c->op) {
	case MR_RULE_OP_EQ:
	case MR_RULE_OP_NE:
	case MR_RULE_OP_IN:
		return HOW_EQUAL;
	case MR_RULE_OP_CONTAINS:
	case MR_RULE_OP_STARTS:
	case MR_RULE_OP_ENDS:
		/* Hyperscan takes no empty needle; "" is cheap to check */
		if (*c->folded[0] == '\0')
			return HOW_SLOW;
		return c->op == MR_RULE_OP_CONTAINS ? HOW_CONTAINS : HOW_CONFIRM;
	case MR_RULE_OP_MATCH:
		return HOW_CONFIRM;
	default:
		/* !~ holds when PCRE2 finds no match and did not give up
		 * (mr-rule.h): a miss in the pass cannot tell the second, so
		 * !~ is evaluated one by one.  exists is cheap. */
		return HOW_SLOW;
	}
}

/* Returns the field of @c in @by (made when new), keyed by the field and
 * a header's name in ASCII lower case. */
static Field *
field_of(GHashTable *by, GPtrArray *fields, const MrRuleCond *c)
{
	g_autofree char *lower = c->header != NULL ? g_ascii_strdown(c->header, -1) : NULL;
	g_autofree char *key = g_strdup_printf("%d:%s", (int)c->field, lower != NULL ? lower : "");
	Field *f = g_hash_table_lookup(by, key);

	if (f != NULL)
		return f;
	f = g_new0(Field, 1);
	f->first = c;
	f->conds = g_array_new(FALSE, FALSE, sizeof(guint));
	f->dollar = g_array_new(FALSE, FALSE, sizeof(guint));
	g_hash_table_insert(by, g_steal_pointer(&key), f);
	g_ptr_array_add(fields, f);
	return f;
}

static void
equal_add(Field *f, const char *folded, guint id)
{
	GArray *ids;

	if (f->equal == NULL)
		f->equal = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
						 (GDestroyNotify)g_array_unref);
	ids = g_hash_table_lookup(f->equal, folded);
	if (ids == NULL) {
		ids = g_array_new(FALSE, FALSE, sizeof(guint));
		g_hash_table_insert(f->equal, (gpointer)folded, ids);
	}
	if (ids->len == 0 || g_array_index(ids, guint, ids->len - 1) != id)
		g_array_append_val(ids, id);
	f->equal_max = MAX(f->equal_max, strlen(folded));
}

/* Compiles the databases of @f from its conditions' needles and the
 * forms of their patterns; those Hyperscan refuses go back to HOW_SLOW. */
static void
field_compile(MrRulePrefilter *pf, Field *f, Patterns *needles, Patterns *patterns)
{
	g_autoptr(GArray) refused = g_array_new(FALSE, FALSE, sizeof(guint));

	f->needles = patterns_compile(needles, TRUE, 0, refused);
	f->patterns = patterns_compile(patterns, FALSE, PATTERN_FLAGS, refused);
	for (guint i = 0; i < refused->len; i++)
		pf->how[g_array_index(refused, guint, i)] = HOW_SLOW;
	for (guint i = 0; i < f->conds->len;) {
		if (pf->how[g_array_index(f->conds, guint, i)] == HOW_SLOW)
			g_array_remove_index(f->conds, i);
		else
			i++;
	}
	for (guint i = 0; i < f->dollar->len;) {
		if (pf->how[g_array_index(f->dollar, guint, i)] == HOW_SLOW)
			g_array_remove_index(f->dollar, i);
		else
			i++;
	}
}

/* Compiles the databases of every field of @fields (taken) into @pf,
 * keeping those left with a condition.  @forms: per condition, the form
 * of its pattern (nullable). */
static void
fields_compile(MrRulePrefilter *pf, GPtrArray *fields, char **forms)
{
	for (guint k = 0; k < fields->len; k++) {
		Field *f = g_ptr_array_index(fields, k);
		Patterns needles, patterns;

		patterns_init(&needles);
		patterns_init(&patterns);
		for (guint j = 0; j < f->conds->len; j++) {
			guint id = g_array_index(f->conds, guint, j);
			const MrRuleCond *c = g_ptr_array_index(pf->conds, id);

			if (c->op == MR_RULE_OP_MATCH)
				patterns_add(&patterns, forms[id], id);
			else if (pf->how[id] != HOW_EQUAL)
				patterns_add(&needles, c->folded[0], id);
		}
		field_compile(pf, f, &needles, &patterns);
		patterns_clear(&needles);
		patterns_clear(&patterns);
		if (f->conds->len > 0)
			g_ptr_array_add(pf->fields, f);
		else
			field_free(f);
	}
}

MrRulePrefilter *
mr_rule_prefilter_new(GPtrArray *conds)
{
	g_autoptr(GHashTable) by = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) fields = g_ptr_array_new();
	g_autoptr(GPtrArray) forms = g_ptr_array_new_with_free_func(g_free);
	MrRulePrefilter *pf;

	g_return_val_if_fail(conds != NULL, NULL);

	/* Hyperscan needs SSSE3; elsewhere every condition is evaluated */
	if (conds->len == 0 || hs_valid_platform() != HS_SUCCESS)
		return NULL;
	pf = g_new0(MrRulePrefilter, 1);
	pf->conds = g_ptr_array_ref(conds);
	pf->how = g_new0(guint8, conds->len);
	pf->fields = g_ptr_array_new_with_free_func((GDestroyNotify)field_free);
	g_ptr_array_set_size(forms, conds->len); /* the patterns' forms, by condition */
	for (guint i = 0; i < conds->len; i++) {
		const MrRuleCond *c = g_ptr_array_index(conds, i);
		How how = cond_how(c);
		gboolean dollar = FALSE;
		Field *f;

		if (how == HOW_CONFIRM && c->op == MR_RULE_OP_MATCH &&
		    !regex_read(c->values[0], (char **)&forms->pdata[i], &dollar))
			how = HOW_SLOW;
		if (how == HOW_SLOW)
			continue;
		pf->how[i] = how;
		f = field_of(by, fields, c);
		g_array_append_val(f->conds, i);
		if (dollar)
			g_array_append_val(f->dollar, i);
		if (how == HOW_EQUAL)
			for (guint j = 0; j < c->n_values; j++)
				equal_add(f, c->folded[j], i);
	}
	fields_compile(pf, fields, (char **)forms->pdata);
	for (guint k = 0; k < pf->fields->len; k++) {
		Field *f = g_ptr_array_index(pf->fields, k);
		hs_database_t *dbs[] = { f->needles, f->patterns };

		for (guint d = 0; d < G_N_ELEMENTS(dbs); d++)
			if (dbs[d] != NULL && hs_alloc_scratch(dbs[d], &pf->proto) != HS_SUCCESS) {
				mr_rule_prefilter_free(pf);
				return NULL;
			}
	}
	pf->on_hit = g_new0(guint8, conds->len);
	pf->on_miss = g_new0(guint8, conds->len);
	for (guint i = 0; i < conds->len; i++) {
		const MrRuleCond *c = g_ptr_array_index(conds, i);
		/* found: = and in hold, != does not; contains, starts, ends and ~
		 * may; not found: the other way, ~ never */
		gboolean hit = c->op != MR_RULE_OP_NE;

		pf->taken += pf->how[i] != HOW_SLOW;
		pf->on_hit[i] = hit != c->negate;
		pf->on_miss[i] = (!hit) != c->negate;
	}
	if (pf->taken == 0) {
		mr_rule_prefilter_free(pf);
		return NULL;
	}
	g_mutex_init(&pf->lock);
	pf->spare = g_ptr_array_new_with_free_func(scratch_free);
	return pf;
}

void
mr_rule_prefilter_free(MrRulePrefilter *pf)
{
	if (pf == NULL)
		return;
	if (pf->spare != NULL) {
		g_ptr_array_unref(pf->spare);
		g_mutex_clear(&pf->lock);
	}
	hs_free_scratch(pf->proto);
	g_clear_pointer(&pf->fields, g_ptr_array_unref);
	g_ptr_array_unref(pf->conds);
	g_free(pf->how);
	g_free(pf->on_hit);
	g_free(pf->on_miss);
	g_free(pf);
}

guint
mr_rule_prefilter_taken(const MrRulePrefilter *pf)
{
	return pf != NULL ? pf->taken : 0;
}

/* --- scanning ----------------------------------------------------------- */

/* Hyperscan's scratch space serves one scan at a time: a scan takes one
 * of the spares (or a clone), and gives it back.  Returns: (nullable). */
static hs_scratch_t *
scratch_take(MrRulePrefilter *pf)
{
	hs_scratch_t *s = NULL;

	g_mutex_lock(&pf->lock);
	if (pf->spare->len > 0)
		s = g_ptr_array_steal_index_fast(pf->spare, pf->spare->len - 1);
	g_mutex_unlock(&pf->lock);
	if (s == NULL && hs_clone_scratch(pf->proto, &s) != HS_SUCCESS)
		return NULL;
	return s;
}

static void
scratch_give(MrRulePrefilter *pf, hs_scratch_t *s)
{
	if (s == NULL)
		return;
	g_mutex_lock(&pf->lock);
	g_ptr_array_add(pf->spare, s);
	g_mutex_unlock(&pf->lock);
}

static int
on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
	 void *found)
{
	((guint8 *)found)[id] = 1;
	return 0;
}

/* Scans @len bytes of @s with @db (nullable: nothing to scan), marking
 * what it finds in @found.  Returns FALSE when Hyperscan fails. */
static gboolean
scan_one(const hs_database_t *db, const char *s, gsize len, hs_scratch_t *scratch, guint8 *found)
{
	if (db == NULL)
		return TRUE;
	if (scratch == NULL || len > G_MAXUINT)
		return FALSE;
	return hs_scan(db, s, (unsigned int)len, 0, scratch, on_match, found) == HS_SUCCESS;
}

static void
mark(GArray *ids, guint8 *found)
{
	for (guint i = 0; i < ids->len; i++)
		found[g_array_index(ids, guint, i)] = 1;
}

/* Returns TRUE when @s (@len bytes, valid UTF-8) ends with a newline that
 * GRegex's $ sees and Hyperscan's does not: \r, \r\n, \v, \f, NEL (U+0085),
 * LS (U+2028) or PS (U+2029). */
static gboolean
odd_end(const char *s, gsize len)
{
	static const char *const ends[] = { "\r", "\r\n", "\v", "\f", "\xc2\x85", "\xe2\x80\xa8",
					    "\xe2\x80\xa9" };

	for (guint i = 0; i < G_N_ELEMENTS(ends); i++) {
		gsize n = strlen(ends[i]);

		if (len >= n && memcmp(s + len - n, ends[i], n) == 0)
			return TRUE;
	}
	return FALSE;
}

/* Scans the texts of field @f in @v: the folded text for the table and
 * the needles, the view of mr_rule_regex_view() for the patterns.
 * Returns FALSE when Hyperscan failed. */
static gboolean
field_scan(const Field *f, const MrRuleValues *v, hs_scratch_t *scratch, guint8 *found)
{
	g_autoptr(GPtrArray) texts = mr_rule_field_texts(f->first, v);

	for (guint t = 0; t < texts->len; t++) {
		const char *s = texts->pdata[t];

		if (f->equal != NULL || f->needles != NULL) {
			g_autofree char *owned = NULL;
			const char *folded = mr_rule_fold_text(f->first, v, s, &owned);
			gsize len = strlen(folded);
			GArray *ids;

			if (f->equal != NULL && len <= f->equal_max &&
			    (ids = g_hash_table_lookup(f->equal, folded)) != NULL)
				mark(ids, found);
			if (!scan_one(f->needles, folded, len, scratch, found))
				return FALSE;
		}
		if (f->patterns != NULL) {
			g_autofree char *owned = NULL;
			const char *view;
			gboolean cut;
			gsize len = mr_rule_regex_view(s, &view, &owned, &cut);

			if (!scan_one(f->patterns, view, len, scratch, found))
				return FALSE;
			if (odd_end(view, len))
				mark(f->dollar, found);
		}
	}
	return TRUE;
}

void
mr_rule_prefilter_scan(MrRulePrefilter *pf, const MrRuleValues *values, guint8 *held)
{
	g_autofree guint8 *found = NULL;
	hs_scratch_t *scratch;

	g_return_if_fail(pf != NULL && values != NULL && held != NULL);

	found = g_new0(guint8, pf->conds->len);
	scratch = scratch_take(pf);
	for (guint k = 0; k < pf->fields->len; k++) {
		const Field *f = g_ptr_array_index(pf->fields, k);
		gboolean ok = field_scan(f, values, scratch, found);

		for (guint j = 0; j < f->conds->len; j++) {
			guint id = g_array_index(f->conds, guint, j);

			if (!ok || (found[id] && pf->how[id] == HOW_CONFIRM)) /* one by one */
				held[id] = mr_rule_cond_eval(g_ptr_array_index(pf->conds, id), values, NULL);
			else
				held[id] = found[id] ? pf->on_hit[id] : pf->on_miss[id];
		}
	}
	scratch_give(pf, scratch);
}

#endif /* Hyperscan */
