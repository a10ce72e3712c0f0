/* mr-text.h - text from outside (a server's NO reason, a helper's standard
 * error, a sender's subject) made safe to show on a terminal. */
#pragma once

#include <glib.h>
#include <stdio.h>

G_BEGIN_DECLS

/* Returns: (transfer full): the first @len bytes of @s (-1: up to its NUL)
 * as valid UTF-8 (U+FFFD for bad bytes) in which every control character
 * is shown as text, so that a terminal runs none of them: C0 characters
 * and DEL as "\x1b", C1 characters (U+0080 to U+009F) as "\u009b".  With
 * @keep_lines, line feeds and tabs stay as they are (a multi-line text);
 * a carriage return is always shown.  Other text, backslashes included,
 * is unchanged. */
char *mr_text_printable(const char *s, gssize len, gboolean keep_lines);

/* Returns: (transfer full): @s (nullable: "") for an error message: at
 * most its first @max bytes (cut at a character boundary, "..." added
 * when cut) through mr_text_printable() without lines. */
char *mr_text_shown(const char *s, gsize max);

/* Prints what @fmt makes to @out, through mr_text_printable() with line
 * feeds and tabs kept: how the programs print text for people (the
 * control characters of the text they are given are shown, not sent). */
void mr_text_fprintf(FILE *out, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

G_END_DECLS
