"""How the DNS view, the nft compiler and the loopback forwarder judge a destination.

They all apply DESIGN §3 through the policy package's own matcher
(`match_destination`), so a name, an address and a port mean here exactly what
they mean in `explain` and in the connect supervisor.  What is specific to the
egress layer is the question asked: "may this *name* be resolved at all, and
for which ports may its addresses then be reached?"  A name is answered when
some port of it could be allowed; a deny without a port (`exfil.test`) or a
default deny with no allow for the name means NXDOMAIN, so a query for a
secret-bearing name never leaves the machine.
"""

from __future__ import annotations

from sandbox.policy.model import Policy, Rule
from sandbox.record import Record, replace


class NameVerdict(Record):
    """What the egress layer does with a host name.

    answer: resolve it (else NXDOMAIN).
    any_port: its addresses may be reached on every port except `deny_ports`;
    otherwise only on `allow_ports`.
    rule: the rule that decided whether the name is answered (None = the default).
    """

    name: str
    answer: bool
    any_port: bool
    allow_ports: frozenset[int]
    deny_ports: frozenset[int]
    rule: Rule | None
    reason: str

    def rule_ref(self, policy: Policy) -> str:
        if self.rule is not None:
            return self.rule.ref()
        block = policy.block("network")
        where = f" ({block.default_source})" if block.default_source else " (implied)"
        return f"default {block.default_effect} of network{where}"


def _network_rules(policy: Policy) -> tuple[Rule, ...]:
    return tuple(r for r in policy.block("network").rules if r.destination is not None)


def judge_name(policy: Policy, name: str) -> NameVerdict:
    """Judge a host name for the DNS view (see the module docstring)."""
    from sandbox.policy.destinations import match_destination

    name = name.lower().rstrip(".")
    allows: list[Rule] = []
    denies: list[Rule] = []
    for rule in _network_rules(policy):
        dest = rule.destination
        assert dest is not None
        if dest.kind in ("unix", "ip", "cidr"):
            continue  # names never match address rules (they are judged by address in nft)
        if not match_destination(replace(dest, port=None), name):
            continue
        (allows if rule.effect == "allow" else denies).append(rule)
    deny_ports = frozenset(r.destination.port for r in denies if r.destination.port is not None)  # type: ignore[union-attr]
    for rule in denies:
        if rule.destination.port is None:  # type: ignore[union-attr]
            return NameVerdict(
                name,
                False,
                False,
                frozenset(),
                deny_ports,
                rule,
                f"denied on every port by {rule.ref()}",
            )
    default_allow = policy.block("network").default_effect == "allow"
    if not allows:
        if default_allow:
            return NameVerdict(
                name,
                True,
                True,
                frozenset(),
                deny_ports,
                None,
                "no rule names it; the default allows",
            )
        return NameVerdict(
            name,
            False,
            False,
            frozenset(),
            deny_ports,
            None,
            "no allow rule names it; the default denies",
        )
    any_port_allow = next((r for r in allows if r.destination.port is None), None)  # type: ignore[union-attr]
    if any_port_allow is not None:
        return NameVerdict(
            name,
            True,
            True,
            frozenset(),
            deny_ports,
            any_port_allow,
            f"allowed by {any_port_allow.ref()}",
        )
    ports = (
        frozenset(
            r.destination.port
            for r in allows
            if r.destination is not None and r.destination.port is not None
        )
        - deny_ports
    )
    if default_allow:
        return NameVerdict(
            name,
            True,
            True,
            frozenset(),
            deny_ports,
            allows[0],
            "allowed on every port but the denied ones (default allow)",
        )
    if not ports:
        return NameVerdict(
            name,
            False,
            False,
            frozenset(),
            deny_ports,
            denies[0],
            f"every allowed port is denied by {denies[0].ref()}",
        )
    return NameVerdict(
        name,
        True,
        False,
        ports,
        deny_ports,
        allows[0],
        f"allowed on port(s) {', '.join(map(str, sorted(ports)))}",
    )


def target_allowed(
    policy: Policy, target: str, names: tuple[str, ...] = ()
) -> tuple[bool, Rule | None]:
    """DESIGN §3 for one concrete target (deny wins, then allow, then the default)."""
    from sandbox.policy.destinations import match_destination

    allow: Rule | None = None
    for rule in _network_rules(policy):
        assert rule.destination is not None
        if not match_destination(rule.destination, target, names):
            continue
        if rule.effect == "deny":
            return False, rule
        if allow is None:
            allow = rule
    if allow is not None:
        return True, allow
    return policy.block("network").default_effect == "allow", None


def reaches_outside(policy: Policy) -> bool:
    """Whether some packet the policy allows could leave the sandbox's own namespace.

    False when the network block's default denies and every allow rule names
    only the loopback (`localhost`, a loopback address or CIDR) or a unix
    socket: such a sandbox needs no route out at all.  Its allowed host
    loopback ports are reached through the loopback forwarder (listeners
    inside its namespace, no veth), unix sockets through the filesystem, and
    its DNS view can listen on its own loopback.  Deny rules never add reach.

    A `localhost` rule also covers names under `.localhost`; with no route out,
    an upstream answer mapping such a name to a non-loopback address is
    unreachable (stricter than the full layer, never weaker).
    """
    block = policy.block("network")
    if block.default_effect == "allow":
        return True
    for rule in block.rules:
        dest = rule.destination
        if rule.effect != "allow" or dest is None:
            continue
        if dest.kind in ("localhost", "unix"):
            continue
        if dest.kind in ("ip", "cidr") and dest.network is not None and dest.network.is_loopback:
            continue
        return True
    return False
