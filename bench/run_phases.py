"""Where `sandbox.run`'s time goes, phase by phase, against `subprocess.run` in the same run.

    python bench/run_phases.py [ROUNDS] [WITNESS_FILES]

Runs `/bin/true` in-process through the session (RunOptions.timings: the phases
sandbox.session marks) under the read-only preset and the bench policy
(bench_peers.POLICY_TEMPLATE), alternated with a bare `subprocess.run` every round, and
prints the median of each phase.  The tables' share is split further by timing
`compile_policy` and the launch identity walk (`_existing_keys`) where the tables call
them; the network's, the supervisor's and the close's by timing their larger parts
(NetworkSession.prepare / attach / close, Supervisor.start, the trail's session start
and end entries, the writer's open and close, the supervisor's start and join, the
policy's load and the plan's egress probe).  The trail's phase comes after the tables:
the writer is opened while the child builds its sandbox (sandbox/session/trailopen.py).
A private $HOME; its key directory is seeded with WITNESS_FILES witness
files (default 1,265: this machine's count when the issue was measured), as a user's
history leaves them.  Run `python -m compileall -q sandbox` first.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def true_options(
    run_options: Any, policy: str, audit_dir: str, cwd: str, null: int, **extra: Any
) -> Any:
    """The RunOptions of a /bin/true session as the benchmarks time it: output to `null`,
    no warnings or notices, no signal forwarding, records dropped, and the next session's
    namespace made at close as sandbox.run sets it (older trees have no such option).
    `run_options` is the RunOptions class of the tree under test (bench/run_ab.py loads
    two)."""
    spare = {"spare_netns": True} if "spare_netns" in run_options.__annotations__ else {}
    return run_options(
        argv=["/bin/true"],
        policy=policy,
        audit_dir=audit_dir,
        warn=lambda _m: None,
        notice=lambda _m: None,
        cwd=cwd,
        stdin_fd=null,
        stdout_fd=null,
        stderr_fd=null,
        forward_signals=False,
        on_event=lambda _e: None,
        **spare,
        **extra,
    )


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    witnesses = int(sys.argv[2]) if len(sys.argv) > 2 else 1265
    tmp = Path(tempfile.mkdtemp(prefix="lg-phases-"))
    # A private home (its ~/.config/landgate the only key directory): as a user without
    # XDG variables has it.
    os.environ["HOME"] = str(tmp / "home")
    os.environ.pop("XDG_CONFIG_HOME", None)
    os.environ.pop("XDG_STATE_HOME", None)
    wit = tmp / "home" / ".config" / "landgate" / "witness"
    wit.mkdir(parents=True)
    for i in range(witnesses):
        (wit / f"{i:032x}.json").write_text("{}\n")
    work = tmp / "work"
    work.mkdir()
    sys.path.insert(0, str(HERE))
    from bench_peers import POLICY_TEMPLATE

    bench_policy = tmp / "bench.yaml"
    bench_policy.write_text(POLICY_TEMPLATE.format(work=work, client="true", port=9))

    import sandbox.supervise.tables as tables
    from sandbox.session import RunOptions, run_session_result

    inner: dict[str, float] = {}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        def wrapper(*a, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                inner[name] = inner.get(name, 0.0) + (time.perf_counter() - t) * 1000

        return wrapper

    compile_policy = timed("tables.compile_policy", tables.compile_policy)
    tables.compile_policy = compile_policy
    try:  # the session's rows, split out of tables.py (older trees: tables.py itself)
        import sandbox.supervise.sessionrows as rows

        rows.compile_policy = compile_policy
        rows.existing_keys = timed("tables.identity_walk", rows.existing_keys)
    except ImportError:
        tables._existing_keys = timed("tables.identity_walk", tables._existing_keys)
    if hasattr(tables, "_tree_ids"):
        tables._tree_ids = timed("tables.tree_ids", tables._tree_ids)
    # The phases' larger parts (each guarded: the script also times older checkouts).
    import sandbox.audit.writer as writer
    import sandbox.net.session as netsession
    import sandbox.supervise.supervisor as supervisor

    ns_cls, sup_cls, w_cls = netsession.NetworkSession, supervisor.Supervisor, writer.AuditWriter
    ns_cls.prepare = timed("network.prepare", ns_cls.prepare)  # type: ignore[method-assign]
    ns_cls.attach = timed("supervisor.net_attach", ns_cls.attach)  # type: ignore[method-assign]
    if hasattr(sup_cls, "begin"):
        # The loop's thread makes the C context while the session goes on: begin is the
        # hand-over, wait_started what is left of the context's making at the release.
        sup_cls.begin = timed("supervisor.start", sup_cls.begin)  # type: ignore[method-assign]
        sup_cls.wait_started = timed("supervisor.wait_started", sup_cls.wait_started)  # type: ignore[method-assign]
    else:
        sup_cls.start = timed("supervisor.start", sup_cls.start)  # type: ignore[method-assign]
    w_cls.start_session = timed("supervisor.trail_start", w_cls.start_session)  # type: ignore[method-assign]
    w_cls.end_session = timed("close.end_session", w_cls.end_session)  # type: ignore[method-assign]
    ns_cls.close = timed("close.network", ns_cls.close)  # type: ignore[method-assign]
    # Finer parts of the supervisor's and the close's phases, and the plan's egress probe.
    import sandbox.plan as plan_pkg
    import sandbox.session.child as child
    import sandbox.session.run as session_run

    for mod, fn, name in (
        (child, "_start_kernel_denials", "supervisor.kernel_denials_start"),
        (child, "_stop_kernel_denials", "close.kernel_denials_stop"),
        (child, "prepare_supervisor", "tables.prepare_supervisor"),
        (child, "start_supervisor", "supervisor.start_supervisor"),
        (plan_pkg, "egress_caps", "plan.egress_caps"),
        (session_run, "load_session_policy", "policy.load"),
        (session_run, "load_labelled_policy", "policy.load"),
    ):
        if hasattr(mod, fn):
            setattr(mod, fn, timed(name, getattr(mod, fn)))
    sup_cls.join = timed("close.supervisor_join", sup_cls.join)  # type: ignore[method-assign]
    import sandbox.session.recorder as recorder

    rec_cls = recorder.Recorder
    rec_cls.attach = timed("supervisor.recorder_attach", rec_cls.attach)  # type: ignore[method-assign]
    w_cls.close = timed("close.writer_close", w_cls.close)  # type: ignore[method-assign]
    w_cls.__init__ = timed("trail.writer_init", w_cls.__init__)  # type: ignore[method-assign]
    # As sandbox.run(policy=...) is called: a preset's name, a policy file's path.
    policies = {"read-only": "read-only", "bench": str(bench_policy)}
    null = os.open(os.devnull, os.O_RDWR)
    # As sandbox.run sets it (the next session's namespace made at close); older trees
    # have no such option.
    samples: dict[str, dict[str, list[float]]] = {k: {} for k in (*policies, "bare")}

    def one(name: str) -> None:
        t = time.perf_counter()
        if name == "bare":
            subprocess.run(["/bin/true"], stdin=subprocess.DEVNULL, capture_output=True)
            samples[name].setdefault("total", []).append((time.perf_counter() - t) * 1000)
            return
        timings: dict[str, float] = {}
        inner.clear()
        res = run_session_result(
            true_options(
                RunOptions,
                policies[name],
                str(tmp / "audit" / name),
                str(work),
                null,
                timings=timings,
            )
        )
        wall = (time.perf_counter() - t) * 1000
        if res.exit_code != 0:
            raise SystemExit(f"{name}: exit {res.exit_code}")
        for k, v in {**timings, **inner, "total": wall}.items():
            samples[name].setdefault(k, []).append(v)

    for name in samples:  # warm-up
        one(name)
    for s in samples.values():
        s.clear()
    for _ in range(rounds):
        for name in samples:
            one(name)
    bare = statistics.median(samples["bare"]["total"])
    print(f"rounds {rounds}, witness files {witnesses}; medians in ms")
    print(f"  bare subprocess.run: {bare:.2f}")
    for name in policies:
        s = samples[name]
        total = statistics.median(s["total"])
        parts = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in s.items() if k != "total")
        print(f"  {name}: total {total:.2f} (+{total - bare:.2f} over bare): {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
