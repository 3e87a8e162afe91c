"""The sandbox always reaches its own resolver, the DNS view (real kernel, `landgate run`).

With its own network namespace the sandbox's resolv.conf names landgate's DNS
view.  The connect supervisor must let that one destination through whatever
the policy's network default (and a policy CIDR deny covering the view's
address), or every lookup fails with EAI_AGAIN instead of reaching the view
that answers allowed names and NXDOMAINs (and records) the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_kernel, scaled
from net.conftest import ADDRS, FakeInet, fake_inet  # noqa: F401  (the session-scoped fixture)

from sandbox.host.probe import probe_host

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kernel

LOOKUP = r"""
import json, socket
out = {}
for name in ("denied.example", "allowed.test"):
    try:
        out[name] = sorted({ai[4][0] for ai in socket.getaddrinfo(name, 80, socket.AF_INET)})
    except socket.gaierror as exc:
        out[name] = {"gaierror": exc.errno}
# the allowed name is also reachable (the connect supervisor judges it by the view's name)
try:
    s = socket.create_connection(("allowed.test", 80), timeout=5)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    out["body"] = s.recv(4096).decode().split("\r\n\r\n", 1)[-1]
    s.close()
except OSError as exc:
    out["body"] = repr(exc)
print(json.dumps(out))
"""


def test_lookup_reaches_the_dns_view_under_default_deny(
    fake_inet: FakeInet,  # noqa: F811  the imported fixture
    tmp_path: Path,
) -> None:
    host = probe_host()
    require_kernel(
        host.is_root and host.net_ns and host.seccomp_notify and host.landlock_abi >= 1,
        "root, network namespaces, seccomp user notification, Landlock",
    )
    policy = tmp_path / "policy.yaml"
    # The view lives in 10.200.128.0/17 (sandbox.net.netns.DEFAULT_POOL4): a policy deny of
    # that whole range must not cut the sandbox off its resolver, and reaches nothing else.
    policy.write_text(f"""\
version: 1
workspace: {tmp_path}
actions:
  - action: shell_exec
    defaultEffect: allow
  - action: network
    defaultEffect: deny
    rules:
      - {{ destination: "10.200.128.0/17", effect: deny }}
      - {{ destination: "allowed.test:80", effect: allow }}
""")
    audit = tmp_path / "audit"
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        LANDGATE_DNS_UPSTREAM=ADDRS["dns"],
        LANDGATE_NET_UPLINKS=fake_inet.uplink,
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    mark = fake_inet.mark()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "run",
            "--policy",
            str(policy),
            "--audit",
            str(audit),
            "--",
            "/usr/bin/python3",
            "-c",
            LOOKUP,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=scaled(60),
        check=False,
    )
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    import socket

    # denied: an answer from the view (NXDOMAIN), not "could not reach a resolver"
    assert out["denied.example"] == {"gaierror": socket.EAI_NONAME}
    # allowed twin: resolves through the view and connects
    assert out["allowed.test"] == [ADDRS["allowed"]]
    assert out["body"] == f"fake:{ADDRS['allowed']}:80\n"
    asked = {e["name"] for e in fake_inet.since(mark) if e["kind"] == "dns"}
    assert "allowed.test" in asked and "denied.example" not in asked

    entries = [
        json.loads(line)
        for f in sorted(audit.rglob("*.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    assert any(
        e.get("layer") == "dns"
        and e.get("result") == "deny"
        and "denied.example" in str(e.get("target"))
        for e in entries
    ), entries
    view = [
        e for e in entries if e.get("layer") == "connect" and e.get("rule") == "landgate DNS view"
    ]
    assert view and all(e["result"] == "allow" and e["target"].endswith(":53") for e in view)
    # nothing else in the denied range was let through on the view's account
    assert not any(
        e.get("layer") == "connect"
        and e.get("result") == "allow"
        and e.get("rule") != "landgate DNS view"
        and e["target"].startswith("10.200.1")
        and not e["target"].startswith(ADDRS["allowed"])
        for e in entries
    )
