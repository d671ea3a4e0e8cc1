"""A real DNS server for integration tests: Debian's dnsmasq on 127.0.0.1
at a free high port, serving the TXT records a test gives it. Names under
the test's local domains that it does not serve get NXDOMAIN (--local);
names under a "slow" domain are forwarded to a UDP socket that never
answers, so lookups of them time out. Stopped by pid (only what it
started)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def available():
    return os.path.exists(DNSMASQ)


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class DnsServer:
    def __init__(self, txt=None, local=("test", "example.org"),
                 slow=("slow.test",), ttl=3600):
        """txt: {name: value or [values]}; values longer than 255 are
        split into several strings of one record."""
        self.dir = tempfile.mkdtemp(prefix="ringmail-dns-")
        os.chmod(self.dir, 0o755)
        self.log = os.path.join(self.dir, "dnsmasq.log")
        with open(self.log, "w"):
            pass
        os.chmod(self.log, 0o666)  # dnsmasq drops to nobody as root
        self.txt = dict(txt or {})
        self.ttl = ttl
        self.local = list(local)
        self.slow = list(slow)
        self.proc = None
        # A socket that swallows queries: the upstream of "slow" names.
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sink.bind(("127.0.0.1", 0))
        self.port = None

    def add_txt(self, name, value):
        self.txt.setdefault(name, [])
        if isinstance(self.txt[name], str):
            self.txt[name] = [self.txt[name]]
        self.txt[name].append(value)

    def _args(self):
        args = [DNSMASQ, "--keep-in-foreground", "--no-resolv",
                "--no-hosts", "--conf-file=/dev/null",
                "--listen-address=127.0.0.1", "--bind-interfaces",
                "--port=%d" % self.port, "--cache-size=0",
                "--local-ttl=%d" % self.ttl,
                "--log-facility=%s" % self.log, "--log-queries",
                "--pid-file="]
        for d in self.local:
            args.append("--local=/%s/" % d)
        for d in self.slow:
            args.append("--server=/%s/127.0.0.1#%d" %
                        (d, self.sink.getsockname()[1]))
        for name, values in self.txt.items():
            if isinstance(values, str):
                values = [values]
            for v in values:
                chunks = [v[i:i + 255] for i in range(0, len(v), 255)] or [""]
                args.append("--txt-record=%s,%s" % (
                    name, ",".join(chunks)))
        return args

    def start(self):
        for _ in range(5):
            self.port = free_udp_port()
            self.proc = subprocess.Popen(
                self._args(), stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
            if self._ready():
                return self
            self.stop()
        raise RuntimeError("dnsmasq did not start")

    def _ready(self):
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            # A query for a local name: any answer means it is up.
            q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                 b"\x05probe\x04test\x00\x00\x10\x00\x01")
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                s.recv(512)
                return True
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        return False

    def restart(self):
        self.stop()
        self.proc = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        if not self._ready():
            raise RuntimeError("dnsmasq did not restart")

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def queries(self):
        """Names dnsmasq was asked for (from its log)."""
        try:
            with open(self.log) as f:
                return [ln.split("query[TXT] ")[1].split(" ")[0]
                        for ln in f if "query[TXT] " in ln]
        except OSError:
            return []

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        self.sink.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.close()
