"""SHA-256, BLAKE2s, HMAC-SHA256, constant-time comparison and random tokens, from the
interpreter's built-in modules: no OpenSSL.

Why this module exists (issue 19, memory per session): `import hashlib`, `hmac` or
`secrets` loads OpenSSL's libcrypto into the process (+3.7 MB resident measured here,
and ~2 ms), for a SHA-256 the interpreter also has built in.  Every `landgate run`
hashes (the audit chain, the policy cache, the key file), so every session paid it.
The algorithms are the same: the built-in sha256 gives the same digests; HMAC is
RFC 2104 as `hmac.HMAC` computes it without OpenSSL (tests/policy/test_digest.py
checks both against hashlib/hmac and RFC 4231's vectors).  Where the built-in module
is missing (an interpreter built without it), hashlib's is used: slower to load, the
same digests.

A leaf module: it imports nothing from sandbox, so any layer may use it.
"""

from __future__ import annotations

import os
from _operator import _compare_digest  # what hmac.compare_digest is without OpenSSL

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:  # the same constructors, typed as hashlib types them
    from hashlib import blake2s, sha256
    from typing import Any
else:
    try:
        from _blake2 import blake2s  # what hashlib.blake2s is on every build
    except ImportError:  # pragma: no cover - an interpreter without the built-in blake2
        from hashlib import blake2s
    try:
        from _sha2 import sha256  # Python 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # Python 3.11
        except ImportError:  # pragma: no cover - built without the module: same digests
            from hashlib import sha256

__all__ = ["blake2s", "compare_digest", "hmac_sha256", "sha256", "token_bytes", "token_hex"]

_BLOCK = 64  # SHA-256's block size in bytes (RFC 2104's B)
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def compare_digest(a: Any, b: Any) -> bool:
    """Constant-time equality (hmac.compare_digest) of two bytes, or of two ASCII str:
    no early exit on the first differing byte, so a tag cannot be guessed a byte at a
    time from timings.  A TypeError for anything else, as hmac.compare_digest."""
    return bool(_compare_digest(a, b))


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104): H((K ^ opad) || H((K ^ ipad) || msg)), K padded to the
    block size (a longer key is hashed first), exactly as hmac.HMAC computes it."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = sha256(key.translate(_IPAD))
    inner.update(msg)
    outer = sha256(key.translate(_OPAD))
    outer.update(inner.digest())
    return bytes(outer.digest())


def token_bytes(n: int) -> bytes:
    """n random bytes from the kernel's CSPRNG (what secrets.token_bytes returns)."""
    return os.urandom(n)


def token_hex(n: int) -> str:
    """n random bytes as 2n hex digits (secrets.token_hex)."""
    return os.urandom(n).hex()
