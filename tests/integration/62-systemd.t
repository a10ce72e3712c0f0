#!/usr/bin/env python3
# mailroomd under systemd's notify protocol (READY, STATUS, RELOADING,
# STOPPING over $NOTIFY_SOCKET), start-up errors, and --check.
import os
import signal
import socket
import subprocess
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mrtest import Tap, Env, BUILD

t = Tap()
e = Env('smtp = { listen = [ "127.0.0.1:0" ]; };\nlmtp = { listen = [ "127.0.0.1:0" ]; };\n')
daemon = os.path.join(BUILD, "mailroomd")

rc = subprocess.run([daemon, "-c", e.conf, "--check"], capture_output=True, timeout=30)
t.ok(rc.returncode == 0 and b"ok" in rc.stdout, "--check accepts a good configuration")
bad = os.path.join(e.dir, "bad.conf")
open(bad, "w").write('addresses = ( { address = "crm@acme.test"; role = "x"; } );\n')
rc = subprocess.run([daemon, "-c", bad, "--check"], capture_output=True, timeout=30)
t.ok(rc.returncode == 78 and b"bad.conf:1" in rc.stderr, "--check refuses a bad one with file:line, exit 78")
rc = subprocess.run([daemon, "--bogus"], capture_output=True, timeout=30)
t.eq(rc.returncode, 64, "unknown option: exit 64")
rc = subprocess.run([daemon, "--help"], capture_output=True, timeout=30)
t.ok(rc.returncode == 0 and b"--foreground" in rc.stdout, "--help")

# A port that is taken: daemonized start-up reports it on the terminal.
blocker = socket.socket()
blocker.bind(("127.0.0.1", 0))
blocker.listen(1)
taken = blocker.getsockname()[1]
conf2 = os.path.join(e.dir, "taken.conf")
open(conf2, "w").write(open(e.conf).read().replace('"127.0.0.1:0" ]; };\nlmtp', '"127.0.0.1:%d" ]; };\nlmtp' % taken, 1))
rc = subprocess.run([daemon, "-c", conf2], capture_output=True, timeout=30)
t.ok(rc.returncode == 69 and b"cannot listen" in rc.stderr,
     "daemon mode: a taken port is reported and exits 69", rc.stderr)
blocker.close()

# The notify protocol.
sock_path = os.path.join(e.dir, "notify.sock")
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(sock_path)
ns.settimeout(10)
env = dict(os.environ, NOTIFY_SOCKET=sock_path)
p = subprocess.Popen([daemon, "-c", e.conf], env=env, stderr=subprocess.PIPE)


def wait_for(word, limit=10):
    seen = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            msg = ns.recv(4096).decode()
        except socket.timeout:
            break
        seen.append(msg)
        if word in msg:
            return msg, seen
    return None, seen


msg, seen = wait_for("READY=1")
t.ok(msg is not None, "READY=1 is sent (under systemd it stays in the foreground)", seen)
msg, seen = wait_for("STATUS=")
t.ok(msg is not None and "sessions" in msg, "STATUS= line", seen)
p.send_signal(signal.SIGHUP)
msg, seen = wait_for("RELOADING=1")
t.ok(msg is not None, "SIGHUP: RELOADING=1", seen)
msg, seen = wait_for("READY=1")
t.ok(msg is not None, "SIGHUP: READY=1 again", seen)
p.send_signal(signal.SIGTERM)
msg, seen = wait_for("STOPPING=1")
t.ok(msg is not None, "SIGTERM: STOPPING=1", seen)
try:
    rc = p.wait(timeout=15)
except subprocess.TimeoutExpired:
    p.kill()
    rc = None
t.eq(rc, 0, "SIGTERM: exit 0")
err = p.stderr.read().decode()
t.ok("reloaded" in err and "stopped" in err, "the log tells reload and stop", err)

# The unit runs as the user that systemd/mailroom.sysusers creates (make
# install applies it with systemd-sysusers): applied here to a scratch root.
root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
unit = open(os.path.join(root, "systemd", "mailroomd.service.in")).read()
user = [x.split("=", 1)[1].strip() for x in unit.splitlines() if x.startswith("User=")]
scratch = os.path.join(e.dir, "sysroot")
os.makedirs(os.path.join(scratch, "etc"))
rc = subprocess.run(["systemd-sysusers", "--root=" + scratch, os.path.join(root, "systemd", "mailroom.sysusers")],
                    capture_output=True, timeout=30)
passwd = open(os.path.join(scratch, "etc", "passwd")).read() if rc.returncode == 0 else ""
entry = [x.split(":") for x in passwd.splitlines() if user and x.startswith(user[0] + ":")]
t.ok(len(entry) == 1 and entry[0][5] == "/var/lib/mailroom" and entry[0][6].endswith("nologin"),
     "systemd-sysusers creates the unit's User= (%s), home the state directory, no login" % user,
     (rc.stderr, passwd))
