"""The loopback-only layer (root rung): a private namespace with only its loopback up.

For a policy that can reach nothing outside the sandbox (sandbox.plan.names.
reaches_outside is False: default deny, and allows only for `localhost`,
loopback addresses and unix sockets) the veth pair, the NAT, the nftables
table and the forwarding sysctls would all exist to reject every packet.
Here they are not made at all: the namespace has no device but `lo` and no
route, so every packet to any other address fails in the kernel's route
lookup (ENETUNREACH / EHOSTUNREACH) before any filter would see it.  That is
at least as strong as the nft reject, and nothing inside the namespace can
change it without CAP_NET_ADMIN over it (which the agent never holds: the
namespace belongs to landgate's user namespace on this rung).

What users keep:
  * the private loopback (127.0.0.1, ::1) is up and the agent's own;
  * allowed host loopback ports: the loopback forwarder's listeners are bound
    inside the namespace, its outgoing sockets in landgate's (no veth needed);
  * the DNS view: its sockets are created by a thread that joined the
    namespace (the sandbox's init makes it: LG_NS_NET_INIT), so they listen on
    the sandbox's own 127.0.0.1:53 while the view's threads (and its upstream
    queries) stay in landgate's namespace.
    Denied names are recorded exactly as with the full layer.  It has no
    nft sets to feed: an answered address has no route either (a loopback
    answer is the sandbox's own loopback).

Nothing else is made: no run directory (the resolv.conf is one shared file),
so a SIGKILLed run leaves nothing behind but what the kernel frees with the
namespace's last reference.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from sandbox.host.dashboards import dashboard_ports
from sandbox.host.network import LOOPBACK_ONLY_LAYER, NetCapabilities
from sandbox.net import netns as nsmod
from sandbox.net import spare as spare_ns
from sandbox.net.dnsview import DnsView, Upstream, upstream_from_resolv_conf
from sandbox.net.netns import NetSetupError
from sandbox.net.rung_user import UserRung
from sandbox.net.setup import NetSetup, _loopback_ports, _NetState
from sandbox.plan.names import NameVerdict, judge_name, target_allowed

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from sandbox.net.loopback import LoopbackForwarder
    from sandbox.policy.model import Policy

RESOLV_CONF = "# landgate DNS view (loopback-only namespace)\nnameserver 127.0.0.1\n"
RESOLV_CONF += "options edns0 timeout:2 attempts:2\n"


def _no_route(addrs: Sequence[str], verdict: NameVerdict, timeout: int) -> None:
    """The DNS view's set feeder here: there are no sets, and no route to any answer."""
    del addrs, verdict, timeout


def shared_resolv_conf() -> Path:
    """/run/landgate/resolv-loopback.conf: the same text for every such session.

    Written (atomically) only when missing or different; never removed, so a
    killed run leaves no per-session file and a running one never loses its
    bind-mount source."""
    path = nsmod.RUN_DIR / "resolv-loopback.conf"
    try:
        if path.read_text() == RESOLV_CONF:
            return path
    except OSError:
        pass
    nsmod.RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_name(f".resolv-loopback.{os.getpid()}.{time.monotonic_ns()}")
    try:
        tmp.write_text(RESOLV_CONF)
        tmp.chmod(0o644)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise NetSetupError(f"write {path}: {exc.strerror}") from None
    return path


def _forwarder(
    policy: Policy, warn: Callable[[str], None], bind_in_netns: Any = None
) -> LoopbackForwarder:
    """The host-loopback forwarder of a loopback-only namespace (both rungs): the policy's
    allowed host ports, never a dashboard's port (re-read on every rescan: one started
    later) nor 53 (the sandbox's 127.0.0.1:53 is its DNS view)."""
    from sandbox.net.loopback import LoopbackForwarder

    fixed, any_port = _loopback_ports(policy)
    return LoopbackForwarder(
        -1,
        allowed=lambda p: (
            p != 53 and p not in dashboard_ports() and target_allowed(policy, f"127.0.0.1:{p}")[0]
        ),
        fixed_ports=fixed,
        any_port=any_port,
        warn=warn,
        bind_in_netns=bind_in_netns,
    )


def _upstream(explicit: Upstream | None, warnings: list[str]) -> Upstream:
    """The DNS view's upstream: the one given, else resolv.conf's (a warning if none)."""
    upstream = explicit or upstream_from_resolv_conf()
    if upstream is None:
        warnings.append("no upstream resolver in /etc/resolv.conf: every lookup will fail")
        upstream = Upstream("127.0.0.1", 53)
    return upstream


def _bind_inside(dns: DnsView, forwarder: LoopbackForwarder, ports: list[int]) -> None:
    """Bind the DNS view's and the forwarder's listeners on the calling thread, which is
    in the sandbox's namespace (a socket stays in the namespace it was made in)."""
    try:
        dns.bind()
    except OSError as exc:
        raise NetSetupError(
            f"DNS view: bind 127.0.0.1:53 in the sandbox's namespace: {exc.strerror}"
        ) from None
    forwarder.bind_here(ports)


def _dns_view(rung: _NetState, upstream: Upstream) -> DnsView:
    """The DNS view of a loopback-only namespace (both rungs), on the sandbox's own
    127.0.0.1:53.  AAAA answers are forwarded as A ones are: neither family has a route,
    so an answer adds no reach (_no_route)."""
    policy = rung.policy
    return DnsView(
        listen=["127.0.0.1"],
        judge=lambda n: judge_name(policy, n),
        upstream=upstream,
        allow_addresses=_no_route,
        on_event=rung._on_event,
        names_sink=rung._names_sink,
        rule_ref=lambda v: v.rule_ref(policy),
        ipv6=True,
    )


class LoopbackOnlyRung(_NetState):
    """The root rung's loopback-only layer.  The namespace is made by the sandbox's init
    (LG_NS_NET_INIT: unshare after its execve, `lo` up), so the kernel's ~0.5 ms of
    pernet set-up runs in the child while landgate compiles the supervisor's tables
    (issue 19), not before the fork.  attach() joins it through init's pidfd, on a
    thread of its own, and binds the DNS view's and the forwarder's sockets there before
    the agent is released: the agent never runs without its resolver."""

    _lo_init: bool
    _lo_spare: bool
    _lo_bound: Callable[[], int] | None
    _spare_netns: bool
    _lo_ports: list[int]

    _init_netns: bool

    def _prepare_loopback_only(self, caps: NetCapabilities) -> NetSetup:
        del caps  # the root rung's facts; nothing here depends on nft or IPv6 forwarding
        if not self._init_netns:
            return self._prepare_loopback_here()
        self._lo_spare = self._spare_netns  # make_next() makes the next session's spare
        # One made after an earlier session and never used: the kernel's pernet set-up is
        # off the launch path (init joins it instead of making one; issue 19).  Owned from
        # here (closed by close()); bound by attach() as init's own namespace would be.
        spare = spare_ns.take_spare_loopback()
        if spare >= 0:
            self._fd = spare
        t0 = time.perf_counter()
        policy = self.policy
        warnings: list[str] = []
        resolv = shared_resolv_conf()
        forwarder = _forwarder(policy, self._warn)
        # The host's listeners: read here, in landgate's namespace.
        self._lo_ports = forwarder.wanted()
        upstream = _upstream(self._upstream, warnings)
        self._loopback = forwarder
        self._dns = _dns_view(self, upstream)
        self._lo_init = True
        if spare >= 0:
            # The spare exists already: its DNS view and forwarder are bound now, on a
            # worker, while this session forks and compiles the supervisor's tables;
            # attach() collects them (issue 19: ~0.2 ms off the launch's serial path).
            dns, ports = self._dns, self._lo_ports

            def bind_in_spare() -> int:
                nsmod._setns(spare, nsmod.CLONE_NEWNET)
                _bind_inside(dns, forwarder, ports)
                return spare

            self._lo_bound = nsmod._begin_in_thread(bind_in_spare)
        self.timings.update({"lo_prepare": time.perf_counter() - t0})
        return self._namespace_setup(
            spare if spare >= 0 else None,
            resolv,
            warnings,
            "127.0.0.1",
            list(self._lo_ports),
            layer=LOOPBACK_ONLY_LAYER,
            init_netns=spare < 0,
        )

    def _prepare_loopback_here(self) -> NetSetup:
        """The namespace made here, before the fork (no launcher's init to make it: a
        NetworkSession used on its own, as the tests of this layer use it)."""
        from sandbox.net import rtnl

        t0 = time.perf_counter()
        policy = self.policy
        warnings: list[str] = []
        resolv = shared_resolv_conf()
        forwarder = _forwarder(policy, self._warn)
        loop_ports = forwarder.wanted()  # the host's listeners: read here, in landgate's namespace
        upstream = _upstream(self._upstream, warnings)
        dns = _dns_view(self, upstream)

        def inside(_fd: int) -> None:
            # The thread that made the namespace: lo up, then every socket that must
            # live here (the forwarder's listeners, the DNS view's) is made here.
            with rtnl.Rtnl() as inner:
                inner.batch([rtnl.link_up("lo")])
            _bind_inside(dns, forwarder, loop_ports)

        try:
            self._fd, _ = nsmod.create_netns(inside, new_devices=False)
        except NetSetupError:
            forwarder.close()
            dns.close()
            raise
        self._loopback = forwarder
        self._dns = dns
        forwarder.set_netns(self._fd)
        dns.start()
        forwarder.start()
        self.timings.update({"lo_total": time.perf_counter() - t0})
        return self._namespace_setup(
            self._fd, resolv, warnings, "127.0.0.1", forwarder.ports, layer=LOOPBACK_ONLY_LAYER
        )

    def _attach_loopback_only(self, netns_pidfd: int) -> None:
        """Join init's namespace (its pidfd: init is landgate's unreaped child, so the
        pidfd cannot name another process), or the spare one init joined (self._fd), bind
        there, keep an fd to it, start.  Runs while the supervisor's context is made."""
        t0 = time.perf_counter()
        dns, forwarder = self._dns, self._loopback
        spare = self._fd  # the spare namespace's fd (already ours), else -1
        target = spare if spare >= 0 else netns_pidfd
        if target < 0 or dns is None or forwarder is None:
            raise NetSetupError("loopback-only namespace: no pidfd of the sandbox's init to join")
        ports = self._lo_ports

        def inside() -> int:
            # A thread of its own (netns._in_thread): setns changes only the calling thread,
            # and the sockets made here stay in the sandbox's namespace for their lifetime.
            nsmod._setns(target, nsmod.CLONE_NEWNET)
            _bind_inside(dns, forwarder, ports)
            if spare >= 0:
                return spare
            return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        bound, self._lo_bound = self._lo_bound, None
        self._fd = bound() if bound is not None else nsmod._in_thread(inside)
        forwarder.set_netns(self._fd)
        if self.setup is not None:
            self.setup.forwarded_loopback_ports = forwarder.ports  # the ones bound
        dns.start()
        forwarder.start()
        self.timings["attach"] = time.perf_counter() - t0


class UserLoopbackOnlyRung(UserRung):
    """The same layer on the unprivileged rung: the launcher's LG_NS_NET, no pasta, no nft.

    landgate cannot join the sandbox's namespace itself (it is threaded, and the
    namespace belongs to the sandbox's user namespace), so the namespace helper
    (sandbox/net/nshelper.py) joins it, brings `lo` up, binds the DNS view's and
    the forwarder's sockets there and hands them over a unix socket
    (SCM_RIGHTS).  Without pasta nothing connects the namespace to anything:
    the agent, a non-root uid without capabilities, cannot add a device or a
    route, so every packet to another address fails as on the root rung.  It
    needs no tun device either."""

    def _prepare_userns_lo(self, caps: NetCapabilities) -> NetSetup:
        import socket
        import subprocess
        import sys

        from sandbox.net.rung_user import _cleanup_stale_user_dirs, make_user_dir

        del caps
        policy = self.policy
        warnings: list[str] = []
        _cleanup_stale_user_dirs()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._helper = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    str(Path(__file__).with_name("nshelper.py")),
                    str(os.getpid()),
                    str(theirs.fileno()),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        ours.settimeout(15)
        self._fd_sock = ours
        self._loopback = _forwarder(policy, self._warn, bind_in_netns=self._helper_bind)
        self._lo_ports = self._loopback.wanted()
        upstream = _upstream(self._upstream, warnings)
        self._dns = _dns_view(self, upstream)
        self._user_dir, resolv = make_user_dir(RESOLV_CONF)
        return self._namespace_setup(
            None, resolv, warnings, "127.0.0.1", list(self._lo_ports), layer=LOOPBACK_ONLY_LAYER
        )

    def _helper_sockets(self, req: dict[str, Any]) -> list[tuple[str, str, int, Any]]:
        """Ask the helper for sockets made in the sandbox's namespace; receive them."""
        import json
        import socket

        reply = self._helper_call(req, timeout=15)
        sock = self._fd_sock
        if sock is None:
            raise NetSetupError("namespace helper: no socket to receive on")
        n = int(reply.get("sent", 0))
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, max(n, 1))
        except OSError as exc:
            raise NetSetupError(f"namespace helper: receive sockets: {exc}") from None
        made = [socket.socket(fileno=fd) for fd in fds]
        desc = json.loads(msg or b"[]")
        if len(made) != n or len(desc) != n:
            for s in made:
                s.close()
            raise NetSetupError(f"namespace helper: sent {n} sockets, {len(made)} received")
        return [(d[0], d[1], int(d[2]), s) for d, s in zip(desc, made, strict=True)]

    def _helper_bind(self, bind_all: Any) -> list[tuple[str, int, Any]]:
        """The forwarder's rescan: listeners for new host ports, bound by the helper."""
        del bind_all  # the forwarder's own binder: it cannot run in that namespace
        assert self._loopback is not None
        ports = self._loopback.wanted()
        got = self._helper_sockets({"op": "bind", "ports": ports}) if ports else []
        for _kind, _addr, _port, s in got:
            s.setblocking(False)  # the forwarder accepts in bursts until EAGAIN
        return [(addr, port, s) for _kind, addr, port, s in got]

    def _attach_userns_lo(self, pid: int) -> None:
        t0 = time.perf_counter()
        got = self._helper_sockets(
            {"op": "attach_lo", "pid": pid, "dns_port": 53, "ports": self._lo_ports}
        )
        assert self._dns is not None and self._loopback is not None
        self._dns.adopt([s for kind, _a, _p, s in got if kind == "dns"])
        self._loopback.bind_here_made([(a, p, s) for kind, a, p, s in got if kind == "lo"])
        self._dns.start()
        self._loopback.start()
        self.timings["attach"] = time.perf_counter() - t0
