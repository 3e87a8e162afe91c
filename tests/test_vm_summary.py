"""vm-tests/run.py's summary names every failed test: CI keeps only what the runner prints, so a
failure on one kernel must be traceable to its test and its assertion from that output alone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "vm-tests" / "run.py"


def load_runner():
    import sys

    sys.path.insert(0, str(RUN.parent))
    try:
        spec = importlib.util.spec_from_file_location("vm_run", RUN)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(RUN.parent))


JUNIT = """<testsuites><testsuite tests="3" failures="1" errors="1" skipped="0">
<testcase classname="tests.net.test_x" name="test_fails" time="2.5">
<failure message="assert">first line
E   assert 'denied' in ''</failure></testcase>
<testcase classname="tests.net.test_x" name="test_errors" time="0.1">
<error message="fixture">E   OSError: boom</error></testcase>
<testcase classname="tests.net.test_x" name="test_passes" time="0.1"/>
</testsuite></testsuites>"""


def test_failed_and_errored_tests_are_named_with_their_assertion(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    runner = load_runner()
    lines = runner.junit_failures(runner.read_junit(junit))
    text = "\n".join(lines)
    assert "FAILURE tests.net.test_x::test_fails (2.5 s)" in text
    assert "E   assert 'denied' in ''" in text
    assert "ERROR tests.net.test_x::test_errors" in text
    assert "OSError: boom" in text
    assert "test_passes" not in text


def test_a_clean_run_prints_no_failure_lines(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        JUNIT.replace('failures="1" errors="1"', 'failures="0" errors="0"').split(
            '<testcase classname="tests.net.test_x" name="test_fails"'
        )[0]
        + "</testsuite></testsuites>"
    )
    runner = load_runner()
    assert runner.junit_failures(runner.read_junit(junit)) == []
    assert runner.read_junit(tmp_path / "absent.xml") is None
    assert runner.junit_failures(None) == []


def test_a_truncated_junit_file_is_reported_not_raised(tmp_path: Path) -> None:
    """A guest killed at its timeout can leave junit.xml half-written: the summary still
    prints, with no counts, instead of a traceback that hides the other kernel's result."""
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT[: len(JUNIT) // 2])
    runner = load_runner()
    assert runner.read_junit(junit) is None
    assert runner.junit_counts(None) == {}
    complete = tmp_path / "complete.xml"
    complete.write_text(JUNIT)
    assert runner.junit_counts(runner.read_junit(complete))["passed"] == 1


def test_a_tree_under_a_guest_tmpfs_is_refused_up_front(tmp_path: Path, capsys) -> None:
    """The guest mounts a fresh tmpfs on /tmp and /run, hiding a tree below them; the runner
    says so before booting anything, instead of the guest failing at `cd $TREE` minutes in."""
    runner = load_runner()
    assert runner.tree_hidden_by(Path("/tmp/x/landgate")) == "/tmp"
    assert runner.tree_hidden_by(Path("/run/user/0/landgate")) == "/run"
    runner.TREE = Path("/tmp/x/landgate")
    assert runner.main() == 2
    err = capsys.readouterr().err
    assert "/tmp/x/landgate is under /tmp" in err and "outside" in err


def test_a_tree_elsewhere_is_seen_by_the_guest() -> None:
    runner = load_runner()
    assert runner.tree_hidden_by(Path("/work/main")) is None
    assert runner.tree_hidden_by(Path("/tmpfoo/landgate")) is None
    assert runner.tree_hidden_by(Path("/srv/run/landgate")) is None
