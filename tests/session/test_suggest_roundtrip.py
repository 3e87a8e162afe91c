"""simulate -> suggest -> enforce (issue 15): a mixed workflow (a cache tree, cc with its
temporary files, a program outside every executable tree, everyday tools, a loopback
connection) run in simulation under a strict policy; `landgate audit suggest` turns the
trail into `extends: [that policy]` plus a small generalised delta; the same workflow
re-run enforced under the suggestion completes with 0 denials, while the base policy's
deny (`.env`) still holds in the suggestion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import scaled
from helpers import cli
from launch.lg_helpers import ROOT, landgate

from sandbox.policy import decide, load_policy

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("landlock_and_notify")]


def _base(world) -> Path:
    return world.write_policy(
        f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "./", effect: allow }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "./", effect: allow }}
  - action: shell_exec
    defaultEffect: deny
    rules:
      - {{ command: "sh flow.sh", effect: allow, inherit: false }}
      - {{ command: "curl*", effect: deny }}
  - action: network
    defaultEffect: deny
""",
        name="strict.yaml",
    )


FLOW = """\
set -e
mkdir -p "$HOME/.cache/tool/a/b"
for i in 1 2 3 4 5 6 7 8; do echo "$i" > "$HOME/.cache/tool/a/b/f$i"; done
cat "$HOME/.cache/tool/a/b/f3" > /dev/null
printf 'int main(void) {{ return 0; }}\\n' > hello.c
cc -o hello hello.c
./hello
"$HOME/tools/bin/mytool"
od -c hello.c > /dev/null
sort hello.c > /dev/null
/usr/bin/python3 net.py {port} || echo NET-REFUSED
echo FLOW-DONE
"""


NET = """\
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5).sendall(b"ping")
"""


def _session_entries(world, session: str) -> list[dict]:
    trail = world.root / "xdg" / "state" / "landgate" / "audit"
    out: list[dict] = []
    for seg in sorted(trail.glob("trail-*.jsonl")):
        out += [json.loads(x) for x in seg.read_bytes().splitlines() if x.strip()]
    return [e for e in out if e.get("session") == session]


def _last_session(world) -> str:
    trail = world.root / "xdg" / "state" / "landgate" / "audit"
    starts = []
    for seg in sorted(trail.glob("trail-*.jsonl")):
        for x in seg.read_bytes().splitlines():
            e = json.loads(x)
            if e.get("type") == "session_start":
                starts.append(e["session"])
    return starts[-1]


def test_simulate_suggest_enforce_round_trip(world):
    if shutil.which("cc") is None:
        pytest.fail("cc is not installed (the Makefile's apt step installs gcc)")
    tools = world.home / "tools" / "bin"
    tools.mkdir(parents=True)
    shutil.copy("/usr/bin/true", tools / "mytool")
    for d in (world.home / "tools", tools):
        d.chmod(0o755)
    (world.workspace / "flow.sh").write_text(FLOW.format(port=world.allowed_server.port))
    (world.workspace / "net.py").write_text(NET)
    base = _base(world)

    # 1. enforced under the strict base, the workflow fails (the twin of the last step)
    before = landgate(world, ["sh", "flow.sh"], policy=base)
    assert before.returncode != 0 and b"FLOW-DONE" not in before.stdout

    # 2. simulated: nothing blocked but egress, every decision recorded
    sim = landgate(world, ["sh", "flow.sh"], policy=base, extra_args=["--simulate"])
    assert b"FLOW-DONE" in sim.stdout, sim.stderr

    # 3. suggest (as the same user: the same $HOME, the same trail)
    env = dict(world.env)
    env["PYTHONPATH"] = str(ROOT)
    env["XDG_STATE_HOME"] = str(world.root / "xdg" / "state")
    env["XDG_CONFIG_HOME"] = str(world.root / "xdg" / "config")
    sug = cli.landgate("audit", "suggest", cwd=world.workspace, env=env, timeout=scaled(60))
    assert sug.returncode == 0, sug.stderr
    text = sug.stdout
    assert f"extends: [{json.dumps(str(base))}]" in text, text
    assert "# note:" not in text, text  # the self-check: every recorded action allowed
    rules = [x for x in text.splitlines() if x.lstrip().startswith("- {")]
    # generalised: one rule for the cache tree (not 8 files), one for /tmp (gcc's random
    # temporary names), program prefixes, the tool's directory with exec: true
    assert sum("~/.cache/tool/" in r for r in rules) >= 1, text
    assert not any("/f3" in r or "/f7" in r for r in rules), text
    assert not any("/tmp/cc" in r for r in rules), text
    assert any('command: "od *"' in r for r in rules), text
    assert any('"~/tools/bin/", effect: allow, exec: true' in r for r in rules), text
    assert any(f"127.0.0.1:{world.allowed_server.port}" in r for r in rules), text
    assert len(rules) < 30, text
    path = world.root / "suggested.yaml"
    path.write_text(text)
    path.chmod(0o644)
    pol = load_policy(path, cwd=world.workspace, home=world.home)
    assert decide(pol, "file_read", str(world.dotenv)).effect == "deny"  # the base's deny
    assert decide(pol, "shell_exec", "curl http://x").effect == "deny"

    # 4. enforced under the suggestion: the workflow completes with 0 denials
    after = landgate(world, ["sh", "flow.sh"], policy=path)
    assert after.returncode == 0, after.stderr
    assert b"FLOW-DONE" in after.stdout and b"NET-REFUSED" not in after.stdout
    assert b"landgate: denied" not in after.stderr, after.stderr
    entries = _session_entries(world, _last_session(world))
    denied = [e for e in entries if e.get("type") == "decision" and e.get("result") != "allow"]
    assert denied == [], denied
    assert world.allowed_server.connections >= 1
