#!/usr/bin/python3
"""Message helpers for the e2e tests, all byte-exact:

  msgtool.py crlf IN OUT        LF line ends -> CRLF (a bare CR is kept)
  msgtool.py lf IN OUT          CRLF line ends -> LF
  msgtool.py wire IN OUT        CRLF message -> DATA wire form for
                                `swaks --no-data-fixup`: dot-stuffed, then
                                "." (swaks adds the final CRLF)
  msgtool.py strip IN OUT       drops the trace lines delivery prepends: the
                                first line "Return-Path: <...>" and the
                                "Received:" header right after it with its
                                TAB continuation lines (CRLF or LF input)
  msgtool.py trace IN           prints the Return-Path and Received lines
  msgtool.py cmp A B            exit 0 if equal; else 1 and where they differ
  msgtool.py gen KIND OUT [ARG] writes a CRLF test message:
        long    lines of exactly ARG octets before CRLF (default 998)
        big     about ARG bytes (default 10 MiB) of varied 76-octet lines,
                with dot-lines sprinkled in
        text    a short plain message with subject ARG
"""
import sys


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def to_crlf(data):
    out = bytearray()
    prev = b""
    for i in range(len(data)):
        c = data[i:i + 1]
        if c == b"\n" and prev != b"\r":
            out += b"\r"
        out += c
        prev = c
    return bytes(out)


def to_crlf_fast(data):
    # The inputs here never contain CRLF already when they come from LF
    # fixtures; fall back to the exact loop when they do.
    if b"\r" in data:
        return to_crlf(data)
    return data.replace(b"\n", b"\r\n")


def wire(data):
    if not data.endswith(b"\r\n"):
        sys.exit("wire: message must end with CRLF")
    lines = data.split(b"\r\n")[:-1]
    stuffed = [b"." + l if l.startswith(b".") else l for l in lines]
    return b"\r\n".join(stuffed) + b"\r\n."


def strip_trace(data):
    i = data.find(b"\n")
    eol = b"\r\n" if i > 0 and data[i - 1:i] == b"\r" else b"\n"
    lines = data.split(eol)
    if not lines[0].startswith(b"Return-Path: <") or not lines[0].endswith(b">"):
        sys.exit("strip: first line is not Return-Path: %r" % lines[0][:80])
    if len(lines) < 2 or not lines[1].startswith(b"Received: "):
        sys.exit("strip: second line is not Received: %r" % lines[1][:80])
    i = 2
    while i < len(lines) and lines[i].startswith(b"\t"):
        i += 1
    return eol.join(lines[i:])


def trace(data):
    lines = data.split(b"\n")
    out = [lines[0]]
    i = 1
    if len(lines) > 1 and lines[1].startswith(b"Received: "):
        out.append(lines[1])
        i = 2
        while i < len(lines) and lines[i].startswith(b"\t"):
            out.append(lines[i])
            i += 1
    for l in out:
        sys.stdout.buffer.write(l.rstrip(b"\r") + b"\n")


def cmp(a, b, na, nb):
    if a == b:
        return 0
    n = min(len(a), len(b))
    i = next((k for k in range(n) if a[k] != b[k]), n)
    sys.stderr.write("%s (%d bytes) and %s (%d bytes) differ at offset %d\n"
                     % (na, len(a), nb, len(b), i))
    sys.stderr.write("  %s: %r\n  %s: %r\n"
                     % (na, a[max(0, i - 40):i + 40], nb, b[max(0, i - 40):i + 40]))
    return 1


def gen(kind, arg):
    head = b"From: Sender <sender@remote.test>\r\nTo: <alice@example.test>\r\n"
    if kind == "text":
        subject = (arg or "test").encode()
        return head + b"Subject: " + subject + b"\r\n\r\nHello.\r\n"
    if kind == "long":
        n = int(arg or 998)
        body = b""
        for ch in b"abc":
            body += bytes([ch]) * n + b"\r\n"
        body += b"." + b"d" * (n - 1) + b"\r\n"  # a long dot-line too
        return head + b"Subject: long lines\r\n\r\n" + body
    if kind == "big":
        size = int(arg or 10 * 1024 * 1024)
        out = [head, b"Subject: big\r\n\r\n"]
        total = sum(len(x) for x in out)
        i = 0
        while total < size:
            if i % 1000 == 0:
                line = b"." * (1 + i % 3) + b" dot line %d" % i
            else:
                line = (b"%08d " % i + b"0123456789abcdefghijklmnopqrstuvwxyz" * 2)[:76]
            line += b"\r\n"
            out.append(line)
            total += len(line)
            i += 1
        return b"".join(out)
    sys.exit("gen: unknown kind %s" % kind)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "crlf":
        write(args[1], to_crlf_fast(read(args[0])))
    elif cmd == "lf":
        write(args[1], read(args[0]).replace(b"\r\n", b"\n"))
    elif cmd == "wire":
        write(args[1], wire(read(args[0])))
    elif cmd == "strip":
        write(args[1], strip_trace(read(args[0])))
    elif cmd == "trace":
        trace(read(args[0]))
    elif cmd == "cmp":
        return cmp(read(args[0]), read(args[1]), args[0], args[1])
    elif cmd == "gen":
        write(args[1], gen(args[0], args[2] if len(args) > 2 else None))
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
