#!/usr/bin/env python3
"""Opens COUNT TCP connections at once from SRC to DST:PORT and reports how
each one ended, as "ok=N rejected=N dropped=N refused=N other=N":

  ok        the server's first line starts with 220 (admitted)
  rejected  it starts with 421 (refused in user space, after accept)
  dropped   no answer to the SYN within TIMEOUT (dropped in the kernel)
  refused   RST (nothing listening)

The SYNs leave within a millisecond, so a per-source limit of burst B lets
exactly B (or B+1) through. TIMEOUT stays below the kernel's first SYN
retransmission (1 s), so every dropped SYN is counted once. Bounded: at
most 200 connections and 10 seconds."""
import argparse
import errno
import selectors
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=0.8)
    a = ap.parse_args()
    if not 1 <= a.count <= 200 or not 0 < a.timeout <= 10:
        sys.exit("count must be 1..200 and timeout 0..10 s")
    family = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    counts = dict(ok=0, rejected=0, dropped=0, refused=0, other=0)
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(a.count):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((a.src, 0))
        rc = s.connect_ex((a.dst, a.port))
        if rc not in (0, errno.EINPROGRESS):
            counts["refused" if rc == errno.ECONNREFUSED else "other"] += 1
            s.close()
            continue
        sel.register(s, selectors.EVENT_WRITE, ["connecting", b""])
        socks.append(s)
    deadline = time.monotonic() + a.timeout
    pending = len(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            s, st = key.fileobj, key.data
            if st[0] == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    counts["refused" if err == errno.ECONNREFUSED
                           else "other"] += 1
                    sel.unregister(s)
                    pending -= 1
                    continue
                st[0] = "reading"
                sel.modify(s, selectors.EVENT_READ, st)
                continue
            try:
                data = s.recv(512)
            except OSError:
                data = b""
            st[1] += data
            if data and b"\n" not in st[1]:
                continue
            line = st[1]
            kind = ("ok" if line.startswith(b"220") else
                    "rejected" if line.startswith(b"421") else "other")
            counts[kind] += 1
            sel.unregister(s)
            pending -= 1
    for key in list(sel.get_map().values()):
        # Never answered: the SYN (or its SYN-ACK) was dropped.
        counts["dropped" if key.data[0] == "connecting" else "other"] += 1
    for s in socks:
        s.close()
    print(" ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
