"""The session report channel's parsing and bounds, without a sandbox: what a report
becomes in the trail (tagged verdicts, one `malformed` entry, the dropped count)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from sandbox.audit import AuditWriter
from sandbox.audit.reader import iter_entries
from sandbox.session import report as rep


def _report(**kw: object) -> bytes:
    base: dict[str, object] = {
        "integration": "claude-code",
        "tool": "Read",
        "tool_use_id": "t1",
        "verdicts": [
            {
                "action": "file_read",
                "target": "/w/.env",
                "result": "deny",
                "rule": "r1",
                "reason": "dotenv",
            }
        ],
    }
    base.update(kw)
    return json.dumps(base).encode()


def test_a_report_becomes_tagged_entries_and_its_twin_malformed() -> None:
    (entry,) = rep.entries_from(_report())
    assert entry["result"] == "deny" and entry["flags"] == [rep.FLAG]
    assert entry["target"] == "/w/.env" and entry["tool_use_id"] == "t1"
    for bad in (b"\xff", b"[]", b'{"verdicts": 3}', _report(verdicts=[{"result": "maybe"}])):
        (m,) = rep.entries_from(bad)
        assert m["result"] == "malformed" and m["flags"] == [rep.FLAG, "malformed"], bad


def test_fields_are_bounded_and_non_strings_dropped() -> None:
    (entry,) = rep.entries_from(
        _report(verdicts=[{"action": "x" * 10_000, "target": 5, "result": "allow"}])
    )
    assert len(entry["action"]) == 4096 and entry["target"] is None
    (m,) = rep.entries_from(_report(verdicts=[{"result": "allow"}] * (rep.MAX_VERDICTS + 1)))
    assert "malformed" in m["flags"]


def test_another_process_is_named_by_the_kernel(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    writer = AuditWriter(tmp_path / "audit")
    writer.start_session({"layer": "test"})
    channel = rep.ReportChannel()
    channel.start(writer)
    code = (
        "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
        "s.sendto(sys.stdin.buffer.read(), sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", code, channel.path], input=_report(pid=7), check=True)
    deadline = time.monotonic() + 10
    while channel.received < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    channel.close()
    writer.end_session(0)
    writer.close()
    (e,) = [e for e in iter_entries(tmp_path / "audit") if e.get("type") == "decision"]
    assert e["claimed_pid"] == 7 and e["reporter_pid"] not in (7, 0)


def test_channel_records_with_pid_and_counts_what_it_drops(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(rep, "MAX_REPORTS", 3)
    writer = AuditWriter(tmp_path / "audit")
    writer.start_session({"layer": "test"})
    channel = rep.ReportChannel()
    assert (Path(channel.directory).stat().st_mode & 0o777) == 0o700
    channel.start(writer)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        for _ in range(5):
            s.sendto(_report(), channel.path)
        s.sendto(b"x" * (rep.MAX_REPORT + 10), channel.path)
    deadline = time.monotonic() + 10
    while channel.received < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    channel.close()
    writer.end_session(0)
    writer.close()
    assert not Path(channel.directory).exists()
    entries = [e for e in iter_entries(tmp_path / "audit") if e.get("type") == "decision"]
    reported = [e for e in entries if e["flags"] == [rep.FLAG]]
    # Sent by this very process (as the supervisor sends on the sandbox's behalf): the
    # kernel's pid is the channel's own and is not recorded as a reporter.
    assert len(reported) == 3 and all("reporter_pid" not in e for e in reported)
    (dropped,) = [e for e in entries if "dropped" in e["flags"]]
    assert dropped["reason"].startswith("3 report(s) dropped")


def _granted(tmp_path: Path, path_env: str) -> tuple[object, object, rep.ReportChannel]:
    from sandbox.policy import load_policy

    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    pfile = tmp_path / "policy.yaml"
    pfile.write_text(
        f"version: 1\nworkspace: {ws}\nactions:\n"
        "  - action: file_read\n    defaultEffect: deny\n"
        '    rules:\n      - { path: "./**", effect: allow }\n'
        "  - action: network\n    defaultEffect: deny\n"
    )
    policy = load_policy(pfile, cwd=ws)
    channel = rep.ReportChannel()
    try:
        return policy, channel.grant(policy, {"PATH": path_env}), channel
    finally:
        channel.sock.close()
        shutil.rmtree(channel.directory, ignore_errors=True)


def test_grant_adds_exactly_the_baseline_allows(tmp_path: Path) -> None:
    """The socket (network), landgate's install and the policy files (read), and the
    entry point found on PATH (read and execute), after the policy's own rules."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    entry = bindir / "landgate"
    entry.write_text("#!/bin/sh\n")
    entry.chmod(0o755)
    policy, granted, channel = _granted(tmp_path, str(bindir))
    for action in ("network", "file_read"):
        before, after = policy.blocks[action].rules, granted.blocks[action].rules  # type: ignore[attr-defined]
        assert after[: len(before)] == before
        added = after[len(before) :]
        assert [r.index for r in added] == list(range(len(before) + 1, len(after) + 1))
        assert all((r.effect, r.origin, r.action) == ("allow", "baseline", action) for r in added)
        if action == "network":
            (sock,) = added
            assert sock.pattern == f"unix:{channel.path}" and sock.path is None
            assert sock.destination is not None and not sock.execute
            continue
        assert all(r.destination is None and r.path is not None for r in added)
        executable = {r.pattern for r in added if r.execute}
        assert executable == {os.path.realpath(sys.executable), str(entry)}
        assert str(tmp_path / "policy.yaml") in {r.pattern for r in added}
        assert added[-1].pattern == str(entry)
        assert added[-1].comment == "the landgate entry point (the hook)"


def test_grant_without_an_entry_point_on_path(tmp_path: Path) -> None:
    """The twin: no `landgate` on PATH, no rule executing one."""
    policy, granted, _channel = _granted(tmp_path, str(tmp_path / "empty"))
    before = policy.blocks["file_read"].rules  # type: ignore[attr-defined]
    added = granted.blocks["file_read"].rules[len(before) :]  # type: ignore[attr-defined]
    assert added and {r.pattern for r in added if r.execute} == {os.path.realpath(sys.executable)}
