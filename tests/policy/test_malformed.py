"""Malformed policies: each gives one clear `file:line:column: message`, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import cli

from sandbox.errors import LandgateError, PolicyError
from sandbox.policy import load_policy

from .helpers import HOME, REPO, WS

BLOCK = "version: 1\nactions:\n  - action: {action}\n    rules:\n      - {rule}\n"

# (name, content (str or bytes), expected line, a fragment the message must contain)
CASES: list[tuple[str, str | bytes, int, str]] = [
    ("yaml-syntax", "version: 1\nactions: [\n  {action: file_read\n", 4, "invalid YAML"),
    (
        "yaml-bad-indent",
        "version: 1\nactions:\n  - action: file_read\n   rules: []\n",
        4,
        "invalid YAML",
    ),
    ("yaml-tab", "version: 1\n\tmode: enforce\n", 2, "invalid YAML"),
    ("json-syntax", '{"action": "file_read", "rules": [}\n', 1, "invalid YAML"),
    ("json-trailing-garbage", '{"action": "network"} {"x": 1}\n', 1, "invalid YAML"),
    ("empty-file", "", 1, "empty policy"),
    ("scalar-document", "just a string\n", 1, "must be a mapping"),
    ("missing-version", "mode: enforce\n", 1, "version"),
    ("wrong-version", "version: 2\n", 1, "version must be 1"),
    ("version-string", "version: '1'\n", 1, "version must be 1"),
    ("unknown-top-key", "version: 1\nrulez: []\n", 2, "unknown key 'rulez'"),
    ("misspelled-top-key", "version: 1\nactons: []\n", 2, "did you mean 'actions'"),
    ("bad-mode", "version: 1\nmode: permissive\n", 2, "'permissive'"),
    ("actions-not-list", "version: 1\nactions: {action: file_read}\n", 2, "must be a list"),
    ("unknown-action", "version: 1\nactions:\n  - action: file_exec\n", 3, "'file_exec'"),
    ("block-not-mapping", "version: 1\nactions:\n  - file_read\n", 3, "must be a mapping"),
    (
        "block-unknown-key",
        "version: 1\nactions:\n  - action: network\n    default: deny\n",
        4,
        "unknown key 'default'",
    ),
    (
        "bad-default-effect",
        "version: 1\nactions:\n  - action: network\n    defaultEffect: block\n",
        4,
        "'block'",
    ),
    (
        "rules-not-list",
        "version: 1\nactions:\n  - action: network\n    rules: {}\n",
        4,
        "must be a list",
    ),
    (
        "unknown-effect",
        BLOCK.format(action="file_read", rule='{path: "a", effect: permit}'),
        5,
        "'permit'",
    ),
    ("missing-effect", BLOCK.format(action="file_read", rule='{path: "a"}'), 5, "missing 'effect'"),
    (
        "rule-key-mismatch",
        BLOCK.format(action="file_read", rule='{command: "ls", effect: allow}'),
        5,
        "'command' does not fit action file_read",
    ),
    (
        "rule-unknown-key",
        BLOCK.format(action="network", rule='{host: "x", effect: allow}'),
        5,
        "unknown key 'host'",
    ),
    (
        "rule-missing-pattern",
        BLOCK.format(action="network", rule="{effect: allow}"),
        5,
        "missing 'destination'",
    ),
    (
        "inherit-on-file-rule",
        BLOCK.format(action="file_read", rule="{path: a, effect: allow, inherit: false}"),
        5,
        "'inherit' applies only to shell_exec",
    ),
    (
        "inherit-not-bool",
        BLOCK.format(action="shell_exec", rule="{command: ls, effect: allow, inherit: maybe}"),
        5,
        "true or false",
    ),
    (
        "empty-path",
        BLOCK.format(action="file_read", rule='{path: "", effect: deny}'),
        5,
        "empty path pattern",
    ),
    (
        "path-not-string",
        BLOCK.format(action="file_read", rule="{path: [a, b], effect: deny}"),
        5,
        "must be a string",
    ),
    (
        "bad-glob-class",
        BLOCK.format(action="file_read", rule='{path: "/x/[ab", effect: deny}'),
        5,
        "unclosed character class",
    ),
    (
        "bad-glob-doublestar",
        BLOCK.format(action="file_write", rule='{path: "./a**/b", effect: deny}'),
        5,
        "'**' must be a whole path component",
    ),
    (
        "empty-command",
        BLOCK.format(action="shell_exec", rule='{command: "  ", effect: deny}'),
        5,
        "empty command pattern",
    ),
    (
        "bad-cidr",
        BLOCK.format(action="network", rule='{destination: "10.0.0.1/8", effect: allow}'),
        5,
        "bad CIDR '10.0.0.1/8'",
    ),
    (
        "bad-cidr-prefix",
        BLOCK.format(action="network", rule='{destination: "10.0.0.0/33", effect: allow}'),
        5,
        "bad CIDR",
    ),
    (
        "bad-port",
        BLOCK.format(action="network", rule='{destination: "example.com:70000", effect: allow}'),
        5,
        "port 70000",
    ),
    (
        "bad-host",
        BLOCK.format(action="network", rule='{destination: "exa_mple..com", effect: allow}'),
        5,
        "bad host name",
    ),
    (
        "bad-wildcard",
        BLOCK.format(action="network", rule='{destination: "api.*.com", effect: allow}'),
        5,
        "leading '*.'",
    ),
    (
        "duplicate-block",
        "version: 1\nactions:\n  - action: network\n  - action: network\n",
        4,
        "second network block",
    ),
    ("duplicate-key", "version: 1\nmode: enforce\nmode: simulate\n", 3, "duplicate key 'mode'"),
    ("unknown-profile", "version: 1\nextends: [corporate]\n", 2, "unknown profile 'corporate'"),
    ("extends-string", "version: 1\nextends: system\n", 2, "must be a list"),
    (
        "env-unknown-key",
        "version: 1\nenvironment:\n  passthrough: [A]\n",
        3,
        "unknown key 'passthrough'",
    ),
    (
        "env-conflict",
        "version: 1\nenvironment:\n  pass: [TOKEN]\n  deny: [TOKEN]\n",
        3,
        "both passed and denied",
    ),
    ("env-pass-and-allow", "version: 1\nenvironment:\n  pass: [A]\n  allow: [B]\n", 4, "same list"),
    (
        "env-bad-name",
        "version: 1\nenvironment:\n  set: {'BAD-NAME': x}\n",
        3,
        "not a variable name",
    ),
    (
        "enforcement-unknown-layer",
        "version: 1\nenforcement:\n  require: [landlock, apparmor]\n",
        3,
        "unknown layer 'apparmor'",
    ),
    ("bad-durability", "version: 1\nenforcement:\n  durability: eventually\n", 3, "'eventually'"),
    ("workspace-glob", "version: 1\nworkspace: ./src/*\n", 2, "not a glob"),
    ("custom-tag", "version: 1\nmode: !!python/object:os.system enforce\n", 2, "tagged"),
    (
        "alias-bomb",
        (
            "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\n"
            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: [*b, *b, *b, *b, *b, *b, *b, *b]\n"
        ),
        2,
        "anchors are not allowed",
    ),
    ("alias-only", "version: 1\nactions: *undefined\n", 2, "aliases are not allowed"),
    (
        "deeply-nested",
        "version: 1\ndescription: " + "[" * 5000 + "]" * 5000 + "\n",
        2,
        "nested deeper",
    ),
    (
        "deep-block-nesting",
        "version: 1\ncomment:\n" + "".join("  " * i + "- \n" for i in range(1, 60)),
        34,
        "nested deeper",
    ),
    (
        "deep-flow-over-lines",
        "version: 1\ndescription:\n" + "  [\n" * 5000 + "  ]\n" * 5000,
        34,
        "nested deeper",
    ),
    (
        "deep-compact-sequences",
        "version: 1\ndescription:\n  " + "- " * 1500 + "1\n",
        3,
        "nested deeper",
    ),
    ("not-utf8", b"version: 1\nmode: \xff\xfeenforce\n", 2, "not UTF-8"),
    ("binary-junk", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, 1, "binary data"),
    ("control-chars", "version: 1\nmode: \x07enforce\n", 2, "invalid character"),
    ("multi-document", "version: 1\n---\nversion: 1\n", 2, "invalid YAML"),
    ("safeclaw-missing-action", '[{"rules": []}]', 1, "missing 'action'"),
]


@pytest.mark.parametrize("name,content,line,fragment", CASES, ids=[c[0] for c in CASES])
def test_malformed_policy_gives_one_located_error(
    tmp_path: Path, name: str, content: str | bytes, line: int, fragment: str
) -> None:
    path = tmp_path / (name + (".json" if name.startswith(("json", "safeclaw")) else ".yaml"))
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(PolicyError) as exc:
        load_policy(path, cwd=WS, home=HOME)
    text = str(exc.value)
    first = text.splitlines()[0]
    assert re.match(rf"^{re.escape(str(path))}:{line}:\d+: ", first), first
    assert fragment in first, first
    assert "Traceback" not in text


DEEP = {
    "deeply-nested": "2:45",  # the 32nd `[` after the root mapping
    "deep-flow-over-lines": "34:3",
    "deep-compact-sequences": "3:65",
    "deep-block-nesting": "34:65",
}


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
@pytest.mark.parametrize("name", sorted(DEEP))
def test_nesting_depth_is_refused_by_landgate_on_either_composer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, libyaml: bool
) -> None:
    """The message and position are landgate's, whichever composer PyYAML offers: libyaml
    (whose own nesting limit must not fire first) or the pure-Python one."""
    import yaml

    from sandbox.policy import loader

    if libyaml and not yaml.__with_libyaml__:
        pytest.fail("PyYAML was installed without libyaml (the lock pins a wheel that has it)")
    monkeypatch.setattr(yaml, "__with_libyaml__", libyaml)
    loader._COMPOSED.clear()
    content = next(c for n, c, _, _ in CASES if n == name)
    assert isinstance(content, str)
    path = tmp_path / f"{name}.yaml"
    path.write_text(content)
    with pytest.raises(PolicyError) as exc:
        load_policy(path, cwd=WS, home=HOME)
    assert str(exc.value) == f"{path}:{DEEP[name]}: document nested deeper than 32 levels"


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def test_ten_megabyte_file_is_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"version: 1\n" + b"# padding padding padding\n" * (10 * 1024 * 1024 // 26))
    with pytest.raises(PolicyError) as exc:
        load_policy(path, cwd=WS)
    assert str(exc.value).startswith(f"{path}:1:1: file is 10.0 MiB")


def test_several_errors_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("version: 1\nmode: x\nworkspace: 3\n")
    with pytest.raises(PolicyError) as exc:
        load_policy(path, cwd=WS)
    lines = str(exc.value).splitlines()
    assert (
        len(lines) == 2 and lines[0].startswith(f"{path}:2:") and lines[1].startswith(f"{path}:3:")
    )


def test_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(LandgateError) as exc:
        load_policy(tmp_path / "nope.yaml")
    assert exc.value.exit_code == 1 and "nope.yaml" in str(exc.value)


CLI_CASES = [
    "yaml-syntax",
    "bad-cidr",
    "alias-bomb",
    "binary-junk",
    "unknown-action",
    "deeply-nested",
]


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_check_exits_1_with_one_line_and_no_traceback(tmp_path: Path, name: str) -> None:
    content, line, fragment = next((c, ln, f) for n, c, ln, f in CASES if n == name)
    path = tmp_path / f"{name}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    proc = cli.landgate("check", "--policy", str(path), cwd=REPO)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"{path}:{line}:") and fragment in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
