"""Canonical entry bytes and the entry hash.

An entry is one line of canonical JSON: sorted keys, compact separators,
UTF-8.  Its `hash` is SHA-256 over the canonical JSON of the entry *without*
`hash`; since keys are sorted and compact, those bytes are exactly the line
with the `"hash":"<64 hex>"` member (and its comma) cut out.  That lets verify
hash the raw line bytes without re-serialising anything.  For the cut to be
unambiguous the byte string `"hash":` must occur once per line: inside a JSON
string every `"` is escaped, so only a key named `hash` can produce it, and the
writer renames nested keys of that name (`_hash`).

The `hash` member holds two things, 96 hex digits in all: the SHA-256 digest
(64) and, after it, the entry's tag (32): keyed BLAKE2s-128 over the digest with
the trail key (RFC 7693's keyed mode is a MAC; BLAKE2s because it is the cheaper
of the two on 32-byte inputs, measured in bench/bench_audit.py).  Anyone can check the chain; only
a holder of the key (a landgate writer, never the agent) can make a tag, so
an entry the writer did not write, or a chain recomputed without the key,
fails at exactly the first entry that changed.  Both live in the one member
that the digest excludes, so the tag costs no second cut of the line.

`prev` is the previous entry's digest, i.e. the SHA-256 of the previous line's
canonical bytes (without its own hash member); seq 1 has 64 zeros.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache

from sandbox.digest import blake2s, hmac_sha256, sha256

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

GENESIS_PREV = "0" * 64
HASH_KEY = b'"hash":"'
DIGEST_HEX = 64
TAG_HEX = 32
HASH_HEX = DIGEST_HEX + TAG_HEX  # the hash member's value: digest, then tag
TAG_PERSON = b"lgentry2"  # BLAKE2s personalisation (8 bytes): this use of the key only
TRAIL_FORMAT = 2  # 1 had no per-entry tags
# Keys the writer sets on every entry; nested keys of these names are renamed so
# that verify can find the top-level member with a plain byte search.
RESERVED = ("hash", "prev", "seq", "type")
_PLACEHOLDER = "h" * HASH_HEX  # not hex, so it can never collide with a real digest

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
    text = "".join(_c_encode(obj, 0)) if _c_encode is not None else _encoder.encode(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _escape_surrogates(text).encode("utf-8")


def _escape_surrogates(text: str) -> str:
    """Bytes that were not UTF-8 (an argv word, a file name, a host name the agent chose),
    decoded with surrogateescape, reach the encoder as lone surrogates, which UTF-8
    cannot carry: the trail spells each as JSON's own escape (`\\udcff`), so the line
    stays UTF-8, json.loads gives back the same string and surrogateescape its bytes.
    The encoder emits characters of this range only from string contents, so each one
    replaced lies inside a JSON string.  Only this slow path: valid text is unchanged."""
    return "".join(f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in text)


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
    end = i + 8 + HASH_HEX + 1  # '"hash":"' + digest + tag + '"'
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


@lru_cache(maxsize=4)
def tag_base(key: bytes) -> Any:
    """The keyed BLAKE2s state before any input: `.copy()` of it skips the key block
    (a third of a tag's cost)."""
    return blake2s(key=key, digest_size=16, person=TAG_PERSON)


def entry_tag(key: bytes, digest: bytes) -> bytes:
    """The entry's tag (32 hex digits, ASCII): keyed BLAKE2s-128 over its raw digest."""
    h = tag_base(key).copy()
    h.update(digest)
    tag: bytes = h.hexdigest().encode()
    return tag


def builtin_sha256(data: bytes) -> bytes:
    """SHA-256 of `data` by the interpreter's module (sandbox.digest)."""
    return bytes(sha256(data).digest())


def native_sha256() -> Callable[[bytes], bytes] | None:
    """SHA-256 by csrc/render_digest.c (the CPU's SHA extensions when it has them: 0.7 us
    for a 450-byte line against the built-in module's 1.7 us), when the process has
    already loaded sandbox._supervise (the supervisor's does): never imported here, so a
    session without the supervisor pays neither its load time nor its memory (issue 19).
    The same digests (tests/audit/test_render_contract.py, test_seal_native.py)."""
    mod = sys.modules.get("sandbox._supervise")
    if mod is None:
        return None
    ffi, lib = mod.ffi, mod.lib
    render_sha256, from_buffer = lib.lg_render_sha256, ffi.from_buffer

    def digest(data: bytes) -> bytes:
        out = bytearray(32)  # per call: cffi releases the GIL, threads may hash at once
        render_sha256(data, len(data), from_buffer(out), 0)
        return bytes(out)

    return digest


def placeholder_line(entry: dict[str, Any], placeholder: str = _PLACEHOLDER) -> bytes:
    """The entry's canonical line (no newline) with `placeholder` as its hash member's
    value, which `seal` (or csrc/audit_seal.c with "", sandbox.audit.native) fills in.
    `entry` gains the placeholder; nested reserved keys are renamed in the line only."""
    entry["hash"] = placeholder
    line = canonical(entry)
    # Only a nested object can hide a reserved key; `{` past the first byte is a
    # cheap necessary condition (it may also be inside a string: then check).
    if line.find(b"{", 1) >= 0 and _nested(entry):
        line = canonical(sanitize(entry))  # top-level keys, and so the placeholder, kept
    return line


def seal(
    entry: dict[str, Any], key: bytes, sha: Callable[[bytes], bytes] = builtin_sha256
) -> tuple[bytes, str, bytes]:
    """Encode an entry (not yet carrying `hash`): (line + b'\\n', digest hex, raw digest).
    `sha`: the SHA-256 to use (builtin_sha256 or native_sha256's, the same digests).

    May replace nested reserved keys; the caller keeps the returned line, not `entry`.
    """
    line = placeholder_line(entry)
    i = line.find(HASH_KEY)
    raw = sha(hashed_bytes(line, i))
    digest = raw.hex()
    tag = tag_base(key).copy()
    tag.update(raw)
    member = digest.encode() + tag.hexdigest().encode()  # entry_tag, inlined
    return line[: i + 8] + member + line[i + 8 + HASH_HEX :] + b"\n", digest, raw


def checkpoint_mac(key: bytes, trail: str, seq: int, root: str, prev: str) -> str:
    """HMAC-SHA256 binding a checkpoint's seq, Merkle root and chain head to this trail.

    `prev` is the hash of the last entry the root covers; the checkpoint entry's own
    hash cannot be inside its HMAC (the HMAC is one of the fields it hashes).
    """
    msg = f"landgate-audit-checkpoint/1|{trail}|{seq}|{root}|{prev}".encode()
    return hmac_sha256(key, msg).hex()


def witness_mac(key: bytes, fields: dict[str, Any]) -> str:
    """HMAC over a witness record (every field but `mac`, canonical JSON)."""
    body = canonical({k: v for k, v in fields.items() if k != "mac"})
    return hmac_sha256(key, b"landgate-audit-witness/2|" + body).hex()
