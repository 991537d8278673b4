"""Raw line-protocol client for the e2e tests (used by smtp_raw.py and
pop3_raw.py): sends exact bytes and prints every reply line, so that a test
can drive bare LF, pipelining, long lines, pregreet or BDAT by hand.

A transcript is a list of steps from argv:

  S:TEXT     send TEXT after unescaping \\r \\n \\t \\\\ \\xHH (no CRLF added)
  L:TEXT     send TEXT plus CRLF (escapes as in S:)
  F:PATH     send the bytes of a file
  B:TEXT     (SMTP) send "BDAT <octets>\\r\\n" then TEXT (escapes as in S:)
  BL:TEXT    (SMTP) send "BDAT <octets> LAST\\r\\n" then TEXT
  R[:N]      read N replies (default 1) and print them
  M          (POP3) read one multi-line response (status, then lines up to
             the lone "."); prints the lines as they are on the wire
  E          read until the server closes the connection, then print <EOF>
  X          close the current connection at once (no QUIT)
  I:PATH     run the steps in a file here (one step a line; blank lines
             and lines starting with '#' are skipped)
  @N[=SRC]   switch to connection N (opened on first use, from local
             address SRC when given, its greeting read unless
             --no-greeting); connection 1 is opened at start

Every line received is printed without its CRLF; when a connection is
switched to, "@N" is printed first. A read that sees the connection close
prints <EOF>; a read that waits longer than --timeout prints <TIMEOUT> and
the program exits 4. Exit 0 otherwise, 2 on a usage error, 3 when the
connection cannot be made.
"""
import argparse
import codecs
import socket
import sys


class Timeout(Exception):
    pass


def unescape(text):
    """Turns the argv/script escape syntax into the bytes to send. Text is
    taken as UTF-8 so that 8-bit addresses can be written literally."""
    raw = text.encode("utf-8")
    return codecs.decode(raw, "unicode_escape").encode("latin-1")


def emit(line):
    out = sys.stdout.buffer
    out.write(line)
    out.write(b"\n")
    out.flush()


class Conn:
    def __init__(self, host, port, source, timeout):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout()
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.buf += data

    def readline(self):
        """One line without its line end, or None at EOF. A final partial
        line (no LF before the close) is returned as it is."""
        while b"\n" not in self.buf:
            if self.eof:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                return None
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            emit(b"<SEND-FAILED>")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def read_smtp_reply(conn):
    """Reads one (possibly multi-line) SMTP reply: lines "ddd-" continue,
    "ddd " or a bare "ddd" ends it. Returns False at EOF."""
    while True:
        line = conn.readline()
        if line is None:
            emit(b"<EOF>")
            return False
        emit(line)
        if len(line) < 4 or line[3:4] != b"-":
            return True


def read_pop3_line(conn):
    line = conn.readline()
    if line is None:
        emit(b"<EOF>")
        return None
    emit(line)
    return line


def read_pop3_multi(conn):
    line = read_pop3_line(conn)
    if line is None or not line.startswith(b"+OK"):
        return
    while True:
        line = read_pop3_line(conn)
        if line is None or line == b".":
            return


def read_to_eof(conn):
    while True:
        line = conn.readline()
        if line is None:
            emit(b"<EOF>")
            return
        emit(line)


def expand_steps(steps):
    out = []
    for step in steps:
        if not step.startswith("I:"):
            out.append(step)
            continue
        with open(step[2:], encoding="utf-8") as f:
            lines = [l.rstrip("\n") for l in f]
        out.extend(expand_steps([l for l in lines if l and not l.startswith("#")]))
    return out


def main(proto):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", help="local address to connect from")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="seconds a single read may wait")
    p.add_argument("--no-greeting", action="store_true",
                   help="do not read the greeting when connecting")
    p.add_argument("steps", nargs="*")
    args = p.parse_intermixed_args()

    conns = {}
    cur = None

    def open_conn(key, source=None):
        try:
            c = Conn(args.host, args.port, source or args.source, args.timeout)
        except OSError as e:
            sys.stderr.write("connect %s:%d: %s\n" % (args.host, args.port, e))
            sys.exit(3)
        conns[key] = c
        if not args.no_greeting:
            if proto == "smtp":
                read_smtp_reply(c)
            else:
                read_pop3_line(c)
        return c

    try:
        cur = open_conn("1")
        for step in expand_steps(args.steps):
            if step.startswith("@"):
                key, _, src = step[1:].partition("=")
                emit(step.encode())
                cur = conns.get(key) or open_conn(key, src)
            elif step.startswith("S:"):
                cur.send(unescape(step[2:]))
            elif step.startswith("L:"):
                cur.send(unescape(step[2:]) + b"\r\n")
            elif step.startswith("F:"):
                with open(step[2:], "rb") as f:
                    cur.send(f.read())
            elif step.startswith("BL:") or step.startswith("B:"):
                last = step.startswith("BL:")
                data = unescape(step[3:] if last else step[2:])
                head = "BDAT %d%s\r\n" % (len(data), " LAST" if last else "")
                cur.send(head.encode() + data)
            elif step == "R" or step.startswith("R:"):
                n = int(step[2:]) if step.startswith("R:") else 1
                for _ in range(n):
                    if proto == "smtp":
                        if not read_smtp_reply(cur):
                            break
                    elif read_pop3_line(cur) is None:
                        break
            elif step == "M":
                read_pop3_multi(cur)
            elif step == "E":
                read_to_eof(cur)
            elif step == "X":
                cur.close()
            else:
                sys.stderr.write("unknown step: %r\n" % step)
                sys.exit(2)
    except Timeout:
        emit(b"<TIMEOUT>")
        sys.exit(4)
    finally:
        for c in conns.values():
            c.close()
    return 0
