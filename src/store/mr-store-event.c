/* mr-store-event.c - writing an event: its type, record, message and typed
 * facts, never a sentence (mr-store-event.h).
 *
 * Store stage: row-level primitives that decide nothing. */
#define G_LOG_DOMAIN "mailroom-store"

#include "mr-store-private.h"

gboolean
mr_store_event_add(MrStore *store, const char *now, MrEventType type, MrRecordRef ref,
		   gint64 msg, const MrEventFacts *facts, GError **error)
{
	static const MrEventFacts none = { 0 };
	const MrEventFacts *f = facts != NULL ? facts : &none;
	g_autoptr(MrStmtUse) st = store_stmt(store, MR_STMT_EVENT_INSERT);

	mr_sql_bind_text(st, 1, now);
	mr_sql_bind_text(st, 2, mr_event_type_name(type));
	mr_sql_bind_text(st, 3, mr_record_kind_name(ref.kind));
	mr_store_bind_id(st, 4, ref.id);
	mr_store_bind_id(st, 5, msg);
	mr_store_bind_id(st, 6, f->actor);
	mr_sql_bind_text(st, 7, f->old_status);
	mr_sql_bind_text(st, 8, f->new_status);
	mr_sql_bind_text(st, 9, f->address);
	mr_sql_bind_text(st, 10, f->detail);
	if (!mr_store_step_later(store, st, error))
		return FALSE;
	return ref.kind == MR_RECORD_NONE || store->event_hook == NULL ||
	       store->event_hook(store, now, type, ref, msg, f, store->event_hook_data, error);
}

void
mr_store_set_event_hook(MrStore *store, MrStoreEventHook hook, gpointer data)
{
	store->event_hook = hook;
	store->event_hook_data = data;
}
