"""The `landgate` command line: argument parsing only.

Every subcommand parses its arguments and calls one library function; the
library returns text or a result object and never prints.  Errors from the
library are `LandgateError`s, turned here into one line on stderr and the
error's exit code (DESIGN §3b): 0 ok, 1 policy invalid / explain says deny /
audit tampered, 2 usage, 125 landgate failed before the agent ran.

Imports are lazy: `landgate run` does not pay for the audit report code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from sandbox.policy import Policy

from sandbox._version import __version__
from sandbox.errors import EXIT_LAUNCH, EXIT_USAGE, LandgateError, UsageError

PROG = "landgate"

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

ACTIONS = ("file_read", "file_write", "shell_exec", "network")


class _Parser(argparse.ArgumentParser):
    """argparse that exits with our usage code (2) and a one-line hint."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n(try `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_policy_arg(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "--policy",
        "-p",
        metavar="FILE",
        required=required,
        help="policy file (YAML or SafeClaw JSON) or a bundled preset name"
        + ("" if required else "; default ./.landgate.yaml, else the coding-agent preset"),
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line.  `only`: build just that subcommand (main() does when argv names
    one): argparse's per-parser set-up (help strings through gettext, ~10 ms for the
    whole tree) is then paid for one subcommand, not all of them."""
    parser = _Parser(
        prog=PROG,
        description="landgate: run AI agents under a policy enforced by the kernel "
        "(Landlock, seccomp, nftables), with a tamper-evident audit trail.",
        epilog=MAIN_EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    if only in (None, "run"):
        run = sub.add_parser(
            "run",
            help="run a command under a policy",
            formatter_class=_formatter,
            description="Run CMD under the policy: filesystem rules in Landlock, exec and "
            "connect decisions in a seccomp supervisor, egress in nftables. Every decision "
            "is written to the audit trail.",
            epilog="examples:\n  landgate run -- claude\n"
            "  landgate run --policy ci.yaml -- npm test\n"
            "  landgate run --simulate --audit ./trail -- ./agent.sh\n"
            "  landgate run --policy read-only -- cat README.md\n\n"
            "exit status: CMD's own; 125 if landgate failed before CMD ran "
            "(the message says why),\n"
            "126 if CMD could not be executed, 127 if it was not found.",
        )
        _add_policy_arg(run, required=False)
        run.add_argument(
            "--quiet",
            "-q",
            action="store_true",
            help="do not print which policy was applied (denials are still printed)",
        )
        run.add_argument(
            "--audit",
            metavar="DIR",
            help="audit trail directory (default $XDG_STATE_HOME/landgate/audit)",
        )
        run.add_argument(
            "--simulate", action="store_true", help="decide and record every action, block nothing"
        )
        run.add_argument(
            "--best-effort",
            action="store_true",
            help="run even if a required layer is missing on this host (with a warning)",
        )
        run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")
    if only in (None, "check"):
        check = sub.add_parser(
            "check",
            help="validate a policy and summarise it",
            formatter_class=_formatter,
            epilog="example:\n  landgate check --policy policies/coding-agent.yaml",
        )
        _add_policy_arg(check, required=True)
    if only in (None, "explain"):
        explain = sub.add_parser(
            "explain",
            help="show which rule decides an action, and why",
            formatter_class=_formatter,
            epilog="examples:\n  landgate explain --policy p.yaml file_read ./src/.env\n"
            "  landgate explain --policy p.yaml shell_exec 'git push origin main'\n"
            "  landgate explain --policy p.yaml network api.openai.com:443\n\n"
            "exit status: 0 allow, 1 deny, 2 usage.",
        )
        _add_policy_arg(explain, required=True)
        explain.add_argument(
            "action", choices=ACTIONS, metavar="ACTION", help="one of: " + ", ".join(ACTIONS)
        )
        explain.add_argument(
            "target",
            metavar="TARGET",
            help="a path, a command line, or a destination (host[:port], IP, unix:/path)",
        )
    if only in (None, "allow"):
        allow = sub.add_parser(
            "allow",
            help="add an allow rule to the policy file you own (./.landgate.yaml)",
            formatter_class=_formatter,
            description="Add `{ KEY: TARGET, effect: allow }` to ACTION's rules in "
            "./.landgate.yaml "
            "(created with `extends: [PRESET]` when missing), show the diff, check that the result "
            "loads and allows the action, then write it. Comments and layout are kept.",
            epilog="examples:\n  landgate allow shell_exec 'od *'\n"
            "  landgate allow file_read ~/.config/myapp/ --yes\n"
            "  landgate allow file_read ~/.bun/bin/ --exec\n"
            "  landgate allow network api.example.com:443 --policy claude-code\n\n"
            "writing: --yes writes; on a terminal it asks; otherwise (a pipe, CI) it only shows\n"
            "the diff and exits 1 without writing.\n"
            "exit status: 0 written (or already allowed), 1 not written, 2 usage.",
        )
        allow.add_argument(
            "action", choices=ACTIONS, metavar="ACTION", help="one of: " + ", ".join(ACTIONS)
        )
        allow.add_argument(
            "target", metavar="TARGET", help="a path pattern, a command pattern or a destination"
        )
        allow.add_argument(
            "--policy",
            "-p",
            metavar="FILE",
            help="the policy in use: a file you own is edited itself; a bundled preset is what a "
            "new ./.landgate.yaml extends (default: coding-agent)",
        )
        allow.add_argument(
            "--exec", action="store_true", help="file_read only: programs beneath the path may run"
        )
        allow.add_argument("--yes", "-y", action="store_true", help="write without asking")
    if only in (None, "plan"):
        plan = sub.add_parser(
            "plan",
            help="show the kernel rules a policy compiles to",
            formatter_class=_formatter,
            epilog="example:\n  landgate plan --policy policies/ci.yaml --json | jq .landlock",
        )
        _add_policy_arg(plan, required=False)
        plan.add_argument("--json", action="store_true", help="machine-readable output")
    if only in (None, "doctor"):
        doctor = sub.add_parser(
            "doctor",
            help="show what this host's kernel can enforce",
            formatter_class=_formatter,
            epilog="The rung printed is the one `landgate run` uses on this host, and what it "
            "does not cover.",
        )
        doctor.add_argument("--json", action="store_true", help="machine-readable output")
    if only in (None, "audit"):
        audit = sub.add_parser(
            "audit", help="verify, read and summarise the audit trail", formatter_class=_formatter
        )
        asub = audit.add_subparsers(
            dest="audit_command", metavar="SUBCOMMAND", parser_class=_Parser
        )
        verify = asub.add_parser(
            "verify",
            help="check the hash chain, checkpoints and witness",
            formatter_class=_formatter,
            epilog="exit status: 0 intact, 1 tampered (first bad seq named), 2 unreadable.",
        )
        show = asub.add_parser(
            "show",
            help="list entries",
            formatter_class=_formatter,
            epilog="example:\n  landgate audit show --denied --since 1h",
        )
        show.add_argument(
            "--denied", action="store_true", help="only denied (or would-deny) actions"
        )
        show.add_argument("--action", choices=ACTIONS, help="only this action")
        show.add_argument("--session", metavar="ID", help="only this session")
        show.add_argument(
            "--since",
            metavar="WHEN",
            help="only entries since WHEN (ISO time, or 30s / 10m / 2h / 1d ago)",
        )
        show.add_argument("--json", action="store_true", help="JSON Lines output")
        stats = asub.add_parser(
            "stats",
            help="counts by action and result, top denied targets",
            formatter_class=_formatter,
        )
        stats.add_argument("--session", metavar="ID", help="only this session")
        stats.add_argument("--json", action="store_true", help="machine-readable output")
        suggest = asub.add_parser(
            "suggest",
            help="policy rules that would allow a simulated run",
            formatter_class=_formatter,
            epilog="example:\n  landgate run --simulate -- ./agent.sh\n"
            "  landgate audit suggest > suggested.yaml",
        )
        suggest.add_argument(
            "--session", metavar="ID", help="session to learn from (default: the last)"
        )
        report = asub.add_parser(
            "report", help="render a self-contained HTML report", formatter_class=_formatter
        )
        report.add_argument("--html", metavar="OUT", required=True, help="output file")
        report.add_argument("--session", metavar="ID", help="only this session")
        for p in (verify, show, stats, suggest, report):
            p.add_argument(
                "dir",
                nargs="?",
                metavar="DIR",
                help="audit directory (default $XDG_STATE_HOME/landgate/audit)",
            )
    if only in (None, "hook"):
        hook = sub.add_parser(
            "hook",
            help="judge an agent's tool call before it runs (Claude Code PreToolUse hook)",
            formatter_class=_formatter,
            epilog="reads the hook input (JSON) on stdin; install with "
            "`landgate init --agent claude-code`",
        )
        hook.add_argument(
            "agent", choices=["claude-code"], help="the agent whose hook protocol to speak"
        )
        hook.add_argument(
            "--policy",
            "-p",
            metavar="FILE",
            help="policy file or preset; default ./.landgate.yaml in the hook's cwd, "
            "else the claude-code preset",
        )
        hook.add_argument("--audit", metavar="DIR", help="audit directory")
    if only in (None, "init"):
        init = sub.add_parser(
            "init",
            help="write a first ./.landgate.yaml for this project (and an agent's hook)",
            formatter_class=_formatter,
            epilog="detects package.json, pyproject.toml/requirements*.txt, Cargo.toml, go.mod "
            "and Makefile; the file starts in mode: simulate",
        )
        init.add_argument(
            "--agent",
            choices=["claude-code", "codex", "aider", "generic"],
            default="generic",
            help="the agent the policy is for (claude-code also gets its PreToolUse hook)",
        )
        init.add_argument("--yes", "-y", action="store_true", help="do not ask before writing")
        init.add_argument(
            "--force", action="store_true", help="replace an existing ./.landgate.yaml"
        )
        init.add_argument(
            "--settings",
            metavar="FILE",
            help="Claude Code settings file to merge the hook into "
            "(default ./.claude/settings.json)",
        )
    if only in (None, "ui"):
        ui = sub.add_parser(
            "ui",
            help="serve the local dashboard (127.0.0.1, token in the printed URL)",
            formatter_class=_formatter,
        )
        ui.add_argument("--port", type=int, default=0, help="port (default: a free one)")
        ui.add_argument("--audit", metavar="DIR", help="audit directory")
        ui.add_argument(
            "--policy",
            "-p",
            metavar="FILE",
            default=".landgate.yaml",
            help="the policy file the dashboard shows and changes (default ./.landgate.yaml)",
        )
    if only in (None, "mcp"):
        mcp = sub.add_parser(
            "mcp",
            help="serve run/read_file/write_file/list_dir over MCP (stdio), under a policy",
            formatter_class=_formatter,
        )
        _add_policy_arg(mcp, required=False)
        mcp.add_argument("--workspace", metavar="DIR", help="the tools' directory (default: cwd)")
        mcp.add_argument("--audit", metavar="DIR", help="audit directory")
    return parser


def _stderr_line(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def _out(text: str) -> None:
    if text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _resolve_policy(arg: str | None) -> Policy:
    from sandbox.policy import load_policy, resolve_policy_path

    return load_policy(resolve_policy_path(arg, cwd=Path.cwd()))


def cmd_run(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise_usage("run: no command given (usage: landgate run [--policy FILE] -- CMD [ARG...])")
    from sandbox.session import RunOptions, run_session

    options = RunOptions(
        argv=argv,
        policy=args.policy,
        audit_dir=args.audit,
        simulate=args.simulate,
        best_effort=args.best_effort,
        quiet=args.quiet,
        warn=lambda msg: _stderr_line(f"landgate: warning: {msg}"),
        notice=lambda msg: _stderr_line(f"landgate: {msg}"),
        policy_cache=True,
    )
    return run_session(options)


def cmd_check(args: argparse.Namespace) -> int:
    from sandbox.policy.summary import render_check

    policy = _resolve_policy(args.policy)
    _out(render_check(policy))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from sandbox.policy import decide
    from sandbox.policy.summary import render_decision

    policy = _resolve_policy(args.policy)
    decision = decide(policy, args.action, args.target)
    text = render_decision(decision)
    if decision.action == "file_read" and decision.effect == "allow":
        from sandbox.policy.execgrant import execute_grant

        why = execute_grant(policy, decision.target)
        text += (
            f"\n  execute: allowed by {why}"
            if why
            else "\n  execute: no (no file_read allow with exec: true covers it)"
        )
    _out(text)
    return 0 if decision.effect == "allow" else 1


def cmd_allow(args: argparse.Namespace) -> int:
    from sandbox.policy.allow import plan_allow, unified_diff, write_allow

    change = plan_allow(
        args.action, args.target, policy_arg=args.policy, cwd=Path.cwd(), execute=args.exec
    )
    if change.new == change.old:
        _stderr_line(f"landgate: {change.note}")
        return 0
    _out(unified_diff(change))
    if not args.yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            _stderr_line(f"landgate: not written (not a terminal; --yes writes): {change.path}")
            return 1
        sys.stderr.write(f"write {change.path}? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            _stderr_line("landgate: not written")
            return 1
    write_allow(change)
    _stderr_line(f"landgate: {change.note}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from sandbox.plan import build_display_plan, render_plan

    policy = _resolve_policy(args.policy)
    plan = build_display_plan(policy)
    if args.json:
        import json

        _out(json.dumps(plan.to_dict(), indent=2, sort_keys=True))
    else:
        _out(render_plan(plan))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from sandbox.host.doctor import host_report, render_doctor

    report = host_report()
    if args.json:
        import json

        _out(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        _out(render_doctor(report))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    if not args.audit_command:
        raise_usage("audit: a subcommand is needed: verify, show, stats, suggest, report")
    from sandbox.audit import commands

    handler: Callable[..., commands.CommandResult] = getattr(commands, args.audit_command)
    result = handler(args, progress=_stderr_progress())
    _out(result.stdout)
    if result.stderr:
        _stderr_line(result.stderr)
    return result.exit_code


def cmd_hook(args: argparse.Namespace) -> int:
    from sandbox.integrations.hookclient import hook_command

    out, err, code = hook_command(sys.stdin.buffer.read(), args.policy, args.audit)
    if out:
        _out(out)
    if err:
        _stderr_line(err)
    return code


def cmd_init(args: argparse.Namespace) -> int:
    from sandbox.setup import init_project

    root = Path.cwd()
    if not args.yes and sys.stdin.isatty():
        answer = input(f"write {root / '.landgate.yaml'} for agent {args.agent}? [Y/n] ")
        if answer.strip().lower() not in ("", "y", "yes"):
            _out("init: nothing written")
            return 0
    result = init_project(root, agent=args.agent, force=args.force)
    found = ", ".join(result.project.kinds) or "no project files recognised"
    _out(f"{result.path}: written (preset {result.preset}, rung {result.rung}; {found})")
    _out(result.check)
    if args.agent == "claude-code":
        from sandbox.integrations.settings import install_hook

        path = Path(args.settings or ".claude/settings.json")
        changed = install_hook(path)
        _out(f"{path}: {'hook installed' if changed else 'hook already installed, unchanged'}")
    _out("next:\n" + "\n".join(f"  {c}" for c in result.next_commands))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from sandbox.audit.paths import default_audit_dir
    from sandbox.ui import serve

    audit = Path(args.audit) if args.audit else default_audit_dir()
    policy = Path(args.policy).expanduser()

    def on_url(url: str) -> None:
        _out(f"landgate ui: {url}")
        sys.stdout.flush()

    serve(audit, Path(policy).absolute(), port=args.port, on_url=on_url)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from sandbox.integrations.mcp_server import serve

    serve(policy=args.policy, workspace=args.workspace, audit_dir=args.audit)
    return 0


def _stderr_progress() -> Callable[[int, int], None] | None:
    """A progress callback (done, total) drawing a bar on stderr, or None when not a tty."""
    if not sys.stderr.isatty():
        return None

    def progress(done: int, total: int) -> None:
        width = 40
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        bar = "#" * int(frac * width)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r[{bar:<{width}}] {done}/{total}{end}")
        sys.stderr.flush()

    return progress


def raise_usage(message: str) -> NoReturn:
    raise UsageError(message)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "check": cmd_check,
    "explain": cmd_explain,
    "allow": cmd_allow,
    "plan": cmd_plan,
    "doctor": cmd_doctor,
    "audit": cmd_audit,
    "hook": cmd_hook,
    "init": cmd_init,
    "ui": cmd_ui,
    "mcp": cmd_mcp,
}


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # The subcommand is the first word when it names one (no global option takes a
    # value): build only its parser.  Anything else (--help, a typo) gets the whole tree,
    # so the usage and the "invalid choice" list are the full ones.
    only = words[0] if words and words[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(words)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except LandgateError as exc:
        _stderr_line(f"{PROG}: {exc}" if not _is_located(exc) else str(exc))
        if args.command == "run" and exc.exit_code not in (EXIT_USAGE, EXIT_LAUNCH):
            # DESIGN §4: `run` exits with the agent's own status, so anything that stops
            # landgate before the agent ran (a bad policy included) is 125, never a code
            # the agent itself could have returned.
            return EXIT_LAUNCH
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. `landgate audit show | head`): not an error.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's flush
        except OSError:
            pass
        return 0


def _is_located(exc: LandgateError) -> bool:
    """Policy errors already start with file:line:column."""
    from sandbox.errors import PolicyError

    return isinstance(exc, PolicyError)
