"""Shared helpers for the policy tests: load policy text against a fixed world."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sandbox.policy import load_policy
from sandbox.policy.model import Policy

REPO = Path(__file__).resolve().parents[2]
# The verbatim copies of SafeClaw's example policies shipped with the presets; test_loader
# checks them byte for byte against the originals in ../shared (beside the checkout).
SAFECLAW_DIR = REPO / "policies" / "safeclaw"
SHARED_SAFECLAW_DIR = REPO.parent / "shared" / "safeclaw-policies"
PRESETS = REPO / "policies"
WS = Path("/ws")
HOME = Path("/home/u")


def write(tmp: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


def load_text(tmp: Path, text: str, name: str = "policy.yaml", **kw: object) -> Policy:
    kw.setdefault("cwd", WS)
    kw.setdefault("home", HOME)
    return load_policy(write(tmp, text, name), **kw)  # type: ignore[arg-type]
