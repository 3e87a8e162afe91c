"""`landgate doctor`: what this host's kernel can enforce, and the rung it runs on (DESIGN §4)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sandbox.host.probe import HostCapabilities
from sandbox.policy.layers import (
    ACCESS_TIME_LIMITS,
    RUNG_GAPS,
    LayerState,
    LayerStatus,
    Rung,
    landlock_gaps,
    rung_of,
)


@dataclass(frozen=True, slots=True)
class HostReport:
    host: HostCapabilities
    nobody_user_mount_ns: bool  # can an unprivileged user get user+mount namespaces?
    nobody_pid_ns: bool
    layers: tuple[LayerStatus, ...]
    rung: Rung

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host.to_dict(),
            "unprivileged": {
                "user_mount_ns": self.nobody_user_mount_ns,
                "pid_ns": self.nobody_pid_ns,
            },
            "layers": [layer.to_dict() for layer in self.layers],
            "rung": self.rung,
            "rung_does_not_cover": RUNG_GAPS[self.rung],
            "landlock_abi_gaps": [
                {"right": name, "here": what}
                for name, what in landlock_gaps(self.host.landlock_abi)
            ],
        }


def _host_layers(h: HostCapabilities) -> tuple[LayerStatus, ...]:
    abi = h.landlock_abi
    out = []
    if abi > 0:
        gaps = landlock_gaps(abi)
        # a right another layer takes over below its ABI ("judged instead") is not missing
        missing = [n for n, what in gaps if not what.startswith("judged instead")]
        judged = [n for n, what in gaps if what.startswith("judged instead")]
        detail = (
            "missing: " + ", ".join(missing) if missing else "every Landlock right this design uses"
        )
        if judged:
            detail += "; judged by the supervisor and the seccomp filter instead: " + ", ".join(
                judged
            )
        detail += "; " + (h.kernel_denials_gap or "kernel file denials recorded (host audit)")
        out.append(
            LayerStatus(
                "filesystem", "partial" if gaps else "enforced", f"Landlock ABI {abi}", detail
            )
        )
    else:
        out.append(
            LayerStatus("filesystem", "absent", "Landlock", h.landlock_error or "not available")
        )
    # Carve-outs and protected paths: the supervisor's open check at access time, the same
    # mechanism on every rung (no launch masks).
    ns = h.mount_ns and h.pid_ns
    view = "in the sandbox's mount namespace" if ns else "in the host's view (no mount namespace)"
    # Protected paths made at run time: the supervisor performs the name-changing syscalls on
    # a thread under the sandbox's Landlock ruleset (csrc/supervise_fsop.c; the list and the
    # reason for each syscall: `landgate plan`, sandbox/plan/seccomp_table.py NOTIFY_FSOP).
    out.append(
        LayerStatus(
            "carve-outs",
            "enforced" if h.seccomp_notify else "absent",
            "supervisor open check",
            (
                f"decided at access time, on the object, {view}; names made at run time "
                "(rename, link, symlink, mkdir, mknod, truncate) judged and performed by the "
                "supervisor; not covered: " + "; ".join(ACCESS_TIME_LIMITS)
            )
            if h.seccomp_notify
            else "no seccomp user notification: a deny inside a grant cannot be enforced",
        )
    )
    notify_detail = ", ".join(
        f"{n}: {'yes' if ok else 'no'}"
        for n, ok in (
            ("USER_NOTIF", h.seccomp_notify),
            ("WAIT_KILLABLE_RECV", h.wait_killable_recv),
            ("SYNC_WAKE_UP", h.sync_wakeup),
        )
    )
    state: LayerState = (
        "enforced"
        if h.seccomp_notify and h.wait_killable_recv
        else ("partial" if h.seccomp_notify else "absent")
    )
    out.append(LayerStatus("exec", state, "seccomp USER_NOTIF", notify_detail))
    # The supervisor connects a duplicate of the caller's socket: it must take that fd from
    # the calling thread (csrc/supervise_net.c lg_caller_fd).
    if h.pidfd_thread:
        fd_detail = "the caller's socket via pidfd_open(PIDFD_THREAD)"
        connect_state = state
    elif h.kcmp_file:
        fd_detail = (
            "the caller's socket via its leader's pidfd, checked with kcmp (no PIDFD_THREAD)"
        )
        connect_state = state
    else:
        fd_detail = (
            "no PIDFD_THREAD (6.9) and no kcmp: connects from threads other than a "
            "process's first are refused"
        )
        connect_state = "partial" if state != "absent" else state
    out.append(
        LayerStatus("connect", connect_state, "seccomp USER_NOTIF", f"{notify_detail}; {fd_detail}")
    )
    # Egress: the network layer decides its rung (sandbox.net), the same call `run` makes.
    from sandbox.host.network import network_capabilities

    caps = network_capabilities()
    # A policy that reaches nothing outside gets the loopback-only namespace, which needs
    # neither nftables nor pasta (sandbox/net/rung_lo.py): said, so no rung is guessed.
    lo = network_capabilities(nft=False)
    lo_note = (
        f"; a policy that reaches nothing outside the sandbox gets a loopback-only network "
        f"namespace (rung {lo.rung}, no route out)"
        if lo.rung != "connect-only"
        else ""
    )
    out.append(
        LayerStatus(
            "egress",
            "enforced" if caps.enforced else "absent",
            "user + network namespace (pasta) + nftables + DNS view"
            if caps.rung == "userns"
            else "network namespace + nftables + DNS view",
            f"rung {caps.rung}; nft: {h.nft or 'not installed'}"
            + "".join(f"; {n}" for n in caps.notes)
            + lo_note,
        )
    )
    out.append(
        LayerStatus(
            "hardening",
            "enforced" if h.seccomp_filter else "absent",
            "seccomp BPF",
            "filter mode available" if h.seccomp_filter else "no seccomp filter mode",
        )
    )
    out.append(
        LayerStatus(
            "namespaces",
            "enforced" if ns else "absent",
            "mount + pid" + ("" if h.is_root else " in a user namespace"),
            f"user: {'yes' if h.user_ns else 'no'}, mount: {'yes' if h.mount_ns else 'no'}, "
            f"pid: {'yes' if h.pid_ns else 'no'}, net: {'yes' if h.net_ns else 'no'}, "
            f"memfd_noexec: {'yes' if h.memfd_noexec else 'no'}, cgroup: {h.cgroup}",
        )
    )
    return tuple(out)


def host_report(host: HostCapabilities | None = None) -> HostReport:
    from sandbox.host.probe import (
        CLONE_NEWNS,
        CLONE_NEWPID,
        CLONE_NEWUSER,
        NOBODY_UID,
        probe_host,
        probe_unshare,
    )

    h = host if host is not None else probe_host()
    if os.geteuid() == 0:
        nobody_mnt = probe_unshare(CLONE_NEWUSER | CLONE_NEWNS, NOBODY_UID)
        nobody_pid = nobody_mnt and probe_unshare(
            CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID, NOBODY_UID
        )
    else:
        nobody_mnt, nobody_pid = h.user_ns, h.pid_ns
    layers = _host_layers(h)
    egress = next(layer for layer in layers if layer.name == "egress")
    rung = rung_of(
        landlock=h.landlock_abi > 0,
        notify=h.seccomp_notify,
        namespaces=h.mount_ns and h.pid_ns,
        netns=egress.active,
    )
    return HostReport(
        host=h, nobody_user_mount_ns=nobody_mnt, nobody_pid_ns=nobody_pid, layers=layers, rung=rung
    )


def _rung_summary(report: HostReport) -> list[str]:
    """What this host does not cover: the rung's gaps, then this Landlock ABI's."""
    abi = report.host.landlock_abi
    gaps = landlock_gaps(abi)
    rung_gap = RUNG_GAPS[report.rung]
    if report.rung == "full" and gaps:
        rung_gap = f"only what Landlock ABI {abi} lacks:"
    return [
        f"  not covered on this rung: {rung_gap}",
        *(f"    {name}: {what}" for name, what in gaps),
    ]


def render_doctor(report: HostReport) -> str:
    h = report.host
    yn = {True: "yes", False: "no"}
    lines = [
        f"kernel            {h.kernel}",
        f"landlock          ABI {h.landlock_abi}"
        + (f" ({h.landlock_error})" if h.landlock_error else ""),
        (
            f"seccomp           filter {yn[h.seccomp_filter]}, USER_NOTIF {yn[h.seccomp_notify]}, "
            f"WAIT_KILLABLE_RECV {yn[h.wait_killable_recv]}, SYNC_WAKE_UP {yn[h.sync_wakeup]}"
        ),
        (
            f"namespaces        {'root' if h.is_root else f'uid {h.uid}'}: user {yn[h.user_ns]}, "
            f"mount {yn[h.mount_ns]}, pid {yn[h.pid_ns]}, net {yn[h.net_ns]}"
        ),
        (
            f"unprivileged      user+mount {yn[report.nobody_user_mount_ns]}, "
            f"pid {yn[report.nobody_pid_ns]}"
        ),
        f"memfd_noexec      {yn[h.memfd_noexec]}",
        (
            f"nftables          {h.nft or 'not installed'} "
            f"(libnftables: {h.libnftables or 'not found'})"
        ),
        f"cgroup            {h.cgroup}"
        + (
            ""
            if h.cgroup == "v2"
            else (
                " (no unified cgroup v2 hierarchy: "
                "the tree is contained by the pid namespace instead)"
            )
        ),
        (
            "audit             durability batch (default): entries written at once, fsynced at "
            "least every 100 ms, so a crash loses at most that window; strict: each entry fsynced "
            "before the action proceeds"
        ),
        "",
        "layers",
        *("  " + layer.line() for layer in report.layers),
        "",
        f"rung: {report.rung}",
        *_rung_summary(report),
        (
            "  ladder: full (namespaces + Landlock + unotify + nftables) -> no-network-namespace "
            "-> no-namespaces -> no-landlock"
        ),
    ]
    return "\n".join(lines)
