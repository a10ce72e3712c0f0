#!/usr/bin/env python3
"""bench-corpus - `make bench`: how fast mailroom stores the SpamAssassin
corpus through the pipe door, durably (synchronous=full).

Prints messages/s for batch mode (one process, many files) and for one
process per message.  Figures, not a test: nothing here passes or fails.

The corpus is what `make deps` (tools/deps.sh) installs into tests/corpus
(MR_CORPUS: another folder).  Without it the bench says so and exits 1;
`--check` only checks that it is there (make bench does that first, so as
not to find out after the SMTP bench).
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from mrtest import Env, ROOT  # noqa: E402

corpus = os.environ.get("MR_CORPUS") or os.path.join(ROOT, "tests", "corpus")
data = os.path.join(corpus, "node_modules", "@stdlib", "datasets-spam-assassin", "data")
try:
    with open(os.path.join(data, "file_list.json")) as f:
        files = [os.path.join(data, name) for name in json.load(f)]
    size = sum(os.path.getsize(f) for f in files)
except (OSError, ValueError) as e:
    sys.exit("bench-corpus: the SpamAssassin corpus is missing or incomplete in %s (%s): "
             "run make deps" % (corpus, getattr(e, "strerror", None) or e))
if not files:
    sys.exit("bench-corpus: the corpus in %s lists no messages: run make deps" % corpus)
if sys.argv[1:] == ["--check"]:
    sys.exit(0)
print("corpus: %d messages, %.1f MB" % (len(files), size / 1e6))

for role in ("crm@acme.test", "support@acme.test"):
    e = Env()
    e.ctl("init")
    start = time.monotonic()
    for i in range(0, len(files), 1000):
        e.ctl("deliver", "--to", role, *files[i:i + 1000])
    t = time.monotonic() - start
    n = len(e.json("message", "list"))
    print("batch, to %-18s %5d stored in %6.2f s = %6.0f messages/s" % (role, n, t, len(files) / t))

e = Env()
e.ctl("init")
start = time.monotonic()
for f in files:
    with open(f, "rb") as fh:
        subprocess.run([e.ctl_path, "-c", e.conf, "deliver", "--to", "support@acme.test"],
                       stdin=fh, capture_output=True)
t = time.monotonic() - start
n = len(e.json("message", "list"))
print("one process per message, to support@  %5d stored in %6.2f s = %6.0f messages/s" % (n, t, len(files) / t))
