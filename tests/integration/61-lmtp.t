#!/usr/bin/env python3
# The LMTP door of the real mailroomd (RFC 2033): LHLO, one reply per
# accepted recipient after DATA, each sent after COMMIT; recipients refused
# at RCPT; limits, temporary failures, duplicates, pipelining, SIGHUP and
# SIGTERM.  Clients: smtplib.LMTP (plus getreply() for the extra
# per-recipient replies, which smtplib does not read), swaks and raw sockets.
import os
import random
import signal
import subprocess
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, message
from mrdaemon import Daemon, WriteLock, keywords, msg, send_data, stored_id, transaction

T0 = time.monotonic()
t = Tap()
MAX_SIZE = 100000


section = t.section


def lhlo(c):
    code, text = c.cmd("LHLO client.test")
    assert code == 250, text
    return text


d = Daemon('limits = { max_message_size = %d; max_recipients = 3; };' % MAX_SIZE)

# --- greeting, LHLO --------------------------------------------------------------
with section("greeting"):
    c = d.raw(lmtp=True)
    t.ok(c.greeting[0] == 220 and "LMTP" in c.greeting[1], "LMTP greeting: 220 ... LMTP", c.greeting)
    code, text = c.cmd("MAIL FROM:<eve@client.test>")
    t.ok(text.startswith("503 5.5.1"), "MAIL before LHLO: 503 5.5.1", text)
    code, text = c.cmd("HELO client.test")
    t.ok(500 <= code < 600, "HELO is refused on LMTP", text)
    code, text = c.cmd("EHLO client.test")
    t.ok(500 <= code < 600, "EHLO is refused on LMTP", text)
    code, text = c.cmd("LHLO client.test")
    kw = keywords(text)
    t.eq(code, 250, "LHLO: 250")
    for k in ("PIPELINING", "8BITMIME", "SIZE %d" % MAX_SIZE, "ENHANCEDSTATUSCODES"):
        t.ok(k in kw, "LHLO lists %s" % k, text)
    t.ok("STARTTLS" not in kw, "no STARTTLS without a certificate", text)
    t.eq([c.cmd(x)[0] for x in ("NOOP", "VRFY crm@acme.test", "RSET")], [250, 252, 250], "NOOP VRFY RSET")
    t.eq(c.cmd("QUIT")[0], 221, "QUIT: 221")
    t.ok(c.closed(), "closed after QUIT")

# --- per-recipient replies ---------------------------------------------------------
with section("per-recipient"):
    s = d.lmtp()
    code, text = s.ehlo("client.test")  # smtplib.LMTP sends LHLO
    t.ok(code == 250 and s.has_extn("pipelining"), "smtplib.LMTP: LHLO 250", text)
    refused = s.sendmail("eve@client.test", ["support@acme.test"],
                         msg("LMTP printer", msgid="lmtp-1@client.test"))
    t.eq(refused, {}, "smtplib.LMTP sendmail to one recipient: nothing refused")
    t.ok(any(x["subject"] == "LMTP printer" for x in d.env.json("ticket", "list")),
         "the ticket is there right after the 250")
    s.mail("ann@client.test")
    t.eq(s.rcpt("crm@acme.test")[0], 250, "RCPT crm@: 250")
    code, text = s.rcpt("nobody@acme.test")
    t.ok(code == 550 and text.decode().startswith("5.1.1"), "a non-mailroom recipient is refused at RCPT: 550 5.1.1",
         text)
    t.eq(s.rcpt("support@acme.test")[0], 250, "RCPT support@: 250")
    first = s.data(msg("to two by LMTP", frm="ann@client.test", msgid="lmtp-2@client.test"))
    second = s.getreply()
    replies = [(c_, x.decode()) for c_, x in (first, second)]
    t.eq([r[0] for r in replies], [250, 250], "after DATA: one 250 per accepted recipient")
    t.ok(replies[0][1].startswith("2.0.0 <crm@acme.test>") and
         replies[1][1].startswith("2.0.0 <support@acme.test>"),
         "the replies name the recipients in RCPT order", replies)
    t.eq(s.noop()[0], 250, "no extra reply is left behind (NOOP: 250)")
    mid = stored_id(replies[0][1])
    t.eq(stored_id(replies[1][1]), mid, "both replies name the same stored message")
    m = d.env.json("message", "show", str(mid))
    t.eq(sorted(x["recipient"] for x in m["deliveries"]), ["crm@acme.test", "support@acme.test"],
         "one message with two deliveries")
    s.quit()

    # raw: every per-recipient 250 comes after its COMMIT
    c = d.raw(lmtp=True)
    lhlo(c)
    bad = []
    for i in range(5):
        r = transaction(c, "ray@client.test", ["crm@acme.test", "sales@acme.test"],
                        msg("raw %d" % i, frm="ray@client.test", to="sales@acme.test",
                            msgid="raw-%d@client.test" % i), lmtp=True)
        rc, out, err = d.env.ctl("message", "show", str(stored_id(r[3][-1][1])), "--json")
        if [x[0] for x in r[3]] != [250, 250] or rc != 0 or "raw-%d@client.test" % i not in out:
            bad.append((i, r[3], err))
    t.eq(bad, [], "5 two-recipient deliveries: two 250s each, readable right away")
    c.close()

    c = d.raw(lmtp=True)
    lhlo(c)
    c.cmd("MAIL FROM:<eve@client.test>")
    c.cmd("RCPT TO:<nobody@acme.test>")
    code, text = c.cmd("DATA")
    t.ok(code in (503, 554), "DATA with no accepted recipient is refused", text)
    c.close()

    p = subprocess.run(["swaks", "--protocol", "LMTP", "--server", "127.0.0.1", "--port", str(d.lmtp_port),
                        "--timeout", "10", "--helo", "client.test", "--from", "sw@client.test",
                        "--to", "support@acme.test", "--header", "Subject: swaks over LMTP"],
                       capture_output=True, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    t.ok(p.returncode == 0 and "<-  250 2.0.0" in out, "swaks --protocol LMTP delivers", out + p.stderr.decode())
    t.ok(any(x["subject"] == "swaks over LMTP" for x in d.env.json("ticket", "list")), "swaks' ticket")

# --- limits ---------------------------------------------------------------------------
with section("limits"):
    c = d.raw(lmtp=True)
    lhlo(c)
    code, text = c.cmd("MAIL FROM:<eve@client.test> SIZE=%d" % (MAX_SIZE + 1))
    t.ok(text.startswith("552 5.3.4"), "MAIL SIZE= over the limit: 552 5.3.4", text)
    t.eq(c.cmd("MAIL FROM:<eve@client.test> SIZE=10 BODY=8BITMIME")[0], 250, "SIZE=10 BODY=8BITMIME: 250")
    c.cmd("RSET")
    before = d.message_count()
    big = b"From: big@client.test\r\nSubject: big\r\n\r\n" + (b"b" * 998 + b"\r\n") * 110
    r = transaction(c, "big@client.test", ["crm@acme.test", "support@acme.test"], big, lmtp=True)
    t.eq([x[1][:9] for x in r[3]], ["552 5.3.4", "552 5.3.4"], "an oversized body: 552 5.3.4 for each recipient")
    t.eq(c.cmd("NOOP")[0], 250, "no extra reply; the session goes on")
    t.eq(d.message_count(), before, "nothing stored")
    c.cmd("MAIL FROM:<many@client.test>")
    codes = [c.cmd("RCPT TO:<%s>" % a)[1][:9] for a in
             ("crm@acme.test", "sales@acme.test", "support@acme.test", "support+x@acme.test")]
    t.eq(codes, ["250 2.1.5", "250 2.1.5", "250 2.1.5", "452 4.5.3"], "a fourth recipient: 452 4.5.3")
    c.cmd("DATA")
    send_data(c, msg("three by LMTP", frm="many@client.test"))
    t.eq([x[0] for x in c.replies(3)], [250, 250, 250], "three replies for the three accepted")
    c.close()

# --- bytes, pipelining, duplicates ---------------------------------------------------
with section("bytes"):
    c = d.raw(lmtp=True)
    lhlo(c)
    c.cmd("MAIL FROM:<dot@client.test>")
    c.cmd("RCPT TO:<crm@acme.test>")
    c.cmd("DATA")
    c.send(b"From: dot@client.test\r\nSubject: dots\r\n\r\n..hidden\r\n.\r\n")
    code, text = c.reply()
    t.eq(d.raw_message(stored_id(text)), b"From: dot@client.test\r\nSubject: dots\r\n\r\n.hidden\r\n",
         "dot-unstuffing over LMTP")
    raw = (b"From: nul@client.test\nX-Long: " + b"q" * 14336 + b"\nSubject: nul\n\nbefore \x00 after\n"
           b".leading dot after a bare LF\n.leading dot\r\n")
    r = transaction(c, "nul@client.test", ["crm@acme.test"], raw, lmtp=True)
    t.eq(r[3][0][0], 250, "bare LF, 14 KB header, NUL byte, leading dot: 250")
    t.eq(d.raw_message(stored_id(r[3][0][1]))[:200], raw[:200], "stored byte-exact")
    t.ok(d.raw_message(stored_id(r[3][0][1])) == raw, "stored byte-exact (the whole)")
    c.close()

with section("pipelining"):
    c = d.raw(lmtp=True)
    before = d.message_count()
    c.send("LHLO client.test\r\nMAIL FROM:<pipe@client.test>\r\nRCPT TO:<crm@acme.test>\r\n"
           "RCPT TO:<nobody@acme.test>\r\nRCPT TO:<support@acme.test>\r\nDATA\r\n")
    t.eq([x[0] for x in c.replies(6)], [250, 250, 250, 550, 250, 354],
         "pipelined LHLO MAIL RCPT RCPT(bad) RCPT DATA: replies in order")
    c.send(msg("lmtp pipelined", frm="pipe@client.test") + b"\r\n.\r\nQUIT\r\n")
    t.eq([x[0] for x in c.replies(3)], [250, 250, 221], "body + QUIT: 250, 250, 221")
    t.eq(d.message_count(), before + 1, "stored once")

with section("duplicates"):
    raw = msg("twice over LMTP", frm="dup@client.test", to="crm@acme.test", msgid="lmtp-dup@client.test")
    before = d.message_count()
    c = d.raw(lmtp=True)
    lhlo(c)
    r1 = transaction(c, "dup@client.test", ["crm@acme.test"], raw, lmtp=True)[3]
    r2 = transaction(c, "dup@client.test", ["crm@acme.test"], raw, lmtp=True)[3]
    t.eq((r1[0][0], r2[0][0]), (250, 250), "the same bytes twice: 250 both times")
    t.eq(d.message_count(), before + 1, "stored once")
    r3 = transaction(c, "dup@client.test", ["support@acme.test"], raw, lmtp=True)[3]
    t.eq(r3[0][0], 250, "the same bytes to another recipient: 250")
    t.eq(d.message_count(), before + 1, "still one message")
    m = d.env.json("message", "show", str(stored_id(r1[0][1])))
    t.eq(sorted(x["recipient"] for x in m["deliveries"]), ["crm@acme.test", "support@acme.test"],
         "with a delivery for each recipient")
    c.close()

# --- hostile ------------------------------------------------------------------------
with section("hostile"):
    before = d.message_count()
    c = d.raw(lmtp=True, timeout=5)
    rng = random.Random(61)
    c.send(bytes(rng.getrandbits(8) for _ in range(2048)) + b"\r\n" * 12)
    codes = []
    try:
        while True:
            codes.append(c.reply()[0])
    except (EOFError, ConnectionResetError):
        pass
    t.ok(codes and codes[-1] == 421 and all(x in (500, 501, 421) for x in codes),
         "garbage: 5xx, then 421 after max_errors", codes)
    c = d.raw(lmtp=True)
    lhlo(c)
    c.cmd("MAIL FROM:<gone@client.test>")
    c.cmd("RCPT TO:<crm@acme.test>")
    c.cmd("RCPT TO:<support@acme.test>")
    c.cmd("DATA")
    c.send(b"From: gone@client.test\r\nSubject: gone\r\n\r\nhalf")
    c.close()
    c = d.raw(lmtp=True)
    lhlo(c)
    r = transaction(c, "next@client.test", ["crm@acme.test"], msg("next", frm="next@client.test"), lmtp=True)
    t.eq(r[3][0][0], 250, "after a client vanished in DATA the next is served")
    t.eq(d.message_count(), before + 1, "nothing stored from the vanished client")
    c.close()

# --- concurrency -----------------------------------------------------------------------
with section("concurrency"):
    before = d.message_count()
    results, errors = [], []
    lock = threading.Lock()

    def worker(i):
        try:
            s = d.lmtp()
            s.ehlo("client.test")
            for j in range(5):
                frm = "l%d@load.test" % i
                s.mail(frm)
                s.rcpt("crm@acme.test")
                s.rcpt("sales@acme.test")
                rs = [s.data(msg("lmtp load %d/%d" % (i, j), frm=frm, to="sales@acme.test",
                                 msgid="ll-%d-%d@load.test" % (i, j))), s.getreply()]
                with lock:
                    results.append(tuple(x[0] for x in rs))
            s.quit()
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append("%d: %r" % (i, e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    t.eq(errors, [], "10 concurrent LMTP clients: no errors")
    t.eq((len(results), set(results)), (50, {(250, 250)}), "50 messages x 2 recipients: all 250")
    t.eq(d.message_count(), before + 50, "50 messages stored")

# --- SIGHUP -------------------------------------------------------------------------
with section("reload"):
    old = d.raw(lmtp=True)
    lhlo(old)
    d.add_address("extra@acme.test", "bcc")
    line = d.reload()
    t.ok(line is not None and "reloaded" in line, "SIGHUP: reloaded", d.log())
    c = d.raw(lmtp=True)
    lhlo(c)
    r = transaction(c, "hup@client.test", ["extra@acme.test", "crm@acme.test"],
                    msg("new address", frm="hup@client.test", to="extra@acme.test"), lmtp=True)
    t.eq([x[0] for x in r[1]] + [x[0] for x in r[3]], [250, 250, 250, 250],
         "a new session accepts extra@acme.test after the reload")
    c.close()
    r = transaction(old, "hup@client.test", ["crm@acme.test"], msg("old session", frm="hup@client.test"),
                    lmtp=True)
    t.eq(r[3][0][0], 250, "the session opened before the reload still delivers")

# --- SIGTERM drain ----------------------------------------------------------------------
with section("drain"):
    count = d.message_count()
    busy = d.raw(lmtp=True)
    lhlo(busy)
    busy.cmd("MAIL FROM:<drain@client.test>")
    busy.cmd("RCPT TO:<crm@acme.test>")
    busy.cmd("RCPT TO:<support@acme.test>")
    busy.cmd("DATA")
    busy.send(b"From: drain@client.test\r\nSubject: in flight\r\n\r\n")
    time.sleep(0.1)
    t_term = time.monotonic()
    d.signal(signal.SIGTERM)
    r = old.try_reply()
    t.ok(r[0] == 421, "SIGTERM: the idle LMTP session gets 421", r)
    t.ok(old.closed(), "and is closed")
    busy.send(b"body\r\n.\r\n")
    rs = [busy.try_reply() for _ in range(3)]
    t.eq([x[0] for x in rs], [250, 250, 421], "the transaction in DATA finishes: 250, 250, then 421")
    t.eq(d.stop(), 0, "exit 0")
    # promptly: not after the idle timeout (300 s), whatever the machine's load
    t.ok(time.monotonic() - t_term < 30, "promptly (%.2fs)" % (time.monotonic() - t_term))
    t.eq(d.message_count(), count + 1, "the drained message is in the DB")

# --- temporary failure and idle timeout on their own daemon ----------------------------------
with section("tempfail"):
    # limits.timeout = 3: long enough that the working session never idles
    # out on a loaded machine between its commands (mailroomctl runs between)
    dt = Daemon("limits = { timeout = 3; };\nstore = { busy_timeout = 200; };")
    idle = dt.raw(lmtp=True)
    c = dt.raw(lmtp=True)
    lhlo(c)
    raw = msg("while locked", frm="locked@client.test", to="crm@acme.test")
    lk = WriteLock(dt.env.db)
    try:
        r = transaction(c, "locked@client.test", ["crm@acme.test", "support@acme.test"], raw, lmtp=True)
    finally:
        lk.release()
    t.eq([x[1][:9] for x in r[3]], ["451 4.3.0", "451 4.3.0"], "store busy: 451 4.3.0 for each recipient")
    t.eq(dt.message_count(), 0, "nothing stored")
    r = transaction(c, "locked@client.test", ["crm@acme.test", "support@acme.test"], raw, lmtp=True)
    t.eq([x[0] for x in r[3]], [250, 250], "the retry: 250, 250")
    t.eq(dt.message_count(), 1, "stored once")
    c.close()
    r = idle.try_reply()
    t.ok(r[0] == 421 and "4.4.2" in r[1], "an idle LMTP session gets 421 4.4.2 (limits.timeout = 3)", r)
    t.ok(idle.closed(), "and is closed")
    t.eq(dt.stop(), 0, "exit 0")

t.diag("61-lmtp.t took %.1fs" % (time.monotonic() - T0))
