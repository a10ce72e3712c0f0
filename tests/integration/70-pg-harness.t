#!/usr/bin/env python3
# The harness for the PostgreSQL tests (mrpg.py), before there is a
# PostgreSQL driver to test: a private cluster starts on 127.0.0.1 only
# (PostgreSQL >= 15, fsync on, UTF-8), databases are made and dropped,
# two connections work at once, a UTF-8 string comes back unchanged, a
# failing statement raises with psql's message; a port taken under our feet
# is retried and, when it always is, the error carries the server log;
# stop() leaves no process and no folder, and neither does a test process
# killed with SIGKILL (the watchdog).
# Skipped when the PostgreSQL server is not installed (developer machines:
# CI installs it, make deps).
import os
import signal
import socket
import subprocess
import sys
import threading
import time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mrpg  # noqa: E402

T0 = time.monotonic()
if not mrpg.available():
    print("1..0 # SKIP %s" % mrpg.unavailable_reason())
    sys.exit(0)

from mrtest import Tap  # noqa: E402 - after the skip check: Tap prints a plan at exit

t = Tap()
section = t.section


def procs_mentioning(text):
    """Pids of the processes whose command line contains @text."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd:
            found.append((int(p), cmd))
    return found


def listening(port):
    """The local addresses (hex, as in /proc/net/tcp*) listening on @port."""
    addrs = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    local, state = line.split()[1], line.split()[3]
                    addr, hport = local.split(":")
                    if state == "0A" and int(hport, 16) == port:     # 0A: LISTEN
                        addrs.append(addr)
        except OSError:
            pass
    return addrs


def exists(pid):
    return os.path.exists("/proc/%d" % pid)


t0 = time.monotonic()
try:
    pg = mrpg.PgCluster.start()
except mrpg.PgError as e:
    t.ok(False, "a private cluster starts", str(e))
    sys.exit(1)
t.ok(True, "a private cluster starts in %s on 127.0.0.1:%d (%.1fs)" % (
    pg.dir, pg.port, time.monotonic() - t0))

with section("the server"):
    t.ok(pg.version >= 150000, "server version >= 15", pg.version)
    t.eq(int(pg.psql("SHOW server_version_num").strip()), pg.version,
         "server_version_num through psql")
    t.eq(pg.psql("SHOW fsync").strip(), "on", "fsync is on")
    t.eq(pg.psql("SHOW listen_addresses").strip(), "127.0.0.1", "listen_addresses is 127.0.0.1")
    t.eq(listening(pg.port), ["0100007F"], "it listens on 127.0.0.1:%d and nowhere else" % pg.port)
    t.eq(pg.psql("SHOW server_encoding").strip(), "UTF8", "server encoding UTF8")
    t.eq(pg.psql("SELECT current_user").strip(), "mailroom", "the superuser is mailroom")
    t.eq(pg.psql("SHOW max_connections").strip(), "200", "max_connections = 200")
    t.ok(os.path.exists(os.path.join(pg.dir, ".s.PGSQL.%d" % pg.port)),
         "its Unix socket is in the cluster's folder, not in /var/run/postgresql")
    t.eq(pg.uri("x"), "postgresql://mailroom@127.0.0.1:%d/x" % pg.port, "uri(name)")
    t.eq(pg.uri(), "postgresql://mailroom@127.0.0.1:%d/mailroom" % pg.port, "uri() names mailroom")

with section("createdb"):
    pg.createdb("mrpg_test")
    t.eq(pg.psql("SELECT current_database()", db="mrpg_test").strip(), "mrpg_test",
         "createdb: a connection to the new database")
    try:
        pg.createdb("mrpg_test")
        t.ok(False, "createdb of an existing database raises")
    except mrpg.PgError as e:
        t.ok("already exists" in str(e), "createdb of an existing database raises, with why", e)

with section("a failing statement"):
    try:
        pg.psql("SELECT * FROM no_such_table", db="mrpg_test")
        t.ok(False, "a failing statement raises")
    except mrpg.PgError as e:
        t.ok('relation "no_such_table" does not exist' in str(e),
             "a failing statement raises PgError with psql's stderr", e)

with section("two connections at once"):
    # A barrier: each connection commits its row, then waits until it sees
    # the other's.  Both can pass only if both were connected at once.
    pg.psql("CREATE TABLE barrier (pid int PRIMARY KEY)", db="mrpg_test")
    barrier = """DO $$
    BEGIN
      INSERT INTO barrier VALUES (pg_backend_pid());
      COMMIT;
      FOR i IN 1..200 LOOP
        EXIT WHEN (SELECT count(*) FROM barrier) >= 2;
        PERFORM pg_sleep(0.05);
      END LOOP;
      IF (SELECT count(*) FROM barrier) < 2 THEN
        RAISE EXCEPTION 'the other connection never came';
      END IF;
    END $$"""
    errors = []

    def peer():
        try:
            pg.psql(barrier, db="mrpg_test", timeout=30)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=peer) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(40)
    t.eq(errors, [], "two psql connections met at the barrier")
    t.eq(pg.psql("SELECT count(DISTINCT pid) FROM barrier", db="mrpg_test").strip(), "2",
         "two different backends")

with section("UTF-8"):
    s = "Grüße aus Köln – 東京 – Ελληνικά – ıİ – 📬"
    pg.psql("CREATE TABLE u (s text)", db="mrpg_test")
    pg.psql("INSERT INTO u VALUES ($mr$%s$mr$)" % s, db="mrpg_test")
    t.eq(pg.psql("SELECT s FROM u", db="mrpg_test").rstrip("\n"), s, "a UTF-8 string round-trips")
    t.eq(pg.psql("SELECT char_length(s) || ' ' || octet_length(s) FROM u", db="mrpg_test").strip(),
         "%d %d" % (len(s), len(s.encode("utf-8"))), "stored as characters, not bytes")

with section("dropdb"):
    pg.dropdb("mrpg_test")
    t.eq(pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'mrpg_test'").strip(), "0",
         "dropdb")

with section("stop"):
    d, pid = pg.dir, pg.pid
    kids = [int(p) for p in os.listdir("/proc") if p.isdigit() and mrpg._stat(int(p))
            and mrpg._stat(int(p))[1] == pid]
    t.ok(pid is not None and exists(pid) and len(kids) >= 3,
         "the postmaster (%s) and its %d children run" % (pid, len(kids)))
    t0 = time.monotonic()
    pg.stop()
    t.ok(True, "stop() (%.1fs)" % (time.monotonic() - t0))
    t.eq(procs_mentioning(d), [], "no process mentions %s" % d)
    t.eq([p for p in [pid] + kids if exists(p)], [],
         "the postmaster and its children are gone (reaped, not zombies)")
    t.ok(not os.path.exists(d), "the folder is removed")
    t.ok(pg._watch.returncode is not None, "the watchdog has ended")
    pg.stop()
    t.ok(True, "stop() again: nothing to do")

with section("a port taken before the server binds it"):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real = mrpg.free_port
    calls = []

    def once_taken():
        calls.append(1)
        return taken if len(calls) == 1 else real()

    mrpg.free_port = once_taken
    try:
        pg2 = mrpg.PgCluster.start()
    finally:
        mrpg.free_port = real
    t.ok(pg2.port != taken and len(calls) == 2,
         "started on another port (%d, not %d) at the second try" % (pg2.port, taken))
    t.ok("Address already in use" in pg2.log(), "the log shows the first try", pg2.log())
    d2 = pg2.dir
    pg2.stop()
    t.ok(not os.path.exists(d2) and procs_mentioning(d2) == [], "stopped and removed")

    mrpg.free_port = lambda: taken
    try:
        pg3 = mrpg.PgCluster()
        pg3.start()
        t.ok(False, "a port always taken: start raises")
    except mrpg.PgError as e:
        msg = str(e)
        t.ok("pg_ctl start (port %d) failed (exit 1)" % taken in msg and "last 40 lines" in msg
             and "Address already in use" in msg,
             "a port always taken: PgError with the end of the server log", msg)
        t.ok(not os.path.exists(pg3.dir) and procs_mentioning(pg3.dir) == [],
             "nothing left after the failed start")
    finally:
        mrpg.free_port = real
        blocker.close()

with section("a test process killed with SIGKILL"):
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import os, signal, sys; sys.path.insert(0, %r); import mrpg\n"
         "pg = mrpg.PgCluster.start()\n"
         "print(pg.dir, pg.pid, pg._watch.pid, flush=True)\n"
         "os.kill(os.getpid(), signal.SIGKILL)\n" % HERE],
        stdout=subprocess.PIPE, text=True)
    out, _ = child.communicate(timeout=90)
    t.eq(child.returncode, -signal.SIGKILL, "the child started a cluster and was killed")
    d3, pid3, watch3 = out.split()
    pid3, watch3 = int(pid3), int(watch3)
    end = time.monotonic() + 30
    while time.monotonic() < end and (os.path.exists(d3) or mrpg._alive(pid3)
                                      or mrpg._alive(watch3)):
        time.sleep(0.1)
    t.ok(not mrpg._alive(pid3), "the watchdog stopped its postmaster")
    t.eq(procs_mentioning(d3), [], "no process mentions %s" % d3)
    t.ok(not os.path.exists(d3), "the watchdog removed the folder")
    t.ok(not mrpg._alive(watch3), "the watchdog has ended")

t.diag("70-pg-harness.t took %.1fs" % (time.monotonic() - T0))
