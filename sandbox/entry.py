"""The `landgate` command's first step (pyproject's console script).

`landgate hook claude-code` runs once per tool call Claude Code makes, inside
`landgate run` too, where every file the interpreter opens is checked by the
supervisor.  That command line (the one `landgate init --agent claude-code` installs,
with at most `--policy P` and `--audit DIR` after it) goes straight to the hook
client, sandbox.integrations.hookclient, which loads only C modules of the standard
library before it sends the request: the command line's parser (argparse, gettext,
shutil, typing, the subcommand table) cost ~8 ms of each call in a sandbox (issue 19).
Every other command line, and any other spelling of that one (`-p`, `--policy=P`, an
option twice, a value that starts with "-"), goes to sandbox.cli, which parses it as
it always has.
"""

import sys

_HOOK_OPTIONS = ("--policy", "--audit")

# The cyclic collector's young-generation threshold in a `landgate run` process and a
# `landgate hook claude-code` one, set before anything of landgate's is imported.
# Python's default (700 surviving container objects) ran 16 young and 1 middle collection
# during the launch of /bin/true under the read-only preset, 1.6-2.0 ms of it, and 17
# (1.3 ms and more) in a hook call decided in its own process (issue 19): both keep what
# they make (modules, classes, the policy, the plan), so those passes free next to
# nothing.  The launch makes 11,800-15,700 objects (policy cache warm) and up to 23,200
# (cold) with the bundled presets, the hook call ~12,000: no pass runs before the agent
# does, or before the hook answers.  The collector stays on: a long session's Python side
# (the event drain, the DNS view, the hook channel) is collected once 30,000 objects have
# survived since the last pass (a pause of ~0.7 ms there; the C decision loop never waits
# for it), which also bounds the cyclic garbage it can hold.
RUN_GC_THRESHOLD = 30_000


def hook_arguments(words: list[str]) -> tuple[str | None, str | None] | None:
    """(policy, audit directory) when `words` is `hook claude-code` followed only by
    `--policy P` and `--audit DIR`, each at most once, with a value that does not start
    with "-" (argparse reads exactly these the same way); None for anything else."""
    if words[:2] != ["hook", "claude-code"] or len(words) % 2:
        return None
    got: dict[str, str] = {}
    for flag, value in zip(words[2::2], words[3::2], strict=True):
        if flag not in _HOOK_OPTIONS or flag in got or value.startswith("-"):
            return None
        got[flag] = value
    return got.get("--policy"), got.get("--audit")


def entry() -> None:
    hook = hook_arguments(sys.argv[1:])
    if hook is not None or sys.argv[1:2] == ["run"]:
        # One launch or one hook decision, then exit: see RUN_GC_THRESHOLD.
        import gc

        _young, *older = gc.get_threshold()
        gc.set_threshold(RUN_GC_THRESHOLD, *older)
    if hook is not None:
        from sandbox.integrations.hookclient import main

        main(*hook)  # exits
    from sandbox.cli import entry as cli_entry

    cli_entry()
