"""sandbox.Session's per-command stdin: the shell's one /dev/null, not an open per command.

Each command reads /dev/null (never the shell's request pipe).  The shell opens it once,
at its set-up, on fd 9; a command gets a dup of it as fd 0 and fd 9 closed.  An open per
command (`</dev/null`) was a supervised open under the open check: one notification per
command, ~0.1 ms of Session's per-command cost (issue 19).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import World, require_kernel

import sandbox
from launch.lg_helpers import world_policy
from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _kernel() -> None:
    host = probe_host()
    require_kernel(
        host.landlock_abi >= 1 and host.seccomp_notify, "Landlock + seccomp user notification"
    )


@pytest.fixture
def session(world: World, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Session under the world's policy (its carve-outs put reads under the open check),
    with its supervisor at hand for the counters."""
    import sandbox.supervise.supervisor as sup_mod

    started: list[Any] = []
    real_begin = sup_mod.Supervisor.begin  # the session begins it (wait_started later)

    def spying(self: Any) -> None:
        started.append(self)
        real_begin(self)

    monkeypatch.setattr(sup_mod.Supervisor, "begin", spying)
    s = sandbox.Session(
        str(world_policy(world)),
        cwd=str(world.workspace),
        env=dict(world.env),
        audit=str(world.root / "audit"),
    )
    s.run(":")
    assert len(started) == 1
    s.supervisor = started[0]
    try:
        yield s
    finally:
        s.close()


def test_a_commands_stdin_is_dev_null_and_fd_9_is_not_its(session: Any) -> None:
    r = session.run("cat; echo read-done; readlink /proc/self/fd/0")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"read-done\n/dev/null\n"
    r = session.run("sh -c 'if [ -e /proc/self/fd/9 ]; then echo open; else echo closed; fi'")
    assert r.stdout == b"closed\n", r.stderr


def test_a_builtin_command_makes_no_supervised_open(session: Any) -> None:
    """Fails with the old request (`</dev/null` on every command): one open each."""
    before = session.supervisor.counts["open"]
    for _ in range(5):
        assert session.run(":").returncode == 0
    assert session.supervisor.counts["open"] == before


def test_the_twin_a_commands_own_open_is_still_supervised(session: Any, world: World) -> None:
    """The counter does count: a command that opens a file under the open check."""
    before = session.supervisor.counts["open"]
    r = session.run(f"read line < {world.app_source}; echo ok")
    assert r.stdout == b"ok\n", r.stderr
    assert session.supervisor.counts["open"] > before
