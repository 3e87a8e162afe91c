"""`path: "$PATH"`'s expansion scans each real directory once (issue 19).

A launch from the policy cache runs toolchain_dirs again to check that the expansion
still holds; a PATH that names a directory twice (a shell profile run twice) scanned it
twice.  The answer is the same; only the second scan is gone.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.policy import toolchains


def _tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    home = tmp_path / "home"
    venv = tmp_path / "opt" / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "tool").write_text("#!/bin/sh\n")
    local = home / ".local" / "bin"
    local.mkdir(parents=True)
    (local / "tool").symlink_to(venv / "tool")
    link = tmp_path / "linkbin"
    link.symlink_to(local)  # the same directory by another name
    return home, local, link


def test_a_directory_named_twice_is_scanned_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, local, link = _tree(tmp_path)
    once = toolchains.toolchain_dirs(f"{local}:/usr/bin", str(home))
    assert str(tmp_path / "opt" / "venv") in once  # the symlink's target prefix

    scans: list[str] = []
    real_scandir = os.scandir

    def counting(path: str) -> os._ScandirIterator[str]:  # type: ignore[name-defined]
        scans.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(toolchains.os, "scandir", counting)
    twice = toolchains.toolchain_dirs(f"{local}:{local}:{link}:/usr/bin", str(home))
    assert twice == once
    assert scans == [str(local)]  # scanned once, though named three times
    scans.clear()
    # the twin: two different directories are each scanned
    other = tmp_path / "other"
    other.mkdir()
    toolchains.toolchain_dirs(f"{local}:{other}", str(home))
    assert sorted(scans) == sorted([str(local), str(other)])
