"""Trails written before per-entry tags (format 1): moved aside, never continued.

A format-1 trail has no tags, so nothing in it can be told apart from lines the
agent could have written; continuing it would put new, tagged entries after
unauthenticated ones.  The first writer of the new format that opens such a
directory moves its segments into `legacy-format1-<trail id>/` beside the new
trail (a rename: the bytes stay as they were) and the new trail's first entry
records the move, so verify names it in a note.  Only when the key directory has
no witness for this directory: a format-2 trail was sealed here if it has one,
and then an old-looking trail in its place is tampering, not an upgrade.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from sandbox.audit.lines import MAX_LINE
from sandbox.errors import AuditError

_LEGACY_HASH = re.compile(rb'"hash":"[0-9a-f]{64}"')
_TRAIL_ID = re.compile(r"^[0-9a-f]{1,64}$")


def legacy_trail_id(first_segment: Path) -> str | None:
    """The trail id when the segment starts with a format-1 start entry, else None."""
    try:
        with open(first_segment, "rb") as f:
            line = f.readline(MAX_LINE + 2)
    except OSError:
        return None
    if _LEGACY_HASH.search(line) is None:
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("type") != "trail_start" or doc.get("format") != 1:
        return None
    trail = str(doc.get("trail", ""))
    return trail if _TRAIL_ID.match(trail) else None


def move_legacy_aside(directory: Path, trail: str, segs: list[tuple[int, Path]]) -> dict[str, Any]:
    """Rename the segments into `legacy-format1-<trail>/`; what the new trail records."""
    dest = directory / f"legacy-format1-{trail}"
    try:
        dest.mkdir(mode=0o700, exist_ok=True)
        for _, path in segs:
            os.rename(path, dest / path.name)
        for d in (dest, directory):
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(fd)  # the move must survive a crash before the new trail's start
            finally:
                os.close(fd)
    except OSError as exc:
        raise AuditError(f"cannot move the format-1 audit trail aside to {dest}: {exc}") from exc
    return {"trail": trail, "segments": len(segs), "moved_to": dest.name}
