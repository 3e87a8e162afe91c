"""The supervisor's live path against `landgate explain`: real `landgate run` (the
kernel, the seccomp listener, the C decision loop) on a few corpus cases, each
denial with its allowed twin.  What run did must be what explain says, by the
same rule.  Run under the test lock (it starts sandboxes)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import require_kernel
from helpers.cli import landgate

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"contract-secret-5f1c"
pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _kernel():
    from sandbox._probe import lib

    require_kernel(lib.lg_probe_landlock_abi() >= 1, "Landlock")


@pytest.fixture
def setup(tmp_path):
    ws = tmp_path / "ws"
    (ws / "u").mkdir(parents=True)
    (ws / "u" / "é.txt").write_bytes(SECRET)
    (ws / "u" / "ab.txt").write_bytes(b"twin-readable")
    pol = tmp_path / "policy.yaml"
    pol.write_text(f"""\
version: 1
workspace: {ws}
actions:
  - action: shell_exec
    defaultEffect: allow
    rules:
      - {{ command: "id*", effect: deny }}
  - action: file_read
    defaultEffect: allow
    rules:
      - {{ path: "./u/?.txt", effect: deny }}
  - action: file_write
    defaultEffect: allow
  - action: network
    defaultEffect: allow
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for sub in ("state", "config"):
        (tmp_path / sub).mkdir()
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return ws, pol, env


def _landgate(env, cwd, *args: str) -> subprocess.CompletedProcess:
    return landgate(*args, env=env, cwd=cwd, text=False)


def _explain(env, ws, pol, action: str, target: str) -> tuple[str, str]:
    p = _landgate(env, ws, "explain", "--policy", str(pol), action, target)
    out = p.stdout.decode()
    effect = out.split()[0]
    by = next((ln.strip() for ln in out.splitlines() if ln.strip().startswith("by ")), "")
    return effect, by


EXEC_CASES = [
    ["env", "id"],
    ["env", "true"],
    ["nice", "-n", "5", "id"],
    ["nice", "-n", "5", "true"],
    ["timeout", "3", "sh", "-c", "id"],
    ["timeout", "3", "sh", "-c", "true"],
    ["sh", "-c", "sh -c 'id -u'"],
    ["sh", "-c", "sh -c 'true'"],
]


@pytest.mark.parametrize("argv", EXEC_CASES, ids=shlex.join)
def test_run_execs_what_explain_allows(setup, argv):
    ws, pol, env = setup
    effect, by = _explain(env, ws, pol, "shell_exec", shlex.join(argv))
    p = _landgate(env, ws, "run", "--policy", str(pol), "--", *argv)
    if effect == "deny":
        assert p.returncode == 126, p.stderr
        assert b"uid=" not in p.stdout and not p.stdout.strip().isdigit()  # id never ran
        assert b"landgate: denied shell_exec" in p.stderr
        assert "rule 1" in by and b"(rule 1, " in p.stderr  # the same rule: id*
    else:
        assert effect == "allow"
        assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("name", ["é.txt", "ab.txt"])
def test_run_reads_what_explain_allows(setup, name):
    ws, pol, env = setup
    effect, _by = _explain(env, ws, pol, "file_read", str(ws / "u" / name))
    p = _landgate(env, ws, "run", "--policy", str(pol), "--", "cat", str(ws / "u" / name))
    if name == "é.txt":
        assert effect == "deny"
        assert SECRET not in p.stdout and SECRET not in p.stderr  # what leaked: nothing
    else:
        assert effect == "allow"
        assert p.returncode == 0 and p.stdout == b"twin-readable"
