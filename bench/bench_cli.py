"""The command line's own cost (issue 19) and the Claude Code hook's latency (issue 16).

run(quick=False) -> dict, used by bench/run.py.  Every number is a median over rounds in
which each case runs once, interleaved, so a noisy neighbour hits every case alike; each
comparison is between medians of this one run.

Rows:
  python_start      `python -c pass` with landgate's interpreter: the floor of any CLI
  cli_true          `landgate run -q --policy read-only -- /bin/true`, the policy from the
                    persistent cache (the second and later runs); goal <= python_start + 25 ms
  cli_true_cold     the same with LANDGATE_POLICY_CACHE=0 (load, validate every time)
  hook_deny/allow   `landgate hook claude-code`, a fresh process per call as Claude Code
                    runs it, fed a recorded Read of .env (deny) / Bash `ls -la` (allow):
                    answered by the resident hook server (started by the warm-up call);
                    goal <= 50 ms end to end, Python start included
  hook_*_alone      the same decided in the hook's own process (LANDGATE_HOOK_SERVER=0),
                    policy from the persistent cache: the path without the server
  hook_*_cold       the same without the cache either (LANDGATE_POLICY_CACHE=0)
  hook_*_session    the same inside `landgate run --policy claude-code`, timed inside the
                    sandbox: the hook asks the session, which decides (bench/integrations.py)
  memory_one        `landgate run --policy coding-agent -- sleep 3`, read while the agent
                    runs: the landgate process's RSS, PSS and USS (private pages), its
                    helpers' (the launcher's init) USS and PSS, session_pss_mb (landgate's
                    PSS + its helpers': what one more session costs the machine; a page
                    landgate shares with a helper counts once), and the peak RSS (wait4's
                    ru_maxrss: the landgate process, or a waited-for child if larger);
                    goal <= 25 MB per session
  memory_10         the same for 10 sessions started together: the largest and the sum
  session           in one process: sandbox.Session.run("/bin/true") vs subprocess.run of
                    it (per command), with the default hand-over (the supervisor's records
                    fenced: Supervisor.flush), with settle=0 (no hand-over: records may
                    come after run returns) and with the old fixed 15 ms settle wait;
                    goal <= +1 ms per command
  api_run           in one process: sandbox.run(["/bin/true"]) vs subprocess.run; goal +5 ms
The bytecode of the package is compiled first (python -m compileall), as an installed
package has it: with none, each run compiles ~100 modules (~0.7 s here).

`python bench/bench_cli.py --phases OTHER [ROUNDS [PRESET]]`: this checkout against another tree
holding a `sandbox` package (e.g. `git archive main sandbox policies`, its presets link and
this checkout's built .so files copied in), alternated round by round: the medians of each
launch phase `LANDGATE_DEBUG_TIMING=1` prints, and of the command's wall time (which also
counts the interpreter's start, sandbox.cli's import and the exit), with `python -c pass` in
the same rounds, and each tree's wall time minus python's (`wall_minus_python`).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
LANDGATE = shutil.which("landgate", path=str(Path(PY).parent)) or str(Path(PY).parent / "landgate")


def _timed(argv: list[str], env: dict[str, str], stdin: bytes = b"", cwd: str | None = None):
    def go() -> float:
        t = time.perf_counter()
        p = subprocess.run(argv, input=stdin, env=env, cwd=cwd, capture_output=True, check=False)
        dt = (time.perf_counter() - t) * 1000
        if p.returncode != 0:
            raise RuntimeError(f"{argv[:4]} exited {p.returncode}: {p.stderr.decode()[-300:]}")
        return dt

    return go


def _interleave(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, dict]:
    for fn in cases.values():  # one untimed warm-up each (fills the policy cache)
        fn()
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for k, fn in cases.items():
            samples[k].append(fn())
    return {
        k: {
            "median_ms": round(statistics.median(v), 2),
            "min_ms": round(min(v), 2),
            "p90_ms": round(sorted(v)[int(0.9 * (len(v) - 1))], 2),
            "samples": [round(x, 2) for x in v],
        }
        for k, v in samples.items()
    }


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _rollup(pid: int) -> dict[str, int]:
    """Rss, Pss and Private (USS) of one process, KiB."""
    d = {"Rss": 0, "Pss": 0, "Private": 0}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss"):
                d[k] = int(v.split()[0])
            elif k in ("Private_Clean", "Private_Dirty"):
                d["Private"] += int(v.split()[0])
    return d


def _sessions(env: dict[str, str], cwd: str, audit: str, n: int) -> list[dict[str, float]]:
    """n sessions of `landgate run --policy coding-agent -- sleep 3` started together.  For
    each, once its agent (`sleep`) runs: the landgate process's Rss/Pss/USS and the USS of
    landgate's other processes (the launcher's helper), then the peak RSS from wait4."""
    argv = [LANDGATE, "run", "-q", "--policy", "coding-agent", "--audit", audit, "--"]
    procs = [
        subprocess.Popen(
            [*argv, "sleep", "3"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]
    rows: list[dict[str, float]] = []
    for p in procs:
        deadline = time.monotonic() + 60
        tree = _tree(p.pid)
        while time.monotonic() < deadline and not any(_comm(c) == "sleep" for c in tree[1:]):
            time.sleep(0.02)
            tree = _tree(p.pid)
        row: dict[str, float] = {}
        try:
            own = _rollup(p.pid)
            helpers = [_rollup(c) for c in tree[1:] if _comm(c) != "sleep"]
            helpers_pss = sum(h["Pss"] for h in helpers) / 1024
            row = {
                "rss_mb": own["Rss"] / 1024,
                "pss_mb": own["Pss"] / 1024,
                "uss_mb": own["Private"] / 1024,
                "helpers_uss_mb": sum(h["Private"] for h in helpers) / 1024,
                "helpers_pss_mb": helpers_pss,
                # What the session costs the machine: landgate's and its helpers' PSS (a
                # page two of them share counts once between them, as it is held once).
                "session_pss_mb": own["Pss"] / 1024 + helpers_pss,
            }
        except OSError:
            row = {}
        rows.append(row)
    for p, row in zip(procs, rows, strict=True):
        _pid, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err = p.stderr.read().decode()[-300:] if p.stderr else ""
            raise RuntimeError(f"landgate run exited {p.returncode}: {err}")
        row["peak_rss_mb"] = ru.ru_maxrss / 1024  # wait4: KiB
    return [{k: round(v, 1) for k, v in r.items()} for r in rows]


INPROC = r"""
import json, statistics, subprocess, sys, time
import sandbox
rounds, audit, cwd = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pol = "read-only"
def t(fn):
    s = time.perf_counter(); fn(); return (time.perf_counter() - s) * 1000
out = {"subprocess": [], "api_run": [], "session": [], "session_settle0": [],
       "session_settle15": []}
sandbox.run(["/bin/true"], policy=pol, cwd=cwd, audit=audit)
# Started one after the other (each answers a first command before the next starts):
# sessions launched concurrently from one process can block on the network layer's
# allocation lock (a fork inherits it while another thread holds it).
sessions = []
for settle in (None, 0, 0.015):
    s = sandbox.Session(pol, cwd=cwd, audit=audit, settle=settle)
    s.run("/bin/true")
    sessions.append(s)
s, s0, s15 = sessions
try:
    for _ in range(rounds):
        out["subprocess"].append(t(lambda: subprocess.run(["/bin/true"])))
        out["api_run"].append(t(lambda: sandbox.run(["/bin/true"], policy=pol, cwd=cwd,
                                                    audit=audit)))
        out["session"].append(t(lambda: s.run("/bin/true")))
        out["session_settle0"].append(t(lambda: s0.run("/bin/true")))
        out["session_settle15"].append(t(lambda: s15.run("/bin/true")))
finally:
    for x in sessions:
        x.close()
if s.fence_failures:
    raise SystemExit(f"{s.fence_failures} fences failed")
print(json.dumps({k: statistics.median(v) for k, v in out.items()}))
"""


def run(quick: bool = False) -> dict:
    rounds = 5 if quick else 25
    tmp = Path(tempfile.mkdtemp(prefix="lg-bench-cli-"))
    out: dict = {"rounds": rounds}
    try:
        subprocess.run(
            [PY, "-m", "compileall", "-q", str(ROOT / "sandbox")],
            capture_output=True,
            check=False,
        )
        ws = tmp / "ws"
        ws.mkdir()
        (ws / ".env").write_text("KEY=secret\n")
        audit = str(tmp / "audit")
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("LANDGATE_POLICY_CACHE", None)
        env.pop("LANDGATE_HOOK_SERVER", None)
        # A user's own state, not this machine's: the key directory ($XDG_CONFIG_HOME/landgate)
        # keeps one witness file per audit directory ever used, and the open check's launch
        # walk of it grows with them (4,300 here from test runs: +10 ms on main, +2.5 now).
        for k in ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"):
            env[k] = str(tmp / k.lower())
        (tmp / "xdg_runtime_dir").mkdir(mode=0o700)
        alone = dict(env, LANDGATE_HOOK_SERVER="0")
        cold = dict(alone, LANDGATE_POLICY_CACHE="0")
        true = [LANDGATE, "run", "-q", "--policy", "read-only", "--audit", audit, "--", "/bin/true"]
        hook = [LANDGATE, "hook", "claude-code", "--audit", audit]

        def hook_input(tool: str, tool_input: dict) -> bytes:
            return json.dumps(
                {
                    "session_id": "bench",
                    "cwd": str(ws),
                    "hook_event_name": "PreToolUse",
                    "tool_name": tool,
                    "tool_input": tool_input,
                    "tool_use_id": "t",
                }
            ).encode()

        deny = hook_input("Read", {"file_path": str(ws / ".env")})
        allow = hook_input("Bash", {"command": "ls -la"})
        cw = str(ws)
        rows = _interleave(
            {
                "python_start": _timed([PY, "-c", "pass"], env),
                "cli_true": _timed(true, env, cwd=cw),
                "cli_true_cold": _timed(true, dict(env, LANDGATE_POLICY_CACHE="0"), cwd=cw),
                "hook_deny": _timed(hook, env, deny, cw),
                "hook_allow": _timed(hook, env, allow, cw),
                "hook_deny_alone": _timed(hook, alone, deny, cw),
                "hook_allow_alone": _timed(hook, alone, allow, cw),
                "hook_deny_cold": _timed(hook, cold, deny, cw),
                "hook_allow_cold": _timed(hook, cold, allow, cw),
            },
            rounds,
        )
        out.update(rows)
        # The hook inside `landgate run`, where the session decides (bench/integrations.py).
        from integrations import hook_in_session

        try:
            out.update(hook_in_session(rounds, ws, env))
        except RuntimeError as exc:
            out["hook_session"] = f"failed: {exc}"
        py = rows["python_start"]["median_ms"]
        out["cli_true_minus_python_ms"] = round(rows["cli_true"]["median_ms"] - py, 1)
        out["cli_true_cold_minus_python_ms"] = round(rows["cli_true_cold"]["median_ms"] - py, 1)
        out["cli_true_ratio_to_python"] = round(rows["cli_true"]["median_ms"] / py, 2)

        one = [_sessions(env, cw, audit, 1)[0] for _ in range(3 if quick else 5)]
        out["memory_one"] = {
            k: statistics.median(r[k] for r in one) for k in one[0] if all(k in r for r in one)
        }
        ten = _sessions(env, cw, audit, 10)
        out["memory_10"] = {
            k: {"max": max(r[k] for r in ten), "sum": round(sum(r[k] for r in ten), 1)}
            for k in ten[0]
            if all(k in r for r in ten)
        }

        proc = subprocess.run(
            [PY, "-c", INPROC, str(rounds * 2), audit, cw],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            out["inproc"] = f"failed: {proc.stderr.strip().splitlines()[-1:]}"
        else:
            med = json.loads(proc.stdout.strip().splitlines()[-1])
            base = med["subprocess"]
            out["inproc"] = {k: round(v, 2) for k, v in med.items()}
            for k in ("api_run", "session", "session_settle0", "session_settle15"):
                out[f"{k}_minus_subprocess_ms"] = round(med[k] - base, 2)
    finally:
        stop_hook_servers(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def stop_hook_servers(root: Path) -> None:
    """The hook servers this run started (their lock files hold their pids)."""
    import signal

    for lock in root.rglob("hook-*.lock"):
        try:
            os.kill(int(lock.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


# The command as the console script runs it; a tree without cli.entry (before the short
# exit) is run through main, as its own script did.
# The `landgate` command's own first step (sandbox.entry.entry, which sets up the process
# for `run` before importing sandbox.cli); an older tree without it, sandbox.cli's.
_COMMAND = """import sys
try:
    from sandbox.entry import entry
except ImportError:
    import sandbox.cli as c
    entry = c.entry if hasattr(c, "entry") else (lambda: sys.exit(c.main(sys.argv[1:])))
entry()
"""


def phases(other: str, rounds: int = 15, preset: str = "read-only") -> dict[str, dict[str, float]]:
    """Per-phase medians (ms) of `landgate run -q --policy PRESET -- /bin/true`, this
    checkout ("this") against the tree `other`, alternated; see the module doc."""
    import re

    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "sandbox"), other], check=False)
    env = dict(os.environ, LANDGATE_DEBUG_TIMING="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    trees = {"other": dict(env, PYTHONPATH=other), "this": dict(env, PYTHONPATH=str(ROOT))}
    argv = [PY, "-c", _COMMAND, "run", "-q", "--policy", preset, "--", "/bin/true"]
    samples: dict[str, dict[str, list[float]]] = {k: {} for k in (*trees, "python")}
    with tempfile.TemporaryDirectory(prefix="lg-bench-phases-") as cwd:
        for r in range(rounds + 1):  # round 0 warms the caches, untimed
            for name, tree_env in trees.items():
                t = time.perf_counter()
                p = subprocess.run(argv, env=tree_env, cwd=cwd, capture_output=True, check=False)
                wall = (time.perf_counter() - t) * 1000
                m = re.search(r"timing \(ms\): (.*)", p.stderr.decode())
                if p.returncode != 0 or m is None:
                    raise RuntimeError(f"{name}: exit {p.returncode}: {p.stderr.decode()[-300:]}")
                if r == 0:
                    continue
                for part in m.group(1).split(", "):
                    phase, value = part.rsplit(" ", 1)
                    samples[name].setdefault(phase, []).append(float(value))
                samples[name].setdefault("wall", []).append(wall)
            t = time.perf_counter()
            subprocess.run([PY, "-c", "pass"], env=env, check=False)
            if r:
                samples["python"].setdefault("wall", []).append((time.perf_counter() - t) * 1000)
    out = {
        name: {k: round(statistics.median(v), 1) for k, v in by_phase.items()}
        for name, by_phase in samples.items()
    }
    # The row's measure (issue 19): each tree's launch over `python -c pass`, same rounds.
    # The phases start after sandbox.cli's import; the wall time counts it.
    for name in trees:
        out[name]["wall_minus_python"] = round(out[name]["wall"] - out["python"]["wall"], 1)
    return out


if __name__ == "__main__":
    if "--phases" in sys.argv:
        i = sys.argv.index("--phases")
        n = int(sys.argv[i + 2]) if len(sys.argv) > i + 2 else 15
        preset = sys.argv[i + 3] if len(sys.argv) > i + 3 else "read-only"
        print(json.dumps(phases(sys.argv[i + 1], n, preset), indent=1))
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
