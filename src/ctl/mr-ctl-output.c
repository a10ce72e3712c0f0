/* mr-ctl-output.c - what mailroomctl prints: rows of the store as JSON
 * objects, and JSON or tables on standard output.
 *
 * ctl.  The field names and the formatting of record ids ("TKT-12") made
 * here are the CLI's contract (docs/cli.md). */
#define G_LOG_DOMAIN "mailroom-ctl"

#include <stdio.h>
#include <string.h>

#include "mailroom/mr-route.h"
#include "mailroom/mr-text.h"

#include "mr-ctl-output.h"

/* --- rows as JSON ---------------------------------------------------------- */

/* Sets @key to the string @value, or to null when @value is NULL. */
static void
set_text(JsonObject *o, const char *key, const char *value)
{
	if (value != NULL)
		json_object_set_string_member(o, key, value);
	else
		json_object_set_null_member(o, key);
}

/* Sets @key to an array of the sentences of @events (element-type MrEvent). */
static void
set_sentences(JsonObject *o, const MrConfig *cfg, const char *key, const GPtrArray *events)
{
	JsonArray *a = json_array_new();

	for (guint i = 0; events != NULL && i < events->len; i++) {
		const MrEvent *e = g_ptr_array_index(events, i);
		g_autofree char *text = mr_event_describe(cfg, e->type, e->record, &e->facts);

		json_array_add_string_element(a, text);
	}
	json_object_set_array_member(o, key, a);
}

/* Sets @key to the display id of @ref ("OPP-4"), or null when @ref.id is 0. */
static void
set_record(JsonObject *o, const MrConfig *cfg, const char *key, MrRecordRef ref)
{
	g_autofree char *display = NULL;

	if (ref.id == 0 || ref.kind == MR_RECORD_NONE) {
		json_object_set_null_member(o, key);
		return;
	}
	display = mr_record_display_id(cfg, ref);
	json_object_set_string_member(o, key, display);
}

/* Sets @key to the words @v joined by spaces, or null when there are none
 * (the documented string form of lists such as "delivered_to"). */
static void
set_joined(JsonObject *o, const char *key, char *const *v)
{
	g_autofree char *joined = NULL;

	if (v == NULL || v[0] == NULL) {
		json_object_set_null_member(o, key);
		return;
	}
	joined = g_strjoinv(" ", (char **)v);
	json_object_set_string_member(o, key, joined);
}

/* Sets @key to an array of the strings @v. */
static void
set_strings(JsonObject *o, const char *key, char *const *v)
{
	JsonArray *a = json_array_new();

	for (guint i = 0; v != NULL && v[i] != NULL; i++)
		json_array_add_string_element(a, v[i]);
	json_object_set_array_member(o, key, a);
}

/* Sets @key to an array of the display ids of the records @refs. */
static void
set_records(JsonObject *o, const MrConfig *cfg, const char *key, const GArray *refs)
{
	JsonArray *a = json_array_new();

	for (guint i = 0; refs != NULL && i < refs->len; i++) {
		g_autofree char *display =
			mr_record_display_id(cfg, g_array_index(refs, MrRecordRef, i));

		json_array_add_string_element(a, display);
	}
	json_object_set_array_member(o, key, a);
}

/* Sets @key to the number @value, or to null when @none. */
static void
set_int(JsonObject *o, const char *key, gint64 value, gboolean none)
{
	if (none)
		json_object_set_null_member(o, key);
	else
		json_object_set_int_member(o, key, value);
}

/* Sets the member of field @f of @row (mr-row.h says what each type is
 * in JSON). */
static void
set_field(JsonObject *o, const MrConfig *cfg, const MrRowField *f, gconstpointer row)
{
	gconstpointer m = (const char *)row + f->offset;

	switch (f->type) {
	case MR_ROW_TEXT:
		set_text(o, f->name, *(char *const *)m);
		break;
	case MR_ROW_INT64:
		set_int(o, f->name, *(const gint64 *)m, FALSE);
		break;
	case MR_ROW_ID:
		set_int(o, f->name, *(const gint64 *)m, *(const gint64 *)m == 0);
		break;
	case MR_ROW_AMOUNT:
		set_int(o, f->name, *(const gint64 *)m, *(const gint64 *)m < 0);
		break;
	case MR_ROW_BOOL:
		set_int(o, f->name, *(const gboolean *)m ? 1 : 0, FALSE);
		break;
	case MR_ROW_FLAG:
		json_object_set_boolean_member(o, f->name, *(const gboolean *)m);
		break;
	case MR_ROW_WORDS:
		set_joined(o, f->name, *(char **const *)m);
		break;
	case MR_ROW_LINES:
		set_strings(o, f->name, *(char **const *)m);
		break;
	case MR_ROW_RECORD_ID: {
		MrRecordRef ref = { f->kind, *(const gint64 *)m };

		set_record(o, cfg, f->name, ref);
		break;
	}
	case MR_ROW_RECORD_REF:
		set_record(o, cfg, f->name, *(const MrRecordRef *)m);
		break;
	case MR_ROW_RECORD_REFS:
		set_records(o, cfg, f->name, *(GArray *const *)m);
		break;
	case MR_ROW_PART:
		g_assert_not_reached();
	}
}

/* The members the CLI computes for a kind of row, beyond its fields. */

static void
json_message_date(const MrConfig *cfg, gconstpointer row, JsonObject *o)
{
	const MrMessageRow *r = row;

	/* Deprecated (docs/cli.md, "Field names"): here it was the Date: header. */
	set_text(o, "date", r->date);
}

static void
json_brief_date(const MrConfig *cfg, gconstpointer row, JsonObject *o)
{
	const MrMessageBrief *r = row;

	/* Deprecated (docs/cli.md, "Field names"): here it was the arrival. */
	set_text(o, "date", r->received);
}

/* What message show adds: the parties, headers, attachments, deliveries
 * and refusals, each read by a statement of its own. */
static void
json_message_detail(const MrConfig *cfg, gconstpointer row, JsonObject *o)
{
	const MrMessageDetail *d = row;

	set_strings(o, "contacts", d->contacts);
	set_strings(o, "accounts", d->accounts);
	set_strings(o, "users", d->users);
	json_object_set_array_member(o, "addresses",
				     mr_ctl_json_rows(cfg, d->addresses, &mr_address_row_desc));
	json_object_set_array_member(o, "attachments",
				     mr_ctl_json_rows(cfg, d->attachments,
						      &mr_attachment_row_desc));
	json_object_set_array_member(o, "deliveries",
				     mr_ctl_json_rows(cfg, d->deliveries, &mr_delivery_row_desc));
	{
		/* the rules that fired, delivery after delivery */
		JsonArray *rules = json_array_new();

		for (guint i = 0; i < d->deliveries->len; i++) {
			const MrDeliveryRow *r = g_ptr_array_index(d->deliveries, i);

			for (char **n = r->rules; n != NULL && *n != NULL; n++)
				json_array_add_string_element(rules, *n);
		}
		json_object_set_array_member(o, "rules", rules);
	}
	set_sentences(o, cfg, "refused", d->refused);
}

static const struct {
	const MrRowDesc *desc;
	const char *after; /* the field the members follow; NULL: the last */
	void (*add)(const MrConfig *cfg, gconstpointer row, JsonObject *o);
} ctl_computed[] = {
	{ &mr_message_row_desc, "sent", json_message_date },
	{ &mr_message_brief_desc, NULL, json_brief_date },
	{ &mr_message_detail_desc, NULL, json_message_detail },
};

/* Sets the members of @row, a struct of @desc, in the order of its
 * fields (those of a part in its place), with the computed ones. */
static void
set_row(JsonObject *o, const MrConfig *cfg, const MrRowDesc *desc, gconstpointer row)
{
	guint c = 0;

	while (c < G_N_ELEMENTS(ctl_computed) && ctl_computed[c].desc != desc)
		c++;
	for (guint i = 0; i < desc->n_fields; i++) {
		const MrRowField *f = &desc->fields[i];

		if (f->type == MR_ROW_PART)
			set_row(o, cfg, f->part, (const char *)row + f->offset);
		else if (f->name != NULL)
			set_field(o, cfg, f, row);
		if (c < G_N_ELEMENTS(ctl_computed) && f->name != NULL &&
		    g_strcmp0(ctl_computed[c].after, f->name) == 0)
			ctl_computed[c].add(cfg, row, o);
	}
	if (c < G_N_ELEMENTS(ctl_computed) && ctl_computed[c].after == NULL)
		ctl_computed[c].add(cfg, row, o);
}

JsonObject *
mr_ctl_json_row(const MrConfig *cfg, const MrRowDesc *desc, gconstpointer row)
{
	JsonObject *o = json_object_new();

	set_row(o, cfg, desc, row);
	return o;
}

JsonArray *
mr_ctl_json_rows(const MrConfig *cfg, const GPtrArray *rows, const MrRowDesc *desc)
{
	JsonArray *a = json_array_new();

	for (guint i = 0; i < rows->len; i++)
		json_array_add_object_element(a, mr_ctl_json_row(cfg, desc,
								  g_ptr_array_index(rows, i)));
	return a;
}

/* --- events as sentences ------------------------------------------------------ */

/* The store keeps what an event says as typed fields; its sentence is made
 * here, when it is shown, so that the record ids in it carry the prefixes
 * configured now (docs/cli.md, "event list"). */

void
mr_ctl_describe_events(const MrConfig *cfg, GPtrArray *events)
{
	for (guint i = 0; i < events->len; i++) {
		MrEvent *e = g_ptr_array_index(events, i);

		g_free(e->summary);
		e->summary = mr_event_describe(cfg, e->type, e->record, &e->facts);
	}
}

void
mr_ctl_describe_timeline(const MrConfig *cfg, GPtrArray *entries)
{
	for (guint i = 0; i < entries->len; i++) {
		MrTimelineEntry *e = g_ptr_array_index(entries, i);

		/* a message, or one mailroom sent: no event to describe */
		if (g_strcmp0(e->kind, "message") == 0 || g_strcmp0(e->kind, "message.out") == 0)
			continue;
		g_free(e->subject);
		e->subject = mr_event_describe(cfg, mr_event_type_from_name(e->kind), e->record,
					       &e->facts);
	}
}

/* --- for people ------------------------------------------------------------- */

void
mr_ctl_team_for_people(JsonObject *o)
{
	JsonArray *members = json_object_get_array_member(o, "members");
	JsonArray *away = json_object_get_array_member(o, "away");
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; members != NULL && i < json_array_get_length(members); i++) {
		const char *m = json_array_get_string_element(members, i);
		gboolean is_away = FALSE;

		for (guint k = 0; away != NULL && k < json_array_get_length(away); k++)
			is_away = is_away || g_strcmp0(json_array_get_string_element(away, k), m) == 0;
		g_string_append_printf(out, "%s%s%s", i > 0 ? " " : "", m, is_away ? " (away)" : "");
	}
	json_object_set_string_member(o, "members", out->str);
	json_object_remove_member(o, "away");
}

/* --- printing --------------------------------------------------------------- */

/* Makes every string in @node valid UTF-8 (U+FFFD for bad bytes): the
 * database keeps what senders sent, and JSON must be UTF-8 (RFC 8259 8.1). */
static void
json_make_valid(JsonNode *node)
{
	if (JSON_NODE_HOLDS_OBJECT(node)) {
		g_autoptr(GList) members = json_object_get_members(json_node_get_object(node));

		for (GList *m = members; m != NULL; m = m->next)
			json_make_valid(json_object_get_member(json_node_get_object(node), m->data));
	} else if (JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *a = json_node_get_array(node);

		for (guint i = 0; i < json_array_get_length(a); i++)
			json_make_valid(json_array_get_element(a, i));
	} else if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING &&
		   !g_utf8_validate(json_node_get_string(node), -1, NULL)) {
		g_autofree char *valid = g_utf8_make_valid(json_node_get_string(node), -1);

		json_node_set_string(node, valid);
	}
}

static void
print_json(JsonNode *node)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree char *text = NULL;

	json_make_valid(node);
	json_generator_set_pretty(gen, TRUE);
	json_generator_set_root(gen, node);
	text = json_generator_to_data(gen, NULL);
	fputs(text, stdout);
	fputc('\n', stdout);
}

void
mr_ctl_print_json_array(JsonArray *a)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_ARRAY);

	json_node_set_array(node, a);
	print_json(node);
}

void
mr_ctl_print_json_object(JsonObject *o)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

	json_node_set_object(node, o);
	print_json(node);
}

/* Renders member @key of @o as text for a table cell. */
static char *
cell_text(JsonObject *o, const char *key)
{
	JsonNode *n = json_object_get_member(o, key);
	const char *s;

	if (n == NULL || JSON_NODE_HOLDS_NULL(n))
		return g_strdup("-");
	if (JSON_NODE_HOLDS_ARRAY(n)) {
		JsonArray *a = json_node_get_array(n);
		g_autoptr(GString) out = g_string_new(NULL);

		for (guint i = 0; i < json_array_get_length(a); i++) {
			JsonNode *e = json_array_get_element(a, i);

			if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING)
				g_string_append_printf(out, "%s%s", i > 0 ? " " : "",
						       json_node_get_string(e));
		}
		return g_string_free(g_steal_pointer(&out), FALSE);
	}
	if (!JSON_NODE_HOLDS_VALUE(n))
		return g_strdup("…");
	switch (json_node_get_value_type(n)) {
	case G_TYPE_INT64:
		return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n));
	case G_TYPE_DOUBLE:
		return g_strdup_printf("%g", json_node_get_double(n));
	case G_TYPE_BOOLEAN:
		return g_strdup(json_node_get_boolean(n) ? "yes" : "no");
	default:
		s = json_node_get_string(n);
		return g_strdup(s != NULL ? s : "-");
	}
}

/* Makes @s fit a table cell: one line, at most @max characters, its
 * control characters shown (mr_text_printable()). */
static char *
cell_fit(const char *s, glong max)
{
	g_autofree char *line = g_strdelimit(g_strdup(s), "\r\n\t", ' ');
	g_autofree char *valid = mr_text_printable(line, -1, FALSE);
	glong len;

	len = g_utf8_strlen(valid, -1);
	if (len <= max)
		return g_steal_pointer(&valid);
	{
		g_autofree char *cut = g_utf8_substring(valid, 0, max - 1);

		return g_strconcat(cut, "…", NULL);
	}
}

void
mr_ctl_print_table(JsonArray *rows, const char *const *columns)
{
	guint ncol = g_strv_length((char **)columns);
	guint nrow = json_array_get_length(rows);
	g_autofree glong *width = g_new0(glong, ncol);
	g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);

	for (guint c = 0; c < ncol; c++)
		width[c] = (glong)strlen(columns[c]);
	for (guint r = 0; r < nrow; r++) {
		JsonObject *o = json_array_get_object_element(rows, r);

		for (guint c = 0; c < ncol; c++) {
			g_autofree char *text = cell_text(o, columns[c]);
			char *fit = cell_fit(text, 48);

			width[c] = MAX(width[c], g_utf8_strlen(fit, -1));
			g_ptr_array_add(cells, fit);
		}
	}
	for (guint c = 0; c < ncol; c++) {
		g_autofree char *up = g_ascii_strup(columns[c], -1);

		printf("%-*s%s", (int)width[c], up, c + 1 < ncol ? "  " : "\n");
	}
	for (guint r = 0; r < nrow; r++)
		for (guint c = 0; c < ncol; c++) {
			const char *s = g_ptr_array_index(cells, r * ncol + c);
			int pad = (int)(width[c] - g_utf8_strlen(s, -1));

			if (c + 1 < ncol)
				printf("%s%*s  ", s, pad, "");
			else
				printf("%s\n", s);
		}
}

void
mr_ctl_print_object(JsonObject *o)
{
	g_autoptr(GList) members = json_object_get_members(o);

	for (GList *m = members; m != NULL; m = m->next) {
		JsonNode *n = json_object_get_member(o, m->data);
		g_autofree char *text = NULL;

		if (JSON_NODE_HOLDS_OBJECT(n) ||
		    (JSON_NODE_HOLDS_ARRAY(n) && g_strcmp0(m->data, "messages") == 0))
			continue;
		if (JSON_NODE_HOLDS_ARRAY(n) &&
		    json_array_get_length(json_node_get_array(n)) > 0 &&
		    JSON_NODE_HOLDS_OBJECT(json_array_get_element(json_node_get_array(n), 0)))
			continue;
		/* "date" is a deprecated alias of the JSON alone. */
		if (g_strcmp0(m->data, "body") == 0 || g_strcmp0(m->data, "date") == 0)
			continue;
		text = cell_text(o, m->data);
		mr_text_fprintf(stdout, "%-14s %s\n", (const char *)m->data, text);
	}
	if (json_object_has_member(o, "messages")) {
		static const char *const cols[] = { "received", "from", "subject", "message_id",
						    NULL };

		printf("\nmessages:\n");
		mr_ctl_print_table(json_object_get_array_member(o, "messages"), cols);
	}
}
