"""Where the trail and the key live, and the key itself.

The audit directory holds the chain (`trail-000001.jsonl`, ...) and its lock
file.  The key directory (`$XDG_CONFIG_HOME/landgate/`) holds the HMAC key and
one witness file per audit directory (witness.py); it lives outside every
sandbox (the launcher denies reads of it, DESIGN §2), so an agent can neither
forge a tag or a checkpoint nor move the witness back.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sandbox.errors import AuditError
from sandbox.keyfile import create_key_file

SEGMENT_RE = re.compile(r"^trail-(\d{6,})\.jsonl$")
LOCK_NAME = "trail.lock"
KEY_NAME = "audit.key"
WITNESS_DIR = "witness"
KEY_BYTES = 32


def default_audit_dir() -> Path:
    """`$XDG_STATE_HOME/landgate/audit`, else `~/.local/state/landgate/audit`.

    One definition, shared with the policy's protected paths, so the directory
    the writer uses is exactly the one the sandbox is denied."""
    from sandbox.policy.baseline import default_audit_dir as _default

    return _default()


def key_dir() -> Path:
    """`$XDG_CONFIG_HOME/landgate`, else `~/.config/landgate` (the key and witnesses).

    Shared with the policy's protected paths (never readable in the sandbox)."""
    from sandbox.policy.baseline import key_dir as _key_dir

    return _key_dir()


def segment_name(index: int) -> str:
    return f"trail-{index:06d}.jsonl"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """The trail's segments in chain order, as (index, path)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AuditError(f"cannot read audit directory {directory}: {exc.strerror}") from exc
    out = []
    for name in names:
        m = SEGMENT_RE.match(name)
        if m:
            out.append((int(m.group(1)), directory / name))
    out.sort()
    return out


def make_private_dir(path: Path) -> None:
    """mkdir -p with 0700 on every directory we create (never loosen an existing one)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"cannot create {path}: {exc.strerror}") from exc


def load_key(directory: Path | None = None, *, create: bool) -> bytes:
    """The HMAC key; created (0600 in a 0700 directory) on first use when `create`."""
    kdir = directory if directory is not None else key_dir()
    path = kdir / KEY_NAME
    try:
        with open(path, "rb") as f:
            key = f.read()
    except FileNotFoundError:
        if not create:
            raise AuditError(
                f"audit key not found: {path} (verify needs the key of the "
                "machine that wrote the trail)"
            ) from None
        return _create_key(kdir, path)
    except OSError as exc:
        raise AuditError(f"cannot read audit key {path}: {exc.strerror}") from exc
    if len(key) != KEY_BYTES:
        raise AuditError(f"audit key {path} is {len(key)} bytes, expected {KEY_BYTES}")
    return key


def _create_key(kdir: Path, path: Path) -> bytes:
    make_private_dir(kdir)  # its own message when the directory cannot be made
    try:
        create_key_file(kdir, path, KEY_BYTES)
    except OSError as exc:
        raise AuditError(f"cannot create audit key {path}: {exc.strerror}") from exc
    return load_key(kdir, create=False)


def prepare_trail_dirs(audit_dir: Path, key_directory: Path | None = None) -> None:
    """Create the audit directory, the key directory, its witness directory and the key.

    Called before the sandbox's plan is built, on every run including the first: the
    plan protects paths that exist, so a directory created later (by the writer)
    would be unprotected for the whole first session (DESIGN §2, protected paths).
    The witness expiry is not run here (it was: up to 45 ms of a launch while a backlog
    lasted); the writer runs it once its session has started (expiry.py)."""
    kdir = key_directory if key_directory is not None else key_dir()
    make_private_dir(audit_dir)
    make_private_dir(kdir)  # before its subdirectory: mkdir's parents get the umask's mode
    make_private_dir(kdir / WITNESS_DIR)
    load_key(kdir, create=True)
