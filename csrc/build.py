"""cffi builders for landgate's native modules (API / out-of-line mode).

One extension per concern, each built from its own C files:

    sandbox._probe      probe.c      kernel feature probes for `landgate doctor`
    sandbox._launch     launch.c     landgate's side of the restricted child: the spec's memfd
                        launch_child.c  and the clone that execs the init program (launch.c),
                        launch_wire.c  the sync protocol after it (launch_child.c), the wire
                                     form both ends share (launch_wire.c)
    sandbox/_lginit     lginit.c     the init program (not a module): reads the spec
                        lginit_ns.c  (launch_wire.c), does the namespace steps (lginit_ns.c),
                        lginit_agent.c  forks the agent (lginit_agent.c: capabilities,
                        launch_wire.c  Landlock, seccomp), then reaps and forwards
    sandbox._supervise  supervise*.c, judge_*.c, glob.c  the seccomp user-notification
                        decision loop and the decisions `explain` shares with it;
                        audit_fence.c: a fence in the kernel's audit stream (kaudit)
                        audit_seal.c: the audit writer's seal and append

Each module's public interface is `csrc/<name>_api.h`.  That header is both
included by the C code and fed to cffi's cdef, so it must stay "cdef-clean":
types, prototypes and `#define NAME <integer>` only.  Include guards and
`#include` lines are allowed; they are stripped before cdef.

Build one module in place while developing (no pip round trip):

    .venv/bin/python csrc/build.py launch
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from cffi import FFI

CSRC = Path(__file__).resolve().parent
ROOT = CSRC.parent

# -std=gnu11: C11 plus the GNU/Linux declarations (syscall(), struct ucred ...).
# -Werror is applied by `make check-c` to our own files alone: cffi's generated
# wrapper is not ours to keep warning-free.
COMPILE_ARGS = ["-std=gnu11", "-Wall", "-Wextra", "-O2", "-fno-strict-aliasing",
                "-D_GNU_SOURCE", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"]

MODULES: dict[str, list[str]] = {
    "probe": ["probe.c"],
    "launch": ["launch.c", "launch_child.c", "launch_wire.c"],
    "supervise": [
        # the loop and what every handler uses
        "supervise.c", "supervise_denial.c", "supervise_bench.c", "supervise_ring.c",
        "supervise_pool.c", "supervise_mem.c", "supervise_creds.c", "supervise_walk.c",
        # the decisions over the compiled tables (shared with `explain`)
        "glob.c", "judge_exec.c", "judge_shell.c", "judge_path.c",
        # the exec check (supervise_exec.h: its parts)
        "supervise_exec.c", "supervise_exec_read.c", "supervise_exec_admit.c",
        "supervise_exec_verify.c", "supervise_exec_obj.c", "supervise_exec_head.c",
        "supervise_exec_names.c", "supervise_exec_stable.c", "supervise_exec_racy.c",
        "supervise_caller.c", "supervise_caller_kept.c", "supervise_root.c",
        # the open check and file operations
        "supervise_open.c", "supervise_open_object.c", "supervise_opener.c",
        "supervise_open_init.c", "supervise_open_ownproc.c", "supervise_open_path.c",
        "supervise_open_tree.c", "supervise_open_bench.c", "supervise_identity.c",
        "supervise_fsop.c", "supervise_fsop_name.c", "supervise_fsop_judge.c",
        "supervise_fsop_do.c", "gitcfg.c", "gitcfg_parse.c",
        # the network check
        "supervise_net.c", "supervise_net_dest.c", "supervise_net_addr.c",
        "supervise_net_unix.c", "supervise_net_act.c", "supervise_net_mmsg.c",
        # the audit fence and the event renderers
        "audit_fence.c", "render_event.c", "render_digest.c", "render_double.c",
    ],
}

# Parts of a module with an interface header of their own, which joins the module's cdef
# after its <name>_api.h (cdef-clean like it):
#   audit_seal.c  the audit writer's seal and append (sandbox/audit/native.py)
MODULES["supervise"].append("audit_seal.c")
EXTRA_HEADERS: dict[str, list[str]] = {"supervise": ["audit_seal_api.h"]}

_SKIP = re.compile(r"^\s*#\s*(ifndef|ifdef|if|endif|else|elif|include|pragma)\b|^\s*#\s*define\s+\w+\s*$")


def cdef_text(header: Path) -> str:
    """The header's declarations, minus the preprocessor lines cdef cannot read."""
    lines = [ln for ln in header.read_text().splitlines() if not _SKIP.match(ln)]
    return "\n".join(lines)


def make_ffi(name: str, *, absolute: bool = False) -> FFI:
    """setuptools wants source paths relative to setup.py; ffi.compile() runs
    the compiler from its temporary directory and so needs absolute ones."""
    ffi = FFI()
    headers = [f"{name}_api.h", *EXTRA_HEADERS.get(name, [])]
    for header in headers:
        ffi.cdef(cdef_text(CSRC / header))
    # setuptools wants paths relative to the project root (where setup.py is).
    base = str(CSRC) if absolute else "csrc"
    sources = [f"{base}/{src}" for src in MODULES[name]]
    ffi.set_source(
        f"sandbox._{name}",
        "".join(f'#include "{header}"\n' for header in headers),
        sources=sources,
        include_dirs=[base],
        extra_compile_args=COMPILE_ARGS,
    )
    return ffi


probe_ffi = make_ffi("probe")
launch_ffi = make_ffi("launch")
supervise_ffi = make_ffi("supervise")


def build_inplace(name: str) -> str:
    """Compile one module next to the package sources (for development)."""
    ffi = make_ffi(name, absolute=True)
    tmp = ROOT / "build" / f"cffi-{name}"
    tmp.mkdir(parents=True, exist_ok=True)
    so = ffi.compile(tmpdir=str(tmp), verbose=False)
    target = ROOT / "sandbox" / Path(so).name
    # Remove every other build of this module (e.g. pip's .abi3.so), so the
    # interpreter cannot pick a stale one over the one just built.
    for old in (ROOT / "sandbox").glob(f"_{name}.*so"):
        if old.name != target.name:
            old.unlink()
    os.replace(so, target)
    return str(target)


def build_init_helper(target: Path, tmp: Path) -> str:
    """Compile and link the init program (csrc/lginit.c, lginit_ns.c and lginit_agent.c, with
    the spec decoder in csrc/launch_wire.c) to `target` (sandbox/_lginit), atomically: a
    session starting meanwhile execs the old program or the new one, never half of one."""
    import shlex
    import subprocess
    import sysconfig

    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / f"_lginit.{os.getpid()}"
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    cmd = [*cc, *COMPILE_ARGS, f"-I{CSRC}", str(CSRC / "lginit.c"), str(CSRC / "lginit_ns.c"),
           str(CSRC / "lginit_agent.c"), str(CSRC / "launch_wire.c"), "-o", str(out)]
    # Linked statically (and position-independent: ASLR stays): every session execs this
    # program, and a dynamic one pays the loader on the sandbox's set-up path (ld.so.cache,
    # mapping and relocating libc), measured ~0.13 ms per exec of a static-pie versus a
    # dynamic `int main(){}` here.  A toolchain without libc.a links it dynamically as before.
    proc = subprocess.run([*cmd, "-static-pie"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"building the init helper: {' '.join(cmd)}\n{proc.stderr}")
    os.chmod(out, 0o755)
    os.replace(out, target)
    return str(target)


if __name__ == "__main__":
    names = sys.argv[1:] or list(MODULES)
    for n in names:
        if n not in MODULES:
            sys.exit(f"unknown module {n!r}; known: {', '.join(MODULES)}")
        print(build_inplace(n))
        if n == "launch":
            print(build_init_helper(ROOT / "sandbox" / "_lginit", ROOT / "build" / "lginit"))
