"""Network destinations and targets (DESIGN §3): parsing and matching.

`host`, `host:port`, `*.domain`, IP, CIDR, `[v6]:port`, `localhost`,
`unix:/path/glob`.  A unix glob is run by the C glob interpreter, like every
other glob (sandbox.policy.globs).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache

from sandbox.policy.globs import compile_glob
from sandbox.policy.model import Destination
from sandbox.policy.patterns import _glob_match, normalize_path
from sandbox.record import Record

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# localhost means the loopback as the user sees it: 127.0.0.0/8 and ::1
# (and ::ffff:127.0.0.0/104, how a dual-stack socket spells IPv4 loopback).
LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("127.0.0.0/8"),
    ipaddress.IPv6Network("::1/128"),
    ipaddress.IPv6Network("::ffff:127.0.0.0/104"),
)


# A pattern, compiled (and cached by re) at its first use: not at import on every launch.
_HOST_LABEL = r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$"


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
        if not re.match(_HOST_LABEL, label):
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


_SCHEME_PORTS = {"https": 443, "http": 80, "wss": 443, "ws": 80, "ftp": 21, "ssh": 22}


def _unurl(scheme: str, rest: str) -> str:
    """`https://api.openai.com/v1` -> `api.openai.com:443` (the destination meant)."""
    hostport = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if not hostport:
        return "host:port"
    has_port = hostport.rsplit(":", 1)[-1].isdigit() and (
        not hostport.startswith("[") or "]:" in hostport
    )
    port = _SCHEME_PORTS.get(scheme.lower())
    if has_port or port is None:
        return hostport
    return f"{hostport}:{port}"


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
        compile_glob(glob, path=True)
        return Destination(raw=raw, kind="unix", unix_glob=glob)
    scheme, sep, rest = text.partition("://")
    if sep and scheme and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"a destination is not a URL: drop the scheme: use {_unurl(scheme, rest)}")
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


class NetTarget(Record):
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
        return _glob_match(dest.unix_glob, target.unix, path=True)
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
