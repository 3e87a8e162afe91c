"""What a session is asked to do (RunOptions), what it returns, and what it checks first.

`check_enforcement` is the refusal: a required layer (the one vocabulary,
sandbox.policy.layers) that the plan cannot give, a carve-out nothing
enforces, or a broken supervisor install where the kernel has user
notification (never accepted, not even under --best-effort).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sandbox.audit.event import DecisionEvent
from sandbox.errors import EnforcementUnavailable
from sandbox.host.fsutil import which
from sandbox.host.probe import HostCapabilities
from sandbox.plan import Plan
from sandbox.policy.layers import layers_for
from sandbox.policy.model import Policy
from sandbox.record import Record, field

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sandbox.session.report import HookDecider


def _ignore(_: str) -> None:
    return None


class RunOptions(Record):
    argv: Sequence[str]
    # path / preset name / None (./.landgate.yaml or coding-agent) / a Policy
    policy: Policy | str | None = None
    audit_dir: str | None = None
    simulate: bool = False
    best_effort: bool = False
    warn: Callable[[str], None] = _ignore
    notice: Callable[[str], None] = _ignore
    quiet: bool = False  # no "policy: ..." notice (`landgate run -q`)
    # Injectable for tests and for the other layers:
    host: HostCapabilities | None = None  # pretend a feature is absent
    env: Mapping[str, str] | None = None  # default os.environ
    cwd: str | None = None  # default os.getcwd()
    netns_fd: int = -1  # the network layer's prepared namespace
    binds: tuple[tuple[str, str], ...] = ()  # e.g. (dns_view_resolv_conf, "/etc/resolv.conf")
    on_event: Callable[[DecisionEvent], None] | None = None  # every decision, also to the trail
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
    # Reuse the validated policy from the persistent cache (sandbox.policy.diskcache):
    # `landgate run` sets it, the library's callers load in-process (memoised) instead.
    policy_cache: bool = False
    # Filled, when given, with each launch phase's duration in ms as the session passes it
    # (policy, probe, plan, network, spawn, supervisor, run, close): `LANDGATE_DEBUG_TIMING=1
    # landgate run` prints them.  Never read by the session itself.
    timings: dict[str, float] | None = None
    # Offer the agent the session's hook channel (sandbox.session.report): the hook inside
    # the sandbox asks, and this decider (sandbox.integrations.hook.SessionDecider, given
    # by the CLI: the session may not import the integrations) decides into this trail.
    report_channel: HookDecider | None = None
    # The in-process API (sandbox.run, called again and again): when this session closes,
    # make the next one's network namespace in the background (the root rung's
    # loopback-only layer; issue 19).  Off for a one-shot `landgate run`, which would make
    # one nobody uses and keep its own exit waiting for it.
    spare_netns: bool = False


class SessionResult(Record):
    exit_code: int
    session: str | None  # the audit trail's session id
    audit_dir: str
    counts: Mapping[str, Any]
    timed_out: bool = False
    start: Mapping[str, Any] = field(default_factory=dict)  # the session-start entry's fields
    policy: Policy | None = None  # the policy in force (the API explains denials with it)


def load_session_policy(options: RunOptions, cwd: str) -> Policy:
    return load_labelled_policy(options, cwd)[0]


def load_labelled_policy(options: RunOptions, cwd: str) -> tuple[Policy, str]:
    """The policy `run` applies and, in words, which one ("the claude-code preset (picked
    for ...)"): both from one choice of the file (one look-up, ~30 us, and the label
    always names the file that was loaded)."""
    if isinstance(options.policy, Policy):
        # A Policy the caller loaded before knows nothing of this session's audit directory:
        # its protected write deny is added here, as the loader adds it to a policy file.
        policy = options.policy
        if options.audit_dir:
            from sandbox.policy.protected import with_audit_dir

            policy = with_audit_dir(policy, options.audit_dir)
        return policy, str(policy.path)
    from sandbox.policy.locate import choose_policy

    path, label = choose_policy(options.policy, Path(cwd), list(options.argv))
    audit = Path(options.audit_dir) if options.audit_dir else None
    if options.policy_cache:
        from sandbox.policy.diskcache import load_policy_cached

        return load_policy_cached(path, cwd=Path(cwd), audit_dir=audit), label
    from sandbox.policy.loader import load_policy

    return load_policy(path, cwd=Path(cwd), audit_dir=audit), label


def check_enforcement(
    plan: Plan, policy: Policy, *, best_effort: bool, warn: Callable[[str], None]
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
    # shutil.which's own search (sandbox.host.fsutil: shutil is not imported to launch)
    return which(cmd, env.get("PATH", os.defpath))


def session_start_fields(
    plan: Plan, argv: Sequence[str], cwd: str, **extra: object
) -> dict[str, object]:
    """What the audit trail's session-start entry records (DESIGN §5)."""
    user = _user_name()
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


def _user_name() -> str:
    """getpass.getuser()'s answer (LOGNAME, USER, LNAME, USERNAME, else the password
    database), without importing getpass (and termios) on every launch."""
    for k in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        name = os.environ.get(k)
        if name:
            return name
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


class PhaseClock:
    """Durations of the launch's phases into RunOptions.timings (a no-op without it)."""

    def __init__(self, out: dict[str, float] | None) -> None:
        self._out = out
        self._last = time.perf_counter()

    def mark(self, phase: str) -> None:
        if self._out is None:
            return
        now = time.perf_counter()
        self._out[phase] = round(self._out.get(phase, 0.0) + (now - self._last) * 1000, 2)
        self._last = now
