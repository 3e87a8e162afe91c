"""decide(): forbid overrides permit, defaults, baseline, protected paths, shells, network names."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.errors import UsageError
from sandbox.policy import decide
from sandbox.policy.model import DecisionContext

from .helpers import HOME, load_text

POLICY = """\
version: 1
workspace: /ws
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - { path: "**/.env", effect: deny }
      - { path: "~/.ssh/", effect: deny }
      - { path: "./**", effect: allow }
  - action: file_write
    defaultEffect: allow
    rules:
      - { path: "./dist/", effect: deny }
  - action: shell_exec
    defaultEffect: deny
    rules:
      - { command: "npm test", effect: allow }
      - { command: "git diff*", effect: allow }
      - { command: "sh -c *", effect: allow }
      - { command: "curl*", effect: deny }
      - { command: "make", effect: allow, inherit: false }
  - action: network
    defaultEffect: deny
    rules:
      - { destination: "api.openai.com", effect: allow }
      - { destination: "*.npmjs.org:443", effect: allow }
      - { destination: "localhost:*", effect: allow }
      - { destination: "unix:/run/user/*/bus", effect: deny }
"""


@pytest.fixture
def policy(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_text(tmp_path, POLICY)


@pytest.mark.parametrize(
    "action,target,effect",
    [
        ("file_read", ".env", "deny"),
        ("file_read", "src/app.ts", "allow"),
        ("file_read", "pkg/nested/.env", "deny"),
        ("file_read", "/ws/pkg/nested/.envrc", "allow"),
        ("file_read", "~/.ssh/id_rsa", "deny"),
        ("file_read", "~/notes.txt", "deny"),  # default
        ("file_read", "/usr/bin/python3", "allow"),  # baseline
        ("file_read", "/etc/passwd", "allow"),  # baseline
        ("file_read", "/etc/shadow", "deny"),  # baseline deny beats baseline /etc/ allow
        ("file_write", "dist/bundle.js", "deny"),
        ("file_write", "src/app.ts", "allow"),
        ("file_write", "~/.bashrc", "deny"),  # protected, despite defaultEffect allow
        ("file_write", "/ws/.git/hooks/pre-commit", "deny"),  # protected at any depth
        ("file_write", "/ws/sub/.git/config", "deny"),
        ("file_write", "/ws/.git/HEAD", "allow"),
        ("file_read", "~/.config/landgate/hmac.key", "deny"),  # key directory: never readable
        ("shell_exec", "npm test", "allow"),
        ("shell_exec", "npm test --coverage", "deny"),
        ("shell_exec", "git diff HEAD~1", "allow"),
        ("shell_exec", ["/usr/bin/git", "diff"], "allow"),
        ("shell_exec", "curl https://x", "deny"),
        ("shell_exec", "sh -c 'git diff && npm test'", "allow"),
        ("shell_exec", "sh -c 'git diff; curl -s https://example.com'", "deny"),
        ("shell_exec", "sh -c 'FOO=1 curl x | cat'", "deny"),
        ("shell_exec", "sh -c 'sh -c \"curl x\"'", "deny"),
        ("network", "api.openai.com", "allow"),
        ("network", "registry.npmjs.org:443", "allow"),
        ("network", "registry.npmjs.org:80", "deny"),
        ("network", "127.0.0.1:11434", "allow"),
        ("network", "evil.example:443", "deny"),
        ("network", "unix:/run/user/1000/bus", "deny"),
    ],
)
def test_decisions(policy, action: str, target: object, effect: str) -> None:  # type: ignore[no-untyped-def]
    assert decide(policy, action, target).effect == effect  # type: ignore[arg-type]


def test_deny_rule_explains_the_allow_it_beat(policy) -> None:  # type: ignore[no-untyped-def]
    d = decide(policy, "file_read", "./src/.env")
    assert d.effect == "deny" and d.rule is not None and d.rule.pattern == "**/.env"
    assert d.target == "/ws/src/.env"
    reasons = {r.pattern: why for r, why in d.considered}
    assert "wins" in reasons["./**"]
    assert reasons["~/.ssh/"] == "no match"
    assert "forbid overrides permit" in reasons["./**"] or "wins" in reasons["./**"]


def test_default_decision_has_no_rule_and_points_at_default_effect(policy) -> None:  # type: ignore[no-untyped-def]
    d = decide(policy, "file_read", "/var/log/syslog")
    assert d.is_default and d.effect == "deny"
    assert d.default_source is not None and d.default_source.line == 5
    assert "default deny of file_read" in d.rule_ref()


def test_relative_targets_join_context_cwd(policy) -> None:  # type: ignore[no-untyped-def]
    d = decide(policy, "file_read", "app.ts", DecisionContext(cwd=Path("/ws/src")))
    assert d.target == "/ws/src/app.ts" and d.effect == "allow"
    d = decide(policy, "file_read", "../../etc/shadow", DecisionContext(cwd=Path("/ws/src")))
    assert d.target == "/etc/shadow" and d.effect == "deny"


def test_dotdot_cannot_escape_the_workspace(policy) -> None:  # type: ignore[no-untyped-def]
    d = decide(policy, "file_read", "./src/../../home/u/notes")
    assert d.target == "/home/u/notes" and d.effect == "deny"


def test_network_ip_judged_by_dns_names_and_port_miss_explained(policy) -> None:  # type: ignore[no-untyped-def]
    ctx = DecisionContext(names=("api.openai.com",))
    assert decide(policy, "network", "104.18.7.192:443", ctx).effect == "allow"
    assert decide(policy, "network", "104.18.7.192:443").effect == "deny"
    d = decide(policy, "network", "registry.npmjs.org:80")
    reasons = {r.pattern: why for r, why in d.considered}
    assert "port 443" in reasons["*.npmjs.org:443"]


def test_shell_c_denial_names_the_inner_rule(policy) -> None:  # type: ignore[no-untyped-def]
    d = decide(policy, "shell_exec", ["sh", "-c", "curl -s https://example.com"])
    assert d.effect == "deny" and d.rule is not None and d.rule.pattern == "curl*"
    assert "curl -s https://example.com" in d.reason


def test_inherit_false_is_kept_on_the_rule(policy) -> None:  # type: ignore[no-untyped-def]
    d = decide(policy, "shell_exec", "make")
    assert d.rule is not None and d.rule.inherit is False
    assert decide(policy, "shell_exec", "npm test").rule.inherit is True  # type: ignore[union-attr]


def test_resolved_exe_matches_path_patterns(tmp_path: Path) -> None:
    p = load_text(
        tmp_path,
        """\
        version: 1
        actions:
          - action: shell_exec
            rules:
              - { command: "/usr/bin/git *", effect: allow }
        """,
    )
    assert (
        decide(p, "shell_exec", "git log", DecisionContext(resolved_exe="/usr/bin/git")).effect
        == "allow"
    )
    assert (
        decide(p, "shell_exec", "git log", DecisionContext(resolved_exe="/tmp/git")).effect
        == "deny"
    )
    assert decide(p, "shell_exec", ["/usr/bin/git", "log"]).effect == "allow"


def test_protected_write_yields_only_to_an_exact_allow(tmp_path: Path) -> None:
    p = load_text(
        tmp_path,
        """\
        version: 1
        actions:
          - action: file_write
            rules:
              - { path: "~/.bashrc", effect: allow }
              - { path: "~/", effect: allow }
              - { path: "./.git/hooks/", effect: allow }
              - { path: "~/.config/landgate/", effect: allow }
          - action: file_read
            rules:
              - { path: "~/.config/landgate/key", effect: allow }
        """,
    )
    d = decide(p, "file_write", "~/.bashrc")
    assert d.effect == "allow" and d.rule is not None and d.rule.pattern == "~/.bashrc"
    assert any("exact path" in why for _, why in d.considered)
    # ~/ is glob-free but does not name ~/.profile: the protection stands.
    assert decide(p, "file_write", "~/.profile").effect == "deny"
    assert decide(p, "file_write", "~/notes.txt").effect == "allow"
    # A directory allow that is exactly the protected directory opens it.
    assert decide(p, "file_write", "/ws/.git/hooks/pre-commit").effect == "allow"
    assert decide(p, "file_write", "/ws/sub/.git/hooks/pre-commit").effect == "deny"
    # The key directory never yields, not even to an exact allow.
    assert decide(p, "file_write", "~/.config/landgate/key").effect == "deny"
    assert decide(p, "file_read", "~/.config/landgate/key").effect == "deny"


def test_glob_allow_does_not_open_a_protected_path(tmp_path: Path) -> None:
    p = load_text(
        tmp_path,
        """\
        version: 1
        actions:
          - action: file_write
            rules:
              - { path: "~/.*", effect: allow }
        """,
    )
    assert decide(p, "file_write", "~/.bashrc").effect == "deny"
    assert decide(p, "file_write", "~/.vimrc").effect == "allow"


def test_policy_file_and_audit_dir_are_protected(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nactions:\n  - {action: file_write, defaultEffect: allow}\n")
    from sandbox.policy import load_policy

    p = load_policy(path, cwd=Path("/ws"), home=HOME, audit_dir=tmp_path / "trail")
    assert decide(p, "file_write", str(path)).effect == "deny"
    assert decide(p, "file_write", str(tmp_path / "trail" / "seg-1.jsonl")).effect == "deny"
    assert decide(p, "file_write", "~/.local/state/landgate/audit/x").effect == "deny"
    assert decide(p, "file_write", str(tmp_path / "other.txt")).effect == "allow"
    # the file a later `landgate run` would load, also where none exists yet, any directory
    assert decide(p, "file_write", "/ws/.landgate.yaml").effect == "deny"
    assert decide(p, "file_write", "/ws/sub/.landgate.yaml").effect == "deny"
    assert decide(p, "file_write", "/ws/landgate.yaml").effect == "allow"


def test_extends_empty_removes_the_baseline(tmp_path: Path) -> None:
    with_base = load_text(tmp_path, "version: 1\n")
    without = load_text(tmp_path, "version: 1\nextends: []\n", name="bare.yaml")
    assert decide(with_base, "file_read", "/usr/lib/libc.so.6").effect == "allow"
    assert decide(without, "file_read", "/usr/lib/libc.so.6").effect == "deny"
    assert without.extends == ()
    # Protected paths are not part of the baseline: they stay.
    assert decide(without, "file_read", "~/.config/landgate/k").rule is not None


@pytest.mark.parametrize(
    "action,target",
    [
        ("file_exec", "x"),
        ("file_read", ""),
        ("network", "bad host:1"),
        ("shell_exec", ""),
        ("network", "host:99999"),
    ],
)
def test_malformed_targets_raise_usage_errors(policy, action: str, target: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError):
        decide(policy, action, target)


def test_decision_considered_covers_every_other_rule(policy) -> None:  # type: ignore[no-untyped-def]
    d = decide(policy, "network", "api.openai.com:443")
    block = policy.blocks["network"]
    assert len(d.considered) == len(block.rules) - 1


def test_indexed_network_decisions_agree_with_the_matcher() -> None:
    """decide() finds network rules through a host/suffix index; it must agree with
    match_destination."""
    from sandbox.policy import Policy

    from .test_patterns import NET_CASES

    for dest, yes, no in NET_CASES:
        p = Policy.from_dict(
            {
                "version": 1,
                "extends": [],
                "actions": [
                    {
                        "action": "network",
                        "defaultEffect": "deny",
                        "rules": [
                            {"destination": "other.example:1", "effect": "allow"},
                            {"destination": dest, "effect": "allow"},
                        ],
                    }
                ],
            },
            cwd=Path("/ws"),
            home=HOME,
        )
        assert decide(p, "network", yes).effect == "allow", (dest, yes)
        assert decide(p, "network", no).effect == "deny", (dest, no)


def test_chunked_prefilter_agrees_across_chunk_boundaries(tmp_path: Path) -> None:
    rules = "\n".join(
        f'      - {{ path: "./d{k}/**", effect: {"deny" if k % 7 == 0 else "allow"} }}'
        for k in range(100)
    )
    p = load_text(
        tmp_path, f"version: 1\nextends: []\nactions:\n  - action: file_read\n    rules:\n{rules}\n"
    )
    for k in range(100):
        d = decide(p, "file_read", f"./d{k}/x")
        assert (
            d.effect == ("deny" if k % 7 == 0 else "allow")
            and d.rule is not None
            and d.rule.index == k + 1
        )
    assert decide(p, "file_read", "./d100/x").effect == "deny"


def test_a_loaded_policy_gets_the_sessions_audit_dir_as_the_loader_gives_it(tmp_path: Path) -> None:
    """with_audit_dir: a Policy loaded without the session's audit directory gets the same
    protected write deny the loader adds for it (and the caller's object is unchanged);
    a policy that has it already is returned as it is (no second rule)."""
    from sandbox.policy.protected import with_audit_dir

    bare = load_text(tmp_path, POLICY)
    assert decide(bare, "file_write", "./trail/trail-000001.jsonl").effect == "allow"
    added = with_audit_dir(bare, "/ws/trail")
    d = decide(added, "file_write", "./trail/trail-000001.jsonl")
    assert d.effect == "deny" and d.rule is not None and d.rule.origin == "protected"
    assert decide(added, "file_write", "./src/app.ts").effect == "allow"  # the twin
    assert decide(bare, "file_write", "./trail/trail-000001.jsonl").effect == "allow"
    loaded = load_text(tmp_path, POLICY, audit_dir=Path("/ws/trail"))
    assert with_audit_dir(loaded, "/ws/trail") is loaded
    ours = [r for r in added.blocks["file_write"].rules if r.origin == "protected"]
    theirs = [r for r in loaded.blocks["file_write"].rules if r.origin == "protected"]
    assert sorted(r.pattern for r in ours) == sorted(r.pattern for r in theirs)
    assert len({r.index for r in ours}) == len(ours)  # every protected ref stays distinct


def test_the_policy_with_the_audit_dir_is_made_once_per_loaded_policy(tmp_path: Path) -> None:
    """A framework passes one loaded Policy to every run: the copy with the session's audit
    directory is kept on it, so the copy's compiled caches outlive a run; another directory
    gets its own copy."""
    from sandbox.policy.protected import with_audit_dir

    bare = load_text(tmp_path, POLICY)
    first = with_audit_dir(bare, "/ws/trail")
    assert with_audit_dir(bare, "/ws/trail") is first
    other = with_audit_dir(bare, "/ws/other-trail")
    assert other is not first
    assert decide(other, "file_write", "./trail/x").effect == "allow"
    assert decide(other, "file_write", "./other-trail/x").effect == "deny"
