"""The chain on disk as one writer sees it: open, catch up, rotate, write a line.

Every method runs with the trail's flock held (the writer takes it).  The chain
head (seq, digest, Merkle frontier) is rebuilt at open from the last checkpoint
that authenticates, and kept current by reading only what other writers appended
since we last looked (O(new entries), usually zero).

Adoption (DESIGN §5): a line another process appended is taken into our head only
if it verifies as another landgate writer's entry: its digest matches its bytes,
its tag is the trail key's, its seq and prev continue the chain, and it does not
claim our own session.  Anything else (an entry forged without the key, junk, a
replayed line) is left in place as evidence, skipped, and recorded as a `tamper`
entry of its own, which is chained and tagged like every other entry: the writer
never crashes on it and never folds it into a checkpoint.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sandbox.audit.canonical import (
    GENESIS_PREV,
    TRAIL_FORMAT,
    builtin_sha256,
    checkpoint_mac,
    native_sha256,
    seal,
)
from sandbox.audit.lines import (
    MAX_LINE,
    Rejected,
    authenticate,
    digest_of,
    parse_entry,
    parse_prev,
    parse_seq,
)
from sandbox.audit.merkle import Frontier
from sandbox.audit.native import native_seal, native_subtree
from sandbox.audit.paths import list_segments, segment_name
from sandbox.audit.witness import BadWitness, Witness, load_witness
from sandbox.digest import sha256, token_hex
from sandbox.errors import AuditError

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_O_SEG = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
_CHECKPOINT_MARK = b'"type":"checkpoint"'
_TAMPER_MARK = b'"type":"tamper"'
_SESSION_KEY = b'"session":"'
_TAIL_CHUNK = 64 << 10


def segment_size(fd: int) -> int:
    """The size of the segment open at `fd` (O_APPEND, read with pread).  By lseek, not
    fstat: since multigrain timestamps (Linux 6.13) a stat marks the inode's ctime as
    queried, and the next append then takes a fine-grained timestamp and dirties the
    inode in the journal: fstat + write 2.07 us, lseek + write 1.08 us (6.18, ext4)."""
    return os.lseek(fd, 0, os.SEEK_END)


class Chain:
    """The trail in `directory`, appended with `key`.  Not thread-safe: the writer locks."""

    def __init__(self, directory: Path, key: bytes) -> None:
        self.directory = directory
        self.key = key
        self.seg_fd = -1
        self.seg_index = 0
        self.seg_size = 0  # bytes of the current segment already reflected in the head
        self.seq = 0
        self.last_hash = GENESIS_PREV
        # The SHA-256 that seals lines and the Merkle frontier uses (canonical.native_sha256).
        self.sha = native_sha256() or builtin_sha256
        self.subtree = native_subtree()
        self.frontier = Frontier(self.sha, self.subtree)
        # The seal and one-call append of csrc/audit_seal.c (native.py), or None: the
        # same lines as canonical.seal's.
        self.sealer = native_seal(key)
        self.trail_id = ""
        self.session: str | None = None  # the writer's open session, stamped on tamper entries
        self.torn_bytes = 0  # a torn last line cut off; reported in the next entry
        # Lines found in the trail that no landgate writer wrote, not yet recorded.
        self.findings: list[dict[str, Any]] = []

    # ------------------------------------------------------------------- opening

    def open(self, key_directory: Path) -> None:
        """Find (or create) the chain head, and compare it with this directory's witness."""
        witness = self._load_witness(key_directory)
        segs = list_segments(self.directory)
        legacy = None
        if segs and witness is None:
            # Only a trail with segments and no witness: not imported on every launch.
            from sandbox.audit.legacy import legacy_trail_id, move_legacy_aside

            old_id = legacy_trail_id(segs[0][1])
            if old_id is not None:  # written before tags: moved aside, not continued
                legacy = move_legacy_aside(self.directory, old_id, segs)
                segs = []
        if not segs:
            self._create_genesis(witness, legacy)
            return
        if segs[0][0] != 1:
            raise AuditError(
                f"audit trail in {self.directory} has lost its first segment "
                f"({segment_name(1)}); run `landgate audit verify`"
            )
        genesis = self._read_genesis(segs[0][1])
        self.trail_id = str(genesis.get("trail", ""))
        start_index, start_offset = 1, 0
        found = self._find_last_checkpoint(segs)
        if found is not None:
            start_index, start_offset, cp, digest = found
            self.frontier = Frontier.from_list(cp["frontier"], cp["count"], self.sha, self.subtree)
            self.frontier.add(bytes.fromhex(digest))
            self.seq = int(cp["seq"])
            self.last_hash = digest
        for index, path in segs:
            if index < start_index:
                continue
            self.switch_segment(index, path, create=False)
            self.seg_size = start_offset if index == start_index else 0
            self.catch_up()
        self._compare_witness(witness, genesis)

    def _load_witness(self, key_directory: Path) -> Witness | None:
        """A witness that does not authenticate is a finding: the agent cannot write the
        key directory, so someone else did."""
        try:
            return load_witness(self.key, key_directory, self.directory)
        except BadWitness as exc:
            self.findings.append({"kind": "forged", "first_bad_seq": 1, "reason": str(exc)})
            return None

    def _read_genesis(self, path: Path) -> dict[str, Any]:
        try:
            with open(path, "rb") as f:
                first = f.readline(MAX_LINE + 2)
        except OSError as exc:
            raise AuditError(f"cannot read audit segment {path}: {exc.strerror}") from exc
        try:
            line = first.rstrip(b"\n")
            authenticate(line, self.key)
            doc = parse_entry(line)
            if doc.get("type") != "trail_start" or doc.get("seq") != 1:
                raise Rejected("malformed", "the first entry is not the trail's start entry")
        except Rejected as rej:
            # Refuse rather than continue a chain whose root we cannot trust.
            raise AuditError(
                f"audit trail in {self.directory} does not start with an entry landgate "
                f"wrote ({rej.reason}); run `landgate audit verify`"
            ) from None
        return doc

    def _compare_witness(self, witness: Witness | None, genesis: dict[str, Any]) -> None:
        """Record (as findings) what the key directory contradicts."""
        if witness is None:
            return
        replaced = genesis.get("replaces")
        if witness.trail != self.trail_id:
            if isinstance(replaced, dict) and replaced.get("trail") == witness.trail:
                return  # this trail started over here and says so (verify reports it)
            self.findings.append(
                {
                    "kind": "swapped",
                    "first_bad_seq": 1,
                    "reason": f"this directory's witness records trail {witness.trail} "
                    f"sealed to seq {witness.seq}; the trail here is {self.trail_id}",
                }
            )
        elif witness.seq > self.seq:
            self.findings.append(
                {
                    "kind": "truncated",
                    "first_bad_seq": self.seq + 1,
                    "reason": f"the trail ends at seq {self.seq} but seq {witness.seq} "
                    "was sealed and witnessed: the tail was cut",
                }
            )

    def _find_last_checkpoint(
        self, segs: list[tuple[int, Path]]
    ) -> tuple[int, int, dict[str, Any], str] | None:
        """(segment index, offset after it, entry, digest) of the last checkpoint
        that authenticates (tag, HMAC and frontier); forged ones are passed over."""
        for index, path in reversed(segs):
            found = self._last_checkpoint_in(path)
            if found is not None:
                return index, found[0], found[1], found[2]
        return None

    def _last_checkpoint_in(self, path: Path) -> tuple[int, dict[str, Any], str] | None:
        """Reads the segment backwards in growing chunks: a writer opening a long
        trail pays for the entries since the last checkpoint, not the whole segment."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise AuditError(f"cannot read audit segment {path}: {exc.strerror}") from exc
        try:
            size = os.fstat(fd).st_size
            off, buf, chunk = size, b"", _TAIL_CHUNK
            limit = len(buf)  # candidates at or after this index were judged already
            while True:
                new_off = max(0, off - chunk)
                buf = os.pread(fd, off - new_off, new_off) + buf
                limit += off - new_off
                off = new_off
                pos = buf.rfind(_CHECKPOINT_MARK, 0, limit)
                while pos >= 0:
                    nl = buf.rfind(b"\n", 0, pos)
                    if nl < 0 and off > 0:
                        break  # the line starts before what was read
                    start = nl + 1
                    end = buf.find(b"\n", pos)
                    limit = start
                    if end >= 0:  # a complete line (a torn one is cut off later)
                        cp = self._checkpoint_if_valid(buf[start:end])
                        if cp is not None:
                            return off + end + 1, cp[0], cp[1]
                    pos = buf.rfind(_CHECKPOINT_MARK, 0, start)
                if off == 0:
                    return None
                chunk *= 2
        finally:
            os.close(fd)

    def _checkpoint_if_valid(self, line: bytes) -> tuple[dict[str, Any], str] | None:
        try:
            authenticate(line, self.key)
            cp = parse_entry(line)
            if cp.get("type") != "checkpoint":
                return None
            mac = checkpoint_mac(
                self.key, self.trail_id, int(cp["seq"]), str(cp["root"]), str(cp["prev"])
            )
            frontier = Frontier.from_list(cp["frontier"], cp["count"], self.sha, self.subtree)
        except (Rejected, KeyError, TypeError, ValueError):
            return None  # not a checkpoint a landgate writer made: look further back
        if mac != cp.get("hmac") or frontier.root() != cp["root"]:
            return None
        return cp, digest_of(line)

    def _create_genesis(self, witness: Witness | None, legacy: dict[str, Any] | None) -> None:
        self.trail_id = token_hex(16)
        self.switch_segment(1, self.directory / segment_name(1), create=True)
        entry: dict[str, Any] = {
            "type": "trail_start",
            "trail": self.trail_id,
            "format": TRAIL_FORMAT,
            "dir": os.path.realpath(self.directory),
            "ts": time.time(),
        }
        if witness is not None:
            # A trail was sealed here before and is gone: say so in the new trail's
            # first entry, which is tagged, so verify reports the loss for good.
            entry["replaces"] = {
                "trail": witness.trail,
                "sealed_seq": witness.seq,
                "sealed_digest": witness.hash,
            }
        if legacy is not None:
            entry["legacy"] = legacy
        self.write(entry)
        os.fdatasync(self.seg_fd)

    # --------------------------------------------------------------- appending

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
