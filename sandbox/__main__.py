"""`python -m sandbox` is the `landgate` command."""

from sandbox.cli import main

raise SystemExit(main())
