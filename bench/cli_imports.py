"""Where a fresh `landgate run`'s time goes: per launch phase, how much of it is imports.

    python bench/cli_imports.py [ROUNDS [PRESET]]

Runs `landgate run -q --policy PRESET -- /bin/true` (default read-only) ROUNDS times
(default 20), each a fresh interpreter as the command is, and prints per phase (the
marks `LANDGATE_DEBUG_TIMING=1` prints, sandbox.session.options.PhaseClock) the median
wall time, the median time spent importing modules first needed in that phase, and
those modules with their median cost (each module's own import, its first-time imports
included, counted in the phase that asked for it).  "imports" is sandbox.cli's import
and its import of sandbox.session, before the first phase.  The rest of a phase is
compute and system calls; `bench/run_phases.py` is the same session in one process
(everything imported, memos warm).

Issue 19 measured with it (read-only, root): the phases that are slower in a fresh
process than in-process are slower mostly by their imports (network: sandbox.net;
tables: sandbox.supervise and the policy's compiled tables; plan: the supervisor's cffi
module and the session hook channel).  Run `python -m compileall -q sandbox` first.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# In the child: time every top-level import (nested ones count in their parent) and the
# phase marks; print one JSON line on stderr at the end.
CHILD = r"""
import json, sys, time
import importlib._bootstrap as bs
state = {"t": 0.0, "depth": 0, "mods": []}
real = bs._find_and_load

def find_and_load(name, import_):
    if name in sys.modules:
        return real(name, import_)
    state["depth"] += 1
    t = time.perf_counter()
    try:
        return real(name, import_)
    finally:
        state["depth"] -= 1
        if state["depth"] == 0:
            dt = time.perf_counter() - t
            state["t"] += dt
            state["mods"].append((name, dt * 1000))

bs._find_and_load = find_and_load
out = {}
t0 = [time.perf_counter(), 0.0]
import sandbox.cli as cli

def note(name):
    now = time.perf_counter()
    out[name] = {
        "wall": (now - t0[0]) * 1000,
        "imports": (state["t"] - t0[1]) * 1000,
        "modules": dict(state["mods"]),
    }
    state["mods"] = []
    t0[0], t0[1] = now, state["t"]

real_main = cli.cmd_run

def cmd_run(args):
    from sandbox.session import options
    note("imports")  # sandbox.cli's import, then the session's (LANDGATE_DEBUG_TIMING's)
    mark = options.PhaseClock.mark

    def marked(self, name):
        mark(self, name)
        note(name)

    options.PhaseClock.mark = marked
    return real_main(args)

cli.COMMANDS["run"] = cmd_run
code = cli.main(sys.argv[1:])
sys.stderr.write("\nCLI-IMPORTS " + json.dumps(out) + "\n")
sys.exit(code)
"""


def measure(rounds: int = 20, preset: str = "read-only") -> dict[str, dict[str, object]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = [sys.executable, "-c", CHILD, "run", "-q", "--policy", preset, "--", "/bin/true"]
    runs: list[dict[str, dict[str, object]]] = []
    with tempfile.TemporaryDirectory(prefix="lg-bench-imports-") as cwd:
        for r in range(rounds + 1):  # round 0 fills the caches, untimed
            p = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
            line = [x for x in p.stderr.splitlines() if x.startswith("CLI-IMPORTS ")]
            if p.returncode != 0 or not line:
                raise RuntimeError(f"exit {p.returncode}: {p.stderr[-400:]}")
            if r:
                runs.append(json.loads(line[-1].removeprefix("CLI-IMPORTS ")))
    phases = list(runs[0])
    out: dict[str, dict[str, object]] = {}
    for ph in phases:
        got = [r[ph] for r in runs if ph in r]
        mods: dict[str, list[float]] = {}
        for g in got:
            for m, ms in g["modules"].items():  # type: ignore[union-attr]
                mods.setdefault(m, []).append(ms)
        out[ph] = {
            "wall": round(statistics.median(g["wall"] for g in got), 2),  # type: ignore[misc]
            "imports": round(statistics.median(g["imports"] for g in got), 2),  # type: ignore[misc]
            "modules": {
                m: round(statistics.median(v), 2)
                for m, v in sorted(mods.items(), key=lambda kv: -statistics.median(kv[1]))
                if statistics.median(v) >= 0.05
            },
        }
    return out


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    preset = sys.argv[2] if len(sys.argv) > 2 else "read-only"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "sandbox")], check=False)
    res = measure(rounds, preset)
    print(f"{'phase':12s} {'wall':>6s} {'imports':>8s}  modules first imported (ms)")
    for ph, row in res.items():
        mods = ", ".join(f"{m} {ms}" for m, ms in row["modules"].items())  # type: ignore[union-attr]
        print(f"{ph:12s} {row['wall']:6.2f} {row['imports']:8.2f}  {mods}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
