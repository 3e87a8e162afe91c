"""The C renderer (csrc/render_event.c) against the trail's Python path (issue 19).

A drained batch is rendered by C straight into sealed trail lines; the Python path
(DecisionEvent -> to_entry -> decision_entry -> seal) is the spelling of record.  The
two must agree on every byte, over records of every shape, including what an agent
chooses: bytes that are not UTF-8, quotes, backslashes, control characters, any int.
"""

from __future__ import annotations

import random
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import pinned_writer
from sandbox._supervise import ffi, lib

from sandbox.audit import verify_trail
from sandbox.audit.canonical import GENESIS_PREV, seal
from sandbox.audit.entries import decision_entry
from sandbox.session.recorder import Recorder
from sandbox.supervise import Supervisor, compile_tables
from sandbox.supervise.records import RecordBatch

ACTS = (
    [lib.LG_ACT_EXEC] * 4
    + [lib.LG_ACT_OPEN] * 3
    + [
        lib.LG_ACT_CONNECT,
        lib.LG_ACT_SEND,
        0,
        99,
        -1,
    ]
)
# Pieces the agent can put in a name or a word: ASCII, JSON's specials, controls,
# well-formed UTF-8 of every length (and U+2028, which JSON need not escape), and
# bytes that are not UTF-8: stray continuations, overlongs, encoded surrogates,
# beyond U+10FFFF, sequences cut short.
PIECES = [
    b"a",
    b"Z",
    b" ",
    b"/",
    b"-",
    b'"',
    b"\\",
    b"\\u00",
    b"{",
    b"}",
    b"\x7f",
    b"\t",
    b"\n",
    b"\r",
    b"\x08",
    b"\x0c",
    b"\x01",
    b"\x1f",
    b"\x1b[31m",
    "é".encode(),
    "€".encode(),
    "𝄞".encode(),
    "\u2028".encode(),
    "\ufeff".encode(),
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xbf",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",
    b"\xed\x9f\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf4\x8f\xbf\xbf",
    b"\xf0\x8f\xbf\xbf",
    b"\xf5\x80",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xc3",
]
INT32 = [0, 1, -1, 2**31 - 1, -(2**31), 13, 59, 4242]


def _text(rng: random.Random, limit: int, nul: float = 0.0) -> bytes:
    out = b""
    for _ in range(rng.choice([0, 1, 3, 10, 40, 400])):
        out += b"\0" if rng.random() < nul else rng.choice(PIECES)
    return out[: rng.choice([limit, limit, rng.randrange(limit + 1)])]


def _fill(e: Any, rng: random.Random, nrules: int) -> None:
    e.seq = rng.choice([0, 1, 2**63, 2**64 - 1, rng.randrange(2**64)])
    base = rng.choice([1_764_939_599_123_456_789, 10**18, 2**63 + 12345, 2**64 - 1])
    e.t_recv_ns = min(base + rng.randrange(10**9), 2**64 - 1)
    later = min(e.t_recv_ns + rng.randrange(10**7), 2**64 - 1)
    e.t_resp_ns = rng.choice([0, e.t_recv_ns, later])
    e.pid, e.tid, e.err, e.syscall_nr = (rng.choice(INT32) for _ in range(4))
    e.action = rng.choice(ACTS)
    e.result = rng.choice([lib.LG_EFFECT_ALLOW] * 3 + [lib.LG_EFFECT_DENY, 0, 7])
    e.rule = rng.choice([-1, -7, nrules, nrules + 100, *range(nrules), *range(nrules)])
    e.flags = rng.choice([0, lib.LG_EV_VERIFIED, lib.LG_EV_EXEC_RACE, 0xFFF, rng.randrange(2**32)])
    if e.action == lib.LG_ACT_EXEC and rng.random() < 0.9:
        raw = _text(rng, lib.LG_TARGET_MAX, nul=0.2)
        e.argc = rng.choice([1, 2, 3, raw.count(b"\0") + 1, raw.count(b"\0"), 50, 0, -3])
        e.target_len = rng.choice([len(raw)] * 4 + [-5, 0, 2000, rng.randrange(len(raw) + 1)])
    else:
        raw = _text(rng, lib.LG_TARGET_MAX)
        e.argc = rng.choice([0, 0, 2, -1])
        e.target_len = rng.choice([len(raw), 0, 99999])
    ffi.memmove(e.target, raw + b"\0" * (lib.LG_TARGET_MAX - len(raw)), lib.LG_TARGET_MAX)
    if e.action == lib.LG_ACT_OPEN and rng.random() < 0.6:
        d = rng.choice([b"read", b"write", b"read-write", b"write /etc/x", b"writer", b"write\xff"])
    else:
        d = _text(rng, lib.LG_DETAIL_MAX)
    ffi.memmove(e.detail, d + b"\0" * (lib.LG_DETAIL_MAX - len(d)), lib.LG_DETAIL_MAX)


def _policy() -> Any:
    import ipaddress

    from tests.supervise.conftest import dest, make_policy

    net = ipaddress.ip_network("140.82.121.0/24")
    return make_policy(
        [("true", "allow"), ("rm -rf *", "deny"), ('say "hi" \\ there*', "allow")],
        [(dest("140.82.121.0/24:443", "ip", network=net, port=443), "allow")],
    )


def _python_lines(
    batch: RecordBatch, seq: int, prev: str, session: str, key: bytes
) -> tuple[bytes, list[bytes]]:
    """The Python path: what AuditWriter.append_many and Chain.write_many make."""
    lines, raws = [], []
    for ev in batch.events():
        entry = decision_entry(ev.to_entry())
        entry["session"] = session
        entry.setdefault("mode", "enforce")
        seq += 1
        entry["seq"], entry["prev"] = seq, prev
        line, prev, raw = seal(entry, key)
        lines.append(line)
        raws.append(raw)
    return b"".join(lines), raws


def test_c_renderer_writes_the_python_paths_bytes() -> None:
    rng = random.Random(19)
    tables = compile_tables(_policy(), {})
    sup = Supervisor(-1, tables, root_pid=1)
    nrules = len(tables.rules)
    size = ffi.sizeof("struct lg_event")
    compared = fell_back = 0
    shapes: set[str] = set()
    for round_ in range(60):
        n = rng.choice([1, 2, 7, 64, 256])
        buf = ffi.new("struct lg_event[]", n)
        for i in range(n):
            _fill(buf[i], rng, nrules)
        batch = RecordBatch(sup, ffi.buffer(buf, n * size)[:], n)
        key = rng.randbytes(32)
        session = rng.choice(["20261205-101010-abcdef", 'odd "session" \\ é'])
        seq = rng.choice([0, 41, 2**40])
        prev = GENESIS_PREV if round_ % 3 == 0 else rng.randbytes(32).hex()
        got = batch.render(0, n, seq, prev, session, key)
        assert got is not None
        want = _python_lines(batch, seq, prev, session, key)
        if got[0] != want[0]:  # name the first line that differs
            for i, (a, b) in enumerate(
                zip(got[0].split(b"\n"), want[0].split(b"\n"), strict=False)
            ):
                assert a == b, (round_, i)
        assert got == want
        # the codes count what count_decision counts
        names = batch.actions
        codes = [(names[c >> 1], "deny" if c & 1 else "allow") for c in batch.codes]
        assert codes == [(ev.action, ev.result) for ev in batch.events()]
        compared += n
        for ev in batch.events():
            shapes.add(ev.action)
            if any("\udc80" <= c <= "\udcff" for c in ev.target):
                shapes.add("not-utf8")
            if ev.argv is not None and len(ev.argv) > 1:
                shapes.add("argv")
    assert compared > 3000
    assert shapes >= {"shell_exec", "network", "file_read", "file_write", "unknown"}
    assert {"not-utf8", "argv"} <= shapes
    assert fell_back == 0


def test_a_clock_c_does_not_format_takes_the_python_path() -> None:
    tables = compile_tables(_policy(), {})
    sup = Supervisor(-1, tables, root_pid=1)
    buf = ffi.new("struct lg_event[]", 2)
    rng = random.Random(5)
    for i in range(2):
        _fill(buf[i], rng, len(tables.rules))
    buf[1].t_recv_ns = 5  # 5e-9 s: the Python path stamps the writer's clock instead
    batch = RecordBatch(sup, ffi.buffer(buf, 2 * ffi.sizeof("struct lg_event"))[:], 2)
    assert batch.render(0, 2, 0, GENESIS_PREV, "s", b"k" * 32) is None
    # its twin: the first record alone renders
    assert batch.render(0, 1, 0, GENESIS_PREV, "s", b"k" * 32) is not None


def test_render_double_is_repr() -> None:
    out = ffi.new("char[40]")
    rng = random.Random(7)
    values = [0.0, 1e9, 1e15, 9999999999999998.0, 562949953421312.25, 562949953421312.75]
    for e in range(-23, 2):  # the powers of two: a narrower gap below
        values += [m * 2.0**e for m in (2**52, 2**52 + 1, 2**53 - 1)]
    for _ in range(20000):
        values.append(rng.randrange(10**18, 2**64) / 1e9)
        values.append(rng.randrange(2**52, 2**53) * 2.0 ** rng.randrange(-23, 2))
        values.append(rng.uniform(1e9, 1e16))
    checked = 0
    for d in values:
        n = lib.lg_render_double(d, out)
        if not (d == 0 or 1e9 <= d < 1e16):
            assert n == -1, d
            continue
        assert ffi.string(out).decode() == repr(d), d
        checked += 1
    assert checked > 50000
    for d in (1.5, 999999999.9, 1e16, -1e10, float("inf"), float("nan")):
        assert lib.lg_render_double(d, out) == -1, d


class _PythonPath:
    """The Recorder's event callable without `records`: the drainer hands it events."""

    def __init__(self, recorder: Recorder) -> None:
        self.many = recorder.event.many
        self.one = recorder.event.one

    def __call__(self, ev: Any) -> None:
        self.one(ev)


def _trail(tmp: Path, monkeypatch: pytest.MonkeyPatch, batch: int, c_path: bool) -> bytes:
    """The trail of the generated records delivered `batch` at a time, with a torn line
    and records C does not render in the middle, through either path."""
    rendered: list[int] = []  # the runs C rendered (the test must see the C path taken)
    real_render = RecordBatch.render

    def render(self: RecordBatch, start: int, count: int, *a: Any) -> Any:
        got = real_render(self, start, count, *a)
        rendered.append(0 if got is None else count)
        return got

    monkeypatch.setattr(RecordBatch, "render", render)
    writer, audit, keys = pinned_writer(tmp, monkeypatch, f"{batch}{c_path}")
    handed: list[Any] = []
    recorder = Recorder(writer, handed.append)
    tables = compile_tables(_policy(), {})
    on_event = recorder.event if c_path else _PythonPath(recorder)
    sup = Supervisor(-1, tables, root_pid=1, on_event=on_event)
    rng = random.Random(23)
    n = 60
    buf = ffi.new("struct lg_event[]", n)
    for i in range(n):
        _fill(buf[i], rng, len(tables.rules))
        buf[i].seq = i + 1
    buf[33].t_recv_ns = 12  # not a clock C formats: this record's batch takes Python's path
    size = ffi.sizeof("struct lg_event")
    one = ffi.new("struct lg_event[]", batch)
    for start in range(0, n, batch):
        k = min(batch, n - start)
        if start <= 45 < start + k:
            seg = sorted(audit.glob("trail-*.jsonl"))[-1]
            with open(seg, "ab") as f:  # a writer that died mid-line
                f.write(b'{"action":"torn')
        ffi.memmove(one, buf + start, k * size)
        assert sup._deliver_batch(one, k) == start + k
    assert sup._callback_error is None
    assert [ev.seq for ev in handed] == list(range(1, n + 1))
    if c_path:  # most records by C; the torn line's and the odd clock's runs by Python
        assert 30 <= sum(rendered) < n, (batch, rendered)
    else:
        assert not rendered
    counts = writer.counts()
    writer.end_session(0)
    writer.close()
    assert verify_trail(audit, key_directory=keys).ok
    data = b"".join(p.read_bytes() for p in sorted(audit.glob("trail-*.jsonl")))
    shutil.rmtree(audit)
    return data + repr((counts, recorder.exec_denied)).encode()


def test_c_path_trail_is_byte_identical_to_the_python_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (the torn line lands before the batch holding record 45: one trail per batch size)
    for batch in (1, 4, 30, 60):
        want = _trail(tmp_path, monkeypatch, batch, c_path=False)
        assert want.count(b'"type":"decision"') == 60
        assert want.count(b'"type":"checkpoint"') >= 8
        assert want.count(b'"recovered_torn_bytes"') == 1
        assert want.count(b'"event_ts"') == 1  # the record whose clock C did not format
        assert b"\\udc" in want  # bytes that are not UTF-8, escaped
        assert _trail(tmp_path, monkeypatch, batch, c_path=True) == want, batch


def test_the_seq_read_back_is_the_records() -> None:
    tables = compile_tables(_policy(), {})
    sup = Supervisor(-1, tables, root_pid=1)
    buf = ffi.new("struct lg_event[]", 3)
    for i, s in enumerate((5, 6, 2**64 - 1)):
        buf[i].seq = s
    size = ffi.sizeof("struct lg_event")
    assert RecordBatch(sup, ffi.buffer(buf, 3 * size)[:], 3).last_seq == 2**64 - 1
    assert RecordBatch(sup, b"", 0).last_seq == 0
    assert struct.calcsize("=Q") == 8


def test_both_sha256_compressions_are_sha256() -> None:
    """The renderer's SHA-256 (the CPU's SHA extensions when it has them, and the
    portable one) over every length around the block boundaries and random ones."""
    import hashlib

    out = ffi.new("unsigned char[32]")
    rng = random.Random(3)
    used_ni = 0
    for n in [*range(200), *(rng.randrange(20000) for _ in range(200))]:
        data = rng.randbytes(n)
        want = hashlib.sha256(data).digest()
        used_ni += lib.lg_render_sha256(data, n, out, 0)
        assert bytes(out) == want, n
        assert lib.lg_render_sha256(data, n, out, 1) == 0
        assert bytes(out) == want, n
    # the chosen compression is the CPU's whenever it has the extensions
    with open("/proc/cpuinfo") as f:
        has = " sha_ni" in f.read()
    assert used_ni == (400 if has else 0)


def test_rule_slots_are_filled_when_a_record_first_names_them() -> None:
    tables = compile_tables(_policy(), {})
    sup = Supervisor(-1, tables, root_pid=1)
    rng = random.Random(11)
    buf = ffi.new("struct lg_event[]", 3)
    for i in range(3):
        _fill(buf[i], rng, len(tables.rules))
        buf[i].t_recv_ns = buf[i].t_resp_ns = 1_764_939_599_123_456_789
    buf[0].rule, buf[1].rule, buf[2].rule = 2, -1, 2
    batch = RecordBatch(sup, ffi.buffer(buf, 3 * ffi.sizeof("struct lg_event"))[:], 3)
    got = batch.render(0, 3, 0, GENESIS_PREV, "s", b"k" * 32)
    assert got == _python_lines(batch, 0, GENESIS_PREV, "s", b"k" * 32)
    r = sup.renderer()
    filled = [i for i in range(r.nrules) if r.rules[i].refs != ffi.NULL]
    assert filled == [2] and r.nrules > 3


def test_a_batch_larger_than_the_buffers_renders_in_several_calls() -> None:
    """The digests and codes buffers hold 256 records: a longer run goes in several
    C calls (the drainer never drains more at once, but render must not rely on it)."""
    tables = compile_tables(_policy(), {})
    sup = Supervisor(-1, tables, root_pid=1)
    rng = random.Random(13)
    n = 600
    buf = ffi.new("struct lg_event[]", n)
    for i in range(n):
        _fill(buf[i], rng, len(tables.rules))
        buf[i].t_recv_ns = buf[i].t_resp_ns = 1_764_939_599_123_456_789 + i
    batch = RecordBatch(sup, ffi.buffer(buf, n * ffi.sizeof("struct lg_event"))[:], n)
    got = batch.render(0, n, 7, GENESIS_PREV, "s", b"k" * 32)
    assert got == _python_lines(batch, 7, GENESIS_PREV, "s", b"k" * 32)
    assert len(batch.codes) == n
