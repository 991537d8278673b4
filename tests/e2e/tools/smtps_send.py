#!/usr/bin/python3
"""Submits one message the way a mail client does, with Python's smtplib:
implicit TLS (SMTP_SSL, port 465 style, RFC 8314) or STARTTLS (port 587
style), then AUTH and sendmail. Certificates are not verified (the tests
use self-signed ones).

  smtps_send.py --port P (--implicit | --starttls) --user U --password W
                --from ADDR --to ADDR [--to ADDR...] [--subject S]

Prints "login: CODE TEXT", "sent: ok" (or the error) and "quit: CODE TEXT"
(or "quit: failed: ..."), and exits 0 when the message was accepted for
every recipient (however QUIT went), 1 on an SMTP error before that, 3 when
no connection or handshake could be made.
"""
import argparse
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--implicit", action="store_true")
    mode.add_argument("--starttls", action="store_true")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--subject", default="smtplib submission")
    a = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    msg = EmailMessage()
    msg["From"] = a.sender
    msg["To"] = ", ".join(a.to)
    msg["Subject"] = a.subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain="client.test")
    msg.set_content("Sent by smtps_send.py.\n")

    try:
        if a.implicit:
            smtp = smtplib.SMTP_SSL(a.host, a.port, local_hostname="client.test",
                                    context=ctx, timeout=30)
        else:
            smtp = smtplib.SMTP(a.host, a.port, local_hostname="client.test",
                                timeout=30)
            smtp.starttls(context=ctx)
    except (OSError, smtplib.SMTPException) as e:
        print("connect: %s" % e)
        return 3
    try:
        code, text = smtp.login(a.user, a.password)
        print("login: %d %s" % (code, text.decode(errors="replace")))
        refused = smtp.send_message(msg, from_addr=a.sender, to_addrs=a.to)
        if refused:
            print("refused: %r" % refused)
            return 1
        print("sent: ok")
    except smtplib.SMTPException as e:
        print("error: %s" % e)
        return 1
    # The message is accepted at this point; how QUIT ends is reported
    # apart so that a test can tell the two problems apart.
    try:
        code, text = smtp.quit()
        print("quit: %d %s" % (code, text.decode(errors="replace")))
    except (smtplib.SMTPException, OSError) as e:
        print("quit: failed: %s" % e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
