"""The audit writer: one hash-chained, checkpointed trail per directory.

It takes event dicts and does not care who made them (the supervisor, the
network layer, a test).  Every append happens under `flock` on the trail's lock
file, so writers in separate processes (concurrent sessions) extend one chain:
under the lock a writer compares the segment's size with what it last saw and,
if another writer appended meanwhile, reads just those new lines to bring its
seq, chain head and Merkle frontier up to date (O(new entries), usually zero).

Durability:
- strict: append() returns only after the line is written and fdatasync'ed;
- batch (default): written at once (a crash of landgate loses nothing that
  append() returned for; a power loss loses at most the fsync window), and a
  background flusher fdatasyncs at least every FLUSH_WINDOW_MS.
If the trail becomes unwritable (disk full, I/O error), `failed` is set, the
half-written line is cut back off, `on_failure` is called, strict appends
raise AuditError and batch appends return -1: the launcher must stop the
sandboxed command.  Nothing is dropped silently.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sandbox._version import __version__
from sandbox.audit.canonical import GENESIS_PREV, HASH_KEY, checkpoint_mac, seal, witness_mac
from sandbox.audit.merkle import Frontier
from sandbox.audit.paths import (
    LOCK_NAME,
    WITNESS_DIR,
    default_audit_dir,
    key_dir,
    list_segments,
    load_key,
    make_private_dir,
    segment_name,
    witness_path,
)
from sandbox.errors import AuditError

Durability = Literal["batch", "strict"]
FLUSH_WINDOW_MS = 100
_FLUSH_INTERVAL = 0.05  # half the promised window: the fsync itself takes time
_SEQ_KEY = b'"seq":'
_flock = fcntl.flock
_fstat = os.fstat
_LOCK_EX, _LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_UN
_O_SEG = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
# Keys the writer owns.  An event carrying one keeps its value under "event_<key>".
_WRITER_KEYS = ("seq", "prev", "hash", "session", "type")
_WRITER_KEY_SET = frozenset(_WRITER_KEYS)


def _line_seq(line: bytes) -> int:
    j = line.find(_SEQ_KEY) + 6
    k = j
    while 48 <= line[k] <= 57:
        k += 1
    return int(line[j:k])


_CHECKPOINT_MARK = b'"type":"checkpoint"'
_TAIL_CHUNK = 64 << 10


def _last_checkpoint_in(path: Path) -> tuple[int, dict[str, Any]] | None:
    """(offset just after it, entry) of the last complete checkpoint line in one segment.

    Reads the segment backwards from its end, in growing chunks, until a checkpoint
    line lies wholly inside what was read: a writer opening a long trail pays for
    the entries since the last checkpoint, not for the whole segment."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise AuditError(f"cannot read audit segment {path}: {exc.strerror}") from exc
    try:
        size = os.fstat(fd).st_size
        off, buf, chunk = size, b"", _TAIL_CHUNK
        while True:
            new_off = max(0, off - chunk)
            buf = os.pread(fd, off - new_off, new_off) + buf
            off = new_off
            pos = buf.rfind(_CHECKPOINT_MARK)
            while pos >= 0:
                nl = buf.rfind(b"\n", 0, pos)
                if nl < 0 and off > 0:
                    break  # the line starts before what was read
                start = nl + 1
                end = buf.find(b"\n", pos)
                if end >= 0:  # a complete line (a torn one is cut off later)
                    try:
                        return off + end + 1, json.loads(buf[start:end])
                    except ValueError as exc:
                        raise AuditError(
                            f"unreadable checkpoint in {path}; run `landgate audit verify`"
                        ) from exc
                pos = buf.rfind(_CHECKPOINT_MARK, 0, start)
            if off == 0:
                return None
            chunk *= 2  # no checkpoint line wholly inside what was read: read further back
    finally:
        os.close(fd)


class AuditWriter:
    """Appends entries to the trail in `directory` (default: `default_audit_dir()`)."""

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        durability: Durability = "batch",
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 5.0,
        segment_max_bytes: int = 64 << 20,
        key_directory: Path | str | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        """`on_failure(message)` is called once, from whichever thread met the failure,
        with the writer's lock held: it should signal (kill the agent's process group,
        set an event), not call back into the writer."""
        if durability not in ("batch", "strict"):
            raise AuditError(f"unknown audit durability {durability!r} (batch or strict)")
        if checkpoint_every < 1 or segment_max_bytes < 1:
            raise AuditError("checkpoint_every and segment_max_bytes must be positive")
        self.directory = Path(directory) if directory is not None else default_audit_dir()
        self.durability: Durability = durability
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.segment_max_bytes = segment_max_bytes
        self.key_directory = Path(key_directory) if key_directory is not None else key_dir()
        self._on_failure = on_failure
        self._key = load_key(self.key_directory, create=True)
        make_private_dir(self.directory)
        make_private_dir(self.key_directory / WITNESS_DIR)

        # One thread lock for this object: flock() excludes other processes only
        # (it is per open file description, shared by our threads).
        self._tlock = threading.Lock()
        self._failed: str | None = None
        self._closed = False
        self._seg_fd = -1
        self._seg_index = 0
        self._seg_size = 0  # bytes of the current segment already reflected in our state
        self._seq = 0
        self._last_hash = GENESIS_PREV
        self._frontier = Frontier()
        self._trail_id = ""
        self._torn_bytes = 0  # cut off a torn last line; reported in the next entry
        self._dirty = False
        self._pending_witness: tuple[int, str, str] | None = None
        self._since_checkpoint = 0
        self._last_checkpoint_time = time.monotonic()
        self._session: str | None = None
        self._session_mode = "enforce"
        self._counts: dict[str, Any] = {}
        try:
            self._lock_fd = os.open(
                self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            wl = self.key_directory / WITNESS_DIR / "witness.lock"
            self._witness_lock_fd = os.open(wl, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(f"cannot open audit lock in {self.directory}: {exc.strerror}") from exc
        with self._tlock, self._flock():
            self._open_trail()
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name="landgate-audit-flush", daemon=True
        )
        self._flusher.start()

    # ----------------------------------------------------------------- public API

    @property
    def failed(self) -> str | None:
        """Why the trail became unwritable, or None.  Once set, it stays set."""
        return self._failed

    @property
    def session(self) -> str | None:
        return self._session

    @property
    def trail_id(self) -> str:
        return self._trail_id

    @property
    def window_ms(self) -> int:
        return 0 if self.durability == "strict" else FLUSH_WINDOW_MS

    def counts(self) -> dict[str, Any]:
        """This session's decisions so far: allow, deny, by_action {action: {allow, deny}}."""
        with self._tlock:
            counts: dict[str, Any] = json.loads(json.dumps(self._counts))
            return counts

    def start_session(self, info: dict[str, Any]) -> str:
        """Write the session start entry; returns the new session id."""
        with self._tlock:
            self._check_usable()
            if self._session is not None:
                raise AuditError(f"audit session {self._session} is still open")
            sid = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
            entry: dict[str, Any] = {k: v for k, v in info.items() if k not in _WRITER_KEYS}
            entry.setdefault(
                "durability", {"mode": self.durability, "fsync_window_ms": self.window_ms}
            )
            entry.setdefault("landgate", __version__)
            entry["writer_pid"] = os.getpid()
            entry["type"] = "session_start"
            entry["session"] = sid
            entry.setdefault("ts", time.time())
            mode = info.get("mode")
            self._session_mode = mode if mode in ("enforce", "simulate") else "enforce"
            self._counts = {"allow": 0, "deny": 0, "by_action": {}}
            self._session = sid
            self._write_entry(entry)
            return sid

    def append(self, event: dict[str, Any]) -> int:
        """Record one decision; returns its seq (-1 in batch mode once the trail failed).

        Thread-safe.  strict: returns after fdatasync; raises AuditError on failure.
        """
        entry = dict(event)
        if not _WRITER_KEY_SET.isdisjoint(entry):
            for k in _WRITER_KEYS:
                if k in entry:
                    entry["event_" + k] = entry.pop(k)
        entry["type"] = "decision"
        ts = entry.get("ts")
        # Keep the supervisor's wall-clock time; anything else (monotonic ns, a
        # string) is kept as event_ts and the entry gets the writer's clock.
        if (ts.__class__ is not float or ts < 1e9) and not (
            isinstance(ts, (int, float)) and not isinstance(ts, bool) and ts >= 1e9
        ):
            if ts is not None:
                entry["event_ts"] = ts
            entry["ts"] = time.time()
        with self._tlock:
            if self._failed is not None or self._closed:
                if self.durability == "strict" or self._closed:
                    raise AuditError(self._failed or "audit writer is closed")
                return -1
            if self._session is None:
                raise AuditError("audit append before start_session")
            entry["session"] = self._session
            if "mode" not in entry:
                entry["mode"] = self._session_mode
            seq = self._write_entry(entry)
            if seq < 0:
                return seq
            result = entry.get("result")
            if result == "allow" or result == "deny":
                c = self._counts
                c[result] += 1
                per = c["by_action"].get(entry.get("action"))
                if per is None:
                    per = c["by_action"][str(entry.get("action", "?"))] = {"allow": 0, "deny": 0}
                per[result] += 1
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every:
                self._checkpoint(final=False)
            return seq

    def end_session(self, exit_status: int, counts: dict[str, Any] | None = None) -> None:
        """Write the session end entry and a final checkpoint (fsynced, witnessed)."""
        with self._tlock:
            if self._session is None:
                raise AuditError("audit end_session without a session")
            if self._failed is not None:
                self._session = None  # already reported through `failed`
                return
            entry = {
                "type": "session_end",
                "session": self._session,
                "exit_status": exit_status,
                "counts": counts if counts is not None else self._counts,
                "ts": time.time(),
            }
            try:
                if self._write_entry(entry) >= 0:
                    self._checkpoint(final=True)
            finally:
                self._session = None
            if self._failed is not None and self.durability == "strict":
                raise AuditError(self._failed)

    def checkpoint(self) -> None:
        """Write a checkpoint now (fsynced and witnessed before returning)."""
        with self._tlock:
            self._check_usable()
            self._checkpoint(final=True)

    def close(self) -> None:
        """Flush and release.  A session left open stays unsealed, as after a crash."""
        if self._closed:
            return
        self._stop.set()
        if self._flusher.is_alive() and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._tlock:
            if self._failed is None:
                try:
                    if self._dirty:
                        os.fdatasync(self._seg_fd)
                        self._dirty = False
                    self._publish_witness()
                except OSError as exc:
                    self._fail(f"cannot sync audit trail in {self.directory}: {exc.strerror}")
            self._closed = True
            for fd in (self._seg_fd, self._lock_fd, self._witness_lock_fd):
                if fd >= 0:
                    os.close(fd)
            self._seg_fd = self._lock_fd = self._witness_lock_fd = -1

    def __enter__(self) -> AuditWriter:  # noqa: PYI034 - not meant to be subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

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

    def _open_trail(self) -> None:
        """Find (or create) the chain head and rebuild the Merkle frontier. Under flock."""
        segs = list_segments(self.directory)
        if not segs:
            self._create_genesis()
            return
        if segs[0][0] != 1:
            raise AuditError(
                f"audit trail in {self.directory} has lost its first segment "
                f"({segment_name(1)}); run `landgate audit verify`"
            )
        try:
            with open(segs[0][1], "rb") as f:
                first = json.loads(f.readline())
            self._trail_id = str(first["trail"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditError(
                f"audit trail in {self.directory} has no readable start entry "
                f"({exc}); run `landgate audit verify`"
            ) from exc
        start_index, start_offset = segs[0][0], 0
        found = self._find_last_checkpoint(segs)
        if found is not None:
            start_index, start_offset, cp = found
            self._frontier = Frontier.from_list(cp["frontier"], cp["count"])
            self._frontier.add(bytes.fromhex(cp["hash"]))
            self._seq = int(cp["seq"])
            self._last_hash = str(cp["hash"])
        for index, path in segs:
            if index < start_index:
                continue
            self._switch_segment(index, path, create=False)
            self._seg_size = start_offset if index == start_index else 0
            self._catch_up()

    def _find_last_checkpoint(
        self, segs: list[tuple[int, Path]]
    ) -> tuple[int, int, dict[str, Any]] | None:
        """(segment index, offset just after it, entry) of the trail's last checkpoint."""
        for index, path in reversed(segs):
            found = _last_checkpoint_in(path)
            if found is not None:
                return index, found[0], found[1]
        return None

    def _create_genesis(self) -> None:
        self._trail_id = secrets.token_hex(16)
        self._switch_segment(1, self.directory / segment_name(1), create=True)
        self._write_locked(
            {"type": "trail_start", "trail": self._trail_id, "format": 1, "ts": time.time()}
        )
        os.fdatasync(self._seg_fd)

    def _switch_segment(self, index: int, path: Path, *, create: bool) -> bool:
        """Make `path` the current segment; False if `create` and someone else made it."""
        try:
            flags = _O_SEG | (os.O_CREAT | os.O_EXCL if create else 0)
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            return False
        except OSError as exc:
            raise AuditError(f"cannot open audit segment {path}: {exc.strerror}") from exc
        if create:
            dfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)  # the new name must survive a crash as well as its lines
            finally:
                os.close(dfd)
        if self._seg_fd >= 0:
            os.close(self._seg_fd)
        self._seg_fd, self._seg_index, self._seg_size = fd, index, 0
        return True

    def _catch_up(self) -> None:
        """Absorb lines other writers appended to the current segment since we looked."""
        size = os.fstat(self._seg_fd).st_size
        if size == self._seg_size:
            return
        if size < self._seg_size:
            raise AuditError(
                f"audit segment {segment_name(self._seg_index)} shrank under "
                "us; run `landgate audit verify`"
            )
        data = os.pread(self._seg_fd, size - self._seg_size, self._seg_size)
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # A writer died mid-line (or hit ENOSPC and could not cut it back).  The
            # fragment cannot be verified and would corrupt the next line: cut it off
            # and say so in the next entry we write.
            os.ftruncate(self._seg_fd, self._seg_size + end)
            self._torn_bytes += len(data) - end
            data = data[:end]
        add = self._frontier.add
        pos = 0
        while pos < len(data):
            nl = data.index(b"\n", pos)
            line = data[pos:nl]
            pos = nl + 1
            seq = _line_seq(line)
            if seq != self._seq + 1:
                raise AuditError(
                    f"audit trail is inconsistent at seq {seq} (expected "
                    f"{self._seq + 1}); run `landgate audit verify`"
                )
            i = line.find(HASH_KEY)
            digest = line[i + 8 : i + 72].decode("ascii")
            add(bytes.fromhex(digest))
            self._seq, self._last_hash = seq, digest
        self._seg_size += len(data)

    def _sync_tail(self) -> None:
        """Under flock: bring our view to the true chain head, rotating when full."""
        self._catch_up()
        while self._seg_size >= self.segment_max_bytes:
            nxt = self._seg_index + 1
            path = self.directory / segment_name(nxt)
            os.fdatasync(self._seg_fd)  # the old segment is complete and durable
            if not self._switch_segment(nxt, path, create=True):
                self._switch_segment(nxt, path, create=False)  # another writer rotated
                self._catch_up()

    def _write_locked(self, entry: dict[str, Any]) -> int:
        """Seal and write one entry; flock held.  Returns seq."""
        seq = self._seq + 1
        entry["seq"] = seq
        entry["prev"] = self._last_hash
        if self._torn_bytes:
            entry["recovered_torn_bytes"] = self._torn_bytes
        line, digest, raw = seal(entry)
        fd = self._seg_fd
        try:
            written = os.write(fd, line)
            while written < len(line):  # short write: the disk is filling up
                written += os.write(fd, line[written:])
        except OSError:
            # Cut any fragment back off so the trail stays verifiable.
            try:
                os.ftruncate(fd, self._seg_size)
            except OSError:
                pass
            raise
        self._torn_bytes = 0
        self._seq, self._last_hash = seq, digest
        self._seg_size += len(line)
        self._frontier.add(raw)
        return seq

    def _write_entry(self, entry: dict[str, Any]) -> int:
        """Write under flock with the durability promised; -1 (and `failed`) on error."""
        lock_fd = self._lock_fd
        try:
            _flock(lock_fd, _LOCK_EX)
            try:
                # Fast path: nobody appended or rotated since we last looked.
                if (
                    _fstat(self._seg_fd).st_size != self._seg_size
                    or self._seg_size >= self.segment_max_bytes
                ):
                    self._sync_tail()
                seq = self._write_locked(entry)
            finally:
                _flock(lock_fd, _LOCK_UN)
            if self.durability == "strict":
                os.fdatasync(self._seg_fd)
            else:
                self._dirty = True
            return seq
        except OSError as exc:
            self._fail(
                f"audit trail unwritable ({self.directory}: {exc.strerror}); "
                "stopping the sandboxed command so that nothing runs unrecorded"
            )
            if self.durability == "strict":
                raise AuditError(self._failed or "audit trail unwritable") from exc
            return -1
        except AuditError as exc:  # the trail changed under us in a way we cannot continue
            self._fail(str(exc))
            if self.durability == "strict":
                raise
            return -1

    def _checkpoint(self, *, final: bool) -> None:
        """Write a checkpoint over every entry so far.  `final`: fsync and witness now."""
        entry: dict[str, Any] = {"type": "checkpoint", "ts": time.time()}
        if self._session is not None:
            entry["session"] = self._session
        try:
            with self._flock():
                self._sync_tail()
                seq = self._seq + 1
                root = self._frontier.root()
                entry["root"] = root
                entry["count"] = self._frontier.count
                entry["frontier"] = self._frontier.to_list()
                entry["hmac"] = checkpoint_mac(
                    self._key, self._trail_id, seq, root, self._last_hash
                )
                self._write_locked(entry)
                witness = (seq, self._last_hash, root)
            self._since_checkpoint = 0
            self._last_checkpoint_time = time.monotonic()
            self._pending_witness = witness
            if final or self.durability == "strict":
                os.fdatasync(self._seg_fd)
                self._dirty = False
                self._publish_witness()
            else:
                self._dirty = True
        except OSError as exc:
            self._fail(
                f"audit trail unwritable ({self.directory}: {exc.strerror}); "
                "stopping the sandboxed command so that nothing runs unrecorded"
            )
            if self.durability == "strict":
                raise AuditError(self._failed or "audit trail unwritable") from exc

    def _publish_witness(self) -> None:
        """Record the latest durable checkpoint in the key directory (atomic replace).

        Only called once the checkpoint is fsynced, so the witness never claims
        more than a crash can leave on disk.  Monotonic across writers.
        """
        pending = self._pending_witness
        if pending is None:
            return
        self._pending_witness = None
        seq, digest, root = pending
        path = witness_path(self.key_directory, self._trail_id)
        with self._flock(self._witness_lock_fd):
            try:
                with open(path, "rb") as f:
                    if int(json.loads(f.read())["seq"]) >= seq:
                        return
            except (OSError, ValueError, KeyError, TypeError):
                pass
            doc = {
                "trail": self._trail_id,
                "dir": os.path.realpath(self.directory),
                "seq": seq,
                "hash": digest,
                "root": root,
                "mac": witness_mac(self._key, self._trail_id, seq, digest, root),
            }
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, json.dumps(doc, sort_keys=True).encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)

    def _flush_loop(self) -> None:
        while not self._stop.wait(_FLUSH_INTERVAL):
            try:
                self._flush_once()
            except Exception as exc:  # noqa: BLE001 - a thread must not die with a traceback
                with self._tlock:
                    self._fail(f"audit flusher failed: {exc}")
                return

    def _flush_once(self) -> None:
        with self._tlock:
            if self._failed is not None or self._closed:
                return
            if (
                self._since_checkpoint > 0
                and time.monotonic() - self._last_checkpoint_time >= self.checkpoint_seconds
            ):
                self._checkpoint(final=False)
            if not self._dirty and self._pending_witness is None:
                return
            # fsync a duplicate outside the lock: appends go on while the disk works.
            fd = os.dup(self._seg_fd)
            self._dirty = False
            pending = self._pending_witness
        try:
            os.fdatasync(fd)
            if pending is not None:
                with self._tlock:
                    if self._pending_witness is pending:
                        self._publish_witness()
        except OSError as exc:
            with self._tlock:
                self._fail(
                    f"cannot sync audit trail in {self.directory}: {exc.strerror}; "
                    "stopping the sandboxed command"
                )
        finally:
            os.close(fd)
