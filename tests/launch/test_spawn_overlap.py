"""The supervisor's tables are compiled while the child builds its sandbox (issue 19).

The session forks the child (`spawn_start`), compiles the tables, then waits for the
child's ready message.  Work that fails in between must not leave a child behind, and the
agent must never run: the pending child is killed and reaped (`PendingChild.abort`).
"""

from __future__ import annotations

import os

import pytest
from conftest import require_kernel

from launch.test_run import run_inprocess
from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _kernel():
    require_kernel(
        probe_host().landlock_abi >= 1 and probe_host().seccomp_notify,
        "Landlock + seccomp user notification",
    )


def _spy_spawn(monkeypatch) -> list[int]:
    from sandbox.launch import spawn as spawn_mod

    real = spawn_mod.spawn_start
    inits: list[int] = []

    def spying(spec):
        pending = real(spec)
        inits.append(pending.init_pid)
        return pending

    monkeypatch.setattr(spawn_mod, "spawn_start", spying)  # run_session imports it per call
    return inits


def _gone(pid: int) -> bool:
    """Reaped: no /proc entry (a zombie still has one)."""
    return not os.path.exists(f"/proc/{pid}")


def test_a_failure_before_the_child_is_ready_kills_and_reaps_it(world, monkeypatch):
    """Fails without PendingChild.abort: init (and the agent waiting for release) would
    stay, blocked, for as long as landgate lives."""
    import sandbox.session.child as child_mod

    inits = _spy_spawn(monkeypatch)

    def boom(*_args, **_kwargs):
        raise RuntimeError("tables failed")

    monkeypatch.setattr(child_mod, "prepare_supervisor", boom)
    marker = world.workspace / "agent-ran"
    with pytest.raises(RuntimeError, match="tables failed"):
        run_inprocess(world, ["sh", "-c", f": > {marker}"])
    assert len(inits) == 1
    assert _gone(inits[0]), f"init {inits[0]} was left behind"
    assert not marker.exists(), "the agent ran without a supervisor"


def test_the_twin_runs_with_its_tables_compiled_during_the_spawn(world, monkeypatch):
    """The same session without the failure: the agent runs, supervised (the tables were
    compiled before the child was ready and bound to it after), and init is reaped."""
    import sandbox.session.child as child_mod

    inits = _spy_spawn(monkeypatch)
    prepared: list[object] = []
    real_prepare = child_mod.prepare_supervisor

    def spying(*args, **kwargs):
        p = real_prepare(*args, **kwargs)
        prepared.append(p)
        return p

    monkeypatch.setattr(child_mod, "prepare_supervisor", spying)
    marker = world.workspace / "agent-ran"
    assert run_inprocess(world, ["sh", "-c", f": > {marker}"]) == 0
    assert marker.exists()
    assert len(prepared) == 1 and prepared[0] is not None
    assert prepared[0].tables.bound  # type: ignore[attr-defined]
    assert _gone(inits[0])
