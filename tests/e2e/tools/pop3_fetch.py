#!/usr/bin/python3
"""A real POP3 client (Python's poplib) for the e2e tests. Logs in, runs the
commands given, prints one result line each, then QUITs (unless --no-quit,
which drops the connection instead, as a crashing client would).

  pop3_fetch.py --port P --user U --password W [--auth plain] CMD...
  CMD: stat | list | list:N | uidl | uidl:N | retr:N:OUTFILE | top:N:L:OUTFILE
       | dele:N | rset | noop | capa
retr/top write the message with CRLF line ends (poplib removes the
dot-stuffing) and print "+OK <octets written>".
Errors from the server print "ERR <reply>" and the program goes on; a
failed login exits 1.
"""
import argparse
import base64
import poplib
import sys


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def dec(b):
    return b.decode("latin-1")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--auth", choices=["user", "plain"], default="user")
    p.add_argument("--no-quit", action="store_true")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("cmds", nargs="*")
    a = p.parse_args()

    c = poplib.POP3(a.host, a.port, timeout=a.timeout)
    try:
        if a.auth == "user":
            c.user(a.user)
            c.pass_(a.password)
        else:
            tok = base64.b64encode(b"\0" + a.user.encode() + b"\0" + a.password.encode())
            r = c._shortcmd("AUTH PLAIN " + tok.decode())
            if not r.startswith(b"+OK"):
                raise poplib.error_proto(r)
    except poplib.error_proto as e:
        out("LOGIN-ERR " + dec(e.args[0]))
        return 1

    for cmd in a.cmds:
        parts = cmd.split(":")
        try:
            if parts[0] == "stat":
                n, size = c.stat()
                out("%d %d" % (n, size))
            elif parts[0] == "list" and len(parts) == 1:
                resp, lines, _ = c.list()
                for l in lines:
                    out(dec(l))
            elif parts[0] == "list":
                out(dec(c.list(int(parts[1]))))
            elif parts[0] == "uidl" and len(parts) == 1:
                resp, lines, _ = c.uidl()
                for l in lines:
                    out(dec(l))
            elif parts[0] == "uidl":
                out(dec(c.uidl(int(parts[1]))))
            elif parts[0] in ("retr", "top"):
                if parts[0] == "retr":
                    resp, lines, _ = c.retr(int(parts[1]))
                    path = parts[2]
                else:
                    resp, lines, _ = c.top(int(parts[1]), int(parts[2]))
                    path = parts[3]
                data = b"".join(l + b"\r\n" for l in lines)
                with open(path, "wb") as f:
                    f.write(data)
                out("+OK %d" % len(data))
            elif parts[0] == "dele":
                out(dec(c.dele(int(parts[1]))))
            elif parts[0] == "rset":
                out(dec(c.rset()))
            elif parts[0] == "noop":
                out(dec(c.noop()))
            elif parts[0] == "capa":
                for k, v in sorted(c.capa().items()):
                    out(" ".join([k] + v))
            else:
                sys.exit("unknown command " + cmd)
        except poplib.error_proto as e:
            out("ERR " + dec(e.args[0]))
    if a.no_quit:
        c.sock.close()
    else:
        out(dec(c.quit()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
