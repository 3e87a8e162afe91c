"""Compile a policy into what the kernel enforces: the plan (DESIGN §2).

`build_plan(policy, host=None, ...)` is pure planning: it changes nothing and walks
no granted tree (launch cost does not depend on their size).  The plan carries:

  landlock       every path-beneath rule (path, rights) and port rule
  carve_outs     per deny rule, the mechanism that covers it; which opens the
                 supervisor sees; what the access-time decision does not cover
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

from sandbox.host.probe import HostCapabilities
from sandbox.host.supervisor import SupervisorStatus, supervisor_status
from sandbox.plan.carveouts import CarveOutPlan
from sandbox.plan.landlock import LandlockPlan
from sandbox.plan.memo import landlock_and_carve_outs, seccomp_plan
from sandbox.plan.seccomp_plan import SeccompPlan
from sandbox.plan.status import (
    _layers,
    _rule_layers,
    egress_caps,
    egress_status,
    needs_egress_layer,
)
from sandbox.policy.layers import RUNG_GAPS, LayerStatus, Rung, rung_of
from sandbox.policy.model import Policy
from sandbox.record import Record, field

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "LayerStatus",
    "Plan",
    "build_plan",
    "egress_status",
    "needs_egress_layer",
    "render_plan",
    "supervisor_status",
]

LANDLOCK_LATEST_FS_ABI = 5  # the last ABI that added filesystem rights (IOCTL_DEV)


class Plan(Record):
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
    environment_removed: tuple[str, ...]
    supervisor: SupervisorStatus
    extra_sections: Mapping[str, Any] = field(default_factory=dict)
    # The policy planned (its text is policy_sha256): rule_layers reads its rules.
    policy: Policy | None = field(default_factory=lambda: None, compare=False, repr=False)
    # The network capabilities the egress status was decided from (host.network's
    # NetCapabilities), or None when it asked none: the launch builds that layer from
    # this same answer (one probe per launch, and what the plan says is what is built).
    net_caps: Any = field(default_factory=lambda: None, compare=False, repr=False)

    @property
    def simulate(self) -> bool:
        return self.mode == "simulate"

    @property
    def rule_layers(self) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
        """For each policy rule, (action, ref, pattern, the layers that enforce it): made
        when asked (`landgate plan`, to_dict), from this plan's own layers; `run` never
        reads it (issue 19: it was built on every launch)."""
        if self.policy is None:
            return ()
        egress = self.layer("egress")
        return _rule_layers(self.policy, self.landlock, self.carve_outs, self.supervisor, egress)

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


def removed_environment(policy: Policy, environ: Mapping[str, str]) -> tuple[str, ...]:
    kept = policy.environment.apply(environ)
    return tuple(sorted(k for k in environ if k not in kept))


def build_plan(
    policy: Policy,
    host: HostCapabilities | None = None,
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
    # Carve-outs and protected paths are decided at access time by the supervisor's open
    # check on every rung (no launch masks); the filter hands it only the opens that need
    # a decision (plan/carveouts.py).  In simulation every supervisor observes every open
    # (Landlock has no log-only mode).  Reused from an earlier launch of this process
    # while the policy and the file-system facts they read are unchanged (plan/memo.py).
    ll, co = landlock_and_carve_outs(
        policy, abi, pid_ns=use_ns, open_check=sup.open_check, enforce=not sim
    )
    need_open = (sim and sup.available) or (not sim and co.open_check)
    # A protected path or deny rule inside a grant: the syscalls that make or move names
    # (rename, link, symlink, mkdir, mknod, truncate) go to the supervisor, which judges the
    # real resulting name and performs them on a thread under the sandbox's Landlock ruleset
    # (csrc/supervise_fsop.c).  Every rung: a protected name that does not exist at launch
    # is judged when it is made, and a rename keeps a denied object's identity for the open
    # check.
    need_fsop = not sim and sup.available and co.open_check
    # Landlock ABI < 3 cannot judge truncation: the filter refuses O_RDONLY|O_TRUNC opens
    # and openat2, and truncate(2) unless the supervisor performs it (TRUNCATE_DENIES).
    sc = seccomp_plan(
        notify_open=need_open,
        notify_reads=sim or co.notify_reads,
        refuse_truncate=0 < abi < 3,
        notify_fsop=need_fsop,
    )
    net_caps = egress_caps(policy)
    layers = _layers(host, ll, co, sc, sup, sim, use_ns, egress_status(policy, sim, net_caps))
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
        environment_removed=removed_environment(policy, env),
        supervisor=sup,
        extra_sections=dict(extra_sections or {}),
        policy=policy,
        net_caps=net_caps,
    )


def render_plan(plan: Plan) -> str:
    from sandbox.plan.render import render_plan as _render

    return _render(plan)


def build_display_plan(policy: Policy) -> Plan:
    """The plan `landgate plan` shows: the launch plan plus the nftables ruleset section."""
    sections: dict[str, Any] = {}
    if needs_egress_layer(policy):
        from sandbox.plan.nft import nft_plan_section

        sections["nft"] = nft_plan_section(policy)
    return build_plan(policy, extra_sections=sections)
