#!/usr/bin/env python3
# The IMAP door against a real Dovecot (tests/integration/mrdovecot.py):
# a backlog stored once each; new mail while mailroomd sits in IDLE; each
# after action (seen, move, delete); a restart resumes where it stopped
# without storing anything twice; mailroomctl mailbox status.
# Runs on both engines (MR_TEST_DB).
import imaplib
import json
import os
import signal
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mrdovecot  # noqa: E402

if not mrdovecot.available():
    print("1..0 # SKIP %s" % mrdovecot.unavailable_reason())
    sys.exit(0)

from mrtest import PG, Tap, message, pg_cluster, wait_until  # noqa: E402 - after the skip: Tap prints a plan at exit
from mrdaemon import Daemon  # noqa: E402

t = Tap()
section = t.section
BACKLOG = int(os.environ.get("MR_IMAP_BACKLOG", "300"))

dc = mrdovecot.DovecotServer.start(users=4)


def imap_entry(name, user, after="seen", extra=""):
    pwfile = os.path.join(dc.dir, "%s.pass" % name)
    with open(pwfile, "w") as f:
        f.write(dc.password(user) + "\n")
    return ('{ name = "%s"; host = "127.0.0.1"; port = %d; tls = "none"; user = "%s";'
            ' password_file = "%s"; role = "support"; after = "%s"; reconnect_max = 2; %s }'
            % (name, dc.port, user, pwfile, after, extra))


def config(*entries):
    return "imap = (\n  %s\n);\n" % ",\n  ".join(entries)


def mail(i, frm="customer%d@client.test", subject="Problem %d"):
    return message(frm % (i % 7), "support@acme.test", subject % i,
                   msgid="<imap-%d-%f@client.test>" % (i, time.time())).encode()


def token_script(directory, tokens):
    """A token command: prints the first of @tokens, the next one next time."""
    tokfile = os.path.join(directory, "tokens")
    script = os.path.join(directory, "get-token")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nn=$(cat %s.n 2>/dev/null || echo 0); echo $((n + 1)) > %s.n\n"
                "sed -n \"$((n + 1))p\" %s\n" % (tokfile, tokfile, tokfile))
    os.chmod(script, 0o755)
    with open(tokfile, "w") as f:
        f.write("".join(tok + "\n" for tok in tokens))
    return script


def stored(d):
    return d.env.query("SELECT count(*) FROM message")[0][0]


def deliveries(d, name):
    return d.env.query("SELECT count(*) FROM delivery WHERE recipient = ?", ("imap:" + name,))[0][0]


def quarantined(d, uid):
    return [q for q in d.env.json("message", "list", "--quarantined") if q["uid"] == uid]


with section("a backlog is stored once each, then flagged \\Seen"):
    uids = dc.append_many("user1", "INBOX", [mail(i) for i in range(BACKLOG)])
    d = Daemon(config(imap_entry("support", "user1")))
    t0 = time.monotonic()
    n = wait_until(lambda: deliveries(d, "support") >= BACKLOG and
                   d.env.query("SELECT last_uid FROM mailbox_state")[0][0] == uids[-1], 60)
    took = time.monotonic() - t0
    t.eq(deliveries(d, "support"), BACKLOG, "%d messages stored (%.1f s)" % (BACKLOG, took))
    t.eq(stored(d), BACKLOG, "each once")
    t.ok(all("\\Seen" in dc.flags("user1", "INBOX", u) for u in uids[:5] + uids[-5:]),
         "and flagged \\Seen on the server")
    st = d.env.json("mailbox", "status")
    t.ok(len(st) == 1 and st[0]["name"] == "support" and st[0]["last_uid"] == uids[-1]
         and st[0]["backlog"] == 0, "mailbox status: last_uid and backlog 0", st)
    tickets = d.env.json("ticket", "list")
    t.eq(len(tickets), BACKLOG, "each new support mail made its ticket")

with section("new mail while mailroomd is in IDLE"):
    t.ok(wait_until(lambda: d.env.json("mailbox", "status")[0]["state"] == "idle", 10),
         "state idle", d.env.json("mailbox", "status"))
    latencies = []
    for i in range(5):
        before = deliveries(d, "support")
        t0 = time.monotonic()
        dc.append("user1", "INBOX", mail(1000 + i))
        wait_until(lambda: deliveries(d, "support") > before, 10)
        latencies.append(time.monotonic() - t0)
    t.eq(deliveries(d, "support"), BACKLOG + 5, "5 new messages stored")
    latencies.sort()
    t.ok(latencies[-1] < 5, "each within 5 s of its APPEND (median %.2f s, max %.2f s)"
         % (latencies[2], latencies[-1]))

with section("a restart resumes where it stopped: nothing twice"):
    t.eq(d.stop(), 0, "mailroomd stops (exit 0)")
    st = d.env.query("SELECT state FROM mailbox_state WHERE name = 'support'")
    t.eq(st, [("stopped",)], "state stopped")
    dc.append("user1", "INBOX", mail(2000))
    d.start()
    wait_until(lambda: deliveries(d, "support") == BACKLOG + 6, 20)
    t.eq(deliveries(d, "support"), BACKLOG + 6, "the one new message is stored")
    t.eq(stored(d), BACKLOG + 6, "nothing else again")

with section("UIDVALIDITY changes: the folder is read again, nothing stored twice"):
    before = deliveries(d, "support")
    old = d.env.query("SELECT uidvalidity FROM mailbox_state WHERE name = 'support'")[0][0]
    dc.change_uidvalidity("user1", "INBOX")
    dc.append("user1", "INBOX", mail(2500))     # wakes the IDLE; the session ends with BYE
    t.ok(wait_until(lambda: d.env.query(
        "SELECT uidvalidity, backlog FROM mailbox_state WHERE name = 'support'")[0][0] != old
        and deliveries(d, "support") == before + 1, 20),
         "the new UIDVALIDITY is taken and the new message stored",
         d.env.json("mailbox", "status"))
    t.eq(stored(d), before + 1, "every older message was found stored: none twice")
    t.ok(d.wait_for("UIDVALIDITY changed", 10) is not None, "the log says why the folder is read again")

with section("after = move and delete"):
    uids2 = dc.append_many("user2", "INBOX", [mail(i, subject="Move %d") for i in range(20)])
    uids3 = dc.append_many("user3", "INBOX", [mail(i, subject="Delete %d") for i in range(20)])
    d.write_config(config(imap_entry("support", "user1"),
                          imap_entry("moved", "user2", "move:Processed/mailroom"),
                          imap_entry("deleted", "user3", "delete")))
    d.reload()
    wait_until(lambda: deliveries(d, "moved") == 20 and
               deliveries(d, "deleted") == 20 and dc.count("user2", "INBOX") == 0 and
               dc.count("user3", "INBOX") == 0, 30)
    t.eq(deliveries(d, "moved"), 20, "moved: 20 stored")
    t.eq((dc.count("user2", "INBOX"), dc.count("user2", "Processed/mailroom")), (0, 20),
         "and moved to a folder made for them")
    t.eq(deliveries(d, "deleted"), 20, "deleted: 20 stored")
    t.eq(dc.count("user3", "INBOX"), 0, "and gone from the server")
    st = {m["name"]: m for m in d.env.json("mailbox", "status")}
    t.eq(sorted(st), ["deleted", "moved", "support"], "status lists the three mailboxes")

with section("TLS: implicit and STARTTLS with the test's CA; refused without it"):
    def tls_entry(name, user, tls, port, ca=True):
        e = imap_entry(name, user)
        e = e.replace('port = %d; tls = "none";' % dc.port, 'port = %d; tls = "%s";' % (port, tls))
        if ca:   # (the other name: no TLS session of a trusting mailbox to resume)
            e = e.replace('host = "127.0.0.1"', 'host = "localhost"')
            e = e[:-1] + 'tls_ca_file = "%s"; }' % dc.ca_file
        return e
    for u in ("user2", "user3"):
        dc.append("user2" if u == "user2" else "user3", "INBOX", mail(4000, subject="TLS " + u + " %d"))
    d.write_config(config(imap_entry("support", "user1"),
                          tls_entry("implicit", "user2", "implicit", dc.imaps_port),
                          tls_entry("starttls", "user3", "starttls", dc.port),
                          tls_entry("noca", "user4", "implicit", dc.imaps_port, ca=False)))
    d.reload()
    st = wait_until(lambda: {m["name"]: m for m in d.env.json("mailbox", "status")
                                    if m["state"] in ("idle", "backoff")}
                    if len([m for m in d.env.json("mailbox", "status")
                            if m["state"] in ("idle", "backoff")]) == 4 else None, 20) or {}
    t.eq(st.get("implicit", {}).get("state"), "idle", "implicit TLS with tls_ca_file: idle")
    t.eq(st.get("starttls", {}).get("state"), "idle", "STARTTLS with tls_ca_file: idle")
    t.ok(deliveries(d, "implicit") >= 1 and deliveries(d, "starttls") >= 1,
         "both fetched their mail")
    noca = st.get("noca", {})
    t.ok(noca.get("state") == "backoff" and "unknown CA" in (noca.get("last_error") or ""),
         "without tls_ca_file: refused, the certificate is signed by an unknown CA", noca)
    gone = dict(d.env.query("SELECT name, state FROM mailbox_state"
                            " WHERE name IN ('moved', 'deleted')"))
    t.eq(gone, {"moved": "stopped", "deleted": "stopped"},
         "the mailboxes the reload removed stopped")
    t.ok(d.wait_for("mailbox moved: removed from the configuration: stopping", 10) is not None,
         "with a log line that says why")

with section("XOAUTH2: a token from token_command; an expired one is asked again"):
    script = token_script(dc.dir, ["tok-expired", "tok-good", "tok-good", "tok-good"])
    dc.oauth_tokens["tok-good"] = "user4"
    dc.oauth_tokens["tok-expired"] = "user4"
    dc.expire_token("tok-expired")
    dc.append("user4", "INBOX", mail(5000, subject="OAuth %d"))
    oauth = ('{ name = "oauth"; host = "127.0.0.1"; port = %d; tls = "none"; user = "user4";'
             ' auth = "xoauth2"; token_command = "%s \'an argument\'"; role = "support";'
             ' reconnect_max = 2; }' % (dc.port, script))
    d.write_config(config(imap_entry("support", "user1"), oauth))
    d.reload()
    t.ok(wait_until(lambda: deliveries(d, "oauth") == 1, 20),
         "logged in with XOAUTH2 and fetched", d.env.json("mailbox", "status"))
    t.ok(len(dc.introspections("tok-expired")) >= 1 and len(dc.introspections("tok-good")) >= 1,
         "the expired token was refused and the command asked again at once")
    t.ok("tok-good" not in d.log() and "tok-expired" not in d.log(), "tokens are never logged")

with section("Dovecot restarted mid-run: mailroomd reconnects and goes on"):
    dc.restart()
    before = deliveries(d, "support")
    dc.append("user1", "INBOX", mail(6000))
    t.ok(wait_until(lambda: deliveries(d, "support") == before + 1, 20),
         "the next mail after the restart is stored", d.env.json("mailbox", "status"))

with section("a message over limits.max_message_size: quarantined, then retried"):
    big = mail(7000, subject="Big %d") + b"x" * 4096 * 1024
    d.write_config(config(imap_entry("support", "user1")) +
                   "limits = { max_message_size = 1048576; };\n")
    d.reload()   # the mailbox entry is the same: it takes the new limit between batches
    time.sleep(0.5)
    before = deliveries(d, "support")
    uid_big = dc.append("user1", "INBOX", big)
    dc.append("user1", "INBOX", mail(7001))
    t.ok(wait_until(lambda: deliveries(d, "support") == before + 1, 20),
         "the next message is stored")
    q = d.env.json("message", "list", "--quarantined")
    t.ok(len(q) == 1 and q[0]["mailbox"] == "support" and q[0]["uid"] == uid_big and
         q[0]["size"] == len(big) and "max_message_size" in q[0]["reason"] and
         "left on the server" in q[0]["reason"],
         "the big one is in the quarantine: its size, its first bytes", q)
    t.ok("\\Seen" not in dc.flags("user1", "INBOX", uid_big),
         "and it is left on the server as it was (no after action)")
    rc, out, err = d.env.ctl("message", "retry", str(q[0]["id"]))
    t.ok(rc == 65 and "incomplete" in err, "retry refuses an incomplete copy", err)
    d.write_config(config(imap_entry("support", "user1")))
    d.reload()
    # what the user does: moves it out of the folder and back (a new UID)
    dc.append("user1", "INBOX", big)
    t.ok(wait_until(lambda: deliveries(d, "support") == before + 2, 20),
         "after the limit is raised, the message put back in the folder is stored")

with section("a message that fails twice: quarantined, the next ones go on"):
    if PG:
        pg_cluster().psql(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.subject = 'Poison pill' THEN RAISE EXCEPTION 'poisoned'; END IF;"
            " RETURN NEW; END $$;"
            "CREATE TRIGGER poison BEFORE INSERT ON message FOR EACH ROW EXECUTE FUNCTION poison();",
            db=d.env.db.rsplit("/", 1)[1])
    else:
        import sqlite3
        con = sqlite3.connect(d.env.db)
        con.execute("CREATE TRIGGER poison BEFORE INSERT ON message WHEN NEW.subject = 'Poison pill'"
                    " BEGIN SELECT RAISE(ABORT, 'poisoned'); END")
        con.commit()
        con.close()
    before = deliveries(d, "support")
    # in the first of several batches: the next batch is in the writer's
    # hands when the poisoned one fails, and is fetched again
    dc.append_many("user1", "INBOX", [mail(i, subject="Before %d") for i in range(8000, 8010)])
    uid_p = dc.append("user1", "INBOX", message("eve@client.test", "support@acme.test",
                                                "Poison pill", msgid="<poison@client.test>").encode())
    dc.append_many("user1", "INBOX", [mail(i, subject="After %d") for i in range(8010, 8450)])
    t.ok(wait_until(lambda: deliveries(d, "support") == before + 450 and
                    quarantined(d, uid_p), 30),
         "the messages around it are stored", d.env.json("mailbox", "status"))
    time.sleep(0.5)
    t.eq(deliveries(d, "support"), before + 450, "each once")
    q = quarantined(d, uid_p)
    t.ok(len(q) == 1 and q[0]["uid"] == uid_p and "poisoned" in q[0]["reason"],
         "the failing one is in the quarantine with the reason", q)
    t.ok("\\Seen" in dc.flags("user1", "INBOX", uid_p), "and got its after action")
    if PG:
        pg_cluster().psql("DROP TRIGGER poison ON message", db=d.env.db.rsplit("/", 1)[1])
    else:
        con = sqlite3.connect(d.env.db)
        con.execute("DROP TRIGGER poison")
        con.commit()
        con.close()
    rc, out, err = d.env.ctl("message", "retry", str(q[0]["id"]))
    t.ok(rc == 0 and deliveries(d, "support") == before + 451 and
         quarantined(d, uid_p) == [],
         "once the cause is gone, retry stores it", (rc, out, err))

with section("a wrong password: auth_failed, the others go on"):
    bad = imap_entry("bad", "user4")
    with open(os.path.join(dc.dir, "bad.pass"), "w") as f:
        f.write("wrong\n")
    d.write_config(config(imap_entry("support", "user1"), bad))
    d.reload()
    st = wait_until(lambda: [m for m in d.env.json("mailbox", "status")
                                            if m["name"] == "bad" and m["state"] == "auth_failed"],
                    15)
    t.ok(st and st[0]["last_error"] and "wrong" not in st[0]["last_error"],
         "state auth_failed with the server's reason (no password in it)", st)
    before = deliveries(d, "support")
    dc.append("user1", "INBOX", mail(3000))
    t.ok(wait_until(lambda: deliveries(d, "support") == before + 1, 10),
         "the other mailbox still takes mail")
    t.eq(d.stop(), 0, "exit 0")
    t.ok("wrong" not in d.log(), "the password is never logged")

with section("mailroomctl mailbox test: a login, nothing fetched"):
    n_before = dc.count("user1", "INBOX")
    rc, out, err = d.env.ctl("mailbox", "test", "support", "--json")
    j = json.loads(out) if rc == 0 else {}
    t.ok(rc == 0 and "IDLE" in j.get("capabilities", []) and j.get("exists") == n_before and
         j.get("uidvalidity", 0) > 0, "support: logged in, capabilities and the folder's count",
         (rc, out, err))
    rc, out, err = d.env.ctl("mailbox", "test", "support")
    t.ok(rc == 0 and "logged in to 127.0.0.1" in out and "messages" in out,
         "the same for people", out)
    rc, out, err = d.env.ctl("mailbox", "test", "bad")
    t.ok(rc == 77 and "refused" in err and "wrong" not in err + out,
         "a wrong password: exit 77 with the server's reason", (rc, err))
    rc, out, err = d.env.ctl("mailbox", "test", "nosuch")
    t.eq(rc, 67, "an unknown mailbox: exit 67")
    t.eq(dc.count("user1", "INBOX"), n_before, "nothing was fetched or moved")

with section("no IDLE on the server: polling"):
    dc2 = mrdovecot.DovecotServer.start(users=1, capabilities_off=("IDLE",))
    pw = os.path.join(dc2.dir, "p.pass")
    with open(pw, "w") as f:
        f.write(dc2.password("user1") + "\n")
    entry = ('{ name = "polled"; host = "127.0.0.1"; port = %d; tls = "none"; user = "user1";'
             ' password_file = "%s"; role = "bcc"; poll_interval = 1; }' % (dc2.port, pw))
    d = Daemon(config(entry))
    t.ok(wait_until(lambda: d.env.json("mailbox", "status")[0]["state"] == "polling",
                    10), "state polling", d.env.json("mailbox", "status"))
    dc2.append("user1", "INBOX", message("alice@acme.test", "bob@customer.test", "Offer").encode())
    t.ok(wait_until(lambda: deliveries(d, "polled") == 1, 10),
         "new mail is stored at the next poll")
    t.eq(d.stop(), 0, "exit 0")
    dc2.stop()

with section("OAUTHBEARER when the server offers no XOAUTH2; an expired token is asked again"):
    dc3 = mrdovecot.DovecotServer.start(
        users=1, extra_config="auth_mechanisms = plain login oauthbearer\n")
    script = token_script(dc3.dir, ["bearer-old", "bearer-good", "bearer-good", "bearer-good"])
    dc3.oauth_tokens["bearer-good"] = "user1"
    dc3.oauth_tokens["bearer-old"] = "user1"
    dc3.expire_token("bearer-old")
    dc3.append("user1", "INBOX", mail(8000, subject="Bearer %d"))
    entry = ('{ name = "bearer"; host = "127.0.0.1"; port = %d; tls = "none"; user = "user1";'
             ' auth = "xoauth2"; token_command = "%s"; role = "support"; reconnect_max = 2; }'
             % (dc3.port, script))
    d = Daemon(config(entry))
    t.ok(wait_until(lambda: deliveries(d, "bearer") == 1, 20),
         "logged in with OAUTHBEARER and fetched", d.env.json("mailbox", "status"))
    t.ok(len(dc3.introspections("bearer-old")) == 1 and len(dc3.introspections("bearer-good")) >= 1,
         "the expired token was refused and the command asked again at once",
         dc3.introspections())
    t.ok("bearer-good" not in d.log() and "bearer-old" not in d.log(), "tokens are never logged")
    t.eq(d.stop(), 0, "exit 0")
    dc3.stop()

with section("Dovecot killed and started again mid-fetch: every message once"):
    dc.add_user("drained")
    total = 1200
    dc.append_many("drained", "INBOX", [mail(i, subject="Drain %d") for i in range(total)])
    d = Daemon(config(imap_entry("drain", "drained", "move:Done")))
    wait_until(lambda: deliveries(d, "drain") > 100, 30)
    # mailroomd held while Dovecot dies: on a loaded machine the kill
    # took long enough for it to drain the folder meanwhile (seen twice)
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        dc.kill()
        got = deliveries(d, "drain")
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    time.sleep(0.5)
    dc.start()
    t.ok(0 < got < total, "Dovecot killed after %d of %d were stored" % (got, total))

    def drained():
        try:
            return deliveries(d, "drain") == total and dc.count("drained", "INBOX") == 0
        except (OSError, EOFError, imaplib.IMAP4.error):   # see below
            return False

    def dovecot_answers():
        """Whether a fresh client of the restarted Dovecot gets its
        answer to SELECT in 5 s."""
        try:
            M = dc.login("drained", timeout=5)
            try:
                M.select("INBOX", readonly=True)
            finally:
                mrdovecot._close(M)
            return True
        except (OSError, EOFError, imaplib.IMAP4.error):
            return False
    done = wait_until(drained, 60)
    if not done and not dovecot_answers():
        # Seen on loaded machines (3 runs in about 20 of a busy check):
        # the restarted Dovecot answered no command on this mailbox, to
        # mailroomd or to a client of the test's own, for minutes; the
        # server's trouble, not mailroomd's.  Kill it once more, as an
        # administrator would: mailroomd reconnects again.
        t.diag("the restarted Dovecot answers nothing on the mailbox: killed and started"
               " once more; what it logged: %s" % dc.log()[-1500:])
        dc.kill()
        time.sleep(0.5)
        dc.start()
        done = wait_until(drained, 60)
    t.ok(done, "mailroomd reconnects and stores the rest",
         [d.env.json("mailbox", "status"), dc.log()[-3000:], d.log()[-2000:]])
    # Dovecot's MOVE is a copy and an expunge: a kill between the two
    # leaves the copy in Done and the message in INBOX, where mailroomd
    # finds it stored already and moves it again.  Every message reaches
    # Done; a copy more is the server's, at most one batch of them.
    with dc.imap("drained") as M:
        M.select("Done", readonly=True)
        typ, data = M.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        ids = [part[1] for part in data if isinstance(part, tuple)]
    t.ok(len(set(ids)) == total and len(ids) <= total + 200,
         "each moved: %d distinct of %d in Done" % (len(set(ids)), len(ids)))
    t.eq(stored(d), total, "each stored once")
    t.eq(d.stop(), 0, "exit 0")

with section("the same message in two mailboxes (Gmail labels): once, one ticket, both acted on"):
    dc.add_user("label1")
    dc.add_user("label2")
    same = mail(9000, subject="Labelled %d")
    u1 = dc.append("label1", "INBOX", same)
    u2 = dc.append("label2", "INBOX", same)
    d = Daemon(config(imap_entry("label1", "label1"), imap_entry("label2", "label2")))
    t.ok(wait_until(lambda: "\\Seen" in dc.flags("label1", "INBOX", u1) and
                    "\\Seen" in dc.flags("label2", "INBOX", u2), 20),
         "both copies got their after action")
    t.eq(stored(d), 1, "the message is stored once")
    t.eq(len(d.env.json("ticket", "list")), 1, "and made one ticket, not two")
    t.eq(d.stop(), 0, "exit 0")

with section("SIGKILL of mailroomd mid-drain: after the restart, every message once"):
    total = 1500
    dc.add_user("crasher")
    uids = dc.append_many("crasher", "INBOX", [mail(i, subject="Crash %d") for i in range(total)])
    d = Daemon(config(imap_entry("crash", "crasher", "move:Done")))
    wait_until(lambda: deliveries(d, "crash") > 100, 30)
    d.kill()
    got = deliveries(d, "crash")
    t.ok(0 < got < total, "killed after %d of %d were stored" % (got, total))
    d.start()
    t.ok(wait_until(lambda: deliveries(d, "crash") == total and
                    dc.count("crasher", "INBOX") == 0, 60),
         "after the restart all %d are stored" % total, deliveries(d, "crash"))
    dups = d.env.query("SELECT count(*) FROM (SELECT content_key FROM message"
                       " GROUP BY content_key HAVING count(*) > 1) x")[0][0]
    t.eq(dups, 0, "none twice")
    t.eq(dc.count("crasher", "Done"), total, "and every one was moved exactly once")
    t.eq(d.stop(), 0, "exit 0")

