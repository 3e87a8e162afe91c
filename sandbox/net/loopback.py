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

import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from sandbox.net.netns import in_netns

RESCAN_SECONDS = 2.0
_LOOPBACKS = (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6))


def host_loopback_listeners() -> set[int]:
    """TCP ports in LISTEN on the host's loopback (or a wildcard address), from /proc/net.

    /proc/net/tcp prints addresses as little-endian hex: 127.x.y.z ends in "7F".
    """
    ports: set[int] = set()
    for path, version in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        try:
            lines = Path(path).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != "0A":  # 0A = TCP_LISTEN
                continue
            addr, port_hex = fields[1].split(":")
            if version == 4:
                loopback = addr.endswith("7F") or addr == "0" * 8
            else:
                loopback = addr in ("0" * 24 + "01000000", "0" * 32)
            if loopback:
                ports.add(int(port_hex, 16))
    return ports


class LoopbackForwarder:
    def __init__(self, netns_fd: int, allowed: Callable[[int], bool], fixed_ports: Iterable[int],
                 any_port: bool, warn: Callable[[str], None]) -> None:
        self._netns_fd = netns_fd
        self._allowed = allowed
        self._fixed = sorted(set(fixed_ports))
        self._any_port = any_port
        self._warn = warn
        self._listeners: dict[tuple[str, int], socket.socket] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def ports(self) -> list[int]:
        with self._lock:
            return sorted({p for (_, p) in self._listeners})

    def start(self) -> None:
        self._open(self._wanted())
        if self._any_port:
            t = threading.Thread(target=self._rescan, name="landgate-lo-scan", daemon=True)
            t.start()
            self._threads.append(t)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            socks = list(self._listeners.values())
            self._listeners.clear()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _wanted(self) -> list[int]:
        ports = set(self._fixed)
        if self._any_port:
            ports |= host_loopback_listeners()
        return sorted(p for p in ports if self._allowed(p))

    def _rescan(self) -> None:
        while not self._stop.wait(RESCAN_SECONDS):
            self._open(self._wanted())

    def _open(self, ports: list[int]) -> None:
        with self._lock:
            todo = [(a, f, p) for p in ports for (a, f) in _LOOPBACKS if (a, p) not in self._listeners]
        if not todo or self._stop.is_set():
            return

        def bind_all() -> list[tuple[str, int, socket.socket]]:
            made = []
            for addr, fam, port in todo:
                s = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((addr, port))
                    s.listen(128)
                except OSError:
                    # Taken by the sandbox's own server (its loopback wins), or no ::1.
                    s.close()
                    continue
                made.append((addr, port, s))
            return made

        for addr, port, s in in_netns(self._netns_fd, bind_all):
            with self._lock:
                self._listeners[(addr, port)] = s
            t = threading.Thread(target=self._accept, args=(s, addr, port),
                                 name=f"landgate-lo-{port}", daemon=True)
            t.start()
            self._threads.append(t)

    def _accept(self, listener: socket.socket, addr: str, port: int) -> None:
        while not self._stop.is_set():
            try:
                inner, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._bridge, args=(inner, addr, port), daemon=True).start()

    def _bridge(self, inner: socket.socket, addr: str, port: int) -> None:
        # Created in this (host-namespace) thread: connects to the host's loopback.
        try:
            outer = socket.create_connection((addr, port), timeout=5)
        except OSError:
            inner.close()  # the host service is down: the sandbox sees a closed connection
            return
        outer.settimeout(None)
        t = threading.Thread(target=_pump, args=(outer, inner), daemon=True)
        t.start()
        _pump(inner, outer)
        t.join()
        inner.close()
        outer.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
