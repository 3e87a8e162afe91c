"""A path glob the supervisor's matcher could not run within its step bound is refused when
the tables are compiled (csrc/glob.c: a program over lg_glob_path_limit() words backtracks
without a budget, a power of the path's length, on a path the agent chooses)."""

from __future__ import annotations

from pathlib import Path

import pytest
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
