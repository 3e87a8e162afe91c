"""Benchmark: the policy evaluator (`sandbox.policy.decide`), decisions per second.

Synthetic policies with 10, 100 and 1,000 rules in every action block (a mix
of allow and deny, globs and literals), judged against targets that hit rules
early, late, and not at all.  Reports, per size and action: decisions per
second and median / p99 latency of a single `decide` call (which includes the
full explanation: the deciding rule and why every other rule did not decide),
plus the time to load and validate the policy.

    .venv/bin/python bench/bench_evaluator.py [--quick]

`run(quick)` returns the same numbers as a dict for bench/run.py; nothing is
written anywhere.  The policies use `extends: []` so the sizes are exact
(landgate's protected paths still add their file rules).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sandbox.policy import decide
from sandbox.policy.model import ACTIONS, Policy

SIZES = (10, 100, 1000)
WS = Path("/bench/ws")
HOME = Path("/bench/home")


def synthetic_policy(n: int, seed: int = 1) -> dict[str, Any]:
    """A policy with `n` rules in each of the four blocks; about one rule in five denies."""
    rnd = random.Random(seed)

    def effect() -> str:
        return "deny" if rnd.random() < 0.2 else "allow"

    paths, commands, dests = [], [], []
    for k in range(n):
        form = k % 5
        paths.append(
            {
                "path": [
                    f"./dir{k}/**",
                    f"**/secret{k}.txt",
                    f"~/cache{k}/",
                    f"*.ext{k}",
                    f"/srv/data{k}/*/file.bin",
                ][form],
                "effect": effect(),
            }
        )
        commands.append(
            {
                "command": [
                    f"tool{k}*",
                    f"bad{k} --flag*",
                    f"git sub{k}",
                    f"python3 -m mod{k}*",
                    f"/opt/bin/exe{k} *",
                ][form],
                "effect": effect(),
            }
        )
        dests.append(
            {
                "destination": [
                    f"host{k}.example.com:443",
                    f"*.zone{k}.net",
                    f"10.{k // 256 % 256}.{k % 256}.0/24",
                    f"[fd00::{k:x}]:8080",
                    f"unix:/run/svc{k}/*.sock",
                ][form],
                "effect": effect(),
            }
        )
    return {
        "version": 1,
        "workspace": str(WS),
        "extends": [],
        "actions": [
            {"action": "file_read", "defaultEffect": "deny", "rules": paths},
            {"action": "file_write", "defaultEffect": "deny", "rules": paths},
            {"action": "shell_exec", "defaultEffect": "deny", "rules": commands},
            {"action": "network", "defaultEffect": "deny", "rules": dests},
        ],
    }


def targets_for(action: str, n: int, count: int = 64, seed: int = 2) -> list[str]:
    """Targets hitting rules anywhere in the block, and misses (about a third)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        k = rnd.randrange(n)
        miss = rnd.random() < 0.33
        if action in ("file_read", "file_write"):
            out.append(
                "/nowhere/x.txt"
                if miss
                else [
                    f"./dir{k}/src/app.ts",
                    f"./pkg/secret{k}.txt",
                    f"~/cache{k}/blob",
                    f"./a/b.ext{k}",
                    f"/srv/data{k}/x/file.bin",
                ][k % 5]
            )
        elif action == "shell_exec":
            out.append(
                "unknown-tool --x"
                if miss
                else [
                    f"tool{k} run",
                    f"bad{k} --flag --y",
                    f"git sub{k}",
                    f"python3 -m mod{k} -v",
                    f"/opt/bin/exe{k} arg",
                ][k % 5]
            )
        else:
            out.append(
                "unlisted.example.org:443"
                if miss
                else [
                    f"host{k}.example.com:443",
                    f"api.zone{k}.net:80",
                    f"10.{k // 256 % 256}.{k % 256}.7:22",
                    f"[fd00::{k:x}]:8080",
                    f"unix:/run/svc{k}/a.sock",
                ][k % 5]
            )
    return out


def _measure(policy: Policy, action: str, targets: list[str], rounds: int) -> dict[str, float]:
    for t in targets:  # warm: compiled index, regex cache
        decide(policy, action, t)
    lat: list[int] = []
    clock = time.perf_counter_ns
    t_start = clock()
    for _ in range(rounds):
        for t in targets:
            t0 = clock()
            decide(policy, action, t)
            lat.append(clock() - t0)
    total = clock() - t_start
    lat.sort()
    return {
        "decisions_per_s": round(len(lat) / (total / 1e9)),
        "median_us": round(statistics.median(lat) / 1000, 2),
        "p99_us": round(lat[int(len(lat) * 0.99) - 1] / 1000, 2),
        "decisions": len(lat),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every size and action; returns {"sizes": {n: {"load_ms", action: {...}}}}."""
    rounds_for = {10: 40, 100: 20, 1000: 4} if not quick else {10: 4, 100: 2, 1000: 1}
    result: dict[str, Any] = {"python": sys.version.split()[0], "sizes": {}}
    for n in SIZES:
        data = synthetic_policy(n)
        t0 = time.perf_counter()
        policy = Policy.from_dict(data, source=f"<synthetic-{n}>", cwd=WS, home=HOME)
        load_ms = (time.perf_counter() - t0) * 1000
        entry: dict[str, Any] = {"load_ms": round(load_ms, 1)}
        for action in ACTIONS:
            entry[action] = _measure(policy, action, targets_for(action, n), rounds_for[n])
        result["sizes"][str(n)] = entry
    return result


def render_table(result: dict[str, Any]) -> str:
    lines = [
        f"{'rules':>6}  {'action':<11} {'decisions/s':>12} {'median us':>10} {'p99 us':>9}  load ms"
    ]
    for n, entry in result["sizes"].items():
        for action in ACTIONS:
            m = entry[action]
            lines.append(
                f"{n:>6}  {action:<11} {m['decisions_per_s']:>12,} {m['median_us']:>10} "
                f"{m['p99_us']:>9}  {entry['load_ms'] if action == 'file_read' else ''}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_table(run(quick="--quick" in sys.argv[1:])))
