"""`landgate audit verify|show|stats|suggest|report`: one function per subcommand.

Each takes the argparse Namespace (fields: dir, denied, action, session, since,
json, html; absent ones default) and an optional progress callback, and returns
a CommandResult; nothing here prints.  Unreadable trails raise AuditError
(exit 2); `verify` returns exit 1 with the first bad seq on tampering.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.audit.canonical import canonical
from sandbox.audit.entries import REPORTED_FLAG
from sandbox.audit.escape import printable
from sandbox.audit.paths import default_audit_dir
from sandbox.audit.reader import (
    collect_sessions,
    format_ts,
    iter_entries,
    parse_since,
    resolve_session,
)
from sandbox.errors import EXIT_OK, EXIT_POLICY, AuditError

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class CommandResult:
    stdout: str = ""
    stderr: str = ""
    exit_code: int = EXIT_OK


def _dir(args: Any) -> Path:
    d = getattr(args, "dir", None)
    return Path(d) if d else default_audit_dir()


def _key_dir(args: Any) -> Path | None:
    k = getattr(args, "key_dir", None)  # tests and the Python API; not on the command line
    return Path(k) if k else None


# ---------------------------------------------------------------------------- verify


def verify(args: Any, progress: Progress | None = None) -> CommandResult:
    from sandbox.audit.verify import verify_trail

    report = verify_trail(_dir(args), key_directory=_key_dir(args), progress=progress)
    if getattr(args, "json", False):
        doc = {
            "ok": report.ok,
            "kind": report.kind,
            "first_bad_seq": report.first_bad_seq,
            "message": report.message,
            "entries": report.entries,
            "segments": report.segments,
            "checkpoints": report.checkpoints,
            "last_checkpoint_seq": report.last_checkpoint_seq,
            "sessions": report.sessions,
            "unsealed": list(report.unsealed),
            "notes": list(report.notes),
            "trail": report.trail_id,
        }
        return CommandResult(
            json.dumps(doc, indent=2, sort_keys=True),
            "" if report.ok else printable(report.summary()),
            EXIT_OK if report.ok else EXIT_POLICY,
        )
    if not report.ok:
        return CommandResult("", printable(report.summary()), EXIT_POLICY)
    lines = [printable(report.summary())] + [f"note: {printable(n)}" for n in report.notes]
    return CommandResult("\n".join(lines))


# ------------------------------------------------------------------------------ show


def _selected(args: Any, entries: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    denied = bool(getattr(args, "denied", False))
    action = getattr(args, "action", None)
    since_s = getattr(args, "since", None)
    since = parse_since(since_s) if since_s else None
    wanted = getattr(args, "session", None)
    sid: str | None = None
    if wanted:
        entries = list(entries)
        sid = resolve_session(collect_sessions(entries), wanted).id
    only_decisions = denied or bool(action)
    for e in entries:
        t = e.get("type")
        if t in ("checkpoint", "trail_start"):
            continue
        if only_decisions and t != "decision":
            continue
        if sid is not None and e.get("session") != sid:
            continue
        if denied and e.get("result") != "deny":
            continue
        if action and e.get("action") != action:
            continue
        if since is not None:
            try:
                if float(e.get("ts", 0)) < since:
                    continue
            except (TypeError, ValueError):
                continue
        yield e


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _preset_named(rule: str) -> str:
    """A bundled preset named as its user knows it (`coding-agent preset:27`), as the
    denial line names it, not by its path inside site-packages; the entry keeps the path."""
    from sandbox.policy.loader import presets_dir

    base = str(presets_dir()) + os.sep
    at = rule.find(base)
    if at < 0:
        return rule
    name, sep, rest = rule[at + len(base) :].partition(".yaml")
    if not sep or os.sep in name:
        return rule
    return f"{rule[:at]}{name} preset{rest}"


def _rule_text(e: dict[str, Any]) -> str:
    """The deciding rule of a decision entry; never `None`: an entry with no rule was
    decided by the user launching the root command, or by a block's default.  An entry
    reported from inside the sandbox says so first: its result and rule are what a
    process there claimed (the agent can forge them), not what landgate decided."""
    rule = e.get("rule")
    flags = e.get("flags") or ()
    if isinstance(flags, list) and REPORTED_FLAG in flags:
        claimed = _preset_named(str(rule)) if rule else "no rule named"
        return f"[{REPORTED_FLAG}] {claimed}"
    if rule:
        return _preset_named(str(rule))
    if e.get("action") == "shell_exec" and "root" in flags:
        return "root command (launched by the user)"
    if e.get("origin") == "infrastructure":
        return "landgate's own service"
    return f"default {e.get('result', '')}".rstrip()


def _row(e: dict[str, Any]) -> tuple[str, str, str, str]:
    """(action, target, result, rule) of one entry, as text (not yet escaped)."""
    t = e.get("type")
    if t == "decision":
        return (
            str(e.get("action", "")),
            str(e.get("target", "")),
            str(e.get("result", "")),
            _rule_text(e),
        )
    if t == "session_start":
        argv = e.get("argv")
        target = " ".join(map(str, argv)) if isinstance(argv, list) else ""
        return "session start", target, "", str(e.get("rung", ""))
    if t == "session_end":
        return "session end", f"exit {e.get('exit_status', '?')}", "", ""
    if t == "tamper":
        return "TAMPER", f"{e.get('kind', '')}: {e.get('reason', '')}", "", ""
    if t == "malformed":
        return "UNREADABLE", str(e.get("where", "")), "", "run `landgate audit verify`"
    return str(t), "", "", ""


def show(args: Any, progress: Progress | None = None) -> CommandResult:
    rows = _selected(args, iter_entries(_dir(args)))
    if getattr(args, "json", False):
        # The trail's own canonical spelling (sorted, compact, UTF-8, bytes that were not
        # UTF-8 as \udcXX escapes): output a reader can decode, as the trail is.
        out = [canonical(e).decode("utf-8") for e in rows]
        return CommandResult("\n".join(out))
    table = [
        (
            f"{'SEQ':>7}  {'TIME':19}  {'SESSION':22}  {'MODE':8}  {'RESULT':6}  "
            f"{'ACTION':13}  {'TARGET':40}  RULE"
        )
    ]
    n = 0
    for e in rows:
        n += 1
        action, target, result, rule = _row(e)
        # Every field may carry agent-chosen text: escaped, so one entry is one line
        # and nothing reaches the terminal as a control sequence.
        table.append(
            f"{printable(e.get('seq', '')):>7}  {format_ts(e.get('ts')):19}  "
            f"{printable(e.get('session', '')):22}  {printable(e.get('mode', '')):8}  "
            f"{printable(result):6}  {_clip(printable(action), 13):13}  "
            f"{_clip(printable(target), 40):40}  {printable(rule)}"
        )
    if n == 0:
        return CommandResult("no matching entries")
    return CommandResult("\n".join(table))


# ----------------------------------------------------------------------------- stats


def compute_stats(entries: Iterable[dict[str, Any]], session: str | None = None) -> dict[str, Any]:
    by: dict[str, Counter[str]] = {}
    results: Counter[str] = Counter()
    denied: Counter[tuple[str, str]] = Counter()
    sessions: set[str] = set()
    first_ts = last_ts = None
    for e in entries:
        if session is not None and e.get("session") != session:
            continue
        t = e.get("type")
        if t == "session_start":
            sessions.add(str(e.get("session")))
        if t != "decision":
            continue
        action, result = str(e.get("action", "?")), str(e.get("result", "?"))
        by.setdefault(action, Counter())[result] += 1
        results[result] += 1
        if result == "deny":
            denied[(action, str(e.get("target", "")))] += 1
        ts = e.get("ts")
        if isinstance(ts, (int, float)):
            first_ts = ts if first_ts is None else min(first_ts, ts)
            last_ts = ts if last_ts is None else max(last_ts, ts)
    return {
        "sessions": len(sessions),
        "decisions": sum(results.values()),
        "by_result": dict(sorted(results.items())),
        "by_action": {a: dict(sorted(c.items())) for a, c in sorted(by.items())},
        "top_denied": [
            {"action": a, "target": t, "count": n} for (a, t), n in denied.most_common(10)
        ],
        "first_ts": first_ts,
        "last_ts": last_ts,
    }


def stats(args: Any, progress: Progress | None = None) -> CommandResult:
    entries: Iterable[dict[str, Any]] = iter_entries(_dir(args))
    sid = None
    if getattr(args, "session", None):
        entries = list(entries)
        sid = resolve_session(collect_sessions(entries), args.session).id
    st = compute_stats(entries, sid)
    if getattr(args, "json", False):
        return CommandResult(json.dumps(st, indent=2, sort_keys=True))
    out = [
        f"{st['decisions']} decisions in {st['sessions']} session(s)"
        + (f" (session {printable(sid)})" if sid else "")
    ]
    if st["first_ts"] is not None:
        out.append(f"from {format_ts(st['first_ts'])} to {format_ts(st['last_ts'])}")
    out.append("")
    out.append(f"{'ACTION':12}  {'ALLOW':>8}  {'DENY':>8}")
    for action, c in st["by_action"].items():
        out.append(f"{printable(action):12}  {c.get('allow', 0):>8}  {c.get('deny', 0):>8}")
    out.append(
        f"{'total':12}  {st['by_result'].get('allow', 0):>8}  {st['by_result'].get('deny', 0):>8}"
    )
    if st["top_denied"]:
        out.append("")
        out.append("top denied targets:")
        for d in st["top_denied"]:
            out.append(f"  {d['count']:>6}  {printable(d['action']):11}  {printable(d['target'])}")
    return CommandResult("\n".join(out))


# --------------------------------------------------------------------------- suggest


def suggest(args: Any, progress: Progress | None = None) -> CommandResult:
    from sandbox.audit.suggest import suggest_policy

    entries = list(iter_entries(_dir(args)))
    session = resolve_session(
        collect_sessions(entries), getattr(args, "session", None), simulate=True
    )
    mine = [e for e in entries if e.get("session") == session.id]
    note = ""
    if session.mode != "simulate":
        note = (
            f"landgate: note: session {session.id} ran in {session.mode} mode: denied "
            "actions did not run, so their consequences are not in the trail"
        )
    return CommandResult(suggest_policy(session, mine), note)


# ---------------------------------------------------------------------------- report


def report(args: Any, progress: Progress | None = None) -> CommandResult:
    from sandbox.audit.report import render_html
    from sandbox.audit.verify import verify_trail

    directory = _dir(args)
    out = getattr(args, "html", None)
    if not out:
        raise AuditError("report: --html OUT is required")
    try:
        vr = verify_trail(directory, key_directory=_key_dir(args), progress=progress)
        verdict = (vr.ok, vr.summary())
        notes = vr.notes
    except AuditError as exc:
        verdict, notes = (False, f"not verified: {exc}"), ()
    entries = list(iter_entries(directory))
    sessions = collect_sessions(entries)
    wanted = getattr(args, "session", None)
    chosen = [resolve_session(sessions, wanted)] if wanted else list(sessions.values())
    ids = {s.id for s in chosen}
    decisions = [e for e in entries if e.get("type") == "decision" and e.get("session") in ids]
    page = render_html(
        directory=directory,
        sessions=chosen,
        decisions=decisions,
        verdict=verdict,
        notes=tuple(notes),
    )
    path = Path(out)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # backslashreplace: bytes that were not UTF-8 (an argv word, a file name) show as
        # \udcXX on the page instead of failing the whole report.
        tmp.write_text(page, encoding="utf-8", errors="backslashreplace")
        os.replace(tmp, path)
    except OSError as exc:
        raise AuditError(f"cannot write report {path}: {exc.strerror}") from exc
    deny = sum(s.deny for s in chosen)
    allow = sum(s.allow for s in chosen)
    return CommandResult(f"wrote {path}: {len(chosen)} session(s), {allow} allowed, {deny} denied")
