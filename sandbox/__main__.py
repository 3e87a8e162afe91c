"""`python -m sandbox` is the `landgate` command."""

from sandbox.entry import entry

entry()
