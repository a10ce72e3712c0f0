#!/usr/bin/env python3
# One clock (include/mailroom/mr-clock.h): testing.clock_offset moves every
# time mailroom writes, whichever door the message comes in by.  With
# clock_offset = 86400 a message's arrival time (message show --json:
# "received"), its ticket's "created" and its events' "created" are a day
# ahead, for mail mailroomd receives over SMTP and for `mailroomctl
# deliver`.  After the file changes and SIGHUP, the next message has the new
# offset; a refused reload keeps the old one.  clock_offset = "abc" is
# refused with FILE:LINE by mailroomctl, mailroomd --check and a reload.
import calendar
import os
import re
import subprocess
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import BUILD, PG, Tap, message  # noqa: E402
from mrdaemon import Daemon, stored_id  # noqa: E402

t = Tap()
section = t.section
SLACK = 5   # seconds either side of the real time a store may take
DAY = 86400
ABC = re.compile(r"mailroom\.conf:\d+: testing\.clock_offset: must be an integer")


def testing(offset):
    return "testing = { clock_offset = %s; };\n" % offset


def unix(iso):
    """The store's "YYYY-MM-DDTHH:MM:SSZ" as seconds since the epoch."""
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def shifted(iso, offset, before, after):
    """True when @iso, less @offset, lies between the real times @before and
    @after (a little slack for a slow machine)."""
    return iso is not None and before - SLACK <= unix(iso) - offset <= after + SLACK


def check_times(mid, offset, before, after, how):
    """The message @mid, its ticket and its events were written at the real
    time between @before and @after plus @offset."""
    m = d.env.json("message", "show", str(mid))
    t.ok(shifted(m.get("received"), offset, before, after),
         "%s: received is %+d s off the real time" % (how, offset),
         "received %r, real time %s..%s" % (m.get("received"), before, after))
    events = [e for e in d.env.json("event", "list") if e.get("message") == mid]
    t.ok(events and all(shifted(e["created"], offset, before, after) for e in events),
         "%s: its events are %+d s off too" % (how, offset), events)
    return m


def smtp_send(subject, msgid):
    """Sends a support mail over SMTP; returns (stored id, real time before,
    real time after)."""
    raw = message("jane@client.test", "support@acme.test", subject, msgid=msgid)
    before = time.time()
    s = d.smtp()
    try:
        s.ehlo()
        s.mail("jane@client.test")
        s.rcpt("support@acme.test")
        code, text = s.data(raw.encode("utf-8"))
        s.quit()
    finally:
        s.close()
    after = time.time()
    t.eq(code, 250, "%s: SMTP stores it" % subject)
    return stored_id(text.decode("utf-8", "replace")), before, after


def ctl_deliver(subject, msgid):
    """Delivers a support mail with mailroomctl; returns (its id, before, after)."""
    known = {m["id"] for m in d.messages()}
    before = time.time()
    rc, _, err = d.env.deliver("support@acme.test",
                               message("joe@client.test", "support@acme.test", subject,
                                       msgid=msgid))
    after = time.time()
    t.eq(rc, 0, "%s: deliver exits 0" % subject)
    new = [m["id"] for m in d.messages() if m["id"] not in known]
    t.eq(len(new), 1, "%s: one new message" % subject)
    return (new[0] if new else None), before, after


t.diag("engine: %s" % ("PostgreSQL" if PG else "SQLite"))
d = Daemon(extra=testing(DAY))

with section("a day ahead: mailroomd"):
    t.ok(d.wait_for("testing.clock_offset: the clock runs 86400 s off", 5) is not None,
         "mailroomd warns that its clock is moved", d.log())
    mid, before, after = smtp_send("Clock over SMTP", "clock-1@client.test")
    t.ok(mid is not None, "the 250 names the message")
    m = check_times(mid, DAY, before, after, "SMTP")
    tickets = [link for link in m.get("links", []) if link.startswith("TKT-")]
    t.ok(tickets, "SMTP: it made a ticket", m)
    tk = d.env.json("ticket", "show", tickets[0]) if tickets else {}
    t.ok(shifted(tk.get("created"), DAY, before, after), "SMTP: its ticket was created a day ahead",
         tk)

with section("a day ahead: mailroomctl deliver"):
    mid, before, after = ctl_deliver("Clock by deliver", "clock-2@client.test")
    check_times(mid, DAY, before, after, "deliver")

with section("SIGHUP: the next message has the new offset"):
    d.write_config(testing(-2 * DAY))
    line = d.reload()
    t.ok(line is not None and "reloaded" in line, "the new offset reloads", d.log())
    mid, before, after = smtp_send("Clock after reload", "clock-3@client.test")
    check_times(mid, -2 * DAY, before, after, "SMTP after SIGHUP")
    mid, before, after = ctl_deliver("Clock by deliver after reload", "clock-4@client.test")
    check_times(mid, -2 * DAY, before, after, "deliver after the change")

with section("clock_offset = \"abc\" is refused"):
    d.write_config(testing('"abc"'))
    rc, _, err = d.env.ctl("message", "list")
    t.ok(rc == 78 and ABC.search(err), "mailroomctl refuses it with FILE:LINE (exit 78)", err)
    p = subprocess.run([os.path.join(BUILD, "mailroomd"), "-c", d.env.conf, "--check"],
                       capture_output=True, timeout=60)
    t.ok(p.returncode == 78 and ABC.search(p.stderr.decode()),
         "mailroomd --check refuses it (exit 78)", p.stderr)
    line = d.reload()
    t.ok(line is not None and "reload refused" in line and ABC.search(line),
         "a reload refuses it and says why", d.log())
    mid, before, after = smtp_send("Clock after a refused reload", "clock-5@client.test")
    d.write_config(testing(-2 * DAY))  # so that mailroomctl can read the database
    check_times(mid, -2 * DAY, before, after, "SMTP after a refused reload")

with section("no testing group: the real time"):
    d.write_config("")
    line = d.reload()
    t.ok(line is not None and "reloaded" in line, "the config without testing reloads")
    mid, before, after = smtp_send("Clock at the real time", "clock-6@client.test")
    check_times(mid, 0, before, after, "SMTP at offset 0")

t.eq(d.stop(), 0, "mailroomd stops cleanly")
