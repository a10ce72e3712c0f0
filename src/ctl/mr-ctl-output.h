/* mr-ctl-output.h - what mailroomctl prints: the store's rows as JSON
 * objects (the documented field names and record ids), and those objects
 * as JSON or as tables for people.  Private to src/ctl/. */
#pragma once

#include <json-glib/json-glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-store.h"

/* Makes a JSON object of one row of the store; @cfg formats record ids. */
typedef JsonObject *(*MrCtlRowJson)(const MrConfig *cfg, gconstpointer row);

/* Each makes the JSON object of one row (the struct its name says:
 * MrUserRow, MrContactRow, ...).  Returns: (transfer full). */
JsonObject *mr_ctl_json_user(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_contact(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_account(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_lead(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_opportunity(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_ticket(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_message(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_message_detail(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_message_brief(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_timeline_entry(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_event(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_mailbox(const MrConfig *cfg, gconstpointer row);
JsonObject *mr_ctl_json_quarantine(const MrConfig *cfg, gconstpointer row);

/* Returns: (transfer full): an array of @to_json of each of @rows. */
JsonArray *mr_ctl_json_rows(const MrConfig *cfg, const GPtrArray *rows, MrCtlRowJson to_json);

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
