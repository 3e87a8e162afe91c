"""Changing ./.landgate.yaml from the dashboard: "allow this" and "switch to enforce".

Every change is a Proposal first (the rule, the new text, a unified diff, and
what the policy would decide afterwards, computed by loading the new text with
the real loader); it is written only on a second, explicit call that passes the
sha256 the proposal was made from, so a file edited in between is never
overwritten.  The write is atomic (temporary file + rename) and the written file
is loaded again: what the page reports is what the next session will enforce.

The rule is added by the same editor `landgate allow` uses
(sandbox.policy.allow.insert_rule_text).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import LandgateError, PolicyError, UsageError

KEYS = {
    "file_read": "path",
    "file_write": "path",
    "shell_exec": "command",
    "network": "destination",
}
_GLOB = "\\*?["


@dataclass(frozen=True, slots=True)
class Proposal:
    path: str
    base_sha256: str  # the file this proposal was computed from
    rule: str  # the YAML line added (or the field changed)
    new_text: str
    diff: str
    decision_after: str  # "allow" / "deny" for an allow, "" for a mode change
    decided_by: str  # the rule that decides afterwards

    def to_dict(self) -> dict[str, str]:
        return {
            "path": self.path,
            "base_sha256": self.base_sha256,
            "rule": self.rule,
            "diff": self.diff,
            "decision_after": self.decision_after,
            "decided_by": self.decided_by,
        }


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _GLOB else c for c in text)


def rule_line(action: str, target: str, workspace: Path) -> str:
    """The flow-style rule allowing exactly `target` (a workspace path made relative)."""
    key = KEYS.get(action)
    if key is None:
        raise UsageError(f"allow: unknown action {action!r} (one of {', '.join(KEYS)})")
    value = target
    if key == "path":
        ws = str(workspace).rstrip("/") + "/"
        value = "./" + _escape(target[len(ws) :]) if target.startswith(ws) else _escape(target)
    elif key == "command":
        value = _escape(target)
    return f"{{ {key}: {json.dumps(value)}, effect: allow }}"


def _read(path: Path) -> tuple[str, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LandgateError(f"cannot read {path}: {exc.strerror}", exit_code=1) from None
    return data.decode("utf-8"), hashlib.sha256(data).hexdigest()


def insert_rule(text: str, action: str, line: str, file: str = ".landgate.yaml") -> str:
    """`text` with `line` added as the last rule of `action`'s block."""
    from sandbox.policy.allow import insert_rule_text

    return insert_rule_text(text, file, action, line)


def _set_mode(text: str, mode: str) -> str:
    lines = text.splitlines(keepends=True)
    for i, raw in enumerate(lines):
        if re.match(r"^mode:\s*", raw):
            comment = raw.split("#", 1)[1].rstrip("\n") if "#" in raw else ""
            lines[i] = f"mode: {mode}" + (f"  #{comment}" if comment else "") + "\n"
            return "".join(lines)
    return f"mode: {mode}\n" + text


def _diff(path: Path, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), str(path), str(path)
        )
    )


def _load(text: str, path: Path):  # type: ignore[no-untyped-def]
    from sandbox.policy import load_policy_text

    return load_policy_text(text, source=str(path), cwd=path.parent)


def propose_allow(path: Path, action: str, target: str) -> Proposal:
    """The change that would allow (action, target), checked against the real loader."""
    from sandbox.policy import decide
    from sandbox.policy.summary import describe_rule

    old, sha = _read(path)
    policy = _load(old, path)
    line = rule_line(action, target, Path(policy.workspace))
    new = insert_rule(old, action, line, str(path))
    try:
        after = _load(new, path)
    except PolicyError as exc:
        raise UsageError(f"allow: the changed policy would not load: {exc}") from None
    decision = decide(after, action, target)
    by = describe_rule(decision.rule) if decision.rule is not None else "the block's default"
    return Proposal(str(path), sha, line, new, _diff(path, old, new), decision.effect, by)


def propose_mode(path: Path, mode: str) -> Proposal:
    old, sha = _read(path)
    new = _set_mode(old, mode)
    _load(new, path)
    return Proposal(str(path), sha, f"mode: {mode}", new, _diff(path, old, new), "", "")


def apply(proposal: Proposal) -> Proposal:
    """Write the proposal if the file is still the one it was made from; re-check it."""
    path = Path(proposal.path)
    _, sha = _read(path)
    if sha != proposal.base_sha256:
        raise UsageError(f"{path} changed since the change was shown; not writing (reload)")
    if proposal.decision_after == "deny":
        raise UsageError(
            f"allow: {proposal.rule} would not change the decision ({proposal.decided_by} "
            "still denies); not writing"
        )
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".landgate.", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(proposal.new_text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    written, _ = _read(path)
    _load(written, path)  # the re-check: the file on disk loads (raises PolicyError if not)
    return proposal
