#!/usr/bin/env python3
"""bench-storage - `make bench`: mailroomd on SQLite against mailroomd on
PostgreSQL, driven by Postfix's smtp-source on loopback.

Three configurations, each with a fresh database every round:

  A  one mailroomd on SQLite (synchronous = "full", the default);
  B  one mailroomd on PostgreSQL (a private cluster, tests/integration/mrpg.py:
     fsync on, synchronous_commit on);
  C  two mailroomd on the same PostgreSQL database, the load split between
     them (an MX pair).

The load is the one of bench-smtp.sh's 100-per-connection mode: 16 parallel
smtp-source processes at a time (xargs -P 16), each sending 100 messages of
4 KB over one connection (-d -s 1 -m 100 -l 4096), to crm@acme.test (a smart
BCC address), MR_BENCH_MESSAGES messages per configuration and round
(default 10,000, a multiple of 100).  For C, each daemon gets its own 16
processes and half the messages, both halves at the same time (32 sessions
in all).  smtp-source runs with -A, so that a temporary failure (a 451 after
a deadlock between the two daemons, say) is counted rather than fatal; no
-N or -r, which append a number to the recipient's local part (crm0@...),
an address mailroom refuses.

The machine's speed drifts over minutes, so the configurations are
interleaved: round 1 runs A, B, C, round 2 A, B, C, and so on
(MR_BENCH_ROUNDS, default 3).  Every figure is printed as it is taken; the
summary gives medians over the rounds and the ratios of interest (SQLite's
CPU per message, PostgreSQL's rate as a share of SQLite's).

CPU per message, from /proc (clock ticks, all threads), read just before
smtp-source starts and just after it ends:
  - mailroomd: utime + stime (fields 14, 15 of /proc/PID/stat) of each
    daemon, summed over the daemons of the configuration;
  - PostgreSQL: the whole cluster.  Backends of connections that ended are
    gone from /proc, so the sum is: the postmaster's own utime + stime, plus
    its cutime + cstime (fields 16, 17: the CPU of children that exited and
    that it reaped, and of their reaped children), plus utime + stime +
    cutime + cstime of every live process whose parent chain leads to the
    postmaster (backends, checkpointer, WAL writer, autovacuum...).  A child
    that ends between the two samples moves from the "live" part to the
    postmaster's cutime with its full CPU, so the difference stays right.
    A CHECKPOINT is run before every PostgreSQL measurement so that none
    from an earlier run lands in it; autovacuum and checkpoints triggered by
    the run itself are counted (they are the cost of the load).
    Caveats: /proc is read process by process, so a backend reaped in the
    instant between reading it and reading the postmaster counts twice (or
    never); the benchmark waits until the backend of its CHECKPOINT is gone
    before the first sample, so that no connection is closing at either.  The resolution is a clock tick (10 ms: 1 µs per
    message at 10,000 messages).
  The client is not in the total; its CPU (smtp-source and xargs: the
  children time of this script, which reaps xargs, which reaps smtp-source)
  is shown apart.  The column "others" is how many CPUs, on average, were
  busy with anything else during the run (the machine's busy time from
  /proc/stat minus servers and client): a hint of how much a round was
  disturbed.

After each run, the database must hold exactly one message and one delivery
per message acknowledged (messages sent minus the transactions smtp-source
reported as rejected); otherwise the benchmark fails loudly.

Figures, not a test: it fails only when something is wrong (lost or extra
mail, a server that did not start or exit cleanly, smtp-source errors).  The
figures are noisy on a busy machine (anything else on the CPUs, such as a
fuzzer at nice 19, steals from the servers); compare CPU per message
rather than rates, and medians rather than single rounds.

Comparing builds (`make bench-compare BASE=<rev>`, issue 21): with
MR_BENCH_BUILDS="before=DIR,after=DIR" (two or more builds, each a name of
letters, digits and _ and a folder holding mailroomd and mailroomctl,
relative to the top of the tree or absolute; no commas in the paths),
every round runs each configuration once per build, back to back, and the
order of the builds turns from round to round: round 1 A-before, A-after,
B-before, B-after, C-before, C-after; round 2 A-after, A-before, B-after,
...  Each run has its fresh database, initialised by that build's own
mailroomctl.  The builds' mailroomd, mailroomctl and mailroom-pgsql.so
(when it has one) are copied at the start into the work folder, so that a
`make` meanwhile cannot change a build under the benchmark; the header
names them with their checksums, and MAILROOM_MODULE_DIR is ignored, so
that each mailroomd loads its own build's PostgreSQL module.  The summary
gives the medians per configuration and build, then for each build after
the first, its ratio to the first (a change in %): of the medians (CPU
per message of mailroomd, of PostgreSQL, both, and the rate), and in
brackets the median of the per-round ratios (the same round, a minute
apart).  MR_BENCH_ROUNDS defaults to 4 there, so that each of two builds
goes first equally often.  Without MR_BENCH_BUILDS, the one build is
MR_BUILD, as above.

MR_BENCH_CONFIGS="A,B" runs only those configurations (default: all).

The helpers it shares with bench-imap.py (mailroomd, /proc, cleanup) are
those of tools/mrbench.py.
"""
import hashlib
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

from mrbench import (BenchError, CONFIG, READY, ROOT, START_TIMEOUT, TCK, _sources, build_dir,
                     cpu_ticks, die, env_int, fmt, kill_all, loadavg, machine_ticks,
                     on_exit_kill_all, stat_fields)
import mrbench

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import mrpg  # noqa: E402

SOURCE = "/usr/sbin/smtp-source"
SESSIONS = 16             # smtp-source processes at a time, per daemon
SIZE = 4096               # bytes of payload per message
PER_CONNECTION = 100      # messages per connection (one smtp-source each)
SENDER = "bench@customer.test"
RECIPIENT = "crm@acme.test"
# mailroomd's CPU per message on SQLite in earlier runs of bench-smtp.sh,
# 100 messages per connection, for comparison.
EARLIER_SQLITE_US = 318

# smtp-source -A warnings that end a transaction (each message slot fails at
# most once at one of these steps; the session goes on with the next one).
FAILED = re.compile(r"warning: (?:sender|recipient|data|end of data) rejected: (\d{3})"
                    r"|warning: (?:HELO|LHLO) rejected: (421|521)")
WARNING = re.compile(r"warning: .*?: (\d{3}) ")

CONFIGS = ("A", "B", "C")
LABEL = {"A": "SQLite, 1 daemon", "B": "PostgreSQL, 1 daemon", "C": "PostgreSQL, 2 daemons"}


# --- processes ----------------------------------------------------------------

def closing_backends(postmaster):
    """Pids of the postmaster's children that are zombies or backends of
    the database "postgres" (this script's psql)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = stat_fields(int(name))
        if f is None or int(f[1]) != postmaster:
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as c:
                cmd = c.read()
        except OSError:
            continue
        if f[0] == b"Z" or cmd.startswith(b"postgres: %s postgres " % mrpg.USER.encode()):
            found.append(int(name))
    return found


def cluster_ticks(postmaster):
    """CPU ticks of the whole PostgreSQL cluster (see the module's doc)."""
    parent = {}
    times = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = stat_fields(int(name))
        if f is None:
            continue
        pid = int(name)
        parent[pid] = int(f[1])
        times[pid] = (int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))
    if postmaster not in times:
        raise BenchError("the postmaster (pid %d) is gone" % postmaster)
    total = sum(times[postmaster])
    for pid in times:
        p, seen = parent.get(pid), 0
        while p and p != postmaster and seen < 64:
            p, seen = parent.get(p), seen + 1
        if pid != postmaster and p == postmaster:
            total += sum(times[pid])
    return total


class Daemon(mrbench.Daemon):
    """One mailroomd with its config file in @directory."""

    def __init__(self, build, directory, database, spool=None):
        super().__init__(build, directory,
                         'database = "%s";\n' % database
                         + ('spool_directory = "%s";\n' % spool if spool else "")
                         + CONFIG
                         + 'limits = { max_connections_per_ip = 64; };\n')
        self.port = None

    def start(self):
        self.spawn()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            m = READY.search(self.log())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise BenchError("mailroomd did not start (%s):\n%s" % (
            "exit %s" % self.proc.returncode if self.proc.poll() is not None else "no ports after %d s"
            % START_TIMEOUT, self.log()[-3000:]))


# --- the load -----------------------------------------------------------------

def start_source(port, chunks, errpath, per=PER_CONNECTION, extra=()):
    """xargs runs @chunks smtp-source processes of @per messages, SESSIONS
    at a time, against 127.0.0.1:@port (@extra: more of smtp-source's
    options).  In its own process group, so that cleanup can kill it with
    its children."""
    err = open(errpath, "wb")
    try:
        p = subprocess.Popen(
            ["xargs", "-P", str(SESSIONS), "-I{}", SOURCE, "-A", "-d", "-s", "1",
             "-m", str(per), "-l", str(SIZE), "-f", SENDER, "-t", RECIPIENT]
            + list(extra) + ["127.0.0.1:%d" % port],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True)
    finally:
        err.close()
    _sources.append(p)
    p.stdin.write("".join("%d\n" % i for i in range(chunks)).encode())
    p.stdin.close()
    return p


def source_result(p, errpath, sent):
    """Waits for the pool @p; returns (acknowledged, {reply code: count})
    from smtp-source's warnings.  Raises on anything but rejections."""
    rc = p.wait()
    _sources.remove(p)
    with open(errpath, "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines()
    failed, codes, other = 0, {}, []
    for line in lines:
        m = FAILED.search(line)
        if m:
            failed += 1
            code = m.group(1) or m.group(2)
            codes[code] = codes.get(code, 0) + 1
        elif WARNING.search(line) and "rset rejected" in line:
            code = WARNING.search(line).group(1)
            codes[code] = codes.get(code, 0) + 1   # after an earlier failure
        else:
            other.append(line)
    if rc != 0 or other:
        raise BenchError("smtp-source failed (xargs exit %d):\n%s" % (
            rc, "\n".join((other or lines)[:10])))
    bad = {c: n for c, n in codes.items() if not c.startswith("4")}
    if bad:
        raise BenchError("smtp-source got permanent rejections %s:\n%s" % (
            bad, "\n".join(lines[:5])))
    return sent - failed, codes


def run_load(daemons, work, n, per=PER_CONNECTION, extra=()):
    """Sends @n messages split over @daemons at once, @per a connection
    (@extra: start_source()'s); returns (seconds, acknowledged, {code:
    count})."""
    chunks = n // per
    share = [chunks // len(daemons) + (1 if i < chunks % len(daemons) else 0)
             for i in range(len(daemons))]
    start = time.monotonic()
    pools = []
    for i, (d, k) in enumerate(zip(daemons, share)):
        if k:
            errpath = os.path.join(work, "source-%d.err" % i)
            pools.append((start_source(d.port, k, errpath, per, extra), errpath, k * per))
    results = [source_result(*pool) for pool in pools]
    seconds = time.monotonic() - start
    acked = sum(r[0] for r in results)
    codes = {}
    for _, c in results:
        for code, count in c.items():
            codes[code] = codes.get(code, 0) + count
    return seconds, acked, codes


# --- one measurement ----------------------------------------------------------

def check_stored(what, acked, messages, deliveries):
    if messages != acked or deliveries != acked:
        raise BenchError("%s: acknowledged %d, but the database holds %d messages "
                         "(%d deliveries)" % (what, acked, messages, deliveries))


def measure(config, rnd, build, work, n, pg, tag=None):
    """One run of @config in round @rnd with a fresh database, with the
    binaries in @build (the build named @tag when comparing builds);
    returns a dict of figures."""
    suffix = "-" + tag if tag else ""
    d = os.path.join(work, "%s-%d%s" % (config, rnd, suffix))
    os.makedirs(d)
    if config == "A":
        db = os.path.join(d, "mailroom.db")
        daemons = [Daemon(build, os.path.join(d, "mailroomd"), db)]
    else:
        dbname = "bench_%s_%d%s" % (config.lower(), rnd, suffix.replace("-", "_").lower())
        pg.createdb(dbname)
        spool = os.path.join(d, "spool")
        os.makedirs(spool)
        count = 1 if config == "B" else 2
        daemons = [Daemon(build, os.path.join(d, "mailroomd-%d" % i), pg.uri(dbname), spool)
                   for i in range(count)]
    daemons[0].init()
    for dm in daemons:
        dm.start()
    if config != "A":
        pg.psql("CHECKPOINT")
        # Its backend (connected to the database "postgres") must be gone,
        # reaped, before the first sample.
        deadline = time.monotonic() + 10
        while closing_backends(pg.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    pg0 = cluster_ticks(pg.pid) if config != "A" else 0
    mr0 = sum(cpu_ticks(dm.proc.pid) for dm in daemons)
    all0, cl0 = machine_ticks(), os.times()
    seconds, acked, codes = run_load(daemons, d, n)
    all1, cl1 = machine_ticks(), os.times()
    client = (cl1.children_user + cl1.children_system
              - cl0.children_user - cl0.children_system)      # seconds
    mr1 = sum(cpu_ticks(dm.proc.pid) for dm in daemons)
    pg1 = cluster_ticks(pg.pid) if config != "A" else 0
    for dm in daemons:
        dm.stop()
    what = "%s%s round %d" % (config, " " + tag if tag else "", rnd)
    if config == "A":
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
        try:
            messages = con.execute("SELECT count(*) FROM message").fetchone()[0]
            deliveries = con.execute("SELECT count(*) FROM delivery").fetchone()[0]
        finally:
            con.close()
        check_stored(what, acked, messages, deliveries)
    else:
        out = pg.psql("SELECT (SELECT count(*) FROM message), (SELECT count(*) FROM delivery)",
                      db=dbname).strip()
        messages, deliveries = (int(x) for x in out.split("|"))
        check_stored(what, acked, messages, deliveries)
        pg.dropdb(dbname)
    shutil.rmtree(d, ignore_errors=True)     # keep /tmp small over the rounds
    return {
        "rate": acked / seconds,
        "seconds": seconds,
        "acked": acked,
        "mr_us": (mr1 - mr0) * 1e6 / TCK / acked,
        "pg_us": (pg1 - pg0) * 1e6 / TCK / acked if config != "A" else None,
        "client_us": client * 1e6 / acked,
        # CPUs busy with anything else meanwhile.
        "others": max(0.0, ((all1 - all0) - (mr1 - mr0) - (pg1 - pg0)) / TCK - client)
        / seconds,
        "codes": codes,
    }


# --- builds and configurations --------------------------------------------------

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}")
BINARIES = ("mailroomd", "mailroomctl", "mailroom-pgsql.so")


def env_configs():
    """MR_BENCH_CONFIGS ("A,B"): the configurations to run, in the order of
    CONFIGS; all of them when not set."""
    v = os.environ.get("MR_BENCH_CONFIGS", "").strip()
    if not v:
        return CONFIGS
    want = [c.strip().upper() for c in v.split(",") if c.strip()]
    if not want or any(c not in CONFIGS for c in want):
        die("MR_BENCH_CONFIGS=%s: want some of %s, separated by commas" % (v, ",".join(CONFIGS)))
    return tuple(c for c in CONFIGS if c in want)


def env_builds():
    """MR_BENCH_BUILDS ("before=DIR,after=DIR"): [(name, folder)], or None
    when not set."""
    v = os.environ.get("MR_BENCH_BUILDS", "").strip()
    if not v:
        return None
    builds, seen = [], set()
    for item in v.split(","):
        name, eq, path = (x.strip() for x in item.partition("="))
        if not eq or not NAME.fullmatch(name) or not path:
            die('MR_BENCH_BUILDS=%s: want "name=folder,name=folder" (a name: a letter, then '
                'letters, digits or _, 16 at most)' % v)
        if name.lower() in seen:
            die("MR_BENCH_BUILDS=%s: %s twice" % (v, name))
        seen.add(name.lower())
        builds.append((name, os.path.normpath(os.path.join(ROOT, path))))
    if len(builds) < 2:
        die("MR_BENCH_BUILDS=%s: want two builds or more" % v)
    return builds


def snapshot(name, build, work):
    """Copies the binaries of @build into @work/bin-@name, so that a `make`
    meanwhile cannot change them; returns (that folder, a line naming them
    with their checksums).  A mailroomd that loads mailroom-pgsql.so must
    have it beside it."""
    for f in BINARIES[:2]:
        if not os.access(os.path.join(build, f), os.X_OK):
            die("%s: no %s (MR_BENCH_BUILDS; make)" % (build, f))
    dest = os.path.join(work, "bin-" + name)
    os.makedirs(dest)
    parts = []
    for f in BINARIES:
        src = os.path.join(build, f)
        if not os.path.exists(src):
            with open(os.path.join(build, "mailroomd"), "rb") as exe:
                if f.encode() in exe.read():
                    die("%s: no %s, which its mailroomd loads (make)" % (build, f))
            continue     # an older build, the driver built in
        shutil.copy2(src, os.path.join(dest, f))
        with open(os.path.join(dest, f), "rb") as copy:
            parts.append("%s %s" % (f, hashlib.sha256(copy.read()).hexdigest()[:12]))
    return dest, "%s (sha256: %s)" % (build, ", ".join(parts))


# --- output -------------------------------------------------------------------

ROW = "%5s  %-*s  %7s  %7s  %9s  %8s  %8s  %8s  %6s  %6s  %s"


def label(config, tag=None):
    return "%s %s%s" % (config, LABEL[config], " [%s]" % tag if tag else "")


def print_row(width, rnd, config, r, tag=None):
    total = r["mr_us"] + (r["pg_us"] or 0)
    rejected = ", ".join("%s: %d" % kv for kv in sorted(r["codes"].items())) or "0"
    print((ROW % (rnd, width, label(config, tag), "%.0f" % r["rate"],
                  "%.2f" % r["seconds"], fmt(r["mr_us"]), fmt(r["pg_us"]), fmt(total),
                  fmt(r["client_us"]), r["acked"], "%.2f" % r["others"],
                  rejected)).rstrip(), flush=True)


def require(n, configs, build):
    """Dies unless @n is a multiple of PER_CONNECTION, smtp-source is
    there, @build (nullable) holds mailroomd and mailroomctl, and a
    PostgreSQL server is there when @configs need one.  Returns whether
    they do."""
    if n % PER_CONNECTION:
        die("MR_BENCH_MESSAGES=%d: want a positive multiple of %d" % (n, PER_CONNECTION))
    if not os.access(SOURCE, os.X_OK):
        die("%s missing: run make deps, make" % SOURCE)
    for path in ((os.path.join(build, "mailroomd"), os.path.join(build, "mailroomctl"))
                 if build is not None else ()):
        if not os.access(path, os.X_OK):
            die("%s missing: run make deps, make" % path)
    need_pg = configs != ("A",)
    if need_pg and not mrpg.available():
        die("PostgreSQL: %s (run make deps)" % mrpg.unavailable_reason())
    return need_pg


def main():
    n = env_int("MR_BENCH_MESSAGES", 10000)
    builds = env_builds()
    # Comparing two builds: an even number of rounds, each first as often.
    rounds = env_int("MR_BENCH_ROUNDS", 4 if builds else 3)
    configs = env_configs()
    build = build_dir() if builds is None else None
    need_pg = require(n, configs, build)

    # A SIGTERM or SIGHUP ends the benchmark through the finally below.
    on_exit_kill_all()

    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="mr-bench-storage-")
    os.chmod(work, 0o755)
    pg = None
    try:
        if builds is None:
            runs = [(None, build)]
        else:
            runs, idents = [], []
            for name, folder in builds:
                copy, ident = snapshot(name, folder, work)
                runs.append((name, copy))
                idents.append("  %s: %s" % (name, ident))
            # Each build's mailroomd and mailroomctl load the module beside them.
            os.environ.pop("MAILROOM_MODULE_DIR", None)
        width = max([23] + [len(label(c, name)) for c in configs for name, _ in runs])
        if need_pg:
            pg = mrpg.PgCluster.start()
            ver = pg.version
            pgver = ", PostgreSQL %d.%d" % (ver // 10000, ver % 100)
        else:
            pgver = ""
        print("mailroom storage bench: %d messages of %d bytes per run, %d per connection, "
              "%d sessions per daemon, %d cores%s; %d round(s) of %s"
              % (n, SIZE, PER_CONNECTION, SESSIONS, os.cpu_count() or 0, pgver, rounds,
                 ", ".join(configs)), flush=True)
        print("  " + "  ".join("%s: %s%s" % (c, LABEL[c], " (half the messages to each, at once)"
                                            if c == "C" else "") for c in configs), flush=True)
        if builds is not None:
            print("builds compared (each configuration once per build, back to back; the "
                  "builds' order turns from round to round):")
            print("\n".join(idents), flush=True)
        print("load average %s; figures are noisy when other work shares the CPUs" % loadavg())
        print("CPU: user+system µs per acknowledged message (mailroomd: all daemons; postgres: "
              "the whole cluster; total: both; client: smtp-source); others: CPUs busy with "
              "anything else meanwhile", flush=True)
        print(ROW % ("round", width, "configuration", "msgs/s", "seconds", "mailroomd",
                     "postgres", "total", "client", "stored", "others",
                     "rejected (smtp-source)"), flush=True)
        results = {(c, name): [] for c in configs for name, _ in runs}
        for rnd in range(1, rounds + 1):
            k = (rnd - 1) % len(runs)
            order = runs[k:] + runs[:k]
            for config in configs:
                for name, folder in order:
                    r = measure(config, rnd, folder, work, n, pg, name)
                    results[(config, name)].append(r)
                    print_row(width, rnd, config, r, name)
        if builds is None:
            summary(results, rounds, configs)
        else:
            compare(results, rounds, configs, [name for name, _ in builds], width)
    except (BenchError, mrpg.PgError) as e:
        kill_all()
        die(str(e))
    except KeyboardInterrupt:
        kill_all()
        die("interrupted; cleaning up")
    finally:
        kill_all()
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("elapsed: %.0f s; load average %s" % (time.monotonic() - t0, loadavg()), flush=True)


def median(results, key):
    """The median of @key over the runs @results; None when not taken."""
    vals = [r[key] for r in results if r[key] is not None]
    return statistics.median(vals) if vals else None


def total_us(r):
    return r["mr_us"] + (r["pg_us"] or 0)


MEDIANS = "%-*s  %7s  %11s  %11s  %9s  %6s  %5s"


def print_medians(width, name, runs):
    fourxx = sum(n for r in runs for code, n in r["codes"].items() if code.startswith("4"))
    mr, pgu = median(runs, "mr_us"), median(runs, "pg_us")
    print(MEDIANS % (width, name, "%.0f" % median(runs, "rate"), "%.1f" % mr, fmt(pgu),
                     "%.1f" % (mr + (pgu or 0)), "%.2f" % median(runs, "others"), fourxx))


def summary(results, rounds, configs):
    med = statistics.median

    def m(config, key):
        return median(results[(config, None)], key)

    print()
    print("medians over %d round(s):" % rounds)
    print(MEDIANS % (24, "configuration", "msgs/s", "mailroomd µs", "postgres µs", "total µs",
                     "others", "4xx"))
    for c in configs:
        print_medians(24, label(c), results[(c, None)])
    if "A" not in configs:
        return

    def per_round(a, b):
        """Median over the rounds of 100 * rate(a) / rate(b), same round."""
        return med(100 * x["rate"] / y["rate"]
                   for x, y in zip(results[(a, None)], results[(b, None)]))

    a_mr = m("A", "mr_us")
    print()
    print("SQLite mailroomd CPU: %.1f µs/msg (earlier bench-smtp.sh runs, 100 per connection: "
          "about %d µs/msg)" % (a_mr, EARLIER_SQLITE_US))
    if "B" in configs:
        print("PostgreSQL, 1 daemon, rate as %% of SQLite's: %.1f %% (median of per-round ratios; "
              "ratio of medians %.1f %%; target >= 50 %%)"
              % (per_round("B", "A"), 100 * m("B", "rate") / m("A", "rate")))
    if "C" in configs:
        print("PostgreSQL, 2 daemons, rate as %% of SQLite's: %.1f %%%s"
              % (per_round("C", "A"), "; as %% of 1 daemon's: %.1f %%" % per_round("C", "B")
                 if "B" in configs else ""))
    cpu = []
    if "B" in configs:
        cpu.append("1 daemon %.2f x mailroomd alone, %.2f x with the server"
                   % (m("B", "mr_us") / a_mr, (m("B", "mr_us") + m("B", "pg_us")) / a_mr))
    if "C" in configs:
        cpu.append("2 daemons %.2f x, %.2f x"
                   % (m("C", "mr_us") / a_mr, (m("C", "mr_us") + m("C", "pg_us")) / a_mr))
    if cpu:
        print("CPU per message, PostgreSQL / SQLite: " + "; ".join(cpu))
    sys.stdout.flush()


def change(new, old):
    """@new against @old as a change in % ("+1.8 %"); "" when not taken."""
    if new is None or not old:
        return ""
    return "%+.1f %%" % (100 * (new / old - 1))


def compare(results, rounds, configs, names, width):
    """The summary when comparing builds: medians per configuration and
    build, then each build against the first."""
    med = statistics.median
    print()
    print("medians over %d round(s):" % rounds)
    print(MEDIANS % (width, "configuration", "msgs/s", "mailroomd µs", "postgres µs",
                     "total µs", "others", "4xx"))
    for c in configs:
        for name in names:
            print_medians(width, label(c, name), results[(c, name)])

    keys = (("mailroomd µs/msg", lambda r: r["mr_us"]),
            ("postgres µs/msg", lambda r: r["pg_us"]),
            ("total µs/msg", total_us),
            ("msgs/s", lambda r: r["rate"]))
    base = names[0]
    for name in names[1:]:
        print()
        print("%s / %s: change of the medians (in brackets: median of the per-round changes, "
              "the same round)" % (name, base))
        print(("%-24s  %s" % ("configuration", "  ".join("%-19s" % k for k, _ in keys))).rstrip())
        headline = []
        for c in configs:
            cells = []
            for _, get in keys:
                new = [get(r) for r in results[(c, name)]]
                old = [get(r) for r in results[(c, base)]]
                if None in new or None in old:
                    cells.append("")
                    continue
                per_round = med(100 * (x / y - 1) for x, y in zip(new, old))
                cells.append("%s (%+.1f %%)" % (change(med(new), med(old)), per_round))
            print(("%-24s  %s" % (label(c), "  ".join("%-19s" % x for x in cells))).rstrip())
            headline.append("%s %s" % (c, change(median(results[(c, name)], "mr_us"),
                                                  median(results[(c, base)], "mr_us"))))
        print("mailroomd CPU per message, %s against %s: %s" % (name, base, ", ".join(headline)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
