#!/usr/bin/env python3
# Outgoing mail (issue 23) against a real SMTP relay (aiosmtpd, mrrelay.py):
# the ticket acknowledgement is sent once, with the right subject, envelope
# and threading headers, and the customer's answer to it lands on the same
# ticket; no acknowledgement for a forward, an auto-reply or a bulk mail; a
# relay that is down, then up: retried (the test clock moves, no sleeping)
# and sent once; a 5xx is failed and visible; header injection through a
# contact's name does nothing; the daily limit holds back with an event;
# ticket reply; templates; outbox retry/cancel, job list, job cancel.  Either engine
# (MR_TEST_DB).
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import BUILD, PG, Tap, message, wait_until  # noqa: E402
from mrdaemon import Daemon  # noqa: E402
import mrrelay  # noqa: E402

t = Tap()
if not t.ok(mrrelay.available(), "the test relay runs (python3-aiosmtpd: make deps)",
            mrrelay.unavailable_reason() if not mrrelay.available() else None):
    sys.exit(1)

relay = mrrelay.Relay()


def config(offset=0, limit=3):
    return ('relay = { host = "127.0.0.1"; port = %d; tls = "none"; retry_min = 60;'
            ' retry_max = 600; max_attempts = 3; from = "Acme Support <support@acme.test>"; };\n'
            'outgoing = { max_auto_per_recipient_per_day = %d; };\n'
            'ack = { enabled = true; };\n'
            'testing = { clock_offset = %d; };\n' % (relay.port, limit, offset))


d = Daemon(extra=config())
e = d.env


def deliver(frm, subject, msgid, to="support@acme.test", **kw):
    rc, out, err = e.deliver(to, message(frm, to, subject, msgid=msgid, **kw).encode("utf-8"))
    t.eq(rc, 0, "deliver %s" % subject, err)


def job_rows(*args):
    """job list --json without the workflows' timers (tested in 94-workflows)."""
    return [j for j in e.json("job", "list", *args) if j["kind"] != "workflow"]


def outbox(status=None):
    return e.json("outbox", "list", *(["--status", status] if status else []))


def parse(m):
    return email.message_from_bytes(m["data"], policy=email.policy.default)


# --- the acknowledgement --------------------------------------------------------------
deliver("Eve Customer <eve@client.test>", "Printer on fire", "m1@client.test")
t.ok(relay.wait_count(1, timeout=30), "the acknowledgement reaches the relay", d.log())
m = relay.messages()[0]
ack = parse(m)
t.eq(m["rcpt_tos"], ["eve@client.test"], "to the customer alone")
t.ok(re.fullmatch(r"bounces\+\d+-[0-9a-f]{16}@acme\.test", m["mail_from"]),
     "the envelope sender is the mail's own VERP address", m["mail_from"])
t.eq(str(ack["Subject"]), "[TKT-1] Re: Printer on fire", "subject: [TKT-1] Re: <theirs>")
t.eq(ack["In-Reply-To"], "<m1@client.test>", "In-Reply-To: the customer's mail")
t.ok("<m1@client.test>" in (ack["References"] or ""), "References name it", ack["References"])
t.eq(ack["Auto-Submitted"], "auto-replied", "Auto-Submitted: auto-replied")
t.ok("TKT-1" in ack.get_content(), "the body names the ticket", ack.get_content())
t.ok(ack["X-Mailroom-Loop"] is not None, "it carries mailroom's loop header")
ob = wait_until(lambda: [x for x in outbox() if x["status"] == "sent"])
t.ok(len(ob) == 1, "outbox list: one mail, sent", outbox())
t.eq((ob[0]["to"], ob[0]["record"], ob[0]["attempts"], ob[0]["message_id"]),
     ("eve@client.test", "TKT-1", 1, ack["Message-ID"].strip("<>")),
     "outbox list --json: to, record, attempts, the Message-ID made when queued")
jobs = job_rows()
t.eq([(j["kind"], j["status"], j["record"]) for j in jobs], [("ticket-ack", "done", "TKT-1")],
     "job list --json: the acknowledgement's job, done")
t.eq(job_rows("--due"), [], "job list --due: nothing waits")
t.eq(e.query("SELECT direction FROM message ORDER BY id"), [("in",), ("out",)],
     "the acknowledgement is stored as an outgoing message")
tl = e.json("timeline", "TKT-1")
t.ok([x["kind"] for x in tl if x["message_id"] == ack["Message-ID"].strip("<>")
      and x["kind"].startswith("message")] == ["message.out"],
     "the ticket's timeline shows it, marked outgoing (message.out)", tl)
t.eq([x["direction"] for x in e.json("message", "list")], ["in", "out"],
     "message list --json: direction in, out")
t.ok(any(x["message_id"] == ack["Message-ID"].strip("<>")
         for x in e.json("ticket", "show", "TKT-1")["messages"]),
     "and linked to the ticket", e.json("ticket", "show", "TKT-1"))

# the customer answers the acknowledgement: the same ticket, no second one
deliver("Eve Customer <eve@client.test>", "Re: [TKT-1] Re: Printer on fire", "m2@client.test",
        headers={"In-Reply-To": ack["Message-ID"], "References": ack["Message-ID"]})
t.eq([x["id"] for x in e.json("ticket", "list")], ["TKT-1"], "the answer lands on TKT-1")
t.eq(len(job_rows()), 1, "no acknowledgement of an answer")

# no acknowledgement: a forward by a user, an auto-reply, list mail
rc, out, err = e.ctl("user", "add", "agent@acme.test", "--name", "Agnes Agent")
t.eq(rc, 0, "user add agent", err)
deliver("Agnes Agent <agent@acme.test>", "Fwd: Broken scanner", "m3@acme.test",
        body="---------- Forwarded message ---------\nFrom: Bob <bob@client.test>\n"
             "Subject: Broken scanner\n\nIt is broken.\n")
deliver("Eve Customer <eve@client.test>", "Out of office", "m4@client.test",
        headers={"Auto-Submitted": "auto-replied"})
deliver("News <news@lists.client.test>", "Our newsletter", "m5@client.test",
        headers={"List-Id": "<news.client.test>", "Precedence": "list"})
tickets = e.json("ticket", "list")
t.ok(len(tickets) >= 2, "the forward opened a ticket", tickets)
t.eq(len(job_rows()), 1, "no acknowledgement job for forward, auto-reply or list")

# --- header injection through a contact's name -----------------------------------------
deliver("=?utf-8?q?Mallory=0D=0ABcc=3A_victim=40evil=2Etest?= <mallory@client.test>",
        "Hello", "m6@client.test")
t.ok(relay.wait_count(2, timeout=30), "the acknowledgement to mallory is sent", outbox())
m = relay.messages()[1]
t.eq(m["rcpt_tos"], ["mallory@client.test"], "to mallory alone: no Bcc recipient")
raw_head = m["data"].split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
t.ok(not re.search(r"(?im)^bcc:", raw_head), "no Bcc: header line", raw_head)
t.ok(len(re.findall(r"(?im)^to:", raw_head)) == 1, "one To: line", raw_head)

# --- the relay down, then up -------------------------------------------------------------
relay.stop()
deliver("Dan <dan@client.test>", "Relay down", "m7@client.test")
q = wait_until(lambda: [x for x in outbox("queued") if x["to"] == "dan@client.test"
                        and x["attempts"] == 1 and x["last_error"]], timeout=30)
t.ok(q, "relay down: queued again, one attempt, the error kept", outbox())
relay.start()
t.eq(relay.count(), 2, "nothing sent while the relay was down")
d.write_config(config(offset=120))
d.reload()
t.ok(relay.wait_count(3, timeout=30), "the clock moves past the retry: sent", outbox())
t.eq(sorted(x["rcpt_tos"][0] for x in relay.messages()).count("dan@client.test"), 1,
     "sent once")
t.eq([x["status"] for x in outbox() if x["to"] == "dan@client.test"], ["sent"],
     "outbox: sent, after two attempts")

# --- a 5xx is failed and visible ----------------------------------------------------------
relay.control(reply_rcpt={"perm": "550 5.1.1 no such user"})
deliver("Pat <perm-pat@client.test>", "Bad address", "m8@client.test")
f = wait_until(lambda: outbox("failed"), timeout=30)
t.ok(f and "550" in (f[0]["last_error"] or ""), "a 550 is failed with the reply", outbox())
ev = [x for x in e.json("event", "list") if x["type"] == "mail.failed"]
t.ok(ev and ev[0]["summary"].startswith("mail to perm-pat@client.test failed: 550"),
     "event mail.failed", ev)
relay.control()
rc, out, err = e.ctl("outbox", "retry", str(f[0]["id"]), "--json")
t.ok(rc == 0 and '"queued"' in out, "outbox retry: queued again", (rc, out, err))
t.ok(wait_until(lambda: [x for x in outbox("sent") if x["id"] == f[0]["id"]], timeout=30),
     "and sent", outbox())

# --- the daily limit: 3 automatic mails a day to one recipient ---------------------------------
for i in range(4):
    deliver("Lim <lim@client.test>", "Limit %d" % i, "lim%d@client.test" % i)
held = wait_until(lambda: [x for x in e.json("event", "list") if x["type"] == "mail.held"],
                  timeout=30)
t.ok(held and "lim@client.test" in held[0]["summary"] and "limit" in held[0]["summary"],
     "the fourth is held back, with an event", held)
t.eq(len([x for x in outbox() if x["to"] == "lim@client.test"]), 3, "three are queued")
t.eq([x["status"] for x in job_rows() if x["status"] != "done"], [],
     "the job of the one held back is done: nothing to retry")

# --- the daily limit inside one batch: five tickets of one customer whose
# jobs fall due together (mailroomd held back while one deliver commits
# them), written by one step of the scheduler: the mails queued before one
# in the batch count toward its limit ---
paths = []
for i in range(5):
    with tempfile.NamedTemporaryFile("w", suffix=".eml", delete=False) as f:
        f.write(message("Batch <batch@client.test>", "support@acme.test", "Batch %d" % i,
                        msgid="batch%d@client.test" % i))
        paths.append(f.name)
os.kill(d.proc.pid, signal.SIGSTOP)
try:
    rc, out, err = e.ctl("deliver", "--to", "support@acme.test", *paths)
finally:
    os.kill(d.proc.pid, signal.SIGCONT)
t.eq(rc, 0, "one deliver of five mails of one customer", err)


def batch_held():
    h = [x for x in e.json("event", "list")
         if x["type"] == "mail.held" and "batch@client.test" in x["summary"]]
    return h if len(h) >= 2 else None


held = wait_until(batch_held, timeout=30)
t.eq(len(held or []), 2, "two held back, each with an event", held)
t.eq(len([x for x in outbox() if x["to"] == "batch@client.test"]), 3, "three are queued")
for p in paths:
    os.unlink(p)

# --- ticket reply ------------------------------------------------------------------------------
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.write("We sent a technician.\n{{contact.name}} stays as written.\n")
    body = f.name
j = e.json("ticket", "reply", "TKT-1", "--body-file", body, "--status", "pending",
           "--from", "agent@acme.test")
t.eq((j["to"], j["record"], j["status"]), ("eve@client.test", "TKT-1", "queued"),
     "ticket reply --json: the outbox entry")
mine = wait_until(lambda: [m for m in relay.messages()
                          if parse(m)["Message-ID"] == "<%s>" % j["message_id"]], timeout=30)
t.ok(mine, "the reply is sent", outbox())
r = parse(mine[0])
t.eq(str(r["Subject"]), "[TKT-1] Re: Printer on fire", "subject: [TKT-1] Re: the ticket's")
t.ok("agent@acme.test" in str(r["From"]) and "Agnes Agent" in str(r["From"]),
     "from the agent", str(r["From"]))
t.eq(r["In-Reply-To"], "<m2@client.test>", "threaded to the customer's last mail")
t.eq(r["Auto-Submitted"], None, "a person's mail: no Auto-Submitted")
t.ok("{{contact.name}} stays as written" in r.get_content(), "the text as written",
     r.get_content())
t.eq(e.json("ticket", "show", "TKT-1")["status"], "pending", "status pending, same transaction")
rc, out, err = e.ctl("ticket", "reply", "TKT-1", "--body-file", body, "--from", "x@nowhere.test")
t.ok(rc == 1 and "no user x@nowhere.test" in err, "an unknown --from is refused", (rc, err))

# --- templates ----------------------------------------------------------------------------------
names = [x["name"] for x in e.json("template", "list")]
t.eq(names, ["escalation", "follow-up", "reminder", "ticket-ack"],
     "init made the built-in templates: ticket-ack and the workflows' (issue 24)")
t.eq(set(e.json("template", "list")[0]), {"name", "subject"}, "template list --json: {name subject}")
with open(body, "w") as f:
    f.write("Hello {{contact.phone}}\n")
rc, out, err = e.ctl("template", "add", "bad", "--subject", "x", "--body-file", body)
t.ok(rc == 64 and "contact.phone" in err, "an unknown placeholder is refused", (rc, err))
with open(body, "w") as f:
    f.write("Dear {{contact.name}}, about {{record.id}}.\n")
j = e.json("template", "add", "nice", "--subject", "About {{record.subject}}", "--body-file", body)
t.eq((j["name"], j["subject"]), ("nice", "About {{record.subject}}"), "template add --json")
rc, out, err = e.ctl("template", "add", "nice", "--subject", "x", "--body-file", body)
t.ok(rc == 1 and "exists" in err, "a name taken is refused", (rc, err))
t.eq(e.json("template", "add", "nice", "--subject", "y", "--body-file", body,
            "--replace")["subject"], "y", "--replace changes it")
t.ok("Dear {{contact.name}}" in e.json("template", "show", "nice")["body"], "template show: body")
rc, out, err = e.ctl("template", "delete", "nice")
t.eq(rc, 0, "template delete", err)
rc, out, err = e.ctl("template", "show", "nice")
t.eq(rc, 1, "gone")
os.unlink(body)

# --- bounces come back to the mail that caused them ----------------------------------------------
def dsn(envelope_to, rcpt, msgid, status="5.1.1", action="failed"):
    """A Postfix-like delivery report (bytes) to @envelope_to."""
    return ("From: MAILER-DAEMON@mx.client.test (Mail Delivery System)\r\n"
            "To: %s\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
            "Message-ID: <dsn-%s>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.client.test\r\n\r\n"
            "Final-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n"
            "Diagnostic-Code: smtp; 550 %s User unknown\r\n\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            "Message-ID: <%s>\r\nSubject: whatever\r\n\r\n--B--\r\n"
            % (envelope_to, msgid, rcpt, action, status, status, msgid)).encode()


deliver("Bob <bob@bounce.test>", "Will bounce", "mb1@client.test")
t.ok(wait_until(lambda: [x for x in outbox("sent") if x["to"] == "bob@bounce.test"], timeout=30),
     "the acknowledgement to bob is sent", outbox())
sent = [m for m in relay.messages() if m["rcpt_tos"] == ["bob@bounce.test"]][0]
verp = sent["mail_from"]
bob = [x for x in outbox() if x["to"] == "bob@bounce.test"][0]
mid = bob["message_id"]
other = [x for x in outbox("sent") if x["to"] == "eve@client.test"][0]
# forged: the right id with a wrong secret; a stranger's report about another's mail
forged = re.sub(r"-[0-9a-f]+@", "-0123456789abcdef@", verp)
for to, raw, what in ((forged, dsn(forged, "bob@bounce.test", mid), "a wrong secret"),
                      (verp, dsn(verp, "eve@client.test", other["message_id"]),
                       "a report about another's mail")):
    rc, out, err = e.deliver(to, raw)
    t.eq(rc, 0, "%s: accepted at the bounce address" % what, err)
    t.eq([x["status"] for x in outbox() if x["to"] == "bob@bounce.test"], ["sent"],
         "%s: changes nothing" % what)
rc, out, err = e.deliver(verp, dsn(verp, "bob@bounce.test", mid))
t.eq(rc, 0, "the report is accepted at the VERP address (not in addresses)", err)
b = [x for x in outbox() if x["to"] == "bob@bounce.test"][0]
t.eq((b["status"], b["bounce_status"]), ("bounced", "5.1.1"), "the mail is bounced, 5.1.1")
t.ok("User unknown" in (b["last_error"] or ""), "with the report's text", b)
ev = [x for x in e.json("event", "list") if x["type"] == "mail.bounced"]
t.ok(len(ev) == 1 and ev[0]["summary"].startswith("mail to bob@bounce.test bounced: ")
     and ev[0]["record"] == bob["record"],
     "event mail.bounced on its record", ev)
c = e.json("contact", "show", "bob@bounce.test")
t.ok((c.get("undeliverable") or "").startswith("5.1.1"), "a hard bounce marks the contact", c)
deliver("Bob <bob@bounce.test>", "Again", "mb2@client.test")
held = wait_until(lambda: [x for x in e.json("event", "list") if x["type"] == "mail.held"
                           and "bob@bounce.test" in x["summary"]], timeout=30)
t.ok(held and "undeliverable" in held[0]["summary"], "no automatic mail to it again", held)
rc, out, err = e.ctl("contact", "deliverable", "bob@bounce.test", "--json")
t.ok(rc == 0 and '"undeliverable": null' in out.replace(" :", ":"), "a person clears the mark",
     (rc, out, err))
# not a report: an auto-reply sent to the envelope sender, and a report
# that the mail was delayed, are shown on the mail's record; changing
# nothing else; with a wrong secret, linked to nothing
ooo = ("From: Bob <bob@bounce.test>\r\nTo: %s\r\nSubject: Out of office\r\n"
       "Message-ID: <ooo1@bounce.test>\r\nAuto-Submitted: auto-replied\r\n\r\nBack Monday.\r\n"
       % verp).encode()
for to, raw, subject in ((verp, ooo, "Out of office"),
                         (verp, dsn(verp, "bob@bounce.test", mid, "4.4.1", "delayed")
                          .replace(b"<dsn-", b"<dsn-delayed-", 1), "A delay report"),
                         (forged, ooo.replace(b"ooo1@", b"ooo2@"), "Out of office")):
    rc, out, err = e.deliver(to, raw)
    t.eq(rc, 0, "%s to the %s address: accepted" % (subject, "forged" if to == forged else "VERP"),
         err)
msgs = {m["message_id"]: m for m in e.json("message", "list")}
t.eq(msgs.get("ooo1@bounce.test", {}).get("links"), [bob["record"]],
     "an auto-reply at the VERP address is shown on the mail's record",
     msgs.get("ooo1@bounce.test"))
t.eq(msgs.get("dsn-delayed-%s" % mid, {}).get("links"), [bob["record"]],
     "so is a report that says delayed", msgs.get("dsn-delayed-%s" % mid))
t.eq(msgs.get("ooo2@bounce.test", {}).get("links"), [], "with a wrong secret: linked to nothing",
     msgs.get("ooo2@bounce.test"))
t.eq([x["status"] for x in outbox() if x["to"] == "bob@bounce.test" and x["id"] == bob["id"]],
     ["bounced"], "the mail's state is unchanged")

# --- outbox cancel ---------------------------------------------------------------------------------
relay.stop()
deliver("Can <can@client.test>", "Cancel me", "m9@client.test")
q = wait_until(lambda: [x for x in outbox("queued") if x["to"] == "can@client.test"], timeout=30)
t.ok(q, "queued while the relay is down", outbox())
rc, out, err = e.ctl("outbox", "cancel", str(q[0]["id"]))
t.eq(rc, 0, "outbox cancel", err)
rc, out, err = e.ctl("outbox", "cancel", str(q[0]["id"]))
t.ok(rc == 1 and "cancelled" in err, "twice: too late", (rc, err))
relay.start()

# --- a job that fails among others: they are done, it is tried again ---------------------------
# mailroomd stopped meanwhile: at its start, one claim takes the two
# acknowledgements and a job of a kind it does not know; the claim's
# unit fails, each runs on its own.
d.stop()
sent_before = len(outbox("sent"))
deliver("Ann <ann@batch.test>", "Batch one", "mj1@client.test")
deliver("Ben <ben@batch.test>", "Batch two", "mj2@client.test")
due = e.query("SELECT max(due) FROM job WHERE kind <> 'workflow'")[0][0]
e.execute("INSERT INTO job (kind, due, status, attempts, created, updated)"
          " VALUES ('no-such-kind', ?, 'due', 0, ?, ?)", (due, due, due))
d.start()
t.ok(wait_until(lambda: len(outbox("sent")) == sent_before + 2, timeout=30),
     "both acknowledgements sent", outbox())
bad = wait_until(lambda: [j for j in e.query(
    "SELECT status, attempts, last_error FROM job WHERE kind = 'no-such-kind'")
    if j[1] == 1], timeout=30)
t.ok(bad and bad[0][0] == "due" and "no such kind of job" in (bad[0][2] or ""),
     "the unknown job is due again after its first attempt, with the error", bad)
t.eq(sorted(x["status"] for x in job_rows() if x["kind"] == "ticket-ack"
            and x["record"] in [o["record"] for o in outbox() if o["to"].endswith("@batch.test")]),
     ["done", "done"], "the acknowledgements' jobs are done")

# --- job cancel: the unknown job, due again, will not run -----------------------------------------
bad_id = e.query("SELECT id FROM job WHERE kind = 'no-such-kind'")[0][0]
j = e.json("job", "cancel", str(bad_id))
t.eq((j["id"], j["kind"], j["status"], j["attempts"]), (bad_id, "no-such-kind", "cancelled", 1),
     "job cancel --json: the job, cancelled")
t.ok(all(x["id"] != bad_id for x in job_rows("--due")),
     "job list --due leaves it out")
rc, out, err = e.ctl("job", "cancel", str(bad_id))
t.ok(rc == 1 and "is cancelled: nothing to cancel" in err and out == "",
     "job cancel again: exit 1, nothing to cancel", (rc, out, err))
done_id = [x["id"] for x in job_rows() if x["status"] == "done"][0]
rc, out, err = e.ctl("job", "cancel", str(done_id))
t.ok(rc == 1 and "is done" in err, "job cancel of a done job: exit 1", (rc, out, err))
rc, out, err = e.ctl("job", "cancel", "999999")
t.ok(rc == 1 and "no job 999999" in err, "job cancel of no job: exit 1", (rc, out, err))
rc, out, err = e.ctl("job", "cancel", "x1")
t.ok(rc == 64 and "not a job's id" in err, "job cancel x1: exit 64", (rc, out, err))
# the clock moved past its retry (a reload looks at the jobs again); a
# job of the same kind, not cancelled, shows when the scheduler has looked
now = e.query("SELECT max(updated) FROM job WHERE kind <> 'workflow'")[0][0]
e.execute("INSERT INTO job (kind, due, status, attempts, created, updated)"
          " VALUES ('no-such-kind', ?, 'due', 0, ?, ?)", (now, now, now))
control = e.query("SELECT max(id) FROM job")[0][0]
d.write_config(config(offset=3600))
d.reload()
# (the watcher may see the insert before the reload: then it ran with the
# old clock as well, a second attempt after the clock moved past its retry)
t.ok(wait_until(lambda: e.query("SELECT attempts, status FROM job WHERE id = ?",
                                (control,))[0] in ((1, "due"), (2, "due")),
                timeout=30), "the scheduler ran the other one")
t.eq(e.query("SELECT status, attempts FROM job WHERE id = ?", (bad_id,)), [("cancelled", 1)],
     "the clock moved past its retry: the cancelled one did not run again")
t.eq(e.json("job", "cancel", str(control))["status"], "cancelled", "the other one cancelled too")

# --- a batch whose write fails: each job on its own, the failure its own -------------------------
# A trigger refuses the outbox row of one mail: the batch's unit fails,
# and each of its jobs runs in a unit of its own.
d.stop()
sent_before = len(outbox("sent"))
if PG:
    e.execute("CREATE FUNCTION trap() RETURNS trigger AS $$ BEGIN"
              " IF NEW.recipient = 'trap@batch.test' THEN RAISE EXCEPTION 'trapped'; END IF;"
              " RETURN NEW; END $$ LANGUAGE plpgsql;"
              " CREATE TRIGGER trap BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION trap()")
else:
    e.execute("CREATE TRIGGER trap BEFORE INSERT ON outbox WHEN NEW.recipient = 'trap@batch.test'"
              " BEGIN SELECT RAISE(ABORT, 'trapped'); END")
deliver("Trap <trap@batch.test>", "Batch trap", "mj3@client.test")
deliver("Cal <cal@batch.test>", "Batch three", "mj4@client.test")
d.start()
t.ok(wait_until(lambda: [o for o in outbox("sent") if o["to"] == "cal@batch.test"], timeout=30),
     "the other acknowledgement is sent", outbox())
trap = wait_until(lambda: [j for j in e.query(
    "SELECT j.status, j.attempts, j.last_error FROM job j JOIN ticket k ON k.id = j.record_id"
    " JOIN contact c ON c.id = k.contact_id WHERE c.email = 'trap@batch.test'") if j[1] == 1],
    timeout=30)
t.ok(trap and trap[0][0] == "due" and "trapped" in (trap[0][2] or ""),
     "the trapped job is due again, with the database's error", trap)
t.eq(len(outbox("sent")), sent_before + 1, "nothing else was sent")
e.execute("DROP TRIGGER trap ON outbox" if PG else "DROP TRIGGER trap")

# --- the acknowledgement is the workflow ticket-ack (issue 24) -----------------------------------
rc, out, err = e.ctl("workflow", "disable", "ticket-ack")
t.eq(rc, 0, "workflow disable ticket-ack", err)
deliver("Nia <nia@quiet.test>", "No answer please", "nia1@client.test")
nia = [x["id"] for x in e.json("ticket", "list") if x["contact"] == "nia@quiet.test"]
ack_nia = wait_until(lambda: [j for j in job_rows() if j["kind"] == "ticket-ack"
                              and j["record"] in nia and j["status"] != "due"], timeout=30)
t.eq([(j["status"], j["last_error"]) for j in ack_nia or []],
     [("cancelled", "its workflow is disabled")], "disabled: its job is cancelled, with why")
t.eq([o for o in outbox() if o["to"] == "nia@quiet.test"], [], "and nothing is sent")
rc, out, err = e.ctl("workflow", "enable", "ticket-ack")
t.eq(rc, 0, "workflow enable ticket-ack", err)
deliver("Nia <nia@quiet.test>", "Answer again", "nia2@client.test")
t.ok(wait_until(lambda: [o for o in outbox("sent") if o["to"] == "nia@quiet.test"], timeout=30),
     "enabled again: the acknowledgement is sent", outbox())

# --- a relay.from GMime cannot read is refused at start and at reload ---------------------------
bad = config().replace('from = "Acme Support <support@acme.test>"', 'from = "a@acme.test, b@acme.test"')
with open(e.conf) as f:
    good_text = f.read()
d.write_config(bad)
rc = subprocess.run([os.path.join(BUILD, "mailroomd"), "-c", e.conf,
                     "--check"], capture_output=True, text=True)
t.ok(rc.returncode == 78 and "relay.from" in rc.stderr, "mailroomd --check: relay.from refused",
     (rc.returncode, rc.stderr))
mark = d.mark()
d.reload()
t.ok(d.wait_for("reload refused", start=mark), "a reload with it is refused", d.log(mark))
with open(e.conf, "w") as f:
    f.write(good_text)

d.stop()
relay.close()
