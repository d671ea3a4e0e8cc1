"""`ringmail bench` against a relay started here (real Dovecot): the
submission-only mode submits 20 real PGP/MIME messages (GPGME) and its
JSON says so, the messages land in the recipients' maildirs, and with a
strict rate limit it reads the 450s, paces, rotates senders and still
gets every message through; latency and throughput through ringmail's
IMAP (IDLE, FETCH) once it exists. Figures are checked for presence and
sanity only, never for speed (speed: bench/README.md)."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import BIN, Relay, run_tests  # noqa: E402


def bench(relay, *args, timeout=120):
    argv = [BIN, "bench", "--host", "127.0.0.1", "--domain", "example.org",
            "--insecure", "--smtps-port", str(relay.ports["submissions"]),
            "--submission-port", str(relay.ports["submission"]),
            "--imaps-port", str(relay.ports["imaps"]), "--json",
            "--timeout", "60"] + list(args)
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    sys.stderr.write(r.stderr.decode(errors="replace"))
    out = r.stdout.decode()
    assert out.count("\n") == 1, out  # one JSON object, one line
    return r.returncode, json.loads(out)


def delivered(relay):
    """Messages in every maildir's new/, by Message-ID prefix rmb-."""
    n = 0
    for addr in os.listdir(relay.mail_dir):
        for m in relay.messages(addr):
            if b"Message-ID: <rmb-" in m:
                assert b"multipart/encrypted" in m
                assert b"-----BEGIN PGP MESSAGE-----" in m
                n += 1
    return n


def timing_sane(t, n):
    assert t["n"] == n, t
    assert t["errors"] == 0, t
    assert 0 < t["p50"] <= t["p90"] <= t["p99"] <= t["max"], t


def test_submit_20(backend):
    r = Relay(backend, dovecot=True).start()
    try:
        rc, j = bench(r, "--mode", "submit", "-n", "20", "--clients", "2")
        assert rc == 0, j
        assert j["mode"] == "submit" and j["first_error"] is None, j
        f = j["figures"]
        assert f["messages"] == 20 and f["submitted"] == 20, f
        assert f["failed"] == 0 and f["clients"] == 2, f
        assert f["submitted_per_s"] > 0 and f["submit_phase_s"] > 0, f
        timing_sane(j["timings_ms"]["smtp_submit"], 20)
        # recipients + senders, each created by its first login
        logins = j["timings_ms"]["smtp_login_new"]
        timing_sane(logins, 2 + f["sender_accounts"])
        assert r.log_count("result=created") == logins["n"]
        assert j["options"]["message_octets"] > 500
        assert delivered(r) == 20
    finally:
        r.stop()


def test_rate_limit_paced(backend):
    # 2 messages at once per sender, then 1 per 0.2 s: 12 messages from
    # 1 client with --burst 100 (so it does not switch on its own)
    # must meet 450s, switch to its second account, then pace.
    r = Relay(backend, dovecot=True,
              params="max_user_send_per_minute = 300\n"
                     "max_user_send_burst_size = 2").start()
    try:
        rc, j = bench(r, "--mode", "submit", "-n", "12", "--burst", "100",
                      "--per-minute", "300")
        assert rc == 0, j
        f = j["figures"]
        assert f["submitted"] == 12 and f["failed"] == 0, f
        assert f["rate_limited_replies"] >= 1, f
        assert f["paced_s"] > 0, f
        assert any("pacing" in n for n in j["notes"]), j["notes"]
        assert delivered(r) == 12
    finally:
        r.stop()


def test_starttls_and_connect(backend):
    r = Relay(backend, dovecot=True).start()
    try:
        rc, j = bench(r, "--mode", "submit", "-n", "3", "--starttls")
        assert rc == 0, j
        assert j["options"]["starttls"] is True
        assert j["figures"]["submitted"] == 3, j
        rc, j = bench(r, "--mode", "connect", "--no-imap", "--connect-n",
                      "3")
        assert rc == 0, j
        timing_sane(j["timings_ms"]["smtp_tls_connect"], 3)
        timing_sane(j["timings_ms"]["smtp_login_new"], 3)
    finally:
        r.stop()


def imap_available(relay):
    """False while ringmail's 993 only says "* BYE ... not available
    yet" (before the IMAP proxy)."""
    import socket
    from ringmail_harness import tls_client
    with socket.create_connection(("127.0.0.1", relay.ports["imaps"]),
                                  timeout=10) as s:
        with tls_client().wrap_socket(s) as t:
            t.settimeout(10)
            greeting = t.recv(200)
    return not (greeting.startswith(b"* BYE") and
                b"not available yet" in greeting)


def test_end_to_end_imap(backend):
    """latency, throughput and the IMAP connect rows through ringmail's
    993 (IDLE, FETCH): every message seen, none lost."""
    r = Relay(backend, dovecot=True).start()
    try:
        if not imap_available(r):
            print("SKIP test_end_to_end_imap: ringmail's IMAP is not "
                  "built yet", flush=True)
            return
        rc, j = bench(r, "--mode", "latency", "-n", "5")
        assert rc == 0, j
        f = j["figures"]
        assert f["latency_submitted"] == 5 and f["latency_seen"] == 5, f
        assert f["latency_lost"] == 0, f
        t = j["timings_ms"]["latency_250_to_fetched"]
        assert t["n"] == 5 and t["errors"] == 0, t
        assert j["timings_ms"]["latency_250_to_exists"]["n"] == 5
        rc, j = bench(r, "--mode", "throughput", "--pairs", "2",
                      "--duration", "1", "--senders", "3")
        assert rc == 0, j
        f = j["figures"]
        assert f["tput_submitted"] > 0, f
        assert f["tput_seen"] == f["tput_submitted"], f
        assert f["tput_lost"] == 0 and f["tput_delivered_per_s"] > 0, f
        rc, j = bench(r, "--mode", "connect", "--connect-n", "2")
        assert rc == 0, j
        timing_sane(j["timings_ms"]["imap_tls_connect"], 2)
        timing_sane(j["timings_ms"]["imap_login_new"], 2)
    finally:
        r.stop()


if __name__ == "__main__":
    run_tests([test_submit_20, test_rate_limit_paced,
               test_starttls_and_connect, test_end_to_end_imap])
