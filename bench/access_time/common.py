"""Shared helpers of the access-time prototypes: build the C programs, run a command."""

import os
import statistics
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(tempfile.gettempdir(), f"landgate-access-time-{os.getuid()}")


def build(name: str) -> str:
    """Compile bench/access_time/NAME.c once (rebuilt when the source is newer)."""
    src = os.path.join(HERE, name + ".c")
    out = os.path.join(BUILD, name)
    os.makedirs(BUILD, exist_ok=True)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, src, "-lpthread"],
            check=True,
        )
    return out


def median(xs):
    return statistics.median(xs) if xs else None


def make_tree(root: str, n_files: int, size: int = 2048, per_dir: int = 100) -> None:
    """n_files regular files of `size` bytes, per_dir to a directory (find+cat workload)."""
    blob = b"x" * size
    for i in range(n_files):
        d = os.path.join(root, f"d{i // per_dir:04d}")
        if i % per_dir == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05d}.txt"), "wb") as f:
            f.write(blob)
