"""Connection limits and login throttling through the real binary (issue
11 items 7 and 8): the per-client connection caps of SMTP and IMAP (one
address holding its cap keeps nobody else out, the one over it is told
its own address, the global limits still hold and blame nobody), the
absolute pre-auth deadline (a client trickling NOOPs or TLS bytes is cut
at the deadline counted from accept, also after a quiet spell), and 300
parallel wrong passwords from one address (IMAP and SMTP AUTH) getting no
more real password checks than the login throttle allows sequentially.
Client sockets are bound to 127.0.0.x to be different clients. Each test
runs on each I/O backend."""

import base64
import os
import select
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import Relay, run_tests, tls_client  # noqa: E402

PASSWORD = "Pa55word-for-tests"
DOMAIN = "example.org"
WINDOW_S = 60  # accounts_throttle: 10 failures per 60 s window
WINDOW_LIMIT = 10


def connect_from(src, port, tls=False, timeout=20):
    """A TCP connection to 127.0.0.1:@port from address @src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    if tls:
        s = tls_client().wrap_socket(s)
    return s


def read_line(s, timeout=20):
    """One CRLF line (without it); b"" at EOF."""
    s.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\r\n"):
        try:
            d = s.recv(1)
        except (ConnectionResetError, ssl.SSLError):
            return buf
        if not d:
            return buf
        buf += d
    return buf[:-2]


def smtp_reply(s, timeout=20):
    """The last line of one SMTP reply."""
    while True:
        ln = read_line(s, timeout)
        if len(ln) < 4 or ln[3:4] != b"-":
            return ln


def closed_within(s, timeout):
    """Read until EOF; the octets read, or None if still open."""
    s.settimeout(timeout)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            d = s.recv(4096)
        except socket.timeout:
            return None
        except (ConnectionResetError, ssl.SSLError):
            return out
        if not d:
            return out
        out += d
    return None


def wait_count(r, needle, n, timeout=10):
    """Wait until @needle is in exactly @n log lines (the log is read by
    another thread)."""
    deadline = time.monotonic() + timeout
    while r.log_count(needle) < n:
        assert time.monotonic() < deadline, (needle, r.log_count(needle))
        time.sleep(0.05)
    assert r.log_count(needle) == n, (needle, r.log_count(needle))


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# ---- per-client connection caps ----

def test_smtp_per_ip_cap(backend):
    r = Relay(backend, params="max_smtp_connections = 6",
              extra="smtp_max_connections_per_ip = 3").start()
    held = []
    try:
        port = r.ports["submission"]
        for _ in range(3):
            s = connect_from("127.0.0.1", port)
            assert read_line(s).startswith(b"220 "), "greeting"
            held.append(s)
        # The fourth from 127.0.0.1 is told its own address.
        s = connect_from("127.0.0.1", port)
        got = read_line(s)
        s.close()
        assert got == (b"421 4.7.0 %s Error: too many connections from "
                       b"127.0.0.1" % DOMAIN.encode()), got
        r.wait_log("too many connections from=127.0.0.1 "
                   "(smtp_max_connections_per_ip=3)")
        # 465 counts in the same table: closed before the handshake
        # (nothing can be said without one).
        s = connect_from("127.0.0.1", r.ports["submissions"])
        assert closed_within(s, 10) == b""
        s.close()
        # 127.0.0.1 at its cap does not keep 127.0.0.2 out (port 25 and
        # 465 count in the same table as 587).
        s = connect_from("127.0.0.2", port)
        assert read_line(s).startswith(b"220 ")
        held.append(s)
        s = connect_from("127.0.0.2", r.ports["smtp"])
        assert read_line(s).startswith(b"220 ")
        held.append(s)
        # A slot given back is usable again, after a quiet spell too.
        held.pop(0).close()
        deadline = time.monotonic() + 10
        while r.log_count("smtp disconnect from=127.0.0.1") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(2.5)
        s = connect_from("127.0.0.1", port)
        assert read_line(s).startswith(b"220 ")
        held.append(s)
        # Now 5 of 6: one more from 127.0.0.3 fits, the next from
        # 127.0.0.4 meets the global limit, whose reply blames nobody.
        s = connect_from("127.0.0.3", port)
        assert read_line(s).startswith(b"220 ")
        held.append(s)
        s = connect_from("127.0.0.4", port)
        got = read_line(s)
        s.close()
        assert got == (b"421 4.3.2 %s Error: too many connections" %
                       DOMAIN.encode()), got
    finally:
        close_all(held)
        r.stop()


def imap_greeting_ok(s):
    ln = read_line(s)
    assert ln.startswith(b"* OK "), ln


def test_imap_per_ip_cap(backend):
    r = Relay(backend, dovecot=True, params="max_imap_connections = 6",
              extra="imap_max_connections_per_ip = 3").start()
    held = []
    try:
        port = r.ports["imap"]
        for _ in range(3):
            s = connect_from("127.0.0.1", port)
            imap_greeting_ok(s)
            held.append(s)
        s = connect_from("127.0.0.1", port)
        got = read_line(s)
        s.close()
        assert got == (b"* BYE [UNAVAILABLE] Too many connections from "
                       b"127.0.0.1."), got
        # 993 counts in the same table: refused before the handshake.
        s = connect_from("127.0.0.1", r.ports["imaps"])
        try:
            tls_client().wrap_socket(s).recv(10)
            raise AssertionError("over the cap on 993")
        except (ConnectionResetError, ssl.SSLError, OSError):
            pass
        s.close()
        # Another client is not kept out, on 143 and on 993 (a login
        # works).
        s = connect_from("127.0.0.2", port)
        imap_greeting_ok(s)
        held.append(s)
        s = connect_from("127.0.0.2", r.ports["imaps"], tls=True)
        imap_greeting_ok(s)
        s.sendall(b"a LOGIN capuser01@%s \"%s\"\r\n" %
                  (DOMAIN.encode(), PASSWORD.encode()))
        ln = read_line(s)
        while not ln.startswith(b"a "):
            ln = read_line(s)
        assert ln.startswith(b"a OK"), ln
        held.append(s)
        # A slot given back after a quiet spell.
        held.pop(0).close()
        deadline = time.monotonic() + 10
        while r.log_count("imap disconnect from=127.0.0.1") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(2.5)
        s = connect_from("127.0.0.1", port)
        imap_greeting_ok(s)
        held.append(s)
        # 5 of 6 held: 127.0.0.3 fits, 127.0.0.4 meets the global limit.
        s = connect_from("127.0.0.3", port)
        imap_greeting_ok(s)
        held.append(s)
        s = connect_from("127.0.0.4", port)
        got = read_line(s)
        s.close()
        assert got == b"* BYE Too many connections.", got
    finally:
        close_all(held)
        r.stop()


# ---- absolute pre-auth deadline ----

CLIENT_HELLO_PREFIX = bytes.fromhex("16030100f4010000f00303") + bytes(32)


def trickle(s, chunks, every, limit):
    """Send @chunks one at a time, one every @every s, reading what comes
    meanwhile, until the server closes (returns the seconds that took
    and what it sent) or @limit s pass (None)."""
    t0 = time.monotonic()
    got = b""
    for n, c in enumerate(chunks):
        if time.monotonic() - t0 > limit:
            return None, got
        try:
            s.sendall(c)
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0, got
        tick = t0 + (n + 1) * every
        while True:
            left = tick - time.monotonic()
            if left <= 0:
                break
            rl, _, _ = select.select([s], [], [], left)
            if not rl:
                break
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                return time.monotonic() - t0, got
            if not d:
                return time.monotonic() - t0, got
            got += d
    return None, got


def test_preauth_deadline(backend):
    """Deadline 3 s, idle timeouts 10 s: a client active every 0.5 s is
    cut about 3 s after accept, on SMTP (NOOPs; TLS handshake bytes on
    465) and IMAP (NOOPs; TLS bytes on 993), also as the first client
    after a quiet spell longer than the deadline; a client that logs in
    in time is not cut."""
    r = Relay(backend, dovecot=True,
              extra="smtp_preauth_deadline = 3s\nsmtp_timeout = 10s\n"
                    "imap_preauth_deadline = 3s\n"
                    "imap_preauth_timeout = 10s").start()
    try:
        for quiet in (0, 4.5):
            time.sleep(quiet)
            # SMTP NOOPs on 587.
            s = connect_from("127.0.0.1", r.ports["submission"])
            t0 = time.monotonic()
            assert read_line(s).startswith(b"220 ")
            took, got = trickle(s, [b"NOOP\r\n"] * 100, 0.5, 15)
            took = time.monotonic() - t0 if took is not None else None
            s.close()
            assert took is not None, "never cut"
            assert 2.5 <= took <= 6, (quiet, took)
            assert got.endswith(b"\r\n421 4.4.2 Error: login or "
                                b"transaction not started in time\r\n"), got
            # One byte of a ClientHello every 0.5 s on 465 and 993.
            for svc in ("submissions", "imaps"):
                s = connect_from("127.0.0.1", r.ports[svc])
                t0 = time.monotonic()
                took, _ = trickle(
                    s, [bytes([b]) for b in CLIENT_HELLO_PREFIX], 0.5, 15)
                s.close()
                assert took is not None, (svc, "never cut")
                assert 2.5 <= took <= 6, (svc, quiet, took)
            # IMAP NOOPs on 143.
            s = connect_from("127.0.0.1", r.ports["imap"])
            t0 = time.monotonic()
            imap_greeting_ok(s)
            took, got = trickle(s, [b"n NOOP\r\n"] * 100, 0.5, 15)
            took = time.monotonic() - t0 if took is not None else None
            s.close()
            assert took is not None, "never cut"
            assert 2.5 <= took <= 6, (quiet, took)
            assert b"* BYE Login not completed in time.\r\n" in got, got
        wait_count(r, "smtp preauth deadline from=127.0.0.1", 4)
        wait_count(r, "imap preauth deadline from=127.0.0.1", 4)
        # Logged in within the deadline: kept past it (NOOPs inside the
        # idle timeout), on IMAP and on SMTP.
        s = connect_from("127.0.0.2", r.ports["imaps"], tls=True)
        imap_greeting_ok(s)
        s.sendall(b"a LOGIN deadline1@%s \"%s\"\r\n" %
                  (DOMAIN.encode(), PASSWORD.encode()))
        ln = read_line(s)
        while not ln.startswith(b"a "):
            ln = read_line(s)
        assert ln.startswith(b"a OK"), ln
        m = connect_from("127.0.0.2", r.ports["submissions"], tls=True)
        assert smtp_reply(m).startswith(b"220 ")
        m.sendall(b"EHLO test.example\r\n")
        assert smtp_reply(m).startswith(b"250 ")
        cred = base64.b64encode(b"\0deadline1@%s\0%s" %
                                (DOMAIN.encode(), PASSWORD.encode()))
        m.sendall(b"AUTH PLAIN " + cred + b"\r\n")
        assert smtp_reply(m).startswith(b"235 ")
        for i in range(10):
            time.sleep(0.5)
            s.sendall(b"n%d NOOP\r\n" % i)
            ln = read_line(s)
            while not ln.startswith(b"n%d " % i):
                ln = read_line(s)
            assert ln.startswith(b"n%d OK" % i), ln
            m.sendall(b"NOOP\r\n")
            assert smtp_reply(m).startswith(b"250 ")
        s.close()
        m.close()
    finally:
        r.stop()


# ---- parallel guesses ----

def imap_parallel_guesses(r, src, user, n):
    """@n connections from @src each send one wrong LOGIN at once; the
    tagged replies (b"" for none within 30 s)."""
    socks = []
    try:
        for _ in range(n):
            s = connect_from(src, r.ports["imaps"], tls=True)
            imap_greeting_ok(s)
            socks.append(s)
        for s in socks:
            s.sendall(b"g LOGIN %s \"wrong-password-1\"\r\n" % user.encode())
        replies = []
        deadline = time.monotonic() + 30
        for s in socks:
            ln = b""
            while not ln.startswith(b"g "):
                left = deadline - time.monotonic()
                if left <= 0:
                    ln = b""
                    break
                ln = read_line(s, timeout=left)
                if ln == b"":
                    break
            replies.append(ln)
        return replies
    finally:
        close_all(socks)


def smtp_parallel_guesses(r, src, user, n):
    socks = []
    cred = base64.b64encode(b"\0%s\0wrong-password-1" % user.encode())
    try:
        for _ in range(n):
            s = connect_from(src, r.ports["submissions"], tls=True)
            assert smtp_reply(s).startswith(b"220 ")
            s.sendall(b"EHLO test.example\r\n")
            assert smtp_reply(s).startswith(b"250 ")
            socks.append(s)
        for s in socks:
            s.sendall(b"AUTH PLAIN " + cred + b"\r\n")
        replies = []
        deadline = time.monotonic() + 30
        for s in socks:
            left = max(deadline - time.monotonic(), 0.01)
            try:
                replies.append(smtp_reply(s, timeout=left))
            except socket.timeout:
                replies.append(b"")
        return replies
    finally:
        close_all(socks)


def imap_login(r, src, user, password=PASSWORD, timeout=30):
    s = connect_from(src, r.ports["imaps"], tls=True, timeout=timeout)
    try:
        imap_greeting_ok(s)
        s.sendall(b"a LOGIN %s \"%s\"\r\n" % (user.encode(),
                                             password.encode()))
        ln = read_line(s, timeout)
        while ln and not ln.startswith(b"a "):
            ln = read_line(s, timeout)
        return ln
    finally:
        s.close()


def test_parallel_guesses(backend):
    """300 wrong passwords at once from one address, on IMAP and on SMTP
    AUTH: at most WINDOW_LIMIT are checked (the `auth ... result=failed`
    lines), the rest are refused as throttled; the account's owner from
    another address logs in at once; after the window the first address
    logs in with the right password again."""
    r = Relay(backend, dovecot=True, workers=2,
              params="max_smtp_connections = 1000",
              extra="imap_max_connections_per_ip = 400\n"
                    "smtp_max_connections_per_ip = 400\n"
                    "imap_preauth_deadline = 120s\n"
                    "smtp_preauth_deadline = 120s").start()
    victim = "victim001@" + DOMAIN
    try:
        assert imap_login(r, "127.0.0.9", victim).startswith(b"a OK")
        t_start = time.monotonic()
        replies = imap_parallel_guesses(r, "127.0.0.1", victim, 300)
        failed = sum(1 for x in replies
                     if x.startswith(b"g NO [AUTHENTICATIONFAILED]"))
        throttled = sum(1 for x in replies if x == (
            b"g NO [UNAVAILABLE] Too many failed logins, try again later."))
        checked = r.log_count("imap auth user=<%s> result=failed" % victim)
        print("  imap: %d checked (log), %d failed, %d throttled, "
              "%d other" % (checked, failed, throttled,
                            300 - failed - throttled), flush=True)
        assert checked <= WINDOW_LIMIT, checked
        assert failed <= WINDOW_LIMIT, failed
        assert throttled >= 300 - WINDOW_LIMIT, throttled
        assert r.log_count("result=throttled from=127.0.0.1") >= 290
        # The owner, elsewhere: in at once.
        t0 = time.monotonic()
        assert imap_login(r, "127.0.0.2", victim).startswith(b"a OK")
        assert time.monotonic() - t0 < 3

        # SMTP AUTH from another address (its own window).
        replies = smtp_parallel_guesses(r, "127.0.0.4", victim, 300)
        failed = sum(1 for x in replies if x.startswith(b"535 "))
        throttled = sum(1 for x in replies if x.startswith(b"454 "))
        checked = r.log_count("smtp auth user=<%s> result=failed" % victim)
        print("  smtp: %d checked (log), %d 535, %d 454, %d other" %
              (checked, failed, throttled, 300 - failed - throttled),
              flush=True)
        assert checked <= WINDOW_LIMIT, checked
        assert failed <= WINDOW_LIMIT, failed
        assert throttled >= 300 - WINDOW_LIMIT, throttled
        assert r.log_count("smtp auth user=<%s> result=throttled "
                           "from=127.0.0.4" % victim) >= 290
        # One throttle for both protocols: 127.0.0.4's guesses count
        # for IMAP too.
        assert imap_login(r, "127.0.0.4", victim, "wrong-password-2") == (
            b"a NO [UNAVAILABLE] Too many failed logins, try again later.")

        # After the window, 127.0.0.1 gets in with the right password
        # (after a delay of at most 15 s: it has failed).
        left = WINDOW_S + 1 - (time.monotonic() - t_start)
        if left > 0:
            time.sleep(left)
        assert imap_login(r, "127.0.0.1", victim).startswith(b"a OK")
        assert r.log_count("imap auth user=<%s> result=failed" %
                           victim) <= WINDOW_LIMIT
    finally:
        r.stop()


if __name__ == "__main__":
    if not os.access("/usr/sbin/dovecot", os.X_OK):
        print("SKIP: no /usr/sbin/dovecot")
        sys.exit(77)
    run_tests([test_smtp_per_ip_cap, test_imap_per_ip_cap,
               test_preauth_deadline, test_parallel_guesses])
