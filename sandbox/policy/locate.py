"""Which policy file a `--policy` argument (or its absence) means.

Kept apart from the loader so that finding the file costs no PyYAML import: a
`landgate hook` whose policy is in the persistent cache never loads the parser.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.errors import LandgateError
from sandbox.policy.keys import _PRESETS_DIR


def presets_dir() -> Path:
    """The bundled presets (`sandbox/presets`, a link to the repository's `policies/`)."""
    return _PRESETS_DIR


def preset_names() -> list[str]:
    try:
        return sorted(p.stem for p in _PRESETS_DIR.glob("*.yaml"))
    except OSError:
        return []


# `landgate run -- claude` with no policy: the agent's own preset (issue 15).
AGENT_PRESETS: dict[str, str] = {"claude": "claude-code", "codex": "codex", "aider": "aider"}
_SUFFIXES = (".yaml", ".yml", ".json")


def choose_policy(arg: str | None, cwd: Path, argv: list[str] | None = None) -> tuple[Path, str]:
    """`resolve_policy_path` plus one line saying what was chosen and why (for `run`)."""
    cwd = Path(cwd)
    if arg is None:
        local = cwd / ".landgate.yaml"
        if local.is_file():
            return local, f"{local} (./.landgate.yaml)"
        program = os.path.basename(argv[0]) if argv else ""
        name = AGENT_PRESETS.get(program)
        if name is not None and (_PRESETS_DIR / f"{name}.yaml").is_file():
            return (
                _PRESETS_DIR / f"{name}.yaml",
                f"the {name} preset (picked for `{program}`; --policy FILE to choose)",
            )
        return _PRESETS_DIR / "coding-agent.yaml", "the coding-agent preset (the default)"
    path = resolve_policy_path(arg, cwd)
    if path.parent == _PRESETS_DIR and not (cwd / arg).is_file():
        return path, f"the {path.stem} preset"
    return path, str(path)


def resolve_policy_path(arg: str | None, cwd: Path, argv: list[str] | None = None) -> Path:
    """Which file `--policy ARG` means.

    None: ./.landgate.yaml when present, else the agent's own preset when `argv`
    runs one (`claude` -> claude-code, `codex`, `aider`), else the bundled
    coding-agent preset.  A path first: an existing file is that file.  A preset
    second: a name with no `/` (`ci`, or its file name `ci.yaml`) that is not a
    file here is the bundled preset of that name.  Otherwise a LandgateError
    (exit 1) naming the path.
    """
    cwd = Path(cwd)
    if arg is None:
        return choose_policy(None, cwd, argv)[0]
    if not arg:
        raise LandgateError("--policy needs a file or a preset name", exit_code=1)
    candidate = Path(arg).expanduser()
    if not candidate.is_absolute():
        candidate = cwd / candidate
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        raise LandgateError(f"policy path is a directory, not a file: {arg}", exit_code=1)
    if "/" not in arg:
        stem = arg[: -len(Path(arg).suffix)] if arg.endswith(_SUFFIXES) else arg
        preset = _PRESETS_DIR / f"{stem}.yaml"
        if stem and "." not in stem and preset.is_file():
            return preset
        names = ", ".join(preset_names()) or "none installed"
        raise LandgateError(
            f"no policy file or bundled preset named {arg!r} (presets: {names})", exit_code=1
        )
    raise LandgateError(f"policy file not found: {arg}", exit_code=1)
