"""A relay that has been quiet for longer than its timeouts serves the
next client (issue 11, item 1): with smtp_timeout and
imap_preauth_timeout at 2 s, a TLS connection made after 4.5 s of quiet
completes its handshake and gets its greeting, and is only cut for
inactivity a whole timeout later. This failed for every first
connection after a quiet spell while the loop's clock was refreshed
only after the backend had dispatched the accept."""

import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from ringmail_harness import Relay, run_tests, tls_client  # noqa: E402

QUIET_S = 4.5
TIMEOUT_S = 2.0


def tls_connect(port):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = tls_client().wrap_socket(raw, server_hostname="relay-a.test")
    s.settimeout(10)
    return s


def first_line(s):
    out = b""
    while not out.endswith(b"\r\n"):
        d = s.recv(1)
        if not d:
            break
        out += d
    return out


def connect_after_quiet(port, greeting, bye):
    """Connect after a quiet spell; the greeting arrives, and the
    inactivity cut comes no sooner than the timeout."""
    time.sleep(QUIET_S)
    t0 = time.monotonic()
    s = tls_connect(port)  # EOF in the handshake before the fix
    line = first_line(s)
    assert line.startswith(greeting), line
    rest = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            rest += d
    except (ssl.SSLError, ConnectionResetError):
        pass
    elapsed = time.monotonic() - t0
    assert bye in rest, rest
    # Cut for inactivity, but not before the timeout ran out.
    assert elapsed >= TIMEOUT_S - 0.1, elapsed
    s.close()


def test_quiet_relay_serves_next_client(backend):
    r = Relay(backend, dovecot=True,
              extra="smtp_timeout = 2s\nimap_preauth_timeout = 2s").start()
    try:
        connect_after_quiet(r.ports["imaps"], b"* OK",
                            b"* BYE Disconnected for inactivity.")
        connect_after_quiet(r.ports["submissions"], b"220 ", b"421 ")
        assert r.log_count('state=tls reason="timeout"') == 0
    finally:
        r.stop()


if __name__ == "__main__":
    run_tests([test_quiet_relay_serves_next_client])
