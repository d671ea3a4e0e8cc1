"""Shared helpers for ringmail integration tests (Python standard library
only): temporary directories, free loopback ports, certificates, starting
and stopping `ringmail serve` (by pid, only what the test started)."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("RINGMAIL_BIN", "build/release/ringmail")
SERVICES = ["smtp", "submission", "submissions", "imap", "imaps", "https",
            "http"]


def backends():
    """The I/O backends to run: RINGMAIL_IO_BACKEND, or both."""
    b = os.environ.get("RINGMAIL_IO_BACKEND")
    return [b] if b else ["uring", "epoll"]


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def make_cert(directory, name, cn):
    """Self-signed P-256 certificate + key via openssl(1)."""
    crt = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
         "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn,
         "-keyout", key, "-out", crt],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


class Relay:
    """A `ringmail serve` process with its own config and ports."""

    def __init__(self, backend, workers=2, drain_timeout="3s",
                 extra="", dovecot=False, params=""):
        """dovecot: serve starts its private Dovecot (in self.dir);
        without it SMTP delivery answers 451. params: more [params]."""
        self.dir = tempfile.mkdtemp(prefix="ringmail-it-")
        os.chmod(self.dir, 0o755)  # Dovecot's own users must get in
        self.mail_dir = os.path.join(self.dir, "mail")
        self.dovecot_base = os.path.join(self.dir, "dovecot")
        self.dovecot_log = os.path.join(self.dir, "dovecot.log")
        os.makedirs(self.mail_dir)
        if os.geteuid() == 0:
            import pwd
            nobody = pwd.getpwnam("nobody")
            os.chown(self.mail_dir, nobody.pw_uid, nobody.pw_gid)
        self.crt, self.key = make_cert(self.dir, "tls", "relay-a.test")
        self.ports = dict(zip(SERVICES, free_ports(len(SERVICES))))
        self.backend = backend
        self.cfg = os.path.join(self.dir, "chatmail.ini")
        lines = ["[params]", "mail_domain = example.org",
                 "mailboxes_dir = %s" % self.mail_dir]
        if "max_load_1m" not in params:
            # The test machine's load (parallel ctest, sanitizers) is
            # not what these tests are about; test_accounts covers the
            # rule. Creation must not be refused at random.
            lines.append("max_load_1m = 1000")
        lines += [params, "", "[ringmail]"]
        for svc, port in self.ports.items():
            lines.append("%s_listen = 127.0.0.1:%d" % (svc, port))
        lines += ["data_dir = %s/data" % self.dir,
                  "tls_cert = %s" % self.crt,
                  "tls_key = %s" % self.key,
                  "io_backend = %s" % backend,
                  "workers = %d" % workers,
                  "drain_timeout = %s" % drain_timeout,
                  "log_level = debug",
                  "dovecot_managed = %s" % ("true" if dovecot else "false"),
                  "dovecot_base_dir = %s" % self.dovecot_base,
                  "dovecot_log = %s" % self.dovecot_log,
                  "dovecot_imap_port = %d" % free_ports(1)[0]]
        if os.geteuid() == 0:
            lines.append("dovecot_mail_user = nobody")
        if os.environ.get("RINGMAIL_URING_PROFILE") == "debian12":
            lines.append("uring_profile = debian12")
        lines.append(extra)
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.log = []
        self._log_lock = threading.Lock()

    def _reader(self):
        for line in self.proc.stderr:
            line = line.decode(errors="replace").rstrip("\n")
            sys.stderr.write("  [ringmail] " + line + "\n")
            with self._log_lock:
                self.log.append(line)

    def start(self, argv_prefix=None, wait_ready=True, env=None):
        argv = (argv_prefix or []) + [BIN, "serve", "--config", self.cfg]
        penv = dict(os.environ)
        penv.update(env or {})
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, env=penv)
        threading.Thread(target=self._reader, daemon=True).start()
        if wait_ready:
            self.wait_log("serve: ready")
        return self

    def wait_log(self, needle, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._log_lock:
                for line in self.log:
                    if needle in line:
                        return line
            if self.proc.poll() is not None and needle not in "".join(
                    self.log):
                time.sleep(0.2)
                with self._log_lock:
                    if not any(needle in l for l in self.log):
                        raise AssertionError(
                            "ringmail exited (%s) before logging %r" %
                            (self.proc.returncode, needle))
            time.sleep(0.02)
        raise AssertionError("timeout waiting for log line %r" % needle)

    def log_count(self, needle):
        with self._log_lock:
            return sum(1 for l in self.log if needle in l)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def messages(self, addr, sub="new"):
        """Contents of the delivered messages in <addr>/<sub>/."""
        d = os.path.join(self.mail_dir, addr, sub)
        if not os.path.isdir(d):
            return []
        out = []
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def dovecot_pid(self):
        """The pid of the Dovecot serve started, or None."""
        try:
            with open(os.path.join(self.dovecot_base, "master.pid")) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() != "dovecot":
                    return None
            return pid
        except (OSError, ValueError):
            return None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def tls_client(alpn=None, min_version=None, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def recv_all(sock, timeout=10):
    """Read until the peer closes."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            d = sock.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            break
        if not d:
            break
        out += d
    return out


def peer_cn(tls_sock):
    der = tls_sock.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    r = subprocess.run(["openssl", "x509", "-noout", "-subject"],
                       input=pem.encode(), capture_output=True, check=True)
    return r.stdout.decode().strip().split("CN", 1)[1].lstrip(" =")


def run_tests(tests):
    """Run test functions once per backend; exit non-zero on failure."""
    failed = 0
    for backend in backends():
        for t in tests:
            name = "%s[%s]" % (t.__name__, backend)
            try:
                t(backend)
                print("PASS", name, flush=True)
            except Exception as e:  # report and go on
                failed += 1
                print("FAIL", name, repr(e), flush=True)
                import traceback
                traceback.print_exc()
    sys.exit(1 if failed else 0)
