"""The root rung's loopback-only namespace, made ahead of time for the next session.

The kernel's pernet set-up of a network namespace costs ~0.5-1.4 ms (measured in the
sandbox's init, on the launch's critical path: issue 19).  sandbox.run's sessions make
the next one's namespace when they close (make_spare_loopback, on a worker of
sandbox.threads); the next launch takes it (take_spare_loopback) and its init joins it
instead of making one.  At most one spare exists per process; it is handed to one
session alone; a forked child drops its copy.
"""

from __future__ import annotations

import os
import threading

from sandbox import threads
from sandbox._launch import ffi, lib


class _Spare:
    """At most one loopback-only namespace made ahead of time (see take_spare_loopback)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fd = -1
        self.making = False


_spare = _Spare()


def take_spare_loopback() -> int:
    """A network namespace with only `lo` (up), made ahead of time and never used, as an
    fd the caller now owns; -1 when none is ready.

    The root rung's loopback-only layer costs the kernel ~0.5-1.4 ms of pernet set-up per
    namespace (measured in the sandbox's init, on the launch's critical path: issue 19).
    A namespace made in the background after a session (make_spare_loopback) is as fresh
    as one made at launch: nothing was ever bound or run in it, and it is handed to one
    session alone (taken under the lock), which drops it at its end."""
    with _spare.lock:
        fd, _spare.fd = _spare.fd, -1
    return fd


def make_spare_loopback() -> None:
    """Start making the next spare namespace on a worker, unless one is held or being made;
    returns at once.  A spare that cannot be made is simply absent: the next session makes
    its own namespace as it would without spares."""
    with _spare.lock:
        if _spare.fd >= 0 or _spare.making:
            return
        _spare.making = True

    def make() -> None:
        fd = -1
        try:
            # In C on a thread of its own (csrc/launch.c), the GIL released throughout:
            # made while the next session's launch may already run, it takes nothing from
            # that launch's Python (made here in Python, with rtnetlink, it held the GIL
            # ~1 ms: measured slower back-to-back launches).
            fd = lib.lg_loopback_netns_new(ffi.NULL, 0)
        finally:
            with _spare.lock:
                _spare.making = False
                if fd >= 0 and _spare.fd < 0:
                    _spare.fd, fd = fd, -1
            if fd >= 0:
                os.close(fd)
        # fd < 0 (-errno): no spare, the next session makes its namespace itself.

    threads.run(make, "landgate-netns-spare")


def _forget_spare_after_fork() -> None:
    """A forked child must never hand the parent's spare to a session of its own (two
    sandboxes would share one namespace): it closes its copy of the fd and starts afresh."""
    fd = _spare.fd
    _spare.__init__()  # type: ignore[misc]  # no spare, no maker (its worker is the parent's)
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


os.register_at_fork(after_in_child=_forget_spare_after_fork)
