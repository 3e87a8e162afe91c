"""The resident hook server's test world: a project, private XDG directories, and the
servers the tests started stopped at the end (tests/integrations)."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import require_kernel

from sandbox.integrations import hookproto as proto


def peer_pidfd_supported() -> bool:
    a, b = socket.socketpair()
    with a, b:
        try:
            fd = int.from_bytes(a.getsockopt(socket.SOL_SOCKET, proto.SO_PEERPIDFD, 4), "little")
        except OSError:
            return False
        os.close(fd)
        return True


@contextmanager
def hook_world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """{"ws", "env", "audit", "run"}: a project with .env, README.md and .git/hooks; an
    environment whose state, cache, config and runtime directories are the test's own,
    the virtualenv's bin first on PATH; the hook servers started in it stopped after."""
    # Without SO_PEERPIDFD (Linux 6.5) no peer can be identified race-free: the server
    # declines everything and every call is decided in the hook's own process.
    require_kernel(peer_pidfd_supported(), "SO_PEERPIDFD (Linux 6.5) for the hook server")
    ws = tmp_path / "project"
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".env").write_text("API_KEY=secret\n")
    (ws / "README.md").write_text("# readme\n")
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = dict(
        os.environ,
        PATH=f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_RUNTIME_DIR=str(run),
        LANDGATE_HOOK_IDLE="60",
    )
    env.pop("LANDGATE_HOOK_SERVER", None)
    env.pop("LANDGATE_SESSION_REPORT", None)  # never the session of a run the tests are in
    s = {"ws": ws, "env": env, "audit": str(tmp_path / "audit"), "run": run / "landgate"}
    try:
        yield s
    finally:
        for lock in s["run"].glob("hook-*.lock") if s["run"].exists() else []:
            text = lock.read_text().strip()
            if text:
                try:
                    os.kill(int(text), signal.SIGTERM)
                except ProcessLookupError:
                    pass
