"""`landgate plan` as text: layers, Landlock rules, masks, filter, rules -> layers."""

from __future__ import annotations

from typing import Any

from sandbox.policy.layers import RUNG_GAPS


def render_plan(plan: Any) -> str:
    out: list[str] = []
    out.append(
        f"policy   {plan.policy_path} (sha256 {plan.policy_sha256[:16]}...), mode {plan.mode}"
    )
    if plan.mode == "simulate":
        out.append(
            "simulate decisions are recorded, not enforced, except egress: a denied "
            "connection (TCP, UDP, unix, DNS) stays refused and is recorded as a would-deny"
        )
    out.append(
        f"host     kernel {plan.host.kernel}, Landlock ABI {plan.host.landlock_abi}, "
        f"rung {plan.rung}: {RUNG_GAPS[plan.rung]}"
    )
    out.append("")
    out.append("layers")
    for layer in plan.layers:
        out.append("  " + layer.line())
    ll = plan.landlock
    out.append("")
    out.append(f"landlock (ABI {ll.abi}; handled: {', '.join(_names(ll.handled_fs))})")
    for r in ll.rules:
        out.append(f"  {r.path:<40} {','.join(r.rights)}")
    if ll.ports:
        out.append("  tcp connect ports: " + ", ".join(str(p) for p, _ in ll.ports))
    if ll.scoped:
        out.append("  scoped: signals, abstract unix sockets")
    for note in ll.notes:
        out.append(f"  note: {note}")
    co = plan.carve_outs
    out.append("")
    seen = (
        "every open"
        if co.notify_reads
        else "opens that can write or create"
        if co.notify_writes
        else "no open"
    )
    out.append(
        f"carve-outs (decided at access time by the supervisor's open check; it sees {seen})"
    )
    for c in co.coverage:
        flag = "" if c.covered else "  NOT COVERED"
        gaps = f"; {'; '.join(c.gaps)}" if c.gaps else ""
        out.append(
            f"  {c.action} deny {c.pattern!r} ({c.rule}): "
            f"{', '.join(c.mechanisms) or 'nothing'}{gaps}{flag}"
        )
    for limit in co.limits:
        out.append(f"  not covered: {limit}")
    sc = plan.seccomp
    out.append("")
    out.append(f"seccomp ({len(sc.program)} BPF instructions, NEW_LISTENER | WAIT_KILLABLE_RECV)")
    for a in sc.actions:
        act = a.action + (f" {a.errno}" if a.errno else "")
        when = f" when {a.condition}" if a.condition else ""
        out.append(f"  {a.syscall:<18} {act:<18}{when}  -- {a.why}")
    out.append("")
    out.append("rules -> layers")
    for action, ref, pattern, layers in plan.rule_layers:
        out.append(f"  {action:<10} {pattern!r} ({ref}): {'; '.join(layers)}")
    out.append("")
    removed = ", ".join(plan.environment_removed) or "none"
    out.append(f"environment: removed {removed}")
    for name, section in plan.extra_sections.items():
        out.append("")
        if isinstance(section, dict) and "text" in section:
            # A section that renders itself (the nftables ruleset): its rung, notes and text.
            out.append(f"{name} (rung: {section.get('rung', '?')})")
            out.extend(f"  note: {n}" for n in section.get("notes", ()))
            out.extend(f"  {line}" for line in str(section["text"]).splitlines())
        else:
            out.append(f"{name}")
            out.append(f"  {section}" if not isinstance(section, str) else section)
    return "\n".join(out)


def _names(access: int) -> list[str]:
    from sandbox.plan.landlock import rights_names

    return list(rights_names(access))
