"""The tables' policy rows are compiled once per process (sandbox/supervise/tablememo.py);
what the file system says is looked up again for every session (sessionrows.session_rows).

A denied file created or replaced, or a key-directory subdirectory made, between two
sessions of the same policy in one process is denied at the second; and the tables a
memoised compile gives are the ones a fresh compile gives, field for field."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from sandbox._supervise import ffi

from sandbox.policy.globs import OP_END
from sandbox.supervise import tablememo, tables

INFO = {
    "open_check": True,
    "fsop_check": True,
    "bind_later": True,
    "uid": 1000,
    "gid": 1000,
    "infrastructure": [("10.0.0.53", 53, "landgate DNS view")],
    "infrastructure_deny": [("127.0.0.0/8", 8765, "landgate dashboard")],
    "resolve_hosts": False,
}


@pytest.fixture
def setup(tmp_path: Path, key_dir: Path) -> tuple[Any, Path]:
    """A policy with file and network rules, and the key directory (conftest.py)."""
    from sandbox.policy import load_policy

    pol_file = tmp_path / "p.yaml"
    pol_file.write_text(
        "version: 1\nactions:\n"
        "  - action: file_read\n    defaultEffect: allow\n    rules:\n"
        f"      - {{ path: {tmp_path}/secret.txt, effect: deny }}\n"
        "      - { path: /etc/hostname, effect: deny }\n"
        "  - action: file_write\n    defaultEffect: deny\n    rules:\n"
        f"      - {{ path: {tmp_path}/out/**, effect: allow }}\n"
        "  - action: network\n    defaultEffect: deny\n    rules:\n"
        "      - { destination: example.com:443, effect: allow }\n"
        "      - { destination: 10.1.0.0/16, effect: deny }\n"
    )
    return load_policy(pol_file, cwd=tmp_path, home=tmp_path), tmp_path


def _ids(t: tables.Tables) -> set[tuple[int, int]]:
    return {(t.c.deny_ids[k].dev, t.c.deny_ids[k].ino) for k in range(t.c.n_deny_ids)}


def _tree_ids(t: tables.Tables) -> set[tuple[int, int]]:
    return {(t.c.deny_trees[k].dev, t.c.deny_trees[k].ino) for k in range(t.c.n_deny_trees)}


def _key(p: Path) -> tuple[int, int]:
    st = os.stat(p)
    return st.st_dev, st.st_ino


def test_a_denied_file_created_between_two_sessions_is_denied_at_the_second(setup):
    pol, tmp = setup
    first = tables.compile_tables(pol, INFO)
    (tmp / "secret.txt").write_text("s\n")
    (tmp / "public.txt").write_text("p\n")
    second = tables.compile_tables(pol, INFO)
    assert second.rules == first.rules  # the same policy rows (from the memo) ...
    assert _key(tmp / "secret.txt") in _ids(second)  # ... the file's identity looked up again
    assert _key(tmp / "secret.txt") not in _ids(first)
    assert _key(tmp / "public.txt") not in _ids(second)  # the twin: not denied, not a row


def test_a_denied_file_replaced_between_two_sessions_is_denied_by_its_new_identity(setup):
    pol, tmp = setup
    (tmp / "secret.txt").write_text("old\n")
    old = _key(tmp / "secret.txt")
    assert old in _ids(tables.compile_tables(pol, INFO))
    keep_old = tmp / "old-link"
    os.link(tmp / "secret.txt", keep_old)  # the old inode stays (its number is not reused)
    (tmp / "new").write_text("new\n")
    os.replace(tmp / "new", tmp / "secret.txt")
    again = _ids(tables.compile_tables(pol, INFO))
    assert _key(tmp / "secret.txt") in again and _key(tmp / "secret.txt") != old


def test_a_key_directory_made_between_two_sessions_is_a_tree_row_at_the_second(setup):
    pol, tmp = setup
    first = _tree_ids(tables.compile_tables(pol, INFO))
    sub = tmp / "config" / "landgate" / "sub"
    sub.mkdir()
    other = tmp / "config" / "other"  # the twin: beside the key directory
    other.mkdir()
    second = _tree_ids(tables.compile_tables(pol, INFO))
    assert _key(sub) not in first and _key(sub) in second
    assert _key(other) not in second


def _glob(p: Any) -> list[int] | None:
    if p == ffi.NULL:
        return None
    out: list[int] = []
    for k in range(4096):
        out.append(int(p[k]))
        if p[k] == OP_END:
            return out
    raise AssertionError("glob program without its end")


def _dump(c: Any, fld: str, n: int) -> list[Any]:
    """Rows `fld` of struct lg_tables `c`, by value (strings, glob programs read out)."""
    arr = getattr(c, fld)
    if arr == ffi.NULL:
        return []
    out: list[Any] = []
    for k in range(n):
        v = arr[k]
        if not isinstance(v, ffi.CData):
            out.append(v)  # a number (hints)
            continue
        kind = ffi.typeof(v)
        if kind.kind == "struct":
            row: dict[str, Any] = {}
            for name, f in kind.fields:
                x = getattr(v, name)
                t = f.type
                if t.cname == "char *":
                    row[name] = None if x == ffi.NULL else ffi.string(x)
                elif t.cname == "unsigned int *":
                    row[name] = _glob(x)
                elif t.kind == "array":
                    row[name] = bytes(x)
                else:
                    row[name] = x
            out.append(row)
        elif kind.cname == "char *":
            out.append(ffi.string(v))
        else:
            out.append(v)
    return out


def dump(t: tables.Tables) -> dict[str, Any]:
    """Every field of the tables by value: scalars as they are, each row array read out
    (its count is the n_ field; hints have n_refs), pointers into the policy's compiled
    rows (exec, paths, syntax: sandbox.policy.compiled, one per policy) by address."""
    c = t.c
    out: dict[str, Any] = {}
    for name, f in ffi.typeof(c[0]).fields:
        x = getattr(c, name)
        if name in ("exec", "paths", "syntax"):
            out[name] = int(ffi.cast("uintptr_t", x))
        elif f.type.kind == "pointer":
            n = c.n_refs if name == "hints" else getattr(c, "n_" + name)
            out[name] = _dump(c, name, n)
        else:
            out[name] = x
    out["rules"] = [(r.ref, r.action, r.source, r.origin) for r in t.rules]
    out["open_check"], out["fsop_check"] = t.open_check, t.fsop_check
    return out


def test_the_memoised_tables_are_the_fresh_ones(setup):
    """Contract: a compile from the memo and one with the memo emptied say the same."""
    pol, tmp = setup
    (tmp / "secret.txt").write_text("s\n")
    first = tables.compile_tables(pol, INFO)
    memoised = tables.compile_tables(pol, INFO)
    assert memoised.c.refs == first.c.refs  # the rows came from the memo (shared)
    pol.cache.pop("supervise.tables")
    fresh = tables.compile_tables(pol, INFO)
    assert fresh.c.refs != first.c.refs  # compiled again
    assert dump(memoised) == dump(fresh) == dump(first)
    assert dump(fresh)["n_deny_ids"] > 0 and dump(fresh)["n_fsop"] > 0


def test_session_facts_are_each_copys_own(setup):
    """bind writes into the copy, never into the memo's rows: a second session starts
    unbound, with the zeroed defaults."""
    pol, tmp = setup
    a = tables.compile_tables(pol, INFO)
    a.bind(ruleset_fd=7, write_trees=[str(tmp)], private_netns=(1, 2))
    b = tables.compile_tables(pol, INFO)
    assert not b.bound
    assert (b.c.open_ruleset_fd, b.c.write_known, b.c.private_netns) == (-1, 0, 0)
    assert (a.c.open_ruleset_fd, a.c.write_known, a.c.private_netns) == (7, 1, 1)


def test_other_settings_other_rows(setup):
    """A setting the rows depend on is part of the key (here: the uid the opener takes)."""
    pol, _tmp = setup
    a = tables.compile_tables(pol, INFO)
    b = tables.compile_tables(pol, {**INFO, "uid": 1001})
    assert (a.c.open_uid, b.c.open_uid) == (1000, 1001)
    for uid in range(2000, 2000 + 2 * tablememo.PER_POLICY):
        tables.compile_tables(pol, {**INFO, "uid": uid})
    assert len(pol.cache["supervise.tables"]) == tablememo.PER_POLICY  # bounded


def test_thread_pool_sessions_get_the_same_rows(setup):
    pol, tmp = setup
    (tmp / "secret.txt").write_text("s\n")
    want = dump(tables.compile_tables(pol, INFO))
    got: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            for _ in range(5):
                got.append(dump(tables.compile_tables(pol, INFO)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(got) == 20 and all(g == want for g in got)
