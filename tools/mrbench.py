"""mrbench - what the benchmarks tools/bench-storage.py and tools/bench-imap.py
share (each imports it from its own folder, tools/):

  - die(), env_int(), build_dir(), fmt(): errors, knobs and figures;
  - BenchError: what a run raises when something is wrong (lost mail, a
    mailroomd that did not start or exit cleanly...); main() says it and
    exits 1;
  - stat_fields(), cpu_ticks(), machine_ticks(), loadavg(): CPU from /proc;
  - Daemon: one mailroomd, with its config file and its log in a folder of
    its own (each benchmark adds its settings and its wait for the start);
  - kill_all(), on_exit_kill_all(): the processes a benchmark started
    (every mailroomd; bench-storage's smtp-source pools, registered in
    _sources) do not outlive it: killed at exit, at SIGTERM and SIGHUP,
    and, for those started with preexec_fn=_die_with_parent, when the
    benchmark dies without a chance to clean up.

Standard library only, as the benchmarks.
"""
import atexit
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# The name in error messages: the benchmark's, "bench-imap" for tools/bench-imap.py.
PROG = os.path.splitext(os.path.basename(sys.argv[0]))[0]

START_TIMEOUT = 20        # seconds until mailroomd reports its ports
STOP_TIMEOUT = 60         # seconds for mailroomd to exit after SIGTERM
READY = re.compile(r"listening smtp 127\.0\.0\.1:(\d+) lmtp 127\.0\.0\.1:(\d+)")
TCK = os.sysconf("SC_CLK_TCK")

# mailroomd's settings in both benchmarks, but the database and what each
# adds (a spool folder, limits, imap entries).
CONFIG = ('domains = [ "acme.test" ];\n'
          'addresses = (\n'
          '  { address = "crm@acme.test";     role = "bcc";     },\n'
          '  { address = "support@acme.test"; role = "support"; },\n'
          '  { address = "sales@acme.test";   role = "sales";   }\n'
          ');\n'
          'ids = { opportunity_prefix = "OPP"; ticket_prefix = "TKT"; };\n'
          'smtp = { listen = [ "127.0.0.1:0" ]; };\n'
          'lmtp = { listen = [ "127.0.0.1:0" ]; };\n'
          'hostname = "mx.acme.test";\n')


class BenchError(RuntimeError):
    pass


def die(msg):
    print("%s: %s" % (PROG, msg), file=sys.stderr, flush=True)
    sys.exit(1)


def env_int(name, default):
    v = os.environ.get(name, str(default))
    if not re.fullmatch(r"[1-9][0-9]*", v):
        die("%s=%s: want a positive number" % (name, v))
    return int(v)


def build_dir():
    """MR_BUILD (default build), relative to the top of the tree."""
    build = os.environ.get("MR_BUILD", "build")
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    return build


def fmt(v, spec="%.1f", none=""):
    """@v formatted with @spec; @none for None (a figure not taken)."""
    return none if v is None else spec % v


# --- processes ----------------------------------------------------------------

_daemons = []      # Popen of every mailroomd still running
_sources = []      # Popen of every process group (xargs and its smtp-source) still running


def _die_with_parent():
    """In the child, before exec: SIGKILL when the benchmark dies, even
    without atexit.  Linux only; best effort."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


def kill_all():
    """Kills what this benchmark started and is still running, by pid."""
    for p in list(_sources):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)   # xargs and its smtp-source
            except OSError:
                pass
            p.wait()
        _sources.remove(p)
    for p in list(_daemons):
        if p.poll() is None:
            p.kill()
            p.wait()
        _daemons.remove(p)


def on_exit_kill_all():
    """A SIGTERM or SIGHUP ends the benchmark with sys.exit, through the
    finally of its main(); kill_all() at exit in any case."""
    def on_signal(sig, frame):
        print("%s: interrupted (signal %d); cleaning up" % (PROG, sig), file=sys.stderr,
              flush=True)
        sys.exit(128 + sig)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    atexit.register(kill_all)


# --- /proc --------------------------------------------------------------------

def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (which may hold
    blanks and parentheses): [0] is field 3 (state), [1] the ppid, [2] the
    process group, [11] utime (field 14), [12] stime, [13] cutime, [14]
    cstime.  None when gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_ticks(pid):
    """utime + stime of @pid, all threads."""
    f = stat_fields(pid)
    if f is None:
        raise BenchError("process %d is gone" % pid)
    return int(f[11]) + int(f[12])


def machine_ticks():
    """Busy clock ticks of the whole machine, all CPUs (the "cpu" line of
    /proc/stat: user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --- mailroomd ------------------------------------------------------------------

class Daemon:
    """One mailroomd of the binaries in @build, with its config file (@text,
    written now: a database, CONFIG and what the benchmark adds) and its
    log in @directory.  The benchmark's subclass starts it with spawn() and
    waits for it as it needs."""

    def __init__(self, build, directory, text):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.conf = os.path.join(directory, "mailroom.conf")
        self.logpath = os.path.join(directory, "log")
        with open(self.conf, "w") as f:
            f.write(text)
        self.build = build
        self.proc = None

    def init(self):
        """mailroomctl init: the database's schema."""
        p = subprocess.run([os.path.join(self.build, "mailroomctl"), "-c", self.conf, "init"],
                           capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise BenchError("mailroomctl init failed (exit %d): %s" % (
                p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace").strip()))

    def spawn(self):
        """Starts mailroomd in the foreground, its output appended to the
        log; kill_all() kills it, and so does the benchmark's death."""
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(
                [os.path.join(self.build, "mailroomd"), "-c", self.conf, "--foreground"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=self.dir, preexec_fn=_die_with_parent)
        _daemons.append(self.proc)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM; it must exit 0.  Returns the seconds it took."""
        t0 = time.monotonic()
        self.proc.terminate()
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "killed after %d s" % STOP_TIMEOUT
        took = time.monotonic() - t0
        _daemons.remove(self.proc)
        if rc != 0:
            raise BenchError("mailroomd did not exit cleanly (%s):\n%s" % (
                rc, "\n".join(self.log().splitlines()[-10:])))
        return took
