"""The open check's fast paths (csrc/supervise_creds.c), real kernel, root rung.

The open check takes the caller's fsuid/fsgid from PIDFD_GET_INFO and its groups from
/proc/TID/status only when they matter (fsuid != 0), and an opener thread keeps wearing
the last caller's ids into its next job, switching only what differs.  What could go
wrong is an opener that still wears another caller's supplementary groups (or none read
at all): these tests run callers with different groups one after the other in one
session, so the same opener serves them, and assert on the bytes of a group-readable
file.  Each denial has its allowed twin in the same session.
"""

from __future__ import annotations

import os

import pytest
from conftest import require_kernel
from launch.lg_helpers import world_policy

from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel

GID = 4242  # a group nobody is in
SECRET = "group-only-bytes"


@pytest.fixture(autouse=True)
def _root_rung():
    h = probe_host()
    require_kernel(h.landlock_abi >= 1 and h.seccomp_notify, "Landlock + seccomp user notification")
    require_kernel(os.geteuid() == 0, "root: the open check switches ids only as root")


def run(world, script: str, capfd) -> tuple[int, str, str]:
    """`sh -c script` under the world's policy, namespace-less (the agent's ids are the
    host's, so `setpriv` can take any uid and group)."""
    from sandbox.policy import load_policy
    from sandbox.session import RunOptions, run_session

    pol = load_policy(world_policy(world), cwd=world.workspace, home=world.home)
    capfd.readouterr()
    options = RunOptions(
        argv=["sh", "-c", script],
        policy=pol,
        host=probe_host().without(mount_ns=False, pid_ns=False, user_ns=False),
        env=dict(world.env),
        cwd=str(world.workspace),
        audit_dir=str(world.root / "audit"),
    )
    rc = run_session(options)
    out, err = capfd.readouterr()
    return rc, out, err


def _group_file(world):
    f = world.workspace / "grp.txt"
    f.write_text(SECRET + "\n")
    os.chown(f, 0, GID)
    os.chmod(f, 0o640)
    os.chmod(world.workspace, 0o755)
    return f


AS_MEMBER = f"setpriv --reuid=65534 --regid=65534 --groups={GID} cat grp.txt"
AS_NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups cat grp.txt"


def test_groups_are_the_callers_not_the_last_callers(world, capfd):
    """A member of the group reads the file, then a non-member is refused by the file's
    modes: the opener that served the member must not still wear its group."""
    _group_file(world)
    _rc, out, err = run(
        world,
        f"{AS_MEMBER}; echo member=$?; {AS_NOBODY}; echo nobody=$?; {AS_MEMBER}; echo again=$?",
        capfd,
    )
    assert "member=0" in out and "again=0" in out, err  # allowed twins, before and after
    assert "nobody=1" in out and "Permission denied" in err
    assert out.count(SECRET) == 2


def test_root_caller_between_group_callers(world, capfd):
    """Root (fsuid 0: groups not taken, the worn ones left) reads; the non-member after it
    is still refused, the member after that still reads."""
    _group_file(world)
    _rc, out, err = run(
        world,
        f"cat grp.txt; echo root=$?; {AS_NOBODY}; echo nobody=$?; {AS_MEMBER}; echo member=$?; "
        f"cat grp.txt; echo root2=$?; {AS_NOBODY}; echo nobody2=$?",
        capfd,
    )
    assert "root=0" in out and "member=0" in out and "root2=0" in out, err
    assert "nobody=1" in out and "nobody2=1" in out
    assert out.count(SECRET) == 3
