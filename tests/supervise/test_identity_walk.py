"""The open check's device+inode set: the launch-time walk of a denied tree (issue 19).

The walk keys a regular file by its directory's device and the entry's d_ino, without a
stat, where that is what stat would say (fswalk.DINO_FS); these tests hold it to the
old walk (os.walk and a stat per name) on every kind of entry, and to a mount on an
entry, where d_ino names the file underneath and only stat names what an open reaches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandbox.supervise import fswalk


def _stat_walk(base: Path) -> set[tuple[int, int]]:
    """The walk as it was: every name beneath base, stat'ed (symlinks followed)."""
    out: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(base):
        for name in (*dirs, *files):
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            out.add((st.st_dev, st.st_ino))
    return out


def _tree(base: Path) -> None:
    (base / "sub" / "deeper").mkdir(parents=True)
    for i in range(50):
        (base / f"w{i}.json").write_text("{}")
    (base / "sub" / "key").write_bytes(b"k" * 32)
    (base / "sub" / "deeper" / "x").write_text("x")
    os.link(base / "sub" / "key", base / "key-link")
    outside = base.parent / "outside"
    outside.mkdir()
    (outside / "target").write_text("t")
    (outside / "dir").mkdir()
    (outside / "dir" / "inner").write_text("i")
    os.symlink(outside / "target", base / "file-symlink")
    os.symlink(outside / "dir", base / "dir-symlink")  # listed, not entered
    os.symlink(base / "missing", base / "dangling")
    os.mkfifo(base / "fifo")


def test_walk_keys_are_what_stat_says(tmp_path: Path) -> None:
    base = tmp_path / "keys"
    base.mkdir()
    _tree(base)
    got = fswalk.existing_keys((str(base), f"{base}/**"))
    want = _stat_walk(base) | {(os.stat(base).st_dev, os.stat(base).st_ino)}
    assert set(got) == want
    # The symlinked directory's own identity is in the set, its contents are not.
    inner = os.stat(tmp_path / "outside" / "dir" / "inner")
    assert (inner.st_dev, inner.st_ino) not in set(got)


def test_fast_path_is_taken_where_dino_is_exact(tmp_path: Path) -> None:
    """On this machine's tmp file system (ext4 or tmpfs on CI) the walk trusts d_ino,
    so the equality above exercised the fast path; elsewhere every entry is stat'ed."""
    mounts = fswalk.Mounts()
    dev = os.stat(tmp_path).st_dev
    fstype = mounts._fstype.get(dev) if mounts.points() else None
    assert mounts.dino_exact(dev, str(tmp_path)) == (fstype in fswalk.DINO_FS)


def test_walk_budget_bounds_the_work(tmp_path: Path) -> None:
    base = tmp_path / "big"
    base.mkdir()
    for d in range(5):
        (base / f"d{d}").mkdir()
        for i in range(40):
            (base / f"d{d}" / f"f{i}").write_text("")
    got = fswalk.existing_keys((f"{base}/**",), limit=60)
    assert 0 < len(got) < 5 * 41


MOUNTED = textwrap.dedent(
    """
    import json, os, subprocess, sys
    base, secret, under_dev, under_ino = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:5])
    subprocess.run(["mount", "--bind", secret, os.path.join(base, "entry")], check=True)
    from sandbox.supervise import fswalk
    keys = fswalk.existing_keys((base, base + "/**"))
    st = os.stat(os.path.join(base, "entry"))
    print(json.dumps({"mounted": [st.st_dev, st.st_ino] in [list(k) for k in keys],
                      "underneath": [under_dev, under_ino] in [list(k) for k in keys]}))
    """
)


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts in a private mount namespace: root")
def test_a_file_mounted_on_an_entry_is_keyed_as_what_an_open_reaches(tmp_path: Path) -> None:
    """Attack: a file bind-mounted over a name in the denied tree.  Its directory entry
    (d_ino) names the file underneath; an open of that name reaches the mounted file,
    so that is the identity the set must hold.  With the mount-point check off
    (fswalk._walk_keys trusting d_ino for every regular file) this test fails."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare(1) is needed (util-linux)")
    base = tmp_path / "keys"
    base.mkdir()
    (base / "entry").write_text("decoy underneath")
    under = os.stat(base / "entry")
    secret = tmp_path / "secret"
    secret.write_text("the file an open reaches")
    args = [str(base), str(secret), str(under.st_dev), str(under.st_ino)]
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c", MOUNTED, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == {"mounted": True, "underneath": False}


@pytest.mark.parametrize(
    "pattern",
    [
        "d/ssh_host_*_key",
        "d/*",
        "d/.*",
        "d/?x",
        "d/[ab]*",
        "d/[!a]*",
        "d/*key",
        "missing/*",
        "*/ssh_host_*_key",
        "d/sub/*",
    ],
)
def test_glob_matches_is_glob(tmp_path: Path, pattern: str) -> None:
    """The open check's single-directory glob (no glob module on the launch path) finds
    exactly the paths glob.glob finds: hidden names only for a pattern starting with
    `.`, fnmatch's classes, a missing directory, a glob in a directory component."""
    import glob

    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    for name in (
        "ssh_host_rsa_key",
        "ssh_host_ed25519_key",
        "ssh_host_rsa_key.pub",
        ".hidden_key",
        "ax",
        "bx",
        "cx",
        ".x",
        "sub/inner",
    ):
        (d / name).write_text("k")
    (d / "link").symlink_to("ax")
    g = str(tmp_path / pattern)
    want = sorted(glob.glob(g))
    assert sorted(fswalk._glob_matches(g)) == want
    if pattern.startswith("d/") and pattern != "d/.*":
        assert not any(os.path.basename(p).startswith(".") for p in want)


def test_glob_matches_keys_the_host_keys(tmp_path: Path) -> None:
    """Through _existing_keys: each matching file's identity, nothing else's (the twin:
    a non-matching file of the same directory is not keyed)."""
    d = tmp_path / "ssh"
    d.mkdir()
    for name in ("ssh_host_rsa_key", "ssh_host_rsa_key.pub", "moduli"):
        (d / name).write_text("k")
    keys = set(fswalk.existing_keys([str(d / "ssh_host_*_key")]))
    st = (d / "ssh_host_rsa_key").stat()
    assert keys == {(st.st_dev, st.st_ino)}
