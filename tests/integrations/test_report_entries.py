"""The session's hook channel without a sandbox: a request decided by the session (its
own entry, not flagged) and its allowed twin; what is not a request (framing, input,
size, time, too many) answered with an error and recorded flagged; the hook's side
blocking whenever the session does not answer; the listener check's twins."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.audit import AuditWriter
from sandbox.audit.reader import iter_entries
from sandbox.integrations import hookclient
from sandbox.integrations import hookproto as proto
from sandbox.integrations.hook import SessionDecider, hook_policy
from sandbox.session import report as rep


class Channel:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ws = root / "ws"
        self.ws.mkdir()
        (self.ws / ".env").write_text("API_KEY=secret\n")
        self.writer = AuditWriter(root / "audit")
        self.writer.start_session({"layer": "test"})
        self.channel = rep.ReportChannel(SessionDecider())
        self.channel.grant(hook_policy("claude-code", str(self.ws), None), {"PATH": ""})
        self.channel.start(self.writer)

    def input(self, tool: str, tool_input: dict[str, Any], use_id: str) -> bytes:
        data = {
            "hook_event_name": "PreToolUse",
            "cwd": str(self.ws),
            "tool_name": tool,
            "tool_input": tool_input,
            "tool_use_id": use_id,
        }
        return json.dumps(data).encode()

    def raw(self, data: bytes) -> bytes:
        """Send bytes as they are; the reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.channel.path)
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except BrokenPipeError:
                pass  # refused already: the reply is waiting
            out = b""
            while chunk := s.recv(1 << 16):
                out += chunk
            return out

    def entries(self) -> list[dict[str, Any]]:
        self.channel.close()
        self.writer.end_session(0)
        self.writer.close()
        return [e for e in iter_entries(self.root / "audit") if e.get("type") == "decision"]


@pytest.fixture
def ch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Channel]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    c = Channel(tmp_path)
    yield c
    c.channel.close()  # idempotent enough: a test that read its entries closed it already


def test_a_request_is_decided_by_the_session_and_its_allowed_twin(ch: Channel) -> None:
    out, err, code = hookclient.ask_session(
        ch.input("Read", {"file_path": str(ch.ws / ".env")}, "t1"), ch.channel.path
    )
    assert (code, err) == (0, "")
    reason = json.loads(out)["hookSpecificOutput"]["permissionDecisionReason"]
    assert "coding-agent.yaml:" in reason
    assert hookclient.ask_session(ch.input("Bash", {"command": "ls"}, "t2"), ch.channel.path) == (
        "",
        "",
        0,
    )
    read, ls = ch.entries()
    assert (read["tool_use_id"], read["result"], read["layer"]) == ("t1", "deny", "tool-hook")
    assert read["rule"] in reason and not read.get("flags")
    assert (ls["tool_use_id"], ls["action"], ls["result"]) == ("t2", "shell_exec", "allow")
    assert not ls.get("flags")


def test_what_is_not_a_request_gets_an_error_and_a_flagged_entry(ch: Channel) -> None:
    forged = {"verdicts": [{"action": "shell_exec", "target": "x", "result": "allow"}]}
    bad = [
        json.dumps(forged).encode(),  # the previous design's report: no framing
        proto.request(b"", "relative/cwd", b"{}"),  # framing with a cwd that is not absolute
        proto.request(b"", "/", b"not json"),  # framed, the input not a PreToolUse call
        proto.request(b"", "/", json.dumps({"hook_event_name": "Stop"}).encode()),
    ]
    for data in bad:
        parsed = proto.parse_reply(ch.raw(data))
        assert isinstance(parsed, tuple) and parsed[2] == 2 and parsed[0] == "", data
        assert "(tool call blocked)" in parsed[1]
    entries = ch.entries()
    assert len(entries) == len(bad)
    assert all(e["flags"] == [rep.FLAG, "malformed"] for e in entries)
    assert all(e["result"] == "malformed" and e["layer"] == "tool-hook" for e in entries)
    assert "not JSON" in entries[2]["reason"]


def test_oversize_and_late_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(rep, "MAX_REQUEST", 1000)
    monkeypatch.setattr(rep, "READ_TIMEOUT_S", 0.3)
    c = Channel(tmp_path)
    parsed = proto.parse_reply(c.raw(b"x" * 5000))
    assert isinstance(parsed, tuple) and parsed[2] == 2 and "larger than 1000" in parsed[1]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(c.channel.path)
        s.sendall(b"landgate-hook 1\n")  # and nothing more, never shut down
        parsed = proto.parse_reply(s.recv(1 << 16))
    assert isinstance(parsed, tuple) and parsed[2] == 2 and "not complete in time" in parsed[1]
    big, late = c.entries()
    assert "larger than 1000 bytes" in big["reason"] and big["flags"] == [rep.FLAG, "malformed"]
    assert "not complete within" in late["reason"]


def test_too_many_requests_are_refused_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(rep, "MAX_REQUESTS", 2)
    monkeypatch.setattr(rep, "MAX_CLIENTS", 1)
    c = Channel(tmp_path)
    ls = c.input("Bash", {"command": "ls"}, "t")
    # One slot: a client that connects and sends nothing holds it; the next is refused
    # at once (not queued behind it) and counted.
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    holder.connect(c.channel.path)
    deadline = time.monotonic() + 10
    while c.channel.received < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    parsed = proto.parse_reply(c.raw(b""))
    assert isinstance(parsed, tuple) and parsed[2] == 2, parsed
    assert "too many hook requests at once" in parsed[1]
    out, err, code = hookclient.ask_session(ls, c.channel.path)
    assert code == 2 and out == ""  # the hook blocks the call (the reply, or a reset)
    holder.close()  # its request is empty: malformed (the 1st request)
    deadline = time.monotonic() + 10
    while code == 2 and time.monotonic() < deadline:  # the slot comes back
        out, err, code = hookclient.ask_session(ls, c.channel.path)
    assert code == 0 and out == ""  # the 2nd request, decided
    err = ""
    while "more than" not in err and time.monotonic() < deadline:  # the slot comes back
        out, err, code = hookclient.ask_session(ls, c.channel.path)
    assert code == 2 and "more than 2 hook requests" in err
    entries = c.entries()
    assert [e["result"] for e in entries if not e.get("flags")] == ["allow"]
    (dropped,) = [e for e in entries if "dropped" in (e.get("flags") or ())]
    assert dropped["reason"].startswith(f"{c.channel.dropped} hook request(s) refused")
    assert c.channel.dropped >= 3
    assert not Path(c.channel.directory).exists()


def test_no_session_no_allow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook's side: a socket gone, refused, silent, or answering garbage blocks."""
    inp = b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {}}'
    out, err, code = hookclient.ask_session(inp, str(tmp_path / "gone.sock"))
    assert (out, code) == ("", 2) and "session did not answer" in err
    monkeypatch.setattr(hookclient, "SESSION_TIMEOUT_S", 0.3)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(tmp_path / "silent.sock"))
        silent.listen(1)  # accepted by the kernel, never answered
        out, err, code = hookclient.ask_session(inp, str(tmp_path / "silent.sock"))
    assert (out, code) == ("", 2) and "did not answer within" in err
    for reply, why in ((b"garbage", "malformed"), (proto.decline("no"), "declined: no")):
        path = str(tmp_path / f"r{len(reply)}.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
            srv.bind(path)
            srv.listen(1)

            def serve(srv: socket.socket = srv, reply: bytes = reply) -> None:
                conn, _ = srv.accept()
                conn.recv(1 << 16)
                conn.sendall(reply)
                conn.close()

            t = threading.Thread(target=serve)
            t.start()
            out, err, code = hookclient.ask_session(inp, path)
            t.join()
        assert (out, code) == ("", 2) and why in err, err


LISTENER = r"""
import ctypes, socket, sys
if sys.argv[2] == "nnp":
    assert ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
c.recv(1 << 20)
c.sendall(b"landgate-hook 1\nA" + bytes(8))
"""


@pytest.mark.parametrize("nnp", [False, True])
def test_the_listener_check_and_its_twin(tmp_path: Path, nnp: bool) -> None:
    """A listener in this pid namespace is believed only without no_new_privs (every
    process of a sandbox has it): the twin without it is answered."""
    path = str(tmp_path / "l.sock")
    mode = "nnp" if nnp else "plain"
    with subprocess.Popen(
        [sys.executable, "-c", LISTENER, path, mode], stdout=subprocess.PIPE, text=True
    ) as p:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
        out, err, code = hookclient.ask_session(b"{}", path)
        if nnp:
            p.kill()
    if nnp:
        assert code == 2 and "no_new_privs" in err and "not the session's" in err, err
    else:
        assert (out, err, code) == ("", "", 0)


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
    channel = rep.ReportChannel(SessionDecider())
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


class _CountingDecider(SessionDecider):
    def __init__(self) -> None:
        self.warmed = threading.Event()
        self.warms = 0

    def warm(self, policy: Any) -> None:
        self.warms += 1
        self.warmed.set()


def _counting_channel(tmp_path: Path, name: str) -> tuple[rep.ReportChannel, _CountingDecider]:
    root = tmp_path / name
    (root / "ws").mkdir(parents=True)
    writer = AuditWriter(root / "audit")
    writer.start_session({"layer": "test"})
    decider = _CountingDecider()
    channel = rep.ReportChannel(decider)
    channel.grant(hook_policy("claude-code", str(root / "ws"), None), {"PATH": ""})
    channel.start(writer)
    return channel, decider


def test_a_short_session_never_warms_the_decider_and_a_longer_one_does_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warming (imports, the exec judge's tables) is CPU a `landgate run -- make` that
    never runs a hook must not pay, nor wait for at close."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(rep, "WARM_AFTER_S", 30.0)
    short, short_decider = _counting_channel(tmp_path, "short")
    short.close()
    assert short_decider.warms == 0
    monkeypatch.setattr(rep, "WARM_AFTER_S", 0.05)
    longer, longer_decider = _counting_channel(tmp_path, "longer")
    assert longer_decider.warmed.wait(10)
    time.sleep(0.2)  # more timeouts pass: still once
    longer.close()
    assert longer_decider.warms == 1


def test_the_first_request_warms_the_decider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(rep, "WARM_AFTER_S", 30.0)
    channel, decider = _counting_channel(tmp_path, "asked")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(channel.path)
        s.shutdown(socket.SHUT_WR)
        while s.recv(1 << 16):
            pass
    assert decider.warmed.wait(10)
    channel.close()
    assert decider.warms == 1


def test_the_deciding_thread_runs_jobs_in_order_on_one_thread() -> None:
    """The channel's one deciding thread (what a one-worker ThreadPoolExecutor did): every
    job on the same thread, in order; `call` returns the job's result or raises its error
    in the caller; `post` does not wait; `stop` finishes what was queued."""
    worker = rep._DecidingThread()
    seen: list[tuple[str, int]] = []
    gate = threading.Event()
    worker.post(lambda: gate.wait(10))  # holds the thread: what follows queues behind it
    worker.post(lambda: seen.append(("post", threading.get_ident())))
    gate.set()
    assert worker.call(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ValueError, match="bad input"):
        worker.call(_raise, ValueError("bad input"))
    worker.post(lambda: seen.append(("last", threading.get_ident())))
    worker.stop()
    assert [name for name, _ in seen] == ["post", "last"]
    assert len({ident for _, ident in seen}) == 1 and seen[0][1] != threading.get_ident()


def _raise(exc: BaseException) -> None:
    raise exc
