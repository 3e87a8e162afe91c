"""Fixtures for the egress tests: a fake internet, sessions, and a way to run code in a sandbox.

The fake internet is a network namespace this fixture creates, joined to the
host namespace by its own veth pair, with routes on the host for its test
prefixes only (10.200.1.0/24, fd00:c8:1::/64).  No test packet goes anywhere
else: sandbox traffic is NATed on the host side of the session's veth and
routed into that namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# tests/conftest.py: the shared kernel gate
from conftest import require_kernel, require_root, scaled

from sandbox.audit.event import DecisionEvent

HERE = Path(__file__).parent
INET_NS = f"lgtest-inet-{os.getpid()}"
INET_HOST_IF = f"lgti{os.getpid()}h"
INET_PEER_IF = f"lgti{os.getpid()}p"

ADDRS = {
    "allowed": "10.200.1.10",
    "allowed_new": "10.200.1.11",
    "exfil": "10.200.1.20",
    "cdn": "10.200.1.30",
    "ports": "10.200.1.31",
    "literal_ok": "10.200.1.40",
    "dns": "10.200.1.53",
    "v6_ok": "fd00:c8:1::10",
    "v6_denied": "fd00:c8:1::20",
}
ZONE = {
    "allowed.test": {"A": [ADDRS["allowed"]], "ttl": 5},
    "cdn.allowed.test": {"A": [ADDRS["cdn"]]},
    "ports.test": {"A": [ADDRS["ports"]]},
    "exfil.test": {"A": [ADDRS["exfil"]]},
    "v6.test": {"AAAA": [ADDRS["v6_ok"]]},
}


def nobody_rung() -> subprocess.CompletedProcess:
    """The egress rung `nobody` gets here: the same network_capabilities() `run` calls."""
    return subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            (
                "from sandbox.host.network import network_capabilities as n; "
                "c = n(); print(c.rung); print(*c.notes, sep=chr(10))"
            ),
        ],
        env=dict(os.environ, PYTHONPATH=str(HERE.parents[1])),
        capture_output=True,
        text=True,
        check=False,
    )


def require_unprivileged_rung() -> None:
    """The unprivileged rung's prerequisites (root to become nobody, the kernel features,
    and that nobody gets the userns rung: the caller prepares /dev/net/tun first)."""
    from sandbox.host.probe import probe_host

    host = probe_host()
    require_kernel(host.is_root, "root (to run landgate as nobody and build the fake internet)")
    require_kernel(
        host.seccomp_notify and host.landlock_abi >= 1, "seccomp user notification, Landlock"
    )
    probe = nobody_rung()
    require_kernel(
        probe.stdout.split("\n")[0] == "userns",
        f"the unprivileged rung (user namespaces + pasta): {probe.stdout}{probe.stderr}",
    )


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


@dataclass
class FakeInet:
    zone_path: Path
    log_path: Path
    uplink: str
    proc: subprocess.Popen[str]
    zone: dict[str, Any] = field(default_factory=dict)

    def set_zone(self, zone: dict[str, Any]) -> None:
        self.zone = zone
        tmp = self.zone_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(zone))
        tmp.replace(self.zone_path)

    def log(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def mark(self) -> int:
        return len(self.log())

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.log()[mark:]


_live: list[FakeInet] = []


@pytest.fixture(scope="session")
def fake_inet() -> Iterator[FakeInet]:
    require_root()
    if _live:
        # Another package imported this fixture too (tests/supervise): pytest then
        # holds two definitions; both share the one fake internet (one set of routes).
        yield _live[0]
        return
    tmp = Path(tempfile.mkdtemp(prefix="landgate-inet-"))
    ns = ["ip", "netns", "exec", INET_NS]
    sh("ip", "netns", "add", INET_NS)
    proc = None
    try:
        sh(
            "ip",
            "link",
            "add",
            INET_HOST_IF,
            "type",
            "veth",
            "peer",
            "name",
            INET_PEER_IF,
            "netns",
            INET_NS,
        )
        sh("ip", "addr", "add", "10.200.250.1/30", "dev", INET_HOST_IF)
        sh("ip", "-6", "addr", "add", "fd00:c8:fa::1/64", "dev", INET_HOST_IF, "nodad")
        sh("ip", "link", "set", INET_HOST_IF, "up")
        sh(*ns, "ip", "link", "set", "lo", "up")
        sh(*ns, "ip", "addr", "add", "10.200.250.2/30", "dev", INET_PEER_IF)
        sh(*ns, "ip", "-6", "addr", "add", "fd00:c8:fa::2/64", "dev", INET_PEER_IF, "nodad")
        sh(*ns, "ip", "link", "set", INET_PEER_IF, "up")
        for ip in ADDRS.values():
            if ":" in ip:
                sh(*ns, "ip", "-6", "addr", "add", f"{ip}/128", "dev", "lo", "nodad")
            else:
                sh(*ns, "ip", "addr", "add", f"{ip}/32", "dev", "lo")
        sh(*ns, "ip", "route", "add", "default", "via", "10.200.250.1")
        sh(*ns, "ip", "-6", "route", "add", "default", "via", "fd00:c8:fa::1")
        sh("ip", "route", "add", "10.200.1.0/24", "via", "10.200.250.2")
        sh("ip", "-6", "route", "add", "fd00:c8:1::/64", "via", "fd00:c8:fa::2")
        inet = FakeInet(tmp / "zone.json", tmp / "log.jsonl", INET_HOST_IF, None)  # type: ignore[arg-type]
        inet.set_zone(ZONE)
        proc = subprocess.Popen(
            [
                *ns,
                sys.executable,
                str(HERE / "fake_inet.py"),
                str(inet.zone_path),
                str(inet.log_path),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        inet.proc = proc
        _live.append(inet)
        yield inet
    finally:
        _live.clear()
        if proc is not None:
            proc.kill()
            proc.wait()
        sh("ip", "netns", "del", INET_NS, check=False)  # takes the veth and its routes along
        sh("ip", "link", "del", INET_HOST_IF, check=False)


def net_session(
    policy_text: str,
    fake: FakeInet,
    events: list[DecisionEvent] | None = None,
    names: dict[str, tuple[str, ...]] | None = None,
):  # -> NetworkSession
    from sandbox.net import NetworkSession
    from sandbox.net.dnsview import Upstream
    from sandbox.policy import load_policy_text

    policy = load_policy_text(policy_text, source="test-policy.yaml", cwd=Path("/tmp"))
    sink = names if names is not None else {}
    ev = events if events is not None else []
    return NetworkSession(
        policy,
        on_event=ev.append,
        names_sink=sink.__setitem__,
        warn=lambda m: None,
        upstream=Upstream(ADDRS["dns"]),
        uplinks=[fake.uplink],
    )


def run_in_sandbox(
    session: Any, code: str, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """Run python code in the session's namespace with its resolv.conf, as the launcher would."""
    setup = session.setup
    assert setup is not None and setup.netns_path
    ((resolv, target),) = setup.binds
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    return subprocess.run(
        [
            "nsenter",
            f"--net={setup.netns_path}",
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            resolv,
            target,
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        check=False,
    )


def wait_for(pred: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()
