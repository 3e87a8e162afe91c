"""The command line imports what the chosen subcommand needs, nothing more (issue 19).

Behaviour, not timing: each case runs `sandbox.cli.main` in a fresh interpreter and
lists the modules it ended up with.  `landgate --help` needs no policy code at all;
`landgate hook` never needs the launcher, the planner or the network layer, and, when
its policy is in the persistent cache, not PyYAML or the policy parser either;
`landgate run` never needs the dashboard, the report, the integrations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import user_env

# Prints the modules loaded after main(argv) as JSON on the last line of stdout.
PROBE = r"""
import json, sys
from sandbox.cli import main
try:
    rc = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    rc = exc.code
sys.stdout.write("\n" + json.dumps({"rc": rc, "modules": sorted(sys.modules)}) + "\n")
"""

UI_AND_INTEGRATIONS = (
    "sandbox.ui",
    "sandbox.audit.report",
    "sandbox.audit.suggest",
    "sandbox.integrations.mcp_server",
    "sandbox.integrations.langchain",
    "mcp",
    "langchain_core",
)
LAUNCH = ("sandbox.session", "sandbox.launch", "sandbox.plan", "sandbox.net", "sandbox.supervise")
PARSER = ("yaml", "sandbox.policy.loader", "sandbox.policy.parse", "sandbox.policy.yamlread")


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    xdg = ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
    return user_env(**{k: str(tmp_path / k.lower()) for k in xdg})


def _modules(
    argv: list[str], env: dict[str, str], stdin: bytes = b"", cwd: str = "/", probe: str = PROBE
) -> dict:
    """Run `probe` (PROBE: the modules loaded) on main(argv); its JSON last line, with the
    lines printed before it as "stdout"."""
    out = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(argv)],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    *printed, last = out.stdout.decode().strip().splitlines()
    result: dict = json.loads(last)
    result["stdout"] = "\n".join(printed).strip()
    return result


def _loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_help_imports_no_policy_code(home: dict[str, str]) -> None:
    got = _modules(["--help"], home)
    assert got["rc"] == 0 and "usage: landgate" in got["stdout"]
    assert _loaded(got["modules"], ("sandbox.policy", "sandbox.audit", *LAUNCH, *PARSER)) == []
    assert _loaded(got["modules"], UI_AND_INTEGRATIONS) == []
    # the twin: `check` does load the policy code
    got = _modules(["check", "--policy", "read-only"], home)
    assert got["rc"] == 0 and "sandbox.policy.loader" in got["modules"]
    assert "argparse" in got["modules"]  # and argparse: only `run` has a reader of its own


def _hook_input(ws: Path, tool: str, tool_input: dict) -> bytes:
    return json.dumps(
        {
            "session_id": "s",
            "cwd": str(ws),
            "hook_event_name": "PreToolUse",
            "tool_name": tool,
            "tool_input": tool_input,
            "tool_use_id": "t",
        }
    ).encode()


def test_hook_imports_no_launcher_and_no_parser_when_cached(
    home: dict[str, str], tmp_path: Path
) -> None:
    # Decided in the hook's own process: what it imports then is the question here (a call
    # the resident server answers imports no policy code at all: test_hook_server.py).
    home = dict(home, LANDGATE_HOOK_SERVER="0")
    ws = tmp_path / "ws"
    ws.mkdir()
    deny = _hook_input(ws, "Read", {"file_path": str(ws / ".env")})
    allow = _hook_input(ws, "Read", {"file_path": str(ws / "README.md")})
    cold = _modules(["hook", "claude-code"], home, deny, str(ws))
    assert '"permissionDecision": "deny"' in cold["stdout"]
    assert _loaded(cold["modules"], (*LAUNCH, *UI_AND_INTEGRATIONS)) == []
    assert "yaml" in cold["modules"]  # cold: the policy was parsed (and cached)
    warm = _modules(["hook", "claude-code"], home, deny, str(ws))
    assert warm["stdout"] == cold["stdout"]
    assert _loaded(warm["modules"], (*LAUNCH, *UI_AND_INTEGRATIONS, *PARSER)) == []
    # the allowed twin, warm: no output (landgate does not object)
    warm_allow = _modules(["hook", "claude-code"], home, allow, str(ws))
    assert warm_allow["stdout"] == ""
    assert _loaded(warm_allow["modules"], PARSER) == []


def test_run_imports_no_ui_or_integrations(home: dict[str, str], tmp_path: Path) -> None:
    """`run` of a command that is not found stops after the plan, before anything is
    spawned (exit 127): the modules up to there, twice (cold, then from the cache)."""
    argv = ["run", "-q", "--policy", "read-only", "--", "no-such-command-landgate-test"]
    cold = _modules(argv, home, cwd=str(tmp_path))
    assert cold["rc"] == 127
    assert "sandbox.plan" in cold["modules"]  # the twin: run does plan
    assert _loaded(cold["modules"], (*UI_AND_INTEGRATIONS, "sandbox.integrations")) == []
    warm = _modules(argv, home, cwd=str(tmp_path))
    assert warm["rc"] == 127
    assert _loaded(warm["modules"], (*UI_AND_INTEGRATIONS, *PARSER)) == []


def test_run_probes_the_kernel_once_per_boot(home: dict[str, str], tmp_path: Path) -> None:
    """The second `run` takes the kernel's features from the per-boot probe cache
    (sandbox.host.probecache): the probing module is not even imported, unless a namespace
    kind said "no" (asked again every time)."""
    from sandbox.host.probe import NAMESPACE_FACTS, probe_host_uncached

    argv = ["run", "-q", "--policy", "read-only", "--", "no-such-command-landgate-test"]
    cold = _modules(argv, home, cwd=str(tmp_path))
    assert cold["rc"] == 127 and "sandbox._probe" in cold["modules"]  # the twin: probed
    warm = _modules(argv, home, cwd=str(tmp_path))
    assert warm["rc"] == 127
    host = probe_host_uncached()
    all_yes = all(getattr(host, k) for k in NAMESPACE_FACTS)
    assert ("sandbox._probe" in warm["modules"]) == (not all_yes)
    assert "getpass" not in warm["modules"]


def test_run_loads_no_openssl(home: dict[str, str], tmp_path: Path) -> None:
    """A whole `run` (spawn, supervise, audit trail written, policy cache on) leaves
    OpenSSL's libcrypto out of the process: hashlib/hmac/secrets load it (3.7 MB resident,
    a seventh of a session's memory) for a SHA-256 the interpreter has built in; the
    audit chain and the caches use sandbox.digest instead, the key file os.urandom."""
    argv = ["run", "-q", "--policy", "read-only", "--audit", str(tmp_path / "audit"), "--"]
    for _ in range(2):  # cold, then from the policy and probe caches
        got = _modules([*argv, "/bin/true"], home, cwd=str(tmp_path))
        assert got["rc"] == 0
        # the twin: the run did hash (the audit chain) and authenticate (the caches)
        assert "sandbox.audit.chain" in got["modules"]
        assert "sandbox.policy.diskcache" in got["modules"]
        assert _loaded(got["modules"], ("_hashlib", "hashlib", "hmac", "secrets", "ssl")) == []


# What `landgate run` used for three small jobs (a program on $PATH, the hook channel's
# 0700 directory, removing it), for setns/unshare (ctypes: Python 3.11's os has neither),
# for the DNS view's query ids and the network layer's exit hook; each an import of
# milliseconds (shutil brings bz2 and lzma, tempfile random and weakref).
RUN_PATH_UNUSED = ("shutil", "tempfile", "ctypes", "random", "weakref", "bz2", "lzma")


def test_run_imports_no_shutil_tempfile_ctypes(home: dict[str, str], tmp_path: Path) -> None:
    """A whole `run` of the read-only preset (the loopback-only network layer as root: a
    namespace made by unshare in a thread, the DNS view; the hook channel's directory
    made and removed) imports none of RUN_PATH_UNUSED, cold and from the caches; from
    the caches, not pickle either."""
    argv = ["run", "-q", "--policy", "read-only", "--audit", str(tmp_path / "audit"), "--"]
    tmp = tmp_path / "tmp"  # the hook channel's directory is made here, and removed
    tmp.mkdir()
    for warm in (False, True):
        got = _modules([*argv, "true"], dict(home, TMPDIR=str(tmp)), cwd=str(tmp_path))
        assert got["rc"] == 0
        assert list(tmp.iterdir()) == []
        if warm:
            # The policy from the persistent cache: unpickled by _pickle, without pickle.py
            # (the cold run above imported it to write the entry: its twin).
            assert "_pickle" in got["modules"] and "pickle" not in got["modules"]
            # typing (~2 ms): every module on the launch path keeps its names for the type
            # checker alone (TYPE_CHECKING = False).  Its twin: test_hook_entry's parser case.
            assert "typing" not in got["modules"]
            # Nor the evaluator (no decision is explained: sandbox.policy's names are
            # lazy) nor the ascii codec (the tables read /proc as utf-8); the evaluator's
            # twin is test_explain_imports_the_evaluator.
            assert "sandbox.policy.evaluate" not in got["modules"]
            assert "encodings.ascii" not in got["modules"]
        else:
            assert "pickle" in got["modules"]
        # the twin: the jobs those modules did were done (the channel, $PATH, the layer)
        assert "sandbox.session.report" in got["modules"]
        assert "sandbox.host.fsutil" in got["modules"]
        if os.geteuid() == 0:
            assert "sandbox.net.netns" in got["modules"]
            assert "sandbox.net.dnsview" in got["modules"]
        assert [m for m in RUN_PATH_UNUSED if m in got["modules"]] == []


# Lists, after main(argv), every class defined by a loaded sandbox module that is a
# dataclass, plus (the detector's own twin) a dataclass defined here, as __main__.Twin.
DATACLASS_PROBE = r"""
import dataclasses, json, sys
from sandbox.cli import main

@dataclasses.dataclass(frozen=True)
class Twin:
    x: int

try:
    rc = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    rc = exc.code
found = []
for name, mod in sorted(dict(sys.modules).items()):
    if not (name.startswith("sandbox") or name == "__main__"):
        continue
    for attr, value in list(vars(mod).items()):
        if isinstance(value, type) and value.__module__ == name and dataclasses.is_dataclass(value):
            found.append(f"{name}.{attr}")
sys.stdout.write("\n" + json.dumps({"rc": rc, "dataclasses": found}) + "\n")
"""

# The layers this launch work owns; plan.nft and plan.names are the network
# layer's (their own value classes are theirs to convert).
OWN = ("sandbox.cli", "sandbox.api", "sandbox.policy", "sandbox.plan", "sandbox.session")
NOT_OWN = ("sandbox.plan.nft", "sandbox.plan.names")


def test_run_defines_no_dataclass_in_policy_plan_or_session(
    home: dict[str, str], tmp_path: Path
) -> None:
    """Each @dataclass costs ~0.5 ms at import (its methods are exec()'d): the policy, plan
    and session value classes on `landgate run`'s path are sandbox.record Records."""
    argv = ["run", "-q", "--policy", "read-only", "--audit", str(tmp_path / "audit"), "--"]
    for _ in range(2):  # cold (the policy parsed), then from the caches
        got = _modules([*argv, "/bin/true"], home, cwd=str(tmp_path), probe=DATACLASS_PROBE)
        assert got["rc"] == 0
        assert "__main__.Twin" in got["dataclasses"]  # the twin: the probe sees one
        mine = [
            c
            for c in got["dataclasses"]
            if c.startswith(tuple(p + "." for p in OWN))
            and not c.startswith(tuple(p + "." for p in NOT_OWN))
        ]
        assert mine == []


def test_run_loads_no_dataclasses(home: dict[str, str], tmp_path: Path) -> None:
    """No value class on `landgate run`'s path is a dataclass (sandbox.record instead):
    `dataclasses` (and `inspect`, `ast`, `dis`, `tokenize` under it, ~6 ms) is not even
    imported, cold or from the caches."""
    argv = ["run", "-q", "--policy", "read-only", "--audit", str(tmp_path / "audit"), "--"]
    for _ in range(2):
        got = _modules([*argv, "/bin/true"], home, cwd=str(tmp_path))
        assert got["rc"] == 0
        assert "sandbox.supervise.tables" in got["modules"]  # the twin: the whole path ran
        assert _loaded(got["modules"], ("dataclasses", "inspect")) == []
        # Nor `glob` (~1 ms): the open check lists the one directory of the presets'
        # `/etc/ssh/ssh_host_*_key` itself (fswalk._glob_matches).
        assert "glob" not in got["modules"]
        # Nor what only another path uses: shlex (a command line given as text; the
        # simulation summary's quoting), the audit trail's legacy-format reader (a trail
        # with segments and no witness).
        assert _loaded(got["modules"], ("shlex", "sandbox.audit.legacy")) == []
        # Nor argparse (and gettext, locale under it): a plain `run` command line is read
        # by cli._run_args (tests/cli/test_run_args.py: argparse's answer, always).
        assert _loaded(got["modules"], ("argparse", "gettext", "locale", "sandbox.cliargs")) == []


def test_run_from_the_policy_cache_loads_no_contextvars(
    home: dict[str, str], tmp_path: Path
) -> None:
    """fsdeps records the loader's lookups in a ContextVar only while a policy is loaded
    afresh: a `run` whose policy comes from the cache does not import contextvars."""
    argv = ["run", "-q", "--policy", "read-only", "--", "/bin/true"]
    cold = _modules(argv, home, cwd=str(tmp_path))
    assert cold["rc"] == 0
    assert "contextvars" in cold["modules"]  # the twin: the cold load recorded its lookups
    warm = _modules(argv, home, cwd=str(tmp_path))
    assert warm["rc"] == 0 and "sandbox.policy.diskcache" in warm["modules"]
    assert "contextvars" not in warm["modules"]


# Counts the calls of compile() on source text made during main(argv), plus (the
# counter's own twin) one made by the probe before main.
COMPILE_PROBE = r"""
import builtins, json, sys
calls = []
real = builtins.compile
def counting(*a, **k):
    if isinstance(a[0], str):  # not importlib compiling a module without its .pyc (bytes)
        calls.append(repr(a[0])[:80])
    return real(*a, **k)
builtins.compile = counting
compile("1", "<twin>", "eval")
from sandbox.cli import main
try:
    rc = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    rc = exc.code
sys.stdout.write("\n" + json.dumps({"rc": rc, "calls": calls}) + "\n")
"""


def test_run_compiles_no_source(home: dict[str, str], tmp_path: Path) -> None:
    """The interpreter's first compile() costs ~0.7 ms (typing.TypeVar("_R", bound="X")
    compiled its bound's name at import): `landgate run` from the caches calls none."""
    argv = ["run", "-q", "--policy", "read-only", "--", "/bin/true"]
    for _ in range(2):  # cold (fills the caches), then from them
        got = _modules(argv, home, cwd=str(tmp_path), probe=COMPILE_PROBE)
        assert got["rc"] == 0
    assert got["calls"][0] == "'1'"  # the twin: the counter sees a compile
    assert got["calls"][1:] == []


def test_explain_imports_the_evaluator(home: dict[str, str]) -> None:
    got = _modules(["explain", "--policy", "read-only", "file_read", "/etc/hostname"], home)
    assert got["rc"] in (0, 1) and "sandbox.policy.evaluate" in got["modules"]
