"""The audit writer's write path: lines appended under `flock` with the durability
promised, checkpoints, the witness, and what happens when the trail becomes unwritable.
One decision at a time, when the process has loaded sandbox._supervise, takes one
native call (flock, the size check, the write: sandbox.audit.native); anything unusual
takes the Python path here, which makes the same line.

`TrailIO` holds no state of its own: `sandbox.audit.writer.AuditWriter` sets every
attribute declared here in its __init__, and every method runs with the writer's thread
lock (`_tlock`) held, as the writer's docstring describes.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.audit.canonical import checkpoint_mac
from sandbox.audit.chain import Chain
from sandbox.audit.witness import Witness, publish_if_newer
from sandbox.errors import AuditError

__all__ = ["Durability", "TrailIO"]

# typing costs ~2 ms at import (issue 19); annotations are never evaluated;
# the checker sees the Literal, run time `str`
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    Durability = Literal["batch", "strict"]
else:
    Durability = str

_flock = fcntl.flock
_lseek, _SEEK_END = os.lseek, os.SEEK_END
_LOCK_EX, _LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_UN


class TrailIO:
    """The flock'ed, durable write path and checkpoints of one trail (see the module)."""

    directory: Path
    durability: Durability
    segment_max_bytes: int
    key_directory: Path
    _key: bytes
    _on_failure: Callable[[str], None] | None
    _tlock: threading.Lock
    _failed: str | None
    _closed: bool
    _chain: Chain
    _dirty: bool
    _pending_witness: tuple[int, str, str] | None  # seq, digest, root
    _since_checkpoint: int
    _last_checkpoint_time: float
    _session: str | None
    _lock_fd: int
    _witness_lock_fd: int

    def _release(self) -> None:
        for fd in (self._chain.seg_fd, self._lock_fd, self._witness_lock_fd):
            if fd >= 0:
                os.close(fd)
        self._chain.seg_fd = self._lock_fd = self._witness_lock_fd = -1

    def _check_usable(self) -> None:
        if self._closed:
            raise AuditError("audit writer is closed")
        if self._failed is not None:
            raise AuditError(self._failed)

    def _fail(self, message: str) -> None:
        if self._failed is None:
            self._failed = message
            if self._on_failure is not None:
                try:
                    self._on_failure(message)
                except Exception:  # noqa: BLE001, S110 - a broken callback must not hide the failure
                    pass

    @contextmanager
    def _flock(self, fd: int | None = None) -> Iterator[None]:
        lfd = self._lock_fd if fd is None else fd
        fcntl.flock(lfd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lfd, fcntl.LOCK_UN)

    def _write_entry(self, entry: dict[str, Any]) -> int:
        return self._write_entries([entry])

    def _write_entries(self, entries: list[dict[str, Any]]) -> int:
        return self._write_with(lambda: self._chain.write_many(entries))

    def _write_one(self, entry: dict[str, Any]) -> int:
        """Seal and append one entry with the durability promised (`_write_with` of
        chain.write): in one native call (flock, the size check, the write) when the
        chain has csrc/audit_seal.c and nothing is unusual; the last seq, or -1."""
        chain = self._chain
        if (
            chain.sealer is not None
            and not chain.torn_bytes
            and chain.seg_size < self.segment_max_bytes
        ):
            try:
                seq = chain.write_native(entry, self._lock_fd)
                if seq:
                    self._make_durable()
                    return seq
            except OSError as exc:
                return self._unwritable(exc)
        # The segment moved (another writer, a rotation, a line someone else wrote) or
        # is full: catch up under the flock, then the same line.
        return self._write_with(lambda: chain.write(entry))

    def _write_with(self, write: Callable[[], int]) -> int:
        """Run `write` (lines appended to the chain, one write()) under flock with the
        durability promised; the last seq, or -1 (and `failed`) on error."""
        lock_fd = self._lock_fd
        chain = self._chain
        try:
            _flock(lock_fd, _LOCK_EX)
            try:
                # Fast path: nobody appended or rotated since we last looked.  The size
                # by lseek, not fstat (chain_append.segment_size says why).
                if (
                    _lseek(chain.seg_fd, 0, _SEEK_END) != chain.seg_size
                    or chain.seg_size >= self.segment_max_bytes
                ):
                    chain.sync_tail(self.segment_max_bytes)
                seq = write()
            finally:
                _flock(lock_fd, _LOCK_UN)
            self._make_durable()
            return seq
        except OSError as exc:
            return self._unwritable(exc)
        except AuditError as exc:  # the trail changed under us in a way we cannot continue
            self._fail(str(exc))
            if self.durability == "strict":
                raise
            return -1

    def _make_durable(self) -> None:
        """The durability promised for lines just appended: fdatasync now ("strict"), or
        left to the background flush (marked dirty)."""
        if self.durability == "strict":
            os.fdatasync(self._chain.seg_fd)
        else:
            self._dirty = True

    def _unwritable(self, exc: OSError) -> int:
        self._fail(
            f"audit trail unwritable ({self.directory}: {exc.strerror}); "
            "stopping the sandboxed command so that nothing runs unrecorded"
        )
        if self.durability == "strict":
            raise AuditError(self._failed or "audit trail unwritable") from exc
        return -1

    def _checkpoint(self, *, final: bool, after: dict[str, Any] | None = None) -> None:
        """Write a checkpoint over every entry so far (preceded by `after`, under the
        same lock).  `final`: fsync and witness now."""
        entry: dict[str, Any] = {"type": "checkpoint", "ts": time.time()}
        if self._session is not None:
            entry["session"] = self._session
        chain = self._chain
        try:
            with self._flock():
                chain.sync_tail(self.segment_max_bytes)
                if after is not None:
                    chain.write(after)
                seq = chain.seq + 1
                root = chain.frontier.root()
                entry["root"] = root
                entry["count"] = chain.frontier.count
                entry["frontier"] = chain.frontier.to_list()
                entry["hmac"] = checkpoint_mac(
                    self._key, chain.trail_id, seq, root, chain.last_hash
                )
                chain.write(entry)
                witness = (seq, chain.last_hash, root)
            self._since_checkpoint = 0
            self._last_checkpoint_time = time.monotonic()
            self._pending_witness = witness
            if final or self.durability == "strict":
                os.fdatasync(chain.seg_fd)
                self._dirty = False
                self._publish_witness()
            else:
                self._dirty = True
        except OSError as exc:
            self._unwritable(exc)
        except AuditError as exc:
            self._fail(str(exc))
            if self.durability == "strict":
                raise

    def _publish_witness(self) -> None:
        """Record the latest durable checkpoint for this directory in the key directory.

        Only called once the checkpoint is fsynced, so the witness never claims
        more than a crash can leave on disk.  Monotonic across writers of one trail.
        """
        pending = self._pending_witness
        if pending is None:
            return
        self._pending_witness = None
        seq, digest, root = pending
        with self._flock(self._witness_lock_fd):
            publish_if_newer(
                self._key,
                self.key_directory,
                self.directory,
                Witness("", 0, 0, self._chain.trail_id, seq, digest, root),
            )
