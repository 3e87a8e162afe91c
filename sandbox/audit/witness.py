"""The witness: what the key directory remembers about each audit directory.

One file per audit directory, named after its real path, holding the directory's
real path and inode, the id of the trail it holds, and the highest sealed
(checkpointed, fsynced) seq with that checkpoint's digest and Merkle root, all
under an HMAC with the trail key.  The agent can neither read nor write the key
directory (DESIGN §2), so the witness is the part of the record the agent cannot
reach.  It is looked up by the directory, never by the trail id read from the
trail itself: that is what catches a trail swapped in from another directory, a
trail started over after a deletion, and a tail cut back to an older checkpoint.

The witness of a directory that is gone is moved (expiry.py) from its own file into
one of 16 append-only files, `expired-<h>.jsonl` by the first hex digit <h> of its
file's name, and looked up there when a directory has no witness file of its own: the
launch's walk of the key directory then sees at most 16 files, not one per audit
directory ever used, a directory that comes back is still judged against what was
sealed there, and a lookup reads a sixteenth of what was ever moved (the archive only
grows: ~330 bytes per audit directory deleted).  `expired.jsonl`, the one archive of
earlier versions, is still read while it exists; the expiry splits it into the shards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sandbox.audit.canonical import witness_mac
from sandbox.audit.paths import WITNESS_DIR
from sandbox.digest import compare_digest, sha256
from sandbox.errors import AuditError
from sandbox.record import Record

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

WITNESS_LOCK = "witness.lock"
EXPIRED_NAME = "expired.jsonl"  # the one archive of earlier versions (expiry.py splits it)


class Witness(Record):
    dir: str  # real path of the audit directory
    dev: int
    ino: int
    trail: str
    seq: int  # the highest sealed checkpoint's seq
    hash: str  # that checkpoint's digest
    root: str  # its Merkle root

    def fields(self) -> dict[str, Any]:
        return {
            "dir": self.dir,
            "dev": self.dev,
            "ino": self.ino,
            "trail": self.trail,
            "seq": self.seq,
            "hash": self.hash,
            "root": self.root,
        }


class BadWitness(Exception):
    """The witness file exists but does not authenticate (it is not landgate's)."""


def real_dir(directory: Path) -> str:
    return os.path.realpath(directory)


def witness_name(real: str) -> str:
    """The witness file's name for the audit directory whose real path is `real`."""
    digest = sha256(real.encode("utf-8", "surrogateescape")).hexdigest()
    return f"dir-{digest[:32]}.json"


def witness_file(key_directory: Path, directory: Path) -> Path:
    """The witness file for `directory`: named by a digest of its real path."""
    return key_directory / WITNESS_DIR / witness_name(real_dir(directory))


def expired_shard(name: str) -> str:
    """The archive file that holds the expired records of witness file `name`
    ("dir-<32 hex>.json"): one of 16, by the first hex digit of the name's digest."""
    return f"expired-{name[4]}.jsonl"


def expired_record(name: str, data: bytes) -> bytes:
    """One record of the archive: the witness file's name and its bytes, unchanged (its
    HMAC still covers it).  Each record starts with a newline, so a record torn by a crash
    is never glued to the next one's name."""
    return b"\n" + name.encode() + b" " + data.rstrip(b"\n")


def load_witness(key: bytes, key_directory: Path, directory: Path) -> Witness | None:
    """The authenticated witness for `directory`, None if there is none.

    Its own file, else the last record the archive holds for it (a directory that was
    gone when the expiry ran and has come back: what was sealed there still counts).
    Raises BadWitness when a witness is there but its HMAC or shape is wrong, and
    AuditError when it cannot be read at all."""
    path = witness_file(key_directory, directory)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        expired = _expired(key_directory, path.name)
        if expired is None:
            return None
        data = expired
        path = path.with_name(f"{expired_shard(path.name)} ({path.name})")  # where it was
    except OSError as exc:
        raise AuditError(f"cannot read audit witness {path}: {exc.strerror}") from exc
    return parse_witness(key, path, data, real_dir(directory))


def _expired(key_directory: Path, name: str) -> bytes | None:
    """The bytes of the last record the archive holds under `name`, None if none.

    Its shard; while an earlier version's single archive (EXPIRED_NAME) exists, that
    too, read first: the expiry appends its records to the shards before it unlinks
    it, so reading it first, the shard second, never misses a record moved between the
    two reads.  A record in the shard is later than one in the old archive (which the
    expiry empties into the shards before it moves anything), so the shard's wins."""
    wdir = key_directory / WITNESS_DIR
    old = _last_record(wdir / EXPIRED_NAME, name)
    new = _last_record(wdir / expired_shard(name), name)
    return new if new is not None else old


def _last_record(path: Path, name: str) -> bytes | None:
    """The bytes of the last record filed under `name` in archive file `path`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditError(f"cannot read audit witness {path}: {exc.strerror}") from exc
    at = data.rfind(b"\n" + name.encode() + b" ")
    if at < 0:
        return None
    start = at + 1 + len(name) + 1
    end = data.find(b"\n", start)
    return data[start:] if end < 0 else data[start:end]


def parse_witness(key: bytes, path: Path, data: bytes, real: str) -> Witness:
    """The witness in `data` (read from `path`) for the directory whose real path is
    `real`; BadWitness unless it authenticates and names that directory."""
    try:
        doc = json.loads(data)
        w = Witness(
            str(doc["dir"]),
            int(doc["dev"]),
            int(doc["ino"]),
            str(doc["trail"]),
            int(doc["seq"]),
            str(doc["hash"]),
            str(doc["root"]),
        )
        mac = str(doc["mac"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadWitness(f"the witness {path} is malformed ({exc})") from None
    if not compare_digest(mac, witness_mac(key, w.fields())):
        raise BadWitness(f"the witness {path} does not authenticate with the key")
    if w.dir != real:
        raise BadWitness(f"the witness {path} names another directory ({w.dir})")
    return w


def publish_witness(key: bytes, key_directory: Path, directory: Path, w: Witness) -> None:
    """Replace the witness for `directory` with `w` (atomic: write, fsync, rename).

    The caller holds the witness lock and has already fsynced the checkpoint, so
    the witness never claims more than a crash can leave on disk."""
    path = witness_file(key_directory, directory)
    doc = w.fields()
    doc["mac"] = witness_mac(key, doc)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        data = json.dumps(doc, sort_keys=True).encode() + b"\n"
        if os.write(fd, data) != len(data):
            raise OSError(28, "short write")  # ENOSPC in all but name
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def dir_identity(directory: Path) -> tuple[str, int, int]:
    """(real path, st_dev, st_ino) of the audit directory."""
    real = real_dir(directory)
    try:
        st = os.stat(real)
    except OSError as exc:
        raise AuditError(f"cannot stat audit directory {directory}: {exc.strerror}") from exc
    return real, st.st_dev, st.st_ino


def publish_if_newer(key: bytes, key_directory: Path, directory: Path, w: Witness) -> None:
    """Publish `w` (its dir, dev and ino filled in here) unless the witness already
    records this trail at `w.seq` or later: monotonic across writers of one trail.
    The caller holds the witness lock."""
    try:
        current = load_witness(key, key_directory, directory)
    except BadWitness:
        current = None  # the writer recorded it as a finding when it opened the trail
    if current is not None and current.trail == w.trail and current.seq >= w.seq:
        return
    real, dev, ino = dir_identity(directory)
    publish_witness(
        key, key_directory, directory, Witness(real, dev, ino, w.trail, w.seq, w.hash, w.root)
    )
