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
#include <sys/wait.h>
#include <unistd.h>

#include "mailroom/mr-clock.h"
#include "mailroom/mr-config.h"
#include "mailroom/mr-address.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-imap-config.h"
#include "mailroom/mr-ingest.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-rule.h"
#include "mailroom/mr-status.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-crm.h"
#include "mailroom/mr-crm-workflow.h"
#include "mailroom/mr-store-workflow.h"
#include "mailroom/mr-workflow.h"
#include "mailroom/mr-store-event.h"
#include "mailroom/mr-store-mailbox.h"
#include "mailroom/mr-store-message.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-outgoing.h"
#include "mailroom/mr-template.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "mailroom/mr-store-rule.h"
#include "mailroom/mr-store-team.h"
#include "mailroom/mr-store-calendar.h"
#include "mailroom/mr-calendar.h"
#include "mailroom/mr-text.h"
#include "mailroom/mr-writer.h"

#include "mr-ctl-output.h"
#include "mr-ctl-rules-file.h"

#define MR_CTL_MAX_MESSAGE (256u * 1024 * 1024)
/* deliver: messages in flight in the writer at once. */
#define MR_CTL_GROUP 256

typedef struct {
	char *config_path;
	gboolean json;
	gboolean help;
	gboolean raw;
	gboolean quarantined;
	gint64 limit;
	char *lead;              /* team add: --lead */
	char *to, *from, *name, *title, *contact, *owner, *value, *reason;
	char **conds, **actions; /* rule add: --if, --then */
	gboolean any, stop;      /* rule add: --any, --stop */
	gboolean explain;        /* rule test: --explain */
	char *position;          /* rule add: --position */
	char *status;            /* outbox list, ticket reply: --status */
	char *subject;           /* template add: --subject */
	char *body_file;         /* template add, ticket reply: --body-file */
	gboolean due;            /* job list: --due */
	gboolean replace;        /* template add: --replace */
	char *tz, *hours;        /* calendar set: --tz, --hours */
	char **holidays;         /* calendar set: --holiday */
	gboolean clear_holidays; /* calendar set: --clear-holidays */
	char *on, *after, *since; /* workflow add: --on, --after, --since */
	char **unless;           /* workflow add: --unless */
	gboolean business;       /* workflow add: --business */
	gint64 repeat;           /* workflow add: --repeat (CTL_NO_REPEAT: not given) */
	char *record;            /* task add: --record */
	char *due_at;            /* task add: --due */
	gboolean open, overdue;  /* task list: --open, --overdue */
	MrConfig *cfg;
	MrStore *store;
	MrWorkflowHook *workflows; /* the store's event hook */
} MrCtl;

/* ctl.repeat before the options are read: --repeat was not given. */
#define CTL_NO_REPEAT G_MININT64

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
	g_free(ctl->lead);
	g_strfreev(ctl->conds);
	g_strfreev(ctl->actions);
	g_free(ctl->position);
	g_free(ctl->status);
	g_free(ctl->subject);
	g_free(ctl->body_file);
	g_free(ctl->tz);
	g_free(ctl->hours);
	g_strfreev(ctl->holidays);
	g_free(ctl->on);
	g_free(ctl->after);
	g_free(ctl->since);
	g_strfreev(ctl->unless);
	g_free(ctl->record);
	g_free(ctl->due_at);
	g_clear_pointer(&ctl->workflows, mr_workflow_hook_free);
	g_clear_pointer(&ctl->store, mr_store_close);
	g_clear_pointer(&ctl->cfg, mr_config_unref);
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
	mr_text_fprintf(stderr, "mailroomctl: %s\n", msg);
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

/* The sections of the configuration parsed above core: those of
 * mailroomd, so that both accept the same file. */
static const MrConfigSection *const ctl_config_sections[] = {
	&mr_imap_config_section,
	NULL,
};

/* Loads the configuration and, with @store, opens the database: creating
 * it only when @create (init, deliver); every other verb needs one. */
static int
ctl_open(MrCtl *ctl, gboolean store, gboolean create)
{
	g_autoptr(GError) error = NULL;
	const char *path = ctl->config_path != NULL ? ctl->config_path : mr_config_default_path();

	ctl->cfg = mr_config_load(path, ctl_config_sections, &error);
	if (ctl->cfg == NULL)
		return fail(MR_EX_CONFIG, "%s", error->message);
	mr_clock_set_offset(ctl->cfg->testing.clock_offset_s);
	if (!store)
		return 0;
	ctl->store = create ? mr_store_open(ctl->cfg, &error) : mr_store_open_existing(ctl->cfg, &error);
	if (ctl->store == NULL && g_error_matches(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND))
		return fail(MR_EX_NOINPUT, "%s", error->message);
	if (ctl->store == NULL)
		return fail(MR_EX_TEMPFAIL, "cannot open the database: %s", error->message);
	/* what a verb's events do to the workflows' timers, as in mailroomd */
	ctl->workflows = mr_workflow_hook_attach(ctl->store, ctl->cfg);
	return 0;
}

/* --- verbs ------------------------------------------------------------------ */

/* What init creates when missing (an edited one stays): the built-in
 * templates, the calendar "default".  (The built-in workflows come with
 * the schema, mr-store-sql.c.) */
static gboolean
init_tx(MrStore *store, gpointer data, GError **error)
{
	g_autofree char *now = mr_clock_now_iso();
	g_autoptr(GError) local = NULL;

	const MrConfig *cfg = data;
	static const char *const templates[][3] = {
		{ MR_TEMPLATE_TICKET_ACK_NAME, MR_TEMPLATE_TICKET_ACK_SUBJECT,
		  MR_TEMPLATE_TICKET_ACK_BODY },
		{ MR_TEMPLATE_FOLLOW_UP_NAME, MR_TEMPLATE_FOLLOW_UP_SUBJECT,
		  MR_TEMPLATE_FOLLOW_UP_BODY },
		{ MR_TEMPLATE_REMINDER_NAME, MR_TEMPLATE_REMINDER_SUBJECT, MR_TEMPLATE_REMINDER_BODY },
		{ MR_TEMPLATE_ESCALATION_NAME, MR_TEMPLATE_ESCALATION_SUBJECT,
		  MR_TEMPLATE_ESCALATION_BODY },
	};

	for (guint i = 0; i < G_N_ELEMENTS(templates); i++)
		if (mr_store_template_put(store, templates[i][0], templates[i][1], templates[i][2],
					  FALSE, now, &local) == 0 &&
		    local != NULL) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
	/* the calendar of records without a team's own: working hours in
	 * the configuration's timezone */
	return mr_store_calendar_put(store, MR_CALENDAR_DEFAULT, cfg->timezone,
				     MR_CALENDAR_DEFAULT_HOURS, FALSE, now, error) != 0;
}

static int
cmd_init(MrCtl *ctl, char **args)
{
	g_autofree char *name = mr_store_database_name(ctl->cfg);
	g_autoptr(GError) error = NULL;

	if (!mr_store_run(ctl->store, init_tx, ctl->cfg, &error))
		return store_fail(error);

	if (ctl->json) {
		g_autoptr(JsonObject) o = json_object_new();

		json_object_set_string_member(o, "database", name);
		json_object_set_int_member(o, "schema_version", mr_store_schema_version(ctl->store));
		mr_ctl_print_json_object(o);
	} else {
		mr_text_fprintf(stdout, "%s: schema version %d\n", name,
				mr_store_schema_version(ctl->store));
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
			mr_ctl_print_json_object(json_array_get_object_element(results, 0));
		else
			mr_ctl_print_json_array(results);
	}
	if (args[0] != NULL && !ctl->json)
		mr_text_fprintf(stderr, "delivered %u of %u messages in %.2f s (%.0f messages/s)\n",
				stored, n, g_timer_elapsed(timer, NULL),
				n / MAX(g_timer_elapsed(timer, NULL), 1e-6));
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
	id = mr_crm_user_add(ctl->store, email, ctl->name, &error);
	if (id == 0)
		return store_fail(error);
	if (ctl->json) {
		g_autoptr(JsonObject) o = json_object_new();

		json_object_set_int_member(o, "id", id);
		json_object_set_string_member(o, "email", email);
		mr_ctl_print_json_object(o);
	} else {
		mr_text_fprintf(stdout, "user %s (%" G_GINT64_FORMAT ")\n", email, id);
	}
	return 0;
}

typedef GPtrArray *(*MrCtlLister)(MrStore *store, gint64 limit, GError **error);

typedef struct {
	const char *noun;
	MrCtlLister list;
	const MrRowDesc *desc;
	const char *const columns[9];
} MrCtlList;

static const MrCtlList mr_ctl_lists[] = {
	{ "user", mr_store_users, &mr_user_row_desc,
	  { "id", "email", "name", "message_count", "away", NULL } },
	{ "contact", mr_store_contacts, &mr_contact_row_desc,
	  { "email", "name", "account", "owner", "message_count", NULL } },
	{ "account", mr_store_accounts, &mr_account_row_desc,
	  { "name", "domain", "contacts", "message_count", NULL } },
	{ "inbox", mr_store_leads, &mr_lead_row_desc,
	  { "id", "status", "title", "contact", "owner", "message_count", "created", NULL } },
	{ "opp", mr_store_opportunities, &mr_opportunity_row_desc,
	  { "id", "status", "stage", "title", "value", "contact", "owner", "message_count",
	    NULL } },
	{ "ticket", mr_store_tickets, &mr_ticket_row_desc,
	  { "id", "status", "priority", "subject", "contact", "owner", "message_count", NULL } },
	{ "message", mr_store_messages, &mr_message_row_desc,
	  { "id", "received", "from", "subject", "links", "auto", "parse_status", NULL } },
};

/* Rewrites a row's JSON object for people (joins arrays into one
 * string, marks members away, ...) before a table or show prints it. */
typedef void (*MrCtlForPeople)(JsonObject *o);

/* Prints @rows (structs of @desc) as JSON or as a table of @columns, each
 * through @for_people (nullable) first. */
static int
print_rows_for(MrCtl *ctl, GPtrArray *rows, const MrRowDesc *desc, const char *const *columns,
	       MrCtlForPeople for_people)
{
	g_autoptr(JsonArray) a = mr_ctl_json_rows(ctl->cfg, rows, desc);

	if (ctl->json) {
		mr_ctl_print_json_array(a);
		return 0;
	}
	for (guint i = 0; for_people != NULL && i < json_array_get_length(a); i++)
		for_people(json_array_get_object_element(a, i));
	mr_ctl_print_table(a, columns);
	return 0;
}

static int
print_rows(MrCtl *ctl, GPtrArray *rows, const MrRowDesc *desc, const char *const *columns)
{
	return print_rows_for(ctl, rows, desc, columns, NULL);
}

/* Prints @row (a struct of @desc) as a JSON object, or as field lines
 * through @for_people (nullable) first. */
static int
print_row(MrCtl *ctl, const MrRowDesc *desc, gconstpointer row, MrCtlForPeople for_people)
{
	g_autoptr(JsonObject) o = mr_ctl_json_row(ctl->cfg, desc, row);

	if (ctl->json) {
		mr_ctl_print_json_object(o);
		return 0;
	}
	if (for_people != NULL)
		for_people(o);
	mr_ctl_print_object(o);
	return 0;
}

/* Prints that @noun @name is @gone ("deleted"): a line, or {"name", @gone:
 * true}. */
static void
print_gone(MrCtl *ctl, const char *noun, const char *name, const char *gone)
{
	if (ctl->json) {
		g_autoptr(JsonObject) o = json_object_new();

		json_object_set_string_member(o, "name", name);
		json_object_set_boolean_member(o, gone, TRUE);
		mr_ctl_print_json_object(o);
	} else {
		mr_text_fprintf(stdout, "%s %s %s\n", noun, name, gone);
	}
}

static int
cmd_list(MrCtl *ctl, const char *noun)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(mr_ctl_lists); i++) {
		const MrCtlList *l = &mr_ctl_lists[i];

		if (strcmp(l->noun, noun) != 0)
			continue;
		rows = l->list(ctl->store, ctl->limit, &error);
		if (rows == NULL)
			return store_fail(error);
		return print_rows(ctl, rows, l->desc, l->columns);
	}
	g_assert_not_reached();
}

static int cmd_user_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "user"); }
static int cmd_contact_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "contact"); }
static int cmd_account_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "account"); }
static int cmd_inbox_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "inbox"); }
static int cmd_opp_list(MrCtl *ctl, char **args) { return cmd_list(ctl, "opp"); }
/* The first-response SLA of ticket @id (issue 24), from the timer of the
 * workflow first-response-sla: first_response_due, counted in the
 * ticket's calendar of now (null once answered, or without a timer), and
 * breached (answered after it, or not answered by now past it). */
static gboolean
ticket_sla(MrCtl *ctl, gint64 id, JsonObject *o, GError **error)
{
	MrRecordRef ref = { MR_RECORD_TICKET, id };
	g_autoptr(MrWorkflowSet) set = mr_workflow_hook_set(ctl->workflows, error);
	g_autofree char *started = NULL, *status = NULL, *answered = NULL, *due_text = NULL;
	g_autofree char *now = mr_clock_now_iso();
	const MrWorkflow *wf;
	gint64 wid = 0, due = -1;

	json_object_set_null_member(o, "first_response_due");
	json_object_set_boolean_member(o, "breached", FALSE);
	if (set == NULL)
		return FALSE;
	wf = mr_workflow_set_named(set, "first-response-sla", &wid);
	if (wf == NULL || wf->kind != MR_WORKFLOW_TIMER)
		return TRUE;
	if (!mr_store_record_timer(ctl->store, wid, ref, &started, &status, error))
		return FALSE;
	if (started == NULL)
		return TRUE;
	due = mr_crm_timer_due(wf, mr_crm_record_calendar(set, ctl->store, ref),
			       mr_clock_iso_to_unix(started));
	answered = mr_store_record_first_event(ctl->store, ref, "response.sent", started);
	if (!mr_store_check(ctl->store, error))
		return FALSE;
	if (due < 0)
		return TRUE;
	due_text = mr_clock_unix_to_iso(due);
	if (answered == NULL)
		json_object_set_string_member(o, "first_response_due", due_text);
	json_object_set_boolean_member(o, "breached",
				       mr_clock_iso_to_unix(answered != NULL ? answered : now) > due);
	return TRUE;
}

static int
cmd_ticket_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "id", "status", "priority", "subject", "contact",
					    "owner", "message_count", "first_response_due", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = mr_store_tickets(ctl->store, ctl->limit, &error);
	g_autoptr(JsonArray) a = NULL;

	if (rows == NULL)
		return store_fail(error);
	a = mr_ctl_json_rows(ctl->cfg, rows, &mr_ticket_row_desc);
	for (guint i = 0; i < rows->len; i++)
		if (!ticket_sla(ctl, ((MrTicketRow *)g_ptr_array_index(rows, i))->id,
				json_array_get_object_element(a, i), &error))
			return store_fail(error);
	if (ctl->json)
		mr_ctl_print_json_array(a);
	else
		mr_ctl_print_table(a, cols);
	return 0;
}
/* message list --quarantined: what IMAP mailboxes could not store. */
static int
cmd_quarantine_list(MrCtl *ctl)
{
	static const char *const cols[] = { "id", "mailbox", "uid", "size", "reason", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = mr_store_quarantined(ctl->store, ctl->limit, &error);

	if (rows == NULL)
		return store_fail(error);
	return print_rows(ctl, rows, &mr_quarantine_row_desc, cols);
}

static int
cmd_message_list(MrCtl *ctl, char **args)
{
	if (ctl->quarantined)
		return cmd_quarantine_list(ctl);
	return cmd_list(ctl, "message");
}

/* message retry ID: a quarantined message through the ingest path again,
 * for the mailbox it came from; it leaves the quarantine in the same
 * transaction that stores it. */
static int
cmd_message_retry(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	MrDelivery d = { 0 };
	char *end = NULL;
	gint64 id = g_ascii_strtoll(args[0], &end, 10);

	if (end == args[0] || *end != '\0' || id <= 0)
		return fail(MR_EX_USAGE, "'%s' is not a quarantine id (message list --quarantined)",
			    args[0]);
	if (!mr_ingest_quarantine_retry(ctl->cfg, ctl->store, id, &d, &error)) {
		if (g_error_matches(error, MR_INGEST_ERROR, MR_INGEST_ERROR_NO_MAILBOX))
			return fail(MR_EX_NOUSER, "%s", error->message);
		if (g_error_matches(error, MR_INGEST_ERROR, MR_INGEST_ERROR_UNUSABLE))
			return fail(MR_EX_DATAERR, "%s", error->message);
		return store_fail(error);
	}
	if (ctl->json) {
		g_autoptr(JsonObject) o = json_object_new();

		json_object_set_int_member(o, "id", id);
		json_object_set_int_member(o, "message", d.message_row);
		json_object_set_boolean_member(o, "duplicate", d.duplicate);
		if (d.record.kind != MR_RECORD_NONE) {
			g_autofree char *rec = mr_record_display_id(ctl->cfg, d.record);

			json_object_set_string_member(o, "record", rec);
		} else {
			json_object_set_null_member(o, "record");
		}
		mr_ctl_print_json_object(o);
	} else {
		mr_text_fprintf(stdout,
				"quarantined %" G_GINT64_FORMAT " stored as message %" G_GINT64_FORMAT
				"%s\n",
				id, d.message_row, d.duplicate ? " (it was stored before)" : "");
	}
	return 0;
}

/* The event feed: what workflows read, oldest first, after an id. */
static int
cmd_event_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "id", "created", "type", "record", "summary", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) events = NULL;

	gint64 after = 0;

	if ((ctl->after != NULL &&
	     !g_ascii_string_to_signed(ctl->after, 10, 0, G_MAXINT64, &after, NULL)) ||
	    ctl->limit < 0 || ctl->limit > G_MAXUINT)
		return fail(MR_EX_USAGE, "--after and --limit take a number of 0 or more");
	events = mr_store_events_after(ctl->store, after, (guint)ctl->limit, &error);
	if (events == NULL)
		return store_fail(error);
	mr_ctl_describe_events(ctl->cfg, events);
	return print_rows(ctl, events, &mr_event_desc, cols);
}

/* Prints the object @o of a show verb, with the messages linked to @kind
 * (MR_RECORD_NONE: the contact) @id as "messages". */
/* The configured IMAP mailboxes with what mailroomd last saved of each
 * (state "stopped" for one it never watched). */
static int
cmd_mailbox_status(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "name", "state", "last_uid", "backlog", "last_error",
					    NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) saved = mr_store_mailboxes(ctl->store, &error);
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)mr_mailbox_state_free);
	GPtrArray *mailboxes = mr_imap_config(ctl->cfg);

	if (saved == NULL)
		return store_fail(error);
	for (guint i = 0; i < mailboxes->len; i++) {
		const MrImapMailbox *mb = g_ptr_array_index(mailboxes, i);
		MrMailboxState *row = NULL;

		for (guint k = 0; k < saved->len && row == NULL; k++)
			if (g_ascii_strcasecmp(((MrMailboxState *)g_ptr_array_index(saved, k))->name,
					       mb->name) == 0)
				row = g_ptr_array_steal_index(saved, k);
		if (row == NULL) {
			row = g_new0(MrMailboxState, 1);
			row->state = g_strdup("stopped");
		}
		g_free(row->name);
		row->name = g_strdup(mb->name);
		g_ptr_array_add(rows, row);
	}
	return print_rows(ctl, rows, &mr_mailbox_state_desc, cols);
}

/* Finds mailroomd: $MAILROOM_MAILROOMD, beside this program (a build
 * tree), or where make install puts it. */
static char *
find_mailroomd(void)
{
	const char *env = g_getenv("MAILROOM_MAILROOMD");
	g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
	g_autofree char *dir = self != NULL ? g_path_get_dirname(self) : NULL;
	g_autofree char *beside = dir != NULL ? g_build_filename(dir, "mailroomd", NULL) : NULL;

	if (env != NULL && *env != '\0')
		return g_strdup(env);
	if (beside != NULL && g_file_test(beside, G_FILE_TEST_IS_EXECUTABLE))
		return g_steal_pointer(&beside);
	return g_build_filename(MR_SBINDIR, "mailroomd", NULL);
}

/* mailbox test NAME: mailroomd (which holds the IMAP client; mailroomctl,
 * run by MTAs for every message, stays without it) connects, logs in,
 * shows the capabilities and the folder, and fetches nothing. */
static int
cmd_mailbox_test(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *daemon = find_mailroomd();
	const char *config = ctl->config_path != NULL ? ctl->config_path
						      : mr_config_default_path();
	const char *argv[] = { daemon, "-c", config, "--test-mailbox", args[0],
			       ctl->json ? "--json" : NULL, NULL };
	int status = 0;

	if (mr_imap_config_find(ctl->cfg, args[0]) == NULL)
		return fail(MR_EX_NOUSER, "no mailbox %s in the imap list of %s", args[0],
			    ctl->cfg->path);
	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL,
			  NULL, &status, &error))
		return fail(MR_EX_UNAVAILABLE, "cannot run %s: %s", daemon, error->message);
	return WIFEXITED(status) ? WEXITSTATUS(status) : MR_EX_SOFTWARE;
}

static int
print_shown(MrCtl *ctl, JsonObject *o, MrRecordKind kind, gint64 id)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) owned = o;
	g_autoptr(GPtrArray) messages = mr_store_linked_messages(ctl->store, kind, id, &error);

	if (messages == NULL)
		return store_fail(error);
	json_object_set_array_member(o, "messages",
				     mr_ctl_json_rows(ctl->cfg, messages, &mr_message_brief_desc));
	if (ctl->json)
		mr_ctl_print_json_object(o);
	else
		mr_ctl_print_object(o);
	return 0;
}

static int
cmd_contact_show(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *email = mr_address_normalise(args[0]);
	g_autoptr(MrContactRow) row = mr_store_contact_get(ctl->store, email, &error);

	if (row == NULL)
		return store_fail(error);
	return print_shown(ctl, mr_ctl_json_row(ctl->cfg, &mr_contact_row_desc, row),
			   MR_RECORD_NONE, row->id);
}

/* Parses @text as a record id of @kind; prints the error itself. */
static gboolean
ctl_record_arg(MrCtl *ctl, const char *text, MrRecordKind kind, MrRecordRef *ref)
{
	if (mr_record_parse_id(ctl->cfg, text, kind == MR_RECORD_LEAD ? kind : MR_RECORD_NONE,
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
	gpointer row;
	const MrRowDesc *desc;
	JsonObject *o;

	if (!ctl_record_arg(ctl, text, kind, &ref))
		return 1;
	switch (kind) {
	case MR_RECORD_LEAD:
		row = mr_store_lead_get(ctl->store, ref.id, &error);
		desc = &mr_lead_row_desc;
		break;
	case MR_RECORD_OPPORTUNITY:
		row = mr_store_opportunity_get(ctl->store, ref.id, &error);
		desc = &mr_opportunity_row_desc;
		break;
	case MR_RECORD_TICKET:
		row = mr_store_ticket_get(ctl->store, ref.id, &error);
		desc = &mr_ticket_row_desc;
		break;
	default:
		g_assert_not_reached();
	}
	if (row == NULL)
		return store_fail(error);
	o = mr_ctl_json_row(ctl->cfg, desc, row);
	desc->free(row);
	{
		g_auto(GStrv) tags = mr_store_record_tags(ctl->store, ref);
		JsonArray *a = json_array_new();

		if (!mr_store_check(ctl->store, &error)) {
			json_object_unref(o);
			return store_fail(error);
		}
		for (char **t = tags; *t != NULL; t++)
			json_array_add_string_element(a, *t);
		json_object_set_array_member(o, "tags", a);
		if (kind == MR_RECORD_TICKET && !ticket_sla(ctl, ref.id, o, &error)) {
			json_object_unref(o);
			return store_fail(error);
		}
	}
	return print_shown(ctl, o, kind, ref.id);
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
		mr_ctl_print_json_object(o);
	} else if (what != NULL) {
		mr_text_fprintf(stdout, "%s %s\n", display, what);
	} else {
		mr_text_fprintf(stdout, "%s\n", display);
	}
}

static int
cmd_inbox_convert(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	MrRecordRef ref, opp = { MR_RECORD_OPPORTUNITY, 0 };

	if (!ctl_record_arg(ctl, args[0], MR_RECORD_LEAD, &ref))
		return 1;
	opp.id = mr_crm_lead_convert(ctl->cfg, ctl->store, ref.id, &error);
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
	if (!mr_crm_lead_archive(ctl->cfg, ctl->store, ref.id, &error))
		return store_fail(error);
	print_id(ctl, ref, mr_status_name(MR_RECORD_LEAD, MR_LEAD_ARCHIVED));
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
	ref.id = mr_crm_opp_add(ctl->cfg, ctl->store, ctl->title, contact, owner, value,
				&error);
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
	if (!mr_crm_opp_close(ctl->cfg, ctl->store, ref.id, won, ctl->reason, &error))
		return store_fail(error);
	print_id(ctl, ref, mr_status_name(MR_RECORD_OPPORTUNITY, won ? MR_OPP_WON : MR_OPP_LOST));
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
	if (!mr_crm_ticket_set_status(ctl->cfg, ctl->store, ref.id, status, &error))
		return g_error_matches(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID)
			       ? fail(MR_EX_USAGE, "%s", error->message)
			       : store_fail(error);
	print_id(ctl, ref, status);
	return 0;
}

static int
cmd_timeline(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "received", "created", "kind", "subject", "message_id",
					    "sent", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autofree char *target = mr_address_normalise(args[0]);
	MrRecordRef ref = { MR_RECORD_NONE, 0 };

	if (strchr(target, '@') != NULL)
		rows = mr_store_timeline(ctl->store, target, NULL, ref, &error);
	else if (mr_record_parse_id(ctl->cfg, target, MR_RECORD_NONE, &ref))
		rows = mr_store_timeline(ctl->store, NULL, NULL, ref, &error);
	else if (strchr(target, '.') != NULL)
		rows = mr_store_timeline(ctl->store, NULL, target, ref, &error);
	else
		return fail(1, "'%s' is no email address, domain or record id", args[0]);
	if (rows == NULL)
		return store_fail(error);
	mr_ctl_describe_timeline(ctl->cfg, rows);
	return print_rows(ctl, rows, &mr_timeline_entry_desc, cols);
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
		g_autoptr(MrMessageDetail) d = mr_store_message_get(ctl->store, id, &error);
		g_autoptr(GBytes) raw = d != NULL ? mr_store_message_raw(ctl->store, id, &error) : NULL;
		g_autoptr(JsonObject) o = NULL;
		MrParseOptions opts = {
			.fallback_charsets = (const char *const *)ctl->cfg->parse.fallback_charsets
		};
		g_autoptr(MrMessage) msg = NULL;

		if (raw == NULL)
			return store_fail(error);
		/* The body is not stored apart from the raw bytes: parse them. */
		msg = mr_parse_message(raw, &opts);
		o = mr_ctl_json_row(ctl->cfg, &mr_message_detail_desc, d);
		json_object_set_string_member(o, "body", msg->body_text);
		if (ctl->json) {
			mr_ctl_print_json_object(o);
		} else {
			mr_ctl_print_object(o);
			mr_text_fprintf(stdout, "\n%s\n", msg->body_text != NULL ? msg->body_text : "");
		}
		return 0;
	}
}

/* --- teams ------------------------------------------------------------------ */

/* Prints team @name as team show does. */
static int
team_print(MrCtl *ctl, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrTeamRow) row = mr_store_team_get(ctl->store, name, &error);

	if (row == NULL)
		return store_fail(error);
	return print_row(ctl, &mr_team_row_desc, row, mr_ctl_team_for_people);
}

/* Exit code for a refused change of team @team: a bad name, or a user who
 * is not there, is a mistake on the command line (64), as in rule add; a
 * team not there, a name taken or a request the data refuses is 1. */
static int
team_fail(MrCtl *ctl, const char *team, const GError *error)
{
	/* "no team" and "no user" are both not found: the team tells */
	if (error->domain == MR_RULE_ERROR ||
	    (g_error_matches(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND) &&
	     mr_store_team_id(ctl->store, team) != 0))
		return fail(MR_EX_USAGE, "%s", error->message);
	return store_fail(error);
}

static int
cmd_team_add(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *lead = ctl->lead != NULL ? mr_address_normalise(ctl->lead) : NULL;

	for (char **a = args + 1; *a != NULL; a++)
		g_ptr_array_add(members, mr_address_normalise(*a));
	g_ptr_array_add(members, NULL);
	if (!mr_crm_team_add(ctl->store, args[0], (const char *const *)members->pdata, lead,
			     &error)) {
		/* what was typed is refused (64); a name taken is 1 */
		if (error->domain == MR_RULE_ERROR ||
		    (error->domain == MR_CRM_ERROR && error->code != MR_CRM_ERROR_EXISTS))
			return fail(MR_EX_USAGE, "%s", error->message);
		return store_fail(error);
	}
	return team_print(ctl, args[0]);
}

static int
cmd_team_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "name", "members", "lead", "next", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = mr_store_teams(ctl->store, &error);

	if (rows == NULL)
		return store_fail(error);
	return print_rows_for(ctl, rows, &mr_team_row_desc, cols, mr_ctl_team_for_people);
}

static int
cmd_team_show(MrCtl *ctl, char **args)
{
	return team_print(ctl, args[0]);
}

static int
cmd_team_remove(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;

	if (!mr_crm_team_remove(ctl->store, args[0], &error))
		return store_fail(error);
	print_gone(ctl, "team", args[0], "removed");
	return 0;
}

/* team member add|remove NAME USER */
static int
cmd_team_member(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *user = mr_address_normalise(args[2]);
	gboolean ok;

	if (strcmp(args[0], "add") == 0)
		ok = mr_crm_team_member_add(ctl->store, args[1], user, &error);
	else if (strcmp(args[0], "remove") == 0)
		ok = mr_crm_team_member_remove(ctl->store, args[1], user, &error);
	else
		return fail(MR_EX_USAGE, "team member %s: say add or remove (try --help)", args[0]);
	if (!ok)
		return team_fail(ctl, args[1], error);
	return team_print(ctl, args[1]);
}

/* --- calendars (business hours) ---------------------------------------------- */

static int
calendar_print(MrCtl *ctl, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrCalendarRow) row = mr_store_calendar_get(ctl->store, name, &error);

	if (row == NULL)
		return store_fail(error);
	return print_row(ctl, &mr_calendar_row_desc, row, NULL);
}

/* A calendar to write: its checked values. */
typedef struct {
	const char *name, *zone;
	char *hours;            /* canonical (mr_calendar_hours_text()) */
	gboolean clear;         /* its holidays go first */
	const char *const *add; /* (nullable) holidays to add */
} CalendarSet;

static gboolean
calendar_set_tx(MrStore *store, gpointer data, GError **error)
{
	CalendarSet *c = data;
	g_autofree char *now = mr_clock_now_iso();
	gint64 id;

	/* the running daemons read calendars with the rules */
	if (mr_store_rules_bump(store, error) == 0)
		return FALSE;
	id = mr_store_calendar_put(store, c->name, c->zone, c->hours, TRUE, now, error);
	if (id == 0 || (c->clear && !mr_store_calendar_holidays_clear(store, id, error)))
		return FALSE;
	for (const char *const *d = c->add; d != NULL && *d != NULL; d++)
		if (!mr_store_calendar_holiday_add(store, id, *d, error))
			return FALSE;
	return TRUE;
}

/* calendar set NAME [--tz] [--hours] [--holiday DATE...] [--clear-holidays]:
 * what is not given stays as it was (a new calendar: the configuration's
 * timezone; --hours it needs). */
static int
cmd_calendar_set(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrCalendarRow) old = NULL;
	g_autoptr(MrCalendar) cal = NULL;
	g_autoptr(GStrvBuilder) days = g_strv_builder_new();
	g_auto(GStrv) all = NULL;
	g_autofree char *hours = NULL;
	CalendarSet c = { args[0], NULL, NULL, ctl->clear_holidays,
			  (const char *const *)ctl->holidays };

	if (!mr_rule_check_name("calendar", args[0], &error))
		return fail(MR_EX_USAGE, "%s", error->message);
	old = mr_store_calendar_get(ctl->store, args[0], &error);
	if (old == NULL && !g_error_matches(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND))
		return store_fail(error);
	g_clear_error(&error);
	c.zone = ctl->tz != NULL ? ctl->tz : old != NULL ? old->zone : ctl->cfg->timezone;
	if (ctl->hours == NULL && old == NULL)
		return fail(MR_EX_USAGE, "calendar %s is new: say its working hours with --hours"
			    " (try --help)", args[0]);
	if (old != NULL && !ctl->clear_holidays)
		g_strv_builder_addv(days, (const char **)old->holidays);
	if (ctl->holidays != NULL)
		g_strv_builder_addv(days, (const char **)ctl->holidays);
	all = g_strv_builder_end(g_steal_pointer(&days));
	cal = mr_calendar_new(c.zone, ctl->hours != NULL ? ctl->hours : old->hours,
			      (const char *const *)all, &error);
	if (cal == NULL)
		return fail(MR_EX_USAGE, "calendar %s: %s", args[0], error->message);
	hours = mr_calendar_hours_text(cal);
	c.hours = hours;
	if (!mr_store_run(ctl->store, calendar_set_tx, &c, &error))
		return store_fail(error);
	return calendar_print(ctl, args[0]);
}

static int
cmd_calendar_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "name", "zone", "hours", "holidays", "teams", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = mr_store_calendars(ctl->store, &error);

	if (rows == NULL)
		return store_fail(error);
	return print_rows(ctl, rows, &mr_calendar_row_desc, cols);
}

static int
cmd_calendar_show(MrCtl *ctl, char **args)
{
	return calendar_print(ctl, args[0]);
}

static gboolean
calendar_delete_tx(MrStore *store, gpointer data, GError **error)
{
	gint64 *id = data;

	return mr_store_rules_bump(store, error) != 0 &&
	       mr_store_calendar_delete(store, *id, error);
}

static int
cmd_calendar_delete(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrCalendarRow) row = NULL;
	g_autofree char *teams = NULL;

	if (strcmp(args[0], MR_CALENDAR_DEFAULT) == 0)
		return fail(1, "calendar %s cannot go: the records of a team without a calendar"
			    " count in it (change it with calendar set)", args[0]);
	row = mr_store_calendar_get(ctl->store, args[0], &error);
	if (row == NULL)
		return store_fail(error);
	if (row->teams[0] != NULL) {
		teams = g_strjoinv(" ", row->teams);
		return fail(1, "calendar %s is the calendar of team %s: give it another first"
			    " (team calendar TEAM default)", args[0], teams);
	}
	if (!mr_store_run(ctl->store, calendar_delete_tx, &row->id, &error))
		return store_fail(error);
	print_gone(ctl, "calendar", args[0], "deleted");
	return 0;
}

typedef struct {
	gint64 team, calendar;
} TeamCalendar;

static gboolean
team_calendar_tx(MrStore *store, gpointer data, GError **error)
{
	TeamCalendar *tc = data;

	return mr_store_rules_bump(store, error) != 0 &&
	       mr_store_team_set_calendar(store, tc->team, tc->calendar, error);
}

/* team calendar TEAM CALENDAR: "default" counts in default (and follows
 * it). */
static int
cmd_team_calendar(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	TeamCalendar tc = { mr_store_team_id(ctl->store, args[0]), 0 };

	if (tc.team == 0)
		return fail(1, "no team %s", args[0]);
	if (strcmp(args[1], MR_CALENDAR_DEFAULT) != 0) {
		tc.calendar = mr_store_calendar_id(ctl->store, args[1]);
		if (tc.calendar == 0)
			return fail(1, "no calendar %s (calendar list shows them)", args[1]);
	}
	if (!mr_store_run(ctl->store, team_calendar_tx, &tc, &error))
		return store_fail(error);
	return team_print(ctl, args[0]);
}

/* user away EMAIL on|off */
static int
cmd_user_away(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *email = mr_address_normalise(args[0]);
	gboolean away = strcmp(args[1], "on") == 0;

	if (!away && strcmp(args[1], "off") != 0)
		return fail(MR_EX_USAGE, "user away %s %s: say on or off", args[0], args[1]);
	if (!mr_crm_user_away(ctl->store, email, away, &error))
		return store_fail(error);
	if (ctl->json) {
		g_autoptr(JsonObject) o = json_object_new();

		json_object_set_string_member(o, "email", email);
		json_object_set_boolean_member(o, "away", away);
		mr_ctl_print_json_object(o);
	} else {
		mr_text_fprintf(stdout, "user %s %s\n", email, away ? "away" : "back");
	}
	return 0;
}

/* --- rules ------------------------------------------------------------------ */

/* The word rule test prints for what the mail becomes. */
static const char *
trial_action(MrAction action)
{
	switch (action) {
	case MR_ACTION_TICKET_CREATE:
	case MR_ACTION_TICKET_UPDATE:
		return "ticket";
	case MR_ACTION_LEAD_CREATE:
	case MR_ACTION_LEAD_UPDATE:
		return "lead";
	case MR_ACTION_IGNORE:
		return "ignore";
	case MR_ACTION_LOG:
	default:
		return "log";
	}
}

static JsonArray *
strings_array(char *const *v)
{
	JsonArray *a = json_array_new();

	for (gsize i = 0; v != NULL && v[i] != NULL; i++)
		json_array_add_string_element(a, v[i]);
	return a;
}

/* explain: [{rule fired stopped ran conditions: [{condition result value}]}] */
static JsonArray *
trial_explain(const GPtrArray *explain)
{
	JsonArray *a = json_array_new();

	for (guint i = 0; explain != NULL && i < explain->len; i++) {
		const MrRuleExplain *e = g_ptr_array_index(explain, i);
		JsonObject *o = json_object_new();
		JsonArray *conds = json_array_new();

		json_object_set_string_member(o, "rule", e->rule);
		json_object_set_boolean_member(o, "ran", e->ran);
		json_object_set_boolean_member(o, "fired", e->fired);
		json_object_set_boolean_member(o, "stopped", e->stopped);
		for (guint j = 0; j < e->conditions->len; j++) {
			const MrRuleExplainCond *c = g_ptr_array_index(e->conditions, j);
			JsonObject *co = json_object_new();

			json_object_set_string_member(co, "condition", c->condition);
			json_object_set_boolean_member(co, "result", c->result);
			json_object_set_string_member(co, "value", c->value);
			json_array_add_object_element(conds, co);
		}
		json_object_set_array_member(o, "conditions", conds);
		json_array_add_object_element(a, o);
	}
	return a;
}

/* What the record of a trial delivery looks like before the rollback:
 * priority, type and owner from its row, its tags. */
static gboolean
trial_record(MrCtl *ctl, MrRecordRef ref, JsonObject *o, GError **error)
{
	g_autoptr(JsonObject) row = NULL;
	g_auto(GStrv) tags = NULL;

	json_object_set_null_member(o, "priority");
	json_object_set_null_member(o, "type");
	json_object_set_null_member(o, "owner");
	if (ref.kind == MR_RECORD_NONE) {
		json_object_set_array_member(o, "tags", json_array_new());
		return TRUE;
	}
	if (ref.kind == MR_RECORD_TICKET) {
		g_autoptr(MrTicketRow) t = mr_store_ticket_get(ctl->store, ref.id, error);

		if (t == NULL)
			return FALSE;
		row = mr_ctl_json_row(ctl->cfg, &mr_ticket_row_desc, t);
		json_object_set_string_member(o, "priority",
					      json_object_get_string_member(row, "priority"));
		json_object_set_string_member(o, "type", json_object_get_string_member(row, "type"));
	} else if (ref.kind == MR_RECORD_LEAD) {
		g_autoptr(MrLeadRow) l = mr_store_lead_get(ctl->store, ref.id, error);

		if (l == NULL)
			return FALSE;
		row = mr_ctl_json_row(ctl->cfg, &mr_lead_row_desc, l);
	} else {
		g_autoptr(MrOpportunityRow) p = mr_store_opportunity_get(ctl->store, ref.id, error);

		if (p == NULL)
			return FALSE;
		row = mr_ctl_json_row(ctl->cfg, &mr_opportunity_row_desc, p);
	}
	if (json_object_get_string_member_with_default(row, "owner", NULL) != NULL)
		json_object_set_string_member(o, "owner", json_object_get_string_member(row, "owner"));
	tags = mr_store_record_tags(ctl->store, ref);
	json_object_set_array_member(o, "tags", strings_array(tags));
	return mr_store_check(ctl->store, error);
}

/* For people: the explained run, rule after rule. */
static void
trial_explain_print(const GPtrArray *explain)
{
	for (guint i = 0; explain != NULL && i < explain->len; i++) {
		const MrRuleExplain *e = g_ptr_array_index(explain, i);

		mr_text_fprintf(stdout, "rule %s: %s\n", e->rule,
				!e->ran	     ? "not run (an earlier rule stopped the run)"
				: e->stopped ? "fired, and stopped the run"
				: e->fired   ? "fired"
					     : "did not fire");
		for (guint j = 0; j < e->conditions->len; j++) {
			const MrRuleExplainCond *c = g_ptr_array_index(e->conditions, j);

			mr_text_fprintf(stdout, "  %-5s %s   [%s]\n", c->result ? "yes" : "no",
					c->condition, c->value);
		}
	}
}

/* rule test: the delivery of FILE to --to, made in a transaction that is
 * rolled back, so that what it prints is what a delivery of the same
 * file would do now -- the same routing, rules, round-robin turn and
 * CRM step -- and nothing is written. */
static int
cmd_rule_test(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GMappedFile) map = NULL;
	g_autoptr(GBytes) raw = NULL;
	g_autoptr(MrIngestItem) item = NULL;
	g_autoptr(MrRuleSet) set = NULL;
	g_autoptr(MrPlan) plan = NULL;
	g_autoptr(JsonObject) o = json_object_new();
	MrDelivery d = { 0 };
	MrRecordRef ref;

	if (ctl->to == NULL)
		return fail(MR_EX_USAGE, "rule test needs --to ADDRESS");
	if (mr_config_find_address(ctl->cfg, ctl->to, NULL) == NULL)
		return fail(MR_EX_NOUSER, "%s is not a mailroom address", ctl->to);
	map = g_mapped_file_new(args[0], FALSE, &error);
	if (map == NULL)
		return fail(MR_EX_NOINPUT, "%s", error->message);
	raw = g_mapped_file_get_bytes(map);
	if (g_bytes_get_size(raw) == 0)
		return fail(MR_EX_DATAERR, "%s: empty message", args[0]);
	if ((gint64)g_bytes_get_size(raw) > ctl->cfg->limits.max_message_size)
		return fail(MR_EX_DATAERR, "%s: message too large", args[0]);
	item = mr_ingest_item_new(ctl->cfg, raw);
	if (!mr_store_begin(ctl->store, &error))
		return store_fail(error);
	set = mr_crm_rules_load(ctl->store, &error);
	if (set != NULL)
		mr_ingest_item_scan(ctl->cfg, item, set, TRUE);
	if (set == NULL || !mr_ingest_apply_plan(ctl->cfg, ctl->store, item, ctl->to, ctl->from,
						 &d, &plan, &error)) {
		mr_store_rollback(ctl->store);
		return store_fail(error);
	}
	ref = d.duplicate ? plan->record : d.record;
	json_object_set_array_member(o, "rules", strings_array(plan->rules != NULL
									? (char **)plan->rules->fired->pdata
									: NULL));
	json_object_set_string_member(o, "action", trial_action(plan->action));
	if (plan->action == MR_ACTION_TICKET_CREATE || plan->action == MR_ACTION_LEAD_CREATE ||
	    ref.kind == MR_RECORD_NONE) {
		json_object_set_null_member(o, "record");
	} else {
		g_autofree char *id = mr_record_display_id(ctl->cfg, ref);

		json_object_set_string_member(o, "record", id);
	}
	if (!trial_record(ctl, ref, o, &error)) {
		mr_store_rollback(ctl->store);
		return store_fail(error);
	}
	json_object_set_boolean_member(o, "duplicate", d.duplicate);
	mr_store_rollback(ctl->store);
	if (ctl->explain && ctl->json)
		json_object_set_array_member(o, "explain", trial_explain(plan->rules != NULL
									 ? plan->rules->explain
									 : NULL));
	if (ctl->json) {
		mr_ctl_print_json_object(o);
		return 0;
	}
	if (ctl->explain)
		trial_explain_print(plan->rules != NULL ? plan->rules->explain : NULL);
	{
		JsonArray *rules = json_object_get_array_member(o, "rules");
		g_autoptr(GString) names = g_string_new(NULL);

		if (ctl->explain)
			mr_text_fprintf(stdout, "\n");
		for (guint i = 0; i < json_array_get_length(rules); i++)
			g_string_append_printf(names, "%s%s", i > 0 ? ", " : "",
					       json_array_get_string_element(rules, i));
		json_object_set_string_member(o, "rules", names->len > 0 ? names->str : "(none)");
		mr_ctl_print_object(o);
	}
	return 0;
}

/* Parses @text as a position (a whole number >= 1) into @out; prints the
 * error itself (exit 64). */
static gboolean
ctl_position_arg(const char *what, const char *text, gint64 *out)
{
	char *end = NULL;

	errno = 0;
	*out = g_ascii_strtoll(text, &end, 10);
	if (errno == 0 && end != text && *end == '\0' && *out >= 1)
		return TRUE;
	fail(MR_EX_USAGE, "%s must be a whole number from 1 ('%s')", what, text);
	return FALSE;
}

/* For people: member @key of @o, an array of strings, as one string, its
 * items joined by @sep (a table cell joins them by spaces, which would
 * run the conditions into each other). */
static void
join_member(JsonObject *o, const char *key, const char *sep)
{
	JsonArray *a = json_object_get_array_member(o, key);
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; a != NULL && i < json_array_get_length(a); i++)
		g_string_append_printf(out, "%s%s", i > 0 ? sep : "",
				       json_array_get_string_element(a, i));
	json_object_set_string_member(o, key, out->str);
}

static void
rule_for_people(JsonObject *o)
{
	join_member(o, "conditions", json_object_get_boolean_member(o, "any") ? " or " : " and ");
	join_member(o, "actions", ", ");
}

/* Prints rule @name as rule show does. */
static int
rule_print(MrCtl *ctl, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrRuleRow) row = mr_store_rule_get(ctl->store, name, &error);

	if (row == NULL)
		return store_fail(error);
	return print_row(ctl, &mr_rule_row_desc, row, rule_for_people);
}

/* Exit code for a refused rule change: its grammar or an owner that is not
 * there is a mistake on the command line (64); a name taken or a rule
 * not found contradicts the data (1). */
static int
rule_fail(const GError *error)
{
	if (error->domain == MR_RULE_ERROR ||
	    g_error_matches(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND))
		return fail(MR_EX_USAGE, "%s", error->message);
	return store_fail(error);
}

static int
cmd_rule_add(MrCtl *ctl, char **args)
{
	static const char *const none[] = { NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(MrRule) rule = NULL;
	gint64 position = 0;

	if (ctl->position != NULL && !ctl_position_arg("--position", ctl->position, &position))
		return MR_EX_USAGE;
	rule = mr_rule_new(args[0], ctl->conds != NULL ? (const char *const *)ctl->conds : none,
			   ctl->actions != NULL ? (const char *const *)ctl->actions : none,
			   ctl->any, ctl->stop, &error);
	if (rule == NULL)
		return rule_fail(error);
	if (mr_crm_rule_add(ctl->store, rule, position, &error) == 0) {
		/* the existing rule was not the user's to touch: exists, not found */
		if (g_error_matches(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS))
			return fail(1, "%s", error->message);
		return rule_fail(error);
	}
	return rule_print(ctl, rule->name);
}

static int
cmd_rule_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "position", "name", "enabled", "conditions", "actions",
					    "stop", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = mr_store_rules(ctl->store, &error);

	if (rows == NULL)
		return store_fail(error);
	return print_rows_for(ctl, rows, &mr_rule_row_desc, cols, rule_for_people);
}

static int
cmd_rule_show(MrCtl *ctl, char **args)
{
	return rule_print(ctl, args[0]);
}

static int
rule_enable(MrCtl *ctl, const char *name, gboolean enabled)
{
	g_autoptr(GError) error = NULL;

	if (!mr_crm_rule_enable(ctl->store, name, enabled, &error))
		return store_fail(error);
	return rule_print(ctl, name);
}

static int cmd_rule_enable(MrCtl *ctl, char **args) { return rule_enable(ctl, args[0], TRUE); }
static int cmd_rule_disable(MrCtl *ctl, char **args) { return rule_enable(ctl, args[0], FALSE); }

static int
cmd_rule_delete(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;

	if (!mr_crm_rule_delete(ctl->store, args[0], &error))
		return store_fail(error);
	print_gone(ctl, "rule", args[0], "deleted");
	return 0;
}

static int
cmd_rule_move(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	gint64 position;

	if (!ctl_position_arg("the position", args[1], &position))
		return MR_EX_USAGE;
	if (mr_crm_rule_move(ctl->store, args[0], position, &error) == 0)
		return store_fail(error);
	return rule_print(ctl, args[0]);
}

/* rule export: every rule as a rules file (mr-ctl-rules-file.h) on
 * standard output; --json prints what rule list --json prints. */
static int
cmd_rule_export(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autofree char *now = NULL;

	if (ctl->json)
		return cmd_rule_list(ctl, args);
	rows = mr_store_rules(ctl->store, &error);
	if (rows == NULL)
		return store_fail(error);
	now = mr_clock_now_iso();
	mr_ctl_rules_file_write(stdout, now, mr_store_schema_version(ctl->store), rows);
	return 0;
}

/* rule import FILE: every rule replaced by those of FILE, or nothing
 * changed; each refusal names FILE:LINE and the rule (exit 64), a file
 * that cannot be read is 66 as deliver's FILE is. */
static int
cmd_rule_import(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrCtlRulesFile) file = mr_ctl_rules_file_read(args[0], &error);
	const GPtrArray *rules;
	guint refused = 0;

	if (file == NULL)
		return fail(error->domain == G_FILE_ERROR ? MR_EX_NOINPUT : MR_EX_USAGE, "%s",
			    error->message);
	rules = mr_ctl_rules_file_rules(file);
	if (!mr_crm_rules_replace(ctl->store, rules, &refused, &error)) {
		if (error->domain != MR_CRM_ERROR)
			return store_fail(error);
		mr_ctl_rules_file_locate(file, refused, &error);
		return fail(MR_EX_USAGE, "%s", error->message);
	}
	if (ctl->json) {
		g_autoptr(JsonObject) o = json_object_new();

		json_object_set_int_member(o, "imported", rules->len);
		mr_ctl_print_json_object(o);
	} else {
		mr_text_fprintf(stdout, "%u rule%s imported from %s\n", rules->len,
				rules->len == 1 ? "" : "s", args[0]);
	}
	return 0;
}


/* --- outgoing mail ----------------------------------------------------------- */

static const char *const outbox_states[] = {
	MR_OUTBOX_QUEUED, MR_OUTBOX_SENDING, MR_OUTBOX_SENT, MR_OUTBOX_FAILED,
	MR_OUTBOX_CANCELLED, MR_OUTBOX_BOUNCED, NULL,
};

static int
cmd_outbox_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "id", "to", "status", "attempts", "next_attempt",
					    "record", "subject", "last_error", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = NULL;

	if (ctl->status != NULL && !g_strv_contains(outbox_states, ctl->status)) {
		g_autofree char *known = g_strjoinv(", ", (char **)outbox_states);

		return fail(MR_EX_USAGE, "unknown outbox status '%s' (%s)", ctl->status, known);
	}
	rows = mr_store_outbox(ctl->store, ctl->status, ctl->limit, &error);
	if (rows == NULL)
		return store_fail(error);
	return print_rows(ctl, rows, &mr_outbox_row_desc, cols);
}

/* The id of a row @what is (a positive number, as @list shows it). */
static gboolean
ctl_id_arg(const char *text, const char *what, const char *list, gint64 *id)
{
	char *end = NULL;

	*id = g_ascii_strtoll(text, &end, 10);
	if (end == text || *end != '\0' || *id <= 0) {
		fail(MR_EX_USAGE, "'%s' is not %s id (a number: %s)", text, what, list);
		return FALSE;
	}
	return TRUE;
}

/* An outbox id: a positive number. */
static gboolean
ctl_outbox_arg(const char *text, gint64 *id)
{
	return ctl_id_arg(text, "an outgoing mail's", "outbox list", id);
}

typedef struct {
	gint64 id;
	const char *status;
	const char *const *from;
	gboolean changed;
	MrOutboxRow *row; /* as the change left it: a running outbox may take
			     the mail on at once */
} OutboxChange;

static gboolean
outbox_change_tx(MrStore *store, gpointer data, GError **error)
{
	OutboxChange *c = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autoptr(GError) local = NULL;

	c->changed = mr_store_outbox_set_status(store, c->id, c->status, c->from, now, &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	c->row = mr_store_outbox_get(store, c->id, error);
	return c->row != NULL;
}

/* outbox retry ID (a failed, cancelled or bounced mail, or a queued one
 * at once) and outbox cancel ID (one not yet sent). */
static int
outbox_change(MrCtl *ctl, const char *arg, const char *status, const char *const *from)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrOutboxRow) row = NULL;
	OutboxChange c = { 0, status, from, FALSE, NULL };

	if (!ctl_outbox_arg(arg, &c.id))
		return MR_EX_USAGE;
	if (!mr_store_run(ctl->store, outbox_change_tx, &c, &error)) {
		g_clear_pointer(&c.row, mr_outbox_row_free);
		return store_fail(error);
	}
	row = g_steal_pointer(&c.row);
	if (!c.changed)
		return fail(1, "outgoing mail %" G_GINT64_FORMAT " is %s: %s", c.id, row->status,
			    strcmp(status, MR_OUTBOX_QUEUED) == 0 ? "nothing to retry"
								  : "too late to cancel");
	return print_row(ctl, &mr_outbox_row_desc, row, NULL);
}

static int
cmd_outbox_retry(MrCtl *ctl, char **args)
{
	static const char *const from[] = { MR_OUTBOX_FAILED, MR_OUTBOX_CANCELLED,
					    MR_OUTBOX_BOUNCED, MR_OUTBOX_QUEUED, NULL };

	return outbox_change(ctl, args[0], MR_OUTBOX_QUEUED, from);
}

static int
cmd_outbox_cancel(MrCtl *ctl, char **args)
{
	static const char *const from[] = { MR_OUTBOX_QUEUED, MR_OUTBOX_FAILED, NULL };

	return outbox_change(ctl, args[0], MR_OUTBOX_CANCELLED, from);
}

typedef struct {
	gint64 id;
	gboolean changed;
	MrJobRow *row; /* as the change left it */
} JobCancel;

static gboolean
job_cancel_tx(MrStore *store, gpointer data, GError **error)
{
	JobCancel *c = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autoptr(GError) local = NULL;

	c->changed = mr_store_job_cancel(store, c->id, now, &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	c->row = mr_store_job_get(store, c->id, error);
	return c->row != NULL;
}

/* job cancel ID: a job that waits (due, or failed) will not run. */
static int
cmd_job_cancel(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrJobRow) row = NULL;
	JobCancel c = { 0 };

	if (!ctl_id_arg(args[0], "a job's", "job list", &c.id))
		return MR_EX_USAGE;
	if (!mr_store_run(ctl->store, job_cancel_tx, &c, &error)) {
		g_clear_pointer(&c.row, mr_job_row_free);
		return store_fail(error);
	}
	row = g_steal_pointer(&c.row);
	if (!c.changed)
		return fail(1, "job %" G_GINT64_FORMAT " is %s: %s", c.id, row->status,
			    strcmp(row->status, MR_JOB_RUNNING) == 0
				    ? "a daemon runs it now" : "nothing to cancel");
	return print_row(ctl, &mr_job_row_desc, row, NULL);
}

static int
cmd_job_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "id", "kind", "workflow", "due", "status", "attempts", "record",
					    "last_error", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = mr_store_jobs(ctl->store, ctl->due, ctl->limit, &error);

	if (rows == NULL)
		return store_fail(error);
	return print_rows(ctl, rows, &mr_job_row_desc, cols);
}

/* Reads the text of --body-file (at most 1 MB of UTF-8) into @text.
 * Returns 0, or the exit code after saying why: 64 without the option,
 * 66 for a file that cannot be read, 65 for one that is not text. */
static int
ctl_body_file(MrCtl *ctl, char **text)
{
	g_autoptr(GError) error = NULL;
	gsize len = 0;

	*text = NULL;
	if (ctl->body_file == NULL)
		return fail(MR_EX_USAGE, "--body-file FILE is required");
	if (!g_file_get_contents(ctl->body_file, text, &len, &error))
		return fail(MR_EX_NOINPUT, "%s", error->message);
	if (len > 1024 * 1024 || !g_utf8_validate(*text, (gssize)len, NULL) || strlen(*text) != len) {
		g_clear_pointer(text, g_free);
		return fail(MR_EX_DATAERR, "%s: not UTF-8 text of at most 1 MB", ctl->body_file);
	}
	return 0;
}

typedef struct {
	const char *name, *subject, *body;
	gboolean replace;
	gint64 id;
} TemplatePut;

static gboolean
template_put_tx(MrStore *store, gpointer data, GError **error)
{
	TemplatePut *t = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autoptr(GError) local = NULL;

	t->id = mr_store_template_put(store, t->name, t->subject, t->body, t->replace, now, &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return TRUE;
}

static int
template_print(MrCtl *ctl, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrTemplateRow) row = mr_store_template_get(ctl->store, name, &error);

	if (row == NULL)
		return store_fail(error);
	return print_row(ctl, &mr_template_row_desc, row, NULL);
}

static int
cmd_template_add(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *body = NULL;
	TemplatePut t = { args[0], ctl->subject, NULL, ctl->replace, 0 };
	int rc;

	if (ctl->subject == NULL)
		return fail(MR_EX_USAGE, "--subject S is required");
	if (!mr_template_check(ctl->subject, &error))
		return fail(MR_EX_USAGE, "--subject: %s", error->message);
	if ((rc = ctl_body_file(ctl, &body)) != 0)
		return rc;
	if (!mr_template_check(body, &error))
		return fail(MR_EX_USAGE, "%s: %s", ctl->body_file, error->message);
	t.body = body;
	if (!mr_store_run(ctl->store, template_put_tx, &t, &error))
		return store_fail(error);
	if (t.id == 0)
		return fail(1, ctl->replace ? "no template %s" : "template %s exists (--replace changes it)",
			    args[0]);
	return template_print(ctl, args[0]);
}

static int
cmd_template_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "name", "subject", "updated", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = mr_store_templates(ctl->store, &error);

	if (rows == NULL)
		return store_fail(error);
	/* {name subject}: the body is template show's */
	if (ctl->json) {
		g_autoptr(JsonArray) a = json_array_new();

		for (guint i = 0; i < rows->len; i++) {
			const MrTemplateRow *r = g_ptr_array_index(rows, i);
			JsonObject *o = json_object_new();

			json_object_set_string_member(o, "name", r->name);
			json_object_set_string_member(o, "subject", r->subject);
			json_array_add_object_element(a, o);
		}
		mr_ctl_print_json_array(a);
		return 0;
	}
	return print_rows(ctl, rows, &mr_template_row_desc, cols);
}

static int
cmd_template_show(MrCtl *ctl, char **args)
{
	return template_print(ctl, args[0]);
}

/* One change of a row known by its key, in a transaction of its own:
 * @change returns whether the row was there, FALSE with an error set
 * when it failed. */
typedef struct {
	const char *key;
	gboolean (*change)(MrStore *store, const char *key, GError **error);
	gboolean found;
} KeyedChange;

static gboolean
keyed_change_tx(MrStore *store, gpointer data, GError **error)
{
	KeyedChange *c = data;
	g_autoptr(GError) local = NULL;

	c->found = c->change(store, c->key, &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return TRUE;
}

/* Runs @change on @key: 0, or the exit code of a failure. */
static int
keyed_change(MrCtl *ctl, KeyedChange *c)
{
	g_autoptr(GError) error = NULL;

	if (!mr_store_run(ctl->store, keyed_change_tx, c, &error))
		return store_fail(error);
	return 0;
}

static int
cmd_template_delete(MrCtl *ctl, char **args)
{
	KeyedChange c = { args[0], mr_store_template_delete, FALSE };
	int rc = keyed_change(ctl, &c);

	if (rc != 0)
		return rc;
	if (!c.found)
		return fail(1, "no template %s", args[0]);
	print_gone(ctl, "template", args[0], "deleted");
	return 0;
}

static gboolean
contact_clear_mark(MrStore *store, const char *email, GError **error)
{
	return mr_store_contact_set_undeliverable(store, email, NULL, error);
}

/* contact deliverable EMAIL: clears the mark a hard bounce left. */
static int
cmd_contact_deliverable(MrCtl *ctl, char **args)
{
	g_autofree char *email = mr_address_normalise(args[0]);
	KeyedChange c = { email, contact_clear_mark, FALSE };
	int rc = keyed_change(ctl, &c);

	if (rc != 0)
		return rc;
	if (!c.found)
		return fail(1, "no contact %s", email);
	return cmd_contact_show(ctl, args);
}

typedef struct {
	MrCtl *ctl;
	gint64 ticket;
	const char *body, *status;
	MrOutgoingResult out;
	MrOutboxRow *row; /* as queued: a running outbox may take it on at once */
} TicketReply;

static gboolean
ticket_reply_tx(MrStore *store, gpointer data, GError **error)
{
	TicketReply *r = data;

	/* inside this transaction: the reply's own is this one */
	if (!mr_outgoing_ticket_reply(store, r->ctl->cfg, r->ticket, r->body, r->status,
				      r->ctl->from, &r->out, error))
		return FALSE;
	r->row = mr_store_outbox_get(store, r->out.outbox, error);
	return r->row != NULL;
}

static int
cmd_ticket_reply(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *body = NULL;
	g_autofree char *status = ctl->status != NULL ? g_ascii_strdown(ctl->status, -1) : NULL;
	TicketReply r = { ctl, 0, NULL, NULL, { 0 }, NULL };
	MrRecordRef ref;
	int rc = 0;

	if (!ctl_record_arg(ctl, args[0], MR_RECORD_TICKET, &ref))
		return 1;
	if (status != NULL && strcmp(status, "pending") != 0 && strcmp(status, "solved") != 0)
		return fail(MR_EX_USAGE, "--status is pending or solved, not '%s'", ctl->status);
	if ((rc = ctl_body_file(ctl, &body)) != 0)
		return rc;
	r.ticket = ref.id;
	r.body = body;
	r.status = status;
	if (!mr_store_run(ctl->store, ticket_reply_tx, &r, &error)) {
		if (error->domain == MR_CRM_ERROR || error->domain == MR_OUTGOING_ERROR)
			rc = fail(1, "%s", error->message);
		else
			rc = store_fail(error);
	} else {
		rc = print_row(ctl, &mr_outbox_row_desc, r.row, NULL);
	}
	g_clear_pointer(&r.row, mr_outbox_row_free);
	mr_outgoing_result_clear(&r.out);
	return rc;
}

/* --- workflows (issue 24) ------------------------------------------------------------ */

static void
workflow_for_people(JsonObject *o)
{
	join_member(o, "conditions", " and ");
	join_member(o, "actions", ", ");
}

/* Prints workflow @name as workflow show does. */
static int
workflow_print(MrCtl *ctl, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrWorkflowRow) row = mr_store_workflow_get(ctl->store, name, &error);

	if (row == NULL)
		return store_fail(error);
	return print_row(ctl, &mr_workflow_row_desc, row, workflow_for_people);
}

static int
cmd_workflow_add(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	MrWorkflowSpec spec = { 0 };

	spec.has_repeat = ctl->repeat != CTL_NO_REPEAT;
	if (spec.has_repeat && (ctl->repeat < 0 || ctl->repeat > G_MAXINT))
		return fail(MR_EX_USAGE, "--repeat %" G_GINT64_FORMAT ": from 1 to %d", ctl->repeat,
			    MR_WORKFLOW_REPEAT_MAX);
	spec.on = ctl->on;
	spec.after = ctl->after;
	spec.since = ctl->since;
	spec.unless = (const char *const *)ctl->unless;
	spec.business = ctl->business;
	spec.repeat = spec.has_repeat ? (int)ctl->repeat : 0;
	spec.conds = (const char *const *)ctl->conds;
	spec.actions = (const char *const *)ctl->actions;
	if (!mr_crm_workflow_add(ctl->store, args[0], &spec, ctl->replace, &error)) {
		/* a mistake on the command line: its grammar, or a name that
		 * is not there (as for a rule's owner) */
		if (error->domain == MR_WORKFLOW_ERROR ||
		    g_error_matches(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND))
			return fail(MR_EX_USAGE, "%s", error->message);
		return store_fail(error);
	}
	return workflow_print(ctl, args[0]);
}

static int
cmd_workflow_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "name", "enabled", "trigger", "fired", "pending", NULL };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = mr_store_workflows(ctl->store, &error);

	if (rows == NULL)
		return store_fail(error);
	return print_rows_for(ctl, rows, &mr_workflow_row_desc, cols, workflow_for_people);
}

static int
cmd_workflow_show(MrCtl *ctl, char **args)
{
	return workflow_print(ctl, args[0]);
}

static int
workflow_enable(MrCtl *ctl, const char *name, gboolean enabled)
{
	g_autoptr(GError) error = NULL;
	guint cancelled = 0;

	if (!mr_crm_workflow_enable(ctl->store, name, enabled, &cancelled, &error))
		return store_fail(error);
	if (cancelled > 0 && !ctl->json)
		mr_text_fprintf(stderr, "mailroomctl: %u timer%s of workflow %s cancelled\n",
				cancelled, cancelled == 1 ? "" : "s", name);
	return workflow_print(ctl, name);
}

static int cmd_workflow_enable(MrCtl *ctl, char **args) { return workflow_enable(ctl, args[0], TRUE); }
static int cmd_workflow_disable(MrCtl *ctl, char **args) { return workflow_enable(ctl, args[0], FALSE); }

static int
cmd_workflow_delete(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	guint cancelled = 0;

	if (!mr_crm_workflow_delete(ctl->store, args[0], &cancelled, &error))
		return store_fail(error);
	if (cancelled > 0 && !ctl->json)
		mr_text_fprintf(stderr, "mailroomctl: %u timer%s of workflow %s cancelled\n",
				cancelled, cancelled == 1 ? "" : "s", args[0]);
	print_gone(ctl, "workflow", args[0], "deleted");
	return 0;
}

/* --- tasks (issue 24) ------------------------------------------------------------------ */

/* Reads --due WHEN: a duration from now ("3d", on the clock in the
 * configuration's timezone), a date (YYYY-MM-DD: due by its end there)
 * or an ISO 8601 time with its zone.  Returns: (transfer full): UTC
 * ISO-8601, or NULL (printed). */
static char *
task_due(MrCtl *ctl, const char *when)
{
	g_autoptr(GDateTime) now = mr_clock_now_utc();
	g_autoptr(GDateTime) local = g_date_time_to_timezone(now, ctl->cfg->tz);
	g_autoptr(GDateTime) t = NULL;
	MrDuration d;
	int y, m, day;
	char end;

	if (mr_duration_parse(when, &d, NULL)) {
		t = d.unit == MR_DURATION_DAYS ? g_date_time_add_days(local, (gint)d.amount)
		    : g_date_time_add_seconds(local, (gdouble)d.amount *
						     (d.unit == MR_DURATION_HOURS ? 3600 : 60));
	} else if (strlen(when) == 10 && sscanf(when, "%4d-%2d-%2d%c", &y, &m, &day, &end) == 3 &&
		   g_date_valid_dmy((GDateDay)day, (GDateMonth)m, (GDateYear)y)) {
		g_autoptr(GDateTime) start = g_date_time_new(ctl->cfg->tz, y, m, day, 0, 0, 0);

		t = start != NULL ? g_date_time_add_days(start, 1) : NULL;
	} else {
		t = g_date_time_new_from_iso8601(when, NULL);
	}
	if (t == NULL) {
		fail(MR_EX_USAGE, "--due %s: not a duration (90m, 4h, 3d), a date (YYYY-MM-DD)"
		     " or a time (2026-12-24T17:00:00+01:00)", when);
		return NULL;
	}
	{
		g_autoptr(GDateTime) utc = g_date_time_to_utc(t);

		return g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ");
	}
}

static int
task_print(MrCtl *ctl, gint64 id)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MrTaskRow) row = mr_store_task_get(ctl->store, id, &error);

	if (row == NULL)
		return store_fail(error);
	return print_row(ctl, &mr_task_row_desc, row, NULL);
}

static int
cmd_task_add(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *due = NULL, *owner = NULL;
	MrRecordRef ref = { MR_RECORD_NONE, 0 };
	gint64 id;

	if (ctl->owner == NULL)
		return fail(MR_EX_USAGE, "task add needs --owner EMAIL (try --help)");
	if (*args[0] == '\0' || !g_utf8_validate(args[0], -1, NULL) ||
	    strlen(args[0]) > MR_RULE_TEXT_MAX)
		return fail(MR_EX_USAGE, "a task's title is UTF-8 text of 1 to %d bytes",
			    MR_RULE_TEXT_MAX);
	if (ctl->record != NULL && !mr_record_parse_id(ctl->cfg, ctl->record, MR_RECORD_NONE, &ref))
		return fail(MR_EX_USAGE, "--record %s: not a record id (TKT-n, OPP-n, LEAD-n)",
			    ctl->record);
	if (ctl->due_at != NULL && (due = task_due(ctl, ctl->due_at)) == NULL)
		return MR_EX_USAGE;
	owner = mr_address_normalise(ctl->owner);
	id = mr_crm_task_add(ctl->cfg, ctl->store, args[0], owner, ref, due, &error);
	if (id == 0)
		return store_fail(error);
	return task_print(ctl, id);
}

static int
cmd_task_list(MrCtl *ctl, char **args)
{
	static const char *const cols[] = { "id", "status", "due", "owner", "record", "title",
					    NULL };
	g_autoptr(GError) error = NULL;
	g_autofree char *owner = ctl->owner != NULL ? mr_address_normalise(ctl->owner) : NULL;
	g_autofree char *now = ctl->overdue ? mr_clock_now_iso() : NULL;
	g_autoptr(GPtrArray) rows = mr_store_tasks(ctl->store, owner, ctl->open, now, &error);

	if (rows == NULL)
		return store_fail(error);
	return print_rows(ctl, rows, &mr_task_row_desc, cols);
}

static int
cmd_task_done(MrCtl *ctl, char **args)
{
	g_autoptr(GError) error = NULL;
	gint64 id;

	if (!g_ascii_string_to_signed(args[0], 10, 1, G_MAXINT64, &id, NULL))
		return fail(MR_EX_USAGE, "task done %s: not a task number", args[0]);
	if (!mr_crm_task_done(ctl->store, id, &error))
		return store_fail(error);
	return task_print(ctl, id);
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
	{ "user", "away", 2, 2, cmd_user_away,
	  "user away EMAIL on|off   (teams skip a user away)", FALSE },
	{ "contact", "list", 0, 0, cmd_contact_list, "contact list", FALSE },
	{ "contact", "show", 1, 1, cmd_contact_show, "contact show EMAIL", FALSE },
	{ "contact", "deliverable", 1, 1, cmd_contact_deliverable,
	  "contact deliverable EMAIL   (clears the undeliverable mark of a hard bounce)", FALSE },
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
	{ "message", "list", 0, 0, cmd_message_list,
	  "message list [--quarantined]   (--quarantined: what IMAP mailboxes could not store)",
	  FALSE },
	{ "message", "retry", 1, 1, cmd_message_retry,
	  "message retry ID   (a quarantined message through the ingest path again)", FALSE },
	{ "mailbox", "test", 1, 1, cmd_mailbox_test,
	  "mailbox test NAME   (connect and log in, list capabilities, count the folder;"
	  " fetches nothing)", FALSE },
	{ "mailbox", "status", 0, 0, cmd_mailbox_status,
	  "mailbox status   (the IMAP mailboxes: state, last UID, backlog)", FALSE },
	{ "event", "list", 0, 0, cmd_event_list,
	  "event list [--after ID] [--limit N]   (the event feed, oldest first)", FALSE },
	{ "message", "show", 1, 1, cmd_message_show, "message show ID [--raw]", FALSE },
	{ "team", "add", 2, G_MAXINT, cmd_team_add,
	  "team add NAME USER... [--lead USER]   (records go to the USERs in turn)", FALSE },
	{ "team", "list", 0, 0, cmd_team_list, "team list", FALSE },
	{ "team", "show", 1, 1, cmd_team_show, "team show NAME", FALSE },
	{ "team", "remove", 1, 1, cmd_team_remove, "team remove NAME", FALSE },
	{ "team", "member", 3, 3, cmd_team_member, "team member add|remove NAME USER", FALSE },
	{ "team", "calendar", 2, 2, cmd_team_calendar,
	  "team calendar NAME CALENDAR   (the business hours of the team's records)", FALSE },
	{ "calendar", "set", 1, 1, cmd_calendar_set,
	  "calendar set NAME [--tz ZONE] [--hours 'mon-fri 09:00-17:00'] [--holiday DATE...]\n"
	  "                             [--clear-holidays]   (makes or changes it)", FALSE },
	{ "calendar", "list", 0, 0, cmd_calendar_list, "calendar list", FALSE },
	{ "calendar", "show", 1, 1, cmd_calendar_show, "calendar show NAME", FALSE },
	{ "calendar", "delete", 1, 1, cmd_calendar_delete,
	  "calendar delete NAME   (not default, not one a team counts in)", FALSE },
	{ "rule", "add", 1, 1, cmd_rule_add,
	  "rule add NAME --if COND [--if COND...] [--any] --then ACTION [--then ACTION...]\n"
	  "                             [--stop] [--position N]   (default: last)", FALSE },
	{ "rule", "list", 0, 0, cmd_rule_list, "rule list   (in the order they run)", FALSE },
	{ "rule", "show", 1, 1, cmd_rule_show, "rule show NAME", FALSE },
	{ "rule", "enable", 1, 1, cmd_rule_enable, "rule enable NAME", FALSE },
	{ "rule", "disable", 1, 1, cmd_rule_disable, "rule disable NAME", FALSE },
	{ "rule", "delete", 1, 1, cmd_rule_delete, "rule delete NAME", FALSE },
	{ "rule", "move", 2, 2, cmd_rule_move, "rule move NAME N   (1: first)", FALSE },
	{ "rule", "test", 1, 1, cmd_rule_test,
	  "rule test FILE.eml --to ADDRESS [--from SENDER] [--explain]   (a dry run:"
	  " writes nothing)", FALSE },
	{ "rule", "export", 0, 0, cmd_rule_export,
	  "rule export > FILE   (every rule as libconfig text, for rule import)", FALSE },
	{ "rule", "import", 1, 1, cmd_rule_import,
	  "rule import FILE   (replaces every rule by those of FILE: all or nothing)", FALSE },
	{ "ticket", "reply", 1, 1, cmd_ticket_reply,
	  "ticket reply TKT-n --body-file F [--status pending|solved] [--from EMAIL]\n"
	  "                             (an agent's answer to the ticket's contact, threaded)",
	  FALSE },
	{ "outbox", "list", 0, 0, cmd_outbox_list,
	  "outbox list [--status queued|sending|sent|failed|cancelled|bounced]", FALSE },
	{ "outbox", "retry", 1, 1, cmd_outbox_retry,
	  "outbox retry ID   (a failed, cancelled or bounced mail again; a queued one now)", FALSE },
	{ "outbox", "cancel", 1, 1, cmd_outbox_cancel,
	  "outbox cancel ID   (a mail not sent yet)", FALSE },
	{ "job", "list", 0, 0, cmd_job_list, "job list [--due]   (--due: waiting or running)",
	  FALSE },
	{ "job", "cancel", 1, 1, cmd_job_cancel,
	  "job cancel ID   (a job that waits, due or failed: it will not run)", FALSE },
	{ "template", "add", 1, 1, cmd_template_add,
	  "template add NAME --subject S --body-file F [--replace]\n"
	  "                             (placeholders: {{contact.name}} {{record.id}} ...)",
	  FALSE },
	{ "template", "list", 0, 0, cmd_template_list, "template list", FALSE },
	{ "template", "show", 1, 1, cmd_template_show, "template show NAME", FALSE },
	{ "template", "delete", 1, 1, cmd_template_delete, "template delete NAME", FALSE },
	{ "workflow", "add", 1, 1, cmd_workflow_add,
	  "workflow add NAME --on EVENT [--if COND...] --then ACTION [--then ACTION...]\n"
	  "                             [--replace]\n"
	  "  mailroomctl workflow add NAME --after DURATION --since EVENT [--unless EVENT...]\n"
	  "                             [--business] [--repeat N] [--if COND...] --then ACTION...\n"
	  "                             [--replace]\n"
	  "                             (actions: send TEMPLATE, remind [EMAIL|team:NAME],\n"
	  "                             assign EMAIL|team:NAME, set FIELD = VALUE,\n"
	  "                             escalate [EMAIL|team:NAME], task TEXT [due DURATION])",
	  FALSE },
	{ "workflow", "list", 0, 0, cmd_workflow_list, "workflow list", FALSE },
	{ "workflow", "show", 1, 1, cmd_workflow_show, "workflow show NAME", FALSE },
	{ "workflow", "enable", 1, 1, cmd_workflow_enable, "workflow enable NAME", FALSE },
	{ "workflow", "disable", 1, 1, cmd_workflow_disable,
	  "workflow disable NAME   (its waiting timers are cancelled)", FALSE },
	{ "workflow", "delete", 1, 1, cmd_workflow_delete,
	  "workflow delete NAME   (its waiting timers are cancelled)", FALSE },
	{ "task", "add", 1, 1, cmd_task_add,
	  "task add TITLE --owner EMAIL [--record ID] [--due DATE|DURATION]", FALSE },
	{ "task", "list", 0, 0, cmd_task_list, "task list [--owner EMAIL] [--open] [--overdue]",
	  FALSE },
	{ "task", "done", 1, 1, cmd_task_done, "task done ID", FALSE },
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

/* Whether option @arg ("-c", "--limit"; not "--limit=5") of @entries
 * takes the next word as its value. */
static gboolean
ctl_option_takes_value(const char *arg, const GOptionEntry *entries)
{
	for (const GOptionEntry *e = entries; e->long_name != NULL; e++) {
		gboolean named = (arg[1] == '-' && strcmp(arg + 2, e->long_name) == 0) ||
				 (arg[1] != '-' && arg[1] == e->short_name && arg[2] == '\0');

		if (named)
			return e->arg != G_OPTION_ARG_NONE;
	}
	return FALSE;
}

/* Whether the noun of the command line @argv is @noun: the first word
 * that is no option nor an option's value (@entries says which take
 * one). */
static gboolean
ctl_noun_is(int argc, char **argv, const GOptionEntry *entries, const char *noun)
{
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-') {
			if (strcmp(argv[i], "--") != 0 && ctl_option_takes_value(argv[i], entries))
				i++;
			continue;
		}
		return strcmp(argv[i], noun) == 0;
	}
	return FALSE;
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
		{ "after", 0, 0, G_OPTION_ARG_STRING, &ctl.after, NULL, NULL },
		{ "raw", 0, 0, G_OPTION_ARG_NONE, &ctl.raw, NULL, NULL },
		{ "quarantined", 0, 0, G_OPTION_ARG_NONE, &ctl.quarantined, NULL, NULL },
		{ "to", 0, 0, G_OPTION_ARG_STRING, &ctl.to, NULL, NULL },
		{ "from", 0, 0, G_OPTION_ARG_STRING, &ctl.from, NULL, NULL },
		{ "name", 0, 0, G_OPTION_ARG_STRING, &ctl.name, NULL, NULL },
		{ "title", 0, 0, G_OPTION_ARG_STRING, &ctl.title, NULL, NULL },
		{ "contact", 0, 0, G_OPTION_ARG_STRING, &ctl.contact, NULL, NULL },
		{ "owner", 0, 0, G_OPTION_ARG_STRING, &ctl.owner, NULL, NULL },
		{ "value", 0, 0, G_OPTION_ARG_STRING, &ctl.value, NULL, NULL },
		{ "reason", 0, 0, G_OPTION_ARG_STRING, &ctl.reason, NULL, NULL },
		{ "lead", 0, 0, G_OPTION_ARG_STRING, &ctl.lead, NULL, NULL },
		{ "if", 0, 0, G_OPTION_ARG_STRING_ARRAY, &ctl.conds, NULL, NULL },
		{ "then", 0, 0, G_OPTION_ARG_STRING_ARRAY, &ctl.actions, NULL, NULL },
		{ "any", 0, 0, G_OPTION_ARG_NONE, &ctl.any, NULL, NULL },
		{ "stop", 0, 0, G_OPTION_ARG_NONE, &ctl.stop, NULL, NULL },
		{ "position", 0, 0, G_OPTION_ARG_STRING, &ctl.position, NULL, NULL },
		{ "explain", 0, 0, G_OPTION_ARG_NONE, &ctl.explain, NULL, NULL },
		{ "status", 0, 0, G_OPTION_ARG_STRING, &ctl.status, NULL, NULL },
		{ "subject", 0, 0, G_OPTION_ARG_STRING, &ctl.subject, NULL, NULL },
		{ "body-file", 0, 0, G_OPTION_ARG_FILENAME, &ctl.body_file, NULL, NULL },
		{ "due", 0, 0, G_OPTION_ARG_NONE, &ctl.due, NULL, NULL },
		{ "replace", 0, 0, G_OPTION_ARG_NONE, &ctl.replace, NULL, NULL },
		{ "tz", 0, 0, G_OPTION_ARG_STRING, &ctl.tz, NULL, NULL },
		{ "hours", 0, 0, G_OPTION_ARG_STRING, &ctl.hours, NULL, NULL },
		{ "holiday", 0, 0, G_OPTION_ARG_STRING_ARRAY, &ctl.holidays, NULL, NULL },
		{ "clear-holidays", 0, 0, G_OPTION_ARG_NONE, &ctl.clear_holidays, NULL, NULL },
		{ "on", 0, 0, G_OPTION_ARG_STRING, &ctl.on, NULL, NULL },
		{ "since", 0, 0, G_OPTION_ARG_STRING, &ctl.since, NULL, NULL },
		{ "unless", 0, 0, G_OPTION_ARG_STRING_ARRAY, &ctl.unless, NULL, NULL },
		{ "business", 0, 0, G_OPTION_ARG_NONE, &ctl.business, NULL, NULL },
		{ "repeat", 0, 0, G_OPTION_ARG_INT64, &ctl.repeat, NULL, NULL },
		{ "record", 0, 0, G_OPTION_ARG_STRING, &ctl.record, NULL, NULL },
		{ "due-at", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &ctl.due_at, NULL, NULL },
		{ "open", 0, 0, G_OPTION_ARG_NONE, &ctl.open, NULL, NULL },
		{ "overdue", 0, 0, G_OPTION_ARG_NONE, &ctl.overdue, NULL, NULL },
		{ NULL },
	};
	g_autoptr(GOptionContext) octx = g_option_context_new(NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) renamed = g_ptr_array_new_with_free_func(g_free);
	const MrCtlCommand *cmd = NULL;
	char **args;
	int nargs, rc;

	setlocale(LC_ALL, "");
	ctl.repeat = CTL_NO_REPEAT;
	/* `task add --due WHEN` takes a value where `job list --due` is a
	 * flag: for task, --due is --due-at */
	if (ctl_noun_is(argc, argv, entries, "task"))
		for (int i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--") == 0)
				break;
			if (strcmp(argv[i], "--due") == 0 || g_str_has_prefix(argv[i], "--due=")) {
				g_autofree char *rest = g_strdup(argv[i] + 5);

				argv[i] = g_strconcat("--due-at", rest, NULL);
				g_ptr_array_add(renamed, argv[i]);
			}
		}
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
	rc = ctl_open(&ctl, cmd->run != cmd_deliver && cmd->run != cmd_mailbox_test, cmd->creates);
	if (rc == 0) {
		mr_parse_init();
		rc = cmd->run(&ctl, args);
	}
	if (fflush(stdout) != 0 && rc == 0)
		rc = fail(MR_EX_IOERR, "write: %s", g_strerror(errno));
	ctl_clear(&ctl);
	return rc;
}
