#!/usr/bin/python3
"""Sends one message through the test daemon with Python's smtplib, with
the DSN parameters of RFC 3461 when asked.

  send_mail.py --port P --from ADDR --to ADDR [--to ADDR...]
               [--mail-opt RET=HDRS] [--rcpt-opt NOTIFY=SUCCESS]...
               [--subject S] [--body-file F] [--user U --password W]
               [--starttls]

"--from ''" is the null reverse-path. Prints the final reply ("250 ...")
and exits 0 when the message was accepted for at least one recipient.
"""
import argparse
import smtplib
import ssl
import sys
import time
from email.utils import formatdate, make_msgid


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--mail-opt", action="append", default=[])
    p.add_argument("--rcpt-opt", action="append", default=[])
    p.add_argument("--subject", default="outbound test")
    p.add_argument("--body-file")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--starttls", action="store_true")
    a = p.parse_args()

    if a.body_file:
        with open(a.body_file, "rb") as f:
            body = f.read().decode("utf-8", "surrogateescape")
    else:
        body = "Hello from the outbound tests.\r\n.leading dot line\r\n"
    msg = ("From: <%s>\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
           "Message-ID: %s\r\n\r\n%s" % (
               a.sender or "mailer-daemon@example.test",
               ", ".join("<%s>" % t for t in a.to), a.subject,
               formatdate(time.time()), make_msgid(domain="client.test"),
               body))
    s = smtplib.SMTP(a.host, a.port, local_hostname="client.test",
                     timeout=60)
    s.ehlo()
    if a.starttls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo()
    if a.user:
        s.login(a.user, a.password)
    try:
        refused = s.sendmail(a.sender, a.to, msg.encode("utf-8"),
                             mail_options=a.mail_opt,
                             rcpt_options=a.rcpt_opt)
    except smtplib.SMTPResponseException as e:
        print("%d %s" % (e.smtp_code, e.smtp_error.decode("latin-1")))
        return 1
    except smtplib.SMTPRecipientsRefused as e:
        for rcpt, (code, text) in e.recipients.items():
            print("%d %s" % (code, text.decode("latin-1")))
        return 1
    for rcpt, (code, text) in refused.items():
        print("refused %s: %d %s" % (rcpt, code, text.decode("latin-1")))
    code, text = s.noop()
    s.quit()
    print("250 accepted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
