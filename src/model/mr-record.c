/* mr-record.c - record kinds and display ids.
 *
 * Model layer: no I/O, no database; the prefixes come from the
 * configuration (the lead prefix is fixed). */
#include <string.h>

#include "mailroom/mr-record.h"

#define MR_LEAD_PREFIX "LEAD"

/* The kinds with an id, in the order a display id is tried. */
static const MrRecordKind mr_record_kinds[] = {
	MR_RECORD_TICKET,
	MR_RECORD_OPPORTUNITY,
	MR_RECORD_LEAD,
};

const char *
mr_record_kind_name(MrRecordKind kind)
{
	switch (kind) {
	case MR_RECORD_LEAD:
		return "lead";
	case MR_RECORD_OPPORTUNITY:
		return "opportunity";
	case MR_RECORD_TICKET:
		return "ticket";
	case MR_RECORD_NONE:
	default:
		return NULL;
	}
}

MrRecordKind
mr_record_kind_from_name(const char *name)
{
	for (guint k = 0; k < G_N_ELEMENTS(mr_record_kinds) && name != NULL; k++)
		if (strcmp(mr_record_kind_name(mr_record_kinds[k]), name) == 0)
			return mr_record_kinds[k];
	return MR_RECORD_NONE;
}

static const char *
record_prefix(const MrConfig *cfg, MrRecordKind kind)
{
	switch (kind) {
	case MR_RECORD_OPPORTUNITY:
		return cfg->ids.opportunity_prefix;
	case MR_RECORD_TICKET:
		return cfg->ids.ticket_prefix;
	case MR_RECORD_LEAD:
		return MR_LEAD_PREFIX;
	case MR_RECORD_NONE:
	default:
		return "NONE";
	}
}

char *
mr_record_display_id(const MrConfig *cfg, MrRecordRef ref)
{
	return g_strdup_printf("%s-%" G_GINT64_FORMAT, record_prefix(cfg, ref.kind), ref.id);
}

gboolean
mr_record_parse_id_len(const MrConfig *cfg, const char *p, gsize len, MrRecordRef *out)
{
	for (guint k = 0; k < G_N_ELEMENTS(mr_record_kinds); k++) {
		const char *prefix = record_prefix(cfg, mr_record_kinds[k]);
		gsize plen = strlen(prefix);
		guint64 id = 0;
		gsize i;

		if (len < plen + 2 || g_ascii_strncasecmp(p, prefix, plen) != 0 || p[plen] != '-')
			continue;
		for (i = plen + 1; i < len && g_ascii_isdigit(p[i]); i++) {
			id = id * 10 + (guint64)(p[i] - '0');
			if (id > G_MAXINT64 / 10)
				return FALSE;
		}
		if (i != len || id == 0)
			return FALSE;
		out->kind = mr_record_kinds[k];
		out->id = (gint64)id;
		return TRUE;
	}
	return FALSE;
}

gboolean
mr_record_parse_id(const MrConfig *cfg, const char *text, MrRecordKind bare_kind,
		   MrRecordRef *out)
{
	g_return_val_if_fail(cfg != NULL && out != NULL, FALSE);
	if (text == NULL)
		return FALSE;
	if (bare_kind != MR_RECORD_NONE && *text != '\0' &&
	    strspn(text, "0123456789") == strlen(text) && strlen(text) < 18) {
		out->kind = bare_kind;
		out->id = g_ascii_strtoll(text, NULL, 10);
		return out->id > 0;
	}
	return mr_record_parse_id_len(cfg, text, strlen(text), out);
}
