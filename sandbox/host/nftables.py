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
import os
import socket
import struct
import threading
from collections.abc import Iterator
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
        self._closed = False
        self._ctx: int | None = self._new_ctx()

    def _new_ctx(self) -> int:
        ctx: int | None = self._lib.nft_ctx_new(0)
        if not ctx:
            raise NftError("libnftables: nft_ctx_new failed")
        self._lib.nft_ctx_output_set_flags(ctx, _NFT_CTX_OUTPUT_JSON)
        self._lib.nft_ctx_buffer_output(ctx)
        self._lib.nft_ctx_buffer_error(ctx)
        return ctx

    def run(self, batch: dict[str, Any] | str, forget: bool = False) -> dict[str, Any] | None:
        """Run one JSON batch (atomic in the kernel); raise NftError on failure.

        forget: drop the context afterwards (freed by a daemon thread; the next
        call makes a new one).  libnftables 1.0.6 fills a context's cache with
        every table in the namespace for an add or delete batch (~0.6 MB a table:
        its lookup hash tables) and keeps it for the context's life, so with N
        concurrent sessions every landgate process held N tables' worth.  Freed
        off the calling thread: closing its netlink socket may wait for an RCU
        grace period when some table was deleted shortly before (~10-15 ms)."""
        text = batch if isinstance(batch, str) else json.dumps(batch)
        with self._lock:
            if self._closed:
                raise NftError("libnftables: context closed")
            if self._ctx is None:
                self._ctx = self._new_ctx()
            ctx = self._ctx
            rc = self._lib.nft_run_cmd_from_buffer(ctx, text.encode())
            out = self._lib.nft_ctx_get_output_buffer(ctx) or b""
            err = self._lib.nft_ctx_get_error_buffer(ctx) or b""
            if forget:
                self._ctx = None
                threading.Thread(
                    target=self._lib.nft_ctx_free,
                    args=(ctx,),
                    name="landgate-nft-free",
                    daemon=True,
                ).start()
        if rc != 0:
            first = next((ln for ln in err.decode(errors="replace").splitlines() if ln.strip()), "")
            raise NftError(f"nft: {first or 'batch refused'} (rc {rc})")
        return json.loads(out) if out.strip() else None

    def list_tables(self) -> list[tuple[str, str]]:
        """(family, name) of every table in this network namespace.

        Fills this context's cache with the whole ruleset: landgate itself uses
        table_names() instead (tests and tools may call this)."""
        out = self.run({"nftables": [{"list": {"tables": {}}}]}) or {}
        return [
            (item["table"]["family"], item["table"]["name"])
            for item in out.get("nftables", [])
            if "table" in item
        ]

    def delete_table(self, family: str, name: str) -> None:
        """Delete one table: by netlink directly (delete_table below), not libnftables."""
        delete_table(family, name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None


# linux/netfilter/nfnetlink.h, nf_tables.h, netfilter.h (NFPROTO_*)
_NETLINK_NETFILTER = 12
_NFNL_SUBSYS_NFTABLES = 10
_NFT_MSG_NEWTABLE, _NFT_MSG_GETTABLE, _NFT_MSG_DELTABLE = 0, 1, 2
_NFNL_MSG_BATCH_BEGIN, _NFNL_MSG_BATCH_END = 0x10, 0x11
_NLM_F_ACK = 0x4
_NFTA_TABLE_NAME = 1
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
_FAMILY_NUMBERS = {v: k for k, v in _FAMILIES.items()}
_NLHDR = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")


_nfnl: socket.socket | None = None
_nfnl_lock = threading.Lock()
_nfnl_seq = 0


def table_names() -> list[tuple[str, str]]:
    """(family, name) of every nf_tables table in the caller's namespace: names only.

    One NFT_MSG_GETTABLE dump, not libnftables' `list tables`: libnftables
    1.0.6 fetches its whole cache for that (every table's chains and sets,
    ~0.6 MB a table) and keeps it in the context.  nfnetlink checks
    CAP_NET_ADMIN on every message, so this is also the capability probe.
    The socket is the process's one, never closed: releasing a netfilter
    netlink socket flushes nf_tables' destroy work first, an RCU grace period
    (~10-15 ms) whenever any table was deleted shortly before.
    """
    global _nfnl_seq  # noqa: PLW0603  the socket's sequence numbers
    with _nfnl_lock:
        sock = _socket()
        _nfnl_seq += 1
        try:
            return _dump_tables(sock, _nfnl_seq)
        except OSError as exc:
            raise NftError(f"nf_tables: list tables: {exc.strerror}") from None


def _socket() -> socket.socket:
    """The process's one netfilter netlink socket (call with _nfnl_lock held)."""
    global _nfnl  # noqa: PLW0603  made on first use, never closed (see table_names)
    if _nfnl is None:
        try:
            _nfnl = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_NETFILTER
            )
        except OSError as exc:
            raise NftError(f"nf_tables: netlink socket: {exc.strerror}") from None
    return _nfnl


def delete_table(family: str, name: str) -> None:
    """Delete one nf_tables table: a three-message batch (begin, DELTABLE, end).

    Not through libnftables: a delete makes it fetch every table's ruleset into
    its cache, and dropping that cache means closing its socket, which waits for
    nf_tables' destroy work (see table_names) - right after a deletion, always."""
    global _nfnl_seq  # noqa: PLW0603  the socket's sequence numbers
    fam = _FAMILY_NUMBERS.get(family)
    if fam is None:
        raise NftError(f"nf_tables: delete table {family} {name}: unknown family")
    raw = name.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(raw), _NFTA_TABLE_NAME) + raw + b"\0" * (-len(raw) % 4)
    batch_hdr = _NFGEN.pack(socket.AF_UNSPEC, 0, socket.htons(_NFNL_SUBSYS_NFTABLES))
    with _nfnl_lock:
        sock = _socket()
        _nfnl_seq += 3
        seq = _nfnl_seq
        msgs = (
            _NLHDR.pack(_NLHDR.size + len(batch_hdr), _NFNL_MSG_BATCH_BEGIN, 1, seq - 2, 0)
            + batch_hdr
        )
        body = _NFGEN.pack(fam, 0, 0) + attr
        kind = (_NFNL_SUBSYS_NFTABLES << 8) | _NFT_MSG_DELTABLE
        msgs += _NLHDR.pack(_NLHDR.size + len(body), kind, 1 | _NLM_F_ACK, seq - 1, 0) + body
        msgs += (
            _NLHDR.pack(_NLHDR.size + len(batch_hdr), _NFNL_MSG_BATCH_END, 1, seq, 0) + batch_hdr
        )
        try:
            sock.send(msgs)
            for mkind, mseq, payload in _replies(sock):
                if mkind == _NLMSG_ERROR and mseq in (seq - 2, seq - 1, seq):
                    (err,) = struct.unpack_from("=i", payload)
                    if err:
                        raise NftError(
                            f"nf_tables: delete table {family} {name}: {os.strerror(-err)}"
                        )
                    if mseq == seq - 1:
                        return  # the DELTABLE's acknowledgement: committed
        except OSError as exc:
            raise NftError(f"nf_tables: delete table {family} {name}: {exc.strerror}") from None


def _dump_tables(sock: socket.socket, seq: int) -> list[tuple[str, str]]:
    kind = (_NFNL_SUBSYS_NFTABLES << 8) | _NFT_MSG_GETTABLE
    body = _NFGEN.pack(0, 0, 0)  # NFPROTO_UNSPEC: every family
    flags = _NLM_F_REQUEST | _NLM_F_DUMP
    sock.send(_NLHDR.pack(_NLHDR.size + len(body), kind, flags, seq, 0) + body)
    out: list[tuple[str, str]] = []
    for mkind, mseq, payload in _replies(sock):
        if mseq != seq:
            continue  # the tail of an earlier, abandoned dump
        if mkind == _NLMSG_DONE:
            return out
        if mkind == _NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", payload)
            raise NftError(f"nf_tables: list tables: {os.strerror(-err)}")
        if mkind != (_NFNL_SUBSYS_NFTABLES << 8) | _NFT_MSG_NEWTABLE:
            continue
        family = _FAMILIES.get(payload[0], str(payload[0]))
        name = _attr(payload[_NFGEN.size :], _NFTA_TABLE_NAME)
        if name is not None:
            out.append((family, name.rstrip(b"\0").decode(errors="replace")))
    raise AssertionError("_replies ended")  # it reads until the caller returns


def _replies(sock: socket.socket) -> Iterator[tuple[int, int, bytes]]:
    """(type, sequence number, payload) of every message the socket receives, datagram
    after datagram, for as long as the caller reads (it stops at the reply it waits for).
    A malformed header ends its datagram (the kernel never sends one)."""
    while True:
        data = sock.recv(1 << 16)
        off = 0
        while off + _NLHDR.size <= len(data):
            length, mkind, _flags, mseq, _pid = _NLHDR.unpack_from(data, off)
            if length < _NLHDR.size:
                break
            yield mkind, mseq, data[off + _NLHDR.size : off + length]
            off += (length + 3) & ~3


def _attr(data: bytes, want: int) -> bytes | None:
    off = 0
    while off + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, off)
        if length < 4:
            return None
        if kind & 0x3FFF == want:
            return data[off + 4 : off + length]
        off += (length + 3) & ~3
    return None


# With this many tables in the namespace a context's cache would hold > 2 MB: contexts that
# ran a batch are then dropped (Nft.run forget).  Below it the one shared context keeps its
# small cache, and no socket is closed: a closed socket waits for nf_tables' destroy work
# when any table was deleted within the last RCU grace period (~6 ms a session measured
# in a prepare/close loop), and holds the commit mutex meanwhile.
FORGET_AT_TABLES = 4


def many_tables() -> bool:
    """Whether libnftables' cache of this namespace is worth dropping after each batch."""
    return len(table_names()) >= FORGET_AT_TABLES


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
