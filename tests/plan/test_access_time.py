"""Carve-outs and protected paths are planned without a walk (issue 12): the plan says which
mechanism covers each deny and which opens the filter hands to the supervisor; the filter
itself is run through the BPF interpreter of test_plan."""

from __future__ import annotations

import errno
import os

from launch.lg_helpers import world_policy

from plan.test_plan import run_bpf
from sandbox.host.probe import probe_host
from sandbox.host.supervisor import SupervisorStatus
from sandbox.plan import bpf as B
from sandbox.plan import build_plan
from sandbox.plan import seccomp as S
from sandbox.plan import seccomp_table as T
from sandbox.policy import load_policy

AT_FDCWD = 0xFFFFFF9C
READ_ONLY_FLAGS = (0, os.O_RDONLY | os.O_CLOEXEC, os.O_RDONLY | os.O_DIRECTORY)
WRITE_FLAGS = (
    os.O_WRONLY,
    os.O_RDWR,
    os.O_RDONLY | os.O_CREAT,
    os.O_WRONLY | os.O_TRUNC,
    os.O_WRONLY | os.O_APPEND,
    os.O_RDWR | os.O_TMPFILE,
    os.O_RDONLY | os.O_APPEND,
)


def _policy(world, text: str | None = None, **kw):
    path = world_policy(world, **kw)
    if text is not None:
        path.write_text(text)
    return load_policy(path, cwd=world.workspace, home=world.home)


def _opens(plan):
    N = T.SYSCALLS
    prog = plan.seccomp.program
    reads = {run_bpf(prog, N["open"], (0, f)) for f in READ_ONLY_FLAGS} | {
        run_bpf(prog, N["openat"], (AT_FDCWD, 0, f)) for f in READ_ONLY_FLAGS
    }
    writes = {run_bpf(prog, N["open"], (0, f)) for f in WRITE_FLAGS} | {
        run_bpf(prog, N["openat"], (AT_FDCWD, 0, f)) for f in WRITE_FLAGS
    }
    return reads, writes


def test_plan_walks_no_tree_and_covers_files_that_do_not_exist_yet(world):
    """No walk: a deny with no match at launch is covered like one with matches."""
    pol = _policy(world)
    os.unlink(world.dotenv)
    plan = build_plan(pol, probe_host(), simulate=False, environ={})
    cov = next(c for c in plan.carve_outs.coverage if c.pattern == "**/.env")
    assert cov.mechanisms == ("open-check",) and cov.covered
    assert "masks" not in plan.carve_outs.to_dict()
    assert plan.carve_outs.limits  # what the access-time decision does not cover is listed


def test_every_rung_uses_the_open_check(world):
    pol = _policy(world)
    for host in (probe_host(), probe_host().without(mount_ns=False, pid_ns=False, user_ns=False)):
        plan = build_plan(pol, host, simulate=False, environ={})
        assert plan.seccomp.open_check
        layer = plan.layer("carve-outs")
        assert layer.active and layer.mechanism == "supervisor open check"


def test_read_opens_stay_in_the_kernel_without_a_read_deny(world):
    """Only write/create opens go to the supervisor when no read deny reaches a readable grant;
    a read deny (the twin) sends read-only opens too."""
    text = (
        "version: 1\n"
        "extends: []\n"  # no baseline: its /etc/shadow deny reaches the /etc grant
        "actions:\n"
        "  - action: file_read\n"
        "    defaultEffect: deny\n"
        "    rules:\n"
        '      - { path: "./", effect: allow }\n'
        '      - { path: "/usr/", effect: allow }\n'
        "  - action: file_write\n"
        "    defaultEffect: deny\n"
        "    rules:\n"
        '      - { path: "./", effect: allow }\n'
    )
    pol = _policy(world, text)
    plan = build_plan(pol, probe_host(), simulate=False, environ={})
    assert plan.carve_outs.notify_writes and not plan.carve_outs.notify_reads
    reads, writes = _opens(plan)
    assert reads == {B.RET_ALLOW} and writes == {B.RET_USER_NOTIF}
    # openat2's flags are in memory BPF cannot read: every call goes to the supervisor, and
    # below Landlock ABI 3 it is refused instead (ENOSYS, libc falls back to openat: its
    # O_TRUNC is what that ABI cannot judge).  Both, whatever this kernel's ABI.
    for abi, want in ((7, B.RET_USER_NOTIF), (2, B.RET_ERRNO | errno.ENOSYS)):
        p = build_plan(pol, probe_host().without(landlock_abi=abi), simulate=False, environ={})
        assert run_bpf(p.seccomp.program, T.SYSCALLS["openat2"]) == want, abi
    assert run_bpf(plan.seccomp.program, T.SYSCALLS["creat"]) == B.RET_USER_NOTIF
    deny = '      - { path: "/usr/", effect: allow }\n      - { path: "**/.env", effect: deny }\n'
    twin = _policy(world, text.replace('      - { path: "/usr/", effect: allow }\n', deny))
    plan2 = build_plan(twin, probe_host(), simulate=False, environ={})
    assert plan2.carve_outs.notify_reads
    reads2, writes2 = _opens(plan2)
    assert reads2 == {B.RET_USER_NOTIF} and writes2 == {B.RET_USER_NOTIF}


def test_file_access_all_sends_every_open(world):
    text = (
        "version: 1\n"
        "extends: []\n"
        "audit: { file_access: all }\n"
        "actions:\n"
        "  - action: file_read\n"
        "    defaultEffect: deny\n"
        "    rules:\n"
        '      - { path: "./", effect: allow }\n'
    )
    plan = build_plan(_policy(world, text), probe_host(), simulate=False, environ={})
    reads, _ = _opens(plan)
    assert reads == {B.RET_USER_NOTIF}
    plan2 = build_plan(
        _policy(world, text.replace("audit: { file_access: all }\n", "")),
        probe_host(),
        simulate=False,
        environ={},
    )
    assert not plan2.carve_outs.notify_reads


def test_deny_outside_every_grant_is_landlocks(world):
    text = (
        "version: 1\n"
        "actions:\n"
        "  - action: file_read\n"
        "    defaultEffect: deny\n"
        "    rules:\n"
        '      - { path: "./", effect: allow }\n'
        '      - { path: "/opt/secret/", effect: deny }\n'
    )
    plan = build_plan(_policy(world, text), probe_host(), simulate=False, environ={})
    cov = next(c for c in plan.carve_outs.coverage if c.pattern == "/opt/secret/")
    assert cov.mechanisms == ("landlock",)


def test_no_supervisor_leaves_a_reachable_deny_uncovered(world):
    pol = _policy(world)
    plan = build_plan(
        pol,
        probe_host(),
        simulate=False,
        environ={},
        supervisor=SupervisorStatus(False, False, "x"),
    )
    assert any(c.pattern == "**/.env" for c in plan.carve_outs.uncovered)
    assert plan.layer("carve-outs").state == "absent"


def test_o_path_opens_stay_in_the_kernel():
    """ADDFD cannot inject an O_PATH file and an O_PATH fd reads nothing: left to the kernel
    (its reopen through /proc/self/fd/N is a judged open); a plain read is the twin."""
    N = T.SYSCALLS
    for reads in (True, False):
        prog = S.compile_seccomp(notify_open=True, notify_reads=reads).program
        assert run_bpf(prog, N["openat"], (AT_FDCWD, 0, os.O_PATH | os.O_CREAT)) == B.RET_ALLOW
        assert run_bpf(prog, N["open"], (0, os.O_PATH)) == B.RET_ALLOW
        twin = run_bpf(prog, N["openat"], (AT_FDCWD, 0, os.O_RDONLY))
        assert twin == (B.RET_USER_NOTIF if reads else B.RET_ALLOW)


def test_flag_filter_combines_with_the_truncate_refusal():
    prog = S.compile_seccomp(notify_open=True, notify_reads=False, refuse_truncate=True).program
    N = T.SYSCALLS
    assert run_bpf(prog, N["open"], (0, T.O_RDONLY | T.O_TRUNC)) == B.RET_ERRNO | 13
    assert run_bpf(prog, N["open"], (0, os.O_WRONLY)) == B.RET_USER_NOTIF
    assert run_bpf(prog, N["openat"], (AT_FDCWD, 0, 0)) == B.RET_ALLOW
