"""`landgate check` and `landgate explain` through the real command line (exit codes 0/1/2)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import cli

from .helpers import PRESETS, REPO, SAFECLAW_DIR


def landgate(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return cli.landgate(*args, cwd=cwd)


@pytest.mark.parametrize(
    "policy",
    [str(SAFECLAW_DIR / f) for f in ("file-access.json", "command-exec.json", "network.json")]
    + ["coding-agent", "ci", "read-only", "offline"],
)
def test_check_valid_policies_exit_0(policy: str) -> None:
    proc = landgate("check", "--policy", policy)
    assert proc.returncode == 0, proc.stderr
    assert ": valid (" in proc.stdout.splitlines()[0]
    for action in ("file_read", "file_write", "shell_exec", "network"):
        assert f"\n{action}: default " in proc.stdout


def test_check_summarises_safeclaw_file_access() -> None:
    out = landgate("check", "--policy", str(SAFECLAW_DIR / "file-access.json")).stdout
    assert "file-access.json: valid (SafeClaw action blocks" in out
    assert "file_read: default deny (no defaultEffect: implied); 2 allow / 4 deny rules" in out
    assert "*/.env" in out and "baseline" in out


def test_explain_env_is_denied_by_the_env_rule_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    proc = landgate(
        "explain",
        "--policy",
        str(SAFECLAW_DIR / "file-access.json"),
        "file_read",
        "./src/.env",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("deny") and lines[0].endswith("/src/.env")
    assert "rule 1 (*/.env)" in lines[1] and "file-access.json:4:" in lines[1]
    assert "why:" in lines[2]
    assert "rule 5 (./src/**): matched, but deny rule 1 (*/.env) wins" in proc.stdout


def test_explain_allow_exits_0(tmp_path: Path) -> None:
    proc = landgate(
        "explain",
        "--policy",
        str(SAFECLAW_DIR / "file-access.json"),
        "file_read",
        "./src/app.ts",
        cwd=tmp_path,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("allow")


@pytest.mark.parametrize(
    "action,target,code",
    [
        ("shell_exec", "cat README.md", 0),
        ("shell_exec", "sh -c 'curl -s https://example.com'", 1),
        ("shell_exec", "git status", 0),
        ("network", "api.openai.com:443", 0),
        ("network", "exfil.example.com:443", 1),
        ("file_read", "~/.ssh/id_rsa", 1),
    ],
)
def test_explain_coding_agent(action: str, target: str, code: int) -> None:
    proc = landgate("explain", "--policy", "coding-agent", action, target)
    assert proc.returncode == code, proc.stdout + proc.stderr


def test_explain_default_decision_names_the_default() -> None:
    proc = landgate(
        "explain", "--policy", str(SAFECLAW_DIR / "network.json"), "network", "evil.example:443"
    )
    assert proc.returncode == 1
    assert "by default deny of network" in proc.stdout and "network.json:3:" in proc.stdout


def test_usage_errors_exit_2() -> None:
    assert landgate("explain", "--policy", "coding-agent", "file_exec", "x").returncode == 2
    assert landgate("check").returncode == 2
    proc = landgate("explain", "--policy", "coding-agent", "network", "bad host:1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_missing_policy_exits_1(tmp_path: Path) -> None:
    proc = landgate("check", "--policy", str(tmp_path / "absent.yaml"))
    assert proc.returncode == 1 and "absent.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_invalid_policy_exits_1_with_located_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nactions:\n  - action: network\n    rules:\n"
        "      - { destination: '10.0.0.1/8', effect: allow }\n"
    )
    proc = landgate("check", "--policy", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{bad}:5:") and "10.0.0.1/8" in proc.stderr


def test_presets_dir_is_bundled() -> None:
    assert (REPO / "sandbox" / "presets" / "coding-agent.yaml").resolve() == (
        PRESETS / "coding-agent.yaml"
    ).resolve()
