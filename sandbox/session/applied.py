"""The layers as the child applied them: the plan's prediction revised by the spawn's report.

The plan says what will be enforced; `AppliedStatus` says what the child did
(Landlock ruleset in force, how many of its path rules named a missing path,
filter and listener installed).  The session-start audit entry records both.
"""

from __future__ import annotations

from sandbox.launch.spawn import AppliedStatus
from sandbox.plan import Plan
from sandbox.policy.layers import LayerStatus
from sandbox.record import replace


def applied_layers(plan: Plan, applied: AppliedStatus) -> tuple[LayerStatus, ...]:
    out: list[LayerStatus] = []
    for predicted in plan.layers:
        layer = predicted
        if layer.name == "filesystem" and layer.active:
            if applied.landlock_abi <= 0:
                layer = replace(
                    layer, state="absent", detail="the child applied no Landlock ruleset"
                )
            elif applied.landlock_skipped:
                layer = replace(
                    layer,
                    detail=f"{layer.detail}; {applied.landlock_skipped} of "
                    f"{applied.landlock_rules} path rules skipped (path absent at launch)",
                )
        elif layer.name in ("exec", "connect") and layer.state != "absent" and not applied.listener:
            layer = replace(layer, state="absent", detail="no seccomp listener was installed")
        elif layer.name == "hardening" and layer.state != "absent" and not applied.seccomp_filter:
            layer = replace(layer, state="absent", detail="no seccomp filter was installed")
        out.append(layer)
    return tuple(out)
