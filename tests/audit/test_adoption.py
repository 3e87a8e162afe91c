"""The writer adopts only landgate's lines; everything else is evidence, never a crash.

What lands in the trail between two of the writer's appends (an agent that could
write there, a broken disk, another program) is either another landgate writer's
entry (it authenticates and continues the chain: adopted) or not (left in place,
skipped, recorded as a `tamper` entry of its own).  verify then names the kind and
the first bad seq.  Each attack has its allowed twin: another landgate writer's
entries between ours are adopted and the trail verifies.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from audit_helpers import (  # noqa: F401 - the `trail` fixture
    ATTACKER_KEY,
    Trail,
    digest,
    event,
    forge,
    trail_fixture,
)

from sandbox.audit import verify_trail
from sandbox.audit.canonical import HASH_KEY, entry_tag, hashed_bytes


def verify(t: Trail):
    return verify_trail(t.dir, key_directory=t.keys)


def _append_raw(t: Trail, data: bytes) -> None:
    with open(t.segment, "ab") as f:
        f.write(data)


def _forged_next(t: Trail) -> bytes:
    """A correctly chained, correctly hashed entry: everything but the trail key's tag."""
    last = t.entries()[-1]
    return forge(
        {
            "type": "decision",
            "action": "file_read",
            "target": "/ws/innocent",
            "result": "allow",
            "session": last.get("session", ""),
            "seq": last["seq"] + 1,
            "prev": digest(last),
            "ts": last["ts"],
        }
    )


def _rehash(line: bytes) -> bytes:
    """Recompute a raw line's digest after editing its bytes (as an attacker can)."""
    body = line.rstrip(b"\n")
    i = body.find(HASH_KEY)
    d = hashlib.sha256(hashed_bytes(body, i)).digest()
    member = d.hex().encode() + entry_tag(ATTACKER_KEY, d)
    return body[: i + 8] + member + body[i + 8 + len(member) :] + b"\n"


JUNK = {
    "forged": None,  # built from the trail itself
    "junk": b"hello, this is not json\n",
    "invalid-utf8": b'{"seq":\xff\xfe,"hash":"\xc3\x28"}\n',
    "duplicate-keys": None,  # a forged entry with a second seq member
    "not-an-object": b"[1, 2, 3]\n",
    "ten-megabytes": b'{"target":"' + b"A" * (10 << 20) + b'"}\n',
    "truncated-mid-trail": b'{"action":"file_read","hash":"12',  # then a newline by someone
}
KIND = {
    "forged": "forged",
    "junk": "malformed",
    "invalid-utf8": "malformed",
    "duplicate-keys": "forged",
    "not-an-object": "malformed",
    "ten-megabytes": "malformed",
    "truncated-mid-trail": "malformed",
}


@pytest.mark.parametrize("what", sorted(JUNK))
def test_a_line_landgate_did_not_write_is_recorded_not_adopted(trail: Trail, what: str) -> None:
    w = trail.writer()
    sid = w.start_session({"mode": "enforce", "argv": ["agent"]})
    w.append(event(1, result="deny", target="/ws/.env"))
    bad_seq = trail.entries()[-1]["seq"] + 1
    data = JUNK[what]
    if what == "forged":
        data = _forged_next(trail)
    elif what == "duplicate-keys":
        data = _rehash(_forged_next(trail).replace(b'"seq":', b'"seq":1,"seq":', 1))
    elif what == "truncated-mid-trail":
        data = data + b"\n"
    assert data is not None
    _append_raw(trail, data)
    # The writer goes on: no exception, nothing adopted, the finding recorded.
    seq = w.append(event(2))
    assert seq == bad_seq + 1, "the tamper entry takes seq bad_seq, the decision the next one"
    w.end_session(0)
    w.close()
    assert w.failed is None
    raw = trail.segment.read_bytes()
    assert data in raw  # left in place as evidence
    tampers = [json.loads(x) for x in raw.splitlines() if b'"type":"tamper"' in x]
    assert len(tampers) == 1 and tampers[0]["kind"] == KIND[what]
    assert tampers[0]["seq"] == bad_seq and tampers[0]["session"] == sid
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, KIND[what], bad_seq), r.summary()


def test_another_writers_entries_are_adopted(trail: Trail) -> None:
    """The allowed twin: a second landgate writer appends between our entries."""
    a, b = trail.writer(), trail.writer()
    a.start_session({"mode": "enforce", "argv": ["one"]})
    b.start_session({"mode": "enforce", "argv": ["two"]})
    for i in range(20):
        (a if i % 3 else b).append(event(i))
    b.end_session(0)
    a.end_session(0)
    a.close()
    b.close()
    assert not any(e["type"] == "tamper" for e in trail.entries())
    r = verify(trail)
    assert r.ok and r.sessions == 2 and r.unsealed == (), r.summary()


def test_a_replayed_landgate_line_is_not_adopted(trail: Trail) -> None:
    """An authentic line copied to the end: it authenticates, but not at this seq."""
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["agent"]})
    w.append(event(1, result="allow", target="/ws/ok"))
    w.append(event(2, result="deny", target="/ws/.env"))
    replay = trail.lines()[2]
    bad_seq = trail.entries()[-1]["seq"] + 1
    _append_raw(trail, replay)
    w.append(event(3))
    w.end_session(0)
    w.close()
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "inserted", bad_seq), r.summary()


def test_a_new_writer_refuses_a_trail_whose_start_is_not_landgates(trail: Trail) -> None:
    from sandbox.errors import AuditError

    trail.dir.mkdir(parents=True)
    trail.segment.write_bytes(b"garbage\n")
    with pytest.raises(AuditError) as exc:
        trail.writer()
    assert "does not start with an entry landgate wrote" in str(exc.value)
    assert exc.value.exit_code != 0


def test_a_forged_checkpoint_is_not_trusted_by_the_next_writer(trail: Trail) -> None:
    """A checkpoint line appended without the key must not become the writer's start."""
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["agent"]})
    w.append(event(1))
    w.end_session(0)
    w.close()
    last = trail.entries()[-1]
    fake = forge(
        {
            "type": "checkpoint",
            "seq": last["seq"] + 1,
            "prev": digest(last),
            "root": "0" * 64,
            "count": 1,
            "frontier": ["0:" + "0" * 64],
            "hmac": "0" * 64,
            "ts": last["ts"],
        }
    )
    _append_raw(trail, fake)
    w2 = trail.writer()
    w2.start_session({"mode": "enforce", "argv": ["next"]})
    w2.end_session(0)
    w2.close()
    assert w2.failed is None
    r = verify(trail)
    assert (r.kind, r.first_bad_seq) == ("forged", last["seq"] + 1), r.summary()


def test_verify_names_a_line_without_a_single_hash_member(trail: Trail, tmp_path: Path) -> None:
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["agent"]})
    w.end_session(0)
    w.close()
    lines = trail.lines()
    i = lines[1].find(HASH_KEY)
    lines[1] = lines[1][:i] + b'"hash":"x",' + lines[1][i:]
    trail.write_lines(lines)
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "malformed", 2), r.summary()
