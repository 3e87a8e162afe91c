"""The appending half of the chain (sandbox.audit.chain): rotate, catch up, write a line.

Every method runs with the trail's flock held (the writer takes it), or takes it
itself (`write_native`).  The head (seq, digest, Merkle frontier) is kept current by
reading only what other writers appended since we last looked (O(new entries),
usually zero).

Adoption (DESIGN §5): a line another process appended is taken into our head only
if it verifies as another landgate writer's entry: its digest matches its bytes,
its tag is the trail key's, its seq and prev continue the chain, and it does not
claim our own session.  Anything else (an entry forged without the key, junk, a
replayed line) is left in place as evidence, skipped, and recorded as a `tamper`
entry of its own, which is chained and tagged like every other entry: the writer
never crashes on it and never folds it into a checkpoint.

Like trail_io.TrailIO, `ChainAppend` holds no state of its own: Chain's __init__ sets
every attribute declared here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sandbox.audit.canonical import seal
from sandbox.audit.lines import Rejected, authenticate, parse_entry, parse_prev, parse_seq
from sandbox.audit.merkle import Frontier
from sandbox.audit.native import NativeSeal
from sandbox.audit.paths import segment_name
from sandbox.digest import sha256
from sandbox.errors import AuditError

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_O_SEG = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
_TAMPER_MARK = b'"type":"tamper"'
_SESSION_KEY = b'"session":"'


def segment_size(fd: int) -> int:
    """The size of the segment open at `fd` (O_APPEND, read with pread).  By lseek, not
    fstat: since multigrain timestamps (Linux 6.13) a stat marks the inode's ctime as
    queried, and the next append then takes a fine-grained timestamp and dirties the
    inode in the journal: fstat + write 2.07 us, lseek + write 1.08 us (6.18, ext4)."""
    return os.lseek(fd, 0, os.SEEK_END)


class ChainAppend:
    """Appending to the trail in `directory` with `key` (see the module)."""

    directory: Path
    key: bytes
    seg_fd: int
    seg_index: int
    seg_size: int  # bytes of the current segment already reflected in the head
    seq: int
    last_hash: str
    sha: Callable[[bytes], bytes]
    frontier: Frontier
    sealer: NativeSeal | None
    session: str | None  # the writer's open session, stamped on tamper entries
    torn_bytes: int  # a torn last line cut off; reported in the next entry
    findings: list[dict[str, Any]]  # lines no landgate writer wrote, not yet recorded

    def switch_segment(self, index: int, path: Path, *, create: bool) -> bool:
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
        if self.seg_fd >= 0:
            os.close(self.seg_fd)
        self.seg_fd, self.seg_index, self.seg_size = fd, index, 0
        return True

    def catch_up(self) -> None:
        """Adopt what other landgate writers appended to the current segment since we
        looked; anything else becomes a finding (see the module docstring)."""
        size = segment_size(self.seg_fd)
        if size == self.seg_size:
            return
        if size < self.seg_size:
            raise AuditError(
                f"audit segment {segment_name(self.seg_index)} shrank under "
                "us; run `landgate audit verify`"
            )
        data = os.pread(self.seg_fd, size - self.seg_size, self.seg_size)
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # A writer died mid-line (or hit ENOSPC and could not cut it back).  The
            # fragment cannot be verified and would corrupt the next line: cut it off
            # and say so in the next entry we write.
            os.ftruncate(self.seg_fd, self.seg_size + end)
            self.torn_bytes += len(data) - end
            data = data[:end]
        pos = 0
        while pos < len(data):
            nl = data.index(b"\n", pos)
            self._adopt_or_record(data[pos:nl], self.seg_size + pos)
            pos = nl + 1
        self.seg_size += len(data)

    def _adopt_or_record(self, line: bytes, offset: int) -> None:
        try:
            raw = authenticate(line, self.key)
            seq = parse_seq(line)
            if seq != self.seq + 1:
                raise Rejected("inserted", f"a landgate entry claiming seq {seq} replayed here")
            if parse_prev(line) != self.last_hash.encode():
                raise Rejected("inserted", "a landgate entry that does not link to the chain")
            if self.session is not None:
                j = line.find(_SESSION_KEY)
                if j >= 0 and line.startswith(self.session.encode() + b'"', j + 11):
                    raise Rejected("forged", "an entry in this writer's own session")
        except Rejected as rej:
            self.findings.append(
                {
                    "kind": rej.kind,
                    "first_bad_seq": self.seq + 1,
                    "segment": self.seg_index,
                    "offset": offset,
                    "length": len(line),
                    "sha256": sha256(line).hexdigest(),
                    "reason": rej.reason,
                }
            )
            return
        if line.find(_TAMPER_MARK) >= 0:
            self._acknowledge(line)
        self.frontier.add(raw)
        self.seq, self.last_hash = seq, raw.hex()

    def _acknowledge(self, line: bytes) -> None:
        """Another writer already recorded a line we also found: do not record it twice."""
        try:
            doc = parse_entry(line)
        except Rejected:
            return
        if "segment" in doc:
            where = (doc.get("segment"), doc.get("offset"))
            keep = [f for f in self.findings if (f.get("segment"), f.get("offset")) != where]
        else:  # a finding about the trail as a whole (swapped, truncated)
            keep = [f for f in self.findings if "segment" in f or f["kind"] != doc.get("kind")]
        self.findings = keep

    def sync_tail(self, segment_max_bytes: int) -> None:
        """Bring the head to the true end of the chain, rotating when full, and record
        what was found.  Returns with the current segment ready for the next line."""
        self.catch_up()
        while self.seg_size >= segment_max_bytes:
            nxt = self.seg_index + 1
            path = self.directory / segment_name(nxt)
            os.fdatasync(self.seg_fd)  # the old segment is complete and durable
            if not self.switch_segment(nxt, path, create=True):
                self.switch_segment(nxt, path, create=False)  # another writer rotated
                self.catch_up()
        self.record_findings()

    def record_findings(self) -> None:
        while self.findings:
            finding = self.findings.pop(0)
            entry: dict[str, Any] = {"type": "tamper", "ts": time.time(), **finding}
            if self.session is not None:
                entry["session"] = self.session
            self.write(entry)

    def write(self, entry: dict[str, Any]) -> int:
        """Seal and append one entry (flock held): the line `write_many([entry])` makes,
        without its lists (one append per decision is the supervisor's common case).
        Returns its seq."""
        seq = self.seq + 1
        entry["seq"] = seq
        entry["prev"] = self.last_hash
        if self.torn_bytes:
            entry["recovered_torn_bytes"] = self.torn_bytes
        line, digest, raw = self._seal(entry)
        self._append(line)
        self.seq, self.last_hash = seq, digest
        self.frontier.add(raw)
        return seq

    def _seal(self, entry: dict[str, Any]) -> tuple[bytes, str, bytes]:
        """canonical.seal with the trail key: natively when the extension is loaded."""
        if self.sealer is not None:
            return self.sealer.seal(entry)
        return seal(entry, self.key, self.sha)

    def write_native(self, entry: dict[str, Any], lock_fd: int) -> int:
        """`write` in one native call that also takes and releases flock(lock_fd) (the
        writer's fast path: `sealer` is there, no torn line to report, the segment not
        full): the same line.  Its seq; 0 when the segment is no longer the size we saw
        (nothing written: the caller takes the flock, catches up and calls `write`)."""
        sealer = self.sealer
        if sealer is None:
            return 0
        seq = self.seq + 1
        entry["seq"] = seq
        entry["prev"] = self.last_hash
        got = sealer.append(lock_fd, self.seg_fd, self.seg_size, entry)
        if got is None:
            return 0
        raw, size = got
        self.seg_size += size
        self.seq, self.last_hash = seq, raw.hex()
        self.frontier.add(raw)
        return seq

    def write_many(self, entries: list[dict[str, Any]]) -> int:
        """Seal the entries in order and append them with one write (flock held): each
        line is the one `write` would make, chained to the one before.  The head moves
        only once every line is written; on an error none of them stays in the trail.
        Returns the last seq."""
        seq, last, seal_one = self.seq, self.last_hash, self._seal
        lines: list[bytes] = []
        raws: list[bytes] = []
        for entry in entries:
            seq += 1
            entry["seq"] = seq
            entry["prev"] = last
            if self.torn_bytes and not lines:
                entry["recovered_torn_bytes"] = self.torn_bytes
            line, last, raw = seal_one(entry)
            lines.append(line)
            raws.append(raw)
        return self.write_rendered(b"".join(lines), raws)

    def write_rendered(self, data: bytes, raws: list[bytes]) -> int:
        """Append lines sealed elsewhere (flock held): `data` holds one line per raw
        digest in `raws`, seq self.seq + 1 onwards, the first chained to self.last_hash
        (csrc/render_event.c renders them so; write_many seals them here).  The head
        moves only once every line is written; on an error none of them stays in the
        trail.  Returns the last seq."""
        self._append(data)
        self.seq += len(raws)
        if raws:
            self.last_hash = raws[-1].hex()
        add = self.frontier.add
        for raw in raws:
            add(raw)
        return self.seq

    def _append(self, data: bytes) -> None:
        """Write `data` at the segment's end with the flock held; on an error cut any
        fragment back off (so the trail stays verifiable) and raise."""
        fd = self.seg_fd
        try:
            written = os.write(fd, data)
            while written < len(data):  # short write: the disk is filling up
                written += os.write(fd, data[written:])
        except OSError:
            try:
                os.ftruncate(fd, self.seg_size)
            except OSError:
                pass
            raise
        self.torn_bytes = 0
        self.seg_size += len(data)
