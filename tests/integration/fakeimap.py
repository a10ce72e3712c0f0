"""fakeimap - one configurable fake IMAP4rev1 server for the tests.

    srv = FakeImap({1: raw1, 2: raw2}, uidvalidity=7, caps=("IDLE", "UIDPLUS"))
    port = srv.port                       # 127.0.0.1, one thread per connection
    srv.set(body_nil={2})                 # switch a misbehaviour on (any time)
    srv.set(body_nil=set())               # ... and off again
    srv.add(raw)                          # new mail (told to a client in IDLE)
    srv.wait(lambda: srv.logins >= 2, 10) # poll a condition with a deadline
    srv.body_fetches_of(2)                # what it was asked: see "records"
    srv.close()

No real server misbehaves like this on purpose; a fake one on loopback, of
the test's own, does it every time.  Every switch is an attribute of the
server (see MODES), read at the moment an answer is written, so a test can
change it between two commands.

Records (read them under srv.lock or after the fact): sessions (one dict
per connection: "commands", "closed", "held"), logins, body_fetches
(list of (uids tuple, partial (offset, count) or None)), listings (list
of UID-set texts), partials (list of (uid, offset, count)), stores (list of
(uids tuple, text)), deleted (UIDs flagged \\Deleted), expunged (UIDs
removed by EXPUNGE/UID EXPUNGE or MOVE), moved (uid -> folder), flood_sent
(bytes of flood written), idles.
"""
import re
import select
import socket
import threading
import time

from mrproc import wait_until
from mrtest import imap_uid_set

# The misbehaviours, with their defaults (nothing odd).  srv.set(**kw).
MODES = {
    # listing and body answers
    "dup_listing": frozenset(),   # UIDs whose listing FETCH is sent twice
    "dup_body": frozenset(),      # UIDs whose body FETCH is sent twice
    "flags_in_body": frozenset(),  # UIDs: an extra "* n FETCH (FLAGS (\Seen) UID u)"
                                  # in the body answer (before and after the body)
    "unsolicited": 0,             # "* n FETCH (FLAGS ())" lines for other
                                  # messages, mixed into every listing and body answer
    "exists_storm": 0,            # "* n EXISTS" lines mixed into every answer
    "body_nil": frozenset(),      # UIDs answered "BODY[] NIL"
    "body_omit": frozenset(),     # UIDs left out of a body answer (which is OK)
    "expunge_on_fetch": frozenset(),  # UIDs expunged by "someone else" when their
                                  # body is asked for: left out, no longer listed
    "extra_bodies": {},           # uid -> bytes: bodies added to every body answer
                                  # (UIDs not asked for; a stored UID's bytes too)
    "sizes": {},                  # uid -> RFC822.SIZE announced (the truth otherwise)
    "partial": None,              # None | "full": every partial is answered with
                                  # count bytes (padded), never a short one |
                                  # "more": count + partial_extra bytes
    "partial_extra": 4096,
    "partial_max": None,          # after this many partial answers in all, the
                                  # truth again (a bound for a client that never stops)
    "flood_listing": 0,           # bytes of "* 1 FETCH (FLAGS ())" lines before
                                  # the listing's tagged OK
    "drip_greeting": 0.0,         # seconds between bytes of the greeting
    "drip_answers": 0.0,          # seconds between bytes of every answer
    "bye_in_literal": frozenset(),  # UIDs: half the body's literal, "* BYE", close
    "select_no": False,           # SELECT/EXAMINE answered NO
    "hang_select": False,         # SELECT/EXAMINE never answered (srv.hung is
                                  # set; the connection waits for the client to go away)
    "bye_after_login": False,     # LOGIN answered OK, then "* BYE" and close
    "login_no": False,            # LOGIN answered NO
    "huge_bodies": {},            # uid -> n: its body is a literal of n bytes ("x"),
                                  # streamed in 64 KB writes (body_bytes_sent)
    "hang_body": frozenset(),     # UIDs: a body fetch (whole or in parts) naming one is never
                                  # answered (srv.hung is set; the connection
                                  # waits for the client to go away)
    "on_store": None,             # hook(srv, uids) -> bytes to send before a
                                  # UID STORE's OK (under srv.lock)
    "on_listing": None,           # hook(srv) -> bytes to send before a listing
}

FLOOD_LINE = b"* 1 FETCH (FLAGS ())\r\n"


class Closed(Exception):
    pass


class FakeImap:
    def __init__(self, messages=None, uidvalidity=1, caps=("IDLE", "UIDPLUS"), folder="INBOX"):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.folder = folder
        self.msgs = {}                  # uid -> bytes (what is in the folder)
        self.flags = {}                 # uid -> set of flags
        self.uidvalidity = uidvalidity
        self.uidnext = 1
        self.caps = list(caps)
        self.folders = {"INBOX", folder}
        for uid, raw in sorted((messages or {}).items()):
            self.add(raw, uid)
        for k, v in MODES.items():
            setattr(self, k, dict(v) if isinstance(v, dict) else v)
        # records
        self.sessions = []
        self.logins = 0
        self.body_fetches = []
        self.listings = []
        self.partials = []
        self.stores = []
        self.deleted = set()
        self.expunged = set()
        self.moved = {}
        self.flood_sent = 0
        self.body_bytes_sent = 0
        self.hung = threading.Event()
        self.idles = 0
        # greeting hold: the next `_hold` connections wait for release()
        self._hold = 0
        self._released = threading.Event()
        self._released.set()
        self._closing = False
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    # --- the test's side ----------------------------------------------------

    def set(self, **kw):
        """Switches misbehaviours (names of MODES); sets become frozensets."""
        with self.lock:
            for k, v in kw.items():
                if k not in MODES and k != "uidvalidity":
                    raise KeyError("no such mode: %s" % k)
                if isinstance(v, (set, list, tuple)):
                    v = frozenset(v)
                setattr(self, k, v)

    def add(self, raw, uid=None):
        """Puts @raw in the folder (at @uid, or the next UID); returns the UID."""
        with self.lock:
            if uid is None:
                uid = self.uidnext
            self.msgs[uid] = raw
            self.flags[uid] = set()
            self.uidnext = max(self.uidnext, uid + 1)
            self.changed.notify_all()
            return uid

    def remove(self, uid):
        """Another client expunged @uid."""
        with self.lock:
            self.msgs.pop(uid, None)
            self.flags.pop(uid, None)
            self.changed.notify_all()

    def hold_greetings(self, n=1):
        """The next @n connections get no greeting until release()."""
        with self.lock:
            self._hold = n
            self._released.clear()

    def release(self):
        self._released.set()

    def held(self):
        """Connections waiting for their greeting now."""
        with self.lock:
            return sum(1 for s in self.sessions if s["held"] and not s["greeted"])

    def wait(self, check, timeout=10):
        def locked():
            with self.lock:
                return check()
        return wait_until(locked, timeout, 0.05)

    def body_fetches_of(self, uid, partial=None):
        """How many body fetches named @uid (partial: True/False/None = any)."""
        with self.lock:
            return sum(1 for uids, p in self.body_fetches if uid in uids and
                       (partial is None or (p is not None) == partial))

    def commands(self):
        """Every command of every connection, in order (tag stripped)."""
        with self.lock:
            return [c for s in self.sessions for c in s["commands"]]

    def close(self):
        self._closing = True
        self._released.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            conns = [s["conn"] for s in self.sessions]
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # --- the server's side ----------------------------------------------------

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                held = self._hold > 0
                if held:
                    self._hold -= 1
                sess = {"conn": conn, "commands": [], "closed": False, "held": held,
                        "greeted": False, "n": len(self.sessions)}
                self.sessions.append(sess)
            threading.Thread(target=self._session, args=(sess,), daemon=True).start()

    def _session(self, sess):
        conn = sess["conn"]
        try:
            if sess["held"]:
                while not self._released.wait(0.1):
                    if self._closing:
                        return
            if self._closing:
                return
            Conn(self, sess).run()
        except (OSError, Closed):
            pass
        finally:
            with self.lock:
                sess["closed"] = True
            try:
                conn.close()
            except OSError:
                pass

    def _msn(self):
        """uid -> message sequence number, and the sorted UIDs."""
        uids = sorted(self.msgs)
        return {u: i + 1 for i, u in enumerate(uids)}, uids


class Conn:
    def __init__(self, srv, sess):
        self.srv = srv
        self.sess = sess
        self.sock = sess["conn"]
        self.sock.settimeout(60)
        self.buf = b""
        self.selected = False

    # I/O
    def send(self, data, drip=None):
        srv = self.srv
        if drip is None:
            drip = srv.drip_answers
        if not drip:
            self.sock.sendall(data)
            return
        for i in range(len(data)):
            if srv._closing:
                raise Closed()
            self.sock.sendall(data[i:i + 1])
            if i + 1 < len(data):
                time.sleep(drip)

    def readline(self, timeout=None):
        """A line with its CRLF; literals ({n}) are taken in with a "+" answer.
        None on timeout (when @timeout is given)."""
        out = b""
        while True:
            while b"\n" not in self.buf:
                if timeout is not None:
                    r, _, _ = select.select([self.sock], [], [], timeout)
                    if not r:
                        return None
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Closed()
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            out += line + b"\n"
            m = re.search(rb"\{(\d+)\+?\}\r?\n$", out)
            if not m:
                return out
            n = int(m.group(1))
            if not out.rstrip().endswith(b"+}"):
                self.sock.sendall(b"+ go on\r\n")
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Closed()
                self.buf += chunk
            out += self.buf[:n]
            self.buf = self.buf[n:]

    def caps(self):
        return b"* CAPABILITY IMAP4rev1 " + " ".join(self.srv.caps).encode() + b"\r\n"

    def noise(self):
        """Unsolicited lines to mix into an answer (under srv.lock)."""
        srv = self.srv
        out = b""
        n = len(srv.msgs)
        for i in range(srv.exists_storm):
            out += b"* %d EXISTS\r\n" % n
        for i in range(srv.unsolicited):
            if n:
                out += b"* %d FETCH (FLAGS ())\r\n" % (i % n + 1)
        return out

    def run(self):
        srv = self.srv
        with srv.lock:
            self.sess["greeted"] = True
        self.send(b"* OK [CAPABILITY IMAP4rev1 " + " ".join(srv.caps).encode() +
                  b"] fake ready\r\n", drip=srv.drip_greeting)
        while True:
            line = self.readline()
            m = re.match(rb"(\S+) (.*?)\r?\n$", line, re.S)
            if not m:
                return
            tag, cmd = m.group(1), m.group(2).decode("utf-8", "replace")
            with srv.lock:
                self.sess["commands"].append(cmd)
            up = cmd.upper()
            word = up.split(" ", 1)[0]
            if word == "UID":
                word = "UID " + (up.split(" ", 2) + [""])[1]
            handler = getattr(self, "do_" + word.replace(" ", "_"), None)
            if handler is None:
                self.send(tag + b" OK fine\r\n")
            elif handler(tag, cmd) is False:
                return

    # commands
    def do_CAPABILITY(self, tag, cmd):
        self.send(self.caps() + tag + b" OK done\r\n")

    def do_NOOP(self, tag, cmd):
        with self.srv.lock:
            out = self.noise()
        self.send(out + tag + b" OK noop\r\n")

    def do_LOGIN(self, tag, cmd):
        srv = self.srv
        with srv.lock:
            srv.logins += 1
            no, bye = srv.login_no, srv.bye_after_login
        if no:
            self.send(tag + b" NO [AUTHENTICATIONFAILED] no\r\n")
            return None
        self.send(tag + b" OK [CAPABILITY IMAP4rev1 " + " ".join(srv.caps).encode() +
                  b"] logged in\r\n")
        if bye:
            self.send(b"* BYE going away\r\n")
            return False
        return None

    def do_LOGOUT(self, tag, cmd):
        self.send(b"* BYE bye\r\n" + tag + b" OK bye\r\n")
        return False

    def do_LIST(self, tag, cmd):
        with self.srv.lock:
            out = b"".join(b'* LIST () "/" "%s"\r\n' % f.encode() for f in sorted(self.srv.folders))
        self.send(out + tag + b" OK done\r\n")

    def do_CREATE(self, tag, cmd):
        name = cmd.split(" ", 1)[1].strip().strip('"')
        with self.srv.lock:
            self.srv.folders.add(name)
        self.send(tag + b" OK created\r\n")

    def hang(self):
        """Answers nothing more: sets srv.hung and waits for the client to
        go away (what it sends meanwhile is read and dropped)."""
        srv = self.srv
        srv.hung.set()
        while not srv._closing:
            try:
                if self.readline(timeout=0.5) is not None:
                    continue
            except Closed:
                return False
        return False

    def do_SELECT(self, tag, cmd):
        srv = self.srv
        with srv.lock:
            hang = srv.hang_select
        if hang:
            return self.hang()
        with srv.lock:
            if srv.select_no:
                out = tag + b" NO [UNAVAILABLE] no folder today\r\n"
            else:
                self.selected = True
                out = (b"* FLAGS (\\Seen \\Deleted)\r\n* %d EXISTS\r\n* 0 RECENT\r\n"
                       b"* OK [UIDVALIDITY %d] v\r\n* OK [UIDNEXT %d] n\r\n"
                       % (len(srv.msgs), srv.uidvalidity, srv.uidnext) +
                       tag + (b" OK [READ-ONLY] examined\r\n" if cmd.upper().startswith("EXAMINE")
                              else b" OK [READ-WRITE] selected\r\n"))
        self.send(out)

    do_EXAMINE = do_SELECT

    def do_UID_FETCH(self, tag, cmd):
        srv = self.srv
        parts = cmd.split(" ", 3)
        text, what = parts[2], parts[3].upper() if len(parts) > 3 else ""
        if "BODY" not in what:
            return self.listing(tag, text)
        part = re.search(r"BODY\.PEEK\[\]<(\d+)\.(\d+)>", what)
        with srv.lock:
            uids = imap_uid_set(text, srv.msgs)
            srv.body_fetches.append((tuple(uids), (int(part.group(1)), int(part.group(2)))
                                     if part else None))
            hang = any(u in srv.hang_body for u in uids)
            huge = {u: srv.huge_bodies[u] for u in uids if u in srv.huge_bodies}
        if hang:
            return self.hang()
        if huge and not part:
            return self.stream(tag, uids, huge)
        with srv.lock:
            gone = [u for u in uids if u in srv.expunge_on_fetch]
            for u in gone:
                srv.remove(u)
                srv.expunged.add(u)
            msn, _ = srv._msn()
            out = b"".join(b"* %d EXPUNGE\r\n" % (i + 1) for i in range(len(gone)))
            out += self.noise()
            bye_at = None
            for u in uids:
                if u in gone or u in srv.body_omit:
                    continue
                n = msn[u]
                if u in srv.flags_in_body:
                    out += b"* %d FETCH (FLAGS (\\Seen) UID %d)\r\n" % (n, u)
                if u in srv.body_nil:
                    one = b"* %d FETCH (UID %d BODY[] NIL)\r\n" % (n, u)
                elif part:
                    start, count = int(part.group(1)), int(part.group(2))
                    srv.partials.append((u, start, count))
                    if u in srv.bye_in_literal:     # in parts too
                        out += b"* %d FETCH (UID %d BODY[]<%d> {%d}\r\nxx" % (n, u, start, count)
                        bye_at = True
                        break
                    if u in huge:   # its part of the huge literal
                        chunk = b"x" * max(0, min(count, huge[u] - start))
                    else:
                        chunk = srv.msgs[u][start:start + count]
                    lying = srv.partial_max is None or len(srv.partials) <= srv.partial_max
                    if srv.partial == "full" and lying:
                        chunk = (chunk + b"x" * count)[:count]
                    elif srv.partial == "more" and lying:
                        chunk = (chunk + b"x" * (count + srv.partial_extra))[:count +
                                                                               srv.partial_extra]
                    one = b"* %d FETCH (UID %d BODY[]<%d> {%d}\r\n%s)\r\n" % (
                        n, u, start, len(chunk), chunk)
                else:
                    raw = srv.msgs[u]
                    if u in srv.bye_in_literal:
                        out += b"* %d FETCH (UID %d BODY[] {%d}\r\n%s" % (
                            n, u, len(raw), raw[:len(raw) // 2])
                        bye_at = True
                        break
                    one = b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (n, u, len(raw), raw)
                out += one
                if u in srv.dup_body:
                    out += one
                if u in srv.flags_in_body:
                    out += b"* %d FETCH (FLAGS (\\Seen) UID %d)\r\n" % (n, u)
            if not bye_at:
                for u, raw in sorted(srv.extra_bodies.items()):
                    out += b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (
                        msn.get(u, 1), u, len(raw), raw)
                out += self.noise()
        if bye_at:
            self.send(out + b"\r\n* BYE in the middle of it\r\n")
            return False
        self.send(out + tag + b" OK done\r\n")
        return None

    def stream(self, tag, uids, huge):
        """Bodies of @uids, the huge ones streamed."""
        srv = self.srv
        for u in uids:
            with srv.lock:
                n = srv._msn()[0][u]
                raw = srv.msgs.get(u, b"")
            if u not in huge:
                self.send(b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (n, u, len(raw), raw))
                continue
            self.send(b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (n, u, huge[u]))
            chunk = b"x" * 65536
            left = huge[u]
            while left > 0:
                if srv._closing:
                    raise Closed()
                self.sock.sendall(chunk[:left])
                with srv.lock:
                    srv.body_bytes_sent += min(left, len(chunk))
                left -= len(chunk)
            self.send(b")\r\n")
        self.send(tag + b" OK done\r\n")

    def listing(self, tag, text):
        srv = self.srv
        with srv.lock:
            srv.listings.append(text)
            msn, all_uids = srv._msn()
            uids = imap_uid_set(text, all_uids)
            out = srv.on_listing(srv) if srv.on_listing else b""
            out += self.noise()
            for u in uids:
                one = b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (
                    msn[u], u, srv.sizes.get(u, len(srv.msgs[u])))
                out += one
                if u in srv.dup_listing:
                    out += one
            out += self.noise()
            flood = srv.flood_listing
        self.send(out)
        if flood:
            block = FLOOD_LINE * (65536 // len(FLOOD_LINE))
            sent = 0
            while sent < flood:
                if srv._closing:
                    raise Closed()
                self.sock.sendall(block)
                sent += len(block)
                with srv.lock:
                    srv.flood_sent += len(block)
        self.send(tag + b" OK done\r\n")

    def do_UID_SEARCH(self, tag, cmd):
        """UID SEARCH ALL | UID SEARCH UID set (what a client asks to learn
        whether a UID still exists); anything else: ALL."""
        srv = self.srv
        m = re.search(r"\bUID (\S+)\s*$", cmd.split(" ", 2)[2].upper())
        with srv.lock:
            uids = imap_uid_set(m.group(1), srv.msgs) if m else sorted(srv.msgs)
        self.send(b"* SEARCH" + b"".join(b" %d" % u for u in uids) + b"\r\n" +
                  tag + b" OK searched\r\n")

    def do_FETCH(self, tag, cmd):
        """FETCH by sequence numbers: UID and RFC822.SIZE only."""
        srv = self.srv
        text = cmd.split(" ")[1]
        with srv.lock:
            _, all_uids = srv._msn()
            seqs = imap_uid_set(text, list(range(1, len(all_uids) + 1)))
            out = b"".join(b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (
                n, all_uids[n - 1], srv.sizes.get(all_uids[n - 1], len(srv.msgs[all_uids[n - 1]])))
                for n in seqs)
        self.send(out + tag + b" OK done\r\n")

    def do_STATUS(self, tag, cmd):
        srv = self.srv
        with srv.lock:
            out = b"* STATUS %s (MESSAGES %d UIDNEXT %d UIDVALIDITY %d)\r\n" % (
                srv.folder.encode(), len(srv.msgs), srv.uidnext, srv.uidvalidity)
        self.send(out + tag + b" OK status\r\n")

    def do_UID_STORE(self, tag, cmd):
        srv = self.srv
        parts = cmd.split(" ", 4)
        text, op, flags = parts[2], parts[3].upper(), parts[4] if len(parts) > 4 else ""
        names = re.findall(r"\\?\w+", flags)
        with srv.lock:
            uids = imap_uid_set(text, srv.msgs)
            srv.stores.append((tuple(uids), "%s %s" % (op, flags)))
            msn, _ = srv._msn()
            out = b""
            for u in uids:
                if op.startswith("+"):
                    srv.flags[u].update(names)
                elif op.startswith("-"):
                    srv.flags[u].difference_update(names)
                else:
                    srv.flags[u] = set(names)
                if "\\Deleted" in srv.flags[u]:
                    srv.deleted.add(u)
                if "SILENT" not in op:
                    out += b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (
                        msn[u], u, " ".join(sorted(srv.flags[u])).encode())
            out += self.noise()
            if srv.on_store:
                out = srv.on_store(srv, uids) + out
        self.send(out + tag + b" OK stored\r\n")

    def _expunge(self, only=None):
        srv = self.srv
        out = b""
        with srv.lock:
            for u in sorted(srv.msgs, reverse=True):
                if "\\Deleted" in srv.flags[u] and (only is None or u in only):
                    n = srv._msn()[0][u]
                    srv.remove(u)
                    srv.expunged.add(u)
                    out += b"* %d EXPUNGE\r\n" % n
        return out

    def do_EXPUNGE(self, tag, cmd):
        self.send(self._expunge() + tag + b" OK expunged\r\n")

    def do_UID_EXPUNGE(self, tag, cmd):
        with self.srv.lock:
            only = set(imap_uid_set(cmd.split(" ")[2], self.srv.msgs))
        self.send(self._expunge(only) + tag + b" OK expunged\r\n")

    def _copy(self, tag, cmd, move):
        srv = self.srv
        parts = cmd.split(" ", 3)
        folder = parts[3].strip().strip('"')
        with srv.lock:
            if folder not in srv.folders:
                self.send(tag + b" NO [TRYCREATE] no such folder\r\n")
                return
            uids = imap_uid_set(parts[2], srv.msgs)
            out = b""
            for u in uids:
                srv.moved[u] = folder
            if move:
                for u in sorted(uids, reverse=True):
                    out += b"* %d EXPUNGE\r\n" % srv._msn()[0][u]
                    srv.remove(u)
                    srv.expunged.add(u)
        self.send(out + tag + b" OK done\r\n")

    def do_UID_COPY(self, tag, cmd):
        self._copy(tag, cmd, False)

    def do_UID_MOVE(self, tag, cmd):
        self._copy(tag, cmd, True)

    def do_IDLE(self, tag, cmd):
        srv = self.srv
        with srv.lock:
            srv.idles += 1
            told = len(srv.msgs)
        self.send(b"+ idling\r\n")
        while True:
            line = self.readline(timeout=0.2)
            if line is not None:
                if not line.upper().startswith(b"DONE"):
                    return False
                self.send(tag + b" OK idle done\r\n")
                return None
            with srv.lock:
                now = len(srv.msgs)
                out = b""
            if now != told:
                out += b"* %d EXISTS\r\n" % now
                told = now
            if out:
                self.send(out)
