"""The planner skips a deny's glob for a path outside the deny's literal base (issue 19).

`_denied_whole` decides whether a deny removes a whole grant; it now skips the glob of
every anchored deny whose base the granted path is not beneath (plan/landlock.py
`_outside`).  The answer must be exactly the one of running every glob: checked here
against that oracle over patterns with globs, `**`, directory forms and escaped glob
characters, for paths inside, above, beside and beneath each base.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.plan.carveouts import reaches_grant
from sandbox.plan.landlock import LandlockRule, _denied_whole, _outside, is_beneath, match
from sandbox.policy.model import Rule, SourceRef
from sandbox.policy.patterns import parse_path_pattern

PATTERNS = (
    "/etc/shadow",
    "/etc/ssh/ssh_host_*_key",
    "/home/u/.ssh/",
    "/home/u/.aws/**",
    "/home/u/**/.env",
    "/srv/*/secret",
    "/srv/[ab]x/",
    "/opt/a\\*b",  # a file literally named `a*b`: the base is not literal text
    "/opt/c\\?d/",
    "/**/id_rsa",
    "/",
)
PATHS = (
    "/",
    "/etc",
    "/etc/shadow",
    "/etc/shadowx",
    "/etc/ssh",
    "/etc/ssh/ssh_host_rsa_key",
    "/home",
    "/home/u",
    "/home/u/.ssh",
    "/home/u/.ssh/id_rsa",
    "/home/u/.sshx",
    "/home/u/.aws",
    "/home/u/.aws/credentials",
    "/home/u/ws/.env",
    "/srv/x/secret",
    "/srv/ax",
    "/srv/ax/deep",
    "/opt",
    "/opt/a*b",
    "/opt/a\\*b",
    "/opt/c?d",
    "/opt/c?d/inner",
    "/usr/lib",
)


def _rule(i: int, raw: str) -> Rule:
    pp = parse_path_pattern(raw, workspace="/home/u/ws", home="/home/u")
    return Rule("file_read", i, "deny", raw, SourceRef("t.yaml", i, 1), path=pp)


def _oracle(path: str, denies: list[Rule]) -> Rule | None:
    """_denied_whole as it was: every anchored deny's glob run for every path."""
    for d in denies:
        pp = d.path
        assert pp is not None
        if not pp.anchored:
            continue
        if match(pp, path) and (pp.directory or pp.glob.endswith("/**") or not os.path.isdir(path)):
            return d
        if (
            pp.directory
            and pp.base is not None
            and pp.glob == pp.base
            and is_beneath(path, pp.base)
        ):
            return d
    return None


def test_prefilter_answers_as_every_glob_would() -> None:
    rules = [_rule(i, raw) for i, raw in enumerate(PATTERNS, 1)]
    skipped = 0
    for path in PATHS:
        for d in rules:  # one deny at a time: which one answers is then unambiguous
            assert _denied_whole(path, [d]) == _oracle(path, [d]), (path, d.pattern)
            assert d.path is not None
            skipped += _outside(path, d.path)
        assert _denied_whole(path, rules) == _oracle(path, rules), path
    assert skipped > len(PATHS)  # the twin: the filter does skip globs


def test_an_escaped_glob_character_is_never_skipped() -> None:
    """`/opt/a\\*b` matches the file `/opt/a*b`, which is not beneath the text of its base
    (`/opt/a\\*b`): skipping by that text would keep a grant the deny covers."""
    d = _rule(1, "/opt/a\\*b")
    assert d.path is not None and d.path.base == "/opt/a\\*b"
    assert not _outside("/opt/a*b", d.path)
    assert _denied_whole("/opt/a*b", [d]) is d
    # the twin: a plain literal base is skipped for a path beside it
    assert _outside("/opt/other", _rule(2, "/opt/ab").path)  # type: ignore[arg-type]


def test_a_deny_with_an_escaped_base_reaches_the_grant_of_its_real_path(tmp_path: Path) -> None:
    """carveouts.reaches_grant decides on the bases alone: a deny beneath a directory
    literally named `a*b` must be seen to reach the grant of that directory (else no open
    check would be asked for it)."""
    grant = [LandlockRule("/opt/a*b", 12, ("t",))]
    d = _rule(1, "/opt/a\\*b/secret")
    assert d.path is not None
    assert reaches_grant(d.path, grant)
    # the twin: a deny elsewhere does not reach it
    other = _rule(2, "/srv/secret")
    assert other.path is not None and not reaches_grant(other.path, grant)


def test_one_stat_per_grant_answers_as_exists_and_not_isdir(tmp_path: Path) -> None:
    """grant() narrows a non-directory's rights after one stat (_non_directory), where it
    asked os.path.exists and os.path.isdir: the same answer for every kind of path."""
    from sandbox.plan.landlock import _non_directory

    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "to-f").symlink_to(tmp_path / "f")
    (tmp_path / "to-d").symlink_to(tmp_path / "d")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    paths = [str(tmp_path / n) for n in ("f", "d", "to-f", "to-d", "dangling", "missing")]
    paths += ["/dev/null", "/", "bad\x00path"]
    answers = {p: _non_directory(p) for p in paths}
    for p in paths:
        assert answers[p] == (os.path.exists(p) and not os.path.isdir(p)), p
    assert answers[str(tmp_path / "to-f")] and not answers[str(tmp_path / "to-d")]  # the twin
