#!/usr/bin/python3
"""A remote MX (or relay host) for the outbound e2e tests, built on aiosmtpd.

  sink_smtp.py --host 127.0.0.2 --port P --dir DIR
               [--mode accept|reject|tempfail:N]
               [--tls-cert CERT --tls-key KEY [--require-tls]]
               [--auth USER:PASSWORD]

Every accepted message goes to DIR/msg-N.eml (the data as received, CRLF)
and DIR/msg-N.json (mail_from, rcpt_tos, mail_options, rcpt_options, tls,
authenticated). DIR/ready appears once it listens; DIR/mode, when present,
overrides --mode and is read at every transaction, so a test can change
the behaviour without a restart:
  accept       take everything
  reject       550 5.1.1 for every recipient
  tempfail:N   451 4.7.1 for every recipient of the first N transactions
Whatever the mode, a recipient whose local part starts with "reject" gets
550 and one starting with "defer" gets 451. Stops on SIGTERM.
"""
import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, directory, mode):
        self.dir = directory
        self.default_mode = mode
        self.lock = threading.Lock()
        self.transactions = 0  # MAIL commands seen
        # Messages stored; a restarted sink goes on after the old ones.
        self.count = len([n for n in os.listdir(directory)
                          if n.startswith("msg-") and n.endswith(".eml")])

    def mode(self):
        try:
            with open(os.path.join(self.dir, "mode")) as f:
                return f.read().strip() or self.default_mode
        except OSError:
            return self.default_mode

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        with self.lock:
            self.transactions += 1
            n = self.transactions
        mode = self.mode()
        envelope.tempfail = False
        if mode.startswith("tempfail:"):
            envelope.tempfail = n <= int(mode.split(":", 1)[1])
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        local = address.split("@", 1)[0].lower()
        if self.mode() == "reject" or local.startswith("reject"):
            return "550 5.1.1 <%s>: Recipient address rejected: " \
                   "User unknown" % address
        if local.startswith("defer") or getattr(envelope, "tempfail",
                                                False):
            return "451 4.7.1 <%s>: Greylisted, try again later" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.dir, "msg-%d" % n)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with open(base + ".tmp", "wb") as f:
            f.write(data)
        info = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "tls": session.ssl is not None,
            "authenticated": bool(getattr(session, "authenticated", False)),
        }
        with open(base + ".json", "w") as f:
            json.dump(info, f)
        # The .eml appears last: a test that sees it sees everything.
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 Ok: queued as sink-%d" % n


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        return AuthResult(success=ok, handled=False)
    return authenticator


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--mode", default="accept")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--auth")
    a = p.parse_args()

    os.makedirs(a.dir, exist_ok=True)
    kwargs = {"server_hostname": "sink.test", "ready_timeout": 10,
              "data_size_limit": 33554432, "decode_data": False}
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = a.require_tls
    if a.auth:
        user, password = a.auth.split(":", 1)
        kwargs["authenticator"] = make_authenticator(user, password)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = True
    sink = Sink(a.dir, a.mode)
    controller = Controller(sink, hostname=a.host, port=a.port, **kwargs)
    controller.start()
    with open(os.path.join(a.dir, "ready"), "w") as f:
        f.write("%d\n" % os.getpid())

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    controller.stop()
    try:
        os.unlink(os.path.join(a.dir, "ready"))
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
