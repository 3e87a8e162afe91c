"""`landgate run` leaves by os._exit once nothing is left to do (sandbox.cli.entry).

What must survive the short exit: the agent's exit status, everything landgate wrote to
stdout/stderr, the registered exit handlers.  What makes it fall back to the ordinary
exit: another thread still running (it is waited for, as Python does).  The twin of each:
an object's finaliser does not run after `run` (the short exit was taken) and does after
`check` (the ordinary exit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import scaled  # tests/conftest.py

# argv[1]: the landgate words; argv[2]: what else the process does first.
PROBE = r"""
import atexit, json, sys, threading, time
setup = sys.argv[2]
if "atexit" in setup:
    atexit.register(lambda: sys.stderr.write("exit handler ran\n"))
if "finaliser" in setup:
    class Noisy:
        def __del__(self):
            sys.stderr.write("finaliser ran\n")
    keep = Noisy()
marker = sys.argv[3]
sys.argv = ["landgate", *json.loads(sys.argv[1])]
import sandbox.cli
if "thread" in setup:
    # Started when main() returns, so it is certainly still running when entry() decides
    # how to leave (a thread started before the run could end first on a slow machine).
    def late():
        time.sleep(0.3)
        with open(marker, "w") as fh:
            fh.write("done")
    run_main = sandbox.cli.main
    def main(words):
        code = run_main(words)
        threading.Thread(target=late).start()
        return code
    sandbox.cli.main = main
sandbox.cli.entry()
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    for k in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        e[k] = str(tmp_path / k.lower())
    return e


def _landgate(
    words: list[str], setup: str, env: dict[str, str], cwd: Path, extra: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(words), setup, extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=scaled(60),
        check=False,
    )


def _run(tmp_path: Path, *cmd: str) -> list[str]:
    return ["run", "--policy", "read-only", "--audit", str(tmp_path / "audit"), "--", *cmd]


def test_run_keeps_status_output_and_exit_handlers(env: dict[str, str], tmp_path: Path) -> None:
    got = _landgate(
        _run(tmp_path, "/bin/sh", "-c", "echo out; echo err >&2; exit 3"),
        "atexit finaliser",
        env,
        tmp_path,
    )
    assert got.returncode == 3, got.stderr
    assert got.stdout == "out\n"
    assert "err\n" in got.stderr
    assert "landgate: policy: " in got.stderr  # landgate's own notice, written before
    assert "exit handler ran" in got.stderr  # registered handlers still run
    assert "finaliser ran" not in got.stderr  # the short exit was taken


def test_other_commands_exit_the_ordinary_way(env: dict[str, str], tmp_path: Path) -> None:
    got = _landgate(["check", "--policy", "read-only"], "atexit finaliser", env, tmp_path)
    assert got.returncode == 0, got.stderr
    assert "exit handler ran" in got.stderr
    assert "finaliser ran" in got.stderr  # the twin: the interpreter's own exit


def test_a_running_thread_is_waited_for(env: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "thread-finished"
    got = _landgate(_run(tmp_path, "/bin/true"), "thread finaliser", env, tmp_path, str(marker))
    assert got.returncode == 0, got.stderr
    assert marker.read_text() == "done"  # the ordinary exit joined it
    assert "finaliser ran" in got.stderr
