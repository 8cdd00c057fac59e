"""Readiness probe for the test Kafka broker: sends one Metadata v1 request
(all topics) over plain TCP and exits 0 when the broker lists itself and a
controller. Standard library only, so it runs before any venv exists.

usage: python3 metadata.py HOST PORT
"""
import socket
import struct
import sys


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    client_id = b"tokenwatch-probe"
    # header: api_key=3 (Metadata), api_version=1, correlation_id=7, client_id
    body = struct.pack(">hhih", 3, 1, 7, len(client_id)) + client_id
    body += struct.pack(">i", -1)  # topics: null = all topics
    with socket.create_connection((host, port), timeout=5) as s:
        s.settimeout(5)
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", read_exact(s, 4))[0]
        resp = read_exact(s, size)
    off = 0
    corr = struct.unpack_from(">i", resp, off)[0]
    off += 4
    if corr != 7:
        sys.exit("unexpected correlation id %d" % corr)
    nbrokers = struct.unpack_from(">i", resp, off)[0]
    off += 4
    brokers = []
    for _ in range(nbrokers):
        node = struct.unpack_from(">i", resp, off)[0]
        off += 4
        hlen = struct.unpack_from(">h", resp, off)[0]
        off += 2
        h = resp[off : off + hlen].decode()
        off += hlen
        p = struct.unpack_from(">i", resp, off)[0]
        off += 4
        rlen = struct.unpack_from(">h", resp, off)[0]
        off += 2
        if rlen > 0:
            off += rlen
        brokers.append((node, h, p))
    controller = struct.unpack_from(">i", resp, off)[0]
    if not brokers or controller < 0:
        sys.exit("metadata not ready: brokers=%r controller=%d" % (brokers, controller))
    print("brokers=%r controller=%d" % (brokers, controller))


if __name__ == "__main__":
    try:
        main()
    except (OSError, EOFError, struct.error) as e:
        sys.exit("metadata request failed: %s" % e)
