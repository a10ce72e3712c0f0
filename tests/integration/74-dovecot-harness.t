#!/usr/bin/env python3
# The harness for the IMAP tests (mrdovecot.py), before there is an IMAP door
# to test: a private Dovecot starts on 127.0.0.1 only, greets on both ports,
# takes LOGIN on the plain port, after STARTTLS and on the implicit-TLS port
# (a client that does not trust the harness's CA fails verification), refuses
# a wrong password at once; append/count/uids/flags/store/expunge/folders
# work; a UIDVALIDITY changed while it runs is seen by clients; restart()
# comes back on the same ports with the same mail, kill() leaves no process
# and start() comes back; 100 users cost nothing and 100 sessions IDLE at
# once; XOAUTH2/OAUTHBEARER tokens are checked by the harness's
# introspection endpoint (good: in; unknown, expired, another user's: out;
# IdP down: temporary failure), each login one request; Dovecot's own IDLE
# delay is measured; IDLE can be taken out of CAPABILITY; stop() leaves no
# process and no folder, and neither does a test process killed with SIGKILL
# (the watchdog).
# Skipped when Dovecot is not installed (developer machines: CI installs it,
# tools/deps.sh).
import imaplib
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mrdovecot  # noqa: E402

T0 = time.monotonic()
# The harness does not depend on mailroom's build or engine: one run (the
# plain build on SQLite) is enough.
if os.environ.get("MR_TEST_DB", "sqlite") != "sqlite" or \
        "asan" in os.path.basename(os.path.normpath(os.environ.get("MR_BUILD", "build"))):
    print("1..0 # SKIP the Dovecot harness is tested once, with the plain build on SQLite")
    sys.exit(0)
if not mrdovecot.available():
    print("1..0 # SKIP %s" % mrdovecot.unavailable_reason())
    sys.exit(0)

from mrtest import Tap  # noqa: E402 - after the skip check: Tap prints a plan at exit

t = Tap()
section = t.section
MSG = b"From: a@example.test\r\nTo: user1@example.test\r\nSubject: hello\r\n\r\nHello.\r\n"


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
        if text in cmd and mrdovecot._alive(int(p)):
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


def refused(f):
    """The imaplib error text when f() is refused, None when it passes."""
    try:
        M = f()
    except imaplib.IMAP4.error as e:
        return str(e)
    M.logout()
    return None


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def read_until(M, pred, limit=50):
    """Lines of a raw imaplib connection until pred(line); returns them."""
    lines = []
    for _ in range(limit):
        line = M.readline()
        lines.append(line)
        if not line or pred(line):
            break
    return lines


t0 = time.monotonic()
try:
    dc = mrdovecot.DovecotServer.start(users=3)
except mrdovecot.DovecotError as e:
    t.ok(False, "a private Dovecot starts", str(e))
    sys.exit(1)
t.ok(True, "a private Dovecot starts with 3 users in %s, IMAP 127.0.0.1:%d, IMAPS :%d (%.2fs)" % (
    dc.dir, dc.port, dc.imaps_port, time.monotonic() - t0))

with section("the server"):
    t.eq(listening(dc.port), ["0100007F"], "IMAP listens on 127.0.0.1:%d only" % dc.port)
    t.eq(listening(dc.imaps_port), ["0100007F"],
         "IMAPS listens on 127.0.0.1:%d only" % dc.imaps_port)
    t.ok(len(dc.dir) + len("/run/token-login/imap-urlauth") < 108, "a short folder: %s" % dc.dir)
    t.ok(dc.port >= 1024 and dc.imaps_port >= 1024, "high ports")
    t.ok(len(dc.pids()) >= 5 and dc.pids()[0] == dc.pid,
         "the master (%d) and its children run: %s" % (dc.pid, dc.pids()))
    t.eq(sorted(dc.users), ["user1", "user2", "user3"], "users user1..user3")
    with socket.create_connection(("127.0.0.1", dc.port), timeout=5) as s:
        greeting = s.makefile("rb").readline()
    t.ok(greeting.startswith(b"* OK") and b"STARTTLS" in greeting and b"AUTH=XOAUTH2" in greeting
         and b"AUTH=OAUTHBEARER" in greeting and b"AUTH=PLAIN" in greeting,
         "greeting offers STARTTLS, PLAIN, XOAUTH2, OAUTHBEARER", greeting)

with section("login"):
    for tls in ("plain", "starttls", "imaps"):
        M = dc.login("user1", tls=tls)
        caps = dc._capability(M)
        t.ok(M.state == "AUTH",
             "LOGIN over %s%s" % (tls, "" if tls == "plain" else " (CA verified)"))
        if tls == "plain":
            t.ok({"IDLE", "MOVE", "UIDPLUS"} <= set(caps), "IDLE, MOVE and UIDPLUS offered", caps)
        else:
            cert = M.sock.getpeercert()
            sans = sorted(v for _, v in cert.get("subjectAltName", ()))
            t.eq(sans, ["127.0.0.1", "localhost"],
                 "%s: subjectAltName 127.0.0.1 and localhost" % tls)
        M.logout()
    # The name "localhost" verifies too.
    ctx = dc.ssl_context()
    with socket.create_connection(("127.0.0.1", dc.imaps_port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as ts:
            t.ok(ts.makefile("rb").readline().startswith(b"* OK"), "IMAPS verified as localhost")
    for tls in ("imaps", "starttls"):
        try:
            dc.connect(tls, ca=False).logout()
            t.ok(False, "%s without the CA fails verification" % tls)
        except ssl.SSLCertVerificationError as e:
            t.ok("certificate verify failed" in str(e),
                 "%s without the CA fails verification" % tls, e)
    t0 = time.monotonic()
    err = refused(lambda: dc.login("user1", "wrong"))
    took = time.monotonic() - t0
    t.ok(err is not None and "AUTHENTICATIONFAILED" in err, "a wrong password is refused", err)
    t.ok(took < 1.5, "within 0.5 s (%.2fs; auth_failure_delay 0)" % took)
    err = refused(lambda: dc.login("nosuchuser", "x"))
    t.ok(err is not None, "an unknown user is refused", err)
    t0 = time.monotonic()
    for _ in range(3):
        refused(lambda: dc.login("user2", "wrong"))
    M = dc.login("user2")
    took = time.monotonic() - t0
    M.logout()
    t.ok(took < 3.0, "failures do not slow the next login (no auth penalty; %.2fs)" % took)
    odd = 'p "a\\ss:w ({'
    dc.add_user("Odd.One", odd)
    M = dc.login("odd.one", odd)
    t.ok(M.state == "AUTH", "add_user() while running; LOGIN with a password with quotes, "
                            "backslash, colon, space")
    M.logout()
    dc.add_user("utf", "wörd – 東京")
    M = dc.login("utf", mech="PLAIN")
    t.ok(M.state == "AUTH", "AUTHENTICATE PLAIN with a UTF-8 password")
    M.logout()
    if os.geteuid() == 0:
        M = dc.login("user1")
        M.select("INBOX")
        imap = [p for p in dc.pids() if "/imap" in mrdovecot._cmdline(p)
                and "imap-login" not in mrdovecot._cmdline(p)]
        uids = {uid_of(p) for p in imap}
        t.ok(imap and uids == {dc.mail_uid} and dc.mail_uid != 0,
             "as root, mail processes run as %s (uid %s)" % (dc.mail_user, dc.mail_uid), uids)
        M.logout()

with section("mail helpers"):
    u1 = dc.append("user1", "INBOX", MSG)
    u2 = dc.append("user1", "INBOX", MSG, flags=("\\Seen", "\\Flagged"))
    t.eq((u1, u2), (1, 2), "append returns the UIDs (APPENDUID)")
    t.eq(dc.count("user1", "INBOX"), 2, "count")
    t.eq(dc.uids("user1", "INBOX"), [1, 2], "uids")
    t.eq(dc.flags("user1", "INBOX", u1), set(), "flags of a new message: none")
    t.eq(dc.flags("user1", "INBOX", u2), {"\\Seen", "\\Flagged"}, "flags given at append")
    t.eq(dc.flags("user1", "INBOX", 99), None, "flags of no message: None")
    dc.store("user1", "INBOX", u1, ["\\Seen"])
    t.eq(dc.flags("user1", "INBOX", u1), {"\\Seen"}, "store +FLAGS")
    dc.store("user1", "INBOX", u2, ["\\Flagged"], op="-FLAGS")
    t.eq(dc.flags("user1", "INBOX", u2), {"\\Seen"}, "store -FLAGS")
    more = dc.append_many("user1", "INBOX", [MSG] * 5)
    t.eq(more, [3, 4, 5, 6, 7], "append_many: one connection, five UIDs")
    dc.expunge("user1", "INBOX", [3, 5])
    t.eq(dc.uids("user1", "INBOX"), [1, 2, 4, 6, 7], "expunge")
    st = dc.status("user1", "INBOX")
    t.eq((st["MESSAGES"], st["UIDNEXT"], st["UNSEEN"]), (5, 8, 3), "status", )
    dc.create_folder("user1", "Archive/2024")
    dc.create_folder("user1", "Entwürfe & Co")
    dc.create_folder("user1", "Archive/2024", exist_ok=True)
    t.eq(dc.append("user1", "Archive/2024", MSG), 1, "append to a sub-folder")
    t.eq(dc.append("user1", "Entwürfe & Co", MSG), 1, "append to a non-ASCII folder")
    names = dc.folders("user1")
    t.ok({"INBOX", "Archive", "Archive/2024", "Entw&APw-rfe &- Co"} <= set(names),
         "folders (separator /, modified UTF-7)", names)
    t.eq(dc.count("user2", "INBOX"), 0, "another user's INBOX is empty")
    md = dc.maildir("user1")
    files = os.listdir(os.path.join(md, "new")) + os.listdir(os.path.join(md, "cur"))
    t.eq(len(files), 5, "the Maildir on disk: %s (new/ + cur/)" % md)

with section("UIDVALIDITY"):
    before = dc.uidvalidity("user1", "INBOX")
    W = dc.login("user1")
    W.select("INBOX")
    after = dc.change_uidvalidity("user1", "INBOX")
    t.ok(after != before and dc.uidvalidity("user1", "INBOX") == after,
         "changed while running: %d -> %d (STATUS)" % (before, after))
    M = dc.login("user1")
    M.select("INBOX")
    t.eq(int(M.untagged_responses["UIDVALIDITY"][-1]), after, "a new SELECT sees it")
    M.logout()
    t.eq(dc.uids("user1", "INBOX"), [1, 2, 4, 6, 7], "messages and UIDs stay")
    try:
        W.noop()
        t.ok(False, "the session that had INBOX selected is ended")
    except imaplib.IMAP4.abort as e:
        t.ok("inconsistent" in str(e), "the session that had INBOX selected is ended (BYE)", e)
    t.eq(dc.append("user1", "INBOX", MSG), 8, "append after the change: UIDs go on")
    b2 = dc.uidvalidity("user1", "Archive/2024")
    t.eq(dc.change_uidvalidity("user1", "Archive/2024", b2 + 100), b2 + 100, "an explicit value")
    t.eq(dc.uidvalidity("user1", "Archive/2024"), b2 + 100, "... seen by STATUS")
    b3 = dc.uidvalidity("user1", "Entwürfe & Co")
    t.eq(dc.change_uidvalidity("user1", "Entwürfe & Co"), b3 + 1, "a non-ASCII folder")
    t.eq(dc.uidvalidity("user1", "Entwürfe & Co"), b3 + 1, "... seen by STATUS")

with section("restart on the same ports"):
    ports, pids, d = (dc.port, dc.imaps_port), dc.pids(), dc.dir
    W = dc.login("user1")
    W.select("INBOX")
    t0 = time.monotonic()
    dc.restart()
    took = time.monotonic() - t0
    t.eq((dc.port, dc.imaps_port), ports, "restart(): the same ports (%.2fs)" % took)
    t.eq([p for p in pids if mrdovecot._alive(p)], [], "the old processes are gone")
    bye = read_until(W, lambda line: line.startswith(b"* BYE"))
    t.ok(bye and bye[-1].startswith(b"* BYE"), "an open session got * BYE", bye)
    W.shutdown()
    t.eq(dc.uids("user1", "INBOX"), [1, 2, 4, 6, 7, 8], "the mail stays")
    t.eq(dc.flags("user1", "INBOX", 1), {"\\Seen"}, "the flags stay")
    t.ok(dc.dir == d and os.path.isdir(d), "the folder stays")

with section("kill"):
    W = dc.login("user1")
    W.select("INBOX")
    pids = dc.pids()
    t.ok(len(pids) >= 6, "%d processes with a session open" % len(pids))
    t0 = time.monotonic()
    dc.kill()
    took = time.monotonic() - t0
    t.eq([p for p in pids if mrdovecot._alive(p)], [], "kill(): all gone (%.2fs)" % took)
    t.eq([p for p in pids if (mrdovecot._stat(p) or (0, 0))[1] == os.getpid()], [],
         "none left as our zombie")
    t.eq(W.readline(), b"", "the open session sees the connection close, without BYE")
    W.shutdown()
    try:
        socket.create_connection(("127.0.0.1", dc.port), timeout=2).close()
        t.ok(False, "nothing listens after kill()")
    except OSError:
        t.ok(True, "nothing listens after kill()")
    t0 = time.monotonic()
    dc.start()
    t.eq((dc.port, dc.imaps_port), ports, "start() again: the same ports (%.2fs)"
         % (time.monotonic() - t0))
    t.eq(dc.count("user1", "INBOX"), 6, "the mail stays")

with section("XOAUTH2 / OAUTHBEARER"):
    dc.oauth_tokens.update({"tok-good": "user1", "tok-old": "user2"})
    dc.expire_token("tok-old")
    n0 = len(dc.introspections())
    M = dc.xoauth2("user1", "tok-good")
    t.ok(M.state == "AUTH", "XOAUTH2 with a good token logs in")
    t.eq(dc.count("user1", "INBOX"), 6, "... as user1")
    M.logout()
    M = dc.xoauth2("user1", "tok-good", tls="imaps")
    t.ok(M.state == "AUTH", "XOAUTH2 over IMAPS")
    M.logout()
    M = dc.oauthbearer("user1", "tok-good")
    t.ok(M.state == "AUTH", "OAUTHBEARER with a good token logs in")
    M.logout()
    for user, tok, what in (("user1", "tok-nope", "an unknown token"),
                            ("user2", "tok-old", "an expired token"),
                            ("user2", "tok-good", "another user's token")):
        err = refused(lambda: dc.xoauth2(user, tok))
        t.ok(err is not None and "AUTHENTICATIONFAILED" in err, "%s is refused" % what, err)
    reqs = dc.introspections()[n0:]
    t.eq(len(reqs), 6, "one introspection request per attempt")
    t.eq({r["method"] for r in reqs}, {"POST"}, "introspection_mode = post")
    t.eq(len(dc.introspections("tok-good")), 4, "counted per token")
    dc.oauth_fail = 503
    err = refused(lambda: dc.xoauth2("user1", "tok-good"))
    t.ok(err is not None and "UNAVAILABLE" in err, "the IdP down (503): a temporary failure", err)
    dc.oauth_fail = None
    t.ok(refused(lambda: dc.xoauth2("user1", "tok-good")) is None, "and back")
    dc.expire_token("tok-good")
    t.ok(refused(lambda: dc.xoauth2("user1", "tok-good")) is not None,
         "a token expired while the server runs is refused at the next login")

with section("IDLE delay"):
    delays = dc.idle_delay("user3", samples=5)
    med = statistics.median(delays)
    t.diag("Dovecot IDLE notification delay, APPEND OK -> * N EXISTS: median %.3fs (%s)" % (
        med, " ".join("%.3f" % x for x in delays)))
    t.ok(len(delays) == 5 and 0.05 < med < 2.0, "idle_delay: 5 samples, median %.3fs" % med)
    t.eq(dc.count("user3", "INBOX"), 5, "the probes were appended")

with section("stop"):
    d, pids, tag = dc.dir, dc.pids(), os.path.basename(dc.dir)
    t0 = time.monotonic()
    dc.stop()
    t.ok(True, "stop() (%.2fs)" % (time.monotonic() - t0))
    t.eq(procs_mentioning(tag), [], "no process mentions %s" % tag)
    t.eq([p for p in pids if os.path.exists("/proc/%d" % p)], [],
         "the master and its children are gone (reaped, not zombies)")
    t.ok(not os.path.exists(d), "the folder is removed")
    t.ok(dc._watch.returncode is not None, "the watchdog has ended")
    dc.stop()
    t.ok(True, "stop() again: nothing to do")
    try:
        dc.start()
        t.ok(False, "start() after stop() raises")
    except mrdovecot.DovecotError:
        t.ok(True, "start() after stop() raises (make a new server)")

with section("100 users"):
    t0 = time.monotonic()
    big = mrdovecot.DovecotServer.start(users=100)
    took = time.monotonic() - t0
    t.diag("start with 100 users: %.2fs" % took)
    t.ok(took < 10, "100 users: started in %.2fs" % took)
    t0 = time.monotonic()
    conns = []
    try:
        for i in range(1, 101):
            M = big.login("user%d" % i)
            M.select("INBOX")
            M.send(b"i IDLE\r\n")
            if not M.readline().startswith(b"+"):
                break
            conns.append(M)
        took = time.monotonic() - t0
        t.eq(len(conns), 100, "100 sessions in IDLE at once (%.2fs)" % took)
        big.append("user77", "INBOX", MSG)
        line = read_until(conns[76], lambda x: b"EXISTS" in x)[-1]
        t.eq(line, b"* 1 EXISTS\r\n", "the one whose INBOX got mail is told")
        warn = [x for x in big.log().splitlines() if "inotify" in x]
        t.eq(warn, [], "no inotify warning in Dovecot's log")
    finally:
        for M in conns:
            M.shutdown()
    d = big.dir
    big.stop()
    t.ok(not os.path.exists(d) and procs_mentioning(os.path.basename(d)) == [], "stopped")

with section("IDLE turned off"):
    t0 = time.monotonic()
    ni = mrdovecot.DovecotServer.start(users=1, capabilities_off=("IDLE",))
    t.diag("start with capabilities_off: %.2fs" % (time.monotonic() - t0))
    M = ni.connect()
    pre = set(M.capabilities)
    M.login("user1", ni.password("user1"))
    post = ni._capability(M)
    M.logout()
    t.ok("IDLE" not in pre, "no IDLE before login", pre)
    t.ok("IDLE" not in post, "no IDLE in CAPABILITY after login", post)
    t.ok({"MOVE", "UIDPLUS", "IMAP4rev1"} <= set(post), "the rest is there", post)
    ni.restart()
    M = ni.login("user1")
    t.ok("IDLE" not in ni._capability(M), "still off after restart()")
    M.logout()
    ni.capabilities_off = ()
    ni.reload()
    caps = ni.capabilities()
    t.ok({"IDLE", "MOVE", "UIDPLUS"} <= set(caps), "back on while running (reload())", caps)
    ni.stop()

with section("a port taken before Dovecot binds it"):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real = mrdovecot.free_port
    calls = []

    def once_taken():
        calls.append(1)
        return taken if len(calls) == 1 else real()

    mrdovecot.free_port = once_taken
    try:
        dc2 = mrdovecot.DovecotServer.start(users=1)
    finally:
        mrdovecot.free_port = real
    t.ok(taken not in (dc2.port, dc2.imaps_port) and len(calls) == 4,
         "started on other ports (%d, %d, not %d) at the second try" % (
             dc2.port, dc2.imaps_port, taken))
    t.ok("Address already in use" in dc2.log(), "the log shows the first try", dc2.log())
    d2 = dc2.dir
    dc2.stop()
    mrdovecot.free_port = lambda: taken if len(calls.append(1) or calls) % 2 == 0 else real()
    try:
        dc3 = mrdovecot.DovecotServer()
        dc3.start()
        t.ok(False, "a port always taken: start raises")
    except mrdovecot.DovecotError as e:
        msg = str(e)
        t.ok("Address already in use" in msg and "did not start" in msg and "master.out" in msg,
             "the IMAPS port always taken: DovecotError with why", msg)
        t.ok(not os.path.exists(dc3.dir) and procs_mentioning(os.path.basename(dc3.dir)) == [],
             "nothing left after the failed start")
    finally:
        mrdovecot.free_port = real
        blocker.close()
    t.ok(not os.path.exists(d2), "the first one stopped too")

with section("a test process killed with SIGKILL"):
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import os, signal, sys; sys.path.insert(0, %r); import mrdovecot\n"
         "dc = mrdovecot.DovecotServer.start(users=2)\n"
         "M = dc.login('user1'); M.select('INBOX')\n"
         "print(dc.dir, dc.pid, dc._watch.pid, flush=True)\n"
         "os.kill(os.getpid(), signal.SIGKILL)\n" % HERE],
        stdout=subprocess.PIPE, text=True)
    out, _ = child.communicate(timeout=60)
    t.eq(child.returncode, -signal.SIGKILL, "the child started a Dovecot and was killed")
    d3, pid3, watch3 = out.split()
    pid3, watch3 = int(pid3), int(watch3)
    end = time.monotonic() + 30
    while time.monotonic() < end and (os.path.exists(d3) or mrdovecot._alive(watch3)):
        time.sleep(0.1)
    t.ok(not mrdovecot._alive(pid3), "the watchdog stopped its master")
    t.eq(procs_mentioning(os.path.basename(d3)), [], "no process mentions %s" % d3)
    t.ok(not os.path.exists(d3), "the watchdog removed the folder")
    t.ok(not mrdovecot._alive(watch3), "the watchdog has ended")

t.diag("74-dovecot-harness.t took %.1fs (euid %d)" % (time.monotonic() - T0, os.geteuid()))
