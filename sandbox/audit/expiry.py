"""Expiry of witness files: the witness of an audit directory that is gone leaves the walk.

Every launch walks the key directory for the device+inode set of what the sandbox is
denied (sandbox.supervise.tables), so one witness file per audit directory ever used
(thousands, where tests or scripts make throwaway directories) is launch cost.  A
witness exists to catch a trail cut back, swapped or started over: dropping one while
its trail exists would hide exactly that, and dropping one whose directory is gone
would hide a directory deleted and then restored from an older copy.  So nothing is
dropped: the witness of a directory that does not exist is moved, bytes unchanged
(its HMAC still covers it), into the archive, 16 append-only files by the first hex
digit of the witness file's name (witness.expired_shard), where load_witness finds it
if the directory ever comes back.  A lookup reads one of them, not all that was ever
moved (a fresh audit directory's first session looks its witness up there).

Moving changes no lookup: load_witness reads a directory's file and, only when there is
none, the last record filed under that file's name, whose bytes are the file's.  So a
witness is moved without being authenticated (after a new key none would), and which
directory its `dir` field names only decides whether it is moved, never what any
directory's lookup finds: a witness that does not authenticate is still reported so if
its directory comes back.

Crash order: the record is appended and fsynced before the file is unlinked, so a
reader (who looks at the file first, then the archive) always finds the witness in
one place or the other.  Under the witness lock, so no writer publishes a newer
witness for a directory between the check that it is gone and the unlink.  The single
archive of earlier versions (expired.jsonl) is emptied the same way: its records
appended to the shards, fsynced, then it is unlinked (lookups read it before the shard).

Growth: the archive is never compacted, and grows by one record (~400 bytes) per audit
directory deleted.  Measured on the development machine (main ead3928): 3,363 records,
1.3 MB, after 19 hours of five engineers' tests and benches (~200 throwaway directories
an hour); a user whose trail is the one default directory adds none.  A lookup that
misses its file reads one shard: 0.015 ms at 1.3 MB, 0.7 ms at 134 MB (336,000 records,
synthetic).  Dropping records older than some horizon would not be sound: an older copy
of a deleted directory can be put back at any time after the deletion, and without its
record that copy verifies as a whole trail (tests/audit/test_witness_expiry.py shows it
with the archive removed).  The one lossless compaction, keeping only the last record
filed under each name (the one a lookup reads), saves only where the same path is
deleted again and again: none of the 3,363 records here repeats a name, so it is not
done.

When: not on the launch path.  Once a session has started (AuditWriter.start_session),
the audit writer asks `due` (two stats, never a listing: the session's start costs the
same whatever the backlog) and, only when a pass may be due, runs maybe_expire on a
thread of its own, which counts the witness files, so it overlaps the agent and close()
waits for it.  A pass that finds EXPIRE_ABOVE files or fewer stamps too: the next hour's
sessions start no thread.  Nothing is moved later than it would have been but by that
hour, and nothing is ever dropped; what is moved only shortens lookups and listings
(the launch no longer lists the witness files: sandbox.supervise.tables).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.audit.paths import WITNESS_DIR
from sandbox.audit.witness import EXPIRED_NAME, WITNESS_LOCK, expired_record, expired_shard
from sandbox.errors import AuditError
from sandbox.record import Record

EXPIRE_ABOVE = 32  # witness files left alone below this many: the walk's cost is nothing
EXPIRE_EVERY = 3600.0  # seconds between expiry passes (a pass reads every witness file)
# Witnesses moved by one launch's pass at most: a backlog (4,300 files: 0.75 s idle, some
# seconds on a busy disk, mostly the unlinks) is worked off over the next launches instead.
EXPIRE_BATCH = 256
STAMP_NAME = "expiry.stamp"  # its mtime: when the last pass ran
_NAME_RE = re.compile(r"^dir-[0-9a-f]{32}\.json$")


class Expired(Record):
    kept: int  # witness files left in place (directory exists, cannot be judged, or batch full)
    moved: int  # moved into the archive
    more: bool = False  # a full batch was moved: more may be gone, the next pass goes on


def due(key_directory: Path, now: float | None = None) -> bool:
    """Whether maybe_expire may have anything to do: an old archive to split, or no
    complete pass in the last EXPIRE_EVERY seconds (the pass itself counts the files).
    Two stats, never a listing: the writer asks at every session's start, and a
    backlog of thousands of witness files must not make that start slower (listing
    5,000 names there took 5.5 ms)."""
    wdir = key_directory / WITNESS_DIR
    if _exists(wdir / EXPIRED_NAME):
        return True
    return not _recent(wdir, now)


def maybe_expire(key_directory: Path, now: float | None = None) -> Expired | None:
    """Split an old archive if there is one; then, when the last pass is more than
    EXPIRE_EVERY seconds old, run expire_witnesses if the witness directory holds more
    than EXPIRE_ABOVE files; None when not run.  A pass moves at most EXPIRE_BATCH;
    when it had more to do the stamp is left, so the next session's pass goes on.  A
    pass that found too few files to run stamps as a complete one does: the sessions of
    the next hour do not start a thread to count them again."""
    wdir = key_directory / WITNESS_DIR
    if _exists(wdir / EXPIRED_NAME):
        # Whatever the count and the stamp: until it is split, every lookup that misses
        # a witness file reads it in full.
        split_old_archive(key_directory)
    if _recent(wdir, now):
        return None
    now = time.time() if now is None else now
    names = _names(wdir)
    if len(names) <= EXPIRE_ABOVE:
        _stamp(wdir, now)
        return None
    result = expire_witnesses(key_directory, batch=EXPIRE_BATCH, names=names)
    if not result.more:
        _stamp(wdir, now)
    return result


def _stamp(wdir: Path, now: float) -> None:
    """The stamp's mtime set to `now`: a pass completed then."""
    stamp = wdir / STAMP_NAME
    try:
        fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.close(fd)
        os.utime(stamp, (now, now))
    except OSError as exc:
        raise AuditError(f"cannot write {stamp}: {exc.strerror}") from exc


def _exists(path: Path) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise AuditError(f"cannot stat {path}: {exc.strerror}") from exc
    return True


def _recent(wdir: Path, now: float | None) -> bool:
    """The last complete pass (the stamp's mtime) is less than EXPIRE_EVERY seconds old.
    A stamp from the future (the clock was set back) is not recent: it does not hold
    expiry off."""
    stamp = wdir / STAMP_NAME
    now = time.time() if now is None else now
    try:
        return 0 <= now - stamp.stat().st_mtime < EXPIRE_EVERY
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise AuditError(f"cannot stat {stamp}: {exc.strerror}") from exc


def _names(wdir: Path) -> list[str]:
    """The witness files in the witness directory, sorted."""
    try:
        return sorted(n for n in os.listdir(wdir) if _NAME_RE.match(n))
    except OSError as exc:
        raise AuditError(f"cannot read witness directory {wdir}: {exc.strerror}") from exc


def expire_witnesses(
    key_directory: Path, batch: int | None = None, names: list[str] | None = None
) -> Expired:
    """Move the witness of every audit directory that no longer exists (the first `batch`
    of them, when given) into the archive.  A witness that cannot be read as JSON, or
    whose directory cannot be judged (any error but "no such file or directory"), stays
    where it is.  `names`: the witness directory's listing, when the caller has it."""
    wdir = key_directory / WITNESS_DIR
    if names is None:
        names = _names(wdir)
    # A first look without the lock (reading every file must not hold up the writers);
    # what it picks is looked at again under the lock.
    candidates: list[str] = []
    for n in names:
        if batch is not None and len(candidates) >= batch:
            break
        if _gone_witness(wdir / n) is not None:
            candidates.append(n)
    full = batch is not None and len(candidates) >= batch
    if not candidates:
        return Expired(len(names), 0)
    with _witness_lock(wdir):
        moved = _move(wdir, candidates)
    # Another full batch only if this one made progress: candidates that no longer
    # qualify under the lock must not keep every launch busy.
    return Expired(len(names) - len(moved), len(moved), full and len(moved) == len(candidates))


@contextmanager
def _witness_lock(wdir: Path) -> Iterator[None]:
    """The witness lock (the writers publish under it), held exclusively."""
    lock = wdir / WITNESS_LOCK
    try:
        lfd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise AuditError(f"cannot open witness lock {lock}: {exc.strerror}") from exc
    try:
        fcntl.flock(lfd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lfd)  # releases the flock


def _move(wdir: Path, candidates: list[str]) -> list[str]:
    """Under the witness lock: look again (a writer may have recreated a directory),
    append what is still gone to the archive, fsync it, then unlink the files."""
    shards: dict[str, list[bytes]] = {}
    moved: list[str] = []
    for name in candidates:
        data = _gone_witness(wdir / name)
        if data is not None:
            shards.setdefault(expired_shard(name), []).append(expired_record(name, data))
            moved.append(name)
    if not moved:
        return moved
    # The old archive's records first: they are older than these, and the last record
    # filed under a name is the one a lookup finds.
    _split_locked(wdir)
    _append(wdir, shards)  # fsynced: the witness is never in neither place
    for name in moved:
        try:
            os.unlink(wdir / name)
        except FileNotFoundError:
            pass  # gone already; its record is in the archive
        except OSError as exc:
            raise AuditError(f"cannot remove witness {wdir / name}: {exc.strerror}") from exc
    return moved


def split_old_archive(key_directory: Path) -> int:
    """Empty an earlier version's single archive (expired.jsonl) into the shards: each
    record, bytes unchanged and in order, appended to its shard; all fsynced, then the
    old file unlinked.  Returns how many records were moved.  A piece no lookup can
    find (a record torn before its name was whole: lookups search for a whole name) is
    not carried over.  A crash before the unlink leaves both: the next pass appends the
    same records again, after which the shard's last record for a name is still the one
    the old file's was (nothing else is moved until the old file is gone)."""
    wdir = key_directory / WITNESS_DIR
    with _witness_lock(wdir):
        return _split_locked(wdir)


def _split_locked(wdir: Path) -> int:
    """split_old_archive's work; the caller holds the witness lock."""
    old = wdir / EXPIRED_NAME
    try:
        data = old.read_bytes()
    except FileNotFoundError:
        return 0  # none, or split by another process meanwhile
    except OSError as exc:
        raise AuditError(f"cannot read {old}: {exc.strerror}") from exc
    shards: dict[str, list[bytes]] = {}
    count = 0
    for piece in data.split(b"\n"):
        name, sep, _witness = piece.partition(b" ")
        if not sep or not _NAME_RE.match(name.decode("ascii", "replace")):
            continue
        shards.setdefault(expired_shard(name.decode("ascii")), []).append(b"\n" + piece)
        count += 1
    _append(wdir, shards)
    try:
        os.unlink(old)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise AuditError(f"cannot remove {old}: {exc.strerror}") from exc
    return count


def _append(wdir: Path, shards: dict[str, list[bytes]]) -> None:
    """Append each shard's records to it and fsync every one before returning."""
    for shard, records in sorted(shards.items()):
        path = wdir / shard
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(b"".join(records))
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise AuditError(f"cannot append to {path}: {exc.strerror}") from exc


def _gone(directory: str) -> bool:
    """No such file or directory; any other error (a permission, a hung mount) is not
    gone: a witness is kept when in doubt."""
    try:
        os.lstat(directory)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _gone_witness(path: Path) -> bytes | None:
    """The bytes of the witness file at `path` if the directory its `dir` field names does
    not exist; None otherwise (also when it is gone, unreadable or not a JSON object)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None  # removed meanwhile, or unreadable: nothing to move
    if b"\n" in data.rstrip(b"\n"):
        return None  # not one line (landgate writes one): a record could not hold it whole
    try:
        directory = json.loads(data)["dir"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(directory, str) or not directory.startswith("/"):
        return None
    return data if _gone(directory) else None
