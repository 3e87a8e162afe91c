"""The harness of the witness expiry tests (test_witness_expiry.py: what a pass moves and
what is still caught; test_witness_expiry_schedule.py: when a pass runs): a trail's
verify and expiry, its witness files and archive, and the trails made for them."""

from __future__ import annotations

import shutil
from pathlib import Path

from audit_helpers import Trail, fill

from sandbox.audit import expiry, verify_trail
from sandbox.audit.expiry import expire_witnesses
from sandbox.audit.paths import prepare_trail_dirs
from sandbox.audit.witness import EXPIRED_NAME, expired_record


def verify(t: Trail):
    return verify_trail(t.dir, key_directory=t.keys)


def expire(t: Trail):
    return expire_witnesses(t.keys)


def witness_files(t: Trail) -> list[Path]:
    return sorted((t.keys / "witness").glob("dir-*.json"))


def archive(t: Trail) -> list[Path]:
    """The archive's files: the shards, and an earlier version's expired.jsonl."""
    return sorted((t.keys / "witness").glob("expired*.jsonl"))


def drop_archive(t: Trail) -> None:
    """The protection off: the moved witnesses dropped."""
    for path in archive(t):
        path.unlink()


def _older_copy_restored(trail: Trail, tmp_path: Path) -> int:
    """Seal a session, keep a copy, seal another, move the directory away, run the
    expiry, put the copy back.  Returns the seq the witness had sealed."""
    fill(trail, 10)
    old = tmp_path / "old-copy"
    shutil.copytree(trail.dir, old)
    fill(trail, 10)
    sealed = verify(trail).last_checkpoint_seq
    trail.dir.rename(tmp_path / "away")
    result = expire(trail)
    assert (result.moved, witness_files(trail)) == (1, [])
    shutil.rmtree(tmp_path / "away")
    old.rename(trail.dir)
    return sealed


def _gone_trails(trail: Trail, tmp_path: Path, n: int) -> list[Trail]:
    """n trails filled and deleted, their witnesses left in place: the sessions that fill
    them do not run the expiry (a fresh stamp, removed after)."""
    stamp = trail.keys / "witness" / expiry.STAMP_NAME
    prepare_trail_dirs(trail.dir, trail.keys)
    stamp.touch()
    gone = [Trail(tmp_path / f"gone{i}", trail.keys) for i in range(n)]
    for t in gone:
        fill(t, 1)
        shutil.rmtree(t.dir)
    stamp.unlink()
    return gone


def _old_archive(trail: Trail, records: list[tuple[str, bytes]], tail: bytes = b"") -> Path:
    """expired.jsonl as an earlier version wrote it."""
    path = trail.keys / "witness" / EXPIRED_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(expired_record(n, d) for n, d in records) + tail)
    return path
