"""The exec decision itself, without a kernel in the loop: ns per lg_judge_exec call
over the compiled tables (the function the supervisor's loop and `explain` both call).

run() -> dict; `python bench/bench_judge.py` prints it.  Medians of 7 runs of 20,000
calls; the cffi call floor (an empty C call) is reported beside them.  No assertion.
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
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
