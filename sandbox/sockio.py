"""Reading one request from a unix stream socket: the one bounded reader.

The session's hook channel (sandbox.session.report) and the resident hook server
(sandbox.integrations.hookserver) both read a request the same way: everything the
client sends until it shuts its side down, refused past a size limit.  Below every
layer (standard library only): the session layer may not import the integrations,
and the other direction would load sandbox.session into the resident server.
"""

from __future__ import annotations

import socket

CHUNK = 1 << 16


def recv_until_eof(conn: socket.socket, limit: int) -> bytes | None:
    """Everything the peer sends until it shuts its side down; None as soon as more than
    `limit` bytes have arrived (the rest is left unread: the caller answers and closes).

    The socket's timeout applies to each recv (TimeoutError from here); other OSErrors
    pass through too.  A peer that closes early has sent what it sent: the bytes so far."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
