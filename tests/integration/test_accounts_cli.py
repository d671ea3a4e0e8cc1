"""`ringmail import-chatmail` and `ringmail user` reading their settings
from chatmail.ini (--config or $RINGMAIL_CONFIG): a chatmail password file
made by openssl(1) imports, lists, shows, and respects mail_domain."""

import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.environ.get("RINGMAIL_BIN", "build/release/ringmail")


def run(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN] + args, capture_output=True, text=True,
                          env=e, timeout=60)


def main():
    d = tempfile.mkdtemp(prefix="ringmail-acli-")
    try:
        ini = os.path.join(d, "chatmail.ini")
        with open(ini, "w") as f:
            f.write("[params]\nmail_domain = ex.org\n[ringmail]\n"
                    "data_dir = %s/data\n" % d)
        mb = os.path.join(d, "mb")
        for addr in ("alice0001@ex.org", "bob000002@other.org"):
            os.makedirs(os.path.join(mb, addr))
            h = subprocess.run(
                ["openssl", "passwd", "-6", "-salt", "abcdefghijklmnop",
                 "secret-pw-1"], capture_output=True, text=True,
                check=True).stdout.strip()
            with open(os.path.join(mb, addr, "password"), "w") as f:
                f.write("{SHA512-CRYPT}" + h)
        r = run(["import-chatmail", "--config", ini, mb])
        assert r.returncode == 0, r.stderr
        assert "imported 1, updated 0, skipped 1" in r.stdout + r.stderr, \
            r.stdout + r.stderr
        assert "bob000002@other.org: not an address of ex.org" in \
            r.stdout + r.stderr
        r = run(["user", "--config", ini, "list"])
        assert r.returncode == 0 and r.stdout == "alice0001@ex.org\n", r
        r = run(["user", "show", "alice0001@ex.org"],
                env={"RINGMAIL_CONFIG": ini})
        assert r.returncode == 0, r.stderr
        assert "alice0001@ex.org" in r.stdout, r.stdout
        assert "password:            {SHA512-CRYPT}" in r.stdout, r.stdout
        assert os.path.exists(os.path.join(d, "data", "accounts.mdb"))
        # A broken config is an error, with the file named.
        with open(ini, "a") as f:
            f.write("workers = lots\n")
        r = run(["user", "--config", ini, "list"])
        assert r.returncode == 1 and ":5: workers: " in r.stderr, r
        print("PASS test_accounts_cli")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL test_accounts_cli", e)
        sys.exit(1)
