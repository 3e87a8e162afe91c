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


def test_a_session_closed_before_attach_waits_for_its_binding(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """prepare() takes the spare and begins binding the DNS view there; a session that
    fails before attach() is closed with the binding collected first: no socket is bound
    after close() closed the view, and no worker is left running."""
    require_root()
    from sandbox import threads
    from sandbox.net import NetworkSession
    from sandbox.policy import load_policy_text

    policy = load_policy_text(
        "version: 1\nactions:\n  - action: network\n    defaultEffect: deny\n",
        source="p.yaml",
        cwd=tmp_path,
    )
    ino = _made()
    ns = NetworkSession(policy, init_netns=True, spare_netns=True)
    try:
        setup = ns.prepare()
        assert setup.netns_fd >= 0 and not setup.init_netns  # the spare, for init to join
        assert os.fstat(setup.netns_fd).st_ino == ino
    finally:
        ns.close()
    assert ns._lo_bound is None
    assert ns._dns is not None and not ns._dns._socks  # every socket closed, none made after
    assert threads.wait_idle(5)
