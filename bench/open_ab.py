"""The open loop under the enforced open check, A/B between builds of the supervisor.

    python bench/open_ab.py [--rounds N] [--pairs N] [--opens N] [--phases] NAME=BUILD ...

BUILD is a built sandbox._supervise (.so) or a source tree with csrc/ (built as
exec_ab.py builds it; --phases adds -DLG_BENCH_PHASES and prints each build's median
open pieces, csrc/supervise_bench.h).  Each round runs every build once, in an order
that alternates, each in a fresh interpreter that runs --pairs times N x open+close of
/etc/hostname bare and then under the open check (bench_supervise.py's harness).
Per build: medians over the rounds of the overhead per open (paired with the round's
bare loop) and the CPU time of the supervisor's threads per open.  No assertion on time.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))


def _child(so: str, opens: int, pairs: int) -> None:
    from exec_ab import _ThreadCpu, load_build

    load_build(so)
    import bench_supervise as bs

    from tests.supervise.conftest import make_policy

    with tempfile.TemporaryDirectory(prefix="landgate-open-ab-") as tmp:
        bins = bs._build(Path(tmp))
        pol = make_policy([("loops*", "allow")], [])
        cpu = _ThreadCpu()
        bares: list[int] = []
        gated: list[int] = []
        for _ in range(pairs):
            bares.append(bs._bare(bins["loops"], "open", str(opens), "/etc/hostname"))
            gated.append(
                bs._supervised(
                    Path(tmp),
                    bins["loops"],
                    ["open", str(opens), "/etc/hostname"],
                    pol,
                    open_check=True,
                )[0]
            )
        threads_ns = cpu.stop()
    print(
        json.dumps(
            {
                "bare": statistics.median(bares),
                "gated": statistics.median(gated),
                "over": statistics.median(g - b for g, b in zip(gated, bares, strict=True)),
                "threads_cpu": threads_ns / (pairs * opens),
            }
        )
    )


def main(argv: list[str]) -> None:
    from exec_ab import _build, run_rounds

    rounds, opens, pairs, phases = 9, 3000, 2, False
    given: list[tuple[str, str]] = []
    it = iter(argv)
    for a in it:
        if a == "--rounds":
            rounds = int(next(it))
        elif a == "--opens":
            opens = int(next(it))
        elif a == "--pairs":
            pairs = int(next(it))
        elif a == "--phases":
            phases = True
        else:
            n, p = a.split("=", 1)
            given.append((n, p))
    with tempfile.TemporaryDirectory(prefix="landgate-open-ab-") as tmp:
        builds = [
            (n, _build(n, Path(p), Path(tmp), phases) if Path(p).is_dir() else p) for n, p in given
        ]
        res = run_rounds(
            __file__,
            builds,
            rounds,
            [str(opens), str(pairs)],
            Path(tmp) if phases else None,
            lambda res: "  ".join(f"{n} over {res[n][-1]['over'] / 1e3:.1f}" for n, _ in builds),
        )
        first = builds[0][0]
        for name, _ in builds:
            rs = res[name]
            line = (
                f"{name}: bare {statistics.median(x['bare'] for x in rs) / 1e3:.2f} us  "
                f"overhead/open {statistics.median(x['over'] for x in rs) / 1e3:.1f} us  "
                f"threads' cpu/open {statistics.median(x['threads_cpu'] for x in rs) / 1e3:.1f} us"
            )
            if name != first:
                paired = [
                    (x["over"] - y["over"]) / 1e3 for x, y in zip(rs, res[first], strict=True)
                ]
                line += (
                    f"\n  vs {first}: overhead {statistics.median(paired):+.1f} us paired median "
                    f"({sum(p < 0 for p in paired)}/{len(paired)} rounds lower)"
                )
            print(line)
            ph = Path(tmp) / f"{name}.phases"
            if phases and ph.exists() and "open_n" in ph.read_text():
                runs = [json.loads(ln) for ln in ph.read_text().splitlines()]
                runs = [r for r in runs if "open_n" in r]  # not the exec phases' lines
                keys = [k for k in runs[0] if k != "open_n"]
                print(
                    "  pieces (us, median of the runs' medians): "
                    + ", ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}" for k in keys)
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(sys.argv[1:])
