"""The Python API: run a command under a policy from inside an agent framework.

    import sandbox
    result = sandbox.run(["npm", "test"], policy="policies/coding-agent.yaml",
                         capture_output=True)
    result.returncode, result.stdout, result.denied

`run` calls the same session as `landgate run` (`sandbox.session.run_session_result`),
never the CLI, so a command is enforced, audited and exits exactly as it would
on the command line, and every error is the same `LandgateError` with the same
message (the CLI prints `landgate: <message>`; here it is the exception's str()).

The result is `subprocess.CompletedProcess`-like (`args`, `returncode`,
`stdout`, `stderr`, `check_returncode()`), plus `decisions`: the session's
entries as the session handed them to the audit trail (session start with the
layers in force, every decision, session end), and `denied`: every denial of
the session as a typed `Denial` (action, target, rule, layer, reason).

`run_async` is `run` on a worker thread for asyncio code; `Session` (from
sandbox.session.server) runs many commands under one policy in one launch and
one audit session.

`run` may be called from any thread, several at once: it changes no
process-wide state (cwd, environment and stdio are the session's options; only
a call from the main thread forwards signals to the agent).  Input and captured
output go through memfds, not pipes: the session blocks until the command
exits, and a memfd never fills up the way a pipe does.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self, Union

from sandbox.errors import UsageError
from sandbox.policy.denial import Denial, denial_from_event
from sandbox.session.result import RunResult
from sandbox.session.server import Session

if TYPE_CHECKING:
    from sandbox.policy import Policy
    from sandbox.policy.events import DecisionEvent

PolicyArg = Union["Policy", str, "os.PathLike[str]", None]

__all__ = ["Denial", "RunResult", "Session", "run", "run_async"]


def run(
    argv: Sequence[str],
    *,
    policy: PolicyArg = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    simulate: bool = False,
    audit: str | os.PathLike[str] | None = None,
    input: bytes | str | None = None,
    capture_output: bool = False,
) -> RunResult:
    """Run `argv` under `policy` and return its result with the session's decisions.

    policy: a `sandbox.Policy`, a policy file, a bundled preset name, or None for
        what `landgate run` uses (./.landgate.yaml in `cwd`, else the coding-agent
        preset).
    cwd, env: the command's working directory and environment (default: this
        process's); the policy's `environment` section still filters `env`.
    timeout: seconds; on expiry the whole sandboxed tree is killed and
        `subprocess.TimeoutExpired` is raised (with whatever output was captured).
    simulate: decide and record every action, block nothing.
    audit: the audit trail directory (default `$XDG_STATE_HOME/landgate/audit`).
    input: bytes (or str, encoded as UTF-8) for the command's stdin; otherwise
        stdin is inherited.  capture_output: collect stdout and stderr as bytes.

    Raises the same `LandgateError`s as `landgate run` (PolicyError for an invalid
    policy, LaunchError/EnforcementUnavailable when the sandbox cannot be set up,
    UsageError for a malformed call).  A command that runs and fails is not an
    error: see `returncode`, or call `check_returncode()`.
    """
    from sandbox.session import RunOptions, run_session_result

    args = _check_argv(argv)
    if timeout is not None and timeout <= 0:
        raise UsageError(f"run: timeout must be positive, got {timeout!r}")
    workdir = os.fspath(cwd) if cwd is not None else None
    if workdir is not None and not os.path.isdir(workdir):
        raise UsageError(f"run: cwd {workdir} is not a directory")
    warnings: list[str] = []
    notices: list[str] = []
    events: list[DecisionEvent] = []

    with _Stdio(input, capture_output) as stdio:
        options = RunOptions(
            argv=args,
            policy=_policy_value(policy),
            audit_dir=os.fspath(audit) if audit is not None else None,
            simulate=simulate,
            warn=warnings.append,
            notice=notices.append,
            cwd=workdir,
            env=dict(env) if env is not None else None,
            stdin_fd=stdio.fds[0],
            stdout_fd=stdio.fds[1],
            stderr_fd=stdio.fds[2],
            timeout=timeout,
            on_event=events.append,  # list.append is atomic: the drain thread calls it
            # The API may run on any thread; only the CLI owns the process's signals.
            forward_signals=False,
            # Called again and again: the next call's network namespace is made while
            # this one's trail is sealed (issue 19).
            spare_netns=True,
        )
        outcome = run_session_result(options)
        stdout, stderr = stdio.collect()

    sid = outcome.session
    decisions: list[dict[str, Any]] = []
    if sid is not None:
        decisions.append({"type": "session_start", "session": sid, **outcome.start})
        decisions.extend({**e.to_entry(), "type": "decision", "session": sid} for e in events)
        decisions.append(
            {
                "type": "session_end",
                "session": sid,
                "exit_status": outcome.exit_code,
                "counts": dict(outcome.counts),
                "ts": time.time(),
            }
        )
    if outcome.timed_out:
        exc = subprocess.TimeoutExpired(args, timeout or 0.0, output=stdout, stderr=stderr)
        exc.decisions = decisions  # type: ignore[attr-defined]
        raise exc
    return RunResult(
        args=args,
        returncode=outcome.exit_code,
        stdout=stdout,
        stderr=stderr,
        decisions=decisions,
        session=sid,
        audit_dir=outcome.audit_dir,
        warnings=warnings,
        notices=notices,
        events=events,
        denials=[denial_from_event(e, outcome.policy) for e in events if e.denied],
    )


async def run_async(argv: Sequence[str], **kwargs: Any) -> RunResult:
    """`run` for asyncio code: the session runs on a worker thread (asyncio.to_thread),
    the event loop stays free.  Same arguments, result and errors as `run`.

    Cancelling the awaiting task does not stop the sandboxed command (a thread
    cannot be interrupted): pass `timeout` to bound it."""
    import asyncio

    return await asyncio.to_thread(run, argv, **kwargs)


def _check_argv(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, (str, bytes)):
        raise UsageError(
            "run: argv must be a list of strings, e.g. ['npm', 'test'] "
            "(to run a shell command line, pass ['sh', '-c', line])"
        )
    args: list[object] = [os.fspath(a) for a in argv]
    if not args:
        # The CLI's message for the same mistake (sandbox.cli.cmd_run).
        raise UsageError(
            "run: no command given (usage: landgate run [--policy FILE] -- CMD [ARG...])"
        )
    out: list[str] = []
    for a in args:
        if not isinstance(a, str):
            raise UsageError(f"run: argv items must be str, got {type(a).__name__}")
        if "\0" in a:
            raise UsageError("run: argv items must not contain NUL bytes")
        out.append(a)
    return out


def _policy_value(policy: object) -> Policy | str | None:
    if policy is None or isinstance(policy, str):
        return policy
    if isinstance(policy, os.PathLike):
        return str(os.fspath(policy))
    from sandbox.policy import Policy

    if isinstance(policy, Policy):
        return policy
    raise UsageError(
        f"run: policy must be a sandbox.Policy, a path or a preset name, "
        f"not {type(policy).__name__}"
    )


class _Stdio:
    """fds 0-2 for the command: a memfd holding `input`, memfds capturing output."""

    def __init__(self, input: bytes | str | None, capture: bool) -> None:
        self.fds: list[int | None] = [None, None, None]
        self._owned: list[int] = []
        if input is not None:
            data = input.encode() if isinstance(input, str) else bytes(input)
            fd = self._memfd("landgate-stdin")
            self._write_all(fd, data)
            os.lseek(fd, 0, os.SEEK_SET)
            self.fds[0] = fd
        if capture:
            self.fds[1] = self._memfd("landgate-stdout")
            self.fds[2] = self._memfd("landgate-stderr")
        self.capture = capture

    def _memfd(self, name: str) -> int:
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self._owned.append(fd)
        return fd

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def collect(self) -> tuple[bytes | None, bytes | None]:
        if not self.capture:
            return None, None
        return self._read(self.fds[1]), self._read(self.fds[2])

    @staticmethod
    def _read(fd: int | None) -> bytes:
        assert fd is not None
        os.lseek(fd, 0, os.SEEK_SET)
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._owned:
            try:
                os.close(fd)
            except OSError:
                pass
