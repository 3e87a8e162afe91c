"""`landgate run` end to end: what reaches the audit trail, simulation, fail-closed paths.

These run the real command line (real kernel, real trail) and read the trail back:
the session start names the layers and the rung, each decision is an entry, the
session end carries the exit status; simulation records would-denies and blocks
nothing; a killed landgate leaves an intact, unsealed trail and no sandboxed process;
an unwritable trail refuses to run anything.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_root
from launch.lg_helpers import ROOT, landgate

from sandbox.audit import verify_trail

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("landlock_and_notify")]


def _trail(world) -> Path:
    return world.root / "xdg" / "state" / "landgate" / "audit"


def _keys(world) -> Path:
    return world.root / "xdg" / "config" / "landgate"


def _entries(world) -> list[dict]:
    out: list[dict] = []
    for seg in sorted(_trail(world).glob("trail-*.jsonl")):
        out += [json.loads(line) for line in seg.read_bytes().splitlines() if line.strip()]
    return out


def _exec_policy(world, shell_default: str = "deny") -> Path:
    return world.write_policy(
        f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "./**", effect: allow }}
  - action: file_write
    rules:
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: {shell_default}
    rules:
      - {{ command: "cat *", effect: allow }}
      - {{ command: "sh -c *", effect: allow }}
      - {{ command: "sh task.sh", effect: allow }}
      - {{ command: "sleep *", effect: allow }}
      - {{ command: "curl*", effect: deny }}
  - action: network
    defaultEffect: allow
""",
        name="session-policy.yaml",
    )


def test_session_entries_start_decisions_end(world):
    pol = _exec_policy(world)
    # A script, not `sh -c STRING`: a -c string that names curl is itself denied.
    (world.workspace / "task.sh").write_text("cat src/app.ts; curl -s http://x; exit 3\n")
    p = landgate(world, ["sh", "task.sh"], policy=pol)
    assert p.returncode == 3, p.stderr
    assert b"answer = 42" in p.stdout  # the allowed twin ran
    entries = _entries(world)
    kinds = [e["type"] for e in entries]
    assert kinds[0] == "trail_start" and "session_start" in kinds and kinds[-1] == "checkpoint"
    start = next(e for e in entries if e["type"] == "session_start")
    assert start["rung"] == "full" and {"filesystem", "exec", "hardening"} <= {
        layer["name"] for layer in start["layers"]
    }
    assert start["argv"] == ["sh", "task.sh"] and start["policy_sha256"]
    decisions = [e for e in entries if e["type"] == "decision"]
    allowed = [d["target"] for d in decisions if d["result"] == "allow"]
    denied = [d for d in decisions if d["result"] == "deny"]
    assert any(t.startswith("cat src/app.ts") for t in allowed), allowed
    # curl is refused before it runs, by the deny rule, with its file:line
    assert any(
        d["action"] == "shell_exec"
        and d["target"].startswith("curl")
        and "session-policy.yaml:" in d["rule"]
        for d in denied
    ), denied
    assert b'landgate: denied shell_exec "curl -s http://x"' in p.stderr
    end = next(e for e in entries if e["type"] == "session_end")
    assert end["exit_status"] == 3
    assert verify_trail(_trail(world), key_directory=_keys(world)).ok


def test_simulate_prints_the_file_and_records_a_would_deny(world):
    # DESIGN §3 / issue 5: `landgate run --simulate -- sh -c 'cat .env'`.
    pol = _exec_policy(world)
    (world.workspace / "task.sh").write_text("cat .env; curl -s http://x; true\n")
    p = landgate(world, ["sh", "task.sh"], policy=pol, extra_args=["--simulate"])
    assert world.secret in p.stdout  # nothing was blocked: the file was printed
    entries = _entries(world)
    decisions = [e for e in entries if e["type"] == "decision"]
    assert all(d["mode"] == "simulate" for d in decisions)
    would = [d for d in decisions if d["result"] == "deny"]
    assert any(d["action"] == "file_read" and d["target"].endswith("/.env") for d in would), would
    assert any(d["action"] == "shell_exec" and d["target"].startswith("curl") for d in would), would
    assert b"landgate: simulate:" in p.stderr and b"would have been denied" in p.stderr
    # The enforced twin: the same command under enforcement shows nothing of the secret.
    q = landgate(world, ["sh", "-c", "cat .env; true"], policy=pol)
    assert world.secret not in q.stdout + q.stderr


def test_sigkill_of_landgate_kills_the_tree_and_leaves_an_unsealed_trail(world):
    require_root()
    pol = _exec_policy(world, shell_default="allow")
    marker = world.workspace / "still-running"
    env = dict(
        world.env,
        PYTHONPATH=str(ROOT),
        XDG_STATE_HOME=str(world.root / "xdg" / "state"),
        XDG_CONFIG_HOME=str(world.root / "xdg" / "config"),
    )
    (world.root / "xdg" / "state").mkdir(parents=True, exist_ok=True)
    (world.root / "xdg" / "config").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "run",
            "--policy",
            str(pol),
            "--",
            "sh",
            "-c",
            f"cat src/app.ts >/dev/null; while true; do date +%s%N > {marker}; sleep 0.05; done",
        ],
        cwd=world.workspace,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the sandboxed loop never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.5)
    before = marker.read_bytes()
    time.sleep(0.5)
    assert marker.read_bytes() == before, "a sandboxed process outlived landgate"
    report = verify_trail(_trail(world), key_directory=_keys(world))
    assert report.ok, report
    assert any("unsealed" in str(n) for n in getattr(report, "notes", ())), report


def test_unwritable_trail_refuses_to_run(world):
    # The trail is opened before anything runs: no trail, no run (exit 125), nothing executed.
    pol = _exec_policy(world, shell_default="allow")
    blocker = world.root / "not-a-dir"
    blocker.write_text("a file where the audit directory should be\n")
    out = world.workspace / "ran"
    p = landgate(
        world,
        ["sh", "-c", f"echo x > {out}"],
        policy=pol,
        extra_args=["--audit", str(blocker / "audit")],
    )
    assert p.returncode == 125, p.stderr
    assert b"audit" in p.stderr and b"Traceback" not in p.stderr
    assert not out.exists()
    # The twin: a writable --audit directory runs the same command.
    q = landgate(
        world,
        ["sh", "-c", f"echo x > {out}"],
        policy=pol,
        extra_args=["--audit", str(world.root / "trail-ok")],
    )
    assert q.returncode == 0 and out.read_text() == "x\n"


def test_disk_full_mid_session_stops_the_command(world):
    # Fail closed (DESIGN §5): when the trail can no longer be written, the sandboxed
    # command is stopped with a clear message instead of running unrecorded.
    require_root()
    pol = _exec_policy(world, shell_default="allow")
    small = world.root / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    try:
        out = world.workspace / "count"
        # Each `cat` is an exec decision: the 64 KiB trail fills after a few hundred.
        script = (
            "i=0; while [ $i -lt 3000 ]; do cat src/app.ts >/dev/null; "
            f"i=$((i+1)); echo $i >> {out}; done"
        )
        p = landgate(
            world,
            ["sh", "-c", script],
            policy=pol,
            extra_args=["--audit", str(small / "audit")],
            timeout=120,
        )
        assert p.returncode == 125, (p.returncode, p.stderr[-500:])
        assert b"unwritable" in p.stderr and b"fail closed" in p.stderr
        assert len(out.read_text().splitlines()) < 3000  # stopped, not run to the end
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_simulation_judges_default_denied_reads_too(world):
    """In simulation every open is judged by the one evaluator: a read that no rule names
    (outside the workspace, not in the baseline) is a would-deny by the default, not only
    reads that hit an explicit deny; the workspace read is its allowed twin."""
    pol = _exec_policy(world)
    bashrc = world.home / ".bashrc"
    (world.workspace / "task.sh").write_text(f"cat src/app.ts {bashrc}\n")
    p = landgate(world, ["sh", "task.sh"], policy=pol, extra_args=["--simulate"])
    assert b"fake bashrc" in p.stdout  # nothing blocked
    reads = [
        e for e in _entries(world) if e.get("type") == "decision" and e["action"] == "file_read"
    ]
    by_target = {e["target"]: e for e in reads}
    assert by_target[str(bashrc)]["result"] == "deny", by_target.get(str(bashrc))
    assert by_target[str(bashrc)]["rule"].startswith("default deny of file_read")
    assert by_target[str(world.app_source)]["result"] == "allow"
