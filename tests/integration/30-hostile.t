#!/usr/bin/env python3
# Bad input gets a clear error and loses nothing: every fixture in
# tests/data and hostile bytes made here are delivered (exit 0), stored raw
# byte for byte, and visible in the CLI with their parse status.
import glob
import os
import random
import subprocess
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env, DATA, message

t = Tap()
e = Env()
e.ctl("init")

inputs = []
for path in sorted(glob.glob(os.path.join(DATA, "*.eml"))):
    inputs.append((os.path.basename(path), open(path, "rb").read()))
t.ok(len(inputs) >= 15, "tests/data has the fixtures (%d)" % len(inputs))

rng = random.Random(42)
hostile = [
    ("random-binary", bytes(rng.getrandbits(8) for _ in range(4096))),
    ("png-header", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))),
    ("nul-everywhere", b"From: a@b.test\x00\r\nSubject: n\x00l\r\n\r\nbo\x00dy\r\n"),
    ("headers-only", b"From: x@y.test\r\nSubject: no body"),
    ("no-headers", b"\r\n\r\njust a body\r\n"),
    ("one-megabyte-line", b"Subject: long\r\n\r\n" + b"x" * (1 << 20)),
    ("header-64k", b"X-Long: " + b"a" * 65536 + b"\r\nFrom: l@long.test\r\nSubject: h\r\n\r\nb\r\n"),
    ("many-headers", b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\nbody\r\n"),
    ("deep-nesting", b"From: n@nest.test\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
     + b"".join(b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n" % (i, i) for i in range(200))
     + b"Content-Type: text/plain\r\n\r\ncore\r\n"),
    ("bad-charset", b"From: c@charset.test\r\nSubject: =?x-unknown?B?w6TDtg==?=\r\n"
     b"Content-Type: text/plain; charset=x-klingon\r\n\r\n\xff\xfe\xfd\r\n"),
    ("bad-base64", b"From: b@b64.test\r\nSubject: b64\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!***\r\n"),
    ("crlf-mixed", b"From: m@mixed.test\rSubject: cr only\r\n\n\rbody\n\r"),
]
inputs += hostile

for name, raw in inputs:
    for to in ("support@acme.test", "crm@acme.test"):
        rc, out, err = e.deliver(to, raw)
        t.ok(rc == 0, "%s to %s: exit 0" % (name, to), err)

msgs = e.json("message", "list")
t.eq(len(msgs), len(inputs), "every input stored exactly once")
by_size = {}
for m in msgs:
    by_size.setdefault(m["size"], []).append(m)
lost = 0
for name, raw in inputs:
    found = False
    for m in by_size.get(len(raw), []):
        got = subprocess.run([e.ctl_path, "-c", e.conf, "message", "show", str(m["id"]), "--raw"],
                             capture_output=True).stdout
        found = found or got == raw
    if not found:
        lost += 1
        t.diag("raw bytes not found back for %s" % name)
t.eq(lost, 0, "every input comes back byte for byte with message show --raw")

statuses = {m["parse_status"] for m in msgs}
t.ok(statuses <= {"ok", "degraded", "failed"}, "parse statuses are known: %s" % statuses)
t.ok("failed" in statuses or "degraded" in statuses, "broken input is marked, not hidden")
unexplained = [m["id"] for m in msgs if m["parse_status"] != "ok"
               and not e.json("message", "show", str(m["id"])).get("parse_problem")]
t.eq(unexplained, [], "every degraded or failed message says what went wrong")
rc, out, err = e.ctl("message", "list")
t.ok(rc == 0 and ("failed" in out or "degraded" in out), "message list shows the parse status")
