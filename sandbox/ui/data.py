"""What the dashboard shows, as JSON-ready dicts: read from the trail, never written to it.

Built on the trail's entry format (DecisionEvent.to_entry() plus the writer's
type/session/seq), so a new kind of decision (file denials, a new layer) shows
up on every page without a change here.  Grouping is shared with the static
`audit report --html` (sandbox.audit.grouping), so both say the same thing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sandbox.audit.grouping import durability_text, group_denials
from sandbox.audit.reader import SessionInfo, collect_sessions, iter_entries
from sandbox.errors import AuditError, LandgateError


def _entries(audit_dir: Path) -> list[dict[str, Any]]:
    try:
        return list(iter_entries(audit_dir))
    except AuditError:
        return []  # no trail yet: every page says "nothing yet"


def _policy_ref(start: dict[str, Any]) -> tuple[str, str]:
    ref = start.get("policy")
    sha = str(start.get("policy_sha256") or "")
    if isinstance(ref, dict):
        return str(ref.get("path") or ""), sha or str(ref.get("sha256") or "")
    return (str(ref) if isinstance(ref, str) else ""), sha


def _session_row(s: SessionInfo, sealed: bool) -> dict[str, Any]:
    argv = s.start.get("argv")
    path, sha = _policy_ref(s.start)
    return {
        "id": s.id,
        "started": s.started,
        "mode": s.mode,
        "command": " ".join(map(str, argv)) if isinstance(argv, list) else "",
        "cwd": s.start.get("cwd"),
        "rung": s.start.get("rung") or s.start.get("network_rung"),
        "policy": path,
        "policy_sha256": sha,
        "exit_status": None if s.end is None else s.end.get("exit_status"),
        "running": s.end is None,
        "sealed": sealed,
        "decisions": s.decisions,
        "allow": s.allow,
        "deny": s.deny,
        "by_action": s.by_action,
    }


def _sealed(entries: list[dict[str, Any]]) -> set[str]:
    """Sessions with an end entry and a checkpoint after it (their chain is closed)."""
    ended: set[str] = set()
    sealed: set[str] = set()
    for e in entries:
        sid = e.get("session")
        if not isinstance(sid, str):
            continue
        if e.get("type") == "session_end":
            ended.add(sid)
        elif e.get("type") == "checkpoint" and sid in ended:
            sealed.add(sid)
    return sealed


def sessions(audit_dir: Path) -> list[dict[str, Any]]:
    entries = _entries(audit_dir)
    sealed = _sealed(entries)
    rows = [_session_row(s, s.id in sealed) for s in collect_sessions(entries).values()]
    return rows[::-1]  # newest first


def session_detail(audit_dir: Path, sid: str) -> dict[str, Any]:
    entries = _entries(audit_dir)
    found = collect_sessions(entries).get(sid)
    if found is None:
        raise LandgateError(f"no session {sid!r} in the audit trail", exit_code=2)
    row = _session_row(found, sid in _sealed(entries))
    start = found.start
    row["layers"] = start.get("applied_layers") or start.get("layers") or []
    row["durability"] = durability_text(start.get("durability"))
    row["kernel"] = start.get("kernel")
    row["landlock_abi"] = start.get("landlock_abi")
    row["warnings"] = start.get("network_warnings") or []
    row["policy_text"], row["policy_changed"] = _policy_text(row["policy"], row["policy_sha256"])
    decisions = [e for e in entries if e.get("type") == "decision" and e.get("session") == sid]
    row["denials"] = group_denials(decisions)
    row["recent"] = decisions[-200:]
    return row


def _policy_text(path: str, sha: str) -> tuple[str | None, bool]:
    if not path:
        return None, False
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None, False
    return data.decode("utf-8", "replace"), bool(sha) and hashlib.sha256(data).hexdigest() != sha


def denials(audit_dir: Path, sid: str | None, *, simulate_only: bool = False) -> dict[str, Any]:
    """Denied (or would-be-denied) decisions of one session, or of all, grouped."""
    entries = _entries(audit_dir)
    known = collect_sessions(entries)
    wanted: set[str] | None = None
    if sid:
        wanted = {sid}
    elif simulate_only:
        wanted = {s.id for s in known.values() if s.mode == "simulate"}
    decisions = [
        e
        for e in entries
        if e.get("type") == "decision" and (wanted is None or e.get("session") in wanted)
    ]
    return {"session": sid, "groups": group_denials(decisions)}


def verify(audit_dir: Path) -> dict[str, Any]:
    from sandbox.audit.verify import verify_trail

    try:
        report = verify_trail(audit_dir)
    except AuditError as exc:
        return {"ok": False, "kind": "unreadable", "summary": str(exc), "first_bad_seq": None}
    return {
        "ok": report.ok,
        "kind": report.kind,
        "summary": report.summary(),
        "first_bad_seq": report.first_bad_seq,
        "message": report.message,
        "entries": report.entries,
        "sessions": report.sessions,
        "checkpoints": report.checkpoints,
        "unsealed": list(report.unsealed),
        "notes": list(report.notes),
    }
