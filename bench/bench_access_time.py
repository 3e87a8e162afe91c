"""Access-time file decisions (issue 12): what carve-outs cost per open, and at launch.

run(quick=False) -> dict, used by bench/run.py.  Every ratio is between medians taken in
this one run, interleaved (bare, then each landgate case, in every round).  It measures
whatever mechanism the tree has (launch masks, the supervisor's open check, ...): it runs
`landgate run` and times the workload from inside the session, so landgate's own start-up
is not in the per-open numbers.

Rows (the issue's Benchmark section):
  carve_in       find + cat over 10k files in the workspace, carve-out rules active
                 (`**/.env`, the presets' private-key rules) vs bare: goal <= 1.3x
  carve_outside  the same files in a granted tree that no deny rule can reach (the deny
                 rules are anchored in the workspace) vs bare: goal <= 1.02x.  The seccomp
                 filter sees an open's flags, never its path: once a read deny reaches a
                 readable grant, every read-only open of the sandbox goes to the supervisor,
                 this tree's included (sandbox/plan/carveouts.py), so this row pays the open
                 check as carve_in does.
  launch_1m      `landgate run -- /bin/true` granting a tree of 1M entries (with an
                 unanchored deny rule that reaches it) vs granting an empty one: goal <= +5 ms.
                 The tree is built once in ~/.cache/landgate-bench (or $XDG_CACHE_HOME).
  file_access_all  an open loop inside one session with `audit: {file_access: all}` vs
                 the default (`denied`): the cost per open, or "n/a (policy key missing)"
                 while the policy has no such key.
  open_check_per_open_us  the same loop: the default (`denied`) minus bare, the open check's
                 cost per supervised open (open + read 4 KiB + close of a workspace file).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Times the workload inside whatever runs it (bare or a session): median of N runs, seconds.
from bench_launch import TIMER

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIG_ENTRIES = 1_000_000


# N passes of open + read 4 KiB + close over a list of files: seconds per open (median pass).
OPENLOOP = """
import os, statistics, sys, time
paths = open(sys.argv[1]).read().split("\\n")
passes = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        os.read(fd, 4096)
        os.close(fd)
    passes.append((time.perf_counter() - t) / len(paths))
print(statistics.median(passes))
"""

KEY_RULES = """\
      - { path: "**/.env", effect: deny }
      - { path: "**/*key*.pem", effect: deny }
      - { path: "**/private/*.pem", effect: deny }
      - { path: "**/*.key", effect: deny }
"""
ANCHORED_RULES = """\
      - { path: "./.env", effect: deny }
      - { path: "./secrets/", effect: deny }
"""


def _policy(path: Path, workspace: Path, denies: str, extra: str = "", tail: str = "") -> Path:
    grants = f'      - {{ path: "{extra}/", effect: allow }}\n' if extra else ""
    path.write_text(f"""version: 1
workspace: {workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
{denies}      - {{ path: "./", effect: allow }}
{grants}  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./", effect: allow }}
  - action: shell_exec
    defaultEffect: allow
{tail}""")
    return path


def _tree(root: Path, n: int) -> None:
    for i in range(n):
        d = root / f"d{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_text(f"line {i}\n" * 4)
        if i % 1000 == 0:
            (d / ".env").write_text("SECRET=1\n")


def big_tree(entries: int) -> Path:
    """A tree of `entries` empty files (1000 per directory), built once and kept."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "landgate-bench"
    root = cache / f"tree-{entries}"
    done = root / ".complete"
    if done.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    per = 1000
    for i in range(0, entries, per):
        d = root / f"d{i // per:04d}"
        d.mkdir(exist_ok=True)
        for j in range(min(per, entries - i)):
            fd = os.open(d / f"f{j:03d}", os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
    done.write_text(f"{entries}\n")
    return root


def _lg(policy: Path) -> list[str]:
    return [PY, "-m", "sandbox", "run", "--policy", str(policy), "--"]


def _inside(prefix: list[str], script: str, args: list[str], cwd: Path, env: dict) -> float:
    out = subprocess.run(
        [*prefix, "/usr/bin/python3", "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"workload failed ({out.returncode}): {out.stderr.strip()[-300:]}")
    return float(out.stdout.strip().splitlines()[-1])


def _time(cmd: list[str], cwd: Path, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - t


def _interleave(cases: dict, rounds: int) -> dict[str, float]:
    """cases: name -> zero-argument callable returning seconds.  Medians."""
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for f in cases.values():  # warm-up, unrecorded
        f()
    for _ in range(rounds):
        for name, f in cases.items():
            samples[name].append(f())
    return {k: statistics.median(v) for k, v in samples.items()}


def _file_access_key(tmp: Path, ws: Path) -> str | None:
    """None when the policy knows `audit: {file_access: all}`, else why not."""
    from sandbox.errors import LandgateError
    from sandbox.policy import load_policy

    probe = _policy(tmp / "p-probe.yaml", ws, "", tail="audit:\n  file_access: all\n")
    try:
        load_policy(probe)
    except LandgateError as exc:
        return f"n/a (policy key missing: {str(exc).splitlines()[0][:120]})"
    return None


def run(quick: bool = False) -> dict:
    rounds = 3 if quick else 7
    files = 2000 if quick else 10_000
    inner_n = 3 if quick else 5
    entries = 20_000 if quick else BIG_ENTRIES
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="lg-bench-at-"))
    out: dict = {"files": files, "rounds": rounds}
    try:
        ws, data, empty = tmp / "ws", tmp / "data", tmp / "empty"
        for d in (ws, data, empty):
            d.mkdir()
        _tree(ws, files)
        _tree(data, files)
        carve = _policy(tmp / "p-carve.yaml", ws, KEY_RULES, extra=str(data))
        anchored = _policy(tmp / "p-anchored.yaml", ws, ANCHORED_RULES, extra=str(data))
        # the .env files are read bare and refused (EACCES) under the carve-out rules: the
        # workload's status is not the measure
        cat = "xargs -0 cat > /dev/null 2>&1; true"
        work_ws = ["sh", "-c", f"find . -type f -print0 | {cat}"]
        work_data = ["sh", "-c", f"find {data} -type f -print0 | {cat}"]
        n = str(inner_n)

        def inside(prefix: list[str], work: list[str]):
            return lambda: _inside(prefix, TIMER, [n, *work], ws, env)

        find_cat = _interleave(
            {
                "bare_ws": inside([], work_ws),
                "carve_in": inside(_lg(carve), work_ws),
                "bare_outside": inside([], work_data),
                "carve_outside": inside(_lg(anchored), work_data),
            },
            rounds,
        )
        out["find_cat_inside_median_s"] = find_cat
        out["carve_in_ratio_vs_bare"] = find_cat["carve_in"] / find_cat["bare_ws"]
        out["carve_outside_ratio_vs_bare"] = find_cat["carve_outside"] / find_cat["bare_outside"]

        # launch: a 1M-entry granted tree (reached by the unanchored `**/.env`) vs an empty one
        t0 = time.perf_counter()
        big = big_tree(entries)
        out["big_tree"] = {"entries": entries, "path": str(big)}
        out["big_tree_build_s"] = round(time.perf_counter() - t0, 1)  # 0 once cached
        p_big = _policy(tmp / "p-big.yaml", ws, KEY_RULES, extra=str(big))
        p_empty = _policy(tmp / "p-empty.yaml", ws, KEY_RULES, extra=str(empty))
        launch = _interleave(
            {
                "empty_tree": lambda: _time([*_lg(p_empty), "/bin/true"], ws, env),
                "big_tree": lambda: _time([*_lg(p_big), "/bin/true"], ws, env),
            },
            rounds * 2,
        )
        out["launch_median_s"] = launch
        out["launch_big_minus_empty_ms"] = (launch["big_tree"] - launch["empty_tree"]) * 1000

        # audit: {file_access: all}: cost per open, on the workspace's files
        missing = _file_access_key(tmp, ws)
        if missing is not None:
            out["file_access_all_per_open_us"] = missing
        else:
            lst = ws / "open-list.txt"
            lst.write_text("\n".join(str(p) for p in sorted(ws.glob("d*/f*.txt"))))
            p_all = _policy(tmp / "p-all.yaml", ws, KEY_RULES, tail="audit:\n  file_access: all\n")
            loop = [str(lst), n]
            per_open = _interleave(
                {
                    "bare": lambda: _inside([], OPENLOOP, loop, ws, env),
                    "denied": lambda: _inside(_lg(carve), OPENLOOP, loop, ws, env),
                    "all": lambda: _inside(_lg(p_all), OPENLOOP, loop, ws, env),
                },
                rounds,
            )
            out["open_loop_per_open_us"] = {k: v * 1e6 for k, v in per_open.items()}
            out["file_access_all_per_open_us"] = (per_open["all"] - per_open["denied"]) * 1e6
            out["open_check_per_open_us"] = (per_open["denied"] - per_open["bare"]) * 1e6
        return out
    finally:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
