#!/usr/bin/env python3
# Schema v1 -> the current one on SQLite (issue 13): a database made by the v1 code
# (tests/data/v1/mailroom-v1.sql, made by tests/data/v1/make-fixture.py)
# migrates with every row kept, and mailroomctl prints for it what the v1
# code printed (tests/data/v1/expected.json).  mailroomd migrates the same
# way at start, and a migrated database takes new mail.
import json
import os
import sqlite3
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Env, Tap, message, skip_unless_sqlite  # noqa: E402
from mrdaemon import Daemon, transaction  # noqa: E402

skip_unless_sqlite("a schema-v1 SQLite file")

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "data", "v1")
t = Tap()
section = t.section

TABLES = ["account", "attachment", "blob", "contact", "delivery", "event", "lead", "link",
          "message", "message_address", "message_raw", "opportunity", "ticket", "user_address"]


def load_v1(db):
    os.makedirs(os.path.dirname(db), exist_ok=True)
    con = sqlite3.connect(db)
    with open(os.path.join(FIXTURE, "mailroom-v1.sql")) as f:
        con.executescript(f.read())
    con.close()


def counts(db, user_table):
    con = sqlite3.connect(db)
    try:
        n = {x: con.execute("SELECT count(*) FROM %s" % x).fetchone()[0] for x in TABLES}
        n["user"] = con.execute("SELECT count(*) FROM %s" % user_table).fetchone()[0]
        n["version"] = con.execute("PRAGMA user_version").fetchone()[0]
        return n
    finally:
        con.close()


def with_field_names(node):
    """What v1 printed, with the field names that were changed on purpose
    since (docs/cli.md, "Field names"): a message says `received` for its
    arrival and `sent` for its Date: header, a timeline entry `received`
    (a message) or `created` (an event); `date` stays as the deprecated
    alias it was; a user says whether away (`away`, false for each user
    of v1, since schema 8).  Nothing else may differ."""
    if isinstance(node, list):
        return [with_field_names(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: with_field_names(v) for k, v in node.items()}
    if "date" in out and "kind" in out:            # a timeline entry
        message = out["kind"] == "message"
        out["received"] = out["date"] if message else None
        out["created"] = None if message else out["date"]
    elif "date" in out and "received" in out and "sent" not in out:
        out["sent"] = out["date"]                   # message list/show
    elif "date" in out and "sent" in out and "received" not in out:
        out["received"] = out["date"]               # a record's messages
    elif "addresses" in out and "message_count" in out:
        out["away"] = False                         # user list
    return out


with open(os.path.join(FIXTURE, "expected.json")) as f:
    expected = {cmd: with_field_names(want) for cmd, want in json.load(f).items()}

with section("mailroomctl init migrates a v1 database"):
    e = Env()
    load_v1(e.db)
    before = counts(e.db, "user")
    con = sqlite3.connect(e.db)
    events_before = con.execute("SELECT id, created, type, record_kind, record_id, message_id"
                                " FROM event ORDER BY id").fetchall()
    summaries_before = dict(con.execute("SELECT id, summary FROM event"))
    con.close()
    t.eq(before["version"], 1, "the fixture is schema v1")
    t.ok(before["message"] > 20 and before["event"] > 20, "and holds data", before)
    j = e.json("init")
    t.eq(j["schema_version"], 11,
         "init: schema version 11 (v1 -> 2 -> 3 -> 4 -> 5 -> 6 -> 7 -> 8 -> 9 -> 10 -> 11)")
    after = counts(e.db, "app_user")
    del before["version"], after["version"]
    t.eq(after, before, "every table keeps every row")
    con = sqlite3.connect(e.db)
    con.execute("PRAGMA foreign_keys = ON")   # as mailroom's connections have it
    t.eq(con.execute("PRAGMA integrity_check").fetchone()[0], "ok", "integrity_check: ok")
    t.eq(con.execute("PRAGMA foreign_key_check").fetchall(), [], "foreign_key_check: clean")
    fks = [r[2] for r in con.execute("PRAGMA foreign_key_list(contact)")]
    t.ok("app_user" in fks and "user" not in fks, "foreign keys follow the renamed table", fks)
    t.eq(con.execute("SELECT id, created, type, record_kind, record_id, message_id"
                     " FROM event ORDER BY id").fetchall(), events_before,
         "every event keeps its id, time, type, record and message"
         " (a consumer's last id still holds)")
    cols = [r[1] for r in con.execute("PRAGMA table_info(event)")]
    t.ok("summary" not in cols and {"actor_id", "old_status", "new_status", "address",
                                    "detail"} <= set(cols),
         "schema 6: typed columns, no sentence", cols)
    t.eq((con.execute("SELECT count(*) FROM rule").fetchone()[0],
          con.execute("SELECT version FROM rule_version").fetchone()[0]), (0, 0),
         "schema 7: no rules yet, the change counter at 0")
    t.eq((con.execute("SELECT count(*) FROM team").fetchone()[0],
          con.execute("SELECT count(*) FROM delivery WHERE rules IS NOT NULL").fetchone()[0],
          con.execute("SELECT count(*) FROM event_type WHERE name = 'team.unassigned'")
          .fetchone()[0]), (0, 0, 1),
         "schema 8: no teams, no rules fired on old deliveries, team.unassigned known")
    t.eq((con.execute("SELECT count(*) FROM message WHERE direction = 'in'").fetchone()[0]
          == before["message"],
          con.execute("SELECT count(*) FROM job").fetchone()[0],
          con.execute("SELECT count(*) FROM outbox").fetchone()[0],
          con.execute("SELECT count(*) FROM contact WHERE undeliverable IS NOT NULL")
          .fetchone()[0],
          con.execute("SELECT count(*) FROM event_type WHERE name IN ('mail.bounced',"
                      " 'mail.held', 'mail.failed')").fetchone()[0]), (True, 0, 0, 0, 3),
         "schema 9: every old message incoming, no jobs, no outbox, every contact"
         " deliverable, the mail event types known")
    t.eq((con.execute("SELECT name, zone, hours FROM calendar").fetchall(),
          con.execute("SELECT count(*) FROM team WHERE calendar_id IS NOT NULL").fetchone()[0]),
         ([("default", "UTC", "mon-fri 09:00-17:00")], 0),
         "schema 10: init made the calendar default, no team has its own")
    t.eq((con.execute("SELECT name, enabled, fired FROM workflow ORDER BY name").fetchall(),
          con.execute("SELECT count(*) FROM job").fetchone()[0],
          con.execute("SELECT count(*) FROM task").fetchone()[0],
          con.execute("SELECT count(*) FROM event_type WHERE name IN ('response.sent',"
                      " 'ticket.escalated', 'task.created', 'task.done')").fetchone()[0]),
         ([("first-response-sla", 1, 0), ("follow-up", 1, 0), ("lead-reminder", 1, 0),
           ("ticket-ack", 1, 0)], 0, 0, 4),
         "schema 11: the built-in workflows, no timer on old records, no tasks,"
         " the new event types known")
    t.eq(con.execute("SELECT type, old_status, new_status, detail FROM event"
                     " WHERE type IN ('ticket.status', 'lead.converted', 'lead.archived',"
                     " 'opportunity.won') OR id = 1 ORDER BY id").fetchall(),
         [("ticket.created", None, None, "Printer on fire"),
          ("opportunity.won", None, "won", None),
          ("lead.converted", None, "converted", None),
          ("lead.archived", None, "archived", None),
          ("ticket.status", "new", "pending", None)],
         "the typed columns come from the old sentences and the types")
    summaries = {x["id"]: x["summary"] for x in e.json("event", "list")}
    t.eq(summaries, summaries_before,
         "event list prints each event's old sentence, made of its typed columns now")
    for sql, what in (("INSERT INTO event (created, type) VALUES ('x', 'no.such.type')",
                       "an event of a type that is not in event_type"),
                      ("INSERT INTO event (created, type, record_kind, record_id)"
                       " VALUES ('x', 'ticket.status', 'contact', 1)",
                       "an event whose record is not a lead, opportunity or ticket"),
                      ("INSERT INTO event (created, type, record_kind)"
                       " VALUES ('x', 'ticket.status', 'ticket')",
                       "an event with a record kind and no id")):
        try:
            con.execute(sql)
            refused = False
        except sqlite3.IntegrityError:
            refused = True
        con.rollback()
        t.ok(refused, "the schema refuses %s" % what)
    con.close()
    def without_schema_8(got):
        """@got without what schemas 8 and 9 added to shows (a record's
        tags, the rules that fired on a message and its deliveries, a
        contact's undeliverable mark), when empty: no rule ran on mail
        stored before rules were, no mail bounced before mail was sent."""
        if isinstance(got, dict):
            return {k: without_schema_8(v) for k, v in got.items()
                    if not (k in ("tags", "rules", "undeliverable", "first_response_due",
                                  "breached") and v in ([], None, False))
                    and not (k == "direction" and v == "in")}
        if isinstance(got, list):
            return [without_schema_8(v) for v in got]
        return got

    for cmd, want in sorted(expected.items()):
        got = without_schema_8(e.json(*cmd.split(" ")))
        t.ok(got == want, "mailroomctl %s prints what v1 printed" % cmd,
             None if got == want else {"v1": want, "now": got})

with section("the migrated database takes new mail and keeps its rules"):
    rc, out, err = e.deliver("sales@acme.test", message("fresh@prospect9.test", "sales@acme.test",
                                                        "Hello again"))
    t.eq(rc, 0, "a delivery to it works")
    rc, out, err = e.deliver("sales@acme.test", message("fresh@prospect9.test", "sales@acme.test",
                                                        "Second mail"))
    leads = [x for x in e.json("inbox", "list") if x["contact"] == "fresh@prospect9.test"]
    t.eq(len(leads), 1, "one open lead per sender")
    con = sqlite3.connect(e.db)
    cid = con.execute("SELECT id FROM contact WHERE email = 'fresh@prospect9.test'").fetchone()[0]
    try:
        con.execute("INSERT INTO lead (title, source, contact_id, created, updated)"
                    " VALUES ('dup', 'email', ?, 'x', 'x')", (cid,))
        con.commit()
        refused = False
    except sqlite3.IntegrityError:
        refused = True
    con.close()
    t.ok(refused, "a second open lead for a contact is refused by the schema")

with section("mailroomd migrates at start"):
    e2 = Env()
    d = Daemon("", env=e2, start=False)  # runs mailroomctl init: replace its database
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(e2.db + suffix):
            os.unlink(e2.db + suffix)
    load_v1(e2.db)
    d.start()
    c = d.raw()
    c.cmd("EHLO client.test")
    _, _, _, final = transaction(c, "new@customer.test", ["crm@acme.test"],
                                 message("new@customer.test", "crm@acme.test", "after migration"))
    c.close()
    t.ok(final and final[0][0] == 250, "it takes mail", final)
    t.eq(d.stop(), 0, "exit 0")
    con = sqlite3.connect(e2.db)
    t.eq(con.execute("PRAGMA user_version").fetchone()[0], 11, "the database is at schema 11")
    con.close()
