"""The chain on disk as one writer sees it: open it, then append (chain_append.py).

Every method runs with the trail's flock held (the writer takes it).  The chain
head (seq, digest, Merkle frontier) is rebuilt at open from the last checkpoint
that authenticates; what other writers appended since is adopted or recorded as
chain_append.py describes (DESIGN §5 adoption).
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
)
from sandbox.audit.chain_append import ChainAppend
from sandbox.audit.lines import MAX_LINE, Rejected, authenticate, digest_of, parse_entry
from sandbox.audit.merkle import Frontier
from sandbox.audit.native import native_seal, native_subtree
from sandbox.audit.paths import list_segments, segment_name
from sandbox.audit.witness import BadWitness, Witness, load_witness
from sandbox.digest import token_hex
from sandbox.errors import AuditError

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_CHECKPOINT_MARK = b'"type":"checkpoint"'
_TAIL_CHUNK = 64 << 10


class Chain(ChainAppend):
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
