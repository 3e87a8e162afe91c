"""The egress layer's host facts: which network rung this machine offers (DESIGN §4).

Probed here, below the planner, so that `plan`, `doctor` and the network
session read the same answer without the planner importing sandbox.net.
Rungs: "netns" (root: veth + NAT, rules on the host side), "userns" (any user
with unprivileged user namespaces and pasta), "connect-only" (neither).
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.errors import LaunchError
from sandbox.host.fsutil import which
from sandbox.host.probe import tun_device_problem
from sandbox.record import Record


def read_sysctl(path: str) -> str | None:
    try:
        return Path("/proc/sys", path).read_text().strip()
    except OSError:
        return None


# typing costs ~2 ms at import (issue 19); annotations are never evaluated
# (`from __future__ import annotations`): the checker sees the Literal alias, run time `str`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    NetRung = Literal["netns", "userns", "connect-only"]
else:
    NetRung = str

CONNECT_ONLY_WARNING = (
    "no network namespace on this host: connect() decisions only, host names pinned at launch; "
    "UDP and DNS exfiltration are NOT contained on this rung"
)
USERNS_NOTE = (
    "unprivileged rung: the sandbox has its own user + network namespace, connected by pasta; "
    "every packet it sends meets the nftables ruleset on that namespace's output hook and DNS "
    "goes only to the DNS view.  The ruleset lives in a namespace owned by the sandbox's user "
    "namespace: the agent cannot change it without capabilities, which it does not have "
    "(non-root uid, bounding set dropped, no_new_privs).  Host loopback ports are forwarded as "
    "allowed at launch (a host listener that appears later under `localhost:*` is not)"
)
USERNS_LO_NOTE = (
    "unprivileged rung: the sandbox has its own user + network namespace with only its "
    "loopback (the policy reaches nothing outside: no pasta, no route out)"
)

# The layer (either namespace rung) for a policy that reaches nothing outside the sandbox
# (sandbox.plan.names.reaches_outside; built by sandbox/net/rung_lo.py).
LOOPBACK_ONLY_LAYER = "loopback-only network namespace + DNS view"
LOOPBACK_ONLY_DETAIL = (
    "the policy reaches nothing outside the sandbox: its namespace has no device but its own "
    "loopback and no route out, so every packet to another address fails in the kernel "
    "(ENETUNREACH) - no veth, no nftables; DNS answers only allowed names"
)


class NetCapabilities(Record):
    """What this host allows the egress layer to do; `doctor` prints it."""

    root: bool
    netns: bool  # a namespace + veth + nft can be made as this user (root rung)
    nft: bool
    nft_reason: str | None
    userns: bool  # unprivileged user namespaces are enabled
    pasta: str | None
    ipv6: bool  # IPv6 egress can be forwarded (forwarding on, or per-device force_forwarding)
    rung: NetRung
    notes: tuple[str, ...] = ()

    @property
    def enforced(self) -> bool:
        """Every packet the sandbox sends is judged (a namespace rung, not connect-only)."""
        return self.rung != "connect-only"

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "netns": self.netns,
            "nft": self.nft,
            "nft_reason": self.nft_reason,
            "userns": self.userns,
            "pasta": self.pasta,
            "ipv6": self.ipv6,
            "rung": self.rung,
            "notes": list(self.notes),
        }


def _has_caps(*bits: int) -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                eff = int(line.split()[1], 16)
                return all(eff >> b & 1 for b in bits)
    except OSError:
        pass
    return False


CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


def _ipv6_forwardable() -> bool:
    if read_sysctl("net/ipv6/conf/all/forwarding") == "1":
        return True
    # 6.17: per-interface net.ipv6.conf.<dev>.force_forwarding.
    return read_sysctl("net/ipv6/conf/all/force_forwarding") is not None


def network_capabilities(nft: bool = True) -> NetCapabilities:
    """This host's network rung (not cached: the tun device's mode may change between runs).

    nft=False: for a policy that reaches nothing outside the sandbox (the
    loopback-only namespace, which loads no ruleset), nftables is not probed
    and the root rung needs only the privileges to make a namespace."""
    root = os.geteuid() == 0
    privileged = root and _has_caps(CAP_NET_ADMIN, CAP_SYS_ADMIN)
    nft_ok, nft_reason = False, None
    if privileged and not nft:
        nft_reason = "not probed: a loopback-only namespace loads no ruleset"
    elif privileged:
        try:
            from sandbox.host.nftables import table_names

            # The kernel side (nfnetlink checks CAP_NET_ADMIN): the root rung loads its
            # ruleset over netlink itself, no libnftables (sandbox/host/nftnl.py).
            table_names()
            nft_ok = True
        except LaunchError as exc:
            nft_reason = str(exc)
    else:
        nft_reason = "needs CAP_NET_ADMIN in landgate's namespace (root)"
    userns = read_sysctl("user/max_user_namespaces") not in (None, "0") and read_sysctl(
        "kernel/unprivileged_userns_clone"
    ) in (None, "1")
    notes: list[str] = []
    netns_ok = privileged and (nft_ok or not nft) and Path("/proc/sys/net/ipv4/conf").is_dir()
    pasta = which("pasta", os.environ.get("PATH", os.defpath))
    rung: NetRung = "netns" if netns_ok else "connect-only"
    ipv6 = _ipv6_forwardable()
    if not netns_ok:
        missing = _userns_rung_missing(userns, pasta, connected=nft)
        if not missing:
            rung = "userns"
            ipv6 = "6" in host_default_routes()
            notes.append(USERNS_NOTE if nft else USERNS_LO_NOTE)
        else:
            notes.append(CONNECT_ONLY_WARNING)
            notes.append(
                f"the unprivileged rung (user + network namespace with pasta) is not "
                f"available: {missing}"
            )
    if rung != "connect-only" and not ipv6 and nft:
        notes.append("IPv6 egress is not forwarded on this host: the DNS view answers no AAAA")
    return NetCapabilities(
        root=root,
        netns=netns_ok,
        nft=nft_ok,
        nft_reason=nft_reason,
        userns=userns,
        pasta=pasta,
        ipv6=ipv6,
        rung=rung,
        notes=tuple(notes),
    )


def host_default_routes() -> set[str]:
    """Address families ("4", "6") with a default route in landgate's namespace.

    pasta copies the host's addresses and default routes into the sandbox's
    namespace; without one it has nothing to configure."""
    have: set[str] = set()
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            f = line.split()
            if len(f) > 7 and f[1] == "00000000" and f[7] == "00000000":
                have.add("4")
    except OSError:
        pass
    try:
        for line in Path("/proc/net/ipv6_route").read_text().splitlines():
            f = line.split()
            if len(f) >= 10 and f[0] == "0" * 32 and f[1] == "00" and f[9] != "lo":
                have.add("6")
    except OSError:
        pass
    return have


def _userns_rung_missing(userns: bool, pasta: str | None, connected: bool = True) -> str | None:
    """Why the unprivileged rung cannot run here, or None.

    connected=False: the loopback-only namespace (a policy that reaches nothing
    outside), which needs no pasta, tun device, nftables or default route."""
    if not userns:
        return (
            "unprivileged user namespaces are disabled (user.max_user_namespaces / "
            "kernel.unprivileged_userns_clone)"
        )
    if not connected:
        return None
    if pasta is None:
        return "pasta is not installed (Debian: passt)"
    tun = tun_device_problem()
    if tun is not None:
        return tun
    try:
        from sandbox.host.nftables import _load

        _load()
    except LaunchError as exc:
        return str(exc)
    if not host_default_routes():
        return "this host has no default route for pasta to copy"
    return None
