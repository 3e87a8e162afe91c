"""`landgate allow ACTION TARGET`: the rule lands in the file the user owns, comments kept,
and nothing that does not load (or would change nothing) is ever written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import cli

from sandbox.errors import LandgateError
from sandbox.policy import decide, load_policy
from sandbox.policy.allow import plan_allow, write_allow

ROOT = Path(__file__).resolve().parents[2]


def _allow(tmp_path: Path, action: str, target: str, **kw) -> Path:
    change = plan_allow(action, target, cwd=tmp_path, **kw)
    write_allow(change)
    return change.path


def test_creates_landgate_yaml_extending_the_preset(tmp_path):
    path = _allow(tmp_path, "shell_exec", "od *")
    assert path == tmp_path / ".landgate.yaml"
    text = path.read_text()
    assert "extends: [coding-agent]" in text
    policy = load_policy(path, cwd=tmp_path)
    assert decide(policy, "shell_exec", "od -c f").effect == "allow"
    # the preset's denies stay: extends keeps them, and deny wins
    assert decide(policy, "file_read", str(tmp_path / ".env")).effect == "deny"
    assert decide(policy, "shell_exec", "curl http://x").effect == "deny"


def test_policy_preset_is_what_the_new_file_extends(tmp_path):
    path = _allow(tmp_path, "network", "api.example.com:443", policy_arg="claude-code")
    assert "extends: [claude-code]" in path.read_text()
    policy = load_policy(path, cwd=tmp_path)
    assert decide(policy, "network", "api.example.com:443").effect == "allow"
    assert decide(policy, "network", "api.example.com:80").effect == "deny"  # the twin


EXISTING = """\
# my team's policy: keep this comment
version: 1
extends: [coding-agent]
actions:
  - action: file_read   # reads
    rules:
      # caches
      - { path: "~/.cache/tool/", effect: allow }
      - path: ~/.config/tool/
        effect: allow   # block-style rule
  - action: network
    rules: []
# trailing comment
"""


def test_existing_file_keeps_comments_and_gets_each_kind_of_insertion(tmp_path):
    p = tmp_path / ".landgate.yaml"
    p.write_text(EXISTING)
    _allow(tmp_path, "file_read", "/srv/data/")  # after the last block-style rule
    _allow(tmp_path, "network", "db.internal:5432")  # into the flow list []
    _allow(tmp_path, "shell_exec", "od *")  # a new block
    text = p.read_text()
    for line in EXISTING.splitlines():
        if "rules: []" not in line:
            assert line in text, line  # every original line (comments too) is still there
    policy = load_policy(p, cwd=tmp_path)
    assert decide(policy, "file_read", "/srv/data/x").effect == "allow"
    assert decide(policy, "network", "db.internal:5432").effect == "allow"
    assert decide(policy, "shell_exec", "od -c f").effect == "allow"
    assert decide(policy, "file_read", os.path.expanduser("~/.config/tool/a")).effect == "allow"
    # placed inside the file_read block, indented like its neighbours
    lines = text.splitlines()
    i = next(k for k, x in enumerate(lines) if "/srv/data/" in x)
    assert lines[i].startswith("      - {") and "block-style rule" in lines[i - 1]


def test_refuses_an_allow_a_deny_overrides_and_writes_nothing(tmp_path):
    p = tmp_path / ".landgate.yaml"
    p.write_text(EXISTING)
    with pytest.raises(LandgateError, match=r"would still be denied by rule \d+, .*coding-agent"):
        plan_allow("file_read", str(tmp_path / ".env"), cwd=tmp_path)
    assert p.read_text() == EXISTING


def test_refuses_a_rule_that_does_not_load(tmp_path):
    with pytest.raises(LandgateError, match="not written"):
        plan_allow("network", "family 16", cwd=tmp_path)
    with pytest.raises(LandgateError, match="not written"):
        plan_allow("network", "https://api.example.com", cwd=tmp_path)
    assert not (tmp_path / ".landgate.yaml").exists()


def test_already_allowed_changes_nothing(tmp_path):
    _allow(tmp_path, "shell_exec", "od *")
    before = (tmp_path / ".landgate.yaml").read_text()
    change = plan_allow("shell_exec", "od *", cwd=tmp_path)
    assert change.new == change.old == before and "already allowed" in change.note


def test_exec_right_is_written_as_exec_true(tmp_path):
    path = _allow(tmp_path, "file_read", "/srv/tools/", execute=True)
    assert 'path: "/srv/tools/", effect: allow, exec: true' in path.read_text()
    from sandbox.policy.execgrant import execute_grant

    policy = load_policy(path, cwd=tmp_path)
    assert execute_grant(policy, "/srv/tools/bin/x") is not None
    assert execute_grant(policy, "/srv/other/x") is None  # the twin


def test_a_user_policy_file_is_edited_itself(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("version: 1\nactions:\n  - action: shell_exec\n    defaultEffect: deny\n")
    _allow(tmp_path, "shell_exec", "make *", policy_arg=str(mine))
    assert not (tmp_path / ".landgate.yaml").exists()
    assert decide(load_policy(mine, cwd=tmp_path), "shell_exec", "make all").effect == "allow"


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return cli.landgate("allow", *args, cwd=tmp_path, env=env, stdin="")


def test_cli_shows_the_diff_and_writes_only_with_yes_when_not_a_terminal(tmp_path):
    p = _cli(tmp_path, "shell_exec", "od *")
    assert p.returncode == 1 and '+      - { command: "od *", effect: allow }' in p.stdout
    assert "not written (not a terminal; --yes writes)" in p.stderr
    assert not (tmp_path / ".landgate.yaml").exists()
    q = _cli(tmp_path, "shell_exec", "od *", "--yes")
    assert q.returncode == 0, q.stderr
    assert "od *" in (tmp_path / ".landgate.yaml").read_text()
    r = _cli(tmp_path, "file_read", ".env", "--yes")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
