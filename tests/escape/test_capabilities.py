"""Root inside the sandbox is not root on the host: capabilities are dropped.

When landgate runs as root, the agent keeps only the capabilities ordinary file
work needs (chown, DAC override, setuid/setgid ...).  The attacks below need
one of the dropped ones; each has its allowed twin in the same test.
"""

from __future__ import annotations

import os

import pytest
from conftest import require_kernel
from launch.lg_helpers import landgate, py

from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel

SYSCALL = (
    "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    "def sc(*a):\n    r = libc.syscall(*a)\n    return r, ctypes.get_errno()\n"
)

# Bits of the kept set (linux/capability.h): CHOWN 0, DAC_OVERRIDE 1, FOWNER 3,
# FSETID 4, KILL 5, SETGID 6, SETUID 7, NET_BIND_SERVICE 10.
KEPT_MASK = sum(1 << c for c in (0, 1, 3, 4, 5, 6, 7, 10))


@pytest.fixture(autouse=True)
def _root_and_kernel():
    require_kernel(os.geteuid() == 0, "root: capability dropping is about landgate as root")
    h = probe_host()
    require_kernel(h.seccomp_filter and h.landlock_abi >= 1, "seccomp filter and Landlock")


def _caps(stdout: bytes, field: str) -> int:
    for line in stdout.decode().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"{field} not in output: {stdout!r}")


def test_agent_capability_sets_are_the_kept_set(world):
    p = landgate(world, ["/bin/sh", "-c", "grep -E '^Cap(Eff|Prm|Bnd|Inh|Amb)' /proc/self/status"])
    assert p.returncode == 0, p.stderr
    assert _caps(p.stdout, "CapEff") == KEPT_MASK
    assert _caps(p.stdout, "CapBnd") == KEPT_MASK
    assert _caps(p.stdout, "CapInh") == 0
    assert _caps(p.stdout, "CapAmb") == 0


def test_sethostname_denied_chown_allowed(world):
    # sethostname needs CAP_SYS_ADMIN; the sandbox shares the host's UTS namespace,
    # so a success would rename the host.  chown (CAP_CHOWN, kept) must still work.
    target = world.workspace / "src" / "app.ts"
    code = SYSCALL + (
        "name = b'pwned-by-agent'\n"
        "print('sethostname', sc(170, name, len(name)))\n"
        f"os.chown({str(target)!r}, 12345, 12345)\n"
        f"print('owner', os.stat({str(target)!r}).st_uid)\n"
    )
    before = os.uname().nodename
    p = landgate(world, py(code))
    after = os.uname().nodename
    if after != before:  # the attack worked: put the host's name back before failing
        import socket as _socket

        _socket.sethostname(before)
    assert after == before
    assert b"sethostname (-1, 1)" in p.stdout, p.stdout + p.stderr  # EPERM
    assert b"owner 12345" in p.stdout


def test_raw_socket_denied_udp_socket_allowed(world):
    # A raw socket sends packets without ever calling connect(), so it would
    # bypass the connect supervisor on a rung without a network namespace.
    code = (
        "import socket\n"
        "try:\n"
        "    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
        "    print('raw ok')\n"
        "except PermissionError as e:\n    print('raw denied', e.errno)\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); print('udp ok'); s.close()\n"
    )
    p = landgate(world, py(code))
    assert b"raw denied 1" in p.stdout, p.stdout + p.stderr
    assert b"udp ok" in p.stdout


def test_mknod_block_device_denied_fifo_allowed(world):
    # CAP_MKNOD would let the agent make a node for the host's disk inside the workspace.
    dev = world.workspace / "sda"
    fifo = world.workspace / "fifo"
    code = (
        "import os, stat\n"
        "try:\n"
        f"    os.mknod({str(dev)!r}, stat.S_IFBLK | 0o600, os.makedev(8, 0))\n"
        "    print('blk ok')\n"
        "except PermissionError as e:\n    print('blk denied', e.errno)\n"
        f"os.mkfifo({str(fifo)!r}); print('fifo ok')\n"
    )
    p = landgate(world, py(code))
    assert b"blk denied 1" in p.stdout, p.stdout + p.stderr
    assert b"fifo ok" in p.stdout
    assert not dev.exists()
