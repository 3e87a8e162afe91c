"""The unprivileged rung on a host whose tun device `nobody` cannot open (0600 root).

pasta needs read/write on /dev/net/tun.  A fresh machine (or a hardened host, or a
container) has the node 0600 root: the one capability check `doctor`, `plan` and `run`
share names it, the rung falls to connect-only with the usual warning, and `run`
refuses (125, one line) when the policy requires egress.  Never a namespace-helper
failure with a pasta message.  Each case has its twin with the device 0666 (what udev
gives a normal Debian host); both fixtures restore the device's original mode.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import scaled, tun_mode
from launch.lg_helpers import PY, ROOT, landgate, py

from .conftest import nobody_rung, require_unprivileged_rung

pytestmark = pytest.mark.kernel

TUN_PROBLEM = "pasta needs read/write on /dev/net/tun; it is 0600 root here"

POLICY = """\
version: 1
workspace: {ws}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: allow
  - action: network
    defaultEffect: deny
    rules:
      - {{ destination: "allowed.test", effect: allow }}
{enforcement}"""

REQUIRE_EGRESS = "enforcement:\n  require: [nftables]\n"

RAN = "import pathlib; pathlib.Path('ran').write_text('yes')"


def _policy(world, *, require: bool):
    text = POLICY.format(ws=world.workspace, enforcement=REQUIRE_EGRESS if require else "")
    return world.write_policy(text, "tun-required.yaml" if require else "tun.yaml")


def _as_nobody(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PY, "-m", "sandbox", *argv],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )


def _run(world, *, require: bool) -> subprocess.CompletedProcess:
    (world.workspace / "ran").unlink(missing_ok=True)
    os.chmod(world.workspace, 0o777)  # nobody writes the marker
    return landgate(world, py(RAN), policy=_policy(world, require=require), as_nobody=True)


def require_unprivileged_rung_prereqs() -> None:
    """What the 0600 tests need besides the device: everything the unprivileged rung needs,
    checked with the device opened for a moment (the fixture restores 0600 afterwards)."""
    with tun_mode(0o666):
        require_unprivileged_rung()


def _egress(doc: dict) -> dict:
    return next(layer for layer in doc["layers"] if layer["name"] == "egress")


def test_tun_0600_the_rung_falls_to_connect_only_and_says_why(world, tun_root_only) -> None:
    """0600: one check, three commands.  The rung nobody gets is connect-only, and doctor,
    plan and run name the device and its mode; run warns and runs the agent."""
    require_unprivileged_rung_prereqs()
    rung = nobody_rung()
    assert rung.stdout.split("\n")[0] == "connect-only", rung.stdout + rung.stderr
    assert TUN_PROBLEM in rung.stdout

    doctor = _as_nobody("doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    egress = _egress(json.loads(doctor.stdout))
    assert egress["state"] == "absent" and TUN_PROBLEM in egress["detail"], egress

    plan = _as_nobody("plan", "--policy", str(_policy(world, require=False)), "--json")
    assert plan.returncode == 0, plan.stderr
    egress = _egress(json.loads(plan.stdout))
    assert egress["state"] == "absent" and TUN_PROBLEM in egress["detail"], egress

    p = _run(world, require=False)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert (world.workspace / "ran").read_text() == "yes"
    assert "connect() decisions only" in err and TUN_PROBLEM in err, err
    assert "namespace helper" not in err and "pasta exited" not in err, err


def test_tun_0666_twin_the_unprivileged_rung(world, tun_rw) -> None:
    """The twin: with the device 0666 nobody gets the userns rung; doctor says so and run
    neither warns about the device nor falls back."""
    require_unprivileged_rung()
    doctor = _as_nobody("doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    egress = _egress(json.loads(doctor.stdout))
    assert egress["state"] == "enforced" and "rung userns" in egress["detail"], egress

    p = _run(world, require=False)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert (world.workspace / "ran").read_text() == "yes"
    assert "/dev/net/tun" not in err and "connect() decisions only" not in err, err


def test_tun_0600_refuses_when_the_policy_requires_egress(world, tun_root_only) -> None:
    """0600 and enforcement.require: [nftables]: exit 125 with one line naming the device,
    and the agent never runs."""
    require_unprivileged_rung_prereqs()
    p = _run(world, require=True)
    err = p.stderr.decode()
    assert p.returncode == 125, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "nftables is required" in lines[0] and TUN_PROBLEM in lines[0], err
    assert "Traceback" not in err and "namespace helper" not in err, err
    assert not (world.workspace / "ran").exists()


def test_tun_0666_twin_required_egress_runs(world, tun_rw) -> None:
    """The twin: the same policy, requiring egress, runs on the userns rung."""
    require_unprivileged_rung()
    p = _run(world, require=True)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert (world.workspace / "ran").read_text() == "yes"
