"""Netlink framing shared by rtnetlink (sandbox/net/rtnl.py) and nf_tables (sandbox/host).

Rank 0: imports nothing of landgate's.  Headers, attributes (flat and nested), and the
one reply reader: every message a netlink socket receives, datagram after datagram.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x200, 0x400, 0x800
NLM_F_DUMP = 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # acknowledgements without a copy of the request

HDR = struct.Struct("=IHHII")  # struct nlmsghdr


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def nest(kind: int, *attrs: bytes) -> bytes:
    """A nested attribute holding `attrs` (NLA_F_NESTED set, as libmnl does)."""
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def strz(kind: int, text: str) -> bytes:
    """A NUL-terminated string attribute."""
    return attr(kind, text.encode() + b"\0")


def be32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!I", value & 0xFFFFFFFF))


def be64(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!Q", value))


def message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return HDR.pack(HDR.size + len(body), kind, flags, seq, 0) + body


def replies(sock: socket.socket) -> Iterator[tuple[int, int, bytes]]:
    """(type, sequence number, payload) of every message the socket receives, datagram
    after datagram, for as long as the caller reads (it stops at the reply it waits for).
    A malformed header ends its datagram (the kernel never sends one)."""
    while True:
        yield from _split(sock.recv(1 << 16))


def queued(sock: socket.socket) -> list[tuple[int, int, bytes]]:
    """Every message already waiting on the socket, read without blocking (maybe none)."""
    out: list[tuple[int, int, bytes]] = []
    while True:
        try:
            data = sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return out
        out += _split(data)


def _split(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    off = 0
    while off + HDR.size <= len(data):
        length, mkind, _flags, mseq, _pid = HDR.unpack_from(data, off)
        if length < HDR.size:
            return
        yield mkind, mseq, data[off + HDR.size : off + length]
        off += (length + 3) & ~3


def error_code(payload: bytes) -> int:
    """The (negative) errno of an NLMSG_ERROR payload; 0 is an acknowledgement."""
    (err,) = struct.unpack_from("=i", payload)
    return int(err)


def attrs(data: bytes, off: int = 0) -> dict[int, bytes]:
    """The attributes from `off` on, by type (flags stripped); the first of a repeated type."""
    out: dict[int, bytes] = {}
    while off + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, off)
        if length < 4:
            break
        out.setdefault(kind & 0x3FFF, data[off + 4 : off + length])
        off += (length + 3) & ~3
    return out
