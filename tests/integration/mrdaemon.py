"""mrdaemon - the real mailroomd for an integration test.

    d = Daemon(extra="limits = { timeout = 1; };")   # init, start, learn ports
    c = d.raw()                                      # raw SMTP client
    code, text = c.cmd("EHLO client.test")
    d.stop()                                         # SIGTERM, returns the exit code

The daemon runs in the foreground on 127.0.0.1 with ephemeral ports
(127.0.0.1:0), read back from its "listening smtp ... lmtp ..." log line.
Its stderr and stdout (GLib writes info and debug there) are drained by a
thread into Daemon.lines, so tests can wait for log lines (reloads,
refusals) and the pipe never fills.  Every daemon still running when the
test ends is killed (atexit); every socket has a timeout.
"""
import atexit
import os
import re
import signal
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import threading
import time

from mrproc import terminate
from mrtest import BUILD, Env, message

HOST = "127.0.0.1"
LISTEN = ('smtp = {{ listen = [ "127.0.0.1:0" ]; {smtp} }};\n'
          'lmtp = {{ listen = [ "127.0.0.1:0" ]; }};\n')
READY = re.compile(r"listening smtp 127\.0\.0\.1:(\d+) lmtp 127\.0\.0\.1:(\d+)")
IO_TIMEOUT = 10      # seconds, for every socket operation
START_TIMEOUT = 10   # seconds until the "listening" line

_running = []


def _kill_all():
    for d in list(_running):
        d.kill()


atexit.register(_kill_all)


def _die_with_parent():
    """In the child, before exec: SIGKILL when the test process dies, even
    without atexit (killed by prove's timeout, say).  Linux only."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def self_signed_cert(directory):
    """Makes a throw-away self-signed certificate; returns (cert, key) paths."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def tls_config(cert, key):
    return 'tls = { cert = "%s"; key = "%s"; };\n' % (cert, key)


# For daemons that do TLS: under ASan (make asan), gcc 12's LeakSanitizer
# crashes at exit ("Tracer caught signal 11" in the DTLS of a thread that
# glib-networking/GnuTLS started) and the exit code becomes 1.  Leak checking
# is switched off for those daemons only; memory errors are still caught.
TLS_ENVIRON = {"ASAN_OPTIONS": ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "detect_leaks=0")
                                        if x)}


def client_tls_context():
    """A client context that accepts the self-signed test certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Daemon:
    """One mailroomd with its own temporary Env (config + database)."""

    def __init__(self, extra="", env=None, start=True, hostname="mx.acme.test", debug=False,
                 environ=None, smtp=""):
        """@extra: config text appended; @smtp: more keys of the smtp group
        (which holds the listener)."""
        self.hostname = hostname
        self.smtp_keys = smtp
        self.debug = debug
        self.environ = dict(environ or {})
        self.env = env if env is not None else Env()
        self.extra = extra
        self.write_config(extra)
        rc, out, err = self.env.ctl("init")
        if rc != 0:
            raise RuntimeError("mailroomctl init failed (%d): %s" % (rc, err))
        self.proc = None
        self.lines = []
        self.eof = False
        self.cond = threading.Condition()
        self.smtp_port = self.lmtp_port = None
        if start:
            self.start()

    # --- configuration -----------------------------------------------------

    def config_text(self, extra):
        return LISTEN.format(smtp=self.smtp_keys) + 'hostname = "%s";\n' % self.hostname + extra

    def write_config(self, extra):
        """Rewrites the config (the Env base + listeners + @extra)."""
        self.extra = extra
        self.env.write_config(self.config_text(extra))

    def add_address(self, address, role):
        """Adds a mailroom address to the config file (not reloaded here)."""
        with open(self.env.conf) as f:
            text = f.read()
        i = text.index("\n);")
        text = text[:i] + ',\n  { address = "%s"; role = "%s"; }' % (address, role) + text[i:]
        with open(self.env.conf, "w") as f:
            f.write(text)

    def write_raw_config(self, text):
        with open(self.env.conf, "w") as f:
            f.write(text)

    # --- process -------------------------------------------------------------

    def start(self, timeout=START_TIMEOUT):
        cmd = [os.path.join(BUILD, "mailroomd"), "-c", self.env.conf, "--foreground"]
        if self.debug:
            cmd.append("--debug")
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)  # never talk to a real systemd
        env.update(self.environ)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
        # The reader of a process killed before may still be at its last
        # lines: it stops writing here from now on (see _drain).
        with self.cond:
            self.proc = proc
            self.lines = []
            self.eof = False
        _running.append(self)
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
        line = self.wait_for(READY, timeout)
        if line is None:
            self.kill()
            raise RuntimeError("mailroomd did not report its ports within %ds:\n%s"
                               % (timeout, self.log()))
        m = READY.search(line)
        self.smtp_port, self.lmtp_port = int(m.group(1)), int(m.group(2))
        return self

    def _drain(self, proc):
        """Reads @proc's output into the log while @proc is this daemon's
        process: once start() has started another, what an old reader
        still reads (and its EOF) is not the new process's."""
        for raw in proc.stdout:
            with self.cond:
                if proc is self.proc:
                    self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                    self.cond.notify_all()
        with self.cond:
            if proc is self.proc:
                self.eof = True
                self.cond.notify_all()

    def mark(self):
        """The current end of the log, for wait_for(start=)."""
        with self.cond:
            return len(self.lines)

    def wait_for(self, pattern, timeout=10, start=0):
        """Waits for a log line (substring or compiled regex) at index >= start;
        returns the line or None."""
        match = pattern.search if hasattr(pattern, "search") else (lambda s: pattern in s)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    if match(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return None
                self.cond.wait(left)

    def log(self, start=0):
        with self.cond:
            return "\n".join(self.lines[start:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, timeout=10):
        """SIGHUP; returns the log line that answers it ("reloaded" or
        "reload refused"), or None."""
        start = self.mark()
        self.signal(signal.SIGHUP)
        return self.wait_for(re.compile(r"reloaded |reload refused"), timeout, start)

    def stop(self, timeout=10):
        """SIGTERM, then waits; returns the exit code (None: had to be killed)."""
        if self.proc is None:
            return None
        rc = terminate(self.proc, timeout)
        self._wait_eof(5)
        self._forget()
        return rc

    def _wait_eof(self, timeout):
        """Waits until the reader has the whole output of an exited
        process, so that log() after stop() or kill() is complete."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.eof and time.monotonic() < deadline:
                self.cond.wait(max(0.0, deadline - time.monotonic()))

    def wait(self, timeout):
        """Waits for the process to exit by itself; returns the code or None."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            self._wait_eof(5)
        self._forget()

    def _forget(self):
        if self in _running:
            _running.remove(self)

    # --- clients ---------------------------------------------------------------

    def raw(self, lmtp=False, timeout=IO_TIMEOUT, greet=True):
        return Client(self.lmtp_port if lmtp else self.smtp_port, timeout, greet)

    def smtp(self, timeout=IO_TIMEOUT):
        return smtplib.SMTP(HOST, self.smtp_port, local_hostname="client.test", timeout=timeout)

    def lmtp(self, timeout=IO_TIMEOUT):
        return smtplib.LMTP(HOST, self.lmtp_port, local_hostname="client.test", timeout=timeout)

    # --- the database, through mailroomctl ---------------------------------------

    def messages(self):
        return self.env.json("message", "list")

    def message_count(self):
        return len(self.messages())

    def raw_message(self, mid):
        """The stored bytes of message @mid (mailroomctl message show --raw)."""
        p = subprocess.run([self.env.ctl_path, "-c", self.env.conf, "message", "show", str(mid),
                            "--raw"], capture_output=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("message show --raw %s: %s" % (mid, p.stderr))
        return p.stdout


class WriteLock:
    """Holds the database so that the daemon's writer waits
    (store.busy_timeout), then fails, until release(); readers go on.
    SQLite: its write lock (BEGIN IMMEDIATE).  PostgreSQL: an EXCLUSIVE
    lock on the message table, held by a psql session, which a new
    message's insert waits for (lock_timeout)."""

    def __init__(self, db):
        self.conn = self.proc = None
        if "://" in db:
            import mrtest
            c = mrtest.pg_cluster()
            self.proc = subprocess.Popen(
                [os.path.join(c.bindir, "psql"), "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p",
                 str(c.port), "-U", "mailroom", "-d", db.rsplit("/", 1)[1]],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.proc.stdin.write(b"BEGIN;\nLOCK TABLE message IN EXCLUSIVE MODE;\n"
                                  b"SELECT 'locked';\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if line.strip() != b"locked":
                raise RuntimeError("psql could not lock: %r" % line)
            return
        self.conn = sqlite3.connect(db, timeout=10, isolation_level=None,
                                    check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self):
        if self.conn is not None:
            self.conn.execute("ROLLBACK")
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            self.proc.stdin.write(b"ROLLBACK;\n\\q\n")
            self.proc.stdin.close()
            self.proc.wait(30)
            self.proc = None


def dot_stuff(raw):
    """RFC 5321 4.5.2: a line that starts with "." gets another one.  A line
    starts after a real CR LF only (mailroomd unstuffs nothing else)."""
    out = raw
    if out.startswith(b"."):
        out = b"." + out
    return out.replace(b"\r\n.", b"\r\n..")


def send_data(c, raw):
    """After 354: the message, dot-stuffed, and the final ".".  @raw should
    end with CR LF (else CR LF is added, and stored): only CR LF "." CR LF
    ends the data."""
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    c.send(dot_stuff(raw) + b".\r\n")


def transaction(c, sender, rcpts, raw, lmtp=False):
    """MAIL, RCPT..., DATA, the message: returns the replies as
    (mail, [rcpt...], data, [final...]); LMTP has one final reply per
    accepted recipient."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    r_mail = c.cmd("MAIL FROM:<%s>" % sender)
    r_rcpt = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
    r_data = c.cmd("DATA")
    if r_data[0] != 354:
        return r_mail, r_rcpt, r_data, []
    send_data(c, raw)
    n = sum(1 for code, _ in r_rcpt if code == 250) if lmtp else 1
    return r_mail, r_rcpt, r_data, c.replies(n)


STORED = re.compile(r"stored as message (\d+)")


def stored_id(text):
    """The message row named in a "250 ... stored as message N" reply, or None."""
    m = STORED.search(text or "")
    return int(m.group(1)) if m else None


class Client:
    """A raw SMTP/LMTP client on a socket with a timeout, for dialogues that a
    polite library will not have."""

    def __init__(self, port, timeout=IO_TIMEOUT, greet=True):
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def line(self):
        """One reply line without its CRLF (str). Raises EOFError, socket.timeout."""
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """One (possibly multi-line) reply: (code, text with lines joined by \\n)."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            code = -1
        return code, "\n".join(lines)

    def try_reply(self):
        """Like reply(), but (None, reason) on EOF, reset or timeout."""
        try:
            return self.reply()
        except EOFError:
            return None, "eof"
        except socket.timeout:
            return None, "timeout"
        except OSError as e:
            return None, "error: %s" % e

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def closed(self, timeout=5):
        """True when the server closes the connection within @timeout
        (anything still sent before the close is read and dropped)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.buf = b""
                self._fill()
        except EOFError:
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(self.timeout)
        return False

    def starttls(self, ctx=None):
        """Wraps the socket in TLS (after the 220 to STARTTLS)."""
        ctx = ctx or client_tls_context()
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def keywords(ehlo_text):
    """EHLO/LHLO reply text -> the keyword lines after the greeting line."""
    return [line[4:] for line in ehlo_text.split("\n")[1:]]


def msg(subject, frm="eve@client.test", to="support@acme.test", **kw):
    """A small message (bytes) from mrtest.message()."""
    return message(frm, to, subject, **kw).encode("utf-8")
