"""The writer's native seal, append and Merkle subtrees (csrc/audit_seal.c), when the
process has already loaded sandbox._supervise (the supervisor's has).

Never imported from here: a session without the supervisor pays neither the extension's
load time nor its memory (issue 19), and gets the pure-Python path, which makes the same
bytes (tests/audit/test_seal_fast.py compares every line).  Python still renders each
entry (canonical.placeholder_line, with an empty placeholder); C fills in the hash
member (SHA-256 of the line without it, then the key's tag) and, for one decision,
appends the line under the trail's flock in the same call: batch append at ~100k+
entries/s (bench/bench_audit.py).
"""

from __future__ import annotations

import os
import sys

from sandbox.audit.canonical import HASH_HEX, placeholder_line
from sandbox.errors import AuditError

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_MOVED, _UNSEALED = 1, 2  # LG_AUDIT_MOVED, LG_AUDIT_UNSEALED (csrc/audit_seal_api.h)


class NativeSeal:
    """canonical.seal with `key`, and its one-call append.  Not thread-safe (one output
    buffer): one per Chain, whose methods run under the writer's lock."""

    __slots__ = ("_append", "_base", "_digest", "_member", "_out", "_seal")

    def __init__(self, mod: Any, key: bytes) -> None:
        ffi, lib = mod.ffi, mod.lib
        self._base = ffi.new("uint32_t[8]")
        if lib.lg_audit_tag_base(key, len(key), self._base) != 0:
            raise AuditError(f"an audit key of {len(key)} bytes (BLAKE2s takes 1 to 32)")
        self._out = ffi.new("struct lg_audit_sealed *")
        self._digest = ffi.buffer(self._out.digest)
        self._member = ffi.buffer(self._out.member)
        self._seal = lib.lg_audit_seal
        self._append = lib.lg_audit_seal_append

    def seal(self, entry: dict[str, Any]) -> tuple[bytes, str, bytes]:
        """canonical.seal(entry, key): (line + b'\\n', digest hex, raw digest)."""
        line = placeholder_line(entry, "")
        out = self._out
        if self._seal(line, len(line), self._base, out) != 0:
            raise AuditError("audit entry without its hash member (writer bug)")
        raw: bytes = self._digest[:]
        at = out.at
        return line[:at] + self._member[:] + line[at:] + b"\n", raw.hex(), raw

    def append(
        self, lock_fd: int, seg_fd: int, expect: int, entry: dict[str, Any]
    ) -> tuple[bytes, int] | None:
        """Seal `entry` and append its line to `seg_fd` under flock(lock_fd) if the segment
        is still `expect` bytes long: (raw digest, bytes written), or None when it is not
        (nothing written: the caller catches up and takes the Python path).  OSError as
        os.write's, with any fragment cut back off."""
        line = placeholder_line(entry, "")
        rc = self._append(lock_fd, seg_fd, expect, line, len(line), self._base, self._out)
        if rc == 0:
            return self._digest[:], len(line) + HASH_HEX + 1  # the member and b"\n" added
        if rc == _MOVED:
            return None
        if rc == _UNSEALED:
            raise AuditError("audit entry without its hash member (writer bug)")
        raise OSError(-rc, os.strerror(-rc))


def native_seal(key: bytes) -> NativeSeal | None:
    """The native seal for `key`, if the process has loaded sandbox._supervise."""
    mod = sys.modules.get("sandbox._supervise")
    if mod is None:
        return None
    return NativeSeal(mod, key)


def native_subtree() -> Callable[[bytes, int], bytes] | None:
    """The root of a complete Merkle subtree (merkle.Frontier's `subtree`): n leaves of
    32 bytes, n a power of two, joined; None without the extension loaded."""
    mod = sys.modules.get("sandbox._supervise")
    if mod is None:
        return None
    ffi, lib = mod.ffi, mod.lib
    subtree, from_buffer = lib.lg_audit_merkle_subtree, ffi.from_buffer

    def root(leaves: bytes, n: int) -> bytes:
        out = bytearray(32)  # per call: cffi releases the GIL, threads may hash at once
        if len(leaves) != 32 * n or subtree(leaves, n, from_buffer(out)) != 0:
            raise ValueError(f"not a complete Merkle subtree: {n} leaves")
        return bytes(out)

    return root
