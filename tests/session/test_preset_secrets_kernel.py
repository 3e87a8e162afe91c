"""The coding-agent preset on the real kernel: a venv's certifi bundle is readable, a private
key in the workspace is not (issue 12, item 6; the rules are checked in tests/policy)."""

from __future__ import annotations

import pytest
from launch.lg_helpers import ROOT, landgate

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("landlock_and_notify")]
PRESET = ROOT / "policies" / "coding-agent.yaml"


def test_certifi_bundle_readable_private_key_not(world) -> None:
    ca = world.workspace / ".venv/lib/python3.11/site-packages/certifi/cacert.pem"
    ca.parent.mkdir(parents=True)
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nCA-BUNDLE-OK\n-----END CERTIFICATE-----\n")
    key = world.workspace / "certs" / "server-key.pem"
    key.parent.mkdir()
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + world.secret + b"\n")
    for p in (ca, key):
        p.chmod(0o644)
    p = landgate(
        world,
        ["sh", "-c", f"cat {ca.relative_to(world.workspace)}; cat certs/server-key.pem; true"],
        policy=PRESET,
    )
    assert b"CA-BUNDLE-OK" in p.stdout, p.stderr  # the allowed twin: certifi's bundle
    assert world.secret not in p.stdout + p.stderr  # the private key is not readable
