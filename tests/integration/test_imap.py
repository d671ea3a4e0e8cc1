"""IMAP end to end against Debian's stock Dovecot, which `ringmail serve`
starts itself (hibernation on): capabilities before login, create-on-login
and the login rules, 10 parallel first logins, the chatmail METADATA keys
as chatmail's TestMetadataTokens expects them, IDLE with mail delivered
over SMTP submission (EXISTS, DONE with the client's own tag, deliveries
racing with DONE, pipelined commands after DONE, literals), ALPN "imap" on
443, and Dovecot restarted under an idling client. Encrypted mail is real
OpenPGP made with gpg(1). Each test runs on each I/O backend."""

import imaplib
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import Relay, run_tests, tls_client  # noqa: E402
from test_smtp import PASSWORD, encrypted_mail, submit  # noqa: E402


class Raw:
    """A line-level IMAP client that shows every byte the server sends."""

    def __init__(self, port, tls=True, alpn=None):
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        if tls:
            s = tls_client(alpn=alpn).wrap_socket(s)
        self.sock = s
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        """One response line; a literal at its end is read along."""
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError(self.buf)
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        m = re.search(rb"\{(\d+)\}$", line)
        if m:
            n = int(m.group(1))
            while len(self.buf) < n:
                d = self.sock.recv(65536)
                if not d:
                    raise EOFError(self.buf)
                self.buf += d
            line += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            line += self.line()
        return line

    def until_tagged(self, tag):
        """Lines up to and including the tagged reply for @tag."""
        out = []
        while True:
            ln = self.line()
            out.append(ln)
            if ln.startswith(tag + b" "):
                return out

    def until_tags(self, tags):
        """Lines up to the tagged replies of all @tags (Dovecot may answer
        pipelined commands out of order); {tag: reply}, all lines."""
        want, got, lines = set(tags), {}, []
        while want:
            ln = self.line()
            lines.append(ln)
            t = ln.split(b" ", 1)[0]
            if t in want:
                want.discard(t)
                got[t] = ln
        return got, lines

    def cmd(self, tag, text):
        self.send(tag + b" " + text + b"\r\n")
        return self.until_tagged(tag)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def imap_relay(backend, **kw):
    return Relay(backend, dovecot=True, **kw).start()


def login(relay, user, password=PASSWORD):
    c = Raw(relay.ports["imaps"])
    assert c.line().startswith(b"* OK ")
    r = c.cmd(b"a1", b"LOGIN " + user.encode() + b" \"" +
              password.encode() + b"\"")
    assert r[-1].startswith(b"a1 OK "), r
    return c


def deliver(relay, rcpt, sender="sender123@example.org"):
    refused = submit(relay, "submissions", sender, sender, [rcpt],
                     encrypted_mail(sender, rcpt))
    assert refused == {}, refused


def test_capabilities_and_login(backend):
    r = imap_relay(backend)
    try:
        # 993: TLS 1.3, the greeting lists the chatmail capabilities.
        c = Raw(r.ports["imaps"])
        assert c.sock.version() == "TLSv1.3"
        greet = c.line()
        assert greet.startswith(b"* OK [CAPABILITY "), greet
        caps = c.cmd(b"c1", b"CAPABILITY")
        assert caps[-1].startswith(b"c1 OK"), caps
        for want in (b"XCHATMAIL", b"XDELTAPUSH", b"IMAP4rev1",
                     b"AUTH=PLAIN", b"IDLE", b"SASL-IR"):
            assert want in caps[0].split(), (want, caps)
        assert c.cmd(b"n1", b"NOOP")[-1].startswith(b"n1 OK")
        ident = c.cmd(b"i1", b"ID (\"name\" \"test\")")
        assert ident[0].startswith(b"* ID ") and \
            ident[-1].startswith(b"i1 OK"), ident
        assert c.cmd(b"x1", b"SELECT INBOX")[-1].startswith(b"x1 BAD")
        # Too short a password: no account.
        bad = c.cmd(b"l0", b"LOGIN newuser01@example.org admin")
        assert bad[-1].startswith(b"l0 NO [AUTHENTICATIONFAILED]"), bad
        c.close()
        # First login creates the account (imaplib: a real client).
        m = imaplib.IMAP4_SSL("127.0.0.1", r.ports["imaps"],
                              ssl_context=tls_client())
        assert b"XCHATMAIL" in m.capability()[1][0]
        typ, _ = m.login("newuser01@example.org", PASSWORD)
        assert typ == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"0"], (typ, data)
        m.logout()
        r.wait_log("imap auth user=<newuser01@example.org> result=created")
        # Second login works; a wrong password does not.
        m = imaplib.IMAP4_SSL("127.0.0.1", r.ports["imaps"],
                              ssl_context=tls_client())
        assert m.login("newuser01@example.org", PASSWORD)[0] == "OK"
        m.logout()
        m = imaplib.IMAP4_SSL("127.0.0.1", r.ports["imaps"],
                              ssl_context=tls_client())
        try:
            m.login("newuser01@example.org", "wrong password x")
            raise AssertionError("wrong password accepted")
        except imaplib.IMAP4.error as e:
            assert "AUTHENTICATIONFAILED" in str(e), e
        m.shutdown()
        # AUTHENTICATE PLAIN, with SASL-IR and with a continuation.
        import base64
        cred = base64.b64encode(b"\0newuser01@example.org\0" +
                                PASSWORD.encode())
        c = Raw(r.ports["imaps"])
        c.line()
        got = c.cmd(b"a1", b"AUTHENTICATE PLAIN " + cred)
        assert got[-1].startswith(b"a1 OK [CAPABILITY "), got
        assert b"METADATA" in got[-1] and b"XDELTAPUSH" in got[-1], got
        c.close()
        c = Raw(r.ports["imaps"])
        c.line()
        c.send(b"a2 AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send(cred + b"\r\n")
        assert c.until_tagged(b"a2")[-1].startswith(b"a2 OK ")
        c.close()
        # LOGIN with literals (synchronizing and LITERAL+).
        c = Raw(r.ports["imaps"])
        c.line()
        user = b"newuser01@example.org"
        c.send(b"a3 LOGIN {%d}\r\n" % len(user))
        assert c.line().startswith(b"+ ")
        c.send(user + b" {%d+}\r\n" % len(PASSWORD) + PASSWORD.encode() +
               b"\r\n")
        got = c.until_tagged(b"a3")
        assert got == [got[-1]] and got[-1].startswith(b"a3 OK "), got
        c.close()
        # A literal over the pre-auth limit is refused, the session lives.
        c = Raw(r.ports["imaps"])
        c.line()
        c.send(b"a4 LOGIN {100000}\r\n")
        assert c.line().startswith(b"a4 BAD"), "big literal"
        assert c.cmd(b"a5", b"NOOP")[-1].startswith(b"a5 OK")
        c.close()
        # Last login recorded (day granularity).
        r.wait_log("imap login user=<newuser01@example.org>")
    finally:
        r.stop()


def test_starttls_required_on_143(backend):
    r = imap_relay(backend)
    try:
        s = socket.create_connection(("127.0.0.1", r.ports["imap"]),
                                     timeout=20)
        c = Raw.__new__(Raw)
        c.sock, c.buf = s, b""
        greet = c.line()
        assert b"STARTTLS" in greet and b"LOGINDISABLED" in greet, greet
        assert b"XCHATMAIL" in greet and b"XDELTAPUSH" in greet
        no = c.cmd(b"l1", b"LOGIN someone12@example.org \"%s\"" %
                   PASSWORD.encode())
        assert no[-1].startswith(b"l1 NO [PRIVACYREQUIRED]"), no
        # Pipelined bytes after STARTTLS are discarded.
        c.send(b"t1 STARTTLS\r\nx1 NOOP\r\n")
        assert c.line().startswith(b"t1 OK")
        c.sock = tls_client().wrap_socket(s)
        assert c.sock.version() == "TLSv1.3"
        caps = c.cmd(b"c1", b"CAPABILITY")
        assert b"AUTH=PLAIN" in caps[0] and b"STARTTLS" not in caps[0]
        ok = c.cmd(b"l2", b"LOGIN someone12@example.org \"%s\"" %
                   PASSWORD.encode())
        assert ok[-1].startswith(b"l2 OK"), ok
        assert c.cmd(b"s1", b"SELECT INBOX")[-1].startswith(b"s1 OK")
        c.cmd(b"z", b"LOGOUT")
        c.close()
    finally:
        r.stop()


def test_parallel_first_logins(backend):
    r = imap_relay(backend)
    try:
        results = []

        def one():
            try:
                m = imaplib.IMAP4_SSL("127.0.0.1", r.ports["imaps"],
                                      ssl_context=tls_client(), timeout=60)
                results.append(m.login("parallel1@example.org",
                                       PASSWORD)[0])
                m.logout()
            except Exception as e:  # reported below
                results.append(repr(e))

        ts = [threading.Thread(target=one) for _ in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(90)
        assert results == ["OK"] * 10, results
        assert r.log_count("imap auth user=<parallel1@example.org> "
                           "result=created") == 1
    finally:
        r.stop()


def test_metadata(backend):
    secret = "turn-test-secret"
    r = Relay(backend, dovecot=True,
              params="privacy_mail = privacy@example.org",
              extra="turn_secret_file = %s" % "TURNFILE")
    with open(r.cfg) as f:
        cfg = f.read()
    turnfile = os.path.join(r.dir, "turn.secret")
    appfile = os.path.join(r.dir, "appversions.json")
    with open(turnfile, "w") as f:
        f.write(secret + "\n")
    with open(appfile, "w") as f:
        f.write('{"clients":[]}\n')
    with open(r.cfg, "w") as f:
        f.write(cfg.replace("TURNFILE", turnfile) +
                "appversions_file = %s\n" % appfile)
    r.start()
    try:
        c = login(r, "metauser1@example.org")
        # chatmail's TestMetadataTokens::test_set_get_metadata
        got = c.cmd(b"m1", b'SETMETADATA INBOX (/private/devicetoken '
                    b'"1111" )')
        assert got[-1].startswith(b"m1 OK Setmetadata completed"), got
        got = c.cmd(b"m2", b"GETMETADATA INBOX /private/devicetoken")
        assert got[0] == b"* METADATA INBOX (/private/devicetoken " \
            b"{4}\r\n1111)", got
        assert got[-1].startswith(b"m2 OK"), got
        c.cmd(b"m3", b'SETMETADATA INBOX (/private/devicetoken "2222")')
        got = c.cmd(b"m4", b"GETMETADATA INBOX /private/devicetoken")
        assert got[0].endswith(b"{9}\r\n1111 2222)"), got
        # As Delta Chat (async-imap) sends it: every string quoted.
        got = c.cmd(b"m4q", b'SETMETADATA "INBOX" ("/private/devicetoken"'
                    b' "openpgp:a+b/c=")')
        assert got[-1].startswith(b"m4q OK Setmetadata completed"), got
        got = c.cmd(b"m4r", b'GETMETADATA "INBOX" "/private/devicetoken"')
        assert got[0].endswith(b"{24}\r\n1111 2222 openpgp:a+b/c=)"), got
        # Setting a token again does not duplicate it.
        c.cmd(b"m5", b'SETMETADATA INBOX (/private/devicetoken "1111")')
        got = c.cmd(b"m6", b"GETMETADATA INBOX (/private/devicetoken)")
        assert got[0].endswith(b"{24}\r\n1111 2222 openpgp:a+b/c=)"), got
        # Server metadata as Delta Chat asks for it.
        got = c.cmd(b"g1", b'GETMETADATA "" (/shared/comment /shared/admin'
                    b' /shared/vendor/deltachat/irohrelay'
                    b' /shared/vendor/deltachat/turn)')
        meta = got[0]
        assert meta.startswith(b'* METADATA "" (/shared/comment NIL '
                               b'/shared/admin {26}\r\nmailto:privacy@'
                               b'example.org /shared/vendor/deltachat/'
                               b'irohrelay {19}\r\nhttps://example.org '
                               b'/shared/vendor/deltachat/turn {'), meta
        m = re.search(rb"turn \{\d+\}\r\nexample\.org:3478:(\d+):(\S+)\)$",
                      meta)
        assert m, meta
        import base64
        import hashlib
        import hmac
        want = base64.b64encode(hmac.new(secret.encode(), m.group(1),
                                         hashlib.sha1).digest())
        assert m.group(2) == want, (m.group(2), want)
        assert int(m.group(1)) > time.time() + 4 * 86400
        got = c.cmd(b"g2", b'GETMETADATA "" /shared/vendor/deltachat/'
                    b'maxsmtprecipients')
        assert got[0].endswith(b"maxsmtprecipients {4}\r\n1000)"), got
        got = c.cmd(b"g3", b'GETMETADATA "" /shared/vendor/deltachat/'
                    b'appversions')
        assert got[0].endswith(b'appversions {14}\r\n{"clients":[]})'), got
        # Other METADATA goes to Dovecot.
        got = c.cmd(b"o1", b'SETMETADATA INBOX (/private/comment "hi")')
        assert got[-1].startswith(b"o1 OK"), got
        got = c.cmd(b"o2", b"GETMETADATA INBOX /private/comment")
        assert got[0].endswith(b"{2}\r\nhi)"), got
        c.close()
    finally:
        r.stop()


def idle_start(c, tag=b"i1"):
    assert c.cmd(b"s1", b"SELECT INBOX")[-1].startswith(b"s1 OK")
    c.send(tag + b" IDLE\r\n")
    ln = c.line()
    assert ln.startswith(b"+ "), ln


def wait_line(c, pred, what):
    while True:
        ln = c.line()
        if pred(ln):
            return ln
        # Only untagged data may come while idling.
        assert ln.startswith(b"* "), (what, ln)


def test_idle(backend):
    r = imap_relay(backend)
    try:
        rcpt = "idleuser1@example.org"
        c = login(r, rcpt)
        idle_start(c)
        deliver(r, rcpt)
        ln = wait_line(c, lambda l: l.endswith(b" EXISTS"), "exists")
        assert ln == b"* 1 EXISTS", ln
        # DONE: the tagged OK with the client's own tag, nothing else.
        c.send(b"DONE\r\n")
        got = c.until_tagged(b"i1")
        assert got[-1].startswith(b"i1 OK"), got
        for ln in got[:-1]:
            assert ln.startswith(b"* "), got
        # Pipelined commands right after DONE.
        c.send(b"i2 IDLE\r\n")
        assert c.line().startswith(b"+ ")
        deliver(r, rcpt)
        wait_line(c, lambda l: l == b"* 2 EXISTS", "exists 2")
        c.send(b"DONE\r\nn1 NOOP\r\nf1 FETCH 2 (BODY.PEEK[HEADER.FIELDS "
               b"(SUBJECT)])\r\n")
        got = c.until_tagged(b"i2")
        assert got[-1].startswith(b"i2 OK"), got
        tagged, lines = c.until_tags([b"n1", b"f1"])
        assert tagged[b"n1"].startswith(b"n1 OK"), lines
        assert tagged[b"f1"].startswith(b"f1 OK"), lines
        assert b"Subject: [...]" in b"".join(lines), lines
        for ln in lines:
            assert ln.split(b" ", 1)[0] in (b"*", b"n1", b"f1"), lines
        # A literal in a relayed command (APPEND with {n}).
        msg = b"Subject: x\r\n\r\nhi\r\n"
        c.send(b"p1 APPEND INBOX {%d}\r\n" % len(msg))
        assert c.line().startswith(b"+ ")
        c.send(msg + b"\r\n")
        got = c.until_tagged(b"p1")
        assert got[-1].startswith(b"p1 OK"), got
        # DONE racing with deliveries: no stray tagged or "+" line. The
        # mail (real gpg output) and the SMTP sessions are ready before.
        import smtplib
        senders = []
        for k in range(8):
            who = "racer%04d@example.org" % k
            s = smtplib.SMTP_SSL("127.0.0.1", r.ports["submissions"],
                                 context=tls_client(), timeout=30)
            s.login(who, PASSWORD)
            senders.append((s, who, encrypted_mail(who, rcpt)))
        for round_, (s, who, msg) in enumerate(senders):
            tag = b"r%d" % round_
            c.send(tag + b" IDLE\r\n")
            assert c.line().startswith(b"+ ")
            th = threading.Thread(target=s.sendmail, args=(who, [rcpt], msg))
            th.start()
            time.sleep(0.002 * round_)
            c.send(b"DONE\r\n")
            got = c.until_tagged(tag)
            assert got[-1].startswith(tag + b" OK"), got
            for ln in got[:-1]:
                assert ln.startswith(b"* "), (round_, got)
            th.join(30)
            got = c.cmd(tag + b"n", b"NOOP")
            assert got[-1].startswith(tag + b"n OK"), got
            for ln in got[:-1]:
                assert ln.startswith(b"* "), (round_, got)
            s.quit()
        got = c.cmd(b"st", b"STATUS INBOX (MESSAGES)")
        assert b"(MESSAGES 11)" in got[0], got
        assert r.log_count("imap wake user=<%s>" % rcpt) >= 2
        c.cmd(b"z", b"LOGOUT")
        c.close()
        r.wait_log("imap disconnect from=127.0.0.1 user=<%s>" % rcpt)
    finally:
        r.stop()


def dovecot_children(relay):
    """Process titles of the children of the Dovecot serve started."""
    master, out = relay.dovecot_pid(), []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != master:
                continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                out.append(f.read().split(b"\0")[0].decode())
        except (OSError, ValueError, IndexError):
            pass
    return out


def wait_hibernated(relay):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        kids = dovecot_children(relay)
        if any(k.endswith("/imap-hibernate") for k in kids) and \
                not any(k.endswith("/imap") for k in kids):
            return
        time.sleep(0.1)
    raise AssertionError("not hibernated: %r" % dovecot_children(relay))


def test_idle_hibernated(backend):
    r = Relay(backend, dovecot=True,
              extra="imap_hibernate_timeout = 1s").start()
    try:
        rcpt = "hibernat1@example.org"
        c = login(r, rcpt)
        idle_start(c)
        wait_hibernated(r)
        deliver(r, rcpt)
        wait_line(c, lambda l: l == b"* 1 EXISTS", "exists, hibernated")
        wait_hibernated(r)
        # Two deliveries in a row while hibernated.
        deliver(r, rcpt)
        deliver(r, rcpt)
        wait_line(c, lambda l: l == b"* 3 EXISTS", "exists 3")
        c.send(b"DONE\r\n")
        got = c.until_tagged(b"i1")
        assert got[-1].startswith(b"i1 OK"), got
        for ln in got[:-1]:
            assert ln.startswith(b"* "), got
        got = c.cmd(b"n", b"NOOP")
        assert got == [got[-1]] and got[-1].startswith(b"n OK"), got
        c.close()
    finally:
        r.stop()


def test_big_literals(backend):
    """A 3 MiB message up (APPEND literal, streamed to Dovecot) and down
    (FETCH literal, streamed to a slow reader): byte for byte, with the
    proxy's buffers bounded both ways."""
    r = imap_relay(backend)
    try:
        c = login(r, "bigliter1@example.org")
        body = b"".join(b"line %07d %s\r\n" % (i, os.urandom(24).hex()
                                                 .encode())
                        for i in range(45000))
        msg = b"Subject: big\r\n\r\n" + body
        c.send(b"p1 APPEND INBOX {%d}\r\n" % len(msg))
        assert c.line().startswith(b"+ ")
        c.send(msg + b"\r\n")
        got = c.until_tagged(b"p1")
        assert got[-1].startswith(b"p1 OK"), got
        assert c.cmd(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
        c.send(b"f1 FETCH 1 BODY.PEEK[]\r\n")
        time.sleep(1)  # let Dovecot fill the proxy while we do not read
        head = c.line()
        while not head.startswith(b"* 1 FETCH"):
            head = c.line()
        assert msg in head, (len(head), len(msg))
        assert c.until_tagged(b"f1")[-1].startswith(b"f1 OK")
        c.close()
    finally:
        r.stop()


def test_limits(backend):
    r = Relay(backend, dovecot=True,
              params="max_imap_connections = 3").start()
    try:
        held = [Raw(r.ports["imaps"]) for _ in range(3)]
        for h in held:
            assert h.line().startswith(b"* OK ")
        # 143 says why; 993 cannot without a handshake: it just closes.
        over = Raw(r.ports["imap"], tls=False)
        assert over.line() == b"* BYE Too many connections."
        over.close()
        try:
            Raw(r.ports["imaps"]).line()
            raise AssertionError("over the limit on 993")
        except (ConnectionResetError, ssl.SSLError, EOFError):
            pass
        for h in held:
            h.close()
        # All three slots are free again only once the server closed them.
        deadline = time.monotonic() + 20
        while r.log_count("imap disconnect") < 3:
            assert time.monotonic() < deadline, "held sessions not closed"
            time.sleep(0.05)
        # An over-long pre-auth line.
        c = Raw(r.ports["imaps"])
        c.line()
        c.send(b"a NOOP " + b"x" * 9000 + b"\r\n")
        assert c.line() == b"* BYE Input line too long."
        c.close()
        # Too many invalid commands.
        c = Raw(r.ports["imaps"])
        c.line()
        c.send(b"a FOO\r\n" * 10)
        lines = [c.line() for _ in range(11)]
        assert lines[-1] == b"* BYE Too many invalid IMAP commands.", lines
        assert all(l.startswith(b"a BAD ") for l in lines[:-1]), lines
        c.close()
    finally:
        r.stop()
    # Pre-auth timeout, on a relay of its own: the timer runs from the
    # connect, so a handshake slowed by a loaded machine must not eat it.
    r = Relay(backend, dovecot=True,
              extra="imap_preauth_timeout = 2s").start()
    try:
        c = Raw(r.ports["imaps"])
        c.line()
        assert c.line() == b"* BYE Disconnected for inactivity."
        c.close()
    finally:
        r.stop()


def test_alpn_imap_on_443(backend):
    r = imap_relay(backend)
    try:
        c = Raw(r.ports["https"], alpn=["imap"])
        assert c.sock.selected_alpn_protocol() == "imap"
        greet = c.line()
        assert greet.startswith(b"* OK [CAPABILITY ") and \
            b"XCHATMAIL" in greet, greet
        ok = c.cmd(b"a", b"LOGIN alpnuser1@example.org \"%s\"" %
                   PASSWORD.encode())
        assert ok[-1].startswith(b"a OK"), ok
        c.close()
    finally:
        r.stop()


def test_idle_sessions_on_every_worker(backend):
    """One user idling in several sessions: a delivery reaches every one
    of them on whichever worker it is (events are routed by the presence
    index to the workers where the user is logged in), and a user logged
    in elsewhere is not woken. Which worker accepts is the kernel's
    choice: with epoll the sessions spread over both workers, io_uring's
    multishot accepts tend to land on one; test_events covers the index
    itself."""
    r = imap_relay(backend)
    try:
        rcpt = "spreadus1@example.org"
        other = login(r, "spreadot1@example.org")
        idle_start(other)
        sessions = []

        def workers_of(needle):
            # The first byte of a connection id is its worker.
            return {l.split(" imap ", 1)[0].split()[-1][:2]
                    for l in r.log if needle in l}
        logged_in = "imap auth user=<%s> result=" % rcpt
        # Dovecot allows 10 sessions per user and IP.
        while len(sessions) < 4 or (len(workers_of(logged_in)) < 2 and
                                    len(sessions) < 8):
            c = login(r, rcpt)
            idle_start(c)
            sessions.append(c)
        deliver(r, rcpt)
        for c in sessions:
            ln = wait_line(c, lambda l: l.endswith(b" EXISTS"), "exists")
            assert ln == b"* 1 EXISTS", ln
        woke = workers_of("imap wake user=<%s>" % rcpt)
        assert woke == workers_of(logged_in), (woke, len(sessions))
        assert r.log_count("imap wake user=<%s>" % rcpt) == len(sessions)
        assert r.log_count("imap wake user=<spreadot1@") == 0
        other.send(b"DONE\r\n")
        assert other.until_tagged(b"i1")[-1].startswith(b"i1 OK")
        for c in sessions + [other]:
            c.close()
    finally:
        r.stop()


def test_dovecot_restart_under_idle(backend):
    r = imap_relay(backend)
    try:
        c = login(r, "restarts1@example.org")
        idle_start(c)
        pid = r.dovecot_pid()
        assert pid
        os.kill(pid, 15)
        # The client gets a BYE and the connection closes.
        lines = []
        try:
            while True:
                lines.append(c.line())
        except (EOFError, ConnectionResetError, ssl.SSLError):
            pass
        assert any(l.startswith(b"* BYE") for l in lines), lines
        c.close()
        # ringmail keeps serving: a new login fails cleanly while
        # Dovecot is down.
        d = Raw(r.ports["imaps"])
        d.line()
        got = d.cmd(b"a", b"LOGIN restarts1@example.org \"%s\"" %
                    PASSWORD.encode())
        assert got[-1].startswith(b"a NO [UNAVAILABLE]"), got
        d.close()
        # Dovecot comes back (same config, same master secret): logins
        # and instant IDLE work again without restarting ringmail.
        deadline = time.monotonic() + 20
        while r.dovecot_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        subprocess.run([os.environ.get("RINGMAIL_DOVECOT_BIN",
                                       "/usr/sbin/dovecot"), "-c",
                        os.path.join(r.dovecot_base,
                                     "ringmail-dovecot.conf")],
                       check=True)
        with open(r.cfg) as f:
            dport = int(re.search(r"dovecot_imap_port = (\d+)",
                                  f.read()).group(1))
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", dport),
                                         timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        c = login(r, "restarts1@example.org")
        idle_start(c)
        deliver(r, "restarts1@example.org")
        wait_line(c, lambda l: l == b"* 1 EXISTS", "exists after restart")
        c.send(b"DONE\r\n")
        assert c.until_tagged(b"i1")[-1].startswith(b"i1 OK")
        c.close()
    finally:
        r.stop()


if __name__ == "__main__":
    run_tests([test_capabilities_and_login, test_starttls_required_on_143,
               test_parallel_first_logins, test_metadata, test_idle,
               test_idle_hibernated, test_big_literals, test_limits,
               test_alpn_imap_on_443, test_idle_sessions_on_every_worker,
               test_dovecot_restart_under_idle])
