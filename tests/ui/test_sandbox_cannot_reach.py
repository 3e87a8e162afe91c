"""A sandbox never reaches a running dashboard, whatever the policy's localhost rules say.

The policy allows `localhost:*` (every host loopback port): a plain loopback server
is reached (the allowed twin), the dashboard's port is refused, and the trail
records the denial as landgate's own ("landgate dashboard"), not a policy rule.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_root

from sandbox.audit.reader import iter_entries
from sandbox.policy.baseline import default_audit_dir
from sandbox.ui.server import Dashboard

pytestmark = [pytest.mark.kernel]

POLICY = """version: 1
mode: enforce
actions:
  - action: shell_exec
    defaultEffect: deny
    rules:
      - { command: "python3*", effect: allow }
      - { command: "/usr/bin/python3*", effect: allow }
  - action: network
    defaultEffect: deny
    rules:
      - { destination: "localhost:*", effect: allow }
      - { destination: "127.0.0.0/8", effect: allow }
"""

CLIENT = """
import socket, sys
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"hello from the sandbox")
        print(port, "connected", flush=True)
    except OSError as exc:
        print(port, "refused", exc.errno, flush=True)
    finally:
        s.close()
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Dashboard, int, list]]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "state").mkdir()
    policy = tmp_path / ".landgate.yaml"
    policy.write_text(POLICY)
    dash = Dashboard(default_audit_dir(), policy)  # registers in $XDG_STATE_HOME/landgate/ui
    dash.start()
    got: list[bytes] = []
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            got.append(c.recv(100))
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield dash, srv.getsockname()[1], got
    finally:
        srv.close()
        dash.close()


def test_sandboxed_client_cannot_reach_the_dashboard(
    env: tuple[Dashboard, int, list], tmp_path: Path
) -> None:
    require_root()
    dash, other, got = env
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "run", "--policy", str(tmp_path / ".landgate.yaml"),
         "--", "/usr/bin/python3", "-c", CLIENT, str(dash.port), str(other)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines.get(str(other)) == "connected", proc.stdout + proc.stderr  # the allowed twin
    assert lines.get(str(dash.port), "").startswith("refused"), proc.stdout + proc.stderr
    assert b"hello from the sandbox" in got
    denials = [
        e
        for e in iter_entries(default_audit_dir())
        if e.get("type") == "decision"
        and e.get("result") == "deny"
        # the policy grants no file reads: python's probe of its cwd is refused and
        # recorded too; this test is about the network
        and e.get("action") == "network"
    ]
    assert [(d["target"], d["rule"]) for d in denials] == [
        (f"127.0.0.1:{dash.port}", "landgate dashboard")
    ]
