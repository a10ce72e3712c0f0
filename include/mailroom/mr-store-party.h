/* mr-store-party.h - stage 4: the store's parties: users (the
 * people of this mailroom), contacts and their accounts. */
#pragma once

#include <glib.h>

#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* --- look-ups for routing (read only; see mr_store_check()) ----------- */

/* Returns the user id owning @email, or 0. */
gint64 mr_store_user_by_address(MrStore *store, const char *email);

/* Returns the contact id of @email, or 0. */
gint64 mr_store_contact_by_email(MrStore *store, const char *email);

/* Looks @email up as a user's address and as a contact at once (one
 * statement): sets @user_out to the user's id, @contact_out to the
 * contact's and @account_out to that contact's account, each 0 when
 * there is none. */
void mr_store_party_by_email(MrStore *store, const char *email, gint64 *user_out,
			     gint64 *contact_out, gint64 *account_out);

/* --- administration ----------------------------------------------------
 * Each runs in a transaction of its own, or, when one is open (a unit of
 * work on the writer), inside it: its owner commits or undoes. */

/* Adds user @email (or adds @name to an existing one).  Returns its id, or
 * 0 with @error. */
gint64 mr_store_user_add(MrStore *store, const char *email, const char *name, GError **error);

/* --- queries for the CLI ------------------------------------------------
 * Rows come back as structs, each with its declaration (mr-row.h: the
 * fields in the order of the columns and of the CLI's JSON, see
 * mr-store-rows.c); text members are NULL where the column is NULL.
 * Record ids are numbers: mr_record_display_id() formats them. */

typedef struct {
	gint64 id;
	char *email;
	char *name;
	GStrv addresses;      /* every address of the user (NULL-terminated) */
	char *created;
	gint64 message_count;
} MrUserRow;

MR_ROW_DECLARE(MrUserRow, mr_user_row_desc, mr_user_row_free)

typedef struct {
	gint64 id;
	char *email;
	char *name;
	char *account;        /* the account's name */
	char *owner;          /* the owner's email */
	char *created;
	char *last_seen;
	gint64 message_count;
} MrContactRow;

MR_ROW_DECLARE(MrContactRow, mr_contact_row_desc, mr_contact_row_free)

typedef struct {
	gint64 id;
	char *name;
	char *domain;
	char *created;
	gint64 contacts;
	gint64 message_count;
} MrAccountRow;

MR_ROW_DECLARE(MrAccountRow, mr_account_row_desc, mr_account_row_free)

/* Each lists its rows oldest first, at most @limit (<= 0: all).
 * Returns: (transfer full) (element-type the row struct): the rows, or
 * NULL with @error. */
GPtrArray *mr_store_users(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_contacts(MrStore *store, gint64 limit, GError **error);
GPtrArray *mr_store_accounts(MrStore *store, gint64 limit, GError **error);

/* Returns: (transfer full): contact @email, or NULL with @error
 * (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrContactRow *mr_store_contact_get(MrStore *store, const char *email, GError **error);

G_END_DECLS
