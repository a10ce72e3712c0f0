/* mr-parse-private.h - helpers shared by the files of the parse stage.
 *
 * Parse stage only; nothing outside src/parse/ includes this.  Brings in
 * GMime and, after it, the g_autoptr() cleanups for GMime types. */
#pragma once

#include <gmime/gmime.h>

#include "mailroom/mr-autocleanups.h"
#include "mailroom/mr-parse.h"

G_BEGIN_DECLS

/* Returns: (transfer full): a new address; @name (nullable) is kept when it
 * is not empty, @addr (nullable) is lower-cased.  Both are made valid UTF-8. */
MrAddress *mr_parse_address_new(const char *name, const char *addr);

/* Appends an MrAddress for every mailbox of @list to @out, flattening
 * groups. */
void mr_parse_address_list_flatten(InternetAddressList *list, GPtrArray *out);

/* Appends a problem to *@problems (created when NULL), "; " between two:
 * what the parse found broken, in the words MrMessage.problem shows. */
void mr_parse_note(GString **problems, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* Returns: (transfer full) (nullable): @value (a raw header value, folded
 * or not) with each run of adjacent base64 encoded-words of one charset
 * merged into a single encoded-word, or NULL when @value has no run that
 * needs it.  Works around GMime 3.2, which decodes such a run as one base64
 * stream and so drops everything after a word that ends in '=' padding. */
char *mr_parse_rfc2047_merge(const char *value);

/* Like mr_subject_normalise(); also sets *@was_reply (nullable) when a reply
 * prefix was stripped. */
char *mr_parse_subject_strip(const char *subject, gboolean *was_forward, gboolean *was_reply);

/* Like mr_parse_find_inline_forward() (@subject_out may be NULL); also sets
 * *@ambiguous_out (nullable) when the block's separator ("-----Original
 * Message-----" and its kin) is one mailers also put above quoted replies. */
gboolean mr_parse_forward_scan(const char *body, MrAddress **from_out, char **subject_out,
			       gboolean *ambiguous_out);

/* Bytes [@start, @end) of a message that GMime is not given. */
typedef struct {
	gsize start;
	gsize end;
} MrParseCut;

/* What mr_parse_limits_scan() decided. */
typedef struct {
	gsize len;     /* parse the first @len bytes only */
	GArray *cuts;  /* (nullable): MrParseCut, in order, all below @len:
	                  the rest of a field past max_header_size, of
	                  address fields past max_addresses */
	char *problem; /* (nullable): what was left out, and why */
} MrParseBudget;

/* Counts, in one pass over @data (@len bytes, the message as GMime would
 * read it), the lines that may begin a MIME part, the header fields (of
 * the message, its parts and attached messages) and the mailboxes of the
 * address fields, against the limits of @max (resolved: none is 0), and
 * fills @out (cleared first) with what to parse.  Free with
 * mr_parse_budget_clear(). */
void mr_parse_limits_scan(const guint8 *data, gsize len, const MrParseOptions *max,
			  MrParseBudget *out);

/* Frees what @budget owns; NULL-safe. */
void mr_parse_budget_clear(MrParseBudget *budget);

/* Returns: (transfer full): the first @budget->len bytes of @data without
 * @budget->cuts (which must not be NULL). */
GByteArray *mr_parse_budget_apply(const guint8 *data, const MrParseBudget *budget);

/* Calls @func with a GMime stream over what the limits @max (resolved)
 * let GMime see of the @len (at most G_MAXUINT) bytes at @data: the first
 * budget->len bytes, read in place, or a copy without the cut bytes.
 * What was left out is noted in *@problems (nullable) first.  The stream
 * and every part's content substream read those bytes, so whatever reads
 * a part does so within @func. */
void mr_parse_limited(const guint8 *data, gsize len, const MrParseOptions *max, GString **problems,
		      void (*func)(GMimeStream *stream, gpointer user_data), gpointer user_data);

G_END_DECLS
