"""The plan and the tables for the name-changing syscalls (csrc/supervise_fsop.c): which
syscalls the filter hands over, the ancestor and git config rows, the hook globs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.plan.seccomp import compile_seccomp
from sandbox.plan.seccomp_table import NOTIFY_FSOP, SYSCALLS
from sandbox.policy import load_policy
from sandbox.policy.baseline import hook_globs
from sandbox.policy.compiled import compile_policy
from sandbox.policy.judge import judge_path
from sandbox.policy.patterns import match_path, parse_path_pattern
from sandbox.supervise.fsoprows import ancestor_globs
from sandbox.supervise.sessionrows import ACCESS_WRITE
from sandbox.supervise.tables import compile_tables

# x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl)
NUMBERS = {
    "rename": 82, "mkdir": 83, "link": 86, "symlink": 88, "truncate": 76, "mknod": 133,
    "mkdirat": 258, "mknodat": 259, "renameat": 264, "linkat": 265, "symlinkat": 266,
    "renameat2": 316,
}  # fmt: skip


def test_syscall_numbers():
    assert {n: SYSCALLS[n] for n in NOTIFY_FSOP} == NUMBERS


def test_filter_notifies_them_only_when_asked():
    on = compile_seccomp(notify_open=False, notify_fsop=True)
    off = compile_seccomp(notify_open=False)
    assert set(NUMBERS.values()) <= on.notify_numbers
    assert not set(NUMBERS.values()) & off.notify_numbers
    assert on.fsop_check and not off.fsop_check
    # Landlock ABI < 3: truncate goes to the supervisor all the same (it reopens the file
    # for writing under the ruleset, which that ABI judges); without the supervisor the
    # filter refuses it
    old = compile_seccomp(notify_open=False, notify_fsop=True, refuse_truncate=True)
    assert SYSCALLS["truncate"] in old.notify_numbers
    assert ("truncate", "errno") not in {(a.syscall, a.action) for a in old.actions}
    bare = compile_seccomp(notify_open=False, notify_fsop=False, refuse_truncate=True)
    assert SYSCALLS["truncate"] not in bare.notify_numbers
    assert ("truncate", "errno") in {(a.syscall, a.action) for a in bare.actions}


@pytest.mark.parametrize(
    ("name", "denied"),
    [
        ("pre-commit", True),
        ("post-update", True),
        (".hidden", True),
        ("e", True),
        ("sample", True),
        ("xsample", True),
        ("pre-commit.samplex", True),
        ("sub/pre-commit.sample", True),
        ("pre-commit.sample", False),
        (".sample", False),
    ],
)
def test_hook_globs_cover_every_name_but_samples(name, denied):
    pats = [parse_path_pattern(g, workspace="/w", home="/h") for g in hook_globs(".git/hooks")]
    assert any(match_path(p, f"/w/r/.git/hooks/{name}") for p in pats) == denied
    assert not any(match_path(p, "/w/r/.git/hooks") for p in pats)  # git init makes it


def _policy(tmp_path: Path, text: str):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return load_policy(p, cwd="/w", home="/h")


def test_ancestor_globs(tmp_path):
    pol = _policy(
        tmp_path,
        "version: 1\nactions:\n  - action: file_write\n    rules:\n"
        '      - { path: "./a/b/", effect: deny }\n'
        '      - { path: "**/.env", effect: deny }\n',
    )
    by = {r.pattern: ancestor_globs(r) for r in pol.block("file_write").rules if r.path}
    assert by["./a/b/"] == ["/w", "/w/a"]
    assert by["**/.env"] == []  # one unanchored name: it matches at any depth anyway
    assert by[".git/hooks/*[!e]"] == ["**/.git", "**/.git/hooks"]
    assert by["~/.config/autostart/"] == ["/h", "/h/.config"]


def test_tables_carry_the_rows(tmp_path):
    from sandbox._supervise import lib

    pol = _policy(tmp_path, "version: 1\nactions: []\n")
    t = compile_tables(pol, {"fsop_check": True, "landlock": "absent", "resolve_hosts": False})
    assert t.c.fsop_check == 1
    kinds = [t.c.fsop[i].kind for i in range(t.c.n_fsop)]
    assert kinds.count(lib.LG_FSOP_GITCFG) == 6 and lib.LG_FSOP_ANCESTOR in kinds
    # without it: no rows, and the check is not asked of the supervisor
    t0 = compile_tables(pol, {"resolve_hosts": False})
    assert t0.c.fsop_check == 0 and t0.c.n_fsop == 0


def test_a_directory_allow_of_the_hooks_opens_them(tmp_path):
    pol = _policy(
        tmp_path,
        "version: 1\nactions:\n  - action: file_write\n    rules:\n"
        '      - { path: "./r/.git/hooks/", effect: allow }\n'
        '      - { path: "~/", effect: allow }\n',
    )
    comp = compile_policy(pol)
    assert judge_path(comp.c, "/w/r/.git/hooks/pre-commit", ACCESS_WRITE)[0] == 0
    assert judge_path(comp.c, "/w/s/.git/hooks/pre-commit", ACCESS_WRITE)[0] & ACCESS_WRITE
    assert judge_path(comp.c, "/h/.bashrc", ACCESS_WRITE)[0] & ACCESS_WRITE  # ~/ is a parent
