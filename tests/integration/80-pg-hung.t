#!/usr/bin/env python3
# PostgreSQL that stops answering (issue 20, item 10).  mailroomd's backend
# is stopped (SIGSTOP: the kernel still ACKs every byte, so only a deadline
# of the client's own sees it; a network black hole looks the same to
# mailroomd).  With store.query_timeout = 3:
#  - a message sent while the backend is stopped gets 451 within about
#    3 s, the log names the timeout and the statement, and the message is
#    not stored (COMMIT was never sent: the backend rolls back when it
#    resumes and finds the connection closed);
#  - the daemon reconnects: the next message, and the retry of the refused
#    one, get 250 and are stored once;
#  - the backend stopped while it runs COMMIT (a deferred trigger keeps
#    it there long enough): 451 too, the log says the outcome is unknown;
#    the message may then be stored -- when the backend resumes and
#    finishes the COMMIT -- and its retry is stored once (content key); the
#    reconnect logs what became of that transaction;
#  - the whole server stopped (the postmaster too): a batch of two
#    messages gets 451 at once, not once per message, and so does the
#    next message, whose reconnect has no answer; once the server goes
#    on, the next one is stored;
#  - SIGTERM while the backend is stopped: mailroomd exits within about
#    the bound.
# On the code before store.query_timeout, the first message got no answer
# at all (the client's 15 s ran out) and SIGTERM did not end mailroomd.
import os
import signal
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import PG, Env, Tap, pg_cluster  # noqa: E402
from mrdaemon import Daemon, transaction  # noqa: E402

if not PG:
    print("1..0 # SKIP a PostgreSQL backend that stops answering (PostgreSQL only)")
    sys.exit(0)

TIMEOUT = 3            # store.query_timeout, seconds
SLACK = 3              # what the answer may take past it (ASan, a busy machine)
T0 = time.monotonic()
t = Tap()
section = t.section

e = Env()
# batch_window: messages sent together share a batch (a group commit).
d = Daemon("store = { query_timeout = %d; busy_timeout = 10000; batch_window = 300; };\n"
           % TIMEOUT, env=e, debug=True)
dbname = e.db.rsplit("/", 1)[1]
stopped = []


def count(sql, *args):
    return e.query(sql, args)[0][0]


def backends():
    """The pids of mailroomd's backends (the driver's application_name)."""
    return [int(r[0]) for r in e.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = ? AND application_name = 'mailroom'",
        (dbname,))]


def stop(pids):
    for p in pids:
        os.kill(p, signal.SIGSTOP)
        stopped.append(p)


def cont():
    while stopped:
        try:
            os.kill(stopped.pop(), signal.SIGCONT)
        except ProcessLookupError:
            pass


def raw(subject):
    return ("From: eve@client.test\r\nTo: support@acme.test\r\nSubject: %s\r\n"
            "Message-ID: <%s@client.test>\r\n\r\nBody of %s.\r\n" % (subject, subject, subject))


def send(subject, timeout=15):
    """One SMTP transaction; returns ((code, text), seconds it took)."""
    with d.raw(timeout=timeout) as c:
        assert c.cmd("EHLO client.test")[0] == 250
        start = time.monotonic()
        _, _, r_data, final = transaction(c, "eve@client.test", ["support@acme.test"],
                                          raw(subject))
        took = time.monotonic() - start
        assert r_data[0] == 354, r_data
        c.cmd("QUIT")
        return final[0], took


def stored(subject):
    return count("SELECT count(*) FROM message WHERE subject = ?", subject)


try:
    with section("a stopped backend"):
        pids = backends()
        t.ok(len(pids) >= 1, "mailroomd's backend found (application_name)", pids)
        mark = d.mark()
        stop(pids)
        try:
            (code, text), took = send("hung-one")
        finally:
            cont()
        t.eq(code, 451, "451 while the backend is stopped")
        t.ok(took < TIMEOUT + SLACK, "within about store.query_timeout (%.1f s)" % took)
        line = d.wait_for("no answer", 5, mark)
        t.ok(line is not None and "%d s" % TIMEOUT in line, "the log names the timeout",
             d.log(mark)[-2000:])
        t.ok(line is not None and "COMMIT" not in line, "before COMMIT", line)
        t.eq(stored("hung-one"), 0, "the refused message is not stored")

    with section("the daemon reconnects"):
        mark = d.mark()
        (code, text), took = send("after-one")
        t.eq(code, 250, "a new message is stored: " + text)
        t.ok(d.wait_for("reconnected", 5, mark) is not None, "the log says it reconnected",
             d.log(mark)[-2000:])
        (code, text), _ = send("hung-one")
        t.eq(code, 250, "the retry of the refused one is stored")
        t.eq(stored("hung-one"), 1, "once")
        t.eq(stored("after-one"), 1, "and the other once")

    # COMMIT in flight: a deferred constraint trigger sleeps at COMMIT for
    # the message "slow"; the backend is stopped in that sleep.
    with section("stopped during COMMIT"):
        pg_cluster().psql(
            "CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF NEW.subject = 'slow' THEN PERFORM pg_sleep(1.5); END IF;"
            " RETURN NULL; END $$;"
            "CREATE CONSTRAINT TRIGGER test_slow AFTER INSERT ON message"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow()",
            db=dbname)
        mark = d.mark()
        result = {}

        def client():
            try:
                result["reply"] = send("slow")
            except Exception as exc:  # noqa: BLE001 - reported below
                result["error"] = exc

        th = threading.Thread(target=client, daemon=True)
        th.start()
        committing = []
        end = time.monotonic() + 10
        while not committing and time.monotonic() < end:
            committing = [int(r[0]) for r in e.query(
                "SELECT pid FROM pg_stat_activity WHERE datname = ?"
                " AND application_name = 'mailroom' AND state = 'active'"
                " AND query = 'COMMIT' AND wait_event = 'PgSleep'", (dbname,))]
            time.sleep(0.05)
        t.ok(committing, "the backend is in COMMIT")
        stop(committing)
        th.join(TIMEOUT + 15)
        (code, text), took = result.get("reply", ((None, repr(result.get("error"))), 99))
        t.eq(code, 451, "451 while COMMIT has no answer: " + text)
        t.ok(took < 1.5 + TIMEOUT + SLACK, "within about store.query_timeout (%.1f s)" % took)
        line = d.wait_for("no answer", 5, mark)
        t.ok(line is not None and "COMMIT" in line and "not known" in line,
             "the log says the COMMIT was in flight and its outcome is not known",
             d.log(mark)[-2000:])
        cont()
        # The backend finishes its sleep and the COMMIT, then finds the
        # connection closed.
        end = time.monotonic() + 10
        while any(p in backends() for p in committing) and time.monotonic() < end:
            time.sleep(0.1)
        n = stored("slow")
        t.ok(n in (0, 1), "stored at most once before the retry (%d)" % n)
        t.diag("the COMMIT in flight %s" % ("went through" if n else "did not"))
        mark = d.mark()
        (code, text), _ = send("slow")
        t.eq(code, 250, "the retry is answered 250: " + text)
        t.eq(stored("slow"), 1, "and the message is stored once")
        line = d.wait_for("whose COMMIT had no answer", 5, mark)
        t.ok(line is not None and ("committed" if n else "aborted") in line,
             "the reconnect logs what became of it", d.log(mark)[-2000:])

    # The whole server stopped (the postmaster too): a batch of two fails
    # at once, not once per message; a reconnect waits no longer either.
    with section("the whole server stopped"):
        pids = backends()
        mark = d.mark()
        results = {}

        def client3(subject):
            try:
                results[subject] = send(subject)
            except Exception as exc:  # noqa: BLE001 - reported below
                results[subject] = ((None, repr(exc)), 99)

        stop(pids + [pg_cluster().pid])
        try:
            ths = [threading.Thread(target=client3, args=(x,), daemon=True)
                   for x in ("batch-one", "batch-two")]
            for th in ths:
                th.start()
            for th in ths:
                th.join(TIMEOUT + 15)
            t.eq([results.get(x, ((None,), 0))[0][0] for x in ("batch-one", "batch-two")],
                 [451, 451], "both messages of the batch: 451")
            took = max(results.get(x, ((None,), 99))[1] for x in ("batch-one", "batch-two"))
            t.ok(took < TIMEOUT + SLACK, "both within about store.query_timeout (%.1f s)" % took)
            t.ok(d.wait_for("failing the batch", 5, mark) is not None,
                 "the log says the batch failed at once", d.log(mark)[-2000:])
            mark = d.mark()
            (code, text), took = send("batch-three")
            t.eq(code, 451, "the next message, whose reconnect has no answer: 451")
            t.ok(took < TIMEOUT + SLACK, "within about store.query_timeout (%.1f s)" % took)
            t.ok(d.wait_for("connecting: no answer", 5, mark) is not None,
                 "the log says so", d.log(mark)[-2000:])
        finally:
            cont()
        (code, text), _ = send("batch-four")
        t.eq(code, 250, "once the server goes on, a message is stored: " + text)
        t.eq(count("SELECT count(*) FROM message WHERE subject LIKE 'batch-%'"), 1,
             "only that one")

    with section("SIGTERM while the backend is stopped"):
        pids = backends()
        stop(pids)
        result = {}

        def client2():
            try:
                result["reply"] = send("during-stop")
            except Exception as exc:  # noqa: BLE001 - reported below
                result["error"] = exc

        th = threading.Thread(target=client2, daemon=True)
        th.start()
        time.sleep(0.5)
        start = time.monotonic()
        log = d.log()
        rc = d.stop(timeout=TIMEOUT + 10)
        took = time.monotonic() - start
        t.ok(rc is not None and took < TIMEOUT + SLACK,
             "mailroomd exits within about the bound (%.1f s, exit %r)" % (took, rc))
        th.join(5)
        code = result.get("reply", ((None, ""), 0))[0][0]
        t.ok(code in (451, 421, None), "the message in hand is not acknowledged (%r)" % code)
        cont()
        t.eq(stored("during-stop"), 0, "nor stored")
        t.diag("\n".join(x for x in d.log().splitlines()
                          if "no answer" in x or "reconnect" in x or "transaction" in x))
finally:
    cont()
    t.diag("runtime %.1f s" % (time.monotonic() - T0))
