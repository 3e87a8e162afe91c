"""csrc/glob.c's path matching is bounded: O(program words x path length) whatever the glob.

Alternating spanning ops (`/w/**/*/**/*/x`) made the backtracking interpreter try every
way to split a deep path between them, a power of the path's length: seconds of
supervisor CPU per open, with a path the agent chooses.  The interpreter now backtracks
on a budget and hands over to a state-set interpreter (no backtracking) when the budget
is spent.

Judged through a harness (glob_harness.c) that compiles csrc/glob.c with a step counter
and a cap: never on time.  Three builds of it: as shipped, the state sets alone (a budget
of 0), and the backtracking alone (no budget: the interpreter as it was, the protection
off).  The first two must mean what the reference model means (tests/contract) on
generated globs and paths, and stay under the bound on pathological ones; the third must
exceed the bound there (the test can fail).
"""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import pytest
from contract import reference

from sandbox.policy.globs import compile_glob

CSRC = Path(__file__).resolve().parents[2] / "csrc"
HARNESS = Path(__file__).with_name("glob_harness.c")
BUILDS = {
    "shipped": [],
    "state sets": ["-DLG_GLOB_BUDGET(w,n)=0"],
    "backtracking": ["-DLG_GLOB_NFA_WORDS=1"],  # every program "too long": no budget
}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    root = tmp_path_factory.mktemp("glob-harness")
    for name, flags in BUILDS.items():
        exe = root / name.replace(" ", "-")
        cmd = ["gcc", "-std=gnu11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror"]
        subprocess.run([*cmd, *flags, f"-I{CSRC}", "-o", str(exe), str(HARNESS)], check=True)
        out[name] = exe
    return out


def bound(words: tuple[int, ...], text: bytes) -> int:
    """The most steps a match may take: the backtracking's budget plus what the state sets
    take at most (each visits every word at most twice per character, and once first)."""
    return 4 * len(words) * (len(text) + 1)


def run(exe: Path, cases: list[tuple[tuple[int, ...], bytes, int]]) -> tuple[int, list[str]]:
    """(exit status, one "<match> <steps>" line per case run, or "over")."""
    data = b"".join(
        struct.pack(f"<I{len(w)}I", len(w), *w)
        + struct.pack("<I", len(t))
        + t
        + struct.pack("<Q", cap)
        for w, t, cap in cases
    )
    p = subprocess.run([str(exe)], input=data, capture_output=True, check=False, timeout=600)
    return p.returncode, p.stdout.decode().split("\n")[:-1]


# ---------------------------------------------------------------------------- generated

GLOB_PIECES = ["a", "b", "é", "?", "*", "[a-c]", "[!é]", "\\*", ".", "x.txt"]
TEXT_PIECES = ["a", "b", "c", "é", "*", ".", "x.txt", "ab", "\udcff", "\udcc3"]


def _component(rng: random.Random, pieces: list[str]) -> str:
    return "".join(rng.choice(pieces) for _ in range(rng.randint(1, 3)))


def _generated(n: int) -> list[tuple[tuple[int, ...], str, bool]]:
    """(program, path, the reference's answer): globs with up to 6 components, `**` often,
    over paths up to 9 deep."""
    rng = random.Random(1906)  # the same cases on every run
    out: list[tuple[tuple[int, ...], str, bool]] = []
    while len(out) < n:
        comps = [
            "**" if rng.random() < 0.35 else _component(rng, GLOB_PIECES)
            for _ in range(rng.randint(1, 6))
        ]
        anchored = rng.random() < 0.5
        glob = ("/" if anchored else "") + "/".join(comps)
        while not anchored and glob.startswith("**/"):
            glob = glob[3:]
        directory = rng.random() < 0.3
        text = "/" + "/".join(_component(rng, TEXT_PIECES) for _ in range(rng.randint(1, 9)))
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
        try:
            want = reference.matches(glob, text, path=True, directory=directory, anchored=anchored)
        except ValueError:
            continue  # malformed ('a**'): tests/contract checks the compiler refuses it
        words = compile_glob(glob, path=True, directory=directory, anchored=anchored)
        out.append((words, text, want))
    return out


@pytest.mark.parametrize("build", BUILDS)
def test_each_interpreter_means_what_the_reference_means(harness, build: str) -> None:
    cases = _generated(3000)
    raw = [(w, t.encode("utf-8", "surrogateescape"), 0) for w, t, _ in cases]
    code, lines = run(harness[build], raw)
    assert code == 0 and len(lines) == len(cases)
    wrong = [
        (c[1], c[2])
        for c, line in zip(cases, lines, strict=True)
        if line.split()[0] != str(int(c[2]))
    ]
    assert wrong == []
    assert sum(c[2] for c in cases) > 300  # both answers are well represented
    assert sum(not c[2] for c in cases) > 300


def test_the_shipped_interpreter_stays_under_the_bound_on_generated_cases(harness) -> None:
    cases = _generated(3000)
    raw = [(w, t.encode("utf-8", "surrogateescape"), 0) for w, t, _ in cases]
    code, lines = run(harness["shipped"], raw)
    assert code == 0
    over = [
        (c[1], int(line.split()[1]), bound(r[0], r[1]))
        for c, r, line in zip(cases, raw, lines, strict=True)
        if int(line.split()[1]) > bound(r[0], r[1])
    ]
    assert over == []


# ---------------------------------------------------------------------------- pathological

DEEP = "/w/" + "aaaa/" * 200  # 1,003 bytes, 200 components
PATHOLOGICAL = [
    # (glob, anchored, path, answer): the answers by construction (the reference's regex
    # backtracks on these as the old interpreter did)
    ("/w/**/*/**/*/x", True, DEEP + "y", False),
    ("/w/**/*/**/*/x", True, DEEP + "x", True),
    ("/w/**/*/**/*/**/*/x", True, DEEP + "y", False),
    ("/w/**/*/**/*/**/*/x", True, DEEP + "x", True),
    ("/w/**/*a*/**/*a*/**/*a*/x", True, "/w/" + "aaaa/" * 50 + "y", False),
    ("/w/**/*a*/**/*a*/**/*a*/x", True, "/w/" + "aaaa/" * 50 + "x", True),
    ("b/**/b/**/b/**/c", False, "/" + "b/" * 500 + "d", False),
    ("b/**/b/**/b/**/c", False, "/" + "b/" * 500 + "c", True),
    ("/w/**/*é*/**/*é*/x", True, "/w/" + "éé\udcff/" * 150 + "y", False),
    ("/w/**/*é*/**/*é*/x", True, "/w/" + "éé\udcff/" * 150 + "x", True),
]


def _pathological() -> list[tuple[tuple[int, ...], bytes, bool]]:
    return [
        (compile_glob(g, path=True, anchored=a), p.encode("utf-8", "surrogateescape"), want)
        for g, a, p, want in PATHOLOGICAL
    ]


@pytest.mark.parametrize("build", ["shipped", "state sets"])
def test_alternating_spanning_ops_over_a_deep_path_stay_under_the_bound(harness, build) -> None:
    cases = _pathological()
    code, lines = run(harness[build], [(w, t, bound(w, t)) for w, t, _ in cases])
    assert code == 0, lines  # "over": a case passed its bound
    assert [line.split()[0] for line in lines] == [str(int(want)) for *_, want in cases]


def test_backtracking_alone_exceeds_the_bound(harness) -> None:
    """The protection off: the interpreter without its budget passes the bound on the first
    pathological case (where it would go on for ~100 ms; the harness stops it)."""
    words, text, _ = _pathological()[2]
    code, lines = run(harness["backtracking"], [(words, text, bound(words, text))])
    assert (code, lines) == (3, ["over"])
    # The twin: a path it answers within the bound (one way to split it).
    short = b"/w/a/b/c/x"
    assert run(harness["backtracking"], [(words, short, bound(words, short))])[1][0][0] == "1"
