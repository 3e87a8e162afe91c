"""Integrations where agents live (DESIGN §6).

  hook        `landgate hook claude-code`: Claude Code's PreToolUse hook
  hookclient  what the command runs: ask the resident decision server, else `hook` here
  hookserver  that server (one per user and setup; answers with `hook`'s own result)
  hookproto   their wire format and the peer checks both ends make
  settings    installing that hook into .claude/settings.json (merge, idempotent)
  judge       a tool call's actions (Bash → shell_exec, Read → file_read, ...)
  toolaudit   tool-level decisions into the audit trail (layer `tool-hook`)
  tools       run / read_file / write_file / list_dir under the policy, kernel-enforced
  mcp_server  `landgate mcp`: those tools over MCP (stdio), extra `landgate[mcp]`
  langchain   those tools as LangChain tools, extra `landgate[langchain]`

Each integration decides twice: at the tool call (instant, with a reason the
model reads, recorded with layer `tool-hook`) and, for what it executes, in the
kernel underneath (`sandbox.run` / `sandbox.Session`), both in one audit trail.
"""
