/* mr-store-outgoing.c - jobs, the outbox, templates and the undeliverable
 * mark (mr-store-outgoing.h), and watching for work other processes add.
 *
 * Store stage: row-level primitives that decide nothing; the act layer
 * (src/act/) runs them in the writer's transactions. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"

/* --- work for other processes --------------------------------------------- */

gboolean
mr_store_notify_work(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = NULL;

	store->work_added = TRUE;
	if (store->work_notified)
		return TRUE;
	st = store_stmt(store, MR_STMT_NOTIFY_WORK);
	if (mr_sql_step(st, error) == MR_SQL_FAIL)
		return FALSE;
	store->work_notified = TRUE;
	return TRUE;
}

gboolean
mr_store_watch_start(MrStore *store, GError **error)
{
	return store->driver->watch_start(store->conn, error);
}

int
mr_store_watch_fd(MrStore *store)
{
	return store->driver->watch_fd(store->conn);
}

gboolean
mr_store_watch_changed(MrStore *store, GError **error)
{
	return store->driver->watch_changed(store->conn, error);
}

/* TRUE when the look-up @bit was sent ahead (then it is read now, not
 * bound again). */
static gboolean
take_ahead(MrStore *store, guint bit)
{
	gboolean was = (store->ahead & bit) != 0;

	store->ahead &= ~bit;
	return was;
}

/* --- jobs -------------------------------------------------------------------- */

gint64
mr_store_job_insert(MrStore *store, const char *kind, const char *due, const char *payload,
		    MrRecordRef record, gint64 message, const char *now, GError **error)
{
	gint64 id;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_JOB_INSERT);

		mr_sql_bind_text(st, 1, kind);
		mr_sql_bind_text(st, 2, due);
		mr_sql_bind_text(st, 3, payload);
		mr_store_bind_record(st, 4, record);
		mr_store_bind_id(st, 6, message);
		mr_sql_bind_text(st, 7, now);
		id = mr_store_step_id(store, st, error);
	}
	if (id == 0 || !mr_store_notify_work(store, error))
		return 0;
	return id;
}

void
mr_job_claimed_free(MrJobClaimed *job)
{
	if (job == NULL)
		return;
	g_free(job->kind);
	g_free(job->payload);
	g_free(job->started);
	g_free(job);
}

static int
compare_job_ids(gconstpointer a, gconstpointer b)
{
	const MrJobClaimed *x = *(MrJobClaimed *const *)a, *y = *(MrJobClaimed *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

GPtrArray *
mr_store_jobs_claim(MrStore *store, const char *now, const char *lease_until, const char *claim,
		    gint64 limit, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_JOBS_CLAIM);
	g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func((GDestroyNotify)mr_job_claimed_free);
	MrSqlStep step;

	mr_sql_bind_text(st, 1, now);
	mr_sql_bind_text(st, 2, lease_until);
	mr_sql_bind_text(st, 3, claim);
	mr_sql_bind_int64(st, 4, limit);
	while ((step = mr_sql_step(st, error)) == MR_SQL_ROW) {
		MrJobClaimed *job = g_new0(MrJobClaimed, 1);

		job->id = mr_sql_column_int64(st, 0);
		job->kind = g_strdup(mr_sql_column_text(st, 1));
		job->payload = g_strdup(mr_sql_column_text(st, 2));
		job->record = mr_store_column_record(st, 3);
		job->message = mr_sql_column_int64(st, 5);
		job->attempts = mr_sql_column_int64(st, 6);
		job->workflow = mr_sql_column_int64(st, 7);
		job->started = g_strdup(mr_sql_column_text(st, 8));
		job->round = (int)mr_sql_column_int64(st, 9);
		job->depth = (int)mr_sql_column_int64(st, 10);
		g_ptr_array_add(jobs, job);
	}
	if (step == MR_SQL_FAIL)
		return NULL;
	/* RETURNING comes in no particular order: run them as they were
	 * made */
	g_ptr_array_sort(jobs, compare_job_ids);
	return g_steal_pointer(&jobs);
}

gboolean
mr_store_job_finish(MrStore *store, gint64 id, const char *claim, const char *status,
		    const char *last_error, const char *due, const char *now, gboolean *ours,
		    GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_JOB_FINISH);
	gboolean changed = FALSE;

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, claim);
	mr_sql_bind_text(st, 3, status);
	mr_sql_bind_text(st, 4, last_error);
	mr_sql_bind_text(st, 5, due);
	mr_sql_bind_text(st, 6, now);
	if (!mr_store_step_changed(st, &changed, error))
		return FALSE;
	if (ours != NULL)
		*ours = changed;
	return TRUE;
}

/* Steps an UPDATE ... RETURNING id to its end: the rows it touched in
 * @count. */
static gboolean
step_count(MrSqlStmt *st, guint *count, GError **error)
{
	MrSqlStep step;

	*count = 0;
	while ((step = mr_sql_step(st, error)) == MR_SQL_ROW)
		(*count)++;
	return step == MR_SQL_DONE;
}

/* Ends what is still under @claim with @status, by statement @id (?1
 * the claim, ?2 the time, ?3 the status); the rows it ended in @count. */
static gboolean
finish_claim(MrStore *store, MrStmtId id, const char *claim, const char *now,
	     const char *status, guint *count, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, id);

	mr_sql_bind_text(st, 1, claim);
	mr_sql_bind_text(st, 2, now);
	mr_sql_bind_text(st, 3, status);
	return step_count(st, count, error);
}

gboolean
mr_store_jobs_finish_claim(MrStore *store, const char *claim, const char *now, guint *count,
			   GError **error)
{
	return finish_claim(store, MR_STMT_JOBS_FINISH_CLAIM, claim, now, MR_JOB_DONE, count,
			    error);
}

/* Steps a SELECT min(...) and returns its text, or NULL. */
static char *
step_min_text(MrStore *store, MrSqlStmt *st)
{
	return mr_store_step_row(store, st) ? g_strdup(mr_sql_column_text(st, 0)) : NULL;
}

char *
mr_store_jobs_next_due(MrStore *store)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_JOBS_NEXT_DUE);

	return step_min_text(store, st);
}

GPtrArray *
mr_store_jobs(MrStore *store, gboolean pending, gint64 limit, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LIST_JOBS);

	mr_sql_bind_int64(st, 1, pending ? 1 : 0);
	mr_sql_bind_int64(st, 2, limit > 0 ? limit : G_MAXINT64);
	return mr_store_read_rows(st, &mr_job_row_desc, error);
}

MrJobRow *
mr_store_job_get(MrStore *store, gint64 id, GError **error)
{
	return mr_store_read_by_id(store, MR_STMT_SHOW_JOB, &mr_job_row_desc, "job", id, error);
}

gboolean
mr_store_job_cancel(MrStore *store, gint64 id, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_JOB_CANCEL);
	gboolean changed = FALSE;

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, now);
	return mr_store_step_changed(st, &changed, error) && changed;
}

/* --- the outbox ------------------------------------------------------------ */

gint64
mr_store_outgoing_queue(MrStore *store, const MrOutgoingNew *mail, const char *now,
			gboolean need_id, GError **error)
{
	gint64 id;

	g_return_val_if_fail(mail->record.kind != MR_RECORD_NONE &&
				     (mail->contact != 0) != (mail->user != 0), 0);
	if (!mr_store_message_insert_out(store, mail->raw, mail->key, mail->msg, now, error))
		return 0;
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LINK_INSERT2);

		mr_sql_bind_text(st, 1, mail->key);
		mr_sql_bind_text(st, 2, mr_record_kind_name(mail->record.kind));
		mr_sql_bind_int64(st, 3, mail->record.id);
		mr_sql_bind_text(st, 4, mail->contact != 0 ? "contact" : "user");
		mr_sql_bind_int64(st, 5, mail->contact != 0 ? mail->contact : mail->user);
		if (!mr_store_step_later(store, st, error))
			return 0;
	}
	{
		g_autoptr(MrStmtUse) st =
			store_stmt(store, need_id ? MR_STMT_OUTBOX_INSERT : MR_STMT_OUTBOX_INSERT_LATER);

		mr_sql_bind_text(st, 1, mail->key);
		mr_sql_bind_text(st, 2, mail->token);
		mr_sql_bind_text(st, 3, mail->recipient);
		mr_store_bind_id(st, 4, mail->contact);
		mr_store_bind_record(st, 5, mail->record);
		mr_sql_bind_int64(st, 7, mail->automatic ? 1 : 0);
		mr_sql_bind_text(st, 8, now);
		id = need_id ? mr_store_step_id(store, st, error)
			     : mr_store_step_later(store, st, error) ? 1 : 0;
	}
	if (id == 0 || !mr_store_notify_work(store, error))
		return 0;
	return id;
}

void
mr_outbox_claimed_free(MrOutboxClaimed *mail)
{
	if (mail == NULL)
		return;
	g_free(mail->token);
	g_free(mail->recipient);
	g_clear_pointer(&mail->raw, g_bytes_unref);
	g_free(mail);
}

GPtrArray *
mr_store_outbox_claim(MrStore *store, const char *now, const char *lease_until,
		      const char *claim, gint64 limit, GError **error)
{
	g_autoptr(GPtrArray) mails =
		g_ptr_array_new_with_free_func((GDestroyNotify)mr_outbox_claimed_free);
	MrSqlStep step;

	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OUTBOX_CLAIM);

		mr_sql_bind_text(st, 1, now);
		mr_sql_bind_text(st, 2, lease_until);
		mr_sql_bind_text(st, 3, claim);
		mr_sql_bind_int64(st, 4, limit);
		while ((step = mr_sql_step(st, error)) == MR_SQL_ROW)
			;
		if (step == MR_SQL_FAIL)
			return NULL;
	}
	{
		g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OUTBOX_CLAIMED_RAW);

		mr_sql_bind_text(st, 1, claim);
		while ((step = mr_sql_step(st, error)) == MR_SQL_ROW) {
			MrOutboxClaimed *mail = g_new0(MrOutboxClaimed, 1);
			gsize len = 0;
			const void *data = st->conn->driver->column_blob(st, 5, &len);

			mail->id = mr_sql_column_int64(st, 0);
			mail->message = mr_sql_column_int64(st, 1);
			mail->token = g_strdup(mr_sql_column_text(st, 2));
			mail->recipient = g_strdup(mr_sql_column_text(st, 3));
			mail->attempts = mr_sql_column_int64(st, 4);
			mail->raw = g_bytes_new(data, len);
			mail->record = mr_store_column_record(st, 6);
			g_ptr_array_add(mails, mail);
		}
		if (step == MR_SQL_FAIL)
			return NULL;
	}
	return g_steal_pointer(&mails);
}

gboolean
mr_store_outbox_result(MrStore *store, gint64 id, const char *claim, const char *status,
		       const char *last_error, const char *next_attempt, const char *sent,
		       gboolean unsent, const char *now, gboolean *ours, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OUTBOX_RESULT);
	gboolean changed = FALSE;

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, claim);
	mr_sql_bind_text(st, 3, status);
	mr_sql_bind_text(st, 4, last_error);
	mr_sql_bind_text(st, 5, next_attempt);
	mr_sql_bind_text(st, 6, sent);
	mr_sql_bind_text(st, 7, now);
	mr_sql_bind_int64(st, 8, unsent ? 1 : 0);
	if (!mr_store_step_changed(st, &changed, error))
		return FALSE;
	if (ours != NULL)
		*ours = changed;
	return TRUE;
}

gboolean
mr_store_outbox_sent_claim(MrStore *store, const char *claim, const char *now, guint *count,
			   GError **error)
{
	return finish_claim(store, MR_STMT_OUTBOX_SENT_CLAIM, claim, now, MR_OUTBOX_SENT, count,
			    error);
}

char *
mr_store_outbox_next_due(MrStore *store)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OUTBOX_NEXT_DUE);

	return step_min_text(store, st);
}

/* One chunk of mr_store_outbox_auto_counts(): at most MR_STORE_SLOTS
 * mails, one round trip. */
static gboolean
auto_counts_chunk(MrStore *store, const char *since, const char *const *recipients,
		  const gint64 *contacts, guint n, gint64 *counts, char **undeliverable,
		  GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OUTBOX_AUTO_COUNTS);
	MrSqlStep step;

	mr_sql_bind_text(st, 1, since);
	for (guint i = 0; i < MR_STORE_SLOTS; i++) {
		mr_sql_bind_text(st, 2 + 2 * (int)i, i < n ? recipients[i] : NULL);
		mr_store_bind_id(st, 3 + 2 * (int)i, i < n ? contacts[i] : 0);
	}
	while ((step = mr_sql_step(st, error)) == MR_SQL_ROW) {
		gint64 slot = mr_sql_column_int64(st, 0);

		if (slot < 0 || slot >= n)
			continue;
		counts[slot] = mr_sql_column_int64(st, 1);
		g_free(undeliverable[slot]);
		undeliverable[slot] = g_strdup(mr_sql_column_text(st, 2));
	}
	return step != MR_SQL_FAIL;
}

gboolean
mr_store_outbox_auto_counts(MrStore *store, const char *since, const char *const *recipients,
			    const gint64 *contacts, guint n, gint64 *counts, char **undeliverable,
			    GError **error)
{
	for (guint i = 0; i < n; i++) {
		counts[i] = 0;
		undeliverable[i] = NULL;
	}
	for (guint at = 0; at < n; at += MR_STORE_SLOTS)
		if (!auto_counts_chunk(store, since, recipients + at, contacts + at,
				       MIN(n - at, MR_STORE_SLOTS), counts + at, undeliverable + at,
				       error))
			return FALSE;
	return TRUE;
}

GPtrArray *
mr_store_outbox(MrStore *store, const char *status, gint64 limit, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LIST_OUTBOX);

	mr_sql_bind_text(st, 1, status);
	mr_sql_bind_int64(st, 2, limit > 0 ? limit : G_MAXINT64);
	return mr_store_read_rows(st, &mr_outbox_row_desc, error);
}

MrOutboxRow *
mr_store_outbox_get(MrStore *store, gint64 id, GError **error)
{
	return mr_store_read_by_id(store, MR_STMT_SHOW_OUTBOX, &mr_outbox_row_desc, "outgoing mail", id,
			  error);
}

gboolean
mr_store_outbox_set_status(MrStore *store, gint64 id, const char *status,
			   const char *const *from, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OUTBOX_SET_STATUS);
	gboolean changed = FALSE, end = FALSE;

	g_return_val_if_fail(from != NULL && from[0] != NULL, FALSE);
	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, status);
	mr_sql_bind_text(st, 3, now);
	/* four slots: the states of @from, the first again in those left
	 * (nothing read past its NULL) */
	for (guint i = 0; i < 4; i++) {
		end = end || from[i] == NULL;
		mr_sql_bind_text(st, 4 + (int)i, end ? from[0] : from[i]);
	}
	g_return_val_if_fail(end || from[4] == NULL, FALSE);
	if (!mr_store_step_changed(st, &changed, error))
		return FALSE;
	if (changed && strcmp(status, MR_OUTBOX_QUEUED) == 0) {
		mr_sql_reset(st);
		if (!mr_store_notify_work(store, error))
			return FALSE;
	}
	return changed;
}

/* --- templates -------------------------------------------------------------- */

gint64
mr_store_template_put(MrStore *store, const char *name, const char *subject, const char *body,
		      gboolean replace, const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st =
		store_stmt(store, replace ? MR_STMT_TEMPLATE_UPDATE : MR_STMT_TEMPLATE_INSERT);

	mr_sql_bind_text(st, 1, name);
	mr_sql_bind_text(st, 2, subject);
	mr_sql_bind_text(st, 3, body);
	mr_sql_bind_text(st, 4, now);
	return mr_store_step_new_id(store, st, error);
}

MrTemplateRow *
mr_store_template_get(MrStore *store, const char *name, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_SHOW_TEMPLATE);

	if (!take_ahead(store, STORE_AHEAD_TEMPLATE))
		mr_sql_bind_text(st, 1, name);
	return mr_store_read_one(st, &mr_template_row_desc, "template", name, error);
}

GPtrArray *
mr_store_templates(MrStore *store, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_LIST_TEMPLATES);

	return mr_store_read_rows(st, &mr_template_row_desc, error);
}

gboolean
mr_store_template_delete(MrStore *store, const char *name, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_TEMPLATE_DELETE);
	gboolean changed = FALSE;

	mr_sql_bind_text(st, 1, name);
	return mr_store_step_changed(st, &changed, error) && changed;
}

/* --- what a mail about a record needs ------------------------------------- */

void
mr_record_mail_free(MrRecordMail *r)
{
	if (r == NULL)
		return;
	g_free(r->subject);
	g_free(r->status);
	g_free(r->contact_email);
	g_free(r->contact_name);
	g_free(r->undeliverable);
	g_free(r->owner_email);
	g_free(r->owner_name);
	g_free(r);
}

static MrStmtId
record_mail_stmt(MrRecordRef ref)
{
	return ref.kind == MR_RECORD_LEAD	   ? MR_STMT_RECORD_MAIL_LEAD
	       : ref.kind == MR_RECORD_OPPORTUNITY ? MR_STMT_RECORD_MAIL_OPP
						     : MR_STMT_RECORD_MAIL_TICKET;
}

gboolean
mr_store_outgoing_ahead(MrStore *store, MrRecordRef ref, gint64 message,
			const char *template_name, GError **error)
{
	MrSqlStmt *st;

	mr_store_outgoing_ahead_drop(store);
	st = store_stmt(store, record_mail_stmt(ref));
	mr_sql_bind_int64(st, 1, ref.id);
	if (!mr_sql_send_ahead(st, error))
		return FALSE;
	store->ahead |= STORE_AHEAD_RECORD;
	if (message != 0) {
		st = store_stmt(store, MR_STMT_MESSAGE_THREAD);
		mr_sql_bind_int64(st, 1, message);
		if (!mr_sql_send_ahead(st, error))
			return FALSE;
		store->ahead |= STORE_AHEAD_THREAD;
	}
	if (template_name != NULL) {
		st = store_stmt(store, MR_STMT_SHOW_TEMPLATE);
		mr_sql_bind_text(st, 1, template_name);
		if (!mr_sql_send_ahead(st, error))
			return FALSE;
		store->ahead |= STORE_AHEAD_TEMPLATE;
	}
	return TRUE;
}

void
mr_store_outgoing_ahead_drop(MrStore *store)
{
	if (store->ahead & STORE_AHEAD_RECORD) {
		mr_sql_reset(store_stmt(store, MR_STMT_RECORD_MAIL_LEAD));
		mr_sql_reset(store_stmt(store, MR_STMT_RECORD_MAIL_OPP));
		mr_sql_reset(store_stmt(store, MR_STMT_RECORD_MAIL_TICKET));
	}
	if (store->ahead & STORE_AHEAD_THREAD)
		mr_sql_reset(store_stmt(store, MR_STMT_MESSAGE_THREAD));
	if (store->ahead & STORE_AHEAD_TEMPLATE)
		mr_sql_reset(store_stmt(store, MR_STMT_SHOW_TEMPLATE));
	store->ahead = 0;
}

MrRecordMail *
mr_store_record_mail(MrStore *store, MrRecordRef ref, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, record_mail_stmt(ref));
	MrRecordMail *r;

	if (!take_ahead(store, STORE_AHEAD_RECORD))
		mr_sql_bind_int64(st, 1, ref.id);
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		break;
	case MR_SQL_DONE: {
		g_autofree char *display = mr_record_display_id(store->cfg, ref);

		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND, "no record %s",
			    display);
		return NULL;
	}
	default:
		return NULL;
	}
	r = g_new0(MrRecordMail, 1);
	r->subject = g_strdup(mr_sql_column_text(st, 0));
	r->status = g_strdup(mr_sql_column_text(st, 1));
	r->contact = mr_sql_column_int64(st, 2);
	r->contact_email = g_strdup(mr_sql_column_text(st, 3));
	r->contact_name = g_strdup(mr_sql_column_text(st, 4));
	r->undeliverable = g_strdup(mr_sql_column_text(st, 5));
	r->owner_email = g_strdup(mr_sql_column_text(st, 6));
	r->owner_name = g_strdup(mr_sql_column_text(st, 7));
	return r;
}

gboolean
mr_store_message_thread(MrStore *store, gint64 id, char **message_id, char **in_reply_to,
			char **subject, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_MESSAGE_THREAD);

	if (!take_ahead(store, STORE_AHEAD_THREAD))
		mr_sql_bind_int64(st, 1, id);
	switch (mr_sql_step(st, error)) {
	case MR_SQL_ROW:
		*message_id = g_strdup(mr_sql_column_text(st, 0));
		*in_reply_to = g_strdup(mr_sql_column_text(st, 1));
		*subject = g_strdup(mr_sql_column_text(st, 2));
		return TRUE;
	case MR_SQL_DONE:
		g_set_error(error, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND,
			    "no message %" G_GINT64_FORMAT, id);
		return FALSE;
	default:
		return FALSE;
	}
}

gboolean
mr_store_contact_set_undeliverable(MrStore *store, const char *email, const char *why,
				   GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_UNDELIVERABLE);
	gboolean changed = FALSE;

	mr_sql_bind_text(st, 1, email);
	mr_sql_bind_text(st, 2, why);
	return mr_store_step_changed(st, &changed, error) && changed;
}

gint64
mr_store_user_mailbox(MrStore *store, const char *address, char **email, char **name)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_USER_MAILBOX);

	mr_sql_bind_text(st, 1, address);
	if (!mr_store_step_row(store, st))
		return 0;
	*email = g_strdup(mr_sql_column_text(st, 1));
	*name = g_strdup(mr_sql_column_text(st, 2));
	return mr_sql_column_int64(st, 0);
}

gint64
mr_store_record_last_in(MrStore *store, MrRecordRef ref)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_RECORD_LAST_IN);

	mr_sql_bind_text(st, 1, mr_record_kind_name(ref.kind));
	mr_sql_bind_int64(st, 2, ref.id);
	return mr_store_step_int64(store, st);
}

void
mr_outbox_sent_free(MrOutboxSent *m)
{
	if (m == NULL)
		return;
	g_free(m->token);
	g_free(m->recipient);
	g_free(m->status);
	g_free(m->message_id);
	g_free(m);
}

MrOutboxSent *
mr_store_outbox_for_bounce(MrStore *store, gint64 id)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OUTBOX_FOR_BOUNCE);
	MrOutboxSent *m;

	mr_sql_bind_int64(st, 1, id);
	if (!mr_store_step_row(store, st))
		return NULL;
	m = g_new0(MrOutboxSent, 1);
	m->token = g_strdup(mr_sql_column_text(st, 0));
	m->recipient = g_strdup(mr_sql_column_text(st, 1));
	m->status = g_strdup(mr_sql_column_text(st, 2));
	m->contact = mr_sql_column_int64(st, 3);
	m->record = mr_store_column_record(st, 4);
	m->message = mr_sql_column_int64(st, 6);
	m->message_id = g_strdup(mr_sql_column_text(st, 7));
	return m;
}

gboolean
mr_store_outbox_bounced(MrStore *store, gint64 id, const char *status, const char *text,
			const char *now, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_OUTBOX_BOUNCED);

	mr_sql_bind_int64(st, 1, id);
	mr_sql_bind_text(st, 2, status);
	mr_sql_bind_text(st, 3, text);
	mr_sql_bind_text(st, 4, now);
	return mr_store_step_done(store, st, error);
}

gboolean
mr_store_contact_mark(MrStore *store, gint64 contact, const char *why, GError **error)
{
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_CONTACT_MARK_ID);

	mr_sql_bind_int64(st, 1, contact);
	mr_sql_bind_text(st, 2, why);
	return mr_store_step_done(store, st, error);
}
