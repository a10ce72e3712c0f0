/* mr-crm-teams.c - the use cases of the teams (issue 22): add and remove
 * a team, its members in and out, a user away or back; and the turn that
 * routing takes when a rule gives a record to a team (see mr-crm.h).
 *
 * CRM stage.  What the data must say -- members and a lead who are users,
 * a name nobody else has, no rule giving records to a team that goes --
 * is checked here.  Each change bumps the rules' change counter first in
 * its transaction (mr_store_run()): its row lock orders the change after
 * any other change of the rules or the teams, and the daemons, which
 * poll it, reload the rules that name teams. */
#define G_LOG_DOMAIN "mailroom-crm"

#include <string.h>

#include "mr-crm-private.h"
#include "mailroom/mr-clock.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-rule.h"
#include "mailroom/mr-store-team.h"

/* Sets @id_out to @id, what a look-up found of @what ("user", "team")
 * @key; fails as mr_crm_not_found() ("no user x") when it found nothing. */
static gboolean
found(MrStore *store, gint64 id, const char *what, const char *key, gint64 *id_out,
      GError **error)
{
	*id_out = id;
	if (id != 0)
		return TRUE;
	mr_crm_not_found(store, error, "no %s %s", what, key);
	return FALSE;
}

/* The user of address @email, as found(). */
static gboolean
user_id(MrStore *store, const char *email, gint64 *id_out, GError **error)
{
	return found(store, mr_store_user_by_address(store, email), "user", email, id_out, error);
}

/* Team @name, as found(). */
static gboolean
team_id(MrStore *store, const char *name, gint64 *id_out, GError **error)
{
	return found(store, mr_store_team_id(store, name), "team", name, id_out, error);
}

/* Bumps the rules' change counter: first in every change of a team. */
static gboolean
teams_bump(MrStore *store, GError **error)
{
	return mr_store_rules_bump(store, error) != 0;
}

/* --- add, remove ----------------------------------------------------------------- */

typedef struct {
	const char *name;
	const char *const *members;
	const char *lead;
} TeamAdd;

/* Adds user @user to team @team, last.  Returns 1, 0 when the user is a
 * member already, -1 with @error. */
static int
member_insert(MrStore *store, gint64 team, gint64 user, GError **error)
{
	g_autoptr(GError) local = NULL;

	if (mr_store_team_member_insert(store, team, user, &local) != 0)
		return 1;
	if (local == NULL)
		return 0;
	g_propagate_error(error, g_steal_pointer(&local));
	return -1;
}

static gboolean
team_add_tx(MrStore *store, gpointer data, GError **error)
{
	TeamAdd *t = data;
	g_autofree char *now = mr_clock_now_iso();
	g_autoptr(GArray) users = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(GError) local = NULL;
	gint64 lead = 0, team;

	if (!teams_bump(store, error))
		return FALSE;
	for (const char *const *m = t->members; *m != NULL; m++) {
		gint64 id;

		if (!user_id(store, *m, &id, error))
			return FALSE;
		g_array_append_val(users, id);
	}
	if (t->lead != NULL && !user_id(store, t->lead, &lead, error))
		return FALSE;
	if (!mr_store_check(store, error))
		return FALSE;
	team = mr_store_team_insert(store, t->name, lead, now, &local);
	if (team == 0) {
		if (local != NULL)
			g_propagate_error(error, g_steal_pointer(&local));
		else
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS,
				    "team %s exists already", t->name);
		return FALSE;
	}
	/* in the order given: positions 1 to n */
	for (guint i = 0; i < users->len; i++) {
		switch (member_insert(store, team, g_array_index(users, gint64, i), error)) {
		case 1:
			continue;
		case 0:
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID,
				    "%s is named twice (the same user)", t->members[i]);
			return FALSE;
		default:
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
mr_crm_team_add(MrStore *store, const char *name, const char *const *members, const char *lead,
		GError **error)
{
	TeamAdd t = { name, members, lead };

	g_return_val_if_fail(members != NULL, FALSE);

	if (!mr_rule_check_name("team", name, error))
		return FALSE;
	if (members[0] == NULL) {
		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID,
			    "team %s needs at least one member", name);
		return FALSE;
	}
	return mr_store_run(store, team_add_tx, &t, error);
}

/* Fails with MR_CRM_ERROR_INVALID when a rule gives records to team
 * @name (an action owner = team:NAME). */
static gboolean
no_rule_names(MrStore *store, const char *name, GError **error)
{
	g_autoptr(GPtrArray) rules = mr_store_rules(store, error);

	if (rules == NULL)
		return FALSE;
	for (guint i = 0; i < rules->len; i++) {
		const MrRuleRow *r = g_ptr_array_index(rules, i);

		for (char **text = r->actions; *text != NULL; text++) {
			/* stored canonical, as mr_rule_new() made it */
			g_autoptr(MrRuleAction) a = mr_rule_action_parse(*text, NULL);

			if (a != NULL && a->kind == MR_RULE_ACT_OWNER && a->team &&
			    strcmp(a->text, name) == 0) {
				g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID,
					    "team %s is the owner of rule %s; change or delete the"
					    " rule first", name, r->name);
				return FALSE;
			}
		}
	}
	return TRUE;
}

static gboolean
team_remove_tx(MrStore *store, gpointer data, GError **error)
{
	const char *name = data;
	gint64 team;

	return teams_bump(store, error) && team_id(store, name, &team, error) &&
	       mr_store_check(store, error) && no_rule_names(store, name, error) &&
	       mr_store_team_delete(store, team, error);
}

gboolean
mr_crm_team_remove(MrStore *store, const char *name, GError **error)
{
	return mr_store_run(store, team_remove_tx, (gpointer)name, error);
}

/* --- members --------------------------------------------------------------------- */

typedef struct {
	const char *name;
	const char *user;
	gboolean add;
} TeamMember;

static gboolean
team_member_tx(MrStore *store, gpointer data, GError **error)
{
	TeamMember *m = data;
	gint64 team, user;

	if (!teams_bump(store, error) || !team_id(store, m->name, &team, error) ||
	    !user_id(store, m->user, &user, error))
		return FALSE;
	if (m->add) {
		if (!mr_store_check(store, error))
			return FALSE;
		switch (member_insert(store, team, user, error)) {
		case 1:
			return TRUE;
		case 0:
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_EXISTS,
				    "%s is a member of team %s already", m->user, m->name);
			return FALSE;
		default:
			return FALSE;
		}
	}
	if (mr_store_team_member_position(store, team, user) == 0) {
		if (mr_store_check(store, error))
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID,
				    "%s is no member of team %s", m->user, m->name);
		return FALSE;
	}
	/* A team keeps a member: a rule may hand it records any moment. */
	if (mr_store_team_member_count(store, team) <= 1) {
		if (mr_store_check(store, error))
			g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_INVALID,
				    "%s is the last member of team %s; add another first, or"
				    " remove the team", m->user, m->name);
		return FALSE;
	}
	return mr_store_check(store, error) &&
	       mr_store_team_member_delete(store, team, user, error);
}

gboolean
mr_crm_team_member_add(MrStore *store, const char *name, const char *user, GError **error)
{
	TeamMember m = { name, user, TRUE };

	return mr_store_run(store, team_member_tx, &m, error);
}

gboolean
mr_crm_team_member_remove(MrStore *store, const char *name, const char *user, GError **error)
{
	TeamMember m = { name, user, FALSE };

	return mr_store_run(store, team_member_tx, &m, error);
}

/* --- away ------------------------------------------------------------------------ */

typedef struct {
	const char *email;
	gboolean away;
} UserAway;

static gboolean
user_away_tx(MrStore *store, gpointer data, GError **error)
{
	UserAway *u = data;
	gint64 user;

	return teams_bump(store, error) && user_id(store, u->email, &user, error) &&
	       mr_store_check(store, error) &&
	       mr_store_user_set_away(store, user, u->away, error);
}

gboolean
mr_crm_user_away(MrStore *store, const char *email, gboolean away, GError **error)
{
	UserAway u = { email, away };

	return mr_store_run(store, user_away_tx, &u, error);
}

/* --- the turn -------------------------------------------------------------------- */

gint64
mr_crm_team_assign(MrStore *store, const char *team, GError **error)
{
	g_autoptr(GError) local = NULL;
	gint64 user;

	g_return_val_if_fail(team != NULL, 0);
	g_return_val_if_fail(mr_store_in_transaction(store), 0);

	user = mr_store_team_take_turn(store, team, &local);
	if (g_error_matches(local, MR_STORE_ERROR, MR_STORE_ERROR_NOT_FOUND)) {
		g_set_error(error, MR_CRM_ERROR, MR_CRM_ERROR_NOT_FOUND, "no team %s", team);
		return 0;
	}
	if (local != NULL)
		g_propagate_error(error, g_steal_pointer(&local));
	return user;
}
