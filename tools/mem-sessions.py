#!/usr/bin/env python3
"""mem-sessions - what N clients sending big messages at once cost mailroomd.

Starts mailroomd (MR_BUILD, default build/) on loopback, has N clients
(default 60) send a SIZE-byte message each (default 25 MB) at the same
time, sends one small message 2 s in, and prints mailroomd's peak RSS
(VmHWM), the replies and how long the small message waited.  Figures, not a
test (issue 12: the target is a peak under 256 MB).  Usage:
    MR_BUILD=$PWD/build N=60 SIZE=26214400 python3 tools/mem-sessions.py
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from mrdaemon import Daemon  # noqa: E402

N = int(os.environ.get("N", "60"))
SIZE = int(os.environ.get("SIZE", str(25 << 20))) - 4096
d = Daemon("limits = { max_connections_per_ip = %d; max_message_size = %d; timeout = 600; };"
           % (N + 10, SIZE + (1 << 20)))


def peak_mb():
    with open("/proc/%d/status" % d.proc.pid) as f:
        return [int(x.split()[1]) // 1024 for x in f if x.startswith("VmHWM")][0]


def send(c, frm, subject, body):
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<%s>" % frm)
    c.cmd("RCPT TO:<crm@acme.test>")
    c.cmd("DATA")
    c.send(b"From: " + frm.encode() + b"\r\nSubject: " + subject.encode() + b"\r\n\r\n" + body + b".\r\n")
    t0 = time.monotonic()
    r = c.try_reply()
    return r[0], time.monotonic() - t0


body = (b"x" * 998 + b"\r\n") * (SIZE // 1000)
results = []
threads = [threading.Thread(target=lambda i=i: results.append(
    send(d.raw(timeout=600), "big%d@customer.test" % i, "big %d" % i, body))) for i in range(N)]
t0 = time.monotonic()
for t in threads:
    t.start()
time.sleep(2)
small = send(d.raw(timeout=600), "small@customer.test", "small", b"hi\r\n")
for t in threads:
    t.join()
print("clients=%d size=%d MB replies=%s total=%.1f s peak RSS=%d MB; small message: %s after %.2f s"
      % (N, SIZE >> 20, sorted(set(r[0] for r in results)), time.monotonic() - t0, peak_mb(),
         small[0], small[1]))
d.stop()
