"""csrc/gitcfg.c: git config content, parsed as git parses it and judged for keys that run
programs.  The parser is checked against git itself (`git config --list --null`) on the
same bytes; the judge on each refused key with its allowed twin."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from sandbox._supervise import ffi, lib

GIT = shutil.which("git")


def c_list(data: bytes) -> list[str] | None:
    out = ffi.new("char[]", 1 << 16)
    n = lib.lg_gitcfg_list(data, len(data), out, 1 << 16)
    if n < 0:
        return None
    return [x.decode("utf-8", "surrogateescape") for x in ffi.buffer(out, n)[:].split(b"\0")[:-1]]


def git_list(data: bytes) -> list[str] | None:
    assert GIT
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin"}
    p = subprocess.run(
        [GIT, "config", "--file", "-", "--list", "--null", "--no-includes"],
        input=data,
        capture_output=True,
        env=env,
        check=False,
    )
    if p.returncode != 0:
        return None
    return [x.decode("utf-8", "surrogateescape") for x in p.stdout.split(b"\0")[:-1]]


def judge(old: bytes, new: bytes) -> str | None:
    why = ffi.new("char[]", 256)
    rc = lib.lg_gitcfg_judge(old, len(old), new, len(new), why, 256)
    assert rc in (0, 1)
    return ffi.string(why).decode() if rc else None


SAMPLES = [
    b"[core]\n\trepositoryformatversion = 0\n\tbare = false\n",
    b'[remote "origin"]\n\turl = https://x/y.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n',
    b'[Section "SubSection"]\n  KeyName = Value With  Two  Spaces   \n',
    b"[core] pager = less\n",  # a key on the header's line
    b"[a.B]\nx = 1\n",  # the deprecated subsection form, lower-cased
    b"[core]\nbare\n",  # a bare boolean
    b'[s]\nk = "quoted ; not # a comment"  ; a comment\n',
    b"[s]\nk = one \\\n two\n",  # continuation
    b'[s]\nk = tab\\there \\"q\\" back\\\\slash nl\\n\n',
    b"\xef\xbb\xbf[s]\r\nk = crlf\r\n",
    b"# comment\n; comment\n[s]\n\n   k=v\n",
    b'[s "sub \\"q\\" \\\\ x"]\nk = v\n',
    b"[s]\nk =\n",  # empty value
    b"[s]\nk = v # trailing\n[t]\nk = w",  # no final newline
    b"[s]\nk-2 = v\n",
    b"k = v\n",  # a key before any section: git lists it without one
    # not git config: git refuses each
    b"[s\nk = v\n",
    b'[s]\nk = "unterminated\n',
    b"[s]\nk = bad \\q escape\n",
    b"[s]\n1k = v\n",
    b"[s]\nk v\n",
    b"[]\nk = v\n",
    b'[s "x]\n',
]


@pytest.mark.skipif(GIT is None, reason="git is not installed")
@pytest.mark.parametrize("data", SAMPLES)
def test_parser_agrees_with_git(data):
    assert c_list(data) == git_list(data)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("core", "pager = sh -c evil"),
        ("core", "hooksPath = /tmp/hooks"),
        ("core", "fsmonitor = /tmp/x"),
        ("core", "sshCommand = ssh -oProxyCommand=x"),
        ("core", "editor = vim"),
        ('diff "x"', "textconv = cat"),
        ('filter "lfs"', "clean = evil %f"),
        ('filter "lfs"', "smudge = evil"),
        ('filter "lfs"', "process = evil"),
        ("diff", "external = evil"),
        ("alias", "st = !sh -c evil"),
        ("alias", "st =   !evil"),
        ("include", "path = /tmp/other"),
        ('includeIf "gitdir:/"', "path = /tmp/other"),
        ("credential", "helper = !evil"),
        ('url "ext::sh -c evil"', "insteadOf = https://"),
        ("CORE", "PAGER = x"),  # case-insensitive section and key
    ],
)
def test_new_key_that_runs_a_program_is_refused(key, value):
    base = b"[core]\n\tbare = false\n"
    new = base + f"[{key}]\n\t{value}\n".encode()
    why = judge(base, new)
    assert why is not None and why.split("=")[0].lower().startswith(key.split()[0].lower())


@pytest.mark.parametrize(
    "added",
    [
        b"[user]\n\tname = x\n",
        b"[user]\n\temail = x@y\n",
        b"[alias]\n\tst = status\n",  # an alias without '!' runs git itself
        b'[branch "main"]\n\tremote = origin\n',
        b"[core]\n\tautocrlf = input\n",
    ],
)
def test_harmless_keys_are_allowed(added):
    base = b"[core]\n\tbare = false\n"
    assert judge(base, base + added) is None


def test_keys_already_there_may_stay_but_not_change():
    old = b"[core]\n\tpager = less\n[user]\n\tname = a\n"
    assert judge(old, old.replace(b"name = a", b"name = b")) is None  # the user's pager stays
    assert judge(old, old.replace(b"less", b"sh -c evil")) is not None  # changed: refused
    assert judge(old, old + b"[core]\n\tpager = less\n") is not None  # a second copy is new


def test_unparseable_new_content_is_refused_and_a_broken_old_file_counts_as_empty():
    assert "not git config syntax" in (judge(b"", b"[core\npager=x\n") or "")
    assert judge(b"[core\n", b"[user]\n\tname = x\n") is None
    assert judge(b"[core\n\tpager = x", b"[core]\n\tpager = x\n") is not None


def test_no_file_before():
    assert judge(b"", b"[user]\n\tname = x\n") is None
    assert judge(b"", b"[core]\n\tpager = x\n") is not None
