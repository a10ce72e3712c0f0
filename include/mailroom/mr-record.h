/* mr-record.h - the kinds of record and their display ids.
 *
 * Model layer: the CRM's words, below the store and routing, which both
 * speak them.  A record is an inbox lead, an opportunity or a ticket; it
 * is shown as "PREFIX-id" (TKT-12, OPP-3, LEAD-7) with the prefixes of the
 * configuration, so a changed prefix shows everywhere at once. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"

G_BEGIN_DECLS

typedef enum {
	MR_RECORD_NONE,
	MR_RECORD_LEAD,
	MR_RECORD_OPPORTUNITY,
	MR_RECORD_TICKET,
} MrRecordKind;

typedef struct {
	MrRecordKind kind;
	gint64 id; /* row id; 0 with MR_RECORD_NONE */
} MrRecordRef;

/* Returns the stored name of @kind ("lead", "opportunity", "ticket": the
 * link and event kinds in the database), or NULL for MR_RECORD_NONE. */
const char *mr_record_kind_name(MrRecordKind kind);

/* Returns the kind stored as @name (see mr_record_kind_name()), or
 * MR_RECORD_NONE for NULL or a name that is none. */
MrRecordKind mr_record_kind_from_name(const char *name);

/* Formats @ref as its display id ("TKT-12", "OPP-3", "LEAD-7") with the
 * configured prefixes.  Returns: (transfer full). */
char *mr_record_display_id(const MrConfig *cfg, MrRecordRef ref);

/* Parses a display id of exactly @len bytes at @text: "TKT-12", "opp-42",
 * "LEAD-7" (any case; a positive id that fits 63 bits).  Returns TRUE and
 * sets @out when it is one.  Linear in @len. */
gboolean mr_record_parse_id_len(const MrConfig *cfg, const char *text, gsize len,
				MrRecordRef *out);

/* Parses a display id (see mr_record_parse_id_len()) or, when @bare_kind
 * is not MR_RECORD_NONE, a plain number of that kind.  Returns TRUE and
 * sets @out when @text (nullable) is one. */
gboolean mr_record_parse_id(const MrConfig *cfg, const char *text, MrRecordKind bare_kind,
			    MrRecordRef *out);

G_END_DECLS
