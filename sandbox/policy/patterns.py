"""Pattern parsing and matching: paths, command lines, network destinations.

Everything here is pure string/ipaddress work, shared by the evaluator, the
planner (which compiles the same patterns into kernel rules) and the
supervisor's table builder, so that every layer agrees on what a pattern
means (DESIGN §3).

Parsing (`parse_*`) raises `ValueError` with a one-line message; the loader
attaches the file, line and column.  Matching never raises on odd input.

Regexes are compiled once per distinct glob and cached (`_compiled`), so a
policy with 1,000 rules costs 1,000 regex compilations at load time and none
per decision.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sandbox.policy.model import CommandPattern, Destination, PathPattern

GLOB_CHARS = frozenset("*?[")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# localhost means the loopback as the user sees it: 127.0.0.0/8 and ::1
# (and ::ffff:127.0.0.0/104, how a dual-stack socket spells IPv4 loopback).
LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("127.0.0.0/8"),
    ipaddress.IPv6Network("::1/128"),
    ipaddress.IPv6Network("::ffff:127.0.0.0/104"),
)


# ---------------------------------------------------------------------------
# glob -> regex


def has_glob(text: str) -> bool:
    """True when `text` contains an unescaped glob character (* ? [)."""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in GLOB_CHARS:
            return True
        i += 1
    return False


def _translate_class(glob: str, i: int, *, path: bool) -> tuple[str, int]:
    """Translate the character class starting at glob[i] == '['; return (regex, next index)."""
    j = i + 1
    negate = False
    if j < len(glob) and glob[j] in "!^":
        negate = True
        j += 1
    start = j
    # A ']' right after '[' or '[!' is a literal member, as in fnmatch.
    if j < len(glob) and glob[j] == "]":
        j += 1
    while j < len(glob) and glob[j] != "]":
        j += 1
    if j >= len(glob):
        raise ValueError(f"unclosed character class '[' at offset {i} in {glob!r}")
    body = glob[start:j]
    if not body:
        raise ValueError(f"empty character class at offset {i} in {glob!r}")
    if path and "/" in body:
        raise ValueError(f"a character class cannot contain '/' in {glob!r}")
    # Escape regex metacharacters inside the class except the range dash.
    members = "".join("\\" + ch if ch in "\\^[]" else ch for ch in body)
    if negate:
        # Never let a negated class match the path separator.
        members += "/" if path else ""
        return f"[^{members}]", j + 1
    return f"[{members}]", j + 1


def _translate_fragment(glob: str, *, path: bool) -> str:
    """Translate a glob without `**` components into a regex fragment.

    In paths `*` and `?` stay within one component; in command lines they match
    anything (a command pattern `curl*` must cover `curl -s https://x/y`).
    """
    star = "[^/]*" if path else ".*"
    one = "[^/]" if path else "."
    out: list[str] = []
    i = 0
    n = len(glob)
    while i < n:
        c = glob[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError(f"trailing backslash in {glob!r}")
            out.append(re.escape(glob[i + 1]))
            i += 2
        elif c == "*":
            if path and i + 1 < n and glob[i + 1] == "*":
                raise ValueError(
                    f"'**' must be a whole path component (as in 'a/**/b') in {glob!r}"
                )
            while i < n and glob[i] == "*":  # `**` in a command pattern is just `*`
                i += 1
            out.append(star)
        elif c == "?":
            out.append(one)
            i += 1
        elif c == "[":
            frag, i = _translate_class(glob, i, path=path)
            out.append(frag)
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def glob_to_regex(
    glob: str, *, path: bool = True, directory: bool = False, anchored: bool = True
) -> str:
    """Translate a glob into a regex for `re.fullmatch`.

    path=True: `*`, `?` and classes stay within one component, a `**`
    component crosses any number of them (also zero: `a/**/b` matches `a/b`,
    `a/**` matches `a` itself and everything beneath).  `directory` adds "and
    everything beneath".  `anchored=False` lets the glob match the trailing
    components of a path at any depth.
    path=False (command lines): `*` matches anything, spaces and slashes too.
    Raises ValueError for a malformed glob.
    """
    if not path:
        return _translate_fragment(glob, path=False)
    if glob == "/" and anchored:
        return "/.*" if directory else "/"
    parts = glob.split("/")
    out: list[str] = []
    last = len(parts) - 1
    for i, comp in enumerate(parts):
        if comp == "**":
            if i == 0:
                # Only reachable for an unanchored glob after stripping; `**/x` = x at any depth.
                out.append("(?:[^/]*/)*" if i != last else ".*")
                continue
            out.append("(?:/.*)?" if i == last else "(?:/[^/]*)*")
            continue
        frag = _translate_fragment(comp, path=True)
        if i == 0:
            out.append(frag)
        elif i > 0 and parts[i - 1] == "**" and i - 1 == 0:
            out.append(frag)  # the leading `(?:[^/]*/)*` already ends with '/'
        else:
            out.append("/" + frag)
    body = "".join(out)
    if directory:
        body += "(?:/.*)?"
    if not anchored:
        body = "(?:.*/)?" + body
    return body


_REGEX_CACHE: dict[tuple[str, bool, bool, bool], re.Pattern[str]] = {}


def _compiled(glob: str, *, path: bool, directory: bool, anchored: bool) -> re.Pattern[str]:
    key = (glob, path, directory, anchored)
    rx = _REGEX_CACHE.get(key)
    if rx is None:
        # DOTALL: a file name or an argument may contain a newline; `*` must not stop there.
        rx = re.compile(
            glob_to_regex(glob, path=path, directory=directory, anchored=anchored), re.DOTALL
        )
        _REGEX_CACHE[key] = rx
    return rx


# ---------------------------------------------------------------------------
# paths


def normalize_path(path: str, *, base: str | None = None, home: str | None = None) -> str:
    """Make `path` absolute and collapse `.`, `..` and repeated slashes lexically.

    `~` / `~/x` expand against `home`; a relative path joins `base`.  `..` at
    the root stays at the root (as the kernel does), so a normalised path can
    never climb above `/`.  Symlinks are not resolved here: the caller passes
    the kernel-resolved path when it has one.  Idempotent.
    """
    if home is not None and (path == "~" or path.startswith("~/")):
        path = home + path[1:]
    if not path.startswith("/"):
        path = (base or "/").rstrip("/") + "/" + path
    norm = posixpath.normpath(path)
    # POSIX keeps a leading '//' as implementation-defined; Linux treats it as '/'.
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    return norm


# A SafeClaw pattern like `/.ssh/`: one dot-component between slashes.  In SafeClaw
# JSON this means "a directory of that name at any depth" (their README), while in
# native YAML a leading `/` always means an absolute path.
_SAFECLAW_ANY_DEPTH_DIR = re.compile(r"^/\.[^/*?\[\]\\]+/$")


def parse_path_pattern(
    raw: str, *, workspace: str, home: str, safeclaw: bool = False
) -> PathPattern:
    """Parse a path pattern (DESIGN §3).

    `/abs`, `~/home-relative`, `./workspace-relative` are anchored; a pattern
    with no `/`, one starting with `**/`, or any other relative pattern
    (`node_modules/**`, SafeClaw's `*/.env`) matches trailing components at any
    depth.  A trailing `/` means the directory and everything beneath it.
    With `safeclaw=True`, `/.name/` means a directory `.name` at any depth
    (SafeClaw's meaning of `/.ssh/`, `/.aws/`).
    Raises ValueError for an empty or malformed pattern.
    """
    if not isinstance(raw, str):
        raise ValueError(f"a path pattern must be a string, not {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise ValueError("empty path pattern")
    if "\x00" in text:
        raise ValueError(f"NUL character in path pattern {raw!r}")
    if safeclaw and _SAFECLAW_ANY_DEPTH_DIR.match(text):
        text = text[1:]  # "/.ssh/" -> ".ssh/", unanchored below
    directory = text.endswith("/")
    if text == "~" or text == ".":
        directory = True
        text += "/"
    if text.startswith("~") and not text.startswith("~/"):
        raise ValueError(f"'~user' paths are not supported, use '~/' or an absolute path: {raw!r}")
    anchored = True
    if text.startswith("/"):
        absolute = text
    elif text.startswith("~/"):
        absolute = home.rstrip("/") + text[1:]
    elif text.startswith(("./", "../")):
        absolute = workspace.rstrip("/") + "/" + text
    else:
        anchored = False
        absolute = text
    if anchored:
        # Collapse `..` and `.` lexically; keep glob characters as they are.
        glob = posixpath.normpath(absolute)
        if glob.startswith("//"):
            glob = "/" + glob.lstrip("/")
    else:
        glob = absolute.rstrip("/") if directory else absolute
        while glob.startswith("**/"):
            glob = glob[3:]
        glob = posixpath.normpath(glob) if glob not in ("", "**") else glob
        if glob.startswith(".."):
            raise ValueError(
                "a relative pattern cannot start with '..' (use './..' or an absolute path): "
                f"{raw!r}"
            )
        if glob in ("", "."):
            raise ValueError(f"path pattern matches nothing: {raw!r}")
    # Validate (and warm the cache) now so that a bad glob is a load-time error.
    _compiled(glob, path=True, directory=directory, anchored=anchored)
    base = None
    if anchored:
        comps = glob.split("/")
        lit: list[str] = []
        for comp in comps:
            if has_glob(comp):
                break
            lit.append(comp)
        base = "/".join(lit) or "/"
    return PathPattern(raw=raw, glob=glob, anchored=anchored, directory=directory, base=base)


def path_regex(pattern: PathPattern) -> re.Pattern[str]:
    """The compiled regex for a path pattern (cached)."""
    return _compiled(
        pattern.glob, path=True, directory=pattern.directory, anchored=pattern.anchored
    )


def component_regex(glob: str) -> re.Pattern[str]:
    """The compiled regex for one path component's glob (no `/`, no `**`), for fullmatch."""
    rx = _COMPONENT_CACHE.get(glob)
    if rx is None:
        rx = re.compile(_translate_fragment(glob, path=True), re.DOTALL)
        _COMPONENT_CACHE[glob] = rx
    return rx


_COMPONENT_CACHE: dict[str, re.Pattern[str]] = {}


def match_path(pattern: PathPattern, path: str) -> bool:
    """Does `path` (absolute, normalised) match `pattern`?"""
    return path_regex(pattern).fullmatch(path) is not None


# ---------------------------------------------------------------------------
# commands


def parse_command_pattern(raw: str) -> CommandPattern:
    """Parse a command pattern: a glob over the command line (argv joined by spaces).

    Runs of whitespace collapse to one space, as they do when argv is joined.
    Raises ValueError for an empty or malformed pattern.
    """
    if not isinstance(raw, str):
        raise ValueError(f"a command pattern must be a string, not {type(raw).__name__}")
    glob = " ".join(raw.split())
    if not glob:
        raise ValueError("empty command pattern")
    if "\x00" in glob:
        raise ValueError(f"NUL character in command pattern {raw!r}")
    _compiled(glob, path=False, directory=False, anchored=True)
    program = glob.split(" ", 1)[0]
    return CommandPattern(raw=raw, glob=glob, program=program)


def command_regex(pattern: CommandPattern) -> re.Pattern[str]:
    return _compiled(pattern.glob, path=False, directory=False, anchored=True)


def split_command(target: str | Sequence[str]) -> list[str]:
    """argv from a command line string (shell-like quoting) or an argv list."""
    if isinstance(target, str):
        try:
            return shlex.split(target)
        except ValueError:
            # Unbalanced quotes: judge the words as written rather than fail.
            return target.split()
    return [str(a) for a in target]


def command_line(argv: Sequence[str]) -> str:
    """The line commands are matched against: argv joined by single spaces, argv[0] its basename."""
    if not argv:
        return ""
    first = posixpath.basename(argv[0]) or argv[0]
    return " ".join([first, *argv[1:]])


def match_command(
    pattern: CommandPattern, argv_or_line: str | Sequence[str], resolved_exe: str | None = None
) -> bool:
    """Does the command match `pattern`?

    A pattern whose first word contains `/` names the executable by path: it is
    matched against the line with argv[0] replaced by `resolved_exe` (or by
    argv[0] itself when that is a path).  Otherwise argv[0] is reduced to its
    basename.
    """
    argv = split_command(argv_or_line)
    if not argv:
        return False
    rx = command_regex(pattern)
    if "/" in pattern.program:
        exe = resolved_exe or (argv[0] if "/" in argv[0] else None)
        if exe is None:
            return False
        return rx.fullmatch(" ".join([exe, *argv[1:]])) is not None
    return rx.fullmatch(command_line(argv)) is not None


# ---------------------------------------------------------------------------
# network

_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def _parse_port(text: str, raw: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit():
        raise ValueError(f"bad port {text!r} in destination {raw!r} (a number 1-65535 or '*')")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range 1-65535 in destination {raw!r}")
    return port


def _check_host(host: str, raw: str) -> str:
    host = host.lower().rstrip(".")
    if not host or len(host) > 253:
        raise ValueError(f"bad host name in destination {raw!r}")
    for label in host.split("."):
        if not _HOST_LABEL.match(label):
            raise ValueError(f"bad host name {host!r} in destination {raw!r}")
    return host


def _split_host_port(text: str, raw: str) -> tuple[str, str | None, bool]:
    """Split 'host[:port]' / '[v6][:port]' / bare IPv6; return (host, port text, bracketed)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in destination {raw!r}")
        host = text[1:end]
        rest = text[end + 1 :]
        if rest == "":
            return host, None, True
        if not rest.startswith(":"):
            raise ValueError(f"expected ':port' after ']' in destination {raw!r}")
        return host, rest[1:], True
    if text.count(":") > 1:
        return text, None, False  # a bare IPv6 address or network, no port
    if ":" in text:
        host, port = text.split(":", 1)
        return host, port, False
    return text, None, False


def parse_destination(raw: str) -> Destination:
    """Parse a network destination pattern (DESIGN §3).

    host, host:port, *.domain[:port] (subdomains at any depth, not the domain
    itself), IPv4/IPv6, CIDR, [v6]:port, localhost[:port], `*`[:port] (anything),
    unix:/path/glob (also unix:@abstract).  A port of `*` or none means any port.
    Raises ValueError for a malformed destination.
    """
    if not isinstance(raw, str):
        raise ValueError(f"a destination must be a string, not {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise ValueError("empty destination")
    if text.startswith("unix:"):
        glob = text[5:]
        if not glob.startswith(("/", "@")):
            raise ValueError(
                f"a unix socket destination needs an absolute path or '@name': {raw!r}"
            )
        _compiled(glob, path=True, directory=False, anchored=True)
        return Destination(raw=raw, kind="unix", unix_glob=glob)
    host, port_text, bracketed = _split_host_port(text, raw)
    port = _parse_port(port_text, raw) if port_text is not None else None
    if not host:
        raise ValueError(f"missing host in destination {raw!r}")
    low = host.lower()
    if low == "*":
        return Destination(raw=raw, kind="any", port=port)
    if low in ("localhost", "localhost."):
        return Destination(raw=raw, kind="localhost", host="localhost", port=port)
    if "/" in host:
        try:
            net = ipaddress.ip_network(host, strict=True)
        except ValueError as exc:
            raise ValueError(f"bad CIDR {host!r} in destination {raw!r}: {exc}") from None
        return Destination(raw=raw, kind="cidr", network=net, port=port)
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if addr is not None:
        return Destination(raw=raw, kind="ip", network=ipaddress.ip_network(addr), port=port)
    if bracketed or ":" in host:
        raise ValueError(f"bad IPv6 address {host!r} in destination {raw!r}")
    if re.fullmatch(r"[0-9.]+", host):
        raise ValueError(f"bad IPv4 address {host!r} in destination {raw!r}")
    if low.startswith("*."):
        rest = _check_host(low[2:], raw)
        return Destination(raw=raw, kind="wildcard", host="*." + rest, port=port)
    if "*" in low or "?" in low or "[" in low:
        raise ValueError(f"a host wildcard must be a leading '*.' (as in '*.npmjs.org'): {raw!r}")
    return Destination(raw=raw, kind="host", host=_check_host(low, raw), port=port)


@dataclass(frozen=True, slots=True)
class NetTarget:
    """A parsed network target: what `decide` and `match_destination` compare against."""

    text: str  # normalised: host[:port], [v6]:port, unix:/path
    host: str | None = None  # lower-cased name, when the target is a name
    ip: IPAddress | None = None
    port: int | None = None
    unix: str | None = None


@lru_cache(maxsize=4096)
def parse_target(target: str) -> NetTarget:
    """Parse a network target: host, host:port, ip, ip:port, [v6]:port, unix:/path.

    Raises ValueError for an unparseable target.
    """
    text = target.strip()
    if not text:
        raise ValueError("empty network target")
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise ValueError("empty unix socket path")
        if path.startswith("/"):
            path = normalize_path(path)
        return NetTarget(text="unix:" + path, unix=path)
    host, port_text, _ = _split_host_port(text, text)
    port = None
    if port_text is not None and port_text != "":
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError(f"bad port {port_text!r} in network target {target!r}")
        port = int(port_text)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        # IPv4-mapped IPv6 (how a dual-stack socket reports an IPv4 peer) judged as IPv4.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        shown = f"[{ip}]" if ip.version == 6 and port is not None else str(ip)
        return NetTarget(text=shown + (f":{port}" if port is not None else ""), ip=ip, port=port)
    name = host.lower().rstrip(".")
    if not name or any(c.isspace() or c in "/[]@" for c in name):
        raise ValueError(f"bad host in network target {target!r}")
    return NetTarget(text=name + (f":{port}" if port is not None else ""), host=name, port=port)


def _host_matches(dest: Destination, name: str) -> bool:
    name = name.lower().rstrip(".")
    if dest.kind == "host":
        return name == dest.host
    if dest.kind == "wildcard":
        assert dest.host is not None
        return name.endswith(dest.host[1:])  # "*.npmjs.org" -> ".npmjs.org"
    if dest.kind == "localhost":
        return name == "localhost" or name.endswith(".localhost")
    return False


def _is_loopback(ip: IPAddress) -> bool:
    return any(ip in net for net in LOOPBACK_NETWORKS if net.version == ip.version)


def port_matches(dest: Destination, port: int | None) -> bool:
    """A destination without a port covers every port; with one, the target must name it."""
    return dest.port is None or dest.port == port


def match_destination(
    dest: Destination, target: str | NetTarget, names: Sequence[str] = ()
) -> bool:
    """Does the network `target` match `dest`?

    An IP target is also matched by host rules through `names` (the host names
    the sandbox's DNS mapped to that IP).  A target without a port is matched
    only by destinations that cover every port.
    """
    if isinstance(target, str):
        try:
            target = parse_target(target)
        except ValueError:
            return False
    if dest.kind == "unix" or target.unix is not None:
        if dest.kind != "unix" or target.unix is None or dest.unix_glob is None:
            return False
        return (
            _compiled(dest.unix_glob, path=True, directory=False, anchored=True).fullmatch(
                target.unix
            )
            is not None
        )
    if not port_matches(dest, target.port):
        return False
    if dest.kind == "any":
        return True
    if target.ip is not None:
        ip = target.ip
        if dest.kind in ("ip", "cidr"):
            assert dest.network is not None
            return ip.version == dest.network.version and ip in dest.network
        if dest.kind == "localhost":
            return _is_loopback(ip) or any(_host_matches(dest, n) for n in names)
        return any(_host_matches(dest, n) for n in names)
    assert target.host is not None
    if dest.kind in ("ip", "cidr"):
        # A name matches an address rule only through `localhost` (the loopback as the
        # user sees it); other names are judged by the IPs they resolve to at connect time.
        if target.host == "localhost":
            assert dest.network is not None
            return any(
                net.version == dest.network.version and net.subnet_of(dest.network)  # type: ignore[arg-type]
                for net in (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
            )
        return False
    return _host_matches(dest, target.host)
