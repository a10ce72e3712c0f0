/* mr-store-team.h - stage 4: the store's teams (issue 22): their rows,
 * their members in position order, the users' away flag, and the turn
 * that hands records out round-robin.
 *
 * Row-level primitives that decide nothing: whether a user exists, a
 * name is free or a team may go is the CRM layer's question
 * (mr_crm_team_add() and the others, src/crm/mr-crm-teams.c).  A member's
 * position stays when others leave (gaps are harmless); a team's turn is
 * the position of the member who was given the last record (0: none
 * yet). */
#pragma once

#include <glib.h>

#include "mailroom/mr-row.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* --- look-ups (read only; see mr_store_check()) ------------------------- */

/* Returns the id of team @name, or 0 when there is none. */
gint64 mr_store_team_id(MrStore *store, const char *name);

/* Returns the position of user @user in team @team, or 0 when the user is
 * not a member. */
gint64 mr_store_team_member_position(MrStore *store, gint64 team, gint64 user);

/* Returns the number of members of team @team. */
gint64 mr_store_team_member_count(MrStore *store, gint64 team);

/* --- row-level writes ----------------------------------------------------
 * Inside the open transaction (mr_store_run()).  @now is UTC ISO-8601. */

/* Inserts team @name with lead @lead (0: none) at @now.  Returns its id;
 * 0 without @error when the name is taken; 0 with @error. */
gint64 mr_store_team_insert(MrStore *store, const char *name, gint64 lead, const char *now,
			    GError **error);

/* Deletes team @team and its members (none is no error). */
gboolean mr_store_team_delete(MrStore *store, gint64 team, GError **error);

/* Makes user @user a member of team @team, after the last one.  Returns
 * the member's position; 0 without @error when the user is a member
 * already; 0 with @error. */
gint64 mr_store_team_member_insert(MrStore *store, gint64 team, gint64 user, GError **error);

/* Takes user @user out of team @team (not a member is no error); the
 * others keep their positions. */
gboolean mr_store_team_member_delete(MrStore *store, gint64 team, gint64 user,
				     GError **error);

/* Marks user @user away, or back. */
gboolean mr_store_user_set_away(MrStore *store, gint64 user, gboolean away, GError **error);

/* The turn of team @name: locks the team's row first (an UPDATE, which
 * on PostgreSQL waits for any other transaction that took a turn of the
 * same team and then reads what it committed; SQLite has one writer),
 * reads the next member -- the first, by position, after the turn who is
 * not away, wrapping round to the lowest position -- and makes that
 * member's position the turn.  Inside the caller's transaction: the turn
 * commits, or is undone, with the record it assigns.  Returns the
 * member's user id; 0 without @error when every member is away (the turn
 * stays); 0 with @error (MR_STORE_ERROR_NOT_FOUND when there is no team
 * @name). */
gint64 mr_store_team_take_turn(MrStore *store, const char *name, GError **error);

/* --- queries for the CLI --------------------------------------------------- */

typedef struct {
	gint64 id;
	char *name;
	GStrv members;  /* the members' emails, in position order */
	char *lead;     /* the lead's email, or NULL */
	GStrv away;     /* the members who are away, in position order */
	char *next;     /* the member the next record goes to (the turn
	                   taken now), or NULL when every member is away */
	char *calendar; /* the calendar its records count time in (issue 24) */
	char *created;
} MrTeamRow;

MR_ROW_DECLARE(MrTeamRow, mr_team_row_desc, mr_team_row_free)

/* Returns: (transfer full) (element-type MrTeamRow): every team, by name,
 * or NULL with @error. */
GPtrArray *mr_store_teams(MrStore *store, GError **error);

/* Returns: (transfer full): team @name, or NULL with @error
 * (MR_STORE_ERROR_NOT_FOUND when there is none). */
MrTeamRow *mr_store_team_get(MrStore *store, const char *name, GError **error);

G_END_DECLS
