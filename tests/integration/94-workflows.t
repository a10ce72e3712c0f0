#!/usr/bin/env python3
# Workflows in time (issue 24), with the test clock (no sleeping for days)
# and the real relay of the outgoing-mail tests (aiosmtpd, mrrelay.py):
# the follow-up of an unanswered offer after 3 business days (not on the
# weekend), twice at most, stopped by the contact's reply and not by an
# out-of-office, its conditions checked when it fires; the lead reminder
# (a task and a mail, to workflows.unowned); the first-response SLA across
# a weekend, a daylight-saving change and a holiday, with ticket list/show's
# first_response_due and breached; a daemon that was down runs what fell
# due once; a workflow disabled while its timers wait sends nothing; the
# CLI of workflows and tasks.  Either engine (MR_TEST_DB); on PostgreSQL
# two daemons on one database fire each timer once.
import datetime
import email
import email.policy
import math
import os
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import PG, Tap, message, wait_until  # noqa: E402
from mrdaemon import Daemon  # noqa: E402
import mrrelay  # noqa: E402

t = Tap()
if not t.ok(mrrelay.available(), "the test relay runs (python3-aiosmtpd: make deps)",
            mrrelay.unavailable_reason() if not mrrelay.available() else None):
    sys.exit(1)

relay = mrrelay.Relay()


def offset(iso):
    """The clock offset that makes mailroom's clock read @iso (UTC) now."""
    target = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    return int(math.ceil(target - time.time()))  # never behind @iso


def config(now):
    return ('relay = { host = "127.0.0.1"; port = %d; tls = "none";'
            ' from = "Acme <crm@acme.test>"; };\n'
            'outgoing = { max_auto_per_recipient_per_day = 50; };\n'
            'workflows = { unowned = "boss@acme.test"; };\n'
            'testing = { clock_offset = %d; };\n' % (relay.port, offset(now)))


d = Daemon(extra=config("2027-01-07T10:00:00Z"))  # a Thursday
e = d.env


def clock(now):
    """Moves mailroom's clock (daemon and CLI) to @now."""
    d.write_config(config(now))
    d.reload()


def ok_ctl(*args):
    rc, out, err = e.ctl(*args)
    t.eq(rc, 0, " ".join(args), err)
    return out


def deliver(to, frm, rcpt, subject, msgid, **kw):
    rc, out, err = e.deliver(to, message(frm, rcpt, subject, msgid=msgid, **kw).encode())
    t.eq(rc, 0, "deliver %s" % subject, err)


def mails_to(address):
    return [email.message_from_bytes(m["data"], policy=email.policy.default)
            for m in relay.messages() if address in m["rcpt_tos"]]


def timers(workflow=None, status="due"):
    return [j for j in e.json("job", "list") if j["kind"] == "workflow"
            and (workflow is None or j["workflow"] == workflow)
            and (status is None or j["status"] == status)]


def workflow(name):
    return [w for w in e.json("workflow", "list") if w["name"] == name][0]


def minute(iso):
    """@iso to the minute: the clock runs on during a test."""
    return iso[:16] if iso else iso


def quiet(seconds=2):
    """Lets the scheduler look (a reload makes it look at once)."""
    time.sleep(seconds)


# --- users, teams, a rule -------------------------------------------------------------------
for user, name in (("sam@acme.test", "Sam Sales"), ("boss@acme.test", "Bo Boss"),
                   ("agent@acme.test", "Agnes Agent"), ("lead@acme.test", "Lee Lead")):
    ok_ctl("user", "add", user, "--name", name)
ok_ctl("team", "add", "support", "agent@acme.test", "--lead", "lead@acme.test")
ok_ctl("rule", "add", "to-support", "--if", "role = support", "--then", "owner = team:support")

# --- the built-ins ---------------------------------------------------------------------------
t.section("the built-in workflows")
wl = e.json("workflow", "list")
t.eq([(w["name"], w["enabled"], w["fired"], w["pending"]) for w in wl],
     [("first-response-sla", True, 0, 0), ("follow-up", True, 0, 0),
      ("lead-reminder", True, 0, 0), ("ticket-ack", True, 0, 0)],
     "workflow list --json: {name trigger enabled fired pending} of the four built-ins")
t.eq(workflow("follow-up")["trigger"],
     "--after 3d --business --since response.sent --unless reply.received"
     " --unless mail.bounced --repeat 2", "follow-up's trigger")
t.eq(e.json("workflow", "show", "follow-up")["conditions"],
     ["record = opportunity", "status = open"], "follow-up's conditions")

# --- follow-ups ------------------------------------------------------------------------------
t.section("follow-ups after 3 business days, twice at most")
for who in ("carol", "dave", "erin"):
    # a first mail of Sam's makes the contact, Sam its owner
    deliver("crm@acme.test", "Sam Sales <sam@acme.test>", "%s@client.test" % who, "Hello",
            "hello-%s@acme.test" % who)
    ok_ctl("opp", "add", "--title", "Deal with %s" % who, "--contact", "%s@client.test" % who,
           "--owner", "sam@acme.test")
for i, who in enumerate(("carol", "dave", "erin"), 1):
    deliver("crm@acme.test", "Sam Sales <sam@acme.test>", "%s@client.test" % who,
            "[OPP-%d] Our offer" % i, "offer%d@acme.test" % i)
t.eq(sorted((j["record"], minute(j["due"])) for j in timers("follow-up")),
     [("OPP-1", "2027-01-12T10:00"), ("OPP-2", "2027-01-12T10:00"),
      ("OPP-3", "2027-01-12T10:00")],
     "three timers, due Tuesday 10:00: Thursday + 3 business days (the weekend skipped)")
t.eq(workflow("follow-up")["pending"], 3, "workflow list: pending 3")
t.eq([x["type"] for x in e.json("event", "list") if x["record"] == "OPP-1"],
     ["opportunity.created", "message.linked", "response.sent"],
     "Sam's BCC'd offer wrote response.sent on OPP-1")
# an out-of-office from Dave is no answer
deliver("crm@acme.test", "Dave <dave@client.test>", "sam@acme.test",
        "Auto: [OPP-2] Our offer", "ooo-dave@client.test",
        headers={"Auto-Submitted": "auto-replied"})
t.eq(len(timers("follow-up")), 3, "an out-of-office cancels nothing")
# the weekend passes: a clock-time 3d would have fired on Sunday
clock("2027-01-11T10:00:00Z")
quiet()
t.eq([m for m in mails_to("carol@client.test")], [], "Monday: no follow-up yet")

clock("2027-01-12T10:01:00Z")
t.ok(wait_until(lambda: len(mails_to("carol@client.test")) == 1 and
                len(mails_to("dave@client.test")) == 1 and
                len(mails_to("erin@client.test")) == 1, timeout=30),
     "Tuesday 10:01: a follow-up to each", [m["rcpt_tos"] for m in relay.messages()])
f = mails_to("carol@client.test")[0]
t.eq(f["From"], "Sam Sales <sam@acme.test>", "from the opportunity's owner")
t.eq(str(f["Subject"]), "Re: [OPP-1] Our offer", "the subject carries the record id")
t.eq(f["In-Reply-To"], "<offer1@acme.test>", "threaded to the last mail a person wrote")
t.eq(f["Auto-Submitted"], "auto-generated", "Auto-Submitted: auto-generated")
t.ok("following up on my last message about Deal with carol" in f.get_content(),
     "the follow-up template's text", f.get_content())
t.ok(wait_until(lambda: len(timers("follow-up")) == 3), "each starts again (--repeat 2)",
     timers("follow-up", None))
# Carol answers: her follow-up stops; Erin's opportunity is won meanwhile
deliver("sales@acme.test", "Carol <carol@client.test>", "sam@acme.test",
        "Re: [OPP-1] Our offer", "carol-answer@client.test")
t.eq(sorted(j["record"] for j in timers("follow-up")), ["OPP-2", "OPP-3"],
     "the contact's reply cancels OPP-1's timer")
ok_ctl("opp", "won", "OPP-3")
clock("2027-01-15T10:02:00Z")
t.ok(wait_until(lambda: len(mails_to("dave@client.test")) == 2, timeout=30),
     "Friday: Dave's second follow-up", [m["rcpt_tos"] for m in relay.messages()])
quiet()
t.eq((len(mails_to("carol@client.test")), len(mails_to("erin@client.test"))), (1, 1),
     "none to Carol (she answered), none to Erin (won: status = open no longer holds)")
erin = [j for j in timers("follow-up", None) if j["record"] == "OPP-3"]
t.ok(erin and erin[-1]["status"] == "done" and "conditions" in (erin[-1]["last_error"] or ""),
     "Erin's timer ended without firing: its conditions did not hold", erin)
clock("2027-02-01T10:00:00Z")
quiet()
t.eq(len(mails_to("dave@client.test")), 2, "twice at most")
t.eq((workflow("follow-up")["fired"], workflow("follow-up")["pending"]), (4, 0),
     "workflow list: fired 4, pending 0")

# --- the lead reminder ---------------------------------------------------------------------------
t.section("the lead reminder")
clock("2027-02-04T10:00:00Z")  # a Thursday
deliver("sales@acme.test", "Pat <pat@prospect.test>", "sales@acme.test", "Pricing please",
        "pat1@prospect.test")
deliver("sales@acme.test", "Quinn <quinn@prospect2.test>", "sales@acme.test", "Demo?",
        "quinn1@prospect2.test")
t.eq(sorted((j["record"], minute(j["due"])) for j in timers("lead-reminder")),
     [("LEAD-1", "2027-02-05T10:00"), ("LEAD-2", "2027-02-05T10:00")],
     "a timer per new lead, due Friday 10:00 (1 business day)")
ok_ctl("inbox", "archive", "2")
clock("2027-02-05T10:01:00Z")
t.ok(wait_until(lambda: len(mails_to("boss@acme.test")) == 1, timeout=30),
     "a reminder mail to workflows.unowned (no owner)", [m["rcpt_tos"] for m in relay.messages()])
r = mails_to("boss@acme.test")[0]
t.eq(str(r["Subject"]), "[LEAD-1] Reminder: Pricing please", "the reminder template")
tasks = e.json("task", "list", "--owner", "boss@acme.test")
t.eq([(x["title"], x["owner"], x["record"], x["status"]) for x in tasks],
     [("Reminder: LEAD-1 Pricing please", "boss@acme.test", "LEAD-1", "open")],
     "task list --json: the reminder's task, for the unowned's user")
quiet()
t.eq(len(mails_to("boss@acme.test")), 1, "no reminder of the archived lead")

# --- the first-response SLA -------------------------------------------------------------------------
t.section("the first-response SLA across a weekend")
clock("2027-02-05T15:00:00Z")  # a Friday
deliver("support@acme.test", "Ann <ann@client.test>", "support@acme.test", "Printer on fire",
        "ann1@client.test")
deliver("support@acme.test", "Bob <bob@client.test>", "support@acme.test", "Scanner broken",
        "bob1@client.test")
tk = e.json("ticket", "show", "TKT-1")
t.eq((tk["owner"], minute(tk["first_response_due"]), tk["breached"]),
     ("agent@acme.test", "2027-02-08T11:00", False),
     "ticket show --json: first_response_due Monday 11:00 (4 business hours from Friday 15:00)")
with open(os.path.join(e.dir, "answer.txt"), "w") as f:
    f.write("We are on it.\n")
ok_ctl("ticket", "reply", "TKT-2", "--body-file", os.path.join(e.dir, "answer.txt"),
       "--from", "agent@acme.test")
t.eq([(x["id"], minute(x["first_response_due"]), x["breached"])
      for x in e.json("ticket", "list")],
     [("TKT-1", "2027-02-08T11:00", False), ("TKT-2", None, False)],
     "ticket list --json: TKT-2 answered (null, not breached)")
clock("2027-02-08T10:58:00Z")
quiet()
t.eq(e.json("ticket", "show", "TKT-1")["priority"], "normal", "Monday 10:58: not yet")
clock("2027-02-08T11:01:00Z")
t.ok(wait_until(lambda: e.json("ticket", "show", "TKT-1")["priority"] == "high", timeout=30),
     "Monday 11:01: escalated, priority up one", d.log())
tk = e.json("ticket", "show", "TKT-1")
t.eq((tk["owner"], tk["breached"]), ("lead@acme.test", True),
     "owner: the lead of the owner's team; breached")
t.ok(wait_until(lambda: len(mails_to("lead@acme.test")) == 1, timeout=30),
     "a mail to the new owner", [m["rcpt_tos"] for m in relay.messages()])
t.eq(str(mails_to("lead@acme.test")[0]["Subject"]), "[TKT-1] Escalated: Printer on fire",
     "from the escalation template")
ev = [x for x in e.json("event", "list") if x["type"] == "ticket.escalated"]
t.eq([(x["record"], x["summary"]) for x in ev], [("TKT-1", "TKT-1 escalated to lead@acme.test")],
     "event ticket.escalated")
t.eq(e.json("ticket", "show", "TKT-2")["priority"], "normal", "the answered ticket is not")

t.section("across the March daylight-saving change, and a holiday")
ok_ctl("calendar", "set", "default", "--tz", "Europe/Berlin")
clock("2027-03-26T14:00:00Z")  # Friday 15:00 CET
deliver("support@acme.test", "Cleo <cleo@client.test>", "support@acme.test", "Summer time",
        "cleo1@client.test")
t.eq(minute(e.json("ticket", "show", "TKT-3")["first_response_due"]), "2027-03-29T09:00",
     "Friday 15:00 CET + 4 business hours = Monday 11:00 CEST (09:00 UTC)")
clock("2027-03-29T08:58:00Z")
quiet()
t.eq(e.json("ticket", "show", "TKT-3")["priority"], "normal", "08:58 UTC: not yet")
clock("2027-03-29T09:01:00Z")
t.ok(wait_until(lambda: e.json("ticket", "show", "TKT-3")["priority"] == "high", timeout=30),
     "09:01 UTC: escalated", d.log())
ok_ctl("calendar", "set", "default", "--holiday", "2027-04-05")  # Easter Monday
clock("2027-04-02T14:00:00Z")  # Friday 16:00 CEST
deliver("support@acme.test", "Dora <dora@client.test>", "support@acme.test", "Easter",
        "dora1@client.test")
deliver("support@acme.test", "Emil <emil@client.test>", "support@acme.test", "Easter too",
        "emil1@client.test")
t.eq(minute(e.json("ticket", "show", "TKT-4")["first_response_due"]), "2027-04-06T10:00",
     "1 hour on Friday, the holiday skipped, 3 hours on Tuesday: 12:00 CEST")

# --- a daemon that was down -------------------------------------------------------------------------
t.section("a daemon that was down runs what fell due once")
d.stop()
d.write_config(config("2027-04-07T12:00:00Z"))
escalated_before = len(mails_to("lead@acme.test"))
d.start()
t.ok(wait_until(lambda: all(e.json("ticket", "show", x)["priority"] == "high"
                            for x in ("TKT-4", "TKT-5")), timeout=30),
     "both escalated at start", d.log())
quiet()
t.eq(len(mails_to("lead@acme.test")) - escalated_before, 2, "one mail each")
t.eq(sorted(x["record"] for x in e.json("event", "list") if x["type"] == "ticket.escalated"),
     ["TKT-1", "TKT-3", "TKT-4", "TKT-5"], "one event each")

# --- disabled while its timers wait ---------------------------------------------------------------------
t.section("a workflow disabled while its timers wait")
deliver("crm@acme.test", "Sam Sales <sam@acme.test>", "frank@client.test", "Hello",
        "hello-frank@acme.test")
ok_ctl("opp", "add", "--title", "Deal with frank", "--contact", "frank@client.test",
       "--owner", "sam@acme.test")
deliver("crm@acme.test", "Sam Sales <sam@acme.test>", "frank@client.test", "[OPP-4] Offer",
        "offer4@acme.test")
t.eq(workflow("follow-up")["pending"], 1, "a follow-up waits")
rc, out, err = e.ctl("workflow", "disable", "follow-up")
t.ok(rc == 0 and "1 timer of workflow follow-up cancelled" in err, "workflow disable",
     (rc, out, err))
t.eq((workflow("follow-up")["enabled"], workflow("follow-up")["pending"]), (False, 0),
     "disabled, nothing pending")
clock("2027-04-20T12:00:00Z")
quiet()
t.eq(mails_to("frank@client.test"), [], "nothing sent")
ok_ctl("workflow", "enable", "follow-up")
t.eq(workflow("follow-up")["pending"], 0, "enabled again: the cancelled timer stays cancelled")

# --- the CLI -----------------------------------------------------------------------------------------------
t.section("workflow and task commands")
j = e.json("workflow", "add", "feedback", "--on", "ticket.status", "--if", "status = solved",
           "--then", 'task "Ask for feedback" due 2d', "--then", "set priority = low")
t.eq((j["name"], j["trigger"], j["conditions"], j["actions"]),
     ("feedback", "--on ticket.status", ["status = solved"],
      ['task "Ask for feedback" due 2d', "set priority = low"]),
     "workflow add --json: canonical texts")
for args, want in (
        (["--after", "3x", "--since", "ticket.created", "--then", "escalate"], "--after '3x'"),
        (["--on", "ticket.created", "--after", "1d", "--then", "escalate"], "exclude"),
        (["--on", "ticket.crated", "--then", "escalate"], "ticket.crated"),
        (["--on", "ticket.created"], "--then"),
        (["--on", "ticket.created", "--then", "sned x"], "sned"),
        (["--on", "ticket.created", "--if", "subject ~ x", "--then", "escalate"], "subject"),
        (["--on", "ticket.created", "--then", "send nope"], "no template nope"),
        (["--on", "ticket.created", "--then", "assign nobody@acme.test"],
         "no user nobody@acme.test"),
        (["--on", "ticket.created", "--then", "remind team:nope"], "no team nope")):
    rc, out, err = e.ctl("workflow", "add", "bad", *args)
    t.ok(rc == 64 and want in err and err.count("\n") == 1 and out == "",
         "refused in one line: %s" % " ".join(args), (rc, out, err))
t.eq([w["name"] for w in e.json("workflow", "list")].count("bad"), 0, "nothing was added")
rc, out, err = e.ctl("workflow", "add", "feedback", "--on", "ticket.created", "--then", "escalate")
t.ok(rc == 1 and "exists" in err, "a name taken: exit 1", (rc, out, err))
ok_ctl("ticket", "status", "TKT-2", "solved")
t.ok(wait_until(lambda: [x for x in e.json("task", "list", "--open")
                         if x["title"] == "Ask for feedback"], timeout=30),
     "--on ticket.status fired at once: a task for the owner", e.json("task", "list"))
fb = [x for x in e.json("task", "list") if x["title"] == "Ask for feedback"][0]
t.eq((fb["owner"], fb["record"], minute(fb["due"])), ("agent@acme.test", "TKT-2", "2027-04-22T12:00"),
     "its owner, record and due (2d)")
t.ok(wait_until(lambda: e.json("ticket", "show", "TKT-2")["priority"] == "low"),
     "and set priority = low")
j = e.json("task", "add", "Call Ann back", "--owner", "agent@acme.test", "--record", "TKT-1",
           "--due", "2027-04-21")
t.eq(sorted(j), ["created", "done", "due", "id", "owner", "record", "status", "title"],
     "task add --json: {id title owner record due status} and times")
t.eq((j["owner"], j["record"], j["due"], j["status"]),
     ("agent@acme.test", "TKT-1", "2027-04-22T00:00:00Z", "open"),
     "due by the end of the day in the configuration's timezone (UTC)")
t.ok([x["id"] for x in e.json("task", "list", "--overdue")] == [],
     "task list --overdue: none yet", e.json("task", "list"))
clock("2027-04-23T12:00:00Z")
t.eq(sorted(x["title"] for x in e.json("task", "list", "--overdue")),
     ["Ask for feedback", "Call Ann back"], "task list --overdue")
done = e.json("task", "done", str(j["id"]))
t.eq(done["status"], "done", "task done")
rc, out, err = e.ctl("task", "done", str(j["id"]))
t.ok(rc == 1 and "done already" in err, "done twice: exit 1", (rc, out, err))
rc, out, err = e.ctl("task", "add", "X", "--owner", "nobody@acme.test")
t.ok(rc == 1 and "no user nobody@acme.test" in err, "an unknown owner: exit 1", (rc, out, err))
tl = [x["kind"] for x in e.json("timeline", "TKT-1")]
t.ok("task.created" in tl and "task.done" in tl, "the timeline shows the task and its end", tl)
ok_ctl("workflow", "delete", "feedback")
t.eq([w["name"] for w in e.json("workflow", "list")].count("feedback"), 0, "workflow delete")

# loop protection: an --on workflow answers a person's mail, not an auto-reply
ok_ctl("workflow", "add", "echo", "--on", "message.linked", "--if", "record = ticket",
       "--then", "send ticket-ack")
before = len(mails_to("ann@client.test"))
deliver("support@acme.test", "Ann <ann@client.test>", "support@acme.test",
        "Auto: [TKT-1] Printer on fire", "ann-ooo@client.test",
        headers={"Auto-Submitted": "auto-replied"})
t.ok(wait_until(lambda: [x for x in e.json("event", "list") if x["type"] == "mail.held"
                         and "automatic mail" in x["summary"]], timeout=30),
     "an auto-reply: held (mail.held), nothing sent", e.json("event", "list")[-3:])
deliver("support@acme.test", "Ann <ann@client.test>", "support@acme.test",
        "Re: [TKT-1] Printer on fire", "ann-again@client.test")
t.ok(wait_until(lambda: len(mails_to("ann@client.test")) == before + 1, timeout=30),
     "a person's mail: answered", [m["rcpt_tos"] for m in relay.messages()][-3:])
ok_ctl("workflow", "delete", "echo")

# a team's turn and its lead: VIP tickets unanswered for an hour on the clock
ok_ctl("rule", "add", "vip", "--if", "from_domain = vip.test", "--then", "tag = vip")
ok_ctl("workflow", "add", "vip", "--after", "1h", "--since", "ticket.created", "--unless",
       "response.sent", "--if", "tag = vip", "--then", "assign team:support",
       "--then", "remind team:support", "--then", "set type = incident")
reminded = len(mails_to("lead@acme.test"))
deliver("support@acme.test", "Vera <vera@vip.test>", "support@acme.test", "VIP trouble",
        "vera1@vip.test")
deliver("support@acme.test", "Walt <walt@client.test>", "support@acme.test", "Not VIP",
        "walt1@client.test")
vip = [x["id"] for x in e.json("ticket", "list") if x["contact"] == "vera@vip.test"][0]
clock("2027-04-23T13:01:00Z")
t.ok(wait_until(lambda: len(mails_to("lead@acme.test")) == reminded + 1, timeout=30),
     "an hour later: the team's lead is reminded (a mail)", d.log())
t.eq([(x["title"].split(" ")[0], x["record"]) for x in e.json("task", "list", "--owner",
                                                              "lead@acme.test")],
     [("Reminder:", vip)], "and a task for the lead, about the VIP ticket alone")
tk = e.json("ticket", "show", vip)
t.eq((tk["owner"], tk["type"]), ("agent@acme.test", "incident"),
     "assign team:support gave it to the member whose turn it was; set type = incident")

# --- a colleague's reply and a bounce stop a follow-up too -----------------------------------------------
t.section("a colleague's reply, a bounce")
for who in ("gus", "hal"):
    deliver("crm@acme.test", "Sam Sales <sam@acme.test>", "%s@client.test" % who, "Hello",
            "hello-%s@acme.test" % who)
    j = e.json("opp", "add", "--title", "Deal with %s" % who, "--contact",
               "%s@client.test" % who, "--owner", "sam@acme.test")
    deliver("crm@acme.test", "Sam Sales <sam@acme.test>", "%s@client.test" % who,
            "[%s] Offer" % j["id"], "offer-%s@acme.test" % who)
opps = {x["contact"]: x["id"] for x in e.json("opp", "list")}
t.eq(sorted(j["record"] for j in timers("follow-up")),
     sorted([opps["gus@client.test"], opps["hal@client.test"]]), "two follow-ups wait")
# Ida works where Hal does (the account client.test): her answer counts
deliver("sales@acme.test", "Ida <ida@client.test>", "sam@acme.test",
        "Re: [%s] Offer" % opps["hal@client.test"], "ida-answer@client.test")
t.eq([j["record"] for j in timers("follow-up")], [opps["gus@client.test"]],
     "a colleague at the same account answered: Hal's follow-up is cancelled")
clock("2027-04-28T13:02:00Z")
t.ok(wait_until(lambda: len(mails_to("gus@client.test")) == 1, timeout=30),
     "Gus's follow-up is sent", [m["rcpt_tos"] for m in relay.messages()])
t.ok(wait_until(lambda: [j["record"] for j in timers("follow-up")] == [opps["gus@client.test"]],
                timeout=30), "and a second waits (--repeat 2)", timers("follow-up", None))
sent = [m for m in relay.messages() if m["rcpt_tos"] == ["gus@client.test"]][-1]
gus_mid = [x for x in e.json("outbox", "list") if x["to"] == "gus@client.test"][-1]["message_id"]
report = ("From: MAILER-DAEMON@mx.client.test\r\nTo: %s\r\n"
          "Subject: Undelivered Mail Returned to Sender\r\n"
          "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <dsn-gus@mx.client.test>\r\n"
          "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
          "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
          "--B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
          "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
          "Reporting-MTA: dns; mx.client.test\r\n\r\n"
          "Final-Recipient: rfc822; gus@client.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
          "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
          "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
          "Message-ID: <%s>\r\nSubject: whatever\r\n\r\n--B--\r\n"
          % (sent["mail_from"], gus_mid)).encode()
rc, out, err = e.deliver(sent["mail_from"], report)
t.eq(rc, 0, "the follow-up bounces", err)
t.eq(timers("follow-up"), [], "mail.bounced cancels the second")

# --- two daemons on one PostgreSQL database fire each timer once ---------------------------------------
if PG:
    t.section("two daemons on one database fire each timer once")
    d2 = Daemon(extra=config("2027-05-06T10:00:00Z"), env=e)
    clock("2027-05-06T10:00:00Z")  # a Thursday, for both
    d2.write_config(config("2027-05-06T10:00:00Z"))
    d2.reload()
    before = len(mails_to("lead@acme.test"))
    for i in range(20):
        deliver("support@acme.test", "C%d <c%d@client.test>" % (i, i), "support@acme.test",
                "Two daemons %d" % i, "two%d@client.test" % i)
    clock("2027-05-07T10:00:00Z")
    d2.write_config(config("2027-05-07T10:00:00Z"))
    d2.reload()
    t.ok(wait_until(lambda: len(mails_to("lead@acme.test")) - before >= 20, timeout=60),
         "20 escalations", len(mails_to("lead@acme.test")) - before)
    quiet(3)
    t.eq(len(mails_to("lead@acme.test")) - before, 20, "each once")
    d2.stop()

d.stop()
relay.close()
