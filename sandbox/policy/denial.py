"""One denial, whichever layer made it: what an agent framework shows the model.

`sandbox.run(...).denied`, `sandbox.Session`, the MCP server, the LangChain
tools and the Claude Code hook all report denials as `Denial`s: the action,
its target, the deciding rule ("FILE:LINE" or a built-in's name), the layer
that decided (tool-hook, exec, connect, filesystem, carve-outs, dns) and a
sentence the model can act on.  Low in the import graph (policy/) so that the
hook, which must start fast, does not load the session machinery to build one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Denial:
    action: str  # file_read, file_write, shell_exec, network
    target: str  # the path, the command line, the destination
    rule: str | None  # "FILE:LINE" of the deciding rule, a built-in's name, or None (default)
    layer: str  # tool-hook, exec, connect, filesystem, carve-outs, dns
    reason: str  # one sentence: what was denied and why
    mode: str = "enforce"  # "simulate": it would have been denied, nothing was blocked

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "rule": self.rule,
            "layer": self.layer,
            "reason": self.reason,
            "mode": self.mode,
        }

    def line(self) -> str:
        """`denied file_read "/w/.env" (rule ..., tool-hook): reason`, for a model to read."""
        where = ", ".join(x for x in (self.rule, self.layer) if x)
        return f'denied {self.action} "{self.target}" ({where}): {self.reason}'


def denial_from_event(event: Any, policy: Any = None) -> Denial:
    """A Denial from a session's DecisionEvent (sandbox.audit.event).

    The supervisor's record names the rule but carries no sentence; when the
    policy is at hand the one evaluator (`decide`) explains the same target, so
    the model reads the reason `landgate explain` would print."""
    reason = getattr(event, "reason", None) or getattr(event, "detail", None) or ""
    if policy is not None and event.action in ("file_read", "file_write", "shell_exec", "network"):
        from sandbox.errors import LandgateError
        from sandbox.policy import decide

        try:
            d = decide(policy, event.action, event.target)
        except LandgateError:
            d = None  # a target the evaluator cannot parse: the record's own words stay
        if d is not None and d.effect == "deny":
            reason = d.reason
    if not reason:
        reason = f"the {event.layer} layer denied it"
    return Denial(
        action=str(event.action),
        target=str(event.target),
        rule=event.rule,
        layer=str(event.layer),
        reason=reason,
        mode=str(getattr(event, "mode", "enforce")),
    )
