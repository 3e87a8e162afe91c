"""Per-exec cost of judging the executed object (issue 13): fork+exec+wait loops, bare vs
supervised, for a plain path (/usr/bin/true: the real path is resolved, the fast path stays),
a path through a symlink (/bin/true on a merged-/usr system: verified at PTRACE_EVENT_EXEC)
and a #! script (its interpreter judged and verified), and a plain file inside the writable
workspace (issue 13c: verified, since it could be renamed over between the check and the exec).

Each supervised case runs twice: without the plan's write table (write_trees unknown: every link
and script is verified) and with one that names only a workspace the executed files are outside
of (as under Landlock: links and scripts out of the agent's reach take the fast path).

`python bench/bench_exec_object.py` prints {case: (bare_us, supervised_us, overhead_us,
slow_path_execs, known_us, known_overhead_us, known_slow_path_execs)}, medians of 9 interleaved
repetitions; no assertion on time anywhere.
"""

from __future__ import annotations

import os
import shutil
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
        ws = d / "workspace"  # the only tree the sandbox could write, in the known case
        ws.mkdir()
        script = d / "script"
        script.write_text("#!/usr/bin/true\n")
        script.chmod(0o755)
        # issue 13c: a plain file the agent could rename over (a copy in its workspace) is
        # verified too when the write table is known; out of reach it stays on the fast path
        shutil.copy("/usr/bin/true", ws / "true")
        cases = (
            ("plain", "/usr/bin/true"),
            ("symlinked", "/bin/true"),
            ("script", str(script)),
            ("plain-in-workspace", str(ws / "true")),
        )
        for label, target in cases:
            bare, sup, known = [], [], []
            slow = slow_known = 0
            args = ["exec", str(n), target]
            for _ in range(reps):
                bare.append(bs._bare(bins["loops"], "exec", str(n), target))
                ns, counts = bs._supervised(d, bins["loops"], args, pol)
                sup.append(ns)
                slow = counts.get("slow_path", 0)
                info = {"write_trees": [str(ws)]}
                ns, counts = bs._supervised(d, bins["loops"], args, pol, plan_info=info)
                known.append(ns)
                slow_known = counts.get("slow_path", 0)
            b, s, k = (statistics.median(x) / 1000 for x in (bare, sup, known))
            out[label] = (
                round(b, 1),
                round(s, 1),
                round(s - b, 1),
                slow,
                round(k, 1),
                round(k - b, 1),
                slow_known,
            )
    return out


if __name__ == "__main__":
    print(run())
