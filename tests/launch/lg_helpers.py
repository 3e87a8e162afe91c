"""Helpers shared by tests/launch and tests/escape: run `landgate run` for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from conftest import scaled  # tests/conftest.py
from helpers import cli

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
    """`landgate run` in the world: its fake $HOME, its workspace, its private XDG pair."""
    pol = preset if preset is not None else (policy or world_policy(world))
    return run_landgate(
        argv,
        policy=pol,
        xdg=world.root / ("xdg-nobody" if as_nobody else "xdg"),
        cwd=cwd or world.workspace,
        base_env=world.env,
        env=env,
        as_nobody=as_nobody,
        extra_args=extra_args,
        timeout=timeout,
    )


def run_landgate(
    argv: Sequence[str],
    *,
    policy: Path | str,
    xdg: Path,
    cwd: Path,
    base_env: dict | None = None,
    env: dict | None = None,
    as_nobody: bool = False,
    extra_args: Sequence[str] = (),
    timeout: float = 60,
    text: bool = False,
) -> subprocess.CompletedProcess:
    """`python -m sandbox run --policy POLICY [extra_args] -- argv` in `cwd`, with `base_env`
    (default: this process's) updated by `env`.  The audit trail and its key live outside
    the sandbox, in the invoking user's state and config directories: each run gets the
    private pair `xdg`/state and `xdg`/config (owned by nobody for `as_nobody`)."""
    cmd = [PY, "-m", "sandbox", "run", "--policy", str(policy), *extra_args, "--", *argv]
    if as_nobody:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    e = dict(base_env if base_env is not None else os.environ)
    e["PYTHONPATH"] = str(ROOT)
    for sub in ("state", "config"):
        (xdg / sub).mkdir(parents=True, exist_ok=True)
        if as_nobody:
            os.chown(xdg, 65534, 65534)
            os.chown(xdg / sub, 65534, 65534)
    e["XDG_STATE_HOME"] = str(xdg / "state")
    e["XDG_CONFIG_HOME"] = str(xdg / "config")
    e.update(env or {})
    return subprocess.run(
        cmd, cwd=cwd, env=e, capture_output=True, text=text, timeout=scaled(timeout)
    )


def audit_show_json(xdg: Path) -> list[dict]:
    """The entries of the default trail of run_landgate's runs with this `xdg`, through
    `landgate audit show --json`."""
    e = dict(os.environ, XDG_STATE_HOME=str(xdg / "state"), XDG_CONFIG_HOME=str(xdg / "config"))
    r = cli.landgate("audit", "show", "--json", env=e, timeout=scaled(60))
    r.check_returncode()
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def py(code: str) -> list[str]:
    """argv running `code` with the system python3 inside the sandbox."""
    return ["/usr/bin/python3", "-c", code]


def leaked(world, proc: subprocess.CompletedProcess) -> bool:
    return world.secret in proc.stdout or world.secret in proc.stderr
