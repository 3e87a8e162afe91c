"""The decisions the C core makes over a policy's compiled tables: the very functions
the supervisor calls (csrc/judge_exec.c, csrc/judge_path.c, csrc/glob.c), called from
Python so that `explain`, simulation and enforcement give one answer (DESIGN §3, §4).

`c_core()` imports the extension once, with a located refusal when it is missing;
`sandbox.policy.compiled` builds the tables these functions read.
"""

from __future__ import annotations

import threading

from sandbox.errors import LaunchError

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sandbox.policy.compiled import Compiled

__all__ = [
    "EV_SHELL",
    "EV_WRAPPER",
    "c_core",
    "exec_hits",
    "glob_match",
    "judge_exec",
    "judge_path",
    "judge_unix",
    "normalise",
    "path_hits",
]

EV_SHELL = 128  # LG_EV_SHELL: a shell -c string was judged
EV_WRAPPER = 256  # LG_EV_WRAPPER: a wrapper was unwrapped


_FFI_LIB: list[tuple[Any, Any]] = []  # (ffi, lib) once imported


def c_core() -> tuple[Any, Any]:
    """The C core's (ffi, lib), imported on the first decision or compile."""
    if _FFI_LIB:  # hundreds of calls per compile: no import statement each
        return _FFI_LIB[0]
    try:
        from sandbox._supervise import ffi, lib  # the C core; loaded on first decision
    except ImportError as exc:
        # A broken install: refuse with the reason (exit 125), never a traceback.
        raise LaunchError(
            f"the supervisor extension sandbox._supervise does not import ({exc}): "
            "reinstall landgate (make install)"
        ) from None
    _FFI_LIB.append((ffi, lib))
    return ffi, lib


_local = threading.local()  # this thread's exec-judgement buffers


def _judge_buffers() -> Any:
    """This thread's exec-judgement scratch space (the C judge is not reentrant)."""
    b = getattr(_local, "judge", None)
    if b is None:
        ffi, lib = c_core()
        raw = lib.lg_judge_new()
        if raw == ffi.NULL:
            raise MemoryError("lg_judge_new: out of memory")
        b = ffi.gc(raw, lib.lg_judge_free)
        _local.judge = b
    return b


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def judge_exec(tables: Any, argv: list[str], exe: str | None) -> tuple[int, int, int, int]:
    """(effect, rule index, inherit, LG_EV_* flags) of an exec; effect 0 = undecided.
    Raises OverflowError when the argv is beyond the C bounds (the supervisor denies it)."""
    ffi, lib = c_core()
    blob = b"".join(_bytes(a) + b"\0" for a in argv)
    v = ffi.new("struct lg_verdict *")
    rc = lib.lg_judge_exec(
        _judge_buffers(), tables, blob, len(blob), _bytes(exe) if exe else ffi.NULL, v
    )
    if rc < 0:
        raise OverflowError(f"command line of {len(blob)} bytes, {len(argv)} words: too large")
    return v.effect, v.rule, v.inherit, v.flags


def judge_path(tables: Any, path: str, access: int) -> tuple[int, int]:
    """(access bits some deny rule denies `path` for, the first rule denying `access` or -1)."""
    ffi, lib = c_core()
    rule = ffi.new("int *")
    raw = _bytes(path)
    bits = lib.lg_judge_path(tables, raw, len(raw), access, rule)
    return bits, rule[0]


def path_hits(comp: Compiled, path: str, access: int) -> list[int]:
    """Rule indices (into comp.rules) of the path rules for `access` whose glob matches."""
    ffi, lib = c_core()
    n = comp.unix_start - comp.path_start
    hits = ffi.new("int[]", max(1, n))
    raw = _bytes(path)
    k = lib.lg_path_hits(comp.c, raw, len(raw), access, hits, n)
    return [comp.path_start + hits[i] for i in range(k)]


def judge_unix(tables: Any, path: str) -> tuple[int, int]:
    """(LG_EFFECT_* or 0 for the default, rule index) of a connect to a unix socket."""
    ffi, lib = c_core()
    rule = ffi.new("int *")
    effect = lib.lg_judge_unix(tables, _bytes(path), rule)
    return effect, rule[0]


def glob_match(words: tuple[int, ...], text: str, *, path: bool) -> bool:
    """Run one glob program (see sandbox.policy.globs) over `text`."""
    prog = _program(words)
    _ffi, lib = c_core()
    raw = _bytes(text)
    return bool(lib.lg_glob_match(prog, raw, len(raw), int(path)))


_PROGRAMS: dict[tuple[int, ...], Any] = {}


def _program(words: tuple[int, ...]) -> Any:
    p = _PROGRAMS.get(words)
    if p is None:
        ffi, _ = c_core()
        p = ffi.new("unsigned[]", list(words))
        _PROGRAMS[words] = p
    return p


def exec_hits(comp: Compiled, line: str, exe_line: str | None) -> list[int]:
    """Indices of the exec rules whose glob matches the line as written (`exe_line` for
    rules naming their program by path): the exec judge's per-form test, one form."""
    ffi, lib = c_core()
    hits = ffi.new("int[]", max(1, comp.n_exec))
    raw = _bytes(line)
    exe = _bytes(exe_line) if exe_line is not None else None
    n = lib.lg_exec_hits(
        comp.c,
        raw,
        len(raw),
        exe if exe is not None else ffi.NULL,
        len(exe or b""),
        hits,
        comp.n_exec,
    )
    return [hits[i] for i in range(n)]


def normalise(path: str) -> str:
    """Collapse `.`, `..` and repeated slashes of an absolute path, as the supervisor does
    (lg_normalise_path): `..` at the root stays at the root."""
    ffi, lib = c_core()
    raw = _bytes(path)
    out = ffi.new("char[]", len(raw) + 2)
    rc = lib.lg_normalise_path(raw, out, len(raw) + 2)
    if rc < 0:  # cannot happen: the result is never longer than its input (+ "/")
        raise ValueError(f"normalise {path!r}: error {rc}")
    return str(ffi.string(out).decode("utf-8", "surrogateescape"))
