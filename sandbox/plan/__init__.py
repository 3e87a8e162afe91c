"""Compile a policy into what the kernel enforces: the plan (DESIGN §2).

`build_plan(policy, host=None, ...)` is pure planning (it walks the granted
trees to find carve-out matches but changes nothing).  The plan carries:

  landlock       every path-beneath rule (path, rights) and port rule
  carve_outs     every mask and, per deny rule, the mechanism that covers it
  seccomp        the filter's actions, the BPF program, `notify_syscalls`
  layers         per-layer status (enforced / partial / absent / observed)
  rung           full | no-network-namespace | no-namespaces | no-landlock (DESIGN §4)
  rule_layers    for each policy rule, the layer(s) that enforce it
  environment    the variables removed from the agent's environment (names only)
  extra_sections other engineers' sections (the network plan adds "nft")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.host.probe import HostCapabilities
from sandbox.host.supervisor import SupervisorStatus, supervisor_status
from sandbox.plan.carveouts import CarveOutPlan, plan_carve_outs
from sandbox.plan.landlock import LandlockPlan, compile_landlock_rules
from sandbox.plan.seccomp import SeccompPlan, compile_seccomp
from sandbox.policy.layers import RUNG_GAPS, LayerState, LayerStatus, Rung, rung_of

__all__ = ["LayerStatus", "Plan", "build_plan", "render_plan", "supervisor_status"]

LANDLOCK_LATEST_FS_ABI = 5  # the last ABI that added filesystem rights (IOCTL_DEV)


@dataclass(frozen=True, slots=True)
class Plan:
    policy_path: str
    policy_sha256: str
    mode: str
    host: HostCapabilities
    use_namespaces: bool  # mount + pid namespace (user ns too when not root)
    landlock: LandlockPlan
    carve_outs: CarveOutPlan
    seccomp: SeccompPlan
    layers: tuple[LayerStatus, ...]
    rung: Rung
    rule_layers: tuple[tuple[str, str, str, tuple[str, ...]], ...]  # (action, ref, pattern, layers)
    environment_removed: tuple[str, ...]
    supervisor: SupervisorStatus
    extra_sections: Mapping[str, Any] = field(default_factory=dict)

    @property
    def simulate(self) -> bool:
        return self.mode == "simulate"

    def layer(self, name: str) -> LayerStatus:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": {"path": self.policy_path, "sha256": self.policy_sha256, "mode": self.mode},
            "host": self.host.to_dict(),
            "rung": self.rung,
            "rung_gaps": RUNG_GAPS[self.rung],
            "namespaces": self.use_namespaces,
            "layers": [layer.to_dict() for layer in self.layers],
            "landlock": self.landlock.to_dict(),
            "carve_outs": self.carve_outs.to_dict(),
            "seccomp": self.seccomp.to_dict(),
            "rules": [
                {"action": a, "rule": ref, "pattern": p, "layers": list(ls)}
                for a, ref, p, ls in self.rule_layers
            ],
            "environment": {"removed": list(self.environment_removed)},
            "supervisor": {
                "available": self.supervisor.available,
                "open_check": self.supervisor.open_check,
                "detail": self.supervisor.detail,
            },
            **dict(self.extra_sections.items()),
        }


def removed_environment(policy: Any, environ: Mapping[str, str]) -> tuple[str, ...]:
    kept = policy.environment.apply(environ)
    return tuple(sorted(k for k in environ if k not in kept))


def build_plan(
    policy: Any,
    host: Any = None,
    *,
    simulate: bool | None = None,
    environ: Mapping[str, str] | None = None,
    supervisor: SupervisorStatus | None = None,
    extra_sections: Mapping[str, Any] | None = None,
) -> Plan:
    """Compile `policy` for `host` (default: this host, probed once)."""
    from sandbox.host.probe import probe_host

    host = host if host is not None else probe_host()
    sup = supervisor if supervisor is not None else supervisor_status()
    if not host.seccomp_notify:
        # Installed or not, a supervisor needs the kernel's user notification to judge.
        sup = SupervisorStatus(False, False, "the kernel has no seccomp user notification")
    sim = policy.mode == "simulate" if simulate is None else simulate
    mode = "simulate" if sim else "enforce"
    use_ns = host.mount_ns and host.pid_ns
    abi = host.landlock_abi
    ll = compile_landlock_rules(policy, abi, pid_ns=use_ns)
    # The open check runs where no mount namespace masks the carve-outs (and in simulation,
    # where it observes).  Not as a second layer behind the masks: the filter cannot tell
    # which opens matter, so every open of the sandbox would pay an ADDFD round trip
    # (~50 us) for files created after launch; the plan lists that gap instead.
    open_check = sup.open_check and (sim or not use_ns)
    co = plan_carve_outs(
        policy,
        ll,
        mount_ns=use_ns,
        open_check=open_check or sim,
        is_root=host.is_root,
        enforce=not sim,
    )
    # Installed for every deny rule inside a grant (also one with no match at launch: a file
    # created later is judged too).  Only a supervisor that does the open check may be
    # handed open/openat: any other answer would break every program (or open unchecked).
    # In simulation every supervisor observes opens (Landlock has no log-only mode).
    need_open = (sim and sup.available) or (
        open_check and not use_ns and any("open-check" in c.mechanisms for c in co.coverage)
    )
    sc = compile_seccomp(notify_open=need_open)
    layers = _layers(host, ll, co, sc, sup, sim, use_ns, egress_status(policy, sim))
    egress = next(layer for layer in layers if layer.name == "egress")
    # A policy that allows every destination needs no network namespace: its rung is not lowered.
    rung = rung_of(
        landlock=abi > 0, notify=host.seccomp_notify, namespaces=use_ns, netns=egress.active
    )
    env = environ if environ is not None else os.environ
    return Plan(
        policy_path=str(policy.path),
        policy_sha256=policy.sha256,
        mode=mode,
        host=host,
        use_namespaces=use_ns,
        landlock=ll,
        carve_outs=co,
        seccomp=sc,
        layers=layers,
        rung=rung,
        rule_layers=_rule_layers(policy, ll, co, sup),
        environment_removed=removed_environment(policy, env),
        supervisor=sup,
        extra_sections=dict(extra_sections or {}),
    )


def needs_egress_layer(policy: Any) -> bool:
    """Whether the network policy restricts anything a packet filter must enforce.

    A network block that allows every destination (defaultEffect allow and no
    deny rule) needs no namespace; anything else does."""
    block = policy.block("network")
    return not (
        block.default_effect == "allow" and not any(r.effect == "deny" for r in block.rules)
    )


def egress_status(policy: Any, sim: bool) -> LayerStatus:
    """The egress layer as this host gives it (sandbox.net decides the rung)."""
    mech = "network namespace + nftables + DNS view"
    if not needs_egress_layer(policy):
        return LayerStatus(
            "egress", "enforced", "none needed", "the network policy allows every destination"
        )
    from sandbox.host.network import network_capabilities

    caps = network_capabilities()
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
    host: Any,
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
                ("truncate", 3),
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
        out.append(LayerStatus("filesystem", state, f"Landlock ABI {abi}", detail))
    # carve-outs
    uncovered = co.uncovered
    gaps = sorted({g for c in co.coverage for g in c.gaps})
    if sim:
        out.append(
            LayerStatus(
                "carve-outs",
                "observed",
                "supervisor open check",
                "simulation: denied files are recorded, not hidden",
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
                + ": no mount namespace and no supervisor open check",
            )
        )
    else:
        mech = (
            "mount masks" if use_ns else ("supervisor open check" if sup.open_check else "Landlock")
        )
        state = "partial" if gaps else "enforced"
        detail = f"{len(co.masks)} masks" + ("; not covered: " + "; ".join(gaps) if gaps else "")
        out.append(LayerStatus("carve-outs", state, mech, detail))
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
                "masks are private to the sandbox; the tree dies with landgate",
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
    policy: Any, ll: LandlockPlan, co: CarveOutPlan, sup: SupervisorStatus
) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    cov = {(c.action, c.rule): c for c in co.coverage}
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
                layers.append("egress: nftables + DNS view (sandbox.net)")
            out.append((action, ref, rule.pattern, tuple(layers)))
    return tuple(out)


def render_plan(plan: Plan) -> str:
    from sandbox.plan.render import render_plan as _render

    return _render(plan)


def build_display_plan(policy: Any) -> Plan:
    """The plan `landgate plan` shows: the launch plan plus the nftables ruleset section."""
    sections: dict[str, Any] = {}
    if needs_egress_layer(policy):
        from sandbox.plan.nft import nft_plan_section

        sections["nft"] = nft_plan_section(policy)
    return build_plan(policy, extra_sections=sections)
