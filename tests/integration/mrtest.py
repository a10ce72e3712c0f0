"""mrtest - a small TAP harness for mailroom's integration tests.

Each test gets a temporary folder with its own configuration and database,
runs the real build/mailroomctl (MR_BUILD, default ./build) and asserts on
its exit codes and --json output.

MR_TEST_DB selects the storage engine: "sqlite" (the default: a file in the
folder) or "postgresql" (a database of its own in a private cluster on
127.0.0.1 that the test process starts once, tests/integration/mrpg.py).
Env.query() reads the database whatever the engine.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import atexit
import contextlib
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MR_BUILD", os.path.join(ROOT, "build"))
DATA = os.path.join(ROOT, "tests", "data")
ENGINE = os.environ.get("MR_TEST_DB", "sqlite")
PG = ENGINE == "postgresql"
if ENGINE not in ("sqlite", "postgresql"):
    raise SystemExit("MR_TEST_DB must be sqlite or postgresql, not %r" % ENGINE)

_cluster = None
_databases = 0


def pg_cluster():
    """The private PostgreSQL cluster of this test process (started once)."""
    global _cluster
    if _cluster is None:
        import mrpg
        _cluster = mrpg.PgCluster.start()
    return _cluster


def skip_unless_sqlite(why):
    """Ends a test that only makes sense on SQLite with a TAP skip."""
    if PG:
        print("1..0 # SKIP %s (SQLite only)" % why)
        sys.exit(0)

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

    def eq(self, got, want, name, diag=None, todo=None):
        """@diag (a command's stderr, say) is shown after got and want on a
        failure.  (It used to be @todo: a fourth argument given as a
        diagnostic turned a failure into a TODO that passed.)"""
        text = "got:  %r\nwant: %r" % (got, want)
        if diag is not None:
            text += "\n%s" % diag
        return self.ok(got == want, name, text, todo=todo)

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
        global _databases
        self.dir = tempfile.mkdtemp(prefix="mrtest-")
        atexit.register(shutil.rmtree, self.dir, True)
        if PG:
            _databases += 1
            name = "mailroom_%d" % _databases
            pg_cluster().createdb(name)
            self.db = pg_cluster().uri(name)
        else:
            self.db = os.path.join(self.dir, "var", "mailroom.db")
        self.conf = os.path.join(self.dir, "mailroom.conf")
        self.write_config(extra)
        self.ctl_path = os.path.join(BUILD, "mailroomctl")

    def write_config(self, extra="", db=None):
        # The ticket acknowledgement (on by default) stores an outgoing
        # message per ticket: only the tests of outgoing mail want it.
        if not re.search(r"(?m)^\s*ack\s*[=:]", extra):
            extra = "ack = { enabled = false; };\n" + extra
        if PG and "spool_directory" not in extra:
            extra = 'spool_directory = "%s";\n' % os.path.join(self.dir, "spool") + extra
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(db=db or self.db, extra=extra))

    def query(self, sql, args=()):
        """Rows of @sql (? placeholders) on the database, read only, as
        tuples of Python values (bytes for blobs, on either engine)."""
        if PG:
            return _pg_query(self.db, sql, args)
        import sqlite3
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=30)
        try:
            return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in con.execute(sql, args)]
        finally:
            con.close()

    def execute(self, sql, args=()):
        """Runs @sql (? placeholders), one statement that writes, on the
        database: for a test to set up what no command makes."""
        if PG:
            parts = sql.split("?")
            if len(parts) - 1 != len(args):
                raise ValueError("%d placeholders, %d arguments" % (len(parts) - 1, len(args)))
            text = parts[0] + "".join(_pg_literal(a) + p for a, p in zip(args, parts[1:]))
            pg_cluster().psql(text, db=self.db.rsplit("/", 1)[1])
            return
        import sqlite3
        con = sqlite3.connect(self.db, timeout=30)
        try:
            with con:
                con.execute(sql, args)
        finally:
            con.close()

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


def _pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def _pg_query(uri, sql, args):
    """@sql with ? placeholders through psql; each value comes back as
    text (NULL as None; bytea as bytes; integers as int)."""
    import json as _json
    parts = sql.split("?")
    if len(parts) - 1 != len(args):
        raise ValueError("%d placeholders, %d arguments" % (len(parts) - 1, len(args)))
    text = parts[0] + "".join(_pg_literal(a) + p for a, p in zip(args, parts[1:]))
    # Each row as a JSON object in column order: types survive (numbers,
    # null), bytea comes as "\\x..." hex text.  Give result columns
    # distinct names.
    wrapped = "SELECT row_to_json(q) FROM (%s) q" % text
    cluster = pg_cluster()
    out = cluster.psql(wrapped, db=uri.rsplit("/", 1)[1])
    rows = []
    for line in out.splitlines():
        if not line.strip():
            continue
        row = []
        for v in _json.loads(line).values():
            if isinstance(v, str) and v.startswith("\\x"):
                row.append(bytes.fromhex(v[2:]))
            else:
                row.append(v)
        rows.append(tuple(row))
    return rows


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


def wait_until(check, timeout=30):
    """Calls @check every 0.1 s until it returns something true (returned)
    or @timeout seconds pass (then its last answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.1)
    return check()


def serve(listener, handler):
    """A fake server of a test's own: accepts on @listener (a listening
    socket) in a thread until it is closed, and runs handler(conn) for each
    connection in a thread of its own, closing it afterwards."""
    def one(conn):
        try:
            handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def loop():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def imap_uid_set(text, uids):
    """For a fake IMAP server of a test: the UIDs among @uids (those that
    exist) that the IMAP set @text names ("1:3", "1,3", "2:*"; "n:*" names
    the last message even when its UID is below n), sorted."""
    last = max(uids) if uids else 0
    out = set()
    for part in text.split(","):
        a, _, b = part.partition(":")
        hi = last if b == "*" else int(b or a)
        out.update(u for u in uids if int(a) <= u <= hi or (b == "*" and u == last))
    return sorted(out)
