"""Human-readable renderings for `landgate check` and `landgate explain`.

Both read the same objects every other layer uses (Policy, Decision), so what
`explain` prints is exactly what enforcement decided.
"""

from __future__ import annotations

from sandbox.policy.baseline import baseline_reason
from sandbox.policy.evaluate import describe_pattern, short_ref
from sandbox.policy.model import ACTIONS, Decision, Policy, Rule

MAX_LISTED = 20  # rules listed per block by `check`; the rest are counted
MAX_CONSIDERED = 12  # non-matching policy rules listed by `explain`


def _where(rule: Rule) -> str:
    s = rule.source
    return f"{s.file}:{s.line}:{s.column}"


def render_check(policy: Policy) -> str:
    """A summary of a valid policy: header, then per action its default and rules."""
    fmt = "SafeClaw action blocks, " if policy.format == "safeclaw" else ""
    lines = [
        (
            f"{policy.path.name}: valid ({fmt}version {policy.version}, mode {policy.mode}, "
            f"workspace {policy.workspace})"
        )
    ]
    with_baseline = any(r.origin == "baseline" for b in policy.blocks.values() for r in b.rules)
    if not policy.extends:
        lines.append("baseline: none (extends: [])")
    elif policy.extends == ("system",):
        lines.append("baseline: system")
    else:
        lines.append(
            f"extends: {', '.join(policy.extends)}"
            + ("; baseline: system" if with_baseline else "; baseline: none")
        )
    for parent in policy.parents:
        lines.append(f"  from {parent}")
    for action in ACTIONS:
        block = policy.blocks[action]
        own = [r for r in block.rules if r.origin == "policy"]
        base = [r for r in block.rules if r.origin == "baseline"]
        prot = [r for r in block.rules if r.origin == "protected"]
        if action not in policy.declared_actions:
            default = "deny (no block: implied)"
        elif block.default_source is None:
            default = "deny (no defaultEffect: implied)"
        else:
            default = block.default_effect
        n_allow = sum(r.effect == "allow" for r in own)
        n_deny = len(own) - n_allow
        lines.append(f"{action}: default {default}; {n_allow} allow / {n_deny} deny rules")
        for r in own[:MAX_LISTED]:
            flag = "" if r.inherit or r.effect == "deny" else "  [inherit: false]"
            flag += "  [exec: true]" if r.execute else ""
            lines.append(f"  {r.effect:<5}  {r.pattern:<32} rule {r.index}, {_where(r)}{flag}")
        if len(own) > MAX_LISTED:
            lines.append(f"  ... and {len(own) - MAX_LISTED} more rules")
        extra = []
        if base:
            b_allow = sum(r.effect == "allow" for r in base)
            extra.append(f"baseline {b_allow} allow / {len(base) - b_allow} deny")
        if prot:
            extra.append(f"protected paths {len(prot)} deny")
        if extra:
            lines.append("  + " + "; ".join(extra))
    env = policy.environment
    if env.pass_by_default:
        env_line = (
            f"environment: variables pass except secret-looking names "
            f"({len(env.secret_patterns)} patterns)"
        )
    else:
        env_line = "environment: only listed variables pass"
    if env.allow:
        env_line += f"; passed: {', '.join(env.allow)}"
    if env.deny:
        env_line += f"; denied: {', '.join(env.deny)}"
    if env.set:
        env_line += f"; set: {', '.join(sorted(env.set))}"
    lines.append(env_line)
    req = ", ".join(sorted(policy.enforcement.require)) or "nothing (best effort)"
    lines.append(f"enforcement: require {req}; audit durability {policy.enforcement.durability}")
    return "\n".join(lines)


def render_decision(decision: Decision) -> str:
    """`explain`'s answer: the effect, the deciding rule with its place, why, and the others."""
    lines = [f"{decision.effect:<5} {decision.action} {decision.target}"]
    rule = decision.rule
    if rule is None:
        ds = decision.default_source
        where = f" ({ds.file}:{ds.line}:{ds.column})" if ds else " (implied)"
        lines.append(f"  by default {decision.effect} of {decision.action}{where}")
    elif rule.origin == "policy":
        lines.append(f"  by {short_ref(rule)}, {_where(rule)}")
    else:
        why = baseline_reason(rule) if rule.origin == "baseline" else "landgate protects this path"
        lines.append(f"  by {short_ref(rule)}: {why}")
    lines.append(f"  why: {decision.reason}")
    if rule is not None and rule.comment:
        lines.append(f"  rule comment: {rule.comment}")
    listed: list[str] = []
    silent = 0
    own_unmatched = 0
    for r, why in decision.considered:
        if why == "no match":
            if r.origin != "policy":
                silent += 1
                continue
            own_unmatched += 1
            if own_unmatched > MAX_CONSIDERED:
                silent += 1
                continue
        listed.append(f"    {short_ref(r)}: {why}")
    if listed or silent:
        lines.append("  other rules:")
        lines.extend(listed)
        if silent:
            lines.append(f"    ({silent} more rules did not match)")
    return "\n".join(lines)


def describe_rule(rule: Rule) -> str:
    """One line for `plan` and reports: effect, pattern, its meaning, its origin."""
    return f"{rule.effect} {rule.pattern}: {describe_pattern(rule)} ({short_ref(rule)})"
