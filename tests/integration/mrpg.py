"""mrpg - a private PostgreSQL cluster on 127.0.0.1 for an integration test.

    import mrpg
    if not mrpg.available():
        print("1..0 # SKIP %s" % mrpg.unavailable_reason()); sys.exit(0)
    pg = mrpg.PgCluster.start()          # or: pg = mrpg.PgCluster(); pg.start()
    pg.createdb("mailroom")
    uri = pg.uri()                       # postgresql://mailroom@127.0.0.1:PORT/mailroom
    print(pg.psql("SELECT 1", db="mailroom"))
    pg.stop()                            # also at exit; idempotent

Each cluster lives in its own temporary folder (tempfile.mkdtemp, prefix
"mrpg-"): initdb into DIR/data (superuser "mailroom", trust authentication,
UTF-8, locale C.UTF-8), server log in DIR/log, Unix socket in DIR, TCP on a
free port of 127.0.0.1 only, fsync on.  The "mailroom" database of uri()'s
default does not exist until createdb("mailroom").  The cluster installed
by the Debian package (pg_lsclusters "main") is never used.

The server refuses to run as root: as root, the folder is given to the
"postgres" user and initdb and pg_ctl run through `runuser -u postgres --`.
The client tools (psql, createdb, dropdb) run as the caller, over TCP.

The postmaster does not outlive the test: stop() is registered with atexit
(exceptions, sys.exit), and a small watchdog process, in its own session,
waits on a pipe whose only writer is the test process.  When the test
process ends in any way (SIGKILL, os._exit, a prove timeout) the pipe
closes and the watchdog shuts the server down (SIGINT, then SIGQUIT, then
SIGKILL) and removes the folder.  Note that mrtest.Tap calls os._exit(1) at
exit when a test failed, which skips the atexit handlers registered before
the Tap: create the Tap before the cluster (the watchdog cleans up anyway).

The process helpers (/proc, the subreaper, both sides of the watchdog,
free_port) and the life of the folder, the watchdog and stop() at exit
(mrproc.Harness) are those of mrproc.py, shared with mrdovecot.py.

Standard library only (no psycopg): python3 on the test machines is not
Debian's and cannot import Debian's python3-* packages.
"""
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys

if __name__ == "__main__":
    # python3 -I mrpg.py --watchdog: -I leaves this file's folder, that of
    # mrproc, off sys.path.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrproc import (  # noqa: E402 - the names the tests know (mrpg._alive...)
    Harness, alive as _alive, cmdline as _cmdline, either as _either, free_port,
    log_marks, log_since, reap as _reap, signal_ladder, stat as _stat,
    subreaper as _subreaper, tail as _tail, wait_gone as _wait_gone, watchdog_input)

HOST = "127.0.0.1"
USER = "mailroom"
START_ATTEMPTS = 5      # a free port can be taken before the server binds it
SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
CLIENT_TOOLS = ("psql", "createdb", "dropdb")


class PgError(RuntimeError):
    """initdb, the server or a client tool failed; the message says why."""


def _has_tools(bindir, tools):
    return bool(bindir) and all(os.access(os.path.join(bindir, x), os.X_OK) for x in tools)


def bindir():
    """The folder of initdb, pg_ctl and postgres: `pg_config --bindir` when it
    has them (on Debian, pg_config comes with libpq-dev and may be of another
    version than the server), else the newest /usr/lib/postgresql/*/bin that
    has them; None when there is none."""
    try:
        p = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=30)
        if p.returncode == 0 and _has_tools(p.stdout.strip(), SERVER_TOOLS + CLIENT_TOOLS):
            return p.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass

    def version(path):
        v = path.split(os.sep)[-2]
        return tuple(int(x) for x in re.findall(r"\d+", v)) or (0,)

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if _has_tools(d, SERVER_TOOLS + CLIENT_TOOLS):
            return d
    return None


def unavailable_reason():
    """None when a private cluster can be started here, else why not."""
    if bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl, postgres) not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def available():
    """True when the PostgreSQL server binaries are installed (and, as root,
    the postgres user and runuser are there).  CI installs them (make deps:
    the package postgresql in tools/deps.sh), so a test that skips when this
    is False skips only on developer machines without PostgreSQL."""
    return unavailable_reason() is None


def _clean_env(**extra):
    """The caller's environment without PG* variables (PGHOST, PGPORT,
    PGDATABASE, PGSERVICE, PGOPTIONS, PGDATA, PGCLUSTER... would redirect
    or change the tools), plus @extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


# --- processes, through /proc (Linux; _stat, _alive... are mrproc's) --------

def _children(pid):
    kids = []
    for p in glob.glob("/proc/[0-9]*"):
        st = _stat(int(p[6:]))
        if st is not None and st[1] == pid:
            kids.append(int(p[6:]))
    return kids


def postmaster_pid(datadir):
    """The pid of the live postmaster of @datadir, from postmaster.pid, or None."""
    try:
        with open(os.path.join(datadir, "postmaster.pid")) as f:
            pid = int(f.readline().strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    cmd = _cmdline(pid)
    # A pid reused by something else is not ours to kill.
    if cmd and datadir not in cmd and "postgres" not in cmd.split(" ")[0]:
        return None
    return pid


def kill_postmaster(datadir, grace=15):
    """Stops the server of @datadir with signals, whoever runs it: SIGINT
    (fast shutdown), then SIGQUIT (immediate), then SIGKILL, then SIGKILL to
    any backend left.  True when no postmaster is left."""
    pid = postmaster_pid(datadir)
    if pid is None:
        return True
    kids = _children(pid)
    signal_ladder(pid, ((signal.SIGINT, grace), (signal.SIGQUIT, 5), (signal.SIGKILL, 5)))
    # Backends notice the postmaster's death by themselves; do not wait on it.
    left = [k for k in kids if _alive(k) and _cmdline(k).startswith("postgres")]
    for k in left:
        try:
            os.kill(k, signal.SIGKILL)
        except OSError:
            pass
    _wait_gone(left, 5)
    return not _alive(pid)


def _watchdog():
    """python3 mrpg.py --watchdog: reads the cluster's folder from stdin,
    waits for EOF (the test process has ended, or stop() is done), then
    makes sure the server is down and the folder gone."""
    lines = watchdog_input()
    d = lines[0] if lines else ""
    if not d or not os.path.isabs(d) or not os.path.basename(d).startswith("mrpg-"):
        return
    kill_postmaster(os.path.join(d, "data"))
    shutil.rmtree(d, ignore_errors=True)


# --- the cluster ------------------------------------------------------------

# pg_ctl forks the postmaster and exits; the orphan goes to the nearest
# subreaper, else to pid 1, which on some machines (containers, VMs with a
# minimal init) never reaps it: every stopped cluster would leave a zombie.
# While the test process is a subreaper (_subreaper, mrproc's) it adopts the
# postmaster, and stop() reaps it (_reap, mrproc's).

class PgCluster(Harness):
    """A private PostgreSQL cluster; see the module's documentation.
    start() works on the class (PgCluster.start() -> a started cluster)
    and on an instance (PgCluster().start() -> that cluster)."""

    NAME = "mrpg"
    WATCHDOG = __file__

    def __init__(self):
        self._harness_init()
        self.bindir = bindir()
        self.data = None
        self.logfile = None
        self.port = None
        self.pid = None          # the postmaster's
        self.version = None      # server_version_num, an int
        self._started = False
        self._stopped = False
        self._as_root = os.geteuid() == 0

    # -- helpers --

    def _server_cmd(self, tool, *args):
        cmd = [os.path.join(self.bindir, tool)] + list(args)
        return (["runuser", "-u", "postgres", "--"] + cmd) if self._as_root else cmd

    def _run_server_tool(self, tool, *args, timeout=120):
        # cwd: the caller's folder may not be readable by postgres.
        return subprocess.run(self._server_cmd(tool, *args), cwd=self.dir, env=_clean_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)

    def _client(self, tool, *args, timeout=60):
        cmd = [os.path.join(self.bindir, tool), "-h", HOST, "-p", str(self.port), "-U", USER]
        p = subprocess.run(cmd + list(args), env=_clean_env(PGCONNECT_TIMEOUT="10",
                                                            PGCLIENTENCODING="UTF8"),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = p.stdout.decode("utf-8", "replace")
        if p.returncode != 0:
            what = " ".join(a if isinstance(a, str) else a.decode("utf-8", "replace")
                            for a in args)
            if len(what) > 300:
                what = what[:300] + "..."
            raise PgError("%s %s failed (exit %d): %s" % (
                tool, what, p.returncode, p.stderr.decode("utf-8", "replace").strip()))
        return out

    def _usable(self, d):
        if len(d) + len("/.s.PGSQL.65535") >= 100:     # sun_path: 108 bytes
            return False
        if not self._as_root:
            return True
        os.chown(d, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
        # TMPDIR under /root, say: postgres could not reach it.
        return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", d, "-a",
                               "-x", d], cwd="/", capture_output=True,
                              timeout=30).returncode == 0

    def _fail(self, what, p, log, show_output=True):
        """A PgError: what failed, the tool's output, the end of @log."""
        out = ""
        if p is not None and show_output:
            out = (p.stdout + p.stderr).decode("utf-8", "replace").strip() + "\n"
        return PgError("%s failed (%s)\n%s--- last 40 lines of %s ---\n%s" % (
            what, "timed out" if p is None else "exit %d" % p.returncode, out, log, _tail(log)))

    # -- the API --

    @_either
    def start(self, timeout=60):
        """initdb and start the server; returns the cluster.  Raises PgError
        (with the end of the log) when initdb or the start fails."""
        if self._started:
            return self
        if self.bindir is None:
            raise PgError(unavailable_reason() or "no PostgreSQL binaries")
        self.dir = self._make_dir("mrpg-", self._usable)
        if self.dir is None:
            raise PgError("no temporary folder the server can use "
                          "(socket path length, permissions)")
        self._started = True
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "log")
        try:
            self._begin(self.dir)
            self._initdb(timeout)
            self._start_server(timeout)
        except BaseException:
            try:
                self.stop()
            except PgError:
                pass
            raise
        return self

    def _initdb(self, timeout):
        initlog = os.path.join(self.dir, "initdb.log")
        try:
            p = self._run_server_tool("initdb", "-D", self.data, "-A", "trust", "-U", USER,
                                      "-E", "UTF8", "--locale=C.UTF-8", timeout=timeout + 60)
        except subprocess.TimeoutExpired:
            raise PgError("initdb did not finish in %d s" % (timeout + 60)) from None
        with open(initlog, "wb") as f:
            f.write(p.stdout + p.stderr)
        if p.returncode != 0:
            raise self._fail("initdb -D %s" % self.data, p, initlog, show_output=False)

    def _start_server(self, timeout):
        for attempt in range(START_ATTEMPTS):
            self.port = free_port()
            opts = "-p %d -k %s -c listen_addresses=%s -c fsync=on -c max_connections=200" % (
                self.port, shlex.quote(self.dir), HOST)
            # more server options, for a benchmark's look inside (say
            # "-c shared_preload_libraries=pg_stat_statements")
            if os.environ.get("MR_PG_SERVER_OPTS"):
                opts += " " + os.environ["MR_PG_SERVER_OPTS"]
            marks = log_marks([self.logfile])
            was = _subreaper(True)
            try:
                p = self._run_server_tool("pg_ctl", "-D", self.data, "-w", "-t", str(timeout),
                                          "-o", opts, "-l", self.logfile, "start",
                                          timeout=timeout + 30)
            except subprocess.TimeoutExpired:
                p = None
            finally:
                if was is False:
                    _subreaper(False)
            if p is not None and p.returncode == 0:
                self.pid = postmaster_pid(self.data)
                self.version = int(self.psql("SHOW server_version_num").strip())
                return
            # Timed out, or it died: make sure no half-started server is left.
            pid = postmaster_pid(self.data)
            kill_postmaster(self.data)
            if pid is not None:
                _reap(pid)
            if "Address already in use" in log_since(marks) and attempt + 1 < START_ATTEMPTS:
                continue       # the port was taken after free_port(): another one
            raise self._fail("pg_ctl start (port %d)" % self.port, p, self.logfile)

    def uri(self, dbname="mailroom"):
        """postgresql://mailroom@127.0.0.1:PORT/DBNAME (trust: no password)."""
        return "postgresql://%s@%s:%d/%s" % (USER, HOST, self.port, dbname)

    def createdb(self, name):
        self._client("createdb", "--", name)

    def dropdb(self, name, force=False):
        """force: terminate the database's connections first (DROP ... WITH (FORCE))."""
        self._client("dropdb", *(["--force"] if force else []), "--", name)

    def psql(self, sql, db="postgres", timeout=60):
        """Runs @sql with psql -X -A -t -v ON_ERROR_STOP=1 -c; returns its
        stdout (unaligned, tuples only: "a|b" lines).  Several statements in
        one @sql run in one transaction, as psql -c does.  Raises PgError
        with psql's stderr on failure."""
        return self._client("psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db,
                            "-c", sql.encode("utf-8"), timeout=timeout)

    def log(self):
        """The server log so far (for a diagnostic)."""
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def stop(self):
        """pg_ctl stop -m fast (signals if that fails), remove the folder,
        end the watchdog.  Idempotent.  Raises PgError if the server could
        not be stopped."""
        with self._lock:
            if self._stopped or not self._started:
                return
            self._stopped = True
            ok = True
            if self.data and postmaster_pid(self.data) is not None:
                try:
                    p = self._run_server_tool("pg_ctl", "-D", self.data, "-w", "-t", "60",
                                              "-m", "fast", "stop", timeout=90)
                    ok = p.returncode == 0
                except subprocess.TimeoutExpired:
                    ok = False
                if not ok:
                    ok = kill_postmaster(self.data)
            if self.pid is not None:
                # pg_ctl -w returns when the pid file is gone: the
                # postmaster may still be ending; give it a moment, then
                # signals (to the pid: the file that names it is gone)
                if not _wait_gone([self.pid], 15):
                    ok = signal_ladder(self.pid, ((signal.SIGQUIT, 5), (signal.SIGKILL, 5)))
                _reap(self.pid)
            if not ok:
                # Keep the folder of a server still running; the watchdog
                # tries again when this process ends.
                raise PgError("the server of %s could not be stopped (pid %s)"
                              % (self.dir, self.pid))
            self._finish()


if __name__ == "__main__" and sys.argv[1:] == ["--watchdog"]:
    _watchdog()
