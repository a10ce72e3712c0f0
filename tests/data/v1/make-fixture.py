#!/usr/bin/env python3
"""make-fixture - the schema-v1 database that 71-migrate.t migrates.

Run once, with a build whose schema is version 1 (commit 2ed43f5 or
earlier): it fills a fresh database through mailroomctl (users, smart BCC,
tickets, leads, an opportunity won, a lead converted, ticket statuses,
attachments, forwards, 8-bit headers) and writes
  mailroom-v1.sql   the database, as `sqlite3 .dump` text (diffable)
  expected.json     what mailroomctl --json printed for it then
Usage: MR_BUILD=/path/to/v1/build python3 tests/data/v1/make-fixture.py
"""
import glob
import json
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
from mrtest import Env, message  # noqa: E402

e = Env()
assert e.json("init")["schema_version"] == 1, "needs a schema-v1 build"
e.json("user", "add", "alice@acme.test", "--name", "Alice")
e.json("user", "add", "bert@acme.test")


def deliver(to, raw):
    rc, out, err = e.deliver(to, raw)
    assert rc == 0, err


deliver("crm@acme.test", message('"Alice" <alice@acme.test>', '"Bob Buyer" <bob@customer.test>',
                                 "Offer", cc="carol@customer.test", msgid="v1-bcc-1@acme.test",
                                 date="Mon, 23 Nov 2026 09:00:00 +0000"))
deliver("support@acme.test", message("jane@client.test", "support@acme.test", "Printer on fire",
                                     msgid="v1-t1@client.test",
                                     date="Mon, 23 Nov 2026 10:00:00 +0000"))
deliver("support@acme.test", message("jane@client.test", "support@acme.test",
                                     "Re: [TKT-1] Printer on fire", msgid="v1-t2@client.test",
                                     date="Mon, 23 Nov 2026 11:00:00 +0000"))
deliver("sales@acme.test", message("lead@prospect.test", "sales@acme.test", "Pricing please",
                                   msgid="v1-l1@prospect.test"))
deliver("sales@acme.test", message("other@prospect2.test", "sales@acme.test", "Demo?",
                                   msgid="v1-l2@prospect2.test"))
for path in sorted(glob.glob(os.path.join(HERE, "..", "*.eml"))):
    with open(path, "rb") as f:
        rc, out, err = e.deliver("support@acme.test", f.read())
        assert rc in (0, 65), (path, err)   # not-a-message.eml and friends may be refused
opp = e.json("opp", "add", "--title", "Cloud plan", "--contact", "bob@customer.test",
             "--value", "4800")["id"]
e.json("opp", "won", opp)
e.json("inbox", "convert", "1")
e.json("inbox", "archive", "2")
e.json("ticket", "status", "TKT-1", "pending")

expected = {}
for args in (["user", "list"], ["contact", "list"], ["account", "list"], ["inbox", "list"],
             ["opp", "list"], ["ticket", "list"], ["message", "list"],
             ["contact", "show", "bob@customer.test"], ["ticket", "show", "TKT-1"],
             ["opp", "show", opp], ["inbox", "show", "1"], ["message", "show", "1"],
             ["message", "show", "3"], ["timeline", "TKT-1"], ["timeline", "customer.test"],
             ["timeline", "alice@acme.test"]):
    expected[" ".join(args)] = e.json(*args)
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=False)
    f.write("\n")
con = sqlite3.connect(e.db)
with open(os.path.join(HERE, "mailroom-v1.sql"), "w") as f:
    for line in con.iterdump():
        f.write(line + "\n")
    f.write("PRAGMA user_version = %d;\n" % con.execute("PRAGMA user_version").fetchone()[0])
con.close()
print("wrote", HERE)
