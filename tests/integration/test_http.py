"""The HTTP server of the real binary on 443 and 80, with curl
(--http1.1, --http2) and nghttp (Debian's nghttp2-client) as clients, on
each I/O backend: every route, status codes and headers, keep-alive and
pipelining, many h2 streams on one connection, the h2 stream limit with
a client that ignores SETTINGS, oversized and malformed requests, and
slow-header clients cut at the header timeout even after a quiet spell.
Skipped (77) without curl or nghttp."""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import Relay, recv_all, run_tests, tls_client  # noqa

HEADER_TIMEOUT = 1.0
EXTRA = "http_header_timeout = 1s\nhttp_keepalive_timeout = 3s\n"


def curl(relay, path, *args, http="--http1.1", port="https", host=None):
    """(status, headers dict lower-case, body bytes) from curl -i."""
    scheme = "https" if port == "https" else "http"
    url = "%s://%s:%d%s" % (scheme, host or "example.org",
                            relay.ports[port], path)
    argv = ["curl", "-sS", "-k", "-i", http, "--max-time", "20",
            "--resolve", "%s:%d:127.0.0.1" % (host or "example.org",
                                              relay.ports[port]),
            *args, url]
    p = subprocess.run(argv, capture_output=True, timeout=30)
    assert p.returncode == 0, (argv, p.stderr)
    raw = p.stdout
    # Skip interim 100 Continue heads.
    while raw.startswith(b"HTTP/1.1 100"):
        raw = raw.split(b"\r\n\r\n", 1)[1]
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def raw(relay, data, port="http", tls=False, timeout=10):
    s = socket.create_connection(("127.0.0.1", relay.ports[port]),
                                 timeout=timeout)
    if tls:
        s = tls_client(alpn=["http/1.1"]).wrap_socket(s)
    s.sendall(data)
    got = recv_all(s, timeout=timeout)
    s.close()
    return got


def test_routes(backend):
    r = Relay(backend, extra=EXTRA).start()
    try:
        for http, ver in (("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2")):
            st, h, body = curl(r, "/", http=http)
            assert st == 200, (http, st)
            assert h["content-type"] == "text/html; charset=utf-8", h
            assert int(h["content-length"]) == len(body)
            assert h["vary"] == "Accept-Encoding"
            assert "server" not in h, h  # minimal headers
            assert b"DCACCOUNT:https://example.org/new" in body
            assert b"<img src=\"/qr-chatmail-invite-example.org.png\"" \
                in body
            st, h, gz = curl(r, "/", "-H", "Accept-Encoding: gzip",
                             http=http)
            assert h.get("content-encoding") == "gzip", h
            import gzip
            assert gzip.decompress(gz) == body
            st, h, body = curl(r, "/info.html", http=http)
            assert st == 200 and b"Addresses and passwords" in body
            st, h, body = curl(r, "/privacy.html", http=http)
            assert st == 200 and b"Privacy policy" in body
            st, h, body = curl(r, "/main.css", http=http)
            assert st == 200 and h["content-type"] == "text/css"
            st, h, body = curl(r, "/robots.txt", http=http)
            assert body == b"User-agent: *\nDisallow: /\n", body
            st, h, png = curl(r, "/qr-chatmail-invite-example.org.png",
                              http=http)
            assert st == 200 and png.startswith(b"\x89PNG\r\n\x1a\n")
            st, h, body = curl(r, "/nope", http=http)
            assert st == 404, st
            st, h, body = curl(r, "/", "-X", "DELETE", http=http)
            assert st == 405 and h["allow"] == "GET, HEAD", (st, h)
            st, h, body = curl(r, "/", "-I", http=http)
            assert st == 200 and body == b"", body
            # /new: browsers go to the app, POST gets credentials.
            st, h, body = curl(r, "/new", http=http)
            assert st == 301, st
            assert h["location"] == "dcaccount:https://example.org/new"
            for path in ("/new", "/cgi-bin/newemail.py"):
                st, h, body = curl(r, path, "-X", "POST", http=http)
                assert st == 200, (path, st, body)
                assert h["content-type"] == "application/json"
                d = json.loads(body)
                assert sorted(d) == ["email", "password"], d
                assert re.fullmatch(r"[a-z0-9]{9}@example\.org",
                                    d["email"]), d
                assert len(d["password"]) == 12
            st, h, body = curl(r, "/.well-known/autoconfig/mail/"
                               "config-v1.1.xml", http=http)
            assert st == 200 and b"<hostname>example.org</hostname>" in body
            st, h, body = curl(r, "/mail/config-v1.1.xml", http=http,
                               host="autoconfig.example.org")
            assert st == 200 and b"clientConfig" in body
            st, h, body = curl(r, "/.well-known/mta-sts.txt", http=http,
                               host="mta-sts.example.org")
            assert body == (b"version: STSv1\nmode: enforce\n"
                            b"mx: example.org\nmax_age: 2419200\n"), body
            st, h, body = curl(r, "/info.html?x", http=http,
                               host="www.example.org")
            assert st == 301, st
            assert h["location"] == "https://example.org/info.html?x"
        # Port 80: ACME webroot, else 301 to https.
        st, h, body = curl(r, "/anything?q=1", http="--http1.1",
                           port="http")
        assert st == 301, st
        assert h["location"] == "https://example.org/anything?q=1", h
        assert r.wait_log("http request v=2 tls=1 method=POST "
                          "host=example.org path=/new status=200")
        # The access line never holds the client address or the query.
        for ln in r.log:
            if " http request " in ln:
                assert "127.0.0.1" not in ln and "q=1" not in ln, ln
    finally:
        r.stop()


def test_acme_webroot(backend):
    r = Relay(backend, extra=EXTRA)
    webroot = os.path.join(r.dir, "acme")
    os.makedirs(webroot)
    with open(r.cfg, "a") as f:
        f.write("acme_webroot = %s\n" % webroot)
    # acmetool writes <token> files into its webroot.
    with open(os.path.join(webroot, "Tok_en-1"), "w") as f:
        f.write("Tok_en-1.thumbprint")
    r.start()
    try:
        st, h, body = curl(r, "/.well-known/acme-challenge/Tok_en-1",
                           port="http")
        assert st == 200 and body == b"Tok_en-1.thumbprint", (st, body)
        st, h, body = curl(r, "/.well-known/acme-challenge/nope",
                           port="http")
        assert st == 404, st
        st, h, body = curl(r, "/.well-known/acme-challenge/..%2F..%2Fx",
                           port="http")
        assert st == 404, st
    finally:
        r.stop()


def test_keepalive_and_pipelining(backend):
    r = Relay(backend, extra=EXTRA).start()
    try:
        # curl reuses the connection for the second URL.
        url = "https://example.org:%d" % r.ports["https"]
        p = subprocess.run(
            ["curl", "-sS", "-k", "-v", "--http1.1", "-o", "/dev/null",
             "-o", "/dev/null", "--resolve",
             "example.org:%d:127.0.0.1" % r.ports["https"],
             url + "/", url + "/robots.txt"],
            capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert b"Re-using existing connection" in p.stderr or \
            b"Reusing existing" in p.stderr, p.stderr
        # Three pipelined requests in one write: three responses in
        # order; the third asks to close.
        req = (b"GET /robots.txt HTTP/1.1\r\nHost: example.org\r\n\r\n"
               b"POST /new HTTP/1.1\r\nHost: example.org\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
               b"GET /nope HTTP/1.1\r\nHost: example.org\r\n"
               b"Connection: close\r\n\r\n")
        got = raw(r, req, port="https", tls=True)
        heads = re.findall(rb"HTTP/1\.1 (\d+) ", got)
        assert heads == [b"200", b"200", b"404"], got
        assert got.index(b"Disallow") < got.index(b'"email"')
        line = r.wait_log("requests=3 ")
        assert "v=1.1" in line, line
    finally:
        r.stop()


def test_h2_multiplexing(backend):
    r = Relay(backend, extra=EXTRA).start()
    try:
        url = "https://127.0.0.1:%d" % r.ports["https"]
        # 200 requests, up to 100 at once, on one connection.
        p = subprocess.run(
            ["nghttp", "-ns", "-m", "200", "-H", ":authority: example.org",
             url + "/"], capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        codes = re.findall(rb"\s(\d{3})\s+\d+\s+/", p.stdout)
        assert codes.count(b"200") == 200, p.stdout[-800:]
        line = r.wait_log("requests=200 ")
        assert "v=2" in line and "alpn=h2" in line, line
        assert r.log_count("http disconnect") == 1, r.log
        # nghttp against several routes at once.
        p = subprocess.run(
            ["nghttp", "-nv", "-H", ":authority: example.org",
             url + "/robots.txt", url + "/nope", url + "/main.css"],
            capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        out = p.stdout.decode()
        assert out.count(":status: 200") == 2, out
        assert out.count(":status: 404") == 1, out
    finally:
        r.stop()


def h2_frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def h2_read_frames(s, until, timeout=10):
    """Frames (type, flags, sid, payload) until @until(frames) or EOF."""
    s.settimeout(timeout)
    buf, frames = b"", []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(frames):
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            frames.append((buf[3], buf[4],
                           int.from_bytes(buf[5:9], "big") & 0x7fffffff,
                           buf[9:9 + n]))
            buf = buf[9 + n:]
    return frames


def test_h2_stream_limit(backend):
    """A client that ignores SETTINGS_MAX_CONCURRENT_STREAMS: streams past
    100 are refused (RST_STREAM REFUSED_STREAM); the open ones still get
    their answers."""
    r = Relay(backend, extra=EXTRA).start()
    try:
        s = tls_client(alpn=["h2"]).wrap_socket(
            socket.create_connection(("127.0.0.1", r.ports["https"]),
                                     timeout=10))
        assert s.selected_alpn_protocol() == "h2"
        out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0)
        # HPACK: :method POST (index 3), :scheme https (7), :path /new
        # (literal, name index 4), :authority example.org (name index 1).
        block = b"\x83\x87\x04\x04/new\x01\x0bexample.org"
        for i in range(150):
            out += h2_frame(1, 0x4, 1 + 2 * i, block)  # END_HEADERS only
        s.sendall(out)
        frames = h2_read_frames(
            s, lambda fr: sum(1 for f in fr if f[0] == 3) >= 50)
        # ACK the server's SETTINGS; end the 100 open streams.
        out = h2_frame(4, 1, 0)
        for i in range(100):
            out += h2_frame(0, 0x1, 1 + 2 * i)  # empty DATA, END_STREAM
        s.sendall(out)
        frames += h2_read_frames(
            s, lambda fr: sum(1 for f in fr if f[0] == 1) >= 100)
        rst = [f for f in frames if f[0] == 3]
        assert len(rst) == 50, len(rst)
        assert all(int.from_bytes(f[3], "big") == 7 for f in rst), rst
        assert sorted(f[2] for f in rst) == [1 + 2 * i
                                             for i in range(100, 150)]
        answered = {f[2] for f in frames if f[0] == 1}
        assert answered == {1 + 2 * i for i in range(100)}, answered
        s.close()
    finally:
        r.stop()


def test_bad_requests(backend):
    r = Relay(backend, extra=EXTRA).start()
    try:
        cases = [
            (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # no Host
            (b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n", b"400"),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"501"),
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
             b"414"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 17000 +
             b"\r\n\r\n", b"431"),
            (b"GET / HTTP/1.1\r\nHost: x\r\n" +
             b"".join(b"X%d: 1\r\n" % i for i in range(70)) + b"\r\n",
             b"431"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
             b"hello", b"413"),
            (b"POST /new HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n"
             b"\r\n", b"413"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: nothing\r\n\r\n",
             b"417"),
            (b"GET / HTTP/7.0\r\nHost: x\r\n\r\n", b"505"),
        ]
        for port, tls in (("http", False), ("https", True)):
            for req, want in cases:
                t0 = time.monotonic()
                got = raw(r, req, port=port, tls=tls)
                # Answered and closed, never left hanging.
                assert time.monotonic() - t0 < 5, req[:40]
                assert got.startswith(b"HTTP/1.1 " + want + b" "), \
                    (port, req[:60], got[:80])
                assert b"\r\nConnection: close\r\n" in got, got
        # Oversized h2 requests: a 431 for a huge field, a 413 body.
        url = "https://example.org:%d" % r.ports["https"]
        resolve = "example.org:%d:127.0.0.1" % r.ports["https"]
        p = subprocess.run(
            ["curl", "-sS", "-k", "--http2", "-o", "/dev/null", "-w",
             "%{http_code}", "--resolve", resolve, "-H",
             "X-Big: " + "z" * 17000, url + "/"],
            capture_output=True, timeout=30)
        assert p.stdout == b"431", (p.stdout, p.stderr)
        p = subprocess.run(
            ["curl", "-sS", "-k", "--http2", "-o", "/dev/null", "-w",
             "%{http_code}", "--resolve", resolve, "--data-binary",
             "@-", url + "/new"], input=b"q" * 100000,
            capture_output=True, timeout=30)
        assert p.stdout == b"413", (p.stdout, p.stderr)
    finally:
        r.stop()


def slow_client(relay, port, tls, first_wait):
    """Connect, send a request head a byte every 0.1 s; the seconds from
    the first byte until the server's answer, and the answer."""
    s = socket.create_connection(("127.0.0.1", relay.ports[port]),
                                 timeout=10)
    if tls:
        s = tls_client(alpn=["http/1.1"]).wrap_socket(s)
    time.sleep(first_wait)
    t0 = time.monotonic()
    got = b""
    s.settimeout(0.1)
    head = b"GET / HTTP/1.1\r\nHost: example.org\r\nX-Slow: " + b"s" * 200
    for ch in head:
        try:
            s.send(bytes([ch]))
        except (BrokenPipeError, ConnectionResetError, OSError):
            break
        try:
            d = s.recv(4096)
            if not d:
                break
            got += d
            break
        except socket.timeout:
            pass
    got += recv_all(s, timeout=5)
    return time.monotonic() - t0, got


def read_response(s, timeout=5):
    """One HTTP/1.1 response (head and Content-Length body), bounded."""
    s.settimeout(timeout)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"Content-Length: (\d+)", head)
            if m and len(body) >= int(m.group(1)):
                return got
        d = s.recv(4096)
        if not d:
            break
        got += d
    raise AssertionError("no whole response: %r" % got[:200])


def test_slow_header_cut(backend):
    r = Relay(backend, extra=EXTRA).start()
    try:
        for port, tls in (("http", False), ("https", True)):
            # A quiet spell first: the loop sleeps, nothing happens.
            time.sleep(2.5)
            took, got = slow_client(r, port, tls, 0)
            assert got.startswith(b"HTTP/1.1 408 "), got[:60]
            assert HEADER_TIMEOUT - 0.2 <= took < HEADER_TIMEOUT + 1.5, took
            # Keep-alive first, then a slow second request: its own
            # header timeout runs from its first byte.
            s = socket.create_connection(("127.0.0.1", r.ports[port]),
                                         timeout=10)
            if tls:
                s = tls_client(alpn=["http/1.1"]).wrap_socket(s)
            s.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: example.org\r\n"
                      b"\r\n")
            read_response(s)
            time.sleep(2)  # idle below the 3 s keep-alive
            t0 = time.monotonic()
            s.sendall(b"GET / HTTP/1.1\r\nHo")
            got = recv_all(s, timeout=5)
            took = time.monotonic() - t0
            assert got.startswith(b"HTTP/1.1 408 "), got[:60]
            assert HEADER_TIMEOUT - 0.2 <= took < HEADER_TIMEOUT + 1.5, took
            # An idle keep-alive connection closes quietly at 3 s.
            s = socket.create_connection(("127.0.0.1", r.ports[port]),
                                         timeout=10)
            if tls:
                s = tls_client(alpn=["http/1.1"]).wrap_socket(s)
            s.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: example.org\r\n"
                      b"\r\n")
            t0 = time.monotonic()
            got = recv_all(s, timeout=8)
            took = time.monotonic() - t0
            assert got.count(b"HTTP/1.1 ") == 1, got
            assert 2.5 <= took < 5, took
    finally:
        r.stop()


if __name__ == "__main__":
    if not shutil.which("curl") or not shutil.which("nghttp"):
        print("SKIP: curl or nghttp missing")
        sys.exit(77)
    run_tests([test_routes, test_acme_webroot, test_keepalive_and_pipelining,
               test_h2_multiplexing, test_h2_stream_limit, test_bad_requests,
               test_slow_header_cut])
