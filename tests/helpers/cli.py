"""landgate's command line as the tests run it: `python -m sandbox ARGS` in a subprocess.

One place for the shape the CLI tests share: this interpreter and the package under
test, output captured, a timeout, never `check` (each test asserts on the exit code
itself, with stderr in the message); and `user_env`, the environment a user's shell
gives a `landgate run`: the suite's private XDG directories (tests/conftest.py) with
the persistent caches on (LANDGATE_POLICY_CACHE unset), as a machine without it has.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def user_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """`base` (default: this process's environment) with `extra` set and without
    LANDGATE_POLICY_CACHE: a run with the policy and host caches on, as a user's is."""
    env = dict(os.environ if base is None else base, **extra)
    env.pop("LANDGATE_POLICY_CACHE", None)
    return env


def landgate(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float = 60,
    text: bool = True,
    stdin: str | bytes | None = None,
) -> subprocess.CompletedProcess[Any]:
    """`landgate ARGS` through the real command line; `env` None inherits this process's."""
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        input=stdin,
        capture_output=True,
        text=text,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
