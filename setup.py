"""Build hook: the C core in csrc/ is compiled by cffi (API, out-of-line mode).

Each native module is its own extension (sandbox._probe, sandbox._launch,
sandbox._supervise) so that one primitive's build never depends on another's.
The init program (csrc/lginit.c, lginit_ns.c, lginit_agent.c, launch_wire.c) is a small
program, not a module: landgate's clone execs it before any setup (csrc/launch_api.h), and it
is linked next to the extensions as sandbox/_lginit (csrc/build.py: build_init_helper).
"""
import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

# csrc/build.py by its path (a module named `build` may already be importable: pypa/build).
_spec = importlib.util.spec_from_file_location(
    "landgate_csrc_build", Path(__file__).resolve().parent / "csrc" / "build.py"
)
assert _spec is not None and _spec.loader is not None
_csrc_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_csrc_build)


class BuildExtAndHelper(build_ext):
    def run(self) -> None:
        super().run()
        # Next to sandbox._launch, wherever this build puts it (in place for `pip -e`).
        target = Path(self.get_ext_fullpath("sandbox._launch")).parent / "_lginit"
        _csrc_build.build_init_helper(target, Path(self.build_temp))


setup(
    cffi_modules=[
        "csrc/build.py:probe_ffi",
        "csrc/build.py:launch_ffi",
        "csrc/build.py:supervise_ffi",
    ],
    cmdclass={"build_ext": BuildExtAndHelper},
)
