"""Two `landgate run` processes in a row, the second with the persistent caches warm
(the policy cache, the host probe cache): what changed on disk between them is seen by
the second (issue 19: nothing the first run compiled is trusted for the second without
asking the file system again).

- a denied file created between two runs is denied at the second, its allowed twin read;
- a granted directory replaced by a denied file between two runs is not readable at the
  second (the twin: it was, as a directory, at the first).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers.cli import landgate, user_env

pytestmark = pytest.mark.usefixtures("landlock_and_notify")

SECRET = "TOPSECRET-between-runs"


def _run(tmp: Path, policy: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # user_env: the caches on, so the second run hits them
    return landgate("run", "-q", "--policy", str(policy), "--", *argv, env=user_env(), cwd=tmp)


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
