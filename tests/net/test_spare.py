"""sandbox.net.spare: the next session's loopback-only namespace, made ahead of time."""

from __future__ import annotations

import os

from conftest import require_root

from sandbox.net import spare

from .conftest import wait_for


def _made() -> int:
    """A spare made now (the inode of its namespace)."""
    assert wait_for(lambda: not spare._spare.making, timeout=10)
    spare.make_spare_loopback()
    assert wait_for(lambda: spare._spare.fd >= 0, timeout=10)
    return os.fstat(spare._spare.fd).st_ino


def test_a_spare_is_taken_once_and_is_not_landgates() -> None:
    require_root()
    ino = _made()
    assert ino != os.stat("/proc/self/ns/net").st_ino
    fd = spare.take_spare_loopback()
    try:
        assert os.fstat(fd).st_ino == ino
        assert spare.take_spare_loopback() == -1  # handed out once: never to a second session
    finally:
        os.close(fd)


def test_a_forked_child_drops_the_parents_spare() -> None:
    """Two sandboxes must never share a namespace: a child forked while this process holds
    a spare (e.g. a framework's worker process that calls sandbox.run itself) closes its
    copy and has none to hand out.  Fails without the at-fork hook (the child takes it)."""
    require_root()
    _made()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if spare.take_spare_loopback() == -1 and spare._spare.fd == -1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    fd = spare.take_spare_loopback()  # the parent still holds its own
    assert fd >= 0
    os.close(fd)
