#!/usr/bin/env python3
"""bench-imap - mailroomd's IMAP door against a private Dovecot
(tests/integration/mrdovecot.py): drain throughput, new-mail latency in
IDLE, and 100 mailboxes watched at once.

    MR_BUILD=$PWD/build python3 tools/bench-imap.py

Three measurements in one run, against one Dovecot as the harness
configures it (plain IMAP on 127.0.0.1, tls = "none"; Dovecot's `service
imap` allows 1,024 sessions, enough for 100 watched mailboxes and the
probes of this benchmark):

1. Drain.  A backlog of MR_BENCH_IMAP_MESSAGES (default 10,000) messages of
   4,096 bytes each (distinct Message-IDs) in the INBOX of a Dovecot user
   of its own per round, made before anything is measured: the first
   round's with the harness's append_many() (two sessions at once, each
   half of the messages), and the others copied from it, file by file
   (Maildir, uidlist and indexes, before any session opened them), which
   gives each round a fresh mailbox byte for byte the same as the one
   APPEND made.  An APPEND costs Dovecot about 1.6 ms of CPU (2 to 5 ms of
   wall time on a shared 2-core machine), so appending 3 x 10,000 would
   take 1.5 to 2.5 minutes of the budget;
   MR_BENCH_IMAP_APPEND_EVERY_ROUND=1 appends every round's backlog with
   append_many (one thread per round) instead.
   Per round, interleaved:
     a. the fetch limit: a plain Python imaplib client logs in, EXAMINEs the
        INBOX and runs UID FETCH a:b BODY.PEEK[] in batches of 200 UIDs,
        timed from the first FETCH to the last answer (every message must
        come back, 4,096 bytes);
     b. mailroomd (SQLite, store.synchronous = "full", the default; a fresh
        database) with one imap entry for that mailbox, after = "seen",
        role MR_BENCH_IMAP_ROLE (default "bcc": the load of bench-storage's
        smtp-source, whose mailroomd CPU per message can be compared).  The
        clock starts just before mailroomd is started and stops at the
        first poll (every 10 ms, read-only SQLite) that sees
        mailbox_state.last_uid at the last UID of the backlog with all the
        messages' deliveries in the database.  mailroomd's CPU per message
        is its utime + stime (all threads, /proc/PID/stat) at that moment
        divided by the messages: everything since its start.  Dovecot's CPU
        over the same span (every process of its group, plus what the
        master reaped) is shown beside it.
   Each round uses a fresh database and a fresh mailbox; the summary gives
   medians over MR_BENCH_ROUNDS (default 3) rounds.  The progress of
   last_uid over time is kept: the time to the first committed batch (the
   start, the login, the UID list of the backlog) and the median and
   longest interval between two batches (MR_IMAP_BATCH_MESSAGES, 200),
   whose ratio is the steady-state rate, without the start.
2. Latency, one mailbox.  A fresh mailroomd watching an empty mailbox,
   waited for until `mailroomctl mailbox status --json` says "idle".  Then
   MR_BENCH_IMAP_SAMPLES (default 100) messages, one at a time: a client
   logs in, APPENDs one message; the clock runs from the APPEND's tagged OK
   until its row is in the table message (a read-only SQLite poll every
   5 ms, by Message-ID); the client logs out; the next APPEND comes 0.3 s
   (plus up to 50 ms of jitter) after the previous message was committed,
   when mailroomd is back in IDLE (an APPEND that came while it still
   worked on the last one would be found without IDLE, and look faster).
   Every fifth sample is followed by one sample of Dovecot's own IDLE
   notification delay, the harness's idle_delay() on a user nobody else
   watches (APPEND -> "* N EXISTS" seen by a plain client; Dovecot groups
   changes for 500 ms, so this is about 0.5 s): both in the same minute of
   the same machine.  Reported: median and max of both, and the difference
   of the medians.  The 5 ms poll adds 2.5 ms on average to mailroomd's
   figures (the probe reads its socket: no such granularity).
3. 100 mailboxes (MR_BENCH_IMAP_MAILBOXES): one Dovecot user and one imap
   entry each, one mailroomd; waited for until all are "idle" (the time
   that takes is shown).  mailroomd's VmRSS and VmHWM (/proc/PID/status)
   and threads are read then and again after the samples, with all of
   them still connected.  Then the latency of 2 (same method, same Dovecot
   probes), each message to a mailbox drawn at random (seeded).  Before,
   the inotify instances of Dovecot's mail user are counted: each session
   in IDLE holds one, Linux allows fs.inotify.max_user_instances (128) per
   user, and past that Dovecot polls every 30 s (its log says
   "inotify_init() failed"; the benchmark says so loudly, the latencies
   are then meaningless).  Another test suite's Dovecot running as root
   uses the same mail user (mrtestmail).

Targets (from the issue), printed beside the figures, never enforced:
drain >= 5,000 messages/s; latency median <= 120 ms above Dovecot's own
delay, max < 1 s; with 100 mailboxes the same latency and RSS <= 96 MiB.

Wrong results fail loudly (exit 1): a message missing or stored twice
(each round's database must hold exactly the Message-IDs appended, one
message and one delivery to imap:NAME each), a backlog not flagged \\Seen
on the server after the drain, last_uid not at the last UID, a mailroomd
that does not start or exit 0 at SIGTERM, a plain fetch that misses a
message.  Warnings in mailroomd's log and errors in Dovecot's log are
counted and shown, not fatal.

The column "others" is how many CPUs, on average, were busy with anything
but mailroomd, Dovecot and this script during the measurement (the
machine's busy ticks from /proc/stat minus those): a hint of how much it
was disturbed.  The figures are noisy on a busy machine (another test
suite, a fuzzer at nice 19: 2 cores are easily shared); compare medians,
CPU per message rather than rates, and mailroomd's latency with Dovecot's
measured beside it rather than with a fixed number.

Knobs (environment): MR_BUILD (default build), MR_BENCH_IMAP_MESSAGES
(10000), MR_BENCH_ROUNDS (3), MR_BENCH_IMAP_SAMPLES (100),
MR_BENCH_IMAP_MAILBOXES (100), MR_BENCH_IMAP_ROLE (bcc),
MR_BENCH_IMAP_APPEND_EVERY_ROUND (off), MR_BENCH_IMAP_KEEP (off; when
set, the work folder stays: each mailroomd's config, log and database,
and a copy of Dovecot's log).  With the defaults a run takes about four
to five minutes: the backlog's appends 45 to 70 s, the drains 10 s, parts
2 and 3 about 95 s each (a sample is Dovecot's half second plus the
0.3 s pause, and every fifth a probe).  mailroomd and mailroomctl are
copied from MR_BUILD at the start, so that a `make` meanwhile cannot mix
two builds; the header names them with their checksums.  Needs Dovecot
(dovecot-core, dovecot-imapd) and openssl: tools/deps.sh.

The helpers it shares with bench-storage.py (mailroomd, /proc, cleanup)
are those of tools/mrbench.py.
"""
import imaplib
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from mrbench import (BenchError, CONFIG, READY, ROOT, START_TIMEOUT, TCK, build_dir, cpu_ticks,
                     die, env_int, kill_all, loadavg, machine_ticks, on_exit_kill_all,
                     stat_fields)
import mrbench

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import mrdovecot  # noqa: E402

SIZE = 4096               # bytes per message, headers included
FETCH_BATCH = 200         # UIDs per UID FETCH of the plain client
DRAIN_POLL = 0.010        # seconds between polls of the database (drain)
LATENCY_POLL = 0.005      # seconds between polls of the database (latency)
GAP = 0.3                 # seconds from a commit to the next APPEND
JITTER = 0.05             # plus up to this much, at random
PROBE_EVERY = 5           # one Dovecot idle_delay() sample after every 5th
SAMPLE_TIMEOUT = 30       # seconds a new message may take before it counts as missing
IDLE_TIMEOUT = 60         # seconds until every mailbox is idle
SEED = 20261123           # the draw of mailboxes in part 3
TARGET_RATE = 5000        # messages/s
TARGET_ABOVE_MS = 120     # median latency above Dovecot's own
TARGET_MAX_MS = 1000
TARGET_RSS_MB = 96


def say(text=""):
    print(text, flush=True)


# --- /proc ----------------------------------------------------------------------

def dovecot_ticks(dc):
    """CPU ticks of the whole Dovecot: utime + stime of every process of
    its process group (zombies too: an imap process that exited and is not
    reaped yet), plus the master's cutime + cstime (the children it
    reaped).  A child moves from the first part to the second with its
    full CPU, so differences stay right."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = stat_fields(int(name))
        if f is None or int(f[2]) != dc.pid:
            continue
        total += int(f[11]) + int(f[12])
        if int(name) == dc.pid:
            total += int(f[13]) + int(f[14])
    return total


def own_ticks():
    """This script's CPU (and that of the children it reaped: mailroomctl)."""
    t = os.times()
    return (t.user + t.system + t.children_user + t.children_system) * TCK


def proc_status(pid):
    """{"VmHWM": kB, "VmRSS": kB, "Threads": n} of @pid."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "Threads"):
                out[k] = int(v.split()[0])
    return out


def inotify_instances(uid):
    """inotify instances held by the processes of @uid."""
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat("/proc/" + name).st_uid != uid:
                continue
            for fd in os.listdir("/proc/%s/fd" % name):
                if os.readlink("/proc/%s/fd/%s" % (name, fd)) == "anon_inode:inotify":
                    n += 1
        except OSError:
            continue
    return n


class Meter:
    """CPU of mailroomd (@pid, may be None before it starts), Dovecot,
    this script and the rest of the machine between start() and stop()."""

    def __init__(self, dc, pid=None):
        self.dc, self.pid = dc, pid

    def start(self):
        self.t0 = time.monotonic()
        self.m0 = machine_ticks()
        self.d0 = dovecot_ticks(self.dc)
        self.o0 = own_ticks()
        self.r0 = cpu_ticks(self.pid) if self.pid else 0
        return self

    def stop(self, pid=None):
        pid = pid or self.pid
        self.seconds = time.monotonic() - self.t0
        self.mailroomd = (cpu_ticks(pid) if pid else 0) - self.r0
        self.dovecot = dovecot_ticks(self.dc) - self.d0
        self.own = own_ticks() - self.o0
        busy = machine_ticks() - self.m0
        self.others = max(0.0, (busy - self.mailroomd - self.dovecot - self.own)
                          / TCK / max(self.seconds, 1e-6))
        return self


# --- messages -------------------------------------------------------------------

NONCE = "%x%04x" % (int(time.time()), os.getpid() & 0xffff)


def mail(kind, i):
    """Message @i of @kind: exactly SIZE bytes, a Message-ID of its own;
    returns (message-id, bytes)."""
    mid = "%s-%d.%s@client.test" % (kind, i, NONCE)
    head = ("From: Customer %d <customer%d@client.test>\r\n"
            "To: Alice <alice@acme.test>\r\n"
            "Subject: Order %s %d: question about the delivery\r\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            % (i % 50, i % 50, kind, i, mid)).encode()
    line = b"Hello, the parcel of order %d did not arrive; could you look into it?\r\n" % i
    body = line * ((SIZE - len(head)) // len(line))
    pad = SIZE - len(head) - len(body)
    if pad == 1:                # no bare LF: Dovecot would send it back as CR LF
        body, pad = body[:-len(line)], pad + len(line)
    if pad:
        body += b"x" * (pad - 2) + b"\r\n"
    raw = head + body
    assert len(raw) == SIZE, len(raw)
    return mid, raw


# --- mailroomd ------------------------------------------------------------------

class Daemon(mrbench.Daemon):
    """One mailroomd with its config, database and log in @directory."""

    def __init__(self, build, directory, entries):
        db = os.path.join(directory, "mailroom.db")
        super().__init__(build, directory,
                         'database = "%s";\n' % db
                         + CONFIG
                         + 'imap = (\n  %s\n);\n' % ",\n  ".join(entries))
        self.db = db
        self._ro = None
        self.init()

    def start(self, wait=True):
        """Starts mailroomd; with @wait, until it reports its ports."""
        self.spawn()
        if wait:
            deadline = time.monotonic() + START_TIMEOUT
            while not READY.search(self.log()):
                self.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError("mailroomd did not report its ports within %d s:\n%s"
                                     % (START_TIMEOUT, self.log()[-3000:]))
                time.sleep(0.05)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def check_alive(self):
        if self.proc.poll() is not None:
            raise BenchError("mailroomd exited (%s):\n%s" % (self.proc.returncode,
                                                             self.log()[-3000:]))

    def stop(self):
        """SIGTERM; it must exit 0.  Returns the seconds it took."""
        self.close_db()
        return super().stop()

    # -- the database, read only --

    def query(self, sql, args=()):
        """Rows of @sql on a read-only connection kept open (every statement
        sees the last COMMIT: WAL, autocommit)."""
        if self._ro is None:
            self._ro = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=30,
                                       isolation_level=None, check_same_thread=False)
        return self._ro.execute(sql, args).fetchall()

    def close_db(self):
        if self._ro is not None:
            self._ro.close()
            self._ro = None

    def status(self):
        """mailroomctl mailbox status --json."""
        p = subprocess.run([os.path.join(self.build, "mailroomctl"), "-c", self.conf, "mailbox",
                            "status", "--json"], capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise BenchError("mailroomctl mailbox status failed (exit %d): %s" % (
                p.returncode, p.stderr.decode("utf-8", "replace").strip()))
        return json.loads(p.stdout)

    def complaints(self):
        """{line without its time: count} of the WARNING and CRITICAL lines."""
        found = {}
        for line in self.log().splitlines():
            if "WARNING" in line or "CRITICAL" in line or "ERROR" in line:
                key = re.sub(r"\b\d\d:\d\d:\d\d\.\d+\b", "", line)
                found[key] = found.get(key, 0) + 1
        return found


KEEP = os.environ.get("MR_BENCH_IMAP_KEEP", "") not in ("", "0")


def discard(directory):
    """Removes a daemon's folder (its database: /tmp stays small), unless
    MR_BENCH_IMAP_KEEP is set."""
    if not KEEP:
        shutil.rmtree(directory, ignore_errors=True)


def imap_entry(dc, directory, name, user, role):
    pwfile = os.path.join(directory, "%s.pass" % name)
    with open(pwfile, "w") as f:
        f.write(dc.password(user) + "\n")
    os.chmod(pwfile, 0o600)
    return ('{ name = "%s"; host = "127.0.0.1"; port = %d; tls = "none"; user = "%s";'
            ' password_file = "%s"; role = "%s"; after = "seen"; reconnect_max = 2; }'
            % (name, dc.port, user, pwfile, role))


def show_complaints(what, d):
    c = d.complaints()
    if not c:
        return 0
    total = sum(c.values())
    say("  ! %s: %d warning line(s) in mailroomd's log:" % (what, total))
    for line, n in sorted(c.items(), key=lambda kv: -kv[1])[:5]:
        say("      %4d x %s" % (n, line.strip()[:200]))
    return total


class DovecotLog:
    """New error and warning lines of Dovecot's log since the last look."""

    def __init__(self, dc):
        self.dc = dc
        self.pos = self._size()

    def _size(self):
        try:
            return os.path.getsize(self.dc.logfile)
        except OSError:
            return 0

    def new(self):
        try:
            with open(self.dc.logfile, "rb") as f:
                f.seek(self.pos)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        self.pos += len(text.encode("utf-8", "replace"))
        return [ln for ln in text.splitlines()
                if re.search(r"\b(Error|Warning|Fatal|Panic):", ln) or "inotify" in ln]


def show_dovecot(what, dlog):
    lines = dlog.new()
    if lines:
        say("  ! %s: %d error/warning line(s) in Dovecot's log, e.g.:" % (what, len(lines)))
        for ln in lines[:5]:
            say("      %s" % ln[:200])
        if any("inotify" in ln for ln in lines):
            say("  !!! Dovecot fell back to polling (inotify): its IDLE notifications come up to"
                " 30 s late; the latencies below are meaningless")
    return len(lines)


# --- 1. drain ---------------------------------------------------------------------

def plain_fetch(dc, user, uids, n):
    """The fetch limit: UID FETCH BODY.PEEK[] in batches of FETCH_BATCH
    UIDs; returns the Meter of the fetches (the login and EXAMINE left
    out)."""
    M = dc.login(user, timeout=60)
    try:
        typ, data = M.select(mrdovecot.quote("INBOX"), readonly=True)
        if typ != "OK":
            raise BenchError("EXAMINE INBOX of %s: %s" % (user, data))
        meter = Meter(dc).start()
        got = 0
        for i in range(0, len(uids), FETCH_BATCH):
            batch = uids[i:i + FETCH_BATCH]
            typ, data = M.uid("FETCH", "%d:%d" % (batch[0], batch[-1]), "(BODY.PEEK[])")
            if typ != "OK":
                raise BenchError("UID FETCH: %s %s" % (typ, data))
            for item in data:
                if isinstance(item, tuple):
                    if len(item[1]) != SIZE:
                        raise BenchError("plain fetch: a message of %d bytes, not %d"
                                         % (len(item[1]), SIZE))
                    got += 1
        meter.stop()
    finally:
        try:
            M.logout()
        except (OSError, imaplib.IMAP4.error, EOFError):
            pass
    if got != n:
        raise BenchError("plain fetch of %s: %d messages came back, not %d" % (user, got, n))
    return meter


def verify(d, what, expected, deliveries):
    """The database holds exactly the Message-IDs @expected, one message
    each, and @deliveries {recipient: count}."""
    got = [r[0] for r in d.query("SELECT message_id FROM message")]
    ids = set(got)
    missing = set(expected) - ids
    extra = ids - set(expected)
    twice = len(got) - len(ids)
    problems = []
    if missing:
        problems.append("%d missing (e.g. %s)" % (len(missing), sorted(missing)[:3]))
    if extra:
        problems.append("%d unexpected (e.g. %s)" % (len(extra), sorted(extra, key=str)[:3]))
    if twice:
        problems.append("%d stored twice" % twice)
    for rcpt, n in deliveries.items():
        have = d.query("SELECT count(*), count(DISTINCT message_id) FROM delivery"
                       " WHERE recipient = ?", (rcpt,))[0]
        if have != (n, n):
            problems.append("deliveries to %s: %d (%d messages), want %d" % (rcpt, have[0],
                                                                           have[1], n))
    total = d.query("SELECT count(*) FROM delivery")[0][0]
    if total != sum(deliveries.values()):
        problems.append("%d deliveries in all, want %d" % (total, sum(deliveries.values())))
    if problems:
        raise BenchError("%s: %s" % (what, "; ".join(problems)))


def drain_round(rnd, build, work, dc, user, ids, uids, role):
    n = len(uids)
    r = {}
    m = plain_fetch(dc, user, uids, n)
    r["fetch_rate"] = n / m.seconds
    r["fetch_s"] = m.seconds
    r["fetch_dovecot_us"] = m.dovecot * 1e6 / TCK / n
    r["fetch_client_us"] = m.own * 1e6 / TCK / n
    r["fetch_others"] = m.others

    d = Daemon(build, os.path.join(work, "drain-%d" % rnd),
               [imap_entry(dc, work, "bench%d" % rnd, user, role)])
    name = "bench%d" % rnd
    meter = Meter(dc)
    trace = []                      # (seconds since start, last_uid) at each change
    meter.start()
    d.start(wait=False)
    pid = d.pid
    deadline = time.monotonic() + max(120, n / 100)
    last = None
    while True:
        time.sleep(DRAIN_POLL)
        d.check_alive()
        row = d.query("SELECT last_uid FROM mailbox_state WHERE name = ?", (name,)) \
            if os.path.exists(d.db) else []
        now = time.monotonic()
        if row and row[0][0] != last:
            last = row[0][0]
            trace.append((now - meter.t0, last))
        if last is not None and last >= uids[-1]:
            stored = d.query("SELECT count(*) FROM delivery WHERE recipient = ?",
                             ("imap:" + name,))[0][0]
            if stored >= n:
                meter.stop(pid)
                break
        if now > deadline:
            raise BenchError("round %d: mailroomd did not drain %d messages in %.0f s"
                             " (last_uid %s of %d)" % (rnd, n, now - meter.t0, last, uids[-1]))
    mem = proc_status(pid)
    r["rate"] = n / meter.seconds
    r["seconds"] = meter.seconds
    r["mr_us"] = meter.mailroomd * 1e6 / TCK / n
    r["dovecot_us"] = meter.dovecot * 1e6 / TCK / n
    r["others"] = meter.others
    r["hwm_kb"] = mem["VmHWM"]
    changes = [t for t, u in trace if u and u > 0]
    r["first_batch"] = changes[0] if changes else meter.seconds
    gaps = [b - a for a, b in zip(changes, changes[1:])]
    r["batch_median"] = statistics.median(gaps) if gaps else None
    r["batch_max"] = max(gaps) if gaps else None
    r["batches"] = len(changes)

    st = d.query("SELECT last_uid, backlog, state FROM mailbox_state WHERE name = ?", (name,))
    if not st or st[0][0] != uids[-1] or st[0][1] != 0:
        raise BenchError("round %d: mailbox_state %s, want last_uid %d, backlog 0"
                         % (rnd, st, uids[-1]))
    verify(d, "round %d" % rnd, ids, {"imap:" + name: n})
    r["warnings"] = show_complaints("round %d" % rnd, d)
    d.stop()
    unseen = dc.status(user, "INBOX")
    if unseen["MESSAGES"] != n or unseen["UNSEEN"] != 0:
        raise BenchError("round %d: after the drain the server has %d messages, %d not \\Seen"
                         " (want %d, 0)" % (rnd, unseen["MESSAGES"], unseen["UNSEEN"], n))
    discard(d.dir)
    return r


# --- 2., 3. latency ---------------------------------------------------------------

def wait_idle(d, count):
    """Until mailroomctl mailbox status says idle for @count mailboxes;
    returns the seconds it took (from now)."""
    t0 = time.monotonic()
    while True:
        d.check_alive()
        st = d.status()
        idle = sum(1 for m in st if m.get("state") == "idle")
        if idle == count and len(st) == count:
            return time.monotonic() - t0, st
        if time.monotonic() - t0 > IDLE_TIMEOUT:
            bad = [(m.get("name"), m.get("state"), m.get("last_error")) for m in st
                   if m.get("state") != "idle"]
            raise BenchError("%d of %d mailboxes idle after %d s; e.g. %s"
                             % (idle, count, IDLE_TIMEOUT, bad[:5]))
        time.sleep(0.2)


def one_sample(dc, d, user, kind, i):
    """APPENDs one message to @user's INBOX; returns (message-id, seconds
    from the APPEND's OK until its row is in the database)."""
    mid, raw = mail(kind, i)
    M = dc.login(user, timeout=30)
    try:
        typ, data = M.append(mrdovecot.quote("INBOX"), None, None, raw)
        t0 = time.monotonic()
        if typ != "OK":
            raise BenchError("APPEND to %s: %s %s" % (user, typ, data))
        deadline = t0 + SAMPLE_TIMEOUT
        while True:
            if d.query("SELECT 1 FROM message WHERE message_id = ?", (mid,)):
                t1 = time.monotonic()
                break
            if time.monotonic() > deadline:
                d.check_alive()
                raise BenchError("message %s to %s not in the database %d s after its APPEND"
                                 % (mid, user, SAMPLE_TIMEOUT))
            time.sleep(LATENCY_POLL)
    finally:
        try:
            M.logout()
        except (OSError, imaplib.IMAP4.error, EOFError):
            pass
    return mid, t1 - t0


def latency_run(dc, d, targets, kind, probe_user, rng):
    """One sample per (user, name) of @targets, with Dovecot probes
    interleaved; returns ([seconds], [(seconds, name)], [probe seconds],
    {name: [message-id]}, the Meter of the whole run)."""
    lat, probes, ids = [], [], {}
    meter = Meter(dc, d.pid).start()
    for i, (user, name) in enumerate(targets):
        mid, s = one_sample(dc, d, user, kind, i)
        lat.append((s, name))
        ids.setdefault(name, []).append(mid)
        time.sleep(GAP + rng.random() * JITTER)
        if i % PROBE_EVERY == PROBE_EVERY - 1:
            probes += dc.idle_delay(probe_user, samples=1)
    meter.stop()
    return [x for x, _ in lat], lat, probes, ids, meter


def ms(v):
    return v * 1000.0


def latency_figures(lat, probes):
    return {
        "median": statistics.median(lat), "max": max(lat), "min": min(lat),
        "p90": sorted(lat)[int(0.9 * (len(lat) - 1))],
        "dc_median": statistics.median(probes) if probes else None,
        "dc_max": max(probes) if probes else None,
        "n": len(lat), "probes": len(probes),
        "early": sum(1 for x in lat if probes and x < 0.9 * statistics.median(probes)),
    }


def print_latency(label, f):
    say("  %s: mailroomd median %.0f ms, p90 %.0f ms, max %.0f ms, min %.0f ms (%d samples);"
        " Dovecot's own IDLE delay median %.0f ms, max %.0f ms (%d samples); difference of"
        " medians %+.0f ms; mailroomd CPU %.0f µs per message (its idle time included)"
        % (label, ms(f["median"]), ms(f["p90"]), ms(f["max"]), ms(f["min"]), f["n"],
           ms(f["dc_median"]), ms(f["dc_max"]), f["probes"], ms(f["median"] - f["dc_median"]),
           f["mr_us"]))
    if f["early"]:
        say("  note: %d sample(s) well below Dovecot's delay (under 90 %% of its median): told"
            " early.  Dovecot also checks a mailbox in IDLE every mailbox_idle_check_interval"
            " (30 s) and then notifies at once, without its 500 ms grouping: an APPEND in the"
            " half second before that check (about 1 in 60 on a mailbox idle for long, as in"
            " part 3).  Else mailroomd was not back in IDLE yet." % f["early"])


def part_latency_one(build, work, dc, role, samples, rng):
    d = Daemon(build, os.path.join(work, "idle"), [imap_entry(dc, work, "idle", "idle", role)])
    d.start()
    took, st = wait_idle(d, 1)
    say("  mailroomd idle %.2f s after it reported its ports: %s" % (
        took, {k: st[0].get(k) for k in ("name", "state", "last_uid", "backlog")}))
    targets = [("idle", "idle")] * samples
    lat, _, probes, ids, meter = latency_run(dc, d, targets, "idle", "probe", rng)
    f = latency_figures(lat, probes)
    f["others"] = meter.others
    f["mr_us"] = meter.mailroomd * 1e6 / TCK / samples
    f["hwm_kb"] = proc_status(d.pid)["VmHWM"]
    print_latency("1 mailbox", f)
    verify(d, "latency, 1 mailbox", ids["idle"], {"imap:idle": samples})
    f["warnings"] = show_complaints("latency, 1 mailbox", d)
    d.stop()
    discard(d.dir)
    return f


def part_many(build, work, dc, role, boxes, samples, rng):
    users = ["box%03d" % i for i in range(1, boxes + 1)]
    entries = [imap_entry(dc, work, "mb%03d" % i, u, role) for i, u in enumerate(users, 1)]
    d = Daemon(build, os.path.join(work, "many"), entries)
    t0 = time.monotonic()
    d.start()
    took, _ = wait_idle(d, boxes)
    took = time.monotonic() - t0
    mem0 = proc_status(d.pid)
    say("  all %d mailboxes idle %.2f s after mailroomd's start; VmRSS %.1f MiB, VmHWM %.1f MiB,"
        " %d threads" % (boxes, took, mem0["VmRSS"] / 1024, mem0["VmHWM"] / 1024,
                         mem0["Threads"]))
    targets = []
    for _ in range(samples):
        k = rng.randrange(boxes)
        targets.append((users[k], "mb%03d" % (k + 1)))
    lat, named, probes, ids, meter = latency_run(dc, d, targets, "many", "probe", rng)
    mem1 = proc_status(d.pid)
    st = d.status()
    idle = sum(1 for m in st if m.get("state") == "idle")
    f = latency_figures(lat, probes)
    f["others"] = meter.others
    f["mr_us"] = meter.mailroomd * 1e6 / TCK / samples
    f["connect_s"] = took
    f["rss0_kb"], f["rss1_kb"] = mem0["VmRSS"], mem1["VmRSS"]
    f["hwm_kb"] = mem1["VmHWM"]
    f["threads"] = mem1["Threads"]
    f["idle_after"] = idle
    f["slowest"] = max(named)[1]
    print_latency("%d mailboxes" % boxes, f)
    say("  after the samples: %d of %d idle; VmRSS %.1f MiB, VmHWM %.1f MiB, %d threads;"
        " slowest sample on %s; mailboxes hit: %d" % (
            idle, boxes, mem1["VmRSS"] / 1024, mem1["VmHWM"] / 1024, mem1["Threads"],
            f["slowest"], len(ids)))
    if idle != boxes:
        say("  ! not all mailboxes idle at the end: %s" % [
            (m.get("name"), m.get("state"), m.get("last_error")) for m in st
            if m.get("state") != "idle"][:5])
    all_ids = [x for v in ids.values() for x in v]
    verify(d, "latency, %d mailboxes" % boxes, all_ids,
           {"imap:" + name: len(v) for name, v in ids.items()})
    f["warnings"] = show_complaints("%d mailboxes" % boxes, d)
    f["stop_s"] = d.stop()
    say("  mailroomd exited 0 %.2f s after SIGTERM" % f["stop_s"])
    discard(d.dir)
    return f


# --- main -------------------------------------------------------------------------

def append_backlog(dc, user, n, threads):
    """@n messages in @user's INBOX with append_many, @threads sessions at
    once (each its share of the messages); returns ([message-id], [uid])."""
    shares = [list(range(k, n, threads)) for k in range(threads)]
    ids = [mail("drain", i)[0] for i in range(n)]
    uids, errors = [], []

    def work(share):
        try:
            got = dc.append_many(user, "INBOX", (mail("drain", i)[1] for i in share))
            uids.extend(got)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    pool = [threading.Thread(target=work, args=(sh,)) for sh in shares if sh]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise BenchError("appending the backlog of %s: %s" % (user, errors[0]))
    uids.sort()
    if len(set(uids)) != n:
        raise BenchError("%s: %d UIDs for %d messages" % (user, len(set(uids)), n))
    return ids, uids


def clone_mailbox(dc, src, dst):
    """Copies the Maildir of @src (no session open on it) to the home of
    @dst, a user that never logged in: the same files, uidlist and indexes,
    owned by the mail user.  Byte for byte the mailbox append_many made."""
    home = dc.home(dst)
    if os.path.exists(home):
        raise BenchError("%s has a home already: not a fresh mailbox" % dst)
    os.makedirs(home)
    shutil.copystat(dc.home(src), home)
    shutil.copytree(dc.maildir(src), dc.maildir(dst), symlinks=True)
    for root, dirs, files in os.walk(home):
        for name in [root] + [os.path.join(root, x) for x in dirs + files]:
            os.lchown(name, dc.mail_uid, dc.mail_gid)


def prepare_backlogs(dc, rounds, n, every):
    """The backlog of every round in the INBOX of a user of its own
    (drain1, drain2...): appended with append_many for the first round (for
    every round with @every), copied for the others.  Returns
    [(user, [message-id], [uid])]."""
    users = ["drain%d" % r for r in range(1, rounds + 1)]
    out = []
    if every:
        results = [None] * rounds
        errors = []

        def work(r):
            try:
                results[r] = append_backlog(dc, users[r], n, 1)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        pool = [threading.Thread(target=work, args=(r,)) for r in range(rounds)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        if errors:
            raise BenchError(str(errors[0]))
        out = [(u,) + results[r] for r, u in enumerate(users)]
    else:
        ids, uids = append_backlog(dc, users[0], n, 2)
        for u in users[1:]:
            clone_mailbox(dc, users[0], u)
        out = [(u, ids, uids) for u in users]
    for u, ids, uids in out:
        st = dc.status(u, "INBOX")
        if st["MESSAGES"] != n or st["UNSEEN"] != n or st["UIDNEXT"] != uids[-1] + 1:
            raise BenchError("the backlog of %s: %s, want %d messages, all unseen, UIDNEXT %d"
                             % (u, st, n, uids[-1] + 1))
    return out


class Build(str):
    """The folder of the copied binaries (a str), with .ident."""


def snapshot(build, work):
    """Copies mailroomd and mailroomctl of @build into @work/bin, so that
    a `make` while the benchmark runs cannot mix two builds (mailroomctl
    of one, the database of another); returns that folder."""
    import hashlib
    dest = os.path.join(work, "bin")
    os.makedirs(dest)
    parts = []
    for name in ("mailroomd", "mailroomctl"):
        src = os.path.join(build, name)
        shutil.copy2(src, os.path.join(dest, name))
        with open(os.path.join(dest, name), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        parts.append("%s (%s, sha256 %s)" % (name, time.strftime(
            "%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(src))), digest))
    b = Build(dest)
    b.ident = "%s from %s" % (", ".join(parts), build)
    return b


def fmt(v, spec="%.1f"):
    """mrbench.fmt with "-" for None (a figure not taken)."""
    return mrbench.fmt(v, spec, none="-")


def main():
    n = env_int("MR_BENCH_IMAP_MESSAGES", 10000)
    rounds = env_int("MR_BENCH_ROUNDS", 3)
    samples = env_int("MR_BENCH_IMAP_SAMPLES", 100)
    boxes = env_int("MR_BENCH_IMAP_MAILBOXES", 100)
    role = os.environ.get("MR_BENCH_IMAP_ROLE", "bcc")
    every = os.environ.get("MR_BENCH_IMAP_APPEND_EVERY_ROUND", "") not in ("", "0")
    if role not in ("bcc", "support", "sales"):
        die("MR_BENCH_IMAP_ROLE=%s: want bcc, support or sales" % role)
    build = build_dir()
    for path in (os.path.join(build, "mailroomd"), os.path.join(build, "mailroomctl")):
        if not os.access(path, os.X_OK):
            die("%s missing: run make" % path)
    if not mrdovecot.available():
        die("Dovecot: %s (tools/deps.sh)" % mrdovecot.unavailable_reason())

    on_exit_kill_all()

    t_begin = time.monotonic()
    load_begin = loadavg()
    m_all0, own0 = machine_ticks(), own_ticks()
    work = tempfile.mkdtemp(prefix="mr-bench-imap-")
    os.chmod(work, 0o755)
    dc = None
    rng = random.Random(SEED)
    try:
        build = snapshot(build, work)
        users = (["drain%d" % r for r in range(1, rounds + 1)] + ["idle", "probe"]
                 + ["box%03d" % i for i in range(1, boxes + 1)])
        dc = mrdovecot.DovecotServer.start(users=users)
        dlog = DovecotLog(dc)
        ver = subprocess.run([dc.dovecot, "--version"], capture_output=True, text=True).stdout
        say("mailroom IMAP bench: %d messages of %d bytes per drain round, %d round(s); %d latency"
            " samples; %d mailboxes; role %s, after = \"seen\", SQLite synchronous = full; "
            "Dovecot %s; %d cores" % (n, SIZE, rounds, samples, boxes, role,
                                      ver.split()[0] if ver else "?", os.cpu_count() or 0))
        say("binaries: %s" % build.ident)
        say("load average %s; figures are noisy when other work shares the CPUs (column"
            " \"others\": CPUs busy with anything but mailroomd, Dovecot and this script)"
            % load_begin)

        # 1. drain
        t = time.monotonic()
        backlogs = prepare_backlogs(dc, rounds, n, every)
        if every:
            say("backlogs: appended %d x %d messages in %.1f s (append_many, %d threads)" % (
                rounds, n, time.monotonic() - t, rounds))
        else:
            say("backlogs: appended %d messages in %.1f s (append_many, 2 sessions); copied for"
                " the other %d round(s)" % (n, time.monotonic() - t, rounds - 1))
        say()
        phase = time.monotonic()
        say("1. drain of a backlog (after = seen): the plain imaplib client (the fetch limit),"
            " then mailroomd from its start")
        row = "%5s  %9s  %8s  %8s  %9s  %8s  %7s  %8s  %10s  %9s  %6s"
        say(row % ("round", "fetch/s", "dc µs", "others", "mr msgs/s", "seconds", "mr µs",
                   "dc µs", "1st batch", "batch med", "others"))
        drains = []
        for r in range(rounds):
            user, ids, uids = backlogs[r]
            res = drain_round(r + 1, build, work, dc, user, ids, uids, role)
            drains.append(res)
            say(row % (r + 1, "%.0f" % res["fetch_rate"], fmt(res["fetch_dovecot_us"]),
                       "%.2f" % res["fetch_others"], "%.0f" % res["rate"],
                       "%.2f" % res["seconds"], fmt(res["mr_us"]), fmt(res["dovecot_us"]),
                       "%.2f s" % res["first_batch"],
                       fmt(res["batch_median"] and ms(res["batch_median"]), "%.0f ms"),
                       "%.2f" % res["others"]))
            say("       (mailroomd VmHWM %.1f MiB; %d batches seen; longest interval between"
                " two %s)" % (res["hwm_kb"] / 1024, res["batches"],
                              fmt(res["batch_max"] and ms(res["batch_max"]), "%.0f ms")))
        show_dovecot("drain", dlog)
        del backlogs
        say("  (part 1: %.0f s)" % (time.monotonic() - phase))
        phase = time.monotonic()

        # 2. latency, one mailbox
        say()
        say("2. latency with IDLE, 1 mailbox: APPEND OK -> row in the database; Dovecot's own"
            " delay (idle_delay) after every %dth sample" % PROBE_EVERY)
        one = part_latency_one(build, work, dc, role, samples, rng)
        show_dovecot("latency, 1 mailbox", dlog)
        say("  (part 2: %.0f s)" % (time.monotonic() - phase))
        phase = time.monotonic()

        # 3. many mailboxes
        say()
        say("3. %d mailboxes in one mailroomd" % boxes)
        used = inotify_instances(dc.mail_uid)
        try:
            with open("/proc/sys/fs/inotify/max_user_instances") as f:
                limit = int(f.read())
        except OSError:
            limit = 128
        say("  inotify instances of Dovecot's mail user %s before: %d (limit %d; %d sessions in"
            " IDLE and a probe will add %d)" % (dc.mail_user, used, limit, boxes, boxes + 1))
        if used + boxes + 1 > limit:
            say("  !!! that is over the limit: Dovecot will poll every 30 s for some sessions;"
                " expect meaningless latencies")
        many = part_many(build, work, dc, role, boxes, samples, rng)
        show_dovecot("%d mailboxes" % boxes, dlog)
        say("  (part 3: %.0f s)" % (time.monotonic() - phase))

        summary(drains, one, many, rounds, n, boxes, role)
    except (BenchError, mrdovecot.DovecotError) as e:
        kill_all()
        die(str(e))
    except KeyboardInterrupt:
        kill_all()
        die("interrupted; cleaning up")
    finally:
        kill_all()
        if dc is not None and KEEP and dc.logfile:
            try:
                shutil.copy(dc.logfile, os.path.join(work, "dovecot.log"))
            except OSError:
                pass
        if dc is not None:
            try:
                dc.stop()
            except mrdovecot.DovecotError as e:
                print("bench-imap: %s" % e, file=sys.stderr, flush=True)
        if KEEP:
            print("bench-imap: kept %s (MR_BENCH_IMAP_KEEP)" % work, file=sys.stderr, flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t_begin
    busy = (machine_ticks() - m_all0) / TCK / elapsed
    say("elapsed: %.0f s; load average %s at the start, %s at the end; the whole machine was"
        " busy %.2f CPUs on average over the run (this script and its children: %.2f)"
        % (elapsed, load_begin, loadavg(), busy, (own_ticks() - own0) / TCK / elapsed))


def summary(drains, one, many, rounds, n, boxes, role):
    med = statistics.median

    def m(key):
        vals = [r[key] for r in drains if r[key] is not None]
        return med(vals) if vals else None

    def verdict(ok):
        return "yes" if ok else "NO"

    rate = m("rate")
    d1 = one["median"] - one["dc_median"]
    d2 = many["median"] - many["dc_median"]
    rss = max(many["rss0_kb"], many["rss1_kb"]) / 1024
    rows = [
        ("1. drain: plain imaplib fetch limit", "%.0f msgs/s" % m("fetch_rate"), "", ""),
        ("1. drain: mailroomd, start to all stored", "%.0f msgs/s" % rate, ">= %d msgs/s"
         % TARGET_RATE, verdict(rate >= TARGET_RATE)),
        ("   best round (the least disturbed, often)", "%.0f msgs/s" % max(
            r["rate"] for r in drains), "", ""),
        ("   steady state: 200 / median batch interval", fmt(m("batch_median") and
                                                             200 / m("batch_median"),
                                                             "%.0f msgs/s"), "", ""),
        ("   mailroomd rate as % of the fetch limit", "%.1f %%" % med(
            [100 * r["rate"] / r["fetch_rate"] for r in drains]), "", ""),
        ("   mailroomd CPU per message", "%.1f µs" % m("mr_us"), "", ""),
        ("   Dovecot CPU per message (mailroomd's drain)", "%.1f µs" % m("dovecot_us"), "", ""),
        ("   Dovecot CPU per message (plain fetch)", "%.1f µs" % m("fetch_dovecot_us"), "", ""),
        ("   time to the first committed batch", "%.2f s" % m("first_batch"), "", ""),
        ("   interval between batches of 200", "%s" % fmt(m("batch_median") and
                                                          ms(m("batch_median")), "%.0f ms"),
         "", ""),
        ("   mailroomd VmHWM (drain)", "%.1f MiB" % (m("hwm_kb") / 1024), "", ""),
        ("2. 1 mailbox: mailroomd latency median", "%.0f ms" % ms(one["median"]), "", ""),
        ("   Dovecot's own IDLE delay median", "%.0f ms" % ms(one["dc_median"]), "", ""),
        ("   difference of medians", "%+.0f ms" % ms(d1), "<= %d ms" % TARGET_ABOVE_MS,
         verdict(ms(d1) <= TARGET_ABOVE_MS)),
        ("   mailroomd latency max", "%.0f ms" % ms(one["max"]), "< %d ms" % TARGET_MAX_MS,
         verdict(ms(one["max"]) < TARGET_MAX_MS)),
        ("   Dovecot's own IDLE delay max", "%.0f ms" % ms(one["dc_max"]), "", ""),
        ("3. %d mailboxes: all idle after" % boxes, "%.2f s" % many["connect_s"], "", ""),
        ("   mailroomd latency median", "%.0f ms" % ms(many["median"]), "", ""),
        ("   Dovecot's own IDLE delay median", "%.0f ms" % ms(many["dc_median"]), "", ""),
        ("   difference of medians", "%+.0f ms" % ms(d2), "<= %d ms" % TARGET_ABOVE_MS,
         verdict(ms(d2) <= TARGET_ABOVE_MS)),
        ("   mailroomd latency max", "%.0f ms" % ms(many["max"]), "< %d ms" % TARGET_MAX_MS,
         verdict(ms(many["max"]) < TARGET_MAX_MS)),
        ("   Dovecot's own IDLE delay max", "%.0f ms" % ms(many["dc_max"]), "", ""),
        ("   mailroomd VmRSS, all connected", "%.1f MiB" % rss, "<= %d MiB" % TARGET_RSS_MB,
         verdict(rss <= TARGET_RSS_MB)),
        ("   mailroomd VmHWM", "%.1f MiB" % (many["hwm_kb"] / 1024), "<= %d MiB"
         % TARGET_RSS_MB, verdict(many["hwm_kb"] / 1024 <= TARGET_RSS_MB)),
        ("   mailroomd threads", "%d" % many["threads"], "", ""),
        ("   SIGTERM to exit, all connected", "%.2f s" % many["stop_s"], "", ""),
        ("load: others during the drains (median)", "%.2f CPUs" % m("others"), "", ""),
        ("load: others during latency, 1 mailbox", "%.2f CPUs" % one["others"], "", ""),
        ("load: others during latency, %d mailboxes" % boxes, "%.2f CPUs" % many["others"],
         "", ""),
        ("warning lines in mailroomd's logs", "%d" % (sum(r["warnings"] for r in drains)
                                                     + one["warnings"] + many["warnings"]),
         "", ""),
    ]
    say()
    say("summary (medians over %d drain round(s) of %d messages; role %s):" % (rounds, n, role))
    w = max(len(r[0]) for r in rows)
    say("%-*s  %14s  %16s  %s" % (w, "figure", "value", "target", "met"))
    for name, value, target, ok in rows:
        say(("%-*s  %14s  %16s  %s" % (w, name, value, target, ok)).rstrip())
    say("(targets are printed, not enforced; every message was checked: stored once, none"
        " missing)")


if __name__ == "__main__":
    main()
