"""Exec decisions on the real kernel: allowed/denied twins (DESIGN §3 command semantics)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from .conftest import make_policy as _make_policy

# The root command (`sh root.sh`, `race_exec ...`) is launched by the user, and its allow
# passes to its descendants (issue 13).  These tests are about the rules a descendant meets,
# so the roots' own rules say inherit: false (the inheritance tests below use _make_policy).
ROOT_RULES = [("*sh */root.sh", "allow", False), ("race_exec *", "allow", False)]


def make_policy(exec_rules=(), *args, **kw):
    return _make_policy([*exec_rules, *ROOT_RULES], *args, **kw)


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_bin(world) -> Path:
    """Fake programs that say they ran: git, curl, npm (with a tree), helpers."""
    b = world.root / "bin"
    b.mkdir()
    script(b / "git", 'echo "RAN git $*"\n')
    script(b / "curl", 'echo "RAN curl $*"\n')
    script(b / "npm", 'echo "RAN npm $*"\nhelper-a\n')
    script(b / "helper-a", 'echo "RAN helper-a"\nhelper-b\n')
    script(b / "helper-b", 'echo "RAN helper-b"\n')
    for p in b.iterdir():
        p.chmod(0o755)
    return b


def run_script(supervised, world, fake_bin: Path, body: str, policy, **kw):
    root = script(world.root / "root.sh", f"PATH={fake_bin}:/usr/bin:/bin\nexport PATH\n" + body)
    return supervised(["/bin/sh", str(root)], policy, **kw)


def test_git_status_allowed_git_push_denied(supervised, world, fake_bin):
    pol = make_policy([("git status", "allow"), ("git diff*", "allow"), ("git push*", "deny")])
    r = run_script(
        supervised, world, fake_bin, "git status\ngit push origin main\necho push=$?\n", pol
    )
    out = r.stdout.decode()
    assert "RAN git status" in out  # allowed twin
    assert "RAN git push" not in out  # denied: never ran
    assert "push=126" in out  # sh reports EACCES as 126
    assert (
        b'landgate: denied shell_exec "git push origin main" (rule 3, policy.yaml:13)' in r.stderr
    )
    assert ("git status", "allow") in r.decisions("shell_exec")
    assert ("git push origin main", "deny") in r.decisions("shell_exec")


def test_denial_line_once_per_distinct_denial(supervised, world, fake_bin):
    pol = make_policy([("git status", "allow")])
    r = run_script(supervised, world, fake_bin, "git push\ngit push\ngit push\ngit fetch\n", pol)
    assert r.stderr.count(b'denied shell_exec "git push"') == 1
    assert r.stderr.count(b'denied shell_exec "git fetch"') == 1
    # sh goes on searching $PATH after EACCES (a real git may exist): count ours
    pushes = [
        e
        for e in r.events
        if e.target == "git push" and e.detail == f"{fake_bin / 'git'} (#!/bin/sh)"
    ]
    assert [(e.result, e.errno) for e in pushes] == [("deny", 13)] * 3


def test_npm_test_admits_descendants(supervised, world, fake_bin):
    pol = make_policy([("npm test", "allow"), ("curl*", "deny")])
    r = run_script(supervised, world, fake_bin, "npm test\nnpm run build\n", pol)
    out = r.stdout.decode()
    assert "RAN npm test" in out and "RAN helper-a" in out and "RAN helper-b" in out
    assert "RAN npm run build" not in out  # its twin: not allowed, default deny
    inherited = [e for e in r.events if "inherited" in e.flags]
    assert {e.target for e in inherited} == {"helper-a", "helper-b"}


def test_inherited_descendants_still_meet_deny(supervised, world, fake_bin):
    script(fake_bin / "npm", 'echo "RAN npm $*"\ncurl http://x\necho curl=$?\nhelper-b\n')
    pol = make_policy([("npm test", "allow"), ("curl*", "deny")])
    r = run_script(supervised, world, fake_bin, "npm test\n", pol)
    out = r.stdout.decode()
    assert "RAN curl" not in out and "curl=126" in out
    assert "RAN helper-b" in out  # the allowed twin under the same ancestor


def test_inherit_false(supervised, world, fake_bin):
    pol = make_policy([("npm test", "allow", False)])
    r = run_script(supervised, world, fake_bin, "npm test\n", pol)
    out = r.stdout.decode()
    assert "RAN npm test" in out
    assert "RAN helper-a" not in out  # needs its own allow
    pol2 = make_policy([("npm test", "allow", False), ("helper-a", "allow", False)])
    r2 = run_script(supervised, world, fake_bin, "npm test\n", pol2)
    assert "RAN helper-a" in r2.stdout.decode()
    assert "RAN helper-b" not in r2.stdout.decode()


def test_root_command_passes_its_allow_to_descendants(supervised, world, fake_bin):
    # launching it is the user's own act: its children inherit that allow (issue 13)
    pol = _make_policy([("curl*", "deny")])
    r = run_script(
        supervised, world, fake_bin, "echo root-ran\nhelper-a\ncurl x\necho curl=$?\n", pol
    )
    assert b"root-ran" in r.stdout  # the root itself runs
    assert b"RAN helper-a" in r.stdout and b"RAN helper-b" in r.stdout  # descendants inherit
    assert b"RAN curl" not in r.stdout and b"curl=126" in r.stdout  # a deny still wins
    root = [e for e in r.events if "root" in e.flags]
    assert len(root) == 1 and root[0].result == "allow"
    inherited = {e.target for e in r.events if "inherited" in e.flags}
    assert {"helper-a", "helper-b"} <= inherited


def test_root_command_rule_with_inherit_false(supervised, world, fake_bin):
    # twin: a rule matching the root that says inherit: false -- children need their own allow
    pol = _make_policy([("sh*", "allow", False), ("helper-a", "allow", False)])
    r = run_script(supervised, world, fake_bin, "echo root-ran\nhelper-a\nhelper-b\n", pol)
    assert b"root-ran" in r.stdout
    assert b"RAN helper-a" in r.stdout  # its own allow
    assert b"RAN helper-b" not in r.stdout  # neither the root nor helper-a passes theirs on


def test_sh_c_judged_by_its_string(supervised, world, fake_bin):
    pol = make_policy(
        [("true", "allow"), ("echo*", "allow"), ("sh -c*", "allow"), ("curl*", "deny")]
    )
    r = run_script(
        supervised,
        world,
        fake_bin,
        "sh -c 'true; curl x'\necho shc=$?\nsh -c 'true; echo twin-ok'\n",
        pol,
    )
    out = r.stdout.decode()
    assert "RAN curl" not in out and "shc=126" in out
    assert "twin-ok" in out
    denied = [e for e in r.events if e.result == "deny"]
    assert denied and denied[0].target == "sh -c true; curl x" and "shell-string" in denied[0].flags


def test_sh_c_segments_allow_the_shell(supervised, world, fake_bin):
    # no rule for `sh` itself: the shell runs because every command of its string is allowed
    pol = make_policy([("git status", "allow"), ("echo*", "allow")])
    r = run_script(
        supervised, world, fake_bin, "sh -c 'git status && echo seg-ok'\nsh -c 'git push'\n", pol
    )
    out = r.stdout.decode()
    assert "RAN git status" in out and "seg-ok" in out
    assert "RAN git push" not in out


def test_env_curl_judged_as_curl(supervised, world, fake_bin):
    pol = make_policy(
        [("env*", "allow"), ("nice*", "allow"), ("echo*", "allow"), ("curl*", "deny")]
    )
    r = run_script(
        supervised,
        world,
        fake_bin,
        "env curl x\necho env=$?\nenv FOO=1 nice -n 5 curl y\nenv echo env-twin\n",
        pol,
    )
    out = r.stdout.decode()
    assert "RAN curl" not in out and "env=126" in out
    assert "env-twin" in out
    assert any("unwrapped" in e.flags and e.result == "deny" for e in r.events)


def test_loader_run_directly_is_unwrapped(supervised, world, fake_bin):
    loader = "/lib64/ld-linux-x86-64.so.2"
    if not os.path.exists(loader):
        pytest.skip("no x86-64 ELF loader at the usual path")
    pol = make_policy([("ld-linux*", "allow"), ("echo*", "allow"), ("cat*", "deny")])
    r = run_script(
        supervised,
        world,
        fake_bin,
        f"{loader} /bin/cat /etc/hostname\necho ld=$?\n{loader} /bin/echo ld-twin\n",
        pol,
    )
    assert b"ld=126" in r.stdout and b"ld-twin" in r.stdout


def test_copied_binary_under_another_name(supervised, world, fake_bin):
    shutil.copy("/bin/echo", fake_bin / "myecho")
    (fake_bin / "myecho").chmod(0o755)
    pol = make_policy([("echo*", "allow")])  # defaultEffect deny
    prog = (
        f"myecho copied-ran\necho copy=$?\n"
        # argv[0] spoofed as "echo" for the copied file: still judged by the file's name
        f"exec -a echo {fake_bin}/myecho spoof-ran 2>/dev/null || true\n"
    )
    root = script(world.root / "root.sh", f"PATH={fake_bin}:/usr/bin:/bin\n" + prog)
    r = supervised(["/bin/bash", str(root)], pol)
    out = r.stdout.decode()
    assert "copied-ran" not in out and "copy=126" in out
    assert "spoof-ran" not in out
    r2 = supervised(["/bin/sh", "-c", "/bin/echo twin-ran"], pol)
    assert b"twin-ran" in r2.stdout


def test_execveat_empty_path_refused(supervised, world):
    # fexecve: execveat(fd, "", AT_EMPTY_PATH) runs a file Landlock never saw by path
    code = (
        "import os\nfd=os.open('/bin/echo', os.O_RDONLY)\n"
        "try:\n    os.execve(fd, ['echo','fexecve-ran'], {})\n"
        "except PermissionError:\n    print('refused')\n"
    )
    pol = make_policy([("echo*", "allow")])
    r = supervised(["/usr/bin/python3", "-c", code], pol)
    assert b"refused" in r.stdout and b"fexecve-ran" not in r.stdout


def test_simulate_blocks_nothing_but_records(supervised, world, fake_bin):
    pol = make_policy([("git status", "allow")], mode="simulate")
    r = run_script(supervised, world, fake_bin, "git status\ngit push\n", pol, simulate=True)
    assert b"RAN git push" in r.stdout
    ev = [e for e in r.events if e.target == "git push"]
    assert ev and ev[0].result == "deny" and ev[0].mode == "simulate" and "simulated" in ev[0].flags
    assert b"landgate: denied" not in r.stderr


@pytest.fixture
def race_progs(world, bins) -> tuple[Path, Path, Path]:
    """allow1 (/bin/true) and deny01 (leaves a marker in markers/ when it runs): names of the
    same length, for the helpers that flip one into the other in memory."""
    d = world.root / "race"
    d.mkdir()
    markers = world.root / "markers"
    markers.mkdir()
    allowed = d / "allow1"
    denied = d / "deny01"
    shutil.copy(bins / "marker", denied)
    shutil.copy("/bin/true", allowed)
    for p in (allowed, denied):
        p.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return allowed, denied, markers


# The argv races (DESIGN §2): a helper flips the filename and argv[0] between allow1 and
# deny01 while it execs; every exec judged allowed must be verified at PTRACE_EVENT_EXEC.
#  - race_exec: a second thread of the caller flips them.
#  - race_exec, with the plan's write table saying the programs are out of the agent's reach
#    (so the object check alone would take the fast path) and argv in private memory: only
#    the caller's second thread makes it racy.  Fails with the thread count forced to 1
#    (supervise_caller.c): the denied program then runs.
#  - race_exec miss-first: each child first execs a missing name while single-threaded, so
#    its racing exec is answered through the pidfd kept after that miss
#    (supervise_caller.c): the thread count must be asked again, never carried over from
#    the miss (with the kept path's count forced to 1 the denied program ran).
#  - shm_race: the filename in a MAP_SHARED page another process flips (the caller is
#    single-threaded, so only the memory check can see it), argv[1] ending a few bytes
#    before it in a private page: the supervisor joins the two ranges, and the joined range
#    spans two mappings, so it is racy.  Fails with ranges_racy's check of the range's end
#    removed (the joined range then passes as private) or with the check off.
ARGV_RACES = [
    pytest.param("race_exec", 1000, False, id="thread"),
    pytest.param("race_exec", 500, True, id="thread-programs-out-of-reach"),
    pytest.param("race_exec miss-first", 500, True, id="thread-after-a-kept-miss"),
    pytest.param("shm_race", 500, True, id="shared-memory"),
]


@pytest.mark.parametrize(("helper", "attempts", "write_table"), ARGV_RACES)
def test_argv_race_never_runs_denied_program(
    supervised, world, bins, race_progs, helper, attempts, write_table
):
    allowed, denied, markers = race_progs
    pol = make_policy([("allow1*", "allow"), ("shm_race *", "allow", False)])
    info = {"write_trees": [str(world.root / "nowhere")]} if write_table else None
    helper, *extra = helper.split()
    r = supervised(
        [str(bins / helper), str(attempts), str(allowed), str(denied), str(markers), *extra],
        pol,
        plan_info=info,
        timeout=120,
    )
    n, ran, refused, other = map(int, r.stdout.split())
    assert n == attempts and ran + refused + other == attempts
    assert list(markers.iterdir()) == []  # the denied program never ran
    assert ran > 0  # the allowed twin did run: the race was exercised
    # every exec judged allowed (or killed as a race) was verified at PTRACE_EVENT_EXEC
    judged_allowed = [
        e
        for e in r.events
        if e.target.startswith("allow1")
        and "root" not in e.flags
        and (e.result == "allow" or e.exec_race)
    ]
    assert judged_allowed and all("verified" in e.flags for e in judged_allowed)
    races = sum(1 for e in r.events if e.exec_race)
    print(
        f"argv race ({helper}): {attempts} attempts, {ran} allowed ran, {refused} refused, "
        f"{races} killed as exec-race, 0 denied programs ran"
    )


def test_private_argv_spread_over_pages_takes_the_fast_path(supervised, world, fake_bin):
    # the twin: thousands of arguments from sh (strings a few bytes apart, over many pages,
    # more ranges than the supervisor notes one by one) are private memory: not verified
    args = " ".join(f"./d{i // 100:03d}/f{i:05d}.txt" for i in range(3000))
    pol = make_policy([("true*", "allow"), ("sh*", "allow")])
    r = supervised(
        ["/bin/sh", "-c", f"/bin/true {args}"],
        pol,
        plan_info={"write_trees": [str(world.root / "nowhere")]},
    )
    ev = [e for e in r.events if e.target.startswith("true")]
    assert r.returncode == 0 and ev and ev[0].result == "allow"
    assert "verified" not in ev[0].flags


def test_xargs_with_thousands_of_arguments(supervised, world, fake_bin):
    """`find | xargs cat` over a tree passes thousands of arguments in one exec: it must be
    judged like any other command (the twin: the same argv to a denied program is refused),
    not refused for its size."""
    tree = world.workspace / "many"
    tree.mkdir()
    # Short relative names, as `find .` prints them (./d000/f00000.txt): one xargs
    # batch (128 KiB) then holds thousands of arguments.
    for i in range(9000):
        d = tree / f"d{i // 100:03d}"
        d.mkdir(exist_ok=True)
        (d / f"f{i:05d}.txt").write_text("x\n")
    pol = make_policy(
        [
            ("sh*", "allow"),
            ("find*", "allow"),
            ("xargs*", "allow"),
            ("cat*", "allow"),
            ("wc*", "allow"),
            ("echo*", "allow"),
            ("head*", "deny"),
        ]
    )
    r = run_script(
        supervised,
        world,
        fake_bin,
        f"cd {tree}\nfind . -type f -print0 | xargs -0 cat | wc -l\n"
        "find . -type f -print0 | xargs -0 head -q -n1 | wc -l\necho done\n",
        pol,
    )
    lines = r.stdout.decode().split()
    assert lines[0] == "9000", r.stdout  # cat ran over every file
    assert lines[1] == "0" and lines[-1] == "done", r.stdout  # head never ran
    # the recorded target of such an exec is cut for the trail ("truncated"), never the decision
    big = [e for e in r.events if e.action == "shell_exec" and "truncated" in e.flags]
    assert big and all("fail-closed" not in e.flags for e in big), [e.flags for e in big]
    assert {e.result for e in big if e.target.startswith("cat")} == {"allow"}


def _assert_reused_pid_refused(r) -> str:
    """pid_reuse's run: Q got the reused pid ("reused ") and its `echo reuse-ran` was refused
    (126), by its own identity (not inherited).  Returns the run's stdout."""
    out = r.stdout.decode()
    assert r.returncode == 126, (r.returncode, out, r.stderr)
    assert "reused " in out
    assert "reuse-ran" not in out
    reused = [e for e in r.events if e.target == "echo reuse-ran"]
    assert [(e.result, "inherited" in e.flags) for e in reused] == [("deny", False)]
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="forcing a pid (ns_last_pid): root")
@pytest.mark.parametrize("first", ["true", "/bin/echo child-ran; true"])
def test_reused_pid_of_an_admitted_process_passes_nothing_on(supervised, bins, first):
    # Attack: A (`sh -c ...`, allowed with inherit) is admitted under pid X and ends; Q,
    # never admitted, is forked until it holds X; Q's child execs a program with no rule.
    # The walk meets pid X again, but the admitted-process table keys X by the identity
    # of A's pidfd (taken after the answer, from the pidfd opened before ID_VALID), which
    # Q's is not: refused.  With the identity ignored (pid alone) the child ran.
    # Twin (first = "/bin/echo child-ran; true"): A's own child inherits A's allow, and its
    # walk leaves A's pidfd in the walk's kept-pidfd table (supervise_caller.c) under X; the
    # reused X must not be answered from it (with the kept identity served for X once A
    # was reaped, the child ran: fails 2/2).
    pol = _make_policy([("sh -c*", "allow", True), ("pid_reuse *", "allow", False)])
    argv = [str(bins / "pid_reuse"), "/bin/sh", "-c", first, "--", "/bin/echo", "reuse-ran"]
    r = supervised(argv, pol, timeout=120)
    out = _assert_reused_pid_refused(r)
    if first != "true":
        assert "child-ran" in out  # the allowed twin: a real descendant of X inherits
        ran = [e for e in r.events if e.target == "echo child-ran"]
        assert [(e.result, "inherited" in e.flags) for e in ran] == [("allow", True)]


@pytest.mark.skipif(os.geteuid() != 0, reason="forcing a pid (ns_last_pid): root")
@pytest.mark.parametrize("then", ["true", "echo self-ran"])
def test_reused_pid_execing_itself_is_not_the_kept_caller(supervised, bins, then):
    # Attack: A (`sh -c ...`, allowed with inherit, pid X) is admitted; it execs a name
    # through a $PATH whose first entry misses, and after that miss (the kernel's ENOENT)
    # its pidfd is kept for its next notification (supervise_caller.c, the caller's kept
    # pidfd), which the hit is then answered through.  A ends and is reaped; Q, never
    # admitted, is forked until it holds X and execs a program with no rule itself.  Q's
    # notification comes from pid X: the kept pidfd must be asked first (ESRCH: its
    # process is gone) and a fresh one opened on Q, whose identity is not A's: refused.
    # With the kept identity served for X without the ask, Q inherited A's admission and
    # ran (checked: both cases fail).
    # Twin (then = "echo self-ran"): A's own second exec, answered through its kept
    # pidfd, inherits A's allow as a fresh pidfd would make it.
    pol = _make_policy([("sh -c*", "allow", True), ("pid_reuse *", "allow", False)])
    script = f"PATH=/nonexistent/kept:/bin; exec {then}"
    argv = [str(bins / "pid_reuse"), "--self", "/bin/sh", "-c", script]
    argv += ["--", "/bin/echo", "reuse-ran"]
    r = supervised(argv, pol, timeout=120)
    out = _assert_reused_pid_refused(r)
    # A's search: the miss from pid X, then the hit through the kept pidfd
    ran = [e for e in r.events if e.target == then]
    got = [("missing" in e.flags, e.result, "inherited" in e.flags) for e in ran]
    assert got[0][0] and got[-1] == (False, "allow", True), got
    if then != "true":
        assert "self-ran" in out  # the allowed twin: the same process execs again
