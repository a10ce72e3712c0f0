/* mr-store-event.h - stage 4: what happened: the event feed that
 * workflows read, and the timelines of parties and records. */
#pragma once

#include <glib.h>

#include "mailroom/mr-event.h"
#include "mailroom/mr-record.h"
#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* --- events: the feed that workflows read ------------------------------ */

/* Writes an event of @type at @now about @ref (MR_RECORD_NONE: the
 * message's own) and message @msg (0: none), with @facts (nullable), in
 * the open transaction; sent ahead on PostgreSQL (mr_store_check()).
 * Returns FALSE with @error when it failed. */
gboolean mr_store_event_add(MrStore *store, const char *now, MrEventType type, MrRecordRef ref,
			    gint64 msg, const MrEventFacts *facts, GError **error);

/* What the store calls after it wrote an event about a record
 * (mr_store_event_add() with a record), in the same transaction, with the
 * event's arguments: the workflows' timers start and stop there
 * (mr-crm-workflow.h), so that they commit or vanish with the event.
 * Returns FALSE with @error to fail the event's write. */
typedef gboolean (*MrStoreEventHook)(MrStore *store, const char *now, MrEventType type,
				     MrRecordRef ref, gint64 msg, const MrEventFacts *facts,
				     gpointer data, GError **error);

/* Makes @hook (nullable: none) with @data the event hook of @store. */
void mr_store_set_event_hook(MrStore *store, MrStoreEventHook hook, gpointer data);

typedef struct {
	gint64 id;           /* increasing: a consumer remembers the last it read */
	char *created;       /* UTC ISO-8601 */
	MrEventType type;
	char *type_name;     /* as stored (for MR_EVENT_OTHER) */
	MrRecordRef record;  /* MR_RECORD_NONE for a message's own events */
	gint64 message_row;  /* 0: none */
	char *summary;       /* (nullable): the sentence, made where the event is
	                        shown (mr_event_describe()); the store leaves it
	                        NULL */
	MrEventFacts facts;  /* what else it says (not shown as such) */
} MrEvent;

MR_ROW_DECLARE(MrEvent, mr_event_desc, mr_event_free)

/* The declaration of MrEventFacts as a part of a row: its fields are read
 * (actor_id, old_status, new_status, address, detail) and not shown. */
extern const MrRowDesc mr_event_facts_desc;

/* Returns: (transfer full) (element-type MrEvent): the events with an id
 * above @after, oldest first, at most @limit (0: all), or NULL with
 * @error.  Only committed events show up, in id order, and never an
 * event with a smaller id later: a consumer that remembers the last id
 * it handled misses none.  (SQLite's writers take turns; on PostgreSQL,
 * where several daemons commit in any order, every write transaction
 * holds a shared lock from BEGIN to its end, and this reads up to the
 * newest id seen while holding it exclusively: it waits for the writers
 * in flight, a batch at most.) */
GPtrArray *mr_store_events_after(MrStore *store, gint64 after, guint limit, GError **error);

/* --- timelines ----------------------------------------------------------- */

/* One entry of a timeline: a message, or an event ("ticket.created"). */
typedef struct {
	char *received;       /* a message's arrival, NULL for an event */
	char *created;        /* an event's time, NULL for a message */
	char *kind;           /* "message", "message.out" (one mailroom sent)
	                         or the event type's name */
	char *subject;        /* the subject, or the event's sentence: NULL from
	                         the store, made where it is shown
	                         (mr_event_describe() of @record and @facts) */
	char *message_id;
	char *sent;           /* the sender's Date: of a message */
	char *date;           /* received or created (the deprecated alias) */
	MrRecordRef record;   /* an event's record (not shown) */
	MrEventFacts facts;   /* an event's facts (not shown) */
} MrTimelineEntry;

MR_ROW_DECLARE(MrTimelineEntry, mr_timeline_entry_desc, mr_timeline_entry_free)

/* The timeline of a contact or user (@email), an account (@domain) or a
 * record (@ref), oldest first.  Exactly one of @email, @domain and
 * @ref.kind is set.  Returns: (transfer full) (element-type
 * MrTimelineEntry), or NULL with MR_STORE_ERROR_NOT_FOUND. */
GPtrArray *mr_store_timeline(MrStore *store, const char *email, const char *domain,
			     MrRecordRef ref, GError **error);

G_END_DECLS
