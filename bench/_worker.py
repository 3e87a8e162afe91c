"""In-process timing worker for bench/run.py (run by the tool's own Python).

    python bench/_worker.py sandlock|landgate

Reads JSON requests on stdin, one per line, answers one JSON line each:
  {"op": "configure", "workloads": {name: {"read_paths": [...], "connect_port": N,
                                           "policy": path, "audit": dir}}}
  {"op": "run", "workload": name, "argv": [...], "variant": "sandboxed"|"bare"}
      -> {"seconds": s, "returncode": n, "stderr": tail}

Both variants capture stdout and stderr (sandlock always does), so the
sandboxed launch and the plain `subprocess.run` differ only by the sandbox.
The protocol uses a private copy of stdout; fd 1 itself points at /dev/null so
nothing a sandboxed child prints can corrupt it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

SYSTEM_READ = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/dev", "/sys"]


def _tail(data: bytes | str | None) -> str:
    """stderr as text, bounded (the harness takes the last line, or warnings, from it)."""
    if not data:
        return ""
    if isinstance(data, bytes):
        data = data.decode(errors="replace")
    return data[-2000:]


def bare(argv: list[str]) -> tuple[int, str]:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    return proc.returncode, _tail(proc.stderr)


def make_sandlock(config: dict[str, Any]) -> Callable[[str, list[str]], tuple[int, str]]:
    import sandlock

    boxes = {}
    for name, wl in config["workloads"].items():
        kwargs: dict[str, Any] = {
            "fs_readable": SYSTEM_READ + list(wl.get("read_paths", [])),
            "fs_writable": ["/dev/null"],
        }
        if wl.get("connect_port"):
            kwargs["net_allow"] = [f"127.0.0.1:{wl['connect_port']}"]
        boxes[name] = sandlock.Sandbox(**kwargs)

    def run(workload: str, argv: list[str]) -> tuple[int, str]:
        result = boxes[workload].run(argv)
        return int(result.exit_code), _tail(getattr(result, "stderr", b""))

    return run


def make_landgate(config: dict[str, Any]) -> Callable[[str, list[str]], tuple[int, str]]:
    import sandbox
    from sandbox.api import run as sandbox_run

    policies: dict[str, Any] = {}
    audits: dict[str, str] = {}
    for name, wl in config["workloads"].items():
        policy: Any = wl["policy"]
        loader = getattr(sandbox.Policy, "load", None)
        if loader is not None:
            policy = loader(policy)  # load once, as an agent framework would
        policies[name] = policy
        audits[name] = wl["audit"]

    def run(workload: str, argv: list[str]) -> tuple[int, str]:
        result = sandbox_run(
            argv, policy=policies[workload], audit=audits[workload], capture_output=True
        )
        warnings = "".join(f"landgate: warning: {w}\n" for w in result.warnings)
        return int(result.returncode), warnings + _tail(result.stderr)

    return run


def main() -> int:
    backend = sys.argv[1]
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sandboxed: Callable[[str, list[str]], tuple[int, str]] | None = None
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req["op"] == "configure":
                factory = {"sandlock": make_sandlock, "landgate": make_landgate}[backend]
                sandboxed = factory(req)
                reply: dict[str, Any] = {"ok": True}
            elif req["op"] == "run":
                argv = req["argv"]
                t0 = time.perf_counter()
                if req["variant"] == "bare":
                    rc, err = bare(argv)
                else:
                    assert sandboxed is not None, "not configured"
                    rc, err = sandboxed(req["workload"], argv)
                seconds = time.perf_counter() - t0
                reply = {"seconds": seconds, "returncode": rc, "stderr": err}
            else:
                reply = {"error": f"unknown op {req['op']!r}"}
        except Exception as exc:  # noqa: BLE001 - reported to the harness, never dropped
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
