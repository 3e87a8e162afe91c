"""Table-driven pattern semantics (DESIGN §3): every form with a matching and a
non-matching twin."""

from __future__ import annotations

import pytest

from sandbox.policy import (
    match_command,
    match_destination,
    match_path,
    parse_command_pattern,
    parse_destination,
    parse_path_pattern,
)
from sandbox.policy.destinations import parse_target
from sandbox.policy.patterns import normalize_path

WS, HOME = "/ws", "/home/u"

# (pattern, matching path, non-matching twin)
PATH_CASES = [
    ("/etc/hosts", "/etc/hosts", "/etc/hostsx"),
    ("/etc/", "/etc/ssl/certs/a.pem", "/etcetera/x"),
    ("/etc/", "/etc", "/et"),
    ("~/.ssh/", "/home/u/.ssh/id_rsa", "/home/u/.sshx/id_rsa"),
    ("~/.netrc", "/home/u/.netrc", "/home/u/sub/.netrc"),
    ("./package.json", "/ws/package.json", "/ws/sub/package.json"),
    ("./src/**", "/ws/src/a/b/c.ts", "/ws/srcx/a.ts"),
    ("./src/**", "/ws/src", "/ws/other"),
    ("./src/*", "/ws/src/a.ts", "/ws/src/a/b.ts"),
    ("./src/*.ts", "/ws/src/app.ts", "/ws/src/app.js"),
    ("./a/**/b", "/ws/a/x/y/b", "/ws/a/x/yb"),
    ("./a/**/b", "/ws/a/b", "/ws/ab"),
    ("./", "/ws/deep/file", "/wsx/file"),
    (".env", "/ws/pkg/nested/.env", "/ws/.envrc"),
    (".env", "/.env", "/ws/env"),
    ("**/.env", "/ws/pkg/.env", "/ws/pkg/x.env"),
    ("**/.env.*", "/ws/.env.local", "/ws/.env"),
    ("*.pem", "/home/u/certs/key.pem", "/home/u/certs/key.pem.bak"),
    ("**/id_rsa*", "/home/u/.ssh/id_rsa.pub", "/home/u/.ssh/my_id_rsa"),
    ("node_modules/", "/ws/a/node_modules/x/y.js", "/ws/a/node_modules_x/y.js"),
    ("node_modules/**", "/ws/node_modules/x", "/ws/nodemodules/x"),
    ("src/*.ts", "/ws/src/a.ts", "/ws/src/d/a.ts"),
    ("[ab].txt", "/x/a.txt", "/x/c.txt"),
    ("[!ab].txt", "/x/c.txt", "/x/a.txt"),
    ("file?.log", "/x/file1.log", "/x/file12.log"),
    ("\\*literal", "/x/*literal", "/x/aliteral"),
    ("/", "/anything/at/all", ""),
]


@pytest.mark.parametrize("pattern,yes,no", PATH_CASES)
def test_path_pattern_twins(pattern: str, yes: str, no: str) -> None:
    p = parse_path_pattern(pattern, workspace=WS, home=HOME)
    assert match_path(p, yes), f"{pattern} should match {yes}"
    if no:
        assert not match_path(p, no), f"{pattern} should not match {no}"


def test_star_stays_within_a_component_and_double_star_crosses() -> None:
    one = parse_path_pattern("/data/*", workspace=WS, home=HOME)
    two = parse_path_pattern("/data/**", workspace=WS, home=HOME)
    assert match_path(one, "/data/a") and not match_path(one, "/data/a/b")
    assert match_path(two, "/data/a") and match_path(two, "/data/a/b")


def test_safeclaw_leading_slash_dir_means_any_depth_only_in_safeclaw_format() -> None:
    sc = parse_path_pattern("/.ssh/", workspace=WS, home=HOME, safeclaw=True)
    native = parse_path_pattern("/.ssh/", workspace=WS, home=HOME)
    assert match_path(sc, "/home/u/.ssh/id_rsa") and match_path(sc, "/ws/.ssh")
    assert not match_path(sc, "/home/u/.sshd/x")
    assert not match_path(native, "/home/u/.ssh/id_rsa")  # native: absolute /.ssh
    assert match_path(native, "/.ssh/id_rsa")
    # Multi-component and non-dot patterns keep their absolute meaning even in SafeClaw files.
    assert (
        parse_path_pattern("/etc/", workspace=WS, home=HOME, safeclaw=True).directory is not False
    )
    assert parse_path_pattern("/etc/", workspace=WS, home=HOME, safeclaw=True).anchored


def test_path_pattern_base_is_the_literal_prefix() -> None:
    assert parse_path_pattern("./src/**", workspace=WS, home=HOME).base == "/ws/src"
    assert parse_path_pattern("~/.ssh/", workspace=WS, home=HOME).base == "/home/u/.ssh"
    assert parse_path_pattern("/a/*/b", workspace=WS, home=HOME).base == "/a"
    assert parse_path_pattern(".env", workspace=WS, home=HOME).base is None


@pytest.mark.parametrize(
    "bad", ["", "   ", "./a**", "/x/[ab", "~user/x", "a/../../x", "a\\", "/x/[]"]
)
def test_bad_path_patterns_are_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_path_pattern(bad, workspace=WS, home=HOME)


# (pattern, matching argv or line, non-matching twin)
COMMAND_CASES = [
    ("npm test", "npm test", "npm test --watch"),
    ("git diff*", "git diff --stat", "git status"),
    ("git status", ["/usr/bin/git", "status"], ["/usr/bin/git", "stash"]),
    ("curl*", "curl -s https://example.com/x?y=1", "wcurl x"),
    ("python3 -c *", ["python3", "-c", "print('a b')"], ["python3", "script.py"]),
    ("tsc --noEmit", "tsc  --noEmit", "tsc"),
    ("ls", "ls", "lsof"),
    ("[ *", "[ -f x ]", "test -f x"),
]


@pytest.mark.parametrize("pattern,yes,no", COMMAND_CASES)
def test_command_pattern_twins(pattern: str, yes: object, no: object) -> None:
    p = parse_command_pattern(pattern.replace("[ *", "\\[ *"))
    assert match_command(p, yes)  # type: ignore[arg-type]
    assert not match_command(p, no)  # type: ignore[arg-type]


def test_command_argv0_is_reduced_to_basename_but_path_patterns_match_the_resolved_exe() -> None:
    by_name = parse_command_pattern("git push*")
    assert match_command(by_name, ["/opt/git/bin/git", "push", "origin"])
    by_path = parse_command_pattern("/usr/bin/git *")
    assert match_command(by_path, ["git", "log"], resolved_exe="/usr/bin/git")
    assert not match_command(by_path, ["git", "log"], resolved_exe="/opt/evil/git")
    assert not match_command(by_path, ["git", "log"])  # no path known: cannot match a path pattern


def test_command_glob_star_crosses_spaces_and_slashes() -> None:
    curl = parse_command_pattern("curl*")
    assert match_command(curl, "curl -s https://x/y z")
    assert not match_command(curl, "xcurl -s")
    one = parse_path_pattern("/a/*", workspace=WS, home=HOME)
    assert match_path(one, "/a/b") and not match_path(one, "/a/b/c")


# (destination, matching target, non-matching twin)
NET_CASES = [
    ("api.openai.com", "api.openai.com:443", "api.openai.com.evil.net:443"),
    ("api.openai.com", "API.OpenAI.com", "openai.com"),
    ("*.npmjs.org:443", "registry.npmjs.org:443", "registry.npmjs.org:80"),
    ("*.npmjs.org", "a.b.npmjs.org:8080", "npmjs.org:443"),
    ("registry.npmjs.org:443", "registry.npmjs.org:443", "registry.npmjs.org"),
    ("example.com:*", "example.com:1", "example.org:1"),
    ("10.0.0.0/8", "10.1.2.3:22", "11.0.0.1:22"),
    ("10.0.0.0/8:443", "10.9.9.9:443", "10.9.9.9:444"),
    ("192.168.1.5", "192.168.1.5:80", "192.168.1.6:80"),
    ("fd00::/8", "[fd12::1]:443", "[fe80::1]:443"),
    ("[::1]:8080", "[::1]:8080", "[::1]:8081"),
    ("2001:db8::1", "2001:db8::1", "2001:db8::2"),
    ("localhost", "127.0.0.1:5432", "10.0.0.1:5432"),
    ("localhost:*", "127.8.9.10:11434", "192.168.0.1:11434"),
    ("localhost:*", "[::1]:11434", "[::2]:11434"),
    ("localhost:11434", "localhost:11434", "localhost:11435"),
    ("localhost", "[::ffff:127.0.0.1]:80", "[::ffff:10.0.0.1]:80"),
    ("*", "anything.example:9", "unix:/run/x.sock"),
    ("*:53", "8.8.8.8:53", "8.8.8.8:54"),
    ("unix:/run/user/*/bus", "unix:/run/user/1000/bus", "unix:/run/user/1000/x/bus"),
    ("unix:/tmp/**", "unix:/tmp/a/b.sock", "unix:/var/tmp/b.sock"),
    ("unix:@dbus-*", "unix:@dbus-abc", "unix:@other"),
]


@pytest.mark.parametrize("dest,yes,no", NET_CASES)
def test_destination_twins(dest: str, yes: str, no: str) -> None:
    d = parse_destination(dest)
    assert match_destination(d, yes), f"{dest} should match {yes}"
    assert not match_destination(d, no), f"{dest} should not match {no}"


def test_ip_target_matches_host_rules_through_dns_names() -> None:
    d = parse_destination("api.openai.com:443")
    assert match_destination(d, "162.159.140.245:443", names=("api.openai.com",))
    assert not match_destination(d, "162.159.140.245:443", names=("evil.example",))
    assert not match_destination(d, "162.159.140.245:443")
    wild = parse_destination("*.npmjs.org")
    assert match_destination(wild, "[2606:4700::1]:443", names=("registry.npmjs.org.",))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "10.0.0.1/8",
        "300.1.1.1",
        "host:0",
        "host:65536",
        "a..b",
        "*.",
        "[::1",
        "foo*bar.com",
        "unix:relative",
        "1.2.3",
        "host:abc",
        "[::1]x",
        "exa mple.com",
    ],
)
def test_bad_destinations_are_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_destination(bad)


def test_targets_normalise() -> None:
    assert parse_target("API.example.COM.:443").text == "api.example.com:443"
    assert parse_target("[::1]:80").text == "[::1]:80"
    assert parse_target("::1").text == "::1"
    assert parse_target("unix:/run//x/../y.sock").text == "unix:/run/y.sock"


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("/a/b/../c", "/a/c"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("//a//b/", "/a/b"),
        ("rel/./x", "/ws/rel/x"),
        ("~/x", "/home/u/x"),
        ("../x", "/x"),
    ],
)
def test_normalize_path(raw: str, expected: str) -> None:
    assert normalize_path(raw, base="/ws", home="/home/u") == expected
