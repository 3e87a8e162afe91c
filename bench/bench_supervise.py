"""Supervisor benchmark: the unotify floor and landgate's per-decision overhead.

    floor       bench/floor.c: raw round trip with an allow-all C supervisor (SYNC_WAKE_UP)
    pieces      floor.c pieces: the exec decision's kernel calls, each timed on a fresh child;
                floor.c thread: pthread_create+join with CLONE_THREAD clones notified
    exec        200 x fork+exec+wait of /bin/true, bare vs exec-gated (goal <= 1.10x), and the
                same loop under floor.c's allow-all supervisor (the notification alone, no
                decision: the part of the ratio no decision can remove);
                the decision itself (the supervisor's receive-to-answer time, from the
                events' timestamps) vs the floor of the same run (goal <= 5x), with the
                plan's write table (a workspace under /tmp, as `landgate run` gives it:
                without one every exec through the /bin symlink is verified by ptrace);
                the decision for a file that does not exist and for a denied one
    connect     blocking and non-blocking loopback connects, bare vs supervised
                (the supervisor connects a duplicate itself; blocking ones on a worker)
    open        open+close judged in simulation (path, continued), and with the enforced
                open check (resolve, judge device+inode, reopen on a restricted opener
                thread, inject with ADDFD): the cost every open pays on the no-namespace rung;
                its pieces (open_enforced.pieces_us) from a -DLG_BENCH_PHASES build

run(quick=False, exec_only=False) -> dict; `python bench/bench_supervise.py [--quick] [--exec]`
prints it (--exec: the floor and the exec rows only).  Medians of
interleaved repetitions; no assertion on time anywhere.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
# tests/supervise/conftest.py imports tests/conftest.py as `conftest` (pytest's rootdir
# layout): the harness it lends us needs the same path.
sys.path.insert(0, str(ROOT / "tests"))


def _build(out: Path) -> dict[str, Path]:
    bins = {}
    for name, src in (
        ("floor", BENCH / "floor.c"),
        ("loops", BENCH / "loops.c"),
        ("spawn", ROOT / "tests/supervise/helpers/spawn.c"),
    ):
        dst = out / name
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(dst), str(src)], check=True)
        bins[name] = dst
    return bins


def _listener() -> socket.socket:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)

    def loop() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.close()

    threading.Thread(target=loop, daemon=True).start()
    return srv


def _bare(loops: Path, *args: str) -> int:
    return int(
        subprocess.run([str(loops), *args], capture_output=True, check=True, text=True).stdout
    )


def _supervised(
    bindir: Path,
    loops: Path,
    args: list[str],
    policy: Any,
    decisions: list | None = None,
    missing: list | None = None,
    **kw: Any,
) -> tuple[int, dict]:
    """The loop's ns per iteration and the supervisor's counts; the decisions (receive
    to answer, in the supervisor: ts after RECV, ts_decided before SEND) of its execs of
    `true` into `decisions`, those for a file that does not exist into `missing` if given
    (a $PATH search's misses)."""
    from tests.supervise.conftest import Launch

    lau = Launch(bindir, [str(loops), *args], policy, **kw)
    r = lau.wait(120)
    for e in r.events:
        if e.action != "shell_exec" or e.target.split()[:1] != ["true"]:
            continue
        into = missing if missing is not None and "missing" in e.flags else decisions
        if into is not None:
            into.append((e.ts_decided - e.ts) * 1e9)
    return int(r.stdout), r.counts


def _product(loops: Path, tmp: Path, policy: str, args: list[str]) -> int:
    """The loop under `landgate run --policy PRESET` (the product's wiring: the preset's
    open check, Landlock, namespaces, the trail), as loops.c times it inside the sandbox."""
    ws = tmp / "ws"
    ws.mkdir(exist_ok=True)
    env = dict(
        os.environ,
        XDG_STATE_HOME=str(tmp / "state"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        XDG_CACHE_HOME=str(tmp / "cache"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "run", "--policy", policy, "--", str(loops), *args],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"landgate run --policy {policy}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
        )
    return int(proc.stdout.split()[-1])


def run(quick: bool = False, exec_only: bool = False) -> dict[str, Any]:
    import ipaddress

    from tests.supervise.conftest import dest, make_policy

    reps = 3 if quick else 7
    n_exec = 200
    n_conn = 500 if quick else 2000
    n_open = 2000 if quick else 10000
    out: dict[str, Any] = {"reps": reps}
    with tempfile.TemporaryDirectory(prefix="landgate-bench-sup-") as tmp:
        bindir = Path(tmp)
        bins = _build(bindir)
        floors = []
        exec_floor: list[float] = []
        thread_sup: list[int] = []
        thread_bare: list[int] = []
        for _ in range(reps):
            # what notifying clone(CLONE_THREAD) would cost a threaded workload: the
            # alternative to /proc/TID/task per exec (floor.c thread)
            sup_ns, bare_ns = map(
                int,
                subprocess.run(
                    [str(bins["floor"]), "thread", "2000"],
                    capture_output=True,
                    check=True,
                    text=True,
                ).stdout.split(),
            )
            thread_sup.append(sup_ns)
            thread_bare.append(bare_ns)
            f, bare = map(
                int,
                subprocess.run(
                    [str(bins["floor"]), "100000"], capture_output=True, check=True, text=True
                ).stdout.split(),
            )
            floors.append(f - bare)
            sup_ns, bare_ns = map(
                int,
                subprocess.run(
                    [str(bins["floor"]), "exec", str(n_exec), "/bin/true"],
                    capture_output=True,
                    check=True,
                    text=True,
                ).stdout.split(),
            )
            exec_floor.append(sup_ns / bare_ns)
        floor = statistics.median(floors)
        out["floor_ns"] = floor
        # the decision's kernel pieces, each on a fresh child (floor.c pieces)
        lines = subprocess.run(
            [str(bins["floor"]), "pieces", "100" if quick else "300"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout.splitlines()
        pieces_us = {
            name: round(int(ns) / 1000, 2) for name, ns in (ln.rsplit(" ", 1) for ln in lines)
        }

        srv = _listener()
        port = srv.getsockname()[1]
        pol = make_policy(
            [("true", "allow"), ("loops*", "allow")],
            [(dest("p", "ip", network=ipaddress.ip_network("127.0.0.1"), port=port), "allow")],
        )
        res: dict[str, list[int]] = {
            k: []
            for k in (
                "exec_bare",
                "exec_sup",
                "conn_bare",
                "conn_sup",
                "nb_bare",
                "nb_sup",
                "open_bare",
                "open_sim",
                "open_enf",
                "exec_product_ci",
                "exec_product_coding-agent",
                "path_bare",
                "path_sup",
            )
        }
        slow = 0
        decisions: list[float] = []
        miss: list[float] = []
        denied: list[float] = []
        path_miss: list[float] = []
        path_hit: list[float] = []
        deny_pol = make_policy([("true", "deny"), ("loops*", "allow")], [])
        write_trees = {"write_trees": [tmp]}
        for _ in range(reps):
            res["exec_bare"].append(_bare(bins["loops"], "exec", str(n_exec), "/bin/true"))
            ns, counts = _supervised(
                bindir,
                bins["loops"],
                ["exec", str(n_exec), "/bin/true"],
                pol,
                decisions,
                plan_info=write_trees,
            )
            res["exec_sup"].append(ns)
            slow += counts.get("slow_path", 0)
            for preset in ("ci", "coding-agent"):
                res[f"exec_product_{preset}"].append(
                    _product(bins["loops"], bindir, preset, ["exec", str(n_exec), "/bin/true"])
                )
            # the decisions that let nothing run: a $PATH miss (answered with the
            # kernel's ENOENT) and a denial
            _supervised(
                bindir,
                bins["loops"],
                ["exec", str(n_exec), "/nonexistent/true"],
                pol,
                miss,
                plan_info=write_trees,
            )
            _supervised(
                bindir,
                bins["loops"],
                ["exec", str(n_exec), "/bin/true"],
                deny_pol,
                denied,
                plan_info=write_trees,
            )
            # a shell's $PATH search: three misses, then /bin/true, from one process
            res["path_bare"].append(_bare(bins["loops"], "pathexec", str(n_exec), "true"))
            res["path_sup"].append(
                _supervised(
                    bindir,
                    bins["loops"],
                    ["pathexec", str(n_exec), "true"],
                    pol,
                    path_hit,
                    path_miss,
                    plan_info=write_trees,
                )[0]
            )
            if exec_only:
                continue
            res["conn_bare"].append(_bare(bins["loops"], "connect", str(n_conn), str(port)))
            res["conn_sup"].append(
                _supervised(bindir, bins["loops"], ["connect", str(n_conn), str(port)], pol)[0]
            )
            res["nb_bare"].append(_bare(bins["loops"], "nbconnect", str(n_conn), str(port)))
            res["nb_sup"].append(
                _supervised(bindir, bins["loops"], ["nbconnect", str(n_conn), str(port)], pol)[0]
            )
            res["open_bare"].append(_bare(bins["loops"], "open", str(n_open), "/etc/hostname"))
            res["open_sim"].append(
                _supervised(
                    bindir,
                    bins["loops"],
                    ["open", str(n_open), "/etc/hostname"],
                    pol,
                    simulate=True,
                    open_check=True,
                )[0]
            )
            res["open_enf"].append(
                _supervised(
                    bindir,
                    bins["loops"],
                    ["open", str(n_open), "/etc/hostname"],
                    pol,
                    open_check=True,
                )[0]
            )
        srv.close()
        open_pieces = None if exec_only else _open_pieces(bindir, n_open)
    med = {k: statistics.median(v) for k, v in res.items() if v}
    out["median_ns"] = med
    exec_over = med["exec_sup"] - med["exec_bare"]
    decision = statistics.median(decisions) if decisions else None
    out["exec"] = {
        "loop": f"{n_exec} x fork+exec+wait /bin/true",
        "bare_us": round(med["exec_bare"] / 1000, 1),
        "gated_us": round(med["exec_sup"] / 1000, 1),
        "ratio_vs_bare": round(med["exec_sup"] / med["exec_bare"], 3),
        "goal_ratio": 1.10,
        # the same loop under `landgate run` with a preset: what a user's build pays; each
        # exec of a dynamic program also has its loader's opens judged by the open check
        "product_ratio_vs_bare": {
            preset: round(med[f"exec_product_{preset}"] / med["exec_bare"], 3)
            for preset in ("ci", "coding-agent")
        },
        "allow_all_ratio_vs_bare": round(statistics.median(exec_floor), 3),
        "overhead_per_exec_us": round(exec_over / 1000, 2),
        "decision_us": round(decision / 1000, 2) if decision else None,
        "decision_p90_us": (
            round(statistics.quantiles(decisions, n=10)[-1] / 1000, 2)
            if len(decisions) > 1
            else None
        ),
        "decision_vs_floor": round(decision / floor, 2) if decision and floor else None,
        # the same for an exec of a file that does not exist (execvp's $PATH search) and
        # for a denied one: neither asks what only an allowed exec needs (the thread
        # count, whether the agent can change the resolution, the mappings)
        "decision_miss_us": round(statistics.median(miss) / 1000, 2) if miss else None,
        "decision_deny_us": round(statistics.median(denied) / 1000, 2) if denied else None,
        # what each gated exec costs beyond its decision: the notification's round trip,
        # the harness, and the exit of a process whose /proc entries the decision made
        "outside_decision_us": round((exec_over - decision) / 1000, 2) if decision else None,
        "goal_decision_vs_floor": 5.0,
        "slow_path_execs": slow,
        # what the decision's kernel calls cost on a fresh child, medians (floor.c pieces):
        # the decision asks pidfd_open+GET_INFO, stat /proc/TID/task, the maps query and
        # the first memory read for every exec; /proc/TID/root once per session
        "pieces_us": pieces_us,
        # pthread_create + join, bare vs with CLONE_THREAD clones notified to an allow-all
        # supervisor: the price of a thread table that would replace the task stat
        "thread_create_bare_us": round(statistics.median(thread_bare) / 1000, 2),
        "thread_create_notified_us": round(statistics.median(thread_sup) / 1000, 2),
        # execvp through PATH=/nonexistent/a:/nonexistent/b:/nonexistent/c:/bin (loops
        # pathexec): the misses' decision (the first from a fresh pidfd, the later ones
        # through the pidfd kept after a miss, supervise_caller.c), the hit's, and the
        # whole search vs bare
        "path_search": {
            "loop": f"{n_exec} x fork+execvp true, three missing $PATH entries first",
            "ratio_vs_bare": round(med["path_sup"] / med["path_bare"], 3),
            "decision_miss_us": (
                round(statistics.median(path_miss) / 1000, 2) if path_miss else None
            ),
            "decision_hit_us": round(statistics.median(path_hit) / 1000, 2) if path_hit else None,
        },
    }
    # the scheduler's view of the outside cost (bench/exec_sched.py, needs perf): how many
    # gated and bare children execve's sched_exec() moved to the other CPU, and how often
    # the answered child preempted the supervisor
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # imported as bench.bench_supervise
    from exec_sched import measure

    out["exec"]["sched"] = measure()
    if exec_only:
        return out
    for key, bare, sup in (
        ("connect_blocking", "conn_bare", "conn_sup"),
        ("connect_nonblocking", "nb_bare", "nb_sup"),
    ):
        over = med[sup] - med[bare]
        out[key] = {
            "bare_us": round(med[bare] / 1000, 2),
            "supervised_us": round(med[sup] / 1000, 2),
            "decision_overhead_us": round(over / 1000, 2),
            "overhead_vs_floor": round(over / floor, 2) if floor else None,
            "goal_vs_floor": 2.0,
        }
    over = med["open_sim"] - med["open_bare"]
    out["open_simulated"] = {
        "bare_us": round(med["open_bare"] / 1000, 2),
        "supervised_us": round(med["open_sim"] / 1000, 2),
        "overhead_us": round(over / 1000, 2),
        "note": "judged by path and continued (simulation)",
    }
    over = med["open_enf"] - med["open_bare"]
    out["open_enforced"] = {
        "bare_us": round(med["open_bare"] / 1000, 2),
        "supervised_us": round(med["open_enf"] / 1000, 2),
        "overhead_us": round(over / 1000, 2),
        "overhead_vs_floor": round(over / floor, 2) if floor else None,
        "note": "the carve-out open check (no-namespace rung only): resolve, "
        "judge, reopen on an opener thread, ADDFD; no Landlock ruleset "
        "in this harness",
        # where an enforced open's time goes, medians per open, from a build with the
        # bench marks (csrc/supervise_open_bench.h): on the loop thread recv (RECV's
        # return after the wake), read (the path, ID_VALID), spell (its absolute form
        # judged), creds, resolve (O_PATH walk in the caller's view), judge (the
        # object), submit; then handoff (to the opener's start), reopen, addfd (the
        # caller's fd installed, the answer), done (close, free); total = poll to done
        "pieces_us": open_pieces,
    }
    return out


def _open_pieces(tmp: Path, n_open: int) -> dict[str, float] | None:
    """The open pieces: bench/open_ab.py's loop on a -DLG_BENCH_PHASES build."""
    sys.path.insert(0, str(BENCH))
    from exec_ab import _build

    so = _build("phases", ROOT, tmp, True)
    out = tmp / "open.phases"
    subprocess.run(
        [sys.executable, str(BENCH / "open_ab.py"), "--child", so, str(n_open), "1"],
        env=dict(os.environ, LG_BENCH_PHASES_OUT=str(out)),
        capture_output=True,
        check=True,
    )
    runs = [json.loads(ln) for ln in out.read_text().splitlines()] if out.exists() else []
    runs = [r for r in runs if "open_n" in r]
    return {k: v for k, v in runs[-1].items() if k != "open_n"} if runs else None


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv, exec_only="--exec" in sys.argv), indent=2))
