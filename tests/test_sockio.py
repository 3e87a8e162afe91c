"""sandbox.sockio.recv_until_eof: the bounded request reader of the session's hook
channel and the resident hook server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from sandbox import sockio
from sandbox.integrations import hookserver
from sandbox.session import report


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.settimeout(10.0)  # a reader that waits for more than it should fails, never hangs
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _send_in_pieces(peer: socket.socket, pieces: list[bytes]) -> None:
    """With a pause after each piece, so the reader meets them in separate recvs (the
    result does not depend on it)."""
    for piece in pieces:
        peer.sendall(piece)
        time.sleep(0.05)
    peer.shutdown(socket.SHUT_WR)


def test_pieces_are_joined_until_the_peer_shuts_down(pair) -> None:
    conn, peer = pair
    pieces = [b"a" * 10, b"b" * (sockio.CHUNK + 5), b"", b"c"]
    writer = threading.Thread(target=_send_in_pieces, args=(peer, pieces))
    writer.start()
    try:
        assert sockio.recv_until_eof(conn, 1 << 20) == b"".join(pieces)
    finally:
        writer.join()


def test_exactly_the_limit_is_read(pair) -> None:
    """The allowed twin of the next test: `limit` bytes are a request."""
    conn, peer = pair
    peer.sendall(b"x" * 100)
    peer.shutdown(socket.SHUT_WR)
    assert sockio.recv_until_eof(conn, 100) == b"x" * 100


def test_over_the_limit_is_refused_without_waiting_for_the_rest(pair) -> None:
    """One byte past the limit: None at once, although the peer has not shut down (a
    reader that went on to the end would wait here until its timeout)."""
    conn, peer = pair
    conn.settimeout(None)
    peer.sendall(b"x" * 101)
    done: list[bytes | None] = []
    reader = threading.Thread(target=lambda: done.append(sockio.recv_until_eof(conn, 100)))
    reader.start()
    reader.join(30)
    alive = reader.is_alive()
    peer.shutdown(socket.SHUT_WR)  # unblocks a reader that did wait
    reader.join()
    assert not alive and done == [None]


def test_a_peer_that_closes_early_has_sent_what_it_sent(pair) -> None:
    conn, peer = pair
    peer.sendall(b'{"half": ')
    peer.close()
    assert sockio.recv_until_eof(conn, 100) == b'{"half": '


def test_nothing_sent_is_empty(pair) -> None:
    conn, peer = pair
    peer.shutdown(socket.SHUT_WR)
    assert sockio.recv_until_eof(conn, 100) == b""


def test_a_peer_that_neither_sends_nor_shuts_down_times_out(pair) -> None:
    conn, _peer = pair
    conn.settimeout(0.05)
    with pytest.raises(TimeoutError):
        sockio.recv_until_eof(conn, 100)


def test_both_readers_are_this_one() -> None:
    """The session's hook channel and the resident server read requests with it."""
    assert report.recv_until_eof is sockio.recv_until_eof
    assert hookserver.recv_until_eof is sockio.recv_until_eof
