"""Detect the project, pick the preset, write a commented ./.landgate.yaml, check it.

Detection reads only the project's own manifest files (package.json,
pyproject.toml / requirements*.txt / setup.py, Cargo.toml, go.mod, Makefile):
each adds its package registry, its test command and its toolchain's cache
directories.  The file starts in `mode: simulate` (nothing is blocked; every
would-be denial is recorded), which is the bridge the next commands walk:
simulate, review (`landgate ui`), enforce.

`extends:` of a bundled preset is issue 15a's; until the loader on this branch
accepts it, the preset's text is written out in full with the project's rules
added (the same policy, just longer).  `_extends_supported()` is the one switch.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.errors import LandgateError, PolicyError, UsageError

AGENTS = ("claude-code", "codex", "aider", "generic")
FILE_NAME = ".landgate.yaml"


@dataclass
class Project:
    kinds: list[str] = field(default_factory=list)  # "node (package.json)", ...
    test_command: str | None = None
    destinations: list[str] = field(default_factory=list)
    read_dirs: list[str] = field(default_factory=list)
    write_dirs: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InitResult:
    path: Path
    text: str
    preset: str
    rung: str
    project: Project
    check: str
    next_commands: tuple[str, ...]


def _add(lst: list[str], *items: str) -> None:
    for i in items:
        if i not in lst:
            lst.append(i)


def _make_has_test(makefile: Path) -> bool:
    try:
        text = makefile.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^test\s*:", text, re.MULTILINE) is not None


def detect_project(root: Path) -> Project:
    p = Project()
    tests: list[str] = []
    if (root / "package.json").is_file():
        _add(p.kinds, "node (package.json)")
        _add(p.destinations, "registry.npmjs.org:443")
        _add(p.write_dirs, "~/.npm/")
        _add(p.commands, "node*", "npm*", "npx*")
        try:
            scripts = json.loads((root / "package.json").read_text(encoding="utf-8"))
            if isinstance(scripts, dict) and "test" in (scripts.get("scripts") or {}):
                tests.append("npm test")
        except (OSError, ValueError):
            pass
    py = [n for n in ("pyproject.toml", "setup.py") if (root / n).is_file()]
    py += sorted(n.name for n in root.glob("requirements*.txt"))
    if py:
        _add(p.kinds, f"python ({', '.join(py)})")
        _add(p.destinations, "pypi.org:443", "files.pythonhosted.org:443")
        _add(p.write_dirs, "~/.cache/pip/")
        _add(p.commands, "python*", "pip*", "pytest*")
        tests.append("python -m pytest")
    if (root / "Cargo.toml").is_file():
        _add(p.kinds, "rust (Cargo.toml)")
        _add(p.destinations, "index.crates.io:443", "static.crates.io:443", "crates.io:443")
        _add(p.write_dirs, "~/.cargo/registry/", "~/.cargo/git/")
        _add(p.read_dirs, "~/.cargo/", "~/.rustup/")
        _add(p.commands, "cargo*", "rustc*")
        tests.append("cargo test")
    if (root / "go.mod").is_file():
        _add(p.kinds, "go (go.mod)")
        _add(p.destinations, "proxy.golang.org:443", "sum.golang.org:443")
        _add(p.write_dirs, "~/go/pkg/mod/", "~/.cache/go-build/")
        _add(p.read_dirs, "~/go/")
        _add(p.commands, "go *")
        tests.append("go test ./...")
    if (root / "Makefile").is_file():
        _add(p.kinds, "make (Makefile)")
        _add(p.commands, "make*")
        if _make_has_test(root / "Makefile"):
            tests.insert(0, "make test")  # the project's own entry point wins
    p.test_command = tests[0] if tests else None
    return p


def preset_for(agent: str) -> str:
    from sandbox.policy.locate import preset_names

    names = set(preset_names())
    wanted = {"generic": "coding-agent"}.get(agent, agent)
    if agent not in AGENTS:
        raise UsageError(f"init: unknown agent {agent!r} (one of {', '.join(AGENTS)})")
    # codex and aider presets are issue 15a's; until they exist the generic one is used.
    return wanted if wanted in names else "coding-agent"


def _extends_supported(preset: str) -> bool:
    """Does the loader on this build accept `extends: [<preset>]`? (issue 15a)"""
    from sandbox.policy import load_policy_text

    try:
        load_policy_text(f"version: 1\nextends: [{preset}]\n", source="<probe>")
    except PolicyError:
        return False
    return True


def _header(project: Project, preset: str, rung: str, agent: str) -> str:
    kinds = ", ".join(project.kinds) or "nothing recognised (no package.json, pyproject.toml,"
    kinds += "" if project.kinds else " Cargo.toml, go.mod or Makefile)"
    return (
        "# landgate policy for this project, written by `landgate init`.\n"
        f"# agent: {agent}; preset: {preset}; host rung: {rung} (`landgate doctor`)\n"
        f"# detected: {kinds}\n"
        "#\n"
        "# mode: simulate blocks nothing and records what enforce would deny.\n"
        "# Review it (`landgate ui`, or `landgate audit suggest`), then set\n"
        '# `mode: enforce` (the dashboard\'s "switch to enforce" does it).\n'
        "# Check any edit with `landgate check --policy .landgate.yaml`.\n"
    )


def _project_rules(project: Project) -> list[tuple[str, str, str]]:
    """(action, rule line, comment) the project needs beyond the preset."""
    out: list[tuple[str, str, str]] = []
    for d in project.destinations:
        out.append(("network", f'{{ destination: "{d}", effect: allow }}', "package registry"))
    for d in project.read_dirs:
        out.append(("file_read", f'{{ path: "{d}", effect: allow }}', "toolchain"))
    for d in project.write_dirs:
        out.append(("file_read", f'{{ path: "{d}", effect: allow }}', "toolchain cache"))
        out.append(("file_write", f'{{ path: "{d}", effect: allow }}', "toolchain cache"))
    for c in project.commands:
        out.append(("shell_exec", f'{{ command: "{c}", effect: allow }}', "project toolchain"))
    return out


def render_policy(project: Project, preset: str, rung: str, agent: str) -> str:
    from sandbox.policy.locate import presets_dir
    from sandbox.setup.policyedit import insert_rule

    head = _header(project, preset, rung, agent)
    rules = _project_rules(project)
    if _extends_supported(preset):
        text = head + f"version: 1\nextends: [{preset}]\nmode: simulate\nworkspace: .\n"
    else:
        body = (presets_dir() / f"{preset}.yaml").read_text(encoding="utf-8")
        # the preset's own comments are kept; only its mode changes (simulate first)
        body = re.sub(r"^mode:.*$", "mode: simulate", body, count=1, flags=re.MULTILINE)
        text = head + f"# --- the {preset} preset, written out, with this project's rules ---\n"
        text += body
    for action, line, _comment in rules:
        text = insert_rule(text, action, line)
    return text


def _write_new(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise UsageError(f"init: {path} exists; not overwriting it (--force replaces it)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".landgate.", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file appeared meanwhile: never clobbers it
            os.unlink(tmp)
    except FileExistsError:
        os.unlink(tmp)
        raise UsageError(f"init: {path} exists; not overwriting it (--force replaces it)") from None
    except OSError as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise LandgateError(f"init: cannot write {path}: {exc.strerror}", exit_code=1) from None


def host_rung() -> str:
    from sandbox.host.doctor import host_report

    return str(host_report().rung)


def init_project(
    root: Path, *, agent: str = "generic", force: bool = False, rung: str | None = None
) -> InitResult:
    """Write root/.landgate.yaml for `agent` and check it (PolicyError if it does not load)."""
    from sandbox.policy import load_policy
    from sandbox.policy.summary import render_check

    project = detect_project(root)
    preset = preset_for(agent)
    here = rung if rung is not None else host_rung()
    text = render_policy(project, preset, here, agent)
    path = root / FILE_NAME
    _write_new(path, text, force)
    check = render_check(load_policy(path, cwd=root))
    test = project.test_command or "<your agent or test command>"
    nxt = (
        f"landgate run -- {test}          # simulate: nothing blocked, all recorded",
        "landgate ui                       # review what enforce would deny, allow or keep",
        f"landgate run -- {test}          # after `mode: enforce`: enforced",
    )
    return InitResult(path, text, preset, here, project, check, nxt)
