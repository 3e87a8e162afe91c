"""The trail is opened while the child is forked (sandbox/session/trailopen.py, issue 19):
a trail that cannot be opened still refuses the session before the agent runs."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from conftest import World

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


def _children() -> set[int]:
    """This process's live child processes (every thread's children list)."""
    out: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            text = Path(f"/proc/self/task/{tid}/children").read_text()
        except OSError:
            continue  # a helper thread that ended under the read
        out |= {int(p) for p in text.split()}
    return out


def test_a_trail_that_cannot_be_opened_refuses_before_the_agent_runs(
    world: World, tmp_path: Path
) -> None:
    """The directories can be made (the plan runs, the child is forked) but the writer's
    open fails (its lock file is a directory): LaunchError, the agent never ran (its
    file is not there), no child is left, and no worker stays busy with the open."""
    from sandbox import threads

    policy = str(world.write_policy(_policy(world)))
    audit = tmp_path / "audit"
    (audit / "trail.lock").mkdir(parents=True)  # os.open(O_RDWR) of it: EISDIR
    marker = world.workspace / "ran"
    before = _children()
    with pytest.raises(LaunchError, match="audit trail"):
        sandbox.run(
            ["touch", str(marker)], policy=policy, cwd=str(world.workspace), audit=str(audit)
        )
    assert not marker.exists()
    deadline = time.monotonic() + 5
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _children() - before  # the held child was killed and reaped
    assert threads.wait_idle(5)
    assert "landgate-trail-open" not in [t.name for t in threading.enumerate()]

    # The twin: the same session with a trail that opens runs the agent.
    (audit / "trail.lock").rmdir()
    res = sandbox.run(
        ["touch", str(marker)], policy=policy, cwd=str(world.workspace), audit=str(audit)
    )
    assert res.returncode == 0 and marker.exists()
    assert res.decisions[0]["type"] == "session_start"


def test_the_trail_opens_inline_when_no_thread_can_be_made(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker (threads.run raises as Thread.start does): opened on the session's own
    thread, the session runs as before; and an open that fails there still refuses."""
    import types

    import sandbox.session.trailopen as trailopen

    def no_thread(fn: object, name: str) -> object:
        raise RuntimeError("can't start new thread")

    # trailopen's view of sandbox.threads only: the session's other helpers keep theirs.
    monkeypatch.setattr(trailopen, "threads", types.SimpleNamespace(run=no_thread))
    policy = str(world.write_policy(_policy(world)))
    audit = tmp_path / "audit"
    marker = world.workspace / "ran-inline"
    res = sandbox.run(
        ["touch", str(marker)], policy=policy, cwd=str(world.workspace), audit=str(audit)
    )
    assert res.returncode == 0 and marker.exists()
    marker.unlink()
    (audit / "trail.lock").unlink()
    (audit / "trail.lock").mkdir()
    with pytest.raises(LaunchError, match="audit trail"):
        sandbox.run(
            ["touch", str(marker)], policy=policy, cwd=str(world.workspace), audit=str(audit)
        )
    assert not marker.exists()
