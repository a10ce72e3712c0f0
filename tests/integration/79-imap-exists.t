#!/usr/bin/env python3
# New mail announced with the answer to one of mailroomd's own commands is
# not announced again in IDLE: the server told it once.  A fake IMAP server
# of the test's own on loopback makes that happen every time: a message
# arrives while mailroomd flags the first one \Seen, and the "* 2 EXISTS"
# comes with the STORE's answer; in IDLE the server then says nothing.
# mailroomd must list the folder once more before it goes idle.  (Seen with
# a real Dovecot under load: one message in a few thousand waited for the
# next wake-up, up to 29 minutes.)
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
mails = {1: message("first@client.test", "support@acme.test", "First",
                    msgid="exists-1@client.test").encode()}
lock = threading.Lock()
seen = {"idle": 0, "stores": [], "lists": 0, "flap": False}


def serve_one(conn):
    f = conn.makefile("rb")
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] fake ready\r\n")
    while True:
        line = f.readline()
        m = re.match(rb"(\S+) (.*)\r\n", line)
        if not m:
            return
        tag, cmd = m.group(1), m.group(2).decode()
        up = cmd.upper()
        if up.startswith("CAPABILITY"):
            conn.sendall(b"* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n" + tag + b" OK done\r\n")
        elif up.startswith("LIST"):
            conn.sendall(b'* LIST () "/" INBOX\r\n' + tag + b" OK done\r\n")
        elif up.startswith("SELECT"):
            with lock:
                n = len(mails)
            conn.sendall(b"* %d EXISTS\r\n* OK [UIDVALIDITY 5] v\r\n" % n +
                         tag + b" OK [READ-WRITE] selected\r\n")
        elif up.startswith("UID FETCH"):
            with lock:
                uids = imap_uid_set(cmd.split()[2], mails)
                out = b""
                if "RFC822.SIZE" in up:
                    seen["lists"] += 1
                    if seen["flap"]:    # a change announced, and nothing new
                        out += b"* %d EXISTS\r\n" % (len(mails) + seen["lists"] % 2)
                for u in uids:
                    if "RFC822.SIZE" in up:
                        out += b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (u, u, len(mails[u]))
                    else:
                        out += b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (
                            u, u, len(mails[u]), mails[u])
            conn.sendall(out + tag + b" OK done\r\n")
        elif up.startswith("UID STORE"):
            with lock:
                seen["stores"].append(cmd)
                extra = b""
                if 2 not in mails:      # it arrives now, and is told now
                    mails[2] = message("second@client.test", "support@acme.test", "Second",
                                       msgid="exists-2@client.test").encode()
                    extra = b"* 2 EXISTS\r\n"
            conn.sendall(extra + tag + b" OK done\r\n")
        elif up.startswith("IDLE"):
            with lock:
                seen["idle"] += 1
            conn.sendall(b"+ idling\r\n")
            done = f.readline()         # nothing is announced in IDLE
            if not done.upper().startswith(b"DONE"):
                return
            conn.sendall(tag + b" OK idle done\r\n")
        elif up.startswith("LOGOUT"):
            conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
            return
        else:                           # LOGIN, NOOP...
            conn.sendall(tag + b" OK fine\r\n")


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
serve(listener, serve_one)

with section("mail announced with a STORE's answer is fetched before IDLE"):
    d = Daemon("", start=False)
    with open(os.path.join(d.env.dir, "pass"), "w") as f:
        f.write("pw\n")
    d.write_config('imap = ( { name = "fake"; host = "127.0.0.1"; port = %d; tls = "none";'
                   ' user = "u"; password_file = "%s"; role = "support"; } );\n'
                   % (listener.getsockname()[1], os.path.join(d.env.dir, "pass")))
    d.start()
    t.ok(wait_until(lambda: d.env.query("SELECT count(*) FROM message")[0][0] == 2, 10),
         "both messages are stored", d.env.query("SELECT subject FROM message"))
    t.ok(wait_until(lambda: seen["idle"] >= 1, 10), "and then mailroomd waits in IDLE")
    t.eq(len(seen["stores"]), 2, "each got its after action")
    t.eq(d.stop(), 0, "mailroomd stops cleanly (exit 0)")

with section("a server that announces a change at every list, and nothing new: IDLE anyway"):
    with lock:
        seen["flap"], seen["idle"], seen["lists"] = True, 0, 0
    d.start()
    t.ok(wait_until(lambda: seen["idle"] >= 1, 10), "mailroomd waits in IDLE")
    time.sleep(0.5)
    t.ok(seen["lists"] <= 6, "after a few lists (%d), not one per announcement forever"
         % seen["lists"])
    t.eq(d.stop(), 0, "mailroomd stops cleanly (exit 0)")
listener.close()
