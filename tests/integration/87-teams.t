#!/usr/bin/env python3
# mailroomctl team add/list/show/remove, team member add/remove and user
# away (issue 22): JSON shapes, tables, every refusal with its exit code
# and one line, nothing half-done, a rule's team owner accepted once the
# team exists and the team kept while a rule names it, the rules' change
# counter; then the round-robin turn's unit tests against this engine
# (restarts, two connections at once).  On either engine (MR_TEST_DB).
import os
import subprocess
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env, BUILD

t = Tap()
e = Env()

rc, out, err = e.ctl("init")
t.eq(rc, 0, "init exits 0")
for u in ("a@acme.test", "b@acme.test", "c@acme.test", "lead@acme.test"):
    rc, out, err = e.ctl("user", "add", u)
    t.eq(rc, 0, "user add %s" % u, err)


def version():
    """The rules' change counter, from what init left (its built-in
    workflows bumped it)."""
    return e.query("SELECT version FROM rule_version")[0][0] - INIT_VERSION


INIT_VERSION = e.query("SELECT version FROM rule_version")[0][0]


def state():
    return (e.json("team", "list"), version(),
            e.query("SELECT team_id, user_id, position FROM team_member"
                    " ORDER BY team_id, position"))


def refused(args, code, words, what):
    """@args are refused with exit @code and one line on stderr holding
    @words; the teams and the counter stay as they were."""
    before = state()
    rc, out, err = e.ctl(*args)
    t.ok(rc == code and err.count("\n") == 1 and err.startswith("mailroomctl: ") and
         all(w in err for w in words) and out == "",
         "%s: exit %d, one line (%s)" % (what, code, ", ".join(words)), (rc, out, err))
    t.eq(state(), before, "%s: nothing changed" % what)


# --- team add, list, show ----------------------------------------------------------
j = e.json("team", "add", "2nd-level", "a@acme.test", "B@Acme.test", "c@acme.test",
           "--lead", "lead@acme.test")
t.eq((j["name"], j["members"], j["lead"]),
     ("2nd-level", ["a@acme.test", "b@acme.test", "c@acme.test"], "lead@acme.test"),
     "team add --json: the team, members in the order given, lower case")
t.eq((j["away"], j["next"]), ([], "a@acme.test"), "nobody away; the first member is next")
t.eq(version(), 1, "team add bumped the rules' change counter")
rc, out, err = e.ctl("team", "add", "solo", "b@acme.test")
t.ok(rc == 0 and "solo" in out and "b@acme.test" in out, "team add: the team for people", out)

teams = e.json("team", "list")
t.eq([x["name"] for x in teams], ["2nd-level", "solo"], "team list --json: by name")
t.ok(all({"name", "members", "lead"} <= set(x) for x in teams),
     "each has name members lead", teams)
t.eq(teams[1]["lead"], None, "no lead: null")
t.eq(e.json("team", "show", "2nd-level"), teams[0], "team show --json: the same object")
rc, out, err = e.ctl("team", "list")
lines = out.splitlines()
t.ok(rc == 0 and lines[0].split() == ["NAME", "MEMBERS", "LEAD", "NEXT"] and len(lines) == 3,
     "team list: a table, a row per team", out)
rc, out, err = e.ctl("team", "show", "2nd-level")
t.ok(rc == 0 and "a@acme.test b@acme.test c@acme.test" in out and "lead@acme.test" in out,
     "team show: field lines, the members in order", out)
t.eq(e.query("SELECT m.position, u.email FROM team_member m JOIN team t ON t.id = m.team_id"
             " JOIN app_user u ON u.id = m.user_id WHERE t.name = '2nd-level'"
             " ORDER BY m.position"),
     [(1, "a@acme.test"), (2, "b@acme.test"), (3, "c@acme.test")],
     "stored: positions 1 to n in the order given")
t.eq(e.query("SELECT turn FROM team WHERE name = '2nd-level'"), [(0,)], "turn 0: none yet")

# --- refusals ------------------------------------------------------------------------
refused(["team", "add", "x", "a@acme.test", "nobody@acme.test"], 64,
        ["no user nobody@acme.test"], "a member who is no user")
refused(["team", "add", "x", "a@acme.test", "--lead", "nobody@acme.test"], 64,
        ["no user nobody@acme.test"], "a lead who is no user")
refused(["team", "add", "x", "a@acme.test", "b@acme.test", "A@acme.test"], 64,
        ["a@acme.test", "twice"], "a member named twice")
refused(["team", "add", "bad/name", "a@acme.test"], 64, ["bad/name"], "a bad name")
before = state()
rc, out, err = e.ctl("team", "add", "x")
t.ok(rc == 64 and "team add NAME USER" in err, "no member: exit 64 and the usage", err)
t.eq(state(), before, "no member: nothing changed")
refused(["team", "add", "solo", "a@acme.test"], 1, ["team solo exists already"],
        "a name taken")
refused(["team", "show", "nosuch"], 1, ["no team nosuch"], "team show of an unknown team")
refused(["team", "remove", "nosuch"], 1, ["no team nosuch"], "team remove of an unknown team")

# --- members -------------------------------------------------------------------------
v = version()
j = e.json("team", "member", "add", "solo", "c@acme.test")
t.eq(j["members"], ["b@acme.test", "c@acme.test"], "team member add: last")
j = e.json("team", "member", "add", "solo", "a@acme.test")
t.eq(j["members"], ["b@acme.test", "c@acme.test", "a@acme.test"], "and another")
j = e.json("team", "member", "remove", "solo", "c@acme.test")
t.eq(j["members"], ["b@acme.test", "a@acme.test"], "team member remove")
t.eq(e.query("SELECT m.position FROM team_member m JOIN team t ON t.id = m.team_id"
             " WHERE t.name = 'solo' ORDER BY m.position"), [(1,), (3,)],
     "the others keep their positions")
t.eq(version(), v + 3, "each bumped the counter")
refused(["team", "member", "add", "solo", "a@acme.test"], 1,
        ["a@acme.test is a member of team solo already"], "a member already")
refused(["team", "member", "add", "solo", "nobody@acme.test"], 64,
        ["no user nobody@acme.test"], "member add: no such user")
refused(["team", "member", "add", "nosuch", "a@acme.test"], 1, ["no team nosuch"],
        "member add: no such team")
refused(["team", "member", "remove", "solo", "c@acme.test"], 1,
        ["c@acme.test is no member of team solo"], "member remove: not a member")
refused(["team", "member", "remove", "nosuch", "a@acme.test"], 1, ["no team nosuch"],
        "member remove: no such team")
refused(["team", "member", "frob", "solo", "a@acme.test"], 64, ["add or remove"],
        "team member with another verb")
rc, out, err = e.ctl("team", "member", "remove", "solo", "b@acme.test")
t.eq(rc, 0, "down to one member", err)
refused(["team", "member", "remove", "solo", "a@acme.test"], 1,
        ["last member of team solo"], "the last member")

# --- away ----------------------------------------------------------------------------
v = version()
j = e.json("user", "away", "B@acme.test", "on")
t.eq(j, {"email": "b@acme.test", "away": True}, "user away on --json")
users = {u["email"]: u["away"] for u in e.json("user", "list")}
t.eq((users["a@acme.test"], users["b@acme.test"]), (False, True),
     "user list --json: away true/false")
rc, out, err = e.ctl("user", "list")
t.ok(rc == 0 and "AWAY" in out.splitlines()[0], "user list: an AWAY column", out)
j = e.json("team", "show", "2nd-level")
t.eq((j["away"], j["next"]), (["b@acme.test"], "a@acme.test"), "team show: who is away")
rc, out, err = e.ctl("team", "show", "2nd-level")
t.ok("b@acme.test (away)" in out, "for people: marked (away)", out)
for u in ("a@acme.test", "c@acme.test"):
    e.ctl("user", "away", u, "on")
t.eq(e.json("team", "show", "2nd-level")["next"], None, "every member away: next is null")
rc, out, err = e.ctl("user", "away", "a@acme.test", "off")
t.ok(rc == 0 and "a@acme.test back" in out, "user away off", out)
e.ctl("user", "away", "b@acme.test", "off")
e.ctl("user", "away", "c@acme.test", "off")
t.eq(version(), v + 6, "each bumped the counter")
refused(["user", "away", "nobody@acme.test", "on"], 1, ["no user nobody@acme.test"],
        "user away: no such user")
refused(["user", "away", "a@acme.test", "maybe"], 64, ["on or off"], "user away maybe")
t.eq(e.query("SELECT away FROM app_user ORDER BY id"), [(0,), (0,), (0,), (0,)],
     "stored as 0/1")

# --- rules name teams ------------------------------------------------------------------
URGENT = ["rule", "add", "urgent", "--if", "role = support",
          "--if", 'subject ~ "urgent|dringend"', "--then", "priority = high",
          "--then", "type = incident"]
rc, out, err = e.ctl(*(URGENT + ["--then", "owner = team:3rd-level"]))
t.ok(rc == 64 and "'owner = team:3rd-level': no team 3rd-level" in err,
     "rule add: an unknown team is still refused (64)", (rc, err))
j = e.json(*(URGENT + ["--then", "owner = team:2nd-level"]))
t.eq(j["actions"], ["priority = high", "type = incident", "owner = team:2nd-level"],
     "rule add: owner = team:2nd-level accepted once the team exists")
j = e.json("rule", "add", "routed", "--if", "role = support", "--then", "owner = team:solo")
t.eq(j["actions"], ["owner = team:solo"], "the issue's form: role = support, a team owner")
refused(["team", "remove", "2nd-level"], 1,
        ["team 2nd-level is the owner of rule urgent; change or delete the rule first"],
        "team remove while a rule names it")
rc, out, err = e.ctl("rule", "delete", "urgent")
j = e.json("team", "remove", "2nd-level")
t.eq(j, {"name": "2nd-level", "removed": True}, "team remove --json once no rule names it")
t.eq(e.query("SELECT count(*) FROM team_member m JOIN team t ON t.id = m.team_id"
             " WHERE t.name = '2nd-level'"), [(0,)], "its members went with it")
rc, out, err = e.ctl("rule", "delete", "routed")
rc, out, err = e.ctl("team", "remove", "solo")
t.ok(rc == 0 and "team solo removed" in out, "team remove for people", (rc, out, err))
t.eq(e.json("team", "list"), [], "no team left")

# --- help ------------------------------------------------------------------------------
rc, out, err = e.ctl("--help")
t.ok("team add NAME USER... [--lead USER]" in out and "team member add|remove NAME USER" in out
     and "user away EMAIL on|off" in out, "--help lists the verbs", out)
rc, out, err = e.ctl("team", "--help")
t.ok(rc == 0 and "team list" in out and "rule list" not in out, "team --help", out)

# --- the turn on this engine -------------------------------------------------------------
# No verb takes a turn (routing does, in the transaction of the record it
# assigns): the unit tests of the turn run against a database of this
# engine -- order and away, restarts, two connections at once.
turn = Env()
p = subprocess.run([os.path.join(BUILD, "unit", "test-crm"),
                    "-p", "/mailroom/crm/team-turn",
                    "-p", "/mailroom/crm/team-turn-persists",
                    "-p", "/mailroom/crm/team-turn-concurrent"],
                   env=dict(os.environ, MR_TEST_CRM_DATABASE=turn.db, MAILROOM_MODULE_DIR=BUILD),
                   capture_output=True, timeout=120)
outs = p.stdout.decode("utf-8", "replace")
t.ok(p.returncode == 0 and outs.count("\nok ") == 3,
     "the turn's unit tests pass on this engine", outs + p.stderr.decode("utf-8", "replace"))
t.eq(turn.query("SELECT name, turn FROM team ORDER BY name"), [("c", 3), ("p", 1), ("t", 1)],
     "they ran here: the turns are in this database")
