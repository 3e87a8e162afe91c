"""Filesystem escapes: each attack on a secret next to its allowed twin (real kernel)."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from conftest import require_kernel
from launch.lg_helpers import landgate, leaked, py, world_policy

from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _landlock():
    require_kernel(probe_host().landlock_abi >= 1, "Landlock")


def test_home_secrets_denied_while_workspace_reads(world):
    p = landgate(
        world, ["sh", "-c", f"cat {world.ssh_key}; cat {world.aws_credentials}; cat src/app.ts"]
    )
    assert not leaked(world, p)
    assert b"Permission denied" in p.stderr
    assert b"export const answer = 42;" in p.stdout


def test_dotenv_root_and_nested_denied(world):
    p = landgate(world, ["sh", "-c", "cat .env pkg/nested/.env; echo; cat README.md"])
    assert not leaked(world, p)
    assert b"# demo workspace" in p.stdout


def test_symlink_to_secret(world):
    p = landgate(
        world,
        [
            "sh",
            "-c",
            (f"ln -s {world.ssh_key} k; ln -s .env e; ln -s src/app.ts a;cat k; cat e; cat a"),
        ],
    )
    assert not leaked(world, p)
    assert b"answer = 42" in p.stdout


def test_hardlink_rename_copy_of_dotenv(world):
    script = (
        "ln .env hl; echo ln=$?; mv .env moved; echo mv=$?; cp .env copy; cat copy hl moved;"
        " mv pkg pkg2 && cat pkg2/nested/.env; cp src/app.ts app2 && cat app2"
    )
    p = landgate(world, ["sh", "-c", script])
    # No masks: link and rename may succeed (they are not reads); the object stays denied by
    # its device + inode (the supervisor's rename/link check adds it to the identity set).
    assert not leaked(world, p)
    assert b"answer = 42" in p.stdout  # the allowed twin: copying a normal file works


def test_proc_self_root_alias(world):
    p = landgate(
        world,
        [
            "sh",
            "-c",
            (
                f"cat /proc/self/root{world.dotenv} /proc/self/root{world.ssh_key};"
                f" cat /proc/self/root{world.app_source}"
            ),
        ],
    )
    assert not leaked(world, p)
    assert b"answer = 42" in p.stdout


def test_opath_then_proc_fd_reopen(world):
    code = (
        "import os\n"
        "for name in ('.env', 'src/app.ts'):\n"
        "    try:\n"
        "        fd = os.open(name, os.O_PATH)\n"  # the open check may refuse it here
        "        print(open(f'/proc/self/fd/{fd}', 'rb').read())\n"
        "    except OSError as e:\n"
        "        print('denied', e)\n"
    )
    p = landgate(world, py(code))
    assert not leaked(world, p)
    assert b"answer = 42" in p.stdout


def test_open_by_handle_at(world):
    # The handle of the real .env inode, computed outside the sandbox.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(8 + 128)
    ctypes.memmove(buf, (128).to_bytes(4, "little"), 4)
    mount_id = ctypes.c_int()
    rc = libc.name_to_handle_at(-100, str(world.dotenv).encode(), buf, ctypes.byref(mount_id), 0)
    require_kernel(rc == 0, "name_to_handle_at on this filesystem")
    handle = buf.raw.hex()
    code = (
        f"import ctypes, os\n"
        f"libc = ctypes.CDLL(None, use_errno=True)\n"
        f"h = ctypes.create_string_buffer(bytes.fromhex('{handle}'))\n"
        f"mfd = os.open('.', os.O_RDONLY)\n"
        f"fd = libc.open_by_handle_at(mfd, h, os.O_RDONLY)\n"
        f"print('fd', fd, 'errno', ctypes.get_errno())\n"
        f"if fd >= 0: print(os.read(fd, 200))\n"
        f"print(open('src/app.ts').read())\n"
    )
    p = landgate(world, py(code))
    assert not leaked(world, p)
    assert b"fd -1 errno 1" in p.stdout  # EPERM from the hardening filter
    assert b"answer = 42" in p.stdout


def test_write_outside_denied_inside_works(world):
    outside = world.root / "outside.txt"
    p = landgate(
        world,
        [
            "sh",
            "-c",
            (
                f"echo pwned > {outside}; echo pwned > {world.home}/x;"
                " echo fine > inside.txt && cat inside.txt"
            ),
        ],
    )
    assert not outside.exists() and not (world.home / "x").exists()
    assert b"fine" in p.stdout
    assert (world.workspace / "inside.txt").read_text() == "fine\n"


def test_protected_paths(world):
    # Home writable and readable by policy: ~/.bashrc stays write-protected, the key dir unreadable.
    keydir = world.home / ".config" / "landgate"
    keydir.mkdir(parents=True)
    (keydir / "key").write_bytes(world.secret)
    (world.workspace / ".git" / "hooks").mkdir(parents=True)
    for d in (keydir.parent, keydir, world.workspace / ".git", world.workspace / ".git" / "hooks"):
        os.chmod(d, 0o755)
    os.chmod(keydir / "key", 0o644)
    pol = world_policy(
        world,
        extra_read='      - { path: "~/.config/", effect: allow }',
        extra_write='      - { path: "~/", effect: allow }',
    )
    script = (
        f"echo evil >> {world.home}/.bashrc; echo b=$?; cat {keydir}/key;"
        f" echo hook > .git/hooks/pre-commit; echo h=$?; echo notes > {world.home}/notes.txt;"
        f" echo pol >> {pol}; echo rules > .landgate.yaml; echo l=$?;"
        f" mkdir -p sub; echo rules > sub/x.yaml; mv sub/x.yaml sub/.landgate.yaml; echo m=$?;"
        " echo rules > landgate.yaml; echo ok"
    )
    p = landgate(world, ["sh", "-c", script], policy=pol)
    assert not leaked(world, p)
    assert (world.home / ".bashrc").read_text() == "# fake bashrc\n"
    assert not (world.workspace / ".git" / "hooks" / "pre-commit").exists()
    assert b"pol" not in pol.read_bytes()
    # a policy the next `landgate run` here would load: refused where none exists yet,
    # created or renamed into place
    assert b"l=0" not in p.stdout and b"m=1" in p.stdout, p.stdout + p.stderr  # dash: 2
    assert not (world.workspace / ".landgate.yaml").exists()
    assert not (world.workspace / "sub" / ".landgate.yaml").exists()
    assert (world.workspace / "landgate.yaml").read_text() == "rules\n"  # allowed twin
    assert (world.home / "notes.txt").read_text() == "notes\n"  # allowed twin


def test_memfd_exec(world):
    code = (
        "import ctypes, os, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = libc.memfd_create(b'x', 0)\n"
        "os.write(fd, open('/bin/echo', 'rb').read())\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try: os.execv(f'/proc/self/fd/{fd}', ['echo', 'MEMFD-RAN'])\n"
        "    except OSError as e: print('execve', e.errno, flush=True)\n"
        "    try: os.execve(fd, ['echo', 'FEXECVE-RAN'], {})\n"
        "    except OSError as e: print('fexecve', e.errno, flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "os.execv('/bin/echo', ['echo', 'PLAIN-RAN'])\n"
    )
    p = landgate(world, py(code))
    assert b"MEMFD-RAN" not in p.stdout and b"FEXECVE-RAN" not in p.stdout
    assert b"fexecve 13" in p.stdout  # EACCES: execveat(AT_EMPTY_PATH) refused by seccomp
    assert b"PLAIN-RAN" in p.stdout


def test_ld_so_running_a_binary(world):
    """The ELF loader maps a binary with mmap(PROT_EXEC), which Landlock does not gate:
    a readable, non-executable copy runs through ld.so although a direct exec is refused.
    This test records the kernel's real behaviour (the supervisor's execve check sees ld.so)."""
    data = world.root / "data"
    data.mkdir()
    shutil.copy("/bin/echo", data / "echo")
    os.chmod(data, 0o755)
    os.chmod(data / "echo", 0o755)
    pol = world_policy(world, extra_read=f'      - {{ path: "{data}/", effect: allow }}')
    ld = "/lib64/ld-linux-x86-64.so.2"
    p = landgate(
        world,
        [
            "sh",
            "-c",
            (
                f"{data}/echo DIRECT; echo direct=$?; {ld} /bin/echo VIA-LD-ALLOWED;"
                f" {ld} {data}/echo VIA-LD-DATA"
            ),
        ],
        policy=pol,
    )
    assert b"DIRECT" not in p.stdout.replace(b"direct=", b"")
    assert b"direct=126" in p.stdout  # Landlock EXECUTE: not granted beneath data/
    assert b"VIA-LD-ALLOWED" in p.stdout
    assert b"VIA-LD-DATA" in p.stdout  # known: mmap(PROT_EXEC) is not a Landlock right


def test_readonly_grant_stat_modes(world):
    """Allowed twin of the write tests: a read-only grant reads but cannot create."""
    p = landgate(world, ["sh", "-c", "ls /etc/hostname && touch /etc/lg-test; echo t=$?"])
    assert b"t=1" in p.stdout
    assert not os.path.exists("/etc/lg-test")
    assert stat.S_ISREG(os.stat("/etc/hostname").st_mode)
