"""`make vm-test`: the kernel-facing tests under each kernel vm-tests/kernels lists.

Each kernel boots once in QEMU with this host's root filesystem shared read-only (9p) under a
tmpfs overlay (kernels.py, init.sh), runs one pytest invocation of the kernel-facing tests with
LANDGATE_REQUIRE_KERNEL=1 (guest.sh), and writes junit XML, `doctor --json`, `plan --json` and
its exit status to vm-tests/out/NAME/.  This script prints one summary line per kernel and
exits 0 only if every kernel's run passed.

KVM is used when a hardware KVM module (kvm_intel, kvm_amd) is loaded; otherwise QEMU's TCG
(software emulation: Python ~15x and fork+exec ~75x slower than the host), and the tests'
own timeouts are scaled by LANDGATE_TEST_TIMEOUT_SCALE.  Kernels run concurrently, one per CPU.

Environment: LANDGATE_VM_KERNELS (names to run, default all), LANDGATE_VM_TESTS (the pytest
arguments, default TESTS below), LANDGATE_VM_TIMEOUT (seconds per VM, default 2100).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernels import HERE, Kernel, VmError, prepare, read_entries

TREE = HERE.parent
OUT = HERE / "out"
# The kernel-facing tests (issue 17): everything that touches Landlock, seccomp, namespaces,
# nftables or the supervisor, plus the planner (its output depends on the probed kernel).
TESTS = (
    "tests/launch tests/escape tests/supervise tests/net tests/session tests/api tests/plan "
    "tests/audit/test_sandbox_access.py"
)
TCG_SCALE = 10  # TCG: fork+exec ~75x, Python ~15x slower; the tests' waits are scaled this much
KVM_SCALE = 2
# guest.sh mounts a fresh tmpfs on these, as a booted Debian does, so a tree below one of
# them is hidden inside the guest (its `cd $TREE` would fail after the boot).
GUEST_TMPFS = ("/tmp", "/run", "/dev/shm")


def tree_hidden_by(tree: Path) -> str | None:
    """The guest tmpfs mount that would hide `tree`, or None when the guest can see it."""
    real = tree.resolve()
    for mount in GUEST_TMPFS:
        if real == Path(mount) or Path(mount) in real.parents:
            return mount
    return None


def accelerator() -> str:
    hardware = any(Path(f"/sys/module/{m}").exists() for m in ("kvm_intel", "kvm_amd"))
    return "kvm" if hardware and os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"


def qemu_argv(k: Kernel, out: Path, accel: str, cpus: int) -> list[str]:
    share = "security_model=none,multidevs=remap"
    return [
        "qemu-system-x86_64",
        "-accel",
        "kvm" if accel == "kvm" else "tcg,thread=multi",
        "-cpu",
        "host" if accel == "kvm" else "max",
        "-m",
        "2048",
        "-smp",
        str(cpus),
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{out}/console.log",
        "-no-reboot",
        "-nic",
        "user,model=virtio-net-pci,restrict=on,ipv6=off",
        "-kernel",
        str(k.vmlinuz),
        "-initrd",
        str(k.initramfs),
        "-append",
        "console=ttyS0 panic=-1 quiet",
        "-virtfs",
        f"local,path=/,mount_tag=hostroot,readonly=on,{share}",
        "-virtfs",
        f"local,path={k.modules},mount_tag=modules,readonly=on,{share}",
        "-virtfs",
        f"local,path={out},mount_tag=out,{share}",
    ]


def boot(k: Kernel, accel: str, cpus: int, tests: str, timeout: float) -> dict[str, object]:
    out = OUT / k.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    scale = TCG_SCALE if accel == "tcg" else KVM_SCALE
    # pytest-timeout's per-test limit (pyproject.toml) is scaled like the tests' own waits.
    limit = tomllib.loads((TREE / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    (out / "config.env").write_text(
        f"TREE={TREE}\nTESTS='{tests}'\nPLAN_ARGS='--policy coding-agent'\n"
        f"LANDGATE_TEST_TIMEOUT_SCALE={scale}\nPYTEST_TIMEOUT={int(limit['timeout']) * scale}\n"
    )
    start = time.monotonic()
    with (out / "qemu.log").open("w") as log:
        proc = subprocess.Popen(
            qemu_argv(k, out, accel, cpus), stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            timed_out = True
    wall = time.monotonic() - start
    status = out / "status"
    result: dict[str, object] = {"kernel": k, "wall": wall, "timed_out": timed_out}
    result["status"] = int(status.read_text()) if status.exists() else None
    return result


def read_junit(path: Path) -> ET.Element | None:
    """The junit XML's root, or None when the guest wrote none or a truncated one.

    A guest killed at the timeout can leave the file half-written; the summary must still
    print (and say so) rather than end in a traceback that hides the other kernel's result."""
    try:
        return ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None


def junit_counts(root: ET.Element | None) -> dict[str, int]:
    if root is None:
        return {}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}
    c = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    c["passed"] = c["tests"] - c["failures"] - c["errors"] - c["skipped"]
    return c


def junit_failures(root: ET.Element | None, lines: int = 12) -> list[str]:
    """Each failed or errored test's id and the last lines of its report, for the summary.

    CI keeps only what this script prints; without the names a failure on one kernel could not
    be told from a flake or traced to a test."""
    if root is None:
        return []
    out: list[str] = []
    for case in root.iter("testcase"):
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is None:
                continue
            test = f"{case.get('classname', '?')}::{case.get('name', '?')}"
            out.append(f"  {kind.upper()} {test} ({case.get('time', '?')} s)")
            text = (node.text or node.get("message") or "").rstrip().splitlines()
            out.extend(f"    {line}" for line in text[-lines:])
    return out


def doctor_line(path: Path) -> str:
    import json

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return f"no doctor output ({e})"
    abi = doc.get("host", {}).get("landlock_abi")
    return f"Landlock ABI {abi}"


def main() -> int:
    hidden = tree_hidden_by(TREE)
    if hidden is not None:
        print(
            f"vm-test: the tree {TREE.resolve()} is under {hidden}, which the guest mounts a "
            f"fresh tmpfs on (as a booted Debian does), so the guest cannot see it; "
            f"run make vm-test from a checkout outside {', '.join(GUEST_TMPFS)}",
            file=sys.stderr,
        )
        return 2
    try:
        entries = read_entries(HERE / "kernels")
        wanted = os.environ.get("LANDGATE_VM_KERNELS", "").split()
        if wanted:
            entries = [e for e in entries if e.name in wanted]
        kernels = [prepare(e, HERE / "guest.sh") for e in entries]
    except VmError as e:
        print(f"vm-test: {e}", file=sys.stderr)
        return 2
    accel = accelerator()
    tests = os.environ.get("LANDGATE_VM_TESTS", TESTS)
    timeout = float(os.environ.get("LANDGATE_VM_TIMEOUT", "2100"))
    ncpu = os.cpu_count() or 1
    jobs = max(1, min(len(kernels), ncpu))
    cpus = max(1, ncpu // jobs)
    print(
        f"vm-test: {len(kernels)} kernel(s), {accel}, {jobs} at a time, {cpus} vCPU each",
        flush=True,
    )
    results: list[dict[str, object]] = []
    lock = threading.Lock()
    pending = list(kernels)

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                k = pending.pop(0)
            r = boot(k, accel, cpus, tests, timeout)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = True
    for r in sorted(results, key=lambda r: r["kernel"].name):  # type: ignore[attr-defined]
        k = r["kernel"]
        assert isinstance(k, Kernel)
        out = OUT / k.name
        junit = out / "junit.xml"
        root = read_junit(junit)
        c = junit_counts(root)
        counts = (
            f"{c['passed']} passed, {c['failures']} failed, {c['errors']} errors, "
            f"{c['skipped']} skipped"
            if c
            else ("unreadable junit XML" if junit.exists() else "no junit XML")
        )
        status = r["status"]
        verdict = "PASS" if status == 0 else "FAIL"
        why = " (timed out)" if r["timed_out"] else ("" if status is not None else " (no status)")
        print(
            f"vm-test {k.name} ({k.release}, {doctor_line(out / 'doctor.json')}): {verdict}"
            f"{why}: {counts} in {r['wall']:.0f} s; {k.deb}; results in {out}"
        )
        for line in junit_failures(root):
            print(line)
        if status != 0 and not c:
            console = out / "console.log"
            text = console.read_text(errors="replace") if console.exists() else ""
            tail = text.splitlines()[-20:]
            print("\n".join(f"  console: {line}" for line in tail))
        ok = ok and status == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
