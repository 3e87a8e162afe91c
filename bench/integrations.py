"""Integration costs (issue 16): the Claude Code hook's decision latency end to end
(a fresh `landgate hook claude-code` process per call, Python start included; answered
by the resident hook server, decided in the hook's own process with
LANDGATE_HOOK_SERVER=0, and inside `landgate run`, where the session decides: timed
inside the sandbox, as Claude Code there would see it), and a sandbox.Session command
against a separate sandbox.run.

    .venv/bin/python bench/integrations.py [--calls 30] [--commands 50]
    .venv/bin/python bench/integrations.py --breakdown [--calls 30]

Prints medians and p90s of wall time, and the CPU time the hook processes used
(wall time on a shared machine includes waiting for a CPU).  The in-session rows come
with `python -c pass` timed in the same rounds inside the same sandbox (its floor: every
file the interpreter opens there is checked by the supervisor).

--breakdown: where the in-session hook's time goes, each row timed in the same rounds
inside one `landgate run --policy claude-code` (and the process rows outside it too):
the interpreter's start without and with site, the hook client's imports, the hook
command (sandbox.entry's short path), the same through the command-line parser, and
connect + decision + reply alone (the hook client's ask_session called in a process
that is already running).
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
        if name == "python_start_session":
            print(
                f"python -c pass in the same sandbox, wall median {row['median_ms']:6.1f} ms "
                f"(the floor of the rows above; {row['calls']} calls)"
            )
            continue
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


# Run inside `landgate run` by python3: the hook as Claude Code in the sandbox starts it,
# and `python -c pass` in the same rounds (the sandbox's floor for any Python command).
TIMER = r"""
import json, subprocess, sys, time
calls, names = int(sys.argv[1]), sys.argv[2:]
cases = {n: (["landgate", "hook", "claude-code"], open(n, "rb").read()) for n in names}
cases["python_start_session"] = ([sys.executable, "-c", "pass"], b"")
out = {n: [] for n in cases}
for i in range(calls + 1):  # round 0 warms up (the session's first decision compiles)
    for n, (argv, payload) in cases.items():
        t = time.perf_counter()
        p = subprocess.run(argv, input=payload, capture_output=True)
        dt = (time.perf_counter() - t) * 1000
        if p.returncode != 0:
            raise SystemExit(f"{n}: exit {p.returncode}: {p.stderr.decode()}")
        if i:
            out[n].append(dt)
print(json.dumps(out))
"""

# --breakdown, run inside `landgate run` (and outside, without the session rows).
BREAKDOWN = r"""
import json, os, subprocess, sys, time
calls, payload = int(sys.argv[1]), open(sys.argv[2], "rb").read()
py = sys.executable
parser = "import sys; from sandbox.cli import main; sys.exit(main(['hook', 'claude-code']))"
client = "import sandbox.entry, sandbox.integrations.hookclient"
rows = {
    "python -S -c pass (no site)": [py, "-S", "-c", "pass"],
    "python -c pass": [py, "-c", "pass"],
    "+ the hook client's imports": [py, "-c", client],
    "+ the parser's imports": [py, "-c", "import sandbox.cli"],
}
session = os.environ.get("LANDGATE_SESSION_REPORT")
if session:
    rows["landgate hook claude-code"] = ["landgate", "hook", "claude-code"]
    rows["the same through the parser"] = [py, "-c", parser]
    from sandbox.integrations.hookclient import ask_session
out = {k: [] for k in rows}
if session:
    out["connect + decide + reply (in a running process)"] = []
for i in range(calls + 1):
    for k, argv in rows.items():
        t = time.perf_counter()
        p = subprocess.run(argv, input=payload, capture_output=True)
        if p.returncode != 0:
            raise SystemExit(f"{k}: exit {p.returncode}: {p.stderr.decode()}")
        if i:
            out[k].append((time.perf_counter() - t) * 1000)
    if session:
        t = time.perf_counter()
        ask_session(payload, session)
        if i:
            out["connect + decide + reply (in a running process)"].append(
                (time.perf_counter() - t) * 1000)
print(json.dumps(out))
"""


def hook_in_session(calls: int, ws: Path, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """`landgate hook claude-code` inside `landgate run --policy claude-code`, timed inside
    the sandbox: {"hook_deny_session": {...}, "hook_allow_session": {...},
    "python_start_session": {...}} (ms)."""
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
    walls = _in_session(ws, env, ["python3", "timer.py", str(calls), *cases])
    return {
        name: {
            "median_ms": round(statistics.median(v), 1),
            "p90_ms": round(_pct(v, 0.9), 1),
            "min_ms": round(min(v), 1),
            "calls": len(v),
        }
        for name, v in walls.items()
    }


def _in_session(ws: Path, env: dict[str, str], command: list[str]) -> dict[str, list[float]]:
    """Run `command` in `landgate run -q --policy claude-code` in `ws`; its last line, JSON."""
    landgate = shutil.which("landgate", path=str(Path(sys.executable).parent)) or "landgate"
    run_env = dict(env, PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}")
    proc = subprocess.run(
        [landgate, "run", "-q", "--policy", "claude-code", "--", *command],
        cwd=ws,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hook inside landgate run: exit {proc.returncode}: {proc.stderr}")
    out: dict[str, list[float]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def breakdown(calls: int, root: Path) -> None:
    """--breakdown: the in-session hook's time, piece by piece (see the module docstring)."""
    ws = root / "ws"
    ws.mkdir()
    (ws / ".env").write_text("KEY=secret\n")
    env = dict(
        os.environ,
        XDG_STATE_HOME=str(root / "state"),
        XDG_CACHE_HOME=str(root / "cache"),
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    )
    env.pop("LANDGATE_SESSION_REPORT", None)
    data = {
        "hook_event_name": "PreToolUse",
        "cwd": str(ws),
        "tool_name": "Read",
        "tool_input": {"file_path": str(ws / ".env")},
        "session_id": "bench",
    }
    (ws / "input.json").write_text(json.dumps(data))
    (ws / "breakdown.py").write_text(BREAKDOWN)
    inside = _in_session(ws, env, ["python3", "breakdown.py", str(calls), "input.json"])
    proc = subprocess.run(
        [sys.executable, "breakdown.py", str(calls), "input.json"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    outside = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'median ms (' + str(calls) + ' rounds)':<50} {'in session':>10} {'outside':>8}")
    for row, values in inside.items():
        there = f"{statistics.median(outside[row]):8.1f}" if row in outside else f"{'-':>8}"
        print(f"{row:<50} {statistics.median(values):10.1f} {there}")


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
    ap.add_argument("--breakdown", action="store_true", help="where the in-session time goes")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="landgate-bench-"))
    try:
        if args.breakdown:
            breakdown(args.calls, root)
            return
        hook_latency(args.calls, root)
        session_cost(args.commands, root)
    finally:
        stop_hook_servers(root)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
