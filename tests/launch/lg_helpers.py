"""Helpers shared by tests/launch and tests/escape: run `landgate run` for real."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from conftest import scaled  # tests/conftest.py

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def world_policy(world, *, extra_read: str = "", extra_write: str = "", extra: str = "") -> Path:
    text = f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "~/.ssh/", effect: deny }}
      - {{ path: "~/.aws/", effect: deny }}
      - {{ path: "./**", effect: allow }}
{extra_read}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
{extra_write}
  # Commands and destinations are the supervisor's tests; here they are all allowed so
  # that these tests exercise the kernel layers alone.
  - action: shell_exec
    defaultEffect: allow
  - action: network
    defaultEffect: allow
environment:
  allow: [LANDGATE_TEST_LISTED_TOKEN]
{extra}"""
    return world.write_policy(text)


def landgate(
    world,
    argv: Sequence[str],
    *,
    policy: Path | None = None,
    env: dict | None = None,
    as_nobody: bool = False,
    extra_args: Sequence[str] = (),
    timeout: float = 60,
    cwd: Path | None = None,
    preset: str | None = None,
) -> subprocess.CompletedProcess:
    pol = preset if preset is not None else (policy or world_policy(world))
    cmd = [PY, "-m", "sandbox", "run", "--policy", str(pol), *extra_args, "--", *argv]
    if as_nobody:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    e = dict(world.env)
    e["PYTHONPATH"] = str(ROOT)
    # The audit trail and its key live outside the sandbox, in the invoking user's
    # state and config directories; give each run a private pair the user can write.
    state = world.root / ("xdg-nobody" if as_nobody else "xdg")
    for sub in ("state", "config"):
        (state / sub).mkdir(parents=True, exist_ok=True)
        if as_nobody:
            os.chown(state, 65534, 65534)
            os.chown(state / sub, 65534, 65534)
    e["XDG_STATE_HOME"] = str(state / "state")
    e["XDG_CONFIG_HOME"] = str(state / "config")
    e.update(env or {})
    return subprocess.run(
        cmd, cwd=cwd or world.workspace, env=e, capture_output=True, timeout=scaled(timeout)
    )


def py(code: str) -> list[str]:
    """argv running `code` with the system python3 inside the sandbox."""
    return ["/usr/bin/python3", "-c", code]


def leaked(world, proc: subprocess.CompletedProcess) -> bool:
    return world.secret in proc.stdout or world.secret in proc.stderr
