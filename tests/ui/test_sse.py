"""The live feed's tail of the trail: new complete lines only, across a segment rotation."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.ui import sse


def _line(seq: int, kind: str = "decision") -> bytes:
    return json.dumps({"seq": seq, "type": kind}, separators=(",", ":")).encode() + b"\n"


def test_tail_sends_appended_decisions_and_follows_rotation(tmp_path: Path) -> None:
    seg1 = tmp_path / "trail-000001.jsonl"
    seg1.write_bytes(_line(1, "trail_start") + _line(2, "session_start"))
    tail = sse.Tail(tmp_path)
    assert [json.loads(x)["seq"] for x in tail.poll()] == [2]  # the backlog; no trail_start
    assert tail.poll() == []
    with seg1.open("ab") as f:
        f.write(_line(3) + _line(4, "checkpoint") + b'{"seq":5,"type":"decision"')  # torn
    assert [json.loads(x)["seq"] for x in tail.poll()] == [3]
    with seg1.open("ab") as f:
        f.write(b"}\n")
    (tmp_path / "trail-000002.jsonl").write_bytes(_line(6) + _line(7, "session_end"))
    assert [json.loads(x)["seq"] for x in tail.poll()] == [5, 6, 7]
    assert sse.event_bytes([_line(8).strip()]) == b'data: [{"seq":8,"type":"decision"}]\n\n'


def test_a_new_client_starts_near_the_end_not_at_the_beginning(tmp_path: Path) -> None:
    seg = tmp_path / "trail-000001.jsonl"
    seg.write_bytes(b"".join(_line(i) for i in range(1, 20001)))
    got = sse.Tail(tmp_path, backlog=4096).poll()
    seqs = [json.loads(x)["seq"] for x in got]
    assert seqs[-1] == 20000 and 0 < len(seqs) < 200
    assert seqs == list(range(seqs[0], 20001))  # whole lines only
