"""The egress layer of one `landgate run`: namespace, veth, NAT, nftables, DNS view.

Order relative to the launcher (see NetworkSession):
  prepare()  before fork, in landgate's own namespace;
  attach()   after fork, before the agent is released, with the agent's pid
             (nothing to do on the root rung; the unprivileged rung configures
             the namespace the launcher made there, and returns only when it is
             ready: pasta's routes and the nft ruleset in place);
  close()    after the agent's tree has exited (idempotent; also at exit).

Rungs: "netns" (root: veth + NAT, rules on the host side), "userns" (any user
with unprivileged user namespaces and pasta: the launcher's LG_NS_NET, pasta
for connectivity, the ruleset inside the sandbox's namespace; see
sandbox/net/nshelper.py), "connect-only" (neither: connect decisions alone).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from collections.abc import Callable, Sequence

from sandbox.audit.event import DecisionEvent
from sandbox.errors import EnforcementUnavailable, LaunchError
from sandbox.host.fsutil import remove_tree
from sandbox.host.network import (
    CONNECT_ONLY_WARNING,
    NetCapabilities,
    network_capabilities,
)
from sandbox.net import spare as spare_ns
from sandbox.net.cleanup import _forget, _register_cleanup, cleanup_stale
from sandbox.net.dnsview import DnsView, Upstream
from sandbox.net.netns import SessionNames
from sandbox.net.rung_lo import LoopbackOnlyRung, UserLoopbackOnlyRung
from sandbox.net.rung_root import RootRung
from sandbox.net.setup import NetSetup
from sandbox.plan.names import judge_name, reaches_outside
from sandbox.policy.layers import layers_for
from sandbox.policy.model import Policy

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess  # the unprivileged rung's helper; imported where it is started
    from typing import Any

_counter = itertools.count(1)


class NetworkSession(RootRung, LoopbackOnlyRung, UserLoopbackOnlyRung):
    """One sandbox's egress layer.  Not reusable: prepare() once, close() once (or more)."""

    def __init__(
        self,
        policy: Policy,
        on_event: Callable[[DecisionEvent], None] | None = None,
        names_sink: Callable[[str, tuple[str, ...]], None] | None = None,
        warn: Callable[[str], None] | None = None,
        *,
        upstream: Upstream | None = None,
        uplinks: Sequence[str] | None = None,
        best_effort: bool = False,
        caps: NetCapabilities | None = None,
        init_netns: bool = False,
        spare_netns: bool = False,
    ) -> None:
        """`caps`: the answer the plan's egress status was decided from (Plan.net_caps),
        asked with the same `nft=reaches_outside(policy)`; None: ask the host now.
        `init_netns`: the launcher's init may make the root rung's loopback-only namespace
        itself (LG_NS_NET_INIT; attach() then needs init's pidfd).  Off, the namespace is
        made by prepare(), for a session used without the launcher.  `spare_netns` (with
        init_netns): make_next() starts making the next session's namespace in the background
        (sandbox.net.spare), which that session's launch then joins; a spare made
        by an earlier session is taken either way."""
        self.policy = policy
        self._caps = caps
        self._on_event = on_event or (lambda e: None)
        self._names_sink = names_sink or (lambda ip, names: None)
        self._warn = warn or (lambda m: None)
        env_up = os.environ.get("LANDGATE_DNS_UPSTREAM")  # "host[:port]", for tests and odd hosts
        if upstream is None and env_up:
            host, _, port = env_up.rpartition(":") if env_up.count(":") == 1 else (env_up, "", "")
            upstream = Upstream(host or env_up, int(port) if port else 53)
        self._upstream = upstream
        env_uplinks = os.environ.get("LANDGATE_NET_UPLINKS")
        self._uplinks = (
            list(uplinks)
            if uplinks is not None
            else (env_uplinks.split(",") if env_uplinks else None)
        )
        self._best_effort = best_effort
        self.names = SessionNames(os.getpid(), next(_counter))
        self.setup: NetSetup | None = None
        self._nft: Any = None
        self._dns: DnsView | None = None
        self._loopback: Any = None
        self._fd = -1
        self._created_netns = False
        self._created_table = False
        self._closed = False
        self._helper: subprocess.Popen[bytes] | None = None
        self._helper_lock = threading.Lock()
        self._user_dir: str | None = None
        self._pasta_argv: list[str] = []
        self._routes: list[str] = []
        self._ruleset: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self.child_pid: int | None = None
        self._fd_sock: Any = None
        self._lo_ports: list[int] = []
        self._lo_user = False
        self._init_netns = init_netns
        self._lo_init = False  # the root rung's loopback-only layer: init makes the namespace
        self._spare_netns = spare_netns
        self._lo_spare = False  # ... and the next session's is made ahead (make_next)
        self._lo_bound: Callable[[], int] | None = None  # a spare's binding, begun at prepare

    # ---- public ----------------------------------------------------------
    def prepare(self) -> NetSetup:
        if self.setup is not None:
            raise LaunchError("NetworkSession.prepare called twice")
        # A policy that reaches nothing outside needs no nftables: the probe skips it, and
        # the root rung then makes the loopback-only namespace (sandbox/net/rung_lo.py).
        outside = reaches_outside(self.policy)
        caps = self._caps if self._caps is not None else network_capabilities(nft=outside)
        if caps.rung == "netns" and not outside:
            _register_cleanup(self)
            try:
                self.setup = self._prepare_loopback_only(caps)
            except BaseException:
                self.close()
                raise
            return self.setup
        if caps.rung == "userns" and not outside:
            _register_cleanup(self)
            self._lo_user = True
            try:
                self.setup = self._prepare_userns_lo(caps)
            except BaseException:
                self.close()
                raise
            return self.setup
        if caps.rung == "userns":
            _register_cleanup(self)
            try:
                self.setup = self._prepare_userns(caps)
            except BaseException:
                self.close()
                raise
            return self.setup
        if not caps.netns:
            return self._prepare_connect_only(caps)
        _register_cleanup(self)
        try:
            cleanup_stale()
            self.setup = self._prepare_netns(caps)
        except BaseException:
            self.close()
            raise
        return self.setup

    def attach(self, child_pid: int, netns_pidfd: int = -1) -> None:
        """After fork, before the agent is released (run_session_result: spawn, attach, release).

        The root rung's veth layer needs nothing from the child; its loopback-only
        layer joins the namespace init made (LG_NS_NET_INIT) through `netns_pidfd`
        (init's pidfd) and binds the DNS view and the forwarder's listeners there.  The
        unprivileged rung configures the namespace the launcher created (LG_NS_NET) and
        returns only when pasta has configured it and the ruleset is loaded there: the
        agent never runs in a namespace without its ruleset."""
        self.child_pid = child_pid
        if self._lo_init:
            self._attach_loopback_only(netns_pidfd)
        elif self._lo_user:
            self._attach_userns_lo(child_pid)
        elif self._helper is not None:
            self._attach_userns(child_pid)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _forget(self)  # closed here: nothing left for the exit hook
        problems: list[str] = []

        def step(what: str, fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001  keep going: every later step has to run
                problems.append(f"{what}: {exc}")

        bound, self._lo_bound = self._lo_bound, None
        if bound is not None:
            # Never attached (the launch failed): the binding ends before its sockets close.
            step("DNS view binding", bound)

        if self._helper is not None:
            step("namespace helper (pasta, nft)", self._stop_helper)
        if self._fd_sock is not None:
            step("helper socket", self._fd_sock.close)
        if self._loopback is not None:
            step("loopback forwarder", self._loopback.close)
        if self._dns is not None:
            step("DNS view", self._dns.close)
        if self._created_table and self._nft is not None:
            step("nft table", lambda: self._nft.delete_table("inet", self.names.netns))
        # The namespace and its veth pair go when the last reference does (this
        # fd, the loopback forwarder's listeners, the agent's processes); the
        # kernel tears them down in the background.
        if self._fd >= 0:
            step("netns fd", lambda: os.close(self._fd))
            self._fd = -1
        step("run dir", lambda: remove_tree(str(self.names.run_dir)))
        if self._user_dir is not None:
            step("resolv.conf dir", lambda: remove_tree(self._user_dir or ""))
        for p in problems:
            self._warn(f"network clean-up: {p}")

    def make_next(self) -> None:
        """Start making the next session's namespace in the background, when this one's
        layer takes spares (spare_netns): the caller's session is over (its trail sealed),
        so the kernel's work competes with nothing of it, and the next launch joins the
        namespace instead of waiting for the kernel to make one."""
        if self._lo_spare:
            spare_ns.make_spare_loopback()

    # ---- rungs -------------------------------------------------------------
    def _require_egress(self) -> None:
        required = {n for n in self.policy.enforcement.require if "egress" in layers_for(n)}
        if required and not self._best_effort:
            raise EnforcementUnavailable(
                f"the policy requires {', '.join(sorted(required))}, but this host cannot give the "
                "sandbox a network namespace (run as root, or pass --best-effort)"
            )

    def _prepare_connect_only(self, caps: NetCapabilities) -> NetSetup:
        self._require_egress()
        # The notes say why (e.g. the tun device pasta cannot open), not only what is lost.
        warnings = list(caps.notes) or [CONNECT_ONLY_WARNING]
        for w in warnings:
            self._warn(w)
        pinned = self._pin_names()
        from sandbox.plan.nft import compile_nft_ruleset

        self.setup = NetSetup(
            netns_fd=-1,
            binds=[],
            rung="connect-only",
            layer="none (connect decisions only)",
            warnings=warnings,
            ruleset_json=compile_nft_ruleset(self.policy, pinned),
            pinned=pinned,
        )
        self._closed = False
        return self.setup

    def _pin_names(self) -> dict[str, list[str]]:
        """Resolve the policy's exact allowed host names once, with the host's resolver."""
        pinned: dict[str, list[str]] = {}
        for rule in self.policy.block("network").rules:
            dest = rule.destination
            if rule.effect != "allow" or dest is None or dest.kind != "host" or not dest.host:
                continue
            if not judge_name(self.policy, dest.host).answer or dest.host in pinned:
                continue
            try:
                infos = socket.getaddrinfo(dest.host, None, proto=socket.IPPROTO_TCP)
            except OSError:
                continue  # unresolvable at launch: connects to it will be denied
            addrs = sorted({str(i[4][0]) for i in infos})
            pinned[dest.host] = addrs
            for ip in addrs:
                self._names_sink(ip, (dest.host,))
        return pinned

    # ---- the unprivileged rung ------------------------------------------------
