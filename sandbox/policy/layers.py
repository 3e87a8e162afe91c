"""The one layer vocabulary: layer names, their aliases, per-layer status, the rung ladder.

Low in the import graph (policy/) so that the loader's `enforcement.require`,
the planner, `doctor`, the refusal message and the session-start audit entry
all use these names and this structure (STYLE.md: every protection reports what
it actually did).  A protection that is not in force is never silently
skipped: its state says so and `detail` says why.
"""

from __future__ import annotations

from sandbox.record import Record

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
# (`from __future__ import annotations`): the checker sees the Literal aliases, run time `str`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    LayerState = Literal["enforced", "partial", "absent", "observed"]
else:
    LayerState = str
# DESIGN §4's ladder for the whole sandbox (the network layer's own rungs are
# sandbox.host.network.NetRung: netns, userns, connect-only).
if TYPE_CHECKING:
    Rung = Literal["full", "no-network-namespace", "no-namespaces", "no-landlock"]
else:
    Rung = str

# The layers `doctor` and `plan` print, in their order (DESIGN §2's table).
LAYERS: tuple[str, ...] = (
    "filesystem",
    "carve-outs",
    "exec",
    "connect",
    "egress",
    "hardening",
    "namespaces",
)

# Mechanism names a policy may also write under `enforcement.require`, mapped
# explicitly to the layers they stand for.  `supervisor` and `unotify` are the
# same thing (the seccomp user-notification supervisor) and decide two layers.
ALIASES: dict[str, tuple[str, ...]] = {
    "landlock": ("filesystem",),
    "seccomp": ("hardening",),
    "supervisor": ("exec", "connect"),
    "unotify": ("exec", "connect"),
    "nftables": ("egress",),
    "netns": ("egress",),
    "network-namespace": ("egress",),
}


def known_layer_names() -> tuple[str, ...]:
    """Every name `enforcement.require` accepts: the layers, then the aliases."""
    return LAYERS + tuple(ALIASES)


def layers_for(name: str) -> tuple[str, ...]:
    """The layers a required name stands for; KeyError for a name nobody knows."""
    if name in LAYERS:
        return (name,)
    return ALIASES[name]


RUNG_GAPS: dict[str, str] = {
    "full": "nothing the design covers is missing",
    "no-network-namespace": "no network namespace: connect() decisions only, host names pinned at "
    "launch; UDP and DNS exfiltration are not contained",
    "no-namespaces": "no mount namespace: the supervisor resolves opens in the host's view; "
    "no pid namespace: orphaned descendants are killed by a subreaper, not the kernel; "
    "no network namespace: hostnames are pinned at launch, DNS is not contained",
    "no-landlock": "no kernel filesystem rules: reads, writes and executes are not confined "
    "(refused unless enforcement.require allows it)",
}


# What the access-time file decision (the supervisor's open check, every rung) does not
# cover: `plan`, `status` and `doctor` print it (DESIGN "Carve-outs and protected paths").
ACCESS_TIME_LIMITS: tuple[str, ...] = (
    (
        "decisions are made at open: a file descriptor opened before the sandbox started, "
        "inherited, or passed in over a unix socket is not judged again, nor are reads, "
        "writes or mmap through an fd already open"
    ),
    (
        "a file opened by a program outside the sandbox (a daemon, an editor) on the agent's "
        "behalf is not seen"
    ),
    (
        "hard links made before launch are caught by device + inode only for deny rules "
        "naming a literal path or directory tree (at most 10000 entries looked at); a link to "
        "a file matched only by a glob (**/.env) is caught once the file was opened under its "
        "denied name"
    ),
    (
        "a kernel (Landlock) refusal is recorded only for opens the supervisor performs; the "
        "others (stat, exec, opens the filter leaves to the kernel) only through the kernel "
        "audit reader where the host has audit enabled"
    ),
)


# What a Landlock ABI below the one this design is written for leaves out, and what landgate
# does about it: (right, first ABI with it, what happens below that ABI).  `doctor` lists
# these with the rung, `plan` in the filesystem layer.
LANDLOCK_GAPS: tuple[tuple[str, int, str], ...] = (
    (
        "refer",
        2,
        "not covered: Landlock ABI 1 refuses every cross-directory rename and link",
    ),
    (
        "truncate",
        3,
        (
            "judged instead: the supervisor judges truncate(2) (file_write of the object) and "
            "performs it by reopening the file for writing under the sandbox's ruleset (without "
            "a supervisor the seccomp filter refuses it: EACCES); openat2 and O_RDONLY|O_TRUNC "
            "opens are refused by the filter (ENOSYS/EACCES); ftruncate needs a descriptor "
            "opened for writing, which Landlock judges"
        ),
    ),
    (
        "TCP ports",
        4,
        "not covered by Landlock: connect destinations are judged by the supervisor alone",
    ),
    (
        "ioctl on devices",
        5,
        (
            "not covered: ioctl on device files is not restricted (the seccomp filter refuses "
            "TIOCSTI and TIOCLINUX only)"
        ),
    ),
    (
        "signal/abstract-unix scoping",
        6,
        (
            "not covered by Landlock: signals and abstract unix sockets reach processes outside "
            "the sandbox that the pid and network namespaces do not hide"
        ),
    ),
)


def landlock_gaps(abi: int) -> tuple[tuple[str, str], ...]:
    """(right, what happens instead) for each right this Landlock ABI lacks; () without Landlock."""
    if abi <= 0:
        return ()
    return tuple((name, what) for name, need, what in LANDLOCK_GAPS if abi < need)


class LayerStatus(Record):
    name: str  # filesystem, carve-outs, exec, connect, egress, hardening, namespaces
    state: LayerState
    mechanism: str  # "Landlock ABI 7", "seccomp BPF + USER_NOTIF", ...
    detail: str  # what is and is not covered, and why

    @property
    def active(self) -> bool:
        return self.state in ("enforced", "partial")

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "state": self.state,
            "mechanism": self.mechanism,
            "detail": self.detail,
        }

    def line(self) -> str:
        return f"{self.name:<11} {self.state:<9} {self.mechanism}: {self.detail}"


def rung_of(*, landlock: bool, notify: bool, namespaces: bool, netns: bool = True) -> Rung:
    """DESIGN §4's ladder: full -> no namespaces -> no Landlock.

    Between the first two: mount and pid namespaces but no network namespace
    (e.g. a user without the unprivileged network rung): the filesystem promises
    hold, the network ones fall back to connect decisions."""
    del notify  # a missing supervisor shows in the exec/connect layers, not the rung
    if not landlock:
        return "no-landlock"
    if not namespaces:
        return "no-namespaces"
    return "full" if netns else "no-network-namespace"
