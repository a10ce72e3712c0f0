#!/usr/bin/env python3
# mailroomctl rule add/list/show/enable/disable/delete/move (issue 22, the
# rules in the database): the issue's four examples, JSON, positions kept
# 1 to n, every refusal with its exit code and one line, nothing
# half-added, and the change counter.  On either engine (MR_TEST_DB).
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env

t = Tap()
e = Env()

rc, out, err = e.ctl("init")
t.eq(rc, 0, "init exits 0")
t.eq(e.json("init")["schema_version"], 11, "schema version 11")
rc, out, err = e.ctl("user", "add", "alice@acme.test")
t.eq(rc, 0, "user add alice")


def names():
    rules = e.json("rule", "list")
    t.ok([r["position"] for r in rules] == list(range(1, len(rules) + 1)),
         "positions run 1 to %d" % len(rules), rules)
    return [r["name"] for r in rules]


def version():
    """The rules' change counter, from what init left (its built-in
    workflows bumped it)."""
    return e.query("SELECT version FROM rule_version")[0][0] - INIT_VERSION


INIT_VERSION = e.query("SELECT version FROM rule_version")[0][0]


def refused(args, code, words, what):
    """@args are refused with exit @code and one line on stderr holding
    @words; the rules and the counter stay as they were."""
    before, v = e.json("rule", "list"), version()
    rc, out, err = e.ctl(*args)
    t.ok(rc == code and err.count("\n") == 1 and err.startswith("mailroomctl: ") and
         all(w in err for w in words) and out == "",
         "%s: exit %d, one line (%s)" % (what, code, ", ".join(words)), (rc, out, err))
    t.eq((e.json("rule", "list"), version()), (before, v), "%s: nothing changed" % what)


# --- the issue's four examples -----------------------------------------------
URGENT = ["rule", "add", "urgent", "--if", "role = support",
          "--if", 'subject ~ "urgent|dringend"',
          "--then", "priority = high", "--then", "type = incident"]
refused(URGENT + ["--then", "owner = team:2nd-level"], 64,
        ["'owner = team:2nd-level'", "no team 2nd-level"], "an unknown team owner")
t.eq(names(), [], "and no rule was added")

rc, out, err = e.ctl(*URGENT)
t.eq(rc, 0, "urgent without its team owner is added", err)
rc, out, err = e.ctl("rule", "add", "invoices", "--if", "from_domain = billing.acme-erp.test",
                     "--then", "log", "--stop")
t.eq(rc, 0, "invoices is added", err)
rc, out, err = e.ctl("rule", "add", "bigcustomer", "--if", "address ends @bigcustomer.test",
                     "--then", "owner = alice@acme.test")
t.eq(rc, 0, "bigcustomer is added", err)
j = e.json("rule", "add", "weekend", "--any", "--if", "weekday in sat,sun",
           "--if", "hour < 7", "--then", "tag = after-hours")
t.eq((j["name"], j["position"], j["any"]), ("weekend", 4, True), "weekend is added last, --json")
t.eq(version(), 4, "every add bumped the change counter")

rules = e.json("rule", "list")
t.eq(rules[0], dict(rules[0], name="urgent", position=1, enabled=True,
                    conditions=["role = support", "subject ~ urgent|dringend"],
                    actions=["priority = high", "type = incident"], any=False, stop=False),
     "rule list --json: urgent with its canonical texts as arrays")
t.eq([(r["name"], r["stop"], r["actions"]) for r in rules],
     [("urgent", False, ["priority = high", "type = incident"]),
      ("invoices", True, ["log"]),
      ("bigcustomer", False, ["owner = alice@acme.test"]),
      ("weekend", False, ["tag = after-hours"])],
     "in position order; --stop is stop, not an action")
t.ok(all({"name", "position", "enabled", "conditions", "actions", "stop"} <= set(r)
         for r in rules), "each has name position enabled conditions actions stop")
t.eq(e.json("rule", "show", "weekend"), rules[3], "rule show --json: the same object")
t.eq(e.json("rule", "show", "weekend")["conditions"], ["weekday in sat,sun", "hour < 7"],
     "canonical conditions")

rc, out, err = e.ctl("rule", "list")
lines = out.splitlines()
t.ok(rc == 0 and lines[0].split() == ["POSITION", "NAME", "ENABLED", "CONDITIONS", "ACTIONS",
                                      "STOP"] and len(lines) == 5,
     "rule list: a table, a row per rule", out)
t.ok("weekday in sat,sun or hour < 7" in out and
     'role = support and subject ~ urgent|dringend' in out,
     "the table joins conditions by and / or", out)
rc, out, err = e.ctl("rule", "show", "invoices")
t.ok(rc == 0 and "from_domain = billing.acme-erp.test" in out and "stop" in out,
     "rule show: field lines", out)

# --- a canonical text, whatever was typed ---------------------------------------
j = e.json("rule", "add", "casey", "--if", "not not subject  contains   \"x\"",
           "--then", "owner = Alice@ACME.test", "--then", "stop", "--position", "2")
t.eq((j["conditions"], j["actions"], j["stop"], j["position"]),
     (["subject contains x"], ["owner = alice@acme.test"], True, 2),
     "stored as canonical text; a stop action is stop; --position 2")
t.eq(names(), ["urgent", "casey", "invoices", "bigcustomer", "weekend"],
     "--position inserts there, the rest move down")

# --- refusals -----------------------------------------------------------------
refused(["rule", "add", "bad", "--if", "subjct ~ x", "--then", "log"], 64,
        ["'subjct ~ x'", "unknown field subjct"], "an unknown field")
refused(["rule", "add", "bad", "--if", "subject ~ (", "--then", "log"], 64,
        ["'subject ~ ('"], "a regex that does not compile")
refused(["rule", "add", "bad", "--if", "hour > 30", "--then", "log"], 64,
        ["'hour > 30'"], "a value out of range")
refused(["rule", "add", "bad", "--if", "hour > 3", "--then", "priority = huge"], 64,
        ["'priority = huge'"], "a bad action value")
refused(["rule", "add", "bad", "--if", "hour > 3", "--then", "log", "--then", "lead"], 64,
        [], "two actions that exclude each other")
refused(["rule", "add", "bad", "--then", "log"], 64, [], "no --if")
refused(["rule", "add", "bad", "--if", "hour > 3"], 64, [], "no --then")
refused(["rule", "add", "-bad", "--if", "hour > 3", "--then", "log"], 64, [],
        "a bad name")
refused(["rule", "add", "bad", "--if", "hour > 3", "--then", "owner = bob@acme.test"], 64,
        ["'owner = bob@acme.test'", "no user bob@acme.test"], "an owner who is no user")
refused(["rule", "add", "bad", "--if", "hour > 3", "--then", "log", "--then",
         "owner = team:sales"], 64, ["no team sales"], "an unknown team owner")
refused(["rule", "add", "weekend", "--if", "hour > 3", "--then", "log"], 1,
        ["weekend", "exists"], "a name taken")
refused(["rule", "add", "bad", "--if", "hour > 3", "--then", "log", "--position", "0"], 64,
        ["--position"], "--position 0")
refused(["rule", "add", "bad", "--if", "hour > 3", "--then", "log", "--position", "x"], 64,
        ["--position"], "--position x")
refused(["rule", "move", "weekend", "0"], 64, ["position"], "move to 0")
refused(["rule", "move", "weekend", "first"], 64, ["position"], "move to a word")
for verb in (["show"], ["enable"], ["disable"], ["delete"], ["move", None]):
    args = ["rule", verb[0], "nosuch"] + (["1"] if len(verb) > 1 else [])
    refused(args, 1, ["no rule nosuch"], "rule %s of an unknown rule" % verb[0])
rc, out, err = e.ctl("rule", "move", "weekend")
t.ok(rc == 64 and "rule move NAME N" in err, "move without N: exit 64 and the usage", err)

# --- enable, disable -------------------------------------------------------------
v = version()
j = e.json("rule", "disable", "invoices")
t.eq(j["enabled"], False, "rule disable: enabled false")
t.eq(e.json("rule", "show", "invoices")["enabled"], False, "and it stays so")
rc, out, err = e.ctl("rule", "enable", "invoices")
t.ok(rc == 0 and e.json("rule", "show", "invoices")["enabled"] is True, "rule enable", err)
t.eq(version(), v + 2, "each bumped the counter")

# --- move ---------------------------------------------------------------------------
j = e.json("rule", "move", "weekend", "1")
t.eq(j["position"], 1, "rule move weekend 1: first")
t.eq(names(), ["weekend", "urgent", "casey", "invoices", "bigcustomer"], "the rest move down")
e.json("rule", "move", "weekend", "3")
t.eq(names(), ["urgent", "casey", "weekend", "invoices", "bigcustomer"], "moved down to 3")
j = e.json("rule", "move", "urgent", "99")
t.eq(j["position"], 5, "past the end: last")
t.eq(names(), ["casey", "weekend", "invoices", "bigcustomer", "urgent"], "order after moves")

# --- delete ---------------------------------------------------------------------------
v = version()
rc, out, err = e.ctl("rule", "delete", "weekend")
t.ok(rc == 0 and "weekend" in out, "rule delete", (rc, out, err))
t.eq(names(), ["casey", "invoices", "bigcustomer", "urgent"], "those after it move up")
j = e.json("rule", "delete", "urgent")
t.eq(j, {"name": "urgent", "deleted": True}, "rule delete --json")
t.eq(names(), ["casey", "invoices", "bigcustomer"], "the last deleted")
t.eq(version(), v + 2, "each bumped the counter")

# --- the database: constraints hold what the CLI promises ---------------------------------
rows = e.query("SELECT name, position, enabled, match_any, stop, conditions, actions"
               " FROM rule ORDER BY position")
t.eq(rows[0], ("casey", 1, 1, 0, 1, "subject contains x", "owner = alice@acme.test"),
     "stored: canonical texts, one per line, booleans 0/1")
rc, out, err = e.ctl("rule", "add", "two", "--if", "hour > 3", "--if", "from exists",
                     "--then", "tag = a", "--then", "ticket")
t.eq(e.query("SELECT conditions, actions FROM rule WHERE name = 'two'"),
     [("hour > 3\nfrom exists", "tag = a\nticket")], "several conditions: one per line")
rc, out, err = e.ctl("--help")
t.ok("rule add NAME --if COND" in out and "rule move NAME N" in out, "--help lists the verbs")
rc, out, err = e.ctl("rule", "--help")
t.ok(rc == 0 and "rule list" in out and "ticket show" not in out, "rule --help")
