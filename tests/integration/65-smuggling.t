#!/usr/bin/env python3
# SMTP smuggling (the 2023 disclosures; Postfix CVE-2023-51764): inside DATA,
# a sender writes an end of data that this server might honour where an
# upstream MTA does not ("\n.\r\n", "\r.\r\n", ...), followed by a whole second
# transaction from a sender of its choice.  The data ends only at CR LF "."
# CR LF with a real CR LF before the dot, so the "second message" is just
# text of the first, stored once, byte for byte.  smtp.bare_lf = "reject"
# refuses any bare LF (554 5.6.11, nothing stored).  Every variant, on SMTP
# and LMTP, in both modes.
import os
import subprocess
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import BUILD, Tap
from mrdaemon import Daemon

T0 = time.monotonic()
t = Tap()
section = t.section

# The fake end of data the sender tries, and whether it holds a bare LF.
VARIANTS = [
    (b"\n.\r\n", True),
    (b"\r.\r\n", False),
    (b"\n.\n", True),
    (b"\r\n.\n", True),
    (b"\r\n.\r", False),
    (b"\r\n\x00.\r\n", False),
]


def payload(tag, fake_end):
    """The first message with a smuggled second transaction inside, up to and
    including the real end of data."""
    return (b"From: alice@client.test\r\nTo: crm@acme.test\r\nSubject: carrier " + tag + b"\r\n"
            b"Message-ID: <carrier-" + tag + b"@client.test>\r\n\r\na" + fake_end +
            b"MAIL FROM:<evil@customer.test>\r\nRCPT TO:<sales@acme.test>\r\nDATA\r\n"
            b"From: evil@customer.test\r\nTo: sales@acme.test\r\nSubject: smuggled " + tag + b"\r\n"
            b"\r\nwire the money\r\n.\r\n")


def unstuffed(data):
    """What RFC 5321 4.5.2 makes of @data (ending in CR LF . CR LF): the data
    before the end, less the first dot of each line that starts after a real
    CR LF (or at the start).  The model the stored bytes must match."""
    body = data[:-3]  # the real ".\r\n"
    out, crlf, i = bytearray(), True, 0
    while i < len(body):
        j = body.find(b"\n", i)
        line = body[i:] if j < 0 else body[i:j + 1]
        ends_crlf = line.endswith(b"\r\n")
        if crlf and line.startswith(b"."):
            line = line[1:]
        out += line
        crlf = ends_crlf
        i = len(body) if j < 0 else j + 1
    return bytes(out)


def run(d, lmtp, mode):
    door = "LMTP" if lmtp else "SMTP"
    rcpts = ["crm@acme.test", "support@acme.test"] if lmtp else ["crm@acme.test"]
    for n, (fake_end, bare_lf) in enumerate(VARIANTS):
        tag = ("%s-%s-%d" % (mode, door, n)).encode()
        name = "%s %s %r" % (door, mode, fake_end)
        before = d.message_count()
        c = d.raw(lmtp=lmtp)
        c.cmd("LHLO client.test" if lmtp else "EHLO client.test")
        c.cmd("MAIL FROM:<alice@client.test>")
        for r in rcpts:
            c.cmd("RCPT TO:<%s>" % r)
        t.eq(c.cmd("DATA")[0], 354, name + ": 354")
        data = payload(tag, fake_end)
        c.send(data)
        replies = [c.try_reply() for _ in rcpts]
        # In step: the next reply answers NOOP, not a smuggled command.
        nxt = c.cmd("NOOP")
        c.close()
        refused = mode == "reject" and bare_lf
        if refused:
            t.ok(all(r[1].startswith("554 5.6.11") for r in replies),
                 name + ": 554 5.6.11 for each recipient", replies)
        else:
            t.ok(all(r[0] == 250 for r in replies), name + ": one message, 250 for each recipient",
                 replies)
        t.ok(nxt[0] == 250 and nxt[1].startswith("250 2.0.0"), name + ": the next reply is NOOP's", nxt)
        msgs = [m for m in d.messages() if tag.decode() in (m["subject"] or "")]
        t.ok(not any(m["subject"].startswith("smuggled") for m in msgs),
             name + ": never a second message", msgs)
        t.eq(d.message_count() - before, 0 if refused else 1,
             name + (": nothing stored" if refused else ": stored once"))
        if not refused and len(msgs) == 1:
            t.eq(d.raw_message(msgs[0]["id"]), unstuffed(data),
                 name + ": stored as sent (a dot is unstuffed only after a real CR LF)")


with section("normalize (the default)"):
    d = Daemon()
    run(d, False, "normalize")
    run(d, True, "normalize")
    c = d.raw()
    c.send(b"EHLO client.test\n")
    code, text = c.reply()
    t.eq(code, 250, "normalize: a command line ending in a bare LF is accepted")
    t.eq(c.cmd("NOOP")[0], 250, "and the session goes on")
    c.close()
    t.eq(d.stop(), 0, "exit 0")

with section("reject"):
    d = Daemon(smtp='bare_lf = "reject";')
    run(d, False, "reject")
    run(d, True, "reject")
    for lmtp in (False, True):
        door = "LMTP" if lmtp else "SMTP"
        c = d.raw(lmtp=lmtp)
        c.send(b"LHLO client.test\n" if lmtp else b"EHLO client.test\n")
        r = c.try_reply()
        t.ok(r[1].startswith("554 5.6.11"), "reject, %s: a command with a bare LF gets 554 5.6.11" % door, r)
        t.ok(c.closed(), "reject, %s: and the connection is closed" % door)
    # A line longer than the line buffer whose CR and LF arrive in two
    # reads: the CR LF is one line end, not a CR and then a bare LF.
    c = d.raw()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<alice@client.test>")
    c.cmd("RCPT TO:<crm@acme.test>")
    c.cmd("DATA")
    c.send(b"From: alice@client.test\r\nSubject: split crlf\r\n\r\n" + b"x" * 5000 + b"\r")
    time.sleep(0.2)  # best effort: the LF in a read of its own
    c.send(b"\n.\r\n")
    r = c.try_reply()
    t.ok(r[0] == 250, "reject: a long line's CR LF split across reads is no bare LF; the data ends", r)
    c.close()
    # The plain CR LF dialogue is unaffected, dots and all.
    c = d.raw()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<alice@client.test>")
    c.cmd("RCPT TO:<crm@acme.test>")
    c.cmd("DATA")
    c.send(b"From: alice@client.test\r\nSubject: dots\r\n\r\n..leading dot\r\n.\r\n")
    r = c.reply()
    t.ok(r[0] == 250, "reject: a clean CR LF message is stored", r)
    m = [x for x in d.messages() if x["subject"] == "dots"]
    t.ok(len(m) == 1 and d.raw_message(m[0]["id"]).endswith(b"\r\n.leading dot\r\n"),
         "reject: with its dot unstuffed")
    c.close()
    t.eq(d.stop(), 0, "exit 0")

with section("bad config"):
    d = Daemon(start=False)
    d.smtp_keys = 'bare_lf = "sometimes";'
    d.write_config(d.extra)
    p = subprocess.run([os.path.join(BUILD, "mailroomd"), "-c", d.env.conf, "--check"],
                       capture_output=True, text=True, timeout=30)
    t.ok(p.returncode != 0 and "smtp.bare_lf" in p.stderr and "normalize" in p.stderr,
         "smtp.bare_lf = \"sometimes\": refused with file:line", p.stderr)

t.diag("65-smuggling.t took %.1fs" % (time.monotonic() - T0))
