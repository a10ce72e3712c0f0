#!/usr/bin/env python3
# The outbox stopped in the middle of a batch (issue 23, the "unsent"
# path), with real components only: mailroomd, mailroomctl and an aiosmtpd
# relay (mrrelay.py) that answers each RCPT DELAY seconds late (RCPT, not
# DATA: a mail whose connection the stop cancels is not on the relay).
#
# N acknowledgements wait in the outbox (queued by a daemon without a
# relay, so that none was tried); mailroomd restarted with the relay
# claims them in one batch and sends them one by one.  Once the relay has
# taken two, SIGTERM: the drain waits limits.drain_timeout (2 s) for the
# batch, gives up, and the outbox is stopped in the middle of it.  Then:
#   - mailroomd exits 0, having logged that the drain timed out;
#   - no row is left "sending" or under a claim;
#   - those the relay took are sent, after one attempt, and the relay has
#     each once;
#   - those never tried are queued again with no attempt counted (the
#     attempt their claim counted is taken back) and no error;
#   - at most one more: the mail in flight when the stop cancelled the
#     connection (mailroomd waiting for the relay's late answer to RCPT),
#     queued after its one attempt, with the error, and not on the relay.
#     (Cancelled after the relay stored it but before its 250 was read,
#     it would be on the relay: the 250-then-stop window, like the
#     250-then-crash one of docs/outgoing.md; allowed a second copy.)
# Restarted without the delay and without moving the clock, the never
# tried go at once (the one in flight waits for its retry, relay.retry_min
# = 600 s); the clock moved past it, that one too: every customer has
# exactly one acknowledgement, every row is sent, each after one attempt
# (two for the one in flight).
#
# Knobs: MR_OUTBOX_STOP_N (default 30).  Either engine (MR_TEST_DB).
import collections
import os
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import BUILD, ENGINE, Tap, message, wait_until  # noqa: E402
from mrdaemon import Daemon  # noqa: E402
import mrrelay  # noqa: E402

T0 = time.monotonic()
t = Tap()
if not t.ok(mrrelay.available(), "the test relay runs (python3-aiosmtpd: make deps)",
            mrrelay.unavailable_reason() if not mrrelay.available() else None):
    sys.exit(1)

ASAN = "asan" in os.path.basename(os.path.normpath(BUILD))
N = int(os.environ.get("MR_OUTBOX_STOP_N", "30"))
DELAY = 0.5          # seconds the relay waits before it answers a RCPT
DRAIN = 2            # limits.drain_timeout: well under N * DELAY
RETRY = 600          # relay.retry_min: the backoff of the mail in flight, far
                     # beyond WAIT: a mail given it is not sent while a test waits
WAIT = 60            # seconds, for anything that should take one or two
START = 60           # seconds for a daemon to say it listens (ASan, loaded machine)
FATAL = ("CRITICAL", "AddressSanitizer", "LeakSanitizer", "runtime error:")
logs = []            # the log of every daemon that ended

relay = mrrelay.Relay()


def config(with_relay=True, offset=0):
    text = ('ack = { enabled = true; };\n'
            'limits = { drain_timeout = %d; };\n'
            'testing = { clock_offset = %d; };\n' % (DRAIN, offset))
    if with_relay:
        text += ('relay = { host = "127.0.0.1"; port = %d; tls = "none"; retry_min = %d;'
                 ' retry_max = %d; max_attempts = 20;'
                 ' from = "Acme Support <support@acme.test>"; };\n' % (relay.port, RETRY, RETRY))
    return text


def stop(d, timeout=WAIT):
    rc = d.stop(timeout)
    logs.append(d.log())
    return rc


def rows():
    """{recipient: outbox list --json entry} of the customers' mails."""
    return {x["to"]: x for x in e.json("outbox", "list") if x["to"] in customers}


def status_counts():
    return dict(collections.Counter(x["status"] for x in rows().values()))


def on_relay():
    """{recipient: copies} of what the relay took."""
    return dict(collections.Counter(r for m in relay.messages() for r in m["rcpt_tos"]))


def settle():
    """Waits until the relay's count stays put for a moment (a mail whose
    data it had may still be being stored); returns it."""
    n = -1
    while n != relay.count():
        n = relay.count()
        time.sleep(0.5)
    return n


customers = ["cu%02d@client.test" % i for i in range(N)]
d = Daemon(extra=config(with_relay=False), start=False)
e = d.env
d.start(timeout=START)

# --- N acknowledgements wait, none tried ------------------------------------------------------
for c in customers:
    rc, out, err = e.deliver("support@acme.test",
                             message("Customer <%s>" % c, "support@acme.test", "Problem of %s" % c,
                                     msgid="stop-%s" % c).encode("utf-8"))
    if rc != 0:
        t.ok(False, "deliver the mail of %s" % c, err)
t.ok(wait_until(lambda: status_counts() == {"queued": N}, timeout=WAIT),
     "no relay: the %d acknowledgements wait in the outbox" % N, status_counts())
t.eq(sorted(set(x["attempts"] for x in rows().values())), [0], "none tried yet")
t.eq(stop(d), 0, "mailroomd without a relay exits 0")

# --- the relay slow, one batch claimed, SIGTERM in the middle of it ---------------------------
relay.control(mode="ok", delay=DELAY)
d.write_config(config())
d.start(timeout=START)
t.ok(relay.wait_count(2, timeout=WAIT) >= 2, "the relay takes the first two, slowly",
     status_counts())
before = e.query("SELECT status, claim, count(*) FROM outbox WHERE recipient LIKE 'cu%'"
                 " GROUP BY status, claim")
t.ok(len(before) == 1 and before[0][0] == "sending" and before[0][2] == N,
     "all %d were claimed in one batch, still sending" % N, before)
mark = d.mark()
t0 = time.monotonic()
rc = stop(d)
took = time.monotonic() - t0
t.eq(rc, 0, "SIGTERM in the middle of the batch: mailroomd exits 0 (in %.1f s)" % took)
t.ok(d.wait_for("drain timed out", timeout=0, start=mark),
     "the drain timed out with the batch in hand", d.log(mark))
settle()
got = on_relay()
after = rows()
t.eq(sorted(r for r, x in after.items() if x["status"] not in ("sent", "queued")), [],
     "no mail is left sending (or anything but sent or queued)",
     dict(collections.Counter(x["status"] for x in after.values())))
t.eq(e.query("SELECT count(*) FROM outbox WHERE claim IS NOT NULL OR claimed_until IS NOT NULL"),
     [(0,)], "no mail is left under a claim")
t.eq(sorted(r for r, n in got.items() if n > 1), [], "the relay has each mail at most once")
t.eq(sorted(set(got) - set(customers)), [], "the relay has mail to the customers alone")
sent = {r for r, x in after.items() if x["status"] == "sent"}
queued = {r: x for r, x in after.items() if x["status"] == "queued"}
never = {r for r, x in queued.items() if x["attempts"] == 0}
inflight = {r for r, x in queued.items() if x["attempts"] != 0}
t.ok(len(sent) >= 2, "%d recorded sent: at least the two taken before the SIGTERM" % len(sent))
t.eq(sorted((r, x["attempts"], x["last_error"]) for r, x in after.items() if r in sent),
     sorted((r, 1, None) for r in sent), "each sent after one attempt, no error")
t.ok(len(never) >= 2, "%d never tried: the stop came in the middle of the batch" % len(never),
     after)
t.eq(sorted((r, x["last_error"]) for r, x in queued.items() if r in never),
     sorted((r, None) for r in never),
     "the never tried are queued with no attempt counted (taken back) and no error")
t.ok(len(inflight) <= 1 and all(queued[r]["attempts"] == 1 and queued[r]["last_error"]
                                for r in inflight),
     "besides, at most one queued after its attempt, with the error: the one in flight",
     sorted((r, x["attempts"], x["last_error"]) for r, x in queued.items() if r in inflight))
window = {r for r in inflight if r in got}
t.eq(sorted(set(got) - window), sorted(sent), "what the relay took is what was recorded sent")
t.diag("at the stop (%.1f s): %d sent, %d in flight (%s), %d never tried%s"
       % (took, len(sent), len(inflight),
          "; ".join("%s: %s" % (r, queued[r]["last_error"]) for r in sorted(inflight)) or "none",
          len(never),
          "; the one in flight had reached the relay (250-then-stop)" if window else ""))

# --- restarted without the delay: nothing lost, nothing twice ---------------------------------
relay.control(mode="ok")
t0 = time.monotonic()
d.start(timeout=START)
t.ok(wait_until(lambda: all(x["status"] == "sent" for r, x in rows().items()
                            if r not in inflight), timeout=WAIT),
     "restarted, the clock where it was: the never tried are sent at once (%.1f s)"
     % (time.monotonic() - t0), status_counts())
t.eq(sorted((r, x["status"], x["attempts"]) for r, x in rows().items() if r in inflight),
     sorted((r, "queued", 1) for r in inflight),
     "the one in flight waits for its retry (%d s)" % RETRY)
if inflight:
    d.write_config(config(offset=RETRY * 2))
    t.ok("reloaded " in (d.reload(timeout=WAIT) or ""),
         "the clock moved past the retry of the one in flight", d.log())
t.ok(wait_until(lambda: status_counts() == {"sent": N}, timeout=WAIT),
     "all %d sent" % N, status_counts())
settle()
got = on_relay()
t.eq(sorted(set(customers) - set(got)), [], "every customer got the acknowledgement")
t.eq(sorted((r, n) for r, n in got.items() if n != (2 if r in window else 1)), [],
     "each exactly once%s" % (" (the one sent in the 250-then-stop window twice)"
                              if window else ""))
t.eq(sorted((r, x["attempts"]) for r, x in rows().items()),
     sorted((r, 2 if r in inflight else 1) for r in customers),
     "each after one attempt, two for the one in flight: the taken back attempts are not counted")
t.eq(stop(d), 0, "mailroomd exits 0")
relay.close()

bad = [line for log in logs for line in log.splitlines() if any(x in line for x in FATAL)]
t.eq(bad[:10], [], "no daemon logged a critical error or a sanitizer report")
t.diag("92-outbox-stop.t (%s%s) took %.1fs" % (ENGINE, ", ASan" if ASAN else "",
                                                time.monotonic() - T0))
