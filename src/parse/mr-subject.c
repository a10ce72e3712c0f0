/* mr-subject.c - strip reply and forward prefixes from a subject.
 *
 * Parse stage.  The normalised subject is what threads and record titles
 * match on, so "AW: WG: Angebot" and "Angebot" must come out the same. */
#define G_LOG_DOMAIN "mailroom-parse"

#include <string.h>

#include "mr-parse-private.h"

/* The prefixes mail clients put in front of a subject, by language.
 * SV is the Danish/Norwegian/Swedish reply ("svar").  VS is a reply in
 * Finnish ("vastaus") but a forward in Danish and Norwegian ("videresendt");
 * it counts as a forward here, as the larger of the two user bases writes it
 * that way and a forward flag only makes routing look for an original
 * sender, which it will not find in a Finnish reply anyway. */
static const struct {
	const char *word;
	gboolean forward;
} subject_prefixes[] = {
	{ "re", FALSE },     /* English, Latin "in re" */
	{ "aw", FALSE },     /* German "Antwort" */
	{ "sv", FALSE },     /* Danish, Norwegian, Swedish "svar" */
	{ "antw", FALSE },   /* Dutch "antwoord" */
	{ "odp", FALSE },    /* Polish "odpowiedź" */
	{ "rif", FALSE },    /* Italian "riferimento" */
	{ "fwd", TRUE },     /* English */
	{ "fw", TRUE },      /* English (Outlook) */
	{ "wg", TRUE },      /* German "weitergeleitet" */
	{ "tr", TRUE },      /* French "transféré" */
	{ "rv", TRUE },      /* Spanish "reenviado" */
	{ "vs", TRUE },      /* Danish, Norwegian "videresendt" (see above) */
	{ "vb", TRUE },      /* Swedish "vidarebefordrat" */
	{ "vl", TRUE },      /* Finnish "välitetty" */
	{ "enc", TRUE },     /* Portuguese "encaminhado" */
	{ "doorst", TRUE },  /* Dutch "doorgestuurd" */
};

#define SUBJECT_FULLWIDTH_COLON "\xef\xbc\x9a" /* U+FF1A */

static const char *
subject_skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* Returns the end of the prefix ("Re", "Re[2]", "Re (3)", then ":" or "：")
 * at @p and sets *@forward, or returns NULL when @p starts with none.  The
 * word must end where the letters end, so "Review:" is not "Re". */
static const char *
subject_match_prefix(const char *p, gboolean *forward)
{
	const char *word_end = p;
	gsize len;
	guint i;

	while (g_ascii_isalpha(*word_end))
		word_end++;
	len = (gsize)(word_end - p);
	for (i = 0; i < G_N_ELEMENTS(subject_prefixes); i++)
		if (strlen(subject_prefixes[i].word) == len &&
		    g_ascii_strncasecmp(p, subject_prefixes[i].word, len) == 0)
			break;
	if (len == 0 || i == G_N_ELEMENTS(subject_prefixes))
		return NULL;

	p = subject_skip_space(word_end);
	if (*p == '[' || *p == '(') {
		char close = *p == '[' ? ']' : ')';
		const char *digits = ++p;

		while (g_ascii_isdigit(*p))
			p++;
		if (p == digits || *p != close)
			return NULL;
		p = subject_skip_space(p + 1);
	}
	if (*p == ':')
		p++;
	else if (strncmp(p, SUBJECT_FULLWIDTH_COLON, strlen(SUBJECT_FULLWIDTH_COLON)) == 0)
		p += strlen(SUBJECT_FULLWIDTH_COLON);
	else
		return NULL;
	*forward = subject_prefixes[i].forward;
	return p;
}

char *
mr_parse_subject_strip(const char *subject, gboolean *was_forward, gboolean *was_reply)
{
	gboolean forward = FALSE;
	gboolean reply = FALSE;
	const char *p;
	const char *next;
	const char *end;
	gboolean f;

	g_return_val_if_fail(subject != NULL, NULL);

	p = subject_skip_space(subject);
	while ((next = subject_match_prefix(p, &f)) != NULL) {
		if (f)
			forward = TRUE;
		else
			reply = TRUE;
		p = subject_skip_space(next);
	}
	end = p + strlen(p);
	while (end > p && g_ascii_isspace(end[-1]))
		end--;
	if (was_forward != NULL)
		*was_forward = forward;
	if (was_reply != NULL)
		*was_reply = reply;
	return g_strndup(p, (gsize)(end - p));
}

char *
mr_subject_normalise(const char *subject, gboolean *was_forward)
{
	return mr_parse_subject_strip(subject, was_forward, NULL);
}
