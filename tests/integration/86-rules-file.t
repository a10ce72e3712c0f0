#!/usr/bin/env python3
# mailroomctl rule export and rule import FILE (issue 22, the rules as a
# libconfig file): a round trip gives the same rules, values that need
# quotes and escapes included; an import is all or nothing, every refusal
# one line naming FILE:LINE and the rule with its exit code; an empty
# list deletes every rule.  On either engine (MR_TEST_DB).
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env

t = Tap()
e = Env()

rc, out, err = e.ctl("init")
t.eq(rc, 0, "init exits 0")
rc, out, err = e.ctl("user", "add", "alice@acme.test")
t.eq(rc, 0, "user add alice")


def version():
    return e.query("SELECT version FROM rule_version")[0][0]


def rules():
    """rule list --json without the times, which an import sets anew."""
    return [{k: v for k, v in r.items() if k not in ("created", "updated")}
            for r in e.json("rule", "list")]


def path(name, text):
    p = os.path.join(e.dir, name)
    with open(p, "w", encoding="utf-8") as f:
        f.write(text)
    return p


def line_of(text, marker):
    """The line (from 1) of @text that holds @marker."""
    return next(i + 1 for i, l in enumerate(text.splitlines()) if marker in l)


# --- the rules of docs/rules.md, and some that need quotes --------------------------------
ADD = [
    ["urgent", "--if", "role = support", "--if", 'subject ~ "urgent|dringend"',
     "--then", "priority = high", "--then", "type = incident"],
    ["invoices", "--if", "from_domain = billing.acme-erp.test", "--then", "log", "--stop"],
    ["bigcustomer", "--if", "address ends @bigcustomer.test", "--then", "owner = alice@acme.test"],
    ["weekend", "--any", "--if", "weekday in sat,sun", "--if", "hour < 7",
     "--then", "tag = after-hours"],
    ["quoted", "--if", 'subject contains "say \\"hi\\" \\\\ now"',
     "--if", 'header:X-Note = "Straße, tab\\there"', "--if", 'body ~ "\\d+ (€|EUR)$"',
     "--then", "lead", "--then", "source = web"],
    ["stoponly", "--if", "auto = yes", "--then", "stop"],
    ["off", "--if", "cc exists", "--then", "ignore"],
]
for args in ADD:
    rc, out, err = e.ctl("rule", "add", *args)
    t.eq(rc, 0, "rule add %s" % args[0], err)
rc, out, err = e.ctl("rule", "disable", "off")
t.eq(rc, 0, "rule disable off", err)
t.eq(e.json("rule", "show", "quoted")["conditions"][0], 'subject contains "say \\"hi\\" \\\\ now"',
     "a condition whose canonical text has quotes and backslashes")
t.eq(e.json("rule", "show", "stoponly")["actions"], [], "stop alone: no action, stop")

# --- export -------------------------------------------------------------------------------
rc, exported, err = e.ctl("rule", "export")
t.ok(rc == 0 and err == "", "rule export exits 0", (rc, err))
t.ok(exported.startswith("# mailroom rules, exported ") and "(schema 11)" in
     exported.splitlines()[0], "a comment line: when, and the schema", exported)
t.ok("rules = (" in exported and exported.count("name = ") == len(ADD),
     "rules = ( ... ) with every rule", exported)
t.ok('conditions = [ "subject contains \\"say \\\\\\"hi\\\\\\" \\\\\\\\ now\\"",' in exported,
     "libconfig's escapes of the quotes and backslashes", exported)
t.eq(e.json("rule", "export"), e.json("rule", "list"), "rule export --json: what rule list prints")

# --- round trip: delete all, import, the same rules -----------------------------------------
before, v = rules(), version()
for r in before:
    e.ctl("rule", "delete", r["name"])
t.eq(rules(), [], "every rule deleted")
f = path("rules.conf", exported)
rc, out, err = e.ctl("rule", "import", f)
t.ok(rc == 0 and out == "%d rules imported from %s\n" % (len(ADD), f) and err == "",
     "rule import exits 0 and says how many", (rc, out, err))
t.eq(rules(), before, "the same rules, in the same order (rule list --json)")
exported_rules = before
t.eq(version(), v + len(before) + 1, "one bump for the import")
rc, again, err = e.ctl("rule", "export")
t.eq(again.splitlines()[1:], exported.splitlines()[1:], "exported again: the same text")
j = e.json("rule", "import", f)
t.eq(j, {"imported": len(ADD)}, "rule import --json: {imported: N}")
t.eq(rules(), before, "importing the same file again changes no rule")

# --- refusals: one line naming FILE:LINE and the rule, nothing changed ----------------------------
GOOD = '''# two good rules, then the one under test
rules = (
  { name = "first"; conditions = [ "hour > 3" ]; actions = [ "log" ]; },
  { name = "second"; enabled = false; any = true;
    conditions = [ "role = sales", "subject contains offer" ];
    actions = [ "lead" ]; },
%s
);
'''


def refused(text, code, marker, words, what, name="bad.conf"):
    """Importing @text is refused with exit @code and one line on stderr
    that starts with FILE:LINE (the line holding @marker; None: no line)
    and holds @words; the rules and the counter stay as they were."""
    f = path(name, text)
    before, v = rules(), version()
    rc, out, err = e.ctl("rule", "import", f)
    where = "mailroomctl: %s:%d: " % (f, line_of(text, marker)) if marker else "mailroomctl: "
    t.ok(rc == code and err.count("\n") == 1 and err.startswith(where) and
         all(w in err for w in words) and out == "",
         "%s: exit %d, one line (%s%s)" % (what, code, "FILE:LINE, " if marker else "",
                                           ", ".join(words)), (rc, out, err))
    t.eq((rules(), version()), (before, v), "%s: nothing changed" % what)


def bad(rule):
    return GOOD % rule


refused(bad('''  { name = "bad";
    conditions = [ "hour > 3",
                   "subject ~ (" ];
    actions = [ "log" ]; }'''), 64, 'subject ~ (',
        ["rule bad: ", "'subject ~ ('", "does not compile"], "a regex that does not compile")
refused(bad('''  { name = "bad"; conditions = [ "subjct = x" ]; actions = [ "log" ]; }'''), 64,
        '"bad"', ["rule bad: ", "'subjct = x'", "unknown field subjct"], "an unknown field")
refused(bad('''  { name = "bad"; conditions = [ "hour > 30" ]; actions = [ "log" ]; }'''), 64,
        '"bad"', ["rule bad: ", "'hour > 30'"], "a value out of range")
refused(bad('''  { name = "bad"; conditions = [ "hour > 3" ];
    actions = [ "log", "lead" ]; }'''), 64, '"log", "lead"', ["rule bad: ", "'lead'"],
        "two actions that exclude each other")
refused(bad('''  { name = "bad"; conditions = [ "hour > 3" ];
    actions = [ "log",
                "owner = bob@acme.test" ]; }'''), 64, "bob@",
        ["rule bad: ", "'owner = bob@acme.test': no user bob@acme.test"], "an owner who is no user")
refused(bad('''  { name = "bad"; conditions = [ "hour > 3" ];
    actions = [ "owner = team:2nd-level" ]; }'''), 64, "team:",
        ["rule bad: ", "'owner = team:2nd-level': no team 2nd-level"], "a team owner")
refused(bad('''  { name = "first"; conditions = [ "hour > 4" ]; actions = [ "ticket" ]; }'''), 64,
        '"first"; conditions = [ "hour > 4"', ["rule first: ", "an earlier rule has that name"],
        "a name twice")
refused(bad('''  { name = "bad";
    condtions = [ "hour > 3" ]; actions = [ "log" ]; }'''), 64, "condtions",
        ["rule bad: ", "unknown key condtions"], "an unknown key")
refused(bad('''  { name = "bad"; enabled = "yes"; conditions = [ "hour > 3" ];
    actions = [ "log" ]; }'''), 64, '"yes"', ["rule bad: ", "enabled: must be true or false"],
        "a flag that is no boolean")
refused(bad('''  { name = "-bad"; conditions = [ "hour > 3" ]; actions = [ "log" ]; }'''), 64,
        '"-bad"', ["rule #3: ", "'-bad'"], "a bad name")
refused(bad('''  { conditions = [ "hour > 3" ]; actions = [ "log" ]; }'''), 64,
        "{ conditions", ["rule #3: ", "name: missing"], "no name")
refused(bad('''  { name = "bad"; conditions = [ ]; actions = [ "log" ]; }'''), 64,
        '"bad"', ["rule bad: ", "at least one condition"], "no condition")
refused(bad('''  { name = "bad"; conditions = [ "hour > 3" ]; actions = [ ]; }'''), 64,
        '"bad"', ["rule bad: ", "at least one action"], "no action and no stop")
refused(bad('''  { name = "bad"; conditions = [ "hour > 3" ];
    actions = [ "log" ]; ]'''), 64, 'actions = [ "log" ]; ]', ["syntax error"],
        "not libconfig: FILE:LINE: libconfig's reason")
refused("rules = ( );\nrulez = ( );\n", 64, "rulez", ["rulez: unknown key"],
        "a key other than rules")
refused("# nothing\n", 64, None, ["bad.conf: rules: missing"], "no rules")
refused('rules = "all";\n', 64, "all", ["rules: must be a list"], "rules not a list")
before, v = rules(), version()
rc, out, err = e.ctl("rule", "import", os.path.join(e.dir, "nosuch.conf"))
t.ok(rc == 66 and err.count("\n") == 1 and "nosuch.conf" in err and out == "",
     "a missing file: exit 66 (EX_NOINPUT), one line naming it", (rc, out, err))
t.eq((rules(), version()), (before, v), "a missing file: nothing changed")
rc, out, err = e.ctl("rule", "import")
t.ok(rc == 64 and "rule import FILE" in err, "no FILE: exit 64 and the usage", err)

# --- a file written by hand: defaults, lists, stop alone --------------------------------------------
text = '''rules = (
  { name = "b"; conditions = ( "hour > 3" ); actions = [ "log" ]; },
  { name = "a"; stop = true; conditions = [ "auto = yes" ]; actions = [ ]; }
);
'''
rc, out, err = e.ctl("rule", "import", path("hand.conf", text))
t.ok(rc == 0 and out.startswith("2 rules imported"), "a file written by hand", (rc, out, err))
t.eq([(r["name"], r["position"], r["enabled"], r["any"], r["stop"], r["actions"])
      for r in rules()],
     [("b", 1, True, False, False, ["log"]), ("a", 2, True, False, True, [])],
     "enabled defaults to true, any and stop to false; stop alone")

# --- an empty list: every rule deleted --------------------------------------------------------------
v = version()
rc, out, err = e.ctl("rule", "import", path("empty.conf", "rules = ( );\n"))
t.ok(rc == 0 and out.startswith("0 rules imported"), "rules = ( ); is imported", (rc, out, err))
t.eq(rules(), [], "and every rule is deleted")
t.eq(version(), v + 1, "with one bump")
rc, out, err = e.ctl("rule", "export")
t.ok(rc == 0 and "rules = ( );" in out, "export of no rule: rules = ( );", out)
rc, out, err = e.ctl("rule", "import", f)
t.eq(rules(), exported_rules, "the first export imported again: the rules are back")

rc, out, err = e.ctl("rule", "--help")
t.ok(rc == 0 and "rule export" in out and "rule import FILE" in out, "rule --help lists both")
