"""Network namespace plumbing for the root rung: namespace, veth pair, addresses, routes.

Everything landgate creates is named after the owning process so that a run
killed with SIGKILL can be cleaned up by the next one (`cleanup_stale`):
  namespace   none by name: held by an fd (create_netns), gone with its last user
  veth        lg<pid>h<n> (host side), lg<pid>s<n> (sandbox side)
  nft table   inet landgate-<pid>-<n> (host namespace)
  run dir     /run/landgate/landgate-<pid>-<n>/ (resolv.conf, owner stamp)
A pid can be reused; the owner stamp records the process's start time too.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from sandbox import threads
from sandbox._probe import lib as _ns
from sandbox.errors import LaunchError

RUN_DIR = Path("/run/landgate")
NETNS_DIR = Path("/run/netns")
# Compiled where a stale run's leftovers are looked for (sandbox.net.cleanup), not at
# import: the loopback-only launch never matches them (0.2 ms of re.compile).
NAME_PATTERN = r"^landgate-(\d+)-(\d+)$"
VETH_PATTERN = r"^lg(\d+)[hs](\d+)$"
CLONE_NEWNET = _ns.LG_CLONE_NEWNET

# The per-session /30 (IPv4) and /64 (IPv6) come from these pools.  The
# addresses exist only on the session's own veth pair.  Override with
# LANDGATE_NET_POOL4 / LANDGATE_NET_POOL6 where they collide with a real network.
DEFAULT_POOL4 = "10.200.128.0/17"
DEFAULT_POOL6 = "fd6c:6761:7465::/48"  # ULA, "lgate"

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self, TypeVar

    # Annotations only: the loopback-only rung (most `landgate run`s) never opens rtnetlink
    # here, so the module (and sandbox.netlink) is not imported for it (issue 19).
    from sandbox.net.rtnl import Rtnl

    T = TypeVar("T")


class NetSetupError(LaunchError):
    """A network namespace step failed; names the step and the errno."""


class SessionNames:
    """The names of one session's objects (see the module docstring)."""

    # A plain class, not a dataclass: building one costs ~0.3-0.5 ms at import (exec of
    # generated methods), on every launch's network phase.
    __slots__ = ("n", "pid")

    def __init__(self, pid: int, n: int) -> None:
        self.pid = pid
        self.n = n

    def __repr__(self) -> str:
        return f"SessionNames(pid={self.pid}, n={self.n})"

    @property
    def netns(self) -> str:
        return f"landgate-{self.pid}-{self.n}"

    @property
    def host_if(self) -> str:
        return f"lg{self.pid}h{self.n}"  # <= 15 chars for pid < 10^7, n < 10^4

    @property
    def sandbox_if(self) -> str:
        return f"lg{self.pid}s{self.n}"

    @property
    def run_dir(self) -> Path:
        return RUN_DIR / self.netns


class Addressing:
    """The session's veth addresses: host end, sandbox end, prefix lengths."""

    # A plain class, not a dataclass: building one costs ~0.3-0.5 ms at import (exec of
    # generated methods), on every launch's network phase.
    __slots__ = ("host4", "host6", "prefix4", "prefix6", "sandbox4", "sandbox6")

    def __init__(
        self,
        host4: str,
        sandbox4: str,
        prefix4: int,
        host6: str | None,
        sandbox6: str | None,
        prefix6: int,
    ) -> None:
        self.host4, self.sandbox4, self.prefix4 = host4, sandbox4, prefix4
        self.host6, self.sandbox6, self.prefix6 = host6, sandbox6, prefix6


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if pid is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def owner_alive(pid: int, stamp: str | None) -> bool:
    start = process_start_time(pid)
    if start is None:
        return False
    return stamp is None or stamp == start


# setns/unshare/umount2 through sandbox._probe (csrc/probe.c), not ctypes: Python 3.11's os
# has none of them, and importing ctypes cost every launch with a network layer ~1-2 ms.


def _setns(fd: int, nstype: int) -> None:
    rc = _ns.lg_ns_setns(fd, nstype)
    if rc != 0:
        raise NetSetupError(f"setns: {os.strerror(-rc)}")


def _in_thread(fn: Callable[[], T]) -> T:
    """fn() on another thread (a reused worker, sandbox.threads), which fn may move into
    another network namespace: the worker goes back to the one it came from when fn
    ends, or is never reused (a later job must not run in the sandbox's namespace)."""
    return _begin_in_thread(fn)()


def _begin_in_thread(fn: Callable[[], T]) -> Callable[[], T]:
    """_in_thread, begun: returns at once; the returned function waits for fn() and
    returns its value (or raises what it raised).  Call it exactly once."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            box["error"] = NetSetupError(f"open /proc/thread-self/ns/net: {exc.strerror}")
            return
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001  handed back to the caller below
            box["error"] = exc
        finally:
            try:
                _setns(own, CLONE_NEWNET)
            except NetSetupError:
                threads.retire_current()
            os.close(own)

    job = threads.run(target, "landgate-netns")

    def result() -> T:
        job.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]

    return result


def in_netns(netns_fd: int, fn: Callable[[], T]) -> T:
    """Run fn in a fresh thread that has joined the network namespace `netns_fd`.

    setns(CLONE_NEWNET) changes only the calling thread, so a dedicated thread
    keeps landgate's other threads (and its nft context) in the host namespace.
    Sockets created by fn stay in the sandbox's namespace for their lifetime.
    """

    def joined() -> T:
        _setns(netns_fd, CLONE_NEWNET)
        return fn()

    return _in_thread(joined)


_ALLOCATING = threading.Lock()


class AllocationLock:
    """Address choice + creation is one critical section, between landgate processes
    (a POSIX record lock on /run/landgate/net.lock) and between the threads of one
    (a threading lock: record locks belong to the process).

    Not flock(2): a flock belongs to the open file description, and every process
    forked while it is held shares it.  A session's init is such a fork and lives
    as long as its session: three Sessions started together in one process hung
    for good, each waiting for a lock an init of another held.  A record lock is
    not inherited by fork(2)."""

    def __enter__(self) -> Self:
        _ALLOCATING.acquire()
        try:
            RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
            self._fd = os.open(RUN_DIR / "net.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(self._fd)
                raise
        except BaseException:
            _ALLOCATING.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            os.close(self._fd)  # releases the record lock (the only fd on it here)
        finally:
            _ALLOCATING.release()


def _used_networks(rt: Rtnl) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for fam, raw, prefix in rt.networks():
        try:
            addr = socket.inet_ntop(fam, raw)
            nets.append(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))
        except (OSError, ValueError):
            continue
    return nets


def _candidates(pool: str, prefix: int) -> Iterator[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    yield from ipaddress.ip_network(pool).subnets(new_prefix=prefix)


def allocate_addressing(rt: Rtnl, want_ipv6: bool) -> Addressing:
    """First free /30 (and matching /64) not overlapping any address or route on the host.

    Call under AllocationLock: two landgates choosing at once would collide.
    """
    pool4 = os.environ.get("LANDGATE_NET_POOL4", DEFAULT_POOL4)
    pool6 = os.environ.get("LANDGATE_NET_POOL6", DEFAULT_POOL6)
    used = _used_networks(rt)
    used4 = [n for n in used if n.version == 4]
    used6 = [n for n in used if n.version == 6]
    base6 = ipaddress.ip_network(pool6)
    n6 = 1 << (64 - base6.prefixlen) if base6.prefixlen <= 64 else 0
    for i, net in enumerate(_candidates(pool4, 30)):
        if any(net.overlaps(u) for u in used4):
            continue
        hosts = list(net.hosts())
        host6 = sandbox6 = None
        if want_ipv6 and i < n6:
            net6 = ipaddress.ip_network((int(base6.network_address) + (i << 64), 64))
            if not any(net6.overlaps(u) for u in used6):
                host6, sandbox6 = str(net6.network_address + 1), str(net6.network_address + 2)
        return Addressing(str(hosts[0]), str(hosts[1]), 30, host6, sandbox6, 64)
    raise NetSetupError(
        f"no free /30 left in {pool4} for the sandbox's veth (set LANDGATE_NET_POOL4)"
    )


def write_sysctl(path: str, value: str) -> None:
    try:
        Path("/proc/sys", path).write_text(value)
    except OSError as exc:
        raise NetSetupError(f"sysctl {path.replace('/', '.')}={value}: {exc.strerror}") from None


def default_route_devices(rt: Rtnl, family: int) -> list[str]:
    names: list[str] = []
    for oif in rt.default_route_oifs(family):
        try:
            name = socket.if_indextoname(oif)
        except OSError:
            continue
        if name not in names:
            names.append(name)
    return names


def create_netns(then: Callable[[int], T], new_devices: bool = True) -> tuple[int, T]:
    """A new network namespace, held only by the returned fd (O_CLOEXEC), and then(fd)'s value.

    unshare(CLONE_NEWNET) in a throw-away thread (a network namespace is per
    task, so landgate's other threads stay where they are), then
    /proc/thread-self/ns/net is opened.  No bind mount under /run/netns: the
    namespace, and the veth inside it, go away when the last reference does
    (this fd, the agent's processes, sockets made in it), also after SIGKILL,
    and the kernel tears them down asynchronously (cleanup_net), so nobody
    waits for the RCU grace periods a synchronous veth delete costs (~20 ms).
    `then(fd)` runs in the same thread, inside the new namespace: one thread
    for everything that must happen there.  new_devices=False: only `lo` will
    exist (the loopback-only layer), so the DAD default is left alone.
    """

    def make() -> tuple[int, T]:
        rc = _ns.lg_ns_unshare(CLONE_NEWNET)
        if rc != 0:
            raise NetSetupError(f"unshare(CLONE_NEWNET): {os.strerror(-rc)}")
        # New devices here skip IPv6 duplicate address detection (the veth is
        # point-to-point and its addresses are ours): no DAD delay before use.
        if new_devices:
            try:
                Path("/proc/sys/net/ipv6/conf/default/accept_dad").write_text("0")
            except OSError:
                pass  # no IPv6 in this kernel: nothing to detect
        fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return fd, then(fd)
        except BaseException:
            os.close(fd)
            raise

    return _in_thread(make)


def remove_netns(name: str) -> None:
    """Unmount and unlink /run/netns/NAME (a namespace bind-mounted by an older landgate)."""
    path = NETNS_DIR / name
    rc = _ns.lg_ns_umount_detach(os.fsencode(path))
    if rc != 0 and -rc not in (errno.EINVAL, errno.ENOENT):
        raise NetSetupError(f"umount {path}: {os.strerror(-rc)}")
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise NetSetupError(f"remove {path}: {exc.strerror}") from None
