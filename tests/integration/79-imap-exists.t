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
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, message, wait_until  # noqa: E402
from mrdaemon import Daemon  # noqa: E402
from fakeimap import FakeImap  # noqa: E402

t = Tap()
section = t.section
srv = FakeImap({1: message("first@client.test", "support@acme.test", "First",
                           msgid="exists-1@client.test").encode()},
               uidvalidity=5, caps=("IDLE", "UIDPLUS"))


def arrives_now(srv, uids):
    """A message arrives while the first is flagged, and is told with the
    STORE's answer; in IDLE the server then says nothing."""
    if 2 in srv.msgs:
        return b""
    srv.msgs[2] = message("second@client.test", "support@acme.test", "Second",
                          msgid="exists-2@client.test").encode()
    srv.flags[2] = set()
    srv.uidnext = 3
    return b"* 2 EXISTS\r\n"


def flap(srv):
    """A change announced at every list, and nothing new."""
    return b"* %d EXISTS\r\n" % (len(srv.msgs) + len(srv.listings) % 2)


srv.set(on_store=arrives_now)

with section("mail announced with a STORE's answer is fetched before IDLE"):
    d = Daemon("", start=False)
    with open(os.path.join(d.env.dir, "pass"), "w") as f:
        f.write("pw\n")
    d.write_config('imap = ( { name = "fake"; host = "127.0.0.1"; port = %d; tls = "none";'
                   ' user = "u"; password_file = "%s"; role = "support"; } );\n'
                   % (srv.port, os.path.join(d.env.dir, "pass")))
    d.start()
    t.ok(wait_until(lambda: d.env.query("SELECT count(*) FROM message")[0][0] == 2, 10),
         "both messages are stored", d.env.query("SELECT subject FROM message"))
    t.ok(wait_until(lambda: srv.idles >= 1, 10), "and then mailroomd waits in IDLE")
    t.eq(len(srv.stores), 2, "each got its after action")
    t.eq(d.stop(), 0, "mailroomd stops cleanly (exit 0)")

with section("a server that announces a change at every list, and nothing new: IDLE anyway"):
    with srv.lock:
        srv.set(on_listing=flap)
        srv.idles = 0
        del srv.listings[:]
    d.start()
    t.ok(wait_until(lambda: srv.idles >= 1, 10), "mailroomd waits in IDLE")
    time.sleep(0.5)
    t.ok(len(srv.listings) <= 6, "after a few lists (%d), not one per announcement forever"
         % len(srv.listings))
    t.eq(d.stop(), 0, "mailroomd stops cleanly (exit 0)")
srv.close()
