"""Helpers for demo/run.sh: render audit denials by layer, and check for leaks.

    python trail.py denials [--last-session] < entries.jsonl
    python trail.py leaks OUTCOMES.json        exit 1 if the agent reported a leak

Reads `landgate audit show --json` output (one entry per line).  It names the
layer that decided each denial as recorded in the entry; when an entry does not
say, it prints "layer not recorded" rather than guessing.
"""

from __future__ import annotations

import json
import sys
from typing import Any

LAYER_NAMES = {
    "landlock": "Landlock (kernel)",
    "mask": "mount mask (kernel)",
    "seccomp": "seccomp supervisor",
    "supervisor": "seccomp supervisor",
    "unotify": "seccomp supervisor",
    "nftables": "nftables (kernel)",
    "dns": "DNS view",
    "netns": "network namespace",
}


def _get(entry: dict[str, Any], *names: str) -> Any:
    for n in names:
        cur: Any = entry
        for part in n.split("."):
            if not isinstance(cur, dict) or part not in cur:
                cur = None
                break
            cur = cur[part]
        if cur not in (None, ""):
            return cur
    return None


def _session(entry: dict[str, Any]) -> Any:
    return _get(entry, "session", "session_id", "sid")


def denials(last_session: bool) -> int:
    entries = []
    for line in sys.stdin:
        line = line.strip()
        if line:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    if last_session and entries:
        sessions = [_session(e) for e in entries if _session(e) is not None]
        if sessions:
            last = sessions[-1]
            entries = [e for e in entries if _session(e) == last]
    if not entries:
        print("  (no denials recorded)")
        return 0
    seen: set[tuple[str, str, str]] = set()
    for e in entries:
        action = str(_get(e, "action", "decision.action") or "?")
        target = str(_get(e, "target", "decision.target", "path", "command", "destination") or "?")
        layer_raw = _get(e, "layer", "decision.layer", "enforced_by", "by")
        layer = (
            LAYER_NAMES.get(str(layer_raw).lower(), str(layer_raw))
            if layer_raw
            else "layer not recorded"
        )
        effect = str(_get(e, "result", "effect", "decision.effect", "outcome") or "deny")
        rule = _get(e, "rule", "decision.rule", "reason", "decision.reason")
        if isinstance(rule, dict):
            rule = rule.get("text") or rule.get("raw") or json.dumps(rule, sort_keys=True)
        key = (action, target, layer)
        if key in seen:
            continue
        seen.add(key)
        if len(target) > 60:
            target = target[:57] + "..."
        print(
            f"  {effect:<12} {action:<10} {target:<60} by {layer}" + (f"  [{rule}]" if rule else "")
        )
    return 0


def leaks(path: str) -> int:
    with open(path) as fh:
        outcomes = json.load(fh)
    bad = [o for o in outcomes if o.get("outcome") == "LEAKED"]
    for o in bad:
        print(f"  LEAKED under enforcement: {o['step']}: {o.get('detail', '')}")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "denials":
        return denials("--last-session" in argv)
    if len(argv) == 3 and argv[1] == "leaks":
        return leaks(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
