"""The key directory through another mount (csrc/supervise_open_tree.c), on the real kernel:
a bind mount of a directory *deeper* than its top level, and a creation through a bind
mount that must leave nothing behind.

The sandbox runs as root with its home readable and writable by policy, so Landlock alone
would let it read and create there: only the supervisor's tree check refuses.  Each attack
has its allowed twin (the same operation through a bind mount of a plain directory), and
each was checked to fail with its protection off (the commit messages say how).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import require_kernel
from launch.lg_helpers import landgate, world_policy

from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _root_landlock():
    require_kernel(probe_host().landlock_abi >= 1, "Landlock")
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root")  # the attack's set-up, not a kernel feature


def _run(world, script: str) -> subprocess.CompletedProcess:
    """`landgate run sh -c script`, the key directory at ~/.config/landgate (in the home the
    policy grants for reading and writing)."""
    pol = world_policy(
        world,
        extra_read='      - { path: "~/", effect: allow }',
        extra_write='      - { path: "~/", effect: allow }',
    )
    env = {"XDG_CONFIG_HOME": str(world.home / ".config")}
    return landgate(world, ["sh", "-c", script], policy=pol, env=env)


def _keydir(world) -> Path:
    p = _run(world, "true")
    assert p.returncode == 0, p.stderr
    kd = world.home / ".config" / "landgate"
    assert (kd / "audit.key").is_file()
    return kd


def _codes(out: bytes) -> dict[str, str]:
    return dict(x.split("=", 1) for x in out.decode().split() if "=" in x)


class _Binds:
    """Bind mounts made for one test, undone whatever happens."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def bind(self, src: Path, dst: Path) -> Path:
        dst.mkdir()
        subprocess.run(["mount", "--bind", str(src), str(dst)], check=True)
        self.points.append(dst)
        return dst

    def undo(self) -> None:
        for m in reversed(self.points):
            subprocess.run(["umount", str(m)], check=False)


@pytest.fixture
def binds():
    b = _Binds()
    try:
        yield b
    finally:
        b.undo()


READ = "python3 -c 'import sys; sys.stdout.write(open(sys.argv[1]).read())' {} >/dev/null 2>&1"


def test_a_bind_of_a_directory_deep_in_the_key_directory(world, binds):
    """`<keydir>/sub/deeper` bound elsewhere: its files are the key directory's at any
    depth (read, write, create), though no path rule names the bind mount's paths."""
    kd = _keydir(world)
    deep = kd / "sub" / "deeper"
    deep.mkdir(parents=True)
    (deep / "secret").write_text("deep secret\n")
    (deep / "inner").mkdir()
    (deep / "inner" / "secret").write_text("inner secret\n")
    plain = world.home / "plain" / "sub" / "deeper"
    plain.mkdir(parents=True)
    (plain / "notes").write_text("twin notes\n")
    a = binds.bind(deep, world.home / "alias-deep")
    t = binds.bind(plain, world.home / "alias-twin")
    p = _run(
        world,
        f"{READ.format(a / 'secret')}; echo read=$?;"
        f" {READ.format(a / 'inner/secret')}; echo read_inner=$?;"
        f" echo x >> {a}/secret; echo append=$?;"
        f" echo new > {a}/new; echo create=$?;"
        f" echo new > {a}/inner/new; echo create_inner=$?;"
        f" cat {t}/notes; echo twin_read=$?;"
        f" echo new > {t}/new; echo twin_create=$?",
    )
    got = _codes(p.stdout)
    for k in ("read", "read_inner", "append", "create", "create_inner"):
        assert got.get(k) not in (None, "0"), (k, p.stdout, p.stderr)
    assert b"secret" not in p.stdout
    assert got.get("twin_read") == "0" and got.get("twin_create") == "0", (p.stdout, p.stderr)
    assert b"twin notes" in p.stdout
    assert (deep / "secret").read_text() == "deep secret\n"
    assert not (deep / "new").exists() and not (deep / "inner" / "new").exists()
    assert (plain / "new").read_text() == "new\n"  # the twin's file, made


def test_a_refused_creation_through_another_mount_leaves_no_file(world, binds):
    """O_CREAT of a new name in the key directory through a bind mount is refused before
    anything is made: no empty file is left in the key directory (every creating open:
    the shell's `>`, O_EXCL, O_RDONLY|O_CREAT, creat(2), O_TMPFILE).  The twin: the same
    opens through a bind mount of a plain directory create their files."""
    kd = _keydir(world)
    plain = world.home / "plain"
    plain.mkdir()
    a = binds.bind(kd, world.home / "alias")
    up = binds.bind(world.home / ".config", world.home / "alias-up")
    t = binds.bind(plain, world.home / "alias-twin")
    code = (
        "import os, sys\n"
        "flags = {'trunc': os.O_WRONLY | os.O_CREAT | os.O_TRUNC,\n"
        "         'excl': os.O_WRONLY | os.O_CREAT | os.O_EXCL,\n"
        "         'rdonly': os.O_RDONLY | os.O_CREAT}\n"
        "for d in sys.argv[1:]:\n"
        "    for k, f in flags.items():\n"
        "        try:\n"
        "            os.close(os.open(f'{d}/made-{k}', f, 0o600))\n"
        "            print(f'{d}:{k}=0')\n"
        "        except OSError as e:\n"
        "            print(f'{d}:{k}={e.errno}')\n"
        "    try:\n"
        "        os.close(os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o600))\n"
        "        print(f'{d}:tmpfile=0')\n"
        "    except OSError as e:\n"
        "        print(f'{d}:tmpfile={e.errno}')\n"
    )
    (world.workspace / "c.py").write_text(code)
    before = sorted(f.name for f in kd.rglob("*"))
    p = _run(
        world,
        f"python3 c.py {a} {a}/witness {up}/landgate {t};"
        f" printf '' > {a}/witness/shell.json; echo shell=$?",
    )
    # nothing left behind by any refused creation (the writer's own files excepted:
    # this session's witness and lock were there before it)
    after = sorted(f.name for f in kd.rglob("*"))
    assert not [n for n in after if n.startswith("made-") or n == "shell.json"], after
    assert set(after) - set(before) <= {"expiry.stamp"}, (before, after)
    got = _codes(p.stdout)
    for d in (a, a / "witness", up / "landgate"):
        for k in ("trunc", "excl", "rdonly", "tmpfile"):
            assert got.get(f"{d}:{k}") == "13", (d, k, p.stdout, p.stderr)
    assert got.get("shell") not in (None, "0"), (p.stdout, p.stderr)
    for k in ("trunc", "excl", "rdonly", "tmpfile"):
        assert got.get(f"{t}:{k}") == "0", (k, p.stdout, p.stderr)
    assert sorted(n.name for n in plain.iterdir()) == ["made-excl", "made-rdonly", "made-trunc"]


def test_the_audit_directory_through_another_mount(world, binds):
    """The audit trail's directory bound elsewhere: no file can be created in it through
    the bind mount (a name its path rules would refuse), nor can its segment be appended
    to; nothing is left behind.  The twin: a bind of a plain directory creates."""
    state = world.home / ".local" / "state"
    env = {"XDG_CONFIG_HOME": str(world.home / ".config"), "XDG_STATE_HOME": str(state)}
    pol = world_policy(
        world,
        extra_read='      - { path: "~/", effect: allow }',
        extra_write='      - { path: "~/", effect: allow }',
    )
    p = landgate(world, ["true"], policy=pol, env=env)
    assert p.returncode == 0, p.stderr
    audit = state / "landgate" / "audit"
    seg = sorted(audit.glob("trail-*.jsonl"))[-1]
    plain = world.home / "plain"
    plain.mkdir()
    a = binds.bind(audit, world.home / "alias-audit")
    up = binds.bind(state / "landgate", world.home / "alias-state")
    t = binds.bind(plain, world.home / "alias-twin")
    before = sorted(f.name for f in audit.rglob("*"))
    script = (
        f"echo x > {a}/forged.jsonl; echo create=$?;"
        f" echo x > {up}/audit/forged2.jsonl; echo create_up=$?;"
        f" echo x >> {a}/{seg.name}; echo append=$?;"
        f" echo x > {t}/made; echo twin=$?"
    )
    p = landgate(world, ["sh", "-c", script], policy=pol, env=env)
    after = sorted(f.name for f in audit.rglob("*"))
    assert "forged.jsonl" not in after and "forged2.jsonl" not in after, after
    got = _codes(p.stdout)
    for k in ("create", "create_up", "append"):
        assert got.get(k) not in (None, "0"), (k, p.stdout, p.stderr)
    assert got.get("twin") == "0" and (plain / "made").read_text() == "x\n", (p.stdout, p.stderr)
    assert b"\nx\n" not in seg.read_bytes()
    assert set(before) <= set(after)
