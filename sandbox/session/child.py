"""The child's life in a session: spawn, start the supervisor, release, wait, exit code.

Signals (INT, TERM, HUP, WINCH, QUIT, USR1, USR2) are forwarded to the agent
only when the session runs on the main thread (Python handles signals there
alone); from any other thread init's exit is awaited on a pidfd.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import threading
import time
from collections.abc import Callable

from sandbox.audit.event import DecisionEvent
from sandbox.errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, LaunchError
from sandbox.launch.spawn import AppliedStatus, PendingChild, SpawnSpec
from sandbox.plan import Plan
from sandbox.policy.model import Policy
from sandbox.session.options import PhaseClock, RunOptions
from sandbox.session.recorder import Recorder

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sandbox.net import NetSetup, NetworkSession
    from sandbox.supervise import Supervisor

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


class PreparedSupervisor:
    """The supervisor's tables, compiled before the child is ready (see prepare_supervisor)."""

    def __init__(self, tables: Any, plan_info: dict[str, Any]) -> None:
        self.tables = tables
        self.plan_info = plan_info


def prepare_supervisor(
    plan: Plan, policy: Policy, net_setup: NetSetup | None = None
) -> PreparedSupervisor | None:
    """Compile the supervisor's tables from what is known before the child is ready: the
    policy, the plan, the network layer's setup and the dashboards running now.

    Called between the fork and the child's ready message, so that this work runs while
    the child builds its sandbox on the other CPU (issue 19: ~2 ms of a CLI launch).  The
    child cannot run anything of the agent's yet (it waits for release), so compiling
    here rather than after the wait snapshots the same file system.  What only the ready
    child can say (its Landlock ruleset, its network namespace) is bound in
    start_supervisor; the tables are not used before that.  None when the plan has no
    supervisor (start_supervisor then refuses a listener, as before)."""
    if not plan.supervisor.available:
        return None
    import sandbox.supervise as sup

    # The open check (no mount namespace): its opener threads restrict themselves with
    # the agent's own Landlock ruleset (taken from the agent by the launcher).
    open_check = bool(plan.seccomp.open_check) and not plan.simulate
    fsop_check = bool(plan.seccomp.fsop_check) and not plan.simulate
    plan_info: dict[str, Any] = {
        "open_check": open_check,
        "fsop_check": fsop_check,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "bind_later": True,  # landlock_ruleset_fd and private_netns: start_supervisor's
    }
    if (open_check or fsop_check) and plan.landlock.abi <= 0:
        plan_info["landlock"] = "absent"  # the no-Landlock rung (--best-effort)
    if plan.landlock.abi > 0 and not plan.simulate:
        # Landlock is in force: the agent can change names only beneath these trees, so an
        # exec through a symlink or #! script elsewhere needs no verification.  (Used only
        # once the child confirms its ruleset: start_supervisor drops them otherwise.)
        trees = plan.landlock.writable_trees()
        if trees is not None:
            plan_info["write_trees"] = list(trees)
    if net_setup is not None and getattr(net_setup, "dns_view", None):
        # The sandbox's resolver is the DNS view (its resolv.conf): always reachable,
        # whatever the network default, or every name lookup fails with EAI_AGAIN.
        plan_info["infrastructure"] = [(net_setup.dns_view, 53, "landgate DNS view")]
        # With a DNS view, the names behind an IP are the ones the sandbox's own lookups
        # returned (fed by names_sink); pinning the policy's host names at launch would
        # only cost a getaddrinfo per host rule (seconds when a resolver does not answer).
        plan_info["resolve_hosts"] = False
    # Every running `landgate ui` dashboard: denied on the loopback whatever the policy
    # says (the dashboard can rewrite the policy; the agent must never talk to it).
    from sandbox.host.dashboards import dashboard_ports

    plan_info["infrastructure_deny"] = [
        (net, port, "landgate dashboard")
        for port in sorted(dashboard_ports())
        for net in ("127.0.0.0/8", "::1/128")
    ]
    return PreparedSupervisor(sup.compile_tables(policy, plan_info), plan_info)


def start_supervisor(
    listener_fd: int,
    plan: Plan,
    root_pid: int,
    options: RunOptions,
    on_event: Callable[[DecisionEvent], None] | None,
    strict: bool,
    prepared: PreparedSupervisor | None,
    ruleset_fd: int = -1,
    stderr_fd: int = 2,
) -> Supervisor | None:
    """THE seam for the supervisor (sandbox.supervise).

    Returns an object with .stop(); the supervisor owns listener_fd from here.  Its loop's
    thread is begun, not waited for: it makes the C context while the caller does the rest
    of the launch, and the caller calls `wait_started()` before the agent is released.
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
    if not plan.supervisor.available or prepared is None:
        os.close(listener_fd)
        raise LaunchError(f"seccomp listener without a supervisor: {plan.supervisor.detail}")
    import sandbox.supervise as sup

    tables = prepared.tables
    # What only the ready child can say.  The opener threads restrict themselves with the
    # agent's own Landlock ruleset; without it (the no-Landlock rung) the writable trees
    # are not a bound on what the agent can rename, so they are not passed.
    write_trees = prepared.plan_info.get("write_trees") if ruleset_fd >= 0 else None
    checks = tables.open_check or tables.fsop_check
    tables.bind(
        ruleset_fd=ruleset_fd if ruleset_fd >= 0 and checks else None,
        write_trees=write_trees,
        private_netns=_private_netns(root_pid),  # its own loopback is the sandbox's (§3)
        session_pid=root_pid,  # the key directory's mount as the sandbox's opens see it
    )
    supervisor = sup.Supervisor(
        listener_fd,
        tables,
        root_pid=root_pid,
        simulate=plan.simulate,
        on_event=on_event,
        stderr_fd=stderr_fd,
        strict=strict,
    )
    supervisor.begin()
    return supervisor


def _private_netns(pid: int) -> tuple[int, int] | None:
    """(device, inode) of the agent's network namespace when it is not landgate's own.

    The agent is blocked before its execve, already in its final namespace (init joined
    or created it before forking the agent)."""
    try:
        mine = os.stat("/proc/self/ns/net")
        theirs = os.stat(f"/proc/{pid}/ns/net")
    except OSError as exc:
        raise LaunchError(f"stat /proc/{pid}/ns/net: {exc.strerror}") from None
    if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
        return None
    return theirs.st_dev, theirs.st_ino


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


def stdio_fd(fd: int | None) -> int:
    """An agent stdio fd from RunOptions: None or negative means landgate's own (-1)."""
    return -1 if fd is None or fd < 0 else int(fd)


def run_child(
    spec: SpawnSpec,
    spawn: Callable[[SpawnSpec], PendingChild],
    plan: Plan,
    policy: Policy,
    options: RunOptions,
    recorder: Recorder,
    strict: bool,
    failure: list[str],
    net: NetworkSession | None,
    on_spawned: Callable[[AppliedStatus], None],
    clock: PhaseClock | None = None,
    on_released: Callable[[], None] | None = None,
    while_child_builds: Callable[[], None] | None = None,
) -> tuple[int, bool]:
    """Spawn (`spawn` starts the child: sandbox.launch.spawn.spawn_start), supervise,
    release, wait.  Returns (exit code, timed out).  `on_released`: called once the agent
    runs, for work that need not delay it (it overlaps the agent's own start).
    `while_child_builds`: called once the tables are compiled, before waiting for the
    child to be ready: work that needs nothing from the child fills that wait (the child
    builds its sandbox on the other CPU meanwhile); what it raises aborts the child."""
    clock = clock or PhaseClock(None)
    argv = list(options.argv)
    forward = options.forward_signals and threading.current_thread() is threading.main_thread()
    waitset = set(FORWARDED) | {signal.SIGCHLD}
    # Only the forwarding (main) thread blocks the signals it waits for; another thread
    # leaves the process's signals alone (the main thread may have its own handlers).
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, waitset) if forward else None
    child = None
    supervisor = None
    target: list[int] = []

    def _forward(signum: int, _frame: object) -> None:
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
    kernel = _kernel_denials_socket(plan, options)
    try:
        pending = spawn(spec)
        clock.mark("fork")
        try:
            # While the child builds its sandbox (namespaces, Landlock, the filter) on the
            # other CPU: the supervisor's tables.  The child waits for release either way.
            prepared = (
                prepare_supervisor(plan, policy, getattr(net, "setup", None))
                if spec.has_listener
                else None
            )
            clock.mark("tables")
            if while_child_builds is not None:
                while_child_builds()
        except BaseException:
            pending.abort()
            raise
        child = pending.wait()
        clock.mark("spawn")  # what is left of the child's set-up once the tables are ready
        target.append(child.init_pid)
        # Begun first: its loop's thread makes the C context (buffers, the first opener
        # thread and its Landlock restriction) while this thread writes the trail's start
        # entry and attaches the network; wait_started before the release (issue 19).
        supervisor = start_supervisor(
            child.listener_fd,
            plan,
            child.agent_pid,
            options,
            recorder.event,
            strict,
            prepared,
            getattr(child, "ruleset_fd", -1),
            recorder.stderr_fd,
        )
        on_spawned(child.applied)
        if kernel is not None:
            kernel = _start_kernel_denials(kernel, child.agent_pid, policy, recorder)
        if net is not None:
            net.attach(child.agent_pid, netns_pidfd=getattr(child, "init_pidfd", -1))
        if supervisor is not None:
            supervisor.wait_started()  # a context that could not be made: never released
        recorder.attach(supervisor)
        clock.mark("supervisor")
        child.release()
        if on_released is not None:
            on_released()
        cancel = options.cancel
        init_status, killed = _wait_and_forward(
            child.init_pid,
            deadline,
            lambda: bool(failure) or (cancel is not None and cancel.is_set()),
            forward=forward,
        )
        raw, exec_errno = child.collect()
        clock.mark("run")
    except BaseException:
        if child is not None:
            _kill_and_reap(child.init_pid)
        raise
    finally:
        if supervisor is not None:
            supervisor.stop()
            if hasattr(supervisor, "join"):
                supervisor.join()
        if kernel is not None:
            _stop_kernel_denials(kernel)
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


def _kernel_denials_socket(plan: Plan, options: RunOptions) -> Any:
    """The audit subscription, made before the spawn so the agent's first denial is seen;
    None when Landlock's denials cannot be recorded here (the plan states why)."""
    if plan.simulate or plan.landlock.abi <= 0 or plan.host.kernel_denials_gap is not None:
        return None
    from sandbox.host.kaudit import readlog_socket

    try:
        return readlog_socket()
    except OSError as exc:
        options.warn(f"{exc}: kernel (Landlock) file denials are not recorded")
        return None


def _start_kernel_denials(sock: Any, agent_pid: int, policy: Policy, recorder: Recorder) -> Any:
    from sandbox.launch.spawn import init_helper
    from sandbox.supervise.kaudit import KernelDenials

    # The agent is a fork of the init program, which created its Landlock domain.
    agent_exe = os.path.realpath(init_helper())
    reader = KernelDenials(
        sock, agent_pid, policy, recorder.event, recorder.stderr_fd, agent_exe=agent_exe
    )
    reader.start()
    return reader


def _stop_kernel_denials(kernel: Any) -> None:
    if hasattr(kernel, "stop"):
        kernel.stop()  # waits for the records still in flight (bounded), then closes
    else:
        kernel.close()  # the spawn failed: only the socket exists


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
