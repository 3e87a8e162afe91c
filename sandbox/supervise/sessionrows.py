"""The tables' rows that the file system and the resolver give, looked up again for
every session: denied files' identities, whole trees, denied programs, pinned hosts.

Split out of tables.py along tablememo's line: tables.py lays out what follows from
the policy and the plan alone (compiled once, memoized); this module is what must
never be memoized (a denied file created, replaced or mounted since the last session
must be in these rows).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from sandbox._supervise import ffi, lib
from sandbox.policy.compiled import compile_policy, ordered
from sandbox.policy.model import Policy, Rule

from .fswalk import Mounts, existing_keys, file_key, trail_tree_base, whole_tree, whole_tree_base
from .tabletypes import Tables

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ACCESS_READ = lib.LG_ACCESS_READ
ACCESS_WRITE = lib.LG_ACCESS_WRITE


def session_rows(tables: Tables, policy: Policy, info: Mapping[str, Any]) -> None:
    """What the file system and the resolver say now, looked up for every session (never
    memoized: a denied file created, replaced or mounted since the last session must be
    in these rows): the open check's device+inode of the files the deny rules name and
    its trees, the denied programs' identities, the host names pinned at launch."""
    t = tables.c
    keep = tables.keep
    comp = compile_policy(policy)  # cached in policy.cache
    open_check = tables.open_check

    def cstr(s: str) -> Any:
        b = ffi.new("char[]", s.encode("utf-8", "surrogateescape"))
        keep.append(b)
        return b

    # the open check: device+inode of the files the deny rules name at launch (the path
    # rules themselves are comp's, judged by csrc/judge_path.c)
    id_rows: dict[tuple[int, int], tuple[int, int]] = {}
    tree_rows: dict[tuple[int, int, int], tuple[int, str, int]] = {}
    if open_check and "carve_outs" not in info:
        # Each tree is walked and each file stat'ed once, however many deny rules name it
        # (the key directory is denied for reading and for writing: two rules, one walk).
        walked: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        whole: dict[str, tuple[list[tuple[int, int, int, str]], list[tuple[int, int]]]] = {}
        mounts = Mounts()  # read once per compile, when a walk first needs it
        for i in range(comp.path_start, comp.unix_start):
            r = comp.rules[i]
            if r.effect == "deny":
                access = ACCESS_READ if r.action == "file_read" else ACCESS_WRITE
                globs = tuple(_path_globs(r))
                base = whole_tree_base(r, globs)
                if base is not None:
                    # landgate's key directory: denied as a tree by the directories'
                    # identities (csrc/supervise_open_tree.c), its files not listed.
                    got = whole.get(base)
                    if got is None:
                        got = whole[base] = whole_tree(base, mounts)
                    for dev, ino, mnt, real in got[0]:
                        tree_rows.setdefault((dev, ino, access), (mnt, real, i))
                    for fid in got[1]:
                        old = id_rows.get(fid)
                        id_rows[fid] = (access if old is None else old[0] | access, i)
                    continue
                trail = trail_tree_base(r, globs, comp)
                if trail is not None:
                    # the audit trail: its directories as a tree too; its files are still
                    # listed by identity below (a hard link made before the session)
                    got = whole.get(trail)
                    if got is None:
                        got = whole[trail] = whole_tree(trail, mounts, "audit directory")
                    for dev, ino, mnt, real in got[0]:
                        tree_rows.setdefault((dev, ino, access), (mnt, real, i))
                keys = walked.get(globs)
                if keys is None:
                    keys = walked[globs] = existing_keys(globs, mounts)
                for fid in keys:  # _add_key inlined: thousands of keys for a key directory
                    old = id_rows.get(fid)
                    id_rows[fid] = (access if old is None else old[0] | access, i)
    if open_check and "carve_outs" in info:
        for path, access in info["carve_outs"]:
            _add_id(id_rows, path, int(access), -1)
    # One initialiser list, filled by cffi in C (thousands of rows: 4x faster than setting
    # each field from Python); the fields after `rule` (btime) stay 0, unknown.
    ids = ffi.new(
        "struct lg_file_id[]",
        [(dev, ino, access, idx) for (dev, ino), (access, idx) in id_rows.items()] or 1,
    )
    keep.append(ids)
    t.deny_ids = ids
    t.n_deny_ids = len(id_rows)
    trees = ffi.new("struct lg_tree_id[]", max(1, len(tree_rows)))
    keep.append(trees)
    for k, ((dev, ino, access), (mnt, real, idx)) in enumerate(tree_rows.items()):
        trees[k].dev, trees[k].ino, trees[k].mnt_id = dev, ino, mnt
        trees[k].path = cstr(real)
        trees[k].access, trees[k].rule = access, idx
    t.deny_trees = trees
    t.n_deny_trees = len(tree_rows)

    _deny_programs(t, policy, info, cstr, keep)
    if info.get("resolve_hosts", True):
        for r in ordered(policy.block("network").rules):
            d = r.destination
            if d is not None and d.kind == "host" and d.host:
                tables.pinned.extend((ip, d.host.lower()) for ip in _resolve(d.host))


def _deny_programs(
    t: Any, policy: Policy, info: Mapping[str, Any], cstr: Any, keep: list[Any]
) -> None:
    """Identities of the programs the deny rules name (hard links judged as them)."""
    from sandbox.supervise.programs import denied_program_ids

    ids = denied_program_ids(policy, info.get("path_env", os.environ.get("PATH")))
    arr = ffi.new("struct lg_program_id[]", max(1, len(ids)))
    keep.append(arr)
    for i, (dev, ino, path) in enumerate(ids):
        arr[i].dev = dev
        arr[i].ino = ino
        arr[i].path = cstr(path)
    t.deny_programs = arr
    t.n_deny_programs = len(ids)


def _path_globs(rule: Rule) -> list[str]:
    p = rule.path
    if p is None:
        return []
    base = p.glob if p.anchored else "**/" + p.glob.lstrip("/")
    base = base.rstrip("/") or "/"
    out = [base]
    if (p.directory or base.endswith("/**")) and not base.endswith("/**"):
        out.append(base + "/**")
    return out


def _add_key(
    rows: dict[tuple[int, int], tuple[int, int]], key: tuple[int, int], access: int, idx: int
) -> None:
    old = rows.get(key)
    rows[key] = ((old[0] if old else 0) | access, idx if idx >= 0 or not old else old[1])


def _add_id(rows: dict[tuple[int, int], tuple[int, int]], path: str, access: int, idx: int) -> None:
    key = file_key(path)
    if key is not None:
        _add_key(rows, key, access, idx)


def _resolve(host: str) -> list[str]:
    """Pin a policy host name at launch (DESIGN §4 rung 2: hostnames pinned)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    out: list[str] = []
    for _f, _t, _p, _c, sa in infos:
        ip = str(sa[0])
        if ip not in out:
            out.append(ip)
    return out
