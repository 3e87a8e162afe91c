"""The agent tools the MCP server and the LangChain tools expose: run, read_file,
write_file, list_dir, each executed under the policy with kernel enforcement.

Two layers, one trail:
  - file tools are first judged at the tool level (`judge`, the one evaluator):
    a denied path is not touched, the model gets the rule and the reason at
    once, and the decision is recorded with the layer `tool-hook`;
  - everything that runs, runs in the sandbox (`sandbox.run`): `run` is a
    shell command line (`sh -c`), read_file is `cat`, write_file is `tee`,
    list_dir is `ls`, so the policy must allow those programs (the bundled
    presets do).  A path or program the policy denies meets Landlock and the
    supervisor there, whatever the tool level said, and those denials come
    back in the result from the session's own records.
`run` is not pre-judged: its denials are the supervisor's (layer exec /
connect), explained with the same evaluator.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.integrations import toolaudit
from sandbox.integrations.judge import Verdict, judge
from sandbox.policy.denial import Denial

MAX_OUTPUT = 256 << 10  # bytes of stdout/stderr handed back to a model per call
DEFAULT_TIMEOUT = 120.0


@dataclass
class ToolResult:
    """What a tool call did, structured for a framework and readable for a model."""

    tool: str
    ok: bool
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    denials: list[Denial] = field(default_factory=list)
    error: str | None = None  # landgate could not run the call (bad input, timeout, ...)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "denials": [d.to_dict() for d in self.denials],
            "error": self.error,
        }

    def to_text(self) -> str:
        """One block of text for a model: the output, then each distinct denial's line."""
        parts: list[str] = []
        if self.error:
            parts.append(f"error: {self.error}")
        if self.exit_code is not None:
            parts.append(f"exit code: {self.exit_code}")
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("stderr:\n" + self.stderr.rstrip("\n"))
        seen: set[str] = set()
        for d in self.denials:
            line = "landgate " + d.line()
            if line not in seen:
                seen.add(line)
                parts.append(line)
        return "\n".join(parts) if parts else "(no output)"


def _text(data: bytes | None) -> str:
    if not data:
        return ""
    out = data[:MAX_OUTPUT].decode("utf-8", "replace")
    if len(data) > MAX_OUTPUT:
        out += f"\n[... {len(data) - MAX_OUTPUT} more bytes cut by landgate]"
    return out


class LandgateTools:
    """The four tools under one policy, workspace and audit trail.  Thread-safe."""

    def __init__(
        self,
        policy: Any = None,
        *,
        workspace: str | os.PathLike[str] | None = None,
        audit: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        integration: str = "api",
        judge_files: bool = True,
    ) -> None:
        from sandbox.audit import default_audit_dir
        from sandbox.session.options import RunOptions, load_session_policy

        self.workspace = os.path.abspath(os.fspath(workspace) if workspace else os.getcwd())
        self.audit = os.fspath(audit) if audit is not None else str(default_audit_dir())
        self.env = env
        self.integration = integration
        # judge_files=False leaves the file tools to the kernel alone (tests use it to show
        # the second layer holds on its own).
        self.judge_files = judge_files
        self.policy = load_session_policy(
            RunOptions(argv=["sh"], policy=policy, audit_dir=self.audit), self.workspace
        )

    # ---------------------------------------------------------------- the tools

    def run(
        self, command: str, cwd: str | None = None, timeout: float | None = DEFAULT_TIMEOUT
    ) -> ToolResult:
        if not isinstance(command, str) or not command.strip():
            return ToolResult("run", False, error="run: command must be a non-empty string")
        return self._sandboxed("run", ["sh", "-c", command], cwd=cwd, timeout=timeout)

    def read_file(self, path: str) -> ToolResult:
        denied = self._judge("read_file", "Read", {"file_path": path})
        if isinstance(denied, ToolResult):
            return denied
        return self._sandboxed("read_file", ["cat", "--", denied])

    def write_file(self, path: str, content: str) -> ToolResult:
        if not isinstance(content, str):
            return ToolResult("write_file", False, error="write_file: content must be a string")
        denied = self._judge("write_file", "Write", {"file_path": path})
        if isinstance(denied, ToolResult):
            return denied
        result = self._sandboxed("write_file", ["tee", "--", denied], stdin=content.encode())
        result.stdout = ""  # tee's copy of the content
        return result

    def list_dir(self, path: str = ".") -> ToolResult:
        denied = self._judge("list_dir", "LS", {"path": path})
        if isinstance(denied, ToolResult):
            return denied
        return self._sandboxed("list_dir", ["ls", "-1Ap", "--", denied])

    # ---------------------------------------------------------------- plumbing

    def _abs(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.workspace, os.path.expanduser(path)))

    def _judge(self, tool: str, as_tool: str, tool_input: dict[str, Any]) -> ToolResult | str:
        """The absolute path to act on, or the ToolResult of a tool-level denial."""
        key = "path" if as_tool == "LS" else "file_path"
        raw = tool_input[key]
        if not isinstance(raw, str) or not raw or "\x00" in raw:
            return ToolResult(tool, False, error=f"{tool}: path must be a non-empty string")
        path = self._abs(raw)
        if not self.judge_files:
            return path
        verdicts = judge(self.policy, as_tool, {key: path}, self.workspace) or []
        toolaudit.record(
            verdicts,
            policy=self.policy,
            integration=self.integration,
            tool=tool,
            cwd=self.workspace,
            audit_dir=self.audit,
        )
        denials = [_denial(v) for v in verdicts if v.effect == "deny"]
        if denials and self.policy.mode != "simulate":
            return ToolResult(tool, False, denials=denials)
        return path

    def _sandboxed(
        self,
        tool: str,
        argv: list[str],
        *,
        cwd: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        stdin: bytes | None = None,
    ) -> ToolResult:
        from sandbox.api import run as sandbox_run
        from sandbox.errors import LandgateError

        workdir = self._abs(cwd) if cwd else self.workspace
        if not Path(workdir).is_dir():
            return ToolResult(tool, False, error=f"{tool}: cwd {workdir} is not a directory")
        try:
            r = sandbox_run(
                argv,
                policy=self.policy,
                cwd=workdir,
                env=self.env,
                timeout=timeout,
                audit=self.audit,
                input=stdin if stdin is not None else b"",
                capture_output=True,
            )
        except subprocess.TimeoutExpired as exc:
            return ToolResult(
                tool,
                False,
                stdout=_text(exc.output),
                stderr=_text(exc.stderr),
                error=f"{tool}: timed out after {timeout} s; the command was killed",
            )
        except LandgateError as exc:
            return ToolResult(tool, False, error=f"{tool}: {exc}")
        return ToolResult(
            tool,
            r.returncode == 0 and not r.denied,
            exit_code=r.returncode,
            stdout=_text(r.stdout),
            stderr=_text(r.stderr),
            denials=r.denied,
        )


def _denial(v: Verdict) -> Denial:
    return Denial(v.action, v.target, v.rule, toolaudit.LAYER, v.reason)
