/* mr-loop.c - may mailroom answer this message automatically?
 *
 * Route stage.  A pure decision (mr-loop.h has the list and its order):
 * one pass over the message's header fields, then its addresses.  Owns
 * nothing but the reason it returns. */
#define G_LOG_DOMAIN "mailroom-route"

#include <string.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-loop.h"

/* Bytes of a header value or an address quoted in a reason. */
#define LOOP_QUOTE_MAX 64

/* Returns: (transfer full): @s (nullable: "") as one line of printable
 * text: valid UTF-8, each control character a '?', at most @max bytes
 * (cut between characters). */
static char *
loop_printable(const char *s, gsize max)
{
	g_autofree char *valid = g_utf8_make_valid(s != NULL ? s : "", -1);
	GString *out = g_string_new(NULL);

	for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		gsize n = (gsize)(g_utf8_next_char(p) - p);

		if (g_unichar_iscntrl(c)) {
			c = '?';
			n = 1;
		}
		if (out->len + n > max)
			break;
		g_string_append_unichar(out, c);
	}
	return g_string_free(out, FALSE);
}

/* The classifiers of the header fields of automatic mail: each returns
 * what a message with @v (trimmed) is, or NULL when the value does not
 * make it automatic. */

static const char *
loop_auto_submitted(const char *v)
{
	/* RFC 3834 section 5: "no", maybe with a comment or parameters. */
	if (g_ascii_strncasecmp(v, "no", 2) == 0 &&
	    (v[2] == '\0' || v[2] == ';' || v[2] == '(' || g_ascii_isspace(v[2])))
		return NULL;
	return g_ascii_strncasecmp(v, "auto-replied", 12) == 0 ? "auto-reply" : "automatic mail";
}

static const char *
loop_flag(const char *v)
{
	return g_ascii_strcasecmp(v, "no") == 0 || g_ascii_strcasecmp(v, "false") == 0 ? NULL : "auto-reply";
}

/* Exchange's X-Auto-Response-Suppress: the sender asks for no automatic
 * answer of these kinds; mailroom's answers are of all of them. */
static const char *
loop_suppress(const char *v)
{
	static const char *const kinds[] = { "All", "AutoReply", "OOF", "DR", "NDR", "RN", "NRN" };
	g_auto(GStrv) tokens = g_strsplit_set(v, ", \t;", -1);

	for (guint i = 0; tokens[i] != NULL; i++)
		for (guint k = 0; k < G_N_ELEMENTS(kinds); k++)
			if (g_ascii_strcasecmp(tokens[i], kinds[k]) == 0)
				return "auto-answers suppressed";
	return NULL;
}

static const char *
loop_precedence(const char *v)
{
	if (g_ascii_strcasecmp(v, "bulk") == 0 || g_ascii_strcasecmp(v, "junk") == 0)
		return "bulk mail";
	if (g_ascii_strcasecmp(v, "list") == 0)
		return "list mail";
	return g_ascii_strcasecmp(v, "auto_reply") == 0 ? "auto-reply" : NULL;
}

static const char *
loop_list(const char *v)
{
	return "list mail";
}

static const char *
loop_generated(const char *v)
{
	return "automatic mail";
}

/* In order: the first rule that refuses decides, whichever field comes
 * first in the message. */
static const struct {
	const char *header;
	const char *(*classify)(const char *value);
	gboolean quote;  /* the value goes into the reason */
} loop_rules[] = {
	{ "Auto-Submitted", loop_auto_submitted, TRUE },
	{ "X-Autoreply", loop_flag, TRUE },
	{ "X-Autorespond", loop_flag, TRUE },
	{ "X-Auto-Response-Suppress", loop_suppress, TRUE },
	{ "Precedence", loop_precedence, TRUE },
	{ "List-Id", loop_list, FALSE },
	{ "List-Unsubscribe", loop_list, FALSE },
	{ "X-MS-Exchange-Generated-Message-Source", loop_generated, TRUE },
};

/* Reads the header fields of @msg in one pass: sets *@loop_out (transfer
 * full) to the reason MR_LOOP_HEADER gives, else *@auto_out (transfer
 * full) to the reason of the first rule of loop_rules that refuses; each
 * NULL when none. */
static void
loop_headers(const MrMessage *msg, char **loop_out, char **auto_out)
{
	const MrHeader *found = NULL;
	const char *kind = NULL;
	guint best = G_N_ELEMENTS(loop_rules);
	g_autofree char *trimmed = NULL;
	g_autofree char *value = NULL;

	*loop_out = *auto_out = NULL;
	if (msg->headers == NULL)
		return;
	for (guint i = 0; i < msg->headers->len; i++) {
		const MrHeader *h = g_ptr_array_index(msg->headers, i);

		if (g_ascii_strcasecmp(h->name, MR_LOOP_HEADER) == 0) {
			g_autofree char *host = loop_printable(h->value, LOOP_QUOTE_MAX);

			*loop_out = g_strdup_printf("sent by mailroom (%s: %s)", MR_LOOP_HEADER, host);
			return;
		}
		for (guint r = 0; r < best; r++) {
			g_autofree char *v = NULL;
			const char *k;

			if (g_ascii_strcasecmp(h->name, loop_rules[r].header) != 0)
				continue;
			v = g_strstrip(g_strdup(h->value != NULL ? h->value : ""));
			if ((k = loop_rules[r].classify(v)) != NULL) {
				best = r;
				found = h;
				kind = k;
			}
			break;
		}
	}
	if (found == NULL)
		return;
	if (!loop_rules[best].quote) {
		*auto_out = g_strdup_printf("%s (%s)", kind, loop_rules[best].header);
		return;
	}
	trimmed = g_strstrip(g_strdup(found->value != NULL ? found->value : ""));
	value = loop_printable(trimmed, LOOP_QUOTE_MAX);
	*auto_out = g_strdup_printf("%s (%s: %s)", kind, loop_rules[best].header, value);
}

static const char *
loop_auto_kind(MrAutoKind kind)
{
	switch (kind) {
	case MR_AUTO_REPLY:
		return "auto-reply";
	case MR_AUTO_BULK:
		return "bulk mail";
	case MR_AUTO_BOUNCE:
		return "delivery report";
	case MR_AUTO_NONE:
	default:
		return NULL;
	}
}

/* Separators around the words of loop_words (a plus detail, the '=' of
 * BATV and SRS tags), and those that may stand inside one. */
#define LOOP_AROUND "-_.+="
#define LOOP_INSIDE "-_."

/* The local parts of addresses nobody reads, as their parts. */
static const char *const loop_words[][3] = {
	{ "no", "reply" }, { "do", "not", "reply" }, { "mailer", "daemon" },
	{ "postmaster" },  { "bounce" },             { "bounces" },
};

/* Returns the end of @word (its parts, one of LOOP_INSIDE maybe between
 * two) when @p begins with it, else NULL. */
static const char *
loop_word_at(const char *p, const char *const *word)
{
	for (guint k = 0; k < 3 && word[k] != NULL; k++) {
		gsize n = strlen(word[k]);

		if (k > 0 && *p != '\0' && strchr(LOOP_INSIDE, *p) != NULL)
			p++;
		if (g_ascii_strncasecmp(p, word[k], n) != 0)
			return NULL;
		p += n;
	}
	return p;
}

/* Returns TRUE when the local part of @address (up to its last '@') holds
 * one of loop_words as a separator-delimited piece. */
static gboolean
loop_unread_local_part(const char *address)
{
	const char *at = strrchr(address, '@');
	g_autofree char *local = g_strndup(address, at != NULL ? (gsize)(at - address) : strlen(address));

	for (const char *p = local; *p != '\0'; p++) {
		if (p != local && strchr(LOOP_AROUND, p[-1]) == NULL)
			continue;
		for (guint w = 0; w < G_N_ELEMENTS(loop_words); w++) {
			const char *end = loop_word_at(p, loop_words[w]);

			if (end != NULL && (*end == '\0' || strchr(LOOP_AROUND, *end) != NULL))
				return TRUE;
		}
	}
	return FALSE;
}

/* Returns: (transfer full) (nullable): @envelope_from without white space
 * and angle brackets, normalised; "" for the null reverse-path; NULL for
 * NULL. */
static char *
loop_envelope(const char *envelope_from)
{
	g_autofree char *s = NULL;
	gsize len;

	if (envelope_from == NULL)
		return NULL;
	s = g_strstrip(g_strdup(envelope_from));
	len = strlen(s);
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		s[len - 1] = '\0';
		return mr_address_normalise(s + 1);
	}
	return mr_address_normalise(s);
}

static const char *
loop_domain(const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;

	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

static char *
loop_because(const char *what, const char *text)
{
	g_autofree char *quoted = loop_printable(text, LOOP_QUOTE_MAX);

	return g_strdup_printf("%s %s", what, quoted);
}

char *
mr_loop_refusal(const MrConfig *cfg, const MrMessage *msg, const char *envelope_from)
{
	g_autofree char *envelope = loop_envelope(envelope_from);
	const char *from = msg != NULL && msg->from != NULL && *msg->from->email != '\0' ? msg->from->email : NULL;
	const char *reply_to = msg != NULL && msg->reply_to != NULL ? msg->reply_to->email : NULL;
	g_autofree char *loop = NULL;
	g_autofree char *automatic = NULL;
	const char *domain;

	g_return_val_if_fail(cfg != NULL && msg != NULL, NULL);

	loop_headers(msg, &loop, &automatic);
	if (loop != NULL)
		return g_steal_pointer(&loop);
	if (envelope != NULL && *envelope == '\0')
		return g_strdup("null envelope sender");
	if (automatic != NULL)
		return g_steal_pointer(&automatic);
	if (loop_auto_kind(msg->auto_kind) != NULL) {
		g_autofree char *why = loop_printable(msg->auto_reason, 2 * LOOP_QUOTE_MAX);

		return g_strdup_printf("%s (%s)", loop_auto_kind(msg->auto_kind), why);
	}
	if (envelope != NULL && loop_unread_local_part(envelope))
		return loop_because("envelope sender", envelope);
	if (from != NULL && loop_unread_local_part(from))
		return loop_because("sender", from);
	if (reply_to != NULL && *reply_to != '\0' && loop_unread_local_part(reply_to))
		return loop_because("reply-to", reply_to);
	if (envelope != NULL && mr_config_find_address(cfg, envelope, NULL) != NULL)
		return loop_because("mailroom address", envelope);
	if (from != NULL && mr_config_find_address(cfg, from, NULL) != NULL)
		return loop_because("mailroom address", from);
	domain = loop_domain(from != NULL ? from : envelope);
	if (domain != NULL && mr_config_is_own_domain(cfg, domain))
		return loop_because("own domain", domain);
	return NULL;
}
