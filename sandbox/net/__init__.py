"""The egress layer: network namespace, veth + NAT, nftables ruleset, DNS view.

caps = network_capabilities()
ns = NetworkSession(policy, on_event=..., names_sink=..., warn=...)
setup = ns.prepare()   # before fork
ns.attach(child_pid)   # after fork
ns.close()             # after the agent's tree exited (idempotent)
cleanup_stale()        # leftovers of killed runs (prepare() calls it too)
"""

from __future__ import annotations

from sandbox.host.network import CONNECT_ONLY_WARNING, NetCapabilities, network_capabilities
from sandbox.net.cleanup import cleanup_stale
from sandbox.net.session import NetworkSession
from sandbox.net.setup import NetSetup

__all__ = [
    "CONNECT_ONLY_WARNING",
    "NetCapabilities",
    "NetSetup",
    "NetworkSession",
    "cleanup_stale",
    "network_capabilities",
]
