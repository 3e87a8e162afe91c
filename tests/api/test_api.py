"""sandbox.run: the Python API enforces exactly what `landgate run` enforces.

One allowed/denied twin per action kind (file_read, file_write, shell_exec,
network), asserting on what leaked (the secret's bytes, the server's log, the
file on disk) and on the session's decisions read back from the trail; then
the API's own contract: stdio, cwd/env, timeout, Policy objects, and errors
that carry the CLI's messages.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import World, scaled
from helpers.cli import landgate

import sandbox
from sandbox.errors import LandgateError, PolicyError, UsageError

PY3 = "/usr/bin/python3"


def _policy(world: World) -> str:
    ws, home = world.workspace, world.home
    return f"""\
version: 1
mode: enforce
workspace: {ws}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "{home}/.ssh/", effect: deny }}
      - {{ path: "./", effect: allow }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "./", effect: allow }}
  - action: shell_exec
    defaultEffect: deny
    rules:
      - {{ command: "true", effect: allow }}
      - {{ command: "cat *", effect: allow }}
      - {{ command: "sleep *", effect: allow }}
      - {{ command: "touch *", effect: allow }}
      - {{ command: "id*", effect: deny }}
  - action: network
    defaultEffect: deny
    rules:
      - {{ destination: "localhost:{world.allowed_server.port}", effect: allow }}
"""


@pytest.fixture
def lg(world: World, tmp_path: Path) -> dict[str, Any]:
    """Common arguments: the world's policy, a private audit dir, the world's env."""
    policy = world.write_policy(_policy(world))
    audit = world.root / "audit"
    return {
        "policy": str(policy),
        "audit": str(audit),
        "env": dict(world.env),
        "cwd": str(world.workspace),
    }


def _denials(result: sandbox.api.RunResult, action: str) -> list[sandbox.Denial]:
    return [d for d in result.denied if d.action == action]


def _wait_for(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# ------------------------------------------------------------------ twins


def test_file_read_twin(world: World, lg: dict[str, Any]) -> None:
    allowed = sandbox.run(["cat", str(world.app_source)], capture_output=True, **lg)
    assert allowed.returncode == 0
    assert allowed.stdout == world.app_source.read_bytes()

    denied = sandbox.run(["cat", str(world.dotenv)], capture_output=True, **lg)
    assert world.secret not in (denied.stdout or b"")
    assert world.secret not in (denied.stderr or b"")
    denied_key = sandbox.run(["cat", str(world.ssh_key)], capture_output=True, **lg)
    assert world.secret not in (denied_key.stdout or b"")
    assert denied_key.returncode != 0


def test_decisions_are_the_sessions_entries(world: World, lg: dict[str, Any], tmp_path) -> None:
    first = sandbox.run(["cat", str(world.app_source)], capture_output=True, **lg)
    second = sandbox.run(["cat", str(world.dotenv)], capture_output=True, **lg)
    assert first.session and second.session and first.session != second.session
    for result in (first, second):
        assert result.decisions[0]["type"] == "session_start"
        assert result.decisions[0]["argv"] == result.args
        assert {d["session"] for d in result.decisions} == {result.session}
        assert result.decisions[-1]["type"] == "session_end"


def test_file_write_twin(world: World, lg: dict[str, Any]) -> None:
    target_ok = world.workspace / "src" / "out.txt"
    allowed = sandbox.run(["sh", "-c", f"echo written > {target_ok}"], **lg)
    assert allowed.returncode == 0
    assert target_ok.read_text() == "written\n"

    outside = world.home / "planted.txt"
    denied = sandbox.run(["sh", "-c", f"echo planted > {outside}"], capture_output=True, **lg)
    assert denied.returncode != 0
    assert not outside.exists()
    before = world.dotenv.read_bytes()
    sandbox.run(["sh", "-c", f"echo overwritten > {world.dotenv}"], capture_output=True, **lg)
    assert world.dotenv.read_bytes() == before


def test_shell_exec_twin(world: World, lg: dict[str, Any]) -> None:
    allowed = sandbox.run(["sh", "-c", "/bin/true && echo ran-true"], capture_output=True, **lg)
    assert allowed.returncode == 0
    assert b"ran-true" in allowed.stdout

    denied = sandbox.run(["sh", "-c", "/usr/bin/id; echo exit=$?"], capture_output=True, **lg)
    assert b"uid=" not in denied.stdout  # id never ran
    assert b"exit=0" not in denied.stdout


def test_denials_are_in_the_decisions(world: World, lg: dict[str, Any], tmp_path) -> None:
    allowed = sandbox.run(["sh", "-c", "/bin/true"], capture_output=True, **lg)
    assert not allowed.denied
    denied = sandbox.run(["sh", "-c", "/usr/bin/id"], capture_output=True, **lg)
    hits = _denials(denied, "shell_exec")
    assert hits, f"no shell_exec denial in the session's decisions: {denied.decisions}"
    assert any("id" in d.target for d in hits)
    assert all(d.layer == "exec" and d.rule and d.reason for d in hits)
    # Not 127.0.0.1: in the sandbox's own network namespace that is its private loopback
    # (always usable, DESIGN §3), where nothing listens.  A documentation address (TEST-NET-1)
    # the policy does not allow is refused by the supervisor before any packet leaves.
    client = f"import socket; socket.create_connection(('192.0.2.1', {world.denied_server.port}))"
    denied = sandbox.run([PY3, "-c", client], capture_output=True, **lg)
    hits = _denials(denied, "network")
    assert hits, f"no network denial in the session's decisions: {denied.decisions}"
    assert any(str(world.denied_server.port) in d.target for d in hits)


def test_network_twin(world: World, lg: dict[str, Any]) -> None:
    client = (
        "import socket, sys\n"
        "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)\n"
        "s.sendall(sys.argv[2].encode()); s.close()\n"
    )
    secret = world.secret.decode()
    allowed = sandbox.run(
        [PY3, "-c", client, str(world.allowed_server.port), secret], capture_output=True, **lg
    )
    assert allowed.returncode == 0, allowed.stderr
    assert _wait_for(lambda: world.secret in world.allowed_server.received)

    denied = sandbox.run(
        [PY3, "-c", client, str(world.denied_server.port), secret], capture_output=True, **lg
    )
    assert denied.returncode != 0
    time.sleep(0.2)
    assert world.denied_server.connections == 0
    assert world.secret not in world.denied_server.received


# ------------------------------------------------------------------ the API's contract


def test_input_capture_cwd_env(world: World, lg: dict[str, Any]) -> None:
    result = sandbox.run(["cat"], input=b"from stdin\n", capture_output=True, **lg)
    assert result.stdout == b"from stdin\n"
    env = dict(lg.pop("env"), LANDGATE_API_PROBE="probe-value")
    result = sandbox.run(
        ["sh", "-c", "pwd; echo $LANDGATE_API_PROBE"], capture_output=True, env=env, **lg
    )
    assert result.stdout.decode().split() == [str(world.workspace), "probe-value"]
    assert result.args == ["sh", "-c", "pwd; echo $LANDGATE_API_PROBE"]


def test_output_not_captured_goes_to_our_fds(world: World, lg: dict[str, Any], capfd) -> None:
    result = sandbox.run(["sh", "-c", "echo to-stdout; echo to-stderr >&2"], **lg)
    assert result.returncode == 0 and result.stdout is None and result.stderr is None
    out, err = capfd.readouterr()
    assert "to-stdout" in out and "to-stderr" in err


def test_exit_status_and_check(world: World, lg: dict[str, Any]) -> None:
    result = sandbox.run(["sh", "-c", "exit 7"], **lg)
    assert result.returncode == 7
    with pytest.raises(subprocess.CalledProcessError):
        result.check_returncode()
    assert sandbox.run(["/nonexistent/program"], **lg).returncode == 127


def test_timeout_kills_the_tree(world: World, lg: dict[str, Any]) -> None:
    marker = world.workspace / "after-sleep"
    with pytest.raises(subprocess.TimeoutExpired):
        sandbox.run(["sh", "-c", f"sleep 30; touch {marker}"], timeout=1, **lg)
    assert not marker.exists()


def test_policy_object(world: World, lg: dict[str, Any]) -> None:
    policy = sandbox.Policy.load(lg.pop("policy"))
    result = sandbox.run(["cat", str(world.app_source)], policy=policy, capture_output=True, **lg)
    assert result.returncode == 0 and result.stdout == world.app_source.read_bytes()
    denied = sandbox.run(["cat", str(world.dotenv)], policy=policy, capture_output=True, **lg)
    assert world.secret not in (denied.stdout or b"")


def test_a_policy_object_protects_the_sessions_audit_dir(world: World, lg: dict[str, Any]) -> None:
    """A Policy loaded before the session knows nothing of `audit=`: with the trail inside
    the workspace (writable to the agent), the session still adds its protected write deny,
    as it does for a policy file.  Without it the agent appends a forged line to its own
    trail (reproduced before the fix); the twin writes beside the trail and succeeds."""
    trail = world.workspace / "trail"
    lg["audit"] = str(trail)
    policy = sandbox.Policy.load(lg.pop("policy"))
    assert sandbox.run(["true"], policy=policy, **lg).returncode == 0
    (segment,) = trail.glob("trail-*.jsonl")
    before = segment.read_bytes()
    forged = sandbox.run(["sh", "-c", f"echo forged >> {segment}"], policy=policy, **lg)
    assert forged.returncode != 0
    assert b"forged" not in segment.read_bytes().splitlines()  # (the entries quote the command)
    assert segment.read_bytes().startswith(before)
    assert any(d.action == "file_write" and "protected" in (d.rule or "") for d in forged.denied), (
        forged.denied
    )
    beside = world.workspace / "beside-trail.txt"
    allowed = sandbox.run(["sh", "-c", f"echo written >> {beside}"], policy=policy, **lg)
    assert allowed.returncode == 0 and beside.read_text() == "written\n"
    assert landgate("audit", "verify", str(trail), timeout=scaled(60)).returncode == 0


def test_simulate_records_without_blocking(world: World, lg: dict[str, Any], tmp_path) -> None:
    result = sandbox.run(["sh", "-c", "/usr/bin/id -u"], simulate=True, capture_output=True, **lg)
    assert result.returncode == 0 and result.stdout.strip().isdigit()  # ran: nothing blocked
    assert _denials(result, "shell_exec"), result.decisions  # ...but recorded as would-deny


# ------------------------------------------------------------------ errors: the CLI's


def test_empty_argv_is_the_cli_usage_error() -> None:
    with pytest.raises(UsageError) as exc:
        sandbox.run([])
    proc = landgate("run", "--", timeout=scaled(60))
    assert proc.returncode == exc.value.exit_code == 2
    assert proc.stderr.strip() == f"landgate: {exc.value}"


def test_string_argv_is_refused() -> None:
    with pytest.raises(UsageError, match="list of strings"):
        sandbox.run("ls -l")  # type: ignore[arg-type]


def test_invalid_policy_is_the_cli_policy_error(world: World, tmp_path: Path) -> None:
    bad = world.write_policy(
        "version: 1\nactions:\n  - action: file_read\n    bogus: 1\n", name="bad.yaml"
    )
    with pytest.raises(PolicyError) as exc:
        sandbox.run(["true"], policy=str(bad), audit=str(tmp_path / "audit"))
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "run",
            "--policy",
            str(bad),
            "--audit",
            str(tmp_path / "audit"),
            "--",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    # The exception carries the policy error's code (1); `landgate run` itself exits 125
    # because the agent never ran (its own codes are reserved for the agent).
    assert exc.value.exit_code == 1 and cli.returncode == 125
    assert cli.stderr.strip() == str(exc.value)
    assert str(exc.value).startswith(f"{bad}:")


def test_missing_policy_file_is_the_cli_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(LandgateError) as exc:
        sandbox.run(["true"], policy=str(missing), audit=str(tmp_path / "audit"))
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "run",
            "--policy",
            str(missing),
            "--audit",
            str(tmp_path / "audit"),
            "--",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert exc.value.exit_code == 1 and cli.returncode == 125  # see above
    assert cli.stderr.strip() in (str(exc.value), f"landgate: {exc.value}")
