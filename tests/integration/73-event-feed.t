#!/usr/bin/env python3
# The event feed (mailroomctl event list --after ID): oldest first, and an
# event with a smaller id never turns up after a larger one, so that a
# consumer that remembers the last id it handled misses none.
#
# On PostgreSQL several daemons commit in any order: a write transaction
# that drew an event id and has not committed yet must hold the feed back.
# The test plays such a daemon with psql (BEGIN, the writers' shared lock
# as mailroomd takes it, an INSERT into event, no COMMIT), lets mailroomctl
# deliver and commit events with larger ids meanwhile, and checks that
# `event list` waits for the held transaction rather than answer without
# its event; with a short lock timeout it fails with 75 (try again) instead.
#
# An event is stored as typed fields (schema 6) and its sentence is made
# when it is shown: a changed ticket_prefix shows in old events, and events
# of every type written by schema 5 as sentences migrate to the same text.
import json
import os
import subprocess
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import PG, Env, Tap, message, pg_cluster  # noqa: E402

t = Tap()
section = t.section
WRITERS_LOCK = 0x6d61696c726f6f6d + 1   # src/store/mr-sql-pgsql.c, docs/storage.md


def ids(events):
    return [e["id"] for e in events]


section("the feed on %s" % ("PostgreSQL" if PG else "SQLite"))
env = Env()
rc, _, err = env.ctl("init")
t.ok(rc == 0, "init", err)
rc, _, err = env.deliver("support@acme.test",
                         message("jane@client.test", "support@acme.test", "Printer on fire",
                                 msgid="<feed-1@client.test>"))
t.ok(rc == 0, "a support mail is delivered", err)
first = env.json("event", "list")
t.ok(len(first) >= 1 and first[0]["type"] == "ticket.created", "it made ticket.created",
     first)
t.eq(ids(first), sorted(ids(first)), "oldest first")
t.eq(env.json("event", "list", "--after", str(first[-1]["id"])), [],
     "nothing after the newest")
t.eq(ids(env.json("event", "list", "--after", "0", "--limit", "1")), ids(first)[:1],
     "--limit 1 gives the oldest")

section("the sentence is made when the event is shown (%s)" % ("PostgreSQL" if PG else "SQLite"))
rc, _, err = env.ctl("ticket", "status", "TKT-1", "pending")
t.ok(rc == 0, "ticket status TKT-1 pending", err)
old_events = env.json("event", "list")
t.ok(any(x["summary"] == "TKT-1 status new -> pending" for x in old_events) and
     any(x["summary"] == "TKT-1 created: Printer on fire" for x in old_events),
     "event list: the sentences with the prefix TKT", old_events)


def set_ticket_prefix(e, prefix):
    with open(e.conf) as f:
        text = f.read()
    with open(e.conf, "w") as f:
        f.write(text.replace('ticket_prefix = "TKT"', 'ticket_prefix = "%s"' % prefix))


set_ticket_prefix(env, "CASE")
renamed = env.json("event", "list")
t.eq([x["summary"] for x in renamed],
     [x["summary"].replace("TKT-", "CASE-") for x in old_events],
     "ticket_prefix CASE: the same old events read CASE-1")
t.ok(all(x["record"] == "CASE-1" for x in renamed if x["record"] is not None),
     "and name their record CASE-1", renamed)
tl = [x for x in env.json("timeline", "CASE-1") if x["kind"] != "message"]
t.ok(tl and all(x["subject"].startswith("CASE-1") for x in tl if x["kind"] != "message.linked")
     and "CASE-1 status new -> pending" in [x["subject"] for x in tl],
     "timeline CASE-1: its events' sentences say CASE-1", tl)
rc, out, _ = env.ctl("event", "list")
t.ok(rc == 0 and "CASE-1 status new -> pending" in out and "TKT-1" not in out,
     "the event list table too", out)
env.write_config()


# --- schema 5 -> 6: events of every type --------------------------------------
EVENT_TYPES = ["ticket.created", "ticket.reopened", "ticket.status", "lead.created",
               "lead.converted", "lead.archived", "opportunity.created", "opportunity.won",
               "opportunity.lost", "message.linked", "reply.received", "link.refused",
               "sender.untrusted", "response.sent"]


def every_type():
    """A mailroom whose events are of every type mailroom writes."""
    e = Env('authserv_id = "mx.acme.test";')
    e.ctl("init")
    e.json("user", "add", "alice@acme.test", "--name", "Alice")
    steps = [
        lambda: e.deliver("support@acme.test",
                          message("jane@client.test", "support@acme.test", "Printer on fire",
                                  msgid="<every-1@client.test>")),
        lambda: e.ctl("ticket", "status", "TKT-1", "solved"),
        lambda: e.deliver("support@acme.test",
                          message("jane@client.test", "support@acme.test",
                                  "Re: [TKT-1] it is back", msgid="<every-2@client.test>")),
        lambda: e.deliver("support@acme.test",
                          message("mallory@evil.test", "support@acme.test",
                                  "[TKT-1] give me the data", msgid="<every-3@evil.test>")),
        lambda: e.deliver("support@acme.test",
                          message("alice@acme.test", "zed@customer.test, support@acme.test",
                                  "Fwd: please refund", msgid="<every-4@evil.test>",
                                  headers={"Authentication-Results":
                                           "mx.acme.test; dmarc=fail header.from=acme.test"})),
        lambda: e.deliver("crm@acme.test",
                          message("alice@acme.test", "jane@client.test", "Re: [TKT-1] fixed",
                                  msgid="<every-7@acme.test>",
                                  headers={"Authentication-Results":
                                           "mx.acme.test; dkim=pass header.d=acme.test"})),
        lambda: e.deliver("sales@acme.test",
                          message("pat@prospect.test", "sales@acme.test", "Pricing please",
                                  msgid="<every-5@prospect.test>")),
        lambda: e.deliver("sales@acme.test",
                          message("sam@prospect2.test", "sales@acme.test", "Demo?",
                                  msgid="<every-6@prospect2.test>")),
        lambda: e.ctl("inbox", "convert", "1"),
        lambda: e.ctl("inbox", "archive", "2"),
        lambda: e.ctl("opp", "add", "--title", "Cloud plan", "--contact", "jane@client.test"),
        lambda: e.ctl("opp", "add", "--title", "Big deal", "--contact", "jane@client.test"),
        lambda: e.ctl("opp", "won", "OPP-2"),
        lambda: e.ctl("opp", "lost", "OPP-3", "--reason", "too expensive: it's 'gold'"),
    ]
    for i, step in enumerate(steps):
        rc, _, err = step()
        if rc != 0:
            raise RuntimeError("every_type step %d failed (%d): %s" % (i, rc, err))
    return e


# What schemas 9 (outgoing mail), 10 (calendars; team's column goes with
# the team table) and 11 (workflows, tasks; job's columns go with the job
# table) added, undone.
SCHEMA_9_UNDONE = ("DROP TABLE task; DROP TABLE workflow_unless;"
                   "DROP TABLE calendar_holiday; DROP TABLE calendar;"
                   "DROP TABLE outbox; DROP TABLE template; DROP TABLE job;"
                   "ALTER TABLE message DROP COLUMN direction;"
                   "ALTER TABLE contact DROP COLUMN undeliverable;"
                   "DROP TABLE workflow;"
                   "DELETE FROM event_type WHERE name IN ('mail.bounced', 'mail.held',"
                   " 'mail.failed', 'response.sent', 'ticket.escalated', 'task.created',"
                   " 'task.done');")

# The event types of schema 11: no database of schema 5 holds them.
SCHEMA_11_TYPES = ("response.sent", "ticket.escalated", "task.created", "task.done")


def to_schema_5(e, events):
    """Turns the database of @e back into schema 5: the event table with its
    sentences (those of @events, as event list printed them) in summary,
    without the typed columns, and without the rules of schema 7 nor what
    schemas 8 and 9 added."""
    if PG:
        dbname = e.db.rsplit("/", 1)[1]
        text = " ".join("WHEN %d THEN '%s'" % (x["id"], x["summary"].replace("'", "''"))
                        for x in events)
        pg_cluster().psql(("ALTER TABLE event ADD COLUMN summary TEXT;"
                          "UPDATE event SET summary = CASE id %s END;"
                          "ALTER TABLE event DROP COLUMN actor_id, DROP COLUMN old_status,"
                          " DROP COLUMN new_status, DROP COLUMN address, DROP COLUMN detail;"
                          "DROP TABLE rule; DROP TABLE rule_version;"
                          "ALTER TABLE delivery DROP COLUMN rules; ALTER TABLE app_user DROP COLUMN away;"
                          "DROP TABLE record_tag; DROP TABLE team_member; DROP TABLE team;"
                          "DELETE FROM event_type WHERE name = 'team.unassigned';"
                          "UPDATE mailroom_schema SET version = 5;" % text) + SCHEMA_9_UNDONE,
                          db=dbname)
        return
    import sqlite3
    con = sqlite3.connect(e.db)
    con.executescript(
        "CREATE TABLE event_v5 (id INTEGER PRIMARY KEY, created TEXT NOT NULL,"
        " type TEXT NOT NULL REFERENCES event_type(name), record_kind TEXT,"
        " record_id INTEGER, message_id INTEGER REFERENCES message(id), summary TEXT,"
        " CHECK (record_kind IN ('lead', 'opportunity', 'ticket')),"
        " CHECK ((record_kind IS NULL) = (record_id IS NULL)));"
        "INSERT INTO event_v5 SELECT id, created, type, record_kind, record_id, message_id,"
        " NULL FROM event;"
        "DROP TABLE event;"
        "ALTER TABLE event_v5 RENAME TO event;"
        "CREATE INDEX event_record ON event(record_kind, record_id);"
        "CREATE INDEX event_message ON event(message_id);"
        "DROP TABLE rule; DROP TABLE rule_version;"
        "ALTER TABLE delivery DROP COLUMN rules; ALTER TABLE app_user DROP COLUMN away;"
        "DROP TABLE record_tag; DROP TABLE team_member; DROP TABLE team;"
        "DELETE FROM event_type WHERE name = 'team.unassigned';" + SCHEMA_9_UNDONE)
    con.executemany("UPDATE event SET summary = ? WHERE id = ?",
                    [(x["summary"], x["id"]) for x in events])
    con.execute("PRAGMA user_version = 5")
    con.commit()
    con.close()


FACTS = "SELECT id, type, old_status, new_status, address, detail FROM event ORDER BY id"


def facts_a_sentence_keeps(row):
    """What of the facts @row (FACTS) a schema-5 sentence keeps: the old
    status of ticket.status alone, never the actor."""
    i, typ, old, new, address, detail = row
    return (i, typ, old if typ == "ticket.status" else None, new, address, detail)


section("schema 5 -> 6 with events of every type (%s)" % ("PostgreSQL" if PG else "SQLite"))
five = every_type()
written = five.json("event", "list")
t.eq(sorted({x["type"] for x in written}), sorted(EVENT_TYPES), "events of every type")
actors = five.query("SELECT count(*) FROM event WHERE actor_id IS NOT NULL")[0][0]
t.ok(actors > 0, "mail from a user names the actor (%d events)" % actors)
five.execute("DELETE FROM event WHERE type IN (%s)" % ", ".join("'%s'" % x for x in SCHEMA_11_TYPES))
written = [x for x in written if x["type"] not in SCHEMA_11_TYPES]
facts = five.query(FACTS)
to_schema_5(five, written)
t.eq(five.query("SELECT count(*) FROM event WHERE summary <> ''")[0][0], len(written),
     "made a schema-5 database: each event with its sentence")
j = five.json("init")
t.eq(j["schema_version"], 11, "init migrates it to 11")
t.eq(five.json("event", "list"), written,
     "event list --json prints what it printed before, event by event (ids too)")
t.eq(five.query(FACTS), [facts_a_sentence_keeps(r) for r in facts],
     "the typed columns are what was written, but for what the sentences did not say")
refused = [five.json("message", "show", str(i))["refused"] for i in (3, 4)]
t.ok(refused[0] == ["TKT-1 named in the subject, not attached: sender not related"] and
     refused[1] == ["From alice@acme.test not authenticated (Authentication-Results of"
                    " mx.acme.test): not taken as the user's"],
     "message show: migrated refusals read as before", refused)

if not PG:
    sys.exit(0)

section("a write transaction in flight holds the feed back (PostgreSQL)")
cluster = pg_cluster()
dbname = env.db.rsplit("/", 1)[1]


def held_writer():
    """A psql session inside a write transaction as mailroomd keeps one: the
    writers' lock shared, one event inserted, not committed.  Returns the
    process and the event's id."""
    import mrpg
    p = subprocess.Popen([os.path.join(cluster.bindir, "psql"), "-X", "-q", "-A", "-t",
                          "-v", "ON_ERROR_STOP=1", "-h", mrpg.HOST, "-p", str(cluster.port),
                          "-U", mrpg.USER, "-d", dbname],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=mrpg._clean_env(), text=True)
    p.stdin.write("BEGIN;\nSELECT 'locked', pg_advisory_xact_lock_shared(%d);\n"
                  "INSERT INTO event (created, type, old_status, new_status)"
                  " VALUES ('2026-11-30T12:00:00Z', 'ticket.status', 'held', 'back')"
                  " RETURNING id;\n" % WRITERS_LOCK)
    p.stdin.flush()
    line = p.stdout.readline()          # "locked|"
    held = int(p.stdout.readline().strip())
    return p, held, line


writer, held_id, line = held_writer()
t.ok(line.startswith("locked"), "psql holds the writers' lock shared", line)
# mailroomctl commits events with larger ids meanwhile: writers share the lock.
rc, _, err = env.deliver("support@acme.test",
                         message("john@client.test", "support@acme.test", "Scanner jammed",
                                 msgid="<feed-2@client.test>"))
t.ok(rc == 0, "another writer commits while the first is in flight", err)
later = env.query("SELECT max(id) FROM event")[0][0]
t.ok(later > held_id, "its events have larger ids than the held one (%d > %d)" % (later, held_id))

reader = subprocess.Popen([env.ctl_path, "-c", env.conf, "event", "list", "--after",
                           str(first[-1]["id"]), "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
t.ok(reader.poll() is None, "event list waits for the transaction in flight",
     reader.poll() is not None and reader.communicate())
writer.stdin.write("COMMIT;\n")
writer.stdin.close()
writer.wait(timeout=30)
out, err = reader.communicate(timeout=60)
t.ok(reader.returncode == 0, "event list answers once it committed", err)
got = ids(json.loads(out)) if reader.returncode == 0 else []
t.ok(held_id in got, "the held event is in the answer", got)
t.eq(got, sorted(got), "in id order")
t.eq(got[-1] if got else None, later, "up to the newest")

section("a reader that cannot wait long enough gets 75 (PostgreSQL)")
env.write_config("store = { busy_timeout = 300; };")
writer, held_id, line = held_writer()
start = time.monotonic()
rc, out, err = env.ctl("event", "list", "--json")
took = time.monotonic() - start
t.ok(rc == 75, "exit 75 (EX_TEMPFAIL) past the lock timeout", (rc, out, err))
t.ok("lock" in err.lower(), "the message says it was a lock", err)
t.ok(took < 10, "after about the lock timeout (%.1f s)" % took)
writer.stdin.write("ROLLBACK;\n")
writer.stdin.close()
writer.wait(timeout=30)
got = ids(env.json("event", "list"))
t.ok(held_id not in got, "an event rolled back never appears", got)
t.eq(got, sorted(got), "and the feed is in id order")

section("a schema-2 PostgreSQL database migrates to 3 (PostgreSQL)")
# A database as the schema-2 code left it: the same tables, without
# event_type and the event constraints, events with their sentences, and
# an event of a type that code never wrote (kept: every row is).
old = Env()
rc, _, err = old.ctl("init")
t.ok(rc == 0, "init", err)
rc, _, err = old.deliver("support@acme.test",
                         message("jane@client.test", "support@acme.test", "Old ticket",
                                 msgid="<old-1@client.test>"))
olddb = old.db.rsplit("/", 1)[1]
shown = old.json("event", "list")
to_schema_5(old, shown)
names = cluster.psql("SELECT conname FROM pg_constraint WHERE conrelid = 'event'::regclass"
                     " AND (contype = 'c' OR confrelid = 'event_type'::regclass)",
                     db=olddb).split()
cluster.psql("".join("ALTER TABLE event DROP CONSTRAINT %s;" % n for n in names) +
             "DROP TABLE event_type; DROP TABLE mailbox_state; DROP TABLE quarantine;"
             "UPDATE mailroom_schema SET version = 2;"
             "INSERT INTO event (created, type, summary)"
             " VALUES ('2026-01-01T00:00:00Z', 'custom.kind', 'from elsewhere');", db=olddb)
before = old.query("SELECT id, type, record_kind, record_id, summary FROM event ORDER BY id")
t.ok(len(names) == 3 and len(before) >= 2, "made a schema-2 database", (names, before))
j = old.json("init")
t.eq(j["schema_version"], 11, "init migrates it to 3 (and on to 11)")
t.eq(old.query("SELECT id, type, record_kind, record_id FROM event ORDER BY id"),
     [r[:4] for r in before], "every event keeps its id, type and record")
got = old.json("event", "list")
t.eq([x["summary"] for x in got[:-1]], [x["summary"] for x in shown],
     "and its sentence")
t.eq((got[-1]["type"], got[-1]["summary"]), ("custom.kind", ""),
     "an event of a type mailroom does not know shows no sentence")
t.eq(old.query("SELECT detail FROM event WHERE type = 'custom.kind'"), [("from elsewhere",)],
     "and keeps its old one in detail")
try:
    cluster.psql("INSERT INTO event (created, type) VALUES ('x', 'no.such.type')", db=olddb)
    refused = False
except Exception:
    refused = True
t.ok(refused, "an unknown event type is refused now")
rc, _, err = old.deliver("support@acme.test",
                         message("joe@client.test", "support@acme.test", "New ticket",
                                 msgid="<old-2@client.test>"))
t.ok(rc == 0 and old.json("event", "list")[-1]["type"] in ("ticket.created", "message.linked"),
     "new mail writes events as before", err)
