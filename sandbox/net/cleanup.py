"""Leftovers of the egress layer: close every live session at exit, remove a killed run's
namespace, veth and run directory."""

from __future__ import annotations

import atexit
import os

from sandbox.errors import LaunchError
from sandbox.host.fsutil import remove_tree
from sandbox.net import netns as nsmod
from sandbox.net.netns import SessionNames

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    pass  # the unprivileged rung's helper; imported where it is started

if TYPE_CHECKING:
    from sandbox.net.session import NetworkSession


def _delete_link(name: str) -> None:
    from sandbox.net import rtnl

    with rtnl.Rtnl() as rt:
        rt.batch([rtnl.delete_link(name)])


# The sessions prepared and not yet closed, closed at exit if still here.  A plain set
# (close() takes a session out: _forget), not a WeakSet: weakref was an import of its own
# on every launch, and a session nobody closed is exactly one to close at exit.
_live: set[NetworkSession] = set()
_atexit_registered = False


def _register_cleanup(session: NetworkSession) -> None:
    global _atexit_registered  # noqa: PLW0603  one atexit hook per process
    _live.add(session)
    if not _atexit_registered:
        atexit.register(_close_all)
        _atexit_registered = True


def _forget(session: NetworkSession) -> None:
    _live.discard(session)


def _close_all() -> None:
    for s in list(_live):
        s.close()


def cleanup_stale() -> list[str]:
    """Remove namespaces, veths, nft tables and run dirs of landgate processes that are gone."""
    import re  # compiled here, not at import (re caches them for the next call)

    name_re, veth_re = re.compile(nsmod.NAME_PATTERN), re.compile(nsmod.VETH_PATTERN)
    removed: list[str] = []

    def stale(pid: int, n: int) -> bool:
        if pid == os.getpid():
            return False
        stamp = None
        try:
            parts = (nsmod.RUN_DIR / f"landgate-{pid}-{n}" / "owner").read_text().split()
            stamp = parts[1] if len(parts) > 1 else None
        except OSError:
            pass
        return not nsmod.owner_alive(pid, stamp)

    candidates: set[tuple[int, int]] = set()
    for d in (nsmod.NETNS_DIR, nsmod.RUN_DIR):
        if d.is_dir():
            for entry in d.iterdir():
                m = name_re.match(entry.name)
                if m:
                    candidates.add((int(m.group(1)), int(m.group(2))))
    tables: list[tuple[str, str]] = []
    listed = False
    try:
        from sandbox.host.nftables import delete_table, table_names

        tables = table_names()
        listed = True
    except LaunchError:
        pass
    for fam, name in tables:
        m = name_re.match(name)
        if m and fam == "inet":
            candidates.add((int(m.group(1)), int(m.group(2))))
    try:
        links = os.listdir("/sys/class/net")  # this (landgate's) network namespace's devices
    except OSError:
        links = []
    for link in links:
        m = veth_re.match(link)
        if m:
            candidates.add((int(m.group(1)), int(m.group(2))))

    for pid, n in sorted(candidates):
        if not stale(pid, n):
            continue
        names = SessionNames(pid, n)
        if listed and ("inet", names.netns) in tables:
            try:
                delete_table("inet", names.netns)
            except LaunchError:
                pass
        if names.host_if in links:
            try:
                _delete_link(names.host_if)
            except Exception:  # noqa: BLE001, S110  best effort: a stale link of a dead run
                pass
        try:
            nsmod.remove_netns(names.netns)
        except LaunchError:
            pass
        remove_tree(str(names.run_dir))
        removed.append(names.netns)
    return removed
