"""What a `landgate run` process (sandbox.entry.entry: one launch, then exit) does not do
(issue 19), each with its twin:

- keep a plan memo it will never ask again (sandbox.plan.memo.one_launch); a longer-lived
  caller of main() keeps it;
- import rtnetlink for the loopback-only network layer (the read-only preset on root);
  the twin: that layer ran;
- run the cyclic collector during the launch: its young-generation threshold is raised
  (entry.RUN_GC_THRESHOLD) and no collection ran for /bin/true; the collector is still on
  (a long session's garbage is collected); `landgate check` keeps Python's default.  A
  `landgate hook claude-code` decided in its own process likewise.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_root  # tests/conftest.py
from helpers.cli import user_env

from sandbox import entry

pytestmark = pytest.mark.usefixtures("landlock_and_notify")

# argv[1]: where to write what the process held at exit; the rest: landgate's words.
PROBE = r"""
import atexit, gc, json, sys
out = sys.argv[1]
collections = [0]
default = gc.get_threshold()[0]

def counted(phase, info):
    # Passes once entry() has set landgate's threshold (the probe's own imports and the
    # interpreter's start come before it, as for any program).
    if phase == "stop" and gc.get_threshold()[0] != default:
        collections[0] += 1

gc.callbacks.append(counted)
sys.argv = ["landgate", *sys.argv[2:]]
import sandbox.entry

def report():
    from sandbox.plan import memo
    with open(out, "w") as fh:
        json.dump(
            {
                "modules": sorted(sys.modules),
                "memo": len(memo._entries),
                "gc_enabled": gc.isenabled(),
                "gc_threshold": gc.get_threshold(),
                "collections": collections[0],
            },
            fh,
        )

atexit.register(report)  # run by cli.entry()'s short exit too
sandbox.entry.entry()  # as the `landgate` command does
"""


def _held(tmp: Path, *words: str, stdin: str = "", code: int = 0, **env_: str) -> dict:
    out = tmp / "held.json"
    out.unlink(missing_ok=True)
    env = user_env(**env_)
    p = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *words],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=60,
        check=False,
    )
    assert p.returncode == code, p.stderr
    held: dict = json.loads(out.read_text())
    held["stdout"] = p.stdout
    return held


def test_run_keeps_no_plan_memo_and_opens_no_rtnetlink(tmp_path: Path) -> None:
    require_root()  # the root rung: the loopback-only layer is made by the sandbox's init
    held = _held(tmp_path, "run", "-q", "--policy", "read-only", "--", "/bin/true")
    assert "sandbox.net.rung_lo" in held["modules"]  # the twin: the network layer ran
    assert "sandbox.net.rtnl" not in held["modules"]
    assert "sandbox.netlink" not in held["modules"]
    assert held["memo"] == 0


def test_run_collects_nothing_during_the_launch_and_keeps_the_collector(tmp_path: Path) -> None:
    held = _held(tmp_path, "run", "-q", "--policy", "read-only", "--", "/bin/true")
    assert held["gc_enabled"]
    assert held["gc_threshold"][0] == entry.RUN_GC_THRESHOLD
    assert held["collections"] == 0
    # The twin: another command exits the ordinary way with Python's own threshold.
    check = _held(tmp_path, "check", "--policy", "read-only")
    assert check["gc_enabled"] and check["gc_threshold"] == list(gc.get_threshold())
    assert check["gc_threshold"][0] < entry.RUN_GC_THRESHOLD


def test_a_hook_decided_in_its_own_process_collects_nothing(tmp_path: Path) -> None:
    """`landgate hook claude-code` without the resident server: the same threshold, no
    pass before it answers, and the answer is the hook's (a read of .env is denied)."""
    (tmp_path / ".env").write_text("TOKEN=x\n")
    request = {
        "hook_event_name": "PreToolUse",
        "cwd": str(tmp_path),
        "tool_name": "Read",
        "tool_input": {"file_path": str(tmp_path / ".env")},
        "tool_use_id": "t1",
    }
    held = _held(
        tmp_path,
        "hook",
        "claude-code",
        stdin=json.dumps(request),
        LANDGATE_HOOK_SERVER="0",
    )
    assert '"permissionDecision": "deny"' in held["stdout"]
    assert held["gc_enabled"] and held["gc_threshold"][0] == entry.RUN_GC_THRESHOLD
    assert held["collections"] == 0
