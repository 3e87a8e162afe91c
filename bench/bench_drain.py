"""CPU per supervisor event between the C ring and the trail file (issue 19).

    python bench/bench_drain.py [--events N] [--rounds R] [--batch B] [--profile] [--no-extra]
    python bench/bench_drain.py --loop [--rounds R] [--no-extra] NAME=TREE ...

Fills a `struct lg_event[]` the way the C loop does (exec, connect and open records
of a real compiled policy), and hands it, B records at a time, to the Supervisor's
drain path (`_deliver_batch`, or the per-record `_to_event` + `_deliver` of a build
that predates it) with a real Recorder and AuditWriter (batch durability, a private
temporary trail and key directory) as the session wires them: with an `on_event` of
the API's (every DecisionEvent to a list, as `sandbox.run` and `Session` do), or with
--no-extra none (as `landgate run`, whose trail is the only consumer).  Prints the median over
R rounds of the drainer thread's CPU per event (time.thread_time_ns: the flusher
thread's fdatasync is not counted, the write() syscalls are), and the wall time
per event.  --profile prints cProfile's top functions for one round instead.

--loop: end to end, A/B between source trees (each a checkout with its extensions
built, e.g. `git archive` of another commit plus its sandbox/*.so): per round, in an
order that alternates, a fresh interpreter per tree runs bench/exec_ab.py's loop (3 x
200 fork+exec+wait of /bin/true, bare and exec-gated) with the session's wiring added:
the supervisor's on_event is that tree's Recorder over a real AuditWriter, handing
every event on to the harness as the API's on_event does (--no-extra: the trail alone,
as in `landgate run`).  Per tree: medians of the gated/bare ratio and of the CPU time per
gated exec of the threads the runs started (decision loop, drainer, audit flusher).
No assertion on time anywhere.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _policy() -> Any:
    import ipaddress

    from tests.supervise.conftest import dest, make_policy

    net = ipaddress.ip_network("140.82.121.0/24")
    return make_policy(
        [("true", "allow"), ("sh", "allow"), ("git *", "allow"), ("rm -rf *", "deny")],
        [(dest("140.82.121.0/24:443", "ip", network=net, port=443), "allow")],
    )


def _fill(buf: Any, n: int, rules: list[Any], seq0: int) -> None:
    """n records: 3 of 4 execs of /bin/true (the loop's), then a connect and an open."""
    from sandbox._supervise import ffi, lib

    true_rule = next(
        i for i, r in enumerate(rules) if r.rule is not None and r.rule.pattern == "true"
    )
    now = time.time_ns()
    for i in range(n):
        e = buf[i]
        e.seq = seq0 + i
        e.t_recv_ns = now + i * 1000
        e.t_resp_ns = now + i * 1000 + 12_000
        e.pid = 4242 + i
        e.tid = 4242 + i
        e.result = lib.LG_EFFECT_ALLOW
        e.err = 0
        e.syscall_nr = 59
        kind = i % 8
        if kind < 6:
            argv = [b"/bin/true", b"--x", b"a b"] if kind == 5 else [b"/bin/true"]
            raw = b"\0".join(argv) + b"\0"
            e.action = lib.LG_ACT_EXEC
            e.rule = true_rule
            e.flags = lib.LG_EV_VERIFIED | (lib.LG_EV_ROOT if i == 0 else 0)
            e.argc = len(argv)
            e.target_len = len(raw)
            ffi.memmove(e.target, raw, len(raw))
            ffi.memmove(e.detail, b"/usr/bin/true\0", 14)
        elif kind == 6:
            raw = b"140.82.121.4:443\0"
            e.action = lib.LG_ACT_CONNECT
            e.rule = next(j for j, r in enumerate(rules) if r.action == "network" and r.rule)
            e.flags = 0
            e.argc = 0
            e.target_len = len(raw) - 1
            e.syscall_nr = 42
            ffi.memmove(e.target, raw, len(raw))
            ffi.memmove(e.detail, b"github.com\0", 11)
        else:
            raw = "/home/u/.ssh/id_\u00e9d25519\0".encode()
            e.action = lib.LG_ACT_OPEN
            e.rule = -1
            e.result = lib.LG_EFFECT_DENY
            e.err = 13
            e.flags = 0
            e.argc = 0
            e.target_len = len(raw) - 1
            e.syscall_nr = 257
            ffi.memmove(e.target, raw, len(raw))
            ffi.memmove(e.detail, b"read\0", 5)


def _session(tmp: Path, extra: bool = True) -> tuple[Any, Any, Any]:
    from sandbox.audit.writer import AuditWriter
    from sandbox.session.recorder import Recorder
    from sandbox.supervise import Supervisor, compile_tables

    pol = _policy()
    tables = compile_tables(pol, {})
    writer = AuditWriter(tmp / "audit", key_directory=tmp / "keys")
    writer.start_session({"argv": ["bench"], "mode": "enforce"})
    seen: list[Any] = []
    recorder = Recorder(writer, seen.append if extra else None, pol)
    sup = Supervisor(-1, tables, root_pid=1, on_event=recorder.event)
    return sup, writer, tables


def _round(events: int, batch: int, extra: bool = True) -> tuple[float, float]:
    from sandbox._supervise import ffi

    with tempfile.TemporaryDirectory(prefix="landgate-bench-drain-") as t:
        sup, writer, tables = _session(Path(t), extra)
        buf = ffi.new("struct lg_event[]", batch)
        many = getattr(sup, "_deliver_batch", None)
        cpu = wall = 0
        seq = 1
        while seq <= events:
            n = min(batch, events - seq + 1)
            _fill(buf, n, tables.rules, seq)
            c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
            if many is not None:
                many(buf, n)
            else:
                for i in range(n):
                    sup._deliver(sup._to_event(buf[i]))
            cpu += time.thread_time_ns() - c0
            wall += time.perf_counter_ns() - w0
            seq += n
        writer.end_session(0)
        writer.close()
        return cpu / events / 1e3, wall / events / 1e3


_LOOP_CHILD = r"""
import json, os, statistics, sys, tempfile
from pathlib import Path
tree = Path(sys.argv[1]); execs, pairs = int(sys.argv[2]), int(sys.argv[3])
extra = sys.argv[4] == "extra"  # the API's on_event too, or the trail alone (landgate run)
for p in (tree / "bench", tree / "tests", tree):
    sys.path.insert(0, str(p))
import bench_supervise as bs
import exec_ab
import sandbox.supervise as sup_mod
from sandbox.audit.writer import AuditWriter
from sandbox.session.recorder import Recorder
from tests.supervise.conftest import make_policy

tmp = Path(tempfile.mkdtemp(prefix="landgate-bench-drain-loop-"))
writers = []
Base = sup_mod.Supervisor

class Recorded(Base):  # the session's wiring: every record to a trail, then to the test
    def __init__(self, *a, on_event=None, **k):
        w = AuditWriter(tmp / f"audit{len(writers)}", key_directory=tmp / "keys")
        w.start_session({"argv": ["loop"], "mode": "enforce"})
        writers.append(w)
        super().__init__(*a, on_event=Recorder(w, on_event if extra else None).event, **k)

sup_mod.Supervisor = Recorded
bins = bs._build(tmp)
pol = make_policy([("true", "allow"), ("loops*", "allow")], [])
cpu = exec_ab._ThreadCpu()
bares, gateds = [], []
for _ in range(pairs):
    bares.append(bs._bare(bins["loops"], "exec", str(execs), "/bin/true"))
    ns, _counts = bs._supervised(tmp, bins["loops"], ["exec", str(execs), "/bin/true"], pol,
                                 plan_info={"write_trees": [str(tmp)]})
    gateds.append(ns)
    w = writers[-1]
    w.end_session(0)
    w.close()
threads = cpu.stop()
decisions = sum(1 for d in tmp.glob("audit*/trail-*.jsonl")
                for ln in d.read_bytes().splitlines() if b'"type":"decision"' in ln)
print(json.dumps({"bare": statistics.median(bares), "gated": statistics.median(gateds),
                  "cpu": threads / (pairs * execs), "decisions": decisions}))
"""


def _loop(trees: list[tuple[str, str]], rounds: int, extra: bool = True) -> None:
    import json
    import subprocess

    res: dict[str, list[dict[str, float]]] = {n: [] for n, _ in trees}
    for r in range(rounds):
        for name, tree in trees if r % 2 == 0 else trees[::-1]:
            out = subprocess.run(
                [sys.executable, "-c", _LOOP_CHILD, tree, "200", "3", "extra" if extra else "-"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            res[name].append(json.loads(out))
        print(
            f"round {r + 1}: "
            + "  ".join(
                f"{n} ratio {res[n][-1]['gated'] / res[n][-1]['bare']:.3f} "
                f"cpu/exec {res[n][-1]['cpu'] / 1e3:.1f} us"
                for n, _ in trees
            ),
            flush=True,
        )
    first = trees[0][0]
    for name, _ in trees:
        rs = res[name]
        line = (
            f"{name}: ratio {statistics.median(x['gated'] / x['bare'] for x in rs):.3f}  "
            f"threads' cpu/exec {statistics.median(x['cpu'] for x in rs) / 1e3:.1f} us  "
            f"decisions in the trails {statistics.median(x['decisions'] for x in rs):.0f}"
        )
        if name != first:
            d = [(x["cpu"] - y["cpu"]) / 1e3 for x, y in zip(rs, res[first], strict=True)]
            line += (
                f"\n  vs {first}: cpu/exec {statistics.median(d):+.1f} us paired median "
                f"({sum(x < 0 for x in d)}/{len(d)} rounds lower)"
            )
        print(line)


def main(argv: list[str]) -> None:
    events, rounds, batch, profile, extra = 20000, 9, 64, False, True
    trees: list[tuple[str, str]] = []
    loop = False
    it = iter(argv)
    for a in it:
        if a == "--loop":
            loop = True
        elif "=" in a:
            name, _, tree = a.partition("=")
            trees.append((name, tree))
        elif a == "--events":
            events = int(next(it))
        elif a == "--rounds":
            rounds = int(next(it))
        elif a == "--batch":
            batch = int(next(it))
        elif a == "--profile":
            profile = True
        elif a == "--no-extra":
            extra = False
    if loop:
        _loop(trees, rounds, extra)
        return
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        _round(events, batch, extra)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    _round(min(events, 2000), batch, extra)  # warm: imports, the key, the first segment
    res = [_round(events, batch, extra) for _ in range(rounds)]
    cpu = statistics.median(r[0] for r in res)
    wall = statistics.median(r[1] for r in res)
    print(
        f"drain {events} events x {rounds} rounds, batch {batch}"
        f"{'' if extra else ', no on_event'}: "
        f"cpu/event {cpu:.2f} us (min {min(r[0] for r in res):.2f}), "
        f"wall/event {wall:.2f} us  [pid {os.getpid()}]"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
