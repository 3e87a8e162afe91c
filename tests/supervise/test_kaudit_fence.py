"""The kernel-denials reader's end of session: a fence in the audit stream (issue 19).

At the end of a session the reader waits for the agent's last Landlock records, which
kauditd delivers asynchronously.  It used to wait 0.1 s at every session's close (a
domain that logged nothing leaves no end record to wait for); it now makes a denial of
its own (csrc/audit_fence.c) and waits for that record, which kauditd delivers after
every record queued before it.  These tests turn the host's audit on for their duration
(the fixture of tests/session/test_kernel_denials.py, which restores it).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest
from conftest import require_kernel
from launch.lg_helpers import landgate
from session.test_kernel_denials import (  # noqa: F401 - host_audit_enabled: a fixture
    ACCESS,
    DOMAIN,
    _entries,
    _nl,
    _outside,
    _policy,
    host_audit_enabled,
)

import sandbox.supervise.kaudit as kaudit_mod
from sandbox.host.kaudit import (
    AUDIT_LANDLOCK_ACCESS,
    AUDIT_LANDLOCK_DOMAIN,
    audit_enabled,
    readlog_socket,
    recording_gap,
)
from sandbox.host.probe import probe_host
from sandbox.supervise.kaudit import KernelDenials

pytestmark = pytest.mark.kernel

NOBODY_PID = 0x3FFFFF  # above pid_max's default: no domain's creator


def test_stop_waits_for_records_delivered_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """kauditd late (0.3 s, past the old 0.1 s wait): the agent's last denial and then the
    fence's record arrive only after stop() began.  stop() returns once the fence's record
    is read, with the agent's denial recorded.  Fails with stop() not waiting for the
    fence (and with the old 0.1 s wait: the record comes after it)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    fence_pid = 4242
    exe = "/usr/bin/python3.11"  # DOMAIN's exe: the creator of the agent's domain (pid 300)

    def late() -> None:
        time.sleep(0.3)
        theirs.send(_nl(AUDIT_LANDLOCK_ACCESS, ACCESS) + _nl(AUDIT_LANDLOCK_DOMAIN, DOMAIN))
        fence = DOMAIN.replace(b"domain=1a2b3c4d5", b"domain=77").replace(b"pid=300", b"pid=4242")
        theirs.send(_nl(AUDIT_LANDLOCK_DOMAIN, fence))

    reaped: list[int] = []

    def make_fence() -> int:
        threading.Thread(target=late, daemon=True).start()
        return fence_pid

    monkeypatch.setattr(kaudit_mod, "_make_fence", make_fence)
    monkeypatch.setattr(kaudit_mod, "_reap_fence", reaped.append)
    events: list = []
    reader = KernelDenials(ours, 300, None, events.append, stderr_fd=-1, creator_exe=exe)
    reader.start()
    try:
        reader.stop(grace=5.0)
    finally:
        theirs.close()
    assert [e.target for e in events] == ["/etc/x"]  # the agent's (pid 300), not the fence's
    assert reaped == [fence_pid]


def _reader() -> tuple[KernelDenials, list]:
    events: list = []
    reader = KernelDenials(readlog_socket(), NOBODY_PID, None, events.append, stderr_fd=-1)
    reader.start()
    return reader, events


@pytest.mark.usefixtures("host_audit_enabled")
def test_the_fence_record_arrives_and_is_nobodys_denial() -> None:
    reader, events = _reader()
    try:
        assert reader._fenced(time.monotonic() + 10)  # its domain record was read
    finally:
        reader.stop()
    assert events == []  # the fence is landgate's own denial, not the session's


def test_the_twin_without_audit_no_fence_record_comes() -> None:
    """Audit off: the fence's denial is not logged, so nothing passes for its record (the
    reader then falls back to its old bounded wait)."""
    host = probe_host()
    # As host_audit_enabled asks: a kernel below ABI 7 (Debian's 6.1 and 6.12 in vm-tests)
    # may skip only because landgate reports that gap; root is a precondition, not a feature.
    require_kernel(
        host.landlock_abi >= 7,
        "Landlock ABI 7 (audit logging)",
        doctor_states=recording_gap(host.landlock_abi, 1),
    )
    require_kernel(host.is_root, "root (reading the host's audit records)")
    if audit_enabled():
        pytest.skip("the host's audit is on: this twin needs it off (as booted here)")
    reader, events = _reader()
    try:
        assert not reader._fenced(time.monotonic() + 0.3)
    finally:
        reader.stop(grace=0.3)
    assert events == []


@pytest.mark.usefixtures("host_audit_enabled")
def test_a_denial_just_before_exit_is_recorded(world) -> None:
    """The agent's last act is an exec Landlock refuses (no landgate code sees it: only
    the kernel's record tells), and the session ends at once.  Its record must be in the
    trail every time.  Fails with the reader's stop not waiting for the fence (checked
    by hand: records missing in most rounds)."""
    outside = _outside(world)
    prog = outside.parent / "tool"
    shutil.copy("/bin/true", prog)
    os.chmod(prog, 0o755)
    rounds = 5
    for _ in range(rounds):
        p = landgate(world, ["sh", "-c", f"exec {prog}"], policy=_policy(world))
        assert p.returncode == 126, p.stderr
    execs = [
        e
        for e in _entries(world)
        if e.get("layer") == "landlock" and e.get("target") == str(prog)
        if e.get("action") == "shell_exec"
    ]
    assert len(execs) == rounds, execs
