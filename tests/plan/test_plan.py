"""The plan and doctor against this host; the seccomp program run through a BPF interpreter."""

from __future__ import annotations

import json
import os

import pytest
from conftest import scaled  # tests/conftest.py
from helpers import cli
from launch.lg_helpers import ROOT, world_policy

from sandbox.host.probe import probe_host
from sandbox.plan import bpf as B
from sandbox.plan import build_plan
from sandbox.plan import seccomp as S
from sandbox.plan import seccomp_table as T
from sandbox.plan.landlock import READ, WRITE, compile_landlock_rules
from sandbox.policy import load_policy
from sandbox.policy.layers import LAYERS


def _policy(world, **kw):
    return load_policy(world_policy(world, **kw), cwd=world.workspace, home=world.home)


def _cli(world, *args):
    e = dict(world.env, PYTHONPATH=str(ROOT))
    p = cli.landgate(*args, cwd=world.workspace, env=e, timeout=scaled(60), text=False)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_plan_json_against_host(world):
    from sandbox._probe import lib

    env = {"HOME": str(world.home), "PATH": "/usr/bin:/bin", "AWS_SECRET_ACCESS_KEY": "x"}
    e = dict(world.env, PYTHONPATH=str(ROOT), **env)
    argv = ("plan", "--policy", str(world_policy(world)), "--json")
    out = cli.landgate(*argv, cwd=world.workspace, env=e, timeout=scaled(60), text=False).stdout
    plan = json.loads(out)
    assert plan["landlock"]["abi"] == max(0, lib.lg_probe_landlock_abi())
    rules = {r["path"]: r["rights"] for r in plan["landlock"]["rules"]}
    assert (
        "write_file" in rules[str(world.workspace)] and "read_file" in rules[str(world.workspace)]
    )
    assert str(world.home) not in rules  # nothing grants home
    cov = {c["pattern"]: c for c in plan["carve_outs"]["coverage"]}
    assert cov["**/.env"]["mechanisms"] == ["open-check"] and cov["**/.env"]["covered"]
    notify = {n["name"] for n in plan["seccomp"]["notify_syscalls"]}
    assert {"execve", "execveat", "connect", "sendto", "sendmsg", "sendmmsg"} <= notify
    assert "AWS_SECRET_ACCESS_KEY" in plan["environment"]["removed"]
    assert all(r["layers"] for r in plan["rules"])
    layers = {layer["name"]: layer for layer in plan["layers"]}
    assert tuple(layers) == LAYERS  # the one vocabulary, in its order
    if plan["host"]["landlock_abi"] >= 1:
        assert layers["filesystem"]["state"] in ("enforced", "partial")
    text = _cli(world, "plan", "--policy", str(world_policy(world))).decode()
    assert "'**/.env'" in text and "landlock (ABI" in text and "seccomp (" in text


def test_doctor_against_host(world):
    from sandbox._probe import lib

    doc = json.loads(_cli(world, "doctor", "--json"))
    assert doc["host"]["landlock_abi"] == max(0, lib.lg_probe_landlock_abi())
    assert doc["host"]["kernel"] == os.uname().release
    assert doc["host"]["seccomp_user_notif"] == (lib.lg_probe_seccomp_action(B.RET_USER_NOTIF) == 0)
    h = probe_host()
    from sandbox.host.network import network_capabilities

    netns = network_capabilities().netns
    expected = (
        "no-landlock"
        if h.landlock_abi == 0
        else "no-namespaces"
        if not (h.mount_ns and h.pid_ns)
        else "full"
        if netns
        else "no-network-namespace"
    )
    assert doc["rung"] == expected
    text = _cli(world, "doctor").decode()
    assert "rung: " + expected in text and "not covered on this rung" in text


def test_deny_covering_a_grant_removes_it(world):
    pol = _policy(
        world,
        extra_read='      - { path: "~/.ssh/", effect: allow }\n'
        '      - { path: "~/.aws/credentials", effect: allow }',
    )
    ll = compile_landlock_rules(pol, 7, pid_ns=True)
    paths = {r.path for r in ll.rules}
    assert str(world.home / ".ssh") not in paths
    assert str(world.aws_credentials) not in paths
    assert any(".ssh" in n for n in ll.notes)


def test_protected_paths_never_granted(world):
    keydir = world.home / ".config" / "landgate"
    keydir.mkdir(parents=True)
    pol = _policy(
        world,
        extra_read='      - { path: "~/", effect: allow }',
        extra_write='      - { path: "~/", effect: allow }',
    )
    plan = build_plan(pol, probe_host(), environ={})
    # Granted trees reach them: decided at access time by the open check (no masks).
    cov = {(c.action, c.pattern): c for c in plan.carve_outs.coverage}
    keys = str(keydir) + "/"
    assert cov[("file_read", keys)].mechanisms == ("open-check",)
    assert cov[("file_write", "~/.bashrc")].mechanisms == ("open-check",)
    assert plan.seccomp.open_check and plan.seccomp.notify_reads
    for r in plan.landlock.rules:
        assert not r.path.startswith(str(keydir))


def test_unanchored_allow_grants_nothing(world):
    pol = _policy(world, extra_read='      - { path: "*.md", effect: allow }')
    ll = compile_landlock_rules(pol, 7, pid_ns=True)
    assert any("*.md" in n for n in ll.notes)
    assert all(r.path != "/" for r in ll.rules)


def test_rights_follow_abi(world):
    pol = _policy(world)
    for abi, has_refer, has_trunc in ((1, False, False), (2, True, False), (3, True, True)):
        ll = compile_landlock_rules(pol, abi, pid_ns=True)
        ws = next(r for r in ll.rules if r.path == str(world.workspace))
        assert ("refer" in ws.rights) == has_refer and ("truncate" in ws.rights) == has_trunc
        assert ws.access & READ and ws.access & (WRITE & ((1 << 13) - 1))
        assert "make_char" not in ws.rights and "make_block" not in ws.rights


# --- a tiny classic-BPF interpreter for the seccomp program -----------------------------


def run_bpf(prog, nr, args=(0,) * 6, arch=B.AUDIT_ARCH_X86_64):
    data = nr.to_bytes(4, "little") + arch.to_bytes(4, "little") + bytes(8)
    data += b"".join(
        (a & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") for a in (list(args) + [0] * 6)[:6]
    )
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        if code == B.BPF_LD | B.BPF_W | B.BPF_ABS:
            acc = int.from_bytes(data[k : k + 4], "little")
        elif code == B.BPF_RET | B.BPF_K:
            return k
        elif code == B.BPF_JMP | B.BPF_JEQ | B.BPF_K:
            pc += jt if acc == k else jf
        elif code == B.BPF_JMP | B.BPF_JSET | B.BPF_K:
            pc += jt if acc & k else jf
        elif code == B.BPF_ALU | B.BPF_AND | B.BPF_K:
            acc &= k
        else:
            raise AssertionError(f"unknown insn {code:#x}")
        pc += 1


@pytest.mark.parametrize("open_check", [False, True])
def test_seccomp_program_actions(open_check):
    plan = S.compile_seccomp(notify_open=open_check)
    prog = plan.program
    N = T.SYSCALLS
    eperm, enosys = B.RET_ERRNO | 1, B.RET_ERRNO | 38
    assert run_bpf(prog, 39, arch=0x40000003) == B.RET_KILL_PROCESS  # i386
    assert run_bpf(prog, 0x40000000 | 39) == B.RET_KILL_PROCESS  # x32
    assert run_bpf(prog, 39) == B.RET_ALLOW  # getpid
    assert run_bpf(prog, N["io_uring_setup"]) == enosys
    assert run_bpf(prog, N["clone3"]) == enosys
    assert run_bpf(prog, N["ptrace"]) == eperm
    assert run_bpf(prog, N["clone"], (T.CLONE_NEWUSER | 17,)) == eperm
    assert run_bpf(prog, N["clone"], (0x1200011,)) == B.RET_ALLOW  # fork()'s flags
    assert run_bpf(prog, N["unshare"], (T.CLONE_NEWTIME,)) == eperm
    assert run_bpf(prog, N["ioctl"], (1, T.TIOCSTI)) == eperm
    assert run_bpf(prog, N["ioctl"], (1, 0x5413)) == B.RET_ALLOW  # TIOCGWINSZ
    assert run_bpf(prog, N["socket"], (17, 3, 0)) == B.RET_ERRNO | 97
    assert run_bpf(prog, N["socket"], (2, 1, 0)) == B.RET_ALLOW
    assert run_bpf(prog, N["execveat"], (3, 0, 0, 0, T.AT_EMPTY_PATH)) == B.RET_ERRNO | 13
    assert run_bpf(prog, N["execveat"], (3, 0, 0, 0, 0)) == B.RET_USER_NOTIF
    assert run_bpf(prog, N["personality"], (0,)) == B.RET_ALLOW
    assert run_bpf(prog, N["personality"], (0x0400000,)) == eperm
    for name in ("execve", "connect", "sendto", "sendmsg", "sendmmsg"):
        assert run_bpf(prog, N[name]) == B.RET_USER_NOTIF
    expected_open = B.RET_USER_NOTIF if open_check else B.RET_ALLOW
    for name in ("open", "openat", "openat2", "creat"):
        assert run_bpf(prog, N[name]) == expected_open
    names = {n for n, _ in plan.notify_syscalls}
    assert ("openat" in names) == open_check
    assert all(a.why for a in plan.actions)  # every entry names the attack it stops


def test_seccomp_clone_memory_sharing():
    """clone(CLONE_VM) without CLONE_THREAD/CLONE_VFORK, or with CLONE_PARENT, is refused:
    such a process could rewrite an exec's argv behind the supervisor.  Threads and
    vfork (posix_spawn) are the allowed twins."""
    prog = S.compile_seccomp(notify_open=False).program
    nr = T.SYSCALLS["clone"]
    eperm = B.RET_ERRNO | 1
    thread = T.CLONE_VM | T.CLONE_THREAD | 0x00000800 | 0x00000400  # + SIGHAND, FILES
    vfork = T.CLONE_VM | T.CLONE_VFORK | 17  # SIGCHLD in the low byte
    fork = 17
    assert run_bpf(prog, nr, (thread,)) == B.RET_ALLOW
    assert run_bpf(prog, nr, (vfork,)) == B.RET_ALLOW
    assert run_bpf(prog, nr, (fork,)) == B.RET_ALLOW
    assert run_bpf(prog, nr, (T.CLONE_VM | 17,)) == eperm
    assert run_bpf(prog, nr, (thread | T.CLONE_PARENT,)) == eperm
    assert run_bpf(prog, nr, (T.CLONE_NEWUSER | 17,)) == eperm


def test_plan_text_says_simulation_keeps_egress_refused(world):
    from sandbox.plan.render import render_plan

    pol = _policy(world)
    sim = render_plan(build_plan(pol, probe_host(), simulate=True))
    assert "denied connection (TCP, UDP, unix, DNS) stays refused" in sim
    enf = render_plan(build_plan(pol, probe_host(), simulate=False))
    assert "stays refused" not in enf  # twin: enforcement needs no such note


@pytest.mark.parametrize("open_check", [False, True])
def test_seccomp_refuses_truncation_below_landlock_abi_3(open_check):
    """Landlock ABI < 3 cannot judge truncation: truncate(2), openat2 and an O_RDONLY|O_TRUNC
    open are refused by the filter; writable opens (which Landlock judges), plain reads and
    ftruncate (it needs a writable fd) are the allowed twins.  With refuse_truncate off (ABI
    3+, Landlock judges them) the same calls are allowed or supervised as before."""
    N = T.SYSCALLS
    eacces, enosys = B.RET_ERRNO | 13, B.RET_ERRNO | 38
    trunc_ro = T.O_RDONLY | T.O_TRUNC
    o_wronly_trunc = 0o1 | T.O_TRUNC
    pass_open = B.RET_USER_NOTIF if open_check else B.RET_ALLOW
    on = S.compile_seccomp(notify_open=open_check, refuse_truncate=True)
    assert run_bpf(on.program, N["truncate"]) == eacces
    assert run_bpf(on.program, N["openat2"]) == enosys
    assert run_bpf(on.program, N["open"], (0, trunc_ro)) == eacces
    assert run_bpf(on.program, N["openat"], (0xFFFFFF9C, 0, trunc_ro)) == eacces
    assert run_bpf(on.program, N["open"], (0, 0)) == pass_open
    assert run_bpf(on.program, N["openat"], (0xFFFFFF9C, 0, o_wronly_trunc)) == pass_open
    assert run_bpf(on.program, 77) == B.RET_ALLOW  # ftruncate
    assert "openat2" not in {n for n, _ in on.notify_syscalls}
    off = S.compile_seccomp(notify_open=open_check, refuse_truncate=False)
    assert run_bpf(off.program, N["truncate"]) == B.RET_ALLOW
    assert run_bpf(off.program, N["openat"], (0xFFFFFF9C, 0, trunc_ro)) == pass_open
    assert run_bpf(off.program, N["openat2"]) == pass_open


def test_plan_refuses_truncation_only_below_landlock_abi_3(world):
    """Below ABI 3 truncate(2) is refused unless the supervisor performs it (then it is
    notified and judged, as on every ABI); O_RDONLY|O_TRUNC opens are refused either way."""
    from sandbox.host.supervisor import SupervisorStatus

    pol = _policy(world)
    on = SupervisorStatus(True, True, "")
    off = SupervisorStatus(False, False, "not installed")
    cases = ((2, on, "notify", True), (2, off, "errno", True), (3, on, "notify", False))
    cases += ((7, on, "notify", False), (3, off, None, False), (0, off, None, False))
    for abi, sup, truncate, ro_trunc in cases:
        host = probe_host().without(landlock_abi=abi, seccomp_notify=True)
        plan = build_plan(pol, host, environ={}, supervisor=sup, simulate=False)
        acts = {(a.syscall, a.action) for a in plan.seccomp.actions}
        got = next((act for name, act in acts if name == "truncate"), None)
        assert got == truncate, (abi, sup)
        assert (("openat", "errno") in acts) == ro_trunc, (abi, sup)


def test_per_rule_egress_text_names_the_layer_in_force(world):
    """A network rule's line in the plan names the egress layer the plan has: the
    loopback-only namespace (no nftables) for a policy that reaches nothing outside, the
    full layer for one that does, "absent" where there is none (it said "nftables + DNS
    view" whatever was in place)."""
    from sandbox.host.network import LOOPBACK_ONLY_LAYER
    from sandbox.plan.status import _rule_layers
    from sandbox.policy.layers import LayerStatus

    text = (
        world_policy(world)
        .read_text()
        .replace(
            "  - action: network\n    defaultEffect: allow\n",
            "  - action: network\n    defaultEffect: deny\n    rules:\n"
            '      - { destination: "localhost:8080", effect: allow }\n',
        )
    )
    pol = load_policy(world.write_policy(text), cwd=world.workspace, home=world.home)
    plan = build_plan(pol, probe_host(), environ={})
    egress = plan.layer("egress")
    (line,) = [ls for a, _ref, _p, ls in plan.rule_layers if a == "network"]
    if egress.active:
        assert f"egress: {egress.mechanism} (sandbox.net)" in line
    if egress.mechanism == LOOPBACK_ONLY_LAYER:
        assert not any("nftables" in part for part in line)
    # Host-independent: each layer the plan can have, said as it is.
    sup = plan.supervisor
    ll, co = plan.landlock, plan.carve_outs
    lo = LayerStatus("egress", "enforced", LOOPBACK_ONLY_LAYER, "d")
    full = LayerStatus("egress", "enforced", "network namespace + nftables + DNS view", "d")
    none = LayerStatus("egress", "absent", "network namespace + nftables + DNS view", "no netns")
    said = {}
    for name, layer in (("lo", lo), ("full", full), ("none", none)):
        (said[name],) = [
            ls for a, _r, _p, ls in _rule_layers(pol, ll, co, sup, layer) if a == "network"
        ]
    assert f"egress: {LOOPBACK_ONLY_LAYER} (sandbox.net)" in said["lo"]
    assert not any("nftables" in part for part in said["lo"])
    assert "egress: network namespace + nftables + DNS view (sandbox.net)" in said["full"]
    assert "egress: absent (no netns)" in said["none"]


def test_per_rule_account_is_made_only_when_read(world, monkeypatch):
    """`run` never reads the per-rule account: build_plan does not make it; `landgate plan`
    (render_plan, to_dict) does, from the plan's own layers."""
    import sandbox.plan as P
    from sandbox.plan.render import render_plan

    pol = _policy(world)
    made = []
    real = P._rule_layers
    monkeypatch.setattr(P, "_rule_layers", lambda *a: made.append(1) or real(*a))
    plan = build_plan(pol, probe_host(), environ={})
    assert made == []
    text = render_plan(plan)
    assert made == [1]  # the twin: asked for, it is made
    assert any(ref in text for _a, ref, _p, _l in plan.rule_layers)
