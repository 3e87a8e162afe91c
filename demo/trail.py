"""Helpers for demo/run.sh: render audit denials by layer, and check for leaks.

    python trail.py denials [--last-session] < entries.jsonl
    python trail.py leaks OUTCOMES.json        exit 1 if the agent reported a leak
    python trail.py story OUTCOMES.json < entries.jsonl
                                               each attempt, its outcome, and the layer
                                               that stopped it

Reads `landgate audit show --json` output (one entry per line).  It names the
layer that decided each denial as recorded in the entry; when an entry does not
say, it prints "layer not recorded" rather than guessing.
"""

from __future__ import annotations

import json
import sys
from typing import Any

LAYER_NAMES = {
    "exec": "seccomp supervisor (exec)",
    "connect": "seccomp supervisor (connect)",
    "carve-outs": "seccomp supervisor (open check)",
    "egress": "nftables (kernel)",
    "landlock": "Landlock (kernel)",
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
    for raw in sys.stdin:
        line = raw.strip()
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


# A file denial is in the trail (the supervisor's open check, or Landlock's own refusal
# where the kernel audit reader saw it): the entry names the layer and the rule.  Without
# one, the errno is all the story has.
FS_BY_ERRNO = {
    "EACCES": "refused (EACCES); no trail entry found for it",
    "EPERM": "refused (EPERM); no trail entry found for it",
}
# agent step prefix -> (action, needles that identify its trail entries)
TRAIL_STEPS = {
    "curl": ("shell_exec", ("curl",)),
    "urllib": ("network", ("10.203.77.2",)),
    "DNS": ("network", ("exfil.example", ":53", "nscd")),
}


def _read_entries() -> list[dict[str, Any]]:
    out = []
    for raw in sys.stdin:
        line = raw.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def story(path: str) -> int:
    with open(path) as fh:
        outcomes = json.load(fh)
    entries = _read_entries()
    sessions = [_session(e) for e in entries if _session(e) is not None]
    if sessions:
        entries = [e for e in entries if _session(e) == sessions[-1]]
    for o in outcomes:
        step, outcome, detail = o["step"], o["outcome"], o.get("detail", "")
        if outcome == "OK":
            continue
        shown = step if len(step) < 40 else step[:37] + "..."
        why = ""
        for prefix, (action, needles) in TRAIL_STEPS.items():
            if step.startswith(prefix):
                hits: list[dict[str, Any]] = []
                for needle in needles:  # in order of preference: the DNS view's own entry first
                    hits = [
                        e
                        for e in entries
                        if e.get("action") == action
                        and needle in str(e.get("target", ""))
                        and _is_denial(e)
                    ]
                    if hits:
                        break
                if hits:
                    e = hits[0]
                    layer = LAYER_NAMES.get(str(e.get("layer")), str(e.get("layer")))
                    why = (
                        f"{layer}: {action} {e.get('target')!s:.50} ({e.get('rule') or 'default'})"
                    )
                else:
                    why = "no denial for it in the trail"
                break
        else:
            # "read ~/.ssh/id_rsa", "append to ~/.bashrc": the file's name
            name = step.split()[-1].rsplit("/", 1)[-1]
            hits = [
                e
                for e in entries
                if str(e.get("action", "")).startswith("file_")
                and str(e.get("target", "")).endswith("/" + name)
                and _is_denial(e)
            ]
            if hits:
                e = hits[0]
                layer = LAYER_NAMES.get(str(e.get("layer")), str(e.get("layer")))
                why = f"{layer}: {e.get('action')} {e.get('target')!s:.50} ({e.get('rule')})"
            else:
                why = FS_BY_ERRNO.get(detail.split(":", 1)[0], detail)
        print(f"  {shown:<40} {outcome:<9} {why}")
    return 0


def _is_denial(e: dict[str, Any]) -> bool:
    return str(e.get("result", e.get("effect", ""))).lower() in ("deny", "denied")


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "story":
        return story(argv[2])
    if len(argv) >= 2 and argv[1] == "denials":
        return denials("--last-session" in argv)
    if len(argv) == 3 and argv[1] == "leaks":
        return leaks(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
