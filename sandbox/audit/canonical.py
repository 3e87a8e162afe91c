"""Canonical entry bytes and the entry hash.

An entry is one line of canonical JSON: sorted keys, compact separators,
UTF-8.  Its `hash` is SHA-256 over the canonical JSON of the entry *without*
`hash`; since keys are sorted and compact, those bytes are exactly the line
with the `"hash":"<64 hex>"` member (and its comma) cut out.  That lets verify
hash the raw line bytes without re-serialising anything.  For the cut to be
unambiguous the byte string `"hash":` must occur once per line: inside a JSON
string every `"` is escaped, so only a key named `hash` can produce it, and the
writer renames nested keys of that name (`_hash`).

`prev` is the previous entry's `hash`, i.e. the SHA-256 of the previous line's
canonical bytes (without its own hash member); seq 1 has 64 zeros.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

GENESIS_PREV = "0" * 64
HASH_KEY = b'"hash":"'
# Keys the writer sets on every entry; nested keys of these names are renamed so
# that verify can find the top-level member with a plain byte search.
RESERVED = ("hash", "prev", "seq", "type")
_PLACEHOLDER = "h" * 64  # not hex, so it can never collide with a real digest

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str
)
# The C encoder, built once: JSONEncoder.encode() rebuilds it on every call, which
# is a third of the writer's per-entry cost.  No circular-reference markers
# (entries are plain trees) and no NaN (not JSON).
_c_make = getattr(json.encoder, "c_make_encoder", None)
_c_encode = (
    _c_make(None, str, json.encoder.encode_basestring, None, ":", ",", True, False, False)
    if _c_make is not None
    else None
)


def canonical(obj: Any) -> bytes:
    if _c_encode is not None:
        return "".join(_c_encode(obj, 0)).encode("utf-8")
    return _encoder.encode(obj).encode("utf-8")


def _rename_nested(value: Any) -> Any:
    if isinstance(value, dict):
        return {(("_" + k) if k in RESERVED else k): _rename_nested(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rename_nested(v) for v in value]
    return value


def sanitize(entry: dict[str, Any]) -> dict[str, Any]:
    """Rename reserved keys below the top level (slow path, only when needed)."""
    return {k: _rename_nested(v) for k, v in entry.items()}


def hashed_bytes(line: bytes, i: int) -> bytes:
    """The line (no newline) with the hash member at offset `i` cut out."""
    end = i + 8 + 64 + 1  # '"hash":"' + digest + '"'
    if line[i - 1 : i] == b",":
        return line[: i - 1] + line[end:]
    # first member: cut the comma after it instead (or nothing if it is the only one)
    if line[end : end + 1] == b",":
        return line[:i] + line[end + 1 :]
    return line[:i] + line[end:]


_SCALARS = (str, int, float, bool, type(None))


def _nested(entry: dict[str, Any]) -> bool:
    """True when some value holds a dict (only those can carry a reserved key)."""
    for v in entry.values():
        t = v.__class__
        if t is str or t is int or t is float:
            continue
        if t is dict:
            return True
        if (t is list or t is tuple) and any(x.__class__ not in _SCALARS for x in v):
            return True
    return False


def seal(entry: dict[str, Any]) -> tuple[bytes, str, bytes]:
    """Encode an entry (not yet carrying `hash`): (line + b'\\n', hash hex, raw digest).

    May replace nested reserved keys; the caller keeps the returned line, not `entry`.
    """
    entry["hash"] = _PLACEHOLDER
    line = canonical(entry)
    # Only a nested object can hide a reserved key; `{` past the first byte is a
    # cheap necessary condition (it may also be inside a string: then check).
    if line.find(b"{", 1) >= 0 and _nested(entry):
        entry = sanitize(entry)
        entry["hash"] = _PLACEHOLDER
        line = canonical(entry)
    i = line.find(HASH_KEY)
    raw = hashlib.sha256(hashed_bytes(line, i)).digest()
    digest = raw.hex()
    return line[: i + 8] + digest.encode() + line[i + 8 + 64 :] + b"\n", digest, raw


def entry_hash_of_line(line: bytes) -> tuple[str | None, str | None]:
    """(stored hash, recomputed hash) of one line without newline; None when absent."""
    i = line.find(HASH_KEY)
    if i < 0 or line.find(HASH_KEY, i + 1) != -1:
        return None, None
    stored = line[i + 8 : i + 72].decode("ascii", "replace")
    return stored, hashlib.sha256(hashed_bytes(line, i)).hexdigest()


def checkpoint_mac(key: bytes, trail: str, seq: int, root: str, prev: str) -> str:
    """HMAC-SHA256 binding a checkpoint's seq, Merkle root and chain head to this trail.

    `prev` is the hash of the last entry the root covers; the checkpoint entry's own
    hash cannot be inside its HMAC (the HMAC is one of the fields it hashes).
    """
    msg = f"landgate-audit-checkpoint/1|{trail}|{seq}|{root}|{prev}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def witness_mac(key: bytes, trail: str, seq: int, digest: str, root: str) -> str:
    msg = f"landgate-audit-witness/1|{trail}|{seq}|{digest}|{root}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()
