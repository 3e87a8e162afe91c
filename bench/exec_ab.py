"""The exec loop and the exec decision, A/B between builds of the supervisor, alternated.

    python bench/exec_ab.py [--rounds N] [--pairs N] [--execs N] [--phases] NAME=BUILD ...

BUILD is a built sandbox._supervise (a .so file) or a source tree (a directory with
csrc/: e.g. a `git worktree` of another commit), which is built with csrc/build.py's
make_ffi into a temporary directory; --phases builds trees with -DLG_BENCH_PHASES
(csrc/supervise_bench.h) and prints each build's median phase times per exec.

Each round runs every build once, in an order that alternates (A B, then B A: a host
that slows down mid-round is charged to both), each in a fresh interpreter that loads
that build as sandbox._supervise and runs, --pairs times, 200 x fork+exec+wait of
/bin/true bare and then the same loop exec-gated in bench_supervise.py's harness (same
policy, same write table).  Per build it prints medians over the rounds of: the
gated/bare ratio, the overhead per exec (gated - bare, paired within the round), the
decision (receive to answer, from the events' timestamps), the decisions of a $PATH
search (loops pathexec: three missing entries, then /bin/true, from one process: its
misses after the first are answered through the pidfd kept after a miss), and the CPU time per gated
exec of the threads the supervised runs started (the decision loop, the event drainer):
on this 2-vCPU VM the loop's caller, the supervisor and the drainer mostly share one
CPU, so their CPU time is what the loop's wall time pays, and it is far less noisy
than the wall time on a shared host.  Against the first build: paired differences.
No assertion on time anywhere.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


class _ThreadCpu:
    """Run time (schedstat) of this interpreter's threads other than the main one and
    itself, sampled every 2 ms until stop(): the last sample of a thread that ended.
    Undercounts by at most one interval of each thread's last run."""

    def __init__(self) -> None:
        import threading

        self._seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._skip = {str(os.getpid())}
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        import threading

        self._skip.add(str(threading.get_native_id()))
        while not self._stop.wait(0.002):
            for tid in os.listdir("/proc/self/task"):
                if tid in self._skip:
                    continue
                try:
                    with open(f"/proc/self/task/{tid}/schedstat") as f:
                        self._seen[tid] = int(f.read().split()[0])
                except OSError:
                    pass

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return sum(self._seen.values())


def load_build(so: str) -> None:
    """A child's first step: the build at `so` becomes sandbox._supervise, and the tree's
    root, tests and bench go on sys.path (bench_supervise's harness, tests' make_policy)."""
    loader = importlib.machinery.ExtensionFileLoader("sandbox._supervise", so)
    spec = importlib.util.spec_from_file_location("sandbox._supervise", so, loader=loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    sys.modules["sandbox._supervise"] = mod
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(BENCH))


def run_rounds(
    script: str,
    builds: list[tuple[str, str]],
    rounds: int,
    child_args: list[str],
    phases: Path | None,
    show: Callable[[dict[str, list[dict]]], str],
) -> dict[str, list[dict]]:
    """Run `script --child SO *child_args` once per build per round, in an order that
    alternates (A B, then B A), each in a fresh interpreter; its JSON line per run, by
    build name.  `show` makes each round's progress line from the results so far."""
    res: dict[str, list[dict]] = {n: [] for n, _ in builds}
    for r in range(rounds):
        for name, so in builds if r % 2 == 0 else builds[::-1]:
            env = dict(os.environ)
            if phases is not None:
                env["LG_BENCH_PHASES_OUT"] = str(phases / f"{name}.phases")
            out = subprocess.run(
                [sys.executable, script, "--child", so, *child_args],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout
            res[name].append(json.loads(out))
        print(f"round {r + 1}: {show(res)}", flush=True)
    return res


def _child(so: str, execs: int, pairs: int) -> None:
    """One round of one build: print {bare, gated, decisions}."""
    load_build(so)
    import bench_supervise as bs

    from tests.supervise.conftest import make_policy

    with tempfile.TemporaryDirectory(prefix="landgate-exec-ab-") as tmp:
        bins = bs._build(Path(tmp))
        pol = make_policy([("true", "allow"), ("loops*", "allow")], [])
        cpu = _ThreadCpu()
        decisions: list[float] = []
        bares: list[int] = []
        gateds: list[int] = []
        slow = 0
        for _ in range(pairs):
            bares.append(bs._bare(bins["loops"], "exec", str(execs), "/bin/true"))
            ns, counts = bs._supervised(
                Path(tmp),
                bins["loops"],
                ["exec", str(execs), "/bin/true"],
                pol,
                decisions,
                plan_info={"write_trees": [tmp]},
            )
            gateds.append(ns)
            slow += counts.get("slow_path", 0)
        threads_ns = cpu.stop()
        # the decisions that allow nothing: a $PATH miss (the kernel's ENOENT: execvp
        # tries every entry) and a denial, each 200 times
        miss: list[float] = []
        bs._supervised(
            Path(tmp),
            bins["loops"],
            ["exec", str(execs), "/nonexistent/true"],
            pol,
            miss,
            plan_info={"write_trees": [tmp]},
        )
        # a shell's $PATH search (loops pathexec): three misses, then /bin/true, each
        # iteration from one process; its decisions and its overhead per iteration
        path_miss: list[float] = []
        path_hit: list[float] = []
        path_bare = bs._bare(bins["loops"], "pathexec", str(execs), "true")
        path_gated, _ = bs._supervised(
            Path(tmp),
            bins["loops"],
            ["pathexec", str(execs), "true"],
            pol,
            path_hit,
            path_miss,
            plan_info={"write_trees": [tmp]},
        )
        denied: list[float] = []
        bs._supervised(
            Path(tmp),
            bins["loops"],
            ["exec", str(execs), "/bin/true"],
            make_policy([("true", "deny"), ("loops*", "allow")], []),
            denied,
            plan_info={"write_trees": [tmp]},
        )
    print(
        json.dumps(
            {
                "bare": statistics.median(bares),
                "gated": statistics.median(gateds),
                "over": statistics.median(g - b for g, b in zip(gateds, bares, strict=True)),
                "decision": statistics.median(decisions) if decisions else 0.0,
                "slow": slow,
                "miss": statistics.median(miss) if miss else 0.0,
                "deny": statistics.median(denied) if denied else 0.0,
                "path_miss": statistics.median(path_miss) if path_miss else 0.0,
                "path_hit": statistics.median(path_hit) if path_hit else 0.0,
                "path_over": path_gated - path_bare,
                # CPU of every thread the supervised runs started in this interpreter (the
                # supervisor's loop, the event drainer, ...), per gated exec
                "threads_cpu": threads_ns / (pairs * execs),
            }
        )
    )


def _build(name: str, tree: Path, out: Path, phases: bool) -> str:
    """sandbox._supervise from tree's csrc (with the bench's phase marks if asked)."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import build\n"
        "build.CSRC = Path(sys.argv[1])\n"
        "build.COMPILE_ARGS.extend(sys.argv[3:])\n"
        "print(build.make_ffi('supervise', absolute=True).compile(tmpdir=sys.argv[2]))\n"
    )
    tmp = out / name
    tmp.mkdir()
    defs = ["-DLG_BENCH_PHASES"] if phases else []
    so = subprocess.run(
        [sys.executable, "-c", code, str(tree / "csrc"), str(tmp), *defs],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return so


def main(argv: list[str]) -> None:
    rounds, execs, pairs, phases = 15, 200, 3, False
    given: list[tuple[str, str]] = []
    it = iter(argv)
    for a in it:
        if a == "--rounds":
            rounds = int(next(it))
        elif a == "--pairs":
            pairs = int(next(it))
        elif a == "--execs":
            execs = int(next(it))
        elif a == "--phases":
            phases = True
        else:
            name, _, path = a.partition("=")
            given.append((name, path))
    with tempfile.TemporaryDirectory(prefix="landgate-exec-ab-builds-") as tmp:
        builds = [
            (n, _build(n, Path(p), Path(tmp), phases) if Path(p).is_dir() else p) for n, p in given
        ]
        _compare(builds, rounds, execs, pairs, Path(tmp) if phases else None)


def _compare(
    builds: list[tuple[str, str]], rounds: int, execs: int, pairs: int, phases: Path | None
) -> None:
    res = run_rounds(
        __file__,
        builds,
        rounds,
        [str(execs), str(pairs)],
        phases,
        lambda res: "  ".join(
            f"{n} over {res[n][-1]['over'] / 1e3:.1f} dec {res[n][-1]['decision'] / 1e3:.1f}"
            for n, _ in builds
        ),
    )
    first = builds[0][0]
    for name, _ in builds:
        rs = res[name]
        over = [x["over"] / 1e3 for x in rs]
        line = (
            f"{name}: ratio {statistics.median(x['gated'] / x['bare'] for x in rs):.3f}  "
            f"overhead/exec {statistics.median(over):.1f} us  "
            f"decision {statistics.median(x['decision'] for x in rs) / 1e3:.1f} us "
            f"(miss {statistics.median(x['miss'] for x in rs) / 1e3:.1f}, "
            f"deny {statistics.median(x['deny'] for x in rs) / 1e3:.1f})  "
            f"$PATH search: misses {statistics.median(x['path_miss'] for x in rs) / 1e3:.1f} us, "
            f"hit {statistics.median(x['path_hit'] for x in rs) / 1e3:.1f} us, "
            f"overhead/search {statistics.median(x['path_over'] for x in rs) / 1e3:.1f} us  "
            f"bare {statistics.median(x['bare'] for x in rs) / 1e3:.1f} us  "
            f"threads' cpu/exec {statistics.median(x['threads_cpu'] for x in rs) / 1e3:.1f} us  "
            f"slow-path execs {sum(x['slow'] for x in rs)}"
        )
        if name != first:
            paired = [(x["over"] - y["over"]) / 1e3 for x, y in zip(rs, res[first], strict=True)]
            pd = [
                (x["decision"] - y["decision"]) / 1e3 for x, y in zip(rs, res[first], strict=True)
            ]
            pm = [
                (x["path_miss"] - y["path_miss"]) / 1e3 for x, y in zip(rs, res[first], strict=True)
            ]
            line += (
                f"\n  vs {first}: $PATH misses {statistics.median(pm):+.1f} us "
                f"({sum(p < 0 for p in pm)}/{len(pm)} lower), "
                f"overhead {statistics.median(paired):+.1f} us paired median "
                f"({sum(p < 0 for p in paired)}/{len(paired)} rounds lower), "
                f"decision {statistics.median(pd):+.1f} us "
                f"({sum(p < 0 for p in pd)}/{len(pd)} lower)"
            )
        print(line)
        if phases is not None and (phases / f"{name}.phases").exists():
            # one JSON line per supervised run: median microseconds per exec of each phase
            runs = [json.loads(ln) for ln in (phases / f"{name}.phases").read_text().splitlines()]
            keys = [k for k in runs[0] if k != "n"]
            print(
                "  phases (us, median of the runs' medians): "
                + ", ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}" for k in keys)
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(sys.argv[1:])
