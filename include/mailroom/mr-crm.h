/* mr-crm.h - stage 5: the CRM's policy, above the store: what a routing plan
 * makes of the rows (contacts, accounts, owners, records, events), and the
 * use cases that change data.
 *
 * The store below keeps row-level primitives and SQL only; routing above
 * decides what a message is about, and this layer what that means for the
 * CRM's data: a freemail domain gets no account, a new contact's owner is
 * the user who wrote to it, a new lead without an owner takes its
 * contact's, a reopened ticket is open again, every change writes its
 * typed event.  mailroomctl and any later front end call one function per
 * use case; each runs in a transaction of its own, or inside the open one
 * (a unit of work of the writer), whose owner commits or undoes. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-plan.h"
#include "mailroom/mr-record.h"
#include "mailroom/mr-route.h"
#include "mailroom/mr-rule.h"
#include "mailroom/mr-rule-set.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

#define MR_CRM_ERROR (mr_crm_error_quark())

typedef enum {
	MR_CRM_ERROR_NOT_FOUND, /* no such record, contact or user */
	MR_CRM_ERROR_INVALID,   /* the request contradicts the data (a status
	                           change the lifecycle does not allow, ...) */
	MR_CRM_ERROR_EXISTS,    /* the name is taken (a rule, a team), or the
	                           member is one already */
} MrCrmError;

GQuark mr_crm_error_quark(void);

/* --- mail ------------------------------------------------------------------- */

typedef struct {
	gint64 message_row;   /* the stored message */
	gboolean new_message; /* FALSE when the bytes were already stored */
	gboolean duplicate;   /* already delivered to the plan's recipient:
				 nothing was written */
	MrRecordRef record;   /* the record created or updated, if any */
} MrApplied;

/* Applies @plan inside the open transaction: stores @raw (content key
 * @key) and @msg unless @message_row is already non-zero (or finishes what
 * mr_store_message_start() started), records the delivery, creates users,
 * contacts, accounts, tickets and leads as planned and by the policy of
 * @cfg (freemail domains), links, and writes the events.  With
 * @message_row 0, the message is looked up by @key as it is inserted: when
 * it is stored already and was delivered to the plan's recipient, nothing
 * is written and @out says duplicate.  Returns FALSE with @error; the
 * caller rolls back. */
gboolean mr_crm_apply(const MrConfig *cfg, MrStore *store, const MrPlan *plan, GBytes *raw,
		      const char *key, const MrMessage *msg, gint64 message_row, MrApplied *out,
		      GError **error);

/* --- rules at work (issue 22) ------------------------------------------------ */

/* Reads the rules and their change counter (inside the open transaction,
 * or alone) and compiles them.  A stored rule that no longer reads is
 * left out with a warning.  Returns: (transfer full): the set, or NULL
 * with @error (MR_STORE_ERROR). */
MrRuleSet *mr_crm_rules_load(MrStore *store, GError **error);

/* The rules' step of routing, inside the open transaction, after
 * mr_route_plan_facts() made @plan for @msg (@facts its routing facts):
 * runs @scan (made from @msg with the set the rules were read in) with
 * what the delivery adds -- the recipient, the role, followup, the
 * sender's account (looked up) -- keeps the outcome in @plan->rules, and
 * decides again as the rules say the mail becomes a ticket, a lead, a
 * log entry or nothing (MR_ACTION_IGNORE).  mr_crm_apply() then applies
 * the rest: owner, tags, priority, type, status, source, and the names of
 * the rules that fired on the delivery.  Returns FALSE with @error
 * (MR_STORE_ERROR) when a look-up failed. */
gboolean mr_crm_rules_amend(const MrConfig *cfg, MrStore *store, const MrRuleScan *scan,
			    const MrMessage *msg, const MrRouteFacts *facts, MrPlan *plan,
			    GError **error);

/* --- use cases -------------------------------------------------------------
 * Each returns FALSE (or 0) with @error: MR_CRM_ERROR for a request the
 * data refuses, MR_STORE_ERROR when the database failed.  @cfg formats
 * the record ids of error messages. */

/* Adds user @email (lower case), or gives an existing one @name (nullable).
 * Returns its id, or 0 with @error. */
gint64 mr_crm_user_add(MrStore *store, const char *email, const char *name, GError **error);

/* Creates an opportunity for contact @contact (must exist), owned by user
 * @owner (nullable; must exist; default the contact's owner), @value in
 * whole currency units (-1 for none).  Returns the new id, or 0. */
gint64 mr_crm_opp_add(const MrConfig *cfg, MrStore *store, const char *title,
		      const char *contact, const char *owner, gint64 value, GError **error);

/* Closes open opportunity @id as won, or lost with @reason (required). */
gboolean mr_crm_opp_close(const MrConfig *cfg, MrStore *store, gint64 id, gboolean won,
			  const char *reason, GError **error);

/* Sets ticket @id to @status (a name of mr_status_list(MR_RECORD_TICKET)),
 * where the lifecycle allows a user to (mr_status_can_change()). */
gboolean mr_crm_ticket_set_status(const MrConfig *cfg, MrStore *store, gint64 id,
				  const char *status, GError **error);

/* Converts open inbox lead @id into an opportunity (title, contact, owner
 * and messages carried over).  Returns the opportunity id, or 0. */
gint64 mr_crm_lead_convert(const MrConfig *cfg, MrStore *store, gint64 id, GError **error);

/* Archives inbox lead @id. */
gboolean mr_crm_lead_archive(const MrConfig *cfg, MrStore *store, gint64 id, GError **error);

/* --- teams (issue 22) -------------------------------------------------------
 * A team hands the records a rule gives it (owner = team:NAME) to its
 * members in turn, in position order (the order they were added in),
 * skipping those away.  Every change of a team or of a user's away flag
 * bumps the rules' change counter (mr_store_rules_bump()) first in its
 * transaction, so that daemons reload and two changes do not interleave.
 * A user is named by any of the user's addresses (lower case). */

/* Adds team @name (mr_rule_check_name(): MR_RULE_ERROR_NAME) with the
 * users @members (NULL-terminated, at least one, each once: in this
 * order) and @lead (nullable; a user, who need not be a member).
 * Refuses, writing nothing: a member or lead who is no user
 * (MR_CRM_ERROR_NOT_FOUND, "no user x@y"), no member or a user named
 * twice (MR_CRM_ERROR_INVALID), a name taken (MR_CRM_ERROR_EXISTS). */
gboolean mr_crm_team_add(MrStore *store, const char *name, const char *const *members,
			 const char *lead, GError **error);

/* Removes team @name (MR_CRM_ERROR_NOT_FOUND: no such team) and its
 * members -- unless a rule gives records to it (MR_CRM_ERROR_INVALID,
 * "team X is the owner of rule Y; change or delete the rule first"). */
gboolean mr_crm_team_remove(MrStore *store, const char *name, GError **error);

/* Adds user @user to team @name, after the last member.  Refuses: no
 * such team or user (MR_CRM_ERROR_NOT_FOUND, "no team x", "no user x"), a
 * member already (MR_CRM_ERROR_EXISTS). */
gboolean mr_crm_team_member_add(MrStore *store, const char *name, const char *user,
				GError **error);

/* Takes user @user out of team @name; the others keep their turn.
 * Refuses: no such team or user (MR_CRM_ERROR_NOT_FOUND), not a member
 * (MR_CRM_ERROR_INVALID), and the last member (MR_CRM_ERROR_INVALID: a
 * team has members; remove the team instead, or add another first). */
gboolean mr_crm_team_member_remove(MrStore *store, const char *name, const char *user,
				   GError **error);

/* Marks user @email away (the teams' turns skip the user) or back.
 * Refuses: no such user (MR_CRM_ERROR_NOT_FOUND, "no user x"). */
gboolean mr_crm_user_away(MrStore *store, const char *email, gboolean away, GError **error);

/* Takes the turn of team @team inside the OPEN transaction, the one that
 * writes the record it assigns (mr_crm_apply(); it opens none of its
 * own): the next member after the last one given a record who is not
 * away, wrapping round (mr_store_team_take_turn()).  The turn commits or
 * is undone with the record; on PostgreSQL the team's row stays locked
 * until then, so two daemons never give the same turn.  Returns the
 * member's user id; 0 without @error when every member is away (the
 * record stays unassigned: the caller writes MR_EVENT_TEAM_UNASSIGNED,
 * detail @team); 0 with @error: MR_CRM_ERROR_NOT_FOUND when there is no
 * team @team (any more), MR_STORE_ERROR when the database failed. */
gint64 mr_crm_team_assign(MrStore *store, const char *team, GError **error);

/* --- rules (issue 22) -------------------------------------------------------
 * Rules are kept in position order, 1 to n without gaps; every change
 * bumps the change counter (mr_store_rules_bump()) in its transaction. */

/* Adds @rule (made by mr_rule_new(), which checked its grammar) at
 * @position (0, or past the last: last; the rules from there on move one
 * down).  Refuses, writing nothing: an owner that is no user
 * (MR_CRM_ERROR_NOT_FOUND, "'owner = x@y': no user x@y") or no team
 * (MR_CRM_ERROR_NOT_FOUND, "'owner = team:x': no team x"), a name taken
 * (MR_CRM_ERROR_EXISTS).  Returns the rule's position, or 0
 * with @error. */
gint64 mr_crm_rule_add(MrStore *store, const MrRule *rule, gint64 position, GError **error);

/* Enables or disables rule @name (MR_CRM_ERROR_NOT_FOUND: no such rule);
 * one that already is changes nothing but the counter. */
gboolean mr_crm_rule_enable(MrStore *store, const char *name, gboolean enabled,
			    GError **error);

/* Deletes rule @name (MR_CRM_ERROR_NOT_FOUND: no such rule); those after
 * it move up one. */
gboolean mr_crm_rule_delete(MrStore *store, const char *name, GError **error);

/* Moves rule @name (MR_CRM_ERROR_NOT_FOUND: no such rule) to @position
 * (>= 1; past the last: last), the rules between moving one place.
 * Returns its new position, or 0 with @error. */
gint64 mr_crm_rule_move(MrStore *store, const char *name, gint64 position, GError **error);

/* Replaces every rule by @rules (element-type MrRule, each made by
 * mr_rule_new(); its @enabled as it is), at positions 1 to n in their
 * order; an empty array deletes them all.  One transaction: the counter
 * bumped first, every owner checked as mr_crm_rule_add() does, the old
 * rules deleted, the new ones inserted.  Refuses, writing nothing: two
 * rules of one name (MR_CRM_ERROR_EXISTS, "rule NAME: an earlier rule has
 * that name"), an owner that is no user or a team (MR_CRM_ERROR_NOT_FOUND,
 * "rule NAME: 'owner = x@y': no user x@y"); for these, @refused_out
 * (optional) is set to the index in @rules of the rule refused.  Returns
 * FALSE with @error. */
gboolean mr_crm_rules_replace(MrStore *store, const GPtrArray *rules, guint *refused_out,
			      GError **error);

G_END_DECLS
