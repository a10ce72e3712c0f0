/* mr-ctl-output.h - what mailroomctl prints: the store's rows as JSON
 * objects (the documented field names and record ids), and those objects
 * as JSON or as tables for people.  Private to src/ctl/. */
#pragma once

#include <json-glib/json-glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-mailbox.h"
#include "mailroom/mr-store-message.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"

/* Returns: (transfer full): the JSON object of @row, a struct of @desc
 * (mr-row.h): its named fields, in order, and the members the CLI
 * computes for its kind (deprecated aliases, a message's parts); @cfg
 * formats record ids ("TKT-12"). */
JsonObject *mr_ctl_json_row(const MrConfig *cfg, const MrRowDesc *desc, gconstpointer row);

/* Returns: (transfer full): an array of mr_ctl_json_row() of each of
 * @rows, structs of @desc. */
JsonArray *mr_ctl_json_rows(const MrConfig *cfg, const GPtrArray *rows, const MrRowDesc *desc);

/* Makes the sentence of each of @events (element-type MrEvent), its
 * summary, with the record prefixes of @cfg (mr_event_describe()). */
void mr_ctl_describe_events(const MrConfig *cfg, GPtrArray *events);

/* Makes the subject of each event of the timeline @entries (element-type
 * MrTimelineEntry): its sentence, as mr_ctl_describe_events() does. */
void mr_ctl_describe_timeline(const MrConfig *cfg, GPtrArray *entries);

/* For people: turns the team object @o (mr_ctl_json_row() of an
 * MrTeamRow) into one string of members, each away marked "(away)", in
 * place of the arrays members and away. */
void mr_ctl_team_for_people(JsonObject *o);

/* Prints @a / @o as pretty JSON (strings made valid UTF-8) on stdout. */
void mr_ctl_print_json_array(JsonArray *a);
void mr_ctl_print_json_object(JsonObject *o);

/* Prints the members @columns (NULL-terminated) of the objects @rows as a
 * table with a header line; each cell one line, its control characters
 * shown as text (mr_text_printable()), as in every text mailroomctl prints
 * for people (mr_text_fprintf()).  JSON is printed as it is: its strings
 * are escaped already. */
void mr_ctl_print_table(JsonArray *rows, const char *const *columns);

/* Prints the scalar members of @o as "key: value" lines, then its array
 * "messages" as a table. */
void mr_ctl_print_object(JsonObject *o);
