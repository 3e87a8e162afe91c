"""Peers landgate is measured against: how to install each one, how to run a
command under it, and why it cannot be measured when it cannot.

Two kinds of tool:

* command-line tools (bare exec, bwrap, firejail, srt, `landgate run`): the
  harness times `subprocess.run(tool.wrap(argv), check=False)` from its own process;
* in-process tools (sandlock's `Sandbox.run`, landgate's `sandbox.run`): a
  long-lived worker process (bench/_worker.py, run by the tool's own Python)
  times the sandboxed launch and a plain `subprocess.run` of the same argv in
  the same process, so the comparison is like for like.

Nothing here is silently skipped: a tool that cannot be installed or cannot
run a workload carries a one-line `reason` that ends up in the results.
Peers are installed under bench/.peers/ (gitignored), never system-wide,
except the Debian packages `make bench` asks apt for.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_DIR = BENCH / ".peers"
SANDLOCK_VENV = PEERS_DIR / "sandlock-venv"
SRT_DIR = PEERS_DIR / "srt"
SRT_BIN = SRT_DIR / "node_modules" / ".bin" / "srt"
LANDGATE_VENV_PY = ROOT / ".venv" / "bin" / "python"
LANDGATE_BIN = ROOT / ".venv" / "bin" / "landgate"

SRT_PACKAGE = "@anthropic-ai/sandbox-runtime"
SANDLOCK_PACKAGE = "sandlock"


def _tail(text: str | bytes, limit: int = 200) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    out = lines[-1] if lines else ""
    return out[-limit:]


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run an install or probe step, capturing its text output; the caller reads returncode."""
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)


def _cmd_output(argv: list[str], timeout: float = 20) -> str | None:
    try:
        proc = _run(argv, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (proc.stdout or proc.stderr).strip()
    return out.splitlines()[0] if out else None


# --------------------------------------------------------------------------
# installation (idempotent)


def install_sandlock(log: Callable[[str], None]) -> tuple[bool, str]:
    """sandlock from PyPI into its own venv; returns (ok, version or reason)."""
    py = SANDLOCK_VENV / "bin" / "python"
    if not py.exists():
        PEERS_DIR.mkdir(parents=True, exist_ok=True)
        log(f"installing {SANDLOCK_PACKAGE} into {SANDLOCK_VENV.relative_to(ROOT)}")
        proc = _run([sys.executable, "-m", "venv", "--clear", str(SANDLOCK_VENV)])
        # The harness may run under the project venv; venv's interpreter is what we want.
        if proc.returncode != 0:
            return False, f"python -m venv failed: {_tail(proc.stderr)}"
    version_probe = [str(py), "-c", "import sandlock; print(sandlock.__version__)"]
    probe = _run(version_probe)
    if probe.returncode != 0:
        proc = _run([str(py), "-m", "pip", "install", "-q", SANDLOCK_PACKAGE])
        if proc.returncode != 0:
            return False, f"pip install {SANDLOCK_PACKAGE} failed: {_tail(proc.stderr)}"
        probe = _run(version_probe)
        if probe.returncode != 0:
            return False, f"import sandlock failed: {_tail(probe.stderr)}"
    return True, probe.stdout.strip()


def install_srt(log: Callable[[str], None]) -> tuple[bool, str]:
    """srt from npm into bench/.peers/srt; returns (ok, version or reason)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        return False, "node/npm not installed (srt is an npm package)"
    for tool in ("bwrap", "socat", "rg"):
        if shutil.which(tool) is None:
            return False, f"srt needs {tool} (Debian: bubblewrap, socat, ripgrep) and it is missing"
    if not SRT_BIN.exists():
        SRT_DIR.mkdir(parents=True, exist_ok=True)
        log(f"installing {SRT_PACKAGE} with npm into {SRT_DIR.relative_to(ROOT)}")
        proc = _run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", SRT_PACKAGE], cwd=SRT_DIR
        )
        if proc.returncode != 0 or not SRT_BIN.exists():
            return False, f"npm install {SRT_PACKAGE} failed: {_tail(proc.stderr or proc.stdout)}"
    pkg = SRT_DIR / "node_modules" / "@anthropic-ai" / "sandbox-runtime" / "package.json"
    try:
        return True, json.loads(pkg.read_text())["version"]
    except (OSError, ValueError, KeyError) as exc:
        return True, f"unknown ({exc})"


# --------------------------------------------------------------------------
# tools


@dataclass
class Tool:
    """One way of running a command: bare, under a peer, or under landgate."""

    name: str
    kind: str  # "cli" or "inprocess"
    version: str = ""
    available: bool = True
    reason: str = ""  # why it is unavailable
    note: str = ""  # what the configuration is, shown in RESULTS.md
    # cli: argv -> full argv; inprocess: the worker's Python and backend name
    wrap: Callable[[list[str], Workload], list[str]] | None = None
    python: str = ""
    backend: str = ""
    # workload -> why this tool is expected to fail it; the warm-up still runs, and if it
    # fails the explanation is appended to the measured error (if it passes, it is timed)
    explain: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "available": self.available,
            "reason": self.reason,
            "note": self.note,
            "explain": dict(self.explain),
        }


@dataclass
class Workload:
    """A command every tool runs, plus what a policy must grant for it."""

    name: str
    title: str
    argv: list[str]
    rounds: int
    read_paths: list[str] = field(default_factory=list)
    exec_commands: list[str] = field(default_factory=list)  # landgate shell_exec allows
    connect_port: int | None = None


def bare_tool() -> Tool:
    return Tool(
        name="bare",
        kind="cli",
        version="",
        note="subprocess.run(argv) from the harness",
        wrap=lambda argv, wl: list(argv),
    )


def bwrap_tool() -> Tool:
    path = shutil.which("bwrap")
    if path is None:
        return Tool(
            name="bwrap",
            kind="cli",
            available=False,
            reason="bwrap not installed (Debian package bubblewrap)",
        )
    return Tool(
        name="bwrap",
        kind="cli",
        version=_cmd_output([path, "--version"]) or "",
        note="bwrap --ro-bind / / --dev /dev --proc /proc",
        wrap=lambda argv, wl: [
            path,
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            *argv,
        ],
    )


def firejail_tool() -> Tool:
    path = shutil.which("firejail")
    if path is None:
        return Tool(
            name="firejail",
            kind="cli",
            available=False,
            reason="firejail not installed (Debian package firejail)",
        )
    return Tool(
        name="firejail",
        kind="cli",
        version=_cmd_output([path, "--version"]) or "",
        note="firejail --noprofile --quiet",
        wrap=lambda argv, wl: [path, "--noprofile", "--quiet", *argv],
    )


def srt_tool(log: Callable[[str], None], settings_path: Path) -> Tool:
    ok, info = install_srt(log)
    if not ok:
        return Tool(name="srt", kind="cli", available=False, reason=info)
    # A settings file of our own so that ~/.srt-settings.json cannot change the run.
    settings_path.write_text(
        json.dumps(
            {
                "network": {"allowedDomains": [], "deniedDomains": []},
                "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []},
            }
        )
    )
    srt = str(SRT_BIN)
    node = _cmd_output(["node", "--version"]) or "?"
    tool = Tool(
        name="srt",
        kind="cli",
        version=f"{info} (node {node})",
        note="srt --settings <bench settings: no network, no writes>; "
        "bwrap + seccomp, launched by node",
        wrap=lambda argv, wl: [srt, "--settings", str(settings_path), *argv],
    )
    tool.explain["connect_loop"] = (
        "expected: on Linux srt runs the command in its own network namespace whose only way "
        "out is srt's HTTP/SOCKS proxies (unix sockets bind-mounted in); a raw TCP connect to "
        "the host's loopback server cannot be expressed in its settings (allowLocalBinding is "
        "macOS-only)"
    )
    return tool


def sandlock_tool(log: Callable[[str], None]) -> Tool:
    ok, info = install_sandlock(log)
    if not ok:
        return Tool(name="sandlock", kind="inprocess", available=False, reason=info)
    return Tool(
        name="sandlock",
        kind="inprocess",
        version=info,
        note="sandlock.Sandbox(fs_readable=system dirs + workload paths, net_allow=loopback port)"
        ".run(argv) in a worker, vs subprocess.run in that worker",
        python=str(SANDLOCK_VENV / "bin" / "python"),
        backend="sandlock",
    )


def landgate_version() -> str:
    out = _cmd_output([str(LANDGATE_VENV_PY), "-c", "import sandbox; print(sandbox.__version__)"])
    return out or "?"


def landgate_cli_tool(policy_for: Callable[[Workload], Path], audit_dir: Path) -> Tool:
    if not LANDGATE_BIN.exists():
        return Tool(
            name="landgate",
            kind="cli",
            available=False,
            reason=f"{LANDGATE_BIN.relative_to(ROOT)} missing (run `make install`)",
        )
    probe = _run([str(LANDGATE_VENV_PY), "-c", "import sandbox.session"])
    if probe.returncode != 0:
        return Tool(
            name="landgate",
            kind="cli",
            available=False,
            reason=f"sandbox.session not importable: {_tail(probe.stderr)}",
        )
    lg = str(LANDGATE_BIN)
    return Tool(
        name="landgate",
        kind="cli",
        version=landgate_version(),
        note="landgate run --policy <bench policy: reads, exec allow-list, loopback port> "
        "(exec gating on; includes Python start-up)",
        wrap=lambda argv, wl: [
            lg,
            "run",
            "--policy",
            str(policy_for(wl)),
            "--audit",
            str(audit_dir),
            "--",
            *argv,
        ],
    )


def landgate_api_tool() -> Tool:
    probe = _run([str(LANDGATE_VENV_PY), "-c", "import sandbox.api, sandbox.session"])
    if probe.returncode != 0:
        return Tool(
            name="landgate-api",
            kind="inprocess",
            available=False,
            reason=f"sandbox.api / sandbox.session not importable: {_tail(probe.stderr)}",
        )
    return Tool(
        name="landgate-api",
        kind="inprocess",
        version=landgate_version(),
        note="sandbox.run(argv, policy=<bench policy>) in a worker, vs subprocess.run there",
        python=str(LANDGATE_VENV_PY),
        backend="landgate",
    )


# --------------------------------------------------------------------------
# in-process workers


class Worker:
    """A long-lived process that times launches in-process (bench/_worker.py)."""

    def __init__(self, tool: Tool, config: dict[str, Any]) -> None:
        self.tool = tool
        self.proc = subprocess.Popen(
            [tool.python, str(BENCH / "_worker.py"), tool.backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )
        reply = self.call({"op": "configure", **config})
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error", "worker failed to configure"))

    def call(self, request: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"worker exited: {_tail(err)}")
        if time.monotonic() > deadline:
            raise RuntimeError("worker timed out")
        return json.loads(line)

    def time_once(self, workload: Workload, variant: str) -> tuple[float, int, str]:
        reply = self.call(
            {"op": "run", "workload": workload.name, "argv": workload.argv, "variant": variant}
        )
        if "error" in reply:
            return 0.0, -1, reply["error"]
        return float(reply["seconds"]), int(reply["returncode"]), reply.get("stderr", "")

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
