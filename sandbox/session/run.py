"""`landgate run`: plan, check the required layers, spawn, supervise, wait.

Order (DESIGN §2, §4):
  1. load the policy, probe the host, build the plan;
  2. refuse (exit 125) when a required layer or a carve-out is not enforced,
     unless --best-effort (then warn; never silent);
  3. spawn: the agent is restricted and blocked before its execve;
  4. take the seccomp listener and start the supervisor on it
     (`start_supervisor`: THE seam for sandbox.supervise);
  5. the audit trail's session-start entry (layers in force, rung), then
     release the agent, forward signals, wait;
  6. the session-end entry (exit status, counts), the simulation summary;
     exit status: the agent's own; 126/127 when its execve failed.
The network layer (sandbox.net) prepares its namespace, nftables and DNS view
before the fork, when the policy restricts egress; the agent joins it.
The agent's first execve (the root command) is itself supervised, which is
why the supervisor must run before the release.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.errors import EXIT_NOT_FOUND, LandgateError, LaunchError
from sandbox.launch.spawn import AppliedStatus
from sandbox.record import replace
from sandbox.session.applied import applied_layers
from sandbox.session.child import run_child, stdio_fd
from sandbox.session.options import (
    PhaseClock,
    RunOptions,
    SessionResult,
    check_enforcement,
    load_labelled_policy,
    resolve_executable,
    session_start_fields,
)
from sandbox.session.recorder import Recorder
from sandbox.session.trailopen import OpeningWriter

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RunOptions", "SessionResult", "run_session", "run_session_result"]


def run_session(options: RunOptions) -> int:
    """`landgate run`: the agent's exit status (see run_session_result)."""
    return run_session_result(options).exit_code


def run_session_result(options: RunOptions) -> SessionResult:
    from sandbox.audit import default_audit_dir, simulate_summary
    from sandbox.host.probe import probe_host
    from sandbox.launch.spawn import spawn_start, spec_from_plan
    from sandbox.plan import build_plan, needs_egress_layer

    clock = PhaseClock(options.timings)
    argv = list(options.argv)
    if not argv:
        raise LaunchError("no command given")
    cwd = options.cwd or os.getcwd()
    audit_dir = Path(options.audit_dir) if options.audit_dir else default_audit_dir()
    _prepare_audit_dirs(audit_dir)
    policy, label = load_labelled_policy(replace(options, audit_dir=str(audit_dir)), cwd)
    clock.mark("policy")
    host = options.host if options.host is not None else probe_host()
    clock.mark("probe")
    environ = dict(options.env if options.env is not None else os.environ)
    report = None
    if options.report_channel is not None:
        from sandbox.session.report import ENV, ReportChannel

        # Granted by the plan for exactly its path (a baseline network allow), and named
        # to the agent in its environment (set after the policy's environment filter).
        report = ReportChannel(options.report_channel)
        policy = report.grant(policy, environ)
    try:
        simulate = options.simulate or policy.mode == "simulate"
        plan = build_plan(
            policy, host, simulate=simulate, environ=environ, extra_sections=options.extra_sections
        )
        check_enforcement(plan, policy, best_effort=options.best_effort, warn=options.warn)
        clock.mark("plan")
        env = policy.environment.apply(environ)
        if report is not None:
            env[ENV] = report.path
        path = resolve_executable(argv[0], env, cwd)
        if path is None:
            options.notice(f"{argv[0]}: command not found")
            if report is not None:
                report.close()
            return SessionResult(EXIT_NOT_FOUND, None, str(audit_dir), {})
        if not options.quiet:
            # Said once the session will run (a refusal above is one line of its own).
            options.notice(f"policy: {label}")
    except BaseException:
        if report is not None:
            report.close()  # a refused session leaves no socket behind
        raise

    failure: list[str] = []
    durability = policy.enforcement.durability
    # The sandbox's stderr: where denials are told, by the supervisor and the DNS view alike.
    stderr_fd = stdio_fd(options.stderr_fd)
    # Its writer is bound once the trail is open (start_session, below).
    recorder = Recorder(None, options.on_event, policy, stderr_fd if stderr_fd >= 0 else 2)
    # Opened while the child builds its sandbox (run_child's while_child_builds).
    opening = OpeningWriter(audit_dir, durability, failure.append)
    net = None
    netns_fd, binds = options.netns_fd, tuple(options.binds)
    net_info: dict[str, Any] = {}
    session_id: str | None = None
    exit_code = 125
    timed_out = False
    try:
        if needs_egress_layer(policy) and netns_fd < 0:
            from sandbox.net import NetworkSession

            net = NetworkSession(
                policy,
                on_event=recorder.event,
                names_sink=recorder.names,
                warn=options.warn,
                best_effort=options.best_effort,
                caps=plan.net_caps,  # the plan's own answer: one probe, the layer it described
                init_netns=True,  # the root rung's loopback-only namespace: made by init
                spare_netns=options.spare_netns,  # or made ahead (sandbox.run, again and again)
            )
            setup = net.prepare()
            netns_fd, binds = setup.netns_fd, binds + tuple(setup.binds)
            # The network session has already warned through options.warn (each once).
            net_info = {
                "network_rung": setup.rung,
                "network_layer": setup.layer,
                "network_warnings": list(setup.warnings),
            }
        clock.mark("network")
        started: dict[str, Any] = {}

        def start_session(applied: AppliedStatus) -> None:
            # Written once the child is restricted and before it is released (it is blocked
            # before its execve): the entry records what was APPLIED, not only predicted.
            nonlocal session_id
            # The trail opened while the child was built (or LaunchError, exit 125: the
            # agent, held before its execve, is killed instead of released: run_child).
            writer = opening.writer()
            recorder.writer = writer
            fields = session_start_fields(plan, argv, cwd, **net_info)
            fields["applied"] = applied.to_dict()
            fields["applied_layers"] = [s.to_dict() for s in applied_layers(plan, applied)]
            if report is not None:
                fields["report_channel"] = report.path
            session_id = writer.start_session(fields)
            started.update(fields)

        def answer_hooks() -> None:
            # The hook channel's accepting thread, started once the agent runs: its socket
            # listens since the channel was made, so a hook that connects first waits in the
            # backlog, and the thread's start overlaps the agent's instead of delaying it.
            if report is not None:
                report.start(opening.writer())  # open: start_session ran before the release

        stdio = (stdio_fd(options.stdin_fd), stdio_fd(options.stdout_fd), stderr_fd)
        spec = spec_from_plan(
            plan,
            path=path,
            argv=argv,
            env=env,
            cwd=cwd,
            netns_fd=netns_fd,
            binds=binds,
            stdio_fds=stdio,
            new_netns=bool(net is not None and net.setup is not None and net.setup.new_netns),
            init_netns=bool(net is not None and net.setup is not None and net.setup.init_netns),
        )

        def open_trail() -> None:
            # Once the tables are compiled, while the child builds its sandbox: the open
            # fills the launch's wait for it (trailopen.py), before the agent's release.
            opening.open()
            clock.mark("trail")  # the audit writer opened (chain, key, witness expiry)

        exit_code, timed_out = run_child(
            spec,
            spawn_start,
            plan,
            policy,
            options,
            recorder,
            durability == "strict",
            failure,
            net,
            start_session,
            clock,
            answer_hooks,
            open_trail,
        )
    finally:
        if net is not None:
            net.close()
        if report is not None:
            report.close()  # its last reports and the dropped count, before the end entry
        writer = opening.settled()
        counts: dict[str, Any] = {}
        if writer is not None:
            counts = writer.counts()
            writer.closing()  # the flusher's exit overlaps the seal (close() waits less)
            if session_id is not None:
                writer.end_session(exit_code)
            writer.close()
        if net is not None:
            net.make_next()  # after the seal: the next session's namespace (sandbox.run)
        clock.mark("close")
    if failure:
        raise LaunchError(
            f"audit trail {audit_dir} became unwritable ({failure[0]}): "
            "the sandboxed command was stopped (fail closed)"
        )
    if simulate and session_id is not None:
        options.notice(
            simulate_summary(
                counts, session_id, directory=None if options.audit_dir is None else audit_dir
            ).removeprefix("landgate: ")
        )
    if writer is not None and writer.expiry_error is not None:
        # The pass that moves gone directories' witnesses into the archive failed: this
        # session's trail is whole, but the user should know the key directory needs care.
        options.notice(f"warning: {writer.expiry_error} (this session's trail is complete)")
    if timed_out:
        options.notice(f"timed out after {options.timeout} s: the sandboxed command was killed")
    return SessionResult(exit_code, session_id, str(audit_dir), counts, timed_out, started, policy)


def _prepare_audit_dirs(audit_dir: Path) -> None:
    """The audit directory, the key directory and the key exist before the plan is
    built, on every run including the first: the plan protects what exists, so a
    directory the writer created later would be open to the agent (issue 14)."""
    from sandbox.audit.paths import prepare_trail_dirs

    try:
        prepare_trail_dirs(audit_dir)
    except LandgateError as exc:
        raise LaunchError(f"audit trail {audit_dir}: {exc}") from exc
