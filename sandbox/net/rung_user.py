"""The unprivileged rung: a user + network namespace made by the launcher, pasta, and the
ruleset inside the sandbox's namespace (set by sandbox/net/nshelper.py)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from sandbox.host.dashboards import dashboard_ports
from sandbox.host.network import (
    NetCapabilities,
    host_default_routes,
)
from sandbox.net import netns as nsmod
from sandbox.net.dnsview import DnsView, Upstream, upstream_from_resolv_conf
from sandbox.net.netns import NetSetupError
from sandbox.net.setup import NetSetup, _loopback_ports, _NetState, _SetFeeder
from sandbox.plan.names import judge_name, target_allowed

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    # the unprivileged rung's helper; imported where it is started


class UserRung(_NetState):
    def _prepare_userns(self, caps: NetCapabilities) -> NetSetup:
        """Before fork: the DNS view on host loopback, the resolv.conf, the helper process.

        The namespace itself is made by the launcher (LG_NS_NET); attach()
        configures it.  The helper is started here so that its interpreter
        start-up overlaps the spawn."""
        import subprocess

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
        ui_ports = dashboard_ports()  # a `landgate ui` dashboard: never forwarded
        ports = sorted(
            p
            for p in wanted
            if p != 53 and p not in ui_ports and target_allowed(policy, f"127.0.0.1:{p}")[0]
        )
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

        self._user_dir, resolv = make_user_dir(
            "# landgate DNS view (through pasta)\nnameserver 127.0.0.1\n"
            "options edns0 timeout:2 attempts:2\n"
        )
        if not ipv6:
            warnings.append("this host has no IPv6 default route: the DNS view answers no AAAA")
        return self._namespace_setup(
            None,
            resolv,
            warnings,
            "127.0.0.1",
            ports,
            ruleset,
            layer="user + network namespace (pasta) + nftables + DNS view",
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


class _HelperNft:
    """The DNS view's set updates, run by the helper inside the sandbox's namespace."""

    def __init__(self, session: UserRung) -> None:
        self._session = session

    def run(self, batch: dict[str, Any]) -> None:
        self._session._helper_call({"op": "nft", "batch": batch}, timeout=5)


def make_user_dir(resolv_conf: str) -> tuple[str, Path]:
    """The unprivileged rungs' own directory (the resolv.conf the sandbox sees through a
    bind): made by this call, readable by the sandbox's mapped uid (0755), stamped with
    this process's pid and start time so _cleanup_stale_user_dirs can tell a killed
    run's directory from a live one.  Returns the directory and its resolv.conf."""
    import tempfile

    user_dir = tempfile.mkdtemp(prefix=f"landgate-net-{os.getpid()}-")
    os.chmod(user_dir, 0o755)
    Path(user_dir, "owner").write_text(f"{os.getpid()} {nsmod.process_start_time(os.getpid())}\n")
    resolv = Path(user_dir, "resolv.conf")
    resolv.write_text(resolv_conf)
    resolv.chmod(0o644)
    return user_dir, resolv


def _cleanup_stale_user_dirs() -> None:
    """resolv.conf directories of unprivileged runs that were killed (SIGKILL)."""
    import shutil
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
