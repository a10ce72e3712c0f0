#!/usr/bin/env python3
# The outbox and the scheduler when things break (issue 23, Tests), with
# real components only: mailroomd, mailroomctl and an aiosmtpd relay
# (mrrelay.py) that stores what it takes, counted there.
#
# 1. SIGKILL of mailroomd while the outbox holds N (500) acknowledgements:
#    a. all queued after a 451 each, the relay then fixed: after the
#       restart (the clock moved past the retry) every customer has
#       exactly one -- the relay never said 250, so there is nothing to
#       send twice;
#    b. killed mid-send (the relay has taken some of them): after the
#       restart and 600 s more on the clock (the lease of the killed
#       daemon's batch ran out) every customer has one, and the only
#       copies are of mails in the batch the killed daemon had claimed
#       (the documented 250-then-crash window: at most 100), each with
#       the Message-ID of the first copy.
# 2. PostgreSQL only: two daemons (EHLO names mx1, mx2: the relay records
#    which one sent a mail) on one database with M (1,000) queued mails;
#    mx2 SIGKILLed when the relay has about half: every mail sent, copies
#    only of mx2's last claimed batch (<= 100, same Message-ID, first sent
#    by mx2); then a round with both alive: nothing twice, and both sent.
# 3. An auto-responder that answers every mail mailroom sends: to the
#    mail's envelope sender (its VERP address), to support@ with
#    Auto-Submitted, and from noreply@ without any marker: the exchange
#    stops at once (one mail on the relay, no new job, ticket or outbox
#    entry), the auto-replies are stored, those to support@ on the ticket.
# 4. The relay with STARTTLS (verified against tls_ca_file) and AUTH: the
#    acknowledgement arrives; a wrong password: queued with the 535 in
#    last_error, nothing lost; the password file fixed (read at each
#    login, no new config), the clock moved: sent, once.
# 5. A ticket made (mailroomctl deliver) while mailroomd is dead: its job
#    waits; mailroomd started: it runs once, the acknowledgement arrives
#    once.
#
# Knobs: MR_OUTBOX_CRASH_N (part 1, default 500), MR_OUTBOX_TWO_N (part 2,
# default 1000).  Either engine (MR_TEST_DB); part 2 is skipped on SQLite.
import contextlib
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import BUILD, ENGINE, PG, Env, Tap, message, wait_until  # noqa: E402
from mrdaemon import TLS_ENVIRON, Daemon  # noqa: E402
import mrrelay  # noqa: E402

T0 = time.monotonic()
t = Tap()
section = t.section
if not t.ok(mrrelay.available(), "the test relay runs (python3-aiosmtpd: make deps)",
            mrrelay.unavailable_reason() if not mrrelay.available() else None):
    sys.exit(1)

ASAN = "asan" in os.path.basename(os.path.normpath(BUILD))
N = int(os.environ.get("MR_OUTBOX_CRASH_N", "500"))
M = int(os.environ.get("MR_OUTBOX_TWO_N", "1000"))
BATCH = 100          # MAILS_PER_CLAIM in src/act/mr-act-outbox.c: the window
LEASE = 300          # MR_ACT_LEASE_S
KILL_AT = min(BATCH + 50, N // 3)  # 1b: SIGKILL once the relay has more than this
WAIT = 60            # seconds, for anything that should take one or two
START = 60           # seconds for a daemon to say it listens (ASan, loaded machine)
FATAL = ("CRITICAL", "AddressSanitizer", "LeakSanitizer", "runtime error:")
logs = []            # the log of every daemon that ended


def acks(env, *args):
    """job list --json without the workflows' timers (94-workflows tests them)."""
    return [j for j in env.json("job", "list", *args) if j["kind"] != "workflow"]


@contextlib.contextmanager
def part(name):
    t0 = time.monotonic()
    with section(name):
        yield
    t.diag("%s: %.1f s" % (name.split(":")[0], time.monotonic() - t0))


def relay_config(port, offset, extra=""):
    return ('relay = { host = "127.0.0.1"; port = %d; tls = "none"; retry_min = 60;'
            ' retry_max = 600; max_attempts = 20; from = "Acme Support <support@acme.test>";'
            ' %s };\n'
            'ack = { enabled = true; };\n'
            'testing = { clock_offset = %d; };\n' % (port, extra, offset))


def kill9(d):
    """SIGKILL, reaped; the log kept."""
    d.signal(signal.SIGKILL)
    d.proc.wait(30)
    d.kill()  # waits for the reader, forgets it
    logs.append(d.log())


def stop(d):
    rc = d.stop(30)
    logs.append(d.log())
    return rc


def restart(d, config):
    d.write_config(config)
    d.start(timeout=START)


class RelayView:
    """What a relay took, read incrementally: name (arrival order), rcpt,
    helo, mail_from, mid (Message-ID without brackets)."""

    def __init__(self, relay):
        self.top = os.path.join(relay.dir, "messages")
        self.cache = {}

    def all(self):
        try:
            names = sorted(n for n in os.listdir(self.top) if not n.startswith("."))
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            if n not in self.cache:
                with open(os.path.join(self.top, n, "envelope.json")) as f:
                    env = json.load(f)
                with open(os.path.join(self.top, n, "message.eml"), "rb") as f:
                    head = f.read().split(b"\r\n\r\n", 1)[0]
                m = re.search(rb"(?im)^message-id:\s*<([^>\r\n]*)>", head)
                self.cache[n] = {"name": n, "rcpt": env["rcpt_tos"], "helo": env.get("helo"),
                                 "mail_from": env["mail_from"],
                                 "mid": m.group(1).decode() if m else None,
                                 "subject": (re.search(rb"(?im)^subject:\s*(.*)$", head)
                                             or [b"", b""])[1].decode().strip()}
            out.append(self.cache[n])
        return out

    def to(self, prefix):
        return [m for m in self.all() if m["rcpt"] and m["rcpt"][0].startswith(prefix)]


def customers(prefix, n):
    return ["%s%04d@client.test" % (prefix, i) for i in range(n)]


def inject(daemons, senders, tag, threads=4):
    """Each of @senders writes one new mail to support@ through SMTP (to
    the daemons in turn), retried on a 4xx as an MTA would.  Returns the
    errors."""
    errors = []
    chunks = [senders[i::threads] for i in range(threads)]

    def work(k, chunk):
        d = daemons[k % len(daemons)]
        s = None
        for addr in chunk:
            raw = message(addr, "support@acme.test", "%s problem of %s" % (tag, addr),
                          msgid="%s-%s" % (tag, addr)).encode("utf-8")
            for attempt in range(20):
                try:
                    if s is None:
                        s = smtplib.SMTP("127.0.0.1", d.smtp_port, local_hostname="client.test",
                                         timeout=60)
                    s.sendmail(addr, ["support@acme.test"], raw)
                    break
                except smtplib.SMTPResponseException as e:
                    if e.smtp_code // 100 != 4 or attempt == 19:
                        errors.append("%s: %s" % (addr, e))
                        break
                    time.sleep(0.1)
                except (OSError, smtplib.SMTPException) as e:
                    s = None
                    if attempt == 19:
                        errors.append("%s: %r" % (addr, e))
                    time.sleep(0.1)
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass

    ths = [threading.Thread(target=work, args=(k, c)) for k, c in enumerate(chunks)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(300)
    return errors


def outbox_rows(e, prefix):
    """{recipient: (id, status, attempts, claim, Message-ID, last_error)}"""
    rows = e.query("SELECT o.recipient, o.id, o.status, o.attempts, o.claim, m.message_id,"
                   " o.last_error FROM outbox o JOIN message m ON m.id = o.message_id"
                   " WHERE o.recipient LIKE ?", (prefix + "%",))
    return {r[0]: tuple(r[1:6]) + (r[6],) for r in rows}


def bare(mid):
    return (mid or "").strip().strip("<>")


def queued_once(e, prefix, n):
    """True when the @n mails to @prefix* are queued after one attempt."""
    return e.query("SELECT count(*) FROM outbox WHERE recipient LIKE ? AND status = 'queued'"
                   " AND attempts >= 1", (prefix + "%",))[0][0] == n


def status_counts(e, prefix):
    return dict(e.query("SELECT status, count(*) FROM outbox WHERE recipient LIKE ?"
                        " GROUP BY status", (prefix + "%",)))


def copies(view, prefix):
    """{recipient: [relay entries]}"""
    out = {}
    for m in view.to(prefix):
        out.setdefault(m["rcpt"][0], []).append(m)
    return out


def check_all_once(name, view, prefix, want, rows, allowed_twice=()):
    """Every recipient of @want got its mail, with the Message-ID queued;
    copies only for recipients in @allowed_twice, each copy alike.
    Returns the recipients that got more than one."""
    got = copies(view, prefix)
    t.eq(sorted(set(want) - set(got)), [], "%s: every one of the %d customers got the mail"
         % (name, len(want)))
    t.eq(sorted(set(got) - set(want)), [], "%s: no mail to anyone else" % name)
    wrong = [(r, [c["mid"] for c in cs], rows[r][4]) for r, cs in got.items()
             if r in rows and any(c["mid"] != bare(rows[r][4]) for c in cs)]
    t.eq(wrong[:5], [], "%s: every copy carries the Message-ID made when it was queued" % name)
    twice = sorted(r for r, cs in got.items() if len(cs) > 1)
    t.eq(sorted(set(twice) - set(allowed_twice))[:10], [],
         "%s: nothing sent twice outside the documented window (%d copies)" % (name, len(twice)))
    return twice


# =====================================================================================
# 1. SIGKILL while the outbox holds N mails
# =====================================================================================
relay = mrrelay.Relay()
view = RelayView(relay)
e1 = Env()
d1 = Daemon(extra=relay_config(relay.port, 0), env=e1)

with part("1a: N queued after a 451, SIGKILL, restart"):
    relay.control(mode="tempfail")
    ca = customers("qa", N)
    t0 = time.monotonic()
    errs = inject([d1], ca, "qa")
    t.eq(errs[:5], [], "1a: %d customers' mails accepted (%.1f s)" % (N, time.monotonic() - t0))
    t.ok(wait_until(lambda: queued_once(e1, "qa", N), timeout=WAIT),
         "1a: the %d acknowledgements are queued, each after one attempt (451)" % N,
         status_counts(e1, "qa"))
    t.eq(relay.count(), 0, "1a: the relay took nothing")
    r = next(iter(outbox_rows(e1, "qa").values()))
    t.ok("451" in (r[5] or ""), "1a: last_error keeps the 451", r)
    kill9(d1)
    relay.control(mode="ok")
    t0 = time.monotonic()
    restart(d1, relay_config(relay.port, 600))  # past the retry (60 s)
    t.ok(relay.wait_count(N, timeout=WAIT) >= N,
         "1a: after the restart the relay gets them (%.1f s)" % (time.monotonic() - t0),
         status_counts(e1, "qa"))
    t.ok(wait_until(lambda: status_counts(e1, "qa") == {"sent": N}, timeout=WAIT),
         "1a: outbox: all %d sent" % N, status_counts(e1, "qa"))
    rows = outbox_rows(e1, "qa")
    twice = check_all_once("1a", view, "qa", ca, rows)
    t.eq(len(twice), 0, "1a: no 250 came before the kill: nothing at all twice")
    t.eq(sorted(set(r[2] for r in rows.values())), [2], "1a: each after two attempts")

with part("1b: N queued, SIGKILL mid-send"):
    relay.control(mode="tempfail")
    cb = customers("qb", N)
    errs = inject([d1], cb, "qb")
    t.eq(errs[:5], [], "1b: %d customers' mails accepted" % N)
    t.ok(wait_until(lambda: queued_once(e1, "qb", N), timeout=WAIT),
         "1b: the %d acknowledgements are queued after a 451 each" % N, status_counts(e1, "qb"))
    relay.control(mode="ok")
    base = len(view.to("qb"))
    others = relay.count()
    d1.write_config(relay_config(relay.port, 720))  # past the retry: the sending starts
    d1.reload()
    deadline = time.monotonic() + WAIT
    # past the first batch: some recorded sent, some claimed, some queued
    while relay.count() - others <= KILL_AT and time.monotonic() < deadline:
        time.sleep(0.005)
    kill9(d1)
    # the relay may still be finishing the mail whose data it had: settle
    n = -1
    while n != relay.count():
        n = relay.count()
        time.sleep(0.3)
    before = {m["name"] for m in view.to("qb")}
    rows = outbox_rows(e1, "qb")
    inflight = {r for r, x in rows.items() if x[1] == "sending"}
    sent_before = {r for r, x in rows.items() if x[1] == "sent"}
    t.ok(base == 0 and KILL_AT < len(before) < N,
         "1b: killed mid-send, the relay had %d of %d" % (len(before), N))
    t.ok(len(inflight) <= BATCH, "1b: the killed daemon held %d claimed mails (a batch: <= %d)"
         % (len(inflight), BATCH))
    t.diag("1b: at the kill: %d on the relay, %d recorded sent, %d claimed (sending), %d queued"
           % (len(before), len(sent_before), len(inflight),
              sum(1 for x in rows.values() if x[1] == "queued")))
    t.ok(sent_before <= {m["rcpt"][0] for m in view.to("qb")},
         "1b: what the outbox recorded as sent, the relay has")
    t0 = time.monotonic()
    restart(d1, relay_config(relay.port, 720 + 2 * LEASE))  # past the killed batch's lease
    t.ok(wait_until(lambda: status_counts(e1, "qb") == {"sent": N}, timeout=WAIT),
         "1b: after the restart and %d s on the clock: all %d sent (%.1f s)"
         % (2 * LEASE, N, time.monotonic() - t0), status_counts(e1, "qb"))
    rows = outbox_rows(e1, "qb")
    twice = check_all_once("1b", view, "qb", cb, rows, allowed_twice=inflight)
    t.ok(len(twice) <= BATCH, "1b: %d sent twice: at most one batch (%d)" % (len(twice), BATCH))
    first_before = [r for r in twice
                    if min(c["name"] for c in copies(view, "qb")[r]) not in before]
    t.eq(first_before, [], "1b: each mail sent twice had reached the relay before the kill")
    t.ok(all(len(copies(view, "qb")[r]) == 2 for r in twice), "1b: twice at most, never more")
    t.eq([r for r in sent_before if r in twice], [],
         "1b: a mail recorded as sent before the kill is never sent again")
    t.diag("1b: %d of the %d claimed at the kill were sent again (the 250-then-crash window)"
           % (len(twice), len(inflight)))
t.eq(stop(d1), 0, "1: mailroomd exits 0")
relay.close()

# =====================================================================================
# 2. two daemons on one PostgreSQL database, one SIGKILLed halfway
# =====================================================================================
if not PG:
    t.ok(True, "2: two daemons on one database with %d queued mails # SKIP PostgreSQL only" % M)
else:
    relay = mrrelay.Relay()
    view = RelayView(relay)
    ea = Env()
    eb = Env()
    eb.db = ea.db  # one database, two configurations (their own hostname)
    a = Daemon(extra=relay_config(relay.port, 0), env=ea, hostname="mx1.acme.test")
    b = Daemon(extra=relay_config(relay.port, 0), env=eb, hostname="mx2.acme.test")

    with part("2a: two daemons, %d queued, one SIGKILLed halfway" % M):
        relay.control(mode="tempfail")
        c2 = customers("ta", M)
        t0 = time.monotonic()
        errs = inject([a, b], c2, "ta", threads=8)
        t.eq(errs[:5], [], "2a: %d customers' mails accepted by both daemons (%.1f s)"
             % (M, time.monotonic() - t0))
        t.ok(wait_until(lambda: queued_once(ea, "ta", M), timeout=WAIT),
             "2a: %d acknowledgements queued after a 451 each" % M, status_counts(ea, "ta"))
        relay.control(mode="ok")
        for d in (a, b):
            d.write_config(relay_config(relay.port, 600))
        t0 = time.monotonic()
        for d in (a, b):
            d.reload()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if relay.count() >= M // 2 and any(m["helo"] == "mx2.acme.test"
                                               for m in view.to("ta")):
                break
            time.sleep(0.005)
        at_kill = relay.count()
        kill9(b)
        n = -1
        while n != relay.count():
            n = relay.count()
            time.sleep(0.3)
        before = view.to("ta")
        rows = outbox_rows(ea, "ta")
        b_claimed = {r for r, x in rows.items()
                     if x[1] == "sending" and (x[3] or "").startswith("mx2.acme.test:")}
        by = {h: sum(1 for m in before if m["helo"] == h) for h in ("mx1.acme.test", "mx2.acme.test")}
        t.ok(by["mx2.acme.test"] > 0 and at_kill < M,
             "2a: mx2 killed halfway: the relay had %d at the kill (then mx1 %d, mx2 %d)"
             % (at_kill, by["mx1.acme.test"], by["mx2.acme.test"]))
        t.ok(len(b_claimed) <= BATCH, "2a: mx2 held %d claimed mails (<= %d)"
             % (len(b_claimed), BATCH))
        t.eq(sorted(set(m["helo"] for m in before) - set(by)), [],
             "2a: the relay saw only the two daemons' EHLO names")
        # mx1 sends the rest; mx2's claim waits for its lease
        t.ok(wait_until(lambda: status_counts(ea, "ta") ==
                        dict([("sent", M - len(b_claimed))] +
                             ([("sending", len(b_claimed))] if b_claimed else [])),
                        timeout=WAIT),
             "2a: mx1 sends everything but mx2's claimed batch (%.1f s)" % (time.monotonic() - t0),
             status_counts(ea, "ta"))
        a.write_config(relay_config(relay.port, 600 + 2 * LEASE))
        a.reload()
        t.ok(wait_until(lambda: status_counts(ea, "ta") == {"sent": M}, timeout=WAIT),
             "2a: the lease ran out: mx1 sends mx2's batch too, all %d sent" % M,
             status_counts(ea, "ta"))
        rows = outbox_rows(ea, "ta")
        twice = check_all_once("2a", view, "ta", c2, rows, allowed_twice=b_claimed)
        t.ok(len(twice) <= BATCH, "2a: %d sent twice (<= %d)" % (len(twice), BATCH))
        cp = copies(view, "ta")
        bad = [r for r in twice if [c["helo"] for c in cp[r]] != ["mx2.acme.test", "mx1.acme.test"]]
        t.eq(bad[:5], [], "2a: each mail sent twice: first by mx2 (killed), then by mx1")
        t.diag("2a: %d of mx2's %d claimed mails were sent twice" % (len(twice), len(b_claimed)))

    with part("2b: two daemons alive, %d queued" % M):
        relay.control(mode="tempfail")
        restart(b, relay_config(relay.port, 600 + 2 * LEASE))
        c3 = customers("tb", M)
        errs = inject([a, b], c3, "tb", threads=8)
        t.eq(errs[:5], [], "2b: %d more mails accepted" % M)
        t.ok(wait_until(lambda: queued_once(ea, "tb", M), timeout=WAIT),
             "2b: %d acknowledgements queued after a 451 each" % M, status_counts(ea, "tb"))
        relay.control(mode="ok")
        for d in (a, b):
            d.write_config(relay_config(relay.port, 2000))
        t0 = time.monotonic()
        for d in (a, b):
            d.reload()
        t.ok(wait_until(lambda: status_counts(ea, "tb") == {"sent": M}, timeout=WAIT),
             "2b: all %d sent (%.1f s)" % (M, time.monotonic() - t0), status_counts(ea, "tb"))
        rows = outbox_rows(ea, "tb")
        twice = check_all_once("2b", view, "tb", c3, rows)
        t.eq(len(twice), 0, "2b: both alive: none twice at all")
        got = view.to("tb")
        by = {h: sum(1 for m in got if m["helo"] == h) for h in ("mx1.acme.test", "mx2.acme.test")}
        t.ok(all(by.values()), "2b: both daemons sent some: mx1 %d, mx2 %d"
             % (by["mx1.acme.test"], by["mx2.acme.test"]))
    t.eq((stop(a), stop(b)), (0, 0), "2: both daemons exit 0")
    relay.close()

# =====================================================================================
# 3. an auto-responder that answers every mail
# =====================================================================================
relay = mrrelay.Relay()
view = RelayView(relay)
d3 = Daemon(extra=relay_config(relay.port, 0))
e3 = d3.env


def deliver(e, to, raw, what):
    rc, out, err = e.deliver(to, raw)
    t.eq(rc, 0, what, err)
    return out


with part("3: an auto-responder"):
    cust = "carl@client.test"
    deliver(e3, "support@acme.test",
            message("Carl Customer <%s>" % cust, "support@acme.test", "Printer jam",
                    msgid="carl-1@client.test").encode(), "3: the customer writes to support")
    t.ok(relay.wait_count(1, timeout=WAIT), "3: the acknowledgement reaches the relay", d3.log())
    status0 = e3.json("ticket", "show", "TKT-1")["status"]
    answered = set()
    auto_ids = []
    rounds = 0
    while rounds < 5:
        todo = [m for m in view.all() if m["name"] not in answered]
        if not todo:
            break
        rounds += 1
        for m in todo:
            answered.add(m["name"])
            who = m["rcpt"][0]
            k = len(auto_ids)
            # to the envelope sender (the VERP address), as RFC 3834 says
            i1 = "auto-%d-verp@client.test" % k
            deliver(e3, m["mail_from"],
                    message(who, m["mail_from"], "Auto: %s" % m["subject"], msgid=i1,
                            headers={"Auto-Submitted": "auto-replied",
                                     "In-Reply-To": "<%s>" % m["mid"]}).encode(),
                    "3: an auto-reply to the VERP address %s is accepted" % m["mail_from"])
            # to support@, marked, threaded
            i2 = "auto-%d-support@client.test" % k
            deliver(e3, "support@acme.test",
                    message(who, "support@acme.test", "Auto: %s" % m["subject"], msgid=i2,
                            headers={"Auto-Submitted": "auto-replied",
                                     "In-Reply-To": "<%s>" % m["mid"],
                                     "References": "<%s>" % m["mid"]}).encode(),
                    "3: an auto-reply with Auto-Submitted to support@ is accepted")
            # to support@ from noreply@, no marker at all
            i3 = "auto-%d-noreply@client.test" % k
            deliver(e3, "support@acme.test",
                    message("noreply@client.test", "support@acme.test", "Re: %s" % m["subject"],
                            msgid=i3, headers={"In-Reply-To": "<%s>" % m["mid"]}).encode(),
                    "3: an unmarked auto-reply from noreply@ to support@ is accepted")
            auto_ids += [i1, i2, i3]
        # anything mailroom would answer with is a job or an outbox entry
        # made in the delivery's own transaction: wait for none but the first
        wait_until(lambda: relay.count() > 1 or
                   (not acks(e3, "--due") and
                    not [x for x in e3.json("outbox", "list") if x["status"] in ("queued", "sending")]),
                   timeout=WAIT)
        time.sleep(1)  # one more second for a mail in flight to show up (not the test clock)
    t.eq(rounds, 1, "3: the exchange stops at once: one round of auto-replies")
    t.eq([m["rcpt"] for m in view.all()], [[cust]],
         "3: the relay holds exactly one mail, the first acknowledgement, to the customer")
    t.eq(len(acks(e3)), 1, "3: no job made for the auto-replies")
    t.eq(len(e3.json("outbox", "list")), 1, "3: no outbox entry made for the auto-replies")
    t.eq([x["id"] for x in e3.json("ticket", "list")], ["TKT-1"], "3: no new ticket")
    msgs = {bare(x["message_id"]): x for x in e3.json("message", "list")}
    t.eq([i for i in auto_ids if i not in msgs], [], "3: the three auto-replies are stored")
    t.ok(msgs.get("auto-0-support@client.test", {}).get("auto") == "auto-reply",
         "3: the marked one is stored as an auto-reply", msgs.get("auto-0-support@client.test"))
    on_ticket = {bare(x["message_id"]) for x in e3.json("ticket", "show", "TKT-1")["messages"]}
    t.eq(sorted(i for i in ("auto-0-support@client.test", "auto-0-noreply@client.test")
                if i not in on_ticket), [],
         "3: the threaded auto-replies to support@ are linked to TKT-1")
    ob = e3.json("outbox", "list")
    t.eq([(x["status"], x["bounce_status"]) for x in ob], [("sent", None)],
         "3: the auto-reply to the VERP address is no bounce: the mail stays sent")
    t.eq(e3.json("contact", "show", cust).get("undeliverable"), None,
         "3: and the customer is not marked undeliverable")
    t.diag("3: the auto-reply to the VERP address is %s TKT-1 (documented: it changes nothing)"
           % ("on" if "auto-0-verp@client.test" in on_ticket else "not on"))
    t.eq(e3.json("ticket", "show", "TKT-1")["status"], status0,
         "3: the ticket's status does not change (%s)" % status0)
t.eq(stop(d3), 0, "3: mailroomd exits 0")
relay.close()

# =====================================================================================
# 4. the relay with STARTTLS and AUTH
# =====================================================================================
tmp = tempfile.mkdtemp(prefix="mr91-")
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
pw = os.path.join(tmp, "relay.pass")


def write_password(text):
    fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(pw, 0o600)


write_password("secret\n")
relay = mrrelay.Relay(tls=(cert, key), auth=("mailroom", "secret"), require_starttls=True)
view = RelayView(relay)
tls_keys = ('tls = "starttls"; tls_ca_file = "%s"; user = "mailroom"; password_file = "%s";'
            % (cert, pw))


def cfg4(offset):
    return relay_config(relay.port, offset).replace('tls = "none"; ', "").replace(
        "max_attempts = 20;", "max_attempts = 20; " + tls_keys)


d4 = Daemon(extra=cfg4(0), environ=TLS_ENVIRON)
e4 = d4.env

with part("4: STARTTLS and AUTH"):
    deliver(e4, "support@acme.test",
            message("Tess <tess@client.test>", "support@acme.test", "Over TLS",
                    msgid="tess-1@client.test").encode(), "4: a customer writes")
    t.ok(relay.wait_count(1, timeout=WAIT),
         "4: the acknowledgement arrives over STARTTLS with AUTH", d4.log())
    write_password("wrong\n")
    # mailroomd keeps its logged-in connection for the next mail: the
    # relay restarts (same port), so that the next mail logs in again
    relay.stop()
    relay.start()
    deliver(e4, "support@acme.test",
            message("Walt <walt@client.test>", "support@acme.test", "Wrong password",
                    msgid="walt-1@client.test").encode(), "4: another customer writes")
    q = wait_until(lambda: [x for x in e4.json("outbox", "list")
                            if x["to"] == "walt@client.test" and x["attempts"] >= 1
                            and x["status"] == "queued"], timeout=WAIT)
    t.ok(q and "535" in (q[0]["last_error"] or ""),
         "4: a wrong password: queued, with the 535 in last_error", e4.json("outbox", "list"))
    t.eq(relay.count(), 1, "4: nothing more reached the relay")
    write_password("secret\n")  # no reload: the file is read at each login
    d4.write_config(cfg4(120))  # the clock only: past the retry
    d4.reload()
    t.ok(wait_until(lambda: [x for x in e4.json("outbox", "list")
                             if x["to"] == "walt@client.test" and x["status"] == "sent"],
                    timeout=WAIT),
         "4: the password fixed, the clock moved: sent", e4.json("outbox", "list"))
    t.eq(sorted(m["rcpt"][0] for m in view.all()), ["tess@client.test", "walt@client.test"],
         "4: the relay has each mail once")
    t.eq([x["attempts"] for x in e4.json("outbox", "list") if x["to"] == "walt@client.test"], [2],
         "4: after two attempts")
t.eq(stop(d4), 0, "4: mailroomd exits 0")
relay.close()

# =====================================================================================
# 5. a job whose daemon died
# =====================================================================================
relay = mrrelay.Relay()
view = RelayView(relay)
d5 = Daemon(extra=relay_config(relay.port, 0))
e5 = d5.env

with part("5: a job made while the daemon is dead"):
    kill9(d5)
    deliver(e5, "support@acme.test",
            message("Dora <dora@client.test>", "support@acme.test", "While you were out",
                    msgid="dora-1@client.test").encode(), "5: deliver with mailroomd dead")
    due = acks(e5, "--due")
    t.eq([(j["kind"], j["status"], j["attempts"]) for j in due], [("ticket-ack", "due", 0)],
         "5: the acknowledgement's job waits, due")
    t.eq(e5.json("outbox", "list"), [], "5: nothing in the outbox yet")
    d5.start(timeout=START)
    t.ok(relay.wait_count(1, timeout=WAIT), "5: mailroomd started: the acknowledgement arrives",
         d5.log())
    t.ok(wait_until(lambda: [j for j in acks(e5) if j["status"] == "done"],
                    timeout=WAIT), "5: the job is done")
    t.eq([(j["status"], j["attempts"]) for j in acks(e5)], [("done", 1)],
         "5: it ran once")
    t.ok(wait_until(lambda: [x for x in e5.json("outbox", "list") if x["status"] == "sent"],
                    timeout=WAIT), "5: outbox: sent")
    t.eq([m["rcpt"] for m in view.all()], [["dora@client.test"]],
         "5: the acknowledgement arrives once")
t.eq(stop(d5), 0, "5: mailroomd exits 0")
relay.close()

bad = [line for log in logs for line in log.splitlines() if any(x in line for x in FATAL)]
t.eq(bad[:10], [], "no daemon logged a critical error or a sanitizer report")
t.diag("91-outbox-crash.t (%s%s) took %.1fs" % (ENGINE, ", ASan" if ASAN else "",
                                                 time.monotonic() - T0))
