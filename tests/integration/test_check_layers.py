"""tests/check-layers.py passes on the tree and fails on a planted
forbidden include (issue 12 item 8)."""

import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("RINGMAIL_SRCDIR",
                     os.path.dirname(os.path.dirname(
                         os.path.dirname(os.path.abspath(__file__)))))
CHECK = os.path.join(SRC, "tests", "check-layers.py")


def run(root):
    return subprocess.run([sys.executable, CHECK, root],
                          capture_output=True, text=True)


def plant(root, path, include):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write('#include "%s"\n' % include)


def main():
    r = run(SRC)
    assert r.returncode == 0, r.stdout + r.stderr
    cases = [
        # (file, include, forbidden?)
        ("imap-proxy/x.c", "smtp/smtp_auth.h", True),
        ("core/x.c", "core/accounts/accounts.h", True),
        ("core/x.c", "imap-proxy/imap_server.h", True),
        ("core/accounts/x.c", "core/auth/sasl_plain.h", True),
        ("filter/x.c", "smtp/smtp_reply.h", True),
        ("smtp/x.c", "imap-proxy/imap_server.h", True),
        ("smtp/queue/x.c", "imap-proxy/imap_server.h", True),
        ("push/x.c", "smtp/smtp_session.h", True),
        ("bench/client/x.c", "app/cmds.h", True),
        ("core/http/x.c", "core/accounts/accounts.h", True),
        ("imap-proxy/x.c", "core/auth/sasl_plain.h", False),
        ("smtp/queue/x.c", "core/http/http.h", False),
        ("smtp/x.c", "filter/e2ee.h", False),
        ("app/x.c", "imap-proxy/imap_server.h", False),
        ("core/x.c", "core/loop.h", False),
        ("imap-proxy/x.c", "openssl/ssl.h", False),
    ]
    for path, inc, forbidden in cases:
        d = tempfile.mkdtemp(prefix="ringmail-layers-")
        try:
            plant(d, path, inc)
            r = run(d)
            if forbidden:
                assert r.returncode == 1, (path, inc, r.stdout)
                assert "%s:1: " % path in r.stdout and inc in r.stdout, \
                    r.stdout
            else:
                assert r.returncode == 0, (path, inc, r.stdout)
        finally:
            shutil.rmtree(d)
    print("PASS test_check_layers", flush=True)


if __name__ == "__main__":
    main()
