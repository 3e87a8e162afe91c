"""The DNS view: the sandbox's only resolver.

It answers a name only when the policy allows it (else NXDOMAIN, recorded as a
denied `network` event; the query never leaves the machine), forwards allowed
questions to the host's upstream resolver as a *fresh* query (only the judged
name, type and class go out: no client-chosen ID, EDNS options or extra
records), and, before releasing the answer, puts each answered address into
the nft sets (with a timeout of max(TTL, floor)) and tells the connect
supervisor which names map to it.  If the sets cannot be updated the client
gets SERVFAIL: an answer the firewall does not know about is never released.

It runs in landgate's own namespace, bound to the host end of the sandbox's
veth: the upstream resolver is then reached exactly as the host reaches it
(often 127.0.0.53, which the sandbox's namespace could not reach).  Parsing and
building use dnslib; there is no hand-written DNS code here.

dnslib and the worker pool (concurrent.futures, which pulls in logging) are
loaded on the first query: a session whose agent never resolves a name does
not pay for them at launch.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence

from sandbox import threads
from sandbox.audit.event import DecisionEvent
from sandbox.plan.names import NameVerdict
from sandbox.record import replace

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor
    from typing import Any

    from dnslib import AAAA, DNSQuestion, DNSRecord

TTL_FLOOR = 60  # seconds an answered address stays in the sets at least
TTL_CAP = 86400
MAX_ADDRS_PER_NAME = 16
UPSTREAM_TIMEOUT = 3.0
DRAIN_MAX = 1024  # queries taken from the sockets' queues at close (see DnsView.close)
MAX_TCP_MESSAGE = 65535


class Upstream:
    """The resolver the DNS view asks: host, port."""

    # A plain class, not a dataclass: building one costs ~0.3-0.5 ms at import (exec of
    # generated methods), on every launch's network phase.
    __slots__ = ("host", "port")

    def __init__(self, host: str, port: int = 53) -> None:
        self.host = host
        self.port = port

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Upstream) and (self.host, self.port) == (other.host, other.port)

    def __hash__(self) -> int:
        return hash((self.host, self.port))

    def __repr__(self) -> str:
        return f"Upstream({self.host!r}, {self.port})"


def upstream_from_resolv_conf(path: str = "/etc/resolv.conf") -> Upstream | None:
    try:
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return Upstream(parts[1].split("%")[0])
    except OSError:
        return None
    return None


# (ip, verdict, timeout seconds) -> None; raises on failure.
AllowAddresses = Callable[[Sequence[str], NameVerdict, int], None]


class DnsView:
    def __init__(
        self,
        *,
        listen: Sequence[str],
        judge: Callable[[str], NameVerdict],
        upstream: Upstream,
        allow_addresses: AllowAddresses,
        on_event: Callable[[DecisionEvent], None],
        names_sink: Callable[[str, tuple[str, ...]], None],
        rule_ref: Callable[[NameVerdict], str],
        ipv6: bool = True,
        port: int = 53,
        ttl_floor: int = TTL_FLOOR,
        max_addrs: int = MAX_ADDRS_PER_NAME,
    ) -> None:
        self._listen = list(listen)
        self._judge = judge
        self._upstream = upstream
        self._allow_addresses = allow_addresses
        self._on_event = on_event
        self._names_sink = names_sink
        self._rule_ref = rule_ref
        self._ipv6 = ipv6
        self._port = port
        self._ttl_floor = ttl_floor
        self._max_addrs = max_addrs
        self._socks: list[socket.socket] = []
        self._threads: list[threads.Job] = []
        self._pool: ThreadPoolExecutor | None = None  # made by the first query (_submit)
        self._pool_lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self.queries = 0
        self.denied = 0

    # ---- lifecycle -------------------------------------------------------
    @property
    def port(self) -> int:
        """The port the view listens on (chosen at start() when constructed with port 0)."""
        return self._port

    def bind(self) -> None:
        """Create and bind the listening sockets in the calling thread's network namespace.

        A socket keeps the namespace it was made in: called from a thread that
        has joined the sandbox's namespace (the loopback-only layer), the view
        listens on the sandbox's own loopback while its upstream queries, made
        later by ordinary threads, leave from landgate's namespace."""
        if self._socks:
            return
        # An ephemeral port (the unprivileged rung, on the host's loopback) must be free
        # for both UDP and TCP on every address: the kernel picks it for one socket only,
        # so a number another program holds for the other protocol is retried, not fatal.
        ephemeral = self._port == 0
        for attempt in range(32 if ephemeral else 1):
            try:
                socks = self._bind_all()
                break
            except OSError as exc:
                if not ephemeral or exc.errno != errno.EADDRINUSE or attempt == 31:
                    raise
                self._port = 0
        self._socks += socks

    def adopt(self, socks: Sequence[socket.socket]) -> None:
        """Serve on sockets made elsewhere (the unprivileged rung's helper, in the sandbox's
        namespace): bound, and a TCP one listening, on this view's address and port."""
        if self._socks:
            raise OSError(errno.EEXIST, "DNS view already bound")
        self._socks += socks

    def start(self) -> None:
        """Serve (binding first in the caller's namespace unless bind() already ran).

        One thread waits on every listening socket and the wake pipe: a thread per socket
        cost every launch a thread start and, at close, a join each (issue 19)."""
        self.bind()
        for s in self._socks:
            if s.type == socket.SOCK_STREAM:
                # accept() must not block the other sockets when a connection went away
                # between select() and accept(); the accepted socket is blocking again
                # (_answer_tcp gives it a timeout).  UDP reads use MSG_DONTWAIT instead, so
                # the pool's replies (sendto on the same socket) keep blocking sends.
                s.setblocking(False)
        socks = list(self._socks)
        # A reused worker (sandbox.threads): no thread start-up handshake on the launch path.
        self._threads.append(threads.run(lambda: self._serve(socks), "landgate-dns-listen"))

    def _bind_all(self) -> list[socket.socket]:
        """UDP and TCP listeners on every address, one port number for all of them."""
        socks: list[socket.socket] = []
        try:
            for addr in self._listen:
                fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
                tcp = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                socks.append(tcp)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((addr, self._port))
                if self._port == 0:
                    self._port = tcp.getsockname()[1]
                tcp.listen(64)
                udp = socket.socket(fam, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                socks.append(udp)
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                udp.bind((addr, self._port))
        except OSError:
            for sock in socks:
                sock.close()
            raise
        return socks

    def close(self) -> None:
        """Stop serving; every query already sent is decided and recorded first.

        The session closes the view before its trail's end entry.  A query the agent sent
        just before it exited (still in a socket's queue, or on a pool worker) is an attempt
        like any other: it is taken from the queues and judged, and close() waits for the
        pool, so its decision reaches `on_event` before the trail is sealed, not after
        (where the sealed trail would refuse it and it would go unrecorded)."""
        self._stop.set()
        os.write(self._wake_w, b"x")  # wakes every listener's select() at once
        for t in self._threads:
            t.join(timeout=2)
        for sock in self._socks:
            self._drain(sock)
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            # Bounded: a deny is decided at once, an allow within the upstream's timeouts,
            # and a TCP connection ends after its current query (_answer_tcp checks _stop).
            pool.shutdown(wait=True)
        for s in self._socks:
            s.close()
        self._socks.clear()
        self._threads.clear()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # ---- transport ------------------------------------------------------
    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        """Run fn(*args) on the worker pool, made on first use (none after close())."""
        with self._pool_lock:
            if self._closed:
                return
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="landgate-dns")
            self._pool.submit(fn, *args)

    def _serve(self, socks: list[socket.socket]) -> None:
        """Until close(): each readable socket's datagram or connection goes to the pool.
        A socket that fails is no longer waited on (the others are still served)."""
        live = {s.fileno(): s for s in socks}
        while live:
            try:
                ready, _, _ = select.select([*live, self._wake_r], [], [])
            except (OSError, ValueError):
                return
            if self._stop.is_set():
                return
            for fd in ready:
                sock = live.get(fd)
                if sock is not None and not self._take(sock):
                    del live[fd]

    def _drain(self, sock: socket.socket) -> None:
        """Hand what is already queued on `sock` to the pool, without waiting for more
        (at most DRAIN_MAX items: the agent is gone, so the queue only shrinks)."""
        sock.setblocking(False)
        for _ in range(DRAIN_MAX):
            try:
                self._hand_over(sock)
            except OSError:  # BlockingIOError: nothing left; anything else: nothing to take
                return

    def _take(self, sock: socket.socket) -> bool:
        """Hand one datagram (UDP) or connection (TCP) of a readable socket to the pool;
        False when the socket failed."""
        try:
            self._hand_over(sock)
        except (BlockingIOError, InterruptedError):
            return True  # nothing there after all (a client that went away): keep waiting
        except OSError:
            return False
        return True

    def _hand_over(self, sock: socket.socket) -> None:
        """One queued datagram (UDP) or connection (TCP) of `sock` to the pool; OSError
        (BlockingIOError: nothing queued) as the read or accept raised it."""
        if sock.type == socket.SOCK_DGRAM:
            data, peer = sock.recvfrom(4096, socket.MSG_DONTWAIT)
            self._submit(self._answer_udp, sock, data, peer)
        else:
            conn, _ = sock.accept()
            self._submit(self._answer_tcp, conn)

    def _answer_udp(self, sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        reply = self.handle(data)
        if reply is None:
            return
        if len(reply) > 512:
            # Classic UDP limit without negotiating EDNS sizes: truncate, the client retries on TCP.
            from dnslib import DNSRecord

            rec = DNSRecord.parse(reply)
            rec.rr, rec.auth, rec.ar = [], [], []
            rec.header.tc = 1
            reply = rec.pack()
        try:
            sock.sendto(reply, peer)
        except OSError:
            pass

    def _answer_tcp(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with conn:
                while True:
                    head = _recv_exact(conn, 2)
                    if head is None:
                        return
                    (length,) = struct.unpack("!H", head)
                    data = _recv_exact(conn, length)
                    if data is None:
                        return
                    reply = self.handle(data)
                    if reply is None:
                        return
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
                    if self._stop.is_set():
                        return  # closing: this query was answered, no further one is read
        except OSError:
            return

    # ---- the decision ---------------------------------------------------
    def handle(self, data: bytes) -> bytes | None:
        """One query in, one reply out (None: not a DNS query worth answering)."""
        from dnslib import QTYPE, RCODE, DNSRecord

        try:
            query = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - dnslib raises DNSError and struct/buffer errors alike
            return None
        if query.header.qr or query.header.opcode != 0:
            return None
        if len(query.questions) != 1:
            return bytes(self._reply(query, RCODE.FORMERR).pack())
        self.queries += 1
        q = query.questions[0]
        name = str(q.qname).rstrip(".").lower()
        verdict = self._judge(name)
        event = DecisionEvent(
            source="dns",
            action="network",
            target=name,
            result="allow",
            layer="dns",
            ts=0.0,  # set by _emit
            rule=self._rule_ref(verdict),
            qtype=QTYPE.get(q.qtype, str(q.qtype)),
        )
        if not verdict.answer:
            self.denied += 1
            self._emit(replace(event, result="deny", reason=verdict.reason))
            return bytes(self._reply(query, RCODE.NXDOMAIN).pack())
        if q.qtype == QTYPE.AAAA and not self._ipv6:
            # IPv6 egress is not routed on this host: an empty answer makes clients use IPv4.
            self._emit(replace(event, addresses=(), note="no IPv6 egress"))
            return bytes(self._reply(query, RCODE.NOERROR).pack())
        try:
            upstream = self._ask_upstream(q)
        except (OSError, ValueError) as exc:
            self._emit(replace(event, result="error", reason=f"upstream: {exc}"))
            return bytes(self._reply(query, RCODE.SERVFAIL).pack())
        reply = self._reply(query, upstream.header.rcode)
        addrs: list[str] = []
        ttl = TTL_CAP
        for rr in upstream.rr:
            if rr.rtype in (QTYPE.A, QTYPE.AAAA):
                if rr.rtype == QTYPE.AAAA and not self._ipv6:
                    continue
                if len(addrs) >= self._max_addrs:
                    continue  # dropped from the reply too: the client only learns what nft allows
                addrs.append(str(rr.rdata))
                ttl = min(ttl, rr.ttl)
            reply.add_answer(rr)
        if addrs:
            timeout = max(self._ttl_floor, min(ttl, TTL_CAP))
            try:
                self._allow_addresses(addrs, verdict, timeout)
            except Exception as exc:  # noqa: BLE001 - fail closed: no answer the firewall does not know
                self._emit(replace(event, result="error", reason=f"nft: {exc}"))
                return bytes(self._reply(query, RCODE.SERVFAIL).pack())
            for ip in addrs:
                self._names_sink(ip, (name,))
        self._emit(replace(event, addresses=tuple(addrs)))
        return bytes(reply.pack())

    def _ask_upstream(self, q: DNSQuestion) -> DNSRecord:
        from dnslib import DNSHeader, DNSQuestion, DNSRecord

        fresh = DNSRecord(
            DNSHeader(id=_query_id(), rd=1), q=DNSQuestion(q.qname, q.qtype, q.qclass)
        )
        raw = fresh.send(self._upstream.host, self._upstream.port, timeout=UPSTREAM_TIMEOUT)
        answer = DNSRecord.parse(raw)
        if answer.header.tc:
            raw = fresh.send(
                self._upstream.host, self._upstream.port, tcp=True, timeout=UPSTREAM_TIMEOUT
            )
            answer = DNSRecord.parse(raw)
        if (
            answer.header.id != fresh.header.id
            or not answer.questions
            or answer.questions[0].qname != q.qname
            or answer.questions[0].qtype != q.qtype
        ):
            raise ValueError("reply does not match the question")
        return answer

    @staticmethod
    def _reply(query: DNSRecord, rcode: int) -> DNSRecord:
        from dnslib import DNSHeader, DNSRecord

        return DNSRecord(
            DNSHeader(id=query.header.id, qr=1, aa=0, ra=1, rd=query.header.rd, rcode=rcode),
            q=query.questions[0] if query.questions else None,
        )

    def _emit(self, event: DecisionEvent) -> None:
        try:
            self._on_event(replace(event, ts=time.time()))
        except Exception:  # noqa: BLE001,S110
            pass  # the audit sink reports its own failures; the resolver keeps answering


def _query_id() -> int:
    """A fresh upstream query's 16-bit id, from os.urandom: unguessable by anyone racing
    the upstream's answer (random.randrange was both guessable and an import of its own,
    with hashlib's _sha512, on every launch with a DNS view)."""
    return int.from_bytes(os.urandom(2), "big")


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def __getattr__(name: str) -> Any:
    if name == "AAAA":  # re-exported from dnslib (loaded on first use)
        from dnslib import AAAA

        return AAAA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AAAA", "DnsView", "Upstream", "upstream_from_resolv_conf"]
