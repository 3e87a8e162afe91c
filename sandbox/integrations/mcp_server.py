"""`landgate mcp`: the landgate tools over the Model Context Protocol (stdio).

Any MCP client (Claude Desktop / Claude Code, Cursor, ...) can use these tools
instead of its own shell and file tools:

  run(command, cwd?, timeout?)  a shell command line in the sandbox
  read_file(path)               the file's text
  write_file(path, content)     create or replace a file
  list_dir(path?)               one entry a line, directories end in /

Each call is executed under the policy with kernel enforcement
(sandbox.integrations.tools); each returns a JSON object with exit_code, stdout,
stderr, denials (action, target, rule, layer, reason) and error, and a denied
call is reported as a tool error (isError) so the model sees it failed and why.
Needs the official `mcp` SDK: `pip install 'landgate[mcp]'`.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from sandbox.errors import UsageError
from sandbox.integrations.tools import DEFAULT_TIMEOUT, LandgateTools, ToolResult

NAME = "landgate"
INSTRUCTIONS = (
    "Tools that run commands and touch files inside a landgate sandbox: every call is "
    "checked against the project's policy and enforced by the kernel. When a call is "
    "denied, the result names the rule and the reason; do not retry the same action, "
    "choose another way or ask the user to change the policy."
)


def _server_class() -> Any:
    try:
        from mcp.server.mcpserver import MCPServer  # mcp >= 2

        return MCPServer
    except ImportError:
        pass
    try:
        return importlib.import_module("mcp.server.fastmcp").FastMCP  # mcp 1.x
    except ImportError:
        raise UsageError(
            "landgate mcp needs the MCP Python SDK: pip install 'landgate[mcp]'"
        ) from None


def _tool_error() -> type[Exception]:
    """The SDK's deliberate tool failure: the client gets isError and our text."""
    for module in ("mcp.server.mcpserver.exceptions", "mcp.server.fastmcp.exceptions"):
        try:  # mcp >= 2, then mcp 1.x
            error: type[Exception] = importlib.import_module(module).ToolError
        except ImportError:
            continue
        return error
    raise UsageError("landgate mcp needs the MCP Python SDK: pip install 'landgate[mcp]'")


def _answer(result: ToolResult) -> str:
    text = json.dumps(result.to_dict(), indent=1)
    if not result.ok:
        # A failed or denied call is a tool error (isError), so the model cannot mistake
        # it for success; the text is the same JSON object.
        raise _tool_error()(text)
    return text


def build_server(tools: LandgateTools) -> Any:
    server = _server_class()(NAME, instructions=INSTRUCTIONS)

    def run(command: str, cwd: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
        return _answer(tools.run(command, cwd=cwd, timeout=timeout))

    def read_file(path: str) -> str:
        return _answer(tools.read_file(path))

    def write_file(path: str, content: str) -> str:
        return _answer(tools.write_file(path, content))

    def list_dir(path: str = ".") -> str:
        return _answer(tools.list_dir(path))

    # The SDK reads each function's signature for the tool's input schema.
    server.tool(description="Run a shell command line (sh -c) in the sandbox.")(run)
    server.tool(description="Read a text file (path relative to the workspace, or absolute).")(
        read_file
    )
    server.tool(description="Create or replace a file with the given content.")(write_file)
    server.tool(description="List a directory: one entry a line, directories end in /.")(list_dir)
    return server


def serve(
    *, policy: str | None = None, workspace: str | None = None, audit_dir: str | None = None
) -> None:
    """Serve over stdio until the client closes the connection."""
    tools = LandgateTools(
        policy,
        workspace=workspace or os.getcwd(),
        audit=audit_dir,
        integration="mcp",
    )
    build_server(tools).run("stdio")
