"""The `landgate` command line: argument parsing only.

Every subcommand parses its arguments and calls one library function; the
library returns text or a result object and never prints.  Errors from the
library are `LandgateError`s, turned here into one line on stderr and the
error's exit code (DESIGN §3b): 0 ok, 1 policy invalid / explain says deny /
audit tampered, 2 usage, 125 landgate failed before the agent ran.

Imports are lazy: `landgate run` does not pay for the audit report code.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

from sandbox._version import __version__
from sandbox.errors import EXIT_LAUNCH, EXIT_USAGE, LandgateError, UsageError

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, NoReturn

    from sandbox.policy import Policy

_T0 = time.perf_counter()  # this module's import: LANDGATE_DEBUG_TIMING's zero
PROG = "landgate"
# Set by entry() for `landgate run`: the process launches once and exits (main() called
# in a longer-lived process, e.g. a test, keeps the plan memo).
_one_launch = False


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
    timings: dict[str, float] | None = None
    if os.environ.get("LANDGATE_DEBUG_TIMING") == "1":
        timings = {"startup": round((time.perf_counter() - _T0) * 1000, 2)}
    t_import = time.perf_counter()
    from sandbox.session import RunOptions, run_session

    if _one_launch:
        from sandbox.plan import memo

        memo.one_launch()  # this process launches once: nothing would reuse the memo
    if timings is not None:
        timings["imports"] = round((time.perf_counter() - t_import) * 1000, 2)
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
        timings=timings,
        report_channel=_SessionHook(),  # the hook inside asks, the session decides
    )
    try:
        return run_session(options)
    finally:
        if timings is not None:
            # Since this module was imported (the interpreter's own start is not seen here).
            timings["total"] = round((time.perf_counter() - _T0) * 1000, 2)
            _stderr_line(
                "landgate: timing (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
            )
            # The goal is per session (issue 19): this process's high-water mark, which is
            # what bench_cli's memory rows read from wait4.
            import resource

            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            _stderr_line(f"landgate: peak RSS {peak_kib / 1024:.1f} MB")


class _SessionHook:
    """sandbox.integrations.hook.SessionDecider, imported once the session has started
    (it warms it on its deciding thread): `landgate run` loads no integration before."""

    def answer(self, request: bytes, policy: Any, sink: Any) -> tuple[bytes, str | None]:
        from sandbox.integrations.hook import SessionDecider

        return SessionDecider().answer(request, policy, sink)

    def refuse(self, reason: str) -> bytes:
        from sandbox.integrations.hook import SessionDecider

        return SessionDecider().refuse(reason)

    def warm(self, policy: Any) -> None:
        from sandbox.integrations.hook import SessionDecider

        SessionDecider().warm(policy)


def cmd_check(args: argparse.Namespace) -> int:
    from sandbox.policy.compiled import compile_policy
    from sandbox.policy.summary import render_check

    policy = _resolve_policy(args.policy)
    compile_policy(policy)  # valid means it compiles: the glob bound is checked there
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
    from sandbox.policy.compiled import compile_policy

    policy = _resolve_policy(args.policy)
    compile_policy(policy)  # what the launch refuses, the plan refuses (the glob bound)
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


# `landgate run`'s options (cliargs' "run") in the forms _run_args reads without argparse:
# flag -> (attribute, takes a value).  tests/cli_fast: the same namespace as argparse's.
_RUN_OPTIONS: dict[str, tuple[str, bool]] = {
    "--policy": ("policy", True),
    "-p": ("policy", True),
    "--quiet": ("quiet", False),
    "-q": ("quiet", False),
    "--audit": ("audit", True),
    "--simulate": ("simulate", False),
    "--best-effort": ("best_effort", False),
}


def _run_args(words: Sequence[str]) -> SimpleNamespace | None:
    """`landgate run ...` parsed as argparse parses it (cliargs' "run"), when every option
    before the command is one of _RUN_OPTIONS written whole, each value a separate word not
    starting with `-`; None for anything else (`--policy=X`, `-qp X`, an abbreviation,
    --help, an unknown option, a value like `-x`), which argparse then parses: its reading
    and its error messages stay the only ones.  Saves importing and building argparse's
    parser on every launch (~3 ms, issue 19)."""
    values: dict[str, Any] = {
        "command": "run",
        "policy": None,
        "quiet": False,
        "audit": None,
        "simulate": False,
        "best_effort": False,
    }
    i = 1
    while i < len(words):
        opt = _RUN_OPTIONS.get(words[i])
        if opt is None:
            break
        name, takes_value = opt
        if not takes_value:
            values[name] = True
            i += 1
            continue
        if i + 1 >= len(words) or words[i + 1].startswith("-"):
            return None  # a missing value, or one argparse may read as an option
        values[name] = words[i + 1]
        i += 2
    rest = list(words[i:])
    if rest and rest[0].startswith("-") and rest[0] != "--":
        return None  # an option this reader does not take (argparse says what it is)
    # argparse's REMAINDER: everything from the command (or from `--`, kept) on.
    return SimpleNamespace(**values, argv=rest)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # The subcommand is the first word when it names one (no global option takes a
    # value): build only its parser.  Anything else (--help, a typo) gets the whole tree,
    # so the usage and the "invalid choice" list are the full ones.
    only = words[0] if words and words[0] in COMMANDS else None
    # argparse's Namespace, or _run_args' namespace of the same attributes.
    args: Any = None
    if only == "run":
        args = _run_args(words)
    if args is None:
        from sandbox.cliargs import build_parser

        parser = build_parser(PROG, __version__, only)
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


def entry() -> NoReturn:
    """The `landgate` command (and `python -m sandbox`): main(), then the process exits.

    After `landgate run` the interpreter's own finalisation (freeing every module and
    object one by one) took ~15 ms of the command's wall time, after the agent had
    exited and everything was recorded (issue 19).  So `run` leaves by os._exit, once
    nothing is left to do: the session closed its trail, network and channel before
    run_session returned; the output is flushed here; the registered exit handlers (the
    network layer's safety net) are run here.  Any doubt (another thread still running,
    a flush that fails, no way to run the exit handlers) leaves by the ordinary exit.
    Every other command exits the ordinary way."""
    global _one_launch  # noqa: PLW0603  one process, one command line
    words = sys.argv[1:]
    _one_launch = words[:1] == ["run"]
    code = main(words)
    if _one_launch:
        _exit_now(code)
    raise SystemExit(code)


def _exit_now(code: int) -> None:
    """os._exit(code) when nothing is lost by it (see entry); otherwise return."""
    import atexit

    from sandbox import threads

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's own, used at exit
    # The idle workers of sandbox.threads wait for a job and hold nothing to lose; a job
    # still running (a supervisor's context being freed after its session) gets a moment.
    if run_exit_handlers is None or not threads.wait_idle(0.05):
        return
    if not threads.only_idle_workers_besides_caller():
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # the ordinary exit reports it as the interpreter does
    run_exit_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # an exit handler's output, written to a closed stream: nothing left to tell
    os._exit(code & 0xFF)


def _is_located(exc: LandgateError) -> bool:
    """Policy errors already start with file:line:column."""
    from sandbox.errors import PolicyError

    return isinstance(exc, PolicyError)
