"""Exec judged on the program that really runs (issue 13): the real path behind a symlink and
the `#!` interpreter of a script are judged against the command rules, a deny among them wins.
Twins: the same aliases of an allowed program run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import make_policy

POLICY = [
    ("cat*", "allow"),
    ("sh*", "allow"),
    ("echo*", "allow"),
    ("mark-denied*", "deny"),
]


@pytest.fixture
def progs(world, bins) -> Path:
    """d/mark-denied: a denied program that leaves a marker in d/markers when it runs."""
    d = world.root / "progs"
    d.mkdir()
    (d / "markers").mkdir()
    shutil.copy(bins / "marker", d / "mark-denied")
    (d / "mark-denied").chmod(0o755)
    return d


def markers(progs: Path) -> list[Path]:
    return list((progs / "markers").iterdir())


def test_symlink_to_denied_program_is_denied(supervised, progs):
    (progs / "cat").symlink_to(progs / "mark-denied")
    r = supervised([str(progs / "cat"), str(progs / "markers")], make_policy(POLICY))
    assert markers(progs) == []  # the denied program never ran
    assert r.returncode == 126
    line = f'landgate: denied shell_exec "mark-denied {progs}/markers" (rule 4, policy.yaml:14)'
    assert line.encode() in r.stderr
    ev = [e for e in r.events if e.action == "shell_exec"]
    assert ev[0].result == "deny" and "executed-object" in ev[0].flags
    # the audit entry records the name as spelled and the object that runs
    assert ev[0].detail == f"{progs}/cat -> {progs}/mark-denied"


def test_symlink_to_allowed_program_runs(supervised, progs):
    (progs / "cat").symlink_to("/bin/echo")  # the alias is allowed, and echo too
    r = supervised([str(progs / "cat"), "alias-ran"], make_policy(POLICY))
    assert b"alias-ran" in r.stdout and r.returncode == 0
    ev = [e for e in r.events if e.action == "shell_exec"]
    assert ev[0].result == "allow" and "verified" in ev[0].flags


def test_shebang_of_denied_program_is_denied(supervised, progs):
    cat = progs / "cat"
    cat.write_text(f"#!{progs}/mark-denied {progs}/markers\n")
    cat.chmod(0o755)
    r = supervised([str(cat), "x"], make_policy(POLICY))
    assert markers(progs) == []
    assert r.returncode == 126
    line = f'landgate: denied shell_exec "mark-denied {progs}/markers {cat} x"'
    assert line.encode() in r.stderr


def test_shebang_twice_removed_is_denied(supervised, progs):
    # a script whose interpreter is itself a script of the denied program
    inner = progs / "cat-inner"
    inner.write_text(f"#!{progs}/mark-denied {progs}/markers\n")
    inner.chmod(0o755)
    cat = progs / "cat"
    cat.write_text(f"#!{inner}\n")
    cat.chmod(0o755)
    r = supervised([str(cat)], make_policy(POLICY))
    assert markers(progs) == [] and r.returncode == 126


def test_sh_script_runs(supervised, progs):
    cat = progs / "cat"
    cat.write_text("#!/bin/sh\necho script-ran\n")
    cat.chmod(0o755)
    r = supervised([str(cat)], make_policy(POLICY))
    assert b"script-ran" in r.stdout and r.returncode == 0
    ev = [e for e in r.events if e.action == "shell_exec" and e.target == "cat"]
    assert ev and ev[0].result == "allow" and "verified" in ev[0].flags


def test_denied_interpreter_of_a_child_is_denied(supervised, progs):
    # not only the root: a child's script is judged by its interpreter too
    cat = progs / "cat"
    cat.write_text(f"#!{progs}/mark-denied {progs}/markers\n")
    cat.chmod(0o755)
    r = supervised(["/bin/sh", "-c", f"{cat}; echo rc=$?; echo twin-ran"], make_policy(POLICY))
    assert markers(progs) == []
    assert b"rc=126" in r.stdout and b"twin-ran" in r.stdout
