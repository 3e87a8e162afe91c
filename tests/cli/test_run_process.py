"""What a `landgate run` process (sandbox.entry.entry: one launch, then exit) does not do
(issue 19), each with its twin:

- keep a plan memo it will never ask again (sandbox.plan.memo.one_launch); a longer-lived
  caller of main() keeps it;
- import rtnetlink for the loopback-only network layer (the read-only preset on root);
  the twin: that layer ran;
- run the cyclic collector during the launch: its young-generation threshold is raised
  (entry.RUN_GC_THRESHOLD) and no collection ran for /bin/true; the collector is still on
  (a long session's garbage is collected); `landgate check` keeps Python's default.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_root  # tests/conftest.py

from sandbox import entry

pytestmark = pytest.mark.usefixtures("landlock_and_notify")

# argv[1]: where to write what the process held at exit; the rest: landgate's words.
PROBE = r"""
import atexit, gc, json, sys
out = sys.argv[1]
collections = [0]

def counted(phase, info):
    if phase == "stop":
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


def _held(tmp: Path, *words: str) -> dict:
    out = tmp / "held.json"
    env = dict(os.environ)
    env.pop("LANDGATE_POLICY_CACHE", None)
    p = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *words],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    held: dict = json.loads(out.read_text())
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
    (tmp_path / "held.json").unlink()
    check = _held(tmp_path, "check", "--policy", "read-only")
    assert check["gc_enabled"] and check["gc_threshold"] == list(gc.get_threshold())
    assert check["gc_threshold"][0] < entry.RUN_GC_THRESHOLD
