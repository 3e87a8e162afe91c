"""The package builds its native modules and the command line answers."""

from helpers.cli import landgate

import sandbox
from sandbox import _probe


def test_version_flag() -> None:
    out = landgate("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"landgate {sandbox.__version__}"


def test_native_probe_reports_landlock_abi() -> None:
    abi = _probe.lib.lg_probe_landlock_abi()
    # Either a real ABI version or a negative errno; never 0.
    assert abi != 0


def test_no_command_is_usage_error() -> None:
    out = landgate()
    assert out.returncode == 2
    assert "usage" in out.stderr.lower()


def test_unknown_subcommand_is_usage_error_without_traceback() -> None:
    out = landgate("frobnicate")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
