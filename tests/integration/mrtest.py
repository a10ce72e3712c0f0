"""mrtest - a small TAP harness for mailroom's integration tests.

Each test gets a temporary folder with its own configuration and SQLite
database, runs the real build/mailroomctl (MR_BUILD, default ./build) and
asserts on its exit codes and --json output.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import atexit
import contextlib
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MR_BUILD", os.path.join(ROOT, "build"))
DATA = os.path.join(ROOT, "tests", "data")

CONFIG = """
database = "{db}";
domains = [ "acme.test" ];
addresses = (
  {{ address = "crm@acme.test";     role = "bcc";     }},
  {{ address = "support@acme.test"; role = "support"; }},
  {{ address = "sales@acme.test";   role = "sales";   }}
);
ids = {{ opportunity_prefix = "OPP"; ticket_prefix = "TKT"; }};
freemail_domains = [ "freemail.test" ];
{extra}
"""


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0
        atexit.register(self._done)

    def ok(self, cond, name, diag=None, todo=None):
        """todo="reason": a known bug; a failure is reported "# TODO reason"
        and does not fail the file (a pass shows up as a bonus in prove)."""
        self.n += 1
        line = ("ok %d - %s" if cond else "not ok %d - %s") % (self.n, name)
        if todo:
            line += " # TODO %s" % todo
        print(line, flush=True)
        if not cond:
            if not todo:
                self.failed += 1
            if diag is not None:
                # On stderr, as Test::More does: prove shows it without -v,
                # so a failure in CI's log says why.  Long texts are cut.
                lines = str(diag).splitlines()
                out = sys.stdout if todo else sys.stderr
                for d in lines[:60]:
                    print("#   " + (d if len(d) <= 400 else d[:400] + "..."), file=out)
                if len(lines) > 60:
                    print("#   ... (%d more lines)" % (len(lines) - 60), file=out)
                out.flush()
        return cond

    def eq(self, got, want, name, todo=None):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want), todo=todo)

    @contextlib.contextmanager
    def section(self, name):
        """A section that raises (timeout, EOF) fails one test instead of the file."""
        try:
            yield
        except Exception:
            self.ok(False, "%s: ran to the end without an exception" % name, traceback.format_exc())

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line, flush=True)

    def _done(self):
        print("1..%d" % self.n, flush=True)
        if self.failed:
            os._exit(1)


class Env:
    """A temporary mailroom: config, database, and the CLI."""

    def __init__(self, extra=""):
        self.dir = tempfile.mkdtemp(prefix="mrtest-")
        atexit.register(shutil.rmtree, self.dir, True)
        self.db = os.path.join(self.dir, "var", "mailroom.db")
        self.conf = os.path.join(self.dir, "mailroom.conf")
        self.write_config(extra)
        self.ctl_path = os.path.join(BUILD, "mailroomctl")

    def write_config(self, extra="", db=None):
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(db=db or self.db, extra=extra))

    def ctl(self, *args, input=None):
        """Runs mailroomctl; returns (exit code, stdout, stderr)."""
        if isinstance(input, str):
            input = input.encode("utf-8")
        p = subprocess.run([self.ctl_path, "-c", self.conf] + list(args),
                           input=input, capture_output=True, timeout=120)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def json(self, *args):
        rc, out, err = self.ctl(*(list(args) + ["--json"]))
        if rc != 0:
            raise RuntimeError("mailroomctl %s failed (%d): %s" % (" ".join(args), rc, err))
        return json.loads(out)

    def deliver(self, to, raw, sender=None):
        args = ["deliver", "--to", to]
        if sender:
            args += ["--from", sender]
        return self.ctl(*args, input=raw)


def message(frm, to, subject, body="Hello.\n", cc=None, msgid=None, headers=None,
            date="Mon, 23 Nov 2026 10:00:00 +0000"):
    """Builds a small RFC 5322 message (str)."""
    lines = ["From: %s" % frm, "To: %s" % to]
    if cc:
        lines.append("Cc: %s" % cc)
    lines += ["Subject: %s" % subject, "Date: %s" % date]
    if msgid:
        lines.append("Message-ID: <%s>" % msgid)
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    # CR LF throughout, as SMTP clients send it: a body line that ends in a
    # bare LF before the final "." would not end the data (65-smuggling.t).
    body = body.replace("\r\n", "\n").replace("\n", "\r\n")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body]
    return "\r\n".join(lines)
