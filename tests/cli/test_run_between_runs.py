"""Two `landgate run` processes in a row, the second with the persistent caches warm
(the policy cache, the host probe cache): what changed on disk between them is seen by
the second (issue 19: nothing the first run compiled is trusted for the second without
asking the file system again).

- a denied file created between two runs is denied at the second, its allowed twin read;
- a granted directory replaced by a denied file between two runs is not readable at the
  second (the twin: it was, as a directory, at the first).

Also what a `landgate run` process does not do: keep a plan memo it will never ask again
(sandbox.plan.memo.one_launch) or import rtnetlink for the loopback-only rung.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_root  # tests/conftest.py

pytestmark = pytest.mark.usefixtures("landlock_and_notify")

SECRET = "TOPSECRET-between-runs"

# argv[1]: where to write what the process held at exit; the rest: landgate's words.
PROBE = r"""
import atexit, json, sys
out = sys.argv[1]
sys.argv = ["landgate", *sys.argv[2:]]
import sandbox.cli

def report():
    from sandbox.plan import memo
    with open(out, "w") as fh:
        json.dump({"modules": sorted(sys.modules), "memo": len(memo._entries)}, fh)

atexit.register(report)  # run by entry()'s short exit too
sandbox.cli.entry()
"""


def _run(tmp: Path, policy: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("LANDGATE_POLICY_CACHE", None)  # the caches on: the second run hits them
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "run", "-q", "--policy", str(policy), "--", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=60,
        check=False,
    )


def _policy(tmp: Path, ws: Path, rules: str) -> Path:
    p = tmp / "policy.yaml"
    p.write_text(
        f"""version: 1
workspace: {ws}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
{rules}
  - action: shell_exec
    defaultEffect: allow
"""
    )
    return p


def test_a_denied_file_created_between_runs_is_denied(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "open.txt").write_text("OPEN\n")
    policy = _policy(
        tmp_path,
        ws,
        f'      - {{ path: "{ws}/secret.txt", effect: deny }}\n'
        f'      - {{ path: "{ws}/", effect: allow }}',
    )
    first = _run(tmp_path, policy, "/bin/sh", "-c", f"cat {ws}/open.txt; cat {ws}/secret.txt")
    assert "OPEN" in first.stdout, first.stderr
    (ws / "secret.txt").write_text(SECRET + "\n")
    second = _run(tmp_path, policy, "/bin/sh", "-c", f"cat {ws}/open.txt; cat {ws}/secret.txt")
    assert "OPEN" in second.stdout, second.stderr  # the allowed twin, in the same run
    assert SECRET not in second.stdout and SECRET not in second.stderr
    assert second.returncode != 0


def test_a_granted_directory_replaced_by_a_denied_file_is_not_read(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    thing = tmp_path / "thing"
    thing.mkdir()
    (thing / "a.txt").write_text("INSIDE\n")
    # As in tests/plan/test_memo.py: denied as a file (no trailing slash), granted as a
    # path; a directory there is granted, a file there is denied whole.
    policy = _policy(
        tmp_path,
        ws,
        f'      - {{ path: "{thing}", effect: deny }}\n'
        f'      - {{ path: "{thing}", effect: allow }}\n'
        f'      - {{ path: "{ws}/", effect: allow }}',
    )
    first = _run(tmp_path, policy, "/bin/cat", str(thing / "a.txt"))
    assert first.returncode == 0 and "INSIDE" in first.stdout, first.stderr  # the twin
    (thing / "a.txt").unlink()
    thing.rmdir()
    thing.write_text(SECRET + "\n")
    second = _run(tmp_path, policy, "/bin/cat", str(thing))
    assert SECRET not in second.stdout and SECRET not in second.stderr
    assert second.returncode != 0


def test_run_keeps_no_plan_memo_and_opens_no_rtnetlink(tmp_path: Path) -> None:
    """The read-only preset on the root rung: the loopback-only network layer (made by the
    sandbox's init) needs no rtnetlink socket, so sandbox.net.rtnl and sandbox.netlink are
    not imported; the twin: the network layer itself ran.  The process keeps no memo."""
    require_root()
    out = tmp_path / "held.json"
    env = dict(os.environ)
    env.pop("LANDGATE_POLICY_CACHE", None)
    words = ["run", "-q", "--policy", "read-only", "--", "/bin/true"]
    p = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *words],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    held = json.loads(out.read_text())
    assert "sandbox.net.rung_lo" in held["modules"]  # the twin: the network layer ran
    assert "sandbox.net.rtnl" not in held["modules"]
    assert "sandbox.netlink" not in held["modules"]
    assert held["memo"] == 0
