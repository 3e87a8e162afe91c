"""The network layer's threads at launch (issue 19): the DNS view serves UDP and TCP from
one thread; the loopback forwarder starts none when it has nothing to forward.  No
namespace needed: the view listens on the test's own 127.0.0.1."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from conftest import scaled
from dnslib import QTYPE, RCODE, DNSRecord

from sandbox.net.dnsview import DnsView, Upstream
from sandbox.net.loopback import LoopbackForwarder
from sandbox.plan.names import judge_name
from sandbox.policy import load_policy_text

POLICY = """\
version: 1
actions:
  - action: network
    defaultEffect: deny
"""


def _listeners() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "landgate-dns-listen"]


@pytest.fixture
def view():
    policy = load_policy_text(POLICY, source="p.yaml", cwd=Path("/tmp"))
    events: list = []
    v = DnsView(
        listen=["127.0.0.1"],
        judge=lambda n: judge_name(policy, n),
        upstream=Upstream("127.0.0.1", 1),  # never asked: every name is denied
        allow_addresses=lambda a, v, t: None,
        on_event=events.append,
        names_sink=lambda ip, names: None,
        rule_ref=lambda verdict: verdict.rule_ref(policy),
        port=0,
    )
    before = len(_listeners())
    v.start()
    yield v, before, events
    if not v._closed:  # a test may have closed it (close() is not idempotent)
        v.close()


def _udp(port: int, name: str) -> DNSRecord:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(DNSRecord.question(name, "A").pack(), ("127.0.0.1", port))
        return DNSRecord.parse(s.recv(4096))


def _tcp(port: int, name: str) -> DNSRecord:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        q = DNSRecord.question(name, "A").pack()
        s.sendall(struct.pack("!H", len(q)) + q)
        (n,) = struct.unpack("!H", s.recv(2))
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
        return DNSRecord.parse(data)


def test_one_thread_serves_udp_and_tcp(view) -> None:
    v, before, events = view
    assert len(_listeners()) == before + 1  # one listener thread for both sockets
    for ask in (_udp, _tcp, _udp, _tcp):
        reply = ask(v.port, "secret.example")
        assert reply.header.rcode == RCODE.NXDOMAIN
        assert reply.q.qtype == QTYPE.A
    assert [e.target for e in events].count("secret.example") == 4
    assert all(e.result == "deny" for e in events)


def test_a_vanished_connection_does_not_stall_the_view(view) -> None:
    """A client that resets its connection before the view accepts it: accept() finds
    nothing, and the one thread keeps serving (UDP right after, then TCP)."""
    v, _before, _events = view
    for _ in range(5):
        c = socket.create_connection(("127.0.0.1", v.port), timeout=5)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST
    assert _udp(v.port, "a.example").header.rcode == RCODE.NXDOMAIN
    assert _tcp(v.port, "b.example").header.rcode == RCODE.NXDOMAIN


def test_a_readiness_with_nothing_behind_it_does_not_block(view) -> None:
    """The one thread must never block on one socket: select() can say readable when
    nothing is there by the time it reads (a connection reset before accept, a datagram
    dropped).  Each socket's read returns at once when empty (fails with a blocking
    listener: the worker below would still be waiting)."""
    v, _before, _events = view
    for sock in v._socks:
        done: list[bool] = []
        worker = threading.Thread(target=lambda s=sock, d=done: d.append(v._take(s)), daemon=True)
        worker.start()
        worker.join(5)
        assert done == [True], sock  # returned at once, and the socket is still served
    assert _udp(v.port, "c.example").header.rcode == RCODE.NXDOMAIN


def test_close_ends_the_listener_thread(view) -> None:
    v, before, _events = view
    v.close()
    assert len(_listeners()) == before


def _forwarder(any_port: bool) -> LoopbackForwarder:
    return LoopbackForwarder(
        -1, allowed=lambda p: True, fixed_ports=[], any_port=any_port, warn=lambda m: None
    )


def _unstarted_view(judge_delay: float = 0.0):
    """A bound view whose listener never runs: what the agent sends stays queued on the
    sockets, as a query sent just before the agent exits does when the session closes."""
    policy = load_policy_text(POLICY, source="p.yaml", cwd=Path("/tmp"))
    events: list = []

    def judge(name: str):
        time.sleep(judge_delay)
        return judge_name(policy, name)

    v = DnsView(
        listen=["127.0.0.1"],
        judge=judge,
        upstream=Upstream("127.0.0.1", 1),
        allow_addresses=lambda a, v, t: None,
        on_event=events.append,
        names_sink=lambda ip, names: None,
        rule_ref=lambda verdict: verdict.rule_ref(policy),
        port=0,
    )
    v.bind()
    return v, events


def _send_udp(port: int, name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(DNSRecord.question(name, "A").pack(), ("127.0.0.1", port))


def test_queries_queued_at_close_are_decided_before_close_returns() -> None:
    """The agent sends and exits; the session closes the view, then seals the trail.  A
    query still in a socket's queue is taken and judged by close(), so its deny is recorded
    before close() returns (without the drain it was never judged: no entry at all)."""
    v, events = _unstarted_view()
    _send_udp(v.port, "udp.secret.example")
    tcp = socket.create_connection(("127.0.0.1", v.port), timeout=5)
    q = DNSRecord.question("tcp.secret.example", "A").pack()
    tcp.sendall(struct.pack("!H", len(q)) + q)
    v.close()
    tcp.close()
    assert sorted((e.target, e.result) for e in events) == [
        ("tcp.secret.example", "deny"),
        ("udp.secret.example", "deny"),
    ]


def test_a_decision_in_flight_at_close_is_recorded_before_close_returns() -> None:
    """A query on a pool worker when close() is called (its judge still running) reaches
    on_event before close() returns: close waits for the pool (it did not, and the decision
    landed after the trail's end entry, refused and lost).  The twin is the served query
    above: recorded while the view is open."""
    v, events = _unstarted_view(judge_delay=0.3)
    v.start()
    _send_udp(v.port, "slow.secret.example")
    deadline = time.monotonic() + scaled(5)
    while v.queries == 0 and time.monotonic() < deadline:
        time.sleep(0.005)  # the listener has handed it to the pool; the judge sleeps
    assert v.queries == 1
    v.close()
    assert [(e.target, e.result) for e in events] == [("slow.secret.example", "deny")]


def test_forwarder_with_nothing_to_forward_starts_no_thread() -> None:
    fw = _forwarder(any_port=False)
    fw.bind_here([])  # what the loopback-only layer does for a policy without loopback ports
    fw.start()
    assert fw._thread is None
    fw.close()  # tears down at once: its wake pipe is closed
    with pytest.raises(OSError):
        import os

        os.fstat(fw._wake_r)


def test_forwarder_that_may_rescan_starts_its_thread() -> None:
    """The twin: `localhost:*` (any port) rescans for new host listeners: a thread."""
    fw = _forwarder(any_port=True)
    fw.bind_here([])
    fw.start()
    try:
        assert fw._thread is not None and fw._thread.is_alive()
    finally:
        fw.close()
    fw._thread.join(5)
    assert not fw._thread.is_alive()
