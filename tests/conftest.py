"""Shared test fixtures: the kernel-feature gate and the "world".

`require_kernel(ok, reason)`: a kernel-enforcement test may skip only when the
kernel lacks a feature, and under LANDGATE_REQUIRE_KERNEL=1 (set by .ci/run)
that skip is a failure instead.

`world`: a fake $HOME with ~/.ssh/id_rsa and ~/.aws/credentials, a workspace
with src/ and .env files, and two loopback TCP servers (one the policies allow,
one they deny) that record every byte they receive.  Attack tests use it and
assert on what leaked (the secret's bytes, the server's log), never on an exit
code alone.  Everything is world-readable on purpose: when a test runs the
sandbox as `nobody`, a denial must come from landgate, not from file modes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRE_KERNEL = os.environ.get("LANDGATE_REQUIRE_KERNEL") == "1"
# vm-tests/ sets this under QEMU's TCG (software emulation: fork+exec ~75x slower): the tests'
# waits for a sandboxed program are multiplied by it, never shortened.
TIMEOUT_SCALE = max(1.0, float(os.environ.get("LANDGATE_TEST_TIMEOUT_SCALE", "1")))


def scaled(seconds: float) -> float:
    """A test's wait for a sandboxed program, scaled for a slow (emulated) machine."""
    return seconds * TIMEOUT_SCALE


def _landlock_gap_reported(right: str) -> bool:
    """Does `landgate doctor` on this host list `right` among the Landlock ABI's gaps?"""
    from sandbox.host.doctor import host_report

    gaps = host_report().to_dict()["landlock_abi_gaps"]
    return any(g["right"] == right for g in gaps)


def _doctor_states(text: str) -> bool:
    """Does `landgate doctor` on this host say `text` (a gap it states in a layer's detail)?"""
    from sandbox.host.doctor import host_report, render_doctor

    return text in render_doctor(host_report())


def require_kernel(
    ok: bool, reason: str, *, landlock_gap: str | None = None, doctor_states: str | None = None
) -> None:
    """Skip (or, under LANDGATE_REQUIRE_KERNEL=1, fail) when a kernel feature is absent.

    landlock_gap: the right in sandbox.policy.layers.LANDLOCK_GAPS this feature is;
    doctor_states: the gap as `landgate doctor` words it elsewhere (e.g. the filesystem
    layer's "kernel file denials are not recorded: Landlock ABI 2 has no audit logging").
    Under LANDGATE_REQUIRE_KERNEL=1 (CI, and every vm-tests/ kernel) the skip is then
    allowed only if the probe found it absent (`ok` is False) and landgate reports that gap."""
    if ok:
        return
    reported = (landlock_gap and _landlock_gap_reported(landlock_gap)) or (
        doctor_states and _doctor_states(doctor_states)
    )
    if REQUIRE_KERNEL and not reported:
        pytest.fail(f"kernel feature required by LANDGATE_REQUIRE_KERNEL=1 is missing: {reason}")
    stated = landlock_gap or doctor_states
    gap = f" (landgate reports the gap: {stated})" if reported else ""
    pytest.skip(f"kernel lacks a feature: {reason}{gap}")


@pytest.fixture
def landlock_and_notify() -> None:
    """For a test module that runs real sessions: Landlock and seccomp user notification."""
    from sandbox.host.probe import probe_host

    h = probe_host()
    require_kernel(
        h.landlock_abi >= 1 and h.seccomp_notify, "Landlock and seccomp user notification"
    )


def require_root() -> None:
    require_kernel(os.geteuid() == 0, "this test needs root (namespaces, nftables)")


@pytest.fixture(autouse=True, scope="session")
def private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test writes its audit trail under a private $XDG_STATE_HOME.

    Without it, tests that run the sandbox with the default trail wrote to the real
    ~/.local/state/landgate/audit of whoever ran the suite (root's, in CI), and a format
    change there moved the user's own trail aside.  A test that needs another location
    still sets XDG_STATE_HOME or passes an audit directory itself.
    $XDG_CACHE_HOME likewise: `landgate run` and `landgate hook` keep their policy cache
    there (sandbox.policy.diskcache), not in the real ~/.cache/landgate.  And
    $XDG_CONFIG_HOME: the key directory (checkpoint key, one witness per trail directory)
    lives there; the suite left thousands of witnesses in root's ~/.config/landgate, which
    every later session's launch then looked at (the key directory's identity set)."""
    names = ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")
    saved = {k: os.environ.get(k) for k in names}
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    try:
        yield
    finally:
        for k, before in saved.items():
            if before is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = before


TUN = "/dev/net/tun"


@contextmanager
def tun_mode(mode: int) -> Iterator[None]:
    """/dev/net/tun at `mode` for the duration; the original mode is restored afterwards,
    also when the test fails.  A fresh Debian machine has the node 0600 root until udev
    makes it 0666; the tests set what they need instead of depending on the machine."""
    require_root()
    try:
        before = os.stat(TUN).st_mode & 0o7777
    except FileNotFoundError:
        require_kernel(False, f"{TUN} (the tun driver)")
        raise  # not reached: require_kernel skips or fails
    os.chmod(TUN, mode)
    try:
        yield
    finally:
        os.chmod(TUN, before)


@pytest.fixture
def tun_rw() -> Iterator[None]:
    """/dev/net/tun 0666, as udev leaves it on a normal Debian host."""
    with tun_mode(0o666):
        yield


@pytest.fixture
def tun_root_only() -> Iterator[None]:
    """/dev/net/tun 0600 root, as a fresh machine (or a hardened host) has it."""
    with tun_mode(0o600):
        yield


class RecordingServer:
    """A loopback TCP server that accepts connections and records what it receives."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.received = bytearray()
        self.connections = 0
        self.failure: OSError | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # A blocking accept: close() wakes it with shutdown() (accept then fails with
        # EINVAL) and joins this thread before it closes the socket, so the descriptor is
        # never closed, or reused by another file, under an accept in progress.
        while True:
            try:
                conn, _ = self.sock.accept()
            except ConnectionAbortedError:
                continue  # a client gone before its accept: not the server's failure
            except OSError as exc:
                if not self._stop.is_set():
                    # A server that stopped accepting would make "nothing reached the
                    # denied server" pass by itself: close() raises it instead.
                    self.failure = exc
                return
            if self._stop.is_set():
                conn.close()
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            conn.sendall(b"hello\n")
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                with self._lock:
                    self.received += data
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        """Wake the accepting thread, wait for it, then close the socket (in that order:
        closing first would pull the descriptor from under its accept)."""
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not listening any more: the thread has returned or is returning
        self._thread.join(timeout=scaled(30))
        if self._thread.is_alive():
            raise RuntimeError(f"RecordingServer on port {self.port}: accept thread did not stop")
        self.sock.close()
        if self.failure is not None:
            raise RuntimeError(
                f"RecordingServer on port {self.port}: accept failed: {self.failure}"
            )


@dataclass
class World:
    root: Path
    home: Path
    workspace: Path
    ssh_key: Path
    aws_credentials: Path
    dotenv: Path
    nested_dotenv: Path
    app_source: Path
    secret: bytes  # appears in every secret file; must never leak
    allowed_server: RecordingServer
    denied_server: RecordingServer
    env: dict[str, str] = field(default_factory=dict)

    def write_policy(self, text: str, name: str = "policy.yaml") -> Path:
        """Write a policy into the workspace root's parent (outside the workspace)."""
        path = self.root / name
        path.write_text(text)
        path.chmod(0o644)
        return path


def _make_world(root: Path) -> World:
    token = secrets.token_hex(8)
    secret = f"LANDGATE-SECRET-{token}".encode()
    home = root / "home"
    ws = root / "workspace"
    for d in (home / ".ssh", home / ".aws", ws / "src", ws / "pkg" / "nested"):
        d.mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_bytes(
        b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + secret + b"\n"
    )
    (home / ".aws" / "credentials").write_bytes(
        b"[default]\naws_secret_access_key=" + secret + b"\n"
    )
    (home / ".bashrc").write_text("# fake bashrc\n")
    (ws / ".env").write_bytes(b"API_KEY=" + secret + b"\n")
    (ws / "pkg" / "nested" / ".env").write_bytes(b"NESTED_KEY=" + secret + b"\n")
    (ws / "src" / "app.ts").write_text("export const answer = 42;\n")
    (ws / "README.md").write_text("# demo workspace\n")
    (ws / "package.json").write_text('{"name": "demo", "scripts": {"test": "true"}}\n')
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    allowed = RecordingServer()
    denied = RecordingServer()
    env = {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "LANG": "C.UTF-8",
    }
    return World(
        root=root,
        home=home,
        workspace=ws,
        ssh_key=home / ".ssh" / "id_rsa",
        aws_credentials=home / ".aws" / "credentials",
        dotenv=ws / ".env",
        nested_dotenv=ws / "pkg" / "nested" / ".env",
        app_source=ws / "src" / "app.ts",
        secret=secret,
        allowed_server=allowed,
        denied_server=denied,
        env=env,
    )


@pytest.fixture
def world() -> Iterator[World]:
    # Not tmp_path: pytest's base directory is 0700 root, which `nobody` cannot enter.
    root = Path(tempfile.mkdtemp(prefix="landgate-world-", dir="/tmp"))
    os.chmod(root, 0o755)
    w = _make_world(root)
    try:
        yield w
    finally:
        w.allowed_server.close()
        w.denied_server.close()
        shutil.rmtree(root, ignore_errors=True)
