"""The command line's arguments as data, and their layout in argparse (build_parser).

sandbox.cli imports this module only for a command line it does not parse itself: a
plain `landgate run [OPTIONS] [--] CMD ...` is parsed by cli._run_args without argparse
(issue 19: importing and building argparse's parser cost ~3 ms of every launch).

Each subcommand is its help, its parser keywords and its arguments, each argument
(flags, add_argument keywords); a "subcommands" entry nests the same shape (audit's
verify/show/...).  One table instead of one builder per subcommand: `--help` reads
exactly as before (checked against the hand-written builders when this was made).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from sandbox.errors import EXIT_USAGE

ACTIONS = ("file_read", "file_write", "shell_exec", "network")

Arg = tuple[tuple[str, ...], dict[str, Any]]


def _policy_arg(required: bool) -> Arg:
    return (
        ("--policy", "-p"),
        {
            "metavar": "FILE",
            "required": required,
            "help": "policy file (YAML or SafeClaw JSON) or a bundled preset name"
            + ("" if required else "; default ./.landgate.yaml, else the coding-agent preset"),
        },
    )


def _action_arg() -> Arg:
    return (
        ("action",),
        {"choices": ACTIONS, "metavar": "ACTION", "help": "one of: " + ", ".join(ACTIONS)},
    )


_AUDIT_DIR_ARG: Arg = (
    ("dir",),
    {
        "nargs": "?",
        "metavar": "DIR",
        "help": "audit directory (default $XDG_STATE_HOME/landgate/audit)",
    },
)
_AUDIT_ARG: Arg = (("--audit",), {"metavar": "DIR", "help": "audit directory"})
_JSON_ARG: Arg = (("--json",), {"action": "store_true", "help": "machine-readable output"})
_SESSION_ARG: Arg = (("--session",), {"metavar": "ID", "help": "only this session"})

SUBCOMMANDS: dict[str, dict[str, Any]] = {
    "run": {
        "help": "run a command under a policy",
        "description": "Run CMD under the policy: filesystem rules in Landlock, exec and "
        "connect decisions in a seccomp supervisor, egress in nftables. Every decision "
        "is written to the audit trail.",
        "epilog": "examples:\n  landgate run -- claude\n"
        "  landgate run --policy ci.yaml -- npm test\n"
        "  landgate run --simulate --audit ./trail -- ./agent.sh\n"
        "  landgate run --policy read-only -- cat README.md\n\n"
        "exit status: CMD's own; 125 if landgate failed before CMD ran "
        "(the message says why),\n"
        "126 if CMD could not be executed, 127 if it was not found.",
        "args": [
            _policy_arg(False),
            (
                ("--quiet", "-q"),
                {
                    "action": "store_true",
                    "help": "do not print which policy was applied (denials are still printed)",
                },
            ),
            (
                ("--audit",),
                {
                    "metavar": "DIR",
                    "help": "audit trail directory (default $XDG_STATE_HOME/landgate/audit)",
                },
            ),
            (
                ("--simulate",),
                {"action": "store_true", "help": "decide and record every action, block nothing"},
            ),
            (
                ("--best-effort",),
                {
                    "action": "store_true",
                    "help": "run even if a required layer is missing on this host (with a warning)",
                },
            ),
            (("argv",), {"nargs": argparse.REMAINDER, "metavar": "-- CMD [ARG...]"}),
        ],
    },
    "check": {
        "help": "validate a policy and summarise it",
        "epilog": "example:\n  landgate check --policy policies/coding-agent.yaml",
        "args": [_policy_arg(True)],
    },
    "explain": {
        "help": "show which rule decides an action, and why",
        "epilog": "examples:\n  landgate explain --policy p.yaml file_read ./src/.env\n"
        "  landgate explain --policy p.yaml shell_exec 'git push origin main'\n"
        "  landgate explain --policy p.yaml network api.openai.com:443\n\n"
        "exit status: 0 allow, 1 deny, 2 usage.",
        "args": [
            _policy_arg(True),
            _action_arg(),
            (
                ("target",),
                {
                    "metavar": "TARGET",
                    "help": "a path, a command line, or a destination (host[:port], IP, "
                    "unix:/path)",
                },
            ),
        ],
    },
    "allow": {
        "help": "add an allow rule to the policy file you own (./.landgate.yaml)",
        "description": "Add `{ KEY: TARGET, effect: allow }` to ACTION's rules in "
        "./.landgate.yaml "
        "(created with `extends: [PRESET]` when missing), show the diff, check that the result "
        "loads and allows the action, then write it. Comments and layout are kept.",
        "epilog": "examples:\n  landgate allow shell_exec 'od *'\n"
        "  landgate allow file_read ~/.config/myapp/ --yes\n"
        "  landgate allow file_read ~/.bun/bin/ --exec\n"
        "  landgate allow network api.example.com:443 --policy claude-code\n\n"
        "writing: --yes writes; on a terminal it asks; otherwise (a pipe, CI) it only shows\n"
        "the diff and exits 1 without writing.\n"
        "exit status: 0 written (or already allowed), 1 not written, 2 usage.",
        "args": [
            _action_arg(),
            (
                ("target",),
                {
                    "metavar": "TARGET",
                    "help": "a path pattern, a command pattern or a destination",
                },
            ),
            (
                ("--policy", "-p"),
                {
                    "metavar": "FILE",
                    "help": "the policy in use: a file you own is edited itself; a bundled "
                    "preset is what a new ./.landgate.yaml extends (default: coding-agent)",
                },
            ),
            (
                ("--exec",),
                {
                    "action": "store_true",
                    "help": "file_read only: programs beneath the path may run",
                },
            ),
            (("--yes", "-y"), {"action": "store_true", "help": "write without asking"}),
        ],
    },
    "plan": {
        "help": "show the kernel rules a policy compiles to",
        "epilog": "example:\n  landgate plan --policy policies/ci.yaml --json | jq .landlock",
        "args": [_policy_arg(False), _JSON_ARG],
    },
    "doctor": {
        "help": "show what this host's kernel can enforce",
        "epilog": "The rung printed is the one `landgate run` uses on this host, and what it "
        "does not cover.",
        "args": [_JSON_ARG],
    },
    "audit": {
        "help": "verify, read and summarise the audit trail",
        "args": [],
        "dest": "audit_command",
        "subcommands": {
            "verify": {
                "help": "check the hash chain, checkpoints and witness",
                "epilog": "exit status: 0 intact, 1 tampered (first bad seq named), 2 unreadable.",
                "args": [_AUDIT_DIR_ARG],
            },
            "show": {
                "help": "list entries",
                "epilog": "example:\n  landgate audit show --denied --since 1h",
                "args": [
                    (
                        ("--denied",),
                        {"action": "store_true", "help": "only denied (or would-deny) actions"},
                    ),
                    (("--action",), {"choices": ACTIONS, "help": "only this action"}),
                    _SESSION_ARG,
                    (
                        ("--since",),
                        {
                            "metavar": "WHEN",
                            "help": "only entries since WHEN (ISO time, or 30s / 10m / 2h / "
                            "1d ago)",
                        },
                    ),
                    (("--json",), {"action": "store_true", "help": "JSON Lines output"}),
                    _AUDIT_DIR_ARG,
                ],
            },
            "stats": {
                "help": "counts by action and result, top denied targets",
                "args": [_SESSION_ARG, _JSON_ARG, _AUDIT_DIR_ARG],
            },
            "suggest": {
                "help": "policy rules that would allow a simulated run",
                "epilog": "example:\n  landgate run --simulate -- ./agent.sh\n"
                "  landgate audit suggest > suggested.yaml",
                "args": [
                    (
                        ("--session",),
                        {"metavar": "ID", "help": "session to learn from (default: the last)"},
                    ),
                    _AUDIT_DIR_ARG,
                ],
            },
            "report": {
                "help": "render a self-contained HTML report",
                "args": [
                    (
                        ("--html",),
                        {"metavar": "OUT", "required": True, "help": "output file"},
                    ),
                    _SESSION_ARG,
                    _AUDIT_DIR_ARG,
                ],
            },
        },
    },
    "hook": {
        "help": "judge an agent's tool call before it runs (Claude Code PreToolUse hook)",
        "epilog": "reads the hook input (JSON) on stdin; install with "
        "`landgate init --agent claude-code`",
        "args": [
            (
                ("agent",),
                {"choices": ["claude-code"], "help": "the agent whose hook protocol to speak"},
            ),
            (
                ("--policy", "-p"),
                {
                    "metavar": "FILE",
                    "help": "policy file or preset; default ./.landgate.yaml in the hook's "
                    "cwd, else the claude-code preset",
                },
            ),
            _AUDIT_ARG,
        ],
    },
    "init": {
        "help": "write a first ./.landgate.yaml for this project (and an agent's hook)",
        "epilog": "detects package.json, pyproject.toml/requirements*.txt, Cargo.toml, go.mod "
        "and Makefile; the file starts in mode: simulate",
        "args": [
            (
                ("--agent",),
                {
                    "choices": ["claude-code", "codex", "aider", "generic"],
                    "default": "generic",
                    "help": "the agent the policy is for (claude-code also gets its "
                    "PreToolUse hook)",
                },
            ),
            (("--yes", "-y"), {"action": "store_true", "help": "do not ask before writing"}),
            (
                ("--force",),
                {"action": "store_true", "help": "replace an existing ./.landgate.yaml"},
            ),
            (
                ("--settings",),
                {
                    "metavar": "FILE",
                    "help": "Claude Code settings file to merge the hook into "
                    "(default ./.claude/settings.json)",
                },
            ),
        ],
    },
    "ui": {
        "help": "serve the local dashboard (127.0.0.1, token in the printed URL)",
        "args": [
            (("--port",), {"type": int, "default": 0, "help": "port (default: a free one)"}),
            _AUDIT_ARG,
            (
                ("--policy", "-p"),
                {
                    "metavar": "FILE",
                    "default": ".landgate.yaml",
                    "help": "the policy file the dashboard shows and changes "
                    "(default ./.landgate.yaml)",
                },
            ),
        ],
    },
    "mcp": {
        "help": "serve run/read_file/write_file/list_dir over MCP (stdio), under a policy",
        "args": [
            _policy_arg(False),
            (("--workspace",), {"metavar": "DIR", "help": "the tools' directory (default: cwd)"}),
            _AUDIT_ARG,
        ],
    },
}


MAIN_EPILOG = """\
examples:
  landgate run -- claude                       run an agent under ./.landgate.yaml
                                               (or the bundled coding-agent preset)
  landgate run --policy ci.yaml -- npm test    run tests under a CI policy
  landgate run --simulate -- ./agent.sh        decide and record, block nothing
  landgate check --policy policy.yaml          validate, summarise what it allows
  landgate explain --policy policy.yaml file_read .env
                                               which rule decides, and why
  landgate plan --policy policy.yaml           the kernel rules it compiles to
  landgate allow shell_exec 'od *'             add the rule a denial line suggests
  landgate doctor                              what this host's kernel can enforce
  landgate audit verify                        is the audit trail intact?

A policy is YAML (or SafeClaw JSON action blocks).  Rules are judged the same
way everywhere: an explicit deny wins, else an explicit allow, else the
action's defaultEffect (deny when missing).  --policy also takes a bundled
preset name: coding-agent, ci, read-only, offline.

exit status: the agent's own for `run`; 1 policy invalid (or `explain` says
deny, or `audit verify` found tampering); 2 usage error; 125 landgate failed
before the agent ran; 126 command not executable; 127 command not found.
"""


class _Parser(argparse.ArgumentParser):
    """argparse that exits with our usage code (2) and a one-line hint."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n(try `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_subcommands(
    sub: argparse._SubParsersAction[_Parser],
    table: dict[str, dict[str, Any]],
    only: str | None = None,
) -> None:
    for name, spec in table.items():
        if only is not None and name != only:
            continue
        kw = {k: spec[k] for k in ("help", "description", "epilog") if k in spec}
        p = sub.add_parser(name, formatter_class=_formatter, **kw)
        for flags, akw in spec["args"]:
            p.add_argument(*flags, **akw)
        if "subcommands" in spec:
            nested = p.add_subparsers(dest=spec["dest"], metavar="SUBCOMMAND", parser_class=_Parser)
            _add_subcommands(nested, spec["subcommands"])


def build_parser(prog: str, version: str, only: str | None = None) -> argparse.ArgumentParser:
    """The command line (SUBCOMMANDS), as `prog`.  `only`: build just that subcommand
    (main() does when argv names one): argparse's per-parser set-up (help strings through
    gettext, ~10 ms for the whole tree) is then paid for one subcommand, not all of them."""
    parser = _Parser(
        prog=prog,
        description="landgate: run AI agents under a policy enforced by the kernel "
        "(Landlock, seccomp, nftables), with a tamper-evident audit trail.",
        epilog=MAIN_EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_subcommands(sub, SUBCOMMANDS, only)
    return parser
