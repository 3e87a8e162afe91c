"""landgate's benchmark: peers side by side, then landgate's own micro-benchmarks.

    .venv/bin/python bench/run.py [--quick] [--out DIR] [--no-micro] [--no-peers]

Writes
  bench/results/latest.json   everything measured, with every sample
  bench/RESULTS.md            the table (machine, kernel, versions, date) — also
                              copied to bench/results/RESULTS.md next to the JSON
  bench/results/ratios.png    the ratios to bare, one group per workload

How to read them: bench/README.md.  No number here is asserted by a test;
ratios are only ever computed between measurements taken in this one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

# The other issues' micro-benchmarks: each module exposes run(quick) -> dict.
MICRO = [
    ("bench_evaluator", "policy evaluator: decisions per second"),
    ("bench_launch", "launcher: fork, Landlock, seccomp, exec"),
    ("bench_supervise", "supervisor: unotify floor (bench/floor.c) and per-decision overhead"),
    ("bench_audit", "audit trail: append throughput, verify speed"),
    ("bench_net", "network: namespace and nftables set-up, DNS view"),
    ("bench_access_time", "access-time file decisions (issue 12): carve-outs per open, launch"),
    (
        "bench_cli",
        "the command line (issue 19) and the Claude Code hook (issue 16): start-up, memory",
    ),
]
MICRO_TIMEOUT = 240  # seconds per module; a hung module is reported, not waited for
# bench_access_time builds its 1M-entry tree once (a minute) before it measures anything.
MICRO_TIMEOUTS = {"bench_access_time": 600}

_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {msg}", flush=True)


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else ""


def machine_info() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    distro = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
    except OSError:
        pass
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "hostname": platform.node(),
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "distro": distro,
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory": mem,
        "python": platform.python_version(),
        "euid": os.geteuid(),
        "landgate_commit": _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
    }
    doctor = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "landgate"), "doctor", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if doctor.returncode == 0:
        try:
            info["landgate_doctor"] = json.loads(doctor.stdout)
        except ValueError:
            info["landgate_doctor"] = f"unparseable: {doctor.stdout[:200]}"
    else:
        info["landgate_doctor"] = f"failed: {(doctor.stderr or doctor.stdout).strip()[-200:]}"
    return info


_MICRO_RUNNER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
mod = __import__(sys.argv[2])
result = mod.run(quick=sys.argv[3] == "1")
with open(sys.argv[4], "w") as fh:
    json.dump(result, fh, default=str)
"""


def run_micro(quick: bool) -> dict[str, Any]:
    """Each module in its own interpreter with a time limit; failures are recorded."""
    out: dict[str, Any] = {}
    for name, title in MICRO:
        if not (BENCH / f"{name}.py").exists():
            out[name] = {"title": title, "status": f"failed: bench/{name}.py does not exist (yet)"}
            log(f"micro {name}: missing")
            continue
        log(f"micro {name}: running (quick={quick})")
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            result_path = tmp.name
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _MICRO_RUNNER,
                    str(BENCH),
                    name,
                    "1" if quick else "0",
                    result_path,
                ],
                cwd=str(ROOT),
                capture_output=True,
                text=True,
                timeout=MICRO_TIMEOUTS.get(name, MICRO_TIMEOUT),
                check=False,
            )
            elapsed = round(time.monotonic() - t0, 2)
            if proc.returncode != 0:
                lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
                reason = lines[-1] if lines else f"exit {proc.returncode}"
                out[name] = {"title": title, "status": f"failed: {reason}", "seconds": elapsed}
            else:
                with open(result_path) as fh:
                    data = json.load(fh)
                if not isinstance(data, dict):
                    out[name] = {
                        "title": title,
                        "seconds": elapsed,
                        "status": f"failed: run() returned {type(data).__name__}, not dict",
                    }
                else:
                    out[name] = {"title": title, "status": "ok", "seconds": elapsed, "result": data}
        except subprocess.TimeoutExpired:
            limit = MICRO_TIMEOUTS.get(name, MICRO_TIMEOUT)
            out[name] = {"title": title, "status": f"failed: timed out after {limit} s"}
        except (OSError, ValueError) as exc:
            out[name] = {"title": title, "status": f"failed: {exc}"}
        finally:
            try:
                os.unlink(result_path)
            except OSError:
                pass
        log(f"micro {name}: {out[name]['status']}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/run.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--quick", action="store_true", help="few rounds: a smoke run, not a measurement"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=BENCH / "results",
        help="directory for latest.json and ratios.png (default bench/results)",
    )
    ap.add_argument(
        "--md",
        type=Path,
        default=None,
        help="the Markdown table (default bench/RESULTS.md when --out is the default, "
        "else OUT/RESULTS.md)",
    )
    ap.add_argument("--no-peers", action="store_true", help="skip the side-by-side workloads")
    ap.add_argument("--no-micro", action="store_true", help="skip landgate's micro-benchmarks")
    args = ap.parse_args(argv)

    import bench_peers
    import report

    args.out.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"schema": 1, "quick": args.quick, "machine": machine_info()}
    log(
        f"machine: {data['machine']['cpu']} x{data['machine']['cpus']}, "
        f"kernel {data['machine']['kernel']}"
    )
    if args.no_peers:
        data["peers"] = {"status": "skipped (--no-peers)"}
    else:
        data["peers"] = bench_peers.run(quick=args.quick, log=log)
    if args.no_micro:
        data["micro"] = {"status": "skipped (--no-micro)"}
    else:
        data["micro"] = run_micro(args.quick)
    data["elapsed_s"] = round(time.monotonic() - _T0, 1)

    json_path = args.out / "latest.json"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    md = report.render_markdown(data)
    md_paths = (
        [args.md]
        if args.md
        else (
            [BENCH / "RESULTS.md", args.out / "RESULTS.md"]
            if args.out == BENCH / "results"
            else [args.out / "RESULTS.md"]
        )
    )
    for p in md_paths:
        p.write_text(md)
    png = args.out / "ratios.png"
    chart = report.render_chart(data, png)
    log(
        f"wrote {json_path}, {', '.join(str(p) for p in md_paths)}"
        + (f", {png}" if chart is None else f" (no chart: {chart})")
    )
    print()
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
