"""Property tests: forbid overrides permit, order independence, normalisation, no `..` escape."""

from __future__ import annotations

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.policy import decide, match_path, normalize_path, parse_path_pattern
from sandbox.policy.model import Policy

from .helpers import HOME, WS

COMPONENTS = ["a", "b", "src", ".env", "x.pem", "node_modules"]
PATTERN_PARTS = [*COMPONENTS, "*", "**", "*.pem", "[ab]"]

settings.register_profile("policy", max_examples=60, deadline=None)
settings.load_profile("policy")

components = st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=4)
path_patterns = st.builds(
    lambda prefix, parts, slash: prefix + "/".join(parts) + ("/" if slash else ""),
    st.sampled_from(["./", "/ws/", "~/", "", "**/", "/"]),
    st.lists(st.sampled_from(PATTERN_PARTS), min_size=1, max_size=3),
    st.booleans(),
).filter(lambda p: not p.startswith("**/**"))
rules = st.lists(
    st.tuples(path_patterns, st.sampled_from(["allow", "deny"])), min_size=1, max_size=6
)
targets = st.builds(
    lambda base, parts: base + "/".join(parts),
    st.sampled_from(["/ws/", "/home/u/", "/", "/ws/src/"]),
    components,
)
defaults = st.sampled_from(["allow", "deny"])


def make_policy(rule_list: list[tuple[str, str]], default: str) -> Policy:
    return Policy.from_dict(
        {
            "version": 1,
            "workspace": str(WS),
            "extends": [],
            "actions": [
                {
                    "action": "file_read",
                    "defaultEffect": default,
                    "rules": [{"path": p, "effect": e} for p, e in rule_list],
                }
            ],
        },
        cwd=WS,
        home=HOME,
    )


@given(rules, path_patterns, targets, defaults)
def test_adding_an_allow_never_overturns_a_matching_deny(rule_list, extra, target, default) -> None:  # type: ignore[no-untyped-def]
    before = decide(make_policy(rule_list, default), "file_read", target)
    if before.effect == "deny" and before.rule is not None:
        after = decide(make_policy([*rule_list, (extra, "allow")], default), "file_read", target)
        assert after.effect == "deny"


@given(rules, targets, defaults, st.randoms(use_true_random=False))
def test_decision_does_not_depend_on_rule_order(rule_list, target, default, rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(rule_list)
    rnd.shuffle(shuffled)
    a = decide(make_policy(rule_list, default), "file_read", target)
    b = decide(make_policy(shuffled, default), "file_read", target)
    assert a.effect == b.effect
    assert (a.rule is None) == (b.rule is None)


raw_paths = st.lists(
    st.sampled_from([*COMPONENTS, "..", ".", "", "~"]), min_size=1, max_size=8
).map("/".join)


@given(raw_paths, st.sampled_from(["/ws", "/ws/src", "/", "/home/u"]))
def test_normalisation_is_idempotent_and_absolute(raw, base) -> None:  # type: ignore[no-untyped-def]
    once = normalize_path(raw, base=base, home="/home/u")
    assert once.startswith("/") and "/../" not in once + "/" and "//" not in once
    assert normalize_path(once, base=base, home="/home/u") == once


@given(
    raw_paths,
    st.sampled_from(["src/**", "**", "", "src/"]),
    st.sampled_from(["/ws", "/ws/src", "/tmp"]),
)
def test_dotdot_never_escapes_a_workspace_pattern_base(raw, rest, cwd) -> None:  # type: ignore[no-untyped-def]
    pattern = parse_path_pattern("./" + rest, workspace="/ws", home="/home/u")
    path = normalize_path(raw, base=cwd, home="/home/u")
    if match_path(pattern, path):
        assert pattern.base is not None
        assert path == pattern.base or path.startswith(pattern.base.rstrip("/") + "/")
        assert posixpath.commonpath([path, "/ws"]) == "/ws"
