"""Repeated `sandbox.run` calls in one process share what is per policy (the loaded
policy) but never what is per run: a secret created between two runs is hidden in the
second, and an edited policy file is obeyed at once."""

from __future__ import annotations

import pytest
from conftest import require_root
from launch.lg_helpers import world_policy

import sandbox


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()  # masks need a mount namespace (root here)


def _cat(world, policy, path):
    return sandbox.run(
        ["/bin/cat", str(path)],
        policy=policy,
        cwd=str(world.workspace),
        env=world.env,
        audit=str(world.root / "audit"),
        capture_output=True,
    )


@pytest.mark.parametrize("as_object", [False, True])
def test_secret_created_between_runs_is_hidden(world, as_object):
    path = world_policy(world)
    policy = sandbox.Policy.load(path) if as_object else str(path)
    first = _cat(world, policy, world.app_source)
    assert first.returncode == 0 and b"answer" in first.stdout  # the allowed twin
    late = world.workspace / "late" / ".env"
    late.parent.mkdir()
    late.write_bytes(b"LATE=" + world.secret + b"\n")
    second = _cat(world, policy, late)
    assert world.secret not in second.stdout + second.stderr
    assert _cat(world, policy, world.app_source).returncode == 0


def test_policy_edit_is_obeyed_by_the_next_run(world):
    path = world_policy(world)
    assert _cat(world, str(path), world.app_source).returncode == 0
    text = path.read_text().replace(
        '- { path: "./**", effect: allow }',
        '- { path: "./src/", effect: deny }\n      - { path: "./**", effect: allow }',
        1,
    )
    path.write_text(text)
    denied = _cat(world, str(path), world.app_source)
    assert b"answer" not in denied.stdout and denied.returncode != 0
