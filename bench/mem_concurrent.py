"""Memory of N concurrent `landgate run` sessions on one trail (issue 19: 10 and 100 at once).

    .venv/bin/python bench/mem_concurrent.py 100 [coding-agent|read-only]

Uses bench_cli.py's own sampling (`_sessions`: each landgate process's Rss/Pss/USS once its
agent runs, and its helpers'), with `sleep 60` as the agent instead of `sleep 3`, so that every
session is still running when it is sampled however long the N launches take.  Fresh XDG
directories: a user's own state, not this machine's.  Prints medians, maxima and sums (MB).
Not part of `make bench`: 100 sessions take ~75 s and ~5 GB on the full network layer.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _sampler(preset: str) -> types.ModuleType:
    src = (HERE / "bench_cli.py").read_text()
    src = src.replace('[*argv, "sleep", "3"]', '[*argv, "sleep", "60"]')
    src = src.replace('"coding-agent"', f'"{preset}"')
    mod = types.ModuleType("bench_cli_long")
    mod.__file__ = str(HERE / "bench_cli.py")
    sys.path.insert(0, str(HERE))
    exec(compile(src, "bench_cli.py", "exec"), mod.__dict__)
    return mod


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    preset = sys.argv[2] if len(sys.argv) > 2 else "coding-agent"
    d = Path(tempfile.mkdtemp(prefix="landgate-mem-"))
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for k in ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"):
        env[k] = str(d / k.lower())
    ws = d / "ws"
    ws.mkdir()
    sampler = _sampler(preset)
    # One launch first: bench_cli's sampler waits up to 60 s for each session's agent, so
    # a launch that cannot work (a broken install) would hold the machine for N minutes.
    first = subprocess.run(
        [sampler.LANDGATE, "run", "-q", "--policy", preset, "--", "/bin/true"],
        env=env,
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if first.returncode != 0:
        raise SystemExit(f"landgate run exited {first.returncode}: {first.stderr.strip()[-300:]}")
    rows = [r for r in sampler._sessions(env, str(ws), str(d / "audit"), n) if r]
    if not rows:
        raise SystemExit("no session was sampled")
    keys = [k for k in rows[0] if all(k in r for r in rows)]
    out: dict[str, object] = {"sessions": n, "preset": preset, "sampled": len(rows)}
    for k in keys:
        vals = [r[k] for r in rows]
        out[k] = {
            "median": round(statistics.median(vals), 1),
            "max": round(max(vals), 1),
            "sum": round(sum(vals), 1),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
