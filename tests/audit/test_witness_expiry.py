"""Witness expiry: the witnesses of audit directories that are gone leave the key
directory's walk, and a trail cut back or restored from an older copy is still caught.

The attack: a trail's directory is moved away (so it is gone when the expiry runs),
then put back as an older copy, two sessions short.  The older copy is a consistent,
sealed trail: only the witness knows more was sealed there.  Each attack test also
runs with the archive removed (the witness dropped instead of moved, the protection
off) and shows verify then passes: the record moved by the expiry is what catches it.

The archive is 16 shard files (a lookup reads one); an earlier version's single
expired.jsonl is split into them and read until it is.  When a pass runs (a thread of
the writer once its session has started, not while the launch prepares; at most
hourly; a batch per launch) is test_witness_expiry_schedule.py's; the shared harness
is expiry_helpers.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from audit_helpers import Trail, fill, trail_fixture  # noqa: F401
from expiry_helpers import (
    _old_archive,
    _older_copy_restored,
    drop_archive,
    expire,
    verify,
    witness_files,
)

from sandbox.audit import expiry
from sandbox.audit.expiry import maybe_expire
from sandbox.audit.paths import load_key
from sandbox.audit.witness import (
    EXPIRED_NAME,
    expired_shard,
    load_witness,
    witness_file,
)
from sandbox.errors import AuditError


def test_older_copy_restored_after_the_expiry_is_caught(trail: Trail, tmp_path: Path) -> None:
    sealed = _older_copy_restored(trail, tmp_path)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated"), r.summary()
    assert f"checkpoint at seq {sealed} was witnessed" in r.message
    # Protection off: without the moved record the older copy passes as a whole trail.
    drop_archive(trail)
    assert verify(trail).ok


def test_older_copy_restored_and_continued_is_recorded_by_the_writer(
    trail: Trail, tmp_path: Path
) -> None:
    """The next session in the restored directory finds the expired witness too."""
    sealed = _older_copy_restored(trail, tmp_path)
    fill(trail, 1)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated"), r.summary()
    assert f"seq {sealed}" in r.message


def test_directory_deleted_expired_then_reused_is_caught(trail: Trail) -> None:
    fill(trail, 10)
    shutil.rmtree(trail.dir)
    assert expire(trail).moved == 1
    fill(trail, 3)
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "reused", 1), r.summary()


def test_trail_cut_in_place_keeps_its_witness(trail: Trail) -> None:
    """A directory that exists keeps its witness file, whatever its trail looks like."""
    fill(trail, 10)
    fill(trail, 10)
    lines = trail.lines()
    cut = next(i for i, x in enumerate(lines) if b'"session_end"' in x) + 2  # first seal
    trail.write_lines(lines[:cut])
    assert (expire(trail).kept, expire(trail).moved) == (1, 0)
    assert witness_files(trail) == [witness_file(trail.keys, trail.dir)]
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated"), r.summary()


def test_restored_copy_that_is_whole_verifies(trail: Trail, tmp_path: Path) -> None:
    """The allowed twin: the directory moved away and back unchanged is intact."""
    fill(trail, 10)
    trail.dir.rename(tmp_path / "away")
    assert expire(trail).moved == 1
    (tmp_path / "away").rename(trail.dir)
    r = verify(trail)
    assert r.ok, r.summary()
    fill(trail, 3)  # and the next session continues it, its witness a file again
    assert verify(trail).ok
    assert witness_files(trail) == [witness_file(trail.keys, trail.dir)]


def test_expiry_moves_only_the_gone(trail: Trail, tmp_path: Path) -> None:
    live = [Trail(tmp_path / f"live{i}", trail.keys) for i in range(3)]
    gone = [Trail(tmp_path / f"gone{i}", trail.keys) for i in range(4)]
    for t in live + gone:
        fill(t, 2)
    for t in gone:
        shutil.rmtree(t.dir)
    result = expire(trail)
    assert (result.kept, result.moved) == (3, 4)
    assert witness_files(trail) == sorted(witness_file(t.keys, t.dir) for t in live)
    key = load_key(trail.keys, create=False)
    for t in gone:  # each still found, by its directory
        w = load_witness(key, t.keys, t.dir)
        assert w is not None and w.dir == os.path.realpath(t.dir)
    assert expire(trail).moved == 0  # a second pass has nothing to do


def test_a_witness_that_does_not_authenticate_is_moved_and_still_reported(
    trail: Trail, tmp_path: Path
) -> None:
    """Moving changes no lookup: a witness that does not authenticate (edited, or made
    under an old key) is moved like any other and is still reported as forged if its
    directory comes back; its twin, the untouched witness, verifies."""
    fill(trail, 2)
    trail.dir.rename(tmp_path / "away")
    path = witness_file(trail.keys, trail.dir)
    whole = path.read_bytes()
    path.write_bytes(whole.replace(b'"seq": ', b'"seq": 1'))
    assert expire(trail).moved == 1 and not path.exists()
    (tmp_path / "away").rename(trail.dir)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "forged"), r.summary()
    assert "does not authenticate" in r.message
    path.write_bytes(whole)  # the twin: the witness as landgate wrote it
    assert verify(trail).ok


def test_what_is_not_a_witness_is_left_alone(trail: Trail) -> None:
    wdir = trail.keys / "witness"
    wdir.mkdir(parents=True)
    odd = {
        "not json": b"not json",
        "no string dir": b'{"dir": 5}',
        "relative": b'{"dir": "relative/gone"}',
        "not an object": b"[]",
        "two lines": b'{"dir":\n "/gone/x"}\n',  # one record could not hold it whole
    }
    for i, data in enumerate(odd.values()):
        (wdir / f"dir-{i:032x}.json").write_bytes(data)
    assert (expire(trail).kept, expire(trail).moved) == (len(odd), 0)


def test_torn_record_does_not_hide_the_next(trail: Trail, tmp_path: Path) -> None:
    """A crash mid-append leaves a torn record; the next record is still found whole."""
    fill(trail, 2)
    shard = trail.keys / "witness" / expired_shard(witness_file(trail.keys, trail.dir).name)
    shard.write_bytes(b"\ndir-" + b"0" * 32 + b'.json {"dir": "/x", "se')
    trail.dir.rename(tmp_path / "away")
    assert expire(trail).moved == 1
    (tmp_path / "away").rename(trail.dir)
    assert verify(trail).ok
    key = load_key(trail.keys, create=False)
    assert load_witness(key, trail.keys, trail.dir) is not None


def test_a_lookup_reads_one_shard(trail: Trail, tmp_path: Path) -> None:
    """A directory without a witness file is looked up in its shard alone: the other 15
    (here made unreadable: directories) are never opened.  Its twin: its own shard is
    read (made a directory, the lookup fails)."""
    fill(trail, 2)
    trail.dir.rename(tmp_path / "away")
    assert expire(trail).moved == 1
    (tmp_path / "away").rename(trail.dir)
    name = witness_file(trail.keys, trail.dir).name
    own = trail.keys / "witness" / expired_shard(name)
    for digit in "0123456789abcdef":
        other = trail.keys / "witness" / f"expired-{digit}.jsonl"
        if other != own:
            other.mkdir()
    key = load_key(trail.keys, create=False)
    assert load_witness(key, trail.keys, trail.dir) is not None
    assert verify(trail).ok
    own.rename(tmp_path / "own-shard")
    own.mkdir()
    with pytest.raises(AuditError, match="cannot read audit witness"):
        load_witness(key, trail.keys, trail.dir)


def test_an_old_archive_is_read_and_then_split(trail: Trail, tmp_path: Path) -> None:
    """A witness an earlier version moved into expired.jsonl is found there, and after the
    next pass in its shard, bytes unchanged; the older copy restored is caught either way
    (and passes without the archive: the protection off)."""
    sealed = _older_copy_restored(trail, tmp_path)
    name = witness_file(trail.keys, trail.dir).name
    shard = trail.keys / "witness" / expired_shard(name)
    record = shard.read_bytes()
    shard.unlink()
    torn = b"\ndir-0123"  # a record torn before its name was whole: no lookup finds it
    other = ("0" if name[4] != "0" else "1") * 32  # a name in another shard
    old = _old_archive(trail, [(f"dir-{other}.json", b'{"dir": "/elsewhere"}')], torn)
    old.write_bytes(old.read_bytes() + record)  # the moved witness, last
    key = load_key(trail.keys, create=False)
    before = load_witness(key, trail.keys, trail.dir)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated") and f"seq {sealed}" in r.message
    assert maybe_expire(trail.keys, now=1e9) is None  # below the threshold: only the split
    assert not old.exists()
    assert shard.read_bytes() == record  # this name's shard: its record alone, unchanged
    assert load_witness(key, trail.keys, trail.dir) == before
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated") and f"seq {sealed}" in r.message
    drop_archive(trail)
    assert verify(trail).ok


def test_moves_after_an_old_record_win(trail: Trail, tmp_path: Path) -> None:
    """The old archive holds an earlier witness of a directory (moved there by an earlier
    version while it was gone); the directory came back, sealed more, and is gone again.
    A pass splits the old archive before it appends the new record, so the new record is
    the last one filed under the name: a copy restored from between the two is caught.
    (Appended the other way round, the earlier witness would be found, and the copy,
    younger than it, would pass.)"""
    fill(trail, 10)
    name = witness_file(trail.keys, trail.dir).name
    earlier = witness_file(trail.keys, trail.dir).read_bytes()
    fill(trail, 10)
    shutil.copytree(trail.dir, tmp_path / "copy")
    fill(trail, 10)
    sealed = verify(trail).last_checkpoint_seq
    trail.dir.rename(tmp_path / "away")
    old = _old_archive(trail, [(name, earlier)])
    assert expire(trail).moved == 1
    (tmp_path / "copy").rename(trail.dir)
    expiry.split_old_archive(trail.keys)  # nothing left to split: the move split it first
    assert not old.exists()
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated"), r.summary()
    assert f"seq {sealed}" in r.message
    drop_archive(trail)  # the protection off
    assert verify(trail).ok


def test_a_split_cut_short_leaves_lookups_alone(trail: Trail, tmp_path: Path) -> None:
    """A crash after the split appended to the shards but before it unlinked the old
    archive: both hold the record; lookups find it, and the next split appends it again
    (the last record filed under the name is still the same bytes)."""
    sealed = _older_copy_restored(trail, tmp_path)
    name = witness_file(trail.keys, trail.dir).name
    shard = trail.keys / "witness" / expired_shard(name)
    old = trail.keys / "witness" / EXPIRED_NAME
    old.write_bytes(shard.read_bytes())
    key = load_key(trail.keys, create=False)
    before = load_witness(key, trail.keys, trail.dir)
    assert expiry.split_old_archive(trail.keys) == 1
    assert not old.exists() and shard.read_bytes().count(name.encode()) == 2
    assert load_witness(key, trail.keys, trail.dir) == before
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated") and f"seq {sealed}" in r.message


def test_a_path_that_exists_is_not_gone(trail: Trail) -> None:
    """Only "no such file or directory" is gone: a file where the directory was is kept
    (verify reports the trail missing against it)."""
    fill(trail, 1)
    shutil.rmtree(trail.dir)
    trail.dir.write_bytes(b"")
    assert expire(trail).moved == 0
    trail.dir.unlink()
    assert expire(trail).moved == 1
