"""sandbox.host.fsutil: shutil.which, tempfile.mkdtemp and shutil.rmtree's jobs on the
launch path without importing those modules (issue 19).  Each is checked against its
stdlib twin, and the private directory against the attacks mkdtemp resists."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from sandbox.host import fsutil


def _exe(path: Path, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def test_which_matches_shutil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    for d in (a, b, c):
        d.mkdir()
    _exe(a / "tool", 0o644)  # not executable: skipped
    _exe(b / "tool")  # the first executable one
    _exe(c / "tool")
    (a / "dironly").mkdir()  # a directory is never the answer
    _exe(c / "dironly")
    _exe(c / "only-c")
    (b / "link").symlink_to(c / "only-c")  # a link to an executable counts
    (b / "dangling").symlink_to(tmp_path / "nowhere")
    monkeypatch.chdir(c)  # an empty PATH entry is the current directory
    paths = [
        f"{a}:{b}:{c}",
        f"{c}:{b}",
        f"{a}:{a}:{b}",
        f"::{a}",
        f"{a}:",
        "",
        f"{tmp_path}/missing:{b}",
        "relative/dir:" + str(b),
    ]
    names = ["tool", "dironly", "only-c", "link", "dangling", "absent", "sh"]
    names += [str(b / "tool"), str(a / "tool"), str(a / "dironly"), "./only-c", "/bin/sh"]
    for path in paths:
        for name in names:
            assert fsutil.which(name, path) == shutil.which(name, path=path), (name, path)
    # the twin: the search does find things
    assert fsutil.which("tool", f"{a}:{b}:{c}") == str(b / "tool")


def test_private_dir_is_new_0700_and_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    made = {fsutil.private_dir("landgate-x-") for _ in range(20)}
    assert len(made) == 20
    for d in made:
        st = os.lstat(d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
        assert st.st_uid == os.getuid()
        assert os.path.dirname(d) == str(tmp_path)
        assert os.path.basename(d).startswith("landgate-x-")
    # the same directory tempfile.mkdtemp would choose (its twin; it caches its choice)
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert os.path.dirname(tempfile.mkdtemp(prefix="twin-", dir=None)) == str(tmp_path)


def test_private_dir_never_takes_a_planted_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker who guesses the next name and plants a symlink (or a directory) there
    gets EEXIST, not our directory: the name is retried, the planted one left alone."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    victim = tmp_path / "victim"
    victim.mkdir()
    draws = iter([b"\x00" * 6, b"\x00" * 6, b"\x01" * 6])
    monkeypatch.setattr(fsutil.os, "urandom", lambda n: next(draws))
    planted = tmp_path / ("lg-" + "00" * 6)
    planted.symlink_to(victim)
    got = fsutil.private_dir("lg-")
    assert got == str(tmp_path / ("lg-" + "01" * 6))
    assert planted.is_symlink() and os.listdir(victim) == []
    assert stat.S_IMODE(os.lstat(got).st_mode) == 0o700


def test_private_dir_falls_back_past_an_unusable_tmpdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    monkeypatch.setenv("TEMP", str(tmp_path))
    got = fsutil.private_dir("lg-")
    assert os.path.dirname(got) == str(tmp_path)
    os.rmdir(got)


def test_remove_tree(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "s").write_text("x")
    (d / "owner").write_text("1 2\n")
    keep = tmp_path / "keep"
    keep.write_text("mine")
    (d / "link").symlink_to(keep)  # removed as a link; its target stays
    fsutil.remove_tree(str(d))
    assert not d.exists() and keep.read_text() == "mine"
    fsutil.remove_tree(str(d))  # gone already: nothing happens


def test_remove_tree_leaves_a_symlinked_directory_alone(tmp_path: Path) -> None:
    """rmtree's rule: a symlink at the top is not followed (ignore_errors: not removed)."""
    target = tmp_path / "target"
    target.mkdir()
    (target / "file").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    fsutil.remove_tree(str(link))
    assert (target / "file").exists() and link.is_symlink()
    shutil.rmtree(link, ignore_errors=True)  # the twin: rmtree does the same
    assert (target / "file").exists() and link.is_symlink()


def test_remove_tree_nested_falls_back_to_rmtree(tmp_path: Path) -> None:
    d = tmp_path / "d"
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "sub" / "deeper" / "f").write_text("x")
    (d / "f").write_text("x")
    fsutil.remove_tree(str(d))
    assert not d.exists()
