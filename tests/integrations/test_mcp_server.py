"""`landgate mcp` driven by the MCP SDK's own client over stdio: initialize, list the
tools, run an allowed and a denied command, read .env (denied, with the rule and the
reason) and its allowed twin, write and list.  Each tool's execution is the sandbox's.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from conftest import World
from helpers.trail import trail_and_reports

# The test extra installs the SDK: an import error here is a failure, not a skip.
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", getattr(result, "isError", False)))


def _payload(result: Any) -> dict[str, Any]:
    text = result.content[0].text
    return json.loads(text[text.index("{") :])


async def _session(world: World, calls: list[tuple[str, dict[str, Any]]]) -> tuple[Any, list[Any]]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "sandbox", "mcp", "--audit", str(world.root / "audit")],
        cwd=str(world.workspace),
        env=dict(world.env),
    )
    async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        tools = await s.list_tools()
        results = [await s.call_tool(name, args) for name, args in calls]
    return tools, results


def test_mcp_tools_over_stdio(world: World) -> None:
    calls = [
        ("run", {"command": "echo hello from the sandbox"}),
        ("run", {"command": "curl -s http://example.com"}),
        ("read_file", {"path": ".env"}),
        ("read_file", {"path": "README.md"}),
        ("write_file", {"path": "notes.txt", "content": "written\n"}),
        ("list_dir", {"path": "."}),
        ("read_file", {"path": str(world.ssh_key)}),
    ]
    tools, (ok, denied, env, readme, wrote, listing, key) = asyncio.run(_session(world, calls))
    assert sorted(t.name for t in tools.tools) == ["list_dir", "read_file", "run", "write_file"]

    assert not _is_error(ok) and _payload(ok)["stdout"] == "hello from the sandbox\n"
    assert _is_error(denied)
    d = _payload(denied)["denials"][0]
    assert (d["action"], d["layer"]) == ("shell_exec", "exec")  # the supervisor's denial
    assert "curl" in d["reason"] and "coding-agent.yaml:" in d["rule"]

    assert _is_error(env)
    body = env.content[0].text
    assert world.secret.decode() not in body
    d = _payload(env)["denials"][0]
    assert d["action"] == "file_read" and d["target"] == str(world.dotenv)
    assert ".env" in d["reason"] and d["rule"]
    assert not _is_error(readme) and _payload(readme)["stdout"] == "# demo workspace\n"

    assert not _is_error(wrote) and (world.workspace / "notes.txt").read_text() == "written\n"
    assert "notes.txt" in _payload(listing)["stdout"].splitlines()
    assert _is_error(key) and world.secret.decode() not in key.content[0].text

    entries, reports = trail_and_reports(world.root / "audit")
    hook = [e for e in reports if e.get("type") == "decision"]
    assert ("file_read", str(world.dotenv), "deny") in {
        (e["action"], e["target"], e["result"]) for e in hook
    }
    assert any(
        e.get("type") == "decision" and e.get("layer") == "exec" and e.get("result") == "deny"
        for e in entries
    )


def _kernel_only_tools(world: World) -> Any:
    """The file tools with the tool-level check switched off: the sandbox alone decides."""
    from sandbox.integrations.tools import LandgateTools

    policy = world.write_policy(
        f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "./", effect: allow }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./", effect: allow }}
  - action: shell_exec
    defaultEffect: deny
    rules:
      - {{ command: "cat *", effect: allow }}
      - {{ command: "tee *", effect: allow }}
"""
    )
    return LandgateTools(
        str(policy),
        workspace=world.workspace,
        audit=world.root / "audit",
        env=world.env,
        judge_files=False,
    )


def test_file_tools_are_enforced_by_the_kernel_too(world: World) -> None:
    """With the tool-level check switched off, Landlock still keeps the secret and the file."""
    tools = _kernel_only_tools(world)
    key = tools.read_file(str(world.ssh_key))
    assert world.secret.decode() not in key.stdout + key.stderr
    assert not key.ok and "Permission denied" in key.stderr
    twin = tools.read_file("src/app.ts")
    assert twin.ok and twin.stdout == world.app_source.read_text()
    outside = tools.write_file(str(world.root / "planted"), "x")
    assert not outside.ok and not (world.root / "planted").exists()
    inside = tools.write_file("planted", "x")
    assert inside.ok and (world.workspace / "planted").read_text() == "x"
    env = tools.read_file(".env")  # inside the workspace: a carve-out (masked)
    assert world.secret.decode() not in env.stdout


def test_kernel_only_dotenv_read_reports_a_denial(world: World) -> None:
    env = _kernel_only_tools(world).read_file(".env")
    assert not env.ok and env.denials
