#!/usr/bin/env python3
# IMAP servers that misbehave (tests/integration/fakeimap.py, a fake server
# of the test's own on loopback): a UID told twice, a body that does not
# arrive, a partial fetch that never ends, a flood of small answers, bodies
# nobody asked for, a server that fails every session after the login, a
# message bigger than announced, a server that drips its greeting, a
# reload while a connection hangs, and a SELECT never answered.  Whatever the server does, mailroomd
# stores each message once, loses none, does not delete what it did not
# store, stays small and answers SMTP, retries with backoff, and stops.
# Runs on both engines (MR_TEST_DB).
import os
import re
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import BUILD, Tap, message, wait_until  # noqa: E402
from mrdaemon import Daemon, transaction  # noqa: E402
from fakeimap import FakeImap  # noqa: E402

t = Tap()
# MR_83_ONLY=2,7 runs those sections only (while working on one)
ONLY = [int(x) for x in os.environ.get("MR_83_ONLY", "").split(",") if x]


def want(n):
    return not ONLY or n in ONLY


ASAN = "asan" in os.path.basename(os.path.normpath(BUILD))
WARNING = re.compile(r"(\S*)WARNING \*\*")


def mail(tag, i, body="Hello.\n"):
    return message("customer%d@client.test" % i, "support@acme.test", "%s %d" % (tag, i),
                   body=body, msgid="%s-%d@client.test" % (tag.lower(), i)).encode()


def entry(srv, name="fake", after="seen", reconnect_max=1, extra=""):
    return ('{ name = "%s"; host = "127.0.0.1"; port = %d; tls = "none"; user = "u";'
            ' password_file = "%%(pass)s"; role = "support"; after = "%s";'
            ' reconnect_max = %d; %s }' % (name, srv.port, after, reconnect_max, extra))


def imap_config(d, entries, extra=""):
    pw = os.path.join(d.env.dir, "pass")
    if not os.path.exists(pw):
        with open(pw, "w") as f:
            f.write("pw\n")
    return extra + "imap = (\n  %s\n);\n" % ",\n  ".join(e % {"pass": pw} for e in entries)


# GLib 2.74's slice allocator hides a leaked GBytes from LeakSanitizer (its
# magazines keep the pointers reachable): every allocation through malloc.
ENVIRON = {"G_SLICE": "always-malloc"}


def daemon(entries, extra=""):
    d = Daemon("", start=False, environ=ENVIRON)
    d.write_config(imap_config(d, entries, extra))
    d.start()
    return d


def stored(d):
    return d.env.query("SELECT count(*) FROM message")[0][0]


def subjects(d):
    return sorted(r[0] for r in d.env.query("SELECT subject FROM message"))


def status(d, name="fake"):
    for st in d.env.json("mailbox", "status"):
        if st["name"] == name:
            return st
    return None


def last_uid(d, name="fake"):
    rows = d.env.query("SELECT last_uid FROM mailbox_state WHERE name = ?", (name,))
    return rows[0][0] if rows else None


def quarantined(d):
    return d.env.json("message", "list", "--quarantined")


def q_of(d, uid):
    return [q for q in quarantined(d) if q["uid"] == uid]


def glib_trouble(d, start=0):
    """CRITICAL lines, and the warnings of GLib and the libraries (an
    assertion that failed), not mailroom's own ("mailroom-imap-WARNING **:
    mailbox ...")."""
    out = []
    for line in d.log(start).splitlines():
        m = WARNING.search(line)
        if "CRITICAL" in line or "assertion" in line or (
                m and not m.group(1).startswith("mailroom")):
            out.append(line)
    return out


def stops_cleanly(d, name="mailroomd stops cleanly (exit 0)"):
    """SIGTERM; the exit code must be 0 (under ASan: no memory error, no
    leak; their report is the diagnostic)."""
    rc = d.stop()
    tail = d.log().splitlines()
    report = [line for line in tail if "Sanitizer" in line or re.match(r"\s+#\d+ ", line)]
    t.ok(rc == 0, name, "exit %r\n%s" % (rc, "\n".join(report[:40] or tail[-20:])))
    return rc


def hwm_mb(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024.0


# --- 1 ---------------------------------------------------------------------
if want(1):
    with t.section("a UID told twice: stored once, no assertion, a clean exit"):
        srv = FakeImap({u: mail("Twice", u) for u in (1, 2, 3)}, uidvalidity=11)
        # UID 2 twice in the listing, twice in the body answer, and a FLAGS
        # FETCH naming it before and after its body
        srv.set(dup_listing={2}, dup_body={2}, flags_in_body={2})
        d = daemon([entry(srv)])
        t.ok(wait_until(lambda: last_uid(d) == 3 and srv.idles >= 1, 15),
             "the three UIDs are handled and mailroomd waits in IDLE", status(d))
        t.eq(stored(d), 3, "each message stored exactly once")
        t.eq(srv.body_fetches_of(2), 1, "UID 2's body asked for once")
        stops_cleanly(d, "mailroomd stops cleanly (exit 0; under ASan: no use after free,"
                      " no leak)")
        t.eq(glib_trouble(d), [], "no CRITICAL, no GLib warning or assertion in the log")
        srv.close()


# --- 2 ---------------------------------------------------------------------
def body_missing(mode, what):
    """UID 2 of 1..3 does not arrive (@mode), after = "delete"."""
    srv = FakeImap({u: mail("Missing%s" % mode, u) for u in (1, 2, 3)}, uidvalidity=12)
    srv.set(**{mode: {2}})
    d = daemon([entry(srv, after="delete")])
    seen = {"passed": [], "quarantined_at_logins": None, "stop": False}

    def sample():   # last_uid first, the quarantine after: it only grows
        while True:
            stop = seen["stop"]
            try:
                lu = last_uid(d)
                q = d.env.query("SELECT count(*) FROM quarantine WHERE uid = 2")[0][0]
            except Exception as e:   # noqa: BLE001 - the daemon is stopping
                seen["error"] = repr(e)
                return
            if q and seen["quarantined_at_logins"] is None:
                with srv.lock:
                    seen["quarantined_at_logins"] = srv.logins
            if lu is not None and lu >= 2 and not q:
                seen["passed"].append(lu)
            if stop:    # a last look after the end
                return
            time.sleep(0.15)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if mode == "expunge_on_fetch":
        t.ok(wait_until(lambda: last_uid(d) == 3 and stored(d) == 2, 15),
             "%s: UIDs 1 and 3 stored, last_uid 3" % what, status(d))
        t.eq(quarantined(d), [], "%s: nothing quarantined (it is gone)" % what)
        t.ok(2 not in srv.deleted, "%s: nothing asked to delete UID 2" % what, srv.stores)
    else:
        def done():
            with srv.lock:
                if 2 in srv.deleted or 2 in srv.expunged:
                    return "deleted"   # failed already: no use waiting
            return q_of(d, 2) and stored(d) == 2 and last_uid(d) == 3
        wait_until(done, 20)
        went_on = wait_until(lambda: last_uid(d) == 3, 5)
        seen["stop"] = True
        sampler.join(5)
        with srv.lock:
            deleted = 2 in srv.deleted or 2 in srv.expunged
            logins = srv.logins
        t.ok(not deleted, "%s: UID 2 is never flagged \\Deleted nor expunged" % what,
             srv.stores)
        t.ok(not seen["passed"] and "error" not in seen,
             "%s: last_uid never reaches 2 before it is quarantined" % what, seen)
        t.eq(sorted(subjects(d)), ["Missing%s 1" % mode, "Missing%s 3" % mode],
             "%s: the neighbours are stored" % what)
        q = q_of(d, 2)
        t.ok(len(q) == 1 and "body" in q[0]["reason"],
             "%s: UID 2 is in the quarantine, the reason mentions the body" % what,
             quarantined(d))
        at = seen["quarantined_at_logins"]
        t.ok(at is not None and at <= 3, "%s: after at most 3 sessions (%s)" % (what, at),
             "logins now: %d" % logins)
        t.ok(went_on, "%s: then last_uid 3" % what, status(d))
        with srv.lock:
            t.ok(2 in srv.msgs and 2 not in srv.deleted,
                 "%s: UID 2 is still on the server, untouched" % what, srv.stores)
    seen["stop"] = True
    stops_cleanly(d, "%s: mailroomd stops cleanly (exit 0)" % what)
    srv.close()


if want(2):
    with t.section("a body answered BODY[] NIL: not deleted, quarantined, the neighbours stored"):
        body_missing("body_nil", "BODY[] NIL")
if want(2):
    with t.section("a body left out of the OK answer: the same"):
        body_missing("body_omit", "left out")
if want(2):
    with t.section("a body left out because it was expunged meanwhile: passed, no quarantine"):
        body_missing("expunge_on_fetch", "expunged meanwhile")


# --- 3 ---------------------------------------------------------------------
if want(3):
    with t.section("a partial fetch that never ends: a few fetches, at most the limit kept"):
        big = mail("Endless", 1, body="y" * (1024 * 1024))
        srv = FakeImap({1: big, 2: mail("Endless", 2)}, uidvalidity=13)
        # every partial answered with a full part; the truth after 4 of them
        # (a bound for this test: a client that never stops would fill the disk)
        srv.set(partial="full", partial_max=4)
        d = daemon([entry(srv, after="delete")], extra="limits = { max_message_size = 1024; };\n")
        t.ok(wait_until(lambda: subjects(d) == ["Endless 2"] and q_of(d, 1), 20),
             "the next message is stored, the big one quarantined",
             (subjects(d), quarantined(d)))
        with srv.lock:
            partials = [p for p in srv.partials if p[0] == 1]
        t.ok(len(partials) <= 3, "%d partial fetches of UID 1 (at most 3)" % len(partials),
             partials[:10])
        rows = d.env.query("SELECT length(raw), size FROM quarantine WHERE uid = 1")
        t.ok(rows and rows[0][0] <= 1024, "the quarantined copy is at most 1024 bytes", rows)
        with srv.lock:
            t.ok(1 not in srv.deleted and 1 in srv.msgs,
                 "the truncated message is left alone on the server", srv.stores)
            t.ok(2 in srv.expunged, "the next one got its after action (deleted)", srv.stores)
        stops_cleanly(d, "mailroomd stops cleanly (exit 0)")
        srv.close()

    with t.section("a big one the server never hands over: kept without bytes, the rest goes on"):
        big = mail("Never", 1, body="y" * 4096)
        srv = FakeImap({1: big, 2: mail("Never", 2)}, uidvalidity=15)
        srv.set(bye_in_literal={1})     # every fetch of UID 1, whole or in parts
        d = daemon([entry(srv, after="delete")], extra="limits = { max_message_size = 1024; };\n")
        t.ok(wait_until(lambda: subjects(d) == ["Never 2"] and q_of(d, 1), 30),
             "the next message is stored, the big one quarantined",
             (subjects(d), quarantined(d), status(d)))
        rows = d.env.query("SELECT length(raw), size FROM quarantine WHERE uid = 1")
        t.ok(rows and rows[0][0] == 0 and rows[0][1] == len(big) and
             "fetching it failed" in q_of(d, 1)[0]["reason"],
             "without bytes, its size and why", (rows, quarantined(d)))
        with srv.lock:
            partials = [p for p in srv.partials if p[0] == 1]
            t.ok(len(partials) == 3, "%d tries in parts (3)" % len(partials), partials)
            t.ok(1 not in srv.deleted and 1 in srv.msgs, "it is left alone on the server",
                 srv.stores)
        stops_cleanly(d, "mailroomd stops cleanly (exit 0)")
        srv.close()


# --- 4 ---------------------------------------------------------------------
if want(4):
    with t.section("a listing flooded with small answers: memory stays small, SMTP answers"):
        FLOOD = 60 * 1024 * 1024
        srv = FakeImap({1: mail("Flood", 1)}, uidvalidity=14)
        srv.set(flood_listing=FLOOD)
        d = Daemon("", start=False, environ=ENVIRON)
        d.start()
        base = hwm_mb(d)
        d.write_config(imap_config(d, [entry(srv)]))
        d.reload()
        t.ok(srv.wait(lambda: srv.flood_sent >= 1024 * 1024, 10), "the flood is on its way")
        t0 = time.monotonic()
        try:
            with d.raw(timeout=10) as c:
                c.cmd("EHLO client.test")
                replies = transaction(c, "someone@client.test", ["support@acme.test"],
                                      mail("DuringFlood", 1))
                final = replies[3] or [replies[2]]
        except Exception as e:   # noqa: BLE001
            final = [(None, repr(e))]
        took = time.monotonic() - t0
        t.ok(final and final[0][0] == 250 and took < 5,
             "an SMTP message during the flood is answered 250 (%.1f s)" % took, final)

        def in_backoff():
            st = status(d)
            return st and st["state"] == "backoff" and st["last_error"]
        t.ok(wait_until(in_backoff, 20), "the mailbox goes to backoff with a last_error", status(d))
        grown = hwm_mb(d) - base
        if ASAN:
            t.ok(True, "# skip the RSS bound under ASan (its shadow memory); grew %d MB" % grown)
        else:
            t.ok(grown < 40, "mailroomd's peak RSS grew by %d MB (less than 40) for %d MB of"
                 " small answers" % (grown, FLOOD >> 20))
        srv.set(flood_listing=0)
        stops_cleanly(d, "mailroomd stops cleanly (exit 0)")
        srv.close()


# --- 5 ---------------------------------------------------------------------
if want(5):
    with t.section("bodies nobody asked for: nothing extra stored, nothing leaked"):
        srv = FakeImap({u: mail("Unasked", u) for u in (1, 2)}, uidvalidity=15)
        d = daemon([entry(srv)])
        t.ok(wait_until(lambda: last_uid(d) == 2 and srv.idles >= 1, 15), "UIDs 1 and 2 stored",
             status(d))
        # now every body answer also carries UID 1 (stored already) and UID 99
        # (not in the folder, not asked for)
        srv.set(extra_bodies={1: mail("Unasked", 1), 99: mail("Unasked", 99)})
        srv.add(mail("Unasked", 3))
        srv.add(mail("Unasked", 4))
        t.ok(wait_until(lambda: last_uid(d) == 4, 15), "UIDs 3 and 4 stored", status(d))
        t.eq(subjects(d), ["Unasked %d" % i for i in (1, 2, 3, 4)], "and nothing else")
        stops_cleanly(d, "mailroomd stops cleanly (exit 0; under ASan: no leak)")
        t.eq(glib_trouble(d), [], "no CRITICAL, no GLib warning in the log")
        srv.close()


# --- 6 ---------------------------------------------------------------------
if want(6):
    with t.section("a server that fails every session after the login: backoff, few log lines"):
        srv = FakeImap({1: mail("Never", 1)}, uidvalidity=16)
        srv.set(select_no=True)
        d = Daemon("", start=False, environ=ENVIRON)
        d.write_config(imap_config(d, [entry(srv, name="selfails", reconnect_max=60)]))
        d.start()
        start = d.mark()
        t0 = time.monotonic()
        time.sleep(12)   # the subject is what happens in 12 s
        with srv.lock:
            logins = srv.logins
        lines = [line for line in d.log(start).splitlines() if "selfails" in line]
        t.ok(1 <= logins <= 5, "%d logins in 12 s (1 s, 2 s, 4 s, 8 s: at most 5)" % logins)
        t.ok(len(lines) <= 6, "%d log lines about the mailbox in 12 s (at most 6)" % len(lines),
             "\n".join(lines))
        st = status(d, "selfails")
        t.ok(st and st["state"] == "backoff" and st["last_error"], "in backoff with a last_error",
             st)
        stops_cleanly(d, "mailroomd stops cleanly (exit 0)")
        srv.close()


# --- 7 ---------------------------------------------------------------------
def blocker(kb, what):
    """UID 1 announced at 1000 bytes, its body @kb KB; UIDs 2 to 5 normal."""
    mails = {u: mail("Block%d" % kb, u) for u in range(2, 6)}
    mails[1] = mail("Block%d" % kb, 1, body=("z" * 71 + "\n") * (kb * 1024 // 72))
    srv = FakeImap(mails, uidvalidity=17)
    srv.set(sizes={1: 1000})
    d = daemon([entry(srv)])
    names = ["Block%d %d" % (kb, u) for u in range(1, 6)]

    def settled():
        if srv.body_fetches_of(1) > 4:
            return "too many"   # failed already: no use waiting
        s = subjects(d)
        return all(n in s for n in names[1:]) and (names[0] in s or q_of(d, 1))
    wait_until(settled, 25)
    s = subjects(d)
    t.ok(all(n in s for n in names[1:]), "%s: UIDs 2 to 5 are stored" % what, s)
    t.ok(names[0] in s or q_of(d, 1), "%s: UID 1 is stored or quarantined" % what,
         (status(d), quarantined(d)))
    t.ok(srv.body_fetches_of(1) <= 4, "%s: body fetches naming UID 1: %d (at most 4)"
         % (what, srv.body_fetches_of(1)))
    stops_cleanly(d, "%s: mailroomd stops cleanly (exit 0)" % what)
    srv.close()


if want(7):
    with t.section("a message bigger than announced does not block the mailbox"):
        blocker(200, "200 KB announced as 1000 bytes")
    # the same where the batch's slack (5 x 64 KB) does not cover the lie
    with t.section("a message far bigger than announced does not block the mailbox"):
        blocker(1024, "1 MB announced as 1000 bytes")


# --- 8 ---------------------------------------------------------------------
if want(8):
    with t.section("a server that drips its greeting: timeout, backoff, a prompt stop"):
        srv = FakeImap({1: mail("Drip", 1)}, uidvalidity=18)
        srv.set(drip_greeting=5.0)
        d = Daemon("", start=False, environ=ENVIRON)
        d.start()
        d.write_config(imap_config(d, [entry(srv, extra="timeout = 3;")]))
        line = d.reload()
        t.ok(line and "reloaded" in line, "a mailbox timeout is accepted", line)
        if not (line and "reloaded" in line):   # still see what a stop does in a drip
            d.write_config(imap_config(d, [entry(srv)]))
            d.reload()

        def timed_out():
            st = status(d)
            return st and st["state"] == "backoff" and "time" in (st["last_error"] or "")
        t.ok(wait_until(timed_out, 10), "within 10 s the mailbox is in backoff, the error says"
             " it timed out", status(d))
        # a drip in progress: a greeted connection still open
        t.ok(srv.wait(lambda: any(s["greeted"] and not s["closed"] for s in srv.sessions), 10),
             "a greeting is dripping")
        time.sleep(1)   # one byte in
        t0 = time.monotonic()
        rc = d.stop(timeout=8)
        took = time.monotonic() - t0
        t.ok(took <= 5, "SIGTERM during the drip: mailroomd exits in %.1f s (at most 5)" % took)
        t.eq(rc, 0, "with exit 0")
        srv.close()


# --- 9 ---------------------------------------------------------------------
if want(9):
    with t.section("a reload while a connection hangs: the state is the new thread's"):
        srv = FakeImap({u: mail("Reload", u) for u in (1, 2, 3)}, uidvalidity=19)
        srv.hold_greetings(1)
        d = daemon([entry(srv, extra="poll_interval = 60;")])
        t.ok(srv.wait(lambda: srv.held() == 1, 10), "the first connection waits for its greeting")
        d.write_config(imap_config(d, [entry(srv, extra="poll_interval = 30;")]))
        line = d.reload()
        t.ok(line and "reloaded" in line, "the changed mailbox is reloaded", line)
        t.ok(wait_until(lambda: stored(d) == 3 and last_uid(d) == 3, 15),
             "the new thread stores the three messages", status(d))
        srv.release()
        old = srv.sessions[0]
        # the old connection goes away (or, wrongly, goes on to IDLE)
        srv.wait(lambda: old["closed"] or any(c.startswith("IDLE") for c in old["commands"]), 10)
        time.sleep(0.5)     # what the old thread would save, it saves now
        rows = d.env.query("SELECT uidvalidity, last_uid FROM mailbox_state WHERE name = 'fake'")
        t.eq(rows, [(19, 3)], "mailbox_state: UIDVALIDITY 19, last UID 3 (the new thread's)")
        stops_cleanly(d, "mailroomd stops cleanly (exit 0)")
        before, n0 = len(srv.body_fetches), len(srv.sessions)
        d.start()
        t.ok(srv.wait(lambda: any("IDLE" in s["commands"] for s in srv.sessions[n0:]), 15),
             "after a restart mailroomd lists the folder and waits in IDLE", status(d))
        with srv.lock:
            again = srv.body_fetches[before:]
            counts = {u: sum(1 for f in srv.body_fetches if u in f[0]) for u in (1, 2, 3)}
        t.eq(again, [], "after the restart no message is fetched again")
        t.diag("body fetches per UID in all: %r" % counts)
        t.eq(stored(d), 3, "three messages stored")
        stops_cleanly(d, "mailroomd stops cleanly (exit 0)")
        srv.close()


# --- 10 --------------------------------------------------------------------
if want(10):
    with t.section("a server that never answers SELECT: a prompt stop"):
        # seen with Dovecot killed and started again (75-imap): the SELECT
        # after the reconnect hung, and a stop waited for the read's timeout
        srv = FakeImap({1: mail("Select", 1)}, uidvalidity=20)
        srv.set(hang_select=True)
        d = daemon([entry(srv)])
        t.ok(srv.hung.wait(10), "mailroomd logged in and sent SELECT", status(d))
        t0 = time.monotonic()
        rc = d.stop(timeout=8)
        took = time.monotonic() - t0
        t.ok(took <= 5, "SIGTERM while SELECT waits: mailroomd exits in %.1f s (at most 5)" % took)
        t.eq(rc, 0, "with exit 0")
        t.eq(stored(d), 0, "nothing stored")
        srv.close()
