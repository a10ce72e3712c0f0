#!/usr/bin/env python3
# A message that makes mailroomd die must not kill every run after it.
# mailroomd marks the batch in flight (durably) before it fetches it; a run
# that finds the mark above the last UID handled knows the one before it
# died there, stores those UIDs one by one, and quarantines, unparsed, a
# message that was alone in flight when two runs died.
#
# The death here is a SIGKILL while mailroomd waits for the body of UID 2
# from a fake IMAP server of the test's own on loopback (it never answers a
# whole-body fetch of UID 2; a fetch in parts it answers).  A real crash in
# the parser dies at the same place in the sequence: after the mark, before
# the COMMIT.
import os
import re
import socket
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, imap_uid_set, message, serve, wait_until  # noqa: E402
from mrdaemon import Daemon  # noqa: E402

t = Tap()
section = t.section
KILLER = 2
MAILS = {uid: message("customer%d@client.test" % uid, "support@acme.test", "Issue %d" % uid,
                      msgid="crash-%d@client.test" % uid).encode()
         for uid in (1, 2, 3)}
log = {"fetches": [], "stores": [], "lock": threading.Lock(), "hung": threading.Event()}


def uid_set(text):
    return imap_uid_set(text, MAILS)


def serve_one(conn):
    f = conn.makefile("rb")
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1 UIDPLUS] fake ready\r\n")
    for line in f:
        m = re.match(rb"(\S+) (.*)\r\n", line)
        if not m:
            return
        tag, cmd = m.group(1), m.group(2).decode()
        up = cmd.upper()
        if up.startswith("CAPABILITY"):
            conn.sendall(b"* CAPABILITY IMAP4rev1 UIDPLUS\r\n" + tag + b" OK done\r\n")
        elif up.startswith("LIST"):
            conn.sendall(b'* LIST () "/" INBOX\r\n' + tag + b" OK done\r\n")
        elif up.startswith("SELECT") or up.startswith("EXAMINE"):
            conn.sendall(b"* %d EXISTS\r\n* OK [UIDVALIDITY 9] v\r\n* OK [UIDNEXT 4] n\r\n"
                         % len(MAILS) + tag + b" OK [READ-WRITE] selected\r\n")
        elif up.startswith("UID FETCH") and "RFC822.SIZE" in up:
            out = b"".join(b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (u, u, len(MAILS[u]))
                           for u in uid_set(cmd.split()[2]))
            conn.sendall(out + tag + b" OK done\r\n")
        elif up.startswith("UID FETCH"):
            uids = uid_set(cmd.split()[2])
            part = re.search(r"BODY\.PEEK\[\]<(\d+)\.(\d+)>", cmd)
            with log["lock"]:
                log["fetches"].append((tuple(uids), part is not None))
            if KILLER in uids and part is None:
                log["hung"].set()
                time.sleep(3600)        # the test kills mailroomd meanwhile
                return
            out = b""
            for u in uids:
                body = MAILS[u]
                if part:
                    start, n = int(part.group(1)), int(part.group(2))
                    chunk = body[start:start + n]
                    out += b"* %d FETCH (UID %d BODY[]<%d> {%d}\r\n%s)\r\n" % (
                        u, u, start, len(chunk), chunk)
                else:
                    out += b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (
                        u, u, len(body), body)
            conn.sendall(out + tag + b" OK done\r\n")
        elif up.startswith("UID STORE"):
            with log["lock"]:
                log["stores"].append((tuple(uid_set(cmd.split()[2])), cmd))
            conn.sendall(tag + b" OK done\r\n")
        elif up.startswith("LOGOUT"):
            conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
            return
        else:                           # LOGIN, NOOP, CHECK...
            conn.sendall(tag + b" OK fine\r\n")


def state(d):
    rows = d.env.query("SELECT last_uid, inflight_to, inflight_tries FROM mailbox_state")
    return tuple(rows[0]) if rows else None


def hang_then_kill(d, what):
    """Waits until mailroomd asks for the whole body of UID 2, then SIGKILLs it."""
    ok = log["hung"].wait(20)
    log["hung"].clear()
    st = state(d)
    d.kill()
    t.ok(ok, "%s: mailroomd fetched UID 2 and waits for it" % what)
    return st


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
serve(listener, serve_one)

d = Daemon("", start=False)
with open(os.path.join(d.env.dir, "pass"), "w") as f:
    f.write("pw\n")
d.write_config('imap = ( { name = "fake"; host = "127.0.0.1"; port = %d; tls = "none";'
               ' user = "u"; password_file = "%s"; role = "support"; poll_interval = 1;'
               ' reconnect_max = 1; } );\n'
               % (listener.getsockname()[1], os.path.join(d.env.dir, "pass")))

with section("run 1 dies with UIDs 1 to 3 in flight"):
    d.start()
    st = hang_then_kill(d, "run 1")
    t.eq(log["fetches"][-1], ((1, 2, 3), False), "one batch of three")
    t.eq(st, (0, 3 + 1600, 0), "the mark was durable before the fetch: the batch, and the"
         " UIDs new mail will get, in flight")

with section("run 2 goes one by one: UID 1 is stored, UID 2 kills it again"):
    d.start()
    t.ok(d.wait_for(r"the last run stopped while storing UIDs 1 to 1603", 10),
         "a log line says what the last run left")
    st = hang_then_kill(d, "run 2")
    t.eq(log["fetches"][-2:], [((1,), False), ((2,), False)], "UID 1 alone, then UID 2 alone")
    t.eq(st, (1, 2, 1), "UID 1 handled; UID 2 marked alone in flight, the first run to try")
    t.eq(d.env.query("SELECT count(*) FROM message")[0][0], 1, "UID 1 is stored")

with section("run 3: UID 2 alone kills it a second time"):
    d.start()
    st = hang_then_kill(d, "run 3")
    t.eq(log["fetches"][-1], ((2,), False), "UID 2 alone again")
    t.eq(st, (1, 2, 2), "the second run to try it")

with section("run 4 quarantines UID 2 unparsed and goes on"):
    d.start()
    t.ok(wait_until(lambda: d.env.query("SELECT count(*) FROM message")[0][0] == 2),
         "UID 3 is stored")
    q = d.env.json("message", "list", "--quarantined")
    t.ok(len(q) == 1 and q[0]["uid"] == KILLER and q[0]["mailbox"] == "fake" and
         "stopped 2 times" in q[0]["reason"] and q[0]["size"] == len(MAILS[KILLER]),
         "UID 2 is in the quarantine, with the reason", q)
    t.ok(any(f == ((2,), True) for f in log["fetches"]), "its bytes were fetched in parts")
    t.ok(((2,) in [s[0] for s in log["stores"]]) and ((3,) in [s[0] for s in log["stores"]]),
         "UID 2 got the after action like the others, and UID 3 too", log["stores"])
    t.eq(log["fetches"][-1], ((3,), False), "then UID 3 in a batch of its own")
    t.ok(wait_until(lambda: state(d) == (3, 3 + 1600, 0)), "last UID 3, a mark ahead", state(d))
    t.ok(not log["hung"].is_set(), "nothing asked for UID 2's whole body again")
    rc, out, err = d.env.ctl("message", "retry", str(q[0]["id"]))
    t.ok(rc == 0, "message retry stores it (its bytes were fine)", err)
    t.eq(d.env.query("SELECT count(*) FROM message")[0][0], 3, "three messages stored")
    t.eq(d.env.json("message", "list", "--quarantined"), [], "the quarantine is empty")
    t.eq(d.stop(), 0, "mailroomd stops cleanly (exit 0)")
listener.close()
