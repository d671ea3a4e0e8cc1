"""Port 443 through the protocol table (core/proto), with the real binary
and Debian's stock Dovecot: ALPN `smtp` carries a full authenticated
submission exactly as 465 does (AUTH PLAIN, MAIL/RCPT/DATA, the same
rules), the message lands in the recipient's mailbox and is read back
over 443 with ALPN `imap`. The ALPN list offered is what is served:
the HTTP server's rows put `h2` first, then `http/1.1`; no ALPN and
unknown tokens are served as HTTP/1.1. Each test runs on each I/O
backend."""

import base64
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import Relay, recv_all, run_tests, tls_client  # noqa
from test_imap import Raw  # noqa: E402
from test_smtp import PASSWORD, encrypted_mail, plain_mail  # noqa: E402


def smtp_443(relay, **tls):
    c = smtplib.SMTP_SSL("127.0.0.1", relay.ports["https"],
                         context=tls_client(alpn=["smtp"], **tls),
                         timeout=30)
    assert c.sock.selected_alpn_protocol() == "smtp"
    return c


def test_submission_over_443(backend):
    r = Relay(backend, dovecot=True).start()
    try:
        # Create the recipient (IMAP login over 443, ALPN imap).
        i = Raw(r.ports["https"], alpn=["imap"])
        assert i.sock.selected_alpn_protocol() == "imap"
        assert i.line().startswith(b"* OK ")
        got = i.cmd(b"a1", b'LOGIN bobbya443@example.org "%s"' %
                    PASSWORD.encode())
        assert got[-1].startswith(b"a1 OK"), got
        # A full submission: EHLO, AUTH PLAIN (creates the account),
        # MAIL, RCPT, DATA.
        c = smtp_443(r)
        code, ehlo = c.ehlo("client.example.net")
        assert code == 250 and b"AUTH PLAIN" in ehlo, ehlo
        assert b"STARTTLS" not in ehlo, ehlo
        cred = base64.b64encode(b"\0alicea443@example.org\0" +
                                PASSWORD.encode()).decode()
        code, text = c.docmd("AUTH", "PLAIN " + cred)
        assert code == 235, (code, text)
        msg = encrypted_mail("alicea443@example.org", "bobbya443@example.org",
                             "over 443")
        assert c.sendmail("alicea443@example.org", ["bobbya443@example.org"],
                          msg) == {}
        c.quit()
        # 250 came after Dovecot's LMTP 250: it is on disk now.
        got = r.messages("bobbya443@example.org")
        assert len(got) == 1, got
        assert b"-----BEGIN PGP MESSAGE-----" in got[0]
        assert b"Subject: [...]" in got[0]
        assert r.wait_log("smtp auth user=<alicea443@example.org> "
                          "result=created")
        assert r.wait_log("smtp connect from=127.0.0.1 mode=submission "
                          "tls=alpn")
        # And IMAP over 443 sees it.
        got = i.cmd(b"a2", b"SELECT INBOX")
        assert b"* 1 EXISTS" in got, got
        got = i.cmd(b"a3", b"FETCH 1 BODY.PEEK[]")
        assert any(b"-----BEGIN PGP MESSAGE-----" in ln for ln in got), got
        i.cmd(b"a4", b"LOGOUT")
        i.close()
        # The rules of 465: no cleartext (523), MAIL FROM is the login
        # (553), a wrong password is 535, TLS 1.2 is refused.
        c = smtp_443(r)
        c.login("alicea443@example.org", PASSWORD)
        try:
            c.sendmail("alicea443@example.org", ["bobbya443@example.org"],
                       plain_mail("alicea443@example.org",
                                  "bobbya443@example.org"))
            raise AssertionError("cleartext accepted")
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 523, e
        try:
            c.sendmail("malloryz4@example.org", ["bobbya443@example.org"],
                       encrypted_mail("malloryz4@example.org",
                                      "bobbya443@example.org"))
            raise AssertionError("foreign sender accepted")
        except smtplib.SMTPRecipientsRefused as e:
            assert e.recipients["bobbya443@example.org"][0] == 553, e
        c.quit()
        c = smtp_443(r)
        try:
            c.login("alicea443@example.org", "wrong password!")
            raise AssertionError("wrong password accepted")
        except smtplib.SMTPAuthenticationError as e:
            assert e.smtp_code == 535, e
        c.close()
        s = tls_client(alpn=["smtp"],
                       max_version=ssl.TLSVersion.TLSv1_2).wrap_socket(
            socket.create_connection(("127.0.0.1", r.ports["https"]),
                                     timeout=10))
        assert s.selected_alpn_protocol() == "smtp"
        got = recv_all(s)
        assert got == b"421 4.7.0 Error: TLS 1.3 required\r\n", got
        s.close()
        # Nothing more was delivered (IMAP moved the first to cur/).
        assert len(r.messages("bobbya443@example.org", "new") +
                   r.messages("bobbya443@example.org", "cur")) == 1
    finally:
        r.stop()


def https_get(port, alpn):
    s = tls_client(alpn=alpn).wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10))
    chosen = s.selected_alpn_protocol()
    if chosen == "h2":
        s.close()
        return chosen, None
    s.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: example.org\r\n"
              b"Connection: close\r\n\r\n")
    got = recv_all(s)
    s.close()
    return chosen, got


def test_alpn_list(backend):
    r = Relay(backend, dovecot=True).start()
    try:
        port = r.ports["https"]
        # Our preference order: h2 first, whatever the client's order.
        for offer, chosen in ((["h2", "http/1.1"], "h2"),
                              (["http/1.1", "h2"], "h2"),
                              (["http/1.1"], "http/1.1"),
                              (["h2"], "h2"),
                              # Only unknown tokens: no ALPN is
                              # negotiated (no alert) and the connection
                              # is served as HTTP/1.1, like no ALPN.
                              (["foo/1", "bar"], None),
                              (None, None)):
            got_alpn, got = https_get(port, offer)
            assert got_alpn == chosen, (offer, got_alpn)
            if got is not None:
                assert got.startswith(b"HTTP/1.1 200 OK\r\n"), (offer, got)
                assert got.endswith(b"User-agent: *\nDisallow: /\n"), got
        # The mail protocols each get their own.
        for offer, greet in ((["smtp"], b"220 example.org ESMTP"),
                             (["imap"], b"* OK [CAPABILITY ")):
            s = tls_client(alpn=offer).wrap_socket(
                socket.create_connection(("127.0.0.1", port), timeout=10))
            assert s.selected_alpn_protocol() == offer[0]
            s.settimeout(10)
            got = b""
            while b"\r\n" not in got:
                d = s.recv(4096)
                assert d, got
                got += d
            assert got.startswith(greet), got
            s.close()
        # curl asking for HTTP/2 gets it.
        if shutil.which("curl"):
            p = subprocess.run(
                ["curl", "-k", "--http2", "-sS", "-o", "/dev/null",
                 "-w", "%{http_code} %{http_version}",
                 "https://127.0.0.1:%d/" % port],
                capture_output=True, timeout=30)
            assert p.stdout == b"200 2", (p.stdout, p.stderr)
        r.wait_log("http disconnect")
    finally:
        r.stop()


if __name__ == "__main__":
    run_tests([test_submission_over_443, test_alpn_list])
