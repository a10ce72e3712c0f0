#!/usr/bin/env python3
# What mailroomctl prints for people shows control characters as text: a
# server's NO reason in last_error (mailbox status) and in mailbox test
# cannot retitle the terminal, clear it or write its clipboard (issue 20,
# item 14).  mailbox test warns of a password file others can read and of
# a password sent in clear to a host that is not loopback (item 15).  The
# database URI is printed with its password masked the way libpq reads it,
# percent-encoded keys included (item 16; PostgreSQL only).
# Runs on both engines (MR_TEST_DB).
import json
import os
import re
import socket
import sqlite3
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import PG, Tap, Env, pg_cluster, serve  # noqa: E402
from mrdaemon import Daemon  # noqa: E402

t = Tap()
section = t.section

HOSTILE = "NO \x1b]0;x\x07\x1b]52;c;eA==\x07\u009b2J\x1b[2J\r"
# what no text output may hold: ESC, BEL, CR, a C1 CSI (as UTF-8 or a byte)
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]")


def raw_controls(text):
    return sorted(set(RAW.findall(text)))


def set_last_error(e, name, text):
    """Puts @text into mailbox_state.last_error of mailbox @name."""
    sql = ("INSERT INTO mailbox_state (name, state, last_uid, backlog, last_error, updated)"
           " VALUES (%s, 'auth_failed', 0, 0, %s, '2026-12-07T00:00:00Z')")
    if PG:
        lit = lambda s: "'" + s.replace("'", "''") + "'"  # noqa: E731
        pg_cluster().psql(sql % (lit(name), lit(text)), db=e.db.rsplit("/", 1)[1])
    else:
        con = sqlite3.connect(e.db)
        with con:
            con.execute(sql % ("?", "?"), (name, text))
        con.close()


def imap_entry(name, port, pwfile, host="127.0.0.1", extra=""):
    return ('{ name = "%s"; host = "%s"; port = %d; tls = "none"; user = "u";'
            ' password_file = "%s"; role = "support"; %s }' % (name, host, port, pwfile, extra))


e = Env()
pwfile = os.path.join(e.dir, "pass")
with open(pwfile, "w") as f:
    f.write("pw\n")
os.chmod(pwfile, 0o600)

with section("mailbox status: a hostile last_error is shown, not sent to the terminal"):
    e.write_config("imap = ( %s );" % imap_entry("hostile", 9, pwfile))
    rc, out, err = e.ctl("init")
    t.eq(rc, 0, "init")
    set_last_error(e, "hostile", HOSTILE)
    rc, out, err = e.ctl("mailbox", "status")
    t.eq(rc, 0, "mailbox status exits 0")
    t.ok(raw_controls(out + err) == [], "no control character reaches the terminal", out)
    t.ok("\\x1b]0;x\\x07\\x1b]52;c;" in out,
         "ESC and BEL are shown as \\x1b and \\x07", out)
    t.ok("\\u009b2J" in out, "a C1 CSI is shown as \\u009b", out)
    st = e.json("mailbox", "status")
    t.eq(st[0]["last_error"], HOSTILE, "--json keeps the text as it is (escaped by JSON)")


def fake_server(greeting_caps, no_text):
    """A server on loopback that refuses every LOGIN with @no_text."""
    def serve_one(conn):
        f = conn.makefile("rb")
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 %s] fake ready\r\n" % greeting_caps)
        for line in f:
            m = re.match(rb"(\S+) (.*)\r\n", line)
            if not m:
                return
            tag, cmd = m.group(1), m.group(2).upper()
            if cmd.startswith(b"CAPABILITY"):
                conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
            elif cmd.startswith(b"LOGIN"):
                conn.sendall(tag + b" " + no_text + b"\r\n")
            elif cmd.startswith(b"LOGOUT"):
                conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
            else:
                conn.sendall(tag + b" BAD no\r\n")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    serve(listener, serve_one)
    return listener


with section("mailbox test: the server's refusal is shown, not sent to the terminal"):
    listener = fake_server(b"AUTH=PLAIN",
                           b"NO [AUTHENTICATIONFAILED] \x1b]0;owned\x07 \x1b[2J\x9b31m\xc2\x9b31m bad")
    port = listener.getsockname()[1]
    e.write_config("imap = ( %s );" % imap_entry("hostile", port, pwfile))
    rc, out, err = e.ctl("mailbox", "test", "hostile")
    t.eq(rc, 77, "a refused login: exit 77")
    t.ok("login refused" in err and "bad" in err, "the reason is printed", err)
    t.ok(raw_controls(out + err) == [], "no control character reaches the terminal", err)
    t.ok("\\x1b]0;owned\\x07" in err, "ESC and BEL are shown as \\x1b and \\x07", err)
    listener.close()


with section("mailbox test warns of a password file others can read, and of a password in clear"):
    listener = fake_server(b"AUTH=PLAIN", b"NO bad")
    port = listener.getsockname()[1]
    e.write_config("imap = ( %s );" % imap_entry("hostile", port, pwfile))
    rc, out, err = e.ctl("mailbox", "test", "hostile")
    t.ok("warning" not in err, "a 0600 password file to loopback: no warning", err)
    os.chmod(pwfile, 0o644)
    rc, out, err = e.ctl("mailbox", "test", "hostile")
    t.ok("warning: mailbox hostile: password_file %s is open to its group or others (mode 0644)"
         % pwfile in err, "a 0644 password file: a warning", err)
    os.chmod(pwfile, 0o600)
    # 0.0.0.0 is no loopback address (Linux connects it to this host):
    # nothing listens on port 9 there, so the test ends at once
    e.write_config("imap = ( %s );" % imap_entry("remote", 9, pwfile, host="0.0.0.0"))
    rc, out, err = e.ctl("mailbox", "test", "remote")
    t.ok('warning: mailbox remote: tls = "none" to 0.0.0.0, which is not loopback: the password'
         in err, "tls = none to a host that is not loopback: a warning", err)
    listener.close()

with section("mailroomd warns at start and at each reload"):
    d = Daemon('imap = ( %s );' % imap_entry("remote", 9, pwfile, host="0.0.0.0",
                                             extra="reconnect_max = 60;"))
    warning = 'mailbox remote: tls = "none" to 0.0.0.0, which is not loopback'
    t.ok(d.wait_for(warning, 10), "at start", d.log())
    mark = d.mark()
    os.chmod(pwfile, 0o640)
    d.reload()
    t.ok(d.wait_for(warning, 10, start=mark), "at the reload", d.log(mark))
    t.ok(d.wait_for("password_file %s is open to its group or others (mode 0640)" % pwfile, 10,
                    start=mark), "a password file made readable is told at the reload", d.log(mark))
    os.chmod(pwfile, 0o600)
    t.eq(d.stop(), 0, "mailroomd stops cleanly (exit 0)")

with section("the database URI is printed with its password masked as libpq reads it"):
    if not PG:
        t.ok(True, "# skip the URI masking needs PostgreSQL (MR_TEST_DB=postgresql)")
    else:
        pg_cluster().createdb("masked")
        # libpq decodes the key: pass%77ord is password (trust ignores it)
        for query in ("?pass%77ord=s3cret-pw", "?%70assword=s3cret-pw&sslmode=disable"):
            uri = pg_cluster().uri("masked") + query
            e.write_config(db=uri)
            j = e.json("init")
            t.ok("s3cret-pw" not in j["database"] and "=***" in j["database"],
                 "init --json with %s: masked" % query, j)
            rc, out, err = e.ctl("init")
            t.ok(rc == 0 and "s3cret-pw" not in out + err and "=***" in out,
                 "init with %s: masked" % query, out + err)
        d = Daemon("", env=e, start=False)
        e.write_config(d.config_text(""), db=uri)
        d.start()
        line = d.wait_for("listening", 10)
        t.ok(line and "s3cret-pw" not in d.log() and "=***" in line,
             "mailroomd's log: masked", d.log())
        t.eq(d.stop(), 0, "mailroomd stops cleanly (exit 0)")
        e.write_config()
