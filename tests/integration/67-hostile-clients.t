#!/usr/bin/env python3
# The SMTP and LMTP doors under hostile clients (issue 12, section 3): a
# pipelined flood of commands is answered to the end; a client that drips
# bytes loses its slot at the line deadline, and one address cannot take
# every slot (limits.max_connections_per_ip); stalled STARTTLS clients hold
# no thread and do not keep a good client from TLS; 8-bit addresses are
# refused and never echoed, and --json stays UTF-8 whatever is stored; source
# routes with IPv6 literals, SIZE=-1, a half-closed pipelined session, and
# the rate limit on refusal log lines.  Everything on loopback (127.0.0.x)
# with bounded waits.
import json
import os
import re
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import PG, Tap
from mrdaemon import (HOST, IO_TIMEOUT, TLS_ENVIRON, Client, Daemon, client_tls_context, msg,
                      self_signed_cert, send_data, stored_id, tls_config)

T0 = time.monotonic()
t = Tap()
section = t.section


class ClientFrom(Client):
    """A raw client bound to a source address (127.0.0.2, ...): loopback
    holds the whole 127/8, so one test can be several client addresses."""

    def __init__(self, port, source, timeout=IO_TIMEOUT, greet=True):
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        self.greeting = self.reply() if greet else None


def hello(c, lmtp):
    code, text = c.cmd("LHLO client.test" if lmtp else "EHLO client.test")
    assert code == 250, text
    return text


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def ascii_only(text):
    return all(ord(ch) < 128 for ch in text)


def client_hello():
    """The first flight of a TLS client (its ClientHello), as bytes."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_tls_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def read_all(c, bound=20):
    """Every reply until the server closes (within @bound seconds)."""
    out = []
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        r = c.try_reply()
        if r[0] is None:
            break
        out.append(r)
    return out


d = Daemon("limits = { max_recipients = 3; timeout = 60; };")

# --- 1. pipelining: replies past the 64 KiB reply buffer ---------------------------------------
with section("pipelining stall"):
    for lmtp in (False, True):
        proto = "LMTP" if lmtp else "SMTP"
        c = d.raw(lmtp=lmtp, timeout=20)
        hello(c, lmtp)
        t1 = time.monotonic()
        c.send(b"NOOP\r\n" * 5000)
        codes = []
        while len(codes) < 5000:
            r = c.try_reply()
            if r[0] is None:
                break
            codes.append(r[0])
        took = time.monotonic() - t1
        t.ok(len(codes) == 5000 and set(codes) == {250},
             "%s: one write of 5,000 NOOPs gets 5,000 replies (%d in %.2fs)" % (proto, len(codes), took))
        t.ok(took < 15, "%s: promptly, not at the idle timeout (%.2fs)" % (proto, took))
        t.eq(c.cmd("NOOP")[0], 250, "%s: the session goes on" % proto)

        # 2,200 pipelined RCPTs and DATA: 3 accepted (max_recipients), 2,197
        # times 452, then the 354 -- every reply arrives.
        rcpts = ["support@acme.test", "crm@acme.test", "sales@acme.test"] + ["crm@acme.test"] * 2197
        c.send("MAIL FROM:<flood@client.test>\r\n" + "".join("RCPT TO:<%s>\r\n" % r for r in rcpts)
               + "DATA\r\n")
        replies = []
        while len(replies) < 2202:
            r = c.try_reply()
            if r[0] is None:
                break
            replies.append(r[0])
        t.eq((len(replies), replies[:4], sorted(set(replies[4:-1])), replies[-1:]),
             (2202, [250, 250, 250, 250], [452], [354]),
             "%s: MAIL, 2,200 pipelined RCPTs and DATA: every reply, the last one 354" % proto)
        if replies[-1:] == [354]:
            send_data(c, msg("after the flood %s" % proto, frm="flood@client.test",
                             msgid="flood-%s@client.test" % proto))
            finals = c.replies(3 if lmtp else 1)
            t.ok(all(code == 250 for code, _ in finals),
                 "%s: and the message is stored (%d final replies)" % (proto, len(finals)), finals)
        c.close()

# --- 2. connection slots: a deadline per line, a cap per client address ------------------------
with section("line deadline"):
    dd = Daemon("limits = { timeout = 2; max_connections = 4; };")

    def drip(c, data, bound=15):
        """Sends @data one byte per 0.5 s, over and over, reading replies in
        between; returns (replies, seconds) once a 421 came or the
        connection closed, or after @bound seconds."""
        replies, t1, i = [], time.monotonic(), 0
        c.sock.settimeout(0.5)
        while time.monotonic() - t1 < bound:
            try:
                c.sock.sendall(data[i % len(data):i % len(data) + 1])
            except OSError:
                break
            i += 1
            try:
                code, text = c.reply()
                replies.append((code, text))
                if code == 421:
                    break
            except socket.timeout:
                continue
            except (EOFError, OSError):
                break
        return replies, time.monotonic() - t1

    for lmtp in (False, True):
        proto = "LMTP" if lmtp else "SMTP"
        c = dd.raw(lmtp=lmtp)
        hello(c, lmtp)
        replies, took = drip(c, b"NOOP\r\n")
        t.ok(replies and replies[-1][1].startswith("421 4.4.2"),
             "%s: NOOP dripped a byte every 0.5 s (limits.timeout = 2): 421 4.4.2" % proto, replies)
        t.ok(took < 10, "%s: at the line's deadline, though a byte came every 0.5 s (%.1fs)" % (proto, took))
        t.ok(c.closed(), "%s: and closed" % proto)

        c = dd.raw(lmtp=lmtp)
        hello(c, lmtp)
        c.cmd("MAIL FROM:<drip@client.test>")
        c.cmd("RCPT TO:<crm@acme.test>")
        t.eq(c.cmd("DATA")[0], 354, "%s: DATA: 354" % proto)
        c.send(b"Subject: drip\r\n\r\n")
        replies, took = drip(c, b"x")
        t.ok(replies and replies[-1][1].startswith("421 4.4.2") and took < 10,
             "%s: a DATA line dripped byte by byte: 421 4.4.2 at its deadline (%.1fs)" % (proto, took),
             replies)
        c.close()

    # Every slot held by drippers (the issue: 256 of them for ever): they
    # lose the slots at the deadline, and the next client is served.
    sources = ["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"]
    drippers = [ClientFrom(dd.smtp_port, src) for src in sources]
    t.eq([c.greeting[0] for c in drippers], [220] * 4, "4 drippers take the 4 slots (max_connections = 4)")
    results = [None] * 4
    threads = [threading.Thread(target=lambda k: results.__setitem__(k, drip(drippers[k], b"NOOP\r\n")),
                                args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    c = ClientFrom(dd.smtp_port, "127.0.0.3")
    t.ok(c.greeting[1].startswith("421 4.7.0"), "a fifth client meanwhile: 421 4.7.0", c.greeting)
    for th in threads:
        th.join(30)
    t.ok(all(r and r[0] and r[0][-1][1].startswith("421 4.4.2") for r in results),
         "every dripper gets 421 4.4.2 at its line deadline", results)
    served = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        c = ClientFrom(dd.smtp_port, "127.0.0.3")
        served = c.greeting
        c.close()
        if served[0] == 220:
            break
        time.sleep(0.1)
    t.eq(served and served[0], 220, "then the slots are free: a new client is greeted")
    for c in drippers:
        c.close()
    t.eq(dd.stop(), 0, "exit 0")

with section("max_connections_per_ip"):
    dp = Daemon("limits = { max_connections_per_ip = 3; };")
    held = [dp.raw(), dp.raw(), dp.raw(lmtp=True)]
    t.eq([c.greeting[0] for c in held], [220, 220, 220],
         "max_connections_per_ip = 3: three sessions from 127.0.0.1 (SMTP and LMTP together)")
    for lmtp in (False, True):
        c = dp.raw(lmtp=lmtp)
        t.ok(c.greeting[1].startswith("421 4.7.0") and "127.0.0.1" in c.greeting[1],
             "the fourth from 127.0.0.1 on %s: 421 4.7.0 (loopback is trusted and still counted)"
             % ("LMTP" if lmtp else "SMTP"), c.greeting)
        t.ok(c.closed(), "and closed")
    c = ClientFrom(dp.smtp_port, "127.0.0.2")
    t.eq(c.greeting[0], 220, "another address (127.0.0.2) is greeted")
    c.close()
    t.eq(held[0].cmd("NOOP")[0], 250, "the sessions already open go on")
    held[0].cmd("QUIT")
    held[0].close()
    greeted = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        c = dp.raw()
        greeted = c.greeting
        c.close()
        if greeted[0] == 220:
            break
        time.sleep(0.1)
    t.eq(greeted and greeted[0], 220, "after one leaves, 127.0.0.1 gets a slot again")
    t.ok(dp.wait_for("refused reason=too-many-connections-per-ip peer=127.0.0.1", 10) is not None,
         "the refusal is logged with its reason", dp.log())
    for c in held:
        c.close()
    t.eq(dp.stop(), 0, "exit 0")

# --- 3. STARTTLS: no thread for a silent client, a cap and a deadline -------------------------
cert, key = self_signed_cert(d.env.dir)
with section("stalled STARTTLS"):
    dt = Daemon(tls_config(cert, key) + "limits = { max_connections_per_ip = 1000; };",
                environ=TLS_ENVIRON)
    pid = dt.proc.pid
    base_threads, base_rss = proc_status(pid, "Threads"), proc_status(pid, "VmRSS")
    stalled = []
    for _ in range(100):
        c = dt.raw(timeout=20)
        hello(c, False)
        stalled.append((c, c.cmd("STARTTLS")[0]))
    t.eq(sorted(set(code for _, code in stalled)), [220], "100 clients say STARTTLS (220) and then nothing")
    threads, rss = proc_status(pid, "Threads"), proc_status(pid, "VmRSS")
    t.diag("100 stalled STARTTLS: threads %d -> %d, RSS %d -> %d kB" % (base_threads, threads, base_rss, rss))
    t.ok(threads <= base_threads + 8, "they hold no thread (threads %d -> %d)" % (base_threads, threads))
    t.ok(rss - base_rss < 64 * 1024, "nor much memory (RSS +%d kB)" % (rss - base_rss))
    t1 = time.monotonic()
    g = dt.raw(timeout=20)
    hello(g, False)
    code, text = g.cmd("STARTTLS")
    t.eq(code, 220, "a good client's STARTTLS: 220")
    g.starttls()
    hello(g, False)
    g.cmd("MAIL FROM:<good@client.test>")
    g.cmd("RCPT TO:<support@acme.test>")
    g.cmd("DATA")
    send_data(g, msg("good over TLS", frm="good@client.test"))
    code, text = g.reply()
    took = time.monotonic() - t1
    t.ok(code == 250 and took < 10, "and its delivery over TLS: 250 in %.2fs" % took, text)
    t.ok(proc_status(pid, "Threads") <= base_threads + 8,
         "threads stay bounded (%d)" % proc_status(pid, "Threads"))
    g.close()
    t.ok(all(c.closed(timeout=30) for c, _ in stalled),
         "the stalled ones are closed at limits.tls_handshake_timeout")
    t.eq(dt.stop(), 0, "exit 0")

with section("TLS handshake cap"):
    dh = Daemon(tls_config(cert, key) + "limits = { max_tls_handshakes = 2; tls_handshake_timeout = 2; };",
                environ=TLS_ENVIRON)
    pid = dh.proc.pid
    base_threads = proc_status(pid, "Threads")
    # ClientHello, then silence: these handshakes run on a thread each
    hung, codes = [], []
    for _ in range(5):
        c = dh.raw(timeout=10)
        hello(c, False)
        code, text = c.cmd("STARTTLS")
        codes.append(text if code != 220 else 220)
        if code == 220:
            c.send(client_hello())
            c.sock.recv(5)  # the server's answer: its handshake is under way
        hung.append(c)
    t.eq(codes[:2], [220, 220], "max_tls_handshakes = 2: two handshakes start")
    t.ok(all(str(x).startswith("454 4.7.0") for x in codes[2:]),
         "STARTTLS while both are busy: 454 4.7.0", codes)
    threads = proc_status(pid, "Threads")
    t.ok(threads <= base_threads + 2 + 2, "threads bounded: %d -> %d" % (base_threads, threads))
    t.ok(all(c.closed(timeout=15) for c in hung[:2]),
         "hung handshakes are cancelled at the deadline (tls_handshake_timeout = 2)")
    ok = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        g = dh.raw()
        hello(g, False)
        ok = g.cmd("STARTTLS")
        if ok[0] == 220:
            break
        g.close()
        time.sleep(0.2)
    t.eq(ok and ok[0], 220, "then STARTTLS is available again")
    g.starttls()
    t.eq(g.cmd("EHLO client.test")[0], 250, "and the handshake works")
    g.close()
    for c in hung:
        c.close()
    t.eq(dh.stop(), 0, "exit 0")

# --- 4. 8-bit addresses: refused, never echoed; --json is UTF-8 --------------------------------
with section("8-bit addresses"):
    for lmtp in (False, True):
        proto = "LMTP" if lmtp else "SMTP"
        c = d.raw(lmtp=lmtp)
        hello(c, lmtp)
        for sender in (b"\xc3\xa9ve@client.test", b"ev\xffe@client.test", b"eve@cli\xe9nt.test"):
            c.send(b"MAIL FROM:<" + sender + b">\r\n")
            code, text = c.reply()
            t.ok(text.startswith("553 5.6.7") and ascii_only(text),
                 "%s: MAIL FROM:<%r>: 553 5.6.7, no raw bytes in the reply" % (proto, sender), text)
        t.eq(c.cmd("MAIL FROM:<eve@client.test>")[0], 250, "%s: an ASCII sender: 250" % proto)
        for rcpt in (b"s\xc3\xbcpport@acme.test", b"support@acme.t\xffst", b"\xff"):
            c.send(b"RCPT TO:<" + rcpt + b">\r\n")
            code, text = c.reply()
            t.ok(text.startswith("553 5.6.7") and ascii_only(text),
                 "%s: RCPT TO:<%r>: 553 5.6.7, no raw bytes" % (proto, rcpt), text)
        c.send(b"RCPT TO:<crm@acme.test> X=\xff\xfe\r\n")
        code, text = c.reply()
        t.ok(code == 555 and ascii_only(text), "%s: an 8-bit parameter: 555, shown without its raw bytes"
             % proto, text)
        t.eq(c.cmd("DATA")[0], 503, "%s: no recipient was taken: DATA 503" % proto)
        c.close()
    t.eq([m for m in d.messages() if "\ufffd" in json.dumps(m)], [], "nothing 8-bit was stored")

    # whatever the database holds, every --json output is valid UTF-8 (an SQLite
    # file can hold invalid UTF-8 in TEXT; PostgreSQL refuses it on the way in)
    if not PG:
        ej = d.env
        con = sqlite3.connect(ej.db)
        con.execute("UPDATE message SET subject = CAST(X'626164FF28' AS TEXT), "
                    "from_name = CAST(X'C328' AS TEXT)")
        con.execute("UPDATE delivery SET envelope_from = CAST(X'73FF40636C69656E742E74657374' AS TEXT)")
        con.execute("UPDATE contact SET name = CAST(X'E282' AS TEXT)")
        con.commit()
        con.close()
        first = d.messages()[0]["id"]
        for args in (["message", "list"], ["message", "show", str(first)], ["contact", "list"],
                     ["ticket", "list"], ["inbox", "list"]):
            p = subprocess.run([ej.ctl_path, "-c", ej.conf] + args + ["--json"], capture_output=True,
                               timeout=60)
            try:
                json.loads(p.stdout.decode("utf-8"))
                valid = True
            except (UnicodeDecodeError, ValueError) as e:
                valid = repr(e)
            t.ok(p.returncode == 0 and valid is True,
                 "mailroomctl %s --json is valid UTF-8 JSON with invalid bytes stored" % " ".join(args),
                 (valid, p.stderr))

# --- 5. smaller things ------------------------------------------------------------------------
with section("source route"):
    for lmtp in (False, True):
        proto = "LMTP" if lmtp else "SMTP"
        c = d.raw(lmtp=lmtp)
        hello(c, lmtp)
        c.cmd("MAIL FROM:<@[IPv6:::1]:route@client.test>")
        rs = [c.cmd("RCPT TO:<%s>" % r) for r in
              ("@[IPv6:::1]:support@acme.test", "@[IPv6:2001:db8::1],@relay.test:crm@acme.test",
               "@relay.test,@[192.0.2.1]:sales@acme.test")]
        t.eq([x[0] for x in rs], [250, 250, 250], "%s: source routes with address literals: 250" % proto)
        for bad in ("@[IPv6:::1>", "@:support@acme.test", "@relay.test;support@acme.test"):
            code, text = c.cmd("RCPT TO:<%s>" % bad)
            t.eq(code, 501, "%s: RCPT TO:<%s>: 501" % (proto, bad))
        c.cmd("DATA")
        send_data(c, msg("routed %s" % proto, frm="route@client.test", msgid="route-%s@client.test" % proto))
        finals = c.replies(3 if lmtp else 1)
        t.ok(all(x[0] == 250 for x in finals), "%s: delivered" % proto, finals)
        c.close()
    tickets = d.env.json("ticket", "list")
    t.ok(any(x["subject"] == "routed SMTP" for x in tickets), "the mailbox after the route is the recipient")

with section("SIZE"):
    c = d.raw()
    hello(c, False)
    for arg in ("-1", "+5", "1e3", "", " 5", "123456789012345678901"):
        code, text = c.cmd("MAIL FROM:<eve@client.test> SIZE=%s" % arg)
        t.ok(text.startswith("501 5.5.4"), "SIZE=%s: 501 5.5.4" % arg, text)
    code, text = c.cmd("MAIL FROM:<eve@client.test> SIZE=99999999999999999999")
    t.ok(text.startswith("552 5.3.4"), "SIZE= of 20 digits: 552 5.3.4", text)
    t.eq(c.cmd("MAIL FROM:<eve@client.test> SIZE=0")[0], 250, "SIZE=0: 250")
    c.close()

with section("half-close"):
    for lmtp in (False, True):
        proto = "LMTP" if lmtp else "SMTP"
        c = d.raw(lmtp=lmtp)
        raw = msg("half-closed %s" % proto, frm="half@client.test", msgid="half-%s@client.test" % proto)
        c.send(("LHLO client.test\r\n" if lmtp else "EHLO client.test\r\n")
               + "MAIL FROM:<half@client.test>\r\nRCPT TO:<support@acme.test>\r\nRCPT TO:<crm@acme.test>\r\n"
               "DATA\r\n")
        send_data(c, raw)
        c.send("QUIT\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        replies = read_all(c)
        codes = [x[0] for x in replies]
        want = [250, 250, 250, 250, 354] + ([250, 250] if lmtp else [250]) + [221]
        t.eq(codes, want, "%s: a pipelined transaction, QUIT, then SHUT_WR: every reply, 250 and 221" % proto)
        mid = stored_id(replies[5][1]) if len(replies) > 5 else None
        t.ok(mid is not None and any(m["id"] == mid for m in d.messages()), "%s: stored" % proto)
        c.close()

        # half-closed inside DATA: nothing to store, the session ends at once
        c = d.raw(lmtp=lmtp)
        hello(c, lmtp)
        c.cmd("MAIL FROM:<half@client.test>")
        c.cmd("RCPT TO:<crm@acme.test>")
        c.cmd("DATA")
        c.send(b"Subject: cut short\r\n\r\nno end")
        c.sock.shutdown(socket.SHUT_WR)
        t.ok(c.closed(timeout=10), "%s: half-closed in the middle of DATA: closed, without waiting" % proto)
        c.close()
    t.ok(not any(m["subject"] == "cut short" for m in d.messages()), "the unfinished message is not stored")

with section("refusal log rate limit"):
    dr = Daemon('trusted_networks = [ "10.0.0.0/8" ];')
    mark = dr.mark()
    greetings = []
    for _ in range(40):
        c = dr.raw(timeout=5)
        greetings.append(c.greeting[0])
        c.close()
    t.eq(sorted(set(greetings)), [554], "40 untrusted connections: each gets 554")
    summary = dr.wait_for(re.compile(r"refused (\d+) more connections"), 30, mark)
    lines = len(re.findall(r"refused reason=untrusted", dr.log(mark)))
    t.ok(lines <= 10, "at most 10 lines for them (%d)" % lines, dr.log(mark))
    m = re.search(r"refused (\d+) more connections", summary or "")
    t.ok(m is not None and lines + int(m.group(1)) == 40,
         "then one line counts the rest (%s)" % summary, dr.log(mark))
    t.ok(summary is not None and "untrusted=%d" % (40 - lines) in summary, "by reason", summary)
    t.eq(dr.stop(), 0, "exit 0")

t.eq(d.stop(), 0, "exit 0")
t.diag("67-hostile-clients.t took %.1fs" % (time.monotonic() - T0))
