"""The ports of running `landgate ui` dashboards: an infrastructure deny for every sandbox.

The dashboard listens on the host's loopback and can change ./.landgate.yaml; a
sandboxed program must never reach it, whatever the policy's `localhost` rules
say.  Each dashboard writes its port to `$XDG_STATE_HOME/landgate/ui/PID.port`
(under landgate's state directory, which every sandbox is denied writing: the
agent cannot remove its own deny).  A session reads the files at launch and
denies those ports on 127.0.0.0/8 and ::1 in the supervisor's connect check,
ahead of every policy rule; the loopback forwarder re-reads them on each rescan,
so a dashboard started after a session is not forwarded into it either.

A file whose process is gone is ignored (a dashboard killed with SIGKILL leaves
it behind); an unreadable directory denies nothing more than it already did and
is reported by the caller's warning path, never silently turned into an allow.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.errors import LandgateError


def ui_dir() -> Path:
    """`$XDG_STATE_HOME/landgate/ui` (beside the audit directory, protected the same way)."""
    from sandbox.policy.baseline import default_audit_dir

    return default_audit_dir().parent / "ui"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def register_port(port: int, directory: Path | None = None) -> Path:
    """Record this process's dashboard port; returns the file (remove it on exit)."""
    if not 0 < port < 65536:
        raise LandgateError(f"dashboard port {port}: not a port", exit_code=1)
    d = directory if directory is not None else ui_dir()
    path = d / f"{os.getpid()}.port"
    tmp = d / f".{os.getpid()}.port.tmp"
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp.write_text(f"{port}\n", encoding="ascii")
        os.replace(tmp, path)
    except OSError as exc:
        raise LandgateError(
            f"cannot record the dashboard port in {path}: {exc.strerror}", exit_code=1
        ) from None
    return path


def unregister(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def dashboard_ports(directory: Path | None = None) -> set[int]:
    """Ports of the dashboards running now (files of live processes)."""
    d = directory if directory is not None else ui_dir()
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return set()
    except OSError as exc:
        # Fail closed is not possible here (we do not know the port): say so loudly.
        raise LandgateError(f"cannot read the dashboard ports in {d}: {exc.strerror}") from None
    ports: set[int] = set()
    for name in names:
        stem, dot, ext = name.partition(".")
        if ext != "port" or not dot or not stem.isdigit():
            continue
        try:
            text = (d / name).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue  # removed between listdir and open (a dashboard exiting)
        if text.isdigit() and 0 < int(text) < 65536 and _alive(int(stem)):
            ports.add(int(text))
    return ports
