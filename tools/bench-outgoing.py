#!/usr/bin/env python3
"""bench-outgoing - `make bench`: outgoing mail (issue 23).  10,000 ticket
acknowledgements queued at once, sent through Postfix's smtp-sink as the
relay, beside Postfix's own smtp-source into the same smtp-sink in the same
run.  Target: >= 2,000 mails/s on SQLite and on PostgreSQL.

One smtp-sink for the whole run (`smtp-sink -c -u nobody 127.0.0.1:PORT
256`, a free port; -c: its running counters on stdout, read back from a
file: "mesg=N" counts the mails it took).  Each round runs, one after the
other (MR_BENCH_ROUNDS, default 3):

  sqlite      a fresh SQLite database: `mailroomctl init`, mailroomd started
              with relay = { host = "127.0.0.1"; port = SINK; tls = "none"; },
              the acknowledgement on (the default), and
              outgoing.max_auto_per_recipient_per_day high (each customer
              writes from an address of their own anyway);
              then ONE `mailroomctl deliver --to support@acme.test FILE...`
              of N small customer mails (MR_BENCH_ACKS, default 10,000), each
              from a different sender: N tickets created in one delivery
              batch (mailroomctl's group commit), each ticket.created making
              a "ticket-ack" job in the same transaction.  mailroomd notices
              the jobs (PRAGMA data_version, once a second), its scheduler
              composes and queues each acknowledgement, its outbox sends them.
  postgresql  the same on a private PostgreSQL cluster (tests/integration/
              mrpg.py; a fresh database each round; LISTEN/NOTIFY).
  smtp-source the baseline: `smtp-source -d -s 1 -m N -l SIZE` into the same
              smtp-sink (one session, one connection, as mailroomd's one
              kept-open connection), SIZE the mean size of the
              acknowledgements of the first run.

Timing.  `mailroomctl deliver` of 10,000 mails takes seconds (it is
ingestion: parse, route, store), and a running mailroomd starts on the
first jobs while deliver still commits the last ones, so "queued at once"
needs mailroomd held back meanwhile.  Two modes (MR_BENCH_MODES, default
"held"; "held,live" runs both, interleaved):

  held  mailroomd runs (started, its first look at the jobs done, idle),
        is stopped with SIGSTOP while deliver runs, and continued with
        SIGCONT when deliver has exited (after its last commit: every job
        exists).  The clock starts at the SIGCONT: this is the figure
        against the target.  (The first look after SIGCONT comes at once:
        SQLite's once-a-second data_version timer is overdue by then, and
        PostgreSQL's notifications wait on the socket.)
  live  mailroomd runs meanwhile; the clock starts when deliver ends, with
        part of the work done (@end below): flattering, shown for the
        overlap of ingestion and sending.

The benchmark polls the database itself every 50 ms, not through
mailroomctl:

    SELECT count(*), sum(status = 'sent') FROM outbox

(a read-only sqlite3 connection; on PostgreSQL a minimal client of the wire
protocol in this file, one connection kept open, whose backend's CPU is
left out of the figures).  Reported:

  deliver s   the `mailroomctl deliver` run (ingestion, not the benchmark);
  @end q/s    acknowledgements already queued / sent when the clock started
              (0/0 when held);
  queued s    clock start -> every acknowledgement in the outbox (composed
              and queued by the scheduler's jobs);
  sent@q      how many were sent by then (the outbox works while the
              scheduler still queues);
  sent s      clock start -> every one sent (the outbox row "sent");
  mails/s     N / sent s: the figure against the target (jobs queued ->
              sent, end to end);
  e2e/s       N / (deliver's start -> all sent), ingestion included;
  send/s      the outbox's steady rate: sent mails per second between 10 %
              and 90 % sent;
  mailroomd   its CPU (utime + stime of all threads, /proc/PID/stat) from
              the clock's start to all sent (live: from deliver's start),
              per mail, µs; it does no ingestion (deliver writes the
              database itself), so this is the cost of claiming, composing,
              queueing, sending, recording; the summary splits it by thread
              (main loop: the scheduler; mr-writer: every unit of the
              writer, the composing included; outbox: the sender);
  postgres    the CPU of mailroomd's own backends over the same span (the
              backends of the benchmark's database alive at the end, but the
              poller's; deliver's are gone by then), per mail, µs;
  sink        smtp-sink's CPU per mail, µs (the same sink for everyone).

For smtp-source: its seconds, msgs/s, and its own CPU per message (the
benchmark's children time: it reaps smtp-source) beside the sink's.

Correctness, after each run (or the benchmark fails): mailroomctl deliver
exits 0; the sink counted exactly N more mails; the outbox holds N rows,
all "sent", each with attempts = 1 (none sent twice, none retried); N
jobs, all done, besides the workflow timers that wait (each new ticket
starts a first-response-sla timer, due hours later); mailroomd exits 0 on
SIGTERM.

The summary gives medians over the rounds per engine and the baseline, and
says whether the target is met.  Figures, not a test: the exit code says
only whether something went wrong (the target missed is not).  The
machine's speed drifts: compare CPU per mail rather than rates, and
medians rather than single rounds.  MR_BENCH_ENGINES="sqlite" runs one
engine; MR_DEBUG_LOG=1 runs mailroomd with G_MESSAGES_DEBUG=all (the
writer's "batch messages=N apply_us commit_us" lines time every group
commit) and leaves the work folder (the logs) in place.

Standard library only, as the other benchmarks; helpers from tools/mrbench.py
and tools/bench-storage.py.
"""
import importlib.util
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from mrbench import (BenchError, CONFIG, READY, ROOT, START_TIMEOUT, TCK, _die_with_parent,
                     build_dir, cpu_ticks, die, env_int, fmt, kill_all, loadavg,
                     on_exit_kill_all, stat_fields)
import mrbench

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import mrpg  # noqa: E402
from mrproc import free_port  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "bench_storage", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-storage.py"))
storage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(storage)

SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
TARGET = 2000             # mails/s, issue 23
POLL = 0.05               # seconds between looks at the outbox
IDLE = 0.5                # seconds after mailroomd's start before SIGSTOP
STALL = 120               # seconds without progress: the run failed
DEFAULT_SIZE = 1500       # smtp-source's -l before an acknowledgement was measured
ENGINES = ("sqlite", "postgresql")
MODES = ("held", "live")
LABEL = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "source": "smtp-source (baseline)"}
COUNTS = ("SELECT count(*), coalesce(sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0)"
          " FROM outbox")
MESG = re.compile(rb"mesg=(\d+)")


# --- smtp-sink ------------------------------------------------------------------

class Sink:
    """Postfix's smtp-sink on a free port of 127.0.0.1, counting (-c)."""

    def __init__(self, work):
        self.out = os.path.join(work, "smtp-sink.out")
        self.proc = None
        self.port = None
        for _ in range(5):
            self.port = free_port()
            cmd = [SINK, "-c"] + (["-u", "nobody"] if os.geteuid() == 0 else []) + \
                  ["127.0.0.1:%d" % self.port, "256"]
            with open(self.out, "wb") as f:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                             stderr=subprocess.STDOUT,
                                             preexec_fn=_die_with_parent)
            mrbench._daemons.append(self.proc)     # kill_all() ends it
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise BenchError("smtp-sink did not start: %s" % self.text()[-500:])

    def text(self):
        try:
            with open(self.out, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def count(self):
        """Mails taken so far (the last "mesg=N" of its counters)."""
        with open(self.out, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 200))
            found = MESG.findall(f.read())
        return int(found[-1]) if found else 0

    def settled_count(self, want, timeout=10):
        """count(), once it reached @want or stopped moving."""
        deadline, last = time.monotonic() + timeout, -1
        while time.monotonic() < deadline:
            c = self.count()
            if c >= want or c == last:
                return c
            last = c
            time.sleep(0.1)
        return self.count()

    def ticks(self):
        return cpu_ticks(self.proc.pid)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in mrbench._daemons:
            mrbench._daemons.remove(self.proc)


# --- looking at the outbox ----------------------------------------------------------

class SqlitePoll:
    def __init__(self, path):
        self.con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
        self.pid = None

    def query(self, sql):
        return [tuple(int(v) if isinstance(v, int) else v for v in row)
                for row in self.con.execute(sql).fetchall()]

    def close(self):
        self.con.close()


class PgPoll:
    """The least of PostgreSQL's wire protocol (v3, trust authentication,
    simple queries): one connection kept open, so that polling every 50 ms
    costs a query, not a psql process and a backend each.  pid: its
    backend's (BackendKeyData), left out of the CPU figures."""

    def __init__(self, port, db, user=mrpg.USER):
        self.sock = socket.create_connection((mrpg.HOST, port), timeout=30)
        self.buf = b""
        self.pid = None
        params = b"".join(k + b"\0" + v + b"\0" for k, v in (
            (b"user", user.encode()), (b"database", db.encode()),
            (b"application_name", b"bench-outgoing"))) + b"\0"
        self.sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        self._until_ready()

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("PostgreSQL closed the poller's connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _message(self):
        kind, length = struct.unpack("!ci", self._read(5))
        return kind, self._read(length - 4)

    def _until_ready(self):
        rows, error = [], None
        while True:
            kind, body = self._message()
            if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                raise BenchError("PostgreSQL wants a password from the poller")
            if kind == b"K":
                self.pid = struct.unpack("!i", body[:4])[0]
            elif kind == b"D":
                ncols, pos, row = struct.unpack("!h", body[:2])[0], 2, []
                for _ in range(ncols):
                    n = struct.unpack("!i", body[pos:pos + 4])[0]
                    pos += 4
                    if n < 0:
                        row.append(None)
                    else:
                        row.append(body[pos:pos + n].decode())
                        pos += n
                rows.append(tuple(row))
            elif kind == b"E":
                error = body.replace(b"\0", b" ").decode("utf-8", "replace")
            elif kind == b"Z":
                if error:
                    raise BenchError("PostgreSQL: %s" % error)
                return rows

    def query(self, sql):
        q = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!i", 4 + len(q)) + q)
        return [tuple(int(v) if v is not None and re.fullmatch(r"-?\d+", v) else v
                      for v in row) for row in self._until_ready()]

    def close(self):
        try:
            self.sock.sendall(b"X" + struct.pack("!i", 4))
        except OSError:
            pass
        self.sock.close()


def backend_ticks(postmaster, db, skip):
    """{pid: CPU ticks} of the live backends of database @db but @skip."""
    out = {}
    prefix = ("postgres: %s %s " % (mrpg.USER, db)).encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == skip:
            continue
        f = stat_fields(int(name))
        if f is None or int(f[1]) != postmaster:
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as c:
                if not c.read().startswith(prefix):
                    continue
        except OSError:
            continue
        out[int(name)] = int(f[11]) + int(f[12])
    return out


# --- mailroomd ------------------------------------------------------------------------

class Daemon(mrbench.Daemon):
    def __init__(self, build, directory, database, sink_port, n, spool=None):
        super().__init__(
            build, directory,
            'database = "%s";\n' % database
            + ('spool_directory = "%s";\n' % spool if spool else "")
            + CONFIG
            + 'relay = { host = "127.0.0.1"; port = %d; tls = "none";'
              ' from = "Acme Support <support@acme.test>"; };\n' % sink_port
            + 'outgoing = { max_auto_per_recipient_per_day = %d; };\n' % min(100000, max(10, n))
            + 'ack = { enabled = true; template = "ticket-ack"; };\n')

    def start(self):
        if os.environ.get("MR_DEBUG_LOG"):
            os.environ["G_MESSAGES_DEBUG"] = "all"
        self.spawn()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if READY.search(self.log()):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise BenchError("mailroomd did not start:\n%s" % self.log()[-3000:])


def make_mails(folder, n):
    """@n small customer mails, each from an address of its own (and 50
    companies' domains); returns their paths."""
    os.makedirs(folder)
    paths = []
    for i in range(n):
        p = os.path.join(folder, "%05d.eml" % i)
        with open(p, "w") as f:
            f.write("From: Customer %d <customer%d@shop%d.test>\r\n"
                    "To: Acme Support <support@acme.test>\r\n"
                    "Subject: Order %d: where is my parcel?\r\n"
                    "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
                    "Message-ID: <order%d.%d@shop%d.test>\r\n"
                    "MIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                    "Hello,\r\n\r\nI ordered item %d a week ago and it has not arrived.\r\n"
                    "Could you have a look?\r\n\r\nThanks,\r\nCustomer %d\r\n"
                    % (i, i, i % 50, 10000 + i, i, os.getpid(), i % 50, 500 + i, i))
        paths.append(p)
    return paths


def timeline_rate(samples, n, lo=0.1, hi=0.9):
    """Sent mails per second between @lo and @hi of @n sent, from the
    poller's (seconds, queued, sent) samples; None when too few."""
    a = next((s for s in samples if s[2] >= lo * n), None)
    b = next((s for s in samples if s[2] >= hi * n), None)
    if a is None or b is None or b[0] <= a[0]:
        return None
    return (b[2] - a[2]) / (b[0] - a[0])


PGSS = os.environ.get("MR_BENCH_PGSS") == "1"


def thread_ticks(pid):
    """{thread name: CPU ticks} of @pid's threads (/proc/PID/task)."""
    out = {}
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/stat" % (pid, t), "rb") as f:
                v = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        name = "main" if t == str(pid) else name
        out[name] = out.get(name, 0) + int(v[11]) + int(v[12])
    return out


def pause(pid):
    """SIGSTOP @pid once it is idle (its first look at the jobs is done)."""
    time.sleep(IDLE)
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        f = stat_fields(pid)
        if f is None or f[0] == b"T":
            return
        time.sleep(0.01)
    raise BenchError("mailroomd %d did not stop on SIGSTOP" % pid)


def measure(engine, mode, rnd, build, work, mails, n, sink, pg):
    """One run of @engine in @mode ("held": mailroomd stopped while deliver
    runs, "live": not); returns the figures."""
    held = mode == "held"
    d = os.path.join(work, "%s-%s-%d" % (engine, mode, rnd))
    os.makedirs(d)
    dbname = None
    if engine == "sqlite":
        db = os.path.join(d, "mailroom.db")
        daemon = Daemon(build, os.path.join(d, "mailroomd"), db, sink.port, n)
    else:
        dbname = "outgoing_%s_%d" % (mode, rnd)
        pg.createdb(dbname)
        spool = os.path.join(d, "spool")
        os.makedirs(spool)
        daemon = Daemon(build, os.path.join(d, "mailroomd"), pg.uri(dbname), sink.port, n, spool)
    daemon.init()
    daemon.start()
    poll = SqlitePoll(db) if engine == "sqlite" else PgPoll(pg.port, dbname)
    if PGSS and engine != "sqlite":
        poll.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    try:
        if engine != "sqlite":
            pg.psql("CHECKPOINT")
            deadline = time.monotonic() + 10
            while storage.closing_backends(pg.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            be0 = backend_ticks(pg.pid, dbname, poll.pid)
        if held:
            pause(daemon.proc.pid)
        else:
            sink0, sinkcpu0, mr0 = sink.count(), sink.ticks(), cpu_ticks(daemon.proc.pid)
            th0 = thread_ticks(daemon.proc.pid)
        t0 = time.monotonic()
        try:
            p = subprocess.run([os.path.join(build, "mailroomctl"), "-c", daemon.conf,
                                "deliver", "--to", "support@acme.test"] + mails,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=1800)
        finally:
            if held:
                if engine != "sqlite":
                    # deliver's backends end: only mailroomd's are left
                    deadline = time.monotonic() + 10
                    while (len(backend_ticks(pg.pid, dbname, poll.pid)) > len(be0)
                           and time.monotonic() < deadline):
                        time.sleep(0.02)
                    be0 = backend_ticks(pg.pid, dbname, poll.pid)
                sink0, sinkcpu0, mr0 = sink.count(), sink.ticks(), cpu_ticks(daemon.proc.pid)
                th0 = thread_ticks(daemon.proc.pid)
                if PGSS and engine != "sqlite":
                    poll.query("SELECT pg_stat_statements_reset()")
                os.kill(daemon.proc.pid, signal.SIGCONT)
        t1 = time.monotonic()
        if p.returncode != 0:
            raise BenchError("mailroomctl deliver failed (exit %d): %s" % (
                p.returncode, p.stderr.decode("utf-8", "replace")[-2000:]))
        q_end, s_end = poll.query(COUNTS)[0]
        samples = [(0.0, q_end, s_end)]
        t_queued = t1 if q_end >= n else None
        sent_at_queued = s_end if q_end >= n else None
        last_progress, last = t1, (q_end, s_end)
        while True:
            time.sleep(POLL)
            now = time.monotonic()
            q, s = poll.query(COUNTS)[0]
            samples.append((now - t1, q, s))
            if t_queued is None and q >= n:
                t_queued, sent_at_queued = now, s
            if s >= n:
                t_sent = now
                break
            if (q, s) != last:
                last, last_progress = (q, s), now
            elif now - last_progress > STALL:
                raise BenchError("%s %s round %d: no progress for %d s (%d queued, %d sent of "
                                 "%d):\n%s" % (engine, mode, rnd, STALL, q, s, n,
                                            "\n".join(daemon.log().splitlines()[-10:])))
        mr1 = cpu_ticks(daemon.proc.pid)
        th1 = thread_ticks(daemon.proc.pid)
        sinkcpu1 = sink.ticks()
        pg_ticks = None
        if engine != "sqlite":
            be1 = backend_ticks(pg.pid, dbname, poll.pid)
            pg_ticks = sum(v - be0.get(pid, 0) for pid, v in be1.items())
        if PGSS and engine != "sqlite":
            print_statements(poll, n)
        checks = poll.query(
            "SELECT (SELECT count(*) FROM outbox),"
            " (SELECT count(*) FROM outbox WHERE status = 'sent' AND attempts = 1),"
            " (SELECT count(*) FROM job WHERE kind = 'ticket-ack' AND status = 'done'),"
            # each ticket also starts a first-response-sla timer (schema
            # 11), due hours later: the timers that wait are not jobs run
            " (SELECT count(*) FROM job WHERE NOT (kind = 'workflow' AND status = 'due')),"
            " (SELECT round(avg(m.size)) FROM outbox o JOIN message m ON m.id = o.message_id)")[0]
    finally:
        poll.close()
    daemon.stop()
    got = sink.settled_count(sink0 + n) - sink0
    rows, once, jobs_done, jobs, size = checks
    what = "%s %s round %d" % (LABEL[engine], mode, rnd)
    if got != n:
        raise BenchError("%s: the sink took %d mails, want %d" % (what, got, n))
    if rows != n or once != n:
        raise BenchError("%s: the outbox holds %d mails, %d of them sent at the first attempt; "
                         "want %d" % (what, rows, once, n))
    if jobs != n or jobs_done != n:
        raise BenchError("%s: %d jobs, %d ticket-ack done; want %d" % (what, jobs, jobs_done, n))
    if dbname is not None:
        pg.dropdb(dbname)
    if not os.environ.get("MR_DEBUG_LOG"):
        shutil.rmtree(d, ignore_errors=True)
    sent_s = t_sent - t1
    return {
        "deliver": t1 - t0,
        "at_end": (q_end, s_end),
        "queued": t_queued - t1,
        "sent_at_queued": sent_at_queued,
        "sent": sent_s,
        "rate": n / sent_s,
        "e2e": n / (t_sent - t0),
        "send": timeline_rate(samples, n),
        "mr_us": (mr1 - mr0) * 1e6 / TCK / n,
        "pg_us": pg_ticks * 1e6 / TCK / n if pg_ticks is not None else None,
        "sink_us": (sinkcpu1 - sinkcpu0) * 1e6 / TCK / n,
        "size": int(size),
        "threads": {k: (v - th0.get(k, 0)) * 1e6 / TCK / n for k, v in th1.items()
                    if v - th0.get(k, 0) > 0},
    }


def print_statements(poll, n):
    """MR_BENCH_PGSS=1: the statements mailroomd ran since the clock's
    start, from pg_stat_statements (the server started with
    MR_PG_SERVER_OPTS="-c shared_preload_libraries=pg_stat_statements"),
    by total time: calls per mail and µs per mail."""
    rows = poll.query(
        "SELECT calls, round(total_exec_time * 1000), rows,"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 110)"
        " FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'"
        " AND query NOT LIKE '%FROM outbox),%'"
        " ORDER BY total_exec_time DESC LIMIT 25")
    calls = sum(r[0] for r in poll.query(
        "SELECT calls FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'"
        " AND query NOT LIKE '%FROM outbox),%'"))
    print("# statements: %.2f a mail in all" % (calls / n))
    for c, us, r, q in rows:
        print("# %6.2f/mail %7.1f us/mail %7d rows  %s" % (c / n, int(us) / n, r, q))


def baseline(n, size, sink):
    """smtp-source -d -s 1 -m @n -l @size into the sink: one session."""
    sink0, sinkcpu0, c0 = sink.count(), sink.ticks(), os.times()
    t0 = time.monotonic()
    p = subprocess.run([SOURCE, "-d", "-s", "1", "-m", str(n), "-l", str(size),
                        "-f", "support@acme.test", "-t", "customer@shop.test",
                        "127.0.0.1:%d" % sink.port],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=1800)
    t1 = time.monotonic()
    c1, sinkcpu1 = os.times(), sink.ticks()
    if p.returncode != 0 or p.stderr.strip():
        raise BenchError("smtp-source failed (exit %d): %s" % (
            p.returncode, p.stderr.decode("utf-8", "replace")[-1000:]))
    got = sink.settled_count(sink0 + n) - sink0
    if got != n:
        raise BenchError("smtp-source: the sink took %d mails, want %d" % (got, n))
    client = c1.children_user + c1.children_system - c0.children_user - c0.children_system
    return {"sent": t1 - t0, "rate": n / (t1 - t0), "mr_us": client * 1e6 / n,
            "sink_us": (sinkcpu1 - sinkcpu0) * 1e6 / TCK / n, "size": size}


ROW = "%5s  %-27s  %7s  %9s  %6s  %6s  %6s  %7s  %6s  %6s  %9s  %8s  %5s"


def label(key):
    """"sqlite held" -> "SQLite, held"; "source" -> the baseline's."""
    engine, _, mode = key.partition(" ")
    return LABEL[engine] + (", " + mode if mode else "")


def print_row(rnd, key, r):
    at = r.get("at_end")
    print(ROW % (rnd, label(key), fmt(r.get("deliver"), "%.2f"),
                 "%d/%d" % at if at else "", fmt(r.get("queued"), "%.2f"),
                 fmt(r.get("sent_at_queued"), "%d"), "%.2f" % r["sent"],
                 "%.0f" % r["rate"], fmt(r.get("e2e"), "%.0f"), fmt(r.get("send"), "%.0f"),
                 fmt(r["mr_us"]), fmt(r.get("pg_us")), fmt(r["sink_us"], "%.0f")), flush=True)


def env_choice(name, allowed, default):
    v = os.environ.get(name, "").strip()
    if not v:
        return default
    want = [x.strip().lower() for x in v.split(",") if x.strip()]
    if not want or any(x not in allowed for x in want):
        die("%s=%s: want some of %s, separated by commas" % (name, v, ",".join(allowed)))
    return tuple(x for x in allowed if x in want)


def main():
    n = env_int("MR_BENCH_ACKS", 10000)
    rounds = env_int("MR_BENCH_ROUNDS", 3)
    engines = env_choice("MR_BENCH_ENGINES", ENGINES, ENGINES)
    modes = env_choice("MR_BENCH_MODES", MODES, ("held",))
    build = build_dir()
    for path in (SINK, SOURCE, os.path.join(build, "mailroomd"),
                 os.path.join(build, "mailroomctl")):
        if not os.access(path, os.X_OK):
            die("%s missing: run make deps, make" % path)
    if "postgresql" in engines and not mrpg.available():
        die("PostgreSQL: %s (run make deps)" % mrpg.unavailable_reason())
    on_exit_kill_all()
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="mr-bench-outgoing-")
    os.chmod(work, 0o755)
    pg = sink = None
    keys = ["%s %s" % (e, m) for m in modes for e in engines]
    results = {k: [] for k in keys + ["source"]}
    try:
        sink = Sink(work)
        if "postgresql" in engines:
            pg = mrpg.PgCluster.start()
        mails = make_mails(os.path.join(work, "mails"), n)
        print("mailroom outgoing bench: %d acknowledgements queued at once (one mailroomctl "
              "deliver of %d new tickets), sent through smtp-sink 127.0.0.1:%d; %d cores; "
              "%d round(s) of %s, smtp-source" % (n, n, sink.port, os.cpu_count() or 0, rounds,
                                                  ", ".join(label(k) for k in keys)), flush=True)
        print("load average %s.  held: mailroomd stopped (SIGSTOP) while deliver runs, the "
              "clock starts at its SIGCONT; live: it runs meanwhile, the clock starts when "
              "deliver ends.  @end: queued/sent then; queued, sent: seconds to all queued, all "
              "sent; sent@q: sent when all were queued; mails/s = N / sent; e2e/s = N / (deliver's start -> all sent); send/s: "
              "the outbox's steady rate (10-90 %% sent); CPU: µs per mail" % loadavg(),
              flush=True)
        print(ROW % ("round", "run", "deliver", "@end q/s", "queued", "sent@q", "sent", "mails/s",
                     "e2e/s", "send/s", "mailroomd", "postgres", "sink"), flush=True)
        size = None
        for rnd in range(1, rounds + 1):
            for k in keys:
                engine, mode = k.split(" ")
                r = measure(engine, mode, rnd, build, work, mails, n, sink, pg)
                size = size or r["size"]
                results[k].append(r)
                print_row(rnd, k, r)
            r = baseline(n, size or DEFAULT_SIZE, sink)
            results["source"].append(r)
            print_row(rnd, "source", r)
        summary(results, rounds, keys, n)
    except (BenchError, mrpg.PgError) as e:
        kill_all()
        die(str(e))
    except KeyboardInterrupt:
        kill_all()
        die("interrupted; cleaning up")
    finally:
        kill_all()
        if sink is not None:
            sink.stop()
        if pg is not None:
            pg.stop()
        if os.environ.get("MR_DEBUG_LOG"):
            print("work folder kept: %s" % work, flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("elapsed: %.0f s; load average %s" % (time.monotonic() - t0, loadavg()), flush=True)


def summary(results, rounds, keys, n):
    med = statistics.median

    def m(runs, key):
        v = [r[key] for r in runs if r.get(key) is not None]
        return med(v) if v else None

    print()
    print("medians over %d round(s), %d mails each (CPU µs per mail: mailroomd's; for "
          "smtp-source, the client's own):" % (rounds, n))
    print("%-27s  %8s  %6s  %7s  %6s  %6s  %9s  %8s  %5s  %5s" % (
        "", "queued s", "sent s", "mails/s", "e2e/s", "send/s", "mailroomd", "postgres", "sink",
        "bytes"))
    src = m(results["source"], "rate")
    for k in keys + ["source"]:
        runs = results[k]
        print("%-27s  %8s  %6.2f  %7.0f  %6s  %6s  %9.1f  %8s  %5.0f  %5d" % (
            label(k), fmt(m(runs, "queued"), "%.2f"), m(runs, "sent"), m(runs, "rate"),
            fmt(m(runs, "e2e"), "%.0f"), fmt(m(runs, "send"), "%.0f"), m(runs, "mr_us"),
            fmt(m(runs, "pg_us")), m(runs, "sink_us"), runs[0]["size"]))
    print()
    print("mailroomd's CPU by thread, µs per mail (medians; main: the main loop, where the "
          "scheduler runs; mr-writer: every unit of the writer, the composing of the "
          "acknowledgements included; outbox: the sender):")
    for k in keys:
        names = sorted({t for r in results[k] for t in r["threads"]},
                       key=lambda t: -med(r["threads"].get(t, 0) for r in results[k]))
        print("  %-25s %s" % (label(k), ", ".join(
            "%s %.0f" % (t, med(r["threads"].get(t, 0) for r in results[k])) for t in names
            if med(r["threads"].get(t, 0) for r in results[k]) >= 1)))
    print()
    for k in keys:
        rate = m(results[k], "rate")
        print("target >= %d mails/s, %s: %s (%.0f mails/s; smtp-source %.0f msgs/s into the "
              "same sink)" % (TARGET, label(k), "met" if rate >= TARGET else "NOT met", rate,
                              src))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
