"""Whether this install's supervisor (the `sandbox._supervise` extension) is usable.

A host fact, probed once: the planner reports it and the session refuses to
run without it wherever the kernel offers seccomp user notification (there
is no allow-all fallback: a broken install must not run unsupervised).  Only
the C extension is imported here, never `sandbox.supervise` (a layer above).
"""

from __future__ import annotations

from functools import lru_cache

from sandbox.record import Record

# The primitives sandbox.supervise.Supervisor calls (csrc/supervise_api.h); one
# missing means the extension was built from another tree: refuse, do not guess.
REQUIRED_SYMBOLS = (
    "lg_sup_new",
    "lg_sup_run",
    "lg_sup_event_fd",
    "lg_sup_drain",
    "lg_sup_ack",
    "lg_sup_stop",
    "lg_sup_free",
    "lg_sup_add_name",
    "lg_sup_counts",
)


class SupervisorStatus(Record):
    """Whether the supervisor extension is installed, and whether it does the open check."""

    available: bool
    open_check: bool
    detail: str


@lru_cache(maxsize=1)
def supervisor_status() -> SupervisorStatus:
    try:
        from sandbox._supervise import lib
    except ImportError as exc:
        return SupervisorStatus(
            False, False, f"the supervisor extension sandbox._supervise does not import ({exc})"
        )
    missing = [name for name in REQUIRED_SYMBOLS if not hasattr(lib, name)]
    if missing:
        return SupervisorStatus(
            False,
            False,
            "the supervisor extension sandbox._supervise lacks " + ", ".join(missing),
        )
    # The carve-out open check (csrc/supervise_open.c, always built into the extension):
    # the supervisor resolves and judges each open by device+inode and real path,
    # reopens it on an opener thread restricted by the sandbox's own Landlock ruleset
    # and injects the fd with SECCOMP_IOCTL_NOTIF_ADDFD.
    return SupervisorStatus(True, True, "installed")
