"""mrrelay - the SMTP relay of the outgoing-mail tests: an aiosmtpd server
on 127.0.0.1 that stores what it accepts and answers as the test says.

    r = Relay(tls=(cert, key), auth=("mailroom", "secret"))  # auth_exclude=["PLAIN"]
    ... mailroomd sends through 127.0.0.1:r.port ...
    r.wait_count(1)
    m = r.messages()[0]          # mail_from, rcpt_tos, helo, peer, data, message
    r.control(mode="tempfail")   # 451 to every RCPT from now on
    r.control(reply_rcpt={"temp": "451 4.3.0 try later"})
    r.control(mode="ok", delay=0.5)  # each RCPT answered 0.5 s late
    r.stop(); r.start()          # down, then up on the same port
    r.close()

The server runs as a process of its own, `/usr/bin/python3 mrrelay.py
--serve ...` (Debian's python, the one python3-aiosmtpd is installed for;
the python3 on the PATH may be another), which prints its port on a line
of its own once it listens.  The unit test tests/unit/test-relay.c starts
it that way too.  It dies with the process that started it (--parent:
PR_SET_PDEATHSIG, and a check that this parent is still the one), and
Relay.close() runs at exit.

What it answers is read from DIR/control.json at every RCPT, so a test
changes it without a restart:
  {"mode": "ok" | "tempfail" | "reject",   451 or 550 to every RCPT
   "reply_rcpt": {"temp": "451 4.3.0 try later", ...},
                                           by the recipient's local part's
                                           prefix (the first that fits)
   "delay": 0.5}                           seconds before each RCPT is
                                           answered (default 0: at once),
                                           other connections served
                                           meanwhile; before RCPT, not
                                           DATA: a client that gives up
                                           while it waits leaves nothing
                                           stored
Every message accepted is a folder DIR/messages/SEQ/ (envelope.json:
mail_from, rcpt_tos, helo (the client's EHLO/HELO name), peer ([host,
port] of the client's connection); message.eml: the data as received,
CRLF line ends),
made under another name and renamed whole: a reader sees all of it or
none.  SEQ sorts in the order of arrival, across restarts.

aiosmtpd 1.4 does not announce PIPELINING (it handles pipelined commands
all the same); --pipelining makes it announce it, for the unit test.

Standard library only on the test's side; aiosmtpd only in --serve.
"""
import argparse
import asyncio
import atexit
import email
import email.policy
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
SERVER_PYTHON = "/usr/bin/python3"
START_TIMEOUT = 20  # seconds until the server prints its port

DEFAULT_REPLY = {"tempfail": "451 4.3.0 try later", "reject": "550 5.1.1 no such user"}


def available():
    """True when SERVER_PYTHON can import aiosmtpd."""
    try:
        return subprocess.run([SERVER_PYTHON, "-c", "import aiosmtpd"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unavailable_reason():
    return "%s cannot import aiosmtpd (apt-get install python3-aiosmtpd)" % SERVER_PYTHON


def _write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def read_messages(directory):
    """The messages stored in @directory (a relay's), oldest first: dicts of
    mail_from, rcpt_tos, helo, peer, data (bytes) and message (email.message)."""
    top = os.path.join(directory, "messages")
    out = []
    try:
        names = sorted(n for n in os.listdir(top) if not n.startswith("."))
    except FileNotFoundError:
        return out
    for name in names:
        with open(os.path.join(top, name, "envelope.json")) as f:
            env = json.load(f)
        with open(os.path.join(top, name, "message.eml"), "rb") as f:
            data = f.read()
        out.append({"mail_from": env["mail_from"], "rcpt_tos": env["rcpt_tos"], "data": data,
                    "helo": env.get("helo"), "peer": env.get("peer"),
                    "message": email.message_from_bytes(data, policy=email.policy.default)})
    return out


class Relay:
    """An aiosmtpd relay for one test; see the module's comment."""

    def __init__(self, tls=None, auth=None, require_starttls=False, auth_exclude=(),
                 directory=None):
        self.tls = tls
        self.auth = auth
        self.auth_exclude = list(auth_exclude)
        self.require_starttls = require_starttls
        self.own_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="mrrelay-")
        self.port = 0
        self.proc = None
        self.log = None
        self.control()
        atexit.register(self.close)
        self.start()

    # --- the server process ------------------------------------------------

    def start(self):
        """Starts the server (again: on the same port).  Returns self."""
        if self.proc is not None:
            return self
        cmd = [SERVER_PYTHON, "-I", os.path.abspath(__file__), "--serve", "--dir", self.dir,
               "--port", str(self.port), "--parent", str(os.getpid())]
        if self.tls:
            cmd += ["--tls", self.tls[0], self.tls[1]]
            if self.require_starttls:
                cmd.append("--require-starttls")
        if self.auth:
            cmd += ["--auth", self.auth[0], self.auth[1]]
        for mech in self.auth_exclude:
            cmd += ["--auth-exclude", mech]
        self.log = open(os.path.join(self.dir, "relay.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log, cwd="/")
        line = b""
        deadline = time.monotonic() + START_TIMEOUT
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                break
            chunk = os.read(self.proc.stdout.fileno(), 64)
            if not chunk:
                break
            line += chunk
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("the relay did not start within %ds: %r\n%s"
                               % (START_TIMEOUT, line, self.server_log()))
        self.port = int(line)
        return self

    def stop(self):
        """Stops the server (SIGTERM, then SIGKILL); the messages stay."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        self.log.close()

    def close(self):
        """Stops the server and removes its folder (when it made it)."""
        self.stop()
        if self.own_dir and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    def server_log(self):
        try:
            with open(os.path.join(self.dir, "relay.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(%s)" % e

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- behaviour -----------------------------------------------------------

    def control(self, mode="ok", reply_rcpt=None, delay=0):
        """What the server answers to RCPT from now on: @mode "ok",
        "tempfail" (451) or "reject" (550) for every recipient, and
        @reply_rcpt {local-part prefix: reply line} before that; each
        answer @delay seconds late."""
        if mode not in ("ok", "tempfail", "reject"):
            raise ValueError("mode: %r" % mode)
        if not delay >= 0:
            raise ValueError("delay: %r" % delay)
        _write_atomic(os.path.join(self.dir, "control.json"),
                      json.dumps({"mode": mode, "reply_rcpt": reply_rcpt or {},
                                  "delay": delay}).encode())

    # --- what it took ----------------------------------------------------------

    def messages(self):
        return read_messages(self.dir)

    def count(self):
        try:
            return len([n for n in os.listdir(os.path.join(self.dir, "messages"))
                        if not n.startswith(".")])
        except FileNotFoundError:
            return 0

    def wait_count(self, n, timeout=10):
        """Waits until at least @n messages are stored; returns the count."""
        deadline = time.monotonic() + timeout
        while self.count() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.count()


# --- the server (--serve, under SERVER_PYTHON) ---------------------------------------


def _die_with(parent):
    """SIGKILL when @parent (the process that started us) ends."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if parent and os.getppid() != parent:
        os._exit(1)  # it ended before the line above


def _rcpt_reply(directory, address):
    """What the control file says to answer @address: (a reply line, or
    None to accept it; the seconds to wait before the answer)."""
    try:
        with open(os.path.join(directory, "control.json")) as f:
            ctl = json.load(f)
    except (OSError, ValueError):
        ctl = {}
    delay = ctl.get("delay") or 0
    local = address.split("@", 1)[0]
    for prefix, reply in (ctl.get("reply_rcpt") or {}).items():
        if local.startswith(prefix):
            return reply, delay
    return DEFAULT_REPLY.get(ctl.get("mode", "ok")), delay


class _Handler:
    def __init__(self, directory):
        self.dir = directory
        self.seq = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply, delay = _rcpt_reply(self.dir, address)
        if delay > 0:
            # the loop serves the others meanwhile; a connection lost
            # cancels this
            await asyncio.sleep(delay)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.seq += 1
        name = "%020d-%d-%06d" % (time.time_ns(), os.getpid(), self.seq)
        top = os.path.join(self.dir, "messages")
        tmp = os.path.join(top, "." + name)
        os.makedirs(tmp)
        with open(os.path.join(tmp, "envelope.json"), "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "helo": session.host_name,
                       "peer": list(session.peer[:2]) if session.peer else None}, f)
        with open(os.path.join(tmp, "message.eml"), "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(top, name))
        return "250 2.0.0 Ok: queued as %s" % name


class _PipeliningHandler(_Handler):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # this hook replaces the one that would keep the name
        session.host_name = hostname
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:]


def serve(args):
    import ssl
    from aiosmtpd.smtp import SMTP, AuthResult

    _die_with(args.parent)
    # aiosmtpd 1.4.3 warns at every login that it sets a deprecated field
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    tls_context = None
    if args.tls:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls[0], args.tls[1])
    handler = (_PipeliningHandler if args.pipelining else _Handler)(args.dir)
    options = {"hostname": "relay.test", "tls_context": tls_context,
               "require_starttls": args.require_starttls, "timeout": 30}
    if args.auth:
        user, password = args.auth[0].encode(), args.auth[1].encode()
        def authenticator(server, session, envelope, mechanism, auth_data):
            return AuthResult(success=(auth_data.login, auth_data.password) == (user, password),
                              handled=False)

        options.update(auth_required=True, auth_require_tls=tls_context is not None,
                       auth_exclude_mechanism=args.auth_exclude, authenticator=authenticator)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, loop=loop, **options), host=HOST, port=args.port,
        reuse_address=True))
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


def main():
    p = argparse.ArgumentParser(description="the test relay (see mrrelay.py)")
    p.add_argument("--serve", action="store_true", required=True)
    p.add_argument("--dir", required=True, help="control.json and messages/")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--parent", type=int, default=0, help="die when this process ends")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="offer STARTTLS")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"),
                   help="AUTH PLAIN and LOGIN, required before MAIL")
    p.add_argument("--auth-exclude", action="append", default=[], metavar="MECH",
                   help="do not offer this mechanism (PLAIN or LOGIN)")
    p.add_argument("--pipelining", action="store_true", help="announce PIPELINING")
    serve(p.parse_args())


if __name__ == "__main__":
    main()
