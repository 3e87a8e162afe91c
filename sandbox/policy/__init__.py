"""Policy: model, loader (YAML, SafeClaw JSON), matchers, and the one decision function.

    from sandbox.policy import load_policy, decide
    policy = load_policy("policy.yaml", cwd=Path.cwd())
    decide(policy, "file_read", ".env").effect   # "deny"

The loader (and PyYAML) is imported on first use of a loading function, so
importing the model or the evaluator stays cheap.
"""

from __future__ import annotations

# Every name is imported on first use (PEP 562): a `landgate run` from the policy cache
# imports the model and the patterns through their own modules and needs no evaluator
# (sandbox.policy.evaluate: `decide`) until a decision is explained (issue 19).  typing
# costs ~2 ms at import: its names are for the checker, which reads TYPE_CHECKING as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sandbox.policy.baseline import baseline_rules, protected_paths
    from sandbox.policy.destinations import match_destination, parse_destination
    from sandbox.policy.evaluate import decide
    from sandbox.policy.loader import (
        load_policy,
        load_policy_text,
        policy_from_dict,
    )
    from sandbox.policy.locate import resolve_policy_path
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

_MODEL = (
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
)
_PATTERNS = (
    "match_command",
    "match_path",
    "normalize_path",
    "parse_command_pattern",
    "parse_path_pattern",
)
_LAZY = {
    **dict.fromkeys(_MODEL, "sandbox.policy.model"),
    **dict.fromkeys(_PATTERNS, "sandbox.policy.patterns"),
    "decide": "sandbox.policy.evaluate",
    "match_destination": "sandbox.policy.destinations",
    "parse_destination": "sandbox.policy.destinations",
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
        # An AttributeError also lets `from sandbox.policy import loader` import the
        # submodule (the import system asks for the attribute first).
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
