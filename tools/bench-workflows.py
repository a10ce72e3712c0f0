#!/usr/bin/env python3
"""bench-workflows - `make bench`: workflows in time (issue 24).  Two
parts, each on SQLite and on PostgreSQL:

  pending   100,000 follow-up timers waiting in one database, due days
            ahead: mailroomd's start-up time, its memory, and what it costs
            while nothing is due.  Target: no measurable CPU, no polling.
  due       10,000 follow-ups falling due at once, sent through Postfix's
            smtp-sink as the relay: mails/s.  Target: >= 2,000 mails/s.

The databases.  Each (engine, size) is made once, then copied for every run
(SQLite: the file; PostgreSQL: CREATE DATABASE ... TEMPLATE, the template
VACUUM ANALYZEd once).  With mailroom's clock (testing.clock_offset) on
Thursday 2027-01-07 10:00 UTC:
  1. `mailroomctl init` (the built-in workflows; follow-up is --after 3d
     --business --since response.sent --unless reply.received --unless
     mail.bounced --repeat 2 --if 'record = opportunity' --if 'status =
     open' --then 'send follow-up') and 10 users (`user add`);
  2. N mails, each from a user to a customer of its own, BCC'd to
     crm@acme.test (`mailroomctl deliver --to crm@acme.test`, 10,000 files
     a run; on PostgreSQL two deliver side by side, split by the
     customers' domain, MR_BENCH_DELIVER_JOBS): N contacts, each an
     address of its own (1,000 domains, so 1,000 accounts), owned by the
     user who wrote;
  3. N opportunities, one per contact, owned by the contact's owner: the
     first with `mailroomctl opp add`, the others by SQL as opp add writes
     them, its row and its opportunity.created event (opp add runs at
     about 50 a second: half an hour for 100,000).  Checked: every table
     grew by N - 1 times what the one opp add added to it, and every
     opportunity and its event have the same shape as opp add's
     (defaults, the contact's account and owner, the event's columns);
  4. N offers "[OPP-k] Our offer", each from the opportunity's owner to its
     contact, BCC'd to crm@ (`mailroomctl deliver` again): mailroom links
     each to its opportunity, writes response.sent and starts the
     follow-up timer itself (a job of kind 'workflow', status 'due', due
     Tuesday 2027-01-12 10:00 UTC, 3 business days later in the default
     calendar).  Checked: exactly N jobs, all follow-up timers of round 0,
     due before the clock of the "due" part; the outbox empty.
The seconds each took are printed (they are not figures of the benchmark).

mailroomd runs with relay = { host = "127.0.0.1"; port = SINK; tls =
"none"; } (one smtp-sink for the whole run: `smtp-sink -c -u nobody
127.0.0.1:PORT 256`, its counter "mesg=N" read back from its output) and
outgoing.max_auto_per_recipient_per_day = 100000.

pending (MR_BENCH_TIMERS, default 100,000), mailroomd's clock on Friday
2027-01-08 12:00 (nothing falls due before Tuesday; its timer waits an hour
at most):
  start s     exec of mailroomd -> its ready line ("listening smtp ...",
              tests/integration/mrdaemon.py's READY; the log polled every
              2 ms);
  settled s   exec -> mailroomd quiet (its CPU unchanged for 0.5 s: the
              scheduler's first look at the jobs is over);
  start ms    mailroomd's CPU from exec to settled (a tick is 10 ms);
  RSS MB      VmRSS once settled (VmHWM, the peak, in the summary);
  then an idle window of MR_BENCH_IDLE_S seconds (default 30), nothing
  attached:
  cpu ms      mailroomd's CPU over the window (utime + stime of all its
              threads, /proc/PID/stat);
  wake/s      its wakeups a second: the voluntary context switches of all
              its threads (/proc/PID/task/*/status), each the end of a
              wait; printed by thread below the row, with each thread's CPU;
  pg ms       the CPU of mailroomd's PostgreSQL backends over the window;
  pg wake/s   their voluntary context switches a second;
  in round 1, a second window of the same length under `strace -C -f -p
  PID` (when strace is installed; MR_BENCH_STRACE=0 leaves it out):
  sys/s       system calls a second, all threads;
  waits/s     waits that returned, a second (poll, ppoll, epoll_wait,
              select, futex WAIT, nanosleep, restart_syscall); below the
              row, each thread's waits and the timeouts its polls asked for
              (the most frequent is the period of the timer that wakes it),
              and strace's summary (calls per system call);
  stop s      SIGTERM -> exit.
  Beside it, "empty": the same mailroomd on a database with no record and
  no timer (init and the users only): start s, settled s, start ms, RSS.
  Checked: nothing queued, nothing sent, no job claimed, the N timers due.

due (MR_BENCH_FOLLOWUPS, default 10,000): mailroomd starts with its clock
on Monday 2027-01-11 16:00 (nothing due) and settles; the benchmark
rewrites its config with the clock on Tuesday 2027-01-12 12:00 (every timer
past due) and sends SIGHUP (the reload makes the scheduler look at once).
The clock starts at the SIGHUP.  The scheduler claims the timers (50 a
claim), counts each one's due time again in the calendar, checks the
conditions on the opportunity, composes the follow-up (template follow-up,
from the owner, to the contact, threaded to the offer) on GLib's pool,
queues it and starts the second timer (--repeat 2); the outbox sends
through the relay.  Every 50 ms the benchmark reads the outbox (SELECT
count(*), sum(status = 'sent') FROM outbox, on a read-only sqlite3
connection or bench-outgoing's wire client for PostgreSQL, whose backend is
left out of the figures) and smtp-sink's counter:
  start s     exec -> ready, as above (a database of N timers);
  queued s    SIGHUP -> all N follow-ups in the outbox;
  sent@q      how many smtp-sink had taken by then;
  sink s      SIGHUP -> the Nth mail taken by smtp-sink;
  mails/s     N / sink s: the figure against the target;
  send/s      the steady rate: mails taken by smtp-sink a second between
              10 % and 90 % of N;
  sent s      SIGHUP -> every outbox row "sent" (recorded after the relay's
              250);
  mailroomd   its CPU from the SIGHUP to all sent, µs per mail (utime +
              stime, all threads); the summary splits it by thread (main:
              the main loop, where the scheduler decides; mr-writer: every
              unit of the writer: the claims and what the follow-ups need
              read, the writes of the mails, timers and jobs, the outbox's
              claims and results; pool-*: GLib's pool, where the mails are
              composed; outbox: the sender);
  postgres    the CPU of mailroomd's backends over the same span, µs per
              mail (the backends of the run's database alive at the end,
              the poller's left out);
  sink        smtp-sink's CPU per mail, µs.
  Checked: the sink took exactly N more mails; the outbox holds N rows,
  all sent at the first attempt; the N timers done and N second timers
  (round 1) due, no other job; follow-up fired N times; mailroomd exits 0
  on SIGTERM.

Rounds (MR_BENCH_ROUNDS, default 3) interleave the engines: pending on
SQLite (empty, then N timers), on PostgreSQL, then due on SQLite, on
PostgreSQL; then the next round.  The summary gives the medians and says
whether each target is met.  Figures, not a test: the exit code says only
whether something went wrong.  The machine's speed drifts: compare CPU per
mail rather than rates, and medians rather than single rounds.

MR_BENCH_ENGINES="sqlite" runs one engine, MR_BENCH_PARTS="due" one part.
MR_BENCH_PGSS=1 prints the statements mailroomd ran per mail in the due
part (bench-outgoing's pg_stat_statements; with MR_PG_SERVER_OPTS="-c
shared_preload_libraries=pg_stat_statements").  MR_DEBUG_LOG=1 runs
mailroomd with G_MESSAGES_DEBUG=all (the writer's "batch messages=N
apply_us commit_us" line for every group commit) and keeps the work folder.

Standard library only.  smtp-sink, the pollers, the backends' and threads'
CPU and pg_stat_statements are tools/bench-outgoing.py's (imported), the
rest tools/mrbench.py's.
"""
import importlib.util
import math
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

from mrbench import (BenchError, CONFIG, READY, ROOT, START_TIMEOUT, TCK, build_dir, cpu_ticks,
                     die, env_int, fmt, kill_all, loadavg, on_exit_kill_all)
import mrbench

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import mrpg  # noqa: E402


def _load(name, path):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(os.path.dirname(os.path.abspath(__file__)), path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


outgoing = _load("bench_outgoing", "bench-outgoing.py")
Sink, SqlitePoll, PgPoll = outgoing.Sink, outgoing.SqlitePoll, outgoing.PgPoll
backend_ticks, thread_ticks, timeline_rate = (outgoing.backend_ticks, outgoing.thread_ticks,
                                              outgoing.timeline_rate)
env_choice, PGSS, COUNTS = outgoing.env_choice, outgoing.PGSS, outgoing.COUNTS

TARGET = 2000             # mails/s, issue 24
USERS = 10                # the owners of the contacts and opportunities
DOMAINS = 1000            # the customers' domains (accounts)
DELIVER_CHUNK = 10000     # files per mailroomctl deliver
DELIVER_JOBS = env_int("MR_BENCH_DELIVER_JOBS", 2)   # side by side on PostgreSQL
POLL = 0.05               # seconds between looks at the outbox and the sink
QUIET = 0.5               # seconds without CPU: mailroomd has settled
SETTLE_MAX = 30           # seconds to settle at most
STALL = 120               # seconds without progress: the run failed
MAX_AUTO = 100000         # outgoing.max_auto_per_recipient_per_day
# mailroom's clock
SETUP_AT = "2027-01-07T10:00:00Z"     # Thursday: the mails, the timers
IDLE_AT = "2027-01-08T12:00:00Z"      # Friday: nothing due
BEFORE_DUE = "2027-01-11T16:00:00Z"   # Monday: nothing due yet
AFTER_DUE = "2027-01-12T12:00:00Z"    # Tuesday: every timer past due
ENGINES = ("sqlite", "postgresql")
PARTS = ("pending", "due")
LABEL = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
WAITS = ("poll", "ppoll", "epoll_wait", "epoll_pwait", "epoll_pwait2", "select", "pselect6",
         "futex", "nanosleep", "clock_nanosleep", "restart_syscall")
STRACE = shutil.which("strace")


def unix(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def offset(iso):
    """The clock offset that makes mailroom's clock read @iso now (never
    behind it)."""
    return int(math.ceil(unix(iso) - time.time()))


# --- mailroomd and mailroomctl ------------------------------------------------------------

class Daemon(mrbench.Daemon):
    """mailroomd (and mailroomctl) on @database with the sink as relay and
    mailroom's clock at @clock."""

    def __init__(self, build, directory, database, sink_port, clock, spool=None):
        self.database, self.sink_port, self.spool = database, sink_port, spool
        super().__init__(build, directory, self.text(clock))

    def text(self, clock):
        return ('database = "%s";\n' % self.database
                + ('spool_directory = "%s";\n' % self.spool if self.spool else "")
                + CONFIG
                + 'relay = { host = "127.0.0.1"; port = %d; tls = "none";'
                  ' from = "Acme Sales <sales@acme.test>"; };\n' % self.sink_port
                + 'outgoing = { max_auto_per_recipient_per_day = %d; };\n' % MAX_AUTO
                + 'testing = { clock_offset = %d; };\n' % offset(clock))

    def set_clock(self, clock):
        """Rewrites the config with the clock at @clock (read at the next
        start or reload, and by mailroomctl)."""
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(self.text(clock))
        os.replace(tmp, self.conf)

    def ctl(self, *args, timeout=1800):
        p = subprocess.run([os.path.join(self.build, "mailroomctl"), "-c", self.conf] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        if p.returncode != 0:
            what = " ".join(args)
            raise BenchError("mailroomctl %s failed (exit %d): %s" % (
                what[:200], p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")[-2000:]))
        return p.stdout.decode("utf-8", "replace")

    def start(self):
        """Starts mailroomd; returns the seconds from its exec to its ready
        line."""
        if os.environ.get("MR_DEBUG_LOG"):
            os.environ["G_MESSAGES_DEBUG"] = "all"
        try:
            mark = os.path.getsize(self.logpath)
        except OSError:
            mark = 0
        t0 = time.monotonic()
        self.spawn()
        deadline = t0 + START_TIMEOUT
        with open(self.logpath, "rb") as log:
            log.seek(mark)
            seen = b""
            while time.monotonic() < deadline:
                seen += log.read()
                if READY.search(seen.decode("utf-8", "replace")):
                    return time.monotonic() - t0
                if self.proc.poll() is not None:
                    break
                time.sleep(0.002)
        raise BenchError("mailroomd did not start:\n%s" % self.log()[-3000:])


def settle(pid, since):
    """Waits until @pid's CPU stays unchanged for QUIET s; returns the
    seconds from @since (its exec) to then."""
    deadline = time.monotonic() + SETTLE_MAX
    last, quiet_since = cpu_ticks(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now, t = cpu_ticks(pid), time.monotonic()
        if now != last:
            last, quiet_since = now, t
        elif t - quiet_since >= QUIET:
            return quiet_since - since
    raise BenchError("mailroomd %d did not settle in %d s" % (pid, SETTLE_MAX))


def proc_status(path):
    """{key: value} of a /proc .../status file; {} when gone."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


def rss_kb(pid):
    s = proc_status("/proc/%d/status" % pid)
    return int(s.get("VmRSS", "0 kB").split()[0]), int(s.get("VmHWM", "0 kB").split()[0])


def thread_switches(pid):
    """{tid: (name, voluntary context switches)} of @pid's threads."""
    out = {}
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        s = proc_status("/proc/%d/task/%s/status" % (pid, t))
        if s:
            name = "main" if t == str(pid) else s.get("Name", "?")
            out[int(t)] = (name, int(s.get("voluntary_ctxt_switches", 0)))
    return out


def backend_switches(pids):
    return sum(int(proc_status("/proc/%d/status" % p).get("voluntary_ctxt_switches", 0))
               for p in pids)


# --- the databases --------------------------------------------------------------------------

class Sql:
    """The setup's own queries: sqlite3, or bench-outgoing's wire client."""

    def __init__(self, engine, database, pg=None):
        self.sqlite = engine == "sqlite"
        if self.sqlite:
            self.con = sqlite3.connect(database, timeout=60, isolation_level=None)
        else:
            self.con = PgPoll(pg.port, database)

    def query(self, sql):
        if self.sqlite:
            return [tuple(r) for r in self.con.execute(sql).fetchall()]
        return self.con.query(sql)

    def one(self, sql):
        return self.query(sql)[0][0]

    def script(self, sql):
        """@sql (several statements) in one transaction."""
        if self.sqlite:
            self.con.executescript("BEGIN;\n%s;\nCOMMIT;" % sql)
        else:
            self.con.query("BEGIN; %s; COMMIT" % sql)

    def tables(self):
        if self.sqlite:
            names = self.query("SELECT name FROM sqlite_master WHERE type = 'table'"
                               " AND name NOT LIKE 'sqlite_%'")
        else:
            names = self.query("SELECT table_name FROM information_schema.tables"
                               " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
        return sorted(n[0] for n in names)

    def counts(self):
        """{table: rows} of every table of the schema."""
        tables = self.tables()
        row = self.query("SELECT " + ", ".join("(SELECT count(*) FROM %s)" % t for t in tables))[0]
        return dict(zip(tables, (int(v) for v in row)))

    def close(self):
        self.con.close()


def write_mails(folder, rows, subject, stem):
    """One mail per (index, user, contact) of @rows, from the user to the
    contact; returns the paths."""
    os.makedirs(folder)
    paths = []
    for i, (uname, uemail), (cname, cemail), tag in rows:
        p = os.path.join(folder, "%06d" % i)
        with open(p, "w") as f:
            f.write("From: %s <%s>\r\n"
                    "To: %s <%s>\r\n"
                    "Subject: %s%s\r\n"
                    "Date: Thu, 07 Jan 2027 10:00:00 +0000\r\n"
                    "Message-ID: <%s%d.%d@acme.test>\r\n"
                    "MIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                    "Hello %s,\r\n\r\n%s\r\n\r\nBest regards,\r\n%s\r\n"
                    % (uname, uemail, cname, cemail, tag, subject, stem, i, os.getpid(), cname,
                       "Here is our offer for the 40 seats we talked about: 480,000 a year,"
                       " support included." if tag else "Thank you for your time on the phone"
                       " today; I will send you our offer shortly.", uname))
        paths.append(p)
    return paths


def deliver(daemon, shares):
    """mailroomctl deliver --to crm@acme.test of each share of paths, the
    shares side by side, DELIVER_CHUNK files a run."""
    errors = []

    def share(paths):
        try:
            for i in range(0, len(paths), DELIVER_CHUNK):
                daemon.ctl("deliver", "--to", "crm@acme.test", *paths[i:i + DELIVER_CHUNK])
        except BenchError as e:
            errors.append(e)

    threads = [threading.Thread(target=share, args=(paths,)) for paths in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class Template:
    """A database of @n follow-up timers, made once (see the module's
    documentation), copied for each run by clone()."""

    def __init__(self, engine, n, build, work, sink, pg):
        self.engine, self.n, self.pg = engine, n, pg
        self.dir = os.path.join(work, "template-%s-%d" % (engine, n))
        t0 = time.monotonic()
        if engine == "sqlite":
            self.where = database = os.path.join(self.dir, "mailroom.db")
            spool = None
        else:
            self.where = "tmpl_%d" % n
            pg.createdb(self.where)
            database = pg.uri(self.where)
            spool = os.path.join(self.dir, "spool")
            os.makedirs(spool)
        d = Daemon(build, self.dir, database, sink.port, SETUP_AT, spool)
        d.init()
        users = [("Owner %d" % u, "owner%d@acme.test" % u) for u in range(USERS)]
        for name, address in users:
            d.ctl("user", "add", address, "--name", name)
        if n > 0:
            self.fill(d, users)
        if engine == "sqlite":
            con = sqlite3.connect(database, isolation_level=None)
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
        else:
            pg.psql("VACUUM ANALYZE", db=self.where, timeout=1800)
        self.seconds = time.monotonic() - t0

    def fill(self, d, users):
        n = self.n
        contacts = [("Contact %d" % i, "c%d@client%d.test" % (i, i % DOMAINS)) for i in range(n)]
        # 2. the contacts, each owned by the user who wrote to it
        paths = write_mails(os.path.join(self.dir, "hello"),
                            [(i, users[i % USERS], contacts[i], "") for i in range(n)],
                            "Nice talking to you", "hello")
        deliver(d, self.shares(paths, [c[1] for c in contacts]))
        sql = Sql(self.engine, self.where, self.pg)
        try:
            got = sql.one("SELECT count(*) FROM contact")
            if got != n:
                raise BenchError("%d mails made %d contacts, want %d" % (n, got, n))
            # 3. the opportunities: the first through opp add, the others
            # by SQL in its image, checked against it
            before = sql.counts()
            d.ctl("opp", "add", "--title", "Deal with %s" % contacts[0][0], "--contact",
                  contacts[0][1], "--owner", users[0][1])
            one = sql.counts()
            now = sql.one("SELECT created FROM opportunity")
            sql.script(
                "INSERT INTO opportunity (title, value, contact_id, account_id, owner_id, created,"
                " updated) SELECT 'Deal with ' || c.name, NULL, c.id, c.account_id, c.owner_id,"
                " '%s', '%s' FROM contact c WHERE c.email <> '%s' ORDER BY c.id;"
                " INSERT INTO event (created, type, record_kind, record_id, message_id, actor_id,"
                " old_status, new_status, address, detail) SELECT o.created,"
                " 'opportunity.created', 'opportunity', o.id, NULL, NULL, NULL, NULL, NULL, o.title"
                " FROM opportunity o WHERE o.id > (SELECT min(id) FROM opportunity) ORDER BY o.id"
                % (now, now, contacts[0][1]))
            self.check_opps(sql, before, one, sql.counts())
            # 4. the offers: response.sent, the timers
            rows = sql.query("SELECT o.id, c.name, c.email, u.name, u.email FROM opportunity o"
                             " JOIN contact c ON c.id = o.contact_id"
                             " JOIN app_user u ON u.id = o.owner_id ORDER BY o.id")
            paths = write_mails(os.path.join(self.dir, "offer"),
                                [(r[0], (r[3], r[4]), (r[1], r[2]), "[OPP-%d] " % r[0])
                                 for r in rows], "Our offer", "offer")
            deliver(d, self.shares(paths, [r[2] for r in rows]))
            self.check_timers(sql)
        finally:
            sql.close()
        shutil.rmtree(os.path.join(self.dir, "hello"), ignore_errors=True)
        shutil.rmtree(os.path.join(self.dir, "offer"), ignore_errors=True)

    def shares(self, paths, contacts):
        """@paths in DELIVER_JOBS shares (PostgreSQL; one on SQLite, whose
        writers take turns), by the domain of each one's contact: no two
        mailroomctl make the same account."""
        jobs = 1 if self.engine == "sqlite" else DELIVER_JOBS
        out = [[] for _ in range(jobs)]
        for p, c in zip(paths, contacts):
            out[int(re.search(r"@client(\d+)\.", c).group(1)) % jobs].append(p)
        return out

    def check_opps(self, sql, before, one, after):
        n = self.n
        for t in before:
            per_opp = one[t] - before[t]
            if after[t] - one[t] != (n - 1) * per_opp:
                raise BenchError("table %s: opp add added %d rows, the SQL %d for %d"
                                 " opportunities" % (t, per_opp, after[t] - one[t], n - 1))
        shapes = sql.query(
            "SELECT count(*) FROM (SELECT DISTINCT o.status, o.stage, o.probability,"
            " o.value IS NULL, o.lost_reason IS NULL, o.closed IS NULL, o.created = o.updated,"
            " coalesce(o.account_id, -1) = coalesce(c.account_id, -1), o.owner_id = c.owner_id,"
            " o.title = 'Deal with ' || c.name"
            " FROM opportunity o JOIN contact c ON c.id = o.contact_id) s")[0][0]
        events = sql.query(
            "SELECT count(*), count(DISTINCT e.record_id) FROM event e"
            " JOIN opportunity o ON e.record_kind = 'opportunity' AND e.record_id = o.id")[0]
        eshapes = sql.query(
            "SELECT count(*) FROM (SELECT DISTINCT e.type, e.message_id IS NULL,"
            " e.actor_id IS NULL, e.old_status IS NULL, e.new_status IS NULL, e.address IS NULL,"
            " e.detail = o.title, e.created = o.created FROM event e"
            " JOIN opportunity o ON e.record_kind = 'opportunity' AND e.record_id = o.id) s")[0][0]
        if shapes != 1 or eshapes != 1 or tuple(events) != (n, n):
            raise BenchError("the opportunities made by SQL differ from opp add's: %d shapes of"
                             " rows, %d of events, %s events on %s opportunities" % (
                                 shapes, eshapes, events[0], events[1]))

    def check_timers(self, sql):
        n = self.n
        jobs, timers, outbox, last = sql.query(
            "SELECT (SELECT count(*) FROM job), (SELECT count(*) FROM job j"
            " JOIN workflow w ON w.id = j.workflow_id WHERE w.name = 'follow-up'"
            " AND j.kind = 'workflow' AND j.status = 'due' AND j.round = 0),"
            " (SELECT count(*) FROM outbox), (SELECT max(due) FROM job)")[0]
        if jobs != n or timers != n or outbox != 0:
            raise BenchError("%d offers made %d jobs, %d of them follow-up timers due, and %d"
                             " mails in the outbox; want %d, %d, 0" % (n, jobs, timers, outbox,
                                                                      n, n))
        if unix(last) >= unix(AFTER_DUE):
            raise BenchError("the last timer is due at %s, after %s" % (last, AFTER_DUE))

    def clone(self, name, folder):
        """A copy for one run: (database for the config, spool, dbname)."""
        os.makedirs(folder)
        if self.engine == "sqlite":
            db = os.path.join(folder, "mailroom.db")
            shutil.copyfile(self.where, db)
            return db, None, None
        strategy = " STRATEGY FILE_COPY" if (self.pg.version or 0) >= 150000 else ""
        deadline = time.monotonic() + 30
        while True:
            try:
                self.pg.psql('CREATE DATABASE "%s" TEMPLATE "%s"%s' % (name, self.where,
                                                                       strategy))
                break
            except mrpg.PgError as e:
                # the template's last backend may still be ending
                if "being accessed" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        spool = os.path.join(folder, "spool")
        os.makedirs(spool)
        return self.pg.uri(name), spool, name


def drop(pg, dbname, folder):
    if dbname is not None:
        pg.dropdb(dbname, force=True)
    if not os.environ.get("MR_DEBUG_LOG"):
        shutil.rmtree(folder, ignore_errors=True)


# --- pending: 100,000 timers, nothing due ------------------------------------------------

def strace_window(pid, seconds, out):
    """strace -C -f -p @pid for @seconds; returns the parsed trace."""
    names = {t: n for t, (n, _) in thread_switches(pid).items()}
    p = subprocess.Popen([STRACE, "-C", "-f", "-qq", "-o", out, "-p", str(pid)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    time.sleep(seconds)
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise BenchError("strace did not detach from mailroomd")
    names.update({t: n for t, (n, _) in thread_switches(pid).items()})
    return parse_strace(out, names, seconds, err.decode("utf-8", "replace"))


CALL = re.compile(r"^(\d+)\s+(?:(\w+)\((.*)|<\.\.\. (\w+) resumed>(.*))$")


def parse_strace(path, names, seconds, err):
    """{"calls": n, "waits": n, "threads": {name: {waits, calls, timeouts{ms: n}}},
    "summary": [(syscall, calls)]} of strace's output in @path."""
    threads, pending, summary = {}, {}, []
    calls = waits = 0
    in_summary = False
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("% time"):
                in_summary = True
                continue
            if in_summary:
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    summary.append((parts[-1], int(parts[3])))
                continue
            m = CALL.match(line.rstrip("\n"))
            if m is None or "<detached" in line:
                continue
            tid = int(m.group(1))
            th = threads.setdefault(names.get(tid, "tid %d" % tid),
                                    {"waits": 0, "calls": 0, "timeouts": {}})
            if m.group(2):
                name, rest = m.group(2), m.group(3)
                calls += 1
                th["calls"] += 1
                if name in ("poll", "ppoll", "epoll_wait", "epoll_pwait"):
                    t = re.search(r",\s*(-?\d+)(?:\s*<unfinished \.\.\.>|\)\s*=)", rest)
                    if t:
                        th["timeouts"][int(t.group(1))] = th["timeouts"].get(int(t.group(1)), 0) + 1
                if "<unfinished ...>" in rest:
                    pending[tid] = (name, rest)
                    continue
            else:
                name, rest = pending.pop(tid, (m.group(4), ""))
                rest += m.group(5)
            if name in WAITS and (name != "futex" or "FUTEX_WAIT" in rest) and " = " in line:
                waits += 1
                th["waits"] += 1
    if not summary and not calls and err.strip():
        raise BenchError("strace: %s" % err.strip()[-500:])
    return {"calls": calls, "waits": waits, "threads": threads, "summary": summary,
            "seconds": seconds}


def measure_pending(engine, rnd, tmpl, build, work, sink, pg, idle_s, use_strace):
    """One start of mailroomd on a copy of @tmpl (None: an empty database)
    and, with timers, its idle windows; returns the figures."""
    empty = tmpl.n == 0
    tag = "%s-%s-%d" % ("empty" if empty else "pending", engine, rnd)
    folder = os.path.join(work, tag)
    database, spool, dbname = tmpl.clone(tag.replace("-", "_"), folder)
    daemon = Daemon(build, os.path.join(folder, "mailroomd"), database, sink.port, IDLE_AT, spool)
    sink0 = sink.count()
    start_s = daemon.start()
    pid = daemon.proc.pid
    t_exec = time.monotonic() - start_s
    r = {"start": start_s, "settled": settle(pid, t_exec)}
    r["start_ms"] = cpu_ticks(pid) * 1000 / TCK
    r["rss"], r["hwm"] = rss_kb(pid)
    if not empty:
        bes0 = backend_ticks(pg.pid, dbname, None) if dbname else {}
        bsw0 = backend_switches(bes0)
        mr0, th0, sw0 = cpu_ticks(pid), thread_ticks(pid), thread_switches(pid)
        time.sleep(idle_s)
        mr1, th1, sw1 = cpu_ticks(pid), thread_ticks(pid), thread_switches(pid)
        r["cpu_ms"] = (mr1 - mr0) * 1000 / TCK
        r["wake"] = sum(v - sw0.get(t, (None, 0))[1] for t, (_, v) in sw1.items()) / idle_s
        r["wake_threads"] = {}
        for t, (name, v) in sw1.items():
            r["wake_threads"][name] = r["wake_threads"].get(name, 0) + \
                (v - sw0.get(t, (None, 0))[1]) / idle_s
        r["threads_ms"] = {k: (v - th0.get(k, 0)) * 1000 / TCK for k, v in th1.items()
                           if v > th0.get(k, 0)}
        if dbname:
            bes1 = backend_ticks(pg.pid, dbname, None)
            r["pg_ms"] = sum(v - bes0.get(p, 0) for p, v in bes1.items()) * 1000 / TCK
            r["pg_wake"] = (backend_switches(bes1) - bsw0) / idle_s
            r["backends"] = len(bes1)
        r["hwm"] = rss_kb(pid)[1]
        if use_strace and rnd == 1:
            r["strace"] = st = strace_window(pid, idle_s, os.path.join(folder, "strace.out"))
            r["sys"] = st["calls"] / idle_s
            r["waits"] = st["waits"] / idle_s
        poll = SqlitePoll(database) if dbname is None else PgPoll(pg.port, dbname)
        try:
            outbox, due, claimed = poll.query(
                "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM job"
                " WHERE status = 'due'), (SELECT count(*) FROM job WHERE attempts > 0)")[0]
        finally:
            poll.close()
        if outbox != 0 or due != tmpl.n or claimed != 0:
            raise BenchError("%s round %d, idle: %d mails in the outbox, %d jobs due (want %d),"
                             " %d claimed" % (LABEL[engine], rnd, outbox, due, tmpl.n, claimed))
        if sink.count() != sink0:
            raise BenchError("%s round %d, idle: the sink took mail" % (LABEL[engine], rnd))
    r["stop"] = daemon.stop()
    drop(pg, dbname, folder)
    return r


# --- due: 10,000 follow-ups at once -----------------------------------------------------------

def quiet_backends(pg):
    """A checkpoint now, not during the run; this script's psql gone."""
    pg.psql("CHECKPOINT")
    deadline = time.monotonic() + 10
    while outgoing.storage.closing_backends(pg.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def measure_due(engine, rnd, tmpl, build, work, sink, pg):
    n = tmpl.n
    tag = "due-%s-%d" % (engine, rnd)
    folder = os.path.join(work, tag)
    database, spool, dbname = tmpl.clone(tag.replace("-", "_"), folder)
    daemon = Daemon(build, os.path.join(folder, "mailroomd"), database, sink.port, BEFORE_DUE,
                    spool)
    start_s = daemon.start()
    pid = daemon.proc.pid
    settle(pid, time.monotonic())
    poll = SqlitePoll(database) if dbname is None else PgPoll(pg.port, dbname)
    what = "%s due round %d" % (LABEL[engine], rnd)
    try:
        if PGSS and dbname:
            poll.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        if dbname:
            quiet_backends(pg)
            be0 = backend_ticks(pg.pid, dbname, poll.pid)
        daemon.set_clock(AFTER_DUE)
        if PGSS and dbname:
            poll.query("SELECT pg_stat_statements_reset()")
        sink0, sinkcpu0 = sink.count(), sink.ticks()
        mr0, th0 = cpu_ticks(pid), thread_ticks(pid)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGHUP)
        samples = []
        t_queued = t_sink = t_sent = sent_at_queued = None
        last, last_progress = None, t0
        while t_sink is None or t_sent is None:
            time.sleep(POLL)
            now = time.monotonic()
            q, s = poll.query(COUNTS)[0]
            c = sink.count() - sink0
            samples.append((now - t0, q, c))
            if t_queued is None and q >= n:
                t_queued, sent_at_queued = now, c
            if t_sink is None and c >= n:
                t_sink = now
            if t_sent is None and s >= n:
                t_sent = now
            if (q, s, c) != last:
                last, last_progress = (q, s, c), now
            elif now - last_progress > STALL:
                raise BenchError("%s: no progress for %d s (%d queued, %d sent, %d taken by the"
                                 " sink, of %d):\n%s" % (what, STALL, q, s, c, n, "\n".join(
                                     daemon.log().splitlines()[-10:])))
        mr1, th1, sinkcpu1 = cpu_ticks(pid), thread_ticks(pid), sink.ticks()
        pg_ticks = None
        if dbname:
            be1 = backend_ticks(pg.pid, dbname, poll.pid)
            pg_ticks = sum(v - be0.get(p, 0) for p, v in be1.items())
        if PGSS and dbname:
            outgoing.print_statements(poll, n)
        checks = poll.query(
            "SELECT (SELECT count(*) FROM outbox),"
            " (SELECT count(*) FROM outbox WHERE status = 'sent' AND attempts = 1),"
            " (SELECT count(*) FROM job WHERE kind = 'workflow' AND round = 0"
            "  AND status = 'done'),"
            " (SELECT count(*) FROM job WHERE kind = 'workflow' AND round = 1 AND status = 'due'),"
            " (SELECT count(*) FROM job),"
            " (SELECT fired FROM workflow WHERE name = 'follow-up'),"
            " (SELECT round(avg(m.size)) FROM outbox o JOIN message m ON m.id = o.message_id)")[0]
    finally:
        poll.close()
    daemon.stop()
    got = sink.settled_count(sink0 + n) - sink0
    rows, once, done, again, jobs, fired, size = checks
    if got != n:
        raise BenchError("%s: the sink took %d mails, want %d" % (what, got, n))
    if rows != n or once != n:
        raise BenchError("%s: the outbox holds %d mails, %d of them sent at the first attempt;"
                         " want %d" % (what, rows, once, n))
    if done != n or again != n or jobs != 2 * n or fired != n:
        raise BenchError("%s: %d timers done, %d second timers due, %d jobs, fired %d; want %d,"
                         " %d, %d, %d" % (what, done, again, jobs, fired, n, n, 2 * n, n))
    drop(pg, dbname, folder)
    sink_s = t_sink - t0
    return {
        "start": start_s,
        "queued": t_queued - t0,
        "sent_at_queued": sent_at_queued,
        "sink": sink_s,
        "rate": n / sink_s,
        "send": timeline_rate(samples, n),
        "sent": t_sent - t0,
        "mr_us": (mr1 - mr0) * 1e6 / TCK / n,
        "pg_us": pg_ticks * 1e6 / TCK / n if pg_ticks is not None else None,
        "sink_us": (sinkcpu1 - sinkcpu0) * 1e6 / TCK / n,
        "size": int(size),
        "threads": {k: (v - th0.get(k, 0)) * 1e6 / TCK / n for k, v in th1.items()
                    if v - th0.get(k, 0) > 0},
    }


# --- output -------------------------------------------------------------------------------

PROW = "%5s  %-26s  %7s  %9s  %8s  %6s  %6s  %6s  %6s  %9s  %6s  %6s  %6s"
DROW = "%5s  %-12s  %7s  %8s  %6s  %6s  %7s  %6s  %6s  %9s  %8s  %5s"


def thread_order(name):
    """main, mr-writer, outbox, then the others by name."""
    return ({"main": 0, "mr-writer": 1, "outbox": 2}.get(name, 3), name)


def print_pending(rnd, key, r):
    print(PROW % (rnd, key, "%.3f" % r["start"], "%.2f" % r["settled"], "%.0f" % r["start_ms"],
                  "%.1f" % (r["rss"] / 1024), fmt(r.get("cpu_ms"), "%.0f"),
                  fmt(r.get("wake"), "%.1f"), fmt(r.get("pg_ms"), "%.0f"),
                  fmt(r.get("pg_wake"), "%.1f"), fmt(r.get("sys"), "%.1f"),
                  fmt(r.get("waits"), "%.1f"), fmt(r.get("stop"), "%.2f")), flush=True)
    if "wake_threads" in r:
        print("       by thread, idle: %s" % ", ".join(
            "%s %.1f wakeups/s%s" % (k, r["wake_threads"][k], ", %.0f ms" % r["threads_ms"][k]
                                     if k in r["threads_ms"] else "")
            for k in sorted(r["wake_threads"], key=thread_order)), flush=True)
    st = r.get("strace")
    if st:
        parts = []
        for name in sorted(st["threads"], key=thread_order):
            th = st["threads"][name]
            tmo = sorted(th["timeouts"].items(), key=lambda x: -x[1])
            rest = tmo[2:]
            tmo = ", ".join(["%s ms x%d" % (ms if ms >= 0 else "no timeout", c)
                             for ms, c in tmo[:2]] +
                            (["%d others (%d-%d ms)" % (sum(c for _, c in rest),
                                                        min(ms for ms, _ in rest),
                                                        max(ms for ms, _ in rest))]
                             if rest else []))
            parts.append("%s %d waits%s" % (name, th["waits"], " (polls' timeouts: %s)" % tmo
                                            if tmo else ""))
        print("       strace, %d s: %s" % (st["seconds"], "; ".join(parts)), flush=True)
        print("       strace -c: %s" % (", ".join("%s %d" % s for s in st["summary"]) or
                                        "no system call"), flush=True)


def print_due(rnd, key, r):
    print(DROW % (rnd, key, "%.3f" % r["start"], "%.2f" % r["queued"], "%d" % r["sent_at_queued"],
                  "%.2f" % r["sink"], "%.0f" % r["rate"], fmt(r.get("send"), "%.0f"),
                  "%.2f" % r["sent"], "%.1f" % r["mr_us"], fmt(r.get("pg_us")),
                  "%.0f" % r["sink_us"]), flush=True)


def summary(pending, due, engines, nt, nf, idle_s):
    med = statistics.median

    def m(runs, key):
        v = [r[key] for r in runs if r.get(key) is not None]
        return med(v) if v else None

    print()
    if pending:
        print("pending, medians over %d round(s) (%d timers; idle windows of %d s):" % (
            len(next(iter(pending.values()))), nt, idle_s))
        print("%-26s  %7s  %9s  %8s  %6s  %6s  %6s  %6s  %6s  %6s  %9s  %6s  %6s" % (
            "", "start s", "settled s", "start ms", "RSS MB", "HWM MB", "cpu ms", "wake/s",
            "pg ms", "pg wake/s", "sys/s", "waits/s", "stop s"))
        for k, runs in pending.items():
            print("%-26s  %7.3f  %9.2f  %8.0f  %6.1f  %6.1f  %6s  %6s  %6s  %9s  %6s  %6s  %6s" % (
                k, m(runs, "start"), m(runs, "settled"), m(runs, "start_ms"), m(runs, "rss") / 1024,
                m(runs, "hwm") / 1024, fmt(m(runs, "cpu_ms"), "%.0f"), fmt(m(runs, "wake"), "%.1f"),
                fmt(m(runs, "pg_ms"), "%.0f"), fmt(m(runs, "pg_wake"), "%.1f"),
                fmt(m(runs, "sys"), "%.1f"), fmt(m(runs, "waits"), "%.1f"),
                fmt(m(runs, "stop"), "%.2f")))
        print()
    if due:
        print("due, medians over %d round(s), %d follow-ups each (CPU: µs per mail):" % (
            len(next(iter(due.values()))), nf))
        print("%-12s  %7s  %8s  %6s  %6s  %7s  %6s  %6s  %9s  %8s  %5s  %5s" % (
            "", "start s", "queued s", "sent@q", "sink s", "mails/s", "send/s", "sent s",
            "mailroomd", "postgres", "sink", "bytes"))
        for k, runs in due.items():
            print("%-12s  %7.3f  %8.2f  %6.0f  %6.2f  %7.0f  %6s  %6.2f  %9.1f  %8s  %5.0f  %5d" % (
                k, m(runs, "start"), m(runs, "queued"), m(runs, "sent_at_queued"), m(runs, "sink"),
                m(runs, "rate"), fmt(m(runs, "send"), "%.0f"), m(runs, "sent"), m(runs, "mr_us"),
                fmt(m(runs, "pg_us")), m(runs, "sink_us"), runs[0]["size"]))
        print()
        print("mailroomd's CPU by thread, µs per mail (medians; main: the main loop, where the "
              "scheduler decides; mr-writer: every unit of the writer; pool-*: GLib's pool, "
              "where the follow-ups are composed; outbox: the sender):")
        for k, runs in due.items():
            names = sorted({t for r in runs for t in r["threads"]},
                           key=lambda t: -med(r["threads"].get(t, 0) for r in runs))
            print("  %-12s %s" % (k, ", ".join(
                "%s %.0f" % (t, med(r["threads"].get(t, 0) for r in runs)) for t in names
                if med(r["threads"].get(t, 0) for r in runs) >= 1)))
        print()
    for e in engines:
        k = LABEL[e]
        if due and k in due:
            rate = m(due[k], "rate")
            print("target >= %d mails/s, %s: %s (%.0f mails/s)" % (
                TARGET, k, "met" if rate >= TARGET else "NOT met", rate))
        key = "%s, %s timers" % (k, "{:,}".format(nt))
        if pending and key in pending:
            cpu, wake = m(pending[key], "cpu_ms"), m(pending[key], "wake")
            # met: at most one clock tick of CPU (10 ms) and fewer than
            # three wakeups in the window -- no timer that polls
            print("target no CPU and no polling while %s timers wait, %s: %s (%.0f ms of CPU in"
                  " %d s, %.3f %% of a core; %.2f wakeups a second)" % (
                      "{:,}".format(nt), k,
                      "met" if cpu <= 10 and wake * idle_s < 3 else "NOT met",
                      cpu, idle_s, cpu / 10 / idle_s, wake))
    sys.stdout.flush()


def main():
    nt = env_int("MR_BENCH_TIMERS", 100000)
    nf = env_int("MR_BENCH_FOLLOWUPS", 10000)
    rounds = env_int("MR_BENCH_ROUNDS", 3)
    idle_s = env_int("MR_BENCH_IDLE_S", 30)
    engines = env_choice("MR_BENCH_ENGINES", ENGINES, ENGINES)
    parts = env_choice("MR_BENCH_PARTS", PARTS, PARTS)
    use_strace = STRACE is not None and os.environ.get("MR_BENCH_STRACE", "1") != "0"
    build = build_dir()
    for path in (outgoing.SINK, os.path.join(build, "mailroomd"),
                 os.path.join(build, "mailroomctl")):
        if not os.access(path, os.X_OK):
            die("%s missing: run make deps, make" % path)
    if "postgresql" in engines and not mrpg.available():
        die("PostgreSQL: %s (run make deps)" % mrpg.unavailable_reason())
    on_exit_kill_all()
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="mr-bench-workflows-")
    os.chmod(work, 0o755)
    pg = sink = None
    pending = {}
    due = {}
    try:
        sink = Sink(work)
        if "postgresql" in engines:
            pg = mrpg.PgCluster.start()
        print("mailroom workflows bench: %s%s; smtp-sink 127.0.0.1:%d; %d cores; %d round(s) of "
              "%s; load average %s" % (
                  "pending: %s follow-up timers, idle windows of %d s%s" % (
                      "{:,}".format(nt), idle_s, "" if use_strace else
                      (" (strace not installed: no system call counts)" if STRACE is None
                       else " (MR_BENCH_STRACE=0: no strace)")) if "pending" in parts else "",
                  "%sdue: %s follow-ups at once" % ("; " if "pending" in parts else "",
                                                   "{:,}".format(nf)) if "due" in parts else "",
                  sink.port, os.cpu_count() or 0, rounds,
                  ", ".join(LABEL[e] for e in engines), loadavg()), flush=True)
        tmpl = {}
        for e in engines:
            for part, n in (("pending", nt), ("pending", 0), ("due", nf)):
                if part in parts and (e, n) not in tmpl:
                    t = Template(e, n, build, work, sink, pg)
                    tmpl[(e, n)] = t
                    if n > 0:
                        print("database of %s: %s timers made in %.0f s (mailroomctl deliver, "
                              "SQL opportunities)" % (LABEL[e], "{:,}".format(n), t.seconds),
                              flush=True)
        for rnd in range(1, rounds + 1):
            if "pending" in parts:
                if rnd == 1 or "due" in parts:
                    print()
                    print("pending (start: exec -> ready; settled: exec -> quiet; CPU in ms; "
                          "wake/s: voluntary context switches a second over %d s idle; sys/s, "
                          "waits/s: under strace, another %d s, round 1):" % (idle_s, idle_s))
                    print(PROW % ("round", "run", "start s", "settled s", "start ms", "RSS MB",
                                  "cpu ms", "wake/s", "pg ms", "pg wake/s", "sys/s", "waits/s",
                                  "stop s"), flush=True)
                for e in engines:
                    for n in (0, nt):
                        key = "%s, %s" % (LABEL[e], "empty" if n == 0 else
                                          "%s timers" % "{:,}".format(n))
                        r = measure_pending(e, rnd, tmpl[(e, n)], build, work, sink, pg, idle_s,
                                            use_strace)
                        pending.setdefault(key, []).append(r)
                        print_pending(rnd, key, r)
            if "due" in parts:
                if rnd == 1 or "pending" in parts:
                    print()
                    print("due (SIGHUP with the clock past due -> queued: all in the outbox; "
                          "sink: the Nth mail taken; mails/s = N / sink s; send/s: steady rate, "
                          "10-90 %; sent: all recorded sent; CPU: µs per mail):")
                    print(DROW % ("round", "run", "start s", "queued s", "sent@q", "sink s",
                                  "mails/s", "send/s", "sent s", "mailroomd", "postgres",
                                  "sink"), flush=True)
                for e in engines:
                    r = measure_due(e, rnd, tmpl[(e, nf)], build, work, sink, pg)
                    due.setdefault(LABEL[e], []).append(r)
                    print_due(rnd, LABEL[e], r)
        summary(pending, due, engines, nt, nf, idle_s)
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


if __name__ == "__main__":
    main()
