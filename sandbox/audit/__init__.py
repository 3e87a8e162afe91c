"""The audit trail (DESIGN §5): hash-chained JSON Lines, checkpoints, verify, reports.

    from sandbox.audit import AuditWriter, default_audit_dir, key_dir
    w = AuditWriter(directory, durability="batch")
    sid = w.start_session({...})
    w.append({"pid": 42, "action": "file_read", "target": "/ws/.env", "result": "deny",
              "rule": "policy.yaml:7", "layer": "landlock"})
    w.end_session(0)
    w.close()

The readers (`verify_trail`, `sandbox.audit.commands`, the report) import lazily
so that `landgate run` only pays for the writer.
"""

from __future__ import annotations

from sandbox.audit.paths import default_audit_dir, key_dir
from sandbox.audit.summary import simulate_summary
from sandbox.audit.writer import FLUSH_WINDOW_MS, AuditWriter

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "FLUSH_WINDOW_MS",
    "AuditWriter",
    "VerifyReport",
    "default_audit_dir",
    "key_dir",
    "simulate_summary",
    "verify_trail",
]


def __getattr__(name: str) -> Any:
    if name in ("verify_trail", "VerifyReport"):
        from sandbox.audit import verify

        return getattr(verify, name)
    raise AttributeError(f"module 'sandbox.audit' has no attribute {name!r}")
