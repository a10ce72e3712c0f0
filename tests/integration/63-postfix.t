#!/usr/bin/env python3
# The real Postfix delivers to mailroomd over LMTP, configured as
# docs/integration.md "Postfix to mailroomd over LMTP" says: Option A
# (transport_maps) first, then Option B (virtual_transport) after
# "postmap ... && postfix reload".  Mail goes in through Postfix's smtpd;
# the outcomes are read from mailroomd's database and from Postfix's own log
# (maillog_file): status=sent with mailroomd's 250 (a +detail included), a
# bounce on its 550 5.1.1, a refusal at Postfix's own smtpd, status=deferred
# on a 554 greeting (trusted_networks) and on a 451 (store locked), then the
# retry that stores the message once.
#
# The Postfix instance is private: main.cf and master.cf in a temporary
# directory, its own queue and data directories, smtpd on a free port of
# 127.0.0.1, no DNS, no chroot, nothing delivered outside the test.  The
# system's /etc/postfix is not read or changed: as root, Postfix takes a
# config directory from -c (MAIL_CONFIG) without alternate_config_directories
# (that check is for non-root users only).  "postfix -c DIR check" creates the
# queue directories, as "postfix start" would; then master(8) runs in the
# foreground under a small shell (GUARD) that this script starts, instead of
# daemonizing under init, so that it cannot outlive the test.
import atexit
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

POSTFIX = "/usr/sbin/postfix"
POSTMAP = "/usr/sbin/postmap"
POSTQUEUE = "/usr/sbin/postqueue"
POSTSUPER = "/usr/sbin/postsuper"
MASTER = "/usr/lib/postfix/sbin/master"


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (Postfix's master runs as root, its daemons as mail_owner)"
    for path in (POSTFIX, POSTMAP, POSTQUEUE, POSTSUPER, MASTER):
        if not os.access(path, os.X_OK):
            return "%s not installed (package postfix)" % path
    try:
        import pwd
        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix user"
    return None


if skip_reason():
    print("1..0 # SKIP %s" % skip_reason())
    sys.exit(0)

from mrtest import Tap  # noqa: E402 - after the skip check: Tap prints a plan at exit
from mrdaemon import Daemon, WriteLock, msg, stored_id  # noqa: E402

T0 = time.monotonic()
t = Tap()
# prove's timeout (or ^C in a terminal) sends SIGTERM: exit through atexit, which stops Postfix.
signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))
section = t.section
DELIVERY_TIMEOUT = 30   # seconds for Postfix to deliver (or defer) a message

MAIN_CF = """\
# A private Postfix instance for 63-postfix.t (written by the test).
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
syslog_name = postfix-mrtest
myhostname = mx.postfix.test
mydomain = postfix.test
myorigin = $myhostname
mydestination =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing is delivered locally (mydestination is empty): no alias maps, and
# no default nis: lookup in them.
alias_maps =
alias_database =
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
# Nothing leaves the test: bounces to the senders' domains are discarded.
default_transport = discard
queue_run_delay = 1s
# Not 1s: a deferred message whose file the delivery agent has not yet
# closed when the next queue scan finds it is "skipped, still being
# delivered" and waits 60 s (a race on a loaded machine; handled below).
minimal_backoff_time = 2s
maximal_backoff_time = 3s
# A delivery agent that Postfix could not start in time (a loaded machine)
# throttles its transport for transport_retry_time, 60 s by default: with
# no log line meanwhile, that outlasted the test's waits.
transport_retry_time = 1s
{option}"""

# Option A: acme.test is a domain this Postfix already has (a virtual mailbox
# domain whose other mailboxes go "to Dovecot", here a discard transport);
# transport_maps sends the mailroom addresses to mailroomd.
OPTION_A = """\
virtual_mailbox_domains = acme.test
virtual_mailbox_maps = hash:{dir}/etc/vmailbox
virtual_transport = discard:dovecot
transport_maps = hash:{dir}/etc/transport
recipient_delimiter = +
"""
VMAILBOX = """\
crm@acme.test       OK
support@acme.test   OK
sales@acme.test     OK
former@acme.test    OK
alice@acme.test     OK
wall@acme.test      OK
"""
# The three lines of the doc; an address that mailroom.conf no longer has;
# one to a mailroomd whose trusted_networks lack this Postfix.
TRANSPORT = """\
crm@acme.test       lmtp:inet:127.0.0.1:{port}
support@acme.test   lmtp:inet:127.0.0.1:{port}
sales@acme.test     lmtp:inet:127.0.0.1:{port}
former@acme.test    lmtp:inet:127.0.0.1:{port}
wall@acme.test      lmtp:inet:127.0.0.1:{untrusting_port}
"""

# Option B, as the doc has it.
OPTION_B = """\
virtual_mailbox_domains = acme.test
virtual_mailbox_maps = hash:{dir}/etc/mailroom-recipients
virtual_transport = lmtp:inet:127.0.0.1:{port}
recipient_delimiter = +
"""
RECIPIENTS = """\
crm@acme.test       OK
support@acme.test   OK
sales@acme.test     OK
"""

# No chroot (it would need copies of /etc files in the queue directory), and
# only the services this test uses: postlog for maillog_file, and pickup,
# which this test does not feed, but without which postqueue -f says "mail
# system is down".
MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{smtpd_port} inet n -  n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# Runs "$@" (the master) and kills its process group when this shell gets
# SIGTERM.  The shell gets SIGTERM when the test dies however it dies
# (PR_SET_PDEATHSIG): the master cannot hold that itself, since switching its
# effective uid to mail_owner and back (it does, to lock data_directory)
# clears it.  master without -w stays in the foreground; it becomes the leader
# of a new session and process group.
GUARD = """
"$@" &
pid=$!
trap 'kill -KILL -$pid 2>/dev/null || kill -KILL $pid; exit 143' TERM
wait $pid
"""


def _term_with_parent():
    """In the guard, before exec: SIGTERM when the test process dies."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port():
    """A port of 127.0.0.1 that nobody listens on (bound, read, closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postfix:
    """A private Postfix: config, queue and log under one temporary folder."""

    def __init__(self, lmtp_port, untrusting_port):
        self.dir = tempfile.mkdtemp(prefix="mrpostfix-")
        atexit.register(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o755)   # Postfix's daemons run as the postfix user
        self.etc = os.path.join(self.dir, "etc")
        os.mkdir(self.etc, 0o755)
        os.mkdir(os.path.join(self.dir, "queue"), 0o755)   # check creates the rest
        self.log_path = os.path.join(self.dir, "maillog")
        self.lmtp_port = lmtp_port
        self.untrusting_port = untrusting_port
        self.port = free_port()
        self.guard = None
        self.master_pid = None
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(smtpd_port=self.port))
        atexit.register(self.stop)

    def run(self, *argv, timeout=60):
        p = subprocess.run(list(argv), capture_output=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")

    def write(self, name, text):
        with open(os.path.join(self.etc, name), "w") as f:
            f.write(text.format(dir=self.dir, port=self.lmtp_port, untrusting_port=self.untrusting_port))

    def configure(self, option, tables):
        """Writes main.cf with @option and the @tables ({name: text}), then
        postmap for each: the doc's "postmap ..." step."""
        self.write("main.cf", MAIN_CF.replace("{option}", option))
        for name, text in tables.items():
            self.write(name, text)
            rc, out = self.run(POSTMAP, "-c", self.etc, "hash:" + os.path.join(self.etc, name))
            if rc != 0:
                raise RuntimeError("postmap %s: %s" % (name, out))

    def start(self, timeout=15):
        rc, out = self.run(POSTFIX, "-c", self.etc, "check")
        if rc != 0:
            raise RuntimeError("postfix check: %s\n%s" % (out, self.log()))
        self.guard = subprocess.Popen(["/bin/sh", "-c", GUARD, "postfix-guard", MASTER, "-c", self.etc],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, preexec_fn=_term_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.guard.poll() is None:
            try:
                s = smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test", timeout=5)
                s.quit()
                with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                    self.master_pid = int(f.read().split()[0])
                return out
            except (OSError, smtplib.SMTPException):
                time.sleep(0.1)
        raise RuntimeError("Postfix did not greet on port %d:\n%s" % (self.port, self.log()))

    def reload(self):
        """postfix reload: SIGHUP to the master named in pid/master.pid."""
        mark = self.mark()
        rc, out = self.run(POSTFIX, "-c", self.etc, "reload")
        if rc != 0 or self.wait_log(re.compile(r"master\[\d+\]: reload"), 10, mark) is None:
            raise RuntimeError("postfix reload (%d): %s\n%s" % (rc, out, self.log(mark)))
        return out

    def flush(self):
        return self.run(POSTQUEUE, "-c", self.etc, "-f")

    def delete(self, qid):
        return self.run(POSTSUPER, "-c", self.etc, "-d", qid)

    def queue(self):
        """postqueue -p: the queue listing (showq)."""
        return self.run(POSTQUEUE, "-c", self.etc, "-p")[1]

    def session_processes(self):
        """Processes in the master's session: the master and its daemons."""
        if self.master_pid is None:
            return []
        out = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,args="], capture_output=True,
                             text=True, timeout=30).stdout
        rows = [line.split(None, 3) for line in out.splitlines()]
        return [" ".join(r) for r in rows if len(r) == 4 and int(r[1]) == self.master_pid]

    def stop(self, timeout=10):
        """postfix -c DIR stop (SIGTERM to the master, which passes it to its
        process group), then SIGKILL to whatever is left.  Returns the exit
        code of postfix stop, or None if there was nothing to stop."""
        if self.guard is None:
            return None
        rc = None
        if self.guard.poll() is None:
            rc, out = self.run(POSTFIX, "-c", self.etc, "stop")
            try:
                self.guard.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + timeout
        while self.session_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.master_pid is not None:
            try:
                os.killpg(self.master_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.guard.poll() is None:
            self.guard.kill()
            self.guard.wait(5)
        self.guard = None
        return rc

    # --- the log ------------------------------------------------------------

    def log(self, start=0):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[start:]
        except FileNotFoundError:
            return ""

    def mark(self):
        return len(self.log())

    def wait_log(self, pattern, timeout=DELIVERY_TIMEOUT, start=0):
        """Polls the log (from offset @start) for a line that matches
        @pattern; returns the match or None."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log(start).splitlines():
                m = pattern.search(line)
                if m:
                    return m
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def wait_retry(self, qid, rcpt, status, start):
        """wait_status() for a retry of a queued message.  When the queue
        manager's scan met the file still locked by the delivery agent of
        the last attempt, Postfix logs "skipped, still being delivered" and
        waits 60 s; then ask for the retry with postqueue -f (at most
        three times)."""
        skipped = re.compile(r"postfix-mrtest/qmgr\[\d+\]: %s: skipped, still being delivered" % qid)
        for _ in range(3):
            want = re.compile(r"postfix-mrtest/\w+\[\d+\]: %s: to=<%s>, .*relay=([^,]*), .*"
                              r"status=%s \((.*)\)$" % (qid, re.escape(rcpt), status))
            deadline = time.monotonic() + DELIVERY_TIMEOUT
            while time.monotonic() < deadline:
                log = self.log(start)
                for line in log.splitlines():
                    m = want.search(line)
                    if m:
                        return m.groups()
                if skipped.search(log):
                    break
                time.sleep(0.1)
            else:
                return None
            print("# Postfix skipped %s, still locked by its delivery agent: postqueue -f" % qid,
                  flush=True)
            start = self.mark()
            self.flush()
        return None

    def wait_status(self, qid, rcpt, status, timeout=DELIVERY_TIMEOUT, start=0):
        """The "QID: to=<rcpt>, ... status=X (text)" line; returns (relay, text) or None."""
        m = self.wait_log(re.compile(r"postfix-mrtest/\w+\[\d+\]: %s: to=<%s>, .*relay=([^,]*), .*"
                                     r"status=%s \((.*)\)$" % (qid, re.escape(rcpt), status)),
                          timeout, start)
        return m.groups() if m else None


def submit(pf, sender, rcpts, raw):
    """One SMTP transaction with Postfix's smtpd: returns ({rcpt: RCPT reply},
    queue id or None)."""
    s = smtplib.SMTP("127.0.0.1", pf.port, local_hostname="client.test", timeout=10)
    try:
        s.ehlo()
        code, text = s.mail(sender)
        assert code == 250, text
        replies = {r: (c, x.decode()) for r, (c, x) in ((r, s.rcpt(r)) for r in rcpts)}
        if not any(c == 250 for c, _ in replies.values()):
            s.rset()
            return replies, None
        code, text = s.data(raw)
        m = re.search(r"queued as (\w+)", text.decode())
        return replies, (m.group(1) if code == 250 and m else None)
    finally:
        s.quit()


def subjects(d, subject):
    return [m for m in d.messages() if m.get("subject") == subject]


d = Daemon("store = { busy_timeout = 200; };")
du = Daemon('trusted_networks = [ "192.0.2.0/24" ];')
pf = Postfix(d.lmtp_port, du.lmtp_port)

# --- Option A: transport_maps --------------------------------------------------------
with section("option A: start"):
    pf.configure(OPTION_A, {"vmailbox": VMAILBOX, "transport": TRANSPORT})
    out = pf.start()
    t.ok(True, "private Postfix (-c %s) greets on 127.0.0.1:%d" % (pf.etc, pf.port))
    if out.strip():
        t.diag("postfix check said:\n" + out)
    m = pf.wait_log(re.compile(r"daemon started -- version ([\d.]+), configuration (\S+)"), 5)
    t.ok(m is not None and m.group(2) == pf.etc, "master logs to maillog_file, with our configuration",
         pf.log())
    if m:
        t.diag("Postfix %s" % m.group(1))

with section("option A: support@"):
    # CRLF throughout: smtplib sends bytes as they are, and Postfix would
    # store a bare LF as CRLF.
    raw = msg("Printer on fire via Postfix", msgid="pf-1@client.test", body="Hello.\r\n")
    replies, qid = submit(pf, "eve@client.test", ["support@acme.test"], raw)
    t.ok(qid is not None, "Postfix's smtpd queues a mail to support@acme.test", replies)
    r = pf.wait_status(qid, "support@acme.test", "sent")
    t.ok(r is not None and r[0] == "127.0.0.1[127.0.0.1]:%d" % d.lmtp_port and
         r[1].startswith("250 2.0.0 <support@acme.test> Ok: stored as message "),
         "maillog: status=sent (250 2.0.0 <support@acme.test> Ok: stored as message N) via the LMTP port",
         pf.log())
    tickets = [x for x in d.env.json("ticket", "list") if x["subject"] == "Printer on fire via Postfix"]
    t.eq([(x["id"], x["contact"], x["message_count"]) for x in tickets], [("TKT-1", "eve@client.test", 1)],
         "mailroomd made it a ticket")
    stored = subjects(d, "Printer on fire via Postfix")
    t.ok(r is not None and len(stored) == 1 and stored[0]["id"] == stored_id(r[1]),
         "the 250 names the stored message", (r, stored))
    raw_stored = d.raw_message(stored[0]["id"]) if stored else b""
    t.ok(raw_stored.startswith(b"Received: from client.test") and b"\r\nFrom: " in raw_stored and
         raw_stored[raw_stored.index(b"\r\nFrom: ") + 2:] == raw,
         "stored: Postfix's Received: header, then the message byte for byte", raw_stored[:400])
    t.ok(b"Delivered-To:" not in raw_stored and b"X-Original-To:" not in raw_stored,
         "no per-recipient headers from Postfix's LMTP client")

with section("option A: four recipients"):
    mark = pf.mark()
    before = d.message_count()
    rcpts = ["support+tkt-1@acme.test", "former@acme.test", "alice@acme.test", "nobody@acme.test"]
    replies, qid = submit(pf, "eve@client.test", rcpts,
                          msg("four ways", to=", ".join(rcpts), msgid="pf-2@client.test"))
    code, text = replies["nobody@acme.test"]
    t.ok(code == 550 and text.startswith("5.1.1 <nobody@acme.test>") and "virtual mailbox table" in text,
         "smtpd refuses an address that fails recipient validation: 550 5.1.1", text)
    t.eq(sorted(r for r, (c, _) in replies.items() if c == 250),
         ["alice@acme.test", "former@acme.test", "support+tkt-1@acme.test"], "the other three: 250")
    r = pf.wait_status(qid, "support+tkt-1@acme.test", "sent", start=mark)
    t.ok(r is not None and r[0] == "127.0.0.1[127.0.0.1]:%d" % d.lmtp_port and
         r[1].startswith("250 2.0.0 <support+tkt-1@acme.test> Ok: stored"),
         "support+tkt-1@ finds the transport entry of support@, and Postfix sends the full address: "
         "status=sent (250 2.0.0 ...)", pf.log(mark))
    r = pf.wait_status(qid, "former@acme.test", "bounced", start=mark)
    t.ok(r is not None and r[0] == "127.0.0.1[127.0.0.1]:%d" % d.lmtp_port and
         r[1].startswith("host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <former@acme.test>") and
         r[1].endswith("(in reply to RCPT TO command)"),
         "an address Postfix still routes to mailroomd but mailroom.conf lacks: "
         "status=bounced with mailroomd's 550 5.1.1", pf.log(mark))
    r = pf.wait_status(qid, "alice@acme.test", "sent", start=mark)
    t.ok(r is not None and r[0] == "none" and "dovecot" in r[1],
         "alice@ (no transport_maps entry) goes the domain's usual way, not to mailroomd", pf.log(mark))
    t.ok(pf.wait_log(re.compile(r": %s: sender non-delivery notification: \w+" % qid), start=mark)
         is not None, "Postfix returns the bounce to the sender", pf.log(mark))
    stored = subjects(d, "four ways")
    t.eq(d.message_count(), before + 1, "one message stored")
    m = d.env.json("message", "show", str(stored[0]["id"])) if stored else {"deliveries": []}
    t.eq([x["recipient"] for x in m["deliveries"]], ["support+tkt-1@acme.test"],
         "with one delivery, to support+tkt-1@")

with section("option A: untrusted"):
    mark = pf.mark()
    replies, qid = submit(pf, "eve@client.test", ["wall@acme.test"], msg("walled off", to="wall@acme.test"))
    r = pf.wait_status(qid, "wall@acme.test", "deferred", start=mark)
    t.ok(r is not None and r[0] == "127.0.0.1[127.0.0.1]:%d" % du.lmtp_port and
         r[1].startswith("host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.7.1 "),
         "a mailroomd that does not trust Postfix greets 554 5.7.1: status=deferred, not bounced", pf.log(mark))
    rc, out = pf.delete(qid)
    t.ok(rc == 0 and "1 message" in out, "postsuper -d removes it", out)

# --- Option B: virtual_transport, after postmap && postfix reload ----------------------
with section("option B: reload"):
    pf.configure(OPTION_B, {"mailroom-recipients": RECIPIENTS})
    pf.reload()
    t.ok(True, "main.cf rewritten for Option B; postmap && postfix -c DIR reload")

with section("option B: plus address and refusal"):
    mark = pf.mark()
    replies, qid = submit(pf, "eve@client.test", ["support+tkt-1@acme.test", "nobody@acme.test"],
                          msg("more about the printer", to="support+tkt-1@acme.test", msgid="pf-3@client.test"))
    code, text = replies["nobody@acme.test"]
    t.ok(code == 550 and text.startswith("5.1.1 <nobody@acme.test>") and
         "User unknown in virtual mailbox table" in text,
         "Option B: smtpd refuses nobody@acme.test (550 5.1.1 User unknown in virtual mailbox table)", text)
    t.eq(replies["support+tkt-1@acme.test"][0], 250, "support+tkt-1@acme.test: 250 at smtpd")
    r = pf.wait_status(qid, "support+tkt-1@acme.test", "sent", start=mark)
    t.ok(r is not None and r[1].startswith("250 2.0.0 <support+tkt-1@acme.test> Ok: stored"),
         "support+tkt-1@ passes virtual_mailbox_maps (as support@) and reaches mailroomd whole", pf.log(mark))
    tk = d.env.json("ticket", "show", "TKT-1")
    t.eq([x["message_id"] for x in tk["messages"]], ["pf-1@client.test", "pf-2@client.test", "pf-3@client.test"],
         "the detail names the ticket: TKT-1 has the three messages")

with section("option B: temporary failure"):
    mark = pf.mark()
    subject = "while the store is locked"
    rcpts = ["crm@acme.test", "support@acme.test"]
    lock = WriteLock(d.env.db)
    try:
        replies, qid = submit(pf, "bob@client.test", rcpts,
                              msg(subject, frm="bob@client.test", msgid="pf-4@client.test"))
        t.ok(qid is not None, "queued while mailroomd's store is locked", replies)
        deferred = [pf.wait_status(qid, r, "deferred", start=mark) for r in rcpts]
        t.ok(all(x is not None and x[0] == "127.0.0.1[127.0.0.1]:%d" % d.lmtp_port and
                 x[1] == "host 127.0.0.1[127.0.0.1] said: 451 4.3.0 <%s> Not stored, try again later "
                         "(in reply to end of DATA command)" % r
                 for x, r in zip(deferred, rcpts)),
             "maillog: status=deferred with mailroomd's 451 4.3.0, for each recipient", pf.log(mark))
        again = pf.mark()
        t.eq(subjects(d, subject), [], "nothing stored (mailroomctl reads while the lock is held)")
        t.ok(qid in pf.queue(), "the message waits in Postfix's queue (postqueue -p)")
        # Wait for the retry itself, however long Postfix's queue manager
        # takes to come back to it (its backoff is 2-3 s here).  When its
        # scan met the file still locked by the delivery agent, Postfix logs
        # "skipped, still being delivered" and waits 60 s: that is its own
        # schedule too, so the test then asks for the retry (postqueue -f).
        dmark = d.mark()
        t.ok(pf.wait_retry(qid, "crm@acme.test", "deferred", again) is not None,
             "Postfix retries on its own schedule (backoff 2-3 s) and is deferred again",
             "postfix log since the first deferral:\n%s\nqueue:\n%s\nmailroomd:\n%s"
             % (pf.log(mark), pf.queue(), d.log(dmark)))
    finally:
        lock.release()
    again = pf.mark()
    rc, out = pf.flush()
    t.ok(rc == 0, "lock released; postqueue -c DIR -f", out)
    sent = [pf.wait_retry(qid, r, "sent", again) for r in rcpts]
    t.ok(all(x is not None and x[1].startswith("250 2.0.0 <%s> Ok: stored as message " % r)
             for x, r in zip(sent, rcpts)),
         "the retry: status=sent for both recipients", pf.log(again))
    stored = subjects(d, subject)
    t.eq(len(stored), 1, "stored exactly once")
    if len(stored) == 1:
        m = d.env.json("message", "show", str(stored[0]["id"]))
        t.eq(sorted(x["recipient"] for x in m["deliveries"]), rcpts, "with one delivery per recipient")
        t.ok(all(x is not None and stored_id(x[1]) == stored[0]["id"] for x in sent), "both 250s name it")
    t.ok(pf.wait_log(re.compile(r": %s: removed$" % qid), DELIVERY_TIMEOUT, again) is not None and qid not in pf.queue(),
         "Postfix removed it from its queue")

# --- the end: nothing left behind --------------------------------------------------------
# A warning about the machine, not about the mail: a virtual machine's
# clock may step, and Postfix's cleanup says so ("file system clock is 1
# seconds ahead of local clock", "resetting file time stamps").
CLOCK_WARNING = re.compile(r"warning: (file system clock is .* of local clock|"
                           r"resetting file time stamps)")


def postfix_warnings():
    return [x for x in pf.log().splitlines()
            if re.search(r"warning|fatal|panic", x) and not CLOCK_WARNING.search(x)]


with section("stop"):
    t.ok(postfix_warnings() == [], "no warning in Postfix's log (but about the clock)",
         "\n".join(postfix_warnings()))
    pid = pf.master_pid
    t.eq(pf.stop(), 0, "postfix -c DIR stop")
    t.eq(pf.session_processes(), [], "no process is left in the master's session (ps)")
    t.ok(not os.path.exists("/proc/%d" % pid), "the master (%d) is gone and reaped" % pid)
    t.eq((d.stop(), du.stop()), (0, 0), "both mailroomd exit 0")

t.diag("63-postfix.t took %.1fs" % (time.monotonic() - T0))
