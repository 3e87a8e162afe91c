"""Loader: native fields, environment, enforcement, workspace, presets, resolve_policy_path,
schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from sandbox.errors import LandgateError, PolicyError
from sandbox.policy import decide, load_policy, resolve_policy_path
from sandbox.policy.model import ACTIONS, Policy

from .helpers import HOME, PRESETS, SAFECLAW_DIR, SHARED_SAFECLAW_DIR, WS, load_text


def test_native_fields(tmp_path: Path) -> None:
    p = load_text(
        tmp_path,
        """\
        version: 1
        mode: simulate
        workspace: ~/project
        environment:
          pass: [GITHUB_TOKEN]
          deny: [HISTFILE, "LC_*"]
          set: {CI: "1", RETRIES: 3}
        enforcement:
          require: [landlock]
          durability: strict
        """,
    )
    assert p.mode == "simulate" and p.version == 1
    assert p.workspace == Path(os.path.realpath(HOME / "project"))
    assert p.environment.allow == ("GITHUB_TOKEN",) and p.environment.set == {
        "CI": "1",
        "RETRIES": "3",
    }
    assert p.enforcement.require == frozenset({"landlock"}) and p.enforcement.durability == "strict"
    assert set(p.blocks) == set(ACTIONS)
    assert p.declared_actions == ()
    assert len(p.sha256) == 64 and p.format == "native"


def test_defaults(tmp_path: Path) -> None:
    p = load_text(tmp_path, "version: 1\n")
    assert p.mode == "enforce" and p.extends == ("system",)
    assert p.workspace == Path(os.path.realpath(WS))  # "." against the cwd given
    assert p.enforcement.require == frozenset({"landlock", "seccomp"})
    assert p.enforcement.durability == "batch"


def test_workspace_relative_to_cwd_not_to_the_policy_file(tmp_path: Path) -> None:
    p = load_text(tmp_path, "version: 1\nworkspace: sub\n", cwd=Path("/srv/run"))
    assert p.workspace == Path("/srv/run/sub")
    assert decide(p, "file_read", "x").target == "/srv/run/sub/x"


def test_environment_filtering() -> None:
    from sandbox.policy.model import Environment

    env = Environment(allow=("GITHUB_TOKEN",), deny=("HISTFILE",), set={"CI": "1"})
    out = env.apply(
        {
            "PATH": "/bin",
            "GITHUB_TOKEN": "t",
            "NPM_TOKEN": "n",
            "AWS_REGION": "x",
            "my_secret_value": "s",
            "HISTFILE": "h",
            "HOME": "/h",
        }
    )
    assert out == {"PATH": "/bin", "GITHUB_TOKEN": "t", "HOME": "/h", "CI": "1"}
    closed = Environment(allow=("PATH",), pass_by_default=False)
    assert closed.apply({"PATH": "/bin", "HOME": "/h"}) == {"PATH": "/bin"}


def test_from_dict_and_load_classmethods(tmp_path: Path) -> None:
    p = Policy.from_dict(
        {
            "version": 1,
            "actions": [
                {
                    "action": "network",
                    "defaultEffect": "deny",
                    "rules": [{"destination": "api.openai.com", "effect": "allow"}],
                }
            ],
        },
        cwd=WS,
        home=HOME,
    )
    assert decide(p, "network", "api.openai.com:443").effect == "allow"
    with pytest.raises(PolicyError) as exc:
        Policy.from_dict(
            {
                "version": 1,
                "actions": [
                    {
                        "action": "network",
                        "rules": [{"destination": "10.0.0.1/8", "effect": "allow"}],
                    }
                ],
            },
            source="api-policy",
        )
    assert str(exc.value).startswith("api-policy:") and "10.0.0.1/8" in str(exc.value)
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\n")
    assert Policy.load(path, cwd=WS).version == 1


def test_resolve_policy_path(tmp_path: Path) -> None:
    assert resolve_policy_path(None, tmp_path).name == "coding-agent.yaml"
    (tmp_path / ".landgate.yaml").write_text("version: 1\n")
    assert resolve_policy_path(None, tmp_path) == tmp_path / ".landgate.yaml"
    assert resolve_policy_path("ci", tmp_path).name == "ci.yaml"
    (tmp_path / "ci").write_text("version: 1\n")  # an existing file wins over a preset name
    assert resolve_policy_path("ci", tmp_path) == tmp_path / "ci"
    with pytest.raises(LandgateError) as exc:
        resolve_policy_path("missing.yaml", tmp_path)
    assert exc.value.exit_code == 1 and "missing.yaml" in str(exc.value)
    with pytest.raises(LandgateError) as exc:
        resolve_policy_path("nosuchpreset", tmp_path)
    assert "coding-agent" in str(exc.value)  # lists the presets


PRESET_FILES = sorted(PRESETS.glob("*.yaml"))


def test_all_four_presets_exist() -> None:
    assert {p.stem for p in PRESET_FILES} >= {"coding-agent", "ci", "read-only", "offline"}


def test_shipped_safeclaw_policies_are_verbatim_copies() -> None:
    """The originals are in ../shared/safeclaw-policies beside the checkout (CI has it)."""
    assert SHARED_SAFECLAW_DIR.is_dir(), f"{SHARED_SAFECLAW_DIR} is missing"
    for name in ("file-access.json", "command-exec.json", "network.json"):
        assert (SAFECLAW_DIR / name).read_bytes() == (SHARED_SAFECLAW_DIR / name).read_bytes(), name


@pytest.mark.parametrize("preset", PRESET_FILES, ids=lambda p: p.stem)
def test_presets_validate_against_the_schema_and_load(preset: Path) -> None:
    import jsonschema

    schema = json.loads((PRESETS / "policy.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(preset.read_text()), schema)
    load_policy(preset, cwd=WS, home=HOME)


@pytest.mark.parametrize("name", ["file-access.json", "command-exec.json", "network.json"])
def test_schema_accepts_safeclaw_blocks(name: str) -> None:
    import jsonschema

    schema = json.loads((PRESETS / "policy.schema.json").read_text())
    jsonschema.validate(json.loads((PRESETS / "safeclaw" / name).read_text()), schema)


def test_schema_rejects_what_the_loader_rejects() -> None:
    import jsonschema

    schema = json.loads((PRESETS / "policy.schema.json").read_text())
    for bad in (
        {"version": 2},
        {"version": 1, "bogus": 1},
        {
            "version": 1,
            "actions": [{"action": "file_read", "rules": [{"command": "x", "effect": "allow"}]}],
        },
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


@pytest.fixture(scope="module")
def coding_agent() -> Policy:
    return load_policy(PRESETS / "coding-agent.yaml", cwd=WS, home=HOME)


@pytest.mark.parametrize(
    "action,target,effect",
    [
        ("file_read", "README.md", "allow"),
        ("file_read", "~/.ssh/id_rsa", "deny"),
        ("file_read", ".env", "deny"),
        ("file_read", "pkg/nested/.env", "deny"),
        ("file_read", "~/.aws/credentials", "deny"),
        ("file_read", "~/.docker/config.json", "deny"),
        ("file_read", "~/.bashrc", "allow"),  # start-up files are read (issue 15)
        ("file_write", "src/app.ts", "allow"),
        ("file_write", "~/.bashrc", "deny"),
        ("file_write", ".git/hooks/pre-commit", "deny"),
        ("shell_exec", "cat README.md", "allow"),
        ("shell_exec", "cat ~/.ssh/id_rsa", "allow"),  # the exec is fine; the read is denied above
        ("shell_exec", "sh -c 'curl -s https://example.com'", "deny"),
        ("shell_exec", "curl -s https://example.com", "deny"),
        ("shell_exec", "git status", "allow"),
        ("shell_exec", "git push origin main", "deny"),
        ("shell_exec", "python3 -c 'print(1)'", "allow"),
        ("shell_exec", "od -c f", "allow"),  # everyday tools run (issue 15)
        ("shell_exec", "./hello", "allow"),  # what the agent builds runs
        ("shell_exec", "sh -c 'make && ./hello'", "allow"),
        ("shell_exec", "doas id", "deny"),
        ("shell_exec", "bash -c 'wget -q http://x'", "deny"),
        ("network", "registry.npmjs.org:443", "allow"),
        ("network", "pypi.org:443", "allow"),
        ("network", "api.anthropic.com:443", "allow"),
        ("network", "localhost:11434", "allow"),
        ("network", "exfil.example.com:443", "deny"),
        ("network", "unix:/run/user/1000/bus", "deny"),
    ],
)
def test_coding_agent_preset(coding_agent: Policy, action: str, target: str, effect: str) -> None:
    assert decide(coding_agent, action, target).effect == effect


def test_offline_preset_has_no_network(tmp_path: Path) -> None:
    p = load_policy(PRESETS / "offline.yaml", cwd=WS, home=HOME)
    for t in ("localhost:8080", "127.0.0.1:1", "api.openai.com:443", "unix:/tmp/x.sock"):
        assert decide(p, "network", t).effect == "deny"


def test_read_only_preset_writes_nothing() -> None:
    p = load_policy(PRESETS / "read-only.yaml", cwd=WS, home=HOME)
    assert decide(p, "file_write", "src/app.ts").effect == "deny"
    assert decide(p, "file_write", "/dev/null").effect == "allow"  # baseline
    assert decide(p, "file_read", "src/app.ts").effect == "allow"
