"""SCRATCH (vm612 diagnosis, to be removed): how many vfork+exec of /bin/true from dash take the
verified path, with and without a CPU burner beside them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import make_policy

POLICY = [("sh*", "allow"), ("true*", "allow")]


@pytest.mark.parametrize("burn", [0, 1])
def test_diag_vfork_true(supervised, world, burn):
    ws = world.root / "ws"
    ws.mkdir()
    burner = None
    if burn:
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        body = "i=0; while [ $i -lt 30 ]; do /bin/true; i=$((i+1)); done; echo done"
        r = supervised(
            ["/bin/sh", "-c", body], make_policy(POLICY), plan_info={"write_trees": [str(ws)]}
        )
    finally:
        if burner:
            burner.kill()
            burner.wait()
    ev = [e for e in r.events if e.action == "shell_exec" and e.target == "true"]
    ver = sum("verified" in e.flags for e in ev)
    print(f"\nDIAG burn={burn} execs={len(ev)} verified={ver}", flush=True)
    with open("/vm-out/diag.log" if __import__("os").path.exists("/vm-out") else "/tmp/vm612-diag.log", "a") as f:
        f.write(f"TESTRESULT burn={burn} execs={len(ev)} verified={ver}\n")
    assert b"done" in r.stdout
