"""mrproc - process helpers shared by the server harnesses of the
integration tests, mrpg.py (a private PostgreSQL) and mrdovecot.py (a
private Dovecot), and by mrdaemon.py and fakeimap.py; mrpg and mrdovecot
import these names under their own private names (mrpg._alive,
mrdovecot._stat...), which the tests use too.

  - free_port(): a free TCP port of 127.0.0.1;
  - tail(), log_marks(), log_since(): the end of a log, for an error
    message; what a start attempt added to its logs ("Address already in
    use": try another port);
  - wait_until(): poll a condition with a deadline;
  - stat(), alive(), cmdline(), wait_gone(): processes, through /proc
    (Linux), alive() with a kill(0) fallback;
  - signal_ladder(), terminate(): stop a process, a signal at a time, each
    with a bound (SIGTERM, then SIGKILL);
  - reap(), reap_group(): waitpid() what we adopted as a subreaper;
  - subreaper(): prctl(PR_SET_CHILD_SUBREAPER), so that the test process
    adopts (and reaps) what a server forks and leaves behind;
  - start_watchdog(), end_watchdog(), watchdog_input(): both sides of the
    watchdog.  The harness starts `python3 -I HARNESS.py --watchdog`, in a
    session of its own, with the read end of a pipe as its stdin; the test
    process holds the only write end and writes what there is to clean up
    (the harness decides the lines).  When the test process ends in any way
    (SIGKILL, os._exit, a prove timeout), or the harness's stop() closes
    the pipe, the watchdog reads EOF and cleans up as its harness says.
    -I leaves the script's folder off sys.path: a harness run that way
    puts its folder there itself before it imports this module;
  - Harness: the life of a server harness, its temporary folder, its
    watchdog, stop() at exit (atexit) and as a context manager, start()
    callable on the class or an instance; PgCluster and DovecotServer
    are Harnesses.

Standard library only, as the harnesses.
"""
import os
import signal
import socket
import atexit
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"


def free_port():
    """A TCP port free on 127.0.0.1 right now (it may be taken before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tail(path, n=40):
    """The last @n lines of the file @path (None: not made yet), or why
    they cannot be read."""
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except (OSError, TypeError) as e:
        return "(%s)" % e
    return "\n".join(lines[-n:])


def log_marks(paths):
    """{path: its size now (0: not made yet)} for each of @paths, before a
    start attempt, for log_since()."""
    marks = {}
    for path in paths:
        try:
            marks[path] = os.path.getsize(path)
        except OSError:
            marks[path] = 0
    return marks


def log_since(marks):
    """What the files of @marks (log_marks()) gained since, joined."""
    text = ""
    for path, start in marks.items():
        try:
            with open(path, "rb") as f:
                f.seek(start)
                text += f.read().decode("utf-8", "replace")
        except OSError:
            pass
    return text


def wait_until(check, timeout, interval=0.02):
    """Calls @check every @interval seconds until it returns a true value,
    at most @timeout seconds (it is called once more at the deadline);
    returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = check()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


# --- processes, through /proc (Linux), with a kill(0) fallback -------------

def stat(pid):
    """(state, ppid, pgrp) of @pid, or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            rest = f.read().rsplit(b")", 1)[1].split()
        return rest[0].decode(), int(rest[1]), int(rest[2])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid):
    """True while @pid runs (a zombie is dead); without /proc, kill(0)."""
    if os.path.isdir("/proc/self"):
        st = stat(pid)
        return st is not None and st[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmdline(pid):
    """The command line of @pid, its arguments joined by blanks; "" when
    gone (or a zombie, a kernel thread)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def wait_gone(pids, seconds):
    """Waits until none of @pids is alive(), at most @seconds; True when
    they are all gone."""
    return wait_until(lambda: not any(alive(p) for p in pids), seconds)


def signal_ladder(pid, steps):
    """Sends @pid each (signal, seconds) of @steps in turn, waiting up to
    those seconds for it to be gone before the next one, e.g.
    ((SIGTERM, 10), (SIGKILL, 5)).  True when it is gone; False when it
    is still there or is not ours to signal."""
    for sig, seconds in steps:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        if wait_gone([pid], seconds):
            return True
    return not alive(pid)


def terminate(proc, grace=10, sig=signal.SIGTERM):
    """Stops the Popen @proc: @sig (unless it has exited), waits @grace
    seconds, then SIGKILL and 5 s more.  Returns its exit status, None
    when it had to be killed (or would not die)."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except OSError:
            pass
    try:
        return proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    proc.kill()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    return None


def reap(pid, seconds=10):
    """waitpid() for @pid, adopted through subreaper() (no-op when it is
    not our child), at most @seconds."""
    def reaped():
        try:
            return os.waitpid(pid, os.WNOHANG)[0] == pid
        except ChildProcessError:
            return True         # not our child: pid 1 (or its parent) has it
    wait_until(reaped, seconds)


def reap_group(pgid, seconds=2):
    """waitpid() on our children of process group @pgid (adopted while we
    were a subreaper) until none is left, at most @seconds."""
    me = os.getpid()

    def none_left():
        ours = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                st = stat(int(p))
                if st is not None and st[1] == me and st[2] == pgid:
                    ours.append(int(p))
        for p in ours:
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass
        return not ours
    wait_until(none_left, seconds)


def subreaper(on):
    """prctl(PR_SET_CHILD_SUBREAPER): a process whose parent dies is adopted
    by the nearest subreaper, else by pid 1, which on some machines
    (containers, VMs with a minimal init) never reaps it: a zombie.  While
    the test process is a subreaper it adopts them (the postmaster that
    pg_ctl forks and leaves, the children of a Dovecot master that died)
    and the harness reaps them.  Returns the previous setting, None when
    not supported (not Linux)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        old = ctypes.c_int(0)
        if libc.prctl(37, ctypes.byref(old), 0, 0, 0) != 0:     # PR_GET_CHILD_SUBREAPER
            return None
        libc.prctl(36, int(on), 0, 0, 0)                         # PR_SET_CHILD_SUBREAPER
        return bool(old.value)
    except (OSError, AttributeError):
        return None


# --- the watchdog -------------------------------------------------------------

def start_watchdog(harness, first):
    """Starts `python3 -I @harness --watchdog` (@harness: the path of the
    harness's file) in a session of its own, reading a pipe; writes the
    line @first to it.  Returns (the Popen, the pipe's write end): write
    more lines to it with os.write, close it with end_watchdog()."""
    r, w = os.pipe()       # not inheritable: only this process holds w
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(harness), "--watchdog"],
            stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", start_new_session=True)
    finally:
        os.close(r)
    os.write(w, (first + "\n").encode())
    return proc, w


def end_watchdog(proc, fd):
    """Closes @fd, the pipe of the watchdog @proc: it cleans up what is
    left and ends.  Waits for it (30 s, then SIGKILL)."""
    os.close(fd)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        terminate(proc, 0, signal.SIGKILL)


def watchdog_input():
    """In the watchdog: ignores SIGINT and SIGHUP, reads stdin until EOF
    (the test process has ended, or its stop() is done) and returns the
    lines read, stripped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return [line.decode("utf-8", "replace").strip() for line in sys.stdin.buffer]


# --- the life of a server harness -------------------------------------------

class either:
    """A start() that works on the class (Server.start(users=3) -> a new
    server, made with the keyword arguments other than timeout, started)
    and on an instance (server.start() -> that server, started)."""

    def __init__(self, f):
        self.f = f
        self.__doc__ = f.__doc__

    def __get__(self, obj, cls):
        if obj is None:
            def make(*args, timeout=None, **kw):
                server = cls(**kw)
                if timeout is not None:
                    args = (timeout,) + args
                return self.f(server, *args)
            return make
        return lambda *a, **k: self.f(obj, *a, **k)


class Harness:
    """What PgCluster (mrpg.py) and DovecotServer (mrdovecot.py) share:
    a temporary folder (self.dir) for the server's data, logs and sockets,
    a watchdog that cleans up after a test process that ended without
    stop(), and stop() at exit and at the end of a `with` block.

    A subclass sets NAME (its module, in messages), WATCHDOG (the path of
    its file) and defines stop(); it calls _harness_init() in __init__,
    _make_dir() and _begin() in its first start(), and _finish() at the
    end of its stop(), once the server is down."""

    NAME = "harness"
    WATCHDOG = None

    def _harness_init(self):
        self.dir = None
        self._lock = threading.Lock()
        self._owner = os.getpid()
        self._watch = None
        self._watch_fd = None

    def _make_dir(self, prefix, usable):
        """A folder tempfile.mkdtemp(prefix=@prefix) makes under TMPDIR,
        else under /tmp: the first that @usable(path) accepts (a socket
        path short enough, reachable by the server's user; it may prepare
        the folder too); one it refuses is removed.  None when neither."""
        for parent in (None, "/tmp"):
            d = tempfile.mkdtemp(prefix=prefix, dir=parent)
            if usable(d):
                return d
            shutil.rmtree(d, ignore_errors=True)
        return None

    def _begin(self, first):
        """Registers stop() at exit and starts the watchdog, to which it
        writes the line @first (the folder, in the harness's words)."""
        atexit.register(self._atexit)
        self._watch, self._watch_fd = start_watchdog(self.WATCHDOG, first)

    def _tell_watchdog(self, line):
        if self._watch_fd is not None:
            os.write(self._watch_fd, (line + "\n").encode())

    def _finish(self):
        """The server is down: removes the folder, ends the watchdog."""
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self._watch_fd is not None:
            fd, self._watch_fd = self._watch_fd, None
            end_watchdog(self._watch, fd)

    def _atexit(self):
        if os.getpid() != self._owner:     # a forked child exiting: not ours
            return
        try:
            self.stop()
        except Exception as e:  # noqa: BLE001 - at exit, say it and go on
            print("# %s: %s" % (self.NAME, e), file=sys.stderr, flush=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
