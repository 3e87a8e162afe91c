"""The `landgate` command's first step (pyproject's console script).

`landgate hook claude-code` runs once per tool call Claude Code makes, inside
`landgate run` too, where every file the interpreter opens is checked by the
supervisor.  Exactly that command line (the one `landgate init --agent claude-code`
installs) goes straight to the hook client, sandbox.integrations.hookclient, which
loads only C modules of the standard library before it sends the request: the
command line's parser (argparse, gettext, shutil, the subcommand table, typing) cost
~8 ms of each call in a sandbox (issue 19).  Any other command line, that one with an
option included, goes to sandbox.cli as before.
"""

import sys


def entry() -> None:
    if sys.argv[1:] == ["hook", "claude-code"]:
        from sandbox.integrations.hookclient import main

        main()  # exits
    from sandbox.cli import entry as cli_entry

    cli_entry()
