"""The shape of the entries the writer makes from its callers' dicts."""

from __future__ import annotations

import os
import time

from sandbox._version import __version__
from sandbox.digest import token_hex

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The flag of every entry the session's report channel wrote (sandbox.session.report): a
# process inside the sandbox claimed it, landgate did not decide it.
REPORTED_FLAG = "reported-from-sandbox"

# Keys the writer owns.  An event carrying one keeps its value under "event_<key>".
_WRITER_KEYS = ("seq", "prev", "hash", "session", "type")
_WRITER_KEY_SET = frozenset(_WRITER_KEYS)


def new_session_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + token_hex(3)


def session_start_entry(
    info: dict[str, Any], sid: str, durability: str, window_ms: int
) -> dict[str, Any]:
    entry: dict[str, Any] = {k: v for k, v in info.items() if k not in _WRITER_KEYS}
    entry.setdefault("durability", {"mode": durability, "fsync_window_ms": window_ms})
    entry.setdefault("landgate", __version__)
    entry["writer_pid"] = os.getpid()
    entry["type"] = "session_start"
    entry["session"] = sid
    entry.setdefault("ts", time.time())
    return entry


def decision_entry(event: dict[str, Any]) -> dict[str, Any]:
    """A decision entry from an event (a copy; the writer adds seq, prev, session)."""
    entry = dict(event)
    if not _WRITER_KEY_SET.isdisjoint(entry):
        for k in _WRITER_KEYS:
            if k in entry:
                entry["event_" + k] = entry.pop(k)
    entry["type"] = "decision"
    ts = entry.get("ts")
    # Keep the supervisor's wall-clock time; anything else (monotonic ns, a
    # string) is kept as event_ts and the entry gets the writer's clock.
    if (ts.__class__ is not float or ts < 1e9) and not (
        isinstance(ts, (int, float)) and not isinstance(ts, bool) and ts >= 1e9
    ):
        if ts is not None:
            entry["event_ts"] = ts
        entry["ts"] = time.time()
    return entry


def count_decision(counts: dict[str, Any], entry: dict[str, Any]) -> None:
    """Add one decision to a session's counts ({allow, deny, by_action})."""
    result = entry.get("result")
    if result == "allow" or result == "deny":
        counts[result] += 1
        per = counts["by_action"].get(entry.get("action"))
        if per is None:
            per = counts["by_action"][str(entry.get("action", "?"))] = {"allow": 0, "deny": 0}
        per[result] += 1
