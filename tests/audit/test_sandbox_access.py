"""Real kernel: a sandboxed process can neither append to the trail nor read the key.

Even under a policy that grants read and write on the whole tree that holds
both (DESIGN §2 protected paths), with the allowed twin (a file beside them
is readable and writable) proving the grant is real.  Asserts on what leaked
(the key's bytes) and on the trail's bytes, not on exit codes alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import require_kernel, scaled

from sandbox.audit import AuditWriter, verify_trail

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]


def test_sandboxed_process_cannot_append_to_the_trail_or_read_the_key() -> None:
    # Not tmp_path: pytest's base directory is 0700 root; keep it like the world fixture.
    root = Path(tempfile.mkdtemp(prefix="landgate-audit-sbx-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        ws, audit, config = root / "ws", root / "audit", root / "config"
        ws.mkdir()
        (ws / "ok.txt").write_text("allowed twin\n")
        keys = config / "landgate"
        w = AuditWriter(audit, key_directory=keys)
        w.start_session({"mode": "enforce", "argv": ["setup"]})
        w.end_session(0)
        w.close()
        key_hex = (keys / "audit.key").read_bytes().hex()
        segment = audit / "trail-000001.jsonl"
        before = segment.read_bytes()
        policy = root / "policy.yaml"
        policy.write_text(
            "version: 1\n"
            f"workspace: {ws}\n"
            "actions:\n"
            "  - action: file_read\n    defaultEffect: deny\n    rules:\n"
            f'      - {{ path: "{root}/", effect: allow }}\n'
            "  - action: file_write\n    defaultEffect: deny\n    rules:\n"
            f'      - {{ path: "{root}/", effect: allow }}\n'
            "  - action: shell_exec\n    defaultEffect: allow\n"
        )
        script = (
            f"echo forged >> {segment}; echo append=$?; "
            f"echo forged > {audit}/trail-000099.jsonl; echo newseg=$?; "
            f"od -An -tx1 -v {keys}/audit.key | tr -d ' \\n'; echo; "
            f"cat {ws}/ok.txt; echo written > {ws}/new.txt; echo twin=$?"
        )
        env = dict(os.environ, XDG_CONFIG_HOME=str(config), PYTHONPATH=str(REPO))
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "sandbox",
                "run",
                "--policy",
                str(policy),
                "--audit",
                str(audit),
                "--",
                "sh",
                "-c",
                script,
            ],
            capture_output=True,
            text=True,
            timeout=scaled(120),
            env=env,
            cwd=ws,
            check=False,
        )
        if proc.returncode == 125:
            require_kernel(False, f"landgate run refused to start: {proc.stderr.strip()}")
        out = proc.stdout
        # What leaked: nothing of the key; the trail only grew by landgate's own entries.
        assert key_hex not in out and key_hex[:16] not in out, out
        assert "append=0" not in out and "newseg=0" not in out, out
        after = segment.read_bytes()
        # The trail grew only by landgate's own JSON entries (which do name the
        # sandbox's command line, "forged" included): no raw line was appended.
        assert after.startswith(before)
        assert all(line.startswith(b"{") for line in after.splitlines()), after[-200:]
        assert not (audit / "trail-000099.jsonl").exists()
        assert verify_trail(audit, key_directory=keys).ok
        # The allowed twin: the grant itself works.
        assert "allowed twin" in out and "twin=0" in out, (out, proc.stderr)
        assert (ws / "new.txt").read_text() == "written\n"
    finally:
        shutil.rmtree(root, ignore_errors=True)
