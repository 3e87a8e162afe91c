"""Install the PreToolUse hook into a Claude Code settings file without clobbering it.

Claude Code's settings.json holds the user's permissions, env, other hooks...:
the file is read, the one landgate entry merged in, and written back
atomically (a temporary file in the same directory, then rename).  Idempotent:
a second install finds the entry and changes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sandbox.errors import LandgateError, UsageError

HOOK_COMMAND = "landgate hook claude-code"
MATCHER = "Bash|Read|Write|Edit|MultiEdit|NotebookEdit|WebFetch|WebSearch|Glob|Grep|LS"
TIMEOUT_S = 30


def hook_entry(command: str = HOOK_COMMAND) -> dict[str, Any]:
    return {
        "matcher": MATCHER,
        "hooks": [{"type": "command", "command": command, "timeout": TIMEOUT_S}],
    }


def merge_hook(settings: dict[str, Any], command: str = HOOK_COMMAND) -> bool:
    """Add the landgate PreToolUse entry to `settings` in place; False when already there."""
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise UsageError("settings: `hooks` is not a JSON object; not touching it")
    pre = hooks.setdefault("PreToolUse", [])
    if not isinstance(pre, list):
        raise UsageError("settings: `hooks.PreToolUse` is not a JSON array; not touching it")
    for group in pre:
        for h in group.get("hooks", []) if isinstance(group, dict) else []:
            if isinstance(h, dict) and h.get("command") == command:
                return False
    pre.append(hook_entry(command))
    return True


def install_hook(path: str | os.PathLike[str], command: str = HOOK_COMMAND) -> bool:
    """Merge the hook into the settings file at `path` (created if missing).

    Returns True when the file changed.  Raises UsageError for a file that is
    not a JSON object (it is left as it was)."""
    p = Path(path)
    settings: dict[str, Any] = {}
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise LandgateError(f"cannot read {p}: {exc.strerror}", exit_code=1) from None
    if text.strip():
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{p}: not valid JSON ({exc}); not touching it") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"{p}: not a JSON object; not touching it")
        settings = loaded
    if not merge_hook(settings, command):
        return False
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".settings.", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(settings, f, indent=2)
                f.write("\n")
            if p.exists():
                os.chmod(tmp, p.stat().st_mode & 0o777)
            os.replace(tmp, p)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise LandgateError(f"cannot write {p}: {exc.strerror}", exit_code=1) from None
    return True
