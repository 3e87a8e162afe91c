"""The SafeClaw examples mean what SafeClaw's README says, alone and combined in one array."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.policy import decide, load_policy
from sandbox.policy.model import Policy

from .helpers import HOME, SAFECLAW_DIR, WS

FILES = ("file-access.json", "command-exec.json", "network.json")

FILE_READ = [  # (target, effect)
    ("./src/.env", "deny"),  # */.env: a file of that name at any depth, even inside an allowed tree
    ("./.env", "deny"),
    ("/ws/pkg/nested/.env", "deny"),
    ("./src/app.ts", "allow"),  # ./src/** relative to the workspace
    ("./src/deep/er/x.ts", "allow"),
    ("./package.json", "allow"),
    ("./README.md", "deny"),  # no defaultEffect: deny
    ("/elsewhere/src/app.ts", "deny"),  # ./src is the workspace's, not any src
    ("~/.ssh/id_rsa", "deny"),  # /.ssh/: a directory of that name at any depth
    ("/srv/backup/.ssh/authorized_keys", "deny"),
    ("~/.aws/credentials", "deny"),
    ("./src/credentials", "deny"),  # */credentials
    ("./src/credentials.md", "allow"),
    ("./src/.sshx/key", "allow"),  # .ssh only as a whole component
]
SHELL = [
    ("npm test", "allow"),
    ("npm run build", "allow"),
    ("git status", "allow"),
    ("git diff --cached", "allow"),
    ("tsc --noEmit", "allow"),
    ("npm install left-pad", "deny"),
    ("git push origin main", "deny"),
    ("tsc", "deny"),
]
NETWORK = [
    ("api.openai.com", "allow"),
    ("api.openai.com:443", "allow"),
    ("api.openai.com:8443", "allow"),
    ("registry.npmjs.org:443", "allow"),
    ("evil.example.com:443", "deny"),
    ("localhost:11434", "allow"),
    ("127.0.0.1:8080", "allow"),
    ("[::1]:3000", "allow"),
    ("10.0.0.1:80", "deny"),
    ("api.openai.com.evil.net:443", "deny"),
]


def _load(path: Path) -> Policy:
    return load_policy(path, cwd=WS, home=HOME)


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    """[file-access, command-exec, network] in one JSON array, built from the verbatim files."""
    blocks = [json.loads((SAFECLAW_DIR / f).read_text()) for f in FILES]
    path = tmp_path_factory.mktemp("safeclaw") / "combined.json"
    path.write_text(json.dumps(blocks, indent=2))
    return _load(path)


@pytest.mark.parametrize("target,effect", FILE_READ)
def test_file_access_alone(target: str, effect: str) -> None:
    assert decide(_load(SAFECLAW_DIR / "file-access.json"), "file_read", target).effect == effect


@pytest.mark.parametrize("target,effect", SHELL)
def test_command_exec_alone(target: str, effect: str) -> None:
    assert decide(_load(SAFECLAW_DIR / "command-exec.json"), "shell_exec", target).effect == effect


@pytest.mark.parametrize("target,effect", NETWORK)
def test_network_alone(target: str, effect: str) -> None:
    assert decide(_load(SAFECLAW_DIR / "network.json"), "network", target).effect == effect


@pytest.mark.parametrize(
    "action,target,effect",
    [("file_read", t, e) for t, e in FILE_READ]
    + [("shell_exec", t, e) for t, e in SHELL]
    + [("network", t, e) for t, e in NETWORK],
)
def test_combined_array_means_the_same(
    combined: Policy, action: str, target: str, effect: str
) -> None:
    assert decide(combined, action, target).effect == effect


def test_env_deny_names_the_rule_and_its_line() -> None:
    policy = _load(SAFECLAW_DIR / "file-access.json")
    d = decide(policy, "file_read", "./src/.env")
    assert d.rule is not None and d.rule.pattern == "*/.env" and d.rule.index == 1
    text = (SAFECLAW_DIR / "file-access.json").read_text().splitlines()
    assert '"*/.env"' in text[d.rule.source.line - 1]
    # The ./src/** allow matched too, and the explanation says why it lost.
    why = {r.pattern: reason for r, reason in d.considered}
    assert "wins" in why["./src/**"]
    assert why["./package.json"] == "no match"


def test_safeclaw_format_and_missing_blocks() -> None:
    policy = _load(SAFECLAW_DIR / "file-access.json")
    assert policy.format == "safeclaw"
    assert policy.declared_actions == ("file_read",)
    assert policy.blocks["file_read"].default_source is None  # no defaultEffect: deny
    # Blocks the file does not have are implied deny.
    assert decide(policy, "network", "api.openai.com").effect == "deny"
    assert decide(policy, "shell_exec", "npm test").effect == "deny"
    # The baseline still applies.
    assert decide(policy, "file_read", "/usr/lib/os-release").effect == "allow"


def test_combined_array_rejects_a_second_block_for_the_same_action(tmp_path: Path) -> None:
    from sandbox.errors import PolicyError

    block = json.loads((SAFECLAW_DIR / "network.json").read_text())
    path = tmp_path / "twice.json"
    path.write_text(json.dumps([block, block], indent=1))
    with pytest.raises(PolicyError) as exc:
        _load(path)
    assert "second network block" in str(exc.value) and "twice.json:" in str(exc.value)
