"""Fixtures for the dashboard's tests: a project made by `landgate init`, a running
`landgate ui` (the real command, its printed URL), and a headless Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import cli

REPO = Path(__file__).resolve().parents[2]
SCREENS = REPO / "build" / "ui-screens"  # artefacts (ignored by git): looked at by people


def landgate(*args: str, cwd: Path, check: bool = True, timeout: float = 120) -> str:
    proc = cli.landgate(*args, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"landgate {' '.join(args)}: exit {proc.returncode}: {proc.stderr}")
    return proc.stdout + proc.stderr


@dataclass
class Ui:
    proc: subprocess.Popen[str]
    url: str
    port: int
    project: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # this test's own trail, key and dashboard registry (a witness from an earlier run
    # of the same path must not meet a new trail); every landgate below inherits them
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (proj / "Makefile").write_text("test:\n\tpython3 -m pytest -q\n")
    out = landgate("init", "--yes", cwd=proj)
    assert "written" in out and "next:" in out, out
    return proj


@pytest.fixture
def ui(project: Path) -> Iterator[Ui]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "ui"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:(\d+)/\?token=\S+)", line)
        assert m, (
            f"landgate ui printed {line!r}; stderr {proc.stderr.read() if proc.stderr else ''}"
        )
        yield Ui(proc, m.group(1), int(m.group(2)), project)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from .cdp import Browser

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    b = Browser(profile)
    try:
        yield b
    finally:
        b.close()


def screens_dir() -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    return SCREENS
