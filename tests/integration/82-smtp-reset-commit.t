#!/usr/bin/env python3
# A reset during COMMIT (issue 20, item 17).
#   - A client that sends a big message with its final dot and then resets
#     the connection (RST) keeps its slot -- global and per address -- until
#     the writer has answered its message: with max_connections = 4, one
#     address that repeats this while the writer is held (a lock on the
#     database) gets 421 from the fifth connection on, the spool never holds
#     more than 4 messages (limits.max_connections x max_message_size holds),
#     and once the lock goes every message handed over is stored once and
#     the slots are free again.
#   - SIGTERM with a deep queue behind a held database: the drain ends after
#     limits.drain_timeout, the writer ends the batch in hand (at most
#     store.busy_timeout more) and answers the rest with a temporary error;
#     mailroomd exits 0 within that bound, and nothing unacknowledged is
#     stored.
import os
import socket
import struct
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Env, Tap, wait_until  # noqa: E402
from mrdaemon import Daemon, WriteLock, msg, send_data, transaction  # noqa: E402

t = Tap()
section = t.section
T0 = time.monotonic()

MAX_CONN = 4
RESETS = 12
BIG = 3 * 1024 * 1024


def big_message(tag):
    head = ("From: %s@attacker.test\r\nTo: crm@acme.test\r\nSubject: %s\r\n"
            "Message-ID: <%s@attacker.test>\r\n\r\n" % (tag, tag, tag)).encode()
    line = (tag.encode() + b" " + b"z" * 80)[:78] + b"\r\n"
    return head + line * (BIG // len(line))


def spool_files(pid, spool):
    """The spool files mailroomd holds (open or mapped): unnamed, so they
    are found through /proc, one per inode."""
    inodes = set()
    try:
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith(spool + "/"):
                    inodes.add(int(parts[4]))
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(spool + "/"):
                    inodes.add(os.stat("/proc/%d/fd/%s" % (pid, fd)).st_ino)
            except OSError:
                pass
    except OSError:
        pass
    return len(inodes)


class Sampler:
    """Samples the spool files of @pid every 20 ms; peak is the most seen."""

    def __init__(self, pid, spool):
        self.pid, self.spool, self.peak, self.stop_ = pid, spool, 0, False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_:
            self.peak = max(self.peak, spool_files(self.pid, self.spool))
            time.sleep(0.02)

    def stop(self):
        self.stop_ = True
        self.thread.join()
        return self.peak


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST


def subjects(d):
    return sorted(m.get("subject") for m in d.messages())


with section("a reset during COMMIT keeps its slot"):
    env = Env()
    spool = os.path.join(env.dir, "spool")
    d = Daemon("limits = { max_connections = %d; max_connections_per_ip = %d; };\n"
               "store = { busy_timeout = 30000; };\n"
               'spool_directory = "%s";\n' % (MAX_CONN, MAX_CONN, spool), env=env)
    lock = WriteLock(d.env.db)
    sampler = Sampler(d.proc.pid, spool)
    handed, refused, other = [], [], []
    try:
        for i in range(RESETS):
            tag = "reset-%02d" % i
            c = d.raw(timeout=10)
            if c.greeting[0] == 421:
                refused.append(c.greeting[1])
                c.sock.close()
                continue
            c.cmd("EHLO attacker.test")
            c.cmd("MAIL FROM:<%s@attacker.test>" % tag)
            c.cmd("RCPT TO:<crm@acme.test>")
            code = c.cmd("DATA")[0]
            if code != 354:
                other.append((tag, code))
                reset(c.sock)
                continue
            c.send(big_message(tag) + b".\r\n")
            # The final dot is in: let mailroomd read it all, then reset.
            time.sleep(0.3)
            reset(c.sock)
            handed.append(tag)
            time.sleep(0.05)
        time.sleep(0.5)
        held = spool_files(d.proc.pid, spool)
        # While they wait, a newcomer is still refused: the slots are held.
        late = d.raw(timeout=10)
        late_greeting = late.greeting
        late.sock.close()
    finally:
        lock.release()
    t.ok(len(handed) <= MAX_CONN,
         "at most max_connections (%d) messages handed over by resetting clients while the "
         "writer waits (got %d of %d)" % (MAX_CONN, len(handed), RESETS), (handed, refused, other))
    t.ok(len(refused) >= RESETS - MAX_CONN and all(r.startswith("421 4.7.0") for r in refused),
         "the connections beyond the limit get 421 4.7.0 (%d)" % len(refused), refused)
    t.ok(late_greeting[0] == 421, "a newcomer while they wait: 421", late_greeting)
    t.ok(held <= MAX_CONN, "the spool holds at most %d messages (held %d)" % (MAX_CONN, held))
    t.eq(other, [], "no other answer to DATA")
    ok = wait_until(lambda: len(d.messages()) >= len(handed), 40)
    peak = sampler.stop()
    t.ok(peak <= MAX_CONN, "spool files never above max_connections (peak %d)" % peak)
    got = subjects(d)
    t.ok(ok and got == sorted(handed),
         "once the lock goes, every message handed over is stored, once", (got, handed))
    t.ok(d.wait_for("client gone", 5) is not None,
         "the log says the client was gone when its message committed", d.log()[-3000:])
    # The slots are free again: max_connections clients are served at once.
    # A slot is given back when the session hears its message's answer, a
    # moment after the commit the look-up above saw: try again for a while.
    deadline = time.monotonic() + 10
    while True:
        cs = [d.raw(timeout=10) for _ in range(MAX_CONN)]
        if all(c.greeting[0] == 220 for c in cs) or time.monotonic() > deadline:
            break
        for c in cs:
            c.sock.close()
        time.sleep(0.2)
    t.eq([c.greeting[0] for c in cs], [220] * MAX_CONN,
         "after the commits, %d connections are served again" % MAX_CONN)
    cs[0].cmd("EHLO client.test")
    r = transaction(cs[0], "next@client.test", ["crm@acme.test"],
                    msg("after the resets", frm="next@client.test", to="crm@acme.test"))
    t.eq(r[3][0][0] if r[3] else None, 250, "and a normal message is stored: 250")
    for c in cs:
        c.sock.close()
    t.eq(d.stop(), 0, "exit 0")
    t.eq(os.listdir(spool), [], "the spool folder is empty")

with section("SIGTERM with a deep queue stops within the bound"):
    DRAIN, BUSY_MS, N = 2, 2000, 16
    # One message per batch: each batch waits store.busy_timeout for the
    # lock, so that a writer that worked off its whole queue at exit would
    # take N x busy_timeout.
    d = Daemon("limits = { max_connections = 64; max_connections_per_ip = 64; "
               "drain_timeout = %d; };\n"
               "store = { busy_timeout = %d; batch_max = 1; };\n" % (DRAIN, BUSY_MS))
    lock = WriteLock(d.env.db)
    clients = []
    try:
        for i in range(N):
            c = d.raw(timeout=30)
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<deep-%02d@client.test>" % i)
            c.cmd("RCPT TO:<crm@acme.test>")
            c.cmd("DATA")
            send_data(c, msg("deep-%02d" % i, frm="deep-%02d@client.test" % i,
                             to="crm@acme.test"))
            clients.append(c)
        time.sleep(0.5)
        bound = DRAIN + BUSY_MS / 1000.0
        start = time.monotonic()
        rc = d.stop(timeout=bound + 8)
        took = time.monotonic() - start
    finally:
        lock.release()
    t.eq(rc, 0, "exit 0 after SIGTERM with %d messages queued" % N)
    t.ok(took <= bound + 4,
         "stopped in %.1f s: within drain_timeout + busy_timeout (%.0f s) and a little" % (took, bound),
         d.log()[-3000:])
    answers = [c.try_reply() for c in clients]
    t.ok(all(code != 250 for code, _ in answers),
         "nothing was acknowledged", answers)
    t.ok(any(code == 451 for code, _ in answers) or all(code is None for code, _ in answers),
         "the clients were told 451 or were closed without an answer", answers)
    d.start()
    t.eq(d.message_count(), 0, "nothing unacknowledged was stored")
    t.eq(d.stop(), 0, "exit 0")

t.diag("took %.1f s" % (time.monotonic() - T0))
