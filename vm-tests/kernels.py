"""Fetch, unpack and prepare the Debian kernels vm-tests/kernels lists (used by run.py).

Each entry gets a private apt state under vm-tests/.cache/apt/NAME/ (its own sources list,
lists directory, status file and archive cache), so the host's apt configuration, lists and
preferences are never read or changed.  The entry's package (usually the meta package
linux-image-amd64) is resolved to the concrete image package it depends on, that .deb is
fetched with `apt-get download`, unpacked (not installed) with `dpkg-deb -x`, and its modules
indexed with `depmod -b`.  A small initramfs (busybox, init.sh, the 9p/virtio/overlay modules
in load order) is built per kernel.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
# What init.sh needs before the root filesystem is up; their dependencies come from modules.dep.
INITRAMFS_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")


class VmError(Exception):
    """A step of preparing or running a VM failed; the message names it."""


@dataclass(frozen=True)
class Entry:
    name: str
    package: str
    suites: tuple[str, ...]


@dataclass(frozen=True)
class Kernel:
    name: str
    deb: str  # the image package's file name
    release: str  # `uname -r` of the kernel
    root: Path  # the unpacked package
    vmlinuz: Path
    initramfs: Path

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.release


def read_entries(path: Path) -> list[Entry]:
    entries = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) < 3:
            raise VmError(f"{path}:{lineno}:1: expected NAME PACKAGE SUITE..., got {line!r}")
        entries.append(Entry(words[0], words[1], tuple(words[2:])))
    if not entries:
        raise VmError(f"{path}: no kernels listed")
    return entries


def _run(argv: list[str], what: str, **kw: object) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise VmError(f"{what}: {argv[0]} exited {proc.returncode}: {last[0]}")
    return str(proc.stdout)


def _apt_options(entry: Entry) -> list[str]:
    """A private apt state for this entry: nothing of the host's /etc/apt or /var/lib/apt."""
    state = CACHE / "apt" / entry.name
    for sub in ("lists/partial", "archives/partial", "etc/sources.list.d", "etc/preferences.d"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    lines = []
    for suite in entry.suites:
        url = SECURITY if suite.endswith("-security") else MIRROR
        lines.append(f"deb {url} {suite} main\n")
    (state / "etc" / "sources.list").write_text("".join(lines))
    (state / "status").touch()
    return [
        f"-oDir::Etc::SourceList={state}/etc/sources.list",
        f"-oDir::Etc::SourceParts={state}/etc/sources.list.d",
        f"-oDir::Etc::PreferencesParts={state}/etc/preferences.d",
        f"-oDir::Etc::Preferences={state}/etc/preferences",
        f"-oDir::State::Lists={state}/lists",
        f"-oDir::State::status={state}/status",
        f"-oDir::Cache={state}/cache",
        f"-oDir::Cache::Archives={state}/archives",
        "-oDebug::NoLocking=1",
        "-oAPT::Sandbox::User=root",
    ]


def resolve(entry: Entry) -> str:
    """The concrete linux-image-* package `entry.package` names in the entry's suites."""
    opts = _apt_options(entry)
    _run(["apt-get", *opts, "-qq", "update"], f"apt-get update for {entry.name}")
    out = _run(["apt-cache", *opts, "depends", entry.package], f"resolving {entry.package}")
    images = re.findall(r"Depends: (linux-image-[0-9]\S*)", out)
    if images:
        return images[0]
    if re.match(r"linux-image-[0-9]", entry.package):
        return entry.package
    raise VmError(f"{entry.name}: {entry.package} depends on no linux-image-<version> package")


def fetch(entry: Entry) -> Path:
    """Download (or reuse) the image package's .deb; returns its path."""
    image = resolve(entry)
    opts = _apt_options(entry)
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    out = _run(["apt-cache", *opts, "show", "--no-all-versions", image], f"apt-cache show {image}")
    fname = re.search(r"^Filename: .*/([^/\n]+\.deb)$", out, re.MULTILINE)
    if fname is None:
        raise VmError(f"apt-cache show {image}: no Filename field")
    deb = debs / fname.group(1)
    if not deb.exists():
        _run(["apt-get", *opts, "-qq", "download", image], f"apt-get download {image}", cwd=debs)
    if not deb.exists():
        raise VmError(f"apt-get download {image}: {deb.name} did not appear in {debs}")
    return deb


def _load_order(moddir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The module files init.sh must insmod, dependencies first; built-ins are skipped."""
    deps: dict[str, list[str]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {
        re.sub(r"\.ko(\.xz|\.zst|\.gz)?$", "", Path(m).name).replace("-", "_"): m for m in deps
    }
    builtin = (moddir / "modules.builtin").read_text()
    order: list[str] = []

    def visit(mod: str) -> None:
        if mod in order:
            return
        for dep in deps[mod]:
            visit(dep)
        order.append(mod)

    for name in wanted:
        if name in by_name:
            visit(by_name[name])
        elif f"/{name}.ko\n" not in builtin.replace("-", "_"):
            raise VmError(f"{moddir.name}: module {name} is neither a module nor built in")
    return [moddir / m for m in order]


def _cpio(src: Path, dest: Path) -> None:
    files = sorted(str(p.relative_to(src)) for p in src.rglob("*"))
    with dest.open("wb") as out:
        proc = subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
            input="\n".join([".", *files]) + "\n",
            text=True,
            cwd=src,
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    if proc.returncode != 0:
        raise VmError(f"cpio of {src}: {proc.stderr.strip()}")


def prepare(entry: Entry, guest: Path) -> Kernel:
    """Fetch, unpack, index and wrap one kernel; idempotent per package version."""
    deb = fetch(entry)
    root = CACHE / "kernels" / deb.stem
    done = root / ".prepared"
    if not done.exists():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(deb), str(root)], f"unpacking {deb.name}")
    releases = sorted(p.name for p in (root / "lib" / "modules").iterdir())
    if len(releases) != 1:
        raise VmError(f"{deb.name}: expected one lib/modules/<release>, found {releases}")
    release = releases[0]
    vmlinuz = root / "boot" / f"vmlinuz-{release}"
    if not done.exists():
        _run(["depmod", "-b", str(root), release], f"depmod for {release}")
        done.touch()
    initramfs = root / "initramfs.cpio"
    kernel = Kernel(entry.name, deb.name, release, root, vmlinuz, initramfs)
    _build_initramfs(kernel, guest)
    return kernel


def _build_initramfs(k: Kernel, guest: Path) -> None:
    stage = k.root / "initramfs"
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "bin").mkdir(parents=True)
    (stage / "modules").mkdir()
    busybox = shutil.which("busybox")
    if busybox is None:
        raise VmError("busybox not found (Debian package busybox-static)")
    shutil.copy2(busybox, stage / "bin" / "busybox")
    shutil.copy2(HERE / "init.sh", stage / "init")
    os.chmod(stage / "init", 0o755)
    names = []
    for mod in _load_order(k.modules, INITRAMFS_MODULES):
        # busybox insmod reads plain .ko files: decompress here
        name = re.sub(r"\.(xz|zst|gz)$", "", mod.name)
        data = mod.read_bytes()
        if mod.name.endswith(".xz"):
            data = lzma.decompress(data)
        elif mod.name.endswith((".zst", ".gz")):
            raise VmError(f"{mod.name}: only plain and .xz modules are handled")
        (stage / "modules" / name).write_bytes(data)
        names.append(name)
    (stage / "modules" / "order").write_text("\n".join(names) + "\n")
    (stage / "kver").write_text(k.release + "\n")
    (stage / "guest").write_text(str(guest) + "\n")
    _cpio(stage, k.initramfs)
