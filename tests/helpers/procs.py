"""A process's children, read from /proc, for tests that check nothing is left behind."""

from __future__ import annotations

import os


def child_pids(pid: int | str = "self") -> set[int]:
    """`pid`'s children, zombies included (a zombie stays listed until reaped); empty once
    the process is gone.

    The kernel lists a child under the thread that forked it.  Helper threads come and go,
    and when one exits between the listing and the read its children move to another
    thread, maybe one already read: skipping the vanished thread could miss a child, so
    the whole read is taken again until no listed thread vanished under it."""
    while True:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            return set()  # the process itself is gone
        pids: set[int] = set()
        try:
            for tid in tids:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    pids.update(int(p) for p in fh.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
        return pids
