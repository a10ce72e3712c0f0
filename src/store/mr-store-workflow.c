/* mr-store-workflow.c - the store's workflows, their timers and tasks
 * (see mr-store-workflow.h).
 *
 * Store stage: row-level primitives that decide nothing. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"

/* --- workflows ------------------------------------------------------------------ */

gint64
mr_store_workflow_id(MrStore *store, const char *name)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_WORKFLOW_ID);

	mr_sql_bind_text(st, 1, name);
	return mr_store_step_int64(store, st);
}

/* Steps @stmt (WORKFLOW_UPDATE or _INSERT) for @wf.  Returns the id, or 0:
 * with @error on failure, without when no row changed. */
static gint64
workflow_write(MrStore *store, MrStmtId stmt, const MrWorkflowNew *wf, const char *now,
	       GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, stmt);

	mr_sql_bind_text(st, 1, wf->name);
	mr_sql_bind_int64(st, 2, wf->enabled ? 1 : 0);
	mr_sql_bind_text(st, 3, wf->trigger);
	mr_sql_bind_text(st, 4, wf->event);
	mr_sql_bind_int64(st, 5, wf->timer ? 1 : 0);
	mr_sql_bind_text(st, 6, wf->conditions);
	mr_sql_bind_text(st, 7, wf->actions);
	mr_sql_bind_text(st, 8, now);
	return mr_store_step_new_id(store, st, error);
}

gint64
mr_store_workflow_put(MrStore *store, const MrWorkflowNew *wf, gboolean replace, const char *now,
		      GError **error)
{
	g_autoptr(GError) local = NULL;
	gint64 id = 0;

	if (replace)
		id = workflow_write(store, MR_STMT_WORKFLOW_UPDATE, wf, now, &local);
	if (id == 0 && local == NULL)
		id = workflow_write(store, MR_STMT_WORKFLOW_INSERT, wf, now, &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return 0;
	}
	if (id == 0)
		return 0; /* the name is taken */
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_WORKFLOW_UNLESS_CLEAR);

		mr_sql_bind_int64(st, 1, id);
		if (!mr_store_step_done(store, st, error))
			return 0;
	}
	for (guint i = 0; wf->unless != NULL && wf->unless[i] != NULL; i++) {
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_WORKFLOW_UNLESS_INSERT);

		mr_sql_bind_int64(st, 1, id);
		mr_sql_bind_text(st, 2, wf->unless[i]);
		if (!mr_store_step_done(store, st, error))
			return 0;
	}
	return id;
}

gboolean
mr_store_workflow_set_enabled(MrStore *store, gint64 id, gboolean enabled, const char *now,
			      GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_WORKFLOW_SET_ENABLED);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_int64(st, 2, enabled ? 1 : 0);
	mr_sql_bind_text(st, 3, now);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_workflow_cancel_timers(MrStore *store, gint64 id, const char *now, guint *count,
				GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_WORKFLOW_CANCEL_TIMERS);
	MrSqlStep rc;
	guint n = 0;

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, now);
	while ((rc = mr_sql_step(st, error)) == MR_SQL_ROW)
		n++;
	if (rc != MR_SQL_DONE)
		return FALSE;
	if (count != NULL)
		*count = n;
	return TRUE;
}

gboolean
mr_store_workflow_delete(MrStore *store, gint64 id, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_WORKFLOW_DELETE);

	mr_sql_bind_int64(st, 1, id);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_workflow_fired(MrStore *store, gint64 id, gint64 n, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_WORKFLOW_FIRED);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_int64(st, 2, n);
	return mr_store_step_later(store, st, error);
}

GPtrArray *
mr_store_workflows(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LIST_WORKFLOWS);

	return mr_store_read_rows(st, &mr_workflow_row_desc, error);
}

MrWorkflowRow *
mr_store_workflow_get(MrStore *store, const char *name, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_SHOW_WORKFLOW);

	mr_sql_bind_text(st, 1, name);
	return mr_store_read_one(st, &mr_workflow_row_desc, "workflow", name, error);
}

GPtrArray *
mr_store_workflow_defs(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_WORKFLOW_DEFS);

	return mr_store_read_rows(st, &mr_workflow_def_desc, error);
}

/* --- timers -------------------------------------------------------------------- */

gboolean
mr_store_timer_start(MrStore *store, const MrTimerNew *t, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	if (t->restart) {
		g_autoptr(MrStmtUse) again = store_stmt(store, MR_STMT_TIMERS_RESTART);

		mr_sql_bind_int64(again, 1, t->workflow);
		mr_store_bind_record(again, 2, t->record);
		mr_sql_bind_text(again, 4, now);
		if (!mr_store_step_later(store, again, error))
			return FALSE;
	}
	st = store_stmt(store, MR_STMT_TIMER_INSERT);

	mr_sql_bind_text(st, 1, t->due);
	mr_store_bind_record(st, 2, t->record);
	mr_store_bind_id(st, 4, t->message);
	mr_sql_bind_int64(st, 5, t->workflow);
	mr_sql_bind_text(st, 6, t->started);
	mr_sql_bind_int64(st, 7, t->round);
	mr_sql_bind_int64(st, 8, t->depth);
	mr_sql_bind_text(st, 9, now);
	return mr_store_step_later(store, st, error) && mr_store_notify_work(store, error);
}

gboolean
mr_store_timers_cancel(MrStore *store, const char *event, MrRecordRef record, const char *now,
		       GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TIMERS_CANCEL);

	mr_sql_bind_text(st, 1, event);
	mr_store_bind_record(st, 2, record);
	mr_sql_bind_text(st, 4, now);
	return mr_store_step_later(store, st, error);
}

gboolean
mr_store_job_postpone(MrStore *store, gint64 id, const char *claim, const char *due,
		      const char *now, gboolean *ours, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_JOB_POSTPONE);
	gboolean changed = FALSE;

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, claim);
	mr_sql_bind_text(st, 3, due);
	mr_sql_bind_text(st, 4, now);
	if (!mr_store_step_changed(st, &changed, error))
		return FALSE;
	if (ours != NULL)
		*ours = changed;
	return TRUE;
}

gboolean
mr_store_record_timer(MrStore *store, gint64 workflow, MrRecordRef record, char **started,
		      char **status, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RECORD_TIMER);

	*started = NULL;
	*status = NULL;
	mr_sql_bind_int64(st, 1, workflow);
	mr_store_bind_record(st, 2, record);
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		*started = g_strdup(mr_sql_column_text(st, 0));
		*status = g_strdup(mr_sql_column_text(st, 1));
		return TRUE;
	case MR_SQL_DONE:
		return TRUE;
	default:
		return FALSE;
	}
}

gboolean
mr_store_message_is_auto(MrStore *store, gint64 id)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_IS_AUTO);

	mr_sql_bind_int64(st, 1, id);
	return mr_store_step_row(store, st);
}

char *
mr_store_record_first_event(MrStore *store, MrRecordRef record, const char *type,
			    const char *since)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RECORD_FIRST_EVENT);

	mr_store_bind_record(st, 1, record);
	mr_sql_bind_text(st, 3, type);
	mr_sql_bind_text(st, 4, since);
	if (!mr_store_step_row(store, st))
		return NULL;
	return g_strdup(mr_sql_column_text(st, 0));
}

/* --- tasks ----------------------------------------------------------------------- */

gint64
mr_store_task_insert(MrStore *store, const char *title, gint64 owner, MrRecordRef record,
		     const char *due, gint64 workflow, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TASK_INSERT);

	mr_sql_bind_text(st, 1, title);
	mr_sql_bind_int64(st, 2, owner);
	mr_store_bind_record(st, 3, record);
	mr_sql_bind_text(st, 5, due);
	mr_store_bind_id(st, 6, workflow);
	mr_sql_bind_text(st, 7, now);
	return mr_store_step_id(store, st, error);
}

gboolean
mr_store_task_done(MrStore *store, gint64 id, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TASK_DONE);
	gboolean changed = FALSE;

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, now);
	return mr_store_step_changed(st, &changed, error) && changed;
}

GPtrArray *
mr_store_tasks(MrStore *store, const char *owner, gboolean open, const char *overdue_at,
	       GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LIST_TASKS);

	mr_sql_bind_text(st, 1, owner);
	mr_sql_bind_int64(st, 2, open ? 1 : 0);
	mr_sql_bind_text(st, 3, overdue_at);
	return mr_store_read_rows(st, &mr_task_row_desc, error);
}

MrTaskRow *
mr_store_task_get(MrStore *store, gint64 id, GError **error)
{
	return mr_store_read_by_id(store, MR_STMT_SHOW_TASK, &mr_task_row_desc, "task", id, error);
}

/* --- what a firing reads ---------------------------------------------------------- */

gint64
mr_store_user_calendar(MrStore *store, gint64 user)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_CALENDAR);

	mr_sql_bind_int64(st, 1, user);
	return mr_store_step_int64(store, st);
}

gboolean
mr_store_user_mailbox_by_id(MrStore *store, gint64 id, char **email, char **name)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_MAILBOX_BY_ID);

	*email = NULL;
	*name = NULL;
	mr_sql_bind_int64(st, 1, id);
	if (!mr_store_step_row(store, st))
		return FALSE;
	*email = g_strdup(mr_sql_column_text(st, 0));
	*name = g_strdup(mr_sql_column_text(st, 1));
	return TRUE;
}

gint64
mr_store_team_lead(MrStore *store, const char *name)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEAM_LEAD);

	mr_sql_bind_text(st, 1, name);
	return mr_store_step_int64(store, st);
}

gint64
mr_store_user_team_lead(MrStore *store, gint64 user)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_TEAM_LEAD);

	mr_sql_bind_int64(st, 1, user);
	return mr_store_step_int64(store, st);
}

void
mr_record_fields_free(MrRecordFields *f)
{
	if (f == NULL)
		return;
	g_free(f->status);
	g_free(f->priority);
	g_free(f->type);
	g_free(f->stage);
	g_free(f->owner_email);
	g_free(f->title);
	g_strfreev(f->tags);
	g_free(f);
}

/* Reads a record's fields (TICKET_FIELDS' columns: status, priority,
 * type, stage, value, owner, its address, title, last person's mail)
 * from column @col of @st into @f; not its tags. */
static void
fields_read(MrRecordFields *f, MrSqlStmt *st, int col)
{
	f->status = g_strdup(mr_sql_column_text(st, col));
	f->priority = g_strdup(mr_sql_column_text(st, col + 1));
	f->type = g_strdup(mr_sql_column_text(st, col + 2));
	f->stage = g_strdup(mr_sql_column_text(st, col + 3));
	f->has_value = mr_sql_column_text(st, col + 4) != NULL;
	f->value = mr_sql_column_int64(st, col + 4);
	f->owner = mr_sql_column_int64(st, col + 5);
	f->owner_email = g_strdup(mr_sql_column_text(st, col + 6));
	f->title = g_strdup(mr_sql_column_text(st, col + 7));
	f->last_person = mr_sql_column_int64(st, col + 8);
}

MrRecordFields *
mr_store_record_fields(MrStore *store, MrRecordRef ref, gboolean tags, GError **error)
{
	g_autoptr(MrRecordFields) f = g_new0(MrRecordFields, 1);
	MrStmtId id = ref.kind == MR_RECORD_TICKET ? MR_STMT_TICKET_FIELDS
		      : ref.kind == MR_RECORD_LEAD ? MR_STMT_LEAD_FIELDS
						     : MR_STMT_OPP_FIELDS;

	g_return_val_if_fail(ref.kind != MR_RECORD_NONE, NULL);
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, id);

		mr_sql_bind_int64(st, 1, ref.id);
		switch (mr_sql_step(st, error)) {
		case MR_SQL_ROW:
			break;
		case MR_SQL_DONE:
			g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND,
				    "no %s %" G_GINT64_FORMAT, mr_record_kind_name(ref.kind), ref.id);
			return NULL;
		default:
			return NULL;
		}
		fields_read(f, st, 0);
	}
	f->tags = tags ? mr_store_record_tags(store, ref) : g_new0(char *, 1);
	if (!mr_store_check(store, error))
		return NULL;
	return g_steal_pointer(&f);
}

/* One chunk of mr_store_records_fields(): at most MR_STORE_SLOTS records. */
static gboolean
records_fields_chunk(MrStore *store, const MrRecordRef *refs, guint n, const char *now,
		     MrRecordFields **out, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RECORDS_FIELDS);
	MrSqlStep step;

	mr_sql_bind_text(st, 1, now);
	for (guint i = 0; i < MR_STORE_SLOTS; i++) {
		MrRecordRef none = { MR_RECORD_NONE, 0 };

		mr_store_bind_record(st, 2 + 2 * (int)i, i < n ? refs[i] : none);
	}
	while ((step = mr_sql_step(st, error)) == MR_SQL_ROW) {
		gint64 slot = mr_sql_column_int64(st, 0);
		MrRecordFields *f;

		if (slot < 0 || slot >= n || out[slot] != NULL)
			continue;
		f = out[slot] = g_new0(MrRecordFields, 1);
		fields_read(f, st, 1);
		f->tags = g_new0(char *, 1);
	}
	return step != MR_SQL_FAIL;
}

gboolean
mr_store_records_fields(MrStore *store, const MrRecordRef *refs, guint n, const char *now,
			MrRecordFields **out, GError **error)
{
	for (guint i = 0; i < n; i++)
		out[i] = NULL;
	for (guint at = 0; at < n; at += MR_STORE_SLOTS)
		if (!records_fields_chunk(store, refs + at, MIN(n - at, MR_STORE_SLOTS), now,
					  out + at, error)) {
			for (guint i = 0; i < n; i++)
				g_clear_pointer(&out[i], mr_record_fields_free);
			return FALSE;
		}
	return TRUE;
}

gboolean
mr_store_record_set_field(MrStore *store, MrRecordRef ref, const char *field, const char *value,
			  GError **error)
{
	MrStmtId id;
	g_autoptr(MrStmtUse) st = NULL;

	if (ref.kind == MR_RECORD_LEAD && g_strcmp0(field, "priority") == 0)
		id = MR_STMT_LEAD_SET_PRIORITY;
	else if (ref.kind == MR_RECORD_OPPORTUNITY && g_strcmp0(field, "stage") == 0)
		id = MR_STMT_OPP_SET_STAGE;
	else if (ref.kind == MR_RECORD_OPPORTUNITY && g_strcmp0(field, "value") == 0)
		id = MR_STMT_OPP_SET_VALUE;
	else
		g_return_val_if_reached(FALSE);
	st = store_stmt(store, id);
	mr_sql_bind_int64(st, 1, ref.id);
	if (id == MR_STMT_OPP_SET_VALUE)
		mr_sql_bind_int64(st, 2, g_ascii_strtoll(value, NULL, 10));
	else
		mr_sql_bind_text(st, 2, value);
	return mr_store_step_later(store, st, error);
}
