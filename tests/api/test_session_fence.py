"""sandbox.Session's hand-over fence: every record of a command is delivered before its
`run` returns (Supervisor.flush), without a sleep, under load.

The attack on attribution: a command whose last act is a denied exec, followed at once
by an allowed one.  Without the fence (`settle=0`) the denial's record is still in the
supervisor's ring (handed over in 5 ms batches) when `run` returns, so the denied
command reports no denial: checked by hand when this test was written (settle=0 lost
the denial in most iterations); with the fence it must be there every time, and never
on the next command.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import World

import sandbox
from sandbox.audit.reader import iter_entries

from .test_concurrency import lg_options


@pytest.fixture
def lg(world: World) -> dict[str, Any]:
    return lg_options(world)


@pytest.fixture
def load() -> Iterator[None]:
    """Both CPUs busy for the test's duration (the drainer competes for a CPU)."""
    burners = [
        subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True)
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for p in burners:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _session(lg: dict[str, Any]) -> sandbox.Session:
    return sandbox.Session(lg["policy"], cwd=lg["cwd"], env=lg["env"], audit=lg["audit"])


def test_each_denial_is_its_commands_under_load(lg: dict[str, Any], load: None) -> None:
    rounds = 30
    with _session(lg) as s:
        pairs = [(s.run("echo before; /usr/bin/id"), s.run("echo after")) for _ in range(rounds)]
        failures = s.fence_failures
        everything = s.denied
    for denied, twin in pairs:
        assert denied.stdout == b"before\n" and denied.returncode != 0
        assert [d.action for d in denied.denied] == ["shell_exec"], denied.denied
        assert "id" in denied.denied[0].target
        assert twin.stdout == b"after\n" and twin.returncode == 0
        assert twin.denied == []  # the allowed twin: nothing of the previous command
    assert failures == 0  # every hand-over was the fence, not the fallback wait
    assert len([d for d in everything if d.action == "shell_exec"]) == rounds


def test_a_commands_allowed_execs_are_its_own(lg: dict[str, Any]) -> None:
    """Decisions (allowed ones too) land in the command that made them, and all of them
    are in the one audit session."""
    with _session(lg) as s:
        results = [s.run(f"cat /dev/null; echo {i}") for i in range(100)]
        sid_events = sum(len(r.decisions) for r in results)
    assert all(r.stdout == f"{i}\n".encode() for i, r in enumerate(results))
    for r in results:
        targets = [d["target"] for d in r.decisions if d.get("action") == "shell_exec"]
        assert any(t.startswith("cat") for t in targets), r.decisions
    trail = [
        e
        for e in iter_entries(Path(lg["audit"]))
        if e.get("type") == "decision" and e.get("session") == s.session
    ]
    assert sid_events == len([e for e in trail if e.get("action") == "shell_exec"]) - 1
