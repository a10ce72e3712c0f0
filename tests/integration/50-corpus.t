#!/usr/bin/env python3
# The SpamAssassin public corpus (installed by `make deps`): every message is
# delivered without a crash, and the count of stored messages matches the
# count of distinct messages.  Batch mode (many files, one process) and one
# process per message.  MR_CORPUS_SAMPLE=N delivers only every N-th message
# in the one-process-per-message mode (the sanitizer run uses it), and
# MR_CORPUS_BATCH_SAMPLE=N in batch mode (the sanitizer run on PostgreSQL:
# the parse of every message is checked under the sanitizers on SQLite).
import hashlib
import json
import os
import subprocess
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env, ROOT

t = Tap()
data = os.path.join(ROOT, "tests", "corpus", "node_modules", "@stdlib",
                    "datasets-spam-assassin", "data")
listing = os.path.join(data, "file_list.json")
if not os.path.exists(listing):
    print("1..0 # SKIP corpus not installed: run make deps")
    os._exit(0)
files = [os.path.join(data, f) for f in json.load(open(listing))]
t.ok(len(files) > 5500, "corpus has %d messages" % len(files))


def content_key(path):
    raw = open(path, "rb").read()
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        raw = raw[nl + 1:] if nl >= 0 else b""
    return hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()


batch_sample = int(os.environ.get("MR_CORPUS_BATCH_SAMPLE", "1"))
files = files[::batch_sample]
distinct = len({content_key(f) for f in files})

# --- batch mode: one process, every file -------------------------------------
e = Env()
e.ctl("init")
start = time.monotonic()
failed = []
for i in range(0, len(files), 1000):
    chunk = files[i:i + 1000]
    rc, out, err = e.ctl("deliver", "--to", "support@acme.test", "--json", *chunk)
    if rc != 0:
        failed.append((i, rc, err[-500:]))
elapsed = time.monotonic() - start
t.ok(not failed, "batch: every corpus message delivered", failed[:3])
count = len(e.json("message", "list"))
t.eq(count, distinct, "batch: stored messages = distinct messages (%d)" % distinct)
t.diag("batch mode: %d messages in %.1f s = %.0f messages/s (synchronous=full)"
       % (len(files), elapsed, len(files) / elapsed))
tickets = len(e.json("ticket", "list"))
t.ok(0 < tickets < distinct, "batch: tickets for mail by people, none for bulk/auto (%d)" % tickets)
msgs = e.json("message", "list")
degraded = [m for m in msgs if m["parse_status"] != "ok"]
t.diag("parse status not ok: %d" % len(degraded))
rc, out, err = e.ctl("deliver", "--to", "support@acme.test", *files[:200])
t.eq(len(e.json("message", "list")), distinct, "batch: delivering again stores nothing new")

# --- one process per message ------------------------------------------------------
sample = int(os.environ.get("MR_CORPUS_SAMPLE", "1"))
subset = files[::sample]
e2 = Env()
e2.ctl("init")
start = time.monotonic()
bad = []
for f in subset:
    with open(f, "rb") as fh:
        p = subprocess.run([e2.ctl_path, "-c", e2.conf, "deliver", "--to", "sales@acme.test"],
                           stdin=fh, capture_output=True)
    if p.returncode != 0:
        bad.append((f, p.returncode, p.stderr[-300:]))
elapsed = time.monotonic() - start
t.ok(not bad, "per process: %d messages delivered, every exit 0" % len(subset), bad[:3])
want = len({content_key(f) for f in subset})
t.eq(len(e2.json("message", "list")), want, "per process: stored = distinct (%d)" % want)
t.diag("one process per message: %d messages in %.1f s = %.0f messages/s"
       % (len(subset), elapsed, len(subset) / elapsed))
leads = e2.json("inbox", "list")
t.ok(len(leads) > 0, "per process: inbox leads from unknown senders (%d)" % len(leads))
