"""Landlock's own denials in the trail (issue 12, item 3): the kernel's audit records.

Three kinds of test:
- the parser and the domain mapping on recorded record text (no kernel);
- the real reader: a fixture turns the host's audit on for one test and restores it;
- the twin: audit disabled (or not root) -> `plan`, `doctor` and the session's recorded
  layers state the gap, and the session reads nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_kernel, scaled
from helpers import cli
from launch.lg_helpers import ROOT, landgate

from sandbox.audit import verify_trail
from sandbox.host.kaudit import (
    AUDIT_LANDLOCK_ACCESS,
    AUDIT_LANDLOCK_DOMAIN,
    LandlockAccess,
    LandlockDomain,
    audit_enabled,
    parse_record,
    recording_gap,
)
from sandbox.host.probe import probe_host
from sandbox.policy import load_policy
from sandbox.supervise.kaudit import KernelDenials, blocker_actions

GAP = "kernel file denials are not recorded: host audit is disabled (landgate never enables it)"

# Record text as this kernel (6.18) sends it on AUDIT_NLGRP_READLOG (payloads of types
# 1423 and 1424; the same serial for the access record and the domain's first-denial record).
ACCESS = (
    b'audit(1764870000.123:4711): domain=1a2b3c4d5 blockers=fs.read_file path="/etc/x" '
    b'dev="vda" ino=1234\x00'
)
DOMAIN = (
    b"audit(1764870000.123:4711): domain=1a2b3c4d5 status=allocated mode=enforcing pid=300 "
    b'uid=0 exe="/usr/bin/python3.11" comm="python3"'
)
ENDED = b"audit(1764870001.500:4720): domain=1a2b3c4d5 status=deallocated denials=1"


def _nl(typ: int, payload: bytes) -> bytes:
    n = 16 + len(payload)
    return struct.pack("=IHHII", n, typ, 0, 0, 0) + payload + b"\0" * ((-n) % 4)


# --- the parser, on recorded text ---------------------------------------------------------


def test_access_record_parses() -> None:
    rec = parse_record(AUDIT_LANDLOCK_ACCESS, ACCESS)
    assert rec == LandlockAccess(
        serial="1764870000.123:4711",
        ts=1764870000.123,
        domain="1a2b3c4d5",
        blockers=("fs.read_file",),
        path="/etc/x",
        dev="vda",
        ino="1234",
        detail="",
    )


def test_hex_encoded_path_and_several_blockers() -> None:
    # audit_log_untrustedstring: a path with a space is printed as hex, unquoted
    hexpath = b"/w/my file".hex().upper()
    text = f"audit(1.5:9): domain=ab blockers=fs.write_file,fs.truncate path={hexpath} ino=7"
    rec = parse_record(AUDIT_LANDLOCK_ACCESS, text.encode())
    assert isinstance(rec, LandlockAccess)
    assert rec.path == "/w/my file" and rec.blockers == ("fs.write_file", "fs.truncate")
    assert blocker_actions(rec.blockers) == ("file_write",)
    assert blocker_actions(("fs.read_file", "fs.write_file", "fs.execute")) == (
        "file_read",
        "file_write",
        "shell_exec",
    )


def test_domain_records_parse() -> None:
    rec = parse_record(AUDIT_LANDLOCK_DOMAIN, DOMAIN)
    assert rec == LandlockDomain(
        serial="1764870000.123:4711",
        domain="1a2b3c4d5",
        status="allocated",
        pid=300,
        exe="/usr/bin/python3.11",
        denials=None,
    )
    end = parse_record(AUDIT_LANDLOCK_DOMAIN, ENDED)
    assert isinstance(end, LandlockDomain) and end.status == "deallocated" and end.denials == 1
    assert parse_record(1326, b"audit(1.1:1): auid=0 sig=31") is None  # not Landlock's


class _Sock:
    def close(self) -> None:
        pass


def _reader(policy_path: Path | None, pid: int) -> tuple[KernelDenials, list]:
    events: list = []
    policy = load_policy(policy_path) if policy_path else None
    r = KernelDenials(
        _Sock(),  # type: ignore[arg-type]
        pid,
        policy,
        events.append,
        stderr_fd=-1,
        creator_exe="/usr/bin/python3.11",
    )
    return r, events


def test_our_domain_is_recorded_with_the_policy_rule(tmp_path: Path) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text(
        "version: 1\nworkspace: /w\nactions:\n  - action: file_read\n    defaultEffect: deny\n"
        '    rules:\n      - { path: "/etc/x", effect: deny }\n'
    )
    r, events = _reader(pol, 300)
    # the access record comes first; it waits for its domain record (same event)
    r.feed(_nl(AUDIT_LANDLOCK_ACCESS, ACCESS))
    assert events == [] and "1a2b3c4d5" in r.pending
    r.feed(_nl(AUDIT_LANDLOCK_DOMAIN, DOMAIN))
    assert len(events) == 1
    ev = events[0]
    assert (ev.action, ev.target, ev.result, ev.layer) == (
        "file_read",
        "/etc/x",
        "deny",
        "landlock",
    )
    assert ev.rule == f"rule 1, {pol}:7" and ev.errno == 13
    assert "blockers=fs.read_file" in (ev.detail or "")
    entry = ev.to_entry()
    assert entry["layer"] == "landlock" and entry["target"] == "/etc/x"
    # later records of the same domain go straight through; the end record is noted
    r.feed(_nl(AUDIT_LANDLOCK_ACCESS, ACCESS.replace(b"/etc/x", b"/srv/y")))
    # a path the policy allows (the baseline's /etc) that the ruleset did not grant
    r.feed(_nl(AUDIT_LANDLOCK_ACCESS, ACCESS.replace(b"/etc/x", b"/etc/z")))
    r.feed(_nl(AUDIT_LANDLOCK_DOMAIN, ENDED))
    assert [e.target for e in events] == ["/etc/x", "/srv/y", "/etc/z"]
    assert (events[1].rule or "").startswith(f"default deny of file_read ({pol}")
    assert (events[2].rule or "").startswith("not granted by the Landlock ruleset (the policy")
    assert r.ended == {"1a2b3c4d5"}


def test_other_domains_are_not_recorded() -> None:
    # another process's domain (other pid), and a domain the agent's own program created
    # (same pid after the exec, but its exe is the program, not landgate's interpreter)
    for domain_text in (DOMAIN.replace(b"pid=300", b"pid=301"), DOMAIN.replace(b"3.11", b"3")):
        r, events = _reader(None, 300)
        r.feed(_nl(AUDIT_LANDLOCK_ACCESS, ACCESS) + _nl(AUDIT_LANDLOCK_DOMAIN, domain_text))
        r.feed(_nl(AUDIT_LANDLOCK_ACCESS, ACCESS))
        assert events == [] and r.pending == {} and r.foreign == {"1a2b3c4d5"}
    # the twin: pid and exe match -> recorded
    r, events = _reader(None, 300)
    r.feed(_nl(AUDIT_LANDLOCK_ACCESS, ACCESS) + _nl(AUDIT_LANDLOCK_DOMAIN, DOMAIN))
    assert [e.target for e in events] == ["/etc/x"]
    assert events[0].rule == "not granted by the Landlock ruleset"  # no policy to ask


def test_recording_gap_texts() -> None:
    assert recording_gap(7, 0) == GAP
    assert recording_gap(7, 1) is None and recording_gap(7, 2) is None
    assert "needs root" in (recording_gap(7, -1) or "")
    assert "ABI 6" in (recording_gap(6, 1) or "")


# --- the twin: audit disabled -> the gap is stated, never silence ------------------------


def _fs_detail(plan) -> str:
    return next(layer for layer in plan.layers if layer.name == "filesystem").detail


def test_plan_and_doctor_state_the_gap_when_audit_is_disabled(tmp_path: Path) -> None:
    """Planning only (any kernel): an ABI 7 host with audit disabled states the gap, with
    audit enabled names the recording; below ABI 7 the ABI's own gap is stated whatever the
    audit state (Debian 12's 6.1 and 6.12: ABI 2 and 6)."""
    from sandbox.host.doctor import host_report, render_doctor
    from sandbox.plan import build_plan

    host = probe_host()
    pol = tmp_path / "p.yaml"
    pol.write_text("version: 1\nworkspace: .\nactions: []\n")
    off = host.without(landlock_abi=7, kernel_audit=0)
    assert GAP in _fs_detail(build_plan(load_policy(pol), off))
    assert GAP in render_doctor(host_report(off))
    # the twin: audit enabled (as root) -> no gap, the recording is named instead
    on = host.without(landlock_abi=7, kernel_audit=1)
    fs_on = _fs_detail(build_plan(load_policy(pol), on))
    assert "not recorded" not in fs_on and "kernel file denials recorded" in fs_on
    for abi in (2, 6):
        old = host.without(landlock_abi=abi, kernel_audit=1)
        abi_gap = f"kernel file denials are not recorded: Landlock ABI {abi} has no audit logging"
        assert abi_gap in _fs_detail(build_plan(load_policy(pol), old))
        assert abi_gap in render_doctor(host_report(old))


def test_doctor_states_this_kernels_recording() -> None:
    """The live twin of the above: `landgate doctor` on this kernel names the recording or
    the gap the probe finds (ABI < 7: the ABI's gap, whatever the audit state)."""
    host = probe_host()
    require_kernel(host.landlock_abi >= 1, "Landlock")
    p = cli.landgate(
        "doctor", env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=scaled(120), text=False
    )
    assert p.returncode == 0, p.stderr
    gap = recording_gap(host.landlock_abi, host.kernel_audit)
    if host.landlock_abi < 7:
        assert gap and f"Landlock ABI {host.landlock_abi} has no audit logging" in gap
    assert (gap or "kernel file denials recorded (host audit)").encode() in p.stdout, p.stdout


def _policy(world) -> Path:
    return world.write_policy(
        f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "./", effect: allow }}
  - action: shell_exec
    defaultEffect: allow
""",
        name="kaudit-policy.yaml",
    )


def _entries(world) -> list[dict]:
    trail = world.root / "xdg" / "state" / "landgate" / "audit"
    out: list[dict] = []
    for seg in sorted(trail.glob("trail-*.jsonl")):
        out += [json.loads(line) for line in seg.read_bytes().splitlines() if line.strip()]
    return out


def _outside(world) -> Path:
    secret = world.root / "outside" / "notes.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"outside " + world.secret)
    os.chmod(secret.parent, 0o755)
    os.chmod(secret, 0o644)
    return secret


def test_session_records_the_gap_when_audit_is_disabled(world) -> None:
    """Landlock refuses, nothing can be read: the session's recorded layers state why (host
    audit disabled; not root; or, below ABI 7, the ABI) and no kernel entry appears."""
    host = probe_host()
    require_kernel(host.landlock_abi >= 1, "Landlock")
    gap = host.kernel_denials_gap
    if gap is None:
        pytest.skip("the host's audit is enabled: this twin needs it disabled (as booted here)")
    outside = _outside(world)
    p = landgate(world, ["sh", "-c", f"cat {outside}; echo rc=$?"], policy=_policy(world))
    assert b"rc=1" in p.stdout and world.secret not in p.stdout  # Landlock denied it
    entries = _entries(world)
    start = next(e for e in entries if e["type"] == "session_start")
    fs = next(layer for layer in start["applied_layers"] if layer["name"] == "filesystem")
    assert gap in fs["detail"]
    assert not [e for e in entries if e.get("layer") == "landlock"]  # nothing to read


# --- the real reader: audit on for one test, then restored ------------------------------


def _audit_set_enabled(value: int) -> None:
    """AUDIT_SET enabled=value (struct audit_status: mask=AUDIT_STATUS_ENABLED)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
    try:
        s.settimeout(2.0)
        s.bind((0, 0))
        body = struct.pack("=8I", 1, value, 0, 0, 0, 0, 0, 0)
        s.send(struct.pack("=IHHII", 16 + len(body), 1001, 1 | 4, 1, 0) + body)
        data = s.recv(8192)
        _, typ, _, _, _ = struct.unpack_from("=IHHII", data)
        if typ == 2:  # NLMSG_ERROR: 0 is the ack
            err = -struct.unpack_from("=i", data, 16)[0]
            if err:
                raise OSError(err, f"AUDIT_SET enabled={value}: {os.strerror(err)}")
    finally:
        s.close()


@pytest.fixture
def host_audit_enabled() -> Iterator[None]:
    """Turns the host's audit on for one test and restores the state it found.

    Residue, accepted on a test machine only: enabling audit sets the kernel's
    audit_ever_enabled until reboot, so every task created afterwards gets an audit
    context (syscall entry/exit work: a performance-only effect, no records while audit
    is disabled again), and while it is on, with no audit daemon, records also go to the
    kernel log.  landgate itself never does this (sandbox.host.kaudit)."""
    host = probe_host()
    # below ABI 7 there is nothing to read: the skip is allowed where doctor states the gap
    require_kernel(
        host.landlock_abi >= 7,
        "Landlock ABI 7 (audit logging)",
        doctor_states=recording_gap(host.landlock_abi, 1),
    )
    require_kernel(host.is_root, "root (reading the host's audit records)")
    before = audit_enabled()
    if before == 0:
        _audit_set_enabled(1)
    try:
        yield
    finally:
        if before == 0:
            _audit_set_enabled(0)
            assert audit_enabled() == 0  # restored


def test_denials_outside_every_grant_are_recorded_once_by_the_layer_that_decided(
    world, host_audit_enabled
) -> None:
    """A read outside every grant is refused by the supervisor's open check (it sees every
    open under this policy, and its opener thread's own Landlock refusal is its evidence):
    one entry per attempt, layer carve-outs, and the kernel audit reader adds no duplicate
    (that record belongs to the opener's domain, not the agent's).  An exec of a program
    outside the policy's executable paths is refused by Landlock in the agent's own domain,
    where no landgate code sees it: only the kernel audit reader records it."""
    outside = _outside(world)
    prog = outside.parent / "tool"
    shutil.copy("/bin/true", prog)
    os.chmod(prog, 0o755)
    inside = world.workspace / "README.md"
    script = (
        f"cat {outside}; echo rc=$?; cat {outside}; cat {inside}; "
        f"{prog}; echo exec=$?; {prog}; /bin/true; echo twin=$?"
    )
    p = landgate(world, ["sh", "-c", script], policy=_policy(world))
    assert b"rc=1" in p.stdout and world.secret not in p.stdout, p.stderr
    assert b"# demo workspace" in p.stdout  # the allowed read ran
    assert b"exec=126" in p.stdout and b"twin=0" in p.stdout, p.stdout  # EACCES; /bin/true ran
    line = f'landgate: denied file_read "{outside}" (default deny'.encode()
    assert p.stderr.count(line) == 1, p.stderr  # once per distinct denial
    entries = _entries(world)
    reads = [e for e in entries if e.get("target") == str(outside)]
    assert [e["layer"] for e in reads] == ["carve-outs"] * 2, reads  # each attempt, once
    assert all(e["action"] == "file_read" and e["result"] == "deny" for e in reads)
    assert all(e["rule"].startswith("default deny of file_read") for e in reads)
    kernel = [e for e in entries if e.get("layer") == "landlock"]
    # each refused exec is one record; its blockers (execute, and the read an exec needs)
    # are one entry per policy action
    execs = [e for e in kernel if e["target"] == str(prog)]
    assert sorted(e["action"] for e in execs) == ["file_read"] * 2 + ["shell_exec"] * 2, kernel
    assert all(e["result"] == "deny" for e in execs)
    assert all("Landlock EXECUTE" in e["rule"] for e in execs if e["action"] == "shell_exec")
    assert not [e for e in kernel if e["target"] in (str(inside), "/usr/bin/true", str(outside))]
    start = next(e for e in entries if e["type"] == "session_start")
    fs = next(layer for layer in start["applied_layers"] if layer["name"] == "filesystem")
    assert "kernel file denials recorded" in fs["detail"]
    trail = world.root / "xdg" / "state" / "landgate" / "audit"
    assert verify_trail(trail, key_directory=world.root / "xdg" / "config" / "landgate").ok
    # `landgate audit show --denied` lists it
    env = dict(world.env, PYTHONPATH=str(ROOT), XDG_STATE_HOME=str(world.root / "xdg" / "state"))
    env["XDG_CONFIG_HOME"] = str(world.root / "xdg" / "config")
    show = cli.landgate(
        "audit", "show", "--denied", "--json", env=env, timeout=scaled(60), text=False
    )
    shown = [json.loads(line) for line in show.stdout.splitlines() if line.strip()]
    assert [e["layer"] for e in shown if e.get("target") == str(outside)] == ["carve-outs"] * 2
    assert [e["layer"] for e in shown if e.get("target") == str(prog)] == ["landlock"] * 4
