"""The sandbox's devices (issue 13): a minimal /dev, plus the device paths the policy names.

With a mount namespace the sandbox gets its own /dev (csrc/lginit.c minimal_dev):
a tmpfs holding only DEV_NODES bound from the host, a private devpts instance
(/dev/ptmx -> pts/ptmx), a private /dev/shm and the fd links.  A device path the
policy's file rules name literally (`/dev/kvm`, `/dev/dri/`) is bound too; a
glob (`/dev/**`) names none.  Everything else of the host's /dev (kvm,
userfaultfd, block devices, mem, other users' ptys) does not exist in it.

Without a mount namespace there is only the host's /dev, and Landlock rules are
hierarchical: a grant of `/` or `/dev` would grant every node beneath it, with
device ioctls.  There, such a grant is split (split_dev_grants): its other
entries keep the grant and /dev gets only the nodes above and the named ones.
"""

from __future__ import annotations

import os

# Bound from the host into the sandbox's own /dev.
DEV_NODES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
# Made fresh in the sandbox's /dev (not bound): pts (a new devpts instance), shm, links.
DEV_MADE = ("/dev/pts", "/dev/ptmx", "/dev/shm", "/dev/fd", "/dev/stdin", "/dev/stdout")
# What the no-namespace rung grants beneath /dev besides named devices (the host's own).
DEV_NO_NS = (*DEV_NODES, "/dev/pts", "/dev/ptmx", "/dev/shm")


def _beneath(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def named_devices(paths: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Literal paths strictly beneath /dev that a grant names, other than the minimal set."""
    out = []
    for given in paths:
        p = given.rstrip("/") or "/"
        if p == "/dev" or not _beneath(p, "/dev"):
            continue
        if p in DEV_NODES or any(_beneath(p, m) for m in DEV_MADE):
            continue
        if p not in out:
            out.append(p)
    return tuple(sorted(out))


def dev_paths(granted: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The host nodes the sandbox's own /dev binds: the minimal set and the named devices."""
    return DEV_NODES + named_devices(granted)


def split_dev_grants(grants: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """No mount namespace: replace a grant that covers /dev wholesale (`/`, `/dev`) by
    grants of the same rights on its other entries and on the /dev nodes the sandbox may
    use.  Returns the new grants and notes for the plan."""
    out: dict[str, int] = {}
    notes: list[str] = []
    named = named_devices(list(grants))
    for path, acc in grants.items():
        if path == "/dev":
            notes.append(
                "/dev: granted node by node (" + ", ".join(DEV_NO_NS + named) + "), not wholesale"
            )
            for node in (*DEV_NO_NS, *named):
                out[node] = out.get(node, 0) | acc
            continue
        if path == "/":
            try:
                entries = sorted(os.listdir("/"))
            except OSError as exc:
                raise OSError(exc.errno, f"list /: {exc.strerror}") from None
            notes.append(
                "/: granted entry by entry without /dev (entries created at / later are not "
                "granted); /dev node by node"
            )
            for e in entries:
                if e != "dev":
                    out["/" + e] = out.get("/" + e, 0) | acc
            for node in (*DEV_NO_NS, *named):
                out[node] = out.get(node, 0) | acc
            continue
        out[path] = out.get(path, 0) | acc
    return out, notes
