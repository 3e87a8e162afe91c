"""The one decision function: `decide(policy, action, target, context)`.

Every layer that decides in Python (explain, simulation, the supervisor's
slow path, the audit trail's `suggest`) calls this, and the planner compiles
the same patterns (sandbox.policy.patterns) into kernel rules, so the answer
is the same everywhere (DESIGN §3):

  1. a matching `deny` wins over any `allow` (forbid overrides permit);
  2. else a matching `allow` allows;
  3. else the block's defaultEffect (missing = deny).

One refinement (DESIGN §2): a protected-path deny yields to a policy `allow`
that names that exact path (a glob-free pattern equal to the path, or a
glob-free directory pattern that is itself the protected directory).  The key
directory's rules never yield (`Rule.overridable` False).

Speed: each policy gets a compiled index on first use (stored in
`policy.cache`): per action, the rules with their pre-compiled matchers.
A decision is one pass over its block's rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.errors import UsageError
from sandbox.policy import compiled as _c
from sandbox.policy import judge as _j
from sandbox.policy.destinations import NetTarget, match_destination, parse_target
from sandbox.policy.model import ACTIONS, Decision, DecisionContext, Destination, Policy, Rule
from sandbox.policy.patterns import command_line, has_glob, normalize_path, split_command
from sandbox.record import Record, replace

Target = str | Sequence[str]

NO_MATCH = "no match"


class _NetIndex(Record):
    """The network block's rules, indexed once per policy (cached in policy.cache):
    candidates by exact host, by wildcard suffix (".npmjs.org"), unix rules, and
    address-like rules (ip, cidr, localhost, any) always checked."""

    rules: tuple[Rule, ...]
    hosts: dict[str, tuple[int, ...]]
    suffixes: dict[str, tuple[int, ...]]
    unix: tuple[int, ...]
    addr: tuple[int, ...]
    # for rules with a port, the same destination without one (to explain a port miss)
    portless: tuple[Destination | None, ...]


def _net_index(policy: Policy) -> _NetIndex:
    got = policy.cache.get("evaluate.net")
    if isinstance(got, _NetIndex):
        return got
    rules = _c.ordered(policy.blocks["network"].rules)
    hosts: dict[str, list[int]] = {}
    suffixes: dict[str, list[int]] = {}
    unix: list[int] = []
    addr: list[int] = []
    portless: list[Destination | None] = []
    for i, r in enumerate(rules):
        d = r.destination
        assert d is not None
        portless.append(replace(d, port=None) if d.port is not None and d.kind != "unix" else None)
        if d.kind == "host" and d.host:
            hosts.setdefault(d.host, []).append(i)
        elif d.kind == "wildcard" and d.host:
            suffixes.setdefault(d.host[1:], []).append(i)
        elif d.kind == "unix":
            unix.append(i)
        else:
            addr.append(i)
    index = _NetIndex(
        rules,
        {k: tuple(v) for k, v in hosts.items()},
        {k: tuple(v) for k, v in suffixes.items()},
        tuple(unix),
        tuple(addr),
        tuple(portless),
    )
    policy.cache["evaluate.net"] = index
    return index


def _net_candidates(comp: _NetIndex, t: NetTarget, names: tuple[str, ...]) -> list[int]:
    """Rules that may match `t` regardless of port, found by index instead of a full scan."""
    if t.unix is not None:
        return list(comp.unix)
    cand: set[int] = set(comp.addr)
    for raw in (t.host,) if t.host is not None else names:
        if not raw:
            continue
        name = raw.lower().rstrip(".")
        cand.update(comp.hosts.get(name, ()))
        dot = name.find(".")
        while dot >= 0:
            cand.update(comp.suffixes.get(name[dot:], ()))
            dot = name.find(".", dot + 1)
    return sorted(cand)


# ---------------------------------------------------------------------------
# explanations


def short_ref(rule: Rule) -> str:
    """'rule 3 (*/.env)', 'baseline rule 7 (/etc/shadow)'."""
    prefix = "rule" if rule.origin == "policy" else f"{rule.origin} rule"
    return f"{prefix} {rule.index} ({rule.pattern})"


def describe_pattern(rule: Rule) -> str:
    """What a rule's pattern means, in words ("a file named .env at any depth")."""
    p = rule.path
    if p is not None:
        if not p.anchored:
            if "/" not in p.glob and not has_glob(p.glob):
                return (
                    f"a directory named {p.glob} at any depth and everything beneath it"
                    if p.directory
                    else f"anything named {p.glob} at any depth"
                )
            if "/" not in p.glob:
                return (
                    f"a directory matching {p.glob} at any depth and everything beneath it"
                    if p.directory
                    else f"anything named like {p.glob} at any depth"
                )
            if p.glob.startswith("*/") and "/" not in p.glob[2:] and not has_glob(p.glob[2:]):
                # SafeClaw's `*/.env`: the name inside some directory, i.e. at any depth
                return f"anything named {p.glob[2:]} at any depth"
            return f"paths ending in {p.glob}{'/ and beneath' if p.directory else ''}, at any depth"
        if p.directory:
            return f"the directory {p.glob} and everything beneath it"
        if has_glob(p.glob):
            return f"paths matching {p.glob}"
        return f"the path {p.glob}"
    c = rule.command
    if c is not None:
        extra = (
            "" if rule.inherit or rule.effect == "deny" else " (descendants need their own allow)"
        )
        if has_glob(c.glob):
            return f"command lines matching {c.glob!r}{extra}"
        return f"exactly the command line {c.glob!r}{extra}"
    d = rule.destination
    if d is not None:
        port = "any port" if d.port is None else f"port {d.port}"
        if d.kind == "unix":
            return f"unix sockets matching {d.unix_glob}"
        if d.kind == "any":
            return f"any host, {port}"
        if d.kind == "localhost":
            return f"the loopback (127.0.0.0/8, ::1), {port}"
        if d.kind == "wildcard":
            return f"subdomains of {d.host[2:] if d.host else '?'}, {port}"
        if d.kind in ("ip", "cidr"):
            return f"addresses in {d.network}, {port}"
        return f"the host {d.host}, {port}"
    return rule.pattern


def _default_reason(policy: Policy, action: str) -> str:
    block = policy.blocks[action]
    if action not in policy.declared_actions:
        return f"no rule matches, and the policy has no {action} block: implied deny"
    if block.default_source is None:
        return "no rule matches; the block has no defaultEffect, so deny"
    return f"no rule matches; the block's defaultEffect is {block.default_effect}"


def _conclude(
    policy: Policy,
    action: str,
    target: str,
    rules: Sequence[Rule],
    hits: list[int],
    reasons: dict[int, str],
    what: str,
    deny_i: int | None = None,
    allow_i: int = -1,
) -> Decision:
    """Explain the decision over the matching rules (`hits`, indices into `rules` in order).

    `deny_i` is the deny the C judge found deciding (-1: none); None: the first deny hit.
    A deny hit before it (or any, when none decides) was a protected path that a policy
    allow naming this exact path overrode (csrc/judge_path.c)."""
    if deny_i is None:
        deny_i = next((i for i in hits if rules[i].effect == "deny"), -1)
    first_allow = (
        allow_i if allow_i >= 0 else next((i for i in hits if rules[i].effect == "allow"), -1)
    )
    overridden = [
        i for i in hits if rules[i].effect == "deny" and i != deny_i and (deny_i < 0 or i < deny_i)
    ]
    by = next(
        (rules[i] for i in hits if rules[i].effect == "allow" and not has_glob(rules[i].pattern)),
        None,
    )
    deciding: Rule | None = None
    if deny_i >= 0:
        effect, deciding = "deny", rules[deny_i]
        why = f"{what} matches {describe_pattern(deciding)}"
        if deciding.origin == "protected":
            why += (
                "; a protected path (only an allow naming this exact path overrides it)"
                if deciding.overridable
                else "; a protected path no policy rule can open"
            )
        if first_allow >= 0:
            why += "; an explicit deny wins over any allow"
    elif first_allow >= 0:
        effect, deciding, deny_i = "allow", rules[first_allow], first_allow
        why = f"{what} matches {describe_pattern(deciding)}, and no deny rule matches"
        if overridden and by is not None:
            why += (
                f" ({short_ref(rules[overridden[0]])} protects it, but {short_ref(by)}"
                " names this exact path)"
            )
    else:
        effect = policy.blocks[action].default_effect
        why = _default_reason(policy, action)
    considered = [(r, NO_MATCH) for r in rules]
    for i, reason in reasons.items():
        considered[i] = (rules[i], reason)
    for i in hits:
        r = rules[i]
        if i in overridden:
            considered[i] = (r, "matched, but a policy allow names this exact path")
        elif deciding is None:
            considered[i] = (r, "matched")
        elif r.effect == deciding.effect:
            considered[i] = (r, f"matched too; {short_ref(deciding)} decided first")
        else:
            considered[i] = (
                r,
                f"matched, but deny {short_ref(deciding)} wins (forbid overrides permit)",
            )
    if deciding is not None:
        del considered[deny_i]
    return Decision(
        action=action,
        target=target,
        effect=effect,  # type: ignore[arg-type]
        rule=deciding,
        reason=why,
        default_source=policy.blocks[action].default_source if deciding is None else None,
        considered=tuple(considered),
    )


# ---------------------------------------------------------------------------
# per-action deciders: paths, commands and unix sockets are judged by the C
# functions the supervisor runs (sandbox.policy.compiled), on the same tables


def _decide_path(policy: Policy, action: str, target: Target, ctx: DecisionContext) -> Decision:
    if not isinstance(target, str):
        raise UsageError(f"{action} takes a path, not {type(target).__name__}")
    if not target or "\x00" in target:
        raise UsageError(f"{action}: empty or malformed path {target!r}")
    base = str(ctx.cwd) if ctx.cwd is not None else str(policy.workspace)
    path = normalize_path(target, base=base, home=str(policy.home))
    comp = _c.compile_policy(policy)
    start, end = comp.path_ranges[action]
    access = 1 if action == "file_read" else 2  # LG_ACCESS_READ / LG_ACCESS_WRITE
    _bits, deny = _j.judge_path(comp.c, path, access)
    hits = [i - start for i in _j.path_hits(comp, path, access)]
    rules = comp.rules[start:end]
    return _conclude(policy, action, path, rules, hits, {}, path, deny - start if deny >= 0 else -1)


def _decide_exec(policy: Policy, target: Target, ctx: DecisionContext) -> Decision:
    argv = split_command(target)
    if not argv:
        raise UsageError("shell_exec: empty command")
    line = command_line(argv)
    exe = ctx.resolved_exe or (argv[0] if "/" in argv[0] else None)
    comp = _c.compile_policy(policy)
    rules = comp.rules[: comp.n_exec]
    try:
        effect, idx, _inherit, flags = _j.judge_exec(comp.c, argv, exe)
    except OverflowError as exc:
        why = f"{exc}: denied (the supervisor never judges a shortened command line)"
        return Decision("shell_exec", line, "deny", None, why, None, ())
    # Which rules match the line as written (the C judge also looked through wrappers and
    # into `sh -c` strings; the flags say so).
    exe_line = " ".join([exe, *argv[1:]]) if exe else None
    hits = _j.exec_hits(comp, line, exe_line)
    if effect == 0:
        through = "matches, but not everything it runs (through a wrapper or `sh -c`) is allowed"
        reasons = {i: through for i in hits if rules[i].effect == "allow"}
        return _conclude(policy, "shell_exec", line, rules, [], reasons, f"`{line}`")
    both = sorted(set(hits) | {idx}) if idx >= 0 else hits
    decision = _conclude(
        policy,
        "shell_exec",
        line,
        rules,
        both,
        {},
        f"`{line}`",
        idx if effect == 2 else -1,
        idx if effect == 1 else -1,
    )
    if idx >= 0 and idx not in hits:
        what = describe_pattern(rules[idx])
        if flags & _j.EV_SHELL:
            why = (
                f"`{line}`: a command its -c string runs matches {what}"
                if effect == 2
                else f"`{line}`: every command its -c string runs is allowed ({what})"
            )
        else:
            why = f"`{line}`: the command it wraps matches {what}"
        if effect == 1:
            why += ", and no deny rule matches"
        decision = replace(decision, reason=why)
    return decision


def _decide_network(policy: Policy, target: Target, ctx: DecisionContext) -> Decision:
    if not isinstance(target, str):
        raise UsageError(
            f"network takes host[:port], ip[:port], [v6]:port or unix:/path, "
            f"not {type(target).__name__}"
        )
    try:
        t: NetTarget = parse_target(target)
    except ValueError as exc:
        raise UsageError(f"network: {exc}") from None
    index = _net_index(policy)
    names = tuple(ctx.names)
    if t.unix is not None:
        comp = _c.compile_policy(policy)
        effect, idx = _j.judge_unix(comp.c, t.unix)
        hits = [i for i in index.unix if match_destination(index.rules[i].destination, t)]  # type: ignore[arg-type]
        deny = index.rules.index(comp.rules[idx]) if effect == 2 and idx >= 0 else -1
        return _conclude(policy, "network", t.text, index.rules, hits, {}, t.text, deny)
    cand = _net_candidates(index, t, names)
    hits = [i for i in cand if match_destination(index.rules[i].destination, t, names)]  # type: ignore[arg-type]
    hit_set = set(hits)
    reasons: dict[int, str] = {}
    for i in cand:
        pl = index.portless[i]
        if pl is not None and i not in hit_set and match_destination(pl, t, names):
            port = index.rules[i].destination.port  # type: ignore[union-attr]
            reasons[i] = f"host matches, but the rule is for port {port} and the target names " + (
                "no port" if t.port is None else f"port {t.port}"
            )
    what = t.text + (f" (known as {', '.join(names)})" if names and t.ip is not None else "")
    return _conclude(policy, "network", t.text, index.rules, hits, reasons, what)


def decide(
    policy: Policy, action: str, target: Target, context: DecisionContext | None = None
) -> Decision:
    """Decide one action against the policy and explain the decision.

    file_read / file_write: a path; relative paths join `context.cwd` (default:
    the workspace), `~/` expands to the policy's home, `..` collapses
    lexically.  Pass the kernel-resolved path when there is one.
    shell_exec: a command line (shell quoting) or an argv list; argv[0] is
    reduced to its basename, and patterns naming a path match
    `context.resolved_exe`.  `sh -c STRING` is also judged by each command in
    STRING.
    network: host, host:port, ip, ip:port, [v6]:port or unix:/path; an IP is
    also matched by host rules through `context.names`.
    Raises UsageError for an unknown action or a malformed target.
    """
    ctx = context or DecisionContext()
    if action in ("file_read", "file_write"):
        return _decide_path(policy, action, target, ctx)
    if action == "shell_exec":
        return _decide_exec(policy, target, ctx)
    if action == "network":
        return _decide_network(policy, target, ctx)
    raise UsageError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
