"""A small rtnetlink client: the few requests the egress layer makes, batched.

Why not pyroute2 here: `import pyroute2` costs about 80 ms (its package
__init__ pulls in ndb, ipdb, conntrack...), and every request through its
asyncio core about 1.3 ms; a session makes a dozen.  The requests landgate
needs are fixed and few (a veth pair, addresses, links up, default routes, two
dumps), so they are packed here with `struct`, sent as one datagram per
namespace, and acknowledged together: the kernel handles the messages of a
batch in order and acks each (NLM_F_ACK), so the first error names its step.

Every socket belongs to the network namespace of the thread that opened it.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence

from sandbox.errors import LaunchError
from sandbox.netlink import (
    NLA_F_NESTED,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    attr,
    error_code,
    message,
    replies,
)
from sandbox.netlink import (
    attrs as parse_attrs,
)

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self

# linux/rtnetlink.h, linux/if_link.h, linux/veth.h, linux/if_addr.h
RTM_NEWLINK, RTM_NEWADDR, RTM_GETADDR, RTM_NEWROUTE, RTM_GETROUTE = 16, 20, 22, 24, 26
IFLA_IFNAME, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
IFF_UP = 0x1

_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")


class RtnlError(LaunchError):
    """An rtnetlink request failed; names the step and the errno."""


def _ifname(name: str) -> bytes:
    return attr(IFLA_IFNAME, name.encode() + b"\0")


def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


class Request:
    """One rtnetlink request of a batch."""

    # A plain class, not a dataclass: building one costs ~0.3-0.5 ms at import (exec of
    # generated methods), on every launch's network phase.
    __slots__ = ("body", "flags", "kind", "step")

    def __init__(self, step: str, kind: int, flags: int, body: bytes) -> None:
        self.step = step  # for the error message: "create veth lg12h1"
        self.kind = kind
        self.flags = flags
        self.body = body


def veth(name: str, peer: str, peer_netns_fd: int) -> Request:
    """A veth pair: `name` here, `peer` in the namespace of `peer_netns_fd`."""
    peer_info = (
        _IFINFO.pack(0, 0, 0, 0, 0)
        + _ifname(peer)
        + attr(IFLA_NET_NS_FD, struct.pack("=i", peer_netns_fd))
    )
    linkinfo = attr(IFLA_INFO_KIND, b"veth\0") + attr(
        IFLA_INFO_DATA | NLA_F_NESTED, attr(VETH_INFO_PEER | NLA_F_NESTED, peer_info)
    )
    body = (
        _IFINFO.pack(0, 0, 0, 0, 0) + _ifname(name) + attr(IFLA_LINKINFO | NLA_F_NESTED, linkinfo)
    )
    return Request(f"create veth {name}", RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)


def link_up(name: str) -> Request:
    return Request(
        f"set {name} up", RTM_NEWLINK, 0, _IFINFO.pack(0, 0, 0, IFF_UP, IFF_UP) + _ifname(name)
    )


def address(index: int, addr: str, prefix: int, nodad: bool = False) -> Request:
    fam = _family(addr)
    raw = socket.inet_pton(fam, addr)
    body = _IFADDR.pack(fam, prefix, IFA_F_NODAD if nodad else 0, RT_SCOPE_UNIVERSE, index)
    if fam == socket.AF_INET:
        body += attr(IFA_LOCAL, raw)
    body += attr(IFA_ADDRESS, raw)
    return Request(f"add address {addr}/{prefix}", RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)


def default_route(index: int, gateway: str) -> Request:
    fam = _family(gateway)
    body = _RTMSG.pack(fam, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
    body += attr(RTA_GATEWAY, socket.inet_pton(fam, gateway)) + attr(
        RTA_OIF, struct.pack("=i", index)
    )
    return Request(
        f"add default route via {gateway}", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body
    )


class Rtnl:
    """One NETLINK_ROUTE socket in the calling thread's network namespace."""

    def __init__(self) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        self._sock.bind((0, 0))
        self._seq = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def batch(self, requests: Sequence[Request]) -> None:
        """Send every request in one datagram; raise on the first that failed."""
        if not requests:
            return
        buf = bytearray()
        steps: dict[int, str] = {}
        for r in requests:
            self._seq += 1
            steps[self._seq] = r.step
            buf += message(r.kind, NLM_F_REQUEST | NLM_F_ACK | r.flags, self._seq, r.body)
        self._sock.send(bytes(buf))
        pending = set(steps)
        errors: list[tuple[int, int]] = []
        for kind, seq, payload in replies(self._sock):
            if kind != NLMSG_ERROR or seq not in pending:
                continue
            pending.discard(seq)
            err = error_code(payload)
            if err:
                errors.append((seq, -err))
                # The kernel keeps going after a failed message: later acks still come.
            if not pending:
                break
        if errors:
            seq, err = min(errors)
            raise RtnlError(f"{steps[seq]}: {os.strerror(err)}")

    def dump(self, kind: int, family: int) -> list[tuple[bytes, dict[int, bytes]]]:
        """(fixed header, attributes) of every object of a GET dump."""
        self._seq += 1
        if kind == RTM_GETADDR:
            fixed = _IFADDR.pack(family, 0, 0, 0, 0)
        else:
            fixed = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
        self._sock.send(message(kind, NLM_F_REQUEST | NLM_F_DUMP, self._seq, fixed))
        hsize = _IFADDR.size if kind == RTM_GETADDR else _RTMSG.size
        out: list[tuple[bytes, dict[int, bytes]]] = []
        for mkind, seq, payload in replies(self._sock):
            if seq != self._seq:
                continue
            if mkind == NLMSG_DONE:
                return out
            if mkind == NLMSG_ERROR:
                raise RtnlError(f"dump ({kind}): {os.strerror(-error_code(payload))}")
            out.append((payload[:hsize], parse_attrs(payload, hsize)))
        raise AssertionError("replies ended")  # it reads until the caller returns

    def networks(self) -> list[tuple[int, bytes, int]]:
        """(family, address bytes, prefix length) of every address and routed prefix here."""
        nets: list[tuple[int, bytes, int]] = []
        for fixed, attrs in self.dump(RTM_GETADDR, socket.AF_UNSPEC):
            fam, prefix = fixed[0], fixed[1]
            addr = attrs.get(IFA_ADDRESS) or attrs.get(IFA_LOCAL)
            if addr:
                nets.append((fam, addr, prefix))
        for fam in (socket.AF_INET, socket.AF_INET6):
            for fixed, attrs in self.dump(RTM_GETROUTE, fam):
                dst_len = fixed[1]
                if dst_len and RTA_DST in attrs:
                    nets.append((fam, attrs[RTA_DST], dst_len))
        return nets

    def default_route_oifs(self, family: int) -> list[int]:
        out: list[int] = []
        for fixed, attrs in self.dump(RTM_GETROUTE, family):
            if fixed[1] != 0 or RTA_DST in attrs or RTA_OIF not in attrs:
                continue
            (oif,) = struct.unpack("=i", attrs[RTA_OIF][:4])
            if oif not in out:
                out.append(oif)
        return out


RTM_DELLINK = 17


def delete_link(name: str) -> Request:
    return Request(f"delete {name}", RTM_DELLINK, 0, _IFINFO.pack(0, 0, 0, 0, 0) + _ifname(name))


# linux/sock_diag.h, linux/inet_diag.h
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, TCP_LISTEN = 4, 20, 10
_DIAG_REQ = struct.Struct("=BBBBI48x")


def tcp_listeners() -> list[tuple[int, bytes, int]]:
    """(family, local address bytes, port) of every TCP socket in LISTEN in this namespace.

    sock_diag filters by state in the kernel: unlike /proc/net/tcp, the cost
    does not grow with the host's established and TIME_WAIT sockets.
    """
    out: list[tuple[int, bytes, int]] = []
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG
    ) as s:
        for seq, fam in enumerate((socket.AF_INET, socket.AF_INET6), 1):
            req = _DIAG_REQ.pack(fam, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN)
            s.send(message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, req))
            alen = 4 if fam == socket.AF_INET else 16
            for kind, mseq, payload in replies(s):
                if mseq != seq:
                    continue
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    break
                if len(payload) >= 24:
                    # inet_diag_msg: family, state, timer, retrans, then sockid
                    # (sport, dport big-endian; src[4]; dst[4]; if; cookie).
                    (sport,) = struct.unpack_from("!H", payload, 4)
                    out.append((fam, payload[8 : 8 + alen], sport))
    return out
