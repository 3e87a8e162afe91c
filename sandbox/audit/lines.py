"""One line of the trail, judged from its bytes: shared by the writer and verify.

A line is an entry landgate wrote only if its hash member holds the SHA-256 of
the rest of the line followed by a tag that the trail key produces over that
digest.  Nothing here trusts the line: every index is bounds-checked and every
failure is a `Rejected` with a kind and a one-line reason, never an exception
from deep inside the parser (junk, truncated or invalid UTF-8 lines, duplicate
keys, a line of many megabytes are all ordinary input here).
"""

from __future__ import annotations

import json

from sandbox.audit.canonical import DIGEST_HEX, HASH_HEX, HASH_KEY, entry_tag, hashed_bytes
from sandbox.digest import sha256

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# A landgate entry is a few hundred bytes (a long command line: a few KB).  Anything
# longer than this was not written by landgate and is not parsed at all.
MAX_LINE = 1 << 20
_SEQ_KEY = b'"seq":'
_PREV_KEY = b'"prev":"'
_HEX = frozenset(b"0123456789abcdef")


class Rejected(Exception):
    """A line that is not an entry landgate wrote (kind: malformed, modified, forged)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def parse_seq(line: bytes) -> int | None:
    """The top-level seq of a line (first `"seq":` member), None when absent."""
    j = line.find(_SEQ_KEY)
    if j < 0:
        return None
    j += 6
    k, n = j, len(line)
    while k < n and 48 <= line[k] <= 57 and k - j < 19:
        k += 1
    return int(line[j:k]) if k > j else None


def parse_prev(line: bytes) -> bytes | None:
    p = line.find(_PREV_KEY)
    if p < 0 or len(line) < p + 8 + DIGEST_HEX:
        return None
    return line[p + 8 : p + 8 + DIGEST_HEX]


def authenticate(line: bytes, key: bytes) -> bytes:
    """The raw digest of `line` (no newline) if a holder of `key` wrote exactly it."""
    if len(line) > MAX_LINE:
        raise Rejected("malformed", f"a line of {len(line)} bytes (no entry is that long)")
    if not line.startswith(b"{") or not line.endswith(b"}"):
        raise Rejected("malformed", "not a JSON object on one line")
    i = line.find(HASH_KEY)
    if i <= 0 or line.find(HASH_KEY, i + 1) >= 0:
        raise Rejected("malformed", "no single hash member")
    member = line[i + 8 : i + 8 + HASH_HEX]
    if len(member) != HASH_HEX or line[i + 8 + HASH_HEX : i + 9 + HASH_HEX] != b'"':
        raise Rejected("malformed", "the hash member is not a digest and a tag")
    if not _HEX.issuperset(member):
        raise Rejected("malformed", "the hash member is not hexadecimal")
    raw = sha256(hashed_bytes(line, i)).digest()
    if raw.hex().encode() != member[:DIGEST_HEX]:
        raise Rejected("modified", "the entry's content does not match its hash")
    if entry_tag(key, raw) != member[DIGEST_HEX:]:
        raise Rejected(
            "forged", "the entry's tag is not the trail key's: landgate did not write it"
        )
    return raw


def parse_entry(line: bytes) -> dict[str, Any]:
    """JSON object of an authenticated line; Rejected('malformed') otherwise."""
    try:
        doc = json.loads(line)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise Rejected("malformed", f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise Rejected("malformed", "not a JSON object")
    return doc


def digest_of(line: bytes) -> str:
    """The digest hex of a line already authenticated."""
    i = line.find(HASH_KEY)
    return line[i + 8 : i + 8 + DIGEST_HEX].decode("ascii")
