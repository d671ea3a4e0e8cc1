"""`ringmail serve` end to end: listeners from the config, TLS handshakes
with ALPN on the TLS ports, minimum TLS versions, certificate reload on
SIGHUP without dropping connections, SIGTERM drain, and systemd socket
activation. Each test runs on each I/O backend."""

import os
import signal
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import (Relay, make_cert, peer_cn, recv_all,  # noqa
                              run_tests, tls_client, free_ports, BIN)


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def smtp_greets(sock):
    """The SMTP server greets with 220, says 221 to QUIT and closes."""
    sock.settimeout(10)
    got = b""
    while b"\r\n" not in got:
        d = sock.recv(4096)
        if not d:
            break
        got += d
    sock.sendall(b"QUIT\r\n")
    rest = recv_all(sock)
    return got.startswith(b"220 example.org ESMTP") and \
        rest.startswith(b"221 2.0.0 Bye")


def test_plain_ports_answer(backend):
    r = Relay(backend).start()
    try:
        for svc in ("smtp", "submission"):
            s = connect(r.ports[svc])
            assert smtp_greets(s), svc
            s.close()
        s = connect(r.ports["imap"])
        assert recv_all(s).startswith(b"* BYE "), "imap"
        s.close()
        # Port 80: the HTTP server, redirecting to https.
        s = connect(r.ports["http"])
        s.sendall(b"GET /x HTTP/1.1\r\nHost: example.org\r\n"
                  b"Connection: close\r\n\r\n")
        got = recv_all(s)
        assert got.startswith(b"HTTP/1.1 301 "), got
        assert b"\r\nLocation: https://example.org/x\r\n" in got, got
        s.close()
        r.wait_log("smtp disconnect")
    finally:
        r.stop()


def test_tls_ports_and_alpn(backend):
    r = Relay(backend).start()
    try:
        # Implicit TLS on 465 and 993: TLS 1.3, then the protocol answer.
        for svc, want in (("submissions", None), ("imaps", b"* BYE ")):
            s = tls_client().wrap_socket(connect(r.ports[svc]))
            assert s.version() == "TLSv1.3", (svc, s.version())
            if want is None:
                assert smtp_greets(s), svc
            else:
                assert recv_all(s).startswith(want), svc
            s.close()
        # Submission and IMAP refuse TLS 1.2.
        for svc in ("submissions", "imaps"):
            try:
                tls_client(max_version=ssl.TLSVersion.TLSv1_2).wrap_socket(
                    connect(r.ports[svc]))
                raise AssertionError("TLS 1.2 accepted on " + svc)
            except (ssl.SSLError, ConnectionResetError):
                pass
        r.wait_log("smtp disconnect from=127.0.0.1 reason=tls")
        # 443: dispatch on the negotiated ALPN. Only tokens that have a
        # protocol behind them are offered: no IMAP without Dovecot (the
        # client gets no ALPN and the site over HTTP/1.1).
        cases = [(["imap"], None, b"HTTP/1.1 200 "),
                 (["http/1.1"], "http/1.1", b"HTTP/1.1 200 "),
                 (["h2", "http/1.1"], "h2", b"HTTP/1.1 200 "),
                 (None, None, b"HTTP/1.1 200 ")]
        for offer, chosen, want in cases:
            s = tls_client(alpn=offer).wrap_socket(connect(r.ports["https"]))
            assert s.selected_alpn_protocol() == chosen, (offer, chosen)
            if chosen != "h2":
                s.sendall(b"GET / HTTP/1.1\r\nHost: example.org\r\n"
                          b"Connection: close\r\n\r\n")
                got = recv_all(s)
                assert got.startswith(want), (offer, got[:40])
            s.close()
        s = tls_client(alpn=["smtp"]).wrap_socket(connect(r.ports["https"]))
        assert s.selected_alpn_protocol() == "smtp"
        assert smtp_greets(s), "smtp on 443"
        s.close()
        # TLS 1.2 is fine on 443 (HTTPS clients).
        s = tls_client(max_version=ssl.TLSVersion.TLSv1_2,
                       alpn=["http/1.1"]).wrap_socket(
                           connect(r.ports["https"]))
        assert s.version() == "TLSv1.2"
        s.close()
        line = r.wait_log("http disconnect")
        assert "alpn=" in line and "transport=" in line, line
    finally:
        r.stop()


def test_sighup_reloads_certificate(backend):
    r = Relay(backend).start()
    try:
        s = tls_client().wrap_socket(connect(r.ports["submissions"]))
        assert peer_cn(s) == "relay-a.test"
        s.close()
        # A connection accepted before the reload, handshake not yet done.
        early = connect(r.ports["submissions"])
        time.sleep(0.2)
        crt_b, key_b = make_cert(r.dir, "b", "relay-b.test")
        os.replace(crt_b, r.crt)
        os.replace(key_b, r.key)
        r.signal(signal.SIGHUP)
        r.wait_log("reload: certificates reloaded")
        s = tls_client().wrap_socket(connect(r.ports["submissions"]))
        assert peer_cn(s) == "relay-b.test", peer_cn(s)
        s.close()
        # The early connection survived the reload and still works.
        e = tls_client().wrap_socket(early)
        assert smtp_greets(e)
        e.close()
        # A broken certificate on reload keeps the current one.
        with open(r.crt, "w") as f:
            f.write("garbage\n")
        r.signal(signal.SIGHUP)
        r.wait_log("kept their previous certificate")
        s = tls_client().wrap_socket(connect(r.ports["submissions"]))
        assert peer_cn(s) == "relay-b.test"
        s.close()
        assert r.proc.poll() is None
    finally:
        r.stop()


def test_sigterm_drains(backend):
    r = Relay(backend, drain_timeout="30s").start()
    try:
        # An open connection (TLS handshake pending) holds the drain.
        held = connect(r.ports["submissions"])
        time.sleep(0.2)
        r.signal(signal.SIGTERM)
        r.wait_log("serve: draining")
        time.sleep(0.5)
        assert r.proc.poll() is None, "exited while a connection was open"
        # New connections are no longer served.
        try:
            c = connect(r.ports["smtp"])
            c.settimeout(1.0)
            got = c.recv(100)
            assert got == b"", got
        except (socket.timeout, ConnectionError):
            pass
        held.close()
        assert r.wait_exit(timeout=10) == 0
        r.wait_log("serve: drained open=0")
        r.wait_log("serve: stopped")
    finally:
        r.stop()


def test_sigterm_drain_is_bounded(backend):
    r = Relay(backend, drain_timeout="1s").start()
    try:
        held = connect(r.ports["submissions"])
        time.sleep(0.2)
        t0 = time.monotonic()
        r.signal(signal.SIGTERM)
        assert r.wait_exit(timeout=15) == 0
        assert time.monotonic() - t0 < 10
        r.wait_log("serve: drained open=1")
        held.close()
    finally:
        r.stop()


def test_sd_notify(backend):
    """READY at start, RELOADING then READY on SIGHUP, STOPPING on TERM,
    sent to $NOTIFY_SOCKET like systemd's Type=notify expects."""
    r = Relay(backend)
    path = os.path.join(r.dir, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    try:
        r.start(env={"NOTIFY_SOCKET": path})
        msgs = []

        def expect(word):
            while True:
                m = sock.recv(4096).decode()
                msgs.append(m)
                if word in m.split("\n"):
                    return
        expect("READY=1")
        r.signal(signal.SIGHUP)
        expect("RELOADING=1")
        expect("READY=1")
        r.signal(signal.SIGTERM)
        expect("STOPPING=1")
        assert r.wait_exit(timeout=15) == 0
    finally:
        sock.close()
        r.stop()


def test_socket_activation(backend):
    r = Relay(backend)
    p465, p143 = free_ports(2)
    try:
        # systemd-socket-activate binds, then starts ringmail on the
        # first connection with LISTEN_FDS/LISTEN_FDNAMES set.
        r.start(argv_prefix=["systemd-socket-activate",
                             "-l", "127.0.0.1:%d" % p465,
                             "-l", "127.0.0.1:%d" % p143,
                             "--fdname=submissions:imap"],
                wait_ready=False)
        time.sleep(0.3)
        s = tls_client().wrap_socket(connect(p465))
        assert s.version() == "TLSv1.3"
        assert smtp_greets(s)
        s.close()
        r.wait_log("serve: ready")
        r.wait_log("service=submissions addr=127.0.0.1:%d (socket-activated)"
                   % p465)
        r.wait_log("service=imap addr=127.0.0.1:%d (socket-activated)"
                   % p143)
        c = connect(p143)
        assert recv_all(c).startswith(b"* BYE ")
        # The configured ports were not bound: activation replaces them.
        try:
            connect(r.ports["smtp"]).close()
            raise AssertionError("configured port bound despite activation")
        except ConnectionRefusedError:
            pass
    finally:
        r.stop()


if __name__ == "__main__":
    if not os.path.exists(BIN):
        print("ringmail binary not found:", BIN)
        sys.exit(1)
    run_tests([test_plain_ports_answer, test_tls_ports_and_alpn,
               test_sighup_reloads_certificate, test_sigterm_drains,
               test_sigterm_drain_is_bounded, test_sd_notify,
               test_socket_activation])
