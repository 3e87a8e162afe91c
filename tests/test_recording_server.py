"""The world's loopback servers (tests/conftest.py) shut down in order: the accepting
thread is woken and joined before its socket is closed, so no thread meets a closed
descriptor (EBADF) or one reused by another file."""

from __future__ import annotations

import socket

import pytest
from conftest import RecordingServer


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_close_joins_the_accepting_thread(host: str) -> None:
    server = RecordingServer(host)
    with socket.create_connection((host, server.port), timeout=10) as c:
        assert c.recv(6) == b"hello\n"  # accepted and served
    server.close()
    assert not server._thread.is_alive()
    assert server.connections == 1
    assert server.sock.fileno() == -1


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_close_at_once_after_start() -> None:
    """Closed before its thread may even have reached accept (the old shutdown's race)."""
    for _ in range(50):
        server = RecordingServer()
        server.close()
        assert not server._thread.is_alive()


def test_a_failed_accept_is_reported_by_close() -> None:
    """A server that stopped accepting must not make "nothing reached it" pass: close()
    says so.  (Its listening socket shut down under it, not by close().)"""
    server = RecordingServer()
    server.sock.shutdown(socket.SHUT_RDWR)
    server._thread.join(timeout=30)
    assert isinstance(server.failure, OSError)
    with pytest.raises(RuntimeError, match="accept failed"):
        server.close()
