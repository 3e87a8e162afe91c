"""Load and validate policy files: native YAML (or JSON) and SafeClaw action blocks.

Two formats, told apart by the document's shape, not by the file's suffix:

- native: a mapping with `version`, `mode`, `workspace`, `extends`,
  `actions`, `environment`, `enforcement` (DESIGN §3);
- SafeClaw: one action block (a mapping with `action`, `defaultEffect`,
  `rules`) or a list of them, exactly as SafeClaw documents its JSON.

The formats differ in one meaning.  In SafeClaw files a pattern of one
dot-component between slashes (`/.ssh/`, `/.aws/`) means "a directory of that
name at any depth and everything beneath it" (SafeClaw's README); in native
files a leading `/` always means an absolute path.  Everything else means the
same in both.  The workspace (base of `./` patterns) is `.` resolved against
the `cwd` given to `load_policy` (the directory landgate runs in), unless a
native policy names another.

Both formats are parsed by one YAML loader (JSON is YAML) that keeps every
node's line and column, so every error reads `file:line:column: message` and
names the offending value.  Hostile input is refused cleanly: files over
`MAX_BYTES`, non-UTF-8 bytes, YAML anchors and aliases (the "billion laughs"
expansion), nesting deeper than `MAX_DEPTH`, duplicate keys, custom tags.
Nothing here prints, exits, or lets a traceback escape for a malformed file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

from sandbox.digest import sha256 as _sha256
from sandbox.errors import PolicyError
from sandbox.policy.fsdeps import _resolve_dir, file_read
from sandbox.policy.keys import MAX_BYTES

# Which file a `--policy` argument means lives in sandbox.policy.locate (no PyYAML there,
# so the persistent cache's hit path never imports this module); re-exported here.
from sandbox.policy.locate import (
    AGENT_PRESETS,
    choose_policy,
    preset_names,
    presets_dir,
    resolve_policy_path,
)
from sandbox.policy.model import (
    Policy,
)
from sandbox.policy.parse import _build
from sandbox.policy.patterns import (
    normalize_path,
)
from sandbox.policy.yamlread import _COMPOSED, _decode, _read_capped

# ---------------------------------------------------------------------------
# public entry points


__all__ = [
    "AGENT_PRESETS",
    "choose_policy",
    "load_policy",
    "load_policy_text",
    "policy_from_dict",
    "preset_names",
    "presets_dir",
    "resolve_policy_path",
]


def load_policy(
    path: str | os.PathLike[str],
    *,
    cwd: Path | None = None,
    home: Path | None = None,
    audit_dir: Path | None = None,
    memo: bool = True,
) -> Policy:
    """Load and validate a policy file (native YAML/JSON or SafeClaw JSON).

    `cwd` is where landgate runs: the base of a relative `workspace` (default
    `.`, i.e. `cwd` itself) and of a relative `path`.  `home` expands `~/`
    (default: $HOME).  `audit_dir` is the session's real audit directory, added
    to the protected paths.  SafeClaw files: `/.name/` means a directory
    `.name` at any depth (see the module docstring).
    Raises PolicyError / PolicyErrors (exit 1) for an invalid file, and
    LandgateError (exit 1) for a missing or unreadable one.
    `memo=False` builds afresh (no in-memory reuse): every file-system lookup is made,
    so sandbox.policy.fsdeps records them all (the persistent cache needs that).
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    file = os.fspath(path)
    data = _read_capped(p, file)
    file_read(os.path.abspath(p), data)
    # The file is read (and hashed) every time: the cache below is keyed by its exact
    # bytes, never by a timestamp, so an edit is seen even within the same clock tick.
    sha256 = _sha256(data).hexdigest()
    policy_path = Path(os.path.abspath(p))
    key = _cache_key(sha256, file, policy_path, base, home, audit_dir)
    text = _decode(data, file)
    cached = _LOADED.get(key) if memo else None
    if cached is not None and _still_valid(cached, text, base, home):
        return cached
    policy = _build(
        text,
        file=file,
        policy_path=policy_path,
        sha256=sha256,
        cwd=base,
        home=home,
        audit_dir=audit_dir,
    )
    with _LOADED_LOCK:
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = policy
    return policy


# Loaded policies (frozen, shared) by everything `_build` reads besides the text: the
# file's name and path, the working directory and home as the kernel resolves them now,
# the audit directory, and the environment variables the protected paths depend on.
# What depends on the file system beyond that (the workspace's symlinks) is re-checked
# on every hit by `_still_valid`.
_LOADED: dict[tuple[object, ...], Policy] = {}
_LOADED_MAX = 16
# sandbox.run is called from thread pools: two threads evicting at once would both pick the
# same oldest key, and the second pop raised KeyError out of sandbox.run (diskcache._MEMO
# has the same lock for the same reason).  Lookups stay lock-free (dict.get is atomic).
_LOADED_LOCK = threading.Lock()


def _cache_key(
    sha256: str, file: str, policy_path: Path, cwd: Path, home: Path | None, audit_dir: Path | None
) -> tuple[object, ...]:
    home_real = os.path.realpath(home if home is not None else Path.home())
    return (
        sha256,
        file,
        str(policy_path),
        os.path.realpath(cwd),
        home_real,
        None if audit_dir is None else os.fspath(audit_dir),
        os.environ.get("XDG_STATE_HOME", ""),
        os.environ.get("XDG_CONFIG_HOME", ""),
        os.environ.get("PATH", ""),  # `path: "$PATH"` expands against it
    )


def _still_valid(policy: Policy, text: str, cwd: Path, home: Path | None) -> bool:
    """The workspace a cached policy resolved is what its text resolves to now
    (a symlink on the way may have changed since)."""
    root = _COMPOSED.get(text)
    raw: str | None = None
    if isinstance(root, MappingNode):
        for k, v in root.value:
            if isinstance(k, ScalarNode) and k.value == "workspace":
                if not isinstance(v, ScalarNode):
                    return False
                raw = v.value
    elif root is None:
        return False
    cwd_p = Path(os.path.realpath(cwd))
    if raw is None:
        return cwd_p == policy.workspace
    home_s = normalize_path(os.path.realpath(home if home is not None else Path.home()))
    return _resolve_dir(raw, cwd_p, home_s) == policy.workspace


def load_policy_text(
    text: str,
    *,
    source: str = "<string>",
    cwd: Path | None = None,
    home: Path | None = None,
    audit_dir: Path | None = None,
) -> Policy:
    """Validate a policy given as text (errors name `source`)."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BYTES:
        raise PolicyError(
            f"policy text is {len(data) / (1 << 20):.1f} MiB; a policy is limited to "
            f"{MAX_BYTES >> 20} MiB",
            file=source,
            line=1,
            column=1,
        )
    return _build(
        text,
        file=source,
        policy_path=None,
        sha256=_sha256(data).hexdigest(),
        cwd=cwd,
        home=home,
        audit_dir=audit_dir,
    )


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a shared list twice instead of as an anchor + alias (which the loader refuses)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def policy_from_dict(
    data: object, *, source: str = "<dict>", cwd: Path | None = None, home: Path | None = None
) -> Policy:
    """Validate a policy given as Python data, by the same rules as a file.

    The data is rendered as YAML first, so errors carry line:column within that
    rendering (and name `source`).
    """
    try:
        text = yaml.dump(
            data,
            Dumper=_NoAliasDumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
        )
    except yaml.YAMLError as exc:
        raise PolicyError(
            f"policy data is not plain data (dicts, lists, strings, numbers): "
            f"{' '.join(str(exc).split())}",
            file=source,
            line=1,
            column=1,
        ) from None
    return load_policy_text(text, source=source, cwd=cwd, home=home)
