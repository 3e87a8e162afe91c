"""Policy: model, loader (YAML, SafeClaw JSON), matchers, and the one decision function.

    from sandbox.policy import load_policy, decide
    policy = load_policy("policy.yaml", cwd=Path.cwd())
    decide(policy, "file_read", ".env").effect   # "deny"

The loader (and PyYAML) is imported on first use of a loading function, so
importing the model or the evaluator stays cheap.
"""

from __future__ import annotations

from sandbox.policy.destinations import match_destination, parse_destination
from sandbox.policy.evaluate import decide
from sandbox.policy.model import (
    ACTIONS,
    ActionBlock,
    CommandPattern,
    Decision,
    DecisionContext,
    Destination,
    Enforcement,
    Environment,
    PathPattern,
    Policy,
    Rule,
    SourceRef,
)
from sandbox.policy.patterns import (
    match_command,
    match_path,
    normalize_path,
    parse_command_pattern,
    parse_path_pattern,
)

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sandbox.policy.baseline import protected_paths
    from sandbox.policy.loader import (
        load_policy,
        load_policy_text,
        policy_from_dict,
    )
    from sandbox.policy.locate import resolve_policy_path

_LAZY = {
    "load_policy": "sandbox.policy.loader",
    "load_policy_text": "sandbox.policy.loader",
    "policy_from_dict": "sandbox.policy.loader",
    "resolve_policy_path": "sandbox.policy.locate",
    "protected_paths": "sandbox.policy.baseline",
    "baseline_rules": "sandbox.policy.baseline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sandbox.policy' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ACTIONS",
    "ActionBlock",
    "CommandPattern",
    "Decision",
    "DecisionContext",
    "Destination",
    "Enforcement",
    "Environment",
    "PathPattern",
    "Policy",
    "Rule",
    "SourceRef",
    "baseline_rules",
    "decide",
    "load_policy",
    "load_policy_text",
    "match_command",
    "match_destination",
    "match_path",
    "normalize_path",
    "parse_command_pattern",
    "parse_destination",
    "parse_path_pattern",
    "policy_from_dict",
    "protected_paths",
    "resolve_policy_path",
]
