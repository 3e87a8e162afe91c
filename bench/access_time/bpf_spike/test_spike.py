"""Run the BPF LSM open-gate spike (spike.c) on the running kernel and print what it says.

Not part of the test suite (bench/ is not collected by `make test`): run it by hand, or in a
VM with `LANDGATE_VM_TESTS="-s bench/access_time/bpf_spike/test_spike.py" vm-tests/run.py`.
"""

import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def build(tmp: Path) -> tuple[Path, Path]:
    obj = tmp / "opengate.bpf.o"
    multiarch = subprocess.run(
        ["gcc", "-print-multiarch"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(
        [
            "clang",
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-D__TARGET_ARCH_x86",
            f"-idirafter/usr/include/{multiarch}",
            f"-I{HERE}",
            "-c",
            str(HERE / "opengate.bpf.c"),
            "-o",
            str(obj),
        ],
        check=True,
    )
    exe = tmp / "spike"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-Wall",
            f"-I{HERE}",
            str(HERE / "spike.c"),
            "-o",
            str(exe),
            "-lbpf",
        ],
        check=True,
    )
    return obj, exe


def prog_types(tmp: Path) -> str:
    """Which BPF program types the running kernel lets root load (prog_types.c)."""
    multiarch = subprocess.run(
        ["gcc", "-print-multiarch"], capture_output=True, text=True, check=True
    ).stdout.strip()
    obj, exe = tmp / "prog_types.bpf.o", tmp / "prog_types"
    subprocess.run(
        [
            "clang",
            "-O2",
            "-g",
            "-target",
            "bpf",
            f"-idirafter/usr/include/{multiarch}",
            "-c",
            str(HERE / "prog_types.bpf.c"),
            "-o",
            str(obj),
        ],
        check=True,
    )
    subprocess.run(
        ["gcc", "-O2", "-Wall", str(HERE / "prog_types.c"), "-o", str(exe), "-lbpf"], check=True
    )
    return subprocess.run([str(exe), str(obj)], capture_output=True, text=True).stdout


def test_spike(tmp_path: Path) -> None:
    print(prog_types(tmp_path))
    obj, exe = build(tmp_path)
    work = tmp_path / "w"
    work.mkdir()
    proc = subprocess.run([str(exe), str(obj), str(work)], capture_output=True, text=True)
    sec = "/sys/kernel/security"
    script = (
        f"{{ [ -e {sec}/lsm ] || mount -t securityfs none {sec}; }}"
        f" && cat {sec}/lsm && echo && cat {sec}/lockdown"
    )
    shown = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    lsm = shown.stdout.strip().replace("\n", "; ")
    print(f"kernel {os.uname().release} (lsm: {lsm}): exit {proc.returncode}")
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
