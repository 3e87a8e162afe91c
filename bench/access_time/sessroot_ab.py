"""A/B of the open check's per-open cost between two trees (issue 12 / 19, sessroot).

    python bench/access_time/sessroot_ab.py BASE_TREE NEW_TREE [ROUNDS]

Each tree's sandbox package (with its built _supervise module) is loaded in a fresh
interpreter per sample (PYTHONPATH), the rounds alternate A, B then B, A, and each sample
runs rootloop under tests/supervise's harness (spawn --open, enforced open check, no
Landlock ruleset), plus the same loop bare.  Reported: medians and spreads (min..max) of
the per-iteration time for

  open      10000 x open + close of an absolute path in one thread
  forkopen  500 x fork, the child opens the path and exits, wait: each child is a thread
            the supervisor has never met

the supervised minus bare difference of the medians, and the per-round paired difference
new - base (median, range, rounds where new was faster).  Run under the tests' lock.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PATH = "/etc/hostname"
LOOPS = {"open": 10000, "forkopen": 500}

ONE = """
import json, sys
sys.path.insert(0, sys.argv[1] + "/tests")
from tests.supervise.conftest import Launch, make_policy
from pathlib import Path
bindir, loop, kind, n, path = Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
lau = Launch(bindir, [loop, kind, n, path], make_policy(exec_default="allow"), open_check=True)
r = lau.wait(300)
assert r.returncode == 0, r
print(json.dumps({"ns": int(r.stdout), "sandbox": __import__("sandbox").__file__}))
"""


def _build(out: Path) -> None:
    for name, src in (
        ("rootloop", HERE / "rootloop.c"),
        ("spawn", ROOT / "tests/supervise/helpers/spawn.c"),
    ):
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(out / name), str(src)], check=True)


def _one(tree: str, bindir: Path, kind: str) -> int:
    env = dict(os.environ, PYTHONPATH=tree)
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            ONE,
            tree,
            str(bindir),
            str(bindir / "rootloop"),
            kind,
            str(LOOPS[kind]),
            PATH,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
    )
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["sandbox"].startswith(tree), res  # the tree asked for, not the installed one
    return int(res["ns"])


def main() -> None:
    base, new = (str(Path(a).resolve()) for a in sys.argv[1:3])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    with tempfile.TemporaryDirectory(prefix="landgate-sessroot-ab-") as tmp:
        bindir = Path(tmp)
        os.chmod(bindir, 0o755)
        _build(bindir)
        s: dict[str, list[int]] = {}
        for rnd in range(rounds):
            order = [("base", base), ("new", new)]
            if rnd % 2:
                order.reverse()  # neither tree always goes first
            for kind in LOOPS:
                bare = subprocess.run(
                    [str(bindir / "rootloop"), kind, str(LOOPS[kind]), PATH],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                s.setdefault(f"{kind}/bare", []).append(int(bare.stdout))
                for name, tree in order:
                    s.setdefault(f"{kind}/{name}", []).append(_one(tree, bindir, kind))
    out = {}
    for k, v in s.items():
        out[k] = {
            "median_us": round(statistics.median(v) / 1000, 2),
            "min_us": round(min(v) / 1000, 2),
            "max_us": round(max(v) / 1000, 2),
        }
    for kind in LOOPS:
        bare = statistics.median(s[f"{kind}/bare"])
        for name in ("base", "new"):
            out[f"{kind}/{name}"]["minus_bare_us"] = round(
                (statistics.median(s[f"{kind}/{name}"]) - bare) / 1000, 2
            )
    for kind in LOOPS:
        # paired by round (the two trees ran back to back): robust to the load drifting
        d = [n - b for n, b in zip(s[f"{kind}/new"], s[f"{kind}/base"], strict=True)]
        out[f"{kind}/new_minus_base_paired_us"] = {
            "median": round(statistics.median(d) / 1000, 2),
            "min": round(min(d) / 1000, 2),
            "max": round(max(d) / 1000, 2),
            "new_faster_rounds": sum(x < 0 for x in d),
        }
    out["rounds"] = rounds
    out["samples_ns"] = s
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
