"""verify's slow paths: naming what went wrong, and the checks after the walk.

Only reached at the first anomaly (classify_*), or once per verify (after_walk):
the hot loop in verify.py stays a straight line over the bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sandbox.audit.lines import Rejected, authenticate, parse_prev, parse_seq
from sandbox.audit.paths import WITNESS_DIR
from sandbox.audit.witness import BadWitness, dir_identity, load_witness
from sandbox.errors import AuditError

if TYPE_CHECKING:
    from sandbox.audit.verify import Walker


class Bad(Exception):
    """The first inconsistency: its kind (verify.KINDS), seq and a one-line message."""

    def __init__(self, kind: str, seq: int, message: str) -> None:
        super().__init__(message)
        self.kind, self.seq, self.message = kind, seq, message


def _authentic(raw: bytes, key: bytes) -> bool:
    try:
        authenticate(raw.rstrip(b"\n"), key)
    except Rejected:
        return False
    return True


def classify_untagged(w: Walker, path: Path, li: int, e: int) -> None:
    """Line `li` of `path` (where seq `e` belongs) hashes right but its tag is not the
    key's: no landgate writer wrote it.  What follows tells what happened."""
    after = w.lines_after(path, li)
    nxt = next(after, None)
    if nxt is None:
        raise Bad("forged", e, f"the entry at seq {e} was not written by landgate (no valid tag)")
    if _authentic(nxt, w.key):
        s = parse_seq(nxt)
        if s == e:  # the writer went on where the forged line claimed to be
            raise Bad(
                "forged",
                e,
                f"an entry claiming seq {e} was not written by landgate (no valid tag); "
                "the entries after it are landgate's",
            )
        if s == e + 1 and parse_prev(nxt) != w.last:
            raise Bad(
                "modified",
                e,
                f"seq {e} was changed and its hash recomputed without the key "
                f"(seq {e + 1} still names the original)",
            )
    untagged = 1 + (0 if _authentic(nxt, w.key) else 1)
    for raw in after:
        if not _authentic(raw, w.key):
            untagged += 1
    first = "the trail's start" if e == 1 else f"seq {e}"
    raise Bad(
        "rewritten",
        e,
        f"from {first} on the chain was recomputed without the key: {untagged} "
        "entr" + ("y is" if untagged == 1 else "ies are") + " not landgate's",
    )


def classify_link(w: Walker, path: Path, li: int, e: int, prev: bytes | None) -> None:
    """A landgate entry whose seq or prev does not continue the chain at seq `e`."""
    with open(path, "rb") as f:
        raw = f.readlines()[li]
    s = parse_seq(raw)
    if s is None or prev is None:
        raise Bad("malformed", e, "entry has no seq or prev")
    later = {parse_seq(x) for x in w.lines_after(path, li)}
    if s == e:  # right number, wrong link
        if s in later:
            raise Bad("inserted", e, f"an extra entry claims seq {e}")
        raise Bad(
            "modified",
            e - 1,
            f"seq {e} does not link to seq {e - 1}: seq {e - 1} "
            "was changed and its hash recomputed",
        )
    if s < e:
        bad = s if s == e - 1 else e
        raise Bad("inserted", bad, f"an entry claiming seq {s} follows seq {e - 1}")
    if s in later:
        raise Bad("inserted", e, f"an extra entry claiming seq {s} stands where seq {e} belongs")
    if e in later:
        raise Bad("reordered", e, f"seq {s} stands where seq {e} belongs; seq {e} comes later")
    raise Bad(
        "deleted",
        e,
        f"seq {e - 1} is followed by seq {s}: {s - e} entr{'y' if s - e == 1 else 'ies'} missing",
    )


def after_walk(w: Walker) -> list[str]:
    """The checks that need the whole trail; raises Bad, else returns notes."""
    notes: list[str] = []
    _tamper_entries(w)
    _started_over(w)
    _witness(w, notes)
    _sealed_sessions(w)
    unsealed = [sid for sid in w.started if sid not in w.ended]
    if unsealed:
        notes.append(
            f"unsealed session(s), not tampering: {', '.join(unsealed)} (no end entry: "
            "its landgate was killed, or it is still running)"
        )
    legacy = w.genesis.get("legacy")
    if isinstance(legacy, dict):
        notes.append(
            f"an older landgate's trail (format 1, trail {legacy.get('trail')}) was moved "
            f"aside to {legacy.get('moved_to')}/ when this one started: its entries carry "
            "no per-entry tags and are not verified here"
        )
    tail = w.seq - w.last_good_cp
    if tail > 0 and w.last_good_cp:
        notes.append(
            f"{tail} entr{'y' if tail == 1 else 'ies'} after the last checkpoint "
            f"(seq {w.last_good_cp}) are chained and tagged but not yet sealed"
        )
    return notes


def _tamper_entries(w: Walker) -> None:
    """A writer found something and recorded it (chained and tagged): report the first."""
    if not w.tampers:
        return
    seq, doc = w.tampers[0]
    kind = str(doc.get("kind", "forged"))
    bad = doc.get("first_bad_seq")
    first = bad if isinstance(bad, int) and bad > 0 else seq
    raise Bad(
        kind if kind in _KNOWN else "forged",
        first,
        f"recorded by a landgate writer at seq {seq}: {doc.get('reason', '')}",
    )


def _started_over(w: Walker) -> None:
    replaced = w.genesis.get("replaces")
    if not isinstance(replaced, dict):
        return
    raise Bad(
        "reused",
        1,
        f"this trail ({w.trail_id}) started over in a directory whose trail "
        f"{replaced.get('trail')} had been sealed up to seq {replaced.get('sealed_seq')}: "
        "that trail was deleted",
    )


def _witness(w: Walker, notes: list[str]) -> None:
    try:
        wit = load_witness(w.key, w.key_directory, w.directory)
    except BadWitness as exc:
        raise Bad("forged", w.last_good_cp + 1, str(exc)) from None
    if wit is None:
        if not w.segments:
            raise AuditError(f"no audit trail at {w.directory} (no trail-*.jsonl segments)")
        if w.checkpoints:
            notes.append(
                f"no witness for this directory in {w.key_directory / WITNESS_DIR}: a swap, "
                "a start-over or a tail cut back to an older checkpoint could not be detected"
            )
        return
    if not w.segments:
        raise Bad(
            "truncated",
            1,
            f"the trail is gone but trail {wit.trail} was sealed here up to seq {wit.seq}",
        )
    if wit.trail != w.trail_id:
        where = w.genesis.get("dir")
        came = f", started in {where}" if isinstance(where, str) and where != wit.dir else ""
        raise Bad(
            "swapped",
            1,
            f"this directory's witness records trail {wit.trail} sealed to seq {wit.seq}; "
            f"the trail here is {w.trail_id}{came}",
        )
    if wit.seq > w.seq:
        raise Bad(
            "truncated",
            w.seq + 1,
            f"the trail ends at seq {w.seq} but a checkpoint at seq {wit.seq} was "
            "witnessed: the tail was cut",
        )
    if w.cp_seen.get(wit.seq) != (wit.hash, wit.root):
        raise Bad(
            "rewritten",
            wit.seq,
            f"the witnessed checkpoint at seq {wit.seq} is not in the trail as witnessed: "
            "the tail was cut and rewritten",
        )
    _, dev, ino = dir_identity(w.directory)
    if (dev, ino) != (wit.dev, wit.ino):
        notes.append(
            "the audit directory is not the one witnessed (its inode changed: it was "
            "recreated or restored); its trail is the witnessed one"
        )


def _sealed_sessions(w: Walker) -> None:
    """A session that ended is sealed by the checkpoint right after its end entry (the
    writer writes both under one lock): a missing seal was removed, not lost."""
    for sid, end in w.ended.items():
        if end + 1 in w.cp_seen:
            continue
        if end >= w.seq:
            raise Bad(
                "truncated",
                end + 1,
                f"session {sid} ended at seq {end} but its final checkpoint is gone: "
                "the tail was cut",
            )
        raise Bad(
            "rewritten",
            end + 1,
            f"session {sid} ended at seq {end} but no checkpoint seals it: "
            "its final checkpoint was removed",
        )


_KNOWN = frozenset(
    (
        "modified",
        "deleted",
        "inserted",
        "reordered",
        "truncated",
        "forged",
        "rewritten",
        "swapped",
        "reused",
        "malformed",
    )
)
