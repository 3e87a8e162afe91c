"""Which environment variables reach the agent: the matcher behind Environment.passes.

The default secret patterns (and any list of patterns with `*` only at their ends) are
matched by prefix / suffix / substring tests instead of a compiled regex (issue 19: the
regex cost ~0.4 ms per launch).  The answer must be fnmatchcase's, always: checked
against it here, for the fast lists and for the lists that still take the regex.
"""

from __future__ import annotations

import itertools
from fnmatch import fnmatchcase

from sandbox.policy.model import Environment, _env_matchers, _StarMatcher

NAMES = (
    "",
    "A",
    "PATH",
    "HOME",
    "GITHUB_TOKEN",
    "github_token",
    "MY_TOKEN",
    "TOKEN",
    "TOKENIZER_PATH",
    "X_TOKEN_Y",
    "AWS_REGION",
    "AWS",
    "XAWS_",
    "DB_PASSWORD",
    "PASSWORD_DB",
    "SSH_AUTH_SOCK",
    "MY_SESSION",
    "SESSIONS",
    "COOKIE",
    "A_COOKIE_JAR",
    "NPM_TOKEN",
    "SECRET",
    "MYSECRETVAR",
    "STAR*NAME",
    "Q?",
    "LANG",
    "LC_ALL",
    "é_TOKEN",
)

LISTS = (
    Environment().secret_patterns,
    ("*",),
    ("**",),
    ("",),
    ("LANG", "LC_*"),
    ("*_TOKEN", "AWS_*", "*SECRET*", "HOME"),
    ("STAR*NAME",),  # a star inside: the regex
    ("Q?",),  # `?`: the regex
    ("[AL]*",),  # a class: the regex
    ("*A*B*",),  # stars inside: the regex
)


def _reference(patterns: tuple[str, ...], name: str) -> bool:
    return any(fnmatchcase(name, p) for p in patterns)


def test_matchers_answer_as_fnmatchcase() -> None:
    fast = 0
    for patterns in LISTS:
        matcher = _env_matchers(patterns, (), ())[0]
        fast += isinstance(matcher, _StarMatcher)
        for name in NAMES:
            assert bool(matcher.match(name)) == _reference(patterns, name), (patterns, name)
    assert fast == 6  # the twin: both kinds were exercised (6 fast lists, 4 regex ones)


def test_passes_follows_deny_allow_secret_order() -> None:
    """passes(): deny > allow > secret-looking (case-insensitive) > default, for every
    combination of lists, the fast matcher and the regex alike."""
    small = (("*_TOKEN",), ("GITHUB_?OKEN",), ("AWS_*", "LANG"))
    for deny, allow in itertools.product(((), *small), repeat=2):
        for default in (True, False):
            env = Environment(allow=allow, deny=deny, pass_by_default=default)
            for name in NAMES:
                if _reference(deny, name):
                    want = False
                elif _reference(allow, name):
                    want = True
                elif not default:
                    want = False
                else:
                    want = not _reference(
                        tuple(p.upper() for p in env.secret_patterns), name.upper()
                    )
                assert env.passes(name) == want, (deny, allow, default, name)


def test_default_secrets_are_filtered() -> None:
    env = Environment()
    kept = env.apply({"GITHUB_TOKEN": "x", "github_token": "x", "AWS_REGION": "x", "PATH": "/p"})
    assert kept == {"PATH": "/p"}  # the twin: PATH passes, every secret-looking name does not
