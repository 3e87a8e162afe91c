"""Cost of the supervised name-changing syscalls (issue 12: protected paths at access time).

    .venv/bin/python bench/fsop/bench.py [N]

Runs fsop_loop.c (N renames, N mkdir+rmdir pairs) bare, inside landgate with the
name-changing syscalls not supervised, and inside landgate with them supervised
(csrc/supervise_fsop.c), on the full rung (mount namespace) and on a host made to look
namespace-less.  5 runs each, interleaved after one warm-up, medians printed in us per
operation.  Takes /tmp/landgate-tests.lock (sessions use fixed namespace names).
"""

from __future__ import annotations

import fcntl
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

POLICY = """\
version: 1
workspace: {ws}
actions:
  - action: file_read
    defaultEffect: allow
    rules:
      - {{ path: "**/.env", effect: deny }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: allow
  - action: network
    defaultEffect: allow
"""


def parse(out: str) -> dict[str, float]:
    words = out.split()
    return {words[i]: float(words[i + 1]) / 1000 for i in range(0, len(words) - 1, 2)}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    import sandbox.plan as plan_mod
    from sandbox.host.probe import probe_host
    from sandbox.policy import load_policy
    from sandbox.session import RunOptions, run_session

    tmp = Path(tempfile.mkdtemp(prefix="landgate-fsop-bench-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    loop = tmp / "fsop_loop"
    subprocess.run(["gcc", "-O2", "-o", str(loop), str(HERE / "fsop_loop.c")], check=True)
    ws = tmp / "ws"
    ws.mkdir()
    (tmp / "policy.yaml").write_text(POLICY.format(ws=ws))
    pol = load_policy(tmp / "policy.yaml", cwd=ws, home=tmp)
    real = plan_mod.seccomp_plan  # build_plan's seam (memoized compile_seccomp)

    def landgate(rung: str, fsop: bool) -> dict[str, float]:
        def patched(**kw):  # type: ignore[no-untyped-def]
            kw["notify_fsop"] = kw.get("notify_fsop", False) and fsop
            return real(**kw)

        plan_mod.seccomp_plan = patched  # type: ignore[assignment]
        host = probe_host()
        if rung == "no-ns":
            host = host.without(mount_ns=False, pid_ns=False, user_ns=False)
        out_path = tmp / "out.txt"
        with open(out_path, "w") as out:
            rc = run_session(
                RunOptions(
                    argv=[str(loop), str(n)],
                    policy=pol,
                    host=host,
                    env={"PATH": "/usr/bin:/bin", "HOME": str(tmp)},
                    cwd=str(ws),
                    audit_dir=str(tmp / "audit"),
                    stdout_fd=out.fileno(),
                )
            )
        plan_mod.seccomp_plan = real
        if rc != 0:
            raise SystemExit(f"fsop_loop failed inside landgate ({rung}, fsop={fsop}): {rc}")
        return parse(out_path.read_text())

    def bare() -> dict[str, float]:
        p = subprocess.run([str(loop), str(n)], cwd=ws, capture_output=True, text=True, check=True)
        return parse(p.stdout)

    cases = {
        "bare": bare,
        "ns, not supervised": lambda: landgate("ns", False),
        "ns, supervised": lambda: landgate("ns", True),
        "no-ns, not supervised": lambda: landgate("no-ns", False),
        "no-ns, supervised": lambda: landgate("no-ns", True),
    }
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in cases}
    with open("/tmp/landgate-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for f in cases.values():
            f()  # warm-up
        for _ in range(5):
            for k, f in cases.items():
                samples[k].append(f())
    print(f"fsop_loop, N={n}, medians of 5 (us per operation)")
    print(f"{'case':<24} {'rename':>8} {'mkdir':>8} {'rmdir':>8}")
    for k, runs in samples.items():
        med = {
            m: statistics.median(r[m] for r in runs) for m in ("rename_ns", "mkdir_ns", "rmdir_ns")
        }
        print(f"{k:<24} {med['rename_ns']:8.1f} {med['mkdir_ns']:8.1f} {med['rmdir_ns']:8.1f}")
    subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()
