"""The sandbox's devices (issue 13): its own minimal /dev on the namespace rungs, node by node
Landlock grants without a namespace.  `/dev/kvm` (VMs) and `/dev/userfaultfd` (a userfaultfd
although the syscall is blocked) are unreachable under an ordinary policy that reads `/dev/**`;
the twins: /dev/null, /dev/urandom, a new pty through /dev/ptmx, /dev/shm and the fd links
work, and a policy that names /dev/kvm gets it."""

from __future__ import annotations

import os

import pytest
from conftest import require_kernel
from launch.lg_helpers import landgate, py, world_policy

from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel

PROBE = """
import errno, os, pty
out = []
for p in ("/dev/kvm", "/dev/userfaultfd"):
    try:
        os.close(os.open(p, os.O_RDWR)); out.append(p + "=open")
    except OSError as e:
        out.append(p + "=" + errno.errorcode[e.errno])
with open("/dev/null", "w") as f:
    f.write("x")
out.append("urandom=%d" % len(open("/dev/urandom", "rb").read(8)))
m, s = os.openpty()  # /dev/ptmx -> pts/ptmx, a private devpts instance
os.write(m, b"typed\\n")
out.append("pty=" + os.read(s, 16).decode().strip())
out.append("shm=" + str(os.path.isdir("/dev/shm")))
out.append("fd=" + os.readlink("/dev/stdin"))
print(" ".join(out))
"""

DEV_READ = '      - { path: "/dev/**", effect: allow }\n'


def _namespaces() -> None:
    h = probe_host()
    require_kernel(
        h.seccomp_filter and h.landlock_abi >= 1 and h.mount_ns and h.pid_ns,
        "seccomp, Landlock, mount and pid namespaces",
    )


def test_host_devices_absent_minimal_dev_works(world):
    _namespaces()
    pol = world_policy(world, extra_read=DEV_READ, extra_write=DEV_READ)
    p = landgate(world, py(PROBE), policy=pol)
    out = p.stdout.decode().split()
    assert p.returncode == 0, p.stderr
    # Root runs this test: on the host both nodes open for root.  In the sandbox they do
    # not exist at all, whatever the policy says about /dev/**.
    assert "/dev/kvm=ENOENT" in out and "/dev/userfaultfd=ENOENT" in out, out
    assert "urandom=8" in out and "pty=typed" in out and "shm=True" in out, out
    assert "fd=/proc/self/fd/0" in out, out


# Host devices outside the minimal set.  Whether a machine has them is the machine's
# business (a VM under QEMU's TCG has no /dev/kvm): a test about one runs where it exists.
HOST_ONLY = ("/dev/kvm", "/dev/userfaultfd")


@pytest.mark.parametrize("device", HOST_ONLY)
def test_policy_naming_a_device_gets_it(world, device):
    _namespaces()
    if not os.path.exists(device):
        pytest.skip(f"this machine has no {device} (a device, not a kernel feature)")
    # the twin: a policy that names the device gets it, and only it
    named = f'      - {{ path: "{device}", effect: allow }}\n'
    pol = world_policy(world, extra_read=named, extra_write=named)
    p = landgate(world, py(PROBE), policy=pol)
    out = p.stdout.decode().split()
    assert p.returncode == 0, p.stderr
    assert f"{device}=open" in out, out
    for other in HOST_ONLY:
        if other != device:
            assert f"{other}=ENOENT" in out, out


def test_no_namespace_rung_grants_dev_node_by_node(world, capfd):
    """Without a mount namespace the host's /dev is the sandbox's: a `/dev/**` grant is
    made node by node, so /dev/kvm and /dev/userfaultfd, where the machine has them, are
    refused by Landlock (EACCES) while the minimal nodes and ptys work."""
    h = probe_host()
    require_kernel(h.seccomp_filter and h.landlock_abi >= 1, "seccomp and Landlock")
    present = [d for d in HOST_ONLY if os.path.exists(d)]
    if not present:
        pytest.skip("this machine has neither /dev/kvm nor /dev/userfaultfd (devices)")
    host = h.without(mount_ns=False, pid_ns=False, user_ns=False)
    pol_path = world_policy(world, extra_read=DEV_READ, extra_write=DEV_READ)
    rc = _run_inprocess(world, pol_path, host)
    out = capfd.readouterr().out.split()
    assert rc == 0, out
    for d in HOST_ONLY:  # the host's own node: Landlock refuses it; none: the kernel's ENOENT
        assert f"{d}={'EACCES' if d in present else 'ENOENT'}" in out, out
    assert "urandom=8" in out and "pty=typed" in out, out


def _run_inprocess(world, pol_path, host) -> int:
    from sandbox.policy import load_policy
    from sandbox.session import RunOptions, run_session

    pol = load_policy(pol_path, cwd=world.workspace, home=world.home)
    options = RunOptions(
        argv=py(PROBE),
        policy=pol,
        warn=lambda m: None,
        host=host,
        env=dict(world.env),
        cwd=str(world.workspace),
    )
    return run_session(options)
