"""`sandbox.Session`: many commands under one policy, one launch, one audit session.

    with sandbox.Session(policy="coding-agent", cwd=repo) as s:
        r = s.run("npm test")          # a shell command line (or an argv list)
        r.returncode, r.stdout, r.denied

Launch once, run many: the session launches one sandboxed POSIX shell
(`sh -s`, judged by the policy like any root command) reading its commands
from a pipe, under every layer `landgate run` applies (Landlock, the
supervisor, the network layer), with one audit session for all of them.  Each
`run` writes one framed request to that shell:

    ( cd -- CWD && eval 'COMMAND' ) <&9 9<&-; printf '\\n%s %d\\n' NONCE $?; ...

and reads stdout and stderr up to the per-session random NONCE line, which
carries the exit status.  `cd`, `eval` and `printf` are shell builtins (no
exec, nothing for the supervisor to judge); every program COMMAND starts is
an exec the supervisor judges, every file it opens meets Landlock.

Denials are attributed to the command whose time window contains the
decision.  The supervisor hands its records over in batches (5 ms); instead of
waiting that out, `run` fences each command: once the end marker is read (every
process of the command has ended, and the supervisor pushes a decision's record
before it answers the syscall, so all of them are in its ring), it has the
supervisor drain its ring at once and waits for that pass to deliver
(`Supervisor.flush`).  No sleep, and no record of the command left for the
next one.  The kernel's own Landlock records (kauditd) are asynchronous and not
fenced: they are attributed by their timestamp if they arrived in time, and are
always in `Session.denied` and the trail.  Commands
run one at a time (a lock); a command that outlives its `timeout` ends the
whole session (its tree is killed, as `run`'s timeout does): later `run`s
raise.  Landlock's own refusals are silent in the kernel and appear in
`denied` only where a supervisor check or carve-out records them.
"""

from __future__ import annotations

import os
import select
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

from sandbox.digest import token_hex
from sandbox.errors import LandgateError, LaunchError, UsageError
from sandbox.policy.denial import denial_from_event
from sandbox.session.recorder import EventSink

_SETTLE = 0.015  # > the supervisor's drain batch (5 ms): the fallback when a fence fails
_FENCE_TIMEOUT = 5.0  # seconds; a drainer that does not answer by then is stuck
_START_TIMEOUT = 30.0  # seconds for the sandbox to come up and answer the first request
_NULL_FD = 9  # the shell's /dev/null, every command's stdin (POSIX shells redirect 0-9)


class _Command:
    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.t1: float | None = None
        self.events: list[Any] = []


class Session:
    """One sandboxed shell serving many commands; see the module docstring."""

    def __init__(
        self,
        policy: Any = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        audit: str | os.PathLike[str] | None = None,
        simulate: bool = False,
        shell: str = "sh",
        settle: float | None = None,
    ) -> None:
        """settle: None (the default) fences each command (see the module docstring);
        a number of seconds waits that long after each command instead (the old way,
        kept for comparison); 0 neither fences nor waits, and records still in flight
        then show only in `Session.denied` and the trail."""
        self._cwd = os.fspath(cwd) if cwd is not None else os.getcwd()
        if not os.path.isdir(self._cwd):
            raise UsageError(f"Session: cwd {self._cwd} is not a directory")
        self._policy_arg = policy
        self._env = dict(env) if env is not None else None
        self._audit = os.fspath(audit) if audit is not None else None
        self._simulate = simulate
        self._shell = shell
        self._settle = None if settle is None else max(0.0, float(settle))
        self._sink = EventSink(self._on_event)
        self.fence_failures = 0  # fences that timed out (the fixed wait was used instead)
        self._nonce = "__landgate_" + token_hex(16)
        self._lock = threading.Lock()  # one command at a time
        self._ev_lock = threading.Lock()
        self._commands: list[_Command] = []
        self._session_events: list[Any] = []
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._outcome: Any = None
        self._error: BaseException | None = None
        self._closed = False
        self._ready = False  # the shell has answered a first, empty request
        self._fds: dict[str, int] = {}
        self._loaded: Any = None  # the Policy, once started
        self.warnings: list[str] = []
        self.notices: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Launch the sandboxed shell (done by the first `run` or `with` if not yet)."""
        if self._thread is not None:
            return self
        if self._closed:
            raise UsageError("Session: closed")
        from sandbox.audit import default_audit_dir
        from sandbox.session.options import load_session_policy
        from sandbox.session.run import RunOptions, run_session_result

        # Loaded here, once: the session enforces this object and `denied` explains with it.
        audit_dir = self._audit or str(default_audit_dir())
        self._loaded = load_session_policy(
            RunOptions(argv=[self._shell], policy=self._policy_arg, audit_dir=audit_dir), self._cwd
        )
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self._fds = {"in_w": in_w, "out_r": out_r, "err_r": err_r}
        child_ends = (in_r, out_w, err_w)
        options = RunOptions(
            argv=[self._shell, "-s"],
            policy=self._loaded,
            audit_dir=self._audit,
            simulate=self._simulate,
            warn=self.warnings.append,
            notice=self.notices.append,
            cwd=self._cwd,
            env=self._env,
            stdin_fd=in_r,
            stdout_fd=out_w,
            stderr_fd=err_w,
            on_event=self._sink,
            forward_signals=False,
            cancel=self._cancel,
        )

        def serve() -> None:
            try:
                self._outcome = run_session_result(options)
            except BaseException as exc:  # noqa: BLE001 - a thread's end: handed to run()/close()
                self._error = exc
            finally:
                # The shell's ends: closed once the session is over, so that our reads see EOF.
                for fd in child_ends:
                    os.close(fd)

        self._thread = threading.Thread(target=serve, name="landgate-session", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """End the shell (EOF on its input), wait for the session's end entry."""
        if self._closed:
            return
        self._closed = True
        if "in_w" in self._fds:
            # An explicit `exit`: EOF alone is not enough, the sandbox's init (a fork of this
            # process) may hold a copy of the pipe's write end.
            try:
                os.write(self._fds["in_w"], b"exit 0\n")
            except OSError:
                pass  # the shell is gone already
            os.close(self._fds.pop("in_w"))
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT)
            if self._thread.is_alive():
                self._cancel.set()
                self._thread.join()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._error is not None and not isinstance(self._error, subprocess.TimeoutExpired):
            raise self._error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def session(self) -> str | None:
        """The audit trail's session id (known once the session has ended)."""
        return None if self._outcome is None else self._outcome.session

    @property
    def denied(self) -> list[Any]:
        """Every denial of the session so far, as `Denial`s."""
        with self._ev_lock:
            events = list(self._session_events)
        return [denial_from_event(e, self._policy()) for e in events if e.denied]

    # ------------------------------------------------------------------ commands

    def run(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run one command line (or argv list) in the session; returns a RunResult."""
        from sandbox.session.result import RunResult

        line = command if isinstance(command, str) else shlex.join(os.fspath(a) for a in command)
        if not line.strip() or "\x00" in line:
            raise UsageError("Session.run: empty command or NUL byte in it")
        if timeout is not None and timeout <= 0:
            raise UsageError(f"Session.run: timeout must be positive, got {timeout!r}")
        workdir = os.fspath(cwd) if cwd is not None else self._cwd
        with self._lock:
            self.start()
            if self._closed or self._cancel.is_set():
                raise LaunchError("Session: the session has ended")
            if not self._ready:
                # The shell's own start (its exec's record) belongs to no command: an
                # empty request, answered and fenced, before the first command's window.
                self._write(self._request(None).encode())
                try:
                    self._read_reply(_START_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._cancel.set()
                    raise LaunchError(
                        f"Session: the sandboxed shell did not answer within {_START_TIMEOUT:g} s"
                    ) from None
                self._hand_over()
                self._ready = True
            cmd = _Command(time.time())
            with self._ev_lock:
                self._commands.append(cmd)
            stdin = f"<&{_NULL_FD} {_NULL_FD}<&-"  # the shell's /dev/null (see _request)
            request = self._request(
                f"( cd -- {shlex.quote(workdir)} && eval {shlex.quote(line)} ) {stdin}"
            )
            try:
                self._write(request.encode())
                stdout, stderr, rc = self._read_reply(timeout)
            except subprocess.TimeoutExpired:
                self._cancel.set()  # ends the tree: the command cannot be stopped alone
                raise
            self._hand_over()
            with self._ev_lock:
                cmd.t1 = time.time()
                events = list(cmd.events)
        policy = self._policy()
        return RunResult(
            args=[self._shell, "-c", line],
            returncode=rc,
            stdout=stdout,
            stderr=stderr,
            decisions=[{**e.to_entry(), "type": "decision"} for e in events],
            events=events,
            denials=[denial_from_event(e, policy) for e in events if e.denied],
        )

    # ------------------------------------------------------------------ plumbing

    def _policy(self) -> Any:
        return self._loaded

    def _request(self, command: str | None) -> str:
        """One framed request: the command (None: the shell's set-up), then the end markers.

        The set-up opens /dev/null once, on _NULL_FD: each command's stdin is a dup of it
        (closed for the command itself), not an open of its own, which the open check
        would judge on every command (~0.1 ms of supervised open).  `command exec` does
        not end the shell if the open fails; each command's `<&9` then fails instead."""
        run = f"{command}; " if command is not None else f"command exec {_NULL_FD}</dev/null; "
        return f"{run}printf '\\n%s %d\\n' {self._nonce} $?; printf '\\n%s\\n' {self._nonce} >&2\n"

    def _hand_over(self) -> None:
        """Every record of the command that just ended delivered to `_on_event`."""
        if self._settle is None:
            if self._sink.flush(_FENCE_TIMEOUT):
                return
            # No fence (no supervisor at this rung, or it did not answer): never fewer
            # records than before the fence existed, the batch interval waited out.
            self.fence_failures += 1
            time.sleep(_SETTLE)
        elif self._settle:
            time.sleep(self._settle)

    def _on_event(self, ev: Any) -> None:
        with self._ev_lock:
            self._session_events.append(ev)
            # The command whose window holds the decision (the last one still open,
            # or the one that had started before it was decided).
            for cmd in reversed(self._commands):
                if ev.ts >= cmd.t0 and (cmd.t1 is None or ev.ts <= cmd.t1):
                    cmd.events.append(ev)
                    break

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._fds["in_w"], view)
            except BrokenPipeError:
                raise self._ended("the sandboxed shell exited") from None
            view = view[n:]

    def _ended(self, what: str) -> LandgateError:
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._error is not None:
            return (
                self._error
                if isinstance(self._error, LandgateError)
                else LaunchError(f"Session: {self._error}")
            )
        detail = "; ".join(self.notices[-2:])
        return LaunchError(f"Session: {what}" + (f" ({detail})" if detail else ""))

    def _read_reply(self, timeout: float | None) -> tuple[bytes, bytes, int]:
        out_mark = f"\n{self._nonce} ".encode()
        err_mark = f"\n{self._nonce}\n".encode()
        out, err = bytearray(), bytearray()
        rc: int | None = None
        err_done = False
        deadline = None if timeout is None else time.monotonic() + timeout
        fds = [self._fds["out_r"], self._fds["err_r"]]
        while rc is None or not err_done:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise subprocess.TimeoutExpired(
                    ["sh", "-c"], timeout or 0.0, bytes(out), bytes(err)
                )
            ready, _, _ = select.select(fds, [], [], wait)
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise self._ended("the sandboxed shell exited")
                buf = out if fd == fds[0] else err
                buf += chunk
            if rc is None:
                i = out.find(out_mark)
                if i >= 0 and out.endswith(b"\n") and out.find(b"\n", i + len(out_mark)) >= 0:
                    tail = out[i + len(out_mark) :].split(b"\n", 1)[0]
                    rc = int(tail)
                    del out[i:]
            if not err_done:
                j = err.find(err_mark)
                if j >= 0:
                    err_done = True
                    del err[j:]
        return bytes(out), bytes(err), rc
