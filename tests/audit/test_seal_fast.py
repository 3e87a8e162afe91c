"""The writer's native seal and one-call append (csrc/audit_seal.c, sandbox.audit.native)
against the pure-Python path (canonical.seal, chain.write under trail_io's flock).

The native path is what a supervisor's writer uses (its process has loaded
sandbox._supervise); the Python one what every other writer uses.  They must make the
same bytes for the same inputs, line for line and trail for trail, and keep every
integrity rule: a line written only while the segment is the size the writer saw (what
anyone appended meanwhile is adopted or recorded, never chained over), nothing torn
left behind, the Merkle frontier and checkpoints the same.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sandbox._supervise  # the native path's module, as in the supervisor's process
from audit_helpers import (  # noqa: F401 - the `trail` and `seal_path` fixtures
    Trail,
    event,
    pinned_writer,
    seal_path_fixture,
    trail_fixture,
)

from sandbox.audit import verify_trail
from sandbox.audit.canonical import seal
from sandbox.audit.merkle import Frontier
from sandbox.audit.native import NativeSeal, native_seal, native_subtree
from sandbox.errors import AuditError

KEY = bytes(range(32))
_WORDS = [
    "", "a", '"q"', "back\\slash", "\x00\x1f\x7f", "é", "\u2028", "€𝄞", "\udcff\udc80",
    "hash", '"hash":"', "{", "}", "\n",
]  # fmt: skip
_KEYS = ["hash", "seq", "prev", "type", "k", "path", "é", "", '"hash":"']


def _value(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return rng.choice([0, -1, 1 << 64, -(1 << 70), rng.randrange(-(1 << 62), 1 << 62)])
    if pick == 1:
        return rng.choice([0.0, -0.0, 1e-300, 1e300, 0.1, 1 / 3, 1e16, 1764900000.123456])
    if pick == 2:
        return rng.random() * 10 ** rng.randrange(-8, 20)
    if pick == 3:
        return rng.choice([True, False, None])
    if pick in (4, 5):
        return "".join(rng.choice(_WORDS) for _ in range(rng.randrange(0, 60)))
    if pick == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if pick == 7:
        return (_value(rng, depth + 1), _value(rng, depth + 1))
    return {rng.choice(_KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def _entry(rng: random.Random, seq: int) -> dict[str, Any]:
    # "a.." keys sort before "hash", "x.." after it: the member is first, middle or last
    prefix = rng.choice(["a", "x", "i"])
    entry = {f"{prefix}{k}": _value(rng, 0) for k in range(rng.randrange(0, 12))}
    entry.update(type="decision", seq=seq, prev=f"{rng.getrandbits(256):064x}")
    return entry


def _which(w: Any) -> str:
    return "python" if w._chain.sealer is None else "native"


# ------------------------------------------------------------------------ one line


def test_native_seal_makes_canonical_seals_line() -> None:
    native = native_seal(KEY)
    assert native is not None
    rng = random.Random(41)
    first = 0
    for seq in range(1, 3001):
        entry = _entry(rng, seq)
        want = seal(dict(entry), KEY)
        assert native.seal(dict(entry)) == want, entry
        first += want[0].startswith(b'{"hash":"')
    assert first > 100  # the member first (the comma after it cut) was exercised


def test_native_seal_of_large_and_odd_values() -> None:
    native = native_seal(KEY)
    assert native is not None
    big = "x" * (1 << 20) + "é\udcff" * 5000
    for entry in (
        {"type": "decision", "seq": 1, "prev": "0" * 64},
        {"a": big, "type": "decision", "seq": 2, "prev": "1" * 64},
        {"z": [big, {"hash": big}], "seq": 3, "prev": "2" * 64},
        {"seq": 4},  # the member first and the only other one after it
        {},  # the member alone
    ):
        assert native.seal(dict(entry)) == seal(dict(entry), KEY)


def test_native_seal_refuses_bad_keys_and_a_line_without_the_member() -> None:
    for key in (b"", b"k" * 33):
        with pytest.raises(AuditError, match="BLAKE2s takes 1 to 32"):
            NativeSeal(sandbox._supervise, key)
    lib = sandbox._supervise.lib
    ffi = sandbox._supervise.ffi
    base = ffi.new("uint32_t[8]")
    assert lib.lg_audit_tag_base(KEY, 32, base) == 0
    out = ffi.new("struct lg_audit_sealed *")
    for line in (b'{"a":1}', b'{"hash":"h"}', b'{"hash":"', b'{"hash":"' + b"h" * 96 + b'"}'):
        assert lib.lg_audit_seal(line, len(line), base, out) == -22  # -EINVAL


# ------------------------------------------------------------------- the append


def test_native_append_writes_only_at_the_size_it_was_told(tmp_path: Path) -> None:
    """The size check is what keeps a line from being chained over one it never saw."""
    native = native_seal(KEY)
    assert native is not None
    seg = os.open(tmp_path / "seg", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    lock = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        entry = {"type": "decision", "seq": 1, "prev": "0" * 64, "target": "/é"}
        assert native.append(lock, seg, 0, dict(entry)) is not None
        written = (tmp_path / "seg").read_bytes()
        assert written == seal(dict(entry), KEY)[0]
        os.write(seg, b"someone else's line\n")
        # told the old size: nothing written (the writer catches up instead)
        assert native.append(lock, seg, len(written), dict(entry)) is None
        assert (tmp_path / "seg").read_bytes() == written + b"someone else's line\n"
    finally:
        os.close(seg)
        os.close(lock)


def test_native_append_reports_a_bad_descriptor_as_oserror(tmp_path: Path) -> None:
    native = native_seal(KEY)
    assert native is not None
    lock = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="Bad file descriptor"):
            native.append(lock, 1 << 20, 0, {"seq": 1})
    finally:
        os.close(lock)


# ------------------------------------------------------------- whole trails


def _events(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        ev = event(i, result=rng.choice(["allow", "deny"]))
        ev.update({f"x{k}": _value(rng, 0) for k in range(rng.randrange(0, 4))})
        if i % 5 == 0:
            ev["ts"] = 1764900000.25 + i  # the supervisor's clock, kept as is
        if i % 11 == 0:
            ev.update(seq=i, hash="not mine")  # kept as event_seq, event_hash
        out.append(ev)
    return out


def _trail(tmp: Path, monkeypatch: pytest.MonkeyPatch, name: str, native: bool) -> bytes:
    with monkeypatch.context() as m:
        if not native:
            m.delitem(sys.modules, "sandbox._supervise")
        writer, audit, keys = pinned_writer(tmp, m, name)
        assert (writer._chain.sealer is not None) == native
        writer.segment_max_bytes = 40_000  # rotations: the Python path's catch-up
        rng = random.Random(5)
        for ev in _events(rng, 150):
            assert writer.append(ev) > 0
        assert writer.append_many(_events(rng, 40)) > 0
        for ev in _events(rng, 30):
            assert writer.append(ev) > 0
        writer.end_session(0)
        writer.close()
        assert verify_trail(audit, key_directory=keys).ok
        segs = sorted(audit.glob("trail-*.jsonl"))
        data = b"".join(p.read_bytes() for p in segs)
        shutil.rmtree(audit)  # the next trail is made at the same path (its start names it)
    assert len(segs) >= 3
    return data


def test_the_same_events_make_the_same_trail_natively_and_in_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = _trail(tmp_path, monkeypatch, "python", native=False)
    assert want.count(b'"type":"decision"') == 220
    assert want.count(b'"type":"checkpoint"') >= 30
    assert _trail(tmp_path, monkeypatch, "native", native=True) == want


def test_a_line_someone_else_appended_is_recorded_not_chained_over(
    trail: Trail, seal_path: str
) -> None:
    """Attack: a line lands between two appends (no flock taken).  The next append sees
    the segment grew, leaves the line as evidence and records it, then chains on."""
    w = trail.writer()
    assert _which(w) == seal_path
    sid = w.start_session({"mode": "enforce"})
    w.append(event(1))
    bad_seq = trail.entries()[-1]["seq"] + 1
    with open(trail.segment, "ab") as f:
        f.write(b'{"action":"file_read","result":"allow","seq":%d}\n' % bad_seq)
    assert w.append(event(2)) == bad_seq + 1
    w.end_session(0)
    w.close()
    entries = [e for e in trail.entries() if "type" in e]
    tamper = [e for e in entries if e["type"] == "tamper"]
    assert len(tamper) == 1 and (tamper[0]["seq"], tamper[0]["session"]) == (bad_seq, sid)
    r = verify_trail(trail.dir, key_directory=trail.keys)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "malformed", bad_seq), r.summary()


def test_another_writers_lines_between_ours_are_adopted(trail: Trail, seal_path: str) -> None:
    """The allowed twin: two landgate writers interleave; every line chains, no tamper."""
    a, b = trail.writer(checkpoint_every=5), trail.writer(checkpoint_every=3)
    assert _which(a) == _which(b) == seal_path
    a.start_session({"mode": "enforce"})
    b.start_session({"mode": "enforce"})
    for i in range(40):
        assert (a if i % 3 else b).append(event(i)) > 0
    b.end_session(0)
    a.end_session(0)
    a.close()
    b.close()
    entries = trail.entries()
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert not any(e["type"] == "tamper" for e in entries)
    r = verify_trail(trail.dir, key_directory=trail.keys)
    assert r.ok and r.sessions == 2, r.summary()


def test_a_torn_line_is_cut_and_reported_on_either_path(trail: Trail, seal_path: str) -> None:
    w = trail.writer()
    assert _which(w) == seal_path
    w.start_session({"mode": "enforce"})
    w.append(event(1))
    with open(trail.segment, "ab") as f:
        f.write(b'{"action":"torn')
    w.append(event(2))
    w.end_session(0)
    w.close()
    assert [e.get("recovered_torn_bytes") for e in trail.entries()].count(15) == 1
    assert verify_trail(trail.dir, key_directory=trail.keys).ok


_SHORT_WRITE = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    from pathlib import Path
    if sys.argv[4] == "native":
        import sandbox._supervise
    from sandbox.audit import AuditWriter
    from sandbox.errors import AuditError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the signal
    audit = Path(sys.argv[1])
    w = AuditWriter(audit, key_directory=Path(sys.argv[2]), durability=sys.argv[3])
    w.start_session({"mode": "enforce"})
    seg = sorted(audit.glob("trail-*.jsonl"))[-1]
    # past this size a write is cut short, and the next one fails with EFBIG
    limit = seg.stat().st_size + 5333
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    appended = 0
    try:
        for i in range(1000):
            if w.append({"action": "file_read", "target": f"/ws/{i:03}" + "y" * 300}) < 0:
                break
            appended += 1
    except AuditError:
        pass
    print(json.dumps([w.failed, appended, w._chain.sealer is not None, limit]))
    w.end_session(1)
    w.close()
    """
)


@pytest.mark.parametrize("durability", ["batch", "strict"])
def test_a_short_write_is_cut_back_and_stops_the_writer(
    tmp_path: Path, seal_path: str, durability: str
) -> None:
    """A write the file size limit cuts short, then EFBIG: the fragment is cut back off
    (the trail still verifies), the writer fails and says why."""
    audit, keys = tmp_path / "audit", tmp_path / "keys"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _SHORT_WRITE, str(audit), str(keys), durability, seal_path],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, proc.stderr
    failed, appended, native, limit = json.loads(proc.stdout)
    assert native == (seal_path == "native")
    assert failed is not None and "File too large" in failed
    assert 5 < appended < 20
    data = b"".join(p.read_bytes() for p in sorted(audit.glob("trail-*.jsonl")))
    assert len(data) < limit and data.endswith(b"\n")  # the short write's fragment cut
    r = verify_trail(audit, key_directory=keys)
    assert r.ok and len(r.unsealed) == 1, r.summary()
    assert r.entries == appended + 2  # the trail's start and the session's


# ------------------------------------------------------------------- Merkle


def test_native_subtree_is_the_python_fold_for_every_size() -> None:
    subtree = native_subtree()
    assert subtree is not None
    rng = random.Random(9)
    for h in range(13):
        leaves = [rng.randbytes(32) for _ in range(1 << h)]
        python = Frontier()
        python.extend(leaves)
        python.fold()
        assert python.levels[h] == subtree(b"".join(leaves), 1 << h)
    for n, data in ((0, b""), (3, bytes(96)), (4, bytes(96)), (2, bytes(96))):
        with pytest.raises(ValueError, match="not a complete Merkle subtree"):
            subtree(data, n)


def test_frontier_with_native_subtrees_agrees_at_every_count() -> None:
    subtree = native_subtree()
    assert subtree is not None
    rng = random.Random(13)
    native, python = Frontier(subtree=subtree), Frontier()
    for count in range(1, 1500):
        leaves = [rng.randbytes(32) for _ in range(rng.choice([1, 1, 2, 7, 64]))]
        native.extend(leaves)
        python.extend(leaves)
        if count % 3 == 0:
            assert native.root() == python.root()
            assert native.to_list() == python.to_list()
    assert native.count == python.count


def test_writer_without_the_extension_has_no_native_parts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "sandbox._supervise")
    assert native_seal(KEY) is None and native_subtree() is None


def test_a_seal_without_its_member_is_an_audit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sandbox.audit.native as native_mod

    native = native_seal(KEY)
    assert native is not None
    monkeypatch.setattr(native_mod, "placeholder_line", lambda entry, placeholder: b'{"a":1}')
    with pytest.raises(AuditError, match="without its hash member"):
        native.seal({})
