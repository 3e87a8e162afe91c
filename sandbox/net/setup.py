"""What the egress layer hands the launcher (NetSetup), and the state its rungs share."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

from sandbox.audit.event import DecisionEvent
from sandbox.host.network import (
    NetRung,
)
from sandbox.net.dnsview import DnsView, Upstream
from sandbox.net.netns import Addressing, SessionNames
from sandbox.plan.names import NameVerdict
from sandbox.policy.model import Policy

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess  # the unprivileged rung's helper; imported where it is started
    from typing import Any


class NetSetup:
    """What the launcher needs: setns into netns_fd first in the child; bind-mount `binds`.

    A plain class, not a dataclass: building a dataclass costs ~0.5 ms at import
    (exec of its generated methods), on every launch's network phase."""

    __slots__ = (
        "addressing",
        "binds",
        "dns_view",
        "forwarded_loopback_ports",
        "init_netns",
        "layer",
        "netns_fd",
        "netns_path",
        "new_netns",
        "pinned",
        "ruleset_json",
        "rung",
        "warnings",
    )

    def __init__(
        self,
        netns_fd: int,
        binds: list[tuple[str, str]],
        rung: NetRung,
        warnings: list[str],
        ruleset_json: dict[str, Any],
        netns_path: str | None = None,
        addressing: Addressing | None = None,
        dns_view: str | None = None,
        forwarded_loopback_ports: list[int] | None = None,
        pinned: dict[str, list[str]] | None = None,
        new_netns: bool = False,
        layer: str = "network namespace + veth + nftables + DNS view",
        init_netns: bool = False,
    ) -> None:
        self.netns_fd = netns_fd
        self.binds = binds
        self.rung = rung
        self.warnings = warnings
        self.ruleset_json = ruleset_json
        self.netns_path = netns_path
        self.addressing = addressing
        self.dns_view = dns_view
        self.forwarded_loopback_ports = list(forwarded_loopback_ports or [])
        self.pinned = dict(pinned or {})
        # The unprivileged rung: the launcher creates the namespace itself (LG_NS_NET,
        # inside the sandbox's user namespace); attach(pid) configures it.
        self.new_netns = new_netns
        # The root rung's loopback-only layer: the sandbox's init unshares the namespace
        # itself (LG_NS_NET_INIT); attach(pid, netns_pidfd) binds the DNS view there.
        self.init_netns = init_netns
        # Which egress layer this is, for the trail and `landgate plan` (never silent).
        self.layer = layer

    def to_dict(self) -> dict[str, Any]:
        return {
            "rung": self.rung,
            "layer": self.layer,
            "netns": self.netns_path,
            "dns_view": self.dns_view,
            "warnings": list(self.warnings),
            "forwarded_loopback_ports": self.forwarded_loopback_ports,
            "pinned": self.pinned,
        }


class _SetFeeder:
    """Adds answered addresses to the nft sets; never shortens an element's life."""

    def __init__(self, nft: Any, table: str) -> None:
        self._nft = nft  # NftNetlink (root rung) or the unprivileged rung's helper
        self._table = table
        self._expiry: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __call__(self, addrs: Sequence[str], verdict: NameVerdict, timeout: int) -> None:
        from sandbox.plan.nft import add_elements_batch, set_elements

        now = time.monotonic()
        want = now + timeout
        batch: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            for ip in addrs:
                elems = set_elements(
                    ip,
                    verdict.any_port,
                    sorted(verdict.allow_ports),
                    sorted(verdict.deny_ports),
                    timeout,
                )
                for set_name, items in elems.items():
                    for item in items:
                        key = (set_name, repr(item["elem"]["val"]))
                        if self._expiry.get(key, 0.0) >= want - 1:
                            continue
                        batch.setdefault(set_name, []).append(item)
                        self._expiry[key] = want
            if batch:
                # Re-adding an existing element updates its timeout on 6.x kernels.
                self._nft.run(add_elements_batch(self._table, batch))


def _loopback_ports(policy: Policy) -> tuple[list[int], bool]:
    """Host loopback ports the policy may allow: explicit ones, and whether any port may be."""
    ports: set[int] = set()
    any_port = False
    for rule in policy.block("network").rules:
        dest = rule.destination
        if rule.effect != "allow" or dest is None:
            continue
        loop = (
            dest.kind == "localhost"
            or (
                dest.kind in ("ip", "cidr")
                and dest.network is not None
                and dest.network.is_loopback
            )
            or dest.kind == "any"
        )
        if not loop:
            continue
        if dest.port is None:
            any_port = True
        else:
            ports.add(dest.port)
    if policy.block("network").default_effect == "allow":
        any_port = True
    return sorted(ports), any_port


class _NetState:
    """The attributes NetworkSession's rungs share (declared for the type checker)."""

    policy: Policy
    names: SessionNames
    setup: NetSetup | None
    timings: dict[str, float]
    child_pid: int | None
    _on_event: Callable[[DecisionEvent], None]
    _names_sink: Callable[[str, tuple[str, ...]], None]
    _warn: Callable[[str], None]
    _upstream: Upstream | None
    _uplinks: list[str] | None
    _best_effort: bool
    _nft: Any
    _dns: DnsView | None
    _loopback: Any
    _fd: int
    _created_netns: bool
    _created_table: bool
    _closed: bool
    _helper: subprocess.Popen[bytes] | None
    _helper_lock: threading.Lock
    _user_dir: str | None
    _pasta_argv: list[str]
    _routes: list[str]
    _ruleset: dict[str, Any]
    _lock: threading.Lock
    _fd_sock: Any  # the loopback-only unprivileged rung: sockets from the helper
    _lo_ports: list[int]
    _lo_user: bool

    def _namespace_setup(
        self,
        fd: int | None,
        resolv: Any,
        warnings: list[str],
        dns_view: str,
        ports: list[int],
        ruleset: dict[str, Any] | None = None,
        addressing: Addressing | None = None,
        layer: str = "network namespace + veth + nftables + DNS view",
        init_netns: bool = False,
    ) -> NetSetup:
        """What every rung that gives the sandbox its own namespace hands the launcher, its
        warnings said first.  fd: the namespace landgate made (the root rungs; the child
        joins it by /proc/PID/fd/N); None: the launcher makes it (the unprivileged rungs,
        LG_NS_NET), or the sandbox's init makes it (init_netns: the root rung's
        loopback-only layer, LG_NS_NET_INIT).  The DNS view's resolv.conf is bound over
        /etc/resolv.conf."""
        for w in warnings:
            self._warn(w)
        return NetSetup(
            netns_fd=-1 if fd is None else fd,
            binds=[(str(resolv), "/etc/resolv.conf")],
            rung="netns" if fd is not None or init_netns else "userns",
            warnings=warnings,
            ruleset_json=ruleset if ruleset is not None else {"nftables": []},
            netns_path=None if fd is None else f"/proc/{os.getpid()}/fd/{fd}",
            addressing=addressing,
            dns_view=dns_view,
            forwarded_loopback_ports=ports,
            new_netns=fd is None and not init_netns,
            layer=layer,
            init_netns=init_netns,
        )
