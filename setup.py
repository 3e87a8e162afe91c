"""Build hook: the C core in csrc/ is compiled by cffi (API, out-of-line mode).

Each native module is its own extension (sandbox._probe, sandbox._launch,
sandbox._supervise) so that one primitive's build never depends on another's.
"""
from setuptools import setup

setup(
    cffi_modules=[
        "csrc/build.py:probe_ffi",
        "csrc/build.py:launch_ffi",
        "csrc/build.py:supervise_ffi",
    ],
)
