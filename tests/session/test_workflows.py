"""Real developer work under the bundled presets runs with zero false denials (issue 15).

Each workflow runs for real (`landgate run`, real kernel, offline) under a bundled
preset and must pass with no denial line on stderr and no denial in the audit trail
other than the secret the same session also tries to read, which stays unreadable.
The `$PATH` and exec-rights tests also run their twin with the grant removed and
show the program then cannot run (the protection is what makes the difference).
"""

from __future__ import annotations

import errno
import json
import os
import pty
import select
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from conftest import require_root, scaled  # tests/conftest.py

from tests.launch.lg_helpers import landgate

pytestmark = pytest.mark.usefixtures("_root")


@pytest.fixture
def _root() -> None:
    require_root()


def _trail(audit: Path) -> list[dict]:
    entries: list[dict] = []
    for f in sorted(audit.glob("trail-*.jsonl")):
        for line in f.read_text().splitlines():
            if line.strip():
                entries.append(json.loads(line))
    return entries


def _run(world, preset: str, script: str, audit: Path, env: dict | None = None):
    return landgate(
        world,
        ["bash", "-c", script],
        policy=None,
        extra_args=["--audit", str(audit)],
        env=env,
        timeout=180,
        preset=preset,
    )


def _assert_clean(world, p: subprocess.CompletedProcess, audit: Path) -> None:
    """The workflow passed, the only denials are of the secret, and it did not leak."""
    out = p.stdout + p.stderr
    assert p.returncode == 0, out.decode(errors="replace")[-3000:]
    assert world.secret not in out
    lines = [
        ln for ln in p.stderr.decode(errors="replace").splitlines() if "landgate: denied" in ln
    ]
    # The secrets the presets deny: the workspace's .env, and ~/.npmrc (a registry token),
    # which npm reads on its own; with the open check it gets EACCES and goes on.
    assert all(".env" in ln or "/.npmrc" in ln for ln in lines), lines
    denied = [
        e
        for e in _trail(audit)
        if e.get("type") == "decision" and e.get("result") == "deny" and not _probe(e)
    ]
    assert all(
        ".env" in str(e.get("target")) or "/.npmrc" in str(e.get("target")) for e in denied
    ), denied


def _probe(e: dict) -> bool:
    """A recorded Landlock refusal (default deny) of what a runtime probes on its own: a
    directory outside the grants or a kernel pseudo-file (no stderr line for these)."""
    target = str(e.get("target"))
    return str(e.get("rule", "")).startswith("default deny") and (
        target.startswith(("/proc/", "/sys/")) or os.path.isdir(target)
    )


SECRET_READ = "cat .env 2>/dev/null | grep -c LANDGATE-SECRET || true"


# ---------------------------------------------------------------------------- git


@pytest.mark.parametrize("preset", ["coding-agent", "ci", "claude-code", "coding-agent-strict"])
def test_git_workflow(world, tmp_path: Path, preset: str) -> None:
    (world.home / ".gitconfig").write_text(
        "[user]\n\tname = Work Flow\n\temail = wf@example.invalid\n[init]\n\tdefaultBranch = main\n"
    )
    (world.home / ".gitconfig").chmod(0o644)
    bare = world.root / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    script = f"""set -e
git init -q .
printf '.env\\n' > .gitignore
git add -A
git status --short | grep -q '.env$' && exit 9
git commit -qm first
git branch feature
git checkout -q feature
echo more >> README.md
git stash -q
git stash pop -q
git commit -qam second
git log --oneline | wc -l
git clone -q {bare} {world.root}/clone
{SECRET_READ}
"""
    audit = tmp_path / "audit"
    p = _run(world, preset, script, audit)
    _assert_clean(world, p, audit)
    assert p.stdout.split()[:1] == [b"2"]
    assert (world.root / "clone" / ".git").is_dir()


# ---------------------------------------------------------------------------- make + cc


@pytest.mark.parametrize("preset", ["coding-agent", "ci", "claude-code"])
def test_make_cc_and_run_the_binary(world, tmp_path: Path, preset: str) -> None:
    (world.workspace / "hello.c").write_text(
        '#include <stdio.h>\nint main(void) { puts("hello from cc"); return 0; }\n'
    )
    (world.workspace / "Makefile").write_text("hello: hello.c\n\tcc -o hello hello.c\n")
    (world.workspace / "scripts").mkdir()
    (world.workspace / "scripts" / "check.sh").write_text("#!/bin/sh\necho script-ran\n")
    (world.workspace / "scripts" / "check.sh").chmod(0o755)
    audit = tmp_path / "audit"
    script = f"make -s && ./hello && ./scripts/check.sh && od -c hello.c | head -1 && {SECRET_READ}"
    p = _run(world, preset, script, audit)
    _assert_clean(world, p, audit)
    assert b"hello from cc" in p.stdout and b"script-ran" in p.stdout


def test_strict_preset_refuses_what_it_does_not_list(world, tmp_path: Path) -> None:
    """The allowlist twin: coding-agent-strict refuses a built program it does not name."""
    (world.workspace / "hello.c").write_text("int main(void) { return 0; }\n")
    audit = tmp_path / "audit"
    p = _run(world, "coding-agent-strict", "cc -o hello hello.c && ./hello", audit)
    assert p.returncode != 0
    assert b'landgate: denied shell_exec "hello"' in p.stderr


# ---------------------------------------------------------------------------- venv + pip


def _wheel(dest: Path) -> Path:
    """A minimal pure-Python wheel (built here, installed offline in the sandbox)."""
    name = "lgdemo-0.1-py3-none-any.whl"
    files = {
        "lgdemo/__init__.py": "ANSWER = 42\n",
        "lgdemo-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: lgdemo\nVersion: 0.1\n",
        "lgdemo-0.1.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{k},,\n" for k in files) + "lgdemo-0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(dest / name, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
        z.writestr("lgdemo-0.1.dist-info/RECORD", record)
    return dest / name


@pytest.mark.parametrize("preset", ["coding-agent", "ci"])
def test_venv_and_pip_install_of_a_local_wheel(world, tmp_path: Path, preset: str) -> None:
    wheel = _wheel(world.workspace)
    audit = tmp_path / "audit"
    # (the test harness's PYTHONPATH points into landgate's tree; a user's shell has none)
    script = f"""set -e
unset PYTHONPATH
python3 -m venv .venv
.venv/bin/pip install -q --no-index --disable-pip-version-check {wheel.name}
.venv/bin/python -c 'import lgdemo; print("answer", lgdemo.ANSWER)'
{SECRET_READ}
"""
    p = _run(world, preset, script, audit)
    _assert_clean(world, p, audit)
    assert b"answer 42" in p.stdout


# ---------------------------------------------------------------------------- npm


@pytest.mark.parametrize("preset", ["coding-agent", "ci"])
def test_npm_install_of_a_local_tarball_and_npm_test(world, tmp_path: Path, preset: str) -> None:
    dep = world.root / "dep"
    dep.mkdir()
    (dep / "package.json").write_text('{"name": "lg-dep", "version": "1.0.0", "main": "i.js"}\n')
    (dep / "i.js").write_text("module.exports = 42;\n")
    env = dict(world.env, npm_config_cache=str(world.home / ".npm"))
    subprocess.run(
        ["npm", "pack", "-q", "--pack-destination", str(world.workspace)],
        cwd=dep,
        env=env,
        check=True,
        capture_output=True,
    )
    (world.workspace / "package.json").write_text(
        '{"name": "demo", "version": "1.0.0", '
        '"scripts": {"test": "node -e \\"console.log(\'dep\', require(\'lg-dep\'))\\""}}\n'
    )
    audit = tmp_path / "audit"
    script = f"""set -e
npm install --offline --no-audit --no-fund -q ./lg-dep-1.0.0.tgz
npm test
{SECRET_READ}
"""
    p = _run(world, preset, script, audit)
    _assert_clean(world, p, audit)
    assert b"dep 42" in p.stdout


# ---------------------------------------------------------------------------- toolchain shims


def _shim_layout(world) -> Path:
    """A pyenv-like layout in the fake home: ~/.pyenv/shims/python3 is a script that
    execs ~/.pyenv/versions/3.99/bin/python3 (a copy of the system interpreter)."""
    root = world.home / ".pyenv"
    real = root / "versions" / "3.99" / "bin"
    real.mkdir(parents=True)
    shutil.copy2(os.path.realpath("/usr/bin/python3"), real / "python3")
    shims = root / "shims"
    shims.mkdir()
    (shims / "python3").write_text(f'#!/bin/sh\nexec "{real}/python3" "$@"\n')
    for d, _dirs, files in os.walk(root):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o755)
    return shims


def test_shim_first_on_path_runs_the_interpreter_it_execs(world, tmp_path: Path) -> None:
    shims = _shim_layout(world)
    env = {"PATH": f"{shims}:{world.env['PATH']}"}
    audit = tmp_path / "audit"
    p = landgate(
        world,
        ["python3", "-c", "import sys; print('ran', sys.executable)"],
        policy=None,
        preset="coding-agent",
        env=env,
        extra_args=["--audit", str(audit)],
    )
    _assert_clean(world, p, audit)
    assert f"ran {world.home}/.pyenv/versions/3.99/bin/python3".encode() in p.stdout


def _path_policy(world, with_path: bool) -> Path:
    grant = '      - { path: "$PATH", effect: allow, exec: true }\n' if with_path else ""
    return world.write_policy(
        f"""version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "./", effect: allow }}
{grant}  - action: shell_exec
    defaultEffect: allow
""",
        name=f"path-{with_path}.yaml",
    )


@pytest.mark.parametrize("with_path", [True, False])
def test_path_rule_is_what_lets_the_shim_run(world, with_path: bool) -> None:
    """`$PATH` with exec: true grants the shim's manager root (shims/ -> ~/.pyenv/);
    without it the same shim cannot be executed (126): the grant makes the difference."""
    shims = _shim_layout(world)
    p = landgate(
        world,
        ["python3", "-c", "print('shim-ok')"],
        policy=_path_policy(world, with_path),
        env={"PATH": f"{shims}:{world.env['PATH']}"},
    )
    if with_path:
        assert p.returncode == 0 and b"shim-ok" in p.stdout, p.stderr
    else:
        assert p.returncode == 126 and b"shim-ok" not in p.stdout, p.stderr


@pytest.mark.parametrize("exec_flag", [True, False])
def test_exec_true_grants_execution_beneath_a_path(world, exec_flag: bool) -> None:
    """A program in a granted tree outside the system trees and the workspace runs only
    when the read rule says exec: true (Landlock EXECUTE)."""
    tool = world.root / "opt-tool"
    tool.mkdir()
    shutil.copy2("/usr/bin/true", tool / "mytool")
    os.chmod(tool, 0o755)
    flag = ", exec: true" if exec_flag else ""
    pol = world.write_policy(
        f"""version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "{tool}/", effect: allow{flag} }}
  - action: shell_exec
    defaultEffect: allow
""",
        name="exec.yaml",
    )
    p = landgate(world, [str(tool / "mytool")], policy=pol)
    assert p.returncode == (0 if exec_flag else 126), p.stderr


# ---------------------------------------------------------------------------- interactive bash


def test_interactive_bash_under_a_pty_reads_bashrc(world, tmp_path: Path) -> None:
    (world.home / ".bashrc").write_text("export FROM_BASHRC=yes-read\n")
    audit = tmp_path / "audit"
    import sys

    from tests.launch.lg_helpers import ROOT

    env = dict(world.env)
    env.update(
        PYTHONPATH=str(ROOT),
        XDG_STATE_HOME=str(world.root / "xdg" / "state"),
        XDG_CONFIG_HOME=str(world.root / "xdg" / "config"),
        TERM="dumb",
    )
    cmd = [sys.executable, "-m", "sandbox", "run", "--policy", "coding-agent", "--audit"]
    cmd += [str(audit), "--", "bash", "-i"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec landgate on the pty
        os.chdir(world.workspace)
        os.execve(cmd[0], cmd, env)
    out = bytearray()
    os.write(fd, b"echo marker-$FROM_BASHRC-$((40+2)); cat .env; exit 0\n")
    deadline = time.monotonic() + scaled(60)
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError as exc:
            if exc.errno == errno.EIO:
                break
            raise
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.decode(errors="replace")
    assert "marker-yes-read-42" in text, text
    assert "Permission denied" not in text.replace(".env: Permission denied", ""), text
    assert world.secret not in out
    assert os.waitstatus_to_exitcode(status) == 0, text
    denied = [e for e in _trail(audit) if e.get("type") == "decision" and e.get("result") == "deny"]
    assert all(".env" in str(e.get("target")) for e in denied), denied


# ---------------------------------------------------------------------------- quiet noise


NSCD_PROBE = """
import errno, socket
for path in ("/var/run/nscd/socket", "/run/nscd/socket", {other!r}):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        print(path, "connected")
    except OSError as e:
        print(path, errno.errorcode[e.errno])
"""


def test_nscd_probe_is_answered_quietly_and_other_sockets_are_not(world, tmp_path: Path) -> None:
    """glibc's nscd probe gets the answer of a host without nscd (ENOENT here: no socket
    file), with no denial line and no trail entry; the twin, another unix socket the
    policy does not name, is still refused, reported and recorded."""
    for p in ("/var/run/nscd/socket", "/run/nscd/socket"):
        if os.path.exists(p):
            pytest.skip(f"{p} exists on this host (nscd runs): ENOENT would not be its answer")
    other = str(world.root / "other.sock")
    audit = tmp_path / "audit"
    code = NSCD_PROBE.format(other=other)
    p = landgate(
        world,
        ["python3", "-c", code],
        policy=None,
        preset="coding-agent",
        extra_args=["--audit", str(audit)],
    )
    assert p.returncode == 0, p.stderr
    assert b"/var/run/nscd/socket ENOENT" in p.stdout
    assert b"/run/nscd/socket ENOENT" in p.stdout
    assert f"{other} ECONNREFUSED".encode() in p.stdout
    assert b"nscd" not in p.stderr
    assert f'landgate: denied network "unix:{other}"'.encode() in p.stderr
    targets = [str(e.get("target")) for e in _trail(audit) if e.get("action") == "network"]
    assert not [t for t in targets if "nscd" in t], targets
    assert f"unix:{other}" in targets
