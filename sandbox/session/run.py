"""`landgate run`: plan, check the required layers, spawn, supervise, wait.

Order (DESIGN §2, §4):
  1. load the policy, probe the host, build the plan;
  2. refuse (exit 125) when a required layer or a carve-out is not enforced,
     unless --best-effort (then warn; never silent);
  3. spawn: the agent is restricted and blocked before its execve;
  4. take the seccomp listener and start the supervisor on it
     (`_start_supervisor`: THE seam for sandbox.supervise);
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

import dataclasses
import errno
import getpass
import os
import select
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sandbox.audit.event import DecisionEvent
from sandbox.errors import (
    EXIT_CANNOT_EXEC,
    EXIT_NOT_FOUND,
    EnforcementUnavailable,
    LandgateError,
    LaunchError,
)
from sandbox.launch.spawn import AppliedStatus
from sandbox.policy.layers import layers_for
from sandbox.session.applied import applied_layers

FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGWINCH,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
SI_KERNEL = 0x80  # terminal-generated: already delivered to the agent's process group


def _ignore(_: str) -> None:
    return None


@dataclass(frozen=True)
class RunOptions:
    argv: Sequence[str]
    policy: Any = None  # path / preset name / None (./.landgate.yaml or coding-agent) / a Policy
    audit_dir: str | None = None
    simulate: bool = False
    best_effort: bool = False
    warn: Callable[[str], None] = _ignore
    notice: Callable[[str], None] = _ignore
    # Injectable for tests and for the other layers:
    host: Any = None  # HostCapabilities (pretend a feature is absent)
    env: Mapping[str, str] | None = None  # default os.environ
    cwd: str | None = None  # default os.getcwd()
    netns_fd: int = -1  # the network layer's prepared namespace
    binds: tuple[tuple[str, str], ...] = ()  # e.g. (dns_view_resolv_conf, "/etc/resolv.conf")
    on_event: Callable[[Any], None] | None = None  # every decision, also sent to the trail
    extra_sections: Mapping[str, Any] = field(default_factory=dict)
    stdin_fd: int | None = None  # the agent's stdin/stdout/stderr (None or -1: landgate's own)
    stdout_fd: int | None = None
    stderr_fd: int | None = None
    timeout: float | None = None  # seconds; the whole tree is killed when it runs out
    # Forward INT/TERM/HUP/WINCH/... to the agent.  Only possible (and only done) when
    # run_session is called from the main thread: Python handles signals there alone.
    forward_signals: bool = True
    # Set from another thread to end the session early: the whole tree is killed, as on a
    # timeout (sandbox.Session's per-command timeout; the session then reports timed_out).
    cancel: threading.Event | None = None


@dataclass(frozen=True)
class SessionResult:
    exit_code: int
    session: str | None  # the audit trail's session id
    audit_dir: str
    counts: Mapping[str, Any]
    timed_out: bool = False
    start: Mapping[str, Any] = field(default_factory=dict)  # the session-start entry's fields
    policy: Any = None  # the Policy in force (the API explains denials with it)


def load_session_policy(options: RunOptions, cwd: str) -> Any:
    from sandbox.policy.model import Policy

    if isinstance(options.policy, Policy):
        return options.policy
    from sandbox.policy import load_policy, resolve_policy_path

    path = resolve_policy_path(options.policy, cwd=Path(cwd))
    audit = Path(options.audit_dir) if options.audit_dir else None
    return load_policy(path, cwd=Path(cwd), audit_dir=audit)


def check_enforcement(
    plan: Any, policy: Any, *, best_effort: bool, warn: Callable[[str], None]
) -> None:
    """Refuse (EnforcementUnavailable, exit 125) or warn for every missing required layer."""
    if plan.host.seccomp_notify and not plan.supervisor.available:
        # Not a kernel gap that --best-effort may accept: a broken install.  There is
        # no allow-all fallback, so running would fail every supervised syscall at best.
        raise EnforcementUnavailable(
            f"this kernel has seccomp user notification but {plan.supervisor.detail}: "
            "the supervisor is mandatory; reinstall landgate (make install)"
        )
    problems: list[str] = []
    for name in sorted(policy.enforcement.require):
        # The loader accepted only names of the one vocabulary: KeyError here is a bug.
        for layer_name in layers_for(name):
            layer = plan.layer(layer_name)
            if layer.active or (plan.simulate and layer.state == "observed"):
                continue
            problems.append(
                f"{name} is required (enforcement.require) but the {layer.name} layer is "
                f"{layer.state}: {layer.detail}"
            )
    for c in plan.carve_outs.uncovered:
        problems.append(
            f"nothing enforces the {c.action} deny {c.pattern!r} ({c.rule}): {'; '.join(c.gaps)}"
        )
    if not problems:
        return
    if best_effort:
        for p in problems:
            warn(p + " (running anyway: --best-effort)")
        return
    raise EnforcementUnavailable(
        problems[0]
        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        + "; to proceed: use a host that has it, drop it from enforcement.require, "
        "or pass --best-effort"
    )


def resolve_executable(cmd: str, env: Mapping[str, str], cwd: str) -> str | None:
    if "/" in cmd:
        return cmd
    found = shutil.which(cmd, path=env.get("PATH", os.defpath))
    return found


def session_start_fields(plan: Any, argv: Sequence[str], cwd: str, **extra: Any) -> dict[str, Any]:
    """What the audit trail's session-start entry records (DESIGN §5)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {
        "policy_sha256": plan.policy_sha256,
        "policy": plan.policy_path,
        "mode": plan.mode,
        "rung": plan.rung,
        "layers": [layer.to_dict() for layer in plan.layers],
        "kernel": plan.host.kernel,
        "landlock_abi": plan.host.landlock_abi,
        "argv": list(argv),
        "cwd": cwd,
        "user": user,
        "uid": os.getuid(),
        **extra,
    }


def _start_supervisor(
    listener_fd: int,
    plan: Any,
    policy: Any,
    root_pid: int,
    options: RunOptions,
    on_event: Callable[[Any], None] | None,
    strict: bool,
    net_setup: Any = None,
    ruleset_fd: int = -1,
    stderr_fd: int = 2,
) -> Any:
    """THE seam for the supervisor (sandbox.supervise).

    Returns an object with .stop(); the supervisor owns listener_fd from here.
    There is no fallback: without the supervisor the session was refused before
    the spawn (check_enforcement), and a listener with nobody answering it would
    fail every supervised syscall.
    """
    if listener_fd < 0:
        return None
    from sandbox._launch import lib

    if plan.host.sync_wakeup:
        rc = lib.lg_listener_sync_wakeup(listener_fd)
        if rc < 0:
            options.warn(
                f"SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: {os.strerror(-rc)} (slower supervisor)"
            )
    if not plan.supervisor.available:
        os.close(listener_fd)
        raise LaunchError(f"seccomp listener without a supervisor: {plan.supervisor.detail}")
    import sandbox.supervise as sup

    # The open check (no mount namespace): its opener threads restrict themselves with
    # the agent's own Landlock ruleset (taken from the agent by the launcher).
    open_check = bool(plan.seccomp.open_check) and not plan.simulate
    plan_info: dict[str, Any] = {
        "open_check": open_check,
        "uid": os.getuid(),
        "gid": os.getgid(),
    }
    if open_check:
        if ruleset_fd >= 0:
            plan_info["landlock_ruleset_fd"] = ruleset_fd
        elif plan.landlock.abi <= 0:
            plan_info["landlock"] = "absent"  # the no-Landlock rung (--best-effort)
    if net_setup is not None and getattr(net_setup, "dns_view", None):
        # The sandbox's resolver is the DNS view (its resolv.conf): always reachable,
        # whatever the network default, or every name lookup fails with EAI_AGAIN.
        plan_info["infrastructure"] = [(net_setup.dns_view, 53, "landgate DNS view")]
        # With a DNS view, the names behind an IP are the ones the sandbox's own lookups
        # returned (fed by names_sink); pinning the policy's host names at launch would
        # only cost a getaddrinfo per host rule (seconds when a resolver does not answer).
        plan_info["resolve_hosts"] = False
    tables = sup.compile_tables(policy, plan_info)
    supervisor = sup.Supervisor(
        listener_fd,
        tables,
        root_pid=root_pid,
        simulate=plan.simulate,
        on_event=on_event,
        stderr_fd=stderr_fd,
        strict=strict,
    )
    supervisor.start()
    return supervisor


def _wait_and_forward(
    init_pid: int,
    deadline: float | None = None,
    stop: Callable[[], bool] = lambda: False,
    *,
    forward: bool = True,
) -> tuple[int, bool]:
    """Wait for init, forwarding signals when `forward`; returns (raw wait status, killed).

    `killed` is True when landgate ended the tree itself: the deadline passed,
    or `stop()` said so (the audit trail became unwritable: fail closed).
    Without `forward` (a call from a thread other than the main one, where
    signals cannot be handled) init's exit is waited for on a pidfd."""
    if forward:
        return _wait_loop(init_pid, deadline, stop, -1)
    # init is our unreaped child: its pid cannot be reused until we wait for it.
    pidfd = os.pidfd_open(init_pid)
    try:
        return _wait_loop(init_pid, deadline, stop, pidfd)
    finally:
        os.close(pidfd)


def _wait_loop(
    init_pid: int, deadline: float | None, stop: Callable[[], bool], pidfd: int
) -> tuple[int, bool]:
    waitset = set(FORWARDED) | {signal.SIGCHLD}
    killed = False
    while True:
        pid, status = os.waitpid(init_pid, os.WNOHANG)
        if pid == init_pid:
            return status, killed
        if not killed and ((deadline is not None and time.monotonic() >= deadline) or stop()):
            # init is pid 1 of the sandbox's pid namespace: killing it kills the tree.
            killed = True
            try:
                os.kill(init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            continue
        # 0.1 s: how soon an unwritable trail or a passed deadline stops the tree.
        wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
        if pidfd >= 0:
            select.select([pidfd], [], [], wait)  # readable once init exited
            continue
        info = signal.sigtimedwait(waitset, wait)
        if info is None or info.si_signo == signal.SIGCHLD:
            continue
        if info.si_code == SI_KERNEL:
            continue  # the terminal sent it to the whole foreground group, agent included
        try:
            os.kill(init_pid, info.si_signo)  # init is unreaped: the pid cannot be reused
        except ProcessLookupError:
            pass


def _exit_code(raw: int | None, init_status: int) -> int:
    st = raw if raw is not None else init_status
    if os.WIFEXITED(st):
        return os.WEXITSTATUS(st)
    if os.WIFSIGNALED(st):
        return 128 + os.WTERMSIG(st)
    return 125


def _stdio_fd(fd: int | None) -> int:
    """An agent stdio fd from RunOptions: None or negative means landgate's own (-1)."""
    return -1 if fd is None or fd < 0 else int(fd)


def run_session(options: RunOptions) -> int:
    """`landgate run`: the agent's exit status (see run_session_result)."""
    return run_session_result(options).exit_code


class _Recorder:
    """Every decision goes to the audit trail (and to options.on_event, for the API).

    The network layer may report decisions (DNS denials) before the supervisor
    exists, and names for IPs before it can take them: both are buffered."""

    def __init__(
        self,
        writer: Any,
        extra: Callable[[Any], None] | None,
        policy: Any = None,
        stderr_fd: int = 2,
    ) -> None:
        self.writer = writer
        self.policy = policy
        self.stderr_fd = stderr_fd
        self._told: set[str] = set()  # DNS denials already explained on stderr
        self.extra = extra
        self.exec_denied = False  # the supervisor refused an exec (it said why on stderr)
        self._lock = threading.Lock()
        self._names: list[tuple[str, tuple[str, ...]]] = []
        self._supervisor: Any = None

    def event(self, ev: DecisionEvent) -> None:
        if ev.mode == "simulate" and ev.action in ("file_read", "file_write", "open"):
            ev = self._judge_simulated_open(ev)
        # The trail's on-disk format is the event's entry form (sandbox.audit.event).
        self.writer.append(ev.to_entry())
        if ev.action == "shell_exec" and ev.result == "deny":
            self.exec_denied = True
        if ev.layer == "dns" and ev.result == "deny":
            self._tell_dns_denial(ev)
        if self.extra is not None:
            self.extra(ev)

    def _tell_dns_denial(self, ev: DecisionEvent) -> None:
        """The DNS view's refusal, told once per name on the sandbox's stderr (DESIGN §4),
        like the supervisor's denials: the agent sees only NXDOMAIN otherwise."""
        name = ev.target
        with self._lock:
            if name in self._told:
                return
            self._told.add(name)
        line = f'landgate: denied network "{name}" ({ev.rule or "DNS view"}, DNS view)\n'
        try:
            os.write(self.stderr_fd, line.encode("utf-8", "replace"))
        except OSError:
            pass  # the sandbox's stderr is closed: the trail still has the entry

    def _judge_simulated_open(self, ev: DecisionEvent) -> DecisionEvent:
        """An open observed in simulation, judged by the one evaluator.

        The C loop matched only the carve-out denies; in simulation Python may sit
        between question and answer (nothing is blocked), so the open gets the full
        decision: allow rules, the baseline, protected paths and the default."""
        if self.policy is None or not ev.target.startswith("/"):
            return ev
        from sandbox.policy import decide

        actions = ["file_read"] if ev.detail != "write" else ["file_write"]
        if ev.detail == "read-write":
            actions = ["file_read", "file_write"]
        decisions = [decide(self.policy, a, ev.target) for a in actions]
        d = next((x for x in decisions if x.effect == "deny"), decisions[-1])
        return dataclasses.replace(
            ev,
            action=d.action,
            result=d.effect,
            rule=d.rule_ref(),
            layer="filesystem",
            origin="default" if d.rule is None else d.rule.origin,
            rule_index=None if d.rule is None else d.rule.index,
            rule_source=None if d.rule is None else str(d.rule.source),
        )

    def names(self, ip: str, names: Sequence[str]) -> None:
        with self._lock:
            sup = self._supervisor
            if sup is None:
                self._names.append((ip, tuple(names)))
                return
        sup.add_names(ip, tuple(names))

    def attach(self, supervisor: Any) -> None:
        with self._lock:
            self._supervisor = supervisor
            pending, self._names = self._names, []
        if supervisor is not None and hasattr(supervisor, "add_names"):
            for ip, names in pending:
                supervisor.add_names(ip, names)


def run_session_result(options: RunOptions) -> SessionResult:
    from sandbox.audit import AuditWriter, default_audit_dir, simulate_summary
    from sandbox.host.probe import probe_host
    from sandbox.launch.spawn import spawn, spec_from_plan
    from sandbox.plan import build_plan, needs_egress_layer

    argv = list(options.argv)
    if not argv:
        raise LaunchError("no command given")
    cwd = options.cwd or os.getcwd()
    audit_dir = Path(options.audit_dir) if options.audit_dir else default_audit_dir()
    policy = load_session_policy(replace(options, audit_dir=str(audit_dir)), cwd)
    host = options.host if options.host is not None else probe_host()
    environ = dict(options.env if options.env is not None else os.environ)
    simulate = options.simulate or policy.mode == "simulate"
    plan = build_plan(
        policy, host, simulate=simulate, environ=environ, extra_sections=options.extra_sections
    )
    check_enforcement(plan, policy, best_effort=options.best_effort, warn=options.warn)
    env = policy.environment.apply(environ)
    path = resolve_executable(argv[0], env, cwd)
    if path is None:
        options.notice(f"{argv[0]}: command not found")
        return SessionResult(EXIT_NOT_FOUND, None, str(audit_dir), {})

    # The trail is opened before anything runs: an unwritable trail refuses the
    # session (exit 125) instead of running unrecorded.
    failure: list[str] = []
    durability = policy.enforcement.durability
    try:
        writer = AuditWriter(audit_dir, durability=durability, on_failure=failure.append)
    except LandgateError as exc:
        raise LaunchError(f"audit trail {audit_dir}: {exc}") from exc
    # The sandbox's stderr: where denials are told, by the supervisor and the DNS view alike.
    stderr_fd = _stdio_fd(options.stderr_fd)
    recorder = _Recorder(writer, options.on_event, policy, stderr_fd if stderr_fd >= 0 else 2)
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
            )
            setup = net.prepare()
            netns_fd, binds = setup.netns_fd, binds + tuple(setup.binds)
            net_info = {"network_rung": setup.rung, "network_warnings": list(setup.warnings)}
            for w in setup.warnings:
                options.warn(w)
        started: dict[str, Any] = {}

        def start_session(applied: AppliedStatus) -> None:
            # Written once the child is restricted and before it is released (it is blocked
            # before its execve): the entry records what was APPLIED, not only predicted.
            nonlocal session_id
            fields = session_start_fields(plan, argv, cwd, **net_info)
            fields["applied"] = applied.to_dict()
            fields["applied_layers"] = [s.to_dict() for s in applied_layers(plan, applied)]
            session_id = writer.start_session(fields)
            started.update(fields)

        stdio = (_stdio_fd(options.stdin_fd), _stdio_fd(options.stdout_fd), stderr_fd)
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
        )
        exit_code, timed_out = _run_child(
            spec,
            spawn,
            plan,
            policy,
            options,
            recorder,
            durability == "strict",
            failure,
            net,
            start_session,
        )
    finally:
        if net is not None:
            net.close()
        counts = writer.counts()
        if session_id is not None:
            writer.end_session(exit_code)
        writer.close()
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
    if timed_out:
        options.notice(f"timed out after {options.timeout} s: the sandboxed command was killed")
    return SessionResult(exit_code, session_id, str(audit_dir), counts, timed_out, started, policy)


def _run_child(
    spec: Any,
    spawn: Callable[[Any], Any],
    plan: Any,
    policy: Any,
    options: RunOptions,
    recorder: _Recorder,
    strict: bool,
    failure: list[str],
    net: Any,
    on_spawned: Callable[[AppliedStatus], None],
) -> tuple[int, bool]:
    """Spawn, supervise, release, wait.  Returns (exit code, timed out)."""
    argv = list(options.argv)
    forward = options.forward_signals and threading.current_thread() is threading.main_thread()
    waitset = set(FORWARDED) | {signal.SIGCHLD}
    # Only the forwarding (main) thread blocks the signals it waits for; another thread
    # leaves the process's signals alone (the main thread may have its own handlers).
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, waitset) if forward else None
    child = None
    supervisor = None
    target: list[int] = []

    def _forward(signum: int, _frame: Any) -> None:
        # Fallback: a thread that does not block the signal (e.g. one created by C code
        # with its own mask) received it; forward like _wait_and_forward does.
        if target:
            try:
                os.kill(target[0], signum)
            except ProcessLookupError:
                pass

    old_handlers = {sig: signal.signal(sig, _forward) for sig in FORWARDED} if forward else {}
    deadline = time.monotonic() + options.timeout if options.timeout is not None else None
    killed = False
    try:
        child = spawn(spec)
        target.append(child.init_pid)
        on_spawned(child.applied)
        if net is not None:
            net.attach(child.agent_pid)
        supervisor = _start_supervisor(
            child.listener_fd,
            plan,
            policy,
            child.agent_pid,
            options,
            recorder.event,
            strict,
            getattr(net, "setup", None),
            getattr(child, "ruleset_fd", -1),
            recorder.stderr_fd,
        )
        recorder.attach(supervisor)
        child.release()
        cancel = options.cancel
        init_status, killed = _wait_and_forward(
            child.init_pid,
            deadline,
            lambda: bool(failure) or (cancel is not None and cancel.is_set()),
            forward=forward,
        )
        raw, exec_errno = child.collect()
    except BaseException:
        if child is not None:
            _kill_and_reap(child.init_pid)
        raise
    finally:
        if supervisor is not None:
            supervisor.stop()
            if hasattr(supervisor, "join"):
                supervisor.join()
        if child is not None:
            child.close()
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    timed_out = killed and not failure
    if exec_errno:
        why = os.strerror(exec_errno)
        if exec_errno == errno.EACCES and not recorder.exec_denied and not plan.simulate:
            # Not the supervisor (it prints its own line): Landlock's EXECUTE gate.
            why += (
                f" ({spec.path} is not beneath the policy's executable paths; "
                "`landgate plan` lists them)"
            )
        options.notice(f"{argv[0]}: cannot execute: {why}")
        code = EXIT_NOT_FOUND if exec_errno in (errno.ENOENT, errno.ENOTDIR) else EXIT_CANNOT_EXEC
        return code, timed_out
    return _exit_code(raw, init_status), timed_out


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
