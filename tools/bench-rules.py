#!/usr/bin/env python3
"""bench-rules - `make bench`: what enabled rules cost mailroomd per message
(issue 22: 500 rules add less than 20 % to the cost per message, 5,000 less
than 100 %).

SMTP ingestion as in tools/bench-storage.py (Postfix's smtp-source on
loopback, 16 sessions of 100 messages of 4 KB each, to crm@acme.test, with
a subject), on

  A  one mailroomd on SQLite;
  B  one mailroomd on PostgreSQL (a private cluster, tests/integration/mrpg.py);
  C  two mailroomd on the same PostgreSQL database, the load split between
     them;

each with 0, 50, 500 and 5,000 enabled rules (MR_BENCH_RULES="0,50,500,5000"),
imported with `mailroomctl rule import` into a fresh database before the
daemons start.  The rules are what a mail team writes: patterns on the
subject and the body, words the body contains, sender domains, addresses
that end in a partner's domain, a subject and a domain together; nearly all
of them match nothing (as in real life), one in 500 tags every message
(rules_file()).

Before measuring, each daemon gets a few messages (WARMUP: a rule set
compiles its one pass per field from its second scan on, on a thread of its
own, src/model/mr-rule-set.c), then the benchmark waits until no daemon has
that thread ("mr-rules") any more: the figures are the steady state, not
the compile (whose time is printed: the seconds from the first message to
the end of the compile).

The configurations are interleaved: every round runs each storage
configuration with each number of rules, one after the other
(MR_BENCH_ROUNDS, default 3; MR_BENCH_MESSAGES per run, default 2,000, a
multiple of 100: about two minutes in all).  CPU per message is user + system of the mailroomd
processes from /proc/PID/stat just before and after the load (and of the
whole PostgreSQL cluster, bench-storage.py's cluster_ticks()), per
acknowledged message.  The summary gives medians over the rounds, and the
CPU each number of rules adds to mailroomd's against 0 rules: the change of
the medians, and in brackets the median of the per-round changes.

After each run the database must hold one message per acknowledged one
(warm-up included), or the benchmark fails.  Figures, not a test.
MR_BENCH_CONFIGS="A,B" runs only those storage configurations.
"""
import importlib.util
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

from mrbench import (BenchError, ROOT, TCK, build_dir, cpu_ticks, die, env_int, kill_all,
                     loadavg, on_exit_kill_all)

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import mrpg  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "bench_storage", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-storage.py"))
storage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(storage)

SUBJECT = "Re: question about my order"
WARMUP = 100              # messages per daemon before measuring
COMPILE_TIMEOUT = 600     # seconds for the rules' pass to compile
CONFIGS = storage.CONFIGS
LABEL = storage.LABEL


def env_list(name, default):
    """MR_BENCH_RULES ("0,50,500,5000"): numbers of rules."""
    v = os.environ.get(name, default)
    try:
        out = [int(x) for x in v.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out or any(n < 0 for n in out):
        die("%s=%s: want numbers of rules separated by commas" % (name, v))
    return out


def rules_file(n, path):
    """Writes @n rules to @path for `mailroomctl rule import`."""
    words = ["invoice", "rechnung", "refund", "contract", "renewal", "outage", "password",
             "delivery", "complaint", "quote"]
    out = ["rules = ("]
    for i in range(n):
        w, k = words[i % len(words)], i % 8
        if i % 500 == 499:      # one in 500: every message of the benchmark
            conds, acts = ['subject contains question'], ['tag = q%d' % (i % 7)]
        elif k == 0:
            conds, acts = ['subject ~ "\\\\b(?:%s|%s)\\\\s*#?%d\\\\b"' % (w, "re-" + w, i)], ["priority = high"]
        elif k == 1:
            conds, acts = ['body ~ "order[- ]?(?:no|nr)\\\\.?\\\\s*%d"' % (100000 + i)], ["tag = order"]
        elif k == 2:
            conds, acts = ['body contains "ref-%d-%s"' % (i, w)], ["log"]
        elif k == 3:
            conds, acts = ["from_domain = customer%d.test" % i], ["tag = customer"]
        elif k == 4:
            conds, acts = ["address ends @partner%d.test" % i], ["tag = partner"]
        elif k == 5:
            conds, acts = ['subject ~ "^(?:re|aw|fwd?):\\\\s*ticket %d\\\\b"' % i,
                           "from_domain = vip%d.test" % i], ["priority = high", "tag = vip"]
        elif k == 6:
            conds, acts = ['body ~ "(?:urgent|dringend|asap).{0,40}server-%d"' % i], ["type = incident"]
        else:
            conds, acts = ['subject contains "project-%d"' % i], ["tag = project"]
        out.append('  { name = "r%05d"; conditions = [ %s ]; actions = [ %s ]; },'
                   % (i, ", ".join('"%s"' % c.replace("\\", "\\\\").replace('"', '\\"')
                                   for c in conds),
                      ", ".join('"%s"' % a for a in acts)))
    if n:
        out[-1] = out[-1].rstrip(",")
    out.append(");")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def ctl(daemon, *args):
    p = subprocess.run([os.path.join(daemon.build, "mailroomctl"), "-c", daemon.conf] + list(args),
                       capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise BenchError("mailroomctl %s failed (exit %d): %s" % (
            " ".join(args), p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")[-2000:]))
    return p.stdout.decode()


def run_load(daemons, work, n, per=storage.PER_CONNECTION):
    """bench-storage.py's load, with a subject: (seconds, acknowledged)."""
    return storage.run_load(daemons, work, n, per, ("-S", SUBJECT))[:2]


def compiling(pid):
    """TRUE while mailroomd @pid has its rules' compile thread."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        raise BenchError("mailroomd %d is gone" % pid)
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                if f.read().strip() == "mr-rules":
                    return True
        except OSError:
            pass
    return False


def measure(config, nrules, rnd, build, work, n, pg):
    """One run: a fresh database with @nrules rules; returns the figures."""
    d = os.path.join(work, "%s-%d-%d" % (config, nrules, rnd))
    os.makedirs(d)
    if config == "A":
        db = os.path.join(d, "mailroom.db")
        daemons = [storage.Daemon(build, os.path.join(d, "mailroomd"), db)]
    else:
        dbname = "rules_%s_%d_%d" % (config.lower(), nrules, rnd)
        pg.createdb(dbname)
        spool = os.path.join(d, "spool")
        os.makedirs(spool)
        daemons = [storage.Daemon(build, os.path.join(d, "mailroomd-%d" % i), pg.uri(dbname), spool)
                   for i in range(1 if config == "B" else 2)]
    daemons[0].init()
    if nrules:
        path = os.path.join(d, "rules.conf")
        rules_file(nrules, path)
        ctl(daemons[0], "rule", "import", path)
    for dm in daemons:
        dm.start()
    t0 = time.monotonic()
    warm = run_load(daemons, d, WARMUP * len(daemons), per=WARMUP // 4)[1]
    deadline = time.monotonic() + COMPILE_TIMEOUT
    while any(compiling(dm.proc.pid) for dm in daemons):
        if time.monotonic() > deadline:
            raise BenchError("the rules' pass still compiling after %d s" % COMPILE_TIMEOUT)
        time.sleep(0.05)
    ready = time.monotonic() - t0
    if config != "A":
        pg.psql("CHECKPOINT")
        end = time.monotonic() + 10
        while storage.closing_backends(pg.pid) and time.monotonic() < end:
            time.sleep(0.02)
    pg0 = storage.cluster_ticks(pg.pid) if config != "A" else 0
    mr0 = sum(cpu_ticks(dm.proc.pid) for dm in daemons)
    seconds, acked = run_load(daemons, d, n)
    mr1 = sum(cpu_ticks(dm.proc.pid) for dm in daemons)
    pg1 = storage.cluster_ticks(pg.pid) if config != "A" else 0
    for dm in daemons:
        dm.stop()
    if config == "A":
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
        try:
            stored = con.execute("SELECT count(*) FROM message").fetchone()[0]
        finally:
            con.close()
    else:
        stored = int(pg.psql("SELECT count(*) FROM message", db=dbname).strip())
        pg.dropdb(dbname)
    if stored != acked + warm:
        raise BenchError("%s %d rules round %d: acknowledged %d, the database holds %d"
                         % (config, nrules, rnd, acked + warm, stored))
    shutil.rmtree(d, ignore_errors=True)
    return {"rate": acked / seconds, "mr_us": (mr1 - mr0) * 1e6 / TCK / acked,
            "pg_us": (pg1 - pg0) * 1e6 / TCK / acked if config != "A" else None,
            "ready": ready}


ROW = "%5s  %-24s  %6s  %7s  %10s  %10s  %9s  %8s"


def fmt(v, spec="%.1f"):
    return "" if v is None else spec % v


def main():
    n = env_int("MR_BENCH_MESSAGES", 2000)
    rounds = env_int("MR_BENCH_ROUNDS", 3)
    counts = env_list("MR_BENCH_RULES", "0,50,500,5000")
    configs = storage.env_configs()
    build = build_dir()
    need_pg = storage.require(n, configs, build)
    on_exit_kill_all()
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="mr-bench-rules-")
    os.chmod(work, 0o755)
    pg = None
    results = {(c, k): [] for c in configs for k in counts}
    try:
        if need_pg:
            pg = mrpg.PgCluster.start()
        print("mailroom rules bench: %d messages of %d bytes per run (after %d per daemon to "
              "warm up), %d cores; %d round(s) of %s x %s rules"
              % (n, storage.SIZE, WARMUP, os.cpu_count() or 0, rounds, ",".join(configs),
                 ",".join(map(str, counts))), flush=True)
        print("load average %s; CPU: user+system µs per acknowledged message; +%%: mailroomd's "
              "CPU against 0 rules in the same round; ready: seconds from the first message to "
              "the rules' pass compiled" % loadavg(), flush=True)
        print(ROW % ("round", "configuration", "rules", "msgs/s", "mailroomd", "postgres",
                     "+% rules", "ready s"), flush=True)
        for rnd in range(1, rounds + 1):
            for config in configs:
                for k in counts:
                    r = measure(config, k, rnd, build, work, n, pg)
                    results[(config, k)].append(r)
                    base = results[(config, counts[0])][-1] if counts[0] == 0 else None
                    print(ROW % (rnd, "%s %s" % (config, LABEL[config]), k, "%.0f" % r["rate"],
                                 fmt(r["mr_us"]), fmt(r["pg_us"]),
                                 "" if base is None or k == 0
                                 else "%+.1f %%" % (100 * (r["mr_us"] / base["mr_us"] - 1)),
                                 "%.1f" % r["ready"]), flush=True)
        summary(results, rounds, configs, counts)
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


def summary(results, rounds, configs, counts):
    med = statistics.median
    print()
    print("medians over %d round(s) (added: mailroomd's CPU per message against 0 rules, the "
          "change of the medians and, in brackets, the median of the per-round changes):" % rounds)
    print("%-24s  %6s  %7s  %12s  %11s  %9s  %s" % ("configuration", "rules", "msgs/s",
                                                     "mailroomd µs", "postgres µs", "total µs",
                                                     "added"))
    for c in configs:
        base = results.get((c, 0))
        for k in counts:
            runs = results[(c, k)]
            mr = med(r["mr_us"] for r in runs)
            pgv = [r["pg_us"] for r in runs if r["pg_us"] is not None]
            pgu = med(pgv) if pgv else None
            added = ""
            if base and k:
                b = med(r["mr_us"] for r in base)
                added = "%+.1f %% (%+.1f %%)" % (
                    100 * (mr / b - 1),
                    med(100 * (x["mr_us"] / y["mr_us"] - 1) for x, y in zip(runs, base)))
            print("%-24s  %6d  %7.0f  %12.1f  %11s  %9.1f  %s"
                  % ("%s %s" % (c, LABEL[c]), k, med(r["rate"] for r in runs), mr, fmt(pgu),
                     mr + (pgu or 0), added))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
