"""The loader's caches (composed YAML by text, loaded policies by every input) never serve
a stale policy: an edit on disk, a changed workspace symlink, another audit directory or
home each give a freshly built policy."""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.policy import load_policy


def _write(path: Path, mode: str, workspace: str = ".") -> None:
    path.write_text(f"version: 1\nmode: {mode}\nworkspace: {workspace}\nactions: []\n")


def test_same_file_same_inputs_is_shared(tmp_path):
    p = tmp_path / "p.yaml"
    _write(p, "enforce")
    assert load_policy(p, cwd=tmp_path) is load_policy(p, cwd=tmp_path)


def test_edit_is_seen_even_with_size_and_mtime_restored(tmp_path):
    p = tmp_path / "p.yaml"
    _write(p, "enforce ")  # same length as "simulate" below
    st = os.stat(p)
    first = load_policy(p, cwd=tmp_path)
    assert first.mode == "enforce"
    _write(p, "simulate")
    assert os.stat(p).st_size == st.st_size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # an editor (or an attacker) hides the edit
    second = load_policy(p, cwd=tmp_path)
    assert second.mode == "simulate"
    assert second.sha256 != first.sha256


def test_workspace_symlink_change_is_resolved_again(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    link = tmp_path / "ws"
    link.symlink_to(tmp_path / "a")
    p = tmp_path / "p.yaml"
    _write(p, "enforce", str(link))
    assert load_policy(p, cwd=tmp_path).workspace == tmp_path / "a"
    link.unlink()
    link.symlink_to(tmp_path / "b")
    assert load_policy(p, cwd=tmp_path).workspace == tmp_path / "b"


def test_other_inputs_are_part_of_the_key(tmp_path):
    p = tmp_path / "p.yaml"
    _write(p, "enforce")
    (tmp_path / "w1").mkdir()
    (tmp_path / "w2").mkdir()
    a = load_policy(p, cwd=tmp_path / "w1")
    b = load_policy(p, cwd=tmp_path / "w2")
    assert a.workspace != b.workspace
    c = load_policy(p, cwd=tmp_path, audit_dir=tmp_path / "audit1")
    d = load_policy(p, cwd=tmp_path, audit_dir=tmp_path / "audit2")

    def pats(pol):
        return {r.pattern for r in pol.block("file_write").rules}

    assert str(tmp_path / "audit1") + "/" in pats(c)
    assert str(tmp_path / "audit2") + "/" in pats(d) and str(tmp_path / "audit1") + "/" not in pats(
        d
    )
    e = load_policy(p, cwd=tmp_path, home=tmp_path / "w1")
    assert e.home == tmp_path / "w1"
