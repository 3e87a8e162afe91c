"""The drainer's batch path (issue 19): a batch of ring records read in one copy and
recorded with one write says, byte for byte, what the records drained one by one say."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import pinned_writer
from sandbox._supervise import ffi, lib

from sandbox.audit import verify_trail
from sandbox.session.recorder import Recorder
from sandbox.supervise import Supervisor, compile_tables

EXEC, OPEN, CONNECT = lib.LG_ACT_EXEC, lib.LG_ACT_OPEN, lib.LG_ACT_CONNECT


def _policy() -> Any:
    import ipaddress

    from tests.supervise.conftest import dest, make_policy

    net = ipaddress.ip_network("140.82.121.0/24")
    return make_policy(
        [("true", "allow"), ("rm -rf *", "deny")],
        [(dest("140.82.121.0/24:443", "ip", network=net, port=443), "allow")],
    )


def _records(tables: Any, *, utf8: bool = False) -> list[dict[str, Any]]:
    """Records of every shape the drainer meets, odd ones included.  `utf8`: none with
    bytes that are not UTF-8 (the trail's canonical JSON cannot encode the lone
    surrogates they decode to: such a record stops the session, before and after the
    batch path alike)."""
    rules = tables.rules
    true_rule = next(i for i, r in enumerate(rules) if r.rule and r.rule.pattern == "true")
    net_rule = next(i for i, r in enumerate(rules) if r.action == "network" and r.rule)
    default = next(i for i, r in enumerate(rules) if r.rule is None)
    bad = b"caf\xc3\xa9" if utf8 else b"caf\xc3\xa9 \xff\xfe"  # UTF-8 and bytes that are not
    out: list[dict[str, Any]] = [
        {"action": EXEC, "rule": true_rule, "argv": [b"/bin/true"], "detail": b"/usr/bin/true"},
        {"action": EXEC, "rule": true_rule, "argv": [b"/usr/bin/rm", b"-rf", bad], "detail": b""},
        {
            "action": EXEC,
            "rule": default,
            "argv": [b"x" * 1000, b"y" * 100],
            "flags": 32,
        },  # truncated
        {
            "action": EXEC,
            "rule": -1,
            "argv": [],
            "target": b"/bin/sh",
            "flags": 64,
            "result": 2,
            "err": 1,
        },
        {
            "action": CONNECT,
            "rule": net_rule,
            "target": b"140.82.121.4:443",
            "detail": b"github.com",
        },
        {"action": lib.LG_ACT_SEND, "rule": len(rules) + 5, "target": b"10.0.0.1:53", "flags": 512},
        {
            "action": OPEN,
            "rule": -1,
            "target": b"/home/u/.ssh/id_" + bad,
            "detail": b"read",
            "result": 2,
        },
        {
            "action": OPEN,
            "rule": -1,
            "target": b"/etc/shadow",
            "detail": b"write /etc/x",
            "err": 13,
        },
        {"action": OPEN, "rule": default, "target": b"/tmp/a", "detail": b"read-write", "flags": 1},
        {"action": 99, "rule": -1, "target": b"t" * 1024, "detail": b"d" * 256, "flags": 0xFFF},
    ]
    return out


def _fill(e: Any, seq: int, r: dict[str, Any]) -> None:
    e.seq = seq
    e.t_recv_ns = 1_764_939_599_123_456_789 + seq
    e.t_resp_ns = 1_764_939_599_123_470_001 + seq
    e.pid, e.tid = 4000 + seq, 5000 + seq
    e.action = r["action"]
    e.result = r.get("result", lib.LG_EFFECT_ALLOW)
    e.rule = r["rule"]
    e.err = r.get("err", 0)
    e.flags = r.get("flags", 0)
    e.syscall_nr = 59
    if r.get("argv"):
        raw = b"\0".join(r["argv"]) + b"\0"
        e.argc = len(r["argv"])
    else:
        raw = r.get("target", b"")
        e.argc = 0
    raw = raw[: lib.LG_TARGET_MAX]
    e.target_len = len(raw)
    ffi.memmove(e.target, raw + b"\0" * (lib.LG_TARGET_MAX - len(raw)), lib.LG_TARGET_MAX)
    d = r.get("detail", b"")[: lib.LG_DETAIL_MAX]
    ffi.memmove(e.detail, d + b"\0" * (lib.LG_DETAIL_MAX - len(d)), lib.LG_DETAIL_MAX)


def _reference(sup: Supervisor, e: Any) -> dict[str, Any]:
    """The record read field by field through cffi (the drainer before issue 19)."""
    info = sup._tables.rules[e.rule] if 0 <= e.rule < len(sup._tables.rules) else None
    action = {EXEC: "shell_exec", CONNECT: "network", lib.LG_ACT_SEND: "network"}.get(
        e.action, "file_read" if e.action == OPEN else "unknown"
    )
    raw = bytes(ffi.buffer(e.target, max(0, min(e.target_len, lib.LG_TARGET_MAX))))
    argv = None
    if e.action == EXEC and e.argc > 0:
        argv = tuple(a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0")[: e.argc])
        target = " ".join([os.path.basename(argv[0]), *argv[1:]])
    else:
        target = ffi.string(e.target).decode("utf-8", "surrogateescape")
    if e.action == OPEN:
        detail = ffi.string(e.detail)
        action = (
            info.action
            if info is not None
            else ("file_write" if detail.split(b" ", 1)[0] == b"write" else "file_read")
        )
    return {
        "action": action,
        "target": target,
        "argv": argv,
        "seq": int(e.seq),
        "ts": e.t_recv_ns / 1e9,
        "ts_decided": e.t_resp_ns / 1e9,
        "pid": int(e.pid),
        "tid": int(e.tid),
        "detail": ffi.string(e.detail).decode("utf-8", "surrogateescape") or None,
        "result": "allow" if e.result == lib.LG_EFFECT_ALLOW else "deny",
        "errno": int(e.err),
        "rule": info.ref if info else None,
        "rule_source": info.source if info else None,
        "rule_index": info.rule.index if info and info.rule else None,
        "origin": (info.rule.origin if info.rule else info.origin or "default") if info else None,
        "flags": sum(1 for bit in range(12) if e.flags & (1 << bit)),
        "exec_race": bool(e.flags & lib.LG_EV_EXEC_RACE),
        "syscall": int(e.syscall_nr),
    }


def test_bulk_read_matches_field_by_field() -> None:
    tables = compile_tables(_policy(), {})
    sup = Supervisor(-1, tables, root_pid=1, simulate=False)
    recs = _records(tables)
    buf = ffi.new("struct lg_event[]", len(recs))
    for i, r in enumerate(recs):
        _fill(buf[i], i + 1, r)
    got: list[Any] = []
    sup._on_event = got.append
    assert sup._deliver_batch(buf, len(recs)) == len(recs)
    assert len(got) == len(recs)
    for i, ev in enumerate(got):
        want = _reference(sup, buf[i])
        have = {k: getattr(ev, k) for k in want}
        have["flags"] = len(ev.flags)
        assert have == want, i
        assert (ev.source, ev.mode, ev.qtype, ev.note) == ("supervisor", "enforce", None, None)
    # the shapes are really different ones (the test would pass on one shape otherwise)
    assert {ev.action for ev in got} >= {"shell_exec", "network", "file_read", "file_write"}
    assert any(ev.argv and "\udcff" in ev.target for ev in got)


def _trail(tmp: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> bytes:
    """The trail of the records delivered `batch` at a time through the session's wiring."""
    writer, audit, keys = pinned_writer(tmp, monkeypatch, str(batch))
    handed: list[Any] = []
    recorder = Recorder(writer, handed.append)
    tables = compile_tables(_policy(), {})
    sup = Supervisor(-1, tables, root_pid=1, on_event=recorder.event)
    recs = _records(tables, utf8=True) * 3  # 30 records: checkpoints fall inside the batches
    buf = ffi.new("struct lg_event[]", len(recs))
    for i, r in enumerate(recs):
        _fill(buf[i], i + 1, r)
    one = ffi.new("struct lg_event[]", batch)
    for start in range(0, len(recs), batch):
        n = min(batch, len(recs) - start)
        ffi.memmove(one, buf + start, n * ffi.sizeof("struct lg_event"))
        assert sup._deliver_batch(one, n) == start + n
    assert sup._callback_error is None
    assert [ev.seq for ev in handed] == list(range(1, len(recs) + 1))
    writer.end_session(0)
    writer.close()
    assert verify_trail(audit, key_directory=keys).ok
    data = b"".join(p.read_bytes() for p in sorted(audit.glob("trail-*.jsonl")))
    shutil.rmtree(audit)  # the next trail is made at the same path (its start names it)
    return data


def test_batch_trail_is_byte_identical_to_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_by_one = _trail(tmp_path, monkeypatch, 1)
    assert one_by_one.count(b'"type":"decision"') == 30
    assert one_by_one.count(b'"type":"checkpoint"') >= 4
    for batch in (30, 4):
        assert _trail(tmp_path, monkeypatch, batch) == one_by_one, batch
