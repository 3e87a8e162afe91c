"""Every file-system lookup the loader makes, so that a persisted policy can be re-checked.

A loaded policy depends on more than its own file's bytes: the files it extends (found
by name, a path first and a bundled preset second), the workspace a `workspace:` value
resolves to (symlinks on the way), and the directories `path: "$PATH"` expands to.  The
loader calls the lookups below; while `recording()` is active each lookup notes its
inputs and its answer, and `still_true(notes)` asks every one of them again.  The
persistent cache (sandbox.policy.diskcache) stores the notes with the policy and trusts
an entry only when every note still holds, so nothing the loader looked at can change
behind it.

Kept free of PyYAML and the parser: checking a cache entry must not import them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sandbox.digest import sha256
from sandbox.policy.keys import _PRESETS_DIR

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextvars import ContextVar

_SUFFIXES = (".yaml", ".yml", ".json")

# A note is a tuple of strings (and None / tuples of strings): plain data, picklable,
# comparable.  ("file", path, sha256) | ("parent", name, base_dir, found or None)
# | ("dir", value, cwd, home, resolved) | ("path", $PATH, home, (dir, ...))
Note = tuple[object, ...]

# Per thread and per asyncio task: two policies loaded at once record apart.  Made by the
# first recording() (a policy loaded afresh): a launch whose policy comes from the cache
# records nothing and does not import contextvars (issue 19).  Until then nothing records.
_NOTES: list[ContextVar[list[Note] | None]] = []  # the one variable, once made
_NOTES_LOCK = threading.Lock()


def _notes_var() -> ContextVar[list[Note] | None]:
    with _NOTES_LOCK:  # one variable for every thread: made once
        if not _NOTES:
            import contextvars

            _NOTES.append(contextvars.ContextVar("landgate_policy_notes", default=None))
        return _NOTES[0]


def _recording_notes() -> list[Note] | None:
    return _NOTES[0].get() if _NOTES else None


@contextmanager
def recording() -> Iterator[list[Note]]:
    """Collect the notes of every lookup made inside the block."""
    var = _notes_var()
    notes: list[Note] = []
    token = var.set(notes)
    try:
        yield notes
    finally:
        var.reset(token)


def note(item: Note) -> None:
    notes = _recording_notes()
    if notes is not None:
        notes.append(item)


def resolve_parent(name: str, base_dir: Path) -> Path | None:
    """The file an `extends` entry names: a path (relative to the extending file's
    directory) first, a bundled preset second; None when neither exists."""
    found = _resolve_parent(name, base_dir)
    note(("parent", name, os.fspath(base_dir), None if found is None else os.fspath(found)))
    return found


def _resolve_parent(name: str, base_dir: Path) -> Path | None:
    if "/" in name or name.endswith(_SUFFIXES):
        candidate = Path(name).expanduser()
        if not candidate.is_absolute():
            candidate = base_dir / candidate
        if candidate.is_file():
            return candidate
        if "/" in name:
            return None
    stem = name[: -len(Path(name).suffix)] if name.endswith(_SUFFIXES) else name
    preset = _PRESETS_DIR / f"{stem}.yaml"
    return preset if preset.is_file() else None


def resolve_dir(value: str, cwd: Path, home: str) -> Path:
    """A `workspace:` value as a real directory path (`~/` is `home`, relative is `cwd`'s)."""
    found = _resolve_dir(value, cwd, home)
    note(("dir", value, os.fspath(cwd), home, os.fspath(found)))
    return found


def _resolve_dir(value: str, cwd: Path, home: str) -> Path:
    if value == "~" or value.startswith("~/"):
        value = home + value[1:]
    p = Path(value)
    if not p.is_absolute():
        p = cwd / p
    return Path(os.path.realpath(p))


def file_read(path: str | os.PathLike[str], data: bytes) -> None:
    """The loader read `data` from `path` (the policy file, or a file it extends)."""
    if _recording_notes() is not None:  # hashed only when someone records
        note(("file", os.fspath(path), sha256(data).hexdigest()))


def path_expanded(path_env: str, home: str, dirs: Sequence[str]) -> None:
    note(("path", path_env, home, tuple(dirs)))


def still_true(notes: Sequence[Note], read_limit: int) -> bool:
    """Does every lookup in `notes` give the same answer now?  Any error: no."""
    for item in notes:
        try:
            if not _holds(item, read_limit):
                return False
        except (OSError, ValueError, TypeError, IndexError):
            return False
    return True


def _holds(item: Note, read_limit: int) -> bool:
    kind = item[0]
    if kind == "file":
        path, sha = str(item[1]), item[2]
        with open(path, "rb") as fh:
            data = fh.read(read_limit + 1)
        return len(data) <= read_limit and sha256(data).hexdigest() == sha
    if kind == "parent":
        found = _resolve_parent(str(item[1]), Path(str(item[2])))
        return (None if found is None else os.fspath(found)) == item[3]
    if kind == "dir":
        return os.fspath(_resolve_dir(str(item[1]), Path(str(item[2])), str(item[3]))) == item[4]
    if kind == "path":
        from sandbox.policy.toolchains import toolchain_dirs

        return tuple(toolchain_dirs(str(item[1]), str(item[2]))) == item[3]
    return False  # a note this version does not know: never trusted
