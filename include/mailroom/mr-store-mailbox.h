/* mr-store-mailbox.h - stage 4: what mailroomd keeps of the IMAP
 * mailboxes it watches, and the messages it could not store. */
#pragma once

#include <glib.h>

#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* What mailroomd knows of a mailbox it watches (an imap entry, by name):
 * where it stands and how its connection is.  One writer per mailbox: the
 * thread that watches it. */
typedef struct {
	char *name;
	gint64 uidvalidity;   /* 0: never selected */
	gint64 last_uid;      /* every message up to it is handled */
	char *state;          /* connecting connected idle polling backoff
	                         auth_failed stopped */
	gint64 backlog;       /* messages above last_uid on the server, as of
	                         the last check */
	char *last_error;     /* (nullable) */
	char *updated;        /* UTC ISO-8601, set by mr_store_mailbox_save() */
	gint64 inflight_to;   /* the last UID of the batch being stored: when
	                         above last_uid at start, a run died storing it */
	gint64 inflight_tries; /* when that batch is one message alone: how many
	                          runs started storing it (0 for a batch) */
} MrMailboxState;

MR_ROW_DECLARE(MrMailboxState, mr_mailbox_state_desc, mr_mailbox_state_free)

/* Returns: (transfer full) (nullable): the state of mailbox @name, or NULL
 * -- with @error on failure, without when the mailbox has none yet. */
MrMailboxState *mr_store_mailbox_get(MrStore *store, const char *name, GError **error);

/* Writes @st (all of it; "updated" is now) for its name.  Runs in the open
 * transaction (a unit of work), or in one of its own. */
gboolean mr_store_mailbox_save(MrStore *store, const MrMailboxState *st, GError **error);

/* Returns: (transfer full) (element-type MrMailboxState): every mailbox
 * with a state, by name, or NULL with @error. */
GPtrArray *mr_store_mailboxes(MrStore *store, GError **error);

/* A message of a mailbox that could not be stored (too big, or failing
 * again and again): its bytes wait here for mailroomctl message retry. */
typedef struct {
	gint64 id;
	char *mailbox;
	gint64 uidvalidity;
	gint64 uid;
	char *reason;
	gint64 size;
	char *created;
	GBytes *raw;          /* (nullable): only from mr_store_quarantine_get() */
} MrQuarantineRow;

MR_ROW_DECLARE(MrQuarantineRow, mr_quarantine_row_desc, mr_quarantine_row_free)

/* Keeps @raw of UID @uid (UIDVALIDITY @uidvalidity) of @mailbox with
 * @reason; once per message (a second time changes nothing).  @size is
 * the message's size: more than @raw holds when only its first bytes
 * (or none) were kept; the size column is the larger of the two.  Runs
 * in the open transaction or one of its own. */
gboolean mr_store_quarantine_add(MrStore *store, const char *mailbox, gint64 uidvalidity,
				 gint64 uid, const char *reason, gint64 size, GBytes *raw,
				 GError **error);

/* Returns: (transfer full) (element-type MrQuarantineRow): the quarantined
 * messages (without their bytes), oldest first, at most @limit (<= 0:
 * all), or NULL with @error. */
GPtrArray *mr_store_quarantined(MrStore *store, gint64 limit, GError **error);

/* Returns: (transfer full): quarantined message @id with its bytes, or
 * NULL with @error (MR_STORE_ERROR_NOT_FOUND). */
MrQuarantineRow *mr_store_quarantine_get(MrStore *store, gint64 id, GError **error);

/* Removes quarantined message @id (in the open transaction: after it was
 * stored); none left is no error.  FALSE with @error when the delete
 * failed. */
gboolean mr_store_quarantine_delete(MrStore *store, gint64 id, GError **error);

G_END_DECLS
