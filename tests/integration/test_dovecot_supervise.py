"""ringmail supervises the Dovecot it starts (issue 11, item 6), against
Debian's stock Dovecot and the real binary: the master killed with TERM
and with KILL is noticed at once (logged with its signal), restarted with
back-off (100 ms, doubled on a quick second exit, back to 100 ms after a
quiet spell), and mail and IMAP logins work again within seconds without
a restart of ringmail; lmtp, imap and auth children killed with TERM and
KILL are restarted by Dovecot's master and the very next submission is
delivered (the LMTP pool leaves a dead pooled connection for a fresh
one); a Dovecot that will not start gives 451 and NO [UNAVAILABLE] while
the supervisor keeps retrying with growing delays, and serves again once
it can; a clean stop of ringmail stops Dovecot and never restarts it.
Nothing that got 250 is lost. The time from the kill to the first
delivered message is printed ("measure: ..."). Each test runs on each
I/O backend."""

import os
import re
import signal
import smtplib
import ssl
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import Relay, run_tests  # noqa: E402
from test_smtp import PASSWORD, gpg_armor, submit  # noqa: E402
from test_imap import Raw  # noqa: E402

SENDER = "sender123@example.org"
RCPT = "rcptuser1@example.org"
DOVECOT = os.environ.get("RINGMAIL_DOVECOT_BIN", "/usr/sbin/dovecot")
# Many submissions from one sender: not what the rate limit is for here.
PARAMS = "max_user_send_per_minute = 100000\nmax_user_send_burst_size = 1000"


def relay(backend):
    return Relay(backend, dovecot=True, params=PARAMS)


def wait_for(pred, what, timeout=15):
    """Poll @pred until true; bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timeout waiting for " + what)


def proc_stat(pid):
    """(comm, state, ppid, pgrp) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    f = s[s.rindex(")") + 2:].split()
    return comm, f[0], int(f[1]), int(f[2])


def live_pids():
    for n in os.listdir("/proc"):
        if n.isdigit():
            st = proc_stat(int(n))
            if st is not None and st[1] not in "ZX":
                yield int(n), st


def children(master, comm):
    return [p for p, st in live_pids() if st[2] == master and st[0] == comm]


def group_alive(pgid):
    return [p for p, st in live_pids() if st[3] == pgid]


ARMOR = None


def mail(i):
    """An encrypted message (real OpenPGP, made once: gpg takes its time
    and the measured windows should not include it)."""
    global ARMOR
    if ARMOR is None:
        ARMOR = gpg_armor(os.urandom(200))
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: m%d\r\n"
            b"Message-ID: <%d.%d@test>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/encrypted; "
            b"protocol=\"application/pgp-encrypted\"; boundary=\"XYZ\"\r\n"
            b"\r\n--XYZ\r\nContent-Type: application/pgp-encrypted\r\n\r\n"
            b"Version: 1\r\n\r\n--XYZ\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" % (
                SENDER.encode(), RCPT.encode(), i, i, time.monotonic_ns())
            + ARMOR + b"\r\n--XYZ--\r\n")


class Mail:
    """Submits, counting what got 250. The recipient's account is made
    first (mail to an unknown user is bounced to the sender)."""

    def __init__(self, relay):
        self.relay = relay
        self.ok = 0
        self.n = 0
        assert imap_works(relay)

    def send(self):
        """One submission; True on 250, False on a 4xx/refused connect."""
        self.n += 1
        msg = mail(self.n)
        try:
            refused = submit(self.relay, "submissions", SENDER, SENDER,
                             [RCPT], msg)
        except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused,
                smtplib.SMTPSenderRefused) as e:
            code = getattr(e, "smtp_code", 451)
            assert 400 <= code < 500 or e.recipients, e
            return False
        assert refused == {}, refused
        self.ok += 1
        return True

    def send_until_ok(self, timeout=15):
        """Submit until one gets 250 (bounded, no fixed wait asserted);
        seconds it took."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.send():
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError("no delivery within %d s" % timeout)

    def stored(self):
        n = 0
        for sub in ("new", "cur"):
            d = os.path.join(self.relay.mail_dir, RCPT, sub)
            if os.path.isdir(d):
                n += len(os.listdir(d))
        return n


def imap_login(relay, user=RCPT):
    """A logged-in IMAP session, or None when the login is refused."""
    c = Raw(relay.ports["imaps"])
    assert c.line().startswith(b"* OK ")
    got = c.cmd(b"a1", b"LOGIN " + user.encode() + b" \"" +
                PASSWORD.encode() + b"\"")
    if got[-1].startswith(b"a1 OK "):
        return c
    assert got[-1].startswith(b"a1 NO [UNAVAILABLE]"), got
    c.close()
    return None


def imap_works(relay):
    c = imap_login(relay)
    if c is None:
        return False
    ok = c.cmd(b"s1", b"SELECT INBOX")[-1].startswith(b"s1 OK")
    c.close()
    return ok


def drained(c):
    """Read a session until the server closes it."""
    lines = []
    try:
        while True:
            lines.append(c.line())
    except (EOFError, ConnectionResetError, ssl.SSLError, OSError):
        pass
    c.close()
    return lines


def kill_master(r, m, sig, delay_ms):
    """Kill Dovecot's master with @sig; ringmail must log the exit with
    the back-off @delay_ms, restart it, and serve mail and IMAP again."""
    pid = r.dovecot_pid()
    assert pid, "no Dovecot"
    exits = r.log_count("dovecot: master exited")
    restarts = r.log_count("dovecot: restarted")
    idle = imap_login(r)
    assert idle is not None
    t0 = time.monotonic()
    os.kill(pid, sig)
    # Dovecot is dead once its pid is (on SIGTERM its master first takes
    # its children down, about a second).
    wait_for(lambda: proc_stat(pid) is None or proc_stat(pid)[1] in "ZX",
             "Dovecot's master gone", 10)
    dead = time.monotonic()
    m.send_until_ok()
    print("measure: master %s: kill -> master gone %.0f ms, -> first "
          "delivery %.0f ms after its death" %
          (signal.Signals(sig).name, (dead - t0) * 1000,
           (time.monotonic() - dead) * 1000), flush=True)
    assert r.log_count("dovecot: master exited") == exits + 1
    line = [l for l in r.log if "dovecot: master exited" in l][-1]
    # Dovecot's master exits 0 on SIGTERM (it shuts down cleanly).
    how = "status 0" if sig == signal.SIGTERM else "signal %d" % sig
    assert "(%s) pid=%d" % (how, pid) in line, line
    assert "restarting in %d ms" % delay_ms in line, line
    # The IMAP session on the dead Dovecot ended; a new one works.
    drained(idle)
    wait_for(lambda: imap_works(r), "IMAP login after restart", 10)
    assert r.log_count("dovecot: restarted") == restarts + 1
    new = r.dovecot_pid()
    assert new and new != pid, (pid, new)
    # The old master's children are gone.
    assert group_alive(pid) == [], group_alive(pid)
    # The next ones go straight through.
    for _ in range(3):
        assert m.send(), "submission after restart failed"
    assert m.stored() == m.ok, (m.stored(), m.ok)
    return new


def test_master_killed(backend):
    r = relay(backend).start()
    try:
        m = Mail(r)
        assert m.send()
        assert imap_works(r)
        # TERM, then KILL right after the restart: the second quick exit
        # doubles the delay.
        kill_master(r, m, signal.SIGTERM, 100)
        kill_master(r, m, signal.SIGKILL, 200)
        # After it stayed up for 10 s (DOVECOT_SUP_STABLE_MS) the delay
        # is back to 100 ms.
        t_up = time.monotonic()
        while time.monotonic() - t_up < 10.5:
            time.sleep(0.1)
        master = kill_master(r, m, signal.SIGKILL, 100)
        # Clean stop: Dovecot and its children are gone, no restart.
        r.signal(signal.SIGTERM)
        assert r.wait_exit(30) == 0
        exits = r.log_count("dovecot: master exited")
        assert exits == 3, exits
        assert r.log_count("dovecot stopped pid=%d" % master) == 1
        assert proc_stat(master) is None or proc_stat(master)[1] in "ZX"
        assert group_alive(master) == [], group_alive(master)
        assert m.stored() == m.ok, (m.stored(), m.ok)
    finally:
        r.stop()


def test_children_killed(backend):
    r = relay(backend).start()
    try:
        m = Mail(r)
        assert m.send()
        master = r.dovecot_pid()
        for comm, sig in (("lmtp", signal.SIGTERM), ("lmtp", signal.SIGKILL),
                          ("imap", signal.SIGTERM), ("imap", signal.SIGKILL),
                          ("auth", signal.SIGKILL), ("auth", signal.SIGTERM)):
            # Pooled LMTP connections (both workers) and a live IMAP
            # session, so that each child exists and is in use.
            for _ in range(2):
                assert m.send()
            c = imap_login(r)
            assert c is not None
            pids = wait_for(lambda: children(master, comm),
                            "a Dovecot %s process" % comm, 5)
            for p in pids:
                os.kill(p, sig)
            wait_for(lambda: not any(p in dict(live_pids()) for p in pids),
                     "%s killed" % comm, 5)
            if comm == "imap":
                drained(c)
            else:
                c.close()
            t0 = time.monotonic()
            # The very next submission is delivered, though the pooled
            # LMTP connection it may take is dead (lmtp), or its lmtp
            # process answers 451 4.3.0 once (auth: its userdb
            # connection died).
            assert m.send(), "first submission after killing " + comm
            took = time.monotonic() - t0
            assert imap_works(r), "IMAP after killing " + comm
            print("measure: %s %s -> next delivery %.0f ms" %
                  (comm, signal.Signals(sig).name, took * 1000), flush=True)
            for _ in range(2):
                assert m.send()
            # Dovecot's master restarted its child; ringmail's did not.
            assert r.dovecot_pid() == master
        assert r.log_count("dovecot: master exited") == 0
        assert m.stored() == m.ok, (m.stored(), m.ok)
    finally:
        r.stop()


def test_down_until_it_can_start(backend):
    """A Dovecot that does not start again: 451 and NO [UNAVAILABLE]
    while the supervisor retries with growing delays; serving again as
    soon as it starts."""
    r = relay(backend)
    block = os.path.join(r.dir, "block-dovecot")
    wrapper = os.path.join(r.dir, "dovecot-wrapper")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\n[ -e %s ] && { echo blocked >&2; exit 1; }\n"
                "exec %s \"$@\"\n" % (block, DOVECOT))
    os.chmod(wrapper, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP |
             stat.S_IROTH | stat.S_IXOTH)
    r.start(env={"RINGMAIL_DOVECOT_BIN": wrapper})
    try:
        m = Mail(r)
        assert m.send()
        pid = r.dovecot_pid()
        open(block, "w").close()
        os.kill(pid, signal.SIGTERM)
        r.wait_log("dovecot: master exited (status 0) pid=%d" % pid)
        assert not m.send(), "accepted without Dovecot"
        c = Raw(r.ports["imaps"])
        c.line()
        got = c.cmd(b"a", b"LOGIN " + RCPT.encode() + b" \"" +
                    PASSWORD.encode() + b"\"")
        assert got[-1].startswith(b"a NO [UNAVAILABLE]"), got
        c.close()
        wait_for(lambda: r.log_count("dovecot: restart failed") >= 3,
                 "three failed restarts", 10)
        fails = [l for l in r.log if "dovecot: restart failed" in l]
        delays = [int(re.search(r"retrying in (\d+) ms", l).group(1))
                  for l in fails]
        assert delays[:3] == [200, 400, 800], delays
        os.unlink(block)
        took = m.send_until_ok(20)
        print("measure: unblocked -> first delivery %.0f ms" % (took * 1000),
              flush=True)
        r.wait_log("dovecot: restarted")
        assert imap_works(r)
        assert m.stored() == m.ok, (m.stored(), m.ok)
    finally:
        r.stop()


if __name__ == "__main__":
    if not os.access(DOVECOT, os.X_OK):
        print("SKIP: no " + DOVECOT)
        sys.exit(77)
    run_tests([test_master_killed, test_children_killed,
               test_down_until_it_can_start])
