"""Every tamper kind is detected, with the right first bad seq.

Each tampered trail is still a well-formed JSON Lines log with plausible
entries: an unchained log would accept all of them.
"""

from __future__ import annotations

import json

from audit_helpers import Trail, fill, rechain, trail_fixture  # noqa: F401 - the `trail` fixture

from sandbox.audit import verify_trail
from sandbox.audit.canonical import seal
from sandbox.audit.merkle import Frontier


def verify(t: Trail):
    return verify_trail(t.dir, key_directory=t.keys)


def _decision_seq(t: Trail, nth: int = 10) -> int:
    return [e["seq"] for e in t.entries() if e["type"] == "decision"][nth]


def test_intact_trail_verifies(trail: Trail) -> None:
    fill(trail)
    r = verify(trail)
    assert r.ok, r.summary()
    assert r.entries == len(trail.lines())
    assert r.checkpoints >= 4 and r.last_checkpoint_seq == r.entries
    assert r.unsealed == () and r.notes == ()


def test_modified_field(trail: Trail) -> None:
    fill(trail)
    seq = _decision_seq(trail)
    lines = trail.lines()
    i = trail.index_of(seq)
    assert b'"result":"deny"' in lines[i]  # a denial, rewritten as an allow
    lines[i] = lines[i].replace(b'"result":"deny"', b'"result":"allow"')
    trail.write_lines(lines)
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "modified", seq)


def test_modified_and_own_hash_recomputed(trail: Trail) -> None:
    fill(trail)
    seq = _decision_seq(trail)
    entries = trail.entries()
    i = trail.index_of(seq)
    e = dict(entries[i])
    e.pop("hash")
    e["target"] = "/ws/harmless"
    lines = trail.lines()
    lines[i] = seal(e)[0]
    trail.write_lines(lines)
    r = verify(trail)
    assert (r.kind, r.first_bad_seq) == ("modified", seq)


def test_deleted_entry(trail: Trail) -> None:
    fill(trail)
    seq = _decision_seq(trail)
    lines = trail.lines()
    del lines[trail.index_of(seq)]
    trail.write_lines(lines)
    r = verify(trail)
    assert (r.kind, r.first_bad_seq) == ("deleted", seq)


def test_inserted_entry_with_valid_hash_and_link(trail: Trail) -> None:
    fill(trail)
    seq = _decision_seq(trail)
    entries = trail.entries()
    i = trail.index_of(seq)
    fake = dict(entries[i])
    fake.pop("hash")
    fake.update(seq=seq + 1, prev=entries[i]["hash"], target="/ws/innocent", result="allow")
    lines = trail.lines()
    lines.insert(i + 1, seal(fake)[0])
    trail.write_lines(lines)
    r = verify(trail)
    assert (r.kind, r.first_bad_seq) == ("inserted", seq + 1)


def test_inserted_copy_of_an_earlier_entry(trail: Trail) -> None:
    fill(trail)
    seq = _decision_seq(trail)
    lines = trail.lines()
    i = trail.index_of(seq)
    lines.insert(i + 1, lines[i - 5])
    trail.write_lines(lines)
    r = verify(trail)
    assert (r.kind, r.first_bad_seq) == ("inserted", seq + 1)


def test_swapped_entries(trail: Trail) -> None:
    fill(trail)
    seq = _decision_seq(trail)
    lines = trail.lines()
    i = trail.index_of(seq)
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    trail.write_lines(lines)
    r = verify(trail)
    assert (r.kind, r.first_bad_seq) == ("reordered", seq)


def test_truncated_tail(trail: Trail) -> None:
    fill(trail)
    lines = trail.lines()
    n = len(lines)
    trail.write_lines(lines[:-3])
    r = verify(trail)
    assert (r.kind, r.first_bad_seq) == ("truncated", n - 2)


def test_truncated_back_to_an_older_checkpoint(trail: Trail) -> None:
    """The cut trail ends on a valid checkpoint: only the witness can tell."""
    fill(trail)
    entries = trail.entries()
    cps = [e["seq"] for e in entries if e["type"] == "checkpoint"]
    older = cps[-3]
    trail.write_lines(trail.lines()[:older])
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "truncated", older + 1)
    assert "witness" in r.message


def test_whole_chain_recomputed_after_an_edit(trail: Trail) -> None:
    """Hashes and links all recomputed without the key: the checkpoints give it away."""
    fill(trail)
    entries = trail.entries()
    seq = _decision_seq(trail)
    i = trail.index_of(seq)
    entries[i]["target"] = "/ws/innocent"
    trail.write_lines(rechain(entries, start=i))
    r = verify(trail)
    cps = [e["seq"] for e in entries if e["type"] == "checkpoint"]
    last_good = max(c for c in cps if c < seq)
    assert (r.kind, r.first_bad_seq) == ("forged", last_good + 1)
    assert last_good + 1 <= seq


def test_whole_chain_and_merkle_roots_recomputed(trail: Trail) -> None:
    """Even with correct Merkle roots, the HMAC needs the key."""
    fill(trail)
    entries = trail.entries()
    seq = _decision_seq(trail)
    i = trail.index_of(seq)
    entries[i]["result"] = "allow"
    entries[i]["target"] = "/ws/innocent"
    # Recompute everything an attacker can: hashes, links, roots, frontiers.
    f = Frontier()
    last = entries[0]["hash"]
    out = [trail.lines()[0]]
    f.add(bytes.fromhex(last))
    for original in entries[1:]:
        e = dict(original)
        e.pop("hash")
        e["prev"] = last
        if e["type"] == "checkpoint":
            e.update(root=f.root(), count=f.count, frontier=f.to_list())
        line, last, raw = seal(e)
        f.add(raw)
        out.append(line)
    trail.write_lines(out)
    r = verify(trail)
    assert r.kind == "forged" and "HMAC" in r.message
    assert r.first_bad_seq is not None and r.first_bad_seq <= seq


def test_forged_witness(trail: Trail) -> None:
    fill(trail)
    (w,) = (trail.keys / "witness").glob("*.json")
    doc = json.loads(w.read_text())
    doc["seq"] = 3
    w.write_text(json.dumps(doc))
    r = verify(trail)
    assert r.kind == "forged"


def test_wrong_key_is_forged(trail: Trail) -> None:
    fill(trail)
    (trail.keys / "audit.key").write_bytes(b"k" * 32)
    r = verify(trail)
    assert r.kind == "forged"


def test_whole_trail_deleted_is_truncated(trail: Trail) -> None:
    fill(trail)
    for seg in trail.dir.glob("trail-*.jsonl"):
        seg.unlink()
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "truncated", 1)


def test_missing_key_is_unreadable_not_tampered(trail: Trail) -> None:
    import pytest

    from sandbox.errors import AuditError

    fill(trail)
    (trail.keys / "audit.key").unlink()
    with pytest.raises(AuditError) as exc:
        verify(trail)
    assert exc.value.exit_code == 2 and "key not found" in str(exc.value)
