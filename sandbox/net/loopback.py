"""Allowed `localhost:PORT` destinations: the host's loopback, reached from the sandbox.

DESIGN §3: `localhost` means the host's loopback as the user sees it, and the
sandbox's own loopback stays private.  Kernel DNAT from the sandbox's 127.0.0.1
to the host needs route_localnet on both sides and rules inside the sandbox's
namespace (which a root agent could flush); a userspace forwarder needs
neither.  So: for each allowed host loopback port, landgate binds a listening
socket *inside* the sandbox's namespace on 127.0.0.1:PORT and [::1]:PORT,
created before the agent starts, and splices each accepted connection to the
same address and port on the host's loopback.

Consequences (documented in the README's network section):
  * only TCP is forwarded; UDP to the host's loopback is not reachable;
  * a sandbox server cannot bind a forwarded port (EADDRINUSE): the policy said
    that port means the host's service;
  * `localhost:*` forwards the ports the host is listening on at launch, and
    re-scans every RESCAN_SECONDS for new ones; a port the sandbox has bound
    first stays the sandbox's.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable

from sandbox import threads
from sandbox.net.netns import in_netns

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RESCAN_SECONDS = 2.0
BACKLOG = 4096  # capped by net.core.somaxconn
CHUNK = 256 * 1024
_LOOPBACKS = (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6))


def host_loopback_listeners() -> set[int]:
    """TCP ports in LISTEN on the loopback (or a wildcard address) of the caller's namespace."""
    from sandbox.net.rtnl import tcp_listeners

    ports: set[int] = set()
    for fam, addr, port in tcp_listeners():
        if fam == socket.AF_INET:
            loopback = addr[0] == 127 or addr == bytes(4)
        else:
            loopback = addr in (bytes(15) + b"\x01", bytes(16))
        if loopback:
            ports.add(port)
    return ports


class LoopbackForwarder:
    """One thread, one selector: every listener and every bridged connection.

    The previous design (a thread per accept, two per connection) fell behind
    a connect loop: the backlog (128) filled while the GIL-bound accept thread
    started threads, the kernel dropped SYNs, and clients waited out a 1 s
    retransmit (about 5 ms a connect averaged over 200).  Here an accept costs
    a non-blocking accept + connect, and the backlog is as large as somaxconn
    allows.  close() wakes the loop through a pipe and does not wait for it.
    """

    def __init__(
        self,
        netns_fd: int,
        allowed: Callable[[int], bool],
        fixed_ports: Iterable[int],
        any_port: bool,
        warn: Callable[[str], None],
        bind_in_netns: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        self._netns_fd = netns_fd
        self._bind_in_netns = bind_in_netns
        self._allowed = allowed
        self._fixed = sorted(set(fixed_ports))
        self._any_port = any_port
        self._warn = warn
        self._listeners: dict[tuple[str, int], socket.socket] = {}
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[tuple[str, int, socket.socket]] = []
        self._conns: set[_Bridge] = set()
        self._stop = False
        self._thread: threads.Job | None = None
        self._bound = False

    @property
    def ports(self) -> list[int]:
        with self._lock:
            return sorted({p for (_, p) in self._listeners})

    def set_netns(self, netns_fd: int) -> None:
        """The namespace later rescans bind in (when it was not known at construction)."""
        self._netns_fd = netns_fd

    def wanted(self) -> list[int]:
        """The host loopback ports to forward now (call in landgate's namespace)."""
        return self._wanted()

    def bind_here(self, ports: list[int]) -> None:
        """Bind the listeners from a thread already in the sandbox's namespace."""
        self._adopt(self._bind_all(ports))
        self._bound = True

    def bind_here_made(self, made: list[tuple[str, int, socket.socket]]) -> None:
        """Adopt listeners made in the sandbox's namespace by someone else (the helper)."""
        for _addr, _port, s in made:
            s.setblocking(False)
        self._adopt(made)
        self._bound = True

    def start(self) -> None:
        if not self._bound:
            self._adopt(self._bind(self._wanted()))
        with self._lock:
            idle = not self._listeners and not self._any_port
        if idle:
            # Nothing to forward, and no rescan could add a port (no `localhost:*`): a loop
            # would only wait for close().  close() tears down at once without a thread.
            return
        self._thread = threads.run(self._loop, "landgate-lo")  # a reused worker (sandbox.threads)

    def close(self) -> None:
        """Stop the loop; it closes every socket itself.  Never blocks on it."""
        with self._lock:
            if self._stop:
                return
            self._stop = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread is None:
            self._teardown()

    # ---- listeners -----------------------------------------------------------
    def _wanted(self) -> list[int]:
        ports = set(self._fixed)
        if self._any_port:
            ports |= host_loopback_listeners()
        with self._lock:
            have = {p for (_, p) in self._listeners}
        return sorted(p for p in ports if p not in have and self._allowed(p))

    @staticmethod
    def _bind_all(ports: list[int]) -> list[tuple[str, int, socket.socket]]:
        made = []
        for port in ports:
            for addr, fam in _LOOPBACKS:
                s = socket.socket(
                    fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((addr, port))
                    s.listen(BACKLOG)
                except OSError:
                    # Taken by the sandbox's own server (its loopback wins), or no ::1.
                    s.close()
                    continue
                made.append((addr, port, s))
        return made

    def _bind(self, ports: list[int]) -> list[tuple[str, int, socket.socket]]:
        if not ports:
            return []

        def bind_all() -> list[tuple[str, int, socket.socket]]:
            return self._bind_all(ports)

        if self._bind_in_netns is not None:
            made: list[tuple[str, int, socket.socket]] = self._bind_in_netns(bind_all)
            return made
        return in_netns(self._netns_fd, bind_all)

    def _adopt(self, made: list[tuple[str, int, socket.socket]]) -> None:
        for addr, port, s in made:
            with self._lock:
                self._listeners[(addr, port)] = s
            self._sel.register(s, selectors.EVENT_READ, (addr, port))

    # ---- the loop --------------------------------------------------------------
    def _loop(self) -> None:
        next_scan = time.monotonic() + RESCAN_SECONDS if self._any_port else None
        try:
            while not self._stop:
                timeout = None if next_scan is None else max(0.0, next_scan - time.monotonic())
                for key, events in self._sel.select(timeout):
                    data = key.data
                    if data is None:
                        continue  # the wake pipe: _stop is set
                    if isinstance(data, tuple):
                        self._accept(key.fileobj, *data)  # type: ignore[arg-type]
                    else:
                        data.ready(key.fileobj, events)
                if next_scan is not None and time.monotonic() >= next_scan and not self._stop:
                    try:
                        self._adopt(self._bind(self._wanted()))
                    except Exception as exc:  # noqa: BLE001 - a failed rescan keeps the old ports
                        self._warn(f"loopback forwarder: rescan: {exc}")
                    next_scan = time.monotonic() + RESCAN_SECONDS
        finally:
            self._teardown()

    def _teardown(self) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
            self._listeners.clear()
        for s in listeners:
            s.close()
        for c in list(self._conns):
            c.close()
        self._sel.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _accept(self, listener: socket.socket, addr: str, port: int) -> None:
        for _ in range(64):  # a burst, then let the other sockets have a turn
            try:
                inner, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            inner.setblocking(False)
            # Created in this (host-namespace) thread: connects to the host's loopback.
            outer = socket.socket(
                listener.family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            )
            rc = outer.connect_ex((addr, port))
            if rc not in (0, errno.EINPROGRESS):
                outer.close()
                _reset(inner)  # the host service is down: the sandbox sees a refused connection
                continue
            _Bridge(self, inner, outer, connected=rc == 0)


def _reset(s: socket.socket) -> None:
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


class _Bridge:
    """Two sockets, two directions; at most one pending chunk per direction."""

    __slots__ = ("buf", "closed", "connected", "eof", "fw", "inner", "mask", "outer", "shut")

    def __init__(
        self, fw: LoopbackForwarder, inner: socket.socket, outer: socket.socket, connected: bool
    ) -> None:
        self.fw = fw
        self.inner, self.outer = inner, outer
        self.connected = connected
        # Index 0: inner -> outer; 1: outer -> inner.
        self.buf = [b"", b""]
        self.eof = [False, False]
        self.shut = [False, False]
        self.mask = {inner: 0, outer: 0}
        self.closed = False
        fw._conns.add(self)
        self._update()

    def _src_dst(self, i: int) -> tuple[socket.socket, socket.socket]:
        return (self.inner, self.outer) if i == 0 else (self.outer, self.inner)

    def _update(self) -> None:
        if self.connected:
            for i in (0, 1):  # an end that closed before the other was connected
                if self.eof[i] and not self.buf[i] and not self.shut[i]:
                    self._flush(i)
        if self.shut[0] and self.shut[1]:
            self.close()
            return
        want = {self.inner: 0, self.outer: 0}
        if not self.connected:
            want[self.outer] |= selectors.EVENT_WRITE
        for i in (0, 1):
            src, dst = self._src_dst(i)
            if self.buf[i]:
                if self.connected:
                    want[dst] |= selectors.EVENT_WRITE
            elif not self.eof[i] and (self.connected or i == 0):
                want[src] |= selectors.EVENT_READ
        sel = self.fw._sel
        for s, ev in want.items():
            old = self.mask[s]
            if ev == old:
                continue
            if old == 0:
                sel.register(s, ev, self)
            elif ev == 0:
                sel.unregister(s)
            else:
                sel.modify(s, ev, self)
            self.mask[s] = ev

    def ready(self, s: socket.socket, events: int) -> None:
        if self.closed:
            return
        try:
            if not self.connected and s is self.outer:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.close(reset=True)
                    return
                self.connected = True
            if events & selectors.EVENT_WRITE:
                self._flush(0 if s is self.outer else 1)
            if events & selectors.EVENT_READ:
                self._read(0 if s is self.inner else 1)
        except OSError:
            self.close(reset=True)
            return
        if not self.closed:
            self._update()

    def _read(self, i: int) -> None:
        src, _ = self._src_dst(i)
        try:
            data = src.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            self.eof[i] = True
        else:
            self.buf[i] = data
        if self.connected:
            self._flush(i)

    def _flush(self, i: int) -> None:
        _, dst = self._src_dst(i)
        if self.buf[i]:
            try:
                n = dst.send(self.buf[i])
            except (BlockingIOError, InterruptedError):
                return
            self.buf[i] = self.buf[i][n:]
        if not self.buf[i] and self.eof[i] and not self.shut[i]:
            self.shut[i] = True
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.fw._conns.discard(self)
        for s in (self.inner, self.outer):
            if self.mask[s]:
                try:
                    self.fw._sel.unregister(s)
                except (KeyError, ValueError, OSError):
                    pass
            if reset:
                _reset(s)
            else:
                s.close()
