#!/usr/bin/env python3
# mailroomctl calendar set/list/show/delete and team calendar (issue 24,
# business hours): init makes the calendar "default" in the configuration's
# timezone and keeps an edited one; what calendar set is not told stays;
# working hours written back in one canonical form; holidays added, in
# date order, cleared; every refusal with its exit code and one line,
# nothing half-done; a team counts in "default" until it is given its own,
# which then cannot go; every change bumps the change counter the running
# daemons watch.  On either engine (MR_TEST_DB).
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env

t = Tap()
e = Env(extra='timezone = "Europe/Berlin";\n')

rc, out, err = e.ctl("init")
t.eq(rc, 0, "init exits 0", err)
rc, out, err = e.ctl("user", "add", "a@acme.test")
t.eq(rc, 0, "user add", err)


def version():
    return e.query("SELECT version FROM rule_version")[0][0]


def state():
    return (e.json("calendar", "list"), e.json("team", "list"), version())


def refused(args, code, words, what):
    """@args are refused with exit @code and one line on stderr holding
    @words; calendars, teams and the counter stay as they were."""
    before = state()
    rc, out, err = e.ctl(*args)
    t.ok(rc == code and err.count("\n") == 1 and err.startswith("mailroomctl: ") and
         all(w in err for w in words) and out == "",
         "%s: exit %d, one line (%s)" % (what, code, ", ".join(words)), (rc, out, err))
    t.eq(state(), before, "%s: nothing changed" % what)


# --- init: the calendar default ----------------------------------------------------------
cals = e.json("calendar", "list")
t.eq([(c["name"], c["zone"], c["hours"], c["holidays"], c["teams"]) for c in cals],
     [("default", "Europe/Berlin", "mon-fri 09:00-17:00", [], [])],
     "init made the calendar default: mon-fri 09:00-17:00 in the configuration's timezone")
t.ok(all({"name", "zone", "hours", "holidays", "teams", "created", "updated"} <= set(c)
         for c in cals), "calendar list --json: {name zone hours holidays teams created updated}",
     cals)

# --- calendar set -----------------------------------------------------------------------------
v0 = version()
j = e.json("calendar", "set", "emea", "--tz", "Europe/London",
           "--hours", "fri 08:00-12:00,  mon-thu 13:00-17:00 08:00-12:00",
           "--holiday", "2026-12-25", "--holiday", "2026-12-24")
t.eq((j["name"], j["zone"], j["hours"], j["holidays"]),
     ("emea", "Europe/London", "mon-thu 08:00-12:00 13:00-17:00, fri 08:00-12:00",
      ["2026-12-24", "2026-12-25"]),
     "calendar set --json: a new calendar, its hours in canonical form, holidays in order", j)
t.eq(version(), v0 + 1, "calendar set bumped the change counter")
t.eq(e.json("calendar", "show", "emea"), j, "calendar show --json: the same object")

j = e.json("calendar", "set", "emea", "--holiday", "2026-12-31", "--holiday", "2026-12-24")
t.eq((j["zone"], j["hours"], j["holidays"]),
     ("Europe/London", "mon-thu 08:00-12:00 13:00-17:00, fri 08:00-12:00",
      ["2026-12-24", "2026-12-25", "2026-12-31"]),
     "--holiday alone adds (a date given twice is one); zone and hours stay")
j = e.json("calendar", "set", "emea", "--clear-holidays", "--holiday", "2027-01-01")
t.eq(j["holidays"], ["2027-01-01"], "--clear-holidays: only the dates given now")
j = e.json("calendar", "set", "emea", "--clear-holidays")
t.eq(j["holidays"], [], "--clear-holidays alone: none")
j = e.json("calendar", "set", "apac", "--hours", "mon-fri 09:00-18:00")
t.eq(j["zone"], "Europe/Berlin", "a new calendar without --tz: the configuration's timezone")

rc, out, err = e.ctl("calendar", "list")
lines = out.splitlines()
t.ok(rc == 0 and lines[0].split() == ["NAME", "ZONE", "HOURS", "HOLIDAYS", "TEAMS"]
     and len(lines) == 4, "calendar list: a table, a row per calendar", out)
rc, out, err = e.ctl("calendar", "show", "emea")
t.ok(rc == 0 and "Europe/London" in out and "mon-thu 08:00-12:00 13:00-17:00" in out,
     "calendar show: field lines", out)

# --- refusals ----------------------------------------------------------------------------------
refused(["calendar", "set", "emea", "--tz", "Mars/Olympus_Mons"], 64,
        ["calendar emea", "Mars/Olympus_Mons"], "a zone the machine does not know")
refused(["calendar", "set", "emea", "--hours", "mon-fry 09:00-17:00"], 64,
        ["calendar emea", "mon-fry"], "a day that is none")
refused(["calendar", "set", "emea", "--hours", "mon-fri 17:00-09:00"], 64,
        ["calendar emea"], "a range that ends before it starts")
refused(["calendar", "set", "emea", "--hours", "mon-fri 09:00-13:00 12:00-17:00"], 64,
        ["calendar emea"], "ranges of one day that overlap")
refused(["calendar", "set", "emea", "--holiday", "2026-02-30"], 64,
        ["calendar emea", "2026-02-30"], "a date that is none")
refused(["calendar", "set", "emea", "--holiday", "24.12.2026"], 64,
        ["calendar emea", "24.12.2026"], "a date not written YYYY-MM-DD")
refused(["calendar", "set", "new"], 64, ["calendar new", "--hours"],
        "a new calendar without working hours")
refused(["calendar", "set", "two words", "--hours", "mon 09:00-10:00"], 64, ["calendar"],
        "a name with a space")
refused(["calendar", "show", "nosuch"], 1, ["no calendar nosuch"], "calendar show of none")
refused(["calendar", "delete", "default"], 1, ["default"], "calendar delete default")
refused(["calendar", "delete", "nosuch"], 1, ["no calendar nosuch"], "calendar delete of none")

# --- teams ---------------------------------------------------------------------------------------
rc, out, err = e.ctl("team", "add", "support", "a@acme.test")
t.eq(rc, 0, "team add support", err)
t.eq(e.json("team", "show", "support")["calendar"], "default",
     "a new team counts in the calendar default")
t.eq(e.json("calendar", "show", "default")["teams"], ["support"], "default lists it")
v0 = version()
j = e.json("team", "calendar", "support", "emea")
t.eq(j["calendar"], "emea", "team calendar --json: the team, in its calendar now")
t.eq(version(), v0 + 1, "team calendar bumped the change counter")
t.eq((e.json("calendar", "show", "emea")["teams"], e.json("calendar", "show", "default")["teams"]),
     (["support"], []), "calendar show: the teams that count in it")
refused(["calendar", "delete", "emea"], 1, ["emea", "support"],
        "calendar delete of a team's calendar")
refused(["team", "calendar", "nosuch", "emea"], 1, ["no team nosuch"], "team calendar of no team")
refused(["team", "calendar", "support", "nosuch"], 1, ["no calendar nosuch"],
        "team calendar to no calendar")
j = e.json("team", "calendar", "support", "default")
t.eq(j["calendar"], "default", "team calendar TEAM default: back to default")
t.eq(e.query("SELECT calendar_id FROM team WHERE name = 'support'"), [(None,)],
     "which is no calendar of its own (it follows default)")
v0 = version()
j = e.json("calendar", "delete", "emea")
t.eq(j, {"name": "emea", "deleted": True}, "calendar delete --json")
t.eq(version(), v0 + 1, "calendar delete bumped the change counter")
t.eq(e.query("SELECT count(*) FROM calendar_holiday h LEFT JOIN calendar c"
             " ON c.id = h.calendar_id WHERE c.id IS NULL"), [(0,)],
     "its holidays went with it")
t.eq([c["name"] for c in e.json("calendar", "list")], ["apac", "default"], "the others stay")

# --- init keeps an edited default -----------------------------------------------------------------
e.json("calendar", "set", "default", "--hours", "mon-fri 08:00-16:00", "--holiday", "2026-12-24")
rc, out, err = e.ctl("init")
t.eq(rc, 0, "init again", err)
j = e.json("calendar", "show", "default")
t.eq((j["hours"], j["holidays"]), ("mon-fri 08:00-16:00", ["2026-12-24"]),
     "init leaves an edited calendar default as it is")

rc, out, err = e.ctl("calendar", "--help")
t.ok(rc == 0 and "calendar set NAME" in out and "team calendar" not in out,
     "calendar --help: the calendar commands", out)
