"""deploy/run-local.sh on a fresh run directory (issue 11, item 5): the
relay gets a DKIM signing key of its own in the run directory (mode 0600,
kept on the next start), `ringmail serve` starts without the "no DKIM
signing key" warning and signs with it, and `ringmail dkim record
--config <run>/chatmail.ini` prints the DNS record of that very key.
The script runs for real (RINGMAIL_BIN: the built binary, no build),
once with --init-only and once as README says, on loopback ports away
from the ephemeral range; the relay it execs is stopped by its pid."""

import base64
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import BIN, free_ports  # noqa: E402

SRC = os.environ.get("RINGMAIL_SRCDIR",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(SRC, "deploy", "run-local.sh")
DOMAIN = "runlocal-test.localhost"
PORTS = (25, 587, 465, 143, 993, 443, 80)


def pick_offset():
    """A port offset whose seven ports are free on 127.0.0.1."""
    for _ in range(50):
        off = random.randrange(20000, 28000, 1000) + random.randrange(0, 7)
        socks = []
        try:
            for p in PORTS:
                s = socket.socket()
                s.bind(("127.0.0.1", p + off))
                socks.append(s)
            return off
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port offset")


def public_key_b64(key):
    der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout",
                          "-outform", "DER"], capture_output=True,
                         check=True).stdout
    return base64.b64encode(der).decode()


def main():
    run = tempfile.mkdtemp(prefix="ringmail-runlocal-")
    env = dict(os.environ, RINGMAIL_BIN=os.path.abspath(BIN),
               RINGMAIL_DOMAIN=DOMAIN, RINGMAIL_RUN_DIR=run,
               RINGMAIL_ADDR="127.0.0.1",
               RINGMAIL_PORT_OFFSET=str(pick_offset()),
               RINGMAIL_DOVECOT_IMAP_PORT=str(free_ports(1)[0]))
    proc = None
    try:
        key = os.path.join(run, "dkim.private")
        cfg = os.path.join(run, "chatmail.ini")
        # --init-only: run directory, config and key, no relay.
        r = subprocess.run(["sh", SCRIPT, "--init-only"], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert os.path.isfile(key), os.listdir(run)
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, \
            oct(os.stat(key).st_mode)
        with open(cfg) as f:
            assert "dkim_key_file = %s\n" % key in f.read()
        with open(key, "rb") as f:
            first = f.read()
        assert b"PRIVATE KEY" in first
        # The DNS record is that key's.
        rec = subprocess.run([BIN, "dkim", "record", "--config", cfg],
                             capture_output=True, text=True, check=True)
        assert rec.stdout.startswith("opendkim._domainkey.%s." % DOMAIN), \
            rec.stdout
        value = "".join(re.findall(r'"([^"]*)"', rec.stdout))
        assert value.startswith("v=DKIM1;k=rsa;p="), value
        p = re.search(r";p=([A-Za-z0-9+/=]+);", value).group(1)
        assert p == public_key_b64(key), "record does not match the key"
        # README's command on the same run directory: the key stays, the
        # relay starts signing with it, with no DKIM warning.
        proc = subprocess.Popen(["sh", SCRIPT], env=env,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        log = []

        def reader():
            for line in proc.stderr:
                sys.stderr.write("  [run-local] " + line)
                log.append(line.rstrip("\n"))
        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + 60
        while not any("serve: ready" in l for l in log):
            assert proc.poll() is None, ("run-local exited", log)
            assert time.monotonic() < deadline, "relay not ready"
            time.sleep(0.05)
        assert not any("no DKIM signing key" in l for l in log), log
        assert any("dkim signing domain=%s selector=opendkim key=%s" %
                   (DOMAIN, key) in l for l in log), log
        with open(key, "rb") as f:
            assert f.read() == first, "key regenerated"
        # exec: the script's pid is the relay's now.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc = None
        print("PASS test_run_local", flush=True)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    if not os.access("/usr/sbin/dovecot", os.X_OK):
        print("SKIP: no /usr/sbin/dovecot")
        sys.exit(77)
    main()
