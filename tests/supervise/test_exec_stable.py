"""Exec through symlinks and #! scripts the agent cannot change skips the verified path (issue
13 follow-up): only a link, script or object inside a tree the sandbox can write (the plan's
`write_trees`) can be swapped between the check and the kernel's walk, so only those are
verified at PTRACE_EVENT_EXEC.  The attack: a link in a writable tree re-aimed between an
allowed and a denied program by another process while it is exec'd."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sandbox import threads

from .conftest import make_policy

POLICY = [
    ("cat*", "allow"),
    ("true*", "allow"),
    ("echo*", "allow"),
    ("script*", "allow"),
    ("swap_exec*", "allow"),
    ("mark-denied*", "deny"),
]


@pytest.fixture
def dirs(world, bins) -> tuple[Path, Path]:
    """ro: a tree the sandbox cannot write (per write_trees); ws: one it can, holding the
    denied program (which leaves a marker in ws/markers when it runs)."""
    ro, ws = world.root / "ro", world.root / "ws"
    ro.mkdir()
    ws.mkdir()
    (ws / "markers").mkdir()
    shutil.copy(bins / "marker", ws / "mark-denied")
    (ws / "mark-denied").chmod(0o755)
    return ro, ws


def execs(r, target: str) -> list:
    return [e for e in r.events if e.action == "shell_exec" and e.target.split()[0] == target]


def test_symlinked_bin_true_takes_the_fast_path(supervised, dirs):
    _ro, ws = dirs
    r = supervised(["/bin/true"], make_policy(POLICY), plan_info={"write_trees": [str(ws)]})
    assert r.returncode == 0
    ev = execs(r, "true")
    assert ev and ev[0].result == "allow" and "verified" not in ev[0].flags


def test_symlinked_bin_true_is_verified_when_writes_are_unknown(supervised, dirs):
    # twin: without the plan's write table (no Landlock, simulation) every link is verified
    r = supervised(["/bin/true"], make_policy(POLICY))
    ev = execs(r, "true")
    assert r.returncode == 0 and ev and "verified" in ev[0].flags


def test_script_outside_the_writable_trees_takes_the_fast_path(supervised, dirs):
    ro, ws = dirs
    script = ro / "script"
    script.write_text("#!/bin/sh\necho script-ran\n")
    script.chmod(0o755)
    r = supervised([str(script)], make_policy(POLICY), plan_info={"write_trees": [str(ws)]})
    assert b"script-ran" in r.stdout and r.returncode == 0
    ev = execs(r, "script")
    assert ev and ev[0].result == "allow" and "verified" not in ev[0].flags


def test_script_in_a_writable_tree_is_verified(supervised, dirs):
    _ro, ws = dirs
    script = ws / "script"
    script.write_text("#!/bin/sh\necho script-ran\n")
    script.chmod(0o755)
    r = supervised([str(script)], make_policy(POLICY), plan_info={"write_trees": [str(ws)]})
    assert b"script-ran" in r.stdout and r.returncode == 0
    ev = execs(r, "script")
    assert ev and "verified" in ev[0].flags


def test_link_through_a_writable_tree_mid_chain_is_verified(supervised, dirs):
    # ro/cat -> ws/hop -> /bin/echo: the spelled and the real path are both out of reach,
    # the link in the middle is not
    ro, ws = dirs
    (ws / "hop").symlink_to("/bin/echo")
    (ro / "cat").symlink_to(ws / "hop")
    r = supervised(
        [str(ro / "cat"), "hop-ran"], make_policy(POLICY), plan_info={"write_trees": [str(ws)]}
    )
    assert b"hop-ran" in r.stdout and r.returncode == 0
    ev = execs(r, "cat")
    assert ev and "verified" in ev[0].flags


def test_swapped_symlink_in_writable_tree_never_runs_the_denied_program(supervised, dirs, bins):
    _ro, ws = dirs
    link = ws / "cat"
    link.symlink_to("/bin/echo")
    argv = [
        str(bins / "swap_exec"),
        "300",
        str(link),
        "/bin/echo",
        str(ws / "mark-denied"),
        str(ws / "markers"),
    ]
    r = supervised(argv, make_policy(POLICY), plan_info={"write_trees": [str(ws)]}, timeout=180)
    assert r.returncode == 0, r.stderr
    attempts, ran, _eacces, _other = map(int, r.stdout.split()[-4:])
    assert list((ws / "markers").iterdir()) == []  # the denied program never ran
    assert attempts == 300 and ran > 0  # the allowed target did run: the race was exercised
    assert all("verified" in e.flags for e in execs(r, "cat") if e.result == "allow")


def test_symlink_out_of_reach_runs_on_the_fast_path(supervised, dirs):
    # the allowed twin: the same kind of link where the agent cannot write runs, unverified
    ro, ws = dirs
    (ro / "cat").symlink_to("/bin/echo")
    r = supervised(
        [str(ro / "cat"), "alias-ran"], make_policy(POLICY), plan_info={"write_trees": [str(ws)]}
    )
    assert b"alias-ran" in r.stdout and r.returncode == 0
    ev = execs(r, "cat")
    assert ev and ev[0].result == "allow" and "verified" not in ev[0].flags


# ---- plain files (no link, no #! line): the name the kernel walks again -------------------


def _race(r) -> tuple[int, int]:
    attempts, ran, _eacces, _other = map(int, r.stdout.split()[-4:])
    return attempts, ran


def test_clone_fs_sibling_chdir_never_runs_the_denied_program(supervised, dirs, bins):
    """A relative name is resolved from the caller's working directory, which a CLONE_FS
    sibling (a separate process: the caller stays single-threaded) can change between the
    supervisor's walk and the kernel's.  ro/a/cat is an allowed program, ro/b/cat a link to
    the denied one, both out of the agent's reach: only the cwd moves."""
    ro, ws = dirs
    (ro / "a").mkdir()
    (ro / "b").mkdir()
    shutil.copy("/bin/true", ro / "a" / "cat")
    (ro / "b" / "cat").symlink_to(ws / "mark-denied")
    argv = [
        str(bins / "plain_race"),
        "cwd",
        "300",
        str(ro / "a"),
        str(ro / "b"),
        str(ws / "markers"),
    ]
    pol = make_policy([*POLICY, ("plain_race*", "allow")])
    r = supervised(argv, pol, plan_info={"write_trees": [str(ws)]}, timeout=180)
    assert r.returncode == 0, r.stderr
    attempts, ran = _race(r)
    assert list((ws / "markers").iterdir()) == []  # the denied program never ran
    assert attempts == 300 and ran > 0  # the allowed program did run: the race was exercised
    assert all("verified" in e.flags for e in execs(r, "cat") if e.result == "allow")


def test_plain_file_swapped_for_a_link_never_runs_the_denied_program(supervised, dirs, bins):
    """An absolute name of a regular file in a writable tree: another process renames a
    symlink to the denied program over it, and back, while it is exec'd."""
    _ro, ws = dirs
    shutil.copy("/bin/true", ws / "plain")
    shutil.copy(ws / "plain", ws / "cat")
    argv = [
        str(bins / "plain_race"),
        "swap",
        "300",
        str(ws / "cat"),
        str(ws / "plain"),
        str(ws / "mark-denied"),
        str(ws / "markers"),
    ]
    pol = make_policy([*POLICY, ("plain_race*", "allow")])
    r = supervised(argv, pol, plan_info={"write_trees": [str(ws)]}, timeout=180)
    assert r.returncode == 0, r.stderr
    attempts, ran = _race(r)
    assert list((ws / "markers").iterdir()) == []
    assert attempts == 300 and ran > 0
    assert all("verified" in e.flags for e in execs(r, "cat") if e.result == "allow")


def test_plain_file_out_of_reach_by_absolute_name_takes_the_fast_path(supervised, dirs):
    # the twin: nothing can change what /usr/bin/true names; a relative name always can
    ro, ws = dirs
    shutil.copy("/bin/true", ro / "true")
    pol = make_policy([*POLICY, ("sh*", "allow")])
    r = supervised(["/usr/bin/true"], pol, plan_info={"write_trees": [str(ws)]})
    ev = execs(r, "true")
    assert r.returncode == 0 and ev and ev[0].result == "allow" and "verified" not in ev[0].flags
    r = supervised(["./true"], pol, plan_info={"write_trees": [str(ws)]}, cwd=str(ro))
    ev = execs(r, "true")
    assert r.returncode == 0 and ev and ev[0].result == "allow" and "verified" in ev[0].flags


# ---- the agent's own mount namespace (the launcher's namespace rung) --------------------
# The walk is done in the caller's view and "writable" is also asked by identity (each
# write tree's root device and inode), so a caller in another mount namespace keeps the
# fast path where nothing can change, and a writable tree seen there under another name
# (a bind mount) is still writable.


def test_other_mount_namespace_keeps_the_fast_path(supervised, dirs):
    ro, ws = dirs
    (ro / "cat").symlink_to("/bin/echo")
    pol = make_policy(POLICY)
    info = {"write_trees": [str(ws)]}
    r = supervised(["/bin/true"], pol, plan_info=info, spawn_flags=["--mntns"])
    ev = execs(r, "true")
    assert r.returncode == 0 and ev and ev[0].result == "allow" and "verified" not in ev[0].flags
    r = supervised([str(ro / "cat"), "ns-ran"], pol, plan_info=info, spawn_flags=["--mntns"])
    ev = execs(r, "cat")
    assert b"ns-ran" in r.stdout and ev and "verified" not in ev[0].flags


def test_other_mount_namespace_link_in_a_writable_tree_is_verified(supervised, dirs):
    # the twin: the same link inside the writable tree is verified there too
    _ro, ws = dirs
    (ws / "cat").symlink_to("/bin/echo")
    r = supervised(
        [str(ws / "cat"), "ns-ran"],
        make_policy(POLICY),
        plan_info={"write_trees": [str(ws)]},
        spawn_flags=["--mntns"],
    )
    ev = execs(r, "cat")
    assert b"ns-ran" in r.stdout and ev and "verified" in ev[0].flags


def test_writable_tree_bound_under_another_name_is_verified(supervised, dirs):
    # ws bind-mounted onto ro/bound in the caller's namespace: by name ro/bound/cat is out
    # of every write tree; by identity ro/bound is ws's root.  Fails with the identity
    # check off (chain_stable's by_id = 0): the exec then takes the fast path.
    ro, ws = dirs
    (ro / "bound").mkdir()
    (ws / "cat").symlink_to("/bin/echo")
    r = supervised(
        [str(ro / "bound" / "cat"), "bound-ran"],
        make_policy(POLICY),
        plan_info={"write_trees": [str(ws)]},
        spawn_flags=["--mntns", "--bind", str(ws), str(ro / "bound")],
    )
    ev = execs(r, "cat")
    assert b"bound-ran" in r.stdout and ev and "verified" in ev[0].flags


def test_swapped_link_in_a_bound_writable_tree_never_runs_the_denied_program(
    supervised, dirs, bins
):
    # the race itself, through the bind: the link is re-aimed under its other name
    ro, ws = dirs
    (ro / "bound").mkdir()
    (ws / "cat").symlink_to("/bin/echo")
    link = ro / "bound" / "cat"
    argv = [
        str(bins / "swap_exec"),
        "300",
        str(link),
        "/bin/echo",
        str(ro / "bound" / "mark-denied"),
        str(ro / "bound" / "markers"),
    ]
    r = supervised(
        argv,
        make_policy(POLICY),
        plan_info={"write_trees": [str(ws)]},
        spawn_flags=["--mntns", "--bind", str(ws), str(ro / "bound")],
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    attempts, ran, _eacces, _other = map(int, r.stdout.split()[-4:])
    assert list((ws / "markers").iterdir()) == []  # the denied program never ran
    assert attempts == 300 and ran > 0  # the allowed target did run: the race was exercised
    assert all("verified" in e.flags for e in execs(r, "cat") if e.result == "allow")


# ---- names kept after a stable walk (supervise_exec_names.c) -----------------------------
# The real path and the stable walk of an absolute name are kept for the next exec of it
# while no directory the walk went through changes (inotify).  Only the host can change
# those directories (they are outside every writable tree), so the attack needs its help:
# between two execs of one session it re-aims a kept link, out of the agent's reach, at a
# hard link of the same program inside a writable tree, under a denied name.  The second
# exec finds the same object (device and inode) through a chain the agent can now swap,
# and a real path a deny rule names: it must be judged afresh.


def _twice(supervised, ro: Path, ws: Path, between) -> list:
    """sh runs ro/link twice (a name is kept at its second exec: the first only notes it),
    waits on a fifo while `between()` runs, then runs ro/link again; the exec events of
    `link` after the first: the one that kept it, and the one after `between()`."""
    import threading

    fifo = ws / "go"
    os.mkfifo(fifo)

    def host() -> None:
        with open(fifo, "w") as f:  # opens once sh is reading, after the first exec
            between()
            f.write("go\n")

    t = threading.Thread(target=host, daemon=True)
    t.start()
    link = ro / "link"
    pol = make_policy([*POLICY, ("link*", "allow"), ("sh*", "allow")])
    r = supervised(
        ["/bin/sh", "-c", f"{link}; {link}; read x < {fifo}; {link}"],
        pol,
        plan_info={"write_trees": [str(ws)]},
    )
    t.join(10)
    ev = execs(r, "link")
    assert len(ev) == 3 and ev[0].result == "allow"
    return ev[1:]


def test_kept_name_is_judged_afresh_after_the_host_reaims_its_link(supervised, dirs):
    ro, ws = dirs
    shutil.copy("/bin/true", ro / "prog")
    (ro / "link").symlink_to(ro / "prog")

    def reaim() -> None:
        os.link(ro / "prog", ws / "mark-denied-alias")  # the same inode, in a writable tree
        (ro / "link.new").symlink_to(ws / "mark-denied-alias")
        os.replace(ro / "link.new", ro / "link")

    ev = _twice(supervised, ro, ws, reaim)
    assert len(ev) == 2
    assert ev[0].result == "allow" and "verified" not in ev[0].flags
    # judged by its new real path (a deny rule's name), not the one kept for ro/link
    assert ev[1].result == "deny"


def test_kept_name_takes_the_fast_path_again_when_nothing_changed(supervised, dirs):
    # the twin: the same two execs with nothing changed between them both run, unverified
    ro, ws = dirs
    shutil.copy("/bin/true", ro / "prog")
    (ro / "link").symlink_to(ro / "prog")
    ev = _twice(supervised, ro, ws, lambda: None)
    assert [e.result for e in ev] == ["allow", "allow"]
    assert not any("verified" in e.flags for e in ev)


def test_kept_name_is_verified_after_the_host_moves_its_chain_into_reach(supervised, dirs):
    # the same object, a real path no rule names, through a link now in a writable tree:
    # the second exec must take the verified path (kept, it took the fast one)
    ro, ws = dirs
    shutil.copy("/bin/true", ro / "prog")
    (ro / "link").symlink_to(ro / "prog")

    def reaim() -> None:
        os.link(ro / "prog", ws / "prog")
        (ws / "hop").symlink_to(ws / "prog")
        (ro / "link.new").symlink_to(ws / "hop")
        os.replace(ro / "link.new", ro / "link")

    ev = _twice(supervised, ro, ws, reaim)
    assert [e.result for e in ev] == ["allow", "allow"]
    assert "verified" not in ev[0].flags and "verified" in ev[1].flags


def _script_twice(supervised, ro: Path, ws: Path, between) -> list:
    """ro/script (#!ro/interp, a link to /bin/sh) run twice by sh, `between()` in between."""
    script = ro / "script"
    script.write_text(f"#!{ro / 'interp'}\necho script-ran\n")
    script.chmod(0o755)
    (ro / "interp").symlink_to("/bin/sh")
    (ro / "link").symlink_to(script)  # _twice runs ro/link
    ev = _twice(supervised, ro, ws, between)
    return ev


def test_kept_script_is_verified_after_the_host_moves_its_interpreter_into_reach(supervised, dirs):
    # the script and its interpreter's name are kept; the host then re-aims the
    # interpreter's link (out of reach) through a link in a writable tree to the same
    # /bin/sh: the second exec must take the verified path (kept, it took the fast one)
    ro, ws = dirs

    def reaim() -> None:
        (ws / "hop").symlink_to("/bin/sh")
        (ro / "interp.new").symlink_to(ws / "hop")
        os.replace(ro / "interp.new", ro / "interp")

    ev = _script_twice(supervised, ro, ws, reaim)
    assert [e.result for e in ev] == ["allow", "allow"]
    assert "verified" not in ev[0].flags and "verified" in ev[1].flags


def test_kept_script_takes_the_fast_path_again_when_nothing_changed(supervised, dirs):
    ro, ws = dirs
    ev = _script_twice(supervised, ro, ws, lambda: None)
    assert [e.result for e in ev] == ["allow", "allow"]
    assert not any("verified" in e.flags for e in ev)


def _inotify_fds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
        except OSError:
            pass  # closed since the listing
    return n


@pytest.mark.parametrize(("runs", "instances"), [(1, 0), (2, 1)])
def test_a_name_execd_once_makes_no_inotify_instance(supervised, dirs, runs, instances):
    """Closing an inotify instance with watches waits for an SRCU grace period (6-15 ms,
    on the CLI's exit path): a name is kept, and the instance made, only at its second
    exec.  Fails with keeping at the first exec (runs=1 would make one); runs=2 is the
    twin that does keep it."""
    ro, ws = dirs
    shutil.copy("/bin/true", ro / "prog")
    assert threads.wait_idle(30)  # earlier sessions' contexts freed (on workers)
    before = _inotify_fds()
    pol = make_policy([*POLICY, ("prog*", "allow"), ("sh*", "allow")])
    lau = supervised.start(
        ["/bin/sh", "-c", "; ".join([str(ro / "prog")] * runs)],
        pol,
        plan_info={"write_trees": [str(ws)]},
    )
    lau.proc.communicate(timeout=60)
    # the supervisor's context (and any instance it made) lives until its join
    assert _inotify_fds() - before == instances
    r = lau.wait()
    assert [e.result for e in execs(r, "prog")] == ["allow"] * runs
