"""In-process launches of /bin/true, A/B between two installed landgate trees, interleaved.

    python bench/run_ab.py TREE_A TREE_B [ROUNDS]

Each TREE is a checkout with its own `make install` (TREE/.venv, the C extensions and
the init program built): e.g. `git archive <commit> | tar -x -C /tmp/base` and `make
install` there.  One worker interpreter per tree (the tree's own .venv python, the tree
first on sys.path) stays up for the whole run; every round asks both, in an order that
alternates (A B, then B A), for one of each measure:

  bare   subprocess.run(["/bin/true"], capture_output=True): the baseline
  ro     run_session_result under the read-only preset (as bench/run_phases.py runs it)
  bench  the same under bench_peers' policy (the make bench launch row's policy)
  api    sandbox.run(["/bin/true"], policy=<that policy, loaded once>, capture_output=True):
         the make bench in-process launch row
  sess   one command of a sandbox.Session kept open (the Session reuse row)

and prints each one's medians and B - A.  A private $HOME per worker, its key directory
seeded with 1,265 witness files (as run_phases.py).  Run `python -m compileall -q sandbox`
in both trees first.  No assertion on time anywhere.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MEASURES = ("bare", "ro", "bench", "api", "sess")


def worker(tree: str) -> None:
    sys.path.insert(0, tree)
    sys.path.insert(0, str(BENCH))
    tmp = Path(tempfile.mkdtemp(prefix="lg-ab-"))
    os.environ["HOME"] = str(tmp / "home")
    os.environ.pop("XDG_CONFIG_HOME", None)
    os.environ.pop("XDG_STATE_HOME", None)
    wit = tmp / "home" / ".config" / "landgate" / "witness"
    wit.mkdir(parents=True)
    for i in range(1265):
        (wit / f"{i:032x}.json").write_text("{}\n")
    work = tmp / "work"
    work.mkdir()
    from bench_peers import POLICY_TEMPLATE
    from run_phases import true_options

    bench_policy = tmp / "bench.yaml"
    bench_policy.write_text(POLICY_TEMPLATE.format(work=work, client="true", port=9))
    import sandbox
    import sandbox.api
    from sandbox.session import RunOptions, run_session_result

    if not sandbox.__file__ or not sandbox.__file__.startswith(tree):
        raise SystemExit(f"{tree}: imported {sandbox.__file__}")
    null = os.open(os.devnull, os.O_RDWR)
    policies = {"ro": "read-only", "bench": str(bench_policy)}
    loader = getattr(sandbox.Policy, "load", None)
    api_policy = loader(str(bench_policy)) if loader else str(bench_policy)

    def session(name: str) -> None:
        res = run_session_result(
            true_options(RunOptions, policies[name], str(tmp / "audit" / name), str(work), null)
        )
        if res.exit_code != 0:
            raise SystemExit(f"{name}: exit {res.exit_code}")

    def api() -> None:
        res = sandbox.api.run(
            ["/bin/true"], policy=api_policy, audit=str(tmp / "audit" / "api"), capture_output=True
        )
        if res.returncode != 0:
            raise SystemExit(f"api: exit {res.returncode}")

    kept = sandbox.Session(str(bench_policy), cwd=str(work), audit=str(tmp / "audit" / "sess"))

    def bare() -> None:
        subprocess.run(["/bin/true"], stdin=subprocess.DEVNULL, capture_output=True, check=True)

    runs = {
        "bare": bare,
        "ro": lambda: session("ro"),
        "bench": lambda: session("bench"),
        "api": api,
        "sess": lambda: kept.run("/bin/true"),
    }
    for fn in runs.values():  # warm-up: imports, caches, the first spare namespace
        fn()
        fn()
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            fn = runs[line.strip()]
            t = time.perf_counter()
            fn()
            print((time.perf_counter() - t) * 1000, flush=True)
    finally:
        kept.close()


def main() -> int:
    tree_a, tree_b = (str(Path(p).resolve()) for p in sys.argv[1:3])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    procs = {}
    for name, tree in (("A", tree_a), ("B", tree_b)):
        p = subprocess.Popen(
            [f"{tree}/.venv/bin/python", __file__, "--worker", tree],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert p.stdin is not None and p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"{tree}: the worker did not start")
        procs[name] = p
    samples: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        for measure in MEASURES:
            for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
                p = procs[name]
                assert p.stdin is not None and p.stdout is not None
                p.stdin.write(measure + "\n")
                p.stdin.flush()
                samples.setdefault((name, measure), []).append(float(p.stdout.readline()))
    print(f"A {tree_a}\nB {tree_b}\nmedians of {rounds} interleaved rounds, ms")
    for measure in MEASURES:
        a = statistics.median(samples[("A", measure)])
        b = statistics.median(samples[("B", measure)])
        print(f"  {measure:6s} A {a:7.2f}  B {b:7.2f}  B-A {b - a:+.2f}")
    for p in procs.values():
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
