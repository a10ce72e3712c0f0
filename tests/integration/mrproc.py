"""mrproc - process helpers shared by the server harnesses of the
integration tests, mrpg.py (a private PostgreSQL) and mrdovecot.py (a
private Dovecot); each imports these names under its own private names
(mrpg._alive, mrdovecot._stat...), which the tests use too.

  - free_port(): a free TCP port of 127.0.0.1;
  - tail(): the end of a log, for an error message;
  - stat(), alive(), cmdline(), wait_gone(): processes, through /proc
    (Linux), alive() with a kill(0) fallback;
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
    puts its folder there itself before it imports this module.

Standard library only, as the harnesses.
"""
import os
import signal
import socket
import subprocess
import sys
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
    end = time.monotonic() + seconds
    while True:
        if not any(alive(p) for p in pids):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)


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
        proc.kill()
        proc.wait()


def watchdog_input():
    """In the watchdog: ignores SIGINT and SIGHUP, reads stdin until EOF
    (the test process has ended, or its stop() is done) and returns the
    lines read, stripped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return [line.decode("utf-8", "replace").strip() for line in sys.stdin.buffer]
