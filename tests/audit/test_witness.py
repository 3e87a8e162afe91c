"""The witness is bound to the audit directory: swaps, start-overs, rewrites, cut tails.

Issue 14's attacks on the trail as a whole, each with the kind and first bad seq
verify must name, and the allowed twins: a killed session is only a note (named),
and a trail sealed and reopened by later sessions stays intact.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from audit_helpers import Trail, digest, event, fill, rechain, trail_fixture  # noqa: F401

from sandbox.audit import AuditWriter, verify_trail
from sandbox.audit.canonical import GENESIS_PREV
from sandbox.audit.commands import verify as verify_command
from sandbox.errors import AuditError

REPO = Path(__file__).resolve().parents[2]


def verify(t: Trail):
    return verify_trail(t.dir, key_directory=t.keys)


class _Args:
    def __init__(self, d: Path, keys: Path) -> None:
        self.dir, self.key_dir, self.json = str(d), str(keys), False


def test_keyless_rewrite_with_a_new_trail_id_and_no_checkpoints(trail: Trail) -> None:
    """Issue 14 attack 3: new trail id, denials dropped, checkpoints removed, re-hashed."""
    fill(trail, 30)
    entries = trail.entries()
    kept = [
        e
        for e in entries
        if e["type"] != "checkpoint" and not (e["type"] == "decision" and e["result"] == "deny")
    ]
    kept[0] = dict(kept[0], trail="f" * 32)
    trail.write_lines(rechain(kept))
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "rewritten", 1), r.summary()
    result = verify_command(_Args(trail.dir, trail.keys))
    assert result.exit_code != 0 and "rewritten" in result.stderr


def test_keyless_rewrite_keeping_the_trail_id_names_the_first_dropped_entry(trail: Trail) -> None:
    fill(trail, 30)
    entries = trail.entries()
    first_deny = next(e["seq"] for e in entries if e.get("result") == "deny")
    kept = [
        e
        for e in entries
        if e["type"] != "checkpoint" and not (e["type"] == "decision" and e["result"] == "deny")
    ]
    start = next(i for i, e in enumerate(kept) if e["seq"] != i + 1)
    assert kept[start - 1]["seq"] < first_deny
    trail.write_lines(rechain(kept, start=start))
    r = verify(trail)
    assert (r.kind, r.first_bad_seq) == ("rewritten", start + 1), r.summary()


def test_delete_then_reuse(trail: Trail) -> None:
    """Issue 14 attack 4: the trail deleted, then one new session in the same directory."""
    fill(trail, 30)
    sealed = verify(trail).last_checkpoint_seq
    for seg in trail.dir.glob("trail-*.jsonl"):
        seg.unlink()
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "truncated", 1), r.summary()
    fill(trail, 3)  # the next session starts a new trail here
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "reused", 1), r.summary()
    assert f"sealed up to seq {sealed}" in r.message
    fill(trail, 3)  # and it stays reported: the new trail's tagged first entry says so
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "reused"), r.summary()


def test_delete_the_whole_directory_then_reuse(trail: Trail) -> None:
    fill(trail, 10)
    shutil.rmtree(trail.dir)
    fill(trail, 3)
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "reused", 1), r.summary()


def test_swap_from_another_directory(trail: Trail, tmp_path: Path) -> None:
    """Issue 14 attack 5: an innocent directory's trail copied over an incriminating one."""
    fill(trail, 30)  # the incriminating trail: it has denials
    innocent = Trail(tmp_path / "innocent", trail.keys)
    w = innocent.writer()
    w.start_session({"mode": "enforce", "argv": ["ls"]})
    w.append(event(1, result="allow"))
    w.end_session(0)
    w.close()
    assert verify(innocent).ok
    for seg in trail.dir.glob("trail-*.jsonl"):
        seg.unlink()
    for seg in innocent.dir.glob("trail-*.jsonl"):
        shutil.copy2(seg, trail.dir / seg.name)
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "swapped", 1), r.summary()
    assert str(innocent.dir) in r.message
    # The next session in the swapped directory records the swap and goes on: still reported.
    fill(trail, 3)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "swapped"), r.summary()
    assert verify(innocent).ok  # the twin: the innocent directory itself is intact


def test_swap_by_renaming_directories(trail: Trail, tmp_path: Path) -> None:
    fill(trail, 10)
    other = Trail(tmp_path / "other", trail.keys)
    fill(other, 3)
    shutil.rmtree(trail.dir)
    other.dir.rename(trail.dir)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "swapped"), r.summary()


def test_final_checkpoint_removed_where_a_session_ended(trail: Trail) -> None:
    fill(trail, 5, checkpoint_every=1000)
    fill(trail, 5, checkpoint_every=1000)
    entries = trail.entries()
    end = next(e["seq"] for e in entries if e["type"] == "session_end")
    lines = trail.lines()
    del lines[end]  # the checkpoint right after the first session's end
    kept = [json.loads(x) for x in lines]
    trail.write_lines(rechain(kept, start=end))
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "rewritten", end + 1), r.summary()


def test_tail_cut_to_the_session_end(trail: Trail) -> None:
    fill(trail, 5)
    lines = trail.lines()
    trail.write_lines(lines[:-1])  # only the final checkpoint is gone
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "truncated", len(lines)), r.summary()


def test_seal_cut_off_with_the_witness_gone_too(trail: Trail) -> None:
    """Without a witness (a key directory restored from an old backup), the rule that a
    session's end is sealed by the very next entry still catches a cut-off seal."""
    fill(trail, 5)
    for w in (trail.keys / "witness").glob("dir-*.json"):
        w.unlink()
    lines = trail.lines()
    trail.write_lines(lines[:-1])
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "truncated", len(lines)), r.summary()
    assert "final checkpoint" in r.message


def test_killed_session_is_a_note_naming_it(trail: Trail) -> None:
    """The allowed twin: a landgate killed mid-session is unsealed, not tampered."""
    fill(trail, 5)
    code = textwrap.dedent(
        """
        import os, sys, time
        from sandbox.audit import AuditWriter
        w = AuditWriter(sys.argv[1], key_directory=sys.argv[2], durability="strict")
        sid = w.start_session({"mode": "enforce", "argv": ["killed"]})
        w.append({"action": "file_read", "target": "/ws/a", "result": "allow"})
        print(sid, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(trail.dir), str(trail.keys)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    sid = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    fill(trail, 5)  # a later session goes on
    r = verify(trail)
    assert r.ok, r.summary()
    assert r.unsealed == (sid,)
    assert any(sid in n and "unsealed" in n for n in r.notes)


def test_reopened_trail_stays_intact(trail: Trail) -> None:
    for _ in range(3):
        fill(trail, 12)
    r = verify(trail)
    assert r.ok and r.sessions == 3 and r.notes == (), r.summary()


def test_trail_forged_from_scratch(trail: Trail) -> None:
    """A whole trail made without the key in a directory that never had one."""
    entries = [
        {"type": "trail_start", "trail": "a" * 32, "format": 2, "ts": 1.8e9},
        {"type": "session_start", "session": "s", "ts": 1.8e9},
    ]
    for i, e in enumerate(entries):
        e.update(seq=i + 1, prev=GENESIS_PREV, hash="0" * 96)
    trail.dir.mkdir(parents=True)
    trail.write_lines(rechain(entries))
    AuditWriter  # noqa: B018 - the key directory needs a key for verify
    trail.keys.mkdir(parents=True)
    (trail.keys / "audit.key").write_bytes(b"k" * 32)
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "rewritten", 1), r.summary()
    assert digest(trail.entries()[0]) == trail.entries()[1]["prev"]


def test_a_format_1_trail_is_moved_aside_not_continued(trail: Trail) -> None:
    """A trail from before per-entry tags: the new writer starts a tagged trail beside it
    (the old bytes untouched) and verify says so in a note; the new trail is intact."""
    trail.dir.mkdir(parents=True)
    lines = []
    last = GENESIS_PREV
    for seq, e in enumerate(
        [{"type": "trail_start", "trail": "ab" * 16, "format": 1}, {"type": "session_start"}], 1
    ):
        doc = dict(e, seq=seq, prev=last, ts=1.8e9, hash="0" * 64)
        line = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        i = line.find(b'"hash":"')
        cut = line[: i - 1] + line[i + 73 :]  # format 1: a 64-digit member, cut by hand
        last = hashlib.sha256(cut).hexdigest()
        lines.append(line[: i + 8] + last.encode() + line[i + 72 :] + b"\n")
    old = b"".join(lines)
    trail.segment.write_bytes(old)
    fill(trail, 3)
    moved = trail.dir / f"legacy-format1-{'ab' * 16}" / "trail-000001.jsonl"
    assert moved.read_bytes() == old
    r = verify(trail)
    assert r.ok, r.summary()
    assert any("format 1" in n for n in r.notes)


def test_an_old_looking_trail_where_a_tagged_one_was_sealed_is_not_an_upgrade(
    trail: Trail,
) -> None:
    """The twin attack: replace a sealed trail with a keyless 'format 1' one."""
    fill(trail, 3)
    for seg in trail.dir.glob("trail-*.jsonl"):
        seg.unlink()
    trail.segment.write_bytes(
        b'{"format":1,"hash":"' + b"0" * 64 + b'","prev":"' + b"0" * 64 + b'","seq":1,'
        b'"trail":"' + b"cd" * 16 + b'","ts":1,"type":"trail_start"}\n'
    )
    with pytest.raises(AuditError) as exc:
        trail.writer()  # refused: the witness says a tagged trail was sealed here
    assert "does not start with an entry landgate wrote" in str(exc.value)
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "malformed", 1), r.summary()
