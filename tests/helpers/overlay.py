"""An overlayfs as a container's or vm-tests' root has it, for the tests of a file's identity
under another name (tests/supervise/test_open_check_overlay.py, test_exec_object.py)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def overlay_tree(
    prefix: str, fill: Callable[[Path], None], *, mount: bool = True
) -> Iterator[Path]:
    """A fresh directory in /var/tmp with `fill`(lower) run in it; yields the overlay's merged
    directory: layers on different file systems (lower on this machine's /var/tmp, upper a
    fresh tmpfs), xino off, so overlayfs numbers a copied-up file by its lower origin and a
    hard link made to it by the upper inode.  `mount=False`: the same files on the plain
    file system (yields lower), the twin.  Everything is unmounted and removed on exit.
    Needs root (mount)."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    lower, up, merged = base / "lower", base / "up", base / "merged"
    for d in (lower, up, merged):
        d.mkdir(parents=True)
    mounted: list[Path] = []
    try:
        fill(lower)
        if not mount:
            lower.chmod(0o755)
            base.chmod(0o755)
            yield lower
            return
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(up)], check=True)
        mounted.append(up)
        (up / "u").mkdir()
        (up / "w").mkdir()
        opts = f"lowerdir={lower},upperdir={up}/u,workdir={up}/w,xino=off"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
        mounted.append(merged)
        for d in (base, merged):
            d.chmod(0o755)
        yield merged
    finally:
        for m in reversed(mounted):
            subprocess.run(["umount", str(m)], check=False)
        shutil.rmtree(base, ignore_errors=True)
