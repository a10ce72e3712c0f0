#!/usr/bin/env python3
# mailroomctl: usage, configuration errors, exit codes, --help, init.
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import PG, Tap, Env, message, pg_cluster

t = Tap()
e = Env()

rc, out, err = e.ctl("init")
t.eq(rc, 0, "init exits 0")
t.ok(PG or os.path.exists(e.db), "init creates the database")
j = e.json("init")
t.eq(j["schema_version"], 11, "init --json reports the schema version")

rc, out, err = e.ctl("--help")
t.eq(rc, 0, "--help exits 0")
t.ok("deliver --to ADDRESS" in out and "ticket status" in out, "--help lists the verbs")
rc, out, err = e.ctl("ticket", "--help")
t.ok(rc == 0 and "ticket show" in out and "opp add" not in out, "NOUN --help shows that noun")
rc, out, err = e.ctl()
t.eq(rc, 64, "no command: exit 64")
rc, out, err = e.ctl("frobnicate")
t.ok(rc == 64 and "unknown command" in err, "unknown command: exit 64 with a reason")
rc, out, err = e.ctl("ticket", "show")
t.eq(rc, 64, "missing argument: exit 64")
rc, out, err = e.ctl("--bogus", "user", "list")
t.eq(rc, 64, "unknown option: exit 64")

# deliver exit codes
rc, out, err = e.deliver("support@acme.test", b"")
t.ok(rc == 65 and err.count("\n") == 1, "empty input: exit 65, one line on stderr", err)
rc, out, err = e.ctl("deliver", input=b"Subject: x\n\nx\n")
t.eq(rc, 64, "deliver without --to: exit 64")
rc, out, err = e.deliver("nobody@acme.test", message("a@b.test", "nobody@acme.test", "x"))
t.ok(rc == 67 and "not a mailroom address" in err, "unknown recipient: exit 67", err)
rc, out, err = e.deliver("SUPPORT@Acme.Test", message("a@b.test", "support@acme.test", "case"))
t.eq(rc, 0, "recipient matching ignores case")

# the database cannot be written: temporary failure, nothing acknowledged;
# a database that does not exist: only init and deliver create one
if not PG:
    blocker = os.path.join(e.dir, "blocker")
    open(blocker, "w").close()
    e.write_config(db=os.path.join(blocker, "sub", "db.sqlite"))
    rc, out, err = e.deliver("support@acme.test", message("a@b.test", "support@acme.test", "x"))
    t.ok(rc == 75 and err.count("\n") == 1, "database not writable: exit 75, one line", err)
    e.write_config()

    # a database that does not exist: only init and deliver create one
    missing = os.path.join(e.dir, "typo", "mailroom.db")
    e.write_config(db=missing)
    for args in (["user", "list"], ["message", "list"], ["ticket", "show", "TKT-1"],
                 ["timeline", "a@b.test"], ["user", "add", "x@acme.test"]):
        rc, out, err = e.ctl(*args)
        t.ok(rc == 66 and "no such database" in err and missing in err,
             "%s on a missing database: exit 66, naming it" % " ".join(args), err)
    t.ok(not os.path.exists(os.path.dirname(missing)), "and nothing was created")
    rc, out, err = e.ctl("init")
    t.ok(rc == 0 and os.path.exists(missing), "init creates it", err)
    rc, out, err = e.ctl("user", "list")
    t.eq(rc, 0, "then the verbs work")
    e.write_config()
else:
    # PostgreSQL: the administrator creates the database; a database
    # without mailroom's tables is "missing" for every verb but init and
    # deliver, and nothing is created in it.
    pg_cluster().createdb("empty_one")
    empty = pg_cluster().uri("empty_one")
    e.write_config(db=empty)
    for args in (["user", "list"], ["message", "list"], ["user", "add", "x@acme.test"]):
        rc, out, err = e.ctl(*args)
        t.ok(rc == 66 and "no mailroom database here" in err,
             "%s on an empty PostgreSQL database: exit 66" % " ".join(args), err)
    t.eq(pg_cluster().psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                           db="empty_one").strip(), "0", "and nothing was created")
    rc, out, err = e.ctl("init")
    t.ok(rc == 0 and "schema version 11" in out, "init creates the tables", err)
    rc, out, err = e.ctl("user", "list")
    t.eq(rc, 0, "then the verbs work")
    # a password in the URI is never printed
    e.write_config(db=empty.replace("mailroom@", "mailroom:s3cret@"))
    rc, out, err = e.ctl("init")
    t.ok(rc == 0 and "s3cret" not in out and "mailroom:***@" in out, "init hides the password", out)
    e.write_config()

# configuration errors: exit 78 with file:line
bad = os.path.join(e.dir, "bad.conf")
cases = [
    ('database = "x.db"\naddresses = (;\n', ":2:", "syntax error"),
    ('database = "x.db";\naddresses = ( { address = "crm@acme.test"; role = "boss"; } );\n',
     ":2: addresses.role", "unknown role"),
    ('database = "x.db";\n', "addresses", "no addresses"),
    ('database = "x.db";\naddresses = ( { address = "crm@acme.test"; role = "bcc"; } );\n'
     'colour = "blue";\n', ":3: colour: unknown key", "unknown key"),
    ('database = "x.db";\naddresses = ( { address = "crm@acme.test"; role = "bcc"; } );\n'
     'ids = { opportunity_prefix = "OPP-"; };\n', "ids.opportunity_prefix", "bad prefix"),
    ('database = 5;\naddresses = ( { address = "crm@acme.test"; role = "bcc"; } );\n',
     ":1: database", "wrong type"),
]
for text, want, name in cases:
    with open(bad, "w") as f:
        f.write(text)
    rc, out, err = e.ctl("-c", bad, "user", "list")
    t.ok(rc == 78 and want in err and "bad.conf" in err, "config %s: exit 78, %r" % (name, want), err)
rc, out, err = e.ctl("-c", os.path.join(e.dir, "missing.conf"), "user", "list")
t.ok(rc == 78 and "missing.conf" in err, "missing config: exit 78", err)

# users
j = e.json("user", "add", "Alice@Acme.Test", "--name", "Alice Smith")
t.eq(j["email"], "alice@acme.test", "user add lower-cases the address")
rc, out, err = e.ctl("user", "add", "not-an-address")
t.eq(rc, 64, "user add refuses a non-address")
users = e.json("user", "list")
t.ok(any(u["email"] == "alice@acme.test" and u["name"] == "Alice Smith" for u in users),
     "user list --json has the user")
rc, out, err = e.ctl("user", "list")
t.ok("alice@acme.test" in out and "EMAIL" in out, "user list prints a table")

# unknown ids and addresses: exit 1
for args in (["ticket", "show", "TKT-99"], ["opp", "show", "OPP-7"], ["inbox", "show", "5"],
             ["contact", "show", "nobody@nowhere.test"], ["message", "show", "42"],
             ["timeline", "nobody@nowhere.test"], ["ticket", "show", "OPP-1"],
             ["opp", "won", "OPP-3"], ["timeline", "TKT-4"]):
    rc, out, err = e.ctl(*args)
    t.ok(rc == 1 and err.strip() != "", "%s: exit 1 with a reason" % " ".join(args), err)
rc, out, err = e.ctl("opp", "add", "--title", "Deal", "--contact", "ghost@customer.test")
t.ok(rc == 1 and "ghost@customer.test" in err, "opp add for an unknown contact: exit 1", err)
rc, out, err = e.ctl("opp", "add", "--title", "Deal")
t.eq(rc, 64, "opp add without --contact: exit 64")

# batch mode: files share a transaction; bad files are reported, the rest stored
good1 = os.path.join(e.dir, "good1.eml")
good2 = os.path.join(e.dir, "good2.eml")
empty = os.path.join(e.dir, "empty.eml")
open(good1, "w").write(message("b1@batch.test", "support@acme.test", "batch one"))
open(good2, "w").write(message("b2@batch.test", "support@acme.test", "batch two"))
open(empty, "w").close()
before = len(e.json("message", "list"))
rc, out, err = e.ctl("deliver", "--to", "support@acme.test", good1, empty,
                     os.path.join(e.dir, "missing.eml"), good2)
t.ok(rc == 65 and "empty" in err and "missing.eml" in err,
     "batch: exit code of the first failure, every failure named", err)
t.eq(len(e.json("message", "list")), before + 2, "batch: the good files are stored")
rc, out, err = e.ctl("deliver", "--to", "support@acme.test", "--json", good1, good2)
j = __import__("json").loads(out)
t.ok(rc == 0 and len(j) == 2 and all(x["duplicate"] for x in j), "batch --json: duplicates reported", j)
