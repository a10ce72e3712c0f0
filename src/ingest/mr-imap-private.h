/* mr-imap-private.h - what the files of the IMAP door share: the session
 * (mr-imap-session.c), which the watch (mr-imap-watch.c) drives.
 *
 * Not for other folders: the door's contract is mr-imap.h. */
#pragma once

#include <libetpan/libetpan.h>

#include "mailroom/mr-imap.h"
#include "mailroom/mr-net.h"

G_BEGIN_DECLS

/* Where the server's bytes are in IMAP's literal framing. */
typedef struct {
	guint64 lit_left;       /* bytes of a literal still to come */
	guint64 lit_n;          /* the size being announced */
	int lit_state;          /* 0 text, 1 in "{digits", 2 after "}", 3 after CR */
} MrImapFraming;

typedef struct _MrImapSession MrImapSession;

/* Takes what it wants of one FETCH response of the command in progress
 * (the response is freed when it returns). */
typedef void (*MrImapCollect)(MrImapSession *s, struct mailimap_msg_att *att, gpointer data);

/* An open IMAP session: libetpan's state over our connection. */
struct _MrImapSession {
	mailimap *imap;
	MrNetConn *conn;
	MrImapFraming framing; /* of what the server sent on @conn */
	gboolean has_idle, has_move, has_uidplus;
	MrImapCollect collect; /* (nullable) FETCH responses of the command in */
	gpointer collect_data; /* progress go there; without it they are dropped */
};

/* A message on the server: its UID and size. */
typedef struct {
	guint32 uid;
	guint32 size;
} MrImapUid;

/* A nudge from the main thread to a watch thread in a wait: it wakes the
 * wait's own main context. */
typedef struct {
	GMutex lock;
	GMainContext *waiting; /* (nullable) the context of the wait in progress */
	gboolean poked;
} MrImapPoke;

/* --- mr-imap-session.c --- */

/* A session over @conn (taken), not started yet: libetpan's state over
 * it, IMAP's literal framing checked at every read.  Returns: (transfer
 * full). */
MrImapSession *mr_imap_session_new(MrNetConn *conn);

/* Frees @s without a LOGOUT (a session that failed is not talked to).
 * NULL-safe. */
void mr_imap_session_free(MrImapSession *s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrImapSession, mr_imap_session_free)

/* Speaks IMAP over the connection of @started (taken): the greeting,
 * STARTTLS as configured, the login and the capabilities after it.
 * Returns: (transfer full): the session, or NULL with @error in
 * MR_IMAP_ERROR. */
MrImapSession *mr_imap_session_start(MrImapSession *started, const MrImapMailbox *mb,
				     GError **error);

/* Connects to @mb (its I/O cancelled by @cancel, nullable), secures the
 * connection as configured and logs in (mr_imap_session_start()).
 * Returns: (transfer full): the session, or NULL with @error. */
MrImapSession *mr_imap_session_open(const MrImapMailbox *mb, GCancellable *cancel,
				    GError **error);

/* Sets @error in MR_IMAP_ERROR from libetpan's result @r of @what: a
 * stream error carries the connection's own error.  Returns FALSE. */
gboolean mr_imap_session_fail(MrImapSession *s, int r, const char *what, GError **error);

/* Selects @folder. */
gboolean mr_imap_session_select(MrImapSession *s, const char *folder, GError **error);

/* Creates @folder unless it exists. */
gboolean mr_imap_session_ensure_folder(MrImapSession *s, const char *folder, GError **error);

/* Returns: (transfer full): the messages (MrImapUid) of the selected
 * folder above UID @after, in UID order, each once, at most
 * MR_IMAP_LIST_MAX (the lowest); NULL with @error. */
GArray *mr_imap_session_list_after(MrImapSession *s, guint32 after, GError **error);

/* Sets *@exists to whether message @uid is still in the selected
 * folder. */
gboolean mr_imap_session_uid_exists(MrImapSession *s, guint32 uid, gboolean *exists,
				    GError **error);

/* Fetches the bytes of the @n messages @uids (each listed once).
 * Returns: (transfer full): GBytes in the order of @uids (NULL for a
 * message whose body the server did not send), or NULL with @error. */
GPtrArray *mr_imap_session_fetch(MrImapSession *s, const MrImapUid *uids, guint n,
				 GError **error);

/* Fetches message @uid in parts into a file of @spool_dir, at most @limit
 * bytes; *@complete is TRUE when it ended before @limit.  Returns:
 * (transfer full): the bytes, or NULL with @error. */
GBytes *mr_imap_session_fetch_spooled(MrImapSession *s, guint32 uid, const char *spool_dir,
				      guint64 limit, gboolean *complete, GError **error);

/* Applies the after action of @mb to the @n messages @uids. */
gboolean mr_imap_session_after(MrImapSession *s, const MrImapMailbox *mb, const MrImapUid *uids,
			       guint n, GError **error);

/* IDLE until the server says something, @seconds pass, or @wake or
 * @poke ends the wait; then DONE. */
gboolean mr_imap_session_idle(MrImapSession *s, GCancellable *wake, MrImapPoke *poke, int seconds,
			      GError **error);

/* Makes the wait in progress (or the next one) of @poke's thread return
 * (any thread). */
void mr_imap_poke_send(MrImapPoke *poke);

/* Waits @seconds, or until @wake is cancelled or @poke pokes. */
void mr_imap_wait_wake(GCancellable *wake, MrImapPoke *poke, int seconds);

G_END_DECLS
