"""The key directory's tree rows (sandbox/supervise/fswalk.py `whole_tree`): every directory
at any depth is a row, and the witness directory's files are not listed to find them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.supervise import fswalk, tables


@pytest.fixture
def keydir(key_dir) -> Path:
    """The key directory (conftest.py) with 300 witness files and nested subdirectories."""
    kd = key_dir
    for i in range(300):
        (kd / "witness" / f"dir-{i:032x}.json").write_text("{}\n")
    (kd / "sub" / "deeper" / "inner").mkdir(parents=True)
    (kd / "sub" / "deeper" / "inner" / "f").write_text("x\n")
    return kd


def _rows(tmp_path: Path) -> set[tuple[int, int]]:
    from sandbox.policy import load_policy

    pol_file = tmp_path / "p.yaml"
    pol_file.write_text(
        "version: 1\nactions:\n  - action: file_read\n    defaultEffect: allow\n"
        "  - action: file_write\n    defaultEffect: allow\n"
    )
    pol = load_policy(pol_file, cwd=tmp_path, home=tmp_path)
    t = tables.compile_tables(pol, {"open_check": True, "bind_later": True})
    return {(t.c.deny_trees[k].dev, t.c.deny_trees[k].ino) for k in range(t.c.n_deny_trees)}


def _key(p: Path) -> tuple[int, int]:
    st = os.stat(p)
    return st.st_dev, st.st_ino


def test_every_directory_of_the_key_directory_is_a_row(keydir, tmp_path):
    rows = _rows(tmp_path)
    for d in ("", "witness", "sub", "sub/deeper", "sub/deeper/inner"):
        assert _key(keydir / d) in rows, d
    # files are not rows (the top level's are identities; the deeper ones are judged by
    # the directories above them)
    assert _key(keydir / "sub/deeper/inner/f") not in rows


def test_a_plain_directory_beside_it_is_no_row(keydir, tmp_path):
    """The twin: a directory outside the key directory, however deep, is not denied."""
    other = tmp_path / "config" / "other" / "sub" / "deeper"
    other.mkdir(parents=True)
    rows = _rows(tmp_path)
    for d in (other, other.parent, tmp_path / "config"):
        assert _key(d) not in rows, d


def test_the_witness_directory_is_listed_only_where_its_link_count_cannot_tell(
    keydir, tmp_path, monkeypatch
):
    """Its subdirectories are found without reading its (thousands of) entries where the
    file system's link count says it has none; elsewhere it is listed."""
    listed: list[str] = []
    real_scandir = os.scandir

    def scandir(path=".", *a, **kw):
        listed.append(os.path.realpath(path) if isinstance(path, str) else str(path))
        return real_scandir(path, *a, **kw)

    monkeypatch.setattr(fswalk.os, "scandir", scandir)
    _rows(tmp_path)
    wit = str(keydir / "witness")
    exact = fswalk.Mounts().nlink_exact(os.stat(wit).st_dev)
    if exact:
        assert wit not in listed, listed
        # a directory with subdirectories is listed for them
        assert str(keydir / "sub") in listed and str(keydir / "sub/deeper") in listed
    else:
        assert wit in listed, listed


def _write_policy(tmp_path: Path, extra: str = "") -> object:
    from sandbox.policy import load_policy

    pol_file = tmp_path / "p.yaml"
    pol_file.write_text(
        "version: 1\nactions:\n  - action: file_read\n    defaultEffect: allow\n"
        "  - action: file_write\n    defaultEffect: allow\n" + extra
    )
    return load_policy(pol_file, cwd=tmp_path, home=tmp_path)


def _write_rows(pol: object) -> set[tuple[int, int]]:
    t = tables.compile_tables(pol, {"open_check": True, "bind_later": True})  # type: ignore[arg-type]
    return {
        (t.c.deny_trees[k].dev, t.c.deny_trees[k].ino)
        for k in range(t.c.n_deny_trees)
        if t.c.deny_trees[k].access & tables.lib.LG_ACCESS_WRITE
    }


def test_the_audit_directory_is_a_tree_unless_an_allow_opens_part_of_it(tmp_path, monkeypatch):
    """The audit trail's directory (a protected write deny) is a tree too; its files are
    still identities.  The twin: a policy allow naming a path inside it (which overrides
    the protected deny there) leaves it to names and identities, so that path stays
    writable."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    audit = tmp_path / "state" / "landgate" / "audit"
    (audit / "sub").mkdir(parents=True)
    (audit / "trail-000000.jsonl").write_text("{}\n")
    rows = _write_rows(_write_policy(tmp_path))
    for d in (audit.parent, audit, audit / "sub"):
        assert _key(d) in rows, d
    t = tables.compile_tables(_write_policy(tmp_path), {"open_check": True, "bind_later": True})
    ids = {(t.c.deny_ids[k].dev, t.c.deny_ids[k].ino) for k in range(t.c.n_deny_ids)}
    assert _key(audit / "trail-000000.jsonl") in ids  # still by identity
    opened = _write_policy(
        tmp_path, f'    rules:\n      - {{ path: "{audit}/sub/", effect: allow }}\n'
    )
    rows = _write_rows(opened)
    assert not {_key(audit.parent), _key(audit), _key(audit / "sub")} & rows
