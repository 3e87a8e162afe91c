"""One launch asks the host's network capabilities once (issue 19): the plan's egress
status and the layer the session builds come from the same answer (Plan.net_caps).

Both layers are covered: the read-only preset reaches nothing outside (loopback-only
namespace), coding-agent reaches named hosts (veth + nftables + DNS view).  The twin: a
NetworkSession given no answer asks the host itself, so the counter sees real calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import require_root

import sandbox
import sandbox.host.network as host_network
import sandbox.net.session as net_session
from sandbox.plan import build_plan
from sandbox.policy import load_policy
from sandbox.policy.locate import resolve_policy_path


def _count(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    real = host_network.network_capabilities

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(dict(kwargs))
        return real(*args, **kwargs)

    # plan/status.py imports it at call time from host.network; net/session.py at import.
    monkeypatch.setattr(host_network, "network_capabilities", counting)
    monkeypatch.setattr(net_session, "network_capabilities", counting)
    return calls


@pytest.mark.parametrize("preset", ["read-only", "coding-agent"])
def test_a_launch_asks_the_network_capabilities_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, preset: str
) -> None:
    require_root()
    calls = _count(monkeypatch)
    result = sandbox.run(["/bin/true"], policy=preset, audit=str(tmp_path / "audit"), cwd=tmp_path)
    assert result.returncode == 0
    assert len(calls) == 1, calls


def test_a_network_session_without_the_plans_answer_asks_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_root()
    policy = load_policy(resolve_policy_path("read-only", Path.cwd()))
    plan = build_plan(policy)
    calls = _count(monkeypatch)
    net = net_session.NetworkSession(policy)
    try:
        setup = net.prepare()
    finally:
        net.close()
    assert len(calls) == 1, calls
    # The same answer the plan had: the layer built is the one the plan described.
    assert setup.rung == plan.net_caps.rung
