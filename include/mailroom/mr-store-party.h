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

/* Looks contact @id up: sets @account_out and @owner_out (nullable) to its
 * account and owner, 0 for none.  Returns FALSE when there is no such
 * contact (or the look-up failed: mr_store_check()). */
gboolean mr_store_contact_account_owner(MrStore *store, gint64 id, gint64 *account_out,
					gint64 *owner_out);

/* --- row-level writes ----------------------------------------------------
 * Each writes inside the open transaction (mr_store_begin() or
 * mr_store_run()) and decides nothing: which rows to write is the CRM
 * layer's business (src/crm/).  Those "sent ahead" may report their
 * failure with a later statement (mr_store_check(), the commit).  @now is
 * UTC ISO-8601. */

/* Returns the id of user @email, making the user (with @name, nullable,
 * and its address) when there is none; 0 with @error. */
gint64 mr_store_user_ensure(MrStore *store, const char *email, const char *name,
			    const char *now, GError **error);

/* Sets the name of user @id. */
gboolean mr_store_user_set_name(MrStore *store, gint64 id, const char *name, GError **error);

/* Returns the id of the account of @domain, making it when there is none;
 * 0 with @error. */
gint64 mr_store_account_ensure(MrStore *store, const char *domain, const char *now,
			       GError **error);

/* Adds contact @email (@name, @account and @owner nullable/0).  Returns
 * its id with *@created_out TRUE; or, when another writer made it
 * meanwhile, the id of theirs with *@created_out FALSE; 0 with @error. */
gint64 mr_store_contact_add(MrStore *store, const char *email, const char *name,
			    gint64 account, gint64 owner, const char *now,
			    gboolean *created_out, GError **error);

/* Contact @id was seen at @now: sets its name to @name (nullable) and its
 * owner to @owner (0: none) where it has none.  Sent ahead. */
gboolean mr_store_contact_touch(MrStore *store, gint64 id, const char *name, gint64 owner,
				const char *now, GError **error);

/* What a message is linked to besides records (mr_store_link_record()). */
typedef enum {
	MR_PARTY_USER,
	MR_PARTY_CONTACT,
	MR_PARTY_ACCOUNT,
} MrPartyKind;

/* Links message @msg to the party @id of @kind (0: nothing to link).  A
 * link made twice is one.  Sent ahead. */
gboolean mr_store_link_party(MrStore *store, gint64 msg, MrPartyKind kind, gint64 id,
			     GError **error);

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
	gboolean away;        /* skipped by the teams' round-robin */
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
	char *undeliverable;  /* why no automatic mail goes to it (a hard
	                         bounce), NULL: deliverable */
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
