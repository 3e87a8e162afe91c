"""One exception hierarchy for landgate.

Every error carries the exit code the command line uses for it, and a message
that is one line, says what went wrong and, where it helps, how to proceed.
The library raises these; only `sandbox.cli` turns them into stderr + exit code.
"""

from __future__ import annotations

# Exit codes (DESIGN §3b, §4).
EXIT_OK = 0
EXIT_POLICY = 1  # invalid policy; `explain` decision deny; audit verify found tampering
EXIT_USAGE = 2  # bad command line; unreadable audit trail
EXIT_LAUNCH = 125  # landgate itself failed before the agent ran
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127


class LandgateError(Exception):
    """Base class: a failure landgate reports as one line and an exit code."""

    exit_code = EXIT_LAUNCH

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(LandgateError):
    """The command line or an API call was malformed."""

    exit_code = EXIT_USAGE


class PolicyError(LandgateError):
    """A policy file is invalid; rendered as `file:line:column: message`."""

    exit_code = EXIT_POLICY

    def __init__(
        self, message: str, *, file: str = "<policy>", line: int = 0, column: int = 0
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PolicyErrors(PolicyError):
    """Several policy errors found in one pass; str() is one line per error."""

    def __init__(self, errors: list[PolicyError]) -> None:
        if not errors:
            raise ValueError("PolicyErrors needs at least one error")
        first = errors[0]
        super().__init__(first.message, file=first.file, line=first.line, column=first.column)
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(PolicyError.__str__(e) for e in self.errors)


class LaunchError(LandgateError):
    """The sandbox could not be set up (exit 125).

    E.g. `landlock_restrict_self: Operation not permitted`."""

    exit_code = EXIT_LAUNCH


class EnforcementUnavailable(LaunchError):
    """A layer the policy requires is missing on this host (exit 125, says how to proceed)."""


class AuditError(LandgateError):
    """The audit trail cannot be read or written (unreadable: exit 2)."""

    exit_code = EXIT_USAGE


class AuditTampered(LandgateError):
    """`audit verify` found the trail altered; names the first bad seq (exit 1)."""

    exit_code = EXIT_POLICY
