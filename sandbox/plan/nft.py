"""Compile a policy's network block into one nftables ruleset (nftables JSON).

The JSON is the plan's one form: `landgate plan` renders it (nft_text.py), the root
rung translates it to netlink messages (sandbox/host/nftnl.py), the unprivileged rung's
helper hands it to libnftables inside the sandbox's namespace (sandbox/net/nshelper.py).

Where the rules live: in landgate's own (host) network namespace, on the
host-side end of the sandbox's veth pair, never inside the sandbox's namespace.
An agent that is root inside its namespace could flush a ruleset there; it
cannot touch one outside.  Every packet the sandbox sends leaves through that
interface, to the host itself (hook `input`) or beyond it (hook `forward`),
and both hooks send it through the same `egress` chain:

  1. established/related traffic passes (replies, ICMP errors);
  2. DNS (udp/tcp 53) to the DNS view passes; DNS to anywhere else is refused,
     so a denied name cannot be resolved through a resolver the policy allows;
  3. literal IP/CIDR denies, then the `deny4/deny6` sets (`addr . port`, fed by
     the DNS view for names allowed on some ports but denied on others) reject;
  4. the DNS view's allow sets (`allowany4/6`: any port; `allow4/6`:
     `addr . port`) accept, with per-element timeouts;
  5. literal IP/CIDR allows accept;
  6. the block's default: accept, or reject.

The unprivileged rung (NftTopology.hook == "output") has no host side to
anchor on: landgate cannot add rules to its own namespace without
CAP_NET_ADMIN.  The same `egress` chain is loaded *inside* the sandbox's
namespace instead, on the `output` hook (every packet the sandbox sends,
loopback excepted: its loopback is its own, and the DNS view and the allowed
host loopback ports are reached through pasta's listeners there).  That
namespace belongs to the sandbox's user namespace; the agent runs there as a
non-root uid with its capability bounding set dropped and no_new_privs, so it
holds no CAP_NET_ADMIN over it and cannot change the ruleset (seccomp also
refuses it new user namespaces, setns and the mount family).

A refusal is never a silent drop: TCP gets a reset (the connect fails at once
with ECONNREFUSED), everything else an ICMP(v6) port-unreachable (a connected
UDP socket sees ECONNREFUSED).  `localhost` rules are not here: the sandbox's
loopback is its own, and allowed host loopback ports are reached through the
loopback forwarder (sandbox/net/loopback.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.plan.nft_text import render_nft_text
from sandbox.policy.model import Policy, Rule
from sandbox.record import Record

SETS = ("allow4", "allow6", "allowany4", "allowany6", "deny4", "deny6")
DEFAULT_TTL = 300  # seconds, for names pinned at launch


class NftTopology(Record):
    """Where the ruleset is anchored; placeholders for `landgate plan`."""

    table: str = "landgate-PID-N"
    host_if: str = "lgPIDhN"
    sandbox4: str | None = None  # the sandbox's address, masqueraded on the way out
    sandbox6: str | None = None
    view4: str | None = None  # the DNS view's listening address
    view6: str | None = None
    hook: str = (
        "veth"  # "veth": host-side input/forward (root rung); "output": in the sandbox's netns
    )


def _m(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(proto: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": proto, "field": field}}


_TH_DPORT = _payload("th", "dport")
_PORT_PROTOS = _m({"meta": {"key": "l4proto"}}, {"set": ["tcp", "udp"]})


def _addr_match(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> dict[str, Any]:
    proto = "ip" if net.version == 4 else "ip6"
    right: Any
    if net.prefixlen == net.max_prefixlen:
        right = str(net.network_address)
    else:
        right = {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    return _m(_payload(proto, "daddr"), right)


def _literal_rule(rule: Rule) -> list[dict[str, Any]] | None:
    """Match expressions for an address (or `*`) rule; None for rules nft does not see."""
    dest = rule.destination
    if dest is None or dest.kind not in ("ip", "cidr", "any"):
        return None
    exprs: list[dict[str, Any]] = []
    if dest.kind != "any":
        assert dest.network is not None
        exprs.append(_addr_match(dest.network))
    if dest.port is not None:
        # th dport only means something for tcp/udp: on ICMP it would read the checksum.
        exprs += [_PORT_PROTOS, _m(_TH_DPORT, dest.port)]
    return exprs


def _elem(val: Any, timeout: int) -> dict[str, Any]:
    return {"elem": {"val": val, "timeout": int(timeout)}}


def set_elements(
    ip: str,
    verdict_any_port: bool,
    allow_ports: Sequence[int],
    deny_ports: Sequence[int],
    timeout: int,
) -> dict[str, list[dict[str, Any]]]:
    """The set elements that let one resolved address through: {set name: [elements]}."""
    v = ipaddress.ip_address(ip).version
    suffix = "4" if v == 4 else "6"
    out: dict[str, list[dict[str, Any]]] = {}
    if verdict_any_port:
        out["allowany" + suffix] = [_elem(ip, timeout)]
        if deny_ports:
            out["deny" + suffix] = [_elem({"concat": [ip, p]}, timeout) for p in sorted(deny_ports)]
    elif allow_ports:
        out["allow" + suffix] = [_elem({"concat": [ip, p]}, timeout) for p in sorted(allow_ports)]
    return out


def add_elements_batch(table: str, elements: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One atomic batch adding elements (re-adding refreshes a timeout on 6.x kernels)."""
    cmds = [
        {"add": {"element": {"family": "inet", "table": table, "name": name, "elem": elems}}}
        for name, elems in elements.items()
        if elems
    ]
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *cmds]}


def compile_nft_ruleset(
    policy: Policy,
    pinned: Mapping[str, Sequence[str]] | None = None,
    topology: NftTopology | None = None,
) -> dict[str, Any]:
    """The whole ruleset as one nftables JSON batch (creates its table; see below).

    `pinned` maps host names to addresses resolved at launch; they enter the
    sets with a default timeout, judged exactly as the DNS view would judge them.
    """
    from sandbox.plan.names import judge_name

    topo = topology or NftTopology()
    t = topo.table
    fam = "inet"
    cmds: list[dict[str, Any]] = [{"metainfo": {"json_schema_version": 1}}]

    def add(kind: str, **obj: Any) -> None:
        cmds.append({"add": {kind: {"family": fam, "table": t, **obj}}})

    def rule(chain: str, *exprs: dict[str, Any], comment: str | None = None) -> None:
        r: dict[str, Any] = {"chain": chain, "expr": list(exprs)}
        if comment:
            r["comment"] = comment[:128]
        add("rule", **r)

    # create, not add: a leftover table of the same name (a killed run's, under a reused
    # pid) fails the whole batch (EEXIST) instead of being merged with; the loader then
    # deletes it and loads again.
    cmds.append({"create": {"table": {"family": fam, "name": t}}})
    for name in SETS:
        addr = "ipv4_addr" if name.endswith("4") else "ipv6_addr"
        typ: Any = addr if name.startswith("allowany") else [addr, "inet_service"]
        add("set", name=name, type=typ, flags=["timeout"])

    add("chain", name="refuse")
    add("chain", name="egress")
    # refuse: never a silent drop.
    rule(
        "refuse",
        _m({"meta": {"key": "l4proto"}}, "tcp"),
        counter_expr(),
        {"reject": {"type": "tcp reset"}},
    )
    rule("refuse", counter_expr(), {"reject": {"type": "icmpx", "expr": "port-unreachable"}})
    if topo.hook == "output":
        add("chain", name="output", type="filter", hook="output", prio=0, policy="accept")
        rule(
            "output",
            _m({"meta": {"key": "oifname"}}, "lo"),
            {"accept": None},
            comment="the sandbox's own loopback (pasta's listeners: the DNS view, host ports)",
        )
        # IPv6 neighbour discovery must pass or the gateway never resolves.
        rule(
            "output",
            _m(
                _payload("icmpv6", "type"),
                {"set": ["nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-solicit"]},
            ),
            {"accept": None},
        )
        rule("output", {"jump": {"target": "egress"}})
    else:
        _veth_chains(add, rule, topo)
    _egress_rules(rule, policy, topo)
    for name, addrs in sorted((pinned or {}).items()):
        verdict = judge_name(policy, name)
        if not verdict.answer:
            continue
        for ip in addrs:
            for set_name, elems in set_elements(
                ip,
                verdict.any_port,
                sorted(verdict.allow_ports),
                sorted(verdict.deny_ports),
                DEFAULT_TTL,
            ).items():
                add("element", name=set_name, elem=elems)
    return {"nftables": cmds}


def counter_expr() -> dict[str, Any]:
    return {"counter": None}


def _veth_chains(add: Any, rule: Any, topo: NftTopology) -> None:
    """The root rung's hooks on the host end of the veth (see the module docstring)."""
    add("chain", name="input", type="filter", hook="input", prio=0, policy="accept")
    add("chain", name="forward", type="filter", hook="forward", prio=0, policy="accept")
    add("chain", name="postrouting", type="nat", hook="postrouting", prio=100, policy="accept")

    iif = _m({"meta": {"key": "iifname"}}, topo.host_if)
    oif = _m({"meta": {"key": "oifname"}}, topo.host_if)

    # input: the sandbox talking to the host itself.  IPv6 neighbour discovery
    # must pass or the veth's IPv6 link never resolves.
    rule(
        "input",
        iif,
        _m(_payload("icmpv6", "type"), {"set": ["nd-neighbor-solicit", "nd-neighbor-advert"]}),
        {"accept": None},
    )
    rule("input", iif, {"jump": {"target": "egress"}})
    # forward: the sandbox talking to the world, and nothing unsolicited back in.
    rule("forward", iif, {"jump": {"target": "egress"}})
    rule(
        "forward",
        oif,
        _m({"ct": {"key": "state"}}, ["established", "related"], op="in"),
        {"accept": None},
    )
    rule(
        "forward",
        oif,
        {"goto": {"target": "refuse"}},
        comment="unsolicited traffic into the sandbox",
    )
    if topo.sandbox4:
        rule(
            "postrouting",
            _m(_payload("ip", "saddr"), topo.sandbox4),
            _m({"meta": {"key": "oifname"}}, topo.host_if, op="!="),
            {"masquerade": None},
        )
    if topo.sandbox6:
        rule(
            "postrouting",
            _m(_payload("ip6", "saddr"), topo.sandbox6),
            _m({"meta": {"key": "oifname"}}, topo.host_if, op="!="),
            {"masquerade": None},
        )


def _egress_rules(rule: Any, policy: Policy, topo: NftTopology) -> None:
    # egress, in the order of the module docstring.
    rule(
        "egress",
        _m({"ct": {"key": "state"}}, ["established", "related"], op="in"),
        {"accept": None},
    )
    dns = [_m({"meta": {"key": "l4proto"}}, {"set": ["tcp", "udp"]}), _m(_TH_DPORT, 53)]
    for view, proto in ((topo.view4, "ip"), (topo.view6, "ip6")):
        if view:
            rule(
                "egress",
                _m(_payload(proto, "daddr"), view),
                *dns,
                {"accept": None},
                comment="the DNS view",
            )
    rule("egress", *dns, {"goto": {"target": "refuse"}}, comment="DNS only through the DNS view")

    block = policy.block("network")
    literal_denies = [r for r in block.rules if r.effect == "deny" and _literal_rule(r) is not None]
    literal_allows = [
        r for r in block.rules if r.effect == "allow" and _literal_rule(r) is not None
    ]
    for r in literal_denies:
        rule(
            "egress",
            *(_literal_rule(r) or []),
            {"goto": {"target": "refuse"}},
            comment=f"deny {r.pattern} ({r.ref()})",
        )
    for v, proto in (("4", "ip"), ("6", "ip6")):
        rule(
            "egress",
            _PORT_PROTOS,
            _m({"concat": [_payload(proto, "daddr"), _TH_DPORT]}, "@deny" + v),
            {"goto": {"target": "refuse"}},
            comment="names denied on these ports",
        )
    for v, proto in (("4", "ip"), ("6", "ip6")):
        rule(
            "egress",
            _m(_payload(proto, "daddr"), "@allowany" + v),
            {"accept": None},
            comment="names allowed on every port",
        )
        rule(
            "egress",
            _PORT_PROTOS,
            _m({"concat": [_payload(proto, "daddr"), _TH_DPORT]}, "@allow" + v),
            {"accept": None},
            comment="names allowed on these ports",
        )
    for r in literal_allows:
        rule(
            "egress",
            *(_literal_rule(r) or []),
            {"accept": None},
            comment=f"allow {r.pattern} ({r.ref()})",
        )
    if block.default_effect == "allow":
        rule("egress", {"accept": None}, comment="default allow")
    else:
        rule("egress", {"goto": {"target": "refuse"}}, comment="default deny")


def nft_plan_section(policy: Policy) -> dict[str, Any]:
    """The `nft` section of `landgate plan`: the rung this host gives, the ruleset and its text.

    Anchored on placeholders (table landgate-PID-N, interface lgPIDhN): the real
    names and addresses are chosen per session.
    """
    from sandbox.host.network import LOOPBACK_ONLY_DETAIL, network_capabilities
    from sandbox.plan.names import reaches_outside

    outside = reaches_outside(policy)
    caps = network_capabilities(nft=outside)
    if caps.rung in ("netns", "userns") and not outside:
        # The loopback-only namespace (sandbox/net/rung_lo.py) loads no ruleset at all.
        return {
            "rung": caps.rung,
            "notes": [LOOPBACK_ONLY_DETAIL],
            "ruleset": {"nftables": []},
            "text": "# no ruleset: " + LOOPBACK_ONLY_DETAIL + "\n",
        }
    topo = NftTopology(hook="output") if caps.rung == "userns" else None
    ruleset = compile_nft_ruleset(policy, None, topo)
    return {
        "rung": caps.rung,
        "notes": list(caps.notes),
        "ruleset": ruleset,
        "text": render_nft_text(ruleset),
    }
