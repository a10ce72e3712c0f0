/* mr-verp.h - VERP envelope senders: which outgoing mail a bounce is for.
 *
 * Core.  Each mail mailroom sends goes out with the envelope sender
 * LOCAL+ID-TOKEN@DOMAIN, made from the bounce address LOCAL@DOMAIN, the
 * mail's id and a secret token kept with it, so that a delivery report
 * names the mail it is about and a stranger cannot forge one for another
 * mail without guessing its token.  Pure functions; no state. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The length of the tokens mr_verp_token_new() makes; mr_verp_format() and
 * mr_verp_parse() take MR_VERP_TOKEN_MIN to MR_VERP_TOKEN_MAX lower-case
 * hex digits. */
#define MR_VERP_TOKEN_LEN 16
#define MR_VERP_TOKEN_MIN 8
#define MR_VERP_TOKEN_MAX 16

/* Returns: (transfer full): a new token of MR_VERP_TOKEN_LEN lower-case hex
 * digits (64 bits) from the kernel's random source (getrandom(2), else
 * /dev/urandom).  Never NULL: like g_malloc() on exhausted memory, it
 * aborts when the system has no random source at all. */
char *mr_verp_token_new(void);

/* Returns TRUE when @token (nullable) is MR_VERP_TOKEN_MIN to
 * MR_VERP_TOKEN_MAX lower-case hex digits. */
gboolean mr_verp_token_valid(const char *token);

/* Returns: (transfer full) (nullable): the envelope sender for mail @id
 * (> 0) with @token (see mr_verp_token_valid()): @bounce_address's local
 * part, "+", @id in decimal, "-", @token, "@" and its domain, as
 * @bounce_address writes them ("bounces@acme.test", 5, "0123abcd" gives
 * "bounces+5-0123abcd@acme.test"); NULL when @bounce_address is not
 * LOCAL@DOMAIN with one '@', both parts non-empty and without white space
 * or control characters. */
char *mr_verp_format(const char *bounce_address, gint64 id, const char *token);

/* Reads @address, an envelope recipient (any case; no angle brackets, no
 * surrounding white space), as mr_verp_format() writes them for
 * @bounce_address.  Returns TRUE, with @id_out (nullable) set to the id
 * (> 0; leading zeros are read, a value past G_MAXINT64 is refused) and
 * @token_out (nullable; transfer full) to the token, lower-cased, when
 * @address is exactly @bounce_address's local part + "+" + decimal digits
 * + "-" + a token + "@" + its domain (local parts and domains compared in
 * mailroom's normal form, mr_address_normalise()); else FALSE and the
 * outputs untouched.  The caller compares the token with the one it
 * stored, with mr_verp_token_equal(). */
gboolean mr_verp_parse(const char *address, const char *bounce_address, gint64 *id_out,
		       char **token_out);

/* Returns TRUE when the tokens @a and @b (nullable) are equal, in a time
 * that depends on their lengths alone, not on where they differ; FALSE
 * when either is NULL. */
gboolean mr_verp_token_equal(const char *a, const char *b);

G_END_DECLS
