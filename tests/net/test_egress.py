"""Egress enforcement against the real kernel: a sandbox namespace, its nft ruleset and DNS view.

Traffic goes only to the fake internet (a namespace tests/net/conftest.py
creates) and to loopback.  Each denial test also proves its allowed twin.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator

import pytest
from conftest import RecordingServer

from sandbox.audit.event import DecisionEvent

from .conftest import ADDRS, ZONE, FakeInet, net_session, run_in_sandbox, wait_for

pytestmark = pytest.mark.kernel

POLICY = """\
version: 1
actions:
  - action: network
    defaultEffect: deny
    rules:
      - { destination: "allowed.test", effect: allow }
      - { destination: "*.allowed.test:80", effect: allow }
      - { destination: "ports.test:8080", effect: allow }
      - { destination: "exfil.test", effect: deny }
      - { destination: "10.200.1.40", effect: allow }
      - { destination: "v6.test", effect: allow }
"""

CONNECT = """
import json, socket, sys, time
def attempt(host, port, family=0):
    t = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as e:
        return {"result": "nxdomain", "err": str(e)}
    fam, _, _, _, addr = infos[0]
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(addr)
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        data = s.recv(4096)
        body = data.decode(errors="replace").split("\\r\\n\\r\\n")[-1]
        return {"result": "ok", "ip": addr[0], "body": body, "secs": time.monotonic() - t}
    except OSError as e:
        secs = time.monotonic() - t
        return {"result": type(e).__name__, "errno": e.errno, "ip": addr[0], "secs": secs}
    finally:
        s.close()
targets = json.loads(sys.argv[1] if len(sys.argv) > 1 else TARGETS)
print(json.dumps([attempt(h, p, f) for h, p, f in targets]))
"""


def connect_all(session, targets: list[tuple[str, int, int]]) -> list[dict]:
    code = f"TARGETS = {json.dumps(json.dumps(targets))}\n" + CONNECT
    proc = run_in_sandbox(session, code)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def session(fake_inet: FakeInet) -> Iterator:
    events: list[DecisionEvent] = []
    names: dict[str, tuple[str, ...]] = {}
    ns = net_session(POLICY, fake_inet, events, names)
    ns.prepare()
    ns.events = events  # type: ignore[attr-defined]
    ns.name_map = names  # type: ignore[attr-defined]
    try:
        yield ns
    finally:
        ns.close()
        fake_inet.set_zone(ZONE)


def test_allowed_name_reachable_and_denied_name_never_asked_upstream(
    session, fake_inet: FakeInet
) -> None:
    mark = fake_inet.mark()
    secret_name = "sk-live-0123456789.exfil.test"
    ok, denied, denied_sub = connect_all(
        session, [("allowed.test", 80, 0), ("exfil.test", 80, 0), (secret_name, 80, 0)]
    )
    assert ok["result"] == "ok" and ok["body"] == f"fake:{ADDRS['allowed']}:80\n"
    assert denied["result"] == "nxdomain" and denied_sub["result"] == "nxdomain"
    asked = {e["name"] for e in fake_inet.since(mark) if e["kind"] == "dns"}
    assert "allowed.test" in asked
    assert "exfil.test" not in asked and secret_name not in asked
    deny_events = [e for e in session.events if e.result == "deny"]
    assert any(
        e.target == secret_name and e.layer == "dns" and e.action == "network" for e in deny_events
    )
    assert session.name_map[ADDRS["allowed"]] == ("allowed.test",)


def test_literal_ip_denied_fails_fast_allowed_literal_works(session, fake_inet: FakeInet) -> None:
    mark = fake_inet.mark()
    denied, allowed = connect_all(session, [(ADDRS["exfil"], 80, 0), (ADDRS["literal_ok"], 80, 0)])
    assert denied["result"] == "ConnectionRefusedError" and denied["secs"] < 1.0
    assert allowed["result"] == "ok" and allowed["body"] == f"fake:{ADDRS['literal_ok']}:80\n"
    seen = {e["local"] for e in fake_inet.since(mark) if e["kind"] == "tcp"}
    assert ADDRS["exfil"] not in seen and ADDRS["literal_ok"] in seen


def test_udp_to_denied_address_gets_nothing_through(session, fake_inet: FakeInet) -> None:
    mark = fake_inet.mark()
    code = f"""
import socket
ip = socket.getaddrinfo("allowed.test", 9999, socket.AF_INET)[0][4][0]
for host, tag in (("{ADDRS["exfil"]}", "LEAK-udp-denied"), (ip, "udp-allowed-twin")):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, 9999))
    s.send(tag.encode())
    s.settimeout(1)
    try:
        s.recv(100)
    except ConnectionRefusedError:
        print(tag, "refused")
    except OSError as e:
        print(tag, type(e).__name__)
"""
    proc = run_in_sandbox(session, code)
    assert proc.returncode == 0, proc.stderr
    assert "LEAK-udp-denied refused" in proc.stdout  # an error, not silence
    assert wait_for(lambda: any(e.get("data") == "udp-allowed-twin" for e in fake_inet.since(mark)))
    assert not any("LEAK" in str(e.get("data")) for e in fake_inet.log())


def test_dns_only_through_the_view(session, fake_inet: FakeInet) -> None:
    mark = fake_inet.mark()
    code = f"""
import socket
from dnslib import DNSRecord
q = DNSRecord.question("leak-via-direct-dns.exfil.test").pack()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("{ADDRS["dns"]}", 53))
s.send(q)
s.settimeout(2)
try:
    s.recv(512)
    print("answered")
except OSError as e:
    print(type(e).__name__)
"""
    proc = run_in_sandbox(session, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ConnectionRefusedError"
    assert not any(e.get("name", "").startswith("leak-via") for e in fake_inet.since(mark))


def test_changed_answer_keeps_working(session, fake_inet: FakeInet) -> None:
    (first,) = connect_all(session, [("allowed.test", 80, 0)])
    assert first["result"] == "ok" and first["ip"] == ADDRS["allowed"]
    fake_inet.set_zone({**ZONE, "allowed.test": {"A": [ADDRS["allowed_new"]], "ttl": 5}})
    (second,) = connect_all(session, [("allowed.test", 80, 0)])
    assert second["result"] == "ok" and second["ip"] == ADDRS["allowed_new"]
    assert second["body"] == f"fake:{ADDRS['allowed_new']}:80\n"
    fake_inet.set_zone(ZONE)


def test_wildcard_and_port_rules(session) -> None:
    res = connect_all(
        session,
        [
            ("cdn.allowed.test", 80, 0),
            ("cdn.allowed.test", 8080, 0),
            ("ports.test", 8080, 0),
            ("ports.test", 80, 0),
            ("allowed.test", 8080, 0),
        ],
    )
    assert [r["result"] for r in res] == [
        "ok",
        "ConnectionRefusedError",
        "ok",
        "ConnectionRefusedError",
        "ok",
    ]


def test_ipv6(session, fake_inet: FakeInet) -> None:
    """Where the host forwards IPv6 (the probe landgate itself uses), an allowed v6 name is
    reachable and a denied v6 address refused at once; where it does not (6.1/6.12 hosts
    often), landgate warns, the DNS view answers no AAAA and a v6 literal fails fast."""
    from sandbox.host.network import network_capabilities

    forwarded = network_capabilities().ipv6
    ok, denied = connect_all(
        session, [("v6.test", 80, socket.AF_INET6), (ADDRS["v6_denied"], 80, 0)]
    )
    warned = any("IPv6 egress is not forwarded" in w for w in session.setup.warnings)
    if forwarded:
        assert not warned, session.setup.warnings
        assert ok["result"] == "ok" and ok["body"] == f"fake:{ADDRS['v6_ok']}:80\n"
        assert denied["result"] == "ConnectionRefusedError" and denied["secs"] < 1.0
    else:
        assert warned, (
            f"no IPv6 warning where the host does not forward it: {session.setup.warnings}"
        )
        assert ok["result"] == "nxdomain", ok
        assert denied["result"] != "ok" and denied["secs"] < 1.0, denied


def test_localhost_semantics(fake_inet: FakeInet) -> None:
    allowed = RecordingServer()
    denied = RecordingServer()
    try:
        policy = POLICY + f'      - {{ destination: "localhost:{allowed.port}", effect: allow }}\n'
        ns = net_session(policy, fake_inet)
        setup = ns.prepare()
        try:
            assert allowed.port in setup.forwarded_loopback_ports
            code = f"""
import socket, threading
out = []
pairs = (({allowed.port}, b"to-allowed-host-port"), ({denied.port}, b"LEAK-to-denied-host-port"))
for port, msg in pairs:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.recv(10); s.sendall(msg); s.close(); out.append("ok")
    except OSError as e:
        out.append(type(e).__name__)
# the sandbox's own loopback server, on a port the policy does not name
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(b"own"); c.close()
threading.Thread(target=serve).start()
c = socket.create_connection(srv.getsockname(), timeout=3)
out.append(c.recv(10).decode())
print(" ".join(out))
"""
            proc = run_in_sandbox(ns, code)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.split() == ["ok", "ConnectionRefusedError", "own"]
            assert wait_for(lambda: b"to-allowed-host-port" in allowed.received)
            assert denied.connections == 0 and b"LEAK" not in denied.received
        finally:
            ns.close()
    finally:
        allowed.close()
        denied.close()


def _leftovers(tag: str) -> list[str]:
    out = subprocess.run(
        [
            "sh",
            "-c",
            "ls /run/netns 2>/dev/null; ls /run/landgate 2>/dev/null; ip -o link; nft list tables",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [line for line in out.splitlines() if tag in line]


def test_close_leaves_nothing(fake_inet: FakeInet) -> None:
    ns = net_session(POLICY, fake_inet)
    ns.prepare()
    tag = f"{ns.names.pid}"
    assert _leftovers(f"landgate-{tag}-{ns.names.n}")
    ns.close()
    ns.close()  # idempotent
    assert _leftovers(f"landgate-{tag}-{ns.names.n}") == []
    # The namespace is held by fds only: the kernel removes it, and the veth pair
    # with it, in the background once the last one is closed.
    assert wait_for(lambda: _leftovers(ns.names.host_if) == [], timeout=10)


def test_sigkill_leftovers_removed_by_next_run(fake_inet: FakeInet) -> None:
    import sys

    code = """
import sys, time
sys.path.insert(0, sys.argv[1])
from sandbox.net import NetworkSession
from sandbox.policy import load_policy_text
# a policy that reaches outside: the full layer (veth, table, run dir)
text = "version: 1\\nactions:\\n  - action: network\\n    defaultEffect: deny\\n    rules:\\n"
text += "      - { destination: allowed.test, effect: allow }\\n"
ns = NetworkSession(load_policy_text(text), uplinks=[])
ns.prepare()
print(ns.names.netns, ns.names.host_if, flush=True)
time.sleep(60)
"""
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen([sys.executable, "-c", code, root], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    netns_name, host_if = proc.stdout.readline().split()
    assert _leftovers(netns_name)
    proc.kill()
    proc.wait()
    assert _leftovers(netns_name)  # SIGKILL leaves them ...
    from sandbox.net import cleanup_stale

    assert netns_name in cleanup_stale()  # ... and the next run removes them
    assert _leftovers(netns_name) == []
    # The namespace died with its last user (the killed process): the veth with it.
    assert wait_for(lambda: _leftovers(host_if) == [], timeout=10)
