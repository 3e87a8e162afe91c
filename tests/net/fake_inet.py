"""The tests' fake internet: run inside a namespace the test fixture created.

    python3 fake_inet.py ZONE.json LOG.jsonl

Serves, on every address of the namespace:
  * HTTP-ish TCP on ports 80 and 8080: answers "HTTP/1.0 200 OK ... fake:<ip>:<port>";
  * UDP on port 9999: records each datagram;
  * authoritative DNS on port 53 (dnslib) from ZONE.json ({"name": {"A": [...], "AAAA": [...]}}),
    re-read on every query so a test can change an answer mid-session.
Every connection, datagram and DNS question is appended to LOG.jsonl.
"""

from __future__ import annotations

import json
import socket
import sys
import threading

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord

ZONE, LOG = sys.argv[1], sys.argv[2]
_lock = threading.Lock()


def log(**event: object) -> None:
    with _lock, open(LOG, "a") as fh:
        fh.write(json.dumps(event) + "\n")


def tcp_server(family: int, port: int) -> None:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    s.listen(128)
    while True:
        conn, peer = s.accept()
        threading.Thread(target=serve_conn, args=(conn, peer, port), daemon=True).start()


def serve_conn(conn: socket.socket, peer: tuple, port: int) -> None:
    with conn:
        conn.settimeout(10)
        local = conn.getsockname()[0]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        log(
            kind="tcp",
            local=local,
            port=port,
            peer=peer[0],
            data=data[:200].decode(errors="replace"),
        )
        if data.startswith(b"SINK"):  # bulk transfer for the benchmark: read until EOF
            total = len(data)
            while True:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
            conn.sendall(str(total).encode())
            return
        body = f"fake:{local}:{port}\n".encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def udp_server(family: int) -> None:
    s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 9999))
    while True:
        data, peer = s.recvfrom(65536)
        log(kind="udp", peer=peer[0], data=data[:200].decode(errors="replace"))


def dns_server() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 53))
    while True:
        data, peer = s.recvfrom(4096)
        try:
            q = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001, S112  not a DNS message: nothing to answer
            continue
        name = str(q.q.qname).rstrip(".").lower()
        qtype = QTYPE.get(q.q.qtype, str(q.q.qtype))
        log(kind="dns", name=name, qtype=qtype, peer=peer[0])
        with open(ZONE) as fh:
            zone = json.load(fh)
        reply = q.reply()
        entry = zone.get(name)
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            ttl = int(entry.get("ttl", 30))
            for ip in entry.get("A", []) if qtype == "A" else []:
                reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(ip), ttl=ttl))
            for ip in entry.get("AAAA", []) if qtype == "AAAA" else []:
                reply.add_answer(RR(q.q.qname, QTYPE.AAAA, rdata=AAAA(ip), ttl=ttl))
        s.sendto(reply.pack(), peer)


for target, args in (
    (tcp_server, (socket.AF_INET, 80)),
    (tcp_server, (socket.AF_INET, 8080)),
    (tcp_server, (socket.AF_INET6, 80)),
    (tcp_server, (socket.AF_INET6, 8080)),
    (udp_server, (socket.AF_INET,)),
    (udp_server, (socket.AF_INET6,)),
    (dns_server, ()),
):
    threading.Thread(target=target, args=args, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
