#!/usr/bin/python3
"""Exact SMTP transcripts over TLS, for the STARTTLS, AUTH and submission
tests. Takes the steps of rawclient.py (S: L: F: B: BL: R R:N E X) and adds:

  T          STARTTLS handshake on the current connection (the client has
             sent STARTTLS and read the 220 itself). Before the handshake,
             any octet the server sends in clear is a failure: prints
             <PLAINTEXT-AFTER-STARTTLS> and the octets, and exits 5.
             Prints <TLS VERSION CIPHER> once the handshake is done.
  C          prints <CERT SHA256=AA:BB:...> for the server certificate, in
             the form of `openssl x509 -noout -fingerprint -sha256`
  W:PATH     waits (up to --timeout) until the file PATH exists
  P:SECONDS  pauses (e.g. P:0.05), to land inside a server-side delay

--tls makes the handshake at connect time (implicit TLS, RFC 8314) before
the greeting is read. Certificates are never verified (self-signed test
certificates). A failed handshake prints <TLS-FAILED reason> and exits 6.
Exit codes otherwise as in rawclient.py (4 on a read timeout).

Example (injection test, RFC 3207 §4.2 / CVE-2011-0411):
  smtp_tls_raw.py --port 2525 'L:EHLO x' R 'S:STARTTLS\\r\\nRSET\\r\\n' R T \\
      'L:HELP' R 'L:QUIT' R E
"""
import argparse
import hashlib
import os
import select
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawclient import (Conn, Timeout, emit, read_smtp_reply,  # noqa: E402
                       read_to_eof, unescape)

# How long the server gets to (wrongly) answer pipelined input in clear
# after its 220 to STARTTLS.
PLAINTEXT_GRACE = 0.5


class TLSFailed(Exception):
    pass


class TLSConn(Conn):
    """rawclient's connection, able to switch to TLS mid-stream."""

    def __init__(self, host, port, timeout, tls_max):
        super().__init__(host, port, None, timeout)
        self.host = host
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        if tls_max:
            self.ctx.maximum_version = tls_max

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout()
        except (ConnectionResetError, ssl.SSLZeroReturnError,
                ssl.SSLEOFError):
            data = b""
        if not data:
            self.eof = True
        self.buf += data

    def handshake(self):
        try:
            self.sock = self.ctx.wrap_socket(self.sock,
                                             server_hostname=self.host)
        except (ssl.SSLError, OSError) as e:
            raise TLSFailed(str(e))
        emit(("<TLS %s %s>" % (self.sock.version(),
                               self.sock.cipher()[0])).encode())

    def starttls(self):
        # Anything already read past the 220 came in clear: a failure.
        if self.buf:
            emit(b"<PLAINTEXT-AFTER-STARTTLS>")
            emit(self.buf)
            sys.exit(5)
        ready, _, _ = select.select([self.sock], [], [], PLAINTEXT_GRACE)
        if ready:
            try:
                extra = self.sock.recv(65536, socket.MSG_PEEK)
            except OSError:
                extra = b""
            if extra:
                emit(b"<PLAINTEXT-AFTER-STARTTLS>")
                emit(extra)
                sys.exit(5)
        self.handshake()

    def cert_fingerprint(self):
        der = self.sock.getpeercert(binary_form=True)
        digest = hashlib.sha256(der).hexdigest().upper()
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def wait_for_file(path, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise Timeout()
        time.sleep(0.05)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=20.0,
                   help="seconds a single read (or W: wait) may take")
    p.add_argument("--tls", action="store_true",
                   help="implicit TLS: handshake before the greeting")
    p.add_argument("--tls-max", choices=["1.2", "1.3"],
                   help="highest TLS version the client offers")
    p.add_argument("--no-greeting", action="store_true")
    p.add_argument("steps", nargs="*")
    args = p.parse_intermixed_args()
    tls_max = {None: None, "1.2": ssl.TLSVersion.TLSv1_2,
               "1.3": ssl.TLSVersion.TLSv1_3}[args.tls_max]

    try:
        conn = TLSConn(args.host, args.port, args.timeout, tls_max)
    except OSError as e:
        sys.stderr.write("connect %s:%d: %s\n" % (args.host, args.port, e))
        return 3
    try:
        if args.tls:
            conn.handshake()
        if not args.no_greeting:
            read_smtp_reply(conn)
        for step in args.steps:
            if step.startswith("S:"):
                conn.send(unescape(step[2:]))
            elif step.startswith("L:"):
                conn.send(unescape(step[2:]) + b"\r\n")
            elif step.startswith("F:"):
                with open(step[2:], "rb") as f:
                    conn.send(f.read())
            elif step.startswith("BL:") or step.startswith("B:"):
                last = step.startswith("BL:")
                data = unescape(step[3:] if last else step[2:])
                head = "BDAT %d%s\r\n" % (len(data), " LAST" if last else "")
                conn.send(head.encode() + data)
            elif step == "R" or step.startswith("R:"):
                n = int(step[2:]) if step.startswith("R:") else 1
                for _ in range(n):
                    if not read_smtp_reply(conn):
                        break
            elif step == "E":
                read_to_eof(conn)
            elif step == "X":
                conn.close()
            elif step == "T":
                conn.starttls()
            elif step == "C":
                emit(("<CERT SHA256=%s>" % conn.cert_fingerprint()).encode())
            elif step.startswith("W:"):
                wait_for_file(step[2:], args.timeout)
            elif step.startswith("P:"):
                time.sleep(float(step[2:]))
            else:
                sys.stderr.write("unknown step: %r\n" % step)
                return 2
    except Timeout:
        emit(b"<TIMEOUT>")
        return 4
    except TLSFailed as e:
        emit(("<TLS-FAILED %s>" % e).encode())
        return 6
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
