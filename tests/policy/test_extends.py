"""`extends:` presets and files, `exec: true`, `$PATH`, and the small policy fixes of issue 15."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.errors import LandgateError, PolicyError
from sandbox.plan.landlock import EXEC, compile_landlock_rules
from sandbox.policy import decide, load_policy, resolve_policy_path
from sandbox.policy.execgrant import execute_grant
from sandbox.policy.loader import choose_policy, presets_dir
from sandbox.policy.toolchains import toolchain_dirs


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


CHILD = """\
version: 1
extends: [coding-agent]
actions:
  - action: shell_exec
    rules:
      - { command: "od *", effect: allow }
      - { command: "curl*", effect: allow }
  - action: file_read
    rules:
      - { path: "./.env", effect: allow }
"""


def test_extends_a_preset_merges_the_childs_rules_and_keeps_the_parents_denies(
    tmp_path: Path,
) -> None:
    pol = load_policy(_write(tmp_path / "child.yaml", CHILD), cwd=tmp_path, home=tmp_path)
    od = decide(pol, "shell_exec", "od -c f")
    assert od.effect == "allow" and od.rule is not None
    assert od.rule.source.file.endswith("child.yaml") and od.rule.source.line == 6
    # deny wins across files: the child's allow of curl does not lift the preset's deny
    curl = decide(pol, "shell_exec", "curl https://example.com")
    assert curl.effect == "deny" and curl.rule is not None
    assert curl.rule.source.file.endswith("coding-agent.yaml")
    env = decide(pol, "file_read", str(tmp_path / ".env"))
    assert env.effect == "deny" and env.rule is not None
    assert env.rule.source.file.endswith("coding-agent.yaml")
    # the parent's allows, defaults, network and environment come along
    assert decide(pol, "file_read", str(tmp_path / "src" / "a.py")).effect == "allow"
    assert decide(pol, "network", "pypi.org:443").effect == "allow"
    assert decide(pol, "network", "exfil.example.com:443").effect == "deny"
    assert pol.block("shell_exec").default_effect == "allow"
    assert not pol.environment.passes("AWS_SECRET_ACCESS_KEY")
    assert any(r.origin == "baseline" for r in pol.block("file_read").rules)
    assert pol.parents and pol.parents[0].name == "coding-agent.yaml"


def test_extends_child_default_wins_and_parent_files_are_protected(tmp_path: Path) -> None:
    base = _write(
        tmp_path / "base.yaml",
        "version: 1\nactions:\n  - action: shell_exec\n    defaultEffect: allow\n"
        '    rules:\n      - { command: "nc*", effect: deny }\n',
    )
    child = _write(
        tmp_path / "child.yaml",
        "version: 1\nextends: [base.yaml]\nactions:\n  - action: shell_exec\n"
        '    defaultEffect: deny\n    rules:\n      - { command: "ls*", effect: allow }\n',
    )
    pol = load_policy(child, cwd=tmp_path, home=tmp_path)
    assert decide(pol, "shell_exec", "ls -l").effect == "allow"
    assert decide(pol, "shell_exec", "od x").effect == "deny"  # the child's default
    assert decide(pol, "shell_exec", "nc -l 1").effect == "deny"
    assert decide(pol, "file_write", str(base)).effect == "deny"  # a parent is the policy too
    plain = load_policy(base, cwd=tmp_path, home=tmp_path)
    assert pol.sha256 != plain.sha256


def test_extends_chain_and_cycle_is_an_error_with_file_line(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", "version: 1\nextends: [b.yaml]\n")
    _write(tmp_path / "b.yaml", "version: 1\nextends:\n  - coding-agent\n  - ./a.yaml\n")
    with pytest.raises(PolicyError) as exc:
        load_policy(tmp_path / "a.yaml", cwd=tmp_path, home=tmp_path)
    text = str(exc.value)
    assert text.startswith(f"{tmp_path / 'b.yaml'}:4:5: extends: cycle: "), text
    _write(tmp_path / "c.yaml", "version: 1\nextends: [d.yaml]\n")
    _write(tmp_path / "d.yaml", "version: 1\nextends: [ci]\n")
    chained = load_policy(tmp_path / "c.yaml", cwd=tmp_path, home=tmp_path)
    assert [p.name for p in chained.parents] == ["d.yaml", "ci.yaml"]
    assert decide(chained, "shell_exec", "git push origin").effect == "deny"


def test_extends_unknown_names_the_entry(tmp_path: Path) -> None:
    pol = _write(tmp_path / "u.yaml", "version: 1\nextends:\n  - system\n  - corporate\n")
    with pytest.raises(PolicyError) as exc:
        load_policy(pol, cwd=tmp_path, home=tmp_path)
    assert str(exc.value).startswith(f"{pol}:4:5: extends: unknown profile 'corporate'")
    assert "coding-agent" in str(exc.value)  # the message lists what exists


def test_an_error_inside_a_parent_names_the_parents_line(tmp_path: Path) -> None:
    _write(tmp_path / "bad.yaml", "version: 1\nmode: sideways\n")
    child = _write(tmp_path / "child.yaml", "version: 1\nextends: [bad.yaml]\n")
    with pytest.raises(PolicyError) as exc:
        load_policy(child, cwd=tmp_path, home=tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / 'bad.yaml'}:2:7:")


# ----------------------------------------------------------------------------- exec: true


EXEC_POLICY = """\
version: 1
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "{tool}/", effect: allow{flag} }}
"""


@pytest.mark.parametrize("flag", [True, False])
def test_exec_true_is_what_grants_landlock_execute(tmp_path: Path, flag: bool) -> None:
    tool = tmp_path / "tool"
    tool.mkdir()
    text = EXEC_POLICY.format(tool=tool, flag=", exec: true" if flag else "")
    ws = tmp_path / "ws"
    ws.mkdir()
    pol = load_policy(_write(tmp_path / "p.yaml", text), cwd=ws, home=tmp_path)
    plan = compile_landlock_rules(pol, 7, pid_ns=True)
    got = {r.path: r.access for r in plan.rules}
    assert bool(got[str(tool)] & EXEC) is flag
    assert bool(got["/usr"] & EXEC)  # the baseline's program trees say exec: true
    why = execute_grant(pol, str(tool / "bin" / "x"))
    assert (why is not None) is flag
    if flag:
        assert "p.yaml" in why and "exec: true" in why


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('{ path: "/opt/", effect: deny, exec: true }', "has no meaning on a deny"),
        ('{ path: "/opt/", effect: allow, exec: maybe }', "exec"),
    ],
)
def test_exec_field_errors(tmp_path: Path, rule: str, message: str) -> None:
    text = f"version: 1\nactions:\n  - action: file_read\n    rules:\n      - {rule}\n"
    with pytest.raises(PolicyError) as exc:
        load_policy(_write(tmp_path / "p.yaml", text), cwd=tmp_path, home=tmp_path)
    assert message in str(exc.value) and ":5:" in str(exc.value)


def test_exec_on_a_write_rule_is_an_error(tmp_path: Path) -> None:
    text = (
        "version: 1\nactions:\n  - action: file_write\n    rules:\n"
        '      - { path: "/opt/", effect: allow, exec: true }\n'
    )
    with pytest.raises(PolicyError, match="applies only to file_read"):
        load_policy(_write(tmp_path / "p.yaml", text), cwd=tmp_path, home=tmp_path)


# ----------------------------------------------------------------------------- $PATH


def test_path_dirs_resolve_shims_bin_prefixes_and_symlinks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pyenv = home / ".pyenv"
    (pyenv / "shims").mkdir(parents=True)
    (pyenv / "versions" / "3.99" / "bin").mkdir(parents=True)
    venv = tmp_path / "opt" / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "aider").write_text("#!/bin/sh\n")
    local_bin = home / ".local" / "bin"
    local_bin.mkdir(parents=True)
    (local_bin / "aider").symlink_to(venv / "aider")
    (home / "bin").mkdir()
    path = ":".join([str(pyenv / "shims"), str(local_bin), str(home / "bin"), "/usr/bin", "."])
    got = toolchain_dirs(path, str(home))
    assert str(pyenv) in got  # shims/ -> the manager's root (versions/ beneath it)
    assert str(tmp_path / "opt" / "venv") in got  # a symlink in a PATH dir -> its prefix
    assert str(local_bin) in got  # never widened to ~/.local
    assert str(home / "bin") in got and str(home) not in got  # never the home itself
    assert "/usr" in got and "/" not in got
    assert not any(not d.startswith("/") for d in got)  # "." is skipped


def test_path_rule_expands_in_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "tools" / "bin"
    tools.mkdir(parents=True)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin")
    text = (
        "version: 1\nactions:\n  - action: file_read\n    rules:\n"
        '      - { path: "$PATH", effect: allow, exec: true }\n'
    )
    pol = load_policy(_write(tmp_path / "p.yaml", text), cwd=tmp_path, home=tmp_path)
    mine = [r for r in pol.block("file_read").rules if r.origin == "policy"]
    assert {r.pattern for r in mine} >= {f"{tmp_path / 'tools'}/", "/usr/"}
    assert all(r.execute and r.source.line == 5 for r in mine)
    assert decide(pol, "file_read", str(tools / "x")).effect == "allow"


def test_path_rule_only_in_file_read_allow(tmp_path: Path) -> None:
    text = (
        "version: 1\nactions:\n  - action: file_write\n    rules:\n"
        '      - { path: "$PATH", effect: allow }\n'
    )
    with pytest.raises(PolicyError, match=r"\$PATH"):
        load_policy(_write(tmp_path / "p.yaml", text), cwd=tmp_path, home=tmp_path)


# ----------------------------------------------------------------------------- small ones


def test_policy_arg_is_a_path_first_and_a_preset_second(tmp_path: Path) -> None:
    assert resolve_policy_path("ci.yaml", tmp_path) == presets_dir() / "ci.yaml"
    assert resolve_policy_path("ci", tmp_path) == presets_dir() / "ci.yaml"
    own = _write(tmp_path / "ci.yaml", "version: 1\n")
    assert resolve_policy_path("ci.yaml", tmp_path) == own
    with pytest.raises(LandgateError, match="presets: "):
        resolve_policy_path("nope.yaml", tmp_path)


@pytest.mark.parametrize(
    ("argv0", "preset"),
    [("claude", "claude-code"), ("/usr/local/bin/codex", "codex"), ("aider", "aider")],
)
def test_agent_commands_pick_their_preset(tmp_path: Path, argv0: str, preset: str) -> None:
    path, label = choose_policy(None, tmp_path, [argv0, "--help"])
    assert path == presets_dir() / f"{preset}.yaml"
    assert f"the {preset} preset (picked for `{os.path.basename(argv0)}`" in label
    other, label2 = choose_policy(None, tmp_path, ["bash"])
    assert other.name == "coding-agent.yaml" and "default" in label2
    _write(tmp_path / ".landgate.yaml", "version: 1\n")
    assert choose_policy(None, tmp_path, [argv0])[0] == tmp_path / ".landgate.yaml"


@pytest.mark.parametrize(
    ("dest", "hint"),
    [
        ("https://api.openai.com", "drop the scheme: use api.openai.com:443"),
        ("http://localhost:8080/v1", "drop the scheme: use localhost:8080"),
    ],
)
def test_url_destination_says_drop_the_scheme(tmp_path: Path, dest: str, hint: str) -> None:
    text = (
        "version: 1\nactions:\n  - action: network\n    rules:\n"
        f'      - {{ destination: "{dest}", effect: allow }}\n'
    )
    pol = _write(tmp_path / "p.yaml", text)
    with pytest.raises(PolicyError) as exc:
        load_policy(pol, cwd=tmp_path, home=tmp_path)
    assert str(exc.value).startswith(f"{pol}:5:24: ") and hint in str(exc.value)


@pytest.mark.parametrize(
    ("preset", "var", "host"),
    [
        ("claude-code", "ANTHROPIC_API_KEY", "api.anthropic.com:443"),
        ("codex", "OPENAI_API_KEY", "api.openai.com:443"),
        ("aider", "OPENAI_API_KEY", "api.openai.com:443"),
    ],
)
def test_agent_presets(tmp_path: Path, preset: str, var: str, host: str) -> None:
    pol = load_policy(presets_dir() / f"{preset}.yaml", cwd=tmp_path, home=tmp_path)
    assert pol.environment.passes(var) and not pol.environment.passes("AWS_SECRET_ACCESS_KEY")
    assert decide(pol, "network", host).effect == "allow"
    state = {"claude-code": ".claude/settings.json", "codex": ".codex/auth.json"}.get(
        preset, ".aider/caches/x"
    )
    assert decide(pol, "file_write", str(tmp_path / state)).effect == "allow"
    assert decide(pol, "file_read", str(tmp_path / ".ssh" / "id_rsa")).effect == "deny"
    assert decide(pol, "shell_exec", "curl https://x").effect == "deny"


def test_safeclaw_blocks_read_exec_too(tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    tool.mkdir()
    text = (
        '[{"action": "file_read", "defaultEffect": "deny", "rules": '
        f'[{{"path": "{tool}/", "effect": "allow", "exec": true}}]}}]'
    )
    pol = load_policy(_write(tmp_path / "sc.json", text), cwd=tmp_path, home=tmp_path)
    assert pol.format == "safeclaw"
    plan = compile_landlock_rules(pol, 7, pid_ns=True)
    assert {r.path: r.access for r in plan.rules}[str(tool)] & EXEC
