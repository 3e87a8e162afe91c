"""Issue 11's session contracts: one layer vocabulary, no allow-all path, any thread.

- every layer name `doctor` prints (and every alias) is accepted by `check` and
  understood by `run` (a present layer runs; an absent one refuses, 125);
- a broken supervisor install (its extension does not import) refuses to run
  (125, with the reason): never a warning and an unsupervised agent;
- `sandbox.run` works from a worker thread, several at once, and the main
  thread's signal handlers are left alone.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from conftest import require_kernel, scaled
from launch.lg_helpers import ROOT, world_policy

import sandbox
from sandbox.errors import EnforcementUnavailable
from sandbox.host.doctor import host_report
from sandbox.host.probe import probe_host
from sandbox.policy.layers import LAYERS, known_layer_names
from sandbox.session import RunOptions, run_session

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _kernel() -> None:
    h = probe_host()
    require_kernel(h.landlock_abi >= 1 and h.seccomp_notify, "Landlock and user notification")


def _require_policy(world, names: list[str], network_default: str = "allow") -> Path:
    text = world_policy(world).read_text()
    text = text.replace(
        "  - action: network\n    defaultEffect: allow\n",
        f"  - action: network\n    defaultEffect: {network_default}\n",
    )
    text += f"enforcement:\n  require: [{', '.join(names)}]\n"
    return world.write_policy(text, name="require.yaml")


def _cli(world, *args: str, python: tuple[str, ...] = ("-m", "sandbox")) -> CompletedProcess:
    return subprocess.run(
        [sys.executable, *python, *args],
        capture_output=True,
        text=True,
        env=world.env,
        cwd=world.workspace,
        timeout=scaled(60),
        check=False,
    )


def test_doctor_prints_exactly_the_vocabulary() -> None:
    assert tuple(layer.name for layer in host_report().layers) == LAYERS


def test_check_and_run_accept_every_layer_name_doctor_prints(world) -> None:
    names = list(known_layer_names())
    assert set(LAYERS) <= set(names) and {"unotify", "supervisor"} <= set(names)
    # network default deny: the egress layer is really needed (a namespace on this host)
    pol = _require_policy(world, names, network_default="deny")
    check = _cli(world, "check", "--policy", str(pol))
    assert check.returncode == 0, check.stderr
    run = _cli(world, "run", "--policy", str(pol), "--", "cat", str(world.app_source))
    assert run.returncode == 0, run.stderr
    assert "answer = 42" in run.stdout


def test_an_unknown_layer_name_is_a_located_policy_error(world) -> None:
    pol = _require_policy(world, ["landlock", "unotfy"])
    check = _cli(world, "check", "--policy", str(pol))
    assert check.returncode == 1
    assert f"{pol}:" in check.stderr and "unknown layer 'unotfy'" in check.stderr
    assert "unotify" in check.stderr  # the known names are listed


@pytest.mark.parametrize(
    ("name", "absent", "layer"),
    [
        # the supervisor's layers: exec keeps Landlock EXECUTE (partial), connect has nothing
        ("unotify", {"seccomp_notify": False}, "connect"),
        ("supervisor", {"seccomp_notify": False}, "connect"),
        ("connect", {"seccomp_notify": False}, "connect"),
        ("landlock", {"landlock_abi": 0}, "filesystem"),
        ("filesystem", {"landlock_abi": 0}, "filesystem"),
        ("namespaces", {"mount_ns": False, "pid_ns": False}, "namespaces"),
    ],
)
def test_a_required_layer_that_is_absent_refuses(world, name, absent, layer) -> None:
    pol = _require_policy(world, [name])
    host = probe_host().without(**absent)
    opts = RunOptions(
        ["true"],
        policy=str(pol),
        host=host,
        cwd=str(world.workspace),
        env=world.env,
        audit_dir=str(world.root / "audit"),
        forward_signals=False,
    )
    with pytest.raises(EnforcementUnavailable) as exc:
        run_session(opts)
    assert exc.value.exit_code == 125
    assert f"{name} is required" in str(exc.value) and f"the {layer} layer is" in str(exc.value)
    # the allowed twin: the real host has the layer, the same policy runs
    assert (
        run_session(
            RunOptions(
                ["true"],
                policy=str(pol),
                cwd=str(world.workspace),
                env=world.env,
                audit_dir=str(world.root / "audit"),
                forward_signals=False,
            )
        )
        == 0
    )


_POISON = """
import sys
sys.modules["sandbox._supervise"] = None  # `import sandbox._supervise` now raises ImportError
from sandbox.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_broken_supervisor_install_refuses_to_run(world) -> None:
    marker = world.workspace / "ran"
    argv = ["run", "--policy", str(world_policy(world)), "--", "touch", str(marker)]
    for extra in ([], ["--best-effort"]):
        out = _cli(world, *argv[:1], *extra, *argv[1:], python=("-c", _POISON))
        assert out.returncode == 125, out.stderr
        assert "sandbox._supervise does not import" in out.stderr
        assert "Traceback" not in out.stderr
        assert not marker.exists()  # the agent never ran
    # the twin: with the extension importable the same command runs
    ok = _cli(world, *argv)
    assert ok.returncode == 0, ok.stderr
    assert marker.exists()


def _run_in_sandbox(world, policy: Path, i: int) -> sandbox.api.RunResult:
    return sandbox.run(
        ["cat", str(world.app_source)],
        policy=policy,
        cwd=world.workspace,
        env=world.env,
        audit=world.root / f"audit-{i % 2}",
        capture_output=True,
    )


def test_run_from_a_thread_pool_worker_and_several_at_once(world) -> None:
    """Several sessions spawn at once while the others' supervisor and DNS-view threads run.

    Network default deny: each session has its namespace, nftables and DNS view (the
    most threads).  With glibc's fork() in the sandbox's init (a raw clone3 copy of this
    multi-threaded process) this hung within 16 runs: init waited forever for a malloc
    lock another thread held at the clone (pytest-timeout fails the test then)."""
    policy = _require_policy(world, ["landlock"], network_default="deny")
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        one = pool.submit(_run_in_sandbox, world, policy, 0).result(timeout=scaled(120))
        assert one.returncode == 0 and b"answer = 42" in one.stdout, one.stderr
        results = list(pool.map(lambda i: _run_in_sandbox(world, policy, i), range(16)))
    assert [r.returncode for r in results] == [0] * 16
    assert all(b"answer = 42" in r.stdout for r in results)
    assert len({r.session for r in results}) == 16  # sixteen sessions, each its own
    for r in results:
        assert r.decisions[0]["type"] == "session_start"
        assert {d["session"] for d in r.decisions} == {r.session}
    # the worker threads touched neither the main thread's handlers nor its cwd
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert threading.current_thread() is threading.main_thread()
    assert os.getcwd() != str(world.workspace)


def test_the_denial_twin_from_a_worker_thread(world) -> None:
    # Written once, before the threads: two threads each rewriting the file while the
    # other loads it read an empty policy (a test race, seen once).
    policy = world_policy(world)

    def cat(path: Path) -> sandbox.api.RunResult:
        return sandbox.run(
            ["cat", str(path)],
            policy=policy,
            cwd=world.workspace,
            env=world.env,
            audit=world.root / "audit",
            capture_output=True,
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        denied, allowed = pool.map(cat, [world.dotenv, world.app_source])
    assert world.secret not in denied.stdout  # (a mount mask reads empty; no exit code claim)
    assert b"answer = 42" in allowed.stdout and allowed.returncode == 0


def test_import_sandbox_run_true_from_the_command_line() -> None:
    code = "import sandbox; r = sandbox.run(['true']); print(r.returncode, len(r.decisions))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=scaled(60)
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "0"
