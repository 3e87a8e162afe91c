"""`landgate hook claude-code`'s short path (sandbox.entry): what it loads, what it reads.

The command runs once per tool call, inside `landgate run` too, where every file the
interpreter opens is checked: sandbox.entry sends that command line (options: --policy,
--audit) to the hook client, which loads only C modules of the standard library
(argparse, typing, socket and pathlib cost ~10 ms there).  The twin: the command line's
parser, which every other spelling goes through, does load them, so the probe sees what
it looks for.  And the short path reads the options it takes exactly as the parser does;
anything else goes to the parser.
"""

from __future__ import annotations

import subprocess
import sys

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
    loaded = _loaded("sandbox.entry", "sandbox.cli")
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
    from sandbox.cli import build_parser
    from sandbox.entry import hook_arguments

    assert [hook_arguments(words) is not None for words, _ in WORDS] == [s for _, s in WORDS]
    for words, short in WORDS:
        if short:
            args = build_parser("hook").parse_args(words)
            assert (args.policy, args.audit) == hook_arguments(words), words
