"""The exec loop and the exec decision, A/B between builds of the supervisor, alternated.

    python bench/exec_ab.py [--rounds N] [--execs N] NAME=PATH.so [NAME=PATH.so ...]

Each round runs every build once, in an order that alternates (A B, then B A: a host
that slows down mid-round is charged to both), each in a fresh interpreter that loads
that build as sandbox._supervise: 200 x fork+exec+wait of /bin/true bare, then the same
loop exec-gated in bench_supervise.py's harness (same policy, same write table).  Per
build it prints medians over the rounds of: the gated/bare ratio, the overhead per exec
(gated - bare, each round's own bare), and the decision (receive to answer, from the
events' timestamps); and per round the paired difference of each build's overhead
against the first build's.  A build is made with csrc/build.py's make_ffi (any source
tree, any extra -D flags).  No assertion on time anywhere; the host is shared, so read
the paired differences, not one round.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


class _ThreadCpu:
    """Run time (schedstat) of this interpreter's threads other than the main one and
    itself, sampled every 2 ms until stop(): the last sample of a thread that ended.
    Undercounts by at most one interval of each thread's last run."""

    def __init__(self) -> None:
        import os
        import threading

        self._seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._skip = {str(os.getpid())}
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        import os
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


def _child(so: str, execs: int, pairs: int) -> None:
    """One round of one build: print {bare, gated, decisions}."""
    loader = importlib.machinery.ExtensionFileLoader("sandbox._supervise", so)
    spec = importlib.util.spec_from_file_location("sandbox._supervise", so, loader=loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    sys.modules["sandbox._supervise"] = mod
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(BENCH))
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
    print(
        json.dumps(
            {
                "bare": statistics.median(bares),
                "gated": statistics.median(gateds),
                "over": statistics.median(g - b for g, b in zip(gateds, bares, strict=True)),
                "decision": statistics.median(decisions) if decisions else 0.0,
                "slow": slow,
                # CPU of every thread the supervised runs started in this interpreter (the
                # supervisor's loop, the event drainer, ...), per gated exec
                "threads_cpu": threads_ns / (pairs * execs),
            }
        )
    )


def main(argv: list[str]) -> None:
    rounds, execs, pairs = 15, 200, 3
    builds: list[tuple[str, str]] = []
    it = iter(argv)
    for a in it:
        if a == "--rounds":
            rounds = int(next(it))
        elif a == "--pairs":
            pairs = int(next(it))
        elif a == "--execs":
            execs = int(next(it))
        else:
            name, _, path = a.partition("=")
            builds.append((name, path))
    res: dict[str, list[dict]] = {n: [] for n, _ in builds}
    for r in range(rounds):
        order = builds if r % 2 == 0 else builds[::-1]
        for name, so in order:
            out = subprocess.run(
                [sys.executable, __file__, "--child", so, str(execs), str(pairs)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            res[name].append(json.loads(out))
        print(
            f"round {r + 1}: "
            + "  ".join(
                f"{n} over {res[n][-1]['over'] / 1e3:.1f} dec {res[n][-1]['decision'] / 1e3:.1f}"
                for n, _ in builds
            ),
            flush=True,
        )
    first = builds[0][0]
    for name, _ in builds:
        rs = res[name]
        over = [x["over"] / 1e3 for x in rs]
        line = (
            f"{name}: ratio {statistics.median(x['gated'] / x['bare'] for x in rs):.3f}  "
            f"overhead/exec {statistics.median(over):.1f} us  "
            f"decision {statistics.median(x['decision'] for x in rs) / 1e3:.1f} us  "
            f"bare {statistics.median(x['bare'] for x in rs) / 1e3:.1f} us  "
            f"threads' cpu/exec {statistics.median(x['threads_cpu'] for x in rs) / 1e3:.1f} us  "
            f"slow-path execs {sum(x['slow'] for x in rs)}"
        )
        if name != first:
            paired = [(x["over"] - y["over"]) / 1e3 for x, y in zip(rs, res[first], strict=True)]
            pd = [
                (x["decision"] - y["decision"]) / 1e3 for x, y in zip(rs, res[first], strict=True)
            ]
            line += (
                f"\n  vs {first}: overhead {statistics.median(paired):+.1f} us paired median "
                f"({sum(p < 0 for p in paired)}/{len(paired)} rounds lower), "
                f"decision {statistics.median(pd):+.1f} us "
                f"({sum(p < 0 for p in pd)}/{len(pd)} lower)"
            )
        print(line)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(sys.argv[1:])
