"""Audit fixtures: an isolated trail and key directory per test."""
from __future__ import annotations

from pathlib import Path

import pytest
from audit_helpers import Trail


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trail:
    # Never touch the real ~/.config/landgate or ~/.local/state.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return Trail(tmp_path / "trail", tmp_path / "config" / "landgate")
