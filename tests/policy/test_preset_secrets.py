"""The presets' secret rules match private keys, not CA bundles (issue 12, item 6).

`**/*.pem` denied every CA bundle: certifi's cacert.pem in every venv (requests failed
TLS) and the PEM files under /etc/ssl/certs.  The presets name private keys instead
(`**/*key*.pem`, `**/private/*.pem`, `**/*.key`, PKCS#12 bundles, SSH key names), and each
secret rule carries a why that `plan` and `explain` show.  Checked three ways: the one
evaluator (`decide`), the compiled C tables the supervisor runs (`judge_path`), and the
command line (`landgate explain`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import cli

from sandbox.policy import compiled as _c
from sandbox.policy import decide, load_policy
from sandbox.policy import judge as _j
from tests.policy.helpers import PRESETS

WS = "/w"
CA_BUNDLES = [
    f"{WS}/.venv/lib/python3.11/site-packages/certifi/cacert.pem",
    f"{WS}/.venv/lib/python3.11/site-packages/pip/_vendor/certifi/cacert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/certs/ISRG_Root_X1.pem",
    f"{WS}/certs/fullchain.pem",
    f"{WS}/certs/cert.pem",
]
PRIVATE_KEYS = [
    f"{WS}/certs/server-key.pem",
    f"{WS}/certs/privkey.pem",
    f"{WS}/deploy/key.pem",
    "/etc/ssl/private/ssl-cert-snakeoil.pem",
    f"{WS}/tls/server.key",
    f"{WS}/signing/release.p12",
    f"{WS}/signing/release.pfx",
]
PRESET_FILES = sorted(PRESETS.glob("*.yaml"))


def _preset(path: Path, tmp_path: Path):
    # The workspace `.` resolved against /w: load from a copy whose workspace is /w.
    text = path.read_text().replace("workspace: .\n", f"workspace: {WS}\n")
    copy = tmp_path / path.name
    copy.write_text(text)
    return load_policy(copy)


def _c_denies(policy, path: str) -> int:
    """The C judge's answer: the index of the first path rule denying a read, or -1."""
    comp = _c.compile_policy(policy)
    _bits, rule = _j.judge_path(comp.c, path, 1)  # LG_ACCESS_READ
    return rule


@pytest.mark.parametrize("preset", PRESET_FILES, ids=lambda p: p.stem)
def test_no_secret_rule_denies_a_ca_bundle(preset: Path, tmp_path: Path) -> None:
    policy = _preset(preset, tmp_path)
    for path in CA_BUNDLES:
        d = decide(policy, "file_read", path)
        assert d.effect == "allow" or d.rule is None, (path, d.rule_ref())  # no deny rule
        assert _c_denies(policy, path) == -1, path


@pytest.mark.parametrize("preset", PRESET_FILES, ids=lambda p: p.stem)
def test_private_keys_are_denied_with_a_why(preset: Path, tmp_path: Path) -> None:
    policy = _preset(preset, tmp_path)
    for path in PRIVATE_KEYS:
        d = decide(policy, "file_read", path)
        assert d.effect == "deny" and d.rule is not None, (path, d.rule_ref())
        assert d.rule.origin == "policy" and d.rule.comment, (path, d.rule.pattern)
        assert _c_denies(policy, path) >= 0, path
    # every secret rule (each deny of file_read the preset writes) says why
    for rule in policy.block("file_read").rules:
        if rule.effect == "deny" and rule.origin == "policy":
            assert rule.comment, f"{preset.name}: {rule.pattern} has no comment"


def test_ca_bundle_twin_in_a_workspace_is_allowed(tmp_path: Path) -> None:
    policy = _preset(PRESETS / "coding-agent.yaml", tmp_path)
    ca = decide(policy, "file_read", CA_BUNDLES[0])
    key = decide(policy, "file_read", PRIVATE_KEYS[0])
    assert ca.effect == "allow" and ca.rule is not None and ca.rule.pattern == "./"
    assert key.effect == "deny" and key.rule is not None and key.rule.pattern == "**/*key*.pem"


def _explain(policy: Path, target: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return cli.landgate("explain", "--policy", str(policy), "file_read", target, cwd=cwd)


def test_explain_cacert_allowed_server_key_denied(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    preset = PRESETS / "coding-agent.yaml"
    ca = _explain(preset, ".venv/lib/python3.11/site-packages/certifi/cacert.pem", ws)
    assert ca.returncode == 0 and ca.stdout.startswith("allow"), ca.stdout + ca.stderr
    key = _explain(preset, "certs/server-key.pem", ws)
    assert key.returncode == 1 and key.stdout.startswith("deny"), key.stdout + key.stderr
    assert "**/*key*.pem" in key.stdout and "coding-agent.yaml:" in key.stdout
    assert "cacert.pem stay readable" in key.stdout  # the rule's why


def test_plan_explains_each_secret_rule(tmp_path: Path) -> None:
    proc = cli.landgate("plan", "--policy", "coding-agent", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    section = proc.stdout.split("\nrules -> layers\n", 1)[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("  file_read ")]
    for pattern in ("'**/*key*.pem'", "'**/.env'", "'~/.ssh/'", "'**/id_rsa*'"):
        line = next(ln for ln in lines if pattern in ln)
        assert "why: " in line, line
    assert not any("'**/*.pem'" in ln for ln in lines)
