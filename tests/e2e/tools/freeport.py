#!/usr/bin/python3
"""Prints N (default 1) distinct TCP ports that are free on 127.0.0.1 and,
when the host has IPv6 loopback, on ::1 too. The sockets are closed before
printing, so the caller should bind soon after."""
import socket
import sys


def free_on_v6(port):
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return True
    try:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::1", port))
        return True
    except OSError as e:
        return e.errno not in (98,)  # EADDRINUSE; no ::1 at all is fine
    finally:
        s.close()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    held, ports = [], []
    while len(ports) < n:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        held.append(s)
        if free_on_v6(port):
            ports.append(port)
    for s in held:
        s.close()
    print(" ".join(str(p) for p in ports))


if __name__ == "__main__":
    main()
