"""Integration costs (issue 16): the Claude Code hook's decision latency end to end
(a fresh `landgate hook claude-code` process per call, Python start included; answered
by the resident hook server, decided in the hook's own process with
LANDGATE_HOOK_SERVER=0, and inside `landgate run`, where the session decides: timed
inside the sandbox, as Claude Code there would see it), and a sandbox.Session command
against a separate sandbox.run.

    .venv/bin/python bench/integrations.py [--calls 30] [--commands 50]

Prints medians and p90s of wall time, and the CPU time the hook processes used
(wall time on a shared machine includes waiting for a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_cli import stop_hook_servers


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


def hook_latency(calls: int, root: Path) -> None:
    ws = root / "ws"
    ws.mkdir()
    (root / "run").mkdir(mode=0o700)
    env = dict(
        os.environ,
        XDG_STATE_HOME=str(root / "state"),
        XDG_CACHE_HOME=str(root / "cache"),
        XDG_RUNTIME_DIR=str(root / "run"),
    )
    env.pop("LANDGATE_HOOK_SERVER", None)
    landgate = shutil.which("landgate", path=str(Path(sys.executable).parent)) or "landgate"
    cases = {
        "Read .env (deny)": ("Read", {"file_path": str(ws / ".env")}),
        "Bash ls (allow)": ("Bash", {"command": "ls -la"}),
    }
    runs = {"server": env, "own process": dict(env, LANDGATE_HOOK_SERVER="0")}
    for label, (tool, tool_input) in cases.items():
        payload = json.dumps(
            {
                "hook_event_name": "PreToolUse",
                "cwd": str(ws),
                "tool_name": tool,
                "tool_input": tool_input,
                "session_id": "bench",
            }
        ).encode()
        for how, run_env in runs.items():
            argv = [landgate, "hook", "claude-code"]
            subprocess.run(argv, input=payload, env=run_env, capture_output=True, check=True)
            time.sleep(0.5)  # the first call started the server: let it come up
            walls: list[float] = []
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            for _ in range(calls):
                t = time.perf_counter()
                subprocess.run(argv, input=payload, env=run_env, capture_output=True, check=True)
                walls.append((time.perf_counter() - t) * 1000)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000
            print(
                f"hook {label:<18} {how:<11} wall median {statistics.median(walls):6.1f} ms  "
                f"p90 {_pct(walls, 0.9):6.1f} ms  min {min(walls):6.1f} ms  "
                f"cpu {cpu / calls:5.1f} ms/call (hook process only)  ({calls} calls)"
            )
    (ws / ".env").write_text("KEY=secret\n")
    for name, row in hook_in_session(calls, ws, env).items():
        label = "Read .env (deny)" if "deny" in name else "Bash ls (allow)"
        print(
            f"hook {label:<18} {'in session':<11} wall median {row['median_ms']:6.1f} ms  "
            f"p90 {row['p90_ms']:6.1f} ms  min {row['min_ms']:6.1f} ms  "
            f"(inside landgate run, the session decides; {row['calls']} calls)"
        )
    t = time.perf_counter()
    for _ in range(calls):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    print(f"python -c pass         wall mean {(time.perf_counter() - t) * 1000 / calls:6.1f} ms")


# Run inside `landgate run` by python3: the hook as Claude Code in the sandbox starts it.
TIMER = r"""
import json, subprocess, sys, time
calls, names = int(sys.argv[1]), sys.argv[2:]
cases = {n: open(n, "rb").read() for n in names}
out = {n: [] for n in names}
for i in range(calls + 1):  # round 0 warms up (the session's first decision compiles)
    for n, payload in cases.items():
        t = time.perf_counter()
        p = subprocess.run(["landgate", "hook", "claude-code"], input=payload, capture_output=True)
        dt = (time.perf_counter() - t) * 1000
        if p.returncode != 0:
            raise SystemExit(f"{n}: exit {p.returncode}: {p.stderr.decode()}")
        if i:
            out[n].append(dt)
print(json.dumps(out))
"""


def hook_in_session(calls: int, ws: Path, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """`landgate hook claude-code` inside `landgate run --policy claude-code`, timed inside
    the sandbox: {"hook_deny_session": {...}, "hook_allow_session": {...}} (ms)."""
    landgate = shutil.which("landgate", path=str(Path(sys.executable).parent)) or "landgate"
    cases = {
        "hook_deny_session": ("Read", {"file_path": str(ws / ".env")}),
        "hook_allow_session": ("Bash", {"command": "ls -la"}),
    }
    for name, (tool, tool_input) in cases.items():
        data = {
            "hook_event_name": "PreToolUse",
            "cwd": str(ws),
            "tool_name": tool,
            "tool_input": tool_input,
            "session_id": "bench",
        }
        (ws / name).write_text(json.dumps(data))
    (ws / "timer.py").write_text(TIMER)
    run_env = dict(env, PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}")
    argv = [landgate, "run", "-q", "--policy", "claude-code", "--", "python3", "timer.py"]
    proc = subprocess.run(
        [*argv, str(calls), *cases],
        cwd=ws,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hook inside landgate run: exit {proc.returncode}: {proc.stderr}")
    walls = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        name: {
            "median_ms": round(statistics.median(v), 1),
            "p90_ms": round(_pct(v, 0.9), 1),
            "min_ms": round(min(v), 1),
            "calls": len(v),
        }
        for name, v in walls.items()
    }


def session_cost(commands: int, root: Path) -> None:
    import sandbox

    ws = root / "ws2"
    ws.mkdir()
    audit = str(root / "audit")
    t = time.perf_counter()
    for i in range(commands // 5):
        sandbox.run(["sh", "-c", f"echo {i}"], cwd=ws, audit=audit, capture_output=True)
    per_run = (time.perf_counter() - t) * 1000 / (commands // 5)
    t = time.perf_counter()
    with sandbox.Session(cwd=ws, audit=audit) as s:
        t_first = time.perf_counter()
        s.run("true")
        first = (time.perf_counter() - t_first) * 1000
        t1 = time.perf_counter()
        for i in range(commands):
            s.run(f"echo {i}")
        per_cmd = (time.perf_counter() - t1) * 1000 / commands
    total = (time.perf_counter() - t) * 1000
    with sandbox.Session(cwd=ws, audit=audit, settle=0) as s:
        s.run("true")
        t1 = time.perf_counter()
        for i in range(commands):
            s.run(f"echo {i}")
        no_settle = (time.perf_counter() - t1) * 1000 / commands
    print(
        f"sandbox.run            {per_run:7.1f} ms per command (a launch each, "
        f"{commands // 5} runs)"
    )
    print(
        f"sandbox.Session        {per_cmd:7.1f} ms per command ({commands} commands, records "
        f"fenced; first command incl. launch {first:.1f} ms; whole session {total:.0f} ms)"
    )
    print(
        f"sandbox.Session settle=0 {no_settle:5.1f} ms per command (no hand-over of the "
        "supervisor's records)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--commands", type=int, default=50)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="landgate-bench-"))
    try:
        hook_latency(args.calls, root)
        session_cost(args.commands, root)
    finally:
        stop_hook_servers(root)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
