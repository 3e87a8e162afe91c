"""The exec decision itself, without a kernel in the loop: ns per lg_judge_exec call
over the compiled tables (the function the supervisor's loop and `explain` both call).
And the path glob interpreter alone (csrc/glob.c's lg_glob_match): ns per call for the
globs a policy has, and µs for globs that alternate spanning ops over a deep path (what
an agent could make the supervisor pay per open with a path of its choosing).

run() -> dict; `python bench/bench_judge.py` prints it.  Medians of 7 runs of 20,000
calls (of fewer for the pathological globs); the cffi call floor (an empty C call) is
reported beside them.  No assertion.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PATTERNS = [
    ("true", "allow"), ("loops*", "allow"), ("git *", "allow"), ("npm test", "allow"),
    ("curl*", "deny"), ("wget*", "deny"), ("ssh *", "deny"), ("python3 *", "allow"),
    ("ls*", "allow"), ("cat *", "allow"), ("rm -rf /*", "deny"), ("sh *", "allow"),
]  # fmt: skip
CASES = {
    "true": ["/bin/true"],
    "git status": ["/usr/bin/git", "status", "--short"],
    "env nice curl": ["/usr/bin/env", "nice", "-n", "5", "curl", "-s", "https://example.com/x"],
    "sh -c, 3 commands": ["/bin/sh", "-c", "git status && ls -la src | cat; python3 -m pytest"],
}
N = 20000
# (glob, path) pairs judged by lg_glob_match: what policies have, then the alternating
# spanning ops (`**` and `*` in turn) over a deep path that does not match, so a
# backtracking interpreter tries every split.
DEEP = "/w/" + "aaaa/" * 200 + "y"  # 1,004 bytes, 200 components
PATH_CASES = {
    "**/.env vs a source file": ("**/.env", "/home/u/proj/src/pkg/module/file.py"),
    "/home/u/.ssh/** vs a library": ("/home/u/.ssh/**", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
    "/w/**/*.py vs a match": ("/w/**/*.py", "/w/src/pkg/sub/mod.py"),
    "**/node_modules/** deep": ("**/node_modules/**", DEEP),
}
PATHOLOGICAL = {
    "/w/**/*/**/*/x, 200 deep": ("/w/**/*/**/*/x", DEEP),
    "/w/**/*/**/*/**/*/x, 200 deep": ("/w/**/*/**/*/**/*/x", DEEP),
    "/w/**/*a*/**/*a*/**/*a*/x, 50 deep": ("/w/**/*a*/**/*a*/**/*a*/x", "/w/" + "aaaa/" * 50 + "y"),
}


def run() -> dict[str, Any]:
    from sandbox._supervise import ffi, lib

    from sandbox.policy import load_policy_text
    from sandbox.supervise import compile_tables

    rules = "".join(f'      - {{ command: "{g}", effect: {e} }}\n' for g, e in PATTERNS)
    text = "version: 1\nextends: []\nactions:\n  - action: shell_exec\n    defaultEffect: deny\n"
    tables = compile_tables(
        load_policy_text(text + "    rules:\n" + rules), {"resolve_hosts": False}
    )
    judge = ffi.gc(lib.lg_judge_new(), lib.lg_judge_free)
    v = ffi.new("struct lg_verdict *")

    def once(blob: bytes, exe: bytes) -> float:
        t0 = time.perf_counter_ns()
        for _ in range(N):
            lib.lg_judge_exec(judge, tables.c, blob, len(blob), exe, v)
        return (time.perf_counter_ns() - t0) / N

    def floor() -> float:
        t0 = time.perf_counter_ns()
        for _ in range(N):
            lib.lg_supervise_api_version()
        return (time.perf_counter_ns() - t0) / N

    out: dict[str, Any] = {"rules": len(PATTERNS), "calls": N}
    for name, argv in CASES.items():
        blob = b"".join(a.encode() + b"\0" for a in argv)
        out[name + " ns"] = round(statistics.median(once(blob, argv[0].encode()) for _ in range(7)))
    out["cffi floor ns"] = round(statistics.median(floor() for _ in range(7)))
    out.update(run_globs())
    return out


def run_globs() -> dict[str, Any]:
    """ns per lg_glob_match call (typical globs), ms per call (pathological ones)."""
    from sandbox._supervise import ffi, lib

    from sandbox.policy.globs import compile_glob

    def per_call(glob: str, path: str, n: int) -> float:
        prog = ffi.new("unsigned[]", list(compile_glob(glob, path=True)))
        raw = path.encode()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            lib.lg_glob_match(prog, raw, len(raw), 1)
        return (time.perf_counter_ns() - t0) / n

    out: dict[str, Any] = {}
    for name, (glob, path) in PATH_CASES.items():
        out[f"glob {name} ns"] = round(statistics.median(per_call(glob, path, N) for _ in range(7)))
    for name, (glob, path) in PATHOLOGICAL.items():
        first = per_call(glob, path, 1)  # one call first: how many fit in ~1 s
        n = max(1, min(N, int(1e9 / max(first, 1.0))))
        ms = statistics.median(per_call(glob, path, n) for _ in range(3)) / 1e6
        out[f"glob {name} ms"] = round(ms, 3)
    return out


if __name__ == "__main__":
    print(json.dumps(run_globs() if sys.argv[1:] == ["--globs"] else run(), indent=2))
