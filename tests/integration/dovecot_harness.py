"""A private stock Dovecot for integration tests (Python standard library
only). The configuration is ringmail's own (`ringmail dovecot start`, from
core/dovecot/dovecot_conf.c), so tests exercise exactly what production runs:
LMTP on a unix socket, IMAP on 127.0.0.1 behind the master-user secret,
static userdb, maildir, quota, hibernation. Everything lives in a fresh
temporary directory; only the Dovecot started here is ever stopped (by the
pid in its own base_dir/master.pid).

    with Dovecot(max_mailbox_mb=1) as dc:
        smtplib.LMTP(dc.lmtp_socket).sendmail(...)
        dc.messages("bob@example.org")       # maildir new/ contents
        imap = dc.imap_login("bob@example.org")

As root the maildirs belong to "nobody"; otherwise everything runs as the
current user (Dovecot without root)."""

import imaplib
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("RINGMAIL_BIN", "build/release/ringmail")
DOVECOT_BIN = os.environ.get("RINGMAIL_DOVECOT_BIN", "/usr/sbin/dovecot")
MASTER_USER = "ringmail"


def available():
    """Can a private Dovecot run here (binary present)?"""
    return os.access(DOVECOT_BIN, os.X_OK)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Dovecot:
    """ringmail's private Dovecot in its own temporary directory."""

    def __init__(self, max_mailbox_mb=500, max_message_size=31457280,
                 hibernate_timeout=30, imap_port=None, directory=None,
                 ringmail_bin=None):
        self.bin = ringmail_bin or BIN
        self.own_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="ringmail-dovecot-")
        os.chmod(self.dir, 0o755)  # Dovecot's own users must get in
        self.base_dir = os.path.join(self.dir, "run")
        self.mailboxes_dir = os.path.join(self.dir, "mail")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.secret_file = os.path.join(self.dir, "master-secret")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.lmtp_socket = os.path.join(self.base_dir, "lmtp")
        self.imap_port = imap_port or free_port()
        self.max_mailbox_mb = max_mailbox_mb
        self.max_message_size = max_message_size
        self.hibernate_timeout = hibernate_timeout
        self.secret = None
        os.makedirs(self.mailboxes_dir, exist_ok=True)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.mailboxes_dir, nobody.pw_uid, nobody.pw_gid)

    def _args(self):
        args = ["--base-dir", self.base_dir, "--conf", self.conf,
                "--mailboxes-dir", self.mailboxes_dir,
                "--log-path", self.log_path,
                "--imap-port", str(self.imap_port),
                "--max-mailbox-size", str(self.max_mailbox_mb),
                "--max-message-size", str(self.max_message_size),
                "--hibernate-timeout", str(self.hibernate_timeout),
                "--max-imap-connections", "1000"]
        if os.geteuid() == 0:
            args += ["--mail-user", "nobody"]
        return args

    def start(self):
        """Write the config and a fresh master secret; start; wait until
        LMTP accepts (ringmail dovecot start does the waiting)."""
        env = dict(os.environ)
        env.pop("RINGMAIL_CONFIG", None)  # only the options above count
        subprocess.run([self.bin, "dovecot", "start", "--secret-file",
                        self.secret_file] + self._args(), check=True,
                       stdout=subprocess.DEVNULL, env=env)
        with open(self.secret_file) as f:
            self.secret = f.read().strip()
        return self

    def pid(self):
        """The master pid if our Dovecot runs, else None."""
        try:
            with open(os.path.join(self.base_dir, "master.pid")) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except (OSError, ValueError):
            return None
        state = stat[stat.rindex(")") + 2]
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm != "dovecot" or state in "ZX":
            return None
        return pid

    def stop(self, timeout=10.0):
        """SIGTERM our master (by its pid file) and wait until gone."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() == pid:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline += 5
            time.sleep(0.01)

    def processes(self):
        """Pids of our master and its children."""
        master = self.pid()
        if master is None:
            return []
        pids = [master]
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == master:
                pids.append(int(d))
        return pids

    def listening_tcp(self):
        """Every TCP address our Dovecot listens on, as "ip:port"."""
        listen = {}
        for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
            try:
                with open(path) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                col = row.split()
                if col[3] != "0A":  # LISTEN
                    continue
                addr, port = col[1].split(":")
                raw = bytes.fromhex(addr)
                if v6:
                    ip = socket.inet_ntop(socket.AF_INET6, b"".join(
                        raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                else:
                    ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
                listen[col[9]] = "%s:%d" % (ip, int(port, 16))
        found = set()
        for pid in self.processes():
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inode = link[8:-1]
                    if inode in listen:
                        found.add(listen[inode])
        return found

    def cleanup(self):
        self.stop()
        if self.own_dir and not os.environ.get("RINGMAIL_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- mailboxes --

    def maildir(self, addr):
        return os.path.join(self.mailboxes_dir, addr)

    def messages(self, addr, sub="new"):
        """Contents of the messages in <addr>/<sub>/, oldest first."""
        d = os.path.join(self.maildir(addr), sub)
        if not os.path.isdir(d):
            return []
        names = sorted(os.listdir(d))
        out = []
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- delivery --

    def deliver(self, sender, rcpts, body):
        """One LMTP transaction; {rcpt: (code, text)} with one entry per
        recipient (LMTP answers DATA once per accepted recipient, which
        smtplib.LMTP.sendmail does not read)."""
        out = {}
        with smtplib.LMTP(self.lmtp_socket) as lmtp:
            lmtp.ehlo_or_helo_if_needed()
            code, msg = lmtp.mail(sender)
            if code != 250:
                return {r: (code, msg) for r in rcpts}
            accepted = []
            for r in rcpts:
                code, msg = lmtp.rcpt(r)
                if code == 250:
                    accepted.append(r)
                else:
                    out[r] = (code, msg)
            if not accepted:
                lmtp.rset()
                return out
            code, msg = lmtp.docmd("DATA")
            if code != 354:
                for r in accepted:
                    out[r] = (code, msg)
                return out
            data = re.sub(rb"\r\n|\n|\r(?!\n)", b"\r\n", body)
            if not data.endswith(b"\r\n"):
                data += b"\r\n"
            data = re.sub(rb"(?m)^\.", b"..", data)
            lmtp.send(data + b".\r\n")
            for r in accepted:
                out[r] = lmtp.getreply()
        return out

    # -- IMAP through ringmail's path --

    def imap_login(self, addr, secret=None):
        """An imaplib session logged in as @addr with the master secret
        ("<addr>*ringmail"), exactly as ringmail's IMAP proxy logs in."""
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=20)
        try:
            m.login("%s*%s" % (addr, MASTER_USER),
                    secret if secret is not None else self.secret)
        except BaseException:
            m.shutdown()
            raise
        return m
