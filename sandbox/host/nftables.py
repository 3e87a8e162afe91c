"""A minimal ctypes binding to Debian's libnftables (libnftables1), JSON in and out.

In-process rather than `nft -j -f -`: the DNS view adds set elements before it
releases each answer, and a subprocess per answer would cost milliseconds on
every lookup.  One context per `Nft`, guarded by a lock (libnftables contexts
are not thread-safe).  The netlink socket belongs to the network namespace of
the thread that opens it: landgate's rules live in its own namespace, so every
call here is made from an ordinary (non-setns) thread.
"""

from __future__ import annotations

import ctypes
import json
import threading
from typing import Any

from sandbox.errors import LaunchError

_NFT_CTX_OUTPUT_JSON = 1 << 4  # libnftables.h: NFT_CTX_OUTPUT_JSON


class NftError(LaunchError):
    """libnftables refused a batch; the message is nft's first error line."""


def _load() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libnftables.so.1", use_errno=True)
    except OSError as exc:
        raise NftError(
            f"libnftables: cannot load libnftables.so.1 ({exc}); install Debian's libnftables1"
        ) from None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    return lib


class Nft:
    def __init__(self) -> None:
        self._lib = _load()
        self._lock = threading.Lock()
        ctx = self._lib.nft_ctx_new(0)
        if not ctx:
            raise NftError("libnftables: nft_ctx_new failed")
        self._ctx: int | None = ctx
        self._lib.nft_ctx_output_set_flags(ctx, _NFT_CTX_OUTPUT_JSON)
        self._lib.nft_ctx_buffer_output(ctx)
        self._lib.nft_ctx_buffer_error(ctx)

    def run(self, batch: dict[str, Any] | str) -> dict[str, Any] | None:
        """Run one JSON batch (atomic in the kernel); raise NftError on failure."""
        text = batch if isinstance(batch, str) else json.dumps(batch)
        with self._lock:
            if self._ctx is None:
                raise NftError("libnftables: context closed")
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, text.encode())
            out = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""
            err = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
        if rc != 0:
            first = next((ln for ln in err.decode(errors="replace").splitlines() if ln.strip()), "")
            raise NftError(f"nft: {first or 'batch refused'} (rc {rc})")
        return json.loads(out) if out.strip() else None

    def list_tables(self) -> list[tuple[str, str]]:
        """(family, name) of every table in this network namespace."""
        out = self.run({"nftables": [{"list": {"tables": {}}}]}) or {}
        return [
            (item["table"]["family"], item["table"]["name"])
            for item in out.get("nftables", [])
            if "table" in item
        ]

    def delete_table(self, family: str, name: str) -> None:
        self.run({"nftables": [{"delete": {"table": {"family": family, "name": name}}}]})

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None


_shared: Nft | None = None
_shared_lock = threading.Lock()


def shared_nft() -> Nft:
    """The process's one libnftables context, never freed.

    Freeing a context closes its netlink socket; when a table was deleted
    shortly before, the kernel's NETLINK_URELEASE handler first flushes
    nf_tables' destroy work, which waits for an RCU grace period (~10-15 ms
    measured on 6.18).  One context for every session of the process pays
    that at most once, at exit.  Calls are serialised by Nft's own lock.
    """
    global _shared  # noqa: PLW0603  the one process-wide context, made on first use
    with _shared_lock:
        if _shared is None:
            _shared = Nft()
        return _shared
