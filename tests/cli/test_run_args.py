"""`landgate run`'s arguments without argparse (sandbox.cli._run_args, issue 19).

The plain forms are read by a few lines of cli.py; everything else goes to argparse.  The
rule: whenever the short reader answers, its answer is argparse's, attribute for
attribute; and it knows exactly the options cliargs declares for `run`.
"""

from __future__ import annotations

import itertools

import pytest

from sandbox import __version__
from sandbox.cli import _RUN_OPTIONS, PROG, _run_args
from sandbox.cliargs import SUBCOMMANDS, build_parser

OPTION_WORDS = (
    [],
    ["-q"],
    ["--quiet"],
    ["--policy", "read-only"],
    ["-p", "ci.yaml"],
    ["--policy", ""],
    ["--audit", "/tmp/trail"],
    ["--simulate"],
    ["--best-effort"],
    ["-q", "--policy", "a", "--policy", "b"],  # the last one wins
    ["--policy=read-only"],  # argparse's forms from here on
    ["-pread-only"],
    ["-qp", "x"],
    ["--pol", "x"],
    ["--sim"],
    ["--policy", "-x"],
    ["--policy"],
    ["--audit", "--", "x"],
    ["-h"],
    ["--bogus"],
)
TAILS = ([], ["--"], ["--", "/bin/true"], ["/bin/true"], ["cmd", "-q", "--policy", "x"], ["-1"])


def _argparse(words: list[str]) -> dict | None:
    try:
        return vars(build_parser(PROG, __version__, "run").parse_args(words))
    except SystemExit:
        return None  # argparse refuses (or prints help): the short reader must not answer


def test_the_short_reader_answers_as_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    answered = declined = 0
    for opts, tail in itertools.product(OPTION_WORDS, TAILS):
        words = ["run", *opts, *tail]
        fast = _run_args(words)
        if fast is None:
            declined += 1
            continue
        answered += 1
        assert vars(fast) == _argparse(words), words
    capsys.readouterr()  # argparse's usage lines for the refused ones
    # the twin: both paths were taken, the plain forms by the short reader
    assert answered >= 10 * len(TAILS) - 10 and declined >= 10 * len(TAILS)
    assert _run_args(["run", "-q", "--policy", "read-only", "--", "/bin/true"]) is not None


def test_the_short_reader_knows_exactly_cliargs_run_options() -> None:
    """An option added to cliargs' `run` without teaching _run_args fails here."""
    declared: dict[str, str] = {}
    for flags, kw in SUBCOMMANDS["run"]["args"]:
        if flags[0].startswith("-"):
            dest = kw.get("dest") or flags[0].lstrip("-").replace("-", "_")
            takes_value = kw.get("action") not in ("store_true", "store_false")
            declared.update(dict.fromkeys(flags, (dest, takes_value)))
    assert declared == dict(_RUN_OPTIONS.items())
