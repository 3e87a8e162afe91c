"""Every input of the persistent policy cache's key (sandbox.policy.diskcache._entry_key)
changes the key when it changes, one test per part: an entry is reused only for the very
load it was written by.  The file-system answers the load depended on (extended files,
`extends` names, workspaces, `$PATH`) are the entry's notes, checked on every hit:
tests/policy/test_diskcache.py.

Each case's twin is the unchanged input, which must give the same key again (the key is
not random), and one end-to-end case shows that a changed key is a miss of the loader.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.policy import diskcache, loader
from sandbox.policy.model import Policy

POLICY = (
    "version: 1\nactions:\n  - action: shell_exec\n"
    "    rules: [{ command: 'ls *', effect: allow }]\n"
)
UID = os.geteuid()


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LANDGATE_POLICY_CACHE", raising=False)
    w = tmp_path / "ws"
    w.mkdir()
    (w / "p.yaml").write_text(POLICY)
    monkeypatch.chdir(w)
    yield w


def _key(ws: Path, path: str = "p.yaml", audit: Path | None = None) -> str:
    key = diskcache._entry_key(path, ws, audit)
    assert key is not None
    return key


def _set_env(name: str, value: str) -> Callable[[pytest.MonkeyPatch, Path], None]:
    def change(mp: pytest.MonkeyPatch, tmp: Path) -> None:
        mp.setenv(name, value)

    return change


def _copy_policy_package(mp: pytest.MonkeyPatch, tmp: Path) -> None:
    """An edited install: the policy package's code with one module one byte longer."""
    copy = tmp / "policy-code"
    shutil.copytree(diskcache._POLICY_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "model.py", "a") as fh:
        fh.write("\n")
    mp.setattr(diskcache, "_POLICY_DIR", copy)


def _touch_policy_module(mp: pytest.MonkeyPatch, tmp: Path) -> None:
    """An upgraded install of the same size: one module with another mtime."""
    copy = tmp / "policy-code"
    shutil.copytree(diskcache._POLICY_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    mp.setattr(diskcache, "_POLICY_DIR", copy)
    base = diskcache._entry_key("p.yaml", Path.cwd(), None)
    st = (copy / "loader.py").stat()
    os.utime(copy / "loader.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert diskcache._entry_key("p.yaml", Path.cwd(), None) != base


CHANGES: dict[str, Callable[[pytest.MonkeyPatch, Path], None]] = {
    "landgate version": lambda mp, tmp: mp.setattr(diskcache, "__version__", "0.0.0-other"),
    "python version": lambda mp, tmp: mp.setattr(diskcache.sys, "version", "3.99 other"),
    "policy code (size)": _copy_policy_package,
    "policy code (mtime)": _touch_policy_module,
    "uid": lambda mp, tmp: mp.setattr(diskcache.os, "geteuid", lambda: UID + 1),
    "HOME": _set_env("HOME", "/nonexistent-home-landgate"),
    "PATH": _set_env("PATH", "/nonexistent-bin-landgate:/usr/bin"),
    "XDG_STATE_HOME": _set_env("XDG_STATE_HOME", "/nonexistent-state-landgate"),
    "XDG_CONFIG_HOME": _set_env("XDG_CONFIG_HOME", "/nonexistent-config-landgate"),
    "XDG_CACHE_HOME": _set_env("XDG_CACHE_HOME", "/nonexistent-cache-landgate"),
}


@pytest.mark.parametrize("part", sorted(CHANGES))
def test_each_input_changes_the_key(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    base = _key(ws)
    assert _key(ws) == base  # the twin: nothing changed, the same key
    CHANGES[part](monkeypatch, tmp_path)
    assert _key(ws) != base, part


def test_the_policy_bytes_change_the_key(ws: Path) -> None:
    base = _key(ws)
    (ws / "p.yaml").write_text(POLICY.replace("ls *", "ls -l *"))
    assert _key(ws) != base


def test_the_name_given_and_the_file_it_finds_change_the_key(ws: Path) -> None:
    base = _key(ws)
    assert _key(ws, "./p.yaml") != base  # the same file, named otherwise (relative names)
    (ws / "q.yaml").write_text(POLICY)  # the same bytes in another file
    assert _key(ws, "q.yaml") != base
    assert _key(ws, str(ws / "p.yaml")) != base


def test_the_working_directory_changes_the_key(ws: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(ws / "p.yaml", other / "p.yaml")
    base = _key(ws)
    assert _key(other) != base
    link = tmp_path / "link"
    link.symlink_to(ws)
    # the same directory through a symlink: another key (the name given is resolved
    # against it, so this is a miss on the side of caution)
    assert _key(link) != base


def test_the_audit_directory_changes_the_key(ws: Path, tmp_path: Path) -> None:
    base = _key(ws)
    assert _key(ws, audit=None) == base
    assert _key(ws, audit=tmp_path / "a1") != base
    assert _key(ws, audit=tmp_path / "a1") != _key(ws, audit=tmp_path / "a2")


def test_a_changed_key_is_a_miss(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: the second load is a hit; after a change of a key part (here the
    version), the loader runs again."""
    n = 0
    real = loader.load_policy

    def counted(*a: object, **kw: object) -> Policy:
        nonlocal n
        n += 1
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "load_policy", counted)
    diskcache.load_policy_cached("p.yaml", cwd=ws)
    diskcache.load_policy_cached("p.yaml", cwd=ws)
    assert n == 1  # the twin: a hit
    monkeypatch.setattr(diskcache, "__version__", "0.0.0-other")
    diskcache.load_policy_cached("p.yaml", cwd=ws)
    assert n == 2
