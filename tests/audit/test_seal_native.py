"""The writer's native SHA-256 (canonical.native_sha256: csrc/render_digest.c, with the
CPU's SHA extensions when it has them) against the interpreter's (issue 19, audit rates).

The writer seals lines and folds its Merkle frontier with the native SHA-256 when the
process has loaded sandbox._supervise; verify recomputes everything with hashlib.  The
two must agree on every byte: the same line for every entry shape, the same frontier,
root and checkpoint for every leaf count, and a trail the native path wrote verifies.
"""

from __future__ import annotations

import hashlib
import random
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import sandbox._supervise  # noqa: F401 - loaded, as in the supervisor's process

from sandbox.audit import AuditWriter, verify_trail
from sandbox.audit.canonical import builtin_sha256, native_sha256, seal
from sandbox.audit.chain import Chain
from sandbox.audit.merkle import Frontier

KEY = bytes(range(32))
_WORDS = ["", "a", '"q"', "back\\slash", "\x00\x1f", "é", "\u2028", "€𝄞", "\udcff", "hash"]


def _value(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(8 if depth < 2 else 5)
    if pick == 0:
        return rng.randrange(-(1 << 62), 1 << 62)
    if pick == 1:
        return rng.random() * 10 ** rng.randrange(-5, 15)
    if pick == 2:
        return rng.choice([True, False, None])
    if pick in (3, 4):
        return "".join(rng.choice(_WORDS) for _ in range(rng.randrange(0, 200)))
    if pick == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    keys = ["hash", "seq", "prev", "type", "k", "path"]
    return {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def _entry(rng: random.Random, seq: int) -> dict[str, Any]:
    entry = {f"f{k}": _value(rng, 0) for k in range(rng.randrange(1, 12))}
    entry.update(type="decision", seq=seq, prev=f"{rng.getrandbits(256):064x}")
    return entry


def test_native_sha256_is_there_once_the_extension_is_loaded() -> None:
    assert native_sha256() is not None


def test_native_sha256_matches_hashlib_for_every_length() -> None:
    sha = native_sha256()
    assert sha is not None
    rng = random.Random(7)
    for n in list(range(300)) + [rng.randrange(300, 5000) for _ in range(200)]:
        data = rng.randbytes(n)
        assert sha(data) == hashlib.sha256(data).digest() == builtin_sha256(data)


def test_seal_native_and_builtin_make_the_same_line() -> None:
    sha = native_sha256()
    assert sha is not None
    rng = random.Random(19)
    for seq in range(1, 1001):
        entry = _entry(rng, seq)
        want = seal(dict(entry), KEY, builtin_sha256)
        got = seal(dict(entry), KEY, sha)
        assert got == want, entry


def test_frontier_native_and_builtin_agree_at_every_count() -> None:
    sha = native_sha256()
    assert sha is not None
    rng = random.Random(3)
    native, builtin = Frontier(sha), Frontier()
    for count in range(1, 2100):
        assert native.count == builtin.count == count - 1
        leaf = rng.randbytes(32)
        native.add(leaf)
        builtin.add(leaf)
        assert native.root() == builtin.root()
        assert native.to_list() == builtin.to_list()
    back = Frontier.from_list(native.to_list(), native.count, sha)
    assert back.root() == builtin.root()


def test_writer_without_the_extension_loaded_uses_the_builtin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The writer never imports the extension (its load time and memory, issue 19)."""
    monkeypatch.delitem(sys.modules, "sandbox._supervise")
    assert native_sha256() is None
    chain = Chain(tmp_path, KEY)
    assert chain.sha is builtin_sha256
    assert chain.frontier.sha is builtin_sha256


def test_a_trail_the_native_path_wrote_verifies_and_a_builtin_writer_continues_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Native writer, then a builtin one adopting its checkpoint and chain, then native
    threads appending at once: verify (hashlib) accepts every line and checkpoint."""
    trail, keys = tmp_path / "trail", tmp_path / "keys"
    with AuditWriter(trail, key_directory=keys, checkpoint_every=7) as w:
        assert w._chain.sha is not builtin_sha256
        w.start_session({"mode": "enforce"})
        for i in range(100):
            w.append({"action": "file_read", "target": f"/p/{i}", "result": "allow"})
        w.end_session(0)
    with monkeypatch.context() as m:
        m.delitem(sys.modules, "sandbox._supervise")
        with AuditWriter(trail, key_directory=keys, checkpoint_every=5) as w:
            assert w._chain.sha is builtin_sha256
            w.start_session({"mode": "enforce"})
            w.append_many([{"action": "x", "result": "deny"}] * 23)
            w.end_session(0)
    with AuditWriter(trail, key_directory=keys, checkpoint_every=11) as w:
        w.start_session({"mode": "enforce"})

        def worker(k: int) -> None:
            for i in range(200):
                w.append({"action": "file_read", "target": f"/t/{k}/{i}", "result": "allow"})

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        w.end_session(0)
    report = verify_trail(trail, key_directory=keys)
    assert report.ok, report.summary()
    assert report.sessions == 3
