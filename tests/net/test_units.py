"""Egress pieces without a namespace: name judgement, the compiled ruleset, the DNS view's rules."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require_kernel
from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord

from sandbox.net.dnsview import DnsView, Upstream
from sandbox.plan.names import judge_name
from sandbox.plan.nft import NftTopology, compile_nft_ruleset, render_nft_text
from sandbox.policy import load_policy_text

POLICY = """\
version: 1
actions:
  - action: network
    defaultEffect: deny
    rules:
      - { destination: "allowed.test", effect: allow }
      - { destination: "*.allowed.test:443", effect: allow }
      - { destination: "mail.allowed.test:443", effect: deny }
      - { destination: "exfil.test", effect: deny }
      - { destination: "10.200.1.0/24:8080", effect: allow }
      - { destination: "10.200.1.20", effect: deny }
"""


@pytest.fixture(scope="module")
def policy():
    return load_policy_text(POLICY, source="p.yaml", cwd=Path("/tmp"))


def test_judge_name(policy) -> None:
    v = judge_name(policy, "allowed.test")
    assert v.answer and v.any_port
    v = judge_name(policy, "cdn.allowed.test")
    assert v.answer and not v.any_port and v.allow_ports == {443}
    v = judge_name(policy, "mail.allowed.test")  # its only allowed port is denied
    assert not v.answer
    assert not judge_name(policy, "exfil.test").answer
    assert not judge_name(policy, "secret.exfil.test").answer  # default deny
    assert judge_name(policy, "ALLOWED.test.").answer  # case and trailing dot


def test_ruleset_is_accepted_by_nft_and_rendered(policy) -> None:
    ruleset = compile_nft_ruleset(
        policy,
        {"allowed.test": ["10.200.1.10"], "cdn.allowed.test": ["fd00:c8:1::30"]},
        NftTopology(
            table="lgunit", host_if="lgunit0", sandbox4="10.200.128.2", view4="10.200.128.1"
        ),
    )
    text = render_nft_text(ruleset)
    assert "ip daddr 10.200.1.20 goto refuse" in text
    assert "reject with tcp reset" in text and "reject with icmpx port-unreachable" in text
    assert "goto refuse  # default deny" in text
    assert text.index("10.200.1.20 goto refuse") < text.index(
        "@allowany4 accept"
    )  # deny before allow
    if shutil.which("nft") and Path("/proc/self").exists():
        proc = subprocess.run(
            ["nft", "-c", "-j", "-f", "-"],
            input=json.dumps(ruleset),
            text=True,
            capture_output=True,
            check=False,
        )
        require_kernel(
            proc.returncode == 0 or "Operation not permitted" not in proc.stderr,
            "nft -c needs CAP_NET_ADMIN",
        )
        assert proc.returncode == 0, proc.stderr


def _view(policy, answers, fed, events, names, feeder_fails=False, ipv6=True):
    def allow(addrs, verdict, timeout):
        if feeder_fails:
            raise RuntimeError("netlink down")
        fed.append((list(addrs), timeout))

    view = DnsView(
        listen=[],
        judge=lambda n: judge_name(policy, n),
        upstream=Upstream("127.0.0.1", 1),
        allow_addresses=allow,
        on_event=events.append,
        names_sink=names.__setitem__,
        rule_ref=lambda v: v.rule_ref(policy),
        ipv6=ipv6,
        max_addrs=3,
    )

    def ask(q):
        asked = answers.setdefault("_asked", [])
        asked.append((str(q.qname), q.qtype))
        rec = DNSRecord.question(str(q.qname), QTYPE.get(q.qtype))
        r = rec.reply()
        for rtype, ip, ttl in answers.get(str(q.qname).rstrip("."), []):
            if QTYPE.get(q.qtype) == rtype:
                r.add_answer(
                    RR(
                        q.qname,
                        getattr(QTYPE, rtype),
                        rdata=A(ip) if rtype == "A" else AAAA(ip),
                        ttl=ttl,
                    )
                )
        return r

    view._ask_upstream = ask  # type: ignore[method-assign]
    return view


def test_dns_view_denies_without_asking_upstream(policy) -> None:
    answers: dict = {}
    events: list = []
    view = _view(policy, answers, [], events, {})
    reply = DNSRecord.parse(view.handle(DNSRecord.question("aws-key-AKIA123.exfil.test").pack()))
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert "_asked" not in answers
    assert events[-1].result == "deny" and events[-1].target == "aws-key-akia123.exfil.test"


def test_dns_view_ttl_floor_cap_and_names(policy) -> None:
    ips = [f"10.200.1.{i}" for i in range(10, 16)]
    answers = {"allowed.test": [("A", ip, 5) for ip in ips]}
    fed: list = []
    names: dict = {}
    view = _view(policy, answers, fed, [], names)
    query = DNSRecord.question("allowed.test")
    reply = DNSRecord.parse(view.handle(query.pack()))
    assert reply.header.id == query.header.id and reply.header.rcode == RCODE.NOERROR
    returned = [str(rr.rdata) for rr in reply.rr]
    assert returned == ips[:3]  # capped, and the reply carries only what the sets got
    assert fed == [(ips[:3], 60)]  # TTL 5 raised to the 60 s floor
    assert names == dict.fromkeys(ips[:3], ("allowed.test",))


def test_dns_view_fails_closed_when_sets_cannot_be_fed(policy) -> None:
    view = _view(
        policy, {"allowed.test": [("A", "10.200.1.10", 300)]}, [], [], {}, feeder_fails=True
    )
    reply = DNSRecord.parse(view.handle(DNSRecord.question("allowed.test").pack()))
    assert reply.header.rcode == RCODE.SERVFAIL and not reply.rr


def test_dns_view_without_ipv6_egress_answers_no_aaaa(policy) -> None:
    answers: dict = {"allowed.test": [("AAAA", "fd00:c8:1::10", 300)]}
    view = _view(policy, answers, [], [], {}, ipv6=False)
    reply = DNSRecord.parse(view.handle(DNSRecord.question("allowed.test", "AAAA").pack()))
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr and "_asked" not in answers


def test_dns_view_ignores_garbage_and_refuses_multi_question(policy) -> None:
    view = _view(policy, {}, [], [], {})
    assert view.handle(b"\x00\x01garbage") is None
    q = DNSRecord.question("allowed.test")
    q.add_question(DNSRecord.question("exfil.test").q)
    assert DNSRecord.parse(view.handle(q.pack())).header.rcode == RCODE.FORMERR


def test_connect_only_rung_pins_names_and_warns(policy, monkeypatch) -> None:
    import socket

    from sandbox.net import CONNECT_ONLY_WARNING, NetworkSession
    from sandbox.net import session as sess

    caps = sess.network_capabilities()
    monkeypatch.setattr(
        sess,
        "network_capabilities",
        lambda nft=True: sess.NetCapabilities(
            **{**caps.to_dict(), "netns": False, "rung": "connect-only", "notes": ()}
        ),
    )
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.200.1.10", 0))],
    )
    warned: list[str] = []
    names: dict = {}
    ns = NetworkSession(policy, warn=warned.append, names_sink=names.__setitem__)
    setup = ns.prepare()
    assert setup.rung == "connect-only" and setup.netns_fd == -1 and setup.binds == []
    assert CONNECT_ONLY_WARNING in warned and CONNECT_ONLY_WARNING in setup.warnings
    assert "UDP and DNS exfiltration are NOT contained" in CONNECT_ONLY_WARNING
    assert setup.pinned == {"allowed.test": ["10.200.1.10"]} and names == {
        "10.200.1.10": ("allowed.test",)
    }
    ns.close()
