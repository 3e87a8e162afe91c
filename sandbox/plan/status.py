"""Per-layer status of a plan: what each layer will enforce for this policy on this host, and
which layers enforce each rule (the structure `plan`, the refusal and the audit entry read)."""

from __future__ import annotations

from sandbox.host.probe import HostCapabilities
from sandbox.host.supervisor import SupervisorStatus
from sandbox.plan.carveouts import CarveOutPlan
from sandbox.plan.landlock import LandlockPlan
from sandbox.plan.seccomp_plan import SeccompPlan
from sandbox.policy.layers import RUNG_GAPS, LayerState, LayerStatus
from sandbox.policy.model import Policy

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def needs_egress_layer(policy: Policy) -> bool:
    """Whether the network policy restricts anything a packet filter must enforce.

    A network block that allows every destination (defaultEffect allow and no
    deny rule) needs no namespace; anything else does."""
    block = policy.block("network")
    return not (
        block.default_effect == "allow" and not any(r.effect == "deny" for r in block.rules)
    )


def egress_caps(policy: Policy) -> Any:
    """The network capabilities the egress layer is decided from (host.network's
    NetCapabilities), asked as sandbox.net asks (nft=reaches_outside(policy)); None when
    the policy needs no egress layer.  Asked once per plan: the launch builds the layer
    from this same answer (Plan.net_caps)."""
    if not needs_egress_layer(policy):
        return None
    from sandbox.host.network import network_capabilities
    from sandbox.plan.names import reaches_outside

    return network_capabilities(nft=reaches_outside(policy))


def egress_status(policy: Policy, sim: bool, caps: Any) -> LayerStatus:
    """The egress layer as this host gives it, from `caps` (egress_caps(policy))."""
    mech = "network namespace + nftables + DNS view"
    if caps is None:
        return LayerStatus(
            "egress", "enforced", "none needed", "the network policy allows every destination"
        )
    from sandbox.host.network import LOOPBACK_ONLY_DETAIL, LOOPBACK_ONLY_LAYER
    from sandbox.plan.names import reaches_outside

    outside = reaches_outside(policy)
    if caps.rung in ("netns", "userns") and not outside:
        detail = LOOPBACK_ONLY_DETAIL
        if sim:
            detail += "; kept in force during simulation (nothing is sent where the policy says no)"
        return LayerStatus("egress", "enforced", LOOPBACK_ONLY_LAYER, detail)
    if caps.enforced:
        if caps.rung == "userns":
            mech = "user + network namespace (pasta) + nftables + DNS view"
        detail = (
            "every packet leaving the sandbox is judged by nftables; DNS answers only allowed names"
        )
        if caps.notes:
            detail += "; " + "; ".join(caps.notes)
        if sim:
            # Deliberate: a simulated run handles real secrets, so egress the policy
            # denies stays refused; the supervisor still records each connect as a
            # would-deny, which is what `audit suggest` learns from.
            detail += "; kept in force during simulation (nothing is sent where the policy says no)"
        return LayerStatus("egress", "enforced", mech, detail)
    return LayerStatus("egress", "absent", mech, "; ".join(caps.notes) or "no network namespace")


def _layers(
    host: HostCapabilities,
    ll: LandlockPlan,
    co: CarveOutPlan,
    sc: SeccompPlan,
    sup: SupervisorStatus,
    sim: bool,
    use_ns: bool,
    egress: LayerStatus,
) -> tuple[LayerStatus, ...]:
    out: list[LayerStatus] = []
    abi = host.landlock_abi
    # filesystem
    if abi <= 0:
        out.append(
            LayerStatus(
                "filesystem",
                "absent",
                "Landlock",
                f"the kernel has no Landlock ({host.landlock_error or 'not available'})",
            )
        )
    elif sim:
        out.append(
            LayerStatus(
                "filesystem",
                "observed",
                f"Landlock ABI {abi} (not applied)",
                "simulation: Landlock has no log-only mode; the supervisor observes opens",
            )
        )
    else:
        missing = [
            n
            for n, need in (
                ("refer (cross-directory rename/link)", 2),
                ("ioctl on devices", 5),
            )
            if abi < need
        ]
        state: LayerState = "partial" if missing else "enforced"
        detail = f"{len(ll.rules)} path rules"
        if ll.ports:
            detail += f", TCP connect limited to ports {', '.join(str(p) for p, _ in ll.ports)}"
        if missing:
            detail += "; this ABI cannot restrict: " + ", ".join(missing)
        if abi < 3:
            state = "partial"
            detail += "; truncation is not judged by this ABI: " + (
                "the supervisor judges and performs truncate(2) (the file reopened for "
                "writing under the ruleset), the seccomp filter refuses openat2 and "
                "O_RDONLY|O_TRUNC opens"
                if sc.fsop_check
                else "the seccomp filter refuses truncate(2), openat2 and O_RDONLY|O_TRUNC "
                "opens instead"
            )
        # Recording, not enforcing: the state stays; the gap is stated, never silent.
        detail += "; " + (host.kernel_denials_gap or "kernel file denials recorded (host audit)")
        out.append(LayerStatus("filesystem", state, f"Landlock ABI {abi}", detail))
    # carve-outs
    uncovered = co.uncovered
    if sim:
        out.append(
            LayerStatus(
                "carve-outs",
                "observed",
                "supervisor open check",
                "simulation: every open is judged and recorded, nothing is refused",
            )
        )
    elif uncovered:
        out.append(
            LayerStatus(
                "carve-outs",
                "absent",
                "none",
                "nothing enforces "
                + ", ".join(f"{c.pattern} ({c.rule})" for c in uncovered)
                + ": no supervisor open check",
            )
        )
    else:
        seen = (
            "every open"
            if co.notify_reads
            else "opens that can write or create"
            if co.notify_writes
            else "no open (no deny reaches a grant)"
        )
        mech = "supervisor open check" if co.open_check else "Landlock"
        detail = f"decided at access time, on the object; the supervisor sees {seen}"
        if co.limits:
            detail += "; not covered: " + "; ".join(co.limits)
        out.append(LayerStatus("carve-outs", "enforced", mech, detail))
    # exec
    if sup.available:
        out.append(
            LayerStatus(
                "exec",
                "observed" if sim else "enforced",
                "Landlock EXECUTE + seccomp USER_NOTIF on execve/execveat",
                "command lines judged by the supervisor; memfd/AT_EMPTY_PATH execs refused",
            )
        )
    else:
        out.append(
            LayerStatus(
                "exec",
                "partial" if abi > 0 else "absent",
                "Landlock EXECUTE",
                "programs outside the executable trees and the workspace cannot run; "
                "command rules are not judged: " + sup.detail,
            )
        )
    # connect
    out.append(
        LayerStatus(
            "connect",
            ("observed" if sim else "enforced") if sup.available else "absent",
            "seccomp USER_NOTIF on connect/sendto/sendmsg/sendmmsg",
            "destinations judged by the supervisor"
            if sup.available
            else "destinations are not judged: " + sup.detail,
        )
    )
    out.append(egress)
    # hardening
    if host.seccomp_filter:
        scope = (
            "; Landlock scopes signals and abstract unix sockets"
            if abi >= 6
            else "; no Landlock scoping of signals/abstract unix sockets (ABI < 6)"
        )
        n = sum(1 for a in sc.actions if a.action in ("errno", "kill"))
        if use_ns and host.is_root and host.memfd_noexec:
            scope += "; vm.memfd_noexec=2 in the pid namespace (no executable memfds)"
        else:
            scope += (
                "; execve of a memfd via /proc/self/fd is left to the supervisor's exec check "
                "(vm.memfd_noexec needs root)"
            )
        out.append(
            LayerStatus(
                "hardening",
                "enforced" if abi >= 6 else "partial",
                "seccomp BPF",
                f"{n} deny/kill entries{scope}",
            )
        )
    else:
        out.append(
            LayerStatus("hardening", "absent", "seccomp BPF", "the kernel has no seccomp filter")
        )
    # namespaces
    if use_ns:
        how = "mount + pid" + ("" if host.is_root else " in a user namespace")
        out.append(
            LayerStatus(
                "namespaces",
                "enforced",
                how,
                "mounts are private to the sandbox; the tree dies with landgate",
            )
        )
    else:
        out.append(
            LayerStatus(
                "namespaces",
                "absent",
                "none",
                "no mount/pid namespace for this user: " + RUNG_GAPS["no-namespaces"],
            )
        )
    return tuple(out)


def _rule_layers(
    policy: Policy,
    ll: LandlockPlan,
    co: CarveOutPlan,
    sup: SupervisorStatus,
    egress: LayerStatus,
) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    cov = {(c.action, c.rule): c for c in co.coverage}
    # What the egress layer in force is (egress_status): the loopback-only namespace loads
    # no nftables, a policy that allows every destination needs no layer at all.
    if egress.active:
        egress_line = f"egress: {egress.mechanism} (sandbox.net)"
    else:
        egress_line = f"egress: {egress.state} ({egress.detail})"
    out: list[tuple[str, str, str, tuple[str, ...]]] = []
    for action in ("file_read", "file_write", "shell_exec", "network"):
        for rule in policy.block(action).rules:
            ref = rule.ref()
            layers: list[str] = []
            if action in ("file_read", "file_write"):
                if rule.effect == "allow":
                    paths = ll.rule_grants.get(ref, ())
                    layers.append(
                        f"filesystem: Landlock rule on {', '.join(paths)}"
                        if paths
                        else "filesystem: not granted (see landlock notes)"
                    )
                else:
                    c = cov.get((action, ref))
                    if c is not None:
                        layers.append(
                            "carve-outs: "
                            + ", ".join(c.mechanisms)
                            + ("" if c.covered else " (NOT COVERED)")
                        )
            elif action == "shell_exec":
                layers.append(
                    "exec: supervisor" if sup.available else "exec: not judged (no supervisor)"
                )
            else:
                if rule.destination is not None and rule.destination.kind == "any" and ll.ports:
                    layers.append("filesystem: Landlock TCP port rule")
                layers.append(
                    "connect: supervisor"
                    if sup.available
                    else "connect: not judged (no supervisor)"
                )
                layers.append(egress_line)
            if rule.comment:
                layers.append(f"why: {rule.comment}")  # e.g. what a preset's secret rule guards
            out.append((action, ref, rule.pattern, tuple(layers)))
    return tuple(out)
