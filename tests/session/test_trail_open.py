"""The trail is opened while the child builds its sandbox (sandbox/session/trailopen.py,
issue 19): a trail that cannot be opened still refuses the session before the agent runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import World
from helpers.procs import child_pids

import sandbox
from sandbox.errors import LaunchError


def _policy(world: World) -> str:
    return f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "./", effect: allow }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./", effect: allow }}
  - action: shell_exec
    defaultEffect: deny
    rules:
      - {{ command: "touch *", effect: allow }}
"""


def test_a_trail_that_cannot_be_opened_refuses_before_the_agent_runs(
    world: World, tmp_path: Path
) -> None:
    """The directories can be made (the plan runs, the child is forked) but the writer's
    open fails (its lock file is a directory): LaunchError, the agent never ran (its
    file is not there), and no child is left."""
    policy = str(world.write_policy(_policy(world)))
    audit = tmp_path / "audit"
    (audit / "trail.lock").mkdir(parents=True)  # os.open(O_RDWR) of it: EISDIR
    marker = world.workspace / "ran"
    before = child_pids()
    with pytest.raises(LaunchError, match="audit trail"):
        sandbox.run(
            ["touch", str(marker)], policy=policy, cwd=str(world.workspace), audit=str(audit)
        )
    assert not marker.exists()
    deadline = time.monotonic() + 5
    while child_pids() - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not child_pids() - before  # the held child was aborted and reaped

    # The twin: the same session with a trail that opens runs the agent.
    (audit / "trail.lock").rmdir()
    res = sandbox.run(
        ["touch", str(marker)], policy=policy, cwd=str(world.workspace), audit=str(audit)
    )
    assert res.returncode == 0 and marker.exists()
    assert res.decisions[0]["type"] == "session_start"


def test_the_trail_is_opened_while_the_child_is_built(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the open happens: after the fork (the child exists) and before the session's
    start entry; the session then runs and records as before."""
    import sandbox.session.trailopen as trailopen

    seen: list[tuple[int, bool]] = []
    real = trailopen.OpeningWriter.open

    def open_(self: trailopen.OpeningWriter) -> None:
        seen.append((len(child_pids()), self.settled() is None))
        real(self)

    monkeypatch.setattr(trailopen.OpeningWriter, "open", open_)
    policy = str(world.write_policy(_policy(world)))
    marker = world.workspace / "ran-built"
    res = sandbox.run(
        ["touch", str(marker)], policy=policy, cwd=str(world.workspace), audit=str(tmp_path / "a")
    )
    assert res.returncode == 0 and marker.exists()
    assert seen and seen[0][0] >= 1 and seen[0][1]  # first asked with the child forked
    assert res.decisions[0]["type"] == "session_start"
