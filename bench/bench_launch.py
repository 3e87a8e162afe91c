"""Launch overhead and file-heavy workload under landgate (issue 3).

run(quick=False) -> dict, used by bench/run.py.  Interleaved A B A B runs,
medians and ratios:
  launch: `landgate run -- /bin/true` vs bare /bin/true, bwrap --ro-bind / /, firejail --noprofile
  launch_phases_ms: the same launch's phases (LANDGATE_DEBUG_TIMING), medians; `outside`
          is the wall time outside them: the interpreter's start and its exit
  files:  find + cat over a generated 10k-file tree: bare vs Landlock-only
          (no carve-out matches) vs with carve-outs (a `**/.env` deny with masked matches),
          end to end (launch included) and timed inside one session (enforcement alone)
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _time(cmd: list[str], cwd: str | None = None, env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return time.perf_counter() - t


def _interleaved(cmds: dict[str, list[str]], rounds: int, **kw) -> dict[str, float]:
    samples: dict[str, list[float]] = {k: [] for k in cmds}
    for cmd in cmds.values():  # warm-up
        _time(cmd, **kw)
    for _ in range(rounds):
        for name, cmd in cmds.items():
            samples[name].append(_time(cmd, **kw))
    return {k: statistics.median(v) for k, v in samples.items()}


def _phases(cmd: list[str], rounds: int, **kw) -> dict[str, float]:
    """Medians of each LANDGATE_DEBUG_TIMING phase of `cmd` (a `landgate run`), and of
    `outside`: its wall time minus the phases' total (interpreter start-up and exit)."""
    env = dict(kw.pop("env", None) or os.environ, LANDGATE_DEBUG_TIMING="1")
    samples: dict[str, list[float]] = {}
    for i in range(rounds + 1):
        t = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, **kw)
        wall = (time.perf_counter() - t) * 1000
        line = next((x for x in out.stderr.splitlines() if "timing (ms):" in x), None)
        if out.returncode != 0 or line is None:
            raise RuntimeError(f"launch failed ({out.returncode}): {out.stderr.strip()[-300:]}")
        if i == 0:
            continue  # warm-up
        phases = dict(p.rsplit(" ", 1) for p in line.split("timing (ms): ", 1)[1].split(", "))
        for name, value in phases.items():
            samples.setdefault(name, []).append(float(value))
        samples.setdefault("outside", []).append(wall - float(phases["total"]))
    return {k: round(statistics.median(v), 2) for k, v in samples.items()}


def _policy(dir_: Path, workspace: Path, deny_env: bool) -> Path:
    deny = '      - { path: "**/.env", effect: deny }\n' if deny_env else ""
    p = dir_ / ("p-carve.yaml" if deny_env else "p-plain.yaml")
    p.write_text(f"""version: 1
workspace: {workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
{deny}      - {{ path: "./**", effect: allow }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: deny
    rules:
      - {{ command: "python3 *", effect: allow }}
      - {{ command: "sh -c *", effect: allow }}
      - {{ command: "find *", effect: allow }}
      - {{ command: "xargs *", effect: allow }}
      - {{ command: "cat *", effect: allow }}
""")
    return p


# The tree's .env files are refused (EACCES) inside the session since carve-outs are
# decided at access time (issue 12): cat fails on them and xargs exits 123.  That, or 0
# (bare), is the workload's success; anything else still fails the run.
DENIED_OK = " 2>/dev/null; rc=$?; [ $rc -eq 0 ] || [ $rc -eq 123 ]"

# Times the workload from inside whatever runs it (bare or a sandbox), so that the
# sandbox's launch is not in the number: the median of N runs, in seconds.
TIMER = """
import statistics, subprocess, sys, time
n, cmd = int(sys.argv[1]), sys.argv[2:]
samples = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    samples.append(time.perf_counter() - t)
print(statistics.median(samples))
"""


def _inside(cmd_prefix: list[str], work: list[str], n: int, cwd: str, env: dict) -> float:
    out = subprocess.run(
        [*cmd_prefix, "/usr/bin/python3", "-c", TIMER, str(n), *work],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"workload failed ({out.returncode}): {out.stderr.strip()[-300:]}")
    return float(out.stdout.strip().splitlines()[-1])


def _tree(root: Path, n: int) -> None:
    for i in range(n):
        d = root / f"d{i // 100:03d}"
        d.mkdir(exist_ok=True)
        (d / f"f{i:05d}.txt").write_text(f"line {i}\n" * 4)
        if i % 1000 == 0:
            (d / ".env").write_text("SECRET=1\n")


def run(quick: bool = False) -> dict:
    rounds = 5 if quick else 21
    files = 2000 if quick else 10_000
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="lg-bench-"))
    try:
        ws = tmp / "ws"
        ws.mkdir()
        plain = _policy(tmp, ws, deny_env=False)
        carve = _policy(tmp, ws, deny_env=True)
        lg = [PY, "-m", "sandbox", "run", "--policy", str(plain), "--"]
        launch_cmds = {"bare": ["/bin/true"], "landgate": [*lg, "/bin/true"]}
        if shutil.which("bwrap"):
            launch_cmds["bwrap"] = ["bwrap", "--ro-bind", "/", "/", "/bin/true"]
        if shutil.which("firejail"):
            launch_cmds["firejail"] = ["firejail", "--quiet", "--noprofile", "/bin/true"]
        launch = _interleaved(launch_cmds, rounds, cwd=str(ws), env=env)
        phases = _phases(launch_cmds["landgate"], rounds, cwd=str(ws), env=env)
        _tree(ws, files)
        work = ["sh", "-c", "find . -type f -print0 | xargs -0 cat > /dev/null" + DENIED_OK]
        file_cmds = {
            "bare": work,
            "landlock_only": [PY, "-m", "sandbox", "run", "--policy", str(plain), "--", *work],
            "carve_outs": [PY, "-m", "sandbox", "run", "--policy", str(carve), "--", *work],
        }
        # landgate's own start-up (python import, plan) is in each of these samples; the
        # "inside" numbers below time the workload within one session instead.
        fw = _interleaved(file_cmds, max(3, rounds // 2), cwd=str(ws), env=env)
        # Enforcement alone: the workload timed inside one session, bare vs each policy,
        # alternating, median of the per-session medians.
        inner: dict[str, list[float]] = {"bare": [], "landlock_only": [], "carve_outs": []}
        prefixes = {
            "bare": [],
            "landlock_only": file_cmds["landlock_only"][: -len(work)],
            "carve_outs": file_cmds["carve_outs"][: -len(work)],
        }
        for _ in range(3 if quick else 5):
            for name, prefix in prefixes.items():
                inner[name].append(_inside(prefix, work, 3 if quick else 7, str(ws), env))
        inner_med = {k: statistics.median(v) for k, v in inner.items()}
        result = {
            "rounds": rounds,
            "launch_median_s": launch,
            "launch_ratio_vs_bare": {k: v / launch["bare"] for k, v in launch.items()},
            "launch_phases_ms": phases,
            "files": files,
            "workload_median_s": fw,
            "workload_ratio_vs_bare_raw": {k: v / fw["bare"] for k, v in fw.items()},
            "workload_inside_median_s": inner_med,
            "workload_inside_ratio_vs_bare": {
                k: v / inner_med["bare"] for k, v in inner_med.items()
            },
        }
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
