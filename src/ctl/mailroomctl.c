/* mailroomctl.c - the admin CLI: records, users, reports, and the pipe
 * door (deliver) for MTAs.
 *
 * ctl.  Parses NOUN VERB [ARGS] [OPTIONS], runs one verb against the store,
 * prints a table for people or JSON (--json) for scripts, and exits with a
 * sysexits(3) code. */
#define G_LOG_DOMAIN "mailroom-ctl"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-address.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-ingest.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-writer.h"

#define MR_CTL_MAX_MESSAGE (256u * 1024 * 1024)
/* deliver: messages in flight in the writer at once. */
#define MR_CTL_GROUP 256

typedef struct {
	char *config_path;
	gboolean json;
	gboolean help;
	gboolean raw;
	gint64 limit;
	gint64 after;
	char *to, *from, *name, *title, *contact, *owner, *value, *reason;
	MrConfig *cfg;
	MrStore *store;
} MrCtl;

typedef int (*MrCtlFunc)(MrCtl *ctl, char **args);

typedef struct {
	const char *noun;
	const char *verb; /* NULL: the noun alone */
	int min_args, max_args;
	MrCtlFunc run;
	const char *usage;
	gboolean creates; /* may create the database; the others need one */
} MrCtlCommand;

static void
ctl_clear(MrCtl *ctl)
{
	g_free(ctl->config_path);
	g_free(ctl->to);
	g_free(ctl->from);
	g_free(ctl->name);
	g_free(ctl->title);
	g_free(ctl->contact);
	g_free(ctl->owner);
	g_free(ctl->value);
	g_free(ctl->reason);
	g_clear_pointer(&ctl->store, mr_store_close);
	g_clear_pointer(&ctl->cfg, mr_config_unref);
}

/* --- output ---------------------------------------------------------------- */

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

static void
print_json_array(JsonArray *a)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_ARRAY);

	json_node_set_array(node, a);
	print_json(node);
}

static void
print_json_object(JsonObject *o)
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

/* Makes @s fit a table cell: one line, at most @max characters. */
static char *
cell_fit(const char *s, glong max)
{
	g_autofree char *valid = g_utf8_make_valid(s, -1);
	glong len;

	g_strdelimit(valid, "\r\n\t", ' ');
	len = g_utf8_strlen(valid, -1);
	if (len <= max)
		return g_steal_pointer(&valid);
	{
		g_autofree char *cut = g_utf8_substring(valid, 0, max - 1);

		return g_strconcat(cut, "…", NULL);
	}
}

static void
print_table(JsonArray *rows, const char *const *columns)
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

/* Prints the scalar members of @o as "key: value" lines, then the array
 * member "messages" as a table. */
static void
print_object(JsonObject *o)
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
		text = cell_text(o, m->data);
		if (g_strcmp0(m->data, "body") == 0)
			continue;
		printf("%-14s %s\n", (const char *)m->data, text);
	}
	if (json_object_has_member(o, "messages")) {
		static const char *const cols[] = { "date", "from", "subject", "message_id", NULL };

		printf("\nmessages:\n");
		print_table(json_object_get_array_member(o, "messages"), cols);
	}
}

static int
fail(int code, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static int
fail(int code, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	fprintf(stderr, "mailroomctl: %s\n", msg);
	return code;
}

/* Exit code for a store error: unknown things are 1, bad requests 1,
 * locks 75, anything else 74. */
static int
store_fail(const GError *error)
{
	int code = 1;

	if (g_error_matches(error, MR_STORE_ERROR, MR_STORE_ERROR_BUSY))
		code = MR_EX_TEMPFAIL;
	else if (g_error_matches(error, MR_STORE_ERROR, MR_STORE_ERROR_FAILED) ||
		 g_error_matches(error, MR_STORE_ERROR, MR_STORE_ERROR_OPEN))
		code = MR_EX_IOERR;
	return fail(code, "%s", error->message);
}

/* --- setup ----------------------------------------------------------------- */

/* Loads the configuration and, with @store, opens the database: creating
 * it only when @create (init, deliver); every other verb needs one. */
static int
ctl_open(MrCtl *ctl, gboolean store, gboolean create)
{
	g_autoptr(GError) error = NULL;
	const char *path = ctl->config_path != NULL ? ctl->config_path : mr_config_default_path();

	ctl->cfg = mr_config_load(path, &error);
	if (ctl->cfg == NULL)
		return fail(MR_EX_CONFIG, "%s", error->message);
	if (!store)
		return 0;
	ctl->store = create ? mr_store_open(ctl->cfg, &error) : mr_store_open_existing(ctl->cfg, &error);
	if (ctl->store == NULL && g_error_matches(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND))
		return fail(MR_EX_NOINPUT, "%s", error->message);
	if (ctl->store == NULL)
		return fail(MR_EX_TEMPFAIL, "cannot open the database: %s", error->message);
	return 0;
}

/* --- verbs ------------------------------------------------------------------ */

static int
cmd_init(MrCtl *ctl, char **args)
{
	g_autofree char *name = mr_config_database_name(ctl->cfg);

	if (ctl->json) {
		g_autoptr(JsonObject) o = json_object_new();

		json_object_set_string_member(o, "database", name);
		json_object_set_int_member(o, "schema_version", mr_store_schema_version(ctl->store));
		print_json_object(o);
	} else {
		printf("%s: schema version %d\n", name, mr_store_schema_version(ctl->store));
	}
	return 0;
}

static GBytes *
read_all(int fd, GError **error)
{
	g_autoptr(GByteArray) buf = g_byte_array_new();
	guint8 chunk[65536];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "read: %s",
				    g_strerror(errno));
			return NULL;
		}
		if (n == 0)
			break;
		if (buf->len + (gsize)n > MR_CTL_MAX_MESSAGE) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
				    "message larger than %u bytes", MR_CTL_MAX_MESSAGE);
			return NULL;
		}
		g_byte_array_append(buf, chunk, (guint)n);
	}
	return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

static void
delivery_print(MrCtl *ctl, const char *source, const MrDelivery *d, JsonArray *results)
{
	g_autofree char *record = d->record.kind != MR_RECORD_NONE
					  ? mr_record_display_id(ctl->cfg, d->record)
					  : NULL;

	if (results != NULL) {
		JsonObject *o = json_object_new();

		if (source != NULL)
			json_object_set_string_member(o, "file", source);
		json_object_set_int_member(o, "message", d->message_row);
		json_object_set_boolean_member(o, "duplicate", d->duplicate);
		if (record != NULL)
			json_object_set_string_member(o, "record", record);
		else
			json_object_set_null_member(o, "record");
		json_object_set_boolean_member(o, "refused", d->refused);
		json_object_set_boolean_member(o, "degraded", d->degraded);
		json_array_add_object_element(results, o);
	}
}

/* One message of a deliver run: where it came from, and its outcome. */
typedef struct {
	const char *source; /* the FILE, or NULL for standard input */
	int code;           /* 0, or the exit code (printed) */
	gboolean answered;
	MrDelivery delivery;
} DeliverItem;

/* The writer's answer for one message (on the ctl's own context). */
static void
deliver_done(const MrWriterResult *results, guint n, gpointer user_data)
{
	DeliverItem *it = user_data;
	const GError *e = results[0].error;
	const char *what = it->source != NULL ? it->source : "deliver";

	it->answered = TRUE;
	it->delivery = results[0].delivery;
	if (e == NULL)
		it->code = 0;
	else if (g_error_matches(e, MR_ROUTE_ERROR, MR_ROUTE_ERROR_NO_ADDRESS))
		it->code = fail(MR_EX_NOUSER, "%s: %s", what, e->message);
	else
		it->code = fail(MR_EX_TEMPFAIL, "%s: not stored, try again later: %s", what,
				e->message);
}

/* Checks and submits one message to @writer.  Returns FALSE when it was
 * refused before (the exit code is set and printed). */
static gboolean
deliver_submit(MrCtl *ctl, MrWriter *writer, GPtrArray *rcpts, GBytes *raw, DeliverItem *it)
{
	const char *what = it->source != NULL ? it->source : "deliver";

	if (g_bytes_get_size(raw) == 0) {
		it->code = fail(MR_EX_DATAERR, "%s: empty message", what);
		return FALSE;
	}
	if (g_bytes_get_size(raw) > MR_CTL_MAX_MESSAGE) {
		it->code = fail(MR_EX_DATAERR, "%s: message too large", what);
		return FALSE;
	}
	mr_writer_submit(writer, ctl->cfg, raw, ctl->from, rcpts, deliver_done, it);
	return TRUE;
}

/* Delivers standard input (@files NULL) or each FILE through the same
 * group-commit writer as mailroomd: many messages per transaction, parsed
 * in parallel, each answered only after its COMMIT; at most MR_CTL_GROUP
 * in flight.  Fills @items. */
static gboolean
deliver_run(MrCtl *ctl, char **files, DeliverItem *items, guint n, GError **error)
{
	g_autoptr(GMainContext) context = g_main_context_new();
	g_autoptr(MrWriter) writer = NULL;
	g_autoptr(GPtrArray) rcpts = g_ptr_array_new();

	if (mr_config_find_address(ctl->cfg, ctl->to, NULL) == NULL) {
		for (guint i = 0; i < n; i++)
			items[i].code = fail(MR_EX_NOUSER, "%s: %s is not a mailroom address",
					     items[i].source != NULL ? items[i].source : "deliver",
					     ctl->to);
		return TRUE;
	}
	writer = mr_writer_new(ctl->cfg, context, files != NULL ? MAX(g_get_num_processors(), 1) : 1,
			       error);
	if (writer == NULL)
		return FALSE;
	g_ptr_array_add(rcpts, ctl->to);
	for (guint i = 0; i < n; i++) {
		g_autoptr(GBytes) raw = NULL;
		g_autoptr(GError) e = NULL;

		while (mr_writer_pending(writer) >= MR_CTL_GROUP)
			g_main_context_iteration(context, TRUE);
		if (files == NULL) {
			raw = read_all(STDIN_FILENO, &e);
			if (raw == NULL) {
				items[i].code = fail(g_error_matches(e, G_IO_ERROR,
								     G_IO_ERROR_MESSAGE_TOO_LARGE)
							     ? MR_EX_DATAERR
							     : MR_EX_TEMPFAIL,
						     "%s", e->message);
				continue;
			}
		} else {
			g_autoptr(GMappedFile) map = g_mapped_file_new(files[i], FALSE, &e);

			if (map == NULL) {
				items[i].code = fail(MR_EX_NOINPUT, "%s", e->message);
				continue;
			}
			raw = g_mapped_file_get_bytes(map);
		}
		deliver_submit(ctl, writer, rcpts, raw, &items[i]);
	}
	while (mr_writer_pending(writer) > 0)
		g_main_context_iteration(context, TRUE);
	return TRUE;
}

static int
cmd_deliver(MrCtl *ctl, char **args)
{
	g_autoptr(JsonArray) results = ctl->json ? json_array_new() : NULL;
	g_autoptr(GTimer) timer = g_timer_new();
	g_autoptr(GError) error = NULL;
	g_autofree DeliverItem *items = NULL;
	guint n = args[0] != NULL ? g_strv_length(args) : 1, stored = 0;
	int worst = 0;

	if (ctl->to == NULL)
		return fail(MR_EX_USAGE, "deliver needs --to ADDRESS");
	items = g_new0(DeliverItem, n);
	for (guint i = 0; i < n; i++)
		items[i].source = args[0] != NULL ? args[i] : NULL;
	if (!deliver_run(ctl, args[0] != NULL ? args : NULL, items, n, &error))
		return fail(MR_EX_TEMPFAIL, "not stored, try again later: %s", error->message);
	/* The exit code is the first failure's, in the order given. */
	for (guint i = 0; i < n; i++) {
		if (items[i].code == 0 && items[i].answered) {
			delivery_print(ctl, items[i].source, &items[i].delivery, results);
			stored++;
		} else if (worst == 0) {
			worst = items[i].code != 0 ? items[i].code : MR_EX_SOFTWARE;
		}
	}
	if (results != NULL && (args[0] != NULL || worst == 0)) {
		if (args[0] == NULL)
			print_json_object(json_array_get_object_element(results, 0));
		else
			print_json_array(results);
	}
	if (args[0] != NULL && !ctl->json)
		fprintf(stderr, "delivered %u of %u messages in %.2f s (%.0f messages/s)\n", stored,
			n, g_timer_elapsed(timer, NULL), n / MAX(g_timer_elapsed(timer, NULL), 1e-6));
	return worst;
}

static int
cmd_user_add(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *email = mr_address_normalise(args[0]);
	gint64 id;

	if (strchr(email, '@') == NULL || strchr(email, ' ') != NULL)
		return fail(MR_EX_USAGE, "'%s' is not an email address", args[0]);
	id = mr_store_user_add(ctl->store, email, ctl->name, &error);
	if (id == 0)
		return store_fail(error);
	if (ctl->json) {
		g_autoptr(JsonObject) o = json_object_new();

		json_object_set_int_member(o, "id", id);
		json_object_set_string_member(o, "email", email);
		print_json_object(o);
	} else {
		printf("user %s (%" G_GINT64_FORMAT ")\n", email, id);
	}
	return 0;
}

typedef struct {
	const char *noun;
	MrListKind kind;
	const char *const columns[9];
} MrCtlList;

static const MrCtlList mr_ctl_lists[] = {
	{ "user", MR_LIST_USERS, { "id", "email", "name", "message_count", NULL } },
	{ "contact", MR_LIST_CONTACTS,
	  { "email", "name", "account", "owner", "message_count", NULL } },
	{ "account", MR_LIST_ACCOUNTS, { "name", "domain", "contacts", "message_count", NULL } },
	{ "inbox", MR_LIST_LEADS,
	  { "id", "status", "title", "contact", "owner", "message_count", "created", NULL } },
	{ "opp", MR_LIST_OPPORTUNITIES,
	  { "id", "status", "stage", "title", "value", "contact", "owner", "message_count",
	    NULL } },
	{ "ticket", MR_LIST_TICKETS,
	  { "id", "status", "priority", "subject", "contact", "owner", "message_count", NULL } },
	{ "message", MR_LIST_MESSAGES,
	  { "id", "date", "from", "subject", "links", "auto", "parse_status", NULL } },
};

static int
cmd_list(MrCtl *ctl, const char *noun)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonArray) rows = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(mr_ctl_lists); i++) {
		if (strcmp(mr_ctl_lists[i].noun, noun) != 0)
			continue;
		rows = mr_store_list(ctl->store, mr_ctl_lists[i].kind, ctl->limit, &error);
		if (rows == NULL)
			return store_fail(error);
		if (ctl->json)
			print_json_array(rows);
		else
			print_table(rows, mr_ctl_lists[i].columns);
		return 0;
	}
	g_assert_not_reached();
}

static int cmd_user_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "user"); }
static int cmd_contact_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "contact"); }
static int cmd_account_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "account"); }
static int cmd_inbox_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "inbox"); }
static int cmd_opp_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "opp"); }
static int cmd_ticket_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "ticket"); }
static int cmd_message_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "message"); }

/* The event feed: what workflows read, oldest first, after an id. */
static int
cmd_event_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "id", "created", "type", "record", "summary", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(JsonArray) rows = json_array_new();

	if (ctl->after < 0 || ctl->limit < 0 || ctl->limit > G_MAXUINT)
		return fail(MR_EX_USAGE, "--after and --limit take a number of 0 or more");
	events = mr_store_events_after(ctl->store, ctl->after, (guint)ctl->limit, &error);
	if (events == NULL)
		return store_fail(error);
	for (guint i = 0; i < events->len; i++) {
		const MrEvent *e = g_ptr_array_index(events, i);
		JsonObject *o = json_object_new();

		json_object_set_int_member(o, "id", e->id);
		json_object_set_string_member(o, "created", e->created);
		json_object_set_string_member(o, "type", e->type_name);
		if (e->record.kind != MR_RECORD_NONE) {
			g_autofree char *display = mr_record_display_id(ctl->cfg, e->record);

			json_object_set_string_member(o, "record", display);
		} else {
			json_object_set_null_member(o, "record");
		}
		if (e->message_row != 0)
			json_object_set_int_member(o, "message", e->message_row);
		else
			json_object_set_null_member(o, "message");
		json_object_set_string_member(o, "summary", e->summary);
		json_array_add_object_element(rows, o);
	}
	if (ctl->json)
		print_json_array(rows);
	else
		print_table(rows, cols);
	return 0;
}

static int
print_shown(MrCtl *ctl, JsonObject *o, GError *error)
{
	if (o == NULL)
		return store_fail(error);
	if (ctl->json)
		print_json_object(o);
	else
		print_object(o);
	json_object_unref(o);
	return 0;
}

static int
cmd_contact_show(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *email = mr_address_normalise(args[0]);

	JsonObject *o = mr_store_show_contact(ctl->store, email, &error);

	return print_shown(ctl, o, error);
}

/* Parses @text as a record id of @kind; prints the error itself. */
static gboolean
ctl_record_arg(MrCtl *ctl, const char *text, MrRecordKind kind, MrRecordRef *ref)
{
	if (mr_route_parse_id(ctl->cfg, text, kind == MR_RECORD_LEAD ? kind : MR_RECORD_NONE,
			      ref) &&
	    ref->kind == kind)
		return TRUE;
	{
		MrRecordRef example = { kind, 12 };
		g_autofree char *display = mr_record_display_id(ctl->cfg, example);

		fail(1, "'%s' is not a valid %s id (like %s)", text, mr_record_kind_name(kind),
		     display);
	}
	return FALSE;
}

static int
cmd_show(MrCtl *ctl, const char *text, MrRecordKind kind)
{
	g_autoptr(GError) error = NULL;
	MrRecordRef ref;
	JsonObject *o;

	if (!ctl_record_arg(ctl, text, kind, &ref))
		return 1;
	o = mr_store_show_record(ctl->store, ref, &error);
	return print_shown(ctl, o, error);
}

static int cmd_inbox_show(MrCtl *ctl, char **args) { return cmd_show(ctl, args[0], MR_RECORD_LEAD); }
static int cmd_opp_show(MrCtl *ctl, char **args) { return cmd_show(ctl, args[0], MR_RECORD_OPPORTUNITY); }
static int cmd_ticket_show(MrCtl *ctl, char **args) { return cmd_show(ctl, args[0], MR_RECORD_TICKET); }

static void
print_id(MrCtl *ctl, MrRecordRef ref, const char *what)
{
	g_autofree char *display = mr_record_display_id(ctl->cfg, ref);

	if (ctl->json) {
		g_autoptr(JsonObject) o = json_object_new();

		json_object_set_string_member(o, "id", display);
		if (what != NULL)
			json_object_set_string_member(o, "status", what);
		print_json_object(o);
	} else if (what != NULL) {
		printf("%s %s\n", display, what);
	} else {
		printf("%s\n", display);
	}
}

static int
cmd_inbox_convert(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	MrRecordRef ref, opp = { MR_RECORD_OPPORTUNITY, 0 };

	if (!ctl_record_arg(ctl, args[0], MR_RECORD_LEAD, &ref))
		return 1;
	opp.id = mr_store_lead_convert(ctl->store, ref.id, &error);
	if (opp.id == 0)
		return store_fail(error);
	print_id(ctl, opp, NULL);
	return 0;
}

static int
cmd_inbox_archive(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	MrRecordRef ref;

	if (!ctl_record_arg(ctl, args[0], MR_RECORD_LEAD, &ref))
		return 1;
	if (!mr_store_lead_archive(ctl->store, ref.id, &error))
		return store_fail(error);
	print_id(ctl, ref, "archived");
	return 0;
}

static int
cmd_opp_add(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *contact = NULL, *owner = NULL;
	MrRecordRef ref = { MR_RECORD_OPPORTUNITY, 0 };
	gint64 value = -1;

	if (ctl->title == NULL || *ctl->title == '\0' || ctl->contact == NULL)
		return fail(MR_EX_USAGE, "opp add needs --title T and --contact EMAIL");
	if (ctl->value != NULL) {
		char *end = NULL;

		errno = 0;
		value = g_ascii_strtoll(ctl->value, &end, 10);
		if (errno != 0 || end == ctl->value || *end != '\0' || value < 0)
			return fail(MR_EX_USAGE, "--value must be a whole non-negative number");
	}
	contact = mr_address_normalise(ctl->contact);
	owner = ctl->owner != NULL ? mr_address_normalise(ctl->owner) : NULL;
	ref.id = mr_store_opp_add(ctl->store, ctl->title, contact, owner, value, &error);
	if (ref.id == 0)
		return store_fail(error);
	print_id(ctl, ref, NULL);
	return 0;
}

static int
opp_close(MrCtl *ctl, const char *text, gboolean won)
{
	g_autoptr(GError) error = NULL;
	MrRecordRef ref;

	if (!ctl_record_arg(ctl, text, MR_RECORD_OPPORTUNITY, &ref))
		return 1;
	if (!won && (ctl->reason == NULL || *ctl->reason == '\0'))
		return fail(MR_EX_USAGE, "opp lost needs --reason R");
	if (!mr_store_opp_close(ctl->store, ref.id, won, ctl->reason, &error))
		return store_fail(error);
	print_id(ctl, ref, won ? "won" : "lost");
	return 0;
}

static int cmd_opp_won(MrCtl *ctl, char **args) { return opp_close(ctl, args[0], TRUE); }
static int cmd_opp_lost(MrCtl *ctl, char **args) { return opp_close(ctl, args[0], FALSE); }

static int
cmd_ticket_status(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *status = g_ascii_strdown(args[1], -1);
	MrRecordRef ref;

	if (!ctl_record_arg(ctl, args[0], MR_RECORD_TICKET, &ref))
		return 1;
	if (!mr_store_ticket_set_status(ctl->store, ref.id, status, &error))
		return g_error_matches(error, MR_STORE_ERROR, MR_STORE_ERROR_INVALID)
			       ? fail(MR_EX_USAGE, "%s", error->message)
			       : store_fail(error);
	print_id(ctl, ref, status);
	return 0;
}

static int
cmd_timeline(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "date", "kind", "subject", "message_id", "sent", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonArray) rows = NULL;
	g_autofree char *target = mr_address_normalise(args[0]);
	MrRecordRef ref = { MR_RECORD_NONE, 0 };

	if (strchr(target, '@') != NULL)
		rows = mr_store_timeline(ctl->store, target, NULL, ref, &error);
	else if (mr_route_parse_id(ctl->cfg, target, MR_RECORD_NONE, &ref))
		rows = mr_store_timeline(ctl->store, NULL, NULL, ref, &error);
	else if (strchr(target, '.') != NULL)
		rows = mr_store_timeline(ctl->store, NULL, target, ref, &error);
	else
		return fail(1, "'%s' is no email address, domain or record id", args[0]);
	if (rows == NULL)
		return store_fail(error);
	if (ctl->json)
		print_json_array(rows);
	else
		print_table(rows, cols);
	return 0;
}

static int
cmd_message_show(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	char *end = NULL;
	gint64 id = g_ascii_strtoll(args[0], &end, 10);

	if (end == args[0] || *end != '\0' || id <= 0)
		return fail(1, "'%s' is not a message id (a number from message list)", args[0]);
	if (ctl->raw) {
		g_autoptr(GBytes) raw = mr_store_message_raw(ctl->store, id, &error);
		gsize len = 0;
		const void *data;

		if (raw == NULL)
			return store_fail(error);
		data = g_bytes_get_data(raw, &len);
		if (fwrite(data, 1, len, stdout) != len)
			return fail(MR_EX_IOERR, "write: %s", g_strerror(errno));
		return 0;
	}
	{
		JsonObject *o = mr_store_show_message(ctl->store, id, &error);
		g_autoptr(GBytes) raw = o != NULL ? mr_store_message_raw(ctl->store, id, NULL) : NULL;

		/* The body is not stored apart from the raw bytes: parse them. */
		if (raw != NULL) {
			MrParseOptions opts = {
				.fallback_charsets = (const char *const *)ctl->cfg->fallback_charsets
			};
			g_autoptr(MrMessage) msg = mr_parse_message(raw, &opts);

			json_object_set_string_member(o, "body", msg->body_text);
		}
		if (o != NULL && !ctl->json) {
			print_object(o);
			printf("\n%s\n", json_object_get_string_member_with_default(o, "body", ""));
			json_object_unref(o);
			return 0;
		}
		return print_shown(ctl, o, error);
	}
}

static const MrCtlCommand mr_ctl_commands[] = {
	{ "init", NULL, 0, 0, cmd_init, "init                         create or migrate the database",
	  TRUE },
	{ "deliver", NULL, 0, G_MAXINT, cmd_deliver,
	  "deliver --to ADDRESS [--from SENDER] [FILE...] < message\n"
	  "                             deliver one message from standard input, or each FILE",
	  TRUE },
	{ "user", "add", 1, 1, cmd_user_add, "user add EMAIL [--name NAME]", FALSE },
	{ "user", "list", 0, 0, cmd_user_list, "user list", FALSE },
	{ "contact", "list", 0, 0, cmd_contact_list, "contact list", FALSE },
	{ "contact", "show", 1, 1, cmd_contact_show, "contact show EMAIL", FALSE },
	{ "account", "list", 0, 0, cmd_account_list, "account list", FALSE },
	{ "inbox", "list", 0, 0, cmd_inbox_list, "inbox list", FALSE },
	{ "inbox", "show", 1, 1, cmd_inbox_show, "inbox show ID", FALSE },
	{ "inbox", "convert", 1, 1, cmd_inbox_convert, "inbox convert ID   (prints the new OPP id)", FALSE },
	{ "inbox", "archive", 1, 1, cmd_inbox_archive, "inbox archive ID", FALSE },
	{ "opp", "add", 0, 0, cmd_opp_add,
	  "opp add --title T --contact EMAIL [--owner EMAIL] [--value N]", FALSE },
	{ "opp", "list", 0, 0, cmd_opp_list, "opp list", FALSE },
	{ "opp", "show", 1, 1, cmd_opp_show, "opp show OPP-n", FALSE },
	{ "opp", "won", 1, 1, cmd_opp_won, "opp won OPP-n", FALSE },
	{ "opp", "lost", 1, 1, cmd_opp_lost, "opp lost OPP-n --reason R", FALSE },
	{ "ticket", "list", 0, 0, cmd_ticket_list, "ticket list", FALSE },
	{ "ticket", "show", 1, 1, cmd_ticket_show, "ticket show TKT-n", FALSE },
	{ "ticket", "status", 2, 2, cmd_ticket_status,
	  "ticket status TKT-n STATUS   (new, open, pending, solved, closed)", FALSE },
	{ "timeline", NULL, 1, 1, cmd_timeline, "timeline EMAIL|DOMAIN|OPP-n|TKT-n|LEAD-n", FALSE },
	{ "message", "list", 0, 0, cmd_message_list, "message list", FALSE },
	{ "event", "list", 0, 0, cmd_event_list,
	  "event list [--after ID] [--limit N]   (the event feed, oldest first)", FALSE },
	{ "message", "show", 1, 1, cmd_message_show, "message show ID [--raw]", FALSE },
};

static void
usage(FILE *out, const char *noun)
{
	gboolean any = FALSE;

	fprintf(out, "Usage: mailroomctl [-c CONFIG] [--json] [--limit N] COMMAND\n\n");
	for (guint i = 0; i < G_N_ELEMENTS(mr_ctl_commands); i++) {
		if (noun != NULL && strcmp(noun, mr_ctl_commands[i].noun) != 0)
			continue;
		fprintf(out, "  mailroomctl %s\n", mr_ctl_commands[i].usage);
		any = TRUE;
	}
	if (noun != NULL && !any)
		usage(out, NULL);
	else
		fprintf(out,
			"\nOptions:\n"
			"  -c, --config FILE  configuration (default $MAILROOM_CONFIG or %s)\n"
			"  --json             print JSON for scripts\n"
			"  --limit N          list at most N rows (default: all)\n"
			"  -h, --help         this help; 'mailroomctl NOUN --help' for one noun\n"
			"\nExit codes: 0 ok, 1 unknown record or refused request, 64 usage,\n"
			"65 bad message, 66 input file or database missing, 67 not a mailroom address,\n"
			"74 database or output error, 75 try again later, 78 bad configuration.\n"
			"See mailroomctl(1).\n",
			mr_config_default_path());
}

int
main(int argc, char **argv)
{
	MrCtl ctl = { 0 };
	gint64 limit = 0;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &ctl.config_path, NULL, NULL },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &ctl.json, NULL, NULL },
		{ "help", 'h', 0, G_OPTION_ARG_NONE, &ctl.help, NULL, NULL },
		{ "limit", 0, 0, G_OPTION_ARG_INT64, &limit, NULL, NULL },
		{ "after", 0, 0, G_OPTION_ARG_INT64, &ctl.after, NULL, NULL },
		{ "raw", 0, 0, G_OPTION_ARG_NONE, &ctl.raw, NULL, NULL },
		{ "to", 0, 0, G_OPTION_ARG_STRING, &ctl.to, NULL, NULL },
		{ "from", 0, 0, G_OPTION_ARG_STRING, &ctl.from, NULL, NULL },
		{ "name", 0, 0, G_OPTION_ARG_STRING, &ctl.name, NULL, NULL },
		{ "title", 0, 0, G_OPTION_ARG_STRING, &ctl.title, NULL, NULL },
		{ "contact", 0, 0, G_OPTION_ARG_STRING, &ctl.contact, NULL, NULL },
		{ "owner", 0, 0, G_OPTION_ARG_STRING, &ctl.owner, NULL, NULL },
		{ "value", 0, 0, G_OPTION_ARG_STRING, &ctl.value, NULL, NULL },
		{ "reason", 0, 0, G_OPTION_ARG_STRING, &ctl.reason, NULL, NULL },
		{ NULL },
	};
	g_autoptr(GOptionContext) octx = g_option_context_new(NULL);
	g_autoptr(GError) error = NULL;
	const MrCtlCommand *cmd = NULL;
	char **args;
	int nargs, rc;

	setlocale(LC_ALL, "");
	g_option_context_set_help_enabled(octx, FALSE);
	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &error)) {
		rc = fail(MR_EX_USAGE, "%s (try --help)", error->message);
		ctl_clear(&ctl);
		return rc;
	}
	ctl.limit = limit;
	if (argc < 2 || g_strcmp0(argv[1], "help") == 0) {
		usage(ctl.help || argc >= 2 ? stdout : stderr, argc > 2 ? argv[2] : NULL);
		ctl_clear(&ctl);
		return argc < 2 && !ctl.help ? MR_EX_USAGE : 0;
	}
	if (ctl.help) {
		usage(stdout, argv[1]);
		ctl_clear(&ctl);
		return 0;
	}
	for (guint i = 0; i < G_N_ELEMENTS(mr_ctl_commands) && cmd == NULL; i++) {
		const MrCtlCommand *c = &mr_ctl_commands[i];

		if (strcmp(c->noun, argv[1]) == 0 &&
		    (c->verb == NULL || (argc > 2 && strcmp(c->verb, argv[2]) == 0)))
			cmd = c;
	}
	if (cmd == NULL) {
		rc = fail(MR_EX_USAGE, "unknown command '%s%s%s' (try --help)", argv[1],
			  argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
		ctl_clear(&ctl);
		return rc;
	}
	args = argv + (cmd->verb != NULL ? 3 : 2);
	nargs = argc - (cmd->verb != NULL ? 3 : 2);
	if (nargs < cmd->min_args || nargs > cmd->max_args) {
		fprintf(stderr, "mailroomctl: wrong number of arguments\nusage: mailroomctl %s\n",
			cmd->usage);
		ctl_clear(&ctl);
		return MR_EX_USAGE;
	}
	/* deliver opens the database in its writer, not here */
	rc = ctl_open(&ctl, cmd->run != cmd_deliver, cmd->creates);
	if (rc == 0) {
		mr_parse_init();
		rc = cmd->run(&ctl, args);
	}
	if (fflush(stdout) != 0 && rc == 0)
		rc = fail(MR_EX_IOERR, "write: %s", g_strerror(errno));
	ctl_clear(&ctl);
	return rc;
}
