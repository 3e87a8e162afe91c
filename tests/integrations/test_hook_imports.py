"""What `landgate hook claude-code` loads before it sends its request (issue 19).

The command runs once per tool call, inside `landgate run` too, where every file the
interpreter opens is checked: sandbox.entry sends exactly that command line to the hook
client, which loads only C modules of the standard library (argparse, typing, socket
and pathlib cost ~10 ms there).  The twin: the command line's parser, which every other
spelling goes through, does load them, so the probe sees what it looks for.
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
