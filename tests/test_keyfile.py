"""sandbox.keyfile: the one routine that makes the trail's and the policy cache's keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sandbox.keyfile import create_key_file


def test_a_new_key_is_private_and_random(tmp_path: Path) -> None:
    kdir = tmp_path / "conf" / "landgate"
    create_key_file(kdir, kdir / "a.key", 32)
    create_key_file(kdir, kdir / "b.key", 32)
    a, b = (kdir / "a.key").read_bytes(), (kdir / "b.key").read_bytes()
    assert len(a) == 32 and a != b
    assert stat.S_IMODE(os.stat(kdir / "a.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(kdir).st_mode) == 0o700
    assert [n for n in os.listdir(kdir) if n.startswith(".")] == []  # no temporary left


def test_an_existing_key_is_kept(tmp_path: Path) -> None:
    """Two processes starting together: the second finds the first's key and keeps it."""
    key = tmp_path / "k.key"
    key.write_bytes(b"x" * 32)
    create_key_file(tmp_path, key, 32)
    assert key.read_bytes() == b"x" * 32
    assert os.listdir(tmp_path) == ["k.key"]


def test_an_unwritable_directory_raises(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(OSError):
            create_key_file(blocker / "sub", blocker / "sub" / "k.key", 32)
        return
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OSError):
            create_key_file(tmp_path, tmp_path / "k.key", 32)
    finally:
        tmp_path.chmod(0o700)
