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

JsonObject *
mr_ctl_json_user(const MrConfig *cfg, gconstpointer row)
{
	const MrUserRow *r = row;
	JsonObject *o = json_object_new();

	json_object_set_int_member(o, "id", r->id);
	set_text(o, "email", r->email);
	set_text(o, "name", r->name);
	set_joined(o, "addresses", r->addresses);
	set_text(o, "created", r->created);
	json_object_set_int_member(o, "message_count", r->message_count);
	return o;
}

JsonObject *
mr_ctl_json_contact(const MrConfig *cfg, gconstpointer row)
{
	const MrContactRow *r = row;
	JsonObject *o = json_object_new();

	set_text(o, "email", r->email);
	set_text(o, "name", r->name);
	set_text(o, "account", r->account);
	set_text(o, "owner", r->owner);
	set_text(o, "created", r->created);
	set_text(o, "last_seen", r->last_seen);
	json_object_set_int_member(o, "message_count", r->message_count);
	return o;
}

JsonObject *
mr_ctl_json_account(const MrConfig *cfg, gconstpointer row)
{
	const MrAccountRow *r = row;
	JsonObject *o = json_object_new();

	set_text(o, "name", r->name);
	set_text(o, "domain", r->domain);
	set_text(o, "created", r->created);
	json_object_set_int_member(o, "contacts", r->contacts);
	json_object_set_int_member(o, "message_count", r->message_count);
	return o;
}

JsonObject *
mr_ctl_json_lead(const MrConfig *cfg, gconstpointer row)
{
	const MrLeadRow *r = row;
	JsonObject *o = json_object_new();
	MrRecordRef opp = { MR_RECORD_OPPORTUNITY, r->opportunity };

	/* A lead's id is its number (inbox show 12), unlike the others. */
	json_object_set_int_member(o, "id", r->id);
	set_text(o, "title", r->title);
	set_text(o, "source", r->source);
	set_text(o, "status", r->status);
	set_text(o, "priority", r->priority);
	set_text(o, "contact", r->contact);
	set_text(o, "owner", r->owner);
	set_text(o, "created", r->created);
	set_text(o, "qualified", r->qualified);
	set_text(o, "updated", r->updated);
	set_record(o, cfg, "opportunity", opp);
	json_object_set_int_member(o, "message_count", r->message_count);
	return o;
}

JsonObject *
mr_ctl_json_opportunity(const MrConfig *cfg, gconstpointer row)
{
	const MrOpportunityRow *r = row;
	JsonObject *o = json_object_new();
	MrRecordRef ref = { MR_RECORD_OPPORTUNITY, r->id };

	set_record(o, cfg, "id", ref);
	set_text(o, "title", r->title);
	set_text(o, "status", r->status);
	set_text(o, "stage", r->stage);
	json_object_set_int_member(o, "probability", r->probability);
	if (r->value >= 0)
		json_object_set_int_member(o, "value", r->value);
	else
		json_object_set_null_member(o, "value");
	set_text(o, "contact", r->contact);
	set_text(o, "account", r->account);
	set_text(o, "owner", r->owner);
	set_text(o, "lost_reason", r->lost_reason);
	set_text(o, "created", r->created);
	set_text(o, "updated", r->updated);
	set_text(o, "closed", r->closed);
	json_object_set_int_member(o, "message_count", r->message_count);
	return o;
}

JsonObject *
mr_ctl_json_ticket(const MrConfig *cfg, gconstpointer row)
{
	const MrTicketRow *r = row;
	JsonObject *o = json_object_new();
	MrRecordRef ref = { MR_RECORD_TICKET, r->id };

	set_record(o, cfg, "id", ref);
	set_text(o, "subject", r->subject);
	set_text(o, "status", r->status);
	set_text(o, "type", r->type);
	set_text(o, "priority", r->priority);
	set_text(o, "contact", r->contact);
	set_text(o, "owner", r->owner);
	set_text(o, "created", r->created);
	set_text(o, "updated", r->updated);
	json_object_set_int_member(o, "message_count", r->message_count);
	return o;
}

JsonObject *
mr_ctl_json_message(const MrConfig *cfg, gconstpointer row)
{
	const MrMessageRow *r = row;
	JsonObject *o = json_object_new();
	JsonArray *links = json_array_new();

	json_object_set_int_member(o, "id", r->id);
	set_text(o, "message_id", r->message_id);
	set_text(o, "subject", r->subject);
	set_text(o, "from", r->from);
	set_text(o, "received", r->received);
	set_text(o, "sent", r->date);
	/* Deprecated (docs/cli.md, "Field names"): here it was the Date: header. */
	set_text(o, "date", r->date);
	json_object_set_int_member(o, "size", r->size);
	set_text(o, "parse_status", r->parse_status);
	set_text(o, "parse_problem", r->parse_problem);
	set_text(o, "auto", r->auto_kind);
	set_joined(o, "delivered_to", r->delivered_to);
	for (guint i = 0; r->links != NULL && i < r->links->len; i++) {
		g_autofree char *display =
			mr_record_display_id(cfg, g_array_index(r->links, MrRecordRef, i));

		json_array_add_string_element(links, display);
	}
	json_object_set_array_member(o, "links", links);
	return o;
}

JsonObject *
mr_ctl_json_message_detail(const MrConfig *cfg, gconstpointer row)
{
	const MrMessageDetail *d = row;
	JsonObject *o = mr_ctl_json_message(cfg, &d->row);
	JsonArray *a;

	set_text(o, "in_reply_to", d->in_reply_to);
	set_text(o, "auto_reason", d->auto_reason);
	json_object_set_int_member(o, "is_forward", d->is_forward ? 1 : 0);
	set_text(o, "original_from", d->original_from);
	set_text(o, "from_name", d->from_name);
	set_text(o, "content_key", d->content_key);
	set_text(o, "snippet", d->snippet);
	set_strings(o, "contacts", d->contacts);
	set_strings(o, "accounts", d->accounts);
	set_strings(o, "users", d->users);
	a = json_array_new();
	for (guint i = 0; i < d->addresses->len; i++) {
		const MrAddressRow *r = g_ptr_array_index(d->addresses, i);
		JsonObject *e = json_object_new();

		set_text(e, "kind", r->kind);
		set_text(e, "email", r->email);
		set_text(e, "name", r->name);
		json_array_add_object_element(a, e);
	}
	json_object_set_array_member(o, "addresses", a);
	a = json_array_new();
	for (guint i = 0; i < d->attachments->len; i++) {
		const MrAttachmentRow *r = g_ptr_array_index(d->attachments, i);
		JsonObject *e = json_object_new();

		set_text(e, "filename", r->filename);
		set_text(e, "content_type", r->content_type);
		json_object_set_int_member(e, "size", r->size);
		set_text(e, "sha256", r->sha256);
		json_array_add_object_element(a, e);
	}
	json_object_set_array_member(o, "attachments", a);
	a = json_array_new();
	for (guint i = 0; i < d->deliveries->len; i++) {
		const MrDeliveryRow *r = g_ptr_array_index(d->deliveries, i);
		JsonObject *e = json_object_new();

		set_text(e, "recipient", r->recipient);
		set_text(e, "role", r->role);
		set_text(e, "envelope_from", r->envelope_from);
		set_text(e, "received", r->received);
		json_array_add_object_element(a, e);
	}
	json_object_set_array_member(o, "deliveries", a);
	set_strings(o, "refused", d->refused);
	return o;
}

JsonObject *
mr_ctl_json_message_brief(const MrConfig *cfg, gconstpointer row)
{
	const MrMessageBrief *r = row;
	JsonObject *o = json_object_new();

	json_object_set_int_member(o, "id", r->id);
	set_text(o, "message_id", r->message_id);
	set_text(o, "subject", r->subject);
	set_text(o, "from", r->from);
	set_text(o, "received", r->received);
	set_text(o, "sent", r->sent);
	/* Deprecated (docs/cli.md, "Field names"): here it was the arrival. */
	set_text(o, "date", r->received);
	return o;
}

JsonObject *
mr_ctl_json_timeline_entry(const MrConfig *cfg, gconstpointer row)
{
	const MrTimelineEntry *r = row;
	JsonObject *o = json_object_new();

	/* A message was received, an event created (as in event list). */
	set_text(o, "received", r->received);
	set_text(o, "created", r->created);
	set_text(o, "kind", r->kind);
	set_text(o, "subject", r->subject);
	set_text(o, "message_id", r->message_id);
	set_text(o, "sent", r->sent);
	/* Deprecated (docs/cli.md, "Field names"): received or created. */
	set_text(o, "date", r->date);
	return o;
}

JsonObject *
mr_ctl_json_event(const MrConfig *cfg, gconstpointer row)
{
	const MrEvent *e = row;
	JsonObject *o = json_object_new();

	json_object_set_int_member(o, "id", e->id);
	set_text(o, "created", e->created);
	set_text(o, "type", e->type_name);
	set_record(o, cfg, "record", e->record);
	if (e->message_row != 0)
		json_object_set_int_member(o, "message", e->message_row);
	else
		json_object_set_null_member(o, "message");
	set_text(o, "summary", e->summary);
	return o;
}

JsonObject *
mr_ctl_json_mailbox(const MrConfig *cfg, gconstpointer row)
{
	const MrMailboxState *m = row;
	JsonObject *o = json_object_new();

	set_text(o, "name", m->name);
	set_text(o, "state", m->state);
	if (m->uidvalidity != 0)
		json_object_set_int_member(o, "uidvalidity", m->uidvalidity);
	else
		json_object_set_null_member(o, "uidvalidity");
	json_object_set_int_member(o, "last_uid", m->last_uid);
	json_object_set_int_member(o, "backlog", m->backlog);
	set_text(o, "last_error", m->last_error);
	set_text(o, "updated", m->updated);
	return o;
}

JsonObject *
mr_ctl_json_quarantine(const MrConfig *cfg, gconstpointer row)
{
	const MrQuarantineRow *q = row;
	JsonObject *o = json_object_new();

	json_object_set_int_member(o, "id", q->id);
	set_text(o, "mailbox", q->mailbox);
	json_object_set_int_member(o, "uid", q->uid);
	json_object_set_int_member(o, "uidvalidity", q->uidvalidity);
	set_text(o, "reason", q->reason);
	json_object_set_int_member(o, "size", q->size);
	set_text(o, "created", q->created);
	return o;
}

JsonArray *
mr_ctl_json_rows(const MrConfig *cfg, const GPtrArray *rows, MrCtlRowJson to_json)
{
	JsonArray *a = json_array_new();

	for (guint i = 0; i < rows->len; i++)
		json_array_add_object_element(a, to_json(cfg, g_ptr_array_index(rows, i)));
	return a;
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
