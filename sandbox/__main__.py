"""`python -m sandbox` is the `landgate` command."""

from sandbox.cli import entry

entry()
