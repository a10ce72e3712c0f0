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
                  "INSERT INTO event (created, type, summary)"
                  " VALUES ('2026-11-30T12:00:00Z', 'ticket.status', 'held back')"
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
import json  # noqa: E402
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
# event_type and the event constraints, and an event of a type that code
# never wrote (kept: every row is).
old = Env()
rc, _, err = old.ctl("init")
t.ok(rc == 0, "init", err)
rc, _, err = old.deliver("support@acme.test",
                         message("jane@client.test", "support@acme.test", "Old ticket",
                                 msgid="<old-1@client.test>"))
olddb = old.db.rsplit("/", 1)[1]
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
t.eq(j["schema_version"], 5, "init migrates it to 3 (and on to 5)")
t.eq(old.query("SELECT id, type, record_kind, record_id, summary FROM event ORDER BY id"),
     before, "every event keeps its id and values")
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
