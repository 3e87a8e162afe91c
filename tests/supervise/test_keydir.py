"""landgate's key directory, denied as a tree (csrc/supervise_open_tree.c), on the real kernel.

The key directory holds the checkpoint key and one witness file per audit directory ever
used.  Its files are no longer listed at launch: the open check judges where an object lies
(its real path, or the directories above it when another mount of the file system names
it), and the fsop check refuses a link or rename that would take a file out of it.  Each
attack has its allowed twin; each was checked to fail with its protection off (the
report of issue 19 says how).

The sandbox runs as root here with its home readable and writable by policy, so Landlock
alone would let it read, link and rename the key directory's files: only the supervisor
stands between them.
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
def _landlock():
    require_kernel(probe_host().landlock_abi >= 1, "Landlock")


def _policy(world) -> Path:
    return world_policy(
        world,
        extra_read='      - { path: "~/", effect: allow }',
        extra_write='      - { path: "~/", effect: allow }',
    )


def _run(world, script: str) -> subprocess.CompletedProcess:
    """`landgate run sh -c script` with the key directory at ~/.config/landgate (inside
    the home the policy grants)."""
    env = {"XDG_CONFIG_HOME": str(world.home / ".config")}
    return landgate(world, ["sh", "-c", script], policy=_policy(world), env=env)


def _keydir(world) -> Path:
    """The key directory after a first session made it (its key and this trail's witness)."""
    p = _run(world, "true")
    assert p.returncode == 0, p.stderr
    kd = world.home / ".config" / "landgate"
    assert (kd / "audit.key").is_file() and any((kd / "witness").iterdir())
    return kd


def _codes(out: bytes) -> dict[str, str]:
    return dict(x.split("=", 1) for x in out.decode().split() if "=" in x)


def test_no_link_or_rename_takes_a_key_out_of_the_tree(world):
    kd = _keydir(world)
    wit = next((kd / "witness").iterdir())
    (world.home / "notes").write_text("notes\n")
    key = (kd / "audit.key").read_bytes()
    p = _run(
        world,
        f"ln {kd}/audit.key ~/k; echo ln_key=$?; ln {wit} ~/w; echo ln_witness=$?;"
        f" mv {kd}/audit.key ~/m; echo mv_key=$?; mv {wit} ~/mw; echo mv_witness=$?;"
        f" cd {kd}/witness && ln ../audit.key ~/rel; echo ln_relative=$?; cd;"
        " ln ~/notes ~/n2; echo ln_twin=$?; mv ~/n2 ~/n3; echo mv_twin=$?",
    )
    got = _codes(p.stdout)
    for k in ("ln_key", "ln_witness", "mv_key", "mv_witness", "ln_relative"):
        assert got.get(k) not in (None, "0"), (k, p.stdout, p.stderr)
    assert got.get("ln_twin") == "0" and got.get("mv_twin") == "0", (p.stdout, p.stderr)
    for name in ("k", "w", "m", "mw", "rel"):
        assert not (world.home / name).exists(), name
    assert (kd / "audit.key").read_bytes() == key and wit.exists()
    assert (world.home / "n3").read_text() == "notes\n"  # the twin's file, moved
    # the next session: nothing outside the tree names the key
    p = _run(world, "cat ~/k ~/w ~/m ~/rel 2>/dev/null; cat ~/n3")
    assert key not in p.stdout and b"notes" in p.stdout


READ_HEX = (
    "import sys\n"
    "for f in sys.argv[1:]:\n"
    "    try:\n"
    "        print(f, open(f, 'rb').read().hex())\n"
    "    except OSError as e:\n"
    "        print(f, 'errno', e.errno)\n"
)


def _mount_bind(src: Path, dst: Path) -> None:
    dst.mkdir()
    subprocess.run(["mount", "--bind", str(src), str(dst)], check=True)


def test_another_mount_of_the_key_directory_is_still_the_key_directory(world):
    """A bind mount of the key directory (and one of its parent) elsewhere names its files
    by paths no rule denies: the directories above them are its."""
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root")  # the attack's set-up, not a kernel feature
    kd = _keydir(world)
    key_hex = (kd / "audit.key").read_bytes().hex()
    wit = next((kd / "witness").iterdir())
    plain = world.home / "plain"
    plain.mkdir()
    (plain / "notes").write_text("twin notes\n")
    (world.workspace / "r.py").write_text(READ_HEX)
    mounts = [world.home / "alias", world.home / "alias-up", world.home / "alias-twin"]
    try:
        _mount_bind(kd, mounts[0])
        _mount_bind(world.home / ".config", mounts[1])
        _mount_bind(plain, mounts[2])
        p = _run(
            world,
            "python3 r.py ~/alias/audit.key ~/alias/witness/"
            + wit.name
            + " ~/alias-up/landgate/audit.key ~/alias-twin/notes;"
            " echo new > ~/alias/witness/new.json; echo create=$?;"
            " ln ~/alias/audit.key ~/k; echo ln=$?",
        )
    finally:
        for m in reversed(mounts):
            subprocess.run(["umount", str(m)], check=False)
    out = p.stdout.decode()
    assert key_hex not in out, out
    assert f"{mounts[0]}/audit.key errno 13" in out, (out, p.stderr)
    assert f"{mounts[0]}/witness/{wit.name} errno 13" in out, out
    assert f"{mounts[1]}/landgate/audit.key errno 13" in out, out
    assert b"twin notes".hex() in out  # the twin: another bind mount reads
    got = _codes(p.stdout)
    assert got.get("create") not in (None, "0") and got.get("ln") not in (None, "0"), out
    assert not (world.home / "k").exists()


def test_spellings_of_the_key_directory(world):
    """A symlink to it, `..` out of its witness directory, /proc/self/fd of an O_PATH fd:
    each reaches the key by a path the kernel names beneath the directory."""
    kd = _keydir(world)
    key_hex = (kd / "audit.key").read_bytes().hex()
    (world.home / "notes").write_text("notes\n")
    os.symlink(kd, world.home / "kl")
    code = (
        "import os\n"
        f"kd = {str(kd)!r}\n"
        "for f in ('~/kl/audit.key', kd + '/witness/../audit.key', '~/notes'):\n"
        "    try:\n"
        "        print(f, open(os.path.expanduser(f), 'rb').read().hex())\n"
        "    except OSError as e:\n"
        "        print(f, 'errno', e.errno)\n"
        "for f in (kd + '/audit.key', os.path.expanduser('~/notes')):\n"
        "    try:\n"
        "        fd = os.open(f, os.O_PATH)\n"
        "        print('opath', f, open(f'/proc/self/fd/{fd}', 'rb').read().hex())\n"
        "    except OSError as e:\n"
        "        print('opath', f, 'errno', e.errno)\n"
    )
    (world.workspace / "s.py").write_text(code)
    p = _run(world, "python3 s.py")
    out = p.stdout.decode()
    assert key_hex not in out, out
    assert out.count("errno 13") == 3, (out, p.stderr)
    assert out.count(b"notes\n".hex()) == 2  # the twins: a file beside it, both ways


def test_a_hard_link_made_before_the_session_still_names_the_key(world):
    """A hard link made outside any sandbox (the sandbox cannot make one) to a file of the
    key directory's top level: still denied by the file's identity."""
    kd = _keydir(world)
    key_hex = (kd / "audit.key").read_bytes().hex()
    os.link(kd / "audit.key", world.home / "old-link")
    (world.home / "notes").write_text("notes\n")
    os.link(world.home / "notes", world.home / "notes-link")
    (world.workspace / "r.py").write_text(READ_HEX)
    p = _run(world, "python3 r.py ~/old-link ~/notes-link")
    out = p.stdout.decode()
    assert key_hex not in out and "old-link errno 13" in out, (out, p.stderr)
    assert b"notes\n".hex() in out  # the twin


def test_the_launch_does_not_list_the_witness_files(tmp_path, key_dir):
    """The tables hold the key directory's directories and top-level files, whatever the
    number of witness files (one per audit directory ever used)."""
    from sandbox.policy import load_policy
    from sandbox.supervise.tables import compile_tables

    kd = key_dir
    pol_file = tmp_path / "p.yaml"
    pol_file.write_text(
        "version: 1\nactions:\n  - action: file_read\n    defaultEffect: allow\n"
        "  - action: file_write\n    defaultEffect: allow\n"
    )
    pol = load_policy(pol_file, cwd=tmp_path, home=tmp_path)

    def counts() -> tuple[int, int]:
        t = compile_tables(pol, {"open_check": True, "bind_later": True})
        return t.c.n_deny_ids, t.c.n_deny_trees

    before = counts()
    for i in range(300):
        (kd / "witness" / f"{i:032x}.json").write_text("{}\n")
    assert counts() == before
    ids, trees = before
    st = os.stat(kd)
    # both accesses of the directory and of witness/; the key by identity too
    assert trees >= 4 and ids >= 1
    t = compile_tables(pol, {"open_check": True, "bind_later": True})
    rows = [(t.c.deny_trees[k].dev, t.c.deny_trees[k].ino) for k in range(trees)]
    assert (st.st_dev, st.st_ino) in rows
