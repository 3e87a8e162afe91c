"""Expiry of witness files: the witness of an audit directory that is gone leaves the walk.

Every launch walks the key directory for the device+inode set of what the sandbox is
denied (sandbox.supervise.tables), so one witness file per audit directory ever used
(thousands, where tests or scripts make throwaway directories) is launch cost.  A
witness exists to catch a trail cut back, swapped or started over: dropping one while
its trail exists would hide exactly that, and dropping one whose directory is gone
would hide a directory deleted and then restored from an older copy.  So nothing is
dropped: the witness of a directory that does not exist is moved, bytes unchanged
(its HMAC still covers it), into one append-only file, expired.jsonl, where
load_witness finds it if the directory ever comes back.

Moving changes no lookup: load_witness reads a directory's file and, only when there is
none, the last record filed under that file's name, whose bytes are the file's.  So a
witness is moved without being authenticated (after a new key none would), and which
directory its `dir` field names only decides whether it is moved, never what any
directory's lookup finds: a witness that does not authenticate is still reported so if
its directory comes back.

Crash order: the record is appended and fsynced before the file is unlinked, so a
reader (who looks at the file first, then expired.jsonl) always finds the witness in
one place or the other.  Under the witness lock, so no writer publishes a newer
witness for a directory between the check that it is gone and the unlink.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.audit.paths import WITNESS_DIR
from sandbox.audit.witness import EXPIRED_NAME, WITNESS_LOCK, expired_record
from sandbox.errors import AuditError

EXPIRE_ABOVE = 32  # witness files left alone below this many: the walk's cost is nothing
EXPIRE_EVERY = 3600.0  # seconds between expiry passes (a pass reads every witness file)
# Witnesses moved by one launch's pass at most: a backlog (4,300 files: 0.75 s idle, some
# seconds on a busy disk, mostly the unlinks) is worked off over the next launches instead.
EXPIRE_BATCH = 256
STAMP_NAME = "expiry.stamp"  # its mtime: when the last pass ran
_NAME_RE = re.compile(r"^dir-[0-9a-f]{32}\.json$")


@dataclass(frozen=True, slots=True)
class Expired:
    kept: int  # witness files left in place (directory exists, cannot be judged, or batch full)
    moved: int  # moved into expired.jsonl
    more: bool = False  # a full batch was moved: more may be gone, the next pass goes on


def maybe_expire(key_directory: Path, now: float | None = None) -> Expired | None:
    """Run expire_witnesses when the witness directory holds more than EXPIRE_ABOVE
    files and the last pass is more than EXPIRE_EVERY seconds old; None when not run.
    Cheap otherwise: one listdir and, past the threshold, one stat.  A pass moves at most
    EXPIRE_BATCH; when it had more to do the stamp is left, so the next launch goes on."""
    wdir = key_directory / WITNESS_DIR
    try:
        count = sum(1 for n in os.listdir(wdir) if _NAME_RE.match(n))
    except OSError as exc:
        raise AuditError(f"cannot read witness directory {wdir}: {exc.strerror}") from exc
    if count <= EXPIRE_ABOVE:
        return None
    stamp = wdir / STAMP_NAME
    now = time.time() if now is None else now
    try:
        # A stamp from the future (the clock was set back) does not hold expiry off.
        if 0 <= now - stamp.stat().st_mtime < EXPIRE_EVERY:
            return None
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise AuditError(f"cannot stat {stamp}: {exc.strerror}") from exc
    result = expire_witnesses(key_directory, batch=EXPIRE_BATCH)
    if result.more:
        return result
    try:
        fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.close(fd)
        os.utime(stamp, (now, now))
    except OSError as exc:
        raise AuditError(f"cannot write {stamp}: {exc.strerror}") from exc
    return result


def expire_witnesses(key_directory: Path, batch: int | None = None) -> Expired:
    """Move the witness of every audit directory that no longer exists (the first `batch`
    of them, when given) into expired.jsonl.  A witness that cannot be read as JSON, or
    whose directory cannot be judged (any error but "no such file or directory"), stays
    where it is."""
    wdir = key_directory / WITNESS_DIR
    try:
        names = sorted(n for n in os.listdir(wdir) if _NAME_RE.match(n))
    except OSError as exc:
        raise AuditError(f"cannot read witness directory {wdir}: {exc.strerror}") from exc
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
    lock = wdir / WITNESS_LOCK
    try:
        lfd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise AuditError(f"cannot open witness lock {lock}: {exc.strerror}") from exc
    try:
        fcntl.flock(lfd, fcntl.LOCK_EX)
        moved = _move(wdir, candidates)
    finally:
        os.close(lfd)  # releases the flock
    # Another full batch only if this one made progress: candidates that no longer
    # qualify under the lock must not keep every launch busy.
    return Expired(len(names) - len(moved), len(moved), full and len(moved) == len(candidates))


def _move(wdir: Path, candidates: list[str]) -> list[str]:
    """Under the witness lock: look again (a writer may have recreated a directory),
    append what is still gone to expired.jsonl, fsync it, then unlink the files."""
    records: list[bytes] = []
    moved: list[str] = []
    for name in candidates:
        data = _gone_witness(wdir / name)
        if data is not None:
            records.append(expired_record(name, data))
            moved.append(name)
    if not moved:
        return moved
    archive = wdir / EXPIRED_NAME
    try:
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(b"".join(records))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # before any unlink: the witness is never in neither place
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuditError(f"cannot append to {archive}: {exc.strerror}") from exc
    for name in moved:
        try:
            os.unlink(wdir / name)
        except FileNotFoundError:
            pass  # gone already; its record is in expired.jsonl
        except OSError as exc:
            raise AuditError(f"cannot remove witness {wdir / name}: {exc.strerror}") from exc
    return moved


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
