#!/usr/bin/env python3
# Two mailroomd on one database (issue 13, item 7): an MX pair behind
# Postfix, both handed the same mail at the same time.  8 clients send the
# same MR_TWO_MESSAGES (default 2,000) messages to both daemons at once --
# sales mail from a few hundred senders and new support mail -- retrying a
# 4xx as an MTA would.  Halfway, one daemon is SIGKILLed; its clients go on
# with the other.  Then: each message is stored once, with one delivery per
# recipient; one contact per address; one open lead per sales sender; one
# ticket per new support mail; and every message that either daemon
# acknowledged is there.  On SQLite the same holds through its file lock.
import os
import queue
import random
import signal
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import BUILD, ENGINE, Env, Tap  # noqa: E402
from mrdaemon import Client, Daemon, send_data  # noqa: E402

T0 = time.monotonic()
t = Tap()
section = t.section
ASAN = "asan" in os.path.basename(os.path.normpath(BUILD))
TOTAL = int(os.environ.get("MR_TWO_MESSAGES", "600" if ASAN else "2000"))
SALES_SENDERS = 150
SUPPORT_SENDERS = 150
THREADS = 8
SEED = int(os.environ.get("MR_TWO_SEED", str(random.randrange(1 << 30))))
rng = random.Random(SEED)


def make_message(i):
    """(sender, recipient, bytes) of message i: even ones are sales mail,
    odd ones new support mail (each its own ticket)."""
    if i % 2 == 0:
        sender = "buyer%d@prospect%d.test" % (i // 2 % SALES_SENDERS, i // 2 % 37)
        rcpt, subject = "sales@acme.test", "Question %d about pricing" % i
    else:
        sender = "user%d@client%d.test" % (i // 2 % SUPPORT_SENDERS, i // 2 % 41)
        rcpt, subject = "support@acme.test", "Problem number %d" % i
    raw = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <two-%d@%s>\r\n"
           "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nBody of message %d.\r\n"
           % (sender, rcpt, subject, i, sender.split("@")[1], i)).encode()
    return sender, rcpt, raw


MESSAGES = [make_message(i) for i in range(TOTAL)]

e = Env()
extra = ("limits = { max_connections_per_ip = 64; };\n"
         "store = { busy_timeout = 10000; };\n")
a = Daemon(extra, env=e, debug=True)
b = Daemon(extra, env=e, debug=True)
daemons = {"a": a, "b": b}
acked = {}            # message index -> set of daemon names that said 250
acked_lock = threading.Lock()
stats = {"451": 0, "reconnects": 0, "switched": 0}
killed = threading.Event()


def worker(name, todo):
    """Sends every message of @todo (a queue of indexes) to daemon @name,
    to the other daemon once @name is gone."""
    target = name
    c = None
    while True:
        try:
            i = todo.get_nowait()
        except queue.Empty:
            break
        tries = 0
        while True:
            tries += 1
            if target == "b" and killed.is_set():
                target = "a"
                stats["switched"] += 1
                c = None
            try:
                if c is None:
                    c = Client(daemons[target].smtp_port, timeout=60)
                    c.cmd("EHLO client.test")
                sender, rcpt, raw = MESSAGES[i]
                code_m = c.cmd("MAIL FROM:<%s>" % sender)[0]
                code_r = c.cmd("RCPT TO:<%s>" % rcpt)[0]
                if code_m != 250 or code_r != 250:
                    raise RuntimeError("MAIL %s RCPT %s" % (code_m, code_r))
                if c.cmd("DATA")[0] != 354:
                    raise RuntimeError("DATA")
                send_data(c, raw)
                code, text = c.reply()
            except (OSError, EOFError, RuntimeError):
                c = None
                stats["reconnects"] += 1
                time.sleep(0.05)
                continue
            if code == 250:
                with acked_lock:
                    acked.setdefault(i, set()).add(target)
                break
            stats["451"] += 1
            if tries > 50:
                raise SystemExit("message %d: %s after %d tries" % (i, text, tries))
            time.sleep(0.02 * tries)
    if c is not None:
        try:
            c.cmd("QUIT")
        except (OSError, EOFError):
            pass


with section("%d messages to both daemons at once, one SIGKILLed halfway (%s, seed %d)"
             % (TOTAL, ENGINE, SEED)):
    queues = {}
    for name in ("a", "b"):
        order = list(range(TOTAL))
        rng.shuffle(order)
        queues[name] = queue.Queue()
        for i in order:
            queues[name].put(i)
    threads = [threading.Thread(target=worker, args=(name, queues[name]))
               for name in ("a", "b") for _ in range(THREADS // 2)]
    t_start = time.monotonic()
    for th in threads:
        th.start()
    # Halfway -- and not before the daemon to be killed has acknowledged
    # some (on SQLite one daemon may hold the write lock for a while).
    def acked_by(name):
        with acked_lock:
            return sum(1 for who in acked.values() if name in who)
    while ((len(acked) < TOTAL // 2 or acked_by("b") < TOTAL // 20) and
           any(th.is_alive() for th in threads)):
        time.sleep(0.05)
    b.signal(signal.SIGKILL)
    killed.set()
    with acked_lock:
        acked_before_kill = {i for i, who in acked.items() if "b" in who}
    for th in threads:
        th.join(600)
    elapsed = time.monotonic() - t_start
    t.ok(not any(th.is_alive() for th in threads), "every client finished")
    t.eq(len(acked), TOTAL, "every message was acknowledged by one daemon or both")
    t.ok(len(acked_before_kill) > 0, "the killed daemon had acknowledged %d messages"
         % len(acked_before_kill))
    t.diag("%.1f s, %.0f deliveries/s; 451s %d, reconnects %d, switched %d"
           % (elapsed, 2 * TOTAL / elapsed, stats["451"], stats["reconnects"], stats["switched"]))
    t.eq(a.stop(), 0, "the surviving daemon exits 0")
    b.kill()
    raced = sum(d.log().count("routing again") for d in (a, b))
    t.diag("messages routed again after the other daemon's insert: %d" % raced)

with section("the database"):
    rows = e.query("SELECT message_id, count(*) FROM message GROUP BY message_id")
    t.eq(len(rows), TOTAL, "%d messages stored" % TOTAL)
    t.eq([r for r in rows if r[1] != 1], [], "each stored once")
    want = {"<two-%d@%s>" % (i, m[0].split("@")[1]) for i, m in enumerate(MESSAGES)}
    have = {"<%s>" % r[0] if not r[0].startswith("<") else r[0] for r in rows}
    t.eq(len(want - have), 0, "every acknowledged message is there (%d missing)" % len(want - have))
    dels = e.query("SELECT message_id, recipient, count(*) FROM delivery"
                   " GROUP BY message_id, recipient")
    t.eq(len(dels), TOTAL, "one delivery per message and recipient")
    t.eq([d for d in dels if d[2] != 1], [], "never two")
    dup_contacts = e.query("SELECT email, count(*) FROM contact GROUP BY email"
                           " HAVING count(*) > 1")
    t.eq(dup_contacts, [], "one contact per address")
    senders = {m[0] for i, m in enumerate(MESSAGES) if i % 2 == 0}
    leads = e.query("SELECT c.email, count(*) FROM lead l JOIN contact c ON c.id = l.contact_id"
                    " GROUP BY c.email")
    t.eq(len(leads), len(senders), "a lead for each of the %d sales senders" % len(senders))
    t.eq([r for r in leads if r[1] != 1], [], "one lead each")
    tickets = e.query("SELECT count(*) FROM ticket")[0][0]
    t.eq(tickets, TOTAL // 2, "one ticket per new support mail (%d)" % (TOTAL // 2))
    linked = e.query("SELECT l.message_id, count(*) FROM link l WHERE l.kind = 'ticket'"
                     " GROUP BY l.message_id")
    t.eq(len(linked), TOTAL // 2, "every support mail is on a ticket")
    t.eq([r for r in linked if r[1] != 1], [], "on exactly one")

t.diag("72-two-daemons.t took %.1fs" % (time.monotonic() - T0))
