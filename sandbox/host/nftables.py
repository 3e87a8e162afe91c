"""nf_tables from landgate itself: batches over netlink (nftnl.py), table names, deletes.

The run path never loads libnftables: version 1.0.6 fetches every table of the
namespace into its cache for any add batch (~0.5 MB a table; with 100 concurrent
sessions ~50 MB a process, which glibc kept).  `Nft`, the ctypes binding to Debian's
libnftables1, stays for tests and tools (the reference the netlink path is checked
against) and for the unprivileged rung's helper's twin (sandbox/net/nshelper.py).

The netlink socket belongs to the network namespace of the thread that opens it:
landgate's rules live in its own namespace, so every call here is made from an
ordinary (non-setns) thread.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import struct
import threading
from typing import Any

from sandbox.host.nftnl import NftError, translate
from sandbox.netlink import (
    NETLINK_CAP_ACK,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    SOL_NETLINK,
    attrs,
    error_code,
    message,
    queued,
    replies,
    strz,
)

__all__ = ["Nft", "NftError", "NftNetlink", "delete_table", "load", "table_names"]

_NFT_CTX_OUTPUT_JSON = 1 << 4  # libnftables.h: NFT_CTX_OUTPUT_JSON


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
    """One libnftables context (not thread-safe: calls are serialised by a lock).

    Not on landgate's run path (see the module docstring): tests and tools only."""

    def __init__(self) -> None:
        self._lib = _load()
        self._lock = threading.Lock()
        ctx: int | None = self._lib.nft_ctx_new(0)
        if not ctx:
            raise NftError("libnftables: nft_ctx_new failed")
        self._lib.nft_ctx_output_set_flags(ctx, _NFT_CTX_OUTPUT_JSON)
        self._lib.nft_ctx_buffer_output(ctx)
        self._lib.nft_ctx_buffer_error(ctx)
        self._ctx: int | None = ctx

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

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None


# linux/netfilter/nfnetlink.h, nf_tables.h, netfilter.h (NFPROTO_*)
_NETLINK_NETFILTER = 12
_NFNL_SUBSYS_NFTABLES = 10
_NFT_MSG_NEWTABLE, _NFT_MSG_GETTABLE, _NFT_MSG_DELTABLE = 0, 1, 2
_NFNL_MSG_BATCH_BEGIN, _NFNL_MSG_BATCH_END = 0x10, 0x11
_NFTA_TABLE_NAME = 1
_FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
_FAMILY_NUMBERS = {v: k for k, v in _FAMILIES.items()}
_NFGEN = struct.Struct("=BBH")


_nfnl: socket.socket | None = None
_nfnl_lock = threading.Lock()
_nfnl_seq = 0


def table_names() -> list[tuple[str, str]]:
    """(family, name) of every nf_tables table in the caller's namespace: names only.

    One NFT_MSG_GETTABLE dump.  nfnetlink checks CAP_NET_ADMIN on every message, so
    this is also the capability probe.  The socket is the process's one, never
    closed: releasing a netfilter netlink socket flushes nf_tables' destroy work
    first, an RCU grace period (~10-15 ms) whenever any table was deleted shortly
    before.
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
            sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_NETFILTER
            )
            # An acknowledgement is then a header, not a copy of the (rule-sized) request:
            # a batch's acks all wait in the receive buffer until the batch is done.
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        except OSError as exc:
            raise NftError(f"nf_tables: netlink socket: {exc.strerror}") from None
        _nfnl = sock
    return _nfnl


def load(batch: dict[str, Any]) -> None:
    """Apply one JSON batch (sandbox/plan/nft.py) as one nf_tables transaction.

    Translated to netlink by nftnl.py; every message is acknowledged or the whole
    batch is refused (NftError naming the table and the first refused message)."""
    msgs, tables = translate(batch)
    _transact([(k, f, _NFGEN.pack(1, 0, 0) + b, w) for k, f, b, w in msgs.messages], tables)


class NftNetlink:
    """What a session keeps as its nftables handle (the DNS view's set updates, the
    table's deletion at close): this module's netlink path, nothing loaded."""

    @staticmethod
    def run(batch: dict[str, Any]) -> None:
        load(batch)

    @staticmethod
    def delete_table(family: str, name: str) -> None:
        delete_table(family, name)


def delete_table(family: str, name: str) -> None:
    """Delete one nf_tables table: a one-message transaction (DELTABLE)."""
    fam = _FAMILY_NUMBERS.get(family)
    if fam is None:
        raise NftError(f"nf_tables: delete table {family} {name}: unknown family")
    kind = (_NFNL_SUBSYS_NFTABLES << 8) | _NFT_MSG_DELTABLE
    body = _NFGEN.pack(fam, 0, 0) + strz(_NFTA_TABLE_NAME, name)
    _transact([(kind, 0, body, "delete table")], f"{family} {name}")


def _transact(messages: list[tuple[int, int, bytes, str]], tables: str) -> None:
    """Send BATCH_BEGIN, `messages` (each with NLM_F_ACK), BATCH_END; check every reply.

    nfnetlink handles the whole batch inside send(): when it returns, every reply is
    already queued on the socket, so they are read without blocking.  A message that
    was neither acknowledged nor refused is a failure too (never assumed applied)."""
    global _nfnl_seq  # noqa: PLW0603  the socket's sequence numbers
    batch_hdr = _NFGEN.pack(socket.AF_UNSPEC, 0, socket.htons(_NFNL_SUBSYS_NFTABLES))
    with _nfnl_lock:
        sock = _socket()
        begin = _nfnl_seq + 1
        end = begin + len(messages) + 1
        _nfnl_seq = end
        parts = [message(_NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, begin, batch_hdr)]
        for i, (kind, flags, body, _what) in enumerate(messages):
            parts.append(message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, begin + 1 + i, body))
        parts.append(message(_NFNL_MSG_BATCH_END, NLM_F_REQUEST, end, batch_hdr))
        buf = b"".join(parts)  # not `+=` per message: quadratic in a large policy's batch
        acked: set[int] = set()
        refused: dict[int, int] = {}
        try:
            _fit_buffers(sock, len(buf), len(messages))
            sock.send(buf)
            for mkind, mseq, payload in queued(sock):
                if mkind != NLMSG_ERROR or not begin <= mseq <= end:
                    continue  # the tail of an earlier, abandoned dump
                err = error_code(payload)
                if err:
                    refused.setdefault(mseq, -err)
                else:
                    acked.add(mseq)
        except OSError as exc:
            raise NftError(f"nf_tables: table {tables}: {exc.strerror}") from None
    if refused:
        seq = min(refused)
        what = messages[seq - begin - 1][3] if begin < seq < end else "commit"
        raise NftError(f"nf_tables: table {tables}: {what}: {os.strerror(refused[seq])}")
    missing = len(messages) - len(acked & set(range(begin + 1, end)))
    if missing:
        raise NftError(
            f"nf_tables: table {tables}: {missing} of {len(messages)} messages not acknowledged"
        )


# asm-generic/socket.h: set a buffer size above net.core.[rw]mem_max (CAP_NET_ADMIN)
_SO_SNDBUFFORCE, _SO_RCVBUFFORCE = 32, 33
_ACK_SPACE = 2048  # what one queued acknowledgement costs the receive buffer, generously


def _fit_buffers(sock: socket.socket, size: int, acks: int) -> None:
    """Make the socket's buffers hold one batch (a datagram: send fails with EMSGSIZE when
    it exceeds the send buffer) and all of its acknowledgements (queued until the batch
    is done: past the receive buffer they are dropped, and recv fails with ENOBUFS).

    The defaults (net.core.[rw]mem_default, 208 KiB here) fit a policy of ~100 literal
    rules.  The root rung holds CAP_NET_ADMIN, which lets the FORCE options exceed
    [rw]mem_max; without it the plain option is capped there, and a batch too large for
    it is refused whole (never partly applied)."""
    for force, plain, want in (
        (_SO_SNDBUFFORCE, socket.SO_SNDBUF, size + 4096),
        (_SO_RCVBUFFORCE, socket.SO_RCVBUF, acks * _ACK_SPACE + 65536),
    ):
        # The kernel doubles the value set and reports the doubled size.
        if sock.getsockopt(socket.SOL_SOCKET, plain) >= 2 * want:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, want)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, plain, want)


def _dump_tables(sock: socket.socket, seq: int) -> list[tuple[str, str]]:
    kind = (_NFNL_SUBSYS_NFTABLES << 8) | _NFT_MSG_GETTABLE
    body = _NFGEN.pack(0, 0, 0)  # NFPROTO_UNSPEC: every family
    sock.send(message(kind, NLM_F_REQUEST | NLM_F_DUMP, seq, body))
    out: list[tuple[str, str]] = []
    for mkind, mseq, payload in replies(sock):
        if mseq != seq:
            continue  # the tail of an earlier, abandoned dump
        if mkind == NLMSG_DONE:
            return out
        if mkind == NLMSG_ERROR:
            raise NftError(f"nf_tables: list tables: {os.strerror(-error_code(payload))}")
        if mkind != (_NFNL_SUBSYS_NFTABLES << 8) | _NFT_MSG_NEWTABLE:
            continue
        family = _FAMILIES.get(payload[0], str(payload[0]))
        name = attrs(payload, _NFGEN.size).get(_NFTA_TABLE_NAME)
        if name is not None:
            out.append((family, name.rstrip(b"\0").decode(errors="replace")))
    raise AssertionError("replies ended")  # it reads until the caller returns
