"""The API frameworks rely on: sandbox.run from many threads and from asyncio, typed
denials, and sandbox.Session (one launch, one audit session, many commands).

Denial assertions come with their allowed twins; what leaked is checked on the
output itself, not only on exit codes.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import World

import sandbox
from sandbox.audit.reader import iter_entries


def _policy(world: World) -> str:
    return f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "./", effect: allow }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./", effect: allow }}
  - action: shell_exec
    defaultEffect: deny
    rules:
      - {{ command: "sh*", effect: allow }}
      - {{ command: "cat *", effect: allow }}
      - {{ command: "echo *", effect: allow }}
      - {{ command: "true", effect: allow }}
      - {{ command: "id*", effect: deny }}
"""


def lg_options(world: World) -> dict[str, Any]:
    """sandbox.run's / Session's options for the world: the policy above, a private trail."""
    return {
        "policy": str(world.write_policy(_policy(world))),
        "audit": str(world.root / "audit"),
        "env": dict(world.env),
        "cwd": str(world.workspace),
    }


@pytest.fixture
def lg(world: World) -> dict[str, Any]:
    return lg_options(world)


def test_run_from_eight_threads_at_once(lg: dict[str, Any]) -> None:
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            barrier.wait()
            argv = ["sh", "-c", f"echo thread-{i}"] if i % 2 else ["sh", "-c", "/usr/bin/id"]
            results[i] = sandbox.run(argv, capture_output=True, **lg)
        except Exception as exc:  # noqa: BLE001 - reported below with the thread's index
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    sessions = {r.session for r in results.values()}
    assert len(sessions) == 8  # eight audit sessions, none mixed up
    for i, r in results.items():
        if i % 2:
            assert r.returncode == 0 and r.stdout == f"thread-{i}\n".encode()
            assert r.denied == []
        else:
            assert r.returncode != 0 and r.stdout == b""
            assert [d.action for d in r.denied][:1] == ["shell_exec"]
            assert all(d.layer == "exec" and "id" in d.target for d in r.denied)


def test_run_async_keeps_the_loop_free(lg: dict[str, Any]) -> None:
    async def main() -> tuple[list[Any], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        results = await asyncio.gather(
            sandbox.run_async(["sh", "-c", "echo a"], capture_output=True, **lg),
            sandbox.run_async(["sh", "-c", "/usr/bin/id"], capture_output=True, **lg),
        )
        t.cancel()
        return list(results), ticks

    (ok, bad), ticks = asyncio.run(main())
    assert ok.stdout == b"a\n" and not ok.denied
    assert bad.denied and bad.denied[0].action == "shell_exec"
    assert ticks > 0  # the event loop ran while the sessions did


def test_denial_is_typed_with_rule_layer_reason(lg: dict[str, Any], world: World) -> None:
    r = sandbox.run(["sh", "-c", "/usr/bin/id"], capture_output=True, **lg)
    d = r.denied[0]
    assert isinstance(d, sandbox.Denial)
    assert (d.action, d.layer) == ("shell_exec", "exec")
    assert d.rule is not None and "policy.yaml:" in d.rule
    assert "id*" in d.reason  # the evaluator's sentence, not the raw record
    assert d.to_dict()["target"] == d.target


def test_session_runs_100_commands_in_one_audit_session(lg: dict[str, Any]) -> None:
    with sandbox.Session(lg["policy"], cwd=lg["cwd"], env=lg["env"], audit=lg["audit"]) as s:
        outs = [s.run(f"echo n{i}") for i in range(100)]
        denied = s.run("/usr/bin/id")
        after = s.run(["echo", "still", "alive"])
    assert [o.stdout for o in outs] == [f"n{i}\n".encode() for i in range(100)]
    assert all(o.returncode == 0 and not o.denied for o in outs)
    assert denied.returncode != 0 and denied.stdout == b""
    assert denied.denied and all(d.action == "shell_exec" for d in denied.denied)
    assert after.stdout == b"still alive\n" and not after.denied
    starts = [e for e in iter_entries(Path(lg["audit"])) if e.get("type") == "session_start"]
    assert len(starts) == 1  # one launch
    decisions = [
        e
        for e in iter_entries(Path(lg["audit"]))
        if e.get("type") == "decision" and e.get("session") == s.session
    ]
    assert any(e["result"] == "deny" and "id" in e["target"] for e in decisions)


def test_session_exit_status_stderr_and_cwd(lg: dict[str, Any], world: World) -> None:
    with sandbox.Session(lg["policy"], cwd=lg["cwd"], env=lg["env"], audit=lg["audit"]) as s:
        r = s.run("echo out; echo err >&2; exit 7")
        assert (r.returncode, r.stdout, r.stderr) == (7, b"out\n", b"err\n")
        r = s.run("printf 'no newline'")
        assert r.stdout == b"no newline"
        r = s.run("cat app.ts", cwd=world.workspace / "src")
        assert r.stdout == world.app_source.read_bytes()
        r = s.run("cat /etc/hostname > /dev/null; echo $((1+2))")
        assert r.stdout == b"3\n"


def test_session_kernel_denies_reads_outside_the_policy(lg: dict[str, Any], world: World) -> None:
    with sandbox.Session(lg["policy"], cwd=lg["cwd"], env=lg["env"], audit=lg["audit"]) as s:
        secret = s.run(f"cat {world.ssh_key}")
        twin = s.run(f"cat {world.app_source}")
    assert world.secret not in secret.stdout and secret.returncode != 0
    assert twin.stdout == world.app_source.read_bytes()


def test_session_timeout_ends_the_session(lg: dict[str, Any]) -> None:
    import subprocess

    s = sandbox.Session(lg["policy"], cwd=lg["cwd"], env=lg["env"], audit=lg["audit"])
    with pytest.raises(subprocess.TimeoutExpired):
        s.run("while :; do :; done", timeout=0.5)
    with pytest.raises(sandbox.LaunchError, match="ended"):
        s.run("echo x")
    s.close()
