"""Reading the trail for show / stats / suggest / report (verify has its own fast pass).

These readers trust the bytes they parse; `landgate audit verify` is what says
whether to trust them.  A torn last line (a writer died mid-write) is skipped.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.audit.paths import list_segments
from sandbox.errors import AuditError, UsageError

LIFECYCLE = ("trail_start", "session_start", "session_end", "checkpoint")


def iter_entries(directory: Path) -> Iterator[dict[str, Any]]:
    """Every entry of the trail in chain order."""
    segments = list_segments(directory)
    if not segments:
        if not directory.is_dir():
            raise AuditError(f"no audit trail at {directory}")
        raise AuditError(f"no audit trail at {directory} (no trail-*.jsonl segments)")
    for _, path in segments:
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below, generator-friendly
        except OSError as exc:
            raise AuditError(f"cannot read audit segment {path}: {exc.strerror}") from exc
        with f:
            for n, raw in enumerate(f, 1):
                if not raw.endswith(b"\n"):
                    break  # torn last line
                try:
                    yield json.loads(raw)
                except ValueError:
                    raise AuditError(
                        f"{path}:{n}: unreadable entry; run `landgate audit verify`"
                    ) from None


@dataclass
class SessionInfo:
    id: str
    start: dict[str, Any]
    end: dict[str, Any] | None = None
    decisions: int = 0
    allow: int = 0
    deny: int = 0
    first_seq: int = 0
    last_seq: int = 0
    by_action: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return str(self.start.get("mode", "enforce"))

    @property
    def started(self) -> float:
        return float(self.start.get("ts", 0.0))


def collect_sessions(entries: Iterable[dict[str, Any]]) -> dict[str, SessionInfo]:
    """Sessions in order of their start, with their decision counts."""
    out: dict[str, SessionInfo] = {}
    for e in entries:
        t = e.get("type")
        sid = e.get("session")
        if t == "session_start" and isinstance(sid, str):
            out[sid] = SessionInfo(
                sid, e, first_seq=int(e.get("seq", 0)), last_seq=int(e.get("seq", 0))
            )
            continue
        info = out.get(sid) if isinstance(sid, str) else None
        if info is None:
            continue
        info.last_seq = int(e.get("seq", 0))
        if t == "session_end":
            info.end = e
        elif t == "decision":
            info.decisions += 1
            r = e.get("result")
            per = info.by_action.setdefault(str(e.get("action", "?")), {"allow": 0, "deny": 0})
            if r == "allow":
                info.allow += 1
                per["allow"] += 1
            elif r == "deny":
                info.deny += 1
                per["deny"] += 1
    return out


def resolve_session(
    sessions: dict[str, SessionInfo], wanted: str | None, *, simulate: bool = False
) -> SessionInfo:
    """The session named by `wanted` (an id or a unique prefix), else the last one
    (the last simulation session when `simulate`)."""
    if not sessions:
        raise AuditError("the audit trail has no sessions")
    if wanted:
        if wanted in sessions:
            return sessions[wanted]
        hits = [s for s in sessions.values() if s.id.startswith(wanted)]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise UsageError(
                f"no session {wanted!r} in the audit trail (see `landgate audit show`)"
            )
        raise UsageError(
            f"session prefix {wanted!r} is ambiguous: " + ", ".join(s.id for s in hits[:5])
        )
    pool = [s for s in sessions.values() if not simulate or s.mode == "simulate"]
    if not pool:
        raise UsageError(
            "no simulation session in the audit trail (run `landgate run "
            "--simulate -- CMD` first, or name one with --session)"
        )
    return pool[-1]


_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*(?:ago)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """'30s', '10m', '2h', '1d' (ago) or an ISO time (local unless it says otherwise)."""
    now = time.time() if now is None else now
    m = _REL.match(text)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        dt = datetime.fromisoformat(text.strip())  # 3.11 accepts a trailing Z
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected 30s / 10m / 2h / 1d or an ISO time "
            "such as 2025-01-31T14:00"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # naive: the user's local time
    return dt.timestamp()


def format_ts(ts: Any, *, utc: bool = False) -> str:
    try:
        t = float(ts)
    except (TypeError, ValueError):
        return "?"
    dt = datetime.fromtimestamp(t, UTC) if utc else datetime.fromtimestamp(t)
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def is_default_rule(rule: Any) -> bool:
    """A decision that fell to the block's default (no rule matched)."""
    return rule is None or (isinstance(rule, str) and rule.startswith("default"))
