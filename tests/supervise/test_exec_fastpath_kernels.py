"""Execs from a vfork child (what dash does for every simple command): the fast path's check of
the tasks that share the child's memory (lg_vfork_sharers_racy, supervise_exec_racy.c).

The attack: a second thread of the vfork PARENT flips the filename and argv[0] (private heap
memory) between an allowed and a denied program while the child execs.  The child is a
single-threaded process of its own and its bytes are private, so only the sharers' check sees
the flipper; every exec judged allowed must be verified at PTRACE_EVENT_EXEC.  Fails with
lg_vfork_sharers_racy forced to 0: the denied program runs.

The twin: a single-threaded parent vforking the same allowed program takes the fast path on
every kernel (vm-tests runs this file on Debian's 6.1 and 6.12: issue 19's notes saw 6.12 send
dash's vfork execs to the verified path)."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from .conftest import make_policy

POLICY = [("allow1*", "allow"), ("vfork_race *", "allow", False)]


@pytest.fixture
def progs(world, bins) -> tuple[Path, Path, Path]:
    """allow1 (/bin/true) and deny01 (leaves a marker in markers/ when it runs): names of the
    same length, for the helper that flips one into the other in memory."""
    d = world.root / "race"
    d.mkdir()
    markers = world.root / "markers"
    markers.mkdir()
    allowed, denied = d / "allow1", d / "deny01"
    shutil.copy(bins / "marker", denied)
    shutil.copy("/bin/true", allowed)
    for p in (allowed, denied):
        p.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return allowed, denied, markers


def run_helper(supervised, world, bins, progs, attempts: int, *extra: str):
    allowed, denied, markers = progs
    r = supervised(
        [str(bins / "vfork_race"), str(attempts), str(allowed), str(denied), str(markers), *extra],
        make_policy(POLICY),
        # the programs are out of the agent's reach: the object check alone says "stable"
        plan_info={"write_trees": [str(world.root / "nowhere")]},
        timeout=120,
    )
    n, ran, refused, other = map(int, r.stdout.split())
    assert n == attempts and ran + refused + other == attempts
    judged = [e for e in r.events if e.target.startswith("allow1") and "root" not in e.flags]
    return r, ran, judged


def test_vfork_parent_thread_race_never_runs_denied_program(supervised, world, bins, progs):
    r, ran, judged = run_helper(supervised, world, bins, progs, 500)
    assert list(progs[2].iterdir()) == []  # the denied program never ran
    assert ran > 0  # the allowed twin did run: the race was exercised
    allowed_or_killed = [e for e in judged if e.result == "allow" or e.exec_race]
    assert allowed_or_killed and all("verified" in e.flags for e in allowed_or_killed)
    races = sum(1 for e in r.events if e.exec_race)
    print(f"vfork argv race: 500 attempts, {ran} allowed ran, {races} killed as exec-race")


def test_vfork_child_of_single_threaded_parent_takes_the_fast_path(supervised, world, bins, progs):
    _, ran, judged = run_helper(supervised, world, bins, progs, 50, "--no-flipper")
    assert ran == 50 and list(progs[2].iterdir()) == []
    assert len(judged) == 50 and all(e.result == "allow" for e in judged)
    verified = [e for e in judged if "verified" in e.flags]
    assert verified == [], f"{len(verified)} of 50 vfork execs took the verified path"
