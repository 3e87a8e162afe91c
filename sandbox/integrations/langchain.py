"""landgate's tools for LangChain: a shell tool and file tools, sandboxed.

    from sandbox.integrations.langchain import landgate_tools
    tools = landgate_tools(policy=".landgate.yaml", workspace=repo)
    model = chat_model.bind_tools(tools)

Each tool is a `langchain_core.tools.BaseTool` with
`response_format="content_and_artifact"`: the model reads the text (output,
exit code, and for each denial `landgate denied ACTION "TARGET" (RULE, LAYER):
REASON`), the framework gets the structured result as the ToolMessage's
`artifact` (exit_code, stdout, stderr, denials with action/target/rule/layer/
reason, error).  Sync (`invoke`) and async (`ainvoke`, on a worker thread).
Execution and enforcement are sandbox.integrations.tools' (kernel-enforced;
file paths also judged at the tool level).  Needs `pip install 'landgate[langchain]'`
(langchain-core only).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from sandbox.integrations.tools import DEFAULT_TIMEOUT, LandgateTools, ToolResult

__all__ = [
    "LandgateListDirTool",
    "LandgateReadFileTool",
    "LandgateShellTool",
    "LandgateWriteFileTool",
    "landgate_tools",
]


class _ShellArgs(BaseModel):
    command: str = Field(description="a shell command line, run with sh -c")
    cwd: str | None = Field(default=None, description="directory, relative to the workspace")
    timeout: float = Field(default=DEFAULT_TIMEOUT, description="seconds before it is killed")


class _PathArgs(BaseModel):
    path: str = Field(description="a path, relative to the workspace or absolute")


class _WriteArgs(BaseModel):
    path: str = Field(description="a path, relative to the workspace or absolute")
    content: str = Field(description="the file's new content")


class _LandgateTool(BaseTool):
    """Common part: the shared LandgateTools, content and artifact."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    tools: LandgateTools
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"

    def _call(self, **kwargs: Any) -> ToolResult:
        raise NotImplementedError

    def _run(
        self, *args: Any, run_manager: Any = None, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        result = self._call(**kwargs)
        return result.to_text(), result.to_dict()

    async def _arun(
        self, *args: Any, run_manager: Any = None, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        # The sandboxed call blocks until the command exits: off the event loop.
        result = await asyncio.to_thread(self._call, **kwargs)
        return result.to_text(), result.to_dict()


class LandgateShellTool(_LandgateTool):
    name: str = "shell"
    description: str = (
        "Run a shell command line in a sandbox (policy-enforced by the kernel). "
        "Returns the exit code and output; denied actions are listed with the rule and reason."
    )
    args_schema: type[BaseModel] = _ShellArgs

    def _call(self, **kw: Any) -> ToolResult:
        return self.tools.run(kw["command"], cwd=kw.get("cwd"), timeout=kw.get("timeout"))


class LandgateReadFileTool(_LandgateTool):
    name: str = "read_file"
    description: str = "Read a text file in the sandbox."
    args_schema: type[BaseModel] = _PathArgs

    def _call(self, **kw: Any) -> ToolResult:
        return self.tools.read_file(kw["path"])


class LandgateWriteFileTool(_LandgateTool):
    name: str = "write_file"
    description: str = "Create or replace a file in the sandbox."
    args_schema: type[BaseModel] = _WriteArgs

    def _call(self, **kw: Any) -> ToolResult:
        return self.tools.write_file(kw["path"], kw["content"])


class LandgateListDirTool(_LandgateTool):
    name: str = "list_dir"
    description: str = "List a directory in the sandbox (directories end in /)."
    args_schema: type[BaseModel] = _PathArgs

    def _call(self, **kw: Any) -> ToolResult:
        return self.tools.list_dir(kw["path"])


def landgate_tools(
    policy: Any = None,
    *,
    workspace: str | None = None,
    audit: str | None = None,
    env: dict[str, str] | None = None,
) -> list[BaseTool]:
    """The four tools sharing one policy, workspace and audit trail."""
    shared = LandgateTools(
        policy, workspace=workspace, audit=audit, env=env, integration="langchain"
    )
    return [
        LandgateShellTool(tools=shared),
        LandgateReadFileTool(tools=shared),
        LandgateWriteFileTool(tools=shared),
        LandgateListDirTool(tools=shared),
    ]
