"""The Python API: run a command under a policy from inside an agent framework.

    import sandbox
    result = sandbox.run(["npm", "test"], policy="policies/coding-agent.yaml",
                         capture_output=True)
    result.returncode, result.stdout, result.denied

`run` calls the same session machinery as `landgate run`
(`sandbox.launch.session.run_session`), never the CLI, so a command is
enforced, audited and exits exactly as it would on the command line, and every
error is the same `LandgateError` with the same message (the CLI prints
`landgate: <message>`; here it is the exception's str()).

The result is `subprocess.CompletedProcess`-like (`args`, `returncode`,
`stdout`, `stderr`, `check_returncode()`), plus `decisions`: the session's
entries read back from the audit trail after the session ended (session
start with the layers in force, every decision, session end).

Input and captured output go through memfds, not pipes: the session blocks
until the command exits, and a memfd never fills up the way a pipe does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, Union

from sandbox.errors import LandgateError, UsageError

if TYPE_CHECKING:
    from sandbox.policy import Policy

PolicyArg = Union["Policy", str, os.PathLike, None]

__all__ = ["RunResult", "run"]

# One session at a time may borrow process-wide state (fds 0-2, cwd, environ)
# when the launcher cannot take them as options; see _Borrowed.
_PROCESS_STATE = threading.Lock()


@dataclass
class RunResult:
    """What `sandbox.run` returns: a CompletedProcess plus the session's decisions."""

    args: list[str]
    returncode: int
    stdout: bytes | None = None
    stderr: bytes | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    session: str | None = None  # the audit trail's session id
    audit_dir: str | None = None
    warnings: list[str] = field(default_factory=list)  # what the CLI prints as "warning:"
    notices: list[str] = field(default_factory=list)  # what the CLI prints as "landgate: ..."

    @property
    def denied(self) -> list[dict[str, Any]]:
        """The decisions that denied (or, under simulation, would have denied) an action."""
        return [d for d in self.decisions if _is_denial(d)]

    def check_returncode(self) -> None:
        if self.returncode:
            raise subprocess.CalledProcessError(
                self.returncode, self.args, self.stdout, self.stderr
            )

    def __repr__(self) -> str:
        parts = [f"args={self.args!r}", f"returncode={self.returncode!r}"]
        if self.stdout is not None:
            parts.append(f"stdout={self.stdout!r}")
        if self.stderr is not None:
            parts.append(f"stderr={self.stderr!r}")
        parts.append(f"decisions=<{len(self.decisions)} entries, {len(self.denied)} denied>")
        return f"RunResult({', '.join(parts)})"


def _is_denial(entry: dict[str, Any]) -> bool:
    if entry.get("type") not in (None, "decision"):
        return False
    for key in ("effect", "result", "decision", "outcome"):
        value = entry.get(key)
        if isinstance(value, dict):
            value = value.get("effect")
        if isinstance(value, str) and value.lower() in (
            "deny",
            "denied",
            "would-deny",
            "would_deny",
        ):
            return True
    return False


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
    args = _check_argv(argv)
    if timeout is not None and timeout <= 0:
        raise UsageError(f"run: timeout must be positive, got {timeout!r}")
    workdir = os.fspath(cwd) if cwd is not None else None
    if workdir is not None and not os.path.isdir(workdir):
        raise UsageError(f"run: cwd {workdir} is not a directory")
    audit_dir = os.fspath(audit) if audit is not None else None
    warnings: list[str] = []
    notices: list[str] = []

    with _Stdio(input, capture_output) as stdio:
        from sandbox.launch import session as session_mod

        opts = _Options(
            session_mod,
            args,
            policy=policy,
            audit_dir=audit_dir,
            simulate=simulate,
            cwd=workdir,
            env=env,
            stdio=stdio,
            timeout=timeout,
            warn=warnings.append,
            notice=notices.append,
        )
        started = time.time()
        watchdog = _Watchdog(timeout if "timeout" in opts.missing else None, started)
        with _Borrowed(opts.missing, cwd=workdir, env=env, stdio=stdio), watchdog:
            outcome = opts.call()
        returncode, session_id = _unpack(outcome)
        stdout, stderr = stdio.collect()

    timed_out = bool(getattr(outcome, "timed_out", False)) or watchdog.fired
    resolved_audit = _audit_dir_of(outcome, audit_dir)
    decisions = _read_session(resolved_audit, session_id, args, started)
    if session_id is None and decisions:
        session_id = decisions[0].get("session")
    if timed_out:
        exc = subprocess.TimeoutExpired(args, timeout or 0.0, output=stdout, stderr=stderr)
        exc.decisions = decisions  # type: ignore[attr-defined]
        raise exc
    return RunResult(
        args=args,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        decisions=decisions,
        session=session_id,
        audit_dir=str(resolved_audit) if resolved_audit else None,
        warnings=warnings,
        notices=notices,
    )


# --------------------------------------------------------------------------
# arguments


def _check_argv(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, (str, bytes)):
        raise UsageError(
            "run: argv must be a list of strings, e.g. ['npm', 'test'] "
            "(to run a shell command line, pass ['sh', '-c', line])"
        )
    args = [os.fspath(a) for a in argv]
    if not args:
        # The CLI's message for the same mistake (sandbox.cli.cmd_run).
        raise UsageError(
            "run: no command given (usage: landgate run [--policy FILE] -- CMD [ARG...])"
        )
    for a in args:
        if not isinstance(a, str):
            raise UsageError(f"run: argv items must be str, got {type(a).__name__}")
        if "\0" in a:
            raise UsageError("run: argv items must not contain NUL bytes")
    return args


class _Options:
    """Build RunOptions with every field the launcher accepts; note what it does not.

    The launcher's RunOptions(argv, policy, audit_dir, simulate, best_effort, warn,
    notice) is the CLI's contract.  The API also needs cwd, env, the three stdio
    fds, a timeout and the session id back; whatever the launcher does not accept
    yet is listed in `missing` and emulated by _Borrowed / _Watchdog / the trail.
    """

    def __init__(
        self,
        session_mod: Any,
        args: list[str],
        *,
        policy: PolicyArg,
        audit_dir: str | None,
        simulate: bool,
        cwd: str | None,
        env: Mapping[str, str] | None,
        stdio: _Stdio,
        timeout: float | None,
        warn: Any,
        notice: Any,
    ) -> None:
        self.mod = session_mod
        cls = session_mod.RunOptions
        names = (
            {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        )
        kwargs: dict[str, Any] = {
            "argv": args,
            "policy": self._policy_value(policy, names),
            "audit_dir": audit_dir,
            "simulate": simulate,
            "best_effort": False,
            "warn": warn,
            "notice": notice,
        }
        wanted: dict[str, Any] = {
            "cwd": cwd,
            "env": dict(env) if env is not None else None,
            "stdin_fd": stdio.fds[0],
            "stdout_fd": stdio.fds[1],
            "stderr_fd": stdio.fds[2],
            "timeout": timeout,
            # The API may run on any thread; only the CLI owns the process's signals.
            "forward_signals": False,
        }
        self.missing: set[str] = set()
        for name, value in wanted.items():
            if name in names:
                # None for an fd means the launcher's "inherit landgate's own" (-1).
                kwargs[name] = -1 if value is None and name.endswith("_fd") else value
            elif value is not None and name != "forward_signals":
                self.missing.add(name)
        self.options = cls(**kwargs)

    @staticmethod
    def _policy_value(policy: PolicyArg, names: set[str]) -> Any:
        if policy is None or isinstance(policy, str):
            return policy
        if isinstance(policy, os.PathLike):
            return os.fspath(policy)
        from sandbox.policy import Policy

        if isinstance(policy, Policy):
            return policy
        raise UsageError(
            f"run: policy must be a sandbox.Policy, a path or a preset name, "
            f"not {type(policy).__name__}"
        )

    def call(self) -> Any:
        # Prefer an entry point that returns the session id with the status.
        for name in ("run_session_result", "run_session_detailed"):
            fn = getattr(self.mod, name, None)
            if fn is not None:
                return fn(self.options)
        return self.mod.run_session(self.options)


def _unpack(outcome: Any) -> tuple[int, str | None]:
    if isinstance(outcome, int):
        return outcome, None
    code = getattr(outcome, "returncode", None)
    if code is None:
        code = getattr(outcome, "exit_code", None)
    if code is None:
        raise LandgateError(
            f"internal: the launcher returned {type(outcome).__name__}, not an exit status"
        )
    sid = getattr(outcome, "session", None) or getattr(outcome, "session_id", None)
    return int(code), sid


def _audit_dir_of(outcome: Any, audit_dir: str | None) -> Path | None:
    d = getattr(outcome, "audit_dir", None) or audit_dir
    if d:
        return Path(d)
    try:
        from sandbox.audit.paths import default_audit_dir
    except ImportError:
        return None
    return default_audit_dir()


# --------------------------------------------------------------------------
# stdio through memfds


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


class _Borrowed:
    """Emulate cwd/env/stdio options the launcher lacks by lending process state.

    The child inherits fds 0-2, the working directory and the environment at
    spawn time, so the session runs with them swapped in and they are put back
    afterwards.  This is process-wide: a lock serialises such sessions and other
    threads briefly see the swapped state.  It disappears as soon as RunOptions
    takes these fields (see the module docstring of sandbox.launch.session).
    """

    def __init__(
        self, missing: set[str], *, cwd: str | None, env: Mapping[str, str] | None, stdio: _Stdio
    ) -> None:
        self.missing = missing
        self.cwd = cwd if "cwd" in missing else None
        self.env = env if "env" in missing else None
        self.fds = [
            fd if f"std{n}_fd" in missing else None
            for fd, n in zip(stdio.fds, ("in", "out", "err"), strict=True)
        ]
        self._saved_fds: list[tuple[int, int]] = []
        self._saved_cwd: int | None = None
        self._saved_env: dict[str, str] | None = None
        self._locked = False

    def __enter__(self) -> Self:
        if self.cwd is None and self.env is None and not any(fd is not None for fd in self.fds):
            return self
        _PROCESS_STATE.acquire()
        self._locked = True
        try:
            if self.cwd is not None:
                self._saved_cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                os.chdir(self.cwd)
            if self.env is not None:
                self._saved_env = dict(os.environ)
                os.environ.clear()
                os.environ.update(self.env)
            for target, fd in enumerate(self.fds):
                if fd is None:
                    continue
                self._saved_fds.append((target, os.dup(target)))
                os.dup2(fd, target, inheritable=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for target, saved in reversed(self._saved_fds):
            os.dup2(saved, target, inheritable=True)
            os.close(saved)
        self._saved_fds.clear()
        if self._saved_env is not None:
            os.environ.clear()
            os.environ.update(self._saved_env)
            self._saved_env = None
        if self._saved_cwd is not None:
            os.fchdir(self._saved_cwd)
            os.close(self._saved_cwd)
            self._saved_cwd = None
        if self._locked:
            self._locked = False
            _PROCESS_STATE.release()


class _Watchdog:
    """Timeout when the launcher has none: kill the session's children of this process.

    The sandbox's init process (and, without a pid namespace, the command) is a
    child of this process that appeared after the session started; SIGKILL to
    init takes the whole pid namespace with it.
    """

    def __init__(self, timeout: float | None, started: float) -> None:
        self.timeout = timeout
        self.fired = False
        self._done = threading.Event()
        self._before: set[int] = set()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if self.timeout is not None:
            self._before = set(_children())
            self._thread = threading.Thread(
                target=self._watch, name="landgate-timeout", daemon=True
            )
            self._thread.start()
        return self

    def _watch(self) -> None:
        assert self.timeout is not None
        if self._done.wait(self.timeout):
            return
        self.fired = True
        while not self._done.is_set():
            for pid in set(_children()) - self._before:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._done.wait(0.05)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def _children() -> Iterator[int]:
    me = os.getpid()
    try:
        tasks = os.listdir(f"/proc/{me}/task")
    except OSError:
        return
    for tid in tasks:
        try:
            with open(f"/proc/{me}/task/{tid}/children") as fh:
                for pid in fh.read().split():
                    yield int(pid)
        except OSError:
            continue


# --------------------------------------------------------------------------
# the session's entries, read back from the trail


def _read_session(
    audit_dir: Path | None, session_id: str | None, args: list[str], started: float
) -> list[dict[str, Any]]:
    if audit_dir is None:
        return []
    try:
        from sandbox.audit.paths import list_segments
    except ImportError:
        return []
    if session_id is not None:
        tail = _read_session_tail(list_segments(audit_dir), session_id)
        if tail is not None:
            return tail
    entries: list[dict[str, Any]] = []
    # Newest segments first: our session is at the tail.
    for _, path in reversed(list_segments(audit_dir)):
        seg: list[dict[str, Any]] = []
        try:
            with open(path, "rb") as fh:
                for line in fh:
                    try:
                        seg.append(json.loads(line))
                    except ValueError:
                        continue  # a torn last line; `landgate audit verify` reports it
        except OSError:
            continue
        entries[:0] = seg
        if session_id is None:
            if any(_is_our_start(e, args, started) for e in seg):
                break
        elif any(e.get("type") == "session_start" and e.get("session") == session_id for e in seg):
            break
    if session_id is None:
        # No id from the launcher: the last session started after us with our argv.
        starts = [e for e in entries if _is_our_start(e, args, started)]
        if not starts:
            return []
        session_id = starts[-1].get("session")
    return [e for e in entries if e.get("session") == session_id and e.get("type") != "checkpoint"]


_TAIL_CHUNK = 64 << 10


def _read_session_tail(
    segments: list[tuple[int, Path]], session_id: str
) -> list[dict[str, Any]] | None:
    """The session's entries, reading the newest segment backwards from its end only as
    far as the session's start line; None when that line is not in the newest segment
    (the caller then reads whole segments)."""
    if not segments:
        return None
    path = segments[-1][1]
    sid = json.dumps(session_id).encode()
    mark = b'"session":' + sid
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        off, buf, chunk = size, b"", _TAIL_CHUNK
        while True:
            new_off = max(0, off - chunk)
            buf = os.pread(fd, off - new_off, new_off) + buf
            off = new_off
            start = _start_line(buf, mark, whole=off == 0)
            if start is not None:
                break
            if off == 0:
                return None
            chunk *= 2
    finally:
        os.close(fd)
    out: list[dict[str, Any]] = []
    for line in buf[start:].splitlines():
        if mark not in line:
            continue  # another session's entry (concurrent sandboxes share the trail)
        try:
            e = json.loads(line)
        except ValueError:
            continue  # a torn last line; `landgate audit verify` reports it
        if e.get("session") == session_id and e.get("type") != "checkpoint":
            out.append(e)
    return out


def _start_line(buf: bytes, mark: bytes, *, whole: bool) -> int | None:
    """Offset in `buf` of the line holding `mark` and `"type":"session_start"`, when it
    lies wholly inside `buf` (its start is after a newline, or `buf` is the whole file)."""
    pos = buf.find(mark)
    while pos >= 0:
        nl = buf.rfind(b"\n", 0, pos)
        if nl < 0 and not whole:
            pos = buf.find(mark, pos + 1)
            continue  # this line starts before what was read
        end = buf.find(b"\n", pos)
        line = buf[nl + 1 : end if end >= 0 else len(buf)]
        if b'"type":"session_start"' in line:
            return nl + 1
        pos = buf.find(mark, end) if end >= 0 else -1
    return None


def _is_our_start(entry: dict[str, Any], args: list[str], started: float) -> bool:
    if entry.get("type") != "session_start":
        return False
    ts = entry.get("ts")
    if isinstance(ts, (int, float)) and ts < started - 1:
        return False
    argv = entry.get("argv") or entry.get("command")
    if isinstance(argv, list):
        return [str(a) for a in argv] == args
    if isinstance(argv, str):
        return argv == " ".join(args) or argv.split(" ")[:1] == args[:1]
    return True
