#!/usr/bin/env python3
# Thread headers are no back door to a record.  Anybody who knows a
# Message-ID of a ticket's mail could put it in In-Reply-To/References and
# land on (and reopen) that ticket.  A mail found through its thread headers
# attaches when its sender is a user, is related to the record (its contact,
# the contact's company, the owner) or was an address of the referenced
# message; otherwise it is refused like a subject id, visibly, and gets a
# record of its own.  Also: the address form is the same under any locale.
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env, message

t = Tap()
e = Env()
e.ctl("init")
e.json("user", "add", "alice@acme.test", "--name", "Alice")


def deliver(frm, subject, msgid, cc=None, reply_to="bob-1@customer.test", refs=None):
    headers = {"In-Reply-To": "<%s>" % reply_to}
    if refs:
        headers["References"] = refs
    rc, out, err = e.deliver("support@acme.test",
                             message(frm, "support@acme.test", subject, msgid=msgid, cc=cc,
                                     headers=headers))
    t.ok(rc == 0, "deliver %s from %s" % (msgid, frm), err)
    return e.json("message", "list")[-1]


def last_message():
    m = e.json("message", "list")[-1]
    return e.json("message", "show", str(m["id"]))


def on_ticket(msgid, ticket="TKT-1"):
    return msgid in [m["message_id"] for m in e.json("ticket", "show", ticket)["messages"]]


rc, out, err = e.deliver("support@acme.test",
                         message("Bob <bob@customer.test>", "support@acme.test", "Printer on fire",
                                 msgid="bob-1@customer.test", cc="dave@partner.test"))
t.eq(rc, 0, "bob's mail opens TKT-1 (Cc: dave@partner.test)")
e.json("ticket", "status", "TKT-1", "solved")

deliver("mallory@evil.test", "Re: Printer on fire", "mal-1@evil.test")
t.ok(not on_ticket("mal-1@evil.test"), "a stranger's reply by In-Reply-To is not attached")
m = last_message()
t.ok(m["refused"] and "TKT-1" in m["refused"][0] and "TKT-1" not in m["links"],
     "and the refusal is visible on the message", m)
t.eq(e.json("ticket", "show", "TKT-1")["status"], "solved", "TKT-1 is not reopened by the stranger")
t.ok(any(x["contact"] == "mallory@evil.test" for x in e.json("ticket", "list")),
     "the stranger gets a ticket of their own")

deliver("mallory@evil.test", "Re: Printer on fire", "mal-2@evil.test", reply_to="nobody@x.test",
        refs="<bob-1@customer.test> <nobody@x.test>")
t.ok(not on_ticket("mal-2@evil.test"), "nor by References")

deliver("Carol <carol@customer.test>", "Re: Printer on fire", "carol-1@customer.test")
t.ok(on_ticket("carol-1@customer.test"), "a colleague at the contact's company is attached")

deliver("dave@partner.test", "Re: Printer on fire", "dave-1@partner.test")
t.ok(on_ticket("dave-1@partner.test"), "an address of the referenced message (its Cc) is attached")

deliver("alice@acme.test", "Re: Printer on fire", "alice-1@acme.test")
t.ok(on_ticket("alice-1@acme.test"), "a user is attached")

deliver("bob@customer.test", "Re: Printer on fire", "bob-2@customer.test")
t.ok(on_ticket("bob-2@customer.test"), "the contact is attached")
t.eq(e.json("ticket", "show", "TKT-1")["status"], "open", "and reopens the solved ticket")

# --- one address form under any locale -------------------------------------
env = dict(os.environ, LC_ALL="tr_TR.UTF-8")
import subprocess  # noqa: E402
p = subprocess.run([e.ctl_path, "-c", e.conf, "user", "add", "INFO@ACME.TEST", "--json"],
                   capture_output=True, text=True, env=env, timeout=60)
t.ok(p.returncode == 0 and '"info@acme.test"' in p.stdout,
     "LC_ALL=tr_TR.UTF-8: user add INFO@ACME.TEST stores info@acme.test (no dotless ı)", p.stdout + p.stderr)
e.json("user", "add", "JÖRG@ACME.TEST")
rc, out, err = e.deliver("crm@acme.test", message("jörg@acme.test", "bob@customer.test", "Angebot",
                                                  msgid="joerg-1@acme.test"))
m = last_message()
t.ok(rc == 0 and m["users"] == ["jörg@acme.test"],
     "user add JÖRG@ matches the parsed jörg@ (one normal form)", m)
