#!/usr/bin/env python3
# PostgreSQL: the inserts of a message that the driver holds back in its
# pipeline (mr-sql.h, step_later) still fail the message that made them,
# and only it.  CHECK constraints added to the tables refuse a delivery
# (reported by the release of the message's savepoint) and an address
# (reported by a look-up that went with it): each recipient gets a
# temporary failure that names the cause -- the constraint, not "current
# transaction is aborted" -- nothing of its work stays, and the other
# recipient of the same message, in the same transaction, is stored --
# also when it comes after the refused one, whose failure its look-up
# learns.
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
d.add_address("refused-bcc@acme.test", "bcc")
d.start()
dbname = e.db.rsplit("/", 1)[1]
pg_cluster().psql("ALTER TABLE delivery ADD CONSTRAINT test_refused"
                  " CHECK (recipient <> 'refused@acme.test');"
                  "ALTER TABLE delivery ADD CONSTRAINT test_refused_bcc"
                  " CHECK (recipient <> 'refused-bcc@acme.test');"
                  "ALTER TABLE message_address ADD CONSTRAINT test_poison"
                  " CHECK (email <> 'poison@client.test')", db=dbname)


def raw(sender, subject):
    return ("From: %s\r\nTo: support@acme.test\r\nSubject: %s\r\n"
            "Message-ID: <%s@client.test>\r\n\r\nBody.\r\n" % (sender, subject, subject)).encode()


def lmtp_send(sender, rcpts, data, daemon=None):
    """One LMTP transaction (with @daemon, else d); returns the final
    replies, one per recipient."""
    with (daemon or d).raw(lmtp=True) as c:
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


def log_with(daemon, mark, word):
    """The daemon's log since @mark once a line with @word is in it (or
    after 10 s): the log comes through a pipe that a thread reads, and may
    trail the reply on the socket."""
    daemon.wait_for(word, 10, mark)
    return daemon.log(mark)


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
    log = log_with(d, mark, "test_refused")
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
    log = log_with(d, mark, "test_poison")
    t.ok("test_poison" in log and "23514" in log, "the log names the constraint", log[-2000:])

with section("the connection goes on"):
    replies = lmtp_send("eve@client.test", ["support@acme.test"], raw("eve@client.test", "three"))
    t.eq([code for code, _ in replies], [250], "a message after them is stored")
    t.eq(count("SELECT count(*) FROM message"), 2, "two messages in all")
    t.eq(count("SELECT count(*) FROM ticket"), 2, "two tickets")

# The writer releases a message's savepoint without waiting
# (mr_store_release_later): a smart BCC stores with no look-up after its
# first, so that its refused delivery is learnt only by the next
# recipient's first look-up, which the server skipped with everything
# after the failure.  The refused one is undone alone, the next is done
# again.
with section("a failure learnt by the next recipient"):
    mark = d.mark()
    replies = lmtp_send("eve@client.test", ["refused-bcc@acme.test", "crm@acme.test"],
                        raw("eve@client.test", "four"))
    t.eq([code for code, _ in replies], [451, 250], "refused: 451, the one after it: stored")
    t.eq(count("SELECT count(*) FROM message WHERE subject = ?", "four"), 1, "the message is stored")
    t.eq(count("SELECT count(*) FROM delivery d JOIN message m ON m.id = d.message_id"
               " WHERE m.subject = ?", "four"), 1, "with one delivery")
    t.eq(count("SELECT count(*) FROM delivery WHERE recipient = ?", "refused-bcc@acme.test"), 0,
         "none for the refused one")
    t.eq(count("SELECT count(*) FROM message_address a JOIN message m ON m.id = a.message_id"
               " WHERE m.subject = ?", "four"), 2, "its addresses once")
    log = log_with(d, mark, "test_refused_bcc")
    t.ok("test_refused_bcc" in log and "23514" in log, "the log names the constraint",
         log[-2000:])
    t.ok("25P02" not in log and "skipped after" not in log,
         "and not what followed it", log[-2000:])

# The last of a group commit: its failure is learnt before COMMIT, which
# stores the others.
with section("a failure learnt at the commit"):
    mark = d.mark()
    replies = lmtp_send("eve@client.test", ["crm@acme.test", "refused-bcc@acme.test"],
                        raw("eve@client.test", "five"))
    t.eq([code for code, _ in replies], [250, 451], "the one before: stored, refused: 451")
    t.eq(count("SELECT count(*) FROM delivery d JOIN message m ON m.id = d.message_id"
               " WHERE m.subject = ?", "five"), 1, "one delivery")
    t.eq(count("SELECT count(*) FROM delivery WHERE recipient = ?", "refused-bcc@acme.test"), 0,
         "none for the refused one")
    log = log_with(d, mark, "test_refused_bcc")
    t.ok("test_refused_bcc" in log and "23514" in log, "the log names the constraint",
         log[-2000:])

d.stop()

# BEGIN and the writers' lock (docs/storage.md, the event feed) wait in the
# pipeline too, for the first look-up.  When the lock is not had in time,
# that look-up fails, and the transaction is gone as if BEGIN had failed:
# the message gets 451, and the next transaction begins afresh.
with section("the writers' lock not had at BEGIN"):
    import subprocess
    import mrpg
    WRITERS_LOCK = 0x6d61696c726f6f6d + 1   # src/store/mr-sql-pgsql.c
    d2 = Daemon("store = { busy_timeout = 300; };", debug=True)
    cluster = pg_cluster()
    holder = subprocess.Popen([os.path.join(cluster.bindir, "psql"), "-X", "-q", "-A", "-t",
                               "-v", "ON_ERROR_STOP=1", "-h", mrpg.HOST, "-p", str(cluster.port),
                               "-U", mrpg.USER, "-d", d2.env.db.rsplit("/", 1)[1]],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=mrpg._clean_env(), text=True)
    holder.stdin.write("SELECT 'locked', pg_advisory_lock(%d);\n" % WRITERS_LOCK)
    holder.stdin.flush()
    t.ok(holder.stdout.readline().startswith("locked"), "psql holds the writers' lock")
    mark = d2.mark()
    replies = lmtp_send("eve@client.test", ["crm@acme.test"], raw("eve@client.test", "six"), d2)
    t.eq([code for code, _ in replies], [451], "451 while the lock is held")
    log = log_with(d2, mark, "55P03")
    t.ok("55P03" in log, "the log says it was a lock", log[-2000:])
    holder.stdin.write("SELECT pg_advisory_unlock(%d);\n" % WRITERS_LOCK)
    holder.stdin.close()
    holder.wait(timeout=30)
    replies = lmtp_send("eve@client.test", ["crm@acme.test"], raw("eve@client.test", "six"), d2)
    t.eq([code for code, _ in replies], [250], "stored once it is free")
    t.eq(d2.env.query("SELECT count(*) FROM message")[0][0], 1, "once")
    t.eq(d2.stop(), 0, "the daemon exits cleanly")
