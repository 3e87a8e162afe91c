"""Doctor tells the truth: every layer `doctor` calls active works on this kernel.

For each layer `landgate doctor` reports as enforced (or partial), a live probe does an
allowed and a denied action of that layer's kind in a real sandbox; a layer reported active
whose denied action gets through, or whose allowed action fails, fails this test.  It runs on
every kernel (the host's, and each one vm-tests/ boots), so a kernel where a mechanism is
present but broken (the connect layer before 6.9, issue 17) cannot pass with a clean doctor.

The filesystem, carve-out, exec, connect, hardening and namespace probes share one sandboxed
Python program (PROBE) under POLICY; the egress probe uses a network session against the
fake internet (tests/net/conftest.py), without the supervisor, so nftables and the DNS view
are judged alone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import World

import sandbox
from sandbox.host.doctor import host_report

from .conftest import ADDRS, FakeInet, net_session, run_in_sandbox

pytestmark = pytest.mark.kernel

PY3 = "/usr/bin/python3"

POLICY = """\
version: 1
mode: enforce
workspace: {ws}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "./", effect: allow }}
      - {{ path: "{readonly}/", effect: allow }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./", effect: allow }}
  - action: shell_exec
    defaultEffect: deny
    rules:
      - {{ command: "true", effect: allow }}
      - {{ command: "id*", effect: deny }}
  - action: network
    defaultEffect: deny
    rules:
      - {{ destination: "localhost:{port}", effect: allow }}
"""

# Each entry: the errno name, or "ok".  Runs as the sandbox's root command.
PROBE = r"""
import ctypes, errno, json, os, socket, subprocess, sys, threading
ws, readonly, outside, allowed_port, denied_port, host_pid = sys.argv[1:7]
r = {}
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def read(p):
    with open(p, "rb") as f:
        f.read()
def read_secret(p):
    # a mask may show an empty file instead of refusing: what counts is the secret's bytes
    with open(p, "rb") as f:
        if b"LANDGATE-SECRET-" not in f.read():
            raise OSError(errno.ENODATA, "no secret")
def write(p):
    with open(p, "wb") as f:
        f.write(b"written by the sandbox")
def ro_trunc(p):
    os.close(os.open(p, os.O_RDONLY | os.O_TRUNC))
def ftrunc(p):
    with open(p, "r+b") as f:
        f.truncate(0)
def run(argv):
    if subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
        raise OSError(errno.EPERM, "exit status")
def connect(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    s.sendall(b"probe")
    s.close()
def in_thread(fn, *a):
    box = {}
    def body():
        box["r"] = attempt(lambda: fn(*a))
    t = threading.Thread(target=body)
    t.start()
    t.join()
    return box["r"]
libc = ctypes.CDLL(None, use_errno=True)
def personality(p):
    if libc.personality(ctypes.c_ulong(p)) == -1:
        raise OSError(ctypes.get_errno(), "personality")
r["fs_read_allowed"] = attempt(lambda: read(os.path.join(ws, "src", "app.ts")))
r["fs_read_denied"] = attempt(lambda: read_secret(outside))
r["fs_write_allowed"] = attempt(lambda: write(os.path.join(ws, "written.txt")))
r["fs_write_denied"] = attempt(lambda: write(os.path.join(readonly, "data.txt")))
r["fs_truncate_denied"] = attempt(lambda: os.truncate(os.path.join(readonly, "data.txt"), 0))
r["fs_rdonly_trunc_denied"] = attempt(lambda: ro_trunc(os.path.join(readonly, "data.txt")))
r["fs_ftruncate_allowed"] = attempt(lambda: ftrunc(os.path.join(ws, "trunc.txt")))
r["carve_allowed"] = attempt(lambda: read(os.path.join(ws, "src", "app.ts")))
r["carve_denied"] = attempt(lambda: read_secret(os.path.join(ws, ".env")))
r["exec_allowed"] = attempt(lambda: run(["true"]))
r["exec_denied"] = attempt(lambda: run(["id"]))
r["connect_allowed"] = attempt(lambda: connect(allowed_port))
r["connect_allowed_thread"] = in_thread(connect, allowed_port)
r["connect_denied"] = attempt(lambda: connect(denied_port))
r["connect_denied_thread"] = in_thread(connect, denied_port)
r["hardening_allowed"] = attempt(lambda: personality(0xFFFFFFFF))
r["hardening_denied"] = attempt(lambda: personality(0x0040000))
r["ns_allowed"] = attempt(lambda: os.kill(os.getpid(), 0))
r["ns_denied"] = attempt(lambda: os.kill(int(host_pid), 0))
print(json.dumps(r))
"""


def _sandbox_probe(world: World) -> dict[str, str]:
    readonly = world.root / "readonly"
    readonly.mkdir()
    (readonly / "data.txt").write_bytes(b"must survive")
    outside = world.root / "outside.txt"
    outside.write_bytes(world.secret)
    (world.workspace / "trunc.txt").write_bytes(b"may be emptied")
    for p in (readonly, readonly / "data.txt", outside, world.workspace / "trunc.txt"):
        p.chmod(0o777 if p.is_dir() else 0o666)
    policy = world.write_policy(
        POLICY.format(ws=world.workspace, readonly=readonly, port=world.allowed_server.port)
    )
    argv = [
        PY3,
        "-c",
        PROBE,
        str(world.workspace),
        str(readonly),
        str(outside),
        str(world.allowed_server.port),
        str(world.denied_server.port),
        str(os.getpid()),
    ]
    result = sandbox.run(
        argv,
        policy=str(policy),
        audit=str(world.root / "audit"),
        env=dict(world.env),
        cwd=str(world.workspace),
        capture_output=True,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    out: dict[str, str] = json.loads(result.stdout)
    # What reached the disk and the servers, not only what the program saw.
    out["disk_readonly_data"] = (readonly / "data.txt").read_bytes().decode()
    out["disk_trunc"] = (world.workspace / "trunc.txt").read_bytes().decode()
    deadline = time.monotonic() + 5
    while world.allowed_server.connections < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    out["server_allowed_connections"] = str(world.allowed_server.connections)
    out["server_denied_connections"] = str(world.denied_server.connections)
    return out


def _egress_probe(fake: FakeInet) -> dict[str, str]:
    policy = """\
version: 1
actions:
  - action: network
    defaultEffect: deny
    rules:
      - { destination: "allowed.test", effect: allow }
"""
    code = f"""
import json, socket
r = {{}}
for key, host in (("allowed", "allowed.test"), ("denied", "{ADDRS["exfil"]}")):
    try:
        s = socket.create_connection((host, 80), timeout=10)
        s.close()
        r[key] = "ok"
    except OSError as e:
        r[key] = type(e).__name__
print(json.dumps(r))
"""
    ns = net_session(policy, fake)
    ns.prepare()
    try:
        mark = fake.mark()
        proc = run_in_sandbox(ns, code)
        assert proc.returncode == 0, proc.stderr
        out: dict[str, str] = json.loads(proc.stdout)
        reached = {e.get("local") for e in fake.since(mark)}
        out["fake_inet_saw_denied"] = "yes" if ADDRS["exfil"] in reached else "no"
        return out
    finally:
        ns.close()


def _check(layer: str, state: str, r: dict[str, Any]) -> list[str]:
    """The live result's contradictions of `doctor`'s claim for one layer."""
    want: dict[str, bool] = {}  # probe key -> should it succeed
    if layer == "filesystem":
        want = {
            "fs_read_allowed": True,
            "fs_read_denied": False,
            "fs_write_allowed": True,
            "fs_write_denied": False,
            "fs_truncate_denied": False,
            "fs_rdonly_trunc_denied": False,
            "fs_ftruncate_allowed": True,
        }
    elif layer == "carve-outs":
        want = {"carve_allowed": True, "carve_denied": False}
    elif layer == "exec":
        want = {"exec_allowed": True, "exec_denied": False}
    elif layer == "connect":
        want = {"connect_allowed": True, "connect_denied": False, "connect_denied_thread": False}
        if state == "enforced":  # partial: threads other than the first may be refused
            want["connect_allowed_thread"] = True
    elif layer == "egress":
        want = {"allowed": True, "denied": False}
    elif layer == "hardening":
        want = {"hardening_allowed": True, "hardening_denied": False}
    elif layer == "namespaces":
        want = {"ns_allowed": True, "ns_denied": False}
    else:
        return [f"{layer}: doctor reports a layer this test has no live probe for"]
    bad = [
        f"{layer} ({state}): {key} gave {r[key]}, expected {'success' if ok else 'a refusal'}"
        for key, ok in want.items()
        if (r[key] == "ok") != ok
    ]
    if layer == "filesystem" and r["disk_readonly_data"] != "must survive":
        bad.append(
            f"filesystem: a file the policy denies writing now holds {r['disk_readonly_data']!r}"
        )
    if layer == "filesystem" and r["disk_trunc"] != "":
        bad.append("filesystem: ftruncate of a writable workspace file did not empty it")
    if layer == "connect" and r["server_denied_connections"] != "0":
        bad.append("connect: the denied server accepted a connection")
    if layer == "egress" and r["fake_inet_saw_denied"] != "no":
        bad.append("egress: a packet to the denied address reached the fake internet")
    return bad


def test_every_layer_doctor_reports_active_works(world: World, fake_inet: FakeInet) -> None:
    report = host_report()
    active = [(layer.name, layer.state) for layer in report.layers if layer.active]
    assert active, "doctor reports no active layer at all"
    sandboxed = _sandbox_probe(world)
    egress = _egress_probe(fake_inet) if any(n == "egress" for n, _ in active) else {}
    problems: list[str] = []
    for name, state in active:
        problems += _check(name, state, egress if name == "egress" else sandboxed)
    detail = "\n".join(layer.line() for layer in report.layers)
    assert not problems, (
        "doctor claims layers that do not work:\n"
        + "\n".join(problems)
        + f"\n\ndoctor:\n{detail}\nprobe: {json.dumps(sandboxed)}"
    )


def test_probe_readonly_file_is_intact(tmp_path: Path) -> None:
    """The probe's own twin: outside a sandbox the same truncation does empty the file,
    so a refusal inside is the sandbox's doing, not the file's modes."""
    p = tmp_path / "data.txt"
    p.write_bytes(b"must survive")
    p.chmod(0o666)
    os.close(os.open(p, os.O_RDONLY | os.O_TRUNC))
    assert p.read_bytes() == b""
