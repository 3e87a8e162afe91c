"""`landgate hook claude-code`'s short path (sandbox.entry): what it loads, what it reads.

The command runs once per tool call, inside `landgate run` too, where every file the
interpreter opens is checked: sandbox.entry sends that command line (options: --policy,
--audit) to the hook client, which loads only C modules of the standard library
(argparse, typing, socket and pathlib cost ~10 ms there).  The twin: the command line's
parser, which every other spelling goes through, does load them, so the probe sees what
it looks for.  And the short path reads the options it takes exactly as the parser does;
anything else goes to the parser.  It leaves by os._exit as `landgate run` does: output,
status and exit handlers kept; the ordinary exit when a thread still runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Python modules (not C ones) the client may add to what the interpreter loaded itself.
ALLOWED = {
    "sandbox",
    "sandbox._version",
    "sandbox.errors",
    "sandbox.entry",
    "sandbox.integrations",
    "sandbox.integrations.hookclient",
    "sandbox.integrations.hookproto",
    "_socket",
    "zlib",
    "__future__",  # `from __future__ import annotations`: 100 lines of stdlib, no imports
}
HEAVY = {"argparse", "typing", "socket", "pathlib", "shutil", "gettext", "sandbox.cli"}

PROBE = """
import os, sys  # what the interpreter's own start (site) loads in any install
before = set(sys.modules)
for name in sys.argv[1:]:
    __import__(name)
print("\\n".join(sorted(set(sys.modules) - before)))
"""


def _loaded(*modules: str) -> set[str]:
    # -S: without site, whose editable-install finder loads pathlib (and more) first; a
    # wheel install has no finder.  This process's sys.path finds the package.
    code = f"import sys; sys.path[:0] = {sys.path!r}\n" + PROBE
    p = subprocess.run(
        [sys.executable, "-S", "-c", code, *modules],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(p.stdout.split())


def test_the_hook_client_loads_only_its_own_modules() -> None:
    loaded = _loaded("sandbox.entry", "sandbox.integrations.hookclient")
    assert loaded <= ALLOWED, loaded - ALLOWED


def test_the_command_line_parser_loads_the_heavy_modules() -> None:
    # What a hook command line off the short path goes through: cli.main's parser.
    loaded = _loaded("sandbox.entry", "sandbox.cli", "sandbox.cliargs")
    assert {"argparse", "typing", "sandbox.cli"} <= loaded, loaded
    assert HEAVY & loaded


# (command line, whether sandbox.entry takes the short path)
WORDS = [
    (["hook", "claude-code"], True),
    (["hook", "claude-code", "--policy", "ci"], True),
    (["hook", "claude-code", "--audit", "/a", "--policy", "x.yaml"], True),
    (["hook", "claude-code", "--audit", ""], True),
    (["hook", "claude-code", "--policy", "-x"], False),  # argparse: a missing value
    (["hook", "claude-code", "-p", "ci"], False),
    (["hook", "claude-code", "--policy=ci"], False),
    (["hook", "claude-code", "--policy", "a", "--policy", "b"], False),
    (["hook", "claude-code", "--pol", "ci"], False),  # an abbreviation
    (["hook", "--audit", "/a", "claude-code"], False),
    (["hook", "claude-code", "--audit"], False),
    (["hook", "claude-code", "extra", "word"], False),
    (["hook", "codex"], False),
    (["run", "--", "hook", "claude-code"], False),
]


def test_the_short_path_reads_what_the_parser_reads() -> None:
    from sandbox.cli import PROG
    from sandbox.cliargs import build_parser
    from sandbox.entry import hook_arguments

    assert [hook_arguments(words) is not None for words, _ in WORDS] == [s for _, s in WORDS]
    for words, short in WORDS:
        if short:
            args = build_parser(PROG, "0", "hook").parse_args(words)
            assert (args.policy, args.audit) == hook_arguments(words), words


# argv[1]: what else the process does first; argv[2]: a marker file for the thread.
EXIT_PROBE = r"""
import atexit, os, sys, threading, time
setup, marker = sys.argv[1], sys.argv[2]
atexit.register(lambda: sys.stderr.write("exit handler ran\n"))
class Noisy:
    def __del__(self):
        sys.stderr.write("finaliser ran\n")
keep = Noisy()
if "thread" in setup:
    def late():
        time.sleep(0.3)
        with open(marker, "w") as fh:
            fh.write("done")
    threading.Thread(target=late).start()
if "idle-worker" in setup:
    from sandbox import threads
    threads.run(lambda: None, "probe-job").join()  # its worker stays, idle
    assert threads.idle_count() == 1 and threading.active_count() == 2
    # Called by the ordinary exit's threading shutdown only (not by atexit's handlers): with
    # a daemon thread alive CPython may skip the finaliser above, so this is the sign.
    threading._register_atexit(lambda: sys.stderr.write("ordinary exit\n"))
sys.argv = ["landgate", "hook", "claude-code"]
from sandbox.entry import entry
entry()
"""


def _exit_probe(tmp_path: Path, setup: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LANDGATE_SESSION_REPORT=str(tmp_path / "no-session"))
    return subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, setup, str(tmp_path / "marker")],
        input="{}",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_short_path_keeps_output_status_and_exit_handlers(tmp_path: Path) -> None:
    got = _exit_probe(tmp_path, "")
    assert got.returncode == 2  # no session answered: the call is blocked
    assert "the session did not answer" in got.stderr and "(tool call blocked)" in got.stderr
    assert "exit handler ran" in got.stderr  # registered handlers still run
    assert "finaliser ran" not in got.stderr  # the short exit was taken


def test_an_idle_worker_does_not_keep_the_short_path_from_being_taken(tmp_path: Path) -> None:
    """The audit writer's flusher runs on a sandbox.threads worker that stays, idle, after
    the writer's close: it holds nothing, so the short exit is still taken (it was not, and
    every hook call paid the interpreter's finalisation, ~7 ms).  The twin below: a thread
    that still runs keeps the ordinary exit."""
    got = _exit_probe(tmp_path, "idle-worker")
    assert got.returncode == 2, got.stderr
    assert "exit handler ran" in got.stderr
    assert "ordinary exit" not in got.stderr  # the short exit was taken


def test_the_short_path_waits_for_a_running_thread(tmp_path: Path) -> None:
    got = _exit_probe(tmp_path, "thread")
    assert got.returncode == 2, got.stderr
    assert (tmp_path / "marker").read_text() == "done"  # the ordinary exit joined it
    assert "finaliser ran" in got.stderr and "exit handler ran" in got.stderr
