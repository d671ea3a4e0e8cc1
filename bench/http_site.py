#!/usr/bin/python3
"""HTTP benchmark of the relay's site (issue 13), same machine, one run:
h2load (Debian's nghttp2-client) against `ringmail serve` and against
Debian's nginx serving the same static home page with the same
certificate, each with one worker. Rows: GET / over HTTP/1.1 and HTTP/2
on both servers, POST /new over both versions on ringmail (nginx has no
/new). Requests/s from h2load, p50/p99 from its per-request log
(--log-file), plus ringmail's RSS per idle HTTP/2 connection.

    bench/http_site.py [--bin build/release/ringmail] [-n 20000]
        [-c 16] [-m 10] [--idle 400] [--json]

Everything is bounded: -n requests per row, a timeout per h2load run,
and the idle connection count. Only the processes started here are
stopped, by pid."""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from ringmail_harness import free_ports, make_cert  # noqa: E402

NGINX_CONF = """worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 10000000;
    types {{ text/html html; }}
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {d}/www;
        index index.html;
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
"""


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


def h2load(url, n, c, m, h1, post, logdir, label):
    log = os.path.join(logdir, label + ".log")
    argv = ["h2load", "-n", str(n), "-c", str(c), "-m",
            "1" if h1 else str(m), "--log-file", log]
    if h1:
        argv.append("--h1")
    if post:
        # h2load cannot send an empty file; /new ignores the body.
        body = os.path.join(logdir, "form")
        with open(body, "w") as f:
            f.write("x")
        argv += ["-d", body]
    argv.append(url)
    p = subprocess.run(argv, capture_output=True, timeout=300)
    out = p.stdout.decode()
    rps = None
    for ln in out.splitlines():
        if ln.startswith("finished in"):
            rps = float(ln.split(",")[1].split()[0])
        if ln.startswith("status codes:"):
            codes = ln
        if ln.startswith("requests:"):
            reqs = ln
    lat = []
    statuses = {}
    with open(log) as f:
        for ln in f:
            parts = ln.split("\t")
            if len(parts) >= 3:
                statuses[parts[1]] = statuses.get(parts[1], 0) + 1
                lat.append(int(parts[2]) / 1000.0)
    lat.sort()

    def q(x):
        return lat[min(len(lat) - 1, int(x * len(lat)))] if lat else None
    return {"rps": rps, "n": len(lat), "p50_ms": q(0.50), "p99_ms": q(0.99),
            "statuses": statuses, "h2load": (reqs + " | " + codes)
            if rps else out[-400:]}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def idle_h2(port, count):
    """Open @count idle HTTP/2 connections (preface + SETTINGS + ACK)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    socks = []
    for _ in range(count):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                     timeout=10))
        assert s.selected_alpn_protocol() == "h2"
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                  b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                  b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
        socks.append(s)
    time.sleep(1.0)
    return socks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build",
                                                  "release", "ringmail"))
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("-c", type=int, default=16)
    ap.add_argument("-m", type=int, default=10)
    ap.add_argument("--idle", type=int, default=400)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    for tool in ("h2load", "nginx"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/nginx"):
            sys.exit("missing %s (nghttp2-client, nginx-light)" % tool)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    d = tempfile.mkdtemp(prefix="ringmail-httpbench-")
    os.chmod(d, 0o755)
    crt, key = make_cert(d, "tls", "example.org")
    os.chmod(key, 0o644)
    p_https, p_http, p_nginx = free_ports(3)
    cfg = os.path.join(d, "chatmail.ini")
    with open(cfg, "w") as f:
        f.write("[params]\nmail_domain = example.org\nmailboxes_dir = %s/m\n"
                "[ringmail]\nhttps_listen = 127.0.0.1:%d\n"
                "http_listen = 127.0.0.1:%d\nsmtp_listen =\n"
                "submission_listen =\nsubmissions_listen =\nimap_listen =\n"
                "imaps_listen =\ndata_dir = %s/data\ntls_cert = %s\n"
                "tls_key = %s\ndovecot_managed = false\nworkers = 1\n"
                "log_level = warn\nhttp_new_per_minute = 100000000\n"
                "http_new_burst = 100000000\n"
                % (d, p_https, p_http, d, crt, key))
    procs = []
    rows = {}
    try:
        rm = subprocess.Popen([a.bin, "serve", "--config", cfg],
                              stderr=subprocess.DEVNULL)
        procs.append(rm)
        wait_port(p_https)
        # The same page for nginx: what ringmail serves as /.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        page = urllib.request.urlopen(
            "https://127.0.0.1:%d/" % p_https, context=ctx,
            timeout=10).read()
        os.makedirs(os.path.join(d, "www"))
        with open(os.path.join(d, "www", "index.html"), "wb") as f:
            f.write(page)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(d=d, port=p_nginx, crt=crt, key=key))
        ng = subprocess.Popen(["nginx", "-c", os.path.join(d, "nginx.conf")],
                              stderr=subprocess.DEVNULL)
        procs.append(ng)
        wait_port(p_nginx)
        rurl = "https://127.0.0.1:%d" % p_https
        nurl = "https://127.0.0.1:%d" % p_nginx
        plan = [
            ("nginx GET / h1", nurl + "/", True, False),
            ("ringmail GET / h1", rurl + "/", True, False),
            ("nginx GET / h2", nurl + "/", False, False),
            ("ringmail GET / h2", rurl + "/", False, False),
            ("ringmail POST /new h1", rurl + "/new", True, True),
            ("ringmail POST /new h2", rurl + "/new", False, True),
        ]
        for label, url, h1, post in plan:
            rows[label] = h2load(url, a.n, a.c, a.m, h1, post, d,
                                 label.replace(" ", "_").replace("/", ""))
        rows["ringmail GET / h2"]["page_octets"] = len(page)
        before = rss_kb(rm.pid)
        socks = idle_h2(p_https, a.idle)
        after = rss_kb(rm.pid)
        for s in socks:
            s.close()
        figures = {
            "idle_h2_connections": a.idle,
            "rss_kb_before": before,
            "rss_kb_after": after,
            "rss_bytes_per_idle_h2_conn":
                round((after - before) * 1024 / max(1, a.idle)),
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM if p is procs[0]
                              else signal.SIGQUIT)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(d, ignore_errors=True)
    if a.json:
        print(json.dumps({"rows": rows, "figures": figures}, indent=1))
        return
    print("%-24s %10s %8s %8s  %s" % ("row", "req/s", "p50 ms", "p99 ms",
                                      "statuses"))
    for label, r in rows.items():
        print("%-24s %10.0f %8.2f %8.2f  %s" % (
            label, r["rps"] or 0, r["p50_ms"] or 0, r["p99_ms"] or 0,
            r["statuses"]))
    for k, v in figures.items():
        print("%s: %s" % (k, v))


if __name__ == "__main__":
    main()
