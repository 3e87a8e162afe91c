"""One root per session (supervise_caller.c): the supervisor resolves every exec's absolute
names from the root it opened at the session's first exec, not from each caller's
/proc/TID/root.  That is sound only while no sandboxed task can change its root or its mount
view, which the launcher's filter refuses (chroot, pivot_root, setns, the mount family, new
namespaces).  The attack: a caller that could chroot into a directory where /bin/true is a
link to a denied program would have the supervisor judge the real /bin/true (allowed, out of
the agent's reach: the fast path) while the kernel runs the denied one."""

from __future__ import annotations

import ctypes
import errno
import subprocess
from pathlib import Path

import pytest
from conftest import require_kernel
from launch.lg_helpers import landgate, py

from sandbox.host.probe import probe_host

from .conftest import make_policy

POLICY = [("chroot_exec*", "allow"), ("true*", "allow"), ("mark-denied*", "deny")]


@pytest.fixture
def jail(world, bins) -> Path:
    """A directory to chroot into: /bin/true there is a link to the denied program, which
    leaves a marker in the jail's / when it runs (static: nothing else is in the jail)."""
    root = world.root / "jail"
    (root / "bin").mkdir(parents=True)
    helper = Path(__file__).parent / "helpers" / "marker.c"
    out = root / "mark-denied"
    subprocess.run(["gcc", "-O2", "-static", "-o", str(out), str(helper)], check=True)
    (root / "bin" / "true").symlink_to("../mark-denied")
    return root


def markers(jail: Path) -> list[str]:
    return sorted(p.name for p in jail.iterdir() if p.name.startswith("marker."))


def test_chroot_cannot_aim_an_allowed_name_at_a_denied_program(supervised, jail, bins, world):
    """The attack: chroot into the jail, exec /bin/true.  The harness's filter refuses chroot
    as the launcher's does, so /bin/true is the session root's and the denied program never
    runs.  (With chroot let through, this test fails: the marker appears, because the
    supervisor judged the session root's /bin/true, allowed and on the fast path.)"""
    ws = world.root / "ws"
    ws.mkdir()
    r = supervised(
        [str(bins / "chroot_exec"), str(jail), "/bin/true", "/"],
        make_policy(POLICY),
        plan_info={"write_trees": [str(ws)]},
    )
    assert markers(jail) == []  # the denied program never ran
    assert b"chroot Operation not permitted" in r.stdout, r.stdout
    assert r.returncode == 0  # the allowed twin: the session root's /bin/true ran
    ev = [e for e in r.events if e.action == "shell_exec" and e.target.split()[0] == "true"]
    assert ev and ev[0].result == "allow" and "verified" not in ev[0].flags


def test_the_jails_link_named_from_outside_is_denied(supervised, jail, bins, world):
    """The denial twin: the same link named by its path in the session root is judged as
    the object it reaches, the denied program: refused, and nothing ran."""
    ws = world.root / "ws"
    ws.mkdir()
    r = supervised(
        [str(bins / "chroot_exec"), str(jail), str(jail / "bin" / "true"), "/"],
        make_policy(POLICY),
        plan_info={"write_trees": [str(ws)]},
    )
    assert markers(jail) == []
    assert b"exec Permission denied" in r.stdout, r.stdout
    ev = [e for e in r.events if e.action == "shell_exec" and e.target.split()[0] == "true"]
    assert ev and ev[0].result == "deny"


SYSCALL = (
    "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    "def sc(*a):\n    r = libc.syscall(*a)\n    return r, ctypes.get_errno()\n"
)
# chroot to a missing directory and setns on fd -1 fail in the kernel with ENOENT and EBADF
# (checked before any capability); the filter's refusal is EPERM.  Nothing changes either way.
PREMISE = (
    "print('chroot', sc(161, b'/nonexistent-landgate-root'))\n"
    "print('setns', sc(308, -1, 0))\n"
    "print('pivot_root', sc(155, b'/nonexistent-a', b'/nonexistent-b'))\n"
    "print('unshare_ns', sc(272, 0x00020000))\n"
)


@pytest.mark.kernel
def test_the_launchers_filter_keeps_the_premise(world):
    h = probe_host()
    require_kernel(h.seccomp_filter and h.landlock_abi >= 1, "seccomp filter and Landlock")
    p = landgate(world, py(SYSCALL + PREMISE))
    out = p.stdout.decode()
    for name in ("chroot", "setns", "pivot_root", "unshare_ns"):
        assert f"{name} (-1, {errno.EPERM})" in out, out


def test_premise_probe_twin_outside_the_sandbox():
    # the allowed twin: outside the filter the same calls reach the kernel, which answers
    # something other than EPERM for the first two (so EPERM above is the filter's)
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(161, b"/nonexistent-landgate-root") == -1
    assert ctypes.get_errno() == errno.ENOENT
    assert libc.syscall(308, -1, 0) == -1
    assert ctypes.get_errno() == errno.EBADF
