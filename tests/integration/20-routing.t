#!/usr/bin/env python3
# The mail path end to end: smart BCC, support tickets, sales leads, records,
# duplicate protection and the CLI's read-back (--json).
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env, message

t = Tap()
e = Env()
e.ctl("init")
e.json("user", "add", "alice@acme.test", "--name", "Alice")


def deliver_ok(to, raw, name):
    rc, out, err = e.deliver(to, raw)
    t.ok(rc == 0, name, err)


def contact(email):
    return e.json("contact", "show", email)


# --- smart BCC ----------------------------------------------------------
deliver_ok("crm@acme.test",
           message('"Alice" <alice@acme.test>', '"Bob Buyer" <bob@customer.test>', "Offer",
                   cc="carol@customer.test, dave@freemail.test", msgid="bcc-1@acme.test"),
           "bcc: outgoing mail delivered")
c = contact("bob@customer.test")
t.eq((c["name"], c["account"], c["owner"]), ("Bob Buyer", "customer.test", "alice@acme.test"),
     "bcc: recipient became a contact with account and owner (the user who wrote)")
t.eq(contact("carol@customer.test")["account"], "customer.test", "bcc: cc'd colleague, same account")
t.eq(contact("dave@freemail.test")["account"], None, "bcc: freemail contact has no account")
rc, out, err = e.ctl("contact", "show", "crm@acme.test")
t.eq(rc, 1, "bcc: the mailroom address is no contact")
rc, out, err = e.ctl("contact", "show", "alice@acme.test")
t.eq(rc, 1, "bcc: the internal sender is no contact")
accounts = e.json("account", "list")
t.eq([(a["name"], a["domain"]) for a in accounts], [("customer.test", "customer.test")],
     "account list: one account, freemail excluded")
contacts = {c["email"]: c for c in e.json("contact", "list")}
t.eq(sorted(contacts), ["bob@customer.test", "carol@customer.test", "dave@freemail.test"],
     "contact list --json")
t.ok(all(k in contacts["bob@customer.test"] for k in ("email", "name", "account", "owner")),
     "contact json fields")

j = e.json("opp", "add", "--title", "Big deal", "--contact", "bob@customer.test", "--value", "5000")
t.eq(j, {"id": "OPP-1"}, "opp add --json prints the id")
rc, out, err = e.ctl("opp", "add", "--title", "Second", "--contact", "bob@customer.test")
t.eq(out.strip(), "OPP-2", "opp add prints the id")
opp = e.json("opp", "show", "OPP-1")
t.eq((opp["id"], opp["status"], opp["value"], opp["contact"], opp["owner"], opp["message_count"]),
     ("OPP-1", "open", 5000, "bob@customer.test", "alice@acme.test", 0),
     "opp show: fields; owner defaults to the contact's owner")
deliver_ok("crm@acme.test",
           message("alice@acme.test", "bob@customer.test", "Re: [Acme OPP-1] pricing",
                   msgid="bcc-2@acme.test"),
           "bcc: mail with [Acme OPP-1] in the subject")
opp = e.json("opp", "show", "opp-1")
t.eq(opp["message_count"], 1, "bcc: logged on the opportunity named in the subject")
t.eq([m["message_id"] for m in opp["messages"]], ["bcc-2@acme.test"], "opp show lists its messages")
t.ok(all(k in opp["messages"][0] for k in ("message_id", "subject", "from", "received", "sent")),
     "opp messages fields")
# the customer answers the thread: thread headers find the opportunity
deliver_ok("crm@acme.test",
           message("bob@customer.test", "alice@acme.test", "Re: pricing", msgid="bob-1@customer.test",
                   headers={"In-Reply-To": "<bcc-2@acme.test>", "References": "<bcc-2@acme.test>"}),
           "bcc: customer's reply copied to crm")
t.eq(e.json("opp", "show", "OPP-1")["message_count"], 2, "bcc: reply found by In-Reply-To")
msgs = e.json("message", "list")
t.eq(msgs[-1]["links"], ["OPP-1"], "message list --json has links")
t.ok(all(k in msgs[-1] for k in ("id", "message_id", "subject", "from", "links")), "message json fields")
m = e.json("message", "show", str(msgs[-1]["id"]))
t.ok("OPP-1" in m["links"] and m["from"] == "bob@customer.test", "message show links", m)

# won / lost
rc, out, err = e.ctl("opp", "lost", "OPP-2")
t.eq(rc, 64, "opp lost needs --reason")
j = e.json("opp", "lost", "OPP-2", "--reason", "too expensive")
t.eq(j["status"], "lost", "opp lost")
t.eq(e.json("opp", "show", "OPP-2")["lost_reason"], "too expensive", "lost reason stored")
e.json("opp", "won", "OPP-1")
t.eq(e.json("opp", "show", "OPP-1")["status"], "won", "opp won")
rc, out, err = e.ctl("opp", "won", "OPP-1")
t.ok(rc == 1 and "already" in err, "closing a closed opportunity is refused", err)

# --- support ---------------------------------------------------------------
deliver_ok("support@acme.test",
           message('"Eve Customer" <eve@client.test>', "support@acme.test", "Printer on fire",
                   body="Help, it burns.\n", msgid="eve-1@client.test"),
           "support: customer mail")
tickets = e.json("ticket", "list")
t.eq(len(tickets), 1, "support: one ticket")
tk = tickets[0]
t.eq((tk["id"], tk["subject"], tk["status"], tk["contact"], tk["message_count"]),
     ("TKT-1", "Printer on fire", "new", "eve@client.test", 1), "support: ticket fields")
t.ok(all(k in tk for k in ("type", "priority", "owner")), "ticket json fields")
deliver_ok("support@acme.test",
           message("eve@client.test", "support@acme.test", "RE: [TKT-1] Printer on fire", msgid="eve-2@client.test"),
           "support: reply with the id in the subject")
deliver_ok("support@acme.test",
           message("eve@client.test", "support@acme.test", "AW: Printer", msgid="eve-3@client.test",
                   headers={"In-Reply-To": "<eve-1@client.test>"}),
           "support: reply with thread headers only")
deliver_ok("support+tkt-1@acme.test",
           message("eve@client.test", "support+tkt-1@acme.test", "more", msgid="eve-4@client.test"),
           "support: mail to the plus address")
tk = e.json("ticket", "show", "TKT-1")
t.eq((tk["message_count"], len(e.json("ticket", "list"))), (4, 1), "support: all on TKT-1")
t.eq([m["message_id"] for m in tk["messages"]],
     ["eve-1@client.test", "eve-2@client.test", "eve-3@client.test", "eve-4@client.test"],
     "ticket show lists messages in order")

# solved ticket reopens on a new customer message
e.json("ticket", "status", "TKT-1", "solved")
t.eq(e.json("ticket", "show", "TKT-1")["status"], "solved", "ticket status solved")
deliver_ok("support@acme.test",
           message("eve@client.test", "support@acme.test", "Re: [TKT-1] it is back", msgid="eve-5@client.test"),
           "support: customer writes again")
t.eq(e.json("ticket", "show", "TKT-1")["status"], "open", "support: solved ticket reopened")
rc, out, err = e.ctl("ticket", "status", "TKT-1", "exploded")
t.eq(rc, 64, "ticket status: unknown status refused")

# no hijacking: a stranger naming TKT-1
deliver_ok("support@acme.test",
           message("mallory@evil.test", "support@acme.test", "[TKT-1] give me the data", msgid="mal-1@evil.test"),
           "support: stranger names TKT-1")
t.eq(e.json("ticket", "show", "TKT-1")["message_count"], 5, "hijack: not attached to TKT-1")
tickets = e.json("ticket", "list")
t.eq((len(tickets), tickets[-1]["contact"]), (2, "mallory@evil.test"), "hijack: own new ticket instead")
mid = e.json("message", "list")[-1]["id"]
m = e.json("message", "show", str(mid))
t.ok(m["refused"] and "TKT-1" in m["refused"][0] and "TKT-1" not in m["links"],
     "hijack: the refusal is visible on the message", m["refused"])
# a colleague at the same company may name it
deliver_ok("support@acme.test",
           message("frank@client.test", "support@acme.test", "[TKT-1] same here", msgid="frank-1@client.test"),
           "support: colleague of the contact names TKT-1")
t.eq(e.json("ticket", "show", "TKT-1")["message_count"], 6, "colleague's mail attached (same account)")

# a user forwards a customer's mail: ticket for the original sender
fwd_body = ("FYI\n\n---------- Forwarded message ---------\n"
            "From: Grace Hopper <grace@navy.test>\nDate: Mon, 23 Nov 2026 09:00:00 +0000\n"
            "Subject: Bug in the compiler\nTo: alice@acme.test\n\nThere is a moth.\n")
deliver_ok("support@acme.test",
           message("alice@acme.test", "support@acme.test", "Fwd: Bug in the compiler", body=fwd_body,
                   msgid="fwd-1@acme.test"),
           "support: user forwards a customer's mail")
tk = e.json("ticket", "list")[-1]
t.eq((tk["subject"], tk["contact"], tk["owner"]),
     ("Bug in the compiler", "grace@navy.test", "alice@acme.test"),
     "forward: ticket for the original sender, forwarding user owns it")

# auto-replies never create tickets
n = len(e.json("ticket", "list"))
deliver_ok("support@acme.test",
           message("robot@client.test", "support@acme.test", "Out of office",
                   headers={"Auto-Submitted": "auto-replied"}, msgid="ooo-1@client.test"),
           "support: auto-reply delivered")
t.eq(len(e.json("ticket", "list")), n, "auto-reply: no ticket")
deliver_ok("support@acme.test",
           message("eve@client.test", "support@acme.test", "Automatic reply: [TKT-1]",
                   headers={"Auto-Submitted": "auto-replied"}, msgid="ooo-2@client.test"),
           "support: auto-reply naming TKT-1")
t.eq(e.json("ticket", "show", "TKT-1")["message_count"], 7, "auto-reply still linked to its ticket")
t.eq(e.json("message", "list")[-1]["auto"], "auto-reply", "message list shows the auto marker")

# --- sales -----------------------------------------------------------------
deliver_ok("sales@acme.test",
           message('"Heidi" <heidi@prospect.test>', "sales@acme.test", "Quote for 100 widgets",
                   msgid="heidi-1@prospect.test"),
           "sales: unknown sender")
deliver_ok("sales@acme.test",
           message("heidi@prospect.test", "sales@acme.test", "and 50 gadgets", msgid="heidi-2@prospect.test"),
           "sales: same sender again")
leads = e.json("inbox", "list")
t.eq(len(leads), 1, "sales: one lead for two mails (duplicate protection)")
ld = leads[0]
t.eq((ld["title"], ld["source"], ld["status"], ld["contact"], ld["message_count"]),
     ("Quote for 100 widgets", "email", "new", "heidi@prospect.test", 2), "sales: lead fields")
t.ok("owner" in ld and "id" in ld, "lead json fields")
t.ok("created" in ld and ld["created"], "lead has a created time")
deliver_ok("sales@acme.test",
           message("noreply@shop.test", "sales@acme.test", "Your newsletter",
                   headers={"Precedence": "bulk", "List-Id": "<news.shop.test>"}, msgid="bulk-1@shop.test"),
           "sales: bulk mail delivered")
t.eq(len(e.json("inbox", "list")), 1, "sales: bulk mail makes no lead")
show = e.json("inbox", "show", str(ld["id"]))
t.eq(len(show["messages"]), 2, "inbox show lists messages")
j = e.json("inbox", "convert", str(ld["id"]))
t.ok(j["id"].startswith("OPP-"), "inbox convert prints the new opportunity", j)
opp = e.json("opp", "show", j["id"])
t.eq((opp["title"], opp["contact"], opp["message_count"]),
     ("Quote for 100 widgets", "heidi@prospect.test", 2), "converted: title, contact, messages carried")
t.eq(e.json("inbox", "show", str(ld["id"]))["status"], "converted", "lead status converted")
rc, out, err = e.ctl("inbox", "convert", str(ld["id"]))
t.eq(rc, 1, "converting twice is refused")
deliver_ok("sales@acme.test",
           message("heidi@prospect.test", "sales@acme.test", "one more thing", msgid="heidi-3@prospect.test"),
           "sales: mail after conversion")
leads = e.json("inbox", "list")
t.eq(len(leads), 2, "sales: a closed lead does not swallow new requests")
e.json("inbox", "archive", str(leads[-1]["id"]))
t.eq(e.json("inbox", "list")[-1]["status"], "archived", "inbox archive")

# a reply in the thread of the converted lead lands on its opportunity
deliver_ok("sales@acme.test",
           message("heidi@prospect.test", "sales@acme.test", "Re: Quote", msgid="heidi-4@prospect.test",
                   headers={"In-Reply-To": "<heidi-1@prospect.test>"}),
           "sales: reply in a converted lead's thread")
t.eq(e.json("opp", "show", j["id"])["message_count"], 3, "converted lead: the reply reaches the opportunity")
t.eq(len(e.json("inbox", "list")), 2, "converted lead: no new lead for the thread reply")

# mail to support naming an opportunity: a ticket, and logged on the opportunity
n = e.json("opp", "show", "OPP-1")["message_count"]
deliver_ok("support@acme.test",
           message("bob@customer.test", "support@acme.test", "[OPP-1] the delivery is late",
                   msgid="bob-2@customer.test"),
           "support: customer names an opportunity")
t.eq(e.json("ticket", "list")[-1]["contact"], "bob@customer.test", "support: a ticket for it")
t.eq(e.json("opp", "show", "OPP-1")["message_count"], n + 1, "support: also logged on the opportunity")

# --- duplicates ---------------------------------------------------------------
before = len(e.json("message", "list"))
raw = message("ivan@dup.test", "support@acme.test", "twice", msgid="dup@dup.test")
deliver_ok("support@acme.test", raw, "duplicate: first delivery")
deliver_ok("support@acme.test", raw, "duplicate: second delivery exits 0")
t.eq(len(e.json("message", "list")), before + 1, "duplicate: stored once")
t.eq(len([x for x in e.json("ticket", "list") if x["contact"] == "ivan@dup.test"]), 1,
     "duplicate: one ticket")
rc, out, err = e.deliver("support@acme.test", "From ivan@dup.test Mon Nov 23 10:00:00 2026\n" + raw)
t.eq(len(e.json("message", "list")), before + 1, "duplicate: an mbox From_ line does not make it new")
rc, out, err = e.deliver("support@acme.test", raw.replace("\r\n", "\n"))
t.eq(len(e.json("message", "list")), before + 1, "duplicate: LF instead of CRLF line ends does not make it new")
# same Message-ID, other bytes: two messages (Message-ID is not unique enough)
deliver_ok("support@acme.test",
           message("ivan@dup.test", "support@acme.test", "twice, edited", msgid="dup@dup.test"),
           "same Message-ID, different content")
t.eq(len(e.json("message", "list")), before + 2, "different bytes are another message")
j = e.json("message", "list", "--limit", "2")
t.eq(len(j), 2, "--limit N limits a list")

# --- timelines ------------------------------------------------------------------
tl = e.json("timeline", "eve@client.test")
t.ok(len(tl) >= 5 and all(k in tl[0] for k in ("received", "created", "kind", "subject",
                                               "message_id", "sent")),
     "timeline EMAIL", tl[:2])
tl = e.json("timeline", "TKT-1")
kinds = [x["kind"] for x in tl]
t.ok("ticket.created" in kinds and "ticket.reopened" in kinds and "message" in kinds,
     "timeline TKT-n has messages and events", kinds)
tl = e.json("timeline", "customer.test")
t.ok(len(tl) >= 2, "timeline DOMAIN", tl)
tl = e.json("timeline", "OPP-1")
t.ok(any(x["kind"] == "opportunity.won" for x in tl), "timeline OPP-n has events", tl)
rc, out, err = e.ctl("timeline", "TKT-1")
t.ok(rc == 0 and "ticket.created" in out, "timeline prints a table")

# The sender controls Date:: timelines and a record's messages follow the
# order mailroom received them in, and show the Date: beside it.
deliver_ok("support@acme.test",
           message("zed@timewarp.test", "support@acme.test", "Clock is right",
                   msgid="tw-1@timewarp.test", date="Mon, 30 Nov 2026 09:00:00 +0000"),
           "a new ticket, Date: today")
tkt = [x for x in e.json("ticket", "list") if x["subject"] == "Clock is right"][0]["id"]
deliver_ok("support@acme.test",
           message("zed@timewarp.test", "support@acme.test", "Re: [%s] Clock is right" % tkt,
                   msgid="tw-2@timewarp.test", date="Sat, 01 Jan 2000 00:00:00 +0000"),
           "a reply dated in 2000")
msgs = [x for x in e.json("timeline", tkt) if x["kind"] == "message"]
t.eq([x["message_id"] for x in msgs], ["tw-1@timewarp.test", "tw-2@timewarp.test"],
     "timeline: in the order received, not by Date:")
t.eq([x["sent"] for x in msgs], ["2026-11-30T09:00:00Z", "2000-01-01T00:00:00Z"],
     "timeline: Date: shown as sent")
t.ok(msgs[1]["received"] >= msgs[0]["received"] and msgs[1]["received"] > "2000-01-02",
     "timeline: received is when received", msgs)
shown = e.json("ticket", "show", tkt)["messages"]
t.eq([x["message_id"] for x in shown], ["tw-1@timewarp.test", "tw-2@timewarp.test"],
     "ticket show: messages in the order received")
t.eq(shown[1]["sent"], "2000-01-01T00:00:00Z", "ticket show: Date: shown as sent")
rc, out, err = e.ctl("timeline", tkt)
t.ok(rc == 0 and "SENT" in out and "2000-01-01T00:00:00Z" in out, "the table has a SENT column",
     out)

# One meaning per field name, in every verb (docs/cli.md, "Field names"):
# received = when mailroom stored the message, sent = its Date: header.
SENT = "2000-01-01T00:00:00Z"
listed = [x for x in e.json("message", "list") if x["message_id"] == "tw-2@timewarp.test"][0]
arrival = listed["received"]
t.ok(arrival is not None and arrival > "2000-01-02" and listed["sent"] == SENT,
     "message list: received is the arrival, sent the Date:", listed)
detail = e.json("message", "show", str(listed["id"]))
t.ok(detail["received"] == arrival and detail["sent"] == SENT, "message show: received, sent",
     detail)
for verb, rows in (("ticket show", e.json("ticket", "show", tkt)["messages"]),
                   ("contact show", e.json("contact", "show", "zed@timewarp.test")["messages"]),
                   ("timeline", msgs)):
    row = [x for x in rows if x["message_id"] == "tw-2@timewarp.test"][0]
    t.ok(row["received"] == arrival and row["sent"] == SENT, "%s: received, sent" % verb, row)
evs_tl = [x for x in e.json("timeline", tkt) if x["kind"] != "message"]
t.ok(evs_tl and all(x["created"] and x["received"] is None and x["sent"] is None for x in evs_tl),
     "timeline: an event has created, not received or sent", evs_tl)
t.ok(all(x["received"] and x["created"] is None for x in msgs),
     "timeline: a message has received, not created", msgs)
# date: deprecated, JSON only, with the meaning it had in each verb.
t.ok(listed["date"] == SENT and detail["date"] == SENT, "deprecated date: message list/show: Date:")
t.ok(row["date"] == arrival and shown[1]["date"] == arrival,
     "deprecated date: timeline, ticket show: the arrival")
t.ok(all(x["date"] == x["created"] for x in evs_tl), "deprecated date: timeline event: created")
rc, out, err = e.ctl("message", "list")
t.ok(rc == 0 and out.split()[1] == "RECEIVED" and "DATE" not in out.splitlines()[0],
     "message list table: RECEIVED, no DATE", out.splitlines()[:1])
rc, out, err = e.ctl("message", "show", str(listed["id"]))
fields = [ln.split()[0] for ln in out.split("\n\n")[0].splitlines() if ln.strip()]
t.ok(rc == 0 and "received" in fields and "sent" in fields and "date" not in fields,
     "message show: received and sent lines, no date", fields)
rc, out, err = e.ctl("ticket", "show", tkt)
t.ok(rc == 0 and "RECEIVED" in out and "DATE" not in out, "ticket show: a RECEIVED column", out)
rc, out, err = e.ctl("timeline", tkt)
head = out.splitlines()[0].split()
t.ok(rc == 0 and head[:2] == ["RECEIVED", "CREATED"] and "DATE" not in head,
     "timeline table: RECEIVED, CREATED", head)

# --- the event feed --------------------------------------------------------------
evs = e.json("event", "list")
ids = [x["id"] for x in evs]
t.ok(len(evs) > 10 and ids == sorted(ids) and len(set(ids)) == len(ids),
     "event list: every event, oldest first, by increasing id", ids[:5])
t.ok(all(set(x) == {"id", "created", "type", "record", "message", "summary"} for x in evs),
     "event list --json: id, created, type, record, message, summary", evs[:1])
created = [x for x in evs if x["type"] == "ticket.created"]
t.ok(created and created[0]["record"].startswith("TKT-") and isinstance(created[0]["message"], int),
     "ticket.created names its ticket and message", created[:1])
won = [x for x in evs if x["type"] == "opportunity.won"]
t.ok(won and won[0]["record"].startswith("OPP-") and won[0]["message"] is None,
     "opportunity.won: the record, no message", won)
middle = ids[len(ids) // 2]
after = e.json("event", "list", "--after", str(middle))
t.eq([x["id"] for x in after], [i for i in ids if i > middle], "--after ID: only the later ones")
t.eq(len(e.json("event", "list", "--after", str(middle), "--limit", "2")), 2, "--limit N")
t.eq(e.json("event", "list", "--after", str(ids[-1])), [], "nothing after the newest")
rc, out, err = e.ctl("event", "list", "--limit", "3")
t.ok(rc == 0 and out.splitlines()[0].split() == ["ID", "CREATED", "TYPE", "RECORD", "SUMMARY"],
     "event list prints a table", out)

# --- raw bytes ---------------------------------------------------------------
mid = e.json("message", "list")[0]["id"]
rc, out, err = e.ctl("message", "show", str(mid), "--raw")
t.ok(rc == 0 and "Message-ID: <bcc-1@acme.test>" in out, "message show --raw prints the raw bytes")
rc, out, err = e.ctl("message", "show", str(mid))
t.ok(rc == 0 and "Offer" in out, "message show prints a summary")
for noun in ("contact", "account", "inbox", "opp", "ticket", "message", "user"):
    rc, out, err = e.ctl(noun, "list")
    t.ok(rc == 0 and len(out.splitlines()) >= 2, "%s list prints a table" % noun, err)

# --- authserv_id: a forged internal sender is nobody's -------------------------
a = Env('authserv_id = "mx.acme.test";')
a.ctl("init")
forged = message("alice@acme.test", "zed@customer.test, support@acme.test", "Fwd: please refund",
                 msgid="forged-1@evil.test",
                 headers={"Authentication-Results": "mx.acme.test; dmarc=fail header.from=acme.test"})
rc, out, err = a.deliver("support@acme.test", forged)
t.eq(rc, 0, "authserv_id: forged internal sender delivered")
t.eq(a.json("ticket", "list"), [], "authserv_id: a forged user opens no ticket")
m = a.json("message", "show", "1")
t.ok(m["users"] == [] and any("not authenticated" in r for r in m["refused"]),
     "authserv_id: not taken as the user's, and that is visible", m)
genuine = message("alice@acme.test", "zed@customer.test", "Offer", msgid="genuine-1@acme.test",
                  headers={"Authentication-Results": "mx.acme.test;\r\n dkim=pass header.d=acme.test"})
rc, out, err = a.deliver("crm@acme.test", genuine)
t.eq(a.json("contact", "show", "zed@customer.test")["owner"], "alice@acme.test",
     "authserv_id: an authenticated user is the owner")
