"""DKIM with real components: `ringmail dkim keygen` and `record` (the
zone line of `cmdeploy dns`), messages signed by ringmail verified by
dkimpy (Debian's python3-dkim), messages signed by dkimpy verified by
ringmail, whose key lookups go through c-ares in its loop to a real DNS
server (dnsmasq on loopback): aligned, another domain, a subdomain,
broken body hash, broken header hash, missing key, revoked key, DNS
timeout (temporary failure), no signature. Each runs on each I/O
backend (the verifier's loop)."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import BIN, run_tests  # noqa: E402
import dns_harness  # noqa: E402

try:
    import dkim  # Debian's python3-dkim
except ImportError:
    dkim = None

MSG = (b"From: Alice <alice@peer.test>\r\n"
       b"To: <bob@example.org>\r\n"
       b"Subject: [...]\r\n"
       b"Date: Tue, 01 Dec 2026 21:00:00 +0000\r\n"
       b"Message-ID: <m1@peer.test>\r\n"
       b"Autocrypt: addr=alice@peer.test; keydata=QUJDRA==\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n"
       b"\r\n"
       b"hello\r\n"
       b"  world  \r\n"
       b"\r\n")


def ringmail(args, stdin=None, check=True):
    r = subprocess.run([BIN, "dkim"] + args, input=stdin,
                       capture_output=True)
    if check and r.returncode != 0:
        raise AssertionError("ringmail dkim %s: rc=%d %s %s" % (
            args, r.returncode, r.stdout, r.stderr))
    return r


def pubkey_b64(key):
    """The SPKI as `openssl rsa -pubout` prints it (independent of us)."""
    r = subprocess.run(["openssl", "rsa", "-in", key, "-pubout"],
                       capture_output=True, check=True)
    return "".join(ln for ln in r.stdout.decode().splitlines()
                   if not ln.startswith("-"))


class Keys:
    """Keys made by `ringmail dkim keygen` in a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ringmail-dkim-")

    def make(self, name, domain="peer.test"):
        path = os.path.join(self.dir, name + ".private")
        ringmail(["--domain", domain, "--key", path, "keygen"])
        return path

    def record(self, key, selector="sel", domain="peer.test"):
        out = ringmail(["--domain", domain, "--selector", selector,
                        "--key", key, "record", "--single"]).stdout
        return re.search(rb'"(.*)"', out).group(1).decode()

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def verify(msg, dns, backend, timeout=None):
    args = ["--dns-server", dns.server, "verify"]
    if timeout:
        args += ["--timeout", str(timeout)]
    env = dict(os.environ, RINGMAIL_IO_BACKEND=backend)
    r = subprocess.run([BIN, "dkim"] + args, input=msg, capture_output=True,
                       env=env)
    return r.returncode, r.stdout.decode().strip()


def dkimpy_sign(msg, key, domain, selector="sel", canon=(b"relaxed",
                                                         b"simple")):
    with open(key, "rb") as f:
        pem = f.read()
    sig = dkim.sign(msg, selector.encode(), domain.encode(), pem,
                    canonicalize=canon,
                    include_headers=[b"from", b"to", b"subject", b"date",
                                     b"content-type"])
    return sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + msg


def test_keygen_and_record(backend):
    k = Keys()
    try:
        key = k.make("opendkim")
        st = os.stat(key)
        assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
        r = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-text"],
                           capture_output=True, check=True)
        assert b"Private-Key: (2048 bit" in r.stdout, r.stdout[:80]
        # No overwrite without --force.
        r = ringmail(["--domain", "peer.test", "--key", key, "keygen"],
                     check=False)
        assert r.returncode == 1 and b"exists" in r.stderr, r
        line = ringmail(["--domain", "peer.test", "--selector", "opendkim",
                         "--key", key, "record"]).stdout.decode()
        assert line.endswith("\n") and line.count("\n") == 1
        line = line.rstrip("\n")
        name = "opendkim._domainkey.peer.test."
        # cmdeploy: f'{name:<40} 3600   IN  TXT    "{value}"'
        assert line.startswith(name.ljust(40) + " 3600   IN  TXT    \""), line
        quoted = line[len(name.ljust(40) + " 3600   IN  TXT    "):]
        parts = re.findall(r'"([^"]*)"', quoted)
        assert quoted == " ".join('"%s"' % p for p in parts), quoted
        assert all(len(p) == 255 for p in parts[:-1]), [len(p) for p in parts]
        assert 0 < len(parts[-1]) <= 255 and len(parts) == 2, parts
        value = "".join(parts)
        assert value == "v=DKIM1;k=rsa;p=%s;s=email;t=s" % pubkey_b64(key)
        single = ringmail(["--domain", "peer.test", "--selector",
                           "opendkim", "--key", key, "record",
                           "--single"]).stdout.decode().rstrip("\n")
        assert single == name.ljust(40) + ' 3600   IN  TXT    "%s"' % value
        # An IP-only relay has no DKIM: a warning, no record.
        r = ringmail(["--domain", "[127.0.0.1]", "--key", key, "record"],
                     check=False)
        assert r.returncode == 0 and r.stdout == b"", r
        assert b"not a domain" in r.stderr
    finally:
        k.close()


def test_ours_verified_by_dkimpy(backend):
    k = Keys()
    try:
        key = k.make("opendkim")
        value = k.record(key, "opendkim")
        signed = ringmail(["--domain", "peer.test", "--selector", "opendkim",
                           "--key", key, "sign"], stdin=MSG).stdout
        assert signed.endswith(MSG)
        hdr = signed[:len(signed) - len(MSG)].decode()
        assert hdr.startswith("DKIM-Signature: v=1; a=rsa-sha256; "
                              "c=relaxed/simple; d=peer.test;"), hdr
        tags = dict((t.split("=", 1)[0].strip(), t.split("=", 1)[1])
                    for t in re.sub(r"\s+", "", hdr.split(":", 1)[1])
                    .split(";") if "=" in t)
        assert tags["s"] == "opendkim" and "l" not in tags, tags
        h = tags["h"].lower().split(":")
        # Signed: From, Autocrypt, Content-Type; oversigned: From etc.
        # appear once more than present (E.1).
        assert h.count("from") == 2 and h.count("autocrypt") == 2, h
        assert h.count("subject") == 2 and h.count("content-type") == 1, h
        assert "message-id" not in h and "reply-to" in h, h
        seen = []

        def dnsfunc(name, timeout=5):
            seen.append(name)
            return value.encode()

        assert dkim.verify(signed, dnsfunc=dnsfunc) is True
        assert seen == [b"opendkim._domainkey.peer.test."], seen
        # dkimpy also sees a change: the check can fail.
        assert dkim.verify(signed.replace(b"hello", b"hellO"),
                           dnsfunc=dnsfunc) is False
        assert dkim.verify(signed.replace(b"Subject: [...]",
                                          b"Subject: [..]"),
                           dnsfunc=dnsfunc) is False
        # A bounce as smtp_bounce builds them (multipart/report).
        bounce = (b"From: Mail Delivery System <MAILER-DAEMON@peer.test>\r\n"
                  b"To: <alice@peer.test>\r\nAuto-Submitted: auto-replied\r\n"
                  b"Subject: Undelivered Mail Returned to Sender\r\n"
                  b"Content-Type: multipart/report; "
                  b"report-type=delivery-status; boundary=\"b1\"\r\n\r\n"
                  b"--b1\r\n\r\nUndelivered\r\n--b1--\r\n")
        signed = ringmail(["--domain", "peer.test", "--selector", "opendkim",
                           "--key", key, "sign"], stdin=bounce).stdout
        assert dkim.verify(signed, dnsfunc=dnsfunc) is True
    finally:
        k.close()


def test_verification_cases(backend):
    k = Keys()
    dns = dns_harness.DnsServer()
    try:
        key = k.make("peer")
        other = k.make("other")
        dns.add_txt("sel._domainkey.peer.test", k.record(key))
        dns.add_txt("sel._domainkey.other.test", k.record(other))
        dns.add_txt("sel._domainkey.sub.peer.test", k.record(key))
        # TXT records of other kinds next to the key: the DKIM one is
        # picked; one without v= is accepted (filtermail 0.5.1).
        dns.add_txt("nov._domainkey.peer.test", "some=thing")
        dns.add_txt("nov._domainkey.peer.test",
                    k.record(key).replace("v=DKIM1;", ""))
        dns.add_txt("revoked._domainkey.peer.test", "v=DKIM1; k=rsa; p=")
        dns.start()

        def case(msg, want_rc, want, timeout=None):
            rc, out = verify(msg, dns, backend, timeout)
            assert rc == want_rc and out.startswith("dkim=" + want), (
                want, rc, out)
            return out

        ok = dkimpy_sign(MSG, key, "peer.test")
        case(ok, 0, "pass")
        case(dkimpy_sign(MSG, key, "peer.test", canon=(b"simple",
                                                       b"simple")), 0, "pass")
        # A valid signature of another domain does not count ...
        out = case(dkimpy_sign(MSG, other, "other.test"), 1, "fail")
        assert "no aligned signature" in out
        # ... nor one of a subdomain (strict alignment).
        case(dkimpy_sign(MSG, key, "sub.peer.test"), 1, "fail")
        # An aligned one next to a foreign one does.
        case(dkimpy_sign(dkimpy_sign(MSG, key, "peer.test"), other,
                         "other.test"), 0, "pass")
        # The From domain matches case-insensitively.
        case(dkimpy_sign(MSG.replace(b"alice@peer.test", b"alice@PEER.Test"),
                         key, "peer.test"), 0, "pass")
        out = case(ok.replace(b"hello", b"hellO"), 1, "fail")
        assert "body hash" in out, out
        out = case(ok.replace(b"Subject: [...]", b"Subject: [..]"), 1,
                   "fail")
        assert "body hash" not in out, out
        case(dkimpy_sign(MSG, key, "peer.test", "nokey"), 1, "fail")
        case(dkimpy_sign(MSG, key, "peer.test", "nov"), 0, "pass")
        case(dkimpy_sign(MSG, key, "peer.test", "revoked"), 1, "fail")
        case(MSG, 1, "nosig")
        # A signature of a domain whose DNS does not answer: temporary.
        slow = MSG.replace(b"alice@peer.test", b"alice@peer.slow.test")
        out = case(dkimpy_sign(slow, key, "peer.slow.test"), 75, "tempfail",
                   timeout=1500)
        assert "sel._domainkey.peer.slow.test" in dns.queries()
        # Every lookup went to the DNS server (no other resolver).
        assert "sel._domainkey.peer.test" in dns.queries()
    finally:
        dns.close()
        k.close()


if __name__ == "__main__":
    if dkim is None:
        print("SKIP: python3-dkim missing")
        sys.exit(77)
    if not dns_harness.available():
        print("SKIP: dnsmasq missing")
        sys.exit(77)
    run_tests([test_keygen_and_record, test_ours_verified_by_dkimpy,
               test_verification_cases])
