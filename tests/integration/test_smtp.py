"""SMTP end to end against Debian's stock Dovecot, which `ringmail serve`
starts itself: create-on-login over SMTP AUTH, encrypted mail submitted on
587 (STARTTLS) and 465 (TLS) landing in the recipient's maildir with the
privacy rewrites, a 523 leaving nothing on disk, the rate limit, MX mail
on port 25 (DKIM-signed by dkimpy, the key served by a real dnsmasq on
loopback that ringmail queries through c-ares: signed and aligned is
delivered without its DKIM-Signature, unsigned gets 554 No DKIM signature
found, a broken or foreign signature 554 No valid DKIM signature found),
quota, the unknown-user bounce (Dovecot down -> 451: in
test_dovecot_supervise). Encrypted mail
is real OpenPGP made here with gpg(1) (SKESK + SEIPD). Each test runs on
each I/O backend."""

import os
import shutil
import signal
import socket
import smtplib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import (BIN, Relay, recv_all, run_tests,  # noqa: E402
                              tls_client)
import dns_harness  # noqa: E402

try:
    import dkim  # Debian's python3-dkim
except ImportError:
    dkim = None

PASSWORD = "correct horse battery"


def gpg_armor(payload):
    """Real OpenPGP: payload encrypted with a passphrase (SKESK + SEIPD),
    ASCII-armored, CRLF line ends."""
    home = tempfile.mkdtemp(prefix="ringmail-gpg-")
    try:
        r = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--quiet", "--armor",
             "--symmetric", "--pinentry-mode", "loopback", "--passphrase",
             "secret", "--compress-algo", "none", "--output", "-"],
            input=payload, capture_output=True, check=True)
    finally:
        # gpg may have started an agent for this home: stop it with it.
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(home, ignore_errors=True)
    return r.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def encrypted_mail(sender, rcpt, subject="hello", extra=b"", size=200):
    armor = gpg_armor(os.urandom(size))
    head = (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            b"Message-ID: <%d@test>\r\n"
            % (sender.encode(), rcpt.encode(), subject.encode(),
               time.monotonic_ns()))
    return (head + extra +
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/encrypted; "
            b"protocol=\"application/pgp-encrypted\"; boundary=\"XYZ\"\r\n"
            b"\r\n--XYZ\r\nContent-Type: application/pgp-encrypted\r\n\r\n"
            b"Version: 1\r\n\r\n--XYZ\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + armor +
            b"\r\n--XYZ--\r\n")


class pytest_raises:
    """with pytest_raises(E) as e: ... -> e.value is the E raised."""

    def __init__(self, exc):
        self.exc = exc
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        if typ is None:
            raise AssertionError("%s not raised" % self.exc.__name__)
        if not issubclass(typ, self.exc):
            return False
        self.value = value
        return True


def plain_mail(sender, rcpt):
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: plain\r\n\r\nhello\r\n"
            % (sender.encode(), rcpt.encode()))


def submit(relay, port_name, user, sender, rcpts, msg, password=PASSWORD):
    """Log in (creating the account on first login) and send."""
    port = relay.ports[port_name]
    if port_name == "submissions":
        c = smtplib.SMTP_SSL("127.0.0.1", port, context=tls_client(),
                             timeout=30)
    else:
        c = smtplib.SMTP("127.0.0.1", port, timeout=30)
        c.starttls(context=tls_client())
    try:
        c.ehlo("client.example.net")
        c.login(user, password)
        return c.sendmail(sender, rcpts, msg)
    finally:
        try:
            c.quit()
        except smtplib.SMTPException:
            pass


def login(relay, user):
    c = smtplib.SMTP_SSL("127.0.0.1", relay.ports["submissions"],
                         context=tls_client(), timeout=30)
    c.ehlo("client.example.net")
    c.login(user, PASSWORD)
    c.quit()


def wait_messages(relay, addr, n, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = relay.messages(addr)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    return relay.messages(addr)


def test_submission_delivers_with_privacy(backend):
    r = Relay(backend, dovecot=True).start()
    try:
        login(r, "bobbybob9@example.org")
        extra = (b"Received: from [192.0.2.77] by client\r\n"
                 b"X-Mailer: Delta Chat\r\nUser-Agent: test\r\n"
                 b"X-Originating-IP: 192.0.2.77\r\n"
                 b"DKIM-Signature: v=1; d=example.org; b=xx\r\n")
        for port in ("submission", "submissions"):
            msg = encrypted_mail("alice1234@example.org",
                                 "bobbybob9@example.org", "secret subject",
                                 extra)
            refused = submit(r, port, "alice1234@example.org",
                             "alice1234@example.org",
                             ["bobbybob9@example.org"], msg)
            assert refused == {}, refused
        # 250 is sent only after Dovecot's LMTP 250: both are on disk
        # the moment sendmail returns, no waiting.
        got = r.messages("bobbybob9@example.org")
        assert len(got) == 2, len(got)
        for m in got:
            head = m.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            assert b"Subject: [...]" in head, head
            for gone in (b"secret subject", b"Received:", b"X-Mailer:",
                         b"User-Agent:", b"X-Originating-IP:",
                         b"DKIM-Signature:", b"192.0.2.77", b"127.0.0.1"):
                assert gone not in m, gone
            assert b"-----BEGIN PGP MESSAGE-----" in m
        # The account was created by the first SMTP login.
        assert r.wait_log("smtp auth user=<alice1234@example.org> "
                          "result=created")
        assert r.log_count("Outgoing: Filtering encrypted mail.") == 2
        # SIGTERM with no client left: the drain does not wait for the
        # pooled LMTP connections to Dovecot (they are not clients).
        r.signal(signal.SIGTERM)
        assert r.wait_log("serve: drained open=0")
        assert r.wait_exit() == 0
    finally:
        r.stop()


def test_unencrypted_rejected_leaves_nothing(backend):
    r = Relay(backend, dovecot=True).start()
    try:
        login(r, "bobbybob9@example.org")
        try:
            submit(r, "submissions", "alice1234@example.org",
                   "alice1234@example.org", ["bobbybob9@example.org"],
                   plain_mail("alice1234@example.org",
                              "bobbybob9@example.org"))
            raise AssertionError("cleartext accepted")
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 523, e
            assert b"Encryption Needed" in e.smtp_error, e
        time.sleep(0.3)
        for sub in ("new", "cur", "tmp"):
            assert r.messages("bobbybob9@example.org", sub) == [], sub
        # MAIL FROM must be the login (553 at RCPT).
        try:
            submit(r, "submission", "alice1234@example.org",
                   "mallory12@example.org", ["bobbybob9@example.org"],
                   encrypted_mail("mallory12@example.org",
                                  "bobbybob9@example.org"))
            raise AssertionError("foreign sender accepted")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients["bobbybob9@example.org"]
            assert code == 553, (code, text)
        # A wrong password never changes the account.
        try:
            submit(r, "submissions", "alice1234@example.org",
                   "alice1234@example.org", ["bobbybob9@example.org"],
                   b"x", password="wrong password!")
            raise AssertionError("wrong password accepted")
        except smtplib.SMTPAuthenticationError as e:
            assert e.smtp_code == 535, e
    finally:
        r.stop()


def test_rate_limit(backend):
    r = Relay(backend, dovecot=True,
              params="max_user_send_per_minute = 1\n"
                     "max_user_send_burst_size = 3").start()
    try:
        login(r, "bobbybob9@example.org")
        c = smtplib.SMTP_SSL("127.0.0.1", r.ports["submissions"],
                             context=tls_client(), timeout=30)
        c.ehlo("client.example.net")
        c.login("alice1234@example.org", PASSWORD)
        codes = []
        for _ in range(5):
            try:
                c.sendmail("alice1234@example.org", ["bobbybob9@example.org"],
                           encrypted_mail("alice1234@example.org",
                                          "bobbybob9@example.org"))
                codes.append(250)
            except smtplib.SMTPRecipientsRefused as e:
                code, text = e.recipients["bobbybob9@example.org"]
                assert b"4.7.1: Too much mail from" in text, text
                codes.append(code)
        c.quit()
        assert codes == [250, 250, 250, 450, 450], codes
        assert len(wait_messages(r, "bobbybob9@example.org", 3)) == 3
    finally:
        r.stop()


class PeerDomain:
    """A peer relay's DKIM: an RSA key (openssl), its record in dnsmasq."""

    def __init__(self, domain="example.net", selector="opendkim", ttl=3600):
        self.dir = tempfile.mkdtemp(prefix="ringmail-peer-")
        self.key = os.path.join(self.dir, "peer.key")
        subprocess.run(["openssl", "genrsa", "-out", self.key, "2048"],
                       check=True, capture_output=True)
        pub = subprocess.run(["openssl", "rsa", "-in", self.key, "-pubout"],
                             check=True, capture_output=True).stdout
        p = "".join(ln for ln in pub.decode().splitlines()
                    if not ln.startswith("-"))
        self.domain, self.selector = domain, selector
        self.dns = dns_harness.DnsServer(
            {"%s._domainkey.%s" % (selector, domain):
             "v=DKIM1;k=rsa;p=%s;s=email;t=s" % p},
            local=("test", domain), ttl=ttl).start()

    def sign(self, msg, domain=None):
        with open(self.key, "rb") as f:
            pem = f.read()
        h = dkim.sign(msg, self.selector.encode(),
                      (domain or self.domain).encode(), pem,
                      canonicalize=(b"relaxed", b"simple"),
                      include_headers=[b"from", b"to", b"subject",
                                       b"message-id", b"content-type"])
        return h.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + msg

    def close(self):
        self.dns.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_mx_incoming(backend):
    peer = PeerDomain()
    # The relay's own signing key, made by `ringmail dkim keygen`.
    own_key = os.path.join(peer.dir, "own.private")
    subprocess.run([BIN, "dkim", "--domain", "example.org", "--key",
                    own_key, "keygen"], check=True, capture_output=True)
    r = Relay(backend, dovecot=True,
              extra="dns_server = %s\ndkim_key_file = %s" %
              (peer.dns.server, own_key)).start()
    try:
        assert r.wait_log("serve: dkim signing domain=example.org "
                          "selector=opendkim key=" + own_key)
        login(r, "bobbybob9@example.org")
        c = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=30)
        c.ehlo("mx.example.net")
        code, text = c.mail("carol@example.net")
        assert code == 530, (code, text)
        assert b"Must issue a STARTTLS command first" in text
        c.starttls(context=tls_client())
        c.ehlo("mx.example.net")
        # New accounts refuse cleartext (enforceE2EEincoming).
        try:
            c.sendmail("carol@example.net", ["bobbybob9@example.org"],
                       plain_mail("carol@example.net",
                                  "bobbybob9@example.org"))
            raise AssertionError("cleartext accepted")
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 523, e
        # Relaying is refused.
        try:
            c.sendmail("carol@example.net", ["x@elsewhere.net"], b"x")
            raise AssertionError("relayed")
        except smtplib.SMTPRecipientsRefused as e:
            assert e.recipients["x@elsewhere.net"][0] == 554
        # Encrypted but unsigned: the origin check (after the E2EE one).
        msg = encrypted_mail("carol@example.net", "bobbybob9@example.org")
        try:
            c.sendmail("carol@example.net", ["bobbybob9@example.org"], msg)
            raise AssertionError("unsigned accepted")
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 554, e
            assert e.smtp_error == b"5.7.1 No DKIM signature found", e
        # Signed, then changed on the way; signed by another domain.
        bad = [peer.sign(msg).replace(b"Subject: hello", b"Subject: hullo"),
               peer.sign(msg, domain="other.test")]
        for m in bad:
            try:
                c.sendmail("carol@example.net", ["bobbybob9@example.org"], m)
                raise AssertionError("bad signature accepted")
            except smtplib.SMTPDataError as e:
                assert e.smtp_code == 554, e
                assert e.smtp_error == \
                    b"5.7.1 No valid DKIM signature found", e
        assert r.messages("bobbybob9@example.org") == []
        # A broken signature next to a valid aligned one does no harm.
        msg = peer.sign(encrypted_mail(
            "carol@example.net", "bobbybob9@example.org", "kept",
            b"DKIM-Signature: v=1; d=example.net; b=yy\r\n"
            b"Authentication-Results: x; dkim=pass\r\n"))
        assert c.sendmail("carol@example.net", ["BobbyBob9@example.org"],
                          msg) == {}
        # From a domain literal (an IP-only relay): no DKIM to check.
        lit = encrypted_mail("carol@[127.0.0.1]", "bobbybob9@example.org",
                             "literal")
        assert c.sendmail("carol@[127.0.0.1]", ["bobbybob9@example.org"],
                          lit) == {}
        # A client that leaves while its key lookup hangs (the DNS of
        # peer.slow.test never answers): the check is dropped with it.
        gone = r.log_count("smtp disconnect")
        c2 = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=30)
        c2.starttls(context=tls_client())
        c2.ehlo("mx.peer.slow.test")
        assert c2.mail("carol@peer.slow.test")[0] == 250
        assert c2.rcpt("bobbybob9@example.org")[0] == 250
        assert c2.docmd("DATA")[0] == 354
        c2.send(peer.sign(encrypted_mail("carol@peer.slow.test",
                                         "bobbybob9@example.org", "slow"),
                          domain="peer.slow.test") + b".\r\n")
        r.wait_log("-> wait-dkim")
        c2.close()
        deadline = time.monotonic() + 10
        while r.log_count("smtp disconnect") == gone and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.log_count("smtp disconnect") > gone
        # The key is cached: a second message needs no second lookup.
        assert c.sendmail("carol@example.net", ["bobbybob9@example.org"],
                          peer.sign(encrypted_mail(
                              "carol@example.net",
                              "bobbybob9@example.org", "again"))) == {}
        c.quit()
        got = wait_messages(r, "bobbybob9@example.org", 3)
        assert len(got) == 3, len(got)
        assert not any(b"Subject: slow" in g for g in got)
        m = [g for g in got if b"Subject: kept" in g][0]
        # Incoming mail keeps its Subject; the LMTP cleanup still runs.
        assert b"Subject: kept" in m
        assert b"DKIM-Signature" not in m
        assert b"Authentication-Results" not in m
        assert b"Return-Path: <carol@example.net>" in m
        assert r.wait_log("Incoming: Filtering encrypted mail.")
        assert r.wait_log("dkim result=pass from_domain=example.net")
        # Looked up for the first broken signature, dropped from the
        # cache when it failed with that key, looked up again for the
        # first good message, cached for the second (TTL 3600).
        assert peer.dns.queries().count(
            "opendkim._domainkey.example.net") == 2, peer.dns.queries()
    finally:
        r.stop()
        peer.close()


def test_mx_dkim_ttl(backend):
    """A key served with TTL 0 is not cached: each message looks it up."""
    peer = PeerDomain(ttl=0)
    r = Relay(backend, dovecot=True,
              extra="dns_server = %s" % peer.dns.server).start()
    try:
        login(r, "bobbybob9@example.org")
        c = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=30)
        c.starttls(context=tls_client())
        c.ehlo("mx.example.net")
        for i in range(2):
            assert c.sendmail("carol@example.net", ["bobbybob9@example.org"],
                              peer.sign(encrypted_mail(
                                  "carol@example.net",
                                  "bobbybob9@example.org", "t%d" % i))) == {}
        c.quit()
        assert len(wait_messages(r, "bobbybob9@example.org", 2)) == 2
        assert peer.dns.queries().count(
            "opendkim._domainkey.example.net") == 2, peer.dns.queries()
    finally:
        r.stop()
        peer.close()


def test_unknown_user_bounce(backend):
    r = Relay(backend, dovecot=True).start()
    try:
        refused = submit(r, "submissions", "alice1234@example.org",
                         "alice1234@example.org", ["nosuchu42@example.org"],
                         encrypted_mail("alice1234@example.org",
                                        "nosuchu42@example.org"))
        assert refused == {}
        got = wait_messages(r, "alice1234@example.org", 1)
        assert len(got) == 1, len(got)
        b = got[0]
        assert b"Undelivered" in b and b"nosuchu42@example.org" in b
        assert b"From: Mail Delivery System <MAILER-DAEMON@example.org>" in b
        assert b"Auto-Submitted: auto-replied" in b
        assert b"report-type=delivery-status" in b
        assert not os.path.exists(os.path.join(r.mail_dir,
                                               "nosuchu42@example.org"))
    finally:
        r.stop()


def test_quota(backend):
    r = Relay(backend, dovecot=True,
              params="max_mailbox_size = 1M\n"
                     "max_message_size = 4000000").start()
    try:
        login(r, "bobbybob9@example.org")
        codes = []
        for _ in range(3):
            msg = encrypted_mail("alice1234@example.org",
                                 "bobbybob9@example.org", size=450000)
            try:
                submit(r, "submissions", "alice1234@example.org",
                       "alice1234@example.org", ["bobbybob9@example.org"],
                       msg)
                codes.append(250)
            except smtplib.SMTPDataError as e:
                assert b"uota" in e.smtp_error, e  # Dovecot's text
                codes.append(e.smtp_code)
        assert codes[0] == 250 and codes[-1] >= 500, codes
        assert len(r.messages("bobbybob9@example.org")) == codes.count(250)
    finally:
        r.stop()


def test_size_limit_edge(backend):
    """A message of exactly max_message_size is delivered (Dovecot's own
    per-mail cap must leave room for the headers Dovecot adds, or the
    client gets 451 forever); one octet more is refused with 552."""
    limit = 100000
    r = Relay(backend, dovecot=True,
              params="max_message_size = %d" % limit).start()
    try:
        login(r, "bobbybob9@example.org")
        base = encrypted_mail("alice1234@example.org",
                              "bobbybob9@example.org", size=100)
        pad = b""
        while len(pad) + len(base) < limit:
            n = min(limit - len(base) - len(pad), 990)
            pad += b"X-Pad: " + b"p" * max(n - 9, 0) + b"\r\n"
        msg = pad + base
        assert len(msg) == limit, len(msg)
        refused = submit(r, "submissions", "alice1234@example.org",
                         "alice1234@example.org", ["bobbybob9@example.org"],
                         msg)
        assert refused == {}, refused
        assert len(r.messages("bobbybob9@example.org")) == 1
        # One octet over: refused at MAIL when SIZE= says so, and at
        # the end of DATA when the client does not declare it.
        over = b"X" + msg
        with pytest_raises(smtplib.SMTPSenderRefused) as e:
            submit(r, "submissions", "alice1234@example.org",
                   "alice1234@example.org", ["bobbybob9@example.org"], over)
        assert e.value.smtp_code == 552, e.value
        c = smtplib.SMTP_SSL("127.0.0.1", r.ports["submissions"],
                             context=tls_client(), timeout=30)
        try:
            c.login("alice1234@example.org", PASSWORD)
            assert c.mail("alice1234@example.org")[0] == 250
            assert c.rcpt("bobbybob9@example.org")[0] == 250
            code, text = c.data(over)
            assert code == 552, (code, text)
        finally:
            c.close()
        assert len(r.messages("bobbybob9@example.org")) == 1
    finally:
        r.stop()


def test_connection_limit_and_idle_timeout(backend):
    """max_smtp_connections: the connection over the limit gets 421 and
    is closed, and a slot freed by a QUIT is usable again; smtp_timeout:
    an idle client gets 421 4.4.2 and is closed."""
    r = Relay(backend, params="max_smtp_connections = 2").start()
    held = []
    try:
        for _ in range(2):
            c = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=10)
            assert c.noop()[0] == 250
            held.append(c)
        s = socket.create_connection(("127.0.0.1", r.ports["smtp"]),
                                     timeout=10)
        got = recv_all(s)
        s.close()
        # The server is full, not this client: nobody is blamed.
        assert got == b"421 4.3.2 example.org Error: too many " \
            b"connections\r\n", got
        held.pop().quit()
        r.wait_log("reason=closed")
        c = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=10)
        assert c.noop()[0] == 250
        held.append(c)
    finally:
        for c in held:
            c.close()
        r.stop()
    r = Relay(backend, extra="smtp_timeout = 1s").start()
    try:
        c = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=10)
        assert c.noop()[0] == 250
        got = recv_all(c.sock, timeout=10)
        assert got == b"421 4.4.2 Error: timeout exceeded\r\n", got
        c.close()
    finally:
        r.stop()


if __name__ == "__main__":
    if not os.access("/usr/sbin/dovecot", os.X_OK):
        print("SKIP: no /usr/sbin/dovecot")
        sys.exit(77)
    if dkim is None or not dns_harness.available():
        print("SKIP: python3-dkim or dnsmasq missing")
        sys.exit(77)
    run_tests([test_submission_delivers_with_privacy,
               test_unencrypted_rejected_leaves_nothing, test_rate_limit,
               test_mx_incoming, test_mx_dkim_ttl, test_unknown_user_bounce,
               test_quota, test_size_limit_edge,
               test_connection_limit_and_idle_timeout])
