"""Fixtures for the supervisor tests: a stand-in launcher and policies built in code.

`spawn` (helpers/spawn.c) installs a seccomp filter with a user-notification
listener and execs the command once the supervisor runs, as the launcher
does; `supervised(...)` runs one command under a Supervisor and returns its
exit status, stderr and the decision events.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import scaled  # tests/conftest.py

from sandbox.audit.event import DecisionEvent
from sandbox.policy.model import (
    ActionBlock,
    CommandPattern,
    Destination,
    Enforcement,
    Environment,
    Policy,
    Rule,
    SourceRef,
)

HELPERS = Path(__file__).parent / "helpers"
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_pidfd_getfd = 438


def _dup_to(a: int, fd_a: int, b: int, fd_b: int) -> None:
    os.dup2(a, fd_a)
    os.dup2(b, fd_b)


def pidfd_getfd(pid: int, fd: int) -> int:
    pidfd = os.pidfd_open(pid)
    try:
        r = _libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return int(r)
    finally:
        os.close(pidfd)


@pytest.fixture(scope="session")
def bins() -> Iterator[Path]:
    """Compile the test helpers once per session."""
    d = Path(tempfile.mkdtemp(prefix="landgate-sup-bins-", dir="/tmp"))
    os.chmod(d, 0o755)
    for src in HELPERS.glob("*.c"):
        out = d / src.stem
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(out), str(src)], check=True)
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


def _src(line: int) -> SourceRef:
    return SourceRef("policy.yaml", line, 5)


def make_policy(
    exec_rules: Sequence[tuple] = (),
    net_rules: Sequence[tuple] = (),
    exec_default: str = "deny",
    net_default: str = "deny",
    file_rules: Sequence[tuple] = (),
    mode: str = "enforce",
) -> Policy:
    """exec_rules: (command, effect[, inherit]); net_rules: (Destination, effect);
    file_rules: (action, PathPattern, effect)."""
    blocks: dict[str, ActionBlock] = {}
    rules: list[Rule] = []
    for i, r in enumerate(exec_rules, 1):
        cmd, eff = r[0], r[1]
        inherit = r[2] if len(r) > 2 else True
        rules.append(
            Rule(
                action="shell_exec",
                index=i,
                effect=eff,
                pattern=cmd,
                source=_src(10 + i),
                command=CommandPattern(cmd, cmd, cmd.split(" ")[0]),
                inherit=inherit,
            )
        )
    blocks["shell_exec"] = ActionBlock("shell_exec", exec_default, tuple(rules), _src(9), _src(9))
    nrules = [
        Rule(
            action="network", index=i, effect=eff, pattern=d.raw, source=_src(40 + i), destination=d
        )
        for i, (d, eff) in enumerate(net_rules, 1)
    ]
    blocks["network"] = ActionBlock("network", net_default, tuple(nrules), _src(39), _src(39))
    for action in ("file_read", "file_write"):
        frules = [
            Rule(action=action, index=i, effect=eff, pattern=p.raw, source=_src(70 + i), path=p)
            for i, (a, p, eff) in enumerate(file_rules, 1)
            if a == action
        ]
        blocks[action] = ActionBlock(action, "allow", tuple(frules), _src(69), _src(69))
    return Policy(
        path=Path("/tmp/policy.yaml"),
        sha256="0" * 64,
        version=1,
        mode=mode,  # type: ignore[arg-type]
        workspace=Path("/tmp"),
        home=Path("/root"),
        extends=(),
        blocks=blocks,
        environment=Environment(),
        enforcement=Enforcement(),
    )


def dest(raw: str, kind: str, **kw: Any) -> Destination:
    return Destination(raw=raw, kind=kind, **kw)  # type: ignore[arg-type]


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes
    events: list[DecisionEvent] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def decisions(self, action: str | None = None) -> list[tuple[str, str]]:
        return [(e.target, e.result) for e in self.events if action is None or e.action == action]


class Launch:
    """A process started under `spawn` with a running Supervisor."""

    def __init__(
        self,
        bins: Path,
        argv: Sequence[str],
        policy: Policy,
        *,
        simulate: bool = False,
        open_check: bool = False,
        plan_info: dict | None = None,
        cwd: str | None = None,
        env: dict | None = None,
        stdin: Any = subprocess.DEVNULL,
        names: dict[str, tuple[str, ...]] | None = None,
        spawn_flags: Sequence[str] = (),
    ) -> None:
        from sandbox.supervise import Supervisor, compile_tables

        self.events: list[DecisionEvent] = []
        self._lock = threading.Lock()
        info = dict(plan_info or {})
        if open_check:
            info.setdefault("open_check", True)
            info.setdefault("landlock", "absent")
        self.tables = compile_tables(policy, info)
        r3, w3 = os.pipe()
        r4, w4 = os.pipe()
        # move the child's ends above 10 so dup2 onto 3 and 4 cannot clobber them
        for name in ("w3", "r4"):
            fd = locals()[name]
            high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            if name == "w3":
                w3 = high
            else:
                r4 = high
        self.err_r, err_w = os.pipe()
        os.set_blocking(self.err_r, True)
        args = (
            [str(bins / "spawn")]
            + (["--open"] if open_check else [])
            + list(spawn_flags)
            + ["--", *argv]
        )
        self.proc = subprocess.Popen(
            args,
            close_fds=False,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=err_w,
            cwd=cwd,
            env=env,
            # The helper expects its pipes at fds 3 and 4; the child runs only dup2 here.
            preexec_fn=lambda: _dup_to(w3, 3, r4, 4),  # noqa: PLW1509
        )
        os.close(err_w)
        os.close(w3)
        os.close(r4)
        num = b""
        while not num.endswith(b"\n"):
            chunk = os.read(r3, 32)
            if not chunk:
                raise RuntimeError("spawn helper died before handing over its listener")
            num += chunk
        os.close(r3)
        listener = pidfd_getfd(self.proc.pid, int(num))
        self.sup = Supervisor(
            listener,
            self.tables,
            root_pid=self.proc.pid,
            simulate=simulate,
            on_event=self._on_event,
            stderr_fd=self._stderr_dup(),
        )
        self._sup_stderr = self.sup._stderr_fd
        self.sup.start()
        for ip, ns in (names or {}).items():
            self.sup.add_names(ip, ns)
        self._stderr_chunks: list[bytes] = []
        self._err_thread = threading.Thread(target=self._read_err, daemon=True)
        self._err_thread.start()
        os.write(w4, b"g")
        os.close(w4)

    def _stderr_dup(self) -> int:
        # The sandbox's stderr: the supervisor writes denial lines there, like the
        # launcher's shared terminal.  Reopen the pipe's write end through /proc.
        return os.open(f"/proc/{self.proc.pid}/fd/2", os.O_WRONLY)

    def _read_err(self) -> None:
        while True:
            b = os.read(self.err_r, 65536)
            if not b:
                return
            self._stderr_chunks.append(b)

    def _on_event(self, ev: DecisionEvent) -> None:
        with self._lock:
            self.events.append(ev)

    def wait(self, timeout: float = 60) -> Result:
        timeout = scaled(timeout)
        out, _ = self.proc.communicate(timeout=timeout)
        self.sup.join(timeout=timeout)
        os.close(self._sup_stderr)
        self._err_thread.join(timeout=5)
        os.close(self.err_r)
        return Result(
            self.proc.returncode,
            out or b"",
            b"".join(self._stderr_chunks),
            list(self.events),
            self.sup.counts,
        )


@pytest.fixture
def supervised(bins: Path):
    launches: list[Launch] = []

    def run(argv: Sequence[str], policy: Policy, *, timeout: float = 60, **kw: Any) -> Result:
        lau = Launch(bins, argv, policy, **kw)
        launches.append(lau)
        return lau.wait(timeout)

    run.start = lambda argv, policy, **kw: (
        launches.append(Launch(bins, argv, policy, **kw)) or launches[-1]
    )  # type: ignore[attr-defined]
    yield run
    for lau in launches:
        if lau.proc.poll() is None:
            lau.proc.kill()


@pytest.fixture
def key_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """landgate's key directory as a first session leaves it (its key, an empty witness/),
    at tmp_path/config/landgate: $XDG_CONFIG_HOME points there, where the tables' key
    directory deny (a protected path) looks for it."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    kd = tmp_path / "config" / "landgate"
    (kd / "witness").mkdir(parents=True)
    (kd / "audit.key").write_bytes(b"k" * 32)
    return kd
