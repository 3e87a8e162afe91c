"""`landgate init`: detection, the written file, never clobbering, the CLI's output."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import cli

from sandbox.errors import UsageError
from sandbox.policy import decide, load_policy
from sandbox.setup import detect_project, init_project


def test_detects_each_kind_of_project(tmp_path: Path) -> None:
    assert detect_project(tmp_path).kinds == []
    (tmp_path / "package.json").write_text('{"scripts": {"test": "jest"}}')
    (tmp_path / "requirements.txt").write_text("requests\n")
    (tmp_path / "Cargo.toml").write_text("[package]\n")
    (tmp_path / "go.mod").write_text("module x\n")
    (tmp_path / "Makefile").write_text("all:\n\ttrue\ntest:\n\ttrue\n")
    p = detect_project(tmp_path)
    assert [k.split()[0] for k in p.kinds] == ["node", "python", "rust", "go", "make"]
    assert p.test_command == "make test"  # the project's own entry point first
    for d in (
        "registry.npmjs.org:443",
        "pypi.org:443",
        "index.crates.io:443",
        "proxy.golang.org:443",
    ):
        assert d in p.destinations
    (tmp_path / "Makefile").unlink()
    assert detect_project(tmp_path).test_command == "npm test"


@pytest.mark.parametrize("agent", ["claude-code", "codex", "aider", "generic"])
def test_the_written_policy_loads_and_allows_the_projects_needs(tmp_path: Path, agent: str) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    result = init_project(tmp_path, agent=agent, rung="full")
    assert result.path == tmp_path / ".landgate.yaml"
    text = result.path.read_text()
    assert text.startswith("# landgate policy for this project")
    assert "mode: simulate" in text and "python (pyproject.toml)" in text
    policy = load_policy(result.path, cwd=tmp_path)
    assert policy.mode == "simulate"
    assert decide(policy, "network", "pypi.org:443").effect == "allow"
    assert decide(policy, "shell_exec", "python -m pytest").effect == "allow"
    # and what the preset denies stays denied (its twin: not everything is allowed)
    assert decide(policy, "network", "evil.example:443").effect == "deny"
    assert decide(policy, "file_read", str(tmp_path / ".env")).effect == "deny"
    assert "valid" in result.check and len(result.next_commands) == 3


def test_never_overwrites_without_force(tmp_path: Path) -> None:
    mine = tmp_path / ".landgate.yaml"
    mine.write_text("# my own\nversion: 1\n")
    with pytest.raises(UsageError, match="exists; not overwriting"):
        init_project(tmp_path, rung="full")
    assert mine.read_text() == "# my own\nversion: 1\n"
    init_project(tmp_path, rung="full", force=True)
    assert "written by `landgate init`" in mine.read_text()


def test_cli_init_yes_prints_the_next_three_commands(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("test:\n\ttrue\n")
    proc = cli.landgate("init", "--yes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert ".landgate.yaml: written" in out and ": valid" in out
    nxt = out.split("next:\n", 1)[1].splitlines()
    assert len(nxt) == 3
    assert "landgate run -- make test" in nxt[0] and "landgate ui" in nxt[1]
    again = cli.landgate("init", "--yes", cwd=tmp_path)
    assert again.returncode != 0 and "not overwriting" in again.stderr
