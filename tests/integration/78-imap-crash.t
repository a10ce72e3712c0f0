#!/usr/bin/env python3
# A message that makes mailroomd die must not kill every run after it.
# mailroomd marks the batch in flight (durably) before it fetches it; a run
# that finds the mark above the last UID handled knows the one before it
# died there, stores those UIDs one by one, and quarantines, unparsed, a
# message that was alone in flight when two runs died.
#
# The death here is a SIGKILL while mailroomd waits for the body of UID 2
# from a fake IMAP server of the test's own on loopback (it never answers a
# body fetch of UID 2, until run 4).  A real crash in the parser dies at the
# same place in the sequence: after the mark, before the COMMIT.  A message
# alone is fetched in parts.
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, message, wait_until  # noqa: E402
from mrdaemon import Daemon  # noqa: E402
from fakeimap import FakeImap  # noqa: E402

t = Tap()
section = t.section
KILLER = 2
MAILS = {uid: message("customer%d@client.test" % uid, "support@acme.test", "Issue %d" % uid,
                      msgid="crash-%d@client.test" % uid).encode()
         for uid in (1, 2, 3)}
# it never answers a body fetch of UID 2 (srv.hung), until run 4
srv = FakeImap(MAILS, uidvalidity=9, caps=("UIDPLUS",))
srv.set(hang_body={KILLER})
log = {"hung": srv.hung}


def fetches():
    """Each body fetch: (UIDs, in parts or not)."""
    with srv.lock:
        return [(uids, part is not None) for uids, part in srv.body_fetches]


def stores():
    with srv.lock:
        return list(srv.stores)


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


d = Daemon("", start=False)
with open(os.path.join(d.env.dir, "pass"), "w") as f:
    f.write("pw\n")
d.write_config('imap = ( { name = "fake"; host = "127.0.0.1"; port = %d; tls = "none";'
               ' user = "u"; password_file = "%s"; role = "support"; poll_interval = 1;'
               ' reconnect_max = 1; } );\n'
               % (srv.port, os.path.join(d.env.dir, "pass")))

with section("run 1 dies with UIDs 1 to 3 in flight"):
    d.start()
    st = hang_then_kill(d, "run 1")
    t.eq(fetches()[-1], ((1, 2, 3), False), "one batch of three")
    t.eq(st, (0, 3 + 1600, 0), "the mark was durable before the fetch: the batch, and the"
         " UIDs new mail will get, in flight")

with section("run 2 goes one by one: UID 1 is stored, UID 2 kills it again"):
    d.start()
    t.ok(d.wait_for(r"the last run stopped while storing UIDs 1 to 1603", 10),
         "a log line says what the last run left")
    st = hang_then_kill(d, "run 2")
    t.eq(fetches()[-2:], [((1,), True), ((2,), True)], "UID 1 alone, then UID 2 alone")
    t.eq(st, (1, 2, 1), "UID 1 handled; UID 2 marked alone in flight, the first run to try")
    t.eq(d.env.query("SELECT count(*) FROM message")[0][0], 1, "UID 1 is stored")

with section("run 3: UID 2 alone kills it a second time"):
    d.start()
    st = hang_then_kill(d, "run 3")
    t.eq(fetches()[-1], ((2,), True), "UID 2 alone again")
    t.eq(st, (1, 2, 2), "the second run to try it")

with section("run 4 quarantines UID 2 unparsed and goes on"):
    srv.set(hang_body=frozenset())
    n_fetches = len(fetches())
    d.start()
    t.ok(wait_until(lambda: d.env.query("SELECT count(*) FROM message")[0][0] == 2),
         "UID 3 is stored")
    q = d.env.json("message", "list", "--quarantined")
    t.ok(len(q) == 1 and q[0]["uid"] == KILLER and q[0]["mailbox"] == "fake" and
         "stopped 2 times" in q[0]["reason"] and q[0]["size"] == len(MAILS[KILLER]),
         "UID 2 is in the quarantine, with the reason", q)
    t.ok(any(f == ((2,), True) for f in fetches()), "its bytes were fetched in parts")
    t.ok(((2,) in [s[0] for s in stores()]) and ((3,) in [s[0] for s in stores()]),
         "UID 2 got the after action like the others, and UID 3 too", stores())
    t.eq(fetches()[-1], ((3,), False), "then UID 3 in a batch of its own")
    t.ok(wait_until(lambda: state(d) == (3, 3 + 1600, 0)), "last UID 3, a mark ahead", state(d))
    t.eq([f for f in fetches()[n_fetches:] if 2 in f[0]], [((2,), True)],
         "UID 2 was not tried again: one fetch in parts, for the quarantine")
    rc, out, err = d.env.ctl("message", "retry", str(q[0]["id"]))
    t.ok(rc == 0, "message retry stores it (its bytes were fine)", err)
    t.eq(d.env.query("SELECT count(*) FROM message")[0][0], 3, "three messages stored")
    t.eq(d.env.json("message", "list", "--quarantined"), [], "the quarantine is empty")
    t.eq(d.stop(), 0, "mailroomd stops cleanly (exit 0)")
srv.close()
