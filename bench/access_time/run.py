"""Access-time file decisions (issue 12): every measurement of the candidate mechanisms in one run.

    sudo .venv/bin/python bench/access_time/run.py [--runs N] [--files N] [--out DIR]

Standalone (not part of bench/run.py).  Root: fanotify permission events and the audit
netlink socket need it.  Takes /tmp/landgate-tests.lock for the timed parts (the machine's
CPUs are shared with other timing-sensitive runs).  Writes DIR/results.json (every sample)
and DIR/RESULTS.md (medians and ratios, all measured in this run), and prints the table.
"""

import argparse
import contextlib
import fcntl
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, build, make_tree, median

LOCK = "/tmp/landgate-tests.lock"


@contextlib.contextmanager
def machine_lock():
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def wall(argv):
    t0 = time.perf_counter()
    p = subprocess.run(
        argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return dt


def json_lines(argv):
    p = subprocess.run(argv, check=False, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]


def find_cat(root, passes=1):
    one = f"find {shlex.quote(root)} -type f -print0 | xargs -0 cat > /dev/null"
    return ["sh", "-c", "; ".join([one] * passes)]


def measure_find_cat(fg, ws, tree, out_tree, runs):
    gate = [fg, "-q", "-w", ws, "-g", "*/.env"]
    cases = {
        "bare": find_cat(tree),
        "namespace + bind, no fanotify": [fg, "-q", "-w", ws, "-m", "none", "--", *find_cat(tree)],
        "fanotify, unpinned": [*gate, "--", *find_cat(tree)],
        "fanotify, listener and command on CPU 0": [
            *gate,
            "-c",
            "0",
            "-C",
            "0",
            "--",
            *find_cat(tree),
        ],
        "fanotify, listener CPU 0, command CPU 1": [
            *gate,
            "-c",
            "0",
            "-C",
            "1",
            "--",
            *find_cat(tree),
        ],
        "fanotify, tree outside the marked mount": [*gate, "--", *find_cat(out_tree)],
        "bare, two passes": find_cat(tree, 2),
        "fanotify + ignore-mark cache, two passes": [*gate, "-k", "--", *find_cat(tree, 2)],
    }
    samples = {k: [] for k in cases}
    for argv in cases.values():  # warm-up (page cache, dentries): not recorded
        wall(argv)
    for _ in range(runs):  # interleaved, so drift hits every case alike
        for name, argv in cases.items():
            samples[name].append(wall(argv))
    return samples


def measure_open(fg, ur, ol, ws, tree, out_tree, runs):
    loop = [ol, tree, "3"]
    gate = [fg, "-q", "-w", ws, "-g", "*/.env"]
    cases = {
        "bare": loop,
        "fanotify, unpinned": [*gate, "--", *loop],
        "fanotify, same CPU": [*gate, "-c", "0", "-C", "0", "--", *loop],
        "fanotify, other CPU": [*gate, "-c", "0", "-C", "1", "--", *loop],
        "fanotify + ignore-mark cache (passes 2-3)": [
            *gate,
            "-k",
            "-c",
            "0",
            "-C",
            "0",
            "--",
            *loop,
        ],
        "fanotify, file outside the marked mount": [*gate, "--", ol, out_tree, "3"],
        "seccomp filter, allow all": [ur, "allow", "--", *loop],
        "seccomp on flags: read-only opens stay in the kernel": [ur, "flags", "-s", "--", *loop],
        "seccomp on flags: write opens to the supervisor (CONTINUE)": [
            ur,
            "flags",
            "-s",
            "--",
            *loop[:2],
            "3",
            "w",
        ],
        "bare write opens": [*loop[:2], "3", "w"],
        "unotify CONTINUE, SYNC_WAKE_UP, unpinned": [ur, "continue", "-s", "--", *loop],
        "unotify CONTINUE, no SYNC_WAKE_UP, unpinned": [ur, "continue", "--", *loop],
        "unotify CONTINUE, SYNC_WAKE_UP, other CPU": [
            ur,
            "continue",
            "-s",
            "-c",
            "0",
            "-C",
            "1",
            "--",
            *loop,
        ],
        "unotify open + ADDFD, SYNC_WAKE_UP, unpinned": [ur, "addfd", "-s", "--", *loop],
        "unotify open + ADDFD, SYNC_WAKE_UP, same CPU": [
            ur,
            "addfd",
            "-s",
            "-c",
            "0",
            "-C",
            "0",
            "--",
            *loop,
        ],
    }
    samples = {k: [] for k in cases}
    json_lines(loop)  # warm-up: not recorded
    for _ in range(runs):
        for name, argv in cases.items():
            out = json_lines(argv)[0]
            per = out["ns_per_open"]
            if out["errors"]:
                raise RuntimeError(f"{name}: {out['errors']} opens failed")
            # the cache case is judged on the passes after the first (the cache is warm)
            samples[name].append(median(per[1:]) if "cache" in name else median(per))
    return samples


def landlock_chain(top, runs):
    """Protecting one path by granting its ancestors' other children (Landlock alone):
    rules needed and ruleset build time for the same chain in a small and a large tree."""
    import ll_chain

    out = {}
    for n in (1_000, 100_000):
        root = os.path.join(top, f"home{n}")
        ll_chain.make_home(root, n)
        times, rules = [], None
        for _ in range(runs):
            rules, dt = ll_chain.build_by_children(root, ".config/git/config")
            times.append(dt)
        out[f"{n} entries"] = {"rules": rules, "build_ms": median(times) * 1000}
    out["check"] = ll_chain.check(root, ".config/git/config")
    return out


def protect_demo(top):
    """protect_demo.sh under protect_gate.py, gate on and off: {step: (on, off)}."""
    res = {}
    for mode in ("on", "off"):
        home, ws = os.path.join(top, f"pg-{mode}", "home"), os.path.join(top, f"pg-{mode}", "ws")
        os.makedirs(home)
        os.makedirs(ws)
        open(os.path.join(home, ".bashrc"), "w").close()
        argv = [sys.executable, os.path.join(HERE, "protect_gate.py"), "--home", home]
        argv += (["--off"] if mode == "off" else []) + ["--"]
        argv += ["bash", os.path.join(HERE, "protect_demo.sh"), ws]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
        for line in out.stdout.splitlines():
            step, sep, verdict = line.rpartition(": ")
            if sep and verdict in ("ok", "refused"):
                res.setdefault(step, {})[mode] = verdict
    return res


def table(results):
    lines = ["# Access-time file decisions: measurements (issue 12)", ""]
    m = results["machine"]
    lines.append(f"{m['kernel']}, {m['cpus']} CPUs, {m['date']}; {results['runs']} runs, medians.")
    lines += ["", "## find + cat over the workspace", ""]
    lines += ["| case | median s | × bare |", "|---|---:|---:|"]
    fc = results["find_cat"]
    for name, xs in fc.items():
        base = median(fc["bare, two passes" if "two passes" in name else "bare"])
        lines.append(f"| {name} | {median(xs):.3f} | {median(xs) / base:.2f} |")
    lines += ["", "## one open + read + close (openloop)", ""]
    lines += ["| case | µs per open | + µs vs bare |", "|---|---:|---:|"]
    op = results["open"]
    for name, xs in op.items():
        base = median(op["bare write opens" if "write" in name else "bare"])
        lines.append(f"| {name} | {median(xs) / 1000:.1f} | {(median(xs) - base) / 1000:+.1f} |")
    if "landlock_chain" in results:
        lines += ["", "## Landlock: protecting ~/.config/git/config by granting its ancestors'"]
        lines += ["other children", "", "| granted tree | rules | build ms |", "|---|---:|---:|"]
        for name, v in results["landlock_chain"].items():
            if name != "check":
                lines.append(f"| {name} | {v['rules']} | {v['build_ms']:.2f} |")
        lines.append("")
        for name, v in results["landlock_chain"]["check"].items():
            lines.append(f"- {name}: {v}")
    lines += ["", "## fanotify on this kernel (fan_gate -P)", ""]
    for k, v in results["fanotify_probe"].items():
        lines.append(f"- `{k}`: {v}")
    lines += ["", "## attacks (attacks.py): gate on / gate off", ""]
    lines += ["| case | fanotify gate | no gate |", "|---|---|---|"]
    on, off = results["attacks"]["mount"], results["attacks"]["none"]
    for k, v in on.items():
        if k != "gate's denial lines":
            lines.append(f"| {k} | {v} | {off.get(k)} |")
    lines += ["", "## protected paths (protect_gate.py + protect_demo.sh): gate on / off", ""]
    lines += ["| step | gate | no gate |", "|---|---|---|"]
    for step, v in results["protected_paths"].items():
        lines.append(f"| {step} | {v.get('on')} | {v.get('off')} |")
    la = results["landlock_audit"]
    lines += ["", "## Landlock audit records (ll_audit.py --control)", ""]
    lines.append(
        f"audit enabled: {la['audit_enabled']}, daemon pid: {la['audit_daemon_pid']}; "
        f"Landlock records: {la['landlock_records']}, other records seen: {la['other_records']}; "
        f"denial to record: {la['denial_to_record_us']} µs; "
        f"audit state unchanged: {la['audit_state_unchanged']}"
    )
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run.py: fanotify permission events and audit netlink need root")
    fg, ur, ol = build("fan_gate"), build("unotify_rt"), build("openloop")
    top = tempfile.mkdtemp(prefix="i12-bench-")
    try:
        ws = os.path.join(top, "ws")
        tree, out_tree = os.path.join(ws, "t"), os.path.join(top, "out", "t")
        make_tree(tree, args.files)
        make_tree(out_tree, args.files)
        results = {
            "machine": {
                "kernel": platform.release(),
                "cpus": os.cpu_count(),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            },
            "runs": args.runs,
            "files": args.files,
            "fanotify_probe": json_lines([fg, "-P"])[0],
        }
        with machine_lock():
            results["find_cat"] = measure_find_cat(fg, ws, tree, out_tree, args.runs)
            results["open"] = measure_open(fg, ur, ol, ws, tree, out_tree, args.runs)
            results["landlock_chain"] = landlock_chain(top, args.runs)
        results["attacks"] = {}
        for mode in ("mount", "none"):
            out = subprocess.run(
                [sys.executable, os.path.join(HERE, "attacks.py"), "--mode", mode],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results["attacks"][mode] = json.loads(out)["results"]
        results["protected_paths"] = protect_demo(top)
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, "ll_audit.py"), "--control"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results["landlock_audit"] = json.loads(out)
    finally:
        shutil.rmtree(top)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    md = table(results)
    with open(os.path.join(args.out, "RESULTS.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
