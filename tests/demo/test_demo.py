"""`make demo` as a test: it runs, exits 0, and the audit trail holds each denial.

The demo puts its trail where we say (LANDGATE_DEMO_AUDIT), so the test reads
the enforced session's entries itself rather than trusting the demo's output:
the curl exec, the connect to the exfiltration address and the DNS lookup of
the secret-bearing name must each appear as a denial, and the agent's own
report must show no leak.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _entries(audit: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for seg in sorted(audit.glob("trail-*.jsonl")):
        for line in seg.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def _is_denial(e: dict[str, Any]) -> bool:
    values = [e.get(k) for k in ("effect", "result", "decision", "outcome")]
    return any(
        isinstance(v, str) and v.lower() in ("deny", "denied", "would-deny", "would_deny")
        for v in values
    )


@pytest.mark.slow
def test_make_demo(tmp_path: Path) -> None:
    audit = tmp_path / "audit"
    env = dict(os.environ, LANDGATE_DEMO_AUDIT=str(audit))
    proc = subprocess.run(
        ["bash", str(REPO / "demo" / "run.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"demo failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    assert "LEAKED under enforcement" not in proc.stdout

    entries = _entries(audit)
    starts = [e for e in entries if e.get("type") == "session_start"]
    assert len(starts) >= 2, "expected a simulated and an enforced session"
    enforced = starts[-1]["session"]
    simulated = starts[-2]["session"]
    denials = [
        e
        for e in entries
        if e.get("session") == enforced and e.get("type") == "decision" and _is_denial(e)
    ]
    targets = [(str(e.get("action")), str(e.get("target", ""))) for e in denials]

    def denied(action: str, needle: str) -> bool:
        return any(a == action and needle in t for a, t in targets)

    assert denied("shell_exec", "curl"), targets
    assert denied("network", "10.203.77.2"), targets
    # The secret-bearing DNS name: refused by the DNS view (target: the name), or the
    # resolver connect itself denied by the supervisor (target: <resolver>:53).
    assert denied("network", "exfil.example") or denied("network", ":53"), targets
    # The simulated run recorded the same attempts as would-deny, and blocked nothing.
    sim = [e for e in entries if e.get("session") == simulated and _is_denial(e)]
    assert any("curl" in str(e.get("target", "")) for e in sim)
    # The demo verified the trail itself (with its own, temporary, key) and wrote the report.
    assert "audit trail intact" in proc.stdout
    assert (audit / "report.html").stat().st_size > 0
