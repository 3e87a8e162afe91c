"""The hardening filter and Landlock scoping (DESIGN §2, last row): attack + allowed twin."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest
from conftest import require_kernel
from launch.lg_helpers import landgate, py

from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel

SYSCALL = (
    "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    "def sc(*a):\n    r = libc.syscall(*a)\n    return r, ctypes.get_errno()\n"
)


@pytest.fixture(autouse=True)
def _seccomp():
    h = probe_host()
    require_kernel(h.seccomp_filter and h.landlock_abi >= 1, "seccomp filter and Landlock")


def run_py(world, code: str):
    return landgate(world, py(SYSCALL + code))


def test_io_uring_setup(world):
    p = run_py(
        world,
        "print('uring', sc(425, 8, ctypes.create_string_buffer(120)))\n"
        "print('getpid', sc(39)[0] > 0)",
    )
    assert b"uring (-1, 38)" in p.stdout  # ENOSYS
    assert b"getpid True" in p.stdout


def test_ptrace(world):
    p = run_py(
        world,
        "pid = os.fork()\nif pid == 0:\n    import time; time.sleep(5); os._exit(0)\n"
        "print('attach', sc(101, 16, pid, 0, 0))\n"  # PTRACE_ATTACH
        "print('kill0', os.kill(pid, 0))\nos.kill(pid, 9)",
    )
    assert b"attach (-1, 1)" in p.stdout  # EPERM
    assert b"kill0 None" in p.stdout


def test_unshare_newuser(world):
    p = run_py(world, "print('newuser', sc(272, 0x10000000))\nprint('fs', sc(272, 0x200))")
    assert b"newuser (-1, 1)" in p.stdout
    assert b"fs (0," in p.stdout  # CLONE_FS carries no namespace: allowed


def test_clone_newuser_and_clone3(world):
    p = run_py(
        world,
        "print('clone', sc(56, 0x10000000 | 17, 0, 0, 0, 0))\n"
        "print('clone3', sc(435, 0, 0))\n"
        "import subprocess; print(subprocess.run(['true']).returncode)",
    )
    assert b"clone (-1, 1)" in p.stdout
    assert b"clone3 (-1, 38)" in p.stdout  # ENOSYS: libc falls back to clone
    assert b"\n0\n" in p.stdout  # fork/exec still works


def test_mount(world):
    os.makedirs(world.workspace / "mnt")
    p = run_py(
        world,
        "print('mount', sc(165, b'none', b'mnt', b'tmpfs', 0, 0))\n"
        "print('fsopen', sc(430, b'tmpfs', 0))\n"
        "print('umount', sc(166, b'/proc', 0))\n"
        "os.mkdir('made'); print('mkdir ok')",
    )
    assert b"mount (-1, 1)" in p.stdout and b"fsopen (-1, 1)" in p.stdout
    assert b"umount (-1, 1)" in p.stdout
    assert b"mkdir ok" in p.stdout


def test_x32_syscall_number_kills(world):
    p = run_py(
        world, "print('getpid', sc(39)[0] > 0, flush=True)\nsc(0x40000000 | 39)\nprint('survived')"
    )
    assert b"getpid True" in p.stdout
    assert b"survived" not in p.stdout
    assert p.returncode == 128 + signal.SIGSYS


def test_tiocsti(world):
    p = run_py(
        world,
        "import pty, fcntl, termios, struct\nm, s = pty.openpty()\n"
        "print('sti', sc(16, s, termios.TIOCSTI, ctypes.c_char_p(b'x')))\n"
        "print('winsz', len(fcntl.ioctl(s, termios.TIOCGWINSZ, b'\\0' * 8)))",
    )
    assert b"sti (-1, 1)" in p.stdout
    assert b"winsz 8" in p.stdout


def test_socket_families(world):
    p = run_py(
        world,
        "import socket\n"
        "for fam in (17, 40, 38):\n"  # AF_PACKET, AF_VSOCK, AF_ALG
        "    print('fam', fam, sc(41, fam, 3 if fam == 17 else 1, 0))\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); print('inet ok')",
    )
    for fam in (b"17", b"40", b"38"):
        assert b"fam " + fam + b" (-1, 97)" in p.stdout  # EAFNOSUPPORT
    assert b"inet ok" in p.stdout


def test_personality(world):
    p = run_py(
        world, "print('rie', sc(135, 0x0400000))\nprint('query', sc(135, 0xffffffff)[0] >= 0)"
    )
    assert b"rie (-1, 1)" in p.stdout
    assert b"query True" in p.stdout


def test_kill_outside_process(world):
    victim = subprocess.Popen(["sleep", "30"])
    try:
        p = run_py(
            world,
            f"try:\n    os.kill({victim.pid}, 9); print('sent')\n"
            f"except OSError as e: print('kill failed', e.errno)\n"
            "pid = os.fork()\nif pid == 0:\n    import time; time.sleep(30)\n"
            "os.kill(pid, 9); print('own child', os.waitpid(pid, 0)[1])",
        )
        time.sleep(0.1)
        assert victim.poll() is None  # still alive
        assert b"kill failed" in p.stdout
        assert b"own child 9" in p.stdout
    finally:
        victim.kill()
        victim.wait()


def test_kill_outside_without_pid_namespace_scoped_by_landlock(world, capfd):
    """Without a pid namespace the pid is visible: Landlock ABI 6 signal scoping refuses it."""
    require_kernel(
        probe_host().landlock_abi >= 6,
        "Landlock ABI 6 scoping",
        landlock_gap="signal/abstract-unix scoping",
    )
    from launch.test_run import run_inprocess

    victim = subprocess.Popen(["sleep", "30"])
    try:
        host = probe_host().without(mount_ns=False, pid_ns=False, user_ns=False)
        rc = run_inprocess(
            world,
            py(
                f"import os\ntry:\n    os.kill({victim.pid}, 9); print('sent')\n"
                f"except OSError as e: print('kill failed', e.errno)"
            ),
            host=host,
            best_effort=True,
        )
        out = capfd.readouterr().out
        assert rc == 0
        assert "kill failed 1" in out  # EPERM from the Landlock scope
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_abstract_unix_socket_to_outside(world):
    require_kernel(
        probe_host().landlock_abi >= 6,
        "Landlock ABI 6 scoping",
        landlock_gap="signal/abstract-unix scoping",
    )
    name = f"\0landgate-test-{os.getpid()}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(name)
    srv.listen(1)
    srv.settimeout(0.5)
    try:
        code = (
            f"import socket\nc = socket.socket(socket.AF_UNIX)\n"
            f"try:\n    c.connect({name!r}); c.send(b'LEAK'); print('connected')\n"
            f"except OSError as e: print('refused', e.errno)\n"
            f"s = socket.socket(socket.AF_UNIX); s.bind({name + '-in'!r}); s.listen(1)\n"
            f"c2 = socket.socket(socket.AF_UNIX); c2.connect({name + '-in'!r}); print('inner ok')"
        )
        p = landgate(world, py(code))
        assert b"refused 1" in p.stdout  # EPERM: outside the Landlock domain
        assert b"inner ok" in p.stdout
        with pytest.raises(OSError):
            srv.accept()
    finally:
        srv.close()
