"""Per-exec cost of judging the executed object (issue 13): fork+exec+wait loops, bare vs
supervised, for a plain path (/usr/bin/true: the real path is resolved, the fast path stays),
a path through a symlink (/bin/true on a merged-/usr system: verified at PTRACE_EVENT_EXEC)
and a #! script (its interpreter judged and verified).

`python bench/bench_exec_object.py` prints {case: (bare_us, supervised_us, overhead_us,
slow_path_execs)}, medians of 9 interleaved repetitions; no assertion on time anywhere.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def run(n: int = 200, reps: int = 9) -> dict[str, tuple]:
    import bench.bench_supervise as bs
    from tests.supervise.conftest import make_policy

    pol = make_policy([("true", "allow"), ("loops*", "allow"), ("script*", "allow")])
    out: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory(prefix="landgate-bench-execobj-") as tmp:
        d = Path(tmp)
        os.chmod(d, 0o755)
        bins = bs._build(d)
        script = d / "script"
        script.write_text("#!/usr/bin/true\n")
        script.chmod(0o755)
        cases = (("plain", "/usr/bin/true"), ("symlinked", "/bin/true"), ("script", str(script)))
        for label, target in cases:
            bare, sup = [], []
            slow = 0
            for _ in range(reps):
                bare.append(bs._bare(bins["loops"], "exec", str(n), target))
                ns, counts = bs._supervised(d, bins["loops"], ["exec", str(n), target], pol)
                sup.append(ns)
                slow = counts.get("slow_path", 0)
            b, s = statistics.median(bare), statistics.median(sup)
            out[label] = (round(b / 1000, 1), round(s / 1000, 1), round((s - b) / 1000, 1), slow)
    return out


if __name__ == "__main__":
    print(run())
