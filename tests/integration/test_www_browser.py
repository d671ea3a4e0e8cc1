"""A real browser on the relay's site: headless Chromium (Debian's
chromium) loads the home page over https from the real binary, with the
domain mapped to loopback; the screenshot is not blank, and the QR code
in it decodes (zbarimg, Debian's zbar-tools) to exactly
DCACCOUNT:https://example.org/new. Skipped (77) without chromium or
zbarimg."""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringmail_harness import Relay, run_tests  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def png_pixels(path):
    """(width, height, distinct octet values of the raw scanlines)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    return w, h, len(set(raw))


def screenshot(url, port, out, user_dir):
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + user_dir,
            "--ignore-certificate-errors",
            "--host-resolver-rules=MAP example.org 127.0.0.1",
            "--window-size=1000,1300", "--hide-scrollbars",
            "--screenshot=" + out, url]
    p = subprocess.run(argv, capture_output=True, timeout=90)
    assert p.returncode == 0 and os.path.exists(out), \
        (p.returncode, p.stderr[-2000:])


def test_home_page_qr(backend):
    r = Relay(backend).start()
    tmp = tempfile.mkdtemp(prefix="ringmail-chromium-")
    try:
        port = r.ports["https"]
        shot = os.path.join(tmp, "home.png")
        screenshot("https://example.org:%d/" % port, port, shot,
                   os.path.join(tmp, "profile"))
        if os.environ.get("RINGMAIL_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["RINGMAIL_KEEP_SCREENSHOT"])
        w, h, distinct = png_pixels(shot)
        assert w >= 800 and h >= 1000, (w, h)
        assert distinct > 8, "blank screenshot"  # text, QR, colours
        p = subprocess.run(["zbarimg", "-q", "--raw", shot],
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode().strip() == \
            "DCACCOUNT:https://example.org/new", p.stdout
        # The browser fetched the page, the stylesheet and the QR image.
        for path in ("path=/ ", "path=/main.css ",
                     "path=/qr-chatmail-invite-example.org.png "):
            line = r.wait_log(path)
            assert "status=200" in line and "tls=1" in line, line
    finally:
        r.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if CHROMIUM is None or shutil.which("zbarimg") is None:
        print("SKIP: chromium or zbarimg missing")
        sys.exit(77)
    run_tests([test_home_page_qr])
