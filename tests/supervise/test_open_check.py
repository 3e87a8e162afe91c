"""The carve-out open check at access time, real kernel, `run_session`, on every rung.

Each test runs twice: on this host's namespace rung (mount + pid namespace: the
supervisor, outside, resolves through /proc/TID/root and /proc/TID/cwd) and with
the host made to look namespace-less (`probe_host().without(...)`).  The
supervisor resolves each open in the caller's view, judges the object (device and
inode, real path) with the one compiled decision, reopens it on a thread
restricted by the sandbox's own Landlock ruleset and injects the fd.  Every denial
is asserted on what leaked (the secret's bytes) and has its allowed twin in the
same directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import require_kernel
from launch.lg_helpers import world_policy

from sandbox.errors import EnforcementUnavailable
from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel

WRITE_DENY = '      - { path: "./protected.txt", effect: deny }\n'
RUNG = {"name": "ns"}


@pytest.fixture(autouse=True, params=["ns", "no-ns"])
def _kernel(request):
    h = probe_host()
    require_kernel(h.landlock_abi >= 1 and h.seccomp_notify, "Landlock + seccomp user notification")
    if request.param == "ns":
        require_kernel(h.mount_ns and h.pid_ns, "mount + pid namespaces")
    RUNG["name"] = request.param
    yield


def rung_host():
    if RUNG["name"] == "ns":
        return probe_host()
    return probe_host().without(mount_ns=False, pid_ns=False, user_ns=False)


def run(
    world, script: str, capfd, events: list | None = None, timeout: float | None = None
) -> tuple[int, str, str]:
    """`sh -c script` under the world's policy on this test's rung."""
    from sandbox.policy import load_policy
    from sandbox.session import RunOptions, run_session

    pol = load_policy(
        world_policy(world, extra_write=WRITE_DENY), cwd=world.workspace, home=world.home
    )
    capfd.readouterr()
    options = RunOptions(
        argv=["sh", "-c", script],
        policy=pol,
        host=rung_host(),
        env=dict(world.env),
        cwd=str(world.workspace),
        audit_dir=str(world.root / "audit"),
        on_event=None if events is None else events.append,
        timeout=timeout,
    )
    rc = run_session(options)
    out, err = capfd.readouterr()
    return rc, out, err


def test_plan_uses_the_open_check_on_this_rung(world):
    from sandbox.plan import build_plan
    from sandbox.policy import load_policy

    pol = load_policy(world_policy(world), cwd=world.workspace, home=world.home)
    plan = build_plan(pol, rung_host(), simulate=False)
    assert plan.use_namespaces == (RUNG["name"] == "ns")
    assert plan.seccomp.open_check
    assert (
        plan.layer("carve-outs").active
        and plan.layer("carve-outs").mechanism == "supervisor open check"
    )
    cov = next(c for c in plan.carve_outs.coverage if c.pattern == "**/.env")
    assert cov.mechanisms == ("open-check",) and cov.covered and not cov.gaps


def test_denied_file_and_its_allowed_neighbours(world, capfd):
    events: list = []
    rc, out, err = run(
        world,
        "cat .env; echo rc=$?; cat src/app.ts; echo neighbour > notes.txt; "
        "cat notes.txt; echo more >> notes.txt; wc -l < notes.txt",
        capfd,
        events,
    )
    assert world.secret.decode() not in out
    assert "rc=1" in out and "Permission denied" in err
    assert "answer = 42" in out  # allowed twin: another file, read
    assert "neighbour" in out and out.rstrip().endswith(
        "2"
    )  # same directory: created, read, appended
    assert (world.workspace / "notes.txt").read_text() == "neighbour\nmore\n"
    assert "landgate: denied file_read" in err and ".env" in err
    denied = [e for e in events if e.result == "deny" and e.layer == "carve-outs"]
    assert denied and denied[0].target == str(world.dotenv) and denied[0].errno == 13
    assert rc == 0


def test_links_and_renames_of_the_denied_file(world, capfd):
    script = (
        "ln -s .env sym; ln .env hard; cp -p src/app.ts src/copy.ts; "
        "cat sym; cat hard; mv hard moved; cat moved; cat src/copy.ts; "
        "ls -l sym moved | wc -l"
    )
    _rc, out, err = run(world, script, capfd)
    assert world.secret.decode() not in out and world.secret.decode() not in err
    assert out.count("answer = 42") == 1  # the allowed twin: a copy of an allowed file reads fine
    assert out.rstrip().endswith("2")  # the symlink and the renamed hard link do exist
    assert err.count("Permission denied") >= 3


def test_file_created_after_launch(world, capfd):
    sub = world.workspace / "later"
    sub.mkdir()
    script = (
        f"echo LATE={world.secret.decode()} > later/.env; cat later/.env; echo rc=$?; "
        "mv later/.env later/innocent.txt; cat later/innocent.txt; "
        "echo fine > later/ok.txt; cat later/ok.txt"
    )
    _rc, out, _err = run(world, script, capfd)
    assert (
        sub / "innocent.txt"
    ).read_bytes() == b"LATE=" + world.secret + b"\n"  # written (write allowed)
    assert world.secret.decode() not in out  # never read back, not even after the rename
    assert "rc=1" in out and "fine" in out


def test_write_deny_creates_nothing(world, capfd):
    _rc, out, _err = run(
        world, "echo x > protected.txt; echo rc=$?; echo y > free.txt; cat free.txt", capfd
    )
    assert "rc=1" in out or "rc=2" in out
    assert not (world.workspace / "protected.txt").exists()
    assert (world.workspace / "free.txt").read_text() == "y\n" and "y" in out


def test_caller_view_of_proc_and_dev_fd(world, capfd):
    """The caller's own /dev/stdin, /dev/fd/N and /proc/self stay its own (not landgate's)."""
    _rc, out, err = run(
        world,
        "echo via-stdin | cat /dev/stdin; cat /dev/fd/3 3< src/app.ts; "
        "cat /dev/fd/3 3< .env; echo rc=$?; "
        'read -r pid rest < /proc/self/stat; [ "$pid" = $$ ] && echo pid-is-own',
        capfd,
    )
    assert "via-stdin" in out and "answer = 42" in out
    assert world.secret.decode() not in out  # the shell's open of .env for fd 3 was refused
    assert "rc=1" in out or "rc=2" in out
    assert "pid-is-own" in out, err


def test_refuses_without_the_open_check(world, monkeypatch, capfd):
    """No open check: nothing would enforce the carve-out (no masks either), exit 125."""
    import sandbox.plan as plan_mod
    from sandbox.host.supervisor import SupervisorStatus

    real = plan_mod.supervisor_status
    monkeypatch.setattr(
        plan_mod, "supervisor_status", lambda: SupervisorStatus(True, False, "no open check")
    )
    with pytest.raises(EnforcementUnavailable) as exc:
        run(world, "cat .env", capfd)
    assert exc.value.exit_code == 125 and "**/.env" in str(exc.value)
    assert world.secret.decode() not in capfd.readouterr().out
    # allowed twin: with the open check back, the same run goes ahead
    monkeypatch.setattr(plan_mod, "supervisor_status", real)
    rc, out, _ = run(world, "cat src/app.ts", capfd)
    assert rc == 0 and "answer = 42" in out


def test_trail_names_the_object(world, capfd):
    events: list = []
    run(world, "ln -s .env alias; cat alias", capfd, events)
    denied = [e for e in events if e.result == "deny" and e.layer == "carve-outs"]
    assert denied, json.dumps(events[-5:], default=str)
    assert denied[0].target.endswith("/alias") and str(world.dotenv) in (denied[0].detail or "")
    assert Path(denied[0].target).name == "alias"


def test_an_open_blocked_on_a_fifo_holds_up_no_other_open(world, capfd):
    """Everything on one CPU: the reader's FIFO open blocks that CPU's opener (its lane,
    supervise_pool.c) until the writer's open; every open meanwhile (the neighbour read,
    the .env refusal, the writer's own open) is served by another opener.  Were a job
    handed to the busy lane, the writer's open would wait behind the reader: deadlock,
    and the timeout kills the tree."""
    import os

    os.mkfifo(world.workspace / "fifo")
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})  # the supervisor's threads and the sandbox
    try:
        rc, out, err = run(
            world,
            "cat fifo > got.txt & sleep 0.3; cat .env; cat src/app.ts; "
            "echo through > fifo; wait; cat got.txt",
            capfd,
            timeout=30,
        )
    finally:
        os.sched_setaffinity(0, before)
    assert "answer = 42" in out and out.rstrip().endswith("through")
    assert world.secret.decode() not in out  # the denial still answered meanwhile
    assert "Permission denied" in err
    assert rc == 0
