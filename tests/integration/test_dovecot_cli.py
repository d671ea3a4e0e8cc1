"""`ringmail dovecot print|config --config FILE` renders the private
Dovecot's config from every setting in chatmail.ini, as `serve` does
(issue 11, item 9: dovecot_imap_port, dovecot_log and dovecot_mail_user
were ignored, so `dovecot config|start` overwrote a running relay's
config with port 10143); options still override the file. No Dovecot is
started."""

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import BIN  # noqa: E402


def ringmail(*args):
    r = subprocess.run([BIN] + list(args), capture_output=True, text=True)
    assert r.returncode == 0, (args, r.returncode, r.stderr)
    return r.stdout


def imap_port(conf):
    """The port of Dovecot's imap inet_listener in a rendered config."""
    m = re.search(r"inet_listener imap \{[^}]*?port = (\d+)", conf)
    assert m, conf
    return int(m.group(1))


def main():
    d = tempfile.mkdtemp(prefix="ringmail-dovecot-cli-")
    try:
        root = os.geteuid() == 0
        cfg = os.path.join(d, "chatmail.ini")
        base = os.path.join(d, "dovecot")
        with open(cfg, "w") as f:
            f.write("[params]\nmail_domain = example.org\n"
                    "mailboxes_dir = %s/mail\n"
                    "max_mailbox_size = 77M\n"
                    "max_message_size = 12345678\n"
                    "[ringmail]\ndovecot_base_dir = %s\n"
                    "dovecot_log = %s/dovecot.log\n"
                    "dovecot_imap_port = 23456\n"
                    "imap_hibernate_timeout = 45s\n" % (d, base, d))
            if root:
                f.write("dovecot_mail_user = nobody\n")
        out = ringmail("dovecot", "print", "--config", cfg)
        assert imap_port(out) == 23456, "dovecot_imap_port ignored"
        assert "\nlog_path = %s/dovecot.log\n" % d in out, "dovecot_log"
        assert "\nbase_dir = %s\n" % base in out
        assert "mail_location = maildir:%s/mail/%%u\n" % d in out
        assert "quota_rule = *:storage=77M\n" in out
        assert "imap_hibernate_timeout = 45 secs\n" in out
        if root:
            uid = pwd.getpwnam("nobody").pw_uid
            assert "uid=%d gid=" % uid in out, "dovecot_mail_user"
        # An option overrides the file.
        out = ringmail("dovecot", "print", "--config", cfg,
                       "--imap-port", "34567")
        assert imap_port(out) == 34567
        # `config` (and `start`, which writes it the same way) writes
        # what serve would: the configured port, in the running relay's
        # file.
        path = ringmail("dovecot", "config", "--config", cfg).strip()
        assert path == os.path.join(base, "ringmail-dovecot.conf"), path
        with open(path) as f:
            assert imap_port(f.read()) == 23456
        print("PASS test_dovecot_cli", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
