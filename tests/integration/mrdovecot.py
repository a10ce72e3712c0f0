"""mrdovecot - a private Dovecot (IMAP) on 127.0.0.1 for an integration test.

    import mrdovecot
    if not mrdovecot.available():
        print("1..0 # SKIP %s" % mrdovecot.unavailable_reason()); sys.exit(0)
    dc = mrdovecot.DovecotServer.start(users=3)     # user1..user3
    dc.port, dc.imaps_port, dc.ca_file               # plain+STARTTLS, implicit TLS, the CA
    uid = dc.append("user1", "INBOX", b"Subject: hi\r\n\r\nHello.\r\n", flags=("\\Seen",))
    dc.count("user1", "INBOX"), dc.uids("user1", "INBOX"), dc.flags("user1", "INBOX", uid)
    dc.oauth_tokens["tok-good"] = "user1"            # XOAUTH2 / OAUTHBEARER
    dc.restart()                                     # same ports, same mail
    dc.stop()                                        # also at exit; idempotent

Each server lives in its own temporary folder (prefix "mrdc-", short:
Dovecot's Unix sockets live in DIR/run and a socket path has at most 108
bytes): DIR/dovecot.conf (a config of its own: nothing of /etc/dovecot is
read), DIR/log (Dovecot's log), DIR/master.out (the master's stderr, where
a failed start says why), DIR/users (the passwd-file), DIR/mail/USER/Maildir,
DIR/tls (the CA and the server certificate), DIR/state.  Dovecot listens on
127.0.0.1 only, on two free high ports: `port` (IMAP, STARTTLS offered, LOGIN
allowed without TLS) and `imaps_port` (implicit TLS).  The certificate (EC
P-256, CN 127.0.0.1, subjectAltName IP:127.0.0.1 and DNS:localhost) is signed
by a CA made for this server (`ca_file`); a client that does not trust that
CA fails verification.  The system Dovecot (ports 143/993) is never used.

Users: `users=` is a number N (user1..userN), names, (name, password) pairs
or a {name: password} dict; the default password of NAME is "pw-NAME".
Names are lower-cased (Dovecot's auth_username_format %Lu); a password may
hold any character but NUL, CR and LF.  Users are lines of a passwd-file
(100 users cost nothing; add_user() works while the server runs); the
Maildir of a user is made by Dovecot at the first login.

Authentication: PLAIN and LOGIN against the passwd-file; XOAUTH2 and
OAUTHBEARER against a second passdb, Dovecot's `oauth2` driver, whose
introspection URL (introspection_mode = post) points to an HTTP server of
this harness on 127.0.0.1 (a thread of the test process).  The harness
decides: `oauth_tokens` {token: user} are active, tokens in `oauth_expired`
(see expire_token()) and unknown tokens answer {"active": false}; a value
that is a dict is answered as is; `oauth_fail = 503` makes the endpoint
answer that status (an IdP outage: Dovecot answers a temporary failure).
`oauth_delay = 2` delays each answer (seconds).  `oauth_requests` records
each introspection request (dicts with method, path, token, time);
introspections(token) filters them.  Dovecot's auth cache is off: one
login, one request.
auth_failure_delay is 0 and the anvil auth penalty is off: a failed login is
answered within 0.5 s (Dovecot flushes its delayed failures every 500 ms,
whatever the delay) and does not slow later ones.

Mail processes: as root, the master stays root, mail processes run as
MAIL_USER ("mrtestmail", a system user created with useradd when missing;
"nobody" if that fails) and Dovecot's internal users are dovecot/dovenull of
the package.  As a normal user everything runs as that user (chroot off for
imap-login and anvil).

Helpers (each opens its own IMAP connection, as the user, on the plain port):
append / append_many (return UIDs, from APPENDUID), create_folder,
delete_folder, folders, count, uids, flags, store, expunge, status,
uidvalidity, change_uidvalidity (doveadm mailbox update --uid-validity: the
messages and their UIDs stay; a client sees the new value at its next
SELECT or STATUS; a session that has the folder selected is closed by
Dovecot at its next command: "* BYE IMAP session state is inconsistent,
please relogin."), doveadm(), imap()
(a logged-in imaplib client), login(), connect(), xoauth2(), oauthbearer(),
idle_delay() (Dovecot's own APPEND -> "* N EXISTS" delay, as seen by a
plain client in IDLE: about 0.5 s, Dovecot groups changes for 500 ms).
Capabilities: Dovecot announces IDLE, MOVE, UIDPLUS...;
`capabilities_off=("IDLE",)` removes capabilities from those it announces
(before and after login, through imap_capability); it does not remove the
commands themselves.

Many sessions: imap-login runs as one process for all connections
(service_count = 0), mail_max_userip_connections is 1000.  Each session in
IDLE holds an inotify instance of the mail user, and Linux allows 128 per
user by default (fs.inotify.max_user_instances): past that Dovecot logs
"inotify_init() failed" and falls back to polling every
mailbox_idle_check_interval (30 s; idle_check_interval= changes it).  As
root the mail user is MAIL_USER, which nothing else uses; as a normal user
the instances of the user's other programs count too.

Processes: the master runs in the foreground (dovecot -F) in a process group
of its own, which all its children share.  stop() = SIGTERM to the whole
group, as systemd does (the master alone would leave the imap processes of
open sessions running; SIGTERMed, they send "* BYE Server shutting down."),
then SIGKILL to anything left of the group, then the folder is removed;
stop(keep=True) or restart() keep the folder, the ports and the mail, and
start() starts again on the same ports.  kill() is SIGKILL to the master and
all its children (connection loss; the folder stays; start() again works).
A watchdog process (as in mrpg.py) waits on a pipe whose only writer is the
test process: when the test process ends in any way, it stops what is left
of every Dovecot it was told about and removes the folder.  Create the
mrtest.Tap before the server (mrtest's os._exit at a failure skips atexit
handlers registered before it; the watchdog cleans up anyway).

The process helpers (/proc, the subreaper, both sides of the watchdog,
free_port) and the life of the folder, the watchdog and stop() at exit
(mrproc.Harness) are those of mrproc.py, shared with mrpg.py.

Standard library only (imaplib, ssl, http.server); openssl makes the
certificates.  Debian packages: dovecot-core dovecot-imapd (and openssl).
"""
import base64
import contextlib
import glob
import grp
import http.server
import imaplib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

if __name__ == "__main__":
    # python3 -I mrdovecot.py --watchdog: -I leaves this file's folder, that
    # of mrproc, off sys.path.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrproc import (  # noqa: E402,F401 - the names the tests know (mrdovecot._alive...)
    Harness, alive as _alive, cmdline as _cmdline, either as _either, free_port, log_marks,
    log_since, reap_group as _reap_group, signal_ladder, stat as _stat,
    subreaper as _subreaper, tail as _tail, wait_gone as _wait_gone, wait_until,
    watchdog_input)

HOST = "127.0.0.1"
MAIL_USER = "mrtestmail"
START_ATTEMPTS = 5          # a free port can be taken before Dovecot binds it
SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
# The longest socket Dovecot makes under base_dir ("token-login/imap-urlauth",
# "replication-notify-fifo"...) plus margin; sun_path holds 108 bytes.
SOCKET_TAIL = len("/run/token-login/imap-urlauth-worker") + 8


class DovecotError(RuntimeError):
    """Dovecot, doveadm, openssl or an IMAP command failed; the message says why."""


def _which(name):
    p = shutil.which(name)
    if p:
        return p
    for d in SBIN:
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    return None


def binaries():
    """(dovecot, doveadm) paths, None for a missing one."""
    return _which("dovecot"), _which("doveadm")


def unavailable_reason():
    """None when a private Dovecot can be started here, else why not."""
    dovecot, doveadm = binaries()
    if dovecot is None or doveadm is None:
        return "Dovecot not installed (dovecot-core, dovecot-imapd)"
    if not any(os.access(os.path.join(d, "imap"), os.X_OK)
               for d in ("/usr/lib/dovecot", "/usr/libexec/dovecot", "/usr/local/libexec/dovecot")):
        return "Dovecot's IMAP server not installed (dovecot-imapd)"
    if _which("openssl") is None:
        return "openssl not installed"
    if os.geteuid() == 0:
        for u in ("dovecot", "dovenull"):
            try:
                pwd.getpwnam(u)
            except KeyError:
                return "running as root and there is no %s user" % u
    return None


def available():
    """True when Dovecot (dovecot-core, dovecot-imapd) and openssl are
    installed.  CI installs them (tools/deps.sh)."""
    return unavailable_reason() is None


# --- processes, through /proc (Linux; _stat, _alive... are mrproc's) --------

def _is_dovecot(pid):
    """The master ("/usr/sbin/dovecot -F -c ...") and its children, whose
    titles are "dovecot-INSTANCE/imap", "dovecot-INSTANCE/auth"..."""
    first = _cmdline(pid).split(" ", 1)[0]
    return os.path.basename(first) == "dovecot" or first.startswith("dovecot")


def group_pids(pgid, tag):
    """The live Dovecot processes of the process group @pgid whose command
    line has @tag (the name of the server's folder: it is in the master's
    "-c DIR/dovecot.conf" and, through instance_name, in the titles of its
    children, "dovecot-mrdc-XXXX/imap")."""
    found = []
    for p in glob.glob("/proc/[0-9]*"):
        pid = int(p[6:])
        st = _stat(pid)
        if st is not None and st[2] == pgid and st[0] not in ("Z", "X") and _is_dovecot(pid) \
                and tag in _cmdline(pid):
            found.append(pid)
    return found


def stop_group(pgid, tag, grace=10, hard=False):
    """Stops the Dovecot of process group @pgid (see group_pids for @tag):
    SIGTERM to the master (it stops its children) unless @hard, then
    SIGKILL to whatever is left of the group.  True when nothing is left."""
    master = pgid
    if not hard and master in group_pids(pgid, tag):
        signal_ladder(master, ((signal.SIGTERM, grace),))
    for _ in range(3):
        left = group_pids(pgid, tag)
        if not left:
            return True
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        _wait_gone(left, 5)
    return not group_pids(pgid, tag)


def _watchdog():
    """python3 mrdovecot.py --watchdog: reads "dir PATH", "group PGID" (a
    master started) and "done PGID" (that one is stopped) lines from stdin
    until EOF (the test process has ended, or stop() is done), then stops
    what is left of the groups not done and removes the folder."""
    d, groups = None, set()
    for line in watchdog_input():
        word, _, arg = line.partition(" ")
        if word == "dir":
            d = arg
        elif word == "group" and arg.isdigit():
            groups.add(int(arg))
        elif word == "done" and arg.isdigit():
            groups.discard(int(arg))
    if not d or not os.path.isabs(d) or not os.path.basename(d).startswith("mrdc-"):
        return
    for g in groups:
        stop_group(g, os.path.basename(d), grace=5)
    shutil.rmtree(d, ignore_errors=True)


# --- TLS: a CA and a server certificate --------------------------------------

_SERVER_EXT = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def make_tls(directory):
    """A CA and a server certificate signed by it (EC P-256: quick to make)
    in @directory; returns (ca_file, cert_file, key_file)."""
    os.makedirs(directory, exist_ok=True)
    ca, cakey = os.path.join(directory, "ca.crt"), os.path.join(directory, "ca.key")
    crt, key = os.path.join(directory, "server.crt"), os.path.join(directory, "server.key")
    csr, ext = os.path.join(directory, "server.csr"), os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write(_SERVER_EXT)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    steps = [
        ["openssl", "req", "-x509"] + ec + [
            "-keyout", cakey, "-out", ca, "-days", "30",
            "-subj", "/CN=mailroom test CA (mrdovecot)",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", "-new"] + ec + ["-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey,
         "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "30",
         "-extfile", ext, "-out", crt],
    ]
    for cmd in steps:
        p = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
                           env=dict(os.environ, OPENSSL_CONF="/dev/null"))
        if p.returncode != 0:
            raise DovecotError("%s failed (exit %d): %s" % (
                " ".join(cmd[:3]), p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")))
    os.chmod(key, 0o600)
    os.chmod(cakey, 0o600)
    return ca, crt, key


# --- the OAuth2 introspection endpoint ------------------------------------------

class _OAuthHandler(http.server.BaseHTTPRequestHandler):
    server_version = "mrdovecot-oauth/1"

    def log_message(self, *args):       # not on the test's stderr
        pass

    def _answer(self, token):
        owner = self.server.owner
        with owner._oauth_lock:
            owner.oauth_requests.append({"method": self.command, "path": self.path,
                                         "token": token, "time": time.time()})
            fail = owner.oauth_fail
            delay = owner.oauth_delay
            entry = owner.oauth_tokens.get(token) if token is not None else None
            expired = token in owner.oauth_expired
        if delay:
            time.sleep(delay)
        if fail:
            status, body = int(fail), {"error": "server_error"}
        elif isinstance(entry, dict):
            status, body = 200, entry
        elif entry is None or expired:
            status, body = 200, {"active": False}
        else:
            status, body = 200, {"active": True, "username": entry, "client_id": "mailroom",
                                 "scope": "mail", "exp": int(time.time()) + 3600}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):                  # noqa: N802 - http.server's names
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode("utf-8", "replace"))
        self._answer((form.get("token") or [None])[0])

    def do_GET(self):                   # noqa: N802
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        token = (q.get("token") or [None])[0]
        auth = self.headers.get("Authorization") or ""
        if token is None and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        self._answer(token)


class _OAuthServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# --- IMAP bits ---------------------------------------------------------------

def imap_utf7(name):
    """@name in IMAP's modified UTF-7 (RFC 3501 5.1.3)."""
    out, buf = [], []

    def flush():
        if buf:
            b = base64.b64encode("".join(buf).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b.replace("/", ",") + "-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def quote(name):
    """A mailbox name as an IMAP quoted string (modified UTF-7 inside)."""
    return '"%s"' % imap_utf7(name).replace("\\", "\\\\").replace('"', '\\"')


def xoauth2_string(user, token):
    """The XOAUTH2 initial response (before base64)."""
    return "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)


def oauthbearer_string(user, token):
    """The OAUTHBEARER (RFC 7628) initial response (before base64)."""
    return "n,a=%s,\x01host=%s\x01port=143\x01auth=Bearer %s\x01\x01" % (
        user.replace("=", "=3D").replace(",", "=2C"), HOST, token)


def _text(data):
    return b" ".join(d if isinstance(d, bytes) else b"" for d in (data or [])).decode(
        "utf-8", "replace")


def _check(res, what):
    typ, data = res
    if typ != "OK":
        raise DovecotError("%s: %s %s" % (what, typ, _text(data)))
    return data


def _close(M):
    """Drops an imaplib connection without a word (after an error)."""
    try:
        M.shutdown()
    except (OSError, imaplib.IMAP4.error, EOFError):
        pass


def _flags_arg(flags):
    return "(%s)" % " ".join(flags) if flags else None


# --- the server ------------------------------------------------------------------

class DovecotServer(Harness):
    """A private Dovecot; see the module's documentation.  start() works on
    the class (DovecotServer.start(users=3) -> a started server) and on an
    instance (server.start() -> starts it (again))."""

    NAME = "mrdovecot"
    WATCHDOG = __file__

    def __init__(self, users=1, capabilities_off=(), imap_capability=None,
                 idle_check_interval=None, extra_config=""):
        """@users: see the module's documentation.  @capabilities_off:
        capabilities not to announce (e.g. ("IDLE",)).  @imap_capability:
        Dovecot's imap_capability as is (wins over capabilities_off).
        @idle_check_interval: mailbox_idle_check_interval in seconds
        (Dovecot's default: 30; it matters only where inotify is not
        available).  @extra_config: appended to dovecot.conf."""
        self._harness_init()
        self.dovecot, self.doveadm_path = binaries()
        self.users = {}
        for name, pw in self._user_list(users):
            self.users[name] = pw
        self.capabilities_off = tuple(capabilities_off)
        self.imap_capability = imap_capability
        self.idle_check_interval = idle_check_interval
        self.extra_config = extra_config
        self.run_dir = self.conf = self.logfile = None
        self.ca_file = self.cert_file = self.key_file = None
        self.port = self.imaps_port = None
        self.proc = None
        self.pid = None                 # the master's (and the process group's)
        self.oauth_tokens = {}
        self.oauth_expired = set()
        self.oauth_requests = []
        self.oauth_fail = None
        self.oauth_delay = 0
        self.oauth_url = None
        self._oauth = None
        self._oauth_lock = threading.Lock()
        self._state = "new"             # new, running, halted, stopped
        self._as_root = os.geteuid() == 0
        self.mail_uid = self.mail_gid = None
        self.mail_user = None
        self._caps_default = None
        self._tag = None

    # -- users --

    @staticmethod
    def _user_list(users):
        if isinstance(users, int):
            return [("user%d" % i, "pw-user%d" % i) for i in range(1, users + 1)]
        if isinstance(users, dict):
            items = list(users.items())
        else:
            items = [u if isinstance(u, (tuple, list)) else (u, None) for u in users]
        out = []
        for name, pw in items:
            name = name.lower()
            if not name or re.search(r"[:\s\x00-\x1f/\\]", name) or name in (".", ".."):
                raise DovecotError("unusable user name %r" % name)
            pw = "pw-" + name if pw is None else pw
            if re.search(r"[\x00\r\n]", pw):
                raise DovecotError("unusable password for %s" % name)
            out.append((name, pw))
        return out

    def password(self, user):
        return self.users[user.lower()]

    def home(self, user):
        return os.path.join(self.dir, "mail", user.lower())

    def maildir(self, user):
        return os.path.join(self.home(user), "Maildir")

    def _write_users(self):
        lines = []
        for name, pw in self.users.items():
            lines.append("%s:{PLAIN.b64}%s:%d:%d::%s::\n" % (
                name, base64.b64encode(pw.encode("utf-8")).decode(), self.mail_uid,
                self.mail_gid, self.home(name)))
        tmp = os.path.join(self.dir, "users.tmp")
        with open(tmp, "w") as f:
            f.write("".join(lines))
        os.chmod(tmp, 0o644)            # read by the auth process (user dovecot)
        os.rename(tmp, os.path.join(self.dir, "users"))     # Dovecot re-reads a changed file

    def add_users(self, users):
        """Adds (or changes) users (as users= of the constructor), also while
        the server runs.  Dovecot looks at the passwd-file at most once a
        second: when the server runs this waits for the next second (< 1 s)
        so that the next login sees the change."""
        for n, pw in self._user_list(users):
            self.users[n] = pw
        if self.dir:
            self._write_users()
            if self._state == "running":
                time.sleep(1.05 - time.time() % 1)

    def add_user(self, name, password=None):
        """add_users([(name, password)])."""
        self.add_users([(name, password)])

    # -- folder, users, config --

    def _pick_mail_user(self):
        if not self._as_root:
            pw = pwd.getpwuid(os.geteuid())
            return pw.pw_name, pw.pw_uid, os.getegid()
        for attempt in range(2):
            try:
                pw = pwd.getpwnam(MAIL_USER)
                return pw.pw_name, pw.pw_uid, pw.pw_gid
            except KeyError:
                pass
            if attempt == 0 and _which("useradd"):
                subprocess.run([_which("useradd"), "--system", "--user-group", "--no-create-home",
                                "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                                "--comment", "mailroom tests (Dovecot mail)", MAIL_USER],
                               capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        pw = pwd.getpwnam("nobody")
        return pw.pw_name, pw.pw_uid, pw.pw_gid

    @staticmethod
    def _reachable(d, uid, gids):
        """Can @uid (groups @gids) traverse every folder down to @d?"""
        p = d
        while True:
            st = os.stat(p)
            if st.st_uid == uid:
                ok = st.st_mode & 0o100
            elif st.st_gid in gids:
                ok = st.st_mode & 0o010
            else:
                ok = st.st_mode & 0o001
            if not ok:
                return False
            if p == "/":
                return True
            p = os.path.dirname(p)

    def _usable(self, d):
        others = []
        if self._as_root:
            for u in (self.mail_user, "dovecot", "dovenull"):
                pw = pwd.getpwnam(u)
                others.append((pw.pw_uid, {pw.pw_gid}))
        os.chmod(d, 0o711)
        return len(d) + SOCKET_TAIL < 108 and all(self._reachable(d, u, g) for u, g in others)

    def _config(self):
        me = pwd.getpwuid(os.geteuid()).pw_name
        if self._as_root:
            internal = "default_internal_user = dovecot\ndefault_internal_group = dovecot\n" \
                       "default_login_user = dovenull\n"
            chroot = ""
        else:
            group = grp.getgrgid(os.getegid()).gr_name
            internal = ("default_internal_user = %s\ndefault_internal_group = %s\n"
                        "default_login_user = %s\n" % (me, group, me))
            chroot = "  chroot =\n"
        caps = ""
        if self.imap_capability is not None:
            caps = "  imap_capability = %s\n" % self.imap_capability
        elif self.capabilities_off and self._caps_default:
            off = {c.upper() for c in self.capabilities_off}
            caps = "  imap_capability = %s\n" % " ".join(
                c for c in self._caps_default if c.upper() not in off)
        idle = ""
        if self.idle_check_interval is not None:
            idle = "mailbox_idle_check_interval = %d secs\n" % self.idle_check_interval
        return CONFIG.format(
            dir=self.dir, run=self.run_dir, internal=internal, chroot=chroot, caps=caps, idle=idle,
            uid=self.mail_uid, gid=self.mail_gid, port=self.port, imaps_port=self.imaps_port,
            cert=self.cert_file, key=self.key_file, name=os.path.basename(self.dir),
            extra=self.extra_config)

    def _write_config(self):
        with open(self.conf, "w") as f:
            f.write(self._config())
        os.chmod(self.conf, 0o644)
        with open(os.path.join(self.dir, "oauth2.conf"), "w") as f:
            f.write(OAUTH2_CONFIG.format(url=self.oauth_url))
        os.chmod(os.path.join(self.dir, "oauth2.conf"), 0o644)

    def _start_oauth(self):
        srv = _OAuthServer((HOST, 0), _OAuthHandler)
        srv.owner = self
        th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.25},
                              name="mrdovecot-oauth", daemon=True)
        th.start()
        self._oauth = srv
        self.oauth_url = "http://%s:%d/introspect" % (HOST, srv.server_address[1])

    # -- the API: start, stop --

    @_either
    def start(self, timeout=30):
        """Starts the server (the first time: makes the folder, the
        certificates, the users; later, after stop(keep=True) or kill():
        again on the same ports).  Returns the server.  Raises DovecotError
        (with the end of the logs) when Dovecot does not come up."""
        if self._state == "running":
            return self
        if self._state == "stopped":
            raise DovecotError("this server was stopped for good: make a new one")
        if self.dovecot is None:
            raise DovecotError(unavailable_reason() or "no Dovecot")
        first = self._state == "new"
        try:
            if first:
                self._state = "halted"
                self._setup()
            self._launch(timeout, fixed_ports=not first)
            if first and self.capabilities_off and self.imap_capability is None:
                self._apply_capabilities_off(timeout)
        except BaseException:
            try:
                self.stop(keep=not first)
            except DovecotError:
                pass
            raise
        return self

    def _setup(self):
        self.mail_user, self.mail_uid, self.mail_gid = self._pick_mail_user()
        self.dir = self._make_dir("mrdc-", self._usable)
        if self.dir is None:
            raise DovecotError("no temporary folder Dovecot can use "
                               "(socket path length, permissions)")
        self._tag = os.path.basename(self.dir)
        self._begin("dir %s" % self.dir)
        self.run_dir = os.path.join(self.dir, "run")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.logfile = os.path.join(self.dir, "log")
        for sub in ("state", "mail"):
            os.mkdir(os.path.join(self.dir, sub))
        os.chmod(os.path.join(self.dir, "mail"), 0o700)
        if self._as_root:
            os.chown(os.path.join(self.dir, "mail"), self.mail_uid, self.mail_gid)
        self.ca_file, self.cert_file, self.key_file = make_tls(os.path.join(self.dir, "tls"))
        self._write_users()
        self._start_oauth()

    def _launch(self, timeout, fixed_ports):
        for attempt in range(START_ATTEMPTS):
            if not fixed_ports:
                self.port = free_port()
                for _ in range(5):
                    self.imaps_port = free_port()
                    if self.imaps_port != self.port:
                        break
            self._write_config()
            out = os.path.join(self.dir, "master.out")
            marks = log_marks([self.logfile, out])
            with open(out, "ab") as f:
                self.proc = subprocess.Popen(
                    [self.dovecot, "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                    stdout=f, stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
            self.pid = self.proc.pid
            self._tell_watchdog("group %d" % self.pid)
            self._state = "running"
            why = self._wait_ready(timeout)
            if why is None:
                return
            self._halt(hard=True)
            self._state = "halted"
            if "Address already in use" in log_since(marks) and attempt + 1 < START_ATTEMPTS:
                if fixed_ports:
                    time.sleep(0.5)        # a process that held the port may still be leaving
                continue
            raise DovecotError("Dovecot did not start on 127.0.0.1:%s/%s (%s)\n"
                               "--- %s ---\n%s\n--- last 40 lines of %s ---\n%s" % (
                                   self.port, self.imaps_port, why, out, _tail(out, 20),
                                   self.logfile, _tail(self.logfile)))

    def _wait_ready(self, timeout):
        """None once both ports answer "* OK" (imaps: through TLS, verified
        with the CA), else why not."""
        pending = [(self.port, False), (self.imaps_port, True)]
        why = ["timed out after %d s" % timeout]

        def ready():            # True: stop waiting
            if self.proc.poll() is not None:
                why[0] = "the master exited with status %s" % self.proc.returncode
                return True
            while pending:
                port, tls = pending[0]
                try:
                    line = self._greeting(port, tls)
                    if not line.startswith(b"* OK"):
                        why[0] = "port %d said %r" % (port, line)
                        return False
                except (OSError, ssl.SSLError) as e:
                    why[0] = "port %d: %s" % (port, e)
                    return False
                pending.pop(0)
            return True

        wait_until(ready, timeout)
        return None if not pending else why[0]

    def _greeting(self, port, tls):
        with socket.create_connection((HOST, port), timeout=5) as s:
            if tls:
                with self.ssl_context().wrap_socket(s, server_hostname=HOST) as t:
                    return t.makefile("rb").readline()
            return s.makefile("rb").readline()

    def _apply_capabilities_off(self, timeout):
        """imap_capability is all or nothing: read what Dovecot announces
        after a login, write the list without capabilities_off, reload."""
        self.reload(timeout)

    def capabilities(self, user=None, tls="plain"):
        """The capabilities Dovecot announces after a login (as @user, by
        default the first user), as a list."""
        with self.imap(user or next(iter(self.users)), tls=tls) as M:
            return self._capability(M)

    @staticmethod
    def _capability(M):
        """The capabilities a CAPABILITY command lists now (imaplib keeps
        the older ones, of the greeting and the LOGIN reply, before it)."""
        data = _check(M.capability(), "CAPABILITY")
        return data[-1].decode().split()

    def reload(self, timeout=30):
        """Writes the config again (after a change of capabilities_off,
        imap_capability, idle_check_interval...) and makes Dovecot re-read
        it (SIGHUP, as doveadm reload does); waits until a new login sees
        the capabilities it should.  Needs a user."""
        if not self.users:
            raise DovecotError("reload() logs in to check: add a user first")
        user = next(iter(self.users))
        if self.capabilities_off and self.imap_capability is None and self._caps_default is None:
            with self.imap(user) as M:
                self._caps_default = self._capability(M)

        def expected(caps):
            if self.imap_capability is not None:
                return self.imap_capability.startswith("+") or caps == {
                    c.upper() for c in self.imap_capability.split()}
            if self.capabilities_off:
                return not ({c.upper() for c in self.capabilities_off} & caps)
            return self._caps_default is None or {c.upper() for c in self._caps_default} <= caps

        self._write_config()
        os.kill(self.pid, signal.SIGHUP)
        end = time.monotonic() + timeout
        while True:
            time.sleep(0.1)
            try:
                with self.imap(user) as M:
                    if expected({c.upper() for c in self._capability(M)}):
                        return
            except (OSError, imaplib.IMAP4.error, DovecotError):
                pass
            if time.monotonic() > end:
                raise DovecotError("the reload did not take effect\n%s" % _tail(self.logfile))

    def _halt(self, hard=False):
        """Stops the Dovecot processes (SIGTERM to the master, or SIGKILL to
        all with @hard); the folder stays.  True when none is left."""
        if self.proc is None:
            return True
        pgid = self.pid
        was = _subreaper(True)
        try:
            if hard:
                if self.proc.poll() is None:    # not reaped: the group cannot be another's
                    try:
                        os.killpg(pgid, signal.SIGKILL)
                    except OSError:
                        pass
            elif self.proc.poll() is None:
                # SIGTERM to the whole group, as systemd does (KillMode=
                # control-group): the master alone leaves the imap processes
                # of open sessions running; SIGTERMed, they say "* BYE Server
                # shutting down." and exit.
                try:
                    os.killpg(pgid, signal.SIGTERM)
                except OSError:
                    pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            ok = stop_group(pgid, self._tag, hard=True)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                ok = False
            _reap_group(pgid)       # the children adopted while we were a subreaper
        finally:
            if was is False:
                _subreaper(False)
        self.proc = None
        if ok:
            self._tell_watchdog("done %d" % pgid)
        return ok

    def stop(self, keep=False):
        """Stops Dovecot (SIGTERM, then SIGKILL to what is left).  With
        @keep the folder, the mail and the ports stay and start() starts it
        again; without, the folder is removed, the OAuth endpoint and the
        watchdog end, and the server cannot be started again.  Idempotent.
        Raises DovecotError if a process could not be stopped."""
        with self._lock:
            if self._state in ("new", "stopped"):
                return
            ok = self._halt()
            self._state = "halted"
            if not ok:
                raise DovecotError("the Dovecot of %s could not be stopped (group %s)"
                                   % (self.dir, self.pid))
            if keep:
                return
            self._state = "stopped"
            if self._oauth is not None:
                self._oauth.shutdown()
                self._oauth.server_close()
                self._oauth = None
            self._finish()

    def restart(self, timeout=30):
        """stop(keep=True) then start(): same ports, same mail, same users."""
        self.stop(keep=True)
        return self.start(timeout=timeout)

    def kill(self):
        """SIGKILL to the master and all its children at once (connection
        loss).  The folder stays; start() starts the server again."""
        with self._lock:
            if self._state != "running":
                return
            ok = self._halt(hard=True)
            self._state = "halted"
            if not ok:
                raise DovecotError("some Dovecot processes of group %s survived SIGKILL" % self.pid)

    @property
    def running(self):
        return self._state == "running" and self.proc is not None and self.proc.poll() is None

    def pids(self):
        """The live processes of this Dovecot (master first)."""
        if self._state != "running" or self.pid is None:
            return []
        return sorted(group_pids(self.pid, self._tag), key=lambda p: p != self.pid)

    def log(self):
        """Dovecot's log so far and the master's own output (for a diagnostic)."""
        text = ""
        for path in (self.logfile, self.dir and os.path.join(self.dir, "master.out")):
            try:
                with open(path, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except (OSError, TypeError):
                pass
        return text

    # -- OAuth --

    def expire_token(self, token):
        """From now on @token answers {"active": false}."""
        with self._oauth_lock:
            self.oauth_expired.add(token)

    def introspections(self, token=None):
        """The introspection requests so far (of @token only, if given)."""
        with self._oauth_lock:
            return [r for r in self.oauth_requests if token is None or r["token"] == token]

    # -- clients --

    def ssl_context(self, ca=True):
        """A client context that trusts this server's CA (ca=False: the
        system's CAs only, which must refuse the certificate)."""
        ctx = ssl.create_default_context(cafile=self.ca_file if ca else None)
        return ctx

    def connect(self, tls="plain", ca=True, timeout=10):
        """An imaplib client, not logged in.  @tls: "plain" (port), "starttls"
        (port, then STARTTLS), "imaps" (imaps_port)."""
        if tls == "imaps":
            return imaplib.IMAP4_SSL(HOST, self.imaps_port, ssl_context=self.ssl_context(ca),
                                     timeout=timeout)
        M = imaplib.IMAP4(HOST, self.port, timeout=timeout)
        if tls == "starttls":
            try:
                M.starttls(ssl_context=self.ssl_context(ca))
            except BaseException:
                _close(M)
                raise
        elif tls != "plain":
            raise ValueError("tls must be plain, starttls or imaps")
        return M

    def login(self, user, password=None, tls="plain", ca=True, timeout=10, mech="LOGIN"):
        """A logged-in imaplib client: the LOGIN command, or with mech="PLAIN"
        AUTHENTICATE PLAIN (imaplib's LOGIN sends ASCII only; PLAIN sends
        UTF-8).  Raises imaplib.IMAP4.error when Dovecot refuses."""
        password = self.password(user) if password is None else password
        M = self.connect(tls, ca, timeout)
        try:
            if mech == "PLAIN":
                initial = ("\0%s\0%s" % (user, password)).encode("utf-8")
                M.authenticate("PLAIN", lambda _: initial)
            else:
                M.login(user, password)
        except BaseException:
            _close(M)
            raise
        return M

    def _sasl(self, mech, initial, tls, timeout):
        M = self.connect(tls, True, timeout)
        calls = []

        def answer(challenge):
            calls.append(challenge)
            return initial.encode() if len(calls) == 1 else b""   # after an error: end it
        try:
            M.authenticate(mech, answer)
        except BaseException:
            _close(M)
            raise
        return M

    def xoauth2(self, user, token, tls="plain", timeout=10):
        """A client logged in with AUTHENTICATE XOAUTH2; raises
        imaplib.IMAP4.error when refused."""
        return self._sasl("XOAUTH2", xoauth2_string(user, token), tls, timeout)

    def oauthbearer(self, user, token, tls="plain", timeout=10):
        return self._sasl("OAUTHBEARER", oauthbearer_string(user, token), tls, timeout)

    @contextlib.contextmanager
    def imap(self, user, password=None, tls="plain"):
        """with server.imap("user1") as M: ... (logged in; logs out after)."""
        M = self.login(user, password, tls)
        try:
            yield M
        finally:
            try:
                M.logout()
            except (OSError, imaplib.IMAP4.error, EOFError):
                _close(M)

    # -- mail helpers (IMAP, as the user) --

    def append_many(self, user, folder, messages, flags=()):
        """APPENDs each of @messages (bytes or str) to @folder; returns their UIDs."""
        uids = []
        with self.imap(user) as M:
            for msg in messages:
                if isinstance(msg, str):
                    msg = msg.encode("utf-8")
                data = _check(M.append(quote(folder), _flags_arg(flags), None, msg),
                              "APPEND to %s" % folder)
                m = re.search(r"APPENDUID (\d+) (\d+)", _text(data))
                if not m:
                    raise DovecotError("APPEND without APPENDUID: %s" % _text(data))
                uids.append(int(m.group(2)))
        return uids

    def append(self, user, folder, message, flags=()):
        """APPENDs @message to @folder with @flags (e.g. ("\\\\Seen",)); returns its UID."""
        return self.append_many(user, folder, [message], flags)[0]

    def create_folder(self, user, folder, exist_ok=False):
        with self.imap(user) as M:
            typ, data = M.create(quote(folder))
            if typ != "OK" and not (exist_ok and "ALREADYEXISTS" in _text(data)):
                raise DovecotError("CREATE %s: %s %s" % (folder, typ, _text(data)))

    def delete_folder(self, user, folder):
        with self.imap(user) as M:
            _check(M.delete(quote(folder)), "DELETE %s" % folder)

    def folders(self, user):
        """The folder names (raw, as LIST says them: modified UTF-7)."""
        with self.imap(user) as M:
            data = _check(M.list(), "LIST")
        names = []
        for line in data:
            if not isinstance(line, bytes):
                continue
            m = re.match(rb'\([^)]*\) (?:"[^"]*"|NIL) (.*)$', line)
            if m:
                n = m.group(1).decode("utf-8", "replace")
                if n.startswith('"'):
                    n = n[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                names.append(n)
        return names

    def status(self, user, folder):
        """{"MESSAGES": n, "UIDNEXT": n, "UIDVALIDITY": n, "UNSEEN": n}"""
        with self.imap(user) as M:
            data = _check(M.status(quote(folder), "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"),
                          "STATUS %s" % folder)
        text = _text(data)
        inner = text[text.rfind("(") + 1:]
        return {k: int(v) for k, v in re.findall(r"([A-Z]+) (\d+)", inner)}

    def count(self, user, folder):
        return self.status(user, folder)["MESSAGES"]

    def uidvalidity(self, user, folder):
        return self.status(user, folder)["UIDVALIDITY"]

    def uids(self, user, folder):
        """The UIDs in @folder, ascending (EXAMINE: read only)."""
        with self.imap(user) as M:
            _check(M.select(quote(folder), readonly=True), "EXAMINE %s" % folder)
            data = _check(M.uid("SEARCH", "ALL"), "UID SEARCH")
        return sorted(int(x) for x in _text(data).split())

    def flags(self, user, folder, uid):
        """The flags of message @uid as a set (\\Recent left out: it belongs
        to a session), or None when there is no such message."""
        with self.imap(user) as M:
            _check(M.select(quote(folder), readonly=True), "EXAMINE %s" % folder)
            data = _check(M.uid("FETCH", str(int(uid)), "(FLAGS)"), "UID FETCH")
        for line in data:
            if isinstance(line, bytes):
                m = re.search(rb"UID (\d+)", line)
                f = re.search(rb"FLAGS \(([^)]*)\)", line)
                if m and f and int(m.group(1)) == int(uid):
                    return set(f.group(1).decode().split()) - {"\\Recent"}
        return None

    def store(self, user, folder, uid, flags, op="+FLAGS"):
        """UID STORE @uid @op (@flags): op is +FLAGS, -FLAGS or FLAGS."""
        with self.imap(user) as M:
            _check(M.select(quote(folder)), "SELECT %s" % folder)
            _check(M.uid("STORE", str(int(uid)), op + ".SILENT", "(%s)" % " ".join(flags)),
                   "UID STORE")

    def expunge(self, user, folder, uids):
        """Removes the messages @uids (UID EXPUNGE, UIDPLUS)."""
        uids = ",".join(str(int(u)) for u in uids)
        with self.imap(user) as M:
            _check(M.select(quote(folder)), "SELECT %s" % folder)
            _check(M.uid("STORE", uids, "+FLAGS.SILENT", "(\\Deleted)"), "UID STORE")
            _check(M.uid("EXPUNGE", uids), "UID EXPUNGE")

    def doveadm(self, *args, timeout=60):
        """Runs `doveadm -c CONF ARGS...`; returns its stdout.  Raises
        DovecotError with its stderr on failure."""
        p = subprocess.run([self.doveadm_path, "-c", self.conf] + [str(a) for a in args],
                           capture_output=True, stdin=subprocess.DEVNULL, cwd="/",
                           timeout=timeout)
        if p.returncode != 0:
            raise DovecotError("doveadm %s failed (exit %d): %s" % (
                " ".join(str(a) for a in args), p.returncode,
                (p.stdout + p.stderr).decode("utf-8", "replace").strip()))
        return p.stdout.decode("utf-8", "replace")

    def change_uidvalidity(self, user, folder, value=None):
        """Gives @folder a new UIDVALIDITY (@value, default: the current one
        plus one), its messages and their UIDs staying, with `doveadm
        mailbox update --uid-validity`, while the server runs.  A client
        sees it at its next SELECT or STATUS; Dovecot ends a session that has
        the folder selected ("* BYE").  Returns the new value."""
        if value is None:
            value = self.uidvalidity(user, folder) + 1
        # doveadm takes mailbox names in UTF-8, not IMAP's modified UTF-7.
        self.doveadm("mailbox", "update", "--uid-validity", int(value), "-u", user.lower(), folder)
        return int(value)

    # -- IDLE --

    def idle_delay(self, user, folder="INBOX", samples=5, message=None, timeout=10):
        """Dovecot's own new-mail notification delay: a client in IDLE on
        @folder (IDLE sent raw: imaplib has no idle() before 3.14), a second
        connection APPENDs; returns, for each sample, the seconds from the
        APPEND's tagged OK to the watcher's "* N EXISTS"."""
        if message is None:
            message = b"From: a@example.test\r\nSubject: idle probe\r\n\r\nprobe\r\n"
        delays = []
        watcher = self.login(user, timeout=timeout)
        appender = self.login(user, timeout=timeout)
        try:
            _check(watcher.select(quote(folder)), "SELECT %s" % folder)
            for i in range(samples):
                tag = b"IDL%d" % i
                watcher.send(tag + b" IDLE\r\n")
                line = watcher.readline()
                while not line.startswith(b"+"):
                    if line.startswith(tag) or not line:
                        raise DovecotError("IDLE refused: %r" % line)
                    line = watcher.readline()
                _check(appender.append(quote(folder), None, None, message), "APPEND")
                t0 = time.monotonic()
                while True:
                    line = watcher.readline()
                    if not line:
                        raise DovecotError("the IDLE connection closed")
                    if re.match(rb"\* \d+ EXISTS", line):
                        delays.append(time.monotonic() - t0)
                        break
                watcher.send(b"DONE\r\n")
                while True:
                    line = watcher.readline()
                    if not line:
                        raise DovecotError("the IDLE connection closed after DONE")
                    if line.startswith(tag + b" "):
                        if not line.startswith(tag + b" OK"):
                            raise DovecotError("IDLE ended with %r" % line)
                        break
        finally:
            for M in (watcher, appender):
                try:
                    M.logout()
                except (OSError, imaplib.IMAP4.error, EOFError):
                    _close(M)
        return delays


CONFIG = """# mrdovecot: a private Dovecot for mailroom's tests (nothing of /etc/dovecot)
instance_name = {name}
base_dir = {run}
state_dir = {dir}/state
log_path = {dir}/log
protocols = imap
listen = 127.0.0.1
{internal}first_valid_uid = {uid}
first_valid_gid = {gid}
shutdown_clients = yes

ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no

auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
auth_verbose = yes
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {dir}/users
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {dir}/oauth2.conf
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {dir}/users
}}

mail_location = maildir:~/Maildir
mail_fsync = never
{idle}namespace inbox {{
  inbox = yes
  separator = /
}}
protocol imap {{
  mail_max_userip_connections = 1000
{caps}}}

service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 1
  client_limit = 1000
{chroot}}}
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{extra}
"""

OAUTH2_CONFIG = """introspection_mode = post
introspection_url = {url}
client_id = mailroom
client_secret = mrdovecot
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
timeout_msecs = 10000
"""


if __name__ == "__main__" and sys.argv[1:] == ["--watchdog"]:
    _watchdog()
