#!/usr/bin/python3
"""Delivery -> IDLE EXISTS latency through ringmail's IMAP proxy, and
ringmail's memory per idle IMAP connection.

Starts `ringmail serve` with its private stock Dovecot (as the integration
tests do, on loopback ports), logs a recipient in over 993, SELECTs INBOX
and IDLEs. Then, per sample, submits one real OpenPGP message (gpg output,
made before timing) on 465 over an already authenticated SMTP session and
measures from the submission's "250" (smtplib's sendmail returning) to the
"* n EXISTS" line arriving at the idling client.

  live:       the next sample right after the previous one
  hibernated: before each sample wait until Dovecot moved the session to
              imap-hibernate (imap_hibernate_timeout = 1s, checked in /proc)

Then --idle-conns N: N more clients log in (N accounts) and IDLE; the
VmRSS of ringmail is read before and after (and once more with N clients
that only completed the TLS handshake and greeting, pre-auth).

    python3 bench/imap_idle_latency.py --samples 200 --hibernated 40 \
        --idle-conns 1000 --preauth-conns 10000
"""

import argparse
import os
import smtplib
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("RINGMAIL_BIN",
                      os.path.join(HERE, "..", "build", "release",
                                   "ringmail"))

from ringmail_harness import Relay, tls_client  # noqa: E402
from test_smtp import PASSWORD, gpg_armor  # noqa: E402
from test_imap import (Raw, dovecot_children, idle_start, login,  # noqa
                       wait_hibernated)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


ARMORS = []


def mail(sender, rcpt, i):
    """A PGP/MIME message around one of a few real gpg outputs (gpg
    takes about a second per run here, too slow for every sample)."""
    if not ARMORS:
        ARMORS.extend(gpg_armor(os.urandom(200)) for _ in range(4))
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: bench\r\n"
            b"Message-ID: <%d.%d@bench>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/encrypted; "
            b"protocol=\"application/pgp-encrypted\"; boundary=\"XYZ\"\r\n"
            b"\r\n--XYZ\r\nContent-Type: application/pgp-encrypted\r\n\r\n"
            b"Version: 1\r\n\r\n--XYZ\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n"
            % (sender.encode(), rcpt.encode(), i, time.monotonic_ns()) +
            ARMORS[i % len(ARMORS)] + b"\r\n--XYZ--\r\n")


def measure(relay, c, rcpt, n, hibernated, first_exists):
    sender = "benchsnd1@example.org"
    msgs = [mail(sender, rcpt, i) for i in range(n)]
    s = smtplib.SMTP_SSL("127.0.0.1", relay.ports["submissions"],
                         context=tls_client(), timeout=30)
    s.login(sender, PASSWORD)
    lat, exists = [], first_exists
    for i, msg in enumerate(msgs):
        if hibernated:
            wait_hibernated(relay)
        s.sendmail(sender, [rcpt], msg)
        t0 = time.monotonic()
        exists += 1
        want = b"* %d EXISTS" % exists
        while True:
            ln = c.line()
            if ln == want:
                break
        lat.append((time.monotonic() - t0) * 1000.0)
        # Stay under the submission rate limit (burst 10, 60/min is
        # lifted in the config below).
    s.quit()
    return lat, exists


def report(name, lat):
    print("%-11s n=%d p50=%.2f ms p90=%.2f ms p99=%.2f ms max=%.2f ms "
          "mean=%.2f ms" % (name, len(lat), pct(lat, 50), pct(lat, 90),
                            pct(lat, 99), max(lat), statistics.mean(lat)),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="uring")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--hibernated", type=int, default=40)
    ap.add_argument("--idle-conns", type=int, default=0)
    ap.add_argument("--preauth-conns", type=int, default=0)
    ap.add_argument("--preauth-plain", action="store_true",
                    help="pre-auth connections on 143 without TLS")
    a = ap.parse_args()

    r = Relay(a.backend, dovecot=True, workers=2,
              params="max_imap_connections = 20000\n"
                     "max_load_1m = 1000\n"
                     "max_user_send_per_minute = 100000\n"
                     "max_user_send_burst_size = 100000",
              extra="imap_hibernate_timeout = 1s\nimap_preauth_timeout = 3600s\n"
                    "imap_preauth_deadline = 3600s\n"
                    "imap_max_connections_per_ip = 0")
    r.start()
    try:
        rcpt = "benchrcp1@example.org"
        c = login(r, rcpt)
        idle_start(c)
        exists = 0
        if a.samples:
            lat, exists = measure(r, c, rcpt, a.samples, False, exists)
            report("live", lat)
        if a.hibernated:
            lat, exists = measure(r, c, rcpt, a.hibernated, True, exists)
            report("hibernated", lat)
        pid = r.proc.pid
        if a.idle_conns:
            base = rss_kib(pid)
            held = []
            for i in range(a.idle_conns):
                x = login(r, "idle%05d@example.org" % i)
                idle_start(x)
                held.append(x)
            time.sleep(3)
            now = rss_kib(pid)
            kids = dovecot_children(r)
            print("idle        conns=%d rss_before=%d KiB rss_after=%d KiB "
                  "per_conn=%.1f KiB (Dovecot: %d imap, %d imap-hibernate)"
                  % (len(held), base, now, (now - base) / len(held),
                     sum(k.endswith("/imap") for k in kids),
                     sum(k.endswith("/imap-hibernate") for k in kids)),
                  flush=True)
            for x in held:
                x.close()
        if a.preauth_conns:
            base = rss_kib(pid)
            held = []
            for i in range(a.preauth_conns):
                if a.preauth_plain:
                    x = Raw(r.ports["imap"], tls=False)
                else:
                    x = Raw(r.ports["imaps"])
                x.line()
                held.append(x)
            time.sleep(1)
            now = rss_kib(pid)
            print("preauth%s conns=%d rss_before=%d KiB rss_after=%d KiB "
                  "per_conn=%.1f KiB" % (" plain" if a.preauth_plain else "      ",
                                         len(held), base, now,
                                         (now - base) / len(held)),
                  flush=True)
            for x in held:
                x.close()
            time.sleep(2)
    finally:
        r.stop()


if __name__ == "__main__":
    main()
