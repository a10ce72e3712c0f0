#!/usr/bin/env python3
# A full disk in the middle of a batch.  The database lives on a small
# tmpfs; one batch (store.batch_window) carries small messages and one too
# big for the space left.  SQLite rolls the whole transaction back on
# SQLITE_FULL: the big message must fail (451), and the others must be
# applied again in a new transaction -- not one by one in autocommit mode,
# which stored them and still answered 451.  The answers must agree with
# the database: every 250 is stored once, nothing else is.  Then the same
# through `mailroomctl deliver FILE...` (its own group commit).  Last, the
# spool directory on the full disk: a big message is deferred (451), not
# cut short, and small ones (kept in memory) still go.
# Needs root (mount -t tmpfs); skipped otherwise.
import atexit
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Env, skip_unless_sqlite  # noqa: E402

skip_unless_sqlite("the database file on a full disk")
T0 = time.monotonic()
e = Env()
var = os.path.join(e.dir, "var")
os.makedirs(var, exist_ok=True)
if os.geteuid() != 0:
    print("1..0 # SKIP mounting a tmpfs needs root")
    sys.exit(0)
p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0755", "mrtest-full", var],
                   capture_output=True, text=True, timeout=30)
if p.returncode != 0:
    print("1..0 # SKIP cannot mount a tmpfs: %s" % p.stderr.strip())
    sys.exit(0)
atexit.register(subprocess.run, ["umount", "-l", var], timeout=30)

from mrtest import Tap  # noqa: E402 - after the skip check: Tap prints a plan at exit
from mrdaemon import Daemon, send_data, stored_id  # noqa: E402

t = Tap()
section = t.section

SMALL = 2 * 1024
BIG = 6 * 1024 * 1024


def message(tag, size):
    head = ("From: filler@client.test\r\nTo: crm@acme.test\r\nSubject: %s\r\n"
            "Message-ID: <%s@client.test>\r\n\r\n" % (tag, tag)).encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def stored_subjects(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return [r[0] for r in con.execute("SELECT subject FROM message ORDER BY id")]
    finally:
        con.close()


# The spool lives off the small disk here: the database is what fills up.
SPOOL_OFF = 'spool_directory = "%s";\n' % os.path.join(e.dir, "spool")
d = Daemon("store = { batch_window = 1000; busy_timeout = 20000; };\n" + SPOOL_OFF, env=e)

with section("SMTP: one batch, a message too big for the disk"):
    plan = [("small-1", SMALL), ("big-1", BIG), ("small-2", SMALL), ("small-3", SMALL)]
    clients = []
    for tag, size in plan:
        c = d.raw(timeout=60)
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<filler@client.test>")
        c.cmd("RCPT TO:<crm@acme.test>")
        t.eq(c.cmd("DATA")[0], 354, "%s: 354" % tag)
        clients.append(c)
    mark = d.mark()
    # All four inside one batch window: the writer gathers them in one
    # transaction (it waits store.batch_window for each next message).
    threads = [threading.Thread(target=send_data, args=(c, message(tag, size)))
               for c, (tag, size) in zip(clients, plan)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    replies = {tag: c.try_reply() for c, (tag, _) in zip(clients, plan)}
    for c in clients:
        c.close()
    t.ok(replies["big-1"][1].startswith("451 4.3.0"), "the message too big for the disk: 451 4.3.0",
         replies)
    for tag in ("small-1", "small-2", "small-3"):
        t.ok(replies[tag][0] == 250, "%s: 250 (applied again in a new transaction)" % tag, replies)
    t.ok(d.wait_for(re.compile(r"ended the transaction"), 10, mark) is not None,
         "the writer saw the database end the transaction", d.log(mark))
    subjects = stored_subjects(e.db)
    for tag, r in replies.items():
        t.eq(subjects.count(tag), 1 if r[0] == 250 else 0,
             "%s: %s and %s" % (tag, r[0], "stored once" if r[0] == 250 else "not stored"))
    ids = {tag: stored_id(r[1]) for tag, r in replies.items() if r[0] == 250}
    t.ok(all(i is not None for i in ids.values()), "every 250 names the stored message", ids)

with section("the daemon goes on"):
    c = d.raw()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<filler@client.test>")
    c.cmd("RCPT TO:<crm@acme.test>")
    c.cmd("DATA")
    send_data(c, message("after", SMALL))
    r = c.try_reply()
    t.ok(r[0] == 250, "the next small message: 250", r)
    c.close()
    t.eq(stored_subjects(e.db).count("after"), 1, "stored once")
    t.eq(d.stop(), 0, "exit 0")

with section("mailroomctl deliver FILE...: the same in its group commit"):
    files = []
    for tag, size in [("file-small-1", SMALL), ("file-big", BIG), ("file-small-2", SMALL)]:
        path = os.path.join(e.dir, tag + ".eml")
        with open(path, "wb") as f:
            f.write(message(tag, size))
        files.append(path)
    rc, out, err = e.ctl("deliver", "--to", "crm@acme.test", "--json", *files)
    t.eq(rc, 75, "exit 75 (EX_TEMPFAIL): one file could not be stored")
    t.ok("file-big.eml: not stored, try again later" in err, "the big file is named", err)
    subjects = stored_subjects(e.db)
    t.eq([subjects.count(x) for x in ("file-small-1", "file-big", "file-small-2")], [1, 0, 1],
         "the small files are stored once, the big one not")
    try:
        listed = sorted(os.path.basename(x["file"]) for x in json.loads(out))
    except ValueError:
        listed = out
    t.eq(listed, ["file-small-1.eml", "file-small-2.eml"], "--json lists the stored files only")

with section("the spool directory on the full disk"):
    spool = os.path.join(var, "spool")
    d = Daemon('limits = { spool_threshold = 65536; };\nspool_directory = "%s";\n' % spool, env=e)
    mark = d.mark()
    replies = {}
    for tag, size in [("spool-big", BIG), ("spool-small", SMALL)]:
        c = d.raw(timeout=60)
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<filler@client.test>")
        c.cmd("RCPT TO:<crm@acme.test>")
        c.cmd("DATA")
        send_data(c, message(tag, size))
        replies[tag] = c.try_reply()
        c.close()
    t.ok(replies["spool-big"][1].startswith("451 4.3.0"),
         "a big message that does not fit in the spool: 451 4.3.0", replies)
    t.ok(d.wait_for(re.compile(r"deferred reason=spool .*No space left"), 10, mark) is not None,
         "the log says why (no space left)", d.log(mark))
    t.eq(replies["spool-small"][0], 250, "a small message (kept in memory) still goes")
    subjects = stored_subjects(e.db)
    t.eq([subjects.count(x) for x in ("spool-big", "spool-small")], [0, 1],
         "the big one is not stored, the small one once")
    t.eq(os.listdir(spool), [], "nothing left in the spool directory")
    t.eq(d.stop(), 0, "exit 0")

with section("integrity"):
    con = sqlite3.connect("file:%s?mode=ro" % e.db, uri=True, timeout=10)
    t.eq(con.execute("PRAGMA integrity_check").fetchone()[0], "ok", "integrity_check: ok")
    t.eq(con.execute("PRAGMA foreign_key_check").fetchall(), [], "foreign_key_check: clean")
    con.close()

t.diag("68-full-disk.t took %.1fs" % (time.monotonic() - T0))
