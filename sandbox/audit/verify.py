"""`landgate audit verify`: is the trail exactly what the writers wrote?

Checks, in one pass over the raw line bytes (no re-serialisation):
- each line's `hash` is the SHA-256 of the line without its hash member;
- `seq` counts up from 1 and `prev` is the previous line's hash (the chain);
- every checkpoint's Merkle root and count match the entries before it, and its
  HMAC (key in the key directory) authenticates them;
- the witness in the key directory (the latest checkpoint, HMAC'd) is present in
  the trail, so a tail cut back to an older checkpoint is caught.

Verdict kinds for the first bad entry: modified, deleted, inserted, reordered,
truncated, forged (a self-consistent chain that no checkpoint authenticates: it
was rewritten without the key; the first bad seq is then the first entry after
the last checkpoint that still authenticates, since the rewrite cannot be
located more precisely without the original).

Not tampering (exit 0, reported as notes): a session with no end entry or no
checkpoint after its end is *unsealed* (the supervisor was killed, the machine
lost power); a torn last line (a writer died mid-write) is ignored and named.
The entries after the last checkpoint are only chain-protected until the next
checkpoint seals them; the note says how many.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.audit.canonical import (
    GENESIS_PREV,
    HASH_KEY,
    checkpoint_mac,
    hashed_bytes,
    witness_mac,
)
from sandbox.audit.merkle import Frontier
from sandbox.audit.paths import WITNESS_DIR, key_dir, list_segments, load_key, witness_path
from sandbox.errors import AuditError

Progress = Callable[[int, int], None]
KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "forged")

_PREV_KEY = b'"prev":"'
_SEQ_KEY = b'"seq":'
_TYPE_KEY = b'"type":"'
_PROGRESS_AFTER_S = 0.5  # only draw a bar when the trail is big enough to notice


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


class _Bad(Exception):
    def __init__(self, kind: str, seq: int, message: str) -> None:
        super().__init__(message)
        self.kind, self.seq, self.message = kind, seq, message


def _parse_seq(line: bytes) -> int | None:
    j = line.find(_SEQ_KEY)
    if j < 0:
        return None
    j += 6
    k = j
    n = len(line)
    while k < n and 48 <= line[k] <= 57:
        k += 1
    return int(line[j:k]) if k > j else None


def _parse_prev(line: bytes) -> bytes | None:
    p = line.find(_PREV_KEY)
    return line[p + 8 : p + 72] if p >= 0 else None


class _Walker:
    """One pass over the trail; raises _Bad at the first inconsistency."""

    def __init__(
        self, directory: Path, key: bytes | None, key_directory: Path, progress: Progress | None
    ) -> None:
        self.directory = directory
        self.key = key
        self.key_directory = key_directory
        self.progress = progress
        self.segments = list_segments(directory)
        self.total_bytes = sum(_size(p) for _, p in self.segments)
        self.frontier = Frontier()
        self.seq = 0
        self.last = GENESIS_PREV.encode()
        self.trail_id = ""
        self.checkpoints = 0
        self.last_good_cp = 0
        self.cp_seen: dict[int, tuple[str, str]] = {}  # checkpoint seq -> (its hash, root)
        self.started: dict[str, int] = {}  # session -> start seq
        self.ended: dict[str, int] = {}  # session -> end seq
        self.notes: list[str] = []
        self.all_lines: list[bytes] | None = None  # only built on the slow path

    # The hot loop: ~2 us per entry.  Everything rare (checkpoints, session lines,
    # any anomaly) goes to helpers; the Merkle frontier update is inlined.
    def walk(self) -> None:
        sha = hashlib.sha256
        hk, sk, pk, tk = HASH_KEY, _SEQ_KEY, _PREV_KEY, _TYPE_KEY
        levels = self.frontier.levels
        done = 0
        t0 = time.monotonic()
        reporting = False
        nseg = len(self.segments)
        last = self.last
        e = self.seq
        for si, (index, path) in enumerate(self.segments):
            if index != si + 1:
                raise _Bad(
                    "deleted", e + 1, f"segment {index:06d} follows {si:06d}: a segment is missing"
                )
            lines = _read_lines(path)
            last_seg = si == nseg - 1
            for li, raw in enumerate(lines):
                e += 1
                if raw[-1] != 10:
                    if last_seg and li == len(lines) - 1:
                        self.notes.append(
                            f"torn last line ({len(raw)} bytes) ignored: a writer died mid-write"
                        )
                        e -= 1
                        break
                    raise _Bad("modified", e, "an entry is not a complete line")
                i = raw.find(hk)
                if i <= 0 or raw.find(hk, i + 1) >= 0:
                    raise _Bad("modified", e, "entry has no single hash member")
                stored = raw[i + 8 : i + 72]
                if raw[i - 1] == 44:  # ',' before the member: the common case
                    digest = sha(raw[: i - 1] + raw[i + 73 : -1]).digest()
                else:
                    digest = sha(hashed_bytes(raw[:-1], i)).digest()
                j = raw.find(sk) + 6
                es = b"%d" % e
                k = j + len(es)
                seq_ok = j > 5 and raw.startswith(es, j) and not 48 <= raw[k] <= 57
                if digest.hex().encode() != stored:
                    s = e if seq_ok else (_parse_seq(raw) or e)
                    raise _Bad("modified", s, "entry content does not match its hash")
                p = raw.find(pk)
                if not seq_ok or p < 0 or raw[p + 8 : p + 72] != last:
                    self.seq, self.last = e - 1, last
                    self._classify(
                        path, li, _parse_seq(raw), e, raw[p + 8 : p + 72] if p >= 0 else None
                    )
                t = raw.find(tk)
                kind = raw[t + 8] if t >= 0 else 0
                if kind != 100:  # not "decision": rare lines, parsed in full
                    self.seq, self.last = e - 1, last
                    if kind == 99:
                        self._checkpoint(raw, e, stored)
                    elif kind == 115:
                        self._session_line(raw, e)
                    elif e == 1:
                        self._genesis(raw)
                # Merkle frontier: a binary counter of complete subtrees.
                node = digest
                h = 0
                n = len(levels)
                while h < n and levels[h] is not None:
                    node = sha(b"\x01" + levels[h] + node).digest()  # type: ignore[operator]
                    levels[h] = None
                    h += 1
                if h == n:
                    levels.append(node)
                else:
                    levels[h] = node
                last = stored
            self.seq, self.last = e, last
            self.frontier.count = e
            done += sum(map(len, lines))
            if self.progress is not None:
                if not reporting and time.monotonic() - t0 >= _PROGRESS_AFTER_S:
                    reporting = True
                if reporting:
                    self.progress(done, self.total_bytes)
        if self.progress is not None and reporting:
            self.progress(self.total_bytes, self.total_bytes)

    def _genesis(self, line: bytes) -> None:
        try:
            self.trail_id = str(json.loads(line)["trail"])
        except (ValueError, KeyError):
            raise _Bad("modified", 1, "the trail's first entry is not its start entry") from None

    def _session_line(self, line: bytes, seq: int) -> None:
        doc = json.loads(line)
        sid = str(doc.get("session", ""))
        if doc.get("type") == "session_start":
            self.started[sid] = seq
        elif doc.get("type") == "session_end":
            self.ended[sid] = seq

    def _checkpoint(self, line: bytes, seq: int, own_hash: bytes) -> None:
        doc: dict[str, Any] = json.loads(line)
        self.frontier.count = seq - 1
        first = self.last_good_cp + 1
        where = f"entries {first}..{seq - 1} are not authenticated"
        if doc.get("count") != self.frontier.count or doc.get("root") != self.frontier.root():
            raise _Bad(
                "forged",
                first,
                f"checkpoint at seq {seq} does not match the entries "
                f"before it (Merkle root): the chain was rewritten; {where}",
            )
        assert self.key is not None
        mac = checkpoint_mac(self.key, self.trail_id, seq, str(doc["root"]), self.last.decode())
        if not hmac.compare_digest(mac, str(doc.get("hmac", ""))):
            raise _Bad(
                "forged",
                first,
                f"checkpoint at seq {seq} has an HMAC that the key "
                f"does not produce: forged without the key; {where}",
            )
        self.checkpoints += 1
        self.last_good_cp = seq
        self.cp_seen[seq] = (own_hash.decode(), str(doc["root"]))

    # Slow path: only once, at the first anomaly; may read the rest of the trail.
    def _classify(self, path: Path, li: int, s: int | None, e: int, prev: bytes | None) -> None:
        if s is None or prev is None:
            raise _Bad("modified", e, "entry has no seq or prev")
        later = self._later_seqs(path, li)
        if s == e:  # right number, wrong link
            if s in later:
                raise _Bad("inserted", e, f"an extra entry claims seq {e}")
            raise _Bad(
                "modified",
                e - 1,
                f"seq {e} does not link to seq {e - 1}: seq {e - 1} "
                "was changed and its hash recomputed",
            )
        if s < e:
            bad = s if s == e - 1 else e
            raise _Bad("inserted", bad, f"an entry claiming seq {s} follows seq {e - 1}")
        if s in later:
            raise _Bad(
                "inserted", e, f"an extra entry claiming seq {s} stands where seq {e} belongs"
            )
        if e in later:
            raise _Bad("reordered", e, f"seq {s} stands where seq {e} belongs; seq {e} comes later")
        raise _Bad(
            "deleted",
            e,
            f"seq {e - 1} is followed by seq {s}: "
            f"{s - e} entr{'y' if s - e == 1 else 'ies'} missing",
        )

    def _later_seqs(self, path: Path, li: int) -> set[int]:
        """Seqs of every line after line `li` of `path` (all later segments too)."""
        out: set[int] = set()
        seen = False
        for _, p in self.segments:
            lines = _read_lines(p)
            start = 0
            if p == path:
                seen = True
                start = li + 1
            elif not seen:
                continue
            for raw in lines[start:]:
                s = _parse_seq(raw)
                if s is not None:
                    out.add(s)
        return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_lines(path: Path) -> list[bytes]:
    try:
        with open(path, "rb") as f:
            return f.readlines()
    except OSError as exc:
        raise AuditError(f"cannot read audit segment {path}: {exc.strerror}") from exc


def _load_witness(kdir: Path, trail_id: str) -> dict[str, Any] | None:
    path = witness_path(kdir, trail_id)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AuditError(f"cannot read audit witness {path}: {exc}") from exc
    return doc if isinstance(doc, dict) else {}


def _witness_for_dir(kdir: Path, directory: Path) -> dict[str, Any] | None:
    """A witness that names this directory (used when the trail itself is gone)."""
    real = os.path.realpath(directory)
    try:
        names = os.listdir(kdir / WITNESS_DIR)
    except OSError:
        return None
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            doc = json.loads((kdir / WITNESS_DIR / name).read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("dir") == real:
            return doc
    return None


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
    walker = _Walker(directory, None, kdir, progress)
    if not walker.segments:
        doc = _witness_for_dir(kdir, directory)
        if doc is not None:
            return VerifyReport(
                False,
                0,
                0,
                0,
                0,
                0,
                str(doc.get("trail", "")),
                "truncated",
                1,
                f"the trail is gone but the witness records a checkpoint at seq {doc.get('seq')}",
            )
        raise AuditError(f"no audit trail at {directory} (no trail-*.jsonl segments)")
    walker.key = load_key(kdir, create=False)
    try:
        walker.walk()
        _check_witness(walker, kdir)
    except _Bad as bad:
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
    unsealed = _unsealed(walker)
    notes = list(walker.notes)
    if unsealed:
        notes.append(
            f"unsealed session(s), not tampering: {', '.join(unsealed)} (no end entry "
            "or no checkpoint after it: the session was killed or is still running)"
        )
    tail = walker.seq - walker.last_good_cp
    if tail > 0 and walker.last_good_cp:
        notes.append(
            f"{tail} entr{'y' if tail == 1 else 'ies'} after the last checkpoint "
            f"(seq {walker.last_good_cp}) are chained but not yet sealed"
        )
    return VerifyReport(
        True,
        walker.seq,
        len(walker.segments),
        walker.checkpoints,
        walker.last_good_cp,
        len(walker.started),
        walker.trail_id,
        unsealed=tuple(unsealed),
        notes=tuple(notes),
    )


def _check_witness(walker: _Walker, kdir: Path) -> None:
    doc = _load_witness(kdir, walker.trail_id)
    if doc is None:
        if walker.checkpoints:
            walker.notes.append(
                f"no witness for this trail in {kdir / WITNESS_DIR}: a tail "
                "cut back to an older checkpoint could not be detected"
            )
        return
    try:
        seq, digest, root = int(doc["seq"]), str(doc["hash"]), str(doc["root"])
        mac = str(doc["mac"])
    except (KeyError, ValueError, TypeError):
        raise _Bad("forged", walker.last_good_cp + 1, "the witness file is malformed") from None
    assert walker.key is not None
    if not hmac.compare_digest(mac, witness_mac(walker.key, walker.trail_id, seq, digest, root)):
        raise _Bad(
            "forged", walker.last_good_cp + 1, "the witness does not authenticate with the key"
        )
    if seq > walker.seq:
        raise _Bad(
            "truncated",
            walker.seq + 1,
            f"the trail ends at seq {walker.seq} but a checkpoint at seq {seq} was "
            "witnessed: the tail was cut",
        )
    # The witness records the checkpoint's seq, its own hash and its root.
    if walker.cp_seen.get(seq) != (digest, root):
        raise _Bad(
            "forged",
            seq,
            f"the witnessed checkpoint at seq {seq} is not in the trail "
            "as witnessed: the tail was cut and rewritten",
        )


def _unsealed(walker: _Walker) -> list[str]:
    out = []
    for sid in walker.started:
        end = walker.ended.get(sid)
        if end is None or end >= walker.last_good_cp:
            out.append(sid)
    return out
