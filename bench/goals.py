"""Issue 19's table (and issue 16's hook row) from one bench run: goal vs measured.

    goal_rows(data) -> [(measure, goal, measured, verdict)]

Every measured value is read from this run's latest.json (each a ratio or difference of
medians taken in the same run); a row whose benchmark did not run says so.
"""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str]


def _micro(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    entry = data.get("micro", {}).get(name)
    if isinstance(entry, dict) and entry.get("status") == "ok":
        result = entry.get("result")
        return result if isinstance(result, dict) else None
    return None


def _get(d: dict[str, Any] | None, *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def goal_rows(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    at = _micro(data, "bench_access_time")
    cli = _micro(data, "bench_cli")
    sup = _micro(data, "bench_supervise")

    big = _get(at, "launch_big_minus_empty_ms")
    entries = _get(at, "big_tree", "entries")
    rows.append(
        (
            f"launch with a granted tree of {entries or '1M'} entries, minus an empty tree",
            "<= +5 ms",
            "-" if big is None else f"{big:+.1f} ms",
            _verdict(None if big is None else big <= 5),
        )
    )

    py = _get(cli, "python_start", "median_ms")
    true = _get(cli, "cli_true", "median_ms")
    cold = _get(cli, "cli_true_cold", "median_ms")
    if py is not None and true is not None:
        text = f"{true:.0f} ms = python -c pass {py:.0f} ms + {true - py:.0f} ms"
        if cold is not None:
            text += f" (policy cache off: +{cold - py:.0f} ms)"
        rows.append(
            (
                "CLI launch of /bin/true, read-only preset",
                "<= python start-up + 25 ms",
                text,
                _verdict(true - py <= 25),
            )
        )
    else:
        rows.append(("CLI launch of /bin/true, read-only preset", "<= python + 25 ms", "-", ""))

    api = _get(data, "peers", "workloads", "launch", "results", "landgate-api", "delta_ms")
    api_cli = _get(cli, "api_run_minus_subprocess_ms")
    measured = []
    if api is not None:
        measured.append(f"{api:+.1f} ms (bench policy)")
    if api_cli is not None:
        measured.append(f"{api_cli:+.1f} ms (read-only preset)")
    best = min([v for v in (api, api_cli) if v is not None], default=None)
    rows.append(
        (
            "in-process sandbox.run vs subprocess.run, /bin/true",
            "<= +5 ms",
            ", ".join(measured) or "-",
            _verdict(None if best is None else (api if api is not None else best) <= 5),
        )
    )
    sess = _get(cli, "session_minus_subprocess_ms")
    sess0 = _get(cli, "session_settle0_minus_subprocess_ms")
    sess15 = _get(cli, "session_settle15_minus_subprocess_ms")
    text = "-"
    if sess is not None:
        text = f"{sess:+.1f} ms (records fenced, the default)"
        if sess0 is not None:
            text += f"; no hand-over (settle=0) {sess0:+.1f} ms"
        if sess15 is not None:
            text += f"; the old 15 ms settle {sess15:+.1f} ms"
    rows.append(
        (
            "Session reuse, per command vs subprocess.run",
            "<= +1 ms",
            text,
            _verdict(None if sess is None else sess <= 1),
        )
    )

    ratio = _get(sup, "exec", "ratio_vs_bare")
    # the same loop under an allow-all C supervisor: what the notification alone costs
    allow_all = _get(sup, "exec", "allow_all_ratio_vs_bare")
    rows.append(
        (
            "200 x /bin/true from sh, exec-gated, vs bare (inside the harness)",
            "<= 1.10x (stretch 1.05x)",
            "-"
            if ratio is None
            else f"{ratio:.2f}x"
            + ("" if allow_all is None else f" (allow-all C supervisor: {allow_all:.2f}x)"),
            _verdict(None if ratio is None else ratio <= 1.10),
        )
    )
    product = _get(sup, "exec", "product_ratio_vs_bare")
    if isinstance(product, dict) and product:
        rows.append(
            (
                "the same loop under `landgate run` (presets: open check, trail), vs bare",
                "(no goal in the issue; what a user's build pays)",
                ", ".join(f"{k} {v:.2f}x" for k, v in sorted(product.items())),
                "measured",
            )
        )
    # the decision itself: receive to answer in the supervisor (events' timestamps), over
    # the floor measured in the same run (bench_supervise.py)
    floor = _get(sup, "exec", "decision_vs_floor")
    over = _get(sup, "exec", "decision_us")
    rows.append(
        (
            "exec decision in the supervisor vs the unotify round-trip floor",
            "<= 5x floor",
            "-" if floor is None else f"{over:.1f} us = {floor:.1f}x floor",
            _verdict(None if floor is None else floor <= 5),
        )
    )

    for key, label in (("hook_deny", "Read .env, deny"), ("hook_allow", "Bash ls, allow")):
        h = _get(cli, key, "median_ms")
        ha = _get(cli, f"{key}_alone", "median_ms")
        hc = _get(cli, f"{key}_cold", "median_ms")
        text = "-"
        if h is not None:
            text = f"{h:.0f} ms, resident server (python -c pass {py:.0f} ms)"
            if ha is not None:
                text += f"; decided in the hook's own process {ha:.0f} ms"
            if hc is not None:
                text += f", policy cache off too {hc:.0f} ms"
        rows.append(
            (
                f"Claude Code hook decision, end to end ({label})",
                "<= 50 ms",
                text,
                _verdict(None if h is None else h <= 50),
            )
        )
        hs = _get(cli, f"{key}_session", "median_ms")
        rows.append(
            (
                f"Claude Code hook decision inside landgate run, end to end ({label})",
                "<= 50 ms",
                "-"
                if hs is None
                else f"{hs:.0f} ms, the session decides (python -c pass {py:.0f} ms)",
                _verdict(None if hs is None else hs <= 50),
            )
        )

    one = _get(cli, "memory_one")
    ten = _get(cli, "memory_10")
    if isinstance(one, dict) and "peak_rss_mb" in one:
        text = (
            f"peak RSS {one['peak_rss_mb']:.1f} MB; while running: RSS {one.get('rss_mb', 0):.1f}, "
            f"PSS {one.get('pss_mb', 0):.1f}, USS {one.get('uss_mb', 0):.1f} MB "
            f"(+ helper USS {one.get('helpers_uss_mb', 0):.1f} MB)"
        )
        if "session_pss_mb" in one:
            text += f"; the session (landgate + helpers) PSS {one['session_pss_mb']:.1f} MB"
        if isinstance(ten, dict) and "pss_mb" in ten:
            text += (
                f"; 10 at once: PSS sum {ten['pss_mb']['sum']:.0f} MB, "
                f"USS sum {ten['uss_mb']['sum']:.0f} MB"
                f" + helpers {ten.get('helpers_uss_mb', {}).get('sum', 0):.0f} MB"
            )
            if "session_pss_mb" in ten:
                text += f", sessions' PSS sum {ten['session_pss_mb']['sum']:.0f} MB"
        rows.append(
            (
                "memory of one `landgate run` (coding-agent, sleep), the supervising process",
                "<= 25 MB per session",
                text,
                _verdict(one["peak_rss_mb"] <= 25),
            )
        )
    else:
        rows.append(("memory of one `landgate run`", "<= 25 MB", "-", _verdict(None)))
    return rows


def render(data: dict[str, Any]) -> list[str]:
    lines = [
        "## Issue 19 goals (and issue 16's hook), from this run",
        "",
        (
            "Each row is computed from medians of this run (see the sections below for the "
            "samples); `met` compares with the goal as written in the issue."
        ),
        "",
        "| measure | goal | measured | |",
        "|---|---|---|---|",
    ]
    for measure, goal, measured, verdict in goal_rows(data):
        lines.append(f"| {measure} | {goal} | {measured} | {verdict} |")
    lines.append("")
    return lines
