"""The writer: durability, crashes, disk full, concurrent sessions, segments, keys."""

from __future__ import annotations

import itertools
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from audit_helpers import (  # noqa: F401 - the `trail` and `seal_path` fixtures
    Trail,
    event,
    fill,
    seal_path_fixture,
    trail_fixture,
)
from conftest import require_root

from sandbox.audit import AuditWriter, simulate_summary, verify_trail
from sandbox.errors import AuditError

REPO = Path(__file__).resolve().parents[2]


def verify(t: Trail):
    return verify_trail(t.dir, key_directory=t.keys)


def _child(code: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_key_and_directories_are_private(trail: Trail) -> None:
    fill(trail, 3)
    assert stat.S_IMODE(trail.keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((trail.keys / "audit.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(trail.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(trail.segment.stat().st_mode) == 0o600


def test_entry_shape(trail: Trail) -> None:
    w = trail.writer()
    sid = w.start_session(
        {
            "mode": "simulate",
            "policy": {"path": "/p.yaml", "sha256": "ab"},
            "layers": [
                {
                    "name": "filesystem",
                    "state": "observed",
                    "mechanism": "unotify",
                    "detail": "simulate",
                }
            ],
            "rung": "full",
            "kernel": "6.18",
            "landlock_abi": 7,
            "argv": ["agent"],
            "cwd": "/ws",
            "user": "dev",
        }
    )
    seq = w.append(
        {
            "pid": 7,
            "action": "shell_exec",
            "target": "git push",
            "argv": ["git", "push"],
            "result": "deny",
            "rule": "policy.yaml:9",
            "layer": "exec",
            "ts": 5,
        }
    )
    w.end_session(3)
    w.close()
    es = trail.entries()
    start, dec, end = es[1], es[2], es[3]
    assert start["type"] == "session_start" and start["session"] == sid
    assert start["durability"] == {"mode": "batch", "fsync_window_ms": 100}
    assert start["layers"][0]["mechanism"] == "unotify" and start["rung"] == "full"
    assert dec["seq"] == seq == 3 and dec["prev"] == start["hash"][:64]
    assert {k: dec[k] for k in ("action", "target", "argv", "result", "mode", "rule", "layer")} == {
        "action": "shell_exec",
        "target": "git push",
        "argv": ["git", "push"],
        "result": "deny",
        "mode": "simulate",
        "rule": "policy.yaml:9",
        "layer": "exec",
    }
    assert dec["event_ts"] == 5 and dec["ts"] > 1e9  # a non-wall-clock ts is kept aside
    assert end["exit_status"] == 3 and end["counts"]["deny"] == 1
    assert es[4]["type"] == "checkpoint"
    # canonical bytes: sorted keys, compact separators
    line = trail.lines()[2].rstrip(b"\n")
    assert (
        line == json.dumps(dec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_nested_reserved_keys_do_not_confuse_verify(trail: Trail) -> None:
    w = trail.writer()
    w.start_session({"mode": "enforce", "policy": {"hash": "x", "seq": 9, "prev": "y"}})
    w.append(event(1, names=["a"], detail={"type": "decision", "hash": "z"}))
    w.end_session(0)
    w.close()
    assert verify(trail).ok


def test_strict_durability_and_reopen(trail: Trail) -> None:
    w = trail.writer(durability="strict", checkpoint_every=4)
    w.start_session({"mode": "enforce"})
    for i in range(10):
        w.append(event(i))
    w.end_session(0)
    w.close()
    w = trail.writer(checkpoint_every=4)  # recovers the frontier from the last checkpoint
    w.start_session({"mode": "enforce"})
    for i in range(5):
        w.append(event(i))
    w.end_session(0)
    w.close()
    r = verify(trail)
    assert r.ok and r.sessions == 2 and r.notes == ()
    assert trail.entries()[1]["durability"] == {"mode": "strict", "fsync_window_ms": 0}


def test_time_based_checkpoint(trail: Trail) -> None:
    w = trail.writer(checkpoint_seconds=0.1)
    w.start_session({"mode": "enforce"})
    w.append(event(1))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(e["type"] == "checkpoint" for e in trail.entries()):
            break
        time.sleep(0.05)
    else:
        pytest.fail("no time-based checkpoint within 5 s")
    w.end_session(0)
    w.close()
    assert verify(trail).ok


def test_segments_continue_the_chain(trail: Trail) -> None:
    w = trail.writer(segment_max_bytes=4096, checkpoint_every=25)
    w.start_session({"mode": "enforce"})
    for i in range(200):
        w.append(event(i))
    w.end_session(0)
    w.close()
    segs = sorted(trail.dir.glob("trail-*.jsonl"))
    assert len(segs) > 5
    r = verify(trail)
    assert r.ok and r.segments == len(segs)
    # Deleting a middle segment is caught, naming the first missing seq.
    first_of_third = json.loads(segs[2].read_bytes().splitlines()[0])["seq"]
    segs[2].unlink()
    r = verify(trail)
    assert (r.kind, r.first_bad_seq) == ("deleted", first_of_third)


def test_torn_last_line_is_named_and_cut_by_the_next_writer(trail: Trail) -> None:
    fill(trail, 5, end=False)
    with open(trail.segment, "ab") as f:
        f.write(b'{"action":"file_read","hash":"12')
    r = verify(trail)
    assert r.ok and any("torn" in n for n in r.notes)
    w = trail.writer()
    w.start_session({"mode": "enforce"})
    w.end_session(0)
    w.close()
    r = verify(trail)
    assert r.ok, r.summary()
    assert any(e.get("recovered_torn_bytes") == 32 for e in trail.entries())


def test_sigkill_mid_session_is_unsealed_not_tampered(trail: Trail) -> None:
    code = """
        import sys
        from sandbox.audit import AuditWriter
        w = AuditWriter(sys.argv[1], key_directory=sys.argv[2], checkpoint_every=50)
        w.start_session({"mode": "enforce", "argv": ["agent"]})
        i = 0
        while True:
            seq = w.append({"pid": 1, "action": "file_read", "target": f"/ws/{i}",
                            "result": "allow", "rule": "p.yaml:1", "layer": "landlock"})
            print(seq, flush=True)
            i += 1
    """
    p = _child(code, str(trail.dir), str(trail.keys))
    assert p.stdout is not None
    acked = 0
    for line in p.stdout:
        acked = int(line)
        if acked >= 300:
            break
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    r = verify(trail)
    assert r.ok, r.summary()
    assert r.entries >= acked  # every entry append() returned for is there and verifies
    assert len(r.unsealed) == 1 and any("unsealed" in n for n in r.notes)
    # The trail goes on; the killed session stays unsealed, the new one is sealed.
    fill(trail, 5)
    r = verify(trail)
    assert r.ok and len(r.unsealed) == 1 and r.sessions == 2


def test_concurrent_sessions_share_one_chain(trail: Trail) -> None:
    code = """
        import sys
        from sandbox.audit import AuditWriter
        w = AuditWriter(sys.argv[1], key_directory=sys.argv[2], checkpoint_every=40,
                        segment_max_bytes=16384)
        sid = w.start_session({"mode": "enforce", "argv": [sys.argv[3]]})
        import os, time
        while not os.path.exists(sys.argv[4]):  # start together, so that appends interleave
            time.sleep(0.001)
        for i in range(300):
            w.append({"pid": int(sys.argv[3]), "action": "file_read",
                      "target": f"/ws/{sys.argv[3]}/{i}", "result": "allow",
                      "rule": "p.yaml:1", "layer": "landlock"})
        w.end_session(0)
        w.close()
        print(sid)
    """
    fill(trail, 1)  # the trail exists before the race (its creation is tested elsewhere)
    gate = trail.dir.parent / "go"
    procs = [_child(code, str(trail.dir), str(trail.keys), str(n), str(gate)) for n in range(4)]
    time.sleep(0.5)  # let every child start its session and reach the gate
    gate.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    r = verify(trail)
    assert r.ok and r.unsealed == () and r.sessions == 5, r.summary()
    assert len(sorted(trail.dir.glob("trail-*.jsonl"))) > 1
    entries = []
    for seg in sorted(trail.dir.glob("trail-*.jsonl")):
        entries += [json.loads(x) for x in seg.read_bytes().splitlines()]
    decisions = [e for e in entries if e["type"] == "decision"]
    assert len(decisions) == 1 + 4 * 300
    for n in range(4):
        mine = [
            int(e["target"].rsplit("/", 1)[1])
            for e in decisions
            if e["target"].startswith(f"/ws/{n}/")
        ]
        assert mine == list(range(300))
    pids = [e["pid"] for e in decisions[1:]]
    switches = sum(1 for a, b in itertools.pairwise(pids) if a != b)
    assert switches > 3  # they really interleaved


def test_first_use_race_creates_one_trail(tmp_path: Path) -> None:
    code = """
        import sys
        from sandbox.audit import AuditWriter
        w = AuditWriter(sys.argv[1], key_directory=sys.argv[2])
        w.start_session({"mode": "enforce"})
        w.append({"action": "network", "target": "h:1", "result": "allow"})
        w.end_session(0)
        w.close()
    """
    d, k = tmp_path / "t", tmp_path / "k"
    procs = [_child(code, str(d), str(k)) for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    r = verify_trail(d, key_directory=k)
    assert r.ok and r.sessions == 4


@pytest.mark.parametrize("durability", ["strict", "batch"])
def test_disk_full_fails_closed(tmp_path: Path, durability: str, seal_path: str) -> None:
    require_root()
    mnt = Path(tempfile.mkdtemp(prefix="landgate-full-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)], check=True
    )
    try:
        failures: list[str] = []
        w = AuditWriter(
            mnt / "audit",
            key_directory=tmp_path / "keys",
            durability=durability,
            on_failure=failures.append,
        )
        assert (w._chain.sealer is None) == (seal_path == "python")
        w.start_session({"mode": "enforce"})
        appended = 0
        with pytest.raises(AuditError) if durability == "strict" else _nothing():
            for i in range(10000):
                seq = w.append(event(i, target="/ws/" + "x" * 200))
                if seq < 0:
                    break
                appended += 1
        assert w.failed is not None and "No space left on device" in w.failed
        assert failures == [w.failed]
        assert 0 < appended < 10000
        # Once failed, it stays failed: nothing is recorded silently afterwards.
        if durability == "strict":
            with pytest.raises(AuditError):
                w.append(event(0))
        else:
            assert w.append(event(0)) == -1
        w.end_session(1)  # cannot seal; must not raise in batch, nor hide the failure
        w.close()
        # What was written before the failure still verifies (the torn line was cut).
        r = verify_trail(mnt / "audit", key_directory=tmp_path / "keys")
        assert r.ok, r.summary()
        assert r.entries >= appended + 2 and len(r.unsealed) == 1
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        mnt.rmdir()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_simulate_summary(trail: Trail) -> None:
    w = trail.writer()
    sid = w.start_session({"mode": "simulate"})
    for i in range(10):
        w.append(event(i, result="deny" if i < 7 else "allow"))
    assert simulate_summary(w.counts(), sid) == (
        f"landgate: simulate: 7 actions would have been denied "
        f"(landgate audit show --session {sid} --denied)"
    )
    assert simulate_summary({"deny": 1}, "S").startswith("landgate: simulate: 1 action would")
    assert "--session S " in simulate_summary({"deny": 2}, "S", trail.dir) + " "
    assert str(trail.dir) in simulate_summary({"deny": 2}, "S", trail.dir)
    assert "no action" in simulate_summary({"allow": 3, "deny": 0}, "S")
    w.end_session(0, counts=w.counts())
    w.close()


def test_append_needs_a_session(trail: Trail) -> None:
    w = trail.writer()
    with pytest.raises(AuditError):
        w.append(event(1))
    w.close()
    with pytest.raises(AuditError):
        w.append(event(1))
