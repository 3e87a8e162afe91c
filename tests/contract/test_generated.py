"""Property-generated cases (hypothesis): explain and the supervisor's C tables
decide alike, by the same rule, and the C glob interpreter means what the
reference model of DESIGN §3 means.

Totals (each test asserts its own count): 2,000 glob/reference cases, 2,000
exec cases (wrappers, nested shells, UTF-8, by-path rules), 1,500 path cases,
600 unix-socket cases, 1,000 normalisation cases: 7,100 generated cases per run.
"""

from __future__ import annotations

import random
import shlex

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.policy.globs import compile_glob
from sandbox.policy.judge import glob_match
from sandbox.policy.patterns import normalize_path

from . import harness, reference

SETTINGS = {
    "deadline": None,
    "derandomize": True,  # the same cases on every run and machine
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


def _run(test, n: int) -> int:
    count = [0]

    @settings(max_examples=n, **SETTINGS)
    @given(st.data())
    def check(data):
        test(data)
        count[0] += 1

    check()
    return count[0]


def _fsdecode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------
# globs against the reference model

GLOB_PIECES = ["a", "b", "é", "😀", "?", "*", "[a-c]", "[!é]", "[é-ë]", "\\*", ".", "x.txt"]
TEXT_PIECES = ["a", "b", "c", "é", "ë", "😀", "*", ".", "x.txt", "ab", "\udcff", "\udcc3"]


def _component(data, pieces) -> str:
    return "".join(data.draw(st.lists(st.sampled_from(pieces), min_size=1, max_size=4)))


def _glob_case(data) -> None:
    path = data.draw(st.booleans())
    if path:
        comps = [
            "**" if data.draw(st.integers(0, 4)) == 0 else _component(data, GLOB_PIECES)
            for _ in range(data.draw(st.integers(1, 4)))
        ]
        anchored = data.draw(st.booleans())
        glob = ("/" if anchored else "") + "/".join(comps)
        if not anchored:
            while glob.startswith("**/"):
                glob = glob[3:]
        directory = data.draw(st.booleans())
        text = "/" + "/".join(
            _component(data, TEXT_PIECES) for _ in range(data.draw(st.integers(1, 5)))
        )
    else:
        glob = _component(data, [*GLOB_PIECES, " ", "/", "sh -c "])
        anchored, directory = True, False
        text = _component(data, [*TEXT_PIECES, " ", "/"])
    # Text as the kernel hands it: bytes, decoded as os.fsdecode would
    text = _fsdecode(text.encode("utf-8", "surrogateescape"))
    try:
        want = reference.matches(glob, text, path=path, directory=directory, anchored=anchored)
    except ValueError:  # malformed ('a**'): the compiler must refuse it too
        try:
            compile_glob(glob, path=path, directory=directory, anchored=anchored)
        except ValueError:
            return
        raise AssertionError(
            f"compile_glob accepted {glob!r}, which the reference refuses"
        ) from None
    words = compile_glob(glob, path=path, directory=directory, anchored=anchored)
    assert glob_match(words, text, path=path) == want, (glob, text, path, directory, anchored)


def test_c_globs_mean_what_the_reference_means():
    assert _run(_glob_case, 2000) >= 2000


# ---------------------------------------------------------------------------
# policies: a few random ones per action, built once

EXEC_PATTERNS = [
    "id*",
    "curl*",
    "curl *",
    "git *",
    "git status",
    "ls*",
    "l?",
    "sh *",
    "bash *",
    "env *",
    "nice *",
    "timeout *",
    "busybox *",
    "*wget*",
    "/usr/bin/wget *",
    "/usr/bin/*",
    "caf? *",
    "[a-c]*",
    "[!a-m]*",
    "é*",
    "* x",
    "*",
    "xargs *",
    "true",
]
PATH_PATTERNS = [
    "/home/u/?.txt",
    "/home/u/*.txt",
    "/data/**/secret",
    "**/.env",
    ".env",
    "/srv/[a-c]*.key",
    "/srv/[!a-c]*",
    "/logs/**",
    "/logs/",
    "*.pem",
    "/ws/**",
    "/home/u/é/",
    "/a/**/b/**/c",
    "?",
    "/[é]*",
    "/home/u/.env",
    "/data/",
    "/srv/b1.key",
]
UNIX_PATTERNS = [
    "unix:/run/user/*/bus",
    "unix:/run/docker.sock",
    "unix:/tmp/**/ok.sock",
    "unix:@X?",
    "unix:/tmp/*",
    "unix:/run/**",
    "unix:/tmp/[!a]?.sock",
    "unix:@/tmp/.X11-unix/X*",
]


def _rules(rng: random.Random, key: str, pool: list[str], extra: str = "") -> str:
    chosen = rng.sample(pool, rng.randint(1, min(8, len(pool))))
    out = []
    for p in chosen:
        eff = rng.choice(["allow", "deny"])
        inherit = (
            ", inherit: false" if key == "command" and eff == "allow" and rng.random() < 0.2 else ""
        )
        out.append(f'      - {{ {key}: "{p}", effect: {eff}{inherit} }}')
    return "\n".join(out)


def _policies(seed: int, n: int = 8) -> list:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = f"""\
version: 1
extends: []
workspace: /ws
actions:
  - action: shell_exec
    defaultEffect: {rng.choice(["allow", "deny"])}
    rules:
{_rules(rng, "command", EXEC_PATTERNS)}
  - action: file_read
    defaultEffect: {rng.choice(["allow", "deny"])}
    rules:
{_rules(rng, "path", PATH_PATTERNS)}
  - action: file_write
    defaultEffect: deny
    rules:
{_rules(rng, "path", PATH_PATTERNS)}
  - action: network
    defaultEffect: {rng.choice(["allow", "deny"])}
    rules:
{_rules(rng, "destination", UNIX_PATTERNS)}
"""
        out.append(harness.policy(text))
    return out


POLICIES = _policies(11)


def _agree(pol, action, target) -> None:
    a = harness.explain(pol, action, target)
    b = harness.supervisor(pol, action, target)
    assert a == b, f"{action} {target!r}: explain {harness.show(a)}; supervisor {harness.show(b)}"


# ---------------------------------------------------------------------------
# exec: wrappers, shells nested at any depth, UTF-8, programs named by path

PROGRAMS = ["id", "curl", "git", "ls", "true", "wget", "/usr/bin/wget", "café", "caf", "é", "lé"]
ARGS = ["x", "-l", "status", "é", "a b", "*", "?", "--", "-n", "5", "A=b", "http://x/y"]
WRAPPERS = [
    ["env"],
    ["env", "-i"],
    ["env", "A=b"],
    ["env", "-u", "HOME"],
    ["env", "-S"],
    ["nice"],
    ["nice", "-n", "5"],
    ["timeout", "3"],
    ["timeout", "-s", "KILL", "3"],
    ["stdbuf", "-o", "L"],
    ["xargs", "-n", "1"],
    ["nohup"],
    ["setsid"],
    ["busybox"],
    ["/lib64/ld-linux-x86-64.so.2"],
    ["/usr/bin/env"],
]
SHELLS = [
    ["sh", "-c"],
    ["bash", "-lc"],
    ["dash", "-ec"],
    ["busybox", "sh", "-c"],
    ["fish", "-c"],
    ["rbash", "-c"],
    ["bash", "-o", "pipefail", "-c"],
    ["/bin/sh", "-c"],
]
SEPARATORS = ["; ", " && ", " || ", " | ", "\n", " & "]


def _command(data, depth: int = 0) -> list[str]:
    argv = [data.draw(st.sampled_from(PROGRAMS))]
    argv += data.draw(st.lists(st.sampled_from(ARGS), max_size=3))
    for _ in range(data.draw(st.integers(0, 2))):
        argv = data.draw(st.sampled_from(WRAPPERS)) + argv
    if depth < 6 and data.draw(st.integers(0, 2)) == 0:
        segs = [argv] + [_command(data, depth + 1) for _ in range(data.draw(st.integers(0, 2)))]
        sep = data.draw(st.sampled_from(SEPARATORS))
        script = sep.join(shlex.join(s) for s in segs)
        if data.draw(st.booleans()):
            script = f"A=1 {script}"
        argv = [*data.draw(st.sampled_from(SHELLS)), script]
    return argv


def _exec_case(data) -> None:
    pol = data.draw(st.sampled_from(POLICIES))
    _agree(pol, "shell_exec", _command(data))


def test_exec_explain_and_supervisor_tables_agree():
    assert _run(_exec_case, 2000) >= 2000


# ---------------------------------------------------------------------------
# paths

PATH_COMPONENTS = [
    "home",
    "u",
    "data",
    "secret",
    "x",
    "é",
    "é.txt",
    "ab.txt",
    "a.txt",
    ".env",
    ".envrc",
    "srv",
    "b1.key",
    "d.pub",
    "logs",
    "ws",
    "a",
    "b",
    "c",
    "😀.txt",
    "x.pem",
    "\udcff.txt",
    "\udcc3",
]


def _path_case(data) -> None:
    pol = data.draw(st.sampled_from(POLICIES))
    comps = data.draw(st.lists(st.sampled_from(PATH_COMPONENTS), min_size=1, max_size=5))
    path = _fsdecode(("/" + "/".join(comps)).encode("utf-8", "surrogateescape"))
    _agree(pol, data.draw(st.sampled_from(["file_read", "file_write"])), path)


def test_paths_explain_and_supervisor_tables_agree():
    assert _run(_path_case, 1500) >= 1500


# ---------------------------------------------------------------------------
# unix sockets

UNIX_COMPONENTS = [
    "run",
    "user",
    "1000",
    "bus",
    "docker.sock",
    "tmp",
    "a",
    "ok.sock",
    "é",
    "b.sock",
]


def _unix_case(data) -> None:
    pol = data.draw(st.sampled_from(POLICIES))
    comps = data.draw(st.lists(st.sampled_from(UNIX_COMPONENTS), min_size=1, max_size=4))
    lead = data.draw(st.sampled_from(["/", "@", "@/"]))
    _agree(pol, "network", "unix:" + lead + "/".join(comps))


def test_unix_sockets_explain_and_supervisor_tables_agree():
    assert _run(_unix_case, 600) >= 600


# ---------------------------------------------------------------------------
# normalisation: explain normalises a target with the supervisor's own C normaliser

NORM_PIECES = ["a", "é", ".", "..", "", "b.txt", "\udcff", "...", ".env", "😀"]


def _norm_case(data) -> None:
    comps = data.draw(st.lists(st.sampled_from(NORM_PIECES), min_size=0, max_size=7))
    path = _fsdecode(("/" + "/".join(comps)).encode("utf-8", "surrogateescape"))
    if data.draw(st.booleans()):
        path += "/"
    assert normalize_path(path) == reference.normalise(path), path


def test_normalisation_means_what_the_reference_means():
    assert _run(_norm_case, 1000) >= 1000
