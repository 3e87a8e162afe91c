"""The init program (csrc/lginit.c) runs from the clone's first execve (issue 19).

lg_spawn clones with CLONE_VM|CLONE_VFORK and the namespace flags; the clone execs
sandbox/_lginit at once, which reads the spec from a sealed memfd (csrc/launch_wire.c).
These tests hold the init program to its contract as a trust boundary (a malformed spec
is ERROR("spec: ...") and exit 125: no crash, no hang, nothing run), check that no
process is left unreaped on success and on each failure path, and that the ambient
capabilities the clone raises in a user namespace reach init only, never the agent.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
import subprocess
import time

import pytest
from conftest import require_kernel, scaled
from helpers.procs import child_pids

from launch.lg_helpers import PY, ROOT, landgate, world_policy
from launch.test_run import run_inprocess
from sandbox.errors import LaunchError
from sandbox.host.probe import probe_host
from sandbox.launch import spawn as spawn_mod
from sandbox.launch.spawn import SpawnSpec
from sandbox.record import replace

MSG = struct.Struct("iii48s")  # struct lg_msg (csrc/launch_wire.h)
LG_MSG_PID, LG_MSG_LISTENER, LG_MSG_ERROR, LG_MSG_STATUS = 1, 2, 3, 5
HDR = 184  # sizeof(struct lg_wire_hdr)
SIZE_AT = 8  # its `size` field
LIST_AT = 88  # its first struct lg_wire_list
LISTS = [
    *("path", "argv", "envp", "cwd", "dev_paths", "bind_src", "bind_dst", "ll_paths"),
    *("ll_access", "ll_ports", "ll_port_access", "filter"),
]
SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW


def encode(spec: SpawnSpec) -> bytes:
    from sandbox._launch import ffi, lib

    keep: list[object] = []
    s = spawn_mod.c_spec(spec, keep)
    size = lib.lg_wire_encode(s, os.getpid(), ffi.NULL, 0)
    assert size > HDR
    buf = ffi.new("unsigned char[]", size)
    assert lib.lg_wire_encode(s, os.getpid(), buf, size) == size
    return bytes(ffi.buffer(buf, size))


def rich_spec() -> SpawnSpec:
    """Every list of the wire form non-empty (never run: only decoded)."""
    return SpawnSpec(
        path="/bin/true",
        argv=("true", "a"),
        env=(("A", "1"), ("B", "2")),
        cwd="/",
        dev_paths=("/dev/null", "/dev/zero"),
        binds=(("/etc/hostname", "/etc/hostname"),),
        landlock_abi=1,
        ll_handled_fs=1,
        ll_rules=(("/usr", 1), ("/etc", 1)),
        ll_ports=((443, 2),),
        filter=((6, 0, 0, 0x7FFF0000),) * 3,
    )


def plain_spec(tmp) -> SpawnSpec:
    """A spec the init program can run in the test's own namespaces: no namespace, no
    Landlock, no filter; the agent writes a marker file."""
    return SpawnSpec(
        path="/bin/sh",
        argv=("sh", "-c", f": > {tmp}/agent-ran"),
        env=(("PATH", "/usr/bin:/bin"),),
        cwd=str(tmp),
    )


def patch(blob: bytes, at: int, fmt: str, *values: int) -> bytes:
    b = bytearray(blob)
    struct.pack_into(fmt, b, at, *values)
    return bytes(b)


def resize(blob: bytes) -> bytes:
    """The blob with its size field telling the truth about its (new) length."""
    return patch(blob, SIZE_AT, "I", len(blob))


def list_at(name: str) -> int:
    return LIST_AT + 8 * LISTS.index(name)


def run_init(blob: bytes, *, seal: bool = True, sparse: int = 0, go: bool = False):
    """`_lginit MEMFD SOCK GO_RD` as lg_spawn's clone runs it; (exit code, messages)."""
    fd = os.memfd_create("spec", os.MFD_ALLOW_SEALING)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    go_r, go_w = os.pipe()
    try:
        os.write(fd, blob)
        if sparse:
            os.ftruncate(fd, sparse)
        if seal:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
        argv = [spawn_mod.init_helper(), str(fd), str(theirs.fileno()), str(go_r)]
        proc = subprocess.Popen(argv, pass_fds=(fd, theirs.fileno(), go_r))
    finally:
        os.close(fd)
        theirs.close()
        os.close(go_r)
    if go:
        os.write(go_w, b"g")
    os.close(go_w)
    rc = proc.wait(timeout=scaled(10))  # a hang fails here
    ours.setblocking(False)
    msgs = []
    while True:
        try:
            data = ours.recv(MSG.size)
        except BlockingIOError:
            break
        if not data:
            break
        kind, err, value, step = MSG.unpack(data)
        msgs.append((kind, err, value, step.split(b"\0", 1)[0].decode()))
    ours.close()
    return rc, msgs


def assert_refused(rc: int, msgs: list, step: str) -> None:
    assert rc == 125, (rc, msgs)  # not a signal (a negative code), not the agent's
    assert [m[0] for m in msgs] == [LG_MSG_ERROR], msgs  # nothing forked
    assert msgs[0][3].startswith("spec: "), msgs
    assert step in msgs[0][3], msgs
    assert msgs[0][1] > 0, msgs


def test_the_intact_spec_runs(tmp_path):
    """The twin of every refusal below: the same program and channels with the blob as
    lg_wire_encode wrote it: the agent reports, waits for go, runs; init reports 0."""
    rc, msgs = run_init(encode(plain_spec(tmp_path)), go=True)
    assert rc == 0, msgs
    assert [m[0] for m in msgs] == [LG_MSG_PID, LG_MSG_LISTENER, LG_MSG_STATUS], msgs
    assert msgs[-1][2] == 0
    assert (tmp_path / "agent-ran").exists()


def test_every_truncation_is_refused():
    """Cut anywhere, with the size field left (the memfd is shorter than it says) and
    with it rewritten to the cut (the lists then reach past the end)."""
    blob = encode(rich_spec())
    assert resize(blob) == blob
    for cut in range(len(blob)):
        rc, msgs = run_init(blob[:cut])
        assert_refused(rc, msgs, "")
        if cut >= HDR:
            rc, msgs = run_init(resize(blob[:cut]))
            assert_refused(rc, msgs, "")


def _corruptions() -> dict[str, tuple[bytes, str, dict]]:
    blob = encode(rich_spec())
    (end,) = struct.unpack_from("I", blob, SIZE_AT)
    cases: dict[str, tuple[bytes, str, dict]] = {
        "magic": (patch(blob, 0, "I", 0x12345678), "not a landgate spec", {}),
        "version": (patch(blob, 4, "I", 2), "not a landgate spec", {}),
        "size larger": (patch(blob, SIZE_AT, "I", end + 8), "size does not match", {}),
        "unsealed": (blob, "not sealed", {"seal": False}),
        "over the bound": (blob, "size out of range", {"sparse": (16 << 20) + 8}),
        "ns flags": (patch(blob, 16, "i", 1 << 8), "out of range", {}),
        "netns fd": (patch(blob, 36, "i", -5), "out of range", {}),
        "paired": (patch(blob, list_at("bind_dst") + 4, "I", 0), "paired lists", {}),
        "two paths": (patch(blob, list_at("path") + 4, "I", 2), "one string", {}),
        "devices": (patch(blob, list_at("dev_paths") + 4, "I", 65), "too many", {}),
        "insns": (patch(blob, list_at("filter") + 4, "I", 4097), "too many", {}),
        # the unterminated string: a cwd pointing at bytes with no NUL before the end
        "unterminated": (
            patch(resize(blob + b"/abc"), list_at("cwd"), "I", end),
            "cwd unterminated",
            {},
        ),
    }
    for name in LISTS:
        at = list_at(name)
        cases[f"{name} offset"] = (patch(blob, at, "I", end + 1), f"{name} out of bounds", {})
        cases[f"{name} count"] = (
            patch(blob, at + 4, "I", 0xFFFFFFFF),
            f"{name} out of bounds" if name in ("argv", "envp") else "",
            {},
        )
        cases[f"{name} in the header"] = (patch(blob, at, "I", 8), f"{name} out of bounds", {})
    (off,) = struct.unpack_from("I", blob, list_at("ll_access"))
    cases["unaligned words"] = (
        patch(blob, list_at("ll_access"), "I", off + 4),
        "ll_access out of bounds",
        {},
    )
    return cases


CORRUPTIONS = _corruptions()


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corrupted_spec_is_refused(name):
    """Each check of the decoder, hit alone.  Fails (a crash: a negative exit code, or a
    wild read) with the check it names removed."""
    blob, step, kw = CORRUPTIONS[name]
    rc, msgs = run_init(blob, **kw)
    assert_refused(rc, msgs, step)


def test_a_missing_argument_is_exit_125_without_a_word():
    proc = subprocess.run([spawn_mod.init_helper(), "3"], timeout=scaled(10))
    assert proc.returncode == 125


# ---- through lg_spawn: the error reaches the caller, nothing is left behind ----------


def test_a_spec_refused_by_init_is_a_launch_error_and_init_is_reaped(tmp_path):
    """lg_spawn encodes what it is given; the init program's refusal (here: more device
    paths than its /dev step takes) comes back as the launch error, and init is reaped."""
    before = child_pids()
    spec = replace(plain_spec(tmp_path), dev_paths=tuple(f"/dev/d{i}" for i in range(65)))
    with pytest.raises(LaunchError, match=r"^spec: too many device paths or insns: "):
        spawn_mod.spawn(spec)
    assert child_pids() == before
    assert not (tmp_path / "agent-ran").exists()


def test_the_twin_spec_runs_through_lg_spawn(tmp_path):
    before = child_pids()
    child = spawn_mod.spawn(plain_spec(tmp_path))
    try:
        child.release()
        _, status = os.waitpid(child.init_pid, 0)
        raw, exec_errno = child.collect()
    finally:
        child.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert raw == 0 and exec_errno == 0
    assert (tmp_path / "agent-ran").exists()
    assert child_pids() == before


def test_an_init_program_that_cannot_be_executed_is_a_launch_error(tmp_path, monkeypatch):
    """The clone's execve fails: ERROR("exec init program") to landgate, the clone
    exits, landgate reaps it; nothing ran."""
    before = child_pids()
    monkeypatch.setattr(spawn_mod, "init_helper", lambda: str(tmp_path / "no-such-init"))
    with pytest.raises(LaunchError, match=r"^exec init program: No such file or directory"):
        spawn_mod.spawn(plain_spec(tmp_path))
    assert child_pids() == before
    assert not (tmp_path / "agent-ran").exists()


def test_an_fd_the_spec_names_but_landgate_lacks_is_a_launch_error(tmp_path):
    """A network namespace fd (or a stdio fd) that is not open cannot cross the clone's
    execve: the error names which fd, and the clone is reaped.  The twin is any run above
    (the fds it names are open)."""
    before = child_pids()
    fd = 900  # closed, and high: lg_spawn's own new fds cannot take its number
    with pytest.raises(OSError):
        os.fstat(fd)
    with pytest.raises(LaunchError, match=r"^fcntl \(network namespace fd\): Bad file"):
        spawn_mod.spawn(replace(plain_spec(tmp_path), netns_fd=fd))
    with pytest.raises(LaunchError, match=r"^fcntl \(stdout fd for the agent\): Bad file"):
        spawn_mod.spawn(replace(plain_spec(tmp_path), stdio_fds=(-1, fd, -1)))
    assert child_pids() == before
    assert not (tmp_path / "agent-ran").exists()


@pytest.mark.kernel
@pytest.mark.parametrize("namespaces", [True, False], ids=["pid-namespace", "no-namespaces"])
def test_no_process_is_left_after_a_session(world, namespaces):
    h = probe_host()
    require_kernel(h.landlock_abi >= 1 and h.seccomp_filter, "Landlock + seccomp")
    before = child_pids()
    host = None if namespaces else h.without(mount_ns=False, pid_ns=False, user_ns=False)
    assert run_inprocess(world, ["sh", "-c", "exit 3"], host=host, best_effort=not namespaces) == 3
    assert child_pids() == before


# ---- the unprivileged rung: the clone's ambient capabilities ----------------------------


def _caps(text: str, field: str) -> int:
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"{field} not in {text!r}")


@pytest.mark.kernel
def test_the_agent_of_an_unprivileged_user_holds_no_capability(world):
    """In a user namespace the clone raises its capabilities as ambient so that they
    survive its execve of the init program (init needs them for the uid map and the
    mounts).  The agent must not keep them: with its capability drop skipped
    (drop_capabilities in lginit.c) the ambient set crosses the agent's execve and
    CapAmb/CapEff here are not 0 (before the init program, a non-root agent lost them
    at its execve whatever it dropped).  The allowed twin is in the same run: init did
    map the uid and mount (the sandbox's own /proc, where init is pid 1).  init itself
    drops them once the agent is forked: without drop_own_capabilities its CapEff (pid 1
    here) is not 0."""
    h = probe_host()
    require_kernel(os.geteuid() == 0, "root to switch to nobody")
    require_kernel(h.user_ns and h.landlock_abi >= 1 and h.seccomp_filter, "user ns")
    os.chmod(world.workspace, 0o777)
    p = landgate(
        world,
        [
            "sh",
            "-c",
            (
                "grep -E '^Cap(Eff|Prm|Inh|Amb)' /proc/self/status; cat /proc/self/uid_map;"
                " tr '\\0' ' ' < /proc/1/cmdline; echo;"
                " grep -E '^Cap(Eff|Prm|Inh|Amb)' /proc/1/status | sed 's/^/init /'"
            ),
        ],
        as_nobody=True,
    )
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr
    for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert _caps(out, field) == 0, out
    assert "65534      65534          1" in out  # init wrote the map: it had CAP_SYS_ADMIN
    assert "landgate-init" in out  # init mounted the sandbox's own /proc: it is pid 1 there
    # and init, which lives as long as the session, dropped them once the agent was forked
    init = "\n".join(ln[len("init ") :] for ln in out.splitlines() if ln.startswith("init "))
    for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert _caps(init, field) == 0, out


@pytest.mark.kernel
def test_the_tree_of_an_unprivileged_user_dies_with_landgate(world):
    """PR_SET_PDEATHSIG is set in the clone before its execve and kept through it (the
    ambient capabilities make it no privilege-gaining exec, which would clear it): a
    killed landgate takes init, the agent and its background child with it."""
    h = probe_host()
    require_kernel(os.geteuid() == 0, "root to switch to nobody")
    require_kernel(h.user_ns, "user ns")
    os.chmod(world.workspace, 0o777)
    xdg = world.root / "xdg-nobody"
    for sub in ("state", "config"):
        (xdg / sub).mkdir(parents=True, exist_ok=True)
        os.chown(xdg / sub, 65534, 65534)
    os.chown(xdg, 65534, 65534)
    marker = "317.31"
    env = dict(
        world.env,
        PYTHONPATH=str(ROOT),
        XDG_STATE_HOME=str(xdg / "state"),
        XDG_CONFIG_HOME=str(xdg / "config"),
    )
    cmd = [PY, "-m", "sandbox", "run", "--policy", str(world_policy(world)), "--"]
    cmd += ["sh", "-c", f"(sleep {marker} &) ; echo started; sleep {marker}"]
    proc = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd],
        cwd=world.workspace,
        env=env,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"started\n"

    def sleepers() -> bytes:
        return subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).stdout

    assert sleepers()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + scaled(5)
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sleepers()
