"""The sandbox's own loopback is private and always usable; the host's only as rules say.

DESIGN §3: with a network namespace, a server the agent starts on 127.0.0.1 or ::1 is
reached by its own clients whatever the policy's network rules say (the supervisor tells
the two loopbacks apart by the namespace of the socket, csrc/supervise_net_dest.c), while the
host's loopback is reached only through an allowed `localhost:PORT` rule.  Both rungs
with a namespace: root (full) and an unprivileged user (user namespace); the twin without
a namespace, where the loopback is the host's and the policy decides for every port.
"""

from __future__ import annotations

import os

import pytest
from conftest import require_kernel
from launch.lg_helpers import landgate, py

from net.conftest import require_unprivileged_rung
from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel

# The agent's own TCP servers on both loopbacks, a UDP datagram to its own socket, then the
# host's loopback: one port the policy allows, one it does not name.
AGENT = """
import socket, sys, threading
allowed_port, denied_port = int(sys.argv[1]), int(sys.argv[2])
out = []
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.bind((host, 0)); srv.listen(1)
    def serve(srv=srv):
        c, _ = srv.accept(); c.sendall(b"own:" + c.recv(16)); c.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        c = socket.create_connection(srv.getsockname()[:2], timeout=5)
        c.sendall(b"ping"); out.append(c.recv(16).decode()); c.close()
    except OSError as e:
        out.append(type(e).__name__)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    v.sendto(b"dgram", u.getsockname()); u.settimeout(5); out.append(u.recv(16).decode())
except OSError as e:
    out.append(type(e).__name__)
for port, msg in ((allowed_port, b"to-allowed-host"), (denied_port, b"LEAK-to-denied-host")):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.recv(10); s.sendall(msg); s.close(); out.append("host-ok")
    except OSError as e:
        out.append(type(e).__name__)
print(" ".join(out), flush=True)
"""


def _policy(world, extra: str = ""):
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
    rules:
      - {{ destination: "localhost:{world.allowed_server.port}", effect: allow }}
{extra}"""
    )


def _run(world, as_nobody: bool, extra: str = ""):
    argv = [*py(AGENT), str(world.allowed_server.port), str(world.denied_server.port)]
    return landgate(world, argv, policy=_policy(world, extra), as_nobody=as_nobody)


@pytest.mark.parametrize("rung", ["root", "userns"])
def test_own_loopback_server_reached_host_loopback_only_as_allowed(world, rung, request):
    host = probe_host()
    require_kernel(host.is_root and host.net_ns and host.seccomp_notify, "root, netns, unotify")
    as_nobody = rung == "userns"
    if as_nobody:
        request.getfixturevalue("tun_rw")  # pasta needs the tun device (tests/conftest.py)
        require_unprivileged_rung()
        os.chmod(world.workspace, 0o777)
    p = _run(world, as_nobody)
    out = p.stdout.decode().split()
    # The agent's own servers (v4, v6) and datagram: allowed although no rule names them.
    # The host: the allowed port reached, the other refused.
    assert out == ["own:ping", "own:ping", "dgram", "host-ok", "ConnectionRefusedError"], (
        p.stdout,
        p.stderr,
    )
    assert b"LEAK" not in world.denied_server.received
    assert world.denied_server.connections == 0
    assert _eventually(lambda: b"to-allowed-host" in bytes(world.allowed_server.received))
    # Inside the namespace 127.0.0.1:DENIED is the sandbox's own loopback, where nothing
    # listens (only allowed ports are forwarded to the host): refused by the kernel, not by
    # a denial, and nothing about the private loopback is reported as denied.
    assert b"landgate: denied" not in p.stderr, p.stderr


def test_no_namespace_rung_loopback_is_the_hosts_and_judged(world, tun_root_only):
    """The twin: without a network namespace (nobody, no tun device) the sandbox's loopback
    IS the host's, so even the agent's own server is judged by the policy (`localhost`
    rules) and refused here; the allowed host port still works and the denied one leaks
    nothing."""
    host = probe_host()
    require_kernel(host.is_root and host.seccomp_notify, "root, unotify")
    os.chmod(world.workspace, 0o777)
    # A policy that reaches outside (a name): without pasta's tun device nobody gets no
    # namespace.  (One that reaches nothing outside gets the loopback-only namespace,
    # which needs no tun device: test_loopback_only.py.)
    outside = '      - { destination: "allowed.test", effect: allow }\n'
    p = _run(world, as_nobody=True, extra=outside)
    assert b"no network namespace" in p.stderr, p.stderr
    out = p.stdout.decode().split()
    assert out == ["ConnectionRefusedError"] * 3 + ["host-ok", "ConnectionRefusedError"], (
        p.stdout,
        p.stderr,
    )
    assert b"LEAK" not in world.denied_server.received
    assert world.denied_server.connections == 0
    assert _eventually(lambda: b"to-allowed-host" in bytes(world.allowed_server.received))
    assert f'denied network "127.0.0.1:{world.denied_server.port}"'.encode() in p.stderr


def _eventually(pred, timeout: float = 3.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()
