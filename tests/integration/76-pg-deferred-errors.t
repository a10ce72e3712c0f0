#!/usr/bin/env python3
# PostgreSQL: the inserts of a message that the driver holds back in its
# pipeline (mr-sql.h, step_later) still fail the message that made them,
# and only it.  CHECK constraints added to the tables refuse a delivery
# (reported by the release of the message's savepoint) and an address
# (reported by a look-up that went with it): each recipient gets a
# temporary failure that names the cause -- the constraint, not "current
# transaction is aborted" -- nothing of its work stays, and the other
# recipient of the same message, in the same transaction, is stored.
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import PG, Env, Tap, pg_cluster  # noqa: E402
from mrdaemon import Daemon, send_data  # noqa: E402

if not PG:
    print("1..0 # SKIP the pipeline of the PostgreSQL driver (PostgreSQL only)")
    sys.exit(0)

t = Tap()
section = t.section

e = Env()
d = Daemon(env=e, start=False, debug=True)
d.add_address("refused@acme.test", "support")
d.start()
dbname = e.db.rsplit("/", 1)[1]
pg_cluster().psql("ALTER TABLE delivery ADD CONSTRAINT test_refused"
                  " CHECK (recipient <> 'refused@acme.test');"
                  "ALTER TABLE message_address ADD CONSTRAINT test_poison"
                  " CHECK (email <> 'poison@client.test')", db=dbname)


def raw(sender, subject):
    return ("From: %s\r\nTo: support@acme.test\r\nSubject: %s\r\n"
            "Message-ID: <%s@client.test>\r\n\r\nBody.\r\n" % (sender, subject, subject)).encode()


def lmtp_send(sender, rcpts, data):
    """One LMTP transaction; returns the final replies, one per recipient."""
    with d.raw(lmtp=True) as c:
        code, text = c.cmd("LHLO client.test")
        assert code == 250, text
        assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
        for r in rcpts:
            code, text = c.cmd("RCPT TO:<%s>" % r)
            assert code == 250, text
        assert c.cmd("DATA")[0] == 354
        send_data(c, data)
        replies = c.replies(len(rcpts))
        c.cmd("QUIT")
        return replies


def count(sql, *args):
    return e.query(sql, args)[0][0]


with section("a delivery refused in the pipeline"):
    mark = d.mark()
    replies = lmtp_send("eve@client.test", ["support@acme.test", "refused@acme.test"],
                        raw("eve@client.test", "one"))
    t.eq([code for code, _ in replies], [250, 451], "support stored, refused: 451")
    t.eq(count("SELECT count(*) FROM delivery WHERE recipient = ?", "support@acme.test"), 1,
         "the other recipient's delivery is committed")
    t.eq(count("SELECT count(*) FROM delivery WHERE recipient = ?", "refused@acme.test"), 0,
         "no delivery for the refused one")
    log = d.log(mark)
    t.ok("test_refused" in log and "23514" in log, "the log names the constraint", log[-2000:])
    t.ok("25P02" not in log and "skipped after an error" not in log,
         "and not what followed it", log[-2000:])

with section("an address refused, reported by a look-up"):
    mark = d.mark()
    replies = lmtp_send("poison@client.test", ["support@acme.test"],
                        raw("poison@client.test", "two"))
    t.eq([code for code, _ in replies], [451], "451")
    t.eq(count("SELECT count(*) FROM message WHERE subject = ?", "two"), 0,
         "the message is not stored")
    t.eq(count("SELECT count(*) FROM contact WHERE email = ?", "poison@client.test"), 0,
         "nor its contact")
    log = d.log(mark)
    t.ok("test_poison" in log and "23514" in log, "the log names the constraint", log[-2000:])

with section("the connection goes on"):
    replies = lmtp_send("eve@client.test", ["support@acme.test"], raw("eve@client.test", "three"))
    t.eq([code for code, _ in replies], [250], "a message after them is stored")
    t.eq(count("SELECT count(*) FROM message"), 2, "two messages in all")
    t.eq(count("SELECT count(*) FROM ticket"), 2, "two tickets")

d.stop()
