"""`landgate audit verify`: is the trail exactly what the writers wrote?

Checks, in one pass over the raw line bytes (no re-serialisation):
- each line's digest is the SHA-256 of the line without its hash member, and its
  tag is the trail key's over that digest (only a landgate writer has the key);
- `seq` counts up from 1 and `prev` is the previous line's digest (the chain);
- every checkpoint's Merkle root and count match the entries before it, and its
  HMAC authenticates them;
then, in verify_checks: the tamper entries writers recorded, a trail that started
over after a deletion, this directory's witness (trail id, highest sealed seq
and digest: a swap, a cut tail), and that every session that ended is sealed.

The verdict names a kind (KINDS) and the first bad seq.  Not tampering (exit 0,
reported as notes): a session with no end entry is *unsealed* (its landgate was
killed, or it is still running), named; a torn last line (a writer died
mid-write) is ignored and named.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from binascii import hexlify
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.audit.canonical import (
    GENESIS_PREV,
    HASH_HEX,
    HASH_KEY,
    checkpoint_mac,
    hashed_bytes,
    tag_base,
)
from sandbox.audit.lines import MAX_LINE, Rejected, authenticate, parse_entry, parse_seq
from sandbox.audit.merkle import Frontier
from sandbox.audit.paths import key_dir, list_segments, load_key
from sandbox.audit.verify_checks import Bad, after_walk, classify_link, classify_untagged
from sandbox.errors import AuditError

Progress = Callable[[int, int], None]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


KINDS = (
    "modified",  # an entry's bytes do not match its own hash
    "deleted",  # entries or a segment missing from the middle
    "inserted",  # a landgate entry replayed where it does not belong
    "reordered",
    "truncated",  # the tail is gone: witnessed seal missing, a session's seal cut off
    "forged",  # an entry (or witness) no landgate writer made: its tag is not the key's
    "rewritten",  # the chain recomputed without the key from the first bad seq on
    "swapped",  # the trail is not the one witnessed for this directory
    "reused",  # the trail started over here after the one witnessed was deleted
    "malformed",  # a line that is not an entry at all (junk, torn mid-trail, too long)
)

_PREV_KEY = b'"prev":"'
_SEQ_KEY = b'"seq":'
_TYPE_KEY = b'"type":"'
_PROGRESS_AFTER_S = 0.5  # only draw a bar when the trail is big enough to notice
_END = HASH_HEX + 8  # offset of the hash member's closing quote from the member's start


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    entries: int
    segments: int
    checkpoints: int
    last_checkpoint_seq: int
    sessions: int
    trail_id: str = ""
    kind: str | None = None  # one of KINDS when not ok
    first_bad_seq: int | None = None
    message: str = ""
    unsealed: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        if not self.ok:
            return f"audit trail tampered: seq {self.first_bad_seq}: {self.kind}: {self.message}"
        return (
            f"audit trail intact: {self.entries} entries in {self.segments} segment(s), "
            f"{self.sessions} session(s), {self.checkpoints} checkpoint(s), last "
            f"checkpoint at seq {self.last_checkpoint_seq}"
        )


class Walker:
    """One pass over the trail; raises Bad at the first inconsistency."""

    def __init__(
        self, directory: Path, key: bytes, key_directory: Path, progress: Progress | None
    ) -> None:
        self.directory = directory
        self.key = key
        self.key_directory = key_directory
        self.progress = progress
        self.segments = list_segments(directory)
        self.total_bytes = sum(_size(p) for _, p in self.segments)
        self.frontier = Frontier(_sha256)
        self.seq = 0
        self.last = GENESIS_PREV.encode()
        self.trail_id = ""
        self.genesis: dict[str, Any] = {}
        self.checkpoints = 0
        self.last_good_cp = 0
        self.cp_seen: dict[int, tuple[str, str]] = {}  # checkpoint seq -> (its digest, root)
        self.started: dict[str, int] = {}  # session -> start seq
        self.ended: dict[str, int] = {}  # session -> end seq
        self.tampers: list[tuple[int, dict[str, Any]]] = []  # (seq, entry) writers recorded
        self.notes: list[str] = []

    # The hot loop: ~3 us per entry.  Everything rare (checkpoints, session lines,
    # any anomaly) goes to helpers; the Merkle frontier is folded in batches.
    def walk(self) -> None:
        sha = hashlib.sha256
        tag_copy = tag_base(self.key).copy
        end = _END
        hk, sk, pk, tk = HASH_KEY, _SEQ_KEY, _PREV_KEY, _TYPE_KEY
        leaves = self.frontier.pending.append
        done = 0
        t0 = time.monotonic()
        reporting = False
        nseg = len(self.segments)
        last = self.last
        e = self.seq
        for si, (index, path) in enumerate(self.segments):
            if index != si + 1:
                raise Bad(
                    "deleted", e + 1, f"segment {index:06d} follows {si:06d}: a segment is missing"
                )
            lines = read_lines(path)
            last_seg = si == nseg - 1
            for li, raw in enumerate(lines):
                e += 1
                if raw[-1] != 10:
                    if last_seg and li == len(lines) - 1 and len(raw) <= MAX_LINE:
                        self.notes.append(
                            f"torn last line ({len(raw)} bytes) ignored: a writer died mid-write"
                        )
                        e -= 1
                        break
                    raise Bad("malformed", e, "an entry is not a complete line")
                # A line that is not well formed (a second hash member, a short or
                # non-hex member, a huge line) fails the digest or the tag below, and
                # _malformed() then says what it is: no extra scans on the hot path.
                # Only the key makes a tag, so no keyless edit survives to be parsed.
                i = raw.find(hk)
                if i <= 0:
                    self.seq = e - 1
                    self._malformed(raw, e)
                    raise Bad("malformed", e, "line is not an entry")
                stored = raw[i + 8 : i + 72]
                if raw[i - 1] == 44:  # ',' before the member: the common case
                    hasher = sha(raw[: i - 1])
                    hasher.update(raw[i + end + 1 : -1])
                    digest = hasher.digest()
                else:
                    digest = sha(hashed_bytes(raw[:-1], i)).digest()
                # seq, prev and type are unique top-level members (nested keys of those
                # names are renamed by the writer, and a string cannot hold `"seq":`
                # unescaped); seq and type sort near the end: search from there.
                j = raw.rfind(sk) + 6
                es = b"%d" % e
                k = j + len(es)
                seq_ok = j > 5 and raw.startswith(es, j) and not 48 <= raw[k] <= 57
                if hexlify(digest) != stored:
                    s = e if seq_ok else (parse_seq(raw) or e)
                    self.seq = e - 1
                    self._malformed(raw, e)  # not hex, say, rather than edited
                    raise Bad("modified", s, "entry content does not match its hash")
                tag = tag_copy()
                tag.update(digest)
                if hexlify(tag.digest()) != raw[i + 72 : i + end]:
                    self.seq, self.last = e - 1, last
                    self._malformed(raw, e)
                    classify_untagged(self, path, li, e)
                p = raw.find(pk)
                if not seq_ok or p < 0 or raw[p + 8 : p + 72] != last:
                    self.seq, self.last = e - 1, last
                    classify_link(self, path, li, e, raw[p + 8 : p + 72] if p >= 0 else None)
                t = raw.rfind(tk)
                kind = raw[t + 8] if t >= 0 else 0
                if kind != 100:  # not "decision": rare lines, parsed in full
                    self.seq, self.last = e - 1, last
                    self._rare(raw, e, kind, stored)
                leaves(digest)  # the Merkle frontier's, folded in batches (merkle.py)
                last = stored
            self.seq, self.last = e, last
            self.frontier.fold()  # what is held back stays bounded by a segment's entries
            done += sum(map(len, lines))
            if self.progress is not None:
                if not reporting and time.monotonic() - t0 >= _PROGRESS_AFTER_S:
                    reporting = True
                if reporting:
                    self.progress(done, self.total_bytes)
        if self.progress is not None and reporting:
            self.progress(self.total_bytes, self.total_bytes)

    def _malformed(self, raw: bytes, e: int) -> None:
        """Raise Bad('malformed') when `raw` is not an entry at all (junk, too long,
        invalid UTF-8, duplicate keys...): authenticate() says what is wrong with it."""
        try:
            authenticate(raw.rstrip(b"\n"), self.key)
        except Rejected as rej:
            if rej.kind == "malformed":
                raise Bad("malformed", e, f"line is not an entry: {rej.reason}") from None

    def _rare(self, raw: bytes, e: int, kind: int, stored: bytes) -> None:
        try:
            doc = parse_entry(raw)
        except Rejected as rej:  # tagged but not JSON: only a key holder could do that
            raise Bad("malformed", e, rej.reason) from None
        t = doc.get("type")
        if t == "checkpoint":
            self._checkpoint(doc, e, stored)
        elif t == "session_start":
            self.started[str(doc.get("session", ""))] = e
        elif t == "session_end":
            self.ended[str(doc.get("session", ""))] = e
        elif t == "tamper":
            self.tampers.append((e, doc))
        elif e == 1:
            if t != "trail_start" or "trail" not in doc:
                raise Bad("malformed", 1, "the trail's first entry is not its start entry")
            self.genesis = doc
            self.trail_id = str(doc["trail"])

    def _checkpoint(self, doc: dict[str, Any], seq: int, own_hash: bytes) -> None:
        first = self.last_good_cp + 1
        where = f"entries {first}..{seq - 1} are not authenticated"
        if doc.get("count") != self.frontier.count or doc.get("root") != self.frontier.root():
            raise Bad(
                "rewritten",
                first,
                f"checkpoint at seq {seq} does not match the entries "
                f"before it (Merkle root): the chain was rewritten; {where}",
            )
        mac = checkpoint_mac(self.key, self.trail_id, seq, str(doc["root"]), self.last.decode())
        if not hmac.compare_digest(mac, str(doc.get("hmac", ""))):
            raise Bad(
                "forged",
                seq,
                f"checkpoint at seq {seq} has an HMAC that the key does not produce; {where}",
            )
        self.checkpoints += 1
        self.last_good_cp = seq
        self.cp_seen[seq] = (own_hash.decode(), str(doc["root"]))

    def lines_after(self, path: Path, li: int) -> Iterator[bytes]:
        """Every line after line `li` of `path` (all later segments too)."""
        seen = False
        for _, p in self.segments:
            lines = read_lines(p)
            start = 0
            if p == path:
                seen = True
                start = li + 1
            elif not seen:
                continue
            yield from lines[start:]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_lines(path: Path) -> list[bytes]:
    try:
        with open(path, "rb") as f:
            return f.readlines()
    except OSError as exc:
        raise AuditError(f"cannot read audit segment {path}: {exc.strerror}") from exc


def verify_trail(
    directory: Path | str,
    *,
    key_directory: Path | str | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify the trail in `directory`.  Raises AuditError when it cannot be read."""
    directory = Path(directory)
    kdir = Path(key_directory) if key_directory is not None else key_dir()
    if not directory.is_dir():
        raise AuditError(f"no audit trail at {directory}")
    key = load_key(kdir, create=False)
    walker = Walker(directory, key, kdir, progress)
    try:
        if walker.segments:
            walker.walk()
        notes = after_walk(walker)
    except Bad as bad:
        return VerifyReport(
            False,
            walker.seq,
            len(walker.segments),
            walker.checkpoints,
            walker.last_good_cp,
            len(walker.started),
            walker.trail_id,
            bad.kind,
            bad.seq,
            bad.message,
        )
    unsealed = tuple(sid for sid in walker.started if sid not in walker.ended)
    return VerifyReport(
        True,
        walker.seq,
        len(walker.segments),
        walker.checkpoints,
        walker.last_good_cp,
        len(walker.started),
        walker.trail_id,
        unsealed=unsealed,
        notes=tuple(walker.notes + notes),
    )
