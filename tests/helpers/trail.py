"""Reading a session's trail in tests: its entries, and those the report channel wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.audit.reader import iter_entries
from sandbox.session.report import LAYER


def trail_and_reports(audit_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(every entry of the trail in `audit_dir`, those of layer `tool-hook`: what a hook
    inside the session sent over the report channel)."""
    entries = list(iter_entries(audit_dir))
    return entries, [e for e in entries if e.get("layer") == LAYER]
