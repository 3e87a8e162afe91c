"""Render bench/results/latest.json as Markdown (RESULTS.md) and a PNG of the ratios.

    .venv/bin/python bench/report.py [bench/results/latest.json]

rewrites bench/RESULTS.md and bench/results/ratios.png from an existing JSON
file (bench/run.py calls the two functions below itself).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import goals

# Column order of the tables and the chart.
CLI_ORDER = ["bare", "bwrap", "firejail", "srt", "landgate"]
INPROC_ORDER = ["sandlock", "landgate-api"]


def _fmt_ms(ms: float) -> str:
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


class _Notes:
    """Numbered footnotes, so a failure's reason is printed once, in full."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> str:
        if text not in self.items:
            self.items.append(text)
        return f"[{self.items.index(text) + 1}]"

    def render(self) -> list[str]:
        return [f"{i + 1}. {t}" for i, t in enumerate(self.items)]


def _cell(row: dict[str, Any] | None, notes: _Notes, *, delta: bool = False) -> str:
    if row is None:
        return "not measured"
    status = row.get("status", "")
    if status != "ok":
        word = status.split(":", 1)[0]
        return f"{word} {notes.add(status)}"
    text = f"{_fmt_ms(row['median_ms'])}"
    if "ratio" in row:
        text += f" ({row['ratio']:.2f}×"
        if delta and "delta_ms" in row:
            text += f", {row['delta_ms']:+.2f} ms"
        text += ")"
    for w in row.get("warnings", []):
        text += f" ⚠{notes.add('the tool warned: ' + w)}"
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return f"[{len(value)} values]" if len(value) > 6 else json.dumps(value, default=str)
    return str(value)


def _flatten(value: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Nested dicts as dotted keys; a dict of plain values becomes one `k=v, ...` row."""
    if isinstance(value, dict) and value:
        if depth > 0 and not any(isinstance(v, dict) for v in value.values()) and len(value) <= 8:
            return [(prefix, ", ".join(f"{k}={_scalar(v)}" for k, v in value.items()))]
        if depth < 6:
            out: list[tuple[str, str]] = []
            for k, v in value.items():
                out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k), depth + 1))
            return out
    return [(prefix, _scalar(value))]


def render_markdown(data: dict[str, Any]) -> str:
    m = data.get("machine", {})
    lines: list[str] = ["# landgate benchmark results", ""]
    if data.get("quick"):
        lines += [
            (
                "> **Quick run (`--quick`)**: a handful of rounds, a smoke test. "
                "Do not quote these numbers."
            ),
            "",
        ]
    lines += [
        (
            "How to read this page: [bench/README.md](README.md). Produced by `make bench` "
            "(`bench/run.py`); every sample is in `results/latest.json`."
        ),
        "",
        "| | |",
        "|---|---|",
        f"| date | {m.get('date', '?')} |",
        f"| machine | {m.get('cpu', '?')}, {m.get('cpus', '?')} CPUs, {m.get('memory', '?')} |",
        f"| system | {m.get('distro', '?')}, kernel {m.get('kernel', '?')} |",
        f"| python | {m.get('python', '?')} |",
        f"| landgate | commit {m.get('landgate_commit', '?')} |",
    ]
    doctor = m.get("landgate_doctor")
    if isinstance(doctor, dict):
        rung = doctor.get("rung")
        if rung:
            lines.append(f"| landgate rung | {rung} |")
    elif isinstance(doctor, str):
        lines.append(f"| landgate doctor | {doctor} |")
    lines.append(f"| total run time | {data.get('elapsed_s', '?')} s |")
    lines.append("")
    lines += goals.render(data)

    peers = data.get("peers", {})
    notes = _Notes()
    tools = peers.get("tools", {}) if isinstance(peers, dict) else {}
    workloads = peers.get("workloads", {}) if isinstance(peers, dict) else {}
    if tools:
        lines += [
            "## Tools",
            "",
            "| tool | version | how it is run | status |",
            "|---|---|---|---|",
        ]
        for name in CLI_ORDER + INPROC_ORDER:
            t = tools.get(name)
            if t is None:
                continue
            status = (
                "measured"
                if t.get("available")
                else f"unavailable {notes.add(t.get('reason', ''))}"
            )
            lines.append(
                f"| {name} | {t.get('version') or '-'} | {t.get('note') or '-'} | {status} |"
            )
        lines.append("")
    if workloads:
        wl_names = list(workloads)
        lines += [
            "## Side by side: median wall time (ratio to bare)",
            "",
            "Command-line tools, timed from the harness; bare is `subprocess.run(argv)`.",
            "",
            "| tool | " + " | ".join(workloads[w]["title"] for w in wl_names) + " |",
            "|---|" + "---|" * len(wl_names),
        ]
        for name in CLI_ORDER:
            if name not in tools:
                continue
            cells = [_cell(workloads[w]["results"].get(name), notes) for w in wl_names]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "## In-process launch: sandboxed run vs `subprocess.run` in the same process",
            "",
            (
                "Each tool's worker times its sandboxed call and a plain `subprocess.run` of the "
                "same argv, interleaved; ratio and difference are to that `subprocess.run`. "
                "landgate's goal: at most +2 ms on `/bin/true`."
            ),
            "",
            "| tool | " + " | ".join(workloads[w]["title"] for w in wl_names) + " |",
            "|---|" + "---|" * len(wl_names),
        ]
        for name in INPROC_ORDER:
            if name not in tools:
                continue
            base = [
                _cell(
                    workloads[w]["results"].get(f"{name}:subprocess.run")
                    or workloads[w]["results"].get(name),
                    notes,
                )
                for w in wl_names
            ]
            cells = [_cell(workloads[w]["results"].get(name), notes, delta=True) for w in wl_names]
            lines.append(f"| {name}: subprocess.run | " + " | ".join(base) + " |")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
        if peers.get("connect_client"):
            lines.append(f"Connect loop client: {peers['connect_client']}. ")
        lines.append(
            "Rounds per workload: "
            + ", ".join(
                f"{workloads[w]['title'].split(' (')[0]}: {workloads[w]['rounds']}"
                for w in wl_names
            )
            + "."
        )
        lines.append("")
    elif isinstance(peers, dict) and peers.get("status"):
        lines += ["## Side by side", "", peers["status"], ""]

    micro = data.get("micro", {})
    lines += ["## landgate micro-benchmarks", ""]
    if isinstance(micro, dict) and "status" in micro and isinstance(micro["status"], str):
        lines += [micro["status"], ""]
    else:
        for name, entry in micro.items():
            title = entry.get("title", "")
            if entry.get("status") != "ok":
                lines += [f"### {name}: {title}", "", f"**{entry.get('status')}**", ""]
                continue
            lines += [
                f"### {name}: {title}",
                "",
                f"({entry.get('seconds', '?')} s)",
                "",
                "| measure | value |",
                "|---|---|",
            ]
            for key, val in _flatten(entry.get("result", {})):
                lines.append(f"| {key} | {val} |")
            lines.append("")
    if notes.items:
        lines += ["## Notes", "", *notes.render(), ""]
    return "\n".join(lines)


def render_chart(data: dict[str, Any], path: Path) -> str | None:
    """Grouped bars of ratio-to-baseline per workload; returns None or why no chart."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib not installed ({exc}); `pip install -e '.[bench]'`"
    peers = data.get("peers", {})
    workloads = peers.get("workloads", {}) if isinstance(peers, dict) else {}
    if not workloads:
        return "no side-by-side results"
    series = [n for n in CLI_ORDER + INPROC_ORDER if n != "bare"]
    wl_names = list(workloads)
    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    width = 0.8 / len(series)
    colors = {
        "bwrap": "#8c8c8c",
        "firejail": "#c49a6c",
        "srt": "#d62728",
        "landgate": "#1f77b4",
        "sandlock": "#9467bd",
        "landgate-api": "#17becf",
    }
    ymax = 1.0
    for i, name in enumerate(series):
        xs, ys, missing = [], [], []
        for j, w in enumerate(wl_names):
            row = workloads[w]["results"].get(name)
            x = j + (i - (len(series) - 1) / 2) * width
            if row and row.get("status") == "ok" and "ratio" in row:
                xs.append(x)
                ys.append(row["ratio"])
                ymax = max(ymax, row["ratio"])
            else:
                missing.append(x)
        label = name + (" (vs its own subprocess.run)" if name in INPROC_ORDER else "")
        bars = ax.bar(xs, ys, width * 0.95, label=label, color=colors.get(name))
        for rect, y in zip(bars, ys, strict=True):
            ax.annotate(
                f"{y:.3g}×",
                (rect.get_x() + rect.get_width() / 2, y),
                ha="center",
                va="bottom",
                fontsize=7,
                rotation=90,
                xytext=(0, 2),
                textcoords="offset points",
            )
        for x in missing:
            ax.annotate(
                "n/a", (x, 1.0), ha="center", va="bottom", fontsize=6, rotation=90, color="#888888"
            )
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylim(0.8, ymax * 3)
    ax.set_xticks(range(len(wl_names)))
    ax.set_xticklabels([workloads[w]["title"].replace(" (", "\n(") for w in wl_names], fontsize=8)
    ax.set_ylabel("median time / median bare (log scale; 1 = no overhead)")
    m = data.get("machine", {})
    ax.set_title(
        f"Sandbox overhead, ratio to bare — kernel {m.get('kernel', '?')}, "
        f"{m.get('cpus', '?')} CPUs, {m.get('date', '?')[:10]}"
        + (" (QUICK RUN)" if data.get("quick") else ""),
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=3, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else BENCH / "results" / "latest.json"
    data = json.loads(src.read_text())
    md = render_markdown(data)
    if src.resolve() == (BENCH / "results" / "latest.json").resolve():
        (BENCH / "RESULTS.md").write_text(md)
    (src.parent / "RESULTS.md").write_text(md)
    why = render_chart(data, src.parent / "ratios.png")
    if why:
        print(f"no chart: {why}", file=sys.stderr)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
