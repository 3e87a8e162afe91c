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

import atexit
import itertools
import os
import shutil
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.audit.event import DecisionEvent
from sandbox.errors import EnforcementUnavailable, LaunchError
from sandbox.host.network import (
    CONNECT_ONLY_WARNING,
    NetCapabilities,
    NetRung,
    host_default_routes,
    network_capabilities,
    read_sysctl,
)
from sandbox.net import netns as nsmod
from sandbox.net.dnsview import DnsView, Upstream, upstream_from_resolv_conf
from sandbox.net.netns import Addressing, AllocationLock, NetSetupError, SessionNames
from sandbox.plan.names import NameVerdict, judge_name, target_allowed
from sandbox.policy.layers import layers_for
from sandbox.policy.model import Policy

if TYPE_CHECKING:
    import subprocess  # the unprivileged rung's helper; imported where it is started

_counter = itertools.count(1)


@dataclass(slots=True)
class NetSetup:
    """What the launcher needs: setns into netns_fd first in the child; bind-mount `binds`."""

    netns_fd: int
    binds: list[tuple[str, str]]
    rung: NetRung
    warnings: list[str]
    ruleset_json: dict[str, Any]
    netns_path: str | None = None
    addressing: Addressing | None = None
    dns_view: str | None = None
    forwarded_loopback_ports: list[int] = field(default_factory=list)
    pinned: dict[str, list[str]] = field(default_factory=dict)
    # The unprivileged rung: the launcher creates the namespace itself (LG_NS_NET,
    # inside the sandbox's user namespace); attach(pid) configures it.
    new_netns: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "rung": self.rung,
            "netns": self.netns_path,
            "dns_view": self.dns_view,
            "warnings": list(self.warnings),
            "forwarded_loopback_ports": self.forwarded_loopback_ports,
            "pinned": self.pinned,
        }


class _SetFeeder:
    """Adds answered addresses to the nft sets; never shortens an element's life."""

    def __init__(self, nft: Any, table: str) -> None:
        self._nft = nft
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


class NetworkSession:
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
    ) -> None:
        self.policy = policy
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

    # ---- public ----------------------------------------------------------
    def prepare(self) -> NetSetup:
        if self.setup is not None:
            raise LaunchError("NetworkSession.prepare called twice")
        caps = network_capabilities()
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

    def attach(self, child_pid: int) -> None:
        """After fork, before the agent is released (run_session_result: spawn, attach, release).

        The root rung needs nothing from the child.  The unprivileged rung
        configures the namespace the launcher created (LG_NS_NET) and returns
        only when pasta has configured it and the ruleset is loaded there: the
        agent never runs in a namespace without its ruleset."""
        self.child_pid = child_pid
        if self._helper is not None:
            self._attach_userns(child_pid)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        problems: list[str] = []

        def step(what: str, fn: Callable[[], None]) -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001  keep going: every later step has to run
                problems.append(f"{what}: {exc}")

        if self._helper is not None:
            step("namespace helper (pasta, nft)", self._stop_helper)
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
        step("run dir", lambda: shutil.rmtree(self.names.run_dir, ignore_errors=True))
        if self._user_dir is not None:
            step("resolv.conf dir", lambda: shutil.rmtree(self._user_dir or "", ignore_errors=True))
        for p in problems:
            self._warn(f"network clean-up: {p}")

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

    def _prepare_netns(self, caps: NetCapabilities) -> NetSetup:
        from sandbox.host.nftables import shared_nft
        from sandbox.net import rtnl
        from sandbox.plan.nft import NftTopology, compile_nft_ruleset

        names = self.names
        warnings: list[str] = []
        names.run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        (names.run_dir / "owner").write_text(
            f"{os.getpid()} {nsmod.process_start_time(os.getpid())}\n"
        )

        from sandbox.net.loopback import LoopbackForwarder

        policy = self.policy
        fixed, any_port = _loopback_ports(policy)
        forwarder = LoopbackForwarder(
            -1,
            allowed=lambda p: target_allowed(policy, f"127.0.0.1:{p}")[0],
            fixed_ports=fixed,
            any_port=any_port,
            warn=self._warn,
        )
        loop_ports = forwarder.wanted()  # the host's listeners: read here, in landgate's namespace
        host_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            with AllocationLock(), rtnl.Rtnl() as rt:
                addr = nsmod.allocate_addressing(rt, caps.ipv6)

                def inside(_fd: int) -> None:
                    # One thread, one rtnetlink batch: the veth (its host end placed
                    # in landgate's namespace), lo, addresses, routes; then the
                    # loopback forwarder's listeners, bound here.
                    with rtnl.Rtnl() as inner:
                        inner.batch([rtnl.veth(names.sandbox_if, names.host_if, host_ns)])
                        sidx = socket.if_nametoindex(names.sandbox_if)
                        reqs = [rtnl.link_up("lo"), rtnl.address(sidx, addr.sandbox4, addr.prefix4)]
                        if addr.sandbox6:
                            reqs.append(rtnl.address(sidx, addr.sandbox6, addr.prefix6, nodad=True))
                        reqs += [
                            rtnl.link_up(names.sandbox_if),
                            rtnl.default_route(sidx, addr.host4),
                        ]
                        if addr.sandbox6 and addr.host6:
                            reqs.append(rtnl.default_route(sidx, addr.host6))
                        inner.batch(reqs)
                    forwarder.bind_here(loop_ports)

                try:
                    self._fd, _ = nsmod.create_netns(inside)
                except LaunchError as exc:
                    raise NetSetupError(f"the sandbox's namespace: {exc}") from None
                self._loopback = forwarder
                forwarder.set_netns(self._fd)
                hidx = socket.if_nametoindex(names.host_if)
                if addr.host6:
                    nsmod.write_sysctl(f"net/ipv6/conf/{names.host_if}/accept_dad", "0")
                host_reqs = [rtnl.address(hidx, addr.host4, addr.prefix4)]
                if addr.host6:
                    host_reqs.append(rtnl.address(hidx, addr.host6, addr.prefix6, nodad=True))
                host_reqs.append(rtnl.link_up(names.host_if))
                rt.batch(host_reqs)
                warnings += self._enable_forwarding(rt, addr)
        finally:
            os.close(host_ns)

        topo = NftTopology(
            table=names.netns,
            host_if=names.host_if,
            sandbox4=addr.sandbox4,
            sandbox6=addr.sandbox6,
            view4=addr.host4,
            view6=addr.host6,
        )
        ruleset = compile_nft_ruleset(self.policy, None, topo)
        self._nft = shared_nft()
        self._created_table = True
        self._nft.run(ruleset)

        upstream = self._upstream or upstream_from_resolv_conf()
        if upstream is None:
            warnings.append("no upstream resolver in /etc/resolv.conf: every lookup will fail")
            upstream = Upstream("127.0.0.1", 53)
        self._dns = DnsView(
            listen=[addr.host4],
            judge=lambda n: judge_name(policy, n),
            upstream=upstream,
            allow_addresses=_SetFeeder(self._nft, names.netns),
            on_event=self._on_event,
            names_sink=self._names_sink,
            rule_ref=lambda v: v.rule_ref(policy),
            ipv6=addr.sandbox6 is not None,
        )
        try:
            self._dns.start()
        except OSError as exc:
            raise NetSetupError(f"DNS view: bind {addr.host4}:53: {exc.strerror}") from None
        resolv = names.run_dir / "resolv.conf"
        resolv.write_text(
            f"# landgate DNS view for {names.netns}\nnameserver {addr.host4}\n"
            "options edns0 timeout:2 attempts:2\n"
        )
        resolv.chmod(0o644)

        forwarder.start()
        if not addr.sandbox6:
            warnings.append(
                "IPv6 egress is not forwarded on this host: the DNS view answers no AAAA"
            )
        for w in warnings:
            self._warn(w)
        return NetSetup(
            netns_fd=self._fd,
            binds=[(str(resolv), "/etc/resolv.conf")],
            rung="netns",
            warnings=warnings,
            ruleset_json=ruleset,
            netns_path=f"/proc/{os.getpid()}/fd/{self._fd}",
            addressing=addr,
            dns_view=addr.host4,
            forwarded_loopback_ports=forwarder.ports,
        )

    # ---- the unprivileged rung ------------------------------------------------
    def _prepare_userns(self, caps: NetCapabilities) -> NetSetup:
        """Before fork: the DNS view on host loopback, the resolv.conf, the helper process.

        The namespace itself is made by the launcher (LG_NS_NET); attach()
        configures it.  The helper is started here so that its interpreter
        start-up overlaps the spawn."""
        import subprocess
        import tempfile

        from sandbox.net.loopback import host_loopback_listeners
        from sandbox.plan.nft import NftTopology, compile_nft_ruleset

        policy = self.policy
        warnings: list[str] = []
        _cleanup_stale_user_dirs()
        self._helper = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                str(Path(__file__).with_name("nshelper.py")),
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._routes = sorted(host_default_routes())
        ipv6 = "6" in self._routes

        topo = NftTopology(table=self.names.netns, hook="output")
        ruleset = compile_nft_ruleset(policy, None, topo)
        self._ruleset = ruleset

        upstream = self._upstream or upstream_from_resolv_conf()
        if upstream is None:
            warnings.append("no upstream resolver in /etc/resolv.conf: every lookup will fail")
            upstream = Upstream("127.0.0.1", 53)
        # The view listens on the host's loopback (an ephemeral port); pasta's
        # listener on the sandbox's 127.0.0.1:53 (and [::1]:53) forwards to it.
        self._dns = DnsView(
            listen=["127.0.0.1"],
            port=0,
            judge=lambda n: judge_name(policy, n),
            upstream=upstream,
            allow_addresses=_SetFeeder(_HelperNft(self), self.names.netns),
            on_event=self._on_event,
            names_sink=self._names_sink,
            rule_ref=lambda v: v.rule_ref(policy),
            ipv6=ipv6,
        )
        try:
            self._dns.start()
        except OSError as exc:
            raise NetSetupError(f"DNS view: bind 127.0.0.1: {exc.strerror}") from None
        view_port = self._dns.port

        # Host loopback ports the policy allows: pasta listens on them in the
        # sandbox's loopback and connects to the host's 127.0.0.1/::1 at the same port.
        fixed, any_port = _loopback_ports(policy)
        wanted = set(fixed) | (host_loopback_listeners() if any_port else set())
        ports = sorted(p for p in wanted if p != 53 and target_allowed(policy, f"127.0.0.1:{p}")[0])
        tcp_spec = ",".join([f"53:{view_port}"] + [str(p) for p in ports])
        # --no-map-gw: by default pasta maps the gateway's address to the host's
        # loopback, which would expose every host loopback port behind one
        # address.  -t/-u none: nothing from the host into the sandbox.
        self._pasta_argv = [
            caps.pasta or "pasta",
            "-q",
            "-f",
            "--config-net",
            "--no-map-gw",
            "-t",
            "none",
            "-u",
            "none",
            "-T",
            tcp_spec,
            "-U",
            f"53:{view_port}",
        ]

        self._user_dir = tempfile.mkdtemp(prefix=f"landgate-net-{os.getpid()}-")
        os.chmod(self._user_dir, 0o755)
        Path(self._user_dir, "owner").write_text(
            f"{os.getpid()} {nsmod.process_start_time(os.getpid())}\n"
        )
        resolv = Path(self._user_dir, "resolv.conf")
        resolv.write_text(
            "# landgate DNS view (through pasta)\nnameserver 127.0.0.1\n"
            "options edns0 timeout:2 attempts:2\n"
        )
        resolv.chmod(0o644)
        if not ipv6:
            warnings.append("this host has no IPv6 default route: the DNS view answers no AAAA")
        for w in warnings:
            self._warn(w)
        return NetSetup(
            netns_fd=-1,
            binds=[(str(resolv), "/etc/resolv.conf")],
            rung="userns",
            warnings=warnings,
            ruleset_json=ruleset,
            dns_view="127.0.0.1",
            forwarded_loopback_ports=ports,
            new_netns=True,
        )

    def _helper_call(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        import json
        import select

        helper = self._helper
        if helper is None or helper.stdin is None or helper.stdout is None:
            raise NetSetupError("the namespace helper is not running")
        with self._helper_lock:
            try:
                helper.stdin.write(json.dumps(req).encode() + b"\n")
                helper.stdin.flush()
            except OSError as exc:
                raise NetSetupError(f"namespace helper: {exc}") from None
            ready, _, _ = select.select([helper.stdout], [], [], timeout)
            line = helper.stdout.readline() if ready else b""
        if not line:
            raise NetSetupError(
                "namespace helper: no reply"
                + (
                    f" (exit {helper.poll()})"
                    if helper.poll() is not None
                    else f" within {timeout} s"
                )
            )
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise NetSetupError(f"namespace helper: {reply.get('error')}")
        return reply

    def _attach_userns(self, pid: int) -> None:
        t0 = time.monotonic()
        argv = [
            *self._pasta_argv,
            "--userns",
            f"/proc/{pid}/ns/user",
            "--netns",
            f"/proc/{pid}/ns/net",
        ]
        reply = self._helper_call(
            {
                "op": "attach",
                "pid": pid,
                "pasta": argv,
                "routes": self._routes,
                "ruleset": self._ruleset,
                "timeout": 10,
            },
            timeout=15,
        )
        self.timings["attach"] = time.monotonic() - t0
        for k, v in (reply.get("ms") or {}).items():
            self.timings[k] = v / 1e3

    def _stop_helper(self) -> None:
        """SIGKILL the helper; its death signal takes pasta (and with them the namespace's
        last references).  Not waited for: pasta's and the namespace's teardown cost 30-60 ms
        that nothing needs to wait for; a daemon thread reaps the helper."""
        helper, self._helper = self._helper, None
        if helper is None:
            return
        with self._helper_lock:  # not while a set update is in flight
            helper.kill()
        for f in (helper.stdin, helper.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        threading.Thread(target=helper.wait, name="landgate-nshelper-reap", daemon=True).start()

    def _enable_forwarding(self, rt: Any, addr: Addressing) -> list[str]:
        """Forwarding on the veth (egress) and on the uplinks (replies come in there).

        Linux checks forwarding on the *ingress* device (IPv4 IN_DEV_FORWARD;
        IPv6 force_forwarding, 6.17), so per-device flags suffice and the host's
        global setting is left alone.  Uplinks default to the default-route
        devices; LANDGATE_NET_UPLINKS narrows them.  Set flags are left on at
        exit: concurrent sessions share them.
        """
        changed: list[str] = []
        devs4 = [self.names.host_if] + (
            self._uplinks
            if self._uplinks is not None
            else nsmod.default_route_devices(rt, socket.AF_INET)
        )
        if read_sysctl("net/ipv4/ip_forward") != "1":
            for dev in devs4:
                path = f"net/ipv4/conf/{dev}/forwarding"
                if read_sysctl(path) != "1":
                    nsmod.write_sysctl(path, "1")
                    if dev != self.names.host_if:
                        changed.append(dev)
        if addr.host6 and read_sysctl("net/ipv6/conf/all/forwarding") != "1":
            devs6 = [self.names.host_if] + (
                self._uplinks
                if self._uplinks is not None
                else nsmod.default_route_devices(rt, socket.AF_INET6)
            )
            for dev in devs6:
                path = f"net/ipv6/conf/{dev}/force_forwarding"
                if read_sysctl(path) != "1":
                    nsmod.write_sysctl(path, "1")
                    if dev != self.names.host_if and dev not in changed:
                        changed.append(dev)
        if changed:
            return [f"enabled forwarding on {', '.join(changed)} for the sandbox's NAT (left on)"]
        return []


class _HelperNft:
    """The DNS view's set updates, run by the helper inside the sandbox's namespace."""

    def __init__(self, session: NetworkSession) -> None:
        self._session = session

    def run(self, batch: dict[str, Any]) -> None:
        self._session._helper_call({"op": "nft", "batch": batch}, timeout=5)


def _cleanup_stale_user_dirs() -> None:
    """resolv.conf directories of unprivileged runs that were killed (SIGKILL)."""
    import tempfile

    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob("landgate-net-*-*"):
        try:
            if d.is_symlink() or d.stat().st_uid != os.getuid():
                continue
            parts = (d / "owner").read_text().split()
            pid, stamp = int(parts[0]), (parts[1] if len(parts) > 1 else None)
        except (OSError, ValueError, IndexError):
            continue
        if pid != os.getpid() and not nsmod.owner_alive(pid, stamp):
            shutil.rmtree(d, ignore_errors=True)


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


def _delete_link(name: str) -> None:
    from sandbox.net import rtnl

    with rtnl.Rtnl() as rt:
        rt.batch([rtnl.delete_link(name)])


_live: weakref.WeakSet[NetworkSession] = weakref.WeakSet()
_atexit_registered = False


def _register_cleanup(session: NetworkSession) -> None:
    global _atexit_registered  # noqa: PLW0603  one atexit hook per process
    _live.add(session)
    if not _atexit_registered:
        atexit.register(_close_all)
        _atexit_registered = True


def _close_all() -> None:
    for s in list(_live):
        s.close()


def cleanup_stale() -> list[str]:
    """Remove namespaces, veths, nft tables and run dirs of landgate processes that are gone."""
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
                m = nsmod.NAME_RE.match(entry.name)
                if m:
                    candidates.add((int(m.group(1)), int(m.group(2))))
    tables: list[tuple[str, str]] = []
    nft = None
    try:
        from sandbox.host.nftables import shared_nft

        nft = shared_nft()
        tables = nft.list_tables()
    except LaunchError:
        pass
    for fam, name in tables:
        m = nsmod.NAME_RE.match(name)
        if m and fam == "inet":
            candidates.add((int(m.group(1)), int(m.group(2))))
    try:
        links = os.listdir("/sys/class/net")  # this (landgate's) network namespace's devices
    except OSError:
        links = []
    for link in links:
        m = nsmod.VETH_RE.match(link)
        if m:
            candidates.add((int(m.group(1)), int(m.group(2))))

    for pid, n in sorted(candidates):
        if not stale(pid, n):
            continue
        names = SessionNames(pid, n)
        if nft is not None and ("inet", names.netns) in tables:
            try:
                nft.delete_table("inet", names.netns)
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
        shutil.rmtree(names.run_dir, ignore_errors=True)
        removed.append(names.netns)
    return removed
