"""Self-test of dovecot_harness: start ringmail's private Dovecot, deliver
over LMTP with smtplib.LMTP on the unix socket, read the maildir, log in
over IMAP the way ringmail does (master user + secret), check that a login
without the secret fails, stop. Exit 77 when dovecot is not installed."""

import imaplib
import os
import smtplib
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovecot_harness  # noqa: E402


class DovecotHarnessTest(unittest.TestCase):
    def test_lmtp_maildir_imap(self):
        with dovecot_harness.Dovecot(max_mailbox_mb=1,
                                     max_message_size=500000) as dc:
            self.assertIsNotNone(dc.pid())
            # no public listener: only ringmail's loopback IMAP port
            self.assertEqual(dc.listening_tcp(),
                             {"127.0.0.1:%d" % dc.imap_port})
            # What Dovecot itself makes of our config for LMTP: every
            # delivery fsync'd before its 250, no Received header.
            for key, want in (("mail_fsync", "optimized"),
                              ("lmtp_add_received_header", "no")):
                got = subprocess.run(
                    ["doveconf", "-c", dc.conf, "-f", "protocol=lmtp",
                     "-h", key], capture_output=True, text=True,
                    check=True).stdout.strip()
                self.assertEqual(got, want, key)
            st = os.stat(dc.lmtp_socket)
            self.assertEqual(st.st_mode & 0o777, 0o600)
            self.assertEqual(st.st_uid, os.geteuid())
            body = (b"From: a@example.org\r\nSubject: harness\r\n\r\n"
                    b".hidden line\r\nend\r\n")
            # plain smtplib.LMTP on the unix socket, one recipient
            with smtplib.LMTP(dc.lmtp_socket) as lmtp:
                refused = lmtp.sendmail("a@example.org",
                                        ["bob@example.org"], body)
            self.assertEqual(refused, {})
            # the harness's multi-recipient transaction
            res = dc.deliver("a@example.org", ["carol@example.org"], body)
            self.assertEqual(res["carol@example.org"][0], 250)
            for addr in ("bob@example.org", "carol@example.org"):
                msgs = dc.messages(addr)
                self.assertEqual(len(msgs), 1)
                self.assertEqual(
                    msgs[0],
                    b"Return-Path: <a@example.org>\n"
                    b"Delivered-To: " + addr.encode() + b"\n"
                    b"From: a@example.org\nSubject: harness\n\n"
                    b".hidden line\nend\n")
                self.assertNotIn(b"Received:", msgs[0])

            # quota: 1 MiB, two 400 KB messages fit, the third does not
            big = b"Subject: big\r\n\r\n" + (b"q" * 998 + b"\r\n") * 400
            rcpts = ["full@example.org", "dave@example.org"]
            for _ in range(2):
                res = dc.deliver("a@example.org", rcpts, big)
                self.assertEqual([res[r][0] for r in rcpts], [250, 250])
            res = dc.deliver("a@example.org", rcpts, big)
            self.assertEqual(res["full@example.org"][0], 552)
            self.assertIn(b"5.2.2", res["full@example.org"][1])
            self.assertIn(b"Quota exceeded", res["full@example.org"][1])
            self.assertEqual(res["dave@example.org"][0], 552)

            imap = dc.imap_login("bob@example.org")
            typ, data = imap.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"1"]))
            typ, data = imap.fetch("1", "(BODY.PEEK[TEXT])")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0][1], b".hidden line\r\nend\r\n")
            imap.logout()

            with self.assertRaises(imaplib.IMAP4.error):
                dc.imap_login("bob@example.org", secret="0" * 64)
        # stopped by the context manager
        self.assertIsNone(dc.pid())
        self.assertFalse(os.path.exists(dc.dir))


if __name__ == "__main__":
    if not dovecot_harness.available():
        print("SKIP: dovecot not installed")
        sys.exit(77)
    unittest.main()
