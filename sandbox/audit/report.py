"""`landgate audit report --html OUT`: one self-contained page.

Inline CSS and inline SVG bars, no scripts, no fetches (a report must open on
an air-gapped machine and must not call anyone when opened).  Sections: the
verify verdict, counts per action and result, denials grouped and ranked as the
dashboard ranks them (sandbox.audit.grouping), sessions,
each session's timeline (capped, newest last) and the policy text it ran under
(read from the recorded path; flagged when its sha256 no longer matches).
"""

from __future__ import annotations

import hashlib
import html
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sandbox.audit.escape import printable
from sandbox.audit.grouping import durability_text, group_denials
from sandbox.audit.reader import SessionInfo, format_ts

TIMELINE_CAP = 500

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d232b;
background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dee4}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#57606a}
table{border-collapse:collapse;margin:6px 0 12px;background:#fff}
th,td{border:1px solid #d8dee4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.allow{color:#1a7f37}.deny{color:#cf222e;font-weight:600}.ok{color:#1a7f37;font-weight:600}
.bad{color:#cf222e;font-weight:600}.note{color:#9a6700}
pre{background:#fff;border:1px solid #d8dee4;padding:8px;overflow:auto;max-height:480px}
code,td.t{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;word-break:break-all}
"""


def _e(x: Any) -> str:
    """Agent-controlled text as HTML: control characters escaped (`\\x1b`), then
    HTML-escaped, so the page shows what was recorded and nothing else."""
    return html.escape(printable(x), quote=True)


def _bars(allow: int, deny: int, scale: int) -> str:
    width = 220
    a = 0 if scale == 0 else round(width * allow / scale)
    d = 0 if scale == 0 else round(width * deny / scale)
    return (
        f'<svg width="{width + 4}" height="14" role="img" aria-label="{allow} allowed, '
        f'{deny} denied"><rect x="0" y="2" width="{a}" height="10" fill="#2da44e"/>'
        f'<rect x="{a}" y="2" width="{d}" height="10" fill="#cf222e"/></svg>'
    )


def _policy_text(start: dict[str, Any]) -> tuple[str, str, str | None]:
    """(path, recorded sha256, text or None) of the policy a session ran under."""
    ref = start.get("policy")
    sha = start.get("policy_sha256") or ""
    path = ""
    if isinstance(ref, dict):
        path = str(ref.get("path") or "")
        sha = sha or str(ref.get("sha256") or "")
    elif isinstance(ref, str):
        path = ref
    if not path:
        return "", str(sha), None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return path, str(sha), None
    text = data.decode("utf-8", "replace")
    if sha and hashlib.sha256(data).hexdigest() != sha:
        text = (
            "# landgate: this file has changed since the session ran (sha256 differs); "
            "shown as it is now\n" + text
        )
    return path, str(sha), text


def render_html(
    *,
    directory: Path,
    sessions: list[SessionInfo],
    decisions: list[dict[str, Any]],
    verdict: tuple[bool, str],
    notes: tuple[str, ...] = (),
) -> str:
    """The page for `sessions` (their decisions in `decisions`, in chain order)."""
    by: dict[str, Counter[str]] = {}
    for d in decisions:
        action = str(d.get("action", "?"))
        result = str(d.get("result", "?"))
        by.setdefault(action, Counter())[result] += 1
    total_allow = sum(c["allow"] for c in by.values())
    total_deny = sum(c["deny"] for c in by.values())
    scale = max([c["allow"] + c["deny"] for c in by.values()] or [0])

    p: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>landgate audit report</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    p.append("<h1>landgate audit report</h1>")
    p.append(
        f'<div class="meta">trail <code>{_e(directory)}</code> &middot; generated '
        f"{_e(time.strftime('%Y-%m-%d %H:%M:%S'))} &middot; {len(sessions)} session(s), "
        f"{len(decisions)} decision(s)</div>"
    )
    ok, summary = verdict
    p.append(f'<p id="verdict" class="{"ok" if ok else "bad"}">{_e(summary)}</p>')
    for note in notes:
        p.append(f'<p class="note">{_e(note)}</p>')

    p.append("<h2>Counts per action and result</h2>")
    p.append(
        '<table id="counts"><tr><th>action</th><th>allow</th><th>deny</th><th>total</th>'
        "<th></th></tr>"
    )
    for action in sorted(by):
        c = by[action]
        p.append(
            f'<tr><td>{_e(action)}</td><td class="n" id="count-{_e(action)}-allow">'
            f'{c["allow"]}</td><td class="n" id="count-{_e(action)}-deny">{c["deny"]}</td>'
            f'<td class="n">{c["allow"] + c["deny"]}</td>'
            f"<td>{_bars(c['allow'], c['deny'], scale)}</td></tr>"
        )
    p.append(
        f'<tr><th>all</th><th class="n" id="count-all-allow">{total_allow}</th>'
        f'<th class="n" id="count-all-deny">{total_deny}</th>'
        f'<th class="n">{total_allow + total_deny}</th><th></th></tr></table>'
    )

    # the same grouping and rank as the dashboard: an explicit deny (a secret, a blocked
    # tool) before a default deny (usually a missing allow), then by count
    groups = group_denials(decisions)
    p.append("<h2>Denials, those that matter first</h2>")
    if groups["items"]:
        p.append(
            '<table id="top-denied"><tr><th>count</th><th>action</th><th>target</th>'
            "<th>rule</th><th></th></tr>"
        )
        for it in groups["items"][:20]:
            why = "policy deny" if it["matters"] else "default deny"
            p.append(
                f'<tr><td class="n">{it["count"]}</td><td>{_e(it["action"])}</td>'
                f'<td class="t">{_e(it["target"])}</td><td>{_e(it["rule"])}</td>'
                f"<td>{why}</td></tr>"
            )
        p.append("</table>")
        for key, title in (("by_directory", "directory"), ("by_program", "program")):
            p.append(f"<h3>Denials by {title}</h3><table><tr><th>{title}</th><th>count</th></tr>")
            for g in groups[key][:15]:
                p.append(
                    f'<tr><td class="t">{_e(g["key"])}</td><td class="n">{g["count"]}</td></tr>'
                )
            p.append("</table>")
    else:
        p.append("<p>Nothing was denied.</p>")

    p.append("<h2>Sessions</h2>")
    p.append(
        '<table id="sessions"><tr><th>session</th><th>started</th><th>mode</th>'
        "<th>command</th><th>exit</th><th>allow</th><th>deny</th><th>sealed</th></tr>"
    )
    for s in sessions:
        argv = s.start.get("argv")
        cmd = " ".join(map(str, argv)) if isinstance(argv, list) else ""
        exit_status = "" if s.end is None else s.end.get("exit_status", "")
        p.append(
            f"<tr><td><code>{_e(s.id)}</code></td><td>{_e(format_ts(s.started))}</td>"
            f'<td>{_e(s.mode)}</td><td class="t">{_e(cmd)}</td><td>{_e(exit_status)}</td>'
            f'<td class="n">{s.allow}</td><td class="n">{s.deny}</td>'
            f"<td>{'yes' if s.end is not None else 'no (unsealed)'}</td></tr>"
        )
    p.append("</table>")

    by_session: dict[str, list[dict[str, Any]]] = {}
    for d in decisions:
        by_session.setdefault(str(d.get("session")), []).append(d)
    for s in sessions:
        rows = by_session.get(s.id, [])
        p.append(f'<h2 id="session-{_e(s.id)}">Session <code>{_e(s.id)}</code></h2>')
        start = s.start
        facts = [
            ("mode", s.mode),
            ("rung", start.get("rung", "")),
            ("kernel", start.get("kernel", "")),
            ("landlock ABI", start.get("landlock_abi", "")),
            ("cwd", start.get("cwd", "")),
            ("user", start.get("user", "")),
            ("durability", durability_text(start.get("durability"))),
        ]
        p.append(
            '<table class="facts">'
            + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v != "")
            + "</table>"
        )
        layers = start.get("layers")
        if isinstance(layers, list) and layers:
            p.append(
                "<h3>Layers</h3><table><tr><th>layer</th><th>state</th><th>mechanism</th>"
                "<th>detail</th></tr>"
            )
            for layer in layers:
                if isinstance(layer, dict):
                    p.append(
                        "<tr>"
                        + "".join(
                            f"<td>{_e(layer.get(k, ''))}</td>"
                            for k in ("name", "state", "mechanism", "detail")
                        )
                        + "</tr>"
                    )
            p.append("</table>")
        p.append("<h3>Timeline</h3>")
        shown = rows[-TIMELINE_CAP:]
        if len(rows) > len(shown):
            p.append(
                f'<p class="note">showing the last {len(shown)} of {len(rows)} '
                "decisions (`landgate audit show --session` lists all)</p>"
            )
        p.append(
            '<table class="timeline"><tr><th>seq</th><th>time</th><th>action</th>'
            "<th>target</th><th>result</th><th>rule</th><th>layer</th></tr>"
        )
        for d in shown:
            r = str(d.get("result", ""))
            p.append(
                f'<tr><td class="n">{_e(d.get("seq", ""))}</td>'
                f"<td>{_e(format_ts(d.get('ts')))}</td><td>{_e(d.get('action', ''))}</td>"
                f'<td class="t">{_e(d.get("target", ""))}</td>'
                f'<td class="{_e(r)}">{_e(r)}</td><td>{_e(d.get("rule", ""))}</td>'
                f"<td>{_e(d.get('layer', ''))}</td></tr>"
            )
        p.append("</table>")
        path, sha, text = _policy_text(start)
        p.append("<h3>Policy</h3>")
        if text is None:
            p.append(
                f'<p class="note">policy text not available ({_e(path or "no path")}, '
                f"sha256 {_e(sha or '?')})</p>"
            )
        else:
            p.append(f'<p class="meta"><code>{_e(path)}</code> sha256 {_e(sha)}</p>')
            p.append(f'<pre class="policy">{_e(text)}</pre>')
    p.append("</body></html>")
    return "\n".join(p) + "\n"
