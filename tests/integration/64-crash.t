#!/usr/bin/env python3
# Crash safety of the real mailroomd.  Parallel SMTP and LMTP clients send a
# few thousand unique messages while the daemon is killed with SIGKILL
# several times and restarted on the same database (and configuration; the
# ephemeral ports change, the clients follow).  The clients behave like an
# MTA: what did not get its 250 is sent again, with the same bytes, once the
# daemon is back (some of it was committed before the kill: the retry is a
# duplicate and must be stored once); a few messages are given up instead;
# some clients hang up right after the final "." (the message is committed
# without an answer); a few messages that were acknowledged are sent again on
# purpose.  Right after each kill, before the restart, the database must hold
# every message acknowledged until then.  At the end: every message that got
# a 250 (SMTP) or a recipient's 250 (LMTP) is stored exactly once, with its
# bytes and under the id of its 250; nothing is stored that was not sent to
# the end; the database is intact and mailroomctl reads it.
#
# Knobs: MR_CRASH_MESSAGES (messages acknowledged at least; default 3000, 800
# when MR_BUILD is a build-asan), MR_CRASH_KILLS (default 5), MR_CRASH_SEED
# (the random choices, not the timing; the run prints it).  Everything on
# 127.0.0.1, every socket with a timeout.
import collections
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import BUILD, PG, Tap, message
from mrdaemon import Client, Daemon, dot_stuff, stored_id

T0 = time.monotonic()
t = Tap()

ASAN = os.path.basename(os.path.normpath(BUILD)) == "build-asan"
TARGET = int(os.environ.get("MR_CRASH_MESSAGES", "800" if ASAN else "3000"))
KILLS = int(os.environ.get("MR_CRASH_KILLS", "5"))
BUDGET = 60 if ASAN else 35  # seconds of sending, at most (normally 5 or 6)
FINISH = 20                  # seconds more to deliver what is still pending
IO_TIMEOUT = 30   # a bound for a hung daemon, not a speed target: generous on a loaded machine
MIN_ACKS = 20                # acknowledged by each daemon before it is killed
SEED = int(os.environ.get("MR_CRASH_SEED") or random.getrandbits(32))
random.seed(SEED)  # the kill moments and the clients' choices (not the timing)
RUN = "%08x" % SEED
RCPTS = ("crm@acme.test", "sales@acme.test")
# protocol, messages per connection, recipients per message, pipelined MAIL/RCPT/DATA
KINDS = [("smtp", 1, 1, False), ("smtp", 5, 2, False), ("lmtp", 1, 2, False), ("lmtp", 4, 1, True)]
NTHREADS = 8
RESEND = 0.02                # share of transactions that resend an acknowledged message
ABANDON = 0.3                # share of failed, unacknowledged messages given up
HANGUP = 0.01                # share of transactions hung up right after the final "."
FATAL = ("CRITICAL", "-ERROR", "AddressSanitizer", "LeakSanitizer", "runtime error:")

section = t.section


class Server:
    """The daemon's current generation and ports, for the clients."""

    def __init__(self, d):
        self.d = d
        self.lock = threading.Lock()
        self.gen = 0
        self.ports = (d.smtp_port, d.lmtp_port)
        self.pids = [d.proc.pid]
        self.acked = collections.Counter()  # generation -> messages fully acknowledged
        self.total = 0

    def endpoint(self, lmtp):
        with self.lock:
            return self.gen, self.ports[1 if lmtp else 0]

    def restarted(self):
        with self.lock:
            self.gen += 1
            self.ports = (self.d.smtp_port, self.d.lmtp_port)
            self.pids.append(self.d.proc.pid)

    def count(self, gen):
        with self.lock:
            self.acked[gen] += 1
            self.total += 1


class Msg:
    def __init__(self, w, seq):
        self.token = "%s-%d-%d" % (RUN, w.idx, seq)
        self.msgid = "crash-%s@load.test" % self.token
        self.rcpts = RCPTS[:w.nrcpt]
        self.raw = message(w.sender, self.rcpts[0], "crash %s" % self.token,
                           body="token %s\r\nthread %d %s\r\n" % (self.token, w.idx, w.proto),
                           msgid=self.msgid).encode("utf-8")
        self.acks = {}      # rcpt -> (stored id, generation, monotonic time of the 250)
        self.attempts = []  # (generation, final "." sent, outcome)
        self.abandoned = False

    def missing(self):
        return [r for r in self.rcpts if r not in self.acks]


class Failed(Exception):
    """A reply that is not the one expected: the session is given up."""


class Attempt:
    def __init__(self):
        self.dot = False
        self.replies = {}  # rcpt -> (code, text)


def reason(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, EOFError):
        return "eof"
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(e, Failed):
        return str(e)
    if isinstance(e, OSError):
        return "oserror %s" % e.errno
    return None  # not a network failure: a bug in this test


def transact(c, lmtp, pipelined, sender, rcpts, raw, att, hangup=False):
    cmds = ["MAIL FROM:<%s>" % sender] + ["RCPT TO:<%s>" % r for r in rcpts] + ["DATA"]
    if pipelined:
        c.send("".join(x + "\r\n" for x in cmds))
        rs = [c.reply() for _ in cmds]
    else:
        rs = [c.cmd(x) for x in cmds]
    codes = [code for code, _ in rs]
    if codes != [250] * (len(cmds) - 1) + [354]:
        raise Failed("%s before data" % "/".join(map(str, codes)))
    c.send(dot_stuff(raw) + b".\r\n")
    att.dot = True
    if hangup:
        raise Failed("hangup")
    for r in rcpts if lmtp else rcpts[:1]:
        code, text = c.reply()
        if lmtp and code == 250 and "<%s>" % r not in text:
            raise Failed("reply for another recipient: %s" % text)
        if lmtp:
            att.replies[r] = (code, text)
        else:
            att.replies = {x: (code, text) for x in rcpts}


class Worker(threading.Thread):
    def __init__(self, idx, server, stop_new, deadline):
        super().__init__(daemon=True)
        self.idx = idx
        self.server = server
        self.stop_new = stop_new
        self.deadline = deadline
        self.proto, self.per_conn, self.nrcpt, self.pipelined = KINDS[idx % len(KINDS)]
        self.lmtp = self.proto == "lmtp"
        self.sender = "load%d@load.test" % idx
        self.rng = random.Random("%s-%d" % (RUN, idx))
        self.msgs = []
        self.pending = collections.deque()
        self.done = []
        self.resends = []     # (msg, generation, {rcpt: (code, text)}) of completed resends
        self.resend_failed = 0
        self.hangups = 0
        self.connects = 0
        self.failures = collections.Counter()
        self.errors = []

    def run(self):
        try:
            self.loop()
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            import traceback
            self.errors.append("thread %d: %r\n%s" % (self.idx, e, traceback.format_exc()))

    def next_batch(self):
        batch = []
        while self.pending and len(batch) < self.per_conn:
            batch.append(("send", self.pending.popleft()))
        while not self.stop_new.is_set() and len(batch) < self.per_conn:
            if self.done and self.rng.random() < RESEND:
                batch.append(("resend", self.rng.choice(self.done)))
            else:
                m = Msg(self, len(self.msgs))
                self.msgs.append(m)
                batch.append(("send", m))
        return batch

    def requeue(self, items):
        for what, m in reversed(items):
            if what == "send":
                self.pending.appendleft(m)

    def backoff(self):
        time.sleep(self.rng.uniform(0.01, 0.05))

    def loop(self):
        while time.monotonic() < self.deadline():
            batch = self.next_batch()
            if not batch:
                return
            gen, port = self.server.endpoint(self.lmtp)
            try:
                c = Client(port, IO_TIMEOUT, greet=False)
            except OSError as e:
                self.failures["connect " + (reason(e) or repr(e))] += 1
                self.requeue(batch)
                self.backoff()
                continue
            self.connects += 1
            try:
                if c.sock.getsockname() == c.sock.getpeername():
                    raise Failed("connected to itself")  # a stale port, see TCP self-connect
                code, text = c.reply()
                if code != 220:
                    raise Failed("greeting %d" % code)
                code, text = c.cmd(("LHLO" if self.lmtp else "EHLO") + " client.test")
                if code != 250:
                    raise Failed("%s %d" % ("LHLO" if self.lmtp else "EHLO", code))
            except Exception as e:  # noqa: BLE001
                if reason(e) is None:
                    raise
                self.failures["session " + reason(e)] += 1
                c.close()
                self.requeue(batch)
                self.backoff()
                continue
            broken = False
            for i, (what, m) in enumerate(batch):
                if not self.one(c, gen, what, m):
                    self.requeue(batch[i + 1:])
                    broken = True
                    break
            if not broken:
                try:
                    c.cmd("QUIT")
                except (OSError, EOFError):
                    pass
            c.close()
            if broken:
                self.backoff()

    def one(self, c, gen, what, m):
        """One transaction for @m on session @c; False: the session is broken."""
        rcpts = list(m.rcpts) if what == "resend" else m.missing()
        att = Attempt()
        hangup = what == "send" and self.rng.random() < HANGUP
        err = None
        try:
            transact(c, self.lmtp, self.pipelined, self.sender, rcpts, m.raw, att, hangup)
        except Exception as e:  # noqa: BLE001
            if reason(e) is None:
                raise
            err = reason(e)
        now = time.monotonic()
        if what == "resend":
            if err is None and len(att.replies) == len(rcpts):
                self.resends.append((m, gen, att.replies))
            else:
                self.resend_failed += 1
            return err is None
        for r, (code, text) in att.replies.items():
            if code == 250:
                m.acks[r] = (stored_id(text), gen, now)
            elif err is None:
                err = "%d after data" % code
        if err is None and m.missing():
            err = "incomplete"
        m.attempts.append((gen, att.dot, err or "ok"))
        if err is None:
            self.done.append(m)
            self.server.count(gen)
            return True
        if err == "hangup":
            self.hangups += 1
        self.failures[err] += 1
        if err != "hangup" and att.dot and not m.acks and self.rng.random() < ABANDON:
            m.abandoned = True  # the MTA gives up (bounces) this one
        else:
            self.pending.append(m)
        return err.endswith("after data") and not err.startswith("421")


def db_rows(env):
    """(message rows [(id, message_id)], deliveries [(message_id, recipient)]),
    read-only (no checkpoint: the next daemon finds the WAL as the kill left it)."""
    msgs = env.query("SELECT id, message_id FROM message")
    dels = env.query("SELECT m.message_id, d.recipient FROM delivery d"
                     " JOIN message m ON m.id = d.message_id")
    return msgs, dels


def wait_eof(d, timeout=10):
    """Waits until the drain thread of the dead process has read everything."""
    with d.cond:
        return d.cond.wait_for(lambda: d.eof, timeout)


# --- the run ------------------------------------------------------------------------------
d = Daemon()
db = d.env.db
t.ok(d.alive() and d.smtp_port and d.lmtp_port,
     "daemon started (smtp %s, lmtp %s, database %s)" % (d.smtp_port, d.lmtp_port, db))
t.diag("run %s (MR_CRASH_SEED=%d): target %d acknowledged messages, %d kills, %d client threads%s"
       % (RUN, SEED, TARGET, KILLS, NTHREADS, " (ASan build)" if ASAN else ""))
server = Server(d)
stop_new = threading.Event()
t_send = time.monotonic()
final = [t_send + BUDGET + FINISH]
workers = [Worker(i, server, stop_new, lambda: final[0]) for i in range(NTHREADS)]
kills = []       # dict per kill
logs = []        # the log of every daemon that was killed
problems = []    # the daemon died by itself, did not restart, ...

with section("kills"):
    for w in workers:
        w.start()
    for k in range(KILLS):
        t_gen = time.monotonic()
        delay = random.uniform(0.3, 1.5)
        while True:
            now = time.monotonic()
            with server.lock:
                acked = server.acked[server.gen]
            if (now >= t_gen + delay and acked >= MIN_ACKS) or now > t_gen + 20 or not d.alive():
                break
            time.sleep(0.01)
        if not d.alive():
            problems.append("daemon %d died by itself before kill %d (exit %s)"
                            % (d.proc.pid, k + 1, d.proc.returncode))
            break
        pid = d.proc.pid
        t_kill = time.monotonic()
        d.proc.send_signal(signal.SIGKILL)
        try:
            rc = d.proc.wait(10)
        except subprocess.TimeoutExpired:
            rc = "still running"
        eof = wait_eof(d)
        d.kill()  # forget it (the harness kills whatever is left at exit)
        logs.append(d.log())
        snap = db_rows(d.env)
        kills.append({"pid": pid, "rc": rc, "t": t_kill, "gen": server.gen, "eof": eof,
                      "uptime": t_kill - t_gen, "snap": snap})
        try:
            d.start()
        except RuntimeError as e:
            problems.append("restart %d failed: %s" % (k + 1, e))
            break
        if db not in d.log():
            problems.append("restart %d: the listening line does not name %s" % (k + 1, db))
        server.restarted()
    # enough messages, then no new ones: what is pending is retried to the end
    while time.monotonic() < t_send + BUDGET:
        with server.lock:
            if server.total >= TARGET:
                break
        time.sleep(0.05)
    stop_new.set()
    t_stop = time.monotonic()
    for w in workers:
        w.join(max(1, final[0] - time.monotonic() + 5))
    t_done = time.monotonic()

alive_at_end = d.alive()
logs.append(d.log())
rc = d.stop()
t.eq(rc, 0, "the last daemon stops cleanly on SIGTERM: exit 0")
t.ok(not any(w.is_alive() for w in workers), "every client thread finished")
t.ok(d.proc.poll() is not None, "no daemon left running")
t.eq(problems, [], "the daemon never died by itself and always restarted")

# --- the kills ------------------------------------------------------------------------------
t.eq(len(kills), KILLS, "%d kills happened" % KILLS)
t.ok(all(k["rc"] == -signal.SIGKILL and k["eof"] for k in kills), "each daemon was ended by SIGKILL",
     [(k["pid"], k["rc"], k["eof"]) for k in kills])
t.ok(alive_at_end, "the daemon started after the last kill was still running at the end")
t.eq(len(set(server.pids)), KILLS + 1, "%d distinct daemon pids (one per start)" % (KILLS + 1))
acked_by_gen = [server.acked[g] for g in range(len(kills) + 1)]
t.ok(all(n > 0 for n in acked_by_gen), "every daemon acknowledged messages before it was killed",
     acked_by_gen)
t.diag("kills after %s s of uptime; messages acknowledged per daemon: %s"
       % ([round(k["uptime"], 2) for k in kills], acked_by_gen))

msgs = [m for w in workers for m in w.msgs]
bymid = {m.msgid: m for m in msgs}

# right after each kill: everything acknowledged before it is in the database
lost_at_kill, unacked_committed = [], []
prev = set()
for i, k in enumerate(kills):
    rows, dels = k["snap"]
    have = set(dels)
    before = [(m.msgid, r) for m in msgs for r, (_, g, when) in m.acks.items() if when < k["t"]]
    lost = ["%s %s" % (mid, r) for mid, r in before if (mid, r) not in have]
    if lost:
        lost_at_kill.append("kill %d: %d of %d acknowledged deliveries missing, e.g. %s"
                            % (i + 1, len(lost), len(before), lost[:5]))
    # committed by the killed daemon, its 250 never seen: acknowledged later (a retry) or never
    n = 0
    for mid, r in have - prev:
        m = bymid.get(mid)
        if m is not None and (r not in m.acks or m.acks[r][1] > k["gen"]):
            n += 1
    unacked_committed.append(n)
    prev = have
t.eq(lost_at_kill, [], "after every kill the database holds every delivery acknowledged before it"
     " (%d kills)" % len(kills))
t.diag("deliveries committed by a killed daemon that never acknowledged them (acknowledged later"
       " to a retry, or given up), per kill: %s" % unacked_committed)

# --- the clients ------------------------------------------------------------------------------
errors = [e for w in workers for e in w.errors]
t.eq(errors, [], "no client thread raised an unexpected exception")
failures = sum((w.failures for w in workers), collections.Counter())
t.diag("failed attempts by reason: %s" % dict(sorted(failures.items())))
t.eq(sum(n for r, n in failures.items() if "timeout" in r), 0, "no socket operation timed out")
full = [m for m in msgs if not m.missing()]
partial = [m for m in msgs if m.acks and m.missing()]
abandoned = [m for m in msgs if m.abandoned]
unfinished = [m for m in msgs if m.missing() and not m.abandoned]
retried = [m for m in msgs if len(m.attempts) > 1]
retried_after_dot = [m for m in msgs if any(dot and out != "ok" for _, dot, out in m.attempts)
                     and not m.missing()]
t.ok(len(full) >= TARGET, "at least %d messages acknowledged (%d)" % (TARGET, len(full)))
t.eq([m.msgid for m in unfinished][:10], [], "every message not given up was acknowledged in the end")
t.eq([m.msgid for m in partial][:10], [], "no message is left acknowledged for only some recipients")
t.ok(retried, "the kills interrupted deliveries: %d messages needed more than one attempt" % len(retried))
resends = [x for w in workers for x in w.resends]
bad_resends = []
for m, gen, replies in resends:
    for r, (code, text) in replies.items():
        if code != 250 or stored_id(text) != m.acks[r][0]:
            bad_resends.append((m.msgid, r, m.acks[r][0], text))
t.ok(resends, "acknowledged messages were sent again on purpose (%d)" % len(resends))
t.eq(bad_resends[:10], [], "every resend of an acknowledged message: 250 with the first id")
t.diag("%d messages, %d acknowledged (%d after a retry; %d of them had sent the final '.' before a"
       " failure); %d given up; %d hang-ups after '.'; %d resends (%d across a restart, %d cut off"
       " by a kill); %d connections"
       % (len(msgs), len(full), sum(1 for m in full if len(m.attempts) > 1), len(retried_after_dot),
          len(abandoned), sum(w.hangups for w in workers), len(resends),
          sum(1 for m, g, _ in resends if g > min(a[1] for a in m.acks.values())),
          sum(w.resend_failed for w in workers), sum(w.connects for w in workers)))
t.diag("sending took %.1fs with the kills, %.1fs to finish the retries"
       % (t_stop - t_send, t_done - t_stop))

# --- the database ------------------------------------------------------------------------------
with section("database"):
    if not PG:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        integrity = con.execute("PRAGMA integrity_check").fetchall()
        t.eq(integrity, [("ok",)], "PRAGMA integrity_check: ok")
        t.eq(con.execute("PRAGMA foreign_key_check").fetchall(), [],
             "PRAGMA foreign_key_check: nothing")
        con.close()
    rows = d.env.query("SELECT id, message_id FROM message")
    dels = d.env.query("SELECT m.message_id, d.recipient FROM delivery d"
                       " JOIN message m ON m.id = d.message_id")
    raws = d.env.query("SELECT m.message_id, r.raw FROM message_raw r"
                       " JOIN message m ON m.id = r.message_id")

    ids = collections.defaultdict(list)
    for rid, mid in rows:
        ids[mid].append(rid)
    t.eq(sorted(mid for mid in ids if mid not in bymid)[:10], [], "every stored message is one we sent")
    dup = {mid: v for mid, v in ids.items() if len(v) > 1}
    t.eq(dict(list(dup.items())[:10]), {}, "no Message-ID is stored twice (%d stored)" % len(rows))
    missing = [m.msgid for m in full if m.msgid not in ids]
    t.eq(missing[:10], [], "every acknowledged message is stored (%d)" % len(full))
    wrong_id = [(m.msgid, ids[m.msgid], sorted(set(a[0] for a in m.acks.values())))
                for m in full if m.msgid in ids and set(a[0] for a in m.acks.values()) != set(ids[m.msgid])]
    t.eq(wrong_id[:10], [], "each under the id its 250 named")
    acked_pairs = {(m.msgid, r) for m in msgs for r in m.acks}
    t.eq(sorted(acked_pairs - set(dels))[:10], [], "every acknowledged delivery (message, recipient) is stored"
         " (%d)" % len(acked_pairs))
    sent_pairs = {(m.msgid, r) for m in msgs for r in m.rcpts if any(dot for _, dot, _ in m.attempts)}
    t.eq(sorted(set(dels) - sent_pairs)[:10], [], "no delivery is stored that was not sent up to the final '.'")
    t.eq(len(dels), len(set(dels)), "no delivery is stored twice")
    stored_unacked = [mid for mid in ids if mid in bymid and not bymid[mid].acks]
    t.eq(len(rows), len(full) + len(stored_unacked),
         "stored messages = acknowledged (%d) + given up after the final '.' but committed (%d)"
         % (len(full), len(stored_unacked)))
    t.ok(all(bymid[mid].abandoned for mid in stored_unacked), "the unacknowledged stored ones were given up")
    t.diag("%d messages given up; %d of them had been committed before the kill"
           % (len(abandoned), len(stored_unacked)))
    bad_raw = [mid for mid, raw in raws if mid in bymid and bytes(raw) != bymid[mid].raw]
    t.eq(bad_raw[:10], [], "every stored message has the bytes that were sent")
    t.eq(len(raws), len(rows), "every message has its raw bytes")

    listed = d.messages()
    t.eq(len(listed), len(rows), "mailroomctl message list --json reads the database (%d)" % len(listed))
    sample = random.sample(full, min(5, len(full)))
    t.ok(all(d.raw_message(ids[m.msgid][0]) == m.raw for m in sample),
         "mailroomctl message show --raw returns the bytes sent (5 samples)")
    rc_, out, err = d.env.ctl("contact", "list")
    t.eq(rc_, 0, "mailroomctl contact list works on the database")

# --- the logs -----------------------------------------------------------------------------------
bad_lines = [line for log in logs for line in log.splitlines() if any(x in line for x in FATAL)]
t.eq(bad_lines[:10], [], "no daemon logged a critical error or a sanitizer report")
t.diag("daemon logs: %d 'disconnected during commit' (hang-ups after '.'), %d warnings"
       % (sum(log.count("disconnected during commit") for log in logs),
          sum(log.count("WARNING") for log in logs)))
t.diag("64-crash.t took %.1fs" % (time.monotonic() - T0))
