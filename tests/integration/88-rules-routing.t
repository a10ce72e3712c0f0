#!/usr/bin/env python3
# Rules at work (issue 22): rules added with mailroomctl amend what mail
# delivered through the pipe and SMTP becomes -- a ticket's priority, type,
# status and owner, tags, a lead and its source, log, ignore, stop --
# message show --json lists the rules that fired, rule test (--json,
# --explain) says beforehand what the delivery then does and writes
# nothing, a rule added while mailroomd runs applies to the next mail,
# and weekday and hour are read in the configured timezone.  On either
# engine (MR_TEST_DB).
import datetime
import os
import sys
import time
import zoneinfo
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env, message  # noqa: E402
from mrdaemon import Daemon  # noqa: E402

t = Tap()
section = t.section


def ok_ctl(e, *args):
    rc, out, err = e.ctl(*args)
    if rc != 0:
        raise RuntimeError("mailroomctl %s failed (%d): %s" % (" ".join(args), rc, err))
    return out


def counts(e):
    """What a dry run must not change: every table's rows."""
    return [e.query("SELECT count(*) FROM %s" % table)[0][0]
            for table in ("message", "delivery", "ticket", "lead", "contact", "account",
                          "event", "record_tag", "link")]


def trial(e, path, to, *more):
    """rule test --json of @path for @to; checks it wrote nothing."""
    before = counts(e)
    rc, out, err = e.ctl("rule", "test", path, "--to", to, "--json", *more)
    if rc != 0:
        raise RuntimeError("rule test failed (%d): %s" % (rc, err))
    t.eq(counts(e), before, "rule test of %s wrote nothing" % os.path.basename(path))
    import json
    return json.loads(out)


def outcome(e, mid):
    """What the delivery of message @mid made, in rule test's words."""
    m = e.json("message", "show", str(mid))
    recs = [r for r in m["links"] if r.startswith(("TKT-", "LEAD-", "OPP-"))]
    out = {"rules": m["rules"], "record": recs[0] if recs else None, "tags": []}
    if recs:
        noun = {"TKT": "ticket", "LEAD": "inbox", "OPP": "opp"}[recs[0].split("-")[0]]
        r = e.json(noun, "show", recs[0])
        out.update(priority=r.get("priority") if noun == "ticket" else None,
                   type=r.get("type") if noun == "ticket" else None,
                   owner=r.get("owner"), tags=r["tags"])
    return out


def agrees(e, path, to, what):
    """rule test of @path, then its delivery: the same rules, record,
    priority, type, owner and tags."""
    before = trial(e, path, to)
    with open(path, "rb") as f:
        rc, out, err = e.deliver(to, f.read())
    t.eq(rc, 0, "%s: delivered" % what, err)
    mid = max(m["id"] for m in e.json("message", "list"))
    after = outcome(e, mid)
    want = {k: before[k] for k in ("rules", "priority", "type", "owner", "tags")}
    got = {k: after.get(k) for k in want}
    t.eq(got, want, "%s: the delivery does what rule test said" % what)
    if before["record"] is not None:
        t.eq(after["record"], before["record"], "%s: on the record rule test named" % what)
    return before, after, mid


e = Env()
ok_ctl(e, "init")
for u in ("alice@acme.test", "bob@acme.test"):
    ok_ctl(e, "user", "add", u)
d = e.dir


def eml(name, *args, **kw):
    path = os.path.join(d, name + ".eml")
    with open(path, "w") as f:
        f.write(message(*args, **kw))
    return path


with section("the issue's examples and more, through the pipe"):
    ok_ctl(e, "rule", "add", "urgent", "--if", "role = support",
           "--if", 'subject ~ "urgent|dringend"', "--then", "priority = high",
           "--then", "type = incident", "--then", "owner = bob@acme.test")
    ok_ctl(e, "rule", "add", "invoices", "--if", "from_domain = billing.acme-erp.test",
           "--then", "log", "--stop")
    ok_ctl(e, "rule", "add", "bigcustomer", "--if", "address ends @bigcustomer.test",
           "--then", "owner = alice@acme.test", "--then", "tag = vip")
    ok_ctl(e, "rule", "add", "spam", "--if", "header:X-Spam-Flag = yes", "--then", "ignore",
           "--stop")
    ok_ctl(e, "rule", "add", "webinar", "--if", "recipient = sales@acme.test",
           "--if", "body contains webinar", "--then", "source = webinar",
           "--then", "tag = event")
    ok_ctl(e, "rule", "add", "waiting", "--if", "subject starts [wait]",
           "--then", "status = pending")
    ok_ctl(e, "rule", "add", "never", "--if", "attachments > 5", "--then", "tag = many")
    ok_ctl(e, "rule", "disable", "never")

    p = eml("urgent", "Carl <carl@customer.test>", "support@acme.test",
            "Dringend: printer on fire", msgid="u1@customer.test")
    before, after, mid = agrees(e, p, "support@acme.test", "urgent support mail")
    t.eq((before["rules"], before["action"], before["record"], before["priority"],
          before["type"], before["owner"]),
         (["urgent"], "ticket", None, "high", "incident", "bob@acme.test"),
         "urgent: rule test says a new high incident for bob")
    tkt = after["record"]

    p = eml("reply", "Carl <carl@customer.test>", "support@acme.test",
            "Re: Dringend: printer on fire [%s]" % tkt, msgid="u2@customer.test")
    before, after, mid = agrees(e, p, "support@acme.test", "the customer's answer")
    t.eq((before["action"], before["record"]), ("ticket", tkt),
         "rule test names the existing ticket of the answer")

    p = eml("vip", "Dora <dora@bigcustomer.test>", "support@acme.test", "Question")
    before, after, mid = agrees(e, p, "support@acme.test", "mail from the big customer")
    t.eq((before["rules"], before["owner"], before["tags"], before["priority"]),
         (["bigcustomer"], "alice@acme.test", ["vip"], "normal"),
         "bigcustomer: owned by alice, tagged vip")

    p = eml("vip-cc", "Carl <carl@customer.test>", "support@acme.test", "Printer 2",
            cc="eve@bigcustomer.test")
    before, after, mid = agrees(e, p, "support@acme.test", "a Cc at the big customer")
    t.eq(before["rules"], ["bigcustomer"], "address holds for a Cc too")

    p = eml("invoice", "ERP <noreply@billing.acme-erp.test>", "support@acme.test",
            "Invoice 42 is urgent")
    before, after, mid = agrees(e, p, "support@acme.test", "an urgent invoice")
    t.eq((before["rules"], before["action"], before["record"]),
         (["urgent", "invoices"], "log", None),
         "invoices: logged (the rule before it fired too), and the stop ends the run")
    t.eq(e.json("message", "show", str(mid))["links"], [], "no ticket for the invoice")

    p = eml("spam", "x@spam.test", "sales@acme.test", "Cheap pills",
            headers={"X-Spam-Flag": "YES"})
    before, after, mid = agrees(e, p, "sales@acme.test", "spam")
    t.eq((before["rules"], before["action"]), (["spam"], "ignore"), "spam is ignored")
    m = e.json("message", "show", str(mid))
    t.ok(m["links"] == [] and m["contacts"] == [] and m["accounts"] == [],
         "ignored: stored and linked to nothing, no contact made", m)
    t.eq(e.query("SELECT count(*) FROM contact WHERE email = 'x@spam.test'")[0][0], 0,
         "no contact for the spammer")

    p = eml("webinar", "Fred <fred@prospect.test>", "sales@acme.test", "Hello",
            body="I saw your Webinar last week.\n")
    before, after, mid = agrees(e, p, "sales@acme.test", "a webinar lead")
    lead = after["record"]
    t.eq((before["action"], before["tags"]), ("lead", ["event"]), "a lead, tagged event")
    t.eq(e.json("inbox", "show", lead)["source"], "webinar", "the lead's source is webinar")

    p = eml("wait", "Carl <carl@customer.test>", "support@acme.test", "[wait] new toner")
    before, after, mid = agrees(e, p, "support@acme.test", "a ticket that waits")
    t.eq(e.json("ticket", "show", after["record"])["status"], "pending",
         "status = pending: the new ticket is pending")
    evs = [x["summary"] for x in e.json("event", "list")]
    t.ok("%s status new -> pending" % after["record"] in evs,
         "and a ticket.status event says so", evs[-5:])

    t.ok(all("never" not in e.json("message", "show", str(m["id"]))["rules"]
             for m in e.json("message", "list")), "a disabled rule never fires")

with section("the rules as a ticket, a lead or a log entry"):
    ok_ctl(e, "rule", "add", "partner-ticket", "--if", "from_domain = partner.test",
           "--if", "role = bcc", "--then", "ticket", "--position", "1")
    p = eml("partner", "Pat <pat@partner.test>", "crm@acme.test", "Broken API")
    before, after, mid = agrees(e, p, "crm@acme.test", "partner mail to the BCC address")
    t.eq((before["action"], after["record"][:4]), ("ticket", "TKT-"),
         "a rule's ticket makes a ticket of mail to the bcc address")
    ok_ctl(e, "rule", "add", "log-sales", "--if", "subject contains newsletter",
           "--then", "log", "--position", "1")
    p = eml("news", "Nina <nina@prospect2.test>", "sales@acme.test", "Our newsletter")
    before, after, mid = agrees(e, p, "sales@acme.test", "a newsletter to sales")
    t.eq((before["action"], after["record"]), ("log", None),
         "a rule's log keeps a first mail to sales from becoming a lead")
    t.eq(e.json("message", "show", str(mid))["contacts"], ["nina@prospect2.test"],
         "logged on its parties")

with section("rule test --explain"):
    p = eml("explain", "Carl <carl@customer.test>", "support@acme.test", "URGENT: " + "x" * 200)
    j = trial(e, p, "support@acme.test", "--explain")
    by = {x["rule"]: x for x in j["explain"]}
    t.eq([x["rule"] for x in j["explain"]],
         [r["name"] for r in e.json("rule", "list") if r["enabled"]],
         "every enabled rule, in order")
    u = by["urgent"]
    t.ok(u["fired"] and u["ran"] and not u["stopped"] and
         [c["result"] for c in u["conditions"]] == [True, True],
         "urgent fired, both conditions true", u)
    v = u["conditions"][1]["value"]
    t.ok(v.startswith("URGENT: xxx") and v.endswith("...") and len(v) <= 84,
         "the subject it was checked against, cut to a line", v)
    t.eq([c["result"] for c in by["invoices"]["conditions"]], [False],
         "invoices did not fire: its condition false")
    t.eq(by["invoices"]["conditions"][0]["value"], "customer.test",
         "with the value it was checked against")
    p = eml("explain2", "x@billing.acme-erp.test", "support@acme.test", "Invoice")
    j = trial(e, p, "support@acme.test", "--explain")
    names = [x["rule"] for x in j["explain"]]
    inv = names.index("invoices")
    t.ok(j["explain"][inv]["stopped"] and
         all(not x["ran"] and x["conditions"] == [] for x in j["explain"][inv + 1:]),
         "the stop of invoices ends the run: the later rules are listed, not run",
         j["explain"])
    rc, out, err = e.ctl("rule", "test", p, "--to", "support@acme.test", "--explain")
    t.ok(rc == 0 and "rule invoices: fired, and stopped the run" in out and
         "not run (an earlier rule stopped the run)" in out and "rules " in out,
         "rule test --explain for people", out)
    rc, out, err = e.ctl("rule", "test", p, "--to", "nobody@acme.test")
    t.eq(rc, 67, "rule test to no mailroom address: exit 67")
    rc, out, err = e.ctl("rule", "test", os.path.join(d, "missing.eml"), "--to",
                         "support@acme.test")
    t.eq(rc, 66, "rule test of a missing file: exit 66")
    rc, out, err = e.ctl("rule", "test", p)
    t.eq(rc, 64, "rule test without --to: exit 64")

with section("weekday and hour in the configured timezone"):
    for zone in ("UTC", "Pacific/Kiritimati", "America/St_Johns"):
        z = Env('timezone = "%s";' % zone)
        ok_ctl(z, "init")
        ok_ctl(z, "rule", "add", "when", "--any", "--if", "hour > 0", "--if", "hour = 0",
               "--then", "tag = x")
        p = eml("when-" + zone.replace("/", "_"), "a@b.test", "support@acme.test", "Hi")
        t0 = datetime.datetime.now(zoneinfo.ZoneInfo(zone))
        j = trial(z, p, "support@acme.test", "--explain")
        t1 = datetime.datetime.now(zoneinfo.ZoneInfo(zone))
        hour = j["explain"][0]["conditions"][0]["value"]
        t.ok(hour in (str(t0.hour), str(t1.hour)),
             "%s: hour is the hour there (%s)" % (zone, hour), (t0, t1))
    z = Env('timezone = "Mars/Olympus";')
    rc, out, err = z.ctl("init")
    t.ok(rc == 78 and "timezone" in err and "IANA" in err,
         "an unknown timezone is refused (exit 78)", err)

with section("a rule added while mailroomd runs applies to the next mail (SMTP)"):
    dm = Daemon()
    env = dm.env
    ok_ctl(env, "user", "add", "alice@acme.test")
    s = dm.smtp()
    s.sendmail("a@one.test", ["support@acme.test"],
               message("a@one.test", "support@acme.test", "before the rule"))
    ok_ctl(env, "rule", "add", "live", "--if", "subject contains after",
           "--then", "priority = urgent", "--then", "owner = alice@acme.test")
    s.sendmail("a@one.test", ["support@acme.test"],
               message("a@one.test", "support@acme.test", "after the rule", msgid="live@x"))
    s.quit()
    tickets = {x["subject"]: x for x in env.json("ticket", "list")}
    t.ok(tickets["before the rule"]["priority"] == "normal" and
         tickets["after the rule"]["priority"] == "urgent" and
         tickets["after the rule"]["owner"] == "alice@acme.test",
         "the daemon read the new rule before the next message", tickets)
    ok_ctl(env, "rule", "disable", "live")
    s = dm.smtp()
    s.sendmail("a@one.test", ["support@acme.test"],
               message("a@one.test", "support@acme.test", "after disabling"))
    s.quit()
    tickets = {x["subject"]: x for x in env.json("ticket", "list")}
    t.eq(tickets["after disabling"]["priority"], "normal", "and sees it disabled too")
    mids = {m["subject"]: m["id"] for m in env.json("message", "list")}
    t.eq(env.json("message", "show", str(mids["after the rule"]))["rules"], ["live"],
         "message show --json: rules of the SMTP delivery")
    dm.stop()
