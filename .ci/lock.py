"""Write requirements.lock: every Python package landgate installs, pinned (`make lock`).

Resolves the runtime dependencies and the test, dev and bench extras, plus the build
tools `make install` puts in the venv (pip, setuptools, wheel, cffi), against PyPI alone
(local pip configuration ignored) with pip's resolver, without installing anything.
The pins are for the interpreter this runs with (Debian 12's CPython 3.11, x86-64):
`make install` and `make bench` install with `pip install -c requirements.lock`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ".[test,dev,bench]"
TOOLS = ["pip", "setuptools", "wheel", "cffi"]


def main() -> int:
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="", PIP_NO_INDEX="")
    env.pop("PIP_EXTRA_INDEX_URL", None)
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_CONSTRAINT", None)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp, "report.json")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed",
             "--index-url", "https://pypi.org/simple", "--report", str(report), EXTRAS, *TOOLS],
            cwd=ROOT, env=env, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            print(f"lock: pip could not resolve {EXTRAS} (exit {proc.returncode})", file=sys.stderr)
            return 1
        items = json.loads(report.read_text())["install"]
    pins = sorted(
        (i["metadata"]["name"], i["metadata"]["version"])
        for i in items
        if i["metadata"]["name"].lower() != "landgate"
    )
    py = f"CPython {platform.python_version()} {platform.machine()}"
    lines = [
        "# Every Python package landgate installs, pinned: runtime, test, dev, bench, build tools.",
        f"# Resolved from PyPI for {py} (Debian 12).  Used as `pip install -c` by",
        "# `make install` (and so CI) and `make bench`.  Refresh: `make lock`, then commit.",
        *(f"{name}=={version}" for name, version in sorted(pins, key=lambda p: p[0].lower())),
    ]
    (ROOT / "requirements.lock").write_text("\n".join(lines) + "\n")
    print(f"requirements.lock: {len(pins)} packages pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
