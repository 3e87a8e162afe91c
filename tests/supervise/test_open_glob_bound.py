"""A path glob the supervisor's matcher could not run within its step bound is refused when
the tables are compiled (csrc/glob.c: a program over lg_glob_path_limit() words backtracks
without a budget, a power of the path's length, on a path the agent chooses)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import scaled  # tests/conftest.py
from helpers.cli import landgate
from sandbox._supervise import lib

from sandbox.errors import PolicyError
from sandbox.policy import load_policy
from sandbox.supervise.tables import compile_tables


def _policy(tmp_path: Path, classes: int) -> Path:
    pattern = "/data/" + "[ab]" * classes
    p = tmp_path / "p.yaml"
    p.write_text(
        "version: 1\n"
        "actions:\n"
        "  - action: file_read\n"
        "    defaultEffect: allow\n"
        "    rules:\n"
        "      - { path: /etc/hostname, effect: deny }\n"
        f'      - {{ path: "{pattern}", effect: deny }}\n'
        "  - action: file_write\n"
        "    defaultEffect: deny\n"
    )
    return p


def test_a_path_glob_over_the_bound_is_a_policy_error_at_its_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    limit = lib.lg_glob_path_limit()
    path = _policy(tmp_path, limit // 4)  # each [ab] is more than 4 words
    pol = load_policy(path, cwd=tmp_path, home=tmp_path)
    with pytest.raises(PolicyError) as err:
        compile_tables(pol, {"open_check": True, "bind_later": True})
    assert str(err.value).startswith(f"{path}:7:"), str(err.value)
    assert "too long" in str(err.value) and "\n" not in str(err.value)


def test_a_long_glob_within_the_bound_compiles(tmp_path, monkeypatch):
    """The twin: a long pattern the matcher runs within its bound."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    pol = load_policy(_policy(tmp_path, 100), cwd=tmp_path, home=tmp_path)
    tables = compile_tables(pol, {"open_check": True, "bind_later": True})
    assert tables.c.n_paths >= 2


# The three commands that read a policy without launching it.
READERS = pytest.mark.parametrize(
    "argv",
    [("check",), ("explain", "file_read", "/data/ab"), ("plan",)],
    ids=["check", "explain", "plan"],
)


def _landgate(tmp_path: Path, policy: Path, argv: tuple[str, ...]) -> subprocess.CompletedProcess:
    """`landgate ARGV[0] --policy POLICY ARGV[1:]` through the real command line."""
    return landgate(
        argv[0],
        "--policy",
        str(policy),
        *argv[1:],
        cwd=tmp_path,
        env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config")),
        timeout=scaled(60),
    )


@READERS
def test_check_explain_and_plan_refuse_the_policy_the_run_refuses(tmp_path, argv):
    """One semantics: a policy the launch refuses is not `valid` to `check`, and `explain`
    and `plan` refuse it with the same file:line message (exit 1, an invalid policy; no
    traceback)."""
    path = _policy(tmp_path, lib.lg_glob_path_limit() // 4)
    proc = _landgate(tmp_path, path, argv)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert f"{path}:7:" in proc.stderr and "too long" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@READERS
def test_check_explain_and_plan_accept_a_long_glob_within_the_bound(tmp_path, argv):
    """The twin: the same policy with a long pattern the matcher runs within its bound
    (`explain` allows /data/ab: the long deny does not match it, the default allows)."""
    proc = _landgate(tmp_path, _policy(tmp_path, 100), argv)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert "too long" not in proc.stderr
