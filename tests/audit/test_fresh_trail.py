"""Real kernel: the first session in a fresh audit directory is as protected as any other.

Issue 14: on a fresh machine (no audit directory, no key directory) the plan was
built before the writer created them, so neither was protected for the whole first
session: the agent could append a correctly chained entry to the trail, and under a
policy granting `~/**` reads it could read the key.  Here the agent tries, as the
very first session in a fresh `$HOME`, to append a forged entry, truncate the trail,
add a segment, read the key and list the witnesses, under a policy that grants read
and write on all of `~/**`; the allowed twins (a file in `~` read, one written) prove
the grant is real.  Asserts on what leaked and on the trail's bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_kernel

from sandbox.audit import verify_trail

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]

# Runs inside the sandbox: what an agent that read landgate's source would try.
AGENT = r"""
import hashlib, json, os, sys
audit, keys, home = sys.argv[1:4]
seg = os.path.join(audit, "trail-000001.jsonl")
lines = open(seg, "rb").read().splitlines()
last = json.loads(lines[-1])
# A correctly chained, correctly hashed entry; only the tag cannot be right.
e = {"type": "decision", "action": "file_read", "target": "/innocent", "result": "allow",
     "session": last.get("session", ""), "seq": last["seq"] + 1, "prev": last["hash"][:64],
     "ts": last["ts"], "hash": "h" * 96}
line = json.dumps(e, sort_keys=True, separators=(",", ":")).encode()
i = line.find(b'"hash":"')
cut = line[: i - 1] + line[i + 105:] if line[i - 1:i] == b"," else line[:i] + line[i + 106:]
digest = hashlib.sha256(cut).hexdigest()
line = line[: i + 8] + (digest + "0" * 32).encode() + line[i + 104:] + b"\n"
def attempt(name, fn):
    try:
        out = fn()
        print(f"{name}=ok {out if out is not None else ''}".rstrip())
    except OSError as exc:
        print(f"{name}=errno{exc.errno}")
def append():
    with open(seg, "ab") as f:
        f.write(line)
attempt("append", append)
attempt("truncate", lambda: os.truncate(seg, 10))
attempt("newseg", lambda: open(os.path.join(audit, "trail-000002.jsonl"), "wb").close())
attempt("key", lambda: open(os.path.join(keys, "audit.key"), "rb").read().hex())
attempt("witness", lambda: sorted(os.listdir(os.path.join(keys, "witness"))))
attempt("twin_read", lambda: open(os.path.join(home, "notes.txt")).read().strip())
def twin_write():
    with open(os.path.join(home, "new.txt"), "w") as f:
        f.write("written\n")
attempt("twin_write", twin_write)
"""


@pytest.fixture(name="fresh_home")
def fresh_home_fixture() -> Iterator[Path]:
    # Not tmp_path: pytest's base directory is 0700 root; the world fixture does the same.
    root = Path(tempfile.mkdtemp(prefix="landgate-fresh-trail-", dir="/tmp"))
    os.chmod(root, 0o755)
    home = root / "home"
    (home / "ws").mkdir(parents=True)
    (home / "notes.txt").write_text("allowed twin\n")
    yield home
    shutil.rmtree(root, ignore_errors=True)


def _run(home: Path, policy_text: str) -> subprocess.CompletedProcess[str]:
    policy = home.parent / "policy.yaml"
    policy.write_text(policy_text)
    (home / "agent.py").write_text(AGENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_") and k != "PYTHONPATH"}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    audit = home / ".local/state/landgate/audit"
    keys = home / ".config/landgate"
    assert not audit.exists() and not keys.exists()  # a fresh machine
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "run",
            "--policy",
            str(policy),
            "--",
            "/usr/bin/python3",
            str(home / "agent.py"),
            str(audit),
            str(keys),
            str(home),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=home / "ws",
        check=False,
    )


HOME_GRANT = """version: 1
workspace: ./
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - { path: "~/**", effect: allow }
  - action: file_write
    defaultEffect: deny
    rules:
      - { path: "~/**", effect: allow }
  - action: shell_exec
    defaultEffect: allow
"""


def test_first_session_in_a_fresh_home_cannot_touch_the_trail_or_read_the_key(
    fresh_home: Path,
) -> None:
    proc = _run(fresh_home, HOME_GRANT)
    if proc.returncode == 125:
        require_kernel(False, f"landgate run refused to start: {proc.stderr.strip()}")
    out = proc.stdout
    audit = fresh_home / ".local/state/landgate/audit"
    keys = fresh_home / ".config/landgate"
    key_hex = (keys / "audit.key").read_bytes().hex()
    assert key_hex not in out and key_hex[:16] not in out, out
    results = dict(x.split("=", 1) for x in out.split() if "=" in x)
    assert not results["append"].startswith("ok"), (out, proc.stderr)
    assert not results["truncate"].startswith("ok"), out
    assert not results["newseg"].startswith("ok"), out
    assert not results["key"].startswith("ok"), out
    assert not results["witness"].startswith("ok"), out
    assert not (audit / "trail-000002.jsonl").exists()
    segment = (audit / "trail-000001.jsonl").read_bytes()
    assert b'"target":"/innocent"' not in segment
    report = verify_trail(audit, key_directory=keys)
    assert report.ok and report.kind is None, report.summary()
    assert report.sessions == 1 and report.unsealed == ()
    # The allowed twins: the grant on ~ is real.
    assert out.count("twin_read=ok allowed twin") == 1, (out, proc.stderr)
    assert "twin_write=ok" in out
    assert (fresh_home / "new.txt").read_text() == "written\n"
