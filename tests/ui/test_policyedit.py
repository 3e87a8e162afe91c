"""Changing ./.landgate.yaml: shown first, written on confirm only, re-checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.errors import UsageError
from sandbox.policy import decide, load_policy
from sandbox.setup.policyedit import apply, propose_allow, propose_mode

POLICY = """# mine
version: 1
mode: simulate  # first
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - { path: "**/.env", effect: deny }
      - { path: "./src/", effect: allow }
  - action: shell_exec
    defaultEffect: deny
    rules:
      - { command: "sh*", effect: allow }
"""


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    p = tmp_path / ".landgate.yaml"
    p.write_text(POLICY)
    return p


def test_allow_is_shown_then_written_exactly_as_shown(policy: Path) -> None:
    p = propose_allow(policy, "shell_exec", "id -u")
    assert policy.read_text() == POLICY  # a proposal writes nothing
    assert p.rule == '{ command: "id -u", effect: allow }' and p.decision_after == "allow"
    assert f"+      - {p.rule}" in p.diff
    apply(p)
    text = policy.read_text()
    assert text.count("\n") == POLICY.count("\n") + 1 and "# mine" in text  # comments kept
    assert decide(load_policy(policy), "shell_exec", "id -u").effect == "allow"


def test_a_workspace_path_becomes_relative_and_a_new_block_is_added(policy: Path) -> None:
    target = str(policy.parent / "docs" / "a[1].md")
    p = propose_allow(policy, "file_read", target)
    assert p.rule == '{ path: "./docs/a\\\\[1].md", effect: allow }'
    apply(p)
    assert decide(load_policy(policy, cwd=policy.parent), "file_read", target).effect == "allow"
    p = propose_allow(policy, "network", "example.org:443")  # no network block yet
    apply(p)
    assert decide(load_policy(policy), "network", "example.org:443").effect == "allow"


def test_an_allow_that_would_not_change_the_decision_is_not_written(policy: Path) -> None:
    p = propose_allow(policy, "file_read", str(policy.parent / "src" / ".env"))
    assert p.decision_after == "deny"  # the explicit deny still wins
    with pytest.raises(UsageError, match="would not change the decision"):
        apply(p)
    assert policy.read_text() == POLICY


def test_a_file_edited_since_the_preview_is_not_overwritten(policy: Path) -> None:
    p = propose_mode(policy, "enforce")
    policy.write_text(POLICY + "# edited by hand\n")
    with pytest.raises(UsageError, match="changed since"):
        apply(p)
    assert policy.read_text().endswith("# edited by hand\n")
    apply(propose_mode(policy, "enforce"))  # its twin: a fresh preview applies
    assert load_policy(policy).mode == "enforce"
    assert "mode: enforce  # first" in policy.read_text()
