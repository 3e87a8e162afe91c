"""The root rung of the egress layer: a network namespace, veth + NAT, rules on the host side."""

from __future__ import annotations

import os
import socket

from sandbox.errors import LaunchError
from sandbox.host.dashboards import dashboard_ports
from sandbox.host.network import (
    NetCapabilities,
    read_sysctl,
)
from sandbox.net import netns as nsmod
from sandbox.net.dnsview import DnsView, Upstream, upstream_from_resolv_conf
from sandbox.net.netns import Addressing, AllocationLock, NetSetupError
from sandbox.net.setup import NetSetup, _loopback_ports, _NetState, _SetFeeder
from sandbox.plan.names import judge_name, target_allowed

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    # the unprivileged rung's helper; imported where it is started


class RootRung(_NetState):
    def _prepare_netns(self, caps: NetCapabilities) -> NetSetup:
        from sandbox.host.nftables import NftError, NftNetlink, table_names
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
            # a dashboard's port never: re-read on every rescan (one started later)
            allowed=lambda p: (
                p not in dashboard_ports() and target_allowed(policy, f"127.0.0.1:{p}")[0]
            ),
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
        self._nft = NftNetlink()
        self._created_table = True
        try:
            self._nft.run(ruleset)
        except NftError:
            # The batch creates its table: EEXIST means a leftover of a killed run under
            # this reused pid (cleanup_stale spares our own pid).  Anything else is raised.
            if ("inet", names.netns) not in table_names():
                raise
            self._nft.delete_table("inet", names.netns)
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
        return self._namespace_setup(
            self._fd, resolv, warnings, addr.host4, forwarder.ports, ruleset, addr
        )

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
