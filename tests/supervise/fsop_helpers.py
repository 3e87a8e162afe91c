"""The harness of the name-changing syscall tests (test_fsop.py, test_fsop_forms.py):
one `run_session` of a shell script over the shared world, on the full rung (mount
namespace) or a host made to look namespace-less, and the switch that turns the
supervision of those syscalls off (so that each attack test can be shown to fail)."""

from __future__ import annotations

import pytest
from conftest import require_kernel
from launch.lg_helpers import world_policy

from sandbox.host.probe import probe_host

HOME_WRITE = '      - { path: "~/**", effect: allow }\n'
WRITE_DENY = '      - { path: "./protected.txt", effect: deny }\n'


@pytest.fixture(autouse=True)
def _kernel():
    h = probe_host()
    require_kernel(h.landlock_abi >= 1 and h.seccomp_notify, "Landlock + seccomp user notification")


def _host(rung: str, abi: int | None = None):
    h = probe_host()
    if abi is not None:  # an older Landlock ABI's ruleset on this kernel (it honours any)
        h = h.without(landlock_abi=abi)
    return h if rung == "ns" else h.without(mount_ns=False, pid_ns=False, user_ns=False)


def run(
    world,
    script: str,
    capfd,
    *,
    rung: str = "ns",
    events: list | None = None,
    abi: int | None = None,
    extra_read: str = "",
):
    from sandbox.policy import load_policy
    from sandbox.session import RunOptions, run_session

    pol = load_policy(
        world_policy(world, extra_read=extra_read, extra_write=HOME_WRITE + WRITE_DENY),
        cwd=world.workspace,
        home=world.home,
    )
    capfd.readouterr()
    options = RunOptions(
        argv=["sh", "-c", script],
        policy=pol,
        host=_host(rung, abi),
        env=dict(world.env),
        cwd=str(world.workspace),
        audit_dir=str(world.root / "audit"),
        on_event=None if events is None else events.append,
    )
    rc = run_session(options)
    out, err = capfd.readouterr()
    return rc, out, err


def _disable_fsop(monkeypatch) -> None:
    import sandbox.plan as plan_mod

    real = plan_mod.seccomp_plan  # build_plan's seam (memoized compile_seccomp)

    def no_fsop(**kw):
        kw["notify_fsop"] = False
        return real(**kw)

    monkeypatch.setattr(plan_mod, "seccomp_plan", no_fsop)


RUNGS = ["ns", "no-ns"]
